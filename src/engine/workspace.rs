//! Where task worktrees and the files handed to tasks live, and the pool
//! of idle worktrees that `run` recycles. Everything sits under
//! `<git-common-dir>/orch/` (or `orch.worktreeDir`), outside the user's
//! working tree, so nothing of ours is ever committed by accident.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::git::Repo;

/// The directory that holds every plan's worktrees.
pub fn worktrees_root(repo: &Repo) -> PathBuf {
    crate::config::worktrees_root(repo)
}

/// The directory of one plan's worktrees (see [`crate::config::plan_worktrees`]).
pub fn plan_worktrees(repo: &Repo, plan: &str) -> PathBuf {
    crate::config::plan_worktrees(repo, plan)
}

/// Where git-orch makes (and looks for) a task's worktree: the only place
/// a worktree counts as the task's own (see `tasks::task_checkout`).
pub fn task_worktree(repo: &Repo, plan: &str, task: &str) -> PathBuf {
    plan_worktrees(repo, plan).join(task)
}

/// Files handed to a task (`ORCH_TASK_FILE`, `ORCH_HANDOFF_FILE`): outside
/// the worktree so they never land in the task's commit.
pub fn task_files_dir(repo: &Repo, plan: &str) -> PathBuf {
    repo.orch_dir().join("tasks").join(plan)
}

/// The brief `<task>.md`. With the handoff file `<task>@handoff.md` beside
/// it, no two tasks share a file: `@` is in no id, so task `x.handoff`'s
/// brief is not task `x`'s handoff note.
pub fn task_file(repo: &Repo, plan: &str, task: &str) -> PathBuf {
    task_files_dir(repo, plan).join(format!("{task}.md"))
}

pub fn handoff_file(repo: &Repo, plan: &str, task: &str) -> PathBuf {
    task_files_dir(repo, plan).join(format!("{task}@handoff.md"))
}

/// A kind agent's own files for a task (Claude Code's settings, aider's
/// chat history): kept across its attempts, outside its worktree.
pub fn agent_dir(repo: &Repo, plan: &str, task: &str) -> PathBuf {
    task_files_dir(repo, plan).join(format!("{task}@agent"))
}

/// `$ORCH_USAGE_RESET_FILE`: where an agent that hit a usage limit may
/// write when it resets (removed before and after each attempt).
pub fn reset_file(repo: &Repo, plan: &str, task: &str) -> PathBuf {
    task_files_dir(repo, plan).join(format!("{task}@reset"))
}

/// `$ORCH_USAGE_FILE`: where a task (or its agent's wrapper) may write
/// what an attempt used (removed before each attempt; see
/// [`super::ledger`]).
pub fn usage_file(repo: &Repo, plan: &str, task: &str) -> PathBuf {
    task_files_dir(repo, plan).join(format!("{task}@usage.json"))
}

/// A handoff note is a summary for the tasks after: at most 1 MiB of it is
/// read (`task done --handoff /dev/zero` must not exhaust memory).
pub const HANDOFF_LIMIT: usize = 1 << 20;

/// At most `limit` bytes of `path`, and whether that was all of it.
pub fn read_capped(path: &Path, limit: usize) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)?;
    let whole = bytes.len() <= limit;
    bytes.truncate(limit);
    Ok((bytes, whole))
}

/// The note a task left in its handoff file, if any: its first
/// [`HANDOFF_LIMIT`] bytes, with a line saying so if it was longer.
pub fn read_handoff_note(path: &Path) -> Option<String> {
    let (bytes, whole) = read_capped(path, HANDOFF_LIMIT).ok()?;
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if !whole {
        text.push_str(&format!(
            "\n[git-orch: the handoff file was longer than {} MiB; the rest is cut]\n",
            HANDOFF_LIMIT >> 20
        ));
    }
    Some(text)
}

/// Pid files of running task commands, for `resume` to stop orphans.
pub fn pgid_file(repo: &Repo, plan: &str, task: &str) -> PathBuf {
    repo.orch_dir()
        .join("run")
        .join(plan)
        .join(format!("{task}.pgid"))
}

fn pool_dir(repo: &Repo, plan: &str) -> PathBuf {
    plan_worktrees(repo, plan).join(".pool")
}

/// Holds the plan's pool for one move in or out of it. Two runners share a
/// plan's pool: a `git worktree move` renames the directory and then
/// rewrites git's record of where it is, and another runner's move of the
/// same worktree in between leaves the record naming the wrong place (the
/// task's commit then refuses it). An flock, so a runner that dies lets go.
fn hold_pool(repo: &Repo, plan: &str) -> Option<std::fs::File> {
    let dir = repo.orch_dir().join("locks");
    std::fs::create_dir_all(&dir).ok()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{plan}.pool")))
        .ok()?;
    file.lock().ok()?;
    Some(file)
}

/// Parks a finished task's clean worktree for reuse, detached so that its
/// branch is free to be deleted or checked out elsewhere.
pub fn park(repo: &Repo, plan: &str, worktree: &Path) -> Result<()> {
    if repo.is_dirty(worktree)? {
        return Ok(());
    }
    park_clean(repo, plan, worktree)
}

/// [`park`] for a worktree known to be clean (its task was just committed):
/// two cheap steps, no scan of its files.
pub fn park_clean(repo: &Repo, plan: &str, worktree: &Path) -> Result<()> {
    repo.detach_head(worktree)?;
    crate::failpoint!("worktree-detached");
    let pool = pool_dir(repo, plan);
    std::fs::create_dir_all(&pool)
        .with_context(|| format!("cannot create `{}`", pool.display()))?;
    let slot = pool.join(format!("{}-{}", std::process::id(), unique()));
    let _pool = hold_pool(repo, plan);
    repo.move_worktree(worktree, &slot)?;
    crate::failpoint!("worktree-parked");
    Ok(())
}

/// Where the runner writes a task's output while it runs, line by line,
/// for `git orch watch` to tail; the log stored in the state branch when
/// the attempt ends is the one that counts. The next attempt starts it
/// afresh.
pub fn live_log(repo: &Repo, plan: &str, task: &str) -> PathBuf {
    repo.orch_dir()
        .join("run")
        .join(plan)
        .join(format!("{task}.log"))
}

/// A task's live log: [`live_log`], started empty, kept under
/// [`LIVE_LOG_LIMIT`] bytes by starting over when it would pass it. A
/// write that fails is dropped: the live log is a convenience, never a
/// reason for a task to fail.
pub struct LiveLog {
    file: Option<std::fs::File>,
    written: usize,
}

pub const LIVE_LOG_LIMIT: usize = 4 << 20;

impl LiveLog {
    pub fn create(repo: &Repo, plan: &str, task: &str) -> LiveLog {
        let path = live_log(repo, plan, task);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        LiveLog {
            file: std::fs::File::create(&path).ok(),
            written: 0,
        }
    }

    pub fn line(&mut self, line: &str) {
        use std::io::{Seek, Write};
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if self.written + line.len() + 1 > LIVE_LOG_LIMIT {
            let _ = file.set_len(0).and_then(|_| file.rewind());
            let note = "[git-orch: earlier output cut from the live log]\n";
            self.written = file.write_all(note.as_bytes()).map_or(0, |_| note.len());
        }
        if file.write_all(format!("{line}\n").as_bytes()).is_ok() {
            self.written += line.len() + 1;
        }
    }
}

/// Present while the runner lands a task and parks its worktree.
pub fn parking_marker(repo: &Repo, plan: &str, task: &str) -> PathBuf {
    repo.orch_dir()
        .join("run")
        .join(plan)
        .join(format!("{task}.parking"))
}

pub fn touch(path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(path, b"");
}

/// Finishes parking the worktrees that an interrupted runner left at the
/// path of a task that is already settled (it died between landing and
/// parking), so the pool keeps recycling them. Worktrees of tasks done by
/// hand are left alone: a person may be working in them.
pub fn tidy(repo: &Repo, plan: &str, settled: &[&str]) {
    for id in settled {
        let marker = parking_marker(repo, plan, id);
        if !marker.exists() {
            continue;
        }
        let path = task_worktree(repo, plan, id);
        if path.join(".git").exists() {
            let _ = park(repo, plan, &path);
        }
        // Not parkable (dirty, or a lock left by the kill): whatever it
        // holds beyond the landing is kept in a ref, then it goes.
        if path.join(".git").exists() {
            match repo.snapshot_worktree(&path, &format!("orch: worktree of task {id}")) {
                Ok(Some(snapshot)) => {
                    let kept = crate::state::names::preserved(
                        plan,
                        &format!("repair/worktree-{id}-{}", crate::git::short(snapshot)),
                    );
                    let _ = crate::state::reconcile::create_if_absent(repo, &kept, snapshot);
                }
                Ok(None) => {}
                // What cannot be kept (a repository of its own) stays.
                Err(_) => continue,
            }
            let _ = repo.remove_worktree(&path);
        }
        let _ = std::fs::remove_file(&marker);
    }
}

/// Moves an idle worktree to `dest` if one is available; `false` if none.
/// Two runners may reach for the same one: the loser tries the next.
pub fn unpark(repo: &Repo, plan: &str, dest: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(pool_dir(repo, plan)) else {
        return false;
    };
    if let Some(parent) = dest.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _pool = hold_pool(repo, plan);
    for entry in entries.flatten() {
        let src = entry.path();
        if repo.move_worktree(&src, dest).is_ok() {
            return true;
        }
    }
    false
}

/// Puts git's record right for every worktree of the plan whose move was
/// cut short (see [`Repo::repair_record_if_lagging`]): idle ones in the
/// pool and those at a task's place. A few file reads each; a git process
/// only for one that lags.
pub fn repair_cut_moves(repo: &Repo, plan: &str) {
    let places = plan_worktrees(repo, plan);
    let entries = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    for dir in entries(&places)
        .into_iter()
        .chain(entries(&pool_dir(repo, plan)))
    {
        if dir.join(".git").is_file() {
            repo.repair_record_if_lagging(&dir);
        }
    }
}

/// Removes every idle worktree of a plan.
pub fn drain_pool(repo: &Repo, plan: &str) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(pool_dir(repo, plan)) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        repo.remove_worktree(&entry.path())?;
    }
    let _ = std::fs::remove_dir(pool_dir(repo, plan));
    Ok(())
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Moves a plan's worktrees from where they lived before 0.3 (under the
/// git dir) to the default root, once that is safe: while a task's record
/// names a worktree there (running, in review, failed, in conflict) they
/// stay, and this is tried again by the next command. Only idle pool
/// worktrees are moved, all or none, and only when no other worktree is
/// there; each is moved with `git worktree move`, so git's records follow.
/// Returns what was moved.
pub fn migrate(repo: &Repo, plan: &str, snap: &crate::state::Snapshot) -> usize {
    if crate::config::of(repo).worktree_dir().is_some() || repo.git.is_bare() {
        return 0;
    }
    let legacy = crate::config::legacy_worktrees_root(repo).join(plan);
    if !legacy.is_dir() {
        return 0;
    }
    use crate::state::TaskStatus;
    let Ok(tasks) = snap.all_tasks() else {
        return 0;
    };
    let in_use = tasks.values().any(|t| {
        !matches!(
            t.state(),
            TaskStatus::Done | TaskStatus::Skipped | TaskStatus::Pending
        ) && t
            .worktree()
            .is_some_and(|w| Path::new(&w).starts_with(&legacy))
    });
    if in_use {
        return 0;
    }
    let worktrees = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.join(".git").is_file())
                    .collect()
            })
            .unwrap_or_default()
    };
    // A worktree at a task's place (one done by hand: a person may be in
    // it, with work not committed) or of no task is never moved; while
    // one is there the plan stays where it is, pool and all, so that its
    // worktrees are never split between two places.
    // Held before looking: a runner takes from the pool under it.
    let _pool = hold_pool(repo, plan);
    if !worktrees(&legacy).is_empty() {
        return 0;
    }
    let dest = worktrees_root(repo).join(plan);
    ensure_excluded(repo);
    let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
    for src in worktrees(&legacy.join(".pool")) {
        let rel = src.strip_prefix(&legacy).unwrap_or(&src).to_path_buf();
        let to = dest.join(rel);
        if let Some(parent) = to.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if to.exists() || repo.move_worktree(&src, &to).is_err() {
            // All or nothing: the ones moved go back, the plan stays.
            for (from, to) in moved.into_iter().rev() {
                let _ = repo.move_worktree(&to, &from);
            }
            return 0;
        }
        moved.push((src, to));
    }
    // Empty now, or it keeps what could not be moved (and stays the place).
    let _ = std::fs::remove_dir(legacy.join(".pool"));
    let _ = std::fs::remove_dir(&legacy);
    moved.len()
}

/// `.orch/` in `info/exclude`, so that the main checkout's `git status`
/// never shows the task worktrees kept inside it.
pub fn ensure_excluded(repo: &Repo) {
    if crate::config::of(repo).worktree_dir().is_some() || repo.git.is_bare() {
        return;
    }
    let file = repo.common_dir.join("info").join("exclude");
    let line = "/.orch/";
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    if text.lines().any(|l| l.trim() == line) {
        return;
    }
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    let _ = std::fs::write(
        &file,
        format!("{text}{sep}# git-orch's task worktrees (git orch, issue 21)\n{line}\n"),
    );
}
