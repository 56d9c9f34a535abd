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
//! - `hit/u64_no_log` vs `hit/u64`: the same hit with the run log off and
//!   on (target: at most 10 µs with the log); `by_hand/append_record`: one
//!   record-sized `O_APPEND` write by hand, the least the log can add.
//! - `many/first_hit`, `many/later_hit` vs `many/by_hand_hash+load`: hits
//!   over 10,000 distinct small arguments, the first of each entry in a
//!   process (a re-run of a pipeline an hour later: each first hit writes
//!   the entry's access time) and later ones, against hashing the
//!   argument and loading the entry's result with joblib-persist by hand
//!   (target: at most 2x and 20 µs).
//! - `many/miss` vs `many/by_hand_hash+dump`: misses over distinct
//!   arguments against hashing the argument and dumping the result to a
//!   new file by hand (target: at most 1.3x).
//!
//! Run with
//! `cargo bench -p joblib-benches --bench memory -- --warm-up-time 1 --measurement-time 3`.

// criterion_group! generates undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use joblib_memory::Memory;
use ndarray::Array1;

fn memory_benches(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temporary directory");
    let memory = Memory::builder(dir.path().join("cache"))
        .verbose(0)
        .build()
        .expect("cache directory");
    let no_log = Memory::builder(dir.path().join("cache_no_log"))
        .verbose(0)
        .run_log(false)
        .build()
        .expect("cache directory");
    let mut g = c.benchmark_group("memory");

    // A hit with one small argument.
    let inc = memory.cache("bench::inc", |x: u64| x + 1);
    assert_eq!(inc.call(41), 42);
    g.bench_function("hit/u64", |b| b.iter(|| black_box(inc.call(black_box(41)))));
    let inc_no_log = no_log.cache("bench::inc", |x: u64| x + 1);
    assert_eq!(inc_no_log.call(41), 42);
    g.bench_function("hit/u64_no_log", |b| {
        b.iter(|| black_box(inc_no_log.call(black_box(41))))
    });
    // What the run log cannot go below: one write of a record-sized line
    // (a hit's record above is about 230 bytes) to a file opened with
    // O_APPEND, by hand. Emptied now and then, as rotation would.
    let record = format!("{}\n", "x".repeat(229));
    let appended = std::fs::File::options()
        .append(true)
        .create(true)
        .open(dir.path().join("by_hand.jsonl"))
        .expect("log file");
    let records = AtomicU64::new(0);
    g.bench_function("by_hand/append_record", |b| {
        b.iter(|| {
            if records
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(32_768)
            {
                appended.set_len(0).expect("empty the log");
            }
            (&appended)
                .write_all(record.as_bytes())
                .expect("append a record")
        })
    });

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
        .verbose(0)
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

/// How many distinct entries the `many/*` benches go over.
const MANY: u64 = 10_000;

/// The small result of `bench::many`.
fn many_result(x: u64) -> Vec<u64> {
    vec![x; 4]
}

/// Hits and misses over many distinct entries, each next to its baseline.
fn many_benches(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temporary directory");
    let location = dir.path().join("cache");
    let open = || {
        Memory::builder(&location)
            .verbose(0)
            .build()
            .expect("cache directory")
    };
    let memory = open();
    let many = memory.cache("bench::many", many_result);
    for x in 0..MANY {
        many.call(x);
    }
    let store = joblib_memory::FsStore::existing(&location);
    let outputs: Vec<_> = (0..MANY)
        .map(|x| {
            let digest = many.digest(&x).expect("digest");
            store.entry_dir("bench::many", &digest).join("output.jbl")
        })
        .collect();
    let mut g = c.benchmark_group("memory");

    // The first hit of each entry in a process: a new memory (as a new
    // process would have) for each pass over the entries.
    g.bench_function("many/first_hit", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let fresh = open();
                let f = fresh.cache("bench::many", many_result);
                let n = (iters - done).min(MANY);
                // As in a re-run an hour later: each first hit records its
                // access (an entry used within the last second would not).
                let hour_ago = SystemTime::now() - Duration::from_secs(3600);
                for out in &outputs[..n as usize] {
                    std::fs::File::open(out)
                        .and_then(|f| f.set_modified(hour_ago))
                        .expect("age an entry");
                }
                let start = Instant::now();
                for x in 0..n {
                    black_box(f.call(black_box(x)));
                }
                total += start.elapsed();
                done += n;
            }
            total
        })
    });
    let next = AtomicU64::new(0);
    g.bench_function("many/later_hit", |b| {
        b.iter(|| {
            let x = next.fetch_add(1, Ordering::Relaxed) % MANY;
            black_box(many.call(black_box(x)))
        })
    });
    g.bench_function("many/by_hand_hash+load", |b| {
        b.iter(|| {
            let x = next.fetch_add(1, Ordering::Relaxed) % MANY;
            black_box(joblib_hash::hash(black_box(&x)).expect("hash"));
            // An entry's file holds its digest, the result and its
            // compute time.
            let v: (String, Vec<u64>, f64) =
                joblib_persist::load(&outputs[x as usize]).expect("load");
            black_box(v)
        })
    });

    // Misses: every call a new argument.
    let fresh_key = AtomicU64::new(MANY);
    g.bench_function("many/miss", |b| {
        b.iter(|| black_box(many.call(fresh_key.fetch_add(1, Ordering::Relaxed))))
    });
    let dumps = dir.path().join("dumps");
    std::fs::create_dir_all(&dumps).expect("dumps directory");
    let n = AtomicU64::new(0);
    g.bench_function("many/by_hand_hash+dump", |b| {
        b.iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            black_box(joblib_hash::hash(black_box(&i)).expect("hash"));
            joblib_persist::dump(&many_result(i), dumps.join(format!("{i}.jbl"))).expect("dump");
        })
    });
    g.finish();
}

criterion_group!(benches, memory_benches, many_benches);
criterion_main!(benches);
