//! The runner: starts every ready task's command in its own worktree, up to
//! `jobs` at once and never two whose write scopes may overlap, lands each
//! one as it finishes (one landing at a time), checkpoints each phase whose
//! tasks are all settled, and stops starting new work at the first failure.
//! Tasks are claimed by compare-and-swap on the state branch, so several
//! runners on one plan share the work without running a task twice.
//!
//! This file is the loop; one attempt of a task runs in [`attempt`], what
//! becomes of it once its command ended is [`settle`], usage limits and the
//! ledger are [`parking`], and what a runner with nothing running does next
//! (gates, checkpoints, the end, or waiting) is [`next`].

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Result;
use git2::Oid;

use super::agents::{self, AttemptEnd};
use super::checkpoint::CheckpointReport;
use super::tasks::{self, claim_for_this_process, Busy};
use super::workspace;
use crate::error::{refuse, refuse_with_hint};
use crate::git::Repo;
use crate::process::{self, Exit};
use crate::state::{self, names, reconcile, store, transition, Snapshot, TaskStatus};

mod attempt;
mod next;
mod parking;
mod settle;

use attempt::run_task;
pub(crate) use attempt::task_env;
use next::{next_step, Step};
use parking::{due_parked, park, record_usage, Parking};
use settle::{attempt_end, fail_done, fail_forger, interrupted, settle};

pub struct RunOptions {
    pub jobs: usize,
    pub phase: Option<String>,
    pub task: Option<String>,
    /// Failed tasks to run again in the worktrees they failed in, first
    /// (`task retry`, `run --retry-failed`).
    pub retry: Vec<String>,
}

/// What the runner tells its caller as it goes; the caller decides how to show it.
pub trait Observer: Sync {
    fn recovered(&self, task: &str, preserved: &[String]);
    fn started(&self, task: &str, worktree: &std::path::Path);
    fn line(&self, task: &str, line: &str);
    fn finished(&self, task: &str, outcome: &TaskOutcome);
    fn gate_line(&self, gate: &str, line: &str);
    fn gate_started(&self, gate: &str);
    fn checkpointed(&self, report: &CheckpointReport);
    /// The gates of `phase` ran here, but another runner recorded the
    /// phase first: nothing of these runs is recorded.
    fn superseded(&self, phase: &str, runs: &[super::gates::GateRun]);
    fn waiting(&self, why: &str);
    /// A repair made on the way (a ref moved off where the state says it
    /// must be, kept in a ref first).
    fn repaired(&self, note: &str);
    /// A fix-forward attempt of `phase` ended (landed, or why not).
    fn fixed(&self, phase: &str, fix: &super::fix::FixOutcome) {
        let what = match (&fix.landed, &fix.reason) {
            (Some(c), _) => format!(
                "landed at {}; the gates of {phase} run again",
                crate::git::short(*c)
            ),
            (None, Some(r)) => format!("did not land: {r}"),
            (None, None) => "did not land".to_string(),
        };
        self.line(&fix.id, &format!("git-orch: fix {} {what}", fix.id));
    }
    /// Attempt `attempt` of a task failed transiently (`why`); it runs again
    /// in its worktree after `delay` (instead of [`Observer::finished`]).
    /// A task's agent hit a usage limit (`why`): the task is parked, its
    /// worktree kept, until `until` (seconds since the epoch; now when a
    /// fallback agent is free), instead of [`Observer::finished`].
    fn parked(&self, task: &str, until: f64, why: &str) {
        self.line(
            task,
            &format!(
                "git-orch: parked until {} ({why})",
                crate::render::utc_time(until)
            ),
        );
    }
    fn retrying(&self, task: &str, attempt: u32, why: &str, delay: Duration) {
        self.line(
            task,
            &format!(
                "git-orch: attempt {attempt} failed ({why}); retrying in {}",
                crate::render::duration(delay.as_secs_f64())
            ),
        );
    }
}

/// `Interrupted`: stopped by a signal or a closed output, back to pending,
/// its work kept in `kept`.
#[derive(Debug, Clone)]
pub enum TaskOutcome {
    Landed {
        commit: Option<Oid>,
        seconds: f64,
    },
    Failed {
        reason: String,
        log: Option<String>,
    },
    Conflict {
        files: Vec<String>,
    },
    Interrupted {
        reason: String,
        kept: Vec<String>,
    },
    /// Committed, waiting for a person's review (`task approve` / `task reject`).
    Review {
        head: Oid,
    },
}

#[derive(Default)]
pub struct RunReport {
    pub landed: Vec<String>,
    pub failed: Vec<(String, String, Option<String>)>,
    pub conflicts: Vec<(String, Vec<String>)>,
    pub checkpoints: Vec<String>,
    pub gate_failure: Option<String>,
    /// Tasks that have no command: they wait for a person.
    pub manual: Vec<String>,
    /// Tasks waiting in review for a person.
    pub review: Vec<String>,
    /// Fix-forward tasks this run made (`<phase>.fix-<n>`).
    pub fixes: Vec<String>,
    pub finished_plan: bool,
    /// Why the run stopped before its work was done, and the tasks it
    /// stopped (now pending again).
    pub interrupted: Option<process::Stop>,
    pub stopped: Vec<(String, Vec<String>)>,
    /// Checkpoints another machine made during this run, taken as they
    /// are (with `orch.gates = local`: gated here again, and passed).
    pub taken: Vec<String>,
    /// When the run started, and the phases known checkpointed so far.
    pub(crate) started: f64,
    pub(crate) known_checkpoints: BTreeSet<String>,
}

impl RunReport {
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
            && self.conflicts.is_empty()
            && self.gate_failure.is_none()
            && self.interrupted.is_none()
    }
}

struct Done {
    id: String,
    worktree: Option<PathBuf>,
    result: Result<Ran, String>,
    /// The agent the attempt ran with.
    agent: Option<String>,
}

/// A task's command has ended; on success its work is committed at `head`
/// (or committing failed, with why).
struct Ran {
    finished: process::Finished,
    head: Option<Result<Oid, String>>,
    /// What it touched outside its worktree and branch (see [`crate::engine::tamper`]).
    tampered: Vec<String>,
    /// What its command or agent reviewer said of the committed head.
    verdict: Option<crate::engine::review::Verdict>,
    /// What it wrote to `$ORCH_USAGE_RESET_FILE`, if anything.
    reset: Option<String>,
    /// What it wrote to `$ORCH_USAGE_FILE` (at most the ledger's limit, and
    /// whether that was all), if anything.
    usage: Option<(Vec<u8>, bool)>,
    /// What a kind agent's own output said of the attempt.
    report: Option<crate::agent::Report>,
}

pub fn run(
    repo: &Repo,
    plan: &str,
    opts: &RunOptions,
    observer: &dyn Observer,
) -> Result<RunReport> {
    let snap = store::load(repo, plan)?;
    tasks::refuse_if_finished(&snap)?;
    check_selection(&snap, opts)?;
    if snap
        .plan
        .tasks()
        .any(|(_, t)| snap.plan.task_isolation(t) == crate::plan::Isolation::Sandbox)
    {
        crate::sandbox::available()?;
    }
    // A plan's `[worktrees] include` that git does not ignore: refused now.
    super::setup::included_files(repo, &snap.plan)?;
    recover_abandoned(repo, plan, observer)?;

    let mut report = RunReport {
        started: crate::state::now(),
        known_checkpoints: snap
            .plan
            .phases
            .iter()
            .filter(|p| snap.is_checkpointed(&p.id))
            .map(|p| p.id.clone())
            .collect(),
        ..RunReport::default()
    };
    let mut running: BTreeSet<String> = BTreeSet::new();
    let mut stop = false;
    let root = repo.root.clone();
    let (tx, rx) = mpsc::channel::<Done>();

    // Tasks running while the plan was found rewritten, with what was found.
    let mut forged: std::collections::BTreeMap<String, String> = Default::default();
    let mut to_retry: Vec<String> = opts.retry.clone();
    // Conflict resolutions (`on_conflict`) tried per task in this run.
    let mut resolutions: std::collections::BTreeMap<String, u32> = Default::default();
    // Rejected in review by a person since the last run: back to their agent.
    for id in super::review::rejected_to_retry(&store::load(repo, plan)?)? {
        if !to_retry.contains(&id) && opts.task.as_ref().is_none_or(|t| *t == id) {
            to_retry.push(id);
        }
    }
    // Automatic retries (`retries`) waiting for their backoff, with when
    // they are due and the failure each one follows.
    let mut delayed: Vec<(std::time::Instant, String)> = Vec::new();
    let mut pending_retry: std::collections::BTreeMap<String, (String, Option<String>)> =
        Default::default();
    // Shared through a remote (`--remote`): when this runner last fetched;
    // its leases are renewed on a thread of their own (see [`super::remote`]).
    let mut pulled = std::time::Instant::now();
    // A claim lost to another runner's change: pick again at once.
    let mut raced = false;
    let renewing = std::sync::atomic::AtomicBool::new(false);
    // `on_failure = "stop"`: tasks of ours being stopped after a failure,
    // with why.
    let mut halting: std::collections::BTreeMap<String, String> = Default::default();
    // Every task this run claimed: an error after the first is a failure
    // that says what the run had done (see [`changed_before`]).
    let mut claimed_here: Vec<String> = Vec::new();
    std::thread::scope(|scope| -> Result<()> {
        super::remote::spawn_renewer(scope, &root, plan, &renewing);
        let _renewing = super::remote::Done(&renewing);
        loop {
            // A signal or a closed output: start nothing more, wind down.
            stop |= process::stop_requested().is_some();
            let now = std::time::Instant::now();
            delayed.retain(|(due, id)| {
                let waiting = *due > now && !stop;
                if !waiting && !stop {
                    to_retry.push(id.clone());
                }
                waiting
            });
            if running.len() < opts.jobs.max(1) {
                super::remote::pull_if_due(repo, plan, &mut pulled, Duration::from_millis(300))?;
            }
            for (id, kept) in super::remote::take_over_expired(repo, plan)? {
                observer.recovered(&id, &kept);
            }
            suspect_forgery(repo, plan, &running, &mut forged)?;
            // A task being stopped may have started its command since.
            for id in halting.keys().filter(|id| running.contains(*id)) {
                halt(repo, plan, id);
            }
            let snap = match store::load(repo, plan) {
                Ok(snap) => snap,
                // Forged just now, by a task still running.
                Err(e) => match suspect_forgery(repo, plan, &running, &mut forged)? {
                    true => store::load(repo, plan)?,
                    false => return Err(e),
                },
            };
            // `git orch abandon`: stop the tasks (their work is kept) and end.
            if snap.state.abandoned && !stop {
                stop = true;
                process::request_stop(process::Stop::Abandoned);
            }
            if !stop {
                // Retries first, in plan order with everything else after.
                let mut retries: Vec<(String, Kind)> = std::mem::take(&mut to_retry)
                    .into_iter()
                    .map(|id| (id, Kind::Retry))
                    .collect();
                // Parked tasks whose time has come, before fresh work.
                retries.extend(
                    due_parked(&snap, opts, &running)?
                        .into_iter()
                        .map(|id| (id, Kind::Wake)),
                );
                let fresh = startable(&snap, opts, &running, &mut report)?
                    .into_iter()
                    .map(|id| (id, Kind::Fresh));
                raced = false;
                for (id, kind) in retries.into_iter().chain(fresh) {
                    let retry = kind == Kind::Retry;
                    if running.len() >= opts.jobs.max(1) {
                        if retry {
                            to_retry.push(id);
                        }
                        continue;
                    }
                    let (_, task) = tasks::find_task(&snap, &id)?;
                    if snap.plan.task_run(task).is_none() {
                        continue;
                    }
                    // Claim here so the next pick sees it running; the
                    // worktree, the command and its commit happen on the
                    // task's own thread, so tasks never wait for each
                    // other's checkouts. Only landing is one at a time.
                    let claim = claim_for_this_process(false);
                    let claimed = match match kind {
                        Kind::Retry => tasks::claim_retry(repo, plan, &id, claim),
                        Kind::Wake => tasks::claim_parked(repo, plan, &id, claim),
                        Kind::Fresh => tasks::claim_task(repo, plan, &id, claim),
                    } {
                        Ok(c) => c,
                        Err(e) if (e.is::<Busy>() || e.is::<tasks::AgentsBusy>()) && retry => {
                            to_retry.push(id);
                            continue;
                        }
                        Err(e) if e.is::<Busy>() || e.is::<tasks::AgentsBusy>() => {
                            // Another runner changed the state since the
                            // pick: pick again from what it is now.
                            raced |= repo.ref_target(&names::state(plan))? != Some(snap.commit);
                            continue;
                        }
                        // A task another runner or person took meanwhile.
                        Err(e) if e.is::<crate::error::Refusal>() => {
                            pending_retry.remove(&id);
                            raced |= repo.ref_target(&names::state(plan))? != Some(snap.commit);
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    observer.started(&id, &claimed.worktree);
                    claimed_here.push(id.clone());
                    running.insert(id.clone());
                    let tx = tx.clone();
                    let root = root.clone();
                    // The agent the claim chose (the first of the task's
                    // with room), and what it runs.
                    let agent = claimed.snap.task(&id).ok().and_then(|t| t.agent.clone());
                    let command = agents::command(&snap.plan, task, agent.as_deref()).unwrap_or(
                        agents::Command {
                            run: String::new(),
                            env: Vec::new(),
                            timeout: None,
                            kind: None,
                        },
                    );
                    pending_retry.remove(&id);
                    scope.spawn(move || {
                        let result = run_task(&root, &claimed, &command, observer);
                        let _ = tx.send(Done {
                            id,
                            worktree: Some(claimed.worktree.clone()),
                            result,
                            agent,
                        });
                    });
                }
            }
            if raced && running.len() < opts.jobs.max(1) {
                continue;
            }
            if running.is_empty() {
                if process::stop_requested().is_some() {
                    break;
                }
                if !stop && (!delayed.is_empty() || !pending_retry.is_empty()) {
                    // A retry waits for its backoff (or for room to start).
                    let next = delayed.iter().map(|(due, _)| *due).min();
                    let wait = next.map_or(Duration::from_millis(100), |d| {
                        d.saturating_duration_since(std::time::Instant::now())
                    });
                    std::thread::sleep(wait.min(Duration::from_millis(250)));
                    continue;
                }
                let snap = store::load(repo, plan)?;
                match next_step(repo, plan, &snap, opts, &mut report, observer)? {
                    Step::Continue => continue,
                    Step::Stop => break,
                    Step::Wait(why) => {
                        observer.waiting(&why);
                        std::thread::sleep(Duration::from_millis(300));
                        continue;
                    }
                }
            }
            let Ok(done) = rx.recv_timeout(Duration::from_millis(250)) else {
                continue;
            };
            suspect_forgery(repo, plan, &running, &mut forged)?;
            running.remove(&done.id);
            // Its lease expired and another runner took it over meanwhile.
            if let Some(kept) = super::remote::lost(repo, plan, &done.id)? {
                observer.recovered(&done.id, &kept);
                continue;
            }
            if let Some(why) = halting.remove(&done.id).filter(|_| !committed(&done)) {
                let finished = match done.result {
                    Ok(ran) => ran.finished,
                    Err(e) => process::Finished {
                        exit: Exit::NotStarted(e),
                        seconds: 0.0,
                        log: Vec::new(),
                    },
                };
                let outcome = interrupted(repo, plan, done.id, why, &finished)?;
                if let TaskOutcome::Interrupted { kept, .. } = &outcome.1 {
                    report.stopped.push((outcome.0.clone(), kept.clone()));
                }
                observer.finished(&outcome.0, &outcome.1);
                continue;
            }
            let forger = forged.remove(&done.id);
            if let Some(note) = record_usage(repo, plan, &done)? {
                observer.line(&done.id, &note);
            }
            let agent_of = done.agent.clone();
            let mut end = attempt_end(&snap, &done, forger.is_some());
            let mut parked_out = None;
            if let Some((AttemptEnd::UsageLimit(why), agent)) = &end {
                match park(repo, plan, &done, why, agent.as_deref())? {
                    Parking::Parked(until, why) => {
                        observer.parked(&done.id, until, &why);
                        continue;
                    }
                    Parking::TooOften(why) => parked_out = Some(why),
                    Parking::NotRunning => {}
                }
            }
            // Parked as often as it may be: it fails, and is not retried.
            if parked_out.is_some() {
                end = None;
            }
            let mut outcome = match (forger, parked_out) {
                (Some(why), _) => fail_forger(repo, plan, done, why)?,
                (None, Some(why)) => fail_done(repo, plan, done, why)?,
                (None, None) => settle(repo, plan, done, observer)?,
            };
            // A landing conflict goes to the `on_conflict` agent first.
            if let TaskOutcome::Conflict { files } = outcome.1.clone() {
                let tried = resolutions.entry(outcome.0.clone()).or_insert(0);
                if !stop && super::resolve::may_resolve(repo, plan, &outcome.0, *tried) {
                    *tried += 1;
                    let on_line = |t: &str, l: &str| observer.line(t, l);
                    match super::resolve::resolve(repo, plan, &outcome.0, &files, &on_line)? {
                        super::resolve::Resolved::Landed { commit, seconds } => {
                            outcome.1 = TaskOutcome::Landed { commit, seconds }
                        }
                        super::resolve::Resolved::Not(why) => observer.line(
                            &outcome.0,
                            &format!("git-orch: the resolution did not land: {why}"),
                        ),
                    }
                }
            }
            if let TaskOutcome::Failed { reason, .. } = &outcome.1 {
                // A rejection in review goes back to the task's agent.
                if super::review::is_rejection(reason) {
                    end = Some((AttemptEnd::Transient(reason.clone()), agent_of));
                }
            }
            if let (TaskOutcome::Failed { reason, log }, Some((end, agent))) = (&outcome.1, &end) {
                let id = &outcome.0;
                let attempt = store::load(repo, plan)?.task(id)?.attempts;
                let policy = tasks::find_task(&snap, id)
                    .map(|(_, t)| snap.plan.retry_policy(t, agent.as_deref()))
                    .ok();
                let delay = policy.and_then(|p| agents::retry_after(end, attempt, &p));
                if let (Some(delay), false) = (delay, stop) {
                    observer.retrying(id, attempt, reason, delay);
                    delayed.push((std::time::Instant::now() + delay, id.clone()));
                    pending_retry.insert(id.clone(), (reason.clone(), log.clone()));
                    continue;
                }
            }
            // What a failure does to the rest of the run (`on_failure`).
            let on_failure = snap
                .plan
                .task(&outcome.0)
                .map(|(p, _)| snap.plan.on_failure(&p.id))
                .unwrap_or_default();
            if matches!(
                outcome.1,
                TaskOutcome::Failed { .. } | TaskOutcome::Conflict { .. }
            ) && on_failure == crate::plan::OnFailure::Stop
            {
                let why = format!("stopped: task {} failed (on_failure = \"stop\")", outcome.0);
                for id in &running {
                    halting.insert(id.clone(), why.clone());
                    halt(repo, plan, id);
                }
            }
            let drain = on_failure != crate::plan::OnFailure::Continue;
            match &outcome.1 {
                TaskOutcome::Landed { .. } => report.landed.push(outcome.0.clone()),
                TaskOutcome::Failed { reason, log } => {
                    stop |= drain;
                    report
                        .failed
                        .push((outcome.0.clone(), reason.clone(), log.clone()));
                }
                TaskOutcome::Conflict { files } => {
                    stop |= drain;
                    report.conflicts.push((outcome.0.clone(), files.clone()));
                }
                TaskOutcome::Interrupted { kept, .. } => {
                    stop = true;
                    report.stopped.push((outcome.0.clone(), kept.clone()));
                }
                TaskOutcome::Review { .. } => {}
            }
            observer.finished(&outcome.0, &outcome.1);
        }
        // Retries that never ran (the run stopped first) stay failed.
        for (id, (reason, log)) in std::mem::take(&mut pending_retry) {
            report.failed.push((id, reason, log));
        }
        Ok(())
    })
    .map_err(|e| changed_before(e, &report, &claimed_here))?;
    repo.maintain();
    report.interrupted = process::stop_requested();
    Ok(report)
}

/// An error met after the run had changed the state (claimed a task,
/// landed one, …) is not "nothing changed": it exits 1, saying what the
/// run had done (a full disk after three landings, say).
fn changed_before(err: anyhow::Error, report: &RunReport, claimed: &[String]) -> anyhow::Error {
    let mut done = Vec::new();
    let list = |what: &str, ids: &[String]| match ids.len() {
        n if n > 10 => format!("{what} {} and {} more", ids[..10].join(", "), n - 10),
        _ => format!("{what} {}", ids.join(", ")),
    };
    if !report.landed.is_empty() {
        done.push(list("landed", &report.landed));
    }
    let failed: Vec<String> = report.failed.iter().map(|(id, _, _)| id.clone()).collect();
    if !failed.is_empty() {
        done.push(list("failed", &failed));
    }
    if !report.checkpoints.is_empty() {
        done.push(list("checkpointed", &report.checkpoints));
    }
    // Claimed more than once (a retry, a wake) counts once.
    let mut seen: BTreeSet<&String> = report.landed.iter().chain(&failed).collect();
    let open: Vec<String> = claimed
        .iter()
        .filter(|id| seen.insert(id))
        .cloned()
        .collect();
    if !open.is_empty() {
        done.push(list("claimed", &open));
    }
    if done.is_empty() {
        return err;
    }
    anyhow::Error::new(crate::error::AfterCommit {
        done: format!("run: {}", done.join("; ")),
        cause: err,
    })
}

/// Stops a task's command now (`on_failure = "stop"`), by the process
/// group it recorded; one not started yet is stopped on a later call.
fn halt(repo: &Repo, plan: &str, id: &str) {
    if let Ok(record) = std::fs::read_to_string(workspace::pgid_file(repo, plan, id)) {
        process::kill_recorded_group(&record);
    }
}

/// Whether an attempt's command succeeded and its work was committed: it
/// lands even when the run is stopping.
fn committed(done: &Done) -> bool {
    done.result
        .as_ref()
        .is_ok_and(|r| r.finished.exit.success() && matches!(r.head, Some(Ok(_))))
}

/// What a claim in the runner's loop takes: a fresh pending task, a failed
/// one again in its worktree, or a parked one whose time has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fresh,
    Retry,
    Wake,
}

/// Ready tasks this runner may start now, in plan order, respecting scopes
/// against everything already running (here or elsewhere).
fn startable(
    snap: &Snapshot,
    opts: &RunOptions,
    running: &BTreeSet<String>,
    _report: &mut RunReport,
) -> Result<Vec<String>> {
    let only = super::schedule::Selection {
        phase: opts.phase.as_deref(),
        task: opts.task.as_deref(),
    };
    super::schedule::schedule(snap, running, only, opts.jobs)
}

fn check_selection(snap: &Snapshot, opts: &RunOptions) -> Result<()> {
    if let Some(phase) = &opts.phase {
        let index = snap.plan.phase_index(phase).ok_or_else(|| {
            refuse_with_hint(
                format!("plan `{}` has no phase `{phase}`", snap.plan_name),
                "see `git orch status`",
            )
        })?;
        if snap.is_checkpointed(phase) {
            return Err(refuse(format!("phase `{phase}` is already checkpointed")));
        }
        if let Some(open) = snap.plan.phases[..index]
            .iter()
            .find(|p| !snap.is_checkpointed(&p.id))
        {
            return Err(refuse_with_hint(
                format!(
                    "phase `{phase}` cannot run: the earlier phase `{}` is not checkpointed",
                    open.id
                ),
                format!("run `git orch run --phase {}` first", open.id),
            ));
        }
    }
    for id in &opts.retry {
        let (_, task) = tasks::find_task(snap, id)?;
        tasks::refuse_unless_retryable(snap, id, &snap.task(id)?)?;
        if snap.plan.task_run(task).is_none() {
            return Err(refuse_with_hint(
                format!("task `{id}` has no `run` command to run again"),
                format!("work on it by hand in its worktree: `git orch task retry {id} --by-hand`, then `git orch task done {id}`"),
            ));
        }
    }
    if let Some(id) = opts.task.as_ref().filter(|id| !opts.retry.contains(id)) {
        let (phase, task) = tasks::find_task(snap, id)?;
        let status = snap.task_status(id)?;
        if status != TaskStatus::Pending {
            return Err(refuse_with_hint(
                format!("task `{id}` is {}, not pending", status.as_str()),
                format!("`git orch task reset {id}` makes it pending again"),
            ));
        }
        if let Some(reason) = snap.blocked_reason(task, phase)? {
            return Err(refuse(format!("task `{id}` cannot run: {reason}")));
        }
        if snap.plan.task_run(task).is_none() {
            return Err(refuse_with_hint(
                format!("task `{id}` has no `run` command"),
                format!("do it by hand: `git orch task start {id}`"),
            ));
        }
    }
    Ok(())
}

/// Repairs a plan rewritten on the state branch while tasks of ours run,
/// and marks them all: one of them did it (see [`super::tamper`]).
fn suspect_forgery(
    repo: &Repo,
    plan: &str,
    running: &BTreeSet<String>,
    forged: &mut std::collections::BTreeMap<String, String>,
) -> Result<bool> {
    if running.is_empty() {
        return Ok(false);
    }
    let Some(found) = super::tamper::restore_forged_plan(repo, plan)? else {
        return Ok(false);
    };
    for id in running {
        forged.entry(id.clone()).or_insert_with(|| found.clone());
    }
    Ok(true)
}

/// Whether `id` is claimed by a runner of this host that is gone.
fn abandoned(snap: &Snapshot, id: &str) -> Result<bool> {
    Ok(snap
        .tasks
        .get(id)?
        .is_some_and(|t| super::runner::abandoned(&t)))
}

/// Finds tasks claimed by runners that are gone (same host, process dead),
/// stops what they left running, preserves their work, and makes them
/// pending again so this run picks them up.
pub fn recover_abandoned(repo: &Repo, plan: &str, observer: &dyn Observer) -> Result<Vec<String>> {
    let snap = store::load(repo, plan)?;
    let work = snap.state.work.oid();
    let mut recovered = Vec::new();
    for id in &snap.state.active {
        let t = snap.task(id)?;
        let Some(claim) = t.claim() else { continue };
        if !super::runner::abandoned(&t) {
            continue;
        }
        let pgid_file = workspace::pgid_file(repo, plan, id);
        if let Ok(record) = std::fs::read_to_string(&pgid_file) {
            process::kill_recorded_group(&record);
            let _ = std::fs::remove_file(&pgid_file);
        }
        // An attempt killed inside a git command (it dies with its runner)
        // leaves its index, HEAD or branch locked; none of its processes,
        // nor the runner that acted for it, is left to hold them.
        repo.remove_dead_ref_lock(&names::task_branch(plan, id));
        // Of the task's own worktree only: a person's on the same branch may
        // be in the middle of a git command of theirs.
        if let Some(path) = tasks::own_worktree_on_branch(repo, plan, id)? {
            // Its admin dir as git-orch knows it, never through its `.git`,
            // which the task may have pointed at a person's checkout.
            if let Some(dir) = repo.admin_dir_of(&path) {
                for lock in [
                    "index.lock",
                    "HEAD.lock",
                    "AUTO_MERGE.lock",
                    "ORIG_HEAD.lock",
                ] {
                    let _ = std::fs::remove_file(dir.join(lock));
                }
            }
        }
        let _ = std::fs::remove_file(workspace::parking_marker(repo, plan, id));
        let tag = tasks::preserve_tag(&format!("resume-{id}"));
        let kept = tasks::preserve_task(repo, plan, id, &tag, work)?;
        crate::failpoint!("recover-preserved");
        let claimed = claim.clone();
        store::transact(repo, plan, |s, change| {
            let still = s.task(id)?.claim() == Some(&claimed);
            if !still {
                return Ok(());
            }
            let t = change.task(id)?;
            let reason = format!("recovered after its runner (pid {}) died", claimed.pid);
            let t = transition::interrupt(&t, reason, None).map_err(|w| w.about(id))?;
            let attempt = t.attempts;
            change.put_task(id, t);
            change.event = Some(state::Event::TaskRecovered {
                task: id.to_string(),
                attempt,
                reason: format!("runner pid {} gone", claimed.pid),
                at: state::now(),
            });
            Ok(())
        })?;
        crate::failpoint!("recover-committed");
        // The worktree is recycled when the task starts again; its branch is
        // reset there from the work branch.
        if let Some(path) = tasks::own_worktree_on_branch(repo, plan, id)? {
            let _ = repo.task_git(&path, &["reset", "-q", "--hard"]);
            let _ = repo.task_git(&path, &["clean", "-q", "-fd"]);
            let _ = workspace::park(repo, plan, &path);
        }
        observer.recovered(id, &kept);
        recovered.push(id.clone());
    }
    let snap = store::load(repo, plan)?;
    if let Err(e) = reconcile::reconcile(repo, &snap) {
        // A lock on a recovered task's branch that outlived the ref lock's
        // patience (seconds) is no live writer's: the dead runner's, or a
        // git process of its that died with it. The task is pending now;
        // only git-orch writes its branch, under the plan's writer lock.
        if recovered.is_empty() || !e.chain().any(|c| c.is::<crate::git::RefLocked>()) {
            return Err(e);
        }
        for id in &recovered {
            repo.remove_dead_ref_lock(&names::task_branch(plan, id));
        }
        reconcile::reconcile(repo, &store::load(repo, plan)?)?;
    }
    let mut settled: Vec<&str> = Vec::new();
    for (_, t) in snap.plan.tasks() {
        if snap.task_status(&t.id)?.is_settled() {
            settled.push(t.id.as_str());
        }
    }
    workspace::tidy(repo, plan, &settled);
    Ok(recovered)
}
