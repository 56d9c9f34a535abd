//! The `"mpi"` backend, run under `mpirun` with 3 ranks (rank 0 and 2
//! workers) by `cargo xtask mpi --bench` (and by `cargo xtask bench`):
//!
//! - 10,000 trivial tasks on the 2 worker ranks (target: 20 ms in all;
//!   the `processes` bench measures the same workload on the process
//!   backend).
//! - 8 CPU-bound tasks of about 0.25 s on 2 worker ranks against 1 (target:
//!   1.8x; rank 0 must not take a core while it waits).
//! - A 10 MiB `serde_bytes` payload sent to a rank and back (target: 250
//!   MB/s), against the same bytes sent to a rank and back with plain MPI
//!   calls (`roundtrip_10MiB_raw`, the floor on this machine): that part
//!   runs when the program is given `--raw`, in a launch of its own, since
//!   MPI can be started only once in a process and `joblib_mpi::init()`
//!   must start it.
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

/// The 10 MiB payload of the round trips.
const PAYLOAD: usize = 10 << 20;
/// Round trips timed (after one to warm up).
const ROUND_TRIPS: usize = 9;

fn print_roundtrip(name: &str, t: Duration) {
    let mb = PAYLOAD as f64 / 1e6;
    println!(
        "mpi/{name}: median {:.2} ms: {:.0} MB/s each way ({:.0} MB/s counting both ways)",
        t.as_secs_f64() * 1e3,
        mb / t.as_secs_f64(),
        2.0 * mb / t.as_secs_f64()
    );
    record(name, t);
}

/// The floor: rank 0 sends the payload to rank 1 with a blocking send and
/// receives it back into a new vector, as joblib-mpi's messages travel,
/// with nothing else around them. Ranks other than 0 and 1 only wait.
fn raw_roundtrip() -> Result<(), Box<dyn std::error::Error>> {
    use mpi::point_to_point::{Destination, Source};
    use mpi::topology::Communicator;

    let universe = mpi::initialize().ok_or("MPI was initialized already")?;
    let world = universe.world();
    if world.size() < 2 {
        println!("mpi bench --raw: run it under `mpirun -n 3` to measure");
        return Ok(());
    }
    match world.rank() {
        0 => {
            let rank1 = world.process_at_rank(1);
            let payload = vec![7u8; PAYLOAD];
            let once = || {
                rank1.send(&payload[..]);
                let (back, _) = rank1.receive_vec::<u8>();
                assert_eq!(back.len(), PAYLOAD);
            };
            once();
            let t = median(ROUND_TRIPS, once);
            print_roundtrip("roundtrip_10MiB_raw", t);
        }
        1 => {
            let rank0 = world.process_at_rank(0);
            for _ in 0..=ROUND_TRIPS {
                let (bytes, _) = rank0.receive_vec::<u8>();
                rank0.send(&bytes[..]);
            }
        }
        _ => {}
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--raw") {
        return raw_roundtrip();
    }
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

    let payload = ByteBuf::from(vec![7u8; PAYLOAD]);
    let t = median(ROUND_TRIPS, || {
        let out = mpi_par(1).run([delayed_remote(echo, payload.clone())]);
        assert!(out.is_ok_and(|v| v[0].len() == PAYLOAD));
    });
    print_roundtrip("roundtrip_10MiB", t);
    drop(mpi);
    Ok(())
}
