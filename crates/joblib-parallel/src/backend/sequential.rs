//! The sequential backend: every batch runs in the calling thread.

use super::{BackendKind, Batch, ParallelBackend};
use crate::error::BoxError;

/// Runs every batch at once, in the thread that submits it: no parallelism,
/// no threads, the easiest to debug. Chosen by `n_jobs(1)`, by the name
/// `"sequential"`, and for `Parallel` calls nested two levels deep.
#[derive(Debug, Clone, Copy, Default)]
pub struct SequentialBackend;

impl ParallelBackend for SequentialBackend {
    fn name(&self) -> &str {
        "sequential"
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Sequential
    }

    fn effective_n_jobs(&self, _n_jobs: usize) -> usize {
        1
    }

    fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        batch.run();
        Ok(())
    }
}
