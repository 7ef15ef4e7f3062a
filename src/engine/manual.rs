//! The manual transitions other than start and done: fail, reset, skip.
//! Reset and skip discard a checkout, so they preserve it first.

use anyhow::Result;
use git2::Oid;

use super::tasks::{discard_task_checkout, find_task, preserve_tag, preserve_task, unpreserve};
use crate::error::{refuse, refuse_with_hint};
use crate::git::Repo;
use crate::state::{self, store, Event, Snapshot, TaskStatus};

pub fn fail(repo: &Repo, plan: &str, id: &str, reason: Option<&str>) -> Result<Snapshot> {
    let (_, snap) = store::transact(repo, plan, |snap, change| {
        find_task(snap, id)?;
        let status = snap.task_status(id)?;
        if !matches!(status, TaskStatus::Running | TaskStatus::Conflict) {
            return Err(refuse(format!(
                "task `{id}` is {}; only a running or conflicting task can fail",
                status.as_str()
            )));
        }
        let reason = reason.unwrap_or("marked failed by hand").to_string();
        let t = change.task_mut(id)?;
        t.state = TaskStatus::Failed;
        t.claim = None;
        t.ended_at = Some(state::now());
        t.reason = Some(reason.clone());
        let attempt = t.attempts;
        change.event = Some(Event::TaskFailed {
            task: id.to_string(),
            attempt,
            reason,
            scope: Vec::new(),
            log: None,
            at: state::now(),
        });
        Ok(())
    })?;
    Ok(snap)
}

/// Refuses to take a task away from a live runner.
fn refuse_if_live(snap: &Snapshot, id: &str) -> Result<()> {
    let t = snap.task(id)?;
    if let Some(claim) = t.claim.as_ref() {
        let here = claim.host == crate::process::hostname();
        if !claim.manual
            && t.state == TaskStatus::Running
            && (!here || crate::process::is_alive(claim.pid, claim.proc_start))
        {
            return Err(refuse_with_hint(
                format!(
                    "task `{id}` is being run by process {} on {}",
                    claim.pid, claim.host
                ),
                "stop that `git orch run` first, or wait for it (`--force` if it is gone for good)",
            ));
        }
    }
    Ok(())
}

/// Returns a task to pending; its branch and uncommitted work are kept
/// under `refs/orch/<plan>/preserved/…` (returned).
/// `force` takes the task even from a runner that looks alive.
pub fn reset(repo: &Repo, plan: &str, id: &str, force: bool) -> Result<Vec<String>> {
    move_back(repo, plan, id, Back::Reset, force)
}

pub fn skip(repo: &Repo, plan: &str, id: &str, force: bool) -> Result<Vec<String>> {
    move_back(repo, plan, id, Back::Skip, force)
}

/// Reopens a landed task of the current phase so it can fix its work
/// forward (after a failed gate, say): its landing stays on the work branch,
/// and its next attempt starts from the work head with the failed gates'
/// output in its brief.
pub fn reopen(repo: &Repo, plan: &str, id: &str) -> Result<Vec<String>> {
    move_back(repo, plan, id, Back::Reopen, false)
}

/// What a reset task's record keeps of its last attempt, for the next
/// attempt's brief: why it failed, and where its work is kept.
fn why_reset(before: &state::TaskState, kept: &[String]) -> Option<String> {
    let mut why = match before.state {
        TaskStatus::Failed | TaskStatus::Conflict => format!(
            "{} ({})",
            before.reason.as_deref().unwrap_or("failed"),
            before.state.as_str()
        ),
        TaskStatus::Running => "reset while it was running".to_string(),
        _ => return None,
    };
    if !kept.is_empty() {
        why += &format!("; its work is kept in {}", kept.join(", "));
    }
    Some(why)
}

#[derive(Clone, Copy, PartialEq)]
enum Back {
    Reset,
    Skip,
    Reopen,
}

impl Back {
    fn word(self) -> &'static str {
        match self {
            Back::Reset => "reset",
            Back::Skip => "skip",
            Back::Reopen => "reopen",
        }
    }
}

fn move_back(repo: &Repo, plan: &str, id: &str, back: Back, force: bool) -> Result<Vec<String>> {
    let to = if back == Back::Skip {
        TaskStatus::Skipped
    } else {
        TaskStatus::Pending
    };
    let snap = store::load(repo, plan)?;
    let (phase, _) = find_task(&snap, id)?;
    let check = |snap: &Snapshot| -> Result<()> {
        let status = snap.task_status(id)?;
        if snap.is_checkpointed(&phase.id) {
            return Err(refuse_with_hint(
                format!(
                    "task `{id}` belongs to phase `{}`, which is checkpointed",
                    phase.id
                ),
                format!(
                    "roll the plan back first: `git orch rollback {plan} --to <earlier phase>`"
                ),
            ));
        }
        match (status, back) {
            (TaskStatus::Done, Back::Reopen) => Ok(()),
            (_, Back::Reopen) => Err(refuse_with_hint(
                format!("task `{id}` is {}; only a done task can be reopened", status.as_str()),
                format!("`git orch task reset {id}` returns a failed or running task to pending"),
            )),
            (TaskStatus::Pending, Back::Reset) => {
                Err(refuse(format!("task `{id}` is already pending")))
            }
            (TaskStatus::Skipped, Back::Skip) => {
                Err(refuse(format!("task `{id}` is already skipped")))
            }
            (TaskStatus::Done, _) => Err(refuse_with_hint(
                format!("task `{id}` has landed on the work branch"),
                format!("fix it forward with `git orch task reopen {id}`, or undo it with `git orch rollback {plan}`"),
            )),
            _ if force => Ok(()),
            _ => refuse_if_live(snap, id),
        }
    };
    check(&snap)?;
    if force {
        // Taken from a runner on this machine: its command stops first,
        // so it cannot keep writing into what is about to be preserved.
        let pgid_file = super::workspace::pgid_file(repo, plan, id);
        if let Ok(record) = std::fs::read_to_string(&pgid_file) {
            crate::process::kill_recorded_group(&record);
            let _ = std::fs::remove_file(&pgid_file);
        }
    }
    let work = Oid::from_str(&snap.state.work)?;
    let kept = preserve_task(
        repo,
        plan,
        id,
        &preserve_tag(&format!("{}-{id}", back.word())),
        work,
    )?;
    crate::failpoint!("reset-preserved");
    store::transact(repo, plan, |snap, change| {
        check(snap)?;
        let before = change.task(id)?;
        let mut t = before.pending_again();
        t.state = to;
        if back == Back::Reset {
            t.reason = why_reset(&before, &kept);
        }
        if to == TaskStatus::Skipped {
            t.reason = Some("skipped by hand".to_string());
        }
        change.put_task(id, t);
        if let Some(p) = change.state.phases.get_mut(&phase.id) {
            p.gates_failed = false;
        }
        let (task, at) = (id.to_string(), state::now());
        change.event = Some(match back {
            Back::Reset => Event::TaskReset { task, at },
            Back::Skip => Event::TaskSkipped { task, at },
            Back::Reopen => Event::TaskReopened { task, at },
        });
        Ok(())
    })
    .inspect_err(|_| unpreserve(repo, plan, snap.commit, &kept))?;
    crate::failpoint!("reset-committed");
    discard_task_checkout(repo, plan, id)?;
    Ok(kept)
}
