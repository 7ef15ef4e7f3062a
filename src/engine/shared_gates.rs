//! Gates once per shared plan (issue 22). In a run shared through a remote,
//! the runner that finds a phase settled first takes the phase's gate lock,
//! `refs/heads/orch/<plan>/gates/<phase>` on the remote (created under a
//! lease that the remote has no such ref, or on the expired or stale one
//! it has), runs the gates and makes the checkpoint; the other runners
//! wait for it and take its checkpoint as theirs. The lock is a commit of
//! the empty tree whose message names the runner, its machine, the lock's
//! expiry (renewed every third of the lease while the gates run), the work
//! commit gated and, once done, the result. A dead holder's lock expires
//! and is taken over. `orch.gates = local` makes a machine run every
//! checkpoint's gates itself: it takes no lock and waits for none, and a
//! phase another machine checkpointed is gated here again on the
//! checkpoint's commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use git2::Oid;

use crate::git::{RefRace, Repo};
use crate::state::{self, sync};

/// `orch.gates`: `local` makes this machine run every checkpoint's gates.
pub fn local(repo: &Repo) -> bool {
    crate::config::of(repo)
        .get(crate::config::GATES)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("local"))
}

/// Whether checkpoints are gated once for every machine: a shared run
/// whose machine did not ask for local gates.
pub fn once(repo: &Repo) -> bool {
    sync::active().is_some() && !local(repo)
}

pub fn lock_ref(plan: &str, phase: &str) -> String {
    format!("refs/heads/orch/{plan}/gates/{phase}")
}

/// What a gate lock says.
#[derive(Debug, Clone, PartialEq)]
struct Lock {
    runner: String,
    machine: String,
    expires: f64,
    commit: String,
    /// `running`, `passed`, `failed` or `released`.
    result: String,
    at: f64,
}

fn write_lock(repo: &Repo, phase: &str, lock: &Lock) -> Result<Oid> {
    let tree = repo.git.treebuilder(None)?.write()?;
    let tree = repo.git.find_tree(tree)?;
    let sig = repo.signature()?;
    let message = format!(
        "orch: gates of phase {phase}\n\nrunner {}\nmachine {}\nexpires {}\ncommit {}\nresult {}\nat {}\n",
        lock.runner, lock.machine, lock.expires, lock.commit, lock.result, lock.at
    );
    Ok(repo.git.commit(None, &sig, &sig, &message, &tree, &[])?)
}

fn read_lock(repo: &Repo, id: Oid) -> Option<Lock> {
    let commit = repo.git.find_commit(id).ok()?;
    let message = commit.message()?;
    let field = |key: &str| {
        message
            .lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
    };
    Some(Lock {
        runner: field("runner ")?,
        machine: field("machine ")?,
        expires: field("expires ")?.parse().ok()?,
        commit: field("commit ")?,
        result: field("result ")?,
        at: field("at ")?.parse().ok()?,
    })
}

/// What the runner does about a settled phase's gates.
pub enum Turn {
    /// This runner holds the lock: it runs the gates.
    Ours(Held),
    /// Another runner is at them: wait (why).
    Theirs(String),
    /// They failed on another machine during this run, at this commit.
    FailedElsewhere(String),
    /// Another runner took the lock first: look again.
    Lost,
}

/// The lock this runner holds, as last pushed.
pub struct Held {
    name: String,
    phase: String,
    value: Oid,
    lock: Lock,
}

/// Takes the gate lock of `phase` for the work commit `work`, unless a
/// live one is another runner's. `since` is when this run started: a
/// failure recorded before it is gated again.
pub fn take(repo: &Repo, plan: &str, phase: &str, work: Oid, since: f64) -> Result<Turn> {
    let Some(r) = sync::active() else {
        return Ok(Turn::Lost);
    };
    let name = lock_ref(plan, phase);
    let theirs = sync::tracked(repo, &r.name, &name)?;
    let current = theirs.and_then(|o| read_lock(repo, o));
    let now = state::now();
    if let Some(l) = current.as_ref().filter(|l| l.commit == work.to_string()) {
        match l.result.as_str() {
            "running" if l.expires >= now && l.runner != r.runner => {
                return Ok(Turn::Theirs(format!(
                    "waiting for the gates of phase {phase}, run by runner {} on {}",
                    l.runner, l.machine
                )))
            }
            "failed" if l.at >= since && l.runner != r.runner => {
                return Ok(Turn::FailedElsewhere(l.machine.clone()))
            }
            // Passed: the checkpoint arrives with the next fetch.
            "passed" if l.expires >= now => {
                return Ok(Turn::Theirs(format!(
                    "waiting for the checkpoint of phase {phase} from {}",
                    l.machine
                )))
            }
            _ => {}
        }
    }
    let lock = Lock {
        runner: r.runner.clone(),
        machine: r.machine.clone(),
        expires: now + r.lease.as_secs_f64(),
        commit: work.to_string(),
        result: "running".into(),
        at: now,
    };
    let value = write_lock(repo, phase, &lock)?;
    match push_lock(repo, &r.name, &name, Some(value), theirs) {
        Ok(()) => Ok(Turn::Ours(Held {
            name,
            phase: phase.to_string(),
            value,
            lock,
        })),
        Err(e) if e.is::<RefRace>() => {
            crate::trace::lost_race("gates");
            sync::fetch(repo, &r.name, plan, false)?;
            Ok(Turn::Lost)
        }
        Err(e) => Err(e),
    }
}

fn push_lock(
    repo: &Repo,
    remote: &str,
    name: &str,
    new: Option<Oid>,
    old: Option<Oid>,
) -> Result<()> {
    sync::push(repo, remote, &[(name.to_string(), new, old)])?;
    if let Some(t) = sync::tracking(remote, name) {
        let _ = match new {
            Some(new) => repo
                .git
                .reference(&t, new, true, "orch: pushed")
                .map(|_| ()),
            None => repo.git.find_reference(&t).and_then(|mut r| r.delete()),
        };
    }
    Ok(())
}

impl Held {
    /// Runs `gates` (the gates, the checkpoint, a fix-forward) while the
    /// lock is renewed on a thread of its own, then records how they went:
    /// `Some(false)` failed for good (the others stop too), anything else
    /// gives the lock up.
    pub fn run<T>(
        mut self,
        repo: &Repo,
        gates: impl FnOnce() -> Result<(T, Option<bool>)>,
    ) -> Result<T> {
        let Some(r) = sync::active() else {
            return gates().map(|(t, _)| t);
        };
        let done = AtomicBool::new(false);
        let renewed = std::sync::Mutex::new((self.value, self.lock.clone()));
        let root = repo.root.clone();
        let (name, phase) = (&self.name, &self.phase);
        let outcome = std::thread::scope(|scope| {
            scope.spawn(|| {
                let Ok(repo) = Repo::discover(&root) else {
                    return;
                };
                let mut last = Instant::now();
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                    if last.elapsed() < r.lease / 3 {
                        continue;
                    }
                    last = Instant::now();
                    let Ok(mut held) = renewed.lock() else {
                        return;
                    };
                    let mut lock = held.1.clone();
                    lock.expires = state::now() + r.lease.as_secs_f64();
                    let Ok(value) = write_lock(&repo, phase, &lock) else {
                        continue;
                    };
                    if push_lock(&repo, &r.name, name, Some(value), Some(held.0)).is_ok() {
                        *held = (value, lock);
                    }
                }
            });
            let outcome = gates();
            done.store(true, Ordering::Relaxed);
            outcome
        });
        (self.value, self.lock) = renewed.into_inner().unwrap_or_else(|p| p.into_inner());
        let verdict = outcome.as_ref().ok().and_then(|(_, v)| *v);
        // Best effort: a lock left behind expires, and `sync` of a closed
        // plan clears it.
        let _ = self.record(repo, &r.name, verdict);
        outcome.map(|(t, _)| t)
    }

    fn record(&mut self, repo: &Repo, remote: &str, verdict: Option<bool>) -> Result<()> {
        let mut lock = self.lock.clone();
        lock.result = match verdict {
            Some(true) => "passed",
            Some(false) => "failed",
            None => "released",
        }
        .into();
        lock.at = state::now();
        // A passed lock stays a moment, until the checkpoint is fetched.
        lock.expires = state::now() + 30.0;
        let value = write_lock(repo, &self.phase, &lock)?;
        push_lock(repo, remote, &self.name, Some(value), Some(self.value))
    }
}
