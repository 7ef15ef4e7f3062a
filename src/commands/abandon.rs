//! `git orch abandon [PLAN]`.

use anyhow::Result;
use serde_json::json;

use super::open_plan;
use crate::cli::PlanArg;
use crate::engine::abandon::abandon;
use crate::schema::Schema;
use crate::ui;

pub fn run(args: PlanArg) -> Result<u8> {
    let (repo, snap) = open_plan(args.plan.as_deref())?;
    let plan = snap.plan_name.clone();
    let report = abandon(&repo, &plan)?;
    if args.json {
        ui::json_doc(
            Schema::Abandon,
            &json!({
                "plan": plan, "abandoned": true, "removed_branches": report.removed_branches,
                "preserved": report.preserved, "state": report.state.to_string(),
            }),
        )?;
    } else {
        ui::note(&format!(
            "plan {plan} abandoned: removed {} task branch(es) and the worktrees",
            report.removed_branches
        ));
        for r in &report.preserved {
            ui::note(&format!("  kept {r}"));
        }
        ui::note(&format!(
            "orch/{plan}/state, orch/{plan}/work and the tags stay as the record; see what was kept with `git for-each-ref refs/orch/{plan}/preserved/`"
        ));
    }
    for pid in &report.still_running {
        ui::warn(&format!(
            "runner pid {pid} of plan {plan} had not stopped after a minute; what it still holds is not kept: see `git worktree list`"
        ));
    }
    Ok(0)
}
