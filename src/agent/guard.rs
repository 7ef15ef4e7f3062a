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
    let field = |k: &str| input.and_then(|i| i.get(k)).and_then(|v| v.as_str());
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
            let path = field("file_path")
                .or_else(|| field("notebook_path"))
                .ok_or_else(|| format!("git-orch cannot read the path of this {tool} call; refused"))?;
            let cwd = call.get("cwd").and_then(|c| c.as_str());
            let rel = inside(rules.worktree, cwd, path)?;
            if rules.files.is_empty() {
                return Ok(());
            }
            let scope = crate::plan::Scope::new(rules.files)
                .map_err(|e| format!("git-orch cannot read the task's files ({e}); refused"))?;
            if scope.matches(&rel) {
                Ok(())
            } else {
                Err(format!(
                    "`{rel}` is outside this task's files ({}); change only those",
                    rules.files.join(", ")
                ))
            }
        }
        // Only the tools above are matched by the hook; anything else that
        // reaches it is unknown to this version: refused.
        other => Err(format!("git-orch does not know the tool `{other}`; refused")),
    }
}

/// `path` relative to the worktree, if it is inside it: resolved against
/// `cwd`, `..` taken lexically, and every existing ancestor's symlinks
/// followed (a link in the worktree pointing out of it is outside).
fn inside(worktree: &Path, cwd: Option<&str>, path: &str) -> Result<String, String> {
    let refuse = || format!("`{path}` is outside this task's worktree");
    let p = Path::new(path);
    let joined = match (p.is_absolute(), cwd) {
        (true, _) => p.to_path_buf(),
        (false, Some(c)) => Path::new(c).join(p),
        (false, None) => worktree.join(p),
    };
    let mut clean = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    // The longest part of it that exists, with its links resolved.
    let mut existing = clean.clone();
    let mut rest = Vec::new();
    while !existing.exists() {
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
    if rel.as_os_str().is_empty()
        || rel.components().next() == Some(Component::Normal(".git".as_ref()))
    {
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
