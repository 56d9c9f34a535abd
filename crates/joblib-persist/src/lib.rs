//! Fast, safe persistence of [`serde`] values and `ndarray` arrays: the
//! `.jbl` file format of joblib for Rust (the crate `joblib`).
//!
//! [`dump`] writes any `Serialize` value to a file, [`load`] reads it back
//! into any `DeserializeOwned` type. The structure of the value is stored as
//! MessagePack; large numeric arrays (`ndarray` arrays, `Vec`s of
//! primitives, `serde_bytes` byte strings) go out of line into raw
//! little-endian blocks aligned to 64 bytes, so an uncompressed file can be
//! memory-mapped and its arrays used without a copy.
//!
//! ```
//! use ndarray::Array2;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Model { name: String, weights: Array2<f64>, bias: Vec<f32> }
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("model.jbl"); // "model.jbl.zst" would pick zstd
//! let model = Model {
//!     name: "ridge".into(),
//!     weights: Array2::from_shape_fn((300, 20), |(i, j)| (i * j) as f64),
//!     bias: vec![0.25; 20],
//! };
//! joblib_persist::dump(&model, &path)?;
//! let back: Model = joblib_persist::load(&path)?;
//! assert_eq!(back, model);
//!
//! let info = joblib_persist::inspect(&path)?;
//! assert_eq!(info.blocks[0].shape, [300, 20]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Safety of loading
//!
//! Loading a file **cannot execute code**, unlike Python's pickle (which
//! joblib uses): a `.jbl` file holds data only, and the only code that runs
//! is the `Deserialize` implementation of the type you ask for. Every length
//! and offset in a file is checked against the file's size with checked
//! arithmetic before it is used, and every part of the file carries an XXH3
//! checksum, so a truncated, damaged or hostile file gives an [`Error`]
//! naming what is wrong: never a panic, a hang, or an allocation larger than
//! the file justifies.
//!
//! # Compression
//!
//! Blocks are cut into chunks (1 MiB by default) compressed independently on
//! all cores (rayon). The method is written in the file and found again on
//! load. Built-in methods are cargo features: `zlib` (zlib and gzip), `bz2`,
//! `xz` (xz and lzma), `lz4` and `zstd` (the last two on by default). Add
//! your own with [`register_compressor`]. As in joblib, a path ending in
//! `.z`, `.gz`, `.bz2`, `.xz`, `.lzma`, `.lz4` or `.zst` picks that method
//! when [`DumpOptions::compress`] is not given.
//!
//! # Memory-mapped loading
//!
//! [`load_mmap`] maps an uncompressed file and deserializes its structure;
//! fields of type [`MmapArray`] become views into the mapping (read-only,
//! read-write or copy-on-write, see [`MmapMode`]), so the load takes the same
//! short time whatever the arrays' size. `MmapArray` serializes exactly like
//! an `ndarray` array, so a file dumped from `Array2<f64>` fields maps into
//! `MmapArray<f64, Ix2>` fields. The header, index and structure are checked
//! on load; the mapped blocks are checked by [`verify`] when asked.
//!
//! # Streams
//!
//! [`dump_to_writer`] writes to any `Write` without seeking;
//! [`load_from_reader`] reads from any `Read` (it buffers the stream).
//!
//! The format is specified in `docs/format.md`.
//!
//! # Files written by Python's joblib
//!
//! With the feature `python`, `load_python` reads the files Python's
//! `joblib.dump` writes (numpy arrays, dicts, lists, scalars; every joblib
//! compressor whose feature is on) into serde types or a dynamic
//! `PyValue`, through a pickle reader of its own that honours a whitelist
//! of globals and never calls anything; see `docs/python-files.md`.
//!
//! # ndarray versions
//!
//! Arrays are supported for **ndarray 0.17** (what `cargo add ndarray`
//! picks), with its `serde` feature, which this crate turns on. Array types
//! of another ndarray version are different types to Rust and do not
//! implement the traits this crate needs. To be sure of using the same
//! version, use the re-export `joblib_persist::ndarray` (feature
//! `ndarray`), or `joblib::ndarray` from the facade.
//!
#![cfg_attr(feature = "ndarray", doc = "[`MmapArray`]: crate::MmapArray")]
// Without the feature the name stays, pointing at the section above.
#![cfg_attr(
    not(feature = "ndarray"),
    doc = "[`MmapArray`]: #memory-mapped-loading"
)]

#[cfg(feature = "ndarray")]
mod array;
mod compress;
mod de;
mod dump;
mod element;
mod error;
mod format;
mod inspect;
mod load;
mod mmap;
#[cfg(feature = "ndarray")]
mod mmap_array;
mod options;
mod outline;
mod owned;
mod par;
#[cfg(feature = "python")]
mod python;
mod ser;
mod shape;
mod sink;
mod source;
pub mod temp;
mod view;
mod warn;
mod writer;

pub use compress::{Compression, Compressor, register_compressor};
pub use dump::{dump, dump_to_writer};
pub use element::Element;
pub use error::Error;
pub use format::{Dtype, FORMAT_VERSION};
pub use inspect::{BlockInfo, FileInfo, inspect};
pub use load::{load, load_from_reader, verify};
pub use mmap::{MmapMode, load_mmap, load_mmap_strict};
#[cfg(feature = "ndarray")]
pub use mmap_array::MmapArray;
/// The `ndarray` crate this crate's array support is built for (0.17),
/// with its `serde` feature on.
#[cfg(feature = "ndarray")]
pub use ndarray;
pub use options::{DEFAULT_CHUNK_SIZE, DEFAULT_MIN_BLOCK, DumpOptions};
pub use outline::{Node, OUTLINE_MAP_ENTRIES, OUTLINE_NODES, OUTLINE_SEQ_ITEMS, Outline, outline};
#[cfg(feature = "python")]
pub use python::{
    ArrayData, PY_MAX_DEPTH, PyArray, PyDtype, PyFileInfo, PyLoadOptions, PyValue, from_py_value,
    inspect_python, load_python, load_python_from_reader, load_python_mmap, load_python_value,
};
