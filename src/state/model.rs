//! The machine state of one plan. The plan-level part is `meta.json` in the
//! state branch's tree, each phase and each task has a record of its own
//! (see [`super::layout`]); the plan itself is immutable once started and
//! lives beside them as `plan.json`. Everything here changes by one state
//! commit at a time.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// The state format this git-orch writes. 1 was git-orch 0.1's single
/// `state.json`; it is read and rewritten as 2 on the next change.
pub const STATE_VERSION: u32 = 2;

/// The plan-level record, `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    pub version: u32,
    /// Commit the plan started from (the `start` tag's target).
    pub base: String,
    /// Where `orch/<plan>/work` must point.
    pub work: String,
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
    /// The phase records (`phases/<id>.json`), read whole: phases are few.
    #[serde(skip)]
    pub phases: BTreeMap<String, PhaseState>,
}

/// Format 1: the whole state as one `state.json` (git-orch 0.1).
#[derive(Debug, Clone, Deserialize)]
pub struct StateV1 {
    pub base: String,
    pub work: String,
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
            .filter(|(_, t)| t.state.is_active())
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
            phases: self.phases,
        };
        (state, self.tasks)
    }
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
        }
    }

    /// Done or skipped: dependants may go ahead.
    pub fn is_settled(self) -> bool {
        matches!(self, TaskStatus::Done | TaskStatus::Skipped)
    }

    /// Running, failed or in conflict: the tasks the state indexes in `active`.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TaskStatus::Running | TaskStatus::Failed | TaskStatus::Conflict
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskState {
    pub state: TaskStatus,
    #[serde(default)]
    pub attempts: u32,
    /// Commit the current or last attempt started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The task branch's head when the task ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The work-branch commit that landed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<f64>,
    /// Time spent running, summed over attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Path of the latest log in the state tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
}

impl TaskState {
    /// Back to pending for another attempt: its history (attempts, time
    /// spent, last log) stays, everything about the last attempt goes.
    pub fn pending_again(&self) -> TaskState {
        TaskState {
            attempts: self.attempts,
            seconds: self.seconds,
            log: self.log.clone(),
            ..TaskState::pending()
        }
    }

    pub fn pending() -> TaskState {
        TaskState {
            state: TaskStatus::Pending,
            attempts: 0,
            base: None,
            head: None,
            landed: None,
            started_at: None,
            ended_at: None,
            seconds: None,
            claim: None,
            worktree: None,
            reason: None,
            log: None,
            changed: Vec::new(),
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub commit: String,
    pub tag: TagRecord,
    pub at: f64,
}

/// Everything needed to recreate an annotated tag object byte for byte, so
/// a tag lost to an interruption comes back with the same id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TagRecord {
    /// Short tag name, e.g. `orch/notifications/setup`.
    pub name: String,
    pub object: String,
    pub target: String,
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
    pub commit: String,
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
    pub before: String,
    pub at: f64,
    /// Refs that keep what the rollback discarded.
    pub preserved: Vec<String>,
    #[serde(default)]
    pub undone: bool,
}
