//! Replays the hand-made hostile files in `tests/malicious/`: each must give
//! an error from `load`, and `inspect`, `verify` and `load_mmap` must not
//! panic on any of them.
//!
//! The files are built by `corpus()` below. After changing it, rewrite them
//! with `JOBLIB_PERSIST_BLESS=1 cargo test -p joblib-persist --test malicious`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{craft, header, run_ref, trailer};
use joblib_persist::{MmapMode, inspect, load, load_mmap, verify};
use serde::de::IgnoredAny;

/// Files whose damage is only inside a block's data: found when the block
/// is read, so not by a load that ignores the value.
const DATA_ONLY: [&str; 2] = ["bad-chunk-checksum.jbl", "lz4-garbage-chunk.jbl"];

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/malicious")
}

/// Each hostile file, by name.
fn corpus() -> BTreeMap<&'static str, Vec<u8>> {
    let mut c = BTreeMap::new();
    let good = craft(&[0x2a], &[], |_| {});
    c.insert("empty.jbl", Vec::new());
    c.insert("only-magic.jbl", b"\x89JBL\r\n\x1a\n".to_vec());
    c.insert(
        "text-mangled.jbl",
        good.iter().copied().filter(|&b| b != b'\r').collect(),
    );
    let mut newer = good.clone();
    newer[..64].copy_from_slice(&header(2, 4096, "none"));
    c.insert("newer-version.jbl", newer);
    let mut chunk = good.clone();
    chunk[..64].copy_from_slice(&header(1, u32::MAX, "none"));
    c.insert("chunk-size-4gib.jbl", chunk);
    let mut method = good.clone();
    method[..64].copy_from_slice(&header(1, 4096, "pickle"));
    c.insert("unknown-method.jbl", method);
    c.insert("truncated-trailer.jbl", good[..good.len() - 1].to_vec());
    c.insert(
        "terabyte-array.jbl",
        craft(&run_ref(0), &[(10, vec![0; 64])], |i| {
            i.blocks[0].len = 1 << 40;
            i.blocks[0].shape = vec![1 << 37];
        }),
    );
    c.insert(
        "array-claims-4g-items.jbl",
        craft(&[0xdd, 0xff, 0xff, 0xff, 0xff], &[], |_| {}),
    );
    c.insert(
        "map-claims-4g-entries.jbl",
        craft(&[0xdf, 0xff, 0xff, 0xff, 0xff], &[], |_| {}),
    );
    c.insert(
        "string-claims-4gib.jbl",
        craft(&[0xdb, 0xff, 0xff, 0xff, 0xff, b'x'], &[], |_| {}),
    );
    let mut deep = vec![0x91; 5_000];
    deep.push(0xc0);
    c.insert("deep-nesting.jbl", craft(&deep, &[], |_| {}));
    let mut twice = vec![0x92];
    twice.extend(run_ref(0));
    twice.extend(run_ref(0));
    c.insert(
        "block-referenced-twice.jbl",
        craft(&twice, &[(10, vec![0; 4096])], |_| {}),
    );
    c.insert("missing-block.jbl", craft(&run_ref(3), &[], |_| {}));
    c.insert(
        "overlapping-blocks.jbl",
        craft(&[0x90], &[(10, vec![1; 128]), (10, vec![2; 128])], |i| {
            i.blocks[1].offset = i.blocks[0].offset;
        }),
    );
    c.insert(
        "misaligned-block.jbl",
        craft(&run_ref(0), &[(10, vec![1; 128])], |i| {
            i.blocks[0].offset += 8
        }),
    );
    c.insert(
        "unknown-dtype.jbl",
        craft(&run_ref(0), &[(99, vec![1; 128])], |_| {}),
    );
    c.insert(
        "shape-mismatch.jbl",
        craft(&run_ref(0), &[(10, vec![1; 128])], |i| {
            i.blocks[0].shape = vec![3, 5]
        }),
    );
    c.insert(
        "bad-chunk-checksum.jbl",
        craft(&run_ref(0), &[(10, vec![1; 128])], |i| {
            i.blocks[0].chunks[0].hash ^= 1
        }),
    );
    c.insert("reserved-marker.jbl", craft(&[0xc1], &[], |_| {}));
    c.insert("invalid-utf8.jbl", craft(&[0xa2, 0xff, 0xfe], &[], |_| {}));
    c.insert("unknown-ext.jbl", craft(&[0xd4, 0x7f, 0x00], &[], |_| {}));
    c.insert("trailing-structure.jbl", craft(&[0x01, 0x02], &[], |_| {}));
    let mut padding = craft(&run_ref(0), &[(10, vec![1; 8])], |_| {});
    // The structure block starts at the next multiple of 64: byte 64 + 8 is padding.
    padding[64 + 8] = 0xaa;
    c.insert("nonzero-padding.jbl", padding);
    // A trailer whose index offset points into the header.
    let mut lying = good.clone();
    let n = lying.len();
    let mut at = [0u8; 8];
    at.copy_from_slice(&lying[n - 56..n - 48]);
    let index = lying[u64::from_le_bytes(at) as usize..n - 64].to_vec();
    lying[n - 64..].copy_from_slice(&trailer(10, &index, n as u64));
    c.insert("index-inside-header.jbl", lying);
    // A compressed chunk that is garbage but carries a valid checksum.
    let mut lz4 = craft(&run_ref(0), &[(10, vec![0x5a; 16])], |i| {
        i.blocks[0].len = 4096;
        i.blocks[0].shape = vec![512];
    });
    lz4[..64].copy_from_slice(&header(1, 4096, "lz4"));
    c.insert("lz4-garbage-chunk.jbl", lz4);
    c
}

#[test]
fn every_hostile_file_is_an_error() {
    let dir = dir();
    if std::env::var_os("JOBLIB_PERSIST_BLESS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in corpus() {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "jbl") {
            continue;
        }
        seen += 1;
        let name = path.display();
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if DATA_ONLY.contains(&file_name) {
            // Ignoring a value does not read its blocks; `verify` does.
            assert!(verify(&path).is_err(), "{name} verified");
        } else {
            assert!(
                load::<IgnoredAny>(&path).is_err(),
                "{name} loaded as IgnoredAny"
            );
        }
        assert!(
            load::<Vec<f64>>(&path).is_err(),
            "{name} loaded as Vec<f64>"
        );
        assert!(
            load::<Vec<Vec<f64>>>(&path).is_err(),
            "{name} loaded as Vec<Vec<f64>>"
        );
        if !DATA_ONLY.contains(&file_name) {
            assert!(
                load_mmap::<IgnoredAny>(&path, MmapMode::ReadOnly).is_err(),
                "{name} mapped"
            );
        }
        // These may succeed on files whose damage is deeper than the index.
        let _ = inspect(&path);
        let _ = verify(&path);
    }
    assert!(
        seen >= corpus().len(),
        "only {seen} files in {}",
        dir.display()
    );
}
