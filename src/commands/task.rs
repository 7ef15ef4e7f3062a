use anyhow::{Context, Result};
use serde_json::json;

use super::open_plan;
use crate::cli::{
    RunArgs, TaskArgs, TaskDiffArgs, TaskDoneArgs, TaskFailArgs, TaskNextArgs, TaskResetArgs,
    TaskRetryArgs,
};
use crate::engine::review::ByHand;
use crate::engine::tasks::{self, Finish, Landed};
use crate::engine::{manual, next as next_task, workspace};
use crate::error::{refuse, refuse_with_hint};
use crate::schema::Schema;
use crate::state::TaskStatus;
use crate::ui;

/// `task start ID`: the worktree path alone on stdout.
pub fn start(args: TaskArgs) -> Result<u8> {
    let (repo, snap) = open_plan(args.plan.as_deref())?;
    tasks::refuse_if_finished(&snap)?;
    crate::engine::setup::require_trusted(&repo, &snap)?;
    let plan = snap.plan_name.clone();
    let (begun, again) = tasks::start_by_hand(&repo, &plan, &args.id)?;
    crate::engine::setup::ensure_by_hand(&repo, &plan, &args.id, &begun, &mut |line| {
        ui::note(line)
    })?;
    let path = begun.worktree.display().to_string();
    if let Some(kept) = &begun.kept {
        ui::note(&format!(
            "kept what an earlier attempt left at {path} in {kept} (`git show --stat {kept}`)"
        ));
    }
    if args.json {
        ui::json_doc(
            Schema::TaskStart,
            &json!({
                "plan": plan, "task": args.id, "worktree": path, "again": again,
                "branch": format!("orch/{plan}/tasks/{}", args.id),
                "base": begun.base.to_string(),
                "task_file": workspace::task_file(&repo, &plan, &args.id).display().to_string(),
                "handoff_file": workspace::handoff_file(&repo, &plan, &args.id).display().to_string(),
            }),
        )?;
    } else {
        ui::out(&path);
        if again {
            ui::note(&format!(
                "task {} was already started by hand; its worktree is on orch/{plan}/tasks/{}",
                args.id, args.id
            ));
        } else {
            ui::note(&format!(
                "task {} started on orch/{plan}/tasks/{}",
                args.id, args.id
            ));
        }
        ui::note(&format!(
            "brief: {}",
            workspace::task_file(&repo, &plan, &args.id).display()
        ));
        ui::hint(&format!(
            "when finished: `git orch task done {} -m \"…\"`",
            args.id
        ));
    }
    Ok(0)
}

/// `task retry ID`: a failed task again in the worktree it failed in. With
/// a `run` command, a run of that one task (its output and exit code are
/// `run`'s); by hand, its worktree path alone on stdout, as `task start`.
pub fn retry(args: TaskRetryArgs) -> Result<u8> {
    let (repo, snap) = open_plan(args.plan.as_deref())?;
    tasks::refuse_if_finished(&snap)?;
    let plan = snap.plan_name.clone();
    let (_, task) = tasks::find_task(&snap, &args.id)?;
    if !args.by_hand && snap.plan.task_run(task).is_some() {
        crate::trust::require(&repo, &snap)?;
    }
    tasks::refuse_unless_retryable(&snap, &args.id, &snap.task(&args.id)?)?;
    crate::engine::setup::require_trusted(&repo, &snap)?;
    if !args.by_hand && snap.plan.task_run(task).is_some() {
        let run = RunArgs {
            plan: Some(plan),
            phase: None,
            task: Some(args.id.clone()),
            jobs: Some(1),
            retry_failed: false,
            verbose: false,
            json: args.json,
            remote: None,
            lease: None,
            retry: vec![args.id],
        };
        return super::run::run(run, false);
    }
    let claimed = tasks::claim_retry(&repo, &plan, &args.id, tasks::claim_for_this_process(true))?;
    let begun = tasks::prepare(&repo, &claimed, false)?;
    crate::engine::setup::ensure_by_hand(&repo, &plan, &args.id, &begun, &mut |line| {
        ui::note(line)
    })?;
    let path = begun.worktree.display().to_string();
    if args.json {
        ui::json_doc(
            Schema::TaskStart,
            &json!({
                "plan": plan, "task": args.id, "worktree": path, "again": true,
                "branch": format!("orch/{plan}/tasks/{}", args.id),
                "base": begun.base.to_string(),
                "task_file": workspace::task_file(&repo, &plan, &args.id).display().to_string(),
                "handoff_file": workspace::handoff_file(&repo, &plan, &args.id).display().to_string(),
            }),
        )?;
    } else {
        ui::out(&path);
        ui::note(&format!(
            "task {} is running again by hand in the worktree it failed in; brief (with why it failed): {}",
            args.id,
            workspace::task_file(&repo, &plan, &args.id).display()
        ));
        ui::hint(&format!(
            "when finished: `git orch task done {} -m \"…\"`",
            args.id
        ));
    }
    Ok(0)
}

pub fn done(args: TaskDoneArgs) -> Result<u8> {
    let (id, named) = super::task_or_here(args.id.as_deref(), args.plan.as_deref(), "task done")?;
    let (repo, snap) = open_plan(named.as_deref())?;
    tasks::refuse_if_finished(&snap)?;
    crate::git::version::require_for_plan(&snap.plan)?;
    let plan = snap.plan_name.clone();
    let id = id.as_str();
    let (_, task) = tasks::find_task(&snap, id)?;
    let status = snap.task_status(id)?;
    // A failed task lands again from its worktree once fixed there.
    if !matches!(
        status,
        TaskStatus::Running | TaskStatus::Conflict | TaskStatus::Failed
    ) {
        let hint = if status == TaskStatus::Pending {
            format!("start it first: `git orch task start {id}`")
        } else if status == TaskStatus::Review {
            format!("it waits for review: `git orch task approve {id}` lands it, `git orch task reject {id} -m \"…\"` sends it back")
        } else {
            format!("see `git orch status {plan}`")
        };
        return Err(refuse_with_hint(
            format!("task `{id}` is {}, not running", status.as_str()),
            hint,
        ));
    }
    let worktree = snap
        .task(id)?
        .worktree()
        .map(str::to_string)
        .map(std::path::PathBuf::from)
        .filter(|p| p.join(".git").exists())
        .ok_or_else(|| {
            refuse_with_hint(
                format!("task `{id}` has no worktree"),
                format!("reset it (`git orch task reset {id}`) and start it again"),
            )
        })?;
    let handoff = match &args.handoff {
        Some(file) => Some(read_handoff_arg(file)?),
        None => workspace::read_handoff_note(&workspace::handoff_file(&repo, &plan, id)),
    };
    // `cd` into the worktree `task start` printed, write notes.md, `--handoff notes.md`:
    // the note is read as the note, not committed as the task's work.
    let keep_out: Vec<String> = args
        .handoff
        .as_deref()
        .and_then(|file| inside(&worktree, file))
        .into_iter()
        .collect();
    for rel in &keep_out {
        ui::note(&format!(
            "the handoff note {} is in the task's worktree: it is read as the note and left out of the commit (it stays there, uncommitted)",
            ui::printable(rel)
        ));
    }
    let default_message = format!("{}: {}", id, task.title.as_deref().unwrap_or("work"));
    let message = args.message.clone().unwrap_or(default_message);
    let (ended, after) = crate::engine::review::done_by_hand(
        &repo,
        &plan,
        id,
        &worktree,
        &keep_out,
        Finish {
            message: &message,
            handoff,
            log: None,
            seconds: None,
            outcome: "Finished by hand (`git orch task done`); no command was run by git-orch.",
        },
        &mut |line| ui::note(line),
    )?;
    for note in &after.repairs {
        ui::warn(note);
    }
    let work = after.state.work.to_string();
    match ended {
        ByHand::Landed(landed) => report_landing(&plan, id, &landed, args.json, &work),
        ByHand::InReview { head, reviewer } => {
            if args.json {
                ui::json_doc(
                    Schema::TaskDone,
                    &json!({
                        "plan": plan, "task": id, "state": "review", "work": work,
                        "detail": { "head": head.to_string(), "reviewer": reviewer },
                    }),
                )?;
            } else {
                ui::note(&format!(
                    "task {id} committed at {} and waits for review ({reviewer}); it is not landed yet",
                    crate::git::short(head)
                ));
                ui::hint(&format!(
                    "`git orch task approve {id}` lands it; `git orch task reject {id} -m \"…\"` sends it back"
                ));
            }
            Ok(0)
        }
        ByHand::Rejected { head, reason } => {
            if args.json {
                ui::json_doc(
                    Schema::TaskDone,
                    &json!({
                        "plan": plan, "task": id, "state": "failed", "work": work,
                        "detail": { "rejected": reason, "head": head.to_string() },
                    }),
                )?;
            }
            ui::error(&format!(
                "task {id} was not landed: {}",
                ui::printable(&reason)
            ));
            ui::hint(&format!(
                "change its work in its worktree and `git orch task done {id}` again, or `git orch task reset {id}`"
            ));
            Ok(1)
        }
    }
}

/// `git orch task diff ID [--stat]`: `git diff BASE HEAD` of the task, on
/// stdout as git prints it.
pub fn diff(args: TaskDiffArgs) -> Result<u8> {
    let (id, named) = super::task_or_here(args.id.as_deref(), args.plan.as_deref(), "task diff")?;
    let (repo, snap) = open_plan(named.as_deref())?;
    let plan = snap.plan_name.clone();
    let change = crate::engine::change::of_task(&repo, &snap, &id)?;
    if let Some(worktree) = change.uncommitted_in.as_deref() {
        ui::note(&format!(
            "task {id}'s worktree has uncommitted changes, not shown: `git orch task done {id}` commits them (`git -C {} status`)",
            ui::printable(&worktree.display().to_string())
        ));
    }
    let (base, head) = (change.base.to_string(), change.head.to_string());
    let mut git_args = vec!["diff"];
    if args.stat {
        git_args.push("--stat");
    }
    git_args.extend([base.as_str(), head.as_str(), "--"]);
    if !repo.git_to_stdout(&git_args)? {
        return Err(anyhow::anyhow!(
            "`git diff` of task {id} of plan {plan} failed (see above)"
        ));
    }
    Ok(0)
}

/// `git orch task approve ID`: lands the reviewed commit of a task in review.
pub fn approve(args: TaskArgs) -> Result<u8> {
    let (repo, snap) = open_plan(args.plan.as_deref())?;
    crate::git::version::require_for_plan(&snap.plan)?;
    let plan = snap.plan_name.clone();
    let (landed, after) = crate::engine::review::approve(&repo, &plan, &args.id)?;
    for note in &after.repairs {
        ui::warn(note);
    }
    report_landing(
        &plan,
        &args.id,
        &landed,
        args.json,
        &after.state.work.to_string(),
    )
}

/// `git orch task reject ID -m COMMENTS`.
pub fn reject(args: crate::cli::TaskRejectArgs) -> Result<u8> {
    let (repo, snap) = open_plan(args.plan.as_deref())?;
    let plan = snap.plan_name.clone();
    let r = crate::engine::review::reject(&repo, &plan, &args.id, &args.message)?;
    if args.json {
        ui::json_doc(
            Schema::Task,
            &json!({
                "plan": plan, "task": args.id, "state": "failed",
                "reason": r.reason, "attempts": r.attempts, "attempts_allowed": r.allowed,
            }),
        )?;
        return Ok(0);
    }
    if r.attempts < r.allowed {
        ui::note(&format!(
            "task {} rejected (attempt {} of {}); `git orch run` gives it back to its agent with the comments in its brief",
            args.id, r.attempts, r.allowed
        ));
    } else {
        ui::note(&format!(
            "task {} rejected; it has had all its {} attempt(s) and stays failed",
            args.id, r.allowed
        ));
        ui::hint(&format!(
            "`git orch task retry {}` runs it once more; `git orch task reset {}` starts it over",
            args.id, args.id
        ));
    }
    Ok(0)
}

/// `file`'s path relative to `worktree` when it lies inside it (both
/// resolved, so `./notes.md` from inside the worktree and an absolute path
/// through a symlink count too).
fn inside(worktree: &std::path::Path, file: &std::path::Path) -> Option<String> {
    let file = std::fs::canonicalize(file).ok()?;
    let worktree = std::fs::canonicalize(worktree).ok()?;
    let rel = file.strip_prefix(&worktree).ok()?;
    let rel = rel.to_str()?;
    // The worktree's own `.git` is never committed anyway.
    (!rel.is_empty() && rel != ".git" && !rel.starts_with(".git/")).then(|| rel.to_string())
}

/// The text of `--handoff FILE`: refused if it cannot be read, is not
/// UTF-8, or is over [`workspace::HANDOFF_LIMIT`] (of which no more is read).
fn read_handoff_arg(file: &std::path::Path) -> Result<String> {
    let shown = ui::printable(&file.display().to_string());
    let (bytes, whole) = workspace::read_capped(file, workspace::HANDOFF_LIMIT)
        .with_context(|| format!("cannot read the handoff file `{shown}`"))
        .map_err(|e| refuse(format!("{e:#}")))?;
    if !whole {
        return Err(refuse_with_hint(
            format!(
                "the handoff file `{shown}` is over {} MiB",
                workspace::HANDOFF_LIMIT >> 20
            ),
            "a handoff note is a short summary for the tasks after this one: shorten it",
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| refuse(format!("the handoff file `{shown}` is not UTF-8 text")))
}

/// Prints how a landing ended; returns the exit code.
pub fn report_landing(
    plan: &str,
    id: &str,
    landed: &Landed,
    json_out: bool,
    work: &str,
) -> Result<u8> {
    let (state, code) = match landed {
        Landed::Done { .. } => ("done", 0),
        Landed::Conflict { .. } => ("conflict", 1),
        Landed::OutOfScope { .. } => ("failed", 1),
    };
    if json_out {
        let detail = match landed {
            Landed::Done { commit, changed } => {
                json!({ "landed": commit.map(|c| c.to_string()), "changed": changed })
            }
            Landed::Conflict { files } => json!({ "conflicts": files }),
            Landed::OutOfScope { paths } => json!({ "out_of_scope": paths }),
        };
        ui::json_doc(
            Schema::TaskDone,
            &json!({ "plan": plan, "task": id, "state": state, "work": work, "detail": detail }),
        )?;
        // stdout holds the document; why it did not land still goes to
        // stderr as `error:` and `hint:`, for a person and for `git orch mcp`.
        if matches!(landed, Landed::Done { .. }) {
            return Ok(code);
        }
    }
    match landed {
        Landed::Done {
            commit: Some(c),
            changed,
        } => ui::note(&format!(
            "task {id} {} on orch/{plan}/work at {} ({} file(s))",
            ui::green("landed"),
            crate::git::short(*c),
            changed.len()
        )),
        Landed::Done { commit: None, .. } => {
            ui::note(&format!("task {id} done: it changed nothing"))
        }
        Landed::Conflict { files } => {
            ui::error(&format!(
                "task {id} conflicts with orch/{plan}/work in: {}",
                files.join(", ")
            ));
            ui::hint(&format!(
                "in its worktree, `git merge orch/{plan}/work`, resolve, commit, then `git orch task done {id}` again (or `git orch task reset {id}`)"
            ));
        }
        Landed::OutOfScope { paths } => {
            ui::error(&format!(
                "task {id} changed paths outside its declared files: {}",
                paths.join(", ")
            ));
            ui::hint(&format!("its work stays on orch/{plan}/tasks/{id}: undo those changes in its worktree and `git orch task done {id}` again, widen `files` in a new plan, or `git orch task reset {id}`"));
        }
    }
    Ok(code)
}

pub fn fail(args: TaskFailArgs) -> Result<u8> {
    let (repo, snap) = open_plan(args.plan.as_deref())?;
    tasks::refuse_if_finished(&snap)?;
    let after = manual::fail(&repo, &snap.plan_name, &args.id, args.reason.as_deref())?;
    // An untrusted plan's own hooks do not run; git config's are the user's.
    let hooks_plan = if snap.plan.notify.is_empty() || crate::trust::is_trusted(&repo, &snap) {
        snap.plan.clone()
    } else {
        ui::warn(&format!(
            "plan `{}` is not trusted here: its [[notify]] hooks were not run (`git orch trust {}`)",
            snap.plan_name, snap.plan_name
        ));
        std::sync::Arc::new(crate::plan::Plan {
            notify: Vec::new(),
            ..(*snap.plan).clone()
        })
    };
    let notify = crate::notify::Notifier::new(&repo, &snap.plan_name, &hooks_plan);
    let phase = snap.plan.task(&args.id).map(|(p, _)| p.id.as_str());
    let reason = after
        .task(&args.id)?
        .reason()
        .unwrap_or("failed by hand")
        .to_string();
    crate::notify::task_failed(&notify, &args.id, phase, "failed", &reason, &[]);
    notify.finish();
    if args.json {
        ui::json_doc(
            Schema::Task,
            &json!({ "plan": after.plan_name, "task": args.id, "state": "failed" }),
        )?;
    } else {
        ui::note(&format!(
            "task {} marked {}; its worktree is kept",
            args.id,
            ui::red("failed")
        ));
        ui::hint(&format!(
            "fix it in its worktree and land it with `git orch task done {}`, or start over with `git orch task reset {}`",
            args.id, args.id
        ));
    }
    Ok(0)
}

pub fn reset(args: TaskResetArgs) -> Result<u8> {
    let force = args.force;
    back(
        args.id,
        args.plan,
        args.json,
        "pending",
        |repo, plan, id| manual::reset(repo, plan, id, force),
    )
}

pub fn skip(args: TaskResetArgs) -> Result<u8> {
    let force = args.force;
    back(
        args.id,
        args.plan,
        args.json,
        "skipped",
        |repo, plan, id| manual::skip(repo, plan, id, force),
    )
}

pub fn reopen(args: TaskArgs) -> Result<u8> {
    back(
        args.id,
        args.plan,
        args.json,
        "pending again",
        manual::reopen,
    )
}

fn back(
    id: String,
    plan: Option<String>,
    json_out: bool,
    state: &str,
    transition: impl FnOnce(&crate::git::Repo, &str, &str) -> Result<Vec<String>>,
) -> Result<u8> {
    let (repo, snap) = open_plan(plan.as_deref())?;
    tasks::refuse_if_finished(&snap)?;
    let plan = &snap.plan_name;
    let kept = transition(&repo, plan, &id)?;
    if json_out {
        let state = state.split(' ').next().unwrap_or(state);
        ui::json_doc(
            Schema::Task,
            &json!({ "plan": plan, "task": id, "state": state, "preserved": kept }),
        )?;
        return Ok(0);
    }
    ui::note(&format!("task {id} is {state}"));
    for r in &kept {
        ui::note(&format!("  its work is kept in {r}"));
    }
    if let Some(r) = kept.first() {
        ui::hint(&format!(
            "see it with `git log -p {r}`; in the next attempt's worktree, `git checkout {r} -- PATH` brings a file back"
        ));
    }
    Ok(0)
}

/// `task next`: the id of the task to start now alone on stdout (nothing
/// when there is none), and on stderr what to do; `--json` says it all.
/// Changes nothing, so it is not refused on a finished plan.
pub fn next(args: TaskNextArgs) -> Result<u8> {
    let (_, snap) = open_plan(args.plan.as_deref())?;
    let next = next_task::next(&snap)?;
    let hint = next_task::hint(&snap, &next);
    if args.json {
        ui::json_doc(
            Schema::TaskNext,
            &json!({
                "plan": snap.plan_name,
                "phase": next.phase.map(|p| p.id.as_str()),
                "action": next.action.as_str(),
                "task": next.task.map(|t| json!({
                    "id": t.id, "title": t.title, "files": t.files,
                    "depends_on": t.depends_on, "estimate": t.estimate,
                })),
                "startable": next.startable,
                "waiting": next.waiting.iter()
                    .map(|(id, behind)| json!({ "task": id, "behind": behind }))
                    .collect::<Vec<_>>(),
                "running": next.running,
                "failed": next.failed.iter()
                    .map(|(id, s)| json!({ "task": id, "state": s.as_str() }))
                    .collect::<Vec<_>>(),
                "review": next.review,
                "hint": hint,
            }),
        )?;
        return Ok(0);
    }
    match next.task {
        Some(t) => ui::out(&t.id),
        None => ui::note(&format!("no task can start now ({})", next.action.as_str())),
    }
    for id in &next.review {
        ui::note(&format!("task {id} waits for review"));
    }
    for (id, behind) in &next.waiting {
        ui::note(&format!(
            "task {id} waits for task {behind}, whose files may overlap"
        ));
    }
    ui::hint(&hint);
    Ok(0)
}
