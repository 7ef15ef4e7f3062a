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

    /// `plan.toml:12:5: error: …`, or `plan.toml: warning: …` without a location.
    pub fn render(&self, file: &str) -> String {
        match (self.line, self.col) {
            (Some(l), Some(c)) => format!("{file}:{l}:{c}: {}: {}", self.severity, self.message),
            (Some(l), None) => format!("{file}:{l}: {}: {}", self.severity, self.message),
            _ => format!("{file}: {}: {}", self.severity, self.message),
        }
    }
}
