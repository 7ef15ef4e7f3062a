//! When no task of this runner is running: what the plan needs next (the
//! gates and checkpoint of a settled phase, a fix-forward, the end of the
//! plan) or why the runner waits.

use anyhow::Result;

use super::{abandoned, recover_abandoned, Observer, RunOptions, RunReport};
use crate::engine::agents;
use crate::engine::checkpoint;
use crate::engine::gates::{self, GateOptions};
use crate::engine::shared_gates::{self, Turn};
use crate::git::Repo;
use crate::process;
use crate::state::{store, Snapshot, TaskStatus};

pub(super) enum Step {
    Continue,
    Stop,
    Wait(String),
}

/// With nothing of ours running: checkpoint, finish, wait for others, or stop.
pub(super) fn next_step(
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
    if let Some(step) = take_others_checkpoints(repo, snap, report, observer)? {
        return Ok(step);
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
        if !shared_gates::once(repo) {
            return gate_phase(repo, plan, snap, &phase.id, report, observer).map(|(step, _)| step);
        }
        let work = snap.state.work.oid();
        return match shared_gates::take(repo, plan, &phase.id, work, report.started)? {
            Turn::Ours(held) => held.run(repo, || {
                gate_phase(repo, plan, snap, &phase.id, report, observer)
            }),
            Turn::Theirs(why) => Ok(Step::Wait(why)),
            Turn::Lost => Ok(Step::Continue),
            Turn::FailedElsewhere(machine) => {
                observer.waiting(&format!(
                    "the gates of phase {} failed on {machine}",
                    phase.id
                ));
                report.gate_failure = Some(phase.id.clone());
                Ok(Step::Stop)
            }
        };
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

/// The gates and checkpoint of a settled phase, and its fix-forward when
/// they fail; with the verdict for the phase's gate lock: passed, failed
/// for good, or `None` (a fix landed, or the plan changed meanwhile).
fn gate_phase(
    repo: &Repo,
    plan: &str,
    snap: &Snapshot,
    phase: &str,
    report: &mut RunReport,
    observer: &dyn Observer,
) -> Result<(Step, Option<bool>)> {
    let gate_line = |g: &str, l: &str| observer.gate_line(g, l);
    let gate_started = |g: &str| observer.gate_started(g);
    let gopts = GateOptions {
        no_cache: false,
        jobs: 1,
        on_line: &gate_line,
        on_start: &gate_started,
    };
    let cp = match checkpoint::run_checkpoint(repo, plan, Some(phase), &gopts) {
        Ok(checkpoint::Checkpointed::Recorded(cp)) => cp,
        // Another runner recorded the phase while its gates ran here:
        // what they said here is shown all the same, then look again.
        Ok(checkpoint::Checkpointed::Superseded { phase, runs }) => {
            observer.superseded(&phase, &runs);
            return Ok((Step::Continue, None));
        }
        // Another runner (or a person) changed the plan meanwhile, most
        // often by checkpointing this very phase: look again.
        Err(e)
            if e.is::<crate::error::Refusal>()
                && store::load(repo, plan)?.commit != snap.commit =>
        {
            return Ok((Step::Continue, None))
        }
        Err(e) => return Err(e),
    };
    observer.checkpointed(&cp);
    if !cp.passed {
        // Fix-forward (`on_gate_failure`): a fix task lands on the work
        // head and the gates run again, up to its attempts.
        let on_line = |t: &str, l: &str| observer.line(t, l);
        if let Some(fix) = crate::engine::fix::fix_forward(repo, plan, phase, &on_line)? {
            observer.fixed(phase, &fix);
            report.fixes.push(fix.id.clone());
            return Ok((Step::Continue, None));
        }
        report.gate_failure = Some(phase.to_string());
        return Ok((Step::Stop, Some(false)));
    }
    report.checkpoints.push(phase.to_string());
    // Between phases nothing of this runner moves a worktree.
    repo.maintain();
    Ok((Step::Continue, Some(true)))
}

/// Checkpoints another machine made during this shared run: taken as they
/// are, or with `orch.gates = local` gated here again on the checkpoint's
/// commit (a failure here stops this runner and changes nothing).
fn take_others_checkpoints(
    repo: &Repo,
    snap: &Snapshot,
    report: &mut RunReport,
    observer: &dyn Observer,
) -> Result<Option<Step>> {
    if crate::state::sync::active().is_none() {
        return Ok(None);
    }
    for phase in &snap.plan.phases {
        let Some(cp) = snap
            .state
            .phases
            .get(&phase.id)
            .and_then(|p| p.checkpoint.as_ref())
        else {
            continue;
        };
        if !report.known_checkpoints.insert(phase.id.clone())
            || report.checkpoints.contains(&phase.id)
        {
            continue;
        }
        if shared_gates::local(repo) {
            let gate_line = |g: &str, l: &str| observer.gate_line(g, l);
            let gate_started = |g: &str| observer.gate_started(g);
            let gopts = GateOptions {
                no_cache: false,
                jobs: 1,
                on_line: &gate_line,
                on_start: &gate_started,
            };
            let gate_list = snap.plan.gates_for(&phase.id);
            let runs = gates::run_gates(repo, snap, &gate_list, cp.commit.oid(), &gopts)?;
            if !runs.iter().all(|r| r.result.passed) {
                observer.waiting(&format!(
                    "the gates of phase {} (checkpointed on another machine) failed here",
                    phase.id
                ));
                report.gate_failure = Some(phase.id.clone());
                return Ok(Some(Step::Stop));
            }
        }
        report.taken.push(phase.id.clone());
    }
    Ok(None)
}
