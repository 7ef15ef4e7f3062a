//! Nothing is lost, whatever the moment a git-orch process dies (SPEC §2).
//!
//! 1. With `--features failpoints`: a table drives scenarios (manual task
//!    start/done, `run` with parallel tasks, checkpoint, rollback, undo,
//!    reset, finish, the repairs themselves) into every named crash point of
//!    `src/` in turn, then runs `status` and the next natural command, and
//!    checks the invariants below after the crash and again at the end. A
//!    test greps `src/` for `failpoint!("…")` and fails on any point the
//!    table does not crash at.
//! 2. Always: `kill -9` at deterministic pseudo-random moments of a real
//!    `git orch run -j 3`, each followed by `status`, `resume` and the same
//!    checks. `scripts/soak.sh N` runs the same loop N times against a
//!    release build (`ORCH_SOAK_RUNS=N`).
//!
//! The invariants: `git fsck` clean; `status --json` agrees with the refs
//! (work branch, checkpoint tags, start tag, task branches); every task's
//! work landed at most once, exactly once when the state says done, and is
//! otherwise still on its branch, a preserved ref or its recorded worktree;
//! no worktree or worktree directory that the state does not account for.
use crate::common::*;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

// ---------------------------------------------------------------- helpers

fn plan_file(repo: &TestRepo, text: &str) -> PathBuf {
    let text = text.replace("@OUT@", &out_dir(repo).display().to_string());
    repo.plan("plan.toml", &text)
}

/// A process that dies leaves its children running (`git worktree add`,
/// a task's command): they finish on their own. Waits until no process
/// names this test's directory, so the checks see what is left for good.
fn wait_for_orphans(repo: &TestRepo) {
    let dir = repo.scratch().display().to_string();
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        let out = Command::new("pgrep").args(["-f", &dir]).output();
        match out {
            Ok(o) if !o.stdout.is_empty() => std::thread::sleep(Duration::from_millis(20)),
            _ => return,
        }
    }
}

fn git_out(repo: &TestRepo, args: &[&str]) -> Output {
    repo.command("git", &repo.path)
        .args(args)
        .output()
        .expect("run git")
}

/// `status --json`, or `None` when no plan is started.
fn status(repo: &TestRepo) -> Result<Option<Value>, String> {
    let out = repo.orch(&["status", "--json"]);
    match out.status.code() {
        Some(0) => {
            let v: Value = serde_json::from_slice(&out.stdout)
                .map_err(|e| format!("status --json: bad JSON ({e}): {}", both(&out)))?;
            let errors = schema_errors(&v);
            if !errors.is_empty() {
                return Err(format!(
                    "status --json breaks schemas/status.json: {}",
                    errors.join("; ")
                ));
            }
            Ok(Some(v))
        }
        Some(2) if stderr(&out).contains("no plan") => Ok(None),
        _ => Err(format!("status failed: {}", both(&out))),
    }
}

fn tasks_of(st: &Value) -> Vec<Value> {
    st["tasks"].as_array().cloned().unwrap_or_default()
}

fn task_of<'a>(st: &'a Value, id: &str) -> Option<&'a Value> {
    st["tasks"].as_array()?.iter().find(|t| t["id"] == id)
}

/// Every ref as name → id.
fn all_refs(repo: &TestRepo) -> BTreeMap<String, String> {
    repo.git(&["for-each-ref", "--format=%(refname) %(objectname)"])
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, o)| (n.to_string(), o.to_string()))
        .collect()
}

/// `git worktree list --porcelain`, as (path, branch, prunable).
fn worktree_list(repo: &TestRepo) -> Vec<(String, Option<String>, bool)> {
    let text = repo.git(&["worktree", "list", "--porcelain"]);
    let mut list = Vec::new();
    for block in text.split("\n\n") {
        let mut path = None;
        let mut branch = None;
        let mut prunable = false;
        for line in block.lines() {
            if let Some(p) = line.strip_prefix("worktree ") {
                path = Some(p.to_string());
            } else if let Some(b) = line.strip_prefix("branch ") {
                branch = Some(b.to_string());
            } else if line.starts_with("prunable") {
                prunable = true;
            }
        }
        if let Some(p) = path {
            list.push((p, branch, prunable));
        }
    }
    list
}

/// Which refs hold `<id>.txt` with the task's content, in one `cat-file`.
fn refs_holding_work(repo: &TestRepo, ids: &[String]) -> BTreeMap<String, Vec<String>> {
    let refs: Vec<String> = all_refs(repo)
        .into_keys()
        .filter(|r| r.starts_with("refs/heads/orch/p/") || r.starts_with("refs/orch/p/"))
        .filter(|r| r != "refs/heads/orch/p/state")
        .collect();
    let mut want = BTreeMap::new();
    for id in ids {
        let mut child = repo
            .command("git", &repo.path)
            .args(["hash-object", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("hash-object");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{id}\n").as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("hash-object");
        want.insert(id.clone(), stdout(&out).trim().to_string());
    }
    let mut input = String::new();
    let mut asked = Vec::new();
    for r in &refs {
        for id in ids {
            input += &format!("{r}:{id}.txt\n");
            asked.push((r.clone(), id.clone()));
        }
    }
    let mut child = repo
        .command("git", &repo.path)
        .args(["cat-file", "--batch-check=%(objectname)"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("cat-file");
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("cat-file");
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((r, id), line) in asked.iter().zip(stdout(&out).lines()) {
        if want.get(id).is_some_and(|w| line.trim() == w) {
            found.entry(id.clone()).or_default().push(r.clone());
        }
    }
    found
}

/// How many landing commits on the work branch carry `Orch-Task: <id>`.
fn landings(repo: &TestRepo) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    if repo.rev("refs/heads/orch/p/work").is_none() {
        return counts;
    }
    for line in repo
        .git(&["log", "--format=%B", "refs/heads/orch/p/work"])
        .lines()
    {
        if let Some(id) = line.strip_prefix("Orch-Task: ") {
            *counts.entry(id.trim().to_string()).or_insert(0) += 1;
        }
    }
    counts
}

fn fsck(repo: &TestRepo) -> Result<(), String> {
    let out = git_out(repo, &["fsck", "--no-progress"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    if !out.status.success()
        || ["error", "missing", "broken", "corrupt"]
            .iter()
            .any(|bad| text.contains(bad))
    {
        return Err(format!("git fsck: {text}"));
    }
    Ok(())
}

fn is_ancestor(repo: &TestRepo, a: &str, b: &str) -> bool {
    git_out(repo, &["merge-base", "--is-ancestor", a, b])
        .status
        .success()
}

/// The invariants of the module doc, as a list of what is wrong.
/// `final_check`: the plan has come to rest (nothing half-done may remain,
/// not even a gate checkout or a prunable worktree entry).
fn problems(repo: &TestRepo, final_check: bool) -> Vec<String> {
    let mut bad = Vec::new();
    if let Err(e) = fsck(repo) {
        bad.push(e);
    }
    let st = match status(repo) {
        Ok(Some(st)) => st,
        Ok(None) => {
            // Not started (a crash before the state branch existed): no
            // half-made plan either.
            let refs = all_refs(repo);
            let left: Vec<&String> = refs.keys().filter(|r| r.contains("/orch/p/")).collect();
            if !left.is_empty() {
                bad.push(format!("no plan, but refs {left:?}"));
            }
            return bad;
        }
        Err(e) => {
            bad.push(e);
            return bad;
        }
    };
    let refs = all_refs(repo);
    let finished = st["finished"].as_bool().unwrap_or(false);

    // The work branch, the tags, the task branches follow the state.
    let work = refs.get("refs/heads/orch/p/work").cloned();
    if st["work"].as_str() != work.as_deref() {
        bad.push(format!(
            "state says work is {}, the branch is at {work:?}",
            st["work"]
        ));
    }
    match repo.rev("refs/tags/orch/p/start^{commit}") {
        Some(base) if st["base"].as_str() == Some(base.as_str()) => {}
        other => bad.push(format!(
            "start tag at {other:?}, the state's base is {}",
            st["base"]
        )),
    }
    for phase in st["phases"].as_array().cloned().unwrap_or_default() {
        let id = phase["id"].as_str().unwrap_or("?");
        let tag = repo.rev(&format!("refs/tags/orch/p/{id}^{{commit}}"));
        match phase["checkpoint"].as_str() {
            Some(cp) => {
                if tag.as_deref() != Some(cp) {
                    bad.push(format!("phase {id}: checkpoint {cp} but tag at {tag:?}"));
                }
                if work.as_deref().is_some_and(|w| !is_ancestor(repo, cp, w)) {
                    bad.push(format!(
                        "phase {id}: checkpoint {cp} is not on the work branch"
                    ));
                }
            }
            None if tag.is_some() => {
                bad.push(format!("phase {id}: no checkpoint but a tag at {tag:?}"))
            }
            None => {}
        }
    }
    let tasks = tasks_of(&st);
    let ids: Vec<String> = tasks
        .iter()
        .filter_map(|t| t["id"].as_str().map(str::to_string))
        .collect();
    let landed = landings(repo);
    for t in &tasks {
        let id = t["id"].as_str().unwrap_or("?");
        let state = t["state"].as_str().unwrap_or("?");
        let count = landed.get(id).copied().unwrap_or(0);
        let branch = refs.get(&format!("refs/heads/orch/p/tasks/{id}"));
        match (state, t["landed"].as_str()) {
            ("done", Some(commit)) => {
                if count != 1 {
                    bad.push(format!("task {id} is done but landed {count} times"));
                }
                if work
                    .as_deref()
                    .is_some_and(|w| !is_ancestor(repo, commit, w))
                {
                    bad.push(format!(
                        "task {id} landed at {commit}, not on the work branch"
                    ));
                }
            }
            _ if count > 0 => bad.push(format!("task {id} is {state} but landed {count} times")),
            _ => {}
        }
        if state == "pending" && branch.is_some() {
            bad.push(format!("task {id} is pending but has a branch"));
        }
        if finished && branch.is_some() {
            bad.push(format!("plan finished but task {id} has a branch"));
        }
    }
    for name in refs.keys() {
        if let Some(id) = name.strip_prefix("refs/heads/orch/p/tasks/") {
            if !ids.iter().any(|i| i == id) {
                bad.push(format!("branch {name} belongs to no task"));
            }
        }
    }

    // Every worktree is the main one, an idle one in the pool, or the
    // recorded worktree of a task, on that task's branch.
    let recorded: BTreeMap<String, String> = tasks
        .iter()
        .filter_map(|t| {
            Some((
                t["worktree"].as_str()?.to_string(),
                t["id"].as_str()?.to_string(),
            ))
        })
        .collect();
    let list = worktree_list(repo);
    let registered: Vec<&String> = list.iter().map(|(p, _, _)| p).collect();
    for (path, branch, prunable) in list.iter().skip(1) {
        if *prunable {
            if final_check {
                bad.push(format!("worktree {path} is prunable"));
            }
            continue;
        }
        if path.contains("/.pool/") {
            if branch.is_some() {
                bad.push(format!("pooled worktree {path} is on {branch:?}"));
            }
            continue;
        }
        if path.contains("/orch/gates/") {
            if final_check {
                bad.push(format!("gate checkout {path} left behind"));
            }
            continue;
        }
        // A runner that lands a task drops its worktree from the state and
        // parks it; dying in between leaves a parking marker, by which the
        // next `run`/`resume` parks it.
        let parking = Path::new(path)
            .file_name()
            .map(|id| {
                repo.path
                    .join(".git/orch/run/p")
                    .join(format!("{}.parking", id.to_string_lossy()))
            })
            .is_some_and(|m| m.exists());
        match recorded.get(path) {
            Some(id) => {
                let want = format!("refs/heads/orch/p/tasks/{id}");
                if branch.as_deref().is_some_and(|b| b != want) {
                    bad.push(format!("worktree {path} of task {id} is on {branch:?}"));
                }
            }
            None if parking && !final_check => {}
            None => bad.push(format!("worktree {path} is recorded nowhere")),
        }
    }
    let root = repo.path.join(".orch/worktrees/p");
    for dir in [root.clone(), root.join(".pool")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path().display().to_string();
            if e.file_name() != ".pool" && !registered.iter().any(|r| **r == p) {
                bad.push(format!("directory {p} is no worktree git knows"));
            }
        }
    }

    // A lock file left behind makes some later git command fail.
    if final_check {
        let mut stack = vec![repo.path.join(".git")];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() && !p.ends_with(".git/objects") && !p.ends_with(".git/orch") {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "lock") {
                    bad.push(format!("lock file {} left behind", p.display()));
                }
            }
        }
    }

    // Work that exists somewhere is never lost.
    let holding = refs_holding_work(repo, &ids);
    for id in &ids {
        if !out_dir(repo).join(format!("{id}.ran")).exists() {
            continue;
        }
        let on_refs = holding.get(id).cloned().unwrap_or_default();
        let in_worktree = task_of(&st, id)
            .and_then(|t| t["worktree"].as_str())
            .and_then(|w| std::fs::read_to_string(Path::new(w).join(format!("{id}.txt"))).ok())
            .is_some_and(|text| text == format!("{id}\n"));
        if on_refs.is_empty() && !in_worktree {
            bad.push(format!("the work of task {id} is nowhere"));
        }
    }
    bad
}

/// The plan ran to its end: every task done and landed exactly once with
/// its content, every phase checkpointed.
fn completion_problems(repo: &TestRepo, ids: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    let st = match status(repo) {
        Ok(Some(st)) => st,
        other => return vec![format!("no status: {other:?}")],
    };
    if !st["phase"].is_null() {
        bad.push(format!("phase {} still open", st["phase"]));
    }
    let landed = landings(repo);
    for id in ids {
        let state = task_of(&st, id)
            .and_then(|t| t["state"].as_str())
            .unwrap_or("?");
        if state != "done" {
            bad.push(format!("task {id} is {state}"));
        }
        if landed.get(*id).copied().unwrap_or(0) != 1 {
            bad.push(format!("task {id} landed {:?} times", landed.get(*id)));
        }
        if repo.show(&format!("refs/heads/orch/p/work:{id}.txt")) != Some(format!("{id}\n")) {
            bad.push(format!("{id}.txt is not on the work branch"));
        }
    }
    bad
}

/// Does the plan by hand from wherever it is: starts, writes and lands
/// each task of the current phase, checkpoints it, until every phase is.
/// A task left running without its worktree (a `task start` that died) is
/// started again, which must make its worktree.
fn drive_by_hand(repo: &TestRepo) -> Result<(), String> {
    drive_by_hand_until(repo, "")
}

/// [`drive_by_hand`] until phase `until` is the current one.
fn drive_by_hand_until(repo: &TestRepo, until: &str) -> Result<(), String> {
    for _ in 0..20 {
        let st = status(repo)?.ok_or("no plan")?;
        let Some(phase) = st["phase"].as_str().map(str::to_string) else {
            return Ok(());
        };
        if phase == until {
            return Ok(());
        }
        let mut open = false;
        for t in tasks_of(&st)
            .iter()
            .filter(|t| t["phase"] == phase.as_str())
        {
            let id = t["id"].as_str().unwrap_or("?");
            match t["state"].as_str().unwrap_or("?") {
                "done" | "skipped" => {}
                "running" => {
                    open = true;
                    let wt = t["worktree"].as_str().map(PathBuf::from);
                    match wt.filter(|w| w.join(".git").exists()) {
                        Some(w) => {
                            write_work(repo, id, &w);
                            ok(repo, &["task", "done", id])?;
                        }
                        None => {
                            // Started again, its worktree is made again.
                            let path = ok(repo, &["task", "start", id])?;
                            let w = Path::new(path.trim());
                            if !w.join(".git").exists() {
                                return Err(format!(
                                    "`task start {id}` again must make its worktree: {path}"
                                ));
                            }
                            write_work(repo, id, w);
                            ok(repo, &["task", "done", id])?;
                        }
                    }
                }
                "pending" => {
                    open = true;
                    let path = ok(repo, &["task", "start", id])?;
                    write_work(repo, id, Path::new(path.trim()));
                    ok(repo, &["task", "done", id])?;
                }
                other => return Err(format!("task {id} is {other}")),
            }
        }
        if !open {
            ok(repo, &["checkpoint"])?;
        }
    }
    Err("the plan did not finish by hand".to_string())
}

fn write_work(repo: &TestRepo, id: &str, worktree: &Path) {
    std::fs::write(worktree.join(format!("{id}.txt")), format!("{id}\n")).expect("write work");
    std::fs::write(out_dir(repo).join(format!("{id}.ran")), "").expect("evidence");
}

fn ok(repo: &TestRepo, args: &[&str]) -> Result<String, String> {
    let out = repo.orch(args);
    if out.status.code() == Some(0) {
        Ok(stdout(&out))
    } else {
        Err(format!("git orch {args:?} failed: {}", both(&out)))
    }
}

/// splitmix64: a fixed seed gives the same delays on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

// ------------------------------------------ 1. every named crash point

#[cfg(feature = "failpoints")]
mod points {
    use super::*;

    /// Phase one: `a`, `b` (which commits by itself) in parallel; phase two:
    /// `c` after `a`. Each task leaves `<id>.ran` in the scratch dir once its
    /// work exists, so a check knows whose work must not be lost.
    const AUTO: &str = r#"
name = "p"
[[gates]]
name = "ok"
run = "true"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  run = "echo a > a.txt && touch @OUT@/a.ran"
  files = ["a.txt"]
  [[phases.tasks]]
  id = "b"
  run = "echo b > b.txt && git add b.txt && git commit -q -m 'b by itself' && touch @OUT@/b.ran"
  files = ["b.txt"]
[[phases]]
id = "two"
  [[phases.tasks]]
  id = "c"
  run = "echo c > c.txt && touch @OUT@/c.ran"
  files = ["c.txt"]
  depends_on = ["a"]
"#;

    /// The same shape done by hand (`task start`, write, `task done`).
    const MANUAL: &str = r#"
name = "p"
[[gates]]
name = "ok"
run = "true"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a.txt"]
  [[phases.tasks]]
  id = "b"
  files = ["b.txt"]
[[phases]]
id = "two"
  [[phases.tasks]]
  id = "c"
  files = ["c.txt"]
  depends_on = ["a"]
"#;

    fn orch_with(repo: &TestRepo, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = repo.command(BIN, &repo.path);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args).output().expect("run git-orch")
    }

    struct Case {
        /// `name` or `name@n` (the n-th time the point is reached).
        point: &'static str,
        plan: &'static str,
        /// Steps before the crash (see [`step`]).
        setup: &'static str,
        /// The command that crashes at `point`.
        crash: &'static str,
        /// The next natural commands; `drive` finishes the plan by hand.
        recover: &'static str,
        /// How it must end: `done` (plan complete) or `finished`.
        end: &'static str,
    }

    const fn case(
        point: &'static str,
        plan: &'static str,
        setup: &'static str,
        crash: &'static str,
        recover: &'static str,
        end: &'static str,
    ) -> Case {
        Case {
            point,
            plan,
            setup,
            crash,
            recover,
            end,
        }
    }

    macro_rules! one_by_hand {
        () => {
            "start; task start a; work a; task done a; task start b; work b; task done b; checkpoint"
        };
    }
    macro_rules! c_done {
        () => {
            concat!(one_by_hand!(), "; task start c; work c; task done c")
        };
    }

    const RESUME: &str = "resume -j 2";
    const RUN: &str = "run -j 2";

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        // `start`
        case("start-written", AUTO, "", "start", "start; resume -j 2", "done"),
        case("state-created", AUTO, "", "start", RESUME, "done"),
        // `run` with two tasks at once: claim, worktree, commit, landing, parking
        case("task-claimed", AUTO, "start", RUN, RESUME, "done"),
        case("state-committed", AUTO, "start", RUN, RESUME, "done"),
        case("task-claimed@2", AUTO, "start", RUN, RESUME, "done"),
        case("worktree-unparked@3", AUTO, "start", RUN, RESUME, "done"),
        case("worktree-created", AUTO, "start", RUN, RESUME, "done"),
        case("task-committed", AUTO, "start", RUN, RESUME, "done"),
        case("state-written@3", AUTO, "start", RUN, RESUME, "done"),
        case("state-committed@3", AUTO, "start", RUN, RESUME, "done"),
        case("state-ref-moved", AUTO, "start", RUN, RESUME, "done"),
        case("task-landed", AUTO, "start", RUN, RESUME, "done"),
        case("worktree-detached", AUTO, "start", RUN, RESUME, "done"),
        case("worktree-parked", AUTO, "start", RUN, RESUME, "done"),
        // a move to or from the pool cut between the rename and git's record
        case("worktree-move-renamed", AUTO, "start", RUN, RESUME, "done"),
        case("worktree-move-renamed@2", AUTO, "start", RUN, RESUME, "done"),
        // the runner's checkpoint
        case("gate-checkout-made", AUTO, "start", RUN, RESUME, "done"),
        case("gates-ran", AUTO, "start", RUN, RESUME, "done"),
        case("state-committed@5", AUTO, "start", RUN, RESUME, "done"),
        case("checkpoint-tagged", AUTO, "start", RUN, RESUME, "done"),
        // `resume` recovering a dead runner's tasks
        case("recover-preserved", AUTO, "start; crash:task-committed run -j 2", RESUME, RESUME, "done"),
        case("recover-committed", AUTO, "start; crash:task-committed run -j 2", RESUME, RESUME, "done"),
        // `finish`
        case("finish-preserved", AUTO, "start; run -j 2", "finish", "finish", "finished"),
        case("finish-committed", AUTO, "start; run -j 2", "finish", "finish", "finished"),
        case("finish-pool-drained", AUTO, "start; run -j 2", "finish", "finish", "finished"),
        case("worktree-removed", MANUAL, concat!(c_done!(), "; checkpoint"), "finish", "finish", "finished"),
        case("task-branch-deleted", MANUAL, concat!(c_done!(), "; checkpoint"), "finish", "finish", "finished"),
        // by hand: `task start`, `task done`
        case("task-claimed", MANUAL, "start", "task start a", "drive", "done"),
        case("worktree-unparked", MANUAL, "start", "task start a", "drive", "done"),
        case("worktree-created", MANUAL, "start", "task start a", "drive", "done"),
        case("task-committed", MANUAL, "start; task start a; work a", "task done a", "drive", "done"),
        case("state-written", MANUAL, "start; task start a; work a", "task done a", "drive", "done"),
        case("state-committed", MANUAL, "start; task start a; work a", "task done a", "drive", "done"),
        case("state-ref-moved", MANUAL, "start; task start a; work a", "task done a", "drive", "done"),
        // dying while a ref is written, its name in the writers' lock
        case("ref-writer-named", MANUAL, "start; task start a; work a", "task done a", "drive", "done"),
        case("ref-writer-named@2", MANUAL, "start; task start a; work a", "task done a", "drive", "done"),
        // `checkpoint`
        case("gate-checkout-made", MANUAL, concat!(c_done!(), ""), "checkpoint", "drive", "done"),
        case("gates-ran", MANUAL, c_done!(), "checkpoint", "drive", "done"),
        case("state-committed", MANUAL, c_done!(), "checkpoint", "drive", "done"),
        case("checkpoint-tagged", MANUAL, c_done!(), "checkpoint", "drive", "done"),
        // `rollback --to start` of three tasks with worktrees and a tag
        case("rollback-preserved", MANUAL, c_done!(), "rollback --to start", "drive", "done"),
        case("state-written", MANUAL, c_done!(), "rollback --to start", "drive", "done"),
        case("state-committed", MANUAL, c_done!(), "rollback --to start", "drive", "done"),
        case("state-ref-moved", MANUAL, c_done!(), "rollback --to start", "drive", "done"),
        case("rollback-committed", MANUAL, c_done!(), "rollback --to start", "drive", "done"),
        case("worktree-removed", MANUAL, c_done!(), "rollback --to start", "drive", "done"),
        case("task-branch-deleted", MANUAL, c_done!(), "rollback --to start", "drive", "done"),
        case("rollback-discarded", MANUAL, c_done!(), "rollback --to start", "drive", "done"),
        // `rollback --undo`: of a landed task, and of a dirty running one
        case("state-committed", MANUAL, concat!(c_done!(), "; rollback"), "rollback --undo", "drive", "done"),
        case("undo-committed", MANUAL, concat!(c_done!(), "; rollback"), "rollback --undo", "drive", "done"),
        case("undo-branch-restored", MANUAL, concat!(c_done!(), "; rollback"), "rollback --undo", "drive", "done"),
        case("undo-worktree-restored", MANUAL, concat!(one_by_hand!(), "; task start c; work c; rollback"), "rollback --undo", "drive", "done"),
        // `task reset` of a dirty task
        case("reset-preserved", MANUAL, "start; task start a; work a", "task reset a", "drive", "done"),
        case("reset-committed", MANUAL, "start; task start a; work a", "task reset a", "drive", "done"),
        case("worktree-removed", MANUAL, "start; task start a; work a", "task reset a", "drive", "done"),
        case("task-branch-deleted", MANUAL, "start; task start a; work a", "task reset a", "drive", "done"),
        // the repairs any command makes (here `status`) after such crashes
        case("repair-worktree-kept", MANUAL, "start; task start a; work a; crash:reset-committed task reset a", "status", "drive", "done"),
        case("repair-worktree-removed", MANUAL, "start; task start a; work a; crash:reset-committed task reset a", "status", "drive", "done"),
        case("repair-preserved", MANUAL, concat!(c_done!(), "; crash:state-committed rollback --to one"), "status", "drive", "done"),
        case("repair-ref-moved", MANUAL, "start; task start a; work a; crash:state-committed task done a", "status", "drive", "done"),
    ];

    /// Runs one step: `start`, `work ID`, `drive`, `crash:POINT ARGS…`,
    /// or git-orch arguments that must succeed.
    fn step(repo: &TestRepo, plan: &Path, line: &str) -> Result<(), String> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(());
        }
        if let Some(id) = line.strip_prefix("work ") {
            let st = status(repo)?.ok_or("no plan")?;
            let wt = task_of(&st, id)
                .and_then(|t| t["worktree"].as_str())
                .ok_or(format!("task {id} has no worktree"))?
                .to_string();
            write_work(repo, id, Path::new(&wt));
            return Ok(());
        }
        if line == "drive" {
            return drive_by_hand(repo);
        }
        let plan_s = plan.display().to_string();
        let (point, rest) = match line.strip_prefix("crash:") {
            Some(rest) => {
                let (p, r) = rest.split_once(' ').ok_or("crash: needs a command")?;
                (Some(p), r)
            }
            None => (None, line),
        };
        let args: Vec<&str> = rest
            .split_whitespace()
            .flat_map(|a| {
                if a == "start" && rest.starts_with("start") {
                    vec!["start", plan_s.as_str()]
                } else {
                    vec![a]
                }
            })
            .collect();
        match point {
            Some(point) => crash(repo, point, &args),
            None => ok(repo, &args).map(|_| ()),
        }
    }

    /// Runs a command that must die at `point` (by the abort signal, as
    /// no normal exit of git-orch would).
    fn crash(repo: &TestRepo, point: &str, args: &[&str]) -> Result<(), String> {
        let out = orch_with(repo, args, &[("ORCH_FAILPOINT", point)]);
        wait_for_orphans(repo);
        if out.status.code().is_some() {
            return Err(format!(
                "git orch {args:?} did not reach {point} (exit {:?}): {}",
                out.status.code(),
                both(&out)
            ));
        }
        Ok(())
    }

    fn run_case(c: &Case) -> Result<(), String> {
        let repo = TestRepo::new();
        let plan = plan_file(&repo, c.plan);
        for line in c.setup.split(';') {
            step(&repo, &plan, line).map_err(|e| format!("setup `{line}`: {e}"))?;
        }
        step(&repo, &plan, &format!("crash:{} {}", c.point, c.crash))?;
        // Whatever the next command is, it must see a consistent plan.
        let after = problems(&repo, false);
        if !after.is_empty() {
            return Err(format!("after the crash: {after:#?}"));
        }
        for line in c.recover.split(';') {
            step(&repo, &plan, line).map_err(|e| format!("recovery `{line}`: {e}"))?;
        }
        let mut bad = problems(&repo, true);
        match c.end {
            "finished" => {
                let st = status(&repo)?.ok_or("no plan")?;
                if st["finished"] != true {
                    bad.push("the plan is not finished".to_string());
                }
                let left = worktree_list(&repo);
                if left.len() != 1 {
                    bad.push(format!("worktrees left after finish: {left:?}"));
                }
            }
            _ => {
                bad.extend(completion_problems(&repo, &["a", "b", "c"]));
                if c.plan == AUTO {
                    // The runner parks what it is done with.
                    let loose: Vec<_> = worktree_list(&repo)
                        .into_iter()
                        .skip(1)
                        .filter(|(p, _, _)| !p.contains("/.pool/"))
                        .collect();
                    if !loose.is_empty() {
                        bad.push(format!("loose worktrees after resume: {loose:?}"));
                    }
                }
            }
        }
        if bad.is_empty() {
            Ok(())
        } else {
            Err(format!("at the end: {bad:#?}"))
        }
    }

    /// Every crash point of the table, each in a fresh repository, on a
    /// few threads so the whole table stays well under a minute.
    #[test]
    fn a_crash_at_every_named_point_loses_nothing_and_the_next_command_recovers() {
        let started = Instant::now();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let failures = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(c) = CASES.get(i) else { break };
                    if let Err(e) = run_case(c) {
                        let what = format!(
                            "{} during `{}` (setup `{}`): {e}",
                            c.point, c.crash, c.setup
                        );
                        failures.lock().expect("lock").push(what);
                    }
                });
            }
        });
        let failures = failures.into_inner().expect("lock");
        assert!(
            failures.is_empty(),
            "{} of {} crash cases failed:\n\n{}",
            failures.len(),
            CASES.len(),
            failures.join("\n\n")
        );
        eprintln!("{} crash cases in {:?}", CASES.len(), started.elapsed());
    }

    /// The table crashes at every point there is: a new `failpoint!` in
    /// `src/` fails this test until a case reaches it.
    #[test]
    fn every_failpoint_in_the_source_is_in_the_table() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut found = std::collections::BTreeSet::new();
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("read src").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let text = std::fs::read_to_string(&p).expect("read source");
                    for part in text.split("failpoint!(\"").skip(1) {
                        if let Some((name, _)) = part.split_once('"') {
                            found.insert(name.to_string());
                        }
                    }
                }
            }
        }
        assert!(found.len() >= 20, "found only {found:?}");
        let table: std::collections::BTreeSet<&str> = CASES
            .iter()
            .map(|c| c.point.split('@').next().unwrap_or(c.point))
            .collect();
        let missing: Vec<&String> = found
            .iter()
            .filter(|n| !table.contains(n.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "crash points no case reaches: {missing:?}"
        );
        let stale: Vec<&&str> = table.iter().filter(|n| !found.contains(**n)).collect();
        assert!(
            stale.is_empty(),
            "cases for points that no longer exist: {stale:?}"
        );
    }
}

// ------------------------------------------ 2. kill -9 at random moments

/// Three tasks at once in phase one, one in phase two, a gate per checkpoint.
const KILLED: &str = r#"
name = "p"
[[gates]]
name = "ok"
run = "true"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  run = "echo a > a.txt && touch @OUT@/a.ran"
  files = ["a.txt"]
  [[phases.tasks]]
  id = "b"
  run = "echo b > b.txt && git add b.txt && git commit -q -m 'b by itself' && touch @OUT@/b.ran"
  files = ["b.txt"]
  [[phases.tasks]]
  id = "c"
  run = "echo c > c.txt && touch @OUT@/c.ran"
  files = ["c.txt"]
[[phases]]
id = "two"
  [[phases.tasks]]
  id = "d"
  run = "echo d > d.txt && touch @OUT@/d.ran"
  files = ["d.txt"]
  depends_on = ["a"]
"#;

/// One kill: start, `run -j 3` killed after `delay`, `status`, `resume`,
/// with no step by hand in between. Returns how many ref locks had to be
/// cleared by hand (always 0: a refusal is a failure).
fn kill_once(delay: Duration) -> Result<usize, String> {
    let repo = TestRepo::new();
    let plan = plan_file(&repo, KILLED);
    ok(&repo, &["start", plan.to_str().expect("utf-8")])?;
    let mut child = repo
        .command(BIN, &repo.path)
        .args(["run", "-j", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn run");
    std::thread::sleep(delay);
    let _ = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    let _ = child.wait();
    wait_for_orphans(&repo);
    // No manual step: a lock the kill left must be cleared by git-orch
    // itself (tests/locks.rs), so a refusal here is a failure.
    let locks = 0;
    ok(&repo, &["status"])?;
    let after = problems(&repo, false);
    if !after.is_empty() {
        return Err(format!("after the kill: {after:#?}"));
    }
    ok(&repo, &["resume", "-j", "3"])?;
    let mut bad = problems(&repo, true);
    bad.extend(completion_problems(&repo, &["a", "b", "c", "d"]));
    let own = repo
        .git(&["log", "--format=%s", "refs/heads/orch/p/work"])
        .lines()
        .filter(|l| *l == "b by itself")
        .count();
    if own != 1 {
        bad.push(format!("b's own commit is on the work branch {own} times"));
    }
    let loose: Vec<_> = worktree_list(&repo)
        .into_iter()
        .skip(1)
        .filter(|(p, _, _)| !p.contains("/.pool/"))
        .collect();
    if !loose.is_empty() {
        bad.push(format!("loose worktrees after resume: {loose:?}"));
    }
    if bad.is_empty() {
        Ok(locks)
    } else {
        Err(format!("after resume: {bad:#?}"))
    }
}

/// How long an uninterrupted run of the plan takes here, so the kills
/// spread over all of it on fast and slow machines alike.
fn full_run_time() -> Duration {
    let repo = TestRepo::new();
    let plan = plan_file(&repo, KILLED);
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let started = Instant::now();
    repo.orch_ok(&["run", "-j", "3"]);
    started.elapsed()
}

/// `kill -9` of a real parallel run at 50 moments (a fixed seed picks them
/// over the length of a whole run), each followed by `resume`; with
/// `ORCH_SOAK_RUNS=N` (scripts/soak.sh) it runs N times, counts the
/// failures and prints `N runs, K failures`.
#[test]
fn kill_nine_at_random_moments_then_resume_loses_nothing() {
    let soak = std::env::var("ORCH_SOAK_RUNS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok());
    let runs = soak.unwrap_or(50);
    let seed = std::env::var("ORCH_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0x0c4a_5eed);
    let span = full_run_time().as_micros() as u64 * 13 / 10 + 1;
    let mut rng = Rng(seed);
    let delays: Vec<Duration> = (0..runs)
        .map(|_| Duration::from_micros(rng.next() % span))
        .collect();
    let started = Instant::now();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let locks = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    // Two at a time: the kills still land all over the run, in half the time.
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(delay) = delays.get(i).copied() else {
                    break;
                };
                match kill_once(delay) {
                    Ok(n) => {
                        locks.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                    }
                    Err(e) => {
                        let what = format!("run {i} (killed after {delay:?}): {e}");
                        if soak.is_some() {
                            eprintln!("FAILED {what}");
                        }
                        failures.lock().expect("lock").push(what);
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().expect("lock");
    eprintln!(
        "{runs} runs, {} failures ({} ref locks cleared by hand; {:?}, seed {seed}, delays up to {:?})",
        failures.len(),
        locks.into_inner(),
        started.elapsed(),
        Duration::from_micros(span)
    );
    assert!(
        failures.is_empty(),
        "{} of {runs} killed runs lost something:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ------------------------------------------ 3. many processes at once

/// Six tasks done by hand and two run by `run`, in one phase.
const CROWDED: &str = r#"
name = "p"
[[gates]]
name = "ok"
run = "true"
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "m1"
  files = ["m1.txt"]
  [[phases.tasks]]
  id = "m2"
  files = ["m2.txt"]
  [[phases.tasks]]
  id = "m3"
  files = ["m3.txt"]
  [[phases.tasks]]
  id = "m4"
  files = ["m4.txt"]
  [[phases.tasks]]
  id = "m5"
  files = ["m5.txt"]
  [[phases.tasks]]
  id = "m6"
  files = ["m6.txt"]
  [[phases.tasks]]
  id = "r1"
  run = "echo r1 > r1.txt && touch @OUT@/r1.ran"
  files = ["r1.txt"]
  [[phases.tasks]]
  id = "r2"
  run = "echo r2 > r2.txt && touch @OUT@/r2.ran"
  files = ["r2.txt"]
[[phases]]
id = "two"
  [[phases.tasks]]
  id = "n1"
  files = ["n1.txt"]
"#;

const CROWD: [&str; 9] = ["m1", "m2", "m3", "m4", "m5", "m6", "r1", "r2", "n1"];

/// Runs `commands` all at once and adds to `claimed` the state-log subjects
/// of what each says it did (only from commands that exited 0).
fn wave(
    repo: &TestRepo,
    commands: &[Vec<&str>],
    claimed: &mut BTreeMap<String, usize>,
) -> Vec<String> {
    let children: Vec<_> = commands
        .iter()
        .map(|args| {
            repo.command(BIN, &repo.path)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("wait"))
        .collect();
    let mut claim = |subject: String| *claimed.entry(subject).or_insert(0) += 1;
    for (args, out) in commands.iter().zip(&outputs) {
        let code = out.status.code();
        assert!(matches!(code, Some(0..=2)), "{args:?} died: {}", both(out));
        assert!(
            !stderr(out).contains("panicked"),
            "{args:?} panicked: {}",
            both(out)
        );
        if code == Some(2) {
            assert!(
                stderr(out).lines().any(|l| l.starts_with("error:")),
                "{args:?}: a refusal says why: {}",
                both(out)
            );
        }
        if code != Some(0) {
            continue;
        }
        let v = json_doc(out, &format!("{args:?}"));
        match (args[0], args.get(1).copied()) {
            ("task", _) => claim(format!("task {}: done", args[2])),
            ("run", _) => {
                for id in v["landed"].as_array().into_iter().flatten() {
                    claim(format!("task {}: done", id.as_str().unwrap_or("?")));
                }
                for phase in v["checkpoints"].as_array().into_iter().flatten() {
                    claim(format!(
                        "checkpoint {}: passed",
                        phase.as_str().unwrap_or("?")
                    ));
                }
            }
            ("checkpoint", _) if v["passed"] == true => claim(format!(
                "checkpoint {}: passed",
                v["phase"].as_str().unwrap_or("?")
            )),
            ("rollback", Some("--undo")) => claim("rollback undone".to_string()),
            ("rollback", _) => claim("rollback to start".to_string()),
            _ => {}
        }
    }
    commands
        .iter()
        .zip(&outputs)
        .map(|(a, o)| {
            let why = stderr(o)
                .lines()
                .find(|l| l.starts_with("error:"))
                .unwrap_or("")
                .to_string();
            format!("{} → {:?} {why}", a.join(" "), o.status.code())
        })
        .collect()
}

/// The transitions the state log holds, keyed as [`wave`] claims them.
fn logged_transitions(repo: &TestRepo) -> (BTreeMap<String, usize>, String) {
    let log = repo.git(&["log", "--format=%s", "refs/heads/orch/p/state"]);
    let mut logged: BTreeMap<String, usize> = BTreeMap::new();
    for subject in log.lines() {
        let key = if subject.starts_with("checkpoint ") && subject.contains(": passed") {
            subject.split(" at ").next().unwrap_or(subject).to_string()
        } else if subject.starts_with("rollback to ") && subject.contains(" undone") {
            "rollback undone".to_string()
        } else if subject.starts_with("rollback to start") {
            "rollback to start".to_string()
        } else if subject.starts_with("task ") && subject.ends_with(": done") {
            subject.to_string()
        } else {
            continue;
        };
        *logged.entry(key).or_insert(0) += 1;
    }
    (logged, log)
}

/// Many processes at once on one plan, in two waves: six `task done`, two
/// `run`, a `checkpoint`, a `rollback` and two `status` (12); then, with
/// phase one checkpointed and a task of phase two open, two `rollback --to
/// start`, two `rollback --undo`, `checkpoint`, two `run` and `status` (8). After each wave every
/// command that says it succeeded has its transition in the state log,
/// exactly as often as all of them claim (no lost update, nothing done
/// twice), and the plan is consistent with nothing lost; at the end the
/// plan still runs to completion with every task landed once.
#[test]
fn many_processes_at_once_lose_no_update_and_land_nothing_twice() {
    let repo = TestRepo::new();
    let plan = plan_file(&repo, CROWDED);
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    for id in &CROWD[..6] {
        let path = repo.orch_ok(&["task", "start", id]);
        write_work(&repo, id, Path::new(path.trim()));
    }
    let mut claimed = BTreeMap::new();
    let mut first: Vec<Vec<&str>> = Vec::new();
    for id in &CROWD[..6] {
        first.push(vec!["task", "done", id, "--json"]);
    }
    first.extend([
        vec!["run", "-j", "2", "--json"],
        vec!["status", "--json"],
        vec!["checkpoint", "--json"],
        vec!["run", "-j", "2", "--json"],
        vec!["rollback", "--to", "start", "--json"],
        vec!["status", "--json"],
    ]);
    let mut summary = wave(&repo, &first, &mut claimed);
    let (logged, log) = logged_transitions(&repo);
    assert_eq!(
        logged, claimed,
        "wave 1: the state log and what the commands reported differ\n{summary:#?}\n{log}"
    );
    let bad = problems(&repo, false);
    assert!(bad.is_empty(), "wave 1: {bad:#?}\n{summary:#?}\n{log}");

    // Wave 2 from a checkpointed phase one, with n1 of phase two open.
    repo.orch_ok(&["run", "-j", "2"]);
    drive_by_hand_until(&repo, "two").unwrap_or_else(|e| panic!("{e}"));
    let path = repo.orch_ok(&["task", "start", "n1"]);
    write_work(&repo, "n1", Path::new(path.trim()));
    // What happened in between, one command at a time, is not under test.
    claimed = logged_transitions(&repo).0;
    let second: Vec<Vec<&str>> = vec![
        vec!["rollback", "--to", "start", "--json"],
        vec!["rollback", "--undo", "--json"],
        vec!["checkpoint", "--json"],
        vec!["run", "-j", "2", "--json"],
        vec!["rollback", "--to", "start", "--json"],
        vec!["rollback", "--undo", "--json"],
        vec!["status", "--json"],
        vec!["run", "-j", "2", "--json"],
    ];
    summary.extend(wave(&repo, &second, &mut claimed));
    let (logged, log) = logged_transitions(&repo);
    assert_eq!(
        logged, claimed,
        "wave 2: the state log and what the commands reported differ\n{summary:#?}\n{log}"
    );
    let bad = problems(&repo, false);
    assert!(bad.is_empty(), "wave 2: {bad:#?}\n{summary:#?}\n{log}");

    // Wave 3: two undos of that rollback (if one won) race each other.
    let third: Vec<Vec<&str>> = vec![
        vec!["rollback", "--undo", "--json"],
        vec!["status", "--json"],
        vec!["rollback", "--undo", "--json"],
    ];
    summary.extend(wave(&repo, &third, &mut claimed));
    let (logged, log) = logged_transitions(&repo);
    assert_eq!(
        logged, claimed,
        "wave 3: the state log and what the commands reported differ\n{summary:#?}\n{log}"
    );
    let bad = problems(&repo, false);
    assert!(bad.is_empty(), "wave 3: {bad:#?}\n{summary:#?}\n{log}");
    eprintln!("{summary:#?}");

    // Whatever happened, the plan still runs to its end, each task once.
    repo.orch_ok(&["run", "-j", "2"]);
    drive_by_hand(&repo).unwrap_or_else(|e| panic!("{e}"));
    let mut bad = problems(&repo, true);
    bad.extend(completion_problems(&repo, &CROWD));
    assert!(bad.is_empty(), "{bad:#?}\n{summary:#?}");
}

/// A `.lock` beside the state branch, as a git process that died leaves
/// it: commands that must move the branch refuse (exit 2) naming the file
/// and change nothing; once it is removed they go ahead.
#[test]
fn a_stale_ref_lock_is_named_and_changes_nothing_until_removed() {
    let repo = TestRepo::new();
    let plan = plan_file(&repo, CROWDED);
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let path = repo.orch_ok(&["task", "start", "m1"]);
    write_work(&repo, "m1", Path::new(path.trim()));
    let lock = repo.path.join(".git/refs/heads/orch/p/state.lock");
    std::fs::write(&lock, "").expect("write lock");
    let refs = repo.refs();
    let worktrees = repo.git(&["worktree", "list", "--porcelain"]);
    for args in [
        &["task", "start", "m2"][..],
        &["run", "-j", "2"][..],
        // preserves m1's worktree first: the refusal must take that back
        &["task", "reset", "m1"][..],
    ] {
        let started = Instant::now();
        let out = repo.orch(args);
        assert_refused(&out, &format!("{args:?} with a stale lock"));
        let first = stderr(&out).lines().next().unwrap_or("").to_string();
        assert!(
            first.contains(&lock.display().to_string()),
            "{args:?}: the error names the lock file: {}",
            both(&out)
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{args:?} took {:?}",
            started.elapsed()
        );
        assert_eq!(repo.refs(), refs, "{args:?} changed a ref");
        assert_eq!(
            repo.git(&["worktree", "list", "--porcelain"]),
            worktrees,
            "{args:?} changed the worktrees"
        );
    }
    std::fs::remove_file(&lock).expect("remove lock");
    let path = repo.orch_ok(&["task", "start", "m2"]);
    assert!(Path::new(path.trim()).join(".git").exists());
    repo.orch_ok(&["task", "reset", "m1"]);
    assert!(
        repo.git(&["for-each-ref", "refs/orch/p/preserved/"])
            .contains("reset-m1"),
        "reset keeps m1's work"
    );
    let bad = problems(&repo, false);
    assert!(bad.is_empty(), "{bad:#?}");
    repo.fsck();
}
