//! The arrays of a [`PyValue`] tree for serde: in ndarray's shape, their
//! elements handed over in one go where the seed allows it (moved out of
//! an owned tree, or read from a mapped file), element by element
//! otherwise, and to `MmapArray` as views of a mapped file.

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

use super::{DeErr, Items, R, ValueDe};
use crate::format::Dtype;
use crate::python::held;
use crate::python::value::{ArrayData, PyArray, PyValue};

/// An array in ndarray's serde shape: `{v: 1, dim: [...], data: [...]}`.
pub(super) struct ArrayMap<'a> {
    pub(super) a: &'a PyArray,
    pub(super) step: u8,
}

impl<'de> MapAccess<'de> for ArrayMap<'_> {
    type Error = DeErr;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> R<Option<K::Value>> {
        let key = match self.step {
            0 => "v",
            1 => "dim",
            2 => "data",
            _ => return Ok(None),
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> R<V::Value> {
        self.step += 1;
        match self.step {
            1 => seed.deserialize(1u8.into_deserializer()),
            2 => seed.deserialize(de::value::SeqDeserializer::new(
                self.a.shape.iter().copied(),
            )),
            _ => data_value(self.a, seed),
        }
    }
}

/// The data of `a` into `seed`: handed over in one go when it can be,
/// element by element otherwise.
fn data_value<'de, S: DeserializeSeed<'de>>(a: &PyArray, seed: S) -> R<S::Value> {
    match handover(a, seed)? {
        Ok(v) => Ok(v),
        Err(seed) => seed.deserialize(DataDe(a)),
    }
}

/// When the seed is `PhantomData<Vec<A>>` (what ndarray's arrays and
/// derived structs pass) and `A` is the array's element type, hands the
/// elements over in one go: the vector itself when the load owns the tree
/// (`held.rs`), a copy otherwise, instead of one serde call per element.
/// Gives the seed back otherwise.
fn handover<'de, S: DeserializeSeed<'de>>(a: &PyArray, seed: S) -> R<Result<S::Value, S>> {
    let want = crate::owned::seed_elem::<S>();
    if want.is_none() || want != numeric_dtype(&a.data) {
        return Ok(Err(seed));
    }
    let data = match held::take_or_map(a).map_err(de::Error::custom)? {
        Some(d) => d,
        None => a.data.clone(),
    };
    macro_rules! give {
        ($($v:ident),*) => {
            match data {
                $(ArrayData::$v(d) => crate::owned::into_seed_value::<S, _>(d).map_err(|d| {
                    held::put(a, ArrayData::$v(d));
                    seed
                }),)*
                other => {
                    held::put(a, other);
                    Err(seed)
                }
            }
        };
    }
    Ok(give!(F64, F32, I64, U64, I32, U32, I16, U16, I8, U8))
}

/// The element type of numeric array data, as `.jbl` files name it.
fn numeric_dtype(data: &ArrayData) -> Option<Dtype> {
    Some(match data {
        ArrayData::F64(_) => Dtype::F64,
        ArrayData::F32(_) => Dtype::F32,
        ArrayData::I64(_) => Dtype::I64,
        ArrayData::U64(_) => Dtype::U64,
        ArrayData::I32(_) => Dtype::I32,
        ArrayData::U32(_) => Dtype::U32,
        ArrayData::I16(_) => Dtype::I16,
        ArrayData::U16(_) => Dtype::U16,
        ArrayData::I8(_) => Dtype::I8,
        ArrayData::U8(_) => Dtype::U8,
        _ => return None,
    })
}

/// Deserializes `seed` from `v`, handing a 1-d array's elements over in
/// one go when the seed is a `Vec` of their type.
pub(super) fn value_seed<'de, S: DeserializeSeed<'de>>(v: &PyValue, seed: S) -> R<S::Value> {
    match v {
        PyValue::Array(a) if a.shape.len() == 1 => match handover(a, seed)? {
            Ok(x) => Ok(x),
            Err(seed) => seed.deserialize(ValueDe(v)),
        },
        _ => seed.deserialize(ValueDe(v)),
    }
}

/// The elements of an array, as a sequence.
struct DataDe<'a>(&'a PyArray);

impl<'de> Deserializer<'de> for DataDe<'_> {
    type Error = DeErr;
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        data_seq(self.0, visitor)
    }
    /// `MmapArray` asks for its data by a newtype of this name, and takes
    /// a map: a block of the mapped file (as `.jbl` loads give it), or the
    /// elements under `data`, handed over as a vector.
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> R<V::Value> {
        let a = self.0;
        if name != crate::de::MMAP_DATA {
            return data_seq(a, visitor);
        }
        match (a.mapped, numeric_dtype(&a.data)) {
            (Some(offset), Some(dtype)) => {
                let len = a
                    .data_bytes()
                    .ok_or_else(|| de::Error::custom("the array's length overflows"))?;
                let block = [
                    ("offset", offset),
                    ("len", len),
                    ("dtype", u64::from(dtype.code())),
                    // Shared arrays (`[a, a]` in Python) are one block:
                    // the second view of it is a copy.
                    ("copy_if_unmappable", 1),
                ];
                visitor.visit_map(de::value::MapDeserializer::new(block.into_iter()))
            }
            _ => visitor.visit_map(OwnedData { a, step: 0 }),
        }
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// An array's elements for `MmapArray`, as the map `{data: [...]}`.
struct OwnedData<'a> {
    a: &'a PyArray,
    step: u8,
}

impl<'de> MapAccess<'de> for OwnedData<'_> {
    type Error = DeErr;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> R<Option<K::Value>> {
        if self.step > 0 {
            return Ok(None);
        }
        self.step = 1;
        seed.deserialize("data".into_deserializer()).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> R<V::Value> {
        data_value(self.a, seed)
    }
}

/// Visits the elements of `a` as a sequence, one type dispatch for all.
pub(super) fn data_seq<'de, V: Visitor<'de>>(a: &PyArray, visitor: V) -> R<V::Value> {
    match held::take_or_map(a).map_err(de::Error::custom)? {
        Some(data) => {
            let r = data_seq_of(a, &data, visitor);
            held::put(a, data);
            r
        }
        None => data_seq_of(a, &a.data, visitor),
    }
}

/// [`data_seq`] over `data`, the elements of `a`.
fn data_seq_of<'de, V: Visitor<'de>>(a: &PyArray, data: &ArrayData, visitor: V) -> R<V::Value> {
    macro_rules! typed {
        ($d:expr) => {
            visitor.visit_seq(Typed { it: $d.iter(), a })
        };
    }
    match data {
        ArrayData::Bool(d) => typed!(d),
        ArrayData::I8(d) => typed!(d),
        ArrayData::I16(d) => typed!(d),
        ArrayData::I32(d) => typed!(d),
        ArrayData::I64(d) => typed!(d),
        ArrayData::U8(d) => typed!(d),
        ArrayData::U16(d) => typed!(d),
        ArrayData::U32(d) => typed!(d),
        ArrayData::U64(d) => typed!(d),
        ArrayData::F32(d) => typed!(d),
        ArrayData::F64(d) => typed!(d),
        ArrayData::C64(d) => typed!(d),
        ArrayData::C128(d) => typed!(d),
        ArrayData::Str(d) => typed!(d),
        ArrayData::Bytes(d) => typed!(d),
        ArrayData::Object(d) => visitor.visit_seq(Items {
            it: d.iter().enumerate(),
        }),
    }
}

struct Typed<'a, T> {
    it: std::slice::Iter<'a, T>,
    a: &'a PyArray,
}

impl<'a, 'de, T> SeqAccess<'de> for Typed<'a, T>
where
    Elem<'a, T>: Deserializer<'de, Error = DeErr>,
{
    type Error = DeErr;
    #[inline]
    fn next_element_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> R<Option<S::Value>> {
        match self.it.next() {
            Some(v) => seed.deserialize(Elem { v, a: self.a }).map(Some),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.it.len())
    }
}

/// One array element; it loads only into its own Rust type.
struct Elem<'a, T> {
    v: &'a T,
    a: &'a PyArray,
}

impl<T> Elem<'_, T> {
    #[cold]
    fn wrong(&self, wanted: &str) -> DeErr {
        let a = self.a;
        let what = if a.shape.is_empty() {
            "numpy scalar"
        } else {
            "array"
        };
        DeErr {
            path: Vec::new(),
            found: Some(
                PyValue::Array(PyArray::new(
                    a.dtype.clone(),
                    a.shape.clone(),
                    ArrayData::Bool(Vec::new()),
                ))
                .describe(),
            ),
            message: format!(
                "the {what}'s elements are numpy {} ({}), which do not load as {wanted} without a conversion",
                a.dtype,
                a.data.element_type()
            ),
        }
    }
}

/// The deserializer of one element type: `$visit` visits the element,
/// the hints named `$own` visit it, every other hint is a mismatch.
macro_rules! prim_elem {
    ($t:ty, |$v:ident, $vis:ident| $visit:expr, [$($own:literal),*]) => {
        impl<'de> Deserializer<'de> for Elem<'_, $t> {
            type Error = DeErr;
            #[inline]
            fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
                let ($v, $vis) = (self.v, visitor);
                $visit
            }
            fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
                visitor.visit_some(self)
            }
            fn deserialize_newtype_struct<V: Visitor<'de>>(self, _n: &'static str, visitor: V) -> R<V::Value> {
                visitor.visit_newtype_struct(self)
            }
            fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
                visitor.visit_unit()
            }
            prim_methods!([$($own),*]);
        }
    };
}

/// Every typed hint: the own one visits, the others are mismatches.
macro_rules! prim_methods {
    ($own:tt) => {
        prim_methods!(@m $own;
            deserialize_bool "bool", deserialize_i8 "i8", deserialize_i16 "i16",
            deserialize_i32 "i32", deserialize_i64 "i64", deserialize_i128 "i128",
            deserialize_u8 "u8", deserialize_u16 "u16", deserialize_u32 "u32",
            deserialize_u64 "u64", deserialize_u128 "u128", deserialize_f32 "f32",
            deserialize_f64 "f64", deserialize_char "char", deserialize_str "a str",
            deserialize_string "a String", deserialize_bytes "bytes",
            deserialize_byte_buf "bytes", deserialize_unit "()", deserialize_seq "a sequence",
            deserialize_map "a map", deserialize_identifier "an identifier");
        fn deserialize_unit_struct<V: Visitor<'de>>(self, _n: &'static str, _v: V) -> R<V::Value> {
            Err(self.wrong("a unit struct"))
        }
        fn deserialize_tuple<V: Visitor<'de>>(self, _l: usize, v: V) -> R<V::Value> {
            self.deserialize_seq(v)
        }
        fn deserialize_tuple_struct<V: Visitor<'de>>(self, _n: &'static str, _l: usize, v: V) -> R<V::Value> {
            self.deserialize_seq(v)
        }
        fn deserialize_struct<V: Visitor<'de>>(self, _n: &'static str, _f: &'static [&'static str], _v: V) -> R<V::Value> {
            Err(self.wrong("a struct"))
        }
        fn deserialize_enum<V: Visitor<'de>>(self, _n: &'static str, _f: &'static [&'static str], _v: V) -> R<V::Value> {
            Err(self.wrong("an enum"))
        }
    };
    (@m $own:tt; $($m:ident $name:literal),*) => {
        $(
            #[inline]
            fn $m<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
                if $own.contains(&$name) {
                    self.deserialize_any(visitor)
                } else {
                    Err(self.wrong($name))
                }
            }
        )*
    };
}

prim_elem!(bool, |v, vis| vis.visit_bool(*v), ["bool"]);
prim_elem!(i8, |v, vis| vis.visit_i8(*v), ["i8"]);
prim_elem!(i16, |v, vis| vis.visit_i16(*v), ["i16"]);
prim_elem!(i32, |v, vis| vis.visit_i32(*v), ["i32"]);
prim_elem!(i64, |v, vis| vis.visit_i64(*v), ["i64"]);
prim_elem!(u8, |v, vis| vis.visit_u8(*v), ["u8"]);
prim_elem!(u16, |v, vis| vis.visit_u16(*v), ["u16"]);
prim_elem!(u32, |v, vis| vis.visit_u32(*v), ["u32"]);
prim_elem!(u64, |v, vis| vis.visit_u64(*v), ["u64"]);
prim_elem!(f32, |v, vis| vis.visit_f32(*v), ["f32"]);
prim_elem!(f64, |v, vis| vis.visit_f64(*v), ["f64"]);
prim_elem!(
    String,
    |v, vis| vis.visit_str(v),
    ["a str", "a String", "an identifier"]
);
prim_elem!(Vec<u8>, |v, vis| vis.visit_bytes(v), ["bytes"]);
prim_elem!(
    [f32; 2],
    |v, vis| vis.visit_seq(de::value::SeqDeserializer::new(v.iter().copied())),
    ["a sequence"]
);
prim_elem!(
    [f64; 2],
    |v, vis| vis.visit_seq(de::value::SeqDeserializer::new(v.iter().copied())),
    ["a sequence"]
);

/// Element `i` of any array, dispatching on its type once.
pub(super) struct AnyElem<'a> {
    pub(super) a: &'a PyArray,
    pub(super) i: usize,
}

macro_rules! any_elem_methods {
    ($($m:ident($($arg:ident: $t:ty),*)),*) => {
        $(
            pub(super) fn $m<V: Visitor<'de>>(self, $($arg: $t,)* visitor: V) -> R<V::Value> {
                let (a, i) = (self.a, self.i);
                let missing = || de::Error::custom("a numpy scalar without its element");
                match &a.data {
                    ArrayData::Bool(d) => Elem { v: d.get(i).ok_or_else(missing)?, a }.$m($($arg,)* visitor),
                    ArrayData::I8(d) => Elem { v: d.get(i).ok_or_else(missing)?, a }.$m($($arg,)* visitor),
                    ArrayData::I16(d) => Elem { v: d.get(i).ok_or_else(missing)?, a }.$m($($arg,)* visitor),
                    ArrayData::I32(d) => Elem { v: d.get(i).ok_or_else(missing)?, a }.$m($($arg,)* visitor),
                    ArrayData::I64(d) => Elem { v: d.get(i).ok_or_else(missing)?, a }.$m($($arg,)* visitor),
                    ArrayData::U8(d) => Elem { v: d.get(i).ok_or_else(missing)?, a }.$m($($arg,)* visitor),
                    ArrayData::U16(d) => Elem { v: d.get(i).ok_or_else(missing)?, a }.$m($($arg,)* visitor),
                    ArrayData::U32(d) => Elem { v: d.get(i).ok_or_else(missing)?, a }.$m($($arg,)* visitor),
                    ArrayData::U64(d) => Elem { v: d.get(i).ok_or_else(missing)?, a }.$m($($arg,)* visitor),
                    ArrayData::F32(d) => Elem { v: d.get(i).ok_or_else(missing)?, a }.$m($($arg,)* visitor),
                    ArrayData::F64(d) => Elem { v: d.get(i).ok_or_else(missing)?, a }.$m($($arg,)* visitor),
                    ArrayData::C64(d) => Elem { v: d.get(i).ok_or_else(missing)?, a }.$m($($arg,)* visitor),
                    ArrayData::C128(d) => Elem { v: d.get(i).ok_or_else(missing)?, a }.$m($($arg,)* visitor),
                    ArrayData::Str(d) => Elem { v: d.get(i).ok_or_else(missing)?, a }.$m($($arg,)* visitor),
                    ArrayData::Bytes(d) => Elem { v: d.get(i).ok_or_else(missing)?, a }.$m($($arg,)* visitor),
                    ArrayData::Object(d) => ValueDe(d.get(i).ok_or_else(missing)?).$m($($arg,)* visitor),
                }
            }
        )*
    };
}

impl<'de> AnyElem<'_> {
    any_elem_methods!(
        deserialize_any(), deserialize_bool(), deserialize_i8(), deserialize_i16(),
        deserialize_i32(), deserialize_i64(), deserialize_i128(), deserialize_u8(),
        deserialize_u16(), deserialize_u32(), deserialize_u64(), deserialize_u128(),
        deserialize_f32(), deserialize_f64(), deserialize_str(), deserialize_bytes(),
        deserialize_tuple(len: usize)
    );
}
