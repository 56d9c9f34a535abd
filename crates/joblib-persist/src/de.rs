//! The serde `Deserializer` over the MessagePack structure, which pulls the
//! elements of run references from their blocks chunk by chunk.

use std::collections::VecDeque;

use serde::de::{
    self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};
use serde::forward_to_deserialize_any;

use crate::element::Element;
use crate::error::{Error, Inner};
use crate::format::{Dtype, MAX_DEPTH};
use crate::owned;
use crate::ser::{EXT_BYTES, EXT_I128, EXT_RUN, EXT_SOME_NIL, EXT_U128};
use crate::source::Opened;

mod describe;

type Result<T> = std::result::Result<T, Inner>;

/// The fields ndarray's arrays (and `MmapArray`) deserialize.
const ARRAY_FIELDS: [&str; 3] = ["v", "dim", "data"];

/// One step of the path from the top of the value to where a load failed.
enum Seg {
    /// A struct field, a map key or an enum variant, by the position of
    /// its name in the structure: decoded only when an error needs it.
    Key(usize),
    /// An element of a sequence.
    Index(usize),
}

fn bad(what: impl Into<String>) -> Inner {
    Inner::Corrupt(what.into())
}

/// Evaluates `$body` with the type `$a` set to the element type of `$dtype`;
/// `Ok(None)` for byte blocks.
macro_rules! with_elem {
    ($dtype:expr, $a:ident => $body:expr) => {
        match $dtype {
            Dtype::F64 => {
                type $a = f64;
                $body
            }
            Dtype::F32 => {
                type $a = f32;
                $body
            }
            Dtype::I64 => {
                type $a = i64;
                $body
            }
            Dtype::U64 => {
                type $a = u64;
                $body
            }
            Dtype::I32 => {
                type $a = i32;
                $body
            }
            Dtype::U32 => {
                type $a = u32;
                $body
            }
            Dtype::I16 => {
                type $a = i16;
                $body
            }
            Dtype::U16 => {
                type $a = u16;
                $body
            }
            Dtype::I8 => {
                type $a = i8;
                $body
            }
            Dtype::U8 => {
                type $a = u8;
                $body
            }
            Dtype::Bytes => Ok(None),
        }
    };
}

/// The newtype name `MmapArray` asks for its data with; see `crate::mmap`.
pub(crate) const MMAP_DATA: &str = "$joblib_persist::MmapData";

/// One MessagePack token.
enum Tok<'de> {
    Nil,
    Bool(bool),
    U(u64),
    I(i64),
    F32(f32),
    F64(f64),
    Str(&'de [u8]),
    Bin(&'de [u8]),
    Arr(u32),
    Map(u32),
    Ext(i8, &'de [u8]),
}

/// The structure deserializer.
pub(crate) struct De<'de, 'f> {
    input: &'de [u8],
    pos: usize,
    depth: usize,
    file: &'f Opened<'f>,
    /// Which blocks were referenced already: each may be used once, so a
    /// small file cannot expand one block many times, and mapped views never alias.
    used: Vec<bool>,
    /// Whether `MmapArray` data may be handed out as block references.
    pub(crate) mmap: bool,
    /// Where the value being deserialized lies in the requested type.
    path: Vec<Seg>,
    /// How many blocks went through the owned path, for the tests.
    #[cfg(test)]
    owned_reads: usize,
}

impl<'de, 'f> De<'de, 'f> {
    pub(crate) fn new(input: &'de [u8], file: &'f Opened<'f>) -> Self {
        De {
            input,
            pos: 0,
            depth: 0,
            file,
            used: vec![false; file.blocks.len()],
            mmap: false,
            path: Vec::new(),
            #[cfg(test)]
            owned_reads: 0,
        }
    }

    /// Fails unless the whole structure was consumed.
    pub(crate) fn end(&self) -> std::result::Result<(), Error> {
        if self.pos == self.input.len() {
            Ok(())
        } else {
            Err(crate::error::corrupt(
                self.file.path,
                "the structure has bytes after the value",
            ))
        }
    }

    fn take(&mut self, n: usize) -> Result<&'de [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.input.len())
            .ok_or_else(|| bad("the structure ends in the middle of a value"))?;
        let s = &self.input[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, &b| (a << 8) | u64::from(b)))
    }

    fn len_of(&mut self, n: usize) -> Result<usize> {
        usize::try_from(self.be(n)?).map_err(|_| bad("a length does not fit in memory"))
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn next(&mut self) -> Result<Tok<'de>> {
        let m = self.take(1)?[0];
        Ok(match m {
            0x00..=0x7f => Tok::U(u64::from(m)),
            0x80..=0x8f => Tok::Map(u32::from(m & 0x0f)),
            0x90..=0x9f => Tok::Arr(u32::from(m & 0x0f)),
            0xa0..=0xbf => Tok::Str(self.take(usize::from(m & 0x1f))?),
            0xc0 => Tok::Nil,
            0xc2 => Tok::Bool(false),
            0xc3 => Tok::Bool(true),
            0xc4..=0xc6 => {
                let n = self.len_of(1 << (m - 0xc4))?;
                Tok::Bin(self.take(n)?)
            }
            0xc7..=0xc9 => {
                let n = self.len_of(1 << (m - 0xc7))?;
                let ty = self.take(1)?[0] as i8;
                Tok::Ext(ty, self.take(n)?)
            }
            0xca => Tok::F32(f32::from_bits(self.be(4)? as u32)),
            0xcb => Tok::F64(f64::from_bits(self.be(8)?)),
            0xcc..=0xcf => Tok::U(self.be(1 << (m - 0xcc))?),
            0xd0 => Tok::I(i64::from(self.be(1)? as u8 as i8)),
            0xd1 => Tok::I(i64::from(self.be(2)? as u16 as i16)),
            0xd2 => Tok::I(i64::from(self.be(4)? as u32 as i32)),
            0xd3 => Tok::I(self.be(8)? as i64),
            0xd4..=0xd8 => {
                let ty = self.take(1)?[0] as i8;
                Tok::Ext(ty, self.take(1 << (m - 0xd4))?)
            }
            0xd9..=0xdb => {
                let n = self.len_of(1 << (m - 0xd9))?;
                Tok::Str(self.take(n)?)
            }
            0xdc | 0xdd => Tok::Arr(self.be(2 << (m - 0xdc))? as u32),
            0xde | 0xdf => Tok::Map(self.be(2 << (m - 0xde))? as u32),
            0xe0..=0xff => Tok::I(i64::from(m as i8)),
            0xc1 => {
                return Err(bad(
                    "the structure holds the reserved MessagePack byte 0xc1",
                ));
            }
        })
    }

    /// Checks that `items` values of at least `min` bytes each can follow.
    fn check_count(&self, items: u32, min: usize) -> Result<()> {
        let need = (items as usize).saturating_mul(min);
        if need > self.input.len() - self.pos {
            return Err(bad(format!(
                "a collection claims {items} items but the structure has only {} bytes left",
                self.input.len() - self.pos
            )));
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(bad(format!(
                "values are nested deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(())
    }

    /// The path to the value being deserialized: `a.b[3].c`.
    fn path_string(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(at) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(&self.name_at(*at));
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }

    /// The name (a field, key or variant) whose token starts at `at`.
    fn name_at(&self, at: usize) -> String {
        let mut de = De::new(self.input, self.file);
        de.pos = at;
        match de.next() {
            Ok(Tok::Str(s)) => String::from_utf8_lossy(s).into_owned(),
            Ok(Tok::U(u)) => u.to_string(),
            Ok(Tok::I(i)) => i.to_string(),
            _ => "?".into(),
        }
    }

    /// Deserializes with `seg` appended to the path.
    fn within<T>(&mut self, seg: Seg, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.path.push(seg);
        let r = f(self);
        self.path.pop();
        r
    }

    /// Gives a type mismatch raised by the value starting at `start` its
    /// place and a description of what the file holds there. `array` says
    /// the type asked for an ndarray array there: a mismatch in one of the
    /// array's own fields (`v`, `dim`, `data`) is then reported for the
    /// array, and ndarray's field names never reach the user.
    fn locate(&self, e: Inner, start: usize, array: bool) -> Inner {
        match e {
            Inner::Message(message) => {
                let found = describe::describe(self.input, start, self.file);
                let message = match &found {
                    Some(f) if array && !f.array => {
                        "the type asks for an ndarray array here".to_string()
                    }
                    _ => message,
                };
                Inner::Located {
                    field: self.path_string(),
                    found: found.map(|f| f.text),
                    message,
                }
            }
            Inner::Located {
                field,
                found,
                message,
            } if array => {
                let here = self.path_string();
                let part = field
                    .strip_prefix(here.as_str())
                    .map(|p| p.strip_prefix('.').unwrap_or(p));
                match part {
                    Some(p) if ARRAY_FIELDS.iter().any(|f| p.starts_with(f)) => {
                        let found = describe::describe(self.input, start, self.file)
                            .map(|f| f.text)
                            .or(found);
                        Inner::Located {
                            field: here,
                            found,
                            message,
                        }
                    }
                    _ => Inner::Located {
                        field,
                        found,
                        message,
                    },
                }
            }
            other => other,
        }
    }

    /// Reads a float, refusing the other width: a stored f32 is not
    /// silently widened, nor an f64 silently rounded.
    fn float<V: Visitor<'de>>(&mut self, want: Dtype, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        let tok = self.next()?;
        let stored = match tok {
            Tok::F32(_) => Dtype::F32,
            Tok::F64(_) => Dtype::F64,
            other => {
                let r = self.visit_tok(other, visitor);
                return r.map_err(|e| self.locate(e, start, false));
            }
        };
        if stored != want {
            let e = Inner::Message(mismatch(stored, want));
            return Err(self.locate(e, start, false));
        }
        self.visit_tok(tok, visitor)
    }

    /// Marks block `id` (from an ext payload) as used and returns it.
    fn claim(&mut self, payload: &[u8]) -> Result<u32> {
        let b: [u8; 4] = payload
            .try_into()
            .map_err(|_| bad("a block reference has the wrong size"))?;
        let id = u32::from_le_bytes(b);
        let slot = self.used.get_mut(id as usize).ok_or_else(|| {
            bad(format!(
                "the structure refers to block {id}, which does not exist"
            ))
        })?;
        if std::mem::replace(slot, true) {
            return Err(bad(format!("block {id} is referenced twice")));
        }
        Ok(id)
    }

    /// Skips one value without reading any block.
    fn skip(&mut self) -> Result<()> {
        match self.next()? {
            Tok::Arr(n) => {
                self.check_count(n, 1)?;
                self.enter()?;
                for _ in 0..n {
                    self.skip()?;
                }
                self.depth -= 1;
            }
            Tok::Map(n) => {
                self.check_count(n, 2)?;
                self.enter()?;
                for _ in 0..n {
                    self.skip()?;
                    self.skip()?;
                }
                self.depth -= 1;
            }
            Tok::Ext(EXT_RUN | EXT_BYTES, p) => {
                self.claim(p)?;
            }
            Tok::Ext(EXT_SOME_NIL, []) => {}
            Tok::Ext(EXT_U128 | EXT_I128, p) if p.len() == 16 => {}
            Tok::Ext(ty, _) => {
                return Err(bad(format!("malformed MessagePack extension of type {ty}")));
            }
            Tok::Str(s) if std::str::from_utf8(s).is_err() => {
                return Err(bad("a string is not valid UTF-8"));
            }
            _ => {}
        }
        Ok(())
    }

    fn visit_tok<V: Visitor<'de>>(&mut self, tok: Tok<'de>, visitor: V) -> Result<V::Value> {
        match tok {
            Tok::Nil => visitor.visit_unit(),
            Tok::Bool(b) => visitor.visit_bool(b),
            Tok::U(u) => visitor.visit_u64(u),
            Tok::I(i) => visitor.visit_i64(i),
            Tok::F32(f) => visitor.visit_f32(f),
            Tok::F64(f) => visitor.visit_f64(f),
            Tok::Str(s) => match std::str::from_utf8(s) {
                Ok(s) => visitor.visit_borrowed_str(s),
                Err(_) => Err(bad("a string is not valid UTF-8")),
            },
            Tok::Bin(b) => visitor.visit_borrowed_bytes(b),
            Tok::Arr(n) => {
                self.check_count(n, 1)?;
                self.enter()?;
                let mut seq = Seq {
                    de: self,
                    left: n,
                    run: None,
                    index: 0,
                };
                let value = visitor.visit_seq(&mut seq)?;
                let done = seq.left == 0 && seq.run.as_ref().is_none_or(|r| r.left == 0);
                if !done {
                    return Err(de::Error::custom(
                        "the stored sequence is longer than the type expects",
                    ));
                }
                self.depth -= 1;
                Ok(value)
            }
            Tok::Map(n) => {
                self.check_count(n, 2)?;
                self.enter()?;
                let mut map = Map {
                    de: self,
                    left: n,
                    key: 0,
                };
                let value = visitor.visit_map(&mut map)?;
                if map.left != 0 {
                    return Err(de::Error::custom(
                        "the stored map is longer than the type expects",
                    ));
                }
                self.depth -= 1;
                Ok(value)
            }
            Tok::Ext(EXT_BYTES, p) => {
                let id = self.claim(p)?;
                let block = &self.file.blocks[id as usize];
                if block.dtype != Dtype::Bytes {
                    return Err(bad(format!("block {id} is not a byte string")));
                }
                let bytes = self.file.read_block(id, block)?;
                visitor.visit_byte_buf(bytes)
            }
            Tok::Ext(EXT_SOME_NIL, []) => visitor.visit_some(().into_deserializer()),
            Tok::Ext(EXT_U128, p) => match <[u8; 16]>::try_from(p) {
                Ok(b) => visitor.visit_u128(u128::from_le_bytes(b)),
                Err(_) => Err(bad("a u128 has the wrong size")),
            },
            Tok::Ext(EXT_I128, p) => match <[u8; 16]>::try_from(p) {
                Ok(b) => visitor.visit_i128(i128::from_le_bytes(b)),
                Err(_) => Err(bad("an i128 has the wrong size")),
            },
            Tok::Ext(EXT_RUN, _) => Err(bad("a run reference outside a sequence")),
            Tok::Ext(ty, _) => Err(bad(format!("unknown MessagePack extension type {ty}"))),
        }
    }

    /// If `T` is `Vec<A>` for an element type `A` and the next value is one
    /// whole run of `A`s, reads the run's block straight into the vector
    /// returned (see `owned.rs`); `None` (nothing consumed) otherwise.
    pub(crate) fn owned_value<T>(&mut self) -> Result<Option<T>> {
        if !self.array_next() {
            return Ok(None);
        }
        match owned::vec_elem::<T>() {
            Some(dtype) => {
                with_elem!(dtype, A => self.owned_run::<A, T>(owned::into_value::<T, A>))
            }
            None => Ok(None),
        }
    }

    /// As [`owned_value`](Self::owned_value), for a seed that is
    /// `PhantomData<Vec<A>>`: what derived structs, ndarray's arrays and
    /// other `Deserialize` impls pass to ask for a `Vec<A>` field or element.
    fn owned_seed<S: DeserializeSeed<'de>>(&mut self) -> Result<Option<S::Value>> {
        if !self.array_next() {
            return Ok(None);
        }
        match owned::seed_elem::<S>() {
            Some(dtype) => {
                with_elem!(dtype, A => self.owned_run::<A, S::Value>(owned::into_seed_value::<S, A>))
            }
            None => Ok(None),
        }
    }

    /// Whether the next value is an array (cheap, before the type checks).
    fn array_next(&self) -> bool {
        matches!(self.peek(), Some(0x90..=0x9f | 0xdc | 0xdd))
    }

    /// Reads the next value into a `Vec<A>` if it is an array holding one
    /// run of `A`s (and nothing else) from a block not used yet, and casts
    /// it with `cast`, which the caller chose to succeed; `None` (nothing
    /// consumed) otherwise, leaving every other case to the general path.
    fn owned_run<A: Element, O>(
        &mut self,
        cast: impl FnOnce(Vec<A>) -> std::result::Result<O, Vec<A>>,
    ) -> Result<Option<O>> {
        // The block holds little-endian elements.
        if cfg!(target_endian = "big") {
            return Ok(None);
        }
        let file = self.file;
        let save = self.pos;
        if let (Ok(Tok::Arr(1)), Ok(Tok::Ext(EXT_RUN, p))) = (self.next(), self.next())
            && let Ok(b) = <[u8; 4]>::try_from(p)
            && let Some(block) = file.blocks.get(u32::from_le_bytes(b) as usize)
            && block.dtype == A::DTYPE
            && !self.used[u32::from_le_bytes(b) as usize]
        {
            // Counted as the general path counts the array.
            self.enter()?;
            let id = self.claim(p)?;
            let v = file.read_owned::<A>(id, block)?;
            self.depth -= 1;
            #[cfg(test)]
            {
                self.owned_reads += 1;
            }
            return match cast(v) {
                Ok(v) => Ok(Some(v)),
                Err(_) => Err(bad("an owned vector was read for the wrong type")),
            };
        }
        self.pos = save;
        Ok(None)
    }

    /// The block of an `MmapArray`'s data: a sequence holding exactly one run.
    fn mmap_data<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        let save = self.pos;
        if let (Ok(Tok::Arr(1)), Ok(Tok::Ext(EXT_RUN, p))) = (self.next(), self.next()) {
            let id = self.claim(p)?;
            let block = &self.file.blocks[id as usize];
            let entries = [
                ("block", u64::from(id)),
                ("offset", block.offset),
                ("len", block.len),
                ("dtype", u64::from(block.dtype.code())),
            ];
            return visitor.visit_map(de::value::MapDeserializer::new(entries.into_iter()));
        }
        self.pos = save;
        visitor.visit_newtype_struct(self)
    }
}

impl<'de, 'a, 'f> de::Deserializer<'de> for &'a mut De<'de, 'f> {
    type Error = Inner;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        let tok = self.next()?;
        let r = self.visit_tok(tok, visitor);
        r.map_err(|e| self.locate(e, start, false))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let start = self.pos;
        let tok = self.next()?;
        let r = self.visit_tok(tok, visitor);
        r.map_err(|e| self.locate(e, start, fields == ARRAY_FIELDS))
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.float(Dtype::F32, visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.float(Dtype::F64, visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek() {
            Some(0xc0) => {
                self.pos += 1;
                visitor.visit_none()
            }
            _ => {
                let save = self.pos;
                if let Ok(Tok::Ext(EXT_SOME_NIL, [])) = self.next() {
                    return visitor.visit_some(().into_deserializer());
                }
                self.pos = save;
                visitor.visit_some(self)
            }
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        if name == MMAP_DATA && self.mmap {
            return self.mmap_data(visitor);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let start = self.pos;
        let r = self.enum_value(visitor);
        r.map_err(|e| self.locate(e, start, false))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.skip()?;
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

impl<'de> De<'de, '_> {
    fn enum_value<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        match self.next()? {
            Tok::Str(s) => {
                let s =
                    std::str::from_utf8(s).map_err(|_| bad("a variant name is not valid UTF-8"))?;
                visitor.visit_enum(de::value::BorrowedStrDeserializer::new(s))
            }
            Tok::Map(1) => {
                self.enter()?;
                let variant = self.pos;
                let v = visitor.visit_enum(Enum {
                    de: &mut *self,
                    variant,
                })?;
                self.depth -= 1;
                Ok(v)
            }
            _ => Err(de::Error::custom("expected an enum variant")),
        }
    }
}

/// The message for elements of one type asked for as another.
fn mismatch(stored: Dtype, want: Dtype) -> String {
    format!(
        "{} elements cannot be loaded as {} (element types are never converted)",
        stored.name(),
        want.name()
    )
}

/// A run of primitives being read from its block.
struct Run {
    id: u32,
    dtype: Dtype,
    /// Elements not yet handed out.
    left: u64,
    /// Next chunk to read.
    next_chunk: usize,
    /// The chunk being consumed, and the position in it.
    cur: Vec<u8>,
    pos: usize,
    /// Decoded chunks waiting their turn.
    queue: VecDeque<Vec<u8>>,
    spare: Vec<Vec<u8>>,
}

impl Run {
    /// Makes sure `cur[pos..]` is not empty, reading the next batch of chunks.
    fn refill(&mut self, file: &Opened<'_>) -> Result<()> {
        while self.pos >= self.cur.len() {
            if let Some(next) = self.queue.pop_front() {
                let old = std::mem::replace(&mut self.cur, next);
                self.spare.push(old);
                self.pos = 0;
                continue;
            }
            let block = &file.blocks[self.id as usize];
            let total = block.chunks.len();
            if self.next_chunk >= total {
                return Err(bad(format!(
                    "block {} ends before its last element",
                    self.id
                )));
            }
            // Enough chunks to keep every core busy decompressing.
            let n = (crate::par::threads() * 2).min(total - self.next_chunk);
            let mut out = Vec::with_capacity(n);
            file.read_chunks(
                self.id,
                block,
                self.next_chunk,
                n,
                &mut out,
                &mut self.spare,
            )?;
            self.next_chunk += n;
            self.queue.extend(out);
        }
        Ok(())
    }

    /// The next element's bytes.
    #[inline(always)]
    fn bytes<const N: usize>(&mut self, file: &Opened<'_>) -> Result<[u8; N]> {
        if let Some(s) = self.cur.get(self.pos..self.pos + N) {
            let mut b = [0u8; N];
            b.copy_from_slice(s);
            self.pos += N;
            return Ok(b);
        }
        self.bytes_slow(file)
    }

    #[inline(never)]
    fn bytes_slow<const N: usize>(&mut self, file: &Opened<'_>) -> Result<[u8; N]> {
        // An element may straddle two chunks when a foreign writer chose an
        // odd chunk size.
        let mut b = [0u8; N];
        for byte in &mut b {
            self.refill(file)?;
            *byte = self.cur[self.pos];
            self.pos += 1;
        }
        Ok(b)
    }
}

struct Seq<'a, 'de, 'f> {
    de: &'a mut De<'de, 'f>,
    left: u32,
    run: Option<Run>,
    /// The index of the next element, for error paths.
    index: usize,
}

impl<'de> SeqAccess<'de> for Seq<'_, 'de, '_> {
    type Error = Inner;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if let Some(run) = &mut self.run
            && run.left > 0
        {
            run.left -= 1;
            self.index += 1;
            return seed
                .deserialize(Elem {
                    run,
                    file: self.de.file,
                })
                .map(Some);
        }
        loop {
            if self.left == 0 {
                return Ok(None);
            }
            self.left -= 1;
            let save = self.de.pos;
            if let Ok(Tok::Ext(EXT_RUN, p)) = self.de.next() {
                let id = self.de.claim(p)?;
                let block = &self.de.file.blocks[id as usize];
                if block.dtype == Dtype::Bytes {
                    return Err(bad(format!("run block {id} has no element type")));
                }
                let left = block.len / block.dtype.width() as u64;
                let mut run = Run {
                    id,
                    dtype: block.dtype,
                    left,
                    next_chunk: 0,
                    cur: Vec::new(),
                    pos: 0,
                    queue: VecDeque::new(),
                    spare: self.run.take().map(|r| r.spare).unwrap_or_default(),
                };
                if run.left == 0 {
                    self.run = Some(run);
                    continue;
                }
                run.left -= 1;
                self.index += 1;
                let run = self.run.insert(run);
                return seed
                    .deserialize(Elem {
                        run,
                        file: self.de.file,
                    })
                    .map(Some);
            }
            self.de.pos = save;
            let index = self.index;
            self.index += 1;
            return self.de.within(Seg::Index(index), |de| {
                if let Some(v) = de.owned_seed::<T>()? {
                    return Ok(Some(v));
                }
                seed.deserialize(de).map(Some)
            });
        }
    }

    fn size_hint(&self) -> Option<usize> {
        let run = self.run.as_ref().map_or(0, |r| r.left);
        usize::try_from(run)
            .ok()
            .map(|r| r.saturating_add(self.left as usize))
    }
}

/// `deserialize_<t>` methods of [`Elem`] that read the element directly when
/// the block holds `<t>`, and refuse otherwise: elements are never converted.
macro_rules! direct {
    ($($method:ident $dtype:ident $visit:ident $t:ty),*) => {$(
        #[inline(always)]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            if self.run.dtype == Dtype::$dtype {
                visitor.$visit(<$t>::from_le_bytes(self.run.bytes(self.file)?))
            } else {
                Err(Inner::Message(mismatch(self.run.dtype, Dtype::$dtype)))
            }
        }
    )*};
}

/// One element of a run.
struct Elem<'r, 'f> {
    run: &'r mut Run,
    file: &'f Opened<'f>,
}

impl<'de> de::Deserializer<'de> for Elem<'_, '_> {
    type Error = Inner;

    fn is_human_readable(&self) -> bool {
        false
    }

    #[inline(always)]
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let f = self.file;
        let r = self.run;
        match r.dtype {
            Dtype::F64 => visitor.visit_f64(f64::from_le_bytes(r.bytes(f)?)),
            Dtype::F32 => visitor.visit_f32(f32::from_le_bytes(r.bytes(f)?)),
            Dtype::I64 => visitor.visit_i64(i64::from_le_bytes(r.bytes(f)?)),
            Dtype::U64 => visitor.visit_u64(u64::from_le_bytes(r.bytes(f)?)),
            Dtype::I32 => visitor.visit_i32(i32::from_le_bytes(r.bytes(f)?)),
            Dtype::U32 => visitor.visit_u32(u32::from_le_bytes(r.bytes(f)?)),
            Dtype::I16 => visitor.visit_i16(i16::from_le_bytes(r.bytes(f)?)),
            Dtype::U16 => visitor.visit_u16(u16::from_le_bytes(r.bytes(f)?)),
            Dtype::I8 => visitor.visit_i8(i8::from_le_bytes(r.bytes(f)?)),
            Dtype::U8 | Dtype::Bytes => visitor.visit_u8(u8::from_le_bytes(r.bytes(f)?)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    // The element's own type asked for: no dispatch on the block's type.
    direct! {
        deserialize_f64 F64 visit_f64 f64,
        deserialize_f32 F32 visit_f32 f32,
        deserialize_i64 I64 visit_i64 i64,
        deserialize_u64 U64 visit_u64 u64,
        deserialize_i32 I32 visit_i32 i32,
        deserialize_u32 U32 visit_u32 u32,
        deserialize_i16 I16 visit_i16 i16,
        deserialize_u16 U16 visit_u16 u16,
        deserialize_i8 I8 visit_i8 i8,
        deserialize_u8 U8 visit_u8 u8
    }

    forward_to_deserialize_any! {
        bool i128 u128 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
        enum ignored_any
    }
}

struct Map<'a, 'de, 'f> {
    de: &'a mut De<'de, 'f>,
    left: u32,
    /// Where the last key read starts, for error paths.
    key: usize,
}

impl<'de> MapAccess<'de> for Map<'_, 'de, '_> {
    type Error = Inner;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.key = self.de.pos;
        // A name is handed over as is: a key the type does not know is the
        // map's mismatch, reported for the map, not for the key.
        let save = self.de.pos;
        if let Ok(Tok::Str(s)) = self.de.next()
            && let Ok(s) = std::str::from_utf8(s)
        {
            return seed
                .deserialize(de::value::BorrowedStrDeserializer::new(s))
                .map(Some);
        }
        self.de.pos = save;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.de.within(Seg::Key(self.key), |de| {
            if let Some(v) = de.owned_seed::<V>()? {
                return Ok(v);
            }
            seed.deserialize(de)
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left as usize)
    }
}

struct Enum<'a, 'de, 'f> {
    de: &'a mut De<'de, 'f>,
    /// Where the variant's name starts, for error paths.
    variant: usize,
}

impl<'de, 'a, 'f> EnumAccess<'de> for Enum<'a, 'de, 'f> {
    type Error = Inner;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let v = seed.deserialize(&mut *self.de)?;
        Ok((v, self))
    }
}

impl<'de> VariantAccess<'de> for Enum<'_, 'de, '_> {
    type Error = Inner;

    fn unit_variant(self) -> Result<()> {
        de::Deserialize::deserialize(self.de)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        self.de.within(Seg::Key(self.variant), |de| {
            if let Some(v) = de.owned_seed::<T>()? {
                return Ok(v);
            }
            seed.deserialize(de)
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.de.within(Seg::Key(self.variant), |de| {
            de::Deserializer::deserialize_any(de, visitor)
        })
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.de.within(Seg::Key(self.variant), |de| {
            de::Deserializer::deserialize_any(de, visitor)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use serde::Deserialize;

    use super::De;
    use crate::DumpOptions;
    use crate::source::{Opened, Source};

    /// Dumps `value`, loads it back as `T` and counts the blocks read by
    /// the owned path.
    fn owned_reads<
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    >(
        value: &T,
    ) -> usize {
        let bytes = DumpOptions::new()
            .min_block_size(1)
            .dump_to_writer(value, Vec::new())
            .unwrap();
        let path = Path::new("test.jbl");
        let opened = Opened::open(path, Source::Bytes(&bytes)).unwrap();
        let structure = opened.read_block(u32::MAX, &opened.structure).unwrap();
        let mut de = De::new(&structure, &opened);
        let back = match de.owned_value::<T>().unwrap() {
            Some(v) => v,
            None => T::deserialize(&mut de).unwrap(),
        };
        de.end().unwrap();
        assert_eq!(&back, value);
        de.owned_reads
    }

    #[derive(serde::Serialize, Deserialize, PartialEq, Debug)]
    struct Fields {
        a: Vec<f64>,
        b: (Vec<u8>, Vec<i32>),
        c: Option<Vec<f64>>,
        d: Vec<Vec<u16>>,
    }

    #[derive(serde::Serialize, Deserialize, PartialEq, Debug)]
    enum E {
        V(Vec<i64>),
    }

    #[test]
    fn vectors_of_primitives_take_the_owned_path() {
        assert_eq!(owned_reads(&vec![1.5f64; 100]), 1);
        assert_eq!(owned_reads(&vec![1u64, 2, 3]), 1);
        let fields = Fields {
            a: vec![0.5; 10],
            b: (vec![1, 2], vec![-3; 7]),
            c: Some(vec![2.0; 3]),
            d: vec![vec![1, 2], vec![3]],
        };
        // All but `c` (serde's `Option` asks the deserializer directly).
        assert_eq!(owned_reads(&fields), 5);
        assert_eq!(owned_reads(&E::V(vec![4; 9])), 1);
        let map: BTreeMap<String, Vec<f32>> = [("k".to_string(), vec![1.0; 5])].into();
        assert_eq!(owned_reads(&map), 1);
        #[cfg(feature = "ndarray")]
        assert_eq!(owned_reads(&ndarray::Array2::<f64>::ones((3, 4))), 1);
        // Not a `Vec` of primitives: the general path.
        assert_eq!(owned_reads(&vec![Some(1.0f64); 4]), 0);
        assert_eq!(
            owned_reads(&std::collections::VecDeque::from(vec![1.0f64; 4])),
            0
        );
        assert_eq!(owned_reads(&Some(vec![1.0f64; 4])), 0);
    }
}
