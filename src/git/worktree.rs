//! Worktrees through the `git` binary: it is about twice as fast as
//! libgit2's, runs the user's filters (LFS, never hooks: see [`TASK_SAFE`]), and is the
//! only one that knows sparse checkout. Worktrees are recycled rather than
//! removed and re-added, because on this kind of disk a removal slows the
//! next creation several times over (research/perf.md).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use git2::Oid;

use super::Repo;
use crate::error::refuse_with_hint;

/// What `add -A` staged in a worktree.
#[derive(Debug, PartialEq, Eq)]
enum Staged {
    Nothing,
    /// `nested`: new gitlinks among the changes; `tree`: the index's tree,
    /// when git could write one.
    Changes {
        nested: Vec<String>,
        tree: Option<Oid>,
    },
}

#[derive(Debug, Clone)]
pub struct WorktreeInfo {
    pub path: PathBuf,
    pub head: Option<Oid>,
    /// Full ref name of the checked-out branch, `None` when detached.
    pub branch: Option<String>,
}

/// `-c` settings for every git command git-orch runs in a task's
/// checkout: what a task could have put there (a `core.fsmonitor` in its
/// `config.worktree`, hooks beside its files under a relative
/// `core.hooksPath`) never runs on its behalf, outside its isolation.
/// git-orch's own commits of a task's work run no git hooks at all: checks
/// belong in gates, which run where the plan says.
pub const TASK_SAFE: [&str; 4] = [
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.hooksPath=/dev/null",
];

impl Repo {
    /// `git` in a task's checkout, with [`TASK_SAFE`].
    pub fn task_git(&self, path: &Path, args: &[&str]) -> Result<String> {
        let mut all: Vec<&str> = TASK_SAFE.to_vec();
        all.extend_from_slice(args);
        self.git_in(path, &all)
    }

    /// [`Repo::task_git`] as a command to finish.
    pub fn task_command(&self, path: &Path, args: &[&str]) -> std::process::Command {
        let mut all: Vec<&str> = TASK_SAFE.to_vec();
        all.extend_from_slice(args);
        self.command_in(path, &all)
    }

    /// Every worktree git knows, the main one first.
    pub fn worktrees(&self) -> Result<Vec<WorktreeInfo>> {
        let out = self.git(&["worktree", "list", "--porcelain"])?;
        let mut list = Vec::new();
        for block in out.split("\n\n") {
            let mut info = WorktreeInfo {
                path: PathBuf::new(),
                head: None,
                branch: None,
            };
            for line in block.lines() {
                if let Some(p) = line.strip_prefix("worktree ") {
                    info.path = PathBuf::from(p);
                } else if let Some(h) = line.strip_prefix("HEAD ") {
                    info.head = Oid::from_str(h).ok();
                } else if let Some(b) = line.strip_prefix("branch ") {
                    info.branch = Some(b.to_string());
                }
            }
            if !info.path.as_os_str().is_empty() {
                list.push(info);
            }
        }
        Ok(list)
    }

    /// The worktree git lists at `path` with `branch` (full ref name)
    /// checked out; `None` when there is none, or it is on another branch.
    /// There is deliberately no lookup by branch alone: a person may add a
    /// worktree of their own on a task's branch (`git worktree add ../look
    /// orch/p/tasks/a`), and git-orch must never take that one for its own.
    pub fn worktree_at_on_branch(&self, path: &Path, branch: &str) -> Result<Option<PathBuf>> {
        Ok(self
            .worktrees()?
            .into_iter()
            .find(|w| w.branch.as_deref() == Some(branch) && same_path(&w.path, path))
            .map(|w| w.path))
    }

    /// The worktrees that have `branch` checked out anywhere but at `own`
    /// (the main checkout included), whose directory still exists (git
    /// lists a removed one until it is pruned; it holds nothing to lose).
    pub fn worktrees_on_branch_elsewhere(&self, branch: &str, own: &Path) -> Result<Vec<PathBuf>> {
        Ok(self
            .worktrees()?
            .into_iter()
            .filter(|w| {
                w.branch.as_deref() == Some(branch) && w.path.exists() && !same_path(&w.path, own)
            })
            .map(|w| w.path)
            .collect())
    }

    /// Puts `branch` at `start` checked out in `path`: a new worktree when
    /// `path` is not one yet, otherwise the existing one is recycled (forced
    /// checkout; untracked files removed, ignored ones such as build caches
    /// kept). `sparse` limits what is materialised to those patterns.
    pub fn checkout_worktree(
        &self,
        path: &Path,
        branch: &str,
        start: Oid,
        sparse: Option<&[String]>,
    ) -> Result<()> {
        self.checkout_worktree_from(path, branch, start, sparse, false)
    }

    /// [`Repo::checkout_worktree`]; `known_clean` skips the sweep of
    /// untracked files for a worktree that was parked clean (a `git clean`
    /// walks the whole tree).
    pub fn checkout_worktree_from(
        &self,
        path: &Path,
        branch: &str,
        start: Oid,
        sparse: Option<&[String]>,
        known_clean: bool,
    ) -> Result<()> {
        let short_branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        let start_s = start.to_string();
        if path.join(".git").exists() {
            match sparse {
                Some(patterns) => self.set_sparse(path, patterns)?,
                // A recycled worktree keeps the sparse view of its last task.
                None if self.is_sparse(path) => {
                    self.task_git(path, &["sparse-checkout", "disable"])?;
                }
                None => {}
            }
            self.task_git(
                path,
                &["checkout", "-q", "-f", "-B", short_branch, &start_s],
            )?;
            if !known_clean {
                self.task_git(path, &["clean", "-q", "-fd"])?;
            }
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        let path_s = path
            .to_str()
            .ok_or_else(|| anyhow!("worktree path is not UTF-8: {}", path.display()))?;
        match sparse {
            None => self.add_worktree(path_s, &["-B", short_branch], &start_s)?,
            Some(patterns) => {
                self.git(&[
                    "worktree",
                    "add",
                    "-q",
                    "-f",
                    "--no-checkout",
                    "-B",
                    short_branch,
                    path_s,
                    &start_s,
                ])?;
                self.set_sparse(path, patterns)?;
                self.task_git(path, &["checkout", "-q", "-f", short_branch])?;
            }
        }
        Ok(())
    }

    /// A full worktree of `commit` with a detached HEAD (gates check one).
    pub fn add_detached_worktree(&self, path: &Path, commit: Oid) -> Result<()> {
        self.add_worktree(&path.to_string_lossy(), &["--detach"], &commit.to_string())
    }

    /// `git worktree add` of a full checkout; `checkout.workers=0` lets git
    /// write files in parallel, which helped 1.1-5.6x on this kind of disk.
    fn add_worktree(&self, path: &str, how: &[&str], start: &str) -> Result<()> {
        let mut args = vec!["-c", "checkout.workers=0"];
        args.extend(TASK_SAFE);
        args.extend(["worktree", "add", "-q", "-f"]);
        args.extend_from_slice(how);
        args.extend([path, start]);
        self.git(&args)?;
        Ok(())
    }

    /// Whether sparse checkout is on in this worktree, read from its
    /// `config.worktree` without spawning git (this sits on every recycle).
    fn is_sparse(&self, path: &Path) -> bool {
        let Some(admin) = worktree_admin_dir(path) else {
            return false;
        };
        std::fs::read_to_string(admin.join("config.worktree")).is_ok_and(|text| {
            text.lines().any(|l| {
                let l = l.trim().to_ascii_lowercase().replace(' ', "");
                l == "sparsecheckout=true"
            })
        })
    }

    fn set_sparse(&self, path: &Path, patterns: &[String]) -> Result<()> {
        let mut args = vec!["sparse-checkout", "set", "--no-cone"];
        let anchored: Vec<String> = patterns
            .iter()
            .map(|p| format!("/{}", p.trim_start_matches('/')))
            .collect();
        args.extend(anchored.iter().map(String::as_str));
        self.task_git(path, &args)?;
        Ok(())
    }

    /// Removes a worktree and its admin data. Callers preserve its work first.
    pub fn remove_worktree(&self, path: &Path) -> Result<()> {
        let path_s = path.to_string_lossy();
        // A task may have pointed its `.git` elsewhere (git then refuses the
        // removal): it names again the admin dir git-orch knows for it.
        if let Some(admin) = self.admin_dir_of(path) {
            let named = worktree_admin_dir(path).and_then(|a| std::fs::canonicalize(a).ok());
            if named != std::fs::canonicalize(&admin).ok() {
                // A `.git` directory (a repository of the task's own) is
                // left for git to refuse: nothing of it is lost unasked.
                let dotgit = path.join(".git");
                if !std::fs::symlink_metadata(&dotgit).is_ok_and(|m| m.is_dir()) {
                    std::fs::write(&dotgit, format!("gitdir: {}\n", admin.display()))
                        .with_context(|| format!("cannot write `{}`", dotgit.display()))?;
                }
            }
        }
        if path.exists() {
            if let Err(e) = self.git(&["worktree", "remove", "--force", "--force", &path_s]) {
                // Not a registered worktree (a crash between mkdir and add):
                // the directory holds nothing git knows of.
                if path.join(".git").exists() {
                    return Err(e);
                }
                std::fs::remove_dir_all(path)
                    .with_context(|| format!("cannot remove `{}`", path.display()))?;
            }
        }
        self.git(&["worktree", "prune"])?;
        Ok(())
    }

    /// Whether the worktree has uncommitted changes or untracked files.
    pub fn is_dirty(&self, path: &Path) -> Result<bool> {
        Ok(!self
            .task_git(path, &["status", "--porcelain", "-z"])?
            .is_empty())
    }

    /// Records everything uncommitted in a worktree (tracked changes and
    /// untracked files, not ignored ones) as a commit on top of its HEAD,
    /// without touching the worktree, its index or any ref. The worktree's
    /// own index is copied first so its stat cache spares a full rehash.
    ///
    /// A worktree that holds a git repository of its own is refused: git
    /// would record it as a gitlink, without its files, and the caller
    /// would then remove the only copy.
    pub fn snapshot_worktree(&self, path: &Path, message: &str) -> Result<Option<Oid>> {
        if !path.join(".git").exists() {
            return Ok(None);
        }
        let status = self.task_git(path, &["status", "--porcelain", "-z"])?;
        let nested = nested_repositories(path, &status);
        if !nested.is_empty() {
            let list: Vec<String> = nested.iter().map(|p| format!("`{p}`")).collect();
            return Err(refuse_with_hint(
                format!(
                    "the worktree `{}` holds a git repository of its own at {}, which a \
                     commit cannot keep: it is not removed",
                    path.display(),
                    list.join(", ")
                ),
                "move it out of the worktree (or remove its `.git` to make its files plain \
                 files), then run the command again",
            ));
        }
        if status.is_empty() {
            return Ok(None);
        }
        let index = PathBuf::from(
            self.task_git(
                path,
                &["rev-parse", "--path-format=absolute", "--git-path", "index"],
            )?
            .trim(),
        );
        let tmp = tempfile::Builder::new()
            .prefix("orch-snapshot-")
            .tempfile_in(self.orch_dir_created()?)
            .context("cannot create a temporary index")?;
        if index.exists() {
            std::fs::copy(&index, tmp.path())
                .with_context(|| format!("cannot copy `{}`", index.display()))?;
        }
        let with_index = |args: &[&str]| -> Result<String> {
            let out = self
                .task_command(path, args)
                .env("GIT_INDEX_FILE", tmp.path())
                .output()?;
            if !out.status.success() {
                return Err(anyhow!(
                    "`git {}` failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        with_index(&["add", "-A", "--sparse"])?;
        let tree = with_index(&["write-tree"])?;
        let tree = self.git.find_tree(Oid::from_str(&tree)?)?;
        let head = self.task_git(path, &["rev-parse", "HEAD"])?;
        let parent = self.git.find_commit(Oid::from_str(head.trim())?)?;
        let sig = self.signature()?;
        let id = self
            .git
            .commit(None, &sig, &sig, message, &tree, &[&parent])?;
        Ok(Some(id))
    }

    /// Everything a task's checkout at `path` holds, as one commit: its
    /// uncommitted work on top of its HEAD, or its HEAD when clean, whatever
    /// that HEAD is (a detached one, another branch). A checkout whose `.git`
    /// file the task deleted is read through its admin dir, or, once git
    /// pruned that, as plain files on `fallback`. `None`: nothing there.
    pub fn worktree_content(
        &self,
        path: &Path,
        message: &str,
        fallback: Oid,
    ) -> Result<Option<Oid>> {
        if !path.is_dir() {
            return Ok(None);
        }
        // Through its `.git` only once that is verified as the one git-orch
        // made: a task may point it at a person's checkout, whose HEAD and
        // index are then not read; otherwise through the admin dir found
        // from git-orch's side.
        if path.join(".git").exists() && self.verify_worktree(path).is_ok() {
            if let Some(snapshot) = self.snapshot_worktree(path, message)? {
                return Ok(Some(snapshot));
            }
            let head = self.task_git(path, &["rev-parse", "HEAD"])?;
            return Ok(Some(Oid::from_str(head.trim())?));
        }
        self.snapshot_without_dotgit(path, message, fallback)
    }

    /// [`Repo::worktree_content`] of a checkout without its `.git` file.
    fn snapshot_without_dotgit(
        &self,
        path: &Path,
        message: &str,
        fallback: Oid,
    ) -> Result<Option<Oid>> {
        let admin = self.admin_dir_of(path);
        let git_dir = admin.clone().unwrap_or_else(|| self.common_dir.clone());
        // In a directory of its own: git refuses an empty file as an index.
        let tmp = tempfile::Builder::new()
            .prefix("orch-snapshot-")
            .tempdir_in(self.orch_dir_created()?)
            .context("cannot create a temporary index")?;
        let tmp_index = tmp.path().join("index");
        if let Some(index) = admin
            .as_ref()
            .map(|a| a.join("index"))
            .filter(|i| i.exists())
        {
            std::fs::copy(&index, &tmp_index)
                .with_context(|| format!("cannot copy `{}`", index.display()))?;
        }
        let run = |args: &[&str]| -> Result<String> {
            let out = self
                .task_command(path, args)
                .env("GIT_DIR", &git_dir)
                .env("GIT_WORK_TREE", path)
                .env("GIT_INDEX_FILE", &tmp_index)
                .output()?;
            if !out.status.success() {
                return Err(anyhow!(
                    "`git {}` failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        };
        let parent = match admin {
            Some(_) => run(&["rev-parse", "HEAD"])
                .ok()
                .and_then(|h| Oid::from_str(&h).ok())
                .unwrap_or(fallback),
            None => fallback,
        };
        run(&["add", "-A", "--sparse"])?;
        let tree = self.git.find_tree(Oid::from_str(&run(&["write-tree"])?)?)?;
        let parent = self.git.find_commit(parent)?;
        if parent.tree_id() == tree.id() {
            return Ok(Some(parent.id()));
        }
        // An empty directory (a `worktree add` that died) holds nothing.
        if tree.is_empty() {
            return Ok(None);
        }
        let sig = self.signature()?;
        let id = self
            .git
            .commit(None, &sig, &sig, message, &tree, &[&parent])?;
        Ok(Some(id))
    }

    /// Checks that `path` is a linked worktree of this repository at that
    /// very path before git-orch commits in it: its `.git` file names an
    /// admin dir of ours that names it back, and git sees `path` as the top
    /// of the worktree. A task that deleted its `.git` file would otherwise
    /// have git commit in whatever repository encloses it (the user's own
    /// checkout, with `orch.worktreeDir` inside it).
    pub fn verify_worktree(&self, path: &Path) -> Result<()> {
        let broken = |why: &str| {
            anyhow!(
                "the task's worktree `{}` {why}, so git would not commit in it (and might \
                 commit in the repository around it): nothing was committed; what it holds \
                 stays there",
                path.display()
            )
        };
        let top = std::fs::canonicalize(path).map_err(|_| broken("is gone"))?;
        let dotgit = path.join(".git");
        if !dotgit.is_file() {
            return Err(broken("has lost its `.git` file"));
        }
        let admin = worktree_admin_dir(path)
            .ok_or_else(|| broken("has a `.git` file that names no git directory"))?;
        let ours = std::fs::canonicalize(self.common_dir.join("worktrees")).ok();
        let admin = std::fs::canonicalize(&admin)
            .map_err(|_| broken("has a `.git` file naming a git directory that is gone"))?;
        if ours.is_none_or(|w| admin.parent() != Some(w.as_path())) {
            return Err(broken(
                "has a `.git` file that names another repository's git directory",
            ));
        }
        let points_back = || {
            let back = std::fs::read_to_string(admin.join("gitdir")).unwrap_or_default();
            std::fs::canonicalize(back.trim()).ok() == Some(top.join(".git"))
        };
        self.repair_record_if_lagging(path);
        if !points_back() {
            return Err(broken("is not where git keeps that worktree"));
        }
        // In-process, as git would see it (`rev-parse --show-toplevel`, a
        // process per task saved): the checkout that opens from `path` has
        // its top there, and shares this repository's objects and refs.
        let opened = git2::Repository::open(path).map_err(|_| broken("is not a git worktree"))?;
        let shown = opened.workdir().and_then(|w| std::fs::canonicalize(w).ok());
        let common = std::fs::canonicalize(opened.commondir()).ok();
        if shown != Some(top) || common != std::fs::canonicalize(&self.common_dir).ok() {
            return Err(broken("is not the top of a git worktree"));
        }
        Ok(())
    }

    /// Rewrites git's record of where the worktree at `path` is when it lags
    /// behind the directory: a move cut short (git-orch moves worktrees
    /// in-process, the directory renamed and then the record rewritten, and
    /// a kill may fall in between), or one made by another runner sharing
    /// the pool. `git worktree repair` rewrites it from the worktree's own
    /// `.git` file, which names our admin dir; only when the place git
    /// records holds no worktree of that admin dir: a `.git` file naming
    /// another live worktree's admin dir is a forgery, and repairing it would
    /// take that worktree over. `true` if it repaired.
    pub fn repair_record_if_lagging(&self, path: &Path) -> bool {
        let Some(admin) = worktree_admin_dir(path).and_then(|a| std::fs::canonicalize(a).ok())
        else {
            return false;
        };
        let ours = std::fs::canonicalize(self.common_dir.join("worktrees")).ok();
        if ours.is_none_or(|w| admin.parent() != Some(w.as_path())) {
            return false;
        }
        let Ok(top) = std::fs::canonicalize(path) else {
            return false;
        };
        let recorded = std::fs::read_to_string(admin.join("gitdir")).unwrap_or_default();
        let recorded = Path::new(recorded.trim());
        if std::fs::canonicalize(recorded).ok() == Some(top.join(".git")) {
            return false;
        }
        let other_is_live = worktree_admin_dir(recorded.parent().unwrap_or(Path::new("")))
            .and_then(|a| std::fs::canonicalize(a).ok())
            == Some(admin);
        !other_is_live
            && self
                .git(&["worktree", "repair", &path.to_string_lossy()])
                .is_ok()
    }

    /// The admin dir (`.git/worktrees/<name>`) git keeps for a linked
    /// worktree at `path`, found from its side (its `gitdir` file names
    /// `<path>/.git`), so it is found when the worktree lost its `.git`.
    pub fn admin_dir_of(&self, path: &Path) -> Option<PathBuf> {
        let want = std::fs::canonicalize(path).ok()?.join(".git");
        let entries = std::fs::read_dir(self.common_dir.join("worktrees")).ok()?;
        entries.flatten().map(|e| e.path()).find(|admin| {
            std::fs::read_to_string(admin.join("gitdir")).is_ok_and(|t| Path::new(t.trim()) == want)
        })
    }

    /// Commits everything uncommitted in a worktree on its branch, running
    /// no git hook ([`TASK_SAFE`]). Returns the new HEAD (unchanged when clean).
    pub fn commit_all(&self, path: &Path, message: &str) -> Result<Oid> {
        self.commit_all_except(path, message, &[])
    }

    /// [`Repo::commit_all`], leaving the paths of `keep_out` (relative to
    /// the worktree, taken literally) out of the commit: they stay in the
    /// worktree as they are, uncommitted (a handoff note written there).
    pub fn commit_all_except(
        &self,
        path: &Path,
        message: &str,
        keep_out: &[String],
    ) -> Result<Oid> {
        let started = std::time::Instant::now();
        self.verify_worktree(path)?;
        crate::trace::step("verify", started);
        // `add -A` refreshes the index once; whether anything is staged is
        // then read in-process instead of by a second full `git status`.
        // `--sparse`: in a sparse checkout, what the task wrote outside the
        // sparse patterns is staged too (git would skip a tracked file there
        // silently), so the scope check sees it.
        self.task_git(path, &["add", "-A", "--sparse"])?;
        if !keep_out.is_empty() {
            let literal: Vec<String> = keep_out.iter().map(|p| format!(":(literal){p}")).collect();
            let mut args = vec!["reset", "-q", "--"];
            args.extend(literal.iter().map(String::as_str));
            self.task_git(path, &args)?;
        }
        let started = std::time::Instant::now();
        let staged = self.staged_changes(path)?;
        crate::trace::step("staged", started);
        if let Staged::Changes { nested, .. } = &staged {
            if !nested.is_empty() {
                // Unstaged again, so that once its `.git` is gone the next
                // `add -A` stages its files instead of the gitlink.
                let mut args = vec!["reset", "-q", "--"];
                args.extend(nested.iter().map(String::as_str));
                self.task_git(path, &args)?;
                let list: Vec<String> = nested.iter().map(|p| format!("`{p}`")).collect();
                return Err(anyhow!(
                    "the worktree `{}` holds a git repository of its own at {} (a `git init` \
                     or `git clone` there): git would commit it as a gitlink, without its \
                     files, so nothing was committed; move it out of the worktree, or remove \
                     its `.git` to make its files plain files",
                    path.display(),
                    list.join(", ")
                ));
            }
        }
        if let Staged::Changes {
            tree: Some(tree), ..
        } = staged
        {
            if let Some(head) = self.commit_in_process(path, tree, message)? {
                return Ok(head);
            }
        }
        if staged != Staged::Nothing {
            let mut cmd = self.task_command(path, &["commit", "-q", "-m", message]);
            // Only what neither the environment nor the config provides.
            for (var, key, fallback) in [
                ("GIT_AUTHOR_NAME", "user.name", "git-orch"),
                ("GIT_AUTHOR_EMAIL", "user.email", "git-orch@localhost"),
                ("GIT_COMMITTER_NAME", "user.name", "git-orch"),
                ("GIT_COMMITTER_EMAIL", "user.email", "git-orch@localhost"),
            ] {
                if std::env::var_os(var).is_none() && self.config_string(key).is_none() {
                    cmd.env(var, fallback);
                }
            }
            let started = std::time::Instant::now();
            let out = cmd.output()?;
            crate::trace::step("git commit", started);
            if !out.status.success() {
                let text = String::from_utf8_lossy(&out.stderr).to_string()
                    + &String::from_utf8_lossy(&out.stdout);
                return Err(anyhow!(
                    "committing the task's changes failed: {}",
                    text.trim()
                ));
            }
        }
        let started = std::time::Instant::now();
        let worktree = git2::Repository::open(path)
            .with_context(|| format!("cannot open the worktree `{}`", path.display()))?;
        let head = worktree.head()?.peel_to_commit()?.id();
        crate::trace::step("head", started);
        Ok(head)
    }

    /// `git commit` of a worktree whose index's tree `git write-tree` just
    /// wrote, done in-process (a process, and git's refresh of the whole
    /// index, saved per task) when git would add nothing to it: no commit
    /// hook to run, no signing, and an identity from the environment or
    /// `user.*` alone, with no `git -c` (which libgit2 does not read), no
    /// `author.*`/`committer.*` keys and no dates given. `None`: git's turn.
    fn commit_in_process(&self, path: &Path, tree: Oid, message: &str) -> Result<Option<Oid>> {
        let given = |var: &str| std::env::var_os(var).is_some();
        if given("GIT_CONFIG_PARAMETERS") || given("GIT_CONFIG_COUNT") {
            return Ok(None);
        }
        let (Some(author_time), Some(commit_time)) = (
            when_given("GIT_AUTHOR_DATE"),
            when_given("GIT_COMMITTER_DATE"),
        ) else {
            return Ok(None);
        };
        let hooks = self.hooks_dir();
        if [
            "pre-commit",
            "prepare-commit-msg",
            "commit-msg",
            "post-commit",
        ]
        .iter()
        .any(|h| is_executable(&hooks.join(h)))
        {
            return Ok(None);
        }
        let worktree = git2::Repository::open(path)?;
        let config = worktree.config()?.snapshot()?;
        if config.get_bool("commit.gpgsign").unwrap_or(false)
            || [
                "author.name",
                "author.email",
                "committer.name",
                "committer.email",
                "i18n.commitEncoding",
            ]
            .iter()
            .any(|k| config.get_str(k).is_ok())
        {
            return Ok(None);
        }
        let ident = |var: &str, key: &str| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .or_else(|| config.get_string(key).ok())
        };
        let (Some(author_name), Some(author_email), Some(name), Some(email)) = (
            ident("GIT_AUTHOR_NAME", "user.name"),
            ident("GIT_AUTHOR_EMAIL", "user.email"),
            ident("GIT_COMMITTER_NAME", "user.name"),
            ident("GIT_COMMITTER_EMAIL", "user.email"),
        ) else {
            return Ok(None);
        };
        let head = worktree.head()?;
        let Some(branch) = head
            .name()
            .filter(|n| n.starts_with("refs/heads/"))
            .map(str::to_string)
        else {
            return Ok(None);
        };
        let parent = head.peel_to_commit()?;
        let signed = |name: &str, email: &str, at: Option<git2::Time>| match at {
            Some(at) => git2::Signature::new(name, email, &at),
            None => git2::Signature::now(name, email),
        };
        let author = signed(&author_name, &author_email, author_time)?;
        let committer = signed(&name, &email, commit_time)?;
        let tree = worktree.find_tree(tree)?;
        let id = worktree.commit(
            None,
            &author,
            &committer,
            &format!("{message}\n"),
            &tree,
            &[&parent],
        )?;
        // Through cas_ref, which names the ref in the plan's writer lock
        // while it writes: a runner killed mid-write (by kill -9, or by
        // another thread's crash) leaves a `.lock` the next command knows
        // for a dead writer's and clears, where a direct libgit2 write left
        // one that wedged the next repair.
        self.cas_ref(
            &branch,
            id,
            Some(parent.id()),
            &format!("commit: {message}"),
        )?;
        Ok(Some(id))
    }

    /// Whether the worktree's index differs from its HEAD, and which staged
    /// paths became gitlinks (a repository of its own, that `add -A` records
    /// without its files). The index's tree comes from `git write-tree`,
    /// which rehashes only the directories `add -A` touched (its cache of
    /// trees) and keeps that cache in the index for the commit: libgit2
    /// rebuilt every tree, 13 ms on 1,000 directories against 6 ms. Falls
    /// back to git, which tells only the first, when no tree can be written
    /// (unmerged entries).
    fn staged_changes(&self, path: &Path) -> Result<Staged> {
        let in_index = || -> Result<(Oid, Oid)> {
            let tree = Oid::from_str(self.task_git(path, &["write-tree"])?.trim())?;
            let head = git2::Repository::open(path)?.head()?.peel_to_tree()?.id();
            Ok((head, tree))
        };
        match in_index() {
            Ok((head, tree)) if head == tree => Ok(Staged::Nothing),
            Ok((head, tree)) => {
                let nested = self
                    .tree_changes(head, tree)?
                    .into_iter()
                    .filter(|c| {
                        c.new_mode == Some(super::MODE_GITLINK)
                            && c.old_mode != Some(super::MODE_GITLINK)
                    })
                    .map(|c| c.path)
                    .collect();
                Ok(Staged::Changes {
                    nested,
                    tree: Some(tree),
                })
            }
            Err(_) => {
                let out = self
                    .task_command(path, &["diff", "--cached", "--quiet"])
                    .output()?;
                Ok(if out.status.code() == Some(1) {
                    Staged::Changes {
                        nested: Vec::new(),
                        tree: None,
                    }
                } else {
                    Staged::Nothing
                })
            }
        }
    }

    /// Points a worktree's HEAD at its current commit, detached, without
    /// touching its files or index (so its branch is free again).
    pub fn detach_head(&self, path: &Path) -> Result<()> {
        let worktree = git2::Repository::open(path)
            .with_context(|| format!("cannot open the worktree `{}`", path.display()))?;
        let head = worktree.head()?.peel_to_commit()?.id();
        // Replaced whole by a rename rather than through `HEAD.lock`
        // (libgit2's way, and git's): a runner killed mid-write leaves a
        // stray temporary file, never a lock that wedges the next checkout.
        // Nothing else writes the HEAD of a worktree git-orch is parking.
        let admin = worktree.path().to_path_buf();
        let tmp = admin.join(format!("HEAD.orch-{}", std::process::id()));
        std::fs::write(&tmp, format!("{head}\n"))
            .with_context(|| format!("cannot write `{}`", tmp.display()))?;
        std::fs::rename(&tmp, admin.join("HEAD"))
            .with_context(|| format!("cannot detach the HEAD of `{}`", path.display()))?;
        Ok(())
    }

    /// Writes the HEAD of the linked worktree whose admin dir is `admin`,
    /// found from git-orch's side, never through the worktree's own `.git`
    /// file (a task may rewrite that to name another checkout's admin dir):
    /// attached to `branch` (a full ref name), or detached at `at`.
    pub fn write_worktree_head(&self, admin: &Path, branch: Option<&str>, at: Oid) -> Result<()> {
        let ours = std::fs::canonicalize(self.common_dir.join("worktrees")).ok();
        let admin = std::fs::canonicalize(admin)
            .with_context(|| format!("the worktree admin dir `{}` is gone", admin.display()))?;
        if ours.is_none_or(|w| admin.parent() != Some(w.as_path())) {
            return Err(anyhow!(
                "`{}` is no worktree admin dir of this repository",
                admin.display()
            ));
        }
        let text = match branch {
            Some(b) => format!("ref: {b}\n"),
            None => format!("{at}\n"),
        };
        let tmp = admin.join(format!("HEAD.orch-{}", std::process::id()));
        std::fs::write(&tmp, text).with_context(|| format!("cannot write `{}`", tmp.display()))?;
        std::fs::rename(&tmp, admin.join("HEAD"))
            .with_context(|| format!("cannot write the HEAD in `{}`", admin.display()))?;
        Ok(())
    }

    /// `git worktree move`, in-process where it is two file operations: the
    /// directory renamed, and git's record of where it is (`gitdir` in its
    /// admin dir) rewritten, as git does. A worktree with relative links
    /// (`worktree.useRelativePaths`), a locked one, or a move across file
    /// systems goes to git itself.
    pub fn move_worktree(&self, from: &Path, to: &Path) -> Result<()> {
        let by_git = || {
            self.git(&[
                "worktree",
                "move",
                &from.to_string_lossy(),
                &to.to_string_lossy(),
            ])
            .map(|_| ())
        };
        let link = std::fs::read_to_string(from.join(".git")).unwrap_or_default();
        let Some(admin) = link
            .strip_prefix("gitdir:")
            .map(|d| PathBuf::from(d.trim()))
            .filter(|d| d.is_absolute())
        else {
            return by_git();
        };
        let recorded = std::fs::read_to_string(admin.join("gitdir")).unwrap_or_default();
        if !Path::new(recorded.trim()).is_absolute()
            || admin.join("locked").exists()
            || to.exists()
            || !to.is_absolute()
        {
            return by_git();
        }
        if std::fs::rename(from, to).is_err() {
            return by_git();
        }
        crate::failpoint!("worktree-move-renamed");
        let tmp = admin.join(format!("gitdir.orch-{}", std::process::id()));
        std::fs::write(&tmp, format!("{}\n", to.join(".git").display()))
            .and_then(|_| std::fs::rename(&tmp, admin.join("gitdir")))
            .with_context(|| format!("cannot record the move of `{}`", from.display()))?;
        Ok(())
    }

    /// Makes a worktree's files match `snapshot` while its index and HEAD stay
    /// at the branch: how a preserved dirty worktree is brought back.
    pub fn restore_snapshot(&self, path: &Path, snapshot: Oid) -> Result<()> {
        self.task_git(path, &["read-tree", "-u", "--reset", &snapshot.to_string()])?;
        self.task_git(path, &["reset", "-q"])?;
        Ok(())
    }

    pub fn orch_dir_created(&self) -> Result<PathBuf> {
        let dir = self.orch_dir();
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
        Ok(dir)
    }
}

/// The git repositories of their own (a `.git` directory: a `git init` or
/// `git clone`, not a submodule's `.git` file) inside a worktree, given its
/// `git status --porcelain -z`: tracked as gitlinks, or inside untracked
/// directories. Only those directories are walked, not the whole tree.
fn nested_repositories(worktree: &Path, status: &str) -> Vec<String> {
    let is_repo = |rel: &str| worktree.join(rel).join(".git").is_dir();
    let mut found = Vec::new();
    if let Ok(index) = git2::Repository::open(worktree).and_then(|r| r.index()) {
        for entry in index.iter() {
            let rel = String::from_utf8_lossy(&entry.path).into_owned();
            if entry.mode == 0o160000 && is_repo(&rel) {
                found.push(rel);
            }
        }
    }
    let mut entries = status.split('\0');
    while let Some(entry) = entries.next() {
        let xy = entry.as_bytes().get(..2).unwrap_or_default();
        if xy.contains(&b'R') || xy.contains(&b'C') {
            entries.next(); // the rename's source
            continue;
        }
        let Some(dir) = entry.strip_prefix("?? ").filter(|p| p.ends_with('/')) else {
            continue;
        };
        let mut walk = walkdir::WalkDir::new(worktree.join(dir)).into_iter();
        while let Some(Ok(e)) = walk.next() {
            if e.file_type().is_dir() && e.path().join(".git").is_dir() {
                if let Ok(rel) = e.path().strip_prefix(worktree) {
                    found.push(rel.to_string_lossy().into_owned());
                }
                walk.skip_current_dir();
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// A date from `GIT_AUTHOR_DATE`/`GIT_COMMITTER_DATE` in the forms that
/// need no time zone of the machine's: `@<seconds> [±hhmm]`, and ISO 8601
/// with `Z` or an offset. `Some(None)`: not set (now); `None`: set in
/// another form, which only git itself reads right.
fn when_given(var: &str) -> Option<Option<git2::Time>> {
    let Ok(text) = std::env::var(var) else {
        return Some(None);
    };
    parse_git_date(text.trim()).map(Some)
}

fn parse_git_date(text: &str) -> Option<git2::Time> {
    let offset_minutes = |z: &str| -> Option<i32> {
        if z == "Z" || z == "z" {
            return Some(0);
        }
        let (sign, rest) = match z.as_bytes().first()? {
            b'+' => (1, &z[1..]),
            b'-' => (-1, &z[1..]),
            _ => return None,
        };
        let digits: String = rest.chars().filter(|c| *c != ':').collect();
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (h, m) = (
            digits[..2].parse::<i32>().ok()?,
            digits[2..].parse::<i32>().ok()?,
        );
        (h < 24 && m < 60).then_some(sign * (h * 60 + m))
    };
    if let Some(rest) = text.strip_prefix('@') {
        let mut parts = rest.split_whitespace();
        let seconds = parts.next()?.parse::<i64>().ok()?;
        let offset = parts.next().map_or(Some(0), offset_minutes)?;
        return parts
            .next()
            .is_none()
            .then(|| git2::Time::new(seconds, offset));
    }
    // YYYY-MM-DD[T ]HH:MM:SS then Z or an offset.
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let offset = offset_minutes(text.get(19..)?.trim())?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let local = days * 86_400 + h * 3600 + mi * 60 + s;
    Some(git2::Time::new(local - i64::from(offset) * 60, offset))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether two paths name one directory (symlinks resolved when both exist).
fn same_path(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The admin dir of a linked worktree (`.git/worktrees/<name>`), from the
/// `gitdir:` line of its `.git` file.
fn worktree_admin_dir(path: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(path.join(".git")).ok()?;
    let dir = text.strip_prefix("gitdir:")?.trim();
    let dir = PathBuf::from(dir);
    Some(if dir.is_absolute() {
        dir
    } else {
        path.join(dir)
    })
}

#[cfg(test)]
mod tests {
    use super::parse_git_date;

    #[test]
    fn git_dates_in_zone_free_forms_parse_as_git_reads_them() {
        let at = |t: &str| parse_git_date(t).map(|t| (t.seconds(), t.offset_minutes()));
        assert_eq!(at("2026-01-01T00:00:00Z"), Some((1_767_225_600, 0)));
        assert_eq!(at("2026-01-01 02:00:00 +02:00"), Some((1_767_225_600, 120)));
        assert_eq!(at("2000-02-29T12:30:00-0130"), Some((951_832_800, -90)));
        assert_eq!(at("@1767225600 +0000"), Some((1_767_225_600, 0)));
        assert_eq!(at("@1767225600"), Some((1_767_225_600, 0)));
        // Forms that need the machine's zone, or git's own parser.
        assert_eq!(at("2026-01-01T00:00:00"), None);
        assert_eq!(at("yesterday"), None);
        assert_eq!(at("Thu, 01 Jan 2026 00:00:00 +0000"), None);
        assert_eq!(at("2026-13-01T00:00:00Z"), None);
    }
}
