//! Compare-and-swap on refs. Every ref git-orch moves is moved from a value
//! it read, so a concurrent `git orch` (or a user's git) is detected instead
//! of overwritten. libgit2 and git share `<ref>.lock` files, so they exclude
//! each other.
//!
//! A `kill -9` while a ref is being written leaves its `<ref>.lock`. So
//! that the next command can tell such a lock from one a user's git holds,
//! every write of a plan's refs (`refs/heads/orch/<plan>/…`,
//! `refs/tags/orch/<plan>/…`, `refs/orch/<plan>/…`) is made holding an
//! advisory lock, flock(2) on `orch/locks/<plan>.lock`, with the name of
//! the ref written into that file while it is written. The kernel drops the
//! flock when its holder dies; the name stays. Whoever takes the flock next
//! and finds a name there knows its writer died mid-write, and removes that
//! ref's `.lock` if it was made after the name was written (so by that
//! writer, not by a git that held it already) and is older than a moment
//! (so no git that still runs holds it). Any other lock that stays is
//! reported by name, as it needs a human.

use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context, Result};
use git2::{ErrorCode, Oid};

use super::Repo;

/// Another writer moved the ref between our read and our write.
#[derive(Debug)]
pub struct RefRace {
    pub name: String,
}

impl fmt::Display for RefRace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` was changed by another process", self.name)
    }
}

impl std::error::Error for RefRace {}

/// A ref's `.lock` file stayed (a git process holds it, or one that died
/// left it). A refusal of its own kind: callers that take a refusal to mean
/// "another process got there first" (a runner's claim) must not mistake a
/// lock that needs a human for that, and go on as if nothing were wrong.
#[derive(Debug)]
pub struct RefLocked(pub crate::error::Refusal, pub Option<String>);

impl RefLocked {
    /// The ref whose `.lock` file stood in the way (`None`: the plan's
    /// writer lock, held by a live process).
    pub fn locked_ref(&self) -> Option<&str> {
        self.1.as_deref()
    }
}

impl fmt::Display for RefLocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for RefLocked {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// One ref change in a reconcile or a side-ref update.
#[derive(Debug, Clone)]
pub enum RefEdit {
    Set {
        name: String,
        new: Oid,
        old: Option<Oid>,
    },
    Delete {
        name: String,
        old: Oid,
    },
}

/// How long a held ref lock is waited for before it is reported.
const LOCK_PATIENCE: Duration = Duration::from_secs(4);

/// How old a `.lock` left by a dead writer must be before it is removed: a
/// git process still running (one git-orch started, say) holds a ref lock
/// for milliseconds, never this long.
const STALE_AFTER: Duration = Duration::from_secs(1);

/// The plan a ref of git-orch's own belongs to, `None` for any other ref.
fn plan_of(name: &str) -> Option<&str> {
    ["refs/heads/orch/", "refs/tags/orch/", "refs/orch/"]
        .iter()
        .find_map(|prefix| name.strip_prefix(prefix))
        .and_then(|rest| rest.split_once('/'))
        .filter(|(plan, rest)| !plan.is_empty() && !rest.is_empty())
        .map(|(plan, _)| plan)
}

/// The flock of a plan's ref writers, held for one write attempt. While it
/// is held the file names the ref being written; dropping it clears the
/// name, then closing the file releases the flock.
struct WriterLock {
    file: File,
}

impl Drop for WriterLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

impl Repo {
    /// The ref's direct target (a tag object for annotated tags), `None` if absent.
    pub fn ref_target(&self, name: &str) -> Result<Option<Oid>> {
        match self.git.find_reference(name) {
            Ok(r) => Ok(r.target()),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) if e.code() == ErrorCode::InvalidSpec => Ok(None),
            Err(e) => Err(anyhow!("cannot read ref `{name}`: {}", e.message())),
        }
    }

    /// Removes the lock file of ref `name` (a full ref name) that a process
    /// killed half-way through moving it left behind. Only for a ref whose
    /// every writer is known dead: a live writer's lock is its own.
    pub fn remove_dead_ref_lock(&self, name: &str) {
        if !name.starts_with("refs/") || name.split('/').any(|p| p == ".." || p.is_empty()) {
            return;
        }
        // Absent is the usual case; a lock that cannot be removed shows
        // again, named, at the ref's next move.
        let _ = std::fs::remove_file(self.common_dir.join(format!("{name}.lock")));
    }

    /// Moves `name` to `new` if it is still at `old` (`None`: must not exist).
    /// A mismatch is a [`RefRace`] error.
    pub fn cas_ref(&self, name: &str, new: Oid, old: Option<Oid>, message: &str) -> Result<()> {
        self.with_lock_patience(name, || match old {
            Some(old) => self
                .git
                .reference_matching(name, new, true, old, message)
                .map(|_| ()),
            None => self.git.reference(name, new, false, message).map(|_| ()),
        })
    }

    /// Deletes `name` if it is still at `old`. Uses git's own transaction,
    /// since libgit2's delete takes no expected value.
    pub fn cas_delete(&self, name: &str, old: Oid) -> Result<()> {
        let mut failure = String::new();
        let result = self.with_lock_patience(name, || {
            let out = self
                .command_in(&self.root, &["update-ref", "-d", name, &old.to_string()])
                .env("LC_ALL", "C")
                .output()
                .map_err(|e| git2::Error::from_str(&e.to_string()))?;
            if out.status.success() {
                return Ok(());
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            let code = if stderr.contains("but expected") || stderr.contains("unable to resolve") {
                ErrorCode::Modified
            } else if stderr.contains(".lock': File exists") {
                ErrorCode::Locked
            } else {
                failure = stderr.trim().to_string();
                ErrorCode::GenericError
            };
            Err(git2::Error::new(
                code,
                git2::ErrorClass::Reference,
                stderr.trim(),
            ))
        });
        match result {
            Err(e) if !failure.is_empty() && !e.is::<RefRace>() && !e.is::<RefLocked>() => {
                Err(anyhow!("cannot delete `{name}`: {failure}"))
            }
            other => other,
        }
    }

    /// Applies edits one by one; each is its own compare-and-swap.
    pub fn apply(&self, edits: &[RefEdit], message: &str) -> Result<()> {
        for edit in edits {
            match edit {
                RefEdit::Set { name, new, old } => self.cas_ref(name, *new, *old, message)?,
                RefEdit::Delete { name, old } => self.cas_delete(name, *old)?,
            }
        }
        Ok(())
    }

    /// Refs under `prefix` (e.g. `refs/tags/orch/p/`), with their direct targets.
    pub fn refs_under(&self, prefix: &str) -> Result<Vec<(String, Oid)>> {
        let glob = format!("{prefix}*");
        let mut out = Vec::new();
        for r in self.git.references_glob(&glob)? {
            let r = r?;
            if let (Some(name), Some(target)) = (r.name(), r.target()) {
                out.push((name.to_string(), target));
            }
        }
        out.sort();
        Ok(out)
    }

    fn with_lock_patience(
        &self,
        name: &str,
        mut op: impl FnMut() -> Result<(), git2::Error>,
    ) -> Result<()> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            // Held for this attempt only, never while waiting for a lock.
            let guard = self.writer_lock(name, started)?;
            let result = op();
            drop(guard);
            match result {
                Ok(()) => return Ok(()),
                Err(e) if e.code() == ErrorCode::Modified || e.code() == ErrorCode::Exists => {
                    return Err(RefRace {
                        name: name.to_string(),
                    }
                    .into())
                }
                Err(e) if e.code() == ErrorCode::Locked && started.elapsed() < LOCK_PATIENCE => {
                    sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(e) if e.code() == ErrorCode::Locked => {
                    let lock = self.common_dir.join(format!("{name}.lock"));
                    return Err(RefLocked(
                        crate::error::Refusal {
                            message: format!("the ref `{name}` is locked by `{}`", lock.display()),
                            hint: Some("if no git process is running, a crashed one left it behind: remove that file".to_string()),
                        },
                        Some(name.to_string()),
                    )
                    .into());
                }
                Err(e) => return Err(anyhow!("cannot update `{name}`: {}", e.message())),
            }
        }
    }

    /// Takes the flock of the writers of `name`'s plan (none for a ref
    /// that is not git-orch's), clears what a writer that died left, and
    /// writes `name` into the lock file.
    fn writer_lock(&self, name: &str, started: Instant) -> Result<Option<WriterLock>> {
        let Some(plan) = plan_of(name) else {
            return Ok(None);
        };
        let dir = self.orch_dir().join("locks");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        let path = dir.join(format!("{plan}.lock"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open `{}`", path.display()))?;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                // Each holder holds it for one attempt at one ref.
                Err(TryLockError::WouldBlock) if started.elapsed() < LOCK_PATIENCE * 2 => {
                    sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(RefLocked(
                        crate::error::Refusal {
                        message: format!(
                            "the refs of plan `{plan}` are being written by another git-orch, which holds `{}`",
                            path.display()
                        ),
                        hint: Some(
                            "wait for it to finish, or stop it; the lock goes with the process"
                                .to_string(),
                        ),
                    },
                    None,
                    )
                    .into())
                }
                Err(TryLockError::Error(e)) => {
                    return Err(anyhow!("cannot lock `{}`: {e}", path.display()))
                }
            }
        }
        let mut left = String::new();
        file.read_to_string(&mut left)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        if let Some(dead) = left.lines().next().filter(|l| !l.trim().is_empty()) {
            let written = file.metadata()?.modified()?;
            self.clear_dead_writers_lock(dead.trim(), written)?;
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "{name}")?;
        crate::failpoint!("ref-writer-named");
        Ok(Some(WriterLock { file }))
    }

    /// `dead` is the ref a git-orch was writing when it died, named in the
    /// lock file at `written`. Its `.lock` is that writer's if it was made
    /// at or after `written`; it is removed once older than
    /// [`STALE_AFTER`], waiting for that if need be.
    fn clear_dead_writers_lock(&self, dead: &str, written: SystemTime) -> Result<()> {
        if plan_of(dead).is_none() || dead.contains("..") {
            return Ok(());
        }
        let lock = self.common_dir.join(format!("{dead}.lock"));
        loop {
            let Ok(made) = std::fs::symlink_metadata(&lock).and_then(|m| m.modified()) else {
                return Ok(());
            };
            if made < written {
                // Held before the writer began: some other git's.
                return Ok(());
            }
            let age = SystemTime::now()
                .duration_since(made)
                .unwrap_or(Duration::ZERO);
            if age < STALE_AFTER {
                sleep(STALE_AFTER - age);
                continue;
            }
            match std::fs::remove_file(&lock) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(anyhow!("cannot remove `{}`: {e}", lock.display())),
            }
            crate::ui::note(&format!(
                "{} removed stale lock `{}` left by a git-orch that died",
                crate::ui::yellow("repair:"),
                lock.display()
            ));
            return Ok(());
        }
    }
}
