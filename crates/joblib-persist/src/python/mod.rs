//! Reading files written by Python's `joblib.dump`, without executing code.
//!
//! A pickle is a program for a small stack machine; Python runs it, calling
//! whatever classes and functions it names. This module interprets it
//! instead, over a whitelist: plain Python data (None, bool, int, float,
//! complex, str, bytes, bytearray, list, tuple, dict, set, frozenset),
//! numpy dtypes, arrays and scalars (numpy 1.x and 2.x spellings), and
//! joblib's `NumpyArrayWrapper`, whose array bytes follow it inline in the
//! file. Any other global is an error naming it, or with
//! [`PyLoadOptions::opaque_objects`] an inert [`PyValue::Object`]. Nothing
//! is ever called.
//!
//! Every size a file claims is checked against the caps of
//! [`PyLoadOptions`] and against the bytes actually there, so a hostile file
//! gives an [`Error`] (never a panic, an abort or an unbounded allocation).

mod de;
mod held;
mod mapped;
mod numpy;
mod source;
mod tree;
mod value;
mod vm;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{Error, io_err};
pub use mapped::load_python_mmap;
pub use value::{ArrayData, PyArray, PyDtype, PyValue};

use crate::compress::Compression;
use source::{Container, Source, decoder};

/// Nesting allowed in a value (lists in lists, ...), as for `.jbl` files.
pub const PY_MAX_DEPTH: usize = 256;

/// Limits and choices for reading Python joblib files; the defaults suit
/// files from trusted pipelines while bounding what a hostile file can cost.
///
/// ```
/// use joblib_persist::PyLoadOptions;
/// let opts = PyLoadOptions::new().opaque_objects(true).max_decompressed_bytes(1 << 30);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone)]
pub struct PyLoadOptions {
    opaque: bool,
    max_decompressed: u64,
    max_nodes: usize,
    max_memo: usize,
    max_values: u64,
    max_nested: usize,
}

impl Default for PyLoadOptions {
    fn default() -> Self {
        PyLoadOptions {
            opaque: false,
            max_decompressed: 16 << 30,
            max_nodes: 50_000_000,
            max_memo: 10_000_000,
            max_values: 1_000_000,
            max_nested: 4,
        }
    }
}

impl PyLoadOptions {
    /// The defaults: no opaque objects, 16 GiB of decompressed stream,
    /// 50 million pickle objects, 10 million memo entries, shared data
    /// expanding to at most 4 values per object or 1 million values
    /// (whichever is more), nested pickles 4 deep.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records objects of classes not on the whitelist as
    /// [`PyValue::Object`] (module, name, arguments, state) instead of
    /// refusing them, so that, e.g., a scikit-learn model file can be
    /// inspected and its arrays read. Nothing is called either way.
    pub fn opaque_objects(mut self, on: bool) -> Self {
        self.opaque = on;
        self
    }

    /// The most bytes the decompressed stream may hold; also bounds the
    /// bytes copied out of shared data.
    pub fn max_decompressed_bytes(mut self, bytes: u64) -> Self {
        self.max_decompressed = bytes;
        self
    }

    /// The most objects the pickle may create.
    pub fn max_objects(mut self, n: usize) -> Self {
        self.max_nodes = n;
        self
    }

    /// The most memo entries (references kept for sharing) a pickle may make.
    pub fn max_memo_entries(mut self, n: usize) -> Self {
        self.max_memo = n;
        self
    }

    /// The fewest values that shared data may expand to before it is
    /// refused (the cap is the larger of this and 4 values per object);
    /// this is what stops a few hundred bytes from expanding to 2^40.
    pub fn max_expanded_values(mut self, n: u64) -> Self {
        self.max_values = n;
        self
    }

    /// Loads the Python joblib file at `path` into `T`.
    pub fn load<T: DeserializeOwned>(&self, path: impl AsRef<Path>) -> Result<T, Error> {
        let path = path.as_ref();
        let value = self.load_value(path)?;
        de::from_owned_value(value, path)
    }

    /// Loads the Python joblib file at `path` as a [`PyValue`].
    pub fn load_value(&self, path: impl AsRef<Path>) -> Result<PyValue, Error> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| io_err(path, "opening", e))?;
        let len = file
            .metadata()
            .map_err(|e| io_err(path, "reading the metadata of", e))?
            .len();
        read_value(BufReader::new(file), Some(len), self).map_err(|e| e.into_error(path))
    }

    /// Reads a Python joblib stream (plain or compressed) into `T`.
    pub fn load_from_reader<T: DeserializeOwned>(&self, reader: impl Read) -> Result<T, Error> {
        let value = self.load_value_from_reader(reader)?;
        de::from_owned_value(value, Path::new("<stream>"))
    }

    /// Reads a Python joblib stream (plain or compressed) as a [`PyValue`].
    pub fn load_value_from_reader(&self, reader: impl Read) -> Result<PyValue, Error> {
        read_value(BufReader::new(reader), None, self)
            .map_err(|e| e.into_error(Path::new("<stream>")))
    }
}

/// Loads a file written by Python's `joblib.dump` into `T`, with the
/// default [`PyLoadOptions`].
///
/// numpy arrays load into `ndarray` arrays (`Array1..ArrayD`) or, when
/// 1-d, `Vec`s; dicts into maps and structs; lists and tuples into `Vec`s
/// and tuples. The element type must be the array's exactly: an array of
/// `float32` loaded into `Array1<f64>` is an error naming the field, both
/// types and the shape, never a converted copy.
///
/// ```no_run
/// use std::collections::HashMap;
/// use ndarray::Array2;
/// // Python: joblib.dump({"w": np.ones((3, 4))}, "model.pkl")
/// let model: HashMap<String, Array2<f64>> = joblib_persist::load_python("model.pkl")?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_python<T: DeserializeOwned>(path: impl AsRef<Path>) -> Result<T, Error> {
    PyLoadOptions::default().load(path)
}

/// Loads a file written by Python's `joblib.dump` as a [`PyValue`], to
/// explore a file whose shape is unknown.
pub fn load_python_value(path: impl AsRef<Path>) -> Result<PyValue, Error> {
    PyLoadOptions::default().load_value(path)
}

/// Reads a Python joblib stream (plain or compressed) into `T`, with the
/// default [`PyLoadOptions`].
pub fn load_python_from_reader<T: DeserializeOwned>(reader: impl Read) -> Result<T, Error> {
    PyLoadOptions::default().load_from_reader(reader)
}

/// What [`inspect_python`] reports about a Python joblib file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PyFileInfo {
    /// The compression, told from the file's first bytes.
    pub compression: Compression,
    /// Length of the (decompressed) pickle stream, array bytes included.
    pub pickle_bytes: u64,
    /// The value, with objects of classes off the whitelist recorded as
    /// [`PyValue::Object`] (nothing is called); see [`PyValue::outline`].
    pub value: PyValue,
}

/// Reads a Python joblib file for inspection: its compression, its size
/// and its value, with unknown classes recorded inert instead of refused.
pub fn inspect_python(path: impl AsRef<Path>) -> Result<PyFileInfo, Error> {
    let path = path.as_ref();
    let opts = PyLoadOptions::new().opaque_objects(true);
    let file = File::open(path).map_err(|e| io_err(path, "opening", e))?;
    let len = file
        .metadata()
        .map_err(|e| io_err(path, "reading the metadata of", e))?
        .len();
    let (compression, pickle_bytes, value) =
        read(BufReader::new(file), Some(len), &opts).map_err(|e| e.into_error(path))?;
    Ok(PyFileInfo {
        compression,
        pickle_bytes,
        value,
    })
}

/// Converts a [`PyValue`] into `T`, as [`load_python`] does.
pub fn from_py_value<T: DeserializeOwned>(value: &PyValue) -> Result<T, Error> {
    de::from_value(value, Path::new("<value>"))
}

/// Reads the container and the pickle of `raw`, whose length is `len` when
/// it is a file.
fn read_value<'r>(
    raw: BufReader<impl Read + 'r>,
    len: Option<u64>,
    opts: &PyLoadOptions,
) -> Result<PyValue, PErr> {
    read(raw, len, opts).map(|(_, _, v)| v)
}

/// [`read_value`], with the compression and the stream's length.
fn read<'r>(
    mut raw: BufReader<impl Read + 'r>,
    len: Option<u64>,
    opts: &PyLoadOptions,
) -> Result<(Compression, u64, PyValue), PErr> {
    let head = raw
        .fill_buf()
        .map_err(|e| PErr::pickle(0, format!("reading the file: {e}")))?;
    if head.is_empty() {
        return Err(PErr::pickle(0, "the file is empty"));
    }
    let container = Container::detect(head)?;
    let plain_len = if container == Compression::None {
        len
    } else {
        None
    };
    let stream = decoder(container.clone(), Box::new(raw))?;
    let mut src = Source::new(stream, opts.max_decompressed, plain_len);
    let value = vm::run(&mut src, opts, 0)?;
    Ok((container, src.pos(), value))
}

/// An error inside the reader, before it knows the file's path.
#[derive(Debug)]
pub(crate) struct PErr {
    offset: u64,
    kind: PErrKind,
}

#[derive(Debug)]
enum PErrKind {
    Pickle(String),
    Global(String),
}

impl std::fmt::Display for PErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            PErrKind::Pickle(what) => write!(f, "at byte {}: {what}", self.offset),
            PErrKind::Global(global) => {
                write!(f, "at byte {}: refused global {global}", self.offset)
            }
        }
    }
}

impl PErr {
    pub(crate) fn pickle(offset: u64, what: impl Into<String>) -> Self {
        PErr {
            offset,
            kind: PErrKind::Pickle(what.into()),
        }
    }

    pub(crate) fn global(offset: u64, global: String) -> Self {
        PErr {
            offset,
            kind: PErrKind::Global(global),
        }
    }

    pub(crate) fn into_error(self, path: &Path) -> Error {
        match self.kind {
            PErrKind::Pickle(what) => Error::Pickle {
                path: path.to_path_buf(),
                offset: self.offset,
                what,
            },
            PErrKind::Global(global) => Error::PythonGlobal {
                path: path.to_path_buf(),
                offset: self.offset,
                global,
            },
        }
    }
}
