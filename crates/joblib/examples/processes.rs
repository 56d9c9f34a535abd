//! Worker processes: `cargo run --release --example processes`.
//!
//! Shows what the `"processes"` backend gives over threads:
//!
//! 1. CPU-bound tasks spread over worker processes (each its own memory and
//!    its own global state), with the speed-up over one worker;
//! 2. a large array handed to every worker once, through a memory-mapped
//!    file (`Shared`), instead of once per task through a pipe;
//! 3. a task that crashes its process (here: `abort`) comes back as an
//!    error naming the task and the signal, and the pool carries on;
//! 4. the same workers serve the next call (a reusable pool, like loky's).

use std::collections::BTreeSet;
use std::time::Instant;

use joblib::parallel::{Error, ProcessBackend};
use joblib::persist::MmapArray;
use joblib::prelude::*;
use ndarray::{Array2, Ix2};

/// A Monte Carlo estimate of pi from one seed: CPU-bound, no shared state.
fn estimate_pi(seed: u64) -> f64 {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let n = 8_000_000;
    let inside = (0..n)
        .filter(|_| {
            let (x, y) = (next(), next());
            x * x + y * y <= 1.0
        })
        .count();
    4.0 * inside as f64 / n as f64
}

/// The mean of one column of a matrix every worker maps.
fn column_mean((data, j): (Shared<MmapArray<f64, Ix2>>, usize)) -> (u32, f64) {
    let view = data.view();
    (
        std::process::id(),
        view.column(j).mean().unwrap_or(f64::NAN),
    )
}

fn main() -> joblib::Result<()> {
    // Turns the copies of this program that the backend starts into
    // workers (a constructor already did; this is the documented rule).
    joblib::init();

    println!("1. CPU-bound tasks: 8 Monte Carlo estimates of pi");
    let mut times = Vec::new();
    for n_jobs in [1, 2] {
        let start = Instant::now();
        let estimates = Parallel::new()
            .backend("processes")
            .n_jobs(n_jobs)
            .verbose(if n_jobs == 2 { 5 } else { 0 })
            .run((0..8).map(|seed| delayed_remote(estimate_pi, seed)))?;
        let secs = start.elapsed().as_secs_f64();
        let mean = estimates.iter().sum::<f64>() / estimates.len() as f64;
        println!("   n_jobs={n_jobs}: pi ~ {mean:.5} in {secs:.2} s");
        times.push(secs);
    }
    println!(
        "   speed-up with 2 worker processes: {:.2}x",
        times[0] / times[1]
    );

    println!("\n2. A 100 MB matrix to every worker, once");
    let data: MmapArray<f64, Ix2> =
        Array2::from_shape_fn((12_500, 1000), |(i, j)| (i % 100) as f64 + j as f64).into();
    let data = Shared::new(data);
    let start = Instant::now();
    let means = Parallel::new()
        .backend("processes")
        .n_jobs(2)
        .run((0..1000).map(|j| delayed_remote(column_mean, (data.clone(), j))))?;
    let pids: BTreeSet<u32> = means.iter().map(|(pid, _)| *pid).collect();
    println!(
        "   1000 column means from workers {pids:?} in {:.0} ms; mean of column 10 = {}",
        start.elapsed().as_secs_f64() * 1e3,
        means[10].1
    );

    println!("\n3. A task that kills its worker");
    let err = Parallel::new()
        .backend("processes")
        .n_jobs(2)
        .batch_size(1)
        .run((0..4u32).map(|i| {
            delayed_remote(
                |i: u32| {
                    if i == 2 {
                        std::process::abort();
                    }
                    i
                },
                i,
            )
        }))
        .expect_err("task 2 aborts");
    match &err {
        Error::WorkerDied { index, .. } => {
            println!("   error for task {index}: {err}");
        }
        other => println!("   unexpected: {other}"),
    }

    println!("\n4. The pool lives on, and is reused");
    let again: BTreeSet<u32> = Parallel::new()
        .backend("processes")
        .n_jobs(2)
        .batch_size(1)
        .run((0..20).map(|i| delayed_remote(|_: u32| std::process::id(), i)))?
        .into_iter()
        .collect();
    let kept: Vec<_> = again.intersection(&pids).collect();
    let new: Vec<_> = again.difference(&pids).collect();
    println!("   workers before the crash: {pids:?}; now: {again:?}");
    println!("   kept {kept:?}, started {new:?} in place of the one that died");
    println!(
        "   all live worker processes of this program: {:?}",
        ProcessBackend::worker_pids()
    );
    Ok(())
}
