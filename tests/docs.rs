//! The documentation tells the truth (issue 23): the README and every page
//! of the book under `docs/src` are read as they are, and
//! - every plan in them (a ```toml block with `[[phases]]`, a ```yaml
//!   block with `phases:`) passes `git orch check`;
//! - every `git orch …` command line in them (in code blocks and in
//!   inline code) parses with the real CLI types: the binary, built with
//!   the test-only `parse-only` feature, parses its arguments and exits
//!   when `GIT_ORCH_PARSE_ONLY` is set, running nothing. A synopsis
//!   (`git orch status [PLAN] [--json]`) is tried bare and with each
//!   optional part, its placeholders (`PLAN`, `N`) given sample values;
//! - the promises and known-limits pages name only tests that exist.

#![cfg_attr(not(feature = "parse-only"), allow(dead_code))]

use crate::common::*;
use std::path::Path;

/// The fenced code blocks of a page: (language, first line's number, body).
fn code_blocks(text: &str) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(lang)) => open = Some((lang.trim().to_string(), i + 2, String::new())),
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some((_, _, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

#[test]
fn every_plan_in_the_docs_passes_check() {
    let repo = TestRepo::new();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (page, text) in doc_pages() {
        for (lang, line, body) in code_blocks(&text) {
            let ext = match lang.as_str() {
                "toml" if body.contains("[[phases]]") => "toml",
                "yaml" | "yml" if body.lines().any(|l| l.starts_with("phases:")) => "yaml",
                _ => continue,
            };
            let file = repo.plan(&format!("doc-{checked}.{ext}"), &body);
            let out = repo.orch(&["check", file.to_str().expect("utf-8")]);
            if code(&out) != Some(0) {
                failures.push(format!("{page}:{line}: {}", both(&out)));
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "plans in the docs fail check:\n{}",
        failures.join("\n")
    );
    assert!(checked >= 3, "the docs' plans were not found ({checked})");
}

/// Each `git orch …` command of a page, with its line: from code blocks
/// of shell or no language, and from inline code spans.
fn command_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (lang, first, body) in code_blocks(text) {
        if !matches!(
            lang.as_str(),
            "" | "sh" | "bash" | "shell" | "console" | "text"
        ) {
            continue;
        }
        for (i, line) in body.lines().enumerate() {
            for at in line.match_indices("git orch ").map(|(at, _)| at) {
                // A `#` comment is prose; code in backticks within it is
                // found as inline code below.
                if line[..at].contains(" #") || line[..at].starts_with('#') {
                    continue;
                }
                out.push((first + i, command_at(&line[at..])));
            }
        }
    }
    let mut in_block = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
        }
        // Inline code outside blocks, and inside blocks' comments.
        let spans = if in_block {
            match line.split_once(" #") {
                Some((_, comment)) => comment,
                None => continue,
            }
        } else {
            line
        };
        for (k, span) in spans.split('`').enumerate() {
            if k % 2 == 1 {
                if let Some(at) = span.find("git orch ") {
                    out.push((i + 1, command_at(&span[at..])));
                }
            }
        }
    }
    out
}

/// The command that starts at `text` ("git orch …"), up to where the
/// shell would end it: a pipe, `&&`, `;`, a redirection, a comment, or
/// the `)` that closes a `$(…)` around it.
fn command_at(text: &str) -> String {
    let (mut quote, mut depth) = (None, 0i32);
    let chars: Vec<char> = text.chars().collect();
    let mut end = chars.len();
    for (i, &c) in chars.iter().enumerate() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') if depth == 0 => {
                end = i;
                break;
            }
            (None, ')') => depth -= 1,
            (None, ';' | '>' | '&') => {
                end = i;
                break;
            }
            (None, '|' | '#') if i > 0 && chars[i - 1] == ' ' => {
                end = i;
                break;
            }
            _ => {}
        }
    }
    chars[..end].iter().collect::<String>().trim().to_string()
}

/// A synopsis made concrete: the bare command and, for each `[optional]`
/// part, the command with that part in; placeholders get sample values.
fn variants(command: &str) -> Vec<String> {
    let command = command.replace('…', "").replace("...", "");
    // The optional parts, outermost only.
    let mut parts: Vec<(usize, usize)> = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in command.char_indices() {
        match c {
            '[' => {
                if depth == 0 {
                    start = i;
                }
                depth += 1;
            }
            ']' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    parts.push((start, i));
                }
            }
            _ => {}
        }
    }
    let with = |keep: Option<usize>| {
        let mut s = String::new();
        let mut at = 0;
        for (n, &(a, b)) in parts.iter().enumerate() {
            s.push_str(&command[at..a]);
            if keep == Some(n) {
                s.push(' ');
                s.push_str(&command[a + 1..b]);
                s.push(' ');
            }
            at = b + 1;
        }
        s.push_str(&command[at..]);
        s
    };
    let mut out = vec![with(None)];
    out.extend((0..parts.len()).map(|n| with(Some(n))));
    out
}

/// Shell words of a command (quotes and backslashes as sh reads them),
/// then placeholders made values: `a|b` is `a`, `<x>` and an all-caps word
/// (`PLAN`, `PHASE:GATE`) are `x`, a count (`N`, `SECONDS`) is `1`.
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    word.get_or_insert_with(String::new).push(n);
                }
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
        .into_iter()
        .map(|w| {
            let w = match w.split_once('|') {
                Some((first, _)) if !w.starts_with('|') => first.to_string(),
                _ => w,
            };
            if w.starts_with('<') && w.ends_with('>') {
                return "x".to_string();
            }
            let caps = !w.starts_with('-')
                && w.chars().any(|c| c.is_ascii_uppercase())
                && w.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "_:".contains(c));
            if !caps {
                return w;
            }
            w.split(':')
                .map(|p| match p {
                    "N" | "SECONDS" | "COUNT" | "MINUTES" | "PORT" => "1",
                    "MS" => "1000",
                    // `git orch CMD --help`: any subcommand.
                    "CMD" | "COMMAND" => "status",
                    _ => "x",
                })
                .collect::<Vec<_>>()
                .join(":")
        })
        .collect()
}

// Without the `parse-only` feature the binary would run each command
// (scripts/test and CI build with --all-features).
#[cfg(feature = "parse-only")]
#[test]
fn every_git_orch_command_line_in_the_docs_parses() {
    let repo = TestRepo::new();
    let mut tried = 0;
    let mut failures = Vec::new();
    let parses = |args: &[String]| {
        let out = repo
            .command(BIN, &repo.path)
            .args(args)
            .env("GIT_ORCH_PARSE_ONLY", "1")
            .output()
            .expect("git-orch");
        (code(&out) == Some(0), out)
    };
    let mut generic = 0;
    for (page, text) in doc_pages() {
        for (line, command) in command_lines(&text) {
            // `git orch …`, `git orch task … ID`: any command, in prose.
            if command == "git orch …" || command.starts_with("git orch task …") {
                generic += 1;
                continue;
            }
            for variant in variants(&command) {
                let args = words(&variant);
                assert_eq!(args[..2], ["git", "orch"], "{page}:{line}: {command}");
                let (ok, out) = parses(&args[2..]);
                // A command named in prose (`git orch task retry`, no
                // arguments): it must exist, as its `--help` shows.
                let named = !ok
                    && args[2..]
                        .iter()
                        .all(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                    && parses(&[&args[2..], &["--help".to_string()]].concat()).0;
                if !ok && !named {
                    failures.push(format!(
                        "{page}:{line}: `{command}` as {:?}: {}",
                        &args[2..],
                        stderr(&out).lines().next().unwrap_or("")
                    ));
                }
                tried += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {tried} command lines in the docs do not parse:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(tried > 100, "the docs' commands were not found ({tried})");
    assert!(
        generic < 10,
        "too many commands left unchecked as generic: {generic}"
    );
}

/// The parse-only entry is a real parse: a command line that is wrong is
/// refused (else the test above could not fail).
#[cfg(feature = "parse-only")]
#[test]
fn the_parse_only_entry_refuses_what_clap_refuses() {
    let repo = TestRepo::new();
    for bad in [
        &["task", "frobnicate"][..],
        &["status", "--no-such-flag"],
        &["log", "p", "t", "--attempt", "x"],
        &["start"],
    ] {
        let out = repo
            .command(BIN, &repo.path)
            .args(bad)
            .env("GIT_ORCH_PARSE_ONLY", "1")
            .output()
            .expect("git-orch");
        assert_eq!(code(&out), Some(2), "{bad:?}: {}", both(&out));
    }
    // And a good one runs nothing: no plan is started.
    let plan = repo.plan(
        "plan.toml",
        "name = \"p\"\n[[phases]]\nid = \"one\"\n  [[phases.tasks]]\n  id = \"a\"\n",
    );
    let out = repo
        .command(BIN, &repo.path)
        .args(["start", plan.to_str().expect("utf-8")])
        .env("GIT_ORCH_PARSE_ONLY", "1")
        .output()
        .expect("git-orch");
    assert_eq!(code(&out), Some(0), "{}", both(&out));
    assert_eq!(
        repo.rev("refs/heads/orch/p/state"),
        None,
        "it started the plan"
    );
}

/// The tests a page names: `tests/FILE.rs::name` (or `FILE.rs::name`), and
/// the `(and `_b`, `_c`)` that name siblings of the one before by suffix.
fn named_tests(text: &str) -> Vec<(String, String)> {
    let mut out = full_names(text);
    // `name_merge` (and `_squash`, `_rebase`): siblings by suffix.
    let spans: Vec<&str> = text.split('`').collect();
    for i in (1..spans.len()).step_by(2) {
        if !spans[i - 1].ends_with(" (and ") && !spans[i - 1].ends_with(", ") {
            continue;
        }
        let suffix = spans[i];
        if !suffix.starts_with('_') {
            continue;
        }
        // The full name this suffix belongs to: the last one before it.
        let before = spans[..i].join("`");
        if let Some((file, name)) = full_names(&before).pop() {
            if let Some(cut) = name.rfind('_') {
                out.push((file, format!("{}{suffix}", &name[..cut])));
            }
        }
    }
    out
}

/// The `FILE.rs::name` spans of `text`, with `tests/` for a bare file.
fn full_names(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, span) in text.split('`').enumerate() {
        if k % 2 == 0 {
            continue;
        }
        let Some((file, name)) = span.split_once("::") else {
            continue;
        };
        if !file.ends_with(".rs") || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let file = if file.contains('/') {
            file.to_string()
        } else {
            format!("tests/{file}")
        };
        out.push((file, name.to_string()));
    }
    out
}

#[test]
fn the_promises_and_limits_pages_name_only_tests_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut named = 0;
    let mut missing = Vec::new();
    for page in ["docs/src/promises.md", "docs/src/limits.md"] {
        let text = std::fs::read_to_string(root.join(page)).expect(page);
        for (file, name) in named_tests(&text) {
            let source = std::fs::read_to_string(root.join(&file)).unwrap_or_default();
            let defined =
                source.contains(&format!("fn {name}(")) || source.contains(&format!("fn {name}<"));
            if !defined {
                missing.push(format!("{page}: {file}::{name}"));
            }
            named += 1;
        }
    }
    assert!(
        missing.is_empty(),
        "the docs name tests that do not exist:\n{}",
        missing.join("\n")
    );
    assert!(named > 50, "no test names found ({named})");
}
