//! Trust: a plan runs no command that this user did not approve on this
//! machine (issue 13). What is approved is the hash of every command the
//! plan can run ([`crate::plan::Plan::commands`]); approvals live outside
//! every repository, one file each, as direnv's allow store and mise's
//! trusted-configs do:
//!
//! `$XDG_DATA_HOME/git-orch/trust/<sha256(repo NUL plan NUL hash)>.json`
//! (default `~/.local/share/git-orch/trust/`), where `repo` is the
//! canonical path of the repository's common dir. The file holds the same
//! three values (checked on read, so a file copied under another name
//! approves nothing) and the commands as approved, to say what changed.
//!
//! `git orch start FILE` records an approval: starting a plan from a file
//! is approving it. A plan whose state came from elsewhere (fetched, a
//! bundle, another clone's push) has no approval here, and one whose
//! commands differ from the last approved ones has none for its hash: both
//! run nothing until `git orch trust PLAN`. Only the latest approval of a
//! plan is kept, so a plan changed back to what it was asks again too.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use git2::Oid;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::refuse_with_hint;
use crate::git::Repo;
use crate::plan::{Plan, PlanCommand};
use crate::state::Snapshot;
use crate::ui;

/// One command as it was approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approved {
    pub source: String,
    pub run: String,
}

/// One approval: a file of the trust store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approval {
    pub repo: String,
    pub plan: String,
    pub hash: String,
    /// Seconds since the epoch.
    pub at: f64,
    /// `start` (started here from a file) or `trust` (`git orch trust`).
    pub by: String,
    pub commands: Vec<Approved>,
}

/// Whether a plan may run its commands here.
pub enum Verdict {
    Trusted(Approval),
    /// The plan runs no command: there is nothing to approve.
    NoCommands,
    /// No approval for these commands; `last` is the plan's last approval
    /// here, if it had one (its commands changed since).
    Untrusted {
        last: Option<Approval>,
    },
}

/// Where approvals live: `$XDG_DATA_HOME/git-orch/trust` (an absolute
/// `XDG_DATA_HOME` only, as the XDG spec says), else
/// `$HOME/.local/share/git-orch/trust`.
pub fn store_dir() -> Result<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".local").join("share"))
        })
        .ok_or_else(|| {
            refuse_with_hint(
                "cannot tell where trust approvals live: neither XDG_DATA_HOME nor HOME is set",
                "set HOME (approvals go to $HOME/.local/share/git-orch/trust)",
            )
        })?;
    Ok(data.join("git-orch").join("trust"))
}

/// The repository as approvals name it: its common dir's canonical path,
/// so every worktree of one repository shares its approvals.
pub fn repo_key(repo: &Repo) -> String {
    std::fs::canonicalize(&repo.common_dir)
        .unwrap_or_else(|_| repo.common_dir.clone())
        .to_string_lossy()
        .into_owned()
}

fn sha256_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0u8]);
        }
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn file_for(dir: &Path, repo: &str, plan: &str, hash: &str) -> PathBuf {
    dir.join(format!("{}.json", sha256_hex(&[repo, plan, hash])))
}

fn read(file: &Path) -> Option<Approval> {
    let bytes = std::fs::read(file).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Every approval in the store (files that do not parse are skipped).
fn all(dir: &Path) -> Vec<(PathBuf, Approval)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, Approval)> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| read(&p).map(|a| (p, a)))
        .collect();
    out.sort_by(|a, b| (&a.1.plan, &a.0).cmp(&(&b.1.plan, &b.0)));
    out
}

/// Whether `plan` (stored as `plan_name` in `repo`) may run its commands.
pub fn verdict(repo: &Repo, plan_name: &str, plan: &Plan) -> Result<Verdict> {
    let commands = plan.commands();
    if commands.is_empty() {
        return Ok(Verdict::NoCommands);
    }
    let hash = crate::plan::commands_hash(&commands);
    let dir = store_dir()?;
    let key = repo_key(repo);
    if let Some(a) = read(&file_for(&dir, &key, plan_name, &hash)) {
        if a.repo == key && a.plan == plan_name && a.hash == hash {
            return Ok(Verdict::Trusted(a));
        }
    }
    let last = all(&dir)
        .into_iter()
        .map(|(_, a)| a)
        .filter(|a| a.repo == key && a.plan == plan_name)
        .max_by(|a, b| a.at.total_cmp(&b.at));
    Ok(Verdict::Untrusted { last })
}

/// Whether this user approved `plan`'s very commands here (or it has none).
pub fn is_approved(repo: &Repo, plan_name: &str, plan: &Plan) -> bool {
    matches!(
        verdict(repo, plan_name, plan),
        Ok(Verdict::Trusted(_) | Verdict::NoCommands)
    )
}

/// Records the approval of `plan`'s commands; the plan's older approvals
/// here are removed (only the latest counts), and so are approvals of
/// repositories that no longer exist.
pub fn record(repo: &Repo, plan_name: &str, plan: &Plan, by: &str) -> Result<PathBuf> {
    let commands = plan.commands();
    let hash = crate::plan::commands_hash(&commands);
    let dir = store_dir()?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot make the trust store `{}`", dir.display()))?;
    let key = repo_key(repo);
    let approval = Approval {
        repo: key.clone(),
        plan: plan_name.to_string(),
        hash: hash.clone(),
        at: crate::state::now(),
        by: by.to_string(),
        commands: approved(&commands),
    };
    let file = file_for(&dir, &key, plan_name, &hash);
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("cannot write in the trust store `{}`", dir.display()))?;
    serde_json::to_writer_pretty(&mut tmp, &approval)?;
    tmp.persist(&file)
        .with_context(|| format!("cannot write `{}`", file.display()))?;
    for (path, a) in all(&dir) {
        let stale = a.repo == key && a.plan == plan_name && path != file;
        if stale || !Path::new(&a.repo).exists() {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(file)
}

/// Removes every approval of `plan_name` in `repo`; how many there were.
pub fn revoke(repo: &Repo, plan_name: &str) -> Result<usize> {
    let key = repo_key(repo);
    let mut n = 0;
    for (path, a) in all(&store_dir()?) {
        if a.repo == key && a.plan == plan_name {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove `{}`", path.display()))?;
            n += 1;
        }
    }
    Ok(n)
}

/// This repository's approvals, by plan.
pub fn list(repo: &Repo) -> Result<Vec<Approval>> {
    let key = repo_key(repo);
    Ok(all(&store_dir()?)
        .into_iter()
        .map(|(_, a)| a)
        .filter(|a| a.repo == key)
        .collect())
}

pub fn approved(commands: &[PlanCommand]) -> Vec<Approved> {
    commands
        .iter()
        .map(|c| Approved {
            source: c.source.clone(),
            run: c.run.clone(),
        })
        .collect()
}

/// The commands that are new or changed against the last approval.
pub fn changed(commands: &[PlanCommand], last: &Approval) -> Vec<String> {
    approved(commands)
        .into_iter()
        .filter(|c| !last.commands.contains(c))
        .map(|c| c.source)
        .collect()
}

/// The refusal of a command that would run an untrusted plan's commands:
/// one line naming the plan and why, and the command that approves it.
fn untrusted(plan_name: &str, plan: &Plan, last: Option<&Approval>) -> anyhow::Error {
    let why = match last {
        None => "its commands were never approved on this machine (its state came from elsewhere, or it was not started here)".to_string(),
        Some(last) => {
            let changed = changed(&plan.commands(), last);
            if changed.is_empty() {
                "its commands changed since you approved them".to_string()
            } else {
                format!(
                    "its commands changed since you approved them ({})",
                    changed.join("; ")
                )
            }
        }
    };
    refuse_with_hint(
        format!(
            "plan `{plan_name}` is not trusted here: {}, so git-orch runs none of them",
            ui::printable(&why)
        ),
        format!("see what it would run and approve it: `git orch trust {plan_name}`"),
    )
}

/// Refuses, changing nothing, unless the plan's commands are approved
/// here. Once they are, the plan is pinned for the rest of this process:
/// a state branch moved meanwhile to a plan with other commands is refused
/// by every later load (see [`crate::state::seal::pin`]).
pub fn require(repo: &Repo, snap: &Snapshot) -> Result<()> {
    match verdict(repo, &snap.plan_name, &snap.plan)? {
        Verdict::Trusted(_) | Verdict::NoCommands => {}
        Verdict::Untrusted { last } => {
            return Err(untrusted(&snap.plan_name, &snap.plan, last.as_ref()))
        }
    }
    let blob = plan_blob_of(repo, snap)?;
    crate::state::seal::pin(&snap.plan_name, blob, snap.plan.commands_hash());
    Ok(())
}

/// Whether the plan may run its commands here (for commands that run a
/// plan's commands only on the side, as `task fail` its notify hooks).
pub fn is_trusted(repo: &Repo, snap: &Snapshot) -> bool {
    matches!(
        verdict(repo, &snap.plan_name, &snap.plan),
        Ok(Verdict::Trusted(_) | Verdict::NoCommands)
    )
}

/// The `plan.json` blob of a snapshot's state commit.
fn plan_blob_of(repo: &Repo, snap: &Snapshot) -> Result<Oid> {
    let tree = repo.git.find_tree(snap.tree)?;
    tree.get_name(crate::state::layout::PLAN_FILE)
        .map(|e| e.id())
        .ok_or_else(|| anyhow::anyhow!("state commit {} has no plan", snap.commit))
}
