//! Trust (issue 13): a plan runs no command that this user did not approve
//! on this machine. A plan started here from a file is approved by that
//! act; one whose state came from another clone, or whose commands changed
//! since they were approved, runs nothing until `git orch trust PLAN`.
//! Real clones fetching with plain `git fetch`, real commands that leave a
//! mark outside the repository when they run.
use crate::common::*;

use std::path::{Path, PathBuf};

/// A file outside every repository that a command appends a line to.
fn marker(repo: &TestRepo, name: &str) -> PathBuf {
    repo.scratch().join(format!("ran-{name}"))
}

fn runs(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

/// Plan `p`: task `a` runs `task` (then writes a.txt), plan-wide gate
/// `unit` runs `gate`.
fn plan_text(task: &Path, gate: &Path) -> String {
    format!(
        r#"name = "p"
[[gates]]
name = "unit"
run = "echo ran >> '{}'"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a.txt"]
  run = "echo ran >> '{}'; echo a > a.txt"
"#,
        gate.display(),
        task.display()
    )
}

fn start(repo: &TestRepo, text: &str) {
    let file = repo.plan("p.toml", text);
    repo.orch_ok(&["start", file.to_str().expect("utf-8 path")]);
}

/// Another machine (its own HOME, so its own approvals) with a clone of
/// `a`, which then fetches a's plan refs with plain `git fetch`.
fn other_machine(a: &TestRepo) -> TestRepo {
    let b = TestRepo::empty();
    b.git(&["remote", "add", "origin", a.path.to_str().expect("utf-8")]);
    b.git(&["fetch", "-q", "origin"]);
    b.git(&["checkout", "-q", "-f", "-B", "main", "origin/main"]);
    fetch_plan(&b);
    b
}

fn fetch_plan(b: &TestRepo) {
    b.git(&[
        "fetch",
        "-q",
        "origin",
        "+refs/heads/orch/*:refs/heads/orch/*",
    ]);
}

/// The refusal of a command that would run an untrusted plan's commands.
fn assert_untrusted(out: &std::process::Output, what: &str) {
    assert_refused(out, what);
    let err = stderr(out);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].contains("plan `p` is not trusted"),
        "{what}: the error names the plan: {err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("hint:") && l.contains("git orch trust p")),
        "{what}: the hint names `git orch trust p`: {err}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("error:")).count(),
        1,
        "{what}: one error line: {err}"
    );
}

fn trust_dir(repo: &TestRepo) -> PathBuf {
    repo.home.join(".local/share/git-orch/trust")
}

fn approvals(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read(e.path()).ok())
                .filter_map(|b| serde_json::from_slice(&b).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_plan_fetched_from_another_clone_runs_nothing_until_trusted() {
    let a = TestRepo::new();
    let (task, gate) = (marker(&a, "task"), marker(&a, "gate"));
    start(&a, &plan_text(&task, &gate));
    let b = other_machine(&a);
    assert!(b.rev("orch/p/state").is_some(), "b fetched the plan");

    let before = b.refs();
    for args in [
        vec!["run"],
        vec!["run", "p", "--task", "a"],
        vec!["resume", "p"],
        vec!["checkpoint", "p"],
        vec!["gate", "p"],
    ] {
        let out = b.orch(&args);
        assert_untrusted(&out, &format!("{args:?} in the other clone"));
    }
    assert_eq!(b.refs(), before, "a refused command changed no ref");
    assert_eq!(runs(&task), 0, "no task command ran");
    assert_eq!(runs(&gate), 0, "no gate ran");

    // Without a terminal and without --yes: shown, not approved.
    let out = b.orch(&["trust", "p"]);
    assert_refused(&out, "trust without a terminal or --yes");
    let shown = stdout(&out);
    for what in [
        "task a (phase one): run",
        "gate unit (plan-wide)",
        &task.display().to_string(),
        &gate.display().to_string(),
        "<committer@example.com>",
    ] {
        assert!(shown.contains(what), "trust shows {what}: {shown}");
    }
    assert!(stderr(&out).contains("--yes"), "{}", both(&out));
    assert_untrusted(&b.orch(&["run"]), "run after an unanswered trust");

    // As JSON: the document, then the same refusal.
    let out = b.orch(&["trust", "p", "--json"]);
    assert_refused(&out, "trust --json without --yes");
    let doc = json_doc(&out, "trust --json");
    assert_eq!(
        (doc["trusted"].clone(), doc["approved"].clone()),
        (false.into(), false.into())
    );
    assert_eq!(doc["commands"].as_array().map(Vec::len), Some(2), "{doc}");
    assert_eq!(doc["commands"][1]["kind"], "gate", "{doc}");

    let doc = b.orch_json(&["trust", "p", "--yes", "--json"]);
    assert_eq!(
        (doc["trusted"].clone(), doc["approved"].clone()),
        (true.into(), true.into())
    );
    assert_eq!(doc["by"], "trust");
    let out = b.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(runs(&task), 1, "the task ran once trusted");
    assert_eq!(runs(&gate), 1, "its checkpoint's gate ran");
    assert_eq!(task_state(&b.orch_json(&["status", "--json"]), "a"), "done");
    b.fsck();
}

#[test]
fn a_plan_started_here_runs_without_asking_and_its_approval_lives_outside_the_repo() {
    let a = TestRepo::new();
    let (task, gate) = (marker(&a, "task"), marker(&a, "gate"));
    start(&a, &plan_text(&task, &gate));
    let out = a.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!((runs(&task), runs(&gate)), (1, 1));

    // The approval: one file under $HOME/.local/share/git-orch/trust (the
    // harness's HOME is a temp dir), naming this repository's common dir.
    let found = approvals(&trust_dir(&a));
    assert_eq!(found.len(), 1, "{found:?}");
    let common = a.path.join(".git").canonicalize().expect("canonical");
    assert_eq!(found[0]["repo"], common.to_string_lossy().as_ref());
    assert_eq!(found[0]["plan"], "p");
    assert_eq!(found[0]["by"], "start");
    let hash = found[0]["hash"].as_str().expect("hash").to_string();
    assert!(hash.starts_with("sha256:"), "{hash}");
    // Nothing of it is in the repository or its refs.
    let grep = a
        .command("git", &a.path)
        .args(["grep", "-q", &hash, "orch/p/state"])
        .output()
        .expect("git grep");
    assert!(!grep.status.success(), "the state branch holds no approval");
    let listed = a.orch_ok(&["trust", "--list"]);
    assert!(listed.contains("p\t") && listed.contains(&hash), "{listed}");

    // XDG_DATA_HOME moves the store: there, nothing is approved.
    let data = a.scratch().join("data");
    let with_xdg = |args: &[&str]| {
        a.command(crate::common::BIN, &a.path)
            .env("XDG_DATA_HOME", &data)
            .args(args)
            .output()
            .expect("git-orch")
    };
    assert_untrusted(&with_xdg(&["gate", "p"]), "gate with another store");
    let out = with_xdg(&["trust", "p", "--yes"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(approvals(&data.join("git-orch/trust")).len(), 1);
    let out = with_xdg(&["gate", "p"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));

    // A clone on the same machine is another repository: not approved.
    let clone = a.scratch().join("clone");
    a.git_in(
        &a.scratch(),
        &[
            "clone",
            "-q",
            a.path.to_str().expect("utf-8"),
            clone.to_str().expect("utf-8"),
        ],
    );
    a.git_in(
        &clone,
        &[
            "fetch",
            "-q",
            "origin",
            "refs/heads/orch/*:refs/heads/orch/*",
        ],
    );
    assert_untrusted(&a.orch_in(&clone, &["gate", "p"]), "gate in a clone");

    // Revoked, the plan that started here runs nothing either.
    let doc = a.orch_json(&["trust", "--revoke", "p", "--json"]);
    assert_eq!(
        (doc["revoked"].clone(), doc["trusted"].clone()),
        (1.into(), false.into())
    );
    assert!(approvals(&trust_dir(&a)).is_empty());
    assert_untrusted(&a.orch(&["gate", "p"]), "gate after --revoke");
    assert!(a.orch_ok(&["trust", "--list"]).is_empty());
}

#[test]
fn a_plan_whose_gate_changed_in_another_clone_asks_again() {
    let a = TestRepo::new();
    let (task, gate) = (marker(&a, "task"), marker(&a, "gate"));
    start(&a, &plan_text(&task, &gate));
    let b = other_machine(&a);
    b.orch_ok(&["trust", "p", "--yes"]);
    b.orch_ok(&["gate", "p"]);
    assert_eq!(runs(&gate), 1);

    // In a, the plan is run, finished, and a new one started under its
    // name, with a gate that runs something else.
    a.orch_ok(&["run"]);
    assert_eq!((runs(&task), runs(&gate)), (1, 2));
    a.orch_ok(&["finish", "p"]);
    for r in [
        "refs/heads/orch/p/state",
        "refs/heads/orch/p/work",
        "refs/tags/orch/p/start",
    ] {
        a.git(&["update-ref", "-d", r]);
    }
    let evil = marker(&a, "evil");
    let changed = plan_text(&task, &gate).replace(
        &format!("echo ran >> '{}'\"\n[[phases]]", gate.display()),
        &format!("echo ran >> '{}'\"\n[[phases]]", evil.display()),
    );
    assert_ne!(changed, plan_text(&task, &gate));
    start(&a, &changed);
    fetch_plan(&b);

    let before = b.refs();
    for args in [vec!["gate", "p"], vec!["run", "p"], vec!["checkpoint", "p"]] {
        let out = b.orch(&args);
        assert_untrusted(&out, &format!("{args:?} after the plan changed"));
        assert!(
            stderr(&out).contains("changed since you approved them")
                && stderr(&out).contains("gate unit (plan-wide)"),
            "the error says what changed: {}",
            both(&out)
        );
    }
    assert_eq!(b.refs(), before);
    assert_eq!(runs(&evil), 0, "the changed gate did not run");
    assert_eq!(runs(&task), 1, "no task ran in b");

    let out = b.orch(&["trust", "p"]);
    assert_refused(&out, "trust without --yes");
    let shown = stdout(&out);
    let gate_line = shown
        .lines()
        .find(|l| l.contains("gate unit (plan-wide)"))
        .expect("the gate is shown");
    assert!(gate_line.contains("new or changed"), "{shown}");
    let task_line = shown
        .lines()
        .find(|l| l.contains("task a (phase one)"))
        .expect("the task is shown");
    assert!(!task_line.contains("new or changed"), "{shown}");
    assert!(shown.contains(&evil.display().to_string()), "{shown}");

    b.orch_ok(&["trust", "p", "--yes"]);
    b.orch_ok(&["gate", "p"]);
    assert_eq!(runs(&evil), 1, "approved, the new gate runs");
    // Only the latest approval is kept.
    assert_eq!(approvals(&trust_dir(&b)).len(), 1);
}

#[test]
fn read_only_and_by_hand_commands_work_on_an_untrusted_plan() {
    let a = TestRepo::new();
    let (task, gate) = (marker(&a, "task"), marker(&a, "gate"));
    let hook = marker(&a, "hook");
    // A table header is a whole path in TOML: `[[notify]]` may come last.
    let text = format!(
        "{}  [[phases.tasks]]\n  id = \"b\"\n  files = [\"b.txt\"]\n[[notify]]\nrun = \"cat >> '{}'\"\n",
        plan_text(&task, &gate),
        hook.display()
    );
    start(&a, &text);
    let b = other_machine(&a);
    let plan_file = a.scratch().join("p.toml");
    let plan_arg = plan_file.to_str().expect("utf-8");

    for args in [
        vec!["status"],
        vec!["status", "p", "--json"],
        vec!["list"],
        vec!["log", "p"],
        vec!["report", "p"],
        vec!["graph", "p"],
        vec!["check", plan_arg],
        vec!["watch", "p", "--once"],
        vec!["schema", "status"],
        vec!["task", "next", "--plan", "p"],
    ] {
        let out = b.orch(&args);
        assert_eq!(code(&out), Some(0), "{args:?} untrusted: {}", both(&out));
    }
    // By hand: start, fail (its plan's notify hook is not run), retry by
    // hand, done; a retry that would run the task's command is refused.
    let path = b.orch_ok(&["task", "start", "a", "--plan", "p"]);
    assert!(Path::new(path.trim()).is_dir(), "{path}");
    let out = b.orch(&["task", "fail", "a", "--plan", "p", "--reason", "by hand"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(stderr(&out).contains("not trusted"), "{}", both(&out));
    assert_untrusted(
        &b.orch(&["task", "retry", "a", "--plan", "p"]),
        "task retry",
    );
    let path = b.orch_ok(&["task", "retry", "a", "--plan", "p", "--by-hand"]);
    std::fs::write(Path::new(path.trim()).join("a.txt"), "by hand\n").expect("write");
    b.orch_ok(&["task", "done", "a", "--plan", "p", "-m", "by hand"]);
    assert_eq!(task_state(&b.orch_json(&["status", "--json"]), "a"), "done");
    // And a manual task: started, reset, skipped.
    b.orch_ok(&["task", "start", "b", "--plan", "p"]);
    b.orch_ok(&["task", "reset", "b", "--plan", "p", "--force"]);
    b.orch_ok(&["task", "skip", "b", "--plan", "p"]);
    assert_eq!(runs(&task), 0);
    assert_eq!(runs(&hook), 0, "the untrusted plan's notify hook never ran");
    assert_eq!(runs(&gate), 0);
    b.fsck();
}

#[test]
fn the_pre_push_hook_never_runs_a_gate_from_the_pushed_commit() {
    let a = TestRepo::new();
    let (task, gate) = (marker(&a, "task"), marker(&a, "gate"));
    start(&a, &plan_text(&task, &gate));
    let bare = a.scratch().join("remote.git");
    a.git_in(
        &a.scratch(),
        &["init", "-q", "--bare", bare.to_str().expect("utf-8")],
    );
    a.git(&["remote", "add", "origin", bare.to_str().expect("utf-8")]);
    a.git(&["config", "orch.prePush", "p"]);
    a.orch_ok(&["hook", "install"]);

    // The pushed commit carries a plan file of the same name whose gate
    // would leave another mark.
    let evil = marker(&a, "evil");
    let forged = plan_text(&task, &evil);
    a.write("p.toml", &forged);
    a.write(".git-orch/p.toml", &forged);
    a.commit_all("a plan with another gate");
    let push = |a: &TestRepo| {
        a.command("git", &a.path)
            .args(["push", "-q", "origin", "main"])
            .output()
            .expect("git push")
    };
    let out = push(&a);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(runs(&gate), 1, "the state branch's gate ran");
    assert_eq!(runs(&evil), 0, "the gate in the pushed commit never ran");

    // An untrusted plan's gates do not run either: the push is blocked.
    a.orch_ok(&["trust", "--revoke", "p"]);
    a.write("more", "x\n");
    a.commit_all("more");
    let out = push(&a);
    assert_ne!(code(&out), Some(0), "{}", both(&out));
    assert!(
        stderr(&out).contains("plan `p`, which is not trusted here")
            && stderr(&out).contains("git orch trust p"),
        "{}",
        both(&out)
    );
    assert_eq!((runs(&gate), runs(&evil)), (1, 0));
    let remote_main = a.git(&[
        "--git-dir",
        bare.to_str().expect("utf-8"),
        "rev-parse",
        "main",
    ]);
    assert_ne!(
        remote_main.trim(),
        a.rev("main").expect("main"),
        "not pushed"
    );
}
