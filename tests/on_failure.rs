//! `on_failure` (issue 11): what a run does when a task fails. `drain`
//! (the default) lets running tasks finish and starts nothing new; `stop`
//! stops running tasks at once, their work kept as Ctrl-C keeps it;
//! `continue` goes on with every task that does not depend on the failure,
//! transitively. Real runner, real processes, checked with git.
use crate::common::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn task(id: &str, run: &str, deps: &[&str]) -> String {
    let deps: Vec<String> = deps.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        "  [[phases.tasks]]\n  id = \"{id}\"\n  files = [\"{id}.txt\"]\n  run = '{run}'\n  depends_on = [{}]\n",
        deps.join(", ")
    )
}

/// a fails once b has started; b would take 30s.
fn a_fails_while_b_runs(out: &Path, mark: &str) -> String {
    let o = out.display();
    task(
        "a",
        &format!("while [ ! -f {o}/b-started ]; do sleep 0.05; done; exit 1"),
        &[],
    ) + &task(
        "b",
        &format!("echo partial > b.txt; touch {o}/b-started; sleep 30; echo {mark} > /dev/null; echo b > b.txt"),
        &[],
    )
}

#[test]
fn on_failure_stop_stops_the_running_sibling_at_once_and_keeps_its_work() {
    let repo = TestRepo::new();
    let out = repo.scratch().join("out");
    std::fs::create_dir_all(&out).expect("out");
    let mark = format!("orch-stop-mark-{}", std::process::id());
    let mut plan = String::from("name = \"p\"\n[[phases]]\nid = \"one\"\non_failure = \"stop\"\n");
    plan += &a_fails_while_b_runs(&out, &mark);
    started(&repo, &plan);
    let begun = Instant::now();
    let run = repo.orch(&["run", "-j", "2"]);
    assert_eq!(code(&run), Some(1), "{}", both(&run));
    assert!(
        begun.elapsed() < Duration::from_secs(20),
        "b was stopped, not waited for: {:?}",
        begun.elapsed()
    );
    let err = stderr(&run);
    assert!(err.contains("task a failed"), "{err}");
    assert!(err.contains("stopped and pending again: b"), "{err}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(survivors(&mark), "", "b's processes are gone");
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "failed", "{st}");
    assert_eq!(task_state(&st, "b"), "pending", "{st}");
    let b = st["tasks"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["id"] == "b").cloned())
        .expect("b");
    assert!(
        b["reason"]
            .as_str()
            .is_some_and(|r| r.contains("task a failed (on_failure = \"stop\")")),
        "{st}"
    );
    // Its work so far is kept, as Ctrl-C keeps it.
    let kept = repo.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/orch/p/preserved/",
    ]);
    let wt = kept
        .lines()
        .find(|r| r.ends_with("/worktrees/b"))
        .unwrap_or_else(|| panic!("b's uncommitted work is not kept: {kept}"));
    assert_eq!(
        repo.show(&format!("{wt}:b.txt")).as_deref(),
        Some("partial\n")
    );
    repo.fsck();
}

#[test]
fn on_failure_drain_lets_the_running_sibling_finish_and_starts_nothing_new() {
    let repo = TestRepo::new();
    let mut plan = String::from(
        "name = \"p\"\n[defaults]\non_failure = \"drain\"\n[[phases]]\nid = \"one\"\n",
    );
    plan += &task("a", "sleep 0.2; exit 1", &[]);
    plan += &task("b", "sleep 1.5; echo b > b.txt", &[]);
    plan += &task("c", "echo c > c.txt", &[]);
    started(&repo, &plan);
    let run = repo.orch(&["run", "-j", "2"]);
    assert_eq!(code(&run), Some(1), "{}", both(&run));
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "failed", "{st}");
    assert_eq!(task_state(&st, "b"), "done", "{st}");
    assert_eq!(task_state(&st, "c"), "pending", "{st}");
    assert_eq!(repo.show("orch/p/work:b.txt").as_deref(), Some("b\n"));
    repo.fsck();
}

#[test]
fn on_failure_continue_lands_independent_tasks_but_not_dependent_ones() {
    let repo = TestRepo::new();
    let mut plan = String::from(
        "name = \"p\"\n[defaults]\non_failure = \"continue\"\n[[phases]]\nid = \"one\"\n",
    );
    plan += &task("a", "exit 1", &[]);
    plan += &task("b", "echo b > b.txt", &["a"]);
    plan += &task("d", "echo d > d.txt", &["b"]);
    plan += &task("c", "echo c > c.txt", &[]);
    plan += &task("e", "echo e > e.txt", &["c"]);
    started(&repo, &plan);
    let run = repo.orch(&["run", "-j", "1"]);
    assert_eq!(
        code(&run),
        Some(1),
        "the run still reports the failure: {}",
        both(&run)
    );
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "failed", "{st}");
    for id in ["b", "d"] {
        assert_eq!(task_state(&st, id), "pending", "{id} depends on a: {st}");
    }
    for id in ["c", "e"] {
        assert_eq!(
            task_state(&st, id),
            "done",
            "{id} does not depend on a: {st}"
        );
        assert_eq!(
            repo.show(&format!("orch/p/work:{id}.txt")),
            Some(format!("{id}\n"))
        );
    }
    assert_eq!(repo.show("orch/p/work:b.txt"), None);
    repo.fsck();
}

#[test]
fn an_unknown_on_failure_is_refused() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "plan.toml",
        "name = \"p\"\n[defaults]\non_failure = \"panic\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  run = \"true\"\n",
    );
    let out = repo.orch(&["start", plan.to_str().expect("utf-8")]);
    assert_refused(&out, "on_failure = panic");
    assert!(
        stderr(&out).contains("expected one of `drain`, `stop`, `continue`"),
        "{}",
        both(&out)
    );
}
