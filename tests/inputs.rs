//! Input validation (issue 10, "Trust"): names that come from refs, ids that
//! would collide as files or refs, and inputs too big or too deep to read.
//! Real repositories, the real binary, the real `git`.

use std::process::{Output, Stdio};

use crate::common::*;

const HOSTILE: &str = "$(touch${IFS}HACKED)";

/// A plan of one manual task and one scripted task that prints `$ORCH_PLAN`.
fn plan() -> String {
    PlanText::new("good")
        .task("echo", |t| {
            t.run(r#"echo "plan=$ORCH_PLAN" > plan.txt"#)
                .files(["plan.txt"])
        })
        .to_string()
}

/// A state branch with a hostile plan name, made with plain git as a copy of
/// a real plan's state: `list` skips it with a warning, naming it is refused,
/// and nothing ever runs under that name.
#[test]
fn a_plan_name_from_a_ref_is_validated_like_a_plan_file() {
    let repo = TestRepo::new();
    let plan = repo.plan("good.toml", &plan());
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let hostile_ref = format!("refs/heads/orch/{HOSTILE}/state");
    repo.git(&["update-ref", &hostile_ref, "refs/heads/orch/good/state"]);

    let out = repo.orch(&["list"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(!stdout(&out).contains("HACKED"), "{}", stdout(&out));
    assert!(stdout(&out).contains("good"), "{}", stdout(&out));
    let warning = stderr(&out);
    assert_eq!(warning.lines().count(), 1, "one warning line: {warning}");
    assert!(
        warning.starts_with("warning: skipped refs/heads/orch/")
            && warning.contains("invalid plan id"),
        "{warning}"
    );
    let json = repo.orch_json(&["list", "--json"]);
    assert_eq!(json["plans"].as_array().map(Vec::len), Some(1), "{json}");

    // Named, it is refused; the good plan is not disturbed.
    let refs = repo.refs();
    for args in [
        vec!["status", HOSTILE],
        vec!["run", HOSTILE],
        vec!["task", "start", "echo", "--plan", HOSTILE],
    ] {
        let out = repo.orch(&args);
        assert_refused(&out, &args.join(" "));
        assert!(stderr(&out).contains("invalid plan id"), "{}", stderr(&out));
    }
    assert_eq!(repo.refs(), refs, "refused commands change no ref");

    // Alone, it is no plan: nothing picks it by default.
    repo.git(&["update-ref", "-d", "refs/heads/orch/good/state"]);
    let out = repo.orch(&["run"]);
    assert_refused(&out, "run with only a hostile state ref");
    assert!(
        stderr(&out).contains("no plan has been started"),
        "{}",
        stderr(&out)
    );
    assert!(!repo.path.join("HACKED").exists());
    assert!(!repo.path.join("plan.txt").exists());

    // The pre-push gate fails closed on a work branch with such a name.
    let head = repo.rev("HEAD").expect("HEAD");
    let zero = "0".repeat(40);
    let line = format!("refs/heads/main {head} refs/heads/orch/{HOSTILE}/work {zero}\n");
    let out = orch_stdin(&repo, &["gate", "--pre-push", "origin", "/nowhere"], &line);
    assert_refused(&out, "pre-push to a hostile work branch");
    assert!(stderr(&out).contains("invalid plan id"), "{}", stderr(&out));
}

/// Phase ids `state`, `work`, `tasks` (like `start`) would make checkpoint
/// tags that shadow git-orch's own branches: each is a located error.
#[test]
fn reserved_phase_ids_are_located_errors() {
    let repo = TestRepo::new();
    let mut text = String::from("name = \"p\"\n");
    for id in ["state", "work", "tasks", "start"] {
        text.push_str(&format!(
            "\n[[phases]]\nid = \"{id}\"\n  [[phases.tasks]]\n  id = \"t-{id}\"\n  files = [\"{id}/**\"]\n"
        ));
    }
    let plan = repo.plan("plan.toml", &text);
    let refs = repo.refs();
    let out = repo.orch(&["check", plan.to_str().expect("utf-8")]);
    assert_refused(&out, "reserved phase ids");
    let report = stdout(&out);
    for (id, line) in [("state", 4), ("work", 10), ("tasks", 16), ("start", 22)] {
        let want = format!("plan.toml:{line}:");
        let hit = report
            .lines()
            .find(|l| l.contains(&format!("`{id}` cannot be a phase id")))
            .unwrap_or_else(|| panic!("no error for phase `{id}`:\n{report}"));
        assert!(hit.contains(&want) && hit.contains("reserved"), "{hit}");
    }
    let out = repo.orch(&["start", plan.to_str().expect("utf-8")]);
    assert_refused(&out, "start with reserved phase ids");
    assert_eq!(repo.refs(), refs);
    assert!(repo.rev("refs/tags/orch/p/state").is_none());
}

/// Task `x.handoff`'s brief must not be task `x`'s handoff note.
#[test]
fn a_task_brief_never_overwrites_another_tasks_handoff_note() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "plan.toml",
        "name = \"p\"\n[[phases]]\nid = \"one\"\n\
         [[phases.tasks]]\nid = \"x\"\nfiles = [\"x/**\"]\n\
         [[phases.tasks]]\nid = \"x.handoff\"\nfiles = [\"y/**\"]\n",
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let x = repo.orch_json(&["task", "start", "x", "--json"]);
    let handoff = x["handoff_file"]
        .as_str()
        .expect("handoff_file")
        .to_string();
    std::fs::write(&handoff, "the note of x\n").expect("write note");
    let y = repo.orch_json(&["task", "start", "x.handoff", "--json"]);
    let brief = y["task_file"].as_str().expect("task_file");
    assert_ne!(brief, handoff, "two tasks share a file");
    assert_eq!(
        std::fs::read_to_string(&handoff).expect("note"),
        "the note of x\n",
        "starting x.handoff overwrote x's note"
    );
    let wt = std::path::PathBuf::from(x["worktree"].as_str().expect("worktree"));
    std::fs::create_dir_all(wt.join("x")).expect("mkdir");
    std::fs::write(wt.join("x/done.txt"), "x\n").expect("work");
    repo.orch_ok(&["task", "done", "x", "-m", "x"]);
    let note = repo
        .show(&format!("orch/p/state:{}", handoff_path("x")))
        .expect("note");
    assert!(
        note.contains("## Notes from the task\n\nthe note of x\n")
            && !note.contains("# Task x.handoff"),
        "{note}"
    );
    repo.fsck();
}

/// `task done --handoff /dev/zero` (or any file over 1 MiB) is refused
/// after reading no more than the limit; a handoff file the task itself
/// left over the limit is cut, with a note, and the task still lands.
#[test]
fn an_endless_or_huge_handoff_file_is_refused_or_cut() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "plan.toml",
        "name = \"p\"\n[[phases]]\nid = \"one\"\n\
         [[phases.tasks]]\nid = \"a\"\nfiles = [\"a/**\"]\n",
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let a = repo.orch_json(&["task", "start", "a", "--json"]);
    let wt = std::path::PathBuf::from(a["worktree"].as_str().expect("worktree"));
    std::fs::create_dir_all(wt.join("a")).expect("mkdir");
    std::fs::write(wt.join("a/x.txt"), "x\n").expect("work");
    let big = repo.scratch().join("big-note.md");
    std::fs::write(&big, "n".repeat((1 << 20) + 1)).expect("big note");
    let refs = repo.refs();
    for file in ["/dev/zero", big.to_str().expect("utf-8")] {
        let out = repo.orch(&["task", "done", "a", "--handoff", file]);
        assert_refused(&out, file);
        assert!(stderr(&out).contains("is over 1 MiB"), "{}", stderr(&out));
        assert_eq!(repo.refs(), refs, "{file}: nothing changed");
    }
    assert_eq!(task_state(&status_json(&repo), "a"), "running");

    // Left by the task in ORCH_HANDOFF_FILE: cut, noted, and the task lands.
    let handoff = a["handoff_file"].as_str().expect("handoff_file");
    std::fs::write(handoff, "h".repeat(3 << 20)).expect("write handoff");
    repo.orch_ok(&["task", "done", "a", "-m", "a"]);
    let note = repo
        .show(&format!("orch/p/state:{}", handoff_path("a")))
        .expect("note");
    assert!(note.len() < (1 << 20) + 4096, "{} bytes", note.len());
    assert!(note.contains("the rest is cut"), "no note of the cut");
    repo.fsck();
}

/// A task that prints far more than the log keeps (lines, then one long
/// line without a newline): its log in the state branch is the last 4 MiB
/// with a note of how much was cut.
#[test]
fn a_task_that_prints_without_end_keeps_a_bounded_log() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "plan.toml",
        "name = \"p\"\n[[phases]]\nid = \"one\"\n\
         [[phases.tasks]]\nid = \"loud\"\nfiles = [\"loud/**\"]\n\
         run = \"yes 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxy | head -c 9000000; head -c 3000000 /dev/zero | tr '\\\\0' z; echo; echo the-end\"\n",
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let out = repo.orch(&["run"]);
    assert_eq!(
        code(&out),
        Some(0),
        "{}",
        stderr(&out).lines().last().unwrap_or("")
    );
    let shown = both(&out);
    assert!(shown.contains("the-end"), "output is still streamed live");
    let log = repo
        .show(&format!("orch/p/state:{}", log_path("loud", 1)))
        .expect("log");
    assert!(log.len() <= (4 << 20) + 200, "log is {} bytes", log.len());
    assert!(log.len() >= (4 << 20) - 4096, "log is {} bytes", log.len());
    assert!(
        log.starts_with("[git-orch: ")
            && log
                .lines()
                .next()
                .unwrap_or("")
                .contains("bytes of earlier output cut"),
        "{}",
        &log[..200.min(log.len())]
    );
    assert!(log.trim_end().ends_with("the-end"));
    assert!(log.contains("zzzz"));
}

/// Runs `git orch ARGS` in the repo, killed after a generous time: a safety
/// net so that a regression hangs no test run, not a timing assertion.
fn orch_bounded(repo: &TestRepo, args: &[&str]) -> Output {
    let mut child = repo
        .command(BIN, &repo.path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut o = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut o).expect("read stdout");
        o
    });
    let reader_err = std::thread::spawn(move || {
        let mut e = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut e).expect("read stderr");
        e
    });
    let limit = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > limit {
            let _ = child.kill();
            panic!("`git orch {}` did not finish", args.join(" "));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    Output {
        status,
        stdout: reader.join().expect("stdout thread"),
        stderr: reader_err.join().expect("stderr thread"),
    }
}

/// Hostile plan files are refused with a clear error, cheaply: 100,000
/// unknown keys give the first 100 located and one line counting the rest;
/// 100,000-deep flow nesting, a file over the size limit and /dev/zero are
/// refused before parsing.
#[test]
fn huge_and_deep_plan_files_are_refused_early() {
    let repo = TestRepo::new();
    let deep = repo.plan(
        "deep.yaml",
        &format!(
            "name: p\nphases: {}{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    );
    let out = orch_bounded(&repo, &["check", deep.to_str().expect("utf-8")]);
    assert_refused(&out, "100k-deep flow nesting");
    assert!(
        stdout(&out).contains("deep.yaml:2:137: error: `[` and `{` are nested more than 128 deep"),
        "{}",
        stdout(&out)
    );
    let out = orch_bounded(&repo, &["start", deep.to_str().expect("utf-8")]);
    assert_refused(&out, "start of a 100k-deep plan");

    let big = repo.plan(
        "big.toml",
        &format!("name = \"p\"\n# {}\n", "x".repeat(5 << 20)),
    );
    let zero = repo.scratch().join("zero.toml");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
    // A device is not read at all (issue 20): it is not a regular file.
    let out = orch_bounded(&repo, &["check", zero.to_str().expect("utf-8")]);
    assert_refused(&out, "/dev/zero as a plan");
    assert!(
        stdout(&out).contains("is not a plan file but a device"),
        "{}",
        stdout(&out)
    );
    let out = orch_bounded(&repo, &["check", big.to_str().expect("utf-8")]);
    assert_refused(&out, "a file over the limit");
    assert!(
        stdout(&out).contains("the plan file is too big"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("the limit is 4 MiB"),
        "{}",
        stdout(&out)
    );
    let mut keys = String::from("name = \"p\"\n");
    for i in 0..100_000 {
        keys.push_str(&format!("k{i} = 1\n"));
    }
    let keys = repo.plan("keys.toml", &keys);
    let out = orch_bounded(&repo, &["check", keys.to_str().expect("utf-8")]);
    assert_refused(&out, "100k unknown keys");
    let report = stdout(&out);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 101, "the first 100 and a count");
    assert!(
        lines[0].contains("keys.toml:2:1: error: unknown key `k0`"),
        "{}",
        lines[0]
    );
    assert!(
        lines[99].contains("keys.toml:101:1: error: unknown key `k99`"),
        "{}",
        lines[99]
    );
    assert!(
        lines[100].ends_with("error: and 99900 more problems (fix the first ones and check again)"),
        "{}",
        lines[100]
    );
    assert!(
        stderr(&out).contains("100000 problems found"),
        "{}",
        stderr(&out)
    );

    assert!(!repo.refs().contains("orch/"), "nothing was started");
}
