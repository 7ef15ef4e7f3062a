//! Seeing a plan live: a dead runner shown as gone (with what recovers it)
//! by `status`, `list` and `status --json`; a failing gate's last lines on
//! a terminal; `git orch log TASK|GATE`; event hooks.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

// ------------------------------------------------ 1. a dead runner

/// A task that runs until `stop` appears in the scratch dir.
fn long_task(repo: &TestRepo) -> String {
    let dir = repo.scratch();
    format!(
        r#"
name = "p"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "slow"
  run = "touch {d}/started; while [ ! -f {d}/stop ]; do sleep 0.05; done"
"#,
        d = dir.display()
    )
}

/// Starts `run`, waits until its task runs, and kills the run with SIGKILL.
fn run_then_kill9(repo: &TestRepo) {
    let mut child = spawn_orch_quiet(repo, &["run"]);
    let started = repo.scratch().join("started");
    wait_for("the task to start", || started.exists());
    let st = status_json(repo);
    assert_eq!(status_task(&st, "slow")["runner"], "alive", "{st}");
    assert!(status_task(&st, "slow").get("recover").is_none(), "{st}");
    let status = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let _ = child.wait();
}

fn stop_task(repo: &TestRepo) {
    std::fs::write(repo.scratch().join("stop"), "").expect("stop file");
}

#[test]
fn status_json_says_a_killed_runner_is_gone_and_how_to_recover() {
    let repo = TestRepo::new();
    started(&repo, &long_task(&repo));
    run_then_kill9(&repo);
    let st = status_json(&repo);
    let t = status_task(&st, "slow");
    assert_eq!(t["state"], "running", "{st}");
    assert_eq!(t["runner"], "gone", "{st}");
    assert_eq!(t["recover"], "git orch resume p", "{st}");
    // The clock stopped with the runner: no elapsed time that keeps growing.
    assert!(t["seconds"].is_null(), "{st}");
    // Tasks that are not running have no runner.
    stop_task(&repo);
    let out = repo.orch(&["resume"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let st = status_json(&repo);
    assert!(status_task(&st, "slow")["runner"].is_null(), "{st}");
}

#[test]
fn status_and_list_say_a_killed_runner_is_gone_and_how_to_recover() {
    let repo = TestRepo::new();
    started(&repo, &long_task(&repo));
    run_then_kill9(&repo);
    let status = repo.orch_ok(&["status"]);
    let line = status
        .lines()
        .find(|l| l.contains("slow"))
        .unwrap_or_else(|| panic!("no task line: {status}"));
    assert!(line.contains("runner gone"), "{status}");
    assert!(line.contains("`git orch resume p`"), "{status}");
    let list = repo.orch_ok(&["list"]);
    assert!(list.contains("runner gone for slow"), "{list}");
    assert!(list.contains("`git orch resume p`"), "{list}");
    let list = repo.orch_json(&["list", "--json"]);
    let rows = &list["plans"];
    assert_eq!(rows[0]["stale"][0]["task"], "slow", "{list}");
    assert_eq!(
        rows[0]["stale"][0]["recover"], "git orch resume p",
        "{list}"
    );
    stop_task(&repo);
}

#[test]
fn a_task_started_by_hand_is_gone_only_once_its_worktree_is() {
    let repo = TestRepo::new();
    started(
        &repo,
        "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"hand\"\n",
    );
    let wt = repo.orch_ok(&["task", "start", "hand"]);
    let st = status_json(&repo);
    assert_eq!(status_task(&st, "hand")["runner"], "alive", "{st}");
    std::fs::remove_dir_all(wt.trim()).expect("remove worktree");
    let st = status_json(&repo);
    assert_eq!(status_task(&st, "hand")["runner"], "gone", "{st}");
    assert_eq!(
        status_task(&st, "hand")["recover"],
        "git orch task start hand --plan p",
        "{st}"
    );
    // And that command does recover it.
    let again = repo.orch_ok(&["task", "start", "hand", "--plan", "p"]);
    assert!(Path::new(again.trim()).is_dir());
    let st = status_json(&repo);
    assert_eq!(status_task(&st, "hand")["runner"], "alive", "{st}");
}

// ------------------------------------------------ 3. git orch log TASK|GATE

/// Task `t` fails its first attempt and passes its second; phase `one`'s
/// gate `check` fails once (printing `gate says no`), then passes; phase
/// `two` runs the plan-level gate `lint` too.
fn two_attempts(repo: &TestRepo) -> String {
    let d = repo.scratch().display().to_string();
    format!(
        r#"
name = "p"
[[gates]]
name = "lint"
run = "echo lint ran"
[[phases]]
id = "one"
  [[phases.gates]]
  name = "check"
  run = "if [ -f {d}/pass ]; then echo gate says yes; else echo gate says no; exit 1; fi"
  [[phases.tasks]]
  id = "t"
  run = "if [ -f {d}/second ]; then echo second try > t.txt; echo second try; else touch {d}/second; echo first try; exit 1; fi"
[[phases]]
id = "two"
  [[phases.tasks]]
  id = "u"
  run = "echo u > u.txt"
"#
    )
}

#[test]
fn log_prints_a_tasks_latest_attempt_or_the_one_asked_for() {
    let repo = TestRepo::new();
    started(&repo, &two_attempts(&repo));
    assert_eq!(code(&repo.orch(&["run"])), Some(1));
    assert_eq!(repo.orch_ok(&["log", "t"]), "first try\n");
    repo.orch_ok(&["task", "reset", "t"]);
    assert_eq!(code(&repo.orch(&["run"])), Some(1)); // the gate fails
    assert_eq!(repo.orch_ok(&["log", "t"]), "second try\n");
    assert_eq!(repo.orch_ok(&["log", "p", "t"]), "second try\n");
    assert_eq!(repo.orch_ok(&["log", "t", "--attempt", "1"]), "first try\n");
    let j = repo.orch_json(&["log", "p", "t", "--attempt", "2", "--json"]);
    assert_eq!(j["attempt"], 2, "{j}");
    assert_eq!(j["log"], "second try\n", "{j}");
    assert_eq!(j["path"], log_path("t", 2), "{j}");
    let out = repo.orch(&["log", "t", "--attempt", "3"]);
    assert_refused(&out, "an attempt that did not run");
    assert!(stderr(&out).contains("attempts 1 to 2"), "{}", stderr(&out));
}

#[test]
fn log_prints_a_gate_log_by_phase_and_gate_or_by_gate_alone() {
    let repo = TestRepo::new();
    started(&repo, &two_attempts(&repo));
    std::fs::write(repo.scratch().join("second"), "").expect("marker");
    assert_eq!(code(&repo.orch(&["run"])), Some(1));
    assert_eq!(repo.orch_ok(&["log", "one:check"]), "gate says no\n");
    // Alone, a gate name is the current phase's run of it.
    assert_eq!(repo.orch_ok(&["log", "check"]), "gate says no\n");
    assert_eq!(repo.orch_ok(&["log", "p", "lint"]), "lint ran\n");
    std::fs::write(repo.scratch().join("pass"), "").expect("marker");
    repo.orch_ok(&["run"]);
    assert_eq!(repo.orch_ok(&["log", "p", "one:check"]), "gate says yes\n");
    // `check` ran in one phase only; `lint` in both, and none is current.
    assert_eq!(repo.orch_ok(&["log", "check"]), "gate says yes\n");
    let out = repo.orch(&["log", "lint"]);
    assert_refused(&out, "a gate of several phases");
    assert!(
        stderr(&out).contains("`one:lint`") && stderr(&out).contains("`two:lint`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn log_with_a_plan_or_nothing_still_prints_the_history() {
    let repo = TestRepo::new();
    started(&repo, &two_attempts(&repo));
    let history = repo.orch_ok(&["log"]);
    assert!(!history.is_empty());
    assert_eq!(repo.orch_ok(&["log", "p"]), history);
    let j = repo.orch_json(&["log", "p", "--json"]);
    assert!(j["events"].as_array().is_some_and(|e| !e.is_empty()), "{j}");
}

#[test]
fn log_refuses_an_unknown_name_listing_what_can_be_named() {
    let repo = TestRepo::new();
    started(&repo, &two_attempts(&repo));
    assert_eq!(code(&repo.orch(&["run"])), Some(1));
    let before = repo.refs();
    for (args, context) in [
        (vec!["log", "nope"], "an unknown name"),
        (vec!["log", "p", "one:nope"], "an unknown gate"),
        (vec!["log", "p", "three:check"], "an unknown phase"),
        (vec!["log", "u"], "a task that has not run"),
        (
            vec!["log", "p", "--attempt", "1"],
            "--attempt without a task",
        ),
    ] {
        let out = repo.orch(&args);
        assert_refused(&out, context);
        assert!(
            stderr(&out).contains("hint:"),
            "{context}: {}",
            stderr(&out)
        );
    }
    let out = repo.orch(&["log", "nope"]);
    assert!(stderr(&out).contains("`t`"), "{}", stderr(&out));
    assert_eq!(repo.refs(), before);
}

// ------------------------------------------------ 2. gate output that helps

/// A gate that prints 2,000 numbered lines and fails.
fn loud_gate(_repo: &TestRepo) -> String {
    PlanText::new("p")
        .phase("one", |p| {
            p.gate(
                "check",
                "i=1; while [ $i -le 2000 ]; do echo line-$i; i=$((i+1)); done; exit 1",
            )
            .task("t", |t| t.run("echo t > t.txt"))
        })
        .to_string()
}

/// Runs `git-orch ARGS` on a pseudo-terminal (util-linux `script`); all it
/// printed, both streams.
fn on_terminal(repo: &TestRepo, args: &str) -> (Option<i32>, String) {
    let out = repo
        .command("script", &repo.path)
        .env("TERM", "xterm")
        .args(["-qec", &format!("git-orch {args}"), "/dev/null"])
        .output()
        .expect("run script");
    (code(&out), stdout(&out).replace('\r', ""))
}

fn gate_lines(text: &str) -> usize {
    text.matches("line-").count()
}

#[test]
fn on_a_terminal_a_failing_gate_shows_its_last_lines_and_the_log_command() {
    let repo = TestRepo::new();
    started(&repo, &loud_gate(&repo));
    let (rc, text) = on_terminal(&repo, "run");
    assert_eq!(rc, Some(1), "{text}");
    assert_eq!(gate_lines(&text), 20, "{text}");
    assert!(
        text.contains("line-1981\n") && text.contains("line-2000\n"),
        "{text}"
    );
    assert!(text.contains("1980 lines before these"), "{text}");
    assert!(text.contains("`git orch log p one:check`"), "{text}");
    // `checkpoint` shows the same, and the command it names prints it all.
    let (rc, text) = on_terminal(&repo, "checkpoint --no-cache");
    assert_eq!(rc, Some(1), "{text}");
    assert_eq!(gate_lines(&text), 20, "{text}");
    assert!(text.contains("`git orch log p one:check`"), "{text}");
    let full = repo.orch_ok(&["log", "p", "one:check"]);
    assert_eq!(gate_lines(&full), 2000);
}

#[test]
fn with_verbose_a_terminal_gets_every_gate_line_once() {
    let repo = TestRepo::new();
    started(&repo, &loud_gate(&repo));
    let (rc, text) = on_terminal(&repo, "run -v");
    assert_eq!(rc, Some(1), "{text}");
    assert_eq!(gate_lines(&text), 2000, "{text}");
    let (rc, text) = on_terminal(&repo, "checkpoint -v --no-cache");
    assert_eq!(rc, Some(1), "{text}");
    assert_eq!(gate_lines(&text), 2000, "{text}");
}

#[test]
fn piped_a_failing_gate_streams_every_line_and_repeats_its_last_ones() {
    let repo = TestRepo::new();
    started(&repo, &loud_gate(&repo));
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1));
    let text = both(&out);
    assert_eq!(gate_lines(&text), 2000 + 20, "{text}");
    // The end of the log says what failed and where all of it is.
    let err = stderr(&out);
    let tail = &err[err.rfind("line-1981").expect("the tail")..];
    assert!(tail.contains("`git orch log p one:check`"), "{err}");
}

// ------------------------------------------------ 4. event hooks

/// Phase `one` (task `a`, gate `ok`) checkpoints; in phase `two` task `b`
/// fails. `HOOKS` is put where the plan's `[[notify]]` tables go.
fn notified(repo: &TestRepo, hooks: &str) -> String {
    format!(
        r#"
name = "p"
{hooks}
[[gates]]
name = "ok"
run = "true"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  run = "echo a > a.txt"
[[phases]]
id = "two"
  [[phases.tasks]]
  id = "b"
  run = "echo about to fail; exit 4"
"#,
        hooks = hooks.replace("@D@", &repo.scratch().display().to_string())
    )
}

/// The JSON events a hook appended to `name` in the scratch dir.
fn events(repo: &TestRepo, name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo.scratch().join(name)).unwrap_or_default();
    text.lines()
        .map(|l| {
            let event: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let errors = schema_errors(&event);
            assert!(errors.is_empty(), "{l}: {errors:?}");
            event
        })
        .collect()
}

fn names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap_or("?"))
        .collect()
}

#[test]
fn a_notify_hook_gets_the_events_it_chose_as_json_on_stdin() {
    let repo = TestRepo::new();
    started(
        &repo,
        &notified(
            &repo,
            r#"
[[notify]]
run = "cat >> @D@/all.jsonl"
[[notify]]
run = "cat >> @D@/failures.jsonl; echo \"$ORCH_EVENT $ORCH_PLAN\" >> @D@/env.txt"
events = ["task-failed"]
"#,
        ),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let all = events(&repo, "all.jsonl");
    assert_eq!(
        names(&all),
        ["phase-checkpointed", "task-failed", "run-finished"],
        "{all:?}"
    );
    for e in &all {
        assert_eq!(e["schema"], "notify-event", "{e}");
        assert_eq!(e["schema_version"], 1, "{e}");
        assert_eq!(e["plan"], "p", "{e}");
        assert!(e["at"].as_f64().is_some(), "{e}");
    }
    assert_eq!(all[0]["phase"], "one");
    assert_eq!(all[0]["tag"], "orch/p/one");
    assert_eq!(
        all[0]["commit"].as_str(),
        repo.rev("refs/tags/orch/p/one^{commit}").as_deref()
    );
    assert_eq!(all[1]["task"], "b");
    assert_eq!(all[1]["phase"], "two");
    assert_eq!(all[1]["outcome"], "failed");
    assert!(
        all[1]["reason"].as_str().is_some_and(|r| r.contains('4')),
        "{}",
        all[1]
    );
    assert_eq!(all[1]["log"], "git orch log p b");
    assert_eq!(all[2]["ok"], false);
    assert_eq!(all[2]["landed"], serde_json::json!(["a"]));
    assert_eq!(all[2]["failed"], serde_json::json!(["b"]));
    let failures = events(&repo, "failures.jsonl");
    assert_eq!(names(&failures), ["task-failed"]);
    let env = std::fs::read_to_string(repo.scratch().join("env.txt")).expect("env");
    assert_eq!(env, "task-failed p\n");
    // A task failed by hand is a `task-failed` too.
    repo.orch_ok(&["task", "reset", "b"]);
    repo.orch_ok(&["task", "start", "b"]);
    repo.orch_ok(&["task", "fail", "b", "--reason", "no good"]);
    let failures = events(&repo, "failures.jsonl");
    assert_eq!(names(&failures), ["task-failed", "task-failed"]);
    assert_eq!(failures[1]["reason"], "no good");
}

#[test]
fn a_notify_hook_hears_of_failed_gates_from_checkpoint() {
    let repo = TestRepo::new();
    let d = repo.scratch().display().to_string();
    started(
        &repo,
        &format!(
            r#"
name = "p"
[[notify]]
run = "cat >> {d}/gates.jsonl"
events = ["gates-failed", "phase-checkpointed"]
[[phases]]
id = "one"
  [[phases.gates]]
  name = "unit"
  run = "test -f {d}/pass"
  [[phases.tasks]]
  id = "a"
  run = "echo a > a.txt"
"#
        ),
    );
    assert_eq!(code(&repo.orch(&["run"])), Some(1));
    std::fs::write(repo.scratch().join("pass"), "").expect("marker");
    repo.orch_ok(&["checkpoint"]);
    let got = events(&repo, "gates.jsonl");
    assert_eq!(
        names(&got),
        ["gates-failed", "phase-checkpointed"],
        "{got:?}"
    );
    assert_eq!(got[0]["phase"], "one");
    assert_eq!(got[0]["gates"][0]["name"], "unit");
    assert_eq!(got[0]["gates"][0]["passed"], false);
    assert_eq!(got[0]["gates"][0]["log"], "git orch log p one:unit");
}

#[test]
fn a_failing_or_hanging_hook_is_a_warning_and_never_changes_the_exit_code() {
    let repo = TestRepo::new();
    let d = repo.scratch().display().to_string();
    started(
        &repo,
        &format!(
            r#"
name = "p"
[[notify]]
run = "echo hook is broken >&2; exit 3"
[[notify]]
run = "sleep 30"
timeout = "1s"
events = ["run-finished"]
[[notify]]
run = "cat >> {d}/after.jsonl"
[[phases]]
id = "one"
  [[phases.gates]]
  name = "ok"
  run = "true"
  [[phases.tasks]]
  id = "a"
  run = "echo a > a.txt"
"#
        ),
    );
    let began = Instant::now();
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "the hung hook was not stopped"
    );
    let err = stderr(&out);
    assert!(
        err.contains("warning: notify hook `echo hook is broken >&2; exit 3` on run-finished: failed (exit code 3): hook is broken"),
        "{err}"
    );
    assert!(
        err.contains("`sleep 30` on run-finished: took longer than 1"),
        "{err}"
    );
    // The hooks after them still ran.
    assert_eq!(
        names(&events(&repo, "after.jsonl")),
        ["phase-checkpointed", "run-finished"]
    );
    assert_eq!(
        repo.rev("refs/tags/orch/p/one^{commit}"),
        repo.rev("orch/p/work")
    );
}

#[test]
fn orch_notify_in_git_config_runs_on_every_event_or_those_orch_notify_events_names() {
    let repo = TestRepo::new();
    started(&repo, &notified(&repo, ""));
    let d = repo.scratch().display().to_string();
    repo.git(&["config", "orch.notify", &format!("cat >> {d}/config.jsonl")]);
    assert_eq!(code(&repo.orch(&["run"])), Some(1));
    assert_eq!(
        names(&events(&repo, "config.jsonl")),
        ["phase-checkpointed", "task-failed", "run-finished"]
    );
    // `git -c` works too, and orch.notifyEvents chooses the events.
    repo.git(&["config", "--unset", "orch.notify"]);
    repo.orch_ok(&["task", "reset", "b"]);
    let out = repo
        .command("git", &repo.path)
        .args([
            "-c",
            &format!("orch.notify=cat >> {d}/dash-c.jsonl"),
            "-c",
            "orch.notifyEvents=run-finished",
            "orch",
            "run",
        ])
        .output()
        .expect("git -c orch.notify");
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let got = events(&repo, "dash-c.jsonl");
    assert_eq!(names(&got), ["run-finished"], "{got:?}");
    assert_eq!(got[0]["failed"], serde_json::json!(["b"]));
    assert_eq!(names(&events(&repo, "config.jsonl")).len(), 3);
}

#[test]
fn check_locates_bad_notify_tables() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "plan.toml",
        r#"name = "p"
[[notify]]
run = "true"
events = ["task-failed", "task-exploded"]
timeout = "soon"
[[notify]]
run = ""
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  run = "true"
"#,
    );
    let out = repo.orch(&["check", plan.to_str().expect("utf-8")]);
    assert_refused(&out, "bad notify tables");
    let report = both(&out);
    let line_of = |needle: &str| {
        report
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{report}"))
            .to_string()
    };
    let exploded = line_of("unknown event `task-exploded`");
    assert!(exploded.contains("plan.toml:4:"), "{exploded}");
    assert!(exploded.contains("task-failed, task-parked"), "{exploded}");
    assert!(
        line_of("notify[0] timeout").contains("plan.toml:5:"),
        "{report}"
    );
    assert!(
        line_of("notify[1]: `run` is empty").contains("plan.toml:7:"),
        "{report}"
    );
    // A key of its own, like any table of the plan.
    let plan = repo.plan(
        "keys.toml",
        "name = \"p\"\n[[notify]]\nrun = \"true\"\nwhen = \"always\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n",
    );
    let out = repo.orch(&["check", plan.to_str().expect("utf-8")]);
    assert_refused(&out, "an unknown key in notify");
    let report = stdout(&out);
    assert!(
        report.contains("keys.toml:4:1: error: unknown key `when` in notify[0]"),
        "{report}"
    );
}
