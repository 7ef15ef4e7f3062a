use anyhow::Result;
use serde_json::json;

use super::open_plan;
use crate::cli::LogArgs;
use crate::error::{refuse, refuse_with_hint};
use crate::schema::Schema;
use crate::state::{layout, names, store, Event, Snapshot, TaskStatus};
use crate::ui;

/// The state branch's first-parent history: one line per state change; or,
/// given a TASK or GATE, that stored log.
pub fn run(args: LogArgs) -> Result<u8> {
    let (plan, name) = match (&args.plan, &args.name) {
        (Some(plan), Some(name)) => (Some(plan.as_str()), Some(name.as_str())),
        // One name: a plan if there is a plan of that name, else a log
        // name in the plan `git orch log` would show.
        (Some(one), None) => {
            let repo = super::open_repo()?;
            let is_plan = crate::plan::validate_id("plan", one).is_ok()
                && store::plan_names(&repo)?.iter().any(|p| p == one);
            if is_plan {
                (Some(one.as_str()), None)
            } else {
                (None, Some(one.as_str()))
            }
        }
        _ => (None, None),
    };
    if let Some(name) = name {
        if args.max.is_some() {
            return Err(refuse(
                "`-n` counts events of the history; leave it out to print a log",
            ));
        }
        return print_log(plan, name, args.attempt, args.json);
    }
    if args.attempt.is_some() {
        return Err(refuse_with_hint(
            "`--attempt` needs a task",
            "name it: `git orch log [PLAN] TASK --attempt N`",
        ));
    }
    let (repo, snap) = open_plan(plan)?;
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

/// A stored log, found by what it is the log of.
struct Found {
    /// `task ID, attempt N` or `gate G of phase P`, for messages.
    what: String,
    path: String,
    task: Option<String>,
    attempt: Option<u32>,
    phase: Option<String>,
    gate: Option<String>,
}

/// `git orch log [PLAN] TASK|PHASE:GATE|GATE`: the raw log on stdout.
fn print_log(plan: Option<&str>, name: &str, attempt: Option<u32>, json: bool) -> Result<u8> {
    let (repo, snap) = open_plan(plan)?;
    let found = resolve(&snap, name, attempt)?;
    let Some(bytes) = repo.read_path(snap.tree, &found.path)? else {
        return Err(refuse_with_hint(
            format!("the log of {} is not in the state branch", found.what),
            format!(
                "it was named `{}`; see what is there with `git ls-tree -r --name-only {}`",
                found.path,
                names::state(&snap.plan_name)
            ),
        ));
    };
    if json {
        ui::json_doc(
            Schema::LogFile,
            &json!({
                "plan": snap.plan_name,
                "task": found.task,
                "attempt": found.attempt,
                "phase": found.phase,
                "gate": found.gate,
                "path": found.path,
                "log": String::from_utf8_lossy(&bytes),
            }),
        )?;
        return Ok(0);
    }
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error of ours.
    let _ = stdout.write_all(&bytes).and_then(|_| stdout.flush());
    Ok(0)
}

/// The resolution rules: `PHASE:GATE` is that phase's latest run of the
/// gate; a bare name is a task if the plan has one of that id, else a gate:
/// the current phase's run of it, or the one phase that has run it.
fn resolve(snap: &Snapshot, name: &str, attempt: Option<u32>) -> Result<Found> {
    let plan = &snap.plan_name;
    // A stored gate log by its path, as `git orch gate` and the pre-push
    // gate name theirs: `logs/gates/<commit>/<gate>.log`.
    if let Some(rest) = name.strip_prefix("logs/gates/") {
        let parts: Vec<&str> = rest.split('/').collect();
        let ok = matches!(parts.as_slice(), [commit, file]
            if commit.chars().all(|c| c.is_ascii_hexdigit())
                && file.strip_suffix(".log").is_some_and(|g| crate::plan::validate_id("gate", g).is_ok()));
        if !ok || attempt.is_some() {
            return Err(refuse_with_hint(
                format!("bad log name `{name}`"),
                "a gate run's log is `logs/gates/COMMIT/GATE.log`, as `git orch gate` prints it",
            ));
        }
        return Ok(Found {
            what: format!("`{name}`"),
            path: name.to_string(),
            task: None,
            attempt: None,
            phase: None,
            gate: parts[1].strip_suffix(".log").map(str::to_string),
        });
    }
    // Task, phase and gate names all follow the id rules.
    for part in name.splitn(2, ':') {
        if let Err(e) = crate::plan::validate_id("name", part) {
            return Err(refuse_with_hint(
                format!("bad log name: {e}"),
                candidates(snap),
            ));
        }
    }
    if let Some((phase, gate)) = name.split_once(':') {
        if attempt.is_some() {
            return Err(refuse(
                "`--attempt` is for a task's log; a gate keeps its latest run",
            ));
        }
        if snap.plan.phases.iter().all(|p| p.id != phase) {
            return Err(refuse_with_hint(
                format!("plan `{plan}` has no phase `{phase}`"),
                candidates(snap),
            ));
        }
        let result = snap
            .state
            .phases
            .get(phase)
            .and_then(|p| p.gates.iter().find(|g| g.name == gate));
        return match result {
            Some(g) => Ok(gate_found(phase, g)),
            None => Err(refuse_with_hint(
                format!("phase `{phase}` has no stored run of a gate `{gate}`"),
                candidates(snap),
            )),
        };
    }
    if snap.plan.task(name).is_some() {
        return task_found(snap, name, attempt);
    }
    // A fix-forward attempt (`PHASE.fix-N`) is a task made in the state,
    // not the plan, with one log.
    let fix = snap.plan.phases.iter().find_map(|p| {
        let f = snap
            .state
            .phases
            .get(&p.id)?
            .fixes
            .iter()
            .find(|f| f.id == name)?;
        Some((p.id.as_str(), f))
    });
    if let Some((phase, fix)) = fix {
        if attempt.is_some() {
            return Err(refuse(format!(
                "`--attempt` is for a plan's task; fix-forward `{name}` is one attempt with one log"
            )));
        }
        return Ok(Found {
            what: format!("fix-forward `{name}`"),
            path: fix.log.clone(),
            task: Some(fix.id.clone()),
            attempt: None,
            phase: Some(phase.to_string()),
            gate: None,
        });
    }
    if attempt.is_some() {
        return Err(refuse_with_hint(
            format!("plan `{plan}` has no task `{name}`"),
            candidates(snap),
        ));
    }
    let ran: Vec<(&str, &crate::state::GateResult)> = snap
        .plan
        .phases
        .iter()
        .filter_map(|p| {
            let g = snap
                .state
                .phases
                .get(&p.id)?
                .gates
                .iter()
                .find(|g| g.name == name)?;
            Some((p.id.as_str(), g))
        })
        .collect();
    let current = snap.current_phase().map(|p| p.id.as_str());
    if let Some((phase, g)) = ran.iter().find(|(p, _)| Some(*p) == current) {
        return Ok(gate_found(phase, g));
    }
    match ran.as_slice() {
        [(phase, g)] => Ok(gate_found(phase, g)),
        [] => Err(refuse_with_hint(
            format!("plan `{plan}` has no task `{name}` and no stored run of a gate `{name}`"),
            candidates(snap),
        )),
        many => {
            let names: Vec<String> = many.iter().map(|(p, _)| format!("`{p}:{name}`")).collect();
            Err(refuse_with_hint(
                format!("gate `{name}` ran in several phases"),
                format!("name one: {}", names.join(", ")),
            ))
        }
    }
}

fn gate_found(phase: &str, g: &crate::state::GateResult) -> Found {
    Found {
        what: format!("gate `{}` of phase `{phase}`", g.name),
        path: g.log.clone(),
        task: None,
        attempt: None,
        phase: Some(phase.to_string()),
        gate: Some(g.name.clone()),
    }
}

fn task_found(snap: &Snapshot, id: &str, attempt: Option<u32>) -> Result<Found> {
    let t = snap.task(id)?;
    let ended = if t.state() == TaskStatus::Running {
        t.attempts.saturating_sub(1)
    } else {
        t.attempts
    };
    let stored = |n: u32| format!("attempts 1 to {n} have logs");
    let n = match attempt {
        Some(n) if n >= 1 && n <= ended => n,
        Some(n) => {
            return Err(refuse_with_hint(
                format!("task `{id}` has no stored log of attempt {n}"),
                if ended == 0 {
                    "it has not ended an attempt yet".to_string()
                } else {
                    stored(ended)
                },
            ))
        }
        None if ended == 0 => {
            let why = if t.state() == TaskStatus::Running {
                "its first attempt is running; its log is stored when it ends"
            } else {
                "it has not run yet"
            };
            return Err(refuse_with_hint(
                format!("task `{id}` has no stored log"),
                why,
            ));
        }
        None => ended,
    };
    // The record names its latest log (format 1 kept it elsewhere).
    let path = match t.log.as_deref() {
        Some(latest) if n == ended => latest.to_string(),
        _ => layout::task_log(id, n),
    };
    if attempt.is_none() && t.state() == TaskStatus::Running {
        ui::note(&format!(
            "task {id}: attempt {} is running; this is the log of attempt {n}",
            t.attempts
        ));
    }
    Ok(Found {
        what: format!("task `{id}`, attempt {n}"),
        path,
        task: Some(id.to_string()),
        attempt: Some(n),
        phase: None,
        gate: None,
    })
}

/// What can be named: tasks that have a log, and each phase's gate runs.
fn candidates(snap: &Snapshot) -> String {
    let mut names: Vec<String> = Vec::new();
    for p in &snap.plan.phases {
        if let Some(ps) = snap.state.phases.get(&p.id) {
            names.extend(ps.gates.iter().map(|g| format!("{}:{}", p.id, g.name)));
        }
    }
    for p in &snap.plan.phases {
        if let Some(ps) = snap.state.phases.get(&p.id) {
            names.extend(ps.fixes.iter().map(|f| f.id.clone()));
        }
    }
    for (_, t) in snap.plan.tasks() {
        if snap
            .tasks
            .get(&t.id)
            .ok()
            .flatten()
            .is_some_and(|r| r.log.is_some())
        {
            names.push(t.id.clone());
        }
    }
    if names.is_empty() {
        return "nothing has stored a log yet".to_string();
    }
    let more = names.len().saturating_sub(12);
    names.truncate(12);
    let mut list = names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if more > 0 {
        list.push_str(&format!(" and {more} more (see `git orch status`)"));
    }
    format!("logs to name: {list}")
}
