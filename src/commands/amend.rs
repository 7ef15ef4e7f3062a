//! `git orch plan amend FILE [PLAN] [--dry-run]`.

use anyhow::Result;
use serde_json::json;

use super::open_plan;
use crate::cli::PlanAmendArgs;
use crate::engine::amend::{amend, Source};
use crate::error::EXIT_REFUSED;
use crate::schema::Schema;
use crate::ui;

pub fn run(args: PlanAmendArgs) -> Result<u8> {
    let (new, _warnings) = super::load_plan_file(&args.file, "amended")?;
    let named = args.plan.as_deref().unwrap_or(&new.name);
    let (repo, snap) = open_plan(Some(named))?;
    let name = snap.plan_name.clone();
    let source = std::fs::read_to_string(&args.file)?;
    let source_name = args
        .file
        .file_name()
        .map_or("plan.toml".to_string(), |n| n.to_string_lossy().to_string());
    let done = amend(
        &repo,
        &name,
        &new,
        Source {
            name: &source_name,
            text: &source,
        },
        args.dry_run,
    )?;
    let code = if done.refused.is_empty() {
        0
    } else {
        EXIT_REFUSED
    };
    if args.json {
        ui::json_doc(
            Schema::PlanAmend,
            &json!({
                "plan": name, "dry_run": args.dry_run, "applied": done.applied,
                "changes": done.changes, "refused": done.refused,
                "from": done.from.to_string(), "to": done.to.to_string(),
                "state": done.state.map(|c| c.to_string()),
            }),
        )?;
    }
    if !done.refused.is_empty() {
        for r in &done.refused {
            ui::error(r);
        }
        ui::hint(&format!(
            "nothing was changed; what has started or landed stays as it is (`git orch status {name}`); change the rest, or `git orch task reset ID` first to change a task"
        ));
        return Ok(code);
    }
    if args.json {
        return Ok(code);
    }
    let head = if done.applied {
        format!("plan {name} amended:")
    } else {
        format!("plan {name} would be amended (--dry-run, nothing changed):")
    };
    ui::note(&head);
    for c in &done.changes {
        ui::note(&format!("  {c}"));
    }
    if done.applied {
        ui::hint(&format!(
            "a runner of the plan picks the new plan up as it goes; or `git orch run {name}`"
        ));
    }
    Ok(code)
}
