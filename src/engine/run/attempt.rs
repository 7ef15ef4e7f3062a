//! One attempt of a task, on its own thread: the worktree, the task's
//! environment, its command (in its sandbox when it asks for one), the
//! commit of what it did, its review, and what it wrote for the ledger.

use anyhow::Result;
use git2::Oid;

use super::{Observer, Ran};
use crate::engine::agents;
use crate::engine::tasks;
use crate::engine::workspace;
use crate::git::Repo;
use crate::process::{self, Exit, Job};

/// The task's own thread: worktree, command, commit.
pub(super) fn run_task(
    root: &std::path::Path,
    claimed: &tasks::Claimed,
    command: &agents::Command,
    observer: &dyn Observer,
) -> Result<Ran, String> {
    let repo = Repo::discover(root).map_err(|e| format!("{e:#}"))?;
    let plan = claimed.snap.plan_name.as_str();
    let id = claimed.id.as_str();
    let begun = tasks::prepare(&repo, claimed, true).map_err(|e| format!("{e:#}"))?;
    if let Some(kept) = &begun.kept {
        observer.line(
            &claimed.id,
            &format!(
                "git-orch: kept what an earlier attempt left in this worktree's place in {kept}"
            ),
        );
    }
    let phase = claimed
        .snap
        .plan
        .task(id)
        .map(|(p, _)| p.id.clone())
        .unwrap_or_default();
    let mut watch =
        crate::engine::tamper::Watch::take(&repo, plan, id).map_err(|e| format!("{e:#}"))?;
    // The agent's own variables first: the task's (ORCH_*) win.
    let mut env = command.env.clone();
    env.extend(task_env(
        &repo,
        plan,
        &phase,
        id,
        &begun.worktree,
        begun.base,
    ));
    let mut live = workspace::LiveLog::create(&repo, plan, id);
    // A new worktree's included files and setup (a recycled one has them).
    let setup_log = match crate::engine::setup::ensure(
        &repo,
        &claimed.snap.plan,
        claimed.snap.plan.task(id).map(|(_, t)| (plan, t)),
        &begun.worktree,
        env.clone(),
        Some(workspace::pgid_file(&repo, plan, id)),
        &mut |line| {
            live.line(line);
            observer.line(id, line);
        },
    )
    .map_err(|e| format!("{e:#}"))?
    {
        crate::engine::setup::Setup::Ready => Vec::new(),
        crate::engine::setup::Setup::MadeReady { log } => log,
        crate::engine::setup::Setup::Failed {
            reason,
            mut finished,
        } => {
            if !matches!(finished.exit, Exit::Stopped(_)) {
                finished.exit = Exit::NotStarted(reason);
            }
            return Ok(Ran {
                finished,
                head: None,
                tampered: Vec::new(),
                verdict: None,
                reset: None,
                usage: None,
            });
        }
    };
    // Last attempt's files go first: a sandbox makes them anew, empty, to
    // bind them writable.
    let reset_file = workspace::reset_file(&repo, plan, id);
    let _ = std::fs::remove_file(&reset_file);
    let usage_file = workspace::usage_file(&repo, plan, id);
    let _ = std::fs::remove_file(&usage_file);
    let sandbox = sandbox_for(&repo, claimed, &begun.worktree).map_err(|e| format!("{e:#}"))?;
    watch.refs_read_only(sandbox.is_some());
    if let Some(s) = &sandbox {
        env.extend(s.env.iter().cloned());
    }
    let job = Job {
        command: &command.run,
        dir: &begun.worktree,
        env,
        timeout: command.timeout,
        pgid_file: Some(workspace::pgid_file(&repo, plan, id)),
        contain: true,
        wrap: sandbox.as_ref().map(|s| s.args.clone()),
    };
    let mut finished = process::run(&job, |line| {
        live.line(line);
        observer.line(id, line);
    });
    if !setup_log.is_empty() {
        finished.log.splice(0..0, setup_log);
    }
    // An empty file is one a sandbox made and nothing wrote.
    let reset = read_capped(&reset_file, agents::RESET_FILE_LIMIT).filter(|r| !r.is_empty());
    let _ = std::fs::remove_file(&reset_file);
    let usage = read_capped_bytes(&usage_file, crate::engine::ledger::USAGE_LIMIT as u64 + 1)
        .filter(|b| !b.is_empty())
        .map(|mut b| {
            let whole = b.len() <= crate::engine::ledger::USAGE_LIMIT;
            b.truncate(crate::engine::ledger::USAGE_LIMIT);
            (b, whole)
        });
    let _ = std::fs::remove_file(&usage_file);
    let mut tampered = watch
        .check(&repo)
        .unwrap_or_else(|e| vec![format!("cannot be checked: {e:#}")]);
    if let Some(s) = sandbox {
        if let Err(e) = s.finish(&repo) {
            tampered.push(format!("what it left in its sandbox is refused: {e:#}"));
        }
    }
    // Committed even when it tampered, to keep its work on its branch: git
    // runs here with neither its fsmonitor nor its hooks (`TASK_SAFE`), and
    // a sandboxed task cannot have changed the config.
    let head = finished.exit.success().then(|| {
        let started = std::time::Instant::now();
        let head = repo
            .commit_all(&begun.worktree, &format!("{id}: work of git-orch task"))
            .map_err(|e| format!("{e:#}"));
        crate::trace::step("commit", started);
        head
    });
    crate::failpoint!("task-committed");
    // Reviewed before it lands: an automatic reviewer runs here, on the
    // committed head, in the task's own thread.
    let verdict = match (&head, claimed.snap.plan.task(id)) {
        (Some(Ok(h)), Some((_, task))) if tampered.is_empty() => {
            crate::engine::review::run_reviewer(
                &repo,
                &claimed.snap.plan,
                plan,
                task,
                &begun.worktree,
                task_env(&repo, plan, &phase, id, &begun.worktree, begun.base),
                begun.base,
                *h,
                &mut |line| observer.line(id, line),
            )
        }
        _ => None,
    };
    Ok(Ran {
        finished,
        head,
        tampered,
        verdict,
        reset,
        usage,
    })
}

/// At most `limit` bytes of a file a task wrote, as text; `None` when it
/// is not there (or is not a regular file).
pub(super) fn read_capped(path: &std::path::Path, limit: u64) -> Option<String> {
    read_capped_bytes(path, limit).map(|b| String::from_utf8_lossy(&b).into_owned())
}

pub(super) fn read_capped_bytes(path: &std::path::Path, limit: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(limit)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

/// The sandbox of a task with `isolation = "sandbox"`.
pub(super) fn sandbox_for(
    repo: &Repo,
    claimed: &tasks::Claimed,
    worktree: &std::path::Path,
) -> Result<Option<crate::sandbox::Sandbox>> {
    let plan = &claimed.snap.plan;
    let Some((_, task)) = plan.task(&claimed.id) else {
        return Ok(None);
    };
    let name = claimed.snap.plan_name.as_str();
    let id = claimed.id.as_str();
    crate::sandbox::for_task(
        repo,
        plan,
        name,
        task,
        worktree,
        vec![
            workspace::handoff_file(repo, name, id),
            workspace::usage_file(repo, name, id),
            workspace::reset_file(repo, name, id),
        ],
        crate::sandbox::Access::Work,
    )
}

/// The SPEC §4 environment.
pub(crate) fn task_env(
    repo: &Repo,
    plan: &str,
    phase: &str,
    id: &str,
    worktree: &std::path::Path,
    base: Oid,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("ORCH_PLAN".into(), plan.into()),
        ("ORCH_PHASE".into(), phase.into()),
        ("ORCH_TASK".into(), id.into()),
        ("ORCH_WORKTREE".into(), worktree.display().to_string()),
        ("ORCH_REPO".into(), repo.root.display().to_string()),
        ("ORCH_BASE".into(), base.to_string()),
        (
            "ORCH_TASK_FILE".into(),
            workspace::task_file(repo, plan, id).display().to_string(),
        ),
        (
            "ORCH_HANDOFF_FILE".into(),
            workspace::handoff_file(repo, plan, id)
                .display()
                .to_string(),
        ),
        (
            "ORCH_USAGE_FILE".into(),
            workspace::usage_file(repo, plan, id).display().to_string(),
        ),
        (
            "ORCH_USAGE_RESET_FILE".into(),
            workspace::reset_file(repo, plan, id).display().to_string(),
        ),
    ];
    env.extend(crate::git::no_auto_maintenance_env());
    env
}
