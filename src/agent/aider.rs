//! aider: it takes no prompt on stdin, so its brief is a file it is told
//! to read (`--message-file`, never the text in argv); it is given the
//! task's files to edit and nothing else, leaves git alone (`--no-git`:
//! git-orch commits), answers no question with a blanket yes, checks for no update,
//! sends no analytics, and keeps its chat history outside the worktree,
//! where a later attempt restores it.

use super::{program, Context, Invocation, Purpose};
use crate::plan::Agent;

pub fn invocation(profile: &Agent, cx: &Context) -> Invocation {
    let mut argv = vec![
        program(profile),
        "--message-file".into(),
        cx.brief.to_string_lossy().into_owned(),
        // git-orch commits; aider left to git writes the repository's
        // config, which a task may not touch.
        "--no-git".into(),
        "--no-auto-commits".into(),
        "--no-dirty-commits".into(),
        "--no-check-update".into(),
        "--analytics-disable".into(),
        "--no-show-model-warnings".into(),
        "--no-show-release-notes".into(),
        "--no-pretty".into(),
        "--no-fancy-input".into(),
        "--no-gitignore".into(),
        "--no-detect-urls".into(),
        "--no-suggest-shell-commands".into(),
        "--chat-history-file".into(),
        cx.dir
            .join("aider.chat.history.md")
            .to_string_lossy()
            .into_owned(),
        "--input-history-file".into(),
        cx.dir
            .join("aider.input.history")
            .to_string_lossy()
            .into_owned(),
    ];
    if cx.resume.is_some() {
        argv.push("--restore-chat-history".into());
    }
    if let Some(m) = &profile.model {
        argv.extend(["--model".into(), m.clone()]);
    }
    argv.extend(profile.args.iter().cloned());
    if cx.purpose != Purpose::Review {
        // Its files to edit: each plain path of the task's scope, and
        // every existing file a glob of it matches.
        argv.extend(editable(cx));
    }
    Invocation {
        argv,
        env: Vec::new(),
        stdin: None,
        files: Vec::new(),
        shell: None,
    }
}

fn editable(cx: &Context) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(scope) = crate::plan::Scope::new(cx.files) else {
        return out;
    };
    for f in cx.files {
        if !f.contains(['*', '?', '[']) && !f.ends_with('/') {
            out.push(f.clone());
        }
    }
    let globbed = cx
        .files
        .iter()
        .any(|f| f.contains(['*', '?', '[']) || f.ends_with('/'));
    if globbed {
        for entry in walkdir::WalkDir::new(cx.worktree)
            .into_iter()
            .filter_entry(|e| e.file_name() != ".git")
            .flatten()
            .filter(|e| e.file_type().is_file())
        {
            let Ok(rel) = entry.path().strip_prefix(cx.worktree) else {
                continue;
            };
            let rel = rel.to_string_lossy().into_owned();
            if scope.matches(&rel) && !out.contains(&rel) {
                out.push(rel);
            }
        }
    }
    out
}
