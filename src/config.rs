//! The one reader of git-orch's own settings, the `orch.*` git config keys.
//! Read once per process, lazily, in the order git itself reads them
//! (system, global, the repository's, the worktree's, then the command
//! line), so the last value wins and a multi-valued key collects them all:
//! `git -c orch.parallel=1 orch run` means what it says. git hands `-c` to
//! a subcommand in `GIT_CONFIG_PARAMETERS`, and `GIT_CONFIG_COUNT` with
//! `GIT_CONFIG_KEY_<n>`/`GIT_CONFIG_VALUE_<n>` set the same scope; libgit2
//! reads neither, so they are parsed here.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::git::Repo;

pub const PARALLEL: &str = "orch.parallel";
pub const WORKTREE_DIR: &str = "orch.worktreeDir";
pub const COLOR: &str = "orch.color";
pub const PRE_PUSH: &str = "orch.prePush";
/// The remote `run` and `sync` share plans through (`--remote`).
pub const REMOTE: &str = "orch.remote";
/// How long a remote claim holds without renewal (`--lease`).
pub const LEASE: &str = "orch.lease";
/// This machine's name in remote claims (default: the host name).
pub const MACHINE: &str = "orch.machine";
/// `local`: a shared run gates every checkpoint on this machine too,
/// instead of taking the checkpoint another machine made.
pub const GATES: &str = "orch.gates";
/// Whether `git://` fetches and pushes go through git-orch's relay
/// (see `crate::git::relay`); on unless set false.
pub const RELAY: &str = "orch.relay";

/// Every `orch.*` entry, lowest precedence first. Keys are lowercased
/// (section and key names are case-insensitive in git).
#[derive(Debug, Default)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// The value that wins for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        let key = key.to_ascii_lowercase();
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a multi-valued `key`, in the order git reads them.
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        let key = key.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `orch.relay`: off only for a value git reads as false.
    pub fn relay(&self) -> bool {
        !self.get(RELAY).is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "false" | "no" | "off" | "0"
            )
        })
    }

    /// `orch.parallel`, when it is a whole number of at least 1.
    pub fn parallel(&self) -> Option<usize> {
        self.get(PARALLEL)
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n > 0)
    }

    /// `orch.worktreeDir` as written (relative to the repository root or absolute).
    pub fn worktree_dir(&self) -> Option<&str> {
        self.get(WORKTREE_DIR).filter(|v| !v.trim().is_empty())
    }

    /// `orch.color`, trimmed and lowercased.
    pub fn color(&self) -> Option<String> {
        self.get(COLOR).map(|v| v.trim().to_ascii_lowercase())
    }

    /// The plans named by `orch.prePush` (each value may list several,
    /// separated by commas or spaces), without repeats.
    pub fn pre_push(&self) -> Vec<String> {
        let mut plans: Vec<String> = Vec::new();
        for value in self.get_all(PRE_PUSH) {
            for plan in value.split([',', ' ']).filter(|s| !s.is_empty()) {
                if !plans.iter().any(|p| p == plan) {
                    plans.push(plan.to_string());
                }
            }
        }
        plans
    }
}

/// The settings for `repo`, read on first use.
pub fn of(repo: &Repo) -> &'static Config {
    cached(Some(&repo.common_dir), || {
        let files = repo.git.config().ok();
        load(files.as_ref())
    })
}

/// The directory that holds every plan's task worktrees: `orch.worktreeDir`
/// (absolute, or relative to the repository's root), else
/// `.orch/worktrees` in the main checkout (kept out of `git status` by
/// `info/exclude`): no `.git` directory on the way, where Claude Code
/// refuses every write. A bare repository keeps them in
/// `<git-common-dir>/orch/worktrees`. A task's own worktree is
/// `<plan's dir>/<task>` (`engine::workspace::task_worktree`).
pub fn worktrees_root(repo: &Repo) -> PathBuf {
    match of(repo).worktree_dir() {
        Some(dir) if Path::new(dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => repo.root.join(dir),
        None if repo.git.is_bare() => legacy_worktrees_root(repo),
        None => repo.root.join(WORKTREES_DIR),
    }
}

/// Where the default root is, in the main checkout.
pub const WORKTREES_DIR: &str = ".orch/worktrees";

/// Where worktrees lived before 0.3: under the git dir.
pub fn legacy_worktrees_root(repo: &Repo) -> PathBuf {
    repo.orch_dir().join("worktrees")
}

/// The directory of one plan's worktrees. A plan that still has task
/// worktrees in the old place keeps them there until
/// `engine::workspace::migrate` has moved them (it does once no task's
/// record names one), so that nothing a task left is ever orphaned.
pub fn plan_worktrees(repo: &Repo, plan: &str) -> PathBuf {
    let root = worktrees_root(repo);
    if of(repo).worktree_dir().is_none() && !repo.git.is_bare() {
        let legacy = legacy_worktrees_root(repo).join(plan);
        if legacy.is_dir() {
            return legacy;
        }
    }
    root.join(plan)
}

/// The settings for the repository around the current directory (or the
/// global and system ones outside any), read on first use: for the printer,
/// which has no repository at hand.
pub fn current() -> &'static Config {
    let repo = std::env::current_dir()
        .ok()
        .and_then(|cwd| git2::Repository::discover(cwd).ok());
    let common = repo
        .as_ref()
        .map(|r| std::fs::canonicalize(r.commondir()).unwrap_or_else(|_| r.commondir().into()));
    cached(common.as_deref(), || {
        let files = match &repo {
            Some(r) => r.config().ok(),
            None => git2::Config::open_default().ok(),
        };
        load(files.as_ref())
    })
}

/// One reading per process. A second repository (only unit tests open
/// several) is read afresh rather than given the first one's settings.
fn cached(common_dir: Option<&Path>, read: impl FnOnce() -> Config) -> &'static Config {
    static ONCE: OnceLock<(Option<PathBuf>, &'static Config)> = OnceLock::new();
    let key = common_dir.map(|d| PathBuf::from(d.to_string_lossy().trim_end_matches('/')));
    let mut read = Some(read);
    let (dir, config) = ONCE.get_or_init(|| {
        let read = read.take().expect("read once");
        (key.clone(), Box::leak(Box::new(read())))
    });
    if *dir == key {
        return config;
    }
    match read.take() {
        Some(read) => Box::leak(Box::new(read())),
        None => config,
    }
}

/// The config files' `orch.*` entries in precedence order, then the
/// command line's.
fn load(files: Option<&git2::Config>) -> Config {
    let mut entries = files.map(file_entries).unwrap_or_default();
    entries.extend(command_line(
        |name| std::env::var(name).ok(),
        std::env::var("GIT_CONFIG_PARAMETERS").ok().as_deref(),
    ));
    Config { entries }
}

fn file_entries(files: &git2::Config) -> Vec<(String, String)> {
    let mut found: Vec<(i32, usize, String, String)> = Vec::new();
    let Ok(mut iter) = files.entries(Some("^orch\\.")) else {
        return Vec::new();
    };
    while let Some(Ok(entry)) = iter.next() {
        let (Some(name), Some(value)) = (entry.name(), entry.value()) else {
            continue;
        };
        let n = found.len();
        found.push((
            rank(entry.level()),
            n,
            name.to_ascii_lowercase(),
            value.to_string(),
        ));
    }
    // By level, and within a level in file order.
    found.sort_by_key(|(level, n, _, _)| (*level, *n));
    found.into_iter().map(|(_, _, k, v)| (k, v)).collect()
}

/// Lowest precedence first, the way git reads its files.
fn rank(level: git2::ConfigLevel) -> i32 {
    use git2::ConfigLevel::*;
    match level {
        ProgramData => 0,
        System => 1,
        XDG => 2,
        Global => 3,
        Local => 4,
        Worktree => 5,
        App => 6,
        Highest => 7,
    }
}

/// The command-line scope, as git reads it: `GIT_CONFIG_COUNT` entries
/// first, then `GIT_CONFIG_PARAMETERS` (`git -c`), keeping `orch.*` only.
fn command_line(
    var: impl Fn(&str) -> Option<String>,
    parameters: Option<&str>,
) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    let count = var("GIT_CONFIG_COUNT")
        .and_then(|c| c.trim().parse::<usize>().ok())
        .unwrap_or(0);
    for i in 0..count {
        if let (Some(k), Some(v)) = (
            var(&format!("GIT_CONFIG_KEY_{i}")),
            var(&format!("GIT_CONFIG_VALUE_{i}")),
        ) {
            entries.push((k, v));
        }
    }
    entries.extend(parameters.map(parse_parameters).unwrap_or_default());
    entries
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .filter(|(k, _)| k.starts_with("orch."))
        .collect()
}

/// The entries of `GIT_CONFIG_PARAMETERS`: single-quoted, `'key'='value'`
/// (or `'key=value'` from git before 2.31), a quote inside written as
/// `'\''`. A key without a value (`git -c orch.x`) is skipped.
fn parse_parameters(params: &str) -> Vec<(String, String)> {
    let mut entries: Vec<Vec<String>> = Vec::new();
    let mut chars = params.chars().peekable();
    let mut joined = false; // the next quoted string is the value after `=`
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('\'') => {
                            // `'\''` continues the same string.
                            if chars.peek() == Some(&'\\') {
                                chars.next(); // the backslash
                                chars.next(); // the escaped quote
                                chars.next(); // the quote that reopens
                                text.push('\'');
                                continue;
                            }
                            break;
                        }
                        Some(ch) => text.push(ch),
                        None => break,
                    }
                }
                match entries.last_mut() {
                    Some(entry) if joined => entry.push(text),
                    _ => entries.push(vec![text]),
                }
                joined = false;
            }
            '=' => joined = true,
            _ => joined = false,
        }
    }
    entries
        .iter()
        .filter_map(|e| match e.as_slice() {
            [k, v] => Some((k.clone(), v.clone())),
            [kv] => kv
                .split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_params(params: &str) -> Config {
        Config {
            entries: command_line(|_| None, Some(params)),
        }
    }

    #[test]
    fn the_relay_is_off_only_for_a_false_value() {
        let with = |v: &str| Config {
            entries: vec![(RELAY.to_ascii_lowercase(), v.to_string())],
        };
        assert!(Config::default().relay());
        // A bare `relay` key is true to git; libgit2 reads it as "".
        for on in ["", "true", "yes", "on", "1"] {
            assert!(with(on).relay(), "{on:?}");
        }
        for off in ["false", "No", "off", "0", " false "] {
            assert!(!with(off).relay(), "{off:?}");
        }
    }

    #[test]
    fn git_dash_c_parameters_are_read() {
        let key = COLOR;
        assert_eq!(
            from_params("'orch.color'='always'").get(key),
            Some("always")
        );
        assert_eq!(
            from_params("'core.pager'='less' 'orch.color'='never'").get(key),
            Some("never")
        );
        // git before 2.31, and the last value winning.
        assert_eq!(
            from_params("'orch.color=never' 'ORCH.COLOR=always'").get(key),
            Some("always")
        );
        assert_eq!(
            from_params("'user.name'='it'\\''s' 'orch.color'='auto'").get(key),
            Some("auto")
        );
        assert_eq!(from_params("'user.name'='x'").get(key), None);
        assert_eq!(from_params("").get(key), None);
        assert_eq!(from_params("'orch.parallel'='3'").parallel(), Some(3));
        assert_eq!(from_params("'orch.parallel'='0'").parallel(), None);
        assert_eq!(
            from_params("'orch.worktreedir'='/tmp/w'").worktree_dir(),
            Some("/tmp/w")
        );
    }

    #[test]
    fn git_config_count_entries_come_before_dash_c() {
        let env = |name: &str| match name {
            "GIT_CONFIG_COUNT" => Some("2".to_string()),
            "GIT_CONFIG_KEY_0" => Some("orch.parallel".to_string()),
            "GIT_CONFIG_VALUE_0" => Some("5".to_string()),
            "GIT_CONFIG_KEY_1" => Some("orch.prePush".to_string()),
            "GIT_CONFIG_VALUE_1" => Some("a, b".to_string()),
            _ => None,
        };
        let config = Config {
            entries: command_line(env, None),
        };
        assert_eq!(config.parallel(), Some(5));
        let config = Config {
            entries: command_line(env, Some("'orch.parallel'='1' 'orch.prepush'='c'")),
        };
        assert_eq!(config.parallel(), Some(1));
        assert_eq!(config.pre_push(), vec!["a", "b", "c"]);
    }

    #[test]
    fn files_are_read_in_precedence_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let low = dir.path().join("low");
        let high = dir.path().join("high");
        std::fs::write(&low, "[orch]\n\tparallel = 2\n\tprePush = a\n").expect("write");
        std::fs::write(&high, "[orch]\n\tParallel = 7\n\tprePush = b\n").expect("write");
        let mut files = git2::Config::new().expect("config");
        files
            .add_file(&high, git2::ConfigLevel::Local, false)
            .expect("add");
        files
            .add_file(&low, git2::ConfigLevel::Global, false)
            .expect("add");
        let config = Config {
            entries: file_entries(&files),
        };
        assert_eq!(config.parallel(), Some(7));
        assert_eq!(config.pre_push(), vec!["a", "b"]);
    }
}
