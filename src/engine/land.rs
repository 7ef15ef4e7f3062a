//! Landing a finished task on the work branch: the scope check, then the
//! plan's merge strategy, computed from objects alone. Nothing here moves a
//! ref; the caller commits the result to the state branch and the work
//! branch follows, so a conflict leaves the work branch untouched.

use anyhow::{anyhow, Result};
use git2::Oid;

use crate::git::{paths_of, Repo, TreeChange, TreeMerge, MODE_GITLINK};
use crate::plan::{MergeStrategy, Plan, Scope, Task};

#[derive(Debug)]
pub enum Landing {
    /// The new work-branch head.
    Landed {
        commit: Oid,
        changed: Vec<String>,
    },
    /// The task changed nothing: done, the work branch stays.
    Empty,
    Conflict {
        files: Vec<String>,
    },
    OutOfScope {
        paths: Vec<String>,
    },
}

/// Computes how `task` (branch head `head`, started from `base`) lands on
/// `work`. Writes objects only.
///
/// The scope is judged on exactly what the landing changes on the work
/// branch (the landed tree against `work`'s), whatever the strategy: a task
/// head that merges other tasks' heads cannot revert their files through a
/// merge base the check did not see. Modes count: an executable bit or a
/// file turned into a link is a change of that path.
pub fn land(
    repo: &Repo,
    plan: &Plan,
    task: &Task,
    work: Oid,
    base: Oid,
    head: Oid,
) -> Result<Landing> {
    if head == base || repo.is_ancestor(head, work) {
        return Ok(Landing::Empty);
    }
    let title = task.title.as_deref().unwrap_or(&task.id);
    let phase = plan.task(&task.id).map_or("", |(p, _)| p.id.as_str());
    let trailer = format!(
        "\n\nOrch-Plan: {}\nOrch-Phase: {phase}\nOrch-Task: {}\n",
        plan.name, task.id
    );
    // The landed tree, and for a rebase the replayed commits (objects only;
    // they stay unreferenced when the check below refuses them).
    let (tree, rebased) = match plan.defaults.merge {
        MergeStrategy::Merge | MergeStrategy::Squash => match repo.merge_tree(work, head, None)? {
            TreeMerge::Clean(tree) => (tree, None),
            TreeMerge::Conflict(files) => return conflict(repo, task, work, base, head, files),
        },
        MergeStrategy::Rebase => {
            let mut tip = work;
            for commit in repo.commits_between(base, head)? {
                let original = repo.git.find_commit(commit)?;
                let parent = original.parent_id(0)?;
                let tree = match repo.merge_tree(tip, commit, Some(parent))? {
                    TreeMerge::Clean(tree) => tree,
                    TreeMerge::Conflict(files) => {
                        return conflict(repo, task, work, base, head, files)
                    }
                };
                let message = original.message().unwrap_or("").to_string();
                tip = repo.write_commit(tree, &[tip], &message, Some(&original.author()))?;
            }
            (repo.git.find_commit(tip)?.tree_id(), Some(tip))
        }
    };
    let work_tree = repo.git.find_commit(work)?.tree_id();
    if tree == work_tree {
        return Ok(Landing::Empty);
    }
    let changes = repo.tree_changes(work_tree, tree)?;
    refuse_nested_repositories(task, &changes)?;
    let changed = paths_of(&changes);
    let outside = outside_scope(task, &changed)?;
    if !outside.is_empty() {
        return Ok(Landing::OutOfScope { paths: outside });
    }
    let commit = match (plan.defaults.merge, rebased) {
        (_, Some(tip)) => tip,
        (MergeStrategy::Merge, None) => {
            let message = format!("orch: land task {}: {title}{trailer}", task.id);
            repo.write_commit(tree, &[work, head], &message, None)?
        }
        (_, None) => {
            let message = format!("{title}{trailer}");
            repo.write_commit(tree, &[work], &message, None)?
        }
    };
    Ok(Landing::Landed { commit, changed })
}

/// The paths of `changed` that `task`'s `files` do not cover (none when it
/// declares no scope).
fn outside_scope(task: &Task, changed: &[String]) -> Result<Vec<String>> {
    if task.files.is_empty() {
        return Ok(Vec::new());
    }
    let scope = Scope::new(&task.files).map_err(anyhow::Error::msg)?;
    Ok(changed
        .iter()
        .filter(|p| !scope.matches(p))
        .cloned()
        .collect())
}

/// A landing that conflicts is still a scope violation when the task's own
/// change (from where its branch last met the work branch, so a task that
/// merged the work branch in is not blamed for other tasks' files) leaves
/// its scope: that is the more useful verdict, and it keeps the work branch.
fn conflict(
    repo: &Repo,
    task: &Task,
    work: Oid,
    base: Oid,
    head: Oid,
    files: Vec<String>,
) -> Result<Landing> {
    let since = repo.git.merge_base(work, head).unwrap_or(base);
    let outside = outside_scope(task, &repo.changed_paths(since, head)?)?;
    if !outside.is_empty() {
        return Ok(Landing::OutOfScope { paths: outside });
    }
    Ok(Landing::Conflict { files })
}

/// A `git init` or `git clone` inside a task's worktree is committed by
/// `git add` as a gitlink: a commit id of a repository that is not this
/// one, with none of its files. `commit_all` refuses to commit one; this
/// catches one the task committed itself. Landing it would lose the files
/// once the worktree goes, so the task fails instead, naming it; its
/// worktree keeps the repository. (A gitlink that was one already, a
/// submodule bump, lands.)
fn refuse_nested_repositories(task: &Task, changes: &[TreeChange]) -> Result<()> {
    let nested: Vec<&str> = changes
        .iter()
        .filter(|c| c.new_mode == Some(MODE_GITLINK) && c.old_mode != Some(MODE_GITLINK))
        .map(|c| c.path.as_str())
        .collect();
    if nested.is_empty() {
        return Ok(());
    }
    let list = nested
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(anyhow!(
        "task `{}` committed a git repository of its own at {list} (a `git init` or \
         `git clone` in its worktree) as a gitlink, without its files, so it cannot land; \
         its worktree keeps it",
        task.id
    ))
}
