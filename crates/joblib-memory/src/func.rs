//! [`MemorizedFunc`] and the call path shared with the `#[cache]` macro.

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, ErrorKind, Read};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use joblib_hash::{Digest, Hasher};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::encode::Hex;
use crate::error::{Error, io_err};
use crate::inflight::Turn;
use crate::memory::{Memory, Validator};
use crate::metadata::Metadata;
use crate::recent::{FileId, KEEP_UP_TO};
use crate::result::MemorizedResult;
use crate::runlog::{Call, RunOutcome, RunReason};
use crate::store::{OutputSink, PutOutcome, Stamped, StoreBackend, StoredOutput, stamp, unstamp};
use crate::summary::summarize;
use crate::verbose;
use crate::warn::Cause;

/// The cache side of a cached function: its identity and how it validates
/// entries. Shared by [`MemorizedFunc`] and the macro's expansion.
pub(crate) struct Core {
    pub(crate) memory: Memory,
    pub(crate) name: String,
    pub(crate) fingerprint: String,
    expires_after: Option<Duration>,
    validate: Option<Validator>,
    checked: OnceLock<()>,
}

/// Whether an error means the result is simply not there (never stored,
/// or removed by another process between lookup and load): a miss, not
/// corruption.
fn is_missing(e: &Error) -> bool {
    match e {
        Error::Io { source, .. } => absent(source.kind()),
        Error::Persist {
            source: joblib_persist::Error::Io { source, .. },
            ..
        } => absent(source.kind()),
        _ => false,
    }
}

/// Whether an I/O error kind means the path does not lead to a file: not
/// there, or a component on the way is not a directory.
fn absent(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::NotFound | ErrorKind::NotADirectory)
}

/// How fresh a recorded access may be and still not be recorded again:
/// LRU order is right to this much.
pub(crate) const ACCESS_EVERY: Duration = Duration::from_secs(1);

/// Whether the file's modification time (an entry's last access) is less
/// than `every` old. A time ahead of this clock (another machine's, on a
/// shared file system) counts as recent: it ages like any other.
fn accessed_within(meta: &std::fs::Metadata, every: Duration) -> bool {
    meta.modified().is_ok_and(|t| {
        SystemTime::now()
            .duration_since(t)
            .map_or(true, |d| d < every)
    })
}

/// Results up to this size are read with one `read` and parsed from
/// memory, which costs fewer system calls than loading by offsets.
const SMALL_RESULT: u64 = 256 << 10;

/// What the validation of an entry found.
enum Validity {
    /// It passes (or nothing is checked).
    Valid,
    /// It is rejected (expired, refused by the callback, unreadable
    /// metadata).
    Invalid(RunReason),
    /// There is no such entry.
    Absent,
}

/// Where a computed value ended up.
enum Outcome {
    /// In the store, under this digest.
    Stored(Digest),
    /// Not stored (disabled memory, or the store failed).
    NotStored,
}

impl Core {
    pub(crate) fn new(memory: Memory, name: String, fingerprint: String) -> Core {
        Core {
            expires_after: memory.inner.expires_after,
            validate: memory.inner.validate.clone(),
            memory,
            name,
            fingerprint,
            checked: OnceLock::new(),
        }
    }

    /// Emits a warning about this function where the memory sends them.
    fn warn(&self, cause: Cause, message: fmt::Arguments<'_>) {
        self.memory.inner.warner.warn(cause, &self.name, message);
    }

    fn backend(&self) -> Option<&Arc<dyn StoreBackend>> {
        let backend = self.memory.inner.backend.as_ref()?;
        self.checked
            .get_or_init(|| self.memory.check_fingerprint(&self.name, &self.fingerprint));
        Some(backend)
    }

    /// The entry key of `args`: their digest, with the function's name and
    /// fingerprint folded in so an entry of another version of the
    /// function is never found, and keys are unique across functions.
    pub(crate) fn digest<A: Serialize + ?Sized>(&self, args: &A) -> Result<Digest, Error> {
        let err = |source| Error::Hash {
            function: self.name.clone(),
            source,
        };
        let mut h = Hasher::new();
        h.update(self.name.as_str()).map_err(err)?;
        h.update(self.fingerprint.as_str()).map_err(err)?;
        h.update(args).map_err(err)?;
        h.finish().map_err(err)
    }

    /// Whether the entry passes `expires_after` and `validate` (without
    /// reading its metadata when neither is set).
    fn validity(&self, backend: &dyn StoreBackend, digest: &Digest) -> Validity {
        if self.expires_after.is_none() && self.validate.is_none() {
            return Validity::Valid;
        }
        let meta = match backend.metadata(&self.name, digest) {
            Ok(Some(m)) => m,
            // A result without its metadata cannot be checked: it is
            // damaged, and must be replaced (the store keeps an existing
            // entry on `put`).
            Ok(None) => {
                return match backend.contains(&self.name, digest) {
                    Ok(true) => {
                        self.warn(
                            Cause::Damaged,
                            format_args!(
                                "a cached result of {} ({digest}) has lost its metadata; recomputing",
                                self.name
                            ),
                        );
                        Validity::Invalid(RunReason::Damaged)
                    }
                    _ => Validity::Absent,
                };
            }
            Err(e) => {
                self.warn(
                    Cause::StoreRead,
                    format_args!(
                        "cannot read the metadata of a cached result of {}; recomputing: {e}",
                        self.name
                    ),
                );
                return Validity::Invalid(RunReason::Rejected);
            }
        };
        if self.expires_after.is_some_and(|max| meta.age() > max) {
            Validity::Invalid(RunReason::Expired)
        } else if self.validate.as_ref().is_none_or(|v| v(&meta)) {
            Validity::Valid
        } else {
            Validity::Invalid(RunReason::Rejected)
        }
    }

    /// Removes an entry, warning on failure.
    fn discard(&self, backend: &dyn StoreBackend, digest: &Digest) {
        self.memory.inner.recent.forget(digest);
        if let Err(e) = backend.remove(&self.name, digest) {
            self.warn(
                Cause::Cleanup,
                format_args!(
                    "cannot remove a cached result of {} ({digest}): {e}",
                    self.name
                ),
            );
        }
    }

    /// Loads `R` from the stored output of the entry `digest`, checking
    /// that it was stored for that entry; also returns the size of what
    /// was stored (0 when it is not known without another `stat`) and the
    /// entry's compute time in seconds (`None` for older entries). With
    /// `access`, records the access in the store: on the open file when
    /// there is one, and there only when its last recorded access is more
    /// than [`ACCESS_EVERY`] old.
    fn read<R: DeserializeOwned>(
        &self,
        out: StoredOutput,
        digest: &Digest,
        access: Option<&dyn StoreBackend>,
    ) -> Result<(R, u64, Option<f64>), Error> {
        let (stamped, size, recorded) = self.read_stamped::<R>(out, digest, access)?;
        let (value, seconds) = unstamp(&self.name, digest, stamped)?;
        if let (Some(backend), false) = (access, recorded) {
            self.record_access(backend, digest);
        }
        Ok((value, size, seconds))
    }

    /// Logs a failure to record an access (harmless: LRU order is off by
    /// one access).
    fn access_recorded(&self, result: Result<(), Error>) {
        if let Err(e) = result {
            tracing::debug!(function = %self.name, error = %e, "cannot record the access");
        }
    }

    /// [`read`](Self::read) before the entry check; also says whether the
    /// access was recorded.
    fn read_stamped<R: DeserializeOwned>(
        &self,
        out: StoredOutput,
        digest: &Digest,
        access: Option<&dyn StoreBackend>,
    ) -> Result<(Stamped<R>, u64, bool), Error> {
        let persist = |source| Error::Persist {
            function: self.name.clone(),
            source,
        };
        match out {
            StoredOutput::File(path) => {
                if let Some(mode) = self.memory.inner.mmap_mode {
                    return joblib_persist::load_mmap(&path, mode)
                        .map(|v| (v, 0, false))
                        .map_err(persist);
                }
                // Name the file rather than `<stream>`.
                let named = |e| Error::Persist {
                    function: format!("{} ({})", self.name, path.display()),
                    source: e,
                };
                let recent = &self.memory.inner.recent;
                if recent.contains(digest) {
                    // Read before: if the file is the one read then, its
                    // bytes are too, and one `stat` replaces `open`,
                    // `read` and `close`.
                    let meta =
                        std::fs::metadata(&path).map_err(|e| io_err(&path, "looking up", e))?;
                    if let Some(bytes) = FileId::of(&meta).and_then(|id| recent.get(digest, id)) {
                        let value = joblib_persist::load_from_reader(&*bytes);
                        if let (Some(backend), Ok(_)) = (access, &value)
                            && !accessed_within(&meta, ACCESS_EVERY)
                        {
                            self.record_access(backend, digest);
                        }
                        return value
                            .map(|v| (v, meta.len(), access.is_some()))
                            .map_err(named);
                    }
                }
                let mut file = File::open(&path).map_err(|e| io_err(&path, "opening", e))?;
                let meta = file
                    .metadata()
                    .map_err(|e| io_err(&path, "reading the size of", e))?;
                let len = meta.len();
                if len > SMALL_RESULT {
                    return joblib_persist::load(&path)
                        .map(|v| (v, len, false))
                        .map_err(persist);
                }
                // Entries are never rewritten: the size is exact, and one
                // `read` gets it all.
                let mut bytes = vec![0; usize::try_from(len).unwrap_or(0)];
                file.read_exact(&mut bytes)
                    .map_err(|e| io_err(&path, "reading", e))?;
                let value = joblib_persist::load_from_reader(bytes.as_slice());
                if value.is_ok() {
                    // The modification time is the last access (set by any
                    // process): a recent one needs no write, so neither
                    // the first nor later hits within a second write
                    // anything.
                    match access {
                        Some(backend) if !accessed_within(&meta, ACCESS_EVERY) => {
                            // The write changes the file's identity: its
                            // bytes are kept at the next hit.
                            self.access_recorded(
                                backend.record_access_open(&self.name, digest, &file),
                            );
                        }
                        _ => {
                            if let Some(id) = FileId::settled(&meta)
                                && len <= KEEP_UP_TO
                            {
                                recent.insert(*digest, id, &bytes);
                            }
                        }
                    }
                }
                value.map(|v| (v, len, access.is_some())).map_err(named)
            }
            StoredOutput::Bytes(bytes) => joblib_persist::load_from_reader(bytes.as_slice())
                .map(|v| (v, bytes.len() as u64, false))
                .map_err(persist),
        }
    }

    /// Whether a valid entry exists (removing an invalid one).
    pub(crate) fn present(&self, digest: &Digest) -> bool {
        let Some(backend) = self.backend() else {
            return false;
        };
        match backend.contains(&self.name, digest) {
            Ok(true) => match self.validity(backend.as_ref(), digest) {
                Validity::Valid => true,
                Validity::Absent => false,
                Validity::Invalid(_) => {
                    self.discard(backend.as_ref(), digest);
                    false
                }
            },
            Ok(false) => false,
            Err(e) => {
                self.warn(
                    Cause::StoreRead,
                    format_args!("cannot look up a cached result of {}: {e}", self.name),
                );
                false
            }
        }
    }

    /// Records an access to the entry, at most once a second per entry and
    /// process: a hit then costs no write most of the time, and LRU order
    /// is still right to the second.
    pub(crate) fn record_access(&self, backend: &dyn StoreBackend, digest: &Digest) {
        if self.memory.should_record_access(digest) {
            self.access_recorded(backend.record_access(&self.name, digest));
        }
    }

    /// The stored value and its size, if a valid, readable entry exists;
    /// otherwise why not. Corrupt or invalid entries are removed (with a
    /// warning for corrupt ones).
    fn load<R: DeserializeOwned>(&self, backend: &dyn StoreBackend, digest: &Digest) -> Loaded<R> {
        let out = match backend.output(&self.name, digest) {
            Ok(Some(out)) => out,
            Ok(None) => return Loaded::Missing(None),
            Err(e) => {
                self.warn(
                    Cause::StoreRead,
                    format_args!(
                        "cannot look up a cached result of {}; computing: {e}",
                        self.name
                    ),
                );
                return Loaded::Missing(None);
            }
        };
        match self.validity(backend, digest) {
            Validity::Valid => {}
            Validity::Absent => return Loaded::Missing(None),
            Validity::Invalid(reason) => {
                tracing::debug!(function = %self.name, %digest, "cached result failed validation");
                self.discard(backend, digest);
                return Loaded::Missing(Some(reason));
            }
        }
        match self.read(out, digest, Some(backend)) {
            Ok((v, size, seconds)) => Loaded::Value(v, size, seconds),
            Err(e) if is_missing(&e) => Loaded::Missing(None),
            Err(e) => {
                self.warn(Cause::Damaged, format_args!("a cached result of {} ({digest}) is unreadable (corrupt, truncated or of another type); recomputing: {e}", self.name));
                self.discard(backend, digest);
                Loaded::Missing(Some(RunReason::Damaged))
            }
        }
    }

    /// Appends a record of a computing call to the run log, if the memory
    /// keeps one.
    fn log_call(
        &self,
        digest: Option<&Digest>,
        args: &str,
        outcome: RunOutcome,
        reason: Option<RunReason>,
        took: Duration,
        bytes: u64,
    ) {
        if self.memory.inner.run_log.is_none() {
            return;
        }
        let hex = digest.map(Digest::to_hex);
        self.append_log(&Call {
            function: &self.name,
            fingerprint: &self.fingerprint,
            digest: hex.as_deref(),
            args,
            outcome,
            reason,
            took,
            bytes,
            compute_seconds: None,
        });
    }

    /// Appends a record of a hit to the run log, if the memory keeps one:
    /// `took` to load it, and the entry's compute time (the time the hit
    /// saved) when the entry recorded it.
    fn log_hit(
        &self,
        digest: &Digest,
        args: &str,
        took: Duration,
        bytes: u64,
        compute_seconds: Option<f64>,
    ) {
        if self.memory.inner.run_log.is_none() {
            return;
        }
        let hex = Hex::of(digest);
        self.append_log(&Call {
            function: &self.name,
            fingerprint: &self.fingerprint,
            digest: Some(hex.as_str()),
            args,
            outcome: RunOutcome::Hit,
            reason: None,
            took,
            bytes,
            compute_seconds,
        });
    }

    /// Appends `call` to the run log, warning (once) when it cannot be
    /// written.
    fn append_log(&self, call: &Call<'_>) {
        let Some(log) = &self.memory.inner.run_log else {
            return;
        };
        if let Err(why) = log.append(call) {
            self.warn(
                Cause::RunLog,
                format_args!(
                    "{why}: calls of {} are not recorded in the run log",
                    self.name
                ),
            );
        }
    }

    /// Why a miss recomputes: what the load found, or else a change of
    /// the function's code noticed by this process.
    fn miss_reason(&self, found: Option<RunReason>) -> Option<RunReason> {
        found.or_else(|| {
            self.memory
                .function_changed(&self.name)
                .then_some(RunReason::CodeChanged)
        })
    }

    /// Looks `args` up: the stored value, or what is needed to compute and
    /// store it.
    pub(crate) fn lookup<A, R>(&self, args: &A) -> Lookup<'_, R>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let Some(backend) = self.backend() else {
            return Lookup::Miss(Pending::uncached(self, None, String::new()));
        };
        let digest = match self.digest(args) {
            Ok(d) => d,
            Err(e) => {
                self.warn(
                    Cause::Unhashable,
                    format_args!(
                        "cannot hash the arguments of {}; computing without the cache: {e}",
                        self.name
                    ),
                );
                return Lookup::Miss(Pending::uncached(
                    self,
                    Some(RunReason::Unhashable),
                    summarize(args),
                ));
            }
        };
        let start = Instant::now();
        match self.load(backend.as_ref(), &digest) {
            Loaded::Value(v, size, computed) => {
                let took = start.elapsed();
                tracing::debug!(function = %self.name, %digest, "cache hit");
                if self.memory.inner.verbose >= 2 {
                    eprintln!("{}", verbose::loading(&self.name, took));
                }
                if self.memory.inner.run_log.is_some() {
                    self.log_hit(&digest, &summarize(args), took, size, computed);
                }
                Lookup::Hit(v)
            }
            Loaded::Missing(found) => {
                tracing::debug!(function = %self.name, %digest, "cache miss");
                Lookup::Miss(Pending {
                    core: self,
                    key: Some(digest),
                    summary: summarize(args),
                    reason: self.miss_reason(found),
                })
            }
        }
    }

    /// Computes, stores, and returns the value with where it went.
    fn compute_and_store<R, C>(&self, digest: Digest, summary: String, compute: C) -> Computed<R>
    where
        R: Serialize + DeserializeOwned,
        C: FnOnce() -> R,
    {
        let verbose = self.memory.inner.verbose;
        if verbose >= 1 {
            eprintln!("{}", verbose::calling(&self.name, &summary));
        }
        let start = Instant::now();
        let value = compute();
        let took = start.elapsed();
        if verbose >= 1 {
            eprintln!("{}", verbose::done(&self.name, took));
        }
        let Some(backend) = self.backend() else {
            return Computed {
                value,
                outcome: Outcome::NotStored,
                written: None,
                took,
                size: 0,
            };
        };
        let mut meta = Metadata::new(&self.name, &self.fingerprint, &digest, summary, took);
        let dump = &self.memory.inner.dump;
        let name = &self.name;
        let stamp_hex = digest.to_hex();
        let stamped = stamp(&stamp_hex, &value, took);
        let mut write = |sink: OutputSink<'_>| -> Result<(), Error> {
            let persist = |source| Error::Persist {
                function: name.clone(),
                source,
            };
            match sink {
                // The store's temporary directory already makes the write
                // atomic: stream into the file rather than through
                // `dump`'s own temporary file and writer thread, which
                // cost more than a small result's whole write.
                OutputSink::File(path) => {
                    let file = File::create(path).map_err(|e| io_err(path, "creating", e))?;
                    let writer = dump
                        .dump_to_writer(&stamped, BufWriter::with_capacity(1 << 16, file))
                        .map_err(persist)?;
                    writer
                        .into_inner()
                        .map_err(|e| io_err(path, "writing", e.into_error()))?;
                    Ok(())
                }
                OutputSink::Writer(w) => dump
                    .dump_to_writer(&stamped, w)
                    .map(|_| ())
                    .map_err(persist),
            }
        };
        match backend.put(&self.name, &digest, &mut meta, &mut write) {
            Ok(outcome) => {
                let stored = outcome == PutOutcome::Stored;
                if stored {
                    tracing::debug!(function = %self.name, %digest, size = meta.size, "stored");
                }
                // As joblib: with mmap_mode, the first call returns mapped
                // arrays too.
                let value = match (
                    self.memory.inner.mmap_mode,
                    backend.output(&self.name, &digest),
                ) {
                    (Some(_), Ok(Some(out))) => {
                        self.read(out, &digest, None).map_or(value, |(v, _, _)| v)
                    }
                    _ => value,
                };
                Computed {
                    value,
                    outcome: Outcome::Stored(digest),
                    written: stored.then_some(meta.size),
                    took,
                    size: meta.size,
                }
            }
            Err(e) => {
                self.warn(Cause::StoreFailed, format_args!("cannot store the result of {}; it was computed but will not be cached: {e}", self.name));
                Computed {
                    value,
                    outcome: Outcome::NotStored,
                    written: None,
                    took,
                    size: 0,
                }
            }
        }
    }
}

/// What [`Core::compute_and_store`] did.
struct Computed<R> {
    value: R,
    /// Where the value went.
    outcome: Outcome,
    /// The size written, if this call stored the entry.
    written: Option<u64>,
    /// The compute time.
    took: Duration,
    /// The size of the stored result (0 if not stored).
    size: u64,
}

/// What looking an entry up in the store found.
enum Loaded<R> {
    /// The value, the size of the stored result (0 if unknown) and the
    /// entry's compute time in seconds (`None` for older entries).
    Value(R, u64, Option<f64>),
    /// No usable entry: absent (`None`) or discarded for this reason.
    Missing(Option<RunReason>),
}

/// The result of looking a call up (used by the `#[cache]` expansion).
#[doc(hidden)]
pub enum Lookup<'a, R> {
    /// The stored value.
    Hit(R),
    /// Not stored: compute it with [`Pending::run`].
    Miss(Pending<'a>),
}

/// A call that missed the cache (used by the `#[cache]` expansion).
#[doc(hidden)]
pub struct Pending<'a> {
    core: &'a Core,
    /// The digest; `None` when nothing is cached.
    key: Option<Digest>,
    /// The argument summary (empty when nothing is logged).
    summary: String,
    /// Why the call recomputes, or why it is not stored.
    reason: Option<RunReason>,
}

impl<'a> Pending<'a> {
    /// A call computed without the cache.
    fn uncached(core: &'a Core, reason: Option<RunReason>, summary: String) -> Pending<'a> {
        Pending {
            core,
            key: None,
            summary,
            reason,
        }
    }

    /// Computes the value (once per key across this process's threads),
    /// stores it and returns it.
    pub fn run<R, C>(self, compute: C) -> R
    where
        R: Serialize + DeserializeOwned,
        C: FnOnce() -> R,
    {
        self.run_inner(compute).0
    }

    fn run_inner<R, C>(self, compute: C) -> (R, Outcome)
    where
        R: Serialize + DeserializeOwned,
        C: FnOnce() -> R,
    {
        let core = self.core;
        let (Some(digest), Some(backend)) = (self.key, core.backend()) else {
            let start = Instant::now();
            let value = compute();
            if self.reason.is_some() {
                let took = start.elapsed();
                core.log_call(
                    None,
                    &self.summary,
                    RunOutcome::NotStored,
                    self.reason,
                    took,
                    0,
                );
            }
            return (value, Outcome::NotStored);
        };
        let mut reason = self.reason;
        loop {
            let turn = core.memory.inner.inflight.begin(&core.name, digest);
            // Another thread (we waited for it) or process may have stored
            // it since the lookup.
            let start = Instant::now();
            match core.load(backend.as_ref(), &digest) {
                Loaded::Value(v, size, computed) => {
                    core.log_hit(&digest, &self.summary, start.elapsed(), size, computed);
                    return (v, Outcome::Stored(digest));
                }
                Loaded::Missing(found) => reason = found.or(reason),
            }
            let Turn::Leader(guard) = turn else {
                continue;
            };
            let done = core.compute_and_store(digest, self.summary.clone(), compute);
            // Waiters need not wait for the eviction scan.
            drop(guard);
            let (outcome, reason) = match done.outcome {
                Outcome::Stored(_) if reason.is_some() => (RunOutcome::Recomputed, reason),
                Outcome::Stored(_) => (RunOutcome::Computed, None),
                Outcome::NotStored => (RunOutcome::NotStored, Some(RunReason::StoreFailed)),
            };
            core.log_call(
                Some(&digest),
                &self.summary,
                outcome,
                reason,
                done.took,
                done.size,
            );
            if let Some(size) = done.written {
                core.memory.after_write(size);
            }
            return (done.value, done.outcome);
        }
    }
}

/// A function whose results are cached; made by [`Memory::cache`].
///
/// `F` takes one argument (a tuple for several) that implements
/// `Serialize`; its result must implement `Serialize` and
/// `DeserializeOwned`.
#[must_use]
pub struct MemorizedFunc<F> {
    core: Core,
    f: F,
}

impl<F> fmt::Debug for MemorizedFunc<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorizedFunc")
            .field("name", &self.core.name)
            .field("fingerprint", &self.core.fingerprint)
            .field("memory", &self.core.memory)
            .finish_non_exhaustive()
    }
}

impl<F> MemorizedFunc<F> {
    pub(crate) fn new(memory: Memory, name: String, f: F) -> MemorizedFunc<F> {
        MemorizedFunc {
            core: Core::new(memory, name, version_fingerprint("")),
            f,
        }
    }

    /// The version of the function's code: change it when the code changes
    /// and the function's stored results are cleared (with a warning) and
    /// recomputed. Default: the empty version.
    pub fn version(mut self, version: impl AsRef<str>) -> MemorizedFunc<F> {
        self.core.fingerprint = version_fingerprint(version.as_ref());
        self.core.checked = OnceLock::new();
        self
    }

    /// Results older than this are recomputed.
    pub fn expires_after(mut self, age: Duration) -> MemorizedFunc<F> {
        self.core.expires_after = Some(age);
        self
    }

    /// A result whose metadata `check` rejects is recomputed. The metadata
    /// is read on each hit while a check is set.
    pub fn validate(
        mut self,
        check: impl Fn(&Metadata) -> bool + Send + Sync + 'static,
    ) -> MemorizedFunc<F> {
        self.core.validate = Some(Arc::new(check));
        self
    }

    /// The function's name in the cache.
    pub fn name(&self) -> &str {
        &self.core.name
    }

    /// The function's fingerprint, as stored in the cache.
    pub fn fingerprint(&self) -> &str {
        &self.core.fingerprint
    }

    /// The memory the results go to.
    pub fn memory(&self) -> &Memory {
        &self.core.memory
    }

    /// Calls the function, or returns its stored result for equal
    /// arguments. Never fails because of the cache: if hashing, loading or
    /// storing fails, the value is computed (and a warning emitted through
    /// `tracing`). Concurrent callers with equal arguments in this process
    /// wait for one computation.
    pub fn call<A, R>(&self, args: A) -> R
    where
        F: Fn(A) -> R,
        A: Serialize,
        R: Serialize + DeserializeOwned,
    {
        match self.core.lookup::<A, R>(&args) {
            Lookup::Hit(v) => v,
            Lookup::Miss(pending) => pending.run(|| (self.f)(args)),
        }
    }

    /// Like [`call`](Self::call), but returns a handle to the stored result
    /// instead of the value, without loading it on a hit.
    pub fn call_and_shelve<A, R>(&self, args: A) -> MemorizedResult<R>
    where
        F: Fn(A) -> R,
        A: Serialize,
        R: Serialize + DeserializeOwned,
    {
        let core = &self.core;
        let digest = match core.backend() {
            Some(_) => match core.digest(&args) {
                Ok(d) => Some(d),
                Err(e) => {
                    core.warn(
                        Cause::Unhashable,
                        format_args!(
                            "cannot hash the arguments of {}; computing without the cache: {e}",
                            core.name
                        ),
                    );
                    None
                }
            },
            None => None,
        };
        if let Some(d) = digest
            && core.present(&d)
        {
            if let Some(b) = core.backend() {
                core.record_access(b.as_ref(), &d);
            }
            if core.memory.inner.run_log.is_some() {
                // Shelved: nothing was loaded, so no load time, size or
                // compute time (`totals` finds it in the metadata).
                core.log_hit(&d, &summarize(&args), Duration::ZERO, 0, None);
            }
            return MemorizedResult::stored(&core.memory, &core.name, d);
        }
        let pending = match digest {
            Some(d) => Pending {
                core,
                key: Some(d),
                summary: summarize(&args),
                reason: core.miss_reason(None),
            },
            None => Pending::uncached(core, Some(RunReason::Unhashable), summarize(&args)),
        };
        match pending.run_inner(|| (self.f)(args)) {
            (_, Outcome::Stored(d)) => MemorizedResult::stored(&core.memory, &core.name, d),
            (value, Outcome::NotStored) => MemorizedResult::inline(&core.name, &value),
        }
    }

    /// Whether a valid stored result exists for `args`.
    pub fn check_call_in_cache<A: Serialize + ?Sized>(&self, args: &A) -> bool {
        self.core.backend().is_some() && self.core.digest(args).is_ok_and(|d| self.core.present(&d))
    }

    /// The argument digest under which the result of `args` is stored.
    ///
    /// # Errors
    ///
    /// [`Error::Hash`] when the arguments cannot be hashed.
    pub fn digest<A: Serialize + ?Sized>(&self, args: &A) -> Result<Digest, Error> {
        self.core.digest(args)
    }

    /// Removes all stored results of this function; returns how many.
    ///
    /// # Errors
    ///
    /// What the store reports, for example [`Error::Io`] naming the path.
    pub fn clear(&self) -> Result<usize, Error> {
        match self.core.backend() {
            Some(b) => b.clear_function(&self.core.name),
            None => Ok(0),
        }
    }
}

/// The stored fingerprint of a closure's version.
fn version_fingerprint(version: &str) -> String {
    format!("version:{version}")
}

/// A function cached by the `#[cache]` macro (used by its expansion).
#[doc(hidden)]
pub struct CachedFn {
    core: Core,
}

impl CachedFn {
    /// A cached function named `name` (module path and name) with the
    /// compile-time `fingerprint` of its tokens.
    pub fn new(memory: &Memory, name: &str, fingerprint: u128) -> CachedFn {
        CachedFn {
            core: Core::new(
                memory.clone(),
                name.to_string(),
                format!("{fingerprint:032x}"),
            ),
        }
    }

    /// Looks a call up by the key of its (non-ignored) arguments.
    pub fn lookup<A, R>(&self, key: &A) -> Lookup<'_, R>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        self.core.lookup(key)
    }

    /// The fingerprint as stored in the cache.
    pub fn fingerprint(&self) -> &str {
        &self.core.fingerprint
    }

    /// Removes all stored results of the function.
    pub fn clear(&self) -> Result<usize, Error> {
        match self.core.backend() {
            Some(b) => b.clear_function(&self.core.name),
            None => Ok(0),
        }
    }
}

/// Folds the fingerprint of a dependency into a function's fingerprint, at
/// compile time (used by the `#[cache]` expansion for `depends_on`).
#[doc(hidden)]
pub const fn fold_fingerprint(acc: u128, dep: u128) -> u128 {
    // Order matters (a then b differs from b then a) and every bit of
    // both inputs reaches every bit of the output.
    let mut x = acc.rotate_left(47) ^ dep;
    x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
    x ^= x >> 64;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9_94d0_49bb_1331_11eb);
    x ^ (x >> 61)
}
