//! Easy parallel loops: Python joblib's `Parallel` and `delayed`, for Rust.
//!
//! `Parallel::new().n_jobs(2).run(tasks)` runs an iterator of tasks, each a
//! function and its arguments made by [`delayed`](fn@delayed) (or [`delayed!`] for a
//! function of several arguments: `delayed!(f, a, b)`), on a pool of workers and
//! returns the results in input order. [`iter`](Parallel::iter) yields them
//! lazily, reading the input only a little ahead, and
//! [`iter_unordered`](Parallel::iter_unordered) yields them as they finish.
//!
//! ```
//! use joblib_parallel::{Parallel, delayed};
//!
//! fn slow_square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! let squares = Parallel::new()
//!     .n_jobs(2)
//!     .run((0..100).map(|x| delayed(slow_square, x)))?;
//! assert_eq!(squares[..4], [0, 1, 4, 9]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What it does for you
//!
//! - **Order**: results come back in input order (or in completion order
//!   with `iter_unordered`), each exactly once.
//! - **Batching**: tiny tasks are grouped in batches whose size adapts to
//!   the measured task duration ([`BatchSize::Auto`]), so a million trivial
//!   tasks are not dispatched one by one (see `benches/benches/parallel.rs`
//!   for the comparison with `rayon`).
//! - **Errors**: the first task error ([`try_delayed`](fn@try_delayed)) or panic stops the
//!   call; tasks not yet started never start; the [`Error`] names the task
//!   and carries its error or panic message. The pool stays usable.
//! - **Timeouts**, **verbose** progress lines as joblib prints them, an
//!   optional progress bar, and `tracing` events per batch.
//! - **Nesting**: a `Parallel` inside a task does not oversubscribe the
//!   machine: one level down it gets threads limited to its share of the
//!   CPUs, deeper levels run sequentially, unless configured otherwise.
//! - **Backends**: `"threads"` (the default; persistent workers),
//!   `"sequential"`, or your own [`ParallelBackend`], by value or registered
//!   by name with [`register_backend`]; the crate `joblib-process` registers
//!   `"processes"` (and `"loky"`), a reusable pool of worker processes.
//!   [`parallel_config`] sets defaults for a scope.
//! - **Remote tasks** (feature `remote`): tasks made by `delayed_remote`
//!   can run in any process of the same program. A backend turns a
//!   [`Batch`] into request bytes with `Batch::into_remote`, carries them
//!   anywhere, runs them with `serve_request` and completes the batch from
//!   the reply bytes: see the `remote` module.
//!
//! # Features
//!
//! - `tracing` (default): `tracing` events for each call and batch, on
//!   target `joblib_parallel`.
//! - `indicatif`: `Parallel::progress_bar`, a progress bar of completed
//!   tasks.
//! - `remote`: `delayed_remote`, `Shared`
//!   and the request/reply API of the `remote` module, for backends that
//!   run tasks in other processes; pulls in `serde` and `joblib-persist`
//!   (without its default features).

mod backend;
mod batching;
mod config;
mod cpu;
mod dispatch;
mod error;
mod iter;
mod nesting;
mod parallel;
mod progress;
#[cfg(feature = "remote")]
pub mod remote;
mod task;

pub use backend::{
    BackendKind, BackendSpec, Batch, CallInfo, ParallelBackend, SequentialBackend, ThreadBackend,
    register_backend,
};
pub use config::{
    BatchSize, ConfigGuard, ParallelConfig, PreDispatch, Prefer, Require, parallel_config,
};
pub use cpu::{MAX_CPU_COUNT_ENV, cpu_count, cpu_count_physical, effective_n_jobs};
pub use error::{BoxError, Error};
pub use iter::{Iter, IterUnordered};
pub use nesting::nesting_level;
pub use parallel::Parallel;
#[doc(hidden)]
pub use task::__private;
pub use task::{Delayed, IntoTask, Task, TryDelayed, delayed, try_delayed};

#[cfg(feature = "remote")]
pub use remote::{
    DelayedRemote, NotRemote, RemoteBatch, Shared, TryDelayedRemote, delayed_remote, serve_request,
    serve_request_with, try_delayed_remote,
};
