//! The "processes" backend next to the thread backend, in one run.
//!
//! - 10,000 trivial tasks on a warm pool of 2 (Python joblib's loky: about
//!   36 ms on the machine; `benches/python/joblib_baseline.py
//!   parallel` measures it here).
//! - A cold start: a pool of 2 workers started and one task run (loky:
//!   about 160 ms).
//! - One 100 MB `Array2<f64>` given to 4 tasks that sum it: threads get an
//!   `Arc`, processes a `Shared<MmapArray>`, written to `/dev/shm` when first
//!   sent and mapped by the workers. Measured for a value already sent
//!   (`processes_shared_mmap`) and for a new value each call, which pays the
//!   write (`processes_shared_first_call`). loky with memmapping writes the
//!   array on every call: about 84 ms on the machine.
//!   The thread backend with a new `Arc` each call (`threads_new_arc`) is
//!   the baseline of a new value each call, and `floor_memfd_write` the
//!   physical floor of sending it: one write of its 100 MB into a new
//!   `memfd` (a copy plus the page faults of the target).
//! - The same array passed by value (not in `Shared`) to 4 tasks, a copy
//!   each made before the timing (`process_array_100MB_by_value_4_tasks`):
//!   threads get the copies moved in, processes encode each batch, write
//!   the content once per call and map it.
//! - 64 tasks each returning 1 MiB (`Vec<f64>`), threads against processes
//!   (`process_results_64x1MB`): replies through the workers' reply arenas
//!   (`processes`) and, with `max_nbytes` set out of reach, through the
//!   socket (`processes_socket`); `floor_copy_into_parent` is the floor:
//!   one copy of the 64 MiB into new vectors in the parent.
//! - 8 CPU-bound tasks of about 0.25 s on 2 worker processes against 1.
//!
//! `cargo bench -p joblib-benches --bench processes -- --warm-up-time 1 --measurement-time 3`
//!
//! The bench binary is its own worker: joblib-parallel's constructor turns
//! the copies it starts into workers before criterion's `main` runs.

// criterion_group! generates undocumented public items.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{calibrate, spin, trivial};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use joblib_parallel::{Parallel, Shared, delayed, delayed_remote};
use joblib_persist::MmapArray;
use joblib_process::ProcessBackend;
use ndarray::{Array2, Ix2};

fn trivial_tasks(c: &mut Criterion) {
    let threads = Parallel::new().n_jobs(2).build().expect("threads");
    let processes = Parallel::new()
        .backend("processes")
        .n_jobs(2)
        .build()
        .expect("a warm pool of 2 worker processes");
    let n = 10_000u64;
    let mut group = c.benchmark_group("process_trivial_tasks_10000");
    group.bench_function(BenchmarkId::new("threads", n), |b| {
        b.iter(|| {
            threads
                .run((0..n).map(|x| delayed_remote(trivial, x)))
                .expect("tasks")
        })
    });
    group.bench_function(BenchmarkId::new("processes", n), |b| {
        b.iter(|| {
            processes
                .run((0..n).map(|x| delayed_remote(trivial, x)))
                .expect("tasks")
        })
    });
    group.finish();
}

fn cold_start(c: &mut Criterion) {
    let mut group = c.benchmark_group("process_cold_start");
    group.sample_size(20);
    group.bench_function("pool_of_2_and_one_task", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                ProcessBackend::shutdown();
                let start = Instant::now();
                let out = Parallel::new()
                    .backend("processes")
                    .n_jobs(2)
                    .run([delayed_remote(trivial, 1)])
                    .expect("one task");
                total += start.elapsed();
                black_box(out);
            }
            total
        })
    });
    group.finish();
}

fn large_array(c: &mut Criterion) {
    // 100 MB of f64.
    let rows = 12_500;
    let a = Array2::from_shape_fn((rows, 1000), |(i, j)| (i ^ j) as f64);
    let by_arc = Arc::new(a.clone());
    let shared: Shared<MmapArray<f64, Ix2>> = Shared::new(a.into());
    let (threads, processes) = two_workers_each();
    let mut group = c.benchmark_group("process_array_100MB_4_tasks");
    group.sample_size(20);
    group.bench_function("threads_arc", |b| {
        b.iter(|| {
            threads
                .run((0..4).map(|_| delayed(|a: Arc<Array2<f64>>| a.sum(), by_arc.clone())))
                .expect("sums")
        })
    });
    group.bench_function("processes_shared_mmap", |b| {
        b.iter(|| {
            processes
                .run((0..4).map(|_| {
                    delayed_remote(
                        |a: Shared<MmapArray<f64, Ix2>>| a.view().sum(),
                        shared.clone(),
                    )
                }))
                .expect("sums")
        })
    });
    let fresh = shared.get().to_owned();
    group.bench_function("threads_new_arc", |b| {
        b.iter_batched(
            || Arc::new(fresh.clone()),
            |value| {
                threads
                    .run((0..4).map(|_| delayed(|a: Arc<Array2<f64>>| a.sum(), value.clone())))
                    .expect("sums")
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.bench_function("floor_memfd_write", |b| {
        b.iter_batched(
            || fresh.clone(),
            |value| {
                let fd = rustix::fs::memfd_create("bench", rustix::fs::MemfdFlags::CLOEXEC)
                    .expect("memfd");
                let mut file = std::fs::File::from(fd);
                let bytes = value.as_slice().expect("a standard layout array");
                // SAFETY: f64 has no padding; the slice covers the array's
                // elements exactly.
                let bytes = unsafe {
                    std::slice::from_raw_parts(bytes.as_ptr().cast::<u8>(), bytes.len() * 8)
                };
                std::io::Write::write_all(&mut file, bytes).expect("write");
                (file, value)
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.bench_function("processes_shared_first_call", |b| {
        b.iter_batched(
            || Shared::new(MmapArray::from(fresh.clone())),
            |value| {
                processes
                    .run((0..4).map(|_| {
                        delayed_remote(
                            |a: Shared<MmapArray<f64, Ix2>>| a.view().sum(),
                            value.clone(),
                        )
                    }))
                    .expect("sums")
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn by_value(c: &mut Criterion) {
    let a: Array2<f64> = Array2::from_shape_fn((12_500, 1000), |(i, j)| (i ^ j) as f64);
    let (threads, processes) = two_workers_each();
    let mut group = c.benchmark_group("process_array_100MB_by_value_4_tasks");
    group.sample_size(10);
    group.bench_function("threads", |b| {
        b.iter_batched(
            || vec![a.clone(); 4],
            |copies| {
                threads
                    .run(
                        copies
                            .into_iter()
                            .map(|a| delayed(|a: Array2<f64>| a.sum(), a)),
                    )
                    .expect("sums")
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.bench_function("processes", |b| {
        b.iter_batched(
            || {
                (0..4)
                    .map(|_| MmapArray::from(a.clone()))
                    .collect::<Vec<_>>()
            },
            |copies| {
                processes
                    .run(
                        copies
                            .into_iter()
                            .map(|a| delayed_remote(|a: MmapArray<f64, Ix2>| a.view().sum(), a)),
                    )
                    .expect("sums")
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// 1 MiB of `f64` made from `seed`.
fn one_mib(seed: u32) -> Vec<f64> {
    (0..131_072u32).map(|i| f64::from(i ^ seed)).collect()
}

fn large_results(c: &mut Criterion) {
    let threads = Parallel::new().n_jobs(2).build().expect("threads");
    let processes = Parallel::new()
        .backend("processes")
        .n_jobs(2)
        .build()
        .expect("processes");
    let mut group = c.benchmark_group("process_results_64x1MB");
    group.sample_size(20);
    group.bench_function("threads", |b| {
        b.iter(|| {
            threads
                .run((0..64).map(|i| delayed_remote(one_mib, i)))
                .expect("results")
        })
    });
    group.bench_function("processes", |b| {
        b.iter(|| {
            processes
                .run((0..64).map(|i| delayed_remote(one_mib, i)))
                .expect("results")
        })
    });
    let socket = Parallel::new()
        .backend(ProcessBackend::new().max_nbytes(usize::MAX))
        .n_jobs(2)
        .build()
        .expect("processes");
    group.bench_function("processes_socket", |b| {
        b.iter(|| {
            socket
                .run((0..64).map(|i| delayed_remote(one_mib, i)))
                .expect("results")
        })
    });
    // The floor of bringing 64 MiB of results into the parent: one copy of
    // each into a new vector of its own (threads copy nothing).
    let made: Vec<Vec<f64>> = (0..64).map(one_mib).collect();
    group.bench_function("floor_copy_into_parent", |b| {
        b.iter(|| made.iter().map(|v| v.to_vec()).collect::<Vec<_>>())
    });
    group.finish();
}

fn cpu_bound(c: &mut Criterion) {
    let iterations = calibrate();
    let mut group = c.benchmark_group("process_cpu_bound_8x250ms");
    group.sample_size(10);
    for n_jobs in [1, 2] {
        let p = Parallel::new()
            .backend("processes")
            .n_jobs(n_jobs)
            .batch_size(1)
            .build()
            .expect("processes");
        group.bench_function(BenchmarkId::new("n_jobs", n_jobs), |b| {
            b.iter(|| {
                p.run((0..8).map(|_| delayed_remote(spin, iterations)))
                    .expect("spins")
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    trivial_tasks,
    cold_start,
    large_array,
    by_value,
    large_results,
    cpu_bound
);
criterion_main!(benches);

/// A thread and a process `Parallel`, each with 2 workers and batches of one
/// task: the pair the transfer groups compare.
fn two_workers_each() -> (Parallel, Parallel) {
    let threads = Parallel::new()
        .n_jobs(2)
        .batch_size(1)
        .build()
        .expect("threads");
    let processes = Parallel::new()
        .backend("processes")
        .n_jobs(2)
        .batch_size(1)
        .build()
        .expect("processes");
    (threads, processes)
}
