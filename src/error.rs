//! The two ways a command can end badly, kept apart because scripts rely on
//! the exit code: a *refusal* (bad input, wrong state; nothing was changed,
//! exit 2) and a *work failure* (a task, gate, landing or push failed, exit 1).
//! Every other error is treated as a refusal, unless it came after a state
//! commit: then the change happened, and the error says so ([`AfterCommit`],
//! exit 1).

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

/// Something failed after a state change was committed (a derived ref, a
/// worktree to remove): the change stands, so this is not "nothing
/// changed". `done` says what was recorded, e.g. `task a: done`.
#[derive(Debug)]
pub struct AfterCommit {
    pub done: String,
    pub cause: anyhow::Error,
}

impl fmt::Display for AfterCommit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` was recorded, but then: {}", self.done, self.cause)
    }
}

impl std::error::Error for AfterCommit {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.cause.as_ref())
    }
}

/// Marks `err`, met after the state commit that recorded `done`.
pub fn after_commit(err: anyhow::Error, done: impl Into<String>) -> anyhow::Error {
    if err.chain().any(|c| c.is::<AfterCommit>()) {
        return err;
    }
    anyhow::Error::new(AfterCommit {
        done: done.into(),
        cause: err,
    })
}

/// The work failed for a cause outside the plan (a remote that stopped
/// answering in the middle of a shared run): exit 1, as a failed task is,
/// since the run had changed things before it; with a hint.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// A [`Failure`] with a `hint:` line.
pub fn fail_with_hint(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure {
        message: message.into(),
        hint: Some(hint.into()),
    })
}

/// Exit code of SPEC §7 for bad input or a refused operation (0 is done, 1
/// the work failed: commands return those themselves).
pub const EXIT_REFUSED: u8 = 2;

/// Exit code of SPEC §7 when the work failed (here: after a state commit).
pub const EXIT_FAILED: u8 = 1;

/// The exit code an error ends the command with.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err
        .chain()
        .any(|c| c.is::<AfterCommit>() || c.is::<Failure>())
    {
        EXIT_FAILED
    } else {
        EXIT_REFUSED
    }
}
