//! Containment (issue 20): what `isolation = "sandbox"` lets a task write
//! (its worktree, new objects through a quarantine, its own HEAD) and what
//! it does not (any object git already has, its worktree's admin dir, the
//! host's unix sockets under `network = false`, anything at all as root),
//! and that nothing git-orch runs on a task's behalf (its review, a
//! fix-forward, a resolver, git's own hooks and fsmonitor) runs outside
//! that containment. Each test names the attack it guards against; the
//! numbers are the issue's. Real repositories, the real binary, real
//! bubblewrap, as root and (in the last test) as an unprivileged user.
use crate::common::*;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn is_root() -> bool {
    #[allow(unsafe_code)]
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe {
        libc::geteuid() == 0
    }
}

fn q(p: &Path) -> String {
    format!("'{}'", p.display())
}

/// Item 1: The object store is read-only inside: a task that overwrites the
/// loose object of a file outside its scope changes nothing, and its own
/// commits still land through its quarantine.
#[test]
fn a_sandboxed_task_cannot_rewrite_an_object_the_repository_has() {
    let repo = TestRepo::new();
    let readme = repo.git(&["rev-parse", "HEAD:README"]).trim().to_string();
    let loose = repo
        .path
        .join(".git/objects")
        .join(&readme[..2])
        .join(&readme[2..]);
    assert!(loose.is_file(), "README's blob is loose");
    started(
        &repo,
        &format!(
            r#"
name = "p"
[defaults]
isolation = "sandbox"
[[phases]]
id = "one"
[[phases.tasks]]
id = "t"
files = ["a/**"]
run = '''
(chmod u+w {loose}; printf 'blob 6\0forged' | python3 -c 'import sys,zlib; sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read()))' > {loose}) 2>/dev/null
mkdir -p a && echo work > a/x && git add a/x && git commit -qm "t: its own commit"
'''
"#,
            loose = q(&loose)
        ),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(repo.show("main:README").as_deref(), Some("hello\n"));
    assert_eq!(repo.show("orch/p/work:a/x").as_deref(), Some("work\n"));
    let log = repo.git(&["log", "--format=%s", "orch/p/work"]);
    assert!(log.contains("t: its own commit"), "{log}");
    repo.fsck();
}

/// Item 1: What a task leaves in its quarantine is checked before it is
/// adopted: an object file whose content is not the object its name says
/// fails the task and never reaches the store.
#[test]
fn a_forged_object_in_the_quarantine_fails_the_task_and_never_reaches_the_store() {
    let repo = TestRepo::new();
    started(
        &repo,
        &PlanText::new("p")
            .default_str("isolation", "sandbox")
            .task("t", |t| {
                t.files(["a/**"]).run(
                    r#"mkdir -p a && echo work > a/x
real=$(git hash-object -w a/x)
fake=$(printf 'something else\n' | git hash-object --stdin)
mkdir -p "$GIT_OBJECT_DIRECTORY/$(echo $fake | cut -c1-2)"
cp "$GIT_OBJECT_DIRECTORY/$(echo $real | cut -c1-2)/$(echo $real | cut -c3-)" \
   "$GIT_OBJECT_DIRECTORY/$(echo $fake | cut -c1-2)/$(echo $fake | cut -c3-)"
"#,
                )
            })
            .to_string(),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert_eq!(task_state(&status_json(&repo), "t"), "failed");
    assert!(
        both(&out).contains("holds another object"),
        "{}",
        both(&out)
    );
    let fake = {
        let mut cmd = repo.command("git", &repo.path);
        let mut child = cmd
            .args(["hash-object", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("hash-object");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"something else\n")
            .expect("write");
        let out = child.wait_with_output().expect("hash-object");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let loose = repo
        .path
        .join(".git/objects")
        .join(&fake[..2])
        .join(&fake[2..]);
    assert!(!loose.exists(), "the forged object reached the store");
    repo.fsck();
}

/// Item 3: A task that points its worktree's `.git` at the admin dir of the
/// user's own linked worktree: git-orch reads nothing through it and moves
/// nothing of the user's; the task fails.
#[test]
fn a_task_pointing_its_dotgit_at_the_users_worktree_moves_nothing_of_the_users() {
    for isolation in ["sandbox", "none"] {
        let repo = TestRepo::new();
        repo.write(".gitignore", ".env\n");
        repo.commit_all("ignore .env");
        let mine = repo.scratch().join("mine");
        repo.git(&[
            "worktree",
            "add",
            "-q",
            "-b",
            "mine",
            mine.to_str().expect("utf-8"),
        ]);
        std::fs::write(mine.join(".env"), "SECRET=1\n").expect("write .env");
        std::fs::write(mine.join("draft.txt"), "mine\n").expect("write draft");
        started(
            &repo,
            &format!(
                r#"
name = "p"
[defaults]
isolation = "{isolation}"
[[phases]]
id = "one"
[[phases.tasks]]
id = "t"
files = ["a/**"]
run = '''
mkdir -p a && echo work > a/x
echo "gitdir: $ORCH_REPO/.git/worktrees/mine" > .git
'''
"#
            ),
        );
        let out = repo.orch(&["run"]);
        assert_eq!(code(&out), Some(1), "{isolation}: {}", both(&out));
        assert_eq!(
            task_state(&status_json(&repo), "t"),
            "failed",
            "{isolation}"
        );
        assert_eq!(
            repo.git_in(&mine, &["symbolic-ref", "HEAD"]).trim(),
            "refs/heads/mine",
            "{isolation}: the user's worktree moved"
        );
        assert_eq!(
            repo.git(&["symbolic-ref", "HEAD"]).trim(),
            "refs/heads/main"
        );
        assert_eq!(
            std::fs::read_to_string(mine.join(".env")).ok().as_deref(),
            Some("SECRET=1\n"),
            "{isolation}"
        );
        assert_eq!(
            std::fs::read_to_string(mine.join("draft.txt"))
                .ok()
                .as_deref(),
            Some("mine\n"),
            "{isolation}"
        );
        assert!(repo.rev("mine").is_some());
        repo.fsck();
    }
}

/// Item 4: A retry in the same worktree gets the binds of git-orch's own
/// records, not of whatever the worktree's `.git` says: an attempt that
/// forged `.git` to name the main `.git` cannot hand its retry the
/// repository's config, hooks or HEAD.
#[test]
fn a_retry_cannot_widen_its_sandbox_with_a_dotgit_forged_by_an_earlier_attempt() {
    let repo = TestRepo::new();
    started(
        &repo,
        &PlanText::new("p")
            .default_str("isolation", "sandbox")
            .task("t", |t| {
                t.files(["a/**"]).run(
                    r#"if [ ! -e a/first ]; then
  mkdir -p a && echo 1 > a/first
  echo "gitdir: $ORCH_REPO/.git" > .git
  exit 1
fi
git config --file "$ORCH_REPO/.git/config" evil.key 1
printf '#!/bin/sh\necho evil\n' > "$ORCH_REPO/.git/hooks/post-checkout"
git update-ref HEAD $(git rev-parse HEAD) 2>/dev/null
echo "x" > a/second
"#,
                )
            })
            .to_string(),
    );
    let config = std::fs::read(repo.path.join(".git/config")).expect("config");
    let head = repo.git(&["symbolic-ref", "HEAD"]);
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let _ = repo.orch(&["task", "retry", "t"]);
    assert_eq!(
        std::fs::read(repo.path.join(".git/config")).expect("config"),
        config,
        "the retry wrote the repository's config"
    );
    assert!(
        !repo.path.join(".git/hooks/post-checkout").exists(),
        "the retry installed a hook"
    );
    assert_eq!(repo.git(&["symbolic-ref", "HEAD"]), head);
    repo.fsck();
}

/// Item 5: A `core.fsmonitor` the task writes into its worktree's
/// `config.worktree` (on for sparse plans) is never run by git-orch's own
/// `git add -A`: not in the sandbox (its real admin dir is read-only
/// there), nor without one.
#[test]
fn an_fsmonitor_the_task_configures_is_never_run_by_git_orch() {
    for isolation in ["sandbox", "none"] {
        let repo = TestRepo::new();
        let marker = repo.scratch().join("fsmonitor-ran");
        let hook = repo.scratch().join("fsmonitor.sh");
        std::fs::write(&hook, format!("#!/bin/sh\ntouch {}\nexit 1\n", q(&marker)))
            .expect("write hook");
        std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        started(
            &repo,
            &format!(
                r#"
name = "p"
[defaults]
isolation = "{isolation}"
checkout = "sparse"
[[phases]]
id = "one"
[[phases.tasks]]
id = "t"
files = ["a/**"]
run = '''
git config --worktree core.fsmonitor {hook}
mkdir -p a && echo work > a/x
'''
"#,
                hook = q(&hook)
            ),
        );
        let out = repo.orch(&["run"]);
        assert!(
            !marker.exists(),
            "{isolation}: git-orch ran the task's fsmonitor"
        );
        assert_eq!(code(&out), Some(0), "{isolation}: {}", both(&out));
        assert_eq!(repo.show("orch/p/work:a/x").as_deref(), Some("work\n"));
    }
}

/// Item 6: With a relative `core.hooksPath` (husky style) a task can rewrite
/// the commit hooks beside its files: git-orch's commit of its work runs
/// no git hook, so the rewritten one never runs outside its isolation.
#[test]
fn a_hook_the_task_rewrites_under_a_relative_hooks_path_never_runs() {
    for isolation in ["sandbox", "none"] {
        let repo = TestRepo::new();
        let marker = repo.scratch().join("hook-ran");
        repo.write(".githooks/pre-commit", "#!/bin/sh\nexit 0\n");
        std::fs::set_permissions(
            repo.path.join(".githooks/pre-commit"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        repo.commit_all("hooks");
        repo.git(&["config", "core.hooksPath", ".githooks"]);
        started(
            &repo,
            &format!(
                r#"
name = "p"
[defaults]
isolation = "{isolation}"
[[phases]]
id = "one"
[[phases.tasks]]
id = "t"
files = ["a/**", ".githooks/**"]
run = '''
printf '#!/bin/sh\ntouch {marker}\n' > .githooks/pre-commit
printf '#!/bin/sh\ntouch {marker}\n' > .githooks/post-commit
chmod +x .githooks/*
mkdir -p a && echo work > a/x
'''
"#,
                marker = q(&marker)
            ),
        );
        let out = repo.orch(&["run"]);
        assert!(!marker.exists(), "{isolation}: the task's hook ran");
        assert_eq!(code(&out), Some(0), "{isolation}: {}", both(&out));
        assert_eq!(repo.show("orch/p/work:a/x").as_deref(), Some("work\n"));
    }
}

/// Item 7: A sandboxed task's review command runs in a sandbox too: a task that
/// rewrites the review script gets nothing written outside.
#[test]
fn the_review_of_a_sandboxed_task_runs_in_its_sandbox() {
    let repo = TestRepo::new();
    let marker = repo.scratch().join("review-ran-outside");
    repo.write("review.sh", "exit 0\n");
    repo.commit_all("review script");
    started(
        &repo,
        &format!(
            r#"
name = "p"
[defaults]
isolation = "sandbox"
review = {{ run = "sh review.sh" }}
[[phases]]
id = "one"
[[phases.tasks]]
id = "t"
files = ["a/**", "review.sh"]
run = '''
printf 'echo evil > "$ORCH_REPO/evil.txt"\ntouch {marker}\nexit 0\n' > review.sh
mkdir -p a && echo work > a/x
'''
"#,
            marker = q(&marker)
        ),
    );
    let out = repo.orch(&["run"]);
    assert!(!marker.exists(), "the review ran outside the sandbox");
    assert!(!repo.path.join("evil.txt").exists(), "{}", both(&out));
    repo.fsck();
}

/// Item 8: Under `defaults.isolation = "sandbox"` a fix-forward agent is
/// contained as a task is: its fix lands, its write outside does not.
#[test]
fn a_fix_forward_agent_runs_in_the_sandbox() {
    let repo = TestRepo::new();
    let marker = repo.scratch().join("fixer-ran-outside");
    started(
        &repo,
        &format!(
            r#"
name = "p"
[defaults]
isolation = "sandbox"
[agents.fixer]
run = '''echo evil > "$ORCH_REPO/evil.txt"; touch {marker}; echo fixed > out.txt'''
[[phases]]
id = "one"
  [[phases.gates]]
  name = "test"
  run = "grep -q fixed out.txt"
  [phases.on_gate_failure]
  agent = "fixer"
  [[phases.tasks]]
  id = "a"
  files = ["a.txt", "out.txt"]
  run = "echo a > a.txt"
"#,
            marker = q(&marker)
        ),
    );
    let out = repo.orch(&["run"]);
    assert!(!marker.exists(), "the fixer ran outside the sandbox");
    assert!(!repo.path.join("evil.txt").exists());
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(repo.show("orch/p/work:out.txt").as_deref(), Some("fixed\n"));
    repo.fsck();
}

/// Item 8: The same for a conflict resolver: it resolves in its sandbox.
#[test]
fn a_conflict_resolver_runs_in_the_sandbox() {
    let repo = TestRepo::new();
    repo.write("shared.txt", "base\n");
    repo.commit_all("shared");
    let marker = repo.scratch().join("resolver-ran-outside");
    started(
        &repo,
        &format!(
            r#"
name = "p"
[defaults]
isolation = "sandbox"
[defaults.on_conflict]
agent = "resolver"
[agents.resolver]
run = '''echo evil > "$ORCH_REPO/evil.txt"; touch {marker}; printf 'by-hand and by-task\n' > shared.txt'''
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "manual"
  files = ["shared.txt"]
  [[phases.tasks]]
  id = "auto"
  files = ["shared.txt"]
  run = '''
set -e
git reset -q --hard orch/p/work^1
echo by-task > shared.txt
'''
"#,
            marker = q(&marker)
        ),
    );
    let wt = repo.orch_ok(&["task", "start", "manual"]);
    std::fs::write(Path::new(wt.trim()).join("shared.txt"), "by-hand\n").expect("write");
    repo.orch_ok(&["task", "done", "manual", "-m", "by hand"]);
    let out = repo.orch(&["run"]);
    assert!(!marker.exists(), "the resolver ran outside the sandbox");
    assert!(!repo.path.join("evil.txt").exists());
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(
        repo.show("orch/p/work:shared.txt").as_deref(),
        Some("by-hand and by-task\n")
    );
    repo.fsck();
}

/// A sandboxed task's worktree setup (`[worktrees] setup`) runs in its
/// sandbox too: it may prepare the worktree, and nothing outside it.
#[test]
fn the_setup_of_a_sandboxed_tasks_worktree_runs_in_its_sandbox() {
    let repo = TestRepo::new();
    let marker = repo.scratch().join("setup-ran-outside");
    started(
        &repo,
        &format!(
            r#"
name = "p"
[defaults]
isolation = "sandbox"
[worktrees]
setup = '''echo prepared > .prepared; echo evil > "$ORCH_REPO/evil.txt"; touch {marker}; true'''
[[phases]]
id = "one"
[[phases.tasks]]
id = "t"
files = ["a/**"]
run = "mkdir -p a && cp .prepared a/x && rm .prepared"
"#,
            marker = q(&marker)
        ),
    );
    let out = repo.orch(&["run"]);
    assert!(!marker.exists(), "the setup ran outside the sandbox");
    assert!(!repo.path.join("evil.txt").exists());
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(repo.show("orch/p/work:a/x").as_deref(), Some("prepared\n"));
}

/// Item 9: As root, the sandbox is a user namespace with every capability
/// dropped: `mount -o remount,rw /` fails and nothing outside is written.
#[test]
fn a_sandboxed_task_cannot_remount_the_filesystem_writable_even_as_root() {
    if !is_root() {
        eprintln!(
            "NOTE: not root: this test shows nothing an unprivileged user could do anyway \
             (CI runs it as root)"
        );
    }
    let repo = TestRepo::new();
    let escape = repo.scratch().join("escaped");
    started(
        &repo,
        &format!(
            r#"
name = "p"
[defaults]
isolation = "sandbox"
[[phases]]
id = "one"
[[phases.tasks]]
id = "t"
files = ["a/**"]
run = '''
mount -o remount,rw / 2>/dev/null
mount -o remount,rw {scratch} 2>/dev/null
echo out > {escape} 2>/dev/null
mkdir -p a && echo work > a/x
'''
"#,
            scratch = q(&repo.scratch()),
            escape = q(&escape)
        ),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(!escape.exists(), "the task wrote outside after a remount");
}

/// Item 10: `network = false` reaches no host unix socket: not one the
/// environment names (an ssh agent), not one in `/tmp`. A sandboxed task
/// with the network reaches both, so the probe itself works.
#[test]
fn network_off_reaches_no_host_unix_socket() {
    let repo = TestRepo::new();
    let agent = repo.home.join("agent.sock");
    let plain = repo.scratch().join("plain.sock");
    let listeners: Vec<_> = [&agent, &plain]
        .iter()
        .map(|p| std::os::unix::net::UnixListener::bind(p).expect("bind"))
        .collect();
    for l in &listeners {
        l.set_nonblocking(true).expect("nonblocking");
    }
    let probe = |name: &str| {
        format!(
            "for s in {agent} {plain}; do python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' \"$s\" 2>/dev/null && echo \"$s: connected\" >> {name} || echo \"$s: refused\" >> {name}; done",
            agent = q(&agent),
            plain = q(&plain),
        )
    };
    started(
        &repo,
        &format!(
            r#"
name = "p"
[defaults]
isolation = "sandbox"
[[phases]]
id = "one"
[[phases.tasks]]
id = "open"
files = ["open.txt"]
run = '''{open}'''
[[phases.tasks]]
id = "closed"
files = ["closed.txt"]
network = false
run = '''{closed}'''
"#,
            open = probe("open.txt"),
            closed = probe("closed.txt"),
        ),
    );
    let out = repo
        .command(BIN, &repo.path)
        .env("SSH_AUTH_SOCK", &agent)
        .args(["run", "-j", "1"])
        .output()
        .expect("run");
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let open = repo.show("orch/p/work:open.txt").expect("open.txt");
    assert_eq!(open.matches("connected").count(), 2, "{open}");
    let closed = repo.show("orch/p/work:closed.txt").expect("closed.txt");
    assert_eq!(closed.matches("refused").count(), 2, "{closed}");
}

/// Item 18: Inside the sandbox `$ORCH_USAGE_FILE` and `$ORCH_USAGE_RESET_FILE`
/// are writable: usage is recorded and the reset time honoured.
#[test]
fn a_sandboxed_task_records_its_usage_and_its_reset_time() {
    let repo = TestRepo::new();
    started(
        &repo,
        &PlanText::new("p").default_str("isolation", "sandbox").task("used", |t| t.files(["used.txt"]).run(r#"echo '{"tokens_in": 7, "tokens_out": 3, "model": "m-1"}' > "$ORCH_USAGE_FILE"; echo x > used.txt"#)).to_string(),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let record = task_record(&repo, "p", "used").expect("record");
    assert_eq!(record["usage"][0]["tokens_in"], 7, "{record}");
    assert_eq!(record["usage"][0]["model"], "m-1", "{record}");

    let repo = TestRepo::new();
    started(
        &repo,
        &PlanText::new("p")
            .default_str("isolation", "sandbox")
            .task("limited", |t| {
                t.files(["l.txt"])
                    .run(r#"echo $(( $(date +%s) + 7200 )) > "$ORCH_USAGE_RESET_FILE"; exit 75"#)
            })
            .to_string(),
    );
    let child = repo
        .command(BIN, &repo.path)
        .arg("run")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn run");
    let until = Instant::now() + Duration::from_secs(60);
    let st = loop {
        let st = status_json(&repo);
        if task_state(&st, "limited") == "parked" {
            break st;
        }
        assert!(Instant::now() < until, "never parked: {st}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status();
    let mut child = child;
    let mut sink = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut sink);
    }
    let _ = child.wait();
    let task = st["tasks"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["id"] == "limited"))
        .cloned()
        .expect("task");
    let wakes = task["wakes_at"].as_f64().expect("wakes_at");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        (wakes - now - 7200.0).abs() < 120.0,
        "the task's reset time (2h ahead), not the default wait: {wakes} vs {now}"
    );
}

/// The sandbox holds for an unprivileged user as it does for root: the
/// same attacks, run by `nobody` (through `setpriv`) on a repository it
/// owns, where the loose objects are its own files.
#[test]
fn the_sandbox_holds_for_an_unprivileged_user() {
    if !is_root() {
        eprintln!("SKIP the_sandbox_holds_for_an_unprivileged_user: needs root to become `nobody`");
        return;
    }
    let repo = TestRepo::new();
    let readme = repo.git(&["rev-parse", "HEAD:README"]).trim().to_string();
    let loose = repo
        .path
        .join(".git/objects")
        .join(&readme[..2])
        .join(&readme[2..]);
    let plain = repo.scratch().join("plain.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&plain).expect("bind");
    let plan = repo.plan(
        "plan.toml",
        &format!(
            r#"
name = "p"
[defaults]
isolation = "sandbox"
network = false
[[phases]]
id = "one"
[[phases.tasks]]
id = "t"
files = ["a/**"]
run = '''
mkdir -p a; r=a/report
try() {{ if sh -c "$2" >/dev/null 2>&1; then echo "$1: written" >> $r; else echo "$1: refused" >> $r; fi; }}
try object 'chmod u+w {loose}; echo forged > {loose}'
try checkout 'echo evil > "$ORCH_REPO/evil.txt"'
try config 'git config --file "$ORCH_REPO/.git/config" evil.key 1'
try hook 'echo evil > "$ORCH_REPO/.git/hooks/post-checkout"'
try socket 'python3 -c "import socket; socket.socket(socket.AF_UNIX).connect(\"{plain}\")"'
echo work > a/x && git add a/x && git commit -qm "t: its own commit"
'''
"#,
            loose = q(&loose),
            plain = plain.display(),
        ),
    );
    // Root reads the repository afterwards; git would call it dubious.
    std::fs::write(repo.home.join(".gitconfig"), "[safe]\n\tdirectory = *\n").expect("gitconfig");
    let top = repo.scratch();
    let chown = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&top)
        .status()
        .expect("chown");
    assert!(chown.success());
    std::fs::set_permissions(&top, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let config = std::fs::read(repo.path.join(".git/config")).expect("config");
    let as_nobody = |args: &[&str]| {
        let out = repo
            .command("setpriv", &repo.path)
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--",
                BIN,
            ])
            .args(args)
            .output()
            .expect("setpriv");
        assert_eq!(code(&out), Some(0), "{args:?} as nobody: {}", both(&out));
    };
    as_nobody(&["start", plan.to_str().expect("utf-8")]);
    as_nobody(&["run"]);
    let report = repo
        .show("orch/p/work:a/report")
        .expect("the report landed");
    for what in ["object", "checkout", "config", "hook", "socket"] {
        assert!(
            report.contains(&format!("{what}: refused")),
            "{what} was not refused:\n{report}"
        );
    }
    assert_eq!(repo.show("main:README").as_deref(), Some("hello\n"));
    assert!(!repo.path.join("evil.txt").exists());
    assert_eq!(
        std::fs::read(repo.path.join(".git/config")).expect("config"),
        config
    );
    let log = repo.git(&["log", "--format=%s", "orch/p/work"]);
    assert!(log.contains("t: its own commit"), "{log}");
    repo.fsck();
}

/// Item 3, after the run: what `task reset` keeps of a task whose `.git`
/// names the user's worktree is read through the task's own admin dir,
/// never through the user's (whose HEAD would become its parent).
#[test]
fn preserving_a_task_with_a_forged_dotgit_reads_nothing_of_the_users_worktree() {
    let repo = TestRepo::new();
    let mine = repo.scratch().join("mine");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "mine",
        mine.to_str().expect("utf-8"),
    ]);
    std::fs::write(mine.join("theirs.txt"), "mine\n").expect("write");
    repo.git_in(&mine, &["add", "theirs.txt"]);
    repo.git_in(&mine, &["commit", "-q", "-m", "the user's own commit"]);
    let users = repo
        .git_in(&mine, &["rev-parse", "HEAD"])
        .trim()
        .to_string();
    started(
        &repo,
        &PlanText::new("p")
            .task("t", |t| {
                t.files(["a/**"]).run(
                    r#"mkdir -p a && echo work > a/x
echo "gitdir: $ORCH_REPO/.git/worktrees/mine" > .git
"#,
                )
            })
            .to_string(),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    repo.orch_ok(&["task", "reset", "t"]);
    let kept = repo.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/orch/p/preserved/",
    ]);
    assert!(!kept.trim().is_empty(), "reset kept nothing");
    for name in kept.lines() {
        let contains = repo
            .command("git", &repo.path)
            .args(["merge-base", "--is-ancestor", &users, name])
            .status()
            .expect("merge-base");
        assert!(
            !contains.success(),
            "{name} was read through the user's worktree (it holds their commit)"
        );
    }
    assert_eq!(repo.git_in(&mine, &["rev-parse", "HEAD"]).trim(), users);
    repo.fsck();
}
