//! Waiting on what runs beside a test: a spawned `git orch`, a file a
//! task leaves, a condition on the repository. One definition each, so
//! every test gives up the same way (with what it was waiting for) and
//! polls at the same pace.

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use super::{both, TestRepo, BIN};

/// Spawns `git orch ARGS` in the repository with its output captured (read
/// it with [`wait_within`]).
pub fn spawn_orch(repo: &TestRepo, args: &[&str]) -> Child {
    repo.command(BIN, &repo.path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn git-orch")
}

/// Spawns `git orch ARGS` in the repository with its output thrown away:
/// for a runner left working while the test looks at the repository.
pub fn spawn_orch_quiet(repo: &TestRepo, args: &[&str]) -> Child {
    repo.command(BIN, &repo.path)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn git-orch")
}

/// Waits for `child` to exit and returns its output; kills it (SIGKILL)
/// and fails the test, showing what it printed, if it runs past `limit`.
pub fn wait_within(mut child: Child, limit: Duration, what: &str) -> Output {
    let until = Instant::now() + limit;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > until {
            // `Child::kill` is SIGKILL on Unix: nothing the child does can
            // delay it.
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("{what} did not finish within {limit:?}: {}", both(&out));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// Polls `ok` every 50 ms until it holds; fails the test, naming `what`,
/// after 30 seconds.
pub fn wait_for(what: &str, ok: impl FnMut() -> bool) {
    wait_for_within(what, Duration::from_secs(30), ok);
}

/// Polls `ok` every 50 ms until it holds; fails the test, naming `what`,
/// after `limit`.
pub fn wait_for_within(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    poll_for(what, limit, || ok().then_some(()));
}

/// Polls `found` every 50 ms until it gives a value, and returns it; fails
/// the test, naming `what`, after `limit`.
pub fn poll_for<T>(what: &str, limit: Duration, mut found: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + limit;
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(
            Instant::now() < until,
            "timed out waiting for {what} ({limit:?})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (10 seconds at most) for `path` to exist: the sign a task or a
/// hook left that it got where the test wants it.
pub fn wait_for_file(path: &Path) {
    let until = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(Instant::now() < until, "{} never appeared", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The processes whose command line matches `pattern` (`pgrep -a -f`),
/// one a line; empty when there is none.
pub fn survivors(pattern: &str) -> String {
    let out = std::process::Command::new("pgrep")
        .args(["-a", "-f", pattern])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (3 seconds at most) until no process matches `pattern`: a task's
/// processes must not outlive it.
pub fn assert_no_survivors(pattern: &str) {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let left = survivors(pattern);
        if left.trim().is_empty() {
            return;
        }
        assert!(
            Instant::now() < until,
            "processes of a task outlived it:\n{left}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
