//! The git-orch pre-push hook: `git orch hook install|uninstall|status`.
//!
//! The hook itself is the POSIX sh script `hooks/pre-push` (embedded here as
//! [`PRE_PUSH_SHIM`]). It reads git's ref lines once, runs the hook that was
//! there before (kept beside it as `pre-push.orch-chained`) with the same
//! arguments and stdin, then runs `git orch gate --pre-push`.
//!
//! Where a hook manager is in the way, [`managers`] says who it is and the
//! shim goes where that manager keeps running it (behind pre-commit, as its
//! `pre-push.legacy`), or nothing is written and the manager's own config
//! lines are handed back (lefthook, husky). `status` follows the chain git
//! will run, so it is true in whatever order things were installed.
//!
//! Nothing here prints; every function returns data for the caller to render.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

mod managers;
mod status;

pub use managers::Manager;
use managers::{contains, LefthookGate};
pub use status::status;

/// The hook script git runs, byte for byte as installed.
pub const PRE_PUSH_SHIM: &str = include_str!("../../hooks/pre-push");

/// A substring of the marker line that identifies our hook.
pub const MARKER: &str = "# git-orch pre-push hook";

/// File name of the hook inside the hooks directory.
pub const HOOK_NAME: &str = "pre-push";

/// File name a pre-existing hook is moved to; the shim runs it first.
pub const CHAINED_NAME: &str = "pre-push.orch-chained";

/// Where pre-commit keeps the hook it found, and runs it first.
pub const LEGACY_NAME: &str = "pre-push.legacy";

/// Where lefthook moves the hook it found; it never runs it.
pub const LEFTHOOK_OLD_NAME: &str = "pre-push.old";

/// Where hooks live, as computed by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookEnv {
    /// `git rev-parse --git-path hooks`, made absolute.
    pub hooks_dir: PathBuf,
    /// `git config core.hooksPath`, if set.
    pub hooks_path_config: Option<String>,
    /// Root of the current worktree.
    pub worktree_root: PathBuf,
}

impl HookEnv {
    /// `<hooks_dir>/pre-push`.
    pub fn hook_path(&self) -> PathBuf {
        self.hooks_dir.join(HOOK_NAME)
    }

    /// `<hooks_dir>/pre-push.orch-chained`.
    pub fn chained_path(&self) -> PathBuf {
        self.hooks_dir.join(CHAINED_NAME)
    }

    /// `<hooks_dir>/pre-push.legacy`, pre-commit's slot for the git-orch hook.
    pub fn legacy_path(&self) -> PathBuf {
        self.hooks_dir.join(LEGACY_NAME)
    }

    fn husky(&self) -> bool {
        managers::is_husky_dir(self.hooks_path_config.as_deref(), &self.hooks_dir)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum InstallOutcome {
    /// The shim was written to `path`. `chained` is the previous hook that it
    /// runs first: where a foreign hook was just moved, or one already there.
    /// `behind` is the manager whose hook runs the shim (pre-commit).
    Installed {
        path: PathBuf,
        chained: Option<PathBuf>,
        behind: Option<Manager>,
        warning: Option<String>,
    },
    /// The current shim was already there; nothing changed.
    AlreadyInstalled {
        path: PathBuf,
        behind: Option<Manager>,
    },
    /// The manager's own config already runs the gates (`config`); nothing
    /// was written.
    RunsThrough { manager: Manager, config: PathBuf },
    /// A hook manager owns the hook and would set a git-orch hook aside;
    /// nothing was written. `snippet` is what to add to its config.
    ManagedBy { manager: Manager, snippet: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum UninstallOutcome {
    /// Our shim at `path` is gone. `restored` is where the previous hook was
    /// kept; it is back where git (or pre-commit) runs it.
    Removed {
        path: PathBuf,
        restored: Option<PathBuf>,
    },
    NotInstalled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookStatus {
    /// Where the git-orch hook is, or goes: `<hooks_dir>/pre-push`, or
    /// pre-commit's `pre-push.legacy` behind pre-commit's hook.
    pub path: PathBuf,
    /// `path` holds our shim (current or outdated).
    pub installed: bool,
    /// The previous hook the shim runs first, if there is one.
    pub chained: Option<PathBuf>,
    /// `path` exists and is executable.
    pub executable: bool,
    /// Git will run the gates on push: through our shim, or through a
    /// manager's config that calls `git orch gate`.
    pub would_run: bool,
    /// The hook manager in the chain git runs, in front of or behind us.
    pub manager: Option<Manager>,
    pub note: Option<String>,
}

/// Who wrote a hook file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Missing,
    Ours {
        current: bool,
    },
    /// Somebody else's; the manager that wrote it, if one did.
    Foreign(Option<Manager>),
}

#[derive(Debug)]
struct Found {
    kind: Kind,
    executable: bool,
    text: Vec<u8>,
}

impl Found {
    fn ours(&self) -> bool {
        matches!(self.kind, Kind::Ours { .. })
    }

    fn by(&self, manager: &Manager) -> bool {
        matches!(&self.kind, Kind::Foreign(Some(m)) if m == manager)
    }
}

fn inspect(hook: &Path) -> Result<Found> {
    let found = |kind, executable, text| {
        Ok(Found {
            kind,
            executable,
            text,
        })
    };
    let meta = match fs::symlink_metadata(hook) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return found(Kind::Missing, false, Vec::new())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", hook.display())),
    };
    if meta.is_dir() {
        bail!("{} is a directory, not a hook", hook.display());
    }
    let bytes = match fs::read(hook) {
        Ok(bytes) => bytes,
        // A dangling symlink: somebody else's, and git cannot run it.
        Err(e) if e.kind() == io::ErrorKind::NotFound && meta.file_type().is_symlink() => {
            return found(Kind::Foreign(None), false, Vec::new());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", hook.display())),
    };
    let executable = is_executable(hook);
    let kind = if contains(&bytes, MARKER.as_bytes()) {
        Kind::Ours {
            current: bytes == PRE_PUSH_SHIM.as_bytes(),
        }
    } else {
        Kind::Foreign(managers::writer(&bytes))
    };
    found(kind, executable, bytes)
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    fs::metadata(path).map(|m| m.is_file()).unwrap_or(false)
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::symlink_metadata(a), fs::symlink_metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_a: &Path, _b: &Path) -> bool {
    false
}

/// The manager that would set a git-orch hook aside (or rewrite it), so
/// nothing is written without `--force`. pre-commit is not one: the shim
/// goes behind it.
fn blocking_manager(env: &HookEnv, front: &Found, behind: &Found) -> Option<Manager> {
    if env.husky() || front.by(&Manager::Husky) {
        return Some(Manager::Husky);
    }
    if front.by(&Manager::Lefthook)
        || (front.ours() && behind.by(&Manager::Lefthook))
        || managers::lefthook_installed(&env.hooks_dir)
    {
        return Some(Manager::Lefthook);
    }
    match &front.kind {
        Kind::Foreign(Some(m @ Manager::Other(_))) => Some(m.clone()),
        _ => None,
    }
}

/// The manager's config file that already runs the gates on every push.
fn config_runs_gate(env: &HookEnv, manager: &Manager) -> Option<PathBuf> {
    match manager {
        Manager::Husky => {
            let (file, _) = managers::husky_user_hook(&env.hooks_dir);
            managers::shell_runs_gate(&fs::read_to_string(&file).ok()?).then_some(file)
        }
        Manager::Lefthook => match managers::lefthook_gate(&env.worktree_root) {
            LefthookGate::Script(config) => Some(config),
            _ => None,
        },
        Manager::PreCommit | Manager::Other(_) => None,
    }
}

/// Write the shim to `hook` atomically (temp file in the same dir + rename),
/// mode 0755.
fn write_shim(dir: &Path, hook: &Path) -> Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".pre-push.")
        .suffix(".orch-tmp")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    tmp.write_all(PRE_PUSH_SHIM.as_bytes())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", tmp.path().display()))?;
    }
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot flush {}", tmp.path().display()))?;
    tmp.persist(hook)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", hook.display()))?;
    sync_dir(dir);
    Ok(())
}

/// Best effort: make a rename in `dir` durable.
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// How a foreign hook was set aside, so a failed install can undo it.
enum SetAside {
    /// `chained` is a hard link to `hook`; `hook` is still in place until the
    /// shim replaces it, so a push never finds no hook.
    Linked,
    /// `hook` was renamed to `chained`.
    Renamed,
}

fn set_aside(hook: &Path, chained: &Path) -> Result<SetAside> {
    let is_symlink = fs::symlink_metadata(hook)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false);
    if !is_symlink {
        match fs::hard_link(hook, chained) {
            Ok(()) => return Ok(SetAside::Linked),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(e).with_context(|| {
                    format!("{} already exists; not replacing it", chained.display())
                });
            }
            // Hard links unsupported here: fall back to a rename.
            Err(_) => {}
        }
    }
    if exists(chained) {
        bail!("{} already exists; not replacing it", chained.display());
    }
    fs::rename(hook, chained)
        .with_context(|| format!("cannot move {} to {}", hook.display(), chained.display()))?;
    Ok(SetAside::Renamed)
}

enum Placed {
    Written { chained: Option<PathBuf> },
    Already,
}

/// Put the shim at `target`, keeping a foreign hook there as `chained`.
fn place(dir: &Path, target: &Path, chained: &Path) -> Result<Placed> {
    let existing_chained = || exists(chained).then(|| chained.to_path_buf());
    let found = inspect(target)?;
    match found.kind {
        Kind::Ours { current: true } if found.executable => Ok(Placed::Already),
        Kind::Ours { .. } | Kind::Missing => {
            write_shim(dir, target)?;
            Ok(Placed::Written {
                chained: existing_chained(),
            })
        }
        Kind::Foreign(_) => {
            let how = if exists(chained) {
                if !same_file(target, chained) {
                    bail!(
                        "{} already exists and {} is not the git-orch hook; \
                         refusing to replace either: merge them or remove one, then run `git orch hook install` again",
                        chained.display(),
                        target.display()
                    );
                }
                // Left by an install that stopped after linking: carry on.
                SetAside::Linked
            } else {
                set_aside(target, chained)?
            };
            if let Err(e) = write_shim(dir, target) {
                // Put things back as they were.
                let _ = match how {
                    SetAside::Linked => fs::remove_file(chained),
                    SetAside::Renamed => fs::rename(chained, target),
                };
                return Err(e);
            }
            Ok(Placed::Written {
                chained: Some(chained.to_path_buf()),
            })
        }
    }
}

/// Install the shim. With `force`, install into `<hooks_dir>/pre-push` even
/// where a hook manager would set it aside.
pub fn install(env: &HookEnv, force: bool) -> Result<InstallOutcome> {
    let dir = &env.hooks_dir;
    let hook = env.hook_path();
    let front = inspect(&hook)?;
    let behind = inspect(&env.chained_path())?;
    if !force {
        if let Some(manager) = blocking_manager(env, &front, &behind) {
            if let Some(config) = config_runs_gate(env, &manager) {
                return Ok(InstallOutcome::RunsThrough { manager, config });
            }
            let snippet = match manager {
                Manager::Husky => {
                    let (file, _) = managers::husky_user_hook(&env.hooks_dir);
                    let file = file.strip_prefix(&env.worktree_root).unwrap_or(&file);
                    managers::husky_snippet(&file.display().to_string())
                }
                _ => manager.snippet(),
            };
            return Ok(InstallOutcome::ManagedBy { manager, snippet });
        }
    }
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create hooks directory {}", dir.display()))?;
    if front.ours() && behind.by(&Manager::PreCommit) {
        // pre-commit's hook chained behind ours (an install before pre-commit
        // was recognised): pre-commit goes back in front, and `pre-commit
        // install` would otherwise move our shim over its legacy hook.
        restore(&env.chained_path(), &hook)?;
        return behind_pre_commit(env, true);
    }
    if front.by(&Manager::PreCommit) {
        return behind_pre_commit(env, false);
    }
    let warning = match managers::lefthook_config(&env.worktree_root) {
        Some(config) if !force => Some(format!(
            "{} is here but lefthook's hooks are not installed; `lefthook install` would move this hook to {LEFTHOOK_OLD_NAME} and never run it: run `git orch hook install` again after installing lefthook",
            config.display()
        )),
        _ => None,
    };
    Ok(match place(dir, &hook, &env.chained_path())? {
        Placed::Already => InstallOutcome::AlreadyInstalled {
            path: hook,
            behind: None,
        },
        Placed::Written { chained } => InstallOutcome::Installed {
            path: hook,
            chained,
            behind: None,
            warning,
        },
    })
}

/// The shim as pre-commit's `pre-push.legacy`, which pre-commit's hook runs
/// first with git's arguments and stdin, and `pre-commit install` keeps. A
/// foreign legacy hook is kept as `pre-push.orch-chained` and the shim runs
/// it first.
fn behind_pre_commit(env: &HookEnv, repaired: bool) -> Result<InstallOutcome> {
    let legacy = env.legacy_path();
    let warning = pre_commit_warning(env);
    let behind = Some(Manager::PreCommit);
    Ok(match place(&env.hooks_dir, &legacy, &env.chained_path())? {
        Placed::Already if !repaired => InstallOutcome::AlreadyInstalled {
            path: legacy,
            behind,
        },
        Placed::Already => InstallOutcome::Installed {
            chained: exists(&env.chained_path()).then(|| env.chained_path()),
            path: legacy,
            behind,
            warning,
        },
        Placed::Written { chained } => InstallOutcome::Installed {
            path: legacy,
            chained,
            behind,
            warning,
        },
    })
}

/// pre-commit's hook fails every push when its config file is missing.
pub(crate) fn pre_commit_warning(env: &HookEnv) -> Option<String> {
    let hook = fs::read(env.hook_path()).unwrap_or_default();
    if managers::pre_commit_config(&env.worktree_root).is_some()
        || managers::pre_commit_skips_missing_config(&hook)
    {
        return None;
    }
    Some(format!(
        "pre-commit's hook fails every push while {} is missing",
        env.worktree_root.join(".pre-commit-config.yaml").display()
    ))
}

/// Remove our shim and put the previous hook back. Refuses, changing nothing,
/// when the hook there is not ours.
pub fn uninstall(env: &HookEnv) -> Result<UninstallOutcome> {
    let hook = env.hook_path();
    let chained = env.chained_path();
    let legacy = env.legacy_path();
    let front = inspect(&hook)?;
    let behind = inspect(&chained)?;
    if front.by(&Manager::PreCommit) {
        if !inspect(&legacy)?.ours() {
            return Ok(UninstallOutcome::NotInstalled);
        }
        if exists(&chained) {
            // The hook pre-commit ran before ours goes back to its slot.
            restore(&chained, &legacy)?;
            return Ok(UninstallOutcome::Removed {
                path: legacy,
                restored: Some(chained),
            });
        }
        fs::remove_file(&legacy).with_context(|| format!("cannot remove {}", legacy.display()))?;
        sync_dir(&env.hooks_dir);
        return Ok(UninstallOutcome::Removed {
            path: legacy,
            restored: None,
        });
    }
    if front.ours() && behind.by(&Manager::PreCommit) {
        restore(&chained, &hook)?;
        if inspect(&legacy)?.ours() {
            fs::remove_file(&legacy)
                .with_context(|| format!("cannot remove {}", legacy.display()))?;
        }
        return Ok(UninstallOutcome::Removed {
            path: hook,
            restored: Some(chained),
        });
    }
    match front.kind {
        Kind::Foreign(_) => bail!(
            "{} is not the git-orch hook; leaving it alone",
            hook.display()
        ),
        Kind::Missing => {
            if !exists(&chained) {
                return Ok(UninstallOutcome::NotInstalled);
            }
            // Our shim was deleted by hand; the kept hook still belongs back.
            restore(&chained, &hook)?;
            Ok(UninstallOutcome::Removed {
                path: hook,
                restored: Some(chained),
            })
        }
        Kind::Ours { .. } => {
            if exists(&chained) {
                // One rename replaces the shim: no moment without a hook.
                restore(&chained, &hook)?;
                Ok(UninstallOutcome::Removed {
                    path: hook,
                    restored: Some(chained),
                })
            } else {
                fs::remove_file(&hook)
                    .with_context(|| format!("cannot remove {}", hook.display()))?;
                sync_dir(&env.hooks_dir);
                Ok(UninstallOutcome::Removed {
                    path: hook,
                    restored: None,
                })
            }
        }
    }
}

fn restore(chained: &Path, hook: &Path) -> Result<()> {
    fs::rename(chained, hook).with_context(|| {
        format!(
            "cannot move {} back to {}",
            chained.display(),
            hook.display()
        )
    })?;
    if let Some(dir) = hook.parent() {
        sync_dir(dir);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
