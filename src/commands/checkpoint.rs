use anyhow::Result;
use serde_json::json;

use super::open_plan;
use crate::cli::CheckpointArgs;
use crate::engine::checkpoint::checkpoint;
use crate::engine::gates::{GateOptions, GateRun};
use crate::git::short;
use crate::schema::Schema;
use crate::ui;

pub fn run(args: CheckpointArgs) -> Result<u8> {
    let (repo, snap) = open_plan(args.plan.as_deref())?;
    let plan = snap.plan_name.clone();
    let on_line =
        |gate: &str, line: &str| ui::note(&format!("{} {line}", ui::dim(&format!("[{gate}]"))));
    let on_start = |gate: &str| ui::note(&format!("running gate {gate}…"));
    let opts = GateOptions {
        no_cache: args.no_cache,
        jobs: args.jobs,
        on_line: &on_line,
        on_start: &on_start,
    };
    let report = checkpoint(&repo, &plan, args.phase.as_deref(), &opts)?;
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
        print_gates(&plan, &report.runs);
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
        } else {
            ui::error(&format!(
                "phase {} failed its gates; no checkpoint was made",
                report.phase
            ));
            // Landed tasks cannot be reset; what works is a gate that passes
            // on a second try, or a rollback that reopens the phase's tasks.
            ui::hint(&format!("fix forward with `git orch task reopen ID` (the task runs again on top of its work, with the gate's output in its brief), or `git orch rollback {plan}` to redo the phase"));
        }
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

/// One line per gate; a failure names its commit and where its log is.
pub fn print_gates(plan: &str, runs: &[GateRun]) {
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
            ui::note(&format!(
                "  {} on {}; log: `git show orch/{plan}/state:{}`",
                res.reason.as_deref().unwrap_or("failed"),
                res.commit.short(),
                res.log
            ));
        }
    }
}
