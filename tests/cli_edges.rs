//! Command-line edges: what plain `status` and `list` say, `git -c` and
//! repository config, the git version check, and a run that loses its
//! output or is interrupted.
use crate::common::*;

fn failing_gate() -> String {
    PlanText::new("p")
        .gate("lint", "echo lint says no; exit 3")
        .task("a", |t| t.run("echo a > a.txt").files(["a.txt"]))
        .to_string()
}

#[test]
fn plain_status_names_the_gate_that_failed() {
    let repo = TestRepo::new();
    started(&repo, &failing_gate());
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let text = repo.orch_ok(&["status"]);
    let line = text
        .lines()
        .find(|l| l.contains("gate lint"))
        .unwrap_or_else(|| panic!("status does not name the failed gate:\n{text}"));
    assert!(
        line.contains("failed") && line.contains("exit code 3"),
        "{line}"
    );
    // The command it names prints that log.
    let command = line
        .split("log: git orch ")
        .nth(1)
        .unwrap_or_else(|| panic!("no log command in {line}"))
        .trim();
    let args: Vec<&str> = command.split(' ').collect();
    let shown = repo.orch_ok(&args);
    assert!(shown.contains("lint says no"), "{shown}");
}

#[test]
fn list_says_finished_only_for_a_finished_plan() {
    let repo = TestRepo::new();
    started(
        &repo,
        &PlanText::new("p")
            .task("a", |t| t.run("echo a > a.txt").files(["a.txt"]))
            .to_string(),
    );
    let pending = repo.orch_ok(&["list"]);
    assert!(pending.contains("phase one"), "{pending}");
    repo.orch_ok(&["run"]);
    // Every phase is checkpointed, but the plan is not finished yet.
    assert_eq!(status_json(&repo)["finished"], false);
    let all_checkpointed = repo.orch_ok(&["list"]);
    assert!(
        !all_checkpointed.contains("finished"),
        "list calls an unfinished plan finished: {all_checkpointed}"
    );
    assert!(
        all_checkpointed.contains("every phase checkpointed"),
        "{all_checkpointed}"
    );
    repo.orch_ok(&["finish"]);
    let finished = repo.orch_ok(&["list"]);
    assert!(finished.contains("finished"), "{finished}");
}

/// Three tasks with disjoint scopes; each fails if another one is running.
fn exclusive_tasks(repo: &TestRepo) -> String {
    let busy = repo.scratch().join("busy");
    let task = |id: &str| {
        format!(
            "  [[phases.tasks]]\n  id = \"{id}\"\n  run = \"mkdir {busy} || exit 9; sleep 0.4; rmdir {busy}; echo {id} > {id}.txt\"\n  files = [\"{id}.txt\"]\n",
            busy = busy.display()
        )
    };
    format!(
        "name = \"p\"\n[[phases]]\nid = \"one\"\n{}{}{}",
        task("a"),
        task("b"),
        task("c")
    )
}

fn git_orch(repo: &TestRepo, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = repo.command("git", &repo.path);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run git orch")
}

/// A user's locale: git's messages would be translated where it is installed.
const GERMAN: &[(&str, &str)] = &[("LANG", "de_DE.UTF-8"), ("LC_ALL", "de_DE.UTF-8")];

#[test]
fn git_dash_c_orch_parallel_is_honoured() {
    // The control: the repository's config lets the three overlap.
    let control = TestRepo::new();
    control.git(&["config", "orch.parallel", "3"]);
    started(&control, &exclusive_tasks(&control));
    let out = git_orch(&control, &["orch", "run"], GERMAN);
    assert_eq!(
        code(&out),
        Some(1),
        "the tasks did not overlap: {}",
        both(&out)
    );

    let repo = TestRepo::new();
    repo.git(&["config", "orch.parallel", "3"]);
    started(&repo, &exclusive_tasks(&repo));
    let out = git_orch(&repo, &["-c", "orch.parallel=1", "orch", "run"], GERMAN);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(status_json(&repo)["phase"].is_null());
    repo.fsck();
}

/// The task commits take their identity as `git commit` would, also from
/// `git -c` (which only git reads), and from the repository's `user.*`
/// when nothing else gives one.
#[test]
fn task_commits_are_authored_as_git_commit_would_also_with_git_dash_c() {
    let task_authors = |repo: &TestRepo| {
        repo.git(&[
            "log",
            "--no-merges",
            "--format=%an <%ae>|%cn <%ce>",
            "orch/p/start..orch/p/work",
        ])
    };
    let plan = "name = \"p\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nrun = \"echo a > a.txt\"\n[[phases.tasks]]\nid = \"b\"\nrun = \"echo b > b.txt\"\n";
    let no_identity_env = |cmd: &mut std::process::Command| {
        for var in [
            "GIT_AUTHOR_NAME",
            "GIT_AUTHOR_EMAIL",
            "GIT_COMMITTER_NAME",
            "GIT_COMMITTER_EMAIL",
        ] {
            cmd.env_remove(var);
        }
    };
    let repo = TestRepo::new();
    repo.git(&["config", "user.name", "Repo User"]);
    repo.git(&["config", "user.email", "repo@example.com"]);
    started(&repo, plan);
    let mut cmd = repo.command("git", &repo.path);
    cmd.args([
        "-c",
        "user.name=Carol",
        "-c",
        "user.email=carol@example.com",
        "orch",
        "run",
    ]);
    no_identity_env(&mut cmd);
    let out = cmd.output().expect("run git orch");
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let authors = task_authors(&repo);
    assert_eq!(authors.lines().count(), 2, "{authors}");
    assert!(
        authors
            .lines()
            .all(|l| l == "Carol <carol@example.com>|Carol <carol@example.com>"),
        "{authors}"
    );

    let repo = TestRepo::new();
    repo.git(&["config", "user.name", "Repo User"]);
    repo.git(&["config", "user.email", "repo@example.com"]);
    started(&repo, plan);
    let mut cmd = repo.command(BIN, &repo.path);
    cmd.args(["run"]);
    no_identity_env(&mut cmd);
    let out = cmd.output().expect("run git-orch");
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let authors = task_authors(&repo);
    assert_eq!(authors.lines().count(), 2, "{authors}");
    assert!(
        authors
            .lines()
            .all(|l| l == "Repo User <repo@example.com>|Repo User <repo@example.com>"),
        "{authors}"
    );
    repo.fsck();
}

#[test]
fn git_config_count_orch_parallel_is_honoured() {
    let repo = TestRepo::new();
    repo.git(&["config", "orch.parallel", "3"]);
    started(&repo, &exclusive_tasks(&repo));
    let out = repo
        .command(BIN, &repo.path)
        .args(["run"])
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "orch.parallel")
        .env("GIT_CONFIG_VALUE_0", "1")
        .output()
        .expect("run git-orch");
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(status_json(&repo)["phase"].is_null());
}

/// Puts a `git` first on PATH that says it is `version` and hands every
/// other command to the real git. (Run `git-orch` itself then: `git orch`
/// puts git's own exec-path first on PATH, so its children see the real
/// git, the one that would do the work.)
fn fake_git_version(repo: &TestRepo, version: &str) {
    let real = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| std::path::Path::new(d).join("git"))
        .find(|p| p.is_file())
        .expect("a git on PATH");
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'git version {version}'; exit 0; fi\nexec '{}' \"$@\"\n",
        real.display()
    );
    let fake = repo.bin_dir.join("git");
    std::fs::write(&fake, script).expect("write fake git");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn rebase_plan() -> String {
    PlanText::new("p")
        .default_str("merge", "rebase")
        .task("a", |t| t.run("echo a > a.txt").files(["a.txt"]))
        .to_string()
}

#[test]
fn a_rebase_plan_on_git_2_39_is_refused_naming_the_version_it_needs() {
    let repo = TestRepo::new();
    // Started while git was new enough...
    started(&repo, &rebase_plan());
    // ...run after a downgrade: refused before anything runs.
    fake_git_version(&repo, "2.39.0");
    let before = repo.refs();
    let out = repo.orch(&["run"]);
    assert_refused(&out, "run of a rebase plan on git 2.39");
    let err = stderr(&out);
    assert!(
        err.contains("git 2.40.0 or newer")
            && err.contains("this is git 2.39.0")
            && err.contains("--merge-base"),
        "{err}"
    );
    assert_eq!(repo.refs(), before);
    assert_eq!(task_state(&status_json(&repo), "a"), "pending");
    // Starting such a plan is refused up front too, changing nothing.
    let other = TestRepo::new();
    fake_git_version(&other, "2.39.0");
    let before = other.refs();
    let file = other.plan("plan.toml", &rebase_plan());
    let out = other.orch(&["start", file.to_str().expect("utf-8")]);
    assert_refused(&out, "start of a rebase plan on git 2.39");
    assert!(
        stderr(&out).contains("git 2.40.0 or newer"),
        "{}",
        stderr(&out)
    );
    assert_eq!(other.refs(), before);
}

#[test]
fn git_2_39_still_runs_a_merge_plan_and_2_37_runs_none() {
    let repo = TestRepo::new();
    fake_git_version(&repo, "2.39.0");
    started(&repo, &rebase_plan().replace("rebase", "merge"));
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(status_json(&repo)["phase"].is_null());

    let old = TestRepo::new();
    started(&old, &rebase_plan().replace("rebase", "squash"));
    fake_git_version(&old, "2.37.1");
    let out = old.orch(&["run"]);
    assert_refused(&out, "run on git 2.37");
    assert!(
        stderr(&out).contains("git 2.38.0 or newer"),
        "{}",
        stderr(&out)
    );
}

// ------------------------------------------ a run that loses its output or is interrupted

use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

/// Two tasks: `a` leaves uncommitted work, says it started, then prints a
/// line later; both would run for 30 s. `@OUT@` is a scratch directory and
/// `@MARK@` a marker for finding their processes.
fn long_tasks() -> String {
    PlanText::new("p").task("a", |t| t.run("echo partial > a.txt; echo first; touch @OUT@/a-started-$ORCH_TASK; sleep 0.5; echo second; if [ ! -e @OUT@/again ]; then sleep 30; fi; echo a > a.txt # @MARK@").files(["a.txt"])).task("b", |t| t.run("if [ ! -e @OUT@/again ]; then sleep 30; fi; echo b > b.txt # @MARK@").files(["b.txt"])).to_string()
}

fn marker(repo: &TestRepo) -> String {
    let name = repo
        .scratch()
        .file_name()
        .expect("scratch name")
        .to_string_lossy()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "");
    format!("edgemark{name}")
}

fn start_long(repo: &TestRepo) {
    let text = &long_tasks()
        .replace("@OUT@", &out_dir(repo).display().to_string())
        .replace("@MARK@", &marker(repo));
    started(repo, text);
}

/// Both tasks pending again with `reason`, `a`'s uncommitted work kept in
/// a preserved ref, no task branch left; then `resume` finishes the plan.
fn assert_stopped_then_resumed(repo: &TestRepo, reason: &str) {
    assert_no_survivors(&marker(repo));
    let st = status_json(repo);
    for t in st["tasks"].as_array().expect("tasks") {
        assert_eq!(t["state"], "pending", "{st}");
        assert_eq!(t["reason"], reason, "{st}");
    }
    let kept = repo.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/orch/p/preserved/",
    ]);
    let worktree_ref = kept
        .lines()
        .find(|r| r.ends_with("/worktrees/a"))
        .unwrap_or_else(|| panic!("a's uncommitted work is not kept: {kept}"));
    assert_eq!(
        repo.show(&format!("{worktree_ref}:a.txt")).as_deref(),
        Some("partial\n")
    );
    let subjects = repo.git(&["log", "--format=%s", "orch/p/state"]);
    assert!(
        subjects.contains(&format!("task a: {reason}, pending again")),
        "{subjects}"
    );
    assert!(repo
        .git(&["branch", "--list", "orch/p/tasks/*"])
        .trim()
        .is_empty());
    repo.fsck();
    std::fs::write(out_dir(repo).join("again"), "").expect("write");
    let out = repo.orch(&["resume"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(status_json(repo)["phase"].is_null());
    assert_eq!(repo.show("orch/p/work:a.txt").as_deref(), Some("a\n"));
    repo.fsck();
}

#[test]
fn a_closed_output_stops_the_run_and_records_it() {
    let repo = TestRepo::new();
    start_long(&repo);
    // `git orch run | head -1`
    let mut child = repo
        .command("git", &repo.path)
        .args(["orch", "run", "-j", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn git orch run");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read a line");
    assert!(first.contains("first"), "{first}");
    // The reader is gone: the pipe is closed.
    let out = wait_within(child, Duration::from_secs(15), "run with its output closed");
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let err = stderr(&out);
    assert!(err.contains("the run stopped: output closed"), "{err}");
    assert!(err.contains("git orch resume"), "{err}");
    assert_stopped_then_resumed(&repo, "output closed");
}

#[test]
fn sigint_stops_the_run_and_records_the_stopped_tasks() {
    let repo = TestRepo::new();
    start_long(&repo);
    // A terminal's Ctrl-C: SIGINT to the whole foreground process group
    // (`git` and `git-orch`; the tasks run in groups of their own).
    let child = repo
        .command("git", &repo.path)
        .args(["orch", "run", "-j", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn git orch run");
    wait_for_file(&out_dir(&repo).join("a-started-a"));
    std::thread::sleep(Duration::from_millis(200));
    let group = format!("-{}", child.id());
    let sent = std::process::Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = wait_within(child, Duration::from_secs(15), "run after SIGINT");
    assert_ne!(code(&out), Some(0), "{}", both(&out));
    let err = stderr(&out);
    assert!(!err.contains("waitpid"), "{err}");
    assert!(
        err.contains("the run stopped: interrupted (SIGINT)"),
        "{err}"
    );
    assert_stopped_then_resumed(&repo, "interrupted (SIGINT)");
}

#[test]
fn sigterm_to_git_orch_itself_exits_143_and_records_it() {
    let repo = TestRepo::new();
    start_long(&repo);
    let child = repo
        .command(BIN, &repo.path)
        .args(["run", "-j", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn git-orch run");
    wait_for_file(&out_dir(&repo).join("a-started-a"));
    std::thread::sleep(Duration::from_millis(200));
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let out = wait_within(child, Duration::from_secs(15), "run after SIGTERM");
    assert_eq!(code(&out), Some(143), "{}", both(&out));
    assert_stopped_then_resumed(&repo, "interrupted (SIGTERM)");
}

#[test]
fn git_dash_c_reaches_worktree_dir_and_pre_push_too() {
    let repo = TestRepo::new();
    started(&repo, &failing_gate());
    // orch.worktreeDir from the command line.
    let elsewhere = repo.scratch().join("elsewhere");
    let setting = format!("orch.worktreeDir={}", elsewhere.display());
    let out = git_orch(&repo, &["-c", &setting, "orch", "task", "start", "a"], &[]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let path = stdout(&out).trim().to_string();
    assert!(path.starts_with(&elsewhere.display().to_string()), "{path}");
    assert!(Path::new(&path).join(".git").exists(), "{path}");
    // orch.prePush from the command line holds a push of main to the
    // plan's failing gate (git hands `-c` on to the hook).
    repo.orch_ok(&["hook", "install"]);
    let bare = repo.scratch().join("remote.git");
    repo.git_in(
        &repo.scratch(),
        &["init", "-q", "--bare", &bare.to_string_lossy()],
    );
    let bare_s = bare.to_string_lossy().to_string();
    let out = git_orch(&repo, &["push", "-q", &bare_s, "main"], &[]);
    assert_eq!(
        code(&out),
        Some(0),
        "no plan holds main yet: {}",
        both(&out)
    );
    repo.write("more.txt", "more\n");
    repo.commit_all("more");
    let out = git_orch(
        &repo,
        &["-c", "orch.prePush=p", "push", "-q", &bare_s, "main"],
        &[],
    );
    assert_ne!(
        code(&out),
        Some(0),
        "the gate did not hold the push: {}",
        both(&out)
    );
    assert!(stderr(&out).contains("lint"), "{}", both(&out));
}
