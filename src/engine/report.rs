//! The data behind `git orch report`: what ran, when, for how long against
//! its estimate, with what result.
//!
//! A task record only remembers the task's latest attempt, so the timeline
//! is rebuilt from the state branch's first-parent history instead: every
//! commit is one typed [`state::Event`] (its `Orch-Event` trailer), which
//! says when an attempt started or ended and how; no record or blob is read
//! for it. A history begun by git-orch 0.1 has no events before its
//! migration: those commits are read the 0.1 way (their `state.json`).
//! Attempts that a rollback later discarded stay on the timeline; that is
//! the point of an audit log. The result is one serialisable [`Report`]:
//! `--format json` prints it as is, and the markdown and HTML renderers
//! only format it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::git::Repo;
use crate::plan::parse_duration;
use crate::state::{self, names, GateResult, Snapshot, TaskState, TaskStatus};

#[derive(Debug, Serialize)]
pub struct Report {
    pub plan: String,
    pub title: Option<String>,
    /// `refs/heads/orch/<plan>/state`, where every log path below lives.
    pub state_ref: String,
    pub state_commit: String,
    pub work: String,
    pub base: String,
    pub finished: bool,
    /// The phase being worked on; `None` once every phase is checkpointed.
    pub current_phase: Option<String>,
    /// Seconds since the epoch, like every time in the report.
    pub started_at: f64,
    /// The latest thing that happened (now, while a task runs).
    pub ended_at: f64,
    pub generated_at: f64,
    pub totals: Totals,
    pub phases: Vec<PhaseReport>,
    pub tasks: Vec<TaskReport>,
    /// One entry per task attempt, oldest first, each with its timeline row.
    pub attempts: Vec<Attempt>,
    /// Timeline rows: attempts that overlap in time get different slots.
    pub slots: usize,
    pub failures: Vec<Failure>,
    pub rollbacks: Vec<Rollback>,
    /// The state branch's history, oldest first.
    pub events: Vec<Event>,
    /// Time and cost per plan, phase and agent (see [`super::ledger`]).
    pub ledger: super::ledger::Ledger,
}

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub tasks: usize,
    pub pending: usize,
    pub running: usize,
    pub done: usize,
    pub failed: usize,
    pub conflict: usize,
    pub skipped: usize,
    pub attempts: usize,
    /// Measured task time, summed over tasks and attempts.
    pub task_seconds: f64,
    /// Estimates of the tasks that have both an estimate and a measured time.
    pub estimated_seconds: f64,
    /// Measured time of those same tasks, to compare with `estimated_seconds`.
    pub measured_seconds: f64,
    /// From the plan's start to `ended_at`.
    pub wall_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct PhaseReport {
    pub id: String,
    pub title: Option<String>,
    /// `pending`, `active`, `failed` or `checkpointed`.
    pub state: String,
    pub tasks: Vec<String>,
    /// When its first task attempt started.
    pub started_at: Option<f64>,
    pub checkpoint: Option<CheckpointInfo>,
    /// The latest gate run on this phase.
    pub gates: Vec<GateResult>,
}

#[derive(Debug, Serialize)]
pub struct CheckpointInfo {
    pub tag: String,
    pub commit: String,
    pub at: f64,
}

#[derive(Debug, Serialize)]
pub struct TaskReport {
    pub id: String,
    pub phase: String,
    pub title: Option<String>,
    pub state: String,
    pub attempts: u32,
    pub seconds: Option<f64>,
    pub estimate: Option<String>,
    pub estimate_seconds: Option<u64>,
    /// `seconds / estimate_seconds`, when both are known.
    pub vs_estimate: Option<f64>,
    pub started_at: Option<f64>,
    pub ended_at: Option<f64>,
    /// Declared write scope.
    pub files: Vec<String>,
    /// Paths its landing changed.
    pub changed: Vec<String>,
    pub depends_on: Vec<String>,
    pub reason: Option<String>,
    pub log: Option<String>,
    pub landed: Option<String>,
    pub branch: Option<String>,
    /// The task's handoff note from the state tree.
    pub handoff: Option<String>,
    /// The agent its latest attempt ran with.
    pub agent: Option<String>,
    /// Summed over its attempts' usage files, once one was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_out: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Each attempt's usage and its agent's own outcome.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub usage: Vec<crate::state::Usage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub task: String,
    pub phase: String,
    /// 1 for the first attempt; 0 for a task skipped without ever running.
    pub n: u32,
    pub start: f64,
    /// `None` while it still runs.
    pub end: Option<f64>,
    /// `running`, `done`, `failed`, `conflict`, `skipped`, or `interrupted`
    /// (returned to pending while running: a dead runner, a reset).
    pub outcome: String,
    pub reason: Option<String>,
    pub log: Option<String>,
    pub changed: Vec<String>,
    pub slot: usize,
}

#[derive(Debug, Serialize)]
pub struct Failure {
    /// `task` or `gate`.
    pub kind: String,
    /// Task id or gate name.
    pub name: String,
    pub phase: String,
    pub attempt: Option<u32>,
    pub at: Option<f64>,
    pub reason: Option<String>,
    pub log: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Rollback {
    pub to: String,
    pub at: f64,
    pub preserved: Vec<String>,
    pub undone: bool,
    /// The state commit it went back from.
    pub before: String,
}

#[derive(Debug, Serialize)]
pub struct Event {
    pub commit: String,
    pub time: f64,
    /// `start`, `task`, `gates`, `checkpoint`, `rollback`, `undo`, `finish`, `other`.
    pub kind: String,
    /// The typed event's kind (`task-landed`, `phase-checkpointed`, …);
    /// `None` for a commit made by git-orch 0.1.
    pub event: Option<String>,
    /// The task or phase it is about.
    pub subject: Option<String>,
    /// For a task: its state after the event; for a checkpoint: `passed`/`failed`.
    pub outcome: Option<String>,
    pub summary: String,
}

/// Just the fields of `state.json` the history walk needs. It is read at
/// every task event, so it is read by [`LiteSeed`], which skips the other
/// tasks without building them: a plan's history is then read in time
/// proportional to its size times its events, with a small constant.
#[derive(Default)]
struct LiteState {
    tasks: HashMap<String, LiteTask>,
    phases: HashMap<String, LitePhase>,
    rollbacks: Vec<LiteRollback>,
}

/// Reads `state.json`, keeping only the task `only` (every task if `None`).
struct LiteSeed<'a> {
    only: Option<&'a str>,
}

impl<'de> DeserializeSeed<'de> for LiteSeed<'_> {
    type Value = LiteState;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<LiteState, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LiteSeed<'_> {
    type Value = LiteState;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the state object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<LiteState, A::Error> {
        let mut lite = LiteState::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "tasks" => lite.tasks = map.next_value_seed(TasksSeed { only: self.only })?,
                "phases" => lite.phases = map.next_value()?,
                "rollbacks" => lite.rollbacks = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(lite)
    }
}

struct TasksSeed<'a> {
    only: Option<&'a str>,
}

impl<'de> DeserializeSeed<'de> for TasksSeed<'_> {
    type Value = HashMap<String, LiteTask>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TasksSeed<'_> {
    type Value = HashMap<String, LiteTask>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("the tasks object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut tasks = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            if self.only.is_none_or(|only| only == key) {
                let task = map.next_value::<LiteTask>()?;
                tasks.insert(key, task);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(tasks)
    }
}

#[derive(Deserialize)]
struct LiteRollback {
    at: f64,
}

#[derive(Deserialize)]
struct LiteTask {
    state: TaskStatus,
    #[serde(default)]
    attempts: u32,
    started_at: Option<f64>,
    ended_at: Option<f64>,
    reason: Option<String>,
    log: Option<String>,
    #[serde(default)]
    changed: Vec<String>,
}

/// The same reads as a task record's, so the timeline treats both alike.
impl LiteTask {
    fn state(&self) -> TaskStatus {
        self.state
    }
    fn started_at(&self) -> Option<f64> {
        self.started_at
    }
    fn ended_at(&self) -> Option<f64> {
        self.ended_at
    }
    fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
    fn changed(&self) -> &[String] {
        &self.changed
    }
}

#[derive(Deserialize)]
struct LitePhase {
    checkpoint: Option<LiteCheckpoint>,
}

#[derive(Deserialize)]
struct LiteCheckpoint {
    at: f64,
}

pub fn build(repo: &Repo, snap: &Snapshot) -> Result<Report> {
    let now = state::now();
    let phase_of: HashMap<&str, &str> = snap
        .plan
        .tasks()
        .map(|(p, t)| (t.id.as_str(), p.id.as_str()))
        .collect();
    let (events, mut attempts) = walk_history(repo, snap, &phase_of)?;

    // Attempts still open: running now, unless the state says otherwise.
    let last_event = events.last().map_or(snap.state.started_at, |e| e.time);
    let records = snap.all_tasks()?;
    let status_of = |id: &str| records.get(id).map_or(TaskStatus::Pending, |t| t.state());
    for a in attempts.iter_mut().filter(|a| a.end.is_none()) {
        if status_of(&a.task) != TaskStatus::Running {
            a.end = Some(last_event.max(a.start));
            a.outcome = "interrupted".to_string();
        }
    }
    let slots = assign_slots(&mut attempts, now);
    let running = attempts.iter().any(|a| a.end.is_none());
    let ended_at = if running {
        now
    } else {
        attempts
            .iter()
            .filter_map(|a| a.end)
            .fold(last_event, f64::max)
    };

    let tasks = task_reports(repo, snap, &records)?;
    let ledger = super::ledger::compute(&snap.plan, |id| records.get(id).map(|t| &**t));
    let phases = phase_reports(snap, &attempts);
    let totals = totals(&tasks, attempts.len(), snap.state.started_at, ended_at);
    let failures = failures(&attempts, &phases);
    let rollbacks = snap
        .state
        .rollbacks
        .iter()
        .map(|r| Rollback {
            to: r.to.clone(),
            at: r.at,
            preserved: r.preserved.clone(),
            undone: r.undone,
            before: r.before.to_string(),
        })
        .collect();
    Ok(Report {
        plan: snap.plan_name.clone(),
        title: snap.plan.title.clone(),
        state_ref: names::state(&snap.plan_name),
        state_commit: snap.commit.to_string(),
        work: snap.state.work.to_string(),
        base: snap.state.base.to_string(),
        finished: snap.state.finished,
        current_phase: snap.current_phase().map(|p| p.id.clone()),
        started_at: snap.state.started_at,
        ended_at,
        generated_at: now,
        totals,
        phases,
        tasks,
        attempts,
        slots,
        failures,
        rollbacks,
        events,
        ledger,
    })
}

/// Walks the state branch oldest first, turning commits into events and
/// task transitions into attempts.
fn walk_history(
    repo: &Repo,
    snap: &Snapshot,
    phase_of: &HashMap<&str, &str>,
) -> Result<(Vec<Event>, Vec<Attempt>)> {
    let mut walk = repo.git.revwalk()?;
    walk.push(snap.commit)?;
    walk.simplify_first_parent()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;

    let mut events: Vec<Event> = Vec::new();
    let mut attempts: Vec<Attempt> = Vec::new();
    // Task id → index in `attempts` of its open attempt / its latest one.
    let mut open: HashMap<String, usize> = HashMap::new();
    let mut latest: HashMap<String, usize> = HashMap::new();
    let mut first = true;

    for id in walk {
        let id = id.context("cannot walk the state branch")?;
        let commit = repo.git.find_commit(id)?;
        let summary = commit.summary().unwrap_or("").to_string();
        // Commit times are whole seconds; where an event has no precise
        // time, keep it after the one before.
        let commit_time = events
            .last()
            .map_or(commit.time().seconds() as f64, |prev| {
                (commit.time().seconds() as f64).max(prev.time)
            });
        let typed = commit.message().and_then(state::Event::from_message);
        let event = match typed {
            Some(typed) => {
                if first {
                    // Tasks the plan starts as skipped.
                    for (_, task) in snap.plan.tasks().filter(|(_, t)| t.skip) {
                        let i = push(&mut attempts, &task.id, phase_of, 0, typed.at());
                        attempts[i].end = Some(typed.at());
                        attempts[i].outcome = "skipped".to_string();
                        latest.insert(task.id.clone(), i);
                    }
                }
                let mut event = typed_event(id, &typed, summary);
                if let (Some(task), Some(lite)) = (typed.task(), lite_of(&typed)) {
                    event.time = task_transition(
                        &mut attempts,
                        &mut open,
                        &mut latest,
                        phase_of,
                        task,
                        &lite,
                        typed.at(),
                    );
                }
                event
            }
            None => legacy_event(
                repo,
                snap,
                &commit,
                summary,
                commit_time,
                first,
                phase_of,
                (&mut attempts, &mut open, &mut latest),
            )?,
        };
        events.push(event);
        first = false;
    }
    Ok((events, attempts))
}

/// The report's row for a typed event.
fn typed_event(commit: git2::Oid, e: &state::Event, summary: String) -> Event {
    use state::Event as E;
    let (kind, subject, outcome) = match e {
        E::PlanStarted { .. } => ("start", None, None),
        E::TaskClaimed { task, .. } => ("task", Some(task), Some("running")),
        E::TaskLanded { task, .. } => ("task", Some(task), Some("done")),
        E::TaskConflict { task, .. } => ("task", Some(task), Some("conflict")),
        E::TaskFailed { task, .. } => ("task", Some(task), Some("failed")),
        E::TaskParked { task, .. } => ("task", Some(task), Some("parked")),
        E::TaskUsage { task, .. } => ("task", Some(task), None),
        E::TaskReleased { task, .. }
        | E::TaskInterrupted { task, .. }
        | E::TaskRecovered { task, .. }
        | E::TaskReset { task, .. }
        | E::TaskReopened { task, .. } => ("task", Some(task), Some("pending")),
        E::TaskSkipped { task, .. } => ("task", Some(task), Some("skipped")),
        E::GatesRan { .. } => ("gates", None, None),
        E::PhaseCheckpointed { phase, .. } => ("checkpoint", Some(phase), Some("passed")),
        E::PhaseGatesFailed { phase, .. } => ("checkpoint", Some(phase), Some("failed")),
        E::RolledBack { to, .. } => ("rollback", Some(to), None),
        E::RollbackUndone { to, .. } => ("undo", Some(to), None),
        E::PlanFinished { .. } => ("finish", None, None),
        E::PlanAmended { .. } => ("amend", None, None),
        E::PlanAbandoned { .. } => ("abandon", None, None),
        E::StateMigrated { .. } => ("other", None, None),
        E::TaskReview { task, .. } => ("task", Some(task), Some("review")),
        E::TaskApproved { task, .. } => ("task", Some(task), Some("approved")),
        E::TaskRejected { task, .. } => ("task", Some(task), Some("rejected")),
        E::PhaseFix { phase, landed, .. } => (
            "fix",
            Some(phase),
            Some(if landed.is_some() { "landed" } else { "failed" }),
        ),
        E::WorkAdopted { .. } => ("hand", None, Some("landed")),
    };
    Event {
        commit: commit.to_string(),
        time: e.at(),
        kind: kind.to_string(),
        event: Some(e.kind().to_string()),
        subject: subject.cloned(),
        outcome: outcome.map(str::to_string),
        summary,
    }
}

/// What a typed task event says about the task, in the shape the timeline takes.
fn lite_of(e: &state::Event) -> Option<LiteTask> {
    use state::Event as E;
    let lite = |state, attempts, at: f64, ended: bool| LiteTask {
        state,
        attempts,
        started_at: (!ended).then_some(at),
        ended_at: ended.then_some(at),
        reason: None,
        log: None,
        changed: Vec::new(),
    };
    Some(match e {
        E::TaskClaimed { attempt, at, .. } => lite(TaskStatus::Running, *attempt, *at, false),
        E::TaskLanded {
            attempt,
            at,
            changed,
            log,
            ..
        } => LiteTask {
            changed: changed.clone(),
            log: log.clone(),
            ..lite(TaskStatus::Done, *attempt, *at, true)
        },
        E::TaskConflict {
            attempt,
            at,
            files,
            log,
            ..
        } => LiteTask {
            reason: Some(format!("landing conflicts in {}", files.join(", "))),
            log: log.clone(),
            ..lite(TaskStatus::Conflict, *attempt, *at, true)
        },
        E::TaskFailed {
            attempt,
            at,
            reason,
            log,
            ..
        } => LiteTask {
            reason: Some(reason.clone()),
            log: log.clone(),
            ..lite(TaskStatus::Failed, *attempt, *at, true)
        },
        E::TaskReleased {
            attempt,
            at,
            reason,
            ..
        }
        | E::TaskRecovered {
            attempt,
            at,
            reason,
            ..
        } => LiteTask {
            reason: Some(reason.clone()),
            ..lite(TaskStatus::Pending, *attempt, *at, true)
        },
        E::TaskParked {
            attempt,
            at,
            reason,
            log,
            ..
        } => LiteTask {
            reason: Some(reason.clone()),
            log: log.clone(),
            ..lite(TaskStatus::Parked, *attempt, *at, true)
        },
        E::TaskInterrupted {
            attempt,
            at,
            reason,
            log,
            ..
        } => LiteTask {
            reason: Some(reason.clone()),
            log: log.clone(),
            ..lite(TaskStatus::Pending, *attempt, *at, true)
        },
        E::TaskReset { at, .. } | E::TaskReopened { at, .. } => {
            lite(TaskStatus::Pending, 0, *at, true)
        }
        E::TaskSkipped { at, .. } => LiteTask {
            reason: Some("skipped by hand".to_string()),
            ..lite(TaskStatus::Skipped, 0, *at, true)
        },
        _ => return None,
    })
}

type Timeline<'a> = (
    &'a mut Vec<Attempt>,
    &'a mut HashMap<String, usize>,
    &'a mut HashMap<String, usize>,
);

/// A commit made by git-orch 0.1, which carries no event: its subject says
/// what it is about and its `state.json` the details.
#[allow(clippy::too_many_arguments)]
fn legacy_event(
    repo: &Repo,
    snap: &Snapshot,
    commit: &git2::Commit,
    summary: String,
    commit_time: f64,
    first: bool,
    phase_of: &HashMap<&str, &str>,
    (attempts, open, latest): Timeline<'_>,
) -> Result<Event> {
    let (kind, subject) = classify(&summary, first);
    let mut event = Event {
        commit: commit.id().to_string(),
        time: commit_time,
        kind: kind.to_string(),
        event: None,
        subject: subject.clone(),
        outcome: None,
        summary,
    };
    let needs_state = first || matches!(kind, "task" | "checkpoint" | "rollback");
    let lite = if needs_state {
        let only = if first { None } else { subject.as_deref() };
        read_lite(repo, commit.tree_id(), only)?
    } else {
        None
    };
    if first {
        if let Some(lite) = &lite {
            event.time = snap.state.started_at;
            // Tasks the plan starts as skipped.
            let mut skipped: Vec<&String> = lite
                .tasks
                .iter()
                .filter(|(_, t)| t.state() == TaskStatus::Skipped)
                .map(|(id, _)| id)
                .collect();
            skipped.sort();
            for task in skipped {
                let i = push(attempts, task, phase_of, 0, event.time);
                attempts[i].end = Some(event.time);
                attempts[i].outcome = "skipped".to_string();
                latest.insert(task.clone(), i);
            }
        }
    }
    match (kind, &subject, &lite) {
        ("task", Some(task), Some(lite)) => {
            if let Some(t) = lite.tasks.get(task) {
                event.outcome = Some(t.state.as_str().to_string());
                event.time =
                    task_transition(attempts, open, latest, phase_of, task, t, commit_time);
            }
        }
        ("checkpoint", Some(phase), lite) => {
            let passed = event.summary.contains(": passed");
            event.outcome = Some(if passed { "passed" } else { "failed" }.to_string());
            if let Some(at) = lite
                .as_ref()
                .and_then(|l| l.phases.get(phase))
                .and_then(|p| p.checkpoint.as_ref())
                .filter(|_| passed)
            {
                event.time = at.at;
            }
        }
        ("rollback", _, Some(lite)) => {
            if let Some(r) = lite.rollbacks.last() {
                event.time = r.at;
            }
        }
        _ => {}
    }
    Ok(event)
}

/// Applies one `task <id>: …` event; returns the event's precise time.
fn task_transition(
    attempts: &mut Vec<Attempt>,
    open: &mut HashMap<String, usize>,
    latest: &mut HashMap<String, usize>,
    phase_of: &HashMap<&str, &str>,
    task: &str,
    t: &LiteTask,
    commit_time: f64,
) -> f64 {
    match t.state() {
        TaskStatus::Running => {
            let start = t.started_at().unwrap_or(commit_time);
            if let Some(&i) = open.get(task) {
                if attempts[i].n == t.attempts {
                    return start;
                }
                // A new attempt while the old one never ended.
                attempts[i].end = Some(start.max(attempts[i].start));
                attempts[i].outcome = "interrupted".to_string();
            }
            let i = push(attempts, task, phase_of, t.attempts, start);
            open.insert(task.to_string(), i);
            latest.insert(task.to_string(), i);
            start
        }
        TaskStatus::Done
        | TaskStatus::Failed
        | TaskStatus::Conflict
        | TaskStatus::Review
        | TaskStatus::Parked => {
            let end = t.ended_at().unwrap_or(commit_time);
            let i = match open.remove(task) {
                Some(i) => i,
                None => {
                    // No attempt open: a conflict resolved (or failed) by
                    // hand. It is a new bar from where the last one ended.
                    let start = latest
                        .get(task)
                        .and_then(|&i| attempts[i].end)
                        .or(t.started_at())
                        .unwrap_or(end)
                        .min(end);
                    let i = push(attempts, task, phase_of, t.attempts, start);
                    latest.insert(task.to_string(), i);
                    i
                }
            };
            let a = &mut attempts[i];
            a.end = Some(end.max(a.start));
            a.outcome = t.state.as_str().to_string();
            a.reason = t.reason().map(str::to_string);
            a.log = t.log.clone();
            if t.state() == TaskStatus::Done {
                a.changed = t.changed().to_vec();
            }
            end
        }
        TaskStatus::Pending | TaskStatus::Skipped => {
            let outcome = if t.state() == TaskStatus::Skipped {
                "skipped"
            } else {
                "interrupted"
            };
            match open.remove(task) {
                Some(i) => {
                    let a = &mut attempts[i];
                    a.end = Some(commit_time.max(a.start));
                    a.outcome = outcome.to_string();
                    a.reason = t.reason().map(str::to_string);
                }
                None if t.state() == TaskStatus::Skipped => {
                    let i = push(attempts, task, phase_of, t.attempts, commit_time);
                    attempts[i].end = Some(commit_time);
                    attempts[i].outcome = outcome.to_string();
                    attempts[i].reason = t.reason().map(str::to_string);
                    latest.insert(task.to_string(), i);
                }
                None => {}
            }
            commit_time
        }
    }
}

fn push(
    attempts: &mut Vec<Attempt>,
    task: &str,
    phase_of: &HashMap<&str, &str>,
    n: u32,
    start: f64,
) -> usize {
    attempts.push(Attempt {
        task: task.to_string(),
        phase: phase_of.get(task).copied().unwrap_or("").to_string(),
        n,
        start,
        end: None,
        outcome: "running".to_string(),
        reason: None,
        log: None,
        changed: Vec::new(),
        slot: 0,
    });
    attempts.len() - 1
}

fn read_lite(repo: &Repo, tree: git2::Oid, only: Option<&str>) -> Result<Option<LiteState>> {
    let Some(bytes) = repo.read_path(tree, state::layout::V1_STATE_FILE)? else {
        return Ok(None);
    };
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    Ok(LiteSeed { only }.deserialize(&mut de).ok())
}

/// What a state commit's one-line summary is about.
fn classify(summary: &str, first: bool) -> (&'static str, Option<String>) {
    let id_before_colon = |rest: &str| rest.split(':').next().map(|s| s.trim().to_string());
    if first {
        return ("start", None);
    }
    if let Some(rest) = summary.strip_prefix("task ") {
        return ("task", id_before_colon(rest));
    }
    if let Some(rest) = summary.strip_prefix("checkpoint ") {
        return ("checkpoint", id_before_colon(rest));
    }
    if summary.starts_with("gates on ") {
        return ("gates", None);
    }
    if let Some(rest) = summary.strip_prefix("rollback to ") {
        let target = rest.split([':', ' ']).next().map(str::to_string);
        let kind = if rest.contains(" undone") {
            "undo"
        } else {
            "rollback"
        };
        return (kind, target);
    }
    if summary.starts_with("plan ") && summary.ends_with(": finished") {
        return ("finish", None);
    }
    ("other", None)
}

/// Greedy interval partitioning: each attempt, in order of start, goes to
/// the first row free by then. Returns the number of rows.
fn assign_slots(attempts: &mut [Attempt], now: f64) -> usize {
    let mut order: Vec<usize> = (0..attempts.len()).collect();
    order.sort_by(|&a, &b| attempts[a].start.total_cmp(&attempts[b].start));
    let mut free_at: Vec<f64> = Vec::new();
    for i in order {
        let a = &mut attempts[i];
        let end = a.end.unwrap_or(now).max(a.start);
        match free_at.iter().position(|&f| f <= a.start) {
            Some(slot) => {
                free_at[slot] = end;
                a.slot = slot;
            }
            None => {
                free_at.push(end);
                a.slot = free_at.len() - 1;
            }
        }
    }
    free_at.len()
}

fn task_reports(
    repo: &Repo,
    snap: &Snapshot,
    records: &BTreeMap<String, Arc<TaskState>>,
) -> Result<Vec<TaskReport>> {
    let mut out = Vec::new();
    for (phase, task) in snap.plan.tasks() {
        let t = records.get(&task.id).map(|t| &**t);
        let seconds = t.and_then(|t| t.seconds).or_else(|| {
            t.filter(|t| t.state() == TaskStatus::Running)
                .and_then(|t| t.started_at())
                .map(|s| state::now() - s)
        });
        let estimate_seconds = task
            .estimate
            .as_deref()
            .and_then(|e| parse_duration(e).ok())
            .map(|d| d.as_secs());
        let handoff = match t {
            Some(_) => snap
                .handoff(repo, &task.id)?
                .map(|b| String::from_utf8_lossy(&b).into_owned()),
            _ => None,
        };
        let usage = super::ledger::task_usage(t);
        out.push(TaskReport {
            id: task.id.clone(),
            phase: phase.id.clone(),
            title: task.title.clone(),
            state: t
                .map_or(TaskStatus::Pending, |t| t.state())
                .as_str()
                .to_string(),
            attempts: t.map_or(0, |t| t.attempts),
            seconds,
            estimate: task.estimate.clone(),
            estimate_seconds,
            vs_estimate: match (seconds, estimate_seconds) {
                (Some(s), Some(e)) if e > 0 => Some(s / e as f64),
                _ => None,
            },
            started_at: t.and_then(|t| t.started_at()),
            ended_at: t.and_then(|t| t.ended_at()),
            files: task.files.clone(),
            changed: t.map(|t| t.changed().to_vec()).unwrap_or_default(),
            depends_on: task.depends_on.clone(),
            reason: t.and_then(|t| t.reason().map(str::to_string)),
            log: t.and_then(|t| t.log.clone()),
            landed: t.and_then(|t| t.landed()).map(|c| c.to_string()),
            branch: t
                .filter(|t| t.attempts > 0)
                .map(|_| format!("orch/{}/tasks/{}", snap.plan_name, task.id)),
            handoff,
            agent: t.and_then(|t| t.agent.clone()),
            tokens_in: usage.map(|u| u.0),
            tokens_out: usage.map(|u| u.1),
            cost_usd: usage.map(|u| u.2),
            usage: t.map(|t| t.usage.clone()).unwrap_or_default(),
        });
    }
    Ok(out)
}

fn phase_reports(snap: &Snapshot, attempts: &[Attempt]) -> Vec<PhaseReport> {
    snap.plan
        .phases
        .iter()
        .map(|p| {
            let ps = snap.state.phases.get(&p.id);
            PhaseReport {
                id: p.id.clone(),
                title: p.title.clone(),
                state: snap.phase_status(&p.id).as_str().to_string(),
                tasks: p.tasks.iter().map(|t| t.id.clone()).collect(),
                started_at: attempts
                    .iter()
                    .filter(|a| a.phase == p.id && a.n > 0)
                    .map(|a| a.start)
                    .reduce(f64::min),
                checkpoint: ps
                    .and_then(|s| s.checkpoint.as_ref())
                    .map(|c| CheckpointInfo {
                        tag: c.tag.name.clone(),
                        commit: c.commit.to_string(),
                        at: c.at,
                    }),
                gates: ps.map(|s| s.gates.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

fn totals(tasks: &[TaskReport], attempts: usize, started: f64, ended: f64) -> Totals {
    let mut t = Totals {
        tasks: tasks.len(),
        attempts,
        wall_seconds: (ended - started).max(0.0),
        ..Totals::default()
    };
    for task in tasks {
        match task.state.as_str() {
            // A parked task waits to run again: pending, as far as totals go.
            "pending" | "parked" => t.pending += 1,
            "running" => t.running += 1,
            "done" => t.done += 1,
            "failed" => t.failed += 1,
            "conflict" => t.conflict += 1,
            _ => t.skipped += 1,
        }
        t.task_seconds += task.seconds.unwrap_or(0.0);
        if let (Some(s), Some(e)) = (task.seconds, task.estimate_seconds) {
            t.measured_seconds += s;
            t.estimated_seconds += e as f64;
        }
    }
    t
}

/// Failed and conflicting attempts, then failed gates of the latest runs.
fn failures(attempts: &[Attempt], phases: &[PhaseReport]) -> Vec<Failure> {
    let mut out: Vec<Failure> = attempts
        .iter()
        .filter(|a| matches!(a.outcome.as_str(), "failed" | "conflict"))
        .map(|a| Failure {
            kind: "task".to_string(),
            name: a.task.clone(),
            phase: a.phase.clone(),
            attempt: Some(a.n),
            at: a.end,
            reason: a.reason.clone().or_else(|| Some(a.outcome.clone())),
            log: a.log.clone(),
        })
        .collect();
    for p in phases {
        for g in p.gates.iter().filter(|g| !g.passed) {
            out.push(Failure {
                kind: "gate".to_string(),
                name: g.name.clone(),
                phase: p.id.clone(),
                attempt: None,
                at: None,
                reason: Some(
                    g.reason.clone().unwrap_or_else(|| {
                        format!("`{}` failed on {}", g.command, g.commit.short())
                    }),
                ),
                log: Some(g.log.clone()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(start: f64, end: Option<f64>) -> Attempt {
        Attempt {
            task: "t".into(),
            phase: "p".into(),
            n: 1,
            start,
            end,
            outcome: "done".into(),
            reason: None,
            log: None,
            changed: Vec::new(),
            slot: 99,
        }
    }

    #[test]
    fn overlapping_attempts_get_different_slots_and_rows_are_reused() {
        let mut a = vec![
            attempt(0.0, Some(10.0)),
            attempt(1.0, Some(5.0)),
            attempt(6.0, Some(12.0)),  // row 1 is free again at 5
            attempt(10.0, Some(11.0)), // row 0 free at 10
            attempt(2.0, None),        // still running: row 2 until "now"
        ];
        let rows = assign_slots(&mut a, 100.0);
        let slots: Vec<usize> = a.iter().map(|a| a.slot).collect();
        assert_eq!(slots, vec![0, 1, 1, 0, 2]);
        assert_eq!(rows, 3);
    }

    #[test]
    fn summaries_are_classified() {
        assert_eq!(classify("anything", true), ("start", None));
        assert_eq!(
            classify("task schema: done", false),
            ("task", Some("schema".into()))
        );
        assert_eq!(
            classify("task a.b-c: failed (exit 1)", false),
            ("task", Some("a.b-c".into()))
        );
        assert_eq!(
            classify("checkpoint setup: passed at 0123456789", false),
            ("checkpoint", Some("setup".into()))
        );
        assert_eq!(
            classify(
                "rollback to setup: work at 0123, 2 task(s) pending again",
                false
            ),
            ("rollback", Some("setup".into()))
        );
        assert_eq!(
            classify("rollback to start undone: work at 0123", false),
            ("undo", Some("start".into()))
        );
        assert_eq!(classify("gates on 0123: unit passed", false).0, "gates");
        assert_eq!(classify("plan p: finished", false).0, "finish");
    }
}
