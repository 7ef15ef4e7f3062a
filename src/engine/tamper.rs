//! Tamper detection for the runner: what a task may have done behind
//! git-orch's back with the user's rights, found after the fact.

use crate::git::Repo;
use crate::state::{layout, names, reconcile, seal, store, State};
use anyhow::Result;

/// A state branch whose plan was rewritten (see [`crate::state::seal`]):
/// keeps the forged head under `refs/orch/<plan>/preserved/`, puts the state
/// back to its newest commit with the sealed plan (no git-orch commit can
/// sit on top of a forged plan: every load refuses it), and says what was
/// found. `None` if the plan is the one started.
pub fn restore_forged_plan(repo: &Repo, plan: &str) -> Result<Option<String>> {
    let state_ref = names::state(plan);
    let Some(head) = repo.ref_target(&state_ref)? else {
        return Ok(None);
    };
    let tree = repo.git.find_commit(head)?.tree()?;
    let (Some(found), Some(meta)) = (
        tree.get_name(layout::PLAN_FILE).map(|e| e.id()),
        tree.get_name(layout::META_FILE).map(|e| e.id()),
    ) else {
        return Ok(None);
    };
    let Ok(state) = serde_json::from_slice::<State>(repo.git.find_blob(meta)?.content()) else {
        return Ok(None);
    };
    let Ok(forged_plan) = serde_json::from_slice(repo.git.find_blob(found)?.content()) else {
        return Ok(None);
    };
    let Err(forged) = seal::check(repo, plan, head, found, &forged_plan, &state.start_tag) else {
        return Ok(None);
    };
    let Some(good) = seal::last_sealed(repo, plan, head, forged.sealed) else {
        return Err(forged.refusal(repo));
    };
    let kept = names::preserved(plan, &format!("forged-plan-{}", crate::git::short(head)));
    reconcile::create_if_absent(repo, &kept, head)?;
    repo.cas_ref(
        &state_ref,
        good,
        Some(head),
        "orch: restore the plan as started",
    )?;
    let snap = store::load(repo, plan)?;
    reconcile::reconcile(repo, &snap)?;
    Ok(Some(format!(
        "{}; the state is restored to {} and the forgery kept as {}",
        forged.describe(),
        crate::git::short(good),
        names::display(&kept)
    )))
}
