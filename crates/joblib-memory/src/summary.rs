//! Short, readable summaries of arguments, in the style of Python's
//! `repr`: `(1, "a")`, `[1.5, 2.5]`, `Point { x: 1, y: 2 }`, and an
//! `ndarray` array as its type, shape and a few values, as numpy shows
//! one: `Array2<f64> (4000, 500) [[-0.571, -0.571, ...], ...]`.
//!
//! The summary is written by a `serde` serializer that stops as soon as it
//! has enough: a large argument costs a few hundred bytes of work, and an
//! array's elements are visited only up to the few that are shown.

use std::fmt::{self, Display, Write as _};

use serde::Serialize;
use serde::ser::{self, Impossible};

/// The longest summary kept, in bytes.
pub(crate) const SUMMARY_LIMIT: usize = 200;

/// How many values of an array's last axis are shown.
const ARRAY_VALUES: usize = 3;

/// A short, readable summary of a value, cut at [`SUMMARY_LIMIT`] bytes
/// with an ellipsis.
pub(crate) fn summarize<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Out::new(SUMMARY_LIMIT);
    let complete = value
        .serialize(Repr {
            out: &mut out,
            short_floats: false,
        })
        .is_ok();
    // Full, or the value's own `Serialize` failed: show what was written.
    if !complete {
        out.buf.push('…');
    }
    out.buf
}

/// Why rendering stopped early.
#[derive(Debug)]
enum Stop {
    /// The summary is as long as it may be.
    Full,
    /// An array has shown all the values it shows.
    Enough,
    /// The value's `Serialize` reported an error.
    Custom,
}

impl Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stop::Full => "summary full",
            Stop::Enough => "enough values",
            Stop::Custom => "the value cannot be serialized",
        })
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: Display>(_: T) -> Stop {
        Stop::Custom
    }
}

/// The text being written, with its limit and the type of the last scalar
/// (an array's element type).
struct Out {
    buf: String,
    limit: usize,
    scalar: &'static str,
}

impl Out {
    fn new(limit: usize) -> Out {
        Out {
            buf: String::new(),
            limit,
            scalar: "_",
        }
    }

    fn push(&mut self, s: &str) -> Result<(), Stop> {
        let room = self.limit.saturating_sub(self.buf.len());
        if s.len() <= room {
            self.buf.push_str(s);
            return Ok(());
        }
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.buf.push_str(&s[..cut]);
        Err(Stop::Full)
    }

    fn show(&mut self, scalar: &'static str, v: impl Display) -> Result<(), Stop> {
        self.scalar = scalar;
        let mut s = String::new();
        let _ = write!(s, "{v}");
        self.push(&s)
    }
}

/// A float as numpy prints array elements: about four significant digits.
fn short_float(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let a = x.abs();
    if a == 0.0 || (1e-3..1e5).contains(&a) {
        let s = format!("{x:.3}");
        let s = s.trim_end_matches('0');
        if s.ends_with('.') {
            format!("{s}0")
        } else {
            s.to_string()
        }
    } else {
        format!("{x:.3e}")
    }
}

/// The serializer writing a summary.
struct Repr<'a> {
    out: &'a mut Out,
    /// Floats as array elements (short) rather than as arguments (exact).
    short_floats: bool,
}

impl<'a> Repr<'a> {
    fn float(self, scalar: &'static str, x: f64, exact: impl Display) -> Result<(), Stop> {
        if self.short_floats {
            self.out.scalar = scalar;
            self.out.push(&short_float(x))
        } else {
            self.out.show(scalar, exact)
        }
    }

    fn open(self, open: &str, close: &'static str) -> Result<Compound<'a>, Stop> {
        self.out.push(open)?;
        Ok(Compound {
            out: self.out,
            short_floats: self.short_floats,
            first: true,
            close,
            array: None,
        })
    }
}

macro_rules! show_scalars {
    ($($method:ident: $ty:ty => $name:literal),* $(,)?) => {
        $(fn $method(self, v: $ty) -> Result<(), Stop> {
            self.out.show($name, v)
        })*
    };
}

impl<'a> ser::Serializer for Repr<'a> {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    show_scalars! {
        serialize_bool: bool => "bool",
        serialize_i8: i8 => "i8",
        serialize_i16: i16 => "i16",
        serialize_i32: i32 => "i32",
        serialize_i64: i64 => "i64",
        serialize_i128: i128 => "i128",
        serialize_u8: u8 => "u8",
        serialize_u16: u16 => "u16",
        serialize_u32: u32 => "u32",
        serialize_u64: u64 => "u64",
        serialize_u128: u128 => "u128",
    }

    fn serialize_f32(self, v: f32) -> Result<(), Stop> {
        self.float("f32", f64::from(v), format!("{v:?}"))
    }

    fn serialize_f64(self, v: f64) -> Result<(), Stop> {
        self.float("f64", v, format!("{v:?}"))
    }

    fn serialize_char(self, v: char) -> Result<(), Stop> {
        self.out.show("char", format!("{v:?}"))
    }

    fn serialize_str(self, v: &str) -> Result<(), Stop> {
        self.out.scalar = "String";
        self.out.push(&format!("{v:?}"))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Stop> {
        self.out.show("bytes", format!("<{} bytes>", v.len()))
    }

    fn serialize_none(self) -> Result<(), Stop> {
        self.out.push("None")
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Stop> {
        self.out.push("Some(")?;
        let out = &mut *self.out;
        value.serialize(Repr {
            out: &mut *out,
            short_floats: self.short_floats,
        })?;
        out.push(")")
    }

    fn serialize_unit(self) -> Result<(), Stop> {
        self.out.push("()")
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<(), Stop> {
        self.out.push(name)
    }

    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), Stop> {
        self.out.push(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        let mut c = self.open(&format!("{name}("), ")")?;
        ser::SerializeTupleStruct::serialize_field(&mut c, value)?;
        ser::SerializeTupleStruct::end(c)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        self.serialize_newtype_struct(variant, value)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, Stop> {
        self.open("[", "]")
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>, Stop> {
        // A one-element tuple is written `(x,)`, as Python does.
        self.open("(", if len == 1 { ",)" } else { ")" })
    }

    fn serialize_tuple_struct(self, name: &'static str, _: usize) -> Result<Compound<'a>, Stop> {
        self.open(&format!("{name}("), ")")
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Stop> {
        self.open(&format!("{variant}("), ")")
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, Stop> {
        self.open("{", "}")
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Compound<'a>, Stop> {
        // ndarray writes an array as the struct `Array { v, dim, data }`.
        if name == "Array" && len == 3 {
            return Ok(Compound {
                out: self.out,
                short_floats: self.short_floats,
                first: true,
                close: "",
                array: Some(ArrayParts::default()),
            });
        }
        self.open(&format!("{name} {{ "), " }")
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, Stop> {
        self.open(&format!("{variant} {{ "), " }")
    }
}

/// What an ndarray array's fields said so far.
#[derive(Default)]
struct ArrayParts {
    /// The shape; `dyn_dim` when it came as a sequence (`IxDyn`).
    dim: Vec<usize>,
    dyn_dim: bool,
    /// The first values, rendered, and their element type.
    values: Vec<String>,
    scalar: &'static str,
    /// Whether a field did not have the expected form.
    odd: bool,
}

/// A sequence, tuple, map or struct being written.
struct Compound<'a> {
    out: &'a mut Out,
    short_floats: bool,
    first: bool,
    close: &'static str,
    /// Set when this is an ndarray array.
    array: Option<ArrayParts>,
}

impl Compound<'_> {
    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        if !self.first {
            self.out.push(", ")?;
        }
        self.first = false;
        value.serialize(Repr {
            out: &mut *self.out,
            short_floats: self.short_floats,
        })
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Stop> {
        if let Some(parts) = &mut self.array {
            return array_field(parts, key, value);
        }
        if !self.first {
            self.out.push(", ")?;
        }
        self.first = false;
        self.out.push(key)?;
        self.out.push(": ")?;
        value.serialize(Repr {
            out: &mut *self.out,
            short_floats: self.short_floats,
        })
    }

    fn finish(self) -> Result<(), Stop> {
        match self.array {
            Some(parts) => self.out.push(&render_array(&parts)),
            None => self.out.push(self.close),
        }
    }
}

/// Reads one field of an ndarray array.
fn array_field<T: Serialize + ?Sized>(
    parts: &mut ArrayParts,
    key: &str,
    value: &T,
) -> Result<(), Stop> {
    match key {
        "dim" => {
            let mut dim = Out::new(SUMMARY_LIMIT);
            let ok = value
                .serialize(Repr {
                    out: &mut dim,
                    short_floats: false,
                })
                .is_ok();
            parts.dyn_dim = dim.buf.starts_with('[');
            let inner = dim.buf.trim_matches(['(', ')', '[', ']', ',']);
            parts.dim = inner
                .split(", ")
                .filter(|s| !s.is_empty())
                .filter_map(|s| s.parse().ok())
                .collect();
            parts.odd |= !ok;
        }
        "data" => {
            let want = if parts.dim.contains(&0) {
                0
            } else {
                parts.dim.last().map_or(1, |&n| n.min(ARRAY_VALUES))
            };
            let mut values = Values {
                want,
                got: Vec::new(),
                scalar: "_",
            };
            match value.serialize(&mut values) {
                Ok(()) | Err(Stop::Enough) => {}
                Err(e) => return Err(e),
            }
            parts.values = values.got;
            parts.scalar = values.scalar;
        }
        _ => {}
    }
    Ok(())
}

/// `Array2<f64> (4000, 500) [[-0.571, -0.571, ...], ...]`.
fn render_array(parts: &ArrayParts) -> String {
    if parts.odd {
        return "Array(…)".to_string();
    }
    let ndim = parts.dim.len();
    let kind = if parts.dyn_dim {
        format!("ArrayD<{}>", parts.scalar)
    } else {
        format!("Array{ndim}<{}>", parts.scalar)
    };
    let shape = match parts.dim.as_slice() {
        [n] => format!("({n},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let body = if ndim == 0 {
        parts.values.first().cloned().unwrap_or_default()
    } else if parts.dim.contains(&0) {
        "[]".to_string()
    } else {
        let last = parts.dim[ndim - 1];
        let mut body = format!("[{}", parts.values.join(", "));
        if last > parts.values.len() {
            body.push_str(", ...");
        }
        body.push(']');
        for &n in parts.dim[..ndim - 1].iter().rev() {
            body = if n > 1 {
                format!("[{body}, ...]")
            } else {
                format!("[{body}]")
            };
        }
        body
    };
    format!("{kind} {shape} {body}")
}

/// Collects the first `want` elements of an array's data, then stops.
struct Values {
    want: usize,
    got: Vec<String>,
    scalar: &'static str,
}

impl ser::SerializeSeq for &mut Values {
    type Ok = ();
    type Error = Stop;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        if self.got.len() >= self.want {
            return Err(Stop::Enough);
        }
        let mut out = Out::new(40);
        let _ = value.serialize(Repr {
            out: &mut out,
            short_floats: true,
        });
        self.scalar = out.scalar;
        self.got.push(out.buf);
        if self.got.len() >= self.want {
            return Err(Stop::Enough);
        }
        Ok(())
    }

    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

/// The data field is a sequence; anything else is not an array we know.
macro_rules! refuse {
    ($($method:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $method(self, $(_: $arg),*) -> Result<(), Stop> {
            Err(Stop::Custom)
        })*
    };
}

impl ser::Serializer for &mut Values {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Self;
    type SerializeTuple = Impossible<(), Stop>;
    type SerializeTupleStruct = Impossible<(), Stop>;
    type SerializeTupleVariant = Impossible<(), Stop>;
    type SerializeMap = Impossible<(), Stop>;
    type SerializeStruct = Impossible<(), Stop>;
    type SerializeStructVariant = Impossible<(), Stop>;

    refuse! {
        serialize_bool(bool), serialize_i8(i8), serialize_i16(i16), serialize_i32(i32),
        serialize_i64(i64), serialize_u8(u8), serialize_u16(u16), serialize_u32(u32),
        serialize_u64(u64), serialize_f32(f32), serialize_f64(f64), serialize_char(char),
        serialize_str(&str), serialize_bytes(&[u8]), serialize_none(), serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Stop> {
        Err(Stop::Custom)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: &T,
    ) -> Result<(), Stop> {
        Err(Stop::Custom)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Stop> {
        Err(Stop::Custom)
    }

    fn serialize_seq(self, _: Option<usize>) -> Result<Self, Stop> {
        if self.want == 0 {
            return Err(Stop::Enough);
        }
        Ok(self)
    }

    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Stop> {
        Err(Stop::Custom)
    }

    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Stop> {
        Err(Stop::Custom)
    }

    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Stop> {
        Err(Stop::Custom)
    }

    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Stop> {
        Err(Stop::Custom)
    }

    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Stop> {
        Err(Stop::Custom)
    }

    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Stop> {
        Err(Stop::Custom)
    }
}

/// The compound traits all write items or fields.
macro_rules! compound {
    ($($trait:ident :: $method:ident),* $(,)?) => {
        $(impl ser::$trait for Compound<'_> {
            type Ok = ();
            type Error = Stop;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
                self.item(value)
            }

            fn end(self) -> Result<(), Stop> {
                self.finish()
            }
        })*
    };
}

compound! {
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field,
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Stop;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Stop> {
        self.item(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        self.out.push(": ")?;
        value.serialize(Repr {
            out: &mut *self.out,
            short_floats: self.short_floats,
        })
    }

    fn end(self) -> Result<(), Stop> {
        self.finish()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), Stop> {
        self.finish()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Stop;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        self.field(key, value)
    }

    fn end(self) -> Result<(), Stop> {
        self.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ndarray::{Array, Array1, Array2, IxDyn, arr0};
    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct Point {
        x: i32,
        y: Option<f64>,
    }

    #[derive(Serialize)]
    enum Shape {
        Circle(f64),
        Empty,
    }

    #[test]
    fn values_look_like_python_reprs() {
        assert_eq!(summarize(&(1u64, "a")), r#"(1, "a")"#);
        assert_eq!(summarize(&(7u8,)), "(7,)");
        assert_eq!(summarize(&vec![1.5f64, 2.0]), "[1.5, 2.0]");
        assert_eq!(
            summarize(&Point { x: 1, y: Some(0.1) }),
            "Point { x: 1, y: Some(0.1) }"
        );
        assert_eq!(
            summarize(&(Shape::Circle(2.0), Shape::Empty)),
            "(Circle(2.0), Empty)"
        );
        let m: BTreeMap<&str, u8> = [("a", 1), ("b", 2)].into();
        assert_eq!(summarize(&m), r#"{"a": 1, "b": 2}"#);
    }

    #[test]
    fn arrays_show_type_shape_and_a_few_values() {
        let a = Array2::from_elem((4000, 500), -0.5712f64);
        assert_eq!(
            summarize(&a),
            "Array2<f64> (4000, 500) [[-0.571, -0.571, -0.571, ...], ...]"
        );
        assert_eq!(
            summarize(&(&a, 3usize)),
            "(Array2<f64> (4000, 500) [[-0.571, -0.571, -0.571, ...], ...], 3)"
        );
        let b = Array1::from(vec![1u32, 2]);
        assert_eq!(summarize(&b), "Array1<u32> (2,) [1, 2]");
        let c = Array2::<f32>::zeros((3, 0));
        assert_eq!(summarize(&c), "Array2<_> (3, 0) []");
        let d = Array::from_elem(IxDyn(&[1, 2, 5]), 1e-7f64);
        assert_eq!(
            summarize(&d),
            "ArrayD<f64> (1, 2, 5) [[[1.000e-7, 1.000e-7, 1.000e-7, ...], ...]]"
        );
        assert_eq!(summarize(&arr0(2.5f64)), "Array0<f64> () 2.5");
    }

    #[test]
    fn summaries_are_short_and_cheap() {
        let big = vec![1.5f64; 1_000_000];
        let s = summarize(&big);
        assert!(s.len() <= SUMMARY_LIMIT + 3, "{}", s.len());
        assert!(s.ends_with('…'));
        assert!(s.starts_with("[1.5, 1.5"));
        let text = "é".repeat(300);
        let s = summarize(&text);
        assert!(s.len() <= SUMMARY_LIMIT + 3);
        assert!(s.ends_with('…'));
    }
}
