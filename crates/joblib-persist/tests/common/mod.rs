//! Hand-building `.jbl` files byte by byte, for tests of hostile input.
//! Mirrors `docs/format.md` independently of the crate's own writer.

#![allow(dead_code, unreachable_pub)]

use serde::Serialize;
use twox_hash::XxHash3_64;

#[derive(Serialize, Clone, Debug)]
pub struct Chunk {
    pub stored: u64,
    pub hash: u64,
}

#[derive(Serialize, Clone, Debug)]
pub struct Entry {
    pub offset: u64,
    pub len: u64,
    pub dtype: u8,
    pub shape: Vec<u64>,
    pub chunks: Vec<Chunk>,
}

#[derive(Serialize, Clone, Debug)]
pub struct Index {
    pub structure: Entry,
    pub blocks: Vec<Entry>,
}

pub fn header(version: u16, chunk: u32, method: &str) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..8].copy_from_slice(b"\x89JBL\r\n\x1a\n");
    h[8..10].copy_from_slice(&version.to_le_bytes());
    h[12..16].copy_from_slice(&chunk.to_le_bytes());
    h[16..16 + method.len()].copy_from_slice(method.as_bytes());
    let sum = XxHash3_64::oneshot(&h[..56]);
    h[56..].copy_from_slice(&sum.to_le_bytes());
    h
}

pub fn trailer(index_offset: u64, index: &[u8], file_len: u64) -> Vec<u8> {
    let mut t = vec![0u8; 64];
    t[..8].copy_from_slice(b"\x89JBLEND\n");
    t[8..16].copy_from_slice(&index_offset.to_le_bytes());
    t[16..24].copy_from_slice(&(index.len() as u64).to_le_bytes());
    t[24..32].copy_from_slice(&XxHash3_64::oneshot(index).to_le_bytes());
    t[32..40].copy_from_slice(&file_len.to_le_bytes());
    t[40..42].copy_from_slice(&1u16.to_le_bytes());
    let sum = XxHash3_64::oneshot(&t[..56]);
    t[56..].copy_from_slice(&sum.to_le_bytes());
    t
}

fn pad(file: &mut Vec<u8>) {
    while !file.len().is_multiple_of(64) {
        file.push(0);
    }
}

/// An uncompressed file with 4 KiB chunks holding `structure` (MessagePack)
/// and `blocks` of `(dtype code, bytes)`; `edit` may then lie in the index.
pub fn craft(structure: &[u8], blocks: &[(u8, Vec<u8>)], edit: impl FnOnce(&mut Index)) -> Vec<u8> {
    const CHUNK: usize = 4096;
    let mut file = header(1, CHUNK as u32, "none");
    let entry = |file: &mut Vec<u8>, dtype: u8, bytes: &[u8]| {
        pad(file);
        let offset = file.len() as u64;
        file.extend_from_slice(bytes);
        Entry {
            offset,
            len: bytes.len() as u64,
            dtype,
            shape: vec![bytes.len() as u64 / width(dtype)],
            chunks: bytes
                .chunks(CHUNK)
                .map(|c| Chunk {
                    stored: c.len() as u64,
                    hash: XxHash3_64::oneshot(c),
                })
                .collect(),
        }
    };
    let entries: Vec<Entry> = blocks
        .iter()
        .map(|(d, b)| entry(&mut file, *d, b))
        .collect();
    let s = entry(&mut file, 0, structure);
    let mut index = Index {
        structure: s,
        blocks: entries,
    };
    edit(&mut index);
    let index_bytes = rmp_serde::to_vec(&index).unwrap();
    let index_offset = file.len() as u64;
    file.extend_from_slice(&index_bytes);
    let len = file.len() as u64 + 64;
    file.extend(trailer(index_offset, &index_bytes, len));
    file
}

fn width(dtype: u8) -> u64 {
    match dtype {
        3 | 4 => 2,
        5 | 6 | 9 => 4,
        7 | 8 | 10 => 8,
        _ => 1,
    }
}

/// MessagePack of a one-item array holding a run reference to block `id`.
pub fn run_ref(id: u32) -> Vec<u8> {
    let mut v = vec![0x91, 0xd6, 0x01];
    v.extend_from_slice(&id.to_le_bytes());
    v
}

/// A tiny deterministic generator (xorshift64*), so failures replay.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}
