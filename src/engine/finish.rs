//! `finish`: a plan whose phases are all checkpointed gives back its
//! worktrees and task branches; the tags and the state branch stay as the
//! record. Uncommitted or unlanded work is preserved before anything goes.

use anyhow::Result;

use super::tasks::{
    discard_task_checkout, preserve_tag, preserve_task, refuse_foreign_checkouts,
    refuse_if_finished, unpreserve, Held,
};
use super::workspace;
use crate::error::refuse_with_hint;
use crate::git::Repo;
use crate::state::{names, store, transition, Event};

pub struct FinishReport {
    pub removed_branches: usize,
    pub preserved: Vec<String>,
}

pub fn finish(repo: &Repo, plan: &str) -> Result<FinishReport> {
    let snap = store::load(repo, plan)?;
    // A `finish` interrupted after its state commit left worktrees behind:
    // finishing again completes the clean-up instead of refusing.
    let interrupted = snap.state.finished && workspace::plan_worktrees(repo, plan).exists();
    if !interrupted {
        refuse_if_finished(&snap)?;
    }
    if let Some(phase) = snap.current_phase() {
        return Err(refuse_with_hint(
            format!(
                "plan `{plan}` is not finished: phase `{}` has no checkpoint yet",
                phase.id
            ),
            "run it to the end (`git orch run`) or check the phase (`git orch checkpoint`)",
        ));
    }
    let tasks: Vec<String> = snap.plan.tasks().map(|(_, t)| t.id.clone()).collect();
    // A person's worktree on a task's branch is theirs: refused before
    // anything is kept or changed.
    refuse_foreign_checkouts(repo, plan, &tasks)?;
    let work = snap.state.work.oid();
    let tag = preserve_tag("finish");
    let mut preserved = Vec::new();
    for id in &tasks {
        preserved.extend(preserve_task(repo, plan, id, &tag, work)?);
    }
    crate::failpoint!("finish-preserved");
    store::transact(repo, plan, |s, change| {
        if interrupted {
            return Ok(());
        }
        refuse_if_finished(s)?;
        change.state.finished = true;
        for (id, t) in s.all_tasks()? {
            if t.worktree().is_some() {
                change.put_task(&id, transition::forget_worktree(&t));
            }
        }
        change.event = Some(Event::PlanFinished {
            at: crate::state::now(),
        });
        Ok(())
    })
    .inspect_err(|_| unpreserve(repo, plan, snap.commit, &preserved))?;
    crate::failpoint!("finish-committed");
    let mut removed = 0;
    let held = Held::of(repo, plan)?;
    for id in &tasks {
        if repo.ref_target(&names::task_branch(plan, id))?.is_some() {
            removed += 1;
        }
        discard_task_checkout(repo, plan, id, &held)?;
    }
    workspace::drain_pool(repo, plan)?;
    crate::failpoint!("finish-pool-drained");
    let _ = std::fs::remove_dir_all(workspace::task_files_dir(repo, plan));
    let _ = std::fs::remove_dir(workspace::plan_worktrees(repo, plan));
    Ok(FinishReport {
        removed_branches: removed,
        preserved,
    })
}
