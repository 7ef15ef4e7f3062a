//! Diagnostics: what validation reports, in the `file:line:col: error: …`
//! shape that editors and terminals already know how to jump to.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found in a plan. `line` and `col` are 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub line: Option<usize>,
    pub col: Option<usize>,
    /// For the line that stands for problems not shown ("and 5 more
    /// problems"), how many; 0 for a diagnostic of its own.
    pub more: usize,
}

impl Diagnostic {
    /// Control characters in the message (from a hostile id, say) are
    /// escaped: a diagnostic is one line and cannot drive the terminal.
    pub fn error(message: impl Into<String>) -> Diagnostic {
        let message: String = message.into();
        let message = if message.contains(char::is_control) {
            message
                .chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        } else {
            message
        };
        Diagnostic {
            severity: Severity::Error,
            message,
            line: None,
            col: None,
            more: 0,
        }
    }

    pub fn warning(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    /// Attach a location, keeping any already set: the parser's location is
    /// more precise than any later guess.
    pub fn at(mut self, pos: Option<(usize, usize)>) -> Diagnostic {
        if self.line.is_none() {
            if let Some((line, col)) = pos {
                self.line = Some(line);
                self.col = Some(col);
            }
        }
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// How many problems this diagnostic counts for: 1, or what a closing
    /// "and N more" line stands for.
    pub fn count(&self) -> usize {
        if self.more > 0 {
            self.more
        } else {
            1
        }
    }

    /// `plan.toml:12:5: error: …`, or `plan.toml: warning: …` without a location.
    pub fn render(&self, file: &str) -> String {
        match (self.line, self.col) {
            (Some(l), Some(c)) => format!("{file}:{l}:{c}: {}: {}", self.severity, self.message),
            (Some(l), None) => format!("{file}:{l}: {}: {}", self.severity, self.message),
            _ => format!("{file}: {}: {}", self.severity, self.message),
        }
    }
}

/// At most this many diagnostics are reported (and located: finding each
/// problem's line costs a pass over the text); the rest are counted in one
/// closing "and N more" line, so a plan with 100,000 errors is cheap to check.
pub const MAX_DIAGNOSTICS: usize = 100;

/// The first [`MAX_DIAGNOSTICS`] of `diags` (errors come first), then one
/// line counting the rest.
pub fn cap(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    if diags.len() <= MAX_DIAGNOSTICS {
        return diags;
    }
    let rest = diags.split_off(MAX_DIAGNOSTICS);
    let errors = rest.iter().filter(|d| d.is_error()).count();
    let warnings = rest.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} more {word}{}", if n == 1 { "" } else { "s" });
    let mut last = if errors > 0 {
        let mut msg = format!("and {}", plural(errors, "problem"));
        if warnings > 0 {
            msg.push_str(&format!(" and {}", plural(warnings, "warning")));
        }
        Diagnostic::error(msg + " (fix the first ones and check again)")
    } else {
        Diagnostic::warning(format!("and {}", plural(warnings, "warning")))
    };
    last.more = if errors > 0 { errors } else { warnings };
    diags.push(last);
    diags
}
