//! Trust (issue 10): what a task may do with the user's rights behind
//! git-orch's back, and how it is caught or prevented. Real repositories,
//! real task commands doing the forgery with plain git.
mod common;
use common::*;

/// Starts the plan text and returns nothing; panics if `start` fails.
fn start(repo: &TestRepo, text: &str) {
    let file = repo.plan("plan.toml", text);
    repo.orch_ok(&["start", file.to_str().expect("utf-8 path")]);
}

/// Shell that rewrites `plan.json` on the state branch of plan `p` with
/// plain git (hash-object, a temporary index, commit-tree, update-ref),
/// widening task `a`'s files to everything.
const FORGE_PLAN: &str = r##"st=refs/heads/orch/p/state
head=$(git rev-parse $st)
tmp=$(mktemp -d)
git show $st:plan.json | sed 's#"a/\*\*"#"**"#' > $tmp/plan.json
blob=$(git hash-object -w $tmp/plan.json)
GIT_INDEX_FILE=$tmp/index git read-tree $head
GIT_INDEX_FILE=$tmp/index git update-index --cacheinfo 100644,$blob,plan.json
tree=$(GIT_INDEX_FILE=$tmp/index git write-tree)
commit=$(echo forged | git commit-tree $tree -p $head)
git update-ref $st $commit $head
rm -rf $tmp"##;

fn forging_plan(then: &str) -> String {
    let script = format!("{FORGE_PLAN}\n{then}");
    format!(
        "name = \"p\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nfiles = [\"a/**\"]\nrun = '''\n{script}\n'''\n"
    )
}

#[test]
fn a_task_that_rewrites_the_plan_to_widen_its_scope_fails_and_the_forgery_is_reported() {
    let repo = TestRepo::new();
    start(
        &repo,
        &forging_plan("mkdir -p a b && echo in > a/x && echo out > b/x"),
    );
    let sealed = repo.rev("orch/p/state:plan.json").expect("plan.json");
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let text = both(&out);
    assert!(text.contains("rewritten"), "{text}");
    assert!(text.contains("task `a` changed (files)"), "{text}");
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "failed");
    // The plan is the one started, nothing landed, the forgery is kept.
    assert_eq!(repo.rev("orch/p/state:plan.json"), Some(sealed));
    assert_eq!(repo.show("orch/p/work:b/x"), None);
    assert!(
        repo.refs().contains("refs/orch/p/preserved/forged-plan-"),
        "{}",
        repo.refs()
    );
    // The task's work is kept in its worktree.
    let wt = repo.path.join(".git/orch/worktrees/p/a");
    assert!(wt.join("b/x").exists(), "worktree of a kept");
    repo.fsck();
}

#[test]
fn a_state_whose_plan_was_rewritten_is_refused_naming_what_changed() {
    let repo = TestRepo::new();
    start(&repo, &forging_plan("true"));
    let forge = repo
        .command("sh", &repo.path)
        .args(["-c", FORGE_PLAN])
        .output()
        .expect("sh");
    assert!(forge.status.success(), "{}", both(&forge));
    let refs = repo.refs();
    let out = repo.orch(&["status"]);
    assert_refused(&out, "status of a forged plan");
    let err = stderr(&out);
    assert!(err.contains("rewritten on its state branch"), "{err}");
    assert!(err.contains("task `a` changed (files)"), "{err}");
    assert!(
        err.contains("hint: ") && err.contains("git update-ref refs/heads/orch/p/state"),
        "{err}"
    );
    assert_refused(&repo.orch(&["run"]), "run of a forged plan");
    assert_eq!(repo.refs(), refs, "a refusal changes nothing");
}

/// Shell that writes a passed result of the gate command `false` for the
/// tree of `$ORCH_BASE` into the gate cache of plan `p`'s state branch, at
/// the path git-orch 0.1 used (`cache/gates/<tree>/<blob id of the
/// command>.json`), with plain git.
const FORGE_GATE: &str = r##"st=refs/heads/orch/p/state
head=$(git rev-parse $st)
tree=$(git rev-parse "$ORCH_BASE^{tree}")
key=$(printf %s false | git hash-object --stdin)
tmp=$(mktemp -d)
printf '{"name":"never","command":"false","passed":true,"seconds":0.1,"commit":"%s","log":"logs/gates/x/never.log","cached":false}' "$ORCH_BASE" > $tmp/entry
blob=$(git hash-object -w $tmp/entry)
GIT_INDEX_FILE=$tmp/index git read-tree $head
GIT_INDEX_FILE=$tmp/index git update-index --add --cacheinfo 100644,$blob,cache/gates/$tree/$key.json
ntree=$(GIT_INDEX_FILE=$tmp/index git write-tree)
msg=$(git log -1 --format=%B $head)
commit=$(printf '%s\n' "$msg" | git commit-tree $ntree -p $head)
git update-ref $st $commit $head
rm -rf $tmp"##;

#[test]
fn a_gate_result_forged_into_the_state_branch_is_not_honoured() {
    let repo = TestRepo::new();
    let plan = format!(
        "name = \"p\"\n[[phases]]\nid = \"one\"\n[[phases.gates]]\nname = \"never\"\nrun = \"false\"\n\
         [[phases.tasks]]\nid = \"a\"\nfiles = [\"a/**\"]\nrun = '''\n{FORGE_GATE}\n'''\n"
    );
    start(&repo, &plan);
    let out = repo.orch(&["run"]);
    let text = both(&out);
    assert_eq!(code(&out), Some(1), "{text}");
    assert!(
        !text.contains("cached"),
        "a forged pass was honoured: {text}"
    );
    assert!(text.contains("never"), "{text}");
    assert_eq!(
        repo.rev("refs/tags/orch/p/one"),
        None,
        "phase tagged on a forged pass"
    );
    // The forgery is in the state branch, and still not honoured by `gate`.
    let listing = repo.git(&[
        "ls-tree",
        "-r",
        "--name-only",
        "orch/p/state",
        "cache/gates",
    ]);
    assert!(!listing.is_empty(), "the task did not forge anything");
    let out = repo.orch(&["gate", "--phase", "one"]);
    assert_ne!(code(&out), Some(0), "{}", both(&out));
    assert!(!both(&out).contains("cached"), "{}", both(&out));
}

// ------------------------------------------------ containment (item 6)

use std::path::Path;
use std::time::{Duration, Instant};

/// A task that `setsid`s a daemon appending to `beat` every 0.1 s, then
/// runs `then`.
fn daemon_plan(beat: &Path, then: &str) -> String {
    format!(
        "name = \"p\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nfiles = [\"a/**\"]\n\
         run = '''\nsetsid sh -c 'while true; do echo x >> {beat}; sleep 0.1; done' </dev/null >/dev/null 2>&1 &\n\
         while [ ! -s {beat} ]; do sleep 0.05; done\n{then}\n'''\n",
        beat = beat.display()
    )
}

/// Whether something still appends to `beat` (it stops growing within 2 s).
fn still_beating(beat: &Path) -> bool {
    let size = || std::fs::metadata(beat).map_or(0, |m| m.len());
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        let before = size();
        std::thread::sleep(Duration::from_millis(400));
        if size() == before {
            return false;
        }
        if Instant::now() > until {
            return true;
        }
    }
}

#[test]
fn a_setsid_daemon_started_by_a_task_does_not_outlive_it() {
    let repo = TestRepo::new();
    let beat = repo.scratch().join("beat");
    start(&repo, &daemon_plan(&beat, "true"));
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(beat.exists(), "the daemon never ran");
    assert!(!still_beating(&beat), "the task's daemon outlived it");
}

#[test]
fn a_setsid_daemon_does_not_outlive_a_killed_runner_and_resume() {
    let repo = TestRepo::new();
    let beat = repo.scratch().join("beat");
    let first = repo.scratch().join("first");
    let then = format!(
        "if [ ! -e {0} ]; then touch {0}; sleep 30; fi",
        first.display()
    );
    start(&repo, &daemon_plan(&beat, &then));
    let mut runner = repo
        .command(BIN, &repo.path)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn run");
    let until = Instant::now() + Duration::from_secs(20);
    while !first.exists() {
        assert!(Instant::now() < until, "the task never started its daemon");
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = std::process::Command::new("kill")
        .args(["-9", &runner.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let _ = runner.wait();
    let out = repo.orch(&["resume"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        !still_beating(&beat),
        "the task's daemon outlived its runner and resume"
    );
}

#[test]
fn a_task_whose_process_record_cannot_be_written_fails_and_does_not_run() {
    let repo = TestRepo::new();
    let ran = repo.scratch().join("ran");
    let plan = format!(
        "name = \"p\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nfiles = [\"a/**\"]\nrun = \"touch {}\"\n",
        ran.display()
    );
    start(&repo, &plan);
    // Where the record goes is a file, not a directory: it cannot be written.
    let run_dir = repo.path.join(".git/orch/run");
    std::fs::create_dir_all(&run_dir).expect("mkdir");
    std::fs::write(run_dir.join("p"), "in the way").expect("write");
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(
        both(&out).contains("cannot record its process group"),
        "{}",
        both(&out)
    );
    assert!(!ran.exists(), "the command ran without a record");
    assert_eq!(task_state(&status_json(&repo), "a"), "failed");
}
