//! [`Failure`]: why a command stopped, and its exit code.

use std::fmt::Display;
use std::io::ErrorKind;

/// Exit code: damage found (a damaged cache entry or `.jbl` file).
pub(crate) const DAMAGED: u8 = 1;
/// Exit code: bad usage or bad input (also clap's code for a bad command line).
pub(crate) const BAD_INPUT: u8 = 2;
/// Exit code: a filesystem operation failed (permission denied, disk full...).
pub(crate) const IO_FAILED: u8 = 3;

/// A command's failure: a one-line message for stderr and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn bad_input(message: impl Display) -> Failure {
        Failure {
            code: BAD_INPUT,
            message: one_line(message),
        }
    }

    pub(crate) fn io(message: impl Display) -> Failure {
        Failure {
            code: IO_FAILED,
            message: one_line(message),
        }
    }

    /// A cache error: bad input when the path is missing or not a cache,
    /// else a failed operation.
    pub(crate) fn memory(e: joblib_memory::Error) -> Failure {
        match &e {
            joblib_memory::Error::Io { source, .. }
                if matches!(
                    source.kind(),
                    ErrorKind::NotFound | ErrorKind::InvalidInput | ErrorKind::NotADirectory
                ) =>
            {
                Failure::bad_input(e)
            }
            _ => Failure::io(e),
        }
    }

    /// A `.jbl` error: damage for a corrupt file, bad input for a file
    /// that is missing or not a `.jbl` file, else a failed operation.
    pub(crate) fn persist(e: joblib_persist::Error) -> Failure {
        use joblib_persist::Error as E;
        let code = match &e {
            E::Corrupt { .. } | E::Checksum { .. } => DAMAGED,
            E::Io { source, .. } if source.kind() == ErrorKind::NotFound => BAD_INPUT,
            E::Io { source, .. } if source.kind() == ErrorKind::UnexpectedEof => DAMAGED,
            E::Io { .. } => IO_FAILED,
            _ => BAD_INPUT,
        };
        Failure {
            code,
            message: one_line(e),
        }
    }
}

/// Messages go to stderr on one line, whatever the underlying error holds.
fn one_line(message: impl Display) -> String {
    message
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
