use std::fmt::Display;

/// Everything that can go wrong while hashing a value or parsing a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The value's `Serialize` implementation reported an error (for example
    /// a `RefCell` that was already mutably borrowed, or a hand-written impl
    /// that calls `serde::ser::Error::custom`).
    #[error("the value could not be serialized for hashing: {message}")]
    Serialize {
        /// The message the `Serialize` implementation gave.
        message: String,
    },
    /// A [`Hasher`](crate::Hasher) was used after one of its updates failed;
    /// its state holds part of a value, so it refuses to produce a digest.
    #[error("the hasher is unusable because an earlier update failed: {message}")]
    Poisoned {
        /// The message of the update that failed.
        message: String,
    },
    /// A string given to [`Digest::from_str`](crate::Digest) is not a digest.
    #[error("{input:?} is not a digest: {reason}")]
    InvalidDigest {
        /// The text that was parsed (cut to 80 characters).
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl serde::ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Self {
        Error::Serialize {
            message: msg.to_string(),
        }
    }
}
