//! The only place that prints. Data goes to stdout, everything meant for a
//! person (progress, notes, hints) to stderr, so `git orch … | tool` and
//! `--json` stay clean. Colour only on a terminal and never with NO_COLOR.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

/// Whether to paint. Precedence: `NO_COLOR` (set and not empty) turns it
/// off whatever else says; then git config `orch.color` (`always`, `never`,
/// `auto`; `git -c orch.color=…` included); `auto` or unset paints only when
/// stdout and stderr are both terminals and `TERM` is not `dumb`.
fn colour_on() -> bool {
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
        match colour_setting().as_deref() {
            Some("always") => true,
            Some("never") | Some("false") => false,
            _ => terminal(),
        }
    })
}

/// `orch.color`, lowercased: from `git -c` first, then the repository's
/// config (which includes the global and system files), else the global one.
fn colour_setting() -> Option<String> {
    const KEY: &str = "orch.color";
    let value = std::env::var("GIT_CONFIG_PARAMETERS")
        .ok()
        .and_then(|p| config_parameter(&p, KEY))
        .or_else(|| {
            let cwd = std::env::current_dir().ok()?;
            crate::git::Repo::discover(&cwd).ok()?.config_string(KEY)
        })
        .or_else(|| git2::Config::open_default().ok()?.get_string(KEY).ok())?;
    Some(value.trim().to_ascii_lowercase())
}

/// The last value of `key` in `GIT_CONFIG_PARAMETERS`, which git fills for
/// `git -c key=value`: single-quoted entries, `'key'='value'` (or
/// `'key=value'` from git before 2.31), a quote inside written as `'\''`.
fn config_parameter(params: &str, key: &str) -> Option<String> {
    let mut entries: Vec<Vec<String>> = Vec::new();
    let mut chars = params.chars().peekable();
    let mut joined = false; // the next quoted string is the value after `=`
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('\'') => {
                            // `'\''` continues the same string.
                            if chars.peek() == Some(&'\\') {
                                chars.next(); // the backslash
                                chars.next(); // the escaped quote
                                chars.next(); // the quote that reopens
                                text.push('\'');
                                continue;
                            }
                            break;
                        }
                        Some(ch) => text.push(ch),
                        None => break,
                    }
                }
                match entries.last_mut() {
                    Some(entry) if joined => entry.push(text),
                    _ => entries.push(vec![text]),
                }
                joined = false;
            }
            '=' => joined = true,
            _ => joined = false,
        }
    }
    entries
        .iter()
        .filter_map(|e| match e.as_slice() {
            [k, v] => Some((k.as_str(), v.as_str())),
            [kv] => kv.split_once('='),
            _ => None,
        })
        .filter(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.to_string())
        .next_back()
}

pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
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

/// A line of data on stdout. A closed pipe ends the program quietly.
pub fn out(line: &str) {
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}").is_err() {
        std::process::exit(0);
    }
}

/// A line for the person at the terminal, on stderr.
pub fn note(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
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

/// `1m05s`, `12.3s`, `2h03m`.
pub fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else if seconds < 3600.0 {
        format!(
            "{}m{:02}s",
            (seconds / 60.0) as u64,
            (seconds % 60.0) as u64
        )
    } else {
        format!(
            "{}h{:02}m",
            (seconds / 3600.0) as u64,
            ((seconds % 3600.0) / 60.0) as u64
        )
    }
}

/// Colours a task or phase state name for display.
pub fn state_word(state: &str) -> String {
    match state {
        "done" | "checkpointed" => green(state),
        "failed" | "conflict" => red(state),
        "running" | "active" => yellow(state),
        _ => state.to_string(),
    }
}

/// Prints any serialisable report as pretty JSON on stdout.
pub fn json_of<T: serde::Serialize>(value: &T) {
    out(&serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_string()));
}

/// Prints a value as pretty JSON on stdout.
pub fn json(value: &serde_json::Value) {
    out(&serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_string()));
}

/// With `ORCH_TRACE=1`, prints how long a step took (`trace: land 9.1ms`) on
/// stderr; the benchmark scripts read these lines.
pub fn trace(what: &str, since: std::time::Instant) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("ORCH_TRACE").is_some_and(|v| v == "1")) {
        note(&format!(
            "trace: {what} {:.1}ms",
            since.elapsed().as_secs_f64() * 1000.0
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::config_parameter;

    #[test]
    fn git_dash_c_parameters_are_read() {
        let key = "orch.color";
        assert_eq!(
            config_parameter("'orch.color'='always'", key).as_deref(),
            Some("always")
        );
        assert_eq!(
            config_parameter("'core.pager'='less' 'orch.color'='never'", key).as_deref(),
            Some("never")
        );
        // git before 2.31, and the last value winning.
        assert_eq!(
            config_parameter("'orch.color=never' 'ORCH.COLOR=always'", key).as_deref(),
            Some("always")
        );
        assert_eq!(
            config_parameter("'user.name'='it'\\''s' 'orch.color'='auto'", key).as_deref(),
            Some("auto")
        );
        assert_eq!(config_parameter("'user.name'='x'", key), None);
        assert_eq!(config_parameter("", key), None);
    }
}
