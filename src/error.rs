//! The two ways a command can end badly, kept apart because scripts rely on
//! the exit code: a *refusal* (bad input, wrong state; nothing was changed,
//! exit 2) and a *work failure* (a task, gate, landing or push failed, exit 1).
//! Every other error is treated as a refusal: we only ever fail before the
//! state commit that would have made a change visible.

use std::fmt;

/// Bad input or an operation that makes no sense now. Carries an optional
/// hint naming the command that would help.
#[derive(Debug)]
pub struct Refusal {
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// Builds a refusal error: `return Err(refuse("…"))`.
pub fn refuse(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Refusal {
        message: message.into(),
        hint: None,
    })
}

/// A refusal with a `hint:` line.
pub fn refuse_with_hint(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Refusal {
        message: message.into(),
        hint: Some(hint.into()),
    })
}

/// Exit code of SPEC §7 for bad input or a refused operation (0 is done, 1
/// the work failed: commands return those themselves).
pub const EXIT_REFUSED: u8 = 2;
