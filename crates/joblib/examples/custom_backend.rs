//! A backend of your own: run joblib-parallel's batches on a `rayon`
//! thread pool, register it under a name, and use it by that name.
//!
//! `cargo run --release --example custom_backend`

use std::sync::Arc;
use std::time::Duration;

use joblib::parallel::{
    Batch, BoxError, Parallel, ParallelBackend, delayed, parallel_config, register_backend,
};

/// Runs every batch as a job of a rayon pool.
struct RayonBackend {
    pool: rayon::ThreadPool,
}

impl ParallelBackend for RayonBackend {
    fn name(&self) -> &str {
        "rayon"
    }

    /// The pool has a fixed size: asking for more workers gets no more.
    fn effective_n_jobs(&self, n_jobs: usize) -> usize {
        n_jobs.min(self.pool.current_num_threads())
    }

    /// `Batch::run` does all the work (panics, order, aborts, nesting); the
    /// backend only has to call it somewhere, once.
    fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        self.pool.spawn(move || batch.run());
        Ok(())
    }

    /// Handing a job to rayon costs microseconds: short batches are fine.
    fn target_batch_duration(&self) -> Duration {
        Duration::from_millis(10)
    }
}

/// Steps of the Collatz sequence from `n` down to 1.
fn collatz_steps(mut n: u64) -> u32 {
    let mut steps = 0;
    while n != 1 {
        n = match n % 2 {
            0 => n / 2,
            _ => 3 * n + 1,
        };
        steps += 1;
    }
    steps
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The factory runs once per `Parallel` that names the backend.
    register_backend("rayon", || {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .thread_name(|i| format!("rayon-backend-{i}"))
            .build()?;
        Ok(Arc::new(RayonBackend { pool }) as Arc<dyn ParallelBackend>)
    })?;

    let parallel = Parallel::new().backend("rayon").n_jobs(2).verbose(1);
    let steps = parallel.run((1..=100_000u64).map(|n| delayed(collatz_steps, n)))?;
    let (longest, start) = steps
        .iter()
        .zip(1u64..)
        .max()
        .map(|(&s, n)| (s, n))
        .ok_or("no results")?;
    println!("longest Collatz sequence below 100,000 starts at {start}: {longest} steps");

    // The same backend as the default of a scope.
    let names = parallel_config().backend("rayon").n_jobs(2).scope(|| {
        Parallel::new().run((0..4).map(|_| {
            delayed(
                |()| std::thread::current().name().unwrap_or("?").to_owned(),
                (),
            )
        }))
    })?;
    println!("tasks ran on {names:?}");
    assert!(names.iter().all(|n| n.starts_with("rayon-backend-")));
    Ok(())
}
