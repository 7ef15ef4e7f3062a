//! Compare-and-swap on refs. Every ref git-orch moves is moved from a value
//! it read, so a concurrent `git orch` (or a user's git) is detected instead
//! of overwritten. libgit2 and git share `<ref>.lock` files, so they exclude
//! each other; a lock that stays is reported by name, as it needs a human.

use std::fmt;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
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
pub struct RefLocked(pub crate::error::Refusal);

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
        let started = Instant::now();
        let out = loop {
            let out = self
                .command_in(&self.root, &["update-ref", "-d", name, &old.to_string()])
                .env("LC_ALL", "C")
                .output()?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            // A lock (the ref's or `packed-refs`) held by a live git goes
            // away; one a killed git left behind is named, as for a move.
            let held = stderr
                .split("Unable to create '")
                .nth(1)
                .and_then(|rest| rest.split("': File exists").next())
                .map(str::to_string);
            match held {
                Some(_) if started.elapsed() < LOCK_PATIENCE => {
                    sleep(Duration::from_millis(50));
                }
                Some(lock) => {
                    return Err(RefLocked(crate::error::Refusal {
                        message: format!("the ref `{name}` is locked by `{lock}`"),
                        hint: Some("if no git process is running, a crashed one left it behind: remove that file".to_string()),
                    })
                    .into())
                }
                None => break out,
            }
        };
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("but expected") || stderr.contains("unable to resolve") {
            return Err(RefRace {
                name: name.to_string(),
            }
            .into());
        }
        Err(anyhow!("cannot delete `{name}`: {}", stderr.trim()))
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
            match op() {
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
                    return Err(RefLocked(crate::error::Refusal {
                        message: format!("the ref `{name}` is locked by `{}`", lock.display()),
                        hint: Some("if no git process is running, a crashed one left it behind: remove that file".to_string()),
                    })
                    .into());
                }
                Err(e) => return Err(anyhow!("cannot update `{name}`: {}", e.message())),
            }
        }
    }
}
