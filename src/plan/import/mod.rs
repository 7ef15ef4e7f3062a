//! `git orch import`: turning plans written for other tools into git-orch
//! plans. Two sources are understood:
//!
//! - spec-kit: `specs/NNN-slug/tasks.md` ([`speckit`]);
//! - Claudio: a `.claudio/` directory with `plan.md` and
//!   `phaseN/taskM/claude.md` ([`claudio`]).
//!
//! An importer returns an [`Imported`]: the plan plus what it inferred and
//! what it could not carry over, both shown to the user and kept as comments
//! at the top of the written file ([`emit`]).

pub mod claudio;
pub mod emit;
pub mod speckit;

#[cfg(test)]
mod fuzz_tests;

use std::path::{Component, Path, PathBuf};

use anyhow::Result;

use super::{validate_id, Plan};
use crate::error::{refuse, refuse_with_hint};

/// The result of an import.
#[derive(Debug, Clone)]
pub struct Imported {
    pub plan: Plan,
    /// `spec-kit` or `Claudio`.
    pub kind: &'static str,
    /// The source as shown to the user (repository-relative when possible).
    pub source: String,
    /// What was inferred, one line each.
    pub inferred: Vec<String>,
    /// What could not be carried over, one line each.
    pub not_imported: Vec<String>,
}

/// What a path given to `import` turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A spec-kit task list.
    SpecKit { tasks: PathBuf },
    /// The root of a Claudio project (the `.claudio` directory itself).
    Claudio { root: PathBuf },
}

/// Imports `path`; `name` overrides the derived plan name.
pub fn import(path: &Path, name: Option<&str>) -> Result<Imported> {
    if let Some(n) = name {
        validate_id("plan", n).map_err(|e| refuse(format!("bad --name: {e}")))?;
    }
    match detect(path)? {
        Source::SpecKit { tasks } => speckit::import(&tasks, name),
        Source::Claudio { root } => claudio::import(&root, name),
    }
}

fn is_dir_named(p: &Path, name: &str) -> bool {
    p.is_dir() && file_name(p).as_deref() == Some(name)
}

/// The last component of `p`, resolving `.` and `..` first.
pub(crate) fn file_name(p: &Path) -> Option<String> {
    let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    abs.file_name().map(|n| n.to_string_lossy().into_owned())
}

fn looks_like_claudio_root(dir: &Path) -> bool {
    dir.join("plan.md").is_file() && claudio::phase_dirs(dir).is_ok_and(|v| !v.is_empty())
}

/// Works out which importer a path is for.
pub fn detect(path: &Path) -> Result<Source> {
    let shown = path.display();
    if !path.exists() {
        return Err(refuse_with_hint(
            format!("`{shown}` does not exist"),
            "give a spec-kit tasks.md (or its specs/NNN-slug/ directory), or a Claudio project (.claudio/ or its parent)",
        ));
    }
    if path.is_dir() {
        if is_dir_named(path, ".claudio") || looks_like_claudio_root(path) {
            return Ok(Source::Claudio {
                root: path.to_path_buf(),
            });
        }
        let dot = path.join(".claudio");
        if dot.is_dir() {
            return Ok(Source::Claudio { root: dot });
        }
        let tasks = path.join("tasks.md");
        if tasks.is_file() {
            return Ok(Source::SpecKit { tasks });
        }
        // A `specs/` directory holding several features: make the user pick.
        let mut features: Vec<String> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("tasks.md").is_file())
            .map(|e| e.path().display().to_string())
            .collect();
        features.sort();
        if features.len() == 1 {
            return Ok(Source::SpecKit {
                tasks: PathBuf::from(&features[0]).join("tasks.md"),
            });
        }
        if !features.is_empty() {
            return Err(refuse_with_hint(
                format!(
                    "`{shown}` holds {} spec-kit features; import one at a time",
                    features.len()
                ),
                format!("for example `git orch import {}`", features[0]),
            ));
        }
        return Err(refuse_with_hint(
            format!("`{shown}` holds neither a spec-kit tasks.md nor a Claudio .claudio/ directory"),
            "give a spec-kit tasks.md (or its specs/NNN-slug/ directory), or a Claudio project (.claudio/ or its parent)",
        ));
    }
    let name = file_name(path).unwrap_or_default();
    let parent = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                PathBuf::from(".")
            } else {
                p.to_path_buf()
            }
        })
        .unwrap_or_else(|| PathBuf::from("."));
    // Inside a Claudio tree: `.claudio/plan.md`, `.claudio/phase1/tasks.md`,
    // `.claudio/phase1/task1/claude.md`.
    for up in parent.ancestors().take(3) {
        let up = if up.as_os_str().is_empty() {
            Path::new(".")
        } else {
            up
        };
        if is_dir_named(up, ".claudio") {
            return Ok(Source::Claudio {
                root: up.to_path_buf(),
            });
        }
    }
    if name == "plan.md" && looks_like_claudio_root(&parent) {
        return Ok(Source::Claudio { root: parent });
    }
    if parent
        .components()
        .any(|c| c.as_os_str().to_string_lossy() == "checklists")
        || file_name(&parent).as_deref() == Some("checklists")
    {
        return Err(refuse_with_hint(
            format!("`{shown}` is a spec-kit checklist, not a task list"),
            "import the feature's tasks.md (or its specs/NNN-slug/ directory)",
        ));
    }
    if !name.to_ascii_lowercase().ends_with(".md") {
        return Err(refuse_with_hint(
            format!("`{shown}` is not a markdown task list"),
            "give a spec-kit tasks.md (or its specs/NNN-slug/ directory), or a Claudio project (.claudio/ or its parent)",
        ));
    }
    Ok(Source::SpecKit {
        tasks: path.to_path_buf(),
    })
}

/// `p` as shown to the user and written into prompts: relative to the root
/// of the git repository that holds it when there is one (tasks run at that
/// root), else as given. Always with `/` separators.
pub(crate) fn shown_path(p: &Path) -> String {
    let abs = std::fs::canonicalize(p).ok();
    if let Some(abs) = &abs {
        let dir = if abs.is_dir() {
            abs.clone()
        } else {
            abs.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        if let Ok(repo) = git2::Repository::discover(&dir) {
            if let Some(root) = repo.workdir().and_then(|w| std::fs::canonicalize(w).ok()) {
                if let Ok(rel) = abs.strip_prefix(&root) {
                    let s = slashed(rel);
                    return if s.is_empty() { ".".to_string() } else { s };
                }
            }
        }
    }
    let s = slashed(p);
    if s.is_empty() {
        ".".to_string()
    } else {
        s
    }
}

/// A path with `/` separators and no `./` components.
pub(crate) fn slashed(p: &Path) -> String {
    let parts: Vec<String> = p
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| match c {
            Component::RootDir => String::new(),
            other => other.as_os_str().to_string_lossy().into_owned(),
        })
        .collect();
    let joined = parts.join("/");
    if p.is_absolute() && !joined.starts_with('/') {
        format!("/{joined}")
    } else {
        joined
    }
}

/// `dir/**` when `dir` (as shown by [`shown_path`]) is a directory inside
/// the repository, for a task's `reads`; `None` for the root or a path
/// outside it.
pub(crate) fn reads_glob(dir: &str) -> Option<String> {
    let inside = !dir.is_empty()
        && dir != "."
        && !dir.starts_with('/')
        && !dir.split('/').any(|c| c == "..");
    inside.then(|| format!("{}/**", dir.trim_end_matches('/')))
}

/// Joins a directory shown by [`shown_path`] and a name inside it.
pub(crate) fn join_shown(dir: &str, name: &str) -> String {
    if dir == "." || dir.is_empty() {
        name.to_string()
    } else {
        format!("{}/{name}", dir.trim_end_matches('/'))
    }
}

/// Turns free text into an id: lowercase ASCII letters and digits, runs of
/// anything else become one `-`, at most 64 characters. `None` when nothing
/// usable is left.
pub fn slug(text: &str) -> Option<String> {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if c == '.' && !out.is_empty() && !out.ends_with(['.', '-']) {
            out.push('.');
        } else if !out.is_empty() && !out.ends_with(['-', '.']) {
            out.push('-');
        }
    }
    let mut out: String = out.chars().take(64).collect();
    while out.ends_with(['-', '.']) {
        out.pop();
    }
    if out.ends_with(".lock") {
        out.truncate(out.len() - ".lock".len());
        out.push_str("-lock");
    }
    (!out.is_empty() && validate_id("plan", &out).is_ok()).then_some(out)
}

/// Makes `id` unique among `taken` by appending `-2`, `-3`, … and records
/// it; a reserved phase id (`start`, `state`, `work`, `tasks`) is never
/// handed out.
pub(crate) fn unique(id: String, taken: &mut Vec<String>) -> String {
    let mut candidate = id.clone();
    let mut n = 2;
    while taken.contains(&candidate)
        || crate::plan::RESERVED_PHASE_IDS.contains(&candidate.as_str())
    {
        candidate = format!("{id}-{n}");
        n += 1;
    }
    taken.push(candidate.clone());
    candidate
}

/// The plan name: `--name`, else one derived from the source, refusing
/// with a hint when nothing valid can be derived.
pub(crate) fn plan_name(given: Option<&str>, derived: &[Option<String>]) -> Result<String> {
    if let Some(n) = given {
        return Ok(n.to_string());
    }
    derived.iter().flatten().next().cloned().ok_or_else(|| {
        refuse_with_hint(
            "cannot derive a plan name from the source",
            "give one with `--name NAME`",
        )
    })
}

/// Lists ids as `a, b and c`.
pub(crate) fn list(ids: &[String]) -> String {
    match ids {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Does `from` (a task id) depend, directly or not, on `to`?
pub(crate) fn reaches(plan: &Plan, from: &str, to: &str) -> bool {
    let mut stack = vec![from.to_string()];
    let mut seen: Vec<String> = Vec::new();
    while let Some(id) = stack.pop() {
        if id == to {
            return true;
        }
        if seen.contains(&id) {
            continue;
        }
        seen.push(id.clone());
        if let Some((_, t)) = plan.task(&id) {
            stack.extend(t.depends_on.iter().cloned());
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("Photo Albums").as_deref(), Some("photo-albums"));
        assert_eq!(slug("  Dark mode!! ").as_deref(), Some("dark-mode"));
        assert_eq!(slug("v1.2 release").as_deref(), Some("v1.2-release"));
        assert_eq!(slug("x.lock").as_deref(), Some("x-lock"));
        assert_eq!(slug("🎯"), None);
        assert_eq!(slug(&"a".repeat(80)).map(|s| s.len()), Some(64));
    }

    #[test]
    fn reads_globs() {
        assert_eq!(reads_glob("specs/001-x").as_deref(), Some("specs/001-x/**"));
        assert_eq!(reads_glob(".claudio").as_deref(), Some(".claudio/**"));
        assert_eq!(reads_glob("."), None);
        assert_eq!(reads_glob("/tmp/x"), None);
        assert_eq!(reads_glob("../x"), None);
    }

    #[test]
    fn unique_ids() {
        let mut taken = vec!["a".to_string()];
        assert_eq!(unique("a".into(), &mut taken), "a-2");
        assert_eq!(unique("a".into(), &mut taken), "a-3");
        assert_eq!(unique("start".into(), &mut taken), "start-2");
        assert_eq!(unique("work".into(), &mut taken), "work-2");
        assert_eq!(unique("tasks".into(), &mut taken), "tasks-2");
    }

    #[test]
    fn lists() {
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(list(&ids(&["a"])), "a");
        assert_eq!(list(&ids(&["a", "b", "c"])), "a, b and c");
    }

    #[test]
    fn detect_refuses_missing_and_checklists() {
        let tmp = tempfile::tempdir().expect("tmp");
        let missing = tmp.path().join("nope");
        assert!(detect(&missing).is_err());
        let cl = tmp.path().join("specs/001-x/checklists");
        std::fs::create_dir_all(&cl).expect("mkdir");
        std::fs::write(cl.join("requirements.md"), "- [ ] CHK001 x\n").expect("write");
        let err = detect(&cl.join("requirements.md")).expect_err("checklist");
        assert!(err.to_string().contains("checklist"), "{err}");
        std::fs::write(tmp.path().join("specs/001-x/tasks.md"), "").expect("write");
        assert_eq!(
            detect(&tmp.path().join("specs/001-x")).expect("dir"),
            Source::SpecKit {
                tasks: tmp.path().join("specs/001-x/tasks.md")
            }
        );
        // One feature under specs/: that one.
        assert!(matches!(
            detect(&tmp.path().join("specs")).expect("one feature"),
            Source::SpecKit { .. }
        ));
        std::fs::create_dir_all(tmp.path().join("specs/002-y")).expect("mkdir");
        std::fs::write(tmp.path().join("specs/002-y/tasks.md"), "").expect("write");
        let err = detect(&tmp.path().join("specs")).expect_err("several");
        assert!(err.to_string().contains("2 spec-kit features"), "{err}");
    }
}
