//! Exit codes tell a bug or a broken machine from bad input (issue 19): an
//! I/O failure the input did not cause (here a full disk, injected at the
//! state write with the `failpoints` feature) is `error: internal error: …`
//! with a hint naming where to report it, exit 3, and nothing changed;
//! bad input stays exit 2.
use crate::common::*;

#[test]
fn a_full_disk_before_any_change_is_an_internal_error_that_changes_nothing() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "plan.toml",
        "name = \"p\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nfiles = [\"a.txt\"]\n",
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let refs = repo.refs();
    let out = repo
        .command(BIN, &repo.path)
        .env("ORCH_FAILPOINT", "state-write-enospc@1")
        .args(["task", "start", "a"])
        .output()
        .expect("task start");
    assert_eq!(code(&out), Some(3), "{}", both(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines
            .first()
            .is_some_and(|l| l.starts_with("error: internal error: ")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("hint:") && l.contains("report")),
        "{err}"
    );
    assert_eq!(repo.refs(), refs, "an internal error changed a ref");
    // Bad input is still bad input.
    let out = repo.orch(&["task", "start", "no-such-task"]);
    assert_refused(&out, "an unknown task");
    assert_eq!(repo.refs(), refs);
}
