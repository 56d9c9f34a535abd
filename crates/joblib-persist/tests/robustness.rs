//! Damaged and hostile files give errors: never a panic, a hang, or an
//! allocation the file does not justify.

mod common;

use common::{Rng, craft, header, run_ref};
use joblib_persist::{Compression, DumpOptions, Error, load_from_reader};
use ndarray::Array2;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Sample {
    name: String,
    xs: Vec<f64>,
    grid: Array2<i32>,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
    small: Vec<u16>,
    tag: Option<(u8, String)>,
}

fn sample() -> Sample {
    Sample {
        name: "sample".into(),
        xs: (0..700).map(|i| f64::from(i) * 0.5).collect(),
        grid: Array2::from_shape_fn((20, 30), |(i, j)| (i * 31 + j) as i32),
        blob: (0..5000u32).map(|i| (i * 7 % 256) as u8).collect(),
        small: vec![1, 2, 3],
        tag: Some((9, "nine".into())),
    }
}

fn sample_file(method: Compression) -> Vec<u8> {
    DumpOptions::new()
        .compress(method)
        .chunk_size(4096)
        .dump_to_writer(&sample(), Vec::new())
        .unwrap()
}

fn methods() -> Vec<Compression> {
    #[allow(unused_mut)]
    let mut m = vec![Compression::None];
    #[cfg(feature = "lz4")]
    m.push(Compression::Lz4);
    #[cfg(feature = "zstd")]
    m.push(Compression::Zstd);
    #[cfg(feature = "zlib")]
    m.push(Compression::Gzip);
    m
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    for method in methods() {
        let file = sample_file(method.clone());
        assert_eq!(load_from_reader::<Sample, _>(&file[..]).unwrap(), sample());
        for len in 0..file.len() {
            let r = load_from_reader::<Sample, _>(&file[..len]);
            assert!(
                r.is_err(),
                "{} truncated to {len} bytes loaded",
                method.name()
            );
        }
    }
}

#[test]
fn thousands_of_random_byte_flips_are_errors() {
    for method in methods() {
        let file = sample_file(method.clone());
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ file.len() as u64);
        for case in 0..3000 {
            let mut bad = file.clone();
            let flips = 1 + rng.below(3);
            for _ in 0..flips {
                let at = rng.below(bad.len());
                bad[at] ^= 1 + rng.below(255) as u8;
            }
            let r = load_from_reader::<Sample, _>(&bad[..]);
            assert!(
                r.is_err(),
                "{} case {case}: flipped file loaded",
                method.name()
            );
        }
    }
}

#[test]
fn every_single_bit_flip_is_caught() {
    let file = sample_file(Compression::None);
    for at in 0..file.len() {
        let mut bad = file.clone();
        bad[at] ^= 0x10;
        assert!(
            load_from_reader::<Sample, _>(&bad[..]).is_err(),
            "byte {at}"
        );
    }
}

#[test]
fn a_tiny_file_claiming_a_terabyte_array_fails_fast() {
    let tb = 1u64 << 40;
    let file = craft(&run_ref(0), &[(10, vec![0; 64])], |index| {
        index.blocks[0].len = tb;
        index.blocks[0].shape = vec![tb / 8];
    });
    assert!(file.len() < 400, "{}", file.len());
    let err = load_from_reader::<Vec<f64>, _>(&file[..]).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("block 0"), "{err}");

    // Also when the chunk list agrees: the chunks then lie past the file.
    let file = craft(&run_ref(0), &[(10, vec![0; 64])], |index| {
        let c = index.blocks[0].chunks[0].clone();
        index.blocks[0].len = 4096 * 3;
        index.blocks[0].shape = vec![4096 * 3 / 8];
        index.blocks[0].chunks = vec![
            common::Chunk {
                stored: 4096,
                ..c.clone()
            },
            c.clone(),
            c,
        ];
    });
    let err = load_from_reader::<Vec<f64>, _>(&file[..]).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

#[test]
fn huge_collection_and_string_lengths_fail_fast() {
    // An array header claiming 2^32 - 1 items in a structure of 5 bytes.
    let file = craft(&[0xdd, 0xff, 0xff, 0xff, 0xff], &[], |_| {});
    let err = load_from_reader::<Vec<u64>, _>(&file[..]).unwrap_err();
    assert!(err.to_string().contains("claims"), "{err}");
    // A map likewise.
    let file = craft(&[0xdf, 0xff, 0xff, 0xff, 0xff], &[], |_| {});
    assert!(load_from_reader::<std::collections::HashMap<u8, u8>, _>(&file[..]).is_err());
    // A string of 4 GiB.
    let file = craft(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'a'], &[], |_| {});
    assert!(load_from_reader::<String, _>(&file[..]).is_err());
    // A chunk size of 4 GiB.
    let mut file = craft(&[0xc0], &[], |_| {});
    file[..64].copy_from_slice(&header(1, u32::MAX, "none"));
    let err = load_from_reader::<(), _>(&file[..]).unwrap_err();
    assert!(err.to_string().contains("chunk size"), "{err}");
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    enum Tree {
        Leaf,
        Node(Vec<Tree>),
    }
    let mut s = vec![0x91; 100_000];
    s.push(0xc0);
    let file = craft(&s, &[], |_| {});
    let err = load_from_reader::<IgnoredAny, _>(&file[..]).unwrap_err();
    assert!(err.to_string().contains("nested"), "{err}");
    let mut s = Vec::new();
    for _ in 0..100_000 {
        s.extend_from_slice(&[0x81, 0xa4, b'N', b'o', b'd', b'e', 0x91]);
    }
    s.extend_from_slice(&[0xa4, b'L', b'e', b'a', b'f']);
    let file = craft(&s, &[], |_| {});
    assert!(load_from_reader::<Tree, _>(&file[..]).is_err());
}

#[test]
fn a_block_referenced_twice_is_refused() {
    let mut s = vec![0x92];
    s.extend_from_slice(&run_ref(0));
    s.extend_from_slice(&run_ref(0));
    let file = craft(&s, &[(10, vec![0; 800])], |_| {});
    let err = load_from_reader::<Vec<Vec<f64>>, _>(&file[..]).unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
    // A reference to a block that does not exist.
    let file = craft(&run_ref(7), &[], |_| {});
    assert!(load_from_reader::<Vec<f64>, _>(&file[..]).is_err());
}

#[test]
fn version_magic_and_method_errors_say_what_is_wrong() {
    let good = craft(&[0x2a], &[], |_| {});
    assert_eq!(load_from_reader::<u8, _>(&good[..]).unwrap(), 42);

    let mut newer = good.clone();
    newer[..64].copy_from_slice(&header(7, 4096, "none"));
    let err = load_from_reader::<u8, _>(&newer[..]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NewerVersion {
                found: 7,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("newer version"));

    let text: Vec<u8> = good.iter().copied().filter(|&b| b != b'\r').collect();
    let err = load_from_reader::<u8, _>(&text[..]).unwrap_err();
    assert!(matches!(err, Error::NotJbl { mangled: true, .. }), "{err}");

    let err = load_from_reader::<u8, _>(&b"PK\x03\x04 a zip file"[..]).unwrap_err();
    assert!(matches!(err, Error::NotJbl { mangled: false, .. }), "{err}");

    let mut unknown = good.clone();
    unknown[..64].copy_from_slice(&header(1, 4096, "brotli"));
    let err = load_from_reader::<u8, _>(&unknown[..]).unwrap_err();
    assert!(matches!(err, Error::UnknownCompressor { .. }), "{err}");

    let err = load_from_reader::<u8, _>(&[][..]).unwrap_err();
    assert!(matches!(err, Error::NotJbl { .. }), "{err}");
}

#[test]
fn checksum_errors_name_the_part() {
    let file = sample_file(Compression::None);
    let info_offset = 64 + 8; // inside the first block's data
    let mut bad = file.clone();
    bad[info_offset] ^= 0xff;
    let err = load_from_reader::<Sample, _>(&bad[..]).unwrap_err();
    assert!(matches!(err, Error::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("block 0, chunk 0"), "{err}");
}
