//! The [`ParallelBackend`] trait, the [`Batch`] it runs, and the registry of
//! named backends.

mod batch;
mod collect;
mod registry;
mod sequential;
mod threads;

pub use batch::Batch;
pub(crate) use batch::{CallShared, Outcome, TaskClock, TypedJob};
pub(crate) use collect::Collector;
pub use registry::{BackendSpec, register_backend};
pub(crate) use registry::{is_registered, resolve_name};
pub use sequential::SequentialBackend;
pub use threads::ThreadBackend;

use std::time::Duration;

use crate::error::BoxError;

/// What kind of workers a backend runs tasks on; used by
/// [`prefer`](crate::Parallel::prefer), [`require`](crate::Parallel::require)
/// and the nesting rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// Everything runs in the calling thread.
    Sequential,
    /// Threads of the current process (memory is shared).
    Threads,
    /// Other processes (memory is not shared; tasks must be serializable).
    Processes,
    /// Anything else a user plugs in.
    Custom,
}

/// Facts about one parallel call, handed to the backend when the call starts
/// and when it stops early.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallInfo {
    /// A number unique to this call within the process.
    pub call_id: u64,
    /// The number of workers the call may use (already resolved: at least 1).
    pub n_jobs: usize,
    /// 0 for a call made outside any parallel task, 1 for a call made inside
    /// a task of a level-0 call, and so on.
    pub nesting_level: usize,
    /// The call's [`timeout`](crate::Parallel::timeout), if any: when
    /// [`abort`](ParallelBackend::abort) follows a timeout, the late task
    /// has run this long.
    pub timeout: Option<Duration>,
}

/// Where batches of tasks run: implement this to run them anywhere.
///
/// A [`Parallel`](crate::Parallel) call cuts its input into [`Batch`]es and
/// hands each to [`submit`](ParallelBackend::submit); the backend arranges
/// for [`Batch::run`] to be called exactly once, on whatever thread it likes,
/// or for [`Batch::fail`] to be called if it cannot. Everything else (order
/// of results, batching, `pre_dispatch`, timeouts, catching panics, skipping
/// the tasks of an aborted call, progress output) is done by the call, so a
/// backend is small: the built-in thread backend is a channel and a few
/// threads.
///
/// A batch that is dropped without being run or failed reports an
/// [`Error::Backend`](crate::Error::Backend) to its call, so a backend that
/// shuts down with work queued never leaves a caller waiting.
///
/// ```
/// use std::sync::Arc;
/// use joblib_parallel::{Batch, ParallelBackend, Parallel, BoxError, delayed};
///
/// /// Runs every batch on a fresh thread (for illustration only).
/// struct ThreadPerBatch;
///
/// impl ParallelBackend for ThreadPerBatch {
///     fn name(&self) -> &str { "thread-per-batch" }
///     fn submit(&self, batch: Batch) -> Result<(), BoxError> {
///         std::thread::spawn(move || batch.run());
///         Ok(())
///     }
/// }
///
/// let squares = Parallel::new()
///     .backend(ThreadPerBatch)
///     .n_jobs(2)
///     .run((0..5u64).map(|x| delayed(|x: u64| x * x, x)))?;
/// assert_eq!(squares, [0, 1, 4, 9, 16]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ParallelBackend: Send + Sync + 'static {
    /// The backend's name, as shown in verbose output and errors.
    fn name(&self) -> &str;

    /// What kind of workers this backend uses. The default is
    /// [`BackendKind::Custom`].
    fn kind(&self) -> BackendKind {
        BackendKind::Custom
    }

    /// Whether tasks run in this process and may share memory with the
    /// caller (`false` for a process backend). Checked by
    /// [`require(SharedMem)`](crate::Parallel::require).
    fn supports_shared_memory(&self) -> bool {
        true
    }

    /// How many workers can actually run at once when `n_jobs` are asked
    /// for (already resolved from joblib's negative values). The default
    /// grants the request.
    fn effective_n_jobs(&self, n_jobs: usize) -> usize {
        n_jobs
    }

    /// Called once at the start of each call, before any batch is submitted:
    /// start or grow workers here. An error stops the call with
    /// [`Error::BackendStart`](crate::Error::BackendStart).
    fn start(&self, call: &CallInfo) -> Result<(), BoxError> {
        let _ = call;
        Ok(())
    }

    /// Runs `batch` asynchronously: arrange for [`Batch::run`] to be called
    /// once, somewhere. Must not block for long; a backend with all workers
    /// busy queues the batch. An error stops the call with
    /// [`Error::Backend`](crate::Error::Backend).
    fn submit(&self, batch: Batch) -> Result<(), BoxError>;

    /// Called when a call stops early (first error, timeout, or its result
    /// iterator dropped): batches of this call that have not started will
    /// skip their tasks anyway; a backend that can stop running work (a
    /// process backend killing a worker) may do it here. Default: nothing.
    fn abort(&self, call: &CallInfo) {
        let _ = call;
    }

    /// Called once when a call is over (all its results read, or the call
    /// stopped early or was dropped), after any [`abort`](ParallelBackend::abort):
    /// release what [`start`](ParallelBackend::start) set up for it.
    /// Default: nothing.
    fn finish(&self, call: &CallInfo) {
        let _ = call;
    }

    /// How long a batch should take, for auto-batching: the call measures
    /// task durations and sizes batches to last about this long. joblib's
    /// 200 ms suits backends with a costly dispatch (processes); backends
    /// whose dispatch costs microseconds want less, for better balance.
    fn target_batch_duration(&self) -> Duration {
        Duration::from_millis(200)
    }
}
