//! Containment that holds (issue 20): git-orch touches only what it made
//! and runs only what was approved. A worktree a person added on a task's
//! branch survives `finish`, `task reset`, `task skip` and `rollback`; an
//! untrusted plan's `[worktrees] setup` never runs from `task start`; a
//! task under review lands only once reviewed, whichever way it is done;
//! the MCP server serves the one repository it was started in. Real
//! repositories, the real binary (and the real Python MCP client), results
//! read back with git.
use crate::common::*;

use std::path::{Path, PathBuf};

use serde_json::Value;

// ------------------------------------------------------------- helpers

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Runs the `calls` scenario of tests/mcp_client.py against `git orch mcp`
/// started in `repo`: each `(tool, arguments)` in order; the transcript's
/// calls come back.
fn mcp_calls(repo: &TestRepo, calls: &[(&str, Value)]) -> Vec<Value> {
    let script: Vec<Value> = calls
        .iter()
        .map(|(tool, args)| serde_json::json!([tool, args]))
        .collect();
    let t = mcp_client(repo, "calls", &[&Value::Array(script).to_string()]);
    t["calls"].as_array().expect("calls").clone()
}

/// A failed MCP call: an `mcp-error` document, valid against its schema.
fn mcp_refused(call: &Value) -> &Value {
    assert_eq!(call["is_error"], true, "{call:#}");
    assert_eq!(call["structured"]["schema"], "mcp-error", "{call:#}");
    let errors = schema_errors(&call["structured"]);
    assert!(errors.is_empty(), "{}: {errors:?}", call["tool"]);
    &call["structured"]
}

fn mcp_ok(call: &Value) -> &Value {
    assert_eq!(call["is_error"], false, "{} failed: {call:#}", call["tool"]);
    let errors = schema_errors(&call["structured"]);
    assert!(errors.is_empty(), "{}: {errors:?}", call["tool"]);
    &call["structured"]
}

// ------------------------------------- 13: MCP serves its own repository

fn two_tasks() -> String {
    PlanText::new("p")
        .task("a", |t| t.files(["a.txt"]))
        .task("b", |t| t.files(["b.txt"]))
        .to_string()
}

#[test]
fn mcp_repo_argument_never_reaches_another_repository() {
    let served = TestRepo::new();
    started(&served, &two_tasks());
    let other = TestRepo::new();
    started(&other, &two_tasks());
    let other_refs = other.refs();
    // The other repository three ways: absolute, relative (`../…`), and
    // through a symlink inside the served one.
    let absolute = other.path.to_str().expect("utf-8").to_string();
    let relative = format!(
        "../../{}/repo",
        other
            .scratch()
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
    );
    std::os::unix::fs::symlink(&other.path, served.path.join("elsewhere")).expect("symlink");
    // A task worktree of the served repository is still served.
    let out = served.orch(&["task", "start", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let worktree = stdout(&out).trim().to_string();

    let calls = mcp_calls(
        &served,
        &[
            ("status", serde_json::json!({ "repo": absolute })),
            ("status", serde_json::json!({ "repo": relative })),
            ("status", serde_json::json!({ "repo": "elsewhere" })),
            (
                "task_start",
                serde_json::json!({ "id": "a", "repo": absolute }),
            ),
            (
                "task_start",
                serde_json::json!({ "id": "b", "repo": relative }),
            ),
            ("status", serde_json::json!({ "repo": worktree })),
            ("status", serde_json::json!({ "repo": "." })),
        ],
    );
    for call in &calls[..5] {
        let doc = mcp_refused(call);
        assert_eq!(doc["exit_code"], 2, "{call:#}");
        assert!(
            doc["error"]
                .as_str()
                .is_some_and(|e| e.contains("is not in the repository this MCP server serves")),
            "{call:#}"
        );
        assert!(doc["hint"].is_string(), "{call:#}");
    }
    assert_eq!(mcp_ok(&calls[5])["schema"], "status");
    assert_eq!(mcp_ok(&calls[6])["schema"], "status");
    // Nothing was started in the other repository.
    assert_eq!(other.refs(), other_refs);
    let st = status_json(&other);
    assert_eq!(task_state(&st, "a"), "pending");
    assert_eq!(task_state(&st, "b"), "pending");
}

// -------------------- 11: an untrusted plan's setup never runs by hand

/// Plan `p` whose `[worktrees] setup` appends a line to `marker`.
fn setup_plan(marker: &Path) -> String {
    format!(
        r#"name = "p"
[worktrees]
setup = "echo ran >> '{}'"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a.txt"]
  [[phases.tasks]]
  id = "b"
  files = ["b.txt"]
"#,
        marker.display()
    )
}

fn lines(path: &Path) -> usize {
    read(path).map_or(0, |s| s.lines().count())
}

/// The refusal of a by-hand start of an untrusted plan: exit 2, one
/// `error:` line naming the plan, a hint that names `git orch trust p`.
fn assert_untrusted(out: &std::process::Output, what: &str) {
    assert_refused(out, what);
    let err = stderr(out);
    let first = err.lines().next().unwrap_or_default();
    assert!(first.contains("plan `p` is not trusted"), "{what}: {err}");
    assert_eq!(err.matches("error:").count(), 1, "{what}: {err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("hint:") && l.contains("git orch trust p")),
        "{what}: {err}"
    );
}

#[test]
fn untrusted_setup_never_runs_from_task_start_retry_by_hand_or_mcp() {
    let repo = TestRepo::new();
    let marker = repo.scratch().join("ran-setup");
    started(&repo, &setup_plan(&marker));
    // Trusted (started here): a by-hand start runs the setup, once.
    let out = repo.orch(&["task", "start", "b"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let b_worktree = PathBuf::from(stdout(&out).trim());
    assert_eq!(lines(&marker), 1);
    repo.orch_ok(&["task", "fail", "b", "--reason", "by hand"]);
    // Its worktree removed by hand: a retry would make it (and set it up)
    // again.
    std::fs::remove_dir_all(&b_worktree).expect("rm worktree");

    // No longer approved here: as a plan fetched from elsewhere, or one
    // whose setup changed.
    repo.orch_ok(&["trust", "p", "--revoke"]);
    let refs = repo.refs();
    let worktrees = repo.git(&["worktree", "list", "--porcelain"]);

    assert_untrusted(&repo.orch(&["task", "start", "a"]), "task start a");
    assert_untrusted(
        &repo.orch(&["task", "retry", "b", "--by-hand"]),
        "task retry b --by-hand",
    );
    let calls = mcp_calls(&repo, &[("task_start", serde_json::json!({ "id": "a" }))]);
    let doc = mcp_refused(&calls[0]);
    assert_eq!(doc["exit_code"], 2, "{doc:#}");
    assert!(
        doc["error"]
            .as_str()
            .is_some_and(|e| e.contains("plan `p` is not trusted")),
        "{doc:#}"
    );

    // Nothing ran and nothing changed.
    assert_eq!(lines(&marker), 1, "the setup never ran untrusted");
    assert_eq!(repo.refs(), refs);
    assert_eq!(repo.git(&["worktree", "list", "--porcelain"]), worktrees);
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "pending");
    assert_eq!(task_state(&st, "b"), "failed");

    // Trusted again, the same start runs it.
    repo.orch_ok(&["trust", "p", "--yes"]);
    let out = repo.orch(&["task", "start", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(lines(&marker), 2);
}

// ------------- 2: a person's worktree on a task's branch is never taken

/// A repository whose `.gitignore` ignores `.env`.
fn project() -> TestRepo {
    let repo = TestRepo::new();
    repo.write(".gitignore", ".env\n");
    repo.commit_all("ignore .env");
    repo
}

/// Plan `p`: task `a` writes a.txt when run; task `b` fails.
fn run_plan() -> String {
    PlanText::new("p")
        .task("a", |t| t.files(["a.txt"]).run("echo a > a.txt"))
        .task("b", |t| t.files(["b.txt"]).run("echo b > b.txt; exit 3"))
        .to_string()
}

/// A person's worktree at `<scratch>/<name>`, added on `rev` as given
/// (`extra` may be `--detach` or `-f`), with an ignored `.env` and an
/// untracked note.
fn look(repo: &TestRepo, name: &str, extra: &[&str], rev: &str) -> PathBuf {
    let path = repo.scratch().join(name);
    let mut args = vec!["worktree", "add", "-q"];
    args.extend_from_slice(extra);
    let shown = path.to_str().expect("utf-8").to_string();
    args.extend([shown.as_str(), rev]);
    repo.git(&args);
    put(&path, ".env", "TOKEN=mine\n");
    put(&path, "notes.txt", "my notes\n");
    path
}

/// What a person's worktree holds that must survive: its HEAD (symbolic
/// or not), the commit, its ignored and untracked files.
fn held(repo: &TestRepo, path: &Path) -> (String, String, Option<String>, Option<String>) {
    let head = read(&path.join(".git"))
        .and_then(|g| {
            let dir = g.strip_prefix("gitdir:")?.trim().to_string();
            read(&Path::new(&dir).join("HEAD"))
        })
        .unwrap_or_default();
    (
        head,
        repo.git_in(path, &["rev-parse", "HEAD"]),
        read(&path.join(".env")),
        read(&path.join("notes.txt")),
    )
}

/// The refusal of a command that would take a person's worktree: exit 2,
/// one `error:` line naming the worktree, a hint.
fn assert_foreign_refused(out: &std::process::Output, what: &str, path: &Path) {
    assert_refused(out, what);
    let err = stderr(out);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.contains("a worktree git-orch did not make")
            && first.contains(path.to_str().expect("utf-8")),
        "{what}: {err}"
    );
    assert_eq!(err.matches("error:").count(), 1, "{what}: {err}");
    assert!(err.lines().any(|l| l.starts_with("hint:")), "{what}: {err}");
}

#[test]
fn finish_leaves_a_worktree_a_person_added_on_a_task_branch() {
    let repo = project();
    started(
        &repo,
        run_plan()
            .split("  [[phases.tasks]]\n  id = \"b\"")
            .next()
            .expect("plan"),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    // The task landed and its worktree went back to the pool, so its
    // branch is free: a person looks at it in a worktree of their own.
    let mine = look(&repo, "look", &[], "orch/p/tasks/a");
    let before = held(&repo, &mine);
    assert!(before.0.contains("refs/heads/orch/p/tasks/a"), "{before:?}");
    let refs = repo.refs();
    let state = repo.rev("orch/p/state");

    // finish would delete the branch under it: refused, nothing changed.
    let out = repo.orch(&["finish"]);
    assert_foreign_refused(&out, "finish", &mine);
    assert_eq!(held(&repo, &mine), before);
    assert_eq!(repo.refs(), refs);
    assert_eq!(repo.rev("orch/p/state"), state);

    // Off the branch (detached, as `git worktree add --detach` makes one),
    // finish goes on and never touches it.
    repo.git_in(&mine, &["switch", "-q", "--detach"]);
    let detached = held(&repo, &mine);
    let out = repo.orch(&["finish"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(held(&repo, &mine), detached);
    assert_eq!(read(&mine.join(".env")).as_deref(), Some("TOKEN=mine\n"));
    assert!(repo.rev("orch/p/tasks/a").is_none(), "the task branch went");
    let list = repo.git(&["worktree", "list", "--porcelain"]);
    assert!(list.contains(mine.to_str().expect("utf-8")), "{list}");
    repo.fsck();
}

#[test]
fn task_reset_and_skip_leave_a_worktree_a_person_added_on_the_task_branch() {
    let repo = project();
    started(&repo, &run_plan());
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert_eq!(task_state(&status_json(&repo), "b"), "failed");
    // git refuses a second worktree on a checked-out branch unless forced.
    let mine = look(&repo, "look", &["-f"], "orch/p/tasks/b");
    let before = held(&repo, &mine);
    let refs = repo.refs();

    for args in [&["task", "reset", "b"][..], &["task", "skip", "b"][..]] {
        let out = repo.orch(args);
        assert_foreign_refused(&out, &args.join(" "), &mine);
        assert_eq!(held(&repo, &mine), before);
        assert_eq!(repo.refs(), refs, "{args:?} changed nothing");
        assert_eq!(task_state(&status_json(&repo), "b"), "failed");
    }

    // A detached look at the task's commit is no obstacle, and survives.
    repo.git_in(&mine, &["switch", "-q", "--detach"]);
    let detached = held(&repo, &mine);
    let own = repo.path.join(".orch/worktrees/p/b");
    assert!(own.join(".git").is_file(), "the task's own worktree");
    let out = repo.orch(&["task", "reset", "b"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(held(&repo, &mine), detached);
    assert!(!own.exists(), "the task's own worktree went");
    assert!(repo.rev("orch/p/tasks/b").is_none(), "its branch went");
    assert_eq!(task_state(&status_json(&repo), "b"), "pending");
    repo.fsck();
}

#[test]
fn rollback_leaves_a_worktree_a_person_added_on_a_task_branch() {
    let repo = project();
    started(
        &repo,
        run_plan()
            .split("  [[phases.tasks]]\n  id = \"b\"")
            .next()
            .expect("plan"),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let mine = look(&repo, "look", &[], "orch/p/tasks/a");
    let before = held(&repo, &mine);
    let refs = repo.refs();
    let out = repo.orch(&["rollback", "--to", "start"]);
    assert_foreign_refused(&out, "rollback", &mine);
    assert_eq!(held(&repo, &mine), before);
    assert_eq!(repo.refs(), refs);

    repo.git_in(&mine, &["switch", "-q", "--detach"]);
    let detached = held(&repo, &mine);
    let out = repo.orch(&["rollback", "--to", "start"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(held(&repo, &mine), detached);
    assert_eq!(task_state(&status_json(&repo), "a"), "pending");
    repo.fsck();
}

// --------------- 12: a review is never skipped by finishing by hand

/// Plan `p`: tasks `a` and `b`, done by hand, reviewed by `review`.
fn review_plan(review: &str) -> String {
    format!(
        r#"name = "p"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a.txt"]
  review = {review}
  [[phases.tasks]]
  id = "b"
  files = ["b.txt"]
  review = {review}
"#
    )
}

/// `task start ID`, then `rel` written in its worktree.
fn start_and_write(repo: &TestRepo, id: &str, rel: &str) -> PathBuf {
    let out = repo.orch(&["task", "start", id]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let wt = PathBuf::from(stdout(&out).trim());
    put(&wt, rel, &format!("by hand: {id}\n"));
    wt
}

#[test]
fn task_done_of_a_manual_review_task_waits_for_approval() {
    let repo = TestRepo::new();
    started(&repo, &review_plan("\"manual\""));
    let work = repo.rev("orch/p/work");

    start_and_write(&repo, "a", "a.txt");
    let out = repo.orch(&["task", "done", "a", "-m", "a by hand"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(stderr(&out).contains("waits for review"), "{}", both(&out));
    assert_eq!(task_state(&status_json(&repo), "a"), "review");
    assert_eq!(repo.rev("orch/p/work"), work, "nothing landed");
    // Done again while it waits: refused, pointing at `task approve`.
    let again = repo.orch(&["task", "done", "a"]);
    assert_refused(&again, "task done a in review");
    assert!(
        stderr(&again).contains("git orch task approve a"),
        "{}",
        both(&again)
    );

    // The same through --json: a `review` document, valid.
    start_and_write(&repo, "b", "b.txt");
    let doc = repo.orch_json(&["task", "done", "b", "--json", "-m", "b by hand"]);
    assert_eq!(doc["state"], "review");
    assert_eq!(doc["detail"]["reviewer"], "manual");
    assert_eq!(doc["work"].as_str(), work.as_deref());
    assert_eq!(repo.rev("orch/p/work"), work);

    // Only an approval lands it, exactly what was reviewed.
    let head = doc["detail"]["head"].as_str().expect("head").to_string();
    repo.orch_ok(&["task", "approve", "a"]);
    repo.orch_ok(&["task", "approve", "b"]);
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "done");
    assert_eq!(task_state(&st, "b"), "done");
    assert_eq!(
        repo.show("orch/p/work:a.txt").as_deref(),
        Some("by hand: a\n")
    );
    assert_eq!(
        repo.show("orch/p/work:b.txt").as_deref(),
        Some("by hand: b\n")
    );
    assert_eq!(
        task_record(&repo, "p", "b").expect("record")["head"].as_str(),
        Some(head.as_str())
    );
    repo.fsck();
}

#[test]
fn task_done_runs_an_automatic_reviewer_and_a_rejection_does_not_land() {
    let repo = TestRepo::new();
    let seen = repo.scratch().join("reviewed");
    // Approves `b` (it reads the reviewed head), rejects everything else.
    let review = format!(
        "{{ run = '''echo \"$ORCH_TASK $ORCH_REVIEW_HEAD\" >> \"{}\"; if test \"$ORCH_TASK\" = b && git cat-file -e \"$ORCH_REVIEW_HEAD:b.txt\"; then exit 0; fi; echo never; exit 1''' }}",
        seen.display()
    );
    started(&repo, &review_plan(&review));
    let work = repo.rev("orch/p/work");

    start_and_write(&repo, "a", "a.txt");
    let out = repo.orch(&["task", "done", "a", "-m", "a by hand"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(
        stderr(&out).contains("rejected in review"),
        "{}",
        both(&out)
    );
    assert_eq!(task_state(&status_json(&repo), "a"), "failed");
    assert_eq!(repo.rev("orch/p/work"), work, "a rejection lands nothing");
    let record = task_record(&repo, "p", "a").expect("record");
    assert!(
        record["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("rejected in review (command)")),
        "{record:#}"
    );
    // Fixed and done again by hand: reviewed again, rejected again.
    let out = repo.orch(&["task", "done", "a", "--json"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let doc = json_doc(&out, "task done a --json");
    assert_eq!(doc["state"], "failed");
    assert!(doc["detail"]["rejected"].is_string(), "{doc:#}");
    assert_eq!(repo.rev("orch/p/work"), work);

    // An approval lands it at once.
    start_and_write(&repo, "b", "b.txt");
    let out = repo.orch(&["task", "done", "b", "-m", "b by hand"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(task_state(&status_json(&repo), "b"), "done");
    assert_eq!(
        repo.show("orch/p/work:b.txt").as_deref(),
        Some("by hand: b\n")
    );
    assert_eq!(repo.show("orch/p/work:a.txt"), None);
    let reviewed = read(&seen).unwrap_or_default();
    assert_eq!(
        reviewed.lines().filter(|l| l.starts_with("a ")).count(),
        2,
        "{reviewed}"
    );
    assert_eq!(
        reviewed.lines().filter(|l| l.starts_with("b ")).count(),
        1,
        "{reviewed}"
    );
    repo.fsck();
}

#[test]
fn mcp_task_done_of_a_manual_review_task_waits_for_task_approve() {
    let repo = TestRepo::new();
    started(&repo, &review_plan("\"manual\""));
    let work = repo.rev("orch/p/work");
    start_and_write(&repo, "a", "a.txt");
    let calls = mcp_calls(
        &repo,
        &[
            (
                "task_done",
                serde_json::json!({ "id": "a", "message": "over MCP" }),
            ),
            ("status", serde_json::json!({})),
        ],
    );
    let doc = mcp_ok(&calls[0]);
    assert_eq!(doc["schema"], "task-done");
    assert_eq!(doc["state"], "review", "{doc:#}");
    assert_eq!(repo.rev("orch/p/work"), work, "nothing landed over MCP");
    assert_eq!(task_state(&status_json(&repo), "a"), "review");
    let calls = mcp_calls(&repo, &[("task_approve", serde_json::json!({ "id": "a" }))]);
    assert_eq!(mcp_ok(&calls[0])["state"], "done");
    assert_eq!(
        repo.show("orch/p/work:a.txt").as_deref(),
        Some("by hand: a\n")
    );
}

/// git itself will not move a branch under another worktree; `task start`
/// says why before it claims anything, rather than claiming, failing in
/// `git worktree add` and giving the task back.
#[test]
fn task_start_refuses_a_task_branch_a_persons_worktree_holds_changing_nothing() {
    let repo = project();
    started(&repo, &two_tasks());
    // A person made the task's branch themselves, in a worktree of theirs,
    // and committed on it.
    let mine = repo.scratch().join("mine");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "orch/p/tasks/a",
        mine.to_str().expect("utf-8"),
    ]);
    put(&mine, "a.txt", "mine\n");
    put(&mine, ".env", "TOKEN=mine\n");
    repo.git_in(&mine, &["add", "a.txt"]);
    repo.git_in(&mine, &["commit", "-q", "-m", "mine"]);
    let before = held(&repo, &mine);
    let refs = repo.refs();
    let out = repo.orch(&["task", "start", "a"]);
    assert_foreign_refused(&out, "task start a", &mine);
    assert_eq!(held(&repo, &mine), before);
    assert_eq!(repo.refs(), refs);
    assert_eq!(task_state(&status_json(&repo), "a"), "pending");
}

/// A runner meets the same refusal and stops with it, rather than waiting
/// for a task it can never claim.
#[test]
fn run_stops_at_a_task_branch_a_persons_worktree_holds() {
    let repo = project();
    started(
        &repo,
        run_plan()
            .split("  [[phases.tasks]]\n  id = \"b\"")
            .next()
            .expect("plan"),
    );
    let mine = repo.scratch().join("mine");
    repo.git(&[
        "worktree",
        "add",
        "-q",
        "-b",
        "orch/p/tasks/a",
        mine.to_str().expect("utf-8"),
    ]);
    put(&mine, ".env", "TOKEN=mine\n");
    let before = held(&repo, &mine);
    let out = repo
        .command("timeout", &repo.path)
        .args(["60", BIN, "run"])
        .output()
        .expect("run");
    assert_foreign_refused(&out, "run", &mine);
    assert_eq!(held(&repo, &mine), before);
    assert_eq!(task_state(&status_json(&repo), "a"), "pending");
}

/// Rewrites task `id`'s record on the state branch of plan `p` with plain
/// git so that it names `path` as its worktree, as a state fetched from
/// elsewhere may.
fn forge_worktree(repo: &TestRepo, id: &str, path: &Path) {
    let record = record_path(id);
    let script = format!(
        r##"st=refs/heads/orch/p/state
head=$(git rev-parse $st)
tmp=$(mktemp -d)
git show $st:{record} | sed -E 's#"worktree": ?"[^"]*"#"worktree": "{path}"#' > $tmp/r.json
blob=$(git hash-object -w $tmp/r.json)
GIT_INDEX_FILE=$tmp/index git read-tree $head
GIT_INDEX_FILE=$tmp/index git update-index --cacheinfo 100644,$blob,{record}
tree=$(GIT_INDEX_FILE=$tmp/index git write-tree)
commit=$(echo forged | git commit-tree $tree -p $head)
git update-ref $st $commit $head
rm -rf $tmp"##,
        path = path.display()
    );
    let out = repo
        .command("sh", &repo.path)
        .args(["-c", &script])
        .output()
        .expect("sh");
    assert!(out.status.success(), "{}", both(&out));
    assert_eq!(
        task_record(repo, "p", id).expect("record")["worktree"].as_str(),
        path.to_str()
    );
}

/// `rollback --undo` brings a task's worktree back only at the task's own
/// place: the path its record names may be any directory (a state fetched
/// from elsewhere), and a snapshot restored there would overwrite it.
#[test]
fn rollback_undo_restores_a_worktree_only_at_the_tasks_own_place() {
    let repo = project();
    started(
        &repo,
        &PlanText::new("p")
            .task("a", |t| t.files(["a.txt"]).run("echo a > a.txt"))
            .phase("two", |p| {
                p.task("b", |t| t.files(["b.txt"]).run("echo b > b.txt; exit 3"))
            })
            .to_string(),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert_eq!(task_state(&status_json(&repo), "b"), "failed");
    let mine = look(&repo, "look", &["--detach"], "main");
    // b's record made to name the person's worktree as b's.
    forge_worktree(&repo, "b", &mine);
    let before = held(&repo, &mine);
    let status = repo.git_in(&mine, &["status", "--porcelain", "--ignored"]);

    let out = repo.orch(&["rollback", "--to", "one"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let out = repo.orch(&["rollback", "--undo"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(held(&repo, &mine), before);
    assert_eq!(
        repo.git_in(&mine, &["status", "--porcelain", "--ignored"]),
        status,
        "nothing of task b was written into the person's worktree"
    );
    assert!(!mine.join("b.txt").exists());
}

/// A retry in place clears what is left at the task's worktree path only
/// at the task's own place: a record that names another directory (a
/// state fetched from elsewhere) is refused, and nothing there goes.
#[test]
fn task_retry_never_clears_a_directory_the_record_names_elsewhere() {
    let repo = project();
    started(&repo, &two_tasks());
    let out = repo.orch(&["task", "start", "b"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    repo.orch_ok(&["task", "fail", "b", "--reason", "by hand"]);
    let docs = repo.scratch().join("docs");
    put(&docs, "letter.txt", "dear\n");
    put(&docs, ".env", "TOKEN=mine\n");
    forge_worktree(&repo, "b", &docs);
    let refs = repo.refs();

    let out = repo.orch(&["task", "retry", "b", "--by-hand"]);
    assert_refused(&out, "task retry b --by-hand");
    assert!(
        stderr(&out).contains("git-orch clears nothing there"),
        "{}",
        both(&out)
    );
    assert_eq!(read(&docs.join("letter.txt")).as_deref(), Some("dear\n"));
    assert_eq!(read(&docs.join(".env")).as_deref(), Some("TOKEN=mine\n"));
    assert_eq!(repo.refs(), refs, "nothing changed");
    assert_eq!(task_state(&status_json(&repo), "b"), "failed");
}
