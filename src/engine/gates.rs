//! Running quality gates: in a clean, separate, detached checkout of the
//! exact commit (never the user's working tree), each with its timeout,
//! results cached in the state branch keyed by tree and command, so a tree
//! that already passed a gate is not checked again.

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, Result};
use git2::Oid;

use crate::git::{short, Repo};
use crate::plan::{parse_duration, Gate};
use crate::process::{self, Exit, Job};
use crate::state::{store, Change, GateResult, Snapshot};

pub struct GateOptions<'a> {
    pub no_cache: bool,
    pub jobs: usize,
    /// Called with (gate name, output line) as gates run.
    pub on_line: &'a (dyn Fn(&str, &str) + Sync),
    /// Called when a gate starts (name) — for progress display.
    pub on_start: &'a (dyn Fn(&str) + Sync),
}

pub struct GateRun {
    pub result: GateResult,
    /// The full output; empty when the result came from the cache.
    pub log: Vec<u8>,
}

/// Where a gate result is cached in the state tree: the key is an HMAC of
/// the tree and the command with the repository's secret, so an entry a
/// task writes into the state branch by hand is never found (see
/// [`crate::secret`]).
pub fn cache_path(repo: &Repo, tree: Oid, command: &str) -> Result<String> {
    let secret = crate::secret::load(repo)?;
    let key = crate::secret::mac(
        &secret,
        &[b"git-orch gate cache", tree.as_bytes(), command.as_bytes()],
    );
    Ok(format!("cache/gates/{tree}/{key}.json"))
}

/// Runs `gates` against `commit`; cached passes are reported, not re-run.
pub fn run_gates(
    repo: &Repo,
    snap: &Snapshot,
    gates: &[&Gate],
    commit: Oid,
    opts: &GateOptions<'_>,
) -> Result<Vec<GateRun>> {
    let tree = repo.tree_of(commit)?;
    let mut runs: Vec<Option<GateRun>> = Vec::new();
    let mut to_run = Vec::new();
    for (i, gate) in gates.iter().enumerate() {
        let cached = if opts.no_cache {
            None
        } else {
            repo.read_path(snap.tree, &cache_path(repo, tree, &gate.run)?)?
        };
        match cached
            .and_then(|bytes| serde_json::from_slice::<GateResult>(&bytes).ok())
            .filter(|r| r.passed && r.command == gate.run)
        {
            Some(mut result) => {
                result.cached = true;
                result.commit = commit.into();
                runs.push(Some(GateRun {
                    result,
                    log: Vec::new(),
                }));
            }
            None => {
                runs.push(None);
                to_run.push(i);
            }
        }
    }
    if !to_run.is_empty() {
        let checkout = GateCheckout::new(repo, commit)?;
        let results: Mutex<Vec<(usize, GateRun)>> = Mutex::new(Vec::new());
        let queue = Mutex::new(to_run.into_iter());
        let workers = opts.jobs.max(1);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some(i) = next else { break };
                    let run = run_one(snap, gates[i], commit, &checkout.path, opts);
                    if let Ok(mut r) = results.lock() {
                        r.push((i, run));
                    }
                });
            }
        });
        for (i, run) in results.into_inner().unwrap_or_default() {
            runs[i] = Some(run);
        }
    }
    Ok(runs.into_iter().flatten().collect())
}

fn run_one(
    snap: &Snapshot,
    gate: &Gate,
    commit: Oid,
    dir: &std::path::Path,
    opts: &GateOptions<'_>,
) -> GateRun {
    (opts.on_start)(&gate.name);
    let timeout = gate.timeout.as_deref().and_then(|t| parse_duration(t).ok());
    let job = Job {
        command: &gate.run,
        dir,
        env: vec![
            ("ORCH_PLAN".to_string(), snap.plan_name.clone()),
            ("ORCH_GATE".to_string(), gate.name.clone()),
            ("ORCH_COMMIT".to_string(), commit.to_string()),
        ],
        timeout,
        pgid_file: None,
        contain: false,
        wrap: None,
    };
    let finished = process::run(&job, |line| (opts.on_line)(&gate.name, line));
    let reason = match &finished.exit {
        Exit::Code(0) => None,
        // What `sh -c` says when the command cannot be started.
        Exit::Code(127) => Some("exit code 127: command not found".to_string()),
        Exit::Code(126) => Some("exit code 126: command not executable".to_string()),
        other => Some(other.describe()),
    };
    GateRun {
        result: GateResult {
            name: gate.name.clone(),
            command: gate.run.clone(),
            passed: finished.exit.success(),
            seconds: finished.seconds,
            commit: commit.into(),
            log: format!("logs/gates/{}/{}.log", short(commit), gate.name),
            cached: false,
            reason,
        },
        log: finished.log,
    }
}

/// Adds gate logs and cache entries to a state change.
pub fn record(repo: &Repo, change: &mut Change, runs: &[GateRun]) -> Result<()> {
    for run in runs.iter().filter(|r| !r.result.cached) {
        change.file(run.result.log.clone(), run.log.clone());
        if run.result.passed {
            let tree = repo.tree_of(run.result.commit.oid())?;
            change.file(
                cache_path(repo, tree, &run.result.command)?,
                serde_json::to_vec_pretty(&run.result)?,
            );
        }
    }
    Ok(())
}

/// Records ad-hoc gate runs (`git orch gate`, the pre-push hook) in the
/// state branch so their logs and cache survive.
pub fn record_adhoc(repo: &Repo, plan: &str, runs: &[GateRun]) -> Result<()> {
    if runs.iter().all(|r| r.result.cached) {
        return Ok(());
    }
    store::transact(repo, plan, |_, change| {
        record(repo, change, runs)?;
        let commit = runs
            .iter()
            .find(|r| !r.result.cached)
            .map_or(String::new(), |r| r.result.commit.to_string());
        change.event = Some(crate::state::Event::GatesRan {
            commit,
            gates: verdicts(runs),
            at: crate::state::now(),
        });
        Ok(())
    })?;
    Ok(())
}

/// Each gate's verdict, for the event that records the run.
pub fn verdicts(runs: &[GateRun]) -> Vec<crate::state::GateVerdict> {
    runs.iter()
        .map(|r| crate::state::GateVerdict {
            name: r.result.name.clone(),
            passed: r.result.passed,
            cached: r.result.cached,
        })
        .collect()
}

/// A detached checkout of one commit for gates, removed when dropped.
struct GateCheckout<'r> {
    repo: &'r Repo,
    path: PathBuf,
}

impl<'r> GateCheckout<'r> {
    fn new(repo: &'r Repo, commit: Oid) -> Result<GateCheckout<'r>> {
        let dir = repo.orch_dir_created()?.join("gates");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        sweep_stale(repo, &dir);
        let path = dir.join(format!("{}-{}", std::process::id(), short(commit)));
        if path.exists() {
            repo.remove_worktree(&path)?;
        }
        repo.add_detached_worktree(&path, commit)?;
        crate::failpoint!("gate-checkout-made");
        Ok(GateCheckout { repo, path })
    }
}

impl Drop for GateCheckout<'_> {
    fn drop(&mut self) {
        let _ = self.repo.remove_worktree(&self.path);
    }
}

/// Removes gate checkouts left by processes that died mid-gate.
fn sweep_stale(repo: &Repo, dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() && !process::is_alive(pid, None)) {
            let _ = repo.remove_worktree(&entry.path());
        }
    }
}
