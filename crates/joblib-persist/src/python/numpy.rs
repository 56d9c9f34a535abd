//! numpy dtypes and array payloads: from a dtype string and its pickled
//! state, and from raw bytes (inline in the stream or in a bytes object).

use super::PErr;
use super::source::Source;
use super::value::{ArrayData, PyDtype};
use crate::element::Element;

impl PyDtype {
    /// The dtype built by `numpy.dtype(typestr, ...)`, before its state.
    pub(crate) fn from_typestr(s: &str, at: u64) -> Result<PyDtype, PErr> {
        let bad = || PErr::pickle(at, format!("unknown numpy dtype string {s:?}"));
        let mut chars = s.chars();
        let kind = chars.next().ok_or_else(bad)?;
        let rest = chars.as_str();
        let itemsize: usize = if rest.is_empty() {
            0
        } else {
            rest.parse().map_err(|_| bad())?
        };
        let (itemsize, byteorder) = match kind {
            'b' if itemsize == 1 => (1, '|'),
            'i' | 'u' if matches!(itemsize, 1 | 2 | 4 | 8) => {
                (itemsize, if itemsize == 1 { '|' } else { '<' })
            }
            'f' if matches!(itemsize, 2 | 4 | 8 | 16) => (itemsize, '<'),
            'c' if matches!(itemsize, 8 | 16 | 32) => (itemsize, '<'),
            'M' | 'm' if itemsize == 8 => (8, '<'),
            'O' if matches!(itemsize, 4 | 8) => (itemsize, '|'),
            'U' => (itemsize.checked_mul(4).ok_or_else(bad)?, '<'),
            'S' | 'V' => (itemsize, '|'),
            _ => return Err(bad()),
        };
        Ok(PyDtype {
            kind,
            itemsize,
            byteorder,
            unit: None,
            structured: false,
        })
    }

    /// Whether elements are Python objects (a nested pickle in joblib files).
    pub(crate) fn is_object(&self) -> bool {
        self.kind == 'O'
    }

    /// Checks that arrays of this dtype can be read.
    pub(crate) fn check_supported(&self, at: u64) -> Result<(), PErr> {
        let unsupported = |why: &str| {
            Err(PErr::pickle(
                at,
                format!("numpy dtype {} is not supported: {why}", self.descr()),
            ))
        };
        if self.structured {
            return unsupported("structured dtypes and sub-arrays are not read yet");
        }
        match (self.kind, self.itemsize) {
            ('f', 2) => unsupported("float16 has no Rust primitive"),
            ('f', 16) | ('c', 32) => unsupported("extended precision has no Rust primitive"),
            ('V', _) => unsupported("void (raw record) dtypes are not read"),
            _ => Ok(()),
        }
    }
}

/// For an array whose elements can stay in a mapped file at offset `at`,
/// an empty vector of their type; `None` when they must be read into
/// memory: not a plain number type `MmapArray` holds, not in the machine's
/// byte order, Fortran order of more than one dimension (views are C
/// order), or not aligned in the file for their type (files of joblib
/// 1.1 and older, or written to a non-seekable target, have no padding).
pub(crate) fn mappable(
    dtype: &PyDtype,
    shape: &[usize],
    fortran: bool,
    at: u64,
) -> Option<ArrayData> {
    let native = match dtype.byteorder {
        '|' => true,
        '<' => cfg!(target_endian = "little"),
        '>' => cfg!(target_endian = "big"),
        _ => false,
    };
    let size = u64::try_from(dtype.itemsize).ok()?;
    if !native || (fortran && shape.len() > 1) || size == 0 || !at.is_multiple_of(size) {
        return None;
    }
    Some(match (dtype.kind, dtype.itemsize) {
        ('i', 1) => ArrayData::I8(Vec::new()),
        ('i', 2) => ArrayData::I16(Vec::new()),
        ('i', 4) => ArrayData::I32(Vec::new()),
        ('i', 8) => ArrayData::I64(Vec::new()),
        ('u', 1) => ArrayData::U8(Vec::new()),
        ('u', 2) => ArrayData::U16(Vec::new()),
        ('u', 4) => ArrayData::U32(Vec::new()),
        ('u', 8) => ArrayData::U64(Vec::new()),
        ('f', 4) => ArrayData::F32(Vec::new()),
        ('f', 8) => ArrayData::F64(Vec::new()),
        _ => return None,
    })
}

/// Number of elements of `shape`, checked.
pub(crate) fn count(shape: &[usize], at: u64) -> Result<usize, PErr> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| {
            PErr::pickle(
                at,
                format!("array shape {shape:?} has more elements than can be addressed"),
            )
        })
}

/// Where the raw bytes of an array come from.
pub(crate) enum Raw<'a, 'r> {
    /// Inline in the stream (joblib's wrapper).
    Stream(&'a mut Source<'r>),
    /// A bytes object already read (`_reconstruct`, `_frombuffer`, `scalar`).
    Slice(&'a [u8]),
}

impl Raw<'_, '_> {
    fn read<T: bytemuck::Pod>(&mut self, n: usize, at: u64) -> Result<Vec<T>, PErr> {
        match self {
            Raw::Stream(src) => {
                let mut v = Vec::new();
                src.read_grow(&mut v, n as u64)?;
                Ok(v)
            }
            Raw::Slice(bytes) => {
                let size = std::mem::size_of::<T>();
                let want = n
                    .checked_mul(size)
                    .ok_or_else(|| PErr::pickle(at, "overflow"))?;
                if bytes.len() != want {
                    return Err(PErr::pickle(
                        at,
                        format!(
                            "array data holds {} bytes, its shape and dtype need {want}",
                            bytes.len()
                        ),
                    ));
                }
                let mut v = vec![T::zeroed(); n];
                bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(bytes);
                Ok(v)
            }
        }
    }
}

impl Raw<'_, '_> {
    /// [`read`](Self::read) for the numbers `MmapArray` and `.jbl` blocks
    /// hold: the vector is allocated as owned loads allocate theirs (a large
    /// one advised for transparent huge pages, as numpy advises its arrays),
    /// which makes reading into it several times cheaper; it then goes to
    /// the loaded value as it is.
    fn read_num<T: Element + bytemuck::Pod>(&mut self, n: usize, at: u64) -> Result<Vec<T>, PErr> {
        let oom = || PErr::pickle(at, "out of memory for an array");
        let total = n
            .checked_mul(size_of::<T>())
            .ok_or_else(|| PErr::pickle(at, "overflow"))?;
        match self {
            Raw::Stream(src) if src.can_hold(u64::try_from(total).unwrap_or(u64::MAX)) => {
                let mut v = crate::owned::try_zeroed::<T>(n).ok_or_else(oom)?;
                src.fill(crate::owned::bytes_mut(&mut v))?;
                Ok(v)
            }
            Raw::Slice(bytes) if bytes.len() == total => {
                let mut v = crate::owned::try_zeroed::<T>(n).ok_or_else(oom)?;
                crate::owned::bytes_mut(&mut v).copy_from_slice(bytes);
                Ok(v)
            }
            _ => self.read(n, at),
        }
    }
}

/// Reverses the bytes of each element when the data's byte order is not
/// the machine's.
fn swap<T: bytemuck::Pod>(mut v: Vec<T>, dtype: &PyDtype, part: usize) -> Vec<T> {
    let big = dtype.byteorder == '>';
    if big != cfg!(target_endian = "big") && part > 1 {
        for chunk in bytemuck::cast_slice_mut::<T, u8>(&mut v).chunks_exact_mut(part) {
            chunk.reverse();
        }
    }
    v
}

/// Reads `n` elements of `dtype` (not object) from `raw`.
pub(crate) fn read_data(
    dtype: &PyDtype,
    n: usize,
    mut raw: Raw<'_, '_>,
    at: u64,
) -> Result<ArrayData, PErr> {
    dtype.check_supported(at)?;
    macro_rules! num {
        ($t:ty, $variant:ident, $part:expr) => {
            ArrayData::$variant(swap(raw.read_num::<$t>(n, at)?, dtype, $part))
        };
    }
    macro_rules! complex {
        ($t:ty, $variant:ident, $part:expr) => {
            ArrayData::$variant(swap(raw.read::<$t>(n, at)?, dtype, $part))
        };
    }
    Ok(match (dtype.kind, dtype.itemsize) {
        ('b', 1) => ArrayData::Bool(raw.read::<u8>(n, at)?.into_iter().map(|b| b != 0).collect()),
        ('i', 1) => num!(i8, I8, 1),
        ('i', 2) => num!(i16, I16, 2),
        ('i', 4) => num!(i32, I32, 4),
        ('i' | 'M' | 'm', 8) => num!(i64, I64, 8),
        ('u', 1) => num!(u8, U8, 1),
        ('u', 2) => num!(u16, U16, 2),
        ('u', 4) => num!(u32, U32, 4),
        ('u', 8) => num!(u64, U64, 8),
        ('f', 4) => num!(f32, F32, 4),
        ('f', 8) => num!(f64, F64, 8),
        ('c', 8) => complex!([f32; 2], C64, 4),
        ('c', 16) => complex!([f64; 2], C128, 8),
        ('S', size) => {
            let total = n
                .checked_mul(size)
                .ok_or_else(|| PErr::pickle(at, "overflow"))?;
            let bytes = raw.read::<u8>(total, at)?;
            let items = if size == 0 {
                vec![Vec::new(); n]
            } else {
                bytes
                    .chunks_exact(size)
                    .map(|c| trim_nul(c).to_vec())
                    .collect()
            };
            ArrayData::Bytes(items)
        }
        ('U', size) => {
            let chars = size / 4;
            let total = n
                .checked_mul(chars)
                .ok_or_else(|| PErr::pickle(at, "overflow"))?;
            let units = swap(raw.read::<u32>(total, at)?, dtype, 4);
            let mut items = Vec::with_capacity(n.min(1 << 16));
            if chars == 0 {
                items.resize(n, String::new());
            }
            for cps in units
                .chunks_exact(chars.max(1))
                .take(if chars == 0 { 0 } else { n })
            {
                let end = cps.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
                let s = cps[..end]
                    .iter()
                    .map(|&c| char::from_u32(c))
                    .collect::<Option<String>>()
                    .ok_or_else(|| {
                        PErr::pickle(at, "a unicode array holds an invalid code point")
                    })?;
                items.push(s);
            }
            ArrayData::Str(items)
        }
        _ => {
            return Err(PErr::pickle(
                at,
                format!("numpy dtype {} is not supported", dtype.descr()),
            ));
        }
    })
}

fn trim_nul(b: &[u8]) -> &[u8] {
    let end = b.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    &b[..end]
}

/// Reorders Fortran-order elements into C order.
pub(crate) fn fortran_to_c<T: Clone>(
    data: Vec<T>,
    shape: &[usize],
    at: u64,
) -> Result<Vec<T>, PErr> {
    use ndarray::{ArrayD, IxDyn, ShapeBuilder};
    if shape.len() < 2 {
        return Ok(data);
    }
    let n = data.len();
    ArrayD::from_shape_vec(IxDyn(shape).f(), data)
        .map(|a| a.iter().cloned().collect())
        .map_err(|_| PErr::pickle(at, format!("{n} array elements do not fit shape {shape:?}")))
}

/// Reorders the typed elements of a Fortran-order array into C order.
pub(crate) fn data_fortran_to_c(
    data: ArrayData,
    shape: &[usize],
    at: u64,
) -> Result<ArrayData, PErr> {
    macro_rules! each {
        ($($v:ident),*) => {
            Ok(match data {
                $(ArrayData::$v(d) => ArrayData::$v(fortran_to_c(d, shape, at)?),)*
            })
        };
    }
    each!(
        Bool, I8, I16, I32, I64, U8, U16, U32, U64, F32, F64, C64, C128, Str, Bytes, Object
    )
}
