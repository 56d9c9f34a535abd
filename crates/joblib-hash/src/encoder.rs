//! The canonical encoding of serde's data model, written into a [`Sink`].
//!
//! Every value starts with a one-byte tag naming its kind; lengths and
//! numbers are little-endian and of fixed width, so the bytes do not depend
//! on the machine. `docs/hashing.md` is the specification; the tag values
//! below are part of every digest, so changing one is a breaking change.

use serde::ser::{self, Serialize};

use crate::sink::Sink;
use crate::{Algorithm, Digest, Error};

pub(crate) mod tag {
    pub(crate) const UNIT: u8 = 0x01;
    pub(crate) const BOOL: u8 = 0x02;
    pub(crate) const I8: u8 = 0x10;
    pub(crate) const I16: u8 = 0x11;
    pub(crate) const I32: u8 = 0x12;
    pub(crate) const I64: u8 = 0x13;
    pub(crate) const I128: u8 = 0x14;
    pub(crate) const U8: u8 = 0x18;
    pub(crate) const U16: u8 = 0x19;
    pub(crate) const U32: u8 = 0x1a;
    pub(crate) const U64: u8 = 0x1b;
    pub(crate) const U128: u8 = 0x1c;
    pub(crate) const F32: u8 = 0x20;
    pub(crate) const F64: u8 = 0x21;
    pub(crate) const CHAR: u8 = 0x22;
    pub(crate) const STR: u8 = 0x30;
    pub(crate) const BYTES: u8 = 0x31;
    pub(crate) const NONE: u8 = 0x40;
    pub(crate) const SOME: u8 = 0x41;
    pub(crate) const UNIT_STRUCT: u8 = 0x50;
    pub(crate) const UNIT_VARIANT: u8 = 0x51;
    pub(crate) const NEWTYPE_STRUCT: u8 = 0x52;
    pub(crate) const NEWTYPE_VARIANT: u8 = 0x53;
    pub(crate) const SEQ: u8 = 0x60;
    pub(crate) const TUPLE: u8 = 0x61;
    pub(crate) const TUPLE_STRUCT: u8 = 0x62;
    pub(crate) const TUPLE_VARIANT: u8 = 0x63;
    pub(crate) const STRUCT: u8 = 0x64;
    pub(crate) const STRUCT_VARIANT: u8 = 0x65;
    pub(crate) const FIELD: u8 = 0x66;
    pub(crate) const END: u8 = 0x6f;
    pub(crate) const MAP: u8 = 0x70;
    pub(crate) const SET: u8 = 0x71;
    pub(crate) const RUN: u8 = 0x7f;
}

/// The most elements one run chunk holds (its count is a `u16`).
pub(crate) const MAX_RUN: usize = 4096;

/// The newtype-struct name that marks a sequence as a set; see [`crate::unordered`].
pub(crate) const UNORDERED: &str = "$joblib_hash::unordered";

/// The canonical quiet NaN every `f64` NaN is hashed as.
const NAN_F64: u64 = 0x7ff8_0000_0000_0000;
/// The canonical quiet NaN every `f32` NaN is hashed as.
const NAN_F32: u32 = 0x7fc0_0000;

/// An open run: consecutive primitive elements of one type in a sequence,
/// written as `RUN, type tag, count: u16, data` with no tag per element.
#[derive(Clone, Copy)]
struct Run {
    /// The elements' type tag; 0 when no run is open.
    tag: u8,
    /// Bytes per element.
    width: usize,
    /// Where the count goes in the sink's buffer.
    header: usize,
    /// The buffer length at which this chunk is full.
    limit: usize,
}

const CLOSED: Run = Run {
    tag: 0,
    width: 1,
    header: 0,
    limit: 0,
};

pub(crate) struct Encoder {
    /// Where bytes go now: the root sink, or a map entry's own.
    sink: Sink,
    /// The sinks of the values enclosing the current map entry or set element.
    parents: Vec<Sink>,
    /// Buffers of finished entry sinks, kept to avoid an allocation per entry.
    spare: Vec<Vec<u8>>,
    run: Run,
    algorithm: Algorithm,
}

impl Encoder {
    pub(crate) fn new(algorithm: Algorithm) -> Encoder {
        Encoder {
            sink: Sink::new(algorithm, Vec::new()),
            parents: Vec::new(),
            spare: Vec::new(),
            run: CLOSED,
            algorithm,
        }
    }

    pub(crate) fn digest(&self) -> Digest {
        debug_assert!(self.parents.is_empty() && self.run.tag == 0);
        self.sink.digest()
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.sink.write(bytes);
    }

    #[inline]
    fn write_tag(&mut self, tag: u8) {
        self.write(&[tag]);
    }

    #[inline]
    fn write_len(&mut self, len: usize) {
        // usize is at most 64 bits on every platform Rust supports.
        self.write(&(len as u64).to_le_bytes());
    }

    /// A name (of a type, variant or field): its length, then its UTF-8 bytes.
    fn write_name(&mut self, name: &str) {
        self.write_len(name.len());
        self.write(name.as_bytes());
    }

    #[inline]
    fn write_tagged<const N: usize>(&mut self, tag: u8, bytes: [u8; N]) {
        self.sink.make_room(1 + N);
        self.sink.buf.push(tag);
        self.sink.buf.extend_from_slice(&bytes);
    }

    /// Appends a primitive sequence element to the open run, or opens one.
    /// This is the hot loop of hashing a large array.
    #[inline(always)]
    fn push_run<const N: usize>(&mut self, tag: u8, bytes: [u8; N]) {
        if self.run.tag != tag || self.sink.buf.len() >= self.run.limit {
            self.start_run(tag, N);
        }
        self.sink.buf.extend_from_slice(&bytes);
    }

    #[inline(never)]
    fn start_run(&mut self, tag: u8, width: usize) {
        self.close_run();
        // The whole chunk fits in the buffer, so the sink never flushes while
        // the chunk's count is still to be written into its header.
        self.sink.make_room(4 + MAX_RUN * width);
        self.sink.buf.extend_from_slice(&[tag::RUN, tag, 0, 0]);
        let header = self.sink.buf.len() - 2;
        self.run = Run {
            tag,
            width,
            header,
            limit: header + 2 + MAX_RUN * width,
        };
    }

    /// Writes the open run's count into its header. Called before anything
    /// but a primitive element is written inside a sequence, and at its end.
    #[inline]
    fn close_run(&mut self) {
        if self.run.tag != 0 {
            let Run { width, header, .. } = self.run;
            let count = (self.sink.buf.len() - header - 2) / width;
            debug_assert!(count >= 1 && count <= MAX_RUN);
            self.sink.buf[header..header + 2].copy_from_slice(&(count as u16).to_le_bytes());
            self.run = CLOSED;
        }
    }

    /// Starts hashing a map entry or set element into a sink of its own.
    fn begin_entry(&mut self) {
        let buf = self.spare.pop().unwrap_or_default();
        let child = Sink::new(self.algorithm, buf);
        self.parents.push(std::mem::replace(&mut self.sink, child));
    }

    /// Finishes the entry begun last and returns its digest.
    fn end_entry(&mut self) -> Digest {
        let parent = self
            .parents
            .pop()
            .unwrap_or_else(|| Sink::new(self.algorithm, Vec::new()));
        let child = std::mem::replace(&mut self.sink, parent);
        let (digest, buf) = child.finish();
        self.spare.push(buf);
        digest
    }

    /// A map or set: its tag, the entry count, then the entries' digests in
    /// ascending order, which makes the result independent of iteration order.
    fn write_unordered(&mut self, tag: u8, mut digests: Vec<Digest>) {
        digests.sort_unstable();
        self.write_tag(tag);
        self.write_len(digests.len());
        for d in &digests {
            self.write(d.as_bytes());
        }
    }
}

/// Where a value stands, which decides how it is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    /// Anywhere but directly inside a sequence or tuple.
    Value,
    /// An element of a sequence or tuple: primitives join a run.
    Element,
    /// Inside the `unordered` marker: a sequence is written as a set.
    Unordered,
}

/// The serde `Serializer` of the encoding. It is a thin handle: `Position`
/// is known where a `Ser` is made, so the compiler folds the checks away.
pub(crate) struct Ser<'a> {
    enc: &'a mut Encoder,
    pos: Position,
}

impl<'a> Ser<'a> {
    pub(crate) fn new(enc: &'a mut Encoder) -> Ser<'a> {
        Ser {
            enc,
            pos: Position::Value,
        }
    }

    /// The encoder, with any open run closed: for everything but primitives.
    #[inline]
    fn enter(self) -> &'a mut Encoder {
        if self.pos == Position::Element {
            self.enc.close_run();
        }
        self.enc
    }

    #[inline(always)]
    fn primitive<const N: usize>(self, tag: u8, bytes: [u8; N]) -> Result<(), Error> {
        if self.pos == Position::Element {
            self.enc.push_run(tag, bytes);
        } else {
            self.enc.write_tagged(tag, bytes);
        }
        Ok(())
    }

    fn sequence(self, tag: u8) -> Seq<'a> {
        let unordered = self.pos == Position::Unordered;
        let enc = self.enter();
        if unordered {
            Seq {
                enc,
                set: Some(Vec::new()),
            }
        } else {
            enc.write_tag(tag);
            Seq { enc, set: None }
        }
    }
}

/// Whether `I` is a set type whose serde impl hands over its elements in an
/// arbitrary order. serde's data model has no set kind (sets serialize as
/// sequences), so the standard set types are recognised by name.
fn is_set_type<I>() -> bool {
    let name = std::any::type_name::<I>();
    let name = name.trim_start_matches(['&', ' ']).trim_start_matches("mut ");
    let path = name.split('<').next().unwrap_or(name);
    let last = path.rsplit("::").next().unwrap_or(path);
    matches!(last, "HashSet" | "BTreeSet" | "IndexSet")
}

fn canonical_f64(v: f64) -> u64 {
    if v.is_nan() { NAN_F64 } else { v.to_bits() }
}

fn canonical_f32(v: f32) -> u32 {
    if v.is_nan() { NAN_F32 } else { v.to_bits() }
}

impl<'a> ser::Serializer for Ser<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Seq<'a>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Fields<'a>;
    type SerializeStructVariant = Fields<'a>;

    fn is_human_readable(&self) -> bool {
        false
    }

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.primitive(tag::BOOL, [u8::from(v)])
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.primitive(tag::I8, v.to_le_bytes())
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.primitive(tag::I16, v.to_le_bytes())
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.primitive(tag::I32, v.to_le_bytes())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.primitive(tag::I64, v.to_le_bytes())
    }
    #[inline]
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.primitive(tag::I128, v.to_le_bytes())
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.primitive(tag::U8, v.to_le_bytes())
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.primitive(tag::U16, v.to_le_bytes())
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.primitive(tag::U32, v.to_le_bytes())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.primitive(tag::U64, v.to_le_bytes())
    }
    #[inline]
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.primitive(tag::U128, v.to_le_bytes())
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.primitive(tag::F32, canonical_f32(v).to_le_bytes())
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.primitive(tag::F64, canonical_f64(v).to_le_bytes())
    }
    #[inline]
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.primitive(tag::CHAR, u32::from(v).to_le_bytes())
    }

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        let enc = self.enter();
        enc.write_tag(tag::STR);
        enc.write_len(v.len());
        enc.write(v.as_bytes());
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        let enc = self.enter();
        enc.write_tag(tag::BYTES);
        enc.write_len(v.len());
        enc.write(v);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Error> {
        self.enter().write_tag(tag::NONE);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        let enc = self.enter();
        enc.write_tag(tag::SOME);
        value.serialize(Ser::new(enc))
    }

    fn serialize_unit(self) -> Result<(), Error> {
        self.enter().write_tag(tag::UNIT);
        Ok(())
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<(), Error> {
        let enc = self.enter();
        enc.write_tag(tag::UNIT_STRUCT);
        enc.write_name(name);
        Ok(())
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        let enc = self.enter();
        enc.write_tag(tag::UNIT_VARIANT);
        enc.write_name(name);
        enc.write_name(variant);
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let enc = self.enter();
        if name == UNORDERED {
            return value.serialize(Ser {
                enc,
                pos: Position::Unordered,
            });
        }
        enc.write_tag(tag::NEWTYPE_STRUCT);
        enc.write_name(name);
        value.serialize(Ser::new(enc))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let enc = self.enter();
        enc.write_tag(tag::NEWTYPE_VARIANT);
        enc.write_name(name);
        enc.write_name(variant);
        value.serialize(Ser::new(enc))
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Seq<'a>, Error> {
        Ok(self.sequence(tag::SEQ))
    }

    fn serialize_tuple(self, _len: usize) -> Result<Seq<'a>, Error> {
        Ok(self.sequence(tag::TUPLE))
    }

    fn serialize_tuple_struct(self, name: &'static str, _len: usize) -> Result<Seq<'a>, Error> {
        let enc = self.enter();
        enc.write_tag(tag::TUPLE_STRUCT);
        enc.write_name(name);
        Ok(Seq { enc, set: None })
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Seq<'a>, Error> {
        let enc = self.enter();
        enc.write_tag(tag::TUPLE_VARIANT);
        enc.write_name(name);
        enc.write_name(variant);
        Ok(Seq { enc, set: None })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Map<'a>, Error> {
        Ok(Map {
            enc: self.enter(),
            digests: Vec::with_capacity(len.unwrap_or(0)),
        })
    }

    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Fields<'a>, Error> {
        let enc = self.enter();
        enc.write_tag(tag::STRUCT);
        enc.write_name(name);
        Ok(Fields { enc })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Fields<'a>, Error> {
        let enc = self.enter();
        enc.write_tag(tag::STRUCT_VARIANT);
        enc.write_name(name);
        enc.write_name(variant);
        Ok(Fields { enc })
    }

    fn collect_seq<I>(self, iter: I) -> Result<(), Error>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let pos = if is_set_type::<I>() || self.pos == Position::Unordered {
            Position::Unordered
        } else {
            Position::Value
        };
        let mut seq = Ser {
            enc: self.enter(),
            pos,
        }
        .sequence(tag::SEQ);
        iter.into_iter()
            .try_for_each(|item| ser::SerializeSeq::serialize_element(&mut seq, &item))?;
        ser::SerializeSeq::end(seq)
    }
}

/// Sequences and tuples of every kind; with `set`, an unordered set.
pub(crate) struct Seq<'a> {
    enc: &'a mut Encoder,
    set: Option<Vec<Digest>>,
}

impl Seq<'_> {
    #[inline(always)]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        match &mut self.set {
            None => value.serialize(Ser {
                enc: &mut *self.enc,
                pos: Position::Element,
            }),
            Some(digests) => {
                self.enc.begin_entry();
                value.serialize(Ser::new(&mut *self.enc))?;
                digests.push(self.enc.end_entry());
                Ok(())
            }
        }
    }

    fn finish(self) -> Result<(), Error> {
        match self.set {
            None => {
                self.enc.close_run();
                self.enc.write_tag(tag::END);
            }
            Some(digests) => self.enc.write_unordered(tag::SET, digests),
        }
        Ok(())
    }
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTuple for Seq<'_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleStruct for Seq<'_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl ser::SerializeTupleVariant for Seq<'_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

/// Maps of every kind: each entry is hashed on its own.
pub(crate) struct Map<'a> {
    enc: &'a mut Encoder,
    digests: Vec<Digest>,
}

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.enc.begin_entry();
        key.serialize(Ser::new(&mut *self.enc))
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        value.serialize(Ser::new(&mut *self.enc))?;
        self.digests.push(self.enc.end_entry());
        Ok(())
    }

    fn end(self) -> Result<(), Error> {
        self.enc.write_unordered(tag::MAP, self.digests);
        Ok(())
    }
}

/// Structs and struct variants: `FIELD, name, value` per field, then `END`.
pub(crate) struct Fields<'a> {
    enc: &'a mut Encoder,
}

impl Fields<'_> {
    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.enc.write_tag(tag::FIELD);
        self.enc.write_name(key);
        value.serialize(Ser::new(&mut *self.enc))
    }
}

impl ser::SerializeStruct for Fields<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.enc.write_tag(tag::END);
        Ok(())
    }
}

impl ser::SerializeStructVariant for Fields<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.enc.write_tag(tag::END);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        let mut enc = Encoder::new(Algorithm::Xxh3_128);
        value.serialize(Ser::new(&mut enc)).unwrap();
        enc.sink.buf.clone()
    }

    /// The bytes of a few values, spelled out: the specification in
    /// `docs/hashing.md` says the same.
    #[test]
    fn encoding_is_as_specified() {
        assert_eq!(encode(&7u16), [tag::U16, 7, 0]);
        assert_eq!(encode(&-1i8), [tag::I8, 0xff]);
        assert_eq!(encode(&true), [tag::BOOL, 1]);
        assert_eq!(encode(&'A'), [tag::CHAR, 65, 0, 0, 0]);
        assert_eq!(encode("ab"), [tag::STR, 2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b']);
        assert_eq!(encode(&Some(())), [tag::SOME, tag::UNIT]);
        assert_eq!(encode(&None::<u8>), [tag::NONE]);
        assert_eq!(
            encode(&vec![1u8, 2, 3]),
            [tag::SEQ, tag::RUN, tag::U8, 3, 0, 1, 2, 3, tag::END]
        );
        assert_eq!(
            encode(&(1u8, 2u16)),
            [tag::TUPLE, tag::RUN, tag::U8, 1, 0, 1, tag::RUN, tag::U16, 1, 0, 2, 0, tag::END]
        );
        assert_eq!(
            encode(&vec![Some(1u8)]),
            [tag::SEQ, tag::SOME, tag::U8, 1, tag::END]
        );
        assert_eq!(encode(&f64::NAN), encode(&-f64::NAN));
        assert_eq!(encode(&f32::from_bits(0x7fc0_0001)), encode(&f32::NAN));
    }

    #[test]
    fn runs_split_into_chunks_of_max_run() {
        let v = vec![9u8; MAX_RUN + 1];
        let bytes = encode(&v);
        let expected_len = 1 + (4 + MAX_RUN) + (4 + 1) + 1;
        assert_eq!(bytes.len(), expected_len);
        assert_eq!(bytes[1..4], [tag::RUN, tag::U8, 0x00]);
        assert_eq!(bytes[4], 0x10); // 4096 = 0x1000, little-endian
        let second = 1 + 4 + MAX_RUN;
        assert_eq!(bytes[second..second + 4], [tag::RUN, tag::U8, 1, 0]);
    }

    #[test]
    fn set_types_are_recognised_by_name() {
        assert!(is_set_type::<&std::collections::HashSet<u8>>());
        assert!(is_set_type::<&std::collections::BTreeSet<String>>());
        assert!(!is_set_type::<&Vec<u8>>());
        assert!(!is_set_type::<&[u8]>());
        assert!(!is_set_type::<&std::collections::VecDeque<u8>>());
    }
}
