//! `plan amend`: a started plan becomes a new version of itself. What has
//! not started may change freely (new tasks and phases, pending tasks,
//! timeouts, scopes, gates, defaults, any other table of the plan: the
//! comparison is over the plan's serialised fields, so a field added to
//! the plan schema is covered without a line here); what has started or
//! landed may not: a done or running task's scope, any started task's id
//! (removing it) or phase, a checkpointed phase, the position of a phase
//! that has started, the plan's name and base. Every refused change is
//! named, and nothing is changed.
//!
//! The new plan goes through the seal (see [`crate::state::seal`]): the
//! seal file accepts the plan before and after while the state commit is
//! made, then only the new one; the state records the new blob and a
//! `plan-amended` event with every change.

use std::collections::BTreeMap;

use anyhow::Result;
use git2::Oid;
use serde_json::Value;

use crate::error::refuse_with_hint;
use crate::git::Repo;
use crate::plan::Plan;
use crate::state::{self, layout, seal, store, transition, Event, Snapshot, TaskStatus};

/// What an amendment changes, or would change, or why it cannot.
#[derive(Debug, Clone)]
pub struct Amendment {
    pub changes: Vec<String>,
    /// Changes to what has started or landed: when any, nothing changed.
    pub refused: Vec<String>,
    pub applied: bool,
    pub from: Oid,
    pub to: Oid,
    /// The state commit that recorded it.
    pub state: Option<Oid>,
}

/// The refused changes, carried out of the transaction.
#[derive(Debug)]
struct Refused(Vec<String>);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("; "))
    }
}

impl std::error::Error for Refused {}

/// The plan file as written, kept in the state beside the first one.
pub struct Source<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

/// Compares `new` with the plan as it stands and, unless `dry_run` or a
/// change is refused, makes it the plan (one state commit).
pub fn amend(
    repo: &Repo,
    plan: &str,
    new: &Plan,
    source: Source<'_>,
    dry_run: bool,
) -> Result<Amendment> {
    let snap = store::load(repo, plan)?;
    super::tasks::refuse_if_finished(&snap)?;
    let from = seal::plan_blob(repo, &snap.plan)?;
    let to = seal::plan_blob(repo, new)?;
    let (changes, refused) = compare(&snap, new)?;
    let mut out = Amendment {
        changes,
        refused,
        applied: false,
        from,
        to,
        state: None,
    };
    if out.changes.is_empty() && out.refused.is_empty() {
        return Err(refuse_with_hint(
            format!("the plan file is plan `{plan}` as it stands: nothing to amend"),
            format!("edit the file, then `git orch plan amend FILE {plan}`"),
        ));
    }
    if dry_run || !out.refused.is_empty() {
        return Ok(out);
    }
    // Amending from a file here approves its commands, as `start` does,
    // before the state holds them (a crash after the commit leaves the
    // plan runnable); a runner with the old plan pinned accepts them then.
    let was_approved = crate::trust::is_approved(repo, plan, &snap.plan);
    crate::trust::record(repo, plan, new, "plan amend")?;
    // Both plans are sealed while the state commit is made.
    let before = seal::sealed(repo, plan, &snap.state);
    let mut during = before.clone();
    during.push(to);
    seal::write_all(repo, plan, &during)?;
    let bytes = store::plan_bytes(new)?;
    let result = store::transact(repo, plan, |s, change| {
        super::tasks::refuse_if_finished(s)?;
        let (changes, refused) = compare(s, new)?;
        if !refused.is_empty() {
            return Err(Refused(refused).into());
        }
        let from = seal::plan_blob(repo, &s.plan)?;
        change.file(layout::PLAN_FILE, bytes.clone());
        change.file(format!("source/{}", source.name), source.text.as_bytes());
        change.state.plan_seal = Some(to.to_string());
        // A task added as `skip = true` starts skipped, as at `start`.
        for (_, t) in new.tasks().filter(|(_, t)| t.skip) {
            if s.plan.task(&t.id).is_none() {
                let skipped =
                    transition::skip(&change.task(&t.id)?, "marked done in the amended plan");
                change.put_task(&t.id, skipped);
            }
        }
        change.event = Some(Event::PlanAmended {
            from: from.to_string(),
            to: to.to_string(),
            changes: changes.clone(),
            at: state::now(),
        });
        Ok(changes)
    });
    match result {
        Ok((changes, after)) => {
            seal::write_all(repo, plan, &[to])?;
            out.changes = changes;
            out.applied = true;
            out.state = Some(after.commit);
            Ok(out)
        }
        Err(e) => {
            let _ = seal::write_all(repo, plan, &before);
            // Only the latest approval is kept: the plan as it stands gets
            // its own back.
            if was_approved {
                let _ = crate::trust::record(repo, plan, &snap.plan, "plan amend (undone)");
            }
            match e.downcast::<Refused>() {
                Ok(Refused(refused)) => {
                    out.refused = refused;
                    Ok(out)
                }
                Err(e) => Err(e),
            }
        }
    }
}

/// Every change from the snapshot's plan to `new`, and those refused.
fn compare(snap: &Snapshot, new: &Plan) -> Result<(Vec<String>, Vec<String>)> {
    let old = &*snap.plan;
    let mut changes = Vec::new();
    let mut refused = Vec::new();
    if old.name != new.name {
        refused.push(format!(
            "the plan's name cannot change (`{}` to `{}`): it names the plan's refs",
            old.name, new.name
        ));
    }
    if old.base != new.base {
        refused.push(format!(
            "`base` cannot change once the plan started (it started at {})",
            snap.state.base.short()
        ));
    }
    let (old_v, new_v) = (serde_json::to_value(old)?, serde_json::to_value(new)?);
    // Plan-wide tables and values, whatever they are.
    for key in keys(&old_v, &new_v) {
        if matches!(key.as_str(), "name" | "base" | "phases") {
            continue;
        }
        describe(&key, old_v.get(&key), new_v.get(&key), &mut changes);
    }
    phases(snap, old, new, &mut changes, &mut refused)?;
    tasks(snap, old, new, &mut changes, &mut refused)?;
    Ok((changes, refused))
}

/// Checkpointed phases stay as they are; a phase that has started keeps
/// its place; the others may be added, removed, moved and changed.
fn phases(
    snap: &Snapshot,
    old: &Plan,
    new: &Plan,
    changes: &mut Vec<String>,
    refused: &mut Vec<String>,
) -> Result<()> {
    let mut started_upto = 0;
    for (i, p) in old.phases.iter().enumerate() {
        let mut started = snap.is_checkpointed(&p.id);
        for t in &p.tasks {
            started |= snap.task_status(&t.id)? != TaskStatus::Pending;
        }
        if started {
            started_upto = i + 1;
        }
    }
    for (i, p) in old.phases.iter().enumerate() {
        let now = new.phases.iter().position(|q| q.id == p.id);
        let checkpointed = snap.is_checkpointed(&p.id);
        match now {
            None if checkpointed => refused.push(format!(
                "phase `{}` is checkpointed: it cannot be removed",
                p.id
            )),
            None if i < started_upto => refused.push(format!(
                "phase `{}` has started: it cannot be removed",
                p.id
            )),
            None => changes.push(format!("phase `{}` removed", p.id)),
            Some(j) => {
                if i < started_upto && i != j {
                    refused.push(format!(
                        "phase `{}` has started: it cannot move (from position {} to {})",
                        p.id,
                        i + 1,
                        j + 1
                    ));
                } else if i != j {
                    changes.push(format!(
                        "phase `{}` moved from position {} to {}",
                        p.id,
                        i + 1,
                        j + 1
                    ));
                }
                let q = &new.phases[j];
                if checkpointed && q != p {
                    refused.push(format!(
                        "phase `{}` is checkpointed: it cannot change ({})",
                        p.id,
                        changed_fields(&serde_json::to_value(p)?, &serde_json::to_value(q)?)
                            .join(", ")
                    ));
                    continue;
                }
                let (pv, qv) = (serde_json::to_value(p)?, serde_json::to_value(q)?);
                for key in keys(&pv, &qv) {
                    if matches!(key.as_str(), "id" | "tasks") {
                        continue;
                    }
                    describe(
                        &format!("phase `{}`: {key}", p.id),
                        pv.get(&key),
                        qv.get(&key),
                        changes,
                    );
                }
            }
        }
    }
    for (j, q) in new.phases.iter().enumerate() {
        if old.phase(&q.id).is_some() {
            continue;
        }
        if j < started_upto {
            refused.push(format!(
                "phase `{}` cannot be added at position {}: the phases up to {} have started",
                q.id,
                j + 1,
                started_upto
            ));
        } else {
            changes.push(format!(
                "phase `{}` added at position {} with {} task(s)",
                q.id,
                j + 1,
                q.tasks.len()
            ));
        }
    }
    Ok(())
}

/// Tasks by id: added, removed, moved between phases, changed field by
/// field. A started task keeps its id and phase; a done or running one
/// its `files`.
fn tasks(
    snap: &Snapshot,
    old: &Plan,
    new: &Plan,
    changes: &mut Vec<String>,
    refused: &mut Vec<String>,
) -> Result<()> {
    let checkpointed = |phase: &str| snap.is_checkpointed(phase);
    let new_tasks: BTreeMap<&str, (&str, &crate::plan::Task)> = new
        .tasks()
        .map(|(p, t)| (t.id.as_str(), (p.id.as_str(), t)))
        .collect();
    for (phase, t) in old.tasks() {
        let status = snap.task_status(&t.id)?;
        let started = status != TaskStatus::Pending;
        let landed = matches!(status, TaskStatus::Done | TaskStatus::Running);
        let Some((new_phase, nt)) = new_tasks.get(t.id.as_str()) else {
            if started {
                refused.push(format!(
                    "task `{}` is {}: it cannot be removed",
                    t.id,
                    status.as_str()
                ));
            } else if !checkpointed(&phase.id) {
                changes.push(format!("task `{}` removed", t.id));
            }
            continue;
        };
        if *new_phase != phase.id {
            if started {
                refused.push(format!(
                    "task `{}` is {}: it cannot move from phase `{}` to `{new_phase}`",
                    t.id,
                    status.as_str(),
                    phase.id
                ));
            } else if !checkpointed(&phase.id) && !checkpointed(new_phase) {
                changes.push(format!(
                    "task `{}` moved from phase `{}` to `{new_phase}`",
                    t.id, phase.id
                ));
            }
        }
        if checkpointed(&phase.id) {
            continue; // refused with its phase
        }
        let (tv, nv) = (serde_json::to_value(t)?, serde_json::to_value(nt)?);
        for key in keys(&tv, &nv) {
            if key == "id" || tv.get(&key) == nv.get(&key) {
                continue;
            }
            if key == "files" && landed {
                refused.push(format!(
                    "task `{}` is {}: its `files` cannot change ({} to {})",
                    t.id,
                    status.as_str(),
                    shown(tv.get(&key)),
                    shown(nv.get(&key))
                ));
                continue;
            }
            describe(
                &format!("task `{}`: {key}", t.id),
                tv.get(&key),
                nv.get(&key),
                changes,
            );
        }
    }
    for (id, (phase, _)) in &new_tasks {
        if old.task(id).is_none() && !checkpointed(phase) {
            changes.push(format!("task `{id}` added to phase `{phase}`"));
        }
    }
    Ok(())
}

/// The keys of two JSON objects, in order, each once.
fn keys(a: &Value, b: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in [a, b] {
        for k in v.as_object().into_iter().flat_map(|o| o.keys()) {
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
    }
    out
}

/// The keys whose values differ.
fn changed_fields(a: &Value, b: &Value) -> Vec<String> {
    keys(a, b)
        .into_iter()
        .filter(|k| a.get(k) != b.get(k))
        .collect()
}

/// One change line per differing value; a table is told key by key.
fn describe(what: &str, old: Option<&Value>, new: Option<&Value>, out: &mut Vec<String>) {
    if old == new {
        return;
    }
    if let (Some(Value::Object(a)), Some(Value::Object(b))) = (old, new) {
        let (a, b) = (Value::Object(a.clone()), Value::Object(b.clone()));
        for key in changed_fields(&a, &b) {
            describe(&format!("{what}.{key}"), a.get(&key), b.get(&key), out);
        }
        return;
    }
    out.push(match (old, new) {
        (None, Some(v)) => format!("{what} set to {}", shown(Some(v))),
        (Some(v), None) => format!("{what} removed (was {})", shown(Some(v))),
        _ => format!("{what}: {} to {}", shown(old), shown(new)),
    });
}

/// A value in a change line, cut to a readable length.
fn shown(v: Option<&Value>) -> String {
    let text = v.map_or("nothing".to_string(), |v| v.to_string());
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}…")
    } else {
        text
    }
}
