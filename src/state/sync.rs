//! Sharing a plan through a git remote (`run --remote`, `git orch sync`).
//! The remote's state ref is the one that counts: around each transaction
//! [`super::store::transact`] fetches it ([`pull`]: the local state
//! fast-forwards to it), computes the change on it, and publishes the new
//! state commit with the derived refs it moves in one `git push --atomic`
//! with a `--force-with-lease` on every ref ([`publish`]); a lost lease is a
//! lost race, and the whole transaction runs again on a fresh fetch.
//! Nothing is ever pushed without a lease.
//!
//! Remote-tracking refs live where `git fetch` puts them,
//! `refs/remotes/<remote>/orch/<plan>/…`; tags and preserved refs are
//! fetched under their own names.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{anyhow, Result};
use git2::Oid;

use super::names;
use crate::error::refuse_with_hint;
use crate::git::{relay, RefEdit, RefRace, Repo};

/// The remote a process shares its plans through.
#[derive(Debug, Clone)]
pub struct Remote {
    pub name: String,
    /// How long a claim holds without renewal.
    pub lease: Duration,
    /// This machine's name in leases (`orch.machine`, else the host name).
    pub machine: String,
    /// This runner's name in leases, unique across machines.
    pub runner: String,
}

static ACTIVE: RwLock<Option<Arc<Remote>>> = RwLock::new(None);

/// Shares every transaction of this process through `remote` from now on.
pub fn activate(remote: Remote) {
    if let Ok(mut a) = ACTIVE.write() {
        *a = Some(Arc::new(remote));
    }
}

/// The remote this process shares through, if any.
pub fn active() -> Option<Arc<Remote>> {
    ACTIVE.read().ok().and_then(|a| a.clone())
}

/// The default lease length.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// The longest lease `--lease` and `orch.lease` take: a day.
const MAX_LEASE_SECS: f64 = 86_400.0;

/// Parses a lease length: seconds (`3`, `2.5`) or with a unit (`90s`, `2m`).
pub fn parse_lease(text: &str) -> Result<Duration> {
    let t = text.trim();
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    // At most a day: a longer lease would make a dead machine's task wait
    // that long (and one past what a `Duration` holds would panic).
    match num.trim().parse::<f64>() {
        Ok(v) if (1.0..=MAX_LEASE_SECS).contains(&(v * mult)) => {
            Ok(Duration::from_secs_f64(v * mult))
        }
        _ => Err(refuse_with_hint(
            format!("bad lease length `{text}`"),
            "give seconds from 1 to a day (86400), e.g. `--lease 60` or `--lease 2m`",
        )),
    }
}

/// Where `git fetch` keeps the remote's value of a branch of the plan.
pub fn tracking(remote: &str, name: &str) -> Option<String> {
    name.strip_prefix("refs/heads/")
        .map(|rest| format!("refs/remotes/{remote}/{rest}"))
}

/// The remote's value of branch `name` as of the last fetch (its
/// remote-tracking ref); `None` for a ref that is no branch.
pub fn tracked(repo: &Repo, remote: &str, name: &str) -> Result<Option<Oid>> {
    match tracking(remote, name) {
        Some(t) => repo.ref_target(&t),
        None => Ok(None),
    }
}

/// Whether a ref is a remote-tracking ref of `plan` (of any remote).
pub fn is_tracking_of(name: &str, plan: &str) -> bool {
    name.strip_prefix("refs/remotes/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, rest)| rest.starts_with(&format!("orch/{plan}/")))
}

/// Refuses a remote git does not know, before anything moves.
pub fn check_remote(repo: &Repo, remote: &str) -> Result<()> {
    let known = repo.git.remotes()?;
    if known.iter().flatten().any(|r| r == remote) {
        return Ok(());
    }
    Err(refuse_with_hint(
        format!("no git remote named `{remote}`"),
        format!("add it with `git remote add {remote} URL`, or name another (`git remote -v` lists them)"),
    ))
}

/// A git command that talks to the remote, through the relay for a
/// `git://` remote (see [`crate::git::relay`]).
fn run_git(repo: &Repo, args: &[&str]) -> Result<std::process::Output> {
    let started = std::time::Instant::now();
    let relay = relay::args(crate::config::of(repo).relay());
    let all: Vec<&str> = relay
        .iter()
        .map(String::as_str)
        .chain(args.iter().copied())
        .collect();
    let mut cmd = repo.command_c(&repo.root, &all);
    relay::mark(&mut cmd);
    let out = cmd
        .stdin(std::process::Stdio::null())
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| anyhow!("cannot run `git {}`: {e}", args.join(" ")))?;
    crate::trace::step(&format!("git {}", args.first().unwrap_or(&"")), started);
    Ok(out)
}

/// `git ls-remote REMOTE PATTERNS…`: what the remote holds now.
pub fn ls_remote(repo: &Repo, remote: &str, patterns: &[&str]) -> Result<String> {
    let mut args = vec!["ls-remote", remote];
    args.extend(patterns);
    let out = run_git(repo, &args)?;
    if !out.status.success() {
        return Err(anyhow!(
            "cannot list the refs of `{remote}`: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fetches the plan's branches into the remote-tracking refs and its
/// checkpoint tags under their own names; `preserved` also brings the
/// refs other machines preserved.
pub fn fetch(repo: &Repo, remote: &str, plan: &str, preserved: bool) -> Result<()> {
    let heads = format!("+refs/heads/orch/{plan}/*:refs/remotes/{remote}/orch/{plan}/*");
    let tags = format!("+refs/tags/orch/{plan}/*:refs/tags/orch/{plan}/*");
    let kept = format!("refs/orch/{plan}/preserved/*:refs/orch/{plan}/preserved/*");
    let mut args = vec![
        "fetch",
        "-q",
        "--no-tags",
        "--no-write-fetch-head",
        "--no-auto-gc",
        remote,
        &heads,
        &tags,
    ];
    if preserved {
        args.push(&kept);
    }
    // One fetch at a time in this process (a runner's renewals run on a
    // thread of their own); another process's fetch holding a ref lock is
    // waited out.
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|p| p.into_inner());
    for attempt in 0.. {
        let out = run_git(repo, &args)?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        if attempt < 20 && stderr.contains("cannot lock ref") {
            std::thread::sleep(Duration::from_millis(10 + attempt * 5));
            continue;
        }
        return Err(unreachable(
            remote,
            format!(
                "cannot fetch plan `{plan}` from `{remote}`: {}",
                stderr
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .trim()
            ),
        ));
    }
    Ok(())
}

/// A fetch or push that failed (not a lost race): before a shared run
/// starts, nothing moved (a refusal, exit 2); in the middle of one, the run
/// had changed things, so the work failed (exit 1), and the hint says how
/// it carries on.
fn unreachable(remote: &str, message: String) -> anyhow::Error {
    if active().is_none() {
        return anyhow!(message);
    }
    crate::error::fail_with_hint(
        message,
        format!(
            "once `{remote}` answers again, `git orch run --remote {remote}` carries on (a task this run held is taken over when its lease runs out)"
        ),
    )
}

/// How the local state stands to the remote's, as of the last fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// State commits the remote has and this clone does not.
    pub behind: usize,
    /// State commits this clone has and the remote does not.
    pub ahead: usize,
    /// The remote has no such plan (yet).
    pub absent: bool,
}

pub fn standing(repo: &Repo, remote: &str, plan: &str) -> Result<Option<Standing>> {
    let name = names::state(plan);
    let Some(local) = repo.ref_target(&name)? else {
        return Ok(None);
    };
    let tracking = tracking(remote, &name).unwrap_or_default();
    let Some(theirs) = repo.ref_target(&tracking)? else {
        return Ok(Some(Standing {
            behind: 0,
            ahead: 0,
            absent: true,
        }));
    };
    let (ahead, behind) = repo.git.graph_ahead_behind(local, theirs)?;
    Ok(Some(Standing {
        behind,
        ahead,
        absent: false,
    }))
}

/// The remote's state commit as of the last fetch.
pub fn remote_state(repo: &Repo, remote: &str, plan: &str) -> Result<Option<Oid>> {
    tracked(repo, remote, &names::state(plan))
}

/// Fetches and brings the local state to the remote's: fast-forward, or
/// nothing if the local one is ahead (its commits go with the next push).
/// Returns the remote's state commit, the lease of the next push.
/// Refuses a local state that went another way than the remote's.
pub fn pull(repo: &Repo, remote: &str, plan: &str) -> Result<Option<Oid>> {
    for attempt in 0.. {
        fetch(repo, remote, plan, false)?;
        mark_fresh();
        match adopt(repo, remote, plan) {
            Err(e) if attempt < 20 && e.is::<TornFetch>() => back_off(attempt),
            other => return other,
        }
    }
    unreachable!("the loop returns")
}

/// A fetch that saw the remote's new state but not the work commit it
/// names: an atomic push to a files-backed server moves its refs one at
/// a time, so a fetch in between reads half of it. Fetching again sees
/// the rest ([`pull`] does).
#[derive(Debug)]
pub struct TornFetch {
    plan: String,
    work: Oid,
}

impl std::fmt::Display for TornFetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the remote's state of plan `{}` names work commit {}, which its fetches did not bring; run the command again",
            self.plan,
            crate::git::short(self.work)
        )
    }
}

impl std::error::Error for TornFetch {}

/// Refuses a state whose work commit is not here (see [`TornFetch`]).
fn with_work(repo: &Repo, plan: &str, snap: super::Snapshot) -> Result<super::Snapshot> {
    let work = snap.state.work.oid();
    if repo.git.find_commit(work).is_err() {
        return Err(TornFetch {
            plan: plan.to_string(),
            work,
        }
        .into());
    }
    Ok(snap)
}

/// [`pull`], but without the fetch when this process fetched or pushed
/// the state a moment ago: a view that went stale meanwhile only costs a
/// lost lease, and the retry fetches.
pub fn pull_unless_fresh(repo: &Repo, remote: &str, plan: &str) -> Result<Option<Oid>> {
    if fresh_within(Duration::from_millis(150)) {
        match adopt(repo, remote, plan) {
            Err(e) if e.is::<TornFetch>() => {}
            other => return other,
        }
    }
    pull(repo, remote, plan)
}

static FRESH: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);

/// Whether this process fetched or pushed the state within `age`.
pub fn fresh_within(age: Duration) -> bool {
    FRESH
        .lock()
        .ok()
        .and_then(|f| *f)
        .is_some_and(|at| at.elapsed() < age)
}

fn mark_fresh() {
    if let Ok(mut f) = FRESH.lock() {
        *f = Some(std::time::Instant::now());
    }
}

/// [`pull`] without the fetch.
pub fn adopt(repo: &Repo, remote: &str, plan: &str) -> Result<Option<Oid>> {
    let name = names::state(plan);
    let Some(theirs) = remote_state(repo, remote, plan)? else {
        return Ok(None);
    };
    let local = repo.ref_target(&name)?;
    // The remote's state must load (its plan the sealed one, its records
    // whole) and its work commit be here before it moves anything here: a
    // forged, broken or half-fetched state is refused with this clone as
    // it was.
    let snap = match local {
        Some(l) if l == theirs => with_work(repo, plan, super::store::load_at(repo, plan, theirs)?)?,
        Some(l) if repo.is_ancestor(theirs, l) => return Ok(Some(theirs)),
        Some(l) if repo.is_ancestor(l, theirs) => {
            let snap = with_work(repo, plan, load_theirs(repo, remote, plan, theirs)?)?;
            match repo.cas_ref(&name, theirs, Some(l), "orch: fast-forward to the remote") {
                Err(e) if e.is::<RefRace>() => return adopt(repo, remote, plan),
                other => other?,
            }
            snap
        }
        Some(l) => {
            return Err(refuse_with_hint(
                format!(
                    "the state of plan `{plan}` here ({}) and on `{remote}` ({}) went different ways",
                    crate::git::short(l),
                    crate::git::short(theirs)
                ),
                format!(
                    "keep one: `git update-ref {name} {theirs}` takes the remote's (this clone's is kept in its reflog), or push this one over it by hand"
                ),
            ))
        }
        None => {
            drop_stale_seal(repo, remote, plan, theirs)?;
            let snap = with_work(repo, plan, load_theirs(repo, remote, plan, theirs)?)?;
            repo.cas_ref(&name, theirs, None, "orch: state from the remote")?;
            snap
        }
    };
    // The work branch follows the state it was fetched with, unless it is
    // ahead of it: a commit made by hand there is adopted (or, if it is
    // not a person's, repaired and kept) by the command, never dropped.
    let work = snap.state.work.oid();
    let work_ref = names::work(plan);
    let current = repo.ref_target(&work_ref)?;
    let ahead = current.is_some_and(|c| c != work && repo.is_ancestor(work, c));
    if current != Some(work) && !ahead {
        let _ = repo.cas_ref(
            &work_ref,
            work,
            current,
            "orch: work branch from the remote",
        );
    }
    Ok(Some(theirs))
}

/// The remote's state, which must load before anything here moves; a
/// refusal says it is the remote's (this clone's state is as it was).
fn load_theirs(repo: &Repo, remote: &str, plan: &str, theirs: Oid) -> Result<super::Snapshot> {
    super::store::load_at(repo, plan, theirs).map_err(|e| {
        let Some(r) = e.downcast_ref::<crate::error::Refusal>() else {
            return e;
        };
        let state = names::state(plan);
        // Not a state at all: the hint about this clone's reflog is no help.
        let hint = if r.message.starts_with(&format!("{state} is not a git-orch state branch")) {
            Some(format!(
                "nothing changed here; `{remote}` must have {state} put back by whoever pushed it there (`git log {}` shows what it holds)",
                tracking(remote, &state).unwrap_or_default()
            ))
        } else {
            r.hint.clone()
        };
        anyhow::Error::new(crate::error::Refusal {
            message: format!("on `{remote}`: {}", r.message),
            hint,
        })
    })
}

/// A plan of this name started here earlier and gone since (its state
/// ref deleted) left its seal file, which would make the plan that arrives
/// now look forged. That seal does not count: it is removed (the arriving
/// plan is then judged by its own seal, as in a clone that never had the
/// plan), and so are this repository's approvals of the plan's name, so
/// that the arriving plan runs nothing until `git orch trust` approves it
/// even if its commands are the ones approved before. Refused inside a
/// command that checked the plan's trust already: a state branch deleted
/// under a run is not a new plan.
fn drop_stale_seal(repo: &Repo, remote: &str, plan: &str, theirs: Oid) -> Result<()> {
    if super::seal::stale(repo, plan, theirs).is_none() {
        return Ok(());
    }
    if super::seal::is_pinned(plan) {
        return Err(refuse_with_hint(
            format!(
                "the state branch of plan `{plan}` went away while this command ran, and `{remote}` holds another plan of that name"
            ),
            format!("see what it is with `git orch sync {plan} --remote {remote}` and `git orch trust {plan}`"),
        ));
    }
    crate::trust::revoke(repo, plan)?;
    super::seal::remove(repo, plan)?;
    crate::ui::warn(&format!(
        "plan `{plan}` from `{remote}` is not the plan `{plan}` started here before (its state is gone): that plan's seal and approval here are dropped, and this one runs nothing until `git orch trust {plan}` approves it"
    ));
    Ok(())
}

/// What the remote holds at `name`, for the lease of a push: the
/// remote-tracking value of a branch; a tag or preserved ref was fetched
/// under its own name, so the local value before the change.
fn expected(repo: &Repo, remote: &str, name: &str, before: Option<Oid>) -> Result<Option<Oid>> {
    match tracking(remote, name) {
        Some(t) => repo.ref_target(&t),
        None => Ok(before),
    }
}

/// Publishes a state commit: `commit` on the remote's state ref under a
/// lease on `lease` (its value at the fetch), with the work branch at the
/// state's work, the derived refs the change moves (`edits`) and `extra`
/// refs, all in one atomic push with a lease on each. A lost lease is a
/// [`RefRace`]. On success the remote-tracking refs are moved to match.
pub fn publish(
    repo: &Repo,
    remote: &str,
    plan: &str,
    commit: Oid,
    lease: Option<Oid>,
    edits: &[RefEdit],
    extra: &[(String, Oid)],
) -> Result<()> {
    let mut pushes: Vec<(String, Option<Oid>, Option<Oid>)> = Vec::new();
    pushes.push((names::state(plan), Some(commit), lease));
    let work = super::store::load_at(repo, plan, commit)?.state.work.oid();
    let work_ref = names::work(plan);
    let edit_names: Vec<&str> = edits
        .iter()
        .map(|e| match e {
            RefEdit::Set { name, .. } | RefEdit::Delete { name, .. } => name.as_str(),
        })
        .collect();
    if !edit_names.contains(&work_ref.as_str()) {
        let theirs = expected(repo, remote, &work_ref, None)?;
        if theirs != Some(work) {
            pushes.push((work_ref.clone(), Some(work), theirs));
        }
    }
    for edit in edits {
        let (name, new, old) = match edit {
            RefEdit::Set { name, new, old } => (name, Some(*new), *old),
            RefEdit::Delete { name, old } => (name, None, Some(*old)),
        };
        if !shared(plan, name) {
            continue;
        }
        pushes.push((name.clone(), new, expected(repo, remote, name, old)?));
    }
    for (name, new) in extra {
        // A branch has a remote-tracking value; a preserved ref is new, and
        // the remote must not have it.
        let theirs = match tracking(remote, name) {
            Some(_) => expected(repo, remote, name, None)?,
            None => None,
        };
        if theirs != Some(*new) {
            pushes.push((name.clone(), Some(*new), theirs));
        }
    }
    push(repo, remote, &pushes)?;
    mark_fresh();
    for (name, new, _) in &pushes {
        if let Some(t) = tracking(remote, name) {
            let _ = match new {
                Some(new) => repo
                    .git
                    .reference(&t, *new, true, "orch: pushed")
                    .map(|_| ()),
                None => repo.git.find_reference(&t).and_then(|mut r| r.delete()),
            };
        }
    }
    Ok(())
}

/// Whether a ref travels with the plan.
pub fn shared(plan: &str, name: &str) -> bool {
    name.starts_with(&format!("refs/heads/orch/{plan}/"))
        || name.starts_with(&names::tag_prefix(plan))
        || name.starts_with(&names::preserved(plan, ""))
}

/// Whether the server refused `--atomic` before (then pushes go without).
static NO_ATOMIC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One ref of a leased push: its name, its new value (`None` deletes) and
/// the value the remote must hold (`None`: it must not have the ref).
pub type LeasedPush = (String, Option<Oid>, Option<Oid>);

/// `git push --atomic --force-with-lease=…` of `(name, new, expected)`:
/// `new` `None` deletes, `expected` `None` means the remote must not have it.
pub fn push(
    repo: &Repo,
    remote: &str,
    pushes: &[(String, Option<Oid>, Option<Oid>)],
) -> Result<()> {
    if pushes.is_empty() {
        return Ok(());
    }
    let mut args: Vec<String> = vec![
        "push".into(),
        "--porcelain".into(),
        "--no-verify".into(),
        "-q".into(),
    ];
    let atomic = !NO_ATOMIC.load(std::sync::atomic::Ordering::Relaxed);
    if atomic {
        args.push("--atomic".into());
    }
    for (name, _, expected) in pushes {
        args.push(format!(
            "--force-with-lease={name}:{}",
            expected.map(|e| e.to_string()).unwrap_or_default()
        ));
    }
    args.push(remote.to_string());
    for (name, new, _) in pushes {
        match new {
            Some(new) => args.push(format!("{new}:{name}")),
            None => args.push(format!(":{name}")),
        }
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run_git(repo, &argv)?;
    if out.status.success() {
        return Ok(());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if atomic && stderr.contains("does not support --atomic") {
        NO_ATOMIC.store(true, std::sync::atomic::Ordering::Relaxed);
        return push(repo, remote, pushes);
    }
    // Porcelain: `!<TAB>from:to<TAB>[rejected] (stale info)` and the like.
    let rejected = stdout.lines().any(|l| {
        l.starts_with('!')
            && [
                "stale info",
                "fetch first",
                "non-fast-forward",
                "atomic push failed",
                "already exists",
                // Two pushes at once: the server's own compare-and-swap.
                "cannot lock ref",
                "failed to update ref",
                "incorrect old value",
                "atomic transaction failed",
                // The server's unpacking lost to a racing push's (seen with
                // three runners pushing at once); nothing was updated.
                "unpacker error",
            ]
            .iter()
            .any(|w| l.contains(w))
    });
    if rejected {
        return Err(RefRace {
            name: format!("{remote}: {}", pushes[0].0),
        }
        .into());
    }
    let why = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.starts_with('!') || l.starts_with("error:") || l.starts_with("fatal:"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("; ");
    Err(unreachable(
        remote,
        format!("cannot push the plan's refs to `{remote}`: {why}"),
    ))
}

/// Waits after a lost race on the remote: exponential backoff with
/// jitter, so that runners that lost to one another spread out instead of
/// fetching and pushing again together (see [`back_off_delay`]).
pub fn back_off(attempt: usize) {
    std::thread::sleep(back_off_delay(attempt, random()));
}

/// The wait before retry `attempt` (0 for the first) of a lost race: a
/// ceiling of 20 ms doubled each time up to 1.28 s, and a point drawn
/// from its upper half by `random` ("equal jitter": never less than half
/// the ceiling, so a loser always yields to the winner's next step).
pub fn back_off_delay(attempt: usize, random: u64) -> Duration {
    let ceiling = 20u64 << attempt.min(6);
    let half = ceiling / 2;
    Duration::from_millis(half + random % (half + 1))
}

/// A random number good enough to spread runners apart: the clock's
/// nanoseconds and the pid, mixed (splitmix64).
fn random() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut z = nanos ^ (u64::from(std::process::id()) << 32);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_ceiling_and_stays_in_the_upper_half() {
        let mut last_ceiling = 0;
        for attempt in 0..12 {
            let ceiling = 20u64 << attempt.min(6);
            assert!(ceiling >= last_ceiling);
            last_ceiling = ceiling;
            for random in [0, 1, 7, 999, u64::MAX] {
                let d = back_off_delay(attempt, random).as_millis() as u64;
                assert!(d >= ceiling / 2 && d <= ceiling, "{attempt} {random}: {d}");
            }
        }
        assert_eq!(back_off_delay(0, 0), Duration::from_millis(10));
        assert_eq!(back_off_delay(30, 0), Duration::from_millis(640));
        assert_eq!(back_off_delay(30, 640), Duration::from_millis(1280));
    }

    #[test]
    fn backoff_jitter_spreads_runners_apart() {
        let waits: std::collections::BTreeSet<u128> = (0..64)
            .map(|_| back_off_delay(4, random()).as_millis())
            .collect();
        assert!(waits.len() > 8, "{waits:?}");
    }
}
