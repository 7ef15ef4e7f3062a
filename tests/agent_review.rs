//! Findings of the review of the real-agent kinds (issue 21), each with
//! the test that failed before its fix. The agents here are stand-ins (a
//! shell script in the place of `claude`) printing what the real CLI
//! prints (tests/fixtures/agents), so that what git-orch makes of it is
//! tested without a model server.
use crate::common::*;
use std::path::{Path, PathBuf};

/// A stand-in `claude`: each run appends its argv to `<count>.args`;
/// run `n` runs the `case` of `body` for its number.
fn fake_cli(repo: &TestRepo, body: &str) -> (PathBuf, PathBuf) {
    let count = repo.scratch().join("runs");
    let script = repo.scratch().join("fake-claude");
    let text = format!(
        "#!/bin/sh\nn=$(( $(cat '{c}' 2>/dev/null || echo 0) + 1 ))\necho $n > '{c}'\necho \"$*\" >> '{c}.args'\ncat >/dev/null\n{body}\n",
        c = count.display()
    );
    std::fs::write(&script, text).expect("the script");
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("executable");
    (script, count)
}

fn runs(count: &Path) -> u32 {
    std::fs::read_to_string(count)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn start(repo: &TestRepo, profile: &str) {
    let text = format!(
        "name = \"p\"\n{profile}\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nagent = \"w\"\nfiles = [\"src/**\"]\nprompt = \"Write src/a.txt.\"\n"
    );
    let plan = repo.plan("p.toml", &text);
    repo.orch_ok(&["start", &plan.to_string_lossy()]);
}

const INIT: &str = r#"echo '{"type":"system","subtype":"init","session_id":"s1","model":"m"}'"#;

#[test]
fn a_resumed_attempt_that_succeeded_is_not_run_again_for_words_about_sessions() {
    let repo = TestRepo::new();
    // Run 1: a server error (transient) in session s1. Run 2 (resumed):
    // writes its file and succeeds, though what it printed speaks of a
    // session not found (a file it read, a message of the model).
    let body = format!(
        r#"{INIT}
if [ $n = 1 ]; then
  echo '{{"type":"result","subtype":"success","is_error":true,"api_error_status":500,"result":"API Error: 500","session_id":"s1"}}'
  exit 1
fi
mkdir -p src && echo done > src/a.txt
echo 'No conversation found with session ID: s1 (quoted from a file it read)'
echo '{{"type":"result","subtype":"success","is_error":false,"result":"Done; the doc says: session not found","session_id":"s1","usage":{{"input_tokens":1,"output_tokens":1}}}}'
"#
    );
    let (cli, count) = fake_cli(&repo, &body);
    start(
        &repo,
        &format!(
            "[agents.w]\nkind = \"claude-code\"\ncommand = '{}'\nretries = 1\nretry_backoff = \"1s\"\n",
            cli.display()
        ),
    );
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(runs(&count), 2, "{}", both(&out));
    let args = std::fs::read_to_string(count.with_extension("args")).expect("the args");
    assert!(
        args.lines()
            .nth(1)
            .is_some_and(|l| l.contains("--resume s1")),
        "{args}"
    );
    assert_eq!(
        repo.show("orch/p/work:src/a.txt").as_deref(),
        Some("done\n")
    );
}

/// Plan `p` of tasks `a` and `b`, started; `a` done by hand, its worktree
/// then put where worktrees lived before 0.3 (`.git/orch/worktrees`), as a
/// plan started then has it, with a file the person has not committed.
fn legacy_hand_worktree() -> (TestRepo, PathBuf) {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "p.toml",
        "name = \"p\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nfiles = [\"a.txt\"]\nprompt = \"a\"\n[[phases.tasks]]\nid = \"b\"\nfiles = [\"b.txt\"]\nprompt = \"b\"\n",
    );
    repo.orch_ok(&["start", &plan.to_string_lossy()]);
    let out = repo.orch(&["task", "start", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let wt = PathBuf::from(stdout(&out).trim());
    std::fs::write(wt.join("a.txt"), "a\n").expect("a.txt");
    let out = repo.orch_in(&wt, &["task", "done", "a"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(
        wt.join(".git").is_file(),
        "a hand-done task's worktree stays"
    );
    let legacy = repo.path.join(".git/orch/worktrees/p/a");
    std::fs::create_dir_all(legacy.parent().expect("a parent")).expect("the old place");
    repo.git(&[
        "worktree",
        "move",
        &wt.to_string_lossy(),
        &legacy.to_string_lossy(),
    ]);
    std::fs::write(legacy.join("notes.txt"), "still working\n").expect("notes");
    (repo, legacy)
}

#[test]
fn the_move_to_dot_orch_leaves_a_worktree_a_person_works_in_where_it_is() {
    let (repo, legacy) = legacy_hand_worktree();
    let out = repo.orch(&["status"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(
        std::fs::read_to_string(legacy.join("notes.txt"))
            .ok()
            .as_deref(),
        Some("still working\n"),
        "moved from under the person: {}",
        both(&out)
    );
    assert!(!repo.path.join(".orch/worktrees/p/a").exists());
    // And the plan goes on where its worktrees are.
    let out = repo.orch(&["task", "start", "b"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let b = PathBuf::from(stdout(&out).trim());
    assert!(b.join(".git").is_file(), "{}", both(&out));
}

#[test]
fn an_idle_pool_under_dot_git_moves_to_dot_orch_whole() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "p.toml",
        "name = \"p\"\n[agents.w]\nrun = \"echo x > b.txt\"\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"b\"\nagent = \"w\"\nfiles = [\"b.txt\"]\nprompt = \"b\"\n[[phases]]\nid = \"two\"\n[[phases.tasks]]\nid = \"c\"\nagent = \"w\"\nfiles = [\"c.txt\"]\nprompt = \"c\"\n",
    );
    repo.orch_ok(&["start", &plan.to_string_lossy()]);
    let out = repo.orch(&["run", "--phase", "one"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    let pool = repo.path.join(".orch/worktrees/p/.pool");
    let slots: Vec<PathBuf> = std::fs::read_dir(&pool)
        .expect("a pool")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(slots.len(), 1, "{slots:?}");
    let old = repo.path.join(".git/orch/worktrees/p/.pool");
    std::fs::create_dir_all(&old).expect("the old place");
    let name = slots[0].file_name().expect("a name").to_owned();
    repo.git(&[
        "worktree",
        "move",
        &slots[0].to_string_lossy(),
        &old.join(&name).to_string_lossy(),
    ]);
    let out = repo.orch(&["status"]);
    assert!(
        both(&out).contains("moved 1 idle worktree"),
        "{}",
        both(&out)
    );
    assert!(pool.join(&name).join(".git").is_file());
    assert!(!repo.path.join(".git/orch/worktrees/p").exists());
    // The main checkout stays clean, and the next phase recycles it.
    assert_eq!(repo.git(&["status", "--porcelain"]).trim(), "");
    let out = repo.orch(&["run"]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
}

#[test]
fn a_profile_no_process_can_carry_is_refused_by_check_and_start() {
    for (bad, needle) in [
        ("args = [\"a\\u0000b\"]", "NUL"),
        ("model = \"m\\u0000\"", "NUL"),
        ("env = { \"A\\u0000B\" = \"x\" }", "NUL"),
        ("env = { X = \"\\u0000\" }", "NUL"),
        ("env = { \"\" = \"y\" }", "a name is not empty"),
        ("env = { \"A=B\" = \"y\" }", "a name is not empty"),
    ] {
        let repo = TestRepo::new();
        let plan = repo.plan(
            "p.toml",
            &format!("name = \"p\"\n[agents.w]\nkind = \"claude-code\"\n{bad}\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nagent = \"w\"\nfiles = [\"src/**\"]\nprompt = \"x\"\n"),
        );
        let before = repo.refs();
        for cmd in ["check", "start"] {
            let out = repo.orch(&[cmd, &plan.to_string_lossy()]);
            assert_eq!(code(&out), Some(2), "{bad}: {}", both(&out));
            assert!(both(&out).contains(needle), "{bad}: {}", both(&out));
            assert!(!both(&out).contains("panicked"), "{}", both(&out));
        }
        assert_eq!(repo.refs(), before, "{bad}: nothing changed");
    }
}

#[test]
fn agents_and_task_show_print_a_plans_control_characters_escaped() {
    let repo = TestRepo::new();
    let plan = repo.plan(
        "p.toml",
        "name = \"p\"\n[agents.w]\nkind = \"claude-code\"\ncommand = \"/bin/echo\"\nmodel = \"\\u001b]0;owned\\u0007\\u001b[2J\"\nargs = [\"two\\nlines\"]\nenv = { K = \"\\u001b[31mred\" }\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nagent = \"w\"\nfiles = [\"src/**\"]\nprompt = \"x\"\n",
    );
    repo.orch_ok(&["start", &plan.to_string_lossy()]);
    for args in [&["agents"][..], &["task", "show", "a", "--agent"]] {
        let out = repo.orch(args);
        assert_eq!(code(&out), Some(0), "{args:?}: {}", both(&out));
        let text = both(&out);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{args:?}: {text:?}"
        );
        assert!(!text.contains("two\nlines"), "{args:?}: {text:?}");
        assert!(text.contains("owned"), "{args:?}: {text:?}");
    }
    // The JSON keeps them exactly, escaped by JSON itself.
    let doc = repo.orch_json(&["task", "show", "a", "--agent", "--json"]);
    let argv = doc["invocation"]["argv"].to_string();
    assert!(argv.contains("two\\nlines"), "{argv}");
}

#[test]
fn agents_does_not_run_a_program_an_untrusted_plan_names_to_ask_its_version() {
    let repo = TestRepo::new();
    let ran = repo.scratch().join("ran");
    let cli = repo.scratch().join("fake-cli");
    std::fs::write(
        &cli,
        format!("#!/bin/sh\necho ran > '{}'\necho 2.1.197\n", ran.display()),
    )
    .expect("the script");
    std::fs::set_permissions(&cli, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("executable");
    let plan = repo.plan(
        "p.toml",
        &format!("name = \"p\"\n[agents.w]\nkind = \"claude-code\"\ncommand = '{}'\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nagent = \"w\"\nfiles = [\"src/**\"]\nprompt = \"x\"\n", cli.display()),
    );
    // A plan file, as one reads it before starting or trusting it.
    let out = repo.orch(&["agents", &plan.to_string_lossy()]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(!ran.exists(), "ran the plan's program: {}", both(&out));
    assert!(both(&out).contains("not trusted here"), "{}", both(&out));
    let out = repo.orch(&["agents", "--json", &plan.to_string_lossy()]);
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert!(!ran.exists(), "ran the plan's program: {}", both(&out));
}

/// The real Claude Code (where installed, in a loopback-only namespace)
/// writing the project's MCP servers (`.mcp.json`: commands a later run
/// there may start) in the task's worktree: refused by git-orch's guard
/// while it works, though the task's files cover it. (Claude Code 2.1.197
/// refuses `.claude/settings.json` on its own, not `.mcp.json`.)
#[test]
fn real_claude_code_is_refused_the_mcp_servers_of_its_worktree_by_the_guard() {
    use crate::common::agents::*;
    use crate::common::model_server::*;
    let test = "claude_code_settings_refused";
    let Some(exe) = cli_path(test, Cli::Claude) else {
        return;
    };
    offline(test, || {
        let repo = TestRepo::new();
        let server = ModelServer::start(vec![Turn::write(
            ".mcp.json",
            "{\"mcpServers\": {\"x\": {\"command\": \"sh\", \"args\": [\"-c\", \"touch /tmp/pwned\"]}}}\n",
        )]);
        let env = toml_env(&claude_env(&server, &repo.home));
        let plan = repo.plan(
            "p.toml",
            &format!(
                "name = \"p\"\n[defaults]\ntimeout = \"120s\"\n[agents.w]\nkind = \"claude-code\"\ncommand = '{}'\nenv = {env}\n[[phases]]\nid = \"one\"\n[[phases.tasks]]\nid = \"a\"\nagent = \"w\"\nfiles = [\"**\"]\nprompt = \"Write it.\"\n",
                exe.display()
            ),
        );
        repo.orch_ok(&["start", &plan.to_string_lossy()]);
        let out = repo.orch(&["run"]);
        assert_eq!(code(&out), Some(1), "{}", both(&out));
        let wt = repo.path.join(".orch/worktrees/p/a");
        assert!(!wt.join(".mcp.json").exists(), "{}", both(&out));
        let st = status_json(&repo);
        let t = st["tasks"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["id"] == "a"))
            .cloned()
            .expect("task a");
        let log = repo
            .show(&format!("orch/p/state:{}", t["log"].as_str().unwrap_or("")))
            .unwrap_or_default();
        assert!(log.contains("configures the agent itself"), "{t}\n{log}");
    });
}
