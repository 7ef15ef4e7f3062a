//! Tamper detection for the runner: what a task may have done behind
//! git-orch's back with the user's rights, found after the fact.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Result;
use git2::Oid;

use crate::git::{short, Repo};
use crate::state::{layout, names, reconcile, seal, store, Event, State};

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
    let Err(forged) = seal::check(repo, plan, head, found, &forged_plan, &state) else {
        return Ok(None);
    };
    let Some(good) = seal::last_sealed(repo, plan, head, &forged.accepted) else {
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

/// What a task must leave alone, as it was when the task started: every
/// ref, the repository's config, hooks, `info/`, the main checkout's HEAD
/// and files, and git-orch's seal and secret. [`Watch::check`] lists what
/// changed that git-orch itself did not change meanwhile.
pub struct Watch {
    plan: String,
    task: String,
    refs: BTreeMap<String, Oid>,
    files: BTreeMap<String, Stamp>,
    checkouts: Vec<(PathBuf, BTreeMap<String, Stamp>)>,
    /// The task ran where refs are read-only (`isolation = "sandbox"`): a
    /// fast-forward of the work branch meanwhile is a person's commit, to
    /// be adopted at landing (`engine::adopt`), not the task's doing.
    refs_read_only: bool,
}

/// The state commits made while a task ran (id, event, plan-level record),
/// or why they are not all git-orch's.
type Chain = std::result::Result<Vec<(Oid, Option<Event>, Option<State>)>, String>;

/// Enough of a file to see that it was written: content hash for small
/// files, else size, mtime and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(u64, i64, i64, u32, Option<Oid>);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::symlink_metadata(path).ok()?;
    let content = (m.is_file() && m.len() <= 1 << 16)
        .then(|| std::fs::read(path).ok())
        .flatten()
        .and_then(|b| Oid::hash_object(git2::ObjectType::Blob, &b).ok());
    Some(Stamp(m.len(), m.mtime(), m.mtime_nsec(), m.mode(), content))
}

impl Watch {
    pub fn take(repo: &Repo, plan: &str, task: &str) -> Result<Watch> {
        Ok(Watch {
            plan: plan.to_string(),
            task: task.to_string(),
            refs: all_refs(repo)?,
            files: {
                // Made now if it is not there yet, so that its creation is
                // not mistaken for the task's doing.
                crate::secret::load(repo)?;
                guarded_files(repo, plan)
            },
            checkouts: checkouts(repo)
                .into_iter()
                .map(|dir| {
                    let files =
                        recent_checkout_files(&dir).unwrap_or_else(|| checkout_files(repo, &dir));
                    (dir, files)
                })
                .collect(),
            refs_read_only: false,
        })
    }

    /// Says that the task runs where it cannot write refs (its sandbox).
    pub fn refs_read_only(&mut self, read_only: bool) {
        self.refs_read_only = read_only;
    }

    /// What the task touched that it must not have, each as a short phrase.
    pub fn check(&self, repo: &Repo) -> Result<Vec<String>> {
        let mut found = Vec::new();
        let after = all_refs(repo)?;
        let names: BTreeSet<&String> = self.refs.keys().chain(after.keys()).collect();
        // Each ref that seems to have changed is read again on its own, and
        // the state branch after them all. git-orch moves the work branch
        // and its tags only once the state commit that records the move is
        // on the state branch, so the state read last accounts for every
        // move of theirs read before it: the landing of another task (or
        // any other move of the runner's) made while this check reads is
        // never taken for this task's. A listing of all refs is not read
        // at one instant; reading the state first, the work branch a moment
        // later, a landing in between looked like tampering.
        let mut moved = Vec::new();
        for name in names {
            if self.refs.get(name) == after.get(name) {
                continue;
            }
            let now = repo.ref_target(name)?;
            if self.refs.get(name) != now.as_ref() {
                moved.push((name, now));
            }
        }
        let state = repo.ref_target(&names::state(&self.plan))?;
        let chain = self.state_chain(repo, state);
        for (name, now) in moved {
            let old = self.refs.get(name);
            if let Some(why) = self.ref_change_forbidden(repo, name, old, now.as_ref(), &chain) {
                found.push(why);
            }
        }
        let now = guarded_files(repo, &self.plan);
        let keys: BTreeSet<&String> = self.files.keys().chain(now.keys()).collect();
        // `plan amend` rewrites the seal, with its event on the state branch.
        let amended = chain.as_ref().is_ok_and(|c| {
            c.iter()
                .take(c.len().saturating_sub(1))
                .any(|(_, e, _)| matches!(e, Some(Event::PlanAmended { .. })))
        });
        let seal = shown_path(repo, &seal::seal_file(repo, &self.plan));
        for key in keys {
            if amended && *key == seal {
                continue;
            }
            if self.files.get(key) != now.get(key) {
                found.push(format!("changed `{key}`"));
            }
        }
        for (dir, before) in &self.checkouts {
            let now = checkout_files(repo, dir);
            remember_checkout_files(dir, &now);
            let touched: Vec<&str> = before
                .keys()
                .chain(now.keys())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter(|p| before.get(*p) != now.get(*p))
                .map(String::as_str)
                .collect();
            if !touched.is_empty() {
                found.push(format!(
                    "wrote in the checkout `{}`: {}",
                    dir.display(),
                    touched.join(", ")
                ));
            }
        }
        Ok(found)
    }

    /// The state commits made while the task ran (from the state branch's
    /// value `now`), if they all look like
    /// git-orch's own (an event git-orch writes, its author), newest first;
    /// `Err` names the first that does not.
    fn state_chain(&self, repo: &Repo, now: Option<Oid>) -> Chain {
        let name = names::state(&self.plan);
        let (Some(old), Some(new)) = (self.refs.get(&name), now.as_ref()) else {
            return Err("the state branch was created or deleted".to_string());
        };
        let sig = repo.signature().map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut at = *new;
        while at != *old {
            let commit = repo
                .git
                .find_commit(at)
                .map_err(|_| format!("the state branch moved to {}, not a commit", short(at)))?;
            let event = Event::from_message(commit.message().unwrap_or(""));
            let author = commit.author();
            // Shared through a remote, other machines' commits are
            // authored by their users.
            let stranger = author.name() != sig.name() || author.email() != sig.email();
            if event.is_none()
                || (stranger && crate::state::sync::active().is_none())
                || commit.parent_count() != 1
            {
                return Err(format!(
                    "the state branch was moved by commit {} that git-orch did not make",
                    short(at)
                ));
            }
            out.push((at, event, meta_of(repo, &commit)));
            at = commit.parent_id(0).map_err(|e| e.to_string())?;
            if out.len() > 100_000 {
                break;
            }
        }
        // The state as the task started: a landing committed just before
        // may move the work branch and tags after the watch was taken.
        if let Ok(commit) = repo.git.find_commit(*old) {
            let event = Event::from_message(commit.message().unwrap_or(""));
            out.push((*old, event, meta_of(repo, &commit)));
        }
        Ok(out)
    }

    fn ref_change_forbidden(
        &self,
        repo: &Repo,
        name: &str,
        old: Option<&Oid>,
        new: Option<&Oid>,
        chain: &Chain,
    ) -> Option<String> {
        let plan = &self.plan;
        let what = match (old, new) {
            (None, Some(_)) => format!("created `{name}`"),
            (Some(_), None) => format!("deleted `{name}`"),
            _ => format!("moved `{name}`"),
        };
        if name == names::task_branch(plan, &self.task)
            || name.starts_with(&names::task_branch_prefix(plan))
        {
            // Its own branch, or one git-orch starts another task on.
            return None;
        }
        // Fetched from the remote the plan is shared through.
        if crate::state::sync::is_tracking_of(name, plan) {
            return None;
        }
        if name.starts_with(&names::preserved(plan, "")) {
            return old.is_some().then_some(what);
        }
        if name == names::state(plan) {
            return match chain {
                Ok(_) => None,
                Err(why) => Some(why.clone()),
            };
        }
        let chain = chain.as_ref().ok()?;
        if name == names::work(plan) {
            let ok = new.is_some_and(|new| {
                chain
                    .iter()
                    .filter_map(|(_, _, s)| s.as_ref())
                    .any(|s| s.work == *new)
                    || (self.refs_read_only
                        && old.is_some_and(|old| *old != *new && repo.is_ancestor(*old, *new)))
            });
            return (!ok).then_some(what);
        }
        if name.starts_with(&names::tag_prefix(plan)) {
            let tags_moved = chain.iter().any(|(_, e, _)| {
                matches!(
                    e,
                    Some(
                        Event::PhaseCheckpointed { .. }
                            | Event::RolledBack { .. }
                            | Event::RollbackUndone { .. }
                            | Event::PlanFinished { .. }
                    )
                )
            });
            return (!tags_moved).then_some(what);
        }
        // Another plan's refs move with that plan's own runners.
        for prefix in ["refs/heads/orch/", "refs/tags/orch/", "refs/orch/"] {
            if let Some(rest) = name.strip_prefix(prefix) {
                if rest.split('/').next().is_some_and(|p| p != plan.as_str())
                    && store::plan_names(repo)
                        .is_ok_and(|all| all.iter().any(|p| rest.starts_with(&format!("{p}/"))))
                {
                    return None;
                }
            }
        }
        Some(what)
    }
}

/// The plan-level record (`meta.json`) of a state commit.
fn meta_of(repo: &Repo, commit: &git2::Commit<'_>) -> Option<State> {
    let id = commit.tree().ok()?.get_name(layout::META_FILE)?.id();
    serde_json::from_slice::<State>(repo.git.find_blob(id).ok()?.content()).ok()
}

fn all_refs(repo: &Repo) -> Result<BTreeMap<String, Oid>> {
    let mut out = BTreeMap::new();
    for r in repo.git.references()? {
        let r = r?;
        if let (Some(name), Some(target)) = (r.name(), r.target()) {
            out.insert(name.to_string(), target);
        }
    }
    Ok(out)
}

/// What the last [`Watch::check`] of this process saw in a checkout, and
/// when: a `git status` of the user's checkout costs as much as a task's own
/// `add -A`, and the next task of a run starts a few milliseconds after the
/// last one was checked, so that view serves as its starting point. Taken
/// once (a second task starting beside it looks for itself), and only while
/// fresh: a user's edit during a phase's gates is not a task's doing.
static LAST_SEEN: Mutex<BTreeMap<PathBuf, (Instant, Files)>> = Mutex::new(BTreeMap::new());
type Files = BTreeMap<String, Stamp>;
const STILL_FRESH: Duration = Duration::from_millis(500);

fn remember_checkout_files(dir: &Path, files: &BTreeMap<String, Stamp>) {
    let mut seen = LAST_SEEN.lock().unwrap_or_else(|p| p.into_inner());
    seen.insert(dir.to_path_buf(), (Instant::now(), files.clone()));
}

fn recent_checkout_files(dir: &Path) -> Option<BTreeMap<String, Stamp>> {
    let mut seen = LAST_SEEN.lock().unwrap_or_else(|p| p.into_inner());
    let (at, files) = seen.remove(dir)?;
    (at.elapsed() < STILL_FRESH).then_some(files)
}

/// `config`, `HEAD`, hooks, `info/*`, and git-orch's seal and secret.
fn guarded_files(repo: &Repo, plan: &str) -> BTreeMap<String, Stamp> {
    let common = &repo.common_dir;
    let mut paths: Vec<PathBuf> = vec![common.join("config"), common.join("HEAD")];
    let hooks = repo.hooks_dir();
    for dir in [hooks, common.join("info")] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            paths.extend(entries.flatten().map(|e| e.path()));
        }
        paths.push(dir);
    }
    paths.push(crate::secret::secret_file(repo));
    paths.push(seal::seal_file(repo, plan));
    paths
        .into_iter()
        .filter_map(|p| Some((shown_path(repo, &p), stamp(&p)?)))
        .collect()
}

/// A guarded file's name as the findings show it.
fn shown_path(repo: &Repo, p: &Path) -> String {
    p.strip_prefix(&repo.root)
        .map_or_else(|_| p.display().to_string(), |r| r.display().to_string())
}

/// The main checkout, and the checkout git-orch runs from if another.
fn checkouts(repo: &Repo) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if repo.common_dir.file_name().is_some_and(|n| n == ".git") {
        if let Some(main) = repo.common_dir.parent() {
            out.push(main.to_path_buf());
        }
    }
    if repo.root != repo.common_dir && !out.contains(&repo.root) {
        out.push(repo.root.clone());
    }
    out
}

/// The files `git status` lists in a checkout (changed or untracked), with
/// their stamps, so a write to a file already dirty is seen too.
fn checkout_files(repo: &Repo, dir: &Path) -> BTreeMap<String, Stamp> {
    let started = Instant::now();
    let out = repo
        .command_in(
            dir,
            &[
                "--no-optional-locks",
                "status",
                "--porcelain=v1",
                "-z",
                "--untracked-files=all",
            ],
        )
        .output();
    crate::trace::step("git status", started);
    let Ok(out) = out else {
        return BTreeMap::new();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // Task worktrees kept inside the checkout (`orch.worktreeDir`) are theirs.
    let worktrees = super::workspace::worktrees_root(repo);
    let mut files = BTreeMap::new();
    let mut entries = text.split('\0');
    while let Some(entry) = entries.next() {
        if entry.len() < 4 {
            continue;
        }
        let path = &entry[3..];
        if entry.starts_with('R') || entry.starts_with('C') {
            entries.next();
        }
        if dir.join(path).starts_with(&worktrees) {
            continue;
        }
        let s = stamp(&dir.join(path)).unwrap_or(Stamp(0, 0, 0, 0, None));
        files.insert(path.to_string(), s);
    }
    files
}
