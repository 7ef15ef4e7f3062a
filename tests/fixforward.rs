//! Fix-forward on failed gates (issue 11): `on_gate_failure = { agent,
//! attempts, files }` makes a fix task `<phase>.fix-<n>` on the work head
//! when a checkpoint's gates fail, with the failing gates' names, commands
//! and output in its brief; lands it within its scope; runs the gates
//! again; gives up after `attempts`. Driven by `fixtures/fake-agent`'s
//! `fix` mode, with real repositories and the real binary.
use crate::common::*;
use std::path::Path;

/// One phase, one task `a` (writes a.txt; scope `task_files`), a gate that
/// fails until out.txt says `fixed` (printing what the fake agent's `fix`
/// mode reads), and a fixer agent running `fixer_mode`.
fn plan(state: &Path, fixer_mode: &str, fix: &str, task_files: &str) -> String {
    format!(
        r#"name = "p"
[agents.writer]
run = '''sh "{fake}" succeed a.txt'''
[agents.fixer]
run = '''cp "$ORCH_TASK_FILE" "{state}/brief-$ORCH_TASK.md"; sh "{fake}" {fixer_mode}'''

[[phases]]
id = "one"
  [[phases.gates]]
  name = "test"
  run = '''grep -q fixed out.txt 2>/dev/null || {{ echo "fake-test: want 'fixed' in" out.txt; exit 1; }}'''
  [phases.on_gate_failure]
  {fix}
  [[phases.tasks]]
  id = "a"
  title = "Write a"
  prompt = "write the a file"
  files = {task_files}
  agent = "writer"
"#,
        fake = fake_agent().display(),
        state = state.display(),
    )
}

fn fixes(repo: &TestRepo) -> Vec<serde_json::Value> {
    let st = status_json(repo);
    st["phases"][0]["fixes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_failing_gate_is_fixed_forward_by_the_fixer_on_its_first_attempt_and_checkpointed() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake");
    std::fs::create_dir_all(&state).expect("dir");
    started(
        &repo,
        &plan(
            &state,
            "fix",
            "agent = \"fixer\"\n  attempts = 2",
            "[\"a.txt\", \"out.txt\"]",
        ),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let st = status_json(&repo);
    assert!(st["phase"].is_null(), "checkpointed: {st}");
    assert!(repo.rev("orch/p/one").is_some(), "the checkpoint tag");
    assert_eq!(repo.show("orch/p/work:out.txt").as_deref(), Some("fixed\n"));
    assert_eq!(repo.show("orch/p/one:out.txt").as_deref(), Some("fixed\n"));
    let f = fixes(&repo);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["id"], "one.fix-1");
    assert_eq!(f[0]["agent"], "fixer");
    assert!(f[0]["landed"].is_string(), "{f:?}");
    // The brief carried the failing gate's name, command and output, and
    // the phase's tasks' intents.
    let brief = std::fs::read_to_string(state.join("brief-one.fix-1.md")).expect("brief");
    for want in [
        "gate `test` failed",
        "grep -q fixed out.txt",
        "fake-test: want 'fixed' in out.txt",
        "write the a file",
        "`out.txt`",
    ] {
        assert!(brief.contains(want), "{want} in\n{brief}");
    }
    // Visible in the log and the report.
    let log = repo.git(&["log", "--format=%s", "orch/p/state"]);
    assert!(log.contains("fix one: one.fix-1 landed at"), "{log}");
    assert!(log.contains("checkpoint one: failed"), "{log}");
    let report = repo.orch_json(&["report", "--format", "json"]);
    let kinds: Vec<String> = report["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_string))
        .collect();
    assert!(kinds.iter().any(|k| k == "fix"), "{kinds:?}");
    let plain = repo.orch_ok(&["status"]);
    assert!(
        plain.contains("fix one.fix-1 (agent fixer) landed at"),
        "{plain}"
    );
    repo.fsck();
}

#[test]
fn fix_forward_gives_up_after_its_attempts_and_stops_as_before() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake");
    std::fs::create_dir_all(&state).expect("dir");
    started(
        &repo,
        &plan(
            &state,
            "fail",
            "agent = \"fixer\"\n  attempts = 2",
            "[\"a.txt\", \"out.txt\"]",
        ),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let st = status_json(&repo);
    assert_eq!(st["phase"], "one");
    assert_eq!(st["phases"][0]["state"], "failed", "{st}");
    let f = fixes(&repo);
    assert_eq!(f.len(), 2, "two attempts, no more: {f:?}");
    for (i, fix) in f.iter().enumerate() {
        assert_eq!(fix["id"], format!("one.fix-{}", i + 1));
        assert!(fix["landed"].is_null(), "{fix}");
        assert!(
            fix["reason"].as_str().is_some_and(|r| r.contains("exit")),
            "{fix}"
        );
    }
    assert!(repo.rev("orch/p/one").is_none(), "no checkpoint");
    // The second attempt's brief says how the first ended.
    let brief = std::fs::read_to_string(state.join("brief-one.fix-2.md")).expect("brief");
    assert!(brief.contains("Fix attempt 1 (one.fix-1)"), "{brief}");
}

#[test]
fn a_fix_outside_the_union_of_the_phase_scopes_does_not_land() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake");
    std::fs::create_dir_all(&state).expect("dir");
    // No `files` on the fix: its scope is the phase's, a.txt only.
    started(
        &repo,
        &plan(&state, "fix", "agent = \"fixer\"", "[\"a.txt\"]"),
    );
    let work_before_run = repo.rev("orch/p/work");
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let f = fixes(&repo);
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(
        f[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("outside its files: out.txt")),
        "{f:?}"
    );
    assert_ne!(repo.rev("orch/p/work"), work_before_run, "a landed");
    assert_eq!(
        repo.show("orch/p/work:out.txt"),
        None,
        "the fix did not land"
    );
}

#[test]
fn check_refuses_a_fixer_that_is_not_an_agent_and_zero_attempts() {
    let repo = TestRepo::new();
    let state = repo.scratch().join("fake");
    for fix in ["agent = \"ghost\"", "agent = \"fixer\"\n  attempts = 0"] {
        let p = repo.plan("bad.toml", &plan(&state, "fix", fix, "[\"a.txt\"]"));
        let out = repo.orch(&["check", p.to_str().expect("utf-8")]);
        assert_ne!(code(&out), Some(0), "{fix}: {}", both(&out));
        assert!(both(&out).contains("on_gate_failure"), "{}", both(&out));
    }
}

/// `on_conflict`: a task whose landing conflicts goes to the resolver agent
/// in its worktree (the work head merged in, with conflict markers); the
/// brief has both sides' intents, the paths and the hunks; the resolved
/// merge lands.
#[test]
fn a_landing_conflict_is_resolved_by_the_resolver_agent() {
    let repo = TestRepo::new();
    repo.write("shared.txt", "base\n");
    repo.commit_all("shared");
    let state = repo.scratch().join("fake");
    std::fs::create_dir_all(&state).expect("dir");
    // As in tests/run.rs: `auto` builds on the work branch from before the
    // manual task's landing and changes the same line.
    let text = format!(
        r#"name = "p"
[defaults.on_conflict]
agent = "resolver"
[agents.resolver]
run = '''cp "$ORCH_TASK_FILE" "{state}/resolve-brief.md"; printf 'by-hand and by-task\n' > shared.txt'''
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "manual"
  title = "Say it by hand"
  files = ["shared.txt"]
  [[phases.tasks]]
  id = "auto"
  title = "Say it by task"
  files = ["shared.txt"]
  run = '''
set -e
git reset -q --hard orch/p/work^1
echo by-task > shared.txt
'''
"#,
        state = state.display()
    );
    started(&repo, &text);
    let wt = repo.orch_ok(&["task", "start", "manual"]);
    std::fs::write(Path::new(wt.trim()).join("shared.txt"), "by-hand\n").expect("write");
    repo.orch_ok(&["task", "done", "manual", "-m", "by hand"]);
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "auto"), "done", "{st}");
    assert_eq!(
        repo.show("orch/p/work:shared.txt").as_deref(),
        Some("by-hand and by-task\n")
    );
    let brief = std::fs::read_to_string(state.join("resolve-brief.md")).expect("brief");
    for want in [
        "`shared.txt`",
        "<<<<<<<",
        "Say it by task",
        "The other side's intent (manual)",
        "Say it by hand",
    ] {
        assert!(brief.contains(want), "{want} in\n{brief}");
    }
    assert!(
        st["phase"].is_null(),
        "the run went on to the checkpoint: {st}"
    );
    repo.fsck();
}

#[test]
fn the_demo_shows_a_fix_forward() {
    let repo = TestRepo::new();
    let dir = repo.scratch().join("demo");
    let out = repo.orch(&["demo", "--dir", dir.to_str().expect("utf-8")]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let text = both(&out);
    assert!(
        text.contains("fixer: gave lib/div.sh a header comment"),
        "{text}"
    );
    assert!(text.contains("fix more.fix-1 landed at"), "{text}");
    assert!(text.contains("and a fix-forward"), "{text}");
}
