//! What each state commit did, as data. Every commit on the state branch
//! carries one [`Event`] in an `Orch-Event:` trailer (one line of JSON); its
//! subject line is rendered from the event, so `git log` reads as the
//! history while `log`, `report` and `status` read the event and never
//! parse the prose.

use serde::{Deserialize, Serialize};

/// The trailer key. The value is the event as one line of JSON.
pub const TRAILER: &str = "Orch-Event";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    PlanStarted {
        base: String,
        at: f64,
    },
    /// The state was rewritten from an older format (`from`) to this one.
    StateMigrated {
        from: u32,
        at: f64,
    },
    TaskClaimed {
        task: String,
        attempt: u32,
        manual: bool,
        /// A failed task taken again in the worktree it failed in (`task retry`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        retry: bool,
        /// The agent of `[agents]` the attempt runs with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        at: f64,
    },
    TaskLanded {
        task: String,
        attempt: u32,
        /// The work-branch commit; `None` when the task changed nothing.
        commit: Option<String>,
        #[serde(default)]
        changed: Vec<String>,
        log: Option<String>,
        at: f64,
    },
    TaskConflict {
        task: String,
        attempt: u32,
        files: Vec<String>,
        log: Option<String>,
        at: f64,
    },
    TaskFailed {
        task: String,
        attempt: u32,
        reason: String,
        /// The paths outside its scope, for a scope violation.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        scope: Vec<String>,
        log: Option<String>,
        at: f64,
    },
    /// Back to pending before any work was done (its worktree could not be made).
    TaskReleased {
        task: String,
        attempt: u32,
        reason: String,
        at: f64,
    },
    /// Back to pending because its run was stopped (a signal, a closed output).
    TaskInterrupted {
        task: String,
        attempt: u32,
        reason: String,
        log: Option<String>,
        at: f64,
    },
    /// Its agent hit a usage limit: it waits, worktree kept, until `until`.
    TaskParked {
        task: String,
        attempt: u32,
        /// The agent that hit its limit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        /// When it may run again (seconds since the epoch).
        until: f64,
        reason: String,
        log: Option<String>,
        at: f64,
    },
    /// An attempt's usage file, as recorded on the task (the ledger).
    TaskUsage {
        task: String,
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tokens_in: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tokens_out: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// Why the file was not read.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tokens_cached: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        turns: Option<u32>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        denied: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        at: f64,
    },
    /// Back to pending because the runner that claimed it is gone.
    TaskRecovered {
        task: String,
        attempt: u32,
        reason: String,
        at: f64,
    },
    TaskReset {
        task: String,
        at: f64,
    },
    TaskSkipped {
        task: String,
        at: f64,
    },
    TaskReopened {
        task: String,
        at: f64,
    },
    /// Gates run by `git orch gate` (not a checkpoint), recorded for their logs and cache.
    GatesRan {
        commit: String,
        gates: Vec<GateVerdict>,
        at: f64,
    },
    PhaseCheckpointed {
        phase: String,
        commit: String,
        gates: Vec<GateVerdict>,
        at: f64,
    },
    PhaseGatesFailed {
        phase: String,
        commit: String,
        gates: Vec<GateVerdict>,
        at: f64,
    },
    RolledBack {
        to: String,
        rollback: u64,
        work: String,
        pending: usize,
        at: f64,
    },
    RollbackUndone {
        to: String,
        rollback: u64,
        work: String,
        at: f64,
    },
    PlanFinished {
        at: f64,
    },
    /// `plan amend`: the plan became a new version (`from`, `to`: the
    /// blob ids of `plan.json`), with what changed.
    PlanAmended {
        from: String,
        to: String,
        changes: Vec<String>,
        at: f64,
    },
    /// `abandon`: the plan stopped unfinished; every task's work is kept
    /// in the `preserved` refs.
    PlanAbandoned {
        preserved: Vec<String>,
        at: f64,
    },
    /// Its work is committed at `head` and waits for `reviewer` (issue 11).
    TaskReview {
        task: String,
        attempt: u32,
        head: String,
        reviewer: String,
        at: f64,
    },
    /// Its reviewer approved `head`; its landing follows.
    TaskApproved {
        task: String,
        attempt: u32,
        reviewer: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comments: Option<String>,
        at: f64,
    },
    /// Its reviewer rejected it: failed, retried in its worktree with the
    /// comments in its brief while it has attempts left.
    TaskRejected {
        task: String,
        attempt: u32,
        reviewer: String,
        comments: String,
        at: f64,
    },
    /// Fix-forward: fix task `fix` (attempt `attempt`) ran by `agent` after
    /// the phase's gates failed; `landed` is the work commit it made.
    PhaseFix {
        phase: String,
        fix: String,
        attempt: u32,
        agent: String,
        landed: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        log: Option<String>,
        at: f64,
    },
    /// A commit a person made on the work branch that fast-forwarded it
    /// (from `from` to `commit`), adopted as a landing of its own: the work
    /// branch is a branch (issue 23). `changed` are the paths it changed.
    WorkAdopted {
        commit: String,
        from: String,
        #[serde(default)]
        changed: Vec<String>,
        at: f64,
    },
}

/// Free text (a reason a person or a task gave) made fit for a subject
/// line: its first line, no control characters, at most 100 characters.
fn one_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    let mut out: String = first
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(100)
        .collect();
    if first.chars().count() > 100 || text.lines().nth(1).is_some() {
        out.push('…');
    }
    out
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateVerdict {
    pub name: String,
    pub passed: bool,
    #[serde(default)]
    pub cached: bool,
}

impl Event {
    /// When it happened, in seconds since the epoch.
    pub fn at(&self) -> f64 {
        match self {
            Event::PlanStarted { at, .. }
            | Event::StateMigrated { at, .. }
            | Event::TaskClaimed { at, .. }
            | Event::TaskLanded { at, .. }
            | Event::TaskConflict { at, .. }
            | Event::TaskFailed { at, .. }
            | Event::TaskReleased { at, .. }
            | Event::TaskInterrupted { at, .. }
            | Event::TaskParked { at, .. }
            | Event::TaskUsage { at, .. }
            | Event::TaskRecovered { at, .. }
            | Event::TaskReset { at, .. }
            | Event::TaskSkipped { at, .. }
            | Event::TaskReopened { at, .. }
            | Event::GatesRan { at, .. }
            | Event::PhaseCheckpointed { at, .. }
            | Event::PhaseGatesFailed { at, .. }
            | Event::RolledBack { at, .. }
            | Event::RollbackUndone { at, .. }
            | Event::TaskReview { at, .. }
            | Event::TaskApproved { at, .. }
            | Event::TaskRejected { at, .. }
            | Event::PhaseFix { at, .. }
            | Event::WorkAdopted { at, .. }
            | Event::PlanFinished { at }
            | Event::PlanAmended { at, .. }
            | Event::PlanAbandoned { at, .. } => *at,
        }
    }

    /// The task it is about, for task events.
    pub fn task(&self) -> Option<&str> {
        match self {
            Event::TaskClaimed { task, .. }
            | Event::TaskLanded { task, .. }
            | Event::TaskConflict { task, .. }
            | Event::TaskFailed { task, .. }
            | Event::TaskReleased { task, .. }
            | Event::TaskInterrupted { task, .. }
            | Event::TaskParked { task, .. }
            | Event::TaskUsage { task, .. }
            | Event::TaskRecovered { task, .. }
            | Event::TaskReset { task, .. }
            | Event::TaskSkipped { task, .. }
            | Event::TaskReopened { task, .. }
            | Event::TaskReview { task, .. }
            | Event::TaskApproved { task, .. }
            | Event::TaskRejected { task, .. } => Some(task),
            _ => None,
        }
    }

    /// The kebab-case kind, as in the JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::PlanStarted { .. } => "plan-started",
            Event::StateMigrated { .. } => "state-migrated",
            Event::TaskClaimed { .. } => "task-claimed",
            Event::TaskLanded { .. } => "task-landed",
            Event::TaskConflict { .. } => "task-conflict",
            Event::TaskFailed { .. } => "task-failed",
            Event::TaskReleased { .. } => "task-released",
            Event::TaskInterrupted { .. } => "task-interrupted",
            Event::TaskParked { .. } => "task-parked",
            Event::TaskUsage { .. } => "task-usage",
            Event::TaskRecovered { .. } => "task-recovered",
            Event::TaskReset { .. } => "task-reset",
            Event::TaskSkipped { .. } => "task-skipped",
            Event::TaskReopened { .. } => "task-reopened",
            Event::GatesRan { .. } => "gates-ran",
            Event::PhaseCheckpointed { .. } => "phase-checkpointed",
            Event::PhaseGatesFailed { .. } => "phase-gates-failed",
            Event::RolledBack { .. } => "rolled-back",
            Event::RollbackUndone { .. } => "rollback-undone",
            Event::PlanFinished { .. } => "plan-finished",
            Event::PlanAmended { .. } => "plan-amended",
            Event::PlanAbandoned { .. } => "plan-abandoned",
            Event::TaskReview { .. } => "task-review",
            Event::TaskApproved { .. } => "task-approved",
            Event::TaskRejected { .. } => "task-rejected",
            Event::PhaseFix { .. } => "phase-fix",
            Event::WorkAdopted { .. } => "work-adopted",
        }
    }

    /// The commit subject: the one line `git log orch/<plan>/state` shows.
    pub fn subject(&self, plan: &str) -> String {
        let short = |c: &str| super::ids::short_text(c).to_string();
        let verdicts = |gates: &[GateVerdict]| {
            if gates.is_empty() {
                return "no gates".to_string();
            }
            gates
                .iter()
                .map(|g| {
                    let verdict = match (g.cached, g.passed) {
                        (true, _) => "cached",
                        (false, true) => "passed",
                        (false, false) => "failed",
                    };
                    format!("{} {verdict}", g.name)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Event::PlanStarted { base, .. } => {
                format!("plan {plan}: started at {}", short(base))
            }
            Event::StateMigrated { from, .. } => {
                format!(
                    "plan {plan}: state format {from} rewritten as {}",
                    super::STATE_VERSION
                )
            }
            Event::TaskClaimed {
                task,
                manual,
                retry,
                agent,
                ..
            } => format!(
                "task {task}: running{}{}{}",
                if *retry { " again in its worktree" } else { "" },
                if *manual { " (by hand)" } else { "" },
                agent
                    .as_ref()
                    .map_or(String::new(), |a| format!(" with agent {}", one_line(a)))
            ),
            Event::TaskLanded {
                task, commit: None, ..
            } => format!("task {task}: done (no changes)"),
            Event::TaskLanded { task, .. } => format!("task {task}: done"),
            Event::TaskConflict { task, .. } => format!("task {task}: conflict"),
            Event::TaskFailed { task, scope, .. } if !scope.is_empty() => {
                format!("task {task}: failed (scope violation)")
            }
            Event::TaskFailed { task, reason, .. } => {
                format!("task {task}: failed ({})", one_line(reason))
            }
            Event::TaskReleased { task, reason, .. } => {
                format!("task {task}: pending ({})", one_line(reason))
            }
            Event::TaskInterrupted { task, reason, .. } => {
                format!("task {task}: {}, pending again", one_line(reason))
            }
            Event::TaskParked { task, until, .. } => format!(
                "task {task}: parked until {} (usage limit)",
                crate::render::utc_time(*until)
            ),
            Event::TaskUsage {
                task,
                attempt,
                error: Some(_),
                ..
            } => format!("task {task}: usage file of attempt {attempt} not read"),
            Event::TaskUsage {
                task,
                attempt,
                tokens_in,
                tokens_out,
                cost_usd,
                denied,
                outcome,
                reason,
                ..
            } => {
                let mut line = format!(
                    "task {task}: attempt {attempt} used {} tokens in, {} out, ${:.4}",
                    tokens_in.unwrap_or(0),
                    tokens_out.unwrap_or(0),
                    cost_usd.unwrap_or(0.0)
                );
                if let Some(o) = outcome.as_deref().filter(|o| *o != "success") {
                    line += &format!("; {o}");
                    if let Some(r) = reason {
                        line += &format!(": {}", one_line(r));
                    }
                }
                if !denied.is_empty() {
                    line += &format!("; {} tool call(s) refused", denied.len());
                }
                line
            }
            Event::TaskRecovered { task, reason, .. } => {
                format!("task {task}: recovered ({})", one_line(reason))
            }
            Event::TaskReset { task, .. } => format!("task {task}: reset to pending"),
            Event::TaskSkipped { task, .. } => format!("task {task}: skipped"),
            Event::TaskReopened { task, .. } => format!("task {task}: reopened"),
            Event::GatesRan { commit, gates, .. } => {
                format!("gates on {}: {}", short(commit), verdicts(gates))
            }
            Event::PhaseCheckpointed { phase, commit, .. } => {
                format!("checkpoint {phase}: passed at {}", short(commit))
            }
            Event::PhaseGatesFailed { phase, gates, .. } => {
                let failed: Vec<&str> = gates
                    .iter()
                    .filter(|g| !g.passed)
                    .map(|g| g.name.as_str())
                    .collect();
                format!("checkpoint {phase}: failed (gate {})", failed.join(", "))
            }
            Event::RolledBack {
                to, work, pending, ..
            } => format!(
                "rollback to {to}: work at {}, {pending} task(s) pending again",
                short(work)
            ),
            Event::RollbackUndone { to, work, .. } => {
                format!("rollback to {to} undone: work at {}", short(work))
            }
            Event::PlanFinished { .. } => format!("plan {plan}: finished"),
            Event::PlanAmended { changes, .. } => {
                format!("plan {plan}: amended ({} change(s))", changes.len())
            }
            Event::PlanAbandoned { preserved, .. } => format!(
                "plan {plan}: abandoned ({} ref(s) preserved)",
                preserved.len()
            ),
            Event::TaskReview { task, reviewer, .. } => {
                format!("task {task}: in review ({})", one_line(reviewer))
            }
            Event::TaskApproved { task, reviewer, .. } => {
                format!("task {task}: approved ({})", one_line(reviewer))
            }
            Event::TaskRejected { task, comments, .. } => {
                format!("task {task}: rejected in review ({})", one_line(comments))
            }
            Event::PhaseFix {
                phase,
                fix,
                landed: Some(c),
                ..
            } => format!("fix {phase}: {fix} landed at {}", short(c)),
            Event::PhaseFix {
                phase, fix, reason, ..
            } => format!(
                "fix {phase}: {fix} failed ({})",
                one_line(reason.as_deref().unwrap_or("no change"))
            ),
            Event::WorkAdopted {
                commit, changed, ..
            } => format!(
                "work: commit {} made by hand adopted ({} file(s) changed)",
                short(commit),
                changed.len()
            ),
        }
    }

    /// The whole commit message: subject, blank line, trailer.
    pub fn message(&self, plan: &str) -> String {
        // Serialising a plain enum of strings and numbers cannot fail.
        let json = serde_json::to_string(self).unwrap_or_default();
        format!("{}\n\n{TRAILER}: {json}\n", self.subject(plan))
    }

    /// Reads the event of a commit message; `None` for a commit without one
    /// (made by git-orch 0.1, or not by git-orch at all).
    pub fn from_message(message: &str) -> Option<Event> {
        let prefix = format!("{TRAILER}: ");
        message
            .lines()
            .rev()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|json| serde_json::from_str(json).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_the_commit_message() {
        let events = vec![
            Event::PlanStarted {
                base: "0123456789abcdef".into(),
                at: 1.5,
            },
            Event::TaskClaimed {
                task: "a.b-c".into(),
                attempt: 2,
                manual: true,
                retry: false,
                agent: None,
                at: 3.0,
            },
            Event::TaskClaimed {
                task: "r".into(),
                attempt: 3,
                manual: false,
                retry: true,
                agent: Some("claude".into()),
                at: 3.5,
            },
            Event::TaskLanded {
                task: "x".into(),
                attempt: 1,
                commit: None,
                changed: vec![],
                log: Some("tasks/0/1/x/1.log".into()),
                at: 4.0,
            },
            Event::PhaseGatesFailed {
                phase: "p".into(),
                commit: "0123456789abcdef".into(),
                gates: vec![GateVerdict {
                    name: "unit".into(),
                    passed: false,
                    cached: false,
                }],
                at: 5.0,
            },
        ];
        for e in events {
            let message = e.message("plan");
            assert!(!message.lines().next().unwrap_or("").contains('{'));
            assert_eq!(Event::from_message(&message), Some(e));
        }
    }

    #[test]
    fn subjects_read_as_before() {
        let e = Event::TaskLanded {
            task: "schema".into(),
            attempt: 1,
            commit: Some("0123456789abcdef0123".into()),
            changed: vec![],
            log: None,
            at: 0.0,
        };
        assert_eq!(e.subject("p"), "task schema: done");
        assert_eq!(Event::from_message("task schema: done"), None);
        assert_eq!(Event::from_message("x\n\nOrch-Event: {not json"), None);
    }
}
