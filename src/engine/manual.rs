//! The manual transitions other than start and done: fail, reset, skip.
//! Reset and skip discard a checkout, so they preserve it first.

use anyhow::Result;

use super::tasks::{discard_task_checkout, find_task, preserve_tag, preserve_task, unpreserve};
use crate::error::{refuse, refuse_with_hint};
use crate::git::Repo;
use crate::state::{self, store, transition, Event, Snapshot, TaskStatus};

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
        let t = change.task(id)?;
        let failed = transition::fail(&t, reason.clone(), None, state::now(), None, None)
            .map_err(|w| w.about(id))?;
        let attempt = failed.attempts;
        change.put_task(id, failed);
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
    if let Some(claim) = t.claim() {
        let here = claim.host == crate::process::hostname();
        if !claim.manual
            && t.state() == TaskStatus::Running
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
    let mut why = match before.state() {
        TaskStatus::Failed | TaskStatus::Conflict | TaskStatus::Parked => format!(
            "{} ({})",
            before.reason().unwrap_or("failed"),
            before.state().as_str()
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
    super::tasks::refuse_foreign_checkouts(repo, plan, &[id])?;
    if force {
        // Taken from a runner on this machine: its command stops first,
        // so it cannot keep writing into what is about to be preserved.
        let pgid_file = super::workspace::pgid_file(repo, plan, id);
        if let Ok(record) = std::fs::read_to_string(&pgid_file) {
            crate::process::kill_recorded_group(&record);
            let _ = std::fs::remove_file(&pgid_file);
        }
    }
    let work = snap.state.work.oid();
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
        let t = match back {
            Back::Skip => transition::skip(&before, "skipped by hand"),
            Back::Reset => transition::pending_because(&before, why_reset(&before, &kept)),
            Back::Reopen => transition::pending_again(&before),
        };
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
    let held = super::tasks::Held::of(repo, plan);
    held.and_then(|held| discard_task_checkout(repo, plan, id, &held))
        .map_err(|e| {
            let done = match back {
                Back::Reset => "reset to pending",
                Back::Skip => "skipped",
                Back::Reopen => "reopened",
            };
            crate::error::after_commit(e, format!("task {id}: {done}"))
        })?;
    Ok(kept)
}
