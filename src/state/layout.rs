//! Where each record lives in the state tree (format 2). One small record
//! per task and per phase, so a state change rewrites only what it changes
//! and the trees above it; tasks fan out over two levels of 16 so no tree a
//! change rewrites grows with the plan:
//!
//! ```text
//! meta.json                      plan-level fields, rollbacks, the index of active tasks
//! plan.json                      the plan as started (immutable)
//! phases/<phase>.json            checkpoint and latest gate results
//! tasks/<h>/<h>/<task>.json      the task's record (beside its directory, so
//!                                reading every record reads no directory)
//! tasks/<h>/<h>/<task>/<n>.log   the log of attempt n
//! tasks/<h>/<h>/<task>/handoff.md
//! logs/gates/<commit>/<gate>.log gate logs
//! logs/fixes/<phase>/<n>.log     fix-forward attempt n's log
//! cache/gates/<tree>/<key>.json  the gate cache
//! ```

pub const META_FILE: &str = "meta.json";
pub const PLAN_FILE: &str = "plan.json";
pub const PHASES_DIR: &str = "phases";
pub const TASKS_DIR: &str = "tasks";
/// Format 1 (git-orch 0.1): the whole state in one file.
pub const V1_STATE_FILE: &str = "state.json";
pub const HANDOFF_FILE: &str = "handoff.md";

/// The two hex digits a task id fans out by (FNV-1a of the id: stable
/// across versions and machines).
pub fn fan(id: &str) -> (char, char) {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let hex = |n: u32| char::from_digit(n & 0xf, 16).unwrap_or('0');
    (hex(h >> 4), hex(h))
}

/// `tasks/<h>/<h>/<id>`
pub fn task_dir(id: &str) -> String {
    let (a, b) = fan(id);
    format!("{TASKS_DIR}/{a}/{b}/{id}")
}

pub fn task_record(id: &str) -> String {
    format!("{}.json", task_dir(id))
}

pub fn task_log(id: &str, attempt: u32) -> String {
    format!("{}/{attempt}.log", task_dir(id))
}

pub fn handoff(id: &str) -> String {
    format!("{}/{HANDOFF_FILE}", task_dir(id))
}

/// Where format 1 kept a task's handoff note.
pub fn v1_handoff(id: &str) -> String {
    format!("handoff/{id}.md")
}

/// `logs/fixes/<phase>/<n>.log`: the log of fix-forward attempt n.
pub fn fix_log(phase: &str, n: u32) -> String {
    format!("logs/fixes/{phase}/{n}.log")
}

pub fn phase_record(id: &str) -> String {
    format!("{PHASES_DIR}/{id}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fan_out_is_stable_and_spreads() {
        assert_eq!(task_dir("schema"), task_dir("schema"));
        let mut buckets = std::collections::HashSet::new();
        for i in 0..1000 {
            buckets.insert(fan(&format!("t{i}")));
        }
        assert!(buckets.len() > 200, "{} buckets", buckets.len());
    }
}
