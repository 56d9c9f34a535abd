use std::fmt;

use serde::Serialize;

use crate::encoder::Encoder;
use crate::ser::write_value;
use crate::{Algorithm, Digest, Error};

/// The digest of one value with the default algorithm, XXH3-128.
///
/// Equal to `Hasher::new().update(value)?.finish()?`.
///
/// # Errors
///
/// [`Error::Serialize`] when the value's `Serialize` implementation fails.
///
/// ```
/// use std::collections::{BTreeMap, HashMap};
///
/// let a: HashMap<&str, i32> = [("x", 1), ("y", 2)].into();
/// let b: BTreeMap<&str, i32> = [("y", 2), ("x", 1)].into();
/// assert_eq!(joblib_hash::hash(&a)?, joblib_hash::hash(&b)?);
/// assert_ne!(joblib_hash::hash(&1u32)?, joblib_hash::hash(&1u64)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn hash<T: Serialize + ?Sized>(value: &T) -> Result<Digest, Error> {
    hash_with(Algorithm::default(), value)
}

/// The digest of one value with the given algorithm.
///
/// # Errors
///
/// [`Error::Serialize`] when the value's `Serialize` implementation fails.
pub fn hash_with<T: Serialize + ?Sized>(algorithm: Algorithm, value: &T) -> Result<Digest, Error> {
    Hasher::with_algorithm(algorithm).update(value)?.finish()
}

/// Hashes several values, one after the other, into one digest.
///
/// The encoding of each value is self-delimiting, so `update(a); update(b)`
/// never collides with another split of the same contents, such as
/// `update(ab)`; it does differ from hashing the tuple `(a, b)`.
///
/// ```
/// use joblib_hash::Hasher;
///
/// let mut h = Hasher::new();
/// h.update("my_function")?.update(&[1.0f64, 2.0])?;
/// let d = h.finish()?;
/// assert_ne!(d, joblib_hash::hash("my_function")?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Hasher {
    encoder: Encoder,
    algorithm: Algorithm,
    /// The message of a failed update: the state holds part of a value.
    failed: Option<String>,
}

impl Hasher {
    /// A hasher using XXH3-128.
    pub fn new() -> Hasher {
        Hasher::with_algorithm(Algorithm::default())
    }

    /// A hasher using the given algorithm.
    pub fn with_algorithm(algorithm: Algorithm) -> Hasher {
        Hasher {
            encoder: Encoder::new(algorithm),
            algorithm,
            failed: None,
        }
    }

    /// The algorithm this hasher uses.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// Adds a value.
    ///
    /// # Errors
    ///
    /// [`Error::Serialize`] when the value's `Serialize` implementation
    /// fails; the hasher then refuses further use with [`Error::Poisoned`],
    /// because it holds part of a value and a digest of it would be wrong.
    pub fn update<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<&mut Hasher, Error> {
        if let Some(message) = &self.failed {
            return Err(Error::Poisoned {
                message: message.clone(),
            });
        }
        match write_value(&mut self.encoder, value) {
            Ok(()) => Ok(self),
            Err(err) => {
                self.failed = Some(err.to_string());
                Err(err)
            }
        }
    }

    /// The digest of everything added so far. The hasher stays usable:
    /// further updates continue from where it was.
    ///
    /// # Errors
    ///
    /// [`Error::Poisoned`] if an earlier update failed.
    pub fn finish(&self) -> Result<Digest, Error> {
        match &self.failed {
            Some(message) => Err(Error::Poisoned {
                message: message.clone(),
            }),
            None => Ok(self.encoder.digest()),
        }
    }
}

impl Default for Hasher {
    fn default() -> Hasher {
        Hasher::new()
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("algorithm", &self.algorithm)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}
