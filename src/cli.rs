//! The command line. Each command's doc comment is its `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Carry a multi-phase plan through a git repository: every task in its own
/// worktree, quality gates after every phase, a checkpoint tag per phase,
/// rollback to any checkpoint, and the whole plan state in git itself.
#[derive(Parser, Debug)]
#[command(
    name = "git-orch",
    bin_name = "git orch",
    version,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate a plan file; problems are printed as file:line:col
    Check(CheckArgs),
    /// Validate a plan and start it: work and state branches, `start` tag
    Start(StartArgs),
    /// Phases, tasks, the current phase, checkpoints, time against estimates
    Status(StatusArgs),
    /// Run ready tasks in worktrees, land them, checkpoint finished phases
    Run(RunArgs),
    /// Manual mode: start, finish, fail, reset or skip one task by hand
    #[command(subcommand)]
    Task(TaskCommand),
    /// Run a phase's gates on the work branch head and tag the checkpoint
    Checkpoint(CheckpointArgs),
    /// Reset the work branch to a checkpoint, keeping what it discards
    Rollback(RollbackArgs),
    /// After a crash or kill: recover abandoned tasks, then continue as `run`
    Resume(RunArgs),
    /// The event history of a plan, from its state branch
    Log(LogArgs),
    /// Fetch and push a plan's refs through a git remote, under leases
    Sync(SyncArgs),
    /// Run the plan's gates on a commit (also the pre-push hook's entry point)
    Gate(GateArgs),
    /// Install, remove or inspect the pre-push gate hook
    #[command(subcommand)]
    Hook(HookCommand),
    /// The plans in this repository and their progress
    List(JsonArg),
    /// Remove the worktrees and task branches of a finished plan
    Finish(PlanArg),
    /// Change a started plan: `plan amend FILE` applies a new version of it
    #[command(subcommand)]
    Plan(PlanCommand),
    /// Stop an unfinished plan for good, keeping every task's work in refs
    Abandon(PlanArg),
    /// Make a throwaway repository and carry a built-in plan through it
    Demo(DemoArgs),
    /// Turn a spec-kit tasks.md or a Claudio .claudio/ plan into a git-orch plan
    Import(ImportArgs),
    /// Write a commented starter plan
    Init(InitArgs),
    /// What ran, when, for how long, with what result (md, json or html)
    Report(ReportArgs),
    /// The plan's dependency graph (mermaid or dot)
    Graph(GraphArgs),
    /// The JSON Schema of a `--json` output; without NAME, the names
    Schema(SchemaArgs),
    /// Serve the plan's commands as MCP tools over stdio, for agents
    Mcp(McpArgs),
    /// Shell completions for bash, zsh or fish
    Completions(CompletionsArgs),
    /// Install or print the man pages (so `git orch --help` works)
    Man(ManArgs),
    /// A live full-screen view of a plan that follows its state branch
    Watch(WatchArgs),
    /// Show every command a plan can run and approve them on this machine
    Trust(TrustArgs),
    /// For benchmarks: land the next N ready tasks with made-up commits
    #[command(hide = true)]
    SynthLand(SynthArgs),
    /// The agent profiles of a plan: kind, CLI found and its version, argv
    Agents(AgentsArgs),
    /// Claude Code's PreToolUse hook: refuses writes outside a task's files
    #[command(hide = true)]
    Guard(GuardArgs),
}

#[derive(Args, Debug)]
pub struct AgentsArgs {
    /// The plan (a started plan's name, or a plan file; may be left out
    /// when exactly one plan is active)
    pub plan: Option<String>,
    /// One JSON document (schema `agents`)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct GuardArgs {
    /// The task's worktree: writes go nowhere else
    #[arg(long, value_name = "DIR")]
    pub worktree: PathBuf,
    /// One of the task's `files` globs (repeated); none: anywhere in the worktree
    #[arg(long = "file", value_name = "GLOB")]
    pub files: Vec<String>,
    /// Allow the Bash tool
    #[arg(long)]
    pub shell: bool,
    /// A review: refuse every write and shell command
    #[arg(long)]
    pub read_only: bool,
}

#[derive(Args, Debug)]
pub struct SynthArgs {
    /// The plan (may be left out when exactly one plan is active)
    pub plan: Option<String>,
    /// How many tasks to land
    #[arg(short = 'n', long = "count", default_value_t = 1)]
    pub count: usize,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A spec-kit tasks.md (or its feature directory), or a Claudio project (.claudio/ or its parent)
    pub source: PathBuf,
    /// Where to write the plan (.toml or .yaml); default: stdout as TOML
    #[arg(short = 'o', long = "output", value_name = "PLAN_FILE")]
    pub output: Option<PathBuf>,
    /// The plan's name (default: derived from the source)
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// The plan's name (default: the repository's directory name)
    pub name: Option<String>,
    /// Where to write it (default: <name>.toml)
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Overwrite an existing file
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The plan (may be left out when exactly one plan is active)
    pub plan: Option<String>,
    /// md, json or html
    #[arg(long, default_value = "md", value_parser = ["md", "json", "html"])]
    pub format: String,
    /// Write to this file instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct GraphArgs {
    /// The plan (may be left out when exactly one plan is active)
    pub plan: Option<String>,
    /// mermaid or dot
    #[arg(long, default_value = "mermaid", value_parser = ["mermaid", "dot"])]
    pub format: String,
    /// Read the plan from a file instead of a started plan
    #[arg(long, value_name = "PLAN_FILE")]
    pub file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// The schema, as a document's `schema` field names it (`status`, `run`, …)
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct McpArgs {
    /// Run the tools in DIR (default: the current directory); a tool's `repo` argument overrides it
    #[arg(short = 'C', long = "repo", value_name = "DIR")]
    pub repo: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// bash, zsh or fish
    #[arg(value_parser = ["bash", "zsh", "fish"])]
    pub shell: String,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write the pages into DIR/man1 (default: beside the binary, <prefix>/share/man, which man finds from PATH)
    #[arg(long, value_name = "DIR")]
    pub install: Option<Option<PathBuf>>,
}

#[derive(Args, Debug)]
pub struct JsonArg {
    /// Print machine-readable JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct PlanArg {
    /// The plan (may be left out when exactly one plan is active)
    pub plan: Option<String>,
    /// Print machine-readable JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum PlanCommand {
    /// Validate a new version of a started plan and apply it: new tasks and
    /// phases, changed pending tasks, timeouts, scopes, gates. Changes to
    /// what has started or landed are refused, each named, and nothing changes
    Amend(PlanAmendArgs),
}

#[derive(Args, Debug)]
pub struct PlanAmendArgs {
    /// The new version of the plan file (.toml, .yaml or .yml)
    pub file: PathBuf,
    /// The plan (default: the plan the file names)
    pub plan: Option<String>,
    /// Show what would change, and what would be refused; change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The plan file (.toml, .yaml or .yml)
    pub file: PathBuf,
    /// Print the problems as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// The plan file (.toml, .yaml or .yml)
    pub file: PathBuf,
    /// Revision to build on (default: the plan's `base`, else HEAD)
    #[arg(long, value_name = "REV")]
    pub base: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The plan; left out, every active plan is shown, one after the other
    /// (`--json` needs it when several are active)
    pub plan: Option<String>,
    /// One JSON object: plan, work, phase, phases, tasks (see the README)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The plan (may be left out when exactly one plan is active)
    pub plan: Option<String>,
    /// Run only this phase (every earlier phase must be checkpointed)
    #[arg(long, value_name = "ID")]
    pub phase: Option<String>,
    /// Run only this task (its dependencies must be done)
    #[arg(long, value_name = "ID")]
    pub task: Option<String>,
    /// Tasks at once (default: the plan's `parallel`, else orch.parallel, else the CPU count)
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    pub jobs: Option<usize>,
    /// Run the current phase's failed tasks again first, each in the
    /// worktree it failed in, with why it failed in its brief
    #[arg(long)]
    pub retry_failed: bool,
    /// Print a JSON summary at the end
    #[arg(long)]
    pub json: bool,
    /// Stream every line gates print (on a terminal a failing gate shows its last lines)
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Share the plan with runners on other machines through this git
    /// remote (default: orch.remote): claims and landings are pushed under leases
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// How long a remote claim holds unless renewed, e.g. 60 or 2m (default: orch.lease, else 60 s)
    #[arg(long, value_name = "SECONDS")]
    pub lease: Option<String>,
    /// Failed tasks to run again in place (`task retry`).
    #[arg(skip)]
    pub retry: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// The plan (may be left out when exactly one plan is active)
    pub plan: Option<String>,
    /// The git remote (default: orch.remote, else origin)
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// Print machine-readable JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum TaskCommand {
    /// Make the task's worktree and print its path alone on stdout
    /// (nothing when refused: `wt=$(git orch task start ID) && cd "$wt"`)
    Start(TaskArgs),
    /// Commit the worktree's changes and land the task on the work branch, after
    /// its review if it has one (without an ID, inside a task's worktree: that task)
    Done(TaskDoneArgs),
    /// Show the task's change against its base: the diff of what would land
    ///
    /// `git diff BASE HEAD` of the task's branch against the commit its
    /// attempt started from: what landing it merges (a done task's: what
    /// it landed). Uncommitted changes in its worktree are not part of it
    /// (`task done` commits them first); they are named on stderr.
    Diff(TaskDiffArgs),
    /// Show a task: its state, its attempts (outcome, tokens, cost, session,
    /// refused calls), and with --agent the exact argv and environment its
    /// agent is run with
    Show(TaskShowArgs),
    /// Mark a running task failed (its worktree and branch are kept)
    Fail(TaskFailArgs),
    /// Return a task to pending; its work is kept under refs/orch/<plan>/preserved/
    Reset(TaskResetArgs),
    /// Skip a task (its phase can be checkpointed without it)
    Skip(TaskResetArgs),
    /// Reopen a landed task of the current phase to fix its work forward
    Reopen(TaskArgs),
    /// Run a failed task again in the worktree it failed in, its work so far
    /// kept and why it failed in its brief
    Retry(TaskRetryArgs),
    /// The task to start now (its id alone on stdout), or what the plan waits for
    Next(TaskNextArgs),
    /// Approve a task waiting in review: lands exactly the reviewed commit
    Approve(TaskArgs),
    /// Reject a task waiting in review: the next `run` gives it back to its
    /// agent with the comments in its brief, while it has attempts left
    Reject(TaskRejectArgs),
}

#[derive(Args, Debug)]
pub struct TaskRejectArgs {
    /// The task id
    pub id: String,
    /// The reviewer's comments, for the task's agent
    #[arg(long, short = 'm')]
    pub message: String,
    /// The plan (needed when several plans are active)
    #[arg(long)]
    pub plan: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TaskRetryArgs {
    /// The task id
    pub id: String,
    /// Take it again by hand instead of running its `run` command: prints
    /// its worktree, as `task start` does
    #[arg(long)]
    pub by_hand: bool,
    /// The plan (needed when several plans are active)
    #[arg(long)]
    pub plan: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TaskNextArgs {
    /// The plan (needed when several plans are active)
    #[arg(long)]
    pub plan: Option<String>,
    /// One JSON object: action, task, startable, waiting, running, failed,
    /// review, hint
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TaskArgs {
    /// The task id
    pub id: String,
    /// The plan (needed when several plans are active)
    #[arg(long)]
    pub plan: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TaskShowArgs {
    /// The task id
    pub id: String,
    /// The plan (needed when several plans are active)
    #[arg(long)]
    pub plan: Option<String>,
    /// The command line, environment and stdin of its agent's next attempt
    #[arg(long)]
    pub agent: bool,
    /// One JSON document (schema `task-show`)
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TaskResetArgs {
    /// The task id
    pub id: String,
    /// Take the task even from a runner that looks alive, e.g. one on
    /// another machine that is gone for good (its work is still preserved)
    #[arg(long)]
    pub force: bool,
    /// The plan (needed when several plans are active)
    #[arg(long)]
    pub plan: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TaskDiffArgs {
    /// The task id (left out inside a task's worktree: that task)
    pub id: Option<String>,
    /// A diffstat instead of the patch (`git diff --stat`)
    #[arg(long)]
    pub stat: bool,
    /// The plan (needed when several plans are active)
    #[arg(long)]
    pub plan: Option<String>,
}

#[derive(Args, Debug)]
pub struct TaskDoneArgs {
    /// The task id (left out inside a task's worktree: that task)
    pub id: Option<String>,
    /// Commit message for changes left uncommitted
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// A file whose text becomes the task's handoff note
    #[arg(long, value_name = "FILE")]
    pub handoff: Option<PathBuf>,
    #[arg(long)]
    pub plan: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TaskFailArgs {
    pub id: String,
    /// Why it failed (kept in the state)
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long)]
    pub plan: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CheckpointArgs {
    /// The plan (may be left out when exactly one plan is active)
    pub plan: Option<String>,
    /// The phase (default: the current one)
    #[arg(long, value_name = "ID")]
    pub phase: Option<String>,
    /// Run every gate even if it passed on this tree before
    #[arg(long)]
    pub no_cache: bool,
    /// Gates at once
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 1)]
    pub jobs: usize,
    #[arg(long)]
    pub json: bool,
    /// Stream every line gates print (on a terminal a failing gate shows its last lines)
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// The plan (may be left out when exactly one plan is active)
    pub plan: Option<String>,
    /// A checkpointed phase, or `start` (default: the latest checkpoint)
    #[arg(long, value_name = "PHASE|start", conflicts_with = "undo")]
    pub to: Option<String>,
    /// Restore the state from before the latest rollback
    #[arg(long)]
    pub undo: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LogArgs {
    /// The plan; a single name that is not a plan is a TASK or GATE of the active plan
    pub plan: Option<String>,
    /// Print this stored log instead of the history: a TASK's latest attempt,
    /// PHASE:GATE, a GATE of the current phase (or of the one phase that ran
    /// it), or a gate run's log by the path `git orch gate` prints
    /// (logs/gates/COMMIT/GATE.log)
    #[arg(value_name = "TASK|PHASE:GATE|GATE|PATH")]
    pub name: Option<String>,
    /// With a TASK: the log of this attempt (1 is the first)
    #[arg(long, value_name = "N")]
    pub attempt: Option<u32>,
    /// At most this many events, newest first
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    pub max: Option<usize>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct GateArgs {
    /// The plan whose gates to run
    pub plan: Option<String>,
    /// Add this phase's own gates
    #[arg(long, value_name = "ID")]
    pub phase: Option<String>,
    /// The commit to check (default: HEAD)
    #[arg(long, value_name = "REV")]
    pub commit: Option<String>,
    /// Run every gate even if it passed on this tree before
    #[arg(long)]
    pub no_cache: bool,
    /// Gates at once
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 1)]
    pub jobs: usize,
    /// Pre-push hook mode: REMOTE and URL as git passes them; ref lines on stdin
    #[arg(long, num_args = 2, value_names = ["REMOTE", "URL"], conflicts_with_all = ["plan", "phase", "commit"])]
    pub pre_push: Option<Vec<String>>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum HookCommand {
    /// Install the pre-push hook (honours core.hooksPath; keeps an existing hook; goes behind pre-commit)
    Install {
        /// Install even where lefthook or husky would set the hook aside
        #[arg(long)]
        force: bool,
    },
    /// Remove the pre-push hook and put back the one that was there before
    Uninstall,
    /// Say what is installed and whether git would run it
    Status {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Where to make the demo repository (default: a new temporary directory)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Keep the repository afterwards and print its path
    #[arg(long)]
    pub keep: bool,
    /// Wait for Enter before each step (when stdin is a terminal), time to
    /// follow along, e.g. with `git orch watch` in a second terminal
    #[arg(long)]
    pub step: bool,
    /// Pause this many seconds before each step (0 to 60; default 0)
    #[arg(long, value_name = "SECONDS", value_parser = parse_pace)]
    pub pace: Option<f64>,
}

/// `--pace SECONDS`: a number of seconds from 0 to 60.
fn parse_pace(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if (0.0..=60.0).contains(&s) => Ok(s),
        _ => Err(format!("`{text}` is not a number of seconds from 0 to 60")),
    }
}

/// Follows the plan's state branch (no daemon: it re-reads the state when
/// the branch moves). Keys: ↑/↓ or k/j move, Enter or l opens the selected
/// log, r retries a failed task, o reopens a done one, q or Ctrl-C quits.
/// Not on a terminal (a pipe, TERM=dumb) or with --plain it prints a plain
/// listing each time the state changes, until every phase is checkpointed.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The plan (may be left out when exactly one plan is active)
    pub plan: Option<String>,
    /// A plain listing instead of the full-screen view
    #[arg(long)]
    pub plain: bool,
    /// Print the plain listing once and exit
    #[arg(long)]
    pub once: bool,
    /// How often to look at the state branch, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub interval: u64,
}

/// A plan whose state came from elsewhere (fetched, another clone), or whose
/// commands changed since they were approved here, runs none of them until
/// approved: this shows every command it can run (task `run`s, gates,
/// notify hooks) and where each comes from, then asks. `git orch start FILE`
/// approves what it starts. Approvals live outside the repository, in
/// $XDG_DATA_HOME/git-orch/trust (default ~/.local/share/git-orch/trust).
#[derive(Args, Debug)]
pub struct TrustArgs {
    /// The plan (may be left out when exactly one plan is active)
    pub plan: Option<String>,
    /// Approve without asking (for scripts; without a terminal to ask on, it is required)
    #[arg(long, conflicts_with_all = ["revoke", "list"])]
    pub yes: bool,
    /// Remove the plan's approval here: it runs nothing until trusted again
    #[arg(long, conflicts_with = "list")]
    pub revoke: bool,
    /// This repository's approvals, one plan a line
    #[arg(long, conflicts_with = "plan")]
    pub list: bool,
    /// Print machine-readable JSON on stdout (the commands, the hash, whether trusted)
    #[arg(long)]
    pub json: bool,
}
