//! The machine state of one plan. The plan-level part is `meta.json` in the
//! state branch's tree, each phase and each task has a record of its own
//! (see [`super::layout`]); the plan itself is immutable once started and
//! lives beside them as `plan.json`. Everything here changes by one state
//! commit at a time.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::ids::{CommitId, TagId};

/// The state format this git-orch writes. 1 was git-orch 0.1's single
/// `state.json`; it is read and rewritten as 2 on the next change.
pub const STATE_VERSION: u32 = 2;

/// The plan-level record, `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub version: u32,
    /// Commit the plan started from (the `start` tag's target).
    pub base: CommitId,
    /// Where `orch/<plan>/work` must point.
    pub work: CommitId,
    pub started_at: f64,
    #[serde(default)]
    pub finished: bool,
    pub start_tag: TagRecord,
    #[serde(default)]
    pub rollbacks: Vec<RollbackRecord>,
    /// Increments to name preserved refs uniquely.
    #[serde(default)]
    pub seq: u64,
    /// Tasks that are running, failed or in conflict: kept by the store from
    /// the task records it writes, so finding them reads no other record.
    #[serde(default)]
    pub active: BTreeSet<String>,
    /// The blob of `plan.json` the latest `plan amend` sealed (for a clone,
    /// which has no seal file; see [`super::seal`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_seal: Option<String>,
    /// `abandon` stopped the plan unfinished: nothing runs on it any more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abandoned: bool,
    /// Agents that reported a usage limit, with when it resets (seconds
    /// since the epoch): no task is routed to one before then.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limited: BTreeMap<String, f64>,
    /// Commits made by hand on the work branch and adopted as landings of
    /// their own (`work-adopted`), oldest first; a rollback drops those it
    /// takes off the branch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adopted: Vec<AdoptedCommit>,
    /// The phase records (`phases/<id>.json`), read whole: phases are few.
    #[serde(skip)]
    pub phases: BTreeMap<String, PhaseState>,
}

/// Format 1: the whole state as one `state.json` (git-orch 0.1).
#[derive(Debug, Clone, Deserialize)]
pub struct StateV1 {
    pub base: CommitId,
    pub work: CommitId,
    pub started_at: f64,
    #[serde(default)]
    pub finished: bool,
    pub start_tag: TagRecord,
    pub tasks: BTreeMap<String, TaskState>,
    pub phases: BTreeMap<String, PhaseState>,
    #[serde(default)]
    pub rollbacks: Vec<RollbackRecord>,
    #[serde(default)]
    pub seq: u64,
}

impl StateV1 {
    /// The format-2 state and task records it holds.
    pub fn upgrade(self) -> (State, BTreeMap<String, TaskState>) {
        let active = self
            .tasks
            .iter()
            .filter(|(_, t)| t.state().is_active())
            .map(|(id, _)| id.clone())
            .collect();
        let state = State {
            version: STATE_VERSION,
            base: self.base,
            work: self.work,
            started_at: self.started_at,
            finished: self.finished,
            start_tag: self.start_tag,
            rollbacks: self.rollbacks,
            seq: self.seq,
            active,
            plan_seal: None,
            abandoned: false,
            limited: BTreeMap::new(),
            adopted: Vec::new(),
            phases: self.phases,
        };
        (state, self.tasks)
    }
}

/// A commit made by hand on the work branch, adopted (see `engine::adopt`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AdoptedCommit {
    pub commit: CommitId,
    #[serde(default)]
    pub changed: Vec<String>,
    pub at: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Pending,
    Running,
    Done,
    Failed,
    Conflict,
    Skipped,
    /// Its work is committed and waits for its reviewer (issue 11).
    Review,
    /// Its agent hit a usage limit: it waits, worktree kept, until a time.
    Parked,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Running => "running",
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
            TaskStatus::Conflict => "conflict",
            TaskStatus::Skipped => "skipped",
            TaskStatus::Review => "review",
            TaskStatus::Parked => "parked",
        }
    }

    /// Done or skipped: dependants may go ahead.
    pub fn is_settled(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Skipped)
    }

    /// Running, failed, in conflict, in review or parked: the tasks the state
    /// indexes in `active`.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TaskStatus::Running
                | TaskStatus::Failed
                | TaskStatus::Conflict
                | TaskStatus::Review
                | TaskStatus::Parked
        )
    }
}

/// One task's record. What it holds besides its history (attempts, time
/// spent, latest log) depends on where it is: running has a claim, done
/// has its landing, failed has a reason. Records change only through the
/// functions of [`super::transition`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskState {
    #[serde(flatten)]
    pub now: Now,
    #[serde(default)]
    pub attempts: u32,
    /// Time spent running, summed over attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Path of the latest log in the state tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    /// The agent (of the plan's `[agents]`) the latest attempt ran with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// What the attempts' usage files said, one entry per attempt that
    /// wrote one (see [`crate::engine::ledger`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<Usage>,
    /// How many times a usage limit parked it since it was last made
    /// pending by a person (a reset, a reopen, a rollback): a task that
    /// parks without end fails at the plan's cap.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub parks: u32,
    /// Its latest attempt was a person's (`task start`), not a runner's:
    /// the ledger counts it as done by hand, not under an agent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_hand: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One attempt's usage file, as read (the cost and time ledger).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Usage {
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_out: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Why the file was not read (too big, not the JSON it must be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Of the input tokens, those read from the model's cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_cached: Option<u64>,
    /// The agent's session (Claude Code's session id, Codex's thread id),
    /// which a later attempt continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns: Option<u32>,
    /// The tool calls the agent was refused, as `Tool target`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub denied: Vec<String>,
    /// How the agent's own output says the attempt ended: `success`,
    /// `transient`, `usage-limit` or `fatal` (kind agents only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The agent's own words for an attempt that did not succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether this attempt continued an earlier attempt's session.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resumed: bool,
}

/// Where a task is, with what only that place has. Stored flat in the
/// record, tagged by `state` (the same fields format 1 had).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Now {
    Pending {
        /// Why it is pending again (its runner died, its run was stopped).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Running {
        /// The work-branch commit the attempt started from.
        base: CommitId,
        started_at: f64,
        claim: Claim,
        worktree: String,
    },
    Done {
        #[serde(flatten)]
        attempt: Ended,
        /// The work-branch commit that landed it; `None`: it changed nothing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        landed: Option<CommitId>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changed: Vec<String>,
    },
    Failed {
        #[serde(flatten)]
        attempt: Ended,
        reason: String,
    },
    Conflict {
        #[serde(flatten)]
        attempt: Ended,
        reason: String,
        /// Who may land it again (the runner's or person's claim stays).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        claim: Option<Claim>,
    },
    Skipped {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Committed at `head`, waiting for `reviewer` (`manual`: a person's
    /// `task approve` / `task reject`); its worktree is kept.
    Review {
        #[serde(flatten)]
        attempt: Ended,
        reviewer: String,
    },
    /// Stopped by a usage limit of its agent: it runs again, in the same
    /// worktree, once `until` (seconds since the epoch) has passed, with
    /// the first of its agents that is not limited then.
    Parked {
        #[serde(flatten)]
        attempt: Ended,
        until: f64,
        reason: String,
    },
}

/// An attempt that ran and ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Ended {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<CommitId>,
    /// The task branch's head when it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<CommitId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<f64>,
    /// Where its worktree is kept (a person's, a failed or conflicting task's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<String>,
}

impl TaskState {
    /// A task that never ran (the record a task without one has).
    pub fn pending() -> TaskState {
        TaskState {
            now: Now::Pending { reason: None },
            attempts: 0,
            seconds: None,
            log: None,
            agent: None,
            usage: Vec::new(),
            parks: 0,
            by_hand: false,
        }
    }

    pub fn state(&self) -> TaskStatus {
        match self.now {
            Now::Pending { .. } => TaskStatus::Pending,
            Now::Running { .. } => TaskStatus::Running,
            Now::Done { .. } => TaskStatus::Done,
            Now::Failed { .. } => TaskStatus::Failed,
            Now::Conflict { .. } => TaskStatus::Conflict,
            Now::Skipped { .. } => TaskStatus::Skipped,
            Now::Review { .. } => TaskStatus::Review,
            Now::Parked { .. } => TaskStatus::Parked,
        }
    }

    fn ended(&self) -> Option<&Ended> {
        match &self.now {
            Now::Done { attempt, .. }
            | Now::Failed { attempt, .. }
            | Now::Conflict { attempt, .. }
            | Now::Review { attempt, .. } => Some(attempt),
            Now::Parked { attempt, .. } => Some(attempt),
            _ => None,
        }
    }

    /// When a parked task wakes (seconds since the epoch).
    pub fn parked_until(&self) -> Option<f64> {
        match &self.now {
            Now::Parked { until, .. } => Some(*until),
            _ => None,
        }
    }

    /// The commit the current or last attempt started from.
    pub fn base(&self) -> Option<CommitId> {
        match &self.now {
            Now::Running { base, .. } => Some(*base),
            _ => self.ended().and_then(|e| e.base),
        }
    }

    pub fn head(&self) -> Option<CommitId> {
        self.ended().and_then(|e| e.head)
    }

    pub fn landed(&self) -> Option<CommitId> {
        match &self.now {
            Now::Done { landed, .. } => *landed,
            _ => None,
        }
    }

    pub fn started_at(&self) -> Option<f64> {
        match &self.now {
            Now::Running { started_at, .. } => Some(*started_at),
            _ => self.ended().and_then(|e| e.started_at),
        }
    }

    pub fn ended_at(&self) -> Option<f64> {
        self.ended().and_then(|e| e.ended_at)
    }

    pub fn claim(&self) -> Option<&Claim> {
        match &self.now {
            Now::Running { claim, .. } => Some(claim),
            Now::Conflict { claim, .. } => claim.as_ref(),
            _ => None,
        }
    }

    pub fn worktree(&self) -> Option<&str> {
        match &self.now {
            Now::Running { worktree, .. } => Some(worktree),
            _ => self.ended().and_then(|e| e.worktree.as_deref()),
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match &self.now {
            Now::Failed { reason, .. }
            | Now::Conflict { reason, .. }
            | Now::Parked { reason, .. } => Some(reason),
            Now::Pending { reason } | Now::Skipped { reason } => reason.as_deref(),
            _ => None,
        }
    }

    /// The paths its landing changed.
    pub fn changed(&self) -> &[String] {
        match &self.now {
            Now::Done { changed, .. } => changed,
            _ => &[],
        }
    }
}

/// Who is running a task: a `git orch run` process, or a person (`task start`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claim {
    pub host: String,
    pub pid: u32,
    /// The process's start time as the kernel reports it, so a recycled
    /// pid is not mistaken for the runner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proc_start: Option<u64>,
    pub since: f64,
    #[serde(default)]
    pub manual: bool,
    /// A claim taken through a remote (`run --remote`): judged by its
    /// lease, never by the pid, which is another machine's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<Lease>,
}

/// Who holds a remote claim, and until when: renewed while the task runs;
/// once expired any runner may take the task over.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Lease {
    /// The runner, unique across machines (`machine:pid:start`).
    pub runner: String,
    /// `orch.machine`, else the host name.
    pub machine: String,
    /// Seconds since the epoch.
    pub expires: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PhaseStatus {
    Pending,
    Active,
    Failed,
    Checkpointed,
}

impl PhaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseStatus::Pending => "pending",
            PhaseStatus::Active => "active",
            PhaseStatus::Failed => "failed",
            PhaseStatus::Checkpointed => "checkpointed",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct PhaseState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
    /// The latest gate run failed and nothing changed since.
    #[serde(default)]
    pub gates_failed: bool,
    /// Results of the latest gate run on this phase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<GateResult>,
    /// Fix-forward attempts after its gates failed (`on_gate_failure`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<FixRecord>,
}

/// One fix-forward attempt: fix task `id` (`<phase>.fix-<n>`), made by
/// git-orch in the state rather than the plan, run by `agent` on the work
/// head `base`; `landed` is the work commit it made, `reason` why not.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FixRecord {
    pub id: String,
    pub attempt: u32,
    pub agent: String,
    pub base: CommitId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landed: Option<CommitId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// Its log in the state tree.
    pub log: String,
    pub seconds: f64,
    pub at: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub commit: CommitId,
    pub tag: TagRecord,
    pub at: f64,
}

/// Everything needed to recreate an annotated tag object byte for byte, so
/// a tag lost to an interruption comes back with the same id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TagRecord {
    /// Short tag name, e.g. `orch/notifications/setup`.
    pub name: String,
    pub object: TagId,
    pub target: CommitId,
    pub tagger_name: String,
    pub tagger_email: String,
    pub time: i64,
    pub offset_minutes: i32,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GateResult {
    pub name: String,
    pub command: String,
    pub passed: bool,
    pub seconds: f64,
    pub commit: CommitId,
    /// Path of the log in the state tree.
    pub log: String,
    #[serde(default)]
    pub cached: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RollbackRecord {
    pub id: u64,
    /// Phase id or `start`.
    pub to: String,
    /// The state commit from before the rollback; `--undo` restores it.
    pub before: CommitId,
    pub at: f64,
    /// Refs that keep what the rollback discarded.
    pub preserved: Vec<String>,
    #[serde(default)]
    pub undone: bool,
}
