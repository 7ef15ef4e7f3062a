//! Codex (`codex exec`): the brief on stdin (`-`), JSON-lines events
//! (`thread.started` names the session, `turn.completed` carries usage,
//! `turn.failed` and `error` say what went wrong), and its own sandbox
//! in `workspace-write` mode rooted at the task's worktree (read-only for
//! a review). Its side traffic (analytics, plugins) is turned off with
//! `-c` overrides, which leave the user's own `~/.codex` (their login,
//! their providers) as it is.

use super::{program, Context, Invocation, Purpose};
use crate::plan::Agent;

pub fn invocation(profile: &Agent, cx: &Context) -> Invocation {
    let sandbox = match cx.purpose {
        Purpose::Review => "read-only",
        _ => "workspace-write",
    };
    let mut argv = vec![
        program(profile),
        "exec".into(),
        "--json".into(),
        "--sandbox".into(),
        sandbox.into(),
        "--cd".into(),
        cx.worktree.to_string_lossy().into_owned(),
        "--skip-git-repo-check".into(),
        "--color".into(),
        "never".into(),
        "-c".into(),
        "analytics.enabled=false".into(),
        "-c".into(),
        "features.plugins=false".into(),
    ];
    if let Some(m) = &profile.model {
        argv.extend(["--model".into(), m.clone()]);
    }
    argv.extend(profile.args.iter().cloned());
    if let Some(s) = cx.resume {
        argv.extend(["resume".into(), s.to_string()]);
    }
    argv.push("-".into());
    Invocation {
        argv,
        env: Vec::new(),
        stdin: Some(cx.brief.to_path_buf()),
        files: Vec::new(),
        shell: None,
    }
}
