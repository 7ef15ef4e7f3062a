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
                report: None,
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
    let files = claimed
        .snap
        .plan
        .task(id)
        .map(|(_, t)| t.files.clone())
        .unwrap_or_default();
    let resume = command
        .kind
        .as_ref()
        .and_then(|(name, _)| last_session(claimed, name));
    if command.kind.is_some() {
        brief_for_kind(&workspace::task_file(&repo, plan, id)).map_err(|e| format!("{e:#}"))?;
    }
    let mut run_once = |resume: Option<&str>| -> Result<(process::Finished, Option<crate::agent::Report>), String> {
        let mut env = env.clone();
        let line = match &command.kind {
            Some((name, profile)) => {
                let dir = workspace::agent_dir(&repo, plan, id);
                let brief = workspace::task_file(&repo, plan, id);
                let cx = crate::agent::Context {
                    worktree: &begun.worktree,
                    brief: &brief,
                    dir: &dir,
                    files: &files,
                    purpose: crate::agent::Purpose::Work,
                    resume,
                };
                let inv = crate::agent::invocation(name, profile, &cx);
                inv.prepare().map_err(|e| format!("{e:#}"))?;
                // The task's own variables (ORCH_*) win over the agent's.
                let mut all = inv.env.clone();
                all.append(&mut env);
                env = all;
                inv.line()
            }
            None => command.run.clone(),
        };
        let job = Job {
            command: &line,
            dir: &begun.worktree,
            env,
            timeout: command.timeout,
            pgid_file: Some(workspace::pgid_file(&repo, plan, id)),
            contain: true,
            wrap: sandbox.as_ref().map(|s| s.args.clone()),
        };
        let finished = process::run(&job, |line| {
            live.line(line);
            observer.line(id, line);
        });
        let report = command
            .kind
            .as_ref()
            .map(|(_, p)| crate::agent::report::read(p.kind, &finished.log, &finished.exit));
        Ok((finished, report))
    };
    let (mut finished, mut report) = run_once(resume.as_deref())?;
    if let Some(r) = &mut report {
        r.resumed = resume.is_some();
    }
    // A session that cannot be continued: a fresh one, and the attempt says so.
    let lost = |finished: &process::Finished, report: &Option<crate::agent::Report>| {
        let succeeded = report
            .as_ref()
            .is_some_and(|r| r.class == Some(crate::agent::Class::Success));
        !finished.exit.success() && !succeeded && session_lost(&finished.log)
    };
    if let Some(old) = resume.as_deref().filter(|_| lost(&finished, &report)) {
        let note = format!("git-orch: session {old} could not be resumed; a fresh session starts");
        observer.line(id, &note);
        let (again, r) = run_once(None)?;
        // The first run's log stays, before the note and the fresh run's.
        let mut log = std::mem::take(&mut finished.log);
        log.extend_from_slice(b"\n");
        log.extend_from_slice(note.as_bytes());
        log.push(b'\n');
        log.extend_from_slice(&again.log);
        finished = again;
        finished.log = log;
        report = r;
    }
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
    // A real agent asked to change files that changed none did not do
    // its task, whatever it says.
    if let (Some(r), Some(Ok(h))) = (&mut report, &head) {
        if *h == begun.base && matches!(r.class, Some(crate::agent::Class::Success) | None) {
            r.class = Some(crate::agent::Class::Transient(
                "the agent changed no files".into(),
            ));
        }
    }
    let agent_failed = report
        .as_ref()
        .is_some_and(|r| matches!(&r.class, Some(c) if *c != crate::agent::Class::Success));
    crate::failpoint!("task-committed");
    // Reviewed before it lands: an automatic reviewer runs here, on the
    // committed head, in the task's own thread.
    let verdict = match (&head, claimed.snap.plan.task(id)) {
        (Some(Ok(h)), Some((_, task))) if tampered.is_empty() && !agent_failed => {
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
    // A kind agent's handoff note is its last message, unless it wrote one.
    if let Some(text) = report.as_ref().and_then(|r| r.last_message.as_deref()) {
        let file = workspace::handoff_file(&repo, plan, id);
        let written = std::fs::metadata(&file).is_ok_and(|m| m.len() > 0);
        if !written {
            let _ = std::fs::write(&file, format!("{}\n", text.trim_end()));
        }
    }
    // A reset time the agent's own output named, unless it wrote one.
    let reset = reset.or_else(|| {
        report
            .as_ref()
            .and_then(|r| r.reset)
            .map(|t| format!("{t}"))
    });
    Ok(Ran {
        finished,
        head,
        tampered,
        verdict,
        reset,
        usage,
        report,
    })
}

/// A kind agent cannot write outside its worktree (and Claude Code under
/// no `.git`): its brief asks for the handoff note as its last message.
fn brief_for_kind(brief: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(brief)?;
    // The brief's own section is its last: the same words earlier are an
    // agent's (a log's tail, a handoff note) or the plan's.
    let Some(at) = text.rfind("## When you are done") else {
        return Ok(());
    };
    let mut text = text[..at].to_string();
    text += "## When you are done\n\nChange only files inside your working directory. End with a short handoff note for the tasks after you (what you did, what they should know) as your last message: git-orch keeps it.\n";
    std::fs::write(brief, text)?;
    Ok(())
}

/// The session of this agent's latest attempt at the task, to continue.
fn last_session(claimed: &tasks::Claimed, agent: &str) -> Option<String> {
    let t = claimed.snap.task(&claimed.id).ok()?;
    t.usage
        .iter()
        .rev()
        .find(|u| u.agent.as_deref() == Some(agent) && u.session.is_some())
        .and_then(|u| u.session.clone())
}

/// Whether a CLI said the session it was told to resume is not there: in
/// its own words on a line of its own, not inside its JSON events (where
/// the model's messages and the files it read are, which say anything).
/// Only asked of a run that failed.
fn session_lost(log: &[u8]) -> bool {
    let text = String::from_utf8_lossy(log).to_ascii_lowercase();
    // The CLI's own JSON words: Codex's `error` and `turn.failed` events.
    let its_own = |l: &str| {
        serde_json::from_str::<serde_json::Value>(l.trim()).is_ok_and(|v| {
            matches!(
                v.get("type").and_then(|t| t.as_str()),
                Some("error" | "turn.failed")
            )
        })
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with('{') || its_own(l))
        .any(|l| {
            [
                "no conversation found",
                "session not found",
                "no session found",
                "thread not found",
                "no rollout found",
                "could not find session",
                "failed to resume",
            ]
            .iter()
            .any(|w| l.contains(w))
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

#[cfg(test)]
mod tests {
    use super::session_lost;

    #[test]
    fn a_kind_brief_keeps_what_an_agent_wrote_that_looks_like_its_last_section() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let brief = dir.path().join("t.md");
        let text = "## Instructions\n\nDo it.\n\n## Handoff from a\n\n## When you are done\n\n(a's note)\n\n## When you are done\n\nWrite a note to `/x`.\n";
        std::fs::write(&brief, text).expect("the brief");
        super::brief_for_kind(&brief).expect("rewritten");
        let after = std::fs::read_to_string(&brief).expect("the brief");
        assert!(after.contains("(a's note)"), "{after}");
        assert!(!after.contains("`/x`"), "{after}");
        assert!(after.ends_with("git-orch keeps it.\n"), "{after}");
    }

    #[test]
    fn a_session_is_lost_only_by_the_clis_own_words_not_the_agents() {
        assert!(session_lost(
            b"No conversation found with session ID: 1234\n"
        ));
        // The model said it, or read a file that does: inside its events.
        let said = br#"{"type":"assistant","message":{"content":[{"type":"text","text":"session not found\nfailed to resume"}]}}
{"type":"item.completed","item":{"type":"agent_message","text":"thread not found"}}
"#;
        assert!(!session_lost(said));
        assert!(session_lost(
            br#"{"type":"error","message":"thread not found: 0199"}"#
        ));
    }
}
