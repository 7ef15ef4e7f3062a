//! The by-hand task flow (issue 10, "Trust"): repeated starts, handoff
//! notes in the worktree, failed tasks fixed in place, plans found from a
//! worktree, scopes that overlap, worktrees that left their branch or lost
//! their `.git`, and commits made on the work branch during a run. Real
//! repositories, the real binary, results read back with git.
use crate::common::*;

use std::path::{Path, PathBuf};

/// Two independent tasks with their own scopes, and one that overlaps `a`.
fn plan() -> String {
    PlanText::new("p")
        .task("a", |t| t.title("Task A").files(["a/**"]))
        .task("b", |t| t.files(["b/**"]))
        .task("wide", |t| t.files(["a/**", "w/**"]))
        .to_string()
}

/// `task start ID` run in `dir`: asserts exit 0 and stdout the path alone.
fn start_in(repo: &TestRepo, dir: &Path, id: &str) -> PathBuf {
    let out = repo.orch_in(dir, &["task", "start", id]);
    assert_eq!(code(&out), Some(0), "task start {id}: {}", both(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "the path alone on stdout: {text:?}");
    let path = PathBuf::from(lines[0]);
    assert!(path.join(".git").is_file(), "not a worktree: {text}");
    path
}

fn start(repo: &TestRepo, id: &str) -> PathBuf {
    start_in(repo, &repo.path, id)
}

fn record(repo: &TestRepo, id: &str) -> serde_json::Value {
    task_record(repo, "p", id).expect("a task record")
}

fn state_commits(repo: &TestRepo) -> String {
    repo.git(&["rev-parse", "orch/p/state"])
}

// ------------------------------------------------- 25: a repeated task start

#[test]
fn a_repeated_task_start_by_hand_prints_its_worktree_again() {
    let repo = new_started(&plan());
    let wt = start(&repo, "a");
    put(&wt, "a/wip.txt", "wip\n");
    let state = state_commits(&repo);
    // Again, from the main checkout and from inside the worktree: the same
    // path, exit 0, the work in it untouched, no new claim.
    assert_eq!(start(&repo, "a"), wt);
    assert_eq!(start_in(&repo, &wt, "a"), wt);
    assert_eq!(
        std::fs::read_to_string(wt.join("a/wip.txt"))
            .ok()
            .as_deref(),
        Some("wip\n")
    );
    assert_eq!(
        state_commits(&repo),
        state,
        "a repeated start changes no state"
    );
    assert_eq!(record(&repo, "a")["attempts"], 1);
    // `cd "$(git orch task start a)"` lands in the worktree.
    let out = repo
        .command("sh", &repo.path)
        .args(["-c", "cd \"$(git orch task start a)\" && pwd -P"])
        .output()
        .expect("sh");
    assert_eq!(
        stdout(&out).trim(),
        wt.to_str().expect("utf-8"),
        "{}",
        both(&out)
    );

    // A worktree that is gone is made again on the task's branch, keeping
    // what was committed there.
    repo.git_in(&wt, &["add", "-A"]);
    repo.git_in(&wt, &["commit", "-q", "-m", "wip"]);
    let head = repo.rev("orch/p/tasks/a").expect("task branch");
    std::fs::remove_dir_all(&wt).expect("rm worktree");
    assert_eq!(start(&repo, "a"), wt);
    assert_eq!(repo.git_in(&wt, &["rev-parse", "HEAD"]).trim(), head);
    assert_eq!(
        std::fs::read_to_string(wt.join("a/wip.txt"))
            .ok()
            .as_deref(),
        Some("wip\n")
    );
    repo.orch_ok(&["task", "done", "a"]);
    assert_eq!(repo.show("orch/p/work:a/wip.txt").as_deref(), Some("wip\n"));
    repo.fsck();
}

/// Rewrites task `id`'s record on the state branch with plain git, as
/// another machine or a runner would have written it.
fn forge_record(repo: &TestRepo, id: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut rec = record(repo, id);
    edit(&mut rec);
    let file = repo.scratch().join("record.json");
    std::fs::write(&file, rec.to_string()).expect("write record");
    let blob = repo.git(&["hash-object", "-w", file.to_str().expect("utf-8")]);
    let tmp_index = repo.scratch().join("state-index");
    let git = |args: &[&str]| {
        let out = repo
            .command("git", &repo.path)
            .env("GIT_INDEX_FILE", &tmp_index)
            .args(args)
            .output()
            .expect("git");
        assert!(out.status.success(), "{args:?}: {}", both(&out));
        stdout(&out).trim().to_string()
    };
    git(&["read-tree", "orch/p/state"]);
    let info = format!("100644,{},{}", blob.trim(), record_path(id));
    git(&["update-index", "--cacheinfo", &info]);
    let tree = git(&["write-tree"]);
    let commit = git(&["commit-tree", &tree, "-p", "orch/p/state", "-m", "forged"]);
    repo.git(&["update-ref", "refs/heads/orch/p/state", &commit]);
}

#[test]
fn a_task_claimed_by_a_runner_or_another_host_is_still_refused() {
    let repo = new_started(&plan());
    start(&repo, "a");
    for (what, host, manual) in [
        ("by hand on another host", "elsewhere.example", true),
        ("by a runner on another host", "elsewhere.example", false),
    ] {
        forge_record(&repo, "a", |r| {
            r["claim"]["host"] = host.into();
            r["claim"]["manual"] = manual.into();
        });
        let refs = repo.refs();
        let out = repo.orch(&["task", "start", "a"]);
        assert_refused(&out, what);
        assert!(stdout(&out).is_empty(), "{what}: no path");
        if manual {
            assert!(stderr(&out).contains("elsewhere.example"), "{}", both(&out));
        }
        assert_eq!(repo.refs(), refs, "{what}");
    }
}

// ------------------------------------- 22: the README's by-hand idiom, as is

#[test]
fn the_readme_by_hand_idiom_lands_and_keeps_the_note_out_of_the_work() {
    let repo = new_started(&plan());
    // README "By hand": cd into the worktree, work, write notes.md there,
    // `task done … --handoff notes.md` from there.
    let script = r#"set -e
cd "$(git orch task start a)"
mkdir -p a && echo tables > a/tables.sql
echo "Tables are in a/tables.sql." > notes.md
git orch task done a -m "Add tables" --handoff notes.md
"#;
    let out = repo
        .command("sh", &repo.path)
        .args(["-c", script])
        .output()
        .expect("sh");
    assert_eq!(code(&out), Some(0), "the README idiom: {}", both(&out));
    assert!(
        stderr(&out).contains("left out of the commit"),
        "says so: {}",
        both(&out)
    );
    assert_eq!(record(&repo, "a")["state"], "done");
    assert_eq!(
        repo.show("orch/p/work:a/tables.sql").as_deref(),
        Some("tables\n")
    );
    assert_eq!(
        repo.show("orch/p/work:notes.md"),
        None,
        "the note is not work"
    );
    let note = repo
        .show(&format!("orch/p/state:{}", handoff_path("a")))
        .expect("handoff note");
    assert!(note.contains("Tables are in a/tables.sql."), "{note}");
    repo.fsck();
}

#[test]
fn orch_handoff_file_lies_outside_the_worktree() {
    let repo = new_started(
        &PlanText::new("p")
            .task("a", |t| {
                t.files(["a/**"]).run(
                    r#"mkdir -p a && echo x > a/x
case "$ORCH_HANDOFF_FILE" in "$ORCH_WORKTREE"/*) echo INSIDE; exit 3;; esac
echo "from the runner" > "$ORCH_HANDOFF_FILE"
"#,
                )
            })
            .to_string(),
    );
    repo.orch_ok(&["run"]);
    assert_eq!(record(&repo, "a")["state"], "done");
    let note = repo
        .show(&format!("orch/p/state:{}", handoff_path("a")))
        .expect("handoff note");
    assert!(note.contains("from the runner"), "{note}");
    let files = repo.git(&["ls-tree", "-r", "--name-only", "orch/p/work"]);
    assert_eq!(files.lines().collect::<Vec<_>>(), ["README", "a/x"]);
}

// ------------------------------------------- 23: a failed task fixed in place

#[test]
fn a_failed_task_is_fixed_in_its_worktree_and_lands_with_task_done() {
    let repo = new_started(&plan());
    let wt = start(&repo, "a");
    put(&wt, "a/x.txt", "x\n");
    put(&wt, "stray.txt", "oops\n");
    let out = repo.orch(&["task", "done", "a"]);
    assert_eq!(code(&out), Some(1), "out of scope: {}", both(&out));
    assert_eq!(record(&repo, "a")["state"], "failed");
    // Fixed where it is, then landed again from the same worktree.
    std::fs::remove_file(wt.join("stray.txt")).expect("rm stray");
    let out = repo.orch(&["task", "done", "a"]);
    assert_eq!(code(&out), Some(0), "lands again: {}", both(&out));
    assert_eq!(record(&repo, "a")["state"], "done");
    assert_eq!(repo.show("orch/p/work:a/x.txt").as_deref(), Some("x\n"));
    assert_eq!(repo.show("orch/p/work:stray.txt"), None);
    assert!(wt.join(".git").exists(), "a worktree done by hand stays");

    // A failed task whose worktree is gone says to reset it.
    let wt = start(&repo, "b");
    put(&wt, "stray.txt", "oops\n");
    assert_eq!(code(&repo.orch(&["task", "done", "b"])), Some(1));
    std::fs::remove_dir_all(&wt).expect("rm worktree");
    let out = repo.orch(&["task", "done", "b"]);
    assert_refused(&out, "a failed task without its worktree");
    assert!(
        stderr(&out).contains("git orch task reset b"),
        "{}",
        both(&out)
    );
    repo.fsck();
}

#[test]
fn the_brief_after_a_reset_says_why_the_last_attempt_failed() {
    let repo = new_started(
        &PlanText::new("p")
            .task("a", |t| {
                t.files(["a/**"])
                    .run("mkdir -p a && echo half > a/half.txt && echo boom-marker-1234 && exit 3")
            })
            .to_string(),
    );
    assert_eq!(code(&repo.orch(&["run"])), Some(1));
    assert_eq!(record(&repo, "a")["state"], "failed");
    let out = repo.orch(&["task", "reset", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let kept = stderr(&out)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("its work is kept in ")
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("the reset names the preserved ref: {}", both(&out)));
    assert_eq!(
        repo.show(&format!("{kept}:a/half.txt")).as_deref(),
        Some("half\n"),
        "the preserved ref holds the work"
    );
    let started = repo.orch_json(&["task", "start", "a", "--json"]);
    let brief =
        std::fs::read_to_string(started["task_file"].as_str().expect("task_file")).expect("brief");
    assert!(brief.contains("Why the last attempt failed"), "{brief}");
    assert!(brief.contains("exit"), "the reason: {brief}");
    assert!(
        brief.contains("boom-marker-1234"),
        "the log's tail: {brief}"
    );
    assert!(brief.contains(&kept), "where its work is kept: {brief}");
    // The log is named by the command that prints it (issue 23).
    assert!(
        brief.contains("git orch log p a --attempt 1"),
        "how to read the log: {brief}"
    );
}

// --------------------------------------- 24: the plan of a task's worktree

#[test]
fn commands_in_a_task_worktree_pick_its_plan_among_several() {
    let repo = new_started(&plan());
    let q = repo.plan("q.toml", &plan().replace("name = \"p\"", "name = \"q\""));
    repo.orch_ok(&["start", q.to_str().expect("utf-8")]);
    let out = repo.orch(&["task", "start", "a"]);
    assert_refused(&out, "two plans, none named, in the main checkout");
    let wt_p = repo.orch_ok(&["task", "start", "a", "--plan", "p"]);
    let wt_q = repo.orch_ok(&["task", "start", "a", "--plan", "q"]);
    let (wt_p, wt_q) = (PathBuf::from(wt_p.trim()), PathBuf::from(wt_q.trim()));
    // No --plan inside a worktree: the branch names the plan.
    let st = repo.orch_json_in(&wt_q, &["status", "--json"]);
    assert_eq!(st["plan"], "q");
    assert_eq!(start_in(&repo, &wt_p, "a"), wt_p);
    put(&wt_p, "a/p.txt", "p\n");
    let out = repo.orch_in(&wt_p, &["task", "done", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(task_record(&repo, "p", "a").expect("p/a")["state"], "done");
    assert_eq!(
        task_record(&repo, "q", "a").expect("q/a")["state"],
        "running"
    );
    assert_eq!(repo.show("orch/p/work:a/p.txt").as_deref(), Some("p\n"));
    assert_eq!(repo.show("orch/q/work:a/p.txt"), None);
}

// ------------------------------------ 10: overlapping scopes, started by hand

#[test]
fn a_task_started_by_hand_never_overlaps_a_running_task() {
    let repo = new_started(&plan());
    start(&repo, "a");
    let refs = repo.refs();
    let out = repo.orch(&["task", "start", "wide"]);
    assert_refused(&out, "wide overlaps the running a");
    let err = stderr(&out);
    assert!(err.contains("task `a`"), "names the running task: {err}");
    assert!(
        err.contains("git orch task done a"),
        "says what to finish: {err}"
    );
    assert!(stdout(&out).is_empty());
    assert_eq!(repo.refs(), refs, "a refusal changes nothing");
    assert_eq!(task_state(&status_json(&repo), "wide"), "pending");
    // Disjoint scopes still run side by side; once `a` is done, `wide` starts.
    start(&repo, "b");
    repo.orch_ok(&["task", "done", "a"]);
    start(&repo, "wide");
}

// ------------------------------- 2: a worktree that left its task branch

/// The ref a reset, skip or rollback printed as keeping the worktree.
fn kept_worktree(out: &std::process::Output, id: &str) -> String {
    stderr(out)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("its work is kept in "))
        .find(|r| r.ends_with(&format!("/worktrees/{id}")))
        .unwrap_or_else(|| panic!("no preserved worktree of {id}: {}", both(out)))
        .to_string()
}

#[test]
fn a_worktree_that_left_its_branch_is_preserved_by_reset_and_skip() {
    let repo = new_started(&plan());
    // Detached, a commit and an uncommitted file: both are kept by reset.
    let wt = start(&repo, "a");
    repo.git_in(&wt, &["checkout", "-q", "--detach"]);
    put(&wt, "a/committed.txt", "c\n");
    repo.git_in(&wt, &["add", "-A"]);
    repo.git_in(&wt, &["commit", "-q", "-m", "detached work"]);
    put(&wt, "a/loose.txt", "l\n");
    let out = repo.orch(&["task", "reset", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let kept = kept_worktree(&out, "a");
    assert_eq!(
        repo.show(&format!("{kept}:a/committed.txt")).as_deref(),
        Some("c\n")
    );
    assert_eq!(
        repo.show(&format!("{kept}:a/loose.txt")).as_deref(),
        Some("l\n")
    );
    assert!(!wt.exists(), "the worktree goes once kept");

    // On another branch, clean, its commit kept by skip.
    let wt = start(&repo, "b");
    repo.git_in(&wt, &["switch", "-q", "-c", "other"]);
    put(&wt, "b/on-other.txt", "o\n");
    repo.git_in(&wt, &["add", "-A"]);
    repo.git_in(&wt, &["commit", "-q", "-m", "on other"]);
    let out = repo.orch(&["task", "skip", "b"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let kept = kept_worktree(&out, "b");
    assert_eq!(
        repo.show(&format!("{kept}:b/on-other.txt")).as_deref(),
        Some("o\n")
    );
    repo.fsck();
}

#[test]
fn a_worktree_without_its_dot_git_is_preserved_by_reset() {
    let repo = new_started(&plan());
    let wt = start(&repo, "a");
    put(&wt, "a/committed.txt", "c\n");
    repo.git_in(&wt, &["add", "-A"]);
    repo.git_in(&wt, &["commit", "-q", "-m", "work"]);
    put(&wt, "a/loose.txt", "l\n");
    std::fs::remove_file(wt.join(".git")).expect("rm .git");
    let out = repo.orch(&["task", "reset", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let kept = kept_worktree(&out, "a");
    assert_eq!(
        repo.show(&format!("{kept}:a/committed.txt")).as_deref(),
        Some("c\n")
    );
    assert_eq!(
        repo.show(&format!("{kept}:a/loose.txt")).as_deref(),
        Some("l\n")
    );
    assert!(!wt.exists());
    // And once git pruned its admin dir too: the files are still kept.
    let wt = start(&repo, "a");
    put(&wt, "a/plain.txt", "p\n");
    std::fs::remove_file(wt.join(".git")).expect("rm .git");
    repo.git(&["worktree", "prune"]);
    let out = repo.orch(&["task", "reset", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let kept = kept_worktree(&out, "a");
    assert_eq!(
        repo.show(&format!("{kept}:a/plain.txt")).as_deref(),
        Some("p\n")
    );
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        "",
        "the main checkout is untouched"
    );
    repo.fsck();
}

#[test]
fn rollback_and_undo_keep_a_detached_worktree() {
    let repo = new_started(&plan());
    let wt = start(&repo, "a");
    repo.git_in(&wt, &["checkout", "-q", "--detach"]);
    put(&wt, "a/committed.txt", "c\n");
    repo.git_in(&wt, &["add", "-A"]);
    repo.git_in(&wt, &["commit", "-q", "-m", "detached work"]);
    put(&wt, "a/loose.txt", "l\n");
    let out = repo.orch(&["rollback", "--to", "start"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let kept = repo.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/orch/p/preserved/",
    ]);
    let kept = kept
        .lines()
        .find(|r| r.ends_with("/worktrees/a"))
        .unwrap_or_else(|| panic!("the rollback keeps the worktree: {kept}"))
        .to_string();
    assert_eq!(
        repo.show(&format!("{kept}:a/committed.txt")).as_deref(),
        Some("c\n")
    );
    repo.orch_ok(&["rollback", "--undo"]);
    assert_eq!(
        std::fs::read_to_string(wt.join("a/committed.txt"))
            .ok()
            .as_deref(),
        Some("c\n"),
        "--undo brings the worktree back with what it held"
    );
    assert_eq!(
        std::fs::read_to_string(wt.join("a/loose.txt"))
            .ok()
            .as_deref(),
        Some("l\n")
    );
}

// ------------------- 5: never commit in the user's checkout instead of a task's

#[test]
fn a_task_that_deletes_its_dot_git_never_commits_into_the_users_branch() {
    let repo = TestRepo::new();
    // Worktrees inside the repository, and a file of the user's there.
    repo.git(&["config", "orch.worktreeDir", ".orch-worktrees"]);
    repo.write(".env.local", "SECRET=1\n");
    let plan = repo.plan(
        "plan.toml",
        &PlanText::new("p")
            .task("a", |t| {
                t.files(["a/**"])
                    .run("mkdir -p a && echo x > a/x && rm .git")
            })
            .to_string(),
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let main = repo.rev("main");
    assert!(main.is_some());
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "the task fails: {}", both(&out));
    assert_eq!(repo.rev("main"), main, "nothing committed on main");
    assert_eq!(repo.rev("HEAD"), main);
    let status = repo.git(&["status", "--porcelain"]);
    assert!(
        status.contains("?? .env.local"),
        "the user's file untouched: {status}"
    );
    let rec = record(&repo, "a");
    assert_eq!(rec["state"], "failed");
    assert!(
        rec["reason"].as_str().unwrap_or("").contains("`.git`"),
        "a clear reason: {rec}"
    );
    assert_eq!(repo.rev("orch/p/work"), repo.rev("orch/p/start^{}"));
    // What it made is kept by the reset.
    let out = repo.orch(&["task", "reset", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let kept = kept_worktree(&out, "a");
    assert_eq!(repo.show(&format!("{kept}:a/x")).as_deref(), Some("x\n"));
    assert_eq!(repo.show(&format!("{kept}:.env.local")), None);
    assert_eq!(repo.rev("main"), main);
    repo.fsck();
}
