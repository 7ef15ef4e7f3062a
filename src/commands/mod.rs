//! One module per subcommand: open the repository, call the engine, render
//! the result for a person or, with `--json`, for a script.

pub mod abandon;
pub mod agents;
pub mod amend;
pub mod check;
pub mod checkpoint;
pub mod completions;
pub mod demo;
pub mod finish;
pub mod gate;
pub mod graph;
pub mod hook;
pub mod import;
pub mod init;
pub mod list;
pub mod log;
pub mod man;
pub mod mcp;
pub mod report;
pub mod rollback;
pub mod run;
pub mod schema;
pub mod start;
pub mod status;
pub mod sync;
pub mod synth;
pub mod task;
pub mod trust;
pub mod watch;

use anyhow::Result;

use crate::git::Repo;
use crate::state::{reconcile, store, Snapshot};
use crate::ui;

pub fn open_repo() -> Result<Repo> {
    let cwd = std::env::current_dir()?;
    Repo::discover(&cwd)
}

/// Opens the repository, picks the plan, repairs derived refs from the
/// state branch if an interruption left them behind, and loads it.
pub fn open_plan(named: Option<&str>) -> Result<(Repo, Snapshot)> {
    open(named, false)
}

/// [`open_plan`] for a command that runs the plan's commands: refused,
/// before any repair, unless they are trusted here (see `crate::trust`).
pub fn open_plan_to_run(named: Option<&str>) -> Result<(Repo, Snapshot)> {
    open(named, true)
}

fn open(named: Option<&str>, to_run: bool) -> Result<(Repo, Snapshot)> {
    let repo = open_repo()?;
    if let Some(name) = named {
        crate::plan::validate_id("plan", name)
            .map_err(|e| crate::error::refuse(format!("bad plan name `{name}`: {e}")))?;
    }
    // Inside a task's worktree the branch names the plan.
    let from_worktree = named.is_none().then(|| plan_of_worktree(&repo)).flatten();
    let plan = store::resolve_plan(&repo, named.or(from_worktree.as_deref()))?;
    let mut snap = store::load(&repo, &plan)?;
    if to_run {
        crate::trust::require(&repo, &snap)?;
    }
    // A commit made by hand on the work branch that fast-forwards it is a
    // landing of its own; anything else there is repaired below.
    if adopt_and_say(&repo, &plan)? {
        snap = store::load(&repo, &plan)?;
    }
    for note in reconcile::reconcile(&repo, &snap)? {
        ui::note(&format!("{} {note}", ui::yellow("repair:")));
    }
    crate::engine::workspace::repair_cut_moves(&repo, &plan);
    crate::engine::workspace::ensure_excluded(&repo);
    let moved = crate::engine::workspace::migrate(&repo, &plan, &snap);
    if moved > 0 {
        ui::note(&format!(
            "moved {moved} idle worktree(s) of plan {plan} to {}",
            crate::engine::workspace::worktrees_root(&repo)
                .join(&plan)
                .display()
        ));
    }
    Ok((repo, snap))
}

/// Adopts a commit made by hand that fast-forwards the plan's work branch
/// (`engine::adopt`) and says so; `true` when one was.
pub fn adopt_and_say(repo: &Repo, plan: &str) -> Result<bool> {
    let Some(adopted) = crate::engine::adopt::adopt_hand_commits(repo, plan)? else {
        return Ok(false);
    };
    ui::note(&format!(
        "{} {} (made by hand on {}) is a landing of its own: {} file(s) changed",
        ui::green("adopted:"),
        crate::git::short(adopted.commit),
        crate::state::names::display(&crate::state::names::work(plan)),
        adopted.changed.len()
    ));
    Ok(true)
}

/// The plan of the task whose worktree the current directory is in.
fn plan_of_worktree(repo: &Repo) -> Option<String> {
    task_of_worktree(repo).map(|(plan, _)| plan)
}

/// The plan and task whose worktree the current directory is in: its HEAD
/// is on `orch/<plan>/tasks/<task>` of a plan that exists.
pub fn task_of_worktree(repo: &Repo) -> Option<(String, String)> {
    let head = repo.git.head().ok()?;
    let rest = head.name()?.strip_prefix("refs/heads/orch/")?;
    let (plan, task) = rest.split_once("/tasks/")?;
    crate::plan::validate_id("plan", plan).ok()?;
    crate::plan::validate_id("task", task).ok()?;
    let state = crate::state::names::state(plan);
    repo.ref_target(&state)
        .ok()?
        .map(|_| (plan.to_string(), task.to_string()))
}

/// The task a command acts on: the ID given, else (inside a task's
/// worktree) that worktree's task, with its plan unless `--plan` names
/// another; `command` is how the refusal names the command.
pub fn task_or_here(
    id: Option<&str>,
    plan: Option<&str>,
    command: &str,
) -> Result<(String, Option<String>)> {
    if let Some(id) = id {
        return Ok((id.to_string(), plan.map(str::to_string)));
    }
    let here = task_of_worktree(&open_repo()?);
    match (here, plan) {
        (Some((p, task)), None) => Ok((task, Some(p))),
        (Some((p, task)), Some(named)) if p == named => Ok((task, Some(p))),
        (Some((p, task)), Some(named)) => Err(crate::error::refuse_with_hint(
            format!("this is the worktree of task `{task}` of plan `{p}`, not of plan `{named}`"),
            format!("name the task: `git orch {command} ID --plan {named}`"),
        )),
        (None, _) => Err(crate::error::refuse_with_hint(
            format!("`{command}` needs a task id here: this is not a task's worktree"),
            format!("name it (`git orch {command} ID`), or run it inside the task's worktree"),
        )),
    }
}

/// A plan file for a command that acts on it (`start`, `plan amend`): the
/// plan and its warnings, or its first error as the refusal ("nothing was
/// `done`: file:line:col: …"), with the hint that lists them all.
pub fn load_plan_file(
    file: &std::path::Path,
    done: &str,
) -> Result<(crate::plan::Plan, Vec<crate::plan::Diagnostic>)> {
    let shown = file.display().to_string();
    crate::plan::load_file(file).map_err(|diagnostics| {
        let first = diagnostics
            .iter()
            .find(|d| d.is_error())
            .map_or(String::new(), |d| match d.line {
                Some(_) => d.render(&shown),
                None => d.message.clone(),
            });
        crate::error::refuse_with_hint(
            format!("nothing was {done}: {first}"),
            format!("see every problem with `git orch check {shown}`"),
        )
    })
}
