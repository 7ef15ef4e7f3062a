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

/// Puts a `git` first on PATH that says it is `version` and hands every
/// other command to the real git. (Run `git-orch` itself then: `git orch`
/// puts git's own exec-path first on PATH, so its children see the real
/// git, the one that would do the work.)
fn fake_git_version(repo: &TestRepo, version: &str) {
    let real = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| std::path::Path::new(d).join("git"))
        .find(|p| p.is_file())
        .expect("a git on PATH");
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'git version {version}'; exit 0; fi\nexec '{}' \"$@\"\n",
        real.display()
    );
    let fake = repo.bin_dir.join("git");
    std::fs::write(&fake, script).expect("write fake git");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

const REBASE_PLAN: &str = r#"
name = "p"
[defaults]
merge = "rebase"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  run = "echo a > a.txt"
  files = ["a.txt"]
"#;

#[test]
fn a_rebase_plan_on_git_2_39_is_refused_naming_the_version_it_needs() {
    let repo = TestRepo::new();
    // Started while git was new enough...
    start(&repo, REBASE_PLAN);
    // ...run after a downgrade: refused before anything runs.
    fake_git_version(&repo, "2.39.0");
    let before = repo.refs();
    let out = repo.orch(&["run"]);
    assert_refused(&out, "run of a rebase plan on git 2.39");
    let err = stderr(&out);
    assert!(
        err.contains("git 2.40.0 or newer")
            && err.contains("this is git 2.39.0")
            && err.contains("--merge-base"),
        "{err}"
    );
    assert_eq!(repo.refs(), before);
    assert_eq!(task_state(&status_json(&repo), "a"), "pending");
    // Starting such a plan is refused up front too, changing nothing.
    let other = TestRepo::new();
    fake_git_version(&other, "2.39.0");
    let before = other.refs();
    let file = other.plan("plan.toml", REBASE_PLAN);
    let out = other.orch(&["start", file.to_str().expect("utf-8")]);
    assert_refused(&out, "start of a rebase plan on git 2.39");
    assert!(
        stderr(&out).contains("git 2.40.0 or newer"),
        "{}",
        stderr(&out)
    );
    assert_eq!(other.refs(), before);
}

#[test]
fn git_2_39_still_runs_a_merge_plan_and_2_37_runs_none() {
    let repo = TestRepo::new();
    fake_git_version(&repo, "2.39.0");
    start(&repo, &REBASE_PLAN.replace("rebase", "merge"));
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(status_json(&repo)["phase"].is_null());

    let old = TestRepo::new();
    start(&old, &REBASE_PLAN.replace("rebase", "squash"));
    fake_git_version(&old, "2.37.1");
    let out = old.orch(&["run"]);
    assert_refused(&out, "run on git 2.37");
    assert!(
        stderr(&out).contains("git 2.38.0 or newer"),
        "{}",
        stderr(&out)
    );
}
