//! Fix-forward on failed gates (issue 11). When a phase's checkpoint fails
//! its gates and the phase (or the plan's defaults) has `on_gate_failure`,
//! git-orch makes a fix task `<phase>.fix-<n>` — in the state, not the
//! plan, so the plan's seal stays valid — on top of the work head, in a
//! worktree of its own (detached, under the plan's worktrees), with a
//! brief that carries the failing gates' names, commands and output and
//! the phase's tasks' intents. The fixer agent runs there; its work is
//! committed, checked against the fix's scope (`files`, or the union of
//! the phase's task scopes) and landed; the runner runs the gates again.
//! After `attempts` fixes the checkpoint fails as before. Each attempt is
//! a [`FixRecord`] in the phase's record and a `phase-fix` event.

use anyhow::Result;
use git2::Oid;

use super::land::{self, Landing};
use super::workspace;
use crate::git::{RefEdit, Repo};
use crate::plan::Task;
use crate::process::{self, Job};
use crate::state::{self, names, store, Event, FixRecord, Snapshot};

/// What one fix-forward attempt did.
#[derive(Debug, Clone)]
pub struct FixOutcome {
    pub id: String,
    pub landed: Option<Oid>,
    pub reason: Option<String>,
}

/// The fix's scope: its own `files`, else the union of the phase's task
/// scopes (none at all when a task of the phase has none: any path).
fn scope(snap: &Snapshot, phase: &str, declared: &[String]) -> Vec<String> {
    if !declared.is_empty() {
        return declared.to_vec();
    }
    let Some(p) = snap.plan.phase(phase) else {
        return Vec::new();
    };
    if p.tasks.iter().any(|t| t.files.is_empty()) {
        return Vec::new();
    }
    let mut all: Vec<String> = p.tasks.iter().flat_map(|t| t.files.clone()).collect();
    all.sort();
    all.dedup();
    all
}

/// The brief of fix task `id`.
fn brief(
    repo: &Repo,
    snap: &Snapshot,
    phase: &str,
    id: &str,
    files: &[String],
    work: Oid,
) -> Result<String> {
    let plan = &snap.plan_name;
    let mut text = format!("# Task {id}: make the gates of phase {phase} pass\n\n");
    text += &format!("Plan: {plan} · Phase: {phase} · a fix-forward task made by git-orch\n\n");
    text += &format!(
        "## Instructions\n\nThis worktree holds the phase's work (orch/{plan}/work at {}). Its checkpoint's gates failed (below): change the work so that they pass. Your changes are committed and landed when you exit 0, then the gates run again.\n\n",
        crate::git::short(work)
    );
    text += "## Files you may change\n\n";
    if files.is_empty() {
        text += "Any (no scope declared).\n\n";
    } else {
        for f in files {
            text += &format!("- `{f}`\n");
        }
        text += "\nChanges outside these paths fail the fix.\n\n";
    }
    if let Some(ps) = snap.state.phases.get(phase) {
        for gate in ps.gates.iter().filter(|g| !g.passed) {
            let log = repo.read_path(snap.tree, &gate.log)?.unwrap_or_default();
            let log = String::from_utf8_lossy(&log);
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            text += &format!(
                "## The phase's gate `{}` failed\n\nCommand: `{}` on {}.\n\n```\n{}\n```\n\n",
                gate.name,
                gate.command,
                gate.commit.short(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        for fix in &ps.fixes {
            text += &format!(
                "## Fix attempt {} ({})\n\n{}\n\n",
                fix.attempt,
                fix.id,
                fix.reason
                    .as_deref()
                    .unwrap_or("landed; the gates still failed")
            );
        }
    }
    if let Some(p) = snap.plan.phase(phase) {
        text += "## The phase's tasks (their intents)\n\n";
        for t in &p.tasks {
            let prompt = t
                .prompt
                .as_deref()
                .and_then(|s| s.lines().next())
                .unwrap_or("");
            text += &format!(
                "- {}: {} {prompt}\n",
                t.id,
                t.title.as_deref().unwrap_or("")
            );
        }
        text += "\n";
    }
    Ok(text)
}

/// One fix-forward attempt for `phase`, whose gates just failed; `None`
/// when it has no `on_gate_failure` or has had all its attempts.
pub fn fix_forward(
    repo: &Repo,
    plan: &str,
    phase: &str,
    on_line: &(dyn Fn(&str, &str) + Sync),
) -> Result<Option<FixOutcome>> {
    let snap = store::load(repo, plan)?;
    let Some(cfg) = snap.plan.on_gate_failure(phase).cloned() else {
        return Ok(None);
    };
    let Some(agent) = snap.plan.agents.get(&cfg.agent).cloned() else {
        return Ok(None);
    };
    let done = snap.state.phases.get(phase).map_or(0, |p| p.fixes.len()) as u32;
    if done >= cfg.attempts.unwrap_or(1) {
        return Ok(None);
    }
    let n = done + 1;
    let id = format!("{phase}.fix-{n}");
    let work = snap.state.work.oid();
    let files = scope(&snap, phase, &cfg.files);
    let task: Task = serde_json::from_value(serde_json::json!({
        "id": id,
        "title": format!("fix-forward of phase {phase}"),
        "files": files,
    }))?;

    let path = workspace::task_worktree(repo, plan, &id);
    if path.exists() {
        let _ = repo.git(&["worktree", "remove", "--force", &path.to_string_lossy()]);
        let _ = std::fs::remove_dir_all(&path);
    }
    let _ = repo.git(&["worktree", "prune"]);
    let mut add: Vec<&str> = crate::git::TASK_SAFE.to_vec();
    let at = path.to_string_lossy();
    let start = work.to_string();
    add.extend(["worktree", "add", "-q", "--detach", &at, &start]);
    repo.git(&add)?;
    let task_file = workspace::task_file(repo, plan, &id);
    if let Some(dir) = task_file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&task_file, brief(repo, &snap, phase, &id, &files, work)?)?;

    let agent_dir = workspace::agent_dir(repo, plan, &id);
    let inv = crate::agent::invocation(
        &cfg.agent,
        &agent,
        &crate::agent::Context {
            worktree: &path,
            brief: &task_file,
            dir: &agent_dir,
            files: &files,
            purpose: crate::agent::Purpose::Fix,
            resume: None,
        },
    );
    inv.prepare()?;
    let line = inv.line();
    let mut env = inv.env;
    env.extend(super::run::task_env(repo, plan, phase, &id, &path, work));
    let timeout = super::agents::side_timeout(&snap.plan, &agent);
    // Under `isolation = "sandbox"` the fixer is contained as a task is.
    let sandbox = crate::sandbox::for_task(
        repo,
        &snap.plan,
        plan,
        &task,
        &path,
        Vec::new(),
        crate::sandbox::Access::Work,
    )?;
    if let Some(s) = &sandbox {
        env.extend(s.env.iter().cloned());
    }
    let job = Job {
        command: &line,
        dir: &path,
        env,
        timeout,
        pgid_file: Some(workspace::pgid_file(repo, plan, &id)),
        contain: true,
        wrap: sandbox.as_ref().map(|s| s.args.clone()),
    };
    on_line(
        &id,
        &format!(
            "git-orch: the gates of phase {phase} failed; fix-forward attempt {n} by agent {}",
            cfg.agent
        ),
    );
    let finished = process::run(&job, |line| on_line(&id, line));
    let contained = sandbox.map_or(Ok(()), |s| s.finish(repo));

    let mut reason = None;
    let mut landed = None;
    let mut changed = Vec::new();
    if let Err(e) = contained {
        reason = Some(format!("the fixer's sandbox: {e:#}"));
    } else if finished.exit.success() {
        let head = repo.commit_all(&path, &format!("{id}: fix-forward of phase {phase}"))?;
        match land::land(repo, &snap.plan, &task, work, work, head)? {
            Landing::Landed { commit, changed: c } => {
                landed = Some(commit);
                changed = c;
            }
            Landing::Empty => reason = Some("the fix changed nothing".to_string()),
            Landing::Conflict { files } => {
                reason = Some(format!("the fix conflicts in {}", files.join(", ")))
            }
            Landing::OutOfScope { paths } => {
                reason = Some(format!(
                    "the fix changed paths outside its files: {}",
                    paths.join(", ")
                ))
            }
        }
    } else {
        reason = Some(format!("the fixer {}", finished.exit.describe()));
    }

    let log = state::layout::fix_log(phase, n);
    let outcome = FixOutcome {
        id: id.clone(),
        landed,
        reason: reason.clone(),
    };
    store::transact(repo, plan, |s, change| {
        if s.state.work.oid() != work {
            return Err(crate::error::refuse(format!(
                "the work branch moved while fix {id} ran; run again"
            )));
        }
        let at = state::now();
        if let Some(commit) = landed {
            change.state.work = commit.into();
            change.refs.push(RefEdit::Set {
                name: names::work(plan),
                new: commit,
                old: Some(work),
            });
        }
        let ps = change.state.phases.entry(phase.to_string()).or_default();
        if landed.is_some() {
            ps.gates_failed = false;
        }
        ps.fixes.push(FixRecord {
            id: id.clone(),
            attempt: n,
            agent: cfg.agent.clone(),
            base: work.into(),
            landed: landed.map(Into::into),
            reason: reason.clone(),
            changed: changed.clone(),
            log: log.clone(),
            seconds: finished.seconds,
            at,
        });
        change.file(log.clone(), finished.log.clone());
        change.event = Some(Event::PhaseFix {
            phase: phase.to_string(),
            fix: id.clone(),
            attempt: n,
            agent: cfg.agent.clone(),
            landed: landed.map(|c| c.to_string()),
            reason: reason.clone(),
            log: Some(log.clone()),
            at,
        });
        Ok(())
    })?;
    let _ = repo.git(&["worktree", "remove", "--force", &path.to_string_lossy()]);
    let _ = std::fs::remove_file(workspace::pgid_file(repo, plan, &id));
    Ok(Some(outcome))
}
