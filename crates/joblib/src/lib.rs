//! joblib for Rust: transparent disk caching, easy parallel loops, fast
//! persistence and deterministic hashing for numerical pipelines.
//!
//! This facade re-exports the layers, each of which is also usable alone:
//!
//! - [`hash`](mod@hash) ([`joblib-hash`](https://docs.rs/joblib-hash)):
//!   deterministic digests of any `serde` value, fast on large arrays.
//!
//! ```
//! use joblib::prelude::*;
//!
//! let data = ndarray::Array2::<f64>::eye(3);
//! let digest = hash(&data)?;
//! assert_eq!(digest, hash(&data.t().to_owned())?); // equal arrays, equal digests
//! println!("{digest}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use joblib_hash as hash;

/// The digest of a value; see [`joblib_hash::hash`].
pub use joblib_hash::hash;

/// The items most programs need: `use joblib::prelude::*;`.
pub mod prelude {
    pub use joblib_hash::{Digest, Hasher, hash};
}
