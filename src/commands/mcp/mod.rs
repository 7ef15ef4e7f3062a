//! `git orch mcp`: a Model Context Protocol server on stdin/stdout, built
//! on the official Rust SDK (`rmcp`). Each tool runs this very binary with
//! the matching command line plus `--json`, so a tool is the CLI's own code
//! path: the same JSON comes back as the tool's structured result, and what
//! the CLI refuses comes back as a tool error carrying its `error:` and
//! `hint:` lines and exit code. Tokio lives in this module only, on one
//! thread; the tools' arguments are in `input.rs`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use anyhow::{Context, Result};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CallToolResult, Content, Implementation, JsonObject, ServerCapabilities, ServerInfo,
};
use rmcp::{tool, tool_handler, tool_router, ServerHandler, ServiceExt};
use serde_json::{json, Value};

use crate::cli::McpArgs;
use crate::error::refuse;
use crate::schema::Schema;

mod input;
use input::*;

const INSTRUCTIONS: &str = "git-orch carries a plan of phases and tasks through a git \
repository, every task in its own worktree, quality gates and a checkpoint tag per phase. \
A manual loop: `next` names the task to start; `task_start` makes its worktree (edit files \
there); `task_done` commits and lands it on the plan's work branch, with a handoff note for \
the tasks after it (a task the plan wants reviewed waits in review for `task_approve`); \
when `next` says `checkpoint`, `checkpoint` runs the phase's gates and tags it. When `next` \
names a task in `review`, `task_approve` lands it and `task_reject` sends it back. `status` \
shows everything. Each tool is the git-orch command of the same name run with --json in \
`repo` (default: the server's directory; never another repository) and returns that \
command's JSON; a refusal is a tool error whose text is the command's error and hint, and \
whose structured result is an `mcp-error` document (bad arguments too). Numbers and booleans \
may be given as strings (\"3\", \"true\").";

pub fn run(args: McpArgs) -> Result<u8> {
    let dir = match args.repo {
        Some(dir) => {
            if !dir.is_dir() {
                return Err(refuse(format!(
                    "`--repo {}` is not a directory",
                    crate::ui::printable(&dir.display().to_string())
                )));
            }
            dir
        }
        None => std::env::current_dir()?,
    };
    let exe = std::env::current_exe().context("cannot find the git-orch binary to run")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the MCP server's runtime")?;
    let served = repository_of(&dir);
    runtime.block_on(async move {
        let server = Orch {
            exe,
            dir,
            served,
            tool_router: Orch::tool_router(),
        };
        let service = server
            .serve(rmcp::transport::stdio())
            .await
            .context("the MCP client did not initialise the session")?;
        service
            .waiting()
            .await
            .context("the MCP session ended with an error")?;
        Ok(0)
    })
}

#[derive(Clone)]
struct Orch {
    exe: PathBuf,
    dir: PathBuf,
    /// The repository the server was started in (its git common dir,
    /// resolved), `None` when it was started outside one: a tool's `repo`
    /// must name a directory of this very repository (a worktree of it,
    /// its task worktrees included), never another one.
    served: Option<PathBuf>,
    tool_router: ToolRouter<Self>,
}

/// The repository `dir` belongs to, as its git common dir with every
/// symlink resolved: two directories with the same one are worktrees (or
/// subdirectories) of one repository.
fn repository_of(dir: &Path) -> Option<PathBuf> {
    let repo = crate::git::Repo::discover(dir).ok()?;
    std::fs::canonicalize(&repo.common_dir).ok()
}

/// A command line for this binary: the words, then `--` and the positional
/// arguments, so that a value from the client is never read as an option.
struct Argv {
    words: Vec<String>,
    positional: Vec<String>,
}

impl Argv {
    fn new(words: &[&str]) -> Self {
        let mut words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        words.push("--json".into());
        Argv {
            words,
            positional: Vec::new(),
        }
    }

    /// `--name=value` when the value is given.
    fn opt(mut self, name: &str, value: Option<impl ToString>) -> Self {
        if let Some(v) = value {
            self.words.push(format!("--{name}={}", v.to_string()));
        }
        self
    }

    fn flag(mut self, name: &str, on: Option<bool>) -> Self {
        if on == Some(true) {
            self.words.push(format!("--{name}"));
        }
        self
    }

    fn arg(mut self, value: Option<&str>) -> Self {
        self.positional.extend(value.map(str::to_string));
        self
    }

    fn into_vec(self) -> Vec<String> {
        let mut all = self.words;
        if !self.positional.is_empty() {
            all.push("--".into());
            all.extend(self.positional);
        }
        all
    }
}

impl Orch {
    /// Runs `git orch ARGV` in `repo` (relative to the server's directory,
    /// and in the repository it serves) and turns its outcome into the
    /// tool's result.
    async fn call(&self, repo: Option<&str>, argv: Argv) -> CallToolResult {
        let argv = argv.into_vec();
        let dir = repo.map_or_else(|| self.dir.clone(), |r| self.dir.join(r));
        if !dir.is_dir() {
            let shown = crate::ui::printable(repo.unwrap_or_default());
            return failure(
                &argv,
                2,
                &format!("error: `repo` {shown} is not a directory\nhint: give the path of a git repository or one of its worktrees\n"),
                "",
            );
        }
        // An agent that may name any directory could reach every repository
        // this user can write to: `repo` stays within the served one.
        if let Some(r) = repo {
            if self.served.is_none() || repository_of(&dir) != self.served {
                let shown = crate::ui::printable(r);
                return failure(
                    &argv,
                    2,
                    &format!(
                        "error: `repo` {shown} is not in the repository this MCP server serves ({})\nhint: leave `repo` out, or give a worktree of that repository; for another repository, start `git orch mcp` there\n",
                        crate::ui::printable(&self.dir.display().to_string())
                    ),
                    "",
                );
            }
        }
        let output = tokio::process::Command::new(&self.exe)
            .args(&argv)
            .current_dir(&dir)
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await;
        let output = match output {
            Ok(o) => o,
            Err(e) => {
                return failure(
                    &argv,
                    1,
                    &format!("error: cannot run {}: {e}\n", self.exe.display()),
                    "",
                )
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        match output.status.code() {
            Some(0) => success(&stdout, &stderr),
            Some(code) => failure(&argv, code, &stderr, &stdout),
            None => failure(
                &argv,
                1,
                &format!("{stderr}error: git-orch was killed by a signal\n"),
                &stdout,
            ),
        }
    }
}

/// The command's JSON as the structured result and as text; what it said on
/// stderr (notes, repairs, warnings) as a second text.
fn success(stdout: &str, stderr: &str) -> CallToolResult {
    let mut result = match serde_json::from_str::<Value>(stdout) {
        Ok(value @ Value::Object(_)) => CallToolResult::structured(value),
        _ => CallToolResult::success(vec![Content::text(stdout.to_string())]),
    };
    if !stderr.trim().is_empty() {
        result
            .content
            .push(Content::text(stderr.trim_end().to_string()));
    }
    result
}

/// A tool error. Its text is what a person reads: an invalid plan's
/// diagnostics, the `error:` and `hint:` lines, the exit code. Its
/// structured content (schema `mcp-error`) is `{error, hint, exit_code,
/// stderr, result, argv}`, where `result` is the JSON the command printed
/// before failing (a conflict, gates that failed), if any.
fn failure(argv: &[String], code: i32, stderr: &str, stdout: &str) -> CallToolResult {
    let line = |prefix: &str| {
        stderr
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::to_string)
    };
    let printed = serde_json::from_str::<Value>(stdout).ok();
    let error = line("error: ").unwrap_or_else(|| {
        // No `error:` line (a command that should print one): say at least
        // what the document it printed says.
        let said = printed
            .as_ref()
            .and_then(|doc| {
                Some(format!(
                    ": task {} ended in state `{}`",
                    doc["task"].as_str()?,
                    doc["state"].as_str()?
                ))
            })
            .unwrap_or_default();
        format!("git orch exited with code {code}{said}")
    });
    let hint = line("hint: ");
    let envelope = json!({
        "schema": crate::schema::Schema::McpError.name(),
        "schema_version": crate::schema::Schema::McpError.version(),
        "error": error,
        "hint": hint,
        "exit_code": code,
        "stderr": stderr,
        "result": &printed,
        "argv": argv,
    });
    // An invalid plan's diagnostics come first, as the CLI prints them
    // without --json: its hint speaks of "the lines above".
    let mut text: String = printed
        .as_ref()
        .and_then(|doc| doc["diagnostics"].as_array())
        .into_iter()
        .flatten()
        .map(|d| {
            format!(
                "{}:{}:{}: {}: {}\n",
                d["file"].as_str().unwrap_or("?"),
                d["line"],
                d["col"],
                d["severity"].as_str().unwrap_or("error"),
                d["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    text.push_str(&format!("error: {error}"));
    if let Some(h) = &hint {
        text.push_str(&format!("\nhint: {h}"));
    }
    text.push_str(&format!("\n(exit code {code})"));
    let json_text = envelope.to_string();
    let mut result = CallToolResult::structured_error(envelope);
    result.content = vec![Content::text(text), Content::text(json_text)];
    result
}

// ------------------------------------------------------------------ tools

/// The tool's arguments, or return the `mcp-error` that refuses them.
macro_rules! read {
    ($p:expr) => {
        match $p {
            Ok(p) => p,
            Err(refused) => return refused,
        }
    };
}

/// A tool's `outputSchema`: every document the tool can answer with, that
/// is the JSON Schemas (`schemas/NAME.json`) of what its command prints on
/// success and of `mcp-error`, as `anyOf` in one object schema. Clients
/// validate `structuredContent` against it, some (MCP Inspector 0.15) even
/// on a tool error, so the error document is one of the alternatives. Each
/// schema loses `$schema` and `$id` (MCP's default dialect is the same draft
/// 2020-12) and its `$defs` move to the top, where its `#/$defs/…` point.
fn output_schema(success: &[Schema]) -> Arc<JsonObject> {
    let mut defs = JsonObject::new();
    let alternatives: Vec<Value> = success
        .iter()
        .chain([&Schema::McpError])
        .map(|schema| {
            let mut object = match serde_json::from_str::<Value>(schema.text()) {
                Ok(Value::Object(o)) => o,
                // Not reached: tests/schemas.rs parses every built-in schema.
                _ => JsonObject::from_iter([("type".to_string(), json!("object"))]),
            };
            object.remove("$schema");
            object.remove("$id");
            if let Some(Value::Object(d)) = object.remove("$defs") {
                defs.extend(d);
            }
            Value::Object(object)
        })
        .collect();
    let mut root = JsonObject::new();
    root.insert("type".into(), json!("object"));
    root.insert("anyOf".into(), Value::Array(alternatives));
    if !defs.is_empty() {
        root.insert("$defs".into(), Value::Object(defs));
    }
    Arc::new(root)
}

#[tool_router]
impl Orch {
    #[tool(
        description = "Validate a plan file (`git orch check FILE --json`): {file, valid, diagnostics[{file, line, col, severity, message}]}; an invalid plan is a tool error whose `result` holds the diagnostics",
        annotations(read_only_hint = true),
        output_schema = output_schema(&[Schema::Check])
    )]
    async fn check(&self, Parameters(p): Parameters<FileInput>) -> CallToolResult {
        let p = read!(p);
        let argv = Argv::new(&["check"]).arg(Some(&p.file));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Validate a plan file and start it (`git orch start FILE --json`): makes its work and state branches and the `start` tag; returns {plan, base, work, state}",
        output_schema = output_schema(&[Schema::Start])
    )]
    async fn start(&self, Parameters(p): Parameters<StartInput>) -> CallToolResult {
        let p = read!(p);
        let argv = Argv::new(&["start"]).opt("base", p.base).arg(Some(&p.file));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "The plan's phases, tasks, current phase and checkpoints (`git orch status --json`)",
        annotations(read_only_hint = true),
        output_schema = output_schema(&[Schema::Status])
    )]
    async fn status(&self, Parameters(p): Parameters<PlanInput>) -> CallToolResult {
        let p = read!(p);
        let argv = Argv::new(&["status"]).arg(p.plan.as_deref());
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "The task to start now, or what the plan waits for (`git orch task next --json`): {action: start|wait|checkpoint|gates_failed|stuck|finished, task, startable, waiting, running, failed, review, hint}; `review` names tasks waiting for `task_approve` or `task_reject`",
        annotations(read_only_hint = true),
        output_schema = output_schema(&[Schema::TaskNext])
    )]
    async fn next(&self, Parameters(p): Parameters<PlanInput>) -> CallToolResult {
        let p = read!(p);
        let argv = Argv::new(&["task", "next"]).opt("plan", p.plan);
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Claim a ready task and make its worktree (`git orch task start ID --json`): returns {worktree, branch, task_file, handoff_file, …}; do the task's work by editing files in `worktree`",
        output_schema = output_schema(&[Schema::TaskStart])
    )]
    async fn task_start(&self, Parameters(p): Parameters<TaskInput>) -> CallToolResult {
        let p = read!(p);
        let argv = Argv::new(&["task", "start"])
            .opt("plan", p.plan)
            .arg(Some(&p.id));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Finish a running task (`git orch task done ID --json`): commits what is left in its worktree and lands it on the work branch, keeping `handoff` as the note for later tasks; a task under review is reviewed first (`review`: waiting for `task_approve`; a rejection: `failed`); returns {state: done|conflict|failed|review, detail, work}",
        output_schema = output_schema(&[Schema::TaskDone])
    )]
    async fn task_done(&self, Parameters(p): Parameters<DoneInput>) -> CallToolResult {
        let p = read!(p);
        // The note goes through a file outside the worktree, as `--handoff FILE`.
        let note = match p.handoff.as_deref().map(write_note).transpose() {
            Ok(note) => note,
            Err(e) => {
                return failure(&[], 1, &format!("error: {e:#}\n"), "");
            }
        };
        let argv = Argv::new(&["task", "done"])
            .opt("message", p.message)
            .opt("handoff", note.as_ref().map(|f| f.path().display()))
            .opt("plan", p.plan)
            .arg(Some(&p.id));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Mark a running task failed with a reason (`git orch task fail ID --json`); its worktree and branch are kept",
        output_schema = output_schema(&[Schema::Task])
    )]
    async fn task_fail(&self, Parameters(p): Parameters<FailInput>) -> CallToolResult {
        let p = read!(p);
        let argv = Argv::new(&["task", "fail"])
            .opt("reason", p.reason)
            .opt("plan", p.plan)
            .arg(Some(&p.id));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Run a failed task again in its kept worktree (`git orch task retry ID --json`)",
        output_schema = output_schema(&[Schema::TaskStart])
    )]
    async fn task_retry(&self, Parameters(p): Parameters<TaskInput>) -> CallToolResult {
        let p = read!(p);
        let argv = Argv::new(&["task", "retry"])
            .opt("plan", p.plan)
            .arg(Some(&p.id));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Return a task to pending (`git orch task reset ID --json`); its work is preserved under refs/orch/<plan>/preserved/",
        output_schema = output_schema(&[Schema::Task])
    )]
    async fn task_reset(&self, Parameters(p): Parameters<ResetInput>) -> CallToolResult {
        let p = read!(p);
        let argv = Argv::new(&["task", "reset"])
            .flag("force", p.force)
            .opt("plan", p.plan)
            .arg(Some(&p.id));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Skip a task so its phase can be checkpointed without it (`git orch task skip ID --json`); work it started is preserved under refs/orch/<plan>/preserved/",
        output_schema = output_schema(&[Schema::Task])
    )]
    async fn task_skip(&self, Parameters(p): Parameters<ResetInput>) -> CallToolResult {
        let p = read!(p);
        let argv = Argv::new(&["task", "skip"])
            .flag("force", p.force)
            .opt("plan", p.plan)
            .arg(Some(&p.id));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Reopen a landed task of the current phase to fix its work forward, e.g. after its phase's gates failed (`git orch task reopen ID --json`); it is pending again, for `task_start`",
        output_schema = output_schema(&[Schema::Task])
    )]
    async fn task_reopen(&self, Parameters(p): Parameters<TaskInput>) -> CallToolResult {
        let p = read!(p);
        let argv = Argv::new(&["task", "reopen"])
            .opt("plan", p.plan)
            .arg(Some(&p.id));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Approve a task waiting in review, so it lands (`git orch task approve ID --json`)",
        output_schema = output_schema(&[Schema::TaskDone])
    )]
    async fn task_approve(&self, Parameters(p): Parameters<TaskInput>) -> CallToolResult {
        let p = read!(p);
        let argv = Argv::new(&["task", "approve"])
            .opt("plan", p.plan)
            .arg(Some(&p.id));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Reject a task waiting in review, with comments for its agent (`git orch task reject ID -m COMMENTS --json`)",
        output_schema = output_schema(&[Schema::Task])
    )]
    async fn task_reject(&self, Parameters(p): Parameters<RejectInput>) -> CallToolResult {
        let p = read!(p);
        let argv = Argv::new(&["task", "reject"])
            .opt("message", p.comments)
            .opt("plan", p.plan)
            .arg(Some(&p.id));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Run a phase's gates on the work branch head and tag the checkpoint (`git orch checkpoint --json`); failed gates are a tool error whose `result` lists them",
        output_schema = output_schema(&[Schema::Checkpoint])
    )]
    async fn checkpoint(&self, Parameters(p): Parameters<CheckpointInput>) -> CallToolResult {
        let p = read!(p);
        let argv = Argv::new(&["checkpoint"])
            .opt("phase", p.phase)
            .flag("no-cache", p.no_cache)
            .arg(p.plan.as_deref());
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Reset the work branch to a checkpoint, keeping what it discards under refs/orch/<plan>/preserved/ (`git orch rollback --json`); `undo` restores the state from before the latest rollback",
        annotations(destructive_hint = true),
        output_schema = output_schema(&[Schema::Rollback, Schema::RollbackUndo])
    )]
    async fn rollback(&self, Parameters(p): Parameters<RollbackInput>) -> CallToolResult {
        let p = read!(p);
        let argv = Argv::new(&["rollback"])
            .opt("to", p.to)
            .flag("undo", p.undo)
            .arg(p.plan.as_deref());
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "What ran, when, for how long, with what result (`git orch report --format json`)",
        annotations(read_only_hint = true),
        output_schema = output_schema(&[Schema::Report])
    )]
    async fn report(&self, Parameters(p): Parameters<PlanInput>) -> CallToolResult {
        let p = read!(p);
        let mut argv = Argv::new(&["report"]);
        argv.words.pop(); // `report` takes `--format json`, not `--json`
        let argv = argv.opt("format", Some("json")).arg(p.plan.as_deref());
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "The plan's event history, newest first (`git orch log --json`)",
        annotations(read_only_hint = true),
        output_schema = output_schema(&[Schema::Log])
    )]
    async fn log(&self, Parameters(p): Parameters<LogInput>) -> CallToolResult {
        let p = read!(p);
        let argv = Argv::new(&["log"])
            .opt("max-count", p.max)
            .arg(p.plan.as_deref());
        self.call(p.repo.as_deref(), argv).await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Orch {
    fn get_info(&self) -> ServerInfo {
        ServerInfo::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(
                Implementation::new("git-orch", env!("CARGO_PKG_VERSION")).with_title("git-orch"),
            )
            .with_instructions(INSTRUCTIONS)
    }
}

/// The handoff note in a temporary file of its own (removed when dropped).
fn write_note(text: &str) -> Result<tempfile::NamedTempFile> {
    use std::io::Write;
    let mut file = tempfile::Builder::new()
        .prefix("git-orch-handoff-")
        .suffix(".md")
        .tempfile()
        .context("cannot write the handoff note to a temporary file")?;
    file.write_all(text.as_bytes())
        .context("cannot write the handoff note to a temporary file")?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_schema_is_an_object_schema_of_the_documents_and_mcp_error() {
        let schema = output_schema(&[Schema::Log]);
        assert_eq!(schema["type"], "object");
        let alternatives = schema["anyOf"].as_array().expect("anyOf");
        let names: Vec<&Value> = alternatives
            .iter()
            .map(|a| &a["properties"]["schema"]["const"])
            .collect();
        assert_eq!(names, [&json!("log"), &json!("mcp-error")]);
        for alternative in alternatives {
            for key in ["$schema", "$id", "$defs"] {
                assert!(alternative.get(key).is_none(), "{key} in {alternative:#}");
            }
        }
        // log.json's `#/$defs/event` resolves from the top.
        assert!(schema["$defs"]["event"].is_object(), "{schema:#?}");
    }

    #[test]
    fn a_failure_without_an_error_line_names_the_state_it_printed() {
        let printed = r#"{"schema":"task-done","task":"a","state":"conflict"}"#;
        let result = failure(&["task".into()], 1, "", printed);
        let doc = result.structured_content.expect("structured");
        assert_eq!(
            doc["error"],
            "git orch exited with code 1: task a ended in state `conflict`"
        );
        assert_eq!(doc["result"]["state"], "conflict");
    }
}
