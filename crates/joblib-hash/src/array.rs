//! `ndarray` arrays hashed in bulk (feature `ndarray`): the only `unsafe`
//! code in this crate.
//!
//! ndarray's `Serialize` hands its elements to the serializer one at a time
//! from its own loop, through its element iterator, which costs about 1 ns
//! an element whatever the serializer does: a 10 MB argument would take
//! 1.7 ms to hash, against 0.25 ms for the hash function over its bytes.
//! So where a value enters the serializer (the value hashed, a field, a map
//! entry, a sequence element, the inside of an `Option` or a newtype), its
//! type is checked: if it is one of ndarray's array types (or a reference to
//! one) with a primitive element type, the array is written here, its
//! contiguous memory a run chunk at a time, in exactly the bytes ndarray's
//! own `Serialize` produces through the ordinary path. The golden digests
//! and the tests in `tests/arrays.rs` hold the two paths to that.
//!
//! Recognising the type: [`may_be_array`] looks at the type's name, a
//! constant the optimizer folds, so that other types pay nothing; then
//! [`write`] compares the type id with those of the supported array types
//! and calls the writer registered for the one it is. A type id ignores
//! lifetimes, which is why the writers may reborrow the value with shorter
//! ones (all these types are covariant in their lifetimes).
//!
//! An array of another ndarray version, element type or storage (such as
//! `ArrayViewMut`) goes through its `Serialize` as before: same digest,
//! element by element.

use std::any::TypeId;

use ndarray::{
    ArcArray, Array, ArrayView, CowArray, Dimension, Ix0, Ix1, Ix2, Ix3, Ix4, Ix5, Ix6, IxDyn,
};
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};

use crate::Error;
use crate::bulk::Wire;
use crate::encoder::Encoder;
use crate::ser::Ser;

/// The format version ndarray writes in the field `v` of every array.
const ARRAY_FORMAT_VERSION: u8 = 1;

/// Writes the array behind a type-erased pointer.
///
/// # Safety
///
/// The pointer must come from a reference to the type the writer was
/// registered for (up to lifetimes), valid for the duration of the call.
type WriteFn = unsafe fn(&mut Encoder, *const ()) -> Result<(), Error>;

/// An array element type hashed in bulk, with the primitive it is written as.
trait Element: Serialize + Copy + 'static {
    type Wire: Wire;
    fn wire(self) -> Self::Wire;
}

macro_rules! elements {
    ($($t:ty => $w:ty),* $(,)?) => {$(
        impl Element for $t {
            type Wire = $w;
            #[inline(always)]
            fn wire(self) -> $w {
                // Lossless: `usize` and `isize` are at most 64 bits wide,
                // and serde writes them as `u64` and `i64`.
                self as $w
            }
        }
    )*};
}

elements!(
    f64 => f64, f32 => f32, i64 => i64, u64 => u64, i32 => i32, u32 => u32,
    i16 => i16, u16 => u16, i8 => i8, u8 => u8, usize => u64, isize => i64,
    bool => bool,
);

/// Whether `T` may be an ndarray array, judged by its name. Free for every
/// other type once optimized: the name is a constant.
#[inline(always)]
pub(crate) fn may_be_array<T: ?Sized>() -> bool {
    let name = std::any::type_name::<T>();
    name.starts_with("ndarray::ArrayBase<") || name.starts_with("&ndarray::ArrayBase<")
}

/// Writes `value` in bulk if it is a supported array or a reference to one;
/// `None` if it is not, and nothing was written.
pub(crate) fn write<T: ?Sized>(enc: &mut Encoder, value: &T) -> Option<Result<(), Error>> {
    let writer = find(typeid::of::<T>())?;
    // SAFETY: `find` returned the writer registered for `T`'s type id, which
    // equals that of the array type (or reference to one) the writer reads
    // once lifetimes are erased; `value` is a live reference to a `T`, and
    // `T` is sized (it is that type), so the thin pointer addresses it.
    Some(unsafe { writer(enc, std::ptr::from_ref(value).cast::<()>()) })
}

/// The writer for the array type with type id `id`, if it is supported.
fn find(id: TypeId) -> Option<WriteFn> {
    macro_rules! each_element {
        ($($t:ty),*) => {$(
            if let Some(writer) = find_dim::<$t>(id) {
                return Some(writer);
            }
        )*};
    }
    // Most used first: the search stops at the first match.
    each_element!(
        f64, f32, i64, usize, i32, u8, u32, u64, bool, i16, u16, i8, isize
    );
    None
}

fn find_dim<A: Element>(id: TypeId) -> Option<WriteFn> {
    find_storage::<A, Ix1>(id)
        .or_else(|| find_storage::<A, Ix2>(id))
        .or_else(|| find_storage::<A, Ix3>(id))
        .or_else(|| find_storage::<A, IxDyn>(id))
        .or_else(|| find_storage::<A, Ix0>(id))
        .or_else(|| find_storage::<A, Ix4>(id))
        .or_else(|| find_storage::<A, Ix5>(id))
        .or_else(|| find_storage::<A, Ix6>(id))
}

/// Declares, for each storage, the writers of an array and of a reference to
/// one, and the search over their type ids.
macro_rules! storages {
    ($($array:ident, $by_ref:ident: $static_ty:ty, $ty:ty;)*) => {
        $(
            /// # Safety
            ///
            /// As [`WriteFn`].
            unsafe fn $array<A: Element, D: Dimension + Serialize>(
                enc: &mut Encoder,
                ptr: *const (),
            ) -> Result<(), Error> {
                // SAFETY: the caller passes a pointer to this array type.
                let array = unsafe { &*ptr.cast::<$ty>() };
                write_view(enc, array.view())
            }

            /// # Safety
            ///
            /// As [`WriteFn`].
            unsafe fn $by_ref<A: Element, D: Dimension + Serialize>(
                enc: &mut Encoder,
                ptr: *const (),
            ) -> Result<(), Error> {
                // SAFETY: the caller passes a pointer to a reference to this
                // array type.
                let array = unsafe { *ptr.cast::<&$ty>() };
                write_view(enc, array.view())
            }
        )*

        fn find_storage<A: Element, D: Dimension + Serialize + 'static>(
            id: TypeId,
        ) -> Option<WriteFn> {
            $(
                if id == TypeId::of::<&'static $static_ty>() {
                    return Some($by_ref::<A, D>);
                }
                if id == TypeId::of::<$static_ty>() {
                    return Some($array::<A, D>);
                }
            )*
            None
        }
    };
}

storages! {
    owned, owned_ref: Array<A, D>, Array<A, D>;
    view, view_ref: ArrayView<'static, A, D>, ArrayView<'_, A, D>;
    arc, arc_ref: ArcArray<A, D>, ArcArray<A, D>;
    cow, cow_ref: CowArray<'static, A, D>, CowArray<'_, A, D>;
}

/// Writes an array as ndarray's `Serialize` does (the struct `Array` with
/// the fields `v`, `dim` and `data`), with the elements in bulk: a
/// contiguous array straight from its memory, any other in logical order
/// through ndarray's iterator.
fn write_view<A: Element, D: Dimension + Serialize>(
    enc: &mut Encoder,
    view: ArrayView<'_, A, D>,
) -> Result<(), Error> {
    let mut fields = Ser::new(enc).serialize_struct("Array", 3)?;
    fields.serialize_field("v", &ARRAY_FORMAT_VERSION)?;
    fields.serialize_field("dim", &view.raw_dim())?;
    fields.field_with("data", |seq| match view.as_slice() {
        Some(elements) => seq.push_all(elements.iter().copied(), |x| Some(x.wire())),
        None => seq.push_all(view.iter().copied(), |x| Some(x.wire())),
    })?;
    fields.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_types_are_recognised_by_name_and_id() {
        assert!(may_be_array::<Array<f64, Ix2>>());
        assert!(may_be_array::<&ArrayView<'_, f32, IxDyn>>());
        assert!(!may_be_array::<Vec<f64>>());
        assert!(!may_be_array::<str>());
        assert!(find(typeid::of::<&Array<f64, Ix1>>()).is_some());
        assert!(find(typeid::of::<ArrayView<'_, usize, Ix6>>()).is_some());
        assert!(find(typeid::of::<CowArray<'_, bool, Ix0>>()).is_some());
        assert!(find(typeid::of::<&ArcArray<isize, IxDyn>>()).is_some());
        // Not supported: they go through `Serialize`.
        assert!(find(typeid::of::<&&Array<f64, Ix1>>()).is_none());
        assert!(find(typeid::of::<Array<String, Ix1>>()).is_none());
        assert!(find(typeid::of::<Array<i128, Ix1>>()).is_none());
    }
}
