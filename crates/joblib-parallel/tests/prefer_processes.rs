//! `prefer(Processes)` and `require(SharedMem)`: the backend registered as
//! "processes" is picked (registered for the whole test binary, hence this
//! file of its own). The crate joblib-process registers the real one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use joblib_parallel::{
    BackendKind, Batch, BoxError, Parallel, ParallelBackend, Prefer, Require, delayed,
    register_backend,
};

static BATCHES: AtomicUsize = AtomicUsize::new(0);

/// Stands in for the process backend: runs batches inline, shares nothing.
struct FakeProcesses;

impl ParallelBackend for FakeProcesses {
    fn name(&self) -> &str {
        "processes"
    }
    fn kind(&self) -> BackendKind {
        BackendKind::Processes
    }
    fn supports_shared_memory(&self) -> bool {
        false
    }
    fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        BATCHES.fetch_add(1, Ordering::SeqCst);
        batch.run();
        Ok(())
    }
}

#[test]
fn prefer_and_require() {
    register_backend("processes", || Ok(Arc::new(FakeProcesses))).unwrap();
    let tasks = || (0..10).map(|i| delayed(|i: i32| i * 2, i));

    // Tasks made by `delayed` cannot leave this process: threads.
    let out = Parallel::new()
        .n_jobs(2)
        .prefer(Prefer::Processes)
        .run(tasks())
        .unwrap();
    assert_eq!(out[9], 18);
    assert_eq!(BATCHES.load(Ordering::SeqCst), 0);

    // Tasks made by `delayed_remote` go to the backend named "processes".
    #[cfg(feature = "remote")]
    {
        let out = Parallel::new()
            .n_jobs(2)
            .prefer(Prefer::Processes)
            .run((0..10).map(|i| joblib_parallel::delayed_remote(|i: i32| i * 2, i)))
            .unwrap();
        assert_eq!(out[9], 18);
        assert!(
            BATCHES.load(Ordering::SeqCst) > 0,
            "the registered process backend ran the batches"
        );
    }
    let used = BATCHES.load(Ordering::SeqCst);

    // SharedMem beats the preference: threads.
    let names = Parallel::new()
        .n_jobs(2)
        .prefer(Prefer::Processes)
        .require(Require::SharedMem)
        .run((0..4).map(|_| delayed(|()| std::thread::current().name().map(str::to_owned), ())))
        .unwrap();
    assert!(
        names
            .iter()
            .all(|n| n.as_deref().unwrap_or("").starts_with("joblib-worker-"))
    );
    assert_eq!(BATCHES.load(Ordering::SeqCst), used);

    // Named explicitly, a backend that shares nothing is refused.
    let err = Parallel::new()
        .backend("processes")
        .require(Require::SharedMem)
        .run(tasks())
        .unwrap_err();
    assert!(err.to_string().contains("SharedMem"), "{err}");
}
