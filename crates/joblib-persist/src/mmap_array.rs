//! [`MmapArray`]: an ndarray array that is a view into a mapped file when
//! loaded by [`load_mmap`](crate::load_mmap), and owned otherwise.

use std::fmt;
use std::marker::PhantomData;

use ndarray::{Array, ArrayView, ArrayViewMut, Dimension};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Serialize, Serializer};

use crate::de::MMAP_DATA;
use crate::element::Element;
use crate::format::Dtype;
use crate::mmap::current_mapping;
use crate::view::{Mapping, Region};

/// An n-dimensional array that [`load_mmap`](crate::load_mmap) maps instead
/// of copying.
///
/// Use it as a field type where you would use `Array<A, D>`: it serializes
/// exactly like one (so a file dumped from a struct with `Array2<f64>` loads
/// into the same struct with `MmapArray<f64, Ix2>`, and the reverse). Loaded
/// by `load_mmap` from an uncompressed file it borrows the mapped block;
/// loaded any other way (by [`load`](crate::load), from a compressed file,
/// or through another serde format) it owns an `Array`.
///
/// A `Deref` to `ArrayView` is not possible (the view is a value, not a
/// reference), so ask for [`view`](Self::view) or [`view_mut`](Self::view_mut).
pub struct MmapArray<A: Element, D: Dimension> {
    repr: Repr<A, D>,
}

enum Repr<A: Element, D: Dimension> {
    Mapped { region: Region<A>, dim: D },
    Owned(Array<A, D>),
}

impl<A: Element, D: Dimension> MmapArray<A, D> {
    /// A read-only view of the elements.
    pub fn view(&self) -> ArrayView<'_, A, D> {
        match &self.repr {
            Repr::Owned(a) => a.view(),
            // `build` checked this shape against this region.
            Repr::Mapped { region, dim } => ArrayView::from_shape(dim.clone(), region.as_slice())
                .unwrap_or_else(|e| panic!("a mapped array's shape was checked when loaded: {e}")),
        }
    }

    /// A mutable view; `None` for an array mapped with
    /// [`MmapMode::ReadOnly`](crate::MmapMode::ReadOnly).
    pub fn view_mut(&mut self) -> Option<ArrayViewMut<'_, A, D>> {
        match &mut self.repr {
            Repr::Owned(a) => Some(a.view_mut()),
            Repr::Mapped { region, dim } => {
                let dim = dim.clone();
                let slice = region.as_mut_slice()?;
                ArrayViewMut::from_shape(dim, slice).ok()
            }
        }
    }

    /// Whether the elements live in a mapped file (rather than in memory
    /// this value owns).
    pub fn is_mapped(&self) -> bool {
        matches!(self.repr, Repr::Mapped { .. })
    }

    /// Flushes writes made through [`view_mut`](Self::view_mut) to the file
    /// (for [`MmapMode::ReadWrite`](crate::MmapMode::ReadWrite); a no-op otherwise).
    pub fn flush(&self) -> std::io::Result<()> {
        match &self.repr {
            Repr::Mapped { region, .. } => region.mapping().flush(),
            Repr::Owned(_) => Ok(()),
        }
    }

    /// Copies the elements into an owned array.
    pub fn to_owned(&self) -> Array<A, D> {
        self.view().to_owned()
    }

    /// The elements as an owned array, copying only if they are mapped.
    pub fn into_owned(self) -> Array<A, D> {
        match self.repr {
            Repr::Owned(a) => a,
            Repr::Mapped { .. } => self.view().to_owned(),
        }
    }
}

impl<A: Element, D: Dimension> From<Array<A, D>> for MmapArray<A, D> {
    fn from(a: Array<A, D>) -> Self {
        MmapArray {
            repr: Repr::Owned(a),
        }
    }
}

impl<A: Element + fmt::Debug, D: Dimension> fmt::Debug for MmapArray<A, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmapArray")
            .field("mapped", &self.is_mapped())
            .field("array", &self.view())
            .finish()
    }
}

impl<A: Element, D: Dimension + Serialize> Serialize for MmapArray<A, D> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.view().serialize(s)
    }
}

/// The `data` field: a block reference from our deserializers, or elements.
enum Data<A> {
    /// A block of the mapping of the load in progress. With `copy`, a block
    /// that cannot be viewed (misaligned, or already viewed by another
    /// array: Python files can share one array between fields) is copied
    /// instead of refused.
    Block {
        offset: u64,
        len: u64,
        dtype: u64,
        copy: bool,
    },
    Owned(Vec<A>),
}

impl<'de, A: Element> Deserialize<'de> for Data<A> {
    fn deserialize<Des: Deserializer<'de>>(d: Des) -> Result<Self, Des::Error> {
        d.deserialize_newtype_struct(MMAP_DATA, DataVisitor(PhantomData))
    }
}

struct DataVisitor<A>(PhantomData<A>);

impl<'de, A: Element> Visitor<'de> for DataVisitor<A> {
    type Value = Data<A>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("array data")
    }

    fn visit_newtype_struct<Des: Deserializer<'de>>(self, d: Des) -> Result<Data<A>, Des::Error> {
        Vec::<A>::deserialize(d).map(Data::Owned)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Data<A>, S::Error> {
        Vec::<A>::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Data::Owned)
    }

    /// A block reference (`offset`, `len`, `dtype`, optionally
    /// `copy_if_unmappable`), or the elements under `data` (which lets a
    /// deserializer hand over a vector it owns, as `load_python` does).
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Data<A>, M::Error> {
        let (mut offset, mut len, mut dtype, mut copy) = (None, None, None, false);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "data" => return map.next_value::<Vec<A>>().map(Data::Owned),
                "offset" => offset = Some(map.next_value()?),
                "len" => len = Some(map.next_value()?),
                "dtype" => dtype = Some(map.next_value()?),
                "copy_if_unmappable" => copy = map.next_value::<u64>()? != 0,
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        match (offset, len, dtype) {
            (Some(offset), Some(len), Some(dtype)) => Ok(Data::Block {
                offset,
                len,
                dtype,
                copy,
            }),
            _ => Err(de::Error::custom("incomplete block reference")),
        }
    }
}

impl<'de, A: Element, D: Dimension + Deserialize<'de>> Deserialize<'de> for MmapArray<A, D> {
    fn deserialize<Des: Deserializer<'de>>(d: Des) -> Result<Self, Des::Error> {
        d.deserialize_struct("Array", &["v", "dim", "data"], ArrayVisitor(PhantomData))
    }
}

struct ArrayVisitor<A, D>(PhantomData<(A, D)>);

impl<'de, A: Element, D: Dimension + Deserialize<'de>> Visitor<'de> for ArrayVisitor<A, D> {
    type Value = MmapArray<A, D>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an ndarray array")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let v: u8 = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let dim: D = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let data: Data<A> = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(2, &self))?;
        build(v, dim, data)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let (mut v, mut dim, mut data) = (None, None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "v" => v = Some(map.next_value()?),
                "dim" => dim = Some(map.next_value()?),
                "data" => data = Some(map.next_value()?),
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        match (v, dim, data) {
            (Some(v), Some(dim), Some(data)) => build(v, dim, data),
            _ => Err(de::Error::custom(
                "an ndarray array needs the fields v, dim and data",
            )),
        }
    }
}

fn build<A: Element, D: Dimension, E: de::Error>(
    v: u8,
    dim: D,
    data: Data<A>,
) -> Result<MmapArray<A, D>, E> {
    if v != 1 {
        return Err(E::custom(format!(
            "unknown ndarray serialization version {v}"
        )));
    }
    match data {
        Data::Owned(vec) => Array::from_shape_vec(dim, vec)
            .map(MmapArray::from)
            .map_err(|e| E::custom(format!("the array's data does not fit its shape: {e}"))),
        Data::Block {
            offset,
            len,
            dtype,
            copy,
        } => {
            if dtype != u64::from(A::DTYPE.code()) {
                let stored = u8::try_from(dtype)
                    .ok()
                    .and_then(Dtype::from_code)
                    .map_or("unknown", Dtype::name);
                return Err(E::custom(format!(
                    "{stored} elements cannot be mapped as {} (element types are never converted)",
                    A::DTYPE.name()
                )));
            }
            let count = dim
                .size_checked()
                .ok_or_else(|| E::custom("the array's shape overflows"))?;
            let bytes = count.checked_mul(size_of::<A>());
            if bytes.and_then(|b| u64::try_from(b).ok()) != Some(len) {
                return Err(E::custom("the array's data does not fit its shape"));
            }
            let map = current_mapping()
                .ok_or_else(|| E::custom("a block reference outside load_mmap"))?;
            let offset =
                usize::try_from(offset).map_err(|_| E::custom("block offset out of range"))?;
            let Some(region) = Region::claim(&map, offset, count) else {
                let copied = copy
                    .then(|| copy_block(&map, offset, count))
                    .flatten()
                    .ok_or_else(|| {
                        E::custom(
                            "the block cannot be mapped (out of bounds, misaligned or shared)",
                        )
                    })?;
                return Array::from_shape_vec(dim, copied)
                    .map(MmapArray::from)
                    .map_err(|e| {
                        E::custom(format!("the array's data does not fit its shape: {e}"))
                    });
            };
            if ArrayView::from_shape(dim.clone(), region.as_slice()).is_err() {
                return Err(E::custom("the array's data does not fit its shape"));
            }
            Ok(MmapArray {
                repr: Repr::Mapped { region, dim },
            })
        }
    }
}

/// A copy of `count` elements at byte `offset` of `map`, in the machine's
/// byte order (blocks are referenced only when it is the file's); `None` if
/// they lie outside the mapping.
fn copy_block<A: Element>(map: &Mapping, offset: usize, count: usize) -> Option<Vec<A>> {
    let len = count.checked_mul(size_of::<A>())?;
    let bytes = map.bytes().get(offset..offset.checked_add(len)?)?;
    let mut v = crate::owned::try_zeroed::<A>(count)?;
    crate::owned::bytes_mut(&mut v).copy_from_slice(bytes);
    Some(v)
}
