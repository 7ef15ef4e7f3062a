//! The work branch is a branch: a person may commit on `orch/<plan>/work`
//! by hand, between runs or while a task runs. A commit that fast-forwards
//! the branch from where the plan's state says it is is adopted as a
//! landing of its own (a `work-adopted` event naming the commit and the
//! files it changed), so the next task lands on top of it, and one that
//! touches the same lines conflicts instead of replacing it. Anything else
//! on the branch (a rewrite, a reset) is not adopted: reconcile keeps it
//! under `preserved/repair/…` and moves the branch back, as before.

use anyhow::Result;
use git2::Oid;

use crate::git::Repo;
use crate::state::{self, event::Event, names, store, AdoptedCommit};

/// A hand commit that was adopted.
#[derive(Debug, Clone, PartialEq)]
pub struct Adopted {
    pub from: Oid,
    pub commit: Oid,
    pub changed: Vec<String>,
}

/// Adopts the work branch's head when it fast-forwards the state's work
/// commit; `None` when there is nothing to adopt (the branch is where the
/// state says, behind it, rewritten, or the plan is over).
pub fn adopt_hand_commits(repo: &Repo, plan: &str) -> Result<Option<Adopted>> {
    let work_ref = names::work(plan);
    // A cheap look first: most of the time the branch is where it should be.
    let snap = store::load(repo, plan)?;
    if adoptable(repo, &snap, &work_ref)?.is_none() {
        return Ok(None);
    }
    let (adopted, _) = store::transact(repo, plan, |snap, change| {
        let Some(head) = adoptable(repo, snap, &work_ref)? else {
            return Ok(None);
        };
        let from = snap.state.work.oid();
        let changed = repo.changed_paths(from, head)?;
        let at = state::now();
        change.state.work = head.into();
        change.state.adopted.push(AdoptedCommit {
            commit: head.into(),
            changed: changed.clone(),
            at,
        });
        change.event = Some(Event::WorkAdopted {
            commit: head.to_string(),
            from: from.to_string(),
            changed: changed.clone(),
            at,
        });
        Ok(Some(Adopted {
            from,
            commit: head,
            changed,
        }))
    })?;
    Ok(adopted)
}

/// The work branch's head, when it is a commit that strictly
/// fast-forwards the work commit of `snap` on a plan still going.
fn adoptable(repo: &Repo, snap: &store::Snapshot, work_ref: &str) -> Result<Option<Oid>> {
    if snap.state.finished || snap.state.abandoned {
        return Ok(None);
    }
    let from = snap.state.work.oid();
    let Some(head) = repo.ref_target(work_ref)? else {
        return Ok(None);
    };
    if head == from || repo.git.find_commit(head).is_err() || !repo.is_ancestor(from, head) {
        return Ok(None);
    }
    // A rollback moves the work branch back after its state commit: if it
    // was interrupted in between, the branch still holds the work it
    // discarded. That is git-orch's own, not a person's: reconcile moves
    // the branch back (keeping it in a ref), as it always did.
    for rollback in &snap.state.rollbacks {
        let before = store::load_at(repo, &snap.plan_name, rollback.before.oid())?;
        let discarded = before.state.work.oid();
        if repo.is_ancestor(head, discarded) || repo.is_ancestor(discarded, head) {
            return Ok(None);
        }
    }
    Ok(Some(head))
}
