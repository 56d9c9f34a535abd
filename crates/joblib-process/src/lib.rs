//! The `"processes"` backend of the crate `joblib-parallel`: a
//! reusable pool of worker processes that run the current program again,
//! like Python joblib's loky. Most programs use it through the `joblib`
//! facade (`Parallel::new().backend("processes")`); this crate alone gives
//! [`ProcessBackend`], [`init`] and the registration of the names
//! `"processes"` and `"loky"`.
//!
//! It is built on joblib-parallel's public remote-task API only, as any
//! backend that runs tasks elsewhere would be: each batch becomes a
//! [`RemoteBatch`](joblib_parallel::RemoteBatch), its request bytes go to a
//! worker over a Unix socket, and the worker answers with
//! [`serve_request_with`](joblib_parallel::serve_request_with).
//!
//! ```no_run
//! # #![allow(clippy::needless_doctest_main)]
//! use joblib_parallel::{Parallel, delayed_remote};
//!
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     joblib_process::init();
//!     let squares = Parallel::new()
//!         .backend("processes")
//!         .n_jobs(2)
//!         .run((0..100).map(|x| delayed_remote(square, x)))?;
//!     assert_eq!(squares[3], 9);
//!     Ok(())
//! }
//! ```
//!
//! # How a task reaches a worker
//!
//! A worker is this same executable, started again with an environment
//! marker. Before `main` runs, a constructor linked in with this crate sees
//! the marker and turns the process into a worker; [`init`] at the top of
//! `main` does the same where constructors are not run. A worker never runs
//! your `main`.
//!
//! Rust cannot send closures to another process, but the worker holds the
//! very same code: a task made by
//! [`delayed_remote`](fn@joblib_parallel::delayed_remote) names its function by
//! its place in the binary (an offset from a known function), and the
//! worker checks that it runs the same build (the executable's identity)
//! before it uses any offset. So a task function must capture nothing (a
//! capturing closure does not compile: pass the data as an argument), and
//! its arguments and result must be `Serialize` and `DeserializeOwned`. They
//! travel in joblib-persist's format over a Unix socket, never through the
//! worker's stdout, so tasks may print: their output reaches the parent's
//! stdout and stderr.
//!
//! # Large arguments
//!
//! A batch whose encoded arguments exceed [`max_nbytes`](ProcessBackend::max_nbytes)
//! (1 MiB by default, as in joblib) is written to a file under
//! [`temp_folder`](ProcessBackend::temp_folder), else `JOBLIB_TEMP_FOLDER`,
//! else `/dev/shm` when it has 2 GB free, else the system's temporary
//! folder, and the worker maps it: arguments of type `MmapArray`
//! (joblib-persist's, feature `ndarray`) are then views of the mapped
//! file, with no copy at all. Batches of one call with equal encoded
//! arguments (one array passed by value to many tasks) share one file,
//! written once. A [`Shared`](joblib_parallel::Shared) value is
//! written once, to a file of its own that every worker maps once and
//! keeps, released when the value's last clone is dropped.
//!
//! On Linux the results of a batch whose encoding is `max_nbytes` or more
//! come back through shared memory too, instead of the socket: each worker
//! copies them into its reply arena, a `memfd` it makes once and keeps
//! (sealed against shrinking, up to 64 MiB), which the parent maps once and
//! decodes them from; a larger reply gets a `memfd` of its own.
//!
//! On Linux these files have no name: under `/dev/shm` each is a `memfd`,
//! elsewhere a file created (mode 0600) and unlinked at once; the parent
//! holds its descriptor and workers open it through `/proc/<pid>/fd`. So
//! nothing is left behind however the program ends, `std::process::exit`
//! included. On other Unix systems they are named files (0600) in a private
//! folder (0700), removed when the call ends or the value is dropped;
//! folders left by a parent that was killed are removed by the next one.

//! # Workers
//!
//! Pools are kept for the life of the program, one per number of workers,
//! so a second call pays no start-up. A worker idle for
//! [`idle_timeout`](ProcessBackend::idle_timeout) (300 s by default) exits
//! and is started again when needed. On Linux every worker dies with its
//! parent (`PR_SET_PDEATHSIG`), however the parent ends, and exits when the
//! parent closes its socket.
//!
//! A panicking task comes back as [`Error::Panic`](joblib_parallel::Error::Panic)
//! with the worker's backtrace, and the worker lives on. A worker that dies
//! (abort, a signal, out of memory) comes back as
//! [`Error::WorkerDied`](joblib_parallel::Error::WorkerDied), naming the tasks it
//! held and the signal or exit code; the next batch gets a new worker. A
//! task past the call's [`timeout`](joblib_parallel::Parallel::timeout) has its worker
//! killed and replaced.
//!
//! Each worker gets its share of the CPUs (`cpu_count / n_jobs`) in
//! `OMP_NUM_THREADS`, `OPENBLAS_NUM_THREADS`, `MKL_NUM_THREADS`,
//! `VECLIB_MAXIMUM_THREADS` and `RAYON_NUM_THREADS`, unless they are set
//! already, so that numerical libraries inside tasks do not oversubscribe
//! the machine.
//!
//! # If `init` is forgotten
//!
//! With the constructor linked (the normal case on Linux, macOS and
//! Windows) nothing is needed. Should a worker still reach `main` without
//! becoming a worker, it stops at its first use of this backend with an
//! error message, before starting workers of its own, and the parent's call
//! fails with [`Error::BackendStart`](joblib_parallel::Error::BackendStart) saying to
//! call `init`: no fork bomb, no hang.
//!
//! # Names
//!
//! `Parallel::backend("processes")` (or `"loky"`) and
//! `prefer(Prefer::Processes)` find this backend by name in
//! joblib-parallel's registry. The names are registered before `main` by
//! the same constructor, and again by [`init`], by [`register`] and by
//! [`ProcessBackend::new`].

#![cfg(unix)]

mod arena;
mod calls;
mod pipe;
mod pool;
mod transport;
mod wire;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once, OnceLock, PoisonError};
use std::time::Duration;

use joblib_parallel::{BackendKind, Batch, BoxError, CallInfo, ParallelBackend};

/// Arguments larger than this go to workers through a memory-mapped file
/// (joblib's default `max_nbytes`, 1 MiB).
pub const DEFAULT_MAX_NBYTES: usize = 1 << 20;

/// How long an idle worker waits for work before it exits.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Turns this process into a worker of the `"processes"` backend if it was
/// started as one, and returns at once otherwise.
///
/// Call it first thing in `main`. A constructor does the same before `main`
/// on the platforms that run constructors (Linux, macOS, Windows), so the
/// call is a safety net; it costs one environment lookup.
///
/// ```no_run
/// # #![allow(clippy::needless_doctest_main)]
/// fn main() {
///     joblib_process::init();
///     // ... the program, which may use Parallel::new().backend("processes")
/// }
/// ```
pub fn init() {
    worker::run_if_worker();
    register();
}

#[ctor::ctor(unsafe)]
fn become_worker_before_main() {
    worker::run_if_worker();
    register();
}

/// Registers this backend under the names `"processes"` and `"loky"` in
/// joblib-parallel's registry (once; later calls do nothing). Done before
/// `main` by a constructor and by [`init`]; call it if neither can run.
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for name in ["processes", "loky"] {
            // Only an empty or built-in name is refused; these are neither.
            let _ = joblib_parallel::register_backend(name, || {
                Ok(Arc::new(ProcessBackend::new()) as Arc<dyn ParallelBackend>)
            });
        }
    });
}

/// Whether this process is a worker of the `"processes"` backend (inside a
/// task running in a worker).
pub fn is_worker() -> bool {
    worker::is_worker()
}

/// Runs batches in a reusable pool of worker processes; see the
/// [crate documentation](self). Chosen by `.backend("processes")` (or
/// joblib's name, `"loky"`), by `prefer(Prefer::Processes)`, or by value to
/// change its settings:
///
/// ```no_run
/// use std::time::Duration;
/// use joblib_parallel::{Parallel, delayed_remote};
/// use joblib_process::ProcessBackend;
///
/// fn square(x: u64) -> u64 { x * x }
///
/// let backend = ProcessBackend::new()
///     .max_nbytes(4 << 20)
///     .idle_timeout(Duration::from_secs(60));
/// let squares = Parallel::new()
///     .backend(backend)
///     .n_jobs(2)
///     .run((0..100).map(|x| delayed_remote(square, x)))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Tasks must be made by [`delayed_remote`](fn@joblib_parallel::delayed_remote)
/// or [`try_delayed_remote`](fn@joblib_parallel::try_delayed_remote); a call
/// whose tasks were made by [`delayed`](fn@joblib_parallel::delayed) fails
/// with an error saying so.
#[derive(Debug, Clone)]
pub struct ProcessBackend {
    max_nbytes: usize,
    temp_folder: Option<PathBuf>,
    idle_timeout: Duration,
}

impl Default for ProcessBackend {
    fn default() -> Self {
        ProcessBackend::new()
    }
}

impl ProcessBackend {
    /// The backend with joblib's defaults: `max_nbytes` 1 MiB, the temporary
    /// folder chosen as described in the module docs, 300 s idle timeout.
    pub fn new() -> ProcessBackend {
        register();
        ProcessBackend {
            max_nbytes: DEFAULT_MAX_NBYTES,
            temp_folder: None,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }

    /// Batches whose encoded arguments are larger than `bytes` reach the
    /// workers through a memory-mapped file rather than the socket.
    pub fn max_nbytes(mut self, bytes: usize) -> Self {
        self.max_nbytes = bytes;
        self
    }

    /// The folder under which each call's folder of large arguments is made.
    pub fn temp_folder(mut self, folder: impl Into<PathBuf>) -> Self {
        self.temp_folder = Some(folder.into());
        self
    }

    /// How long an idle worker waits for work before it exits (it is
    /// started again when work comes). Applies to the pool the next call
    /// uses.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The pids of the live worker processes of every pool of this process.
    pub fn worker_pids() -> Vec<u32> {
        pool::all_pids()
    }

    /// Stops the worker processes of every pool now, instead of after the
    /// idle timeout or at exit, and returns within about 2 s whatever they
    /// do: batches not started yet fail with
    /// [`Error::Backend`](joblib_parallel::Error::Backend), a worker gets 1 s
    /// to finish the batch it runs and is killed after that
    /// ([`Error::WorkerDied`](joblib_parallel::Error::WorkerDied) for its
    /// call), and every worker is reaped before this returns. The next call
    /// starts new workers.
    pub fn shutdown() {
        pool::shutdown_all();
    }
}

/// Sweeps each temporary root once per process.
fn sweep_once(root: &Path) {
    static SWEPT: OnceLock<Mutex<Vec<PathBuf>>> = OnceLock::new();
    let mut swept = SWEPT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if !swept.iter().any(|p| p == root) {
        swept.push(root.to_path_buf());
        calls::sweep_stale_folders(root);
    }
}

impl ParallelBackend for ProcessBackend {
    fn name(&self) -> &str {
        "processes"
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Processes
    }

    fn supports_shared_memory(&self) -> bool {
        false
    }

    fn start(&self, call: &CallInfo) -> Result<(), BoxError> {
        // Keeps the constructor's object file in every binary that can
        // start workers.
        std::hint::black_box(become_worker_before_main as fn());
        worker::refuse_if_uninitialized_worker();
        // Workers run this program's executable: a copy of this crate in a
        // shared library loaded by another program (a Python extension)
        // would start that program instead, which cannot serve our tasks.
        joblib_parallel::remote::check_executable()?;
        sweep_once(&calls::temp_root(self.temp_folder.as_deref()));
        pool::pool(
            call.n_jobs,
            call.nesting_level,
            pool::PoolSettings {
                idle_timeout: self.idle_timeout,
            },
        )?;
        calls::begin(call.call_id, self.max_nbytes, self.temp_folder.clone());
        Ok(())
    }

    fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        let pool = pool::pool(
            batch.n_jobs(),
            batch.nesting_level(),
            pool::PoolSettings {
                idle_timeout: self.idle_timeout,
            },
        )?;
        pool.submit(batch)
    }

    /// Kills the workers still running batches of the call (as loky does):
    /// after a first error, a timeout or dropped results nothing they compute
    /// is wanted, and a task must not outlive its call. Their slots start
    /// new workers for the next batches.
    fn abort(&self, call: &CallInfo) {
        pool::kill_call(call.call_id);
    }

    fn finish(&self, call: &CallInfo) {
        calls::end(call.call_id);
    }
}
