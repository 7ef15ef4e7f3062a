use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cli::InitArgs;
use crate::commands::import::check_text;
use crate::error::{refuse, refuse_with_hint};
use crate::plan::import::emit::{toml_str, Format};
use crate::plan::import::slug;
use crate::plan::validate_id;
use crate::ui;

/// `git orch init [NAME] [-o FILE] [--force]`: a commented starter plan with
/// one example task per kind of runner (a script, Claude Code, Codex, aider,
/// a person), checked before it is written.
pub fn run(args: InitArgs) -> Result<u8> {
    let cwd = std::env::current_dir()?;
    let root = repo_root(&cwd);
    let name = match &args.name {
        Some(n) => {
            validate_id("plan", n).map_err(|e| {
                refuse_with_hint(
                    format!("bad plan name: {e}"),
                    "plan names become branch names: try something like `checkout-redesign`",
                )
            })?;
            n.clone()
        }
        None => root
            .as_deref()
            .unwrap_or(&cwd)
            .file_name()
            .and_then(|n| slug(&n.to_string_lossy()))
            .unwrap_or_else(|| "plan".to_string()),
    };
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{name}.toml")));
    let format = match output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("toml") => Format::Toml,
        Some("yaml" | "yml") => Format::Yaml,
        _ => {
            return Err(refuse_with_hint(
                format!(
                    "cannot tell which format to write `{}` in",
                    output.display()
                ),
                "end the file's name in .toml, .yaml or .yml",
            ))
        }
    };
    if output.exists() && !args.force {
        return Err(refuse_with_hint(
            format!("`{}` already exists", output.display()),
            "pass --force to overwrite it, or choose another file with -o",
        ));
    }
    if output.is_dir() {
        return Err(refuse(format!(
            "`{}` is a directory; give a file name with -o",
            output.display()
        )));
    }
    let gate = detect_gate(root.as_deref().unwrap_or(&cwd));
    let text = starter(&name, &output.display().to_string(), format, &gate);
    check_text(&text, format)?;
    std::fs::write(&output, &text)
        .map_err(|e| refuse(format!("cannot write `{}`: {e}", output.display())))?;
    let shown = output.display();
    ui::note(&format!(
        "wrote {shown}: a starter plan `{name}` with example tasks for a script, Claude Code, Codex, aider and a person"
    ));
    ui::note(&format!(
        "edit it, then `git orch check {shown}` and `git orch start {shown}`"
    ));
    Ok(0)
}

fn repo_root(dir: &Path) -> Option<PathBuf> {
    let repo = git2::Repository::discover(dir).ok()?;
    repo.workdir().map(Path::to_path_buf)
}

/// The test gate a project's files suggest: (name, command, comment).
pub struct StarterGate {
    name: &'static str,
    run: &'static str,
    why: &'static str,
}

fn detect_gate(root: &Path) -> StarterGate {
    let has = |f: &str| root.join(f).exists();
    let found = |name, run, file: &'static str| StarterGate {
        name,
        run,
        why: file,
    };
    if has("Cargo.toml") {
        found("tests", "cargo test --quiet", "Cargo.toml")
    } else if has("package.json") {
        found("tests", "npm test", "package.json")
    } else if has("go.mod") {
        found("tests", "go test ./...", "go.mod")
    } else if has("pyproject.toml") || has("setup.py") || has("pytest.ini") {
        found("tests", "pytest -q", "a Python project")
    } else if has("Makefile") {
        found("tests", "make test", "Makefile")
    } else {
        StarterGate {
            name: "no-conflict-markers",
            run: r"! grep -rIlE --exclude-dir=.git '^(<<<<<<<|>>>>>>>)( |$)' .",
            why: "",
        }
    }
}

const SCRIPT: &str = r##"mkdir -p docs && echo "# Notes for $ORCH_PLAN" > docs/NOTES.md"##;

fn yaml_str(s: &str) -> String {
    serde_yaml::to_string(s)
        .map(|y| y.trim_end().to_string())
        .unwrap_or_else(|_| format!("{s:?}"))
}

/// The starter plan's text.
pub fn starter(name: &str, file: &str, format: Format, gate: &StarterGate) -> String {
    let gate_note = if gate.why.is_empty() {
        "# No test command found in this repository: this gate only checks that no\n\
         # merge-conflict markers were committed. Replace it with your tests."
            .to_string()
    } else {
        format!(
            "# Found {}: replace or extend this with your real checks (linters, …).",
            gate.why
        )
    };
    let q = |s: &str| match format {
        Format::Toml => toml_str(s),
        Format::Yaml => yaml_str(s),
    };
    let vars = [
        ("{name}", q(name)),
        ("{file}", file.to_string()),
        ("{gate_name}", q(gate.name)),
        ("{gate_run}", q(gate.run)),
        ("{gate_note}", gate_note),
        ("{script}", q(SCRIPT)),
    ];
    let mut text = match format {
        Format::Toml => format!("{HEADER}{TOML_TEMPLATE}"),
        Format::Yaml => format!("{HEADER}{YAML_TEMPLATE}"),
    };
    for (k, v) in vars {
        text = text.replace(k, &v);
    }
    text
}

const HEADER: &str = r#"# A git-orch plan, written by `git orch init`. Edit it to describe your work.
#
# A plan is a list of phases; a phase is a set of tasks. Each task runs in its
# own git worktree on its own branch, then lands on the plan's work branch
# (orch/<plan>/work). When every task of a phase is done, the phase's gates run
# on the result and, if they pass, it is tagged as a checkpoint you can roll
# back to. Everything git-orch knows lives in git, on orch/<plan>/state.
#
# Check it with `git orch check {file}` (every problem, with line:col),
# start it with `git orch start {file}` (work and state branches, start tag);
# then `git orch run` runs the ready tasks and checkpoints each finished phase,
# and `git orch status` shows where the plan is.
#
# Durations: "90s", "45m", "1h30m". Ids (plan, phases, tasks, gates): letters,
# digits, ".", "_" and "-", starting with a letter or digit.

"#;

const TOML_TEMPLATE: &str = r#"name  = {name}   # the plan's id, used in branch and tag names
title = "What this plan delivers"
# base = "main"  # the revision to build on (default: HEAD at `git orch start`)

[defaults]                 # for every task that does not say otherwise
timeout  = "30m"           # a task still running after this is stopped and fails
parallel = 2               # tasks at once at most (`git orch run -j N` overrides)
merge    = "merge"         # how a finished task lands: merge | squash | rebase
checkout = "full"          # a task's worktree holds: full | sparse (only files + reads)
# run    = "scripts/agent.sh"   # the command of tasks that have no `run`

# Gates must pass before a phase becomes a checkpoint, and before the work
# branch is pushed once `git orch hook install` is done. They run in a clean
# checkout of the commit, never in your working tree; a gate that passed on
# the same tree with the same command is not run again.
{gate_note}
[[gates]]
name    = {gate_name}
run     = {gate_run}
timeout = "15m"

# Agents: who runs tasks. A task names one (`agent = "claude"`) or a list
# (`agent = ["claude", "codex"]`: the first one with room under its
# `parallel` cap, else the next). A `kind` is a real agent CLI whose whole
# command line git-orch builds: the brief on stdin, its JSON output read for
# tokens, cost, session and errors, edits only inside the task's worktree
# (and its `files`), usage limits parked until their reset, a retry
# continuing the same session. `git orch agents` shows what each runs and
# whether its CLI is installed; `git orch task show ID --agent` the exact
# argv for a task. `command`, `model` and `args` (appended) adjust it; `env`
# adds variables (ANTHROPIC_BASE_URL, OPENAI_API_KEY, …). Any other tool:
# `run = "..."` (kind "command"), reporting through ORCH_USAGE_FILE.
# `retries` (here, on a task or in [defaults]) runs a failed attempt again
# after `retry_backoff`, doubled each time, when the agent's failure is
# transient (rate limit, overloaded, server error).
[agents.claude]
kind     = "claude-code"   # Claude Code (`claude -p`)
role     = "code writer"
parallel = 2               # at most 2 Claude tasks at once (API quota)
timeout  = "30m"
retries  = 2
retry_backoff = "30s"
# model = "sonnet"
# shell = true             # allow its Bash tool (its writes are still checked)

[agents.codex]
kind     = "codex"         # Codex (`codex exec`), in its workspace-write sandbox
role     = "code writer"
parallel = 2
retries  = 2

[agents.aider]
kind        = "aider"      # aider, given the task's files to edit
role        = "test writer"
description = "writes and fixes tests"
parallel    = 1
# model     = "openai/gpt-4.1"
env         = { AIDER_DARK_MODE = "false" }   # extra environment for its tasks

[[phases]]
id    = "setup"
title = "Set the project up"

  # A plain script. `run` is any shell command (run with `sh -c` in the task's
  # worktree). Exit 0 means done: what it changed is committed and landed.
  # It gets ORCH_PLAN, ORCH_PHASE, ORCH_TASK, ORCH_WORKTREE, ORCH_REPO,
  # ORCH_BASE, ORCH_TASK_FILE and ORCH_HANDOFF_FILE in its environment.
  [[phases.tasks]]
  id       = "notes"
  title    = "Start the project notes"
  run      = {script}
  files    = ["docs/NOTES.md"]   # write scope: changing any other path fails the task
  estimate = "1m"                # compared with the real time in `git orch status`

[[phases]]
id    = "build"
title = "Build it with coding agents"

  # ORCH_TASK_FILE is a markdown file with the task's title, prompt, declared
  # files and the handoff notes of the tasks it depends on: hand it to an agent.
  # A task may leave a note for the tasks after it in ORCH_HANDOFF_FILE.

  # Run by Claude Code, or by Codex when 2 Claude tasks already run.
  [[phases.tasks]]
  id       = "api"
  title    = "Add the API endpoint"
  prompt   = """
Add a GET /health endpoint to the HTTP server in src/api/ that returns
{"status":"ok"} with status 200, and a unit test for it next to the handler.
Keep the change inside src/api/.
"""
  agent    = ["claude", "codex"]
  files    = ["src/api/**"]
  estimate = "20m"

  [[phases.tasks]]
  id       = "ui"
  title    = "Show the health status in the UI"
  prompt   = """
Show the server's health in the footer of the web UI in src/ui/: call
GET /health once a minute and show a green or red dot.
"""
  agent    = "codex"
  files    = ["src/ui/**"]
  estimate = "20m"
  timeout  = "45m"               # this task may take longer than defaults.timeout

  # aider is given the task's files to edit (those of `files` that exist,
  # and each plain path); its chat history is kept outside the worktree.
  [[phases.tasks]]
  id         = "ui-tests"
  title      = "Test the footer"
  prompt     = "Add tests for the health dot in the footer, for both states."
  agent      = "aider"
  files      = ["src/ui/**", "tests/ui/**"]
  depends_on = ["ui"]            # ready once `ui` is done (same phase or earlier)

  # No `run` (and no defaults.run): a task for a person. `git orch task start
  # review` prints its worktree; work there; `git orch task done review` lands it.
  [[phases.tasks]]
  id         = "review"
  title      = "Review the endpoint and the footer together"
  depends_on = ["api", "ui-tests"]
  files      = ["src/**", "tests/**"]

  # Gates for this phase's checkpoint only, after the plan-wide ones.
  # [[phases.gates]]
  # name = "lint"
  # run  = "npm run lint"
"#;

const YAML_TEMPLATE: &str = r#"name: {name}   # the plan's id, used in branch and tag names
title: What this plan delivers
# base: main   # the revision to build on (default: HEAD at `git orch start`)

defaults:                  # for every task that does not say otherwise
  timeout: 30m             # a task still running after this is stopped and fails
  parallel: 2              # tasks at once at most (`git orch run -j N` overrides)
  merge: merge             # how a finished task lands: merge | squash | rebase
  checkout: full           # a task's worktree holds: full | sparse (only files + reads)
  # run: scripts/agent.sh  # the command of tasks that have no `run`

# Gates must pass before a phase becomes a checkpoint, and before the work
# branch is pushed once `git orch hook install` is done. They run in a clean
# checkout of the commit, never in your working tree; a gate that passed on
# the same tree with the same command is not run again.
{gate_note}
gates:
  - name: {gate_name}
    run: {gate_run}
    timeout: 15m

# Agents: who runs tasks. A task names one (`agent: claude`) or a list
# (`agent: [claude, codex]`: the first one with room under its `parallel`
# cap, else the next). A `kind` is a real agent CLI whose whole command line
# git-orch builds: the brief on stdin, its JSON output read for tokens,
# cost, session and errors, edits only inside the task's worktree (and its
# `files`), usage limits parked until their reset, a retry continuing the
# same session. `git orch agents` shows what each runs and whether its CLI
# is installed; `git orch task show ID --agent` the exact argv for a task.
# `command`, `model` and `args` (appended) adjust it; `env` adds variables.
# Any other tool: `run: ...` (kind "command"), reporting through
# ORCH_USAGE_FILE. `retries` runs a failed attempt again after
# `retry_backoff`, doubled each time, when the failure is transient.
agents:
  claude:
    kind: claude-code      # Claude Code (`claude -p`)
    role: code writer
    parallel: 2            # at most 2 Claude tasks at once (API quota)
    timeout: 30m
    retries: 2
    retry_backoff: 30s
    # model: sonnet
    # shell: true          # allow its Bash tool (its writes are still checked)
  codex:
    kind: codex            # Codex (`codex exec`), in its workspace-write sandbox
    role: code writer
    parallel: 2
    retries: 2
  aider:
    kind: aider            # aider, given the task's files to edit
    role: test writer
    description: writes and fixes tests
    parallel: 1
    env: { AIDER_DARK_MODE: "false" }   # extra environment for its tasks

phases:
  - id: setup
    title: Set the project up
    tasks:
      # A plain script. `run` is any shell command (run with `sh -c` in the
      # task's worktree). Exit 0 means done: what it changed is committed and
      # landed. It gets ORCH_PLAN, ORCH_PHASE, ORCH_TASK, ORCH_WORKTREE,
      # ORCH_REPO, ORCH_BASE, ORCH_TASK_FILE and ORCH_HANDOFF_FILE.
      - id: notes
        title: Start the project notes
        run: {script}
        files: [docs/NOTES.md]   # write scope: changing any other path fails the task
        estimate: 1m             # compared with the real time in `git orch status`

  - id: build
    title: Build it with coding agents
    # ORCH_TASK_FILE is a markdown file with the task's title, prompt, declared
    # files and the handoff notes of the tasks it depends on: hand it to an
    # agent. A task may leave a note for later tasks in ORCH_HANDOFF_FILE.
    tasks:
      # Run by Claude Code, or by Codex when 2 Claude tasks already run.
      - id: api
        title: Add the API endpoint
        prompt: |
          Add a GET /health endpoint to the HTTP server in src/api/ that returns
          {"status":"ok"} with status 200, and a unit test for it next to the handler.
          Keep the change inside src/api/.
        agent: [claude, codex]
        files: ["src/api/**"]
        estimate: 20m

      - id: ui
        title: Show the health status in the UI
        prompt: |
          Show the server's health in the footer of the web UI in src/ui/: call
          GET /health once a minute and show a green or red dot.
        agent: codex
        files: ["src/ui/**"]
        estimate: 20m
        timeout: 45m             # this task may take longer than defaults.timeout

      # aider is given the task's files to edit (those of `files` that
      # exist, and each plain path); its chat history stays outside the
      # worktree.
      - id: ui-tests
        title: Test the footer
        prompt: Add tests for the health dot in the footer, for both states.
        agent: aider
        files: ["src/ui/**", "tests/ui/**"]
        depends_on: [ui]         # ready once `ui` is done (same phase or earlier)

      # No `run` (and no defaults.run): a task for a person. `git orch task
      # start review` prints its worktree; `git orch task done review` lands it.
      - id: review
        title: Review the endpoint and the footer together
        depends_on: [api, ui-tests]
        files: ["src/**", "tests/**"]
    # Gates for this phase's checkpoint only, after the plan-wide ones.
    # gates:
    #   - name: lint
    #     run: npm run lint
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn parses(format: Format, gate: &StarterGate) {
        let text = starter("demo", "demo.toml", format, gate);
        assert!(!text.contains('{') || !text.contains("{name}"), "{text}");
        check_text(&text, format).unwrap_or_else(|e| panic!("{e}\n{text}"));
    }

    #[test]
    fn both_templates_are_valid_plans() {
        let tmp = tempfile::tempdir().expect("tmp");
        let plain = detect_gate(tmp.path());
        assert_eq!(plain.name, "no-conflict-markers");
        parses(Format::Toml, &plain);
        parses(Format::Yaml, &plain);
        std::fs::write(tmp.path().join("Cargo.toml"), "").expect("write");
        let cargo = detect_gate(tmp.path());
        assert_eq!(cargo.run, "cargo test --quiet");
        parses(Format::Toml, &cargo);
        parses(Format::Yaml, &cargo);
    }
}
