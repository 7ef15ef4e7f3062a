use anyhow::Result;
use serde_json::json;

use super::open_repo;
use crate::cli::JsonArg;
use crate::engine::runner::{self, Runner};
use crate::schema::Schema;
use crate::state::store;
use crate::ui;

pub fn run(args: JsonArg) -> Result<u8> {
    let repo = open_repo()?;
    // State branches made with plain git under names that break the id
    // rules are not plans: say so and leave them alone.
    for (refname, _) in repo.refs_under("refs/heads/orch/")? {
        if let Some(Err(e)) = crate::plan::state_ref_plan(&refname) {
            ui::warn(&format!("skipped {}: {e}", ui::printable(&refname)));
        }
    }
    let mut rows = Vec::new();
    for name in store::plan_names(&repo)? {
        let snap = store::load(&repo, &name)?;
        let total = snap.plan.tasks().count();
        let done = snap.settled_count()?;
        let checkpoints = snap
            .plan
            .phases
            .iter()
            .filter(|p| snap.is_checkpointed(&p.id))
            .count();
        // Running tasks whose runner is gone, and what recovers each.
        let mut stale = Vec::new();
        for id in &snap.state.active {
            let t = snap.task(id)?;
            if let Some((Runner::Gone, recover)) = runner::view(&name, id, &t) {
                stale.push(json!({ "task": id, "runner": "gone", "recover": recover }));
            }
        }
        rows.push(json!({
            "plan": name,
            "title": snap.plan.title,
            "finished": snap.state.finished,
            "abandoned": snap.state.abandoned,
            "phase": snap.current_phase().map(|p| p.id.clone()),
            "tasks": total,
            "done": done,
            "phases": snap.plan.phases.len(),
            "checkpointed": checkpoints,
            "stale": stale,
        }));
    }
    if args.json {
        ui::json_doc(Schema::List, &json!({ "plans": rows }))?;
        return Ok(0);
    }
    if rows.is_empty() {
        ui::note("no plans in this repository; start one with `git orch start FILE`");
    }
    for r in rows {
        // No current phase only means every phase is checkpointed; the plan
        // is finished once `git orch finish` ran.
        let phase = r["phase"].as_str().map_or(
            "every phase checkpointed (`git orch finish` to clean up)".to_string(),
            |p| format!("phase {p}"),
        );
        let stale = r["stale"].as_array().map_or(&[][..], |a| a.as_slice());
        let mut recovers: Vec<&str> = stale.iter().filter_map(|s| s["recover"].as_str()).collect();
        recovers.dedup();
        let gone = if stale.is_empty() {
            String::new()
        } else {
            let ids: Vec<&str> = stale.iter().filter_map(|s| s["task"].as_str()).collect();
            let recovers: Vec<String> = recovers.iter().map(|c| format!("`{c}`")).collect();
            format!(
                "; {} for {}: recover with {}",
                ui::red("runner gone"),
                ids.join(", "),
                recovers.join(" / ")
            )
        };
        ui::out(&format!(
            "{:<24} {}/{} tasks, {}/{} phases checkpointed, {}{gone}",
            r["plan"].as_str().unwrap_or(""),
            r["done"],
            r["tasks"],
            r["checkpointed"],
            r["phases"],
            if r["finished"].as_bool() == Some(true) {
                "finished".to_string()
            } else if r["abandoned"].as_bool() == Some(true) {
                "abandoned".to_string()
            } else {
                phase
            }
        ));
    }
    Ok(0)
}
