//! The serde `Serializer` that writes the MessagePack structure and moves
//! runs of primitives out of line into blocks as they stream past.
//!
//! A sequence (or tuple) is written as a MessagePack array whose items are
//! either ordinary values or *run references* (ext type 1): a run of
//! same-typed primitives stands for as many elements as its block holds.
//! Elements of a run go straight from `serialize_f64` (etc.) into the block
//! writer's chunk buffer, so a large array is never copied whole.

use serde::ser::{self, Serialize};

use crate::error::Inner;
use crate::format::{Dtype, MAX_DEPTH};
use crate::shape::ShapeCapture;
use crate::sink::Sink;
use crate::writer::BlockWriter;

/// MessagePack ext type of a run reference: payload `u32` block id (LE).
pub(crate) const EXT_RUN: i8 = 1;
/// MessagePack ext type of an out-of-line byte string: payload `u32` block id.
pub(crate) const EXT_BYTES: i8 = 2;
/// MessagePack ext type marking `Some(x)` where `x` itself encodes as nil.
pub(crate) const EXT_SOME_NIL: i8 = 4;
/// MessagePack ext type of a `u128` (16 bytes LE).
pub(crate) const EXT_U128: i8 = 5;
/// MessagePack ext type of an `i128` (16 bytes LE).
pub(crate) const EXT_I128: i8 = 6;

pub(crate) type Result<T> = std::result::Result<T, Inner>;

/// The structure being built and the blocks being streamed.
pub(crate) struct Ser<'w, W: Sink> {
    pub(crate) out: Vec<u8>,
    pub(crate) blocks: &'w mut BlockWriter<W>,
    min_block: usize,
    /// Shape captured from the `dim` field of an ndarray `Array` struct,
    /// for the `data` field that follows.
    shape: Option<Vec<u64>>,
    io_error: Option<std::io::Error>,
    /// How many MessagePack arrays and maps enclose the current value. The
    /// loader refuses files nested deeper than `MAX_DEPTH`, so the writer
    /// refuses such values instead of writing a file that cannot be read.
    depth: usize,
}

impl<'w, W: Sink> Ser<'w, W> {
    pub(crate) fn new(blocks: &'w mut BlockWriter<W>, min_block: usize) -> Self {
        Ser {
            out: Vec::new(),
            blocks,
            min_block,
            shape: None,
            io_error: None,
            depth: 0,
        }
    }

    /// Opens one level of nesting (an array, a map, or an enum variant's
    /// one-entry map), counted as the loader counts them.
    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ser::Error::custom(format!(
                "the value is nested deeper than {MAX_DEPTH} levels (arrays, maps and enum \
                 variants), more than a .jbl file may hold"
            )));
        }
        Ok(())
    }

    /// The first I/O error, which serde's error path turned into a message.
    pub(crate) fn take_io_error(&mut self) -> Option<std::io::Error> {
        self.io_error.take()
    }

    fn io(&mut self, e: std::io::Error) -> Inner {
        let inner = io(&e);
        self.io_error.get_or_insert(e);
        inner
    }

    fn put_ext(&mut self, ty: i8, payload: &[u8]) {
        // Writing into a Vec cannot fail.
        let _ = rmp::encode::write_ext_meta(&mut self.out, payload.len() as u32, ty);
        self.out.extend_from_slice(payload);
    }

    /// Writes a 32-bit array or map header to be patched with the item count.
    fn placeholder(&mut self, marker: u8) -> usize {
        self.out.push(marker);
        let at = self.out.len();
        self.out.extend_from_slice(&[0; 4]);
        at
    }

    fn patch(&mut self, at: usize, count: u32) {
        self.out[at..at + 4].copy_from_slice(&count.to_be_bytes());
    }

    fn str(&mut self, s: &str) -> Result<()> {
        let _ = rmp::encode::write_str(&mut self.out, s);
        Ok(())
    }

    /// Writes one value: an ndarray array in bulk (feature `ndarray`, see
    /// `array.rs`), anything else through its `Serialize`. Every value that
    /// enters the serializer goes through here or through
    /// [`SeqSer::element`], so an array is recognised wherever it is.
    #[inline]
    pub(crate) fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        #[cfg(feature = "ndarray")]
        if crate::array::may_be_array::<T>()
            && let Some(done) = crate::array::write(self, value)
        {
            return done;
        }
        value.serialize(self)
    }
}

fn io(e: &std::io::Error) -> Inner {
    Inner::Message(format!("writing a block failed: {e}"))
}

/// A pending or open run of one primitive type inside a sequence.
enum Run {
    None,
    /// Fewer than `min_block` bytes so far, kept here in case the run stays short.
    Pending {
        dtype: Dtype,
        buf: Vec<u8>,
    },
    /// Out of line: elements go to the block writer.
    Open {
        dtype: Dtype,
        id: u32,
    },
}

/// Serializes the elements of a sequence, tuple or tuple struct.
pub(crate) struct SeqSer<'a, 'w, W: Sink> {
    ser: &'a mut Ser<'w, W>,
    /// Nesting levels this sequence opened: 1, or 2 for a tuple variant.
    levels: usize,
    at: usize,
    items: u32,
    run: Run,
    shape: Option<Vec<u64>>,
    /// The block writer's chunk, lent while a run is open.
    buf: Vec<u8>,
    /// The chunk size: `buf` is full at this length.
    limit: usize,
}

impl<'a, 'w, W: Sink> SeqSer<'a, 'w, W> {
    #[inline(always)]
    fn prim(&mut self, dtype: Dtype, bytes: &[u8]) -> Result<()> {
        if let Run::Open { dtype: d, .. } = self.run
            && d == dtype
        {
            // Chunk sizes are multiples of 64, so an element never straddles two.
            if self.buf.len() + bytes.len() <= self.limit {
                self.buf.extend_from_slice(bytes);
                return Ok(());
            }
            return self.spill(bytes);
        }
        self.prim_slow(dtype, bytes)
    }

    /// Appends to the lent chunk, handing full chunks to the block writer.
    #[inline(never)]
    fn spill(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let room = self.limit - self.buf.len();
            if room == 0 {
                let full = std::mem::take(&mut self.buf);
                match self.ser.blocks.swap_full_chunk(full) {
                    Ok(next) => self.buf = next,
                    Err(e) => return Err(self.ser.io(e)),
                }
                continue;
            }
            if self.buf.is_empty() && bytes.len() >= self.limit {
                // At a chunk boundary with whole chunks to write (elements
                // handed over in bulk): straight to the sink if it can.
                match self.ser.blocks.push_whole_chunks(bytes) {
                    Ok(0) => {}
                    Ok(n) => {
                        bytes = &bytes[n..];
                        continue;
                    }
                    Err(e) => return Err(self.ser.io(e)),
                }
            }
            let n = room.min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        Ok(())
    }

    #[inline(never)]
    fn prim_slow(&mut self, dtype: Dtype, bytes: &[u8]) -> Result<()> {
        let same = matches!(&self.run, Run::Pending { dtype: d, .. } if *d == dtype);
        if !same {
            self.close_run()?;
            let cap = self.ser.min_block.min(4096);
            self.run = Run::Pending {
                dtype,
                buf: Vec::with_capacity(cap),
            };
        }
        if let Run::Pending { buf, .. } = &mut self.run {
            buf.extend_from_slice(bytes);
            if buf.len() >= self.ser.min_block {
                let pending = std::mem::take(buf);
                self.open(dtype, &pending)?;
            }
        }
        Ok(())
    }

    /// Moves the run out of line: begins its block, borrows the chunk, and
    /// appends the elements gathered while it was pending.
    fn open(&mut self, dtype: Dtype, pending: &[u8]) -> Result<()> {
        let id = match self.ser.blocks.begin(dtype) {
            Ok(id) => id,
            Err(e) => return Err(self.ser.io(e)),
        };
        self.buf = self.ser.blocks.lend_chunk();
        self.limit = self.ser.blocks.chunk_size();
        self.run = Run::Open { dtype, id };
        self.spill(pending)
    }

    /// Appends many elements of type `dtype` at once, given as their
    /// little-endian bytes (a whole number of elements): the same run,
    /// block and chunks as [`prim`](Self::prim) called once per element.
    /// Below `min_block` bytes the run stays pending (written inline when
    /// it ends); once it reaches that, it goes out of line whole, as the
    /// element path sends it at the element that crosses the threshold.
    #[cfg_attr(not(feature = "ndarray"), allow(dead_code))]
    pub(crate) fn prims(&mut self, dtype: Dtype, bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if matches!(self.run, Run::Open { dtype: d, .. } if d == dtype) {
            return self.spill(bytes);
        }
        if !matches!(&self.run, Run::Pending { dtype: d, .. } if *d == dtype) {
            self.close_run()?;
            self.run = Run::Pending {
                dtype,
                buf: Vec::new(),
            };
        }
        if let Run::Pending { buf, .. } = &mut self.run {
            if buf.len() + bytes.len() < self.ser.min_block {
                buf.extend_from_slice(bytes);
                return Ok(());
            }
            let pending = std::mem::take(buf);
            self.open(dtype, &pending)?;
        }
        self.spill(bytes)
    }

    /// Ends the current run: a pending one is written inline element by
    /// element, an open block is closed and referenced.
    fn close_run(&mut self) -> Result<()> {
        match std::mem::replace(&mut self.run, Run::None) {
            Run::None => Ok(()),
            Run::Pending { dtype, buf } => {
                for e in buf.chunks_exact(dtype.width()) {
                    write_inline(&mut self.ser.out, dtype, e);
                    self.items += 1;
                }
                Ok(())
            }
            Run::Open { id, .. } => {
                let shape = self.shape.take();
                let chunk = std::mem::take(&mut self.buf);
                self.ser.blocks.return_chunk(chunk);
                if let Err(e) = self.ser.blocks.end(shape) {
                    return Err(self.ser.io(e));
                }
                self.ser.put_ext(EXT_RUN, &id.to_le_bytes());
                self.items += 1;
                Ok(())
            }
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        #[cfg(feature = "ndarray")]
        if crate::array::may_be_array::<T>() {
            // An array is a struct, which `ElemSer` writes inline after
            // closing the run: the same here, with the bulk path's chance.
            self.close_run()?;
            self.items += 1;
            return self.ser.value(value);
        }
        value.serialize(ElemSer { seq: self })
    }

    /// Ends the sequence: closes the run and patches the item count.
    pub(crate) fn finish(mut self) -> Result<()> {
        self.close_run()?;
        let (at, items) = (self.at, self.items);
        self.ser.patch(at, items);
        self.ser.depth -= self.levels;
        Ok(())
    }
}

/// Writes one element of a short run as an ordinary MessagePack number.
fn write_inline(out: &mut Vec<u8>, dtype: Dtype, e: &[u8]) {
    let mut b = [0u8; 8];
    b[..e.len()].copy_from_slice(e);
    let u = u64::from_le_bytes(b);
    // Writing into a Vec cannot fail.
    let _ = match dtype {
        Dtype::Bytes | Dtype::U8 | Dtype::U16 | Dtype::U32 | Dtype::U64 => {
            rmp::encode::write_uint(out, u).is_ok()
        }
        Dtype::I8 => rmp::encode::write_sint(out, i64::from(e[0] as i8)).is_ok(),
        Dtype::I16 => rmp::encode::write_sint(out, i64::from(u as u16 as i16)).is_ok(),
        Dtype::I32 => rmp::encode::write_sint(out, i64::from(u as u32 as i32)).is_ok(),
        Dtype::I64 => rmp::encode::write_sint(out, u as i64).is_ok(),
        Dtype::F32 => rmp::encode::write_f32(out, f32::from_bits(u as u32)).is_ok(),
        Dtype::F64 => rmp::encode::write_f64(out, f64::from_bits(u)).is_ok(),
    };
}

/// The four sequence-like serde traits all push elements and end the same way.
macro_rules! sequence_impl {
    ($($trait:ident :: $method:ident),*) => {$(
        impl<'a, 'w, W: Sink> ser::$trait for SeqSer<'a, 'w, W> {
            type Ok = ();
            type Error = Inner;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
                self.element(value)
            }
            fn end(self) -> Result<()> {
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

/// Serializes a map, struct or struct variant as a MessagePack map.
pub(crate) struct MapSer<'a, 'w, W: Sink> {
    ser: &'a mut Ser<'w, W>,
    /// Nesting levels this map opened: 1, or 2 for a struct variant.
    levels: usize,
    at: usize,
    entries: u32,
    /// True for ndarray's `Array` struct, whose `dim` is captured as a shape.
    ndarray: bool,
    /// The shape captured from `dim`, waiting for `data`.
    pending_shape: Option<Vec<u64>>,
}

impl<'a, 'w, W: Sink> MapSer<'a, 'w, W> {
    /// Writes a struct field.
    pub(crate) fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        let mut captured = None;
        if self.ndarray && key == "dim" {
            let mut dims = Vec::new();
            if value.serialize(ShapeCapture { dims: &mut dims }).is_ok() {
                captured = Some(dims);
            }
        }
        self.field_with(key, |ser| ser.value(value))?;
        if captured.is_some() {
            self.pending_shape = captured;
        }
        Ok(())
    }

    /// Writes a struct field whose value `write` writes; an ndarray
    /// array's `data` gets the shape its `dim` gave.
    pub(crate) fn field_with(
        &mut self,
        key: &'static str,
        write: impl FnOnce(&mut Ser<'w, W>) -> Result<()>,
    ) -> Result<()> {
        self.ser.str(key)?;
        self.ser.shape = if self.ndarray && key == "data" {
            self.pending_shape.take()
        } else {
            None
        };
        write(&mut *self.ser)?;
        self.ser.shape = None;
        self.entries += 1;
        Ok(())
    }

    fn finish(self) -> Result<()> {
        self.ser.patch(self.at, self.entries);
        self.ser.depth -= self.levels;
        Ok(())
    }
}

impl<'a, 'w, W: Sink> ser::SerializeMap for MapSer<'a, 'w, W> {
    type Ok = ();
    type Error = Inner;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        key.serialize(&mut *self.ser)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.ser.value(value)?;
        self.entries += 1;
        Ok(())
    }
    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl<'a, 'w, W: Sink> ser::SerializeStruct for MapSer<'a, 'w, W> {
    type Ok = ();
    type Error = Inner;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }
    fn end(self) -> Result<()> {
        self.finish()
    }
}

impl<'a, 'w, W: Sink> ser::SerializeStructVariant for MapSer<'a, 'w, W> {
    type Ok = ();
    type Error = Inner;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }
    fn end(self) -> Result<()> {
        self.finish()
    }
}

const ARRAY32: u8 = 0xdd;
const MAP32: u8 = 0xdf;

impl<'a, 'w, W: Sink> ser::Serializer for &'a mut Ser<'w, W> {
    type Ok = ();
    type Error = Inner;
    type SerializeSeq = SeqSer<'a, 'w, W>;
    type SerializeTuple = SeqSer<'a, 'w, W>;
    type SerializeTupleStruct = SeqSer<'a, 'w, W>;
    type SerializeTupleVariant = SeqSer<'a, 'w, W>;
    type SerializeMap = MapSer<'a, 'w, W>;
    type SerializeStruct = MapSer<'a, 'w, W>;
    type SerializeStructVariant = MapSer<'a, 'w, W>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, v: bool) -> Result<()> {
        let _ = rmp::encode::write_bool(&mut self.out, v);
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<()> {
        let _ = rmp::encode::write_sint(&mut self.out, v);
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<()> {
        self.put_ext(EXT_I128, &v.to_le_bytes());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        let _ = rmp::encode::write_uint(&mut self.out, v);
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<()> {
        self.put_ext(EXT_U128, &v.to_le_bytes());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<()> {
        let _ = rmp::encode::write_f32(&mut self.out, v);
        Ok(())
    }
    fn serialize_f64(self, v: f64) -> Result<()> {
        let _ = rmp::encode::write_f64(&mut self.out, v);
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        self.str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        if v.len() >= self.min_block {
            match self.blocks.block_of_bytes(Dtype::Bytes, v) {
                Ok(id) => self.put_ext(EXT_BYTES, &id.to_le_bytes()),
                Err(e) => return Err(self.io(e)),
            }
        } else {
            let _ = rmp::encode::write_bin(&mut self.out, v);
        }
        Ok(())
    }
    fn serialize_none(self) -> Result<()> {
        let _ = rmp::encode::write_nil(&mut self.out);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        let start = self.out.len();
        self.value(value)?;
        if self.out[start..] == [0xc0] {
            // `Some(None)` and friends: keep the `Some` visible.
            self.out.truncate(start);
            self.put_ext(EXT_SOME_NIL, &[]);
        }
        Ok(())
    }
    fn serialize_unit(self) -> Result<()> {
        let _ = rmp::encode::write_nil(&mut self.out);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<()> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<()> {
        self.str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        self.value(value)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        self.enter()?;
        let _ = rmp::encode::write_map_len(&mut self.out, 1);
        self.str(variant)?;
        self.value(value)?;
        self.depth -= 1;
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<SeqSer<'a, 'w, W>> {
        self.enter()?;
        let at = self.placeholder(ARRAY32);
        let shape = self.shape.take();
        Ok(SeqSer {
            ser: self,
            levels: 1,
            at,
            items: 0,
            run: Run::None,
            shape,
            buf: Vec::new(),
            limit: 0,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSer<'a, 'w, W>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SeqSer<'a, 'w, W>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqSer<'a, 'w, W>> {
        self.enter()?;
        let _ = rmp::encode::write_map_len(&mut self.out, 1);
        self.str(variant)?;
        let mut seq = self.serialize_seq(Some(len))?;
        seq.levels = 2;
        Ok(seq)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapSer<'a, 'w, W>> {
        self.enter()?;
        let at = self.placeholder(MAP32);
        Ok(MapSer {
            ser: self,
            levels: 1,
            at,
            entries: 0,
            ndarray: false,
            pending_shape: None,
        })
    }
    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<MapSer<'a, 'w, W>> {
        self.enter()?;
        let at = self.placeholder(MAP32);
        Ok(MapSer {
            ser: self,
            levels: 1,
            at,
            entries: 0,
            ndarray: name == "Array",
            pending_shape: None,
        })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<MapSer<'a, 'w, W>> {
        self.enter()?;
        self.enter()?;
        let _ = rmp::encode::write_map_len(&mut self.out, 1);
        self.str(variant)?;
        let at = self.placeholder(MAP32);
        Ok(MapSer {
            ser: self,
            levels: 2,
            at,
            entries: 0,
            ndarray: false,
            pending_shape: None,
        })
    }
}

/// The serializer of one element of a sequence: primitives join the run,
/// anything else closes it and is written inline.
struct ElemSer<'s, 'a, 'w, W: Sink> {
    seq: &'s mut SeqSer<'a, 'w, W>,
}

impl<'s, 'a, 'w, W: Sink> ElemSer<'s, 'a, 'w, W> {
    /// Closes the run and hands the element to the structure serializer.
    fn inline(self) -> Result<&'s mut Ser<'w, W>> {
        self.seq.close_run()?;
        self.seq.items += 1;
        Ok(&mut *self.seq.ser)
    }
}

impl<'s, 'a, 'w, W: Sink> ser::Serializer for ElemSer<'s, 'a, 'w, W> {
    type Ok = ();
    type Error = Inner;
    type SerializeSeq = SeqSer<'s, 'w, W>;
    type SerializeTuple = SeqSer<'s, 'w, W>;
    type SerializeTupleStruct = SeqSer<'s, 'w, W>;
    type SerializeTupleVariant = SeqSer<'s, 'w, W>;
    type SerializeMap = MapSer<'s, 'w, W>;
    type SerializeStruct = MapSer<'s, 'w, W>;
    type SerializeStructVariant = MapSer<'s, 'w, W>;

    fn is_human_readable(&self) -> bool {
        false
    }

    #[inline]
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.seq.prim(Dtype::U8, &[v])
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.seq.prim(Dtype::I8, &v.to_le_bytes())
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.seq.prim(Dtype::U16, &v.to_le_bytes())
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.seq.prim(Dtype::I16, &v.to_le_bytes())
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.seq.prim(Dtype::U32, &v.to_le_bytes())
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.seq.prim(Dtype::I32, &v.to_le_bytes())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.seq.prim(Dtype::U64, &v.to_le_bytes())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.seq.prim(Dtype::I64, &v.to_le_bytes())
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<()> {
        self.seq.prim(Dtype::F32, &v.to_le_bytes())
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.seq.prim(Dtype::F64, &v.to_le_bytes())
    }
    fn serialize_bool(self, v: bool) -> Result<()> {
        self.inline()?.serialize_bool(v)
    }
    fn serialize_i128(self, v: i128) -> Result<()> {
        self.inline()?.serialize_i128(v)
    }
    fn serialize_u128(self, v: u128) -> Result<()> {
        self.inline()?.serialize_u128(v)
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.inline()?.serialize_char(v)
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        self.inline()?.serialize_str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<()> {
        self.inline()?.serialize_bytes(v)
    }
    fn serialize_none(self) -> Result<()> {
        self.inline()?.serialize_none()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        self.inline()?.serialize_some(value)
    }
    fn serialize_unit(self) -> Result<()> {
        self.inline()?.serialize_unit()
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<()> {
        self.inline()?.serialize_unit_struct(name)
    }
    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<()> {
        self.inline()?.serialize_unit_variant(name, index, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<()> {
        // Newtypes are transparent, so a `Vec<Meters>` of `f64`s is a run too.
        self.seq.element(value)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        self.inline()?
            .serialize_newtype_variant(name, index, variant, value)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSer<'s, 'w, W>> {
        self.inline()?.serialize_seq(len)
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqSer<'s, 'w, W>> {
        self.inline()?.serialize_tuple(len)
    }
    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<SeqSer<'s, 'w, W>> {
        self.inline()?.serialize_tuple_struct(name, len)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqSer<'s, 'w, W>> {
        self.inline()?
            .serialize_tuple_variant(name, index, variant, len)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapSer<'s, 'w, W>> {
        self.inline()?.serialize_map(len)
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<MapSer<'s, 'w, W>> {
        self.inline()?.serialize_struct(name, len)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapSer<'s, 'w, W>> {
        self.inline()?
            .serialize_struct_variant(name, index, variant, len)
    }
}
