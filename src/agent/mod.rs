//! The real agent CLIs (issue 21): for each `kind` of `[agents.NAME]`,
//! the whole command line git-orch builds (the brief on stdin, the
//! agent's machine-readable output, a permission mode that lets it edit
//! its worktree and nothing else, its own retries capped, no telemetry)
//! and how its output is read back ([`report`]). One file per CLI; a
//! `command` agent is the plain `run` it always was.

mod aider;
mod claude;
mod codex;
pub mod guard;
pub mod report;

use std::path::{Path, PathBuf};

use crate::plan::{Agent, AgentKind};
pub use report::{Class, Report};

/// What an agent is run for: its brief differs, and a reviewer may write
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A task's attempt (its retries and review rejections too).
    Work,
    /// A fix-forward after a phase's gates failed.
    Fix,
    /// A landing conflict to resolve.
    Resolve,
    /// A review of a task's change: reads, writes nothing, ends with a
    /// verdict line ([`report::VERDICT_LINE`]).
    Review,
}

/// Where one run of an agent happens.
pub struct Context<'a> {
    pub worktree: &'a Path,
    /// The brief, fed on stdin (never in argv: briefs run to megabytes).
    pub brief: &'a Path,
    /// The agent's own files for this task (settings, chat history),
    /// outside the worktree so that they never land in its commit.
    pub dir: &'a Path,
    /// The task's `files`: where it may write (empty: anywhere in it).
    pub files: &'a [String],
    pub purpose: Purpose,
    /// The session of an earlier attempt to continue.
    pub resume: Option<&'a str>,
}

/// The whole invocation of an agent: what `task show --agent` prints and
/// what the runner runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub argv: Vec<String>,
    /// Added to the task's environment (the profile's `env` wins over
    /// git-orch's defaults, so a user can point a CLI at another server).
    pub env: Vec<(String, String)>,
    /// Fed to the agent on stdin.
    pub stdin: Option<PathBuf>,
    /// Files git-orch writes before the run (settings, model metadata).
    pub files: Vec<(PathBuf, String)>,
    /// A `command` agent's own shell line, run as it is.
    pub shell: Option<String>,
}

impl Invocation {
    /// The shell line `process::run` runs.
    pub fn line(&self) -> String {
        if let Some(run) = &self.shell {
            return run.clone();
        }
        let mut line = String::from("exec");
        for a in &self.argv {
            line.push(' ');
            line.push_str(&quote(a));
        }
        match &self.stdin {
            Some(f) => line + " <" + &quote(&f.to_string_lossy()),
            None => line + " </dev/null",
        }
    }

    /// Writes the files the invocation needs.
    pub fn prepare(&self) -> anyhow::Result<()> {
        use anyhow::Context as _;
        for (path, text) in &self.files {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create `{}`", dir.display()))?;
            }
            std::fs::write(path, text)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
        }
        Ok(())
    }
}

/// The CLI a profile runs: its `command`, else the kind's own name.
pub fn program(profile: &Agent) -> String {
    profile.command.clone().unwrap_or_else(|| {
        match profile.kind {
            AgentKind::ClaudeCode => "claude",
            AgentKind::Codex => "codex",
            AgentKind::Aider => "aider",
            AgentKind::Command => "sh",
        }
        .to_string()
    })
}

/// The invocation of agent `name` (profile `profile`) in `cx`.
pub fn invocation(name: &str, profile: &Agent, cx: &Context) -> Invocation {
    let mut inv = match profile.kind {
        AgentKind::Command => Invocation {
            argv: vec!["sh".into(), "-c".into(), profile.run.clone()],
            env: Vec::new(),
            stdin: None,
            files: Vec::new(),
            shell: Some(profile.run.clone()),
        },
        AgentKind::ClaudeCode => claude::invocation(profile, cx),
        AgentKind::Codex => codex::invocation(profile, cx),
        AgentKind::Aider => aider::invocation(profile, cx),
    };
    // The profile's own variables win over git-orch's defaults.
    for (k, v) in &profile.env {
        inv.env.retain(|(key, _)| key != k);
        inv.env.push((k.clone(), v.clone()));
    }
    inv.env.push(("ORCH_AGENT".into(), name.to_string()));
    inv
}

/// A default the user may override through the profile's `env` (see
/// [`invocation`]) or their own environment.
fn default_env(env: &mut Vec<(String, String)>, key: &str, value: &str) {
    if std::env::var_os(key).is_none() {
        env.push((key.into(), value.into()));
    }
}

/// Single-quoted for `sh` unless it is a plain word.
pub fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// The guard's command line as a Claude Code hook runs it (through `sh`).
fn guard_command(cx: &Context, shell: bool) -> String {
    let exe = std::env::current_exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "git-orch".into());
    guard_line(&exe, cx, shell)
}

/// [`guard_command`] with git-orch at `exe`. Claude Code lets a call
/// through on any exit but 2: a guard that cannot run (its binary gone or
/// replaced, killed, crashed) or exits otherwise must still refuse, so
/// every exit but 0 becomes 2.
fn guard_line(exe: &str, cx: &Context, shell: bool) -> String {
    let mut line = format!(
        "{} guard --worktree={}",
        quote(exe),
        quote(&cx.worktree.to_string_lossy())
    );
    for f in cx.files {
        // `=`: a glob that starts with `-` is still its value.
        line += &format!(" --file={}", quote(f));
    }
    if shell {
        line += " --shell";
    }
    if cx.purpose == Purpose::Review {
        line += " --read-only";
    }
    line + " || exit 2"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx<'a>(files: &'a [String], resume: Option<&'a str>) -> Context<'a> {
        Context {
            worktree: Path::new("/w/t"),
            brief: Path::new("/b/t.md"),
            dir: Path::new("/d/t"),
            files,
            purpose: Purpose::Work,
            resume,
        }
    }

    fn profile(kind: AgentKind) -> Agent {
        Agent {
            kind,
            ..Agent::default()
        }
    }

    #[test]
    fn every_kind_reads_its_brief_on_stdin_never_in_argv() {
        for kind in [AgentKind::ClaudeCode, AgentKind::Codex, AgentKind::Aider] {
            let inv = invocation("a", &profile(kind), &cx(&[], None));
            assert!(
                inv.argv.iter().all(|a| !a.contains("/b/t.md")) || kind == AgentKind::Aider,
                "{kind:?}: {:?}",
                inv.argv
            );
            match kind {
                // aider reads no prompt on stdin: its brief is a file it
                // is told the name of, still never the text in argv.
                AgentKind::Aider => assert!(inv.argv.iter().any(|a| a == "/b/t.md")),
                _ => assert_eq!(inv.stdin.as_deref(), Some(Path::new("/b/t.md"))),
            }
            assert!(inv.line().starts_with("exec "), "{}", inv.line());
        }
    }

    #[test]
    fn a_profiles_env_wins_over_git_orchs_defaults_and_its_args_come_last() {
        let mut p = profile(AgentKind::ClaudeCode);
        p.env.insert("CLAUDE_CODE_MAX_RETRIES".into(), "7".into());
        p.args = vec!["--extra".into()];
        p.model = Some("m1".into());
        let inv = invocation("a", &p, &cx(&[], None));
        let retries: Vec<_> = inv
            .env
            .iter()
            .filter(|(k, _)| k == "CLAUDE_CODE_MAX_RETRIES")
            .collect();
        assert_eq!(retries, [&("CLAUDE_CODE_MAX_RETRIES".into(), "7".into())]);
        assert_eq!(inv.argv.last().map(String::as_str), Some("--extra"));
        assert!(inv.argv.windows(2).any(|w| w == ["--model", "m1"]));
    }

    #[test]
    fn a_session_is_resumed_with_each_clis_own_spelling() {
        let claude = invocation("a", &profile(AgentKind::ClaudeCode), &cx(&[], Some("s1")));
        assert!(claude.argv.windows(2).any(|w| w == ["--resume", "s1"]));
        let codex = invocation("a", &profile(AgentKind::Codex), &cx(&[], Some("s1")));
        assert!(
            codex.argv.windows(3).any(|w| w == ["exec", "resume", "s1"])
                || codex.argv.windows(2).any(|w| w == ["resume", "s1"])
        );
        let aider = invocation("a", &profile(AgentKind::Aider), &cx(&[], Some("s1")));
        assert!(aider.argv.iter().any(|a| a == "--restore-chat-history"));
    }

    #[test]
    fn the_guard_hook_fails_closed_whatever_stops_the_guard() {
        let files = ["-x".to_string(), "it's *".to_string()];
        let c = cx(&files, None);
        let exit = |exe: &str| {
            std::process::Command::new("sh")
                .args(["-c", &guard_line(exe, &c, false)])
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .expect("sh runs")
                .code()
        };
        // Gone, failing otherwise, killed: each one blocks (2).
        assert_eq!(exit("/nonexistent/git-orch"), Some(2));
        assert_eq!(exit("false"), Some(2));
        let dir = tempfile::tempdir().expect("a temp dir");
        let killed = dir.path().join("killed");
        std::fs::write(&killed, "#!/bin/sh\nkill -9 $$\n").expect("a script");
        std::fs::set_permissions(&killed, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("executable");
        assert_eq!(exit(&killed.to_string_lossy()), Some(2));
        // Allowed stays allowed; each glob reaches the guard as one value.
        assert_eq!(exit("true"), Some(0));
        let line = guard_line("/bin/git-orch", &c, false);
        assert!(
            line.contains(" --file=-x ") && line.contains(" --file='it'\\''s *'"),
            "{line}"
        );
    }

    #[test]
    fn quoting_reads_back_through_sh() {
        for arg in ["plain", "with space", "it's", "$(rm -rf /)", ""] {
            let out = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {}", quote(arg))])
                .output()
                .expect("as set up");
            assert_eq!(String::from_utf8_lossy(&out.stdout), arg);
        }
    }
}
