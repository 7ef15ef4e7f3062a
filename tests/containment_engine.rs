//! Containment that holds, the engine's part (issue 20): a usage limit that
//! resets "now" parks for at least a minute and a task that parks without
//! end fails; `check` is linear in the plan's size and a plan path that is
//! not a regular file is refused without blocking; an error after a run
//! changed the state exits 1 saying what it did; a closed stderr stops a
//! run; another task's landing is never taken for tampering. Real
//! repositories, the real binary, real processes and pipes.
use crate::common::*;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `git-orch` in the repository with `env` added to the hermetic one.
fn orch_cmd(repo: &TestRepo, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = repo.command(BIN, &repo.path);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// `git-orch` with `env`, its output collected, ended by `limit` at most.
fn orch_within(repo: &TestRepo, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Output {
    let child = orch_cmd(repo, args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn git-orch");
    wait_within(child, limit, &format!("git orch {args:?}"))
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

fn lines_of(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

/// A command that counts its attempts in `count` (outside the worktree),
/// writes a reset time of now to `$ORCH_USAGE_RESET_FILE` and exits 75.
fn limited_now(count: &Path) -> String {
    format!(
        "echo x >> '{}'; date +%s > \\\"$ORCH_USAGE_RESET_FILE\\\"; exit 75",
        count.display()
    )
}

// Item 14: a usage limit that resets "now" looped, 368-879 attempts and up
// to 1,759 state commits in 20 s.

#[test]
fn a_usage_limit_that_resets_now_parks_for_at_least_a_minute_instead_of_looping() {
    let repo = TestRepo::new();
    let count = repo.scratch().join("attempts");
    started(
        &repo,
        &format!(
            "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a/**\"]\n  run = \"{}\"\n",
            limited_now(&count)
        ),
    );
    let commits_before: usize = repo
        .git(&["rev-list", "--count", "orch/p/state"])
        .trim()
        .parse()
        .expect("count");
    let child = orch_cmd(&repo, &["run"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn git orch run");
    // Parked, or looping: either shows within seconds.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let st = status_json(&repo);
        if task_state(&st, "a") == "parked" || lines_of(&count) > 3 {
            break;
        }
        assert!(Instant::now() < until, "never parked: {st}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Time enough for a loop to show.
    std::thread::sleep(Duration::from_secs(2));
    let st = status_json(&repo);
    let attempts = lines_of(&count);
    let commits: usize = repo
        .git(&["rev-list", "--count", "orch/p/state"])
        .trim()
        .parse()
        .expect("count");
    let _ = Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status();
    let out = wait_within(child, Duration::from_secs(30), "run after SIGINT");
    assert_eq!(attempts, 1, "one attempt, not a loop: {}", both(&out));
    assert!(
        commits - commits_before <= 4,
        "a few state commits (claim, usage, park), not a loop: {} more",
        commits - commits_before
    );
    assert_eq!(task_state(&st, "a"), "parked", "{st}");
    let wakes = task_field(&st, "a", "wakes_at").as_f64().expect("wakes_at");
    assert!(
        wakes - now() >= 50.0,
        "a reset of now waits the floor of a minute: wakes at {wakes}, now {}",
        now()
    );
    assert!(stderr(&out).contains("waiting until"), "{}", both(&out));
    // Ctrl-C left it parked, as the park tests expect.
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "parked", "{st}");
    assert_eq!(task_field(&st, "a", "attempts"), 1, "{st}");
    repo.fsck();
}

/// `ORCH_TEST_PARK_FLOOR` lowers the floor in builds with the `failpoints`
/// feature (the tests'), so that parking many times takes no real minutes.
const SHORT_FLOOR: (&str, &str) = ("ORCH_TEST_PARK_FLOOR", "0.2");

#[test]
fn a_task_that_parks_without_end_fails_at_its_agents_cap_naming_why() {
    let repo = TestRepo::new();
    let count = repo.scratch().join("attempts");
    started(
        &repo,
        &format!(
            "name = \"p\"\n[agents.stuck]\nrun = \"{}\"\nusage_limit = {{ parks = 3 }}\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a/**\"]\n  agent = \"stuck\"\n",
            limited_now(&count)
        ),
    );
    let out = orch_within(&repo, &["run"], &[SHORT_FLOOR], Duration::from_secs(60));
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let err = stderr(&out);
    assert!(
        err.contains("parked it 3 times") && err.contains("usage_limit.parks"),
        "says why: {err}"
    );
    assert_eq!(
        lines_of(&count),
        4,
        "three parks, then the fourth limit fails it"
    );
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "failed", "{st}");
    assert_eq!(log_events(&repo, "task-parked").len(), 3);
    assert!(
        task_field(&st, "a", "worktree").is_string(),
        "work kept: {st}"
    );
    // A person's reset gives it its parks again.
    repo.orch_ok(&["task", "reset", "a"]);
    let out = orch_within(&repo, &["run"], &[SHORT_FLOOR], Duration::from_secs(60));
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert_eq!(lines_of(&count), 8, "{}", both(&out));
    repo.fsck();
}

#[test]
fn a_task_without_an_agent_that_parks_without_end_fails_at_the_default_cap() {
    let repo = TestRepo::new();
    let count = repo.scratch().join("attempts");
    started(
        &repo,
        &format!(
            "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a/**\"]\n  run = \"{}\"\n",
            limited_now(&count)
        ),
    );
    let out = orch_within(&repo, &["run"], &[SHORT_FLOOR], Duration::from_secs(120));
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(
        stderr(&out).contains("parked it 20 times"),
        "{}",
        both(&out)
    );
    assert_eq!(lines_of(&count), 21);
    assert_eq!(task_state(&status_json(&repo), "a"), "failed");
}

#[test]
fn a_usage_limit_cap_of_zero_parks_is_refused() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "plan.toml",
        "name = \"p\"\n[agents.x]\nrun = \"true\"\nusage_limit = { parks = 0 }\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  agent = \"x\"\n",
    );
    let out = repo.orch(&["start", plan.to_str().expect("utf-8")]);
    assert_refused(&out, "parks = 0");
    assert!(stderr(&out).contains("usage_limit.parks"), "{}", both(&out));
}

// Item 15: `check` was quadratic, and a FIFO as the plan file blocked it
// forever.

#[test]
fn a_plan_path_that_is_not_a_regular_file_is_refused_without_blocking() {
    let repo = TestRepo::new();
    let fifo = repo.scratch().join("fifo.toml");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let dir = repo.scratch().join("dir.toml");
    std::fs::create_dir_all(&dir).expect("mkdir");
    for (path, kind) in [(&fifo, "a FIFO"), (&dir, "a directory")] {
        let shown = path.to_str().expect("utf-8");
        for cmd in ["check", "start"] {
            let out = orch_within(&repo, &[cmd, shown], &[], Duration::from_secs(30));
            assert_refused(&out, &format!("{cmd} {kind}"));
            assert!(
                both(&out).contains(&format!("is not a plan file but {kind}")),
                "{cmd} {kind}: {}",
                both(&out)
            );
            assert_eq!(
                stderr(&out).matches("error:").count(),
                1,
                "one error line: {}",
                both(&out)
            );
        }
    }
    assert!(repo.rev("orch/p/state").is_none(), "nothing started");
}

fn one_task_phases(n: usize) -> String {
    let mut s = String::from("name = \"big\"\n[defaults]\nrun = \"true\"\n");
    for i in 0..n {
        s.push_str(&format!(
            "[[phases]]\nid = \"p{i}\"\n  [[phases.tasks]]\n  id = \"t{i}\"\n  files = [\"f/{i}\"]\n"
        ));
    }
    s
}

fn chain(n: usize) -> String {
    let mut s =
        String::from("name = \"big\"\n[defaults]\nrun = \"true\"\n[[phases]]\nid = \"one\"\n");
    for i in 0..n {
        s.push_str(&format!(
            "[[phases.tasks]]\nid = \"t{i}\"\nfiles = [\"f/{i}\"]\n"
        ));
        if i > 0 {
            s.push_str(&format!("depends_on = [\"t{}\"]\n", i - 1));
        }
    }
    s
}

/// `n` agents, or `n` notify hooks, and one task: each was located with a
/// search of the whole text, found or not.
fn many(n: usize, agents: bool) -> String {
    let mut s = String::from("name = \"big\"\n[defaults]\nrun = \"true\"\n");
    for i in 0..n {
        s.push_str(&match agents {
            true => format!("[agents.a{i}]\nrun = \"true\"\n"),
            false => format!("[[notify]]\nrun = \"echo {i}\"\n"),
        });
    }
    s + "[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"t\"\n  files = [\"x\"]\n"
}

#[test]
fn check_of_ten_thousand_phases_a_thirty_thousand_task_chain_or_many_agents_completes() {
    let repo = TestRepo::new();
    for (name, text) in [
        ("phases.toml", one_task_phases(10_000)),
        ("chain.toml", chain(30_000)),
        ("agents.toml", many(20_000, true)),
        ("notify.toml", many(20_000, false)),
    ] {
        let file = repo.plan(name, &text);
        let shown = file.to_str().expect("utf-8");
        // A hang guard only: the quadratic check took minutes.
        let out = orch_within(&repo, &["check", shown], &[], Duration::from_secs(60));
        assert_eq!(code(&out), Some(0), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains("plan is valid"), "{name}");
    }
}

// Item 16: a full disk after landings exited 2, "nothing changed", with a
// bare libgit2 message.

#[test]
fn a_full_disk_after_a_landing_fails_the_run_with_exit_1_naming_what_it_did() {
    let repo = TestRepo::new();
    let mut plan = String::from("name = \"p\"\n[[phases]]\nid = \"one\"\n");
    for id in ["a", "b", "c"] {
        plan += &format!(
            "  [[phases.tasks]]\n  id = \"{id}\"\n  files = [\"{id}.txt\"]\n  run = \"echo {id} > {id}.txt\"\n"
        );
    }
    started(&repo, &plan);
    // The state commits of a run of one job: claim a, land a, claim b, …:
    // the disk is full from the fourth on, b's landing, after a landed and
    // b was claimed (recording b's failure fails too).
    let out = orch_within(
        &repo,
        &["run", "-j", "1"],
        &[("ORCH_FAILPOINT", "state-write-enospc@4")],
        Duration::from_secs(60),
    );
    assert_eq!(code(&out), Some(1), "work was done: {}", both(&out));
    let err = stderr(&out);
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains("landed a") && err.contains("claimed b"),
        "says what the run did: {err}"
    );
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "done", "{st}");
    assert_eq!(repo.show("orch/p/work:a.txt").as_deref(), Some("a\n"));
    // The next run takes b back and finishes the plan.
    let out = orch_within(&repo, &["run", "-j", "1"], &[], Duration::from_secs(60));
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    repo.fsck();
}

// Item 17: `run 2>&1 | head -1` with quiet tasks landed everything and
// exited 0: only a closed stdout stopped a run.

#[test]
fn a_closed_stderr_stops_a_run_as_a_closed_stdout_does() {
    let repo = TestRepo::new();
    let mut plan = String::from("name = \"p\"\n[[phases]]\nid = \"one\"\n");
    for i in 0..20 {
        plan += &format!(
            "  [[phases.tasks]]\n  id = \"t{i}\"\n  files = [\"f_t{i}\"]\n  run = \"sleep 0.3; echo x > f_$ORCH_TASK\"\n"
        );
    }
    started(&repo, &plan);
    let mut child = orch_cmd(&repo, &["run", "-j", "1"], &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn git orch run");
    let pipe = child.stderr.take().expect("stderr");
    let mut first = String::new();
    BufReader::new(pipe)
        .read_line(&mut first)
        .expect("read a line");
    // The reader is gone (`| head -1`): the pipe is closed.
    let out = wait_within(child, Duration::from_secs(60), "run with a closed stderr");
    assert!(first.contains("t0"), "{first}");
    assert_eq!(code(&out), Some(1), "stopped, as for a closed stdout");
    let st = status_json(&repo);
    let done = (0..20)
        .filter(|i| task_state(&st, &format!("t{i}")) == "done")
        .count();
    assert!(done < 20, "the run stopped before the end: {st}");
    let pending = (0..20)
        .filter(|i| task_state(&st, &format!("t{i}")) == "pending")
        .count();
    assert_eq!(done + pending, 20, "nothing left running: {st}");
    repo.fsck();
}

// Also: a `run -j 2` of 250 to 500 one-file tasks failed a task for
// "tampered with the repository outside its worktree: moved
// `refs/heads/orch/<plan>/work`", the other task's landing.

#[test]
fn landings_of_other_tasks_are_never_taken_for_tampering() {
    let repo = TestRepo::new();
    let n = 400;
    let mut plan = String::from("name = \"p\"\n[[phases]]\nid = \"one\"\n");
    for i in 0..n {
        plan += &format!(
            "  [[phases.tasks]]\n  id = \"t{i}\"\n  files = [\"f_t{i}\"]\n  run = \"echo x > f_$ORCH_TASK\"\n"
        );
    }
    started(&repo, &plan);
    let out = orch_within(&repo, &["run", "-j", "2"], &[], Duration::from_secs(600));
    let text = both(&out);
    assert!(!text.contains("tampered"), "{text}");
    assert_eq!(code(&out), Some(0), "{text}");
    let st = status_json(&repo);
    for i in 0..n {
        assert_eq!(task_state(&st, &format!("t{i}")), "done", "t{i}");
    }
}
