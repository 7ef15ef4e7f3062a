//! Wiring of the binary itself: help, version, exit codes outside a repo.

use crate::common::*;

#[test]
fn help_and_version_work_everywhere() {
    let repo = TestRepo::new();
    let out = repo.orch(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("checkpoint"));
    for sub in [
        "check",
        "start",
        "status",
        "run",
        "task",
        "checkpoint",
        "rollback",
        "resume",
        "log",
        "gate",
        "hook",
        "list",
        "finish",
        "demo",
        "import",
        "init",
        "report",
        "graph",
        "completions",
        "man",
    ] {
        let out = repo.orch(&[sub, "-h"]);
        assert_eq!(out.status.code(), Some(0), "{sub} -h");
    }
    for sub in ["start", "done", "fail", "reset", "skip", "reopen"] {
        let out = repo.orch(&["task", sub, "-h"]);
        assert_eq!(out.status.code(), Some(0), "task {sub} -h");
        assert!(stdout(&out).contains("Usage"), "task {sub} -h");
    }
    for sub in ["install", "uninstall", "status"] {
        let out = repo.orch(&["hook", sub, "-h"]);
        assert_eq!(out.status.code(), Some(0), "hook {sub} -h");
    }
    assert_eq!(repo.orch(&["--version"]).status.code(), Some(0));
}

#[test]
fn outside_a_repository_is_refused() {
    let repo = TestRepo::new();
    let outside = repo.scratch().join("nowhere");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let out = repo.orch_in(&outside, &["status"]);
    assert_refused(&out, "status outside a repo");
    assert!(stderr(&out).contains("not a git repository"));
}

#[test]
fn unknown_subcommand_exits_2() {
    let repo = TestRepo::new();
    let out = repo.orch(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).starts_with("error:"));
}

/// The README's first command ends with `git orch demo`: it must run to
/// the end on a fresh machine, and leave a repository git finds sound.
#[test]
fn the_demo_runs_to_the_end() {
    let repo = TestRepo::new();
    let dir = repo.scratch().join("demo");
    let out = repo.orch(&["demo", "--dir", dir.to_str().expect("utf-8")]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(both(&out).contains("demo complete"), "{}", both(&out));
    assert!(!both(&out).contains("dangling"), "{}", both(&out));
}
