//! The `"mpi"` backend, run under `mpirun` with 3 ranks (rank 0 and 2
//! workers) by `cargo xtask mpi --bench` (and by `cargo xtask bench`):
//!
//! - 10,000 trivial tasks on the 2 worker ranks (target: 20 ms in all;
//!   the `processes` bench measures the same workload on the process
//!   backend).
//! - 8 CPU-bound tasks of about 0.25 s on 2 worker ranks against 1 (target:
//!   1.8x; rank 0 must not take a core while it waits).
//! - A 10 MiB `serde_bytes` payload sent to a rank and back (target: 250
//!   MB/s).
//!
//! Criterion's harness does not fit a program whose other ranks must stay
//! inside `joblib_mpi::init()`, so this is a plain timing loop: each
//! workload is repeated, the median printed, and written where
//! `cargo xtask bench` reads criterion's results
//! (`target/criterion/mpi/<name>/new/`), so docs/benchmarks.md shows it.
//! Run alone (without `mpirun`) it says so and measures nothing.

// A bench target, not a library: its items need no docs.
#![allow(missing_docs)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{calibrate, spin, trivial};
use joblib_parallel::{BatchSize, Parallel, delayed_remote};
use serde_bytes::ByteBuf;

/// Runs `f` `runs` times and returns the median duration.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    times[times.len() / 2]
}

/// Writes a median as criterion would, for xtask's report.
fn record(name: &str, median: Duration) {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("criterion/mpi")
        .join(name)
        .join("new");
    let nanos = median.as_secs_f64() * 1e9;
    let written = std::fs::create_dir_all(&dir).and_then(|()| {
        std::fs::write(
            dir.join("benchmark.json"),
            format!("{{\"full_id\":\"mpi/{name}\"}}"),
        )?;
        std::fs::write(
            dir.join("estimates.json"),
            format!("{{\"median\":{{\"point_estimate\":{nanos}}}}}"),
        )
    });
    if let Err(e) = written {
        eprintln!("mpi bench: cannot write {}: {e}", dir.display());
    }
}

fn echo(b: ByteBuf) -> ByteBuf {
    b
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mpi = joblib_mpi::init()?;
    if mpi.workers() < 2 {
        println!(
            "mpi bench: {} worker rank(s); run it under `mpirun -n 3` (cargo xtask mpi --bench) \
             to measure",
            mpi.workers()
        );
        return Ok(());
    }
    let mpi_par = |n_jobs: i32| Parallel::new().backend("mpi").n_jobs(n_jobs);

    // Warm up: every rank has served a call.
    mpi_par(-1).run((0..100u64).map(|x| delayed_remote(trivial, x)))?;
    let t = median(15, || {
        let out = mpi_par(-1).run((0..10_000u64).map(|x| delayed_remote(trivial, x)));
        assert!(out.is_ok_and(|v| v.len() == 10_000));
    });
    println!(
        "mpi/trivial_tasks_10000: median {:.2} ms",
        t.as_secs_f64() * 1e3
    );
    record("trivial_tasks_10000", t);

    let iterations = calibrate();
    let cpu = |n_jobs: i32| {
        median(3, || {
            let out = mpi_par(n_jobs)
                .batch_size(BatchSize::Fixed(1))
                .run((0..8).map(|_| delayed_remote(spin, iterations)));
            assert!(out.is_ok());
        })
    };
    let (one, two) = (cpu(1), cpu(2));
    println!(
        "mpi/cpu_8x250ms: 1 rank {:.3} s, 2 ranks {:.3} s, speed-up {:.2}x",
        one.as_secs_f64(),
        two.as_secs_f64(),
        one.as_secs_f64() / two.as_secs_f64()
    );
    record("cpu_8x250ms/1_rank", one);
    record("cpu_8x250ms/2_ranks", two);

    let payload = ByteBuf::from(vec![7u8; 10 << 20]);
    let t = median(9, || {
        let out = mpi_par(1).run([delayed_remote(echo, payload.clone())]);
        assert!(out.is_ok_and(|v| v[0].len() == 10 << 20));
    });
    let mb = (10 << 20) as f64 / 1e6;
    println!(
        "mpi/roundtrip_10MiB: median {:.2} ms: {:.0} MB/s each way ({:.0} MB/s counting both ways)",
        t.as_secs_f64() * 1e3,
        mb / t.as_secs_f64(),
        2.0 * mb / t.as_secs_f64()
    );
    record("roundtrip_10MiB", t);
    drop(mpi);
    Ok(())
}
