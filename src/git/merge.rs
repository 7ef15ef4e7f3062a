//! Landing without a working tree: `git merge-tree --write-tree` computes
//! the merged tree from objects alone (about 10 ms whatever the repository's
//! size) and reports conflicts; the commit is then written directly.

use anyhow::{anyhow, Result};
use git2::Oid;

use super::Repo;

pub enum TreeMerge {
    Clean(Oid),
    Conflict(Vec<String>),
}

impl Repo {
    /// Merges `theirs` into `ours` (commits); `base` overrides the merge base
    /// (used to replay one commit for a rebase).
    pub fn merge_tree(&self, ours: Oid, theirs: Oid, base: Option<Oid>) -> Result<TreeMerge> {
        let ours_s = ours.to_string();
        let theirs_s = theirs.to_string();
        let base_arg = base.map(|b| format!("--merge-base={b}"));
        let mut args = vec!["merge-tree", "--write-tree", "--no-messages", "--name-only"];
        if let Some(b) = &base_arg {
            args.push(b);
        }
        args.push(&ours_s);
        args.push(&theirs_s);
        let started = std::time::Instant::now();
        let out = self.command_in(&self.root, &args).output()?;
        crate::trace::step("git merge-tree", started);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut lines = stdout.lines();
        let tree = lines.next().and_then(|l| Oid::from_str(l.trim()).ok());
        match (out.status.code(), tree) {
            (Some(0), Some(tree)) => Ok(TreeMerge::Clean(tree)),
            (Some(1), Some(_)) => {
                let mut files: Vec<String> = lines
                    .take_while(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect();
                files.dedup();
                Ok(TreeMerge::Conflict(files))
            }
            _ => Err(anyhow!(
                "`git merge-tree` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
        }
    }

    /// Writes a commit object (no ref moves).
    pub fn write_commit(
        &self,
        tree: Oid,
        parents: &[Oid],
        message: &str,
        author: Option<&git2::Signature<'_>>,
    ) -> Result<Oid> {
        let committer = self.signature()?;
        let author = match author {
            Some(a) => a.to_owned(),
            None => committer.clone(),
        };
        let tree = self.git.find_tree(tree)?;
        let parents: Vec<git2::Commit> = parents
            .iter()
            .map(|p| self.git.find_commit(*p))
            .collect::<Result<_, _>>()?;
        let refs: Vec<&git2::Commit> = parents.iter().collect();
        Ok(self
            .git
            .commit(None, &author, &committer, message, &tree, &refs)?)
    }

    /// First-parent commits from `from` (exclusive) to `to`, oldest first.
    pub fn commits_between(&self, from: Oid, to: Oid) -> Result<Vec<Oid>> {
        let mut walk = self.git.revwalk()?;
        walk.push(to)?;
        walk.hide(from)?;
        walk.simplify_first_parent()?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
        Ok(walk.collect::<Result<Vec<_>, _>>()?)
    }
}
