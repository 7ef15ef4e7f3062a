//! Objects a sandboxed command wrote, kept apart from the repository's own
//! store until the runner has checked them, as `git receive-pack` keeps a
//! push's objects in `incoming-*` until its checks pass. A task writes new
//! objects into its quarantine (`GIT_OBJECT_DIRECTORY`) and reads the
//! store through `GIT_ALTERNATE_OBJECT_DIRECTORIES`; the store itself is
//! read-only in its sandbox, so no object git already has can be rewritten.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use git2::Oid;

use super::Repo;

impl Repo {
    /// Copies every object of the quarantine at `dir` that the store lacks
    /// into the store, each one read back and hashed first: a file whose
    /// content is not the object its name claims (a forged loose object) is
    /// refused, and an object the store has is never written again. Returns
    /// how many objects were added.
    pub fn adopt_quarantine(&self, dir: &Path) -> Result<usize> {
        if !dir.is_dir() {
            return Ok(0);
        }
        let quarantine = git2::Odb::new()?;
        quarantine
            .add_disk_alternate(&dir.to_string_lossy())
            .with_context(|| format!("cannot read the objects in `{}`", dir.display()))?;
        let mut ids: Vec<Oid> = Vec::new();
        quarantine.foreach(|id| {
            ids.push(*id);
            true
        })?;
        let store = self.git.odb()?;
        let mut added = 0;
        for id in ids {
            if store.exists(id) {
                continue;
            }
            let object = quarantine
                .read(id)
                .map_err(|e| anyhow!("the object {id} it wrote cannot be read: {e}"))?;
            let hashed = Oid::hash_object(object.kind(), object.data())?;
            if hashed != id {
                return Err(anyhow!(
                    "the object file {id} it wrote holds another object ({hashed})"
                ));
            }
            store.write(object.kind(), object.data())?;
            added += 1;
        }
        Ok(added)
    }

    /// Whether the store holds `id` as a commit.
    pub fn has_commit(&self, id: Oid) -> bool {
        self.git.find_commit(id).is_ok()
    }
}
