//! ndarray arrays written in bulk (feature `ndarray`): the serializer's
//! `unsafe` code, kept here.
//!
//! ndarray's `Serialize` hands the serializer one element at a time from
//! its element iterator, which costs a few nanoseconds an element however
//! fast the serializer is: most of a large array's dump. So where a value
//! enters the serializer ([`Ser::value`](crate::ser::Ser::value): the top
//! level, a field, a map value, a sequence element, the inside of an
//! `Option` or a newtype), an array of ndarray 0.17 with a primitive element
//! type (or a reference to one) is recognised by its type and written here:
//! the same `Array` struct, with the `data` elements handed to the run in
//! slices of bytes ([`SeqSer::prims`]) instead of one by one. The file is
//! the same to the byte, blocks, chunks and all; `tests/bulk_arrays.rs`
//! holds the two paths to that.
//!
//! Recognising the type: [`may_be_array`] looks at the type's name, a
//! constant the optimizer folds, so other types pay nothing; [`write`] then
//! compares the type id with those of the four array storages (owned, view,
//! shared, copy-on-write, each by value or by reference) for every element
//! type and dimension, and casts on a match. A type id ignores lifetimes,
//! which is why a match is read back with the lifetimes of the borrow
//! (every one of these types is covariant in its lifetimes).

use std::any::TypeId;

use ndarray::{
    ArcArray, Array, ArrayView, CowArray, Dimension, Ix0, Ix1, Ix2, Ix3, Ix4, Ix5, Ix6, IxDyn,
};
use serde::Serialize;
use serde::ser::{SerializeStruct as _, Serializer as _};

use crate::error::Inner;
use crate::format::Dtype;
use crate::ser::{MapSer, SeqSer, Ser};
use crate::sink::Sink;

type Result<T> = std::result::Result<T, Inner>;

/// The version ndarray writes in the field `v` of every array.
const ARRAY_FORMAT_VERSION: u8 = 1;

/// Bytes of a non-contiguous array gathered before they join the run.
const STAGE: usize = 64 << 10;

/// An element type written in bulk, with the block type serde's path gives
/// it (`usize` and `isize` are written as `u64` and `i64`).
///
/// Only primitive numbers implement it: no padding, so their memory may be
/// read as bytes ([`le_bytes`] relies on this).
trait Bulk: Copy + Serialize + 'static {
    const DTYPE: Dtype;
    fn put_le(self, out: &mut Vec<u8>);
}

macro_rules! bulk {
    ($($t:ty => $d:ident),* $(,)?) => {$(
        impl Bulk for $t {
            const DTYPE: Dtype = Dtype::$d;
            #[inline(always)]
            fn put_le(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}

bulk!(f64 => F64, f32 => F32, i64 => I64, u64 => U64, i32 => I32, u32 => U32,
      i16 => I16, u16 => U16, i8 => I8, u8 => U8);
// Eight bytes like the `u64` and `i64` they are written as only here.
#[cfg(target_pointer_width = "64")]
bulk!(usize => U64, isize => I64);

/// Whether `T` may be an ndarray array, judged by its name. Free for every
/// other type once optimized: the name is a constant.
#[inline(always)]
pub(crate) fn may_be_array<T: ?Sized>() -> bool {
    let name = std::any::type_name::<T>();
    name.starts_with("ndarray::ArrayBase<") || name.starts_with("&ndarray::ArrayBase<")
}

/// Writes `value` in bulk if it is a supported array or a reference to one;
/// `None` if it is not, and nothing was written.
pub(crate) fn write<T: ?Sized, W: Sink>(ser: &mut Ser<'_, W>, value: &T) -> Option<Result<()>> {
    macro_rules! each_element {
        ($($a:ty),*) => {$(
            if let Some(done) = each_dim::<$a, T, W>(ser, value) {
                return Some(done);
            }
        )*};
    }
    // Most used first: the search stops at the first match.
    each_element!(f64, f32, i64, i32, u8, u32, u64, i16, u16, i8);
    #[cfg(target_pointer_width = "64")]
    each_element!(usize, isize);
    None
}

fn each_dim<A: Bulk, T: ?Sized, W: Sink>(ser: &mut Ser<'_, W>, value: &T) -> Option<Result<()>> {
    macro_rules! each {
        ($($d:ty),*) => {$(
            if let Some(view) = view_of::<A, $d, T>(value) {
                return Some(write_view(ser, view));
            }
        )*};
    }
    each!(Ix1, Ix2, Ix3, IxDyn, Ix0, Ix4, Ix5, Ix6);
    None
}

/// `value` viewed as an array of `A`s of dimension `D`, if it is one (of
/// any of the four storages) or a reference to one.
#[inline(always)]
fn view_of<A: Bulk, D: Dimension + 'static, T: ?Sized>(value: &T) -> Option<ArrayView<'_, A, D>> {
    let id = typeid::of::<T>();
    let ptr = std::ptr::from_ref(value).cast::<()>();
    // Each arm: the type id of a supported type (lifetimes 'static), and
    // the same type with the lifetimes of the borrow of `value`.
    macro_rules! view_if {
        ($($id_of:ty => $ty:ty),*) => {$(
            if id == TypeId::of::<$id_of>() {
                // SAFETY: `T`'s id is that of `$id_of`, so `T` is that type
                // up to lifetimes (and sized, as that type is): `ptr`, from
                // a live `&T`, addresses one for the borrow of `value`. The
                // cast gives it the lifetimes of that borrow, which the
                // value's own outlive (`T: '_`); all these types are
                // covariant in their lifetimes, so shortening them is sound.
                return Some(unsafe { (*ptr.cast::<$ty>()).view() });
            }
        )*};
    }
    view_if!(
        Array<A, D> => Array<A, D>,
        &Array<A, D> => &Array<A, D>,
        ArrayView<'static, A, D> => ArrayView<'_, A, D>,
        &ArrayView<'static, A, D> => &ArrayView<'_, A, D>,
        ArcArray<A, D> => ArcArray<A, D>,
        &ArcArray<A, D> => &ArcArray<A, D>,
        CowArray<'static, A, D> => CowArray<'_, A, D>,
        &CowArray<'static, A, D> => &CowArray<'_, A, D>
    );
    None
}

/// Writes an array as ndarray's `Serialize` does, through the same struct
/// and field code, with the `data` elements in bulk.
fn write_view<A: Bulk, D: Dimension + Serialize, W: Sink>(
    ser: &mut Ser<'_, W>,
    view: ArrayView<'_, A, D>,
) -> Result<()> {
    #[cfg(test)]
    tests::BULK_WRITES.with(|n| n.set(n.get() + 1));
    let mut fields: MapSer<'_, '_, W> = ser.serialize_struct("Array", 3)?;
    fields.field("v", &ARRAY_FORMAT_VERSION)?;
    fields.field("dim", &view.raw_dim())?;
    fields.field_with("data", |ser| {
        let mut seq = ser.serialize_seq(Some(view.len()))?;
        push_elements(&mut seq, &view)?;
        seq.finish()
    })?;
    fields.end()
}

/// Hands the elements to the run in logical order: a standard-layout array
/// straight from its memory, any other a row at a time when its rows are
/// contiguous, or through a staging buffer.
fn push_elements<A: Bulk, D: Dimension, W: Sink>(
    seq: &mut SeqSer<'_, '_, W>,
    view: &ArrayView<'_, A, D>,
) -> Result<()> {
    if let Some(bytes) = view.as_slice().and_then(le_bytes) {
        return seq.prims(A::DTYPE, bytes);
    }
    let mut stage = Vec::new();
    for row in view.rows() {
        if let Some(bytes) = row.as_slice().and_then(le_bytes) {
            seq.prims(A::DTYPE, &stage)?;
            stage.clear();
            seq.prims(A::DTYPE, bytes)?;
            continue;
        }
        for &x in row {
            x.put_le(&mut stage);
            if stage.len() >= STAGE {
                seq.prims(A::DTYPE, &stage)?;
                stage.clear();
            }
        }
    }
    seq.prims(A::DTYPE, &stage)
}

/// The elements' memory as the little-endian bytes a block holds; `None`
/// on a big-endian machine, where they must be converted one by one.
fn le_bytes<A: Bulk>(elements: &[A]) -> Option<&[u8]> {
    if cfg!(target_endian = "big") {
        return None;
    }
    // SAFETY: `A` is a primitive number (only those implement `Bulk`): no
    // padding, so all of its memory is initialized bytes; `u8` needs no
    // alignment. The byte slice covers exactly `elements`' memory and
    // borrows it for as long as it lives.
    Some(unsafe {
        std::slice::from_raw_parts(elements.as_ptr().cast::<u8>(), size_of_val(elements))
    })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::BTreeMap;

    use super::*;

    thread_local! {
        /// Arrays this thread wrote through the bulk path.
        pub(super) static BULK_WRITES: Cell<usize> = const { Cell::new(0) };
    }

    /// How many arrays a dump of `value` wrote in bulk.
    fn bulk_writes<T: Serialize + ?Sized>(value: &T) -> usize {
        let before = BULK_WRITES.with(Cell::get);
        crate::dump_to_writer(value, Vec::new()).unwrap();
        BULK_WRITES.with(Cell::get) - before
    }

    #[derive(Serialize)]
    struct Newtype(Array<f32, Ix1>);

    #[derive(Serialize)]
    enum Variant {
        One(Array<u16, Ix2>),
        Many(Array<u16, Ix2>, Array<i8, Ix1>),
        Named { a: Array<i8, Ix1> },
    }

    #[test]
    fn arrays_are_found_wherever_a_value_enters() {
        let a = Array::<f64, Ix2>::zeros((3, 4));
        let b = Array::<f32, Ix1>::ones(5);
        let c = Array::<u16, Ix2>::zeros((2, 2));
        let d = Array::<i8, Ix1>::zeros(9);
        assert_eq!(bulk_writes(&a), 1);
        assert_eq!(bulk_writes(&(&a, 1u8, b.view())), 2);
        assert_eq!(bulk_writes(&vec![a.clone(), a.clone()]), 2);
        assert_eq!(bulk_writes(&[1.0f64, 2.0][..]), 0);
        assert_eq!(bulk_writes(&Some(&a)), 1);
        assert_eq!(bulk_writes(&Some(Some(b.clone()))), 1);
        assert_eq!(bulk_writes(&Newtype(b.clone())), 1);
        assert_eq!(bulk_writes(&vec![Newtype(b.clone())]), 1);
        assert_eq!(bulk_writes(&Variant::One(c.clone())), 1);
        assert_eq!(bulk_writes(&Variant::Many(c.clone(), d.clone())), 2);
        assert_eq!(bulk_writes(&Variant::Named { a: d.clone() }), 1);
        let map: BTreeMap<&str, Array<f64, Ix2>> = [("x", a.clone()), ("y", a.clone())].into();
        assert_eq!(bulk_writes(&map), 2);
        // Element types the element path writes otherwise stay on it.
        assert_eq!(bulk_writes(&Array::<bool, Ix1>::from_elem(3, true)), 0);
    }

    fn found<T>(value: &T) -> bool {
        let mut writer =
            crate::writer::BlockWriter::new(crate::sink::Direct(Vec::new()), 1 << 20, None, None);
        let mut ser = Ser::new(&mut writer, 256);
        write(&mut ser, value).is_some()
    }

    #[test]
    fn array_types_are_recognised_by_name_and_id() {
        let a = Array::<f64, Ix2>::zeros((2, 3));
        assert!(may_be_array::<Array<f64, Ix2>>());
        assert!(may_be_array::<&ArrayView<'_, f32, IxDyn>>());
        assert!(!may_be_array::<Vec<f64>>());
        assert!(!may_be_array::<str>());
        assert!(found(&a));
        assert!(found(&&a));
        assert!(found(&a.view()));
        assert!(found(&a.t()));
        assert!(found(&a.to_shared()));
        assert!(found(&CowArray::from(a.view())));
        assert!(found(&Array::<usize, Ix0>::zeros(())));
        assert!(found(&Array::<u8, IxDyn>::zeros(vec![1, 2, 3, 4, 5, 6, 7])));
        // Not supported: they go through `Serialize`.
        assert!(!found(&&&a));
        assert!(!found(&Array::<bool, Ix1>::from_elem(3, true)));
        assert!(!found(&Array::<i128, Ix1>::zeros(3)));
        assert!(!found(&vec![1.0f64]));
    }
}
