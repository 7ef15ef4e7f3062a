//! Findings of the review of the real-agent kinds (issue 21), each with
//! the test that failed before its fix. The agents here are stand-ins (a
//! shell script in the place of `claude`) printing what the real CLI
//! prints (tests/fixtures/agents), so that what git-orch makes of it is
//! tested without a model server.
use crate::common::*;
use std::path::{Path, PathBuf};

/// A stand-in `claude`: each run appends its argv to `<count>.args`;
/// run `n` runs the `case` of `body` for its number.
fn fake_cli(repo: &TestRepo, body: &str) -> (PathBuf, PathBuf) {
    let count = repo.scratch().join("runs");
    let script = repo.scratch().join("fake-claude");
    let text = format!(
        "#!/bin/sh\nn=$(( $(cat '{c}' 2>/dev/null || echo 0) + 1 ))\necho $n > '{c}'\necho \"$*\" >> '{c}.args'\ncat >/dev/null\n{body}\n",
        c = count.display()
    );
    std::fs::write(&script, text).expect("the script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("executable");
    (script, count)
}

fn runs(count: &Path) -> u32 {
    std::fs::read_to_string(count)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn start(repo: &TestRepo, profile: &str) {
    let text = format!(
        "name = \"p\"\n{profile}\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nagent = \"w\"\nfiles = [\"src/**\"]\nprompt = \"Write src/a.txt.\"\n"
    );
    let plan = repo.plan("p.toml", &text);
    repo.orch_ok(&["start", &plan.to_string_lossy()]);
}

const INIT: &str = r#"echo '{"type":"system","subtype":"init","session_id":"s1","model":"m"}'"#;

#[test]
fn a_resumed_attempt_that_succeeded_is_not_run_again_for_words_about_sessions() {
    let repo = TestRepo::new();
    // Run 1: a server error (transient) in session s1. Run 2 (resumed):
    // writes its file and succeeds, though what it printed speaks of a
    // session not found (a file it read, a message of the model).
    let body = format!(
        r#"{INIT}
if [ $n = 1 ]; then
  echo '{{"type":"result","subtype":"success","is_error":true,"api_error_status":500,"result":"API Error: 500","session_id":"s1"}}'
  exit 1
fi
mkdir -p src && echo done > src/a.txt
echo 'No conversation found with session ID: s1 (quoted from a file it read)'
echo '{{"type":"result","subtype":"success","is_error":false,"result":"Done; the doc says: session not found","session_id":"s1","usage":{{"input_tokens":1,"output_tokens":1}}}}'
"#
    );
    let (cli, count) = fake_cli(&repo, &body);
    start(
        &repo,
        &format!(
            "[agents.w]\nkind = \"claude-code\"\ncommand = '{}'\nretries = 1\nretry_backoff = \"1s\"\n",
            cli.display()
        ),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(runs(&count), 2, "{}", both(&out));
    let args = std::fs::read_to_string(count.with_extension("args")).expect("the args");
    assert!(
        args.lines()
            .nth(1)
            .is_some_and(|l| l.contains("--resume s1")),
        "{args}"
    );
    assert_eq!(
        repo.show("orch/p/work:src/a.txt").as_deref(),
        Some("done\n")
    );
}
