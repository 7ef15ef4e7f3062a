//! A task's change: what its branch holds against the commit its attempt
//! started from, the diff that landing it merges (`git orch task diff`).
//! Work left uncommitted in its worktree is not part of it until `task
//! done` commits it, so it is only named.

use std::path::PathBuf;

use anyhow::Result;
use git2::Oid;

use super::{tasks, workspace};
use crate::error::refuse_with_hint;
use crate::git::Repo;
use crate::state::{names, Snapshot, TaskStatus};

/// The two ends of a task's change, and its worktree when that has
/// uncommitted changes.
pub struct Change {
    pub base: Oid,
    pub head: Oid,
    pub uncommitted_in: Option<PathBuf>,
}

/// The change of task `id`: refused (exit 2) for an unknown task or one
/// that has not started.
pub fn of_task(repo: &Repo, snap: &Snapshot, id: &str) -> Result<Change> {
    let plan = &snap.plan_name;
    tasks::find_task(snap, id)?;
    let t = snap.task(id)?;
    let Some(base) = t.base() else {
        return Err(refuse_with_hint(
            format!(
                "task `{id}` is {} and has no change yet",
                t.state().as_str()
            ),
            format!("it has one once started: `git orch task start {id}` or `git orch run`"),
        ));
    };
    let branch = repo.ref_target(&names::task_branch(plan, id))?;
    let Some(head) = branch.or_else(|| t.head().map(|h| h.oid())) else {
        return Err(refuse_with_hint(
            format!("task `{id}` has no branch and no recorded head to diff"),
            format!("see `git orch status {plan}`"),
        ));
    };
    let open = matches!(
        t.state(),
        TaskStatus::Running | TaskStatus::Failed | TaskStatus::Conflict
    );
    let worktree = t
        .worktree()
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace::task_worktree(repo, plan, id));
    let dirty = open
        && worktree.join(".git").exists()
        && repo
            .git_in(&worktree, &["status", "--porcelain"])
            .is_ok_and(|s| !s.trim().is_empty());
    Ok(Change {
        base: base.oid(),
        head,
        uncommitted_in: dirty.then_some(worktree),
    })
}
