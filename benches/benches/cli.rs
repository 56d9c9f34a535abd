//! The `joblib` command's listing against its baseline, in one group so
//! the ratio comes from one run on one machine:
//!
//! - `ls/100k`: what `joblib cache ls` does on a cache of 100,000 entries
//!   in 20 functions: open the cache, list every function with its
//!   entries, bytes and last access (`CacheDir::functions`, directory
//!   listings and one `stat` call per entry spread over the cores), and
//!   add hits, computes and time saved from the run log (`RunLog::records`
//!   and `totals`: the 100,000 computes and 20,000 hits the cache was
//!   written with, as much of them as the rotated log keeps).
//!   Target: at most 1 s.
//! - `listing/100k`: the directory part of `ls/100k` alone.
//! - `log_records/100k`: reading and parsing the run log alone
//!   (`RunLog::records`).
//! - `log_totals/100k`: `RunLog::totals` over those records: it reads the
//!   `metadata.json` of every served entry whose computation the rotated
//!   log no longer holds (here the 20,000 entries the hits served).
//! - `store_entries/100k`: the store's own listing of the same entries
//!   (`FsStore::entries`, one thread, the same `stat` call), which
//!   `reduce_size` uses.
//!
//! The cache is written once (a minute or so) below cargo's target
//! directory and reused by later runs. Run with
//! `cargo bench -p joblib-benches --bench cli -- --warm-up-time 1 --measurement-time 3`.

// criterion_group! generates undocumented public items.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use joblib_memory::{CacheDir, FsStore, Memory, RunLog, StoreBackend};

const ENTRIES: u64 = 100_000;
const FUNCTIONS: u64 = 20;

/// The cache of [`ENTRIES`] entries, written on the first run.
fn big_cache() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("joblib-cli-bench-100k-runlog");
    let done = dir.join(".complete");
    if done.exists() {
        return dir;
    }
    let memory = Memory::builder(&dir)
        .verbose(0)
        .build()
        .expect("cache directory");
    let per_function = ENTRIES / FUNCTIONS;
    std::thread::scope(|s| {
        for f in 0..FUNCTIONS {
            let memory = &memory;
            s.spawn(move || {
                let func = memory
                    .cache(format!("bench::module{}::f{f}", f % 4), |x: u64| {
                        vec![x; 16]
                    })
                    .version("1");
                for x in 0..per_function {
                    func.call(x);
                }
                // Hits, for the run log's columns.
                for x in 0..per_function / 5 {
                    func.call(x);
                }
            });
        }
    });
    std::fs::write(&done, b"").expect("marker");
    dir
}

fn cli_benches(c: &mut Criterion) {
    let dir = big_cache();
    let listed = CacheDir::open(&dir)
        .expect("a cache")
        .functions()
        .expect("listing");
    assert_eq!(listed.iter().map(|f| f.entries).sum::<u64>(), ENTRIES);
    let mut g = c.benchmark_group("cli");
    g.sample_size(10);
    g.bench_function("ls/100k", |b| {
        b.iter(|| {
            let cache = CacheDir::open(&dir).expect("a cache");
            let functions = cache.functions().expect("listing");
            assert_eq!(functions.len() as u64, FUNCTIONS);
            let log = RunLog::open(cache.root());
            let records = log.records().expect("the run log");
            let totals = log.totals(&records);
            assert_eq!(totals.len() as u64, FUNCTIONS);
        })
    });
    g.bench_function("listing/100k", |b| {
        b.iter(|| {
            let functions = CacheDir::open(&dir)
                .expect("a cache")
                .functions()
                .expect("listing");
            assert_eq!(functions.len() as u64, FUNCTIONS);
        })
    });
    g.bench_function("log_records/100k", |b| {
        b.iter(|| {
            let records = RunLog::open(&dir).records().expect("the run log");
            assert!(!records.is_empty());
        })
    });
    let records = RunLog::open(&dir).records().expect("the run log");
    g.bench_function("log_totals/100k", |b| {
        b.iter(|| RunLog::open(&dir).totals(&records).len())
    });
    let store = FsStore::new(&dir).expect("store");
    g.bench_function("store_entries/100k", |b| {
        b.iter(|| {
            let entries = store.entries().expect("listing");
            assert_eq!(entries.len() as u64, ENTRIES);
        })
    });
    g.finish();
}

criterion_group!(benches, cli_benches);
criterion_main!(benches);
