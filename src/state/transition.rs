//! Every way a task record changes, as pure functions from the record it
//! was to the record it becomes. The engine decides *when* (after the
//! landing, the claim, the preservation of a worktree); this module alone
//! decides *what*: which fields an attempt keeps, which go, what the
//! history (attempts, time spent, latest log) becomes. A move that makes
//! no sense from where the task is returns [`Wrong`] and changes nothing.

use std::fmt;

use super::ids::CommitId;
use super::model::{Claim, Ended, Now, TaskState, TaskStatus};

/// A move asked of a task that is somewhere it cannot make it from.
#[derive(Debug, Clone, PartialEq)]
pub struct Wrong {
    pub is: TaskStatus,
    pub wanted: &'static str,
}

impl fmt::Display for Wrong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} task cannot be {}", self.is.as_str(), self.wanted)
    }
}

impl std::error::Error for Wrong {}

impl Wrong {
    /// As the refusal of a command about task `id` (exit 2, nothing changed).
    pub fn about(self, id: &str) -> anyhow::Error {
        crate::error::refuse(format!(
            "task `{id}` is {}: it cannot be {}",
            self.is.as_str(),
            self.wanted
        ))
    }
}

fn wrong(t: &TaskState, wanted: &'static str) -> Wrong {
    Wrong {
        is: t.state(),
        wanted,
    }
}

/// Time spent so far plus `spent`.
fn add_time(t: &TaskState, spent: Option<f64>) -> Option<f64> {
    match (t.seconds, spent) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0).max(0.0)),
    }
}

/// The attempt that ends now, from a running or conflicting record.
fn ending(t: &TaskState, head: Option<CommitId>, at: f64, keep_worktree: bool) -> Ended {
    Ended {
        base: t.base(),
        head: head.or(t.head()),
        started_at: t.started_at(),
        ended_at: Some(at),
        worktree: keep_worktree
            .then(|| t.worktree().map(str::to_string))
            .flatten(),
    }
}

/// Pending → running: a new attempt from `base`, claimed by `claim`.
pub fn claim(
    t: &TaskState,
    base: CommitId,
    claim: Claim,
    worktree: String,
    at: f64,
) -> Result<TaskState, Wrong> {
    if t.state() != TaskStatus::Pending {
        return Err(wrong(t, "claimed"));
    }
    Ok(TaskState {
        by_hand: claim.manual,
        now: Now::Running {
            base,
            started_at: at,
            claim,
            worktree,
        },
        attempts: t.attempts + 1,
        ..t.clone()
    })
}

/// Failed → running again in the worktree it failed in (`task retry`): a
/// new attempt from the failed one's base, its work so far kept as it is.
pub fn retry(
    t: &TaskState,
    claim: Claim,
    base: CommitId,
    worktree: String,
    at: f64,
) -> Result<TaskState, Wrong> {
    let Now::Failed { attempt, .. } = &t.now else {
        return Err(wrong(t, "retried"));
    };
    Ok(TaskState {
        by_hand: claim.manual,
        now: Now::Running {
            base: attempt.base.unwrap_or(base),
            started_at: at,
            claim,
            worktree: attempt.worktree.clone().unwrap_or(worktree),
        },
        attempts: t.attempts + 1,
        ..t.clone()
    })
}

/// Running → parked: its agent hit a usage limit; the attempt ends, its
/// worktree (and what the agent left in it) stays for the next one, which
/// starts no earlier than `until`.
pub fn park(
    t: &TaskState,
    until: f64,
    reason: String,
    at: f64,
    spent: Option<f64>,
    log: Option<String>,
) -> Result<TaskState, Wrong> {
    if t.state() != TaskStatus::Running {
        return Err(wrong(t, "parked"));
    }
    Ok(TaskState {
        now: Now::Parked {
            attempt: ending(t, None, at, true),
            until,
            reason,
        },
        seconds: add_time(t, spent),
        log: log.or_else(|| t.log.clone()),
        parks: t.parks.saturating_add(1),
        ..t.clone()
    })
}

/// Parked → running again in the worktree it parked in: a new attempt
/// from the parked one's base, its work so far kept as it is.
pub fn wake(
    t: &TaskState,
    claim: Claim,
    base: CommitId,
    worktree: String,
    at: f64,
) -> Result<TaskState, Wrong> {
    let Now::Parked { attempt, .. } = &t.now else {
        return Err(wrong(t, "woken"));
    };
    Ok(TaskState {
        now: Now::Running {
            base: attempt.base.unwrap_or(base),
            started_at: at,
            claim,
            worktree: attempt.worktree.clone().unwrap_or(worktree),
        },
        attempts: t.attempts + 1,
        ..t.clone()
    })
}

/// Running → pending, the attempt not counted: nothing ran (its worktree
/// could not be made).
pub fn release(t: &TaskState) -> Result<TaskState, Wrong> {
    if t.state() != TaskStatus::Running {
        return Err(wrong(t, "released"));
    }
    Ok(TaskState {
        now: Now::Pending { reason: None },
        attempts: t.attempts.saturating_sub(1),
        ..t.clone()
    })
}

/// Running → pending with a reason (its runner died, its run was stopped);
/// `log` is the attempt's log when one was kept.
pub fn interrupt(t: &TaskState, reason: String, log: Option<String>) -> Result<TaskState, Wrong> {
    if t.state() != TaskStatus::Running {
        return Err(wrong(t, "interrupted"));
    }
    Ok(TaskState {
        now: Now::Pending {
            reason: Some(reason),
        },
        log: log.or_else(|| t.log.clone()),
        ..t.clone()
    })
}

/// Where a landing may start from: a running task, one in conflict, or a
/// failed one fixed in its worktree (the engine allows that by hand only).
fn lands_from(t: &TaskState) -> bool {
    matches!(
        t.state(),
        TaskStatus::Running | TaskStatus::Conflict | TaskStatus::Failed | TaskStatus::Review
    )
}

/// Running → review: its work is committed at `f.head` and waits for
/// `reviewer`; the worktree is kept, the claim goes (nobody runs it now).
/// By hand (`task done`), a conflict resolved or a failed task fixed in
/// its worktree is new work too, and goes to review the same way.
pub fn review(t: &TaskState, f: Finished, reviewer: String) -> Result<TaskState, Wrong> {
    if !matches!(
        t.state(),
        TaskStatus::Running | TaskStatus::Conflict | TaskStatus::Failed
    ) {
        return Err(wrong(t, "put in review"));
    }
    Ok(TaskState {
        now: Now::Review {
            attempt: ending(t, Some(f.head), f.at, true),
            reviewer,
        },
        seconds: add_time(t, f.spent),
        log: f.log.or_else(|| t.log.clone()),
        ..t.clone()
    })
}

/// Review → failed: its reviewer rejected it, with `reason` (the comments);
/// its worktree and head stay for the next attempt (`claim_retry`).
pub fn reject(t: &TaskState, reason: String, at: f64) -> Result<TaskState, Wrong> {
    let Now::Review { attempt, .. } = &t.now else {
        return Err(wrong(t, "rejected"));
    };
    Ok(TaskState {
        now: Now::Failed {
            attempt: Ended {
                ended_at: Some(at),
                ..attempt.clone()
            },
            reason,
        },
        ..t.clone()
    })
}

/// What one landing attempt brings: the task's head, the time it ran and
/// its log.
#[derive(Debug, Clone)]
pub struct Finished {
    pub head: CommitId,
    pub at: f64,
    pub spent: Option<f64>,
    pub log: Option<String>,
}

/// Running, conflict or failed (fixed by hand in its worktree) → done.
/// `landed` is the work-branch commit (`None`: it changed nothing); a
/// person's worktree is kept, a runner's is parked.
pub fn land(
    t: &TaskState,
    f: Finished,
    landed: Option<CommitId>,
    changed: Vec<String>,
    keep_worktree: bool,
) -> Result<TaskState, Wrong> {
    if !lands_from(t) {
        return Err(wrong(t, "landed"));
    }
    Ok(TaskState {
        now: Now::Done {
            attempt: ending(t, Some(f.head), f.at, keep_worktree),
            landed,
            changed,
        },
        seconds: add_time(t, f.spent),
        log: f.log.or_else(|| t.log.clone()),
        ..t.clone()
    })
}

/// Running or conflict → conflict: the landing conflicts; the worktree and
/// the claim stay, so the task can be resolved and landed again.
pub fn conflict(t: &TaskState, f: Finished, reason: String) -> Result<TaskState, Wrong> {
    if !lands_from(t) {
        return Err(wrong(t, "in conflict"));
    }
    Ok(TaskState {
        now: Now::Conflict {
            attempt: ending(t, Some(f.head), f.at, true),
            reason,
            claim: t.claim().cloned(),
        },
        seconds: add_time(t, f.spent),
        log: f.log.or_else(|| t.log.clone()),
        ..t.clone()
    })
}

/// Running or conflict → failed, its worktree kept for a look.
pub fn fail(
    t: &TaskState,
    reason: String,
    head: Option<CommitId>,
    at: f64,
    spent: Option<f64>,
    log: Option<String>,
) -> Result<TaskState, Wrong> {
    if !lands_from(t) {
        return Err(wrong(t, "failed"));
    }
    Ok(TaskState {
        now: Now::Failed {
            attempt: ending(t, head, at, true),
            reason,
        },
        seconds: add_time(t, spent),
        log: log.or_else(|| t.log.clone()),
        ..t.clone()
    })
}

/// The same record with one attempt's usage file noted (any place: the
/// ledger is history). A second note of the same attempt replaces the first.
pub fn note_usage(t: &TaskState, usage: super::model::Usage) -> TaskState {
    let mut t = t.clone();
    t.usage.retain(|u| u.attempt != usage.attempt);
    t.usage.push(usage);
    t
}

/// Back to pending for another attempt (reset, reopen, rollback): its
/// history stays, everything about the last attempt goes.
pub fn pending_again(t: &TaskState) -> TaskState {
    TaskState {
        now: Now::Pending { reason: None },
        parks: 0,
        ..t.clone()
    }
}

/// Back to pending with a note of why (a reset that discarded a failed
/// attempt says what failed and where its work is kept).
pub fn pending_because(t: &TaskState, reason: Option<String>) -> TaskState {
    TaskState {
        now: Now::Pending { reason },
        parks: 0,
        ..t.clone()
    }
}

/// Skipped: settled without landing; its history stays.
pub fn skip(t: &TaskState, reason: &str) -> TaskState {
    TaskState {
        now: Now::Skipped {
            reason: Some(reason.to_string()),
        },
        ..t.clone()
    }
}

/// The same record without a worktree (it went with a finish or a rollback).
pub fn forget_worktree(t: &TaskState) -> TaskState {
    let mut t = t.clone();
    match &mut t.now {
        Now::Done { attempt, .. }
        | Now::Failed { attempt, .. }
        | Now::Conflict { attempt, .. }
        | Now::Review { attempt, .. } => attempt.worktree = None,
        Now::Parked { attempt, .. } => attempt.worktree = None,
        Now::Pending { .. } | Now::Running { .. } | Now::Skipped { .. } => {}
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u8) -> CommitId {
        CommitId::parse(&format!("{n:02x}").repeat(20)).expect("id")
    }

    fn who(manual: bool) -> Claim {
        Claim {
            host: "h".into(),
            pid: 7,
            proc_start: Some(1),
            since: 0.0,
            manual,
            lease: None,
        }
    }

    #[derive(Debug, Clone)]
    enum Move {
        Claim(u8, bool),
        Release,
        Interrupt,
        Land(u8, bool, bool),
        Conflict(u8),
        Fail(bool),
        Park(u8),
        Wake(bool),
        PendingAgain,
        Skip,
        Forget,
        Review(u8),
        Reject,
    }

    fn a_move() -> impl Strategy<Value = Move> {
        prop_oneof![
            (any::<u8>(), any::<bool>()).prop_map(|(n, m)| Move::Claim(n, m)),
            Just(Move::Release),
            Just(Move::Interrupt),
            (any::<u8>(), any::<bool>(), any::<bool>()).prop_map(|(n, l, k)| Move::Land(n, l, k)),
            any::<u8>().prop_map(Move::Conflict),
            any::<bool>().prop_map(Move::Fail),
            any::<u8>().prop_map(Move::Park),
            any::<bool>().prop_map(Move::Wake),
            Just(Move::PendingAgain),
            Just(Move::Skip),
            Just(Move::Forget),
            any::<u8>().prop_map(Move::Review),
            Just(Move::Reject),
        ]
    }

    fn apply(t: &TaskState, m: &Move, at: f64) -> Result<TaskState, Wrong> {
        let done = |n: u8| Finished {
            head: id(n),
            at,
            spent: Some(1.5),
            log: Some(format!("log-{at}")),
        };
        match m {
            Move::Claim(n, manual) => claim(t, id(*n), who(*manual), "/wt".into(), at),
            Move::Release => release(t),
            Move::Interrupt => interrupt(t, "stopped".into(), None),
            Move::Land(n, empty, keep) => land(
                t,
                done(*n),
                (!empty).then(|| id(n.wrapping_add(1))),
                vec!["f".into()],
                *keep,
            ),
            Move::Conflict(n) => conflict(t, done(*n), "conflicts in f".into()),
            Move::Fail(with_head) => fail(
                t,
                "exit 1".into(),
                with_head.then(|| id(9)),
                at,
                Some(0.5),
                None,
            ),
            Move::Park(secs) => park(
                t,
                at + f64::from(*secs),
                "usage limit".into(),
                at,
                Some(0.25),
                Some(format!("log-{at}")),
            ),
            Move::Wake(manual) => wake(t, who(*manual), id(3), "/other".into(), at),
            Move::PendingAgain => Ok(pending_again(t)),
            Move::Skip => Ok(skip(t, "by hand")),
            Move::Forget => Ok(forget_worktree(t)),
            Move::Review(n) => review(t, done(*n), "manual".into()),
            Move::Reject => reject(t, "rejected in review: no".into(), at),
        }
    }

    proptest! {
        /// Any sequence of moves from a fresh task: a refused move changes
        /// nothing; attempts only grow, by one, on a claim; time spent never
        /// shrinks; each place holds what it must (a claim while running, a
        /// reason when failed or in conflict, a base once it ran); and every
        /// record reads back from its JSON as itself.
        #[test]
        fn records_change_only_as_the_transitions_say(moves in prop::collection::vec(a_move(), 1..40)) {
            let mut t = TaskState::pending();
            for (i, m) in moves.iter().enumerate() {
                let at = i as f64;
                match apply(&t, m, at) {
                    Err(w) => prop_assert_eq!(w.is, t.state()),
                    Ok(next) => {
                        let claimed = matches!(m, Move::Claim(..) | Move::Wake(..));
                        let released = matches!(m, Move::Release);
                        let expected_attempts = if claimed {
                            t.attempts + 1
                        } else if released {
                            t.attempts - 1
                        } else {
                            t.attempts
                        };
                        prop_assert_eq!(next.attempts, expected_attempts);
                        // Parks are counted, and forgotten when a person
                        // makes the task pending again.
                        let expected_parks = match m {
                            Move::Park(_) => t.parks + 1,
                            Move::PendingAgain => 0,
                            _ => t.parks,
                        };
                        prop_assert_eq!(next.parks, expected_parks);
                        prop_assert!(next.seconds.unwrap_or(0.0) >= t.seconds.unwrap_or(0.0));
                        match next.state() {
                            TaskStatus::Running => {
                                prop_assert!(next.claim().is_some());
                                prop_assert!(next.base().is_some());
                                prop_assert!(next.worktree().is_some());
                            }
                            TaskStatus::Failed | TaskStatus::Conflict => {
                                prop_assert!(next.reason().is_some());
                                prop_assert!(next.ended_at().is_some());
                            }
                            TaskStatus::Parked => {
                                // Parked keeps its worktree and says until when.
                                prop_assert!(next.reason().is_some());
                                prop_assert!(next.claim().is_none());
                                prop_assert!(next.parked_until().is_some());
                                if matches!(m, Move::Park(_)) {
                                    prop_assert!(next.worktree().is_some());
                                    prop_assert_eq!(next.worktree(), t.worktree());
                                    prop_assert!(next.parked_until().is_some_and(|u| u >= at));
                                }
                            }
                            TaskStatus::Done => {
                                prop_assert!(next.head().is_some());
                                prop_assert!(next.claim().is_none());
                            }
                            TaskStatus::Review => {
                                // What is reviewed is a committed head, in a kept worktree.
                                prop_assert!(next.head().is_some());
                                prop_assert!(next.claim().is_none());
                                // From an attempt, or from work redone by hand.
                                prop_assert!(matches!(
                                    t.state(),
                                    TaskStatus::Running
                                        | TaskStatus::Conflict
                                        | TaskStatus::Failed
                                        | TaskStatus::Review
                                ));
                            }
                            TaskStatus::Pending | TaskStatus::Skipped => {
                                prop_assert!(next.claim().is_none());
                                prop_assert!(next.worktree().is_none());
                            }
                        }
                        if next.state() != TaskStatus::Pending || released {
                            // Anything but a fresh pending record keeps its history.
                            prop_assert!(next.log.is_some() || t.log.is_none());
                        }
                        t = next;
                    }
                }
                let json = serde_json::to_string(&t).expect("serialises");
                let back: TaskState = serde_json::from_str(&json).expect("reads back");
                prop_assert_eq!(&back, &t, "{}", json);
            }
        }
    }

    #[test]
    fn a_format_1_record_reads_as_its_place() {
        let v1 = r#"{"state":"running","attempts":1,"base":"0123456789abcdef0123456789abcdef01234567","started_at":5.0,"claim":{"host":"h","pid":1,"since":5.0,"manual":true},"worktree":"/w"}"#;
        let t: TaskState = serde_json::from_str(v1).expect("v1 running");
        assert_eq!(t.state(), TaskStatus::Running);
        assert!(t.claim().is_some_and(|c| c.manual));
        let v1 = r#"{"state":"done","attempts":2,"base":"0123456789abcdef0123456789abcdef01234567","head":"0123456789abcdef0123456789abcdef01234567","landed":"0123456789abcdef0123456789abcdef01234567","started_at":1.0,"ended_at":2.0,"seconds":1.0,"log":"logs/tasks/a/2.log","changed":["a/x"]}"#;
        let t: TaskState = serde_json::from_str(v1).expect("v1 done");
        assert_eq!(t.changed(), ["a/x".to_string()]);
        assert_eq!(t.log.as_deref(), Some("logs/tasks/a/2.log"));
        // Running without a claim is not a running record.
        assert!(serde_json::from_str::<TaskState>(r#"{"state":"running","attempts":1}"#).is_err());
        assert!(serde_json::from_str::<TaskState>(r#"{"state":"failed","attempts":1}"#).is_err());
        assert!(serde_json::from_str::<TaskState>(r#"{"state":"done","base":"abc"}"#).is_err());
    }
}
