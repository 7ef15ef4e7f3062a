use anyhow::Result;
use serde_json::json;

use super::open_plan;
use crate::cli::LogArgs;
use crate::schema::Schema;
use crate::state::{names, Event};
use crate::ui;

/// The state branch's first-parent history: one line per state change.
pub fn run(args: LogArgs) -> Result<u8> {
    let (repo, snap) = open_plan(args.plan.as_deref())?;
    let mut walk = repo.git.revwalk()?;
    walk.push(snap.commit)?;
    walk.simplify_first_parent()?;
    let mut events = Vec::new();
    for id in walk {
        let commit = repo.git.find_commit(id?)?;
        // The typed event (`null` for a commit made by git-orch 0.1).
        let event = commit.message().and_then(Event::from_message);
        events.push(json!({
            "commit": commit.id().to_string(),
            "time": commit.time().seconds(),
            "author": commit.author().name().unwrap_or(""),
            "summary": commit.summary().unwrap_or(""),
            "event": event,
        }));
        if args.max.is_some_and(|m| events.len() >= m) {
            break;
        }
    }
    if args.json {
        ui::json_doc(
            Schema::Log,
            &json!({ "plan": snap.plan_name, "ref": names::state(&snap.plan_name), "events": events }),
        )?;
        return Ok(0);
    }
    for e in &events {
        let when = e["time"].as_i64().unwrap_or(0);
        let commit = e["commit"].as_str().unwrap_or("");
        ui::out(&format!(
            "{} {} {}",
            ui::dim(crate::state::ids::short_text(commit)),
            ui::dim(&crate::render::utc_time(when as f64)),
            ui::printable(e["summary"].as_str().unwrap_or(""))
        ));
    }
    Ok(0)
}
