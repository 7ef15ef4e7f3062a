//! Trust (issue 10): what a task may do with the user's rights behind
//! git-orch's back, and how it is caught or prevented. Real repositories,
//! real task commands doing the forgery with plain git.
use crate::common::*;

/// Rewrites plan `p`'s plan on its state branch in place (see
/// [`forge_plan_script`]).
const FORGE_PLAN_HERE: &str = "git update-ref $st $commit $head";

fn forging_plan(then: &str) -> String {
    let script = format!("{}\n{then}", forge_plan_script(FORGE_PLAN_HERE));
    format!(
        "name = \"p\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nfiles = [\"a/**\"]\nrun = '''\n{script}\n'''\n"
    )
}

#[test]
fn a_task_that_rewrites_the_plan_to_widen_its_scope_fails_and_the_forgery_is_reported() {
    let repo = TestRepo::new();
    started(
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
    let wt = repo.path.join(".orch/worktrees/p/a");
    assert!(wt.join("b/x").exists(), "worktree of a kept");
    repo.fsck();
}

#[test]
fn a_state_whose_plan_was_rewritten_is_refused_naming_what_changed() {
    let repo = TestRepo::new();
    started(&repo, &forging_plan("true"));
    let forge = repo
        .command("sh", &repo.path)
        .args(["-c", &forge_plan_script(FORGE_PLAN_HERE)])
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
/// command>.json`), with plain git, in a commit that copies git-orch's
/// event trailer and author (so only the cache key can give it away).
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
commit=$(printf '%s\n' "$msg" | GIT_AUTHOR_NAME='Test Committer' GIT_AUTHOR_EMAIL=committer@example.com git commit-tree $ntree -p $head)
git update-ref $st $commit $head
rm -rf $tmp"##;

#[test]
fn a_gate_result_forged_into_the_state_branch_is_not_honoured() {
    let repo = TestRepo::new();
    let plan = format!(
        "name = \"p\"\n[[phases]]\nid = \"one\"\n[[phases.gates]]\nname = \"never\"\nrun = \"false\"\n\
         [[phases.tasks]]\nid = \"a\"\nfiles = [\"a/**\"]\nrun = '''\n{FORGE_GATE}\n'''\n"
    );
    started(&repo, &plan);
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
    started(&repo, &daemon_plan(&beat, "true"));
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
    started(&repo, &daemon_plan(&beat, &then));
    let mut runner = repo
        .command(BIN, &repo.path)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn run");
    wait_for_within(
        "the task to start its daemon",
        Duration::from_secs(20),
        || first.exists(),
    );
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
    started(&repo, &plan);
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

// ------------------------------------------------ tamper detection (item 17a)

/// A one-task plan whose task does `evil`, then writes `a/x` in its scope.
fn tamper_plan(evil: &str) -> String {
    format!(
        "name = \"p\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nfiles = [\"a/**\"]\n\
         run = '''\n{evil}\nmkdir -p a && echo work > a/x\n'''\n"
    )
}

#[test]
fn a_task_that_touches_the_repository_outside_its_worktree_fails_naming_it() {
    let cases = [
        ("git branch evil", "created `refs/heads/evil`"),
        (
            "git update-ref refs/heads/main $(echo evil | git commit-tree $ORCH_BASE^{tree} -p $ORCH_BASE)",
            "moved `refs/heads/main`",
        ),
        ("echo evil > $ORCH_REPO/evil.txt", "wrote in the checkout"),
        ("echo evil >> $ORCH_REPO/README", "README"),
        ("git config --file $ORCH_REPO/.git/config evil.key 1", "changed `.git/config`"),
        (
            "printf '#!/bin/sh\\nexit 0\\n' > $ORCH_REPO/.git/hooks/pre-push",
            "changed `.git/hooks/pre-push`",
        ),
        (
            "st=refs/heads/orch/p/state; git update-ref $st $(echo done | git commit-tree $(git rev-parse $st^{tree}) -p $(git rev-parse $st)) $(git rev-parse $st)",
            "that git-orch did not make",
        ),
    ];
    for (evil, expected) in cases {
        let repo = TestRepo::new();
        started(&repo, &tamper_plan(evil));
        let out = repo.orch(&["run"]);
        let text = both(&out);
        assert_eq!(code(&out), Some(1), "{evil}: {text}");
        assert!(
            text.contains("tampered with the repository"),
            "{evil}: {text}"
        );
        assert!(
            text.contains(expected),
            "{evil}: expected {expected}: {text}"
        );
        assert_eq!(task_state(&status_json(&repo), "a"), "failed", "{evil}");
        // Its work is kept on its branch, and nothing landed.
        assert_eq!(
            repo.show("orch/p/tasks/a:a/x").as_deref(),
            Some("work\n"),
            "{evil}"
        );
        assert_eq!(repo.show("orch/p/work:a/x"), None, "{evil}");
    }
}

#[test]
fn tasks_running_side_by_side_are_not_mistaken_for_tamperers() {
    let repo = TestRepo::new();
    let mut plan = String::from("name = \"p\"\n[[phases]]\nid = \"one\"\n");
    for t in ["a", "b", "c", "d"] {
        plan.push_str(&format!(
            "[[phases.tasks]]\nid = \"{t}\"\nfiles = [\"{t}/**\"]\nrun = '''\nmkdir -p {t} && echo 1 > {t}/x && git add -A && git commit -qm {t}\nsleep 0.3\necho 2 > {t}/y\n'''\n"
        ));
    }
    started(&repo, &plan);
    let out = repo.orch(&["run", "-j", "4"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    for t in ["a", "b", "c", "d"] {
        assert_eq!(
            repo.show(&format!("orch/p/work:{t}/y")).as_deref(),
            Some("2\n")
        );
    }
}

// ------------------------------------------------ the sandbox (item 17b)

/// Phase `one`: `other` commits in its worktree and stays a while; `evil`
/// waits for `other`'s worktree, tries every forbidden write and reports
/// in `a/report` what happened. Both sandboxed, `evil` without network.
fn sandboxed() -> String {
    PlanText::new("p").default_str("isolation", "sandbox").task("other", |t| t.files(["b/**"]).run(r#"mkdir -p b && echo work > b/x && git add b/x && git commit -qm "other: its own commit"
sleep 1.5
"#)).task("evil", |t| t.files(["a/**"]).key("network", "false").run(r#"mkdir -p a; r=a/report
try() { if sh -c "$2" >/dev/null 2>&1; then echo "$1: written" >> $r; else echo "$1: refused" >> $r; fi; }
while [ ! -e "$ORCH_REPO/.orch/worktrees/p/other/b/x" ]; do sleep 0.05; done
try state 'git update-ref refs/heads/orch/p/state $(git rev-parse HEAD)'
try work 'git update-ref refs/heads/orch/p/work $(git rev-parse HEAD)'
try checkout 'echo evil > "$ORCH_REPO/evil.txt"'
try config 'git config --file "$ORCH_REPO/.git/config" evil.key 1'
try hook 'echo evil > "$ORCH_REPO/.git/hooks/pre-push"'
try other 'echo evil > "$ORCH_REPO/.orch/worktrees/p/other/b/evil"'
echo "secret: $(cat "$ORCH_REPO/.git/orch/secret" 2>/dev/null | wc -c)" >> $r
echo "interfaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')" >> $r
"#)).to_string()
}

#[test]
fn a_sandboxed_task_cannot_write_outside_its_worktree_and_legitimate_work_lands() {
    let repo = TestRepo::new();
    started(&repo, &sandboxed());
    let config = std::fs::read(repo.path.join(".git/config")).expect("config");
    let out = repo.orch(&["run", "-j", "2"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let report = repo
        .show("orch/p/work:a/report")
        .expect("evil's report landed");
    for what in ["state", "work", "checkout", "config", "hook", "other"] {
        assert!(
            report.contains(&format!("{what}: refused")),
            "{what} was not refused:\n{report}"
        );
    }
    assert!(
        report.contains("secret: 0"),
        "the secret was readable:\n{report}"
    );
    assert!(
        report.contains("interfaces: lo \n"),
        "network = false:\n{report}"
    );
    assert!(!repo.path.join("evil.txt").exists());
    assert!(!repo.path.join(".git/hooks/pre-push").exists());
    assert_eq!(
        std::fs::read(repo.path.join(".git/config")).expect("config"),
        config
    );
    // The sandboxed commit landed, with its own message.
    assert_eq!(repo.show("orch/p/work:b/x").as_deref(), Some("work\n"));
    let log = repo.git(&["log", "--format=%s", "orch/p/work"]);
    assert!(log.contains("other: its own commit"), "{log}");
    repo.fsck();
}

#[test]
fn a_sandboxed_plan_is_refused_at_run_when_bubblewrap_is_missing() {
    let repo = TestRepo::new();
    started(&repo, &sandboxed());
    // A PATH with git and a shell but no bwrap.
    let bin = repo.scratch().join("nobwrap");
    std::fs::create_dir_all(&bin).expect("mkdir");
    for tool in ["git", "sh"] {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .expect("command -v");
        let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
        std::os::unix::fs::symlink(path, bin.join(tool)).expect("symlink");
    }
    let refs = repo.refs();
    let out = repo
        .command(BIN, &repo.path)
        .env(
            "PATH",
            format!("{}:{}", repo.bin_dir.display(), bin.display()),
        )
        .arg("run")
        .output()
        .expect("run");
    assert_refused(&out, "run without bwrap");
    assert!(
        stderr(&out).contains("apt-get install bubblewrap"),
        "{}",
        stderr(&out)
    );
    assert_eq!(repo.refs(), refs);
}

#[test]
fn network_off_without_the_sandbox_is_a_plan_error() {
    let repo = TestRepo::new();
    let file = repo.plan(
        "plan.toml",
        "name = \"p\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nfiles = [\"a\"]\nnetwork = false\n",
    );
    let out = repo.orch(&["check", file.to_str().expect("utf-8")]);
    assert_refused(&out, "network = false alone");
    assert!(
        both(&out).contains("`network = false` needs `isolation = \"sandbox\"`"),
        "{}",
        both(&out)
    );
    let file = repo.plan(
        "bad.toml",
        "name = \"p\"\n[defaults]\nisolation = \"jail\"\n[[phases]]\nid = \"one\"\n",
    );
    assert_refused(
        &repo.orch(&["check", file.to_str().expect("utf-8")]),
        "isolation = jail",
    );
}
