//! joblib-parallel on threads, next to rayon's `par_iter` on the same number
//! of threads, and against itself on one worker.
//!
//! - 10,000 and 1,000,000 trivial tasks on a warm pool, automatic batching,
//!   results collected in order into a `Vec`: `Parallel::run` against
//!   `into_par_iter().map(..).collect()`; and with a new `Parallel` each
//!   call (`joblib_parallel_first_call`), which keeps no time per task from
//!   an earlier call and measures with one-task batches first. (Python
//!   joblib, warm, on the machine of the issue: loky about 36 ms,
//!   threading about 430 ms for 10,000 tasks.)
//! - 8 CPU-bound tasks of about 0.25 s each: `n_jobs(2)` against `n_jobs(1)`.
//!
//! `cargo bench -p joblib-benches --bench parallel -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates undocumented public items.
#![allow(missing_docs)]

mod common;

use std::time::Duration;

use common::{calibrate, spin, trivial};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use joblib_parallel::{Parallel, delayed};
use rayon::prelude::*;

const WORKERS: usize = 2;

fn trivial_tasks(c: &mut Criterion) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .expect("a rayon pool");
    let parallel = Parallel::new()
        .n_jobs(WORKERS as i32)
        .build()
        .expect("a joblib pool");
    for n in [10_000u64, 1_000_000] {
        // Both sides in one group, so the ratio comes from one run.
        let mut group = c.benchmark_group(format!("trivial_tasks_{n}"));
        group.bench_function(BenchmarkId::new("rayon_par_iter", n), |b| {
            b.iter(|| pool.install(|| (0..n).into_par_iter().map(trivial).collect::<Vec<u64>>()))
        });
        group.bench_function(BenchmarkId::new("joblib_parallel", n), |b| {
            b.iter(|| {
                parallel
                    .run((0..n).map(|x| delayed(trivial, x)))
                    .expect("trivial tasks")
            })
        });
        // A new `Parallel` each call (the workers are the same): no time per
        // task kept from an earlier call, so it measures with one-task
        // batches first.
        group.bench_function(BenchmarkId::new("joblib_parallel_first_call", n), |b| {
            b.iter(|| {
                Parallel::new()
                    .n_jobs(WORKERS as i32)
                    .run((0..n).map(|x| delayed(trivial, x)))
                    .expect("trivial tasks")
            })
        });
        group.finish();
    }
}

fn cpu_bound(c: &mut Criterion) {
    let iterations = calibrate();
    let mut group = c.benchmark_group("cpu_bound_8x250ms");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    for n_jobs in [1, 2] {
        let parallel = Parallel::new().n_jobs(n_jobs).build().expect("a pool");
        group.bench_function(BenchmarkId::new("n_jobs", n_jobs), |b| {
            b.iter(|| {
                parallel
                    .run((0..8).map(|_| delayed(spin, iterations)))
                    .expect("cpu-bound tasks")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, trivial_tasks, cpu_bound);
criterion_main!(benches);
