//! The core of git orch (issue 2), end to end: plans, start, status, manual
//! tasks, checkpoints, rollback and undo, finish, repair from the state
//! branch, and racing processes. Real repositories, the real binary, and
//! every result read back with git itself.
use crate::common::*;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

/// Two phases of manual tasks (no `run`): `b` waits for `a`, `two` waits
/// for `one`'s checkpoint.
fn manual() -> String {
    PlanText::new("p")
        .task("a", |t| {
            t.title("Task A")
                .files(["a/**"])
                .key("estimate", r#""10m""#)
        })
        .task("b", |t| t.files(["b/**"]).depends_on(["a"]))
        .phase("two", |p| {
            p.task("c", |t| t.files(["c/**"]))
                .task("d", |t| t.files(["d/**"]))
        })
        .to_string()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/plans")
        .join(name)
}

fn arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn wt_list(repo: &TestRepo) -> String {
    repo.git(&["worktree", "list", "--porcelain"])
}

/// `task start ID`: stdout is the worktree path alone.
fn task_start(repo: &TestRepo, id: &str) -> PathBuf {
    let out = repo.orch_ok(&["task", "start", id]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "task start {id} must print only the path, got {out:?}"
    );
    let path = PathBuf::from(lines[0]);
    assert!(
        path.is_absolute() && path.join(".git").exists(),
        "not a worktree: {out}"
    );
    path
}

fn phase(st: &Value, id: &str) -> Value {
    st["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .find(|p| p["id"] == id)
        .expect("phase")
        .clone()
}

/// The plan-level record as stored in the state branch.
fn state_json(repo: &TestRepo, plan: &str) -> Value {
    let text = repo
        .show(&format!("orch/{plan}/state:meta.json"))
        .expect("meta.json");
    serde_json::from_str(&text).expect("meta.json is JSON")
}

fn state_commits(repo: &TestRepo, plan: &str) -> usize {
    repo.git(&["rev-list", "--count", &format!("orch/{plan}/state")])
        .trim()
        .parse()
        .expect("count")
}

fn state_summaries(repo: &TestRepo, plan: &str) -> Vec<String> {
    repo.git(&["log", "--format=%s", &format!("orch/{plan}/state")])
        .lines()
        .map(str::to_string)
        .collect()
}

fn refs_under(repo: &TestRepo, prefix: &str) -> Vec<(String, String)> {
    repo.git(&["for-each-ref", "--format=%(refname) %(objectname)", prefix])
        .lines()
        .map(|l| {
            let (n, o) = l.split_once(' ').expect("ref line");
            (n.to_string(), o.to_string())
        })
        .collect()
}

fn parents(repo: &TestRepo, rev: &str) -> Vec<String> {
    let line = repo.git(&["rev-list", "--parents", "-n1", rev]);
    line.split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect()
}

fn tree_files(repo: &TestRepo, rev: &str) -> Vec<String> {
    repo.git(&["ls-tree", "-r", "--name-only", rev])
        .lines()
        .map(str::to_string)
        .collect()
}

// ---------------------------------------------------------------- check

#[test]
fn check_accepts_the_good_plans() {
    let repo = TestRepo::new();
    for name in ["good.toml", "good.yaml", "bom-crlf.toml"] {
        let out = repo.orch(&["check", arg(&fixture(name))]);
        assert_eq!(code(&out), Some(0), "{name}: {}", stderr(&out));
        assert!(!stdout(&out).contains("error"), "{name}: {}", stdout(&out));
    }
    // The YAML plan is the TOML plan: same JSON verdict.
    let toml = repo.orch_json(&["check", "--json", arg(&fixture("good.toml"))]);
    let yaml = repo.orch_json(&["check", "--json", arg(&fixture("good.yaml"))]);
    assert_eq!(toml["valid"], true);
    assert_eq!(yaml["valid"], true);
    assert_eq!(toml["diagnostics"], yaml["diagnostics"].clone());
}

#[test]
fn check_rejects_every_bad_fixture_with_a_location() {
    let repo = TestRepo::new();
    // fixture, a word the message must contain, whether it has a location
    let table: &[(&str, &str, bool)] = &[
        ("bad-cycle.toml", "a -> b -> c -> a", true),
        ("bad-duplicate-id.toml", "`a`", true),
        ("bad-duration.toml", "1.5h", true),
        ("bad-empty.toml", "empty", false),
        ("bad-glob.toml", "../outside", true),
        ("bad-id.toml", "a..b", true),
        ("bad-later-dep.toml", "late", true),
        ("bad-reserved-phase.toml", "start", true),
        ("bad-syntax.toml", "", true),
        ("bad-type.toml", "four", true),
        ("bad-unknown-dep.toml", "ghost", true),
        ("bad-unknown-key.toml", "fils", true),
        ("bad-unknown-key.yaml", "fils", true),
    ];
    let dir = std::fs::read_dir(fixture("")).expect("fixtures");
    let on_disk = dir
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("bad-"))
        .count();
    assert_eq!(on_disk, table.len(), "every bad fixture is in the table");
    for (name, word, located) in table {
        let path = fixture(name);
        let before = repo.refs();
        let out = repo.orch(&["check", arg(&path)]);
        assert_refused(&out, name);
        let text = stdout(&out);
        let errors: Vec<&str> = text.lines().filter(|l| l.contains(": error: ")).collect();
        assert!(
            !errors.is_empty(),
            "{name}: no error diagnostic on stdout: {text}"
        );
        assert!(
            errors.iter().any(|l| l.contains(word)),
            "{name}: no error names {word:?}: {text}"
        );
        let prefix = format!("{}:", path.display());
        for line in &errors {
            assert!(
                line.starts_with(&prefix),
                "{name}: diagnostic must start with the file: {line}"
            );
            let rest = &line[prefix.len()..];
            let mut parts = rest.splitn(3, ':');
            let (l, c) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let has_loc =
                l.parse::<usize>().is_ok_and(|n| n > 0) && c.parse::<usize>().is_ok_and(|n| n > 0);
            if *located {
                assert!(has_loc, "{name}: expected file:line:col, got {line}");
            }
        }
        assert_eq!(repo.refs(), before, "{name}: check changed refs");
        // --json: same verdict, machine-readable.
        let out = repo.orch(&["check", "--json", arg(&path)]);
        assert_eq!(code(&out), Some(2), "{name} --json");
        let v = json_doc(&out, &format!("{name}: check --json"));
        assert_eq!(v["valid"], false, "{name}");
        let diags = v["diagnostics"].as_array().expect("diagnostics");
        assert!(
            diags.iter().any(|d| d["severity"] == "error"),
            "{name}: {v}"
        );
        if *located {
            assert!(diags
                .iter()
                .filter(|d| d["severity"] == "error")
                .all(|d| d["line"].as_u64().is_some_and(|n| n > 0)));
        }
    }
}

#[test]
fn check_warnings_do_not_fail_and_bad_files_are_refused() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "warn.toml",
        "name = \"w\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"free\"\n",
    );
    let out = repo.orch(&["check", arg(&plan)]);
    assert_eq!(code(&out), Some(0), "warnings only: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("warning:") && text.contains("no gates"),
        "phase without gates warns: {text}"
    );
    assert!(
        text.contains("`free`") && text.contains("files"),
        "task without files warns: {text}"
    );
    assert!(!text.contains(": error:"), "{text}");
    let v = repo.orch_json(&["check", "--json", arg(&plan)]);
    assert_eq!(v["valid"], true);
    let diags = v["diagnostics"].as_array().expect("diagnostics");
    assert_eq!(diags.len(), 2, "{v}");
    assert!(diags.iter().all(|d| d["severity"] == "warning"), "{v}");
    // A plan with warnings still starts.
    repo.orch_ok(&["start", arg(&plan)]);

    let missing = repo.scratch().join("nope.toml");
    assert_refused(
        &repo.orch(&["check", arg(&missing)]),
        "check of a missing file",
    );
}

// ---------------------------------------------------------------- start

#[test]
fn start_creates_work_state_and_an_annotated_start_tag() {
    let repo = TestRepo::new();
    let plan = repo.plan("plan.toml", &manual());
    let head = repo.rev("HEAD").expect("HEAD");
    let out = repo.orch(&["start", arg(&plan)]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(
        repo.rev("refs/heads/orch/p/work").as_deref(),
        Some(head.as_str())
    );
    assert_eq!(
        repo.git(&["cat-file", "-t", "refs/tags/orch/p/start"])
            .trim(),
        "tag"
    );
    assert_eq!(
        repo.rev("refs/tags/orch/p/start^{commit}").as_deref(),
        Some(head.as_str())
    );
    assert!(repo.rev("refs/heads/orch/p/state").is_some());
    assert_eq!(state_commits(&repo, "p"), 1, "start is one state commit");
    let files = tree_files(&repo, "orch/p/state");
    for f in ["plan.json", "meta.json", "source/plan.toml"] {
        assert!(
            files.contains(&f.to_string()),
            "state tree lacks {f}: {files:?}"
        );
    }
    assert_eq!(repo.show("orch/p/state:source/plan.toml"), Some(manual()));
    let plan_json: Value =
        serde_json::from_str(&repo.show("orch/p/state:plan.json").expect("plan.json"))
            .expect("json");
    assert_eq!(plan_json["name"], "p");
    assert_eq!(state_json(&repo, "p")["work"], head.as_str());
    // The user's branch and working tree are untouched.
    assert_eq!(repo.rev("refs/heads/main").as_deref(), Some(head.as_str()));
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    repo.fsck();
}

#[test]
fn start_builds_on_base_rev() {
    let repo = TestRepo::new();
    let first = repo.rev("HEAD").expect("HEAD");
    repo.write("more", "x\n");
    repo.commit_all("second");
    let plan = repo.plan("plan.toml", &manual());
    repo.orch_ok(&["start", arg(&plan), "--base", "HEAD~1"]);
    assert_eq!(repo.rev("orch/p/work").as_deref(), Some(first.as_str()));
    assert_eq!(
        repo.rev("orch/p/start^{commit}").as_deref(),
        Some(first.as_str())
    );
    assert_eq!(status_json(&repo)["work"], first.as_str());
    repo.fsck();
}

#[test]
fn start_refuses_a_second_start_bad_plans_bad_bases_and_empty_repos() {
    let repo = new_started(&manual());
    let plan = repo.scratch().join("plan.toml");
    let before = repo.refs();
    let out = repo.orch(&["start", arg(&plan)]);
    assert_refused(&out, "second start");
    assert!(stderr(&out).contains("already started"), "{}", stderr(&out));
    assert_eq!(repo.refs(), before);

    let other = repo.plan("q.toml", &manual().replace("name = \"p\"", "name = \"q\""));
    let out = repo.orch(&["start", arg(&other), "--base", "no-such-rev"]);
    assert_refused(&out, "unknown base");
    assert_eq!(repo.refs(), before);

    let out = repo.orch(&["start", arg(&fixture("bad-cycle.toml"))]);
    assert_refused(&out, "invalid plan");
    assert_eq!(repo.refs(), before);
    repo.fsck();

    let empty = TestRepo::empty();
    let plan = empty.plan("plan.toml", &manual());
    let out = empty.orch(&["start", arg(&plan)]);
    assert_refused(&out, "start without commits");
    assert!(stderr(&out).contains("no commits"), "{}", stderr(&out));
    assert_eq!(empty.refs(), "");
    let out = empty.orch(&["status"]);
    assert_refused(&out, "status without a plan");
    let list = empty.orch_json(&["list", "--json"]);
    assert_eq!(list["plans"], serde_json::json!([]), "{list}");
}

// ---------------------------------------------------------------- status, list, log

#[test]
fn status_list_and_log_report_the_plan() {
    let repo = new_started(&manual());
    let base = repo.rev("HEAD").expect("HEAD");
    let st = status_json(&repo);
    assert_eq!(st["plan"], "p");
    assert_eq!(st["work"], base.as_str());
    assert_eq!(st["phase"], "one");
    let phases = st["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 2);
    assert_eq!(phases[0]["id"], "one");
    assert_eq!(phases[0]["state"], "active");
    assert_eq!(phases[0]["checkpoint"], Value::Null);
    assert_eq!(phases[1]["state"], "pending");
    let tasks = st["tasks"].as_array().expect("tasks");
    assert_eq!(
        tasks
            .iter()
            .map(|t| t["id"].as_str().unwrap_or(""))
            .collect::<Vec<_>>(),
        ["a", "b", "c", "d"]
    );
    assert_eq!(tasks[0]["phase"], "one");
    assert_eq!(tasks[2]["phase"], "two");
    assert!(tasks
        .iter()
        .all(|t| t["state"] == "pending" && t["seconds"].is_null()));
    assert_eq!(tasks[0]["estimate_seconds"], 600);
    assert_eq!(tasks[1]["estimate_seconds"], Value::Null);

    let wt = task_start(&repo, "a");
    put(&wt, "a/file", "a\n");
    repo.orch_ok(&["task", "done", "a", "-m", "a work"]);
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "done");
    let a = &st["tasks"][0];
    assert!(
        a["seconds"].as_f64().is_some_and(|s| s >= 0.0),
        "done task has seconds: {a}"
    );
    assert_eq!(st["work"].as_str(), repo.rev("orch/p/work").as_deref());

    let text = repo.orch_ok(&["status"]);
    assert!(
        text.contains("phase one") && text.contains("active"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains(" a ") && l.contains("done") && l.contains("est 10m")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains(" b ") && l.contains("pending")),
        "{text}"
    );
    assert_eq!(
        repo.orch_ok(&["status", "p"]),
        text,
        "naming the plan is the same"
    );

    // list: one line per plan; two plans need a name.
    let q = repo.plan("q.toml", &manual().replace("name = \"p\"", "name = \"q\""));
    repo.orch_ok(&["start", arg(&q)]);
    let list = repo.orch_ok(&["list"]);
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("p ") && l.contains("1/4 tasks")),
        "{list}"
    );
    let rows = &repo.orch_json(&["list", "--json"])["plans"];
    assert_eq!(rows.as_array().map(Vec::len), Some(2));
    assert_eq!(rows[0]["plan"], "p");
    assert_eq!(rows[0]["done"], 1);
    // status: with two plans active and no name, it shows each (issue 23);
    // `--json`, one plan's document, still wants the name.
    let both_plans = repo.orch_ok(&["status"]);
    assert_eq!(
        both_plans,
        format!(
            "{}\n{}",
            repo.orch_ok(&["status", "p"]),
            repo.orch_ok(&["status", "q"])
        ),
        "{both_plans}"
    );
    assert_refused(
        &repo.orch(&["status", "--json"]),
        "status --json with two plans and no name",
    );

    // log: one line per state change, the same count as git's.
    let log = repo.orch_ok(&["log", "p"]);
    assert_eq!(log.lines().count(), state_commits(&repo, "p"), "{log}");
    assert_eq!(state_commits(&repo, "p"), 3);
    let first = log.lines().next().expect("a line");
    assert!(first.ends_with("task a: done"), "newest first: {log}");
    assert!(
        log.lines()
            .last()
            .is_some_and(|l| l.contains("plan p: started")),
        "{log}"
    );
    let json = repo.orch_json(&["log", "p", "--json"]);
    assert_eq!(json["events"].as_array().map(Vec::len), Some(3));
    assert_eq!(repo.orch_ok(&["log", "p", "-n", "1"]).lines().count(), 1);
    repo.fsck();
}

// ---------------------------------------------------------------- manual tasks

#[test]
fn task_start_and_done_land_the_work_with_a_handoff_note() {
    let repo = new_started(&manual());
    let base = repo.rev("orch/p/work").expect("work");
    let wt = task_start(&repo, "a");
    assert_eq!(
        repo.git_in(&wt, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/orch/p/tasks/a"
    );
    assert_eq!(repo.git_in(&wt, &["rev-parse", "HEAD"]).trim(), base);
    assert!(
        !wt.starts_with(repo.path.join("a")),
        "worktree is not inside the user's tree"
    );
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        "",
        "user's tree untouched"
    );
    assert_eq!(task_state(&status_json(&repo), "a"), "running");

    put(&wt, "a/new.txt", "hello from a\n");
    let handoff = repo.plan("handoff.md", "The schema is in a/new.txt.\n");
    let before_state = state_commits(&repo, "p");
    let out = repo.orch(&[
        "task",
        "done",
        "a",
        "-m",
        "add a/new.txt",
        "--handoff",
        arg(&handoff),
    ]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(
        state_commits(&repo, "p"),
        before_state + 1,
        "done is one state commit"
    );

    let work = repo.rev("orch/p/work").expect("work");
    assert_ne!(work, base);
    assert_eq!(
        repo.show("orch/p/work:a/new.txt").as_deref(),
        Some("hello from a\n")
    );
    let ps = parents(&repo, "orch/p/work");
    assert_eq!(ps.len(), 2, "merge strategy makes a merge commit");
    assert_eq!(ps[0], base);
    assert_eq!(Some(ps[1].clone()), repo.rev("orch/p/tasks/a"));
    assert_eq!(
        repo.git(&["log", "-1", "--format=%s", "orch/p/tasks/a"])
            .trim(),
        "add a/new.txt"
    );

    let note = repo
        .show(&format!("orch/p/state:{}", handoff_path("a")))
        .expect("handoff note in the state tree");
    assert!(note.contains("The schema is in a/new.txt."), "{note}");
    assert!(note.contains("a/new.txt"), "{note}");
    assert!(
        note.contains("add a/new.txt"),
        "completed work lists the commit: {note}"
    );

    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "done");
    assert_eq!(st["work"], work.as_str());
    assert_eq!(state_json(&repo, "p")["work"], work.as_str());

    // b's brief carries a's handoff note.
    let out = repo.orch_json(&["task", "start", "b", "--json"]);
    let brief =
        std::fs::read_to_string(out["task_file"].as_str().expect("task_file")).expect("brief");
    assert!(brief.contains("The schema is in a/new.txt."), "{brief}");
    repo.fsck();
}

#[test]
fn task_done_without_changes_is_done_and_leaves_work() {
    let repo = new_started(&manual());
    let base = repo.rev("orch/p/work").expect("work");
    task_start(&repo, "a");
    repo.orch_ok(&["task", "done", "a"]);
    assert_eq!(task_state(&status_json(&repo), "a"), "done");
    assert_eq!(repo.rev("orch/p/work").as_deref(), Some(base.as_str()));
    assert!(repo
        .show(&format!("orch/p/state:{}", handoff_path("a")))
        .is_some());
    repo.fsck();
}

#[test]
fn task_fail_reset_and_skip() {
    let repo = new_started(&manual());
    let base = repo.rev("orch/p/work").expect("work");

    // fail: kept worktree and branch.
    let wt = task_start(&repo, "a");
    put(&wt, "a/half.txt", "half\n");
    repo.orch_ok(&["task", "fail", "a", "--reason", "ran out of time"]);
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "failed");
    assert_eq!(st["tasks"][0]["reason"], "ran out of time");
    assert!(
        wt.join("a/half.txt").exists(),
        "failed task keeps its worktree"
    );
    assert!(repo.rev("refs/heads/orch/p/tasks/a").is_some());
    assert_eq!(repo.rev("orch/p/work").as_deref(), Some(base.as_str()));

    // reset: the dirty worktree's content is preserved, then it goes.
    let before = repo.refs();
    let out = repo.orch(&["task", "reset", "a"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(task_state(&status_json(&repo), "a"), "pending");
    assert!(!wt.exists(), "reset removes the worktree");
    assert!(
        repo.rev("refs/heads/orch/p/tasks/a").is_none(),
        "reset removes the branch"
    );
    assert!(!wt_list(&repo).contains("orch/p/tasks/a"));
    let kept = refs_under(&repo, "refs/orch/p/preserved/");
    assert_eq!(
        kept.len(),
        1,
        "one preserved ref: {kept:?}\nbefore:\n{before}"
    );
    let (name, id) = &kept[0];
    assert!(
        stderr(&out).contains(name.as_str()),
        "reset prints where: {}",
        stderr(&out)
    );
    assert_eq!(
        repo.show(&format!("{id}:a/half.txt")).as_deref(),
        Some("half\n")
    );
    assert_eq!(repo.rev(&format!("{id}^")).as_deref(), Some(base.as_str()));

    // A reset task starts again, fresh.
    let wt = task_start(&repo, "a");
    assert!(!wt.join("a/half.txt").exists());
    assert_eq!(status_json(&repo)["tasks"][0]["attempts"], 2);

    // skip: a running task's work is preserved too; a pending one just skips.
    put(&wt, "a/again.txt", "again\n");
    repo.git_in(&wt, &["add", "-A"]);
    repo.git_in(&wt, &["commit", "-q", "-m", "committed in a"]);
    let committed = repo.git_in(&wt, &["rev-parse", "HEAD"]).trim().to_string();
    repo.orch_ok(&["task", "skip", "a"]);
    assert_eq!(task_state(&status_json(&repo), "a"), "skipped");
    assert!(!wt.exists());
    assert!(
        refs_under(&repo, "refs/orch/p/preserved/")
            .iter()
            .any(|(_, id)| *id == committed),
        "the skipped task's commit is kept"
    );
    // b depended on a: skipped counts as settled.
    task_start(&repo, "b");
    repo.orch_ok(&["task", "done", "b"]);
    assert_eq!(repo.rev("orch/p/work").as_deref(), Some(base.as_str()));
    repo.orch_ok(&["checkpoint"]);
    repo.orch_ok(&["task", "skip", "c"]);
    assert_eq!(task_state(&status_json(&repo), "c"), "skipped");
    assert_refused(&repo.orch(&["task", "skip", "c"]), "skip twice");
    repo.fsck();
}

/// Two tasks without scopes, started one after the other by hand from the
/// same work head, both change README's first line.
fn overlap() -> String {
    PlanText::new("p")
        .task("x", |t| t)
        .task("y", |t| t.files(["README"]))
        .to_string()
}

#[test]
fn landing_conflict_leaves_work_alone_and_can_be_resolved() {
    let repo = new_started(&overlap());
    let wx = task_start(&repo, "x");
    put(&wx, "README", "from x\n");
    put(&wx, "x.txt", "x\n");
    repo.orch_ok(&["task", "done", "x", "-m", "x edits README"]);
    // `y` builds on the work branch from before `x` landed (the two cannot
    // run at once: their files overlap).
    let wy = task_start(&repo, "y");
    repo.git_in(&wy, &["reset", "-q", "--hard", "orch/p/work^1"]);
    put(&wy, "README", "from y\n");
    let work = repo.rev("orch/p/work").expect("work");
    let before = state_commits(&repo, "p");

    let out = repo.orch(&["task", "done", "y", "-m", "y edits README"]);
    assert_eq!(
        code(&out),
        Some(1),
        "a conflict is a work failure: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("README"),
        "names the file: {}",
        stderr(&out)
    );
    assert_eq!(
        repo.rev("orch/p/work").as_deref(),
        Some(work.as_str()),
        "work untouched"
    );
    assert_eq!(state_commits(&repo, "p"), before + 1);
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "y"), "conflict");
    assert!(
        wy.join(".git").exists(),
        "the worktree is kept for the user"
    );
    assert_eq!(
        repo.show("orch/p/tasks/y:README").as_deref(),
        Some("from y\n"),
        "y's work is committed on its branch"
    );
    assert_refused(
        &repo.orch(&["checkpoint"]),
        "checkpoint with a conflicting task",
    );

    // Resolve as the hint says: merge the work branch in, fix, done again.
    let merge = repo
        .command("git", &wy)
        .args(["merge", "-q", "orch/p/work"])
        .output()
        .expect("merge");
    assert!(!merge.status.success(), "the merge conflicts");
    put(&wy, "README", "from x and y\n");
    repo.git_in(&wy, &["add", "README"]);
    repo.git_in(&wy, &["commit", "-q", "--no-edit"]);
    let out = repo.orch(&["task", "done", "y"]);
    assert_eq!(code(&out), Some(0), "resolved task lands: {}", stderr(&out));
    assert_eq!(task_state(&status_json(&repo), "y"), "done");
    assert_eq!(
        repo.show("orch/p/work:README").as_deref(),
        Some("from x and y\n")
    );
    assert_eq!(repo.show("orch/p/work:x.txt").as_deref(), Some("x\n"));
    repo.fsck();
}

#[test]
fn scope_violation_fails_the_task_and_keeps_work() {
    let repo = new_started(&manual());
    let work = repo.rev("orch/p/work").expect("work");
    let wt = task_start(&repo, "a");
    put(&wt, "a/ok.txt", "fine\n");
    put(&wt, "elsewhere.txt", "not mine\n");
    let out = repo.orch(&["task", "done", "a", "-m", "too wide"]);
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("elsewhere.txt"), "{}", stderr(&out));
    assert_eq!(
        repo.rev("orch/p/work").as_deref(),
        Some(work.as_str()),
        "not merged"
    );
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "failed");
    assert!(st["tasks"][0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("elsewhere.txt")));
    assert_eq!(
        repo.show("orch/p/tasks/a:elsewhere.txt").as_deref(),
        Some("not mine\n"),
        "kept on its branch"
    );
    assert!(
        repo.show(&format!("orch/p/state:{}", handoff_path("a")))
            .is_none(),
        "no handoff for an unlanded task"
    );
    repo.fsck();
}

fn with_merge(strategy: &str) -> String {
    format!(
        "name = \"p\"\n[defaults]\nmerge = \"{strategy}\"\n{}",
        &manual().replace("name = \"p\"", "")
    )
}

#[test]
fn squash_and_rebase_shape_the_history() {
    // squash: one commit with a single parent, the task's changes in it.
    let repo = new_started(&with_merge("squash"));
    let base = repo.rev("orch/p/work").expect("work");
    let wt = task_start(&repo, "a");
    put(&wt, "a/one.txt", "1\n");
    repo.git_in(&wt, &["add", "-A"]);
    repo.git_in(&wt, &["commit", "-q", "-m", "first"]);
    put(&wt, "a/two.txt", "2\n");
    repo.orch_ok(&["task", "done", "a", "-m", "second"]);
    assert_eq!(
        parents(&repo, "orch/p/work"),
        std::slice::from_ref(&base),
        "squash: one parent"
    );
    assert_eq!(
        repo.git(&["rev-list", "--count", &format!("{base}..orch/p/work")])
            .trim(),
        "1"
    );
    assert_eq!(repo.show("orch/p/work:a/one.txt").as_deref(), Some("1\n"));
    assert_eq!(repo.show("orch/p/work:a/two.txt").as_deref(), Some("2\n"));
    assert!(repo
        .git(&["log", "-1", "--format=%B", "orch/p/work"])
        .contains("Task A"));
    repo.fsck();

    // rebase: each task commit replayed, linear, messages kept.
    let repo = new_started(&with_merge("rebase"));
    let base = repo.rev("orch/p/work").expect("work");
    let wt = task_start(&repo, "a");
    put(&wt, "a/one.txt", "1\n");
    repo.git_in(&wt, &["add", "-A"]);
    repo.git_in(&wt, &["commit", "-q", "-m", "first"]);
    put(&wt, "a/two.txt", "2\n");
    repo.orch_ok(&["task", "done", "a", "-m", "second"]);
    let log = repo.git(&["log", "--format=%s %p", &format!("{base}..orch/p/work")]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert!(
        lines[0].starts_with("second ") && lines[1].starts_with("first "),
        "{log}"
    );
    assert!(
        lines.iter().all(|l| l.split_whitespace().count() == 2),
        "rebase: no merges: {log}"
    );
    assert_eq!(parents(&repo, "orch/p/work~1"), std::slice::from_ref(&base));
    // b lands on top of a's rebased commits.
    let wt = task_start(&repo, "b");
    assert_eq!(
        repo.git_in(&wt, &["rev-parse", "HEAD"]).trim(),
        repo.rev("orch/p/work").expect("work")
    );
    put(&wt, "b/b.txt", "b\n");
    repo.orch_ok(&["task", "done", "b", "-m", "b work"]);
    assert_eq!(
        repo.git(&["rev-list", "--count", "--merges", "orch/p/work"])
            .trim(),
        "0"
    );
    assert_eq!(
        repo.git(&["rev-list", "--count", &format!("{base}..orch/p/work")])
            .trim(),
        "3"
    );
    repo.fsck();
}

// ---------------------------------------------------------------- refusals

#[test]
fn refused_transitions_change_nothing() {
    let repo = new_started(&manual());
    let wt = task_start(&repo, "a");
    put(&wt, "a/wip.txt", "wip\n");
    let plan = repo.scratch().join("plan.toml");
    let missing = repo.scratch().join("missing.md");
    let table: &[&[&str]] = &[
        &["task", "done", "b"],            // pending
        &["task", "fail", "b"],            // pending
        &["task", "reset", "b"],           // already pending
        &["task", "start", "b"],           // depends on a, not done
        &["task", "start", "c"],           // later phase
        &["checkpoint"],                   // unfinished tasks
        &["checkpoint", "--phase", "two"], // not the current phase
        &["rollback", "--to", "one"],      // not checkpointed
        &["rollback", "--undo"],           // no rollback
        &["finish"],                       // not finished
        &["start", arg(&plan)],            // already started
        &["task", "done", "a", "--handoff", arg(&missing)],
        &["status", "nope"],
        &["log", "nope"],
        &["task", "start", "a", "--plan", "nope"],
        &["checkpoint", "--phase", "nope"],
        &["rollback", "--to", "nope"],
        &["task", "done", "nope"],
        &["task", "skip", "nope"],
        &["task", "start", "a..b"],
        &["task", "done", "x.lock"],
        &["status", "a..b"],
        &["task", "start", "a", "--plan", "a..b"],
        &["checkpoint", "--phase", "a..b"],
        &["rollback", "--to", "a..b"],
        &["checkpoint", "p", "--phase", "-x"],
        &["task", "start", "c", "--plan", "p/x"],
    ];
    for args in table {
        let refs = repo.refs();
        let wts = wt_list(&repo);
        let out = repo.orch(args);
        assert_refused(&out, &format!("{args:?}"));
        let err = stderr(&out);
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{args:?}: one error line: {err}"
        );
        assert_eq!(repo.refs(), refs, "{args:?} changed refs");
        assert_eq!(wt_list(&repo), wts, "{args:?} changed worktrees");
    }
    assert_eq!(
        std::fs::read_to_string(wt.join("a/wip.txt"))
            .ok()
            .as_deref(),
        Some("wip\n")
    );
    assert_eq!(task_state(&status_json(&repo), "a"), "running");

    // Done tasks cannot go back, nor can tasks of a checkpointed phase.
    repo.orch_ok(&["task", "done", "a"]);
    task_start(&repo, "b");
    repo.orch_ok(&["task", "done", "b"]);
    for args in [
        &["task", "reset", "a"][..],
        &["task", "fail", "a"],
        &["task", "done", "a"],
        &["task", "start", "a"],
    ] {
        let refs = repo.refs();
        assert_refused(&repo.orch(args), &format!("{args:?} on a done task"));
        assert_eq!(repo.refs(), refs);
    }
    repo.orch_ok(&["checkpoint"]);
    for args in [
        &["checkpoint", "--phase", "one"][..],
        &["task", "skip", "b"],
        &["rollback", "--to", "two"],
    ] {
        let refs = repo.refs();
        assert_refused(&repo.orch(args), &format!("{args:?} after the checkpoint"));
        assert_eq!(repo.refs(), refs);
    }
    repo.fsck();
}

// ---------------------------------------------------------------- checkpoint

/// A plan whose gates record where and with what they ran. `pass` decides
/// the phase gate: it passes while the file `pass` exists in the scratch dir.
fn gated(scratch: &Path) -> String {
    let s = scratch.display();
    format!(
        r#"
name = "g"

[[gates]]
name = "unit"
run = "touch marker; pwd > '{s}/unit.pwd'; echo \"$ORCH_PLAN $ORCH_GATE $ORCH_COMMIT\" > '{s}/unit.env'; echo run >> '{s}/unit.count'"

[[phases]]
id = "one"

  [[phases.gates]]
  name = "judge"
  run = "echo judging; test -f '{s}/pass'"

  [[phases.tasks]]
  id = "a"
  files = ["a/**"]

[[phases]]
id = "two"

  [[phases.tasks]]
  id = "b"
  files = ["b/**"]
"#
    )
}

fn count_runs(scratch: &Path) -> usize {
    std::fs::read_to_string(scratch.join("unit.count")).map_or(0, |t| t.lines().count())
}

#[test]
fn checkpoint_runs_gates_apart_and_tags_on_success() {
    let repo = TestRepo::new();
    let scratch = repo.scratch();
    let plan = repo.plan("g.toml", &gated(&scratch));
    repo.orch_ok(&["start", arg(&plan)]);
    let wt = task_start(&repo, "a");
    put(&wt, "a/a.txt", "a\n");
    repo.orch_ok(&["task", "done", "a"]);
    let work = repo.rev("orch/g/work").expect("work");

    // Failing: exit 1, phase failed, no tag, log kept where it says.
    let refs_before = refs_under(&repo, "refs/tags/");
    let out = repo.orch(&["checkpoint"]);
    assert_eq!(code(&out), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("judge") && err.contains("failed"), "{err}");
    assert_eq!(
        refs_under(&repo, "refs/tags/"),
        refs_before,
        "no tag on failure"
    );
    let st = status_json(&repo);
    assert_eq!(phase(&st, "one")["state"], "failed");
    assert_eq!(phase(&st, "one")["checkpoint"], Value::Null);
    assert_eq!(st["phase"], "one");
    let marker = "full log: `git orch ";
    let at = err.find(marker).expect("the log's command is printed");
    let command: String = err[at + marker.len()..]
        .chars()
        .take_while(|c| *c != '`')
        .collect();
    let args: Vec<&str> = command.split(' ').collect();
    let log = repo.orch_ok(&args);
    assert!(log.contains("judging"), "{log}");
    assert!(state_summaries(&repo, "g")[0].contains("checkpoint one: failed"));

    // The gate ran in its own checkout, never in the user's tree.
    assert!(
        !repo.path.join("marker").exists(),
        "a gate wrote into the user's tree"
    );
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    let pwd = std::fs::read_to_string(scratch.join("unit.pwd")).expect("gate ran");
    assert_ne!(Path::new(pwd.trim()), repo.path.as_path());
    assert!(
        !Path::new(pwd.trim()).exists(),
        "the gate checkout is removed afterwards"
    );
    assert_eq!(
        std::fs::read_to_string(scratch.join("unit.env"))
            .expect("env")
            .trim(),
        format!("g unit {work}")
    );
    assert!(
        !wt_list(&repo).contains("gates"),
        "no gate worktree left: {}",
        wt_list(&repo)
    );
    assert_eq!(count_runs(&scratch), 1);

    // Fixed: passing; the cached plan-wide gate is not run again.
    std::fs::write(scratch.join("pass"), "").expect("pass");
    let out = repo.orch(&["checkpoint"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("gate unit: passed (cached)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(count_runs(&scratch), 1, "cached gate not re-run");
    assert_eq!(
        repo.git(&["cat-file", "-t", "refs/tags/orch/g/one"]).trim(),
        "tag"
    );
    assert_eq!(
        repo.rev("orch/g/one^{commit}").as_deref(),
        Some(work.as_str())
    );
    let message = repo.git(&["tag", "-l", "--format=%(contents)", "orch/g/one"]);
    for gate in ["unit", "judge"] {
        let line = message
            .lines()
            .find(|l| l.starts_with(&format!("gate {gate}: ")))
            .unwrap_or_else(|| panic!("{message}"));
        assert!(line.contains("passed"), "{line}");
        let secs = line.split(" in ").nth(1).unwrap_or("");
        assert!(
            secs.split('s')
                .next()
                .is_some_and(|n| n.parse::<f64>().is_ok()),
            "seconds: {line}"
        );
    }
    let st = status_json(&repo);
    assert_eq!(phase(&st, "one")["state"], "checkpointed");
    assert_eq!(phase(&st, "one")["checkpoint"], work.as_str());
    assert_eq!(phase(&st, "two")["state"], "active");
    assert_eq!(st["phase"], "two");
    assert!(!repo.path.join("marker").exists());

    // Phase two changes nothing: same tree, the plan-wide gate is cached.
    task_start(&repo, "b");
    repo.orch_ok(&["task", "done", "b"]);
    let v = repo.orch_json(&["checkpoint", "--json"]);
    assert_eq!(v["gates"][0]["cached"], true, "{v}");
    assert_eq!(v["passed"], true);
    assert_eq!(v["next_phase"], Value::Null);
    assert_eq!(count_runs(&scratch), 1);
    let st = status_json(&repo);
    assert_eq!(st["phase"], Value::Null);
    assert_eq!(
        repo.git(&["cat-file", "-t", "refs/tags/orch/g/two"]).trim(),
        "tag"
    );
    assert_refused(&repo.orch(&["checkpoint"]), "everything checkpointed");
    repo.fsck();
}

#[test]
fn checkpoint_without_gates_tags_and_no_cache_reruns() {
    let repo = TestRepo::new();
    let scratch = repo.scratch();
    let plan = repo.plan("g.toml", &gated(&scratch));
    std::fs::write(scratch.join("pass"), "").expect("pass");
    repo.orch_ok(&["start", arg(&plan)]);
    repo.orch_ok(&["task", "skip", "a"]);
    repo.orch_ok(&["checkpoint"]);
    assert_eq!(count_runs(&scratch), 1);
    repo.orch_ok(&["task", "skip", "b"]);
    repo.orch_ok(&["checkpoint", "--no-cache"]);
    assert_eq!(count_runs(&scratch), 2, "--no-cache runs the gate again");
    repo.fsck();
}

// ---------------------------------------------------------------- rollback

#[test]
fn rollback_preserves_everything_and_undo_restores_it() {
    let repo = new_started(&manual());
    let base = repo.rev("orch/p/work").expect("work");
    for id in ["a", "b"] {
        let wt = task_start(&repo, id);
        put(&wt, &format!("{id}/f.txt"), id);
        repo.orch_ok(&["task", "done", id]);
    }
    repo.orch_ok(&["checkpoint"]);
    let cp_one = repo.rev("orch/p/work").expect("work");
    let tag_one = repo.rev("refs/tags/orch/p/one").expect("tag");
    // Phase two: d landed, c in progress with a commit and a dirty file.
    let wd = task_start(&repo, "d");
    put(&wd, "d/f.txt", "d\n");
    repo.orch_ok(&["task", "done", "d"]);
    let wc = task_start(&repo, "c");
    put(&wc, "c/committed.txt", "committed\n");
    repo.git_in(&wc, &["add", "-A"]);
    repo.git_in(&wc, &["commit", "-q", "-m", "c commit"]);
    let c_head = repo.git_in(&wc, &["rev-parse", "HEAD"]).trim().to_string();
    put(&wc, "c/dirty.txt", "uncommitted\n");
    put(&wc, "c/committed.txt", "changed but not committed\n");
    let work = repo.rev("orch/p/work").expect("work");
    let d_head = repo.rev("orch/p/tasks/d").expect("d");
    let st_before = status_json(&repo);
    let refs_before = refs_under(&repo, "refs/heads/orch/")
        .into_iter()
        .chain(refs_under(&repo, "refs/tags/"))
        .collect::<Vec<_>>();

    // Default: the latest checkpoint.
    let out = repo.orch(&["rollback"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(repo.rev("orch/p/work").as_deref(), Some(cp_one.as_str()));
    assert_eq!(
        repo.rev("refs/tags/orch/p/one").as_deref(),
        Some(tag_one.as_str()),
        "its own tag stays"
    );
    let st = status_json(&repo);
    for id in ["c", "d"] {
        assert_eq!(task_state(&st, id), "pending", "{id}");
        assert!(
            repo.rev(&format!("refs/heads/orch/p/tasks/{id}")).is_none(),
            "{id} branch gone"
        );
    }
    assert_eq!(task_state(&st, "a"), "done");
    assert!(!wc.exists() && !wd.exists(), "worktrees removed");
    let kept = refs_under(&repo, "refs/orch/p/preserved/");
    let find = |suffix: &str| {
        kept.iter()
            .find(|(n, _)| n.ends_with(suffix))
            .map(|(_, id)| id.clone())
    };
    assert_eq!(
        find("/work").as_deref(),
        Some(work.as_str()),
        "old work head kept: {kept:?}"
    );
    assert_eq!(
        find("/tasks/c").as_deref(),
        Some(c_head.as_str()),
        "{kept:?}"
    );
    assert_eq!(
        find("/tasks/d").as_deref(),
        Some(d_head.as_str()),
        "{kept:?}"
    );
    let snap = find("/worktrees/c").expect("dirty worktree kept");
    assert_eq!(
        repo.show(&format!("{snap}:c/dirty.txt")).as_deref(),
        Some("uncommitted\n")
    );
    assert_eq!(
        repo.show(&format!("{snap}:c/committed.txt")).as_deref(),
        Some("changed but not committed\n")
    );
    for (name, _) in &kept {
        assert!(
            stderr(&out).contains(name.as_str()),
            "rollback prints {name}"
        );
    }
    repo.fsck();

    // Undo: work head, tags, task states, the dirty worktree.
    let out = repo.orch(&["rollback", "--undo"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let refs_after = refs_under(&repo, "refs/heads/orch/")
        .into_iter()
        .chain(refs_under(&repo, "refs/tags/"))
        .collect::<Vec<_>>();
    let without_state = |v: &[(String, String)]| {
        v.iter()
            .filter(|(n, _)| !n.ends_with("/state"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        without_state(&refs_after),
        without_state(&refs_before),
        "branches and tags restored"
    );
    let st = status_json(&repo);
    for id in ["a", "b", "c", "d"] {
        assert_eq!(task_state(&st, id), task_state(&st_before, id), "{id}");
    }
    assert_eq!(st["work"], work.as_str());
    assert_eq!(
        std::fs::read_to_string(wc.join("c/dirty.txt"))
            .ok()
            .as_deref(),
        Some("uncommitted\n")
    );
    assert_eq!(
        std::fs::read_to_string(wc.join("c/committed.txt"))
            .ok()
            .as_deref(),
        Some("changed but not committed\n")
    );
    assert_eq!(repo.git_in(&wc, &["rev-parse", "HEAD"]).trim(), c_head);
    assert_refused(&repo.orch(&["rollback", "--undo"]), "undo twice");
    repo.fsck();

    // --to start: every tag after start goes (kept), every task pending.
    let out = repo.orch(&["rollback", "--to", "start"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(repo.rev("orch/p/work").as_deref(), Some(base.as_str()));
    assert!(
        repo.rev("refs/tags/orch/p/one").is_none(),
        "later tag deleted"
    );
    assert!(repo.rev("refs/tags/orch/p/start").is_some());
    let st = status_json(&repo);
    assert!(
        ["a", "b", "c", "d"]
            .iter()
            .all(|id| task_state(&st, id) == "pending"),
        "{st}"
    );
    assert_eq!(phase(&st, "one")["state"], "active");
    let kept = refs_under(&repo, "refs/orch/p/preserved/");
    let tag_kept = kept
        .iter()
        .find(|(n, _)| n.ends_with("/tags/one"))
        .expect("deleted tag kept");
    assert_eq!(tag_kept.1, tag_one, "the tag object itself is kept");
    assert_eq!(repo.git(&["cat-file", "-t", &tag_kept.1]).trim(), "tag");
    assert_eq!(
        wt_list(&repo).matches("worktree ").count(),
        1,
        "only the main worktree: {}",
        wt_list(&repo)
    );
    repo.fsck();

    let out = repo.orch(&["rollback", "--undo"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(
        repo.rev("refs/tags/orch/p/one").as_deref(),
        Some(tag_one.as_str()),
        "same tag object"
    );
    assert_eq!(repo.rev("orch/p/work").as_deref(), Some(work.as_str()));
    let st = status_json(&repo);
    for id in ["a", "b", "c", "d"] {
        assert_eq!(task_state(&st, id), task_state(&st_before, id), "{id}");
    }
    assert_eq!(phase(&st, "one")["state"], "checkpointed");
    assert_eq!(
        std::fs::read_to_string(wc.join("c/dirty.txt"))
            .ok()
            .as_deref(),
        Some("uncommitted\n")
    );

    // --to a phase: the same as the default here; then nothing left to roll back.
    repo.orch_ok(&["task", "reset", "c"]);
    repo.orch_ok(&["rollback", "--to", "one"]);
    assert_eq!(repo.rev("orch/p/work").as_deref(), Some(cp_one.as_str()));
    let refs = repo.refs();
    assert_refused(
        &repo.orch(&["rollback", "--to", "one"]),
        "nothing to roll back",
    );
    assert_eq!(repo.refs(), refs);
    repo.fsck();
}

#[test]
fn undo_is_refused_once_the_plan_moved_on() {
    let repo = new_started(&manual());
    repo.orch_ok(&["task", "skip", "a"]);
    repo.orch_ok(&["task", "skip", "b"]);
    repo.orch_ok(&["checkpoint"]);
    let wt = task_start(&repo, "c");
    put(&wt, "c/x", "x\n");
    repo.orch_ok(&["task", "done", "c"]);
    repo.orch_ok(&["rollback"]);
    let wt = task_start(&repo, "d");
    put(&wt, "d/x", "x\n");
    repo.orch_ok(&["task", "done", "d"]);
    let refs = repo.refs();
    assert_refused(&repo.orch(&["rollback", "--undo"]), "undo after new work");
    assert_eq!(repo.refs(), refs);
    repo.fsck();
}

// ---------------------------------------------------------------- finish

#[test]
fn finish_cleans_up_a_checkpointed_plan_and_keeps_the_record() {
    let repo = new_started(&manual());
    let refs = repo.refs();
    assert_refused(&repo.orch(&["finish"]), "finish before the end");
    assert_eq!(repo.refs(), refs);
    for id in ["a", "b"] {
        let wt = task_start(&repo, id);
        put(&wt, &format!("{id}/f"), id);
        repo.orch_ok(&["task", "done", id]);
    }
    repo.orch_ok(&["checkpoint"]);
    let wt = task_start(&repo, "c");
    put(&wt, "c/f", "c\n");
    repo.orch_ok(&["task", "done", "c"]);
    repo.orch_ok(&["task", "skip", "d"]);
    assert_refused(
        &repo.orch(&["finish"]),
        "finish with phase two not checkpointed",
    );
    repo.orch_ok(&["checkpoint"]);
    let work = repo.rev("orch/p/work").expect("work");
    let tags = refs_under(&repo, "refs/tags/orch/p/");
    assert_eq!(tags.len(), 3);
    assert!(!refs_under(&repo, "refs/heads/orch/p/tasks/").is_empty());

    let out = repo.orch(&["finish"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(
        refs_under(&repo, "refs/heads/orch/p/tasks/").is_empty(),
        "task branches gone"
    );
    assert_eq!(
        wt_list(&repo).matches("worktree ").count(),
        1,
        "worktrees gone: {}",
        wt_list(&repo)
    );
    assert_eq!(refs_under(&repo, "refs/tags/orch/p/"), tags, "tags kept");
    assert_eq!(repo.rev("orch/p/work").as_deref(), Some(work.as_str()));
    assert!(repo.rev("orch/p/state").is_some());
    assert_eq!(state_summaries(&repo, "p")[0], "plan p: finished");
    let st = status_json(&repo);
    assert_eq!(st["finished"], true);
    assert_eq!(
        repo.orch_json(&["list", "--json"])["plans"][0]["finished"],
        true
    );
    let refs = repo.refs();
    assert_refused(&repo.orch(&["finish"]), "finish twice");
    assert_refused(
        &repo.orch(&["task", "start", "a"]),
        "task start on a finished plan",
    );
    assert_refused(&repo.orch(&["rollback"]), "rollback of a finished plan");
    assert_eq!(repo.refs(), refs);
    repo.fsck();
}

// ---------------------------------------------------------------- repair

#[test]
fn any_command_repairs_refs_from_the_state_branch() {
    let repo = new_started(&manual());
    let wt = task_start(&repo, "a");
    put(&wt, "a/f", "a\n");
    repo.orch_ok(&["task", "done", "a"]);
    repo.orch_ok(&["task", "skip", "b"]);
    repo.orch_ok(&["checkpoint"]);
    let work = repo.rev("refs/heads/orch/p/work").expect("work");
    let one = repo.rev("refs/tags/orch/p/one").expect("tag");
    let start = repo.rev("refs/tags/orch/p/start").expect("tag");
    let state = repo.rev("refs/heads/orch/p/state").expect("state");

    repo.git(&["update-ref", "-d", "refs/heads/orch/p/work"]);
    repo.git(&["update-ref", "-d", "refs/tags/orch/p/one"]);
    repo.git(&["update-ref", "-d", "refs/tags/orch/p/start"]);
    let out = repo.orch(&["status"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("repair"),
        "says what it repaired: {}",
        stderr(&out)
    );
    assert_eq!(
        repo.rev("refs/heads/orch/p/work").as_deref(),
        Some(work.as_str())
    );
    assert_eq!(
        repo.rev("refs/tags/orch/p/one").as_deref(),
        Some(one.as_str()),
        "same tag object"
    );
    assert_eq!(
        repo.rev("refs/tags/orch/p/start").as_deref(),
        Some(start.as_str()),
        "same tag object"
    );
    assert_eq!(
        repo.rev("refs/heads/orch/p/state").as_deref(),
        Some(state.as_str()),
        "repair is no state change"
    );
    assert!(
        refs_under(&repo, "refs/orch/p/preserved/").is_empty(),
        "nothing to preserve"
    );
    repo.fsck();

    // Moved elsewhere by hand, not by a fast-forward (a commit with a
    // history of its own): the foreign commit is kept, work restored. (A
    // fast-forward is adopted instead: tests/work_branch.rs.)
    let tree = repo
        .git(&["rev-parse", "orch/p/work^{tree}"])
        .trim()
        .to_string();
    let foreign = repo
        .git(&["commit-tree", &tree, "-m", "foreign"])
        .trim()
        .to_string();
    repo.git(&["update-ref", "refs/heads/orch/p/work", &foreign]);
    // A tag moved by hand, too.
    repo.git(&["update-ref", "refs/tags/orch/p/one", &foreign]);
    let out = repo.orch(&["log"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(
        repo.rev("refs/heads/orch/p/work").as_deref(),
        Some(work.as_str())
    );
    assert_eq!(
        repo.rev("refs/tags/orch/p/one").as_deref(),
        Some(one.as_str())
    );
    let kept = refs_under(&repo, "refs/orch/p/preserved/repair/");
    assert!(
        !kept.is_empty() && kept.iter().all(|(_, id)| *id == foreign),
        "{kept:?}"
    );
    for (name, _) in &kept {
        assert!(
            stderr(&out).contains(name.as_str()),
            "prints where: {}",
            stderr(&out)
        );
    }
    // Quiet once repaired.
    let out = repo.orch(&["status"]);
    assert!(!stderr(&out).contains("repair"), "{}", stderr(&out));
    repo.fsck();
}

// ---------------------------------------------------------------- races

fn many(name: &str, n: usize) -> String {
    let mut text = format!("name = \"{name}\"\n[[phases]]\nid = \"one\"\n");
    for i in 0..n {
        text += &format!("  [[phases.tasks]]\n  id = \"t{i}\"\n  files = [\"t{i}/**\"]\n");
    }
    text
}

/// Runs each argument list as its own `git orch` process, all at once.
fn concurrently(repo: &TestRepo, runs: Vec<Vec<String>>) -> Vec<Output> {
    let children: Vec<_> = runs
        .iter()
        .map(|args| {
            repo.command(BIN, &repo.path)
                .args(args)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect()
}

#[test]
fn racing_processes_never_lose_an_update() {
    const N: usize = 6;
    let repo = new_started(&many("r", N));
    let starts = concurrently(
        &repo,
        (0..N)
            .map(|i| vec!["task".into(), "start".into(), format!("t{i}")])
            .collect(),
    );
    let mut paths = Vec::new();
    for (i, out) in starts.iter().enumerate() {
        assert_eq!(code(out), Some(0), "start t{i}: {}", stderr(out));
        let path = PathBuf::from(stdout(out).trim());
        put(&path, &format!("t{i}/file"), &format!("{i}\n"));
        paths.push(path);
    }
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), N);
    let dones = concurrently(
        &repo,
        (0..N)
            .map(|i| vec!["task".into(), "done".into(), format!("t{i}")])
            .collect(),
    );
    for (i, out) in dones.iter().enumerate() {
        assert_eq!(code(out), Some(0), "done t{i}: {}", stderr(out));
    }
    // Consistent right away, before any further command repairs anything.
    let state = state_json(&repo, "r");
    assert_eq!(
        repo.rev("refs/heads/orch/r/work").as_deref(),
        state["work"].as_str(),
        "work ref follows the state"
    );
    assert!(
        refs_under(&repo, "refs/orch/").is_empty(),
        "nothing was taken for foreign: {:?}",
        refs_under(&repo, "refs/orch/")
    );
    let files = tree_files(&repo, "orch/r/work");
    for i in 0..N {
        let record = task_record(&repo, "r", &format!("t{i}")).expect("a record");
        assert_eq!(record["state"], "done", "t{i}");
        assert!(
            files.contains(&format!("t{i}/file")),
            "t{i} landed: {files:?}"
        );
    }
    assert_eq!(
        state_commits(&repo, "r"),
        1 + 2 * N,
        "one state commit per transition"
    );
    let log = state_summaries(&repo, "r");
    for i in 0..N {
        assert!(
            log.contains(&format!("task t{i}: running (by hand)")),
            "{log:?}"
        );
        assert!(log.contains(&format!("task t{i}: done")), "{log:?}");
    }
    assert_eq!(
        repo.git(&["rev-list", "--count", "--merges", "orch/r/work"])
            .trim(),
        N.to_string()
    );
    repo.fsck();
}

/// Racing `task start`s of one task by hand on one machine claim it once
/// and all print its one worktree (a repeated start gives it back).
#[test]
fn racers_for_the_same_task_have_one_winner() {
    const N: usize = 4;
    let repo = new_started(&many("r", 1));
    let outs = concurrently(
        &repo,
        (0..N)
            .map(|_| vec!["task".into(), "start".into(), "t0".into()])
            .collect(),
    );
    let paths: Vec<String> = outs.iter().map(|o| stdout(o).trim().to_string()).collect();
    for out in &outs {
        assert_eq!(
            code(out),
            Some(0),
            "every start by hand succeeds: {}",
            both(out)
        );
    }
    assert!(
        paths.iter().all(|p| *p == paths[0]),
        "one worktree: {paths:?}"
    );
    let path = PathBuf::from(&paths[0]);
    assert!(path.join(".git").exists());
    assert_eq!(
        task_record(&repo, "r", "t0").expect("record")["attempts"],
        1,
        "claimed once"
    );
    put(&path, "t0/file", "0\n");
    let outs = concurrently(
        &repo,
        (0..N)
            .map(|_| vec!["task".into(), "done".into(), "t0".into()])
            .collect(),
    );
    let winners = outs.iter().filter(|o| code(o) == Some(0)).count();
    assert_eq!(
        winners,
        1,
        "one done wins: {:?}",
        outs.iter().map(stderr).collect::<Vec<_>>()
    );
    for out in outs.iter().filter(|o| code(o) != Some(0)) {
        assert_refused(out, "losing task done");
    }
    let log = state_summaries(&repo, "r");
    assert_eq!(
        log.iter().filter(|s| *s == "task t0: done").count(),
        1,
        "{log:?}"
    );
    assert_eq!(
        log.iter()
            .filter(|s| s.starts_with("task t0: running"))
            .count(),
        1,
        "{log:?}"
    );
    assert_eq!(
        repo.rev("orch/r/work").as_deref(),
        state_json(&repo, "r")["work"].as_str()
    );
    assert_eq!(repo.show("orch/r/work:t0/file").as_deref(), Some("0\n"));
    repo.fsck();
}

#[test]
fn commits_keep_the_identity_git_would_use() {
    // The harness sets identity only through GIT_AUTHOR_*/GIT_COMMITTER_*,
    // as CI machines do; git-orch must not replace it with its own.
    let repo = new_started(&manual());
    let wt = task_start(&repo, "a");
    put(&wt, "a/f", "a\n");
    repo.orch_ok(&["task", "done", "a", "-m", "a"]);
    let who = |fmt: &str, rev: &str| {
        repo.git(&["log", "-1", &format!("--format={fmt}"), rev])
            .trim()
            .to_string()
    };
    assert_eq!(
        who("%an <%ae>", "orch/p/tasks/a"),
        "Test Author <author@example.com>"
    );
    assert_eq!(
        who("%cn <%ce>", "orch/p/tasks/a"),
        "Test Committer <committer@example.com>"
    );
    assert_eq!(
        who("%cn <%ce>", "orch/p/work"),
        "Test Committer <committer@example.com>"
    );
    assert_eq!(
        who("%cn <%ce>", "orch/p/state"),
        "Test Committer <committer@example.com>"
    );
    let tagger = repo.git(&[
        "tag",
        "-l",
        "--format=%(taggername) %(taggeremail)",
        "orch/p/start",
    ]);
    assert_eq!(tagger.trim(), "Test Committer <committer@example.com>");
}

#[test]
fn yaml_toml_and_crlf_plans_start_the_same_way() {
    let toml = TestRepo::new();
    toml.orch_ok(&["start", arg(&fixture("good.toml"))]);
    let yaml = TestRepo::new();
    yaml.orch_ok(&["start", arg(&fixture("good.yaml"))]);
    let plan = |r: &TestRepo| -> Value {
        serde_json::from_str(
            &r.show("orch/notifications/state:plan.json")
                .expect("plan.json"),
        )
        .expect("json")
    };
    assert_eq!(plan(&toml), plan(&yaml), "one schema, one plan");
    let st = status_json(&yaml);
    assert_eq!(task_state(&st, "docs"), "skipped", "skip = true");
    assert_eq!(st["tasks"][0]["estimate_seconds"], 2700);
    assert!(yaml
        .show("orch/notifications/state:source/good.yaml")
        .is_some());

    let crlf = TestRepo::new();
    crlf.orch_ok(&["start", arg(&fixture("bom-crlf.toml"))]);
    assert_eq!(status_json(&crlf)["plan"], "crlf");
    crlf.fsck();
}

#[test]
fn tasks_are_driven_from_inside_their_worktree() {
    let repo = new_started(&manual());
    let wt = task_start(&repo, "a");
    // An agent in the worktree uses the handoff file it was given.
    let info = repo.orch_json(&["status", "--json"]);
    assert_eq!(task_state(&info, "a"), "running");
    repo.orch_json_in(&wt, &["status", "--json"]);
    put(&wt, "a/from-inside.txt", "x\n");
    let handoff = repo.path.join(".git/orch/tasks/p/a@handoff.md");
    assert!(
        repo.path.join(".git/orch/tasks/p/a.md").exists(),
        "the brief is written"
    );
    std::fs::write(&handoff, "written to ORCH_HANDOFF_FILE\n").expect("handoff");
    let out = repo.orch_in(&wt, &["task", "done", "a", "-m", "inside"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(
        repo.show("orch/p/work:a/from-inside.txt").as_deref(),
        Some("x\n")
    );
    let note = repo
        .show(&format!("orch/p/state:{}", handoff_path("a")))
        .expect("note");
    assert!(note.contains("written to ORCH_HANDOFF_FILE"), "{note}");
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        "",
        "the main tree is untouched"
    );

    // A worktree removed by hand: done is refused with a way out.
    let wt = task_start(&repo, "b");
    repo.git(&["worktree", "remove", "--force", arg(&wt)]);
    let refs = repo.refs();
    let out = repo.orch(&["task", "done", "b"]);
    assert_refused(&out, "done without a worktree");
    assert!(stderr(&out).contains("task reset b"), "{}", stderr(&out));
    assert_eq!(repo.refs(), refs);
    repo.orch_ok(&["task", "reset", "b"]);
    task_start(&repo, "b");
    repo.orch_ok(&["task", "done", "b"]);
    repo.fsck();
}

#[test]
fn rollback_without_checkpoints_returns_to_start() {
    let repo = new_started(&manual());
    let base = repo.rev("orch/p/work").expect("work");
    let wt = task_start(&repo, "a");
    put(&wt, "a/f", "a\n");
    repo.orch_ok(&["task", "done", "a"]);
    let landed = repo.rev("orch/p/work").expect("work");
    let wt = task_start(&repo, "b");
    put(&wt, "b/dirty", "dirty\n");
    let v = repo.orch_json(&["rollback", "--json"]);
    assert_eq!(v["to"], "start");
    assert_eq!(repo.rev("orch/p/work").as_deref(), Some(base.as_str()));
    let kept: Vec<String> = v["preserved"]
        .as_array()
        .expect("preserved")
        .iter()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect();
    assert!(
        kept.iter()
            .any(|r| r.ends_with("/work") && repo.rev(r).as_deref() == Some(landed.as_str())),
        "{kept:?}"
    );
    let snap = kept
        .iter()
        .find(|r| r.ends_with("/worktrees/b"))
        .expect("b's dirty worktree kept");
    assert_eq!(
        repo.show(&format!("{snap}:b/dirty")).as_deref(),
        Some("dirty\n")
    );
    for r in &kept {
        assert!(repo.rev(r).is_some(), "{r} exists");
    }
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "pending");
    assert_eq!(task_state(&st, "b"), "pending");
    assert!(!wt.exists());
    // Started again from the start, a lands on the base.
    let wt = task_start(&repo, "a");
    assert_eq!(repo.git_in(&wt, &["rev-parse", "HEAD"]).trim(), base);
    repo.fsck();
}

#[test]
fn a_failed_phase_is_reopened_by_rollback_as_the_hint_says() {
    let repo = TestRepo::new();
    let scratch = repo.scratch();
    let plan = repo.plan("g.toml", &gated(&scratch));
    repo.orch_ok(&["start", arg(&plan)]);
    let wt = task_start(&repo, "a");
    put(&wt, "a/a.txt", "a\n");
    repo.orch_ok(&["task", "done", "a"]);
    let out = repo.orch(&["checkpoint"]);
    assert_eq!(code(&out), Some(1));
    let hint = stderr(&out)
        .lines()
        .find(|l| l.starts_with("hint:"))
        .unwrap_or("")
        .to_string();
    assert!(hint.contains("git orch rollback"), "{hint}");
    // A landed task cannot be reset: the hint must not send the user there.
    assert!(!hint.contains("task reset"), "{hint}");
    assert_refused(
        &repo.orch(&["task", "reset", "a"]),
        "reset of a landed task",
    );
    repo.orch_ok(&["rollback"]);
    let st = status_json(&repo);
    assert_eq!(phase(&st, "one")["state"], "active", "{st}");
    assert_eq!(task_state(&st, "a"), "pending");
    repo.orch_ok(&["rollback", "--undo"]);
    assert_eq!(
        phase(&status_json(&repo), "one")["state"],
        "failed",
        "undo restores exactly"
    );
    repo.fsck();
}

#[test]
fn a_failed_phase_is_fixed_forward_by_reopening_a_task() {
    let repo = TestRepo::new();
    let scratch = repo.scratch();
    let plan = repo.plan("g.toml", &gated(&scratch));
    repo.orch_ok(&["start", arg(&plan)]);
    let wt = task_start(&repo, "a");
    put(&wt, "a/a.txt", "first try\n");
    repo.orch_ok(&["task", "done", "a"]);
    let first_landing = repo.rev("orch/g/work").expect("work");
    assert_eq!(code(&repo.orch(&["checkpoint"])), Some(1));
    assert!(stderr(&repo.orch(&["checkpoint"])).contains("task reopen"));

    // Only a done task can be reopened; the refusal changes nothing.
    let before = repo.refs();
    assert_refused(
        &repo.orch(&["task", "reopen", "b"]),
        "reopen of a pending task",
    );
    assert_eq!(repo.refs(), before);

    repo.orch_ok(&["task", "reopen", "a"]);
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "pending");
    assert_eq!(phase(&st, "one")["state"], "active", "{st}");
    // The landing stays: fixing forward builds on it.
    assert_eq!(
        repo.rev("orch/g/work").as_deref(),
        Some(first_landing.as_str())
    );

    let wt = task_start(&repo, "a");
    assert_eq!(
        std::fs::read_to_string(wt.join("a/a.txt")).expect("file"),
        "first try\n"
    );
    let brief = std::fs::read_to_string(repo.path.join(".git/orch/tasks/g/a.md")).expect("brief");
    assert!(
        brief.contains("gate `judge` failed") && brief.contains("judging"),
        "{brief}"
    );
    put(&wt, "a/a.txt", "second try\n");
    repo.orch_ok(&["task", "done", "a"]);
    std::fs::write(scratch.join("pass"), "").expect("pass marker");
    repo.orch_ok(&["checkpoint"]);
    assert_eq!(
        repo.show("orch/g/one:a/a.txt").as_deref(),
        Some("second try\n")
    );
    // Both landings are in the history of the checkpoint.
    let log = repo.git(&["log", "--format=%s", "orch/g/one"]);
    assert_eq!(log.matches("orch: land task a").count(), 2, "{log}");
    repo.fsck();
}
