//! Tasks on the ranks of an MPI job: the same program runs on every rank,
//! rank 0 runs `main` and the other ranks run its tasks.
//!
//! Build and run it on this machine with 3 ranks (rank 0 and 2 workers):
//!
//! ```sh
//! cargo build --release --features mpi --example mpi
//! mpirun -n 3 target/release/examples/mpi
//! ```
//!
//! (As root, and with more ranks than cores, add
//! `--allow-run-as-root --oversubscribe`.) Under Slurm:
//! `srun -n 3 --mpi=pmix target/release/examples/mpi`. Run alone, without a
//! launcher, it is a job of one rank and runs the tasks itself. See
//! `docs/cluster.md` for an `sbatch` script and a shared cache directory.

use std::collections::BTreeMap;

use joblib::prelude::*;

/// A CPU-bound task: which rank ran it, and a number it computed.
fn simulate((weights, seed): (Shared<Vec<f64>>, u64)) -> (usize, f64) {
    let mut x = seed as f64;
    for w in weights.iter() {
        x = (x * w).sin() + w;
    }
    (joblib::mpi::rank(), x)
}

/// Fails on purpose for one input, to show how errors come back.
fn fragile(i: u32) -> u32 {
    assert!(i != 3, "input {i} is not allowed");
    i
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Ranks > 0 serve tasks inside `init` and exit when rank 0 is done.
    let mpi = joblib::mpi::init()?;
    println!(
        "rank 0 of {} ranks ({} workers{})",
        mpi.world_size(),
        mpi.workers(),
        if mpi.is_launched() {
            ""
        } else {
            ", no launcher: tasks run here"
        }
    );

    // Sent to each rank once, however many tasks use it.
    let weights = Shared::new(
        (0..1_000_000)
            .map(|i| 1.0 + f64::from(i) * 1e-9)
            .collect::<Vec<f64>>(),
    );
    let results = Parallel::new()
        .backend("mpi")
        .n_jobs(-1)
        .verbose(1)
        .run((0..16).map(|seed| delayed_remote(simulate, (weights.clone(), seed))))?;
    let mut per_rank = BTreeMap::new();
    for (rank, _) in &results {
        *per_rank.entry(*rank).or_insert(0) += 1;
    }
    println!("tasks per rank: {per_rank:?}");
    println!("first result: {:.6}", results[0].1);
    println!(
        "shared value sent {} time(s) for 16 tasks",
        joblib::mpi::shared_values_sent()
    );

    // A panic comes back as an error naming the task and the rank.
    let err = Parallel::new()
        .backend("mpi")
        .run((0..6).map(|i| delayed_remote(fragile, i)))
        .unwrap_err();
    println!("error: {}", err.to_string().lines().next().unwrap_or(""));

    // Dropping `mpi` (here, at the end of main) stops the workers.
    drop(mpi);
    Ok(())
}
