//! Sequences and tuples, and the serializer for their elements.
//!
//! A run of consecutive primitive elements of one type is written as chunks
//! `RUN, type tag, count: u16, data` of at most [`MAX_RUN`] elements, with no
//! tag per element. This is the hot loop of hashing a large array, so the
//! run's cursor lives in [`Seq`], which is a local variable of the loop that
//! drives it (`collect_seq` here, or a type's own `Serialize` impl): the
//! compiler can then keep the cursor in a register instead of writing it back
//! to memory for every element.

use serde::ser::{self, Serialize, Serializer};

use crate::Error;
use crate::bulk::{Wire, WireKind, grab};
use crate::encoder::{Encoder, primitive_methods, tag};
use crate::ser::{Fields, Map, Ser, write_value};
use crate::sink::{CAPACITY, MASK};

/// The most elements one run chunk holds: a whole chunk of the widest
/// primitive (16 bytes) and its header fit in the sink's buffer.
pub(crate) const MAX_RUN: usize = 1024;
const _: () = assert!(4 + MAX_RUN * 16 <= CAPACITY && MAX_RUN <= u16::MAX as usize);

/// An open run chunk, or none.
///
/// The run's type tag rides in the high bits of its cursor (`key = tag << 48
/// | pos`), so the hot check "same type, chunk not full" is one subtraction
/// and one comparison: `key - (tag << 48) < limit` fails both when the chunk
/// is full and when the tag differs (the difference is then at least 2^48,
/// or wraps around).
#[derive(Clone, Copy)]
struct Run {
    /// `tag << TAG_SHIFT | pos`, where `pos` is where the next element goes
    /// in the sink's buffer; 0 when no run is open.
    key: u64,
    /// The position at which the chunk is full; 0 when no run is open.
    limit: u64,
    /// Bytes per element.
    width: usize,
    /// Where the chunk's count goes in the sink's buffer.
    header: usize,
}

const TAG_SHIFT: u32 = 48;

const CLOSED: Run = Run {
    key: 0,
    limit: 0,
    width: 1,
    header: 0,
};

impl Run {
    fn is_open(&self) -> bool {
        self.limit != 0
    }

    /// Where the next element goes.
    fn pos(&self) -> usize {
        (self.key & ((1 << TAG_SHIFT) - 1)) as usize
    }
}

/// Sequences and tuples of every kind; with `set`, an unordered set.
///
/// Only scalars live here (a set's digests are kept by the encoder), so that
/// nothing of a `Seq` escapes to an out-of-line call and the optimizer can
/// keep it in registers.
pub(crate) struct Seq<'a> {
    enc: &'a mut Encoder,
    set: bool,
    run: Run,
}

impl<'a> Seq<'a> {
    /// An ordered sequence: its tag, the type and variant names if any, then
    /// the elements and `END`. Inlined, like `set`, so the caller's `Seq` is
    /// built in place and its run cursor can be kept in registers.
    #[inline(always)]
    pub(crate) fn ordered(
        enc: &'a mut Encoder,
        tag: u8,
        names: Option<(&str, Option<&str>)>,
    ) -> Seq<'a> {
        write_header(enc, tag, names);
        Seq {
            enc,
            set: false,
            run: CLOSED,
        }
    }

    /// A set: each element is hashed on its own, as a map entry is.
    #[inline(always)]
    pub(crate) fn set(enc: &'a mut Encoder) -> Seq<'a> {
        enc.begin_set();
        Seq {
            enc,
            set: true,
            run: CLOSED,
        }
    }

    #[inline(always)]
    fn push<const N: usize>(&mut self, tag: u8, bytes: [u8; N]) {
        let mut pos = self.run.key.wrapping_sub(u64::from(tag) << TAG_SHIFT);
        if pos >= self.run.limit {
            self.run = restart_run(self.enc, self.run, tag, N);
            pos = self.run.pos() as u64;
        }
        // `pos < limit <= CAPACITY`, so the mask changes nothing; it only
        // shows the compiler that the slice is in bounds.
        let at = pos as usize & MASK;
        self.enc.sink.buf[at..at + N].copy_from_slice(&bytes);
        self.run.key += N as u64;
    }

    /// Appends every element of `items`, primitives of wire type `W` as
    /// `wire` reads them, filling each run chunk's free room in one tight
    /// loop. The bytes are those `element` would write one at a time; an
    /// item `wire` cannot read goes through `element`.
    pub(crate) fn push_all<W: Wire, T: Serialize>(
        &mut self,
        mut items: impl Iterator<Item = T>,
        wire: impl Fn(&T) -> Option<W>,
    ) -> Result<(), Error> {
        debug_assert!(!self.set);
        // A chunk is opened only with an element in hand, so none is empty.
        while let Some(item) = items.next() {
            let Some(first) = wire(&item) else {
                self.element(&item)?;
                continue;
            };
            let mut pos = self.run.key.wrapping_sub(u64::from(W::TAG) << TAG_SHIFT);
            if pos >= self.run.limit {
                self.run = restart_run(self.enc, self.run, W::TAG, W::WIDTH);
                pos = self.run.pos() as u64;
            }
            // The run is of `W`, so its free room is a whole number of elements.
            let room = &mut self.enc.sink.buf[pos as usize..self.run.limit as usize];
            let (head, rest) = room.split_at_mut(W::WIDTH);
            first.put(head);
            let mut count = 1;
            let mut stray = None;
            // `zip` asks the chunks first, so no item is taken once they end.
            for (slot, item) in rest.chunks_exact_mut(W::WIDTH).zip(items.by_ref()) {
                match wire(&item) {
                    Some(value) => value.put(slot),
                    None => {
                        stray = Some(item);
                        break;
                    }
                }
                count += 1;
            }
            self.run.key += (count * W::WIDTH) as u64;
            if let Some(item) = stray {
                self.element(&item)?;
            }
        }
        Ok(())
    }

    /// [`Seq::push_all`] for items that serialize as primitives of `kind`.
    pub(crate) fn push_wire<T: Serialize>(
        &mut self,
        kind: WireKind,
        items: impl Iterator<Item = T>,
    ) -> Result<(), Error> {
        match kind {
            WireKind::Bool => self.push_all(items, grab::<bool, T>),
            WireKind::I8 => self.push_all(items, grab::<i8, T>),
            WireKind::I16 => self.push_all(items, grab::<i16, T>),
            WireKind::I32 => self.push_all(items, grab::<i32, T>),
            WireKind::I64 => self.push_all(items, grab::<i64, T>),
            WireKind::I128 => self.push_all(items, grab::<i128, T>),
            WireKind::U8 => self.push_all(items, grab::<u8, T>),
            WireKind::U16 => self.push_all(items, grab::<u16, T>),
            WireKind::U32 => self.push_all(items, grab::<u32, T>),
            WireKind::U64 => self.push_all(items, grab::<u64, T>),
            WireKind::U128 => self.push_all(items, grab::<u128, T>),
            WireKind::F32 => self.push_all(items, grab::<f32, T>),
            WireKind::F64 => self.push_all(items, grab::<f64, T>),
            WireKind::Char => self.push_all(items, grab::<char, T>),
        }
    }

    #[inline]
    fn close_run(&mut self) {
        if self.run.is_open() {
            close(self.enc, self.run);
            self.run = CLOSED;
        }
    }

    #[inline(always)]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if self.set {
            // Only the encoder goes to the out-of-line call: were `self` to
            // escape, its run cursor could no longer live in a register.
            return set_element(self.enc, value);
        }
        #[cfg(feature = "ndarray")]
        if crate::array::may_be_array::<T>() {
            self.close_run();
            if let Some(result) = crate::array::write(self.enc, value) {
                return result;
            }
        }
        value.serialize(Elem { seq: self })
    }

    pub(crate) fn finish(mut self) -> Result<(), Error> {
        if self.set {
            self.enc.end_set();
        } else {
            self.close_run();
            self.enc.write_tag(tag::END);
        }
        Ok(())
    }
}

fn write_header(enc: &mut Encoder, tag: u8, names: Option<(&str, Option<&str>)>) {
    enc.write_tag(tag);
    if let Some((name, variant)) = names {
        enc.write_name(name);
        if let Some(variant) = variant {
            enc.write_name(variant);
        }
    }
}

/// Hashes a set element on its own and keeps its digest.
#[cold]
#[inline(never)]
fn set_element<T: Serialize + ?Sized>(enc: &mut Encoder, value: &T) -> Result<(), Error> {
    enc.begin_entry();
    write_value(enc, value)?;
    let digest = enc.end_entry();
    enc.push_set_element(digest);
    Ok(())
}

/// Closes `open` if it is a run, and opens a new chunk for `tag`. Takes and
/// returns the run by value so that the caller's copy is never borrowed.
#[cold]
#[inline(never)]
fn restart_run(enc: &mut Encoder, open: Run, tag: u8, width: usize) -> Run {
    if open.is_open() {
        close(enc, open);
    }
    // The whole chunk fits, so the sink never flushes while its count is
    // still to be written into its header.
    enc.sink.reserve(4 + MAX_RUN * width);
    let at = enc.sink.fill;
    enc.sink.buf[at..at + 4].copy_from_slice(&[tag::RUN, tag, 0, 0]);
    let pos = at + 4;
    enc.sink.fill = pos;
    Run {
        key: (u64::from(tag) << TAG_SHIFT) | pos as u64,
        limit: (pos + MAX_RUN * width) as u64,
        width,
        header: at + 2,
    }
}

/// Writes the run's count into its header and hands its bytes to the sink.
fn close(enc: &mut Encoder, run: Run) {
    let pos = run.pos();
    let count = (pos - run.header - 2) / run.width;
    debug_assert!((1..=MAX_RUN).contains(&count));
    enc.sink.buf[run.header..run.header + 2].copy_from_slice(&(count as u16).to_le_bytes());
    enc.sink.fill = pos;
}

/// The four sequence-like serde traits all push elements and end the same way.
macro_rules! sequence_impl {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Seq<'_> {
            type Ok = ();
            type Error = Error;
            #[inline(always)]
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
                self.element(value)
            }
            fn end(self) -> Result<(), Error> {
                self.finish()
            }
        }
    )*};
}

sequence_impl!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// The serializer for one element of an ordered sequence: primitives join
/// the run; anything else closes it and is written as a value.
struct Elem<'s, 'a> {
    seq: &'s mut Seq<'a>,
}

impl<'s> Elem<'s, '_> {
    #[inline(always)]
    fn primitive<const N: usize>(self, tag: u8, bytes: [u8; N]) -> Result<(), Error> {
        self.seq.push(tag, bytes);
        Ok(())
    }

    /// The value serializer, with the run closed.
    fn value(self) -> Ser<'s> {
        let seq = self.seq;
        seq.close_run();
        Ser::new(&mut *seq.enc)
    }
}

impl<'s> Serializer for Elem<'s, '_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Seq<'s>;
    type SerializeTuple = Seq<'s>;
    type SerializeTupleStruct = Seq<'s>;
    type SerializeTupleVariant = Seq<'s>;
    type SerializeMap = Map<'s>;
    type SerializeStruct = Fields<'s>;
    type SerializeStructVariant = Fields<'s>;

    fn is_human_readable(&self) -> bool {
        false
    }

    primitive_methods!();

    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.value().serialize_str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.value().serialize_bytes(v)
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.value().serialize_none()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.value().serialize_some(value)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.value().serialize_unit()
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<(), Error> {
        self.value().serialize_unit_struct(name)
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        self.value().serialize_unit_variant(name, index, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.value().serialize_newtype_struct(name, value)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.value()
            .serialize_newtype_variant(name, index, variant, value)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq<'s>, Error> {
        self.value().serialize_seq(len)
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'s>, Error> {
        self.value().serialize_tuple(len)
    }
    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<Seq<'s>, Error> {
        self.value().serialize_tuple_struct(name, len)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Seq<'s>, Error> {
        self.value()
            .serialize_tuple_variant(name, index, variant, len)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Map<'s>, Error> {
        self.value().serialize_map(len)
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Fields<'s>, Error> {
        self.value().serialize_struct(name, len)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Fields<'s>, Error> {
        self.value()
            .serialize_struct_variant(name, index, variant, len)
    }
    fn collect_seq<I>(self, iter: I) -> Result<(), Error>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        self.value().collect_seq(iter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Algorithm;

    fn bytes(fill: impl FnOnce(&mut Seq<'_>)) -> Vec<u8> {
        let mut enc = Encoder::new(Algorithm::Xxh3_128);
        let mut seq = Seq::ordered(&mut enc, tag::SEQ, None);
        fill(&mut seq);
        seq.finish().unwrap();
        enc.sink.buf[..enc.sink.fill].to_vec()
    }

    /// Items the bulk loop cannot read go through `element`, between the
    /// chunks around them, and the bytes stay those of the element path.
    #[test]
    fn push_all_hands_unreadable_items_to_the_element_path() {
        let items: Vec<u32> = (0..2500).collect();
        let one_by_one = bytes(|seq| {
            for x in &items {
                seq.element(x).unwrap();
            }
        });
        let bulk = bytes(|seq| {
            seq.push_all(items.iter(), |x| (**x % 700 != 3).then_some(**x))
                .unwrap()
        });
        assert_eq!(bulk, one_by_one);
        // And items of another type in between close the run and open it again.
        let mixed = bytes(|seq| {
            seq.push_all(items.iter(), |x| (**x % 700 != 3).then_some(u64::from(**x)))
                .unwrap()
        });
        let mixed_one_by_one = bytes(|seq| {
            for x in &items {
                if x % 700 == 3 {
                    seq.element(x).unwrap();
                } else {
                    seq.element(&u64::from(*x)).unwrap();
                }
            }
        });
        assert_eq!(mixed, mixed_one_by_one);
        assert_ne!(mixed, one_by_one);
    }
}
