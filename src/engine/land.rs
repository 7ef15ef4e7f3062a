//! Landing a finished task on the work branch: the scope check, then the
//! plan's merge strategy, computed from objects alone. Nothing here moves a
//! ref; the caller commits the result to the state branch and the work
//! branch follows, so a conflict leaves the work branch untouched.

use anyhow::Result;
use git2::Oid;

use crate::git::{Repo, TreeMerge};
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
    // What the task itself changed: from where its branch last met the work
    // branch, so a task that merged the work branch in (to resolve a
    // conflict) is not blamed for the other tasks' files.
    let since = repo.git.merge_base(work, head).unwrap_or(base);
    let changed = repo.changed_paths(since, head)?;
    if changed.is_empty() {
        return Ok(Landing::Empty);
    }
    if !task.files.is_empty() {
        let scope = Scope::new(&task.files).map_err(anyhow::Error::msg)?;
        let outside: Vec<String> = changed
            .iter()
            .filter(|p| !scope.matches(p))
            .cloned()
            .collect();
        if !outside.is_empty() {
            return Ok(Landing::OutOfScope { paths: outside });
        }
    }
    let title = task.title.as_deref().unwrap_or(&task.id);
    let phase = plan.task(&task.id).map_or("", |(p, _)| p.id.as_str());
    let trailer = format!(
        "\n\nOrch-Plan: {}\nOrch-Phase: {phase}\nOrch-Task: {}\n",
        plan.name, task.id
    );
    let commit = match plan.defaults.merge {
        MergeStrategy::Merge | MergeStrategy::Squash => {
            let tree = match repo.merge_tree(work, head, None)? {
                TreeMerge::Clean(tree) => tree,
                TreeMerge::Conflict(files) => return Ok(Landing::Conflict { files }),
            };
            if plan.defaults.merge == MergeStrategy::Merge {
                let message = format!("orch: land task {}: {title}{trailer}", task.id);
                repo.write_commit(tree, &[work, head], &message, None)?
            } else {
                let message = format!("{title}{trailer}");
                repo.write_commit(tree, &[work], &message, None)?
            }
        }
        MergeStrategy::Rebase => {
            let mut tip = work;
            for commit in repo.commits_between(base, head)? {
                let original = repo.git.find_commit(commit)?;
                let parent = original.parent_id(0)?;
                let tree = match repo.merge_tree(tip, commit, Some(parent))? {
                    TreeMerge::Clean(tree) => tree,
                    TreeMerge::Conflict(files) => return Ok(Landing::Conflict { files }),
                };
                let message = original.message().unwrap_or("").to_string();
                tip = repo.write_commit(tree, &[tip], &message, Some(&original.author()))?;
            }
            tip
        }
    };
    Ok(Landing::Landed { commit, changed })
}
