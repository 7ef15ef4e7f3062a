//! Hostile input (issue 5, item 5): ids and names that try to escape the
//! repository or play ref-syntax tricks, in plan files and on the command
//! line; huge plans; deep dependency chains; binary files and odd file
//! names in a task's changes; a plan with a BOM and CRLF line endings.
//!
//! After every command of every case, the same checks (`Guard::check`):
//! - exit code 0 or 2, never a signal, never a panic or a backtrace; with 2,
//!   stderr is one `error:` line (plus `hint:` lines);
//! - nothing written outside the repository (its `.git` and worktrees
//!   included): the test's scratch directory is listed before and after,
//!   and nothing named after the escape marker appears in the temp dir;
//! - no ref outside `refs/heads/orch/<plan>/`, `refs/tags/orch/<plan>/` and
//!   `refs/orch/<plan>/` (besides `main`); a refused command changes no ref.
use crate::common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Part of every escaping name, so a file that got out can be found.
const MARK: &str = "ESCAPEDxq";

/// Names that try to escape or to be read as something else by git.
fn hostile_names() -> Vec<String> {
    let mut v: Vec<String> = [
        "..",
        "../ESCAPEDxq",
        "../../ESCAPEDxq",
        "a/../../ESCAPEDxq",
        "a/b",
        "/tmp/ESCAPEDxq",
        "@",
        "@{-1}",
        "a@{0}",
        "main~1",
        "HEAD^",
        "a^{tree}",
        "a:b",
        "HEAD:README",
        "a b",
        " lead",
        "tab\there",
        "new\nline",
        "bell\u{7}",
        "\u{1b}[2J\u{1b}[31mred",
        "x.lock",
        "x.",
        ".hidden",
        "a..b",
        "a//b",
        "a\\b",
        "a*b",
        "a?b",
        "[ab]",
        "-rf",
        "--help",
        "HEAD",
        "refs/heads/main",
        "orch/p/work",
        "é",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push("x".repeat(10_000));
    v.push(format!("{}ESCAPEDxq", "../".repeat(40)));
    v
}

// ------------------------------------------------------------- the guard

/// Every file under `dir` except the repository itself, with its size.
fn listing(dir: &Path, skip: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    for entry in walk(dir) {
        // The trust store (issue 13) lives outside every repository by design.
        let store = Path::new("home/.local/share/git-orch/trust");
        let trust_store = entry
            .strip_prefix(dir)
            .is_ok_and(|rel| rel.starts_with(store) || store.starts_with(rel));
        if entry.starts_with(skip) || trust_store {
            continue;
        }
        let len = std::fs::symlink_metadata(&entry).map_or(0, |m| m.len());
        out.insert(entry, len);
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        out.push(p.clone());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(walk(&p));
        }
    }
    out
}

/// Anything named after the marker in the system temp dir, or in `/`.
fn escaped_anywhere() -> Vec<PathBuf> {
    [std::env::temp_dir(), PathBuf::from("/")]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(MARK))
        .collect()
}

struct Guard {
    scratch: BTreeMap<PathBuf, u64>,
    /// The plans whose refs may exist.
    plans: Vec<String>,
}

impl Guard {
    /// Call after the test has written its own files into the scratch dir.
    fn new(repo: &TestRepo, plan: &str) -> Guard {
        Guard {
            scratch: listing(&repo.scratch(), &repo.path),
            plans: vec![plan.to_string()],
        }
    }

    fn check(&self, repo: &TestRepo, what: &str, out: &Output, refs_before: &str) {
        let err = stderr(out);
        let code = out.status.code();
        assert!(
            matches!(code, Some(0) | Some(2)),
            "{what}: exit {code:?} (a signal if None)\nstderr: {err}"
        );
        for bad in ["panicked", "RUST_BACKTRACE", "stack overflow", "SIGSEGV"] {
            assert!(!err.contains(bad), "{what}: {bad}: {err}");
        }
        if code == Some(2) {
            // One `error:` line first; then hints (or clap's usage lines
            // for a malformed command line).
            let lines: Vec<&str> = err.lines().collect();
            let errors = lines.iter().filter(|l| l.starts_with("error:")).count();
            assert!(
                !lines.is_empty() && lines[0].starts_with("error:") && errors == 1,
                "{what}: a refusal is one `error:` line first: {err}"
            );
            assert_eq!(repo.refs(), refs_before, "{what}: refused but changed refs");
        }
        let now = listing(&repo.scratch(), &repo.path);
        let added: Vec<_> = now
            .keys()
            .filter(|p| !self.scratch.contains_key(*p))
            .collect();
        let removed: Vec<_> = self
            .scratch
            .keys()
            .filter(|p| !now.contains_key(*p))
            .collect();
        assert!(
            added.is_empty() && removed.is_empty(),
            "{what}: wrote outside the repository: added {added:?}, removed {removed:?}"
        );
        let escaped = escaped_anywhere();
        assert!(escaped.is_empty(), "{what}: escaped to {escaped:?}");
        let allowed: Vec<String> = self
            .plans
            .iter()
            .flat_map(|plan| {
                [
                    format!("refs/heads/orch/{plan}/"),
                    format!("refs/tags/orch/{plan}/"),
                    format!("refs/orch/{plan}/"),
                ]
            })
            .collect();
        for line in repo.refs().lines() {
            let name = line.split_once(' ').map_or(line, |(_, n)| n);
            let ok = name == "refs/heads/main"
                || allowed.iter().any(|a| {
                    name.strip_prefix(a.as_str())
                        .is_some_and(|rest| !rest.is_empty() && !rest.split('/').any(|c| c == ".."))
                });
            assert!(ok, "{what}: unexpected ref {name}");
        }
    }

    /// Runs `git orch ARGS` in `dir` and checks it.
    fn run_in(&self, repo: &TestRepo, dir: &Path, args: &[&str]) -> Output {
        let before = repo.refs();
        let out = repo.orch_in(dir, args);
        self.check(repo, &format!("git orch {}", shown(args)), &out, &before);
        out
    }

    fn run(&self, repo: &TestRepo, args: &[&str]) -> Output {
        self.run_in(repo, &repo.path, args)
    }
}

/// Arguments for a failure message, long ones cut short.
fn shown(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            let a: String = a.chars().take(60).collect();
            format!("{a:?}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn path_arg(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// SPEC §6: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`, no `..`, no trailing `.`
/// or `.lock`. Some "hostile" names (`HEAD`) are valid ids, and work.
fn valid_id(s: &str) -> bool {
    s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !s.contains("..")
        && !s.ends_with('.')
        && !s.ends_with(".lock")
}

/// A TOML basic string (JSON's escapes are all valid TOML).
fn q(s: &str) -> String {
    serde_json::to_string(s).expect("string")
}

/// A valid plan `p`: phase `one` with tasks `a` (files `a/**`) and `b`
/// (files `b/**`, after `a`), plan gate `unit`, phase gate `fmt`.
/// `over` replaces one of its values by a hostile one.
#[derive(Clone, Copy, Debug)]
enum Spot {
    PlanName,
    PhaseId,
    TaskId,
    PlanGate,
    PhaseGate,
    DependsOn,
    Files,
    Reads,
    Base,
}

const SPOTS: [Spot; 9] = [
    Spot::PlanName,
    Spot::PhaseId,
    Spot::TaskId,
    Spot::PlanGate,
    Spot::PhaseGate,
    Spot::DependsOn,
    Spot::Files,
    Spot::Reads,
    Spot::Base,
];

fn plan_text(spot: Option<Spot>, value: &str) -> String {
    let v = |s: Spot, default: &str| {
        if matches!(spot, Some(x) if std::mem::discriminant(&x) == std::mem::discriminant(&s)) {
            q(value)
        } else {
            q(default)
        }
    };
    format!(
        "name = {name}\nbase = {base}\n[defaults]\nrun = \"true\"\n\
         [[gates]]\nname = {pg}\nrun = \"true\"\n\
         [[phases]]\nid = {phase}\n\
         [[phases.gates]]\nname = {fg}\nrun = \"true\"\n\
         [[phases.tasks]]\nid = {task}\nfiles = [{files}]\nreads = [{reads}]\n\
         [[phases.tasks]]\nid = \"b\"\nfiles = [\"b/**\"]\ndepends_on = [{dep}]\n",
        name = v(Spot::PlanName, "p"),
        base = v(Spot::Base, "main"),
        pg = v(Spot::PlanGate, "unit"),
        phase = v(Spot::PhaseId, "one"),
        fg = v(Spot::PhaseGate, "fmt"),
        task = v(Spot::TaskId, "a"),
        files = v(Spot::Files, "a/**"),
        reads = v(Spot::Reads, "a/**"),
        dep = v(Spot::DependsOn, "a"),
    )
}

// ------------------------------------------------------------- the cases

/// Every hostile name in every place of a plan file: `check` and `start`
/// refuse it with one error (exit 2) and change nothing; the few that are
/// legitimate there (a rev for `base`, a glob-ish `files`) either start
/// cleanly or are refused.
#[test]
fn hostile_names_in_plan_files_are_refused_and_change_nothing() {
    let repo = TestRepo::new();
    let names = hostile_names();
    let mut files = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for (j, spot) in SPOTS.iter().enumerate() {
            let text = plan_text(Some(*spot), name);
            files.push((
                *spot,
                name.clone(),
                repo.plan(&format!("h{i}-{j}.toml"), &text),
            ));
        }
    }
    let good = repo.plan("good.toml", &plan_text(None, ""));
    let mut guard = Guard::new(&repo, "p");
    guard
        .plans
        .extend(names.iter().filter(|n| valid_id(n)).cloned());
    let out = guard.run(&repo, &["check", path_arg(&good)]);
    assert_eq!(code(&out), Some(0), "the plan is valid: {}", stderr(&out));
    for (spot, name, file) in &files {
        let check = guard.run(&repo, &["check", path_arg(file)]);
        let start = guard.run(&repo, &["start", path_arg(file)]);
        let must_refuse =
            !matches!(spot, Spot::Base | Spot::Files | Spot::Reads) && !valid_id(name);
        if must_refuse {
            assert_eq!(code(&check), Some(2), "check {spot:?}={name:?}");
            assert_eq!(code(&start), Some(2), "start {spot:?}={name:?}");
        }
        if code(&start) == Some(0) {
            // Legitimate (a rev like `HEAD` as base, `a*b` as a glob):
            // the plan started under its own name; clear it for the next.
            assert!(!repo.refs().is_empty());
            for line in repo.refs().lines() {
                let name = line.split_once(' ').map_or(line, |(_, n)| n);
                if name != "refs/heads/main" {
                    repo.git(&["update-ref", "-d", name]);
                }
            }
        }
    }
    repo.fsck();
}

/// Hostile values on the command line, against a started plan with a task
/// in progress: every command answers 0 or 2 and stays in its lane.
#[test]
fn hostile_command_line_arguments_are_refused_and_change_nothing() {
    let repo = TestRepo::new();
    let plan = repo.plan("plan.toml", &plan_text(None, ""));
    let handoff = repo.plan("handoff.md", "notes\n");
    repo.orch_ok(&["start", path_arg(&plan)]);
    let wt = repo.orch_ok(&["task", "start", "a"]);
    let wt = PathBuf::from(wt.trim());
    let guard = Guard::new(&repo, "p");
    for name in hostile_names() {
        let h = name.as_str();
        let plan_path = repo.scratch().join(h);
        let plan_path = plan_path.to_string_lossy().into_owned();
        let commands: Vec<Vec<&str>> = vec![
            vec!["task", "start", h],
            vec!["task", "start", h, "--plan", h],
            vec!["task", "start", "b", "--plan", h],
            vec!["task", "done", h],
            vec!["task", "done", h, "--plan", "p"],
            vec!["task", "done", "a", "--handoff", h],
            vec!["task", "fail", h, "--reason", h],
            vec!["task", "reset", h],
            vec!["task", "skip", h],
            vec!["task", "reopen", h],
            vec!["status", h],
            vec!["status", h, "--json"],
            vec!["run", h],
            vec!["run", "--phase", h],
            vec!["run", "--task", h],
            vec!["resume", h],
            vec!["checkpoint", h],
            vec!["checkpoint", "--phase", h],
            vec!["rollback", h],
            vec!["rollback", "--to", h],
            vec!["rollback", "--undo", h],
            vec!["log", h],
            vec!["finish", h],
            vec!["gate", h],
            vec!["gate", "--phase", h],
            vec!["gate", "--commit", h],
            vec!["report", h],
            vec!["graph", h],
            vec!["check", h],
            vec!["check", &plan_path],
            vec!["start", h],
            vec!["start", path_arg(&plan), "--base", h],
            vec!["init", h],
            vec!["import", h],
        ];
        for args in &commands {
            guard.run(&repo, args);
        }
        // From inside the task's worktree too.
        guard.run_in(&repo, &wt, &["task", "done", h]);
        guard.run_in(&repo, &wt, &["status", h]);
    }
    // The plan is intact and the task still in progress.
    let st = repo.orch_json(&["status", "--json"]);
    let a = st["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["id"] == "a"))
        .expect("task a");
    assert_eq!(a["state"], "running");
    guard.run(
        &repo,
        &["task", "done", "a", "--handoff", path_arg(&handoff)],
    );
    repo.fsck();
}

/// Messages and reasons are free text: control characters and newlines in
/// them are stored, never interpreted, and the log stays one line each.
#[test]
fn free_text_with_control_characters_is_stored_not_interpreted() {
    let repo = TestRepo::new();
    let plan = repo.plan("plan.toml", &plan_text(None, ""));
    repo.orch_ok(&["start", path_arg(&plan)]);
    let guard = Guard::new(&repo, "p");
    let wt = PathBuf::from(repo.orch_ok(&["task", "start", "a"]).trim());
    std::fs::create_dir_all(wt.join("a")).expect("mkdir");
    std::fs::write(wt.join("a/x"), "x\n").expect("write");
    let msg = "subject \u{1b}[2J\nsecond line\u{7}\n\n-- $(touch ../ESCAPEDxq) `touch ESCAPEDxq`";
    let out = guard.run(&repo, &["task", "done", "a", "-m", msg]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let wt = PathBuf::from(repo.orch_ok(&["task", "start", "b"]).trim());
    let out = guard.run_in(&repo, &wt, &["task", "fail", "b", "--reason", msg]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    for args in [vec!["log"], vec!["status"], vec!["report"]] {
        let out = guard.run(&repo, &args);
        assert_eq!(code(&out), Some(0), "{args:?}: {}", stderr(&out));
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            !text.contains(['\u{1b}', '\u{7}']),
            "{args:?} prints raw control characters: {text:?}"
        );
    }
    let status = repo.orch_ok(&["status"]);
    assert!(
        status.contains("\\u{1b}[2J\\nsecond line\\u{7}"),
        "{status}"
    );
    let subjects = repo.git(&["log", "--format=%s", "orch/p/state"]);
    assert!(subjects.lines().count() >= 4, "{subjects}");
    repo.fsck();
}

fn huge_plan(n: usize, chain: bool) -> String {
    let mut s =
        String::from("name = \"big\"\n[defaults]\nrun = \"true\"\n[[phases]]\nid = \"one\"\n");
    for i in 0..n {
        s.push_str(&format!(
            "[[phases.tasks]]\nid = \"t{i}\"\nfiles = [\"f/{i}\"]\n"
        ));
        if chain && i > 0 {
            s.push_str(&format!("depends_on = [\"t{}\"]\n", i - 1));
        }
    }
    s
}

/// 10,000 tasks: check, start, status, a task by hand and list work.
#[test]
fn a_plan_of_ten_thousand_tasks_checks_starts_and_reports() {
    let repo = TestRepo::new();
    let file = repo.plan("big.toml", &huge_plan(10_000, false));
    let guard = Guard::new(&repo, "big");
    for args in [
        vec!["check", path_arg(&file)],
        vec!["start", path_arg(&file)],
    ] {
        let out = guard.run(&repo, &args);
        assert_eq!(code(&out), Some(0), "{args:?}: {}", stderr(&out));
    }
    let out = guard.run(&repo, &["status", "--json"]);
    let st = json_doc(&out, "status --json of 10,000 tasks");
    assert_eq!(st["tasks"].as_array().map(Vec::len), Some(10_000));
    let out = guard.run(&repo, &["task", "start", "t9999"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let out = guard.run(&repo, &["task", "done", "t9999"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    for args in [vec!["list"], vec!["log", "-n", "3"], vec!["status"]] {
        let out = guard.run(&repo, &args);
        assert_eq!(code(&out), Some(0), "{args:?}: {}", stderr(&out));
    }
    repo.fsck();
}

/// A 10,000-deep dependency chain validates and starts; closed into a
/// cycle it is refused naming the whole cycle, without a stack overflow.
#[test]
fn ten_thousand_deep_dependency_chains_and_cycles() {
    let repo = TestRepo::new();
    let chain = repo.plan("chain.toml", &huge_plan(10_000, true));
    let cyclic = huge_plan(10_000, true).replacen(
        "id = \"t0\"\n",
        "id = \"t0\"\ndepends_on = [\"t9999\"]\n",
        1,
    );
    let cycle = repo.plan("cycle.toml", &cyclic);
    let guard = Guard::new(&repo, "big");
    let out = guard.run(&repo, &["check", path_arg(&cycle)]);
    assert_eq!(code(&out), Some(2));
    let text = stdout(&out);
    assert!(
        text.contains("dependency cycle: t0 -> t9999 -> t9998")
            && text.contains("t1 -> t0 (each task depends on the next)"),
        "{}",
        &text[..text.len().min(300)]
    );
    let out = guard.run(&repo, &["start", path_arg(&cycle)]);
    assert_eq!(code(&out), Some(2));
    for args in [
        vec!["check", path_arg(&chain)],
        vec!["start", path_arg(&chain)],
    ] {
        let out = guard.run(&repo, &args);
        assert_eq!(code(&out), Some(0), "{args:?}: {}", stderr(&out));
    }
    let out = guard.run(&repo, &["run", "--task", "t0"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let out = guard.run(&repo, &["task", "start", "t2"]);
    assert_eq!(code(&out), Some(2), "t2 waits for t1");
    repo.fsck();
}

/// Files the tasks write: binary content and names with spaces, newlines,
/// tabs, quotes, backslashes, unicode, a leading dash, glob characters.
const ODD_NAMES: &[&str] = &[
    "odd/with space.txt",
    "odd/new\nline.txt",
    "odd/tab\tname",
    "odd/quote\"d",
    "odd/back\\slash",
    "odd/ünïcødé 名前.txt",
    "odd/-leading-dash",
    "odd/--",
    "odd/*star?[x]",
    "odd/.hidden",
    "odd/trailing space ",
    "odd/a:b@{1}~^",
];

fn odd_plan(run: Option<&str>) -> String {
    let run = run.map(|r| format!("run = {}\n", q(r))).unwrap_or_default();
    format!(
        "name = \"odd\"\n[[phases]]\nid = \"one\"\n\
         [[phases.tasks]]\nid = \"auto\"\nfiles = [\"odd/**\", \"bin/**\"]\n{run}\
         [[phases.tasks]]\nid = \"hand\"\nfiles = [\"hand/**\"]\n"
    )
}

fn tree_paths(repo: &TestRepo, rev: &str) -> Vec<Vec<u8>> {
    let out = repo
        .command("git", &repo.path)
        .args(["ls-tree", "-r", "-z", "--name-only", rev])
        .output()
        .expect("ls-tree");
    assert!(out.status.success());
    out.stdout
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn binary_files_and_odd_file_names_land() {
    let repo = TestRepo::new();
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let bin_src = repo.plan("blob.bin", "");
    std::fs::write(&bin_src, &binary).expect("write blob");
    // The task's command writes every odd name with printf (so \n and \t
    // are real), and a binary file copied in.
    let mut script = String::from("set -e; mkdir -p odd bin; ");
    for name in ODD_NAMES {
        let escaped = name
            .replace('\\', "\\\\")
            .replace('\n', "\\n")
            .replace('\t', "\\t")
            .replace('\'', "'\\''");
        script.push_str(&format!(
            "f=\"$(printf '{escaped}')\"; printf 'content\\0\\377' > \"$f\"; "
        ));
    }
    script.push_str(&format!("cp '{}' bin/blob.bin", bin_src.display()));
    let plan = repo.plan("plan.toml", &odd_plan(Some(&script)));
    let guard = Guard::new(&repo, "odd");
    let out = guard.run(&repo, &["start", path_arg(&plan)]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let out = guard.run(&repo, &["run", "--task", "auto"]);
    assert_eq!(code(&out), Some(0), "{}{}", stdout(&out), stderr(&out));

    // By hand: the same names, written directly.
    let wt = PathBuf::from(repo.orch_ok(&["task", "start", "hand"]).trim());
    for name in ODD_NAMES {
        let p = wt.join(name.replacen("odd/", "hand/", 1));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, b"by hand\x00\xff").expect("write odd name");
    }
    std::fs::write(wt.join("hand/blob.bin"), &binary).expect("write blob");
    let out = guard.run_in(&repo, &wt, &["task", "done", "hand"]);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));

    let landed = tree_paths(&repo, "orch/odd/work");
    for name in ODD_NAMES {
        for path in [name.to_string(), name.replacen("odd/", "hand/", 1)] {
            assert!(
                landed.contains(&path.as_bytes().to_vec()),
                "{path:?} did not land: {:?}",
                landed
                    .iter()
                    .map(|p| String::from_utf8_lossy(p))
                    .collect::<Vec<_>>()
            );
        }
    }
    for blob in ["orch/odd/work:bin/blob.bin", "orch/odd/work:hand/blob.bin"] {
        let out = repo
            .command("git", &repo.path)
            .args(["cat-file", "blob", blob])
            .output()
            .expect("cat-file");
        assert_eq!(out.stdout, binary, "{blob} changed on the way");
    }
    let st = repo.orch_json(&["status", "--json"]);
    assert_eq!(st["phases"][0]["done"], 2, "{st}");
    let out = guard.run(&repo, &["report", "--format", "json"]);
    assert_eq!(code(&out), Some(0));
    json_doc(&out, "report --format json");
    repo.fsck();
}

/// A plan with a UTF-8 BOM and CRLF line endings, in both formats, checks,
/// starts and runs; its problems are located on the right line.
#[test]
fn plans_with_a_bom_and_crlf_work() {
    let repo = TestRepo::new();
    let toml = "\u{feff}name = \"crlf\"\r\n[defaults]\r\nrun = \"echo hi > a.txt\"\r\n\
                [[phases]]\r\nid = \"one\"\r\n[[phases.tasks]]\r\nid = \"t\"\r\nfiles = [\"a.txt\"]\r\n";
    let yaml = "\u{feff}name: crlfy\r\ndefaults:\r\n  run: echo hi > b.txt\r\nphases:\r\n  - id: one\r\n    tasks:\r\n      - id: t\r\n        files: [b.txt]\r\n";
    let bad = "\u{feff}name = \"crlf\"\r\n[[phases]]\r\nid = \"one\"\r\n[[phases.tasks]]\r\nid = \"bad id\"\r\n";
    let t = repo.plan("crlf.toml", toml);
    let y = repo.plan("crlf.yaml", yaml);
    let b = repo.plan("bad.toml", bad);
    let guard = Guard::new(&repo, "crlf");
    let out = guard.run(&repo, &["check", path_arg(&b)]);
    assert_eq!(code(&out), Some(2));
    assert!(
        stdout(&out).contains("bad.toml:5:1: error: invalid task id `bad id`"),
        "{}",
        stdout(&out)
    );
    for args in [
        vec!["check", path_arg(&t)],
        vec!["check", path_arg(&y)],
        vec!["start", path_arg(&t)],
        vec!["run", "crlf"],
    ] {
        let out = guard.run(&repo, &args);
        assert_eq!(code(&out), Some(0), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(repo.show("orch/crlf/work:a.txt").as_deref(), Some("hi\n"));
    // The plan as written is kept byte for byte, BOM and CRs included.
    let source = repo
        .command("git", &repo.path)
        .args(["cat-file", "blob", "orch/crlf/state:source/crlf.toml"])
        .output()
        .expect("cat-file");
    assert_eq!(source.stdout, toml.as_bytes());
    repo.fsck();
}
