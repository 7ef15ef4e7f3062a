//! `git orch mcp`: a Model Context Protocol server on stdin/stdout, built
//! on the official Rust SDK (`rmcp`). Each tool runs this very binary with
//! the matching command line plus `--json`, so a tool is the CLI's own code
//! path: the same JSON comes back as the tool's structured result, and what
//! the CLI refuses comes back as a tool error carrying its `error:` and
//! `hint:` lines and exit code. Tokio lives in this file only, on one thread.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{CallToolResult, Content, Implementation, ServerCapabilities, ServerInfo};
use rmcp::{tool, tool_handler, tool_router, ServerHandler, ServiceExt};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::cli::McpArgs;
use crate::error::refuse;

const INSTRUCTIONS: &str = "git-orch carries a plan of phases and tasks through a git \
repository, every task in its own worktree, quality gates and a checkpoint tag per phase. \
A manual loop: `next` names the task to start; `task_start` makes its worktree (edit files \
there); `task_done` commits and lands it on the plan's work branch, with a handoff note for \
the tasks after it (a task the plan wants reviewed waits in review for `task_approve`); \
when `next` says `checkpoint`, `checkpoint` runs the phase's gates and tags it. `status` \
shows everything. Each tool is the git-orch command of the same name run with --json in \
`repo` (default: the server's directory; never another repository) and returns that \
command's JSON; a refusal is a tool error with the command's error and hint.";

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

/// A tool error: the `error:` and `hint:` lines as text, and as structured
/// content (schema `mcp-error`) `{error, hint, exit_code, stderr, result, argv}`, where `result`
/// is the JSON the command printed before failing (a conflict, gates that
/// failed), if any.
fn failure(argv: &[String], code: i32, stderr: &str, stdout: &str) -> CallToolResult {
    let line = |prefix: &str| {
        stderr
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::to_string)
    };
    let error = line("error: ").unwrap_or_else(|| format!("git orch exited with code {code}"));
    let hint = line("hint: ");
    let printed = serde_json::from_str::<Value>(stdout).ok();
    let envelope = json!({
        "schema": crate::schema::Schema::McpError.name(),
        "schema_version": crate::schema::Schema::McpError.version(),
        "error": error,
        "hint": hint,
        "exit_code": code,
        "stderr": stderr,
        "result": printed,
        "argv": argv,
    });
    let mut text = format!("error: {error}");
    if let Some(h) = &hint {
        text.push_str(&format!("\nhint: {h}"));
    }
    text.push_str(&format!("\n(exit code {code})"));
    let json_text = envelope.to_string();
    let mut result = CallToolResult::structured_error(envelope);
    result.content = vec![Content::text(text), Content::text(json_text)];
    result
}

// ------------------------------------------------------------ tool inputs

/// Where and which plan.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PlanInput {
    /// The plan's name; may be left out when exactly one plan is active (or when `repo` is a task's worktree)
    plan: Option<String>,
    /// Directory to run in: the repository the server serves or one of its worktrees, absolute or relative to the server's directory (default: the server's directory); another repository is refused
    repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FileInput {
    /// The plan file (.toml, .yaml or .yml), relative to `repo`
    file: String,
    /// Directory to run in (default: the server's directory)
    repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StartInput {
    /// The plan file (.toml, .yaml or .yml), relative to `repo`
    file: String,
    /// Revision to build on (default: the plan's `base`, else HEAD)
    base: Option<String>,
    /// Directory to run in (default: the server's directory)
    repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TaskInput {
    /// The task id, as in the plan
    id: String,
    /// The plan's name (needed when several plans are active)
    plan: Option<String>,
    /// Directory to run in (default: the server's directory)
    repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DoneInput {
    /// The task id
    id: String,
    /// Commit message for changes left uncommitted in the worktree (default: "<id>: <title>")
    message: Option<String>,
    /// The handoff note: a short summary for the tasks after this one (what was done, what to know). Default: the worktree's handoff file, if written
    handoff: Option<String>,
    /// The plan's name (needed when several plans are active)
    plan: Option<String>,
    /// Directory to run in (default: the server's directory)
    repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct FailInput {
    /// The task id
    id: String,
    /// Why it failed (kept in the state, shown by status)
    reason: Option<String>,
    /// The plan's name (needed when several plans are active)
    plan: Option<String>,
    /// Directory to run in (default: the server's directory)
    repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ResetInput {
    /// The task id
    id: String,
    /// Take the task even from a runner that looks alive (its work is still preserved)
    force: Option<bool>,
    /// The plan's name (needed when several plans are active)
    plan: Option<String>,
    /// Directory to run in (default: the server's directory)
    repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RejectInput {
    /// The task id
    id: String,
    /// The reviewer's comments, handed back to the task's agent
    comments: Option<String>,
    /// The plan's name (needed when several plans are active)
    plan: Option<String>,
    /// Directory to run in (default: the server's directory)
    repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CheckpointInput {
    /// The plan's name; may be left out when exactly one plan is active
    plan: Option<String>,
    /// The phase (default: the current one)
    phase: Option<String>,
    /// Run every gate even if it passed on this tree before
    no_cache: Option<bool>,
    /// Directory to run in (default: the server's directory)
    repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RollbackInput {
    /// The plan's name; may be left out when exactly one plan is active
    plan: Option<String>,
    /// A checkpointed phase, or `start` (default: the latest checkpoint)
    to: Option<String>,
    /// Restore the state from before the latest rollback instead
    undo: Option<bool>,
    /// Directory to run in (default: the server's directory)
    repo: Option<String>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LogInput {
    /// The plan's name; may be left out when exactly one plan is active
    plan: Option<String>,
    /// At most this many events, newest first
    max: Option<u32>,
    /// Directory to run in (default: the server's directory)
    repo: Option<String>,
}

// ------------------------------------------------------------------ tools

#[tool_router]
impl Orch {
    #[tool(
        description = "Validate a plan file (`git orch check FILE --json`): {file, valid, diagnostics[{file, line, col, severity, message}]}; an invalid plan is a tool error whose `result` holds the diagnostics",
        annotations(read_only_hint = true)
    )]
    async fn check(&self, Parameters(p): Parameters<FileInput>) -> CallToolResult {
        let argv = Argv::new(&["check"]).arg(Some(&p.file));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Validate a plan file and start it (`git orch start FILE --json`): makes its work and state branches and the `start` tag; returns {plan, base, work, state}"
    )]
    async fn start(&self, Parameters(p): Parameters<StartInput>) -> CallToolResult {
        let argv = Argv::new(&["start"]).opt("base", p.base).arg(Some(&p.file));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "The plan's phases, tasks, current phase and checkpoints (`git orch status --json`)",
        annotations(read_only_hint = true)
    )]
    async fn status(&self, Parameters(p): Parameters<PlanInput>) -> CallToolResult {
        let argv = Argv::new(&["status"]).arg(p.plan.as_deref());
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "The task to start now, or what the plan waits for (`git orch task next --json`): {action: start|wait|checkpoint|gates_failed|stuck|finished, task, startable, waiting, running, failed, hint}",
        annotations(read_only_hint = true)
    )]
    async fn next(&self, Parameters(p): Parameters<PlanInput>) -> CallToolResult {
        let argv = Argv::new(&["task", "next"]).opt("plan", p.plan);
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Claim a ready task and make its worktree (`git orch task start ID --json`): returns {worktree, branch, task_file, handoff_file, …}; do the task's work by editing files in `worktree`"
    )]
    async fn task_start(&self, Parameters(p): Parameters<TaskInput>) -> CallToolResult {
        let argv = Argv::new(&["task", "start"])
            .opt("plan", p.plan)
            .arg(Some(&p.id));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Finish a running task (`git orch task done ID --json`): commits what is left in its worktree and lands it on the work branch, keeping `handoff` as the note for later tasks; a task under review is reviewed first (`review`: waiting for `task_approve`; a rejection: `failed`); returns {state: done|conflict|failed|review, detail, work}"
    )]
    async fn task_done(&self, Parameters(p): Parameters<DoneInput>) -> CallToolResult {
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
        description = "Mark a running task failed with a reason (`git orch task fail ID --json`); its worktree and branch are kept"
    )]
    async fn task_fail(&self, Parameters(p): Parameters<FailInput>) -> CallToolResult {
        let argv = Argv::new(&["task", "fail"])
            .opt("reason", p.reason)
            .opt("plan", p.plan)
            .arg(Some(&p.id));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Run a failed task again in its kept worktree (`git orch task retry ID --json`)"
    )]
    async fn task_retry(&self, Parameters(p): Parameters<TaskInput>) -> CallToolResult {
        let argv = Argv::new(&["task", "retry"])
            .opt("plan", p.plan)
            .arg(Some(&p.id));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Return a task to pending (`git orch task reset ID --json`); its work is preserved under refs/orch/<plan>/preserved/"
    )]
    async fn task_reset(&self, Parameters(p): Parameters<ResetInput>) -> CallToolResult {
        let argv = Argv::new(&["task", "reset"])
            .flag("force", p.force)
            .opt("plan", p.plan)
            .arg(Some(&p.id));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Approve a task waiting in review, so it lands (`git orch task approve ID --json`)"
    )]
    async fn task_approve(&self, Parameters(p): Parameters<TaskInput>) -> CallToolResult {
        let argv = Argv::new(&["task", "approve"])
            .opt("plan", p.plan)
            .arg(Some(&p.id));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Reject a task waiting in review, with comments for its agent (`git orch task reject ID -m COMMENTS --json`)"
    )]
    async fn task_reject(&self, Parameters(p): Parameters<RejectInput>) -> CallToolResult {
        let argv = Argv::new(&["task", "reject"])
            .opt("message", p.comments)
            .opt("plan", p.plan)
            .arg(Some(&p.id));
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Run a phase's gates on the work branch head and tag the checkpoint (`git orch checkpoint --json`); failed gates are a tool error whose `result` lists them"
    )]
    async fn checkpoint(&self, Parameters(p): Parameters<CheckpointInput>) -> CallToolResult {
        let argv = Argv::new(&["checkpoint"])
            .opt("phase", p.phase)
            .flag("no-cache", p.no_cache)
            .arg(p.plan.as_deref());
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "Reset the work branch to a checkpoint, keeping what it discards under refs/orch/<plan>/preserved/ (`git orch rollback --json`); `undo` restores the state from before the latest rollback",
        annotations(destructive_hint = true)
    )]
    async fn rollback(&self, Parameters(p): Parameters<RollbackInput>) -> CallToolResult {
        let argv = Argv::new(&["rollback"])
            .opt("to", p.to)
            .flag("undo", p.undo)
            .arg(p.plan.as_deref());
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "What ran, when, for how long, with what result (`git orch report --format json`)",
        annotations(read_only_hint = true)
    )]
    async fn report(&self, Parameters(p): Parameters<PlanInput>) -> CallToolResult {
        let mut argv = Argv::new(&["report"]);
        argv.words.pop(); // `report` takes `--format json`, not `--json`
        let argv = argv.opt("format", Some("json")).arg(p.plan.as_deref());
        self.call(p.repo.as_deref(), argv).await
    }

    #[tool(
        description = "The plan's event history, newest first (`git orch log --json`)",
        annotations(read_only_hint = true)
    )]
    async fn log(&self, Parameters(p): Parameters<LogInput>) -> CallToolResult {
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
