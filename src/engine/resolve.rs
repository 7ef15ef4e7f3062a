//! Landing conflicts resolved by an agent (issue 11, `on_conflict`). When
//! a task's landing conflicts and its phase (or the defaults) names an
//! `on_conflict` agent, the runner merges the work head into the task's
//! kept worktree (`git merge --no-commit`: conflict markers in the files),
//! writes a brief with both sides, the conflicting paths and hunks and the
//! intents of the task and of the landed tasks that changed those paths,
//! and runs the resolver agent there. When it exits 0 with no conflict
//! left, the merge is committed and the task lands as usual (its scope
//! checked as ever); otherwise the merge is undone and the task stays in
//! conflict. At most `attempts` (default 1) resolutions per task and run.

use std::path::{Path, PathBuf};

use anyhow::Result;
use git2::Oid;

use super::tasks::{self, Finish, Landed};
use super::workspace;
use crate::git::Repo;
use crate::process::{self, Job};
use crate::state::{store, TaskStatus};

/// What a resolution did: the landing commit, or why it did not land.
pub enum Resolved {
    Landed { commit: Option<Oid>, seconds: f64 },
    Not(String),
}

/// The `on_conflict` of the task's phase, else the default.
fn config<'a>(plan: &'a crate::plan::Plan, id: &str) -> Option<&'a crate::plan::OnGateFailure> {
    let (phase, _) = plan.task(id)?;
    phase
        .on_conflict
        .as_ref()
        .or(plan.defaults.on_conflict.as_ref())
}

/// Whether `id` may have resolution attempt number `tried + 1`.
pub fn may_resolve(repo: &Repo, plan: &str, id: &str, tried: u32) -> bool {
    let Ok(snap) = store::load(repo, plan) else {
        return false;
    };
    config(&snap.plan, id).is_some_and(|c| tried < c.attempts.unwrap_or(1))
}

fn git_out(repo: &Repo, dir: &Path, args: &[&str]) -> String {
    repo.task_git(dir, args).unwrap_or_default()
}

/// One resolution attempt of task `id`, in conflict with `files`.
pub fn resolve(
    repo: &Repo,
    plan: &str,
    id: &str,
    files: &[String],
    on_line: &(dyn Fn(&str, &str) + Sync),
) -> Result<Resolved> {
    let snap = store::load(repo, plan)?;
    let Some(cfg) = config(&snap.plan, id).cloned() else {
        return Ok(Resolved::Not("no on_conflict".into()));
    };
    let Some(agent) = snap.plan.agents.get(&cfg.agent).cloned() else {
        return Ok(Resolved::Not(format!("unknown agent {}", cfg.agent)));
    };
    let t = snap.task(id)?;
    if t.state() != TaskStatus::Conflict {
        return Ok(Resolved::Not("not in conflict".into()));
    }
    let Some(worktree) = t.worktree().map(PathBuf::from) else {
        return Ok(Resolved::Not("its worktree is gone".into()));
    };
    let work = snap.state.work.oid();
    let ours = git_out(repo, &worktree, &["rev-parse", "HEAD"]);
    let _ = repo.task_git(
        &worktree,
        &["merge", "--no-commit", "--no-ff", "-q", &work.to_string()],
    );
    let unmerged = git_out(repo, &worktree, &["diff", "--name-only", "--diff-filter=U"]);
    let hunks = git_out(repo, &worktree, &["diff"]);
    let hunks: String = hunks.lines().take(400).collect::<Vec<_>>().join("\n");

    let (phase, task) = tasks::find_task(&snap, id)?;
    let mut text = format!(
        "# Resolve the landing conflict of task {id}\n\nPlan: {plan} · Phase: {}\n\n",
        phase.id
    );
    text += &format!(
        "## Instructions\n\nThis worktree is task {id}'s work ({}) with the work branch (orch/{plan}/work at {}) merged in; the merge conflicts. Resolve every conflict so that both sides' intents hold, leave no conflict markers, and exit 0: the merge is then committed and the task lands.\n\n",
        ours.trim().get(..10).unwrap_or(ours.trim()),
        crate::git::short(work)
    );
    text += "## Conflicting paths\n\n";
    for f in unmerged.lines().filter(|l| !l.is_empty()) {
        text += &format!("- `{f}`\n");
    }
    for f in files {
        if !unmerged.lines().any(|l| l == f) {
            text += &format!("- `{f}`\n");
        }
    }
    text += &format!("\n## The hunks\n\n```diff\n{hunks}\n```\n\n");
    text += &format!(
        "## This task's intent ({id})\n\n{}\n\n{}\n\n",
        task.title.as_deref().unwrap_or(id),
        task.prompt.as_deref().unwrap_or("")
    );
    for (_, other) in snap.plan.tasks() {
        if other.id == id {
            continue;
        }
        let Ok(r) = snap.task(&other.id) else {
            continue;
        };
        if r.changed().iter().any(|c| files.contains(c)) {
            text += &format!(
                "## The other side's intent ({})\n\n{}\n\n{}\n\n",
                other.id,
                other.title.as_deref().unwrap_or(&other.id),
                other.prompt.as_deref().unwrap_or("")
            );
        }
    }
    let brief = workspace::task_file(repo, plan, id);
    std::fs::write(&brief, text)?;

    let agent_dir = workspace::agent_dir(repo, plan, id);
    let inv = crate::agent::invocation(
        &cfg.agent,
        &agent,
        &crate::agent::Context {
            worktree: &worktree,
            brief: &brief,
            dir: &agent_dir,
            files,
            purpose: crate::agent::Purpose::Resolve,
            resume: None,
        },
    );
    inv.prepare()?;
    let line = inv.line();
    let mut env = inv.env;
    env.extend(super::run::task_env(
        repo, plan, &phase.id, id, &worktree, work,
    ));
    env.push(("ORCH_CONFLICT_FILES".into(), files.join("\n")));
    // Under `isolation = "sandbox"` the resolver is contained as its task is.
    let sandbox = match crate::sandbox::for_task(
        repo,
        &snap.plan,
        plan,
        task,
        &worktree,
        Vec::new(),
        crate::sandbox::Access::Work,
    ) {
        Ok(s) => s,
        Err(e) => {
            let _ = repo.task_git(&worktree, &["merge", "--abort"]);
            return Ok(Resolved::Not(format!("the resolver's sandbox: {e:#}")));
        }
    };
    if let Some(s) = &sandbox {
        env.extend(s.env.iter().cloned());
    }
    let job = Job {
        command: &line,
        dir: &worktree,
        env,
        timeout: super::agents::side_timeout(&snap.plan, &agent),
        pgid_file: Some(workspace::pgid_file(repo, plan, id)),
        contain: true,
        wrap: sandbox.as_ref().map(|s| s.args.clone()),
    };
    on_line(
        id,
        &format!(
            "git-orch: landing conflicts in {}; resolver agent {} runs",
            files.join(", "),
            cfg.agent
        ),
    );
    let finished = process::run(&job, |line| on_line(id, line));
    let contained = sandbox.map_or(Ok(()), |s| s.finish(repo));
    let undo = |why: String| -> Result<Resolved> {
        let _ = repo.task_git(&worktree, &["merge", "--abort"]);
        let _ = repo.task_git(&worktree, &["reset", "-q", "--hard", ours.trim()]);
        Ok(Resolved::Not(why))
    };
    if let Err(e) = contained {
        return undo(format!("the resolver's sandbox: {e:#}"));
    }
    if !finished.exit.success() {
        return undo(format!("the resolver {}", finished.exit.describe()));
    }
    let _ = repo.task_git(&worktree, &["add", "-A"]);
    let left = git_out(
        repo,
        &worktree,
        &["diff", "--cached", "--name-only", "-G^<<<<<<< "],
    );
    if !left.trim().is_empty() {
        return undo(format!("conflict markers left in {}", left.trim()));
    }
    let mut args: Vec<&str> = Vec::new();
    let named = repo.git(&["config", "user.name"]).is_ok()
        || std::env::var_os("GIT_COMMITTER_NAME").is_some();
    if !named {
        args.extend([
            "-c",
            "user.name=git-orch",
            "-c",
            "user.email=git-orch@localhost",
        ]);
    }
    let message = format!(
        "{id}: merge orch/{plan}/work, conflicts resolved by agent {}",
        cfg.agent
    );
    args.extend(["commit", "-q", "--no-verify", "-m", &message]);
    if let Err(e) = repo.task_git(&worktree, &args) {
        return undo(format!("the resolution cannot be committed: {e:#}"));
    }
    let head = Oid::from_str(git_out(repo, &worktree, &["rev-parse", "HEAD"]).trim())?;
    let outcome = format!(
        "Its landing conflicted; agent {} resolved it in {}.",
        cfg.agent,
        crate::render::duration(finished.seconds)
    );
    let (landed, _) = tasks::land_committed(
        repo,
        plan,
        id,
        head,
        Finish {
            message: &format!("{id}: work of git-orch task"),
            handoff: workspace::read_handoff_note(&workspace::handoff_file(repo, plan, id)),
            log: Some(finished.log.clone()),
            seconds: Some(finished.seconds),
            outcome: &outcome,
        },
    )?;
    match landed {
        Landed::Done { commit, .. } => {
            let _ = workspace::park_clean(repo, plan, &worktree);
            Ok(Resolved::Landed {
                commit,
                seconds: finished.seconds,
            })
        }
        Landed::Conflict { files } => Ok(Resolved::Not(format!(
            "still conflicts in {}",
            files.join(", ")
        ))),
        Landed::OutOfScope { paths } => Ok(Resolved::Not(format!(
            "the resolution changed paths outside its files: {}",
            paths.join(", ")
        ))),
    }
}
