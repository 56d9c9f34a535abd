//! joblib-hash throughput, each workload next to its baseline.
//!
//! - 200 MB of `f64` as `Vec<f64>` and `Array1<f64>`, against raw
//!   XXH3-128 (`twox-hash`, AVX2 when the CPU has it) over the same bytes (the ceiling: the hash function alone).
//! - a `HashMap<String, u64>` of 100,000 entries (Python `joblib.hash` of the
//!   equivalent dict takes about 190 ms on this machine).
//!
//! `cargo bench -p joblib-benches --bench hash`

// criterion_group! generates undocumented public items.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array1;
use twox_hash::XxHash3_128;

const BIG: usize = 200_000_000 / 8;

fn big_arrays(c: &mut Criterion) {
    let vec: Vec<f64> = (0..BIG).map(|i| (i as f64).sin()).collect();
    let raw: Vec<u8> = vec.iter().flat_map(|v| v.to_le_bytes()).collect();
    let array = Array1::from(vec.clone());

    let mut group = c.benchmark_group("hash_200MB_f64");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(raw.len() as u64));
    // Interleaved in one group, so the ratios come from one run.
    group.bench_function(BenchmarkId::new("raw_xxh3_128", "bytes"), |b| {
        b.iter(|| XxHash3_128::oneshot(black_box(&raw)))
    });
    group.bench_function(BenchmarkId::new("joblib_hash", "Vec<f64>"), |b| {
        b.iter(|| joblib_hash::hash(black_box(&vec)).unwrap())
    });
    group.bench_function(BenchmarkId::new("joblib_hash", "Array1<f64>"), |b| {
        b.iter(|| joblib_hash::hash(black_box(&array)).unwrap())
    });
    group.finish();
}

fn maps(c: &mut Criterion) {
    let map: HashMap<String, u64> = (0..100_000u64).map(|i| (format!("key-{i}"), i)).collect();
    let mut group = c.benchmark_group("hash_map_100k");
    group.sample_size(20);
    group.bench_function("joblib_hash HashMap<String,u64>", |b| {
        b.iter(|| joblib_hash::hash(black_box(&map)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, big_arrays, maps);
criterion_main!(benches);
