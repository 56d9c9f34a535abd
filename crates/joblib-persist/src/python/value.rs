//! [`PyValue`]: the public tree of a loaded Python pickle.

use std::fmt;

/// A value read from a Python pickle: plain Python data, numpy arrays and
/// scalars, and (only with [`PyLoadOptions::opaque_objects`]) inert records
/// of other objects.
///
/// Shared references in the pickle (`a = [1]; [a, a]`) become equal copies.
///
/// [`PyLoadOptions::opaque_objects`]: crate::PyLoadOptions::opaque_objects
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PyValue {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An `int` that fits in an `i64`.
    Int(i64),
    /// A larger `int`, as little-endian two's-complement bytes (as pickle's
    /// LONG1 stores it); [`PyValue::as_i128`] reads those that fit.
    BigInt(Vec<u8>),
    /// A `float`.
    Float(f64),
    /// A `complex`: real and imaginary parts.
    Complex(f64, f64),
    /// A `str`.
    Str(String),
    /// A `bytes`.
    Bytes(Vec<u8>),
    /// A `bytearray`.
    ByteArray(Vec<u8>),
    /// A `list`.
    List(Vec<PyValue>),
    /// A `tuple`.
    Tuple(Vec<PyValue>),
    /// A `dict`, as its pairs in order (keys of any type).
    Dict(Vec<(PyValue, PyValue)>),
    /// A `set`.
    Set(Vec<PyValue>),
    /// A `frozenset`.
    FrozenSet(Vec<PyValue>),
    /// A numpy array (`ndarray`, `matrix` or `memmap` in Python).
    Array(PyArray),
    /// A numpy scalar such as `np.float64(3.5)`: a 0-d array of one element.
    Scalar(PyArray),
    /// A reference to a class or function, e.g. `numpy.ndarray`, where a
    /// pickle uses one as a value.
    Global {
        /// The module, e.g. `numpy`.
        module: String,
        /// The name in the module, e.g. `ndarray`.
        name: String,
    },
    /// An object of a class that is not on the whitelist, recorded without
    /// calling anything (only with `PyLoadOptions::opaque_objects`).
    Object {
        /// The class's module.
        module: String,
        /// The class's name.
        name: String,
        /// The arguments it was to be built with (a tuple), if any.
        args: Box<PyValue>,
        /// The state passed to `__setstate__` (BUILD), if any.
        state: Option<Box<PyValue>>,
    },
}

/// A numpy array: its dtype, shape and elements in C (row-major) order,
/// whatever order the file stored them in.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PyArray {
    /// The dtype.
    pub dtype: PyDtype,
    /// The shape (empty for a 0-d array or a scalar).
    pub shape: Vec<usize>,
    /// The elements, in C order.
    pub data: ArrayData,
    /// Where the elements lie in the mapped file, for an array that
    /// `load_python_mmap` left in place (`data` is then empty, of the
    /// element type); `None` otherwise, and always in values users see.
    pub(crate) mapped: Option<u64>,
}

impl PyArray {
    /// An array holding its elements.
    pub(crate) fn new(dtype: PyDtype, shape: Vec<usize>, data: ArrayData) -> Self {
        PyArray {
            dtype,
            shape,
            data,
            mapped: None,
        }
    }

    /// Bytes the elements take (shape times itemsize), if that fits.
    pub(crate) fn data_bytes(&self) -> Option<u64> {
        let n = self
            .shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))?;
        u64::try_from(n.checked_mul(self.dtype.itemsize)?).ok()
    }
}

/// The elements of a [`PyArray`], typed after its dtype. Byte order is the
/// machine's; strings have numpy's trailing NULs removed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ArrayData {
    /// `bool`.
    Bool(Vec<bool>),
    /// `int8`.
    I8(Vec<i8>),
    /// `int16`.
    I16(Vec<i16>),
    /// `int32`.
    I32(Vec<i32>),
    /// `int64`, and `datetime64`/`timedelta64` counts of their unit.
    I64(Vec<i64>),
    /// `uint8`.
    U8(Vec<u8>),
    /// `uint16`.
    U16(Vec<u16>),
    /// `uint32`.
    U32(Vec<u32>),
    /// `uint64`.
    U64(Vec<u64>),
    /// `float32`.
    F32(Vec<f32>),
    /// `float64`.
    F64(Vec<f64>),
    /// `complex64`: real and imaginary parts.
    C64(Vec<[f32; 2]>),
    /// `complex128`: real and imaginary parts.
    C128(Vec<[f64; 2]>),
    /// Fixed-width unicode strings (`U`).
    Str(Vec<String>),
    /// Fixed-width byte strings (`S`).
    Bytes(Vec<Vec<u8>>),
    /// `object`: any Python values.
    Object(Vec<PyValue>),
}

/// A numpy dtype, as far as this reader needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PyDtype {
    /// numpy's kind character: `b`, `i`, `u`, `f`, `c`, `U`, `S`, `O`, `M`
    /// (datetime64), `m` (timedelta64) or `V`.
    pub kind: char,
    /// Bytes per element.
    pub itemsize: usize,
    /// `<` (little-endian), `>` (big-endian) or `|` (not applicable).
    pub byteorder: char,
    /// For `datetime64`/`timedelta64`, the unit, e.g. `D` or `ns`.
    pub unit: Option<String>,
    /// Whether the dtype is structured or has a sub-array (not supported
    /// for arrays).
    pub(crate) structured: bool,
}

impl PyDtype {
    /// numpy's spelling of the dtype, e.g. `<f8`, `|b1`, `<U3`, `<M8[D]`.
    pub fn descr(&self) -> String {
        let size = match self.kind {
            'U' => self.itemsize / 4,
            _ => self.itemsize,
        };
        let unit = self
            .unit
            .as_ref()
            .map(|u| format!("[{u}]"))
            .unwrap_or_default();
        format!("{}{}{size}{unit}", self.byteorder, self.kind)
    }
}

impl fmt::Display for PyDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.descr())
    }
}

impl ArrayData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            ArrayData::Bool(v) => v.len(),
            ArrayData::I8(v) => v.len(),
            ArrayData::I16(v) => v.len(),
            ArrayData::I32(v) => v.len(),
            ArrayData::I64(v) => v.len(),
            ArrayData::U8(v) => v.len(),
            ArrayData::U16(v) => v.len(),
            ArrayData::U32(v) => v.len(),
            ArrayData::U64(v) => v.len(),
            ArrayData::F32(v) => v.len(),
            ArrayData::F64(v) => v.len(),
            ArrayData::C64(v) => v.len(),
            ArrayData::C128(v) => v.len(),
            ArrayData::Str(v) => v.len(),
            ArrayData::Bytes(v) => v.len(),
            ArrayData::Object(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The Rust element type, for messages (`f64`, `String`, `PyValue`, ...).
    pub fn element_type(&self) -> &'static str {
        match self {
            ArrayData::Bool(_) => "bool",
            ArrayData::I8(_) => "i8",
            ArrayData::I16(_) => "i16",
            ArrayData::I32(_) => "i32",
            ArrayData::I64(_) => "i64",
            ArrayData::U8(_) => "u8",
            ArrayData::U16(_) => "u16",
            ArrayData::U32(_) => "u32",
            ArrayData::U64(_) => "u64",
            ArrayData::F32(_) => "f32",
            ArrayData::F64(_) => "f64",
            ArrayData::C64(_) => "[f32; 2] (complex64)",
            ArrayData::C128(_) => "[f64; 2] (complex128)",
            ArrayData::Str(_) => "String",
            ArrayData::Bytes(_) => "bytes",
            ArrayData::Object(_) => "Python objects",
        }
    }
}

impl PyValue {
    /// The integer, if this is an `int` that fits in an `i128`.
    pub fn as_i128(&self) -> Option<i128> {
        match self {
            PyValue::Int(i) => Some(i128::from(*i)),
            PyValue::BigInt(b) => bigint_i128(b),
            _ => None,
        }
    }

    /// The value under string key `key`, if this is a dict.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(pairs) => pairs
                .iter()
                .find(|(k, _)| matches!(k, PyValue::Str(s) if s == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// A short description of the value's type, for messages
    /// (`a list of 3 items`, `an array of shape [2, 3] with <f8 elements`).
    pub fn describe(&self) -> String {
        match self {
            PyValue::None => "None".into(),
            PyValue::Bool(_) => "a bool".into(),
            PyValue::Int(_) | PyValue::BigInt(_) => "an int".into(),
            PyValue::Float(_) => "a float (f64)".into(),
            PyValue::Complex(..) => "a complex".into(),
            PyValue::Str(_) => "a str".into(),
            PyValue::Bytes(_) => "bytes".into(),
            PyValue::ByteArray(_) => "a bytearray".into(),
            PyValue::List(v) => format!("a list of {} items", v.len()),
            PyValue::Tuple(v) => format!("a tuple of {} items", v.len()),
            PyValue::Dict(v) => format!("a dict of {} items", v.len()),
            PyValue::Set(v) | PyValue::FrozenSet(v) => format!("a set of {} items", v.len()),
            PyValue::Array(a) => {
                format!("an array of shape {:?} with {} elements", a.shape, a.dtype)
            }
            PyValue::Scalar(a) => format!("a numpy scalar of dtype {}", a.dtype),
            PyValue::Global { module, name } => format!("the global {module}.{name}"),
            PyValue::Object { module, name, .. } => format!("an opaque {module}.{name} object"),
        }
    }
}

/// Items of one container shown by [`PyValue::outline`].
const OUTLINE_ITEMS: usize = 20;

impl PyValue {
    /// An indented, one-line-per-value outline of the value's types and
    /// array shapes (at most 20 items per container), for `joblib inspect`.
    pub fn outline(&self) -> String {
        let mut out = String::new();
        outline_into(&mut out, None, self, 0);
        out
    }
}

fn outline_into(out: &mut String, key: Option<String>, v: &PyValue, depth: usize) {
    use std::fmt::Write as _;
    let indent = "  ".repeat(depth);
    let key = key.map(|k| format!("{k}: ")).unwrap_or_default();
    let short = match v {
        PyValue::None => "None".to_string(),
        PyValue::Bool(b) => format!("bool {}", if *b { "True" } else { "False" }),
        PyValue::Int(i) => format!("int {i}"),
        PyValue::BigInt(_) => match v.as_i128() {
            Some(i) => format!("int {i}"),
            None => "int (more than 128 bits)".into(),
        },
        PyValue::Float(f) => format!("float {f}"),
        PyValue::Complex(re, im) => format!("complex ({re}{im:+}j)"),
        PyValue::Str(s) if s.chars().count() > 40 => {
            format!(
                "str {:?}... ({} chars)",
                s.chars().take(40).collect::<String>(),
                s.chars().count()
            )
        }
        PyValue::Str(s) => format!("str {s:?}"),
        PyValue::Bytes(b) => format!("bytes ({} bytes)", b.len()),
        PyValue::ByteArray(b) => format!("bytearray ({} bytes)", b.len()),
        PyValue::Array(a) => format!("ndarray {} shape {:?}", a.dtype, a.shape),
        PyValue::Scalar(a) => format!("numpy scalar {}", a.dtype),
        _ => v.describe(),
    };
    let _ = writeln!(out, "{indent}{key}{short}");
    let children: Vec<(Option<String>, &PyValue)> = match v {
        PyValue::List(items)
        | PyValue::Tuple(items)
        | PyValue::Set(items)
        | PyValue::FrozenSet(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| (Some(format!("[{i}]")), x))
            .collect(),
        PyValue::Dict(pairs) => pairs
            .iter()
            .map(|(k, x)| {
                let k = match k {
                    PyValue::Str(s) => format!("{s:?}"),
                    PyValue::Int(i) => i.to_string(),
                    other => format!("<{}>", other.describe()),
                };
                (Some(k), x)
            })
            .collect(),
        PyValue::Array(PyArray {
            data: ArrayData::Object(items),
            ..
        }) => items
            .iter()
            .enumerate()
            .map(|(i, x)| (Some(format!("[{i}]")), x))
            .collect(),
        PyValue::Object { args, state, .. } => {
            let mut c = vec![(Some("args".to_string()), &**args)];
            if let Some(s) = state {
                c.push((Some("state".to_string()), &**s));
            }
            c
        }
        _ => Vec::new(),
    };
    let n = children.len();
    for (k, x) in children.into_iter().take(OUTLINE_ITEMS) {
        outline_into(out, k, x, depth + 1);
    }
    if n > OUTLINE_ITEMS {
        let _ = writeln!(out, "{indent}  ... {} more", n - OUTLINE_ITEMS);
    }
}

/// The value of little-endian two's-complement `bytes`, if it fits.
pub(crate) fn bigint_i128(bytes: &[u8]) -> Option<i128> {
    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
    let fill = if negative { 0xff } else { 0 };
    if bytes.len() > 16 && bytes[16..].iter().any(|&b| b != fill) {
        return None;
    }
    if bytes.len() > 16 && (bytes[15] & 0x80 != 0) != negative {
        return None;
    }
    let mut buf = [fill; 16];
    let n = bytes.len().min(16);
    buf[..n].copy_from_slice(&bytes[..n]);
    Some(i128::from_le_bytes(buf))
}
