use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;

use super::open_plan;
use crate::cli::StatusArgs;
use crate::engine::runner::{self, Runner};
use crate::plan::parse_duration;
use crate::schema::Schema;
use crate::state::{CommitId, Snapshot, TaskState, TaskStatus};
use crate::ui;

pub fn run(args: StatusArgs) -> Result<u8> {
    // Plain `status` with several plans active shows each, one after the
    // other (`--json` is one plan's document: it still wants a name).
    if args.plan.is_none() && !args.json {
        let repo = super::open_repo()?;
        if super::task_of_worktree(&repo).is_none() {
            let active = crate::state::store::active_plans(&repo)?;
            if active.len() > 1 {
                for (i, name) in active.iter().enumerate() {
                    if i > 0 {
                        ui::out("");
                    }
                    show(StatusArgs {
                        plan: Some(name.clone()),
                        json: false,
                    })?;
                }
                return Ok(0);
            }
        }
    }
    show(args)
}

fn show(args: StatusArgs) -> Result<u8> {
    let (repo, snap) = open_plan(args.plan.as_deref())?;
    let records = snap.all_tasks()?;
    let remote = remote_view(&repo, &snap.plan_name)?;
    if args.json {
        let mut report = status_report(&snap, &records);
        report.remote = remote;
        ui::json_doc(Schema::Status, &report)?;
    } else {
        render(&snap, &records);
        if let Some(r) = remote {
            let how = match (r.absent, r.behind, r.ahead) {
                (true, _, _) => "not there yet; `git orch sync` publishes it".to_string(),
                (_, 0, 0) => "in step".to_string(),
                (_, b, 0) => format!("{b} state commits behind; `git orch sync` brings them"),
                (_, 0, a) => format!("{a} state commits ahead; `git orch sync` pushes them"),
                (_, b, a) => format!("{a} ahead and {b} behind: the two went different ways"),
            };
            ui::out(&format!("remote {}: {how} (as of the last fetch)", r.name));
        }
    }
    Ok(0)
}

/// How this clone's view of the plan stands to the remote it is shared
/// through (`orch.remote`, else the first remote it was fetched from), as
/// of the last fetch: `status` never goes to the network.
#[derive(Serialize)]
pub struct RemoteReport {
    name: String,
    behind: usize,
    ahead: usize,
    absent: bool,
}

fn remote_view(repo: &crate::git::Repo, plan: &str) -> Result<Option<RemoteReport>> {
    use crate::state::sync;
    let mut candidates: Vec<String> = crate::engine::remote::chosen(repo, None)
        .into_iter()
        .collect();
    if candidates.is_empty() {
        candidates = repo
            .git
            .remotes()?
            .iter()
            .flatten()
            .map(str::to_string)
            .filter(|r| sync::remote_state(repo, r, plan).ok().flatten().is_some())
            .collect();
    }
    let Some(name) = candidates.into_iter().next() else {
        return Ok(None);
    };
    // `orch.remote` naming no remote: no standing to tell, and the next
    // `run` or `sync` will refuse it.
    if !repo.git.remotes()?.iter().flatten().any(|r| r == name) {
        crate::ui::warn(&format!(
            "orch.remote names `{}`, which is not a git remote here: `git remote -v` lists them",
            ui::printable(&name)
        ));
        return Ok(None);
    }
    Ok(sync::standing(repo, &name, plan)?.map(|s| RemoteReport {
        name,
        behind: s.behind,
        ahead: s.ahead,
        absent: s.absent,
    }))
}

/// The `status --json` object (documented field by field in the README),
/// serialised straight from these structs: a 1,000-task plan must report in
/// a few milliseconds.
#[derive(Serialize)]
pub struct StatusReport<'a> {
    plan: &'a str,
    title: Option<&'a str>,
    work: CommitId,
    base: CommitId,
    state_commit: String,
    finished: bool,
    /// `abandon` stopped it unfinished.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    abandoned: bool,
    phase: Option<&'a str>,
    phases: Vec<PhaseReport<'a>>,
    tasks: Vec<TaskReport<'a>>,
    /// Shared through a remote: how this clone stands to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteReport>,
    ledger: crate::engine::ledger::Ledger,
    /// Commits made by hand on the work branch, adopted as landings.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    adopted: &'a [crate::state::AdoptedCommit],
}

#[derive(Serialize)]
struct PhaseReport<'a> {
    id: &'a str,
    title: Option<&'a str>,
    state: &'static str,
    checkpoint: Option<CommitId>,
    tag: Option<String>,
    tasks: usize,
    done: usize,
    gates: Vec<GateReport<'a>>,
    /// Fix-forward attempts after its gates failed.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fixes: &'a [crate::state::FixRecord],
}

#[derive(Serialize)]
struct GateReport<'a> {
    name: &'a str,
    passed: bool,
    seconds: f64,
    cached: bool,
    log: &'a str,
}

#[derive(Serialize)]
struct TaskReport<'a> {
    id: &'a str,
    phase: &'a str,
    title: Option<&'a str>,
    state: &'static str,
    seconds: Option<f64>,
    estimate_seconds: Option<u64>,
    attempts: u32,
    branch: Option<String>,
    worktree: Option<&'a str>,
    landed: Option<CommitId>,
    reason: Option<&'a str>,
    log: Option<&'a str>,
    depends_on: &'a [String],
    /// A running task's runner: `alive`, `gone` or `other-host`.
    runner: Option<&'static str>,
    /// When the runner is gone: the command that recovers the task.
    #[serde(skip_serializing_if = "Option::is_none")]
    recover: Option<String>,
    /// The agent its latest attempt ran with (`[agents]` of the plan).
    agent: Option<&'a str>,
    /// A parked task: when it may run again (seconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    wakes_at: Option<f64>,
    /// Summed over its attempts' usage files, once one was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens_out: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
    /// Each attempt's usage and outcome, as recorded (see `task show`).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    usage: &'a [crate::state::Usage],
}

type Records = BTreeMap<String, Arc<TaskState>>;

fn status_of(records: &Records, id: &str) -> TaskStatus {
    records.get(id).map_or(TaskStatus::Pending, |t| t.state())
}

pub fn status_report<'a>(snap: &'a Snapshot, records: &'a Records) -> StatusReport<'a> {
    let current = snap.current_phase().map(|p| p.id.as_str());
    let phases = snap
        .plan
        .phases
        .iter()
        .map(|p| {
            let ps = snap.state.phases.get(&p.id);
            let cp = ps.and_then(|s| s.checkpoint.as_ref());
            PhaseReport {
                id: &p.id,
                title: p.title.as_deref(),
                state: snap.phase_status(&p.id).as_str(),
                checkpoint: cp.map(|c| c.commit),
                tag: cp.map(|_| format!("orch/{}/{}", snap.plan_name, p.id)),
                tasks: p.tasks.len(),
                done: p
                    .tasks
                    .iter()
                    .filter(|t| status_of(records, &t.id).is_settled())
                    .count(),
                gates: ps
                    .map(|s| {
                        s.gates
                            .iter()
                            .map(|g| GateReport {
                                name: &g.name,
                                passed: g.passed,
                                seconds: g.seconds,
                                cached: g.cached,
                                log: &g.log,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                fixes: ps.map_or(&[][..], |s| s.fixes.as_slice()),
            }
        })
        .collect();
    let tasks = snap
        .plan
        .tasks()
        .map(|(phase, task)| {
            let t = records.get(&task.id).map(|t| &**t);
            let runner = t.and_then(|t| runner::view(&snap.plan_name, &task.id, t));
            let usage = crate::engine::ledger::task_usage(t);
            TaskReport {
                id: &task.id,
                phase: &phase.id,
                title: task.title.as_deref(),
                state: status_of(records, &task.id).as_str(),
                seconds: t.and_then(|t| t.seconds).or_else(|| running_seconds(t)),
                estimate_seconds: task
                    .estimate
                    .as_deref()
                    .and_then(|e| parse_duration(e).ok())
                    .map(|d| d.as_secs()),
                attempts: t.map_or(0, |t| t.attempts),
                branch: t
                    .filter(|t| t.attempts > 0)
                    .map(|_| format!("orch/{}/tasks/{}", snap.plan_name, task.id)),
                worktree: t.and_then(|t| t.worktree()),
                landed: t.and_then(|t| t.landed()),
                reason: t.and_then(|t| t.reason()),
                log: t.and_then(|t| t.log.as_deref()),
                depends_on: &task.depends_on,
                runner: runner.as_ref().map(|(r, _)| r.as_str()),
                recover: runner.and_then(|(_, cmd)| cmd),
                agent: t.and_then(|t| t.agent.as_deref()),
                wakes_at: t.and_then(|t| t.parked_until()),
                tokens_in: usage.map(|u| u.0),
                tokens_out: usage.map(|u| u.1),
                cost_usd: usage.map(|u| u.2),
                usage: t.map_or(&[][..], |t| t.usage.as_slice()),
            }
        })
        .collect();
    StatusReport {
        plan: &snap.plan_name,
        title: snap.plan.title.as_deref(),
        work: snap.state.work,
        base: snap.state.base,
        state_commit: snap.commit.to_string(),
        finished: snap.state.finished,
        abandoned: snap.state.abandoned,
        phase: current,
        phases,
        tasks,
        remote: None,
        ledger: crate::engine::ledger::compute(&snap.plan, |id| records.get(id).map(|t| &**t)),
        adopted: &snap.state.adopted,
    }
}

/// How long a running task has run so far; nothing for one whose runner is
/// gone (its clock stopped when the runner died, at a moment nobody recorded).
fn running_seconds(t: Option<&TaskState>) -> Option<f64> {
    let t = t?;
    let gone = t
        .claim()
        .is_some_and(|c| !c.manual && runner::of_claim(c) == Runner::Gone);
    (t.state() == TaskStatus::Running && !gone)
        .then(|| t.started_at().map(|s| crate::state::now() - s))
        .flatten()
}

pub(crate) fn render(snap: &Snapshot, records: &Records) {
    let title = snap
        .plan
        .title
        .as_deref()
        .map_or(String::new(), |t| format!(" — {t}"));
    ui::out(&format!("plan {}{title}", ui::bold(&snap.plan_name)));
    ui::out(&format!(
        "work {}  ({})",
        snap.state.work.short(),
        if snap.state.finished {
            "finished"
        } else if snap.state.abandoned {
            "abandoned"
        } else {
            "active"
        }
    ));
    for a in &snap.state.adopted {
        ui::out(&format!(
            "  by hand {}  ({} file(s): {})",
            a.commit.short(),
            a.changed.len(),
            ui::printable(&a.changed.join(", "))
        ));
    }
    for phase in &snap.plan.phases {
        let status = snap.phase_status(&phase.id);
        let current = if snap.current_phase().is_some_and(|p| p.id == phase.id) {
            "▶"
        } else {
            " "
        };
        let cp = snap
            .state
            .phases
            .get(&phase.id)
            .and_then(|p| p.checkpoint.as_ref());
        let tag = cp.map_or(String::new(), |c| {
            format!(
                "  tag orch/{}/{} → {}",
                snap.plan_name,
                phase.id,
                c.commit.short()
            )
        });
        ui::out(&format!(
            "{current} phase {} [{}]{tag}",
            ui::bold(&phase.id),
            ui::state_word(status.as_str())
        ));
        if status == crate::state::PhaseStatus::Failed {
            render_failed_gates(snap, &phase.id);
        }
        for fix in snap
            .state
            .phases
            .get(&phase.id)
            .map_or(&[][..], |p| p.fixes.as_slice())
        {
            let what = match (&fix.landed, &fix.reason) {
                (Some(c), _) => format!("landed at {}", c.short()),
                (None, Some(r)) => format!("failed: {r}"),
                (None, None) => "failed".to_string(),
            };
            ui::out(&format!(
                "    fix {} (agent {}) {what}  log: git orch log {} {}",
                fix.id, fix.agent, snap.plan_name, fix.id
            ));
        }
        for task in &phase.tasks {
            let s = status_of(records, &task.id);
            let t = records.get(&task.id).map(|t| &**t);
            let actual = t.and_then(|t| t.seconds).or_else(|| running_seconds(t));
            let time = match (actual, task.estimate.as_deref()) {
                (Some(a), Some(e)) => format!("{} / est {e}", ui::duration(a)),
                (Some(a), None) => ui::duration(a),
                (None, Some(e)) => format!("est {e}"),
                (None, None) => String::new(),
            };
            let reason = t
                .and_then(|t| t.reason())
                .filter(|_| matches!(s, TaskStatus::Failed | TaskStatus::Conflict));
            let parked = t.and_then(|t| Some((t.parked_until()?, t.reason()?)));
            let reason = match parked {
                Some((until, why)) => Some(format!(
                    "wakes at {}: {why}",
                    crate::render::utc_time(until)
                )),
                None => reason.map(str::to_string),
            };
            let runner = t.and_then(|t| runner_note(&snap.plan_name, &task.id, t));
            let agent = t
                .and_then(|t| t.agent.as_deref())
                .map_or(String::new(), |a| format!("  agent {}", ui::printable(a)));
            let agent = match crate::engine::ledger::task_usage(t) {
                Some((i, o, c)) => format!("{agent}  {i}/{o} tokens ${c:.2}"),
                None => agent,
            };
            ui::out(&format!(
                "    {:<20} {:<10} {}{agent}{}{}",
                task.id,
                ui::state_word(s.as_str()),
                ui::dim(&time),
                reason.map_or(String::new(), |r| format!("  ({})", ui::printable(&r))),
                runner.unwrap_or_default()
            ));
        }
    }
    let ledger = crate::engine::ledger::compute(&snap.plan, |id| records.get(id).map(|t| &**t));
    for line in ledger_lines(&ledger) {
        ui::out(&line);
    }
}

/// The ledger in words: the plan, then each agent and phase that ran.
fn ledger_lines(l: &crate::engine::ledger::Ledger) -> Vec<String> {
    use crate::engine::ledger::Spent;
    if l.plan.attempts == 0 {
        return Vec::new();
    }
    let spent = |s: &Spent| {
        let est = if s.estimated_seconds > 0.0 {
            format!(" / est {}", ui::duration(s.estimated_seconds))
        } else {
            String::new()
        };
        let mut out = format!("{}{est}", ui::duration(s.seconds));
        if s.tokens_in + s.tokens_out > 0 || s.cost_usd > 0.0 {
            out += &format!(
                ", {}/{} tokens, ${:.2}",
                s.tokens_in, s.tokens_out, s.cost_usd
            );
        }
        out
    };
    let mut out = vec![format!(
        "ledger: {}; about {} of task time left",
        spent(&l.plan),
        ui::duration(l.remaining_seconds)
    )];
    for (name, s) in l.agents.iter().filter(|(_, s)| s.attempts > 0) {
        out.push(format!(
            "  {}: {}",
            crate::engine::ledger::who(&ui::printable(name)),
            spent(s)
        ));
    }
    for (name, s) in l.phases.iter().filter(|(_, s)| s.attempts > 0) {
        out.push(format!("  phase {name}: {}", spent(s)));
    }
    out
}

/// After a running task whose runner is gone (or cannot be checked): what
/// is known, and the command that recovers it.
fn runner_note(plan: &str, id: &str, t: &TaskState) -> Option<String> {
    let (r, recover) = runner::view(plan, id, t)?;
    let claim = t.claim()?;
    match r {
        Runner::Alive => None,
        // A claim made through a remote is judged by its lease, never by
        // its pid or host (see `engine::remote`).
        Runner::OtherHost if claim.lease.is_some() => {
            let lease = claim.lease.as_ref()?;
            Some(format!(
                "  (claimed through a remote by runner {} on {}: once its lease runs out, `git orch run {plan} --remote NAME` takes it over)",
                ui::printable(&lease.runner),
                ui::printable(&lease.machine)
            ))
        }
        Runner::OtherHost => Some(format!(
            "  (runner pid {} on host {}: cannot be checked from here)",
            claim.pid,
            ui::printable(&claim.host)
        )),
        Runner::Gone if claim.manual => Some(format!(
            "  {}: its worktree is gone; recover: `{}`",
            ui::red("started by hand"),
            recover.unwrap_or_default()
        )),
        Runner::Gone => Some(format!(
            "  {} (pid {}, started {}); recover: `{}`",
            ui::red("runner gone"),
            claim.pid,
            crate::render::utc_time(claim.since),
            recover.unwrap_or_default()
        )),
    }
}

/// Under a phase whose gates failed: which gate, why, and where its log is.
fn render_failed_gates(snap: &Snapshot, phase: &str) {
    let gates = snap.state.phases.get(phase).map(|p| p.gates.as_slice());
    for gate in gates.unwrap_or_default().iter().filter(|g| !g.passed) {
        let why = gate.reason.as_deref().unwrap_or("failed");
        ui::out(&format!(
            "    gate {:<15} {} ({})  log: git orch log {} {phase}:{}",
            gate.name,
            ui::state_word("failed"),
            ui::printable(why),
            snap.plan_name,
            gate.name
        ));
    }
}
