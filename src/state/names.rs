//! Every ref name git-orch uses, in one place (SPEC §2).

pub fn work(plan: &str) -> String {
    format!("refs/heads/orch/{plan}/work")
}

pub fn state(plan: &str) -> String {
    format!("refs/heads/orch/{plan}/state")
}

pub fn task_branch(plan: &str, task: &str) -> String {
    format!("refs/heads/orch/{plan}/tasks/{task}")
}

pub fn task_branch_prefix(plan: &str) -> String {
    format!("refs/heads/orch/{plan}/tasks/")
}

/// The checkpoint tag of a phase, or `start`.
pub fn checkpoint_tag(plan: &str, phase: &str) -> String {
    format!("refs/tags/orch/{plan}/{phase}")
}

pub fn tag_prefix(plan: &str) -> String {
    format!("refs/tags/orch/{plan}/")
}

/// Where discarded work is kept from garbage collection.
pub fn preserved(plan: &str, what: &str) -> String {
    format!("refs/orch/{plan}/preserved/{what}")
}

/// Drops `refs/heads/` or `refs/tags/` for display.
pub fn display(name: &str) -> &str {
    name.strip_prefix("refs/heads/")
        .or_else(|| name.strip_prefix("refs/tags/"))
        .unwrap_or(name)
}
