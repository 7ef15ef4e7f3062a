//! A repair is told, never silent: a commit a person makes on the work
//! branch while a run lands tasks is kept in a ref, and the run says where
//! and how to bring it back.

mod common;
use common::*;

use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn a_commit_made_on_the_work_branch_during_a_run_is_kept_and_named() {
    let repo = TestRepo::new();
    let flag = repo.scratch().join("go");
    let plan = repo.plan(
        "p.toml",
        &format!(
            "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a/**\"]\n  run = \"mkdir -p a && echo a > a/f\"\n  [[phases.tasks]]\n  id = \"b\"\n  files = [\"b/**\"]\n  run = \"while [ ! -e '{}' ]; do sleep 0.05; done; mkdir -p b && echo b > b/f\"\n",
            flag.display()
        ),
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let mut run = repo.command(BIN, &repo.path);
    let child = run
        .args(["run", "-j", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    // Once a has landed (b still waits), a person commits on the work branch.
    let deadline = Instant::now() + Duration::from_secs(60);
    while task_state(&status_json(&repo), "a") != "done" {
        assert!(Instant::now() < deadline, "a never landed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let work = repo.rev("refs/heads/orch/p/work").expect("work");
    let tree = repo.git(&["rev-parse", &format!("{work}^{{tree}}")]);
    let mine = repo.git(&["commit-tree", tree.trim(), "-p", &work, "-m", "my fix"]);
    let mine = mine.trim().to_string();
    repo.git(&["update-ref", "refs/heads/orch/p/work", &mine, &work]);
    std::fs::write(&flag, "").expect("flag");
    let out = child.wait_with_output().expect("run ends");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    // Kept in a ref, and the run said so on a warning line naming it.
    let kept: Vec<String> = repo
        .git(&[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/orch/p/preserved/repair/",
        ])
        .lines()
        .filter(|l| l.ends_with(&mine))
        .map(|l| l.split(' ').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(kept.len(), 1, "the commit is kept: {kept:?}\n{err}");
    let warning = err
        .lines()
        .find(|l| l.starts_with("warning:") && l.contains(&kept[0]))
        .unwrap_or_else(|| panic!("no warning names {}:\n{err}", kept[0]));
    assert!(warning.contains("orch/p/work"), "{warning}");
    assert!(err.contains("git cherry-pick"), "{err}");
    repo.fsck();
}

#[test]
fn files_left_where_a_reset_removed_a_worktree_never_block_the_next_start() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "p.toml",
        "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a/**\"]\n",
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let wt = std::path::PathBuf::from(repo.orch_ok(&["task", "start", "a"]).trim());
    repo.orch_ok(&["task", "reset", "a"]);
    assert!(!wt.exists(), "reset removed the worktree");
    // A process of the task still writing puts files back after the reset.
    std::fs::create_dir_all(wt.join("a")).expect("mkdir");
    std::fs::write(wt.join("a/late.txt"), "written after the reset\n").expect("write");
    let out = repo.orch(&["task", "start", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(wt.join(".git").exists(), "a worktree again");
    assert!(
        !wt.join("a/late.txt").exists(),
        "the new attempt starts clean"
    );
    let kept = repo.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/orch/p/preserved/",
    ]);
    let kept = kept
        .lines()
        .find(|r| r.contains("leftover"))
        .unwrap_or_else(|| panic!("no leftover ref in {kept}"))
        .to_string();
    assert_eq!(
        repo.show(&format!("{kept}:a/late.txt")).as_deref(),
        Some("written after the reset\n")
    );
    assert!(stderr(&out).contains(&kept), "{}", both(&out));
    // And once more, the same with an empty directory.
    repo.orch_ok(&["task", "reset", "a"]);
    std::fs::create_dir_all(&wt).expect("mkdir");
    repo.orch_ok(&["task", "start", "a"]);
    repo.fsck();
}
