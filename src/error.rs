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

/// Exit code of an internal error: a bug of git-orch's, or a failure of the
/// machine (a full disk, an I/O or libgit2 error) that the input did not
/// cause; nothing was changed (after a change it is [`EXIT_FAILED`]).
pub const EXIT_INTERNAL: u8 = 3;

/// Where an internal error is worth reporting.
pub const REPORT_AT: &str =
    "if the machine is fine (disk space, permissions), it is a bug: report it with this message and `git orch --version` to the git-orch issue tracker";

/// Whether `err` is internal: neither a refusal nor a failure of the work,
/// and caused by an I/O or libgit2 error of the kind input does not cause
/// (a missing or unreadable file the user named is input; a full disk, a
/// corrupt object or a failed write is not).
pub fn is_internal(err: &anyhow::Error) -> bool {
    let classified = err
        .chain()
        .any(|c| c.is::<Refusal>() || c.is::<Failure>() || c.is::<AfterCommit>());
    !classified
        && err.chain().any(|c| {
            if let Some(io) = c.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind::*;
                !matches!(
                    io.kind(),
                    NotFound
                        | PermissionDenied
                        | AlreadyExists
                        | InvalidInput
                        | InvalidData
                        | BrokenPipe
                        | Interrupted
                        | NotADirectory
                        | IsADirectory
                        | UnexpectedEof
                )
            } else if let Some(g) = c.downcast_ref::<git2::Error>() {
                use git2::{ErrorClass, ErrorCode};
                !matches!(
                    g.code(),
                    ErrorCode::NotFound
                        | ErrorCode::Exists
                        | ErrorCode::Ambiguous
                        | ErrorCode::InvalidSpec
                        | ErrorCode::Invalid
                        | ErrorCode::Locked
                        | ErrorCode::Modified
                        | ErrorCode::BareRepo
                        | ErrorCode::UnbornBranch
                        | ErrorCode::Directory
                ) && !matches!(g.class(), ErrorClass::Config | ErrorClass::Reference)
            } else {
                false
            }
        })
}

/// The exit code an error ends the command with.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err
        .chain()
        .any(|c| c.is::<AfterCommit>() || c.is::<Failure>())
    {
        EXIT_FAILED
    } else if is_internal(err) {
        EXIT_INTERNAL
    } else {
        EXIT_REFUSED
    }
}
