//! The canonical encoding of serde's data model, written into a [`Sink`].
//!
//! Every value starts with a one-byte tag naming its kind; lengths and
//! numbers are little-endian and of fixed width, so the bytes do not depend
//! on the machine. `docs/hashing.md` is the specification; the tag values
//! below are part of every digest, so changing one is a breaking change.
//!
//! The serde side is split in two: [`crate::ser`] writes a value anywhere but
//! directly inside a sequence, [`crate::seq`] writes sequences and their
//! elements, where runs of primitives are packed without per-element tags.

use crate::sink::{Buffer, Sink, new_buffer};
use crate::{Algorithm, Digest};

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

/// The newtype-struct name that marks a sequence as a set; see [`crate::unordered`].
pub(crate) const UNORDERED: &str = "$joblib_hash::unordered";

/// The canonical quiet NaN every `f64` NaN is hashed as.
const NAN_F64: u64 = 0x7ff8_0000_0000_0000;
/// The canonical quiet NaN every `f32` NaN is hashed as.
const NAN_F32: u32 = 0x7fc0_0000;

#[inline(always)]
pub(crate) fn canonical_f64(v: f64) -> u64 {
    if v.is_nan() { NAN_F64 } else { v.to_bits() }
}

#[inline(always)]
pub(crate) fn canonical_f32(v: f32) -> u32 {
    if v.is_nan() { NAN_F32 } else { v.to_bits() }
}

/// The serde methods for primitives, each turning the value into its tag and
/// little-endian bytes and handing them to `self.primitive(tag, bytes)`.
/// Shared by the value and the element serializers, which differ only in
/// what `primitive` does with them.
macro_rules! primitive_methods {
    () => {
        #[inline(always)]
        fn serialize_bool(self, v: bool) -> Result<(), Error> {
            self.primitive(tag::BOOL, [u8::from(v)])
        }
        #[inline(always)]
        fn serialize_i8(self, v: i8) -> Result<(), Error> {
            self.primitive(tag::I8, v.to_le_bytes())
        }
        #[inline(always)]
        fn serialize_i16(self, v: i16) -> Result<(), Error> {
            self.primitive(tag::I16, v.to_le_bytes())
        }
        #[inline(always)]
        fn serialize_i32(self, v: i32) -> Result<(), Error> {
            self.primitive(tag::I32, v.to_le_bytes())
        }
        #[inline(always)]
        fn serialize_i64(self, v: i64) -> Result<(), Error> {
            self.primitive(tag::I64, v.to_le_bytes())
        }
        #[inline(always)]
        fn serialize_i128(self, v: i128) -> Result<(), Error> {
            self.primitive(tag::I128, v.to_le_bytes())
        }
        #[inline(always)]
        fn serialize_u8(self, v: u8) -> Result<(), Error> {
            self.primitive(tag::U8, v.to_le_bytes())
        }
        #[inline(always)]
        fn serialize_u16(self, v: u16) -> Result<(), Error> {
            self.primitive(tag::U16, v.to_le_bytes())
        }
        #[inline(always)]
        fn serialize_u32(self, v: u32) -> Result<(), Error> {
            self.primitive(tag::U32, v.to_le_bytes())
        }
        #[inline(always)]
        fn serialize_u64(self, v: u64) -> Result<(), Error> {
            self.primitive(tag::U64, v.to_le_bytes())
        }
        #[inline(always)]
        fn serialize_u128(self, v: u128) -> Result<(), Error> {
            self.primitive(tag::U128, v.to_le_bytes())
        }
        #[inline(always)]
        fn serialize_f32(self, v: f32) -> Result<(), Error> {
            self.primitive(tag::F32, $crate::encoder::canonical_f32(v).to_le_bytes())
        }
        #[inline(always)]
        fn serialize_f64(self, v: f64) -> Result<(), Error> {
            self.primitive(tag::F64, $crate::encoder::canonical_f64(v).to_le_bytes())
        }
        #[inline(always)]
        fn serialize_char(self, v: char) -> Result<(), Error> {
            self.primitive(tag::CHAR, u32::from(v).to_le_bytes())
        }
    };
}
pub(crate) use primitive_methods;

pub(crate) struct Encoder {
    /// Where bytes go now: the root sink, or a map entry's own.
    pub(crate) sink: Sink,
    /// The sinks of the values enclosing the current map entry or set element.
    parents: Vec<Sink>,
    /// Buffers of finished entry sinks, kept to avoid an allocation per entry.
    spare: Vec<Buffer>,
    /// The element digests of the sets being written, innermost last.
    sets: Vec<Digests>,
    algorithm: Algorithm,
}

impl Encoder {
    pub(crate) fn new(algorithm: Algorithm) -> Encoder {
        Encoder {
            sink: Sink::new(algorithm, new_buffer()),
            parents: Vec::new(),
            spare: Vec::new(),
            sets: Vec::new(),
            algorithm,
        }
    }

    pub(crate) fn digest(&self) -> Digest {
        debug_assert!(self.parents.is_empty());
        self.sink.digest()
    }

    #[inline]
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        self.sink.write(bytes);
    }

    #[inline]
    pub(crate) fn write_tag(&mut self, tag: u8) {
        self.write(&[tag]);
    }

    #[inline]
    pub(crate) fn write_len(&mut self, len: usize) {
        // usize is at most 64 bits on every platform Rust supports.
        self.write(&(len as u64).to_le_bytes());
    }

    /// A name (of a type, variant or field): its length, then its UTF-8 bytes.
    pub(crate) fn write_name(&mut self, name: &str) {
        self.write_len(name.len());
        self.write(name.as_bytes());
    }

    /// A primitive outside a run: its tag, then its little-endian bytes.
    #[inline]
    pub(crate) fn write_tagged<const N: usize>(&mut self, tag: u8, bytes: [u8; N]) {
        self.sink.reserve(1 + N);
        let at = self.sink.fill;
        self.sink.buf[at] = tag;
        self.sink.buf[at + 1..at + 1 + N].copy_from_slice(&bytes);
        self.sink.fill = at + 1 + N;
    }

    /// Starts hashing a map entry or set element into a sink of its own.
    pub(crate) fn begin_entry(&mut self) {
        let buf = self.spare.pop().unwrap_or_else(new_buffer);
        let child = Sink::new(self.algorithm, buf);
        self.parents.push(std::mem::replace(&mut self.sink, child));
    }

    /// Finishes the entry begun last and returns its digest.
    pub(crate) fn end_entry(&mut self) -> Digest {
        let parent = self
            .parents
            .pop()
            .unwrap_or_else(|| Sink::new(self.algorithm, new_buffer()));
        let child = std::mem::replace(&mut self.sink, parent);
        let (digest, buf) = child.finish();
        self.spare.push(buf);
        digest
    }

    /// Starts a set: its elements' digests are collected until `end_set`.
    pub(crate) fn begin_set(&mut self) {
        let digests = self.digests(0);
        self.sets.push(digests);
    }

    pub(crate) fn push_set_element(&mut self, digest: Digest) {
        if let Some(digests) = self.sets.last_mut() {
            digests.push(digest);
        }
    }

    /// Writes the set begun last.
    pub(crate) fn end_set(&mut self) {
        let digests = self.sets.pop().unwrap_or_else(|| self.digests(0));
        self.write_unordered(tag::SET, digests);
    }

    pub(crate) fn digests(&self, capacity: usize) -> Digests {
        match self.algorithm {
            Algorithm::Xxh3_128 => Digests::Xxh3(Vec::with_capacity(capacity)),
            #[cfg(feature = "blake3")]
            Algorithm::Blake3 => Digests::Blake3(Vec::with_capacity(capacity)),
        }
    }

    /// A map or set: its tag, the entry count, then the entries' digests in
    /// ascending order, which makes the result independent of iteration order.
    pub(crate) fn write_unordered(&mut self, tag: u8, digests: Digests) {
        self.write_tag(tag);
        match digests {
            Digests::Xxh3(mut all) => {
                // A digest's bytes are its value big-endian, so sorting the
                // numbers sorts the bytes.
                all.sort_unstable();
                self.write_len(all.len());
                for d in all {
                    self.write(&d.to_be_bytes());
                }
            }
            #[cfg(feature = "blake3")]
            Digests::Blake3(mut all) => {
                all.sort_unstable();
                self.write_len(all.len());
                for d in all {
                    self.write(&d);
                }
            }
        }
    }
}

/// The digests of a map's entries or a set's elements, in a form that sorts
/// fast (as integers rather than byte strings).
pub(crate) enum Digests {
    Xxh3(Vec<u128>),
    #[cfg(feature = "blake3")]
    Blake3(Vec<[u8; 32]>),
}

impl Digests {
    pub(crate) fn push(&mut self, digest: Digest) {
        let bytes = digest.as_bytes();
        match self {
            Digests::Xxh3(all) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(&bytes[..16]);
                all.push(u128::from_be_bytes(b));
            }
            #[cfg(feature = "blake3")]
            Digests::Blake3(all) => {
                let mut b = [0u8; 32];
                b.copy_from_slice(&bytes[..32]);
                all.push(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;
    use crate::seq::MAX_RUN;
    use crate::ser::{Ser, is_set_type};

    fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        let mut enc = Encoder::new(Algorithm::Xxh3_128);
        value.serialize(Ser::new(&mut enc)).unwrap();
        enc.sink.buf[..enc.sink.fill].to_vec()
    }

    /// The bytes of a few values, spelled out: `docs/hashing.md` says the same.
    #[test]
    fn encoding_is_as_specified() {
        assert_eq!(encode(&7u16), [tag::U16, 7, 0]);
        assert_eq!(encode(&-1i8), [tag::I8, 0xff]);
        assert_eq!(encode(&true), [tag::BOOL, 1]);
        assert_eq!(encode(&'A'), [tag::CHAR, 65, 0, 0, 0]);
        assert_eq!(encode(&1.0f32), [tag::F32, 0, 0, 0x80, 0x3f]);
        assert_eq!(encode("ab"), [tag::STR, 2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b']);
        assert_eq!(encode(&Some(())), [tag::SOME, tag::UNIT]);
        assert_eq!(encode(&None::<u8>), [tag::NONE]);
        assert_eq!(
            encode(&vec![1u8, 2, 3]),
            [tag::SEQ, tag::RUN, tag::U8, 3, 0, 1, 2, 3, tag::END]
        );
        assert_eq!(encode(&Vec::<u8>::new()), [tag::SEQ, tag::END]);
        assert_eq!(
            encode(&(1u8, 2u16)),
            [
                tag::TUPLE,
                tag::RUN,
                tag::U8,
                1,
                0,
                1,
                tag::RUN,
                tag::U16,
                1,
                0,
                2,
                0,
                tag::END
            ]
        );
        assert_eq!(
            encode(&vec![Some(1u8)]),
            [tag::SEQ, tag::SOME, tag::U8, 1, tag::END]
        );
        #[derive(Serialize)]
        struct P {
            x: u8,
        }
        assert_eq!(
            encode(&P { x: 5 }),
            [
                tag::STRUCT,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                b'P',
                tag::FIELD,
                1,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                b'x',
                tag::U8,
                5,
                tag::END
            ]
        );
    }

    #[test]
    fn nan_is_canonical_and_zero_signs_differ() {
        assert_eq!(encode(&f64::NAN), encode(&-f64::NAN));
        assert_eq!(
            encode(&f64::from_bits(0x7ff0_0000_0000_0001)),
            encode(&f64::NAN)
        );
        assert_eq!(encode(&f32::from_bits(0x7fc0_0001)), encode(&f32::NAN));
        assert_eq!(encode(&vec![f64::NAN]), encode(&vec![-f64::NAN]));
        assert_ne!(encode(&0.0f64), encode(&-0.0f64));
    }

    #[test]
    fn runs_split_into_chunks_of_max_run() {
        let bytes = encode(&vec![9u8; MAX_RUN + 1]);
        assert_eq!(bytes.len(), 1 + (4 + MAX_RUN) + (4 + 1) + 1);
        let full = (MAX_RUN as u16).to_le_bytes();
        assert_eq!(bytes[1..5], [tag::RUN, tag::U8, full[0], full[1]]);
        assert_eq!(MAX_RUN, 1024, "the chunk size is part of every digest");
        let second = 1 + 4 + MAX_RUN;
        assert_eq!(bytes[second..second + 4], [tag::RUN, tag::U8, 1, 0]);
        assert_eq!(bytes.last(), Some(&tag::END));
    }

    #[test]
    fn large_values_stream_through_flushes() {
        // Bigger than the buffer: parts are flushed to the streaming state,
        // and the digest equals the one-shot digest of the same bytes.
        let v: Vec<u64> = (0..200_000).collect();
        let mut enc = Encoder::new(Algorithm::Xxh3_128);
        v.serialize(Ser::new(&mut enc)).unwrap();
        let mut expected = vec![tag::SEQ];
        for chunk in v.chunks(MAX_RUN) {
            expected.extend_from_slice(&[tag::RUN, tag::U64]);
            expected.extend_from_slice(&(chunk.len() as u16).to_le_bytes());
            for x in chunk {
                expected.extend_from_slice(&x.to_le_bytes());
            }
        }
        expected.push(tag::END);
        let one_shot = Digest::from_xxh3(twox_hash::XxHash3_128::oneshot(&expected));
        assert_eq!(enc.digest(), one_shot);
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
