//! Loading and saving the state branch. A state change is: read the branch
//! head, compute the new state, write blobs/trees/commit (content addressed,
//! no lock needed), then move the branch by compare-and-swap from the head
//! that was read. A lost race re-reads and re-applies the change, so two
//! processes never overwrite each other's updates.
//!
//! A change writes only the records it changes (format 2, see
//! [`super::layout`]), so every change costs the same at task 10 and at task
//! 10,000. A format-1 state (git-orch 0.1) is read whole and rewritten as
//! format 2, in a commit of its own, by the first change made to it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::sleep;
use std::time::Duration;

use anyhow::{Context, Result};
use git2::{build::TreeUpdateBuilder, FileMode, Oid};

use super::event::Event;
use super::layout::{self, META_FILE, PHASES_DIR, PLAN_FILE, TASKS_DIR, V1_STATE_FILE};
use super::model::{PhaseState, State, StateV1, TaskState, STATE_VERSION};
use super::names;
use super::records::{self, Records, Source};
use crate::error::{refuse, refuse_with_hint};
use crate::git::{RefEdit, RefRace, Repo};
use crate::plan::Plan;

/// One read of the state branch.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub plan_name: String,
    pub commit: Oid,
    pub tree: Oid,
    pub plan: Arc<Plan>,
    /// The plan-level record and the phase records.
    pub state: State,
    /// The task records, read when asked for.
    pub tasks: Records,
    /// The format it was read in (1 until the first change rewrites it).
    pub format: u32,
    /// What the change that made this snapshot had to repair on the way
    /// (a derived ref found somewhere the state does not know, kept in a
    /// ref first): for the caller to tell the user.
    pub repairs: Vec<String>,
}

impl Snapshot {
    /// The record of a task; a task without one is pending and never ran.
    pub fn task(&self, id: &str) -> Result<TaskState> {
        Ok(self
            .tasks
            .get(id)?
            .map_or_else(TaskState::pending, |t| (*t).clone()))
    }

    /// Every task record (reads them all).
    pub fn all_tasks(&self) -> Result<BTreeMap<String, Arc<TaskState>>> {
        self.tasks.all()
    }

    /// A snapshot held in memory, of no commit (for simulations and tests).
    #[cfg(test)]
    pub fn in_memory(plan: Plan, state: State, tasks: BTreeMap<String, TaskState>) -> Snapshot {
        Snapshot {
            plan_name: plan.name.clone(),
            commit: Oid::zero(),
            tree: Oid::zero(),
            plan: Arc::new(plan),
            state,
            tasks: Records::new(Source::Memory(Arc::new(tasks))),
            format: STATE_VERSION,
            repairs: Vec::new(),
        }
    }

    /// Changes a task of an in-memory snapshot (see [`Snapshot::in_memory`]).
    #[cfg(test)]
    pub fn set_task(&mut self, id: &str, t: TaskState) {
        if t.state().is_active() {
            self.state.active.insert(id.to_string());
        } else {
            self.state.active.remove(id);
        }
        if let Source::Memory(all) = &mut self.tasks.source {
            Arc::make_mut(all).insert(id.to_string(), t);
        }
        self.tasks = Records::new(self.tasks.source.clone());
    }

    /// The handoff note a landed task left, if any.
    pub fn handoff(&self, repo: &Repo, id: &str) -> Result<Option<Vec<u8>>> {
        match repo.read_path(self.tree, &layout::handoff(id))? {
            Some(note) => Ok(Some(note)),
            None if self.format == 1 => repo.read_path(self.tree, &layout::v1_handoff(id)),
            None => Ok(None),
        }
    }
}

/// What a state change produces: the new plan-level and phase state, the
/// task records it changes, the event that becomes the commit message,
/// extra files for the tree, and the derived refs to move once the state
/// commit has won. A change without an event commits nothing.
pub struct Change {
    pub state: State,
    pub event: Option<Event>,
    pub files: Vec<(String, Vec<u8>)>,
    pub refs: Vec<RefEdit>,
    /// Refs published beside the state commit when the plan is shared
    /// through a remote (see [`super::sync`]); nothing locally.
    pub push: Vec<(String, Oid)>,
    /// Task records written by this change.
    tasks: BTreeMap<String, TaskState>,
    /// The records the change starts from: the snapshot's, or another
    /// snapshot's for an undo.
    base: Records,
    restored: bool,
}

impl Change {
    pub fn file(&mut self, path: impl Into<String>, data: impl Into<Vec<u8>>) {
        self.files.push((path.into(), data.into()));
    }

    /// A task's record as this change leaves it so far.
    pub fn task(&self, id: &str) -> Result<TaskState> {
        if let Some(t) = self.tasks.get(id) {
            return Ok(t.clone());
        }
        Ok(self
            .base
            .get(id)?
            .map_or_else(TaskState::pending, |t| (*t).clone()))
    }

    pub fn put_task(&mut self, id: &str, t: TaskState) {
        self.tasks.insert(id.to_string(), t);
    }

    /// Makes every task record, the plan-level record and the phases those
    /// of `before` (an undo), before this change's own records.
    pub fn restore(&mut self, before: &Snapshot) {
        self.state = before.state.clone();
        self.base = before.tasks.clone();
        self.tasks.clear();
        self.restored = true;
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

/// The plan as started, parsed once per process (plans are immutable and
/// content addressed).
fn plan_at(repo: &Repo, blob: Oid, commit: Oid) -> Result<Arc<Plan>> {
    static PLANS: OnceLock<Mutex<HashMap<Oid, Arc<Plan>>>> = OnceLock::new();
    let cache = PLANS.get_or_init(Default::default);
    if let Some(plan) = cache.lock().ok().and_then(|c| c.get(&blob).cloned()) {
        return Ok(plan);
    }
    let bytes = repo
        .git
        .find_blob(blob)
        .with_context(|| format!("state commit {commit}: {PLAN_FILE} is missing"))?;
    let plan: Plan = serde_json::from_slice(bytes.content())
        .with_context(|| format!("state commit {commit}: {PLAN_FILE} is corrupt"))?;
    let plan = Arc::new(plan);
    if let Ok(mut c) = cache.lock() {
        c.insert(blob, plan.clone());
    }
    Ok(plan)
}

/// Reads the state as it was at a given state commit.
pub fn load_at(repo: &Repo, plan_name: &str, commit: Oid) -> Result<Snapshot> {
    let not_state = || {
        refuse_with_hint(
            format!(
                "{} is not a git-orch state branch (commit {commit} has no plan and state in it)",
                names::state(plan_name)
            ),
            "it was made or rewritten by something else; restore it from a backup or its reflog \
             (`git reflog show orch/<plan>/state`)",
        )
    };
    let tree = repo
        .git
        .find_commit(commit)
        .map_err(|_| not_state())?
        .tree_id();
    let git = &repo.git;
    let top = records::entries(git, tree)?;
    let blob = |name: &str| match top.get(name) {
        Some((id, false)) => Some(*id),
        _ => None,
    };
    let plan_blob = blob(PLAN_FILE).ok_or_else(not_state)?;
    let plan = plan_at(repo, plan_blob, commit)?;
    let read = |id: Oid, what: &str| -> Result<Vec<u8>> {
        Ok(git
            .find_blob(id)
            .with_context(|| format!("state commit {commit}: {what} is missing"))?
            .content()
            .to_vec())
    };
    if let Some(meta) = blob(META_FILE) {
        let bytes = read(meta, META_FILE)?;
        check_version(plan_name, &bytes, commit)?;
        let mut state: State = serde_json::from_slice(&bytes)
            .with_context(|| format!("state commit {commit}: {META_FILE} is corrupt"))?;
        if let Some((phases, true)) = top.get(PHASES_DIR) {
            for (file, (id, is_tree)) in records::entries(git, *phases)?.iter() {
                let Some(phase) = file.strip_suffix(".json").filter(|_| !is_tree) else {
                    continue;
                };
                let p: PhaseState =
                    serde_json::from_slice(&read(*id, file)?).with_context(|| {
                        format!("state commit {commit}: the record of phase `{phase}` is corrupt")
                    })?;
                state.phases.insert(phase.to_string(), p);
            }
        }
        let tasks = match top.get(TASKS_DIR) {
            Some((id, true)) => Some(*id),
            _ => None,
        };
        super::seal::check(repo, plan_name, commit, plan_blob, &plan, &state)
            .map_err(|forged| forged.refusal(repo))?;
        super::seal::check_pinned(plan_name, plan_blob, &plan, || {
            crate::trust::is_approved(repo, plan_name, &plan)
        })?;
        return Ok(Snapshot {
            plan_name: plan_name.to_string(),
            commit,
            tree,
            plan,
            state,
            tasks: Records::new(Source::Tree {
                git_dir: repo.common_dir.clone(),
                tasks,
            }),
            format: STATE_VERSION,
            repairs: Vec::new(),
        });
    }
    let v1 = blob(V1_STATE_FILE).ok_or_else(not_state)?;
    let bytes = read(v1, V1_STATE_FILE)?;
    check_version(plan_name, &bytes, commit)?;
    let old: StateV1 = serde_json::from_slice(&bytes)
        .with_context(|| format!("state commit {commit}: {V1_STATE_FILE} is corrupt"))?;
    let (state, tasks) = old.upgrade();
    super::seal::check(repo, plan_name, commit, plan_blob, &plan, &state)
        .map_err(|forged| forged.refusal(repo))?;
    super::seal::check_pinned(plan_name, plan_blob, &plan, || {
        crate::trust::is_approved(repo, plan_name, &plan)
    })?;
    Ok(Snapshot {
        plan_name: plan_name.to_string(),
        commit,
        tree,
        plan,
        state,
        tasks: Records::new(Source::Memory(Arc::new(tasks))),
        format: 1,
        repairs: Vec::new(),
    })
}

/// Refuses a state written by a newer git-orch (it may mean things this
/// one does not know), before anything else reads it.
fn check_version(plan: &str, bytes: &[u8], commit: Oid) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Version {
        version: u32,
    }
    let v: Version = serde_json::from_slice(bytes)
        .with_context(|| format!("state commit {commit}: the state record has no version"))?;
    if v.version > STATE_VERSION || v.version == 0 {
        return Err(refuse_with_hint(
            format!(
                "plan `{plan}` is stored in state format {}, and this git-orch reads formats 1 to {STATE_VERSION}",
                v.version
            ),
            "upgrade git-orch (`cargo install git-orch`) to work on this plan",
        ));
    }
    Ok(())
}

/// Writes the first state commit and creates the branch; refuses if it
/// exists. Only tasks that do not start pending get a record.
pub fn create(
    repo: &Repo,
    plan: &Plan,
    state: &State,
    tasks: &BTreeMap<String, TaskState>,
    files: Vec<(String, Vec<u8>)>,
    event: &Event,
) -> Result<Oid> {
    let mut all = files;
    all.push((PLAN_FILE.to_string(), plan_bytes(plan)?));
    all.extend(full_layout(state, tasks)?);
    let tree = write_fresh_tree(repo, &all)?;
    let message = event.message(&plan.name);
    let commit = write_commit(repo, tree, None, &message)?;
    crate::failpoint!("start-written");
    let name = names::state(&plan.name);
    match repo.cas_ref(&name, commit, None, &event.subject(&plan.name)) {
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

/// `plan.json` as written. Compact: every process that reads the state
/// parses it once, and a 10,000-task plan is 40% smaller without the
/// indentation. The plan's seal is the id of exactly these bytes.
pub fn plan_bytes(plan: &Plan) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(plan)?)
}

/// Every record of a state, as files (for a first commit or a migration).
fn full_layout(
    state: &State,
    tasks: &BTreeMap<String, TaskState>,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = vec![(META_FILE.to_string(), serde_json::to_vec(state)?)];
    for (id, p) in &state.phases {
        if *p != PhaseState::default() {
            files.push((layout::phase_record(id), serde_json::to_vec_pretty(p)?));
        }
    }
    for (id, t) in tasks {
        if *t != TaskState::pending() {
            files.push((layout::task_record(id), serde_json::to_vec(t)?));
        }
    }
    Ok(files)
}

/// Applies `change_fn` to the latest state and commits the result by
/// compare-and-swap, re-running it on a lost race. `change_fn` must be a pure
/// function of the snapshot (it may write objects, never refs) and may
/// refuse; a change that sets no event commits nothing.
pub fn transact<T>(
    repo: &Repo,
    plan_name: &str,
    mut change_fn: impl FnMut(&Snapshot, &mut Change) -> Result<T>,
) -> Result<(T, Snapshot)> {
    let name = names::state(plan_name);
    let remote = super::sync::active();
    for attempt in 0..MAX_ATTEMPTS {
        let started = std::time::Instant::now();
        // Shared through a remote: the remote's state is the one changed.
        let lease = match &remote {
            Some(r) if attempt == 0 => super::sync::pull_unless_fresh(repo, &r.name, plan_name)?,
            Some(r) => super::sync::pull(repo, &r.name, plan_name)?,
            None => None,
        };
        let snap = load(repo, plan_name)?;
        let mut change = Change {
            state: snap.state.clone(),
            event: None,
            files: Vec::new(),
            refs: Vec::new(),
            push: Vec::new(),
            tasks: BTreeMap::new(),
            base: snap.tasks.clone(),
            restored: false,
        };
        let value = change_fn(&snap, &mut change)?;
        let Some(event) = change.event.take() else {
            return Ok((value, snap));
        };
        let (parent, base_tree) = if snap.format == 1 {
            migrate(repo, &snap)?
        } else {
            (snap.commit, snap.tree)
        };
        crate::disk_full_point!("state-write-enospc");
        let tree = write_change(repo, &snap, base_tree, &mut change)?;
        let message = event.message(plan_name);
        let commit = write_commit(repo, tree, Some(parent), &message)?;
        crate::failpoint!("state-written");
        let subject = event.subject(plan_name);
        let won = match &remote {
            Some(r) => super::sync::publish(
                repo,
                &r.name,
                plan_name,
                commit,
                lease,
                &change.refs,
                &change.push,
            )
            .map(|()| follow_remote(repo, &name, commit, &subject)),
            None => repo.cas_ref(&name, commit, Some(snap.commit), &subject),
        };
        match won {
            Ok(()) => {
                if remote.is_some() {
                    // The whole round trip, fetch to push (bench-remote.sh).
                    crate::trace::step(&format!("remote {}", event.kind()), started);
                }
                crate::failpoint!("state-committed");
                // From here on the change has happened: a failure says so.
                return follow_commit(repo, plan_name, commit, &change.refs, &subject)
                    .map(|after| (value, after))
                    .map_err(|e| crate::error::after_commit(e, subject));
            }
            Err(e) if e.is::<RefRace>() && remote.is_some() => {
                crate::trace::lost_race(&subject);
                super::sync::back_off(attempt)
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

/// After a push won: the local state ref moves to the pushed commit unless
/// a newer one (of another process of this clone) is there already.
fn follow_remote(repo: &Repo, name: &str, commit: Oid, subject: &str) {
    for _ in 0..20 {
        let current = repo.ref_target(name).ok().flatten();
        if current == Some(commit) || current.is_some_and(|c| repo.is_ancestor(commit, c)) {
            return;
        }
        if repo.cas_ref(name, commit, current, subject).is_ok() {
            return;
        }
    }
}

/// Moves the derived refs of a state commit that has just won, and reads
/// the state it made. An interruption here is repaired by reconcile from
/// the state just committed.
fn follow_commit(
    repo: &Repo,
    plan_name: &str,
    commit: Oid,
    refs: &[RefEdit],
    subject: &str,
) -> Result<Snapshot> {
    let mut raced = false;
    for edit in refs {
        if let Err(e) = repo.apply(std::slice::from_ref(edit), subject) {
            if !e.is::<RefRace>() {
                return Err(e);
            }
            raced = true;
        }
        crate::failpoint!("state-ref-moved");
    }
    let mut after = load_at(repo, plan_name, commit)?;
    // A racer committed its state before us but moves the refs after us
    // (or the other way round): whoever finds a ref moved brings it to the
    // newest state, so none is left behind. What that finds (a commit a
    // person made on the work branch meanwhile, say) is told, not dropped.
    if raced {
        after.repairs = super::reconcile::reconcile(repo, &after)?;
    }
    Ok(after)
}

/// Rewrites a format-1 snapshot as format 2 in a commit of its own (the
/// change goes on top of it): `state.json` becomes records, handoff notes
/// move beside their task's record, logs stay where the records say.
fn migrate(repo: &Repo, snap: &Snapshot) -> Result<(Oid, Oid)> {
    let tasks = match &snap.tasks.source {
        Source::Memory(all) => all.clone(),
        Source::Tree { .. } => return Ok((snap.commit, snap.tree)),
    };
    let mut update = TreeUpdateBuilder::new();
    update.remove(V1_STATE_FILE);
    for (path, data) in full_layout(&snap.state, &tasks)? {
        update.upsert(path.as_str(), repo.git.blob(&data)?, FileMode::Blob);
    }
    let old = repo.git.find_tree(snap.tree)?;
    if let Ok(handoffs) = old.get_path(std::path::Path::new("handoff")) {
        if let Ok(dir) = repo.git.find_tree(handoffs.id()) {
            for e in dir.iter() {
                if let Some(id) = e.name().and_then(|n| n.strip_suffix(".md")) {
                    update.upsert(layout::handoff(id).as_str(), e.id(), FileMode::Blob);
                }
            }
        }
        update.remove("handoff");
    }
    let tree = update.create_updated(&repo.git, &old)?;
    let event = Event::StateMigrated {
        from: snap.format,
        at: super::now(),
    };
    let commit = write_commit(
        repo,
        tree,
        Some(snap.commit),
        &event.message(&snap.plan_name),
    )?;
    Ok((commit, tree))
}

/// The state tree after `change`, on top of `base_tree`: the records that
/// differ from the snapshot's, the plan-level record and phases if they
/// changed, and the change's files.
fn write_change(repo: &Repo, snap: &Snapshot, base_tree: Oid, change: &mut Change) -> Result<Oid> {
    let base = repo.git.find_tree(base_tree)?;
    // Every blob the change writes, by path; then one tree update, so no
    // tree is written that the new state does not keep.
    let mut upserts: Vec<(String, Oid)> = Vec::new();
    let mut removals: Vec<String> = Vec::new();
    let mut state = change.state.clone();
    for (id, t) in &change.tasks {
        let before = change.base.get(id)?;
        if before.as_deref() == Some(t) || (before.is_none() && *t == TaskState::pending()) {
            continue;
        }
        upserts.push((
            layout::task_record(id),
            repo.git.blob(&serde_json::to_vec(t)?)?,
        ));
        if t.state().is_active() {
            state.active.insert(id.clone());
        } else {
            state.active.remove(id);
        }
    }
    let old_phases = if change.restored || snap.format == 1 {
        // Compare with what the base tree holds.
        load_phases_of(repo, base.id())?
    } else {
        snap.state.phases.clone()
    };
    for (id, p) in &state.phases {
        if old_phases.get(id) != Some(p)
            && (old_phases.contains_key(id) || *p != PhaseState::default())
        {
            upserts.push((
                layout::phase_record(id),
                repo.git.blob(&serde_json::to_vec_pretty(p)?)?,
            ));
        }
    }
    for id in old_phases
        .keys()
        .filter(|id| !state.phases.contains_key(*id))
    {
        removals.push(layout::phase_record(id));
    }
    upserts.push((
        META_FILE.to_string(),
        repo.git.blob(&serde_json::to_vec(&state)?)?,
    ));
    for (path, data) in &change.files {
        upserts.push((path.clone(), repo.git.blob(data)?));
    }
    let mut update = TreeUpdateBuilder::new();
    if change.restored {
        // An undo: every task record becomes the earlier snapshot's, then
        // this change's own task files go on top of that `tasks/` tree.
        let prefix = format!("{TASKS_DIR}/");
        let (inside, outside): (Vec<_>, Vec<_>) = upserts
            .into_iter()
            .partition(|(p, _)| p.starts_with(&prefix));
        upserts = outside;
        let inside: Vec<(String, Oid)> = inside
            .into_iter()
            .map(|(p, id)| (p[prefix.len()..].to_string(), id))
            .collect();
        let tasks = match &change.base.source {
            Source::Tree { tasks: Some(t), .. } => {
                let mut sub = TreeUpdateBuilder::new();
                for (path, id) in &inside {
                    sub.upsert(path.as_str(), *id, FileMode::Blob);
                }
                Some(sub.create_updated(&repo.git, &repo.git.find_tree(*t)?)?)
            }
            Source::Tree { tasks: None, .. } => (!inside.is_empty())
                .then(|| write_fresh_tree_of(repo, &inside))
                .transpose()?,
            Source::Memory(all) => {
                let mut files: BTreeMap<String, Oid> = BTreeMap::new();
                for (id, t) in all.iter().filter(|(_, t)| **t != TaskState::pending()) {
                    let rel = layout::task_record(id)[prefix.len()..].to_string();
                    files.insert(rel, repo.git.blob(&serde_json::to_vec(t)?)?);
                }
                files.extend(inside);
                let files: Vec<(String, Oid)> = files.into_iter().collect();
                (!files.is_empty())
                    .then(|| write_fresh_tree_of(repo, &files))
                    .transpose()?
            }
        };
        match tasks {
            Some(t) => {
                update.upsert(TASKS_DIR, t, FileMode::Tree);
            }
            None if base.get_name(TASKS_DIR).is_some() => {
                update.remove(TASKS_DIR);
            }
            None => {}
        }
    }
    for path in &removals {
        update.remove(path.as_str());
    }
    for (path, id) in &upserts {
        update.upsert(path.as_str(), *id, FileMode::Blob);
    }
    Ok(update.create_updated(&repo.git, &base)?)
}

/// [`write_fresh_tree`] of blobs already written.
fn write_fresh_tree_of(repo: &Repo, files: &[(String, Oid)]) -> Result<Oid> {
    let mut root = repo.git.treebuilder(None)?;
    let mut dirs: BTreeMap<&str, Vec<(String, Oid)>> = BTreeMap::new();
    for (path, id) in files {
        match path.split_once('/') {
            Some((dir, rest)) => dirs.entry(dir).or_default().push((rest.to_string(), *id)),
            None => {
                root.insert(path, *id, FileMode::Blob.into())?;
            }
        }
    }
    for (dir, entries) in dirs {
        let sub = write_fresh_tree_of(repo, &entries)?;
        root.insert(dir, sub, FileMode::Tree.into())?;
    }
    Ok(root.write()?)
}

fn load_phases_of(repo: &Repo, tree: Oid) -> Result<BTreeMap<String, PhaseState>> {
    let mut out = BTreeMap::new();
    if let Some((phases, true)) = records::entries(&repo.git, tree)?.get(PHASES_DIR) {
        for (file, (id, _)) in records::entries(&repo.git, *phases)?.iter() {
            if let Some(phase) = file.strip_suffix(".json") {
                let blob = repo.git.find_blob(*id)?;
                if let Ok(p) = serde_json::from_slice(blob.content()) {
                    out.insert(phase.to_string(), p);
                }
            }
        }
    }
    Ok(out)
}

/// Builds a tree from nothing (no empty base tree is written, which would
/// be left dangling).
fn write_fresh_tree(repo: &Repo, files: &[(String, Vec<u8>)]) -> Result<Oid> {
    let blobs = files
        .iter()
        .map(|(path, data)| Ok((path.clone(), repo.git.blob(data)?)))
        .collect::<Result<Vec<_>>>()?;
    write_fresh_tree_of(repo, &blobs)
}

fn write_commit(repo: &Repo, tree: Oid, parent: Option<Oid>, message: &str) -> Result<Oid> {
    let sig = repo.signature()?;
    let tree = repo.git.find_tree(tree)?;
    let parent = parent.map(|p| repo.git.find_commit(p)).transpose()?;
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    Ok(repo
        .git
        .commit(None, &sig, &sig, message, &tree, &parents)?)
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

/// The plans neither finished nor abandoned, by name.
pub fn active_plans(repo: &Repo) -> Result<Vec<String>> {
    let mut active = Vec::new();
    for name in plan_names(repo)? {
        let state = load(repo, &name)?.state;
        if !state.finished && !state.abandoned {
            active.push(name);
        }
    }
    Ok(active)
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
    let mut active = active_plans(repo)?;
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
