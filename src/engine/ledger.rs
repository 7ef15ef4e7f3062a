//! The cost and time ledger (issue 11). A task's command (or its agent's
//! wrapper) may write a usage file, `$ORCH_USAGE_FILE`: one JSON object
//! `{"tokens_in": N, "tokens_out": N, "cost_usd": X, "model": "…"}`, every
//! field optional, other fields ignored. git-orch reads at most
//! [`USAGE_LIMIT`] bytes of it after each attempt and records it on the
//! task's record, per attempt, with the agent the attempt ran with (a
//! `task-usage` event). A file that is too big or not such an object is
//! recorded as an error on that attempt, never fatal.
//!
//! [`Ledger`] sums time and usage per task, agent, phase and plan against
//! the estimates, and estimates the task time left: every unsettled task's
//! estimate times the plan's measured rate (measured ÷ estimated over the
//! settled tasks that have both; 1 before there are any), and for a task
//! without an estimate the mean measured time of the settled tasks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::plan::{parse_duration, Plan};
use crate::state::{TaskState, Usage};

/// The ledger's name for the tasks a person did by hand (not an id, so
/// no agent of `[agents]` can have it).
pub const BY_HAND: &str = "(by hand)";

/// A row of the ledger's agents, in words: `agent NAME`, or `by hand`.
pub fn who(name: &str) -> String {
    if name == BY_HAND {
        "by hand".to_string()
    } else {
        format!("agent {name}")
    }
}

/// At most this many bytes of a usage file are read; a bigger one is refused.
pub const USAGE_LIMIT: usize = 64 * 1024;

#[derive(Deserialize)]
struct UsageFile {
    #[serde(default)]
    tokens_in: Option<u64>,
    #[serde(default)]
    tokens_out: Option<u64>,
    #[serde(default)]
    cost_usd: Option<f64>,
    #[serde(default)]
    model: Option<String>,
}

/// What a usage file says, for attempt `attempt` run by `agent`; a bad
/// file gives a record that says why it was not read.
pub fn parse(bytes: &[u8], complete: bool, attempt: u32, agent: Option<&str>) -> Usage {
    let mut usage = Usage {
        attempt,
        agent: agent.map(str::to_string),
        ..Usage::default()
    };
    if !complete {
        usage.error = Some(format!(
            "the usage file is larger than {} KiB; ignored",
            USAGE_LIMIT / 1024
        ));
        return usage;
    }
    // An object, not the array form serde would also take for a struct.
    let read = serde_json::from_slice::<serde_json::Value>(bytes)
        .map_err(|e| e.to_string())
        .and_then(|v| match v.is_object() {
            true => serde_json::from_value::<UsageFile>(v).map_err(|e| e.to_string()),
            false => Err("it is not an object".to_string()),
        });
    match read {
        Err(e) => {
            usage.error = Some(format!(
                "the usage file is not a JSON object of tokens_in, tokens_out, cost_usd, model: {e}"
            ))
        }
        Ok(f) if f.cost_usd.is_some_and(|c| !c.is_finite() || c < 0.0) => {
            usage.error = Some("the usage file's cost_usd is not a number ≥ 0".into())
        }
        Ok(f) => {
            usage.tokens_in = f.tokens_in;
            usage.tokens_out = f.tokens_out;
            usage.cost_usd = f.cost_usd;
            usage.model = f.model.map(|m| {
                m.chars()
                    .filter(|c| !c.is_control())
                    .take(100)
                    .collect::<String>()
            });
        }
    }
    usage
}

/// What a kind agent's own output said of attempt `attempt`.
pub fn from_report(r: &crate::agent::Report, attempt: u32, agent: Option<&str>) -> Usage {
    use crate::agent::Class;
    let (outcome, reason) = match &r.class {
        Some(Class::Success) => (Some("success"), None),
        Some(Class::Transient(w)) => (Some("transient"), Some(w.clone())),
        Some(Class::UsageLimit(w)) => (Some("usage-limit"), Some(w.clone())),
        Some(Class::Fatal(w)) => (Some("fatal"), Some(w.clone())),
        None => (None, None),
    };
    Usage {
        attempt,
        agent: agent.map(str::to_string),
        tokens_in: r.tokens_in,
        tokens_out: r.tokens_out,
        cost_usd: r.cost_usd,
        model: r.model.clone(),
        error: None,
        tokens_cached: r.tokens_cached,
        session: r.session.clone(),
        turns: r.turns,
        denied: r.denied.clone(),
        outcome: outcome.map(str::to_string),
        reason,
        resumed: r.resumed,
    }
}

/// A task's usage files summed: tokens in, out, cost; `None` before any.
pub fn task_usage(t: Option<&TaskState>) -> Option<(u64, u64, f64)> {
    let usage = &t?.usage;
    (!usage.is_empty()).then(|| {
        usage.iter().fold((0, 0, 0.0), |(i, o, c), u| {
            (
                i + u.tokens_in.unwrap_or(0),
                o + u.tokens_out.unwrap_or(0),
                c + u.cost_usd.unwrap_or(0.0),
            )
        })
    })
}

/// Time and usage summed over some tasks.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Spent {
    pub tasks: usize,
    pub attempts: u32,
    /// Measured task time.
    pub seconds: f64,
    /// Sum of the estimates of these tasks that have one.
    pub estimated_seconds: f64,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
}

impl Spent {
    fn add_usage(&mut self, u: &Usage) {
        self.tokens_in += u.tokens_in.unwrap_or(0);
        self.tokens_out += u.tokens_out.unwrap_or(0);
        self.cost_usd += u.cost_usd.unwrap_or(0.0);
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Ledger {
    pub plan: Spent,
    pub phases: BTreeMap<String, Spent>,
    /// By the agent of each attempt (usage), and of each task's latest
    /// attempt, or its first agent before it ran (time, tasks,
    /// estimates); `-` for a task's own command, [`BY_HAND`] for a task a
    /// person did (`task start`, `task done`).
    pub agents: BTreeMap<String, Spent>,
    /// Measured ÷ estimated over the settled tasks that have both.
    pub rate: Option<f64>,
    /// The task time left, serial (see the module's doc).
    pub remaining_seconds: f64,
}

/// The ledger of `plan` from its task records.
pub fn compute<'a>(plan: &Plan, record: impl Fn(&str) -> Option<&'a TaskState>) -> Ledger {
    let mut l = Ledger::default();
    let (mut est, mut meas, mut settled_time, mut settled_n) = (0.0, 0.0, 0.0, 0usize);
    let mut open: Vec<Option<f64>> = Vec::new();
    for (phase, task) in plan.tasks() {
        let t = record(&task.id);
        let estimate = task
            .estimate
            .as_deref()
            .and_then(|e| parse_duration(e).ok())
            .map(|d| d.as_secs_f64());
        let seconds = t.and_then(|t| t.seconds).unwrap_or(0.0);
        let attempts = t.map_or(0, |t| t.attempts);
        // Who ran its latest attempt (a person: `BY_HAND`), else who is
        // to run it.
        let agent = t
            .filter(|t| t.by_hand)
            .map(|_| BY_HAND.to_string())
            .or_else(|| t.and_then(|t| t.agent.clone()))
            .or_else(|| plan.task_agents(task).first().cloned())
            .unwrap_or_else(|| "-".to_string());
        for s in [
            &mut l.plan,
            l.phases.entry(phase.id.clone()).or_default(),
            l.agents.entry(agent).or_default(),
        ] {
            s.tasks += 1;
            s.attempts += attempts;
            s.seconds += seconds;
            s.estimated_seconds += estimate.unwrap_or(0.0);
        }
        for u in t.map_or(&[][..], |t| &t.usage) {
            l.plan.add_usage(u);
            l.phases.entry(phase.id.clone()).or_default().add_usage(u);
            let who = u.agent.clone().unwrap_or_else(|| "-".to_string());
            l.agents.entry(who).or_default().add_usage(u);
        }
        let is_settled = t.is_some_and(|t| t.state().is_settled());
        if is_settled {
            if t.and_then(|t| t.seconds).is_some() {
                settled_time += seconds;
                settled_n += 1;
                if let Some(e) = estimate.filter(|e| *e > 0.0) {
                    est += e;
                    meas += seconds;
                }
            }
        } else {
            open.push(estimate);
        }
    }
    l.rate = (est > 0.0).then(|| meas / est);
    let mean = if settled_n > 0 {
        settled_time / settled_n as f64
    } else {
        0.0
    };
    l.remaining_seconds = open
        .iter()
        .map(|e| e.map_or(mean, |e| e * l.rate.unwrap_or(1.0)))
        .sum();
    l
}

/// The report's cost and time table: one row per task that ran, per
/// agent, per phase, and the plan: what, time, estimate, tokens in, tokens
/// out, cost (cells as text).
pub fn table(r: &super::report::Report) -> Vec<[String; 6]> {
    let dur = |s: f64| crate::render::duration(s);
    let est = |s: f64| if s > 0.0 { dur(s) } else { "—".to_string() };
    let row = |what: String, s: &Spent| {
        [
            what,
            dur(s.seconds),
            est(s.estimated_seconds),
            s.tokens_in.to_string(),
            s.tokens_out.to_string(),
            format!("${:.4}", s.cost_usd),
        ]
    };
    let mut rows = Vec::new();
    for t in r.tasks.iter().filter(|t| t.attempts > 0) {
        let s = Spent {
            seconds: t.seconds.unwrap_or(0.0),
            estimated_seconds: t.estimate_seconds.unwrap_or(0) as f64,
            tokens_in: t.tokens_in.unwrap_or(0),
            tokens_out: t.tokens_out.unwrap_or(0),
            cost_usd: t.cost_usd.unwrap_or(0.0),
            ..Spent::default()
        };
        rows.push(row(format!("task {}", t.id), &s));
    }
    let l = &r.ledger;
    for (name, s) in l.agents.iter().filter(|(_, s)| s.attempts > 0) {
        rows.push(row(who(name), s));
    }
    for (name, s) in l.phases.iter().filter(|(_, s)| s.attempts > 0) {
        rows.push(row(format!("phase {name}"), s));
    }
    rows.push(row("plan".to_string(), &l.plan));
    rows
}

/// The estimate of what is left, in words, for the report.
pub fn remaining_words(l: &Ledger) -> String {
    let rate = l.rate.map_or(
        "no settled task with an estimate yet: estimates as they are".to_string(),
        |r| format!("tasks take {r:.2}× their estimates so far"),
    );
    format!(
        "Estimated task time left: {} ({rate}).",
        crate::render::duration(l.remaining_seconds)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_files_read_leniently_and_bad_ones_are_recorded_as_errors() {
        let u = parse(
            br#"{"tokens_in": 5, "tokens_out": 7, "cost_usd": 0.5, "model": "m", "extra": 1}"#,
            true,
            2,
            Some("w"),
        );
        assert_eq!(
            (u.tokens_in, u.tokens_out, u.cost_usd, u.model.as_deref()),
            (Some(5), Some(7), Some(0.5), Some("m"))
        );
        assert_eq!(
            (u.attempt, u.agent.as_deref(), u.error),
            (2, Some("w"), None)
        );
        for bad in [
            &b"not json"[..],
            b"[1]",
            br#"{"tokens_in": -1}"#,
            br#"{"cost_usd": -2}"#,
        ] {
            let u = parse(bad, true, 1, None);
            assert!(u.error.is_some(), "{}", String::from_utf8_lossy(bad));
            assert_eq!(u.tokens_in, None);
        }
        let big = parse(b"{}", false, 1, None).error.unwrap_or_default();
        assert!(big.contains("larger"), "{big}");
    }
}
