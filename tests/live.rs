//! Seeing a plan live: a dead runner shown as gone (with what recovers it)
//! by `status`, `list` and `status --json`; a failing gate's last lines on
//! a terminal; `git orch log TASK|GATE`; event hooks.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn start(repo: &TestRepo, toml: &str) {
    let plan = repo.scratch().join("plan.toml");
    std::fs::write(&plan, toml).expect("write plan");
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
}

fn task<'a>(st: &'a Value, id: &str) -> &'a Value {
    st["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no task {id} in {st}"))
}

fn spawn_orch(repo: &TestRepo, args: &[&str]) -> Child {
    repo.command(BIN, &repo.path)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn git-orch")
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

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
    let mut child = spawn_orch(repo, &["run"]);
    let started = repo.scratch().join("started");
    wait_for("the task to start", || started.exists());
    let st = status_json(repo);
    assert_eq!(task(&st, "slow")["runner"], "alive", "{st}");
    assert!(task(&st, "slow").get("recover").is_none(), "{st}");
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
    start(&repo, &long_task(&repo));
    run_then_kill9(&repo);
    let st = status_json(&repo);
    let t = task(&st, "slow");
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
    assert!(task(&st, "slow")["runner"].is_null(), "{st}");
}

#[test]
fn status_and_list_say_a_killed_runner_is_gone_and_how_to_recover() {
    let repo = TestRepo::new();
    start(&repo, &long_task(&repo));
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
    let rows = repo.orch_json(&["list", "--json"]);
    assert_eq!(rows[0]["stale"][0]["task"], "slow", "{rows}");
    assert_eq!(
        rows[0]["stale"][0]["recover"], "git orch resume p",
        "{rows}"
    );
    stop_task(&repo);
}

#[test]
fn a_task_started_by_hand_is_gone_only_once_its_worktree_is() {
    let repo = TestRepo::new();
    start(
        &repo,
        "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"hand\"\n",
    );
    let wt = repo.orch_ok(&["task", "start", "hand"]);
    let st = status_json(&repo);
    assert_eq!(task(&st, "hand")["runner"], "alive", "{st}");
    std::fs::remove_dir_all(wt.trim()).expect("remove worktree");
    let st = status_json(&repo);
    assert_eq!(task(&st, "hand")["runner"], "gone", "{st}");
    assert_eq!(
        task(&st, "hand")["recover"],
        "git orch task start hand --plan p",
        "{st}"
    );
    // And that command does recover it.
    let again = repo.orch_ok(&["task", "start", "hand", "--plan", "p"]);
    assert!(Path::new(again.trim()).is_dir());
    let st = status_json(&repo);
    assert_eq!(task(&st, "hand")["runner"], "alive", "{st}");
}
