use anyhow::Result;
use serde_json::json;

use super::open_plan;
use crate::cli::PlanArg;
use crate::engine::finish::finish;
use crate::schema::Schema;
use crate::ui;

pub fn run(args: PlanArg) -> Result<u8> {
    let (repo, snap) = open_plan(args.plan.as_deref())?;
    let plan = snap.plan_name.clone();
    let report = finish(&repo, &plan)?;
    if args.json {
        ui::json_doc(
            Schema::Finish,
            &json!({ "plan": plan, "finished": true, "removed_branches": report.removed_branches, "preserved": report.preserved }),
        )?;
        return Ok(0);
    }
    ui::note(&format!(
        "plan {plan} finished: removed {} task branch(es) and the worktrees",
        report.removed_branches
    ));
    for r in &report.preserved {
        ui::note(&format!("  kept {r}"));
    }
    ui::note(&format!(
        "the result is orch/{plan}/work; tags and orch/{plan}/state stay as the record"
    ));
    Ok(0)
}
