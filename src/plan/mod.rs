//! The plan file: its data model, and the entry points that turn a TOML or
//! YAML file into a validated [`Plan`].
//!
//! The model is also what git-orch stores (as JSON) on its state branch, so
//! every struct round-trips losslessly through serde and rejects unknown
//! keys: a typo in a plan must never be silently ignored.

mod diag;
mod duration;
mod ids;
pub mod import;
mod locate;
mod parse;
mod schema;
mod scope;
mod validate;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

pub use diag::Diagnostic;
pub use duration::parse_duration;
pub use ids::{state_ref_plan, validate_id, RESERVED_PHASE_IDS};
pub use parse::load_file;
pub use parse::{load_str, Format};
pub use scope::{scopes_may_overlap, sparse_patterns, Scope};
pub use validate::validate;

/// A whole plan, as written in the plan file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub gates: Vec<Gate>,
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// Commands run on chosen events (see [`crate::notify`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<Notify>,
    /// What a new worktree gets besides its checkout (see [`Worktrees`]).
    #[serde(default, skip_serializing_if = "Worktrees::is_empty")]
    pub worktrees: Worktrees,
}

/// `[worktrees]`: files git does not track, copied into every new task
/// worktree from the main checkout, and a command run once in it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Worktrees {
    /// gitignore-style patterns of ignored files of the main checkout to
    /// copy (`.env`, `config/local.toml`); a match git does not ignore is
    /// refused, as its copy would be committed with the task's work.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// Run once in each new worktree, with the task's environment, before
    /// its first task (`npm ci`); a recycled worktree already has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<String>,
    /// How long `setup` may take (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup_timeout: Option<String>,
}

impl Worktrees {
    pub fn is_empty(&self) -> bool {
        *self == Worktrees::default()
    }
}

/// The events a `[[notify]]` hook (or `orch.notify`) may choose. `task-parked`
/// and `task-review` are named ahead of the states they are about (issue
/// 11) and are not sent yet.
pub const NOTIFY_EVENTS: &[&str] = &[
    "task-failed",
    "task-parked",
    "task-review",
    "gates-failed",
    "phase-checkpointed",
    "run-finished",
];

/// `[[notify]]`: a command run with an event as JSON on stdin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    pub run: String,
    /// The events it runs on (names in [`NOTIFY_EVENTS`]); all when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// How long it may take (default 10s); a hook that takes longer is stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// Values that apply to every task unless the task says otherwise.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<usize>,
    #[serde(default)]
    pub merge: MergeStrategy,
    #[serde(default)]
    pub checkout: CheckoutMode,
    /// How tasks are contained (an extension; default `none`).
    #[serde(default, skip_serializing_if = "Isolation::is_none")]
    pub isolation: Isolation,
    /// `false`: sandboxed tasks get no network (an extension; default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<bool>,
}

/// What a task may write.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// The user's rights; writes outside the worktree are detected after the fact.
    #[default]
    None,
    /// Under bubblewrap: its worktree, its git admin dir and new objects only.
    Sandbox,
}

impl Isolation {
    pub fn is_none(&self) -> bool {
        *self == Isolation::None
    }
}

/// How a finished task's branch lands on the phase branch.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MergeStrategy {
    #[default]
    Merge,
    Squash,
    Rebase,
}

impl fmt::Display for MergeStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MergeStrategy::Merge => "merge",
            MergeStrategy::Squash => "squash",
            MergeStrategy::Rebase => "rebase",
        })
    }
}

/// What a task's worktree holds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CheckoutMode {
    #[default]
    Full,
    Sparse,
}

impl fmt::Display for CheckoutMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckoutMode::Full => "full",
            CheckoutMode::Sparse => "sparse",
        })
    }
}

/// A quality gate: a command that must succeed before a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub name: String,
    pub run: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A phase: tasks that run (partly in parallel) and end in one checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gates: Vec<Gate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<Task>,
}

/// One unit of work, done in its own worktree.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<String>,
    /// Overrides `defaults.timeout` for this task (an extension of the spec).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Marks a task as already done, so it is never run (an extension: `import`
    /// sets it for work that predates the plan).
    #[serde(default, skip_serializing_if = "is_false")]
    pub skip: bool,
    /// Overrides `defaults.isolation` (an extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<Isolation>,
    /// Overrides `defaults.network` (an extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<bool>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Plan {
    pub fn phase(&self, id: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.id == id)
    }

    pub fn phase_index(&self, id: &str) -> Option<usize> {
        self.phases.iter().position(|p| p.id == id)
    }

    pub fn task(&self, id: &str) -> Option<(&Phase, &Task)> {
        self.tasks().find(|(_, t)| t.id == id)
    }

    /// Every task with its phase, in plan order.
    pub fn tasks(&self) -> impl Iterator<Item = (&Phase, &Task)> {
        self.phases
            .iter()
            .flat_map(|p| p.tasks.iter().map(move |t| (p, t)))
    }

    /// The command that runs `task`; `None` means the task is manual-only.
    pub fn task_run<'a>(&'a self, task: &'a Task) -> Option<&'a str> {
        task.run.as_deref().or(self.defaults.run.as_deref())
    }

    /// The task's time limit. An unparsable value yields `None` because
    /// validation has already rejected it for any plan that got this far.
    pub fn task_timeout(&self, task: &Task) -> Option<Duration> {
        task.timeout
            .as_deref()
            .or(self.defaults.timeout.as_deref())
            .and_then(|s| parse_duration(s).ok())
    }

    pub fn task_isolation(&self, task: &Task) -> Isolation {
        task.isolation.unwrap_or(self.defaults.isolation)
    }

    /// Whether a sandboxed task keeps the network.
    pub fn task_network(&self, task: &Task) -> bool {
        task.network.or(self.defaults.network).unwrap_or(true)
    }

    /// The gates a phase's checkpoint must pass: plan-wide ones first.
    pub fn gates_for(&self, phase_id: &str) -> Vec<&Gate> {
        let own = self
            .phase(phase_id)
            .map(|p| p.gates.as_slice())
            .unwrap_or(&[]);
        self.gates.iter().chain(own.iter()).collect()
    }
}
