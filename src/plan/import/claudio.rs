//! Claudio's `.claudio/` layout (vinnie357/claudio):
//!
//! ```text
//! .claudio/
//!   plan.md                    # "### Phase N: Title" sections
//!   prd.md, discovery.md, …    # pointed to from each prompt
//!   phase1/
//!     tasks.md                 # phase overview (or the task list of a simple phase)
//!     task1/claude.md          # one task's context: becomes its prompt
//!     task1/status.md          # "Status: Completed" → skip = true
//!   shared/*/claude.md         # shared context: pointed to from each prompt
//! ```
//!
//! Phases are the `phaseN` directories in numeric order, tasks the
//! `taskM` directories in them (or, for a phase without task directories,
//! the `### Task M: …` sections or top-level checklist items of its
//! tasks.md). Claudio declares no write scopes, so no `files` are set.

use std::path::Path;

use anyhow::Result;

use super::speckit::{bold_field, heading, phase_heading};
use super::{join_shown, list, plan_name, reaches, shown_path, slug, unique, Imported};
use crate::error::refuse_with_hint;
use crate::plan::{validate_id, Defaults, Phase, Plan, Task};

/// The number in `phase1`, `phase_2`, `task-3-schema`: `prefix`, optional
/// separator, digits.
fn numbered(name: &str, prefix: &str) -> Option<u64> {
    let lower = name.to_ascii_lowercase();
    let rest = lower.strip_prefix(prefix)?;
    let rest = rest.trim_start_matches(['_', '-', ' ']);
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

fn numbered_dirs(dir: &Path, prefix: &str) -> std::io::Result<Vec<(u64, String)>> {
    let mut out: Vec<(u64, String)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            numbered(&name, prefix).map(|n| (n, name))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The `phaseN` directories of a Claudio root, in numeric order.
pub(crate) fn phase_dirs(root: &Path) -> std::io::Result<Vec<(u64, String)>> {
    numbered_dirs(root, "phase")
}

fn first_heading(text: &str) -> Option<String> {
    text.lines()
        .filter_map(heading)
        .map(|(_, t)| t)
        .find(|t| !t.is_empty())
}

/// `Task: Theme variables Context` → `Theme variables`.
fn clean_task_title(title: &str) -> String {
    let mut t = title.trim();
    // `get`, not a slice: a heading may open with a multi-byte character.
    if let Some(rest) = t
        .get(..4)
        .filter(|head| head.eq_ignore_ascii_case("task"))
        .and_then(|_| t.get(4..))
    {
        let rest = rest.trim_start();
        let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        let rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix([':', '-', '–', '—']) {
            t = r.trim();
        }
    }
    for suffix in [" - Context", " Task Context", " Context"] {
        if t.len() > suffix.len() && t.ends_with(suffix) {
            t = t[..t.len() - suffix.len()].trim_end();
            break;
        }
    }
    t.to_string()
}

/// `Dark Mode Implementation Plan` → `Dark Mode`.
fn strip_plan_words(title: &str) -> String {
    let mut t = title.trim().to_string();
    for words in ["implementation plan", "project plan", "plan"] {
        let lower = t.to_ascii_lowercase();
        if lower.ends_with(words) && lower.len() > words.len() {
            t.truncate(t.len() - words.len());
            t = t.trim_end_matches([' ', ':', '-', '–', '—']).to_string();
            break;
        }
        if let Some(rest) = lower.strip_prefix(words) {
            if rest.starts_with([':', ' ', '-', '–', '—']) && !rest.trim().is_empty() {
                t = t[words.len()..]
                    .trim_start_matches([' ', ':', '-', '–', '—'])
                    .to_string();
                break;
            }
        }
    }
    t
}

/// Does a task's status.md say it is finished?
fn completed(status_md: &str) -> bool {
    status_md.lines().any(|line| {
        let line = line.trim_start();
        let line = line
            .strip_prefix("- ")
            .or_else(|| line.strip_prefix("* "))
            .unwrap_or(line);
        let (key, value) = match bold_field(line) {
            Some(kv) => kv,
            None => match line
                .trim_start_matches(['-', '*', ' ', '#'])
                .split_once(':')
            {
                Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                None => return false,
            },
        };
        let key = key.to_ascii_lowercase();
        if !(key == "status" || key == "current status" || key == "task status") {
            return false;
        }
        // Template text such as `[In Progress/Completed/Blocked]` says nothing.
        if value.contains(['[', '/']) {
            return false;
        }
        let v = value
            .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_ascii_lowercase();
        value.starts_with('✅') || v.starts_with("complete") || v.starts_with("done")
    })
}

/// (phase number, task number) pairs named on the dependency lines of a
/// task context: `Depends on: Task 1`, `depends on phase1/task2`.
fn task_refs(text: &str) -> Vec<TaskRef> {
    let mut out = Vec::new();
    for line in text.lines() {
        let lower = line.to_ascii_lowercase();
        if !(lower.contains("depend")
            || lower.contains("prerequisite")
            || lower.contains("blocked by"))
        {
            continue;
        }
        let mut from = 0;
        while let Some(pos) = lower[from..].find("task") {
            let at = from + pos;
            from = at + 4;
            let after = lower[at + 4..].trim_start_matches([' ', '_', '-', '#']);
            let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
            let Ok(task) = digits.parse::<u64>() else {
                continue;
            };
            // A `phase N` just before it, with only separators between.
            let before = &lower[..at];
            let trimmed = before.trim_end_matches([' ', '/', ',', '-', '_']);
            let pdigits: String = trimmed
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            let phase = if pdigits.is_empty() {
                None
            } else {
                let head =
                    trimmed[..trimmed.len() - pdigits.len()].trim_end_matches([' ', '_', '-']);
                head.ends_with("phase")
                    .then(|| pdigits.parse::<u64>().ok())
                    .flatten()
            };
            if !out.contains(&(phase, task)) {
                out.push((phase, task));
            }
        }
    }
    out
}

/// A task reference: (phase number if named, task number).
type TaskRef = (Option<u64>, u64);

/// One task before it is placed in the plan.
struct Raw {
    id: String,
    number: u64,
    title: String,
    prompt: String,
    skip: bool,
    refs: Vec<TaskRef>,
}

/// Tasks written in a phase's tasks.md: `### Task N: Title` sections, or
/// else top-level checklist items.
fn tasks_in_list(text: &str) -> Vec<(u64, String, String, bool)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if let Some((level, h)) = heading(lines[i]) {
            if let Some(num) = numbered(&h, "task") {
                let title = clean_task_title(&h);
                let mut body = vec![lines[i].to_string()];
                let mut j = i + 1;
                while j < lines.len() {
                    if let Some((l, _)) = heading(lines[j]) {
                        if l <= level {
                            break;
                        }
                    }
                    body.push(lines[j].to_string());
                    j += 1;
                }
                let body = body.join("\n").trim().to_string();
                let done = completed(&body);
                out.push((num, title, body, done));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    if !out.is_empty() {
        return out;
    }
    let mut k = 0;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let item = line
            .strip_prefix("- [ ] ")
            .map(|t| (t, false))
            .or_else(|| line.strip_prefix("- [x] ").map(|t| (t, true)))
            .or_else(|| line.strip_prefix("- [X] ").map(|t| (t, true)));
        if let Some((text, done)) = item {
            k += 1;
            let title = text.trim().trim_matches('*').trim().to_string();
            let mut body = vec![text.trim().to_string()];
            let mut j = i + 1;
            while j < lines.len()
                && lines[j].starts_with([' ', '\t'])
                && !lines[j].trim().is_empty()
            {
                body.push(lines[j].trim_end().to_string());
                j += 1;
            }
            out.push((k, title, body.join("\n"), done));
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

/// Imports the Claudio project whose `.claudio` directory is `root`.
pub fn import(root: &Path, name: Option<&str>) -> Result<Imported> {
    let shown_root = shown_path(root);
    let read = |p: &Path| {
        std::fs::read_to_string(p)
            .ok()
            .map(|t| t.strip_prefix('\u{feff}').map(str::to_string).unwrap_or(t))
    };
    let plan_md = read(&root.join("plan.md"));
    let plan_title = plan_md.as_deref().and_then(first_heading);
    let mut phase_titles: Vec<(u64, String)> = Vec::new();
    if let Some(text) = &plan_md {
        for (level, h) in text.lines().filter_map(heading) {
            if level < 2 {
                continue;
            }
            if let Some((label, title)) = phase_heading(&h) {
                if let Ok(n) = label.parse::<u64>() {
                    if !title.is_empty() && !phase_titles.iter().any(|(m, _)| *m == n) {
                        phase_titles.push((n, title));
                    }
                }
            }
        }
    }
    let phases = phase_dirs(root).unwrap_or_default();
    if phases.is_empty() {
        return Err(refuse_with_hint(
            format!("`{shown_root}` has no phase directories (phase1/, phase2/, …)"),
            "run Claudio's task step first, or import a spec-kit tasks.md instead",
        ));
    }
    // Context every prompt points to.
    let mut context: Vec<String> = Vec::new();
    for (file, what) in [
        ("prd.md", "requirements"),
        ("plan.md", "implementation plan"),
        ("discovery.md", "project discovery"),
    ] {
        if root.join(file).is_file() {
            context.push(format!("`{}` ({what})", join_shown(&shown_root, file)));
        }
    }
    let mut shared: Vec<String> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root.join("shared")) {
        let mut dirs: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("claude.md").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        dirs.sort();
        for d in dirs {
            shared.push(format!(
                "`{}`",
                join_shown(&shown_root, &format!("shared/{d}/claude.md"))
            ));
        }
    }
    if !shared.is_empty() {
        context.push(format!("shared context {}", list(&shared)));
    }

    let derived_from_dir = super::file_name(root)
        .filter(|n| n != ".claudio")
        .or_else(|| {
            std::fs::canonicalize(root).ok().and_then(|p| {
                p.parent()
                    .and_then(|d| d.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
        });
    let name = plan_name(
        name,
        &[
            plan_title
                .as_deref()
                .map(strip_plan_words)
                .and_then(|t| slug(&t)),
            derived_from_dir.as_deref().and_then(slug),
        ],
    )?;
    let mut imp = Imported {
        plan: Plan {
            name,
            title: plan_title.clone(),
            base: None,
            defaults: Defaults::default(),
            gates: Vec::new(),
            phases: Vec::new(),
            notify: Vec::new(),
            agents: Default::default(),
            worktrees: Default::default(),
        },
        kind: "Claudio",
        source: shown_root.clone(),
        inferred: Vec::new(),
        not_imported: Vec::new(),
    };

    let mut phase_ids: Vec<String> = Vec::new();
    let mut task_ids: Vec<String> = Vec::new();
    // (phase number, task number) → task id, and each task's references.
    let mut index: Vec<((u64, u64), String)> = Vec::new();
    let mut refs: Vec<(String, u64, Vec<TaskRef>)> = Vec::new();
    let mut titled_from_plan = 0;
    let mut skipped: Vec<String> = Vec::new();
    for (pnum, pdir) in &phases {
        let pdir_path = root.join(pdir);
        let pid = slug(pdir).unwrap_or_else(|| format!("phase{pnum}"));
        let pid = unique(pid, &mut phase_ids);
        let tasks_md_path = pdir_path.join("tasks.md");
        let tasks_md = read(&tasks_md_path);
        let tasks_md_shown = join_shown(&shown_root, &format!("{pdir}/tasks.md"));
        let title = phase_titles
            .iter()
            .find(|(n, _)| n == pnum)
            .map(|(_, t)| {
                titled_from_plan += 1;
                t.clone()
            })
            .or_else(|| {
                tasks_md.as_deref().and_then(first_heading).map(|h| {
                    let h = phase_heading(&h).map(|(_, t)| t).unwrap_or(h);
                    clean_task_title(&h)
                        .trim_end_matches(" Tasks")
                        .trim()
                        .to_string()
                })
            })
            .filter(|t| !t.is_empty());
        let mut raws: Vec<Raw> = Vec::new();
        let task_dirs = numbered_dirs(&pdir_path, "task").unwrap_or_default();
        for (tnum, tdir) in &task_dirs {
            let tpath = pdir_path.join(tdir);
            let context_file = ["claude.md", "CLAUDE.md"]
                .iter()
                .map(|f| (f, tpath.join(f)))
                .find(|(_, p)| p.is_file());
            let Some((file, cpath)) = context_file else {
                imp.not_imported
                    .push(format!("{pdir}/{tdir}/: it has no claude.md"));
                continue;
            };
            let text = read(&cpath).unwrap_or_default();
            let context_shown = join_shown(&shown_root, &format!("{pdir}/{tdir}/{file}"));
            let title = first_heading(&text)
                .map(|h| clean_task_title(&h))
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| tdir.clone());
            let mut prompt = text.trim().to_string();
            prompt.push_str(&format!(
                "\n\n---\nImported from Claudio: `{context_shown}` (links in it are relative to that file)."
            ));
            let mut also = Vec::new();
            if tasks_md.is_some() {
                also.push(format!("`{tasks_md_shown}` (phase overview)"));
            }
            also.extend(context.iter().cloned());
            if !also.is_empty() {
                prompt.push_str(&format!("\nAlso read {}.", list(&also)));
            }
            prompt.push('\n');
            let skip = read(&tpath.join("status.md")).is_some_and(|s| completed(&s));
            raws.push(Raw {
                id: slug(&format!("{pdir}-{tdir}")).unwrap_or_else(|| format!("p{pnum}-t{tnum}")),
                number: *tnum,
                title,
                prompt,
                skip,
                refs: task_refs(&text),
            });
        }
        if task_dirs.is_empty() {
            if let Some(text) = &tasks_md {
                for (tnum, title, body, done) in tasks_in_list(text) {
                    let mut prompt = body.trim().to_string();
                    prompt.push_str(&format!(
                        "\n\n---\nImported from Claudio: a task of `{tasks_md_shown}` (read it for the phase's context)."
                    ));
                    if !context.is_empty() {
                        prompt.push_str(&format!("\nAlso read {}.", list(&context)));
                    }
                    prompt.push('\n');
                    raws.push(Raw {
                        id: slug(&format!("{pdir}-task{tnum}"))
                            .unwrap_or_else(|| format!("p{pnum}-t{tnum}")),
                        number: tnum,
                        title,
                        refs: task_refs(&body),
                        prompt,
                        skip: done,
                    });
                }
            }
        }
        if raws.is_empty() {
            imp.not_imported.push(format!(
                "{pdir}/: no task directories with a claude.md and no tasks in its tasks.md"
            ));
            continue;
        }
        let mut phase = Phase {
            id: pid,
            title,
            gates: Vec::new(),
            tasks: Vec::new(),
            review: None,
            on_gate_failure: None,
            on_conflict: None,
            on_failure: None,
        };
        for raw in raws {
            let id = unique(raw.id, &mut task_ids);
            debug_assert!(validate_id("task", &id).is_ok());
            index.push(((*pnum, raw.number), id.clone()));
            refs.push((id.clone(), *pnum, raw.refs));
            if raw.skip {
                skipped.push(id.clone());
            }
            phase.tasks.push(Task {
                id,
                title: Some(raw.title),
                prompt: Some(raw.prompt),
                // The prompt points into the Claudio tree: with a sparse
                // checkout it must be there.
                reads: super::reads_glob(&shown_root).into_iter().collect(),
                skip: raw.skip,
                ..Task::default()
            });
        }
        imp.plan.phases.push(phase);
    }
    if imp.plan.phases.is_empty() {
        return Err(refuse_with_hint(
            format!("no tasks found in `{shown_root}`"),
            "Claudio tasks are phaseN/taskM/claude.md files, or `### Task M: …` sections in phaseN/tasks.md",
        ));
    }

    let mut explicit: Vec<String> = Vec::new();
    for (id, pnum, task_refs) in refs {
        let mut added = Vec::new();
        for (rp, rt) in task_refs {
            let rp = rp.unwrap_or(pnum);
            let named = format!("phase {rp} task {rt}");
            let Some((_, dep)) = index.iter().find(|(k, _)| *k == (rp, rt)) else {
                imp.not_imported
                    .push(format!("{id} depends on {named}: there is no such task"));
                continue;
            };
            let dep = dep.clone();
            if dep == id {
                continue;
            }
            if rp > pnum {
                imp.not_imported
                    .push(format!("{id} depends on {dep}: {dep} is in a later phase"));
                continue;
            }
            if reaches(&imp.plan, &dep, &id) {
                imp.not_imported
                    .push(format!("{id} depends on {dep}: that would be a cycle"));
                continue;
            }
            if let Some(t) = imp
                .plan
                .phases
                .iter_mut()
                .flat_map(|p| p.tasks.iter_mut())
                .find(|t| t.id == id)
            {
                if !t.depends_on.contains(&dep) {
                    t.depends_on.push(dep.clone());
                    added.push(dep);
                }
            }
        }
        if !added.is_empty() {
            explicit.push(format!("{id} depends on {}", added.join(", ")));
        }
    }

    let n_phases = imp.plan.phases.len();
    let n_tasks: usize = imp.plan.phases.iter().map(|p| p.tasks.len()).sum();
    imp.inferred.push(format!(
        "{n_tasks} task{}, {n_phases} phase{}",
        if n_tasks == 1 { "" } else { "s" },
        if n_phases == 1 { "" } else { "s" }
    ));
    if titled_from_plan > 0 {
        imp.inferred.push(format!(
            "the titles of {titled_from_plan} phase{} from plan.md",
            if titled_from_plan == 1 { "" } else { "s" }
        ));
    }
    if !explicit.is_empty() {
        imp.inferred
            .push(format!("{} (from the task contexts)", explicit.join("; ")));
    }
    if !skipped.is_empty() {
        imp.inferred.push(format!(
            "skip = true for {} (marked completed)",
            list(&skipped)
        ));
    }
    imp.not_imported.push(
        "write scopes: Claudio tasks declare no files, so each task runs alone (add `files` to let tasks run side by side)"
            .to_string(),
    );
    if plan_md.is_some() {
        imp.not_imported
            .push("plan.md's timelines, resources and risks (pointed to from each prompt)".into());
    }
    Ok(imp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_names() {
        assert_eq!(numbered("phase1", "phase"), Some(1));
        assert_eq!(numbered("Phase_12-core", "phase"), Some(12));
        assert_eq!(numbered("task-3", "task"), Some(3));
        assert_eq!(numbered("shared", "phase"), None);
        assert_eq!(numbered("phase", "phase"), None);
    }

    #[test]
    fn titles() {
        assert_eq!(
            clean_task_title("Task: Theme Variables Context"),
            "Theme Variables"
        );
        assert_eq!(
            clean_task_title("Task 2: Preference storage"),
            "Preference storage"
        );
        assert_eq!(clean_task_title("Context"), "Context");
        assert_eq!(
            strip_plan_words("Dark Mode Implementation Plan"),
            "Dark Mode"
        );
        assert_eq!(strip_plan_words("Implementation Plan: Search"), "Search");
        assert_eq!(strip_plan_words("Plan"), "Plan");
    }

    #[test]
    fn status_files() {
        assert!(completed("# Task status\n- **Status**: Completed\n"));
        assert!(completed("Status: ✅ Done"));
        assert!(!completed(
            "- **Current Status**: [In Progress/Completed/Blocked]"
        ));
        assert!(!completed("**Status**: In Progress"));
        assert!(!completed("nothing here"));
    }

    #[test]
    fn references() {
        assert_eq!(
            task_refs("**Dependencies**: Task 1 and task2"),
            [(None, 1), (None, 2)]
        );
        assert_eq!(
            task_refs("- Depends on phase1/task3 being merged"),
            [(Some(1), 3)]
        );
        assert_eq!(task_refs("Prerequisite: Phase 2, Task 1"), [(Some(2), 1)]);
        assert!(task_refs("- Phase Context: ../tasks.md").is_empty());
        assert!(task_refs("Task 4 is next").is_empty());
    }

    #[test]
    fn simple_phase_lists() {
        let t = tasks_in_list(
            "# Phase 4\n\n### Task 1: Docs\nWrite them.\n\n### Task 2: Release\nShip.\n",
        );
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].0, t[0].1.as_str()), (1, "Docs"));
        assert!(t[0].2.contains("Write them."));
        let t = tasks_in_list("## Tasks\n- [ ] Write docs\n  - user guide\n- [x] Tag release\n");
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].2, "Write docs\n  - user guide");
        assert!(t[1].3);
    }
}

#[cfg(test)]
mod multibyte_tests {
    #[test]
    fn a_task_heading_opening_with_a_multi_byte_character_is_a_title() {
        assert_eq!(super::clean_task_title("été: plan"), "été: plan");
        assert_eq!(super::clean_task_title("日本語のタスク"), "日本語のタスク");
        assert_eq!(super::clean_task_title("Task: é"), "é");
    }
}
