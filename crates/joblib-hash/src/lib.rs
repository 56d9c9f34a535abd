//! Deterministic, fast digests of any [`serde`] value.
//!
//! `joblib-hash` turns a value into a 128-bit digest that depends only on the
//! value: not on the run, the process, the machine, its endianness or pointer
//! width, nor on the iteration order of maps and sets. It is the key of
//! joblib for Rust's disk cache (the crate `joblib`), and works on its own
//! wherever a stable fingerprint of data is needed.
//!
//! ```
//! use std::collections::HashMap;
//! use joblib_hash::{hash, Hasher};
//!
//! #[derive(serde::Serialize)]
//! struct Params { alpha: f64, labels: Vec<String> }
//!
//! let p = Params { alpha: 0.5, labels: vec!["a".into(), "b".into()] };
//! let d = hash(&p)?;
//! assert_eq!(d, hash(&p)?);                       // same value, same digest
//! assert_eq!(d.to_hex().len(), 32);
//! assert_ne!(hash(&("ab", "c"))?, hash(&("a", "bc"))?);
//! assert_ne!(hash(&Some(0u8))?, hash(&0u8)?);
//!
//! // Several values into one digest:
//! let mut h = Hasher::new();
//! h.update("step-1")?.update(&p)?;
//! let combined = h.finish()?;
//! assert_ne!(combined, d);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is hashed
//!
//! The value goes through its `Serialize` implementation into a canonical,
//! type-tagged, length-prefixed encoding of serde's data model (specified
//! byte by byte in `docs/hashing.md`), which is fed to XXH3-128, or to BLAKE3
//! with the `blake3` feature. Consequences worth knowing:
//!
//! - **Types matter.** `1u32` and `1u64` differ, as do `Some(x)` and `x`, a
//!   `Vec` and a tuple, and structs or enum variants with different names.
//!   `usize` is hashed as `u64`, so 32- and 64-bit targets agree.
//! - **Maps and sets are unordered.** A `HashMap` and a `BTreeMap` with equal
//!   entries have equal digests, whatever the insertion order or hasher seed;
//!   so do `HashSet`, `BTreeSet` and `IndexSet`. Other sequence types keep
//!   their order; mark a set type of your own with [`unordered`].
//! - **Floats are bit-exact, but NaN is one value.** `0.0` and `-0.0` differ;
//!   every NaN (any sign or payload) hashes as the same canonical NaN, so a
//!   cached call with a NaN argument is found again.
//! - **Arrays follow `==`.** An `ndarray` array is hashed in logical order
//!   with its shape, so a transposed, Fortran-order or strided copy that
//!   compares equal hashes equal.
//! - **Large numeric data is fast.** Runs of same-typed primitives inside a
//!   sequence carry no per-element tags and reach the hash function in large
//!   blocks, so a `Vec<f64>` or an `ndarray` array hashes at several GB/s.
//!
//! Digests are stable across versions of this crate: golden values are
//! pinned in its tests, and a change to them is a breaking change.
//!
//! # Features
//!
//! - `blake3`: `Algorithm::Blake3` (see [`Algorithm`]), 32-byte cryptographic digests for
//!   caches whose keys an adversary may choose.
//! - `ndarray` (default): `ndarray` 0.17 arrays are hashed straight from
//!   their memory, several times faster, with the same digests as their
//!   `Serialize` gives. This needs one type-id checked cast, the crate's only
//!   `unsafe` code; without the feature arrays go element by element.
//!   Arrays of another ndarray version hash through their `Serialize`
//!   (same digests, slower).

#[cfg(feature = "ndarray")]
mod array;
mod bulk;
mod digest;
mod encoder;
mod error;
mod hasher;
mod seq;
mod ser;
mod sink;
pub mod unordered;

pub use digest::{Algorithm, Digest};
pub use error::Error;
pub use hasher::{Hasher, hash, hash_with};
