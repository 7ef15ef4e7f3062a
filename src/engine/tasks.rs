//! Task transitions shared by the manual commands (`task start/done/…`) and
//! the runner: claiming a task, preparing its worktree and brief, landing
//! it, and the moves back to pending that first preserve what they discard.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use git2::Oid;

use super::land::{self as landing, Landing};
use super::workspace;
use crate::error::{refuse, refuse_with_hint};
use crate::git::{short, RefEdit, Repo};
use crate::plan::{CheckoutMode, Phase, Task};
use crate::state::{self, names, reconcile, store, transition, Claim, Event, Snapshot, TaskStatus};

/// Looks a task up in the plan, refusing unknown ids.
pub fn find_task<'a>(snap: &'a Snapshot, id: &str) -> Result<(&'a Phase, &'a Task)> {
    snap.plan.task(id).ok_or_else(|| {
        refuse_with_hint(
            format!("plan `{}` has no task `{id}`", snap.plan_name),
            format!("see its tasks with `git orch status {}`", snap.plan_name),
        )
    })
}

pub fn claim_for_this_process(manual: bool) -> Claim {
    Claim {
        host: crate::process::hostname(),
        pid: std::process::id(),
        proc_start: crate::process::process_start_time(std::process::id()),
        since: state::now(),
        manual,
        // A runner sharing a remote holds its claims by lease.
        lease: (!manual).then(super::remote::new_lease).flatten(),
    }
}

/// A runner may not start a task now because a running task's scope may
/// overlap it (or one of them has no scope and must run alone).
#[derive(Debug)]
pub struct Busy {
    pub task: String,
    pub other: String,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "task `{}` waits for `{}` (their files may overlap)",
            self.task, self.other
        )
    }
}

impl std::error::Error for Busy {}

/// A runner may not start a task now because every agent it may run with
/// is at its `parallel` cap.
#[derive(Debug)]
pub struct AgentsBusy {
    pub task: String,
}

impl std::fmt::Display for AgentsBusy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "task `{}` waits for one of its agents to have room",
            self.task
        )
    }
}

impl std::error::Error for AgentsBusy {}

/// The agent a runner's attempt of `task` runs with, chosen in the claim's
/// transaction so that caps hold across runners; `None` for a person's
/// claim or a task with its own command.
fn route_claim(snap: &Snapshot, task: &Task, manual: bool) -> Result<Option<String>> {
    if manual {
        return Ok(None);
    }
    let in_use = super::agents::in_use(snap)?;
    match super::agents::route(&snap.plan, task, &in_use, &super::agents::limited_now(snap)) {
        super::agents::Route::Command => Ok(None),
        super::agents::Route::Agent(a) => Ok(Some(a)),
        super::agents::Route::Busy => Err(AgentsBusy {
            task: task.id.clone(),
        }
        .into()),
    }
}

/// A running task whose write scope may overlap `task`'s.
/// Reads only the tasks the state indexes as active.
pub fn overlapping_running(snap: &Snapshot, task: &Task) -> Result<Option<String>> {
    for id in &snap.state.active {
        // A parked task keeps its worktree and its files until it wakes.
        if *id == task.id
            || !matches!(
                snap.task_status(id)?,
                TaskStatus::Running | TaskStatus::Parked
            )
        {
            continue;
        }
        if let Some((_, other)) = snap.plan.task(id) {
            if crate::plan::scopes_may_overlap(&other.files, &task.files) {
                return Ok(Some(id.clone()));
            }
        }
    }
    Ok(None)
}

/// `task start` of a task already started by hand on this host: not a
/// refusal, [`start_by_hand`] gives its worktree back.
#[derive(Debug)]
struct StartedByHand;

impl std::fmt::Display for StartedByHand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the task was already started by hand")
    }
}

impl std::error::Error for StartedByHand {}

/// Whether a running task's claim is a `task start` of this host.
fn started_by_hand_here(t: &state::TaskState) -> bool {
    t.claim()
        .is_some_and(|c| c.manual && c.host == crate::process::hostname())
}

/// `task start`: claims a pending task by hand and makes its worktree; for
/// a task already started by hand on this host, gives its worktree back
/// (made again on its branch if it is gone), so that
/// `wt=$(git orch task start ID) && cd "$wt"` never stays in the main checkout.
/// The flag says which of the two happened.
pub fn start_by_hand(repo: &Repo, plan: &str, id: &str) -> Result<(Begun, bool)> {
    // Another `task start` of it may be making the worktree right now.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        match begin(repo, plan, id, claim_for_this_process(true), false) {
            Err(e) if e.is::<StartedByHand>() => {}
            other => return other.map(|b| (b, false)),
        }
        let snap = store::load(repo, plan)?;
        let t = snap.task(id)?;
        let starting = t.claim().is_some_and(|c| {
            c.pid != std::process::id() && crate::process::is_alive(c.pid, c.proc_start)
        });
        if starting && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        }
        if t.state() != TaskStatus::Running || !started_by_hand_here(&t) {
            continue; // it moved on meanwhile: start it afresh or refuse
        }
        return again_by_hand(repo, &snap, id, &t).map(|b| (b, true));
    }
}

/// The worktree of a task started by hand, as it is; made again from its
/// branch (or its base, if the branch was never made) when it is gone.
/// Changes no state.
fn again_by_hand(repo: &Repo, snap: &Snapshot, id: &str, t: &state::TaskState) -> Result<Begun> {
    let plan = snap.plan_name.as_str();
    let path = t
        .worktree()
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace::task_worktree(repo, plan, id));
    let base = t.base().unwrap_or(snap.state.work).oid();
    let kept = clear_leftover(repo, plan, id, &path, base)?;
    if !path.join(".git").exists() {
        let (_, task) = find_task(snap, id)?;
        let branch = names::task_branch(plan, id);
        let start = repo.ref_target(&branch)?.unwrap_or(base);
        // git still holds the branch for the worktree that went.
        if !path.exists() {
            repo.git(&["worktree", "prune"])?;
        }
        repo.checkout_worktree(
            &path,
            &branch,
            start,
            sparse_patterns(snap, task).as_deref(),
        )
        .or_else(|e| {
            // A racing `task start` of it made it first.
            if path.join(".git").exists() {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| e.context(format!("cannot make the worktree for task `{id}` again")))?;
    }
    if !workspace::task_file(repo, plan, id).exists() {
        let (_, task) = find_task(snap, id)?;
        write_brief(repo, snap, task, None)?;
    }
    Ok(Begun {
        worktree: path,
        base,
        kept,
    })
}

/// `task start` of a task whose files may overlap a running task's.
fn overlap_refusal(plan: &str, task: &Task, other: &str) -> anyhow::Error {
    let id = &task.id;
    let why = if task.files.is_empty() {
        format!("it declares no `files`, so it runs alone, and task `{other}` is running")
    } else {
        format!("its files may overlap those of task `{other}`, which is running")
    };
    refuse_with_hint(
        format!("task `{id}` cannot start now: {why}"),
        format!(
            "finish `{other}` first (`git orch task done {other}`), or wait until `git orch status {plan}` shows it settled, then start `{id}` again"
        ),
    )
}

/// A claimed task with its worktree ready.
pub struct Begun {
    pub worktree: PathBuf,
    pub base: Oid,
    /// A ref that keeps what was left at the worktree's path by an earlier
    /// attempt (files a reset raced with), moved aside to make room.
    pub kept: Option<String>,
}

/// Refuses a task's recorded worktree path that holds something that is
/// not a worktree, away from the task's own place: clearing it for the
/// task would remove a directory git-orch did not make.
fn refuse_foreign_leftover(repo: &Repo, plan: &str, id: &str, path: &Path) -> Result<()> {
    let own = workspace::task_worktree(repo, plan, id);
    if !path.exists() || path.join(".git").exists() || path == own {
        return Ok(());
    }
    let shown = crate::ui::printable(&path.display().to_string());
    Err(ForeignCheckout::error(refuse_with_hint(
        format!(
            "task `{id}`'s record names `{shown}` as its worktree, which is not a worktree and not where git-orch keeps the task's ({}): git-orch clears nothing there",
            crate::ui::printable(&own.display().to_string())
        ),
        format!("`git orch task reset {id}` starts the task over in a worktree of its own"),
    )))
}

/// Clears what is left at a task's worktree path that is not a worktree
/// (a reset that raced a task still writing files, a half-removed
/// checkout), so that the next start can make one there: its content is
/// kept in a ref first, which is returned. Only at the task's own place
/// under git-orch's worktree dir: the path a task's record names may be
/// any directory (a state fetched from elsewhere), and nothing there is
/// git-orch's to clear.
fn clear_leftover(
    repo: &Repo,
    plan: &str,
    id: &str,
    path: &Path,
    base: Oid,
) -> Result<Option<String>> {
    if !path.exists() || path.join(".git").exists() {
        return Ok(None);
    }
    refuse_foreign_leftover(repo, plan, id, path)?;
    let mut kept = None;
    let holds_something = std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_some());
    if holds_something {
        if let Some(content) = repo.worktree_content(
            path,
            &format!("orch: files left at the worktree of task {id}"),
            base,
        )? {
            let name = names::preserved(
                plan,
                &format!("{}/worktrees/{id}", preserve_tag("leftover")),
            );
            reconcile::create_if_absent(repo, &name, content)?;
            kept = Some(name);
        }
    }
    std::fs::remove_dir_all(path)
        .with_context(|| format!("cannot clear `{}` for task `{id}`", path.display()))?;
    // git may still list a worktree there.
    let _ = repo.git(&["worktree", "prune"]);
    Ok(kept)
}

/// Claims a pending task (compare-and-swap on the state branch, so two
/// runners never both get it) and prepares its worktree on
/// `orch/<plan>/tasks/<task>` from the work branch head.
pub fn begin(repo: &Repo, plan: &str, id: &str, claim: Claim, reuse_pool: bool) -> Result<Begun> {
    let claimed = claim_task(repo, plan, id, claim)?;
    prepare(repo, &claimed, reuse_pool).inspect_err(|_| {
        // Give the task back so nobody has to clean up after us.
        let _ = release(repo, plan, id, "worktree could not be made");
    })
}

/// A task claimed in the state, its worktree not made yet.
pub struct Claimed {
    pub snap: Snapshot,
    pub id: String,
    pub worktree: PathBuf,
    pub base: Oid,
    /// Why the attempt before this one ended, told in the brief.
    pub last: Option<LastAttempt>,
    /// Retried in the worktree it failed in: use that worktree as it is.
    pub in_place: bool,
}

/// The compare-and-swap half of [`begin`]: marks the task running under
/// `claim`. Cheap (objects and one ref), so a runner does it on its main
/// loop and leaves the worktree to the task's own thread.
pub fn claim_task(repo: &Repo, plan: &str, id: &str, claim: Claim) -> Result<Claimed> {
    let manual = claim.manual;
    let path = workspace::task_worktree(repo, plan, id);
    // The new attempt puts the task's branch at its base: not under a
    // person's worktree that has a leftover branch of it checked out. (A
    // pending task has no branch as a rule, so this costs a ref lookup.)
    if repo.ref_target(&names::task_branch(plan, id))?.is_some() {
        refuse_foreign_checkouts(repo, plan, &[id])?;
    }
    let path_s = path.to_string_lossy().to_string();
    let mut last = None;
    let ((), snap) = store::transact(repo, plan, |snap, change| {
        refuse_if_finished(snap)?;
        let (phase, task) = find_task(snap, id)?;
        let status = snap.task_status(id)?;
        if status != TaskStatus::Pending {
            let current = snap.task(id)?;
            // Started by hand here: this `task start` gives it back.
            if manual && status == TaskStatus::Running && started_by_hand_here(&current) {
                return Err(StartedByHand.into());
            }
            let current = Some(&current);
            let hint = match status {
                TaskStatus::Failed => format!(
                    "`git orch task retry {id}` runs it again where it failed (`--by-hand` to take it yourself); or fix it in its worktree and land it with `git orch task done {id}`"
                ),
                TaskStatus::Conflict => format!(
                    "fix it in its worktree and land it with `git orch task done {id}`, or `git orch task reset {id}` returns it to pending (its work is kept in a ref)"
                ),
                // A runner's task, or one started by hand on another
                // machine, is not shared.
                TaskStatus::Running => match current
                    .and_then(|t| t.claim().filter(|c| c.manual))
                {
                    Some(c) => format!(
                        "it was started by hand on {}; finish it there (`git orch task done {id}`), or take it over with `git orch task reset {id}`",
                        c.host
                    ),
                    None => format!("it is being worked on; `git orch status {plan}` shows by whom"),
                },
                _ => format!("see `git orch status {plan}`"),
            };
            return Err(refuse_with_hint(
                format!("task `{id}` is {}, not pending", status.as_str()),
                hint,
            ));
        }
        if let Some(reason) = snap.blocked_reason(task, phase)? {
            return Err(refuse_with_hint(
                format!("task `{id}` cannot start: {reason}"),
                format!("see `git orch status {plan}`"),
            ));
        }
        // Never two agents on one file, by hand either.
        if let Some(other) = overlapping_running(snap, task)? {
            if manual {
                return Err(overlap_refusal(plan, task, &other));
            }
            return Err(Busy {
                task: id.to_string(),
                other,
            }
            .into());
        }
        let agent = route_claim(snap, task, manual)?;
        last = last_attempt(&snap.task(id)?);
        let t = change.task(id)?;
        // Shared through a remote: the lease counts from this attempt, and
        // the task's branch and lease are pushed with the claim.
        let claim = super::remote::fresh(claim.clone());
        change.push = super::remote::claim_pushes(repo, plan, id, snap.state.work.oid(), &claim)?;
        let mut t = transition::claim(&t, snap.state.work, claim, path_s.clone(), state::now())
            .map_err(|w| w.about(id))?;
        t.agent = agent.clone();
        let attempt = t.attempts;
        change.put_task(id, t);
        if let Some(p) = change.state.phases.get_mut(&phase.id) {
            p.gates_failed = false;
        }
        change.event = Some(Event::TaskClaimed {
            task: id.to_string(),
            attempt,
            manual,
            retry: false,
            agent,
            at: state::now(),
        });
        Ok(())
    })?;
    crate::failpoint!("task-claimed");
    let t = snap.task(id)?;
    let base = t.base().unwrap_or(snap.state.work).oid();
    Ok(Claimed {
        snap,
        id: id.to_string(),
        worktree: path,
        base,
        last,
        in_place: false,
    })
}

/// Claims a failed task for another attempt in the worktree it failed in
/// (`task retry`, `run --retry-failed`): its work so far stays as it is,
/// and the new brief says why the attempt before failed, with the end of
/// its log.
pub fn claim_retry(repo: &Repo, plan: &str, id: &str, claim: Claim) -> Result<Claimed> {
    claim_in_place(repo, plan, id, claim, &InPlace::RETRY)
}

/// Claims a parked task whose wake time has come for its next attempt, in
/// the worktree it parked in (its work so far kept), with the first of its
/// agents that is free and not at a usage limit; the brief says why it
/// was parked.
pub fn claim_parked(repo: &Repo, plan: &str, id: &str, claim: Claim) -> Result<Claimed> {
    claim_in_place(repo, plan, id, claim, &InPlace::WAKE)
}

/// What differs between taking a failed task again and waking a parked
/// one: which tasks may be taken, the move of the record, and what the
/// brief calls the attempt before when it gave no reason.
struct InPlace {
    may_take: fn(&Snapshot, &str, &state::TaskState) -> Result<()>,
    take: fn(
        &state::TaskState,
        Claim,
        state::CommitId,
        String,
        f64,
    ) -> std::result::Result<state::TaskState, transition::Wrong>,
    earlier: &'static str,
}

impl InPlace {
    const RETRY: InPlace = InPlace {
        may_take: refuse_unless_retryable,
        take: transition::retry,
        earlier: "failed",
    };
    const WAKE: InPlace = InPlace {
        may_take: refuse_unless_awake,
        take: transition::wake,
        earlier: "parked",
    };
}

fn refuse_unless_awake(_: &Snapshot, id: &str, t: &state::TaskState) -> Result<()> {
    match t.parked_until() {
        Some(until) if until <= state::now() => Ok(()),
        _ => Err(refuse(format!(
            "task `{id}` is {}, not parked until now",
            t.state().as_str()
        ))),
    }
}

/// The one claim of a task in the worktree its last attempt left (see
/// [`claim_retry`], [`claim_parked`]).
fn claim_in_place(
    repo: &Repo,
    plan: &str,
    id: &str,
    claim: Claim,
    how: &InPlace,
) -> Result<Claimed> {
    let manual = claim.manual;
    let default_path = workspace::task_worktree(repo, plan, id);
    // Before the claim, so that a refusal changes nothing.
    if let Some(recorded) = store::load(repo, plan)?.task(id)?.worktree() {
        refuse_foreign_leftover(repo, plan, id, Path::new(recorded))?;
    }
    let mut last = None;
    let ((), snap) = store::transact(repo, plan, |snap, change| {
        let (phase, task) = find_task(snap, id)?;
        let current = snap.task(id)?;
        (how.may_take)(snap, id, &current)?;
        if let Some(other) = overlapping_running(snap, task)? {
            if manual {
                return Err(overlap_refusal(plan, task, &other));
            }
            return Err(Busy {
                task: id.to_string(),
                other,
            }
            .into());
        }
        let agent = route_claim(snap, task, manual)?;
        last = Some(LastAttempt {
            attempt: current.attempts,
            reason: current.reason().unwrap_or(how.earlier).to_string(),
            log: current.log.clone(),
        });
        // Shared through a remote: held by a fresh lease, pushed with the
        // claim as a first claim's is (the task's branch as its last
        // attempt left it, so nothing it pushed goes back).
        let claim = super::remote::fresh(claim.clone());
        let mut t = (how.take)(
            &current,
            claim.clone(),
            snap.state.work,
            default_path.to_string_lossy().to_string(),
            state::now(),
        )
        .map_err(|w| w.about(id))?;
        let base = t.base().unwrap_or(snap.state.work).oid();
        change.push = super::remote::claim_pushes_in_place(repo, plan, id, base, &claim)?;
        t.agent = agent.clone();
        let attempt = t.attempts;
        change.put_task(id, t);
        if let Some(p) = change.state.phases.get_mut(&phase.id) {
            p.gates_failed = false;
        }
        change.event = Some(Event::TaskClaimed {
            task: id.to_string(),
            attempt,
            manual,
            retry: true,
            agent,
            at: state::now(),
        });
        Ok(())
    })?;
    let t = snap.task(id)?;
    let base = t.base().unwrap_or(snap.state.work).oid();
    let worktree = t.worktree().map(PathBuf::from).unwrap_or(default_path);
    Ok(Claimed {
        snap,
        id: id.to_string(),
        worktree,
        base,
        last,
        in_place: true,
    })
}

/// A task can be retried when it failed (a conflict is landed again with
/// `task done` once resolved, not re-run).
pub fn refuse_unless_retryable(snap: &Snapshot, id: &str, t: &state::TaskState) -> Result<()> {
    let plan = &snap.plan_name;
    match t.state() {
        TaskStatus::Failed => Ok(()),
        TaskStatus::Conflict => Err(refuse_with_hint(
            format!("task `{id}` is in conflict, not failed: its work is done but does not merge"),
            format!("resolve it in its worktree and land it with `git orch task done {id}`, or `git orch task reset {id}`"),
        )),
        status => Err(refuse_with_hint(
            format!("task `{id}` is {}, not failed; only a failed task can be retried", status.as_str()),
            format!("see `git orch status {plan}`"),
        )),
    }
}

/// How an earlier attempt of a task ended, for its next brief.
#[derive(Debug, Clone)]
pub struct LastAttempt {
    pub attempt: u32,
    pub reason: String,
    /// Its log in the state tree, if it has one.
    pub log: Option<String>,
}

/// Why the attempt before a pending task's next one ended, as its record
/// keeps it (a reset, an interruption or a recovery leaves the reason).
fn last_attempt(t: &state::TaskState) -> Option<LastAttempt> {
    if t.state() != TaskStatus::Pending {
        return None;
    }
    Some(LastAttempt {
        attempt: t.attempts,
        reason: t.reason()?.to_string(),
        log: t.log.clone(),
    })
}

/// The filesystem half of [`begin`]: the worktree on the task's branch at
/// its base (recycled from the pool when `reuse_pool`), and its brief.
pub fn prepare(repo: &Repo, claimed: &Claimed, reuse_pool: bool) -> Result<Begun> {
    let Claimed {
        snap,
        id,
        worktree: path,
        base,
        last,
        in_place,
    } = claimed;
    let (plan, id, base) = (snap.plan_name.as_str(), id.as_str(), *base);
    let (_, task) = find_task(snap, id)?;
    let branch = names::task_branch(plan, id);
    let sparse = sparse_patterns(snap, task);
    if *in_place {
        let kept = clear_leftover(repo, plan, id, path, base)?;
        if !path.join(".git").exists() {
            // Gone since it failed (removed by hand): made again from its
            // branch, where its committed work is.
            let start = repo.ref_target(&branch)?.unwrap_or(base);
            let _ = repo.git(&["worktree", "prune"]);
            repo.checkout_worktree(path, &branch, start, sparse.as_deref())
                .map_err(|e| {
                    e.context(format!("cannot make the worktree for task `{id}` again"))
                })?;
        }
        let _ = std::fs::remove_file(workspace::handoff_file(repo, plan, id));
        write_brief(repo, snap, task, last.as_ref())?;
        return Ok(Begun {
            worktree: path.clone(),
            base,
            kept,
        });
    }
    let kept = clear_leftover(repo, plan, id, path, base)?;
    // A parked worktree was parked clean: no sweep of untracked files.
    let started = std::time::Instant::now();
    let recycled = reuse_pool && !path.exists() && workspace::unpark(repo, plan, path);
    crate::failpoint!("worktree-unparked");
    repo.checkout_worktree_from(path, &branch, base, sparse.as_deref(), recycled)
        .map_err(|e| e.context(format!("cannot make the worktree for task `{id}`")))?;
    crate::trace::step("worktree", started);
    crate::failpoint!("worktree-created");
    // A note left by an earlier attempt is not this attempt's.
    let _ = std::fs::remove_file(workspace::handoff_file(repo, plan, id));
    write_brief(repo, snap, task, last.as_ref())?;
    Ok(Begun {
        worktree: path.clone(),
        base,
        kept,
    })
}

/// The sparse-checkout patterns of a task's worktree, `None` for a full one.
fn sparse_patterns(snap: &Snapshot, task: &Task) -> Option<Vec<String>> {
    (snap.plan.defaults.checkout == CheckoutMode::Sparse && !task.files.is_empty())
        .then(|| {
            task.files
                .iter()
                .chain(task.reads.iter())
                .cloned()
                .collect::<Vec<_>>()
        })
        .and_then(|globs| crate::plan::sparse_patterns(&globs))
}

/// Returns a running task to pending without touching its worktree (used
/// when preparing it failed before any work was done).
fn release(repo: &Repo, plan: &str, id: &str, reason: &str) -> Result<()> {
    store::transact(repo, plan, |_, change| {
        let t = change.task(id)?;
        if let Ok(released) = transition::release(&t) {
            let attempt = t.attempts;
            change.put_task(id, released);
            change.event = Some(Event::TaskReleased {
                task: id.to_string(),
                attempt,
                reason: reason.to_string(),
                at: state::now(),
            });
        }
        Ok(())
    })?;
    Ok(())
}

/// Writes `ORCH_TASK_FILE`: title, prompt, scope, and the handoff notes of
/// the tasks it depends on.
fn write_brief(
    repo: &Repo,
    snap: &Snapshot,
    task: &Task,
    last: Option<&LastAttempt>,
) -> Result<()> {
    let plan = &snap.plan_name;
    let dir = workspace::task_files_dir(repo, plan);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let mut text = format!(
        "# Task {}: {}\n\n",
        task.id,
        task.title.as_deref().unwrap_or(&task.id)
    );
    if let Some((phase, _)) = snap.plan.task(&task.id) {
        text += &format!(
            "Plan: {plan} · Phase: {}\n\n",
            phase.title.as_deref().unwrap_or(&phase.id)
        );
    }
    if let Some(prompt) = &task.prompt {
        text += &format!("## Instructions\n\n{}\n\n", prompt.trim_end());
    }
    text += "## Files you may change\n\n";
    if task.files.is_empty() {
        text += "Any (no scope declared).\n\n";
    } else {
        for f in &task.files {
            text += &format!("- `{f}`\n");
        }
        text += "\nChanges outside these paths fail the task.\n\n";
    }
    if !task.reads.is_empty() {
        text += "## Files to read\n\n";
        for f in &task.reads {
            text += &format!("- `{f}`\n");
        }
        text += "\n";
    }
    // A task reopened after its phase failed a gate is told what failed.
    if let Some((phase, _)) = snap.plan.task(&task.id) {
        let failed = snap
            .state
            .phases
            .get(&phase.id)
            .map(|p| p.gates.iter().filter(|g| !g.passed).collect::<Vec<_>>())
            .unwrap_or_default();
        for gate in failed {
            let log = repo.read_path(snap.tree, &gate.log)?.unwrap_or_default();
            let commit = gate.commit.short();
            let log = String::from_utf8_lossy(&log);
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            text += &format!(
                "## The phase's gate `{}` failed\n\nCommand: `{}` on {}.\n\n```\n{}\n```\n\n",
                gate.name,
                gate.command,
                commit,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
    if let Some(last) = last {
        text += &last_attempt_section(repo, snap, &task.id, last)?;
    }
    for dep in &task.depends_on {
        if let Some(note) = snap.handoff(repo, dep)? {
            text += &format!(
                "## Handoff from {dep}\n\n{}\n\n",
                String::from_utf8_lossy(&note).trim_end()
            );
        }
    }
    text += &format!(
        "## When you are done\n\nWrite a short handoff note for the tasks after you to `{}`.\n",
        workspace::handoff_file(repo, plan, &task.id).display()
    );
    let file = workspace::task_file(repo, plan, &task.id);
    std::fs::write(&file, text).with_context(|| format!("cannot write `{}`", file.display()))?;
    Ok(())
}

/// The brief's account of the attempt before: why it ended, and the last
/// lines of its log.
fn last_attempt_section(
    repo: &Repo,
    snap: &Snapshot,
    id: &str,
    last: &LastAttempt,
) -> Result<String> {
    let mut text = format!(
        "## Why the last attempt failed\n\nAttempt {}: {}\n\n",
        last.attempt,
        last.reason.trim_end()
    );
    if let Some(log) = &last.log {
        let bytes = repo.read_path(snap.tree, log)?.unwrap_or_default();
        let log_text = String::from_utf8_lossy(&bytes);
        let tail: Vec<&str> = log_text.lines().rev().take(40).collect();
        // `git orch log` finds an attempt's log where the layout puts it.
        let read = if *log == state::layout::task_log(id, last.attempt) {
            format!(
                "git orch log {} {id} --attempt {}",
                snap.plan_name, last.attempt
            )
        } else {
            format!("git show orch/{}/state:{log}", snap.plan_name)
        };
        text += &format!(
            "Its log: `{read}`; the end of it:\n\n```\n{}\n```\n\n",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(text)
}

/// How a landing attempt ended, for the caller to report.
pub enum Landed {
    Done {
        commit: Option<Oid>,
        changed: Vec<String>,
    },
    Conflict {
        files: Vec<String>,
    },
    OutOfScope {
        paths: Vec<String>,
    },
}

pub struct Finish<'a> {
    pub message: &'a str,
    pub handoff: Option<String>,
    pub log: Option<Vec<u8>>,
    pub seconds: Option<f64>,
    /// What the task's own command reported, for the handoff's test status.
    pub outcome: &'a str,
}

/// Commits what a task done by hand left uncommitted, except the paths
/// (relative to the worktree) in `keep_out`; the commit is the task's head.
/// What follows is its review, if it has one, then its landing
/// ([`super::review::done_by_hand`]).
pub(in crate::engine) fn commit_by_hand(
    repo: &Repo,
    worktree: &Path,
    message: &str,
    keep_out: &[String],
) -> Result<Oid> {
    let started = std::time::Instant::now();
    let head = repo.commit_all_except(worktree, message, keep_out)?;
    crate::trace::step("commit", started);
    crate::failpoint!("task-committed");
    Ok(head)
}

/// Lands a task done by hand at `head` on the work branch (one state
/// commit: the task's new state, its handoff note and log, and the work
/// branch's new head). Only for a task that has no review or whose
/// reviewer just approved `head` ([`super::review::done_by_hand`]).
pub(in crate::engine) fn land_by_hand(
    repo: &Repo,
    plan: &str,
    id: &str,
    head: Oid,
    finish: Finish<'_>,
) -> Result<(Landed, Snapshot)> {
    // By hand, a failed task fixed in its worktree lands again too.
    land(repo, plan, id, head, finish, true)
}

/// The landing of a task whose work is committed at
/// `head` (the runner commits in the task's own thread, then lands here,
/// one task at a time).
pub fn land_committed(
    repo: &Repo,
    plan: &str,
    id: &str,
    head: Oid,
    finish: Finish<'_>,
) -> Result<(Landed, Snapshot)> {
    land(repo, plan, id, head, finish, false)
}

/// [`land_committed`]; `failed_too` also lands a task that failed (by hand).
fn land(
    repo: &Repo,
    plan: &str,
    id: &str,
    head: Oid,
    finish: Finish<'_>,
    failed_too: bool,
) -> Result<(Landed, Snapshot)> {
    let landing_started = std::time::Instant::now();
    // A commit made by hand on the work branch since the state last moved
    // it is adopted first, so this task lands on top of it (or conflicts
    // with it) instead of over it.
    super::adopt::adopt_hand_commits(repo, plan)?;
    let landed = store::transact(repo, plan, |snap, change| {
        let (phase, task) = find_task(snap, id)?;
        let status = snap.task_status(id)?;
        let again = failed_too && status == TaskStatus::Failed;
        if !matches!(
            status,
            TaskStatus::Running | TaskStatus::Conflict | TaskStatus::Review
        ) && !again
        {
            return Err(refuse(format!(
                "task `{id}` is {}, not running",
                status.as_str()
            )));
        }
        let t = snap.task(id)?;
        super::remote::refuse_unless_ours(&t, id)?;
        let base = t.base().unwrap_or(snap.state.base).oid();
        let work = snap.state.work.oid();
        let landing = landing::land(repo, &snap.plan, task, work, base, head)?;
        let attempt = t.attempts.max(1);
        let log_path = state::layout::task_log(id, attempt);
        // A task in review had its time counted when it went there; the
        // wait for its reviewer is no task time.
        let spent = if status == TaskStatus::Review {
            None
        } else {
            finish
                .seconds
                .or_else(|| t.started_at().map(|s| state::now() - s))
        };
        let log_ref = finish.log.as_ref().map(|log| {
            change.files.push((log_path.clone(), log.clone()));
            log_path.clone()
        });
        let at = state::now();
        let ended = transition::Finished {
            head: head.into(),
            at,
            spent,
            log: log_ref.clone(),
        };
        // A runner parks the worktree of a landed task for the next one;
        // a person's stays where it is until `finish`.
        // (A failed task landed again by hand counts as a person's.)
        let keep_worktree = t.claim().is_some_and(|c| c.manual) || again;
        let (nt, result) = match landing {
            Landing::Landed { commit, changed } => {
                change.state.work = commit.into();
                change.refs.push(RefEdit::Set {
                    name: names::work(plan),
                    new: commit,
                    old: Some(work),
                });
                change.event = Some(Event::TaskLanded {
                    task: id.to_string(),
                    attempt,
                    commit: Some(commit.to_string()),
                    changed: changed.clone(),
                    log: log_ref.clone(),
                    at,
                });
                let nt = transition::land(
                    &t,
                    ended,
                    Some(commit.into()),
                    changed.clone(),
                    keep_worktree,
                );
                (
                    nt,
                    Landed::Done {
                        commit: Some(commit),
                        changed,
                    },
                )
            }
            Landing::Empty => {
                change.event = Some(Event::TaskLanded {
                    task: id.to_string(),
                    attempt,
                    commit: None,
                    changed: Vec::new(),
                    log: log_ref.clone(),
                    at,
                });
                let nt = transition::land(&t, ended, None, Vec::new(), keep_worktree);
                (
                    nt,
                    Landed::Done {
                        commit: None,
                        changed: Vec::new(),
                    },
                )
            }
            Landing::Conflict { files } => {
                change.event = Some(Event::TaskConflict {
                    task: id.to_string(),
                    attempt,
                    files: files.clone(),
                    log: log_ref.clone(),
                    at,
                });
                let reason = format!("landing conflicts in {}", files.join(", "));
                (
                    transition::conflict(&t, ended, reason),
                    Landed::Conflict { files },
                )
            }
            Landing::OutOfScope { paths } => {
                let reason = format!(
                    "{}: {}",
                    crate::engine::recover::OUT_OF_SCOPE,
                    paths.join(", ")
                );
                change.event = Some(Event::TaskFailed {
                    task: id.to_string(),
                    attempt,
                    reason: reason.clone(),
                    scope: paths.clone(),
                    log: log_ref.clone(),
                    at,
                });
                let nt =
                    transition::fail(&t, reason, Some(head.into()), at, spent, log_ref.clone());
                (nt, Landed::OutOfScope { paths })
            }
        };
        let nt = nt.map_err(|w| w.about(id))?;
        if let Landed::Done { changed, commit } = &result {
            let note = handoff_note(
                repo, snap, phase, task, base, head, *commit, changed, &finish, nt.seconds,
            )?;
            change.file(state::layout::handoff(id), note);
        }
        change.put_task(id, nt);
        Ok(result)
    });
    crate::trace::step("land", landing_started);
    landed
}

#[allow(clippy::too_many_arguments)]
fn handoff_note(
    repo: &Repo,
    snap: &Snapshot,
    phase: &Phase,
    task: &Task,
    base: Oid,
    head: Oid,
    landed: Option<Oid>,
    changed: &[String],
    finish: &Finish<'_>,
    seconds: Option<f64>,
) -> Result<String> {
    let mut text = format!(
        "# Handoff: {} — {}\n\n",
        task.id,
        task.title.as_deref().unwrap_or(&task.id)
    );
    text += &format!("- Plan: {} · Phase: {}\n", snap.plan_name, phase.id);
    text += &format!(
        "- Landed: {}\n",
        landed.map_or("no changes".to_string(), |c| format!(
            "{c} ({})",
            snap.plan.defaults.merge
        ))
    );
    if let Some(s) = seconds {
        let estimate = task
            .estimate
            .as_deref()
            .map_or(String::new(), |e| format!(" (estimate {e})"));
        text += &format!("- Time: {}{estimate}\n", crate::render::duration(s));
    }
    text += "\n## Completed work\n\n";
    let commits = if head == base {
        Vec::new()
    } else {
        repo.commits_between(base, head)?
    };
    if commits.is_empty() {
        text += "No commits.\n";
    }
    for c in commits {
        let commit = repo.git.find_commit(c)?;
        text += &format!("- {} {}\n", short(c), commit.summary().unwrap_or(""));
    }
    text += "\n## Modified files\n\n";
    if changed.is_empty() {
        text += "None.\n";
    }
    for path in changed {
        text += &format!("- {path}\n");
    }
    text += "\n## Notes from the task\n\n";
    match finish.handoff.as_deref().map(str::trim) {
        Some(note) if !note.is_empty() => text += &format!("{note}\n"),
        _ => text += "None written.\n",
    }
    text += &format!("\n## Test status\n\n{}\n", finish.outcome);
    Ok(text)
}

/// Preserves a task's branch head and uncommitted work under
/// `refs/orch/<plan>/preserved/<tag>/…` and returns the refs written.
pub fn preserve_task(
    repo: &Repo,
    plan: &str,
    id: &str,
    tag: &str,
    work: Oid,
) -> Result<Vec<String>> {
    let mut kept = Vec::new();
    let branch = names::task_branch(plan, id);
    let branch_head = repo.ref_target(&branch)?;
    // Whatever its checkout holds, whatever its HEAD (a task may have left
    // its branch, or deleted its `.git`), unless the branch or the work
    // branch has it already.
    if let Some(path) = task_checkout(repo, plan, id)? {
        let message = format!("orch: uncommitted work of task {id}");
        let fallback = branch_head.unwrap_or(work);
        if let Some(content) = repo.worktree_content(&path, &message, fallback)? {
            if Some(content) != branch_head && !repo.is_ancestor(content, work) {
                let name = names::preserved(plan, &format!("{tag}/worktrees/{id}"));
                reconcile::create_if_absent(repo, &name, content)?;
                kept.push(name);
            }
        }
    }
    if let Some(head) = branch_head {
        if !repo.is_ancestor(head, work) {
            let name = names::preserved(plan, &format!("{tag}/tasks/{id}"));
            reconcile::create_if_absent(repo, &name, head)?;
            kept.push(name);
        }
    }
    Ok(kept)
}

/// Drops the refs [`preserve_task`] (or a rollback) wrote for a state change
/// that then did not happen (the state branch is still at `read`, the head
/// the command started from): nothing was discarded, so they keep nothing
/// that is not still where it was, and a refused command changes nothing.
pub fn unpreserve(repo: &Repo, plan: &str, read: Oid, names: &[String]) {
    if !matches!(repo.ref_target(&names::state(plan)), Ok(Some(head)) if head == read) {
        return;
    }
    for name in names {
        if let Ok(Some(id)) = repo.ref_target(name) {
            let _ = repo.cas_delete(name, id);
        }
    }
}

/// The checkout git-orch made for a task: whatever is at the path it
/// computes for the task under its own worktree dir (a worktree on the
/// task's branch, one that left it, or one that lost its `.git`). Never a
/// worktree found by its branch: a person may add one on the task's branch
/// to look at it (`git worktree add ../look orch/<plan>/tasks/<task>`),
/// and that one is theirs. Nor the path the state records: a state fetched
/// from elsewhere may name any directory. Worktrees are recycled through
/// the pool by moving them, but a task's own is always at this path while
/// it is the task's.
pub(crate) fn task_checkout(repo: &Repo, plan: &str, id: &str) -> Result<Option<PathBuf>> {
    let path = workspace::task_worktree(repo, plan, id);
    Ok(path.is_dir().then_some(path))
}

/// The worktree git-orch made for a task when git lists it on the task's
/// branch (see [`task_checkout`]); `None` when the branch is checked out
/// only elsewhere, or nowhere.
pub(crate) fn own_worktree_on_branch(repo: &Repo, plan: &str, id: &str) -> Result<Option<PathBuf>> {
    let branch = names::task_branch(plan, id);
    repo.worktree_at_on_branch(&workspace::task_worktree(repo, plan, id), &branch)
}

/// The task branches of a plan that worktrees git-orch did not make have
/// checked out (the main checkout included), by task, with where: those
/// worktrees and the branches under them are left alone. One `git
/// worktree list` for the whole plan; a worktree whose directory is gone
/// (git lists it until pruned) holds nothing to lose.
pub struct Held(std::collections::BTreeMap<String, PathBuf>);

impl Held {
    pub fn of(repo: &Repo, plan: &str) -> Result<Held> {
        let prefix = names::task_branch_prefix(plan);
        let mut held = std::collections::BTreeMap::new();
        for w in repo.worktrees()? {
            let Some(task) = w.branch.as_deref().and_then(|b| b.strip_prefix(&prefix)) else {
                continue;
            };
            if w.path.exists() && !same_path(&w.path, &workspace::task_worktree(repo, plan, task)) {
                held.insert(task.to_string(), w.path);
            }
        }
        Ok(Held(held))
    }

    /// Where a worktree git-orch did not make has task `id`'s branch.
    pub fn by(&self, id: &str) -> Option<&Path> {
        self.0.get(id).map(PathBuf::as_path)
    }
}

/// Whether two paths name one directory (symlinks resolved when both exist).
fn same_path(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The refusal of [`refuse_foreign_checkouts`] and of a recorded worktree
/// path git-orch did not make (exit 2, with its hint), as a type of its
/// own: a runner that meets it stops with it, where another refusal of a
/// claim means another runner took the task first.
#[derive(Debug)]
pub struct ForeignCheckout(anyhow::Error);

impl ForeignCheckout {
    fn error(refusal: anyhow::Error) -> anyhow::Error {
        anyhow::Error::new(ForeignCheckout(refusal))
    }
}

impl std::fmt::Display for ForeignCheckout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for ForeignCheckout {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}

/// Refuses, changing nothing, a command that would remove the checkouts
/// and delete the branches of `ids` while a worktree git-orch did not make
/// has one of those branches checked out: removing it would lose what it
/// holds (its ignored files too), and deleting the branch under it would
/// leave it on a branch that does not exist. git refuses `git branch -D`
/// of such a branch for the same reason.
pub fn refuse_foreign_checkouts<S: AsRef<str>>(repo: &Repo, plan: &str, ids: &[S]) -> Result<()> {
    let held = Held::of(repo, plan)?;
    for id in ids {
        let id = id.as_ref();
        if let Some(path) = held.by(id) {
            let shown = crate::ui::printable(&path.display().to_string());
            return Err(ForeignCheckout::error(refuse_with_hint(
                format!(
                    "task `{id}`'s branch orch/{plan}/tasks/{id} is checked out in `{shown}`, a worktree git-orch did not make, and git-orch neither removes that worktree nor moves the branch under it"
                ),
                format!(
                    "take it off the branch (`git -C {shown} switch --detach`) or remove it yourself (`git worktree remove {shown}`), then run the command again"
                ),
            )));
        }
    }
    Ok(())
}

/// Removes a task's worktree and branch. Call after preserving them. Only
/// the worktree git-orch made for it goes ([`task_checkout`]); a branch
/// that a worktree it did not make has checked out (`held`, read just
/// before) stays: the commands that come here refuse that case first
/// ([`refuse_foreign_checkouts`]), this is for one added meanwhile.
pub fn discard_task_checkout(repo: &Repo, plan: &str, id: &str, held: &Held) -> Result<()> {
    let branch = names::task_branch(plan, id);
    if let Some(path) = task_checkout(repo, plan, id)? {
        repo.remove_worktree(&path)?;
    }
    crate::failpoint!("worktree-removed");
    if held.by(id).is_some() {
        return Ok(());
    }
    if let Some(head) = repo.ref_target(&branch)? {
        match repo.cas_delete(&branch, head) {
            Ok(()) => {}
            Err(e) if e.is::<crate::git::RefRace>() => {}
            Err(e) => return Err(e),
        }
        crate::failpoint!("task-branch-deleted");
    }
    Ok(())
}

/// A unique tag for a batch of preserved refs.
pub fn preserve_tag(kind: &str) -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{kind}-{ms}-{}", std::process::id())
}

/// Plan-level guard used by commands that change things.
pub fn refuse_if_finished(snap: &Snapshot) -> Result<()> {
    if snap.state.finished {
        return Err(refuse(format!("plan `{}` is finished", snap.plan_name)));
    }
    if snap.state.abandoned {
        return Err(refuse_with_hint(
            format!("plan `{}` was abandoned", snap.plan_name),
            format!(
                "its work is kept under refs/orch/{}/preserved/ (`git for-each-ref refs/orch/{}/preserved/`); start a new plan to go on",
                snap.plan_name, snap.plan_name
            ),
        ));
    }
    Ok(())
}
