//! The git features git-orch needs and the version that brought each, so a
//! git that is too old is refused up front, naming the feature, instead of
//! failing half-way through a landing. `git --version` runs once per
//! process, and only for the commands that land work or start a plan.

use std::fmt;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::Result;

use crate::error::refuse_with_hint;
use crate::plan::{MergeStrategy, Plan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GitVersion(pub u32, pub u32, pub u32);

impl fmt::Display for GitVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// A git feature git-orch relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// Every landing: `git merge-tree --write-tree` (with `--name-only`,
    /// `--no-messages`); also `sparse-checkout set --no-cone` (2.36) and
    /// `rev-parse --path-format` (2.31), which it covers.
    MergeTreeWriteTree,
    /// `merge = "rebase"`: each commit is replayed with
    /// `git merge-tree --merge-base`.
    MergeTreeMergeBase,
}

impl Feature {
    pub fn needs(self) -> GitVersion {
        match self {
            Feature::MergeTreeWriteTree => GitVersion(2, 38, 0),
            Feature::MergeTreeMergeBase => GitVersion(2, 40, 0),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Feature::MergeTreeWriteTree => "landing a task (`git merge-tree --write-tree`)",
            Feature::MergeTreeMergeBase => "`merge = \"rebase\"` (`git merge-tree --merge-base`)",
        }
    }
}

/// `git --version` of the `git` on PATH, once per process.
pub fn installed() -> Result<GitVersion, String> {
    static VERSION: OnceLock<Result<GitVersion, String>> = OnceLock::new();
    VERSION
        .get_or_init(|| {
            let out = Command::new("git")
                .arg("--version")
                .env("LC_ALL", "C")
                .output()
                .map_err(|e| format!("cannot run `git --version`: {e}"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            parse(&text).ok_or_else(|| format!("cannot read git's version from `{}`", text.trim()))
        })
        .clone()
}

/// `git version 2.39.0`, `git version 2.39.5 (Apple Git-154)`,
/// `git version 2.45.2.windows.1`, `git version 2.40.0-rc1`.
pub fn parse(text: &str) -> Option<GitVersion> {
    let rest = text.trim().strip_prefix("git version ")?;
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some(GitVersion(major, minor, patch))
}

/// Refuses, before anything changes, when the installed git lacks `feature`.
pub fn require(feature: Feature) -> Result<()> {
    check(feature, installed())
}

fn check(feature: Feature, installed: Result<GitVersion, String>) -> Result<()> {
    let needs = feature.needs();
    match installed {
        Ok(have) if have >= needs => Ok(()),
        Ok(have) => Err(refuse_with_hint(
            format!(
                "{} needs git {needs} or newer; this is git {have}",
                feature.what()
            ),
            match feature {
                Feature::MergeTreeMergeBase => format!(
                    "upgrade git, or land with `merge = \"merge\"` or `\"squash\"` (git {})",
                    Feature::MergeTreeWriteTree.needs()
                ),
                Feature::MergeTreeWriteTree => "upgrade git".to_string(),
            },
        )),
        // An unreadable version is no reason to refuse: git itself will say.
        Err(_) => Ok(()),
    }
}

/// What landing the tasks of `plan` needs.
pub fn require_for_plan(plan: &Plan) -> Result<()> {
    require(Feature::MergeTreeWriteTree)?;
    if plan.defaults.merge == MergeStrategy::Rebase {
        require(Feature::MergeTreeMergeBase)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_every_known_shape() {
        assert_eq!(parse("git version 2.39.0\n"), Some(GitVersion(2, 39, 0)));
        assert_eq!(
            parse("git version 2.39.5 (Apple Git-154)"),
            Some(GitVersion(2, 39, 5))
        );
        assert_eq!(
            parse("git version 2.45.2.windows.1"),
            Some(GitVersion(2, 45, 2))
        );
        assert_eq!(parse("git version 2.40.0-rc1"), Some(GitVersion(2, 40, 0)));
        assert_eq!(parse("git version 3.0"), Some(GitVersion(3, 0, 0)));
        assert_eq!(parse("hub version 2.14"), None);
        assert!(GitVersion(2, 100, 0) > GitVersion(2, 40, 0));
    }

    #[test]
    fn a_git_too_old_is_refused_naming_feature_and_version() {
        let old = check(Feature::MergeTreeMergeBase, Ok(GitVersion(2, 39, 0)))
            .expect_err("2.39 has no --merge-base");
        let text = old.to_string();
        assert!(text.contains("2.40.0") && text.contains("2.39.0"), "{text}");
        assert!(text.contains("--merge-base"), "{text}");
        assert!(check(Feature::MergeTreeMergeBase, Ok(GitVersion(2, 40, 0))).is_ok());
        assert!(check(Feature::MergeTreeWriteTree, Ok(GitVersion(2, 37, 9))).is_err());
        assert!(check(Feature::MergeTreeWriteTree, Err("?".into())).is_ok());
    }
}
