//! Agents (issue 11): `[agents.<name>]` profiles, routing a task to the
//! first of its agents under its `parallel` cap, automatic retries of
//! transient failures in the same worktree, `check` on agent names, and
//! the profiles `init` writes. Driven by `fixtures/fake-agent`, with real
//! repositories and the real binary; concurrency is measured from the
//! agent's own start/end log, not inferred.
use crate::common::*;
use std::collections::BTreeMap;
use std::path::Path;

/// `[agents.<name>]` running the fake agent in `mode`, logging to `log`.
fn agent(name: &str, mode: &str, parallel: Option<usize>, log: &Path, extra: &str) -> String {
    let cap = parallel.map_or(String::new(), |n| format!("parallel = {n}\n"));
    format!(
        "[agents.{name}]\nrun = \"sh '{}' {mode}\"\n{cap}env = {{ FAKE_LOG = '{}', FAKE_SLEEP = \"0.4\" }}\n{extra}\n",
        fake_agent().display(),
        log.display()
    )
}

fn task(id: &str, agent: &str) -> String {
    format!("  [[phases.tasks]]\n  id = \"{id}\"\n  files = [\"{id}.txt\"]\n  agent = {agent}\n")
}

/// The most tasks of each agent that ran at once, from the fake agent's
/// log of `start AGENT TASK` / `end AGENT TASK` lines (appended in order).
fn max_overlap(log: &Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(log).expect("the fake agent wrote its log");
    let mut now: BTreeMap<String, usize> = BTreeMap::new();
    let mut max: BTreeMap<String, usize> = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.split(' ');
        let (what, agent) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let n = now.entry(agent.to_string()).or_insert(0);
        match what {
            "start" => *n += 1,
            "end" => *n = n.saturating_sub(1),
            other => panic!("a line of the agent log: {other}"),
        }
        let m = max.entry(agent.to_string()).or_insert(0);
        *m = (*m).max(*n);
    }
    max
}

fn agent_of(st: &serde_json::Value, id: &str) -> Option<String> {
    st["tasks"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["id"] == id))
        .and_then(|t| t["agent"].as_str().map(str::to_string))
}

#[test]
fn three_phases_routed_across_three_agents_never_exceed_their_caps() {
    let repo = TestRepo::new();
    let log = repo.scratch().join("agents.log");
    let mut plan = String::from("name = \"p\"\n[[gates]]\nname = \"ok\"\nrun = \"true\"\n");
    plan += &agent("writer", "succeed", Some(2), &log, "role = \"code writer\"");
    plan += &agent("tester", "succeed", Some(1), &log, "role = \"test writer\"");
    plan += &agent("documenter", "succeed", Some(1), &log, "");
    let mut expected = Vec::new();
    for phase in ["one", "two", "three"] {
        plan += &format!("[[phases]]\nid = \"{phase}\"\n");
        for (i, who) in [
            "writer",
            "writer",
            "writer",
            "tester",
            "tester",
            "documenter",
        ]
        .iter()
        .enumerate()
        {
            let id = format!("{phase}-{who}-{i}");
            plan += &task(&id, &format!("\"{who}\""));
            expected.push((id, who.to_string()));
        }
    }
    started(&repo, &plan);
    let out = repo.orch(&["run", "-j", "6"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let st = status_json(&repo);
    assert!(st["phase"].is_null(), "every phase checkpointed: {st}");
    for (id, who) in &expected {
        assert_eq!(
            agent_of(&st, id).as_deref(),
            Some(who.as_str()),
            "{id}: {st}"
        );
        let landed = repo.show(&format!("orch/p/work:{id}.txt"));
        assert_eq!(
            landed,
            Some(format!("written by agent {who} for task {id}\n")),
            "{id} ran with its agent's command and ORCH_AGENT"
        );
    }
    let max = max_overlap(&log);
    assert_eq!(
        max.get("writer"),
        Some(&2),
        "writer ran 2 at once at most, and did: {max:?}"
    );
    assert_eq!(max.get("tester"), Some(&1), "{max:?}");
    assert_eq!(max.get("documenter"), Some(&1), "{max:?}");
    // The state's history names the agent of each attempt.
    let subjects = repo.git(&["log", "--format=%s", "orch/p/state"]);
    assert!(
        subjects.contains("task one-tester-3: running with agent tester"),
        "{subjects}"
    );
    let events = repo.orch_json(&["log", "--json"]);
    let claimed: Vec<&serde_json::Value> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event"]["kind"] == "task-claimed")
        .collect();
    assert_eq!(claimed.len(), expected.len(), "{events}");
    assert!(
        claimed.iter().all(|e| e["event"]["agent"].is_string()),
        "{events}"
    );
    repo.fsck();
}

#[test]
fn a_fallback_agent_takes_a_task_when_the_first_is_at_its_cap() {
    let repo = TestRepo::new();
    let log = repo.scratch().join("agents.log");
    let mut plan = String::from("name = \"p\"\n");
    plan += &agent("primary", "succeed", Some(1), &log, "");
    plan += &agent("backup", "succeed", Some(1), &log, "");
    plan += "[defaults]\nagent = [\"primary\", \"backup\"]\n";
    plan += "[[phases]]\nid = \"one\"\n";
    plan += &task("a", "[\"primary\", \"backup\"]");
    plan += "  [[phases.tasks]]\n  id = \"b\"\n  files = [\"b.txt\"]\n"; // defaults.agent
    plan += &task("c", "\"primary\"");
    started(&repo, &plan);
    let out = repo.orch(&["run", "-j", "3"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let st = status_json(&repo);
    let (a, b) = (agent_of(&st, "a"), agent_of(&st, "b"));
    assert_eq!(a.as_deref(), Some("primary"), "the first free agent: {st}");
    assert_eq!(
        b.as_deref(),
        Some("backup"),
        "primary was at its cap, so backup took b: {st}"
    );
    assert_eq!(
        agent_of(&st, "c").as_deref(),
        Some("primary"),
        "c waited for primary: {st}"
    );
    let max = max_overlap(&log);
    assert_eq!(max.get("primary"), Some(&1), "{max:?}");
    assert_eq!(max.get("backup"), Some(&1), "{max:?}");
    // a and b really ran at the same time, c after a.
    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<&str> = text.lines().collect();
    let at = |l: &str| lines.iter().position(|x| *x == l).unwrap_or(usize::MAX);
    assert!(at("start backup b") < at("end primary a"), "{text}");
    assert!(at("end primary a") < at("start primary c"), "{text}");
    // status, report (JSON and markdown) show who ran each task.
    let plain = repo.orch_ok(&["status"]);
    let line = plain
        .lines()
        .find(|l| l.trim_start().starts_with("b "))
        .unwrap_or("");
    assert!(line.contains("agent backup"), "{plain}");
    let r = repo.orch_json(&["report", "--format", "json"]);
    let b = r["tasks"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["id"] == "b"));
    assert_eq!(
        b.map(|t| t["agent"].clone()),
        Some(serde_json::json!("backup")),
        "{r}"
    );
    let md = repo.orch_ok(&["report"]);
    assert!(md.contains("| done (backup) |"), "{md}");
    repo.fsck();
}

/// A plan of one task run by an agent that fails its first two attempts
/// with exit code `exit` (3 is the transient one), retried after `backoff`.
fn flaky_plan(state: &Path, exit: i32, retries: u32, backoff: &str) -> String {
    format!(
        r#"name = "p"
[agents.flaky]
run = "sh '{agent}' flaky 2 out.txt"
env = {{ FAKE_STATE = '{state}', FAKE_EXIT = "{exit}" }}
retries = {retries}
retry_backoff = "{backoff}"
retry_on = {{ exit_codes = [3], output = "rate limit" }}
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "f"
  files = ["out.txt"]
  agent = "flaky"
"#,
        agent = fake_agent().display(),
        state = state.display(),
    )
}

#[test]
fn a_flaky_task_lands_on_its_third_attempt_with_every_attempt_logged() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake-state");
    started(&repo, &flaky_plan(&state, 3, 2, "1s"));
    let began = std::time::Instant::now();
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains("retry f: attempt 2 failed (exit code 3)"),
        "{}",
        both(&out)
    );
    // Backoff 1s, then doubled: 2s.
    assert!(
        began.elapsed() >= std::time::Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "f"), "done", "{st}");
    let record = task_record(&repo, "p", "f").expect("record");
    assert_eq!(record["attempts"], 3, "{record}");
    assert_eq!(
        repo.show("orch/p/work:out.txt").as_deref(),
        Some("written by agent flaky for task f\n")
    );
    // Every attempt's log is kept, each its own.
    for (n, want) in [
        (1, "transient failure 1 of 2"),
        (2, "transient failure 2 of 2"),
        (3, "wrote out.txt"),
    ] {
        let log = repo
            .show(&format!("orch/p/state:{}", log_path("f", n)))
            .unwrap_or_else(|| panic!("attempt {n}'s log is kept"));
        assert!(log.contains(want), "attempt {n}: {log}");
    }
    // Attempt 3's brief says why attempt 2 failed, with its log's end.
    let brief = std::fs::read_to_string(state.join("f.brief.3")).expect("attempt 3's brief");
    assert!(brief.contains("Why the last attempt failed"), "{brief}");
    assert!(brief.contains("Attempt 2: exit code 3"), "{brief}");
    assert!(brief.contains("transient failure 2 of 2"), "{brief}");
    // Retried in the worktree it failed in, as `task retry` does.
    let subjects = repo.git(&["log", "--format=%s", "orch/p/state"]);
    assert_eq!(
        subjects
            .lines()
            .filter(|s| s.contains("task f: running again in its worktree"))
            .count(),
        2,
        "{subjects}"
    );
    repo.fsck();
}

#[test]
fn a_non_transient_failure_is_not_retried() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake-state");
    // Exit code 4 is not in retry_on, nor is its output.
    started(&repo, &flaky_plan(&state, 4, 2, "0s"));
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "f"), "failed", "{st}");
    let record = task_record(&repo, "p", "f").expect("record");
    assert_eq!(record["attempts"], 1, "{record}");
    assert_eq!(
        std::fs::read_to_string(state.join("f.count"))
            .ok()
            .as_deref(),
        Some("1\n"),
        "the agent ran once"
    );
    // Retries exhausted fail as today too: two transient failures, one retry.
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake-state");
    started(&repo, &flaky_plan(&state, 3, 1, "0s"));
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let record = task_record(&repo, "p", "f").expect("record");
    assert_eq!(record["attempts"], 2, "{record}");
    assert_eq!(task_state(&status_json(&repo), "f"), "failed");
    assert!(stderr(&out).contains("failed"), "{}", both(&out));
}

#[test]
fn check_locates_an_unknown_agent() {
    let repo = TestRepo::new();
    let toml = repo.plan(
        "plan.toml",
        "name = \"p\"\n[agents.writer]\nrun = \"true\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a\"]\n  agent = [\"writer\", \"ghost\"]\n",
    );
    let before = repo.refs();
    let out = repo.orch(&["check", toml.to_str().expect("utf-8")]);
    assert_refused(&out, "unknown agent");
    let want = format!(
        "{}:9:22: error: task `a`: unknown agent `ghost`; the plan's agents are `writer`",
        toml.display()
    );
    assert!(stdout(&out).lines().any(|l| l == want), "{}", both(&out));
    assert_eq!(repo.refs(), before);

    let yaml = repo.plan(
        "plan.yaml",
        "name: p\nagents:\n  writer:\n    run: \"true\"\nphases:\n  - id: one\n    tasks:\n      - id: a\n        files: [a]\n        agent: ghost\n",
    );
    let out = repo.orch(&["check", "--json", yaml.to_str().expect("utf-8")]);
    assert_eq!(code(&out), Some(2), "{}", both(&out));
    let v = json_doc(&out, "check --json");
    let d = &v["diagnostics"][0];
    assert_eq!(d["severity"], "error", "{v}");
    assert!(
        d["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown agent `ghost`")),
        "{v}"
    );
    assert_eq!(
        (d["line"].as_u64(), d["col"].as_u64()),
        (Some(10), Some(9)),
        "{v}"
    );

    // Both `run` and `agent` on a task: its `run` wins, and check says so.
    let both_given = repo.plan(
        "both.toml",
        "name = \"p\"\n[agents.writer]\nrun = \"true\"\n[[gates]]\nname = \"g\"\nrun = \"true\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a\"]\n  run = \"echo mine\"\n  agent = \"writer\"\n",
    );
    let out = repo.orch(&["check", both_given.to_str().expect("utf-8")]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        stdout(&out).contains(":13:3: warning: task `a`: both `run` and `agent` are given"),
        "{}",
        both(&out)
    );
}

#[test]
fn init_writes_profiles_for_claude_codex_and_aider_that_check() {
    let repo = TestRepo::new();
    repo.orch_ok(&["init", "-o", "p.toml"]);
    repo.orch_ok(&["init", "-o", "p.yaml"]);
    let toml = std::fs::read_to_string(repo.path.join("p.toml")).expect("toml");
    for want in [
        "[agents.claude]",
        "[agents.codex]",
        "[agents.aider]",
        // Kind profiles: git-orch builds their command lines (issue 21).
        "kind     = \"claude-code\"",
        "kind     = \"codex\"",
        "kind        = \"aider\"",
        "agent    = [\"claude\", \"codex\"]",
    ] {
        assert!(toml.contains(want), "missing `{want}` in:\n{toml}");
    }
    // The profiles give no command line of their own, and never a blanket yes.
    for unwanted in ["--yes-always", "$(cat", "retry_on = { exit_codes = [75]"] {
        assert!(!toml.contains(unwanted), "`{unwanted}` in:\n{toml}");
    }
    assert!(toml.contains("[agents.claude]"), "{toml}");
    let yaml = std::fs::read_to_string(repo.path.join("p.yaml")).expect("yaml");
    for want in [
        "  claude:",
        "  codex:",
        "  aider:",
        "kind: claude-code",
        "kind: codex",
        "kind: aider",
        "agent: [claude, codex]",
    ] {
        assert!(yaml.contains(want), "missing `{want}` in:\n{yaml}");
    }
    for file in ["p.toml", "p.yaml"] {
        let v = repo.orch_json(&["check", "--json", file]);
        assert_eq!(v["valid"], true, "{file}: {v}");
        let diags = v["diagnostics"].as_array().expect("diagnostics");
        assert!(
            diags.iter().all(|d| d["severity"] != "error"),
            "{file}: {v}"
        );
    }
    // The plan with its agents starts (and round-trips through the state).
    repo.orch_ok(&["start", "p.toml"]);
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "api"), "pending", "{st}");
    assert!(agent_of(&st, "api").is_none(), "not run yet: {st}");
}
