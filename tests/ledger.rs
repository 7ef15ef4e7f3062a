//! The cost and time ledger (issue 11): a task's agent writes a usage file
//! at `$ORCH_USAGE_FILE`; git-orch records it per attempt (on the task's
//! record and as a `task-usage` event) and sums time and cost per task,
//! agent, phase and plan against the estimates in `status` and `report`
//! (markdown, JSON, HTML), with the task time left. A bad usage file is
//! reported and recorded as such, never fatal. Driven by
//! `fixtures/fake-agent` with real repositories and the real binary.
use crate::common::*;
use std::path::PathBuf;

fn agent(name: &str, run: &str, env: &str) -> String {
    format!("[agents.{name}]\nrun = \"{run}\"\nenv = {{ {env} }}\n")
}

fn task(id: &str, agent: &str, estimate: &str) -> String {
    format!(
        "  [[phases.tasks]]\n  id = \"{id}\"\n  files = [\"{id}.txt\"]\n  agent = \"{agent}\"\n  estimate = \"{estimate}\"\n"
    )
}

fn near(a: &serde_json::Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn usage_files_are_recorded_per_attempt_and_summed_per_agent_phase_and_plan() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake");
    let fa = fake_agent();
    let fa = fa.display();
    let mut plan = String::from("name = \"p\"\n");
    plan += &agent(
        "writer",
        &format!("sh '{fa}' succeed"),
        "FAKE_TOKENS_IN = \"1000\", FAKE_TOKENS_OUT = \"100\", FAKE_COST = \"0.25\"",
    );
    // Fails once (with a usage file), then lands: two attempts recorded.
    plan += &agent(
        "tester",
        &format!("sh '{fa}' flaky 1"),
        &format!(
            "FAKE_STATE = '{}', FAKE_TOKENS_IN = \"10\", FAKE_TOKENS_OUT = \"5\", FAKE_COST = \"0.5\"",
            state.display()
        ),
    );
    plan += "[defaults]\nretries = 1\nretry_backoff = \"0s\"\n";
    plan += "[[phases]]\nid = \"one\"\n";
    plan += &task("a", "writer", "10m");
    plan += &task("b", "tester", "10m");
    plan += "[[phases]]\nid = \"two\"\n";
    plan += &task("c", "writer", "10m");
    plan += "  [[phases.tasks]]\n  id = \"later\"\n  run = \"true\"\n  files = [\"l.txt\"]\n  estimate = \"1h\"\n  depends_on = [\"c\"]\n  skip = false\n";
    started(&repo, &plan);
    let out = repo.orch(&["run", "--task", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let out = repo.orch(&["run", "--task", "b"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    // Per attempt, on the record.
    let b = task_record(&repo, "p", "b").expect("b's record");
    let usage = b["usage"].as_array().expect("usage per attempt");
    assert_eq!(usage.len(), 2, "{b}");
    assert_eq!(usage[0]["attempt"], 1);
    assert_eq!(usage[1]["attempt"], 2);
    assert_eq!(usage[1]["agent"], "tester");
    assert_eq!(usage[1]["model"], "fake-1");
    let events = repo.orch_json(&["log", "--json"]);
    let n = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event"]["kind"] == "task-usage")
        .count();
    assert_eq!(n, 3, "a once, b twice: {events}");
    // Summed in status --json.
    let st = status_json(&repo);
    let l = &st["ledger"];
    assert_eq!(l["plan"]["tokens_in"], 1020, "{l}");
    assert_eq!(l["plan"]["tokens_out"], 110, "{l}");
    assert!(near(&l["plan"]["cost_usd"], 1.25), "{l}");
    assert_eq!(l["agents"]["writer"]["tokens_in"], 1000, "{l}");
    assert!(near(&l["agents"]["tester"]["cost_usd"], 1.0), "{l}");
    assert_eq!(l["agents"]["tester"]["attempts"], 2, "{l}");
    assert_eq!(l["phases"]["one"]["tokens_out"], 110, "{l}");
    assert_eq!(l["phases"]["two"]["tokens_out"], 0, "{l}");
    // c is writer's before it runs.
    assert!(
        near(&l["agents"]["writer"]["estimated_seconds"], 1200.0),
        "{l}"
    );
    assert!(near(&l["plan"]["estimated_seconds"], 5400.0), "{l}");
    // c and later are left: their estimates at the measured rate (tiny).
    let rate = l["rate"]
        .as_f64()
        .expect("a rate once tasks with estimates settled");
    let left = l["remaining_seconds"].as_f64().expect("remaining");
    assert!((left - rate * 4200.0).abs() < 1e-6, "{l}");
    let tb = st["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == "b")
        .cloned();
    assert!(near(&tb.expect("b")["cost_usd"], 1.0), "{st}");
    // And in words.
    let text = repo.orch_ok(&["status"]);
    assert!(text.contains("ledger: "), "{text}");
    assert!(text.contains("1020/110 tokens, $1.25"), "{text}");
    assert!(text.contains("agent tester: "), "{text}");
    assert!(text.contains("of task time left"), "{text}");
    // The report, in its three formats.
    let r = repo.orch_json(&["report", "--format", "json"]);
    assert_eq!(r["ledger"]["plan"]["tokens_in"], 1020, "{r}");
    assert!(
        near(&r["ledger"]["agents"]["writer"]["cost_usd"], 0.25),
        "{r}"
    );
    let md = repo.orch_ok(&["report"]);
    assert!(md.contains("## Cost and time"), "{md}");
    assert!(md.contains("| agent tester |"), "{md}");
    assert!(md.contains("| plan |"), "{md}");
    assert!(md.contains("$1.2500"), "{md}");
    assert!(md.contains("Estimated task time left"), "{md}");
    let html = repo.orch_ok(&["report", "--format", "html"]);
    assert!(html.contains("<h2>Cost and time</h2>"), "{html}");
    assert!(html.contains("<td>phase one</td>"), "{html}");
    repo.fsck();
}

#[test]
fn a_bad_or_huge_usage_file_is_reported_not_fatal() {
    let repo = TestRepo::new();
    let mut plan = String::from("name = \"p\"\n");
    plan += &agent(
        "bad",
        "echo not json > $ORCH_USAGE_FILE; echo x > $ORCH_TASK.txt",
        "",
    );
    plan += &agent(
        "huge",
        "head -c 200000 /dev/zero | tr '\\\\\\\\0' 1 > $ORCH_USAGE_FILE; echo x > $ORCH_TASK.txt",
        "",
    );
    plan += "[[phases]]\nid = \"one\"\n";
    plan += &task("a", "bad", "1m");
    plan += &task("b", "huge", "1m");
    started(&repo, &plan);
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let all = both(&out);
    assert!(all.contains("the usage file is not a JSON object"), "{all}");
    assert!(
        all.contains("the usage file is larger than 64 KiB"),
        "{all}"
    );
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "done", "{st}");
    assert_eq!(task_state(&st, "b"), "done", "{st}");
    for id in ["a", "b"] {
        let r = task_record(&repo, "p", id).expect("record");
        assert!(r["usage"][0]["error"].is_string(), "{r}");
        assert!(r["usage"][0].get("tokens_in").is_none(), "{r}");
    }
    assert_eq!(st["ledger"]["plan"]["tokens_in"], 0, "{st}");
    repo.fsck();
}

/// Issue 23: a task done by hand is accounted as done by hand, not grouped
/// with the tasks that run their own command under agent `-`, in `status`
/// (JSON and words) and the report.
#[test]
fn tasks_done_by_hand_are_accounted_by_hand_not_under_agent_dash() {
    let repo = TestRepo::new();
    started(
        &repo,
        "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a.txt\"]\n  [[phases.tasks]]\n  id = \"b\"\n  files = [\"b.txt\"]\n  run = \"echo b > b.txt\"\n",
    );
    let wt = PathBuf::from(repo.orch_ok(&["task", "start", "a"]).trim());
    std::fs::write(wt.join("a.txt"), "a\n").expect("write");
    repo.orch_ok(&["task", "done", "a"]);
    repo.orch_ok(&["run"]);
    let st = status_json(&repo);
    let agents = &st["ledger"]["agents"];
    assert_eq!(agents["(by hand)"]["tasks"], 1, "{agents}");
    assert_eq!(agents["-"]["tasks"], 1, "b, its own command: {agents}");
    let text = repo.orch_ok(&["status"]);
    assert!(text.contains("  by hand: "), "{text}");
    let md = repo.orch_ok(&["report"]);
    assert!(md.contains("| by hand |"), "{md}");
}

/// Issue 23: the time a task waits for its reviewer is not task time: the
/// ledger's time of a task approved after a wait is what it ran.
#[test]
fn time_waiting_for_review_is_not_task_time() {
    let repo = TestRepo::new();
    started(
        &repo,
        "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a.txt\"]\n  run = \"echo a > a.txt\"\n  review = \"manual\"\n",
    );
    repo.orch_ok(&["run"]);
    assert_eq!(task_state(&status_json(&repo), "a"), "review");
    let ran = task_record(&repo, "p", "a").expect("record")["seconds"]
        .as_f64()
        .expect("the time it ran");
    std::thread::sleep(std::time::Duration::from_secs(3));
    repo.orch_ok(&["task", "approve", "a"]);
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "done");
    let after = task_record(&repo, "p", "a").expect("record")["seconds"]
        .as_f64()
        .expect("seconds");
    assert!(
        (after - ran).abs() < 1e-6,
        "the review wait was counted: {ran} then {after}"
    );
    let plan_seconds = st["ledger"]["plan"]["seconds"].as_f64().expect("seconds");
    assert!(plan_seconds < 2.5, "{}", st["ledger"]);
    let r = repo.orch_json(&["report", "--format", "json"]);
    let task_time = r["totals"]["task_seconds"].as_f64().expect("task time");
    assert!(task_time < 2.5, "{}", r["totals"]);
}
