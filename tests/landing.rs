//! Landing integrity: the scope check judges exactly what a landing changes
//! on the work branch (content, mode, links, whatever the task's history
//! looks like and whatever the checkout mode), and nothing a task wrote is
//! dropped or lost on the way.

use crate::common::*;

/// Runs the plan, which must fail (exit 1) with the work branch where it was.
fn run_fails_and_work_stays(repo: &TestRepo) -> String {
    let work = repo.rev("orch/p/work").expect("work");
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert_eq!(repo.rev("orch/p/work"), Some(work), "work branch moved");
    both(&out)
}

fn reason(repo: &TestRepo, id: &str) -> String {
    let st = status_json(repo);
    let task = st["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no task {id} in {st}"));
    task["reason"].as_str().unwrap_or("").to_string()
}

/// `git ls-tree` of one path: `mode type id\tpath`.
fn entry(repo: &TestRepo, rev: &str, path: &str) -> String {
    repo.git(&["ls-tree", rev, "--", path]).trim().to_string()
}

#[test]
fn an_out_of_scope_chmod_fails_the_task_and_nothing_lands() {
    let repo = TestRepo::new();
    repo.write("tool.sh", "echo tool\n");
    repo.commit_all("tool");
    started(
        &repo,
        &PlanText::new("p")
            .task("t", |t| {
                t.run("mkdir -p src && echo in > src/in.txt && chmod +x tool.sh")
                    .files(["src/**"])
            })
            .to_string(),
    );
    let out = run_fails_and_work_stays(&repo);
    assert!(out.contains("tool.sh"), "{out}");
    assert_eq!(task_state(&status_json(&repo), "t"), "failed");
    assert!(reason(&repo, "t").contains("tool.sh"));
    assert!(entry(&repo, "orch/p/work", "tool.sh").starts_with("100644"));
    // The work is kept on its branch.
    assert!(entry(&repo, "orch/p/tasks/t", "tool.sh").starts_with("100755"));
    repo.fsck();
}

#[test]
fn an_out_of_scope_file_turned_into_a_link_fails_even_with_the_same_bytes() {
    // The file already holds the link's target, so its blob does not change:
    // only the mode says it became a link to /etc/passwd.
    let repo = TestRepo::new();
    repo.write("conf", "/etc/passwd");
    repo.commit_all("conf");
    started(
        &repo,
        &PlanText::new("p")
            .task("t", |t| {
                t.run("mkdir -p src && echo in > src/in.txt && rm conf && ln -s /etc/passwd conf")
                    .files(["src/**"])
            })
            .to_string(),
    );
    let out = run_fails_and_work_stays(&repo);
    assert!(out.contains("conf"), "{out}");
    assert_eq!(task_state(&status_json(&repo), "t"), "failed");
    assert!(entry(&repo, "orch/p/work", "conf").starts_with("100644"));
    assert!(entry(&repo, "orch/p/tasks/t", "conf").starts_with("120000"));
    repo.fsck();
}

/// Tasks a, b, c run at once with disjoint scopes. Once a and c have
/// landed, b makes its head a merge of its own commit with a's and c's
/// heads, in a tree that puts c's file back as it was. The work branch and
/// b's head then have two merge bases (a's and c's heads): diffing against
/// either one sees no change to c's file, while the landing merges against
/// git's virtual base and reverts it.
fn criss_cross_plan() -> String {
    PlanText::new("p")
        .default_str("merge", "@MERGE@")
        .default_toml("parallel", "3")
        .task("a", |t| t.run("echo a1 > a.txt").files(["a.txt"]))
        .task("c", |t| t.run("echo c1 > c.txt").files(["c.txt"]))
        .task("b", |t| {
            t.files(["b.txt"]).run(
                r#"set -e
echo b1 > b.txt
git add b.txt
git commit -q -m "b: its own change"
i=0
until [ "$(git show orch/p/work:a.txt 2>/dev/null)" = a1 ] &&
      [ "$(git show orch/p/work:c.txt 2>/dev/null)" = c1 ]; do
  i=$((i+1)); [ $i -lt 300 ] || exit 7
  sleep 0.1
done
git merge -q --no-edit orch/p/tasks/a orch/p/tasks/c
echo c0 > c.txt
git add c.txt
git commit -q --amend --no-edit
"#,
            )
        })
        .to_string()
}

/// Whatever the strategy, c's file stays as c landed it: with `merge` the
/// landing would revert it, so b fails; `squash` and `rebase` replay b's
/// own change only, so b lands.
fn criss_cross(merge: &str, b_lands: bool) {
    let repo = TestRepo::new();
    for f in ["a", "b", "c"] {
        repo.write(&format!("{f}.txt"), &format!("{f}0\n"));
    }
    repo.commit_all("three files");
    started(&repo, &criss_cross_plan().replace("@MERGE@", merge));
    let out = repo.orch(&["run"]);
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "done", "{st}");
    assert_eq!(task_state(&st, "c"), "done", "{st}");
    assert_eq!(repo.show("orch/p/work:a.txt").as_deref(), Some("a1\n"));
    assert_eq!(repo.show("orch/p/work:c.txt").as_deref(), Some("c1\n"));
    if b_lands {
        assert_eq!(code(&out), Some(0), "{}", both(&out));
        assert_eq!(task_state(&st, "b"), "done", "{st}");
        assert_eq!(repo.show("orch/p/work:b.txt").as_deref(), Some("b1\n"));
    } else {
        assert_eq!(code(&out), Some(1), "{}", both(&out));
        assert_eq!(task_state(&st, "b"), "failed", "{st}");
        assert!(reason(&repo, "b").contains("c.txt"), "{st}");
        assert_eq!(repo.show("orch/p/work:b.txt").as_deref(), Some("b0\n"));
        assert_eq!(repo.rev("refs/tags/orch/p/one"), None, "phase checkpointed");
    }
    repo.fsck();
}

#[test]
fn a_criss_cross_merge_cannot_revert_another_tasks_file_with_merge() {
    criss_cross("merge", false);
}

#[test]
fn a_criss_cross_merge_cannot_revert_another_tasks_file_with_squash() {
    criss_cross("squash", true);
}

#[test]
fn a_criss_cross_merge_cannot_revert_another_tasks_file_with_rebase() {
    criss_cross("rebase", true);
}

/// A repository with `a/old`, `b/old`, `c/old` and `top.txt`.
fn three_dirs() -> TestRepo {
    let repo = TestRepo::new();
    for d in ["a", "b", "c"] {
        repo.write(&format!("{d}/old"), &format!("{d}\n"));
    }
    repo.write("top.txt", "top\n");
    repo.commit_all("three dirs");
    repo
}

#[test]
fn a_sparse_checkout_materialises_a_brace_scope() {
    let repo = three_dirs();
    started(
        &repo,
        &PlanText::new("p").default_str("checkout", "sparse").task("t", |t| t.files(["{a,b}/**"]).run("test -f a/old && test -f b/old && test ! -e c/old && echo more >> a/old && echo new > b/new")).to_string(),
    );
    repo.orch_ok(&["run"]);
    assert_eq!(task_state(&status_json(&repo), "t"), "done");
    assert_eq!(repo.show("orch/p/work:a/old").as_deref(), Some("a\nmore\n"));
    assert_eq!(repo.show("orch/p/work:b/new").as_deref(), Some("new\n"));
    repo.fsck();
}

/// A task of scope `a/**` in a sparse checkout runs `write`: it must fail
/// with a scope violation naming `outside`, its work kept on its branch and
/// nothing left uncommitted in its worktree.
fn sparse_write_outside(write: &str, outside: &[&str]) {
    let repo = three_dirs();
    let plan = &PlanText::new("p")
        .default_str("checkout", "sparse")
        .task("t", |t| {
            t.files(["a/**"])
                .run("test ! -e c/old && echo more >> a/old && @WRITE@")
        })
        .to_string();
    started(&repo, &plan.replace("@WRITE@", write));
    let out = run_fails_and_work_stays(&repo);
    assert_eq!(task_state(&status_json(&repo), "t"), "failed", "{out}");
    let why = reason(&repo, "t");
    assert!(why.contains("outside its files"), "{why}");
    for p in outside {
        assert!(why.contains(p), "{p} not named: {why}");
        assert_eq!(
            repo.show(&format!("orch/p/tasks/t:{p}")).as_deref(),
            Some("w\n")
        );
    }
    let wt = repo.path.join(".orch/worktrees/p/t");
    assert_eq!(repo.git_in(&wt, &["status", "--porcelain"]), "");
    repo.fsck();
}

#[test]
fn a_sparse_task_that_writes_tracked_files_outside_its_cone_fails() {
    // `c/old` and `top.txt` are tracked but not materialised: git's own
    // `add -A` skips them without a word.
    sparse_write_outside(
        "mkdir c && echo w > c/old && echo w > top.txt",
        &["c/old", "top.txt"],
    );
}

#[test]
fn a_sparse_task_that_writes_a_new_file_outside_its_cone_fails() {
    sparse_write_outside("mkdir d && echo w > d/new", &["d/new"]);
}

#[test]
fn a_nested_repository_fails_the_task_and_is_never_removed() {
    let repo = TestRepo::new();
    started(
        &repo,
        &PlanText::new("p")
            .task("t", |t| {
                t.files(["vendor/**"]).run(
                    "set -e
git init -q vendor/lib
echo lib > vendor/lib/f
git -C vendor/lib add f
git -C vendor/lib commit -q -m lib
echo plain > vendor/readme
",
                )
            })
            .to_string(),
    );
    let out = run_fails_and_work_stays(&repo);
    assert_eq!(task_state(&status_json(&repo), "t"), "failed", "{out}");
    let why = reason(&repo, "t");
    assert!(
        why.contains("`vendor/lib`") && why.contains("repository"),
        "{why}"
    );
    let wt = repo.path.join(".orch/worktrees/p/t");
    let kept = || {
        assert_eq!(
            std::fs::read_to_string(wt.join("vendor/lib/f"))
                .ok()
                .as_deref(),
            Some("lib\n")
        );
        assert!(wt.join("vendor/lib/.git").is_dir());
    };
    kept();
    // Discarding the worktree (here by a reset) would lose the repository:
    // refused, naming it, and nothing changes.
    let refs = repo.refs();
    let out = repo.orch(&["task", "reset", "t"]);
    assert_refused(&out, "reset of a worktree holding a repository");
    assert!(stderr(&out).contains("vendor/lib"), "{}", both(&out));
    assert_eq!(repo.refs(), refs, "refs changed");
    kept();
    // Once it is out of the way, the reset goes ahead and keeps the rest.
    std::fs::remove_dir_all(wt.join("vendor/lib/.git")).expect("rm .git");
    repo.orch_ok(&["task", "reset", "t"]);
    assert!(!wt.exists());
    repo.fsck();
}

#[test]
fn a_failed_tasks_untracked_nested_repository_is_never_removed() {
    let repo = TestRepo::new();
    started(
        &repo,
        &PlanText::new("p")
            .task("t", |t| {
                t.files(["vendor/**"]).run(
                    "git init -q vendor/deep/lib
echo lib > vendor/deep/lib/f
git -C vendor/deep/lib add f
git -C vendor/deep/lib commit -q -m lib
exit 3
",
                )
            })
            .to_string(),
    );
    run_fails_and_work_stays(&repo);
    let wt = repo.path.join(".orch/worktrees/p/t");
    let refs = repo.refs();
    let out = repo.orch(&["task", "reset", "t"]);
    assert_refused(&out, "reset of a worktree holding a repository");
    assert!(stderr(&out).contains("vendor/deep/lib"), "{}", both(&out));
    assert_eq!(repo.refs(), refs, "refs changed");
    assert!(wt.join("vendor/deep/lib/.git").is_dir());
    assert!(wt.join("vendor/deep/lib/f").is_file());
    repo.fsck();
}

#[test]
fn a_nested_repository_committed_by_the_task_itself_does_not_land() {
    let repo = TestRepo::new();
    started(
        &repo,
        &PlanText::new("p")
            .task("t", |t| {
                t.files(["vendor/**"]).run(
                    r#"set -e
git init -q vendor/lib
echo lib > vendor/lib/f
git -C vendor/lib add f
git -C vendor/lib commit -q -m lib
git add -A 2>/dev/null
git commit -q -m "vendor lib"
"#,
                )
            })
            .to_string(),
    );
    let out = run_fails_and_work_stays(&repo);
    assert_eq!(task_state(&status_json(&repo), "t"), "failed", "{out}");
    let why = reason(&repo, "t");
    assert!(
        why.contains("`vendor/lib`") && why.contains("gitlink"),
        "{why}"
    );
    let wt = repo.path.join(".orch/worktrees/p/t");
    assert!(wt.join("vendor/lib/.git").is_dir());
    assert!(wt.join("vendor/lib/f").is_file());
    repo.fsck();
}

#[test]
fn a_nested_repository_done_by_hand_is_refused_then_lands_as_plain_files() {
    let repo = TestRepo::new();
    started(
        &repo,
        &PlanText::new("p")
            .task("t", |t| t.files(["vendor/**"]))
            .to_string(),
    );
    let wt = std::path::PathBuf::from(repo.orch_ok(&["task", "start", "t"]).trim());
    repo.git_in(&wt, &["init", "-q", "vendor/lib"]);
    std::fs::write(wt.join("vendor/lib/f"), "lib\n").expect("write");
    let lib = wt.join("vendor/lib");
    repo.git_in(&lib, &["add", "f"]);
    repo.git_in(&lib, &["commit", "-q", "-m", "lib"]);
    let refs = repo.refs();
    let out = repo.orch(&["task", "done", "t"]);
    assert_refused(&out, "done with a nested repository");
    assert!(stderr(&out).contains("vendor/lib"), "{}", both(&out));
    assert_eq!(repo.refs(), refs, "refs changed");
    assert_eq!(task_state(&status_json(&repo), "t"), "running");
    std::fs::remove_dir_all(lib.join(".git")).expect("rm .git");
    repo.orch_ok(&["task", "done", "t"]);
    assert_eq!(
        repo.show("orch/p/work:vendor/lib/f").as_deref(),
        Some("lib\n")
    );
    repo.fsck();
}
