//! Transparent disk caching of function results: the `Memory` of
//! joblib for Rust (the crate `joblib`).
//!
//! Call a function through a [`Memory`] and an equal call later, in this
//! run or the next, is answered from disk instead of being computed again.
//! Arguments are hashed with `joblib-hash` (any `serde` value, large arrays
//! at memory speed), results are stored with `joblib-persist` (arrays can
//! come back memory-mapped).
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use joblib_memory::Memory;
//!
//! let dir = tempfile::tempdir()?;
//! let memory = Memory::new(dir.path());
//! let calls = AtomicUsize::new(0);
//! let slow_square = memory
//!     .cache("doc::slow_square", |x: f64| {
//!         calls.fetch_add(1, Ordering::SeqCst);
//!         x * x
//!     })
//!     .version("1");
//! assert_eq!(slow_square.call(3.0), 9.0); // computed and stored
//! assert_eq!(slow_square.call(3.0), 9.0); // loaded from disk
//! assert_eq!(calls.load(Ordering::SeqCst), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A `fn` is cached with the [`cache`](macro@cache) attribute; callers do
//! not change:
//!
//! ```
//! use std::sync::LazyLock;
//! use joblib_memory::{Memory, cache};
//!
//! static MEMORY: LazyLock<Memory> =
//!     LazyLock::new(|| Memory::new(std::env::temp_dir().join("joblib-doc-macro")));
//!
//! #[cache(MEMORY)]
//! fn smooth(signal: &[f64], width: usize) -> Vec<f64> {
//!     signal.windows(width).map(|w| w.iter().sum::<f64>() / width as f64).collect()
//! }
//!
//! // `ignore` leaves an argument out of the key; `depends_on` invalidates
//! // this function's results when `smooth` changes.
//! #[cache(MEMORY, ignore(verbose), depends_on(smooth))]
//! fn peak(signal: &[f64], verbose: bool) -> f64 {
//!     let s = smooth(signal, 3);
//!     if verbose {
//!         println!("{} points", s.len());
//!     }
//!     s.into_iter().fold(f64::MIN, f64::max)
//! }
//!
//! let x = [1.0, 5.0, 2.0, 8.0, 3.0];
//! assert_eq!(peak(&x, false), 5.0);
//! assert_eq!(peak(&x, true), 5.0); // from the cache
//! ```
//!
//! # Cache identity and invalidation
//!
//! A cached function is identified by its name and a fingerprint: the
//! [`version`](MemorizedFunc::version) of a closure, or for a `fn` carrying
//! [`#[cache(MEMORY)]`](macro@cache) a hash of its own tokens taken at
//! compile time, so editing its body invalidates its results. When a
//! function's fingerprint differs from the one recorded in the cache, its
//! old entries are cleared with a warning. `depends_on(helper)` folds a
//! helper's fingerprint in, so editing the helper invalidates its callers.
//!
//! # Robustness
//!
//! A call never fails because of the cache: an argument that cannot be
//! hashed, a corrupt or truncated result, a read-only or full disk all
//! lead to computing the value and a warning. Warnings go to the `tracing`
//! subscriber when one is installed, otherwise to stderr once per cause and
//! function; [`MemoryBuilder::warnings`] chooses. As in Python joblib,
//! [`verbose`](MemoryBuilder::verbose) is 1 by default: each computation is
//! announced on stderr. Entries are written
//! to a temporary directory and renamed into place, and removed by renaming
//! them away first, so threads and processes can share one cache and never
//! see half an entry. Within a process, concurrent calls with equal
//! arguments wait for a single computation.
//!
//! # Size limits
//!
//! [`Memory::reduce_size`] evicts least recently used entries down to a
//! byte, item and age limit; with [`MemoryBuilder::bytes_limit`] and
//! friends it runs by itself every few writes. A cache hit records its time
//! as the modification time of the entry's result file (set on the file
//! the hit already opened; at most once a second per entry and process),
//! so this works on `noatime` mounts and across processes, and no file is
//! created to record it.
//!
//! # The run log
//!
//! Every call of a cached function appends one record to `runs.jsonl` in
//! the cache directory: time, function, fingerprint, argument digest and
//! summary, outcome ([`RunOutcome`]: hit, computed, recomputed or not
//! stored, with a [`RunReason`]), load or compute time, result size, pid
//! and host. Records are appended with one `write` each, so threads and
//! processes never tear one another's; the file is rotated at
//! [`MemoryBuilder::run_log_limit`] and can be turned off with
//! [`MemoryBuilder::run_log`].
//!
//! Tools read a cache through public items only:
//!
//! - [`RunLog::open`]`(dir)` then [`records`](RunLog::records) (oldest
//!   first), [`query`](RunLog::query)`(function, since)` for
//!   `cache log --function F --since T`, and [`follow`](RunLog::follow),
//!   whose [`poll`](RunLogFollower::poll) returns what was appended since
//!   (for `--follow`, across rotations);
//! - [`RunLog::totals`]: per function, hits, computes, compute time, time
//!   saved (the compute time of each entry served from the cache) and
//!   last call, for `cache ls` and a report;
//! - [`RunLog::entry_totals`]: per entry, times served and computed and
//!   last use, for `cache show`;
//! - [`FsStore::existing`]`(dir)`'s [`StoreBackend::entries`] (function,
//!   digest, size, last access of every entry) and
//!   [`StoreBackend::metadata`] (argument summary, computed at, compute
//!   time), for entries and bytes per function;
//! - [`Memory::runs`] for a memory at hand.
//!
//! ```
//! use joblib_memory::{FsStore, Memory, RunLog, StoreBackend};
//!
//! let dir = tempfile::tempdir()?;
//! let memory = Memory::builder(dir.path()).verbose(0).build()?;
//! let double = memory.cache("doc::double", |x: u32| x * 2);
//! for x in [1, 2, 1, 1] {
//!     double.call(x);
//! }
//! // `joblib cache ls`: entries and bytes from the store, calls from the log.
//! let store = FsStore::existing(dir.path());
//! let entries = store.entries()?;
//! let log = RunLog::open(dir.path());
//! let totals = log.totals(&log.records()?);
//! assert_eq!(entries.len(), 2);
//! assert_eq!((totals[0].function.as_str(), totals[0].hits, totals[0].computes), ("doc::double", 2, 2));
//! // `joblib cache show`: each entry's metadata and how often it was served.
//! let served = RunLog::entry_totals(&log.records()?);
//! for e in &entries {
//!     let meta = store.metadata(&e.function, &e.digest)?.expect("entry");
//!     let used = &served[&(e.function.clone(), e.digest.to_hex())];
//!     assert!(meta.args == "1" || meta.args == "2");
//!     assert_eq!(used.served, if meta.args == "1" { 2 } else { 0 });
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The directory layout and the run log's format are described in
//! `docs/cache-layout.md`.

// The `#[cache]` expansion names this crate `::joblib_memory`, also from
// inside it.
extern crate self as joblib_memory;

mod cache_dir;
mod encode;
mod error;
mod fs_store;
mod func;
mod inflight;
mod memory;
mod metadata;
mod recent;
mod result;
mod runlog;
mod store;
mod summary;
mod verbose;
mod warn;

pub use cache_dir::{CacheDir, FunctionSummary, StoredEntry};
pub use error::Error;
pub use fs_store::FsStore;
pub use func::MemorizedFunc;
pub use joblib_macros::cache;
pub use joblib_persist::{Compression, MmapMode};
pub use memory::{Memory, MemoryBuilder, Reduced};
pub use metadata::Metadata;
pub use result::MemorizedResult;
pub use runlog::{
    EntryTotals, FunctionTotals, RunLog, RunLogFollower, RunOutcome, RunReason, RunRecord,
};
pub use store::{EntryInfo, OutputSink, PutOutcome, StoreBackend, StoredOutput, WriteOutput};
pub use warn::Warnings;

/// What the `#[cache]` expansion uses; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::func::{CachedFn, Lookup, Pending, fold_fingerprint};
}
