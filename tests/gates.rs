//! Issue 4: quality gates on every push — the gate runner, its cache and the
//! pre-push hook, driven through the real binary, the real `git push` and
//! real bare remotes in temp dirs.
use crate::common::*;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- helpers

/// A plan-wide gate: (name, shell command).
type G<'a> = (&'a str, &'a str);

/// Plan text with plan-wide `gates`, one phase `one` with `phase_gates` and
/// one manual task `t` that may write anywhere.
fn plan_text(name: &str, gates: &[G], phase_gates: &[G]) -> String {
    let mut s = format!("name = \"{name}\"\n\n");
    for (g, run) in gates {
        s += &format!("[[gates]]\nname = \"{g}\"\nrun = '''{run}'''\n\n");
    }
    s += "[[phases]]\nid = \"one\"\n\n";
    for (g, run) in phase_gates {
        s += &format!("  [[phases.gates]]\n  name = \"{g}\"\n  run = '''{run}'''\n\n");
    }
    s += "  [[phases.tasks]]\n  id = \"t\"\n  files = [\"**\"]\n";
    s
}

fn start(repo: &TestRepo, name: &str, gates: &[G], phase_gates: &[G]) {
    let file = repo.plan(
        &format!("{name}.toml"),
        &plan_text(name, gates, phase_gates),
    );
    repo.orch_ok(&["start", &file.to_string_lossy()]);
}

/// A file outside the repository a gate appends a line to each time it runs.
fn marker(repo: &TestRepo, name: &str) -> PathBuf {
    repo.scratch().join(format!("marker-{name}"))
}

/// Shell snippet that records one run in the marker file.
fn mark(repo: &TestRepo, name: &str) -> String {
    format!("echo ran >> '{}'", marker(repo, name).display())
}

fn runs(repo: &TestRepo, name: &str) -> usize {
    std::fs::read_to_string(marker(repo, name)).map_or(0, |s| s.lines().count())
}

/// A bare repository under scratch, added as remote `origin`.
fn remote(repo: &TestRepo) -> PathBuf {
    let bare = repo.scratch().join("remote.git");
    repo.git_in(
        &repo.scratch(),
        &["init", "-q", "--bare", &bare.to_string_lossy()],
    );
    repo.git(&["remote", "add", "origin", &bare.to_string_lossy()]);
    bare
}

fn remote_rev(repo: &TestRepo, bare: &Path, r: &str) -> Option<String> {
    let out = repo
        .command("git", bare)
        .args(["rev-parse", "--verify", "-q", r])
        .output()
        .expect("rev-parse in remote");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn remote_refs(repo: &TestRepo, bare: &Path) -> String {
    repo.git_in(bare, &["for-each-ref", "--format=%(objectname) %(refname)"])
}

/// The real `git push` in the repo, extra environment included.
fn push(repo: &TestRepo, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = repo.command("git", &repo.path);
    cmd.arg("push").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run git push")
}

fn both(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// A new commit on the checked-out branch touching `file`.
fn commit_file(repo: &TestRepo, file: &str, content: &str) -> String {
    repo.write(file, content);
    repo.git(&["add", "--", file]);
    repo.git(&["commit", "-q", "-m", &format!("edit {file}")]);
    repo.rev("HEAD").expect("HEAD")
}

/// Puts the work branch of `plan` on a new commit (checked out as `main`'s
/// child) and returns it.
fn advance_work(repo: &TestRepo, plan: &str, file: &str) -> String {
    let work = format!("orch/{plan}/work");
    repo.git(&["checkout", "-q", &work]);
    let c = commit_file(repo, file, &format!("{file}\n"));
    repo.git(&["checkout", "-q", "main"]);
    c
}

fn short(id: &str) -> &str {
    &id[..10]
}

fn worktrees(repo: &TestRepo) -> usize {
    repo.git(&["worktree", "list", "--porcelain"])
        .lines()
        .filter(|l| l.starts_with("worktree "))
        .count()
}

fn no_gate_checkouts_left(repo: &TestRepo) {
    assert_eq!(worktrees(repo), 1, "{}", repo.git(&["worktree", "list"]));
    let dir = repo.path.join(".git/orch/gates");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "gate checkouts left behind: {left:?}");
}

fn hooks_dir(repo: &TestRepo) -> PathBuf {
    repo.path.join(".git/hooks")
}

fn install(repo: &TestRepo) -> String {
    let out = repo.orch(&["hook", "install"]);
    assert_eq!(out.status.code(), Some(0), "hook install: {}", both(&out));
    both(&out)
}

fn write_exec(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write hook");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o7777
}

// ------------------------------------------------------- 1. the gate runner

#[test]
fn gate_runs_in_a_clean_separate_checkout_of_the_commit() {
    let repo = TestRepo::new();
    let seen = repo.scratch().join("seen");
    let cmd = format!(
        "{{ echo \"plan=$ORCH_PLAN gate=$ORCH_GATE commit=$ORCH_COMMIT\"; echo \"pwd=$(pwd)\"; \
         echo \"content=$(cat data.txt)\"; ls -a; git status --porcelain; }} > '{}'; \
         echo made > made-by-gate; echo hello-from-the-gate",
        seen.display()
    );
    repo.write("data.txt", "committed\n");
    repo.commit_all("data");
    start(&repo, "p", &[("unit", &cmd)], &[]);
    // Uncommitted changes the gate must not see.
    repo.write("data.txt", "uncommitted\n");
    repo.write("untracked.txt", "mine\n");
    let status_before = repo.git(&["status", "--porcelain"]);
    let head = repo.rev("HEAD").expect("head");

    let out = repo.orch(&["gate", "p"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let seen = std::fs::read_to_string(&seen).expect("gate ran");
    assert!(
        seen.contains(&format!("plan=p gate=unit commit={head}")),
        "{seen}"
    );
    assert!(
        seen.contains("content=committed"),
        "gate saw the user's uncommitted file: {seen}"
    );
    assert!(
        !seen.contains("untracked.txt"),
        "gate saw an untracked file: {seen}"
    );
    let pwd = seen
        .lines()
        .find_map(|l| l.strip_prefix("pwd="))
        .expect("pwd");
    assert_ne!(
        Path::new(pwd),
        repo.path.as_path(),
        "gate ran in the user's tree"
    );
    // A clean checkout: `git status` in it printed nothing before the gate wrote.
    assert!(
        !seen.contains("?? ") && !seen.contains(" M "),
        "checkout not clean: {seen}"
    );

    // The user's tree is exactly as it was; the checkout is gone.
    assert_eq!(repo.git(&["status", "--porcelain"]), status_before);
    assert!(!repo.path.join("made-by-gate").exists());
    assert_eq!(
        std::fs::read_to_string(repo.path.join("data.txt")).expect("read"),
        "uncommitted\n"
    );
    assert!(!Path::new(pwd).exists(), "gate checkout {pwd} not removed");
    no_gate_checkouts_left(&repo);

    // Per gate: pass/fail, seconds and where its log is; the log is there.
    let text = both(&out);
    assert!(text.contains("gate unit: passed in "), "{text}");
    assert!(text.contains("log: `git orch log p logs/gates/"), "{text}");
    // That command prints the gate's log (issue 23: `git orch log`, not
    // `git show`, wherever a log is meant).
    let at = text
        .find("git orch log p logs/gates/")
        .expect("the log's command");
    let path = text[at..].split('`').next().expect("command")["git orch log p ".len()..].trim();
    let shown = repo.orch_ok(&["log", "p", path]);
    assert_eq!(Some(shown), repo.show(&format!("orch/p/state:{path}")));
    assert_refused(
        &repo.orch(&["log", "p", "logs/gates/00/../../meta.json"]),
        "a path that is no gate log",
    );
    let json = repo.orch_json(&["gate", "p", "--json", "--no-cache"]);
    let g = &json["gates"][0];
    assert_eq!(g["name"], "unit");
    assert_eq!(g["passed"], true);
    assert_eq!(json["commit"], head.as_str());
    assert!(g["seconds"].as_f64().is_some());
    let log = g["log"].as_str().expect("log path");
    let shown = repo
        .show(&format!("orch/p/state:{log}"))
        .expect("log in state branch");
    assert!(shown.contains("hello-from-the-gate"), "{shown}");
    repo.fsck();
}

#[test]
fn phase_gates_and_another_commit() {
    let repo = TestRepo::new();
    let first = repo.rev("HEAD").expect("head");
    let commits = repo.scratch().join("commits");
    let rec = |g: &str| format!("echo {g} $ORCH_COMMIT >> '{}'", commits.display());
    start(
        &repo,
        "p",
        &[("unit", &rec("unit"))],
        &[("lint", &rec("lint"))],
    );
    let second = commit_file(&repo, "b.txt", "b\n");
    let read = || std::fs::read_to_string(&commits).unwrap_or_default();

    repo.orch_ok(&["gate"]);
    assert_eq!(
        read(),
        format!("unit {second}\n"),
        "plain `gate` runs only plan-wide gates on HEAD"
    );

    let out = repo.orch(&["gate", "--phase", "one", "--no-cache"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(read().contains(&format!("lint {second}")), "{}", read());
    assert!(both(&out).contains("gate lint: passed"), "{}", both(&out));

    std::fs::remove_file(&commits).expect("reset");
    repo.orch_ok(&["gate", "p", "--commit", "HEAD~1"]);
    assert_eq!(read(), format!("unit {first}\n"));

    let out = repo.orch(&["gate", "--phase", "nope"]);
    assert_refused(&out, "unknown phase");
    let out = repo.orch(&["gate", "--commit", "no-such-rev"]);
    assert_refused(&out, "unknown commit");
    let out = repo.orch(&["gate", "nosuchplan"]);
    assert_refused(&out, "unknown plan");
}

#[test]
fn a_timeout_kills_the_whole_process_group() {
    let repo = TestRepo::new();
    // A unique argument so pgrep finds only this test's processes.
    let tag = format!("777.{}", std::process::id());
    let file = repo.plan(
        "p.toml",
        &format!(
            "name = \"p\"\n[[gates]]\nname = \"slow\"\ntimeout = \"2s\"\nrun = '''sleep {tag} & sleep {tag} >/dev/null 2>&1 & sleep {tag}'''\n\
             [[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"t\"\n  files = [\"**\"]\n"
        ),
    );
    repo.orch_ok(&["start", &file.to_string_lossy()]);
    let began = Instant::now();
    let out = repo.orch(&["gate"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "the timeout did not stop the gate"
    );
    assert!(both(&out).contains("timed out"), "{}", both(&out));
    std::thread::sleep(Duration::from_millis(300));
    let survivors = repo
        .command("pgrep", &repo.path)
        .args(["-f", &format!("sleep {tag}")])
        .output()
        .expect("pgrep");
    assert!(
        !survivors.status.success(),
        "processes of the gate survived: {}",
        String::from_utf8_lossy(&survivors.stdout)
    );
    no_gate_checkouts_left(&repo);
}

#[test]
fn jobs_run_gates_at_the_same_time() {
    let repo = TestRepo::new();
    let d = repo.scratch().join("sync");
    std::fs::create_dir_all(&d).expect("mkdir");
    // Each gate announces itself and waits (up to ~2s) for the other.
    let wait_for = |me: &str, other: &str| {
        format!(
            "touch '{d}/{me}'; i=0; while [ ! -e '{d}/{other}' ]; do sleep 0.05; i=$((i+1)); [ $i -gt 40 ] && exit 1; done; exit 0",
            d = d.display()
        )
    };
    start(
        &repo,
        "p",
        &[("a", &wait_for("a", "b")), ("b", &wait_for("b", "a"))],
        &[],
    );
    let out = repo.orch(&["gate", "-j", "2"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "-j 2 must run both at once: {}",
        both(&out)
    );
    // One at a time, the first gate waits for the second in vain.
    for f in ["a", "b"] {
        std::fs::remove_file(d.join(f)).expect("reset");
    }
    let out = repo.orch(&["gate", "-j", "1", "--no-cache"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    no_gate_checkouts_left(&repo);
}

#[test]
fn a_gate_that_cannot_start_fails_closed() {
    let repo = TestRepo::new();
    start(
        &repo,
        "p",
        &[("missing", "no-such-command-git-orch-test --flag")],
        &[],
    );
    let out = repo.orch(&["gate"]);
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let text = both(&out);
    assert!(text.contains("gate missing: failed"), "{text}");
    assert!(text.contains("127"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    // Never cached: it runs (and fails) again.
    let out = repo.orch(&["gate"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!both(&out).contains("cached"), "{}", both(&out));
}

// --------------------------------------------------------------- 2. cache

#[test]
fn a_passed_tree_is_cached_per_tree_and_command() {
    let repo = TestRepo::new();
    start(&repo, "p", &[("unit", &mark(&repo, "unit"))], &[]);
    repo.orch_ok(&["gate"]);
    assert_eq!(runs(&repo, "unit"), 1);

    let out = repo.orch(&["gate"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(runs(&repo, "unit"), 1, "a cached gate ran again");
    assert!(both(&out).contains("cached"), "{}", both(&out));

    repo.orch_ok(&["gate", "--no-cache"]);
    assert_eq!(runs(&repo, "unit"), 2, "--no-cache must run the gate");

    // Another commit with the same tree is the same check.
    repo.git(&["commit", "-q", "--allow-empty", "-m", "same tree"]);
    let out = repo.orch(&["gate"]);
    assert_eq!(runs(&repo, "unit"), 2);
    assert!(both(&out).contains("cached"), "{}", both(&out));

    // A different tree is not.
    commit_file(&repo, "x.txt", "x\n");
    repo.orch_ok(&["gate"]);
    assert_eq!(runs(&repo, "unit"), 3);
    repo.fsck();
}

#[test]
fn a_failed_gate_is_not_cached() {
    let repo = TestRepo::new();
    let cmd = format!("{}; exit 1", mark(&repo, "bad"));
    start(&repo, "p", &[("bad", &cmd)], &[]);
    for n in 1..=2 {
        let out = repo.orch(&["gate"]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(runs(&repo, "bad"), n);
    }
}

#[test]
fn a_checkpoint_fills_the_cache_so_its_push_runs_nothing() {
    let repo = TestRepo::new();
    let bare = remote(&repo);
    start(&repo, "p", &[("unit", &mark(&repo, "unit"))], &[]);
    let wt = repo.orch_ok(&["task", "start", "t"]);
    let wt = PathBuf::from(wt.trim());
    std::fs::write(wt.join("feature.txt"), "feature\n").expect("write in task worktree");
    repo.orch_ok(&["task", "done", "t", "-m", "feature"]);
    repo.orch_ok(&["checkpoint"]);
    assert_eq!(runs(&repo, "unit"), 1, "the checkpoint runs the gate once");
    let work = repo.rev("orch/p/work").expect("work");
    assert_eq!(
        repo.rev("orch/p/one^{commit}").as_deref(),
        Some(work.as_str())
    );

    install(&repo);
    let out = push(&repo, &["origin", "orch/p/work"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(
        runs(&repo, "unit"),
        1,
        "pushing a checkpointed commit ran a gate"
    );
    assert!(both(&out).contains("cached"), "{}", both(&out));
    assert_eq!(
        remote_rev(&repo, &bare, "refs/heads/orch/p/work").as_deref(),
        Some(work.as_str())
    );
    repo.fsck();
}

#[test]
fn the_cache_travels_with_the_pushed_state() {
    let repo = TestRepo::new();
    let bare = remote(&repo);
    start(&repo, "p", &[("unit", &mark(&repo, "unit"))], &[]);
    let head = repo.rev("HEAD").expect("head");
    repo.orch_ok(&["gate"]);
    assert_eq!(runs(&repo, "unit"), 1);
    let out = push(
        &repo,
        &["origin", "refs/heads/orch/*:refs/heads/orch/*", "main"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));

    // Another clone fetches the state like any branch and sees the result.
    let other = repo.scratch().join("other");
    repo.git_in(
        &repo.scratch(),
        &[
            "clone",
            "-q",
            &bare.to_string_lossy(),
            &other.to_string_lossy(),
        ],
    );
    repo.git_in(
        &other,
        &[
            "fetch",
            "-q",
            "origin",
            "refs/heads/orch/*:refs/heads/orch/*",
        ],
    );
    // The cache is keyed with the repository's secret (so a task cannot
    // forge an entry): a clone that shares it sees the result.
    std::fs::create_dir_all(other.join(".git/orch")).expect("mkdir");
    std::fs::copy(
        repo.path.join(".git/orch/secret"),
        other.join(".git/orch/secret"),
    )
    .expect("share the secret");
    // A fetched plan runs nothing until trusted in that clone (issue 13).
    let out = repo.orch_in(&other, &["trust", "p", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = repo.orch_in(&other, &["gate", "p", "--commit", &head]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(both(&out).contains("cached"), "{}", both(&out));
    assert_eq!(
        runs(&repo, "unit"),
        1,
        "the clone ran a gate the cache already passed"
    );

    // And a push from the clone runs nothing either.
    let out = repo.orch_in(&other, &["hook", "install"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    // A new commit with the same tree, pushed from a detached HEAD.
    repo.git_in(&other, &["checkout", "-q", "--detach", &head]);
    repo.git_in(
        &other,
        &["commit", "-q", "--allow-empty", "-m", "same tree"],
    );
    let mut cmd = repo.command("git", &other);
    let out = cmd
        .args(["push", "origin", "HEAD:refs/heads/orch/p/work"])
        .output()
        .expect("push");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        both(&out).contains("cached"),
        "the push was not checked against the cache: {}",
        both(&out)
    );
    assert_eq!(runs(&repo, "unit"), 1);
}

// ---------------------------------------------------------------- 3. hook

#[test]
fn a_passing_gate_lets_the_push_through() {
    let repo = TestRepo::new();
    let bare = remote(&repo);
    start(&repo, "p", &[("unit", &mark(&repo, "unit"))], &[]);
    let text = install(&repo);
    assert!(text.contains("installed"), "{text}");
    let hook = hooks_dir(&repo).join("pre-push");
    let shipped =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/pre-push")).expect("shim");
    assert_eq!(
        std::fs::read(&hook).expect("hook"),
        shipped,
        "the installed hook is hooks/pre-push"
    );
    assert_eq!(mode(&hook) & 0o111, 0o111);

    let c = advance_work(&repo, "p", "a.txt");
    let out = push(&repo, &["origin", "orch/p/work"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(runs(&repo, "unit"), 1);
    assert_eq!(
        remote_rev(&repo, &bare, "refs/heads/orch/p/work").as_deref(),
        Some(c.as_str())
    );

    // Pushing the same tree again runs nothing.
    repo.git(&["checkout", "-q", "orch/p/work"]);
    repo.git(&["commit", "-q", "--allow-empty", "-m", "same tree"]);
    let out = push(&repo, &["origin", "orch/p/work"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(
        runs(&repo, "unit"),
        1,
        "a second push of a passed tree ran the gate"
    );
    repo.fsck();
}

#[test]
fn a_failing_gate_blocks_the_push_and_says_why() {
    let repo = TestRepo::new();
    let bare = remote(&repo);
    start(
        &repo,
        "p",
        &[("unit", "echo the-failure-detail; exit 3")],
        &[],
    );
    repo.git(&["push", "-q", "--no-verify", "origin", "orch/p/work"]);
    install(&repo);
    let before = remote_refs(&repo, &bare);
    let c = advance_work(&repo, "p", "a.txt");
    let out = push(&repo, &["origin", "orch/p/work"], &[]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(remote_refs(&repo, &bare), before, "the remote changed");
    let err = stderr(&out);
    assert!(err.contains("error:"), "{err}");
    assert!(err.contains("`unit`"), "names the gate: {err}");
    assert!(err.contains(short(&c)), "names the commit: {err}");
    let at = err.find("git orch log p ").expect("log location");
    let cmd = err[at..].split('`').next().expect("command");
    let log = cmd.trim_start_matches("git orch log p ").trim();
    let shown = repo.orch_ok(&["log", "p", log]);
    assert!(shown.contains("the-failure-detail"), "{shown}");
    repo.fsck();
}

#[test]
fn an_existing_hook_runs_first_with_all_of_stdin_and_can_block() {
    let repo = TestRepo::new();
    let bare = remote(&repo);
    start(&repo, "p", &[("unit", &mark(&repo, "unit"))], &[]);
    start(&repo, "q", &[("unit", &mark(&repo, "q"))], &[]);
    let seen = repo.scratch().join("old-hook-stdin");
    let args = repo.scratch().join("old-hook-args");
    let flag = repo.scratch().join("old-hook-fails");
    let old = format!(
        "#!/bin/sh\n# the user's own hook\necho \"$@\" >> '{}'\ncat >> '{}'\n[ -e '{}' ] && exit 7\nexit 0\n",
        args.display(),
        seen.display(),
        flag.display()
    );
    let hook = hooks_dir(&repo).join("pre-push");
    write_exec(&hook, &old, 0o755);
    let text = install(&repo);
    assert!(text.contains("pre-push.orch-chained"), "{text}");

    advance_work(&repo, "p", "a.txt");
    advance_work(&repo, "q", "b.txt");
    let out = push(&repo, &["origin", "orch/p/work", "orch/q/work"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let lines = std::fs::read_to_string(&seen).expect("old hook ran");
    assert_eq!(
        lines.lines().count(),
        2,
        "the old hook got every line: {lines}"
    );
    assert!(
        lines.contains("refs/heads/orch/p/work") && lines.contains("refs/heads/orch/q/work"),
        "{lines}"
    );
    assert_eq!(
        std::fs::read_to_string(&args).expect("args").trim(),
        format!("origin {}", bare.display()),
        "the old hook got git's arguments"
    );
    assert_eq!((runs(&repo, "unit"), runs(&repo, "q")), (1, 1));

    // Its failure still blocks the push, before any gate runs.
    std::fs::write(&flag, "").expect("flag");
    let before = remote_refs(&repo, &bare);
    advance_work(&repo, "p", "c.txt");
    let out = push(&repo, &["origin", "orch/p/work"], &[]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(remote_refs(&repo, &bare), before);
    assert_eq!(runs(&repo, "unit"), 1);
}

#[test]
fn core_hooks_path_to_a_custom_dir_works() {
    let repo = TestRepo::new();
    let bare = remote(&repo);
    start(&repo, "p", &[("unit", "exit 1")], &[]);
    repo.git(&["config", "core.hooksPath", ".githooks"]);
    // Relative to the worktree root, wherever the command runs.
    std::fs::create_dir_all(repo.path.join("sub")).expect("mkdir");
    let out = repo.orch_in(&repo.path.join("sub"), &["hook", "install"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        repo.path.join(".githooks/pre-push").is_file(),
        "installed where core.hooksPath points"
    );
    assert!(!repo.path.join("sub/.githooks").exists());
    assert!(!hooks_dir(&repo).join("pre-push").exists());
    let status = repo.orch_ok(&["hook", "status"]);
    assert!(
        status.contains(".githooks/pre-push") && status.contains("would run: yes"),
        "{status}"
    );
    advance_work(&repo, "p", "a.txt");
    let out = push(&repo, &["origin", "orch/p/work"], &[]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "the hook in core.hooksPath did not run: {}",
        both(&out)
    );
    assert_eq!(remote_rev(&repo, &bare, "refs/heads/orch/p/work"), None);

    // An absolute path outside the repository, too.
    let abs = repo.scratch().join("shared-hooks");
    repo.git(&["config", "core.hooksPath", &abs.to_string_lossy()]);
    install(&repo);
    assert!(abs.join("pre-push").is_file());
    let out = push(&repo, &["origin", "orch/p/work"], &[]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
}

#[test]
fn install_from_a_linked_worktree_guards_the_whole_repository() {
    let repo = TestRepo::new();
    let bare = remote(&repo);
    start(&repo, "p", &[("unit", "exit 1")], &[]);
    let linked = repo.scratch().join("linked");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "side",
        &linked.to_string_lossy(),
    ]);
    let out = repo.orch_in(&linked, &["hook", "install"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        hooks_dir(&repo).join("pre-push").is_file(),
        "the common hooks dir has the hook"
    );
    advance_work(&repo, "p", "a.txt");
    let out = push(&repo, &["origin", "orch/p/work"], &[]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    // And a push from the linked worktree itself.
    let out = repo
        .command("git", &linked)
        .args(["push", "origin", "orch/p/work"])
        .output()
        .expect("push");
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    assert!(stderr(&out).contains("`unit`"), "{}", both(&out));
    assert_eq!(remote_rev(&repo, &bare, "refs/heads/orch/p/work"), None);
}

#[test]
fn install_twice_then_uninstall_restores_the_hook_byte_for_byte() {
    let repo = TestRepo::new();
    let hook = hooks_dir(&repo).join("pre-push");
    let original = "#!/bin/sh\n# mine, with odd bytes: \t\u{e9}\r\nexit 0\n";
    write_exec(&hook, original, 0o750);
    let text = install(&repo);
    assert!(text.contains("installed"), "{text}");
    let text = install(&repo);
    assert!(text.contains("already installed"), "{text}");
    let chained = hooks_dir(&repo).join("pre-push.orch-chained");
    assert_eq!(std::fs::read(&chained).expect("kept"), original.as_bytes());

    let status = repo.orch_ok(&["hook", "status"]);
    assert!(status.contains("installed: yes"), "{status}");
    assert!(
        status.contains("chained:") && status.contains("pre-push.orch-chained"),
        "{status}"
    );
    assert!(status.contains("would run: yes"), "{status}");
    let json = repo.orch_json(&["hook", "status", "--json"]);
    assert_eq!(json["installed"], true);
    assert_eq!(json["would_run"], true);

    let out = repo.orch(&["hook", "uninstall"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(std::fs::read(&hook).expect("restored"), original.as_bytes());
    assert_eq!(mode(&hook), 0o750);
    assert!(!chained.exists());
    let status = repo.orch_ok(&["hook", "status"]);
    assert!(
        status.contains("installed: no") && status.contains("would run: no"),
        "{status}"
    );

    // Fresh install then uninstall leaves no hook at all.
    std::fs::remove_file(&hook).expect("rm");
    install(&repo);
    let out = repo.orch(&["hook", "uninstall"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!hook.exists());
    let out = repo.orch(&["hook", "uninstall"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "uninstall when nothing is installed is fine"
    );
}

#[test]
fn husky_owns_the_hooks_so_nothing_is_written() {
    let repo = TestRepo::new();
    // husky v9: its own hooks in .husky/_ run the user's .husky/<hook>.
    repo.write(
        ".husky/_/h",
        "#!/usr/bin/env sh\nsh -e \"$(dirname \"$(dirname \"$0\")\")/$(basename \"$0\")\" \"$@\"\n",
    );
    write_exec(
        &repo.path.join(".husky/_/pre-push"),
        "#!/usr/bin/env sh\n. \"$(dirname \"$0\")/h\"\n",
        0o755,
    );
    repo.git(&["config", "core.hooksPath", ".husky/_"]);
    let before = std::fs::read(repo.path.join(".husky/_/pre-push")).expect("husky's hook");
    let out = repo.orch(&["hook", "install"]);
    // Refused: husky rewrites .husky/_ on every install.
    assert_refused(&out, "hook install into husky's directory");
    let text = both(&out);
    assert!(text.contains("husky"), "{text}");
    assert!(
        stdout(&out).contains("git orch gate --pre-push"),
        "prints the snippet: {text}"
    );
    assert_eq!(
        std::fs::read(repo.path.join(".husky/_/pre-push")).expect("husky's hook"),
        before
    );
    assert!(!repo.path.join(".husky/pre-push").exists());
    assert!(!hooks_dir(&repo).join("pre-push").exists());
    let status = repo.orch_ok(&["hook", "status"]);
    assert!(
        status.contains("manager:   husky") && status.contains("would run: no"),
        "{status}"
    );
    // With the snippet in husky's config, the gates would run.
    repo.write(".husky/pre-push", &stdout(&out));
    let status = repo.orch_ok(&["hook", "status"]);
    assert!(status.contains("would run: yes"), "{status}");
    let out = repo.orch(&["hook", "install"]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains("already run through husky"),
        "{}",
        both(&out)
    );
    // And git runs the gate through husky's files: a failing one blocks.
    let bare = remote(&repo);
    start(&repo, "p", &[("unit", "exit 1")], &[]);
    let before = remote_refs(&repo, &bare);
    advance_work(&repo, "p", "a.txt");
    let out = push(&repo, &["origin", "orch/p/work"], &[]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    assert!(stderr(&out).contains("`unit`"), "{}", both(&out));
    assert_eq!(remote_refs(&repo, &bare), before, "the remote changed");
}

#[test]
fn every_ref_of_a_multi_ref_push_is_checked() {
    let repo = TestRepo::new();
    let bare = remote(&repo);
    start(&repo, "good", &[("unit", &mark(&repo, "good"))], &[]);
    start(
        &repo,
        "bad",
        &[("unit", &format!("{}; exit 1", mark(&repo, "bad")))],
        &[],
    );
    install(&repo);
    let g = advance_work(&repo, "good", "g.txt");
    let b = advance_work(&repo, "bad", "b.txt");
    let out = push(&repo, &["origin", "orch/good/work", "orch/bad/work"], &[]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(
        remote_refs(&repo, &bare),
        "",
        "nothing may reach the remote"
    );
    assert_eq!(
        (runs(&repo, "good"), runs(&repo, "bad")),
        (1, 1),
        "each ref checked"
    );
    let err = stderr(&out);
    assert!(
        err.contains(short(&b)) && !err.contains(&format!("failed on {}", short(&g))),
        "{err}"
    );

    // Pushing the work under another name is still held to its plan.
    let out = push(
        &repo,
        &["origin", "orch/bad/work:refs/heads/elsewhere"],
        &[],
    );
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    repo.git(&["checkout", "-q", "orch/bad/work"]);
    let out = push(&repo, &["origin", "HEAD:refs/heads/orch/bad/work"], &[]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(remote_refs(&repo, &bare), "");
}

#[test]
fn other_branches_are_held_to_the_configured_plans() {
    let repo = TestRepo::new();
    let bare = remote(&repo);
    start(&repo, "p", &[("unit", &mark(&repo, "p"))], &[]);
    start(
        &repo,
        "q",
        &[(
            "unit",
            &format!(
                "{}; [ ! -e '{}' ]",
                mark(&repo, "q"),
                repo.scratch().join("q-fails").display()
            ),
        )],
        &[],
    );
    install(&repo);
    commit_file(&repo, "m.txt", "m\n");

    // Without orch.prePush, main is not held to any plan.
    let out = push(&repo, &["origin", "main"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!((runs(&repo, "p"), runs(&repo, "q")), (0, 0));

    repo.git(&["config", "--add", "orch.prePush", "p"]);
    repo.git(&["config", "--add", "orch.prePush", "q"]);
    commit_file(&repo, "m.txt", "m2\n");
    let out = push(&repo, &["origin", "main"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(
        (runs(&repo, "p"), runs(&repo, "q")),
        (1, 1),
        "both configured plans hold main"
    );

    std::fs::write(repo.scratch().join("q-fails"), "").expect("flag");
    let before = remote_refs(&repo, &bare);
    commit_file(&repo, "m.txt", "m3\n");
    let out = push(&repo, &["origin", "HEAD"], &[]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(remote_refs(&repo, &bare), before);
    let out = push(&repo, &["origin", "HEAD:refs/heads/feature"], &[]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "a branch pushed from HEAD is held too: {}",
        both(&out)
    );
    assert_eq!(remote_refs(&repo, &bare), before);

    // Tags and deletions pass, even while the gate fails.
    repo.git(&["tag", "v1"]);
    repo.git(&["tag", "-a", "-m", "annotated", "v2"]);
    let out = push(&repo, &["origin", "v1", "v2"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(remote_rev(&repo, &bare, "refs/tags/v2").is_some());
    let out = push(&repo, &["origin", ":main"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(remote_rev(&repo, &bare, "refs/heads/main"), None);

    // State and task branches carry records, not code the plan vouches for.
    let out = push(&repo, &["origin", "orch/q/state"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
}

#[test]
fn skipping_the_gates() {
    let repo = TestRepo::new();
    let bare = remote(&repo);
    start(
        &repo,
        "p",
        &[("unit", &format!("{}; exit 1", mark(&repo, "unit")))],
        &[],
    );
    install(&repo);
    let c = advance_work(&repo, "p", "a.txt");
    let out = push(
        &repo,
        &["origin", "orch/p/work"],
        &[("ORCH_SKIP_GATES", "1")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains("warning:") && stderr(&out).contains("ORCH_SKIP_GATES"),
        "{}",
        both(&out)
    );
    assert_eq!(
        remote_rev(&repo, &bare, "refs/heads/orch/p/work").as_deref(),
        Some(c.as_str())
    );

    let c = advance_work(&repo, "p", "b.txt");
    let out = push(&repo, &["--no-verify", "origin", "orch/p/work"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert_eq!(
        remote_rev(&repo, &bare, "refs/heads/orch/p/work").as_deref(),
        Some(c.as_str())
    );
    assert_eq!(runs(&repo, "unit"), 0);
}

// ----------------------------------------------------------- 4. bad input

#[test]
fn malformed_pre_push_input_fails_closed() {
    let repo = TestRepo::new();
    start(&repo, "p", &[("unit", "true")], &[]);
    let head = repo.rev("HEAD").expect("head");
    let zero = "0".repeat(40);
    let good = format!("refs/heads/orch/p/work {head} refs/heads/orch/p/work {zero}\n");
    for bad in [
        "garbage\n".to_string(),
        format!("refs/heads/main {head} refs/heads/main\n"),
        format!("refs/heads/main nothex refs/heads/main {zero}\n"),
        format!("refs/heads/main {head} refs/heads/main {zero} extra\n"),
        format!("{good}refs/heads/x {head}\n"),
        format!("refs/heads/main {} refs/heads/main {zero}\n", &head[..12]),
        "a b c d\n".to_string(),
        format!(
            "refs/heads/main {} refs/heads/main {zero}\n",
            "1".repeat(40)
        ),
    ] {
        let out = orch_stdin(&repo, &["gate", "--pre-push", "origin", "/nowhere"], &bad);
        assert_ne!(out.status.code(), Some(0), "accepted {bad:?}");
        assert!(
            stderr(&out).starts_with("error:"),
            "{bad:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
    // Well-formed input passes; an empty push checks nothing.
    let out = orch_stdin(&repo, &["gate", "--pre-push", "origin", "/nowhere"], &good);
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    let out = orch_stdin(&repo, &["gate", "--pre-push", "origin", "/nowhere"], "");
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
}

#[test]
fn an_unknown_plan_in_the_config_blocks_the_push() {
    let repo = TestRepo::new();
    let bare = remote(&repo);
    start(&repo, "p", &[("unit", "true")], &[]);
    repo.git(&["config", "--add", "orch.prePush", "p"]);
    repo.git(&["config", "--add", "orch.prePush", "ghost"]);
    install(&repo);
    let out = push(&repo, &["origin", "main"], &[]);
    assert_ne!(out.status.code(), Some(0), "{}", both(&out));
    let err = stderr(&out);
    assert!(err.contains("error:") && err.contains("ghost"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(remote_refs(&repo, &bare), "");
}

#[test]
fn gate_definitions_come_from_the_started_plan_not_the_pushed_commit() {
    let repo = TestRepo::new();
    let bare = remote(&repo);
    let strict = plan_text("p", &[("unit", "exit 1")], &[]);
    repo.write("plan.toml", &strict);
    repo.commit_all("plan");
    repo.orch_ok(&["start", "plan.toml"]);
    install(&repo);
    // The pushed commit rewrites its own plan file to a gate that passes.
    repo.git(&["checkout", "-q", "orch/p/work"]);
    repo.write("plan.toml", &plan_text("p", &[("unit", "true")], &[]));
    repo.commit_all("relax the gates");
    let out = push(&repo, &["origin", "orch/p/work"], &[]);
    assert_ne!(
        out.status.code(),
        Some(0),
        "the pushed plan file decided the gates: {}",
        both(&out)
    );
    assert_eq!(remote_refs(&repo, &bare), "");
}
