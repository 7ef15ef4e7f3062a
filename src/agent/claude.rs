//! Claude Code (`claude -p`): the brief on stdin, `stream-json` output
//! (its last line is the result: cost, usage, session, refused calls),
//! edits accepted in its working directory only, and a `PreToolUse` hook
//! (`git orch guard`, from a settings file outside the worktree) that
//! refuses every write outside the task's `files`, and the Bash tool
//! unless the profile says `shell = true`.

use super::{default_env, guard_command, program, Context, Invocation, Purpose};
use crate::plan::Agent;

/// Its own retries: enough to ride out one 429 in the attempt, few enough
/// that the plan's retry policy decides the rest (uncapped, an always-429
/// server kept it retrying past 150 s).
pub const MAX_RETRIES: &str = "2";

/// Tools that act beyond the task's worktree or outlive its attempt (other
/// worktrees, scheduled runs, workflows), which the guard hook does not
/// see: never offered to a task's agent.
const OUT_OF_REACH: &str =
    "EnterWorktree ExitWorktree CronCreate CronDelete ScheduleWakeup Workflow";

pub fn invocation(profile: &Agent, cx: &Context) -> Invocation {
    let shell = profile.shell.unwrap_or(false) && cx.purpose != Purpose::Review;
    let settings = cx.dir.join("claude-settings.json");
    let hook = serde_json::json!({
        "hooks": {
            "PreToolUse": [{
                "matcher": "Write|Edit|MultiEdit|NotebookEdit|Bash",
                "hooks": [{ "type": "command", "command": guard_command(cx, shell) }]
            }]
        }
    });
    let mut argv = vec![
        program(profile),
        "-p".into(),
        "--output-format".into(),
        "stream-json".into(),
        "--verbose".into(),
        "--settings".into(),
        settings.to_string_lossy().into_owned(),
    ];
    match cx.purpose {
        Purpose::Review => argv.extend([
            "--disallowedTools".into(),
            format!("Write Edit MultiEdit NotebookEdit Bash {OUT_OF_REACH}"),
        ]),
        _ => {
            argv.extend(["--permission-mode".into(), "acceptEdits".into()]);
            if shell {
                argv.extend(["--allowedTools".into(), "Bash".into()]);
                argv.extend(["--disallowedTools".into(), OUT_OF_REACH.into()]);
            } else {
                argv.extend(["--disallowedTools".into(), format!("Bash {OUT_OF_REACH}")]);
            }
        }
    }
    if let Some(m) = &profile.model {
        argv.extend(["--model".into(), m.clone()]);
    }
    if let Some(s) = cx.resume {
        argv.extend(["--resume".into(), s.to_string()]);
    }
    argv.extend(profile.args.iter().cloned());
    let mut env = Vec::new();
    for (k, v) in [
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ("DISABLE_AUTOUPDATER", "1"),
        ("DISABLE_TELEMETRY", "1"),
        ("DISABLE_ERROR_REPORTING", "1"),
        ("CLAUDE_CODE_MAX_RETRIES", MAX_RETRIES),
        // A bounded wait for an answer; the attempt's timeout bounds the rest.
        ("API_TIMEOUT_MS", "300000"),
    ] {
        default_env(&mut env, k, v);
    }
    Invocation {
        argv,
        env,
        stdin: Some(cx.brief.to_path_buf()),
        files: vec![(settings, format!("{hook:#}\n"))],
        shell: None,
    }
}
