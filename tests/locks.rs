//! Ref locks a `kill -9` leaves behind (SPEC §2): the next command removes
//! a `<ref>.lock` only when it can tell that a git-orch that died made it,
//! says so on one line, and goes on; any other lock is left for a human.
use crate::common::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Two tasks done by hand and one that runs, in one phase.
fn plan() -> String {
    PlanText::new("p")
        .task("a", |t| t.files(["a.txt"]))
        .task("b", |t| t.files(["b.txt"]))
        .to_string()
}

/// One task that runs by itself.
fn runs() -> String {
    PlanText::new("p")
        .task("r", |t| t.run("echo r > r.txt").files(["r.txt"]))
        .to_string()
}

fn started() -> TestRepo {
    new_started(&plan())
}

/// The advisory lock git-orch holds while it writes plan `p`'s refs.
fn writers_lock(repo: &TestRepo) -> PathBuf {
    repo.path.join(".git/orch/locks/p.lock")
}

fn ref_lock(repo: &TestRepo, name: &str) -> PathBuf {
    repo.path.join(".git").join(format!("{name}.lock"))
}

/// Sets a file's modification time `ago` in the past.
fn age(path: &Path, ago: Duration) {
    let when = SystemTime::now() - ago;
    let secs = when
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let ok = Command::new("touch")
        .arg("-m")
        .arg("-d")
        .arg(format!("@{secs}"))
        .arg(path)
        .status()
        .expect("run touch");
    assert!(ok.success(), "touch {}", path.display());
}

/// What a git-orch killed while writing `name` leaves: `name` in the
/// writers' lock file (nobody holds its flock: the kernel dropped it with
/// the process), and, made just after, the ref's `.lock` holding the new
/// value, both a few seconds old.
fn leave_dead_writer(repo: &TestRepo, name: &str) -> PathBuf {
    let journal = writers_lock(repo);
    std::fs::create_dir_all(journal.parent().expect("parent")).expect("mkdir locks");
    std::fs::write(&journal, format!("{name}\n")).expect("write writers' lock");
    age(&journal, Duration::from_secs(4));
    let lock = ref_lock(repo, name);
    let value = repo.git(&["rev-parse", name]);
    std::fs::write(&lock, value).expect("write ref lock");
    age(&lock, Duration::from_secs(3));
    lock
}

fn assert_repaired(out: &std::process::Output, lock: &Path, what: &str) {
    assert_eq!(code(out), Some(0), "{what}: {}", both(out));
    let line = format!(
        "repair: removed stale lock `{}` left by a git-orch that died",
        lock.display()
    );
    assert!(
        stderr(out).lines().any(|l| l == line),
        "{what}: no `{line}` in:\n{}",
        both(out)
    );
    assert!(!lock.exists(), "{what}: {} is still there", lock.display());
}

#[test]
fn status_removes_a_work_branch_lock_left_by_a_git_orch_that_died() {
    let repo = started();
    let path = repo.orch_ok(&["task", "start", "a"]);
    std::fs::write(Path::new(path.trim()).join("a.txt"), "a\n").expect("write a");
    repo.orch_ok(&["task", "done", "a"]);
    // As if the `task done` had died moving the work branch after its
    // state commit: the branch lags behind and is locked.
    let landed = repo.git(&["rev-parse", "refs/heads/orch/p/work"]);
    repo.git(&["update-ref", "refs/heads/orch/p/work", "HEAD"]);
    let lock = leave_dead_writer(&repo, "refs/heads/orch/p/work");
    let out = repo.orch(&["status"]);
    assert_repaired(&out, &lock, "status");
    assert_eq!(repo.git(&["rev-parse", "refs/heads/orch/p/work"]), landed);
    repo.fsck();
}

#[test]
fn task_start_removes_a_state_lock_left_by_a_git_orch_that_died() {
    let repo = started();
    let lock = leave_dead_writer(&repo, "refs/heads/orch/p/state");
    let out = repo.orch(&["task", "start", "a"]);
    assert_repaired(&out, &lock, "task start");
    assert_eq!(task_state(&status_json(&repo), "a"), "running");
    repo.fsck();
}

#[test]
fn resume_removes_a_state_lock_left_by_a_git_orch_that_died() {
    let repo = new_started(&runs());
    let lock = leave_dead_writer(&repo, "refs/heads/orch/p/state");
    let out = repo.orch(&["resume"]);
    assert_repaired(&out, &lock, "resume");
    assert_eq!(task_state(&status_json(&repo), "r"), "done");
    repo.fsck();
}

/// A `.lock` that was there before the dead git-orch named its ref was
/// not made by it (a git of the user's holds it, or left it): it stays,
/// and the command refuses naming it.
#[test]
fn a_ref_lock_older_than_the_dead_writers_write_is_left_alone() {
    let repo = started();
    let lock = leave_dead_writer(&repo, "refs/heads/orch/p/state");
    age(&lock, Duration::from_secs(10));
    let refs = repo.refs();
    let out = repo.orch(&["task", "start", "a"]);
    assert_refused(&out, "task start with a lock the dead writer did not make");
    assert!(
        stderr(&out).contains(&lock.display().to_string()),
        "{}",
        both(&out)
    );
    assert!(lock.exists(), "the lock was removed");
    assert_eq!(repo.refs(), refs);
}

/// A flock(1) process holding the writers' lock, as a live git-orch does
/// while it writes.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hold(path: &Path) -> Holder {
    // `-o`: the lock is flock's own, not inherited by `sleep`, so killing
    // flock releases it.
    let child = Command::new("flock")
        .arg("-o")
        .arg(path)
        .args(["sleep", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run flock");
    // flock(1) takes the lock before it starts the command.
    let until = Instant::now() + Duration::from_secs(10);
    while Command::new("flock")
        .args(["-n", "-E", "9"])
        .arg(path)
        .arg("true")
        .status()
        .expect("probe flock")
        .code()
        != Some(9)
    {
        assert!(Instant::now() < until, "flock never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    Holder(child)
}

/// While the writer that named a ref still holds the writers' lock it may
/// be writing that ref right now: its `.lock` is not touched.
#[test]
fn a_ref_lock_whose_writer_is_alive_is_not_removed() {
    let repo = started();
    let lock = leave_dead_writer(&repo, "refs/heads/orch/p/state");
    let holder = hold(&writers_lock(&repo));
    let refs = repo.refs();
    let out = repo.orch(&["task", "start", "a"]);
    assert_refused(&out, "task start while another git-orch writes");
    assert!(lock.exists(), "the lock of a live writer was removed");
    assert_eq!(repo.refs(), refs);
    // Once it is gone, the lock it left is its own to clear.
    drop(holder);
    let out = repo.orch(&["task", "start", "a"]);
    assert_repaired(&out, &lock, "task start after the writer died");
}

/// A real git-orch dies right after naming the ref it is about to write
/// (libgit2 makes the `.lock` next, here by hand): the next command
/// recovers by itself.
#[cfg(feature = "failpoints")]
#[test]
fn a_git_orch_killed_while_writing_a_ref_leaves_nothing_to_remove_by_hand() {
    let repo = started();
    let out = repo
        .command(BIN, &repo.path)
        .env("ORCH_FAILPOINT", "ref-writer-named")
        .args(["task", "start", "a"])
        .output()
        .expect("run git-orch");
    assert_eq!(code(&out), None, "did not die: {}", both(&out));
    let named = std::fs::read_to_string(writers_lock(&repo)).expect("read writers' lock");
    let name = named.trim();
    assert!(name.starts_with("refs/heads/orch/p/"), "named {named:?}");
    let lock = ref_lock(&repo, name);
    std::fs::write(&lock, "").expect("write ref lock");
    std::thread::sleep(Duration::from_millis(50));
    let out = repo.orch(&["task", "start", "a"]);
    assert_repaired(&out, &lock, "task start after the crash");
    assert_eq!(task_state(&status_json(&repo), "a"), "running");
    repo.fsck();
}

// ------------------------------- errors after a state commit (exit 1)

/// A lock no git-orch made (a git of the user's holds it, or one that died
/// left it), beside `name`.
fn foreign_lock(repo: &TestRepo, name: &str) -> PathBuf {
    let lock = ref_lock(repo, name);
    std::fs::write(&lock, "").expect("write ref lock");
    lock
}

/// Exit 1 (something changed), one `error:` line that says what was
/// recorded and names the lock that stopped what follows.
fn assert_recorded_then_failed(out: &std::process::Output, recorded: &str, lock: &Path) {
    assert_eq!(code(out), Some(1), "{}", both(out));
    let err = stderr(out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", both(out));
    assert!(
        errors[0].contains(&format!("`{recorded}` was recorded"))
            && errors[0].contains(&lock.display().to_string()),
        "{}",
        both(out)
    );
}

#[test]
fn task_done_with_a_stale_work_branch_lock_says_it_is_done_and_exits_1() {
    let repo = started();
    let path = repo.orch_ok(&["task", "start", "a"]);
    std::fs::write(Path::new(path.trim()).join("a.txt"), "a\n").expect("write a");
    let lock = foreign_lock(&repo, "refs/heads/orch/p/work");
    let out = repo.orch(&["task", "done", "a"]);
    assert_recorded_then_failed(&out, "task a: done", &lock);
    std::fs::remove_file(&lock).expect("remove lock");
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "done");
    assert_eq!(
        repo.show("refs/heads/orch/p/work:a.txt").as_deref(),
        Some("a\n"),
        "status moved the work branch to the landing"
    );
    repo.fsck();
}

#[test]
fn task_reset_with_a_stale_task_branch_lock_says_it_was_reset_and_exits_1() {
    let repo = started();
    let path = repo.orch_ok(&["task", "start", "a"]);
    std::fs::write(Path::new(path.trim()).join("a.txt"), "a\n").expect("write a");
    let lock = foreign_lock(&repo, "refs/heads/orch/p/tasks/a");
    let out = repo.orch(&["task", "reset", "a"]);
    assert_recorded_then_failed(&out, "task a: reset to pending", &lock);
    std::fs::remove_file(&lock).expect("remove lock");
    assert_eq!(task_state(&status_json(&repo), "a"), "pending");
    assert_eq!(
        repo.git(&[
            "for-each-ref",
            "--format=%(refname)",
            "refs/heads/orch/p/tasks/"
        ]),
        "",
        "status removed the reset task's branch"
    );
    repo.orch_ok(&["task", "start", "a"]);
    repo.fsck();
}
