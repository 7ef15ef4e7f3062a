//! `checkpoint`: a phase whose tasks are all done or skipped is held to its
//! gates on the work branch head; on success the annotated tag
//! `orch/<plan>/<phase>` marks it and the next phase becomes active.

use anyhow::Result;
use git2::Oid;

use super::gates::{self, GateOptions, GateRun};
use crate::error::{refuse, refuse_with_hint};
use crate::git::{RefEdit, Repo};
use crate::state::{self, names, reconcile, store, Checkpoint, Event, Snapshot};

pub struct CheckpointReport {
    pub phase: String,
    pub commit: Oid,
    pub runs: Vec<GateRun>,
    pub passed: bool,
    pub snap: Snapshot,
}

/// Which phase a checkpoint is for: the named one or the current one.
pub fn target_phase(snap: &Snapshot, named: Option<&str>) -> Result<String> {
    let current = snap.current_phase().map(|p| p.id.clone());
    match named {
        Some(id) => {
            if snap.plan.phase(id).is_none() {
                return Err(refuse_with_hint(
                    format!("plan `{}` has no phase `{id}`", snap.plan_name),
                    "see `git orch status`",
                ));
            }
            if snap.is_checkpointed(id) {
                return Err(refuse(format!("phase `{id}` is already checkpointed")));
            }
            if current.as_deref() != Some(id) {
                return Err(refuse_with_hint(
                    format!(
                        "phase `{id}` is not the current phase; `{}` must be checkpointed first",
                        current.unwrap_or_default()
                    ),
                    "phases are checkpointed in order",
                ));
            }
            Ok(id.to_string())
        }
        None => current.ok_or_else(|| refuse("every phase is already checkpointed")),
    }
}

/// How a checkpoint ended: recorded (passed or not), or superseded: its
/// gates ran, but the plan changed meanwhile (most often another runner,
/// on this machine or another, recorded the phase first), so nothing of
/// this run is recorded; its verdicts are still there to show.
pub enum Checkpointed {
    Recorded(Box<CheckpointReport>),
    Superseded { phase: String, runs: Vec<GateRun> },
}

/// [`run_checkpoint`], a superseded run refused.
pub fn checkpoint(
    repo: &Repo,
    plan: &str,
    phase: Option<&str>,
    opts: &GateOptions<'_>,
) -> Result<CheckpointReport> {
    match run_checkpoint(repo, plan, phase, opts)? {
        Checkpointed::Recorded(report) => Ok(*report),
        Checkpointed::Superseded { .. } => Err(refuse_with_hint(
            "the plan changed while its gates ran",
            "run `git orch checkpoint` again",
        )),
    }
}

pub fn run_checkpoint(
    repo: &Repo,
    plan: &str,
    phase: Option<&str>,
    opts: &GateOptions<'_>,
) -> Result<Checkpointed> {
    let snap = store::load(repo, plan)?;
    super::tasks::refuse_if_finished(&snap)?;
    let phase_id = target_phase(&snap, phase)?;
    let phase = snap
        .plan
        .phase(&phase_id)
        .ok_or_else(|| refuse("unknown phase"))?;
    let mut open: Vec<String> = Vec::new();
    for t in snap.unsettled_tasks(phase)? {
        open.push(format!("{} ({})", t.id, snap.task_status(&t.id)?.as_str()));
    }
    if !open.is_empty() {
        return Err(refuse_with_hint(
            format!("phase `{phase_id}` has unfinished tasks: {}", open.join(", ")),
            "finish, skip or run them first (`git orch run`, `git orch task done ID`, `git orch task skip ID`)",
        ));
    }
    let commit = snap.state.work.oid();
    let gate_list = snap.plan.gates_for(&phase_id);
    let runs = gates::run_gates(repo, &snap, &gate_list, commit, opts)?;
    // Gates killed by a signal or a closed output prove nothing: record none.
    if let Some(stop) = crate::process::stop_requested() {
        return Err(crate::process::Stopped(stop).into());
    }
    let passed = runs.iter().all(|r| r.result.passed);
    crate::failpoint!("gates-ran");
    let (recorded, after) = store::transact(repo, plan, |s, change| {
        // A task reopened or reset while the gates ran leaves the work
        // branch where it was: every task must still be settled, or the
        // phase would be sealed with a task nothing can start again.
        let unsettled = match s.plan.phase(&phase_id) {
            Some(p) => !s.unsettled_tasks(p)?.is_empty(),
            None => true,
        };
        if s.state.work != commit || s.is_checkpointed(&phase_id) || unsettled {
            return Ok(false);
        }
        gates::record(repo, change, &runs)?;
        let ps = change.state.phases.entry(phase_id.clone()).or_default();
        ps.gates = runs.iter().map(|r| r.result.clone()).collect();
        if passed {
            let tag_name = format!("orch/{plan}/{phase_id}");
            let mut message = format!("git-orch checkpoint {plan}/{phase_id}\n\n");
            for r in &runs {
                message += &format!(
                    "gate {}: {} in {:.1}s{}\n",
                    r.result.name,
                    if r.result.passed { "passed" } else { "failed" },
                    r.result.seconds,
                    if r.result.cached { " (cached)" } else { "" }
                );
            }
            if runs.is_empty() {
                message += "no gates\n";
            }
            let tag = reconcile::new_tag(repo, &tag_name, commit, &message)?;
            let tag_id = tag.object.oid();
            ps.checkpoint = Some(Checkpoint {
                commit: commit.into(),
                tag,
                at: state::now(),
            });
            ps.gates_failed = false;
            change.refs.push(RefEdit::Set {
                name: names::checkpoint_tag(plan, &phase_id),
                new: tag_id,
                old: None,
            });
            change.event = Some(Event::PhaseCheckpointed {
                phase: phase_id.clone(),
                commit: commit.to_string(),
                gates: gates::verdicts(&runs),
                at: state::now(),
            });
        } else {
            ps.gates_failed = true;
            change.event = Some(Event::PhaseGatesFailed {
                phase: phase_id.clone(),
                commit: commit.to_string(),
                gates: gates::verdicts(&runs),
                at: state::now(),
            });
        }
        Ok(true)
    })?;
    if !recorded {
        return Ok(Checkpointed::Superseded {
            phase: phase_id,
            runs,
        });
    }
    crate::failpoint!("checkpoint-tagged");
    Ok(Checkpointed::Recorded(Box::new(CheckpointReport {
        phase: phase_id,
        commit,
        runs,
        passed,
        snap: after,
    })))
}
