//! Worktrees ready for real projects (issue 11): ignored files of the main
//! checkout copied into a new worktree by `[worktrees] include` and
//! `.worktreeinclude`, a `setup` command run once per new worktree, and
//! ignored build directories kept by the pool between tasks. Real
//! repositories, the real binary, results read with git.
use crate::common::*;

/// A repository whose `.gitignore` ignores local files and a build dir.
fn project() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        ".gitignore",
        ".env\nconfig/local.toml\nsecrets/\nbuild/\n*.log\n",
    );
    repo.commit_all("ignore local files");
    repo.write(".env", "TOKEN=abc\n");
    repo.write("config/local.toml", "port = 1\n");
    repo.write("secrets/a.key", "key-a\n");
    repo.write("secrets/b.txt", "not listed\n");
    repo.write("debug.log", "not listed either\n");
    repo
}

#[test]
fn included_files_are_copied_into_a_new_worktree_and_never_committed() {
    let repo = project();
    // Claude Code's convention: gitignore patterns, copied only if ignored;
    // `README` is tracked and matches, and is neither copied nor refused.
    repo.write(".worktreeinclude", "secrets/*.key\nREADME\n");
    started(
        &repo,
        r#"
name = "p"
[worktrees]
include = [".env", "config/*.toml"]
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["seen.txt"]
  run = '''
{ cat .env config/local.toml secrets/a.key; ls secrets; if test -e debug.log; then echo LOG; fi; } > seen.txt
'''
"#,
    );
    let out = repo.orch(&["run", "-j", "1"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(
        repo.show("orch/p/work:seen.txt").as_deref(),
        Some("TOKEN=abc\nport = 1\nkey-a\na.key\n"),
        "the three included files, and nothing else, were in the worktree"
    );
    // The copies were never committed: the landed tree has none of them.
    let tree = repo.git(&["ls-tree", "-r", "--name-only", "orch/p/work"]);
    for f in [".env", "config/local.toml", "secrets/a.key"] {
        assert!(!tree.lines().any(|l| l == f), "{f} landed: {tree}");
    }
    // The task's log says what was copied.
    let log = repo.orch_ok(&["log", "p", "a"]);
    assert!(log.contains("copied from the main checkout"), "{log}");
    assert!(log.contains(".env"), "{log}");
    repo.fsck();
}

#[test]
fn a_plan_include_that_git_does_not_ignore_is_refused_before_anything_runs() {
    let repo = project();
    repo.write("notes.txt", "local notes\n");
    let marker = repo.scratch().join("ran");
    started(
        &repo,
        &format!(
            r#"
name = "p"
[worktrees]
include = [".env", "notes.txt"]
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["x"]
  run = "touch '{}'"
"#,
            marker.display()
        ),
    );
    let before = repo.refs();
    let out = repo.orch(&["run"]);
    assert_refused(&out, "an include git does not ignore");
    let err = stderr(&out);
    assert!(err.contains("`notes.txt`"), "names the file: {err}");
    assert!(err.contains(".gitignore"), "says what to do: {err}");
    assert!(!err.contains("`.env`"), "an ignored file is fine: {err}");
    assert_eq!(repo.refs(), before, "nothing changed");
    assert!(!marker.exists(), "no task ran");
}

#[test]
fn setup_runs_once_per_new_worktree_and_the_pool_keeps_build_dirs() {
    let repo = project();
    let count = repo.scratch().join("setups");
    // Each task reads the build dir the setup made and adds to it: a
    // recycled worktree still has it (ignored files survive the pool).
    let task = |id: &str, dep: &str| {
        format!(
            r#"
  [[phases.tasks]]
  id = "{id}"
  files = ["{id}.txt"]
  depends_on = [{dep}]
  run = '''
test -f build/deps || exit 9
echo {id} >> build/runs
wc -l < build/runs | tr -d ' ' > {id}.txt
'''
"#
        )
    };
    started(
        &repo,
        &format!(
            r#"
name = "p"
[worktrees]
setup = '''
echo "setup in $ORCH_TASK for $ORCH_PLAN"
echo x >> '{count}'
mkdir -p build && echo installed > build/deps
'''
[[phases]]
id = "one"
{}{}{}"#,
            task("a", ""),
            task("b", "\"a\""),
            task("c", "\"b\""),
            count = count.display()
        ),
    );
    let out = repo.orch(&["run", "-j", "1"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let setups = std::fs::read_to_string(&count).expect("setup ran");
    assert_eq!(setups.lines().count(), 1, "setup ran once: {setups}");
    // The third task saw the build dir the first two wrote: incremental.
    assert_eq!(repo.show("orch/p/work:c.txt").as_deref(), Some("3\n"));
    // Nothing of the build dir landed.
    let tree = repo.git(&["ls-tree", "-r", "--name-only", "orch/p/work"]);
    assert!(!tree.contains("build/"), "{tree}");
    // The setup's output is in the first task's log, with its environment.
    let log = repo.orch_ok(&["log", "p", "a"]);
    assert!(log.contains("setup in a for p"), "{log}");
    let log = repo.orch_ok(&["log", "p", "b"]);
    assert!(
        !log.contains("setup in"),
        "no setup for a recycled worktree: {log}"
    );
    repo.fsck();
}

#[test]
fn a_failing_setup_fails_the_task_and_runs_again_on_retry() {
    let repo = project();
    let fixed = repo.scratch().join("fixed");
    started(
        &repo,
        &format!(
            r#"
name = "p"
[worktrees]
setup = '''
echo "installing"
test -f '{}' || {{ echo "no registry"; exit 3; }}
'''
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a.txt"]
  run = "echo done > a.txt"
"#,
            fixed.display()
        ),
    );
    let out = repo.orch(&["run", "-j", "1"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "failed", "{st}");
    let task = st["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["id"] == "a"))
        .cloned()
        .expect("task a");
    let reason = task["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("setup"), "{reason}");
    assert!(reason.contains("exit code 3"), "{reason}");
    let log = repo.orch_ok(&["log", "p", "a"]);
    assert!(
        log.contains("no registry"),
        "the setup's output is the log: {log}"
    );
    // The half-set-up worktree was not put in the pool.
    let pool = repo.path.join(".orch/worktrees/p/.pool");
    assert!(
        std::fs::read_dir(&pool).map_or(true, |mut d| d.next().is_none()),
        "pool is empty"
    );
    // Fixed: the retry runs the setup again (the worktree was never made
    // ready), and the task lands.
    std::fs::write(&fixed, "").expect("fix");
    let out = repo.orch(&["task", "retry", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(task_state(&status_json(&repo), "a"), "done");
    let log = repo.orch_ok(&["log", "p", "a"]);
    assert!(log.contains("setup done"), "{log}");
    repo.fsck();
}

#[test]
fn a_task_started_by_hand_gets_the_included_files_and_the_setup() {
    let repo = project();
    started(
        &repo,
        r#"
name = "p"
[worktrees]
include = [".env"]
setup = "echo ready > build-stamp.log"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a.txt"]
"#,
    );
    let out = repo.orch(&["task", "start", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let path = std::path::PathBuf::from(stdout(&out).trim());
    assert_eq!(
        std::fs::read_to_string(path.join(".env")).ok().as_deref(),
        Some("TOKEN=abc\n")
    );
    assert!(path.join("build-stamp.log").is_file(), "the setup ran");
    std::fs::write(path.join("a.txt"), "by hand\n").expect("write");
    repo.orch_ok(&["task", "done", "a", "-m", "by hand"]);
    let tree = repo.git(&["ls-tree", "-r", "--name-only", "orch/p/work"]);
    assert!(!tree.lines().any(|l| l == ".env"), "{tree}");
    assert!(tree.lines().any(|l| l == "a.txt"), "{tree}");
}

#[test]
fn check_locates_bad_worktrees_tables() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "bad.toml",
        r#"
name = "p"
[worktrees]
include = ["!x"]
setup = " "
setup_timeout = "soon"
copy = ["y"]
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a"]
"#,
    );
    let out = repo.orch(&["check", plan.to_str().expect("utf-8")]);
    assert_eq!(code(&out), Some(2), "{}", both(&out));
    let text = both(&out);
    assert!(text.contains("unknown key `copy` in worktrees"), "{text}");
    let plan = repo.plan(
        "bad2.toml",
        "name = \"p\"\n[worktrees]\ninclude = [\"!x\"]\nsetup = \" \"\nsetup_timeout = \"soon\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nfiles = [\"a\"]\n",
    );
    let out = repo.orch(&["check", plan.to_str().expect("utf-8")]);
    assert_eq!(code(&out), Some(2), "{}", both(&out));
    let text = both(&out);
    assert!(text.contains("bad2.toml:3:"), "located: {text}");
    assert!(text.contains("`!x` is not a pattern"), "{text}");
    assert!(text.contains("worktrees.setup is empty"), "{text}");
    assert!(text.contains("worktrees.setup_timeout"), "{text}");
}
