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

    fn run_in(
        &self,
        dir: &std::path::Path,
        prompt: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let limit = if self.cli == Cli::Aider { 180 } else { 90 };
        let (out, timed_out) = self.run_for(dir, prompt, extra, env, Duration::from_secs(limit));
        assert!(
            !timed_out,
            "{} did not finish within {limit} s\n{}",
            self.cli.name(),
            self.context(&out)
        );
        out
    }

    /// Runs the CLI, killing it after `limit`; says whether it was killed.
    fn run_for(
        &self,
        dir: &std::path::Path,
        prompt: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        limit: Duration,
    ) -> (Output, bool) {
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
            args(
                Cli::Aider,
                Some(&file),
                Some(&aider_metadata(&self.repo.scratch())),
            )
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
        run(cmd, stdin, limit)
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
        let Some(rig) = Rig::new(
            t,
            Cli::Claude,
            vec![Turn::write("hello.txt", "hello from claude\n")],
        ) else {
            return;
        };
        let out = rig.run("Create hello.txt", &[], &[]);
        rig.capture("success", "json", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        let v = claude_json(&rig, &out);
        assert_eq!(v["is_error"], false, "{ctx}");
        assert_eq!(
            std::fs::read_to_string(rig.repo.path.join("hello.txt"))
                .ok()
                .as_deref(),
            Some("hello from claude\n"),
            "{ctx}"
        );
        assert!(
            v["session_id"].as_str().is_some_and(|s| s.len() >= 32),
            "{ctx}"
        );
        assert!(
            v["total_cost_usd"].as_f64().is_some_and(|c| c > 0.0),
            "{ctx}"
        );
        assert!(
            v["usage"]["output_tokens"].as_u64().is_some_and(|n| n > 0),
            "{ctx}"
        );
        assert_eq!(
            v["permission_denials"].as_array().map(Vec::len),
            Some(0),
            "{ctx}"
        );
        // Two main requests: the Write call, then the answer to its result.
        assert_eq!(rig.server.main_requests().len(), 2, "{ctx}");
        assert_eq!(rig.server.remaining(), 0, "{ctx}");
    });
}

#[test]
fn claude_stream_json_ends_with_the_same_result_object() {
    let t = "agents_real::claude_stream_json_ends_with_the_same_result_object";
    offline(t, || {
        let Some(rig) = Rig::new(t, Cli::Claude, vec![Turn::write("s.txt", "streamed\n")]) else {
            return;
        };
        let out = rig.run(
            "Create s.txt",
            &["--output-format", "stream-json", "--verbose"],
            &[],
        );
        rig.capture("success.stream", "jsonl", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        let lines: Vec<serde_json::Value> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{ctx}")))
            .collect();
        let last = lines.last().expect("at least one event");
        assert_eq!(last["type"], "result", "{ctx}");
        assert_eq!(last["is_error"], false, "{ctx}");
        assert!(
            last["total_cost_usd"].as_f64().is_some_and(|c| c > 0.0),
            "{ctx}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l["type"] == "assistant" && l["message"]["content"][0]["name"] == "Write"),
            "no assistant event with the Write call\n{ctx}"
        );
        assert!(rig.repo.path.join("s.txt").is_file(), "{ctx}");
    });
}

#[test]
fn claude_429_every_time_exits_1_with_api_error_status_after_its_capped_retries() {
    let t =
        "agents_real::claude_429_every_time_exits_1_with_api_error_status_after_its_capped_retries";
    offline(t, || {
        let Some(rig) = Rig::new(t, Cli::Claude, vec![Turn::rate_limit_forever()]) else {
            return;
        };
        let out = rig.run("Create x.txt", &[], &[]);
        rig.capture("429", "json", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(1), "{ctx}");
        let v = claude_json(&rig, &out);
        assert_eq!(v["is_error"], true, "{ctx}");
        assert_eq!(v["api_error_status"], 429, "{ctx}");
        // CLAUDE_CODE_MAX_RETRIES=1: the request and one retry.
        assert_eq!(rig.server.main_requests().len(), 2, "{ctx}");
    });
}

#[test]
fn claude_429_once_then_success_is_one_run_that_succeeds() {
    let t = "agents_real::claude_429_once_then_success_is_one_run_that_succeeds";
    offline(t, || {
        let script = vec![Turn::rate_limit(), Turn::write("r.txt", "after a 429\n")];
        let Some(rig) = Rig::new(t, Cli::Claude, script) else {
            return;
        };
        let out = rig.run("Create r.txt", &[], &[]);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        assert_eq!(claude_json(&rig, &out)["is_error"], false, "{ctx}");
        assert!(rig.repo.path.join("r.txt").is_file(), "{ctx}");
        assert_eq!(rig.server.main_requests().len(), 3, "{ctx}");
    });
}

#[test]
fn claude_usage_limit_exits_1_at_once_with_the_servers_message() {
    let t = "agents_real::claude_usage_limit_exits_1_at_once_with_the_servers_message";
    offline(t, || {
        let reset = 1_893_456_000; // 2030-01-01T00:00:00Z
        let Some(rig) = Rig::new(t, Cli::Claude, vec![Turn::usage_limit(reset).forever()]) else {
            return;
        };
        let out = rig.run("Create x.txt", &[], &[("CLAUDE_CODE_MAX_RETRIES", "3")]);
        rig.capture("usage-limit", "json", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(1), "{ctx}");
        let v = claude_json(&rig, &out);
        assert_eq!(v["is_error"], true, "{ctx}");
        assert_eq!(v["api_error_status"], 429, "{ctx}");
        // Not retried, though 3 retries were allowed.
        assert_eq!(rig.server.main_requests().len(), 1, "{ctx}");
    });
}

#[test]
fn claude_credit_too_low_exits_1_with_the_message() {
    let t = "agents_real::claude_credit_too_low_exits_1_with_the_message";
    offline(t, || {
        let Some(rig) = Rig::new(t, Cli::Claude, vec![Turn::credit_too_low().forever()]) else {
            return;
        };
        let out = rig.run("Create x.txt", &[], &[]);
        rig.capture("credit", "json", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(1), "{ctx}");
        let v = claude_json(&rig, &out);
        assert_eq!(v["is_error"], true, "{ctx}");
        assert!(
            v["result"]
                .as_str()
                .is_some_and(|r| r.contains("Credit balance is too low")),
            "{ctx}"
        );
        assert_eq!(rig.server.main_requests().len(), 1, "{ctx}");
    });
}

#[test]
fn claude_overloaded_and_5xx_exit_1_after_the_retries() {
    let t = "agents_real::claude_overloaded_and_5xx_exit_1_after_the_retries";
    offline(t, || {
        for (case, turn, status) in [
            ("overloaded", Turn::overloaded(), 529),
            ("500", Turn::server_error(500), 500),
        ] {
            let Some(rig) = Rig::new(t, Cli::Claude, vec![turn.forever()]) else {
                return;
            };
            let out = rig.run("Create x.txt", &[], &[]);
            rig.capture(case, "json", &out);
            let ctx = rig.context(&out);
            assert_eq!(out.status.code(), Some(1), "{case}: {ctx}");
            let v = claude_json(&rig, &out);
            assert_eq!(v["is_error"], true, "{case}: {ctx}");
            assert_eq!(v["api_error_status"], status, "{case}: {ctx}");
            assert_eq!(rig.server.main_requests().len(), 2, "{case}: {ctx}");
        }
    });
}

#[test]
fn claude_write_outside_the_cwd_is_refused_but_exits_0_with_the_denial() {
    let t = "agents_real::claude_write_outside_the_cwd_is_refused_but_exits_0_with_the_denial";
    offline(t, || {
        let probe = TestRepo::new();
        let outside = probe.scratch().join("outside.txt");
        let script = vec![Turn::write(outside.to_str().expect("utf-8"), "escaped\n")];
        let Some(rig) = Rig::new(t, Cli::Claude, script) else {
            return;
        };
        let out = rig.run("Write outside.txt", &[], &[]);
        rig.capture("denied", "json", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        let v = claude_json(&rig, &out);
        assert_eq!(v["is_error"], false, "{ctx}");
        assert!(
            !outside.exists(),
            "the write outside the cwd was made\n{ctx}"
        );
        let denials = v["permission_denials"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(denials.len(), 1, "{ctx}");
        assert_eq!(denials[0]["tool_name"], "Write", "{ctx}");
    });
}

#[test]
fn claude_refuses_writes_under_a_dot_git_directory() {
    let t = "agents_real::claude_refuses_writes_under_a_dot_git_directory";
    offline(t, || {
        let Some(rig) = Rig::new(t, Cli::Claude, vec![Turn::write("f.txt", "inside\n")]) else {
            return;
        };
        // A worktree where git-orch puts them by default: under .git/.
        let wt = rig.repo.path.join(".git/orch/worktrees/t1");
        rig.repo.git(&[
            "worktree",
            "add",
            "-q",
            "-b",
            "t1",
            wt.to_str().expect("utf-8"),
        ]);
        let out = rig.run_in(&wt, "Create f.txt", &[], &[]);
        rig.capture("dot-git-denied", "json", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        let v = claude_json(&rig, &out);
        assert!(!wt.join("f.txt").exists(), "{ctx}");
        assert_eq!(
            v["permission_denials"].as_array().map(Vec::len),
            Some(1),
            "{ctx}"
        );
    });
}

#[test]
fn claude_resume_sends_the_earlier_conversation() {
    let t = "agents_real::claude_resume_sends_the_earlier_conversation";
    offline(t, || {
        let script = vec![
            Turn::text("Noted: PELICAN."),
            Turn::text("The word was PELICAN."),
        ];
        let Some(rig) = Rig::new(t, Cli::Claude, script) else {
            return;
        };
        let first = rig.run("Remember the word PELICAN-7f3a.", &[], &[]);
        let ctx = rig.context(&first);
        assert_eq!(first.status.code(), Some(0), "{ctx}");
        let id = claude_json(&rig, &first)["session_id"]
            .as_str()
            .expect("a session id")
            .to_string();
        let second = rig.run("Which word?", &["--resume", &id], &[]);
        rig.capture("resume", "json", &second);
        let ctx = rig.context(&second);
        assert_eq!(second.status.code(), Some(0), "{ctx}");
        let v = claude_json(&rig, &second);
        assert_eq!(v["session_id"], id.as_str(), "{ctx}");
        let main = rig.server.main_requests();
        assert_eq!(main.len(), 2, "{ctx}");
        let body = main[1].body_text();
        assert!(
            body.contains("PELICAN-7f3a"),
            "the resumed request lacks the first prompt\n{ctx}"
        );
        assert!(
            body.contains("Noted: PELICAN."),
            "the resumed request lacks the first answer\n{ctx}"
        );
        assert!(body.contains("Which word?"), "{ctx}");
    });
}

/// A prompt of `n` bytes ending in a marker, so a truncated one is seen.
fn big_prompt(n: usize) -> String {
    let tail = "END-OF-PROMPT-MARKER";
    let mut p = "Read all of this. ".repeat((n - tail.len()) / 18 + 1);
    p.truncate(n - tail.len());
    p.push_str(tail);
    p
}

/// Claude Code takes a prompt on stdin up to 10 MiB (10,485,760 bytes)
/// whole; one byte more and it exits 1 at once, with no JSON on stdout
/// and "piped stdin input exceeds 10MB" on stderr.
#[test]
fn claude_takes_a_prompt_on_stdin_up_to_10_mib_whole() {
    let t = "agents_real::claude_takes_a_prompt_on_stdin_up_to_10_mib_whole";
    offline(t, || {
        let Some(rig) = Rig::new(
            t,
            Cli::Claude,
            vec![Turn::text("Read."), Turn::text("Read.")],
        ) else {
            return;
        };
        for (n, nth) in [(1_000_000, 0), (10_485_760, 1)] {
            let out = rig.run(&big_prompt(n), &[], &[]);
            let ctx = format!("{n}: exit {:?}\n{}", out.status.code(), stderr(&out));
            assert_eq!(out.status.code(), Some(0), "{ctx}");
            let main = rig.server.main_requests();
            assert_eq!(main.len(), nth + 1, "{ctx}");
            let v = main[nth].json().expect("json body");
            let sent = v["messages"].to_string();
            assert!(sent.contains("END-OF-PROMPT-MARKER"), "{ctx}");
            assert!(main[nth].body.len() > n, "{ctx}");
        }
        let out = rig.run(&big_prompt(10_485_761), &[], &[]);
        rig.capture("prompt-too-long", "json", &out);
        let ctx = format!("exit {:?}\n{}", out.status.code(), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{ctx}");
        assert!(out.stdout.is_empty(), "{ctx}");
        assert!(
            stderr(&out).contains("piped stdin input exceeds 10MB"),
            "{ctx}"
        );
        assert_eq!(rig.server.main_requests().len(), 2, "{ctx}");
    });
}

// ------------------------------------------------------------------ Codex

#[test]
fn codex_success_writes_the_file_and_reports_thread_and_usage() {
    let t = "agents_real::codex_success_writes_the_file_and_reports_thread_and_usage";
    offline(t, || {
        let Some(rig) = Rig::new(
            t,
            Cli::Codex,
            vec![Turn::write("hello.txt", "hello from codex\n")],
        ) else {
            return;
        };
        let out = rig.run("Create hello.txt", &[], &[]);
        rig.capture("success", "jsonl", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        let events = codex_events(&rig, &out);
        assert_eq!(
            std::fs::read_to_string(rig.repo.path.join("hello.txt"))
                .ok()
                .as_deref(),
            Some("hello from codex\n"),
            "{ctx}"
        );
        assert!(
            events.iter().any(|e| e["type"] == "thread.started"
                && e["thread_id"].as_str().is_some_and(|s| !s.is_empty())),
            "{ctx}"
        );
        assert!(
            events
                .iter()
                .any(|e| e["type"] == "item.completed" && e["item"]["type"] == "file_change"),
            "{ctx}"
        );
        let done = events
            .iter()
            .rfind(|e| e["type"] == "turn.completed")
            .unwrap_or_else(|| panic!("no turn.completed\n{ctx}"));
        assert!(
            done["usage"]["input_tokens"]
                .as_u64()
                .is_some_and(|n| n > 0),
            "{ctx}"
        );
        assert!(
            done["usage"]["output_tokens"]
                .as_u64()
                .is_some_and(|n| n > 0),
            "{ctx}"
        );
        assert_eq!(rig.server.remaining(), 0, "{ctx}");
    });
}

#[test]
fn codex_429_every_time_exits_1_with_turn_failed() {
    let t = "agents_real::codex_429_every_time_exits_1_with_turn_failed";
    offline(t, || {
        let Some(rig) = Rig::new(t, Cli::Codex, vec![Turn::rate_limit_forever()]) else {
            return;
        };
        let out = rig.run("Create x.txt", &[], &[]);
        rig.capture("429", "jsonl", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(1), "{ctx}");
        let events = codex_events(&rig, &out);
        assert!(events.iter().any(|e| e["type"] == "turn.failed"), "{ctx}");
        assert!(stdout(&out).contains("429"), "{ctx}");
    });
}

#[test]
fn codex_usage_limit_exits_1_saying_so() {
    let t = "agents_real::codex_usage_limit_exits_1_saying_so";
    offline(t, || {
        let reset = 1_893_456_000;
        let Some(rig) = Rig::new(t, Cli::Codex, vec![Turn::usage_limit(reset).forever()]) else {
            return;
        };
        let out = rig.run("Create x.txt", &[], &[]);
        rig.capture("usage-limit", "jsonl", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(1), "{ctx}");
        assert!(stdout(&out).contains("usage limit"), "{ctx}");
        codex_events(&rig, &out);
    });
}

#[test]
fn codex_credit_too_low_exits_1() {
    let t = "agents_real::codex_credit_too_low_exits_1";
    offline(t, || {
        let Some(rig) = Rig::new(t, Cli::Codex, vec![Turn::credit_too_low().forever()]) else {
            return;
        };
        let out = rig.run("Create x.txt", &[], &[]);
        rig.capture("credit", "jsonl", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(1), "{ctx}");
        assert!(stdout(&out).to_lowercase().contains("quota"), "{ctx}");
        assert_eq!(rig.server.main_requests().len(), 1, "not retried\n{ctx}");
    });
}

/// Codex's `workspace-write` sandbox: a patch outside the workspace (and
/// outside /tmp, which it leaves writable by default) is refused, and the
/// run still exits 0 with the failed change in its events; a write to /tmp
/// is allowed unless `sandbox_workspace_write.exclude_slash_tmp` and
/// `exclude_tmpdir_env_var` are set.
#[test]
fn codex_write_outside_the_workspace_is_refused_but_tmp_is_writable_by_default() {
    let t =
        "agents_real::codex_write_outside_the_workspace_is_refused_but_tmp_is_writable_by_default";
    offline(t, || {
        let away = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        let outside = away.path().join("outside.txt");
        let probe = TestRepo::new();
        let in_tmp = probe.scratch().join("in-tmp.txt");
        let in_tmp2 = probe.scratch().join("in-tmp-excluded.txt");
        let script = vec![
            Turn::write(outside.to_str().expect("utf-8"), "escaped\n"),
            Turn::write(in_tmp.to_str().expect("utf-8"), "tmp\n"),
            Turn::write(in_tmp2.to_str().expect("utf-8"), "tmp\n"),
        ];
        let Some(rig) = Rig::new(t, Cli::Codex, script) else {
            return;
        };
        let out = rig.run("Write outside.txt", &[], &[]);
        rig.capture("denied", "jsonl", &out);
        let ctx = rig.context(&out);
        assert!(
            !outside.exists(),
            "the write outside the workspace was made\n{ctx}"
        );
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        let events = codex_events(&rig, &out);
        assert!(
            !events.iter().any(|e| e["type"] == "item.completed"
                && e["item"]["type"] == "file_change"
                && e["item"]["status"] == "completed"),
            "a completed file_change for a refused write\n{ctx}"
        );
        // The refusal is only on stderr (and in what the model is told).
        assert!(stderr(&out).contains("patch rejected"), "{ctx}");
        assert!(
            rig.server.main_requests()[1]
                .body_text()
                .contains("rejected"),
            "the model was not told of the refusal\n{ctx}"
        );
        let out = rig.run("Write in-tmp.txt", &[], &[]);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        assert!(
            in_tmp.is_file(),
            "/tmp is writable in workspace-write by default\n{ctx}"
        );
        let out = rig.run(
            "Write in-tmp-excluded.txt",
            &[
                "-c",
                "sandbox_workspace_write.exclude_slash_tmp=true",
                "-c",
                "sandbox_workspace_write.exclude_tmpdir_env_var=true",
            ],
            &[],
        );
        rig.capture("denied-tmp", "jsonl", &out);
        let ctx = rig.context(&out);
        assert!(
            !in_tmp2.exists(),
            "/tmp still writable with it excluded\n{ctx}"
        );
    });
}

#[test]
fn codex_exec_resume_sends_the_earlier_conversation() {
    let t = "agents_real::codex_exec_resume_sends_the_earlier_conversation";
    offline(t, || {
        let script = vec![
            Turn::text("Noted: PELICAN."),
            Turn::text("The word was PELICAN."),
        ];
        let Some(rig) = Rig::new(t, Cli::Codex, script) else {
            return;
        };
        let first = rig.run("Remember the word PELICAN-7f3a.", &[], &[]);
        let ctx = rig.context(&first);
        assert_eq!(first.status.code(), Some(0), "{ctx}");
        let events = codex_events(&rig, &first);
        let id = events
            .iter()
            .find(|e| e["type"] == "thread.started")
            .and_then(|e| e["thread_id"].as_str())
            .unwrap_or_else(|| panic!("no thread id\n{ctx}"))
            .to_string();
        let second = rig.run("Which word?", &["resume", &id], &[]);
        rig.capture("resume", "jsonl", &second);
        let ctx = rig.context(&second);
        assert_eq!(second.status.code(), Some(0), "{ctx}");
        let again = codex_events(&rig, &second);
        assert!(
            again
                .iter()
                .any(|e| e["type"] == "thread.started" && e["thread_id"] == id.as_str()),
            "the resumed run names another thread\n{ctx}"
        );
        let main = rig.server.main_requests();
        assert_eq!(main.len(), 2, "{ctx}");
        let body = main[1].body_text();
        assert!(
            body.contains("PELICAN-7f3a"),
            "the resumed request lacks the first prompt\n{ctx}"
        );
        assert!(
            body.contains("Noted: PELICAN."),
            "the resumed request lacks the first answer\n{ctx}"
        );
        assert!(body.contains("Which word?"), "{ctx}");
    });
}

#[test]
fn codex_takes_a_1_mb_prompt_on_stdin_and_refuses_a_longer_one() {
    let t = "agents_real::codex_takes_a_1_mb_prompt_on_stdin_and_refuses_a_longer_one";
    offline(t, || {
        let Some(rig) = Rig::new(t, Cli::Codex, vec![Turn::text("Read.")]) else {
            return;
        };
        let out = rig.run(&big_prompt(1_000_000), &[], &[]);
        let ctx = format!("exit {:?}\n{}", out.status.code(), stderr(&out));
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        let main = rig.server.main_requests();
        assert_eq!(main.len(), 1, "{ctx}");
        assert!(
            main[0].body_text().contains("END-OF-PROMPT-MARKER"),
            "{ctx}"
        );
        // Over 1,048,576 characters: refused before any request.
        let out = rig.run(&big_prompt(1_048_577), &[], &[]);
        rig.capture("prompt-too-long", "jsonl", &out);
        let ctx = format!(
            "exit {:?}\n{}\n{}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        assert_ne!(out.status.code(), Some(0), "{ctx}");
        assert_eq!(rig.server.main_requests().len(), 1, "{ctx}");
    });
}

// ------------------------------------------------------------------ aider

#[test]
fn aider_success_writes_the_file_and_prints_tokens_and_cost() {
    let t = "agents_real::aider_success_writes_the_file_and_prints_tokens_and_cost";
    offline(t, || {
        let Some(rig) = Rig::new(
            t,
            Cli::Aider,
            vec![Turn::write("hello.txt", "hello from aider\n")],
        ) else {
            return;
        };
        let out = rig.run(
            "Create hello.txt containing a greeting.",
            &["hello.txt"],
            &[],
        );
        rig.capture("success", "txt", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        assert_eq!(
            std::fs::read_to_string(rig.repo.path.join("hello.txt"))
                .ok()
                .as_deref(),
            Some("hello from aider\n"),
            "{ctx}"
        );
        let text = stdout(&out);
        assert!(
            text.contains("Tokens:") && text.contains("Cost: $"),
            "{ctx}"
        );
        assert_eq!(rig.server.main_requests().len(), 1, "{ctx}");
    });
}

/// aider retries a 429 for about a minute, then exits 0 with nothing
/// written: its exit code says nothing, only its text does.
#[test]
fn aider_429_every_time_retries_then_exits_0_with_nothing_written() {
    let t = "agents_real::aider_429_every_time_retries_then_exits_0_with_nothing_written";
    offline(t, || {
        let Some(rig) = Rig::new(t, Cli::Aider, vec![Turn::rate_limit_forever()]) else {
            return;
        };
        let started = std::time::Instant::now();
        let out = rig.run(
            "Create hello.txt containing a greeting.",
            &["hello.txt"],
            &[],
        );
        rig.capture("429", "txt", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        let written = std::fs::read_to_string(rig.repo.path.join("hello.txt")).unwrap_or_default();
        assert_eq!(written, "", "{ctx}");
        assert!(rig.server.main_requests().len() >= 3, "{ctx}");
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            text.contains("RateLimitError") || text.contains("rate limit"),
            "{ctx}"
        );
        assert!(started.elapsed() > Duration::from_secs(20), "{ctx}");
    });
}

// ------------------------------------------- no model server reachable

/// With nothing listening (the server shut down), Claude Code fails within
/// a second (its retries capped by `claude_env`), exit 1 with `is_error`.
#[test]
fn claude_fails_fast_when_no_model_server_is_reachable() {
    let t = "agents_real::claude_fails_fast_when_no_model_server_is_reachable";
    offline(t, || {
        let Some(rig) = Rig::new(t, Cli::Claude, vec![Turn::write("x.txt", "x\n")]) else {
            return;
        };
        rig.server.shutdown();
        let started = std::time::Instant::now();
        let out = rig.run("Create x.txt", &[], &[]);
        rig.capture("no-server", "json", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(1), "{ctx}");
        assert!(started.elapsed() < Duration::from_secs(30), "{ctx}");
        assert!(rig.server.requests().is_empty(), "{ctx}");
        let v = claude_json(&rig, &out);
        assert_eq!(v["is_error"], true, "{ctx}");
        assert!(
            v["result"]
                .as_str()
                .is_some_and(|r| r.contains("Unable to connect")),
            "{ctx}"
        );
    });
}

/// With nothing listening, Codex 0.171.0 does NOT give up: even with
/// `request_max_retries = 1` and `stream_max_retries = 0` it is still
/// running after 15 s (it waits for the network with no end), so whoever
/// runs it must bound it with a timeout of their own.
#[test]
fn codex_does_not_exit_when_no_model_server_is_reachable() {
    let t = "agents_real::codex_does_not_exit_when_no_model_server_is_reachable";
    offline(t, || {
        let Some(rig) = Rig::new(t, Cli::Codex, vec![Turn::write("x.txt", "x\n")]) else {
            return;
        };
        rig.server.shutdown();
        let (out, killed) = rig.run_for(
            &rig.repo.path,
            "Create x.txt",
            &[],
            &[],
            Duration::from_secs(15),
        );
        rig.capture("no-server", "jsonl", &out);
        let ctx = rig.context(&out);
        assert!(
            killed,
            "codex exited on its own: re-measure and update the README\n{ctx}"
        );
        assert!(!rig.repo.path.join("x.txt").exists(), "{ctx}");
        let events = codex_events(&rig, &out);
        assert!(events.iter().any(|e| e["type"] == "turn.started"), "{ctx}");
    });
}

/// Codex retries a 429 by its `stream_max_retries` (not
/// `request_max_retries`): with 0 (as `codex_home` writes) one 429 fails
/// the run; with 1 the run succeeds, and its events still hold an `error`
/// event ("Reconnecting... 1/1 …") before `turn.completed`: a parser must
/// not take an `error` event alone for a failed run.
#[test]
fn codex_429_once_fails_without_stream_retries_and_succeeds_with_one() {
    let t = "agents_real::codex_429_once_fails_without_stream_retries_and_succeeds_with_one";
    offline(t, || {
        let script = vec![
            Turn::rate_limit(),
            Turn::rate_limit(),
            Turn::write("r.txt", "after a 429\n"),
        ];
        let Some(rig) = Rig::new(t, Cli::Codex, script) else {
            return;
        };
        let out = rig.run("Create r.txt", &[], &[]);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(1), "{ctx}");
        assert_eq!(rig.server.main_requests().len(), 1, "{ctx}");
        let retry = format!("model_providers.{CODEX_PROVIDER}.stream_max_retries=1");
        let out = rig.run("Create r.txt", &["-c", &retry], &[]);
        rig.capture("429-once", "jsonl", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        assert!(rig.repo.path.join("r.txt").is_file(), "{ctx}");
        assert_eq!(rig.server.main_requests().len(), 1 + 3, "{ctx}");
        let events = codex_events(&rig, &out);
        let error = events.iter().position(|e| e["type"] == "error");
        let done = events.iter().position(|e| e["type"] == "turn.completed");
        assert!(error.is_some() && done.is_some() && error < done, "{ctx}");
        assert!(!events.iter().any(|e| e["type"] == "turn.failed"), "{ctx}");
    });
}

// ------------------------------------------------- the server on its own

/// Sends raw HTTP/1.1 requests on one connection and returns each answer
/// (status line, headers and body as text).
fn exchange(port: u16, requests: &[(&str, &str, serde_json::Value)]) -> Vec<String> {
    use std::io::{BufRead, BufReader, Read, Write};
    let conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut w = conn.try_clone().expect("clone");
    let mut r = BufReader::new(conn);
    let mut answers = Vec::new();
    for (method, path, body) in requests {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        write!(
            w,
            "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send");
        let mut head = String::new();
        let mut len = 0;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).expect("read");
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().expect("length");
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut buf = vec![0; if *method == "HEAD" { 0 } else { len }];
        r.read_exact(&mut buf).expect("body");
        answers.push(format!("{head}{}", String::from_utf8_lossy(&buf)));
    }
    answers
}

/// The script is played by main requests only, on one kept-alive
/// connection: a side request (no tools) does not take a turn, a `forever`
/// error repeats, and every request is recorded.
#[test]
fn model_server_plays_its_script_to_main_requests_only() {
    let server = ModelServer::start(vec![
        Turn::write("/w/a.txt", "A\n"),
        Turn::text("plain"),
        Turn::usage_limit(1_893_456_000).forever(),
    ]);
    let tools = serde_json::json!([{"name": "Write", "input_schema": {}}]);
    let main = serde_json::json!({"model": "m", "stream": true, "tools": tools, "messages": []});
    let side =
        serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "title"}]});
    let answers = exchange(
        server.port,
        &[
            ("HEAD", "/", serde_json::Value::Null),
            ("POST", "/v1/messages", main.clone()),
            ("POST", "/v1/messages", side),
            ("POST", "/v1/messages", main.clone()),
            ("POST", "/v1/messages", main.clone()),
            ("POST", "/v1/messages", main.clone()),
            ("POST", "/v1/messages", main),
        ],
    );
    assert!(answers[0].starts_with("HTTP/1.1 200"), "{}", answers[0]);
    assert!(
        answers[1].contains("\"name\":\"Write\"") && answers[1].contains("/w/a.txt"),
        "{}",
        answers[1]
    );
    assert!(answers[1].contains("event: message_stop"), "{}", answers[1]);
    assert!(
        answers[2].starts_with("HTTP/1.1 200") && !answers[2].contains("tool_use"),
        "{}",
        answers[2]
    );
    assert!(answers[3].contains("Wrote /w/a.txt."), "{}", answers[3]);
    assert!(answers[4].contains("plain"), "{}", answers[4]);
    for a in &answers[5..] {
        assert!(a.starts_with("HTTP/1.1 429"), "{a}");
        assert!(
            a.contains("anthropic-ratelimit-unified-status: rejected"),
            "{a}"
        );
        assert!(
            a.contains("anthropic-ratelimit-unified-reset: 1893456000"),
            "{a}"
        );
    }
    let reqs = server.requests();
    assert_eq!(reqs.len(), 7);
    assert_eq!(server.main_requests().len(), 5);
    assert!(!reqs[2].main);
    assert_eq!(reqs[6].status, 429);
    assert_eq!(server.remaining(), 1, "the forever turn stays");
    // Non-streaming Messages: one JSON message.
    let plain = ModelServer::start(vec![Turn::text("not streamed")]);
    let main = serde_json::json!({"model": "m", "tools": tools, "messages": []});
    let answer = &exchange(plain.port, &[("POST", "/v1/messages", main)])[0];
    let body = answer.split("\r\n\r\n").nth(1).expect("a body");
    let v: serde_json::Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(v["type"], "message", "{answer}");
    assert_eq!(v["content"][0]["text"], "not streamed", "{answer}");
    assert_eq!(v["stop_reason"], "end_turn", "{answer}");
}

/// The same turns in OpenAI's two dialects: Responses (Codex) and Chat
/// Completions (aider, whose whole-file edit is one reply).
#[test]
fn model_server_speaks_responses_and_chat_completions() {
    let server = ModelServer::start(vec![
        Turn::write("a.txt", "A\n"),
        Turn::write("b.txt", "B\n"),
        Turn::credit_too_low(),
    ]);
    let tools = serde_json::json!([{"type": "custom", "name": "apply_patch"}]);
    let answers = exchange(
        server.port,
        &[
            (
                "POST",
                "/v1/responses",
                serde_json::json!({"model": "m", "tools": tools, "input": []}),
            ),
            (
                "POST",
                "/v1/responses",
                serde_json::json!({"model": "m", "tools": tools, "input": []}),
            ),
            (
                "POST",
                "/v1/chat/completions",
                serde_json::json!({"model": "m", "stream": true, "messages": [{"role": "system", "content": "edit"}]}),
            ),
            (
                "POST",
                "/v1/chat/completions",
                serde_json::json!({"model": "m", "messages": [{"role": "system", "content": "Write a commit message"}]}),
            ),
            (
                "POST",
                "/v1/chat/completions",
                serde_json::json!({"model": "m", "messages": []}),
            ),
        ],
    );
    assert!(
        answers[0].contains("custom_tool_call") && answers[0].contains("*** Add File: a.txt"),
        "{}",
        answers[0]
    );
    assert!(answers[0].contains("response.completed"), "{}", answers[0]);
    assert!(
        answers[1].contains("Wrote a.txt.") && answers[1].contains("output_text"),
        "{}",
        answers[1]
    );
    assert!(
        answers[2].contains("b.txt\\n```\\nB\\n```") && answers[2].contains("data: [DONE]"),
        "{}",
        answers[2]
    );
    assert!(
        !answers[3].contains("b.txt") && answers[3].starts_with("HTTP/1.1 200"),
        "{}",
        answers[3]
    );
    assert!(
        answers[4].starts_with("HTTP/1.1 429") && answers[4].contains("insufficient_quota"),
        "{}",
        answers[4]
    );
    assert_eq!(server.remaining(), 0);
    server.shutdown();
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err());
}

/// The helpers' own promises: the pinned versions are the installed ones
/// (when installed), and `toml_env` is TOML that reads back the same.
#[test]
fn agent_helpers_pin_what_is_installed_and_write_valid_toml() {
    let t = "agents_real::agent_helpers_pin_what_is_installed_and_write_valid_toml";
    for cli in [Cli::Claude, Cli::Codex, Cli::Aider] {
        let Some(exe) = cli_path(t, cli) else {
            continue;
        };
        let out = std::process::Command::new(&exe)
            .arg("--version")
            .env("HOME", std::env::temp_dir())
            .output()
            .expect("--version");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&pinned_version(cli)),
            "{} is {text}, tests/tools.versions pins {}",
            exe.display(),
            pinned_version(cli)
        );
    }
    let env = vec![
        ("A".to_string(), "x \"q\" \\ y".to_string()),
        ("B_C".to_string(), "http://127.0.0.1:1/v1".to_string()),
    ];
    let doc: toml::Value =
        toml::from_str(&format!("env = {}", toml_env(&env))).expect("valid TOML");
    assert_eq!(doc["env"]["A"].as_str(), Some("x \"q\" \\ y"));
    assert_eq!(doc["env"]["B_C"].as_str(), Some("http://127.0.0.1:1/v1"));
}

// ------------------------------------- through git-orch (a template)

/// The harness end to end through git-orch: `git orch run` inside the
/// namespace, with today's `run` profile calling the real Claude Code
/// (`bypassPermissions` and `IS_SANDBOX=1`: 2.1.197 refuses every other way
/// to write under `.git/orch/worktrees/`), its env from `claude_env` via
/// `toml_env`. The edit lands. A template for the kind profiles of issue 21.
#[test]
fn git_orch_runs_the_real_claude_code_offline_and_the_edit_lands() {
    let t = "agents_real::git_orch_runs_the_real_claude_code_offline_and_the_edit_lands";
    offline(t, || {
        let Some(exe) = cli_path(t, Cli::Claude) else {
            return;
        };
        let repo = TestRepo::new();
        let server = ModelServer::start(vec![Turn::write("hello.txt", "hello via git-orch\n")]);
        let mut env = claude_env(&server, &repo.home);
        env.push(("IS_SANDBOX".into(), "1".into()));
        let run = format!(
            "'{}' -p --output-format json --permission-mode bypassPermissions < \"$ORCH_TASK_FILE\"",
            exe.display()
        );
        let plan = format!(
            "name = \"p\"\n[agents.claude]\nrun = {}\nenv = {}\n\
             [[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"hello\"\n  \
             files = [\"hello.txt\"]\n  agent = \"claude\"\n  prompt = \"Create hello.txt\"\n",
            toml::Value::String(run),
            toml_env(&env)
        );
        let plan = repo.plan("plan.toml", &plan);
        repo.orch_ok(&["start", plan.to_str().expect("utf-8")]);
        let out = repo.orch(&["run"]);
        let ctx = format!("{}\nrequests:\n{}", both(&out), server.log());
        assert_eq!(code(&out), Some(0), "{ctx}");
        assert_eq!(
            repo.show("orch/p/work:hello.txt").as_deref(),
            Some("hello via git-orch\n"),
            "{ctx}"
        );
        assert_eq!(server.main_requests().len(), 2, "{ctx}");
        let first = server.main_requests()[0].body_text();
        assert!(
            first.contains("Create hello.txt"),
            "the brief reached the model\n{ctx}"
        );
    });
}

/// Unlike Claude Code, Codex edits a worktree under `.git/orch/worktrees/`
/// (with /tmp excluded, so that only the worktree is writable): both its
/// `apply_patch` and a shell write through its sandbox land.
#[test]
fn codex_writes_in_a_worktree_under_a_dot_git_directory() {
    let t = "agents_real::codex_writes_in_a_worktree_under_a_dot_git_directory";
    offline(t, || {
        let script = vec![
            Turn::write("f.txt", "inside\n"),
            Turn::shell("echo shell > g.txt"),
        ];
        let away = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        let outside = away.path().join("outside.txt");
        let Some(rig) = Rig::new(t, Cli::Codex, script) else {
            return;
        };
        let wt = rig.repo.path.join(".git/orch/worktrees/t1");
        rig.repo.git(&[
            "worktree",
            "add",
            "-q",
            "-b",
            "t1",
            wt.to_str().expect("utf-8"),
        ]);
        let only_cwd = [
            "-c",
            "sandbox_workspace_write.exclude_slash_tmp=true",
            "-c",
            "sandbox_workspace_write.exclude_tmpdir_env_var=true",
        ];
        let out = rig.run_in(&wt, "Create f.txt", &only_cwd, &[]);
        rig.capture("dot-git", "jsonl", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        assert_eq!(
            std::fs::read_to_string(wt.join("f.txt")).ok().as_deref(),
            Some("inside\n"),
            "{ctx}"
        );
        let out = rig.run_in(&wt, "Create g.txt", &only_cwd, &[]);
        rig.capture("shell", "jsonl", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        assert_eq!(
            std::fs::read_to_string(wt.join("g.txt")).ok().as_deref(),
            Some("shell\n"),
            "{ctx}"
        );
        let events = codex_events(&rig, &out);
        assert!(
            events
                .iter()
                .any(|e| e["item"]["type"] == "command_execution"),
            "{ctx}"
        );
        // A shell write outside the worktree fails in the sandbox; the run
        // still exits 0.
        rig.server.push(vec![Turn::shell(&format!(
            "echo x > '{}'",
            outside.display()
        ))]);
        let out = rig.run_in(&wt, "Write outside", &only_cwd, &[]);
        rig.capture("shell-denied", "jsonl", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        assert!(!outside.exists(), "{ctx}");
        // The model is told ("Read-only file system"), but --json shows no
        // command_execution item for the failed command at all.
        let told = rig
            .server
            .main_requests()
            .last()
            .expect("requests")
            .body_text();
        assert!(told.contains("Read-only file system"), "{ctx}");
        let events = codex_events(&rig, &out);
        assert!(
            !events
                .iter()
                .any(|e| e["item"]["type"] == "command_execution"),
            "{ctx}"
        );
    });
}

/// Under `acceptEdits`, Claude Code's Bash tool writes a file in the cwd
/// with no permission asked (so a scope guard must cover Bash too); a Bash
/// write outside the cwd is refused and listed in `permission_denials`.
#[test]
fn claude_bash_writes_in_the_cwd_under_accept_edits_but_not_outside() {
    let t = "agents_real::claude_bash_writes_in_the_cwd_under_accept_edits_but_not_outside";
    offline(t, || {
        let away = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        let outside = away.path().join("outside.txt");
        let script = vec![
            Turn::shell("echo shell > g.txt"),
            Turn::shell(&format!("echo x > '{}'", outside.display())),
        ];
        let Some(rig) = Rig::new(t, Cli::Claude, script) else {
            return;
        };
        let out = rig.run("Create g.txt", &[], &[]);
        rig.capture("bash", "json", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        assert_eq!(
            std::fs::read_to_string(rig.repo.path.join("g.txt"))
                .ok()
                .as_deref(),
            Some("shell\n"),
            "{ctx}"
        );
        let v = claude_json(&rig, &out);
        assert_eq!(
            v["permission_denials"].as_array().map(Vec::len),
            Some(0),
            "{ctx}"
        );
        let out = rig.run("Write outside", &[], &[]);
        rig.capture("bash-denied", "json", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        assert!(!outside.exists(), "{ctx}");
        let v = claude_json(&rig, &out);
        let denials = v["permission_denials"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(denials.len(), 1, "{ctx}");
        assert_eq!(denials[0]["tool_name"], "Bash", "{ctx}");
    });
}

/// A `PreToolUse` hook given with `--settings` that exits 2 blocks the
/// Write: nothing written, the hook's stderr goes to the model as the tool
/// result, the call is listed in `permission_denials`, and the run still
/// exits 0 with `is_error: false`.
#[test]
fn claude_pre_tool_use_hook_exit_2_blocks_the_write_and_still_exits_0() {
    let t = "agents_real::claude_pre_tool_use_hook_exit_2_blocks_the_write_and_still_exits_0";
    offline(t, || {
        let Some(rig) = Rig::new(t, Cli::Claude, vec![Turn::write("blocked.txt", "no\n")]) else {
            return;
        };
        let hook = rig.repo.scratch().join("hook.sh");
        std::fs::write(
            &hook,
            "#!/bin/sh\ncat > /dev/null\necho 'blocked by the scripted hook' >&2\nexit 2\n",
        )
        .expect("write hook");
        let chmod = std::process::Command::new("chmod")
            .arg("755")
            .arg(&hook)
            .status()
            .expect("chmod");
        assert!(chmod.success());
        let settings = rig.repo.scratch().join("settings.json");
        let hooks = serde_json::json!({"hooks": {"PreToolUse": [{
            "matcher": "Write|Edit|MultiEdit|NotebookEdit|Bash",
            "hooks": [{"type": "command", "command": hook.display().to_string()}]}]}});
        std::fs::write(&settings, hooks.to_string()).expect("write settings");
        let out = rig.run(
            "Create blocked.txt",
            &["--settings", settings.to_str().expect("utf-8")],
            &[],
        );
        rig.capture("hook-denied", "json", &out);
        let ctx = rig.context(&out);
        assert_eq!(out.status.code(), Some(0), "{ctx}");
        assert!(!rig.repo.path.join("blocked.txt").exists(), "{ctx}");
        let v = claude_json(&rig, &out);
        assert_eq!(v["is_error"], false, "{ctx}");
        let denials = v["permission_denials"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(denials.len(), 1, "{ctx}");
        assert_eq!(denials[0]["tool_name"], "Write", "{ctx}");
        let told = rig
            .server
            .main_requests()
            .last()
            .expect("requests")
            .body_text();
        assert!(told.contains("blocked by the scripted hook"), "{ctx}");
    });
}

/// A run stopped by a usage limit still has a session: resumed after the
/// reset, the request carries the first prompt and the run finishes (what
/// "parked, then continued in the same session" needs). Claude Code and
/// Codex alike.
#[test]
fn a_session_stopped_by_a_usage_limit_resumes_with_its_first_prompt() {
    let t = "agents_real::a_session_stopped_by_a_usage_limit_resumes_with_its_first_prompt";
    offline(t, || {
        for cli in [Cli::Claude, Cli::Codex] {
            let script = vec![
                Turn::usage_limit(1_893_456_000),
                Turn::write("late.txt", "after the reset\n"),
            ];
            let Some(rig) = Rig::new(t, cli, script) else {
                continue;
            };
            let first = rig.run("Create late.txt (PELICAN-7f3a)", &[], &[]);
            let ctx = rig.context(&first);
            assert_eq!(first.status.code(), Some(1), "{ctx}");
            let (id, resume): (String, Vec<String>) = if cli == Cli::Claude {
                let id = claude_json(&rig, &first)["session_id"]
                    .as_str()
                    .expect("a session id")
                    .to_string();
                (id.clone(), vec!["--resume".into(), id])
            } else {
                let events = codex_events(&rig, &first);
                let id = events
                    .iter()
                    .find_map(|e| e["thread_id"].as_str())
                    .expect("a thread id")
                    .to_string();
                (id.clone(), vec!["resume".into(), id])
            };
            let resume: Vec<&str> = resume.iter().map(String::as_str).collect();
            let second = rig.run("The limit has reset: carry on.", &resume, &[]);
            let ext = if cli == Cli::Claude { "json" } else { "jsonl" };
            rig.capture("resume-after-usage-limit", ext, &second);
            let ctx = rig.context(&second);
            assert_eq!(second.status.code(), Some(0), "{}: {ctx}", cli.name());
            assert!(rig.repo.path.join("late.txt").is_file(), "{ctx}");
            let main = rig.server.main_requests();
            assert!(
                main[1].body_text().contains("PELICAN-7f3a"),
                "{}: {ctx}",
                cli.name()
            );
            assert!(main[1].body_text().contains("carry on"), "{ctx}");
            assert!(stdout(&second).contains(&id), "the same session: {ctx}");
        }
    });
}

/// The namespace `offline` makes: only `lo`, up; the server reachable on
/// 127.0.0.1; any other address unreachable, from the test and from a
/// child process alike.
#[test]
fn offline_has_only_loopback_and_reaches_the_model_server() {
    let t = "agents_real::offline_has_only_loopback_and_reaches_the_model_server";
    offline(t, || {
        let server = ModelServer::start(vec![Turn::text("hi")]);
        let links = std::process::Command::new("ip")
            .args(["-o", "link", "show"])
            .output()
            .expect("ip link");
        let links = String::from_utf8_lossy(&links.stdout).into_owned();
        assert_eq!(links.lines().count(), 1, "{links}");
        assert!(links.contains(": lo:") && links.contains("UP"), "{links}");
        let tools = serde_json::json!([{"name": "Write"}]);
        let body = serde_json::json!({"model": "m", "tools": tools, "messages": []});
        let answer = &exchange(server.port, &[("POST", "/v1/messages", body)])[0];
        assert!(answer.contains("hi"), "{answer}");
        let away = std::net::TcpStream::connect_timeout(
            &"192.0.2.1:80".parse().expect("addr"),
            Duration::from_secs(2),
        );
        assert!(away.is_err(), "an address outside reached: {away:?}");
    });
}
