use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::checkpoint::{print_gates, GateOutput};
use super::open_plan_to_run;
use crate::cli::RunArgs;
use crate::engine::checkpoint::CheckpointReport;
use crate::engine::run::{self, Observer, RunOptions, TaskOutcome};
use crate::git::short;
use crate::schema::Schema;
use crate::ui;

/// Live display: task output prefixed by task id, and on a terminal a
/// progress line (done/total, running tasks, elapsed) kept at the bottom.
struct Display {
    plan: String,
    bar: Option<ProgressBar>,
    running: Mutex<Vec<String>>,
    last_wait: Mutex<String>,
    prefix: bool,
    /// `--json`: stdout carries the summary alone, task output goes to stderr.
    json: bool,
    gates: GateOutput,
    notify: crate::notify::Notifier,
    /// Each task's phase, for the events.
    phases: std::collections::HashMap<String, String>,
}

impl Display {
    fn print(&self, line: &str) {
        if self.json {
            return self.say(line);
        }
        match &self.bar {
            Some(bar) => bar.suspend(|| ui::out(line)),
            None => ui::out(line),
        }
    }

    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| ui::note(line)),
            None => ui::note(line),
        }
    }

    fn refresh(&self) {
        if let (Some(bar), Ok(running)) = (&self.bar, self.running.lock()) {
            bar.set_message(if running.is_empty() {
                "—".to_string()
            } else {
                running.join(", ")
            });
        }
    }
}

impl Observer for Display {
    fn recovered(&self, task: &str, preserved: &[String]) {
        self.say(&format!(
            "{} task {task}: its runner died; it runs again",
            ui::yellow("recovered")
        ));
        for r in preserved {
            self.say(&format!("  what it left is kept in {r}"));
        }
    }

    fn started(&self, task: &str, worktree: &Path) {
        self.say(&format!(
            "{} {task} in {}",
            ui::bold("start"),
            worktree.display()
        ));
        if let Ok(mut r) = self.running.lock() {
            r.push(task.to_string());
        }
        self.refresh();
    }

    fn line(&self, task: &str, line: &str) {
        if self.prefix {
            self.print(&format!("{} {line}", ui::dim(&format!("[{task}]"))));
        } else {
            self.print(line);
        }
    }

    fn finished(&self, task: &str, outcome: &TaskOutcome) {
        if let Ok(mut r) = self.running.lock() {
            r.retain(|t| t != task);
        }
        match outcome {
            TaskOutcome::Landed { commit, seconds } => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                let at = commit.map_or("no changes".to_string(), |c| format!("at {}", short(c)));
                self.say(&format!(
                    "{} {task} in {} ({at})",
                    ui::green("landed"),
                    ui::duration(*seconds)
                ));
            }
            TaskOutcome::Failed { reason, .. } => {
                self.say(&format!("{} {task}: {reason}", ui::red("failed")));
                let phase = self.phases.get(task).map(String::as_str);
                crate::notify::task_failed(&self.notify, task, phase, "failed", reason, &[]);
            }
            TaskOutcome::Conflict { files } => {
                self.say(&format!(
                    "{} {task}: landing conflicts in {}",
                    ui::red("conflict"),
                    files.join(", ")
                ));
                let phase = self.phases.get(task).map(String::as_str);
                let why = "its work conflicts with the work branch";
                crate::notify::task_failed(&self.notify, task, phase, "conflict", why, files);
            }
            TaskOutcome::Interrupted { reason, kept } => {
                self.say(&format!(
                    "{} {task}: {reason}; it is pending again",
                    ui::yellow("stopped")
                ));
                for r in kept {
                    self.say(&format!("  what it left is kept in {r}"));
                }
            }
            TaskOutcome::Review { head } => {
                self.say(&format!(
                    "{} {task}: committed at {}; waiting for review",
                    ui::yellow("review"),
                    short(*head)
                ));
                let phase = self.phases.get(task).map(String::as_str);
                crate::notify::task_review(&self.notify, task, phase, &head.to_string());
            }
        }
        self.refresh();
    }

    fn gate_line(&self, gate: &str, line: &str) {
        if !self.gates.stream {
            return;
        }
        self.print(&format!("{} {line}", ui::dim(&format!("[gate {gate}]"))));
    }

    fn gate_started(&self, gate: &str) {
        self.say(&format!("{} {gate}", ui::bold("gate")));
    }

    fn checkpointed(&self, report: &CheckpointReport) {
        crate::notify::checkpointed(&self.notify, report);
        match &self.bar {
            Some(bar) => {
                bar.suspend(|| print_gates(&self.plan, &report.phase, &report.runs, self.gates))
            }
            None => print_gates(&self.plan, &report.phase, &report.runs, self.gates),
        }
        if report.passed {
            self.say(&format!(
                "{} phase {} at {} (tag orch/{}/{})",
                ui::green("checkpoint"),
                report.phase,
                short(report.commit),
                self.plan,
                report.phase
            ));
        } else {
            self.say(&format!(
                "{} phase {}: gates failed, no checkpoint",
                ui::red("checkpoint"),
                report.phase
            ));
        }
    }

    fn superseded(&self, phase: &str, runs: &[crate::engine::gates::GateRun]) {
        // Each gate's verdict under the output it streamed, as a checkpoint
        // that is recorded shows it.
        match &self.bar {
            Some(bar) => bar.suspend(|| print_gates(&self.plan, phase, runs, self.gates)),
            None => print_gates(&self.plan, phase, runs, self.gates),
        }
        self.say(&format!(
            "{} phase {phase}: the plan changed while its gates ran here (another runner recorded it first); looking again",
            ui::yellow("checkpoint")
        ));
    }

    fn parked(&self, task: &str, until: f64, why: &str) {
        if let Ok(mut r) = self.running.lock() {
            r.retain(|t| t != task);
        }
        self.say(&format!(
            "{} {task} until {}: {why}",
            ui::yellow("parked"),
            crate::render::utc_time(until)
        ));
        let phase = self.phases.get(task).map(String::as_str);
        crate::notify::task_parked(&self.notify, task, phase, until, why);
        self.refresh();
    }

    fn waiting(&self, why: &str) {
        if let Ok(mut last) = self.last_wait.lock() {
            if *last != why {
                *last = why.to_string();
                self.say(why);
            }
        }
    }

    fn repaired(&self, note: &str) {
        // A commit moved off the work branch is someone's work: loud.
        ui::warn(note);
        ui::hint("a kept commit is brought back with `git cherry-pick <ref>` on top of the finished work");
    }

    fn retrying(&self, task: &str, attempt: u32, why: &str, delay: std::time::Duration) {
        if let Ok(mut r) = self.running.lock() {
            r.retain(|t| t != task);
        }
        self.say(&format!(
            "{} {task}: attempt {attempt} failed ({why}); again in its worktree in {}",
            ui::yellow("retry"),
            ui::duration(delay.as_secs_f64())
        ));
    }
}

pub fn run(args: RunArgs, resume: bool) -> Result<u8> {
    // Before the remote is fetched or pushed to: bad input changes nothing.
    if args.jobs == Some(0) {
        return Err(crate::error::refuse("-j must be at least 1"));
    }
    super::sync::before_run(
        args.plan.as_deref(),
        args.remote.as_deref(),
        args.lease.as_deref(),
    )?;
    let (repo, snap) = open_plan_to_run(args.plan.as_deref())?;
    let plan = snap.plan_name.clone();
    crate::git::version::require_for_plan(&snap.plan)?;
    let jobs = args
        .jobs
        .or(snap.plan.defaults.parallel)
        .or_else(|| crate::config::of(&repo).parallel())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let total = snap.plan.tasks().count() as u64;
    let settled = snap.settled_count()? as u64;
    let bar = (ui::stderr_is_terminal() && !args.json).then(|| {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {pos}/{len} tasks done · running: {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_position(settled);
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let display = Display {
        plan: plan.clone(),
        bar,
        running: Mutex::new(Vec::new()),
        last_wait: Mutex::new(String::new()),
        prefix: jobs > 1,
        json: args.json,
        gates: GateOutput::choose(args.verbose),
        notify: crate::notify::Notifier::new(&repo, &plan, &snap.plan),
        phases: snap
            .plan
            .tasks()
            .map(|(p, t)| (t.id.clone(), p.id.clone()))
            .collect(),
    };
    if resume {
        display.say(&format!("resuming plan {plan}"));
    }
    let mut retry = args.retry.clone();
    if args.retry_failed {
        if let Some(phase) = snap.current_phase() {
            for t in &phase.tasks {
                if snap.task_status(&t.id)? == crate::state::TaskStatus::Failed
                    && snap.plan.task_run(t).is_some()
                    && !retry.contains(&t.id)
                {
                    retry.push(t.id.clone());
                }
            }
        }
    }
    let opts = RunOptions {
        jobs,
        phase: args.phase.clone(),
        task: args.task.clone(),
        retry,
    };
    crate::process::stop_commands_on_interrupt(|_| {
        ui::error("interrupted again: ended at once; the tasks this run had started were stopped");
        ui::hint("`git orch resume` recovers them and carries on");
    });
    let result = run::run(&repo, &plan, &opts, &display);
    if let Some(bar) = &display.bar {
        bar.finish_and_clear();
    }
    let report = match (result, crate::process::stop_requested()) {
        (Ok(report), _) => report,
        // Stopped half-way through a step (gates, a git the same Ctrl-C
        // killed): nothing of that step was recorded.
        (Err(e), Some(stop)) => {
            if e.is::<crate::process::Stopped>() {
                ui::error(&format!(
                    "plan {plan}: the run stopped: {} while gates ran; none was recorded",
                    stop.describe()
                ));
            } else {
                ui::error(&format!(
                    "plan {plan}: the run stopped: {}: {e:#}",
                    stop.describe()
                ));
            }
            ui::hint("`git orch resume` carries on");
            display.notify.emit(
                "run-finished",
                json!({ "ok": false, "interrupted": stop.describe() }),
            );
            display.notify.finish();
            return Ok(stop.exit_code());
        }
        (Err(e), _) => {
            display.notify.emit(
                "run-finished",
                json!({ "ok": false, "error": format!("{e:#}") }),
            );
            display.notify.finish();
            return Err(e);
        }
    };
    display.notify.emit(
        "run-finished",
        json!({
            "ok": report.ok(),
            "landed": report.landed,
            "failed": report.failed.iter().map(|(id, _, _)| id).collect::<Vec<_>>(),
            "conflicts": report.conflicts.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            "checkpoints": report.checkpoints,
            "gate_failure": report.gate_failure,
            "manual": report.manual,
            "finished": report.finished_plan,
            "interrupted": report.interrupted.map(|s| s.describe()),
        }),
    );
    display.notify.finish();
    if args.json {
        ui::json_doc(
            Schema::Run,
            &json!({
                "plan": plan,
                "ok": report.ok(),
                "landed": report.landed,
                "failed": report.failed.iter().map(|(id, reason, log)| json!({"task": id, "reason": reason, "log": log})).collect::<Vec<_>>(),
                "conflicts": report.conflicts.iter().map(|(id, files)| json!({"task": id, "files": files})).collect::<Vec<_>>(),
                "checkpoints": report.checkpoints,
                "gate_failure": report.gate_failure,
                "manual": report.manual,
                "review": report.review,
                "fixes": report.fixes,
                "finished": report.finished_plan,
                "interrupted": report.interrupted.map(|s| s.describe()),
                "stopped": report.stopped.iter().map(|(id, kept)| json!({"task": id, "kept": kept})).collect::<Vec<_>>(),
                "lost_races": crate::trace::lost_races(),
                "taken_checkpoints": report.taken,
            }),
        )?;
    }
    if let Some(stop) = report.interrupted {
        ui::error(&format!(
            "plan {plan}: the run stopped: {}",
            stop.describe()
        ));
        if !report.stopped.is_empty() {
            let ids: Vec<&str> = report.stopped.iter().map(|(id, _)| id.as_str()).collect();
            ui::note(&format!(
                "  stopped and pending again: {} (what they left is kept, see above)",
                ids.join(", ")
            ));
        }
        if !report.landed.is_empty() {
            ui::note(&format!(
                "  landed before it stopped: {}",
                report.landed.join(", ")
            ));
        }
        if stop == crate::process::Stop::Abandoned {
            ui::hint(&format!(
                "what its tasks held is kept under refs/orch/{plan}/preserved/ (`git for-each-ref refs/orch/{plan}/preserved/`)"
            ));
        } else {
            ui::hint("`git orch resume` carries on");
        }
        return Ok(stop.exit_code());
    }
    if let Some(r) = crate::state::sync::active() {
        let taken = if report.taken.is_empty() {
            String::new()
        } else {
            format!(
                "; checkpoints taken from other machines: {}",
                report.taken.join(", ")
            )
        };
        ui::note(&format!(
            "shared through {}: {} lost race(s) on the remote{taken}",
            r.name,
            crate::trace::lost_races()
        ));
    }
    if !report.ok() {
        ui::error(&format!("plan {plan}: the run stopped at a failure"));
        for (id, reason, log) in &report.failed {
            ui::note(&format!("  task {id} failed: {reason}"));
            if log.as_deref().is_some_and(|l| !l.is_empty()) {
                ui::note(&format!(
                    "    log: `{}`",
                    crate::engine::recover::log_command(&plan, id)
                ));
            }
            let worktree = crate::engine::workspace::task_worktree(&repo, &plan, id);
            let recovery = crate::engine::recover::Recovery::of(reason, worktree.exists());
            ui::note(&format!(
                "    recover: {}",
                recovery.hint(id, reason, &worktree)
            ));
        }
        for (id, files) in &report.conflicts {
            let within = if files.is_empty() {
                String::new()
            } else {
                format!(" in {}", files.join(", "))
            };
            ui::note(&format!(
                "  task {id} conflicts with orch/{plan}/work{within}; its worktree is kept at {}",
                crate::engine::workspace::task_worktree(&repo, &plan, id).display()
            ));
            ui::note(&format!("    resolve: there, `git merge orch/{plan}/work`, fix and commit, then `git orch task done {id}` and `git orch run`"));
        }
        if !report.stopped.is_empty() {
            let ids: Vec<&str> = report.stopped.iter().map(|(id, _)| id.as_str()).collect();
            ui::note(&format!(
                "  stopped and pending again: {} (what they left is kept, see above)",
                ids.join(", ")
            ));
        }
        if let Some(phase) = &report.gate_failure {
            ui::note(&format!(
                "  phase {phase} failed its gates (see above; a gate's whole log: `git orch log {plan} {phase}:GATE`)"
            ));
        }
        ui::hint(&format!(
            "or go back to the last checkpoint: `git orch rollback {plan}`"
        ));
        return Ok(1);
    }
    if !report.review.is_empty() {
        ui::note(&format!("waiting for review: {}", report.review.join(", ")));
        ui::hint("`git orch task approve ID` lands it; `git orch task reject ID -m \"…\"` sends it back to its agent");
    }
    if !report.manual.is_empty() {
        ui::note(&format!(
            "waiting for tasks done by hand: {}",
            report.manual.join(", ")
        ));
        ui::hint("`git orch task start ID`, work, then `git orch task done ID`");
    } else if report.finished_plan {
        ui::note(&format!(
            "plan {plan}: every phase is checkpointed; the result is orch/{plan}/work"
        ));
    }
    Ok(0)
}
