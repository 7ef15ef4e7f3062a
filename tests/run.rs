//! `git orch run` / `resume` end to end: real repositories, real task
//! commands in real worktrees, results checked with git itself.
use crate::common::*;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

// ---------------------------------------------------------------- helpers

/// Starts the plan in `toml` (placeholders `@OUT@` → a scratch directory
/// outside the repository, `@MARK@` → a marker unique to this test).
fn start(repo: &TestRepo, toml: &str) {
    started(repo, &fill(repo, toml));
}

fn fill(repo: &TestRepo, text: &str) -> String {
    text.replace("@OUT@", &out_dir(repo).display().to_string())
        .replace("@MARK@", &marker(repo))
}

/// A string unique to this test repository, for `pgrep -f`.
fn marker(repo: &TestRepo) -> String {
    let name = repo
        .scratch()
        .file_name()
        .expect("scratch name")
        .to_string_lossy()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "");
    format!("orchmark{name}")
}

fn read_out(repo: &TestRepo, name: &str) -> String {
    std::fs::read_to_string(out_dir(repo).join(name)).unwrap_or_default()
}

fn phase_state(st: &Value, id: &str) -> String {
    st["phases"]
        .as_array()
        .expect("phases array")
        .iter()
        .find(|p| p["id"] == id)
        .and_then(|p| p["state"].as_str())
        .unwrap_or("?")
        .to_string()
}

/// Subjects of the landing commits on the work branch, oldest first.
fn landings(repo: &TestRepo) -> Vec<String> {
    let log = repo.git(&["log", "--reverse", "--format=%s", "orch/p/work"]);
    log.lines()
        .filter(|l| l.starts_with("orch: land task "))
        .map(str::to_string)
        .collect()
}

fn landings_of(repo: &TestRepo, id: &str) -> usize {
    let prefix = format!("orch: land task {id}:");
    landings(repo)
        .iter()
        .filter(|l| l.starts_with(&prefix))
        .count()
}

fn state_file(repo: &TestRepo, path: &str) -> Option<String> {
    repo.show(&format!("orch/p/state:{path}"))
}

fn worktrees(repo: &TestRepo) -> Vec<String> {
    repo.git(&["worktree", "list", "--porcelain"])
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .map(str::to_string)
        .collect()
}

/// Worktrees other than the main one and the idle pool: after a complete
/// run, even an interrupted one, there are none.
fn loose_worktrees(repo: &TestRepo) -> Vec<String> {
    worktrees(repo)
        .into_iter()
        .skip(1)
        .filter(|w| !w.contains("/.pool/"))
        .collect()
}

fn kill9(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -9 failed");
    let _ = child.wait();
}

// ------------------------------------------------ 1. what tasks can do

fn two_phases() -> String {
    PlanText::new("p")
        .task("writer", |t| {
            t.run("echo writing; mkdir -p src && echo 'fn a() {}' > src/a.rs")
                .files(["src/a.rs"])
        })
        .task("committer", |t| {
            t.run(
                r#"echo one > docs.md && git add docs.md && git commit -q -m "committer: first"
echo two >> docs.md && git commit -q -am "committer: second"
echo loose > loose.md
"#,
            )
            .files(["docs.md", "loose.md"])
        })
        .phase("two", |p| {
            p.task("after", |t| {
                t.run("test -f src/a.rs && test -f docs.md && echo done > after.txt")
                    .files(["after.txt"])
                    .depends_on(["writer"])
            })
        })
        .to_string()
}

#[test]
fn tasks_that_write_and_commit_land_and_every_phase_is_checkpointed() {
    let repo = TestRepo::new();
    start(&repo, &two_phases());
    let start_commit = repo.rev("orch/p/start^{commit}").expect("start tag");
    let out = repo.orch(&["run", "-j", "2"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));

    // Files, as git sees them on the work branch.
    assert_eq!(
        repo.show("orch/p/work:src/a.rs").as_deref(),
        Some("fn a() {}\n")
    );
    assert_eq!(
        repo.show("orch/p/work:docs.md").as_deref(),
        Some("one\ntwo\n")
    );
    assert_eq!(
        repo.show("orch/p/work:loose.md").as_deref(),
        Some("loose\n")
    );
    assert_eq!(
        repo.show("orch/p/work:after.txt").as_deref(),
        Some("done\n")
    );
    // The task's own commits are kept, the loose file committed for it.
    let subjects = repo.git(&["log", "--format=%s", "orch/p/work"]);
    for s in ["committer: first", "committer: second"] {
        assert_eq!(
            subjects.lines().filter(|l| *l == s).count(),
            1,
            "{s} in\n{subjects}"
        );
    }
    for id in ["writer", "committer", "after"] {
        assert_eq!(landings_of(&repo, id), 1, "{id}: {:?}", landings(&repo));
    }
    // The user's branch is untouched.
    assert_eq!(repo.rev("main"), Some(start_commit.clone()));
    assert!(repo.git(&["status", "--porcelain"]).trim().is_empty());

    // A checkpoint tag per phase, annotated, on the work branch's history.
    for phase in ["one", "two"] {
        let tag = format!("refs/tags/orch/p/{phase}");
        assert_eq!(repo.git(&["cat-file", "-t", &tag]).trim(), "tag", "{phase}");
        let target = repo.rev(&format!("{tag}^{{commit}}")).expect("tag target");
        repo.git(&["merge-base", "--is-ancestor", &target, "orch/p/work"]);
    }
    assert_eq!(repo.rev("orch/p/two^{commit}"), repo.rev("orch/p/work"));
    // Phase one's checkpoint holds phase one's work but not phase two's.
    assert!(repo.show("orch/p/one:src/a.rs").is_some());
    assert!(repo.show("orch/p/one:after.txt").is_none());

    let st = status_json(&repo);
    for id in ["writer", "committer", "after"] {
        assert_eq!(task_state(&st, id), "done", "{st}");
        assert!(
            state_file(&repo, &handoff_path(id)).is_some(),
            "handoff of {id}"
        );
        let log = status_task(&st, id)["log"]
            .as_str()
            .expect("log path")
            .to_string();
        assert!(state_file(&repo, &log).is_some(), "log {log}");
    }
    assert!(state_file(&repo, &log_path("writer", 1))
        .unwrap_or_default()
        .contains("writing"));
    assert!(st["phase"].is_null(), "{st}");
    // The state branch is the audit log.
    let history = repo.git(&["log", "--format=%s", "orch/p/state"]);
    assert!(history.contains("task writer: done"), "{history}");
    assert!(history.contains("checkpoint two"), "{history}");
    repo.fsck();
}

fn failing() -> String {
    PlanText::new("p")
        .task("bad", |t| {
            t.run("echo bad-output-@MARK@; echo bad-stderr >&2; echo half > bad.txt; exit 3")
                .files(["bad.txt"])
        })
        .task("slow", |t| {
            t.run("sleep 1; echo slow > slow.txt").files(["slow.txt"])
        })
        .task("later", |t| {
            t.run("echo later > @OUT@/later-ran; echo later > later.txt")
                .files(["later.txt"])
        })
        .phase("two", |p| {
            p.task("next", |t| {
                t.run("echo next > @OUT@/next-ran").files(["next.txt"])
            })
        })
        .to_string()
}

#[test]
fn a_failing_task_stops_the_run_keeps_its_worktree_and_stores_its_log() {
    let repo = TestRepo::new();
    start(&repo, &failing());
    let out = repo.orch(&["run", "-j", "2"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let err = stderr(&out);
    // The log and the recovery as commands (issue 23).
    assert!(err.contains("git orch log p bad"), "{err}");
    assert!(err.contains("task retry bad"), "{err}");
    assert!(err.contains("exit code 3"), "{err}");

    let st = status_json(&repo);
    assert_eq!(task_state(&st, "bad"), "failed");
    // Already running when `bad` failed: it finishes and lands.
    assert_eq!(task_state(&st, "slow"), "done", "{st}");
    assert_eq!(repo.show("orch/p/work:slow.txt").as_deref(), Some("slow\n"));
    // Nothing new starts after the failure.
    assert_eq!(task_state(&st, "later"), "pending", "{st}");
    assert_eq!(task_state(&st, "next"), "pending", "{st}");
    assert!(!out_dir(&repo).join("later-ran").exists());
    assert!(!out_dir(&repo).join("next-ran").exists());
    assert!(
        repo.rev("orch/p/one").is_none(),
        "no checkpoint after a failure"
    );

    let log = state_file(&repo, &log_path("bad", 1)).expect("log in the state tree");
    assert!(
        log.contains(&format!("bad-output-{}", marker(&repo))),
        "{log}"
    );
    assert!(log.contains("bad-stderr"), "{log}");
    assert_eq!(status_task(&st, "bad")["log"], log_path("bad", 1));

    // Its worktree (with what it left) and its branch are kept.
    let wt = status_task(&st, "bad")["worktree"]
        .as_str()
        .expect("worktree")
        .to_string();
    assert_eq!(
        std::fs::read_to_string(Path::new(&wt).join("bad.txt"))
            .ok()
            .as_deref(),
        Some("half\n")
    );
    assert!(worktrees(&repo).contains(&wt), "{:?}", worktrees(&repo));
    assert!(repo.rev("refs/heads/orch/p/tasks/bad").is_some());
    assert!(repo.show("orch/p/work:bad.txt").is_none());
    repo.fsck();

    // Running again does not retry the failed task behind the user's back
    // and still reports it (independent tasks may go on).
    let again = repo.orch(&["run"]);
    assert_eq!(code(&again), Some(1), "{}", both(&again));
    assert!(
        stderr(&again).contains("task retry bad"),
        "{}",
        both(&again)
    );
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "bad"), "failed");
    assert_eq!(status_task(&st, "bad")["attempts"], 1);
    assert!(repo.rev("orch/p/one").is_none());
}

#[test]
fn a_timed_out_task_is_killed_with_everything_it_started() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p").task("hang", |t| t.timeout("1s").run("sh -c 'sleep 30; echo @MARK@-child' & echo started; sleep 30; echo @MARK@-parent").files(["x.txt"])).to_string(),
    );
    let t0 = Instant::now();
    let out = repo.orch(&["run"]);
    let took = t0.elapsed();
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(
        took < Duration::from_secs(15),
        "run waited for the task: {took:?}"
    );
    assert!(stderr(&out).contains("timed out"), "{}", both(&out));
    assert_no_survivors(&marker(&repo));
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "hang"), "failed");
    assert!(
        status_task(&st, "hang")["reason"]
            .as_str()
            .unwrap_or("")
            .contains("timed out"),
        "{st}"
    );
    assert!(state_file(&repo, &log_path("hang", 1))
        .unwrap_or_default()
        .contains("started"));
    repo.fsck();
}

#[test]
fn a_successful_task_leaves_no_background_process_behind() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p")
            .task("daemon", |t| {
                t.run("sh -c 'sleep 30; echo @MARK@' & echo ok > ok.txt")
                    .files(["ok.txt"])
            })
            .to_string(),
    );
    let t0 = Instant::now();
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "run waited for a background child"
    );
    assert_no_survivors(&marker(&repo));
    assert_eq!(repo.show("orch/p/work:ok.txt").as_deref(), Some("ok\n"));
}

#[test]
fn a_task_that_overruns_its_scope_fails_and_nothing_lands() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p")
            .task("over", |t| {
                t.run("echo in > inside.txt; echo out > outside.txt")
                    .files(["inside.txt"])
            })
            .to_string(),
    );
    let work = repo.rev("orch/p/work").expect("work");
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    assert!(stderr(&out).contains("outside.txt"), "{}", both(&out));
    assert_eq!(repo.rev("orch/p/work"), Some(work), "work branch moved");
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "over"), "failed");
    // The work is kept on its branch.
    assert_eq!(
        repo.show("orch/p/tasks/over:outside.txt").as_deref(),
        Some("out\n")
    );
    repo.fsck();
}

#[test]
fn a_landing_conflict_leaves_the_work_branch_and_keeps_the_worktree() {
    let repo = TestRepo::new();
    repo.write("shared.txt", "base\n");
    repo.commit_all("shared");
    // A person finishes `manual` by hand, then `auto` builds on the work
    // branch from before that landing (its first parent), changing the same
    // line: `auto` no longer lands cleanly. (The two cannot run at once:
    // their files overlap.)
    start(
        &repo,
        &PlanText::new("p")
            .task("manual", |t| t.files(["shared.txt"]))
            .task("auto", |t| {
                t.files(["shared.txt"]).run(
                    "set -e
git reset -q --hard orch/p/work^1
echo by-task > shared.txt
",
                )
            })
            .to_string(),
    );
    let wt = repo.orch_ok(&["task", "start", "manual"]);
    std::fs::write(Path::new(wt.trim()).join("shared.txt"), "by-hand\n").expect("write");
    repo.orch_ok(&["task", "done", "manual", "-m", "by hand"]);
    let out = repo.orch(&["run", "--task", "auto"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "manual"), "done", "{st}");
    assert_eq!(task_state(&st, "auto"), "conflict", "{st}");
    // The work branch holds the manual task's landing, untouched by `auto`.
    assert_eq!(
        repo.show("orch/p/work:shared.txt").as_deref(),
        Some("by-hand\n")
    );
    assert_eq!(landings_of(&repo, "auto"), 0);
    let wt = status_task(&st, "auto")["worktree"]
        .as_str()
        .expect("worktree")
        .to_string();
    assert!(worktrees(&repo).contains(&wt), "{:?}", worktrees(&repo));
    assert_eq!(
        repo.show("orch/p/tasks/auto:shared.txt").as_deref(),
        Some("by-task\n")
    );
    let err = stderr(&out);
    assert!(err.contains("conflict"), "{err}");
    assert!(err.contains("task done auto"), "how to resolve: {err}");
    assert!(err.contains(&wt), "where to resolve: {err}");
    repo.fsck();

    // Resolving as told lets the run carry on.
    let wt = Path::new(&wt);
    let merge = repo
        .command("git", wt)
        .args(["merge", "-q", "orch/p/work"])
        .output()
        .expect("merge");
    assert!(!merge.status.success(), "the merge should conflict");
    std::fs::write(wt.join("shared.txt"), "resolved\n").expect("resolve");
    repo.git_in(wt, &["add", "shared.txt"]);
    repo.git_in(wt, &["commit", "-q", "--no-edit"]);
    let out = repo.orch_in(wt, &["task", "done", "auto"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(
        repo.show("orch/p/work:shared.txt").as_deref(),
        Some("resolved\n")
    );
    assert!(repo.rev("refs/tags/orch/p/one").is_some());
    repo.fsck();
}

// ------------------------------------------------ 2. the environment

#[test]
fn a_task_gets_the_spec_environment_and_the_brief_of_its_dependencies() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p").task("dep", |t| t.run(r#"echo dep > dep.txt; echo 'NOTE-FROM-DEP: use dep.txt' > "$ORCH_HANDOFF_FILE""#).files(["dep.txt"])).task("probe", |t| t.title("Probe the environment").prompt("PROMPT-TEXT: look around.").depends_on(["dep"]).files(["probe/**"]).run(r#"env | grep ^ORCH_ | sort > @OUT@/env.txt
pwd > @OUT@/pwd.txt
cp "$ORCH_TASK_FILE" @OUT@/task.md
git rev-parse HEAD > @OUT@/head.txt
git symbolic-ref HEAD > @OUT@/branch.txt
mkdir -p probe && echo x > probe/x
"#)).to_string(),
    );
    // Through git itself, as users call it.
    let out = repo
        .command("git", &repo.path)
        .args(["orch", "run", "-j", "1"])
        .output()
        .expect("git orch run");
    assert_eq!(code(&out), Some(0), "{}", both(&out));

    let env: std::collections::BTreeMap<String, String> = read_out(&repo, "env.txt")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let pwd = read_out(&repo, "pwd.txt").trim().to_string();
    let get = |k: &str| {
        env.get(k)
            .cloned()
            .unwrap_or_else(|| panic!("{k} missing: {env:?}"))
    };
    assert_eq!(get("ORCH_PLAN"), "p");
    assert_eq!(get("ORCH_PHASE"), "one");
    assert_eq!(get("ORCH_TASK"), "probe");
    assert_eq!(get("ORCH_WORKTREE"), pwd);
    assert!(Path::new(&pwd).is_absolute());
    assert_ne!(
        Path::new(&pwd),
        repo.path,
        "a task runs in its own worktree"
    );
    assert_eq!(
        read_out(&repo, "branch.txt").trim(),
        "refs/heads/orch/p/tasks/probe"
    );
    assert_eq!(Path::new(&get("ORCH_REPO")), repo.path);
    // The base is the work branch as `dep` left it, and HEAD started there.
    let dep_landed = status_task(&status_json(&repo), "dep")["landed"]
        .as_str()
        .expect("landed")
        .to_string();
    assert_eq!(get("ORCH_BASE"), dep_landed);
    assert_eq!(read_out(&repo, "head.txt").trim(), dep_landed);
    for k in ["ORCH_TASK_FILE", "ORCH_HANDOFF_FILE"] {
        let p = get(k);
        assert!(Path::new(&p).is_absolute(), "{k}={p}");
        assert!(
            !p.starts_with(&pwd),
            "{k} must be outside the worktree: {p}"
        );
    }
    let brief = read_out(&repo, "task.md");
    for want in [
        "Probe the environment",
        "PROMPT-TEXT: look around.",
        "probe/**",
        "NOTE-FROM-DEP: use dep.txt",
    ] {
        assert!(brief.contains(want), "task file lacks {want:?}:\n{brief}");
    }
    // Every landed task has its handoff note; dep's carries what it wrote.
    let note = state_file(&repo, &handoff_path("dep")).expect("handoff of dep");
    assert!(note.contains("NOTE-FROM-DEP"), "{note}");
    assert!(note.contains("dep.txt"), "modified files: {note}");
    let note = state_file(&repo, &handoff_path("probe")).expect("handoff of probe");
    assert!(note.contains("probe/x"), "{note}");
    // Nothing of ours was committed into the work.
    let files = repo.git(&["ls-tree", "-r", "--name-only", "orch/p/work"]);
    assert_eq!(
        files.lines().collect::<Vec<_>>(),
        ["README", "dep.txt", "probe/x"]
    );
}

// ------------------------------------------------ 3. scheduling

#[derive(Debug, Clone, Copy)]
struct Span {
    start: u128,
    end: u128,
}

fn spans(repo: &TestRepo) -> std::collections::BTreeMap<String, Span> {
    let mut map = std::collections::BTreeMap::new();
    let text = read_out(repo, "times.txt");
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f.len(), 3, "bad line {line:?}");
        let t: u128 = f[2].parse().expect("timestamp");
        let e = map
            .entry(f[0].to_string())
            .or_insert(Span { start: 0, end: 0 });
        match f[1] {
            "start" => {
                assert_eq!(e.start, 0, "{} started twice", f[0]);
                e.start = t
            }
            "end" => e.end = t,
            other => panic!("bad event {other}"),
        }
    }
    for (id, s) in &map {
        assert!(s.start > 0 && s.end >= s.start, "{id}: {s:?}");
    }
    map
}

fn overlap(a: Span, b: Span) -> bool {
    a.start < b.end && b.start < a.end
}

#[test]
fn overlapping_scopes_never_run_together_and_disjoint_ones_do() {
    let repo = TestRepo::new();
    // `d1` and `d2` each wait (up to 5 s) to see the other start: they only
    // finish quickly if the runner really runs them at the same time.
    let rec = |id: &str, body: &str| {
        format!(
            "run = '''\necho \"$ORCH_TASK start $(date +%s%N)\" >> @OUT@/times.txt\n{body}\necho \"$ORCH_TASK end $(date +%s%N)\" >> @OUT@/times.txt\n'''\n  files = {}",
            match id {
                "wide" => "[\"src/**\"]".to_string(),
                "narrow" => "[\"src/a.rs\"]".to_string(),
                "alone" => "[]".to_string(),
                other => format!("[\"docs/{other}.md\"]"),
            }
        )
    };
    let wait_for = |other: &str| {
        format!(
            "i=0; while ! grep -q '^{other} start' @OUT@/times.txt && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; sleep 0.2"
        )
    };
    let mut plan = String::from("name = \"p\"\n[[phases]]\nid = \"one\"\n");
    let tasks = [
        ("d1", wait_for("d2"), ""),
        ("d2", wait_for("d1"), ""),
        (
            "wide",
            "sleep 0.5; mkdir -p src; echo w > src/w.rs".to_string(),
            "",
        ),
        (
            "narrow",
            "sleep 0.5; mkdir -p src; echo a > src/a.rs".to_string(),
            "",
        ),
        ("alone", "sleep 0.5; echo alone > alone.txt".to_string(), ""),
        ("d3", "sleep 0.2".to_string(), "depends_on = [\"d1\"]"),
    ];
    for (id, body, extra) in &tasks {
        plan += &format!(
            "  [[phases.tasks]]\n  id = \"{id}\"\n  {}\n  {extra}\n",
            rec(id, body)
        );
    }
    // `alone` has no files: drop the empty list so it is truly undeclared.
    let plan = plan.replace("  files = []\n", "\n");
    start(&repo, &plan);
    let out = repo.orch(&["run", "-j", "4"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let s = spans(&repo);
    assert_eq!(s.len(), 6, "{s:?}");
    assert!(
        !overlap(s["wide"], s["narrow"]),
        "src/** and src/a.rs ran together: {s:?}"
    );
    for (id, span) in &s {
        if id != "alone" {
            assert!(
                !overlap(s["alone"], *span),
                "a task without files ran beside {id}: {s:?}"
            );
        }
    }
    assert!(
        overlap(s["d1"], s["d2"]),
        "disjoint tasks did not run in parallel: {s:?}"
    );
    assert!(
        s["d3"].start >= s["d1"].end,
        "d3 started before its dependency ended: {s:?}"
    );
    // d1/d2 did not have to wait out their 5 s.
    assert!(s["d1"].end - s["d1"].start < 4_000_000_000, "{s:?}");
    let st = status_json(&repo);
    for (id, _, _) in &tasks {
        assert_eq!(task_state(&st, id), "done");
    }
    assert_eq!(repo.show("orch/p/work:src/a.rs").as_deref(), Some("a\n"));
    assert_eq!(repo.show("orch/p/work:src/w.rs").as_deref(), Some("w\n"));
}

// ------------------------------------------------ 4. phase end

#[test]
fn a_failing_gate_stops_the_run_before_the_next_phase() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p")
            .phase("one", |p| {
                p.gate("strict", "echo gate-says-no; exit 1")
                    .task("a", |t| t.run("echo a > a.txt").files(["a.txt"]))
            })
            .phase("two", |p| {
                p.task("b", |t| {
                    t.run("echo b > @OUT@/b-ran; echo b > b.txt")
                        .files(["b.txt"])
                })
            })
            .to_string(),
    );
    let out = repo.orch(&["run", "--json"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let summary = json_doc(&out, "run --json");
    assert_eq!(summary["ok"], false);
    assert_eq!(summary["gate_failure"], "one");
    assert!(
        repo.rev("refs/tags/orch/p/one").is_none(),
        "tagged despite a failing gate"
    );
    assert!(!out_dir(&repo).join("b-ran").exists(), "phase two started");
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "done");
    assert_eq!(task_state(&st, "b"), "pending");
    assert_eq!(phase_state(&st, "one"), "failed");
    assert!(stderr(&out).contains("strict"), "{}", both(&out));
    repo.fsck();
}

// ------------------------------------------------ 5. selective runs

fn selective() -> String {
    PlanText::new("p")
        .task("t1", |t| t.run("echo t1 > t1.txt").files(["t1.txt"]))
        .task("t2", |t| {
            t.run("echo t2 > t2.txt")
                .files(["t2.txt"])
                .depends_on(["t1"])
        })
        .task("t3", |t| t.run("echo t3 > t3.txt").files(["t3.txt"]))
        .phase("two", |p| {
            p.task("t4", |t| t.run("echo t4 > t4.txt").files(["t4.txt"]))
        })
        .to_string()
}

#[test]
fn selective_runs_refuse_out_of_order_and_run_only_what_was_asked() {
    let repo = TestRepo::new();
    start(&repo, &selective());
    let before = repo.refs();
    let out = repo.orch(&["run", "--phase", "two"]);
    assert_refused(&out, "--phase two before one is checkpointed");
    assert!(stderr(&out).contains("one"), "{}", stderr(&out));
    let out = repo.orch(&["run", "--task", "t2"]);
    assert_refused(&out, "--task t2 before t1 is done");
    assert!(stderr(&out).contains("t1"), "{}", stderr(&out));
    let out = repo.orch(&["run", "--task", "t4"]);
    assert_refused(&out, "--task of a later phase");
    for bad in [["--task", "nope"], ["--phase", "nope"]] {
        assert_refused(&repo.orch(&["run", bad[0], bad[1]]), "unknown id");
    }
    assert_eq!(repo.refs(), before, "a refused run changed refs");

    // --task runs that task alone.
    repo.orch_ok(&["run", "--task", "t1"]);
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "t1"), "done");
    for id in ["t2", "t3", "t4"] {
        assert_eq!(task_state(&st, id), "pending", "{id}: {st}");
    }
    assert!(repo.rev("refs/tags/orch/p/one").is_none());
    // Once its dependency is done it may run; done again it is refused.
    repo.orch_ok(&["run", "--task", "t2"]);
    assert_eq!(task_state(&status_json(&repo), "t2"), "done");
    assert_refused(
        &repo.orch(&["run", "--task", "t2"]),
        "--task of a done task",
    );

    // --phase finishes and checkpoints that phase, not the next.
    repo.orch_ok(&["run", "--phase", "one"]);
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "t3"), "done");
    assert_eq!(task_state(&st, "t4"), "pending");
    assert!(repo.rev("refs/tags/orch/p/one").is_some());
    assert!(repo.rev("refs/tags/orch/p/two").is_none());
    repo.orch_ok(&["run", "--phase", "two"]);
    assert!(repo.rev("refs/tags/orch/p/two").is_some());
    for id in ["t1", "t2", "t3", "t4"] {
        assert_eq!(landings_of(&repo, id), 1, "{id}");
    }
    repo.fsck();
}

// ------------------------------------------------ 6. kill -9 and resume

fn slow() -> String {
    PlanText::new("p")
        .task("a", |t| {
            t.run("echo a > a.txt; sleep 1 # @MARK@").files(["a.txt"])
        })
        .task("b", |t| {
            t.run(
                "echo b > b.txt; git add b.txt; git commit -q -m 'b by itself'; sleep 1.2 # @MARK@",
            )
            .files(["b.txt"])
        })
        .task("c", |t| {
            t.run("sleep 0.8; echo c > c.txt # @MARK@").files(["c.txt"])
        })
        .phase("two", |p| {
            p.task("d", |t| {
                t.run("sleep 0.5; echo d > d.txt # @MARK@")
                    .files(["d.txt"])
                    .depends_on(["a"])
            })
        })
        .to_string()
}

fn kill_then_recover(after: Duration, how: &str) {
    let repo = TestRepo::new();
    start(&repo, &slow());
    let mut child = spawn_orch(&repo, &["run", "-j", "2"]);
    std::thread::sleep(after);
    kill9(&mut child);
    let out = repo.orch(&[how, "-j", "2"]);
    assert_eq!(
        code(&out),
        Some(0),
        "{how} after kill at {after:?}: {}",
        both(&out)
    );
    check_complete(&repo, &["a", "b", "c", "d"]);
    assert_eq!(
        repo.git(&["log", "--format=%s", "orch/p/work"])
            .lines()
            .filter(|l| *l == "b by itself")
            .count(),
        1
    );
    assert_no_survivors(&marker(&repo));
    assert_eq!(loose_worktrees(&repo), Vec::<String>::new());
    // Nothing was left running: a second resume has nothing to do.
    let again = repo.orch(&["resume"]);
    assert!(
        matches!(code(&again), Some(0) | Some(2)),
        "{}",
        both(&again)
    );
    repo.fsck();
}

/// Every task landed exactly once, its file there, every phase tagged.
fn check_complete(repo: &TestRepo, ids: &[&str]) {
    for id in ids {
        assert_eq!(landings_of(repo, id), 1, "{id}: {:?}", landings(repo));
        assert_eq!(
            repo.show(&format!("orch/p/work:{id}.txt")).as_deref(),
            Some(format!("{id}\n").as_str()),
            "{id}"
        );
    }
    let st = status_json(repo);
    for id in ids {
        assert_eq!(task_state(&st, id), "done", "{st}");
        assert!(status_task(&st, id)["landed"].is_string());
    }
    assert!(st["phase"].is_null(), "{st}");
    assert_eq!(st["work"].as_str(), repo.rev("orch/p/work").as_deref());
    for phase in ["one", "two"] {
        assert_eq!(phase_state(&st, phase), "checkpointed", "{st}");
        assert!(repo.rev(&format!("refs/tags/orch/p/{phase}")).is_some());
    }
    // Work branch never lost a landing: each state `done` is on it.
    for id in ids {
        let landed = status_task(&st, id)["landed"]
            .as_str()
            .expect("landed")
            .to_string();
        repo.git(&["merge-base", "--is-ancestor", &landed, "orch/p/work"]);
    }
    let branches = repo.git(&[
        "for-each-ref",
        "--format=%(refname)",
        "refs/heads/orch/p/tasks/",
    ]);
    for b in branches.lines() {
        let id = b.rsplit('/').next().unwrap_or_default();
        assert!(ids.contains(&id), "unexpected task branch {b}");
    }
}

#[test]
fn kill_early_then_resume() {
    kill_then_recover(Duration::from_millis(300), "resume");
}

#[test]
fn kill_mid_task_then_resume() {
    kill_then_recover(Duration::from_millis(1000), "resume");
}

#[test]
fn kill_later_then_run_recovers_by_itself() {
    kill_then_recover(Duration::from_millis(2000), "run");
}

#[test]
fn resume_recovers_a_task_whose_runner_vanished_and_keeps_its_leftovers() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p").task("a", |t| t.run("if [ ! -e @OUT@/first ]; then touch @OUT@/first; echo partial > a.txt; sleep 30; fi; echo a > a.txt # @MARK@").files(["a.txt"])).phase("two", |p| p.task("d", |t| t.run("echo d > d.txt").files(["d.txt"]))).to_string(),
    );
    let mut child = spawn_orch(&repo, &["run"]);
    wait_for_file(&out_dir(&repo).join("first"));
    std::thread::sleep(Duration::from_millis(200));
    kill9(&mut child);
    let out = repo.orch(&["resume"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(stderr(&out).contains("recovered"), "{}", both(&out));
    // The first attempt's partial work was preserved under refs/orch/p/.
    let kept = repo.git(&["for-each-ref", "--format=%(refname)", "refs/orch/p/"]);
    let kept_ref = kept
        .lines()
        .find(|r| r.contains("/a"))
        .unwrap_or_else(|| panic!("nothing preserved: {kept}"));
    assert_eq!(
        repo.show(&format!("{kept_ref}:a.txt")).as_deref(),
        Some("partial\n")
    );
    assert!(
        stderr(&out).contains(kept_ref.trim_start_matches("refs/"))
            || stderr(&out).contains(kept_ref),
        "{}",
        both(&out)
    );
    check_complete(&repo, &["a", "d"]);
    assert_eq!(status_task(&status_json(&repo), "a")["attempts"], 2);
    assert_no_survivors(&marker(&repo));
    repo.fsck();
}

// ------------------------------------------------ 7. two runners

#[test]
fn two_runners_share_one_plan_and_never_run_a_task_twice() {
    let repo = TestRepo::new();
    // A gate that takes a while: both runners reach the phase's end and
    // race to checkpoint it.
    let mut plan = String::from("name = \"p\"\n[[gates]]\nname = \"slow\"\nrun = \"sleep 0.4\"\n");
    for (phase, ids) in [("one", ["a", "b", "c", "d"]), ("two", ["e", "f", "g", "h"])] {
        plan += &format!("[[phases]]\nid = \"{phase}\"\n");
        for id in ids {
            plan += &format!(
                "  [[phases.tasks]]\n  id = \"{id}\"\n  run = \"echo $ORCH_TASK >> @OUT@/ran.txt; sleep 0.3; echo {id} > {id}.txt\"\n  files = [\"{id}.txt\"]\n"
            );
        }
    }
    start(&repo, &plan);
    let first = spawn_orch(&repo, &["run", "-j", "2"]);
    let second = spawn_orch(&repo, &["run", "-j", "2"]);
    let (r1, r2) = (
        first.wait_with_output().expect("wait"),
        second.wait_with_output().expect("wait"),
    );
    assert_eq!(code(&r1), Some(0), "first runner: {}", both(&r1));
    assert_eq!(code(&r2), Some(0), "second runner: {}", both(&r2));
    let ran = read_out(&repo, "ran.txt");
    let mut seen: Vec<&str> = ran.lines().collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        ["a", "b", "c", "d", "e", "f", "g", "h"],
        "each task runs exactly once"
    );
    let ids = ["a", "b", "c", "d", "e", "f", "g", "h"];
    for id in ids {
        assert_eq!(landings_of(&repo, id), 1, "{id}");
        assert_eq!(
            repo.show(&format!("orch/p/work:{id}.txt")).as_deref(),
            Some(format!("{id}\n").as_str())
        );
    }
    let st = status_json(&repo);
    assert!(st["phase"].is_null(), "{st}");
    repo.fsck();
}

#[test]
fn two_runners_of_one_phase_both_stop_when_it_is_checkpointed() {
    let repo = TestRepo::new();
    let plan = &selective().replace(
        "name = \"p\"\n",
        "name = \"p\"\n[[gates]]\nname = \"slow\"\nrun = \"sleep 0.4\"\n",
    );
    start(&repo, plan);
    let first = spawn_orch(&repo, &["run", "--phase", "one", "-j", "2"]);
    let second = spawn_orch(&repo, &["run", "--phase", "one", "-j", "2"]);
    let r1 = wait_within(first, Duration::from_secs(20), "first runner");
    let r2 = wait_within(second, Duration::from_secs(20), "second runner");
    assert_eq!(code(&r1), Some(0), "{}", both(&r1));
    assert_eq!(code(&r2), Some(0), "{}", both(&r2));
    assert!(repo.rev("refs/tags/orch/p/one").is_some());
    assert_eq!(task_state(&status_json(&repo), "t4"), "pending");
    for id in ["t1", "t2", "t3"] {
        assert_eq!(landings_of(&repo, id), 1, "{id}");
    }
    repo.fsck();
}

#[test]
fn a_runner_takes_over_the_tasks_of_a_runner_that_died_beside_it() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p")
            .task("a", |t| {
                t.run("touch @OUT@/a-started; sleep 1; echo a > a.txt # @MARK@")
                    .files(["a.txt"])
            })
            .task("b", |t| {
                t.run("sleep 1; echo b > b.txt # @MARK@").files(["b.txt"])
            })
            .to_string(),
    );
    let mut first = spawn_orch(&repo, &["run", "-j", "2"]);
    wait_for_file(&out_dir(&repo).join("a-started"));
    // The second runner finds both tasks claimed by a live runner...
    let second = spawn_orch(&repo, &["run", "-j", "2"]);
    std::thread::sleep(Duration::from_millis(300));
    // ...which then dies: the second must not wait for it forever.
    kill9(&mut first);
    let out = wait_within(second, Duration::from_secs(20), "the surviving runner");
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    for id in ["a", "b"] {
        assert_eq!(landings_of(&repo, id), 1, "{id}");
    }
    assert!(status_json(&repo)["phase"].is_null());
    assert_no_survivors(&marker(&repo));
    repo.fsck();
}

#[test]
fn ctrl_c_stops_the_tasks_too_and_resume_carries_on() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p").task("a", |t| t.run("if [ ! -e @OUT@/a-started ]; then touch @OUT@/a-started; sleep 30; fi; echo a > a.txt # @MARK@").files(["a.txt"])).to_string(),
    );
    let child = spawn_orch(&repo, &["run"]);
    wait_for_file(&out_dir(&repo).join("a-started"));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill")
        .success());
    let out = wait_within(child, Duration::from_secs(10), "run after SIGINT");
    assert_ne!(code(&out), Some(0), "{}", both(&out));
    // The task's processes went with it.
    assert_no_survivors(&marker(&repo));
    repo.fsck();
    // The next run takes the interrupted task up again.
    let out = repo.orch(&["resume"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(landings_of(&repo, "a"), 1);
    assert!(status_json(&repo)["phase"].is_null());
    repo.fsck();
}

#[test]
fn a_child_that_escapes_the_process_group_does_not_hang_the_run() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p")
            .task("escape", |t| {
                t.run("setsid sh -c 'sleep 20; echo @MARK@' & echo ok > ok.txt")
                    .files(["ok.txt"])
            })
            .to_string(),
    );
    let child = spawn_orch(&repo, &["run"]);
    let out = wait_within(child, Duration::from_secs(12), "run with an escaped child");
    // Clean up the escapee (it left our reach on purpose), by pid.
    for line in survivors(&marker(&repo)).lines() {
        if let Some(pid) = line.split_whitespace().next() {
            let _ = Command::new("kill").args(["-9", pid]).status();
        }
    }
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(repo.show("orch/p/work:ok.txt").as_deref(), Some("ok\n"));
}

#[test]
fn a_retried_task_does_not_inherit_the_handoff_of_its_failed_attempt() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p").task("a", |t| t.run(r#"if [ ! -e @OUT@/tried ]; then touch @OUT@/tried; echo STALE-NOTE > "$ORCH_HANDOFF_FILE"; exit 1; fi
echo a > a.txt
"#).files(["a.txt"])).to_string(),
    );
    assert_eq!(code(&repo.orch(&["run"])), Some(1));
    repo.orch_ok(&["task", "reset", "a"]);
    repo.orch_ok(&["run"]);
    let note = state_file(&repo, &handoff_path("a")).expect("handoff");
    assert!(!note.contains("STALE-NOTE"), "{note}");
}

// ------------------------------------------------ 8. worktree reuse

#[test]
fn worktrees_are_recycled_and_finish_removes_them() {
    let repo = TestRepo::new();
    let mut plan = String::from("name = \"p\"\n");
    for (phase, ids) in [("one", ["a", "b", "c", "d"]), ("two", ["e", "f", "g", "h"])] {
        plan += &format!("[[phases]]\nid = \"{phase}\"\n");
        for id in ids {
            plan += &format!(
                "  [[phases.tasks]]\n  id = \"{id}\"\n  run = \"echo {id} > {id}.txt\"\n  files = [\"{id}.txt\"]\n"
            );
        }
    }
    start(&repo, &plan);
    let out = repo.orch(&["run", "-j", "2"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let wts = worktrees(&repo);
    assert!(
        wts.len() <= 3,
        "the pool should hold at most 2 worktrees (+ main): {wts:?}"
    );
    // Worktrees live outside the user's working tree.
    assert!(repo.git(&["status", "--porcelain"]).trim().is_empty());
    let out = repo.orch(&["finish"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(worktrees(&repo), [repo.path.display().to_string()]);
    assert!(repo
        .git(&["for-each-ref", "refs/heads/orch/p/tasks/"])
        .trim()
        .is_empty());
    assert!(
        repo.rev("refs/tags/orch/p/two").is_some(),
        "finish keeps the tags"
    );
    repo.fsck();
}

#[test]
fn sparse_worktrees_hold_files_and_reads_and_a_recycled_one_is_full_again() {
    let repo = TestRepo::new();
    for f in ["src/s.rs", "docs/d.md", "other/o.txt"] {
        repo.write(f, "x\n");
    }
    repo.commit_all("tree");
    let list = "find . -path ./.git -prune -o -type f -print | sort";
    start(
        &repo,
        &PlanText::new("p")
            .default_str("checkout", "sparse")
            .task("a", |t| {
                t.run("LIST > @OUT@/a.txt; cat docs/d.md > src/copy.rs")
                    .files(["src/**"])
                    .key("reads", r#"["docs/**"]"#)
            })
            .task("b", |t| t.run("LIST > @OUT@/b.txt; echo b > b.txt"))
            .to_string()
            .replace("LIST", list),
    );
    let out = repo.orch(&["run", "-j", "1"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(read_out(&repo, "a.txt"), "./docs/d.md\n./src/s.rs\n");
    // `b` declares no files: it gets the whole tree, even in a recycled
    // worktree that was sparse for `a`.
    let seen_b = read_out(&repo, "b.txt");
    for f in [
        "./README",
        "./docs/d.md",
        "./other/o.txt",
        "./src/copy.rs",
        "./src/s.rs",
    ] {
        assert!(
            seen_b.lines().any(|l| l == f),
            "{f} missing for b:\n{seen_b}"
        );
    }
    // Paths outside the sparse view are not deleted by landing.
    let files = repo.git(&["ls-tree", "-r", "--name-only", "orch/p/work"]);
    assert_eq!(
        files.lines().collect::<Vec<_>>(),
        [
            "README",
            "b.txt",
            "docs/d.md",
            "other/o.txt",
            "src/copy.rs",
            "src/s.rs"
        ]
    );
}

// ------------------------------------------------ 9. output

#[test]
fn json_summary_and_plain_progress_on_a_pipe() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p")
            .task("a", |t| {
                t.run("echo from-a; echo a > a.txt").files(["a.txt"])
            })
            .task("b", |t| {
                t.run("echo from-b; echo b > b.txt").files(["b.txt"])
            })
            .to_string(),
    );
    let out = repo.orch(&["run", "-j", "2", "--json"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let v = json_doc(&out, "run -j 2 --json");
    assert_eq!(v["plan"], "p");
    assert_eq!(v["ok"], true);
    assert_eq!(v["finished"], true);
    let mut landed: Vec<&str> = v["landed"]
        .as_array()
        .expect("landed")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    landed.sort_unstable();
    assert_eq!(landed, ["a", "b"]);
    assert_eq!(v["checkpoints"], serde_json::json!(["one"]));
    assert_eq!(v["failed"], serde_json::json!([]));
    // Task output is kept off stdout with --json.
    assert!(!stdout(&out).contains("from-a"), "{}", stdout(&out));
    assert!(
        !both(&out).contains('\x1b'),
        "escape codes on a pipe: {:?}",
        both(&out)
    );
}

#[test]
fn plain_lines_on_a_pipe_prefixed_by_task_id() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p")
            .task("a", |t| {
                t.run("echo from-a; echo a > a.txt").files(["a.txt"])
            })
            .task("b", |t| {
                t.run("echo from-b >&2; echo b > b.txt").files(["b.txt"])
            })
            .to_string(),
    );
    // No NO_COLOR here: a pipe alone must be enough for plain output.
    let out = repo
        .command(BIN, &repo.path)
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .args(["run", "-j", "2"])
        .output()
        .expect("run");
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let text = both(&out);
    assert!(!text.contains('\x1b'), "escape codes on a pipe: {text:?}");
    assert!(text.contains("[a] from-a"), "{text}");
    assert!(text.contains("[b] from-b"), "{text}");
    assert!(!text.contains('\r'), "{text:?}");
}

#[test]
fn a_terminal_gets_a_progress_line() {
    let repo = TestRepo::new();
    let has_script = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        eprintln!("skipped: no `script` to give git-orch a terminal");
        return;
    }
    start(
        &repo,
        &PlanText::new("p")
            .task("a", |t| {
                t.run("echo from-a; sleep 0.5; echo a > a.txt")
                    .files(["a.txt"])
            })
            .task("b", |t| t.run("sleep 0.3; echo b > b.txt").files(["b.txt"]))
            .to_string(),
    );
    let cmd = format!("{BIN} run -j 2");
    let out = repo
        .command("script", &repo.path)
        .env("TERM", "xterm")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script");
    let text = both(&out);
    assert_eq!(code(&out), Some(0), "{text}");
    assert!(text.contains("tasks done"), "no progress display: {text}");
    assert!(
        text.contains("running: a"),
        "running tasks not shown: {text}"
    );
    assert!(text.contains("from-a"), "{text}");
    assert!(status_json(&repo)["phase"].is_null());
}

#[test]
fn failing_run_json_names_the_task_and_its_log() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p")
            .task("bad", |t| t.run("echo nope; exit 3").files(["bad.txt"]))
            .to_string(),
    );
    let out = repo.orch(&["run", "--json"]);
    assert_eq!(code(&out), Some(1), "{}", both(&out));
    let v = json_doc(&out, "run --json");
    assert_eq!(v["ok"], false);
    assert_eq!(v["failed"][0]["task"], "bad");
    assert_eq!(v["failed"][0]["log"], log_path("bad", 1));
    assert!(
        v["failed"][0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("3"),
        "{v}"
    );
}

// Crash points (`--features failpoints`): tests/crash.rs crashes at every
// named point of src/, `run`'s included, and checks what resume makes of it.

#[test]
fn a_live_runners_task_is_only_taken_with_force_and_its_work_is_kept() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p")
            .task("slow", |t| {
                t.run("echo started > half.txt; sleep 30")
                    .files(["half.txt"])
            })
            .to_string(),
    );
    let mut runner = spawn_orch(&repo, &["run"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while task_state(&status_json(&repo), "slow") != "running"
        || !repo.path.join(".orch/worktrees/p/slow/half.txt").exists()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the task never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let before = repo.refs();
    let out = repo.orch(&["task", "reset", "slow"]);
    assert_refused(&out, "reset of a live runner's task");
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert_eq!(repo.refs(), before);

    let out = repo.orch(&["task", "reset", "--force", "slow", "--json"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let reply = json_doc(&out, "task reset --force --json");
    let kept = reply["preserved"][0]
        .as_str()
        .expect("a preserved ref")
        .to_string();
    assert_eq!(
        repo.show(&format!("{kept}:half.txt")).as_deref(),
        Some("started\n")
    );
    assert_eq!(task_state(&status_json(&repo), "slow"), "pending");
    // Its command was stopped; the runner that lost it fails the run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while runner.try_wait().expect("wait").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the runner did not end"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = runner.wait();
    assert_eq!(task_state(&status_json(&repo), "slow"), "pending");
    repo.fsck();
}

/// Issue 14: no task starts git's maintenance (a commit does unless told
/// not to: `git maintenance run --auto` after every one), git-orch's own
/// `gc --auto` comes only after the last landing, and `ORCH_TRACE=1` shows
/// every git process git-orch starts, counted, for `scripts/bench.sh task`.
#[test]
fn a_run_starts_no_git_maintenance_per_task_and_traces_every_git_process() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p")
            .task("a", |t| t.run("echo a > a.txt"))
            .task("b", |t| t.run("echo b > b.txt"))
            .task("c", |t| t.run("echo c > c.txt"))
            .to_string(),
    );
    let git_trace = repo.scratch().join("git-trace.txt");
    let out = repo
        .command(BIN, &repo.path)
        .args(["run", "p", "-j", "1"])
        .env("ORCH_TRACE", "1")
        .env("GIT_TRACE", &git_trace)
        .output()
        .expect("run git-orch");
    assert!(out.status.success(), "{}", both(&out));
    let spawned = std::fs::read_to_string(&git_trace).expect("GIT_TRACE file");
    let started: Vec<&str> = spawned
        .lines()
        .filter(|l| l.contains("run_command:"))
        .filter(|l| l.contains("maintenance") || l.contains(" gc"))
        .collect();
    assert!(started.is_empty(), "git started maintenance: {started:?}");

    let trace = stderr(&out);
    let lines: Vec<&str> = trace.lines().filter(|l| l.starts_with("trace: ")).collect();
    let last_land = lines
        .iter()
        .rposition(|l| l.starts_with("trace: land "))
        .expect("a `trace: land` line");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("trace: land "))
            .count(),
        3
    );
    let gcs: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("trace: git gc --auto "))
        .collect();
    assert!(!gcs.is_empty(), "git-orch ran no gc --auto: {trace}");
    assert!(
        gcs.iter().all(|&i| i > last_land),
        "gc between tasks: {trace}"
    );
    // Every git process is counted: the count never goes down and is at
    // least the number of processes traced.
    let counts: Vec<usize> = lines
        .iter()
        .filter(|l| l.starts_with("trace: git "))
        .map(|l| {
            let n = l.split_whitespace().find_map(|w| w.strip_prefix("git#"));
            n.and_then(|n| n.parse().ok()).expect("git#N on the line")
        })
        .collect();
    assert!(counts.len() >= 3 * 5, "too few git lines: {trace}");
    for pair in counts.windows(2) {
        assert!(pair[1] >= pair[0], "count goes down: {trace}");
    }
    assert!(counts[counts.len() - 1] >= counts.len(), "{trace}");
    for f in ["a", "b", "c"] {
        assert_eq!(
            repo.show(&format!("orch/p/work:{f}.txt")),
            Some(format!("{f}\n"))
        );
    }
}

/// The git processes of one task, counted between two landings of a
/// `run -j 1` (`git#N` on each trace line): a task that reuses the worktree
/// of the one before it starts five (its checkout, the watch on the user's
/// checkout, `add -A`, `write-tree`, `merge-tree`), where 0.1 started 13.
/// The worktree moves, the detach, the worktree check and the commit are
/// in-process, and what they did is checked with git itself.
#[test]
fn a_task_in_a_recycled_worktree_starts_five_git_processes() {
    let repo = TestRepo::new();
    start(
        &repo,
        &PlanText::new("p")
            .task("a", |t| t.run("echo a > a.txt"))
            .task("b", |t| t.run("echo b > b.txt"))
            .task("c", |t| t.run("echo c > c.txt"))
            .to_string(),
    );
    let out = repo
        .command(BIN, &repo.path)
        .args(["run", "p", "-j", "1"])
        .env("ORCH_TRACE", "1")
        .output()
        .expect("run git-orch");
    assert!(out.status.success(), "{}", both(&out));
    let trace = stderr(&out);
    let at_landings: Vec<usize> = trace
        .lines()
        .filter(|l| l.starts_with("trace: land "))
        .map(|l| {
            let n = l.split_whitespace().find_map(|w| w.strip_prefix("git#"));
            n.and_then(|n| n.parse().ok()).expect("git#N on the line")
        })
        .collect();
    assert_eq!(at_landings.len(), 3, "{trace}");
    for pair in at_landings.windows(2) {
        assert!(
            pair[1] - pair[0] <= 5,
            "a task started {} git processes: {trace}",
            pair[1] - pair[0]
        );
    }
    // Committed as `git commit` would: the identities and dates it takes
    // from the environment, and its message.
    // (The harness gives both identities and dates in the environment.)
    let landed = repo.git(&[
        "log",
        "--format=%an <%ae> %aI|%cn <%ce> %cI|%B",
        "--no-merges",
        "orch/p/start..orch/p/work",
    ]);
    let commits: Vec<&str> = landed
        .split("\n\n")
        .filter(|c| !c.trim().is_empty())
        .collect();
    assert_eq!(commits.len(), 3, "{landed}");
    for (commit, task) in commits.iter().zip(["c", "b", "a"]) {
        assert_eq!(
            commit.trim(),
            format!(
                "Test Author <author@example.com> 2026-01-01T00:00:00Z|\
                 Test Committer <committer@example.com> 2026-01-01T00:00:00Z|\
                 {task}: work of git-orch task"
            ),
            "{landed}"
        );
    }
    // The pooled worktrees are where git records them: nothing to prune,
    // nothing to repair, and each one's HEAD is detached and clean.
    assert_eq!(
        repo.git(&["worktree", "prune", "--dry-run", "-v"]).trim(),
        ""
    );
    let list = repo.git(&["worktree", "list", "--porcelain"]);
    let pooled: Vec<&str> = list
        .lines()
        .filter_map(|l| l.strip_prefix("worktree "))
        .filter(|p| p.contains(".pool"))
        .collect();
    assert_eq!(pooled.len(), 1, "{list}");
    let pool = std::path::Path::new(pooled[0]);
    assert!(pool.join(".git").is_file(), "{list}");
    let inside = repo
        .command("git", pool)
        .args(["status", "--porcelain", "-b"])
        .output()
        .expect("git status");
    assert!(
        String::from_utf8_lossy(&inside.stdout).starts_with("## HEAD (no branch)"),
        "{}",
        both(&inside)
    );
    repo.fsck();
}
