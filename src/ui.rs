//! The only place that prints. Data goes to stdout, everything meant for a
//! person (progress, notes, hints) to stderr, so `git orch … | tool` and
//! `--json` stay clean. Colour only on a terminal and never with NO_COLOR.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Whether to paint. Precedence: `NO_COLOR` (set and not empty) turns it
/// off whatever else says; then git config `orch.color` (`always`, `never`,
/// `auto`; read by [`crate::config`], `git -c orch.color=…` included); `auto` or unset paints only when
/// stdout and stderr are both terminals and `TERM` is not `dumb`.
pub(crate) fn colour_on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        let terminal = || {
            std::env::var("TERM").map_or(true, |t| t != "dumb")
                && std::io::stderr().is_terminal()
                && std::io::stdout().is_terminal()
        };
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return false;
        }
        match crate::config::current().color().as_deref() {
            Some("always") => true,
            Some("never") | Some("false") => false,
            _ => terminal(),
        }
    })
}

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Whether a person watches both streams (a terminal, not a pipe or a file).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal() && std::io::stdout().is_terminal()
}

fn paint(code: &str, text: &str) -> String {
    if colour_on() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub fn green(t: &str) -> String {
    paint("32", t)
}
pub fn red(t: &str) -> String {
    paint("31", t)
}
pub fn yellow(t: &str) -> String {
    paint("33", t)
}
pub fn bold(t: &str) -> String {
    paint("1", t)
}
pub fn dim(t: &str) -> String {
    paint("2", t)
}

/// Free text from the state (a failure reason, say) shown on one line with
/// control characters but tabs escaped, so it cannot break the layout or
/// drive the terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A line of data on stdout. Once stdout is closed (`git orch … | head -1`)
/// nothing more is written, and the process is asked to stop
/// ([`crate::process::request_stop`]): a run stops its tasks and records
/// them, other commands finish quietly. Never an exit from here: this runs
/// on task threads too.
pub fn out(line: &str) {
    static CLOSED: AtomicBool = AtomicBool::new(false);
    if CLOSED.load(Ordering::SeqCst) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}")
        .and_then(|_| stdout.flush())
        .is_err()
    {
        CLOSED.store(true, Ordering::SeqCst);
        crate::process::request_stop(crate::process::Stop::OutputClosed);
    }
}

/// A line for the person at the terminal, on stderr. A closed stderr
/// (`git orch run 2>&1 | head -1`) stops a run as a closed stdout does
/// ([`out`]): nobody is left to read what it says.
pub fn note(line: &str) {
    static CLOSED: AtomicBool = AtomicBool::new(false);
    if CLOSED.load(Ordering::SeqCst) {
        return;
    }
    let mut stderr = std::io::stderr().lock();
    if writeln!(stderr, "{line}")
        .and_then(|_| stderr.flush())
        .is_err()
    {
        CLOSED.store(true, Ordering::SeqCst);
        crate::process::request_stop(crate::process::Stop::OutputClosed);
    }
}

pub fn warn(line: &str) {
    note(&format!("{} {line}", yellow("warning:")));
}

pub fn hint(line: &str) {
    note(&format!("{} {line}", dim("hint:")));
}

pub fn error(line: &str) {
    note(&format!("{} {line}", red("error:")));
}

pub use crate::render::duration;

/// Colours a task or phase state name for display.
pub fn state_word(state: &str) -> String {
    match state {
        "done" | "checkpointed" => green(state),
        "failed" | "conflict" => red(state),
        "running" | "active" | "parked" => yellow(state),
        _ => state.to_string(),
    }
}

/// Prints a `--json` document on stdout: `body` (a struct or a
/// `json!({…})` object) behind its schema's name and version
/// ([`crate::schema`]). The only way JSON reaches stdout, so no output can
/// leave out its schema.
pub fn json_doc<T: serde::Serialize>(
    schema: crate::schema::Schema,
    body: &T,
) -> anyhow::Result<()> {
    out(&crate::schema::document(schema, body)?);
    Ok(())
}
