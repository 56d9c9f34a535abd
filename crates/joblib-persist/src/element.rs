//! [`Element`]: the primitive types an out-of-line block can hold.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::format::Dtype;

mod sealed {
    /// Implemented only for the primitive number types below: plain old
    /// data with no padding, for which every bit pattern is a valid value.
    /// The unsafe casts in `view.rs` and `owned.rs` rely on this.
    pub trait Plain {
        /// Zero, whose bytes are all zero.
        const ZERO: Self;
    }
}

/// A primitive number type stored in blocks: `u8`, `i8`, `u16`, `i16`,
/// `u32`, `i32`, `u64`, `i64`, `f32`, `f64`. Sealed.
pub trait Element:
    sealed::Plain + Copy + Send + Sync + 'static + Serialize + DeserializeOwned
{
    /// The block element type of `Self`.
    const DTYPE: Dtype;
}

macro_rules! element {
    ($($t:ty => $d:ident),*) => {$(
        impl sealed::Plain for $t {
            const ZERO: Self = 0 as $t;
        }
        impl Element for $t {
            const DTYPE: Dtype = Dtype::$d;
        }
    )*};
}

element!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32,
         u64 => U64, i64 => I64, f32 => F32, f64 => F64);
