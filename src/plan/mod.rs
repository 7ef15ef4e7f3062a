//! The plan file: its data model, and the entry points that turn a TOML or
//! YAML file into a validated [`Plan`].
//!
//! The model is also what git-orch stores (as JSON) on its state branch, so
//! every struct round-trips losslessly through serde and rejects unknown
//! keys: a typo in a plan must never be silently ignored.

mod commands;
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
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub use commands::{commands_hash, PlanCommand};
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
    /// `[agents.<name>]`: the commands that run tasks, by name (issue 11).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub agents: BTreeMap<String, Agent>,
    /// What a new worktree gets besides its checkout (see [`Worktrees`]).
    #[serde(default, skip_serializing_if = "Worktrees::is_empty")]
    pub worktrees: Worktrees,
}

/// `[agents.<name>]`: a named way to run tasks (a coding agent's command
/// line), with a cap on how many of its tasks run at once.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// Which agent CLI this is: `command` (the default) runs `run`; the
    /// others are built by git-orch (see [`crate::agent`]).
    #[serde(default, skip_serializing_if = "AgentKind::is_command")]
    pub kind: AgentKind,
    /// The command, run like a task's `run` (same environment), plus `env`:
    /// a `command` agent's only key that must be there; empty for a kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run: String,
    /// A kind's CLI (default `claude`, `codex`, `aider`, found on PATH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A kind's model, passed as the CLI's own `--model`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Extra arguments for a kind's CLI, after git-orch's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Whether a kind agent may run shell commands (Claude Code's Bash
    /// tool); off by default, and what they write is still checked after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// At most this many of its tasks at once (an API quota); no cap when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<usize>,
    /// Environment variables added to its tasks' environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Its tasks' time limit, unless the task gives its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Attempts after the first, for failures that count as transient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// The wait before the first retry, doubled before each next one (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff: Option<String>,
    /// What counts as transient; every failure of the command when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<RetryOn>,
    /// How it says it hit a usage limit, and how long to wait when it does
    /// not say (a task it runs is parked, not failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_limit: Option<UsageLimit>,
}

/// The agent CLIs git-orch knows how to drive (issue 21).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum AgentKind {
    /// Any command line, given as `run`: git-orch's own conventions
    /// (`ORCH_USAGE_FILE`, exit 75) are how it reports.
    #[default]
    Command,
    ClaudeCode,
    Codex,
    Aider,
}

impl AgentKind {
    pub fn is_command(&self) -> bool {
        *self == AgentKind::Command
    }

    pub fn name(self) -> &'static str {
        match self {
            AgentKind::Command => "command",
            AgentKind::ClaudeCode => "claude-code",
            AgentKind::Codex => "codex",
            AgentKind::Aider => "aider",
        }
    }
}

/// `usage_limit = { exit_codes = [2], output = "rate limit", wait = "15m" }`:
/// besides exit code 75 (always a usage limit), an attempt that exits with
/// one of `exit_codes` or whose log matches `output` hit a usage limit; it
/// resets at the time the agent wrote to `$ORCH_USAGE_RESET_FILE`, else
/// `wait` (default 15m) after the attempt ended, and never sooner than
/// [`PARK_FLOOR`]. A task parks at most `parks` times (default
/// [`MAX_PARKS`]); the next usage limit fails it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UsageLimit {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exit_codes: Vec<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parks: Option<u32>,
}

/// The wait after a usage limit when neither the agent nor its profile says.
pub const USAGE_LIMIT_WAIT: Duration = Duration::from_secs(15 * 60);

/// The shortest wait after a usage limit, whatever the agent says: an
/// agent that writes a reset time of now (or a past one) and exits 75
/// again at once would otherwise be run again and again without end.
pub const PARK_FLOOR: Duration = Duration::from_secs(60);

/// How many times a usage limit may park one task (unless its agent's
/// `usage_limit.parks` says otherwise): the next limit fails it. 20 parks
/// are at least 20 minutes (see [`PARK_FLOOR`]), 5 hours at the default
/// wait; an agent that is still limited after that is not coming back.
pub const MAX_PARKS: u32 = 20;

/// `agent = "name"` or `agent = ["first", "fallback", …]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum AgentChoice {
    One(String),
    Many(Vec<String>),
}

impl AgentChoice {
    pub fn names(&self) -> &[String] {
        match self {
            AgentChoice::One(n) => std::slice::from_ref(n),
            AgentChoice::Many(v) => v,
        }
    }
}

/// A `retry_backoff`: a duration, or `0s` to retry at once.
pub fn parse_backoff(s: &str) -> Result<Duration, String> {
    if matches!(s.trim(), "0" | "0s") {
        return Ok(Duration::ZERO);
    }
    parse_duration(s)
}

/// A task's retry keys, resolved (see [`Plan::retry_policy`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub retries: u32,
    pub backoff: Duration,
    pub on: Option<RetryOn>,
}

/// The exit code with which an agent (or its wrapper) says it hit a usage
/// limit: `EX_TEMPFAIL` of sysexits.h, "try again later". It always parks
/// the task, so a `retry_on.exit_codes` that lists it is dead (`check`
/// warns).
pub const USAGE_LIMIT_EXIT: i32 = 75;

/// `retry_on = { exit_codes = [3], output = "rate.?limit", timeout = true }`:
/// a failed attempt is transient when its exit code is listed, or its log
/// matches the regular expression, or (with `timeout = true`) it timed out.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryOn {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exit_codes: Vec<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub timeout: bool,
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

/// The events a `[[notify]]` hook (or `orch.notify`) may choose.
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
    /// The agent (or agents, first available first) of tasks that name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentChoice>,
    /// Attempts after the first, for failures that count as transient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// The wait before the first retry, doubled before each next one (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff: Option<String>,
    /// What counts as transient; every failure of the command when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<RetryOn>,
    /// The review of tasks whose task and phase name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    /// Fix-forward for phases that say nothing of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_gate_failure: Option<OnGateFailure>,
    /// The conflict resolver of phases that name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_conflict: Option<OnGateFailure>,
    /// What a task's failure does to the run, unless its phase says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
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
    /// The review of its tasks that name none (issue 11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    /// Fix-forward when its gates fail (issue 11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_gate_failure: Option<OnGateFailure>,
    /// The agent that resolves its tasks' landing conflicts (issue 11;
    /// `files` does not apply: the task's own scope does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_conflict: Option<OnGateFailure>,
    /// What a failure of one of its tasks does to the run (else the default's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
}

/// `on_failure`: what the run does when a task fails or conflicts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Start nothing new, let running tasks finish, stop (the default).
    #[default]
    Drain,
    /// Stop running tasks at once (their work kept, as Ctrl-C does) and stop.
    Stop,
    /// Keep running every task that does not depend on a failed one.
    Continue,
}

/// One unit of work, done in its own worktree. `Task::default()` is a
/// task with only an empty id: importers and tests name the fields they
/// set and take the rest with `..Task::default()`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
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
    /// Who runs it: an agent of `[agents]`, or a list (the first under its
    /// cap, then the next). A task's own `run` wins over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentChoice>,
    /// Attempts after the first, for failures that count as transient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// The wait before the first retry, doubled before each next one (default 5s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff: Option<String>,
    /// What counts as transient; every failure of the command when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on: Option<RetryOn>,
    /// Who approves its work before it lands (issue 11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
}

/// `review`: who approves a task's committed work before it lands.
/// `"manual"` (a person: `task approve` / `task reject`), `{ run = "…" }`
/// (a command: exit 0 approves) or `{ agent = "…" }` (an agent of
/// `[agents]`: its verdict file approves or rejects with comments).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Review {
    Word(String),
    Run { run: String },
    Agent { agent: String },
}

impl Review {
    pub fn is_manual(&self) -> bool {
        matches!(self, Review::Word(w) if w == "manual")
    }

    /// How the state and the log name the reviewer: `manual`, `command`,
    /// `agent <name>`.
    pub fn describe(&self) -> String {
        match self {
            Review::Word(w) => w.clone(),
            Review::Run { .. } => "command".to_string(),
            Review::Agent { agent } => format!("agent {agent}"),
        }
    }
}

/// `on_gate_failure = { agent = "fixer", attempts = 2, files = ["src/**"] }`:
/// when a checkpoint's gates fail, a fix task run by `agent` on the work
/// head, landed, and the gates run again, up to `attempts` times.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OnGateFailure {
    pub agent: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// The fix's scope; the union of the phase's task scopes when left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
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
    /// Its own `run` first, then its agents' (the first one's, as shown;
    /// the runner picks the first under its cap), then `defaults.run`.
    pub fn task_run<'a>(&'a self, task: &'a Task) -> Option<&'a str> {
        if let Some(run) = task.run.as_deref() {
            return Some(run);
        }
        let first = self.task_agents(task).first();
        if let Some(agent) = first.and_then(|n| self.agents.get(n)) {
            return Some(&agent.run);
        }
        self.defaults.run.as_deref()
    }

    /// The agents that may run `task`, in order of preference: its own
    /// `agent`, else `defaults.agent`; none when the task has its own `run`.
    pub fn task_agents<'a>(&'a self, task: &'a Task) -> &'a [String] {
        if task.run.is_some() {
            return &[];
        }
        task.agent
            .as_ref()
            .or(self.defaults.agent.as_ref())
            .map_or(&[], AgentChoice::names)
    }

    /// The task's time limit: its own, its agent's, the default. An
    /// unparsable value yields `None` because validation has already
    /// rejected it for any plan that got this far.
    pub fn task_timeout(&self, task: &Task) -> Option<Duration> {
        self.attempt_timeout(task, None)
    }

    /// [`Plan::task_timeout`] for an attempt run by `agent`.
    pub fn attempt_timeout(&self, task: &Task, agent: Option<&str>) -> Option<Duration> {
        let agent = agent.and_then(|a| self.agents.get(a));
        task.timeout
            .as_deref()
            .or(agent.and_then(|a| a.timeout.as_deref()))
            .or(self.defaults.timeout.as_deref())
            .and_then(|s| parse_duration(s).ok())
    }

    /// What a failure in phase `phase` does to the run: the phase's
    /// `on_failure`, else `defaults.on_failure`, else drain.
    pub fn on_failure(&self, phase: &str) -> OnFailure {
        self.phases
            .iter()
            .find(|p| p.id == phase)
            .and_then(|p| p.on_failure)
            .or(self.defaults.on_failure)
            .unwrap_or_default()
    }

    /// How an attempt of `task` run by `agent` is retried: each key from
    /// the task, else the agent, else `defaults`.
    pub fn retry_policy(&self, task: &Task, agent: Option<&str>) -> RetryPolicy {
        let agent = agent.and_then(|a| self.agents.get(a));
        let d = &self.defaults;
        let retries = task
            .retries
            .or(agent.and_then(|a| a.retries))
            .or(d.retries)
            .unwrap_or(0);
        let backoff = task
            .retry_backoff
            .as_deref()
            .or(agent.and_then(|a| a.retry_backoff.as_deref()))
            .or(d.retry_backoff.as_deref())
            .and_then(|s| parse_backoff(s).ok())
            .unwrap_or(Duration::from_secs(5));
        let on = task
            .retry_on
            .as_ref()
            .or(agent.and_then(|a| a.retry_on.as_ref()))
            .or(d.retry_on.as_ref())
            .cloned();
        RetryPolicy {
            retries,
            backoff,
            on,
        }
    }

    pub fn task_isolation(&self, task: &Task) -> Isolation {
        task.isolation.unwrap_or(self.defaults.isolation)
    }

    /// Whether a sandboxed task keeps the network.
    pub fn task_network(&self, task: &Task) -> bool {
        task.network.or(self.defaults.network).unwrap_or(true)
    }

    /// The review of `task`: its own, its phase's, the default.
    pub fn task_review<'a>(&'a self, task: &'a Task) -> Option<&'a Review> {
        let phase = self.task(&task.id).map(|(p, _)| p);
        task.review
            .as_ref()
            .or(phase.and_then(|p| p.review.as_ref()))
            .or(self.defaults.review.as_ref())
    }

    /// What a phase does when its gates fail: its own, else the default.
    pub fn on_gate_failure(&self, phase_id: &str) -> Option<&OnGateFailure> {
        self.phase(phase_id)
            .and_then(|p| p.on_gate_failure.as_ref())
            .or(self.defaults.on_gate_failure.as_ref())
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
