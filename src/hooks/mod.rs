//! The git-orch pre-push hook: `git orch hook install|uninstall|status`.
//!
//! The hook itself is the POSIX sh script `hooks/pre-push` (embedded here as
//! [`PRE_PUSH_SHIM`]). It reads git's ref lines once, runs the hook that was
//! there before (kept beside it as `pre-push.orch-chained`) with the same
//! arguments and stdin, then runs `git orch gate --pre-push`.
//!
//! Nothing here prints; every function returns data for the caller to render.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

/// The hook script git runs, byte for byte as installed.
pub const PRE_PUSH_SHIM: &str = include_str!("../../hooks/pre-push");

/// A substring of the marker line that identifies our hook.
pub const MARKER: &str = "# git-orch pre-push hook";

/// File name of the hook inside the hooks directory.
pub const HOOK_NAME: &str = "pre-push";

/// File name a pre-existing hook is moved to; the shim runs it first.
pub const CHAINED_NAME: &str = "pre-push.orch-chained";

/// The command a hook manager should run (with git's arguments and stdin).
pub const GATE_COMMAND: &str = "git orch gate --pre-push";

/// A hook manager that owns `core.hooksPath`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Manager {
    Husky,
    Lefthook,
    PreCommit,
    Other(String),
}

impl Manager {
    /// Short lowercase name, as the tool calls itself.
    pub fn name(&self) -> &str {
        match self {
            Manager::Husky => "husky",
            Manager::Lefthook => "lefthook",
            Manager::PreCommit => "pre-commit",
            Manager::Other(name) => name,
        }
    }

    /// The exact config lines that make this manager run the git-orch gates.
    pub fn snippet(&self) -> String {
        match self {
            Manager::Husky => {
                // husky v9 runs `.husky/pre-push` with sh, git's arguments and
                // git's stdin.
                format!("{GATE_COMMAND} \"$@\"\n")
            }
            Manager::Lefthook => {
                // Without use_stdin lefthook does not pass the ref lines on
                // (and may hang); {1} {2} are the remote name and url.
                format!(
                    "pre-push:\n  commands:\n    git-orch:\n      run: {GATE_COMMAND} {{1}} {{2}}\n      use_stdin: true\n"
                )
            }
            Manager::PreCommit => format!(
                "- repo: local\n  hooks:\n    - id: git-orch-gate\n      name: git-orch gates\n      entry: {GATE_COMMAND}\n      language: system\n      stages: [pre-push]\n      pass_filenames: false\n      always_run: true\n      require_serial: true\n"
            ),
            Manager::Other(_) => format!(
                "# run from the pre-push hook, with git's arguments and stdin:\n{GATE_COMMAND} \"$@\"\n"
            ),
        }
    }

    /// Where the snippet goes, relative to the worktree root.
    pub fn config_files(&self) -> &'static [&'static str] {
        match self {
            Manager::Husky => &[".husky/pre-push"],
            Manager::Lefthook => &[
                "lefthook.yml",
                ".lefthook.yml",
                "lefthook.yaml",
                ".lefthook.yaml",
                ".config/lefthook.yml",
                ".config/lefthook.yaml",
                "lefthook-local.yml",
                ".lefthook-local.yml",
            ],
            Manager::PreCommit => &[".pre-commit-config.yaml"],
            Manager::Other(_) => &[],
        }
    }
}

impl fmt::Display for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum InstallOutcome {
    /// The shim was written to `path`. `chained` is the previous hook that it
    /// runs first: where a foreign hook was just moved, or one already there.
    Installed {
        path: PathBuf,
        chained: Option<PathBuf>,
    },
    /// The current shim was already there; nothing changed.
    AlreadyInstalled { path: PathBuf },
    /// A hook manager owns `core.hooksPath`; nothing was written. `snippet`
    /// is what to add to that manager's config.
    ManagedBy { manager: Manager, snippet: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum UninstallOutcome {
    /// Our shim at `path` is gone. `restored` is where the previous hook was
    /// kept (`pre-push.orch-chained`); it is now back at `path`.
    Removed {
        path: PathBuf,
        restored: Option<PathBuf>,
    },
    NotInstalled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookStatus {
    /// `<hooks_dir>/pre-push`.
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
    pub manager: Option<Manager>,
    pub note: Option<String>,
}

/// What is at `<hooks_dir>/pre-push`.
#[derive(Debug)]
enum Existing {
    Missing,
    Ours { current: bool, executable: bool },
    Foreign { executable: bool },
}

fn inspect(hook: &Path) -> Result<Existing> {
    let meta = match fs::symlink_metadata(hook) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Existing::Missing),
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", hook.display())),
    };
    if meta.is_dir() {
        bail!("{} is a directory, not a hook", hook.display());
    }
    let bytes = match fs::read(hook) {
        Ok(bytes) => bytes,
        // A dangling symlink: somebody else's, and git cannot run it.
        Err(e) if e.kind() == io::ErrorKind::NotFound && meta.file_type().is_symlink() => {
            return Ok(Existing::Foreign { executable: false });
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", hook.display())),
    };
    let executable = is_executable(hook);
    if contains(&bytes, MARKER.as_bytes()) {
        Ok(Existing::Ours {
            current: bytes == PRE_PUSH_SHIM.as_bytes(),
            executable,
        })
    } else {
        Ok(Existing::Foreign { executable })
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
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

/// The manager that owns `core.hooksPath`, if it is set and looks owned.
/// Without `core.hooksPath` git uses its own hooks dir and we chain whatever
/// hook is there, so no manager is reported.
pub fn detect_manager(env: &HookEnv) -> Option<Manager> {
    let config = env.hooks_path_config.as_deref()?.trim();
    if config.is_empty() {
        return None;
    }
    let in_husky_dir = env
        .hooks_dir
        .components()
        .any(|c| c.as_os_str() == ".husky");
    if config.contains(".husky") || in_husky_dir {
        return Some(Manager::Husky);
    }
    let root = &env.worktree_root;
    for manager in [Manager::Lefthook, Manager::PreCommit] {
        // lefthook-local.yml alone does not mean lefthook is in use.
        let files = manager
            .config_files()
            .iter()
            .filter(|f| !f.contains("local"));
        if files.into_iter().any(|f| root.join(f).is_file()) {
            return Some(manager);
        }
    }
    if root.join(".overcommit.yml").is_file() {
        return Some(Manager::Other("overcommit".to_string()));
    }
    // A hook in the configured dir that a manager wrote.
    let hook = fs::read(env.hook_path()).unwrap_or_default();
    if contains(&hook, MARKER.as_bytes()) {
        return None;
    }
    if contains(&hook, b"lefthook") {
        return Some(Manager::Lefthook);
    }
    if contains(&hook, b"File generated by pre-commit") {
        return Some(Manager::PreCommit);
    }
    if contains(&hook, b"husky") {
        return Some(Manager::Husky);
    }
    None
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

/// Install the shim into `env.hooks_dir`. With `force`, install there even
/// when a hook manager owns `core.hooksPath`.
pub fn install(env: &HookEnv, force: bool) -> Result<InstallOutcome> {
    if !force {
        if let Some(manager) = detect_manager(env) {
            let snippet = manager.snippet();
            return Ok(InstallOutcome::ManagedBy { manager, snippet });
        }
    }
    let dir = &env.hooks_dir;
    let hook = env.hook_path();
    let chained = env.chained_path();
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create hooks directory {}", dir.display()))?;
    let existing_chained = || exists(&chained).then(|| chained.clone());
    match inspect(&hook)? {
        Existing::Ours {
            current: true,
            executable: true,
        } => Ok(InstallOutcome::AlreadyInstalled { path: hook }),
        Existing::Ours { .. } | Existing::Missing => {
            write_shim(dir, &hook)?;
            Ok(InstallOutcome::Installed {
                chained: existing_chained(),
                path: hook,
            })
        }
        Existing::Foreign { .. } => {
            let how = if exists(&chained) {
                if !same_file(&hook, &chained) {
                    bail!(
                        "{} already exists and {} is not the git-orch hook; \
                         refusing to replace either: merge them or remove one, then run `git orch hook install` again",
                        chained.display(),
                        hook.display()
                    );
                }
                // Left by an install that stopped after linking: carry on.
                SetAside::Linked
            } else {
                set_aside(&hook, &chained)?
            };
            if let Err(e) = write_shim(dir, &hook) {
                // Put things back as they were.
                let _ = match how {
                    SetAside::Linked => fs::remove_file(&chained),
                    SetAside::Renamed => fs::rename(&chained, &hook),
                };
                return Err(e);
            }
            Ok(InstallOutcome::Installed {
                path: hook,
                chained: Some(chained),
            })
        }
    }
}

/// Remove our shim and put the previous hook back. Refuses, changing nothing,
/// when the hook there is not ours.
pub fn uninstall(env: &HookEnv) -> Result<UninstallOutcome> {
    let hook = env.hook_path();
    let chained = env.chained_path();
    match inspect(&hook)? {
        Existing::Foreign { .. } => bail!(
            "{} is not the git-orch hook; leaving it alone",
            hook.display()
        ),
        Existing::Missing => {
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
        Existing::Ours { .. } => {
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

/// Report what is installed and whether a push would run the gates.
pub fn status(env: &HookEnv) -> Result<HookStatus> {
    let path = env.hook_path();
    let chained_path = env.chained_path();
    let existing = inspect(&path)?;
    let manager = detect_manager(env);
    let chained = exists(&chained_path).then_some(chained_path);
    let (installed, current, executable) = match existing {
        Existing::Missing => (false, false, false),
        Existing::Ours {
            current,
            executable,
        } => (true, current, executable),
        Existing::Foreign { executable } => (false, false, executable),
    };
    let mut would_run = installed && executable;
    let note = if installed && !executable {
        Some(format!(
            "{} is not executable, so git skips it; run `git orch hook install` to fix it",
            path.display()
        ))
    } else if installed && !current {
        Some("the hook is out of date; run `git orch hook install` to update it".to_string())
    } else if installed {
        match (&chained, &manager) {
            (Some(c), _) if !is_executable(c) => Some(format!(
                "{} is not executable, so the shim skips it",
                c.display()
            )),
            (_, Some(m)) => Some(format!(
                "installed with --force into a directory managed by {m}; {m} may overwrite it"
            )),
            _ => None,
        }
    } else if let Some(m) = &manager {
        match manager_config_runs_gate(env, m) {
            Some(file) => {
                would_run = true;
                Some(format!("gates run through {m} ({})", file.display()))
            }
            None => Some(format!(
                "core.hooksPath is managed by {m}; add the snippet from `git orch hook install` to its config"
            )),
        }
    } else if chained.is_some() {
        Some(format!(
            "{} exists but the git-orch hook is missing; run `git orch hook install`",
            env.chained_path().display()
        ))
    } else {
        Some("not installed; run `git orch hook install`".to_string())
    };
    Ok(HookStatus {
        path,
        installed,
        chained,
        executable,
        would_run,
        manager,
        note,
    })
}

/// The manager config file that calls `git orch gate`, if any.
fn manager_config_runs_gate(env: &HookEnv, manager: &Manager) -> Option<PathBuf> {
    manager
        .config_files()
        .iter()
        .map(|f| env.worktree_root.join(f))
        .find(|p| {
            fs::read(p)
                .map(|b| contains(&b, b"git orch gate") || contains(&b, b"git-orch gate"))
                .unwrap_or(false)
        })
}

#[cfg(test)]
mod tests;
