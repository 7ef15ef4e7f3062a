//! `rollback`: the work branch goes back to a checkpoint, later phases lose
//! their checkpoints, their tasks return to pending and their worktrees go.
//! Everything discarded is first kept under
//! `refs/orch/<plan>/preserved/rollback-…/`, and `rollback --undo` restores
//! the state commit from before, with branches, tags and worktrees.

use anyhow::{anyhow, Result};
use git2::Oid;

use super::tasks::{
    discard_task_checkout, preserve_tag, preserve_task, refuse_if_finished, unpreserve,
};
use crate::error::{refuse, refuse_with_hint};
use crate::git::{RefEdit, Repo};
use crate::state::{
    self, names, reconcile, store, transition, Event, RollbackRecord, Snapshot, TaskStatus,
};

pub struct RollbackReport {
    pub to: String,
    pub commit: Oid,
    pub preserved: Vec<String>,
    pub reset_tasks: Vec<String>,
}

/// The phases after `to` (all phases for `start`).
fn later_phases(snap: &Snapshot, to: &str) -> Vec<String> {
    let from = if to == "start" {
        0
    } else {
        snap.plan.phase_index(to).map_or(0, |i| i + 1)
    };
    snap.plan.phases[from..]
        .iter()
        .map(|p| p.id.clone())
        .collect()
}

pub fn rollback(repo: &Repo, plan: &str, to: Option<&str>) -> Result<RollbackReport> {
    let snap = store::load(repo, plan)?;
    refuse_if_finished(&snap)?;
    let latest = snap
        .plan
        .phases
        .iter()
        .rev()
        .find(|p| snap.is_checkpointed(&p.id))
        .map(|p| p.id.clone());
    let to = match to {
        Some("start") => "start".to_string(),
        Some(id) => {
            if snap.plan.phase(id).is_none() {
                return Err(refuse_with_hint(
                    format!("plan `{plan}` has no phase `{id}`"),
                    "name a checkpointed phase or `start`",
                ));
            }
            if !snap.is_checkpointed(id) {
                return Err(refuse_with_hint(
                    format!("phase `{id}` has no checkpoint to roll back to"),
                    format!(
                        "checkpointed phases: {}",
                        latest
                            .clone()
                            .map_or("none (use --to start)".to_string(), |_| checkpointed(&snap)
                                .join(", "))
                    ),
                ));
            }
            id.to_string()
        }
        None => latest.unwrap_or_else(|| "start".to_string()),
    };
    let target = target_commit(&snap, &to)?;
    let phases = later_phases(&snap, &to);
    let affected: Vec<String> = snap
        .plan
        .phases
        .iter()
        .filter(|p| phases.contains(&p.id))
        .flat_map(|p| p.tasks.iter().map(|t| t.id.clone()))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|id| {
            let keep = snap.task_status(&id)? != TaskStatus::Pending
                || repo.ref_target(&names::task_branch(plan, &id))?.is_some();
            Ok(keep.then_some(id))
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    let work = snap.state.work.oid();
    if work == target && affected.is_empty() && phases.iter().all(|p| !snap.is_checkpointed(p)) {
        return Err(refuse(format!(
            "nothing to roll back: the work branch is at the `{to}` checkpoint"
        )));
    }
    for id in &affected {
        let t = snap.task(id)?;
        if let Some(claim) = t.claim() {
            if !claim.manual
                && t.state() == TaskStatus::Running
                && crate::process::is_alive(claim.pid, claim.proc_start)
            {
                return Err(refuse_with_hint(
                    format!("task `{id}` is being run by process {}", claim.pid),
                    "stop that `git orch run` before rolling back",
                ));
            }
        }
    }

    super::tasks::refuse_foreign_checkouts(repo, plan, &affected)?;

    // Preserve first: the old work head, each tag that goes, each task's
    // branch and uncommitted work.
    let tag = preserve_tag("rollback");
    let mut preserved = Vec::new();
    if !repo.is_ancestor(work, target) {
        let name = names::preserved(plan, &format!("{tag}/work"));
        reconcile::create_if_absent(repo, &name, work)?;
        preserved.push(name);
    }
    for phase in &phases {
        if let Some(id) = repo.ref_target(&names::checkpoint_tag(plan, phase))? {
            let name = names::preserved(plan, &format!("{tag}/tags/{phase}"));
            reconcile::create_if_absent(repo, &name, id)?;
            preserved.push(name);
        }
    }
    for id in &affected {
        preserved.extend(preserve_task(repo, plan, id, &tag, target)?);
    }
    crate::failpoint!("rollback-preserved");

    let record_id = snap.state.rollbacks.iter().map(|r| r.id).max().unwrap_or(0) + 1;
    store::transact(repo, plan, |s, change| {
        if s.commit != snap.commit {
            return Err(refuse_with_hint(
                "the plan changed during the rollback",
                "run the rollback again",
            ));
        }
        let mut edits = Vec::new();
        for phase in &phases {
            if let Some(ps) = change.state.phases.get_mut(phase) {
                if let Some(cp) = ps.checkpoint.take() {
                    edits.push(RefEdit::Delete {
                        name: names::checkpoint_tag(plan, phase),
                        old: cp.tag.object.oid(),
                    });
                }
                ps.gates_failed = false;
                ps.gates.clear();
                // Their work is what the rollback discards: a new run of
                // the phase has all its fix-forward attempts again.
                ps.fixes.clear();
            }
        }
        for id in &affected {
            let t = transition::pending_again(&change.task(id)?);
            change.put_task(id, t);
        }
        change.state.work = target.into();
        // Hand commits the rollback takes off the work branch are gone
        // with it (its preserved refs keep them).
        change
            .state
            .adopted
            .retain(|a| repo.is_ancestor(a.commit.oid(), target));
        edits.insert(
            0,
            RefEdit::Set {
                name: names::work(plan),
                new: target,
                old: Some(work),
            },
        );
        change.refs = edits;
        change.state.rollbacks.push(RollbackRecord {
            id: record_id,
            to: to.clone(),
            before: snap.commit.into(),
            at: state::now(),
            preserved: preserved.clone(),
            undone: false,
        });
        change.event = Some(Event::RolledBack {
            to: to.clone(),
            rollback: record_id,
            work: target.to_string(),
            pending: affected.len(),
            at: state::now(),
        });
        Ok(())
    })
    .inspect_err(|_| unpreserve(repo, plan, snap.commit, &preserved))?;
    crate::failpoint!("rollback-committed");
    let held = super::tasks::Held::of(repo, plan)?;
    for id in &affected {
        discard_task_checkout(repo, plan, id, &held)?;
        crate::failpoint!("rollback-discarded");
    }
    Ok(RollbackReport {
        to,
        commit: target,
        preserved,
        reset_tasks: affected,
    })
}

fn checkpointed(snap: &Snapshot) -> Vec<String> {
    snap.plan
        .phases
        .iter()
        .filter(|p| snap.is_checkpointed(&p.id))
        .map(|p| p.id.clone())
        .collect()
}

fn target_commit(snap: &Snapshot, to: &str) -> Result<Oid> {
    if to == "start" {
        return Ok(snap.state.base.oid());
    }
    let cp = snap
        .state
        .phases
        .get(to)
        .and_then(|p| p.checkpoint.as_ref())
        .ok_or_else(|| anyhow!("phase `{to}` has no checkpoint"))?;
    Ok(cp.commit.oid())
}

pub struct UndoReport {
    pub to: String,
    pub work: Oid,
    pub restored_tasks: Vec<String>,
}

/// Restores the state from before the latest rollback that is not undone.
pub fn undo(repo: &Repo, plan: &str) -> Result<UndoReport> {
    let snap = store::load(repo, plan)?;
    refuse_if_finished(&snap)?;
    let record = snap
        .state
        .rollbacks
        .iter()
        .rev()
        .find(|r| !r.undone)
        .cloned()
        .ok_or_else(|| refuse("there is no rollback to undo"))?;
    let before = store::load_at(repo, plan, record.before.oid())?;
    // Work done since the rollback would be thrown away: refuse instead.
    let later = later_phases(&snap, &record.to);
    let since: Vec<String> = snap
        .plan
        .phases
        .iter()
        .filter(|p| later.contains(&p.id))
        .flat_map(|p| p.tasks.iter())
        .map(|t| Ok((t.id.clone(), snap.task_status(&t.id)?)))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .filter(|(_, s)| *s != TaskStatus::Pending)
        .map(|(id, _)| id)
        .collect();
    if !since.is_empty() || snap.state.work != target_commit(&snap, &record.to)? {
        return Err(refuse_with_hint(
            format!(
                "the plan moved on since the rollback (tasks: {})",
                if since.is_empty() {
                    "none".to_string()
                } else {
                    since.join(", ")
                }
            ),
            "undo would discard that work; roll back again instead",
        ));
    }
    let current_work = snap.state.work.oid();
    let restored_work = before.state.work.oid();
    store::transact(repo, plan, |s, change| {
        if s.commit != snap.commit {
            return Err(refuse_with_hint(
                "the plan changed during the undo",
                "run it again",
            ));
        }
        change.restore(&before);
        change.state.rollbacks = s.state.rollbacks.clone();
        for r in change
            .state
            .rollbacks
            .iter_mut()
            .filter(|r| r.id == record.id)
        {
            r.undone = true;
        }
        // Worktrees of landed tasks went with the rollback and do not come
        // back (their work is on the restored work branch).
        for (id, t) in before.all_tasks()? {
            let gone = t
                .worktree()
                .is_some_and(|p| !std::path::Path::new(p).join(".git").exists());
            if t.state() == TaskStatus::Done && gone {
                change.put_task(&id, transition::forget_worktree(&t));
            }
        }
        change.refs.push(RefEdit::Set {
            name: names::work(plan),
            new: restored_work,
            old: Some(current_work),
        });
        change.event = Some(Event::RollbackUndone {
            to: record.to.clone(),
            rollback: record.id,
            work: restored_work.to_string(),
            at: state::now(),
        });
        Ok(())
    })?;
    crate::failpoint!("undo-committed");
    let after = store::load(repo, plan)?;
    reconcile::reconcile(repo, &after)?;

    // Task branches and worktrees come back from the preserved refs.
    let mut restored_tasks = Vec::new();
    for name in &record.preserved {
        let Some(rest) = name.rsplit_once("/tasks/").map(|(_, id)| id.to_string()) else {
            continue;
        };
        let Some(head) = repo.ref_target(name)? else {
            continue;
        };
        let branch = names::task_branch(plan, &rest);
        if repo.ref_target(&branch)?.is_none() {
            repo.cas_ref(&branch, head, None, "orch: rollback undone")?;
            crate::failpoint!("undo-branch-restored");
        }
        restored_tasks.push(rest);
    }
    for (id, t) in after.all_tasks()? {
        let id = &id;
        let Some(path) = t.worktree() else {
            continue;
        };
        if !matches!(
            t.state(),
            TaskStatus::Running | TaskStatus::Failed | TaskStatus::Conflict | TaskStatus::Parked
        ) {
            continue;
        }
        let branch = names::task_branch(plan, id);
        let head = match repo.ref_target(&branch)? {
            Some(h) => h,
            None => {
                let base = t.base().unwrap_or(after.state.work).oid();
                repo.cas_ref(&branch, base, None, "orch: rollback undone")?;
                base
            }
        };
        // Only at the task's own place: the path the state records may
        // name any directory (a state fetched from elsewhere), and a forced
        // checkout and a snapshot restored there would overwrite it.
        let path = std::path::PathBuf::from(path);
        if path != super::workspace::task_worktree(repo, plan, id) {
            continue;
        }
        if !path.join(".git").exists() {
            repo.checkout_worktree(&path, &branch, head, None)?;
            crate::failpoint!("undo-worktree-restored");
        }
        let snapshot_ref = record
            .preserved
            .iter()
            .find(|n| n.ends_with(&format!("/worktrees/{id}")));
        if let Some(snapshot) = snapshot_ref
            .map(|n| repo.ref_target(n))
            .transpose()?
            .flatten()
        {
            repo.restore_snapshot(&path, snapshot)?;
        }
        if !restored_tasks.contains(id) {
            restored_tasks.push(id.clone());
        }
    }
    Ok(UndoReport {
        to: record.to,
        work: restored_work,
        restored_tasks,
    })
}
