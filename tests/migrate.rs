//! State format 2 and the way there: a repository made by git-orch 0.1.0
//! (fixtures/v1, made by fixtures/v1/make.sh at commit 200845d) mid-plan,
//! with a rollback in its history and a task running, is read as it is and
//! rewritten as format 2 by its first change; a newer format, a state
//! branch that is not git-orch's, and hand-edited records are refused with
//! one line, never a panic.

use crate::common::*;

use serde_json::Value;

/// A repository holding every ref of the 0.1.0 fixture, checked out on main.
fn legacy_repo() -> TestRepo {
    let repo = TestRepo::empty();
    let bundle =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/v1/mid-plan.bundle");
    repo.git(&[
        "fetch",
        "-q",
        "--update-head-ok",
        bundle.to_str().expect("utf-8 path"),
        "+refs/*:refs/*",
    ]);
    repo.git(&["checkout", "-q", "-f", "main"]);
    repo
}

fn state_files(repo: &TestRepo) -> Vec<String> {
    repo.git(&["ls-tree", "-r", "--name-only", "orch/legacy/state"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn subjects(repo: &TestRepo) -> Vec<String> {
    repo.git(&["log", "--format=%s", "orch/legacy/state"])
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_v1_state_is_read_as_it_is_and_not_rewritten_by_reading() {
    let repo = legacy_repo();
    let before = repo.rev("orch/legacy/state");
    let st = repo.orch_json(&["status", "legacy", "--json"]);
    assert_eq!(task_state(&st, "a"), "done");
    assert_eq!(task_state(&st, "b"), "done");
    assert_eq!(task_state(&st, "c"), "failed");
    assert_eq!(task_state(&st, "d"), "running");
    assert_eq!(st["phase"], "two");
    assert_eq!(st["phases"][0]["state"], "checkpointed");
    repo.orch_ok(&["status", "legacy"]);
    repo.orch_ok(&["log", "legacy"]);
    repo.orch_ok(&["list"]);
    let report = repo.orch_json(&["report", "legacy", "--format", "json"]);
    assert_eq!(report["rollbacks"].as_array().map(Vec::len), Some(1));
    let a_attempts = report["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter(|x| x["task"] == "a")
        .count();
    assert_eq!(a_attempts, 2, "a ran, was rolled back, and ran again");
    assert_eq!(
        repo.rev("orch/legacy/state"),
        before,
        "reading wrote nothing"
    );
    assert!(state_files(&repo).contains(&"state.json".to_string()));
}

#[test]
fn the_first_change_to_a_v1_state_rewrites_it_as_v2_and_the_plan_goes_on() {
    let repo = legacy_repo();
    let v1_head = repo.rev("orch/legacy/state").expect("state branch");
    // d was started by hand and its worktree is gone with the machine that made it.
    let out = repo.orch(&["task", "reset", "d", "--plan", "legacy"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));

    let files = state_files(&repo);
    assert!(!files.contains(&"state.json".to_string()), "{files:?}");
    assert!(files.contains(&"meta.json".to_string()), "{files:?}");
    for id in ["a", "b", "c"] {
        assert!(files.contains(&record_path(id)), "{id}: {files:?}");
    }
    for id in ["a", "b"] {
        assert!(
            files.contains(&handoff_path(id)),
            "handoff of {id} moved: {files:?}"
        );
    }
    assert!(
        !files.iter().any(|f| f.starts_with("handoff/")),
        "{files:?}"
    );
    let meta: Value =
        serde_json::from_str(&repo.show("orch/legacy/state:meta.json").expect("meta"))
            .expect("json");
    assert_eq!(meta["version"], 2);
    assert_eq!(meta["rollbacks"].as_array().map(Vec::len), Some(1));
    // The migration is a commit of its own, on top of the 0.1 history.
    let subjects = subjects(&repo);
    assert_eq!(subjects[0], "task d: reset to pending");
    assert!(
        subjects[1].contains("state format 1 rewritten as 2"),
        "{subjects:?}"
    );
    assert_eq!(
        repo.rev("orch/legacy/state~2").as_deref(),
        Some(v1_head.as_str())
    );
    let migration = repo.git(&["log", "-1", "--format=%B", "orch/legacy/state~1"]);
    assert!(
        migration.contains("Orch-Event: {\"kind\":\"state-migrated\""),
        "{migration}"
    );

    // The rest of the plan works on v2.
    assert_eq!(task_state(&status_json(&repo), "d"), "pending");
    repo.orch_ok(&["task", "skip", "c", "--plan", "legacy"]);
    let wt = repo.orch_ok(&["task", "start", "d", "--plan", "legacy"]);
    let wt = std::path::PathBuf::from(wt.trim());
    std::fs::create_dir_all(wt.join("d")).expect("mkdir");
    std::fs::write(wt.join("d/file"), "d\n").expect("write");
    repo.orch_ok(&["task", "done", "d", "--plan", "legacy", "-m", "d"]);
    // Restored from a bundle, the plan's commands were never approved on
    // this machine: its gates run once it is trusted (issue 13).
    assert_refused(
        &repo.orch(&["checkpoint", "legacy"]),
        "an untrusted checkpoint",
    );
    repo.orch_ok(&["trust", "legacy", "--yes"]);
    repo.orch_ok(&["checkpoint", "legacy"]);
    let st = status_json(&repo);
    assert_eq!(st["phase"], Value::Null, "{st}");
    let report = repo.orch_json(&["report", "legacy", "--format", "json"]);
    let kinds: Vec<&str> = report["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"rollback"),
        "the 0.1 rollback is still on record: {kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "checkpoint").count(),
        3,
        "{kinds:?}"
    );
    repo.orch_ok(&["finish", "legacy"]);
    repo.fsck();
}

/// Writes a state commit by hand with plain git: `files` as (path, content).
fn forge_state(repo: &TestRepo, plan: &str, files: &[(&str, &str)]) {
    let index = repo.scratch().join("forge-index");
    let _ = std::fs::remove_file(&index);
    for (path, content) in files {
        let file = repo.scratch().join("forge-blob");
        std::fs::write(&file, content).expect("write blob");
        let blob = repo.git(&["hash-object", "-w", file.to_str().expect("utf-8")]);
        let mut cmd = repo.command("git", &repo.path);
        cmd.env("GIT_INDEX_FILE", &index).args([
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("100644,{},{path}", blob.trim()),
        ]);
        assert!(cmd.status().expect("git").success());
    }
    let mut cmd = repo.command("git", &repo.path);
    cmd.env("GIT_INDEX_FILE", &index).arg("write-tree");
    let tree = String::from_utf8(cmd.output().expect("git").stdout).expect("utf-8");
    let parent = repo.rev(&format!("orch/{plan}/state"));
    let mut args = vec!["commit-tree", tree.trim(), "-m", "forged"];
    if let Some(p) = parent.as_deref() {
        args.extend(["-p", p]);
    }
    let commit = repo.git(&args);
    repo.git(&[
        "update-ref",
        &format!("refs/heads/orch/{plan}/state"),
        commit.trim(),
    ]);
}

fn started() -> TestRepo {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "p.toml",
        "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a/**\"]\n",
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    repo
}

fn assert_refused_cleanly(repo: &TestRepo, args: &[&str], needle: &str) {
    let before = repo.refs();
    let out = repo.orch(args);
    assert_refused(&out, &format!("{args:?}"));
    let err = stderr(&out);
    assert!(err.contains(needle), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(repo.refs(), before, "{args:?} changed refs");
}

#[test]
fn a_state_format_newer_than_this_git_orch_is_refused() {
    let repo = started();
    let meta = repo.show("orch/p/state:meta.json").expect("meta");
    let plan = repo.show("orch/p/state:plan.json").expect("plan");
    let mut newer: Value = serde_json::from_str(&meta).expect("meta is JSON");
    assert_eq!(newer["version"], 2);
    newer["version"] = 3.into();
    let newer = newer.to_string();
    forge_state(&repo, "p", &[("meta.json", &newer), ("plan.json", &plan)]);
    for args in [&["status", "p"][..], &["task", "start", "a"], &["run", "p"]] {
        assert_refused_cleanly(&repo, args, "state format 3");
    }
}

#[test]
fn a_state_branch_that_is_not_git_orchs_is_refused() {
    let repo = TestRepo::new();
    forge_state(&repo, "x", &[("README", "not a plan\n")]);
    for args in [&["status", "x"][..], &["report", "x"], &["log", "x"]] {
        assert_refused_cleanly(&repo, args, "not a git-orch state branch");
    }
}

#[test]
fn hand_edited_records_are_errors_not_panics() {
    let cases: &[(&str, &str)] = &[
        ("wrong type", "{\"state\": 7}"),
        ("not json", "{{{"),
        ("unknown state", "{\"state\": \"flying\", \"attempts\": 1}"),
        (
            "negative attempts",
            "{\"state\": \"running\", \"attempts\": -1}",
        ),
    ];
    for (what, record) in cases {
        let repo = started();
        let meta = repo.show("orch/p/state:meta.json").expect("meta");
        let plan = repo.show("orch/p/state:plan.json").expect("plan");
        let path = record_path("a");
        forge_state(
            &repo,
            "p",
            &[("meta.json", &meta), ("plan.json", &plan), (&path, record)],
        );
        for args in [
            &["status", "p"][..],
            &["status", "p", "--json"],
            &["task", "start", "a"],
        ] {
            let out = repo.orch(args);
            let err = stderr(&out);
            assert_eq!(code(&out), Some(2), "{what} {args:?}: {}", both(&out));
            assert!(err.starts_with("error: "), "{what}: {err}");
            assert!(err.contains("record of task `a`"), "{what}: {err}");
            assert!(!err.contains("panicked"), "{what}: {err}");
        }
    }
}

#[test]
fn a_change_writes_only_the_records_it_changes() {
    let repo = TestRepo::new();
    let mut text = String::from("name = \"p\"\n[[phases]]\nid = \"one\"\n");
    for i in 0..40 {
        text += &format!("  [[phases.tasks]]\n  id = \"t{i}\"\n  files = [\"t{i}/**\"]\n");
    }
    let plan = repo.plan("p.toml", &text);
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    for i in 0..3 {
        let wt = repo.orch_ok(&["task", "start", &format!("t{i}")]);
        let wt = std::path::PathBuf::from(wt.trim());
        std::fs::create_dir_all(wt.join(format!("t{i}"))).expect("mkdir");
        std::fs::write(wt.join(format!("t{i}/f")), "x").expect("write");
        repo.orch_ok(&["task", "done", &format!("t{i}")]);
    }
    // The last change (task t2 done) touched t2's files, meta.json, and
    // nothing of any other task.
    let changed = repo.git(&[
        "diff-tree",
        "-r",
        "--name-only",
        "--no-commit-id",
        "orch/p/state~1",
        "orch/p/state",
    ]);
    let changed: Vec<&str> = changed.lines().collect();
    assert!(changed.contains(&"meta.json"), "{changed:?}");
    assert!(changed.contains(&record_path("t2").as_str()), "{changed:?}");
    for path in &changed {
        assert!(
            *path == "meta.json" || path.contains("/t2/") || path.ends_with("/t2.json"),
            "a change to t2 rewrote {path}: {changed:?}"
        );
    }
    // Pending tasks have no record at all.
    let files = state_files_of(&repo, "p");
    assert!(!files.contains(&record_path("t39")), "{files:?}");
    // Every state commit carries its event.
    let bodies = repo.git(&["log", "--format=%B%x00", "orch/p/state"]);
    for body in bodies.split('\0').filter(|b| !b.trim().is_empty()) {
        assert!(body.contains("\nOrch-Event: {"), "no event in {body:?}");
    }
}

fn state_files_of(repo: &TestRepo, plan: &str) -> Vec<String> {
    repo.git(&[
        "ls-tree",
        "-r",
        "--name-only",
        &format!("orch/{plan}/state"),
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn a_task_id_that_is_another_tasks_record_file_is_refused() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "p.toml",
        "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"x\"\n  files = [\"x/**\"]\n  [[phases.tasks]]\n  id = \"x.json\"\n  files = [\"y/**\"]\n",
    );
    let plan = plan.to_str().expect("utf-8");
    let out = repo.orch(&["check", plan]);
    assert_eq!(code(&out), Some(2), "{}", both(&out));
    assert!(both(&out).contains("record file name"), "{}", both(&out));
    let before = repo.refs();
    assert_refused(&repo.orch(&["start", plan]), "start");
    assert_eq!(repo.refs(), before);
}

#[test]
fn an_undo_writes_no_tree_the_state_does_not_keep() {
    let repo = started();
    let wt = std::path::PathBuf::from(repo.orch_ok(&["task", "start", "a"]).trim());
    std::fs::create_dir_all(wt.join("a")).expect("mkdir");
    std::fs::write(wt.join("a/f"), "a\n").expect("write");
    repo.orch_ok(&["task", "done", "a", "-m", "a"]);
    repo.orch_ok(&["checkpoint", "p"]);
    repo.orch_ok(&["rollback", "p", "--to", "start"]);
    repo.orch_ok(&["rollback", "--undo", "p"]);
    assert_eq!(task_state(&status_json(&repo), "a"), "done");
    let out = repo
        .command("git", &repo.path)
        .args(["fsck", "--no-progress"])
        .output()
        .expect("fsck");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains("dangling tree"), "{text}");
    repo.fsck();
}
