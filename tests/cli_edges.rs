//! Command-line edges: what plain `status` and `list` say, `git -c` and
//! repository config, the git version check, and a run that loses its
//! output or is interrupted.
mod common;
use common::*;

fn start(repo: &TestRepo, toml: &str) {
    let file = repo.plan("plan.toml", toml);
    repo.orch_ok(&["start", file.to_str().expect("utf-8 path")]);
}

const FAILING_GATE: &str = r#"
name = "p"
[[gates]]
name = "lint"
run = "echo lint says no; exit 3"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  run = "echo a > a.txt"
  files = ["a.txt"]
"#;

#[test]
fn plain_status_names_the_gate_that_failed() {
    let repo = TestRepo::new();
    start(&repo, FAILING_GATE);
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let text = repo.orch_ok(&["status"]);
    let line = text
        .lines()
        .find(|l| l.contains("gate lint"))
        .unwrap_or_else(|| panic!("status does not name the failed gate:\n{text}"));
    assert!(
        line.contains("failed") && line.contains("exit code 3"),
        "{line}"
    );
    // The log it points at is really there.
    let log = line
        .split("orch/p/state:")
        .nth(1)
        .unwrap_or_else(|| panic!("no log path in {line}"))
        .trim();
    let shown = repo
        .show(&format!("orch/p/state:{log}"))
        .unwrap_or_else(|| panic!("no log at {log}"));
    assert!(shown.contains("lint says no"), "{shown}");
}

#[test]
fn list_says_finished_only_for_a_finished_plan() {
    let repo = TestRepo::new();
    start(
        &repo,
        r#"
name = "p"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  run = "echo a > a.txt"
  files = ["a.txt"]
"#,
    );
    let pending = repo.orch_ok(&["list"]);
    assert!(pending.contains("phase one"), "{pending}");
    repo.orch_ok(&["run"]);
    // Every phase is checkpointed, but the plan is not finished yet.
    assert_eq!(status_json(&repo)["finished"], false);
    let all_checkpointed = repo.orch_ok(&["list"]);
    assert!(
        !all_checkpointed.contains("finished"),
        "list calls an unfinished plan finished: {all_checkpointed}"
    );
    assert!(
        all_checkpointed.contains("every phase checkpointed"),
        "{all_checkpointed}"
    );
    repo.orch_ok(&["finish"]);
    let finished = repo.orch_ok(&["list"]);
    assert!(finished.contains("finished"), "{finished}");
}

/// Three tasks with disjoint scopes; each fails if another one is running.
fn exclusive_tasks(repo: &TestRepo) -> String {
    let busy = repo.scratch().join("busy");
    let task = |id: &str| {
        format!(
            "  [[phases.tasks]]\n  id = \"{id}\"\n  run = \"mkdir {busy} || exit 9; sleep 0.4; rmdir {busy}; echo {id} > {id}.txt\"\n  files = [\"{id}.txt\"]\n",
            busy = busy.display()
        )
    };
    format!(
        "name = \"p\"\n[[phases]]\nid = \"one\"\n{}{}{}",
        task("a"),
        task("b"),
        task("c")
    )
}

fn git_orch(repo: &TestRepo, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = repo.command("git", &repo.path);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run git orch")
}

/// A user's locale: git's messages would be translated where it is installed.
const GERMAN: &[(&str, &str)] = &[("LANG", "de_DE.UTF-8"), ("LC_ALL", "de_DE.UTF-8")];

#[test]
fn git_dash_c_orch_parallel_is_honoured() {
    // The control: the repository's config lets the three overlap.
    let control = TestRepo::new();
    control.git(&["config", "orch.parallel", "3"]);
    start(&control, &exclusive_tasks(&control));
    let out = git_orch(&control, &["orch", "run"], GERMAN);
    assert_eq!(
        code(&out),
        Some(1),
        "the tasks did not overlap: {}",
        both(&out)
    );

    let repo = TestRepo::new();
    repo.git(&["config", "orch.parallel", "3"]);
    start(&repo, &exclusive_tasks(&repo));
    let out = git_orch(&repo, &["-c", "orch.parallel=1", "orch", "run"], GERMAN);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(status_json(&repo)["phase"].is_null());
    repo.fsck();
}

#[test]
fn git_config_count_orch_parallel_is_honoured() {
    let repo = TestRepo::new();
    repo.git(&["config", "orch.parallel", "3"]);
    start(&repo, &exclusive_tasks(&repo));
    let out = repo
        .command(BIN, &repo.path)
        .args(["run"])
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "orch.parallel")
        .env("GIT_CONFIG_VALUE_0", "1")
        .output()
        .expect("run git-orch");
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(status_json(&repo)["phase"].is_null());
}
