//! Driving the real agent CLIs (Claude Code, Codex, aider) offline, against
//! the scripted [`ModelServer`] (issue 21): where each CLI is installed
//! ([`cli_path`]), the environment and minimal command line that point it at
//! the server with nothing going to the internet ([`claude_env`],
//! [`codex_env`], [`aider_env`], [`command`]), and [`offline`], which runs a
//! test body inside a loopback-only network namespace (or SKIPs loudly).
//! The versions are pinned in `tests/tools.versions`; `.ci/run` installs
//! them under `${GIT_ORCH_AGENTS:-$HOME/.cache/git-orch/agents}`.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::model_server::ModelServer;

/// The three agent CLIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cli {
    Claude,
    Codex,
    Aider,
}

impl Cli {
    pub fn name(self) -> &'static str {
        match self {
            Cli::Claude => "claude",
            Cli::Codex => "codex",
            Cli::Aider => "aider",
        }
    }

    /// Its name in `tests/tools.versions`.
    pub fn package(self) -> &'static str {
        match self {
            Cli::Claude => "claude-code",
            Cli::Codex => "codex",
            Cli::Aider => "aider-chat",
        }
    }
}

/// Where `.ci/run` installs the agent CLIs.
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("GIT_ORCH_AGENTS") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/git-orch/agents"),
    }
}

/// The pinned version of `cli` (from `tests/tools.versions`).
pub fn pinned_version(cli: Cli) -> String {
    let text = include_str!("../tools.versions");
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(name, _)| *name == cli.package())
        .map(|(_, v)| v.trim().to_string())
        .expect("tests/tools.versions pins every agent CLI")
}

/// The CLI's executable: the cache dir `.ci/run` installs into first, then
/// PATH. `None` after a loud `SKIP {test}: …` line on stderr when neither
/// has it, or when running in [`offline`]'s user-namespace fallback (not
/// root), where the real CLIs misbehave.
pub fn cli_path(test: &str, cli: Cli) -> Option<PathBuf> {
    if std::env::var_os("GIT_ORCH_NETNS_CHILD").is_some() {
        // Measured as a non-root user under `unshare -rn` (uid 0 in a user
        // namespace): Claude Code 2.1.197 prints nothing and exits 0, or
        // hangs; the CLIs are only run where the namespace is made as root.
        skip(
            test,
            &format!(
                "{} is not run in a user namespace (not root: `unshare -rn`), where \
                 Claude Code 2.1.197 prints nothing and exits 0 or hangs; run as root (CI)",
                cli.name()
            ),
        );
        return None;
    }
    let cached = match cli {
        Cli::Claude => cache_dir().join("npm/node_modules/.bin/claude"),
        Cli::Codex => cache_dir().join("npm/node_modules/.bin/codex"),
        Cli::Aider => cache_dir().join("aider/bin/aider"),
    };
    if cached.is_file() {
        return Some(cached);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(cli.name()))
            .find(|p| p.is_file())
    });
    if on_path.is_none() {
        skip(
            test,
            &format!(
                "{} is not installed (not in {} nor on PATH; .ci/run installs {} {})",
                cli.name(),
                cache_dir().display(),
                cli.package(),
                pinned_version(cli)
            ),
        );
    }
    on_path
}

/// Prints a loud SKIP line straight to stderr (the test harness swallows
/// the `eprintln!` of a passing test; a skip must be seen).
pub fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {why}");
}

/// Runs `body` inside a new network namespace whose only interface is `lo`
/// (up): the [`ModelServer`] it starts and every process it spawns are in
/// there, so nothing can reach the internet and a test that passes proved
/// it needs none. `test` is the test's full name (`module::name`).
///
/// As root (CI): `body` runs on a thread of its own that moved itself into
/// the namespace (`unshare(CLONE_NEWNET)`, `ip link set lo up`) and its
/// value is returned. Otherwise (`EPERM`): the test binary runs this one
/// test again under `unshare -rn` (a user namespace where it is root, with
/// `lo` up), with `GIT_ORCH_NETNS_CHILD` naming it so that `offline` in
/// there runs `body` at once; a failure there fails this test with its
/// output, and `None` is returned (the value stays in the child). `None`
/// after a loud SKIP when neither can be made (no `unshare`/`ip`, or user
/// namespaces disabled). A panic in `body` is the test's panic.
pub fn offline<T: Send>(test: &str, body: impl FnOnce() -> T + Send) -> Option<T> {
    if std::env::var("GIT_ORCH_NETNS_CHILD").is_ok_and(|t| t == test) {
        return Some(body());
    }
    let joined = std::thread::scope(|s| {
        s.spawn(|| -> Result<T, (String, bool)> {
            enter_loopback_netns()?;
            Ok(body())
        })
        .join()
    });
    match joined {
        Ok(Ok(value)) => Some(value),
        Ok(Err((why, eperm))) => {
            if eperm {
                match rerun_in_user_netns(test) {
                    Ok(()) => return None,
                    Err(child) => {
                        skip(
                            test,
                            &format!(
                                "no loopback-only network namespace could be made: {why}; \
                                 and `unshare -rn` failed: {child}"
                            ),
                        );
                        return None;
                    }
                }
            }
            skip(
                test,
                &format!("no loopback-only network namespace could be made: {why}"),
            );
            None
        }
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs `test` again, alone, in this test binary under `unshare -rn` with
/// `lo` up. `Err` when the namespace could not be made (then the test was
/// not run); a test failure in there panics here with its output.
fn rerun_in_user_netns(test: &str) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new("unshare")
        .args(["-rn", "sh", "-c"])
        .arg("ip link set lo up || exit 97; exec \"$0\" \"$@\"")
        .arg(&exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("GIT_ORCH_NETNS_CHILD", test)
        .output()
        .map_err(|e| format!("`unshare`: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.code() == Some(97) || (!out.status.success() && !text.contains("running 1 test"))
    {
        return Err(text.trim().lines().last().unwrap_or("").to_string());
    }
    // The child's SKIP lines (a CLI missing, say) are this test's.
    for line in text.lines().filter(|l| l.starts_with("SKIP ")) {
        let _ = writeln!(std::io::stderr(), "{line}");
    }
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{test} failed in its network namespace (`unshare -rn`):\n{text}"
    );
    Ok(())
}

/// Moves the calling thread (only it: namespaces are per thread on Linux)
/// into a new network namespace and brings its loopback up.
/// `Err((why, eperm))`: `eperm` when the kernel said "not permitted".
fn enter_loopback_netns() -> Result<(), (String, bool)> {
    unshare_net().map_err(|e| {
        (
            format!("unshare(CLONE_NEWNET): {e}"),
            e.raw_os_error() == Some(libc::EPERM),
        )
    })?;
    let out = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .output()
        .map_err(|e| (format!("`ip link set lo up`: {e}"), false))?;
    if !out.status.success() {
        return Err((
            format!(
                "`ip link set lo up`: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            false,
        ));
    }
    Ok(())
}

#[allow(unsafe_code)]
fn unshare_net() -> std::io::Result<()> {
    // SAFETY: unshare(2) with CLONE_NEWNET takes no pointers; it only
    // changes the network namespace of the calling thread.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn pairs(list: &[(&str, String)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Claude Code's environment: the server as its API, a scratch `HOME` and
/// config dir under `home`, no side traffic (auto-update, telemetry, error
/// reports) and its own retries capped at 1 (uncapped, an always-429
/// server keeps it retrying for minutes; set `CLAUDE_CODE_MAX_RETRIES`
/// again after this to change it).
pub fn claude_env(server: &ModelServer, home: &Path) -> Vec<(String, String)> {
    pairs(&[
        ("HOME", home.display().to_string()),
        (
            "CLAUDE_CONFIG_DIR",
            home.join(".claude").display().to_string(),
        ),
        ("ANTHROPIC_BASE_URL", server.url()),
        ("ANTHROPIC_API_KEY", "sk-ant-scripted-test-key".into()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".into()),
        ("DISABLE_AUTOUPDATER", "1".into()),
        ("DISABLE_TELEMETRY", "1".into()),
        ("DISABLE_ERROR_REPORTING", "1".into()),
        ("CLAUDE_CODE_MAX_RETRIES", "1".into()),
    ])
}

/// The Codex model the tests name: one Codex 0.171.0 knows, so it offers
/// its full tool set (an unknown name falls back to a shell tool only).
pub const CODEX_MODEL: &str = "gpt-5.5";

/// The provider name of [`codex_home`]'s config.
pub const CODEX_PROVIDER: &str = "scripted";

/// Makes a `CODEX_HOME` for the server and returns it: a temp dir under the
/// cargo target dir (NOT under `$TMPDIR`: there Codex's bubblewrap helper
/// fails, every command it runs fails, and it still exits 0), holding a
/// `config.toml` with a custom provider on the server (Responses API, one
/// request retry, no stream retry) and analytics and plugins off (they
/// cost ~5 s of failed side traffic at exit). Keep the `TempDir`.
pub fn codex_home(server: &ModelServer) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("codex-home-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("a CODEX_HOME under the target dir");
    let config = format!(
        "model = \"{CODEX_MODEL}\"\n\
         model_provider = \"{CODEX_PROVIDER}\"\n\
         \n\
         [model_providers.{CODEX_PROVIDER}]\n\
         name = \"Scripted test server\"\n\
         base_url = \"{}/v1\"\n\
         env_key = \"SCRIPTED_API_KEY\"\n\
         wire_api = \"responses\"\n\
         request_max_retries = 1\n\
         stream_max_retries = 0\n\
         \n\
         [analytics]\n\
         enabled = false\n\
         \n\
         [features]\n\
         plugins = false\n",
        server.url()
    );
    std::fs::write(dir.path().join("config.toml"), config).expect("write codex config.toml");
    dir
}

/// Codex's environment: `HOME` under `home`, `CODEX_HOME` (from
/// [`codex_home`]) and the provider's key.
pub fn codex_env(codex_home: &Path, home: &Path) -> Vec<(String, String)> {
    pairs(&[
        ("HOME", home.display().to_string()),
        ("CODEX_HOME", codex_home.display().to_string()),
        ("SCRIPTED_API_KEY", "sk-scripted-test-key".into()),
    ])
}

/// The aider model the tests name (`openai/` routes it to
/// `OPENAI_API_BASE` through litellm).
pub const AIDER_MODEL: &str = "openai/scripted-model";

/// aider's environment: the server as its OpenAI base, `HOME` under `home`.
pub fn aider_env(server: &ModelServer, home: &Path) -> Vec<(String, String)> {
    pairs(&[
        ("HOME", home.display().to_string()),
        ("OPENAI_API_BASE", format!("{}/v1", server.url())),
        ("OPENAI_API_KEY", "sk-scripted-test-key".into()),
    ])
}

/// Writes the `--model-metadata-file` aider needs (without one it fetches
/// a price list from the internet) into `dir` and returns its path.
pub fn aider_metadata(dir: &Path) -> PathBuf {
    let path = dir.join("aider-model-metadata.json");
    let meta = serde_json::json!({ AIDER_MODEL: {
        "max_tokens": 8192, "max_input_tokens": 128000, "max_output_tokens": 8192,
        "input_cost_per_token": 0.000003, "output_cost_per_token": 0.000015,
        "litellm_provider": "openai", "mode": "chat"
    }});
    std::fs::write(&path, meta.to_string()).expect("write aider metadata");
    path
}

/// The minimal argv (after the executable) each CLI needs to run one
/// prompt non-interactively, the prompt read from stdin (never argv: a long
/// brief overflows it):
/// - Claude Code: `-p --output-format json --permission-mode acceptEdits`;
/// - Codex: `exec --json --sandbox workspace-write --skip-git-repo-check -`
///   (the default sandbox is read-only: nothing written, exit 0);
/// - aider: reads no prompt from stdin, so `prompt` is given with
///   `--message-file`; `metadata` from [`aider_metadata`].
pub fn args(cli: Cli, prompt_file: Option<&Path>, metadata: Option<&Path>) -> Vec<String> {
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match cli {
        Cli::Claude => v(&[
            "-p",
            "--output-format",
            "json",
            "--permission-mode",
            "acceptEdits",
        ]),
        Cli::Codex => v(&[
            "exec",
            "--json",
            "--sandbox",
            "workspace-write",
            "--skip-git-repo-check",
            "-",
        ]),
        Cli::Aider => {
            let mut a = v(&[
                "--model",
                AIDER_MODEL,
                "--edit-format",
                "whole",
                "--yes-always",
                "--no-check-update",
                "--analytics-disable",
                "--no-show-model-warnings",
                "--no-show-release-notes",
                "--no-pretty",
                "--no-fancy-input",
                "--map-tokens",
                "0",
                "--no-gitignore",
                "--no-auto-commits",
            ]);
            if let Some(m) = metadata {
                a.push("--model-metadata-file".into());
                a.push(m.display().to_string());
            }
            if let Some(p) = prompt_file {
                a.push("--message-file".into());
                a.push(p.display().to_string());
            }
            a
        }
    }
}

/// Runs `cmd` with `stdin` as its input, killing it after `timeout`
/// (then the output so far is returned and `timed_out` says so).
pub fn run(mut cmd: Command, stdin: &[u8], timeout: Duration) -> (Output, bool) {
    use std::os::unix::process::CommandExt;
    // Its own process group, so a timeout kills the CLI's children too
    // (Codex's npm entry point is a node wrapper around the binary).
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().expect("spawn the agent CLI");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader_out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut buf);
        buf
    });
    let reader_err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut buf);
        buf
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the agent CLI") {
            break status;
        }
        if start.elapsed() > timeout {
            timed_out = true;
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.kill();
            break child.wait().expect("wait for the killed agent CLI");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = writer.join();
    let stdout = reader_out.join().unwrap_or_default();
    let stderr = reader_err.join().unwrap_or_default();
    (
        Output {
            status,
            stdout,
            stderr,
        },
        timed_out,
    )
}

/// `env` as a TOML inline table (`{ "K" = "V", … }`), for an
/// `[agents.NAME] env = …` line of a plan that runs the real CLI through
/// git-orch: e.g. `toml_env(&claude_env(&server, &repo.home))`.
pub fn toml_env(env: &[(String, String)]) -> String {
    let items: Vec<String> = env
        .iter()
        .map(|(k, v)| {
            format!(
                "{} = {}",
                toml::Value::String(k.clone()),
                toml::Value::String(v.clone())
            )
        })
        .collect();
    format!("{{ {} }}", items.join(", "))
}
