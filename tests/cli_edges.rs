//! Command-line edges: what plain `status` and `list` say, `git -c` and
//! repository config, the git version check, and a run that loses its
//! output or is interrupted.
mod common;
use common::*;

fn start(repo: &TestRepo, toml: &str) {
    let file = repo.plan("plan.toml", toml);
    repo.orch_ok(&["start", file.to_str().expect("utf-8 path")]);
}

const FAILING_GATE: &str = r#"
name = "p"
[[gates]]
name = "lint"
run = "echo lint says no; exit 3"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  run = "echo a > a.txt"
  files = ["a.txt"]
"#;

#[test]
fn plain_status_names_the_gate_that_failed() {
    let repo = TestRepo::new();
    start(&repo, FAILING_GATE);
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let text = repo.orch_ok(&["status"]);
    let line = text
        .lines()
        .find(|l| l.contains("gate lint"))
        .unwrap_or_else(|| panic!("status does not name the failed gate:\n{text}"));
    assert!(
        line.contains("failed") && line.contains("exit code 3"),
        "{line}"
    );
    // The log it points at is really there.
    let log = line
        .split("orch/p/state:")
        .nth(1)
        .unwrap_or_else(|| panic!("no log path in {line}"))
        .trim();
    let shown = repo
        .show(&format!("orch/p/state:{log}"))
        .unwrap_or_else(|| panic!("no log at {log}"));
    assert!(shown.contains("lint says no"), "{shown}");
}

#[test]
fn list_says_finished_only_for_a_finished_plan() {
    let repo = TestRepo::new();
    start(
        &repo,
        r#"
name = "p"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  run = "echo a > a.txt"
  files = ["a.txt"]
"#,
    );
    let pending = repo.orch_ok(&["list"]);
    assert!(pending.contains("phase one"), "{pending}");
    repo.orch_ok(&["run"]);
    // Every phase is checkpointed, but the plan is not finished yet.
    assert_eq!(status_json(&repo)["finished"], false);
    let all_checkpointed = repo.orch_ok(&["list"]);
    assert!(
        !all_checkpointed.contains("finished"),
        "list calls an unfinished plan finished: {all_checkpointed}"
    );
    assert!(
        all_checkpointed.contains("every phase checkpointed"),
        "{all_checkpointed}"
    );
    repo.orch_ok(&["finish"]);
    let finished = repo.orch_ok(&["list"]);
    assert!(finished.contains("finished"), "{finished}");
}
