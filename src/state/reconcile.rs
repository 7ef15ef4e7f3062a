//! Brings the derived refs (work branch, checkpoint tags, task branches)
//! back in line with the state branch after an interruption. The state
//! branch is the single source of truth; a derived ref that points somewhere
//! the state does not know is preserved under `refs/orch/<plan>/preserved/`
//! before it is moved, so a repair never loses a commit.

use anyhow::Result;
use git2::Oid;

use super::model::{TagRecord, TaskStatus};
use super::names;
use super::store::Snapshot;
use crate::git::{short, RefRace, Repo};

/// Repairs what it finds and returns a line per repair worth telling the
/// user (a ref that only lagged behind the state is moved silently).
///
/// A snapshot can be stale by the time it is used: another process may have
/// committed a newer state and be about to move the refs itself. Acting on
/// the stale one would drag refs backwards, so the state head is re-read
/// before every repair and the pass restarts from the newer state.
///
/// A failure after some repairs were made says what they were (exit 1, not
/// the 2 of "nothing changed").
pub fn reconcile(repo: &Repo, snap: &Snapshot) -> Result<Vec<String>> {
    let mut current = snap.clone();
    let mut notes = Vec::new();
    let mut cleared = false;
    for _ in 0..8 {
        match reconcile_once(repo, &current, &mut notes) {
            Ok(true) => return Ok(notes),
            Ok(false) => current = super::store::load(repo, &snap.plan_name)?,
            Err(e) if !cleared && clear_dead_task_branch_lock(repo, &current, &e) => {
                cleared = true;
                current = super::store::load(repo, &snap.plan_name)?;
            }
            Err(e) if notes.is_empty() => return Err(e),
            Err(e) => {
                return Err(crate::error::after_commit(
                    e,
                    format!("repairs ({})", notes.join("; ")),
                ))
            }
        }
    }
    Ok(notes)
}

/// A `.lock` on the branch of a task that no runner holds, which outlived
/// the ref lock's patience: no live writer's. Only the runner that claimed
/// a task writes its branch; a git command of a runner that was killed
/// (it is not killed with it: killed mid-write, git leaves worse than a
/// lock) can leave one behind it. Removed, so that the repair can go on.
fn clear_dead_task_branch_lock(repo: &Repo, snap: &Snapshot, e: &anyhow::Error) -> bool {
    let Some(name) = e
        .chain()
        .find_map(|c| c.downcast_ref::<crate::git::RefLocked>())
        .and_then(|l| l.locked_ref())
    else {
        return false;
    };
    let prefix = names::task_branch_prefix(&snap.plan_name);
    let Some(task) = name.strip_prefix(&prefix).filter(|t| !t.is_empty()) else {
        return false;
    };
    let running = snap
        .task_status(task)
        .is_ok_and(|s| s == super::TaskStatus::Running);
    if running {
        return false;
    }
    repo.remove_dead_ref_lock(name);
    true
}

/// `false` when the state moved underneath; the caller reloads and retries.
/// Each repair made is added to `notes` as it is made.
fn reconcile_once(repo: &Repo, snap: &Snapshot, notes: &mut Vec<String>) -> Result<bool> {
    let plan = &snap.plan_name;
    let state = &snap.state;

    let state_ref = names::state(plan);
    let fresh = || -> Result<bool> { Ok(repo.ref_target(&state_ref)? == Some(snap.commit)) };

    let work_ref = names::work(plan);
    let expected_work = state.work.oid();
    let work_now = repo.ref_target(&work_ref)?;
    if work_now != Some(expected_work) {
        if !fresh()? {
            return Ok(false);
        }
        sync_ref(repo, plan, &work_ref, work_now, Some(expected_work), notes)?;
    }

    let tags = repo.refs_under(&names::tag_prefix(plan))?;
    let tag_now = |phase: &str| {
        let name = names::checkpoint_tag(plan, phase);
        tags.iter().find(|(n, _)| *n == name).map(|(_, o)| *o)
    };
    if tag_now("start").is_none() && !state.finished {
        if !fresh()? {
            return Ok(false);
        }
        let id = recreate_tag(repo, &state.start_tag)?;
        sync_ref(
            repo,
            plan,
            &names::checkpoint_tag(plan, "start"),
            None,
            Some(id),
            notes,
        )?;
    }
    for phase in &snap.plan.phases {
        let name = names::checkpoint_tag(plan, &phase.id);
        let current = tag_now(&phase.id);
        let want = match state
            .phases
            .get(&phase.id)
            .and_then(|p| p.checkpoint.as_ref())
        {
            Some(cp) if current != Some(cp.tag.object.oid()) => {
                Some(Some(recreate_tag(repo, &cp.tag)?))
            }
            None if current.is_some() => Some(None),
            _ => None,
        };
        if let Some(want) = want {
            if !fresh()? {
                return Ok(false);
            }
            sync_ref(repo, plan, &name, current, want, notes)?;
        }
    }

    // A task returned to pending whose branch survived (a reset or rollback
    // interrupted after its state commit), or any task of a plan whose
    // `finish` was interrupted: keep its work, drop the branch.
    let branches = repo.refs_under(&names::task_branch_prefix(plan))?;
    for (name, head) in branches {
        let Some(task) = name.strip_prefix(&names::task_branch_prefix(plan)) else {
            continue;
        };
        let pending = state.finished
            || state.abandoned
            || snap
                .tasks
                .get(task)?
                .is_none_or(|t| t.state() == TaskStatus::Pending);
        if !pending {
            continue;
        }
        if !fresh()? {
            return Ok(false);
        }
        // Only the worktree git-orch made for the task, at its place; a
        // branch that a person's own worktree has checked out stays, with
        // that worktree (the commands that would remove or reuse it say
        // so, and refuse).
        let own = crate::config::plan_worktrees(repo, plan).join(task);
        let elsewhere = repo.worktrees_on_branch_elsewhere(&name, &own)?;
        if let Some(path) = repo.worktree_at_on_branch(&own, &name)? {
            if let Some(snapshot) =
                repo.snapshot_worktree(&path, &format!("orch: uncommitted work of task {task}"))?
            {
                let kept =
                    names::preserved(plan, &format!("repair/worktree-{task}-{}", short(snapshot)));
                create_if_absent(repo, &kept, snapshot)?;
                crate::failpoint!("repair-worktree-kept");
                notes.push(format!(
                    "kept the uncommitted work of task {task} in {kept}"
                ));
            }
            repo.remove_worktree(&path)?;
            crate::failpoint!("repair-worktree-removed");
        }
        if !elsewhere.is_empty() {
            continue;
        }
        // A finished or abandoned plan's ordinary branch (its work landed,
        // or already kept under `preserved/`, as `finish`, `abandon` or a
        // shared sync keeps it) goes without a word: a clone that ran tasks
        // and syncs the plan another machine finished repairs nothing.
        if (state.finished || state.abandoned) && already_kept(repo, plan, head, expected_work)? {
            match repo.cas_delete(&name, head) {
                Err(e) if !e.is::<RefRace>() => return Err(e),
                _ => continue,
            }
        }
        sync_ref(repo, plan, &name, Some(head), None, notes)?;
    }
    Ok(true)
}

/// Whether `head` is in the work branch or under a preserved ref of the
/// plan: dropping a branch at it loses nothing.
pub fn already_kept(repo: &Repo, plan: &str, head: Oid, work: Oid) -> Result<bool> {
    if repo.is_ancestor(head, work) {
        return Ok(true);
    }
    Ok(repo
        .refs_under(&names::preserved(plan, ""))?
        .into_iter()
        .any(|(_, kept)| peel(repo, kept).is_some_and(|k| repo.is_ancestor(head, k))))
}

/// Moves `name` from `current` to `want` (`None`: deleted). `current` is
/// the value read *before* the state was found fresh: a ref moved since then
/// was moved by a newer command, and the compare-and-swap leaves it be. A
/// current value that is not already contained in `want` is preserved first.
fn sync_ref(
    repo: &Repo,
    plan: &str,
    name: &str,
    current: Option<Oid>,
    want: Option<Oid>,
    notes: &mut Vec<String>,
) -> Result<()> {
    if current == want {
        return Ok(());
    }
    // A ref that merely lags behind the state is moved without a word.
    let mut lagging = current.is_some() && want.is_some();
    if let Some(cur) = current {
        let contained = match want {
            Some(w) => peel(repo, cur)
                .zip(peel(repo, w))
                .is_some_and(|(c, w)| repo.is_ancestor(c, w)),
            None => false,
        };
        if !contained {
            let kept = names::preserved(
                plan,
                &format!(
                    "repair/{}-{}",
                    names::display(name).replace('/', "-"),
                    short(cur)
                ),
            );
            create_if_absent(repo, &kept, cur)?;
            crate::failpoint!("repair-preserved");
            lagging = false;
            notes.push(format!(
                "{} was at {}, not where the plan's state says; kept it in {kept}",
                names::display(name),
                short(cur)
            ));
        }
    }
    let result = match (want, current) {
        (Some(w), old) => repo.cas_ref(name, w, old, "orch: repair from state"),
        (None, Some(old)) => repo.cas_delete(name, old),
        (None, None) => Ok(()),
    };
    match result {
        Ok(()) => {
            crate::failpoint!("repair-ref-moved");
            if !lagging {
                notes.push(format!("repaired {}", names::display(name)));
            }
            Ok(())
        }
        // Someone else is repairing or changing it right now; their write wins.
        Err(e) if e.is::<RefRace>() => Ok(()),
        Err(e) => Err(e),
    }
}

fn peel(repo: &Repo, id: Oid) -> Option<Oid> {
    repo.git
        .find_object(id, None)
        .ok()?
        .peel_to_commit()
        .ok()
        .map(|c| c.id())
}

pub fn create_if_absent(repo: &Repo, name: &str, id: Oid) -> Result<()> {
    match repo.cas_ref(name, id, None, "orch: preserve") {
        Ok(()) => Ok(()),
        Err(e) if e.is::<RefRace>() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Writes the annotated tag object a record describes (same bytes, same id).
pub fn recreate_tag(repo: &Repo, record: &TagRecord) -> Result<Oid> {
    let target = repo.git.find_object(record.target.oid(), None)?;
    let time = git2::Time::new(record.time, record.offset_minutes);
    let tagger = git2::Signature::new(&record.tagger_name, &record.tagger_email, &time)?;
    Ok(repo
        .git
        .tag_annotation_create(&record.name, &target, &tagger, &record.message)?)
}

/// Writes a new annotated tag object for `target` (no ref) and returns the
/// record that can recreate it.
pub fn new_tag(repo: &Repo, name: &str, target: Oid, message: &str) -> Result<TagRecord> {
    let sig = repo.signature()?;
    let when = sig.when();
    let mut record = TagRecord {
        name: name.to_string(),
        // Set below, once the object is written.
        object: Oid::zero().into(),
        target: target.into(),
        tagger_name: sig.name().unwrap_or("git-orch").to_string(),
        tagger_email: sig.email().unwrap_or("git-orch@localhost").to_string(),
        time: when.seconds(),
        offset_minutes: when.offset_minutes(),
        message: message.to_string(),
    };
    record.object = recreate_tag(repo, &record)?.into();
    Ok(record)
}
