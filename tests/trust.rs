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
