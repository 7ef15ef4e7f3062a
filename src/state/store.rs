//! Loading and saving the state branch. A state change is: read the branch
//! head, compute the new state, write blobs/trees/commit (content addressed,
//! no lock needed), then move the branch by compare-and-swap from the head
//! that was read. A lost race re-reads and re-applies the change, so two
//! processes never overwrite each other's updates.

use std::thread::sleep;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use git2::{build::TreeUpdateBuilder, FileMode, Oid};

use super::model::State;
use super::names;
use crate::error::{refuse, refuse_with_hint};
use crate::git::{RefEdit, RefRace, Repo};
use crate::plan::Plan;

pub const PLAN_FILE: &str = "plan.json";
pub const STATE_FILE: &str = "state.json";

/// One read of the state branch.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub plan_name: String,
    pub commit: Oid,
    pub tree: Oid,
    pub plan: Plan,
    pub state: State,
}

/// What a state change produces: the new state, the one-line summary that
/// becomes the commit subject, extra files for the tree, and the derived
/// refs to move once the state commit has won.
pub struct Change {
    pub state: State,
    pub summary: String,
    pub files: Vec<(String, Vec<u8>)>,
    pub refs: Vec<RefEdit>,
}

impl Change {
    pub fn file(&mut self, path: impl Into<String>, data: impl Into<Vec<u8>>) {
        self.files.push((path.into(), data.into()));
    }
}

const MAX_ATTEMPTS: usize = 200;

pub fn load(repo: &Repo, plan_name: &str) -> Result<Snapshot> {
    let name = names::state(plan_name);
    let commit = repo.ref_target(&name)?.ok_or_else(|| {
        refuse_with_hint(
            format!("no plan named `{plan_name}` in this repository"),
            "see the plans with `git orch list`, or start one with `git orch start FILE`",
        )
    })?;
    load_at(repo, plan_name, commit)
}

/// Reads the state as it was at a given state commit.
pub fn load_at(repo: &Repo, plan_name: &str, commit: Oid) -> Result<Snapshot> {
    let tree = repo.tree_of(commit)?;
    let plan_bytes = repo
        .read_path(tree, PLAN_FILE)?
        .ok_or_else(|| anyhow!("state commit {commit} has no {PLAN_FILE}"))?;
    let state_bytes = repo
        .read_path(tree, STATE_FILE)?
        .ok_or_else(|| anyhow!("state commit {commit} has no {STATE_FILE}"))?;
    let plan: Plan = serde_json::from_slice(&plan_bytes)
        .with_context(|| format!("corrupt {PLAN_FILE} in {commit}"))?;
    let state: State = serde_json::from_slice(&state_bytes)
        .with_context(|| format!("corrupt {STATE_FILE} in {commit}"))?;
    Ok(Snapshot {
        plan_name: plan_name.to_string(),
        commit,
        tree,
        plan,
        state,
    })
}

/// Writes the first state commit and creates the branch; refuses if it exists.
pub fn create(
    repo: &Repo,
    plan: &Plan,
    state: &State,
    files: Vec<(String, Vec<u8>)>,
    summary: &str,
) -> Result<Oid> {
    let mut all = files;
    all.push((PLAN_FILE.to_string(), serde_json::to_vec_pretty(plan)?));
    all.push((STATE_FILE.to_string(), serde_json::to_vec_pretty(state)?));
    let tree = write_fresh_tree(repo, &all)?;
    let commit = write_commit(repo, tree, None, summary)?;
    crate::failpoint!("start-written");
    let name = names::state(&plan.name);
    match repo.cas_ref(&name, commit, None, summary) {
        Ok(()) => {
            crate::failpoint!("state-created");
            Ok(commit)
        }
        Err(e) if e.is::<RefRace>() => Err(refuse_with_hint(
            format!("plan `{}` is already started", plan.name),
            format!(
                "see it with `git orch status {}`, or give the new plan another name",
                plan.name
            ),
        )),
        Err(e) => Err(e),
    }
}

/// Applies `change_fn` to the latest state and commits the result by
/// compare-and-swap, re-running it on a lost race. `change_fn` must be a pure
/// function of the snapshot (it may write objects, never refs) and may
/// refuse; a change with an empty summary commits nothing.
pub fn transact<T>(
    repo: &Repo,
    plan_name: &str,
    mut change_fn: impl FnMut(&Snapshot, &mut Change) -> Result<T>,
) -> Result<(T, Snapshot)> {
    let name = names::state(plan_name);
    for attempt in 0..MAX_ATTEMPTS {
        let snap = load(repo, plan_name)?;
        let mut change = Change {
            state: snap.state.clone(),
            summary: String::new(),
            files: Vec::new(),
            refs: Vec::new(),
        };
        let value = change_fn(&snap, &mut change)?;
        if change.summary.is_empty() {
            return Ok((value, snap));
        }
        let mut files = std::mem::take(&mut change.files);
        files.push((
            STATE_FILE.to_string(),
            serde_json::to_vec_pretty(&change.state)?,
        ));
        let tree = write_tree(repo, snap.tree, &files)?;
        let commit = write_commit(repo, tree, Some(snap.commit), &change.summary)?;
        crate::failpoint!("state-written");
        match repo.cas_ref(&name, commit, Some(snap.commit), &change.summary) {
            Ok(()) => {
                crate::failpoint!("state-committed");
                // Derived refs follow; an interruption here is repaired by
                // reconcile from the state just committed.
                let mut raced = false;
                for edit in &change.refs {
                    if let Err(e) = repo.apply(std::slice::from_ref(edit), &change.summary) {
                        if !e.is::<RefRace>() {
                            return Err(e);
                        }
                        raced = true;
                    }
                    crate::failpoint!("state-ref-moved");
                }
                let after = Snapshot {
                    plan_name: plan_name.to_string(),
                    commit,
                    tree,
                    plan: snap.plan,
                    state: change.state,
                };
                // A racer committed its state before us but moves the refs
                // after us (or the other way round): whoever finds a ref
                // moved brings it to the newest state, so none is left behind.
                if raced {
                    super::reconcile::reconcile(repo, &after)?;
                }
                return Ok((value, after));
            }
            Err(e) if e.is::<RefRace>() => {
                // Back off a little, more each time, with jitter from the
                // attempt and pid so racers spread out.
                let jitter = (std::process::id() as u64 * 7 + attempt as u64 * 13) % 17;
                sleep(Duration::from_millis(
                    1 + jitter + attempt.min(20) as u64 * 3,
                ));
            }
            Err(e) => return Err(e),
        }
    }
    Err(refuse(format!(
        "plan `{plan_name}` is being changed by other processes too fast to keep up; try again"
    )))
}

fn write_tree(repo: &Repo, base: Oid, files: &[(String, Vec<u8>)]) -> Result<Oid> {
    let mut update = TreeUpdateBuilder::new();
    for (path, data) in files {
        let blob = repo.git.blob(data)?;
        update.upsert(path.as_str(), blob, FileMode::Blob);
    }
    let base = repo.git.find_tree(base)?;
    Ok(update.create_updated(&repo.git, &base)?)
}

/// Builds a tree from nothing (no empty base tree is written, which would
/// be left dangling).
fn write_fresh_tree(repo: &Repo, files: &[(String, Vec<u8>)]) -> Result<Oid> {
    let mut root = repo.git.treebuilder(None)?;
    let mut dirs: std::collections::BTreeMap<&str, Vec<(String, Vec<u8>)>> =
        std::collections::BTreeMap::new();
    for (path, data) in files {
        match path.split_once('/') {
            Some((dir, rest)) => dirs
                .entry(dir)
                .or_default()
                .push((rest.to_string(), data.clone())),
            None => {
                root.insert(path, repo.git.blob(data)?, FileMode::Blob.into())?;
            }
        }
    }
    for (dir, entries) in dirs {
        let sub = write_fresh_tree(repo, &entries)?;
        root.insert(dir, sub, FileMode::Tree.into())?;
    }
    Ok(root.write()?)
}

fn write_commit(repo: &Repo, tree: Oid, parent: Option<Oid>, summary: &str) -> Result<Oid> {
    let sig = repo.signature()?;
    let tree = repo.git.find_tree(tree)?;
    let parent = parent.map(|p| repo.git.find_commit(p)).transpose()?;
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    Ok(repo
        .git
        .commit(None, &sig, &sig, summary, &tree, &parents)?)
}

/// Names of all plans with a state branch, sorted.
pub fn plan_names(repo: &Repo) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for (name, _) in repo.refs_under("refs/heads/orch/")? {
        // A name that breaks the id rules (made with plain git) is no plan.
        if let Some(Ok(plan)) = crate::plan::state_ref_plan(&name) {
            names.push(plan.to_string());
        }
    }
    Ok(names)
}

/// The plan a command is about: the one named, or the only active one.
pub fn resolve_plan(repo: &Repo, named: Option<&str>) -> Result<String> {
    if let Some(name) = named {
        if repo.ref_target(&names::state(name))?.is_none() {
            return Err(refuse_with_hint(
                format!("no plan named `{name}` in this repository"),
                "see the plans with `git orch list`",
            ));
        }
        return Ok(name.to_string());
    }
    let all = plan_names(repo)?;
    let mut active = Vec::new();
    for name in &all {
        if !load(repo, name)?.state.finished {
            active.push(name.clone());
        }
    }
    match (active.len(), all.len()) {
        (1, _) => Ok(active.remove(0)),
        (0, 1) => Ok(all[0].clone()),
        (0, 0) => Err(refuse_with_hint(
            "no plan has been started in this repository",
            "start one with `git orch start FILE`",
        )),
        _ => Err(refuse_with_hint(
            format!(
                "several plans are {}: {}",
                if active.is_empty() { "here" } else { "active" },
                if active.is_empty() {
                    all.join(", ")
                } else {
                    active.join(", ")
                }
            ),
            "name the plan, e.g. `--plan NAME` or as the PLAN argument",
        )),
    }
}
