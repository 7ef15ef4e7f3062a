//! The hermetic test-repository helper shared by the integration tests:
//! real repositories in temp dirs, the real `git-orch` binary and the real
//! `git`, with no user or system config leaking in.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use tempfile::TempDir;

pub mod agents;
pub mod model_server;
pub mod plans;
pub mod wait;

pub use plans::*;
pub use wait::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_git-orch");

pub struct TestRepo {
    _tmp: TempDir,
    pub path: PathBuf,
    pub home: PathBuf,
    /// A directory put first on PATH, holding `git-orch` so `git orch` works.
    pub bin_dir: PathBuf,
}

/// Makes a command hermetic: no global/system git config, fixed identity
/// and dates, no colour, and our binary first on PATH.
pub fn hermetic(cmd: &mut Command, home: &Path, bin_dir: &Path) {
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", home.join(".gitconfig"))
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .env("NO_COLOR", "1")
        .env("LC_ALL", "C")
        .env("TMPDIR", std::env::temp_dir());
}

impl TestRepo {
    /// A repository on `main` with one commit (README).
    pub fn new() -> TestRepo {
        let repo = TestRepo::empty();
        repo.write("README", "hello\n");
        repo.git(&["add", "-A"]);
        repo.git(&["commit", "-q", "-m", "initial"]);
        repo
    }

    /// A repository without commits.
    pub fn empty() -> TestRepo {
        let tmp = TempDir::new().expect("temp dir");
        let root = tmp.path().canonicalize().expect("canonical temp dir");
        let path = root.join("repo");
        let home = root.join("home");
        let bin_dir = root.join("bin");
        std::fs::create_dir_all(&path).expect("mkdir repo");
        std::fs::create_dir_all(&home).expect("mkdir home");
        std::fs::create_dir_all(&bin_dir).expect("mkdir bin");
        std::os::unix::fs::symlink(BIN, bin_dir.join("git-orch")).expect("symlink git-orch");
        let repo = TestRepo {
            _tmp: tmp,
            path,
            home,
            bin_dir,
        };
        // git's default gc.auto on purpose: git-orch must not let git's
        // automatic maintenance race its worktrees.
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// The temp dir holding the repo (for remotes, plan files, …).
    pub fn scratch(&self) -> PathBuf {
        self.path.parent().expect("repo has a parent").to_path_buf()
    }

    pub fn command(&self, program: &str, dir: &Path) -> Command {
        let mut cmd = Command::new(program);
        hermetic(&mut cmd, &self.home, &self.bin_dir);
        cmd.current_dir(dir).stdin(Stdio::null());
        cmd
    }

    /// Runs git in the repo and returns stdout; panics on failure.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&self.path, args)
    }

    pub fn git_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self
            .command("git", dir)
            .args(args)
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `git-orch` in the repo.
    pub fn orch(&self, args: &[&str]) -> Output {
        self.orch_in(&self.path, args)
    }

    pub fn orch_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.command(BIN, dir)
            .args(args)
            .output()
            .expect("run git-orch")
    }

    /// Runs `git-orch`, asserts exit 0, returns stdout.
    pub fn orch_ok(&self, args: &[&str]) -> String {
        let out = self.orch(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "git orch {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `git-orch`, asserts exit 0, and returns its `--json` document,
    /// validated against its schema ([`json_doc`]).
    pub fn orch_json(&self, args: &[&str]) -> serde_json::Value {
        self.orch_json_in(&self.path, args)
    }

    pub fn orch_json_in(&self, dir: &Path, args: &[&str]) -> serde_json::Value {
        let out = self.orch_in(dir, args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "git orch {args:?} failed\n{}",
            both(&out)
        );
        json_doc(&out, &format!("git orch {args:?}"))
    }

    pub fn write(&self, rel: &str, content: &str) -> PathBuf {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write file");
        p
    }

    /// Writes a plan file outside the repository's tree and returns its path.
    pub fn plan(&self, name: &str, text: &str) -> PathBuf {
        let p = self.scratch().join(name);
        std::fs::write(&p, text).expect("write plan");
        p
    }

    pub fn commit_all(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", message]);
    }

    /// `git for-each-ref` of every ref: the before/after snapshot of refusals.
    pub fn refs(&self) -> String {
        self.git(&["for-each-ref", "--format=%(objectname) %(refname)"])
    }

    /// The id a rev resolves to, `None` if it does not.
    pub fn rev(&self, rev: &str) -> Option<String> {
        let out = self
            .command("git", &self.path)
            .args(["rev-parse", "--verify", "-q", rev])
            .output()
            .expect("rev-parse");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `git fsck` must pass with no error, missing or broken object.
    pub fn fsck(&self) {
        let out = self
            .command("git", &self.path)
            .args(["fsck", "--no-progress"])
            .output()
            .expect("fsck");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "git fsck failed:\n{text}");
        for bad in ["error", "missing", "broken", "corrupt"] {
            assert!(!text.contains(bad), "git fsck reports {bad}:\n{text}");
        }
    }

    /// A file's content at a rev, `None` if absent.
    pub fn show(&self, rev_path: &str) -> Option<String> {
        let out = self
            .command("git", &self.path)
            .args(["show", rev_path])
            .output()
            .expect("git show");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Writes `content` to `rel` under `dir` (a worktree, a checkout),
/// making the directories on the way.
pub fn put(dir: &Path, rel: &str, content: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, content).expect("write");
}

/// Runs `git orch ARGS` in the repository with `input` on its stdin.
pub fn orch_stdin(repo: &TestRepo, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = repo
        .command(BIN, &repo.path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn git-orch");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait git-orch")
}

/// The Python interpreter that runs tests/mcp_client.py, found with the
/// test's own environment (a pyenv shim needs the real HOME) and then run
/// in the hermetic one; `GIT_ORCH_TEST_PYTHON` names another.
pub fn python() -> String {
    if let Ok(p) = std::env::var("GIT_ORCH_TEST_PYTHON") {
        return p;
    }
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 must be installed to test `git orch mcp`");
    assert!(out.status.success(), "python3 -c failed: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// `tests/mcp_client.py`: drives `git orch mcp` with the official Python
/// MCP client.
pub fn mcp_client_script() -> String {
    format!("{}/tests/mcp_client.py", env!("CARGO_MANIFEST_DIR"))
}

/// Runs a scenario of tests/mcp_client.py against `git orch mcp` in the
/// repository (`extra`: the scenario's arguments); returns its transcript.
pub fn mcp_client(repo: &TestRepo, scenario: &str, extra: &[&str]) -> serde_json::Value {
    let out = repo
        .command(&python(), &repo.path)
        .arg(mcp_client_script())
        .arg(scenario)
        .arg(&repo.path)
        .args(extra)
        .output()
        .expect("run the MCP client");
    assert!(
        out.status.success(),
        "the MCP client failed (exit {:?}); is the Python `mcp` package installed (`python3 -m pip install mcp`)?\n{}",
        code(&out),
        both(&out)
    );
    serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("the client's transcript is not JSON ({e}):\n{}", both(&out)))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts SPEC §6/§7 for a refusal: exit 2, stderr starts with `error:`,
/// no panic or backtrace.
pub fn assert_refused(out: &Output, context: &str) {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{context}: expected exit 2, got {:?}\nstderr: {err}",
        out.status.code()
    );
    assert!(
        err.starts_with("error:"),
        "{context}: stderr must start with `error:`, got: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{context}: panic: {err}"
    );
}

/// `git orch status --json` (asserting success).
pub fn status_json(repo: &TestRepo) -> serde_json::Value {
    repo.orch_json(&["status", "--json"])
}

/// A task's `state` in a `status --json` object.
pub fn task_state(st: &serde_json::Value, id: &str) -> String {
    st["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no task {id} in {st}"))["state"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

/// A task's object in a `status --json` document.
pub fn status_task<'a>(st: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    st["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no task {id} in {st}"))
}

/// A task's `key` in a `status --json` document (null when the task or
/// the key is absent).
pub fn task_field(st: &serde_json::Value, id: &str, key: &str) -> serde_json::Value {
    st["tasks"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["id"] == id))
        .map_or(serde_json::Value::Null, |t| t[key].clone())
}

/// The events of kind `kind` in `log --json`, oldest first.
pub fn log_events(repo: &TestRepo, kind: &str) -> Vec<serde_json::Value> {
    let log = repo.orch_json(&["log", "--json"]);
    log["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event"]["kind"] == kind)
        .map(|e| e["event"].clone())
        .collect()
}

/// A directory beside the repository where tasks leave evidence.
pub fn out_dir(repo: &TestRepo) -> PathBuf {
    let dir = repo.scratch().join("out");
    std::fs::create_dir_all(&dir).expect("mkdir out");
    dir
}

pub fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

/// Both streams, labelled, for assertion messages.
pub fn both(out: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", stdout(out), stderr(out))
}

/// `tasks/<h>/<h>/<id>`: where format 2 of the state tree keeps a task
/// (README "State layout"); the two fan-out digits are FNV-1a of the id.
fn task_dir(id: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("tasks/{:x}/{:x}/{id}", (h >> 4) & 0xf, h & 0xf)
}

/// The path of a file of a task in the state tree (its logs, its handoff).
pub fn task_path(id: &str, file: &str) -> String {
    format!("{}/{file}", task_dir(id))
}

/// The path of a task's record in the state tree.
pub fn record_path(id: &str) -> String {
    format!("{}.json", task_dir(id))
}

/// The path of a task's handoff note in the state tree.
pub fn handoff_path(id: &str) -> String {
    task_path(id, "handoff.md")
}

/// The path of a task's log of attempt `n` in the state tree.
pub fn log_path(id: &str, n: u32) -> String {
    task_path(id, &format!("{n}.log"))
}

/// A task's record in the state branch of `plan`, if it has one.
pub fn task_record(repo: &TestRepo, plan: &str, id: &str) -> Option<serde_json::Value> {
    let text = repo.show(&format!("orch/{plan}/state:{}", record_path(id)))?;
    Some(serde_json::from_str(&text).expect("a task record is JSON"))
}

/// `schemas/`: the JSON Schema of every `--json` output, one file a name.
pub fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// Every schema in `schemas/`, compiled once per test binary, by name.
fn validators() -> &'static BTreeMap<String, jsonschema::Validator> {
    static ALL: OnceLock<BTreeMap<String, jsonschema::Validator>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = BTreeMap::new();
        for entry in std::fs::read_dir(schemas_dir()).expect("schemas/ is readable") {
            let path = entry.expect("schemas/ entry").path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            let text = std::fs::read_to_string(&path).expect("a schema file");
            let schema: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
            let validator = jsonschema::draft202012::new(&schema)
                .unwrap_or_else(|e| panic!("{}: not a valid schema: {e}", path.display()));
            all.insert(name.to_string(), validator);
        }
        all
    })
}

/// Why `doc` is not a valid git-orch document: no `schema` name, a name
/// with no file in `schemas/`, or each way it breaks that schema. Empty
/// when it is valid.
pub fn schema_errors(doc: &serde_json::Value) -> Vec<String> {
    let Some(name) = doc.get("schema").and_then(serde_json::Value::as_str) else {
        return vec!["no `schema` field naming its schema".to_string()];
    };
    let Some(validator) = validators().get(name) else {
        return vec![format!("no schemas/{name}.json")];
    };
    validator
        .iter_errors(doc)
        .map(|e| format!("at `{}`: {e}", e.instance_path()))
        .collect()
}

/// Parses a `--json` stdout (whatever the exit code: `check --json` of a
/// bad plan exits 2, a failed `run --json` 1) and asserts it is one
/// document that opens with `schema` and `schema_version` and is valid
/// against its schema. Every test that reads JSON output goes through here.
pub fn json_doc(out: &Output, context: &str) -> serde_json::Value {
    let text = stdout(out);
    let doc: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{context}: bad JSON ({e})\n{}", both(out)));
    let name = doc["schema"].as_str().unwrap_or("");
    let head = format!("{{\n  \"schema\": \"{name}\",\n  \"schema_version\": ");
    assert!(
        text.starts_with(&head),
        "{context}: a document opens with `schema` and `schema_version`:\n{text}"
    );
    let errors = schema_errors(&doc);
    assert!(
        errors.is_empty(),
        "{context}: the output breaks schemas/{}.json:\n  {}\n{text}",
        doc["schema"].as_str().unwrap_or("?"),
        errors.join("\n  ")
    );
    doc
}

/// Shell that rewrites `plan.json` on the state branch of plan `p` with
/// plain git (hash-object, a temporary index, commit-tree), widening task
/// `a`'s files (`a/**`) to everything; `publish` then puts the forged
/// commit `$commit` (on `$head`, for ref `$st`) where it goes.
pub fn forge_plan_script(publish: &str) -> String {
    format!(
        r##"st=refs/heads/orch/p/state
head=$(git rev-parse $st)
tmp=$(mktemp -d)
git show $st:plan.json | sed 's#"a/\*\*"#"**"#' > $tmp/plan.json
blob=$(git hash-object -w $tmp/plan.json)
GIT_INDEX_FILE=$tmp/index git read-tree $head
GIT_INDEX_FILE=$tmp/index git update-index --cacheinfo 100644,$blob,plan.json
tree=$(GIT_INDEX_FILE=$tmp/index git write-tree)
commit=$(echo forged | git commit-tree $tree -p $head)
{publish}
rm -rf $tmp"##
    )
}

/// The user documentation: the README and every page of the book under
/// `docs/src`, as (path relative to the crate, text), the README first.
pub fn doc_pages() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![(
        "README.md".to_string(),
        std::fs::read_to_string(root.join("README.md")).expect("README.md"),
    )];
    let mut names: Vec<String> = std::fs::read_dir(root.join("docs/src"))
        .expect("docs/src")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .collect();
    names.sort();
    for name in names {
        let path = format!("docs/src/{name}");
        let text = std::fs::read_to_string(root.join(&path)).expect("a docs page");
        pages.push((path, text));
    }
    pages
}

/// Every page of [`doc_pages`] joined, for tests that look for a line
/// anywhere in the documentation.
pub fn doc_text() -> String {
    doc_pages()
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("\n")
}
