//! Agents (issue 11): which of a task's agents runs an attempt (the first
//! under its `parallel` cap, then the next), what that attempt runs, and
//! how an attempt's end is classified (success, transient, usage limit,
//! failure) so that the runner knows whether to retry it. Pure functions
//! of the plan and a snapshot; the runner and the claim use them.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;

use crate::plan::{Plan, RetryOn, RetryPolicy, Task};
use crate::process::Exit;
use crate::state::{Snapshot, TaskStatus};

/// How many tasks each agent runs right now, per the state.
pub fn in_use(snap: &Snapshot) -> Result<BTreeMap<String, usize>> {
    let mut n = BTreeMap::new();
    for id in &snap.state.active {
        let t = snap.task(id)?;
        if t.state() != TaskStatus::Running {
            continue;
        }
        if let Some(agent) = &t.agent {
            *n.entry(agent.clone()).or_insert(0) += 1;
        }
    }
    Ok(n)
}

/// Who runs the next attempt of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Not an agent's: its own `run`, or `defaults.run`.
    Command,
    /// This agent, the first of the task's list with room.
    Agent(String),
    /// Every one of its agents is at its cap: it waits.
    Busy,
}

/// The first of `task`'s agents with room under its cap, counting `in_use`.
pub fn route(plan: &Plan, task: &Task, in_use: &BTreeMap<String, usize>) -> Route {
    let names = plan.task_agents(task);
    if names.is_empty() {
        return Route::Command;
    }
    for name in names {
        let cap = plan.agents.get(name).and_then(|a| a.parallel);
        let used = in_use.get(name).copied().unwrap_or(0);
        if cap.is_none_or(|c| used < c) {
            return Route::Agent(name.clone());
        }
    }
    Route::Busy
}

/// What an attempt runs: its command, the extra environment and its limit.
pub struct Command {
    pub run: String,
    pub env: Vec<(String, String)>,
    pub timeout: Option<Duration>,
}

/// The command of an attempt of `task` run by `agent` (`None`: its own).
pub fn command(plan: &Plan, task: &Task, agent: Option<&str>) -> Option<Command> {
    let profile = agent.and_then(|a| plan.agents.get(a));
    let run = match profile {
        Some(p) => p.run.clone(),
        None => task.run.clone().or_else(|| plan.defaults.run.clone())?,
    };
    let mut env: Vec<(String, String)> = profile
        .map(|p| p.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    if let Some(a) = agent {
        env.push(("ORCH_AGENT".into(), a.to_string()));
    }
    Some(Command {
        run,
        env,
        timeout: plan.attempt_timeout(task, agent),
    })
}

/// How an attempt of a task's command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptEnd {
    Success,
    /// Worth another attempt (its `retry_on` says so), with why.
    Transient(String),
    /// The agent says its usage limit is reached ([`USAGE_LIMIT_EXIT`]).
    /// Retried like a transient failure for now; parking comes later.
    UsageLimit(String),
    Failure(String),
}

/// The exit code with which an agent (or its wrapper) says it hit a usage
/// limit: `EX_TEMPFAIL` of sysexits.h, "try again later".
pub const USAGE_LIMIT_EXIT: i32 = 75;

/// Classifies an attempt's end from its exit and its log, by `on` (a
/// task's `retry_on`; `None`: every failure of the command is transient).
/// Stopped by this process is not an end (the runner handles it first).
pub fn classify(exit: &Exit, log: &[u8], on: Option<&RetryOn>) -> AttemptEnd {
    let why = exit.describe();
    if exit.success() {
        return AttemptEnd::Success;
    }
    if *exit == Exit::Code(USAGE_LIMIT_EXIT) {
        return AttemptEnd::UsageLimit(format!("{why} (usage limit)"));
    }
    if matches!(exit, Exit::NotStarted(_) | Exit::Stopped(_)) {
        return AttemptEnd::Failure(why);
    }
    let Some(on) = on else {
        return AttemptEnd::Transient(why);
    };
    let transient = match exit {
        Exit::Code(c) => on.exit_codes.contains(c),
        Exit::TimedOut(_) => on.timeout,
        _ => false,
    } || on
        .output
        .as_deref()
        .is_some_and(|p| regex::bytes::Regex::new(p).is_ok_and(|re| re.is_match(log)));
    if transient {
        AttemptEnd::Transient(why)
    } else {
        AttemptEnd::Failure(why)
    }
}

/// After attempt `attempt` ended as `end`: the wait before the next one,
/// or `None` when the task fails now (not transient, or out of retries).
/// The wait doubles with each retry: backoff, 2×backoff, 4×backoff, …
pub fn retry_after(end: &AttemptEnd, attempt: u32, policy: &RetryPolicy) -> Option<Duration> {
    if !matches!(end, AttemptEnd::Transient(_) | AttemptEnd::UsageLimit(_)) {
        return None;
    }
    // Attempts are counted from 1; attempt n is retry n-1.
    if attempt == 0 || attempt > policy.retries {
        return None;
    }
    let doublings = (attempt - 1).min(16);
    Some(policy.backoff.saturating_mul(1 << doublings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(codes: &[i32], output: Option<&str>, timeout: bool) -> RetryOn {
        RetryOn {
            exit_codes: codes.to_vec(),
            output: output.map(str::to_string),
            timeout,
        }
    }

    #[test]
    fn classify_by_retry_on() {
        let t = |e: &AttemptEnd| matches!(e, AttemptEnd::Transient(_));
        assert_eq!(classify(&Exit::Code(0), b"", None), AttemptEnd::Success);
        assert!(t(&classify(&Exit::Code(1), b"", None)), "no retry_on: any");
        let r = on(&[3], Some("rate.?limit"), false);
        assert!(t(&classify(&Exit::Code(3), b"", Some(&r))));
        assert!(!t(&classify(&Exit::Code(4), b"boom", Some(&r))));
        assert!(t(&classify(&Exit::Code(4), b"hit a rate limit", Some(&r))));
        let d = Duration::from_secs(1);
        assert!(!t(&classify(&Exit::TimedOut(d), b"", Some(&r))));
        assert!(t(&classify(
            &Exit::TimedOut(d),
            b"",
            Some(&on(&[], None, true))
        )));
        assert!(matches!(
            classify(&Exit::Code(USAGE_LIMIT_EXIT), b"", Some(&r)),
            AttemptEnd::UsageLimit(_)
        ));
    }

    #[test]
    fn backoff_doubles_until_retries_run_out() {
        let p = RetryPolicy {
            retries: 3,
            backoff: Duration::from_millis(100),
            on: None,
        };
        let tr = AttemptEnd::Transient("x".into());
        let ms = |n| retry_after(&tr, n, &p).map(|d| d.as_millis());
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(4)],
            [Some(100), Some(200), Some(400), None]
        );
        assert_eq!(retry_after(&AttemptEnd::Failure("x".into()), 1, &p), None);
    }
}
