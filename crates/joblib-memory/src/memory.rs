//! [`Memory`] and its builder.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use joblib_persist::{Compression, DumpOptions, MmapMode};

use crate::error::Error;
use crate::fs_store::FsStore;
use crate::func::MemorizedFunc;
use crate::inflight::InFlight;
use crate::metadata::Metadata;
use crate::recent::Recent;
use crate::runlog::{self, RunLog, RunLogWriter, RunRecord};
use crate::store::StoreBackend;
use crate::warn::{Cause, Warner, Warnings};

/// A cache of function results, usually a directory.
///
/// Cheap to clone (the clones share everything) and `Send + Sync`, so it
/// can live in a `static`:
///
/// ```
/// use std::sync::LazyLock;
/// use joblib_memory::Memory;
///
/// static MEMORY: LazyLock<Memory> =
///     LazyLock::new(|| Memory::new(std::env::temp_dir().join("joblib-doc-static")));
/// let square = MEMORY.cache("doc::square", |x: u64| x * x);
/// assert_eq!(square.call(12), 144);
/// ```
#[derive(Clone)]
pub struct Memory {
    pub(crate) inner: Arc<Inner>,
}

/// Size limits enforced by [`Memory::reduce_size`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Limits {
    bytes: Option<u64>,
    items: Option<usize>,
    age: Option<Duration>,
}

impl Limits {
    fn any(&self) -> bool {
        self.bytes.is_some() || self.items.is_some() || self.age.is_some()
    }
}

/// A validation callback over an entry's metadata.
pub(crate) type Validator = Arc<dyn Fn(&Metadata) -> bool + Send + Sync>;

pub(crate) struct Inner {
    pub(crate) backend: Option<Arc<dyn StoreBackend>>,
    pub(crate) dump: DumpOptions,
    pub(crate) mmap_mode: Option<MmapMode>,
    pub(crate) verbose: u32,
    pub(crate) warner: Arc<Warner>,
    /// The run log, when the memory has a directory and keeps one.
    pub(crate) run_log: Option<RunLogWriter>,
    pub(crate) expires_after: Option<Duration>,
    pub(crate) validate: Option<Validator>,
    limits: Limits,
    auto_reduce: bool,
    reduce_every: u64,
    writes_since_reduce: AtomicU64,
    bytes_since_reduce: AtomicU64,
    reduced_once: AtomicBool,
    pub(crate) inflight: InFlight,
    /// When this process last recorded an access to each entry.
    touched: Mutex<HashMap<joblib_hash::Digest, Instant>>,
    /// The bytes of small results this process read (see `recent.rs`).
    pub(crate) recent: Recent,
    /// Functions whose recorded fingerprint this process has checked.
    checked: Mutex<HashMap<String, String>>,
    /// Functions whose results this process cleared because their code
    /// changed (their misses are recorded as recomputations).
    pub(crate) code_changed: Mutex<std::collections::HashSet<String>>,
}

impl fmt::Debug for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memory")
            .field("backend", &self.inner.backend)
            .field("mmap_mode", &self.inner.mmap_mode)
            .field("verbose", &self.inner.verbose)
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

/// What [`Memory::reduce_size`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reduced {
    /// Entries removed.
    pub removed: usize,
    /// Bytes of results freed.
    pub freed_bytes: u64,
    /// Entries kept.
    pub kept: usize,
}

/// Configures a [`Memory`]; made by [`Memory::builder`].
#[must_use]
pub struct MemoryBuilder {
    location: PathBuf,
    backend: Option<Arc<dyn StoreBackend>>,
    compress: Option<Compression>,
    level: Option<i32>,
    mmap_mode: Option<MmapMode>,
    verbose: u32,
    warnings: Warnings,
    run_log: bool,
    run_log_limit: u64,
    expires_after: Option<Duration>,
    validate: Option<Validator>,
    limits: Limits,
    auto_reduce: bool,
    reduce_every: u64,
}

impl fmt::Debug for MemoryBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBuilder")
            .field("location", &self.location)
            .field("backend", &self.backend)
            .field("compress", &self.compress)
            .field("mmap_mode", &self.mmap_mode)
            .field("verbose", &self.verbose)
            .field("warnings", &self.warnings)
            .field("expires_after", &self.expires_after)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl MemoryBuilder {
    /// Compresses stored results with this method (default: none, so they
    /// can be memory-mapped).
    pub fn compress(mut self, method: Compression) -> MemoryBuilder {
        self.compress = Some(method);
        self
    }

    /// The compression level, in the method's own scale.
    pub fn compress_level(mut self, level: i32) -> MemoryBuilder {
        self.level = Some(level);
        self
    }

    /// Loads stored results memory-mapped, as joblib's `mmap_mode`: arrays
    /// held as `joblib_persist::MmapArray` are views into the file, on the
    /// first call too. [`MmapMode::ReadOnly`] or [`MmapMode::CopyOnWrite`]:
    /// [`build`](Self::build) refuses [`MmapMode::ReadWrite`], which would
    /// let two hits write through views of one stored result (aliasing
    /// mutable data, and a damaged entry). A stored result must not be
    /// changed by other programs while it is mapped.
    pub fn mmap_mode(mut self, mode: MmapMode) -> MemoryBuilder {
        self.mmap_mode = Some(mode);
        self
    }

    /// Verbosity of the human-readable output on stderr: 0 prints nothing,
    /// 1 (the default, as in Python joblib) prints each computation as
    /// joblib does (`[Memory] Calling ...`), 2 and above also each load.
    /// Warnings are not affected: see [`warnings`](Self::warnings).
    pub fn verbose(mut self, level: u32) -> MemoryBuilder {
        self.verbose = level;
        self
    }

    /// Where warnings go (default [`Warnings::Auto`]: to the `tracing`
    /// subscriber if one is installed, otherwise to stderr once per cause
    /// and function).
    pub fn warnings(mut self, to: Warnings) -> MemoryBuilder {
        self.warnings = to;
        self
    }

    /// Whether every call of a cached function appends a record to the
    /// run log, `runs.jsonl` in the cache directory (default: yes). Read
    /// it with [`Memory::runs`] or [`RunLog`].
    pub fn run_log(mut self, on: bool) -> MemoryBuilder {
        self.run_log = on;
        self
    }

    /// The size at which the run log is rotated (default 8 MiB): the full
    /// file becomes `runs.1.jsonl`, replacing the previous one, so the log
    /// never takes more than about twice this.
    pub fn run_log_limit(mut self, bytes: u64) -> MemoryBuilder {
        self.run_log_limit = bytes;
        self
    }

    /// Results older than this are recomputed, for every function of this
    /// memory (a function's own
    /// [`expires_after`](crate::MemorizedFunc::expires_after) overrides it).
    pub fn expires_after(mut self, age: Duration) -> MemoryBuilder {
        self.expires_after = Some(age);
        self
    }

    /// A result whose metadata `check` rejects is recomputed, for every
    /// function of this memory (a function's own
    /// [`validate`](crate::MemorizedFunc::validate) overrides it). The
    /// metadata is read on each hit while a check is set.
    pub fn validate(
        mut self,
        check: impl Fn(&Metadata) -> bool + Send + Sync + 'static,
    ) -> MemoryBuilder {
        self.validate = Some(Arc::new(check));
        self
    }

    /// Keeps the stored results under this many bytes, evicting the least
    /// recently used ones.
    pub fn bytes_limit(mut self, bytes: u64) -> MemoryBuilder {
        self.limits.bytes = Some(bytes);
        self
    }

    /// Keeps at most this many stored results.
    pub fn items_limit(mut self, items: usize) -> MemoryBuilder {
        self.limits.items = Some(items);
        self
    }

    /// Evicts results not used for this long.
    pub fn age_limit(mut self, age: Duration) -> MemoryBuilder {
        self.limits.age = Some(age);
        self
    }

    /// Whether the limits are enforced automatically after writes (the
    /// default: yes). When off, call [`Memory::reduce_size`] yourself.
    pub fn auto_reduce(mut self, on: bool) -> MemoryBuilder {
        self.auto_reduce = on;
        self
    }

    /// Enforce the limits after this many writes (default 32), or sooner
    /// when a tenth of `bytes_limit` was written since the last time: the
    /// scan of the store is amortized over many writes.
    pub fn reduce_every(mut self, writes: u64) -> MemoryBuilder {
        self.reduce_every = writes;
        self
    }

    /// Keeps results in this store instead of a directory at the location.
    pub fn backend(mut self, backend: Arc<dyn StoreBackend>) -> MemoryBuilder {
        self.backend = Some(backend);
        self
    }

    /// Creates the location (and a `.gitignore` in it) unless a backend was
    /// given, and checks that files can be written there.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the path when the directory cannot be created
    /// or written, [`Error::Config`] for `reduce_every(0)` or
    /// `mmap_mode(MmapMode::ReadWrite)`.
    pub fn build(self) -> Result<Memory, Error> {
        if self.reduce_every == 0 {
            return Err(Error::Config("reduce_every must be at least 1".into()));
        }
        if self.mmap_mode == Some(MmapMode::ReadWrite) {
            return Err(Error::Config(
                "mmap_mode(MmapMode::ReadWrite) is not supported: hits would share writable \
                 views of one stored result and writes would damage the entry; use \
                 MmapMode::ReadOnly, or MmapMode::CopyOnWrite for private writable views"
                    .into(),
            ));
        }
        // The store's own warnings (its `.gitignore`, a replaced entry) go
        // where the memory's do.
        let warner = Arc::new(Warner::new(self.warnings));
        let backend: Arc<dyn StoreBackend> = match self.backend {
            Some(b) => b,
            None => {
                let store = FsStore::create(&self.location, warner.clone())?;
                store.check_writable()?;
                Arc::new(store)
            }
        };
        let mut dump = DumpOptions::new();
        if let Some(c) = self.compress {
            dump = dump.compress(c);
        }
        dump = dump.level(self.level);
        let mut memory = Memory::from_parts(
            Some(backend),
            dump,
            self.mmap_mode,
            self.verbose,
            self.limits,
            self.auto_reduce,
            self.reduce_every,
        );
        if let Some(inner) = Arc::get_mut(&mut memory.inner) {
            inner.expires_after = self.expires_after;
            inner.validate = self.validate;
            inner.warner = warner;
            if self.run_log {
                inner.run_log = inner
                    .backend
                    .as_ref()
                    .and_then(|b| b.location())
                    .map(|dir| RunLogWriter::new(dir, self.run_log_limit));
            }
        }
        Ok(memory)
    }
}

impl Memory {
    /// A memory in the directory `location`, created if needed. If it
    /// cannot be created or written, the memory still works and computes
    /// every call, with a warning that reaches the user (on stderr when no
    /// `tracing` subscriber is installed); build it with
    /// [`Memory::builder`] to get the error instead.
    pub fn new(location: impl Into<PathBuf>) -> Memory {
        let location = location.into();
        match Memory::builder(&location).build() {
            Ok(m) => m,
            Err(e) => {
                let memory = Memory::disabled();
                memory.inner.warner.warn(
                    Cause::Unusable,
                    "",
                    format_args!("cannot use the cache directory: {e}; results will not be cached"),
                );
                memory
            }
        }
    }

    /// Configures a memory in the directory `location`.
    pub fn builder(location: impl Into<PathBuf>) -> MemoryBuilder {
        MemoryBuilder {
            location: location.into(),
            backend: None,
            compress: None,
            level: None,
            mmap_mode: None,
            verbose: 1,
            warnings: Warnings::Auto,
            run_log: true,
            run_log_limit: runlog::DEFAULT_LIMIT,
            expires_after: None,
            validate: None,
            limits: Limits::default(),
            auto_reduce: true,
            reduce_every: 32,
        }
    }

    /// A memory that caches nothing: every call computes (joblib's
    /// `location=None`).
    pub fn disabled() -> Memory {
        Memory::from_parts(
            None,
            DumpOptions::new(),
            None,
            0,
            Limits::default(),
            false,
            1,
        )
    }

    fn from_parts(
        backend: Option<Arc<dyn StoreBackend>>,
        dump: DumpOptions,
        mmap_mode: Option<MmapMode>,
        verbose: u32,
        limits: Limits,
        auto_reduce: bool,
        reduce_every: u64,
    ) -> Memory {
        Memory {
            inner: Arc::new(Inner {
                backend,
                dump,
                mmap_mode,
                verbose,
                warner: Arc::new(Warner::new(Warnings::Auto)),
                run_log: None,
                expires_after: None,
                validate: None,
                limits,
                auto_reduce,
                reduce_every,
                writes_since_reduce: AtomicU64::new(0),
                bytes_since_reduce: AtomicU64::new(0),
                reduced_once: AtomicBool::new(false),
                inflight: InFlight::default(),
                touched: Mutex::new(HashMap::new()),
                recent: Recent::default(),
                checked: Mutex::new(HashMap::new()),
                code_changed: Mutex::new(std::collections::HashSet::new()),
            }),
        }
    }

    /// The directory of the cache, if it has one.
    pub fn location(&self) -> Option<&Path> {
        self.inner.backend.as_ref().and_then(|b| b.location())
    }

    /// Whether this memory caches anything.
    pub fn is_enabled(&self) -> bool {
        self.inner.backend.is_some()
    }

    /// The store holding the results, `None` for a disabled memory.
    pub fn backend(&self) -> Option<&Arc<dyn StoreBackend>> {
        self.inner.backend.as_ref()
    }

    /// Wraps `f` so that its results are cached under `name` (conventionally
    /// `module::path::name`). `f` takes one argument: a tuple for several,
    /// references allowed. Set a [`version`](MemorizedFunc::version) and
    /// change it when `f`'s code changes, or use the `#[cache]` macro,
    /// which does so by itself.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let memory = joblib_memory::Memory::new(dir.path());
    /// let add = memory.cache("doc::add", |(a, b): (i64, i64)| a + b).version("1");
    /// assert_eq!(add.call((2, 3)), 5);
    /// assert!(add.check_call_in_cache(&(2i64, 3i64)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cache<F>(&self, name: impl Into<String>, f: F) -> MemorizedFunc<F> {
        MemorizedFunc::new(self.clone(), name.into(), f)
    }

    /// Every record of the run log, oldest first (empty for a memory
    /// without a directory). See [`RunLog`] for queries and totals.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the log file when it cannot be read.
    pub fn runs(&self) -> Result<Vec<RunRecord>, Error> {
        match self.location() {
            Some(dir) => RunLog::open(dir).records(),
            None => Ok(Vec::new()),
        }
    }

    /// Whether this process cleared `function`'s results because its code
    /// changed.
    pub(crate) fn function_changed(&self, function: &str) -> bool {
        lock(&self.inner.code_changed).contains(function)
    }

    /// Removes every stored result (and recorded fingerprint).
    ///
    /// # Errors
    ///
    /// What the store reports, for example [`Error::Io`] naming the path.
    pub fn clear(&self) -> Result<(), Error> {
        lock(&self.inner.checked).clear();
        self.inner.recent.clear();
        match &self.inner.backend {
            Some(b) => b.clear(),
            None => Ok(()),
        }
    }

    /// Removes least recently used results until all the given limits hold:
    /// at most `bytes_limit` bytes, `items_limit` entries, none unused for
    /// longer than `age_limit`. `None` means no limit of that kind.
    ///
    /// Sizes and access times come from the store's listing (for the
    /// filesystem store, `stat` calls), not from reading results.
    ///
    /// # Errors
    ///
    /// What the store reports when listing or deleting.
    pub fn reduce_size(
        &self,
        bytes_limit: Option<u64>,
        items_limit: Option<usize>,
        age_limit: Option<Duration>,
    ) -> Result<Reduced, Error> {
        let Some(backend) = &self.inner.backend else {
            return Ok(Reduced::default());
        };
        let _span = tracing::debug_span!("reduce_size").entered();
        // Writers are far quicker than an hour: anything older is a leftover.
        if let Err(e) = backend.remove_leftovers(Duration::from_secs(3600)) {
            self.inner.warner.warn(
                Cause::Cleanup,
                "",
                format_args!("cannot remove leftovers of interrupted writes: {e}"),
            );
        }
        let mut entries = backend.entries()?;
        // Most recent first: the kept entries are a prefix.
        entries.sort_by_key(|e| std::cmp::Reverse(e.last_access));
        let now = SystemTime::now();
        let mut kept_bytes = 0u64;
        let mut report = Reduced::default();
        for entry in entries {
            let too_old = age_limit
                .is_some_and(|age| now.duration_since(entry.last_access).is_ok_and(|d| d > age));
            let too_many = items_limit.is_some_and(|n| report.kept >= n);
            let too_big = bytes_limit.is_some_and(|b| kept_bytes.saturating_add(entry.size) > b);
            if too_old || too_many || too_big {
                if backend.remove(&entry.function, &entry.digest)? {
                    tracing::debug!(
                        function = %entry.function,
                        digest = %entry.digest,
                        size = entry.size,
                        "evicted"
                    );
                    report.removed += 1;
                    report.freed_bytes += entry.size;
                }
            } else {
                kept_bytes += entry.size;
                report.kept += 1;
            }
        }
        if report.removed > 0 {
            tracing::info!(
                removed = report.removed,
                freed_bytes = report.freed_bytes,
                kept = report.kept,
                "reduced the cache"
            );
        }
        Ok(report)
    }

    /// After a write of `size` bytes: enforces the configured limits when
    /// enough was written since the last time.
    pub(crate) fn after_write(&self, size: u64) {
        let inner = &self.inner;
        if !inner.auto_reduce || !inner.limits.any() {
            return;
        }
        let writes = inner.writes_since_reduce.fetch_add(1, Ordering::Relaxed) + 1;
        let bytes = inner.bytes_since_reduce.fetch_add(size, Ordering::Relaxed) + size;
        let byte_trigger = inner.limits.bytes.is_some_and(|b| bytes >= b / 10);
        // The first write of a process also checks, so a cache left over
        // the limit by an earlier run is brought back under it.
        let first = !inner.reduced_once.swap(true, Ordering::Relaxed);
        if !first && writes < inner.reduce_every && !byte_trigger {
            return;
        }
        inner.writes_since_reduce.store(0, Ordering::Relaxed);
        inner.bytes_since_reduce.store(0, Ordering::Relaxed);
        let l = inner.limits;
        if let Err(e) = self.reduce_size(l.bytes, l.items, l.age) {
            self.inner.warner.warn(
                Cause::Cleanup,
                "",
                format_args!("automatic reduce_size failed: {e}"),
            );
        }
    }

    /// Whether an access to the entry `digest` should be written to the
    /// store: not if this process did so less than a second ago.
    pub(crate) fn should_record_access(&self, digest: &joblib_hash::Digest) -> bool {
        const EVERY: Duration = crate::func::ACCESS_EVERY;
        let now = Instant::now();
        const CAP: usize = 4096;
        let mut touched = lock(&self.inner.touched);
        if touched
            .get(digest)
            .is_some_and(|t| now.duration_since(*t) < EVERY)
        {
            return false;
        }
        if touched.len() >= CAP {
            touched.retain(|_, t| now.duration_since(*t) < EVERY);
            // More recent entries than the cap: forget them all rather than
            // scan the table on every insertion (they are then recorded
            // once more, which is cheap).
            if touched.len() >= CAP / 2 {
                touched.clear();
            }
        }
        touched.insert(*digest, now);
        true
    }

    /// Makes sure the store's entries of `function` were written with
    /// `fingerprint`; clears them with a warning if not.
    pub(crate) fn check_fingerprint(&self, function: &str, fingerprint: &str) {
        let Some(backend) = &self.inner.backend else {
            return;
        };
        {
            let checked = lock(&self.inner.checked);
            if checked.get(function).is_some_and(|f| f == fingerprint) {
                return;
            }
        }
        let warner = &self.inner.warner;
        match backend.fingerprint(function) {
            Ok(Some(old)) if old == fingerprint => {}
            Ok(old) => {
                if let Some(old) = old {
                    match backend.clear_function(function) {
                        Ok(n) => {
                            lock(&self.inner.code_changed).insert(function.to_string());
                            warner.warn(
                                Cause::CodeChanged,
                                function,
                                format_args!(
                                    "Clearing function cache identified by {function}: the function changed \
                                     (fingerprint {old} -> {fingerprint}), {n} cached results removed"
                                ),
                            )
                        }
                        Err(e) => warner.warn(
                            Cause::CodeChanged,
                            function,
                            format_args!(
                                "the function {function} changed but its old results could not be cleared: {e}"
                            ),
                        ),
                    }
                }
                if let Err(e) = backend.set_fingerprint(function, fingerprint) {
                    warner.warn(
                        Cause::StoreFailed,
                        function,
                        format_args!("cannot record the fingerprint of {function}: {e}"),
                    );
                }
            }
            Err(e) => warner.warn(
                Cause::StoreRead,
                function,
                format_args!("cannot read the fingerprint of {function}: {e}"),
            ),
        }
        lock(&self.inner.checked).insert(function.to_string(), fingerprint.to_string());
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
