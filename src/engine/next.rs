//! `task next`: the task to start now, or, when there is none, what the
//! plan waits for. Derived from a snapshot like `progress.rs`; it changes
//! nothing, so a person, a script and an MCP agent all ask it freely.

use anyhow::Result;

use super::recover::Recovery;
use super::tasks::overlapping_running;
use crate::plan::{Phase, Task};
use crate::state::{PhaseStatus, Snapshot, TaskStatus};

/// What to do next, as one word (the `action` key of `task next --json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `task` may be started now.
    Start,
    /// Nothing can start until a running task settles, or until a task
    /// waiting in review is approved or rejected (`review` names it).
    Wait,
    /// Every task of the current phase is done or skipped.
    Checkpoint,
    /// The current phase's gates failed on its last checkpoint attempt.
    GatesFailed,
    /// Failed or conflicting tasks (or tasks depending on them) hold the phase.
    Stuck,
    /// Every phase is checkpointed, or the plan is finished.
    Finished,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Wait => "wait",
            Action::Checkpoint => "checkpoint",
            Action::GatesFailed => "gates_failed",
            Action::Stuck => "stuck",
            Action::Finished => "finished",
        }
    }
}

pub struct Next<'a> {
    pub action: Action,
    pub phase: Option<&'a Phase>,
    /// The first task `task start` accepts now, in plan order.
    pub task: Option<&'a Task>,
    /// Every task `task start` accepts now (the first is `task`).
    pub startable: Vec<&'a str>,
    /// Ready tasks held back by a running task whose files may overlap theirs.
    pub waiting: Vec<(&'a str, String)>,
    /// Tasks of the current phase that are running.
    pub running: Vec<&'a str>,
    /// Tasks of the current phase that failed or conflict, with their state.
    pub failed: Vec<(&'a str, TaskStatus)>,
    /// Tasks of the current phase committed and waiting for their reviewer:
    /// `task approve` lands one, `task reject` sends it back.
    pub review: Vec<&'a str>,
}

pub fn next(snap: &Snapshot) -> Result<Next<'_>> {
    let mut out = Next {
        action: Action::Finished,
        phase: None,
        task: None,
        startable: Vec::new(),
        waiting: Vec::new(),
        running: Vec::new(),
        failed: Vec::new(),
        review: Vec::new(),
    };
    let phase = match snap.current_phase() {
        Some(p) if !snap.state.finished => p,
        _ => return Ok(out),
    };
    out.phase = Some(phase);
    for t in &phase.tasks {
        match snap.task_status(&t.id)? {
            // A parked task runs again by itself once its agent's limit resets.
            TaskStatus::Running | TaskStatus::Parked => out.running.push(&t.id),
            s @ (TaskStatus::Failed | TaskStatus::Conflict) => out.failed.push((&t.id, s)),
            TaskStatus::Review => out.review.push(&t.id),
            _ => {}
        }
    }
    for (_, t) in snap.ready_tasks()? {
        match overlapping_running(snap, t)? {
            Some(other) => out.waiting.push((&t.id, other)),
            None => out.startable.push(&t.id),
        }
    }
    out.task = out
        .startable
        .first()
        .and_then(|id| phase.tasks.iter().find(|t| t.id == *id));
    out.action = if snap.phase_status(&phase.id) == PhaseStatus::Failed {
        Action::GatesFailed
    } else if out.task.is_some() {
        Action::Start
    } else if snap.unsettled_tasks(phase)?.is_empty() {
        Action::Checkpoint
    } else if !out.running.is_empty() || !out.waiting.is_empty() || !out.review.is_empty() {
        Action::Wait
    } else {
        Action::Stuck
    };
    Ok(out)
}

/// The command that moves the plan on, for a person or an agent.
pub fn hint(snap: &Snapshot, next: &Next<'_>) -> String {
    let plan = &snap.plan_name;
    match next.action {
        Action::Start => {
            let id = next.task.map_or("?", |t| t.id.as_str());
            format!("`git orch task start {id}`, then `git orch task done {id}` when its work is committed or left in the worktree")
        }
        Action::Wait => match (next.review.first(), next.running.as_slice()) {
            (Some(id), running) => {
                let also = if running.is_empty() {
                    String::new()
                } else {
                    format!(" (running too: {})", running.join(", "))
                };
                format!(
                    "task {id} waits for review: `git orch task approve {id}` lands it, `git orch task reject {id} -m COMMENTS` sends it back{also}"
                )
            }
            (None, []) => format!("wait until `git orch status {plan}` shows the running tasks settled"),
            (None, ids) => format!(
                "wait for the running task(s) {} to be done (`git orch task done ID`)",
                ids.join(", ")
            ),
        },
        Action::Checkpoint => format!("`git orch checkpoint {plan}` runs the phase's gates and tags it"),
        Action::GatesFailed => format!(
            "see the failed gates in `git orch status {plan}`; fix forward with `git orch task reopen ID`, then `git orch checkpoint {plan}` again"
        ),
        Action::Stuck => match next.failed.first() {
            Some((id, TaskStatus::Failed)) => {
                let record = snap.task(id).ok();
                let reason = record
                    .as_ref()
                    .and_then(|t| t.reason().map(str::to_string))
                    .unwrap_or_default();
                let worktree = record
                    .as_ref()
                    .and_then(|t| t.worktree().map(std::path::PathBuf::from))
                    .unwrap_or_default();
                let recovery = Recovery::of(&reason, worktree.join(".git").exists());
                // The overview also names the way that gives the work up.
                let over = if recovery == Recovery::Reset {
                    String::new()
                } else {
                    format!("; to start over instead, `git orch task reset {id}` (its work kept in a ref)")
                };
                format!(
                    "task {id} is failed: {}{over}",
                    recovery.hint(id, &reason, &worktree)
                )
            }
            Some((id, status)) => format!(
                "task {id} is {}: fix it in its worktree and `git orch task done {id}`, or start it over with `git orch task reset {id}`",
                status.as_str()
            ),
            None => format!("see `git orch status {plan}`"),
        },
        Action::Finished => {
            if snap.state.finished {
                format!("plan `{plan}` is finished")
            } else {
                format!("every phase is checkpointed: `git orch finish {plan}` removes the worktrees and task branches")
            }
        }
    }
}
