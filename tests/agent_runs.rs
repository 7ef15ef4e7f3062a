//! Issue 21: git-orch runs the real agent CLIs (Claude Code, Codex, aider,
//! pinned in `tests/tools.versions`) as `kind` profiles, against the
//! scripted model server, inside a loopback-only network namespace: the
//! whole command line is git-orch's, and what happened is read from the
//! agents' own output. A missing CLI or no namespace prints `SKIP …`.

use crate::common::agents::*;
use crate::common::model_server::*;
use crate::common::*;

use std::path::PathBuf;

/// A repository with a plan of one task `a` run by agent `w` (kind
/// `kind`), the server, and the agent's scratch home.
struct Rig {
    repo: TestRepo,
    server: ModelServer,
    _home: tempfile::TempDir,
    _codex: Option<tempfile::TempDir>,
    env: Vec<(String, String)>,
    exe: PathBuf,
    kind: &'static str,
    model: Option<&'static str>,
    extra_args: Vec<String>,
}

fn toml_str(s: &str) -> String {
    serde_json::to_string(s).expect("as set up")
}

impl Rig {
    fn new(test: &str, cli: Cli, script: Vec<Turn>) -> Option<Rig> {
        let exe = cli_path(test, cli)?;
        let repo = TestRepo::new();
        let server = ModelServer::start(script);
        let home = tempfile::tempdir().expect("as set up");
        let mut codex = None;
        let mut extra_args = Vec::new();
        let (env, kind, model) = match cli {
            Cli::Claude => (claude_env(&server, home.path()), "claude-code", None),
            Cli::Codex => {
                let h = codex_home(&server);
                let env = codex_env(h.path(), home.path());
                codex = Some(h);
                (env, "codex", Some(CODEX_MODEL))
            }
            Cli::Aider => {
                let meta = aider_metadata(home.path());
                extra_args = vec![
                    "--edit-format".into(),
                    "whole".into(),
                    "--map-tokens".into(),
                    "0".into(),
                    "--model-metadata-file".into(),
                    meta.display().to_string(),
                ];
                (aider_env(&server, home.path()), "aider", Some(AIDER_MODEL))
            }
        };
        Some(Rig {
            repo,
            server,
            _home: home,
            _codex: codex,
            env,
            exe,
            kind,
            model,
            extra_args,
        })
    }

    /// The agent profile `name`, with `more` lines.
    fn profile(&self, name: &str, more: &str) -> String {
        let env: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k} = {}", toml_str(v)))
            .collect();
        let mut p = format!(
            "[agents.{name}]\nkind = \"{}\"\ncommand = {}\nenv = {{ {} }}\n",
            self.kind,
            toml_str(&self.exe.display().to_string()),
            env.join(", ")
        );
        if let Some(m) = self.model {
            p += &format!("model = {}\n", toml_str(m));
        }
        if !self.extra_args.is_empty() {
            let args: Vec<String> = self.extra_args.iter().map(|a| toml_str(a)).collect();
            p += &format!("args = [{}]\n", args.join(", "));
        }
        p + more + "\n"
    }

    /// Starts plan `p`: task `a` (scope `src/**`, `task` lines added) run
    /// by agent `w` (`agent` lines added), and more TOML after.
    fn start(&self, agent: &str, task: &str, more: &str) {
        let text = format!(
            "name = \"p\"\n[defaults]\ntimeout = \"120s\"\n{}{more}\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nagent = \"w\"\nfiles = [\"src/**\"]\nprompt = \"Write src/a.txt.\"\n{task}\n",
            self.profile("w", agent)
        );
        let plan = self.repo.plan("p.toml", &text);
        self.repo.orch_ok(&["start", &plan.to_string_lossy()]);
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        self.repo.orch(&all)
    }

    /// `run` with the parking floor lowered (a `failpoints` build only),
    /// so that a usage limit's wait is the test's seconds, not minutes.
    fn run_parking_soon(&self) -> std::process::Output {
        self.repo
            .command(env!("CARGO_BIN_EXE_git-orch"), &self.repo.path)
            .args(["run"])
            .env("ORCH_TEST_PARK_FLOOR", "0")
            .output()
            .expect("git-orch runs")
    }

    fn task(&self) -> serde_json::Value {
        let st = status_json(&self.repo);
        st["tasks"]
            .as_array()
            .expect("as set up")
            .iter()
            .find(|t| t["id"] == "a")
            .cloned()
            .expect("as set up")
    }

    fn work_file(&self, path: &str) -> Option<String> {
        self.repo.show(&format!("orch/p/work:{path}"))
    }
}

/// Seconds since the epoch, `secs` from now.
fn epoch_in(secs: u64) -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is past 1970")
        .as_secs()
        + secs
}

fn worktree(repo: &TestRepo) -> PathBuf {
    repo.path.join(".orch/worktrees/p/a")
}

#[test]
fn claude_code_edits_in_scope_and_its_tokens_cost_and_session_reach_the_ledger() {
    offline("claude_code_edits_in_scope", || {
        let Some(rig) = Rig::new(
            "claude_code_edits_in_scope",
            Cli::Claude,
            vec![Turn::write("src/a.txt", "hello from claude\n")],
        ) else {
            return;
        };
        rig.start("", "", "");
        let out = rig.run(&[]);
        assert_eq!(code(&out), Some(0), "{}\n{}", both(&out), rig.server.log());
        assert_eq!(
            rig.work_file("src/a.txt").as_deref(),
            Some("hello from claude\n")
        );
        let t = rig.task();
        assert_eq!(t["state"], "done");
        let u = &t["usage"][0];
        assert!(u["tokens_in"].as_u64().expect("as set up") > 0, "{t}");
        assert!(u["tokens_out"].as_u64().expect("as set up") > 0, "{t}");
        assert!(u["cost_usd"].as_f64().expect("as set up") > 0.0, "{t}");
        assert!(u["session"].as_str().is_some_and(|s| !s.is_empty()), "{t}");
        assert_eq!(u["outcome"], "success");
        assert!(schema_errors(&status_json(&rig.repo)).is_empty());
        // The worktree was where Claude Code accepts writes: under no `.git`.
        assert!(!worktree(&rig.repo)
            .components()
            .any(|c| c.as_os_str() == ".git"));
        let report = rig.repo.orch_ok(&["report"]);
        assert!(report.contains("## Agent attempts"), "{report}");
        assert!(report.contains("success"), "{report}");
        // The main checkout does not see the worktrees kept inside it.
        assert_eq!(rig.repo.git(&["status", "--porcelain"]).trim(), "");
    });
}

#[test]
fn claude_code_is_refused_a_write_outside_the_tasks_files_while_it_works() {
    offline("claude_code_out_of_scope", || {
        let Some(rig) = Rig::new(
            "claude_code_out_of_scope",
            Cli::Claude,
            vec![Turn::write("notes.md", "outside\n")],
        ) else {
            return;
        };
        rig.start("", "", "");
        let out = rig.run(&[]);
        assert_eq!(code(&out), Some(1), "{}", both(&out));
        let t = rig.task();
        assert_eq!(t["state"], "failed", "{t}");
        let denied = t["usage"][0]["denied"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let log = rig
            .repo
            .show(&format!("orch/p/state:{}", t["log"].as_str().unwrap_or("")))
            .unwrap_or_default();
        assert!(
            denied
                .iter()
                .any(|d| d.as_str().expect("as set up").starts_with("Write")),
            "{t}\n{log}"
        );
        assert!(
            t["reason"].as_str().expect("as set up").contains("refused"),
            "{t}"
        );
        // Refused while it worked: the file was never written.
        assert!(!worktree(&rig.repo).join("notes.md").exists());
    });
}

#[test]
fn claude_code_rides_out_one_429_in_a_single_attempt() {
    offline("claude_code_429_once", || {
        let Some(rig) = Rig::new(
            "claude_code_429_once",
            Cli::Claude,
            vec![Turn::rate_limit(), Turn::write("src/a.txt", "x\n")],
        ) else {
            return;
        };
        rig.start("retries = 2\nretry_backoff = \"1s\"", "", "");
        let out = rig.run(&[]);
        assert_eq!(code(&out), Some(0), "{}\n{}", both(&out), rig.server.log());
        let t = rig.task();
        assert_eq!(t["attempts"], 1, "{t}");
        assert_eq!(t["state"], "done");
    });
}

#[test]
fn claude_code_always_429_is_retried_with_the_plans_backoff_then_fails_naming_the_rate_limit() {
    offline("claude_code_429_always", || {
        let Some(rig) = Rig::new(
            "claude_code_429_always",
            Cli::Claude,
            vec![Turn::rate_limit_forever()],
        ) else {
            return;
        };
        rig.start("retries = 1\nretry_backoff = \"1s\"", "", "");
        let out = rig.run(&[]);
        assert_eq!(code(&out), Some(1), "{}", both(&out));
        let t = rig.task();
        assert_eq!(t["state"], "failed");
        assert_eq!(t["attempts"], 2, "{t}");
        assert!(
            t["reason"]
                .as_str()
                .expect("as set up")
                .contains("rate limit"),
            "{t}"
        );
        assert!(both(&out).contains("retry"), "{}", both(&out));
    });
}

#[test]
fn claude_code_out_of_credit_fails_once_with_its_message() {
    offline("claude_code_credit", || {
        let Some(rig) = Rig::new(
            "claude_code_credit",
            Cli::Claude,
            vec![Turn::credit_too_low()],
        ) else {
            return;
        };
        rig.start("retries = 3\nretry_backoff = \"1s\"", "", "");
        let out = rig.run(&[]);
        assert_eq!(code(&out), Some(1), "{}", both(&out));
        let t = rig.task();
        assert_eq!(t["attempts"], 1, "never retried: {t}");
        assert!(
            t["reason"]
                .as_str()
                .expect("as set up")
                .contains("credit balance is too low")
                || t["reason"]
                    .as_str()
                    .expect("as set up")
                    .contains("Credit balance"),
            "{t}"
        );
        assert_eq!(t["usage"][0]["outcome"], "fatal");
    });
}

#[test]
fn claude_code_at_a_usage_limit_parks_until_the_reset_then_finishes_in_the_same_session() {
    offline("claude_code_usage_limit", || {
        let reset = epoch_in(3);
        let started = std::time::Instant::now();
        let Some(rig) = Rig::new(
            "claude_code_usage_limit",
            Cli::Claude,
            vec![
                Turn::usage_limit(reset),
                Turn::write("src/a.txt", "after\n"),
            ],
        ) else {
            return;
        };
        // Claude Code does not pass the reset time on (its server's
        // headers are not in its output): the profile's wait decides.
        rig.start("usage_limit = { wait = \"3s\" }", "", "");
        let out = rig.run_parking_soon();
        // It parked, woke at the reset within the same run, and finished.
        assert_eq!(code(&out), Some(0), "{}\n{}", both(&out), rig.server.log());
        let t = rig.task();
        assert_eq!(t["state"], "done", "{t}");
        assert_eq!(t["usage"][0]["outcome"], "usage-limit", "{t}");
        let first_session = t["usage"][0]["session"].as_str().map(str::to_string);
        let log = rig.repo.orch_ok(&["log"]);
        let parked = log
            .lines()
            .find(|l| l.contains("parked until"))
            .unwrap_or_else(|| panic!("no parked line in: {log}"));
        assert!(parked.contains("task a"), "{parked}");
        assert!(
            started.elapsed() >= std::time::Duration::from_secs(3),
            "it waited out the limit"
        );
        let last = t["usage"]
            .as_array()
            .expect("as set up")
            .last()
            .expect("as set up")
            .clone();
        assert_eq!(last["resumed"], true, "{t}");
        assert_eq!(
            last["session"].as_str().map(str::to_string),
            first_session,
            "{t}"
        );
    });
}

#[test]
fn a_review_rejection_resumes_the_agents_session_with_the_reviewers_comments() {
    offline("claude_code_review_resume", || {
        let Some(rig) = Rig::new(
            "claude_code_review_resume",
            Cli::Claude,
            vec![
                Turn::write("src/a.txt", "first\n"),
                Turn::text("The change lacks a newline.\nVERDICT: reject: say second, not first"),
                Turn::write("src/a.txt", "second\n"),
                Turn::text("Fine now.\nVERDICT: approve"),
            ],
        ) else {
            return;
        };
        let reviewer = rig.profile("rev", "");
        rig.start(
            "retries = 1\nretry_backoff = \"1s\"",
            "review = { agent = \"rev\" }",
            &reviewer,
        );
        let out = rig.run(&[]);
        assert_eq!(code(&out), Some(0), "{}\n{}", both(&out), rig.server.log());
        assert_eq!(rig.work_file("src/a.txt").as_deref(), Some("second\n"));
        let t = rig.task();
        assert_eq!(t["attempts"], 2, "{t}");
        let usage = t["usage"].as_array().expect("as set up");
        let second = usage.iter().find(|u| u["attempt"] == 2).expect("as set up");
        assert_eq!(second["resumed"], true, "{t}");
        // The resumed request carried the comments and the earlier turns.
        let resumed = rig
            .server
            .main_requests()
            .into_iter()
            .map(|r| r.body_text())
            .find(|b| b.contains("say second, not first"))
            .expect("the comments reached the agent");
        assert!(
            resumed.contains("first"),
            "the earlier conversation came along"
        );
    });
}

#[test]
fn a_megabyte_brief_reaches_claude_code_whole_on_stdin() {
    offline("claude_code_big_brief", || {
        let Some(rig) = Rig::new(
            "claude_code_big_brief",
            Cli::Claude,
            vec![Turn::write("src/a.txt", "big\n")],
        ) else {
            return;
        };
        let big = format!("{}END-OF-BRIEF", "x".repeat(1 << 20));
        // The prompt goes in the plan itself: 1 MiB of it.
        let plan = rig.repo.path.join("p2.toml");
        let text = format!(
            "name = \"q\"\n{}\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nagent = \"w\"\nfiles = [\"src/**\"]\nprompt = {}\n",
            rig.profile("w", ""),
            toml_str(&big)
        );
        std::fs::write(&plan, text).expect("as set up");
        rig.repo.orch_ok(&["start", &plan.to_string_lossy()]);
        let out = rig.repo.orch(&["run", "q"]);
        assert_eq!(code(&out), Some(0), "{}", both(&out));
        assert!(rig
            .server
            .main_requests()
            .iter()
            .any(|r| r.body_text().contains("END-OF-BRIEF")));
    });
}

#[test]
fn with_no_model_server_claude_code_fails_within_the_attempt_never_hangs() {
    offline("claude_code_no_server", || {
        let Some(rig) = Rig::new("claude_code_no_server", Cli::Claude, vec![]) else {
            return;
        };
        rig.server.shutdown();
        rig.start("retries = 2\nretry_backoff = \"1s\"", "", "");
        let started = std::time::Instant::now();
        let out = rig.run(&[]);
        assert_eq!(code(&out), Some(1), "{}", both(&out));
        let t = rig.task();
        assert_eq!(t["state"], "failed");
        assert!(started.elapsed() < std::time::Duration::from_secs(120));
    });
}

#[test]
fn codex_edits_in_scope_with_its_tokens_and_session_on_the_ledger() {
    offline("codex_edits_in_scope", || {
        let Some(rig) = Rig::new(
            "codex_edits_in_scope",
            Cli::Codex,
            vec![Turn::write("src/a.txt", "hello from codex\n")],
        ) else {
            return;
        };
        rig.start("", "", "");
        let out = rig.run(&[]);
        assert_eq!(code(&out), Some(0), "{}\n{}", both(&out), rig.server.log());
        assert_eq!(
            rig.work_file("src/a.txt").as_deref(),
            Some("hello from codex\n")
        );
        let t = rig.task();
        let u = &t["usage"][0];
        assert!(u["tokens_in"].as_u64().expect("as set up") > 0, "{t}");
        assert!(u["session"].as_str().is_some(), "{t}");
    });
}

#[test]
fn codex_out_of_scope_work_fails_the_task_after_and_is_kept() {
    offline("codex_out_of_scope", || {
        let Some(rig) = Rig::new(
            "codex_out_of_scope",
            Cli::Codex,
            vec![Turn::write("other.txt", "outside the scope\n")],
        ) else {
            return;
        };
        rig.start("", "", "");
        let out = rig.run(&[]);
        assert_eq!(code(&out), Some(1), "{}", both(&out));
        let t = rig.task();
        assert_eq!(t["state"], "failed", "{t}");
        assert!(
            t["reason"]
                .as_str()
                .expect("as set up")
                .contains("other.txt"),
            "{t}"
        );
        assert_eq!(
            rig.repo.show("orch/p/tasks/a:other.txt").as_deref(),
            Some("outside the scope\n"),
            "its work is kept on its branch"
        );
    });
}

#[test]
fn codex_always_429_fails_naming_the_rate_limit_and_its_usage_limit_parks() {
    offline("codex_limits", || {
        let Some(rig) = Rig::new("codex_limits", Cli::Codex, vec![Turn::rate_limit_forever()])
        else {
            return;
        };
        rig.start("", "", "");
        let out = rig.run(&[]);
        assert_eq!(code(&out), Some(1), "{}", both(&out));
        let t = rig.task();
        assert!(
            t["reason"]
                .as_str()
                .expect("as set up")
                .contains("rate limit"),
            "{t}"
        );

        // A usage limit parks the task; past its reset the same run goes
        // on in the same thread (Codex names the reset to the minute).
        let reset = epoch_in(2);
        let Some(rig) = Rig::new(
            "codex_limits",
            Cli::Codex,
            vec![
                Turn::usage_limit(reset),
                Turn::write("src/a.txt", "after\n"),
            ],
        ) else {
            return;
        };
        rig.start("usage_limit = { wait = \"2s\" }", "", "");
        let out = rig.run_parking_soon();
        assert_eq!(code(&out), Some(0), "{}\n{}", both(&out), rig.server.log());
        let t = rig.task();
        assert_eq!(t["usage"][0]["outcome"], "usage-limit", "{t}");
        assert!(
            t["usage"][0]["reason"]
                .as_str()
                .expect("as set up")
                .contains("usage limit"),
            "{t}"
        );
        let last = t["usage"]
            .as_array()
            .expect("as set up")
            .last()
            .expect("as set up")
            .clone();
        assert_eq!(last["resumed"], true, "{t}");
        assert_eq!(last["session"], t["usage"][0]["session"], "{t}");
        assert!(rig.repo.orch_ok(&["log"]).contains("parked until"));
    });
}

#[test]
fn codex_out_of_credit_fails_once() {
    offline("codex_credit", || {
        let Some(rig) = Rig::new("codex_credit", Cli::Codex, vec![Turn::credit_too_low()]) else {
            return;
        };
        rig.start("retries = 2\nretry_backoff = \"1s\"", "", "");
        let out = rig.run(&[]);
        assert_eq!(code(&out), Some(1), "{}", both(&out));
        let t = rig.task();
        assert_eq!(t["attempts"], 1, "{t}");
        assert_eq!(t["usage"][0]["outcome"], "fatal", "{t}");
    });
}

#[test]
fn aider_edits_the_tasks_files_and_its_tokens_and_cost_reach_the_ledger() {
    offline("aider_edits", || {
        let Some(rig) = Rig::new(
            "aider_edits",
            Cli::Aider,
            vec![Turn::write("src/a.txt", "hello from aider\n")],
        ) else {
            return;
        };
        rig.repo.write("src/a.txt", "");
        rig.repo.commit_all("a");
        rig.start("", "", "");
        let out = rig.run(&[]);
        assert_eq!(code(&out), Some(0), "{}\n{}", both(&out), rig.server.log());
        assert_eq!(
            rig.work_file("src/a.txt").as_deref(),
            Some("hello from aider\n")
        );
        let t = rig.task();
        let u = &t["usage"][0];
        assert!(u["tokens_in"].as_u64().expect("as set up") > 0, "{t}");
        assert!(u["cost_usd"].as_f64().is_some(), "{t}");
    });
}

#[test]
fn agents_lists_each_profile_with_its_cli_version_and_argv() {
    let Some(rig) = Rig::new("agents_list", Cli::Claude, vec![]) else {
        return;
    };
    rig.start("", "", "");
    let doc = rig.repo.orch_json(&["agents", "--json"]);
    assert!(schema_errors(&doc).is_empty(), "{doc}");
    let a = &doc["agents"][0];
    assert_eq!(a["kind"], "claude-code");
    assert_eq!(a["tested_version"], true, "{doc}");
    assert!(a["argv"]
        .as_array()
        .expect("as set up")
        .iter()
        .any(|x| x == "stream-json"));
    let shown = rig.repo.orch_ok(&["task", "show", "a", "--agent"]);
    assert!(shown.contains("argv: "), "{shown}");
    assert!(shown.contains("stdin: "), "{shown}");
    assert!(shown.contains("ANTHROPIC_BASE_URL="), "{shown}");
}

/// `scripts/bench.sh agents` (not a test: `--ignored`): git-orch's whole
/// `run` of one real attempt against the same CLI, with the same argv,
/// environment and stdin, run alone in the same worktree. Prints the
/// medians and the ratio; asserts nothing.
#[test]
#[ignore]
fn bench_agents() {
    for cli in [Cli::Claude, Cli::Codex] {
        offline("bench_agents", || bench_one(cli));
    }
}

fn bench_one(cli: Cli) {
    use std::time::Instant;
    let rounds = 5;
    let (mut alone, mut orch) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let content = format!("round {round}\n");
        let Some(rig) = Rig::new(
            "bench_agents",
            cli,
            vec![
                Turn::write("src/a.txt", "warm-up\n"),
                Turn::write("src/a.txt", &content),
            ],
        ) else {
            return;
        };
        rig.start("", "", "");
        let doc = rig
            .repo
            .orch_json(&["task", "show", "a", "--agent", "--json"]);
        // A first run of a CLI sets its home up (Codex: ~0.4 s): warm it
        // alone, in the task's place, before either is measured.
        {
            let inv = &doc["invocation"];
            let wt = worktree(&rig.repo);
            let at = wt.to_string_lossy().into_owned();
            rig.repo
                .git(&["worktree", "add", "-q", "--detach", &at, "orch/p/work"]);
            let mut cmd = std::process::Command::new("sh");
            cmd.args(["-c", inv["line"].as_str().expect("a line")])
                .current_dir(&wt);
            for pair in inv["env"].as_array().expect("env") {
                cmd.env(
                    pair[0].as_str().expect("a name"),
                    pair[1].as_str().expect("a value"),
                );
            }
            let _ = cmd.output();
            rig.repo.git(&["worktree", "remove", "--force", &at]);
        }
        // git-orch's whole run: claim, worktree, the agent, commit, landing.
        let started = Instant::now();
        let out = rig.run(&[]);
        orch.push(started.elapsed().as_secs_f64());
        assert_eq!(code(&out), Some(0), "{}", both(&out));
        // The same CLI alone, as git-orch ran it, in the same worktree.
        rig.server
            .push(vec![Turn::write("src/a.txt", &format!("alone {round}\n"))]);
        let inv = &doc["invocation"];
        let line = inv["line"].as_str().expect("as set up");
        // The task's place again (its worktree went back to the pool).
        let wt = worktree(&rig.repo);
        if !wt.join(".git").exists() {
            let _ = std::fs::remove_dir_all(&wt);
            rig.repo.git(&[
                "worktree",
                "add",
                "-q",
                "--detach",
                &wt.to_string_lossy(),
                "orch/p/work",
            ]);
        }
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", line]).current_dir(&wt);
        for pair in inv["env"].as_array().expect("as set up") {
            cmd.env(
                pair[0].as_str().expect("as set up"),
                pair[1].as_str().expect("as set up"),
            );
        }
        let started = Instant::now();
        let out = cmd.output().expect("as set up");
        alone.push(started.elapsed().as_secs_f64());
        // The same once more inside the pid-namespace wrapper git-orch runs
        // every task in, to tell its cost from git-orch's own.
        if std::env::var_os("ORCH_BENCH_WRAPPED").is_some() {
            rig.server.push(vec![Turn::write(
                "src/a.txt",
                &format!("wrapped {round}\n"),
            )]);
            let mut cmd = std::process::Command::new("bwrap");
            cmd.args([
                "--dev-bind",
                "/",
                "/",
                "--proc",
                "/proc",
                "--unshare-pid",
                "--die-with-parent",
                "sh",
                "-c",
                line,
            ])
            .current_dir(&wt);
            for pair in inv["env"].as_array().expect("as set up") {
                cmd.env(
                    pair[0].as_str().expect("as set up"),
                    pair[1].as_str().expect("as set up"),
                );
            }
            let started = Instant::now();
            let _ = cmd.output();
            println!(
                "{cli:?} round {round}: alone {:.0} ms, in the wrapper {:.0} ms",
                alone.last().copied().unwrap_or(0.0) * 1000.0,
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (a, o) = (median(&mut alone), median(&mut orch));
    println!(
        "{:<12} alone {:>7.0} ms   git orch run {:>7.0} ms   ratio {:.2}x   over 1.1x: {:+.0} ms (target <= +50 ms)",
        format!("{cli:?}"),
        a * 1000.0,
        o * 1000.0,
        o / a,
        (o - 1.1 * a) * 1000.0
    );
}

#[test]
fn codex_rides_out_one_429_when_its_provider_retries_once() {
    offline("codex_429_once", || {
        let Some(rig) = Rig::new(
            "codex_429_once",
            Cli::Codex,
            vec![Turn::rate_limit(), Turn::write("src/a.txt", "x\n")],
        ) else {
            return;
        };
        // The tests' provider retries no stream; a user's (and Codex's
        // own default) does: one retry here, as `args` can say.
        let more =
            format!("args = [\"-c\", \"model_providers.{CODEX_PROVIDER}.stream_max_retries=1\"]");
        rig.start(&more, "", "");
        let out = rig.run(&[]);
        assert_eq!(code(&out), Some(0), "{}\n{}", both(&out), rig.server.log());
        let t = rig.task();
        assert_eq!(t["attempts"], 1, "{t}");
        assert_eq!(t["usage"][0]["outcome"], "success", "{t}");
    });
}

#[test]
fn with_no_model_server_codex_fails_within_the_attempts_time_never_hangs() {
    offline("codex_no_server", || {
        let Some(rig) = Rig::new("codex_no_server", Cli::Codex, vec![]) else {
            return;
        };
        rig.server.shutdown();
        // Codex itself waits for the network with no end: the attempt's
        // time limit ends it.
        rig.start("timeout = \"8s\"", "", "");
        let started = std::time::Instant::now();
        let out = rig.run(&[]);
        assert_eq!(code(&out), Some(1), "{}", both(&out));
        let t = rig.task();
        assert_eq!(t["state"], "failed", "{t}");
        assert!(
            t["reason"]
                .as_str()
                .expect("a reason")
                .contains("timed out")
                || t["reason"].as_str().expect("a reason").contains("time"),
            "{t}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
    });
}

#[test]
fn a_codex_review_rejection_resumes_its_thread_with_the_comments() {
    offline("codex_review_resume", || {
        let Some(rig) = Rig::new(
            "codex_review_resume",
            Cli::Codex,
            vec![
                Turn::write("src/a.txt", "first\n"),
                Turn::text("VERDICT: reject: write second"),
                Turn::write("src/a.txt", "second\n"),
                Turn::text("VERDICT: approve"),
            ],
        ) else {
            return;
        };
        let reviewer = rig.profile("rev", "");
        rig.start(
            "retries = 1\nretry_backoff = \"1s\"",
            "review = { agent = \"rev\" }",
            &reviewer,
        );
        let out = rig.run(&[]);
        assert_eq!(code(&out), Some(0), "{}\n{}", both(&out), rig.server.log());
        assert_eq!(rig.work_file("src/a.txt").as_deref(), Some("second\n"));
        let t = rig.task();
        let usage = t["usage"].as_array().expect("usage");
        let second = usage.iter().find(|u| u["attempt"] == 2).expect("attempt 2");
        assert_eq!(second["resumed"], true, "{t}");
        assert_eq!(second["session"], usage[0]["session"], "{t}");
        assert!(rig
            .server
            .main_requests()
            .iter()
            .any(|r| r.body_text().contains("write second")));
    });
}

#[test]
fn a_task_reopened_to_fix_its_work_forward_continues_its_agents_session() {
    offline("claude_code_reopen_resume", || {
        let Some(rig) = Rig::new(
            "claude_code_reopen_resume",
            Cli::Claude,
            vec![
                Turn::write("src/a.txt", "first\n"),
                Turn::write("src/b.txt", "fixed forward\n"),
            ],
        ) else {
            return;
        };
        // A task done by hand beside it keeps the phase open, so that `a`
        // can be reopened in it.
        rig.start(
            "",
            "\n[[phases.tasks]]\nid = \"b\"\nfiles = [\"other/**\"]",
            "",
        );
        let out = rig.run(&["--task", "a"]);
        assert_eq!(code(&out), Some(0), "{}", both(&out));
        rig.repo.orch_ok(&["task", "reopen", "a"]);
        let out = rig.run(&["--task", "a"]);
        assert_eq!(code(&out), Some(0), "{}\n{}", both(&out), rig.server.log());
        assert_eq!(
            rig.work_file("src/b.txt").as_deref(),
            Some("fixed forward\n")
        );
        let t = rig.task();
        let usage = t["usage"].as_array().expect("usage");
        let last = usage.last().expect("an attempt");
        assert_eq!(last["resumed"], true, "{t}");
        assert_eq!(last["session"], usage[0]["session"], "{t}");
    });
}
