//! The runner: starts every ready task's command in its own worktree, up to
//! `jobs` at once and never two whose write scopes may overlap, lands each
//! one as it finishes (one landing at a time), checkpoints each phase whose
//! tasks are all settled, and stops starting new work at the first failure.
//! Tasks are claimed by compare-and-swap on the state branch, so several
//! runners on one plan share the work without running a task twice.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Result;
use git2::Oid;

use super::agents::{self, AttemptEnd};
use super::checkpoint::{self, CheckpointReport};
use super::gates::GateOptions;
use super::tasks::{self, claim_for_this_process, Busy, Finish, Landed};
use super::workspace;
use crate::error::{refuse, refuse_with_hint};
use crate::git::Repo;
use crate::process::{self, Exit, Job};
use crate::state::{self, names, reconcile, store, transition, Snapshot, TaskStatus};

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
    /// What it touched outside its worktree and branch (see [`super::tamper`]).
    tampered: Vec<String>,
    /// What its command or agent reviewer said of the committed head.
    verdict: Option<super::review::Verdict>,
    /// What it wrote to `$ORCH_USAGE_RESET_FILE`, if anything.
    reset: Option<String>,
    /// What it wrote to `$ORCH_USAGE_FILE` (at most the ledger's limit, and
    /// whether that was all), if anything.
    usage: Option<(Vec<u8>, bool)>,
}

/// The task's own thread: worktree, command, commit.
fn run_task(
    root: &std::path::Path,
    claimed: &tasks::Claimed,
    command: &agents::Command,
    observer: &dyn Observer,
) -> Result<Ran, String> {
    let repo = Repo::discover(root).map_err(|e| format!("{e:#}"))?;
    let plan = claimed.snap.plan_name.as_str();
    let id = claimed.id.as_str();
    let begun = tasks::prepare(&repo, claimed, true).map_err(|e| format!("{e:#}"))?;
    if let Some(kept) = &begun.kept {
        observer.line(
            &claimed.id,
            &format!(
                "git-orch: kept what an earlier attempt left in this worktree's place in {kept}"
            ),
        );
    }
    let phase = claimed
        .snap
        .plan
        .task(id)
        .map(|(p, _)| p.id.clone())
        .unwrap_or_default();
    let watch = super::tamper::Watch::take(&repo, plan, id).map_err(|e| format!("{e:#}"))?;
    // The agent's own variables first: the task's (ORCH_*) win.
    let mut env = command.env.clone();
    env.extend(task_env(
        &repo,
        plan,
        &phase,
        id,
        &begun.worktree,
        begun.base,
    ));
    let mut live = workspace::LiveLog::create(&repo, plan, id);
    // A new worktree's included files and setup (a recycled one has them).
    let setup_log = match super::setup::ensure(
        &repo,
        &claimed.snap.plan,
        &begun.worktree,
        env.clone(),
        Some(workspace::pgid_file(&repo, plan, id)),
        &mut |line| {
            live.line(line);
            observer.line(id, line);
        },
    )
    .map_err(|e| format!("{e:#}"))?
    {
        super::setup::Setup::Ready => Vec::new(),
        super::setup::Setup::MadeReady { log } => log,
        super::setup::Setup::Failed {
            reason,
            mut finished,
        } => {
            if !matches!(finished.exit, Exit::Stopped(_)) {
                finished.exit = Exit::NotStarted(reason);
            }
            return Ok(Ran {
                finished,
                head: None,
                tampered: Vec::new(),
                verdict: None,
                reset: None,
                usage: None,
            });
        }
    };
    let sandbox = sandbox_for(&repo, claimed, &begun.worktree).map_err(|e| format!("{e:#}"))?;
    if let Some(s) = &sandbox {
        env.push(("TMPDIR".into(), s.tmp.display().to_string()));
    }
    let reset_file = workspace::reset_file(&repo, plan, id);
    let _ = std::fs::remove_file(&reset_file);
    let usage_file = workspace::usage_file(&repo, plan, id);
    let _ = std::fs::remove_file(&usage_file);
    let job = Job {
        command: &command.run,
        dir: &begun.worktree,
        env,
        timeout: command.timeout,
        pgid_file: Some(workspace::pgid_file(&repo, plan, id)),
        contain: true,
        wrap: sandbox.as_ref().map(|s| s.args.clone()),
    };
    let mut finished = process::run(&job, |line| {
        live.line(line);
        observer.line(id, line);
    });
    if !setup_log.is_empty() {
        finished.log.splice(0..0, setup_log);
    }
    let reset = read_capped(&reset_file, agents::RESET_FILE_LIMIT);
    let _ = std::fs::remove_file(&reset_file);
    let usage =
        read_capped_bytes(&usage_file, super::ledger::USAGE_LIMIT as u64 + 1).map(|mut b| {
            let whole = b.len() <= super::ledger::USAGE_LIMIT;
            b.truncate(super::ledger::USAGE_LIMIT);
            (b, whole)
        });
    let _ = std::fs::remove_file(&usage_file);
    let mut tampered = watch
        .check(&repo)
        .unwrap_or_else(|e| vec![format!("cannot be checked: {e:#}")]);
    if let Some(s) = sandbox {
        if let Err(e) = s.finish(&repo) {
            tampered.push(format!("its worktree's HEAD cannot be followed: {e:#}"));
        }
    }
    let head = finished.exit.success().then(|| {
        let started = std::time::Instant::now();
        let head = repo
            .commit_all(&begun.worktree, &format!("{id}: work of git-orch task"))
            .map_err(|e| format!("{e:#}"));
        crate::trace::step("commit", started);
        head
    });
    crate::failpoint!("task-committed");
    // Reviewed before it lands: an automatic reviewer runs here, on the
    // committed head, in the task's own thread.
    let verdict = match (&head, claimed.snap.plan.task(id)) {
        (Some(Ok(h)), Some((_, task))) if tampered.is_empty() => super::review::run_reviewer(
            &repo,
            &claimed.snap.plan,
            plan,
            task,
            &begun.worktree,
            task_env(&repo, plan, &phase, id, &begun.worktree, begun.base),
            begun.base,
            *h,
            &mut |line| observer.line(id, line),
        ),
        _ => None,
    };
    Ok(Ran {
        finished,
        head,
        tampered,
        verdict,
        reset,
        usage,
    })
}

/// At most `limit` bytes of a file a task wrote, as text; `None` when it
/// is not there (or is not a regular file).
fn read_capped(path: &std::path::Path, limit: u64) -> Option<String> {
    read_capped_bytes(path, limit).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn read_capped_bytes(path: &std::path::Path, limit: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(limit)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

/// The sandbox of a task with `isolation = "sandbox"`.
fn sandbox_for(
    repo: &Repo,
    claimed: &tasks::Claimed,
    worktree: &std::path::Path,
) -> Result<Option<crate::sandbox::Sandbox>> {
    let plan = &claimed.snap.plan;
    let Some((_, task)) = plan.task(&claimed.id) else {
        return Ok(None);
    };
    if plan.task_isolation(task) != crate::plan::Isolation::Sandbox {
        return Ok(None);
    }
    let name = claimed.snap.plan_name.as_str();
    crate::sandbox::Sandbox::new(
        repo,
        name,
        &claimed.id,
        worktree,
        &workspace::handoff_file(repo, name, &claimed.id),
        plan.task_network(task),
    )
    .map(Some)
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

    let mut report = RunReport::default();
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
                            raced |= store::load(repo, plan)?.commit != snap.commit;
                            continue;
                        }
                        // A task another runner or person took meanwhile.
                        Err(e) if e.is::<crate::error::Refusal>() => {
                            pending_retry.remove(&id);
                            raced |= store::load(repo, plan)?.commit != snap.commit;
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    observer.started(&id, &claimed.worktree);
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
            if let Some((AttemptEnd::UsageLimit(why), agent)) = &end {
                if let Some((until, why)) = park(repo, plan, &done, why, agent.as_deref())? {
                    observer.parked(&done.id, until, &why);
                    continue;
                }
            }
            let mut outcome = match forger {
                Some(why) => fail_forger(repo, plan, done, why)?,
                None => settle(repo, plan, done, observer)?,
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
    })?;
    repo.maintain();
    report.interrupted = process::stop_requested();
    Ok(report)
}

/// How an attempt's command ended, with the agent it ran with, when its
/// failure may be retried: the command itself failed (not its commit, a
/// tampering check or a forged plan).
fn attempt_end(snap: &Snapshot, done: &Done, forged: bool) -> Option<(AttemptEnd, Option<String>)> {
    let ran = done.result.as_ref().ok()?;
    if forged || !ran.tampered.is_empty() || ran.finished.exit.success() {
        return None;
    }
    let (_, task) = snap.plan.task(&done.id)?;
    let policy = snap.plan.retry_policy(task, done.agent.as_deref());
    let (exit, log) = (&ran.finished.exit, &ran.finished.log);
    if agents::usage_limited(&snap.plan, done.agent.as_deref(), exit, log) {
        let why = format!("{} (usage limit)", exit.describe());
        return Some((AttemptEnd::UsageLimit(why), done.agent.clone()));
    }
    let end = agents::classify(exit, log, policy.on.as_ref());
    Some((end, done.agent.clone()))
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

/// Parked tasks (of the selection) whose wake time has passed, in plan order.
fn due_parked(
    snap: &Snapshot,
    opts: &RunOptions,
    running: &BTreeSet<String>,
) -> Result<Vec<String>> {
    let now = state::now();
    let mut due = Vec::new();
    for (phase, task) in snap.plan.tasks() {
        if !snap.state.active.contains(&task.id)
            || running.contains(&task.id)
            || opts.task.as_ref().is_some_and(|t| *t != task.id)
            || opts.phase.as_ref().is_some_and(|p| *p != phase.id)
        {
            continue;
        }
        let t = snap.task(&task.id)?;
        if t.parked_until().is_some_and(|u| u <= now) {
            due.push(task.id.clone());
        }
    }
    Ok(due)
}

/// Records what an attempt's usage file said on its task (one state
/// commit, only when it wrote one); a file that could not be read is
/// noted, and the note returned for the task's output.
fn record_usage(repo: &Repo, plan: &str, done: &Done) -> Result<Option<String>> {
    let Ok(Ran {
        usage: Some((bytes, whole)),
        ..
    }) = &done.result
    else {
        return Ok(None);
    };
    let id = done.id.as_str();
    let mut note = None;
    store::transact(repo, plan, |snap, change| {
        if snap.task_status(id)? != TaskStatus::Running {
            return Ok(());
        }
        let t = change.task(id)?;
        let attempt = t.attempts.max(1);
        let u = super::ledger::parse(bytes, *whole, attempt, done.agent.as_deref());
        note = u
            .error
            .as_ref()
            .map(|e| format!("git-orch: {e} (see ORCH_USAGE_FILE in the README)"));
        change.event = Some(state::Event::TaskUsage {
            task: id.to_string(),
            attempt,
            agent: u.agent.clone(),
            tokens_in: u.tokens_in,
            tokens_out: u.tokens_out,
            cost_usd: u.cost_usd,
            model: u.model.clone(),
            error: u.error.clone(),
            at: state::now(),
        });
        change.put_task(id, transition::note_usage(&t, u));
        Ok(())
    })?;
    Ok(note)
}

/// Parks a task whose agent hit a usage limit (one state commit): the
/// agent is marked limited until its reset time, and the task waits,
/// worktree kept, until the first of its agents is free again (now, when a
/// fallback is). `None` when the task is no longer running here.
fn park(
    repo: &Repo,
    plan: &str,
    done: &Done,
    why: &str,
    agent: Option<&str>,
) -> Result<Option<(f64, String)>> {
    let Ok(ran) = &done.result else {
        return Ok(None);
    };
    let id = done.id.as_str();
    let mut parked = None;
    store::transact(repo, plan, |snap, change| {
        if snap.task_status(id)? != TaskStatus::Running {
            return Ok(());
        }
        let at = state::now();
        let reset = agents::reset_time(&snap.plan, agent, ran.reset.as_deref(), at);
        if let Some(a) = agent {
            let e = change.state.limited.entry(a.to_string()).or_insert(reset);
            *e = e.max(reset);
        }
        // Limits that have passed are forgotten.
        change.state.limited.retain(|_, u| *u > at);
        let names = snap
            .plan
            .task(id)
            .map(|(_, t)| snap.plan.task_agents(t).to_vec())
            .unwrap_or_default();
        let until = if names.is_empty() {
            reset
        } else {
            names
                .iter()
                .map(|n| change.state.limited.get(n).copied().unwrap_or(at))
                .fold(f64::INFINITY, f64::min)
        };
        let reason = match agent {
            Some(a) => format!("agent {a} hit its usage limit: {why}"),
            None => format!("usage limit: {why}"),
        };
        let t = change.task(id)?;
        let attempt = t.attempts.max(1);
        let path = state::layout::task_log(id, attempt);
        let t = transition::park(
            &t,
            until,
            reason.clone(),
            at,
            Some(ran.finished.seconds),
            Some(path.clone()),
        )
        .map_err(|w| w.about(id))?;
        change.put_task(id, t);
        change.file(path.clone(), ran.finished.log.clone());
        change.event = Some(state::Event::TaskParked {
            task: id.to_string(),
            attempt,
            agent: agent.map(str::to_string),
            until,
            reason: reason.clone(),
            log: Some(path),
            at,
        });
        parked = Some((until, reason));
        Ok(())
    })?;
    Ok(parked)
}

enum Step {
    Continue,
    Stop,
    Wait(String),
}

/// With nothing of ours running: checkpoint, finish, wait for others, or stop.
fn next_step(
    repo: &Repo,
    plan: &str,
    snap: &Snapshot,
    opts: &RunOptions,
    report: &mut RunReport,
    observer: &dyn Observer,
) -> Result<Step> {
    if !report.ok() {
        return Ok(Step::Stop);
    }
    if let Some(task) = &opts.task {
        let waiting = match snap.task_status(task)? {
            TaskStatus::Pending => report.landed.is_empty(),
            // A retry that lost a scope race waits its turn.
            TaskStatus::Failed => opts.retry.contains(task) && report.failed.is_empty(),
            TaskStatus::Parked => true,
            _ => false,
        };
        return Ok(if waiting {
            Step::Wait(format!("task {task} is busy"))
        } else {
            Step::Stop
        });
    }
    let Some(phase) = snap.current_phase().cloned() else {
        report.finished_plan = true;
        return Ok(Step::Stop);
    };
    // `--phase`: done once that phase is no longer the current one (we or
    // someone else checkpointed it, or a rollback went behind it).
    if opts.phase.as_deref().is_some_and(|p| p != phase.id) {
        return Ok(Step::Stop);
    }
    let open = snap.unsettled_tasks(&phase)?;
    if open.is_empty() {
        let gate_line = |g: &str, l: &str| observer.gate_line(g, l);
        let gate_started = |g: &str| observer.gate_started(g);
        let gopts = GateOptions {
            no_cache: false,
            jobs: 1,
            on_line: &gate_line,
            on_start: &gate_started,
        };
        let cp = match checkpoint::checkpoint(repo, plan, Some(&phase.id), &gopts) {
            Ok(cp) => cp,
            // Another runner (or a person) changed the plan meanwhile, most
            // often by checkpointing this very phase: look again.
            Err(e)
                if e.is::<crate::error::Refusal>()
                    && store::load(repo, plan)?.commit != snap.commit =>
            {
                return Ok(Step::Continue)
            }
            Err(e) => return Err(e),
        };
        observer.checkpointed(&cp);
        if !cp.passed {
            // Fix-forward (`on_gate_failure`): a fix task lands on the work
            // head and the gates run again, up to its attempts.
            let on_line = |t: &str, l: &str| observer.line(t, l);
            if let Some(fix) = super::fix::fix_forward(repo, plan, &phase.id, &on_line)? {
                observer.fixed(&phase.id, &fix);
                report.fixes.push(fix.id.clone());
                return Ok(Step::Continue);
            }
            report.gate_failure = Some(phase.id.clone());
            return Ok(Step::Stop);
        }
        report.checkpoints.push(phase.id.clone());
        // Between phases nothing of this runner moves a worktree.
        repo.maintain();
        return Ok(Step::Continue);
    }
    let mut records = Vec::new();
    for t in &open {
        records.push((t, snap.task(&t.id)?));
    }
    let stuck: Vec<_> = records
        .iter()
        .filter(|(_, r)| matches!(r.state(), TaskStatus::Failed | TaskStatus::Conflict))
        .collect();
    if !stuck.is_empty() {
        for (t, r) in stuck {
            let reason = r
                .reason()
                .map_or_else(|| r.state().as_str().to_string(), str::to_string);
            if r.state() == TaskStatus::Conflict {
                report.conflicts.push((t.id.clone(), Vec::new()));
            } else {
                report.failed.push((t.id.clone(), reason, r.log.clone()));
            }
        }
        return Ok(Step::Stop);
    }
    let others: Vec<&str> = records
        .iter()
        .filter(|(_, r)| r.state() == TaskStatus::Running)
        .map(|(t, _)| t.id.as_str())
        .collect();
    let manual: Vec<String> = records
        .iter()
        .filter(|(t, r)| r.state() == TaskStatus::Pending && snap.plan.task_run(t).is_none())
        .map(|(t, _)| t.id.clone())
        .collect();
    let manual_running = records
        .iter()
        .filter(|(_, r)| r.state() == TaskStatus::Running)
        .all(|(_, r)| r.claim().is_some_and(|c| c.manual));
    if !others.is_empty() && !manual_running {
        // A runner that died while we wait leaves its claims behind: take
        // its tasks over rather than wait for it forever.
        let mut any_abandoned = false;
        for id in &others {
            any_abandoned |= abandoned(snap, id)?;
        }
        if any_abandoned {
            recover_abandoned(repo, plan, observer)?;
            return Ok(Step::Continue);
        }
        let host = process::hostname();
        let remote: Vec<String> = records
            .iter()
            .filter(|(_, r)| r.state() == TaskStatus::Running)
            .filter_map(|(t, r)| {
                let claim = r.claim()?;
                (claim.host != host).then(|| format!("{} (on {})", t.id, claim.host))
            })
            .collect();
        let hint = if remote.is_empty() {
            String::new()
        } else {
            format!(
                "; a runner on another machine cannot be checked from here: if it is gone for good, `git orch task reset --force ID` for {}",
                remote.join(", ")
            )
        };
        return Ok(Step::Wait(format!(
            "waiting for tasks run elsewhere: {}{hint}",
            others.join(", ")
        )));
    }
    let parked: Vec<(String, f64)> = records
        .iter()
        .filter_map(|(t, r)| r.parked_until().map(|u| (t.id.clone(), u)))
        .collect();
    if let Some(first) = parked.iter().map(|(_, u)| *u).min_by(f64::total_cmp) {
        let ids: Vec<&str> = parked.iter().map(|(id, _)| id.as_str()).collect();
        return Ok(Step::Wait(format!(
            "waiting until {} for parked task(s) {} (a usage limit); Ctrl-C stops, and a later `git orch run {plan}` resumes them",
            crate::render::utc_time(first),
            ids.join(", ")
        )));
    }
    let limited = agents::limited_now(snap);
    if let Some((agent, until)) = limited.iter().min_by(|a, b| a.1.total_cmp(b.1)) {
        let pending: Vec<&str> = records
            .iter()
            .filter(|(t, r)| {
                r.state() == TaskStatus::Pending
                    && !snap.plan.task_agents(t).is_empty()
                    && snap
                        .plan
                        .task_agents(t)
                        .iter()
                        .all(|a| limited.contains_key(a))
            })
            .map(|(t, _)| t.id.as_str())
            .collect();
        if !pending.is_empty() {
            return Ok(Step::Wait(format!(
                "waiting until {} for agent {agent} (at its usage limit) to run {}; Ctrl-C stops, and a later `git orch run {plan}` goes on",
                crate::render::utc_time(*until),
                pending.join(", ")
            )));
        }
    }
    let in_review: Vec<String> = records
        .iter()
        .filter(|(_, r)| r.state() == TaskStatus::Review)
        .map(|(t, _)| t.id.clone())
        .collect();
    let ready_others = snap
        .plan
        .phase(&phase.id)
        .map(|p| {
            p.tasks.iter().any(|t| {
                snap.task_status(&t.id).ok() == Some(TaskStatus::Pending)
                    && snap.plan.task_run(t).is_some()
                    && snap.blocked_reason(t, &phase).ok().flatten().is_none()
            })
        })
        .unwrap_or(false);
    if !in_review.is_empty() && others.is_empty() && !ready_others {
        report.review = in_review;
        report.manual = manual;
        return Ok(Step::Stop);
    }
    let waiting_on_people: Vec<String> = manual
        .into_iter()
        .chain(others.iter().map(|s| s.to_string()))
        .collect();
    if !waiting_on_people.is_empty() {
        report.manual = waiting_on_people;
        return Ok(Step::Stop);
    }
    Ok(Step::Wait("waiting for ready tasks".to_string()))
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

/// The SPEC §4 environment.
pub(crate) fn task_env(
    repo: &Repo,
    plan: &str,
    phase: &str,
    id: &str,
    worktree: &std::path::Path,
    base: Oid,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("ORCH_PLAN".into(), plan.into()),
        ("ORCH_PHASE".into(), phase.into()),
        ("ORCH_TASK".into(), id.into()),
        ("ORCH_WORKTREE".into(), worktree.display().to_string()),
        ("ORCH_REPO".into(), repo.root.display().to_string()),
        ("ORCH_BASE".into(), base.to_string()),
        (
            "ORCH_TASK_FILE".into(),
            workspace::task_file(repo, plan, id).display().to_string(),
        ),
        (
            "ORCH_HANDOFF_FILE".into(),
            workspace::handoff_file(repo, plan, id)
                .display()
                .to_string(),
        ),
        (
            "ORCH_USAGE_FILE".into(),
            workspace::usage_file(repo, plan, id).display().to_string(),
        ),
        (
            "ORCH_USAGE_RESET_FILE".into(),
            workspace::reset_file(repo, plan, id).display().to_string(),
        ),
    ];
    env.extend(crate::git::no_auto_maintenance_env());
    env
}

/// Lands a finished task or records its failure (one state commit).
fn settle(
    repo: &Repo,
    plan: &str,
    done: Done,
    observer: &dyn Observer,
) -> Result<(String, TaskOutcome)> {
    let id = done.id;
    let mut verdict = None;
    let (finished, head) = match done.result {
        Ok(ran) if !ran.tampered.is_empty() => {
            let why = format!(
                "tampered with the repository outside its worktree: {}",
                ran.tampered.join("; ")
            );
            return failed(repo, plan, id, why, &ran.finished);
        }
        Ok(ran) => {
            verdict = ran.verdict;
            (ran.finished, ran.head)
        }
        Err(e) => (
            process::Finished {
                exit: Exit::NotStarted(e),
                seconds: 0.0,
                log: Vec::new(),
            },
            None,
        ),
    };
    let worktree = done
        .worktree
        .unwrap_or_else(|| workspace::task_worktree(repo, plan, &id));
    // Stopped before its work was committed (a task's git killed by the
    // same Ctrl-C counts too): back to pending. Committed work still lands.
    let stop = match &finished.exit {
        Exit::Stopped(stop) => Some(*stop),
        _ => process::stop_requested().filter(|_| !matches!(head, Some(Ok(_)))),
    };
    if let Some(stop) = stop {
        return interrupted(repo, plan, id, stop.describe(), &finished);
    }
    if let Some(Err(reason)) = &head {
        return failed(repo, plan, id, reason.clone(), &finished);
    }
    if let Some(Ok(head)) = head {
        let now = store::load(repo, plan)?;
        let review = now
            .plan
            .task(&id)
            .and_then(|(_, t)| now.plan.task_review(t))
            .cloned();
        match (&review, verdict) {
            (Some(r), _) if r.is_manual() => {
                super::review::to_review(repo, plan, &id, head, &finished, "manual")?;
                return Ok((id, TaskOutcome::Review { head }));
            }
            (_, Some(v)) if !v.approve => {
                let mut log = finished.log.clone();
                log.extend_from_slice(b"\n--- review ---\n");
                log.extend_from_slice(&v.log);
                let (reason, log) = super::review::record_rejection(
                    repo,
                    plan,
                    &id,
                    Some(head),
                    &v.reviewer,
                    &v.comments,
                    Some((log, finished.seconds)),
                )?;
                return Ok((id, TaskOutcome::Failed { reason, log }));
            }
            (_, Some(v)) => {
                super::review::record_approval(repo, plan, &id, &v.reviewer, &v.comments)?;
            }
            _ => {}
        }
        let handoff = workspace::read_handoff_note(&workspace::handoff_file(repo, plan, &id));
        let outcome = format!(
            "The task's command exited 0 after {}.",
            crate::render::duration(finished.seconds)
        );
        // Lets the next run finish parking the worktree if we die between
        // landing and parking (a worktree done by hand is never moved).
        let marker = workspace::parking_marker(repo, plan, &id);
        workspace::touch(&marker);
        let result = tasks::land_committed(
            repo,
            plan,
            &id,
            head,
            Finish {
                message: &format!("{id}: work of git-orch task"),
                handoff,
                log: Some(finished.log.clone()),
                seconds: Some(finished.seconds),
                outcome: &outcome,
            },
        );
        if !matches!(result, Ok((Landed::Done { .. }, _))) {
            let _ = std::fs::remove_file(&marker);
        }
        if let Ok((_, after)) = &result {
            for note in &after.repairs {
                observer.repaired(note);
            }
        }
        return match result {
            Ok((Landed::Done { commit, .. }, _)) => {
                crate::failpoint!("task-landed");
                let _ = workspace::park_clean(repo, plan, &worktree);
                let _ = std::fs::remove_file(&marker);
                Ok((
                    id,
                    TaskOutcome::Landed {
                        commit,
                        seconds: finished.seconds,
                    },
                ))
            }
            Ok((Landed::Conflict { files }, _)) => Ok((id, TaskOutcome::Conflict { files })),
            Ok((Landed::OutOfScope { paths }, snap)) => Ok((
                id.clone(),
                TaskOutcome::Failed {
                    reason: format!("changed paths outside its files: {}", paths.join(", ")),
                    log: snap.task(&id)?.log,
                },
            )),
            Err(e) => failed(repo, plan, id, format!("{e:#}"), &finished),
        };
    }
    let reason = finished.exit.describe();
    failed(repo, plan, id, reason, &finished)
}

/// Returns a task this run stopped to pending, its work preserved first and
/// the attempt's log kept, with the reason (`interrupted (SIGINT)`) on it:
/// `resume` (or `run`) runs it again.
fn interrupted(
    repo: &Repo,
    plan: &str,
    id: String,
    reason: String,
    finished: &process::Finished,
) -> Result<(String, TaskOutcome)> {
    let work = store::load(repo, plan)?.state.work.oid();
    let tag = tasks::preserve_tag(&format!("interrupted-{id}"));
    let kept = tasks::preserve_task(repo, plan, &id, &tag, work)?;
    store::transact(repo, plan, |snap, change| {
        if snap.task_status(&id)? != TaskStatus::Running {
            return Ok(());
        }
        let t = change.task(&id)?;
        let attempt = t.attempts.max(1);
        let path = state::layout::task_log(&id, attempt);
        let t = transition::interrupt(&t, reason.clone(), Some(path.clone()))
            .map_err(|w| w.about(&id))?;
        change.put_task(&id, t);
        change.file(path.clone(), finished.log.clone());
        change.event = Some(state::Event::TaskInterrupted {
            task: id.clone(),
            attempt,
            reason: reason.clone(),
            log: Some(path),
            at: state::now(),
        });
        Ok(())
    })?;
    let _ = std::fs::remove_file(workspace::parking_marker(repo, plan, &id));
    // All kept above: the worktree goes back to the pool and a pending
    // task has no branch.
    let branch = names::task_branch(plan, &id);
    if let Some(wt) = repo.worktree_on_branch(&branch)? {
        let _ = repo.git_in(&wt.path, &["reset", "-q", "--hard"]);
        let _ = repo.git_in(&wt.path, &["clean", "-q", "-fd"]);
        let _ = workspace::park(repo, plan, &wt.path);
    }
    if repo.worktree_on_branch(&branch)?.is_none() {
        if let Some(head) = repo.ref_target(&branch)? {
            let _ = repo.cas_delete(&branch, head);
        }
    }
    Ok((id, TaskOutcome::Interrupted { reason, kept }))
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

/// Fails a task that ran while the plan was forged, whatever its command
/// did; its work stays in its worktree and branch.
fn fail_forger(repo: &Repo, plan: &str, done: Done, why: String) -> Result<(String, TaskOutcome)> {
    let finished = match done.result {
        Ok(ran) => ran.finished,
        Err(e) => process::Finished {
            exit: Exit::NotStarted(e),
            seconds: 0.0,
            log: Vec::new(),
        },
    };
    failed(
        repo,
        plan,
        done.id,
        format!("tampered with git-orch: {why}"),
        &finished,
    )
}

/// Records a task's failure (with its log) and reports it.
fn failed(
    repo: &Repo,
    plan: &str,
    id: String,
    reason: String,
    finished: &process::Finished,
) -> Result<(String, TaskOutcome)> {
    record_failure(repo, plan, &id, &reason, finished)?;
    let log = Some(log_path(repo, plan, &id)?);
    Ok((id, TaskOutcome::Failed { reason, log }))
}

fn log_path(repo: &Repo, plan: &str, id: &str) -> Result<String> {
    Ok(store::load(repo, plan)?.task(id)?.log.unwrap_or_default())
}

fn record_failure(
    repo: &Repo,
    plan: &str,
    id: &str,
    reason: &str,
    finished: &process::Finished,
) -> Result<()> {
    store::transact(repo, plan, |snap, change| {
        if snap.task_status(id)? != TaskStatus::Running {
            return Ok(());
        }
        let t = change.task(id)?;
        let attempt = t.attempts.max(1);
        let path = state::layout::task_log(id, attempt);
        let t = transition::fail(
            &t,
            reason.to_string(),
            None,
            state::now(),
            Some(finished.seconds),
            Some(path.clone()),
        )
        .map_err(|w| w.about(id))?;
        change.put_task(id, t);
        change.file(path.clone(), finished.log.clone());
        change.event = Some(state::Event::TaskFailed {
            task: id.to_string(),
            attempt,
            reason: reason.to_string(),
            scope: Vec::new(),
            log: Some(path),
            at: state::now(),
        });
        Ok(())
    })?;
    Ok(())
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
        let branch = names::task_branch(plan, id);
        let _ = std::fs::remove_file(repo.common_dir.join(format!("{branch}.lock")));
        if let Some(wt) = repo.worktree_on_branch(&branch)? {
            if let Ok(dir) = repo.git_in(&wt.path, &["rev-parse", "--absolute-git-dir"]) {
                for lock in [
                    "index.lock",
                    "HEAD.lock",
                    "AUTO_MERGE.lock",
                    "ORIG_HEAD.lock",
                ] {
                    let _ = std::fs::remove_file(std::path::Path::new(dir.trim()).join(lock));
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
        let branch = names::task_branch(plan, id);
        if let Some(wt) = repo.worktree_on_branch(&branch)? {
            let _ = repo.git_in(&wt.path, &["reset", "-q", "--hard"]);
            let _ = repo.git_in(&wt.path, &["clean", "-q", "-fd"]);
            let _ = workspace::park(repo, plan, &wt.path);
        }
        observer.recovered(id, &kept);
        recovered.push(id.clone());
    }
    let snap = store::load(repo, plan)?;
    reconcile::reconcile(repo, &snap)?;
    let mut settled: Vec<&str> = Vec::new();
    for (_, t) in snap.plan.tasks() {
        if snap.task_status(&t.id)?.is_settled() {
            settled.push(t.id.as_str());
        }
    }
    workspace::tidy(repo, plan, &settled);
    Ok(recovered)
}
