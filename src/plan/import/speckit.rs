//! spec-kit's `tasks.md` (see shared/research/peers.md §4 for the grammar).
//!
//! - `## Phase N: Title` starts a phase (`phase-n`); any other `##` section
//!   that holds task lines is a phase too, named after its heading. `###`
//!   headings only group tasks and are ignored.
//! - `- [ ] T001 [P] [US1] Description` is a task; `[X]` marks it done
//!   (imported with `skip = true`). Ids may carry a suffix (`T002A`, `T1.2`,
//!   `T-003`, `T002-A`: see [`id_len`]). Indented checklist items under a
//!   task are its steps; any other checklist item inside a phase, or an id
//!   git-orch cannot use, stops the import: work is never left out quietly.
//! - A task without `[P]` depends on the task before it in its phase;
//!   "depends on T012, T013" in a description adds explicit dependencies.
//! - Paths named in a description become the task's `files`; the feature's
//!   own design documents named there become its `reads`.
//! - `**Checkpoint**:` lines are appended to the phase's title.
//! - Lines inside code fences never count (the template's examples live there).

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{join_shown, list, plan_name, reaches, shown_path, slug, unique, Imported};
use crate::error::{refuse, refuse_with_hint};
use crate::plan::{Defaults, Gate, Phase, Plan, Scope, Task};

/// The design documents spec-kit keeps beside tasks.md, with what they hold.
const DOCS: &[(&str, &str)] = &[
    ("spec.md", "requirements and user stories"),
    ("plan.md", "technical plan"),
    ("data-model.md", "data model"),
    ("research.md", "research and decisions"),
    ("quickstart.md", "validation scenarios"),
    ("contracts", "interface contracts"),
];

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawTask {
    pub id: String,
    pub done: bool,
    pub parallel: bool,
    pub story: Option<String>,
    pub desc: String,
    /// Indented checklist items under the task line: steps of this task.
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct RawPhase {
    /// `phase-1`, `phase-n`, or a slug of a non-phase heading.
    pub id: String,
    pub title: Option<String>,
    pub checkpoints: Vec<String>,
    /// `Purpose`, `Goal` and `Independent Test` lines, in order.
    pub context: Vec<(String, String)>,
    pub tasks: Vec<RawTask>,
}

#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub title: Option<String>,
    pub phases: Vec<RawPhase>,
    /// Lines that look like tasks but are not imported, with why.
    pub skipped: Vec<String>,
    /// `##` sections with prose about ordering that is not imported.
    pub prose: Vec<String>,
    /// Lines that stop the import: work that cannot be imported as a task
    /// must not be left out quietly.
    pub problems: Vec<String>,
}

#[derive(Debug, PartialEq)]
enum Line {
    Task(RawTask),
    Placeholder,
    /// A checklist item whose first word starts like a task id but is not one
    /// git-orch can use.
    BadId(String),
    /// A task id with nothing after it.
    NoDesc(String),
    Item(String),
    Other,
}

/// A markdown ATX heading: its level and text.
pub(crate) fn heading(line: &str) -> Option<(usize, String)> {
    let level = line.chars().take_while(|&c| c == '#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &line[level..];
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim_end();
    Some((level, text.to_string()))
}

/// `Phase 3: Title` → (`3`, `Title`); `Phase N` → (`n`, ``).
pub(crate) fn phase_heading(text: &str) -> Option<(String, String)> {
    let head = text.get(..5)?;
    if !head.eq_ignore_ascii_case("phase") {
        return None;
    }
    let rest = &text[5..];
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim_start();
    let label: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    let label = label.trim_end_matches('.').to_string();
    if label.is_empty() {
        return None;
    }
    let after = rest[label.len()..].trim_start_matches('.');
    let title = after
        .trim_start()
        .trim_start_matches([':', '-', '–', '—'])
        .trim();
    Some((label.to_ascii_lowercase(), title.to_string()))
}

/// `**Key**: value` or `**Key:** value` → (`Key`, `value`).
pub(crate) fn bold_field(line: &str) -> Option<(String, String)> {
    let rest = line.trim().strip_prefix("**")?;
    let end = rest.find("**")?;
    let key = rest[..end].trim().trim_end_matches(':').trim();
    let value = rest[end + 2..].trim_start().trim_start_matches(':').trim();
    Some((key.to_string(), value.to_string()))
}

/// The length of the task id at the start of `s`, if one is there. spec-kit
/// numbers tasks `T001`; files in the wild also insert tasks as `T002A`,
/// `T006a`, `T002-A`, `T002.1` and number them `T-003` or `T1.2`: `T`, an
/// optional `-` or `_`, digits, then letters and digits, optionally after a
/// `.`, `-` or `_`. A separator followed by `T` and a digit starts a range
/// (`T004-T007`), not a suffix.
pub(crate) fn id_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() != Some(&b'T') {
        return None;
    }
    let mut i = 1;
    if matches!(b.get(i), Some(b'-' | b'_')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    i += digits;
    loop {
        let run = |from: usize| {
            b[from..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric())
                .count()
        };
        match b.get(i) {
            Some(c) if c.is_ascii_alphanumeric() => i += run(i),
            Some(b'.' | b'-' | b'_') => {
                let next = run(i + 1);
                let range =
                    b.get(i + 1) == Some(&b'T') && b.get(i + 2).is_some_and(u8::is_ascii_digit);
                if next == 0 || range {
                    break;
                }
                i += 1 + next;
            }
            _ => break,
        }
    }
    Some(i)
}

/// `token` is a whole task id (see [`id_len`]) that git-orch accepts.
fn is_task_id(token: &str) -> bool {
    id_len(token) == Some(token.len()) && crate::plan::validate_id("task", token).is_ok()
}

/// `token` starts like a task id (`T` and a digit, or `T-`/`T_` and a digit).
fn looks_like_id(token: &str) -> bool {
    id_len(token).is_some()
}

fn task_line(line: &str) -> Line {
    let l = line.trim_start();
    let Some(rest) = l.strip_prefix("- [").or_else(|| l.strip_prefix("* [")) else {
        return Line::Other;
    };
    let mut chars = rest.chars();
    let done = match chars.next() {
        Some(' ') => false,
        Some('x' | 'X') => true,
        _ => return Line::Other,
    };
    let Some(rest) = chars.as_str().strip_prefix("] ") else {
        return Line::Other;
    };
    let rest = rest.trim_start();
    let (token, mut after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let token = token.trim_end_matches(':');
    if !is_task_id(token) {
        let placeholder = token.len() > 1
            && token.starts_with('T')
            && token[1..]
                .chars()
                .all(|c| matches!(c, 'X' | 'x' | '#' | 'N'));
        return if placeholder {
            Line::Placeholder
        } else if looks_like_id(token) {
            Line::BadId(token.to_string())
        } else {
            Line::Item(rest.trim().to_string())
        };
    }
    let mut parallel = false;
    let mut story = None;
    loop {
        after = after.trim_start();
        if let Some(r) = after.strip_prefix("[P]") {
            parallel = true;
            after = r;
        } else if let Some((label, r)) = after
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .filter(|(label, _)| {
                label
                    .strip_prefix("US")
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
            })
        {
            story = Some(label.to_string());
            after = r;
        } else {
            break;
        }
    }
    let desc = after.trim();
    if desc.is_empty() {
        return Line::NoDesc(token.to_string());
    }
    Line::Task(RawTask {
        id: token.to_string(),
        done,
        parallel,
        story,
        desc: desc.to_string(),
        steps: Vec::new(),
    })
}

/// Parses the text of a tasks.md.
pub(crate) fn parse(text: &str) -> Parsed {
    let mut out = Parsed::default();
    let mut fence: Option<&str> = None;
    // The section being read: a phase (index into out.phases), or prose.
    let mut current: Option<usize> = None;
    let mut section: Option<(String, bool)> = None; // (heading, mentions ordering)
    let mut pending: Option<RawPhase> = None; // a `##` section that may turn out to hold tasks
    let mut phase_ids: Vec<String> = Vec::new();
    let flush_prose = |section: &mut Option<(String, bool)>, prose: &mut Vec<String>| {
        if let Some((h, true)) = section.take() {
            prose.push(h);
        }
    };
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if let Some(f) = fence {
            if trimmed.starts_with(f) {
                fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") {
            fence = Some("```");
            continue;
        }
        if trimmed.starts_with("~~~") {
            fence = Some("~~~");
            continue;
        }
        if let Some((level, text)) = heading(line) {
            if level == 1 {
                if out.title.is_none() {
                    let t = text
                        .strip_prefix("Tasks:")
                        .or_else(|| text.strip_prefix("Tasks -"))
                        .unwrap_or(&text)
                        .trim();
                    out.title = (!t.is_empty()).then(|| t.to_string());
                }
                continue;
            }
            if level == 2 {
                flush_prose(&mut section, &mut out.prose);
                pending = None;
                current = None;
                if let Some((label, title)) = phase_heading(&text) {
                    let base = format!("phase-{label}");
                    let base = if crate::plan::validate_id("phase", &base).is_ok() {
                        base
                    } else {
                        slug(&base).unwrap_or_else(|| "phase".into())
                    };
                    let id = unique(base, &mut phase_ids);
                    out.phases.push(RawPhase {
                        id,
                        title: (!title.is_empty()).then_some(title),
                        ..RawPhase::default()
                    });
                    current = Some(out.phases.len() - 1);
                } else {
                    section = Some((text.clone(), false));
                    pending = Some(RawPhase {
                        id: slug(&text).unwrap_or_else(|| "tasks".into()),
                        title: Some(text),
                        ..RawPhase::default()
                    });
                }
            }
            continue;
        }
        match task_line(line) {
            Line::Task(task) => {
                if current.is_none() {
                    // Tasks under a non-phase heading (or before any
                    // heading): that section is a phase after all.
                    let mut phase = pending.take().unwrap_or_else(|| RawPhase {
                        id: "phase-0".into(),
                        ..RawPhase::default()
                    });
                    phase.id = unique(phase.id, &mut phase_ids);
                    section = None;
                    out.phases.push(phase);
                    current = Some(out.phases.len() - 1);
                }
                if let Some(i) = current {
                    out.phases[i].tasks.push(task);
                }
            }
            Line::Placeholder => out.skipped.push(format!(
                "line {}: template placeholder `{}`",
                n + 1,
                trimmed
            )),
            Line::BadId(token) => out.problems.push(format!(
                "line {}: `{token}` is not a task id git-orch can use (ids are `T` and digits, \
                 optionally with a suffix such as `T002A`, `T1.2` or `T002-A`)",
                n + 1
            )),
            Line::NoDesc(id) => out
                .problems
                .push(format!("line {}: task {id} has no description", n + 1)),
            Line::Item(text) => {
                let parent = current
                    .and_then(|i| out.phases[i].tasks.last_mut())
                    .filter(|_| line.starts_with(char::is_whitespace));
                if let Some(task) = parent {
                    // An indented checklist under a task: its steps.
                    task.steps.push(text);
                } else if current.is_some() {
                    out.problems.push(format!(
                        "line {}: checklist item without a task id: `{text}`",
                        n + 1
                    ));
                }
            }
            Line::Other => {
                if let (Some(i), Some((key, value))) = (current, bold_field(line)) {
                    let phase = &mut out.phases[i];
                    match key.to_ascii_lowercase().as_str() {
                        "checkpoint" if !value.is_empty() => phase.checkpoints.push(value),
                        "purpose" | "goal" | "independent test" if !value.is_empty() => {
                            phase.context.push((key, value))
                        }
                        _ => {}
                    }
                } else if let Some((heading, mentions)) = &mut section {
                    // Prose about order: a "Dependencies" section, or any
                    // section naming task ids (the template's boilerplate
                    // sections name none).
                    if heading.to_ascii_lowercase().contains("depend") || mentions_task_id(trimmed)
                    {
                        *mentions = true;
                    }
                }
            }
        }
    }
    flush_prose(&mut section, &mut out.prose);
    out
}

fn mentions_task_id(text: &str) -> bool {
    text.char_indices().any(|(i, c)| {
        c == 'T'
            && !text[..i].ends_with(|p: char| p.is_ascii_alphanumeric())
            && id_len(&text[i..]).is_some()
    })
}

/// Task ids named after "depends on" in a description: `T012, T013`,
/// `T004 and T007`, ranges `T004-T007`.
pub(crate) fn explicit_deps(desc: &str) -> Vec<String> {
    let lower = desc.to_ascii_lowercase();
    let mut out: Vec<String> = Vec::new();
    for needle in ["depends on", "depend on", "dependent on"] {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(needle) {
            let start = from + pos + needle.len();
            from = start;
            let mut rest = &desc[start..];
            let mut last: Option<(usize, usize)> = None; // (number, width) of the last id, for ranges
            let mut any = false;
            loop {
                let t = rest.trim_start_matches([' ', ',', ':', '&', '\t']);
                let t = t
                    .strip_prefix("and ")
                    .or_else(|| t.strip_prefix("or "))
                    .unwrap_or(t);
                let (is_range, t) =
                    match t.strip_prefix(['-', '–']).or_else(|| t.strip_prefix("..")) {
                        Some(r) if any => (true, r.trim_start()),
                        _ => (false, t),
                    };
                let Some(len) = id_len(t) else {
                    break;
                };
                let id = t[..len].to_string();
                // Numbers of plain `T004` ids, for ranges.
                let plain = |id: &str| {
                    let digits = &id[1..];
                    digits
                        .chars()
                        .all(|c| c.is_ascii_digit())
                        .then(|| digits.parse::<usize>().ok().map(|n| (n, digits.len())))
                        .flatten()
                };
                let this = plain(&id);
                if is_range {
                    // A range of a thousand tasks is no plan: such a
                    // range names only its ends.
                    if let (Some((prev, width)), Some((num, _))) = (last, this) {
                        let end = if num > prev && num - prev <= 1000 {
                            num
                        } else {
                            prev + 1
                        };
                        for k in prev + 1..end {
                            let id = format!("T{k:0width$}");
                            if !out.contains(&id) {
                                out.push(id);
                            }
                        }
                    }
                }
                if !out.contains(&id) {
                    out.push(id);
                }
                last = this;
                any = true;
                rest = &t[len..];
            }
        }
    }
    out
}

const EXTS: &[&str] = &[
    "rs", "toml", "md", "mdx", "rst", "adoc", "txt", "py", "pyi", "ipynb", "ts", "tsx", "js",
    "jsx", "mjs", "cjs", "json", "jsonc", "yaml", "yml", "go", "mod", "sum", "java", "kt", "kts",
    "rb", "php", "c", "h", "cc", "cpp", "hpp", "cs", "fs", "swift", "m", "mm", "sql", "sh", "bash",
    "zsh", "fish", "ps1", "html", "htm", "css", "scss", "sass", "less", "vue", "svelte", "astro",
    "ex", "exs", "heex", "erl", "hrl", "dart", "scala", "sbt", "lua", "r", "jl", "lock", "cfg",
    "ini", "xml", "proto", "graphql", "gql", "env", "conf", "csv", "tf", "hcl", "gradle", "clj",
    "cljs", "elm", "hs", "ml", "mli", "nix", "zig", "svg", "png", "snap", "tmpl", "j2", "feature",
];

/// Files that live at a repository's root when named without a directory.
const ROOT_FILES: &[&str] = &[
    "Cargo.toml",
    "Cargo.lock",
    "package.json",
    "package-lock.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "tsconfig.json",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "requirements.txt",
    "go.mod",
    "go.sum",
    "Gemfile",
    "Gemfile.lock",
    "mix.exs",
    "build.gradle",
    "pom.xml",
    "Makefile",
    "Justfile",
    "Dockerfile",
    "docker-compose.yml",
    "compose.yaml",
    "README.md",
    "CHANGELOG.md",
    "CONTRIBUTING.md",
    "LICENSE",
    ".gitignore",
    ".editorconfig",
    ".env.example",
    "rustfmt.toml",
    "clippy.toml",
    "deny.toml",
    "Procfile",
];

/// First path segments that mark a token as a directory even without a
/// trailing `/` (`src/models` is a directory; `and/or` is not).
const ROOTS: &[&str] = &[
    "src",
    "lib",
    "libs",
    "tests",
    "test",
    "spec",
    "docs",
    "doc",
    "app",
    "apps",
    "pkg",
    "cmd",
    "internal",
    "scripts",
    "script",
    "migrations",
    "crates",
    "packages",
    "web",
    "api",
    "frontend",
    "backend",
    "server",
    "client",
    "config",
    "configs",
    "public",
    "static",
    "assets",
    "include",
    "bin",
    "examples",
    "benches",
    "tools",
    "fixtures",
    "templates",
    ".github",
    ".cargo",
];

fn has_known_ext(name: &str) -> bool {
    match name.rsplit_once('.') {
        Some((stem, ext)) => !stem.is_empty() && EXTS.contains(&ext.to_ascii_lowercase().as_str()),
        None => false,
    }
}

fn has_any_ext(segment: &str) -> bool {
    match segment.rsplit_once('.') {
        Some((_, ext)) => {
            !ext.is_empty()
                && ext.len() <= 10
                && ext.chars().all(|c| c.is_ascii_alphanumeric())
                && ext.chars().any(|c| c.is_ascii_alphabetic())
        }
        None => false,
    }
}

/// What a description names: (write scope globs, design documents read).
/// `feature` is the feature directory as shown (repository-relative) and
/// `docs` the design documents that exist in it.
pub(crate) fn paths_in(desc: &str, feature: &str, docs: &[&str]) -> (Vec<String>, Vec<String>) {
    let mut files: Vec<String> = Vec::new();
    let mut reads: Vec<String> = Vec::new();
    let add = |v: &mut Vec<String>, s: String| {
        if !v.contains(&s) && Scope::new(std::slice::from_ref(&s)).is_ok() {
            v.push(s);
        }
    };
    for raw in desc.split_whitespace() {
        let tok = raw
            .trim_start_matches(['`', '"', '\'', '(', '[', '{', '<'])
            .trim_end_matches([
                '`', '"', '\'', ')', ']', '}', '>', ',', ';', ':', '!', '?', '.',
            ]);
        // Markdown bold: `**src/a.rs**`.
        let tok = match tok.strip_prefix("**").and_then(|t| t.strip_suffix("**")) {
            Some(inner) if !inner.is_empty() => inner,
            _ => tok,
        };
        if tok.is_empty()
            || tok.contains("://")
            || tok.starts_with(['/', '~', '$', '-'])
            || tok.split('/').any(|s| s == ".." || s == ".")
            || !tok
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '*'))
        {
            continue;
        }
        // The feature's own design documents are read, not written (and
        // not pointed to at all when the feature has no such document).
        let first = tok.split('/').next().unwrap_or(tok);
        if DOCS.iter().any(|(d, _)| *d == first) || first == "tasks.md" {
            if docs.contains(&first) {
                add(&mut reads, join_shown(feature, tok.trim_end_matches('/')));
            }
            continue;
        }
        let in_feature = feature != "." && tok.starts_with(&format!("{feature}/"));
        if in_feature {
            add(&mut reads, tok.trim_end_matches('/').to_string());
            continue;
        }
        if let Some(dir) = tok.strip_suffix('/') {
            if !dir.is_empty() && dir.contains(|c: char| c.is_ascii_alphabetic()) {
                add(&mut files, format!("{dir}/**"));
            }
            continue;
        }
        if tok.contains('/') {
            let last = tok.rsplit('/').next().unwrap_or("");
            if has_any_ext(last) || last.contains('*') {
                add(&mut files, tok.to_string());
            } else if ROOTS.contains(&first) {
                add(&mut files, format!("{tok}/**"));
            }
            continue;
        }
        if ROOT_FILES.contains(&tok) {
            add(&mut files, tok.to_string());
        } else if has_known_ext(tok) {
            // `Node.js`, `Vue.js`: names of things, not files.
            let (stem, ext) = tok.rsplit_once('.').unwrap_or((tok, ""));
            let product = ext == "js"
                && stem.starts_with(|c: char| c.is_ascii_uppercase())
                && stem.chars().skip(1).all(|c| c.is_ascii_lowercase());
            if !product {
                add(&mut files, format!("**/{tok}"));
            }
        }
    }
    (files, reads)
}

/// The test command named on plan.md's `**Testing**:` line, when it is one
/// we know how to run.
pub(crate) fn testing_gate(plan_md: &str) -> Option<(String, String)> {
    const RUNNERS: &[(&str, &str)] = &[
        ("cargo nextest", "cargo nextest run"),
        ("cargo test", "cargo test"),
        ("go test", "go test ./..."),
        ("pytest", "pytest"),
        ("npm test", "npm test"),
        ("yarn test", "yarn test"),
        ("pnpm test", "pnpm test"),
        ("bun test", "bun test"),
        ("vitest", "npx vitest run"),
        ("jest", "npx jest"),
        ("mix test", "mix test"),
        ("rspec", "bundle exec rspec"),
        ("dotnet test", "dotnet test"),
        ("mvn test", "mvn test"),
        ("gradle test", "gradle test"),
        ("./gradlew test", "./gradlew test"),
        ("swift test", "swift test"),
        ("phpunit", "vendor/bin/phpunit"),
        ("make test", "make test"),
    ];
    for line in plan_md.lines() {
        let Some((key, value)) = bold_field(line) else {
            continue;
        };
        if !key.eq_ignore_ascii_case("testing") {
            continue;
        }
        let v = value.trim_start_matches(['`', ' ']).to_ascii_lowercase();
        for (prefix, command) in RUNNERS {
            if v.starts_with(prefix)
                && !v[prefix.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
            {
                return Some((value.clone(), command.to_string()));
            }
        }
        return Some((value.clone(), String::new()));
    }
    None
}

/// The plan name a feature directory suggests: `001-photo-albums` → `photo-albums`.
pub(crate) fn name_from_dir(dir_name: &str) -> Option<String> {
    let digits = dir_name.chars().take_while(|c| c.is_ascii_digit()).count();
    let stripped = if digits > 0 {
        dir_name[digits..].trim_start_matches(['-', '_'])
    } else {
        dir_name
    };
    slug(stripped).or_else(|| slug(dir_name))
}

/// Imports the spec-kit task list at `tasks_path`.
pub fn import(tasks_path: &Path, name: Option<&str>) -> Result<Imported> {
    let shown = shown_path(tasks_path);
    let text = std::fs::read_to_string(tasks_path)
        .map_err(|e| refuse(format!("cannot read `{}`: {e}", tasks_path.display())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let dir: PathBuf = match tasks_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let feature = shown_path(&dir);
    let docs: Vec<(&str, &str)> = DOCS
        .iter()
        .copied()
        .filter(|(f, _)| dir.join(f).exists())
        .collect();
    let plan_md = std::fs::read_to_string(dir.join("plan.md")).ok();
    let dir_name = super::file_name(&dir).unwrap_or_default();

    let parsed = parse(text);
    if let Some(first) = parsed.problems.first() {
        let more = match parsed.problems.len() {
            1 => String::new(),
            n => format!(
                " (and {} more such line{})",
                n - 1,
                if n == 2 { "" } else { "s" }
            ),
        };
        return Err(refuse_with_hint(
            format!("`{shown}` {first}{more}: it would not be imported"),
            "give each task line an id (`- [ ] T031 Description`), or make the line plain text if it is not a task",
        ));
    }
    let total: usize = parsed.phases.iter().map(|p| p.tasks.len()).sum();
    if total == 0 {
        return Err(refuse_with_hint(
            format!("no tasks found in `{shown}`"),
            "spec-kit task lines look like `- [ ] T001 [P] [US1] Description` under `## Phase 1: Title`",
        ));
    }
    let name = plan_name(name, &[name_from_dir(&dir_name)])?;
    let mut imp = Imported {
        plan: Plan {
            name,
            title: parsed.title.clone(),
            base: None,
            defaults: Defaults::default(),
            gates: Vec::new(),
            phases: Vec::new(),
            notify: Vec::new(),
            agents: Default::default(),
            worktrees: Default::default(),
        },
        kind: "spec-kit",
        source: shown.clone(),
        inferred: Vec::new(),
        not_imported: Vec::new(),
    };
    build(&parsed, &feature, &docs, &mut imp);
    if let Some((value, command)) = plan_md.as_deref().and_then(testing_gate) {
        if command.is_empty() {
            imp.not_imported.push(format!(
                "plan.md's Testing line `{value}` (not a command git-orch knows: add a [[gates]] entry)"
            ));
        } else {
            imp.inferred.push(format!(
                "gate `test` runs `{command}` (from plan.md's Testing line)"
            ));
            imp.plan.gates.push(Gate {
                name: "test".into(),
                run: command,
                timeout: None,
            });
        }
    }
    for s in &parsed.skipped {
        imp.not_imported.push(s.clone());
    }
    if !parsed.prose.is_empty() {
        let names: Vec<String> = parsed.prose.iter().map(|h| format!("\"{h}\"")).collect();
        imp.not_imported.push(format!(
            "the prose of {} (phases run in order; inside a phase only the dependencies above apply)",
            list(&names)
        ));
    }
    Ok(imp)
}

fn build(parsed: &Parsed, feature: &str, docs: &[(&str, &str)], imp: &mut Imported) {
    let doc_names: Vec<&str> = docs.iter().map(|(f, _)| *f).collect();
    let mut task_ids: Vec<String> = Vec::new();
    let mut sequential = 0;
    let mut explicit: Vec<String> = Vec::new();
    let mut with_files = 0;
    let mut done: Vec<String> = Vec::new();
    let mut checkpointed: Vec<String> = Vec::new();
    // Explicit dependencies are added once every task exists.
    let mut wanted: Vec<(String, Vec<String>)> = Vec::new();
    for raw in &parsed.phases {
        if raw.tasks.is_empty() {
            imp.not_imported.push(format!(
                "phase `{}`{}: it has no task lines",
                raw.id,
                raw.title
                    .as_ref()
                    .map(|t| format!(" \"{t}\""))
                    .unwrap_or_default()
            ));
            continue;
        }
        let mut title = raw.title.clone();
        if !raw.checkpoints.is_empty() {
            let note = raw.checkpoints.join("; ");
            title = Some(match title {
                Some(t) => format!("{t} — {note}"),
                None => note,
            });
            checkpointed.push(raw.id.clone());
        }
        let mut phase = Phase {
            id: raw.id.clone(),
            title,
            gates: Vec::new(),
            tasks: Vec::new(),
            review: None,
            on_gate_failure: None,
            on_conflict: None,
            on_failure: None,
        };
        let mut prev: Option<String> = None;
        for t in &raw.tasks {
            let id = unique(t.id.clone(), &mut task_ids);
            if id != t.id {
                imp.not_imported.push(format!(
                    "the id of the second task {} (renamed `{id}`: ids must be unique)",
                    t.id
                ));
            }
            let mut depends_on = Vec::new();
            if let (false, Some(p)) = (t.parallel, &prev) {
                depends_on.push(p.clone());
                sequential += 1;
            }
            let deps = explicit_deps(&t.desc);
            if !deps.is_empty() {
                wanted.push((id.clone(), deps));
            }
            let (files, mut reads) = paths_in(&t.desc, feature, &doc_names);
            // The prompt points into the feature directory: with a sparse
            // checkout it must be there.
            if let Some(glob) = super::reads_glob(feature) {
                reads = vec![glob];
            }
            if !files.is_empty() {
                with_files += 1;
            }
            if t.done {
                done.push(id.clone());
            }
            let prompt = prompt(t, &id, raw, feature, docs);
            phase.tasks.push(Task {
                id: id.clone(),
                title: Some(t.desc.clone()),
                prompt: Some(prompt),
                files,
                reads,
                depends_on,
                skip: t.done,
                ..Task::default()
            });
            prev = Some(id);
        }
        imp.plan.phases.push(phase);
    }
    for (id, deps) in wanted {
        let mut added = Vec::new();
        let Some(my_phase) = imp
            .plan
            .task(&id)
            .and_then(|(p, _)| imp.plan.phase_index(&p.id))
        else {
            continue;
        };
        for dep in deps {
            if dep == id {
                continue;
            }
            let Some((dep_phase, _)) = imp.plan.task(&dep) else {
                imp.not_imported
                    .push(format!("{id} depends on {dep}: there is no task {dep}"));
                continue;
            };
            let dep_phase_id = dep_phase.id.clone();
            if imp.plan.phase_index(&dep_phase_id) > Some(my_phase) {
                imp.not_imported.push(format!(
                    "{id} depends on {dep}: {dep} is in a later phase (`{dep_phase_id}`)"
                ));
                continue;
            }
            if reaches(&imp.plan, &dep, &id) {
                imp.not_imported.push(format!(
                    "{id} depends on {dep}: {dep} already comes after {id}, that would be a cycle"
                ));
                continue;
            }
            let task = imp
                .plan
                .phases
                .iter_mut()
                .flat_map(|p| p.tasks.iter_mut())
                .find(|t| t.id == id);
            if let Some(task) = task {
                if !task.depends_on.contains(&dep) {
                    task.depends_on.push(dep.clone());
                }
                added.push(dep);
            }
        }
        if !added.is_empty() {
            explicit.push(format!("{id} depends on {}", added.join(", ")));
        }
    }
    // Dependencies in plan order, whichever rule found them.
    let order: Vec<String> = imp.plan.tasks().map(|(_, t)| t.id.clone()).collect();
    let pos = |id: &String| order.iter().position(|o| o == id).unwrap_or(usize::MAX);
    for t in imp.plan.phases.iter_mut().flat_map(|p| p.tasks.iter_mut()) {
        t.depends_on.sort_by_key(|d| pos(d));
    }
    let phases = imp.plan.phases.len();
    let tasks: usize = imp.plan.phases.iter().map(|p| p.tasks.len()).sum();
    imp.inferred.push(format!(
        "{tasks} task{}, {phases} phase{}",
        if tasks == 1 { "" } else { "s" },
        if phases == 1 { "" } else { "s" }
    ));
    if sequential > 0 {
        imp.inferred.push(format!(
            "{sequential} task{} without [P] wait{} for the task before {}",
            if sequential == 1 { "" } else { "s" },
            if sequential == 1 { "s" } else { "" },
            if sequential == 1 { "it" } else { "them" },
        ));
    }
    if !explicit.is_empty() {
        imp.inferred.push(explicit.join("; "));
    }
    if with_files > 0 {
        imp.inferred.push(format!(
            "`files` of {with_files} task{} from the paths in {} description{} (a task that writes elsewhere fails with a scope violation: widen them if needed)",
            if with_files == 1 { "" } else { "s" },
            if with_files == 1 { "its" } else { "their" },
            if with_files == 1 { "" } else { "s" },
        ));
    }
    if !done.is_empty() {
        imp.inferred.push(format!(
            "skip = true for {} (already ticked [X])",
            list(&done)
        ));
    }
    if !checkpointed.is_empty() {
        imp.inferred.push(format!(
            "checkpoint notes in the titles of {}",
            list(&checkpointed)
        ));
    }
}

fn prompt(t: &RawTask, id: &str, phase: &RawPhase, feature: &str, docs: &[(&str, &str)]) -> String {
    let mut p = format!("{}\n\n", t.desc);
    if !t.steps.is_empty() {
        p.push_str("Steps:\n");
        for step in &t.steps {
            p.push_str(&format!("- {step}\n"));
        }
        p.push('\n');
    }
    p.push_str(&format!(
        "This is task {id} of the spec-kit feature in `{feature}/`"
    ));
    if let Some(title) = &phase.title {
        p.push_str(&format!(", in its phase \"{title}\""));
    }
    if let Some(story) = &t.story {
        p.push_str(&format!(", for user story {story}"));
    }
    p.push_str(".\n");
    for (key, value) in &phase.context {
        p.push_str(&format!("Phase {}: {value}\n", key.to_ascii_lowercase()));
    }
    if !docs.is_empty() {
        let named: Vec<String> = docs
            .iter()
            .map(|(f, what)| {
                let slash = if *f == "contracts" { "/" } else { "" };
                format!("`{}{slash}` ({what})", join_shown(feature, f))
            })
            .collect();
        p.push_str(&format!("Before you start, read {}.\n", list(&named)));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(line: &str) -> RawTask {
        match task_line(line) {
            Line::Task(t) => t,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn task_lines() {
        let t = task("- [ ] T003 [P] Configure clippy in .cargo/config.toml");
        assert_eq!(
            (t.id.as_str(), t.done, t.parallel, t.story.as_deref()),
            ("T003", false, true, None)
        );
        assert_eq!(t.desc, "Configure clippy in .cargo/config.toml");
        let t = task("- [X] T007 [P] [US1] Create AlbumStore");
        assert!(t.done && t.parallel);
        assert_eq!(t.story.as_deref(), Some("US1"));
        let t = task("- [x] T008 [US12] Implement it");
        assert!(t.done && !t.parallel);
        assert_eq!(t.story.as_deref(), Some("US12"));
        assert_eq!(
            task_line("- [ ] TXXX [P] [USx] Placeholder"),
            Line::Placeholder
        );
        assert!(matches!(task_line("- [ ] All tests pass"), Line::Item(_)));
        assert_eq!(task_line("- T001 not a checkbox"), Line::Other);
        assert_eq!(task_line("- [~] T001 odd mark"), Line::Other);
        assert_eq!(task_line("- [ ] T001"), Line::NoDesc("T001".into()));
    }

    #[test]
    fn inserted_and_dotted_task_ids_are_task_lines() {
        for id in [
            "T002A", "T014B", "T006a", "T1.2", "T-003", "T002-A", "T002.1", "T_7", "T3.1.2",
            "T010b2",
        ] {
            let t = task(&format!("- [ ] {id} [P] Do {id}"));
            assert_eq!((t.id.as_str(), t.parallel), (id, true), "{id}");
        }
        assert_eq!(task("- [ ] T002A: Colon after the id").id, "T002A");
        for bad in ["T001/x", "T002A)", "T1..2", "T2-", "T003.lock"] {
            assert_eq!(
                task_line(&format!("- [ ] {bad} Something")),
                Line::BadId(bad.into()),
                "{bad}"
            );
        }
        assert!(matches!(task_line("- [ ] Tests pass"), Line::Item(_)));
        assert!(matches!(task_line("- [ ] T-shirt sizes"), Line::Item(_)));
    }

    #[test]
    fn work_that_cannot_be_a_task_stops_the_import() {
        let p = parse(
            "## Phase 1: One\n- [ ] T001 First\n  - [ ] write the parser\n  - [x] its tests\n\
             - [ ] Update the docs\n- [ ] T001/b Odd\n- [ ] T002\n\n## Validation\n- [ ] All tests pass\n",
        );
        assert_eq!(
            p.phases[0].tasks[0].steps,
            ["write the parser", "its tests"],
            "indented items are the task's steps"
        );
        assert_eq!(p.problems.len(), 3, "{:?}", p.problems);
        assert!(p.problems[0].starts_with("line 5: checklist item without a task id"));
        assert!(p.problems[1].starts_with("line 6: `T001/b` is not a task id"));
        assert!(p.problems[2].starts_with("line 7: task T002 has no description"));
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    }

    #[test]
    fn phase_headings() {
        assert_eq!(
            phase_heading("Phase 1: Setup (Shared)"),
            Some(("1".into(), "Setup (Shared)".into()))
        );
        assert_eq!(
            phase_heading("Phase N: Polish"),
            Some(("n".into(), "Polish".into()))
        );
        assert_eq!(
            phase_heading("Phase 3.1: Setup"),
            Some(("3.1".into(), "Setup".into()))
        );
        assert_eq!(
            phase_heading("Phase 2 - Core"),
            Some(("2".into(), "Core".into()))
        );
        assert_eq!(phase_heading("Phases overview"), None);
        assert_eq!(phase_heading("Dependencies"), None);
    }

    #[test]
    fn dependencies_in_descriptions() {
        assert_eq!(
            explicit_deps("Implement X (depends on T004, T007)"),
            ["T004", "T007"]
        );
        assert_eq!(
            explicit_deps("Wire it up; Depends on T012 and T013."),
            ["T012", "T013"]
        );
        assert_eq!(
            explicit_deps("depends on T004-T006"),
            ["T004", "T005", "T006"]
        );
        assert_eq!(explicit_deps("depends on: T010 & T011"), ["T010", "T011"]);
        assert_eq!(
            explicit_deps("depends on T002A, T014b and T1.2."),
            ["T002A", "T014b", "T1.2"]
        );
        assert_eq!(
            explicit_deps("depends on T-003 and T002-A"),
            ["T-003", "T002-A"]
        );
        assert_eq!(
            explicit_deps("depends on T002A-T004"),
            ["T002A", "T004"],
            "a range from a suffixed id names its ends"
        );
        assert_eq!(explicit_deps("depends on T001-T999999999").len(), 2);
        assert!(explicit_deps("Independent of everything").is_empty());
        assert!(explicit_deps("depends on the schema").is_empty());
    }

    #[test]
    fn paths_in_descriptions() {
        let docs = ["plan.md", "quickstart.md", "contracts"];
        let f = |d: &str| paths_in(d, "specs/001-x", &docs);
        assert_eq!(
            f("Create Album model in src/models/album.rs").0,
            ["src/models/album.rs"]
        );
        assert_eq!(f("Documentation updates in docs/").0, ["docs/**"]);
        assert_eq!(
            f("Contract test for POST /albums in tests/contract/albums.rs").0,
            ["tests/contract/albums.rs"]
        );
        assert_eq!(
            f("Configure clippy and rustfmt in .cargo/config.toml").0,
            [".cargo/config.toml"]
        );
        assert_eq!(
            f("Add clap to Cargo.toml and `src/cli.rs`.").0,
            ["Cargo.toml", "src/cli.rs"]
        );
        assert_eq!(
            f("Refactor src/store (read/write paths)").0,
            ["src/store/**"]
        );
        assert!(f("Use Node.js and/or Vue.js, e.g. v1.2").0.is_empty());
        assert!(f("Create [Entity1] model in src/models/[entity1].py")
            .0
            .is_empty());
        assert!(f("See https://example.com/a.md").0.is_empty());
        let (files, reads) = f("Run quickstart.md validation against contracts/albums.yaml");
        assert!(files.is_empty());
        assert_eq!(
            reads,
            [
                "specs/001-x/quickstart.md",
                "specs/001-x/contracts/albums.yaml"
            ]
        );
        assert_eq!(f("Add helpers in utils.py").0, ["**/utils.py"]);
        // A design document the feature does not have is neither written nor read.
        assert_eq!(f("Check research.md"), (vec![], vec![]));
        assert_eq!(f("Tests in tests/**/*.rs").0, ["tests/**/*.rs"]);
    }

    #[test]
    fn testing_line() {
        assert_eq!(
            testing_gate("**Testing**: cargo test (unit + integration)"),
            Some((
                "cargo test (unit + integration)".into(),
                "cargo test".into()
            ))
        );
        assert_eq!(
            testing_gate("**Testing**: `pytest` with fixtures").map(|g| g.1),
            Some("pytest".into())
        );
        assert_eq!(
            testing_gate("**Testing**: XCTest").map(|g| g.1),
            Some(String::new())
        );
        assert_eq!(
            testing_gate("**Testing**: jestX"),
            Some(("jestX".into(), String::new()))
        );
        assert_eq!(testing_gate("no testing line"), None);
    }

    #[test]
    fn names() {
        assert_eq!(
            name_from_dir("001-photo-albums").as_deref(),
            Some("photo-albums")
        );
        assert_eq!(
            name_from_dir("Photo_Albums").as_deref(),
            Some("photo-albums")
        );
        assert_eq!(name_from_dir("042").as_deref(), Some("042"));
    }

    #[test]
    fn parses_a_task_list() {
        let text = "# Tasks: Demo\n\n## Format: `[ID] [P?] [Story] Description`\n\n\
            ## Phase 1: Setup\n\n- [X] T001 Create structure\n- [ ] T002 [P] Add src/a.rs\n- [ ] T003 Add src/b.rs\n\n\
            **Checkpoint**: ready\n\n```\n- [ ] T900 inside a fence\n```\n\n\
            ## Phase 2: Story\n\n**Goal**: works\n\n### Implementation\n\n- [ ] T004 [US1] Do it (depends on T002)\n- [ ] TXXX placeholder\n\n\
            ## Dependencies & Execution Order\n\n- T004 after T001\n";
        let p = parse(text);
        assert_eq!(p.title.as_deref(), Some("Demo"));
        assert_eq!(p.phases.len(), 2);
        assert_eq!(p.phases[0].id, "phase-1");
        assert_eq!(p.phases[0].tasks.len(), 3);
        assert_eq!(p.phases[0].checkpoints, ["ready"]);
        assert_eq!(
            p.phases[1].context,
            [("Goal".to_string(), "works".to_string())]
        );
        assert_eq!(p.phases[1].tasks[0].story.as_deref(), Some("US1"));
        assert_eq!(p.skipped.len(), 1, "{:?}", p.skipped);
        assert_eq!(
            p.prose,
            ["Dependencies & Execution Order"],
            "the Format section is boilerplate"
        );
    }

    #[test]
    fn impossible_dependencies_are_reported_not_imported() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("007-edge");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("tasks.md"),
            "\u{feff}# Tasks: Edge\n\n## Phase 1: One\n\
             - [ ] T001 First (depends on T003)\n- [ ] T002 Second\n- [ ] T003 Third (depends on T009, T001)\n\
             - [ ] T002 Duplicate id\n\n## Phase 2: Two\n- [ ] T004 [P] Later (depends on T002)\n- [ ] T005 Early (depends on T006)\n\
             - [ ] T006 [P] Last\n",
        )
        .expect("write");
        let imp = import(&dir.join("tasks.md"), None).expect("import");
        assert_eq!(imp.plan.name, "edge");
        assert_eq!(
            imp.plan.title.as_deref(),
            Some("Edge"),
            "a BOM does not hide the title"
        );
        let deps = |id: &str| imp.plan.task(id).expect(id).1.depends_on.clone();
        // T001 → T003 would close the cycle T003 → T002 → T001.
        assert!(deps("T001").is_empty());
        assert_eq!(deps("T003"), ["T001", "T002"]);
        assert_eq!(deps("T002-2"), ["T003"]);
        assert_eq!(deps("T004"), ["T002"]);
        // A dependency on a later task of the same phase is fine.
        assert_eq!(deps("T005"), ["T004", "T006"]);
        let notes = imp.not_imported.join("\n");
        assert!(
            notes.contains("T001 depends on T003: T003 already comes after T001"),
            "{notes}"
        );
        assert!(
            notes.contains("T003 depends on T009: there is no task T009"),
            "{notes}"
        );
        assert!(
            notes.contains("the second task T002 (renamed `T002-2`"),
            "{notes}"
        );
        let diags = crate::plan::validate(&imp.plan, None);
        assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    }

    #[test]
    fn tasks_outside_phase_headings_get_a_phase() {
        let p = parse("# Tasks\n\n- [ ] T001 First\n\n## Setup\n\n- [ ] T002 Second\n");
        let ids: Vec<_> = p.phases.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["phase-0", "setup"]);
        let p = parse("## Tasks\n- [ ] T001 First\n## Work\n- [ ] T002 Second\n");
        let ids: Vec<_> = p.phases.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            ["tasks-2", "work-2"],
            "reserved phase ids are not used"
        );
    }
}
