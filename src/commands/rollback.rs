use anyhow::Result;
use serde_json::json;

use super::open_plan;
use crate::cli::RollbackArgs;
use crate::engine::rollback;
use crate::git::short;
use crate::schema::Schema;
use crate::ui;

pub fn run(args: RollbackArgs) -> Result<u8> {
    let (repo, snap) = open_plan(args.plan.as_deref())?;
    let plan = snap.plan_name.clone();
    if args.undo {
        let report = rollback::undo(&repo, &plan)?;
        if args.json {
            ui::json_doc(
                Schema::RollbackUndo,
                &json!({ "plan": plan, "undone": report.to, "work": report.work.to_string(), "restored_tasks": report.restored_tasks }),
            )?;
        } else {
            ui::note(&format!(
                "rollback to {} undone: orch/{plan}/work is back at {}",
                report.to,
                short(report.work)
            ));
            if !report.restored_tasks.is_empty() {
                ui::note(&format!(
                    "restored tasks: {}",
                    report.restored_tasks.join(", ")
                ));
            }
        }
        return Ok(0);
    }
    let report = rollback::rollback(&repo, &plan, args.to.as_deref())?;
    if args.json {
        ui::json_doc(
            Schema::Rollback,
            &json!({
                "plan": plan, "to": report.to, "work": report.commit.to_string(),
                "reset_tasks": report.reset_tasks, "preserved": report.preserved,
            }),
        )?;
        return Ok(0);
    }
    ui::note(&format!(
        "rolled back to {}: orch/{plan}/work is at {}",
        report.to,
        short(report.commit)
    ));
    if !report.reset_tasks.is_empty() {
        ui::note(&format!("pending again: {}", report.reset_tasks.join(", ")));
    }
    for r in &report.preserved {
        ui::note(&format!("  kept {r}"));
    }
    ui::hint(&format!("undo with `git orch rollback --undo {plan}`"));
    Ok(0)
}
