//! joblib for Rust: transparent disk caching, easy parallel loops, fast
//! persistence and deterministic hashing for numerical pipelines.
//!
//! This facade re-exports the layers, each of which is also usable alone:
//!
//! - [`hash`](mod@hash) (the crate `joblib-hash`):
//!   deterministic digests of any `serde` value, fast on large arrays.
//! - [`memory`] (the crate `joblib-memory`):
//!   `Memory` and `#[joblib::cache]`, transparent disk caching of function
//!   results that notices when a function's code changed.
//! - [`parallel`] (the crate `joblib-parallel`, and `joblib-process`):
//!   `Parallel` and `delayed`, ordered parallel loops over pluggable
//!   backends (sequential, threads, a reusable pool of worker processes, or
//!   your own `ParallelBackend`).
//! - [`persist`] (the crate `joblib-persist`):
//!   `dump` and `load` of any `serde` value holding large arrays, compressed
//!   on all cores or memory-mapped without a copy, in a checksummed format
//!   that cannot execute code.
//!
//! Each layer's documentation is part of this crate's, under these
//! modules, so `cargo doc --no-deps -p joblib` documents everything public.
//!
//! # Hashing
//!
//! ```
//! use joblib::prelude::*;
//!
//! let data = ndarray::Array2::<f64>::eye(3);
//! let digest = hash(&data)?;
//! assert_eq!(digest, hash(&data.t().to_owned())?); // equal arrays, equal digests
//! println!("{digest}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Caching
//!
//! ```
//! use std::sync::LazyLock;
//! use joblib::prelude::*;
//!
//! static CACHE_DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().unwrap());
//! static MEMORY: LazyLock<Memory> = LazyLock::new(|| Memory::new(CACHE_DIR.path()));
//!
//! /// Editing this body invalidates its cached results.
//! #[cache(MEMORY)]
//! fn slow_square(x: u64) -> u64 {
//!     std::thread::sleep(std::time::Duration::from_millis(50));
//!     x * x
//! }
//!
//! assert_eq!(slow_square(12), 144); // computed and stored
//! assert_eq!(slow_square(12), 144); // loaded from the cache
//!
//! // Closures and functions without the macro: name them, version them.
//! let add = MEMORY.cache("add", |(a, b): (i32, i32)| a + b).version("1");
//! assert_eq!(add.call((2, 3)), 5);
//! ```
//!
//! # Persistence
//!
//! ```
//! use joblib::persist::{Compression, DumpOptions, MmapArray, MmapMode};
//! use joblib::prelude::*;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Model { name: String, weights: ndarray::Array2<f64> }
//!
//! #[derive(serde::Deserialize)]
//! struct MappedModel { name: String, weights: MmapArray<f64, ndarray::Ix2> }
//!
//! let dir = tempfile::tempdir()?;
//! let model = Model { name: "ridge".into(), weights: ndarray::Array2::eye(100) };
//! dump(&model, dir.path().join("model.jbl"))?;
//! let back: Model = load(dir.path().join("model.jbl"))?;
//! assert_eq!(back.weights, model.weights);
//!
//! // The arrays of an uncompressed file can be used in place, without a copy.
//! let mapped: MappedModel = load_mmap(dir.path().join("model.jbl"), MmapMode::ReadOnly)?;
//! assert_eq!(mapped.weights.view(), model.weights.view());
//!
//! // Compressed on all cores; the method is detected on load.
//! DumpOptions::new().compress(Compression::Zstd).dump(&model, dir.path().join("model.zst.jbl"))?;
//! let back: Model = load(dir.path().join("model.zst.jbl"))?;
//! assert_eq!(back.name, "ridge");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Parallel loops
//!
//! joblib's `Parallel(n_jobs=2)(delayed(f)(x) for x in xs)`, in order:
//!
//! ```
//! use joblib::prelude::*;
//!
//! let squares = Parallel::new()
//!     .n_jobs(2)
//!     .run((0..10u64).map(|x| delayed(|x: u64| x * x, x)))?;
//! assert_eq!(squares[3], 9);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Worker processes
//!
//! joblib's default backend, loky, runs tasks in other processes. Here the
//! `"processes"` backend does, for tasks made by [`delayed_remote`][delayed_remote_fn]: a
//! function that captures nothing (a function pointer: a capturing closure is a
//! type error at `cargo check`) and serializable
//! arguments. Workers are this program started again; a constructor makes
//! them workers before `main`, and [`init`][init_fn] at the top of `main` is the
//! safety net. Large values go to workers once, through memory-mapped
//! files, with [`Shared`][shared_type]. (Feature `processes`, on by default, Unix.)
//!
//! ```no_run
//! use joblib::prelude::*;
//!
//! fn simulate(seed: u64) -> f64 {
//!     (seed as f64).sqrt()
//! }
//!
//! fn main() -> joblib::Result<()> {
//!     joblib::init();
//!     let results = Parallel::new()
//!         .backend("processes")
//!         .n_jobs(2)
//!         .run((0..8).map(|seed| delayed_remote(simulate, seed)))?;
//!     assert_eq!(results[4], 2.0);
//!     Ok(())
//! }
//! ```
//!
//! See `examples/processes.rs` and the [`parallel::process`][process_mod]
//! module (the crate `joblib-process`).
//!
//! # Writing a backend
//!
//! Everything a backend author needs is under [`parallel`]:
//!
//! - [`ParallelBackend`](parallel::ParallelBackend), the trait to
//!   implement, and [`Batch`](parallel::Batch), what it runs
//!   ([`Batch::run`](parallel::Batch::run) on any thread of this process);
//!   register it by name with
//!   [`register_backend`](parallel::register_backend), or pass it by value
//!   to [`Parallel::backend`]. `examples/custom_backend.rs` is one.
//! - To run tasks elsewhere (another process, another machine, MPI): the
//!   remote-task API of [`parallel::remote`][remote_mod] (feature
//!   `processes`): a batch of [`delayed_remote`][delayed_remote_fn] tasks
//!   becomes a [`RemoteBatch`][remote_batch] with
//!   [`Batch::into_remote`][into_remote], whose request bytes any transport
//!   can carry to a process of the same program, which answers them with
//!   [`serve_request`][serve_request_fn]; values sent once for many tasks
//!   are [`Shared`][shared_type]. `examples/pipe_backend.rs` is one, over
//!   a child's stdin and stdout.
//! - The process backend itself, [`ProcessBackend`][process_backend], is
//!   built on that API alone.
//!
//! <!-- Link targets below depend on the features. -->

#![cfg_attr(
    all(feature = "processes", unix),
    doc = "[delayed_remote_fn]: fn@delayed_remote
[init_fn]: fn@init
[shared_type]: Shared
[process_mod]: parallel::process
[process_backend]: parallel::ProcessBackend"
)]
#![cfg_attr(
    feature = "processes",
    doc = "[remote_mod]: parallel::remote
[remote_batch]: parallel::RemoteBatch
[into_remote]: parallel::Batch::into_remote
[serve_request_fn]: fn@parallel::serve_request"
)]
#![cfg_attr(
    not(all(feature = "processes", unix)),
    doc = "[delayed_remote_fn]: #worker-processes
[init_fn]: #worker-processes
[shared_type]: #worker-processes
[process_mod]: #worker-processes
[process_backend]: #worker-processes"
)]
#![cfg_attr(
    not(feature = "processes"),
    doc = "[remote_mod]: #writing-a-backend
[remote_batch]: #writing-a-backend
[into_remote]: #writing-a-backend
[serve_request_fn]: #writing-a-backend"
)]

mod error;

pub use error::{Error, Result};
#[doc(inline)]
pub use joblib_hash as hash;
#[doc(inline)]
pub use joblib_memory as memory;
/// Parallel loops: everything of the crate `joblib-parallel`, and with the
/// `processes` feature the worker-process backend of `joblib-process`.
pub mod parallel {
    #[cfg(feature = "processes")]
    pub use crate::delayed_remote;
    pub use joblib_parallel::*;
    #[cfg(all(feature = "processes", unix))]
    #[doc(inline)]
    pub use joblib_process as process;
    #[cfg(all(feature = "processes", unix))]
    pub use joblib_process::{ProcessBackend, init};
}
/// The `"mpi"` backend (the crate `joblib-mpi`, feature `mpi`): tasks on
/// the ranks of an Open MPI job launched by `mpirun` or Slurm. Call
/// [`joblib::mpi::init()`](joblib_mpi::init) first thing in `main` and keep
/// its value until `main` ends; see `examples/mpi.rs` and `docs/cluster.md`.
#[cfg(feature = "mpi")]
#[doc(inline)]
pub use joblib_mpi as mpi;
#[doc(inline)]
pub use joblib_persist as persist;
/// The `ndarray` crate (0.17, with `serde`) that joblib's array support is built for.
pub use joblib_persist::ndarray;

/// The digest of a value; see [`joblib_hash::hash`].
pub use joblib_hash::hash;
/// Caches a function's results in a [`Memory`]; see [`joblib_memory::cache`].
pub use joblib_memory::cache;
pub use joblib_memory::{MemorizedFunc, Memory};
#[cfg(feature = "processes")]
pub use joblib_parallel::Shared;
#[cfg(all(feature = "processes", not(unix)))]
pub use joblib_parallel::delayed_remote;
pub use joblib_parallel::{Parallel, ParallelBackend, delayed, parallel_config};
#[cfg(all(feature = "processes", unix))]
pub use joblib_process::init;
#[cfg(all(feature = "processes", unix))]
pub use remote_tasks::delayed_remote;

/// `delayed_remote!(f, a, b, c)`: a task calling `f(a, b, c)` that may run
/// in a worker process; [`joblib_parallel::delayed_remote!`], through
/// [`delayed_remote`](fn@delayed_remote) so that the `"processes"` backend is linked in and
/// registered. `delayed_remote!(f, x)` is `delayed_remote(f, x)`;
/// `delayed_remote!(f)` calls `f()`.
///
/// ```
/// use joblib::prelude::*;
///
/// fn scaled(x: u64, factor: u64, offset: u64) -> u64 {
///     x * factor + offset
/// }
///
/// // Threads here; `.backend("processes")` sends the tasks to workers.
/// let out = Parallel::new().run((0..3).map(|x| delayed_remote!(scaled, x, 10, 1)))?;
/// assert_eq!(out, [1, 11, 21]);
/// // For closures and functions of threads, `delayed!`.
/// let out = Parallel::new().run((0..3).map(|x| delayed!(|a: u64, b: u64| a + b, x, 1)))?;
/// assert_eq!(out, [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg(all(feature = "processes", unix))]
#[macro_export]
macro_rules! delayed_remote {
    ($f:expr $(,)?) => {
        $crate::delayed_remote(|()| ($f)(), ())
    };
    ($f:expr, $x:expr $(,)?) => {
        $crate::delayed_remote($f, $x)
    };
    ($f:expr, $($x:expr),+ $(,)?) => {
        $crate::delayed_remote(
            |__joblib_args| $crate::parallel::__private::CallWith::call_with($f, __joblib_args),
            ($($x,)+),
        )
    };
}

#[cfg(all(feature = "processes", unix))]
mod remote_tasks {
    use joblib_parallel::DelayedRemote;
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    /// [`joblib_parallel::delayed_remote`](fn@joblib_parallel::delayed_remote): wraps a call `f(args)` so that it
    /// can run in a worker process. Using it also links joblib-process into
    /// the program, whose constructor registers the `"processes"` backend and
    /// turns worker processes into workers before `main`.
    ///
    /// `f` is a function pointer: a `fn` item, or a closure that captures
    /// nothing; a capturing closure is a type error (pass what it captures
    /// as an argument).
    ///
    /// ```compile_fail,E0308
    /// let offset = 10;
    /// let task = joblib::delayed_remote(move |x: i32| x + offset, 1);
    /// ```
    #[inline]
    pub fn delayed_remote<A, R>(f: fn(A) -> R, args: A) -> DelayedRemote<fn(A) -> R, A>
    where
        A: Serialize + DeserializeOwned + Send + 'static,
        R: Serialize + DeserializeOwned + Send + 'static,
    {
        joblib_process::register();
        joblib_parallel::delayed_remote(f, args)
    }
}
pub use joblib_persist::{dump, load, load_mmap};

/// The items most programs need: `use joblib::prelude::*;`.
pub mod prelude {
    /// The function [`delayed_remote`](fn@crate::delayed_remote) and the macro
    /// [`delayed_remote!`](crate::delayed_remote!) (several arguments).
    #[cfg(feature = "processes")]
    pub use crate::delayed_remote;
    pub use joblib_hash::{Digest, Hasher, hash};
    pub use joblib_memory::{Memory, cache};
    #[cfg(feature = "processes")]
    pub use joblib_parallel::Shared;
    /// The function [`delayed`](fn@joblib_parallel::delayed) and the macro
    /// [`delayed!`](joblib_parallel::delayed!) (several arguments).
    pub use joblib_parallel::delayed;
    pub use joblib_parallel::{Parallel, ParallelBackend, parallel_config};
    pub use joblib_persist::{dump, load, load_mmap};
}
