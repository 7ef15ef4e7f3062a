//! Retrying a failed task in the worktree it failed in (issue 10 item 23,
//! and issue 11's `task retry` / `run --retry-failed`): its work so far
//! intact, the new brief telling why the last attempt failed with the end
//! of its log. Real repositories, the real binary, results read with git.
use crate::common::*;

/// A task that fails its first attempt half-way (a file written, left
/// uncommitted, a line in its log) and finishes on the next one, which
/// keeps a copy of its brief in `brief_copy`.
fn flaky(id: &str, brief_copy: &std::path::Path) -> String {
    format!(
        r#"
  [[phases.tasks]]
  id = "{id}"
  files = ["{id}/**"]
  run = '''
mkdir -p {id}
if [ ! -f {id}/part1 ]; then
  echo first-half > {id}/part1
  echo "attempt one of {id} ran out of luck: boom-{id}"
  exit 3
fi
cp "$ORCH_TASK_FILE" '{brief}'
echo second-half > {id}/part2
'''
"#,
        brief = brief_copy.display()
    )
}

#[test]
fn task_retry_runs_a_failed_task_again_in_its_worktree_with_its_work_intact() {
    let repo = TestRepo::new();
    let brief = repo.scratch().join("brief-a.md");
    started(
        &repo,
        &format!(
            "name = \"p\"\n[[phases]]\nid = \"one\"\n{}",
            flaky("a", &brief)
        ),
    );
    let out = repo.orch(&["run", "-j", "1"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert_eq!(task_state(&status_json(&repo), "a"), "failed");
    let worktree = repo.path.join(".orch/worktrees/p/a");
    assert!(
        worktree.join("a/part1").is_file(),
        "the failed attempt's work is there"
    );

    let out = repo.orch(&["task", "retry", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "done", "{st}");
    // Both halves landed: the second attempt ran where the first left off.
    assert_eq!(
        repo.show("orch/p/work:a/part1").as_deref(),
        Some("first-half\n")
    );
    assert_eq!(
        repo.show("orch/p/work:a/part2").as_deref(),
        Some("second-half\n")
    );
    let record = task_record(&repo, "p", "a").expect("a record");
    assert_eq!(record["attempts"], 2, "{record}");
    // The brief of attempt 2 said why attempt 1 failed, with its log's end.
    let text = std::fs::read_to_string(&brief).expect("the second attempt copied its brief");
    assert!(text.contains("Why the last attempt failed"), "{text}");
    assert!(text.contains("Attempt 1"), "{text}");
    assert!(text.contains("boom-a"), "the log's tail: {text}");
    // The state history says it was retried in place.
    let log = repo.git(&["log", "--format=%s", "orch/p/state"]);
    assert!(
        log.contains("task a: running again in its worktree"),
        "{log}"
    );
    repo.fsck();
}

#[test]
fn run_retry_failed_runs_every_failed_task_again_in_place_and_checkpoints() {
    let repo = TestRepo::new();
    let (ba, bb) = (repo.scratch().join("ba.md"), repo.scratch().join("bb.md"));
    started(
        &repo,
        &format!(
            "name = \"p\"\n[[phases]]\nid = \"one\"\n{}{}",
            flaky("a", &ba),
            flaky("b", &bb)
        ),
    );
    let out = repo.orch(&["run", "-j", "2"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "failed", "{st}");
    assert_eq!(task_state(&st, "b"), "failed", "{st}");
    // A plain run stops on them again; --retry-failed carries them.
    let out = repo.orch(&["run", "-j", "2"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let out = repo.orch(&["run", "--retry-failed", "-j", "2"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let st = status_json(&repo);
    assert!(st["phase"].is_null(), "every phase checkpointed: {st}");
    for t in ["a", "b"] {
        assert_eq!(
            repo.show(&format!("orch/p/work:{t}/part1")).as_deref(),
            Some("first-half\n")
        );
        assert_eq!(
            repo.show(&format!("orch/p/work:{t}/part2")).as_deref(),
            Some("second-half\n")
        );
    }
    assert!(repo.rev("refs/tags/orch/p/one").is_some());
    repo.fsck();
}

#[test]
fn a_failed_task_done_by_hand_is_retried_by_hand_in_the_same_worktree() {
    let repo = TestRepo::new();
    started(
        &repo,
        "name = \"p\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"h\"\nfiles = [\"h/**\"]\n",
    );
    let path = repo.orch_ok(&["task", "start", "h"]);
    let worktree = std::path::PathBuf::from(path.trim());
    std::fs::create_dir_all(worktree.join("h")).expect("mkdir");
    std::fs::write(worktree.join("h/draft"), "draft\n").expect("write");
    repo.orch_ok(&[
        "task",
        "fail",
        "h",
        "--reason",
        "the draft is not right yet",
    ]);
    assert_eq!(task_state(&status_json(&repo), "h"), "failed");

    let out = repo.orch(&["task", "retry", "h"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(
        stdout(&out).trim(),
        worktree.display().to_string(),
        "{}",
        both(&out)
    );
    assert_eq!(
        std::fs::read_to_string(worktree.join("h/draft"))
            .ok()
            .as_deref(),
        Some("draft\n"),
        "the work so far is intact"
    );
    assert_eq!(task_state(&status_json(&repo), "h"), "running");
    let brief =
        std::fs::read_to_string(repo.path.join(".git/orch/tasks/p/h.md")).expect("the brief");
    assert!(brief.contains("the draft is not right yet"), "{brief}");
    std::fs::write(worktree.join("h/final"), "final\n").expect("write");
    repo.orch_ok(&["task", "done", "h", "-m", "fixed"]);
    assert_eq!(repo.show("orch/p/work:h/draft").as_deref(), Some("draft\n"));
    assert_eq!(repo.show("orch/p/work:h/final").as_deref(), Some("final\n"));
    repo.fsck();
}

#[test]
fn retry_refuses_what_is_not_failed_and_changes_nothing() {
    let repo = TestRepo::new();
    started(
        &repo,
        "name = \"p\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nrun = \"echo a > a.txt\"\n",
    );
    let before = repo.refs();
    for args in [
        vec!["task", "retry", "a"],
        vec!["task", "retry", "nosuch"],
        vec!["task", "retry", "a", "--plan", "nope"],
    ] {
        let out = repo.orch(&args);
        assert_refused(&out, &format!("{args:?}"));
        assert_eq!(repo.refs(), before, "{args:?} changed refs");
    }
    let out = repo.orch(&["task", "retry", "a"]);
    assert!(stderr(&out).contains("not failed"), "{}", both(&out));
    // --retry-failed with nothing failed is a plain run.
    let out = repo.orch(&["run", "--retry-failed"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(repo.show("orch/p/work:a.txt").as_deref(), Some("a\n"));
}
