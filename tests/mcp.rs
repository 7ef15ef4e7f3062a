//! `git orch mcp` (issue 12) end to end: the official Python MCP SDK
//! (tests/mcp_client.py) starts `git orch mcp` as an agent host would and
//! drives a real plan; the results are checked with git itself. Also
//! `git orch task next`, which the CLI and the `next` tool share.
use crate::common::*;

use std::path::Path;

use serde_json::Value;

/// Two tasks, `b` after `a`, and a gate that needs both tasks' files.
fn plan() -> String {
    PlanText::new("p")
        .phase("one", |p| {
            p.gate("both-files", "test -f a.txt && test -f b.txt")
                .task("a", |t| t.title("Task A").files(["a.txt"]))
                .task("b", |t| t.files(["b.txt"]).depends_on(["a"]))
        })
        .phase("two", |p| p.task("c", |t| t.files(["c.txt"])))
        .to_string()
}

fn calls<'a>(t: &'a Value, tool: &str) -> Vec<&'a Value> {
    t["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter(|c| c["tool"] == tool)
        .collect()
}

/// A successful call's result: the CLI's own document, valid against its
/// schema.
fn ok(call: &Value) -> &Value {
    assert_eq!(call["is_error"], false, "{} failed: {call:#}", call["tool"]);
    let errors = schema_errors(&call["structured"]);
    assert!(errors.is_empty(), "{}: {errors:?}", call["tool"]);
    &call["structured"]
}

/// A failed call's result: an `mcp-error` document.
fn refused(call: &Value) -> &Value {
    assert_eq!(call["is_error"], true, "{call:#}");
    assert_eq!(call["structured"]["schema"], "mcp-error", "{call:#}");
    let errors = schema_errors(&call["structured"]);
    assert!(errors.is_empty(), "{}: {errors:?}", call["tool"]);
    &call["structured"]
}

fn plan_path(repo: &TestRepo) -> String {
    let p = repo.plan("plan.toml", &plan());
    p.to_str().expect("utf-8 path").to_string()
}

// ------------------------------------------------------------- end to end

#[test]
fn mcp_client_drives_a_plan_to_its_checkpoint() {
    let repo = TestRepo::new();
    let plan = plan_path(&repo);
    let t = mcp_client(&repo, "drive", &[&plan]);

    assert_eq!(t["server"]["name"], "git-orch");
    assert_eq!(ok(calls(&t, "check")[0])["valid"], true);
    assert_eq!(ok(calls(&t, "start")[0])["plan"], "p");

    // `next` named a, then b, then said checkpoint.
    let nexts: Vec<String> = calls(&t, "next")
        .iter()
        .map(|c| {
            let s = ok(c);
            format!(
                "{}:{}",
                s["action"].as_str().unwrap_or("?"),
                s["task"]["id"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(nexts, ["start:a", "start:b", "checkpoint:-"]);

    for done in calls(&t, "task_done") {
        assert_eq!(ok(done)["state"], "done", "{done:#}");
    }
    let cp = ok(calls(&t, "checkpoint")[0]);
    assert_eq!(cp["phase"], "one", "{cp:#}");

    // The final status through MCP: phase one checkpointed, tasks done.
    let st = ok(calls(&t, "status")[1]);
    assert_eq!(st["phases"][0]["state"], "checkpointed", "{st:#}");
    assert_eq!(task_state(st, "a"), "done");
    assert_eq!(task_state(st, "b"), "done");
    assert!(ok(calls(&t, "log")[0])["events"].is_array());
    assert!(ok(calls(&t, "report")[0]).is_object());

    // And with git itself: the tag, the files on the work branch, the notes.
    let tag = repo
        .rev("refs/tags/orch/p/one")
        .expect("checkpoint tag orch/p/one");
    let work = repo.rev("orch/p/work").expect("work branch");
    assert_eq!(
        repo.rev("orch/p/one^{commit}").as_deref(),
        Some(work.as_str())
    );
    assert_ne!(tag, "");
    assert_eq!(
        repo.show("orch/p/work:a.txt").as_deref(),
        Some("made by a over MCP\n")
    );
    assert_eq!(
        repo.show("orch/p/work:b.txt").as_deref(),
        Some("made by b over MCP\n")
    );
    let log = repo.git(&["log", "--format=%s", "orch/p/work"]);
    assert!(
        log.contains("a: over MCP") && log.contains("b: over MCP"),
        "{log}"
    );
    let note = repo
        .show(&format!("orch/p/state:{}", handoff_path("a")))
        .expect("a's handoff note in the state");
    assert!(note.contains("handoff of a: wrote a.txt"), "{note}");
    // The note went through a temporary file, never into the task's commit.
    let files = repo.git(&["ls-tree", "-r", "--name-only", "orch/p/work"]);
    assert_eq!(
        files.lines().collect::<Vec<_>>(),
        ["README", "a.txt", "b.txt"]
    );
    repo.fsck();
}

#[test]
fn mcp_refusals_are_tool_errors_that_change_nothing() {
    let repo = TestRepo::new();
    let plan = plan_path(&repo);
    // The client starts the plan first; compare against a twin started here.
    let t = mcp_client(&repo, "refuse", &[&plan]);
    let starts = calls(&t, "task_start");

    // A bad id: the CLI's own refusal, exit code and hint, as a tool error.
    let bad = starts[0];
    refused(bad);
    let cli = repo.orch(&["task", "start", "nope", "--json"]);
    assert_refused(&cli, "task start nope");
    let cli_error = stderr(&cli);
    let cli_line = cli_error.lines().next().expect("error line");
    assert_eq!(
        format!(
            "error: {}",
            bad["structured"]["error"].as_str().expect("error")
        ),
        cli_line
    );
    assert_eq!(bad["structured"]["exit_code"], 2);
    assert!(
        bad["text"][0].as_str().expect("text").starts_with(cli_line),
        "{bad:#}"
    );

    // An id that looks like an option is an id, not `--help`.
    let flag = starts[1];
    assert_eq!(flag["is_error"], true, "{flag:#}");
    assert_eq!(flag["structured"]["exit_code"], 2, "{flag:#}");
    assert!(
        flag["structured"]["error"]
            .as_str()
            .expect("error")
            .contains("--help"),
        "{flag:#}"
    );

    // Done before start: refused with the CLI's hint.
    let done = calls(&t, "task_done")[0];
    refused(done);
    assert_eq!(done["structured"]["exit_code"], 2);
    assert!(
        done["structured"]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("git orch task start a")),
        "{done:#}"
    );

    // An argument the tool does not take is refused by its input schema.
    let bogus = starts[2];
    assert_eq!(bogus["is_error"], true, "{bogus:#}");
    assert!(
        bogus["text"][0]
            .as_str()
            .is_some_and(|t| t.contains("unknown field `bogus`")),
        "{bogus:#}"
    );
    let missing = calls(&t, "status")[0];
    assert_eq!(missing["is_error"], true, "{missing:#}");
    assert_eq!(missing["structured"]["exit_code"], 2);

    // Nothing changed: no task started, no worktree, no branch.
    let st = status_json(&repo);
    for id in ["a", "b", "c"] {
        assert_eq!(task_state(&st, id), "pending");
    }
    let refs = repo.refs();
    assert!(!refs.contains("/tasks/"), "{refs}");
    let worktrees = repo.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(worktrees.matches("worktree ").count(), 1, "{worktrees}");
    assert!(task_record(&repo, "p", "a").is_none());
    repo.fsck();
}

#[test]
fn mcp_task_retry_returns_what_the_cli_says() {
    let repo = TestRepo::new();
    let plan = plan_path(&repo);
    let t = mcp_client(&repo, "refuse", &[&plan]);
    let retry = calls(&t, "task_retry")[0];
    let cli = repo.orch(&["task", "retry", "--json", "--", "a"]);
    assert_eq!(
        retry["is_error"],
        code(&cli) != Some(0),
        "{retry:#}\n{}",
        both(&cli)
    );
    if code(&cli) != Some(0) {
        assert_eq!(retry["structured"]["exit_code"], code(&cli).unwrap_or(-1));
        let line = stderr(&cli);
        assert_eq!(
            format!(
                "error: {}",
                retry["structured"]["error"].as_str().expect("error")
            ),
            line.lines().next().unwrap_or("")
        );
    }
}

#[test]
fn mcp_task_reject_and_task_approve_drive_a_manual_review() {
    let repo = TestRepo::new();
    let fake = fake_agent();
    let state = repo.scratch().join("fake");
    let text = format!(
        r#"name = "p"
[agents.writer]
run = '''sh "{}" flaky 0 a.txt && cp "$FAKE_STATE/$ORCH_TASK.count" attempt.txt'''
env = {{ FAKE_STATE = '{}' }}
[[phases]]
id = "one"
  [[phases.tasks]]
  id = "a"
  files = ["a.txt", "attempt.txt"]
  agent = "writer"
  retries = 1
  retry_backoff = "0s"
  review = "manual"
"#,
        fake.display(),
        state.display()
    );
    let plan = repo.plan("review.toml", &text);
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    repo.orch_ok(&["run"]);
    assert_eq!(task_state(&status_json(&repo), "a"), "review");
    let t = mcp_client(&repo, "reject", &["a", "call it b"]);
    let doc = ok(calls(&t, "task_reject")[0]);
    assert_eq!(doc["schema"], "task");
    assert_eq!(doc["state"], "failed");
    repo.orch_ok(&["run"]);
    let brief = std::fs::read_to_string(state.join("a.brief.2")).expect("brief 2");
    assert!(brief.contains("call it b"), "{brief}");
    let t = mcp_client(&repo, "approve", &["a"]);
    let doc = ok(calls(&t, "task_approve")[0]);
    assert_eq!(doc["schema"], "task-done");
    assert_eq!(doc["state"], "done");
    refused(calls(&t, "task_approve")[1]);
    assert_eq!(repo.show("orch/p/work:attempt.txt").as_deref(), Some("2\n"));
}

#[test]
fn mcp_results_are_the_cli_json() {
    let repo = TestRepo::new();
    let plan = plan_path(&repo);
    repo.orch_ok(&["start", &plan]);
    let t = mcp_client(&repo, "same_json", &[]);
    assert_eq!(
        ok(calls(&t, "status")[0]),
        &repo.orch_json(&["status", "--json"])
    );
    assert_eq!(
        ok(calls(&t, "next")[0]),
        &repo.orch_json(&["task", "next", "--json"])
    );
    assert_eq!(ok(calls(&t, "log")[0]), &repo.orch_json(&["log", "--json"]));
}

#[test]
fn mcp_lists_every_tool_with_described_inputs() {
    let repo = TestRepo::new();
    let t = mcp_client(&repo, "same_json", &[]);
    let mut names: Vec<&str> = t["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|tool| tool["name"].as_str().expect("name"))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "check",
            "checkpoint",
            "log",
            "next",
            "report",
            "rollback",
            "start",
            "status",
            "task_approve",
            "task_done",
            "task_fail",
            "task_reject",
            "task_reopen",
            "task_reset",
            "task_retry",
            "task_skip",
            "task_start",
        ]
    );
    for tool in t["tools"].as_array().expect("tools") {
        let name = &tool["name"];
        assert!(
            tool["description"]
                .as_str()
                .is_some_and(|d| d.contains("git orch")),
            "{name}: the description names its command"
        );
        let schema = &tool["input_schema"];
        assert_eq!(schema["type"], "object", "{name}");
        for (field, prop) in schema["properties"].as_object().expect("properties") {
            assert!(
                prop["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{name}.{field} has no description"
            );
        }
    }
    let mut read_only: Vec<&str> = t["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter(|tool| tool["read_only"] == true)
        .map(|tool| tool["name"].as_str().expect("name"))
        .collect();
    read_only.sort_unstable();
    assert_eq!(read_only, ["check", "log", "next", "report", "status"]);
    assert!(t["server"]["instructions"]
        .as_str()
        .is_some_and(|i| i.contains("task_start")));
}

/// Runs the `calls` scenario: each `[tool, arguments]` in order.
fn client_calls(repo: &TestRepo, script: Value) -> Value {
    mcp_client(repo, "calls", &[&script.to_string()])
}

/// Issue 23: MCP Inspector sends strings for numbers and booleans, and
/// shows a `["integer", "null"]` type as something else again.
#[test]
fn mcp_inputs_have_plain_types_and_read_numbers_and_booleans_from_strings() {
    let repo = TestRepo::new();
    let plan = plan_path(&repo);
    repo.orch_ok(&["start", &plan]);
    let t = client_calls(
        &repo,
        serde_json::json!([
            ["log", { "max": "1" }],
            ["log", { "max": 1 }],
            ["log", { "max": "many" }],
            ["task_reset", { "id": "a", "force": "true" }],
            ["task_reset", { "id": "a", "force": "maybe" }],
            ["checkpoint", { "no_cache": "false" }],
            ["task_start", { "id": "a", "bogus": true }],
        ]),
    );
    for tool in t["tools"].as_array().expect("tools") {
        for (field, prop) in tool["input_schema"]["properties"]
            .as_object()
            .expect("properties")
        {
            assert!(
                prop["type"].is_string(),
                "{}.{field}: one plain type: {prop}",
                tool["name"]
            );
        }
    }
    let logs = calls(&t, "log");
    assert_eq!(ok(logs[0])["events"].as_array().map(Vec::len), Some(1));
    assert_eq!(ok(logs[1]), ok(logs[0]));
    let many = refused(logs[2]);
    assert_eq!(many["exit_code"], 2, "{many:#}");
    assert_eq!(many["argv"], serde_json::json!([]), "nothing ran: {many:#}");
    assert!(
        logs[2]["text"][0]
            .as_str()
            .is_some_and(|t| t.starts_with("error: invalid arguments for `log`")
                && t.contains("expected a whole number")
                && t.contains("\nhint: ")),
        "{:#}",
        logs[2]
    );
    // `force: "true"` is read as `--force` (the CLI then refuses to reset
    // a pending task); `"maybe"` is no boolean, and nothing runs.
    let resets = calls(&t, "task_reset");
    assert_eq!(resets[0]["arguments"]["force"], "true", "sent as a string");
    let doc = refused(resets[0]);
    assert!(
        doc["argv"]
            .as_array()
            .expect("argv")
            .iter()
            .any(|a| a == "--force"),
        "{doc:#}"
    );
    let maybe = refused(resets[1]);
    assert_eq!(maybe["argv"], serde_json::json!([]), "{maybe:#}");
    assert!(
        maybe["error"]
            .as_str()
            .is_some_and(|e| e.contains("expected true or false")),
        "{maybe:#}"
    );
    // `no_cache: "false"` is read (no `--no-cache`); the CLI refuses the
    // checkpoint itself, with its own error and hint in the text.
    let cp = calls(&t, "checkpoint")[0];
    let doc = refused(cp);
    assert!(
        !doc["argv"]
            .as_array()
            .expect("argv")
            .iter()
            .any(|a| a == "--no-cache"),
        "{doc:#}"
    );
    let text = cp["text"][0].as_str().expect("text");
    assert!(
        text.starts_with(&format!("error: {}", doc["error"].as_str().expect("error")))
            && text.contains(&format!("\nhint: {}", doc["hint"].as_str().expect("hint"))),
        "{cp:#}"
    );
    let bogus = refused(calls(&t, "task_start")[0]);
    assert!(
        bogus["error"]
            .as_str()
            .is_some_and(|e| e.contains("unknown field `bogus`")),
        "{bogus:#}"
    );
    assert_eq!(task_state(&status_json(&repo), "a"), "pending");
}

/// Every tool's `outputSchema` is an object schema whose alternatives are
/// the CLI's own schemas (schemas/NAME.json), `mcp-error` among them; the
/// Python SDK validates each successful result against it.
#[test]
fn mcp_tools_declare_output_schemas_from_the_cli_schemas() {
    let repo = TestRepo::new();
    let t = mcp_client(&repo, "same_json", &[]);
    for tool in t["tools"].as_array().expect("tools") {
        let name = tool["name"].as_str().expect("name");
        let schema = &tool["output_schema"];
        assert_eq!(schema["type"], "object", "{name}: {schema:#}");
        let titles: Vec<&str> = schema["anyOf"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: anyOf: {schema:#}"))
            .iter()
            .map(|alt| alt["properties"]["schema"]["const"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(titles.last(), Some(&"mcp-error"), "{name}: {titles:?}");
        let expected: &[&str] = match name {
            "next" => &["task-next"],
            "task_start" | "task_retry" => &["task-start"],
            "task_done" | "task_approve" => &["task-done"],
            "task_fail" | "task_reset" | "task_reject" | "task_skip" | "task_reopen" => &["task"],
            "rollback" => &["rollback", "rollback-undo"],
            other => &[other],
        };
        assert_eq!(&titles[..titles.len() - 1], expected, "{name}");
    }
}

#[test]
fn mcp_task_skip_and_task_reopen_wrap_the_cli() {
    let repo = TestRepo::new();
    let plan = plan_path(&repo);
    repo.orch_ok(&["start", &plan]);
    let wt = repo.orch_json(&["task", "start", "a", "--json"]);
    write_in(
        Path::new(wt["worktree"].as_str().expect("worktree")),
        "a.txt",
    );
    repo.orch_ok(&["task", "done", "a"]);
    let t = client_calls(
        &repo,
        serde_json::json!([
            ["task_skip", { "id": "b" }],
            ["task_reopen", { "id": "a" }],
            ["task_skip", { "id": "nope" }],
        ]),
    );
    let skips = calls(&t, "task_skip");
    assert_eq!(ok(skips[0])["state"], "skipped", "{:#}", skips[0]);
    assert_eq!(ok(calls(&t, "task_reopen")[0])["state"], "pending");
    refused(skips[1]);
    let st = status_json(&repo);
    assert_eq!(task_state(&st, "a"), "pending");
    assert_eq!(task_state(&st, "b"), "skipped");
}

/// A `task_done` that does not land (exit 1) says why in its text: the
/// CLI's error and hint, not only "exited with code 1".
#[test]
fn mcp_task_done_that_does_not_land_says_why_in_its_text() {
    let repo = TestRepo::new();
    let plan = plan_path(&repo);
    repo.orch_ok(&["start", &plan]);
    let wt = repo.orch_json(&["task", "start", "a", "--json"]);
    write_in(
        Path::new(wt["worktree"].as_str().expect("worktree")),
        "outside.txt",
    );
    let t = client_calls(&repo, serde_json::json!([["task_done", { "id": "a" }]]));
    let done = calls(&t, "task_done")[0];
    let doc = refused(done);
    assert_eq!(doc["exit_code"], 1, "{doc:#}");
    assert_eq!(doc["result"]["state"], "failed", "{doc:#}");
    let text = done["text"][0].as_str().expect("text");
    assert!(
        text.starts_with("error: task a changed paths outside its declared files: outside.txt")
            && text.contains("\nhint: ")
            && text.contains("git orch task done a"),
        "{done:#}"
    );
}

/// Failed gates (exit 1, a document on stdout) also say why in the text.
#[test]
fn mcp_checkpoint_whose_gates_fail_says_why_in_its_text() {
    let repo = TestRepo::new();
    let plan = plan_path(&repo);
    repo.orch_ok(&["start", &plan]);
    let wt = repo.orch_json(&["task", "start", "a", "--json"]);
    write_in(
        Path::new(wt["worktree"].as_str().expect("worktree")),
        "a.txt",
    );
    repo.orch_ok(&["task", "done", "a"]);
    repo.orch_ok(&["task", "skip", "b"]);
    let t = client_calls(&repo, serde_json::json!([["checkpoint", {}]]));
    let cp = calls(&t, "checkpoint")[0];
    let doc = refused(cp);
    assert_eq!(doc["exit_code"], 1, "{doc:#}");
    assert_eq!(doc["result"]["passed"], false, "{doc:#}");
    let text = cp["text"][0].as_str().expect("text");
    assert!(
        text.starts_with("error: phase one failed its gates; no checkpoint was made\nhint: ")
            && text.contains("git orch task reopen ID"),
        "{cp:#}"
    );
    assert_eq!(repo.rev("refs/tags/orch/p/one"), None);
}

/// An invalid plan's text lists its diagnostics before the error, as the
/// CLI does without --json ("fix the lines above").
#[test]
fn mcp_check_of_an_invalid_plan_lists_its_diagnostics_in_the_text() {
    let repo = TestRepo::new();
    let bad = repo.plan(
        "bad.toml",
        "name = \"q\"\n[[phases]]\nid = \"x\"\n  [[phases.tasks]]\n  id = \"t\"\n  depends_on = [\"zz\"]\n",
    );
    let file = bad.to_str().expect("utf-8");
    let t = client_calls(&repo, serde_json::json!([["check", { "file": file }]]));
    let check = calls(&t, "check")[0];
    let doc = refused(check);
    assert_eq!(doc["exit_code"], 2, "{doc:#}");
    let text = check["text"][0].as_str().expect("text");
    assert!(
        text.contains(":6:17: error: task `t` depends on unknown task `zz`\n")
            && text.contains("\nerror: ")
            && text.contains("\nhint: fix the lines above"),
        "{check:#}"
    );
}

#[test]
fn mcp_client_says_when_the_python_package_is_missing() {
    // `python3 -S` does not load site-packages, where `mcp` is installed.
    let repo = TestRepo::new();
    let out = repo
        .command(&python(), &repo.path)
        .arg("-S")
        .arg(mcp_client_script())
        .args(["same_json", repo.path.to_str().expect("utf-8")])
        .output()
        .expect("run the MCP client");
    assert_eq!(code(&out), Some(3), "{}", both(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: the Python `mcp` package is missing")
            && err.contains("pip install mcp"),
        "{err}"
    );
}

#[test]
fn mcp_refuses_a_repo_option_that_is_not_a_directory() {
    let repo = TestRepo::new();
    let out = repo.orch(&["mcp", "--repo", "no-such-dir"]);
    assert_refused(&out, "mcp --repo no-such-dir");
}

// ------------------------------------------------------------ task next

fn next_json(repo: &TestRepo) -> Value {
    repo.orch_json(&["task", "next", "--json"])
}

fn write_in(dir: &Path, rel: &str) {
    std::fs::write(dir.join(rel), format!("{rel}\n")).expect("write");
}

#[test]
fn task_next_names_the_ready_task_then_the_checkpoint() {
    let repo = TestRepo::new();
    let plan = plan_path(&repo);
    repo.orch_ok(&["start", &plan]);

    let n = next_json(&repo);
    assert_eq!(n["action"], "start", "{n:#}");
    assert_eq!(n["task"]["id"], "a");
    assert_eq!(n["startable"], serde_json::json!(["a"]), "b waits for a");
    assert_eq!(n["phase"], "one");
    // Without --json: the id alone on stdout, the hint on stderr.
    let out = repo.orch(&["task", "next"]);
    assert_eq!(stdout(&out), "a\n", "{}", both(&out));
    assert!(
        stderr(&out).contains("git orch task start a"),
        "{}",
        both(&out)
    );

    let wt = repo.orch_json(&["task", "start", "a", "--json"]);
    let n = next_json(&repo);
    assert_eq!(n["action"], "wait", "{n:#}");
    assert_eq!(n["running"], serde_json::json!(["a"]));
    assert!(n["task"].is_null());
    let out = repo.orch(&["task", "next"]);
    assert_eq!(stdout(&out), "", "nothing to start: {}", both(&out));
    assert_eq!(code(&out), Some(0));

    write_in(
        Path::new(wt["worktree"].as_str().expect("worktree")),
        "a.txt",
    );
    repo.orch_ok(&["task", "done", "a"]);
    assert_eq!(next_json(&repo)["task"]["id"], "b");
    let wt = repo.orch_json(&["task", "start", "b", "--json"]);
    write_in(
        Path::new(wt["worktree"].as_str().expect("worktree")),
        "b.txt",
    );
    repo.orch_ok(&["task", "done", "b"]);

    let n = next_json(&repo);
    assert_eq!(n["action"], "checkpoint", "{n:#}");
    assert!(n["hint"]
        .as_str()
        .expect("hint")
        .contains("git orch checkpoint p"));
    repo.orch_ok(&["checkpoint"]);
    let n = next_json(&repo);
    assert_eq!(
        (&n["action"], &n["phase"], &n["task"]["id"]),
        (&"start".into(), &"two".into(), &"c".into())
    );
}

#[test]
fn task_next_says_a_failed_task_holds_the_phase() {
    let repo = TestRepo::new();
    let plan = plan_path(&repo);
    repo.orch_ok(&["start", &plan]);
    repo.orch_ok(&["task", "start", "a"]);
    repo.orch_ok(&["task", "fail", "a", "--reason", "broken"]);
    let n = next_json(&repo);
    assert_eq!(n["action"], "stuck", "{n:#}");
    assert_eq!(
        n["failed"],
        serde_json::json!([{ "task": "a", "state": "failed" }])
    );
    assert!(n["hint"]
        .as_str()
        .expect("hint")
        .contains("git orch task reset a"));
}

#[test]
fn task_next_waits_behind_a_running_task_whose_files_overlap() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "plan.toml",
        &PlanText::new("q")
            .task("x", |t| t.files(["src/**"]))
            .task("y", |t| t.files(["src/y/**"]))
            .task("z", |t| t.files(["docs/**"]))
            .to_string(),
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    repo.orch_ok(&["task", "start", "x"]);
    let n = next_json(&repo);
    assert_eq!(n["action"], "start", "{n:#}");
    assert_eq!(n["task"]["id"], "z", "y overlaps the running x: {n:#}");
    assert_eq!(
        n["waiting"],
        serde_json::json!([{ "task": "y", "behind": "x" }])
    );
}

#[test]
fn task_next_refuses_a_bad_plan_name() {
    let repo = TestRepo::new();
    let plan = plan_path(&repo);
    repo.orch_ok(&["start", &plan]);
    let before = repo.refs();
    let out = repo.orch(&["task", "next", "--plan", "../x"]);
    assert_refused(&out, "task next --plan ../x");
    assert_eq!(repo.refs(), before);
}

/// Issue 23: a task waiting in review is named, with what moves it on,
/// instead of `stuck` with empty lists.
#[test]
fn task_next_names_a_task_waiting_in_review() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "plan.toml",
        &PlanText::new("r")
            .task("a", |t| t.files(["a.txt"]).key("review", r#""manual""#))
            .to_string(),
    );
    repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
    let wt = repo.orch_json(&["task", "start", "a", "--json"]);
    write_in(
        Path::new(wt["worktree"].as_str().expect("worktree")),
        "a.txt",
    );
    repo.orch_ok(&["task", "done", "a"]);
    let n = next_json(&repo);
    assert_eq!(n["action"], "wait", "{n:#}");
    assert_eq!(n["review"], serde_json::json!(["a"]), "{n:#}");
    let hint = n["hint"].as_str().expect("hint");
    assert!(
        hint.contains("git orch task approve a") && hint.contains("git orch task reject a"),
        "{hint}"
    );
    let out = repo.orch(&["task", "next"]);
    assert_eq!(stdout(&out), "", "{}", both(&out));
    assert!(
        stderr(&out).contains("task a waits for review")
            && stderr(&out).contains("git orch task approve a"),
        "{}",
        both(&out)
    );
    // The `next` tool says the same.
    let t = mcp_client(&repo, "same_json", &[]);
    assert_eq!(ok(calls(&t, "next")[0]), &n);
    // And once approved, the phase can be checkpointed.
    repo.orch_ok(&["task", "approve", "a"]);
    let n = next_json(&repo);
    assert_eq!(n["action"], "checkpoint", "{n:#}");
    assert_eq!(n["review"], serde_json::json!([]));
}
