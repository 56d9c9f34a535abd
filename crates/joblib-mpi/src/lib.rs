//! The `"mpi"` backend of the crate `joblib-parallel`: the tasks of a
//! `Parallel` call run on the ranks of an MPI job (Open MPI), launched by
//! `mpirun` or by Slurm's `srun`, across as many machines as the job has.
//! Most programs use it through the `joblib` facade (feature `mpi`:
//! `joblib::mpi`); this crate alone gives [`init`], [`MpiBackend`] and the
//! registration of the name `"mpi"`.
//!
//! The same program runs on every rank. [`init`], first thing in `main`,
//! turns ranks 1, 2, ... into workers that serve tasks until rank 0 is done
//! (they never return from it), and returns to rank 0, which runs `main`:
//!
//! ```no_run
//! # #![allow(clippy::needless_doctest_main)]
//! use joblib_parallel::{Parallel, delayed_remote};
//!
//! fn simulate(seed: u64) -> f64 {
//!     (seed as f64).sqrt()
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Keep the value until the end of main: dropping it ends the job.
//!     let mpi = joblib_mpi::init()?;
//!     println!("{} worker ranks", mpi.workers());
//!     let results = Parallel::new()
//!         .backend("mpi")
//!         .n_jobs(-1)
//!         .run((0..100).map(|seed| delayed_remote(simulate, seed)))?;
//!     assert_eq!(results[4], 2.0);
//!     Ok(())
//! }
//! ```
//!
//! Run it with `mpirun -n 5 target/release/my-program` (rank 0 and four
//! workers), or `srun -n 5 --mpi=pmix target/release/my-program` under
//! Slurm; `docs/cluster.md` has an `sbatch` script and how to choose the
//! number of ranks and threads.
//!
//! # Why `joblib_mpi::init()` and not `joblib::init()`
//!
//! Initializing MPI is a decision with consequences (a rank that never
//! calls `MPI_Finalize` fails the whole job), so it is asked for
//! explicitly, and its result must live until `main` ends: dropping the
//! [`Mpi`] value tells the workers to stop and finalizes MPI. The process
//! backend's `joblib::init()` is unrelated and can be called as well.
//!
//! # Tasks
//!
//! Tasks are made by [`delayed_remote`](fn@joblib_parallel::delayed_remote)
//! or [`try_delayed_remote`](fn@joblib_parallel::try_delayed_remote), as for
//! the `"processes"` backend, and travel as joblib-parallel's request and
//! reply bytes (`docs/remote.md`), one MPI message each, with no per-element
//! encoding of large arrays. Everything a `Parallel` call does works the
//! same: results in order or unordered, auto-batching, `pre_dispatch`,
//! `timeout`, the first error stopping the call, verbose output. Rank 0
//! keeps about two batches in flight per worker rank, so a rank starts its
//! next batch as soon as one ends. A [`Shared`](joblib_parallel::Shared)
//! value is sent to each rank once and kept there across calls until its
//! last clone on rank 0 is dropped.
//!
//! `n_jobs(-1)` (or any `n_jobs` at least rank 0's CPU count) uses every
//! worker rank; a smaller `n_jobs` uses that many (the first ones).
//!
//! # Waiting without spinning
//!
//! Open MPI's blocking receive spins a core at 100%. Here a waiting rank
//! (a worker waiting for work, rank 0 waiting for replies) probes without
//! blocking and sleeps between probes, from 50 µs up to 1 ms while work
//! flows and 4 ms after a second of silence: an idle rank costs about 1% of
//! a core, and rank 0 does not take a core from the workers.
//!
//! # Failures
//!
//! A task that panics comes back as
//! [`Error::Panic`](joblib_parallel::Error::Panic), its message naming the
//! rank and host, and the rank keeps serving. A task past the call's
//! `timeout` stops the call, but MPI cannot stop a rank's work: the rank
//! finishes the task before it serves the next batch. A rank that dies
//! (a signal, an abort, out of memory, its machine lost) ends the whole
//! job: that is Open MPI's rule, `mpirun` (or `srun`) kills every rank,
//! rank 0 included, about a second later, and prints which rank died. Rank
//! 0 does not hang: on that signal it prints the batches each worker rank
//! held (`rank 2: tasks 40..48 of call 3;`) and ends. Use a [`Memory`](https://docs.rs/joblib-memory) cache
//! on a shared file system so that a job started again does not redo what
//! was done.
//!
//! # Without a launcher
//!
//! Run without `mpirun` or `srun` (no launcher variable such as
//! `OMPI_COMM_WORLD_SIZE` or `PMIX_RANK` is set), [`init`] does not start
//! MPI and the program is a job of one rank: `backend("mpi")` runs the
//! tasks in this process, one batch at a time, so the same program can be
//! tried on a laptop. The same happens with `mpirun -n 1`, and for a
//! `Parallel` call made inside a task on a worker rank.

mod dispatch;
mod last_words;
mod launch;
mod wire;
mod worker;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once, PoisonError, RwLock};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;
use joblib_parallel::{BackendKind, Batch, BoxError, ParallelBackend};
use mpi::environment::{Threading, Universe};
use mpi::topology::Communicator;

use dispatch::Command;

/// What could not be set up by [`init`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// MPI was initialized before, by an earlier [`init`] or by other code.
    #[error(
        "MPI is initialized already in this process: call joblib_mpi::init() once, first \
         thing in main, and let no other code initialize MPI"
    )]
    AlreadyInitialized,
    /// The MPI library cannot be called from a thread other than the one
    /// that initialized it, which joblib-mpi needs.
    #[error(
        "the MPI library granted thread support {granted}, and joblib-mpi needs at least \
         MPI_THREAD_SERIALIZED (one thread at a time): use an MPI built with thread support \
         (Open MPI is by default)"
    )]
    ThreadSupport {
        /// The level the library granted.
        granted: String,
    },
    /// The thread that makes rank 0's MPI calls could not be started.
    #[error("cannot start rank 0's MPI thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// The MPI job, on rank 0: returned by [`init`], to be kept until the end
/// of `main`. Dropping it waits for the batches still on worker ranks,
/// tells the workers to stop and finalizes MPI; after that,
/// `backend("mpi")` fails.
#[must_use = "dropping the value returned by joblib_mpi::init() ends the MPI job"]
pub struct Mpi {
    /// `None` without a launcher.
    universe: Option<Universe>,
    world_size: usize,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpi")
            .field("launched", &self.universe.is_some())
            .field("world_size", &self.world_size)
            .finish()
    }
}

impl Mpi {
    /// The number of ranks of the job, rank 0 included (1 without a
    /// launcher).
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// The number of worker ranks that run tasks (`world_size() - 1`; 0
    /// when this process is the only rank and runs tasks itself).
    pub fn workers(&self) -> usize {
        self.world_size.saturating_sub(1)
    }

    /// Whether MPI was started (the program was launched by `mpirun`,
    /// `srun` or another MPI launcher).
    pub fn is_launched(&self) -> bool {
        self.universe.is_some()
    }
}

impl Drop for Mpi {
    fn drop(&mut self) {
        if self.universe.is_some() {
            ENDED.store(true, Ordering::Relaxed);
        }
        // Later calls fail; the MPI thread answers what is in flight and
        // stops the workers.
        if let Some(sender) = SENDER
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = sender.send(Command::Stop);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // `universe` is dropped next, on this thread, which initialized
        // MPI: MPI_Finalize.
    }
}

/// Rank 0's channel to its MPI thread, while the job runs.
static SENDER: RwLock<Option<Sender<Command>>> = RwLock::new(None);
/// Worker ranks rank 0 sends batches to.
static WORKERS: AtomicUsize = AtomicUsize::new(0);
/// Set when rank 0's job has ended (its [`Mpi`] was dropped).
static ENDED: AtomicBool = AtomicBool::new(false);
/// This process's rank (0 on rank 0 and without a launcher).
static RANK: AtomicUsize = AtomicUsize::new(0);

/// Starts MPI if this process was launched by an MPI launcher. On ranks
/// other than 0, serves tasks until rank 0 ends the job, then finalizes MPI
/// and exits the process with status 0: it never returns there. On rank 0
/// (and in a program run without a launcher) it returns the [`Mpi`] job,
/// to keep until the end of `main`. Registers the name `"mpi"` too.
///
/// Call it first thing in `main`, before any thread is started: worker
/// ranks must not run the rest of `main`.
///
/// # Errors
///
/// MPI was initialized already, the MPI library lacks thread support, or
/// rank 0's MPI thread could not start. On a worker rank such an error is
/// printed and the process exits with status 1 (the launcher then ends
/// the job).
pub fn init() -> Result<Mpi, Error> {
    register();
    if launch::launcher_var().is_none() {
        return Ok(Mpi {
            universe: None,
            world_size: 1,
            thread: None,
        });
    }
    let (universe, granted) =
        mpi::initialize_with_threading(Threading::Serialized).ok_or(Error::AlreadyInitialized)?;
    let world = universe.world();
    let rank = world.rank();
    let world_size = usize::try_from(world.size()).unwrap_or(1).max(1);
    if !matches!(granted, Threading::Serialized | Threading::Multiple) {
        let e = Error::ThreadSupport {
            granted: format!("{granted:?}"),
        };
        if rank > 0 {
            eprintln!("joblib-mpi: rank {rank}: {e}");
            drop(universe);
            std::process::exit(1);
        }
        return Err(e);
    }
    if rank > 0 {
        RANK.store(usize::try_from(rank).unwrap_or(0), Ordering::Relaxed);
        worker::serve(&world);
        drop(universe);
        std::process::exit(0);
    }
    let mut thread = None;
    if world_size > 1 {
        let (tx, rx) = crossbeam_channel::unbounded();
        let release = tx.clone();
        let workers = world_size - 1;
        last_words::install(workers);
        thread = Some(
            std::thread::Builder::new()
                .name("joblib-mpi".into())
                .spawn(move || dispatch::run(rx, release, workers))
                .map_err(Error::Thread)?,
        );
        WORKERS.store(workers, Ordering::Relaxed);
        *SENDER.write().unwrap_or_else(PoisonError::into_inner) = Some(tx);
    }
    Ok(Mpi {
        universe: Some(universe),
        world_size,
        thread,
    })
}

/// This process's rank in the MPI job: 0 on rank 0 (and without a
/// launcher), the worker's rank inside a task running on a worker rank.
pub fn rank() -> usize {
    RANK.load(Ordering::Relaxed)
}

/// How many times rank 0 has sent a [`Shared`](joblib_parallel::Shared)
/// value's bytes to a worker rank: at most once per value and rank, however
/// many tasks and calls use it.
pub fn shared_values_sent() -> u64 {
    dispatch::SHARED_SENT.load(Ordering::Relaxed)
}

/// Registers this backend under the name `"mpi"` in joblib-parallel's
/// registry (once; later calls do nothing). Done by [`init`] and by
/// [`MpiBackend::new`].
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Only an empty or built-in name is refused; "mpi" is neither.
        let _ = joblib_parallel::register_backend("mpi", || {
            Ok(Arc::new(MpiBackend::new()) as Arc<dyn ParallelBackend>)
        });
    });
}

/// Runs batches on the worker ranks of the MPI job; see the
/// [crate documentation](self). Chosen by `.backend("mpi")` after
/// [`init`], or by value.
///
/// Tasks must be made by [`delayed_remote`](fn@joblib_parallel::delayed_remote)
/// or [`try_delayed_remote`](fn@joblib_parallel::try_delayed_remote); a call
/// whose tasks were made by [`delayed`](fn@joblib_parallel::delayed) fails
/// with an error saying so (except in a job of one rank, which runs every
/// task in this process).
#[derive(Debug, Clone, Default)]
pub struct MpiBackend {
    _private: (),
}

impl MpiBackend {
    /// The backend (registering the name `"mpi"` too).
    pub fn new() -> MpiBackend {
        register();
        MpiBackend { _private: () }
    }

    /// The channel to rank 0's MPI thread, if this process sends batches
    /// to worker ranks.
    fn sender() -> Option<Sender<Command>> {
        if RANK.load(Ordering::Relaxed) != 0 {
            return None;
        }
        SENDER
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ParallelBackend for MpiBackend {
    fn name(&self) -> &str {
        "mpi"
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Processes
    }

    fn supports_shared_memory(&self) -> bool {
        false
    }

    fn effective_n_jobs(&self, n_jobs: usize) -> usize {
        if MpiBackend::sender().is_none() {
            return 1;
        }
        let workers = WORKERS.load(Ordering::Relaxed).max(1);
        if n_jobs >= joblib_parallel::cpu_count() {
            workers
        } else {
            n_jobs.min(workers)
        }
    }

    fn submit(&self, batch: Batch) -> Result<(), BoxError> {
        let Some(sender) = MpiBackend::sender() else {
            if ENDED.load(Ordering::Relaxed) {
                batch.fail(
                    "mpi",
                    "the MPI job has ended (the value returned by joblib_mpi::init() was dropped)",
                );
            } else {
                // A job of one rank: the tasks run here, one batch at a
                // time per call (`effective_n_jobs` is 1).
                std::thread::spawn(move || batch.run());
            }
            return Ok(());
        };
        let n_jobs = batch.n_jobs();
        match batch.into_remote("mpi") {
            Ok(batch) => {
                if let Err(e) = sender.send(Command::Submit { batch, n_jobs })
                    && let Command::Submit { batch, .. } = e.into_inner()
                {
                    batch.fail("the MPI job has ended");
                }
            }
            Err(not_remote) => not_remote.fail("mpi"),
        }
        Ok(())
    }

    fn target_batch_duration(&self) -> std::time::Duration {
        // A round trip to a rank costs tens of microseconds: short batches
        // balance the ranks better.
        std::time::Duration::from_millis(50)
    }
}
