//! joblib for Rust: transparent disk caching, easy parallel loops, fast
//! persistence and deterministic hashing for numerical pipelines.
//!
//! This facade re-exports the layers, each of which is also usable alone:
//!
//! - [`hash`](mod@hash) ([`joblib-hash`](https://docs.rs/joblib-hash)):
//!   deterministic digests of any `serde` value, fast on large arrays.
//! - [`parallel`] ([`joblib-parallel`](https://docs.rs/joblib-parallel)):
//!   `Parallel` and `delayed`, ordered parallel loops over pluggable
//!   backends (sequential, threads, or your own `ParallelBackend`).
//!
//! # Hashing
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
//!
//! # Parallel loops
//!
//! joblib's `Parallel(n_jobs=2)(delayed(f)(x) for x in xs)`, in order:
//!
//! ```
//! use joblib::prelude::*;
//!
//! let squares = Parallel::new()
//!     .n_jobs(2)
//!     .run((0..10u64).map(|x| delayed(|x: u64| x * x, x)))?;
//! assert_eq!(squares[3], 9);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use joblib_hash as hash;
pub use joblib_parallel as parallel;

/// The digest of a value; see [`joblib_hash::hash`].
pub use joblib_hash::hash;
pub use joblib_parallel::{Parallel, ParallelBackend, delayed, parallel_config};

/// The items most programs need: `use joblib::prelude::*;`.
pub mod prelude {
    pub use joblib_hash::{Digest, Hasher, hash};
    pub use joblib_parallel::{Parallel, ParallelBackend, delayed, parallel_config};
}
