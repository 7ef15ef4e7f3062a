//! What to do about a failed task: the cheapest recovery that is right for
//! why it failed (issue 23). A run that failed for a reason that may not
//! recur (a non-zero exit, a timeout, a signal, a review's rejection) is
//! retried in place with `task retry`, which keeps its work and tells its
//! agent why; a task that overran its `files` would overrun again, so its
//! work is fixed in its worktree and landed with `task done`; only a task
//! whose worktree is gone is reset, since only then is there no work to
//! keep. The commands render [`Recovery::hint`]; this module decides.

use std::path::Path;

/// The reason a landing gives a task that changed paths outside its files.
pub const OUT_OF_SCOPE: &str = "changed paths outside its files";

/// The recovery a failure calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// `git orch task retry ID`: run it again where it failed.
    Retry,
    /// Fix its work in its worktree, then `git orch task done ID`.
    FixInPlace,
    /// `git orch task reset ID`: its work cannot be kept (no worktree).
    Reset,
}

impl Recovery {
    /// The recovery for a task that failed for `reason`, whose worktree
    /// is still there or not.
    pub fn of(reason: &str, worktree_exists: bool) -> Recovery {
        if !worktree_exists {
            Recovery::Reset
        } else if reason.starts_with(OUT_OF_SCOPE) {
            Recovery::FixInPlace
        } else {
            Recovery::Retry
        }
    }

    /// One sentence naming the commands, for a `hint:` or a report line.
    pub fn hint(self, id: &str, reason: &str, worktree: &Path) -> String {
        let at = worktree.display();
        match self {
            Recovery::Retry => {
                let longer = if reason.starts_with("timed out") {
                    " (if it needs longer, raise its `timeout` in a new plan and reset it instead)"
                } else {
                    ""
                };
                format!(
                    "`git orch task retry {id}` runs it again in its worktree, its work kept and why it failed in its brief{longer}; or fix it in {at} and `git orch task done {id}`"
                )
            }
            Recovery::FixInPlace => format!(
                "a retry would overrun again: in {at}, undo the changes outside its `files`, then `git orch task done {id}` (or widen `files` in a new plan)"
            ),
            Recovery::Reset => format!(
                "its worktree is gone: `git orch task reset {id}` then `git orch run` starts it over"
            ),
        }
    }
}

/// The command that prints the latest log of task `id`.
pub fn log_command(plan: &str, id: &str) -> String {
    format!("git orch log {plan} {id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_gets_its_cheapest_recovery() {
        assert_eq!(Recovery::of("exit code 3", true), Recovery::Retry);
        assert_eq!(Recovery::of("timed out after 1s", true), Recovery::Retry);
        assert_eq!(
            Recovery::of("changed paths outside its files: x", true),
            Recovery::FixInPlace
        );
        assert_eq!(Recovery::of("exit code 3", false), Recovery::Reset);
        let p = Path::new("/w");
        assert!(Recovery::Retry
            .hint("a", "timed out after 1s", p)
            .contains("timeout"));
        assert!(!Recovery::FixInPlace
            .hint("a", OUT_OF_SCOPE, p)
            .contains("task retry"));
    }
}
