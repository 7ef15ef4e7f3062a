//! Review before landing (issue 11): a task's committed work is shown to
//! its reviewer — a person (`review = "manual"`: the `review` state, then
//! `task approve` / `task reject`), a command (exit 0 approves) or an agent
//! (its verdict file) — before it lands; a rejection goes back to the
//! task's agent in the same worktree with the comments in its brief, up to
//! its attempts. Driven by `fixtures/fake-agent` with real repositories.
use crate::common::*;
use std::path::Path;

/// A plan of one task `a` by agent `writer` (the fake agent, `flaky 0`:
/// it always succeeds and copies each attempt's brief into `state`), which
/// also writes `attempt.txt` with the attempt's number, so each attempt's
/// commit differs. `review` and `retries` are the task's keys.
fn plan(state: &Path, review: &str, retries: u32, extra: &str) -> String {
    format!(
        r#"name = "p"
[[gates]]
name = "ok"
run = "true"
{extra}
[agents.writer]
run = '''sh "{fake}" flaky 0 a.txt && cp "$FAKE_STATE/$ORCH_TASK.count" attempt.txt'''
env = {{ FAKE_STATE = '{state}' }}

[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a.txt", "attempt.txt"]
  agent = "writer"
  retries = {retries}
  retry_backoff = "0s"
  review = {review}
"#,
        fake = fake_agent().display(),
        state = state.display(),
    )
}

fn head_of(repo: &TestRepo, id: &str) -> String {
    task_record(repo, "p", id).expect("record")["head"]
        .as_str()
        .expect("a head")
        .to_string()
}

fn subjects(repo: &TestRepo) -> String {
    repo.git(&["log", "--format=%s", "orch/p/state"])
}

#[test]
fn a_manual_review_rejected_once_then_approved_lands_the_approved_commit() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake");
    started(&repo, &plan(&state, "\"manual\"", 1, ""));
    let work_before = repo.rev("orch/p/work").expect("work");

    // The run commits the work and stops at the review; nothing lands.
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains("waiting for review: a"),
        "{}",
        both(&out)
    );
    assert_eq!(task_state(&status_json(&repo), "a"), "review");
    assert_eq!(repo.rev("orch/p/work"), Some(work_before.clone()));
    let first = head_of(&repo, "a");
    assert_eq!(
        repo.show(&format!("{first}:attempt.txt")).as_deref(),
        Some("1\n")
    );
    // Only a task in review can be approved or rejected; comments are required.
    assert_refused(&repo.orch(&["task", "approve", "nope"]), "unknown task");
    assert_refused(
        &repo.orch(&["task", "reject", "a", "-m", "  "]),
        "empty comments",
    );
    assert_eq!(task_state(&status_json(&repo), "a"), "review");

    // Rejected: failed with the comments, back to its agent on the next run.
    let doc = repo.orch_json(&["task", "reject", "a", "-m", "please add a test", "--json"]);
    assert_eq!(doc["state"], "failed", "{doc}");
    assert_eq!(doc["attempts"], 1);
    assert_eq!(doc["attempts_allowed"], 2);
    assert_eq!(task_state(&status_json(&repo), "a"), "failed");
    assert_refused(
        &repo.orch(&["task", "approve", "a"]),
        "approve a failed task",
    );

    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(task_state(&status_json(&repo), "a"), "review");
    let brief = std::fs::read_to_string(state.join("a.brief.2")).expect("second brief");
    assert!(
        brief.contains("please add a test"),
        "the comments reach the next brief:\n{brief}"
    );
    let second = head_of(&repo, "a");
    assert_ne!(first, second);
    assert_eq!(
        repo.show(&format!("{second}:attempt.txt")).as_deref(),
        Some("2\n")
    );

    // Approved: exactly the reviewed commit lands.
    let doc = repo.orch_json(&["task", "approve", "a", "--json"]);
    assert_eq!(doc["state"], "done", "{doc}");
    assert_eq!(repo.show("orch/p/work:attempt.txt").as_deref(), Some("2\n"));
    let mut ancestor = repo.command("git", &repo.path);
    ancestor.args(["merge-base", "--is-ancestor", &second, "orch/p/work"]);
    assert!(ancestor.status().expect("git").success());
    let log = subjects(&repo);
    for s in [
        "task a: in review (manual)",
        "task a: rejected in review (please add a test)",
        "task a: approved (manual)",
        "task a: done",
    ] {
        assert!(log.contains(s), "{s} in\n{log}");
    }
    // The run goes on to the checkpoint.
    repo.orch_ok(&["run"]);
    assert!(status_json(&repo)["phase"].is_null());
    let events = repo.orch_json(&["log", "--json"]);
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event"]["kind"].as_str())
        .collect();
    for k in ["task-review", "task-rejected", "task-approved"] {
        assert!(kinds.contains(&k), "{k}: {kinds:?}");
    }
    repo.fsck();
}

#[test]
fn a_rejection_without_attempts_left_fails_the_task() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake");
    started(&repo, &plan(&state, "\"manual\"", 0, ""));
    repo.orch_ok(&["run"]);
    let out = repo.orch_ok(&["task", "reject", "a", "-m", "no"]);
    let _ = out;
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert_eq!(task_state(&status_json(&repo), "a"), "failed");
    assert!(!state.join("a.brief.2").exists(), "no second attempt");
}

#[test]
fn a_command_reviewer_rejects_then_approves_in_one_run() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake");
    // Approves the second attempt only.
    let review =
        r#"{ run = 'test "$(cat attempt.txt)" = 2 || { echo "attempt.txt is not 2"; exit 1; }' }"#;
    started(&repo, &plan(&state, review, 1, ""));
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(status_json(&repo)["phase"].is_null(), "{}", both(&out));
    assert_eq!(repo.show("orch/p/work:attempt.txt").as_deref(), Some("2\n"));
    let brief = std::fs::read_to_string(state.join("a.brief.2")).expect("second brief");
    assert!(
        brief.contains("rejected in review (command)") && brief.contains("attempt.txt is not 2"),
        "{brief}"
    );
    let log = subjects(&repo);
    assert!(log.contains("task a: approved (command)"), "{log}");
}

#[test]
fn an_agent_reviewer_approves_through_its_verdict_file() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake");
    let reviewer = format!(
        "[agents.reviewer]\nrun = '''sh \"{}\" approve \"seen $ORCH_REVIEW_HEAD over $ORCH_REVIEW_BASE\"'''\n",
        fake_agent().display()
    );
    started(
        &repo,
        &plan(&state, "{ agent = \"reviewer\" }", 0, &reviewer),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(task_state(&status_json(&repo), "a"), "done");
    let head = head_of(&repo, "a");
    let events = repo.orch_json(&["log", "--json"]);
    let approved = events["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["event"]["kind"] == "task-approved")
        .expect("an approval")
        .clone();
    assert_eq!(approved["event"]["reviewer"], "agent reviewer");
    let comments = approved["event"]["comments"].as_str().expect("comments");
    assert!(
        comments.starts_with(&format!("seen {head} over ")),
        "the reviewer saw the committed head: {comments}"
    );
}

#[test]
fn an_agent_reviewer_that_rejects_fails_the_task_with_its_comments() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake");
    let reviewer = format!(
        "[agents.reviewer]\nrun = '''sh \"{}\" reject \"the name is wrong\"'''\n",
        fake_agent().display()
    );
    started(
        &repo,
        &plan(&state, "{ agent = \"reviewer\" }", 0, &reviewer),
    );
    let work = repo.rev("orch/p/work");
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert_eq!(task_state(&status_json(&repo), "a"), "failed");
    assert!(stderr(&out).contains("the name is wrong"), "{}", both(&out));
    assert_eq!(repo.rev("orch/p/work"), work, "nothing landed");
}

#[test]
fn check_refuses_a_review_that_is_not_a_reviewer() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake");
    for review in ["\"maybe\"", "{ agent = \"ghost\" }"] {
        let p = repo.plan("bad.toml", &plan(&state, review, 0, ""));
        let out = repo.orch(&["check", p.to_str().expect("utf-8")]);
        assert_ne!(code(&out), Some(0), "{review}: {}", both(&out));
    }
}
