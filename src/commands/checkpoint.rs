use anyhow::Result;
use serde_json::json;

use super::open_plan_to_run;
use crate::cli::CheckpointArgs;
use crate::engine::checkpoint::checkpoint;
use crate::engine::gates::{GateOptions, GateRun};
use crate::git::short;
use crate::schema::Schema;
use crate::ui;

pub fn run(args: CheckpointArgs) -> Result<u8> {
    let (repo, snap) = open_plan_to_run(args.plan.as_deref())?;
    let plan = snap.plan_name.clone();
    let output = GateOutput::choose(args.verbose);
    let on_line = |gate: &str, line: &str| {
        if output.stream {
            ui::note(&format!("{} {line}", ui::dim(&format!("[{gate}]"))))
        }
    };
    let on_start = |gate: &str| ui::note(&format!("running gate {gate}…"));
    let opts = GateOptions {
        no_cache: args.no_cache,
        jobs: args.jobs,
        on_line: &on_line,
        on_start: &on_start,
    };
    let notify = crate::notify::Notifier::new(&repo, &plan, &snap.plan);
    let report = checkpoint(&repo, &plan, args.phase.as_deref(), &opts)?;
    crate::notify::checkpointed(&notify, &report);
    if args.json {
        ui::json_doc(
            Schema::Checkpoint,
            &json!({
                "plan": plan, "phase": report.phase, "commit": report.commit.to_string(), "passed": report.passed,
                "tag": report.passed.then(|| format!("orch/{plan}/{}", report.phase)),
                "gates": gates_json(&report.runs),
                "next_phase": report.snap.current_phase().map(|p| p.id.clone()),
            }),
        )?;
    } else {
        print_gates(&plan, &report.phase, &report.runs, output);
        if report.passed {
            ui::note(&format!(
                "phase {} {} at {}: tag orch/{plan}/{}",
                report.phase,
                ui::green("checkpointed"),
                short(report.commit),
                report.phase
            ));
            match report.snap.current_phase() {
                Some(next) => ui::note(&format!("phase {} is now active", next.id)),
                None => ui::note("every phase is checkpointed; `git orch finish` cleans up"),
            }
        }
    }
    // With --json too: stdout holds the document, stderr says why on the
    // `error:` line (what `git orch mcp` shows as a tool error's text).
    if !report.passed {
        ui::error(&format!(
            "phase {} failed its gates; no checkpoint was made",
            report.phase
        ));
        // Landed tasks cannot be reset; what works is a gate that passes
        // on a second try, or a rollback that reopens the phase's tasks.
        ui::hint(&format!("fix forward with `git orch task reopen ID` (the task runs again on top of its work, with the gate's output in its brief), or `git orch rollback {plan}` to redo the phase"));
    }
    Ok(if report.passed { 0 } else { 1 })
}

pub fn gates_json(runs: &[GateRun]) -> serde_json::Value {
    json!(runs
        .iter()
        .map(|r| json!({
            "name": r.result.name, "command": r.result.command, "passed": r.result.passed,
            "seconds": r.result.seconds, "cached": r.result.cached, "commit": r.result.commit,
            "log": r.result.log, "reason": r.result.reason,
        }))
        .collect::<Vec<_>>())
}

/// How many of a failing gate's last lines are shown.
pub const TAIL_LINES: usize = 20;

/// What is shown of a gate's output. On a terminal: nothing while it runs,
/// a failing gate's last [`TAIL_LINES`] lines and the command that prints
/// the whole log after it. Piped (a CI log): every line as it comes, since
/// the log may be all that is kept of the run, and the last lines again
/// under the verdict, so the end of the log says what failed. `-v`: every
/// line, as it comes, and nothing again.
#[derive(Clone, Copy)]
pub struct GateOutput {
    pub stream: bool,
    pub tail: bool,
}

impl GateOutput {
    pub fn choose(verbose: bool) -> GateOutput {
        GateOutput {
            stream: verbose || !ui::interactive(),
            tail: !verbose,
        }
    }
}

/// One line per gate; a failure names its commit and where its log is.
pub fn print_gates(plan: &str, phase: &str, runs: &[GateRun], output: GateOutput) {
    for r in runs {
        let res = &r.result;
        let verdict = if res.passed {
            ui::green("passed")
        } else {
            ui::red("failed")
        };
        let extra = if res.cached {
            " (cached)".to_string()
        } else {
            format!(" in {}", ui::duration(res.seconds))
        };
        ui::note(&format!("gate {}: {verdict}{extra}", res.name));
        if !res.passed {
            if output.tail {
                print_tail(&r.log);
            }
            ui::note(&format!(
                "  {} on {}; full log: `git orch log {plan} {phase}:{}`",
                res.reason.as_deref().unwrap_or("failed"),
                res.commit.short(),
                res.name
            ));
        }
    }
}

/// The last [`TAIL_LINES`] lines of a log, indented, after how many came before.
fn print_tail(log: &[u8]) {
    let text = String::from_utf8_lossy(log);
    let lines: Vec<&str> = text.lines().collect();
    let skipped = lines.len().saturating_sub(TAIL_LINES);
    if skipped > 0 {
        ui::note(&format!(
            "  {}",
            ui::dim(&format!(
                "… {skipped} lines before these; its last {TAIL_LINES}:"
            ))
        ));
    }
    for line in &lines[skipped..] {
        ui::note(&format!("  {} {line}", ui::dim("│")));
    }
}
