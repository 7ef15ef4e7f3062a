//! `git orch guard`: the `PreToolUse` hook git-orch gives Claude Code.
//! Claude Code runs it before each file write and shell command, with the
//! call as JSON on stdin; only exit 2 blocks a call (exit 1 or a crash
//! lets it through), so every doubt here is a refusal: a write is allowed
//! only to a path inside the task's worktree that its `files` cover, and
//! the Bash tool only when the profile says `shell = true`.

use std::path::{Component, Path, PathBuf};

/// What the guard knows of the task.
pub struct Rules<'a> {
    pub worktree: &'a Path,
    pub files: &'a [String],
    pub shell: bool,
    pub read_only: bool,
}

/// The keys of a tool call's input that name a file it writes.
const PATH_KEYS: [&str; 3] = ["file_path", "notebook_path", "path"];

/// `Ok`: the call may go ahead; `Err`: why it is refused (what the agent
/// is told).
pub fn check(input: &[u8], rules: &Rules) -> Result<(), String> {
    let call: serde_json::Value = serde_json::from_slice(input)
        .map_err(|e| format!("git-orch cannot read this tool call ({e}); refused"))?;
    let tool = call
        .get("tool_name")
        .and_then(|t| t.as_str())
        .ok_or("git-orch cannot read this tool call (no tool_name); refused")?;
    let input = call.get("tool_input");
    match tool {
        "Bash" if rules.shell && !rules.read_only => Ok(()),
        "Bash" => Err(
            "shell commands are off for this task (its agent profile has no `shell = true`); edit files with the Write and Edit tools"
                .into(),
        ),
        "Write" | "Edit" | "MultiEdit" | "NotebookEdit" => {
            if rules.read_only {
                return Err("this is a review: it reads and changes nothing".into());
            }
            // Every path the call names is checked: a tool reads the one
            // it knows, and a call may carry both (or a path that is not
            // a string).
            let mut paths = Vec::new();
            for key in PATH_KEYS {
                match input.and_then(|i| i.get(key)) {
                    None => {}
                    Some(serde_json::Value::String(p)) => paths.push(p.as_str()),
                    Some(_) => {
                        return Err(format!(
                            "git-orch cannot read the `{key}` of this {tool} call; refused"
                        ))
                    }
                }
            }
            if paths.is_empty() {
                return Err(format!(
                    "git-orch cannot read the path of this {tool} call; refused"
                ));
            }
            let cwd = call.get("cwd").and_then(|c| c.as_str());
            for path in paths {
                let rel = inside(rules.worktree, cwd, path)?;
                if agent_config(&rel) {
                    return Err(format!(
                        "`{rel}` configures the agent itself (its hooks, permissions, tools), which its next run would obey; refused"
                    ));
                }
                if rules.files.is_empty() {
                    continue;
                }
                let scope = crate::plan::Scope::new(rules.files)
                    .map_err(|e| format!("git-orch cannot read the task's files ({e}); refused"))?;
                if !scope.matches(&rel) {
                    return Err(format!(
                        "`{rel}` is outside this task's files ({}); change only those",
                        rules.files.join(", ")
                    ));
                }
            }
            Ok(())
        }
        // Only the tools above are matched by the hook; anything else that
        // reaches it is unknown to this version: refused.
        other => Err(format!("git-orch does not know the tool `{other}`; refused")),
    }
}

/// Whether `rel` is one of Claude Code's own files in the worktree: its
/// project settings (`.claude/settings.json`, `settings.local.json`: hooks
/// it runs, permissions, `disableAllHooks`) or MCP servers (`.mcp.json`).
/// Written by the agent, they would run commands or turn this guard off
/// in its next attempt, in the same worktree.
fn agent_config(rel: &str) -> bool {
    Path::new(rel).components().any(|c| {
        matches!(c, Component::Normal(n)
            if n.eq_ignore_ascii_case(".claude") || n.eq_ignore_ascii_case(".mcp.json"))
    })
}

/// `path` relative to the worktree, if it is inside it: resolved against
/// `cwd`, `..` taken lexically, and every existing ancestor's symlinks
/// followed (a link in the worktree pointing out of it is outside).
fn inside(worktree: &Path, cwd: Option<&str>, path: &str) -> Result<String, String> {
    let refuse = || format!("`{}` is outside this task's worktree", path.escape_debug());
    // A NUL (no file has one) or another control character: no doubt taken.
    if path.chars().any(char::is_control) {
        return Err(refuse());
    }
    let p = Path::new(path);
    let joined = match (p.is_absolute(), cwd) {
        (true, _) => p.to_path_buf(),
        (false, Some(c)) => Path::new(c).join(p),
        (false, None) => worktree.join(p),
    };
    // A `..` is refused: after a link it means one place to the kernel
    // and another to a tool that resolves it by name.
    let mut clean = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => return Err(refuse()),
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    // The longest part of it that exists (a dangling link exists: a write
    // through it lands where it points), with its links resolved.
    let mut existing = clean.clone();
    let mut rest = Vec::new();
    while std::fs::symlink_metadata(&existing).is_err() {
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return Err(refuse()),
        }
    }
    let mut real = std::fs::canonicalize(&existing).map_err(|_| refuse())?;
    for name in rest.into_iter().rev() {
        real.push(name);
    }
    let root = std::fs::canonicalize(worktree).map_err(|_| refuse())?;
    let rel = real.strip_prefix(&root).map_err(|_| refuse())?;
    // No `.git` anywhere: the worktree's own (its link to the repository)
    // nor a nested one (a submodule's, a repository of its own).
    let dot_git = |c: Component| matches!(c, Component::Normal(n) if n.to_string_lossy().eq_ignore_ascii_case(".git"));
    if rel.as_os_str().is_empty() || rel.components().any(dot_git) {
        return Err(refuse());
    }
    Ok(rel.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(tool: &str, path: &str) -> Vec<u8> {
        serde_json::json!({"tool_name": tool, "tool_input": {"file_path": path, "content": "x"}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn only_writes_to_the_tasks_files_inside_its_worktree_pass() {
        let dir = tempfile::tempdir().expect("as set up");
        let wt = dir.path().join("wt");
        std::fs::create_dir_all(wt.join("src")).expect("as set up");
        std::os::unix::fs::symlink(dir.path(), wt.join("src/out")).expect("as set up");
        let files = vec!["src/**".to_string()];
        let rules = Rules {
            worktree: &wt,
            files: &files,
            shell: false,
            read_only: false,
        };
        let at = |p: &str| wt.join(p).to_string_lossy().into_owned();
        assert_eq!(check(&call("Write", &at("src/a.rs")), &rules), Ok(()));
        assert_eq!(check(&call("Edit", &at("src/new/b.rs")), &rules), Ok(()));
        for bad in [
            at("README.md"),
            at("src/../README.md"),
            at("src/out/x"),
            "/etc/passwd".into(),
            at(".git/config"),
        ] {
            assert!(check(&call("Write", &bad), &rules).is_err(), "{bad}");
        }
        assert!(check(&call("Bash", "ls"), &rules).is_err());
        assert!(check(b"not json", &rules).is_err());
        assert!(check(br#"{"tool_name":"Write"}"#, &rules).is_err());
        let shell = Rules {
            shell: true,
            ..rules
        };
        assert_eq!(check(&call("Bash", ""), &shell), Ok(()));
        let review = Rules {
            read_only: true,
            ..shell
        };
        assert!(check(&call("Write", &at("src/a.rs")), &review).is_err());
        assert!(check(&call("Bash", ""), &review).is_err());
    }
}

#[cfg(test)]
mod review_tests {
    //! Bypasses found reviewing the guard (issue 21): each passed before.
    use super::*;

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let wt = dir.path().join("wt");
        std::fs::create_dir_all(wt.join("src")).expect("the worktree");
        (dir, wt)
    }

    fn write(path: &str) -> Vec<u8> {
        serde_json::json!({"tool_name": "Write", "tool_input": {"file_path": path, "content": "x"}})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn a_dangling_link_in_scope_pointing_out_is_refused() {
        let (dir, wt) = setup();
        let target = dir.path().join("outside.txt");
        std::os::unix::fs::symlink(&target, wt.join("src/a.rs")).expect("a link");
        std::os::unix::fs::symlink(dir.path().join("nodir"), wt.join("src/d")).expect("a link");
        let files = vec!["src/**".to_string()];
        let rules = Rules {
            worktree: &wt,
            files: &files,
            shell: false,
            read_only: false,
        };
        for p in ["src/a.rs", "src/d/x.rs"] {
            let at = wt.join(p).to_string_lossy().into_owned();
            assert!(check(&write(&at), &rules).is_err(), "{p}");
        }
    }

    #[test]
    fn a_call_naming_two_paths_is_checked_on_both_and_a_non_string_path_is_refused() {
        let (dir, wt) = setup();
        let rules = Rules {
            worktree: &wt,
            files: &[],
            shell: false,
            read_only: false,
        };
        let inside = wt.join("src/n.ipynb").to_string_lossy().into_owned();
        let outside = dir.path().join("evil.ipynb").to_string_lossy().into_owned();
        let both = serde_json::json!({"tool_name": "NotebookEdit",
            "tool_input": {"file_path": inside, "notebook_path": outside, "new_source": "x"}});
        assert!(check(both.to_string().as_bytes(), &rules).is_err());
        let odd = serde_json::json!({"tool_name": "Write",
            "tool_input": {"file_path": [outside], "notebook_path": inside}});
        assert!(check(odd.to_string().as_bytes(), &rules).is_err());
        let multi = serde_json::json!({"tool_name": "MultiEdit",
            "tool_input": {"file_path": inside, "edits": [{"old_string": "a", "new_string": "b"}]}});
        assert_eq!(check(multi.to_string().as_bytes(), &rules), Ok(()));
    }

    #[test]
    fn dot_dot_and_nested_dot_git_are_refused_relative_or_not() {
        let (dir, wt) = setup();
        std::os::unix::fs::symlink(dir.path(), wt.join("src/up")).expect("a link");
        let rules = Rules {
            worktree: &wt,
            files: &[],
            shell: false,
            read_only: false,
        };
        let at = |p: &str| wt.join(p).to_string_lossy().into_owned();
        for bad in [
            // The kernel reads `up/..` as the link's target's parent.
            at("src/up/../wt/src/x"),
            "src/../../x".to_string(),
            at("sub/.git/hooks/post-checkout"),
            at(".GIT/config"),
            at(".git"),
            at("src/a\u{0}b"),
            at("src/a\nb"),
        ] {
            assert!(check(&write(&bad), &rules).is_err(), "{bad}");
        }
        // Relative, with and without the cwd Claude Code sends.
        assert_eq!(check(&write("src/ok.rs"), &rules), Ok(()));
        let with_cwd = serde_json::json!({"tool_name": "Write", "cwd": wt,
            "tool_input": {"file_path": "src/ok.rs"}});
        assert_eq!(check(with_cwd.to_string().as_bytes(), &rules), Ok(()));
        let elsewhere = serde_json::json!({"tool_name": "Write", "cwd": dir.path(),
            "tool_input": {"file_path": "src/ok.rs"}});
        assert!(check(elsewhere.to_string().as_bytes(), &rules).is_err());
    }

    #[test]
    fn a_worktree_reached_through_a_link_is_still_the_worktree() {
        let (dir, wt) = setup();
        let link = dir.path().join("wt-link");
        std::os::unix::fs::symlink(&wt, &link).expect("a link");
        let files = vec!["src/**".to_string()];
        let rules = Rules {
            worktree: &link,
            files: &files,
            shell: false,
            read_only: false,
        };
        assert_eq!(
            check(&write(&wt.join("src/a.rs").to_string_lossy()), &rules),
            Ok(())
        );
        assert_eq!(
            check(&write(&link.join("src/a.rs").to_string_lossy()), &rules),
            Ok(())
        );
        assert!(check(&write(&link.join("b.rs").to_string_lossy()), &rules).is_err());
        // Huge and non-UTF-8 input: refused, no panic.
        let mut huge = b"{\"tool_name\":\"Write\",\"x\":\"".to_vec();
        huge.extend(std::iter::repeat_n(b'a', 1 << 20));
        assert!(check(&huge, &rules).is_err());
        assert!(check(b"{\"tool_name\":\"Write\xff\"}", &rules).is_err());
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn the_agent_cannot_write_the_settings_its_next_run_obeys() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let wt = dir.path().join("wt");
        std::fs::create_dir_all(&wt).expect("the worktree");
        // Anywhere in the worktree (no `files`), or a `files` that covers them.
        for files in [vec![], vec!["**".to_string()]] {
            let rules = Rules {
                worktree: &wt,
                files: &files,
                shell: false,
                read_only: false,
            };
            for bad in [
                ".claude/settings.json",
                ".claude/settings.local.json",
                ".Claude/hooks/x.sh",
                ".mcp.json",
            ] {
                let call = serde_json::json!({"tool_name": "Write",
                    "tool_input": {"file_path": wt.join(bad), "content": "{\"disableAllHooks\": true}"}});
                assert!(check(call.to_string().as_bytes(), &rules).is_err(), "{bad}");
            }
            let ok = serde_json::json!({"tool_name": "Write",
                "tool_input": {"file_path": wt.join("CLAUDE.md"), "content": "notes"}});
            assert_eq!(check(ok.to_string().as_bytes(), &rules), Ok(()));
        }
    }
}
