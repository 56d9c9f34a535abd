//! The owning path of `load_python`: array elements move from the loaded
//! tree into the value the caller gets, instead of being copied.
//!
//! The serde deserializer sees the tree through shared references, so it
//! cannot move anything out of it. Before deserializing a tree it owns, the
//! loader moves the elements of every numeric array into a table here,
//! keyed by the address of the array in the tree (which stays put while the
//! tree is borrowed), and leaves an empty vector of the same element type
//! in their place. The deserializer takes them back by that key
//! ([`take_or_map`]) and hands the vector itself to the `Vec<A>` being
//! deserialized (an ndarray array's data), or reads them and [`put`]s them
//! back. Arrays that `load_python_mmap` left in the mapped file are read
//! from it here when a field wants them in memory (an `MmapArray` field
//! views them instead). The table lives in a thread-local because serde
//! gives a deserializer no other way to carry state into nested values; a
//! guard empties it when the load ends.

use std::cell::RefCell;
use std::collections::HashMap;

use super::numpy::{Raw, count, read_data};
use super::value::{ArrayData, PyArray, PyValue};

thread_local! {
    /// Elements moved out of the tree being deserialized on this thread.
    static HELD: RefCell<Option<HashMap<usize, ArrayData>>> = const { RefCell::new(None) };
}

/// The key of an array: its address in the tree.
fn key(a: &PyArray) -> usize {
    std::ptr::from_ref(a).addr()
}

/// Restores the previous table (normally none) when a load ends, even by
/// panic, so no element outlives its tree in the table.
pub(crate) struct Holding(Option<HashMap<usize, ArrayData>>);

impl Drop for Holding {
    fn drop(&mut self) {
        let prev = self.0.take();
        HELD.with(|h| *h.borrow_mut() = prev);
    }
}

/// Moves the elements of the numeric arrays of `tree` into the table. The
/// tree must not move or change until the returned guard is dropped.
pub(crate) fn hold(tree: &mut PyValue) -> Holding {
    let mut table = HashMap::new();
    // A heap stack, not recursion: trees nest up to 256 deep per pickle,
    // and object arrays hold pickles of their own.
    let mut stack = vec![tree];
    while let Some(v) = stack.pop() {
        match v {
            PyValue::List(items)
            | PyValue::Tuple(items)
            | PyValue::Set(items)
            | PyValue::FrozenSet(items) => stack.extend(items.iter_mut()),
            PyValue::Dict(pairs) => {
                for (k, v) in pairs.iter_mut() {
                    stack.push(k);
                    stack.push(v);
                }
            }
            PyValue::Object { args, state, .. } => {
                stack.push(args);
                stack.extend(state.as_deref_mut());
            }
            PyValue::Array(a) => {
                let k = key(a);
                match (movable(&a.data), &mut a.data) {
                    (Some(empty), data) => {
                        table.insert(k, std::mem::replace(data, empty));
                    }
                    (None, ArrayData::Object(items)) => stack.extend(items.iter_mut()),
                    (None, _) => {}
                }
            }
            _ => {}
        }
    }
    Holding(HELD.with(|h| h.borrow_mut().replace(table)))
}

/// An empty vector of the element type of `data`, if `data` is a numeric
/// array worth moving (one the owning hand-over can take).
fn movable(data: &ArrayData) -> Option<ArrayData> {
    if data.is_empty() {
        return None;
    }
    Some(match data {
        ArrayData::I8(_) => ArrayData::I8(Vec::new()),
        ArrayData::I16(_) => ArrayData::I16(Vec::new()),
        ArrayData::I32(_) => ArrayData::I32(Vec::new()),
        ArrayData::I64(_) => ArrayData::I64(Vec::new()),
        ArrayData::U8(_) => ArrayData::U8(Vec::new()),
        ArrayData::U16(_) => ArrayData::U16(Vec::new()),
        ArrayData::U32(_) => ArrayData::U32(Vec::new()),
        ArrayData::U64(_) => ArrayData::U64(Vec::new()),
        ArrayData::F32(_) => ArrayData::F32(Vec::new()),
        ArrayData::F64(_) => ArrayData::F64(Vec::new()),
        _ => return None,
    })
}

/// The elements of `a` as a value of their own, if they are not in the
/// tree: moved into the table (they are then no longer there: [`put`] them
/// back if they are only read), or left in the mapped file by
/// `load_python_mmap` (read from it now). `None`: they are `a.data`.
pub(crate) fn take_or_map(a: &PyArray) -> Result<Option<ArrayData>, String> {
    if let Some(data) = HELD.with(|h| h.borrow_mut().as_mut().and_then(|t| t.remove(&key(a)))) {
        return Ok(Some(data));
    }
    match a.mapped {
        Some(offset) => from_mapping(a, offset).map(Some),
        None => Ok(None),
    }
}

/// Reads the elements of `a` from the mapping of the load in progress.
fn from_mapping(a: &PyArray, offset: u64) -> Result<ArrayData, String> {
    let map = crate::mmap::current_mapping()
        .ok_or("an array left in a mapped file is read after its load ended")?;
    let n = count(&a.shape, offset).map_err(|e| e.to_string())?;
    let bytes = usize::try_from(offset)
        .ok()
        .zip(a.data_bytes().and_then(|b| usize::try_from(b).ok()))
        .and_then(|(start, len)| map.bytes().get(start..start.checked_add(len)?))
        .ok_or("an array left in a mapped file lies outside it")?;
    read_data(&a.dtype, n, Raw::Slice(bytes), offset).map_err(|e| e.to_string())
}

/// Puts back the elements of `a` taken by [`take_or_map`].
pub(crate) fn put(a: &PyArray, data: ArrayData) {
    HELD.with(|h| {
        if let Some(t) = h.borrow_mut().as_mut() {
            t.insert(key(a), data);
        }
    });
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use ndarray::{Array1, Array2};
    use serde::Deserialize;

    use super::super::de::from_owned_value;
    use super::*;
    use crate::python::value::PyDtype;

    fn f64_array(shape: Vec<usize>, data: Vec<f64>) -> PyValue {
        let dtype = PyDtype::from_typestr("f8", 0).unwrap();
        PyValue::Array(PyArray::new(dtype, shape, ArrayData::F64(data)))
    }

    #[test]
    fn the_vector_read_is_the_vector_the_value_keeps() {
        let data: Vec<f64> = (0..600).map(f64::from).collect();
        let ptr = data.as_ptr();
        let tree = PyValue::Dict(vec![(
            PyValue::Str("w".into()),
            f64_array(vec![20, 30], data),
        )]);
        #[derive(Deserialize)]
        struct M {
            w: Array2<f64>,
        }
        let m: M = from_owned_value(tree, Path::new("t")).unwrap();
        assert_eq!(m.w[[19, 29]], 599.0);
        assert_eq!(m.w.as_ptr(), ptr, "moved, not copied");
        // The table is emptied when the load ends.
        assert!(HELD.with(|h| h.borrow().is_none()));
    }

    #[test]
    fn elements_read_one_by_one_come_from_the_table() {
        // An untagged enum reads the elements one by one into a buffer
        // (not a `Vec` seed), then tries each variant on it.
        #[derive(Deserialize, Debug, PartialEq)]
        #[serde(untagged)]
        enum E {
            Ints(Array1<i64>),
            Double(Array1<f64>),
        }
        let tree = PyValue::List(vec![
            f64_array(vec![3], vec![1.0, 2.0, 3.0]),
            f64_array(vec![2], vec![4.0, 5.0]),
        ]);
        let v: Vec<E> = from_owned_value(tree, Path::new("t")).unwrap();
        assert_eq!(
            v,
            [
                E::Double(Array1::from(vec![1.0, 2.0, 3.0])),
                E::Double(Array1::from(vec![4.0, 5.0]))
            ]
        );
        // A mismatch names the element types, with the elements held.
        let tree = f64_array(vec![2], vec![4.0, 5.0]);
        let err = from_owned_value::<Array1<f32>>(tree, Path::new("t")).unwrap_err();
        assert!(err.to_string().contains("<f8 (f64)"), "{err}");
    }
}
