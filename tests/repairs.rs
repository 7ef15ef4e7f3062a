//! A repair is told, never silent: a commit a person makes on the work
//! branch is adopted when it fast-forwards it (tests/work_branch.rs), and
//! kept in a ref, named, when it rewrites it; files left where a worktree
//! was are kept and moved aside.

use crate::common::*;

/// A person's commit on the work branch while `run` has a task running
/// outside a sandbox: the runner cannot tell the person from the task, so
/// the task fails naming the moved ref (its work kept on its branch); the
/// next command adopts the commit, a fast-forward, and says so. Nothing is
/// silent, nothing is lost.
#[test]
fn a_commit_made_on_the_work_branch_during_a_run_is_named_and_kept() {
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
    let child = repo
        .command(BIN, &repo.path)
        .args(["run", "-j", "2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while task_state(&status_json(&repo), "a") != "done" {
        assert!(std::time::Instant::now() < deadline, "a never landed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mine = commit_on_work(&repo);
    std::fs::write(&flag, "").expect("flag");
    let out = child.wait_with_output().expect("run ends");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("moved `refs/heads/orch/p/work`"),
        "the run names the moved ref: {err}"
    );
    // The next command adopts the commit (it fast-forwards the branch)
    // and says so.
    let status = repo.orch(&["status"]);
    let told = stderr(&status);
    assert!(told.contains(&format!("adopted: {}", &mine[..7])), "{told}");
    assert_eq!(
        repo.rev("refs/heads/orch/p/work").as_deref(),
        Some(mine.as_str())
    );
    assert_eq!(task_state(&status_json(&repo), "b"), "failed");
    repo.fsck();
}

/// `task done` by hand after a person rewrote the work branch (moved it to
/// a commit that does not fast-forward it): it lands on the state's work
/// head and says where the person's commit went.
#[test]
fn a_rewrite_of_the_work_branch_before_task_done_is_kept_and_named() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "p.toml",
        "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a/**\"]\n",
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let wt = std::path::PathBuf::from(repo.orch_ok(&["task", "start", "a"]).trim());
    std::fs::create_dir_all(wt.join("a")).expect("mkdir");
    std::fs::write(wt.join("a/f"), "a\n").expect("write");
    let mine = commit_beside_work(&repo);
    let out = repo.orch_in(&wt, &["task", "done", "a", "-m", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let kept = kept_in_repair(&repo, &mine);
    assert!(stderr(&out).contains(&kept), "{}", both(&out));
    assert_eq!(task_state(&status_json(&repo), "a"), "done");
    repo.fsck();
}

/// A person's commit on top of the work branch, moved there with plain git.
fn commit_on_work(repo: &TestRepo) -> String {
    let work = repo.rev("refs/heads/orch/p/work").expect("work");
    let tree = repo.git(&["rev-parse", &format!("{work}^{{tree}}")]);
    let mine = repo.git(&["commit-tree", tree.trim(), "-p", &work, "-m", "my fix"]);
    let mine = mine.trim().to_string();
    repo.git(&["update-ref", "refs/heads/orch/p/work", &mine, &work]);
    mine
}

/// A person's rewrite of the work branch, moved there with plain git: a
/// commit of the same tree with no parent, so not a fast-forward.
fn commit_beside_work(repo: &TestRepo) -> String {
    let work = repo.rev("refs/heads/orch/p/work").expect("work");
    let tree = repo.git(&["rev-parse", &format!("{work}^{{tree}}")]);
    let mine = repo.git(&["commit-tree", tree.trim(), "-m", "my rewrite"]);
    let mine = mine.trim().to_string();
    repo.git(&["update-ref", "refs/heads/orch/p/work", &mine, &work]);
    mine
}

/// The one `preserved/repair/` ref that keeps `commit`.
fn kept_in_repair(repo: &TestRepo, commit: &str) -> String {
    let kept: Vec<String> = repo
        .git(&[
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/orch/p/preserved/repair/",
        ])
        .lines()
        .filter(|l| l.ends_with(commit))
        .map(|l| l.split(' ').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(kept.len(), 1, "the commit is kept once: {kept:?}");
    kept[0].clone()
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

/// Issue 10 item 8: a repair pass that repaired something and then failed
/// exits 1 (not the 2 of "nothing changed") and says what it did change:
/// here the work branch is put back, its stray commit kept in a ref, and
/// then the `start` tag cannot be made again (a ref below its name blocks
/// it). The repair that was made stays made.
#[test]
fn a_repair_pass_that_fails_half_way_exits_1_and_says_what_it_repaired() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "p.toml",
        "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  run = \"echo a > a.txt\"\n",
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let work = repo.rev("refs/heads/orch/p/work").expect("work");
    let mine = commit_beside_work(&repo);
    let start = repo.rev("refs/tags/orch/p/start").expect("start tag");
    repo.git(&["update-ref", "-d", "refs/tags/orch/p/start"]);
    repo.git(&["update-ref", "refs/tags/orch/p/start/blocker", &start]);

    let out = repo.orch(&["status"]);
    let err = stderr(&out);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert!(
        errors[0].contains("was recorded, but then"),
        "it says a change was made before the failure: {err}"
    );
    // What it says it repaired, it did: the work branch is back, the
    // person's commit is kept in the ref it names.
    let kept = kept_in_repair(&repo, &mine);
    assert!(err.contains(&kept), "the error names {kept}: {err}");
    assert_eq!(
        repo.rev("refs/heads/orch/p/work").as_deref(),
        Some(work.as_str())
    );

    // Once the blocker is gone, the next command finishes the repair.
    repo.git(&["update-ref", "-d", "refs/tags/orch/p/start/blocker"]);
    let out = repo.orch(&["status"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(repo.rev("refs/tags/orch/p/start").is_some());
    repo.fsck();
}
