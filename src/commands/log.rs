use anyhow::Result;
use serde_json::json;

use super::open_plan;
use crate::cli::LogArgs;
use crate::state::names;
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
        events.push(json!({
            "commit": commit.id().to_string(),
            "time": commit.time().seconds(),
            "author": commit.author().name().unwrap_or(""),
            "summary": commit.summary().unwrap_or(""),
        }));
        if args.max.is_some_and(|m| events.len() >= m) {
            break;
        }
    }
    if args.json {
        ui::json(
            &json!({ "plan": snap.plan_name, "ref": names::state(&snap.plan_name), "events": events }),
        );
        return Ok(0);
    }
    for e in &events {
        let when = e["time"].as_i64().unwrap_or(0);
        ui::out(&format!(
            "{} {} {}",
            ui::dim(&e["commit"].as_str().unwrap_or("")[..10]),
            ui::dim(&format_time(when)),
            e["summary"].as_str().unwrap_or("")
        ));
    }
    Ok(0)
}

/// `2026-11-21 22:05:03` in UTC, without pulling in a date crate.
fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
