//! `release_shared` drops the shared values a worker holds that the
//! backend no longer keeps, at once (its own test binary: a worker's
//! loaded values are process-global, and any other test's request would
//! release them too).

#![cfg(feature = "remote")]

use std::sync::atomic::{AtomicUsize, Ordering};

use joblib_parallel::remote::release_shared;
use joblib_parallel::{Batch, BoxError, Parallel, ParallelBackend, Shared, delayed_remote};
use serde::{Deserialize, Serialize};

/// How many `Tracked` values were dropped.
static DROPPED: AtomicUsize = AtomicUsize::new(0);

#[derive(Serialize, Deserialize)]
struct Tracked(u64);

impl Drop for Tracked {
    fn drop(&mut self) {
        DROPPED.fetch_add(1, Ordering::SeqCst);
    }
}

/// Serves each request in this process, which plays the worker.
struct InProcess;

impl ParallelBackend for InProcess {
    fn name(&self) -> &str {
        "in-process"
    }
    fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        let mut remote = batch.into_remote("in-process").map_err(|e| e.to_string())?;
        let request = remote.request_bytes()?;
        // SAFETY: the request was made just above by this process.
        let reply = unsafe { joblib_parallel::serve_request(&request) };
        remote.complete(&reply);
        Ok(())
    }
}

#[test]
fn released_values_are_dropped_at_once_and_kept_ones_stay() {
    let value = Shared::new(Tracked(7));
    let out = Parallel::new()
        .backend(InProcess)
        .n_jobs(1)
        .run((0..3).map(|_| delayed_remote(|t: Shared<Tracked>| t.0, value.clone())))
        .unwrap();
    assert_eq!(out, [7, 7, 7]);
    // The worker's decoded copy is loaded, for the next tasks.
    let before = DROPPED.load(Ordering::SeqCst);
    let mut asked = Vec::new();
    release_shared(|id, _| {
        asked.push(id);
        true
    });
    assert_eq!(asked, [value.id()]);
    assert_eq!(DROPPED.load(Ordering::SeqCst), before, "kept");
    release_shared(|_, _| false);
    assert_eq!(DROPPED.load(Ordering::SeqCst), before + 1, "released");
    release_shared(|id, _| panic!("value {id:x} was released already"));
    drop(value);
    assert_eq!(DROPPED.load(Ordering::SeqCst), before + 2);
}
