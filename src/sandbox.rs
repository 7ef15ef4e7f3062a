//! `isolation = "sandbox"`: a command run on a task's behalf (the task
//! itself, its reviewer, a fix-forward or a conflict resolver) runs under
//! bubblewrap, designed from what it may write rather than from what it may
//! not:
//!
//! - its worktree (a reviewer: not even that);
//! - through git, new objects only: they go to a quarantine of its own
//!   (`GIT_OBJECT_DIRECTORY`), which the runner checks object by object and
//!   adopts afterwards; the object store is read-only, so no object git
//!   has can be rewritten;
//! - its HEAD and index, in a private copy of its worktree's admin dir
//!   mounted over the real one: the real admin dir (`config.worktree`,
//!   `commondir`, `gitdir`) stays as git-orch made it, and git-orch reads
//!   back only the new HEAD, as an object id it checks;
//! - a private temporary directory and the files it hands back (handoff,
//!   usage, reset time, verdict).
//!
//! Everything else is read-only: refs, config, hooks, the main checkout,
//! other worktrees; the repository's secret is hidden. It runs in user,
//! pid and IPC namespaces of its own with every capability dropped and no
//! further user namespace, so even as root it cannot remount anything.
//! `network = false` adds a network namespace of its own (loopback only)
//! and hides the host's unix sockets: `/tmp`, `/var/tmp` and `/run` are
//! empty inside (the repository, `$HOME` and the `PATH` are put back
//! read-only), and every socket the environment names is masked.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, Context, Result};
use git2::Oid;

use crate::error::refuse_with_hint;
use crate::git::Repo;

/// The namespaces every sandbox asks for, also in the availability probe.
const NAMESPACES: &[&str] = &[
    "--unshare-user",
    "--disable-userns",
    "--cap-drop",
    "ALL",
    "--unshare-pid",
    "--unshare-ipc",
    "--die-with-parent",
    "--new-session",
];

/// Whether bubblewrap can make the namespaces the sandbox needs here; the
/// refusal says how to get it.
pub fn available() -> Result<()> {
    let probe = Command::new("bwrap")
        .args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"])
        .args(NAMESPACES)
        .args(["--unshare-net", "true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match probe {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(refuse_with_hint(
            format!(
                "`isolation = \"sandbox\"` needs bubblewrap, and `bwrap` cannot make namespaces here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), or run the plan without `isolation = \"sandbox\"`",
        )),
        Err(_) => Err(refuse_with_hint(
            "`isolation = \"sandbox\"` needs bubblewrap (`bwrap`), which is not installed",
            "install it (`apt-get install bubblewrap`, `dnf install bubblewrap`, `brew` has none: Linux only), or run the plan without `isolation = \"sandbox\"`",
        )),
    }
}

/// What the sandboxed command may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Its worktree, new objects and its HEAD: a task, a fix-forward, a
    /// conflict resolver.
    Work,
    /// Nothing of the repository: a reviewer reads the committed work.
    Read,
}

/// Where and how a command is sandboxed.
pub struct Spec<'a> {
    pub plan: &'a str,
    pub task: &'a str,
    pub worktree: &'a Path,
    /// Files outside the worktree it hands back (made empty if absent).
    pub hand_back: Vec<PathBuf>,
    pub network: bool,
    pub access: Access,
}

/// One command's sandbox, prepared around its worktree.
pub struct Sandbox {
    pub args: Vec<String>,
    /// Variables the command needs inside: `TMPDIR`, and for [`Access::Work`]
    /// the object quarantine.
    pub env: Vec<(String, String)>,
    /// Everything private to this sandbox, removed by [`Sandbox::finish`].
    dir: PathBuf,
    worktree: PathBuf,
    /// The real admin dir, found from git-orch's side.
    admin: PathBuf,
    /// The branch the worktree has checked out, `None` when detached.
    branch: Option<String>,
    head: Oid,
    access: Access,
    /// Hand-back files made empty for the bind, removed if still empty.
    made: Vec<PathBuf>,
}

impl Sandbox {
    /// Checks that the worktree is the one git-orch made (its `.git` names
    /// our admin dir, which names it back) before anything is read through
    /// it, then lays out the private admin dir, the quarantine and the
    /// bubblewrap arguments.
    pub fn new(repo: &Repo, spec: &Spec<'_>) -> Result<Sandbox> {
        repo.verify_worktree(spec.worktree)?;
        let admin = repo.admin_dir_of(spec.worktree).ok_or_else(|| {
            anyhow!(
                "the worktree `{}` has no admin dir of this repository",
                spec.worktree.display()
            )
        })?;
        let (branch, head) = read_head(repo, &admin)?;
        let dir = repo
            .orch_dir()
            .join("sandbox")
            .join(spec.plan)
            .join(spec.task);
        remove_dir(&dir)?;
        let tmp = dir.join("tmp");
        let objects = dir.join("objects");
        let shadow = dir.join("admin");
        for d in [&tmp, &objects.join("info"), &objects.join("pack")] {
            std::fs::create_dir_all(d)
                .with_context(|| format!("cannot create `{}`", d.display()))?;
        }
        let mut made = Vec::new();
        for file in &spec.hand_back {
            if std::fs::symlink_metadata(file).is_err() {
                made.push(file.clone());
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("cannot create `{}`", parent.display()))?;
                }
                std::fs::write(file, "")
                    .with_context(|| format!("cannot create `{}`", file.display()))?;
            }
        }
        crate::secret::load(repo)?;
        let secret = crate::secret::secret_file(repo);

        let s = |p: &Path| p.display().to_string();
        let mut args: Vec<String> = [
            "bwrap",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        if !spec.network {
            hide_host_sockets(repo, spec.worktree, &mut args);
        }
        let mut env = vec![("TMPDIR".to_string(), s(&tmp))];
        let mut rw: Vec<(PathBuf, PathBuf)> = vec![(tmp.clone(), tmp.clone())];
        if spec.access == Access::Work {
            copy_admin_dir(&admin, &shadow)?;
            std::fs::write(shadow.join("HEAD"), format!("{head}\n"))
                .with_context(|| format!("cannot write `{}`", shadow.display()))?;
            rw.push((spec.worktree.to_path_buf(), spec.worktree.to_path_buf()));
            rw.push((shadow.clone(), admin.clone()));
            rw.push((objects.clone(), objects.clone()));
            env.push(("GIT_OBJECT_DIRECTORY".into(), s(&objects)));
            env.push((
                "GIT_ALTERNATE_OBJECT_DIRECTORIES".into(),
                s(&repo.common_dir.join("objects")),
            ));
        }
        rw.extend(spec.hand_back.iter().map(|f| (f.clone(), f.clone())));
        for (from, to) in &rw {
            args.extend(["--bind".to_string(), s(from), s(to)]);
        }
        args.extend(["--ro-bind".to_string(), "/dev/null".to_string(), s(&secret)]);
        args.extend(NAMESPACES.iter().map(|a| a.to_string()));
        if !spec.network {
            args.push("--unshare-net".to_string());
        }
        args.extend(["--chdir".to_string(), s(spec.worktree)]);
        Ok(Sandbox {
            args,
            env,
            dir,
            worktree: spec.worktree.to_path_buf(),
            admin,
            branch,
            head,
            access: spec.access,
            made,
        })
    }

    /// After the command: its new objects are checked and adopted, the
    /// branch (or the detached HEAD) follows the HEAD it left, once the
    /// worktree is verified again, and the private files go. The real index
    /// is left as it was: git-orch's own `add -A` brings it up to date.
    pub fn finish(self, repo: &Repo) -> Result<()> {
        let outcome = self.follow(repo);
        for file in &self.made {
            if std::fs::metadata(file).is_ok_and(|m| m.len() == 0) {
                // Nothing handed back; a file left is read as an empty one.
                let _ = std::fs::remove_file(file);
            }
        }
        // What cannot be removed now is removed by this task's next sandbox,
        // and holds nothing that was not adopted or discarded on purpose.
        let _ = remove_dir(&self.dir);
        outcome
    }

    fn follow(&self, repo: &Repo) -> Result<()> {
        if self.access == Access::Read {
            return Ok(());
        }
        repo.adopt_quarantine(&self.dir.join("objects"))?;
        let left = std::fs::read_to_string(self.dir.join("admin").join("HEAD"))
            .context("it removed its HEAD")?;
        let now = match left.trim().strip_prefix("ref:") {
            Some(name) => {
                let name = name.trim();
                if !name.starts_with("refs/") {
                    return Err(anyhow!("it pointed its HEAD at `{name}`"));
                }
                repo.ref_target(name)?
                    .ok_or_else(|| anyhow!("it pointed its HEAD at `{name}`, which is no branch"))?
            }
            None => Oid::from_str(left.trim())
                .map_err(|_| anyhow!("it left a HEAD that is no commit id"))?,
        };
        if !repo.has_commit(now) {
            return Err(anyhow!("it left a HEAD ({now}) that is no commit"));
        }
        repo.verify_worktree(&self.worktree)?;
        if now == self.head {
            return Ok(());
        }
        match &self.branch {
            Some(branch) => repo.cas_ref(
                branch,
                now,
                Some(self.head),
                "orch: the sandboxed command's commits",
            ),
            None => repo.write_worktree_head(&self.admin, None, now),
        }
    }
}

/// The sandbox of a command run on `task`'s behalf in `worktree` (the task
/// itself, its reviewer, a fix-forward, a resolver), when the plan asks for
/// `isolation = "sandbox"` there; `None` when it does not.
pub fn for_task(
    repo: &Repo,
    plan: &crate::plan::Plan,
    plan_name: &str,
    task: &crate::plan::Task,
    worktree: &Path,
    hand_back: Vec<PathBuf>,
    access: Access,
) -> Result<Option<Sandbox>> {
    if plan.task_isolation(task) != crate::plan::Isolation::Sandbox {
        return Ok(None);
    }
    Sandbox::new(
        repo,
        &Spec {
            plan: plan_name,
            task: &task.id,
            worktree,
            hand_back,
            network: plan.task_network(task),
            access,
        },
    )
    .map(Some)
}

/// The branch the admin dir's HEAD names (with its commit), or the commit
/// of a detached HEAD.
fn read_head(repo: &Repo, admin: &Path) -> Result<(Option<String>, Oid)> {
    let text = std::fs::read_to_string(admin.join("HEAD"))
        .with_context(|| format!("cannot read the HEAD in `{}`", admin.display()))?;
    match text.trim().strip_prefix("ref:") {
        Some(name) => {
            let name = name.trim().to_string();
            let head = repo
                .ref_target(&name)?
                .ok_or_else(|| anyhow!("the worktree's branch `{name}` is gone"))?;
            Ok((Some(name), head))
        }
        None => Ok((
            None,
            Oid::from_str(text.trim()).map_err(|_| {
                anyhow!(
                    "the worktree's HEAD in `{}` is no commit id",
                    admin.display()
                )
            })?,
        )),
    }
}

/// A copy of a worktree's admin dir for the sandbox to write: its files
/// and directories (sparse patterns, `config.worktree`, a merge in
/// progress), without reflogs, locks or links.
fn copy_admin_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create `{}`", to.display()))?;
    let entries =
        std::fs::read_dir(from).with_context(|| format!("cannot read `{}`", from.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let kind = entry.file_type()?;
        let text = name.to_string_lossy();
        if text == "logs" || text.ends_with(".lock") || text.starts_with("HEAD.orch-") {
            continue;
        }
        let dest = to.join(&name);
        if kind.is_dir() {
            copy_admin_dir(&entry.path(), &dest)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &dest)
                .with_context(|| format!("cannot copy `{}`", entry.path().display()))?;
        }
    }
    Ok(())
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(anyhow!("cannot remove `{}`: {e}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// Where hosts keep their unix sockets; empty inside under `network = false`.
const SOCKET_DIRS: &[&str] = &["/tmp", "/var/tmp", "/run", "/var/run"];

/// `network = false`: the socket directories are hidden, what the command
/// needs from them is put back read-only (the repository, its worktree's
/// parents, `$HOME`, the `PATH`), and then every socket the environment
/// names is masked, wherever it is.
fn hide_host_sockets(repo: &Repo, worktree: &Path, args: &mut Vec<String>) {
    let s = |p: &Path| p.display().to_string();
    for dir in SOCKET_DIRS {
        let real = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
        if real {
            args.extend(["--tmpfs".to_string(), dir.to_string()]);
        }
    }
    let mut back: Vec<PathBuf> = vec![repo.root.clone(), repo.common_dir.clone()];
    if let Some(parent) = worktree.parent() {
        back.push(parent.to_path_buf());
    }
    back.extend(std::env::var_os("HOME").map(PathBuf::from));
    if let Some(path) = std::env::var_os("PATH") {
        back.extend(std::env::split_paths(&path));
    }
    for dir in back {
        let hidden = SOCKET_DIRS.iter().any(|d| dir.starts_with(d));
        if hidden && dir.is_absolute() {
            args.extend(["--ro-bind-try".to_string(), s(&dir), s(&dir)]);
        }
    }
    for socket in named_sockets() {
        args.extend(["--ro-bind".to_string(), "/dev/null".to_string(), s(&socket)]);
    }
}

/// The unix sockets the environment points at: an ssh agent, the D-Bus
/// buses, a docker daemon, a display, and any variable whose whole value is
/// a socket's path.
fn named_sockets() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for (_, value) in std::env::vars_os() {
        let value = value.to_string_lossy();
        for part in value.split([';', ',']) {
            let path = part
                .strip_prefix("unix:path=")
                .or_else(|| part.strip_prefix("unix://"))
                .or_else(|| part.strip_prefix("unix:"))
                .unwrap_or(part);
            let path = path.split(',').next().unwrap_or(path);
            if !path.starts_with('/') {
                continue;
            }
            let path = PathBuf::from(path);
            let is_socket =
                std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_socket());
            if is_socket && !found.contains(&path) {
                found.push(path);
            }
        }
    }
    found
}
