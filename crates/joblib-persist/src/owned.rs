//! Owned loads of whole blocks straight into the vector the caller gets:
//! the `unsafe` code this takes, kept here.
//!
//! serde's `Deserialize` for `Vec<A>` allocates its vector itself (1 MiB at
//! first, doubling) and pushes the elements one at a time, so a format can
//! neither choose how the memory is allocated nor fill it in bulk. When the
//! type asked for *is* `Vec<A>` (or the seed is `PhantomData<Vec<A>>`, what
//! `next_element::<Vec<A>>()` and `next_value::<Vec<A>>()` pass, as derived
//! structs and ndarray's arrays do), the loader reads the block into a vector
//! of its own and hands that over: [`vec_elem`], [`seed_elem`], [`into_value`]
//! and [`into_seed_value`] check the types (by `TypeId`) and do the cast.
//!
//! [`zeroed`] allocates such a vector; on Linux a large one is advised for
//! transparent huge pages before its memory is first touched, which makes
//! faulting it in several times cheaper. [`bytes_mut`] views the elements
//! as the little-endian bytes the block holds, to read into.

use std::any::TypeId;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;

use serde::de::DeserializeSeed;

use crate::element::Element;
use crate::format::Dtype;

/// Vectors at least this large are advised for transparent huge pages
/// (numpy's threshold for the same advice).
pub(crate) const HUGE_PAGE_MIN: usize = 4 << 20;

/// Whether `T` is `U`. `U` has no lifetime parameters, so equal type ids
/// (which ignore `T`'s lifetimes) mean that `T` is exactly `U`.
fn is<T: ?Sized, U: ?Sized + 'static>() -> bool {
    typeid::of::<T>() == TypeId::of::<U>()
}

/// Calls `$check::<$t, A>` for each element type `A`, returning the
/// `Dtype` of the first that matches.
macro_rules! find_elem {
    ($t:ty, $check:ident) => {{
        if $check::<$t, f64>() {
            Some(Dtype::F64)
        } else if $check::<$t, f32>() {
            Some(Dtype::F32)
        } else if $check::<$t, i64>() {
            Some(Dtype::I64)
        } else if $check::<$t, u64>() {
            Some(Dtype::U64)
        } else if $check::<$t, i32>() {
            Some(Dtype::I32)
        } else if $check::<$t, u32>() {
            Some(Dtype::U32)
        } else if $check::<$t, i16>() {
            Some(Dtype::I16)
        } else if $check::<$t, u16>() {
            Some(Dtype::U16)
        } else if $check::<$t, i8>() {
            Some(Dtype::I8)
        } else if $check::<$t, u8>() {
            Some(Dtype::U8)
        } else {
            None
        }
    }};
}

fn is_vec<T, A: Element>() -> bool {
    is::<T, Vec<A>>()
}

fn is_vec_seed<S, A: Element>() -> bool {
    is::<S, PhantomData<Vec<A>>>()
}

/// The element type `A` if `T` is `Vec<A>`.
pub(crate) fn vec_elem<T>() -> Option<Dtype> {
    find_elem!(T, is_vec)
}

/// The element type `A` if the seed `S` is `PhantomData<Vec<A>>`.
pub(crate) fn seed_elem<S>() -> Option<Dtype> {
    find_elem!(S, is_vec_seed)
}

/// `vec` as a `T`, if `T` is `Vec<A>`; `vec` back otherwise.
pub(crate) fn into_value<T, A: Element>(vec: Vec<A>) -> Result<T, Vec<A>> {
    if !is_vec::<T, A>() || size_of::<T>() != size_of::<Vec<A>>() {
        return Err(vec);
    }
    let vec = ManuallyDrop::new(vec);
    // SAFETY: `T` is `Vec<A>` (checked just above), so this moves the
    // vector out as its own type; `ManuallyDrop` keeps the original from
    // being dropped as well.
    Ok(unsafe { std::mem::transmute_copy::<ManuallyDrop<Vec<A>>, T>(&vec) })
}

/// `vec` as the value of the seed `S`, if `S` is `PhantomData<Vec<A>>`;
/// `vec` back otherwise.
pub(crate) fn into_seed_value<'de, S: DeserializeSeed<'de>, A: Element>(
    vec: Vec<A>,
) -> Result<S::Value, Vec<A>> {
    if !is_vec_seed::<S, A>() || size_of::<S::Value>() != size_of::<Vec<A>>() {
        return Err(vec);
    }
    let vec = ManuallyDrop::new(vec);
    // SAFETY: `S` is `PhantomData<Vec<A>>` (checked just above), whose only
    // `DeserializeSeed` impl (serde's, for `PhantomData<T>`) has `Value = T`:
    // `S::Value` is `Vec<A>`, so this moves the vector out as its own type;
    // `ManuallyDrop` keeps the original from being dropped as well.
    Ok(unsafe { std::mem::transmute_copy::<ManuallyDrop<Vec<A>>, S::Value>(&vec) })
}

/// A vector of `count` zeros for a block to be read into.
///
/// `vec![0; n]` asks the allocator for zeroed memory, which for a large
/// vector is fresh pages that nothing has touched yet; on Linux they are
/// then advised for transparent huge pages, so the copy that fills them
/// faults them in 2 MiB at a time instead of 4 KiB.
pub(crate) fn zeroed<A: Element>(count: usize) -> Vec<A> {
    let v = vec![A::ZERO; count];
    advise_huge_pages(&v);
    v
}

/// Like [`zeroed`], but `None` instead of aborting when the memory cannot be
/// had (a length that a hostile or damaged file claims).
pub(crate) fn try_zeroed<A: Element>(count: usize) -> Option<Vec<A>> {
    if count == 0 {
        return Some(Vec::new());
    }
    let layout = std::alloc::Layout::array::<A>(count).ok()?;
    // SAFETY: the layout has a non-zero size (`count > 0` and `A` is a
    // number of at least one byte).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<A>();
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of
    // `count` `A`s, which is the capacity given; all `count` elements are
    // initialized, to zero bytes, a valid value of every `Element`.
    let v = unsafe { Vec::from_raw_parts(ptr, count, count) };
    advise_huge_pages(&v);
    Some(v)
}

/// Advises the whole 2 MiB pages inside `v` for transparent huge pages, if
/// `v` is large. Only a hint: errors (a kernel without THP) are ignored,
/// and it does nothing where the kernel's THP mode is `never`.
#[cfg(target_os = "linux")]
fn advise_huge_pages<A>(v: &[A]) {
    const HUGE: usize = 2 << 20;
    let bytes = size_of_val(v);
    if bytes < HUGE_PAGE_MIN {
        return;
    }
    let start = v.as_ptr() as usize;
    let first = start.next_multiple_of(HUGE);
    let end = (start + bytes) / HUGE * HUGE;
    if end > first {
        // SAFETY: `first..end` lies inside `v`'s allocation, which we own.
        // MADV_HUGEPAGE only changes how the kernel backs that range with
        // physical pages: it does not change the memory's contents, its
        // protection, or whether it is mapped.
        unsafe {
            libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages<A>(_v: &[A]) {}

/// The elements of `v` as bytes (in native order).
pub(crate) fn bytes_mut<A: Element>(v: &mut [A]) -> &mut [u8] {
    // SAFETY: `A` is one of the primitive numbers (`Element` is sealed):
    // it has no padding and every bit pattern is a valid value, so its
    // memory may be read and written as bytes; `u8` needs no alignment. The
    // byte slice covers exactly `v`'s memory and borrows `v` mutably for as
    // long as it lives.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), size_of_val(v)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_recognized() {
        assert_eq!(vec_elem::<Vec<f64>>(), Some(Dtype::F64));
        assert_eq!(vec_elem::<Vec<u8>>(), Some(Dtype::U8));
        assert_eq!(vec_elem::<Vec<i16>>(), Some(Dtype::I16));
        assert_eq!(vec_elem::<Vec<usize>>(), None);
        assert_eq!(vec_elem::<Vec<Vec<f64>>>(), None);
        assert_eq!(vec_elem::<f64>(), None);
        assert_eq!(vec_elem::<&'static [f64]>(), None);
        assert_eq!(seed_elem::<PhantomData<Vec<f32>>>(), Some(Dtype::F32));
        assert_eq!(seed_elem::<PhantomData<Vec<String>>>(), None);
        assert_eq!(seed_elem::<Vec<f32>>(), None);
        assert_eq!(seed_elem::<PhantomData<f32>>(), None);
    }

    #[test]
    fn casts_only_to_the_same_type() {
        let v = vec![1.5f64, 2.5];
        let back: Vec<f64> = into_value::<Vec<f64>, f64>(v).unwrap();
        assert_eq!(back, [1.5, 2.5]);
        let v = into_value::<Vec<f32>, f64>(back).unwrap_err();
        let s: Vec<f64> = into_seed_value::<PhantomData<Vec<f64>>, f64>(v).unwrap();
        assert_eq!(s, [1.5, 2.5]);
        assert!(into_seed_value::<PhantomData<Vec<i64>>, f64>(s).is_err());
    }

    #[test]
    fn impossible_sizes_are_refused_not_aborted() {
        assert!(try_zeroed::<f64>(usize::MAX / 4).is_none());
        assert!(try_zeroed::<u8>(1 << 62).is_none());
        assert_eq!(try_zeroed::<u16>(5).unwrap(), [0; 5]);
    }

    #[test]
    fn zeroed_vectors_are_zero_and_writable_as_bytes() {
        for count in [0, 3, (HUGE_PAGE_MIN / 8) * 3 + 5] {
            let mut v = zeroed::<f64>(count);
            assert_eq!(v.len(), count);
            assert!(v.iter().all(|&x| x == 0.0));
            let b = bytes_mut(&mut v);
            assert_eq!(b.len(), count * 8);
            if count > 0 {
                b[..8].copy_from_slice(&2.0f64.to_ne_bytes());
                assert_eq!(v[0], 2.0);
            }
        }
    }
}
