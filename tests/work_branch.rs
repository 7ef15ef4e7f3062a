//! The work branch is a branch (issue 23): a commit made by hand on
//! `orch/<plan>/work` that fast-forwards it is adopted as a landing of its
//! own, so later landings build on it and conflict with it instead of
//! replacing it; a rewrite of the branch is still preserved and repaired.

use crate::common::*;
use std::path::PathBuf;

/// Commits `content` at `rel` on `orch/p/work` as a person would: in a
/// worktree of the branch, with plain git; the worktree then lets go of
/// the branch. Returns the commit.
fn commit_by_hand(repo: &TestRepo, rel: &str, content: &str) -> String {
    let wt: PathBuf = repo.scratch().join("by-hand");
    if !wt.exists() {
        repo.git(&[
            "worktree",
            "add",
            "-q",
            wt.to_str().expect("utf-8"),
            "orch/p/work",
        ]);
    } else {
        repo.git_in(&wt, &["checkout", "-q", "orch/p/work"]);
    }
    put(&wt, rel, content);
    repo.git_in(&wt, &["add", "-A"]);
    repo.git_in(&wt, &["commit", "-q", "-m", "by hand"]);
    let head = repo.git_in(&wt, &["rev-parse", "HEAD"]).trim().to_string();
    repo.git_in(&wt, &["checkout", "-q", "--detach"]);
    assert_eq!(repo.rev("orch/p/work").as_deref(), Some(head.as_str()));
    head
}

fn preserved_refs(repo: &TestRepo) -> String {
    repo.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/orch/p/preserved/",
    ])
}

/// The `work-adopted` events of `log --json`, oldest first.
fn adoptions(repo: &TestRepo) -> Vec<serde_json::Value> {
    let log = repo.orch_json(&["log", "--json"]);
    let errors = schema_errors(&log);
    assert!(
        errors.is_empty(),
        "log --json against its schema: {errors:?}"
    );
    let mut found: Vec<serde_json::Value> = log["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event"]["kind"] == "work-adopted")
        .map(|e| e["event"].clone())
        .collect();
    found.reverse();
    found
}

/// A task done by hand, without a scope.
fn by_hand() -> String {
    PlanText::new("p").task("x", |t| t).to_string()
}

#[test]
fn a_hand_edit_of_the_same_line_makes_the_later_landing_conflict_and_both_are_kept() {
    let repo = new_started(&by_hand());
    let out = repo.orch_ok(&["task", "start", "x"]);
    let wx = PathBuf::from(out.trim());
    put(&wx, "README", "from the task\n");
    // While the task runs, a person edits the same line on the work branch.
    let hand = commit_by_hand(&repo, "README", "by hand\n");

    let out = repo.orch(&["task", "done", "x", "-m", "x edits README"]);
    assert_eq!(code(&out), Some(1), "a conflict: {}", both(&out));
    assert!(stderr(&out).contains("README"), "{}", both(&out));
    assert_eq!(task_state(&status_json(&repo), "x"), "conflict");
    // Both edits are kept: the hand commit on the work branch, the task's
    // on its branch.
    assert_eq!(repo.rev("orch/p/work").as_deref(), Some(hand.as_str()));
    assert_eq!(
        repo.show("orch/p/work:README").as_deref(),
        Some("by hand\n")
    );
    assert_eq!(
        repo.show("orch/p/tasks/x:README").as_deref(),
        Some("from the task\n")
    );
    assert_eq!(preserved_refs(&repo), "", "nothing moved off the branch");
    // The adoption is an event of its own, naming the commit and its file.
    let adopted = adoptions(&repo);
    assert_eq!(adopted.len(), 1, "{adopted:?}");
    assert_eq!(adopted[0]["commit"], hand.as_str());
    assert_eq!(adopted[0]["changed"], serde_json::json!(["README"]));
    let log = repo.orch_ok(&["log"]);
    assert!(
        log.lines()
            .any(|l| l.contains(&hand[..7]) && l.contains("made by hand adopted")),
        "{log}"
    );
    repo.fsck();
}

/// One task the runner runs; it adds a file of its own.
fn run() -> String {
    PlanText::new("p")
        .task("t", |t| t.run("echo t > t.txt").files(["t.txt"]))
        .to_string()
}

#[test]
fn a_hand_commit_between_runs_that_does_not_overlap_is_adopted_and_the_task_lands_on_top() {
    let repo = new_started(&run());
    let hand = commit_by_hand(&repo, "notes.md", "mine\n");
    // Any command notices it and says so; status shows it as the work head.
    let out = repo.orch(&["status"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains(&format!("adopted: {}", &hand[..7])),
        "{}",
        both(&out)
    );
    assert!(!stderr(&out).contains("repair"), "{}", both(&out));
    let state = repo.show("orch/p/state:meta.json").expect("meta.json");
    assert!(
        state.contains(&hand),
        "the state's work is the hand commit: {state}"
    );
    // status keeps showing it, in words and in JSON.
    let st = status_json(&repo);
    assert_eq!(st["adopted"][0]["commit"], hand.as_str(), "{st}");
    assert_eq!(st["adopted"][0]["changed"], serde_json::json!(["notes.md"]));
    let text = repo.orch_ok(&["status"]);
    assert!(
        text.contains(&format!("by hand {}", &hand[..10])) && text.contains("notes.md"),
        "{text}"
    );

    repo.orch_ok(&["run"]);
    assert_eq!(task_state(&status_json(&repo), "t"), "done");
    let work = repo.rev("orch/p/work").expect("work");
    assert_ne!(work, hand);
    // The task landed on top: the hand commit is in its history, and both
    // files are on the branch.
    repo.git(&["merge-base", "--is-ancestor", &hand, &work]);
    assert_eq!(repo.show("orch/p/work:notes.md").as_deref(), Some("mine\n"));
    assert_eq!(repo.show("orch/p/work:t.txt").as_deref(), Some("t\n"));
    assert_eq!(preserved_refs(&repo), "");
    let adopted = adoptions(&repo);
    assert_eq!(adopted.len(), 1, "adopted once: {adopted:?}");
    assert_eq!(adopted[0]["changed"], serde_json::json!(["notes.md"]));
    // A rollback to before it takes it off the branch, and out of status;
    // its undo brings it back.
    repo.orch_ok(&["rollback", "--to", "start"]);
    assert!(status_json(&repo).get("adopted").is_none());
    repo.orch_ok(&["rollback", "--undo"]);
    assert_eq!(status_json(&repo)["adopted"][0]["commit"], hand.as_str());
    repo.fsck();
}

#[test]
fn a_rewrite_of_the_work_branch_is_preserved_and_repaired_not_adopted() {
    let repo = new_started(&run());
    repo.orch_ok(&["run"]);
    let work = repo.rev("orch/p/work").expect("work");
    // Not a fast-forward: a commit beside the work head, on its parent.
    let wt = repo.scratch().join("rewrite");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "--detach",
        wt.to_str().expect("utf-8"),
        "orch/p/work^",
    ]);
    put(&wt, "t.txt", "rewritten\n");
    repo.git_in(&wt, &["add", "-A"]);
    repo.git_in(&wt, &["commit", "-q", "-m", "a rewrite"]);
    let rewrite = repo.git_in(&wt, &["rev-parse", "HEAD"]).trim().to_string();
    repo.git(&["update-ref", "refs/heads/orch/p/work", &rewrite]);

    let out = repo.orch(&["status"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(stderr(&out).contains("repair"), "{}", both(&out));
    assert!(!stderr(&out).contains("adopted"), "{}", both(&out));
    assert_eq!(repo.rev("orch/p/work").as_deref(), Some(work.as_str()));
    let kept = preserved_refs(&repo);
    assert!(kept.contains("repair/"), "{kept}");
    let kept_ref = kept.lines().next().expect("a preserved ref");
    assert_eq!(repo.rev(kept_ref).as_deref(), Some(rewrite.as_str()));
    assert!(adoptions(&repo).is_empty());
}

/// One task the runner runs for a while, so a person can commit meanwhile;
/// `{isolation}` is its `[defaults]` line.
fn slow(isolation: &str) -> String {
    format!(
        r#"
name = "p"
[defaults]
{isolation}
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "t"
  run = "sleep 2; echo t > t.txt"
  files = ["t.txt"]
"#
    )
}

/// Runs the plan, commits `notes.md` by hand on the work branch while its
/// task runs, and returns the run's output and the hand commit.
fn commit_while_running(repo: &TestRepo) -> (std::process::Output, String) {
    let runner = repo
        .command(BIN, &repo.path)
        .arg("run")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    wait_for_within("t to run", std::time::Duration::from_secs(20), || {
        task_state(&status_json(repo), "t") == "running"
    });
    let hand = commit_by_hand(repo, "notes.md", "mine\n");
    (runner.wait_with_output().expect("run"), hand)
}

#[test]
fn a_hand_commit_while_a_sandboxed_task_runs_is_adopted_and_the_task_lands_on_top() {
    if std::process::Command::new("bwrap")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIP a_hand_commit_while_a_sandboxed_task_runs_is_adopted: needs bwrap");
        return;
    }
    let repo = new_started(&slow("isolation = \"sandbox\""));
    let (out, hand) = commit_while_running(&repo);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(task_state(&status_json(&repo), "t"), "done");
    let work = repo.rev("orch/p/work").expect("work");
    repo.git(&["merge-base", "--is-ancestor", &hand, &work]);
    assert_eq!(repo.show("orch/p/work:notes.md").as_deref(), Some("mine\n"));
    assert_eq!(repo.show("orch/p/work:t.txt").as_deref(), Some("t\n"));
    assert_eq!(preserved_refs(&repo), "");
    assert_eq!(adoptions(&repo).len(), 1);
}

/// Outside a sandbox the task itself could have made that commit: it is
/// still refused as tampering (so an agent cannot land work past its scope
/// and review by committing on the work branch), and the commit is kept.
#[test]
fn a_fast_forward_of_the_work_branch_while_an_unsandboxed_task_runs_is_still_tampering() {
    let repo = new_started(&slow(""));
    let (out, hand) = commit_while_running(&repo);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(
        stderr(&out).contains("tampered") && stderr(&out).contains("orch/p/work"),
        "{}",
        both(&out)
    );
    assert_eq!(task_state(&status_json(&repo), "t"), "failed");
    // Between runs the commit is the person's again: adopted, not lost.
    let work = repo.rev("orch/p/work").expect("work");
    repo.git(&["merge-base", "--is-ancestor", &hand, &work]);
}

/// A rollback interrupted between its state commit and moving the work
/// branch leaves the branch ahead of the state, on the work it discarded:
/// that fast-forward is git-orch's own, and is repaired, not adopted.
#[test]
fn the_work_an_interrupted_rollback_left_on_the_branch_is_not_adopted() {
    let repo = new_started(
        "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"t\"\n  run = \"echo t > t.txt\"\n  files = [\"t.txt\"]\n[[phases]]\nid = \"two\"\n  [[phases.tasks]]\n  id = \"u\"\n  run = \"echo u > u.txt\"\n  files = [\"u.txt\"]\n",
    );
    repo.orch_ok(&["run"]);
    let landed = repo.rev("orch/p/work").expect("work");
    repo.orch_ok(&["rollback", "--to", "one"]);
    let target = repo.rev("orch/p/work").expect("work");
    assert_ne!(landed, target);
    // As if the rollback had stopped before it moved the branch.
    repo.git(&["update-ref", "refs/heads/orch/p/work", &landed]);
    let out = repo.orch(&["status"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(!stderr(&out).contains("adopted"), "{}", both(&out));
    assert_eq!(repo.rev("orch/p/work").as_deref(), Some(target.as_str()));
    assert!(adoptions(&repo).is_empty());
    assert_eq!(task_state(&status_json(&repo), "u"), "pending");
}
