//! Usage limits park, not fail (issue 11): an agent that says it hit its
//! usage limit (exit 75, or its profile's `usage_limit`) parks its task,
//! worktree kept, until the reset time it wrote to `$ORCH_USAGE_RESET_FILE`
//! (or its profile's wait); the run goes on with other work, moves the task
//! to a fallback agent when it has one, and resumes it in place when its
//! time comes. Driven by `fixtures/fake-agent` with real repositories, the
//! real binary and real processes; order is read from what the agents log.
use crate::common::*;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// `[agents.<name>]` running the fake agent in `mode`; each attempt first
/// appends its start time (`date +%s.%N`) to `<state>/<task>.times` and,
/// on its task's first attempt only, a note to `<task>/note` in the
/// worktree, so a test sees whether the next attempt found it there.
fn agent(name: &str, mode: &str, state: &Path, extra_env: &str, extra: &str) -> String {
    let s = state.display();
    format!(
        "[agents.{name}]\nrun = \"date +%s.%N >> '{s}/'$ORCH_TASK.times; mkdir -p $ORCH_TASK; test -f $ORCH_TASK/note || echo first-attempt > $ORCH_TASK/note; sh '{}' {mode}\"\nenv = {{ FAKE_LOG = '{s}/agents.log', FAKE_STATE = '{s}'{extra_env} }}\n{extra}\n",
        fake_agent().display(),
    )
}

fn task(id: &str, agent: &str) -> String {
    format!("  [[phases.tasks]]\n  id = \"{id}\"\n  files = [\"{id}/**\"]\n  agent = {agent}\n")
}

fn log_lines(state: &Path) -> Vec<String> {
    std::fs::read_to_string(state.join("agents.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn times(state: &Path, id: &str) -> Vec<f64> {
    std::fs::read_to_string(state.join(format!("{id}.times")))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// `git orch run` with the park floor of a minute lowered to a second
/// (`ORCH_TEST_PARK_FLOOR`, read only by builds with the `failpoints`
/// feature), for the tests whose reset times are seconds ahead.
fn run_with_short_floor(repo: &TestRepo, args: &[&str]) -> Output {
    repo.command(BIN, &repo.path)
        .args(args)
        .env("ORCH_TEST_PARK_FLOOR", "1")
        .output()
        .expect("run git-orch")
}

#[test]
fn a_parked_task_resumes_in_its_worktree_after_its_reset_time_while_the_run_goes_on() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake");
    std::fs::create_dir_all(&state).expect("state dir");
    let mut plan = String::from("name = \"p\"\n");
    plan += &agent(
        "limited",
        "limited 1 a/out.txt",
        &state,
        ", FAKE_RESET_IN = \"3\"",
        "",
    );
    plan += &agent(
        "quick",
        "succeed $ORCH_TASK/out.txt",
        &state,
        ", FAKE_SLEEP = \"0.3\"",
        "",
    );
    plan += "[[phases]]\nid = \"one\"\n";
    plan += &task("a", "\"limited\"");
    plan += &task("b", "\"quick\"");
    plan += &task("c", "\"quick\"");
    started(&repo, &plan);
    let out = run_with_short_floor(&repo, &["run", "-j", "1"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let err = stderr(&out);
    assert!(err.contains("parked a until"), "the run says so: {err}");
    assert!(
        err.contains("waiting until") && err.contains("parked task(s) a"),
        "and what it waits for: {err}"
    );
    // a hit its limit, b and c ran meanwhile, then a ran again.
    let lines = log_lines(&state);
    let at = |l: &str, nth: usize| {
        lines
            .iter()
            .enumerate()
            .filter(|(_, x)| x.as_str() == l)
            .nth(nth)
            .map_or(usize::MAX, |(i, _)| i)
    };
    assert!(at("end limited a", 0) < at("start quick b", 0), "{lines:?}");
    assert!(at("end quick c", 0) < at("start limited a", 1), "{lines:?}");
    assert_eq!(
        at("start limited a", 2),
        usize::MAX,
        "two attempts: {lines:?}"
    );
    // Not before its reset time.
    let parked = log_events(&repo, "task-parked");
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0]["task"], "a");
    assert_eq!(parked[0]["agent"], "limited");
    let until = parked[0]["until"].as_f64().expect("until");
    let t = times(&state, "a");
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(
        until - t[0] >= 1.5,
        "the reset was ~3s ahead: {until} vs {t:?}"
    );
    assert!(t[1] >= until - 0.05, "woke at {} before {until}", t[1]);
    // Resumed in the same worktree: the first attempt's note landed with
    // the second attempt's work.
    assert_eq!(
        repo.show("orch/p/work:a/note").as_deref(),
        Some("first-attempt\n")
    );
    assert_eq!(
        repo.show("orch/p/work:a/out.txt").as_deref(),
        Some("written by agent limited for task a\n")
    );
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "done", "{st}");
    assert_eq!(task_field(&st, "a", "attempts"), 2, "{st}");
    assert!(st["phase"].is_null(), "checkpointed: {st}");
    // The state's history says so in words too.
    let subjects = repo.git(&["log", "--format=%s", "orch/p/state"]);
    assert!(subjects.contains("task a: parked until"), "{subjects}");
    repo.fsck();
}

#[test]
fn a_limited_first_agent_moves_the_task_to_its_fallback() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake");
    std::fs::create_dir_all(&state).expect("state dir");
    let mut plan = String::from("name = \"p\"\n");
    plan += &agent(
        "first",
        "usage-limit",
        &state,
        ", FAKE_RESET_IN = \"600\"",
        "",
    );
    plan += &agent("second", "succeed $ORCH_TASK/out.txt", &state, "", "");
    let hook = state.join("notified");
    plan += &format!(
        "[[notify]]\nrun = \"cat >> '{}'\"\nevents = [\"task-parked\"]\n",
        hook.display()
    );
    plan += "[[phases]]\nid = \"one\"\n";
    plan += &task("a", "[\"first\", \"second\"]");
    plan += "  [[phases.tasks]]\n  id = \"b\"\n  files = [\"b/**\"]\n  depends_on = [\"a\"]\n  agent = [\"first\", \"second\"]\n";
    started(&repo, &plan);
    let out = repo.orch(&["run", "-j", "2"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let lines = log_lines(&state);
    assert_eq!(
        lines,
        [
            "start first a",
            "end first a",
            "start second a",
            "end second a",
            "start second b",
            "end second b"
        ],
        "a moved to second; b, routed after first's limit, never went to first"
    );
    let st = status_json(&repo);
    assert_eq!(task_field(&st, "a", "agent"), "second", "{st}");
    assert_eq!(task_field(&st, "b", "agent"), "second", "{st}");
    assert_eq!(
        repo.show("orch/p/work:a/note").as_deref(),
        Some("first-attempt\n"),
        "the fallback went on in the same worktree"
    );
    let parked = log_events(&repo, "task-parked");
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0]["agent"], "first");
    // The notify hook heard of it.
    let heard = std::fs::read_to_string(&hook).unwrap_or_default();
    assert!(heard.contains("task-parked"), "{heard}");
    assert!(heard.contains("\"task\":\"a\""), "{heard}");
    for line in heard.lines() {
        let e: serde_json::Value = serde_json::from_str(line).expect("one JSON event a line");
        assert_eq!(e["event"], "task-parked", "{e}");
        assert!(e["until"].is_number(), "{e}");
        let errors = schema_errors(&e);
        assert!(errors.is_empty(), "{errors:?}: {e}");
    }
    repo.fsck();
}

#[test]
fn a_usage_limit_profile_with_a_bad_wait_pattern_or_key_is_refused() {
    let repo = TestRepo::new();
    for (limit, says) in [
        ("{ wait = \"soon\" }", "usage_limit.wait"),
        ("{ output = \"(\" }", "usage_limit.output"),
        ("{ resets = 1 }", "agents.x.usage_limit"),
    ] {
        let plan = repo.plan(
            "plan.toml",
            &format!(
                "name = \"p\"\n[agents.x]\nrun = \"true\"\nusage_limit = {limit}\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  agent = \"x\"\n"
            ),
        );
        let out = repo.orch(&["start", plan.to_str().expect("utf-8")]);
        assert_refused(&out, limit);
        assert!(stderr(&out).contains(says), "{limit}: {}", both(&out));
    }
}

#[test]
fn status_shows_when_a_parked_task_wakes_and_ctrl_c_leaves_it_parked() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake");
    std::fs::create_dir_all(&state).expect("state dir");
    let mut plan = String::from("name = \"p\"\n");
    // No reset file: the profile's wait.
    plan += &agent(
        "limited",
        "fail",
        &state,
        ", FAKE_EXIT = \"9\"",
        "usage_limit = { exit_codes = [9], wait = \"10m\" }",
    );
    plan += "[[phases]]\nid = \"one\"\n";
    plan += &task("a", "\"limited\"");
    started(&repo, &plan);
    let child = repo
        .command("git", &repo.path)
        .args(["orch", "run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn git orch run");
    let until = Instant::now() + Duration::from_secs(30);
    let st = loop {
        let st = status_json(&repo);
        if task_state(&st, "a") == "parked" {
            break st;
        }
        assert!(Instant::now() < until, "never parked: {st}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let wakes = task_field(&st, "a", "wakes_at").as_f64().expect("wakes_at");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        (wakes - now - 600.0).abs() < 30.0,
        "the profile's 10m: {wakes} vs now {now}"
    );
    let text = repo.orch_ok(&["status"]);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("a "))
        .unwrap_or("");
    assert!(line.contains("parked"), "{text}");
    assert!(line.contains("wakes at 20"), "{text}");
    assert!(line.contains("usage limit"), "{text}");
    assert!(task_field(&st, "a", "worktree").is_string(), "kept: {st}");
    // `task next` waits for it rather than calling the phase stuck.
    let next = repo.orch_json(&["task", "next", "--json"]);
    assert_eq!(next["action"], "wait", "{next}");
    assert_eq!(next["running"], serde_json::json!(["a"]), "{next}");
    // The run waits for it; Ctrl-C stops the wait and leaves it parked.
    std::thread::sleep(Duration::from_millis(500));
    let sent = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = wait_within(child, Duration::from_secs(15), "run after SIGINT");
    assert_ne!(code(&out), Some(0), "{}", both(&out));
    assert!(stderr(&out).contains("waiting until"), "{}", both(&out));
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "parked", "{st}");
    assert_eq!(task_field(&st, "a", "attempts"), 1, "{st}");
    let r = repo.orch_json(&["report", "--format", "json"]);
    assert!(r.to_string().contains("\"parked\""), "{r}");
    repo.fsck();
}

#[test]
fn a_task_routed_to_a_limited_agent_waits_for_its_reset_instead_of_hitting_it() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake");
    std::fs::create_dir_all(&state).expect("state dir");
    let (s, fa) = (state.display(), fake_agent());
    // The agent's first call (whichever task) hits the limit, resetting in
    // 2 s; every later call succeeds.
    let plan = format!(
        "name = \"p\"\n[agents.only]\nrun = \"date +%s.%N >> '{s}/'$ORCH_TASK.times; if mkdir '{s}/once' 2>/dev/null; then sh '{fa}' usage-limit; else sh '{fa}' succeed $ORCH_TASK/out.txt; fi\"\nenv = {{ FAKE_RESET_IN = \"2\" }}\n[[phases]]\nid = \"one\"\n{}{}",
        task("a", "\"only\""),
        task("b", "\"only\""),
        fa = fa.display()
    );
    started(&repo, &plan);
    let out = run_with_short_floor(&repo, &["run", "-j", "1"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let parked = log_events(&repo, "task-parked");
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0]["task"], "a");
    let until = parked[0]["until"].as_f64().expect("until");
    let b = times(&state, "b");
    assert_eq!(b.len(), 1, "{b:?}");
    assert!(
        b[0] >= until - 0.05,
        "b was not sent to the limited agent: it started at {} before {until}",
        b[0]
    );
    assert!(
        stderr(&out).contains("for agent only (at its usage limit) to run b")
            || stderr(&out).contains("parked task(s) a"),
        "{}",
        both(&out)
    );
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "done", "{st}");
    assert_eq!(task_state(&st, "b"), "done", "{st}");
    repo.fsck();
}
