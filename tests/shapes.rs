//! Other repository shapes (issue 5, item 6): HEAD detached, started from a
//! linked worktree, a repository with a submodule, `core.hooksPath` set, the
//! reftable ref format, a shallow clone. Each carries a small plan through
//! `start`, `run` (tasks landed, the phase checkpointed by its gate) and
//! `status`, then checks `git fsck` and that the user's checkout was not
//! touched.
use crate::common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

/// Two parallel tasks that record where they ran, and a gate that needs
/// both. `@OUT@` is a directory outside the repository.
fn plan() -> String {
    PlanText::new("p")
        .default_str(
            "run",
            r#"printf '%s
' "$ORCH_REPO" > "$ORCH_TASK.txt"; pwd -P >> "$ORCH_TASK.txt""#,
        )
        .gate("both", "test -f a.txt && test -f b.txt")
        .task("a", |t| t.files(["a.txt"]))
        .task("b", |t| t.files(["b.txt"]))
        .to_string()
}

fn path_arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn ok_in(repo: &TestRepo, dir: &Path, args: &[&str]) -> String {
    let out = repo.orch_in(dir, args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "git orch {args:?} in {}: {}{}",
        dir.display(),
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn git_in(repo: &TestRepo, dir: &Path, args: &[&str]) -> String {
    repo.git_in(dir, args)
}

fn fsck_in(repo: &TestRepo, dir: &Path) {
    let out = repo
        .command("git", dir)
        .args(["fsck", "--no-progress"])
        .output()
        .expect("fsck");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        out.status.success(),
        "git fsck failed in {}:\n{text}",
        dir.display()
    );
    for bad in ["error", "missing", "broken", "corrupt"] {
        assert!(!text.contains(bad), "git fsck reports {bad}:\n{text}");
    }
}

/// `start`, `run -j 2`, `status`: both tasks landed, phase checkpointed.
/// Returns the task files' contents (ORCH_REPO, then the task's cwd).
fn carry_plan_through(repo: &TestRepo, dir: &Path) -> Vec<String> {
    let plan = repo.plan("plan.toml", &plan());
    ok_in(repo, dir, &["check", path_arg(&plan)]);
    ok_in(repo, dir, &["start", path_arg(&plan)]);
    ok_in(repo, dir, &["run", "-j", "2"]);
    let st = repo.orch_json_in(dir, &["status", "--json"]);
    for t in st["tasks"].as_array().expect("tasks") {
        assert_eq!(t["state"], "done", "{st}");
    }
    assert_eq!(st["phases"][0]["state"], "checkpointed", "{st}");
    assert!(st["phase"].is_null(), "{st}");
    let tag = git_in(repo, dir, &["rev-parse", "orch/p/one^{commit}"]);
    let work = git_in(repo, dir, &["rev-parse", "orch/p/work"]);
    assert_eq!(tag, work, "the checkpoint tags the work head");
    ok_in(repo, dir, &["log"]);
    fsck_in(repo, dir);
    ["a", "b"]
        .iter()
        .map(|t| git_in(repo, dir, &["show", &format!("orch/p/work:{t}.txt")]))
        .collect()
}

/// The checkout the user sees: HEAD and `status --porcelain`.
fn user_view(repo: &TestRepo, dir: &Path) -> (String, String, String) {
    (
        git_in(repo, dir, &["rev-parse", "HEAD"]),
        git_in(repo, dir, &["status", "--porcelain", "--ignored=no"]),
        repo.command("git", dir)
            .args(["symbolic-ref", "-q", "HEAD"])
            .output()
            .map(|o| stdout(&o))
            .unwrap_or_default(),
    )
}

#[test]
fn detached_head() {
    let repo = TestRepo::new();
    repo.write("second", "2\n");
    repo.commit_all("second");
    repo.git(&["checkout", "-q", "--detach", "HEAD~1"]);
    let before = user_view(&repo, &repo.path);
    assert!(before.2.is_empty(), "HEAD is detached");
    carry_plan_through(&repo, &repo.path);
    assert_eq!(
        user_view(&repo, &repo.path),
        before,
        "the user's checkout moved"
    );
    // The plan built on the detached HEAD, not on main.
    let base = repo.git(&["rev-parse", "orch/p/start^{commit}"]);
    assert_eq!(base, before.0);
    // By hand too: a second plan's task started and done from the detached checkout.
    let plan2 = repo.plan(
        "hand.toml",
        "name = \"hand\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"t\"\nfiles = [\"t\"]\n",
    );
    repo.orch_ok(&["start", path_arg(&plan2)]);
    let wt = PathBuf::from(
        repo.orch_ok(&["task", "start", "t", "--plan", "hand"])
            .trim(),
    );
    std::fs::write(wt.join("t"), "t\n").expect("write");
    repo.orch_ok(&["task", "done", "t", "--plan", "hand"]);
    assert_eq!(repo.show("orch/hand/work:t").as_deref(), Some("t\n"));
    assert_eq!(user_view(&repo, &repo.path), before);
    repo.fsck();
}

#[test]
fn started_from_a_linked_worktree() {
    let repo = TestRepo::new();
    let linked = repo.scratch().join("linked");
    repo.git(&["worktree", "add", "-q", "-b", "side", path_arg(&linked)]);
    let main_before = user_view(&repo, &repo.path);
    let linked_before = user_view(&repo, &linked);
    let files = carry_plan_through(&repo, &linked);
    for (content, task) in files.iter().zip(["a", "b"]) {
        let mut lines = content.lines();
        assert_eq!(
            lines.next(),
            Some(path_arg(&repo.path)),
            "ORCH_REPO is the main worktree"
        );
        let cwd = lines.next().expect("cwd line");
        assert!(
            !cwd.starts_with(path_arg(&linked)),
            "task {task} ran inside the user's linked worktree: {cwd}"
        );
    }
    // The plan is the repository's: the main worktree sees it too.
    let st: Value = repo.orch_json(&["status", "p", "--json"]);
    assert_eq!(st["phases"][0]["state"], "checkpointed");
    assert_eq!(user_view(&repo, &repo.path), main_before);
    assert_eq!(user_view(&repo, &linked), linked_before);
    // `git worktree list` still knows both, and nothing is prunable.
    let list = repo.git(&["worktree", "list", "--porcelain"]);
    assert!(list.contains(path_arg(&linked)), "{list}");
    assert!(!list.contains("prunable"), "{list}");
    repo.fsck();
}

#[test]
fn repository_with_a_submodule() {
    let sub = TestRepo::new();
    sub.write("lib.txt", "library\n");
    sub.commit_all("lib");
    let repo = TestRepo::new();
    repo.git(&[
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        path_arg(&sub.path),
        "vendor/lib",
    ]);
    repo.commit_all("add submodule");
    let gitlink = repo.git(&["ls-tree", "HEAD", "vendor/lib"]);
    assert!(gitlink.starts_with("160000 commit"), "{gitlink}");
    let before = user_view(&repo, &repo.path);
    carry_plan_through(&repo, &repo.path);
    // The gitlink survived every landing, and .gitmodules with it.
    assert_eq!(repo.git(&["ls-tree", "orch/p/work", "vendor/lib"]), gitlink);
    assert!(repo.show("orch/p/work:.gitmodules").is_some());
    // A task that initialises the submodule in its worktree and changes a
    // file beside it lands too, the submodule untouched.
    let plan = repo.plan(
        "two.toml",
        "name = \"two\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"t\"\nfiles = [\"notes/**\"]\n",
    );
    repo.orch_ok(&["start", path_arg(&plan)]);
    let wt = PathBuf::from(
        repo.orch_ok(&["task", "start", "t", "--plan", "two"])
            .trim()
            .to_string(),
    );
    let wt_status = repo.git_in(&wt, &["status", "--porcelain"]);
    assert!(
        wt_status.is_empty(),
        "fresh task worktree is clean: {wt_status}"
    );
    repo.git_in(
        &wt,
        &[
            "-c",
            "protocol.file.allow=always",
            "submodule",
            "update",
            "-q",
            "--init",
        ],
    );
    assert_eq!(
        std::fs::read_to_string(wt.join("vendor/lib/lib.txt"))
            .ok()
            .as_deref(),
        Some("library\n")
    );
    std::fs::create_dir_all(wt.join("notes")).expect("mkdir");
    std::fs::write(wt.join("notes/n.md"), "n\n").expect("write");
    repo.orch_ok(&["task", "done", "t", "--plan", "two"]);
    assert_eq!(
        repo.show("orch/two/work:notes/n.md").as_deref(),
        Some("n\n")
    );
    assert_eq!(
        repo.git(&["ls-tree", "orch/two/work", "vendor/lib"]),
        gitlink
    );
    assert_eq!(user_view(&repo, &repo.path), before);
    repo.fsck();
}

#[test]
fn core_hooks_path_set() {
    let repo = TestRepo::new();
    let log = repo.scratch().join("hooks.log");
    repo.write(
        ".githooks/pre-commit",
        &format!(
            "#!/bin/sh\necho pre-commit >> '{}'\nexit 0\n",
            log.display()
        ),
    );
    repo.write(
        ".githooks/post-checkout",
        &format!("#!/bin/sh\necho post-checkout >> '{}'\n", log.display()),
    );
    for h in ["pre-commit", "post-checkout"] {
        std::fs::set_permissions(
            repo.path.join(".githooks").join(h),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
    }
    repo.commit_all("hooks");
    repo.git(&["config", "core.hooksPath", ".githooks"]);
    carry_plan_through(&repo, &repo.path);
    // git-orch's own commits and checkouts in task worktrees run no git
    // hook: under a relative hooksPath the hooks are files a task can
    // rewrite (issue 20, item 6).
    let ran = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!ran.contains("pre-commit"), "hooks.log: {ran}");
    // The pre-push hook goes where core.hooksPath points, and back out.
    repo.orch_ok(&["hook", "install"]);
    assert!(repo.path.join(".githooks/pre-push").exists());
    assert!(!repo.path.join(".git/hooks/pre-push").exists());
    let status = repo.orch_ok(&["hook", "status"]);
    assert!(status.contains(".githooks"), "{status}");
    let remote = repo.scratch().join("remote.git");
    repo.git(&["init", "-q", "--bare", path_arg(&remote)]);
    repo.git(&["push", "-q", path_arg(&remote), "orch/p/work"]);
    repo.orch_ok(&["hook", "uninstall"]);
    assert!(!repo.path.join(".githooks/pre-push").exists());
    // The user's own hooks are still there, untouched.
    for h in ["pre-commit", "post-checkout"] {
        assert!(repo.path.join(".githooks").join(h).exists(), "{h} removed");
    }
    let dirty = repo.git(&["status", "--porcelain"]);
    assert!(dirty.is_empty(), "{dirty}");
    repo.fsck();
}

/// reftable: git 2.45+ can create it; git-orch either works on it or
/// refuses with one clear error (exit 2) that says how to convert.
#[test]
fn reftable_repository_works_or_is_refused_clearly() {
    let repo = TestRepo::new();
    let dir = repo.scratch().join("reftable");
    let init = repo
        .command("git", &repo.scratch())
        .args([
            "init",
            "-q",
            "-b",
            "main",
            "--ref-format=reftable",
            path_arg(&dir),
        ])
        .output()
        .expect("git init");
    if !init.status.success() {
        eprintln!("this git cannot create reftable repositories; skipped");
        return;
    }
    std::fs::write(dir.join("README"), "hi\n").expect("write");
    git_in(&repo, &dir, &["add", "-A"]);
    git_in(&repo, &dir, &["commit", "-q", "-m", "initial"]);
    let plan = repo.plan("plan.toml", &plan());
    let refs_before = git_in(&repo, &dir, &["for-each-ref"]);
    let out: Output = repo.orch_in(&dir, &["start", path_arg(&plan)]);
    match out.status.code() {
        Some(0) => {
            ok_in(&repo, &dir, &["run", "-j", "2"]);
            fsck_in(&repo, &dir);
        }
        _ => {
            assert_refused(&out, "start in a reftable repository");
            let err = stderr(&out);
            let first = err.lines().next().unwrap_or("");
            assert!(
                first.contains("reftable"),
                "the error names the cause: {err}"
            );
            for fix in [
                "git refs migrate --ref-format=files",
                "git clone --ref-format=files",
            ] {
                assert!(err.contains(fix), "the error says what to do: {err}");
            }
            assert_eq!(git_in(&repo, &dir, &["for-each-ref"]), refs_before);
            // Every command refuses the same way, `check` works (no repository needed).
            for args in [vec!["status"], vec!["list"], vec!["run"]] {
                let out = repo.orch_in(&dir, &args);
                assert_refused(&out, &format!("{args:?} in a reftable repository"));
                assert!(stderr(&out).contains("reftable"));
            }
            ok_in(&repo, &dir, &["check", path_arg(&plan)]);
            // Converted as the hint says, it works: migrated where this git
            // can (2.48+ migrates reflogs), else a files-format clone.
            let migrated = repo
                .command("git", &dir)
                .args(["refs", "migrate", "--ref-format=files"])
                .output()
                .expect("git refs migrate");
            let usable = if migrated.status.success() {
                dir.clone()
            } else {
                let clone = repo.scratch().join("files-clone");
                git_in(
                    &repo,
                    &repo.scratch(),
                    &[
                        "clone",
                        "-q",
                        "--ref-format=files",
                        path_arg(&dir),
                        path_arg(&clone),
                    ],
                );
                clone
            };
            carry_plan_through(&repo, &usable);
        }
    }
}

#[test]
fn shallow_clone() {
    let origin = TestRepo::new();
    for i in 0..3 {
        origin.write(&format!("f{i}"), "x\n");
        origin.commit_all(&format!("commit {i}"));
    }
    let clone = origin.scratch().join("shallow");
    let url = format!("file://{}", origin.path.display());
    origin.git_in(
        &origin.scratch(),
        &["clone", "-q", "--depth", "1", &url, path_arg(&clone)],
    );
    assert!(clone.join(".git/shallow").exists(), "the clone is shallow");
    git_in(&origin, &clone, &["config", "gc.auto", "0"]);
    let before = user_view(&origin, &clone);
    carry_plan_through(&origin, &clone);
    assert_eq!(user_view(&origin, &clone), before);
    // Rollback and its undo work without the missing history.
    ok_in(&origin, &clone, &["rollback", "--to", "start"]);
    ok_in(&origin, &clone, &["rollback", "--undo"]);
    let st = origin.orch_json_in(&clone, &["status", "--json"]);
    assert_eq!(st["phases"][0]["state"], "checkpointed", "{st}");
    fsck_in(&origin, &clone);
}
