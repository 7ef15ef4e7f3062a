//! Usage limits: an attempt whose agent hit one parks its task (its
//! worktree kept) until the limit resets, and what each attempt cost goes
//! to the ledger.

use std::collections::BTreeSet;

use anyhow::Result;

use super::{Done, Ran, RunOptions};
use crate::engine::agents;
use crate::git::Repo;
use crate::state::{self, store, transition, Snapshot, TaskStatus};

/// Parked tasks (of the selection) whose wake time has passed, in plan order.
pub(super) fn due_parked(
    snap: &Snapshot,
    opts: &RunOptions,
    running: &BTreeSet<String>,
) -> Result<Vec<String>> {
    let now = state::now();
    let mut due = Vec::new();
    for (phase, task) in snap.plan.tasks() {
        if !snap.state.active.contains(&task.id)
            || running.contains(&task.id)
            || opts.task.as_ref().is_some_and(|t| *t != task.id)
            || opts.phase.as_ref().is_some_and(|p| *p != phase.id)
        {
            continue;
        }
        let t = snap.task(&task.id)?;
        if t.parked_until().is_some_and(|u| u <= now) {
            due.push(task.id.clone());
        }
    }
    Ok(due)
}

/// Records what an attempt's usage file said on its task (one state
/// commit, only when it wrote one); a file that could not be read is
/// noted, and the note returned for the task's output.
pub(super) fn record_usage(repo: &Repo, plan: &str, done: &Done) -> Result<Option<String>> {
    let (file, report) = match &done.result {
        Ok(Ran { usage, report, .. }) if usage.is_some() || report.is_some() => (usage, report),
        _ => return Ok(None),
    };
    let id = done.id.as_str();
    let mut note = None;
    store::transact(repo, plan, |snap, change| {
        if snap.task_status(id)? != TaskStatus::Running {
            return Ok(());
        }
        let t = change.task(id)?;
        let attempt = t.attempts.max(1);
        // A kind agent's own report; a `command` agent's usage file.
        let u = match (report, file) {
            (Some(r), _) => crate::engine::ledger::from_report(r, attempt, done.agent.as_deref()),
            (None, Some((bytes, whole))) => {
                crate::engine::ledger::parse(bytes, *whole, attempt, done.agent.as_deref())
            }
            (None, None) => return Ok(()),
        };
        note = u
            .error
            .as_ref()
            .map(|e| format!("git-orch: {e} (see ORCH_USAGE_FILE in the README)"));
        change.event = Some(state::Event::TaskUsage {
            task: id.to_string(),
            attempt,
            agent: u.agent.clone(),
            tokens_in: u.tokens_in,
            tokens_out: u.tokens_out,
            cost_usd: u.cost_usd,
            model: u.model.clone(),
            error: u.error.clone(),
            tokens_cached: u.tokens_cached,
            session: u.session.clone(),
            turns: u.turns,
            denied: u.denied.clone(),
            outcome: u.outcome.clone(),
            reason: u.reason.clone(),
            at: state::now(),
        });
        change.put_task(id, transition::note_usage(&t, u));
        Ok(())
    })?;
    Ok(note)
}

/// What became of a task whose agent hit a usage limit.
pub(super) enum Parking {
    /// Parked until then, for this reason.
    Parked(f64, String),
    /// Parked as many times as it may be: it fails, for this reason.
    TooOften(String),
    /// No longer running here: nothing was done.
    NotRunning,
}

/// Parks a task whose agent hit a usage limit (one state commit): the
/// agent is marked limited until its reset time, and the task waits,
/// worktree kept, until the first of its agents is free again (now, when a
/// fallback is). A task that has parked as often as its agent's
/// `usage_limit.parks` allows is not parked again: [`Parking::TooOften`],
/// and the caller fails it.
pub(super) fn park(
    repo: &Repo,
    plan: &str,
    done: &Done,
    why: &str,
    agent: Option<&str>,
) -> Result<Parking> {
    let Ok(ran) = &done.result else {
        return Ok(Parking::NotRunning);
    };
    let id = done.id.as_str();
    let mut parked = Parking::NotRunning;
    store::transact(repo, plan, |snap, change| {
        // Run again on a lost race: decided afresh each time.
        parked = Parking::NotRunning;
        if snap.task_status(id)? != TaskStatus::Running {
            return Ok(());
        }
        let cap = agents::max_parks(&snap.plan, agent);
        let parks = snap.task(id)?.parks;
        if parks >= cap {
            let by = agent.map_or_else(String::new, |a| format!(" of agent {a}"));
            parked = Parking::TooOften(format!(
                "a usage limit{by} parked it {parks} time{} and it hit one again ({why}): \
                 the limit does not reset (`usage_limit.parks` caps the parks of a task, default {})",
                if parks == 1 { "" } else { "s" },
                crate::plan::MAX_PARKS
            ));
            return Ok(());
        }
        let at = state::now();
        let reset = agents::reset_time(&snap.plan, agent, ran.reset.as_deref(), at);
        if let Some(a) = agent {
            let e = change.state.limited.entry(a.to_string()).or_insert(reset);
            *e = e.max(reset);
        }
        // Limits that have passed are forgotten.
        change.state.limited.retain(|_, u| *u > at);
        let names = snap
            .plan
            .task(id)
            .map(|(_, t)| snap.plan.task_agents(t).to_vec())
            .unwrap_or_default();
        let until = if names.is_empty() {
            reset
        } else {
            names
                .iter()
                .map(|n| change.state.limited.get(n).copied().unwrap_or(at))
                .fold(f64::INFINITY, f64::min)
        };
        let reason = match agent {
            Some(a) => format!("agent {a} hit its usage limit: {why}"),
            None => format!("usage limit: {why}"),
        };
        let t = change.task(id)?;
        let attempt = t.attempts.max(1);
        let path = state::layout::task_log(id, attempt);
        let t = transition::park(
            &t,
            until,
            reason.clone(),
            at,
            Some(ran.finished.seconds),
            Some(path.clone()),
        )
        .map_err(|w| w.about(id))?;
        change.put_task(id, t);
        change.file(path.clone(), ran.finished.log.clone());
        change.event = Some(state::Event::TaskParked {
            task: id.to_string(),
            attempt,
            agent: agent.map(str::to_string),
            until,
            reason: reason.clone(),
            log: Some(path),
            at,
        });
        parked = Parking::Parked(until, reason);
        Ok(())
    })?;
    Ok(parked)
}
