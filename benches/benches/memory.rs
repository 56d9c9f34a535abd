//! joblib-memory against its baselines, in one group so the ratios come
//! from one run on one machine:
//!
//! - `hit/u64`: a cache hit of a function of one `u64` returning a small
//!   value (target: at most 10 µs; Python joblib: about 71 µs).
//! - `hit/array_10mb` vs `by_hand/hash+load`: a hit whose argument is a
//!   10 MB `Array1<f64>` against hashing that argument with joblib-hash and
//!   loading the stored result with joblib-persist by hand (target: at most
//!   1.3x, and 1.5 ms).
//! - `miss/u64` vs `by_hand/dump`: a miss (hash, lookup, compute, write the
//!   entry with its metadata) against dumping the same result to a new
//!   file (target: at most 100 µs more).
//! - `reduce_size/10k`: listing, sorting and checking 10,000 entries
//!   against the limits (target: at most 100 ms).
//!
//! Run with
//! `cargo bench -p joblib-benches --bench memory -- --warm-up-time 1 --measurement-time 3`.

// criterion_group! generates undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use joblib_memory::Memory;
use ndarray::Array1;

fn memory_benches(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temporary directory");
    let memory = Memory::builder(dir.path().join("cache"))
        .build()
        .expect("cache directory");
    let mut g = c.benchmark_group("memory");

    // A hit with one small argument.
    let inc = memory.cache("bench::inc", |x: u64| x + 1);
    assert_eq!(inc.call(41), 42);
    g.bench_function("hit/u64", |b| b.iter(|| black_box(inc.call(black_box(41)))));

    // A hit with a 10 MB argument, against the same work by hand.
    let a = Array1::from_shape_fn(10 * (1 << 20) / 8, |i| (i as f64 * 1e-3).sin());
    let sum = memory.cache("bench::sum", |a: &Array1<f64>| a.sum());
    let expected = sum.call(&a);
    g.bench_function("hit/array_10mb", |b| {
        b.iter(|| {
            let s = sum.call(black_box(&a));
            assert_eq!(s, expected);
        })
    });
    let by_hand = dir.path().join("by_hand.jbl");
    joblib_persist::dump(&expected, &by_hand).expect("dump");
    g.bench_function("by_hand/hash+load", |b| {
        b.iter(|| {
            let d = joblib_hash::hash(black_box(&a)).expect("hash");
            black_box(d);
            let s: f64 = joblib_persist::load(&by_hand).expect("load");
            assert_eq!(s, expected);
        })
    });

    // A miss: every iteration a new argument.
    let next = AtomicU64::new(1_000_000);
    let triple = memory.cache("bench::triple", |x: u64| x * 3);
    g.bench_function("miss/u64", |b| {
        b.iter(|| black_box(triple.call(next.fetch_add(1, Ordering::Relaxed))))
    });
    let dumps = dir.path().join("dumps");
    std::fs::create_dir_all(&dumps).expect("dumps directory");
    let n = AtomicU64::new(0);
    g.bench_function("by_hand/dump", |b| {
        b.iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            joblib_persist::dump(&(i * 3), dumps.join(format!("{i}.jbl"))).expect("dump");
        })
    });
    g.finish();

    // reduce_size over 10,000 entries (all kept: the cost is the scan).
    let big = Memory::builder(dir.path().join("big"))
        .build()
        .expect("cache directory");
    let id = big.cache("bench::id", |x: u64| x);
    for x in 0..10_000u64 {
        id.call(x);
    }
    let mut g = c.benchmark_group("memory");
    g.sample_size(10);
    g.bench_function("reduce_size/10k", |b| {
        b.iter(|| {
            let r = big
                .reduce_size(None, Some(20_000), None)
                .expect("reduce_size");
            assert_eq!(r.kept, 10_000);
        })
    });
    g.finish();
}

criterion_group!(benches, memory_benches);
criterion_main!(benches);
