//! Issue 21: the real agent CLIs (Claude Code, Codex, aider; versions in
//! `tests/tools.versions`, installed by `.ci/run`) driven directly, without
//! git-orch, in a temp git repository, against the scripted model server in
//! `tests/common/model_server.rs`, inside a loopback-only network namespace
//! (`tests/common/agents.rs`). These pin down what git-orch builds on: how
//! each CLI is invoked, what it reports, how it exits on each kind of
//! failure. A missing CLI or no namespace prints `SKIP …` on stderr.
//!
//! With `GIT_ORCH_CAPTURE_FIXTURES=DIR` set, every run also saves its
//! stdout and stderr as `DIR/<cli>-<case>.*`: that is how
//! `tests/fixtures/agents/` was made (see its README).
use crate::common::agents::*;
use crate::common::model_server::*;
use crate::common::*;

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

/// One CLI, a fresh repository and a server playing `script`.
struct Rig {
    repo: TestRepo,
    server: ModelServer,
    cli: Cli,
    exe: PathBuf,
    codex_home: Option<tempfile::TempDir>,
}

impl Rig {
    /// `None` (after a SKIP line) when `cli` is not installed.
    fn new(test: &str, cli: Cli, script: Vec<Turn>) -> Option<Rig> {
        let exe = cli_path(test, cli)?;
        let repo = TestRepo::new();
        let server = ModelServer::start(script);
        let codex_home = (cli == Cli::Codex).then(|| codex_home(&server));
        Some(Rig {
            repo,
            server,
            cli,
            exe,
            codex_home,
        })
    }

    /// Runs the CLI in the repository with `prompt` (on stdin; aider: a
    /// message file), its minimal argv plus `extra`, its env plus `env`.
    fn run(&self, prompt: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
        self.run_in(&self.repo.path, prompt, extra, env)
    }

    fn run_in(&self, dir: &std::path::Path, prompt: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.repo.command(self.exe.to_str().expect("utf-8"), dir);
        let home = &self.repo.home;
        let base = match self.cli {
            Cli::Claude => claude_env(&self.server, home),
            Cli::Codex => codex_env(self.codex_home.as_ref().expect("codex home").path(), home),
            Cli::Aider => aider_env(&self.server, home),
        };
        cmd.envs(base);
        cmd.envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut stdin = prompt.as_bytes();
        let argv = if self.cli == Cli::Aider {
            let file = self.repo.scratch().join("aider-prompt.txt");
            std::fs::write(&file, prompt).expect("write the prompt");
            stdin = b"";
            args(Cli::Aider, Some(&file), Some(&aider_metadata(&self.repo.scratch())))
        } else {
            args(self.cli, None, None)
        };
        // The subcommand words (`exec`) come first, the rest after the
        // minimal argv, then Codex's `-` (prompt on stdin) last.
        let mut argv = argv;
        let dash = (argv.last().map(String::as_str) == Some("-")).then(|| argv.pop());
        argv.extend(extra.iter().map(|s| s.to_string()));
        if let Some(Some(d)) = dash {
            argv.push(d);
        }
        cmd.args(&argv);
        let limit = if self.cli == Cli::Aider { 180 } else { 90 };
        let (out, timed_out) = run(cmd, stdin, Duration::from_secs(limit));
        assert!(
            !timed_out,
            "{} {argv:?} did not finish within {limit} s\nstdout:\n{}\nstderr:\n{}\nrequests:\n{}",
            self.cli.name(),
            stdout(&out),
            stderr(&out),
            self.server.log()
        );
        out
    }

    /// Saves `out` as fixtures `<cli>-<case>.<ext>` (stdout) and
    /// `<cli>-<case>.stderr.txt`, when GIT_ORCH_CAPTURE_FIXTURES is set.
    fn capture(&self, case: &str, ext: &str, out: &Output) {
        let Some(dir) = std::env::var_os("GIT_ORCH_CAPTURE_FIXTURES") else {
            return;
        };
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).expect("fixtures dir");
        let name = format!("{}-{case}", self.cli.name());
        std::fs::write(dir.join(format!("{name}.{ext}")), &out.stdout).expect("save stdout");
        std::fs::write(dir.join(format!("{name}.stderr.txt")), &out.stderr).expect("save stderr");
        let mut meta = format!("exit: {:?}\n", out.status.code());
        meta.push_str(&self.server.log());
        std::fs::write(dir.join(format!("{name}.requests.txt")), meta).expect("save log");
    }

    fn context(&self, out: &Output) -> String {
        format!(
            "exit {:?}\nstdout:\n{}\nstderr:\n{}\nrequests:\n{}",
            out.status.code(),
            stdout(out),
            stderr(out),
            self.server.log()
        )
    }
}

/// Claude Code's one JSON object (`--output-format json`).
fn claude_json(rig: &Rig, out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("claude printed no JSON object ({e}):\n{}", rig.context(out)))
}

/// Codex's `exec --json` events.
fn codex_events(rig: &Rig, out: &Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{}", rig.context(out)))
        })
        .collect()
}

// ------------------------------------------------------------ Claude Code

#[test]
fn claude_success_writes_the_file_and_reports_usage_cost_and_session() {
    let t = "agents_real::claude_success_writes_the_file_and_reports_usage_cost_and_session";
    offline(t, || {
        let Some(rig) = Rig::new(t, Cli::Claude, vec![Turn::write("hello.txt", "hello from claude\n")]) else {
            return;
        };
        let out = rig.run("Create hello.txt", &[], &[]);
        rig.capture("success", "json", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        let v = claude_json(&rig, &out);
        assert_eq!(v["is_error"], false, "{ctx}");
        assert_eq!(
            std::fs::read_to_string(rig.repo.path.join("hello.txt")).ok().as_deref(),
            Some("hello from claude\n"),
            "{ctx}"
        );
        assert!(v["session_id"].as_str().is_some_and(|s| s.len() >= 32), "{ctx}");
        assert!(v["total_cost_usd"].as_f64().is_some_and(|c| c > 0.0), "{ctx}");
        assert!(v["usage"]["output_tokens"].as_u64().is_some_and(|n| n > 0), "{ctx}");
        assert_eq!(v["permission_denials"].as_array().map(Vec::len), Some(0), "{ctx}");
        // Two main requests: the Write call, then the answer to its result.
        assert_eq!(rig.server.main_requests().len(), 2, "{ctx}");
        assert_eq!(rig.server.remaining(), 0, "{ctx}");
    });
}
