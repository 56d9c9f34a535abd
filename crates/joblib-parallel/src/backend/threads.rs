//! The thread backend: persistent pools of worker threads, shared by all
//! calls of the process.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use super::{BackendKind, Batch, CallInfo, ParallelBackend};
use crate::error::BoxError;

/// Runs batches on persistent worker threads of this process.
///
/// Pools are created on first use and kept for the life of the process, one
/// per (number of workers, nesting level): every call with `n_jobs(4)` at
/// top level shares the same 4 threads, so a second call pays no thread
/// start-up, and a `Parallel` call made inside a task (one level deeper)
/// never waits for the very workers that run it. Idle workers sleep on a
/// channel and cost no CPU.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadBackend;

struct Pool {
    tx: Sender<Batch>,
}

type PoolKey = (usize, usize);

fn pools() -> &'static Mutex<HashMap<PoolKey, Arc<Pool>>> {
    static POOLS: OnceLock<Mutex<HashMap<PoolKey, Arc<Pool>>>> = OnceLock::new();
    POOLS.get_or_init(Default::default)
}

fn pool(workers: usize, level: usize) -> Result<Arc<Pool>, BoxError> {
    let key = (workers.max(1), level);
    // A poisoned lock only means a panic while inserting; the map is intact.
    let mut map = pools().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(pool) = map.get(&key) {
        return Ok(Arc::clone(pool));
    }
    let (tx, rx) = crossbeam_channel::unbounded::<Batch>();
    for i in 0..key.0 {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("joblib-worker-{level}-{i}"))
            .spawn(move || worker_loop(&rx))
            .map_err(|e| format!("cannot start worker thread {i} of {}: {e}", key.0))?;
    }
    let pool = Arc::new(Pool { tx });
    map.insert(key, Arc::clone(&pool));
    Ok(pool)
}

fn worker_loop(rx: &Receiver<Batch>) {
    while let Ok(batch) = rx.recv() {
        // `Batch::run` catches task panics; this only guards against a panic
        // while dropping a result, which must not kill the worker.
        let _ = catch_unwind(AssertUnwindSafe(|| batch.run()));
    }
}

impl ParallelBackend for ThreadBackend {
    fn name(&self) -> &str {
        "threads"
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Threads
    }

    fn start(&self, call: &CallInfo) -> Result<(), BoxError> {
        pool(call.n_jobs, call.nesting_level).map(drop)
    }

    fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        let pool = pool(batch.n_jobs(), batch.nesting_level())?;
        pool.tx
            .send(batch)
            .map_err(|_| "the worker threads are gone".into())
    }

    fn target_batch_duration(&self) -> Duration {
        // Handing a batch to a thread costs microseconds, not the
        // milliseconds of a process round trip: short batches balance better,
        // and the tail batches may shrink to 20 us (a hundredth of this)
        // so that the workers finish together.
        Duration::from_millis(2)
    }
}
