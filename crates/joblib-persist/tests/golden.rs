//! Files written by format version 1 keep loading, and this version still
//! writes them byte for byte (so a format change cannot slip in silently).
//!
//! To rewrite the files after a *deliberate* format change (which needs a new
//! format version and a note in docs/format.md):
//! `JOBLIB_PERSIST_BLESS=1 cargo test -p joblib-persist --test golden`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use joblib_persist::{Compression, DumpOptions, load};
use ndarray::{Array2, Array3};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, PartialEq, Debug)]
enum Kind {
    Plain,
    Scaled(f64),
    Window { lo: i32, hi: i32 },
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Golden {
    name: String,
    version: (u8, u8),
    kinds: Vec<Kind>,
    params: BTreeMap<String, f64>,
    missing: Option<u32>,
    signal: Vec<f64>,
    counts: Vec<i64>,
    small: Vec<u16>,
    grid: Array2<f32>,
    cube: Array3<u8>,
    #[serde(with = "serde_bytes")]
    blob: Vec<u8>,
    huge: u128,
}

fn golden() -> Golden {
    Golden {
        name: "golden v1".into(),
        version: (1, 0),
        kinds: vec![
            Kind::Plain,
            Kind::Scaled(0.5),
            Kind::Window { lo: -3, hi: 7 },
        ],
        params: [("alpha".to_string(), 0.1), ("beta".to_string(), -2.0)]
            .into_iter()
            .collect(),
        missing: None,
        signal: (0..3000).map(|i| (f64::from(i) * 0.01).sin()).collect(),
        counts: (0..500).map(|i| i * i - 1000).collect(),
        small: vec![1, 2, 3],
        grid: Array2::from_shape_fn((40, 25), |(i, j)| i as f32 - j as f32 * 0.25),
        cube: Array3::from_shape_fn((8, 9, 10), |(i, j, k)| (i * 90 + j * 10 + k) as u8),
        blob: (0..2000u32).map(|i| (i % 253) as u8).collect(),
        huge: u128::MAX / 3,
    }
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
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

fn options(method: &Compression) -> DumpOptions {
    DumpOptions::new().compress(method.clone()).chunk_size(4096)
}

#[test]
fn version_1_golden_files_load_and_are_still_written() {
    let dir = dir();
    if std::env::var_os("JOBLIB_PERSIST_BLESS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for m in methods() {
            let path = dir.join(format!("v1-{}.jbl", m.name()));
            options(&m).dump(&golden(), &path).unwrap();
        }
    }
    let value = golden();
    for m in methods() {
        let path = dir.join(format!("v1-{}.jbl", m.name()));
        let back: Golden = load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(back, value, "{}", path.display());
    }

    // This version still writes the same bytes. Uncompressed output depends only on this crate; compressed output
    // also on the compressor libraries' versions, so only `none` is pinned.
    let expected = std::fs::read(dir.join("v1-none.jbl")).unwrap();
    let written = options(&Compression::None)
        .dump_to_writer(&golden(), Vec::new())
        .unwrap();
    assert!(
        written == expected,
        "the bytes of an uncompressed dump changed"
    );
}
