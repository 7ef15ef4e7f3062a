//! The only door to git. Reads and object writes go through libgit2 (no
//! process to spawn, 10-20x cheaper for refs); worktrees, checkouts and
//! merges go through the `git` binary, which runs hooks and filters, knows
//! sparse checkout, and whose `merge-tree --write-tree` is flat in repository
//! size where libgit2's merge is not (see shared/research/perf.md).

mod merge;
mod quarantine;
mod refs;
pub mod relay;
pub mod version;
mod worktree;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, Context, Result};
use git2::{ErrorCode, Oid, Repository};

use crate::error::{refuse, refuse_with_hint};

pub use merge::TreeMerge;
pub use refs::{RefEdit, RefLocked, RefRace};
pub use worktree::TASK_SAFE;

const MODE_TREE: i32 = 0o040000;
/// A gitlink: a commit of another repository recorded in a tree.
pub const MODE_GITLINK: i32 = 0o160000;

/// One path that differs between two trees; a mode is `None` on the side
/// where the path is absent (or is a directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeChange {
    pub path: String,
    pub old_mode: Option<i32>,
    pub new_mode: Option<i32>,
}

/// The paths of `changes`, each once, sorted.
pub fn paths_of(changes: &[TreeChange]) -> Vec<String> {
    let mut paths: Vec<String> = changes.iter().map(|c| c.path.clone()).collect();
    paths.dedup();
    paths
}

/// Environment variables a hook or a parent git may have set that would
/// point a child git at the wrong repository or index.
const LEAKY_GIT_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
];

pub struct Repo {
    pub git: Repository,
    /// The main worktree's root (`ORCH_REPO`); the common dir for a bare repo.
    pub root: PathBuf,
    /// `$GIT_COMMON_DIR`: shared by every worktree, home of `orch/`.
    pub common_dir: PathBuf,
}

impl Repo {
    /// Finds the repository containing `dir`, refusing the shapes we cannot serve.
    pub fn discover(dir: &Path) -> Result<Repo> {
        // git itself does not rehash objects on every read; libgit2 does by
        // default, which costs more than the rest of a `status`.
        git2::opts::strict_hash_verification(false);
        let git = match Repository::discover(dir) {
            Ok(repo) => repo,
            Err(e) if e.code() == ErrorCode::NotFound => {
                return Err(refuse_with_hint(
                    format!("not a git repository: {}", dir.display()),
                    "run git orch inside a repository, or create one with `git init`",
                ))
            }
            Err(e) if e.message().contains("refstorage") || e.message().contains("reftable") => {
                return Err(refuse_with_hint(
                    "this repository uses the reftable ref format, which git-orch cannot read yet",
                    "convert it with `git refs migrate --ref-format=files` (git 2.48 or later \
                     once it has reflogs), or work in a clone: `git clone --ref-format=files`",
                ))
            }
            Err(e) => {
                return Err(anyhow!(
                    "cannot open repository at {}: {}",
                    dir.display(),
                    e.message()
                ))
            }
        };
        let common_dir = absolute(git.commondir());
        let root = if git.is_bare() {
            common_dir.clone()
        } else if git.is_worktree() {
            common_dir
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| common_dir.clone())
        } else {
            git.workdir()
                .map(absolute)
                .unwrap_or_else(|| common_dir.clone())
        };
        Ok(Repo {
            git,
            root,
            common_dir,
        })
    }

    /// Where git-orch keeps its private files (worktrees, pid files, temp indexes).
    pub fn orch_dir(&self) -> PathBuf {
        self.common_dir.join("orch")
    }

    /// Resolves a revision to a commit, or refuses naming it.
    pub fn resolve_commit(&self, rev: &str) -> Result<Oid> {
        let obj = self.git.revparse_single(rev).map_err(|_| {
            refuse_with_hint(
                format!("unknown revision `{rev}`"),
                "name a branch, tag or commit id",
            )
        })?;
        let commit = obj
            .peel_to_commit()
            .map_err(|_| refuse(format!("`{rev}` does not name a commit")))?;
        Ok(commit.id())
    }

    /// The commit HEAD points at; refuses an unborn HEAD (a repository without commits).
    pub fn head_commit(&self) -> Result<Oid> {
        match self.git.head() {
            Ok(head) => head
                .peel_to_commit()
                .map(|c| c.id())
                .map_err(|e| anyhow!("HEAD does not point at a commit: {}", e.message())),
            Err(e) if e.code() == ErrorCode::UnbornBranch || e.code() == ErrorCode::NotFound => {
                Err(refuse_with_hint(
                    "this repository has no commits yet",
                    "make a first commit, then start the plan",
                ))
            }
            Err(e) => Err(anyhow!("cannot read HEAD: {}", e.message())),
        }
    }

    pub fn tree_of(&self, commit: Oid) -> Result<Oid> {
        Ok(self
            .git
            .find_commit(commit)
            .with_context(|| format!("commit {commit} is missing"))?
            .tree_id())
    }

    pub fn is_ancestor(&self, ancestor: Oid, descendant: Oid) -> bool {
        ancestor == descendant
            || self
                .git
                .graph_descendant_of(descendant, ancestor)
                .unwrap_or(false)
    }

    /// Reads a blob by path from a tree; `None` when absent.
    pub fn read_path(&self, tree: Oid, path: &str) -> Result<Option<Vec<u8>>> {
        let tree = self.git.find_tree(tree)?;
        match tree.get_path(Path::new(path)) {
            Ok(entry) => {
                let blob = self
                    .git
                    .find_blob(entry.id())
                    .with_context(|| format!("`{path}` is not a file"))?;
                Ok(Some(blob.content().to_vec()))
            }
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Paths changed between two commits' trees (renames as delete + add).
    pub fn changed_paths(&self, from: Oid, to: Oid) -> Result<Vec<String>> {
        let a = self.git.find_commit(from)?.tree_id();
        let b = self.git.find_commit(to)?.tree_id();
        Ok(paths_of(&self.tree_changes(a, b)?))
    }

    /// What differs between two trees, entry by entry: content, mode (an
    /// executable bit, a file turned into a link) or kind. Descends only
    /// into subtrees whose ids differ: the cost follows the change, not the
    /// repository (libgit2's tree diff walks every entry, 40 ms on 20,000
    /// files). Sorted by path.
    pub fn tree_changes(&self, from: Oid, to: Oid) -> Result<Vec<TreeChange>> {
        let mut out = Vec::new();
        self.diff_trees(Some(from), Some(to), "", &mut out)?;
        out.sort_by(|x, y| x.path.cmp(&y.path));
        Ok(out)
    }

    fn diff_trees(
        &self,
        a: Option<Oid>,
        b: Option<Oid>,
        prefix: &str,
        out: &mut Vec<TreeChange>,
    ) -> Result<()> {
        if a == b {
            return Ok(());
        }
        let entries = |id: Option<Oid>| -> Result<BTreeMap<String, (Oid, i32)>> {
            let Some(id) = id else {
                return Ok(BTreeMap::new());
            };
            let tree = self.git.find_tree(id)?;
            Ok(tree
                .iter()
                .map(|e| {
                    let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
                    (name, (e.id(), e.filemode()))
                })
                .collect())
        };
        let (left, right) = (entries(a)?, entries(b)?);
        let names: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
        for name in names {
            let (l, r) = (left.get(name), right.get(name));
            if l == r {
                continue;
            }
            let path = format!("{prefix}{name}");
            // A side that is a tree contributes its paths; a side that is a
            // file, a link or a gitlink (or absent) contributes the path.
            let is_tree = |e: &&(Oid, i32)| e.1 == MODE_TREE;
            let (l_tree, r_tree) = (l.filter(is_tree), r.filter(is_tree));
            if l_tree.is_some() || r_tree.is_some() {
                self.diff_trees(
                    l_tree.map(|e| e.0),
                    r_tree.map(|e| e.0),
                    &format!("{path}/"),
                    out,
                )?;
            }
            let (l_leaf, r_leaf) = (l.filter(|e| !is_tree(e)), r.filter(|e| !is_tree(e)));
            if l_leaf.is_some() || r_leaf.is_some() {
                out.push(TreeChange {
                    path,
                    old_mode: l_leaf.map(|e| e.1),
                    new_mode: r_leaf.map(|e| e.1),
                });
            }
        }
        Ok(())
    }

    /// The committer git itself would use (`GIT_COMMITTER_NAME`/`_EMAIL`,
    /// then `user.name`/`user.email`), or git-orch's own when none is set, so
    /// that a fresh machine can still record state.
    pub fn signature(&self) -> Result<git2::Signature<'static>> {
        let pick = |var: &str, key: &str, fallback: &str| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .or_else(|| self.config_string(key))
                .unwrap_or_else(|| fallback.to_string())
        };
        let name = pick("GIT_COMMITTER_NAME", "user.name", "git-orch");
        let email = pick("GIT_COMMITTER_EMAIL", "user.email", "git-orch@localhost");
        Ok(git2::Signature::now(&name, &email)?)
    }

    /// The hooks directory (`core.hooksPath` or the common dir's `hooks`),
    /// asked of git once per process, which alone knows every config scope.
    pub fn hooks_dir(&self) -> PathBuf {
        static ASKED: std::sync::Mutex<BTreeMap<PathBuf, PathBuf>> =
            std::sync::Mutex::new(BTreeMap::new());
        let mut asked = ASKED.lock().unwrap_or_else(|p| p.into_inner());
        asked
            .entry(self.root.clone())
            .or_insert_with(|| {
                self.git_in(&self.root, &["rev-parse", "--git-path", "hooks"])
                    .map(|p| {
                        let p = PathBuf::from(p.trim());
                        if p.is_absolute() {
                            p
                        } else {
                            self.root.join(p)
                        }
                    })
                    .unwrap_or_else(|_| self.common_dir.join("hooks"))
            })
            .clone()
    }

    pub fn config_string(&self, key: &str) -> Option<String> {
        self.git.config().ok()?.get_string(key).ok()
    }

    /// Runs `git` in `dir` and returns its stdout; stderr becomes the error.
    /// In the C locale: a clash is told from git's message (below).
    pub fn git_in(&self, dir: &Path, args: &[&str]) -> Result<String> {
        let mut attempt = 0;
        loop {
            let started = std::time::Instant::now();
            let out = self
                .command_c(dir, args)
                .stdin(Stdio::null())
                .output()
                .with_context(|| {
                    format!("cannot run `git {}`; is git installed?", args.join(" "))
                })?;
            crate::trace::step(&format!("git {}", subcommand(args)), started);
            if out.status.success() {
                return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            // git dies when it lists the worktrees while another process is
            // half-way through `git worktree add` (an empty `commondir`),
            // before changing anything: such a clash is retried.
            attempt += 1;
            if attempt < 40 && first.contains("failed to read") && first.contains("worktrees/") {
                std::thread::sleep(std::time::Duration::from_millis(2 + attempt % 7));
                continue;
            }
            return Err(anyhow!("`git {}` failed: {}", args.join(" "), first));
        }
    }

    /// git's own housekeeping (`gc --auto`: it does nothing below git's
    /// thresholds), in the foreground, at a point where this process moves
    /// no worktree: the end of a run or a phase. It never prunes worktree
    /// admin dirs, which git-orch manages itself and other runners may be
    /// moving. Failures are ignored: housekeeping is never the work.
    pub fn maintain(&self) {
        let started = std::time::Instant::now();
        crate::trace::spawned();
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(&self.root)
            .args([
                "-c",
                "gc.worktreePruneExpire=never",
                "-c",
                "gc.autoDetach=false",
                "gc",
                "--auto",
                "--quiet",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for var in LEAKY_GIT_ENV {
            cmd.env_remove(var);
        }
        let _ = cmd.status();
        crate::trace::step("git gc --auto", started);
    }

    /// Runs `git` in the main worktree with its output going straight to
    /// this process's stdout and stderr (a diff shown to a person: git's
    /// pager and colours as the user set them); whether it succeeded.
    pub fn git_to_stdout(&self, args: &[&str]) -> Result<bool> {
        let status = self
            .command_in(&self.root, args)
            .stdin(Stdio::inherit())
            .status()
            .with_context(|| format!("cannot run `git {}`; is git installed?", args.join(" ")))?;
        Ok(status.success())
    }

    /// Runs `git` in the main worktree.
    pub fn git(&self, args: &[&str]) -> Result<String> {
        self.git_in(&self.root, args)
    }

    /// A `git` command in `dir`, cleaned of variables that would redirect it.
    /// It never starts git's automatic maintenance: a `gc --auto` that a
    /// task's commit sets off in the background races the runner's moves of
    /// worktrees (about one 1,000-task run in two failed that way), so
    /// git-orch runs maintenance itself, see [`Repo::maintain`].
    pub fn command_in(&self, dir: &Path, args: &[&str]) -> Command {
        crate::trace::spawned();
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(dir)
            .args(["-c", "gc.auto=0", "-c", "maintenance.auto=false"])
            .args(args);
        for var in LEAKY_GIT_ENV {
            cmd.env_remove(var);
        }
        cmd
    }

    /// A `git` command whose stderr decides something: git translates its
    /// messages, so it runs in the C locale (and its hooks with it).
    pub fn command_c(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = self.command_in(dir, args);
        cmd.env("LC_ALL", "C");
        cmd
    }
}

/// Environment for a process git-orch starts (a task) whose own git
/// commands must not set off git's automatic maintenance either (see
/// [`Repo::command_in`]): two more `GIT_CONFIG_KEY_n` entries after any
/// the user passed with `git -c`.
pub fn no_auto_maintenance_env() -> Vec<(String, String)> {
    let n: usize = std::env::var("GIT_CONFIG_COUNT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    vec![
        (format!("GIT_CONFIG_KEY_{n}"), "gc.auto".into()),
        (format!("GIT_CONFIG_VALUE_{n}"), "0".into()),
        (
            format!("GIT_CONFIG_KEY_{}", n + 1),
            "maintenance.auto".into(),
        ),
        (format!("GIT_CONFIG_VALUE_{}", n + 1), "false".into()),
        ("GIT_CONFIG_COUNT".into(), (n + 2).to_string()),
    ]
}

/// Removes the variables a hook's environment carries into child processes
/// that run in other worktrees (gates, tasks).
pub fn scrub_git_env(cmd: &mut Command) {
    for var in LEAKY_GIT_ENV {
        cmd.env_remove(var);
    }
}

/// The git subcommand of `args` (past any `-c key=value`), for the trace.
fn subcommand(args: &[&str]) -> String {
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if *arg == "-c" {
            rest.next();
        } else if matches!(*arg, "worktree" | "sparse-checkout") {
            return format!("{arg} {}", rest.next().unwrap_or(&""));
        } else {
            return arg.to_string();
        }
    }
    String::new()
}

fn absolute(p: &Path) -> PathBuf {
    let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    // libgit2 hands out paths with a trailing slash; keep ours clean.
    PathBuf::from(p.to_string_lossy().trim_end_matches('/'))
}

/// The short form of a commit id (one spelling for all of git-orch).
pub fn short(oid: Oid) -> String {
    crate::state::CommitId::from(oid).short()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit whose tree holds `files` (path → content), on no parent.
    fn commit(repo: &Repository, files: &[(&str, &str)]) -> Oid {
        let files: Vec<(&str, &str, u32)> = files.iter().map(|(p, c)| (*p, *c, 0o100644)).collect();
        commit_modes(repo, &files)
    }

    /// [`commit`] with each entry's mode.
    fn commit_modes(repo: &Repository, files: &[(&str, &str, u32)]) -> Oid {
        let mut index = git2::Index::new().expect("index");
        for (path, content, mode) in files {
            let blob = repo.blob(content.as_bytes()).expect("blob");
            let entry = git2::IndexEntry {
                ctime: git2::IndexTime::new(0, 0),
                mtime: git2::IndexTime::new(0, 0),
                dev: 0,
                ino: 0,
                mode: *mode,
                uid: 0,
                gid: 0,
                file_size: 0,
                id: blob,
                flags: 0,
                flags_extended: 0,
                path: path.as_bytes().to_vec(),
            };
            index.add(&entry).expect("add");
        }
        let tree = index.write_tree_to(repo).expect("tree");
        let tree = repo.find_tree(tree).expect("find tree");
        let sig = git2::Signature::now("t", "t@x").expect("sig");
        repo.commit(None, &sig, &sig, "t", &tree, &[])
            .expect("commit")
    }

    /// git translates the messages `git_in` and `cas_delete` decide from.
    #[test]
    fn git_whose_stderr_decides_runs_in_the_c_locale() {
        let (_dir, repo) = temp_repo();
        // An alias that prints the environment git's children get.
        let env = repo
            .git(&["-c", "alias.showenv=!env", "showenv"])
            .expect("git showenv");
        assert!(env.lines().any(|l| l == "LC_ALL=C"), "{env}");
        let update_ref = repo.command_c(&repo.root.clone(), &["update-ref"]);
        assert!(update_ref
            .get_envs()
            .any(|(k, v)| k == "LC_ALL" && v == Some(std::ffi::OsStr::new("C"))));
    }

    /// A fresh repository in a temp dir (kept alive by the returned guard).
    fn temp_repo() -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().expect("tempdir");
        let git = Repository::init(dir.path()).expect("init");
        let repo = Repo {
            root: dir.path().to_path_buf(),
            common_dir: git.path().to_path_buf(),
            git,
        };
        (dir, repo)
    }

    #[test]
    fn changed_paths_matches_libgit2_diff_and_skips_nothing() {
        let (_dir, repo) = temp_repo();
        let before = commit(
            &repo.git,
            &[
                ("a.txt", "1"),
                ("src/x.rs", "x"),
                ("src/deep/y.rs", "y"),
                ("same/z", "z"),
                ("f", "file"),
            ],
        );
        let after = commit(
            &repo.git,
            &[
                ("a.txt", "2"),
                ("src/deep/y.rs", "y"),
                ("src/new.rs", "n"),
                ("same/z", "z"),
                ("f/inside", "dir now"),
            ],
        );
        let ours = repo.changed_paths(before, after).expect("diff");
        let a = repo
            .git
            .find_commit(before)
            .and_then(|c| c.tree())
            .expect("tree a");
        let b = repo
            .git
            .find_commit(after)
            .and_then(|c| c.tree())
            .expect("tree b");
        let diff = repo
            .git
            .diff_tree_to_tree(Some(&a), Some(&b), None)
            .expect("diff");
        let mut theirs: Vec<String> = diff
            .deltas()
            .flat_map(|d| [d.old_file().path(), d.new_file().path()])
            .flatten()
            .filter_map(|p| p.to_str().map(str::to_string))
            .collect();
        theirs.sort();
        theirs.dedup();
        assert_eq!(ours, theirs);
        assert_eq!(
            ours,
            vec!["a.txt", "f", "f/inside", "src/new.rs", "src/x.rs"]
        );
    }

    #[test]
    fn changed_paths_sees_a_mode_change_and_a_file_turned_into_a_link() {
        let (_dir, repo) = temp_repo();
        // Same blobs on both sides: only the modes differ.
        let before = commit_modes(
            &repo.git,
            &[
                ("run.sh", "echo", 0o100644),
                ("x", "/etc/passwd", 0o100644),
                ("same", "s", 0o100755),
            ],
        );
        let after = commit_modes(
            &repo.git,
            &[
                ("run.sh", "echo", 0o100755),
                ("x", "/etc/passwd", 0o120000),
                ("same", "s", 0o100755),
            ],
        );
        let changes = repo
            .tree_changes(
                repo.git.find_commit(before).expect("a").tree_id(),
                repo.git.find_commit(after).expect("b").tree_id(),
            )
            .expect("diff");
        assert_eq!(
            changes,
            vec![
                TreeChange {
                    path: "run.sh".into(),
                    old_mode: Some(0o100644),
                    new_mode: Some(0o100755)
                },
                TreeChange {
                    path: "x".into(),
                    old_mode: Some(0o100644),
                    new_mode: Some(0o120000)
                },
            ]
        );
    }
}
