//! [`outline`]: the shape of the value a file holds (field names, types,
//! array shapes and element types), read from its structure without
//! loading any array.

use std::fs::File;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, corrupt, io_err};
use crate::format::{Dtype, MAX_DEPTH};
use crate::ser::{EXT_BYTES, EXT_I128, EXT_RUN, EXT_SOME_NIL, EXT_U128};
use crate::source::{Opened, Source};

/// Items of one array kept in an outline; the rest are counted only.
pub const OUTLINE_SEQ_ITEMS: usize = 8;
/// Entries of one map kept in an outline (a struct's fields are a map).
pub const OUTLINE_MAP_ENTRIES: usize = 64;
/// Nodes kept in a whole outline, so that a huge structure gives a short
/// outline: past it, containers are counted but their content dropped.
pub const OUTLINE_NODES: usize = 4096;
/// Characters of a string kept in an outline.
const STR_PREVIEW: usize = 40;

/// One value of a file's structure, as [`outline`] describes it.
///
/// Serializes (for tools printing JSON) as an object with a `"kind"` field
/// naming the variant in snake case.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Node {
    /// A nil: `None`, `()` or a unit struct.
    Nil,
    /// `Some` of a value that is itself stored as nil.
    SomeNil,
    /// A boolean.
    Bool {
        /// Its value.
        value: bool,
    },
    /// A signed integer (stored in its smallest encoding, so the Rust
    /// width is not recorded).
    Int {
        /// Its value.
        value: i64,
    },
    /// An unsigned integer.
    Uint {
        /// Its value.
        value: u64,
    },
    /// An `i128` or `u128`.
    Int128 {
        /// Whether it is signed.
        signed: bool,
    },
    /// An `f32`.
    F32 {
        /// Its value.
        value: f32,
    },
    /// An `f64`.
    F64 {
        /// Its value.
        value: f64,
    },
    /// A string (a `char`, a `String`, a unit variant's name, a field name).
    Str {
        /// Its length in bytes.
        len: u64,
        /// Its first characters.
        preview: String,
        /// Whether `preview` is the whole string.
        complete: bool,
    },
    /// A short byte string stored inline.
    Bytes {
        /// Its length in bytes.
        len: u64,
    },
    /// A byte string stored out of line in a block.
    BytesBlock {
        /// The block's id.
        block: u32,
        /// Its length in bytes.
        len: u64,
    },
    /// A run of numbers of one type stored out of line: the data of an
    /// `ndarray` array, or part or all of a `Vec` of numbers. It stands for
    /// `elements` items of the sequence holding it.
    Run {
        /// The block's id.
        block: u32,
        /// The element type.
        #[serde(serialize_with = "dtype_name")]
        dtype: Dtype,
        /// The block's shape: an ndarray array's own shape, else `[elements]`.
        shape: Vec<u64>,
        /// How many elements.
        elements: u64,
    },
    /// A sequence, tuple or tuple struct.
    Seq {
        /// How many items, counting each element of a run.
        len: u64,
        /// The first items kept (at most [`OUTLINE_SEQ_ITEMS`]).
        items: Vec<Node>,
        /// Whether `items` describes the whole sequence.
        complete: bool,
    },
    /// A map, a struct (field names to values) or an enum variant with data
    /// (a one-entry map from its name).
    Map {
        /// How many entries.
        len: u64,
        /// The first entries kept (at most [`OUTLINE_MAP_ENTRIES`]).
        entries: Vec<(Node, Node)>,
        /// Whether `entries` describes the whole map.
        complete: bool,
    },
}

fn dtype_name<S: serde::Serializer>(dtype: &Dtype, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(dtype.name())
}

/// The outline of a file's stored value: see [`outline`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Outline {
    /// The top-level value.
    pub root: Node,
    /// Whether every node of the structure is in the outline (no
    /// sequence, map or string was cut short).
    pub complete: bool,
}

/// Reads and checks the structure of the file at `path` and describes the
/// value it holds: field names and types, the shape and element type of
/// each out-of-line array, and a preview of small values. No array block
/// is read. Long sequences and maps are cut (see [`OUTLINE_SEQ_ITEMS`],
/// [`OUTLINE_MAP_ENTRIES`] and [`OUTLINE_NODES`]) but still counted.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("a.jbl");
/// joblib_persist::dump(&(String::from("ridge"), vec![1.5f64; 1000]), &path)?;
/// let outline = joblib_persist::outline(&path)?;
/// let joblib_persist::Node::Seq { items, .. } = &outline.root else { panic!() };
/// assert!(matches!(&items[1], joblib_persist::Node::Seq { len: 1000, .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// The errors of [`inspect`](crate::inspect), and [`Error::Corrupt`] or
/// [`Error::Checksum`] when the structure is damaged.
pub fn outline(path: impl AsRef<Path>) -> Result<Outline, Error> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| io_err(path, "opening", e))?;
    let opened = Opened::open(path, Source::File(&file))?;
    let structure = opened.read_block(u32::MAX, &opened.structure)?;
    let mut walker = Walker {
        input: &structure,
        pos: 0,
        depth: 0,
        kept: 0,
        complete: true,
        blocks: &opened,
    };
    let root = walker
        .value(true)
        .map_err(|what| corrupt(path, format!("the structure: {what}")))?;
    if walker.pos != structure.len() {
        return Err(corrupt(path, "the structure has bytes after the value"));
    }
    Ok(Outline {
        root,
        complete: walker.complete,
    })
}

/// Walks the MessagePack structure, keeping what the outline shows.
struct Walker<'a> {
    input: &'a [u8],
    pos: usize,
    depth: usize,
    /// Nodes kept so far.
    kept: usize,
    complete: bool,
    blocks: &'a Opened<'a>,
}

type Step<T> = Result<T, String>;

impl<'a> Walker<'a> {
    fn take(&mut self, n: usize) -> Step<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.input.len())
            .ok_or("it ends in the middle of a value")?;
        let s = &self.input[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// A big-endian unsigned integer of `n` bytes.
    fn be(&mut self, n: usize) -> Step<u64> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, &b| (a << 8) | u64::from(b)))
    }

    fn len_of(&mut self, n: usize) -> Step<usize> {
        usize::try_from(self.be(n)?).map_err(|_| "a length does not fit in memory".to_string())
    }

    /// Checks that `items` values of at least `min` bytes each can follow.
    fn check_count(&self, items: u64, min: u64) -> Step<()> {
        let left = (self.input.len() - self.pos) as u64;
        if items.saturating_mul(min) > left {
            return Err(format!(
                "a collection claims {items} items but only {left} bytes are left"
            ));
        }
        Ok(())
    }

    /// Whether one more node may be kept.
    fn keep(&mut self) -> bool {
        if self.kept < OUTLINE_NODES {
            self.kept += 1;
            true
        } else {
            self.complete = false;
            false
        }
    }

    fn block(&self, payload: &[u8]) -> Step<(u32, &'a crate::format::Block)> {
        let b: [u8; 4] = payload
            .try_into()
            .map_err(|_| "a block reference has the wrong size".to_string())?;
        let id = u32::from_le_bytes(b);
        let block = self
            .blocks
            .blocks
            .get(id as usize)
            .ok_or_else(|| format!("it refers to block {id}, which does not exist"))?;
        Ok((id, block))
    }

    /// Reads one value. `inside_seq` allows a run reference.
    fn value(&mut self, inside_seq: bool) -> Step<Node> {
        let m = self.take(1)?[0];
        Ok(match m {
            0x00..=0x7f => Node::Uint {
                value: u64::from(m),
            },
            0xe0..=0xff => Node::Int {
                value: i64::from(m as i8),
            },
            0x80..=0x8f => self.map(u64::from(m & 0x0f))?,
            0xde | 0xdf => {
                let n = self.be(2 << (m - 0xde))?;
                self.map(n)?
            }
            0x90..=0x9f => self.seq(u64::from(m & 0x0f))?,
            0xdc | 0xdd => {
                let n = self.be(2 << (m - 0xdc))?;
                self.seq(n)?
            }
            0xa0..=0xbf => self.string(usize::from(m & 0x1f))?,
            0xd9..=0xdb => {
                let n = self.len_of(1 << (m - 0xd9))?;
                self.string(n)?
            }
            0xc0 => Node::Nil,
            0xc2 => Node::Bool { value: false },
            0xc3 => Node::Bool { value: true },
            0xc4..=0xc6 => {
                let n = self.len_of(1 << (m - 0xc4))?;
                self.take(n)?;
                Node::Bytes { len: n as u64 }
            }
            0xca => Node::F32 {
                value: f32::from_bits(self.be(4)? as u32),
            },
            0xcb => Node::F64 {
                value: f64::from_bits(self.be(8)?),
            },
            0xcc..=0xcf => Node::Uint {
                value: self.be(1 << (m - 0xcc))?,
            },
            0xd0 => Node::Int {
                value: i64::from(self.be(1)? as u8 as i8),
            },
            0xd1 => Node::Int {
                value: i64::from(self.be(2)? as u16 as i16),
            },
            0xd2 => Node::Int {
                value: i64::from(self.be(4)? as u32 as i32),
            },
            0xd3 => Node::Int {
                value: self.be(8)? as i64,
            },
            0xc7..=0xc9 => {
                let n = self.len_of(1 << (m - 0xc7))?;
                let ty = self.take(1)?[0] as i8;
                let payload = self.take(n)?;
                self.ext(ty, payload, inside_seq)?
            }
            0xd4..=0xd8 => {
                let ty = self.take(1)?[0] as i8;
                let payload = self.take(1 << (m - 0xd4))?;
                self.ext(ty, payload, inside_seq)?
            }
            0xc1 => return Err("it holds the reserved MessagePack byte 0xc1".into()),
        })
    }

    fn ext(&mut self, ty: i8, payload: &[u8], inside_seq: bool) -> Step<Node> {
        match ty {
            EXT_RUN if inside_seq => {
                let (block, b) = self.block(payload)?;
                let width = b.dtype.width() as u64;
                Ok(Node::Run {
                    block,
                    dtype: b.dtype,
                    shape: b.shape.clone(),
                    elements: b.len / width,
                })
            }
            EXT_RUN => Err("a run reference outside a sequence".into()),
            EXT_BYTES => {
                let (block, b) = self.block(payload)?;
                Ok(Node::BytesBlock { block, len: b.len })
            }
            EXT_SOME_NIL if payload.is_empty() => Ok(Node::SomeNil),
            EXT_U128 | EXT_I128 if payload.len() == 16 => Ok(Node::Int128 {
                signed: ty == EXT_I128,
            }),
            _ => Err(format!("malformed MessagePack extension of type {ty}")),
        }
    }

    fn string(&mut self, n: usize) -> Step<Node> {
        let bytes = self.take(n)?;
        let s = std::str::from_utf8(bytes).map_err(|_| "a string is not valid UTF-8")?;
        let preview: String = s.chars().take(STR_PREVIEW).collect();
        let complete = preview.len() == s.len();
        Ok(Node::Str {
            len: n as u64,
            preview,
            complete,
        })
    }

    fn enter(&mut self) -> Step<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("values are nested deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    fn seq(&mut self, n: u64) -> Step<Node> {
        self.check_count(n, 1)?;
        self.enter()?;
        let mut len = 0u64;
        let mut items = Vec::new();
        for _ in 0..n {
            let item = self.value(true)?;
            len = len.saturating_add(match &item {
                Node::Run { elements, .. } => *elements,
                _ => 1,
            });
            if items.len() < OUTLINE_SEQ_ITEMS && self.keep() {
                items.push(item);
            }
        }
        self.depth -= 1;
        let complete = items.len() as u64 == n;
        self.complete &= complete;
        Ok(Node::Seq {
            len,
            items,
            complete,
        })
    }

    fn map(&mut self, n: u64) -> Step<Node> {
        self.check_count(n, 2)?;
        self.enter()?;
        let mut entries = Vec::new();
        for _ in 0..n {
            let key = self.value(false)?;
            let value = self.value(false)?;
            if entries.len() < OUTLINE_MAP_ENTRIES && self.keep() {
                entries.push((key, value));
            }
        }
        self.depth -= 1;
        let complete = entries.len() as u64 == n;
        self.complete &= complete;
        Ok(Node::Map {
            len: n,
            entries,
            complete,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Serialize)]
    struct Model {
        name: String,
        weights: Vec<f64>,
        bias: Option<f32>,
        tags: Vec<(u8, String)>,
    }

    fn field<'n>(node: &'n Node, name: &str) -> &'n Node {
        let Node::Map { entries, .. } = node else {
            panic!("not a map: {node:?}")
        };
        entries
            .iter()
            .find(|(k, _)| matches!(k, Node::Str { preview, .. } if preview == name))
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no field {name}"))
    }

    #[test]
    fn fields_runs_and_cut_sequences() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jbl");
        let model = Model {
            name: "ridge".into(),
            weights: vec![0.5; 500],
            bias: Some(1.0),
            tags: (0..20).map(|i| (i, format!("t{i}"))).collect(),
        };
        crate::dump(&model, &path).unwrap();
        let outline = outline(&path).unwrap();
        assert!(!outline.complete, "tags has more than 8 items");
        assert_eq!(
            field(&outline.root, "name"),
            &Node::Str {
                len: 5,
                preview: "ridge".into(),
                complete: true
            }
        );
        let Node::Seq { len, items, .. } = field(&outline.root, "weights") else {
            panic!()
        };
        assert_eq!(*len, 500);
        assert!(matches!(
            &items[..],
            [Node::Run {
                dtype: Dtype::F64,
                elements: 500,
                block: 0,
                ..
            }]
        ));
        assert_eq!(field(&outline.root, "bias"), &Node::F32 { value: 1.0 });
        let Node::Seq {
            len,
            items,
            complete,
        } = field(&outline.root, "tags")
        else {
            panic!()
        };
        assert_eq!(
            (*len, items.len(), *complete),
            (20, OUTLINE_SEQ_ITEMS, false)
        );
    }

    #[test]
    fn damaged_structure_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.jbl");
        crate::dump(&vec!["x".to_string(); 10], &path).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        // No blocks: the structure starts right after the 64-byte header.
        assert!(crate::inspect(&path).unwrap().blocks.is_empty());
        bytes[64] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(outline(&path), Err(Error::Checksum { .. })));
    }
}
