//! Changing a plan in flight (`git orch plan amend`) and abandoning one
//! (`git orch abandon`), issue 11. Real repositories, the real binary (a
//! real `run` in the background), results read with git.
use crate::common::*;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn background_run(repo: &TestRepo, args: &[&str]) -> Child {
    repo.command("git", &repo.path)
        .arg("orch")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn git orch run")
}

fn two_phases() -> String {
    PlanText::new("p")
        .task("a", |t| t.files(["a.txt"]).run("echo a > a.txt"))
        .phase("two", |p| {
            p.task("b", |t| t.files(["b.txt"])).task("c", |t| {
                t.files(["c.txt"]).run("echo c > c.txt").timeout("1m")
            })
        })
        .to_string()
}

#[test]
fn a_plan_amended_mid_run_gets_its_new_task_run_by_the_running_runner() {
    let repo = TestRepo::new();
    let gate = repo.scratch().join("go");
    let first = format!(
        r#"
name = "p"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a.txt"]
  run = "while [ ! -f '{}' ]; do sleep 0.05; done; echo a > a.txt"
"#,
        gate.display()
    );
    let plan = repo.plan("plan.toml", &first);
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let run = background_run(&repo, &["run", "-j", "2"]);
    wait_for("task a to run", || {
        task_state(&status_json(&repo), "a") == "running"
    });
    // The new version adds a task to the phase that is running.
    let amended = repo.plan(
        "plan-v2.toml",
        &format!(
            "{first}\n  [[phases.tasks]]\n  id = \"b\"\n  files = [\"b.txt\"]\n  run = \"echo b > b.txt\"\n"
        ),
    );
    let out = repo.orch(&["plan", "amend", amended.to_str().expect("utf-8")]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains("task `b` added to phase `one`"),
        "{}",
        both(&out)
    );
    std::fs::write(&gate, "").expect("let a finish");
    let out = wait_within(run, Duration::from_secs(60), "the run");
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "done", "{st}");
    assert_eq!(task_state(&st, "b"), "done", "the new task ran: {st}");
    assert_eq!(st["phases"][0]["state"], "checkpointed", "{st}");
    assert_eq!(repo.show("orch/p/work:b.txt").as_deref(), Some("b\n"));
    // Task a was not taken for a tamperer by the amendment's new seal.
    assert!(!both(&out).contains("tampered"), "{}", both(&out));
    let log = repo.git(&["log", "--format=%s", "orch/p/state"]);
    assert!(log.contains("plan p: amended (1 change(s))"), "{log}");
    let events = repo.orch_json(&["log", "--json"]);
    let amended_event = events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["event"]["kind"] == "plan-amended")
        .cloned()
        .unwrap_or_else(|| panic!("a plan-amended event: {events}"));
    assert_eq!(
        amended_event["event"]["changes"][0], "task `b` added to phase `one`",
        "{amended_event}"
    );
    repo.fsck();
}

#[test]
fn amend_refuses_changes_to_what_has_landed_naming_each_and_changes_nothing() {
    let repo = TestRepo::new();
    let plan = repo.plan("plan.toml", &two_phases());
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    repo.orch_ok(&["run", "--phase", "one"]);
    let wt = repo.orch_ok(&["task", "start", "b"]);
    std::fs::write(std::path::Path::new(wt.trim()).join("b.txt"), "b\n").expect("write");
    repo.orch_ok(&["task", "done", "b", "-m", "b"]);
    let changed = &two_phases()
        .replace("echo a > a.txt", "echo A > a.txt") // checkpointed phase
        .replace("files = [\"b.txt\"]", "files = [\"b/**\"]") // a done task's scope
        .replace(
            "[[phases]]\nid = \"one\"",
            "[[phases]]\nid = \"zero\"\n  [[phases.tasks]]\n  id = \"z\"\n  files = [\"z\"]\n[[phases]]\nid = \"one\"",
        );
    let file = repo.plan("plan-v2.toml", changed);
    let seal = std::fs::read_to_string(repo.path.join(".git/orch/seals/p")).expect("seal");
    let before = repo.refs();
    for dry in [true, false] {
        let mut args = vec!["plan", "amend", file.to_str().expect("utf-8")];
        if dry {
            args.push("--dry-run");
        }
        let out = repo.orch(&args);
        assert_eq!(code(&out), Some(2), "{}", both(&out));
        let err = stderr(&out);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
        for want in [
            "error: phase `one` is checkpointed: it cannot change",
            "error: task `b` is done: its `files` cannot change",
            "error: phase `zero` cannot be added at position 1",
            // The insertion would move the phases that have started.
            "error: phase `one` has started: it cannot move (from position 1 to 2)",
            "error: phase `two` has started: it cannot move (from position 2 to 3)",
        ] {
            assert!(errors.iter().any(|l| l.starts_with(want)), "{want}: {err}");
        }
        assert_eq!(errors.len(), 5, "one line per refused change: {err}");
        assert!(err.contains("hint: nothing was changed"), "{err}");
        assert_eq!(repo.refs(), before, "nothing changed");
        assert_eq!(
            std::fs::read_to_string(repo.path.join(".git/orch/seals/p")).expect("seal"),
            seal
        );
    }
    // A file that is not a valid plan is refused as `start` refuses it.
    let bad = repo.plan("bad.toml", "name = \"p\"\n");
    let out = repo.orch(&["plan", "amend", bad.to_str().expect("utf-8")]);
    assert_refused(&out, "an invalid plan");
    assert_eq!(repo.refs(), before);
}

#[test]
fn amend_dry_run_shows_the_changes_then_amend_applies_them_through_the_seal() {
    let repo = TestRepo::new();
    let plan = repo.plan("plan.toml", &two_phases());
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    repo.orch_ok(&["run", "--phase", "one"]);
    let changed = format!(
        "{}\n  [[phases.gates]]\n  name = \"lint\"\n  run = \"true\"\n[[phases]]\nid = \"three\"\n  [[phases.tasks]]\n  id = \"d\"\n  files = [\"d.txt\"]\n  run = \"echo d > d.txt\"\n",
        &two_phases().replace("timeout = \"1m\"", "timeout = \"5m\"")
    );
    let file = repo.plan("plan-v2.toml", &changed);
    let before = repo.refs();
    let out = repo.orch(&[
        "plan",
        "amend",
        file.to_str().expect("utf-8"),
        "p",
        "--dry-run",
        "--json",
    ]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let doc = json_doc(&out, "plan amend --dry-run --json");
    assert_eq!(doc["applied"], false, "{doc}");
    assert_eq!(doc["dry_run"], true, "{doc}");
    let changes: Vec<&str> = doc["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    for want in [
        "task `c`: timeout: \"1m\" to \"5m\"",
        "phase `three` added at position 3 with 1 task(s)",
        "task `d` added to phase `three`",
    ] {
        assert!(changes.contains(&want), "{want}: {changes:?}");
    }
    assert!(
        changes.iter().any(|c| c.starts_with("phase `two`: gates")),
        "{changes:?}"
    );
    assert_eq!(repo.refs(), before, "a dry run changes nothing");

    let doc = repo.orch_json(&["plan", "amend", file.to_str().expect("utf-8"), "--json"]);
    assert_eq!(doc["applied"], true, "{doc}");
    // The new plan is the plan: status reads it, a run runs it.
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "d"), "pending", "{st}");
    let seal = std::fs::read_to_string(repo.path.join(".git/orch/seals/p")).expect("seal");
    assert_eq!(seal.trim(), doc["to"].as_str().expect("to"), "sealed anew");
    // A clone has no seal file: it trusts the amendment's record.
    let clone = TestRepo::empty();
    clone.git(&[
        "fetch",
        "-q",
        repo.path.to_str().expect("utf-8"),
        "refs/heads/orch/*:refs/heads/orch/*",
        "refs/tags/*:refs/tags/*",
    ]);
    let st = status_json(&clone);
    assert_eq!(task_state(&st, "d"), "pending", "the clone reads it: {st}");
    // Amending to the same plan again is refused: nothing to amend.
    let out = repo.orch(&["plan", "amend", file.to_str().expect("utf-8")]);
    assert_refused(&out, "nothing to amend");
    // Task b is manual; c and d run.
    let wt = repo.orch_ok(&["task", "start", "b"]);
    std::fs::write(std::path::Path::new(wt.trim()).join("b.txt"), "b\n").expect("write");
    repo.orch_ok(&["task", "done", "b", "-m", "b"]);
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(repo.show("orch/p/work:d.txt").as_deref(), Some("d\n"));
    repo.fsck();
}

#[test]
fn abandon_stops_a_running_run_and_keeps_every_tasks_work_in_refs() {
    let repo = TestRepo::new();
    let marker = repo.scratch().join("a-started");
    let plan = repo.plan(
        "plan.toml",
        &format!(
            r#"
name = "p"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a/**"]
  run = '''
mkdir -p a
echo committed > a/committed
git add a/committed && git commit -q -m "a: part one"
echo uncommitted > a/uncommitted
touch '{}'
sleep 60
'''
  [[phases.tasks]]
  id = "m"
  files = ["m/**"]
"#,
            marker.display()
        ),
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    // Task m is being done by hand, its work not committed.
    let wt = repo.orch_ok(&["task", "start", "m"]);
    let wt = std::path::PathBuf::from(wt.trim());
    std::fs::create_dir_all(wt.join("m")).expect("mkdir");
    std::fs::write(wt.join("m/by-hand"), "by hand\n").expect("write");
    let run = background_run(&repo, &["run", "-j", "2"]);
    wait_for("task a to start its work", || marker.exists());

    let started = Instant::now();
    let out = repo.orch(&["abandon", "p", "--json"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let doc = json_doc(&out, "abandon --json");
    assert_eq!(doc["abandoned"], true, "{doc}");
    let run_out = wait_within(run, Duration::from_secs(30), "the abandoned run");
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "the runner stopped its task rather than wait for it"
    );
    assert_eq!(code(&run_out), Some(1), "{}", both(&run_out));
    assert!(
        stderr(&run_out).contains("the plan was abandoned"),
        "{}",
        both(&run_out)
    );

    // Every preserved ref the report names exists; together they hold all
    // of a's work (committed and not) and m's.
    let preserved: Vec<String> = doc["preserved"]
        .as_array()
        .expect("preserved")
        .iter()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect();
    assert!(!preserved.is_empty(), "{doc}");
    let mut found = std::collections::BTreeMap::new();
    for r in &preserved {
        assert!(r.starts_with("refs/orch/p/preserved/"), "{r}");
        assert!(repo.rev(r).is_some(), "{r} exists");
        for path in ["a/committed", "a/uncommitted", "m/by-hand"] {
            if let Some(text) = repo.show(&format!("{r}:{path}")) {
                found.insert(path, text);
            }
        }
    }
    assert_eq!(
        found.get("a/committed").map(String::as_str),
        Some("committed\n")
    );
    assert_eq!(
        found.get("a/uncommitted").map(String::as_str),
        Some("uncommitted\n")
    );
    assert_eq!(
        found.get("m/by-hand").map(String::as_str),
        Some("by hand\n")
    );
    // Task branches and worktrees are gone; state, work and tags stay.
    assert!(
        repo.git(&["for-each-ref", "refs/heads/orch/p/tasks/"])
            .trim()
            .is_empty(),
        "{}",
        repo.refs()
    );
    let worktrees = repo.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(worktrees.matches("worktree ").count(), 1, "{worktrees}");
    assert!(repo.rev("orch/p/state").is_some());
    assert!(repo.rev("orch/p/work").is_some());
    assert!(repo.rev("refs/tags/orch/p/start").is_some());
    let st = status_json(&repo);
    assert_eq!(st["abandoned"], true, "{st}");
    let list = repo.orch_json(&["list", "--json"]);
    assert_eq!(list["plans"][0]["abandoned"], true, "{list}");
    assert!(repo.orch_ok(&["list"]).contains("abandoned"));
    let log = repo.git(&["log", "--format=%s", "orch/p/state"]);
    assert!(log.contains("plan p: abandoned"), "{log}");
    // Nothing runs on it any more, and it is not abandoned twice.
    let before = repo.refs();
    for args in [
        vec!["run", "p"],
        vec!["task", "start", "a", "--plan", "p"],
        vec!["abandon", "p"],
    ] {
        let out = repo.orch(&args);
        assert_refused(&out, "an abandoned plan");
        assert!(stderr(&out).contains("abandoned"), "{}", both(&out));
    }
    assert_eq!(repo.refs(), before);
    repo.fsck();
}
