//! Input validation (issue 10, "Trust"): names that come from refs, ids that
//! would collide as files or refs, and inputs too big or too deep to read.
//! Real repositories, the real binary, the real `git`.
mod common;

use std::io::Write;
use std::process::{Output, Stdio};

use common::*;

const HOSTILE: &str = "$(touch${IFS}HACKED)";

/// A plan of one manual task and one scripted task that prints `$ORCH_PLAN`.
const PLAN: &str = r#"name = "good"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "echo"
  run = "echo \"plan=$ORCH_PLAN\" > plan.txt"
  files = ["plan.txt"]
"#;

fn orch_stdin(repo: &TestRepo, args: &[&str], input: &str) -> Output {
    let mut cmd = repo.command(BIN, &repo.path);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// A state branch with a hostile plan name, made with plain git as a copy of
/// a real plan's state: `list` skips it with a warning, naming it is refused,
/// and nothing ever runs under that name.
#[test]
fn a_plan_name_from_a_ref_is_validated_like_a_plan_file() {
    let repo = TestRepo::new();
    let plan = repo.plan("good.toml", PLAN);
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
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json}");

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
