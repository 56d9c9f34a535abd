//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the cache.
///
/// [`MemorizedFunc::call`](crate::MemorizedFunc::call) never returns these:
/// a caching failure computes the value and warns through `tracing`. They
/// come from the explicit operations: building a [`Memory`](crate::Memory),
/// `clear`, `reduce_size`, [`MemorizedResult::get`](crate::MemorizedResult::get)
/// and the [`StoreBackend`](crate::StoreBackend) methods.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system reported an error on a file or directory of
    /// the cache.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What was being done, for example "creating the directory".
        action: &'static str,
        /// The underlying error.
        source: io::Error,
    },
    /// The arguments of a cached function could not be hashed (their
    /// `Serialize` implementation failed).
    #[error("cannot hash the arguments of {function}: {source}")]
    Hash {
        /// The cached function.
        function: String,
        /// The hashing error.
        source: joblib_hash::Error,
    },
    /// The result of a cached function could not be written or read back.
    #[error("result of {function}: {source}")]
    Persist {
        /// The cached function.
        function: String,
        /// The persistence error, naming the file.
        source: joblib_persist::Error,
    },
    /// An entry's `metadata.json` (or a function's `func.json`) could not be
    /// parsed or written.
    #[error("{}: invalid metadata: {message}", path.display())]
    Metadata {
        /// The metadata file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// There is no stored result for these arguments (it was never stored,
    /// was cleared, or was evicted by `reduce_size`).
    #[error("no cached result of {function} for arguments {digest}")]
    NotCached {
        /// The cached function.
        function: String,
        /// The hex digest of the arguments.
        digest: String,
    },
    /// A stored result belongs to another entry (copied or moved over this
    /// one): it is treated as damaged.
    #[error(
        "the stored result of {function} for arguments {expected} belongs to the entry {found}"
    )]
    WrongEntry {
        /// The cached function.
        function: String,
        /// The digest of the entry being read.
        expected: String,
        /// The digest recorded in the stored result.
        found: String,
    },
    /// A builder setting is invalid.
    #[error("invalid memory configuration: {0}")]
    Config(String),
    /// A custom [`StoreBackend`](crate::StoreBackend) failed.
    #[error("{backend}: {message}")]
    Backend {
        /// The backend, as it describes itself.
        backend: String,
        /// What went wrong.
        message: String,
    },
}

/// Shorthand for an [`Error::Io`].
pub(crate) fn io_err(path: impl Into<PathBuf>, action: &'static str, source: io::Error) -> Error {
    Error::Io {
        path: path.into(),
        action,
        source,
    }
}
