//! serde: a [`PyValue`] into any `Deserialize` type. Types are never
//! converted silently: a Python int loads into any integer type it fits,
//! but a float only into `f64`, and array elements and numpy scalars only
//! into their exact Rust type. Errors name the field path.

use std::fmt::{self, Display};
use std::path::Path;

use serde::Deserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::held;
use super::value::PyValue;
use crate::error::Error;

mod array;
use array::{AnyElem, ArrayMap, data_seq, value_seed};

/// Deserializes `T` from `value`; errors name `path`.
pub(crate) fn from_value<T: DeserializeOwned>(value: &PyValue, path: &Path) -> Result<T, Error> {
    T::deserialize(ValueDe(value)).map_err(|e| e.into_error(path))
}

/// Deserializes `T` from `value`, which it owns: the elements of numeric
/// arrays move into `T`'s vectors (see `held.rs`) instead of being copied.
pub(crate) fn from_owned_value<T: DeserializeOwned>(
    mut value: PyValue,
    path: &Path,
) -> Result<T, Error> {
    let holding = held::hold(&mut value);
    let r = T::deserialize(ValueDe(&value)).map_err(|e| e.into_error(path));
    // The table's keys are addresses in `value`: empty it first.
    drop(holding);
    r
}

enum Seg {
    Field(String),
    Index(usize),
}

/// A type mismatch with where it happened.
#[derive(Debug)]
pub(crate) struct DeErr {
    /// Innermost first.
    path: Vec<Seg>,
    found: Option<String>,
    message: String,
}

impl fmt::Debug for Seg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seg::Field(s) => write!(f, ".{s}"),
            Seg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl Display for DeErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeErr {}

impl de::Error for DeErr {
    fn custom<T: Display>(msg: T) -> Self {
        DeErr {
            path: Vec::new(),
            found: None,
            message: msg.to_string(),
        }
    }
}

impl DeErr {
    fn at(mut self, seg: Seg) -> Self {
        self.path.push(seg);
        self
    }

    fn found(mut self, v: impl FnOnce() -> String) -> Self {
        if self.found.is_none() && self.path.is_empty() {
            self.found = Some(v());
        }
        self
    }

    fn into_error(self, path: &Path) -> Error {
        let mut field = String::new();
        for seg in self.path.iter().rev() {
            match seg {
                Seg::Field(s) if field.is_empty() => field.push_str(s),
                Seg::Field(s) => {
                    field.push('.');
                    field.push_str(s);
                }
                Seg::Index(i) => field.push_str(&format!("[{i}]")),
            }
        }
        Error::Deserialize {
            path: path.to_path_buf(),
            field,
            found: self.found,
            message: self.message,
        }
    }
}

fn mismatch(expected: &str, holds: &str) -> DeErr {
    de::Error::custom(format!("expected {expected}, found {holds}"))
}

type R<T> = Result<T, DeErr>;

/// Deserializer over a borrowed [`PyValue`].
pub(crate) struct ValueDe<'a>(pub(crate) &'a PyValue);

/// Forwards a method to the element deserializer of a numpy scalar.
macro_rules! scalar_first {
    ($self:ident, $method:ident, $visitor:ident $(, $arg:expr)*) => {
        if let PyValue::Scalar(a) = $self.0 {
            return AnyElem { a, i: 0 }.$method($($arg,)* $visitor).map_err(|e| e.found(|| $self.0.describe()));
        }
    };
}

macro_rules! int_method {
    ($method:ident, $t:ty, $visit:ident) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
            scalar_first!(self, $method, visitor);
            let v = self.0;
            let holds = || v.describe();
            let Some(i) = v.as_i128() else {
                return Err(mismatch(stringify!($t), &holds()).found(holds));
            };
            match <$t>::try_from(i) {
                Ok(x) => visitor.$visit::<DeErr>(x).map_err(|e| e.found(holds)),
                Err(_) => Err(de::Error::custom(format!(
                    "the int {i} does not fit in {}",
                    stringify!($t)
                ))),
            }
        }
    };
}

impl<'de> Deserializer<'de> for ValueDe<'_> {
    type Error = DeErr;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        let v = self.0;
        let r = match v {
            PyValue::None => visitor.visit_unit(),
            PyValue::Bool(b) => visitor.visit_bool(*b),
            PyValue::Int(i) => visitor.visit_i64(*i),
            PyValue::BigInt(_) => match v.as_i128() {
                Some(i) => visitor.visit_i128(i),
                None => Err(de::Error::custom("an int too large for i128")),
            },
            PyValue::Float(f) => visitor.visit_f64(*f),
            PyValue::Complex(re, im) => visitor.visit_seq(Floats([*re, *im].into_iter())),
            PyValue::Str(s) => visitor.visit_str(s),
            PyValue::Bytes(b) | PyValue::ByteArray(b) => visitor.visit_bytes(b),
            PyValue::List(items)
            | PyValue::Tuple(items)
            | PyValue::Set(items)
            | PyValue::FrozenSet(items) => visitor.visit_seq(Items {
                it: items.iter().enumerate(),
            }),
            PyValue::Dict(pairs) => visitor.visit_map(Pairs {
                it: pairs.iter(),
                value: None,
            }),
            PyValue::Array(a) => visitor.visit_map(ArrayMap { a, step: 0 }),
            PyValue::Scalar(a) => AnyElem { a, i: 0 }.deserialize_any(visitor),
            PyValue::Global { module, name } => visitor.visit_string(format!("{module}.{name}")),
            PyValue::Object {
                module,
                name,
                args,
                state,
            } => visitor.visit_map(ObjectMap {
                step: 0,
                module,
                name,
                args,
                state: state.as_deref(),
            }),
        };
        r.map_err(|e| e.found(|| v.describe()))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        scalar_first!(self, deserialize_bool, visitor);
        match self.0 {
            PyValue::Bool(b) => visitor.visit_bool(*b),
            v => Err(mismatch("a bool", &v.describe()).found(|| v.describe())),
        }
    }

    int_method!(deserialize_i8, i8, visit_i8);
    int_method!(deserialize_i16, i16, visit_i16);
    int_method!(deserialize_i32, i32, visit_i32);
    int_method!(deserialize_i64, i64, visit_i64);
    int_method!(deserialize_i128, i128, visit_i128);
    int_method!(deserialize_u8, u8, visit_u8);
    int_method!(deserialize_u16, u16, visit_u16);
    int_method!(deserialize_u32, u32, visit_u32);
    int_method!(deserialize_u64, u64, visit_u64);
    int_method!(deserialize_u128, u128, visit_u128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        scalar_first!(self, deserialize_f32, visitor);
        let v = self.0;
        let msg = match v {
            PyValue::Float(_) => "f32: a Python float is an f64, and narrowing it would lose precision (load it as f64)".to_string(),
            _ => "f32".to_string(),
        };
        Err(mismatch(&msg, &v.describe()).found(|| v.describe()))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        scalar_first!(self, deserialize_f64, visitor);
        match self.0 {
            PyValue::Float(f) => visitor.visit_f64(*f),
            v => Err(mismatch("a float (f64)", &v.describe()).found(|| v.describe())),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        match self.0 {
            PyValue::Str(s) if s.chars().count() == 1 => visitor.visit_str(s),
            v => Err(mismatch("a str of one character", &v.describe()).found(|| v.describe())),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        scalar_first!(self, deserialize_str, visitor);
        match self.0 {
            PyValue::Str(s) => visitor
                .visit_str::<DeErr>(s)
                .map_err(|e| e.found(|| self.0.describe())),
            v => Err(mismatch("a str", &v.describe()).found(|| v.describe())),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        scalar_first!(self, deserialize_bytes, visitor);
        match self.0 {
            PyValue::Bytes(b) | PyValue::ByteArray(b) => visitor.visit_bytes(b),
            v => Err(mismatch("bytes", &v.describe()).found(|| v.describe())),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        match self.0 {
            PyValue::None => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        match self.0 {
            PyValue::None => visitor.visit_unit(),
            v => Err(mismatch("None", &v.describe()).found(|| v.describe())),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> R<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> R<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        let v = self.0;
        let r = match v {
            PyValue::List(items)
            | PyValue::Tuple(items)
            | PyValue::Set(items)
            | PyValue::FrozenSet(items) => visitor.visit_seq(Items {
                it: items.iter().enumerate(),
            }),
            PyValue::Complex(re, im) => visitor.visit_seq(Floats([*re, *im].into_iter())),
            PyValue::Bytes(b) | PyValue::ByteArray(b) => visitor.visit_seq(
                de::value::SeqDeserializer::<_, DeErr>::new(b.iter().copied()),
            ),
            PyValue::Array(a) if a.shape.len() == 1 => data_seq(a, visitor),
            PyValue::Array(a) => Err(de::Error::custom(format!(
                "a {}-d array cannot load as a sequence (use an ndarray array)",
                a.shape.len()
            ))),
            v => Err(mismatch("a sequence", &v.describe())),
        };
        r.map_err(|e| e.found(|| v.describe()))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> R<V::Value> {
        scalar_first!(self, deserialize_tuple, visitor, _len);
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> R<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        match self.0 {
            PyValue::Dict(_) | PyValue::Object { .. } | PyValue::Array(_) => {
                self.deserialize_any(visitor)
            }
            v => Err(mismatch("a dict", &v.describe()).found(|| v.describe())),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> R<V::Value> {
        match self.0 {
            PyValue::Scalar(a) if name == "Array" => visitor
                .visit_map(ArrayMap { a, step: 0 })
                .map_err(|e| e.found(|| self.0.describe())),
            _ => self.deserialize_map(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> R<V::Value> {
        match self.0 {
            PyValue::Str(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            PyValue::Dict(p) if p.len() == 1 => match &p[0] {
                (PyValue::Str(k), v) => visitor.visit_enum(Variant { name: k, value: v }),
                _ => Err(de::Error::custom("an enum as a dict needs a str key")),
            },
            v => Err(
                mismatch("an enum (a str, or a dict of one item)", &v.describe())
                    .found(|| v.describe()),
            ),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        visitor.visit_unit()
    }
}

struct Floats(std::array::IntoIter<f64, 2>);

impl<'de> SeqAccess<'de> for Floats {
    type Error = DeErr;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> R<Option<T::Value>> {
        match self.0.next() {
            Some(f) => seed.deserialize(f.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }
}

struct Items<'a> {
    it: std::iter::Enumerate<std::slice::Iter<'a, PyValue>>,
}

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = DeErr;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> R<Option<T::Value>> {
        match self.it.next() {
            Some((i, v)) => value_seed(v, seed)
                .map(Some)
                .map_err(|e| e.at(Seg::Index(i))),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.it.len())
    }
}

struct Pairs<'a> {
    it: std::slice::Iter<'a, (PyValue, PyValue)>,
    value: Option<&'a (PyValue, PyValue)>,
}

fn key_seg(k: &PyValue) -> Seg {
    match k {
        PyValue::Str(s) => Seg::Field(s.clone()),
        PyValue::Int(i) => Seg::Field(i.to_string()),
        other => Seg::Field(format!("<{}>", other.describe())),
    }
}

impl<'de> MapAccess<'de> for Pairs<'_> {
    type Error = DeErr;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> R<Option<K::Value>> {
        match self.it.next() {
            Some(pair) => {
                self.value = Some(pair);
                seed.deserialize(ValueDe(&pair.0))
                    .map(Some)
                    .map_err(|e| e.at(key_seg(&pair.0)))
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> R<V::Value> {
        let pair = self
            .value
            .take()
            .ok_or_else(|| de::Error::custom("a value asked before its key"))?;
        value_seed(&pair.1, seed).map_err(|e| e.at(key_seg(&pair.0)))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.it.len())
    }
}

struct Variant<'a> {
    name: &'a str,
    value: &'a PyValue,
}

impl<'a, 'de> de::EnumAccess<'de> for Variant<'a> {
    type Error = DeErr;
    type Variant = ValueDe<'a>;
    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> R<(S::Value, ValueDe<'a>)> {
        let name: de::value::StrDeserializer<'_, DeErr> = self.name.into_deserializer();
        Ok((seed.deserialize(name)?, ValueDe(self.value)))
    }
}

impl<'de> de::VariantAccess<'de> for ValueDe<'_> {
    type Error = DeErr;
    fn unit_variant(self) -> R<()> {
        Deserializer::deserialize_unit(self, de::IgnoredAny).map(|_| ())
    }
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> R<S::Value> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> R<V::Value> {
        self.deserialize_seq(visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> R<V::Value> {
        self.deserialize_map(visitor)
    }
}

/// An opaque object as a map `{module, name, args, state}`.
struct ObjectMap<'a> {
    step: u8,
    module: &'a str,
    name: &'a str,
    args: &'a PyValue,
    state: Option<&'a PyValue>,
}

const NONE: PyValue = PyValue::None;

impl<'de> MapAccess<'de> for ObjectMap<'_> {
    type Error = DeErr;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> R<Option<K::Value>> {
        let key = match self.step {
            0 => "module",
            1 => "name",
            2 => "args",
            3 => "state",
            _ => return Ok(None),
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> R<V::Value> {
        self.step += 1;
        match self.step {
            1 => seed.deserialize(self.module.into_deserializer()),
            2 => seed.deserialize(self.name.into_deserializer()),
            3 => seed
                .deserialize(ValueDe(self.args))
                .map_err(|e| e.at(Seg::Field("args".into()))),
            _ => seed
                .deserialize(ValueDe(self.state.unwrap_or(&NONE)))
                .map_err(|e| e.at(Seg::Field("state".into()))),
        }
    }
}
