//! `git orch mcp` driven by MCP Inspector's CLI (`mcp-inspector --cli`, npm
//! `@modelcontextprotocol/inspector` at the version pinned in
//! tests/tools.versions, installed by .ci/run), besides the Python SDK of
//! tests/mcp.rs (issue 23). The Inspector sends every `--tool-arg` value as a
//! string and its SDK checks `structuredContent` against the tool's
//! `outputSchema` even on a tool error: both used to fail. Without the
//! Inspector each test prints a loud SKIP line and passes.
use crate::common::*;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn plan() -> String {
    PlanText::new("p")
        .task("a", |t| t.files(["a.txt"]).key("review", r#""manual""#))
        .task("b", |t| t.files(["b.txt"]))
        .to_string()
}

/// The `mcp-inspector` binary, or `None` after a loud SKIP line.
fn inspector(test: &str) -> Option<PathBuf> {
    let found = Command::new("sh")
        .args(["-c", "command -v mcp-inspector"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if found.is_none() {
        // Straight to stderr: the harness swallows the output of a passing
        // test, and a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIP {test}: MCP Inspector is not installed (.ci/run installs @modelcontextprotocol/inspector)"
        );
    }
    found
}

/// `mcp-inspector --cli git orch mcp --method METHOD ARGS…` in the repo;
/// the server gets the test's hermetic environment through `-e` (the
/// Inspector passes only a few variables of its own on).
fn inspect(
    repo: &TestRepo,
    bin: &Path,
    method: &str,
    args: &[&str],
) -> (Option<i32>, Value, String) {
    let mut cmd = repo.command(bin.to_str().expect("utf-8 path"), &repo.path);
    let env: Vec<String> = cmd
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_str()?, v?.to_str()?)))
        .collect();
    cmd.arg("--cli");
    for e in &env {
        cmd.args(["-e", e]);
    }
    cmd.args(["git", "orch", "mcp", "--method", method])
        .args(args);
    let out = cmd.output().expect("run mcp-inspector");
    let doc = serde_json::from_str(&stdout(&out)).unwrap_or(Value::Null);
    (code(&out), doc, both(&out))
}

/// `tools/call TOOL` with `--tool-arg K=V` each; the result must be a
/// result, not a client-side failure (schema check, protocol error).
fn call(repo: &TestRepo, bin: &Path, tool: &str, args: &[&str]) -> Value {
    let mut argv = vec!["--tool-name", tool];
    for a in args {
        argv.extend(["--tool-arg", a]);
    }
    let (code, doc, all) = inspect(repo, bin, "tools/call", &argv);
    assert_eq!(code, Some(0), "{tool} {args:?}: {all}");
    assert!(doc.is_object(), "{tool} {args:?}: {all}");
    doc
}

fn is_error(result: &Value) -> bool {
    result["isError"] == true
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or("")
}

fn started(test: &str) -> Option<(TestRepo, PathBuf)> {
    let bin = inspector(test)?;
    let repo = TestRepo::new();
    let plan = repo.plan("plan.toml", &plan());
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    Some((repo, bin))
}

#[test]
fn inspector_lists_plain_argument_types_and_output_schemas() {
    let Some((repo, bin)) = started("inspector_lists_plain_argument_types_and_output_schemas")
    else {
        return;
    };
    let (code, doc, all) = inspect(&repo, &bin, "tools/list", &[]);
    assert_eq!(code, Some(0), "{all}");
    let tools = doc["tools"].as_array().expect("tools");
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    for name in ["task_skip", "task_reopen", "task_approve", "next", "log"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    for tool in tools {
        for (field, prop) in tool["inputSchema"]["properties"]
            .as_object()
            .expect("properties")
        {
            assert!(prop["type"].is_string(), "{}.{field}: {prop}", tool["name"]);
        }
        assert_eq!(tool["outputSchema"]["type"], "object", "{}", tool["name"]);
    }
}

/// What Inspector 0.15 refused before issue 23: `max`, `no_cache`, `undo`
/// and `force` arrive as strings.
#[test]
fn inspector_string_numbers_and_booleans_are_read() {
    let Some((repo, bin)) = started("inspector_string_numbers_and_booleans_are_read") else {
        return;
    };
    let log = call(&repo, &bin, "log", &["max=1"]);
    assert!(!is_error(&log), "{log:#}");
    assert_eq!(log["structuredContent"]["schema"], "log");
    assert_eq!(
        log["structuredContent"]["events"].as_array().map(Vec::len),
        Some(1),
        "{log:#}"
    );
    assert!(schema_errors(&log["structuredContent"]).is_empty());

    // The CLI's own refusals, reached with the flag read from a string.
    for (tool, args, flag) in [
        ("checkpoint", &["no_cache=true"][..], "--no-cache"),
        ("rollback", &["undo=true"][..], "--undo"),
        ("task_reset", &["id=a", "force=true"][..], "--force"),
    ] {
        let r = call(&repo, &bin, tool, args);
        assert!(is_error(&r), "{tool}: {r:#}");
        let doc = &r["structuredContent"];
        assert_eq!(doc["schema"], "mcp-error", "{tool}: {r:#}");
        assert!(schema_errors(doc).is_empty(), "{tool}: {r:#}");
        assert_eq!(doc["exit_code"], 2, "{tool}: {r:#}");
        assert!(
            doc["argv"]
                .as_array()
                .expect("argv")
                .iter()
                .any(|a| a == flag),
            "{tool}: {flag} in {doc:#}"
        );
        assert!(
            text(&r).starts_with(&format!("error: {}", doc["error"].as_str().expect("error"))),
            "{tool}: {r:#}"
        );
    }
    // (A value that is no number never arrives as one: the Inspector turns
    // it into null, "not given". tests/mcp.rs sends one with the Python SDK.)
}

#[test]
fn inspector_shows_the_cli_error_and_hint_of_a_refused_task_done() {
    let Some((repo, bin)) =
        started("inspector_shows_the_cli_error_and_hint_of_a_refused_task_done")
    else {
        return;
    };
    let r = call(&repo, &bin, "task_done", &["id=a"]);
    assert!(is_error(&r), "{r:#}");
    let cli = repo.orch(&["task", "done", "--json", "--", "a"]);
    assert_eq!(code(&cli), Some(2), "{}", both(&cli));
    // The text is the CLI's stderr, its error and hint lines, then the code.
    let expected = format!("{}(exit code 2)", stderr(&cli));
    assert_eq!(text(&r), expected, "{r:#}");
    assert!(text(&r).contains("hint: "), "{r:#}");

    let bogus = call(&repo, &bin, "task_start", &["id=a", "bogus=1"]);
    assert!(is_error(&bogus), "{bogus:#}");
    assert_eq!(bogus["structuredContent"]["schema"], "mcp-error");
    assert!(text(&bogus).contains("unknown field `bogus`"), "{bogus:#}");
    assert_eq!(task_state(&status_json(&repo), "a"), "pending");
}

#[test]
fn inspector_next_names_the_task_waiting_in_review() {
    let Some((repo, bin)) = started("inspector_next_names_the_task_waiting_in_review") else {
        return;
    };
    repo.orch_ok(&["task", "skip", "b"]);
    let wt = repo.orch_json(&["task", "start", "a", "--json"]);
    let dir = PathBuf::from(wt["worktree"].as_str().expect("worktree"));
    std::fs::write(dir.join("a.txt"), "a\n").expect("write a.txt");
    let done = call(&repo, &bin, "task_done", &["id=a"]);
    assert_eq!(done["structuredContent"]["state"], "review", "{done:#}");

    let next = call(&repo, &bin, "next", &[]);
    let doc = &next["structuredContent"];
    assert!(schema_errors(doc).is_empty(), "{next:#}");
    assert_eq!(doc["action"], "wait", "{next:#}");
    assert_eq!(doc["review"], serde_json::json!(["a"]), "{next:#}");
    assert!(
        doc["hint"]
            .as_str()
            .is_some_and(|h| h.contains("git orch task approve a")),
        "{next:#}"
    );
    let approved = call(&repo, &bin, "task_approve", &["id=a"]);
    assert_eq!(
        approved["structuredContent"]["state"], "done",
        "{approved:#}"
    );
    let next = call(&repo, &bin, "next", &[]);
    assert_eq!(
        next["structuredContent"]["action"], "checkpoint",
        "{next:#}"
    );
}
