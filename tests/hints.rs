//! Hints that fit the tools people already use (issue 23): a failure's
//! hint names the cheapest right recovery for why it failed, a log is
//! named as `git orch log …` (fix-forward attempts too), and the commands
//! around them (`task done` without an id, `task diff`, `check` on
//! `retry_on.exit_codes = [75]`). Real repositories, the real binary.
use crate::common::*;
use std::path::{Path, PathBuf};

fn one_task(body: &str) -> String {
    format!("name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n{body}")
}

/// The lines under `task a failed:` of a failed run's stderr.
fn failure_report(out: &std::process::Output) -> String {
    let text = stderr(out);
    assert!(text.contains("task a failed"), "{}", both(out));
    text
}

#[test]
fn a_failed_command_is_retried_in_place_and_its_log_named_with_git_orch_log() {
    let repo = TestRepo::new();
    started(
        &repo,
        &one_task(
            "  files = [\"a.txt\"]\n  run = \"echo half > a.txt; echo boom-in-the-log; exit 3\"\n",
        ),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let text = failure_report(&out);
    assert!(text.contains("`git orch task retry a`"), "{text}");
    assert!(text.contains("log: `git orch log p a`"), "{text}");
    assert!(!text.contains("git show orch/"), "{text}");
    assert!(!text.contains("task reset a` then"), "{text}");
    // The named command prints the log.
    let log = repo.orch_ok(&["log", "p", "a"]);
    assert!(log.contains("boom-in-the-log"), "{log}");
    // `task next` and a refused `task start` point at the same recovery.
    let next = repo.orch_json(&["task", "next", "--json"]);
    let hint = next["hint"].as_str().unwrap_or_default();
    assert!(hint.contains("git orch task retry a"), "{next}");
    let out = repo.orch(&["task", "start", "a"]);
    assert_refused(&out, "start of a failed task");
    assert!(
        stderr(&out).contains("git orch task retry a"),
        "{}",
        both(&out)
    );
}

#[test]
fn a_timeout_is_retried_in_place_with_a_word_on_the_timeout() {
    let repo = TestRepo::new();
    started(
        &repo,
        &one_task("  files = [\"a.txt\"]\n  timeout = \"1s\"\n  run = \"sleep 20\"\n"),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let text = failure_report(&out);
    assert!(text.contains("timed out"), "{text}");
    assert!(text.contains("`git orch task retry a`"), "{text}");
    assert!(text.contains("`timeout`"), "{text}");
    assert!(!text.contains("task reset a` then"), "{text}");
}

#[test]
fn a_scope_overrun_is_fixed_in_place_and_landed_with_task_done_not_retried() {
    let repo = TestRepo::new();
    started(
        &repo,
        &one_task("  files = [\"a.txt\"]\n  run = \"echo a > a.txt; echo b > b.txt\"\n"),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let text = failure_report(&out);
    assert!(text.contains("outside its"), "{text}");
    assert!(text.contains("`git orch task done a`"), "{text}");
    assert!(text.contains("would overrun again"), "{text}");
    assert!(!text.contains("task retry a"), "{text}");
    assert!(!text.contains("task reset a"), "{text}");
    // The advice works: undo the overrun where it was made, then land it.
    let worktree = repo.path.join(".orch/worktrees/p/a");
    repo.git_in(&worktree, &["rm", "-q", "b.txt"]);
    repo.git_in(&worktree, &["commit", "-q", "-m", "keep to a.txt"]);
    repo.orch_ok(&["task", "done", "a"]);
    assert_eq!(task_state(&status_json(&repo), "a"), "done");
}

#[test]
fn a_fix_forward_attempt_log_is_read_with_git_orch_log() {
    let repo = TestRepo::new();
    let text = format!(
        r#"name = "p"
[agents.writer]
run = '''sh "{fake}" succeed a.txt'''
[agents.fixer]
run = '''echo the-fixer-was-here; sh "{fake}" fix'''

[[phases]]
id = "one"
  [[phases.gates]]
  name = "test"
  run = '''grep -q fixed out.txt 2>/dev/null || {{ echo "fake-test: want 'fixed' in" out.txt; exit 1; }}'''
  [phases.on_gate_failure]
  agent = "fixer"
  attempts = 1
  [[phases.tasks]]
  id = "a"
  files = ["a.txt", "out.txt"]
  agent = "writer"
"#,
        fake = fake_agent().display()
    );
    started(&repo, &text);
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let log = repo.orch_ok(&["log", "p", "one.fix-1"]);
    assert!(log.contains("the-fixer-was-here"), "{log}");
    let json = repo.orch_json(&["log", "p", "one.fix-1", "--json"]);
    assert_eq!(json["phase"], "one", "{json}");
    assert!(
        schema_errors(&json).is_empty(),
        "{:?}",
        schema_errors(&json)
    );
    // `status` names that command, not the path in the state branch.
    let plain = repo.orch_ok(&["status"]);
    assert!(plain.contains("log: git orch log p one.fix-1"), "{plain}");
    assert!(!plain.contains("git show orch/"), "{plain}");
    // One log: `--attempt` is refused.
    let out = repo.orch(&["log", "p", "one.fix-1", "--attempt", "1"]);
    assert_refused(&out, "--attempt on a fix");
}

// ------------------------------- retry_on.exit_codes = [75] is dead

#[test]
fn init_writes_no_retry_on_exit_code_75_and_its_plans_check_without_a_warning() {
    let repo = TestRepo::new();
    repo.orch_ok(&["init", "-o", "p.toml"]);
    repo.orch_ok(&["init", "-o", "p.yaml"]);
    for file in ["p.toml", "p.yaml"] {
        let text = std::fs::read_to_string(repo.path.join(file)).expect("plan");
        // Kind profiles read an agent's limits from what it says; no
        // exit code (75 least of all) is given to retry on.
        assert!(!text.contains("exit_codes"), "{text}");
        assert!(!text.contains("75"), "{file} still retries on 75:\n{text}");
        let v = repo.orch_json(&["check", "--json", file]);
        let warned = v["diagnostics"]
            .as_array()
            .expect("diagnostics")
            .iter()
            .any(|d| d["message"].as_str().unwrap_or("").contains("exit_codes"));
        assert!(!warned, "{file}: {v}");
    }
    let readme = doc_text();
    // Its examples (the lines that set `retry_on`) leave 75 out.
    for line in readme.lines() {
        let line = line.trim_start();
        if line.starts_with("retry_on") {
            assert!(!line.contains("75"), "an example in the docs: {line}");
        }
    }
}

#[test]
fn check_warns_at_its_line_when_retry_on_exit_codes_lists_75() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "plan.toml",
        r#"name = "p"
[agents.claude]
run = "true"
retries = 1
retry_on = { exit_codes = [1, 75], timeout = true }

[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  run = "true"
  retry_on = { exit_codes = [75] }
  retries = 1
"#,
    );
    let file = plan.to_str().expect("utf-8");
    let out = repo.orch(&["check", file]);
    assert_eq!(
        code(&out),
        Some(0),
        "a warning, not an error: {}",
        both(&out)
    );
    let text = stdout(&out);
    assert!(
        text.contains(":5:14: warning: agent `claude`: `retry_on.exit_codes` lists 75"),
        "{text}"
    );
    assert!(
        text.contains(":12:16: warning: task `a`: `retry_on.exit_codes` lists 75"),
        "{text}"
    );
    assert!(text.contains("always parks"), "{text}");
    let v = repo.orch_json(&["check", "--json", file]);
    assert_eq!(v["valid"], true, "{v}");
    let d = &v["diagnostics"][0];
    assert_eq!(d["severity"], "warning", "{v}");
    assert_eq!(d["line"], 5, "{v}");
    // Without 75, no warning.
    let plan = repo.plan("ok.toml", "name = \"q\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  run = \"true\"\n  retry_on = { exit_codes = [1] }\n");
    let v = repo.orch_json(&["check", "--json", plan.to_str().expect("utf-8")]);
    let warned = v["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .any(|d| d["message"].as_str().unwrap_or("").contains("exit_codes"));
    assert!(!warned, "{v}");
}

// ------------------------------------ `task start` in a shell, refused

#[test]
fn a_refused_task_start_prints_nothing_on_stdout_and_the_safe_idiom_stops() {
    let repo = TestRepo::new();
    started(
        &repo,
        "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a.txt\"]\n  [[phases.tasks]]\n  id = \"b\"\n  files = [\"b.txt\"]\n  depends_on = [\"a\"]\n",
    );
    // Refused for several reasons: a task not ready, an unknown one, one
    // already running by hand elsewhere is covered by manual.rs.
    for id in ["b", "nope"] {
        let out = repo.orch(&["task", "start", id]);
        assert_refused(&out, id);
        assert_eq!(stdout(&out), "", "{id}: stdout of a refused start");
    }
    // The README's idiom stops where a bare `cd "$(…)"` would go on in
    // the main checkout.
    let script = "wt=$(git orch task start b) && cd \"$wt\" && echo entered; pwd";
    let out = repo
        .command("sh", &repo.path)
        .args(["-c", script])
        .output()
        .expect("sh");
    assert!(!stdout(&out).contains("entered"), "{}", both(&out));
    let bare = "cd \"$(git orch task start b)\" && echo entered-the-main-checkout";
    let out = repo
        .command("sh", &repo.path)
        .args(["-c", bare])
        .output()
        .expect("sh");
    assert!(
        stdout(&out).contains("entered-the-main-checkout"),
        "why the README must not show it: {}",
        both(&out)
    );
    // The README shows only the safe idiom in its examples.
    let readme = doc_text();
    for line in readme.lines() {
        assert!(
            !line.trim_start().starts_with("cd \"$(git orch task start"),
            "an unsafe example in the docs: {line}"
        );
    }
    assert!(readme.contains("wt=$(git orch task start schema) && cd \"$wt\""));
    // Started, it prints the worktree alone.
    let out = repo.orch(&["task", "start", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let wt = stdout(&out);
    assert_eq!(wt.lines().count(), 1, "{wt}");
    assert!(Path::new(wt.trim_end()).is_dir(), "{wt}");
}

// ---------------------- `task done` without an id, and `task diff`

const TWO_BY_HAND: &str = "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n  files = [\"a.txt\"]\n  [[phases.tasks]]\n  id = \"b\"\n  files = [\"b.txt\"]\n";

fn start_by_hand(repo: &TestRepo, id: &str) -> PathBuf {
    let out = repo.orch(&["task", "start", id]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    PathBuf::from(stdout(&out).trim_end())
}

#[test]
fn task_done_without_an_id_inside_a_task_worktree_lands_that_task() {
    let repo = TestRepo::new();
    started(&repo, TWO_BY_HAND);
    let wa = start_by_hand(&repo, "a");
    start_by_hand(&repo, "b");
    std::fs::write(wa.join("a.txt"), "a\n").expect("write");
    // Outside a worktree, no id: refused, nothing changed.
    let refs = repo.refs();
    let out = repo.orch(&["task", "done", "-m", "a"]);
    assert_refused(&out, "task done without an id in the main checkout");
    assert!(stderr(&out).contains("needs a task id"), "{}", both(&out));
    assert_eq!(repo.refs(), refs);
    // Inside a's worktree (from a subdirectory too): a lands, b does not.
    std::fs::create_dir_all(wa.join("sub")).expect("mkdir");
    let out = repo.orch_in(&wa.join("sub"), &["task", "done", "-m", "a by hand"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "done", "{st}");
    assert_eq!(task_state(&st, "b"), "running", "{st}");
    assert_eq!(repo.show("orch/p/work:a.txt").as_deref(), Some("a\n"));
    // A `--plan` that is not the worktree's is refused.
    let wb = repo.path.join(".orch/worktrees/p/b");
    let out = repo.orch_in(&wb, &["task", "done", "--plan", "q"]);
    assert_refused(&out, "task done in p's worktree with --plan q");
}

#[test]
fn task_diff_shows_the_change_that_would_land_with_stat_passed_through() {
    let repo = TestRepo::new();
    started(&repo, TWO_BY_HAND);
    // Not started: refused; unknown: refused.
    assert_refused(&repo.orch(&["task", "diff", "a"]), "diff of a pending task");
    assert_refused(&repo.orch(&["task", "diff", "nope"]), "diff of no task");
    let wa = start_by_hand(&repo, "a");
    std::fs::write(wa.join("a.txt"), "line-of-a\n").expect("write");
    repo.git_in(&wa, &["add", "a.txt"]);
    repo.git_in(&wa, &["commit", "-q", "-m", "a"]);
    std::fs::write(wa.join("a.txt"), "line-of-a\nnot-committed\n").expect("write");
    let out = repo.orch(&["task", "diff", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let diff = stdout(&out);
    assert!(diff.contains("+line-of-a"), "{diff}");
    assert!(diff.contains("a.txt"), "{diff}");
    assert!(!diff.contains("not-committed"), "{diff}");
    assert!(
        stderr(&out).contains("uncommitted changes"),
        "{}",
        both(&out)
    );
    let out = repo.orch(&["task", "diff", "a", "--stat"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let stat = stdout(&out);
    assert!(stat.contains("a.txt | 1 +"), "{stat}");
    assert!(stat.contains("1 file changed"), "{stat}");
    // Inside the worktree, the id may be left out.
    let out = repo.orch_in(&wa, &["task", "diff", "--stat"]);
    assert_eq!(stdout(&out), stat, "{}", both(&out));
    // Once landed, it is what landed.
    repo.orch_in(&wa, &["task", "done"]);
    let landed = repo.git(&["diff", "orch/p/start", "orch/p/work", "--stat"]);
    let out = repo.orch(&["task", "diff", "a", "--stat"]);
    assert_eq!(stdout(&out), landed, "{}", both(&out));
    // Documented in -h.
    let help = repo.orch_ok(&["task", "diff", "-h"]);
    assert!(help.contains("what would land"), "{help}");
    assert!(help.contains("--stat"), "{help}");
    let help = repo.orch_ok(&["task", "-h"]);
    assert!(help.contains("diff"), "{help}");
}

// ------------------------------------------------------------ the demo

#[test]
fn the_demo_prints_commands_quoted_so_they_can_be_copied() {
    let repo = TestRepo::new();
    let dir = repo.scratch().join("demo dir");
    let started = std::time::Instant::now();
    let out = repo.orch(&["demo", "--dir", dir.to_str().expect("utf-8")]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "not a TTY: no waiting"
    );
    let err = stderr(&out);
    assert!(
        err.contains("$ git orch task done add -m 'Add add()'"),
        "{err}"
    );
    assert!(err.contains("$ git tag -l 'orch/*' -n1"), "{err}");
    assert!(err.contains("'--format=%(refname)'"), "{err}");
    // The path with a space, as a shell reads it back.
    let watch = err
        .lines()
        .find(|l| l.contains("second terminal"))
        .expect("the watch advice");
    let calc = dir.join("calculator").display().to_string();
    assert!(
        watch.contains(&format!("cd '{calc}' && git orch watch")),
        "{watch}"
    );
    assert!(watch.contains("--step"), "{watch}");
    // Every shown command is one a shell parses (`sh -n`).
    for line in err.lines().filter_map(|l| l.strip_prefix("$ ")) {
        let out = repo
            .command("sh", &repo.path)
            .args(["-n", "-c", line])
            .output()
            .expect("sh -n");
        assert!(
            out.status.success(),
            "sh cannot parse `{line}`: {}",
            both(&out)
        );
    }
}

#[test]
fn the_demo_paces_its_steps_and_refuses_a_bad_pace() {
    let repo = TestRepo::new();
    let dir = repo.scratch().join("demo");
    let started = std::time::Instant::now();
    let out = repo.orch(&[
        "demo",
        "--pace",
        "0.5",
        "--dir",
        dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    // Eight steps, a pause before each after the first.
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(3500), "{took:?}");
    assert!(!stderr(&out).contains("--step` waits"), "{}", both(&out));
    for bad in ["-1", "61", "soon", "NaN"] {
        let out = repo.orch(&["demo", "--pace", bad]);
        assert_refused(&out, bad);
    }
    // `--step` without a terminal on stdin runs straight through.
    let dir = repo.scratch().join("demo2");
    let out = repo.orch(&["demo", "--step", "--dir", dir.to_str().expect("utf-8")]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(stderr(&out).contains("does not wait"), "{}", both(&out));
    assert!(both(&out).contains("demo complete"), "{}", both(&out));
}
