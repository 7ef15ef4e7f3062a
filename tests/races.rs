//! Commands that race each other, as real concurrent processes: whichever
//! wins, the plan is never wedged (SPEC §2).
use crate::common::*;

use std::path::Path;
use std::process::Stdio;

/// A phase of two tasks done by hand whose gate takes a while and says
/// when it started; a second phase.
fn plan(repo: &TestRepo) -> String {
    let marker = repo.scratch().join("gate-started");
    format!(
        r#"
name = "p"
[[gates]]
name = "slow"
run = "touch {} && sleep 2"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a.txt"]
  [[phases.tasks]]
  id = "b"
  files = ["b.txt"]
[[phases]]
id = "two"
  [[phases.tasks]]
  id = "c"
  files = ["c.txt"]
"#,
        marker.display()
    )
}

fn done_by_hand(repo: &TestRepo, id: &str) {
    let path = repo.orch_ok(&["task", "start", id]);
    std::fs::write(
        Path::new(path.trim()).join(format!("{id}.txt")),
        format!("{id}\n"),
    )
    .expect("write work");
    repo.orch_ok(&["task", "done", id]);
}

/// `task reopen` lands while the checkpoint's gates run: the work branch
/// does not move, but the phase now has a pending task, so the checkpoint
/// must not seal it.
#[test]
fn a_task_reopened_while_the_checkpoint_gates_run_is_not_sealed_in() {
    let repo = TestRepo::new();
    let text = plan(&repo);
    let file = repo.plan("plan.toml", &text);
    repo.orch_ok(&["start", file.to_str().expect("utf-8")]);
    done_by_hand(&repo, "a");
    done_by_hand(&repo, "b");
    let marker = repo.scratch().join("gate-started");
    let checkpoint = repo
        .command(BIN, &repo.path)
        .args(["checkpoint"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn checkpoint");
    wait_for("the gate to start", || marker.exists());
    repo.orch_ok(&["task", "reopen", "a"]);
    let out = checkpoint.wait_with_output().expect("wait checkpoint");
    // Exit 2: the gates ran but nothing was recorded.
    assert_eq!(code(&out), Some(2), "{}", both(&out));
    assert!(
        stderr(&out)
            .lines()
            .any(|l| l == "error: the plan changed while its gates ran"),
        "{}",
        both(&out)
    );
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "pending");
    assert!(
        repo.rev("refs/tags/orch/p/one").is_none(),
        "phase one was checkpointed with a pending task"
    );
    // Nothing is wedged: the reopened task runs again and the phase closes.
    done_by_hand(&repo, "a");
    std::fs::remove_file(&marker).expect("remove marker");
    repo.orch_ok(&["checkpoint"]);
    assert!(repo.rev("refs/tags/orch/p/one").is_some());
    repo.orch_ok(&["task", "start", "c"]);
    repo.fsck();
}
