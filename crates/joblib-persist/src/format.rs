//! The fixed parts of a `.jbl` file: header, trailer, block index, element
//! types. `docs/format.md` is the specification; every constant here is part
//! of it.

use std::path::Path;

use serde::{Deserialize, Serialize};
use twox_hash::XxHash3_64;

use crate::error::{Error, corrupt};

/// The first eight bytes of every file. The high byte and the CR LF / LF /
/// Ctrl-Z sequence catch 7-bit and text-mode transfers (as PNG's magic does).
pub(crate) const MAGIC: [u8; 8] = *b"\x89JBL\r\n\x1a\n";
/// The first eight bytes of the trailer.
pub(crate) const TRAILER_MAGIC: [u8; 8] = *b"\x89JBLEND\n";
/// The format version this library writes and the newest it reads.
pub const FORMAT_VERSION: u16 = 1;
/// Size of the header and of the trailer.
pub(crate) const HEADER_LEN: usize = 64;
/// Size of the trailer.
pub(crate) const TRAILER_LEN: usize = 64;
/// Every block starts at a multiple of this many bytes.
pub(crate) const ALIGN: u64 = 64;
/// Smallest and largest chunk size a file may declare.
pub(crate) const MIN_CHUNK: u32 = 4 * 1024;
/// The largest chunk size: bounds the memory one chunk can make us allocate.
pub(crate) const MAX_CHUNK: u32 = 64 * 1024 * 1024;
/// Longest compression method name.
pub(crate) const MAX_METHOD_LEN: usize = 32;
/// Deepest nesting of arrays, maps and shapes accepted on load.
pub(crate) const MAX_DEPTH: usize = 256;

/// The element type of an out-of-line block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dtype {
    /// Opaque bytes: the structure, or a `serde_bytes` byte string.
    Bytes,
    /// `u8` elements.
    U8,
    /// `i8` elements.
    I8,
    /// `u16` elements, little-endian.
    U16,
    /// `i16` elements, little-endian.
    I16,
    /// `u32` elements, little-endian.
    U32,
    /// `i32` elements, little-endian.
    I32,
    /// `u64` elements, little-endian.
    U64,
    /// `i64` elements, little-endian.
    I64,
    /// `f32` elements, IEEE 754 little-endian.
    F32,
    /// `f64` elements, IEEE 754 little-endian.
    F64,
}

impl Dtype {
    /// The code stored in the index.
    pub(crate) fn code(self) -> u8 {
        match self {
            Dtype::Bytes => 0,
            Dtype::U8 => 1,
            Dtype::I8 => 2,
            Dtype::U16 => 3,
            Dtype::I16 => 4,
            Dtype::U32 => 5,
            Dtype::I32 => 6,
            Dtype::U64 => 7,
            Dtype::I64 => 8,
            Dtype::F32 => 9,
            Dtype::F64 => 10,
        }
    }

    /// The type for a stored code.
    pub(crate) fn from_code(code: u8) -> Option<Dtype> {
        Some(match code {
            0 => Dtype::Bytes,
            1 => Dtype::U8,
            2 => Dtype::I8,
            3 => Dtype::U16,
            4 => Dtype::I16,
            5 => Dtype::U32,
            6 => Dtype::I32,
            7 => Dtype::U64,
            8 => Dtype::I64,
            9 => Dtype::F32,
            10 => Dtype::F64,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn width(self) -> usize {
        match self {
            Dtype::Bytes | Dtype::U8 | Dtype::I8 => 1,
            Dtype::U16 | Dtype::I16 => 2,
            Dtype::U32 | Dtype::I32 | Dtype::F32 => 4,
            Dtype::U64 | Dtype::I64 | Dtype::F64 => 8,
        }
    }

    /// The Rust name of the element type (`"f64"`, ...; `"bytes"`).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Bytes => "bytes",
            Dtype::U8 => "u8",
            Dtype::I8 => "i8",
            Dtype::U16 => "u16",
            Dtype::I16 => "i16",
            Dtype::U32 => "u32",
            Dtype::I32 => "i32",
            Dtype::U64 => "u64",
            Dtype::I64 => "i64",
            Dtype::F32 => "f32",
            Dtype::F64 => "f64",
        }
    }
}

/// The decoded 64-byte header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) version: u16,
    pub(crate) chunk_size: u32,
    pub(crate) method: String,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..10].copy_from_slice(&self.version.to_le_bytes());
        // 10..12: flags, zero in version 1.
        h[12..16].copy_from_slice(&self.chunk_size.to_le_bytes());
        let name = self.method.as_bytes();
        h[16..16 + name.len()].copy_from_slice(name);
        let sum = XxHash3_64::oneshot(&h[..56]);
        h[56..64].copy_from_slice(&sum.to_le_bytes());
        h
    }

    pub(crate) fn decode(path: &Path, h: &[u8]) -> Result<Header, Error> {
        if h.len() < 8 || h[..8] != MAGIC {
            let mangled = h.len() >= 4 && h[..4] == MAGIC[..4];
            return Err(Error::NotJbl {
                path: path.to_path_buf(),
                mangled,
            });
        }
        if h.len() < HEADER_LEN {
            return Err(corrupt(path, "the header is truncated"));
        }
        let version = u16::from_le_bytes([h[8], h[9]]);
        if version > FORMAT_VERSION {
            return Err(Error::NewerVersion {
                path: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if XxHash3_64::oneshot(&h[..56]).to_le_bytes() != h[56..64] {
            return Err(Error::Checksum {
                path: path.to_path_buf(),
                part: "the header".into(),
            });
        }
        if version == 0 {
            return Err(corrupt(path, "format version 0 does not exist"));
        }
        if h[10..12] != [0, 0] || h[48..56].iter().any(|&b| b != 0) {
            return Err(corrupt(path, "reserved header bytes are not zero"));
        }
        let chunk_size = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&chunk_size) {
            return Err(corrupt(
                path,
                format!("chunk size {chunk_size} is outside {MIN_CHUNK}..={MAX_CHUNK}"),
            ));
        }
        let name = &h[16..48];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        if name[end..].iter().any(|&b| b != 0) || end == 0 {
            return Err(corrupt(path, "the compression method name is malformed"));
        }
        let method = std::str::from_utf8(&name[..end])
            .ok()
            .filter(|s| valid_method_name(s))
            .ok_or_else(|| corrupt(path, "the compression method name is malformed"))?;
        Ok(Header {
            version,
            chunk_size,
            method: method.to_string(),
        })
    }
}

/// A method name is 1 to 32 bytes of ASCII letters, digits, `-`, `_` and `.`.
pub(crate) fn valid_method_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_METHOD_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The decoded 64-byte trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Trailer {
    pub(crate) index_offset: u64,
    pub(crate) index_len: u64,
    pub(crate) index_hash: u64,
    pub(crate) file_len: u64,
}

impl Trailer {
    pub(crate) fn encode(&self) -> [u8; TRAILER_LEN] {
        let mut t = [0u8; TRAILER_LEN];
        t[0..8].copy_from_slice(&TRAILER_MAGIC);
        t[8..16].copy_from_slice(&self.index_offset.to_le_bytes());
        t[16..24].copy_from_slice(&self.index_len.to_le_bytes());
        t[24..32].copy_from_slice(&self.index_hash.to_le_bytes());
        t[32..40].copy_from_slice(&self.file_len.to_le_bytes());
        t[40..42].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        let sum = XxHash3_64::oneshot(&t[..56]);
        t[56..64].copy_from_slice(&sum.to_le_bytes());
        t
    }

    /// Parses and checks the trailer of a file of `file_len` bytes.
    pub(crate) fn decode(path: &Path, t: &[u8], file_len: u64) -> Result<Trailer, Error> {
        if t.len() != TRAILER_LEN || t[..8] != TRAILER_MAGIC {
            return Err(corrupt(
                path,
                "the trailer is missing: the file is truncated",
            ));
        }
        if XxHash3_64::oneshot(&t[..56]).to_le_bytes() != t[56..64] {
            return Err(Error::Checksum {
                path: path.to_path_buf(),
                part: "the trailer".into(),
            });
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&t[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let tr = Trailer {
            index_offset: u64_at(8),
            index_len: u64_at(16),
            index_hash: u64_at(24),
            file_len: u64_at(32),
        };
        if tr.file_len != file_len {
            return Err(corrupt(
                path,
                format!(
                    "the trailer records a file of {} bytes but it has {file_len}",
                    tr.file_len
                ),
            ));
        }
        let index_end = tr
            .index_offset
            .checked_add(tr.index_len)
            .and_then(|e| e.checked_add(TRAILER_LEN as u64));
        if tr.index_offset < HEADER_LEN as u64 || index_end != Some(file_len) {
            return Err(corrupt(path, "the trailer's index position is impossible"));
        }
        Ok(tr)
    }
}

/// One chunk of a block as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChunkEntry {
    /// Stored (possibly compressed) length in bytes.
    pub(crate) stored: u64,
    /// XXH3-64 of the stored bytes.
    pub(crate) hash: u64,
}

/// One block as recorded in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BlockEntry {
    /// Absolute offset of the first stored byte; a multiple of 64.
    pub(crate) offset: u64,
    /// Raw (uncompressed) length in bytes.
    pub(crate) len: u64,
    /// Element type code.
    pub(crate) dtype: u8,
    /// Logical shape, as seen while dumping (`[len / width]` unless the block
    /// is the data of an ndarray array).
    pub(crate) shape: Vec<u64>,
    /// The chunks, in order.
    pub(crate) chunks: Vec<ChunkEntry>,
}

/// The index: where the structure and every block are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Index {
    /// The MessagePack structure, stored as a block of bytes.
    pub(crate) structure: BlockEntry,
    /// The out-of-line blocks; their position in this list is their id.
    pub(crate) blocks: Vec<BlockEntry>,
}

/// A block entry that was checked against the file.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub(crate) offset: u64,
    pub(crate) len: u64,
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<u64>,
    pub(crate) chunks: Vec<ChunkEntry>,
    /// Offset of each chunk's stored bytes, relative to `offset`.
    pub(crate) chunk_starts: Vec<u64>,
    /// Total stored length.
    pub(crate) stored_len: u64,
}

impl Index {
    /// Decodes the index bytes and checks every entry against the file:
    /// blocks lie inside the data region, do not overlap, are aligned, and
    /// their lengths agree with their chunks.
    pub(crate) fn decode_checked(
        path: &Path,
        bytes: &[u8],
        header: &Header,
        index_offset: u64,
        compressed: bool,
    ) -> Result<(Block, Vec<Block>), Error> {
        let index: Index = rmp_serde::from_slice(bytes)
            .map_err(|e| corrupt(path, format!("the block index does not parse: {e}")))?;
        let mut end_of_previous = HEADER_LEN as u64;
        let mut check = |entry: BlockEntry, what: &str| -> Result<Block, Error> {
            let bad = |why: String| corrupt(path, format!("{what}: {why}"));
            let dtype = Dtype::from_code(entry.dtype)
                .ok_or_else(|| bad(format!("unknown element type code {}", entry.dtype)))?;
            // Blocks follow each other with only the alignment padding between.
            let gap = entry.offset.checked_sub(end_of_previous);
            if !entry.offset.is_multiple_of(ALIGN) || gap.is_none_or(|g| g >= ALIGN) {
                return Err(bad(
                    "its offset is misaligned, overlaps the previous block or leaves a gap".into(),
                ));
            }
            let width = dtype.width() as u64;
            if !entry.len.is_multiple_of(width) {
                return Err(bad(format!(
                    "{} bytes is not a whole number of {}",
                    entry.len,
                    dtype.name()
                )));
            }
            let chunk = u64::from(header.chunk_size);
            let expected_chunks = entry.len.div_ceil(chunk);
            if entry.chunks.len() as u64 != expected_chunks {
                return Err(bad(format!(
                    "{} bytes in chunks of {chunk} need {expected_chunks} chunks, the index lists {}",
                    entry.len,
                    entry.chunks.len()
                )));
            }
            if entry.shape.len() > MAX_DEPTH {
                return Err(bad("its shape has too many dimensions".into()));
            }
            let elements = entry
                .shape
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| bad("its shape overflows".into()))?;
            if elements != entry.len / width {
                return Err(bad("its shape does not match its length".into()));
            }
            let mut starts = Vec::with_capacity(entry.chunks.len());
            let mut stored_len = 0u64;
            for (i, c) in entry.chunks.iter().enumerate() {
                let raw = chunk.min(entry.len - i as u64 * chunk);
                if !compressed && c.stored != raw {
                    return Err(bad(format!(
                        "chunk {i} of an uncompressed block has the wrong length"
                    )));
                }
                if compressed && (c.stored == 0 || c.stored > u64::from(MAX_CHUNK) * 2) {
                    return Err(bad(format!("chunk {i} has an impossible stored length")));
                }
                starts.push(stored_len);
                stored_len = stored_len
                    .checked_add(c.stored)
                    .ok_or_else(|| bad("its stored length overflows".into()))?;
            }
            let end = entry
                .offset
                .checked_add(stored_len)
                .filter(|&e| e <= index_offset)
                .ok_or_else(|| bad("it extends past the data region".into()))?;
            end_of_previous = end;
            Ok(Block {
                offset: entry.offset,
                len: entry.len,
                dtype,
                shape: entry.shape,
                chunks: entry.chunks,
                chunk_starts: starts,
                stored_len,
            })
        };
        // Blocks are written in id order and the structure last.
        let mut blocks = Vec::with_capacity(index.blocks.len());
        for (i, b) in index.blocks.into_iter().enumerate() {
            blocks.push(check(b, &format!("block {i}"))?);
        }
        let structure = check(index.structure, "the structure")?;
        if structure.dtype != Dtype::Bytes {
            return Err(corrupt(path, "the structure is not a byte block"));
        }
        if structure.offset + structure.stored_len != index_offset {
            return Err(corrupt(path, "the index does not follow the structure"));
        }
        Ok((structure, blocks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_detects_damage() {
        let h = Header {
            version: FORMAT_VERSION,
            chunk_size: 1 << 20,
            method: "zstd".into(),
        };
        let bytes = h.encode();
        let p = Path::new("x.jbl");
        assert_eq!(Header::decode(p, &bytes).ok(), Some(h));
        let mut lf = bytes.to_vec();
        lf.remove(4); // CR LF -> LF, as a text-mode copy does
        assert!(matches!(
            Header::decode(p, &lf),
            Err(Error::NotJbl { mangled: true, .. })
        ));
        let mut newer = bytes;
        newer[8] = 9;
        assert!(matches!(
            Header::decode(p, &newer),
            Err(Error::NewerVersion { found: 9, .. })
        ));
        let mut flipped = bytes;
        flipped[20] ^= 1;
        assert!(matches!(
            Header::decode(p, &flipped),
            Err(Error::Checksum { .. })
        ));
    }

    #[test]
    fn dtype_codes_round_trip() {
        for code in 0..=10 {
            let d = Dtype::from_code(code).map(Dtype::code);
            assert_eq!(d, Some(code));
        }
        assert_eq!(Dtype::from_code(11), None);
    }
}
