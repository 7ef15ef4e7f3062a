//! One plan, many machines (issue 13): clones sharing a plan through a real
//! git server on loopback (`git daemon` with receive-pack, and `file://`),
//! each clone a "machine" of its own (`orch.machine`), runners claiming by
//! leased pushes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A `git daemon` serving a directory on 127.0.0.1, killed when dropped
/// (also when a test panics).
pub(crate) struct Daemon {
    child: Child,
    port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// `git-daemon` serving `base` on `port`, once it answers; `None` if it
/// exited first (the port was taken meanwhile) or never answered.
fn serve_on(repo: &TestRepo, base: &Path, port: u16) -> Option<Daemon> {
    // `git-daemon` itself, not the `git daemon` wrapper: killing the
    // wrapper would leave the server running.
    let exec_path = repo.git(&["--exec-path"]);
    let program = Path::new(exec_path.trim()).join("git-daemon");
    let child = repo
        .command(&program.display().to_string(), base)
        .args([
            "--reuseaddr",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            "--export-all",
            "--enable=receive-pack",
            &format!("--base-path={}", base.display()),
            &base.display().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start git daemon");
    let mut daemon = Daemon { child, port };
    let url = format!("git://127.0.0.1:{port}/server.git");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = daemon.child.try_wait() {
            return None;
        }
        let ok = repo
            .command("git", base)
            .args(["ls-remote", &url])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(daemon);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None // dropping it kills it
}

pub(crate) fn start_daemon(repo: &TestRepo, base: &Path) -> Daemon {
    (0..5)
        .find_map(|_| serve_on(repo, base, free_port()))
        .expect("git daemon did not start")
}

/// The server (a bare repository), the clone that starts the plan, and more
/// clones, each a machine of its own.
pub(crate) struct Cluster {
    pub(crate) clones: Vec<TestRepo>,
    pub(crate) url: String,
    pub(crate) bare: PathBuf,
    _server: Option<Box<dyn std::any::Any>>,
}

/// A server a [`Cluster`] reaches its bare repository through: the URL,
/// the git config every clone needs for it (`core.sshCommand`, say), and
/// what keeps it running until dropped.
pub(crate) struct Served {
    pub(crate) url: String,
    pub(crate) config: Vec<(String, String)>,
    pub(crate) guard: Box<dyn std::any::Any>,
}

impl Cluster {
    pub(crate) fn new(n: usize, daemon: bool) -> Cluster {
        Cluster::serve(n, |first, base, bare| {
            Some(match daemon {
                true => {
                    let d = start_daemon(first, base);
                    Served {
                        url: format!("git://127.0.0.1:{}/server.git", d.port),
                        config: Vec::new(),
                        guard: Box::new(d),
                    }
                }
                false => Served {
                    url: format!("file://{}", bare.display()),
                    config: Vec::new(),
                    guard: Box::new(()),
                },
            })
        })
        .expect("a git daemon or file:// server")
    }

    /// A cluster whose server `serve` starts, given the first clone, the
    /// server's base directory and its bare repository `server.git` in it;
    /// `None` when it cannot start.
    pub(crate) fn serve(
        n: usize,
        serve: impl FnOnce(&TestRepo, &Path, &Path) -> Option<Served>,
    ) -> Option<Cluster> {
        let first = TestRepo::new();
        let base = first.scratch().join("srv");
        std::fs::create_dir_all(&base).expect("mkdir srv");
        let bare = base.join("server.git");
        first.git_in(&base, &["init", "-q", "--bare", "-b", "main", "server.git"]);
        let served = serve(&first, &base, &bare)?;
        let url = served.url.clone();
        let setup = |c: &TestRepo, i: usize| {
            for (key, value) in &served.config {
                c.git(&["config", key, value]);
            }
            c.git(&["config", "orch.machine", &format!("m{i}")]);
        };
        setup(&first, 0);
        first.git(&["remote", "add", "origin", &url]);
        first.git(&["push", "-q", "origin", "main"]);
        let mut clones = vec![first];
        for i in 1..n {
            let c = TestRepo::empty();
            setup(&c, i);
            c.git(&["remote", "add", "origin", &url]);
            c.git(&["pull", "-q", "origin", "main"]);
            clones.push(c);
        }
        Some(Cluster {
            clones,
            url,
            bare,
            _server: Some(served.guard),
        })
    }

    /// The port of the cluster's `git daemon`.
    fn daemon_port(&self) -> u16 {
        self._server
            .as_ref()
            .and_then(|s| s.downcast_ref::<Daemon>())
            .expect("a git daemon")
            .port
    }

    /// git in the server's bare repository.
    pub(crate) fn server(&self, args: &[&str]) -> String {
        let out = self.clones[0]
            .command("git", &self.bare)
            .args(args)
            .output()
            .expect("git on the server");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Spawns `git orch run --remote origin` in clone `i`.
    pub(crate) fn spawn_run(&self, i: usize, extra: &[&str]) -> Child {
        let c = &self.clones[i];
        c.command(BIN, &c.path)
            .args(["run", "p", "--remote", "origin"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn a runner")
    }
}

/// A plan of `n` tasks in six groups: the tasks of a group write their
/// own file in one directory they all declare, so their scopes overlap
/// (they must never run at once, on any machine) but never conflict.
/// Each records when its command ran in `log` (outside every repository).
pub(crate) fn grouped_plan(n: usize, log: &Path) -> String {
    let mut text = String::from("name = \"p\"\n[[phases]]\nid = \"one\"\n");
    for i in 0..n {
        let g = i % 6;
        text += &format!(
            r#"  [[phases.tasks]]
  id = "t{i}"
  files = ["d{g}/**"]
  run = '''
s=$(date +%s%N); sleep 0.{pause}; mkdir -p d{g} && echo t{i} > d{g}/t{i}.txt
echo "t{i} {g} $s $(date +%s%N) $(git config orch.machine)" >> {log}
'''
"#,
            pause = 3 + i % 3,
            log = log.display()
        );
    }
    text
}

/// Starts the plan in the first clone and publishes it.
pub(crate) fn start_shared(cluster: &Cluster, plan: &str) {
    let first = &cluster.clones[0];
    let file = first.plan("plan.toml", plan);
    first.orch_ok(&["start", file.to_str().expect("utf-8 path")]);
    first.orch_ok(&["sync", "p", "--remote", "origin"]);
}

/// A plan that came from another machine runs nothing until its user
/// approves its commands (issue 13, "Trust"): each other machine fetches
/// it, is refused, and approves it, as its user would.
pub(crate) fn trust_on_the_others(cluster: &Cluster) {
    for other in &cluster.clones[1..] {
        other.orch_ok(&["sync", "p", "--remote", "origin"]);
        let out = other.orch(&["run", "p", "--remote", "origin"]);
        assert_eq!(code(&out), Some(2), "untrusted: {}", both(&out));
        other.orch_ok(&["trust", "p", "--yes"]);
    }
}

/// Waits for a runner, killing it (and failing) if it runs past `secs`: a
/// runner that waits forever is a failure, not a hung test.
pub(crate) fn finish(child: Child, secs: u64) -> std::process::Output {
    wait_within(child, Duration::from_secs(secs), "a runner")
}

pub(crate) fn wait_ok(children: Vec<Child>) {
    for child in children {
        let out = finish(child, 240);
        assert_eq!(
            out.status.code(),
            Some(0),
            "a runner failed\n{}",
            both(&out)
        );
    }
}

/// Every task landed exactly once on the server's work branch, and its file
/// is there; the plan is finished in every clone's view after a sync.
pub(crate) fn assert_landed_once(cluster: &Cluster, n: usize) {
    let subjects = cluster.server(&["log", "--format=%s", "orch/p/work"]);
    let mut landed: BTreeMap<String, usize> = BTreeMap::new();
    for s in subjects.lines() {
        if let Some(rest) = s.strip_prefix("orch: land task ") {
            let id = rest.split(':').next().unwrap_or("").to_string();
            *landed.entry(id).or_default() += 1;
        }
    }
    for i in 0..n {
        assert_eq!(
            landed.get(&format!("t{i}")),
            Some(&1),
            "task t{i} must land exactly once: {landed:?}"
        );
        let file = cluster.server(&["show", &format!("orch/p/work:d{}/t{i}.txt", i % 6)]);
        assert_eq!(file.trim(), format!("t{i}"));
    }
    assert_eq!(landed.len(), n, "{landed:?}");
    for c in &cluster.clones {
        c.orch_ok(&["sync", "p", "--remote", "origin"]);
        let st = status_json(c);
        for i in 0..n {
            assert_eq!(task_state(&st, &format!("t{i}")), "done");
        }
        assert_eq!(st["remote"]["behind"], 0, "{}", st["remote"]);
        assert_eq!(st["remote"]["ahead"], 0, "{}", st["remote"]);
        c.fsck();
    }
}

/// No two tasks of one group (overlapping scopes) ran at the same time,
/// on whatever machines; returns the machines that ran something.
pub(crate) fn assert_no_overlap(log: &Path, n: usize) -> BTreeSet<String> {
    let text = std::fs::read_to_string(log).expect("task log");
    let mut runs: BTreeMap<String, Vec<(u128, u128, String)>> = BTreeMap::new();
    let mut machines = BTreeSet::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 5, "bad log line {line:?}");
        let (s, e) = (f[2].parse().expect("start"), f[3].parse().expect("end"));
        runs.entry(f[1].to_string())
            .or_default()
            .push((s, e, f[0].to_string()));
        machines.insert(f[4].to_string());
    }
    assert_eq!(text.lines().count(), n, "each task ran once:\n{text}");
    for (group, mut spans) in runs {
        spans.sort();
        for w in spans.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "group {group}: {} and {} ran at once:\n{text}",
                w[0].2,
                w[1].2
            );
        }
    }
    machines
}

#[test]
fn three_machines_over_git_daemon_land_thirty_tasks_once_without_overlap() {
    let cluster = Cluster::new(3, true);
    let log = cluster.clones[0].scratch().join("ran.log");
    start_shared(&cluster, &grouped_plan(30, &log));
    trust_on_the_others(&cluster);
    // The clone that started the plan starts last, so that the others
    // are at work before it could take everything.
    let mut runners: Vec<Child> = (1..3)
        .map(|i| cluster.spawn_run(i, &["--lease", "3", "-j", "1"]))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    runners.push(cluster.spawn_run(0, &["--lease", "3", "-j", "1"]));
    wait_ok(runners);
    assert_landed_once(&cluster, 30);
    let machines = assert_no_overlap(&log, 30);
    assert!(machines.len() >= 2, "the work was shared: {machines:?}");
}

#[test]
fn three_machines_over_file_url_land_every_task_once_without_overlap() {
    let cluster = Cluster::new(3, false);
    assert!(cluster.url.starts_with("file://"));
    let log = cluster.clones[0].scratch().join("ran.log");
    start_shared(&cluster, &grouped_plan(12, &log));
    trust_on_the_others(&cluster);
    // orch.remote and orch.lease from `git -c` work as the flags do.
    let runners = (0..3)
        .map(|i| {
            let c = &cluster.clones[i];
            c.command(BIN, &c.path)
                .env(
                    "GIT_CONFIG_PARAMETERS",
                    "'orch.remote=origin' 'orch.lease=3'",
                )
                .args(["run", "p", "-j", "2"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn a runner")
        })
        .collect();
    wait_ok(runners);
    assert_landed_once(&cluster, 12);
    assert_no_overlap(&log, 12);
}

#[test]
fn a_runner_killed_mid_task_has_its_task_taken_over_after_its_lease_with_its_pushed_work_kept() {
    let cluster = Cluster::new(2, true);
    // On m0 the task commits some work, then hangs; anywhere else it finishes.
    let plan = &PlanText::new("p")
        .task("slow", |t| {
            t.files(["slow.txt"]).run(
                r#"if [ "$(git config orch.machine)" = m0 ]; then
  echo half > slow.txt && git add slow.txt && git commit -q -m "slow: half done on m0"
  sleep 60
fi
echo done > slow.txt
"#,
            )
        })
        .to_string();
    start_shared(&cluster, plan);
    trust_on_the_others(&cluster);
    let mut dying = cluster.spawn_run(0, &["--lease", "3"]);
    // Its renewal pushes the task's branch with the half-done commit.
    let half = poll_for("m0 to push its work", Duration::from_secs(30), || {
        let head = cluster.server(&["log", "-1", "--format=%H %s", "orch/p/tasks/slow"]);
        head.contains("half done on m0")
            .then(|| head.split(' ').next().unwrap_or("").to_string())
    });
    // The machine dies: the runner with -9, and what it ran with it.
    let first = &cluster.clones[0];
    let pgid = std::fs::read_to_string(first.path.join(".git/orch/run/p/slow.pgid"))
        .expect("the task's process group is recorded");
    let pgid = pgid.split_whitespace().next().expect("pgid").to_string();
    dying.kill().expect("kill -9 the runner");
    let _ = dying.wait();
    let _ = Command::new("kill")
        .args(["-9", "--", &format!("-{pgid}")])
        .status();
    let killed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();

    let second = &cluster.clones[1];
    let out = finish(
        second
            .command(BIN, &second.path)
            .args(["run", "p", "--remote", "origin", "--lease", "3"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the second runner"),
        60,
    );
    assert_eq!(out.status.code(), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains("recovered task slow"),
        "{}",
        both(&out)
    );

    // What m0 had pushed is kept, on the server too.
    let kept = cluster.server(&[
        "for-each-ref",
        "--format=%(objectname) %(refname)",
        "refs/orch/p/preserved/",
    ]);
    assert!(
        kept.lines()
            .any(|l| l.starts_with(&half) && l.ends_with("/tasks/slow")),
        "the half-done work is preserved: {kept}"
    );
    // The task ran again on m1 and landed once.
    let work = cluster.server(&["show", "orch/p/work:slow.txt"]);
    assert_eq!(work.trim(), "done");
    let lands = cluster.server(&["log", "--format=%s", "orch/p/work"]);
    assert_eq!(lands.matches("orch: land task slow").count(), 1, "{lands}");
    // Taken over only once the lease had run out (renewed at most 1 s
    // before the kill, for 3 s).
    let events = cluster.server(&["log", "--format=%B", "orch/p/state"]);
    let recovered = events
        .lines()
        .find(|l| l.contains("\"task-recovered\""))
        .unwrap_or_else(|| panic!("no recovery in the state log: {events}"));
    assert!(recovered.contains("lease of runner m0:"), "{recovered}");
    let at: f64 = recovered
        .split("\"at\":")
        .nth(1)
        .and_then(|r| r.trim_end_matches(['}', ' ']).parse().ok())
        .expect("the recovery's time");
    assert!(
        at >= killed + 1.5,
        "taken over {:.2}s after the kill",
        at - killed
    );
}

#[test]
fn sync_brings_a_plan_to_another_clone_and_status_says_behind_or_ahead() {
    let cluster = Cluster::new(2, false);
    let plan = "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a.txt\"]\n  [[phases.tasks]]\n  id = \"b\"\n  files = [\"b.txt\"]\n";
    start_shared(&cluster, plan);
    let (one, two) = (&cluster.clones[0], &cluster.clones[1]);
    let st = status_json(one);
    assert_eq!(st["remote"]["ahead"], 0, "{}", st["remote"]);
    // Not here yet: sync fetches it.
    assert_refused(&two.orch(&["status", "p"]), "no plan before the sync");
    two.orch_ok(&["sync", "p", "--remote", "origin"]);
    assert_eq!(
        two.rev("orch/p/state"),
        one.rev("orch/p/state"),
        "the same state"
    );
    assert_eq!(two.rev("orch/p/work"), one.rev("orch/p/work"));
    assert!(two.rev("refs/tags/orch/p/start").is_some());
    // A change made here without the remote: ahead by one.
    one.orch_ok(&["task", "skip", "a"]);
    let st = status_json(one);
    assert_eq!(st["remote"]["ahead"], 1, "{}", st["remote"]);
    assert_eq!(st["remote"]["behind"], 0);
    assert!(one.orch_ok(&["status"]).contains("ahead"));
    one.orch_ok(&["sync", "p", "--remote", "origin"]);
    assert_eq!(status_json(one)["remote"]["ahead"], 0);
    // The other clone learns of it from a plain fetch: behind by one.
    two.git(&["fetch", "-q", "origin"]);
    let st = status_json(two);
    assert_eq!(st["remote"]["behind"], 1, "{}", st["remote"]);
    two.orch_ok(&["sync", "p"]);
    let st = status_json(two);
    assert_eq!(st["remote"]["behind"], 0);
    assert_eq!(task_state(&st, "a"), "skipped");
}

#[test]
fn sync_refuses_a_state_that_went_another_way_and_pushes_nothing() {
    let cluster = Cluster::new(2, false);
    let plan = "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a.txt\"]\n  [[phases.tasks]]\n  id = \"b\"\n  files = [\"b.txt\"]\n";
    start_shared(&cluster, plan);
    let (one, two) = (&cluster.clones[0], &cluster.clones[1]);
    two.orch_ok(&["sync", "p", "--remote", "origin"]);
    one.orch_ok(&["task", "skip", "a"]);
    one.orch_ok(&["sync", "p", "--remote", "origin"]);
    // Meanwhile, the other clone changed its own copy.
    two.orch_ok(&["task", "skip", "b"]);
    let server_before = cluster.server(&["for-each-ref"]);
    let refs_before = two.refs();
    let out = two.orch(&["sync", "p", "--remote", "origin"]);
    assert_refused(&out, "sync of a diverged state");
    assert!(
        stderr(&out).contains("went different ways"),
        "{}",
        both(&out)
    );
    assert_eq!(
        cluster.server(&["for-each-ref"]),
        server_before,
        "nothing pushed"
    );
    // Its own state is untouched (only the fetched view moved).
    let mine = |refs: &str| {
        refs.lines()
            .filter(|l| !l.contains("refs/remotes/"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(mine(&two.refs()), mine(&refs_before));
}

#[test]
fn bad_remote_and_lease_are_refused_before_anything_moves() {
    let cluster = Cluster::new(1, false);
    let plan = "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  run = \"true\"\n  files = [\"a.txt\"]\n";
    start_shared(&cluster, plan);
    let one = &cluster.clones[0];
    let before = one.refs();
    for (args, what) in [
        (
            vec!["run", "p", "--remote", "nosuch"],
            "no git remote named `nosuch`",
        ),
        (
            vec!["run", "p", "--remote", "origin", "--lease", "0"],
            "bad lease length",
        ),
        (
            vec!["run", "p", "--remote", "origin", "--lease", "soon"],
            "bad lease length",
        ),
        (
            vec!["run", "p", "--lease", "5"],
            "`--lease` is for runs shared",
        ),
        (
            vec!["sync", "p", "--remote", "nosuch"],
            "no git remote named `nosuch`",
        ),
        (vec!["sync", "q", "--remote", "origin"], "no plan named `q`"),
    ] {
        let out = one.orch(&args);
        assert_refused(&out, &format!("{args:?}"));
        assert!(stderr(&out).contains(what), "{args:?}: {}", stderr(&out));
        assert_eq!(one.refs(), before, "{args:?} changed refs");
    }
}

/// `git orch sync` in `clone` with git's trace in `trace`: every `git`
/// process git-orch starts writes there what it runs, the proxy too.
fn sync_traced(clone: &TestRepo, trace: &Path) -> std::process::Output {
    clone
        .command(BIN, &clone.path)
        .args(["sync", "p", "--remote", "origin"])
        .env("GIT_TRACE", trace)
        .output()
        .expect("run git orch sync")
}

/// Whether git started `program` as the proxy of a `git://` connection.
fn proxied_by(trace: &Path, program: &str, port: u16) -> bool {
    let text = std::fs::read_to_string(trace).unwrap_or_default();
    text.lines().any(|l| {
        l.contains("run_command:")
            && l.contains(program)
            && l.ends_with(&format!(" 127.0.0.1 {port}"))
    })
}

/// git's own `git://` connections stall on delayed ACKs (40 ms a turn), so
/// git-orch's fetches and pushes of a shared plan go through its relay
/// (`core.gitProxy` set to itself) — unless the user has a proxy of their
/// own, which wins, or turned it off with `orch.relay = false`. Each way the
/// plan arrives whole.
#[test]
fn a_git_daemon_remote_is_reached_through_the_relay_unless_the_user_says_otherwise() {
    let cluster = Cluster::new(2, true);
    let port = cluster.daemon_port();
    let plan = "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a.txt\"]\n  [[phases.tasks]]\n  id = \"b\"\n  files = [\"b.txt\"]\n  [[phases.tasks]]\n  id = \"c\"\n  files = [\"c.txt\"]\n";
    start_shared(&cluster, plan);
    let (one, two) = (&cluster.clones[0], &cluster.clones[1]);
    let scratch = two.scratch();
    let in_step = |what: &str| {
        assert_eq!(
            two.rev("orch/p/state"),
            Some(
                cluster
                    .server(&["rev-parse", "orch/p/state"])
                    .trim()
                    .to_string()
            ),
            "{what}: the state fetched"
        );
        assert_eq!(two.rev("orch/p/work"), one.rev("orch/p/work"), "{what}");
    };

    let trace = scratch.join("trace-relay");
    let out = sync_traced(two, &trace);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(proxied_by(&trace, BIN, port), "through the relay");
    in_step("relayed");

    // Off: git connects by itself.
    one.orch_ok(&["task", "skip", "a"]);
    one.orch_ok(&["sync", "p", "--remote", "origin"]);
    two.git(&["config", "orch.relay", "false"]);
    let trace = scratch.join("trace-off");
    let out = sync_traced(two, &trace);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(!proxied_by(&trace, BIN, port), "no relay when turned off");
    assert!(
        std::fs::read_to_string(&trace).is_ok_and(|t| t.contains("git fetch")),
        "the trace is written at all"
    );
    in_step("direct");

    // The user's own proxy (here one that logs, then relays) wins.
    two.git(&["config", "--unset", "orch.relay"]);
    let log = scratch.join("proxy.log");
    let proxy = scratch.join("my-proxy");
    std::fs::write(
        &proxy,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\nGIT_ORCH_RELAY=1 exec '{BIN}' \"$@\"\n",
            log.display()
        ),
    )
    .expect("write the proxy");
    std::fs::set_permissions(&proxy, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod the proxy");
    two.git(&["config", "core.gitProxy", &proxy.display().to_string()]);
    one.orch_ok(&["task", "skip", "b"]);
    one.orch_ok(&["sync", "p", "--remote", "origin"]);
    let trace = scratch.join("trace-own");
    let out = sync_traced(two, &trace);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(proxied_by(&trace, "my-proxy", port), "the user's proxy");
    assert!(!proxied_by(&trace, BIN, port), "not ours beside it");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logged.contains(&format!("127.0.0.1 {port}")), "{logged}");
    in_step("own proxy");
}

/// A server that is gone: the relay says so in git's words, the command
/// fails with one `error:` line, and nothing here changes.
#[test]
fn an_unreachable_git_daemon_fails_the_sync_in_one_line_and_changes_nothing() {
    let mut cluster = Cluster::new(2, true);
    let plan = "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a.txt\"]\n";
    start_shared(&cluster, plan);
    let two = &cluster.clones[1];
    two.orch_ok(&["sync", "p", "--remote", "origin"]);
    drop(cluster._server.take());
    let two = &cluster.clones[1];
    let before = two.refs();
    let out = two.orch(&["sync", "p", "--remote", "origin"]);
    assert_ne!(code(&out), Some(0), "{}", both(&out));
    let err = stderr(&out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("unable to connect"), "{err}");
    assert_eq!(two.refs(), before, "nothing changed");
}

#[test]
fn sync_json_says_what_was_fetched_and_pushed_and_bad_input_is_one_error_line() {
    let cluster = Cluster::new(2, false);
    let plan = "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  run = \"true\"\n  files = [\"a.txt\"]\n";
    let (one, two) = (&cluster.clones[0], &cluster.clones[1]);
    let file = one.plan("plan.toml", plan);
    one.orch_ok(&["start", file.to_str().expect("utf-8 path")]);
    // The first sync publishes the plan: its state, work branch and tag.
    let first = one.orch_json(&["sync", "p", "--remote", "origin", "--json"]);
    assert_eq!(first["schema"], "sync", "{first}");
    assert_eq!(first["plan"], "p");
    assert_eq!(first["remote"], "origin");
    assert_eq!(first["fetched"], 0, "{first}");
    assert_eq!(first["pushed"], 1, "{first}");
    let state = one.rev("orch/p/state").expect("state");
    assert_eq!(first["state"], state.as_str());
    let refs: Vec<&str> = first["refs"]
        .as_array()
        .expect("refs")
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    for r in [
        "refs/heads/orch/p/state",
        "refs/heads/orch/p/work",
        "refs/tags/orch/p/start",
    ] {
        assert!(refs.contains(&r), "{r} pushed: {first}");
    }
    assert_eq!(
        (first["behind"].clone(), first["ahead"].clone()),
        (0.into(), 0.into())
    );
    assert_eq!(first["trusted"], true, "started here is approved here");
    assert_eq!(cluster.server(&["rev-parse", "orch/p/state"]).trim(), state);
    // Nothing new: nothing moves.
    let again = one.orch_json(&["sync", "p", "--json"]);
    assert_eq!(
        (again["fetched"].clone(), again["pushed"].clone()),
        (0.into(), 0.into())
    );
    assert_eq!(again["refs"], serde_json::json!([]), "{again}");
    // The other clone fetches it, and learns it must trust it first.
    let fetched = two.orch_json(&["sync", "p", "--remote", "origin", "--json"]);
    assert_eq!(fetched["state"], state.as_str(), "{fetched}");
    assert!(
        fetched["fetched"].as_u64().is_some_and(|n| n >= 1),
        "{fetched}"
    );
    assert_eq!(fetched["pushed"], 0, "{fetched}");
    assert_eq!(fetched["refs"], serde_json::json!([]), "{fetched}");
    assert_eq!(fetched["trusted"], false, "{fetched}");
    // Bad input under --json: one error line, nothing on stdout, nothing moved.
    let before = two.refs();
    for (args, what) in [
        (
            vec!["sync", "p", "--remote", "nosuch", "--json"],
            "no git remote named `nosuch`",
        ),
        (
            vec!["sync", "q", "--remote", "origin", "--json"],
            "no plan named `q`",
        ),
        (vec!["sync", "../p", "--json"], "bad plan name"),
    ] {
        let out = two.orch(&args);
        assert_refused(&out, &format!("{args:?}"));
        assert!(stderr(&out).contains(what), "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out)
                .lines()
                .filter(|l| l.starts_with("error:"))
                .count(),
            1
        );
        assert!(stdout(&out).trim().is_empty(), "{args:?}: {}", stdout(&out));
        assert_eq!(two.refs(), before, "{args:?} changed refs");
    }
}

/// The lease a lease commit on the server records: (runner, expiry).
fn server_lease(cluster: &Cluster, task: &str) -> (String, f64) {
    let msg = cluster.server(&[
        "log",
        "-1",
        "--format=%B",
        &format!("refs/heads/orch/p/leases/{task}"),
    ]);
    let field = |key: &str| {
        msg.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no `{key}` in the lease commit: {msg}"))
            .trim()
            .to_string()
    };
    let expires = field("expires ").parse().expect("the lease's expiry");
    (field("runner "), expires)
}

#[test]
fn a_retry_under_remote_takes_a_lease_and_pushes_it_as_a_first_claim_does() {
    let cluster = Cluster::new(2, false);
    let one = &cluster.clones[0];
    // Fails the first time (it leaves a marker outside the repository),
    // succeeds the next.
    let marker = one.scratch().join("tried");
    let plan = format!(
        r#"name = "p"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a.txt"]
  run = '''
if [ -f {m} ]; then echo ok > a.txt; else touch {m}; exit 1; fi
'''
"#,
        m = marker.display()
    );
    start_shared(&cluster, &plan);
    let first = cluster.spawn_run(0, &["--lease", "30"]);
    let first_pid = first.id();
    let out = finish(first, 60);
    assert_eq!(out.status.code(), Some(1), "it fails: {}", both(&out));
    let (runner, expires) = server_lease(&cluster, "a");
    assert!(runner.starts_with(&format!("m0:{first_pid}:")), "{runner}");

    let retry = cluster.spawn_run(0, &["--lease", "30", "--retry-failed"]);
    let retry_pid = retry.id();
    let out = finish(retry, 60);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the retry lands: {}",
        both(&out)
    );
    // The retry's claim pushed a lease of its own runner, running later.
    let (again, later) = server_lease(&cluster, "a");
    assert!(
        again.starts_with(&format!("m0:{retry_pid}:")),
        "the retrying runner holds the lease on the remote: {again} (first {runner})"
    );
    assert!(later > expires, "a later expiry: {later} after {expires}");
    // One retry claim, and the task's record of it holds that same lease.
    let claims: Vec<String> = cluster
        .server(&["log", "--format=%H %s%n%b", "orch/p/state"])
        .split('\n')
        .filter(|l| l.contains("\"retry\":true"))
        .map(str::to_string)
        .collect();
    assert_eq!(claims.len(), 1, "one retry claim: {claims:?}");
    let commit = cluster
        .server(&[
            "log",
            "--format=%H",
            "--grep=\"retry\":true",
            "orch/p/state",
        ])
        .trim()
        .to_string();
    let record = cluster
        .server(&["ls-tree", "-r", "--name-only", &commit])
        .lines()
        .find(|p| p.starts_with("tasks/") && p.ends_with("/a.json"))
        .map(|p| cluster.server(&["show", &format!("{commit}:{p}")]))
        .unwrap_or_else(|| panic!("no record of task a at {commit}"));
    let record: serde_json::Value = serde_json::from_str(&record).expect("a task record");
    let lease = &record["claim"]["lease"];
    assert_eq!(lease["runner"], again.as_str(), "{record}");
    // (or renewed since, never earlier)
    assert!(
        lease["expires"]
            .as_f64()
            .is_some_and(|e| e <= later && e > expires),
        "{record}"
    );
    // Landed once, from the second attempt.
    let lands = cluster.server(&["log", "--format=%s", "orch/p/work"]);
    assert_eq!(lands.matches("orch: land task a").count(), 1, "{lands}");
    assert_eq!(cluster.server(&["show", "orch/p/work:a.txt"]).trim(), "ok");
    // Another machine sees it done.
    let two = &cluster.clones[1];
    two.orch_ok(&["sync", "p", "--remote", "origin"]);
    assert_eq!(task_state(&status_json(two), "a"), "done");
    one.fsck();
}

/// Clone B drops its own plan `p` (abandoned and its refs deleted, as
/// `start` says to reuse a name; or only its state ref deleted by hand),
/// then fetches another machine's plan `p`: the seal B kept of its own
/// plan must not make that one look forged. It is asked to be trusted,
/// like any fetched plan, and runs once trusted.
#[test]
fn a_fetched_plan_is_not_judged_by_the_stale_seal_of_an_earlier_plan_of_its_name() {
    for drop_all in [true, false] {
        let cluster = Cluster::new(2, false);
        let theirs = "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a.txt\"]\n  run = \"echo A > a.txt\"\n";
        start_shared(&cluster, theirs);
        let b = &cluster.clones[1];
        let mine = b.plan(
            "mine.toml",
            "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"b\"\n  files = [\"b.txt\"]\n  run = \"echo B > b.txt\"\n",
        );
        b.orch_ok(&["start", mine.to_str().expect("utf-8 path")]);
        assert!(b.path.join(".git/orch/seals/p").exists());
        if drop_all {
            b.orch_ok(&["abandon", "p"]);
            let refs = b.git(&[
                "for-each-ref",
                "--format=%(refname)",
                "refs/heads/orch/p/",
                "refs/tags/orch/p/",
            ]);
            for r in refs.lines() {
                b.git(&["update-ref", "-d", r]);
            }
        } else {
            b.git(&["update-ref", "-d", "refs/heads/orch/p/state"]);
        }
        assert!(b.rev("refs/heads/orch/p/state").is_none());
        let out = b.orch(&["sync", "p", "--remote", "origin"]);
        assert_eq!(code(&out), Some(0), "drop_all {drop_all}: {}", both(&out));
        assert_eq!(
            b.rev("orch/p/state"),
            cluster.clones[0].rev("orch/p/state"),
            "drop_all {drop_all}: the fetched state"
        );
        let st = status_json(b);
        assert_eq!(task_state(&st, "a"), "pending", "{st}");
        // Refused as untrusted, not as forged.
        let out = b.orch(&["run", "p", "--remote", "origin"]);
        assert_refused(&out, "an untrusted fetched plan");
        let err = stderr(&out);
        assert!(
            err.contains("is not trusted here"),
            "drop_all {drop_all}: {err}"
        );
        assert!(err.contains("git orch trust p"), "{err}");
        assert!(!err.contains("rewritten"), "drop_all {drop_all}: {err}");
        b.orch_ok(&["trust", "p", "--yes"]);
        b.orch_ok(&["run", "p", "--remote", "origin"]);
        assert_eq!(cluster.server(&["show", "orch/p/work:a.txt"]).trim(), "A");
        let st = status_json(b);
        assert_eq!(task_state(&st, "a"), "done", "{st}");
        b.fsck();
    }
}

/// The other side of dropping a stale seal: the plan that arrives in its
/// place is never trusted on the strength of the gone plan's approval,
/// even with the very same commands (a plan with other `files`, which the
/// seal would have caught, runs nothing until its user approves it).
#[test]
fn a_plan_that_replaces_a_gone_one_of_its_name_is_not_trusted_by_the_gone_ones_approval() {
    let cluster = Cluster::new(2, false);
    let task = |files: &str| {
        format!("name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"b\"\n  files = [{files}]\n  run = \"echo B > b.txt\"\n")
    };
    start_shared(&cluster, &task("\"**\""));
    let b = &cluster.clones[1];
    let mine = b.plan("mine.toml", &task("\"b.txt\""));
    b.orch_ok(&["start", mine.to_str().expect("utf-8 path")]);
    b.git(&["update-ref", "-d", "refs/heads/orch/p/state"]);
    let out = b.orch(&["sync", "p", "--remote", "origin"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains("git orch trust p"),
        "it says so: {}",
        both(&out)
    );
    let out = b.orch(&["trust", "p", "--json"]);
    assert_eq!(code(&out), Some(2), "{}", both(&out));
    assert_eq!(json_doc(&out, "trust p --json")["trusted"], false);
    let out = b.orch(&["run", "p", "--remote", "origin"]);
    assert_refused(&out, "the same commands, approved only for the gone plan");
    assert!(
        stderr(&out).contains("is not trusted here"),
        "{}",
        both(&out)
    );
    assert_eq!(task_state(&status_json(b), "b"), "pending");
    assert!(
        !b.path.join(".orch/worktrees/p/b/b.txt").exists(),
        "nothing ran"
    );
}

/// A state on the remote whose plan was rewritten (by anyone who can push
/// there): `sync` refuses it as forged, and this clone's state, work branch
/// and approvals stay as they were.
#[test]
fn a_forged_plan_on_the_remote_is_refused_before_it_moves_anything_here() {
    let cluster = Cluster::new(2, false);
    let plan = "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a/**\"]\n  run = \"true\"\n";
    start_shared(&cluster, plan);
    let (one, two) = (&cluster.clones[0], &cluster.clones[1]);
    two.orch_ok(&["sync", "p", "--remote", "origin"]);
    two.orch_ok(&["trust", "p", "--yes"]);
    // Another clone widens task a's files to everything and pushes it.
    let forge = forge_plan_script("git push -q origin $commit:$st");
    let out = one
        .command("sh", &one.path)
        .args(["-c", &forge])
        .output()
        .expect("forge");
    assert!(out.status.success(), "{}", both(&out));
    let mine = |refs: String| {
        refs.lines()
            .filter(|l| !l.contains("refs/remotes/"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let before = mine(two.refs());
    let trusted = two.orch_ok(&["trust", "--list"]);
    for args in [
        vec!["sync", "p", "--remote", "origin"],
        vec!["run", "p", "--remote", "origin"],
    ] {
        let out = two.orch(&args);
        assert_refused(&out, &format!("{args:?} of a forged plan"));
        assert!(stderr(&out).contains("rewritten"), "{}", both(&out));
        assert_eq!(mine(two.refs()), before, "{args:?} moved refs here");
    }
    assert_eq!(two.orch_ok(&["trust", "--list"]), trusted);
    // The clone still works on the plan it had.
    two.orch_ok(&["status", "p"]);
}

// ---- Found by a review with the real binary (issue 13) ----

/// A task that waits for `flag` (outside every repository) before it
/// writes its file: the test decides when it finishes.
fn waiting_plan(flag: &Path) -> String {
    format!(
        r#"name = "p"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a.txt"]
  run = "while [ ! -f {flag} ]; do sleep 0.05; done; echo a > a.txt"
  [[phases.tasks]]
  id = "b"
  files = ["b.txt"]
  run = "echo b > b.txt"
"#,
        flag = flag.display()
    )
}

/// Waits until the server's state says task `id` is running.
fn wait_running_on_server(cluster: &Cluster, id: &str) {
    wait_for(&format!("task {id} to be claimed"), || {
        cluster
            .server(&["log", "-1", "--format=%s", "orch/p/state"])
            .contains(&format!("task {id}: running"))
    });
}

#[test]
fn a_lease_too_long_for_a_duration_is_refused_not_a_panic() {
    let cluster = Cluster::new(1, false);
    let plan = "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  run = \"true\"\n  files = [\"a.txt\"]\n";
    start_shared(&cluster, plan);
    let one = &cluster.clones[0];
    let (before, server) = (one.refs(), cluster.server(&["for-each-ref"]));
    for lease in ["1e30", "1e12", "2000000m", "86401"] {
        let out = one.orch(&["run", "p", "--remote", "origin", "--lease", lease]);
        assert_refused(&out, lease);
        assert!(stderr(&out).contains("bad lease length"), "{}", both(&out));
        assert_eq!(one.refs(), before, "{lease} changed refs");
    }
    assert_eq!(cluster.server(&["for-each-ref"]), server);
    // A day is the longest.
    one.orch_ok(&["run", "p", "--remote", "origin", "--lease", "86400"]);
}

#[test]
fn bad_jobs_under_remote_pushes_nothing_before_it_is_refused() {
    let cluster = Cluster::new(1, false);
    let plan = "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  run = \"true\"\n  files = [\"a.txt\"]\n  [[phases.tasks]]\n  id = \"b\"\n  run = \"true\"\n  files = [\"b.txt\"]\n";
    start_shared(&cluster, plan);
    let one = &cluster.clones[0];
    // This clone is ahead of the remote: a run would push that first.
    one.orch_ok(&["task", "skip", "a"]);
    let (before, server) = (one.refs(), cluster.server(&["for-each-ref"]));
    let out = one.orch(&["run", "p", "--remote", "origin", "-j", "0"]);
    assert_refused(&out, "-j 0");
    assert_eq!(cluster.server(&["for-each-ref"]), server, "nothing pushed");
    assert_eq!(one.refs(), before, "nothing changed here");
}

#[test]
fn status_says_when_orch_remote_names_no_git_remote() {
    let cluster = Cluster::new(1, false);
    let plan = "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a.txt\"]\n";
    start_shared(&cluster, plan);
    let one = &cluster.clones[0];
    one.git(&["config", "orch.remote", "garbage"]);
    let out = one.orch(&["status"]);
    assert_eq!(code(&out), Some(0), "status still works: {}", both(&out));
    assert!(
        !stdout(&out).contains("not there yet"),
        "`garbage` is no remote that lacks the plan: {}",
        both(&out)
    );
    assert!(
        stderr(&out).contains("`garbage`, which is not a git remote"),
        "{}",
        both(&out)
    );
    assert!(status_json(one).get("remote").is_none());
}

#[test]
fn status_of_a_task_claimed_through_a_remote_names_its_lease_not_a_pid() {
    let cluster = Cluster::new(2, false);
    let flag = cluster.clones[0].scratch().join("go");
    start_shared(&cluster, &waiting_plan(&flag));
    trust_on_the_others(&cluster);
    let runner = cluster.spawn_run(1, &["--lease", "30", "-j", "1"]);
    wait_running_on_server(&cluster, "a");
    let one = &cluster.clones[0];
    one.orch_ok(&["sync", "p", "--remote", "origin"]);
    let text = one.orch_ok(&["status"]);
    std::fs::write(&flag, "").expect("flag");
    let out = finish(runner, 60);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        text.contains("claimed through a remote by runner m1:")
            && text.contains("git orch run p --remote"),
        "{text}"
    );
    assert!(!text.contains("cannot be checked from here"), "{text}");
}

/// A `git daemon` on `port` again (after the first one was stopped).
fn restart_daemon(repo: &TestRepo, base: &Path, port: u16) -> Daemon {
    serve_on(repo, base, port).expect("git daemon did not start again")
}

#[test]
fn a_remote_gone_mid_run_fails_the_run_with_exit_1_and_run_again_carries_on() {
    let mut cluster = Cluster::new(1, true);
    let flag = cluster.clones[0].scratch().join("go");
    start_shared(&cluster, &waiting_plan(&flag));
    let runner = cluster.spawn_run(0, &["--lease", "2", "-j", "1"]);
    wait_running_on_server(&cluster, "a");
    let port = cluster.daemon_port();
    drop(cluster._server.take());
    std::fs::write(&flag, "").expect("flag");
    let out = finish(runner, 60);
    // The run had claimed a task (changed things): the work failed.
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let err = stderr(&out);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert!(
        err.contains(
            "hint: once `origin` answers again, `git orch run --remote origin` carries on"
        ),
        "{err}"
    );
    // The server comes back: the same command carries on, and every task
    // lands once.
    let base = cluster.bare.parent().expect("srv").to_path_buf();
    cluster._server = Some(Box::new(restart_daemon(&cluster.clones[0], &base, port)));
    let out = finish(cluster.spawn_run(0, &["--lease", "2", "-j", "1"]), 60);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let lands = cluster.server(&["log", "--format=%s", "orch/p/work"]);
    for id in ["a", "b"] {
        assert_eq!(
            lands.matches(&format!("orch: land task {id}:")).count(),
            1,
            "{lands}"
        );
    }
    cluster.clones[0].fsck();
}

#[test]
fn a_runner_refusing_a_plan_changed_on_the_remote_says_to_sync_before_trusting() {
    let cluster = Cluster::new(2, false);
    let flag = cluster.clones[0].scratch().join("go");
    let plan = waiting_plan(&flag);
    start_shared(&cluster, &plan);
    let (one, two) = (&cluster.clones[0], &cluster.clones[1]);
    // A fetched plan: sync says what comes next.
    let out = two.orch(&["sync", "p", "--remote", "origin"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains("hint: plan p runs none of its commands here until you approve them: `git orch trust p`"),
        "{}",
        both(&out)
    );
    two.orch_ok(&["trust", "p", "--yes"]);
    let out = two.orch(&["sync", "p", "--remote", "origin"]);
    assert!(!stderr(&out).contains("hint:"), "trusted: {}", both(&out));
    let runner = cluster.spawn_run(1, &["--lease", "30", "-j", "1"]);
    wait_running_on_server(&cluster, "a");
    // The first machine changes what task b runs, and publishes it.
    one.orch_ok(&["sync", "p", "--remote", "origin"]);
    let changed = plan.replace("echo b > b.txt", "echo changed > b.txt");
    let file = one.plan("plan2.toml", &changed);
    one.orch_ok(&["plan", "amend", file.to_str().expect("utf-8 path")]);
    one.orch_ok(&["sync", "p", "--remote", "origin"]);
    std::fs::write(&flag, "").expect("flag");
    let out = finish(runner, 60);
    // It ran nothing of the new plan, and stopped: exit 1, as it had
    // claimed a task before (issue 20: an error after a state change
    // exits 1 and says what the run did).
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(
        stderr(&out).contains("`run: claimed a` was recorded"),
        "{}",
        both(&out)
    );
    let err = stderr(&out);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    assert!(
        err.contains("`origin` now holds a plan with other commands"),
        "{err}"
    );
    assert!(
        err.contains("git orch sync p --remote origin`, then"),
        "{err}"
    );
    // Following the hint is the whole way out.
    two.orch_ok(&["sync", "p", "--remote", "origin"]);
    let shown = two.orch_ok(&["trust", "p", "--yes"]);
    assert!(shown.contains("echo changed > b.txt"), "{shown}");
    let out = finish(cluster.spawn_run(1, &["--lease", "2"]), 120);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(
        cluster.server(&["show", "orch/p/work:b.txt"]).trim(),
        "changed"
    );
}

#[test]
fn sync_counts_every_state_commit_of_a_plan_it_publishes_first() {
    let cluster = Cluster::new(2, false);
    let (one, two) = (&cluster.clones[0], &cluster.clones[1]);
    let plan = "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a.txt\"]\n  [[phases.tasks]]\n  id = \"b\"\n  files = [\"b.txt\"]\n";
    let file = one.plan("plan.toml", plan);
    one.orch_ok(&["start", file.to_str().expect("utf-8 path")]);
    one.orch_ok(&["task", "skip", "a"]);
    one.orch_ok(&["task", "skip", "b"]);
    let commits: u64 = one
        .git(&["rev-list", "--count", "orch/p/state"])
        .trim()
        .parse()
        .expect("a count");
    assert!(commits >= 3, "{commits}");
    let pushed = json_doc(
        &one.orch(&["sync", "p", "--remote", "origin", "--json"]),
        "publish",
    );
    assert_eq!(pushed["pushed"], commits, "{pushed}");
    let fetched = json_doc(
        &two.orch(&["sync", "p", "--remote", "origin", "--json"]),
        "fetch",
    );
    assert_eq!(fetched["fetched"], commits, "{fetched}");
}

#[test]
fn a_machine_taking_over_its_own_dead_runners_task_keeps_its_uncommitted_files() {
    let cluster = Cluster::new(1, false);
    let once = cluster.clones[0].scratch().join("once");
    // The first attempt commits half, leaves a file uncommitted and hangs;
    // the next one finishes.
    let plan = format!(
        r#"name = "p"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "slow"
  files = ["slow.txt", "notes.txt"]
  run = '''
if [ ! -f {once} ]; then
  touch {once}
  echo half > slow.txt && git add slow.txt && git commit -q -m "slow: half done"
  echo "not committed yet" > notes.txt
  sleep 60
fi
echo done > slow.txt
'''
"#,
        once = once.display()
    );
    start_shared(&cluster, &plan);
    let mut dying = cluster.spawn_run(0, &["--lease", "2"]);
    let one = &cluster.clones[0];
    let deadline = Instant::now() + Duration::from_secs(30);
    while !one.path.join(".orch/worktrees/p/slow/notes.txt").exists() {
        assert!(Instant::now() < deadline, "the task never wrote its notes");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pgid = std::fs::read_to_string(one.path.join(".git/orch/run/p/slow.pgid"))
        .expect("the task's process group is recorded");
    let pgid = pgid.split_whitespace().next().expect("pgid").to_string();
    dying.kill().expect("kill -9 the runner");
    let _ = dying.wait();
    let _ = Command::new("kill")
        .args(["-9", "--", &format!("-{pgid}")])
        .status();
    // The same machine runs again: it waits out the lease, takes the task
    // over and runs it in the same checkout.
    let out = finish(cluster.spawn_run(0, &["--lease", "2"]), 60);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains("recovered task slow"),
        "{}",
        both(&out)
    );
    let kept = one.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/orch/p/preserved/",
    ]);
    let worktree = kept
        .lines()
        .find(|l| l.ends_with("/worktrees/slow"))
        .unwrap_or_else(|| panic!("the uncommitted files are kept: {kept}"));
    assert_eq!(
        one.git(&["show", &format!("{worktree}:notes.txt")]).trim(),
        "not committed yet"
    );
    // On the server too.
    assert!(
        cluster
            .server(&["for-each-ref", "--format=%(refname)"])
            .contains(worktree),
        "pushed"
    );
    one.fsck();
}

#[test]
fn sync_never_pushes_a_stale_branch_over_a_task_another_runner_holds() {
    let cluster = Cluster::new(2, false);
    let flag = cluster.clones[0].scratch().join("go");
    let plan = format!(
        r#"name = "p"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a.txt"]
  run = '''
while [ ! -f {flag} ]; do sleep 0.05; done
echo m1 > a.txt && git add a.txt && git commit -q -m "a: m1 at work"
sleep 2
'''
"#,
        flag = flag.display()
    );
    start_shared(&cluster, &plan);
    trust_on_the_others(&cluster);
    let one = &cluster.clones[0];
    // This clone has a branch of its own for the task (an old attempt).
    let base = one.rev("orch/p/work").expect("work");
    one.git(&["checkout", "-q", "-b", "old", &base]);
    std::fs::write(one.path.join("a.txt"), "old attempt\n").expect("write");
    one.git(&["add", "a.txt"]);
    one.git(&["commit", "-q", "-m", "a: an old attempt here"]);
    let old = one.rev("HEAD").expect("old");
    one.git(&["checkout", "-q", "main"]);
    one.git(&["branch", "-q", "-D", "old"]);
    one.git(&["update-ref", "refs/heads/orch/p/tasks/a", &old]);

    let runner = cluster.spawn_run(1, &["--lease", "3", "-j", "1"]);
    // Claimed: the task's branch is at its base on the server, and m1's
    // agent is at work on it.
    wait_running_on_server(&cluster, "a");
    one.orch_ok(&["sync", "p", "--remote", "origin"]);
    let after = cluster.server(&["rev-parse", "orch/p/tasks/a"]);
    std::fs::write(&flag, "").expect("flag");
    let out = finish(runner, 60);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_ne!(
        after.trim(),
        old,
        "the branch of a task m1 holds is m1's to push"
    );
    // What m1 committed reached the server (its renewals kept pushing).
    let log = cluster.server(&["log", "--format=%s", "orch/p/work"]);
    assert!(log.contains("orch: land task a"), "{log}");
}

#[test]
fn a_remote_state_branch_that_is_no_state_is_refused_as_the_remotes_with_nothing_changed() {
    let cluster = Cluster::new(2, false);
    let (one, two) = (&cluster.clones[0], &cluster.clones[1]);
    // Somebody pushed an ordinary branch where a plan's state goes.
    one.git(&["push", "-q", "origin", "main:refs/heads/orch/q/state"]);
    let mine = |c: &TestRepo| {
        c.refs()
            .lines()
            .filter(|l| !l.contains("refs/remotes/"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let before = mine(two);
    for args in [
        vec!["sync", "q", "--remote", "origin"],
        vec!["run", "q", "--remote", "origin"],
    ] {
        let out = two.orch(&args);
        assert_refused(&out, &format!("{args:?}"));
        let err = stderr(&out);
        assert!(
            err.starts_with(
                "error: on `origin`: refs/heads/orch/q/state is not a git-orch state branch"
            ),
            "{err}"
        );
        assert!(
            err.contains(
                "hint: nothing changed here; `origin` must have refs/heads/orch/q/state put back"
            ) && !err.contains("reflog"),
            "{err}"
        );
        assert_eq!(mine(two), before, "{args:?} changed refs");
    }
    two.fsck();
}

#[test]
fn sync_and_run_without_a_plan_in_a_fresh_clone_take_the_remotes_one_plan() {
    let cluster = Cluster::new(3, false);
    let (two, three) = (&cluster.clones[1], &cluster.clones[2]);
    // Nothing anywhere yet: said so, with what to do.
    let out = two.orch(&["sync"]);
    assert_refused(&out, "no plan anywhere");
    assert!(stderr(&out).contains("`origin` has none"), "{}", both(&out));
    let plan = "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  run = \"echo a > a.txt\"\n  files = [\"a.txt\"]\n";
    start_shared(&cluster, plan);
    // A fresh clone: `git orch sync` alone brings the plan it shares.
    let out = two.orch(&["sync"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        stdout(&out).contains("plan p: in step with origin"),
        "{}",
        both(&out)
    );
    assert_eq!(
        two.rev("orch/p/state"),
        cluster.clones[0].rev("orch/p/state")
    );
    // And `run --remote` alone runs it (once trusted).
    let out = three.orch(&["run", "--remote", "origin"]);
    assert_refused(&out, "untrusted");
    assert!(stderr(&out).contains("git orch trust p"), "{}", both(&out));
    three.orch_ok(&["trust", "p", "--yes"]);
    three.orch_ok(&["run", "--remote", "origin"]);
    assert_eq!(cluster.server(&["show", "orch/p/work:a.txt"]).trim(), "a");
    // Two plans there: name one.
    let other = "name = \"r\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a.txt\"]\n";
    let first = &cluster.clones[0];
    let file = first.plan("r.toml", other);
    first.orch_ok(&["start", file.to_str().expect("utf-8 path")]);
    first.orch_ok(&["sync", "r", "--remote", "origin"]);
    let fresh = TestRepo::empty();
    fresh.git(&["remote", "add", "origin", &cluster.url]);
    let out = fresh.orch(&["sync"]);
    assert_refused(&out, "two plans");
    assert!(
        stderr(&out).contains("`origin` has 2: name one"),
        "{}",
        both(&out)
    );
}

/// A remote state that names a work commit the remote does not hold (what
/// a fetch sees while another machine's atomic push is half visible, or a
/// broken push for good): fetches are tried again, and in the end the
/// command fails with one `error:` line and moves nothing here.
#[test]
fn a_remote_state_whose_work_commit_never_arrives_is_fetched_again_then_refused_moving_nothing() {
    let cluster = Cluster::new(2, false);
    let plan = "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a.txt\"]\n  run = \"true\"\n";
    start_shared(&cluster, plan);
    let (one, two) = (&cluster.clones[0], &cluster.clones[1]);
    two.orch_ok(&["sync", "p", "--remote", "origin"]);
    let missing = "ab".repeat(20);
    let torn = format!(
        r##"st=refs/heads/orch/p/state
head=$(git rev-parse $st)
tmp=$(mktemp -d)
git show $st:meta.json | sed 's#"work":"[0-9a-f]*"#"work":"{missing}"#' > $tmp/meta.json
blob=$(git hash-object -w $tmp/meta.json)
GIT_INDEX_FILE=$tmp/index git read-tree $head
GIT_INDEX_FILE=$tmp/index git update-index --cacheinfo 100644,$blob,meta.json
tree=$(GIT_INDEX_FILE=$tmp/index git write-tree)
commit=$(echo torn | git commit-tree $tree -p $head)
git push -q origin $commit:$st
rm -rf $tmp"##
    );
    let out = one
        .command("sh", &one.path)
        .args(["-c", &torn])
        .output()
        .expect("push a torn state");
    assert!(out.status.success(), "{}", both(&out));
    let mine = |refs: String| {
        refs.lines()
            .filter(|l| !l.contains("refs/remotes/"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let before = mine(two.refs());
    let out = two.orch(&["sync", "p", "--remote", "origin"]);
    assert_ne!(code(&out), Some(0), "{}", both(&out));
    let err = stderr(&out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains(&missing[..10]), "{err}");
    assert_eq!(mine(two.refs()), before, "nothing moved here");
    two.orch_ok(&["status", "p"]);
}

/// Issue 23: two machines reach the same checkpoint and both run its gate;
/// the one whose record loses the race still prints each gate's pass/fail
/// line under the output it streamed, and says another runner recorded
/// the phase, instead of leaving the output without a verdict.
#[test]
fn a_machine_whose_checkpoint_lost_the_race_prints_its_gates_verdicts() {
    let cluster = Cluster::new(2, false);
    start_shared(
        &cluster,
        &PlanText::new("p")
            .gate("slow", "sleep 3; echo the-gate-said-this")
            .task("a", |t| t.files(["a.txt"]).run("echo a > a.txt"))
            .to_string(),
    );
    trust_on_the_others(&cluster);
    // Both gate the phase themselves (shared, one would take the other's
    // checkpoint without gating: tests/remote_gates.rs).
    for clone in &cluster.clones {
        clone.git(&["config", "orch.gates", "local"]);
    }
    // The phase's one task lands first, so both runners start at its gate.
    let out = cluster.clones[0].orch(&["run", "p", "--remote", "origin", "--task", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    cluster.clones[1].orch_ok(&["sync", "p", "--remote", "origin"]);
    let runners = vec![cluster.spawn_run(0, &[]), cluster.spawn_run(1, &[])];
    let outs: Vec<_> = runners.into_iter().map(|c| finish(c, 120)).collect();
    for out in &outs {
        assert_eq!(code(out), Some(0), "{}", both(out));
        let text = both(out);
        assert!(
            text.contains("the-gate-said-this"),
            "both ran the gate: {text}"
        );
        assert!(
            text.contains("gate slow: passed"),
            "a verdict under the output: {text}"
        );
    }
    let lost: Vec<_> = outs
        .iter()
        .filter(|o| both(o).contains("another runner recorded it first"))
        .collect();
    assert_eq!(lost.len(), 1, "one of them lost the race");
    assert_eq!(task_state(&status_json(&cluster.clones[0]), "a"), "done");
}

/// Issue 23, shared: a hand commit on one machine's work branch is
/// adopted there and published with the state, so the other machine's
/// landing builds on it.
#[test]
fn a_hand_commit_adopted_on_one_machine_is_built_on_by_the_other() {
    let cluster = Cluster::new(2, false);
    start_shared(
        &cluster,
        "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a.txt\"]\n  run = \"echo a > a.txt\"\n",
    );
    trust_on_the_others(&cluster);
    let b = &cluster.clones[1];
    let wt = b.scratch().join("by-hand");
    b.git(&[
        "worktree",
        "add",
        "-q",
        wt.to_str().expect("utf-8"),
        "orch/p/work",
    ]);
    std::fs::write(wt.join("notes.md"), "mine\n").expect("write");
    b.git_in(&wt, &["add", "-A"]);
    b.git_in(&wt, &["commit", "-q", "-m", "by hand"]);
    let hand = b.git_in(&wt, &["rev-parse", "HEAD"]).trim().to_string();
    b.git_in(&wt, &["checkout", "-q", "--detach"]);
    let out = b.orch(&["sync", "p", "--remote", "origin"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(stderr(&out).contains("adopted:"), "{}", both(&out));
    // The other machine lands its task on top of it.
    let a = &cluster.clones[0];
    let out = a.orch(&["run", "p", "--remote", "origin"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let work = cluster.server(&["rev-parse", "refs/heads/orch/p/work"]);
    let work = work.trim();
    let is_ancestor = cluster.clones[0]
        .command("git", &cluster.bare)
        .args(["merge-base", "--is-ancestor", &hand, work])
        .status()
        .expect("git");
    assert!(
        is_ancestor.success(),
        "the hand commit is under the landing"
    );
    assert_eq!(
        cluster.server(&["show", &format!("{work}:notes.md")]),
        "mine\n"
    );
    assert_eq!(cluster.server(&["show", &format!("{work}:a.txt")]), "a\n");
    assert_eq!(status_json(a)["adopted"][0]["commit"], hand.as_str());
}
