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

/// The agents at a usage limit now (per the state), with when each resets.
pub fn limited_now(snap: &Snapshot) -> BTreeMap<String, f64> {
    let now = crate::state::now();
    snap.state
        .limited
        .iter()
        .filter(|(_, until)| **until > now)
        .map(|(a, u)| (a.clone(), *u))
        .collect()
}

/// The first of `task`'s agents with room under its cap, counting `in_use`,
/// and not at a usage limit (`limited`: see [`limited_now`]).
pub fn route(
    plan: &Plan,
    task: &Task,
    in_use: &BTreeMap<String, usize>,
    limited: &BTreeMap<String, f64>,
) -> Route {
    let names = plan.task_agents(task);
    if names.is_empty() {
        return Route::Command;
    }
    for name in names {
        if limited.contains_key(name) {
            continue;
        }
        let cap = plan.agents.get(name).and_then(|a| a.parallel);
        let used = in_use.get(name).copied().unwrap_or(0);
        if cap.is_none_or(|c| used < c) {
            return Route::Agent(name.clone());
        }
    }
    Route::Busy
}

/// The time limit of a kind agent's attempt when neither the task, its
/// profile nor the defaults give one.
pub const KIND_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// What an attempt runs: its command, the extra environment and its limit.
pub struct Command {
    pub run: String,
    pub env: Vec<(String, String)>,
    pub timeout: Option<Duration>,
    /// The agent, when its kind's command line is built by git-orch in
    /// the task's worktree (see [`crate::agent`]).
    pub kind: Option<(String, crate::plan::Agent)>,
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
        // A real agent waiting on a network that never answers must end.
        timeout: plan.attempt_timeout(task, agent).or(profile
            .filter(|p| !p.kind.is_command())
            .map(|_| KIND_TIMEOUT)),
        kind: agent
            .zip(profile)
            .filter(|(_, p)| !p.kind.is_command())
            .map(|(a, p)| (a.to_string(), p.clone())),
    })
}

/// The time limit of a run of `profile` that is not a task's attempt (a
/// fix-forward, a conflict's resolver): its own `timeout`; for a kind
/// agent, else `defaults.timeout`, else [`KIND_TIMEOUT`], as for its
/// attempts (Codex with no network waits for it forever).
pub fn side_timeout(plan: &Plan, profile: &crate::plan::Agent) -> Option<Duration> {
    let own = profile
        .timeout
        .as_deref()
        .and_then(|t| crate::plan::parse_duration(t).ok());
    if profile.kind.is_command() {
        return own;
    }
    own.or(plan
        .defaults
        .timeout
        .as_deref()
        .and_then(|t| crate::plan::parse_duration(t).ok()))
        .or(Some(KIND_TIMEOUT))
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
pub const USAGE_LIMIT_EXIT: i32 = crate::plan::USAGE_LIMIT_EXIT;

/// Whether an attempt of `agent` that ended with `exit` and `log` hit a
/// usage limit: exit code 75, or its profile's `usage_limit` says so.
pub fn usage_limited(plan: &Plan, agent: Option<&str>, exit: &Exit, log: &[u8]) -> bool {
    if *exit == Exit::Code(USAGE_LIMIT_EXIT) {
        return true;
    }
    let Some(limit) = agent
        .and_then(|a| plan.agents.get(a))
        .and_then(|a| a.usage_limit.as_ref())
    else {
        return false;
    };
    if exit.success() || matches!(exit, Exit::NotStarted(_) | Exit::Stopped(_)) {
        return false;
    }
    matches!(exit, Exit::Code(c) if limit.exit_codes.contains(c))
        || limit
            .output
            .as_deref()
            .is_some_and(|p| regex::bytes::Regex::new(p).is_ok_and(|re| re.is_match(log)))
}

/// A reset file may say when a usage limit resets: at most this many bytes
/// of it are read.
pub const RESET_FILE_LIMIT: u64 = 256;

/// When a usage limit that an attempt hit at `at` resets: the time the
/// agent wrote to its reset file (`text`: seconds since the epoch, or an
/// RFC 3339 time such as `2026-12-01T13:05:00Z`), else its profile's
/// `usage_limit.wait` after `at`, else 15 minutes after. Never sooner than
/// [`crate::plan::PARK_FLOOR`] after `at` (a reset time of now, or a past
/// one, would run the agent again at once, and again); the reset file is
/// trusted for at most a week ahead.
pub fn reset_time(plan: &Plan, agent: Option<&str>, text: Option<&str>, at: f64) -> f64 {
    const WEEK: f64 = 7.0 * 24.0 * 3600.0;
    let floor = at + park_floor();
    if let Some(t) = text.and_then(parse_reset) {
        return t.clamp(floor, at + WEEK);
    }
    let wait = agent
        .and_then(|a| plan.agents.get(a))
        .and_then(|a| a.usage_limit.as_ref())
        .and_then(|l| l.wait.as_deref())
        .and_then(|w| crate::plan::parse_duration(w).ok())
        .unwrap_or(crate::plan::USAGE_LIMIT_WAIT);
    (at + wait.as_secs_f64()).max(floor)
}

/// [`crate::plan::PARK_FLOOR`], in seconds. Only a build with the
/// `failpoints` feature (the tests') reads `ORCH_TEST_PARK_FLOOR` to
/// lower it, so that a test of parking need not wait real minutes; a
/// release build has no way to.
fn park_floor() -> f64 {
    #[cfg(feature = "failpoints")]
    if let Some(secs) = std::env::var("ORCH_TEST_PARK_FLOOR")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite())
    {
        return secs.max(0.0);
    }
    crate::plan::PARK_FLOOR.as_secs_f64()
}

/// How many times a usage limit of `agent` may park a task: its
/// `usage_limit.parks`, else [`crate::plan::MAX_PARKS`].
pub fn max_parks(plan: &Plan, agent: Option<&str>) -> u32 {
    agent
        .and_then(|a| plan.agents.get(a))
        .and_then(|a| a.usage_limit.as_ref())
        .and_then(|l| l.parks)
        .unwrap_or(crate::plan::MAX_PARKS)
}

/// Seconds since the epoch, or an RFC 3339 date-time (`Z` or `±hh:mm`).
pub fn parse_reset(text: &str) -> Option<f64> {
    let text = text.trim();
    if let Ok(n) = text.parse::<f64>() {
        return n.is_finite().then_some(n);
    }
    rfc3339(text)
}

fn rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        frac = format!("0.{}", &r[..digits]).parse().ok()?;
        rest = &r[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        // `get`, not a slice: an agent may write any bytes here.
        _ if rest.len() == 6
            && matches!(rest.get(..1), Some("+" | "-"))
            && rest.get(3..4) == Some(":") =>
        {
            let oh: i64 = rest.get(1..3)?.parse().ok()?;
            let om: i64 = rest.get(4..6)?.parse().ok()?;
            let o = oh * 3600 + om * 60;
            if rest.starts_with('-') {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + sec - offset) as f64 + frac)
}

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
    fn a_kind_agents_fix_forward_or_resolver_run_has_a_time_limit() {
        use crate::plan::{Agent, AgentKind};
        let mut plan = crate::plan::load_str(
            "name = \"p\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nrun = \"true\"\n",
            crate::plan::Format::Toml,
        )
        .map(|(p, _)| p)
        .expect("a valid plan");
        let kind = Agent {
            kind: AgentKind::Codex,
            ..Agent::default()
        };
        assert_eq!(side_timeout(&plan, &kind), Some(KIND_TIMEOUT));
        plan.defaults.timeout = Some("5m".into());
        assert_eq!(side_timeout(&plan, &kind), Some(Duration::from_secs(300)));
        let own = Agent {
            timeout: Some("90s".into()),
            ..kind
        };
        assert_eq!(side_timeout(&plan, &own), Some(Duration::from_secs(90)));
        // A `run` agent's stays as it was: its own, or none.
        let cmd = Agent {
            run: "x".into(),
            ..Agent::default()
        };
        assert_eq!(side_timeout(&plan, &cmd), None);
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
    fn reset_times_read_as_epoch_or_rfc_3339() {
        assert_eq!(parse_reset("1700000000\n"), Some(1_700_000_000.0));
        assert_eq!(parse_reset("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_reset("2026-12-01T13:05:00Z"), Some(1_796_130_300.0));
        assert_eq!(
            parse_reset("2026-12-01T14:05:00+01:00"),
            parse_reset("2026-12-01T13:05:00Z")
        );
        assert_eq!(parse_reset("2026-12-01T13:05:00.5Z"), Some(1_796_130_300.5));
        for bad in [
            "",
            "soon",
            "2026-13-01T00:00:00Z",
            "2026-12-01T13:05:00",
            "NaN",
            "inf",
        ] {
            assert_eq!(parse_reset(bad), None, "{bad}");
        }
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

#[cfg(test)]
mod fuzz_tests {
    use proptest::prelude::*;

    proptest! {
        /// A reset-time file is whatever an agent wrote: any text reads as
        /// a time or as none, never a panic (multi-byte offsets included).
        #[test]
        fn any_reset_file_reads_without_a_panic(
            text in prop_oneof![
                "\\PC{0,40}",
                "20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\PC{0,8}",
            ],
        ) {
            let _ = super::parse_reset(&text);
        }

        /// A usage file likewise: any bytes are a usage or an error on the
        /// attempt.
        #[test]
        fn any_usage_file_reads_without_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = crate::engine::ledger::parse(&bytes, true, 1, Some("a"));
        }
    }

    #[test]
    fn a_reset_time_with_a_multi_byte_offset_is_no_time() {
        assert_eq!(super::parse_reset("2026-12-01T13:05:00é1:00"), None);
        assert_eq!(super::parse_reset("2026-12-01T13:05:00+é:00"), None);
    }
}
