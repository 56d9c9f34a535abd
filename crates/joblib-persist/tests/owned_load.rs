//! Owned loads of large blocks: `Vec`s of primitives and ndarray arrays are
//! read straight into the vector returned (allocated whole, with huge pages
//! past 4 MiB, for an uncompressed file; grown batch by batch for a
//! compressed one). Every way of reaching that path gives the same value as
//! the element-by-element serde path, and damage still gives an error.

mod common;

use std::io;
use std::sync::Arc;

use common::{Chunk, Entry, Index, header, run_ref, trailer};
use joblib_persist::{
    Compression, Compressor, DumpOptions, Error, MmapMode, load, load_from_reader, load_mmap,
    register_compressor,
};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use twox_hash::XxHash3_64;

/// 4.5 MiB and a bit: past the 4 MiB huge-page threshold, not a whole
/// number of chunks.
const BIG: usize = (9 << 19) / 8 + 5;

fn big_vec() -> Vec<f64> {
    (0..BIG).map(|i| (i as f64 * 1e-3).sin()).collect()
}

/// 4.3 MB, past the huge-page threshold too.
fn big_grid() -> Array2<f64> {
    Array2::from_shape_fn((600, 900), |(i, j)| (i * 900 + j) as f64 * 0.25)
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
enum Payload {
    Ints(Vec<u64>),
    Nothing,
}

/// A value reaching the owned path every way it can: a struct field (map
/// value), a sequence element, an ndarray array, an enum's newtype variant;
/// and the general path: `Option<Vec<_>>`, a block of another element type.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Model {
    xs: Vec<f64>,
    grid: Array2<f64>,
    small: Vec<i16>,
    bytes: Vec<u8>,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
    rows: Vec<Vec<f32>>,
    payload: Payload,
    maybe: Option<Vec<i32>>,
    tuple: (Vec<u32>, String),
}

fn model() -> Model {
    Model {
        xs: big_vec(),
        grid: big_grid().slice(ndarray::s![..30, ..40]).to_owned(),
        small: (0..3000).map(|i| (i % 700) as i16 - 350).collect(),
        bytes: (0..100_000u32).map(|i| (i % 251) as u8).collect(),
        blob: (0..(5 << 20) as u32).map(|i| (i % 253) as u8).collect(),
        rows: (0..3)
            .map(|r| (0..100_000).map(|i| (r * i) as f32).collect())
            .collect(),
        payload: Payload::Ints((0..100_000).collect()),
        maybe: Some((0..100_000).collect()),
        tuple: ((0..100_000).rev().collect(), "t".into()),
    }
}

fn methods() -> Vec<Compression> {
    #[allow(unused_mut)]
    let mut m = vec![Compression::None];
    #[cfg(feature = "lz4")]
    m.push(Compression::Lz4);
    #[cfg(feature = "zstd")]
    m.push(Compression::Zstd);
    m
}

#[test]
fn large_blocks_round_trip_through_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let value = model();
    let xs = big_vec();
    let grid = big_grid();
    // 1 MiB chunks, and 4 KiB chunks: a compressed block then takes many
    // batches.
    let mut cases: Vec<(Compression, usize)> =
        methods().into_iter().map(|m| (m, 1 << 20)).collect();
    cases.extend(methods().into_iter().take(2).map(|m| (m, 4096)));
    for (method, chunk) in cases {
        let opts = DumpOptions::new()
            .compress(method.clone())
            .chunk_size(chunk);
        let path = dir.path().join(format!("m-{}-{chunk}.jbl", method.name()));
        opts.dump(&value, &path).unwrap();
        let what = format!("{} in chunks of {chunk}", method.name());
        assert!(load::<Model>(&path).unwrap() == value, "{what}: load");
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            load_from_reader::<Model, _>(&bytes[..]).unwrap() == value,
            "{what}: load_from_reader"
        );
        if method == Compression::None {
            assert!(
                load_mmap::<Model>(&path, MmapMode::ReadOnly).unwrap() == value,
                "{what}: load_mmap"
            );
        }

        // A `Vec` and an array at the top level.
        let path = dir.path().join(format!("v-{}-{chunk}.jbl", method.name()));
        opts.dump(&xs, &path).unwrap();
        assert!(load::<Vec<f64>>(&path).unwrap() == xs, "{what}: Vec");
        opts.dump(&grid, &path).unwrap();
        assert!(
            load::<Array2<f64>>(&path).unwrap() == grid,
            "{what}: Array2"
        );

        // Another element type is refused, never converted.
        let narrow: Vec<f32> = xs[..50_000].iter().map(|&x| x as f32).collect();
        opts.dump(&narrow, &path).unwrap();
        let err = load::<Vec<f64>>(&path).unwrap_err().to_string();
        assert!(
            err.contains("f32 elements cannot be loaded as f64"),
            "{what}: f32 as f64: {err}"
        );
        // `MmapArray` loaded owned takes the general path.
        #[cfg(feature = "ndarray")]
        {
            let small = Array2::from_shape_fn((300, 200), |(i, j)| (i * j) as f64);
            opts.dump(&small, &path).unwrap();
            let m: joblib_persist::MmapArray<f64, ndarray::Ix2> = load(&path).unwrap();
            assert!(m.view() == small.view(), "{what}: MmapArray owned");
        }
    }
}

#[test]
fn empty_and_small_vectors_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.jbl");
    for method in methods() {
        let opts = DumpOptions::new().compress(method).min_block_size(1);
        for v in [vec![], vec![1.5f64], vec![2.5; 10_000]] {
            opts.dump(&v, &path).unwrap();
            assert_eq!(load::<Vec<f64>>(&path).unwrap(), v);
            let nested = vec![v.clone(), vec![], v.clone()];
            opts.dump(&nested, &path).unwrap();
            assert_eq!(load::<Vec<Vec<f64>>>(&path).unwrap(), nested);
        }
    }
}

/// Offset of the first block's data in a file written by the crate (the
/// header is 64 bytes, and the first block follows it).
const FIRST_BLOCK: usize = 64;

#[test]
fn damaged_large_blocks_are_errors() {
    let xs = big_vec();
    for method in methods() {
        let file = DumpOptions::new()
            .compress(method.clone())
            .dump_to_writer(&xs, Vec::new())
            .unwrap();
        let name = method.name().to_string();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jbl");

        // A byte flipped in chunk 3 of the block.
        let mut bad = file.clone();
        let at = if method == Compression::None {
            FIRST_BLOCK + 3 * (1 << 20) + 12345
        } else {
            FIRST_BLOCK + 1000
        };
        bad[at] ^= 0x40;
        std::fs::write(&path, &bad).unwrap();
        for r in [
            load::<Vec<f64>>(&path),
            load_from_reader::<Vec<f64>, _>(&bad[..]),
        ] {
            assert!(
                matches!(r, Err(Error::Checksum { ref part, .. }) if part.starts_with("block 0, chunk")),
                "{name}: {r:?}"
            );
        }
        let r = load::<Array2<f64>>(&path).map(|_| ());
        assert!(r.is_err(), "{name}");

        // Truncated in the middle of the block, and just before the end.
        for len in [file.len() / 2, file.len() - 1] {
            std::fs::write(&path, &file[..len]).unwrap();
            assert!(load::<Vec<f64>>(&path).is_err(), "{name} cut to {len}");
            assert!(load_from_reader::<Vec<f64>, _>(&file[..len]).is_err());
        }
    }
}

#[test]
fn the_owned_path_keeps_the_checks_of_the_general_one() {
    let block: Vec<u8> = (0..3000u64)
        .flat_map(|i| (i as f64).to_le_bytes())
        .collect();
    // One block referenced twice.
    let mut twice = vec![0x92];
    twice.extend(run_ref(0));
    twice.extend(run_ref(0));
    let file = common::craft(&twice, &[(10, block.clone())], |_| {});
    let err = load_from_reader::<Vec<Vec<f64>>, _>(&file[..]).unwrap_err();
    assert!(err.to_string().contains("referenced twice"), "{err}");

    // A missing block.
    let file = common::craft(&run_ref(1), &[(10, block.clone())], |_| {});
    assert!(load_from_reader::<Vec<f64>, _>(&file[..]).is_err());

    // A block of another type is converted by serde, or refused.
    let file = common::craft(&run_ref(0), &[(10, block.clone())], |_| {});
    let err = load_from_reader::<Vec<i64>, _>(&file[..]).unwrap_err();
    assert!(matches!(err, Error::Deserialize { .. }), "{err}");

    // A bad checksum in the last chunk.
    let file = common::craft(&run_ref(0), &[(10, block)], |index| {
        index.blocks[0].chunks[5].hash ^= 1;
    });
    let err = load_from_reader::<Vec<f64>, _>(&file[..]).unwrap_err();
    assert!(
        matches!(err, Error::Checksum { ref part, .. } if part == "block 0, chunk 5"),
        "{err}"
    );
}

/// Stores chunks reversed.
struct Reverse;

impl Compressor for Reverse {
    fn compress(&self, input: &[u8], _: Option<i32>, out: &mut Vec<u8>) -> io::Result<()> {
        out.extend(input.iter().rev());
        Ok(())
    }
    fn decompress(&self, input: &[u8], out: &mut [u8]) -> io::Result<()> {
        if input.len() != out.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "wrong length"));
        }
        out.iter_mut()
            .zip(input.iter().rev())
            .for_each(|(o, i)| *o = *i);
        Ok(())
    }
}

/// A file with chunks of `chunk` bytes (a foreign writer's choice: not a
/// multiple of the element size, so elements straddle chunks) holding one
/// `f64` block, stored raw or reversed.
fn odd_chunks(values: &[f64], chunk: usize, reversed: bool) -> Vec<u8> {
    let bytes: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
    let method = if reversed { "reverse-test" } else { "none" };
    let mut file = header(1, chunk as u32, method);
    let entry = |file: &mut Vec<u8>, dtype: u8, data: &[u8], elems: u64| {
        while !file.len().is_multiple_of(64) {
            file.push(0);
        }
        let offset = file.len() as u64;
        let chunks = data
            .chunks(chunk)
            .map(|c| {
                let stored: Vec<u8> = if reversed {
                    c.iter().rev().copied().collect()
                } else {
                    c.to_vec()
                };
                file.extend_from_slice(&stored);
                Chunk {
                    stored: stored.len() as u64,
                    hash: XxHash3_64::oneshot(&stored),
                }
            })
            .collect();
        Entry {
            offset,
            len: data.len() as u64,
            dtype,
            shape: vec![elems],
            chunks,
        }
    };
    let block = entry(&mut file, 10, &bytes, values.len() as u64);
    let structure = run_ref(0);
    let s = entry(&mut file, 0, &structure, structure.len() as u64);
    let index = rmp_serde::to_vec(&Index {
        structure: s,
        blocks: vec![block],
    })
    .unwrap();
    let index_offset = file.len() as u64;
    file.extend_from_slice(&index);
    let len = file.len() as u64 + 64;
    file.extend(trailer(index_offset, &index, len));
    file
}

#[test]
fn elements_straddling_chunks_are_read_whole() {
    register_compressor("reverse-test", Arc::new(Reverse), false).unwrap();
    let values: Vec<f64> = (0..40_000).map(|i| i as f64 * 1.25).collect();
    for reversed in [false, true] {
        let file = odd_chunks(&values, 4100, reversed);
        assert_eq!(load_from_reader::<Vec<f64>, _>(&file[..]).unwrap(), values);
        // The general path, through `Option`, agrees.
        assert_eq!(
            load_from_reader::<Option<Vec<f64>>, _>(&file[..]).unwrap(),
            Some(values.clone())
        );
    }
}
