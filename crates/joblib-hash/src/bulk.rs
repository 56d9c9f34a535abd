//! Sequences of one primitive type, written a chunk at a time.
//!
//! serde hands a `Vec<f64>` to `collect_seq` as an iterator of `&f64`.
//! Written element by element (through [`Seq`]'s `serialize_element`), each
//! element pays for the check "is a run of this type open and not full",
//! and the loop cannot be vectorized. When the element type is known to be a
//! primitive, the run's free room is instead filled by one tight loop that
//! converts and copies elements straight into the sink's buffer; the bytes
//! are exactly those the element-by-element path writes, so digests do not
//! depend on which path a value took.
//!
//! The element type is recognised by its type id ([`wire_of`]); its value is
//! read through serde itself ([`grab`]), so no cast is needed: after
//! inlining, `grab` of a `&f64` is a load.

use std::any::TypeId;
use std::fmt;

use serde::ser::{self, Impossible, Serialize, Serializer};

use crate::encoder::{canonical_f32, canonical_f64, tag};

/// A primitive as the encoding writes it inside a run: its tag, its width
/// and its canonical little-endian bytes.
pub(crate) trait Wire: Copy {
    /// The run's type tag.
    const TAG: u8;
    /// Bytes per element.
    const WIDTH: usize;
    /// Writes the element's bytes into `out`, which is `WIDTH` long.
    fn put(self, out: &mut [u8]);
    /// The element, if serde handed over a primitive of this wire type.
    fn from_scalar(scalar: Scalar) -> Option<Self>;
}

/// One primitive as serde hands it to a serializer.
#[derive(Clone, Copy)]
pub(crate) enum Scalar {
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    I128(i128),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    U128(u128),
    F32(f32),
    F64(f64),
    Char(char),
}

/// `ty => tag, Scalar variant, |v| its canonical little-endian bytes`.
macro_rules! wire {
    ($($t:ty => $tag:ident, $variant:ident, |$v:ident| $bytes:expr;)*) => {$(
        impl Wire for $t {
            const TAG: u8 = tag::$tag;
            const WIDTH: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn put(self, out: &mut [u8]) {
                let $v = self;
                out.copy_from_slice(&$bytes);
            }
            #[inline(always)]
            fn from_scalar(scalar: Scalar) -> Option<$t> {
                match scalar {
                    Scalar::$variant(v) => Some(v),
                    _ => None,
                }
            }
        }
    )*};
}

wire! {
    i8 => I8, I8, |v| v.to_le_bytes();
    i16 => I16, I16, |v| v.to_le_bytes();
    i32 => I32, I32, |v| v.to_le_bytes();
    i64 => I64, I64, |v| v.to_le_bytes();
    i128 => I128, I128, |v| v.to_le_bytes();
    u8 => U8, U8, |v| v.to_le_bytes();
    u16 => U16, U16, |v| v.to_le_bytes();
    u32 => U32, U32, |v| v.to_le_bytes();
    u64 => U64, U64, |v| v.to_le_bytes();
    u128 => U128, U128, |v| v.to_le_bytes();
    f32 => F32, F32, |v| canonical_f32(v).to_le_bytes();
    f64 => F64, F64, |v| canonical_f64(v).to_le_bytes();
    bool => BOOL, Bool, |v| [u8::from(v)];
    char => CHAR, Char, |v| u32::from(v).to_le_bytes();
}

/// The wire type of a sequence's elements, when they are primitives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireKind {
    Bool,
    I8,
    I16,
    I32,
    I64,
    I128,
    U8,
    U16,
    U32,
    U64,
    U128,
    F32,
    F64,
    Char,
}

/// Whether `T` is `P` or `&P`. `P` has no lifetimes, so equal type ids mean
/// that `T` is exactly that type.
#[inline(always)]
fn is_or_ref<T: ?Sized, P: 'static>() -> bool {
    let id = typeid::of::<T>();
    id == TypeId::of::<P>() || id == TypeId::of::<&'static P>()
}

/// The wire type of `T` if `T` is a primitive or a reference to one. A
/// constant once monomorphized: the checks compile away.
#[inline(always)]
pub(crate) fn wire_of<T: ?Sized>() -> Option<WireKind> {
    // `usize` and `isize` are serialized as `u64` and `i64`.
    let kind = if is_or_ref::<T, f64>() {
        WireKind::F64
    } else if is_or_ref::<T, f32>() {
        WireKind::F32
    } else if is_or_ref::<T, i64>() || is_or_ref::<T, isize>() {
        WireKind::I64
    } else if is_or_ref::<T, u64>() || is_or_ref::<T, usize>() {
        WireKind::U64
    } else if is_or_ref::<T, i32>() {
        WireKind::I32
    } else if is_or_ref::<T, u32>() {
        WireKind::U32
    } else if is_or_ref::<T, u8>() {
        WireKind::U8
    } else if is_or_ref::<T, i8>() {
        WireKind::I8
    } else if is_or_ref::<T, i16>() {
        WireKind::I16
    } else if is_or_ref::<T, u16>() {
        WireKind::U16
    } else if is_or_ref::<T, bool>() {
        WireKind::Bool
    } else if is_or_ref::<T, char>() {
        WireKind::Char
    } else if is_or_ref::<T, i128>() {
        WireKind::I128
    } else if is_or_ref::<T, u128>() {
        WireKind::U128
    } else {
        return None;
    };
    Some(kind)
}

/// The primitive `value` serializes as, if it is one of wire type `W`.
#[inline(always)]
pub(crate) fn grab<W: Wire, T: Serialize + ?Sized>(value: &T) -> Option<W> {
    value.serialize(Grab).ok().and_then(W::from_scalar)
}

/// A serializer that accepts one primitive and hands it back.
struct Grab;

/// What [`Grab`] answers for anything but a primitive.
#[derive(Debug)]
struct NotScalar;

impl fmt::Display for NotScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a primitive")
    }
}

impl std::error::Error for NotScalar {}

impl ser::Error for NotScalar {
    fn custom<T: fmt::Display>(_msg: T) -> NotScalar {
        NotScalar
    }
}

macro_rules! grab_scalars {
    ($($method:ident($t:ty) => $variant:ident;)*) => {$(
        #[inline(always)]
        fn $method(self, v: $t) -> Result<Scalar, NotScalar> {
            Ok(Scalar::$variant(v))
        }
    )*};
}

impl Serializer for Grab {
    type Ok = Scalar;
    type Error = NotScalar;
    type SerializeSeq = Impossible<Scalar, NotScalar>;
    type SerializeTuple = Impossible<Scalar, NotScalar>;
    type SerializeTupleStruct = Impossible<Scalar, NotScalar>;
    type SerializeTupleVariant = Impossible<Scalar, NotScalar>;
    type SerializeMap = Impossible<Scalar, NotScalar>;
    type SerializeStruct = Impossible<Scalar, NotScalar>;
    type SerializeStructVariant = Impossible<Scalar, NotScalar>;

    fn is_human_readable(&self) -> bool {
        false
    }

    grab_scalars! {
        serialize_bool(bool) => Bool;
        serialize_i8(i8) => I8;
        serialize_i16(i16) => I16;
        serialize_i32(i32) => I32;
        serialize_i64(i64) => I64;
        serialize_i128(i128) => I128;
        serialize_u8(u8) => U8;
        serialize_u16(u16) => U16;
        serialize_u32(u32) => U32;
        serialize_u64(u64) => U64;
        serialize_u128(u128) => U128;
        serialize_f32(f32) => F32;
        serialize_f64(f64) => F64;
        serialize_char(char) => Char;
    }

    fn serialize_str(self, _: &str) -> Result<Scalar, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Scalar, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_none(self) -> Result<Scalar, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Scalar, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_unit(self) -> Result<Scalar, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Scalar, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<Scalar, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<Scalar, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Scalar, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, NotScalar> {
        Err(NotScalar)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, NotScalar> {
        Err(NotScalar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_types_are_recognised_with_or_without_a_reference() {
        assert_eq!(wire_of::<f64>(), Some(WireKind::F64));
        assert_eq!(wire_of::<&f64>(), Some(WireKind::F64));
        assert_eq!(wire_of::<&usize>(), Some(WireKind::U64));
        assert_eq!(wire_of::<isize>(), Some(WireKind::I64));
        assert_eq!(wire_of::<&'static char>(), Some(WireKind::Char));
        assert_eq!(wire_of::<&&f64>(), None);
        assert_eq!(wire_of::<String>(), None);
        assert_eq!(wire_of::<Option<f64>>(), None);
        assert_eq!(wire_of::<str>(), None);
    }

    #[test]
    fn grab_reads_primitives_and_refuses_the_rest() {
        assert_eq!(grab::<f64, _>(&&1.5f64), Some(1.5));
        assert_eq!(grab::<u64, _>(&7usize), Some(7));
        assert_eq!(grab::<u64, _>(&7u32), None);
        assert_eq!(grab::<u8, _>("x"), None);
        assert_eq!(grab::<bool, _>(&Some(true)), None);
    }
}
