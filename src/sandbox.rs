//! `isolation = "sandbox"`: a task's command runs under bubblewrap with the
//! whole filesystem read-only except its own worktree, its per-worktree git
//! admin dir (`.git/worktrees/<name>`), the object store (new objects), a
//! private temporary directory and its handoff file. It cannot move a shared
//! ref (the refs are read-only: its worktree's HEAD is detached while it
//! runs, and its branch follows HEAD afterwards), write the main checkout,
//! the config, the hooks, the state or another task's worktree, and it
//! cannot read the repository's secret. `network = false` adds a network
//! namespace of its own.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, Result};
use git2::Oid;

use crate::error::refuse_with_hint;
use crate::git::Repo;
use crate::state::names;

/// Whether bubblewrap can make the namespaces the sandbox needs here; the
/// refusal says how to get it.
pub fn available() -> Result<()> {
    let probe = Command::new("bwrap")
        .args([
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--unshare-pid",
            "--unshare-net",
            "true",
        ])
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

/// One task's sandbox, prepared around its worktree.
pub struct Sandbox {
    pub args: Vec<String>,
    /// `TMPDIR` inside.
    pub tmp: PathBuf,
    worktree: PathBuf,
    branch: String,
    head: Oid,
    handoff: PathBuf,
}

impl Sandbox {
    /// Detaches the worktree's HEAD (the refs are read-only inside) and
    /// lists the bubblewrap arguments.
    pub fn new(
        repo: &Repo,
        plan: &str,
        task: &str,
        worktree: &Path,
        handoff: &Path,
        network: bool,
    ) -> Result<Sandbox> {
        let admin = repo.git_in(worktree, &["rev-parse", "--absolute-git-dir"])?;
        let admin = PathBuf::from(admin.trim());
        let objects = repo.common_dir.join("objects");
        let tmp = repo.orch_dir().join("tmp").join(plan).join(task);
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)
            .map_err(|e| anyhow!("cannot create `{}`: {e}", tmp.display()))?;
        if !handoff.exists() {
            std::fs::write(handoff, "")
                .map_err(|e| anyhow!("cannot create `{}`: {e}", handoff.display()))?;
        }
        let secret = crate::secret::secret_file(repo);
        crate::secret::load(repo)?;
        let head = Oid::from_str(repo.git_in(worktree, &["rev-parse", "HEAD"])?.trim())?;
        repo.detach_head(worktree)?;
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
        for rw in [
            worktree,
            admin.as_path(),
            objects.as_path(),
            tmp.as_path(),
            handoff,
        ] {
            args.extend(["--bind".to_string(), s(rw), s(rw)]);
        }
        args.extend(["--ro-bind".to_string(), "/dev/null".to_string(), s(&secret)]);
        args.extend(
            ["--unshare-pid", "--die-with-parent", "--new-session"]
                .iter()
                .map(|a| a.to_string()),
        );
        if !network {
            args.push("--unshare-net".to_string());
        }
        args.extend(["--chdir".to_string(), s(worktree)]);
        Ok(Sandbox {
            args,
            tmp,
            worktree: worktree.to_path_buf(),
            branch: names::task_branch(plan, task),
            head,
            handoff: handoff.to_path_buf(),
        })
    }

    /// After the command: the task's branch follows what it committed on
    /// the detached HEAD, HEAD is attached again, an empty handoff file is
    /// no note, and the temporary directory goes.
    pub fn finish(self, repo: &Repo) -> Result<()> {
        let _ = std::fs::remove_dir_all(&self.tmp);
        if std::fs::metadata(&self.handoff).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&self.handoff);
        }
        let now = Oid::from_str(repo.git_in(&self.worktree, &["rev-parse", "HEAD"])?.trim())?;
        if now != self.head {
            repo.cas_ref(
                &self.branch,
                now,
                Some(self.head),
                "orch: the sandboxed task's commits",
            )?;
        }
        repo.git_in(&self.worktree, &["symbolic-ref", "HEAD", &self.branch])?;
        Ok(())
    }
}
