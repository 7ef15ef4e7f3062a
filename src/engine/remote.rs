//! One plan, many machines: the runner's side of sharing a plan through a
//! git remote (the transactions themselves go through [`crate::state::sync`]).
//! A remote claim holds a lease that its runner renews every third of its
//! length, pushing the task's branch with it; a claim whose lease expired
//! is taken over by any runner, after what its machine had pushed is kept
//! under `refs/orch/<plan>/preserved/`.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use git2::Oid;

use crate::git::Repo;
use crate::state::sync::{self, Remote};
use crate::state::{self, names, store, transition, Lease, TaskStatus};

/// The remote a command shares through: `--remote`, else `orch.remote`.
pub fn chosen(repo: &Repo, flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string).or_else(|| {
        crate::config::of(repo)
            .get(crate::config::REMOTE)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

/// The lease length: `--lease`, else `orch.lease`, else 60 s.
pub fn lease_length(repo: &Repo, flag: Option<&str>) -> Result<Duration> {
    match flag.or_else(|| crate::config::of(repo).get(crate::config::LEASE)) {
        Some(text) => sync::parse_lease(text),
        None => Ok(sync::DEFAULT_LEASE),
    }
}

/// This machine's name in leases.
pub fn machine(repo: &Repo) -> String {
    crate::config::of(repo)
        .get(crate::config::MACHINE)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(crate::process::hostname)
}

/// Shares every state change of this process through `remote`.
pub fn activate(repo: &Repo, remote: &str, lease: Duration) -> Result<()> {
    sync::check_remote(repo, remote)?;
    let machine = machine(repo);
    let pid = std::process::id();
    let start = crate::process::process_start_time(pid).unwrap_or(0);
    sync::activate(Remote {
        name: remote.to_string(),
        lease,
        runner: format!("{machine}:{pid}:{start}"),
        machine,
    });
    Ok(())
}

/// The lease a new claim of this process takes, when it shares a remote.
pub fn new_lease() -> Option<Lease> {
    let r = sync::active()?;
    Some(Lease {
        runner: r.runner.clone(),
        machine: r.machine.clone(),
        expires: state::now() + r.lease.as_secs_f64(),
    })
}

/// A task's lease on the remote: `refs/heads/orch/<plan>/leases/<task>`, a
/// commit of the empty tree whose message names the runner, its machine
/// and the expiry. Renewing it moves that one ref (under a lease on its
/// last value), never the state, so renewals race with nothing; taking a
/// task over moves it too, atomically with the state, so a renewal and a
/// takeover cannot both win.
pub fn lease_ref(plan: &str, id: &str) -> String {
    format!("refs/heads/orch/{plan}/leases/{id}")
}

fn lease_commit(repo: &Repo, id: &str, lease: &Lease) -> Result<Oid> {
    let tree = repo.git.treebuilder(None)?.write()?;
    let tree = repo.git.find_tree(tree)?;
    let sig = repo.signature()?;
    let message = format!(
        "orch: lease of task {id}\n\nrunner {}\nmachine {}\nexpires {}\n",
        lease.runner, lease.machine, lease.expires
    );
    Ok(repo.git.commit(None, &sig, &sig, &message, &tree, &[])?)
}

/// The lease a lease commit records.
fn read_lease(repo: &Repo, id: Oid) -> Option<Lease> {
    let commit = repo.git.find_commit(id).ok()?;
    let message = commit.message()?;
    let field = |key: &str| {
        message
            .lines()
            .find_map(|l| l.strip_prefix(key).map(str::to_string))
    };
    Some(Lease {
        runner: field("runner ")?,
        machine: field("machine ")?,
        expires: field("expires ")?.trim().parse().ok()?,
    })
}

/// The refs a remote claim pushes with the state: the task's branch at its
/// base and its lease. Nothing when the plan is not shared.
pub fn claim_pushes(
    repo: &Repo,
    plan: &str,
    id: &str,
    base: Oid,
    claim: &state::Claim,
) -> Result<Vec<(String, Oid)>> {
    let (Some(_), Some(lease)) = (sync::active(), claim.lease.as_ref()) else {
        return Ok(Vec::new());
    };
    Ok(vec![
        (names::task_branch(plan, id), base),
        (lease_ref(plan, id), lease_commit(repo, id, lease)?),
    ])
}

/// [`claim_pushes`] for a task claimed again in place (a retry, a wake):
/// its branch where its last attempt left it (here, else as the remote
/// has it), at `base` only when neither has it.
pub fn claim_pushes_in_place(
    repo: &Repo,
    plan: &str,
    id: &str,
    base: Oid,
    claim: &state::Claim,
) -> Result<Vec<(String, Oid)>> {
    let Some(r) = sync::active() else {
        return Ok(Vec::new());
    };
    let branch = names::task_branch(plan, id);
    let theirs = sync::tracked(repo, &r.name, &branch)?;
    // Only forward: what another machine pushed there is never undone.
    let head = match (repo.ref_target(&branch)?, theirs) {
        (Some(mine), Some(t)) if mine != t && !repo.is_ancestor(t, mine) => t,
        (Some(mine), _) => mine,
        (None, Some(t)) => t,
        (None, None) => base,
    };
    claim_pushes(repo, plan, id, head, claim)
}

/// The lease of a running task as the remote last told: its lease ref if
/// that is the claim's runner's, else the claim's own.
fn current_lease(
    repo: &Repo,
    remote: &str,
    plan: &str,
    id: &str,
    claim: &state::Claim,
) -> Result<Option<Lease>> {
    let Some(mine) = claim.lease.clone() else {
        return Ok(None);
    };
    let tracked = sync::tracked(repo, remote, &lease_ref(plan, id))?
        .and_then(|oid| read_lease(repo, oid))
        .filter(|l| l.runner == mine.runner && l.expires >= mine.expires);
    Ok(Some(tracked.unwrap_or(mine)))
}

/// A claim whose lease (if any) runs a whole lease length from now.
pub fn fresh(mut claim: state::Claim) -> state::Claim {
    if let (Some(l), Some(r)) = (claim.lease.as_mut(), sync::active()) {
        l.expires = state::now() + r.lease.as_secs_f64();
    }
    claim
}

/// Renews, every third of the lease, the leases of this runner's running
/// tasks, on a thread of its own (its own repository handle), so that a
/// long landing or gate run of the main loop never lets them lapse; each
/// renewal also pushes the task's branch (what its agent committed so
/// far). Ends once `done` is set.
pub fn spawn_renewer<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    root: &std::path::Path,
    plan: &str,
    done: &'scope AtomicBool,
) {
    let Some(r) = sync::active() else {
        return;
    };
    let (root, plan) = (root.to_path_buf(), plan.to_string());
    scope.spawn(move || {
        let Ok(repo) = Repo::discover(&root) else {
            return;
        };
        let mut last = Instant::now();
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            if last.elapsed() >= r.lease / 3 {
                last = Instant::now();
                let _ = renew(&repo, &plan, &r);
            }
        }
    });
}

/// Sets its flag when dropped: ends [`spawn_renewer`]'s thread however the
/// run's loop ends.
pub struct Done<'a>(pub &'a AtomicBool);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn renew(repo: &Repo, plan: &str, r: &Remote) -> Result<()> {
    let snap = store::load(repo, plan)?;
    for id in &snap.state.active {
        let t = snap.task(id)?;
        let Some(claim) = t.claim().filter(|_| t.state() == TaskStatus::Running) else {
            continue;
        };
        if claim.lease.as_ref().is_none_or(|l| l.runner != r.runner) {
            continue;
        }
        let lease = Lease {
            runner: r.runner.clone(),
            machine: r.machine.clone(),
            expires: state::now() + r.lease.as_secs_f64(),
        };
        let name = lease_ref(plan, id);
        let new = lease_commit(repo, id, &lease)?;
        let Some(tracking) = sync::tracking(&r.name, &name) else {
            continue;
        };
        // The remote's value: ours as last pushed, unless a takeover moved it.
        let mut theirs = repo.ref_target(&tracking)?;
        for _ in 0..3 {
            match sync::push(repo, &r.name, &[(name.clone(), Some(new), theirs)]) {
                Ok(()) => {
                    let _ = repo
                        .git
                        .reference(&tracking, new, true, "orch: lease renewed");
                    break;
                }
                Err(e) if e.is::<crate::git::RefRace>() => {
                    // A fetch of ours may have left an older value here;
                    // a value not ours is a takeover.
                    let now = remote_value(repo, &r.name, &name)?;
                    if now.is_some_and(|o| repo.git.find_commit(o).is_err()) {
                        sync::fetch(repo, &r.name, plan, false)?;
                    }
                    let held = now.and_then(|o| read_lease(repo, o));
                    if held.is_none_or(|l| l.runner != r.runner) {
                        break;
                    }
                    theirs = now;
                }
                Err(e) => return Err(e),
            }
        }
        // What its agent committed so far, best effort.
        let branch = names::task_branch(plan, id);
        if let (Some(head), Some(t)) = (repo.ref_target(&branch)?, sync::tracking(&r.name, &branch))
        {
            let theirs = repo.ref_target(&t)?;
            if theirs != Some(head)
                && sync::push(repo, &r.name, &[(branch, Some(head), theirs)]).is_ok()
            {
                let _ = repo.git.reference(&t, head, true, "orch: pushed");
            }
        }
    }
    Ok(())
}

/// What the remote holds at `name` now (`git ls-remote`).
fn remote_value(repo: &Repo, remote: &str, name: &str) -> Result<Option<Oid>> {
    let out = sync::ls_remote(repo, remote, &[name])?;
    Ok(out
        .lines()
        .find(|l| l.split('\t').nth(1) == Some(name))
        .and_then(|l| Oid::from_str(l.split('\t').next()?).ok()))
}

/// A task of this runner that finished after its lease expired and
/// another runner took it over: what it did is kept under
/// `refs/orch/<plan>/preserved/` (pushed too) and the run goes on, the task
/// no longer its business. `None` when the task is still this runner's
/// (or the plan is not shared).
pub fn lost(repo: &Repo, plan: &str, id: &str) -> Result<Option<Vec<String>>> {
    let Some(r) = sync::active() else {
        return Ok(None);
    };
    // Its lease as last renewed still runs: nobody can have taken it over.
    let snap = store::load(repo, plan)?;
    if let Some(claim) = snap.task(id)?.claim() {
        let held = current_lease(repo, &r.name, plan, id, claim)?;
        if held.is_some_and(|l| l.runner == r.runner && l.expires > state::now() + 0.5) {
            return Ok(None);
        }
    }
    sync::pull(repo, &r.name, plan)?;
    let snap = store::load(repo, plan)?;
    let t = snap.task(id)?;
    let ours = t.state() == TaskStatus::Running
        && t.claim()
            .and_then(|c| c.lease.as_ref())
            .is_some_and(|l| l.runner == r.runner);
    if ours {
        return Ok(None);
    }
    let tag = super::tasks::preserve_tag(&format!("lost-{id}"));
    let kept = super::tasks::preserve_task(repo, plan, id, &tag, snap.state.work.oid())?;
    let mut pushes = Vec::new();
    for name in &kept {
        if let Some(head) = repo.ref_target(name)? {
            pushes.push((name.clone(), Some(head), None));
        }
    }
    sync::push(repo, &r.name, &pushes)?;
    Ok(Some(kept))
}

/// Refuses to land a task whose remote claim another runner holds now (its
/// lease expired and it was taken over).
pub fn refuse_unless_ours(t: &state::TaskState, id: &str) -> Result<()> {
    let Some(r) = sync::active() else {
        return Ok(());
    };
    match t.claim().and_then(|c| c.lease.as_ref()) {
        Some(l) if l.runner != r.runner => Err(crate::error::refuse(format!(
            "task `{id}` is held by runner {} on {} now (this runner's lease on it expired)",
            l.runner, l.machine
        ))),
        _ => Ok(()),
    }
}

/// Takes back every task whose remote claim's lease expired (its runner
/// died or lost the remote): what its machine pushed on the task's branch is
/// kept under `refs/orch/<plan>/preserved/` (pushed too), then the task is
/// pending again for any runner. Returns the tasks with the refs kept.
pub fn take_over_expired(repo: &Repo, plan: &str) -> Result<Vec<(String, Vec<String>)>> {
    let Some(r) = sync::active() else {
        return Ok(Vec::new());
    };
    let snap = store::load(repo, plan)?;
    let mut taken = Vec::new();
    for id in &snap.state.active {
        let t = snap.task(id)?;
        let Some(claim) = t.claim().filter(|c| !c.manual).cloned() else {
            continue;
        };
        let Some(lease) =
            current_lease(repo, &r.name, plan, id, &claim)?.filter(|l| l.expires < state::now())
        else {
            continue;
        };
        let work = snap.state.work.oid();
        let branch = names::task_branch(plan, id);
        let pushed = sync::tracked(repo, &r.name, &branch)?;
        let tag = super::tasks::preserve_tag(&format!("lease-{id}"));
        let mut kept: Vec<(String, Oid)> = pushed
            .filter(|head| !repo.is_ancestor(*head, work))
            .map(|head| (names::preserved(plan, &format!("{tag}/tasks/{id}")), head))
            .into_iter()
            .collect();
        // This machine's own dead runner left the task's checkout here, and
        // the claim that follows reuses it: its uncommitted files are kept
        // too (another machine's stay on that machine's disk).
        if let Some(path) = super::tasks::task_checkout(repo, plan, id)? {
            let head = repo.ref_target(&branch)?;
            let message = format!("orch: uncommitted work of task {id}");
            if let Some(content) = repo.worktree_content(&path, &message, head.unwrap_or(work))? {
                if Some(content) != head
                    && Some(content) != pushed
                    && !repo.is_ancestor(content, work)
                {
                    kept.push((
                        names::preserved(plan, &format!("{tag}/worktrees/{id}")),
                        content,
                    ));
                }
            }
        }
        for (name, head) in &kept {
            state::reconcile::create_if_absent(repo, name, *head)?;
        }
        let reason = format!(
            "the lease of runner {} on {} expired",
            lease.runner, lease.machine
        );
        // The lease ref moves with the state: a renewal that got in first
        // makes this push lose, and the next look sees the lease renewed.
        let released = lease_commit(
            repo,
            id,
            &Lease {
                runner: r.runner.clone(),
                machine: r.machine.clone(),
                expires: 0.0,
            },
        )?;
        let (won, _) = store::transact(repo, plan, |s, change| {
            if s.task(id)?.claim() != Some(&claim) {
                return Ok(false);
            }
            let still = current_lease(repo, &r.name, plan, id, &claim)?;
            if still.is_none_or(|l| l.expires >= state::now()) {
                return Ok(false);
            }
            let t = transition::interrupt(&change.task(id)?, reason.clone(), None)
                .map_err(|w| w.about(id))?;
            let attempt = t.attempts;
            change.put_task(id, t);
            change.push.extend(kept.iter().cloned());
            change.push.push((lease_ref(plan, id), released));
            change.event = Some(state::Event::TaskRecovered {
                task: id.clone(),
                attempt,
                reason: reason.clone(),
                at: state::now(),
            });
            Ok(true)
        })?;
        if won {
            taken.push((id.clone(), kept.into_iter().map(|(n, _)| n).collect()));
        } else {
            // Renewed after all, or someone else took it over first.
            for (name, head) in kept {
                let _ = repo.cas_delete(&name, head);
            }
        }
    }
    Ok(taken)
}

/// Pulls at most every `every`, so that an idle runner sees the others'
/// progress without fetching in a tight loop.
pub fn pull_if_due(repo: &Repo, plan: &str, last: &mut Instant, every: Duration) -> Result<()> {
    let Some(r) = sync::active() else {
        return Ok(());
    };
    // This process's own fetch or push a moment ago says as much.
    if last.elapsed() < every || sync::fresh_within(every) {
        return Ok(());
    }
    sync::pull(repo, &r.name, plan)?;
    *last = Instant::now();
    Ok(())
}

/// What `git orch sync` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct SyncReport {
    pub plan: String,
    pub remote: String,
    /// The state commit both sides hold now.
    pub state: String,
    /// State commits fetched, and pushed.
    pub fetched: usize,
    pub pushed: usize,
    /// Refs pushed (branches, tags, preserved refs).
    pub refs: Vec<String>,
    /// Branches deleted on the remote (a closed plan's task, lease and
    /// gate branches).
    pub deleted: Vec<String>,
}

/// `git orch sync`: fetches the plan's refs (state, work, task branches,
/// tags, preserved refs), fast-forwards the local state to the remote's,
/// and pushes what only this clone has, all under leases: the state if it
/// is ahead, the work branch with it, task branches that only move
/// forward, tags and preserved refs the remote lacks.
pub fn sync_plan(repo: &Repo, plan: &str, remote: &str) -> Result<SyncReport> {
    sync::check_remote(repo, remote)?;
    // A lost lease (another machine pushed meanwhile): fetch and try again.
    for attempt in 0..50 {
        match sync_once(repo, plan, remote) {
            Err(e) if e.is::<crate::git::RefRace>() => {
                crate::trace::lost_race("sync");
                sync::back_off(attempt)
            }
            // A fetch that read half of another machine's push: again, a
            // few times (a remote that stays so is broken, and says so).
            Err(e) if e.is::<sync::TornFetch>() && attempt < 20 => sync::back_off(attempt),
            other => return other,
        }
    }
    Err(crate::error::refuse(format!(
        "plan `{plan}` is being changed on `{remote}` too fast to keep up; try again"
    )))
}

fn sync_once(repo: &Repo, plan: &str, remote: &str) -> Result<SyncReport> {
    sync::fetch(repo, remote, plan, true)?;
    let fetched = match sync::standing(repo, remote, plan)? {
        Some(s) => s.behind,
        // New here: all of the remote's history.
        None => match sync::remote_state(repo, remote, plan)? {
            Some(r) => {
                let mut walk = repo.git.revwalk()?;
                walk.push(r)?;
                walk.count()
            }
            None => 0,
        },
    };
    if repo.ref_target(&names::state(plan))?.is_none()
        && sync::remote_state(repo, remote, plan)?.is_none()
    {
        return Err(crate::error::refuse_with_hint(
            format!("no plan named `{plan}` here or on `{remote}`"),
            "see the plans with `git orch list`",
        ));
    }
    let lease = sync::adopt(repo, remote, plan)?;
    let snap = store::load(repo, plan)?;
    let mut pushes: Vec<(String, Option<Oid>, Option<Oid>)> = Vec::new();
    if lease != Some(snap.commit) {
        pushes.push((names::state(plan), Some(snap.commit), lease));
    }
    let remote_of = |name: &str| sync::tracked(repo, remote, name);
    let work = snap.state.work.oid();
    let work_ref = names::work(plan);
    let theirs = remote_of(&work_ref)?;
    if theirs != Some(work) && lease != Some(snap.commit) {
        pushes.push((work_ref, Some(work), theirs));
    }
    // A finished or abandoned plan keeps no task, lease or gate branch on
    // the remote, and this clone's branches go nowhere.
    let closed = snap.state.finished || snap.state.abandoned;
    let prefix = names::task_branch_prefix(plan);
    let mine = if closed {
        Vec::new()
    } else {
        repo.refs_under(&prefix)?
    };
    for (name, head) in mine {
        // A task a runner holds through the remote: its branch is that
        // runner's to push (its renewals do); a branch left here by an old
        // attempt would take the place of its work on the remote.
        let held = name
            .strip_prefix(&prefix)
            .and_then(|id| snap.task(id).ok())
            .is_some_and(|t| {
                t.state() == TaskStatus::Running && t.claim().is_some_and(|c| c.lease.is_some())
            });
        if held {
            continue;
        }
        let theirs = remote_of(&name)?;
        let forward = theirs.is_none_or(|t| t != head && repo.is_ancestor(t, head));
        if forward {
            pushes.push((name, Some(head), theirs));
        }
    }
    let on_remote: BTreeSet<String> = remote_refs(repo, remote, plan)?;
    for prefix in [names::tag_prefix(plan), names::preserved(plan, "")] {
        for (name, id) in repo.refs_under(&prefix)? {
            if !on_remote.contains(&name) {
                pushes.push((name, Some(id), None));
            }
        }
    }
    if closed {
        pushes.extend(closed_plan_litter(repo, plan, remote, work)?);
    }
    sync::push(repo, remote, &pushes)?;
    for (name, new, _) in &pushes {
        if let (Some(t), Some(new)) = (sync::tracking(remote, name), new) {
            let _ = repo.git.reference(&t, *new, true, "orch: pushed");
        }
    }
    if closed {
        // Gone from the remote: their remote-tracking refs go too (a fetch
        // never prunes them).
        for kind in CLOSED_LITTER {
            let under = format!("refs/remotes/{remote}/orch/{plan}/{kind}/");
            for (name, id) in repo.refs_under(&under)? {
                let _ = repo.cas_delete(&name, id);
            }
        }
    }
    let pushed = match lease {
        Some(l) if l != snap.commit => repo
            .git
            .graph_ahead_behind(snap.commit, l)
            .map_or(0, |(a, _)| a),
        Some(_) => 0,
        // New there: all of this clone's history.
        None => {
            let mut walk = repo.git.revwalk()?;
            walk.push(snap.commit)?;
            walk.count()
        }
    };
    Ok(SyncReport {
        plan: plan.to_string(),
        remote: remote.to_string(),
        state: snap.commit.to_string(),
        fetched,
        pushed,
        deleted: pushes
            .iter()
            .filter(|(_, new, _)| new.is_none())
            .map(|(n, _, _)| n.clone())
            .collect(),
        refs: pushes
            .into_iter()
            .filter(|(_, new, _)| new.is_some())
            .map(|(n, _, _)| n)
            .collect(),
    })
}

/// The branch kinds of a plan that a finished or abandoned plan leaves
/// nowhere: `tasks/<id>`, `leases/<id>`, `gates/<phase>`.
const CLOSED_LITTER: [&str; 3] = ["tasks", "leases", "gates"];

/// The pushes that clear a finished or abandoned plan's task, lease and
/// gate branches off the remote, each under a lease on the value listed
/// now. A task branch holding work that is neither in the work branch nor
/// kept under a preserved ref (pushed there by a runner that was still at
/// it) is kept under `preserved/sync-…/tasks/<id>` in the same push.
fn closed_plan_litter(
    repo: &Repo,
    plan: &str,
    remote: &str,
    work: Oid,
) -> Result<Vec<sync::LeasedPush>> {
    let patterns: Vec<String> = CLOSED_LITTER
        .iter()
        .map(|kind| format!("refs/heads/orch/{plan}/{kind}/*"))
        .collect();
    let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let listed = sync::ls_remote(repo, remote, &patterns)?;
    let tag = super::tasks::preserve_tag("sync");
    let mut pushes = Vec::new();
    for line in listed.lines() {
        let Some((id, name)) = line.split_once('\t') else {
            continue;
        };
        let Ok(id) = Oid::from_str(id) else {
            continue;
        };
        // Moved after this sync's fetch: fetch again (the caller retries).
        if repo.git.find_commit(id).is_err() {
            return Err(crate::git::RefRace {
                name: format!("{remote}: {name}"),
            }
            .into());
        }
        let task = name.strip_prefix(&names::task_branch_prefix(plan));
        if let Some(task) = task {
            if !state::reconcile::already_kept(repo, plan, id, work)? {
                let kept = names::preserved(plan, &format!("{tag}/tasks/{task}"));
                state::reconcile::create_if_absent(repo, &kept, id)?;
                pushes.push((kept, Some(id), None));
            }
        }
        pushes.push((name.to_string(), None, Some(id)));
    }
    Ok(pushes)
}

/// The names of the remote's tags and preserved refs of the plan.
fn remote_refs(repo: &Repo, remote: &str, plan: &str) -> Result<BTreeSet<String>> {
    let tags = format!("{}*", names::tag_prefix(plan));
    let kept = format!("{}*", names::preserved(plan, ""));
    let out = sync::ls_remote(repo, remote, &[&tags, &kept])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split('\t').nth(1))
        .map(|n| n.trim_end_matches("^{}").to_string())
        .collect())
}
