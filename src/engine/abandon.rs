//! `abandon`: an unfinished plan stops for good, and gives back its
//! worktrees and task branches as `finish` does for a finished one. Every
//! task's work (its branch, and what its worktree holds, committed or
//! not) is first kept under `refs/orch/<plan>/preserved/`; the state
//! branch, the work branch and the tags stay as the record.
//!
//! The state commit comes first (`abandoned` in `meta.json`, a
//! `plan-abandoned` event): a runner of the plan sees it on its next read
//! of the state, stops its tasks (keeping their work, as for Ctrl-C) and
//! ends; nothing can claim a task of the plan any more. `abandon` waits for
//! the runners of this host that held tasks to end, then keeps what is left
//! and removes the worktrees and branches.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::tasks::{discard_task_checkout, preserve_tag, preserve_task, refuse_if_finished};
use super::workspace;
use crate::error::after_commit;
use crate::git::Repo;
use crate::state::{self, names, store, transition, Event, TaskStatus};

pub struct AbandonReport {
    pub removed_branches: usize,
    /// Every ref this abandonment kept work in (the runners' too).
    pub preserved: Vec<String>,
    pub state: git2::Oid,
    /// Runners still running when `abandon` stopped waiting for them.
    pub still_running: Vec<u32>,
}

/// How long `abandon` waits for a runner to stop its tasks.
const RUNNER_GRACE: Duration = Duration::from_secs(60);

pub fn abandon(repo: &Repo, plan: &str) -> Result<AbandonReport> {
    let snap = store::load(repo, plan)?;
    refuse_if_finished(&snap)?;
    let kept_before: BTreeSet<String> = preserved_refs(repo, plan)?;
    let tasks: Vec<String> = snap.plan.tasks().map(|(_, t)| t.id.clone()).collect();
    super::tasks::refuse_foreign_checkouts(repo, plan, &tasks)?;
    // What is not running is kept now; a running task's runner keeps it.
    let tag = preserve_tag("abandon");
    let mut preserved = Vec::new();
    for id in &tasks {
        if snap.task_status(id)? != TaskStatus::Running {
            preserved.extend(preserve_task(repo, plan, id, &tag, snap.state.work.oid())?);
        }
    }
    let mut runners = Vec::new();
    let ((), after) = store::transact(repo, plan, |s, change| {
        refuse_if_finished(s)?;
        runners.clear();
        change.state.abandoned = true;
        for (id, t) in s.all_tasks()? {
            if t.state() == TaskStatus::Running {
                if let Some(c) = t.claim().filter(|c| !c.manual) {
                    // A claim made through a remote is judged by its
                    // lease, never by pid: another clone's runner (another
                    // machine that shares this host name) is not waited for.
                    let elsewhere = c
                        .lease
                        .as_ref()
                        .is_some_and(|l| l.machine != super::remote::machine(repo));
                    if c.host == crate::process::hostname() && !elsewhere {
                        runners.push((c.pid, c.proc_start));
                    }
                }
            } else if t.worktree().is_some() {
                change.put_task(&id, transition::forget_worktree(&t));
            }
        }
        change.event = Some(Event::PlanAbandoned {
            preserved: preserved.clone(),
            at: state::now(),
        });
        Ok(())
    })
    .inspect_err(|_| super::tasks::unpreserve(repo, plan, snap.commit, &preserved))?;
    let subject = format!("plan {plan}: abandoned");
    // The runners stop their tasks and end: wait for them, then clean up.
    let deadline = Instant::now() + RUNNER_GRACE;
    runners.sort_unstable();
    runners.dedup();
    let still_running: Vec<u32> = loop {
        let alive: Vec<u32> = runners
            .iter()
            .filter(|(pid, start)| crate::process::is_alive(*pid, *start))
            .map(|(pid, _)| *pid)
            .collect();
        if alive.is_empty() || Instant::now() >= deadline {
            break alive;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let work = store::load(repo, plan)
        .map_err(|e| after_commit(e, &subject))?
        .state
        .work
        .oid();
    let tag = preserve_tag("abandon");
    let mut removed = 0;
    let held = super::tasks::Held::of(repo, plan).map_err(|e| after_commit(e, &subject))?;
    for id in &tasks {
        preserve_task(repo, plan, id, &tag, work).map_err(|e| after_commit(e, &subject))?;
        if repo.ref_target(&names::task_branch(plan, id))?.is_some() {
            removed += 1;
        }
        discard_task_checkout(repo, plan, id, &held).map_err(|e| after_commit(e, &subject))?;
    }
    workspace::drain_pool(repo, plan).map_err(|e| after_commit(e, &subject))?;
    let _ = std::fs::remove_dir_all(workspace::task_files_dir(repo, plan));
    let _ = std::fs::remove_dir(workspace::plan_worktrees(repo, plan));
    let preserved = preserved_refs(repo, plan)?
        .into_iter()
        .filter(|r| !kept_before.contains(r))
        .collect();
    Ok(AbandonReport {
        removed_branches: removed,
        preserved,
        state: after.commit,
        still_running,
    })
}

/// Every ref under `refs/orch/<plan>/preserved/`.
fn preserved_refs(repo: &Repo, plan: &str) -> Result<BTreeSet<String>> {
    Ok(repo
        .refs_under(&names::preserved(plan, ""))?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}
