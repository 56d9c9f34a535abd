//! The run log: one JSON line per call of a cached function, appended to
//! `runs.jsonl` in the cache directory (see `docs/cache-layout.md`).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{Error, io_err};
use crate::fs_store::FsStore;
use crate::memory::lock;
use crate::metadata::{from_unix_seconds, unix_seconds};
use crate::store::StoreBackend;

/// The run log's file in the cache directory.
pub(crate) const RUN_LOG: &str = "runs.jsonl";
/// The previous run log, after rotation.
pub(crate) const RUN_LOG_OLD: &str = "runs.1.jsonl";
/// The default size at which the run log is rotated.
pub(crate) const DEFAULT_LIMIT: u64 = 8 << 20;

/// What a call of a cached function did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunOutcome {
    /// Answered from the cache.
    Hit,
    /// Computed and stored: no entry existed.
    Computed,
    /// Computed and stored again: the entry existed but was unusable (see
    /// the record's [`reason`](RunRecord::reason)).
    Recomputed,
    /// Computed but not stored (see the record's
    /// [`reason`](RunRecord::reason)).
    NotStored,
}

/// Why a call was recomputed or its result not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunReason {
    /// The function's code changed and this process cleared its results
    /// (every miss of that function afterwards carries this reason).
    CodeChanged,
    /// The stored result could not be read (corrupt, truncated, another
    /// type).
    Damaged,
    /// The stored result was older than `expires_after`.
    Expired,
    /// The `validate` callback rejected the stored result, or its metadata
    /// was unreadable.
    Rejected,
    /// The arguments could not be hashed.
    Unhashable,
    /// Writing the result to the store failed.
    StoreFailed,
}

/// One call of a cached function, as recorded in the run log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunRecord {
    /// When the call ended, in seconds since the Unix epoch.
    pub time: f64,
    /// The cached function's name.
    pub function: String,
    /// The function's fingerprint.
    pub fingerprint: String,
    /// The entry's argument digest in hex; `None` when the arguments could
    /// not be hashed.
    pub digest: Option<String>,
    /// A short summary of the arguments (as in `metadata.json`).
    pub args: String,
    /// What the call did.
    pub outcome: RunOutcome,
    /// Why, for [`RunOutcome::Recomputed`] and [`RunOutcome::NotStored`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RunReason>,
    /// Seconds spent loading (a hit) or computing (otherwise).
    pub seconds: f64,
    /// The size of the stored result in bytes (0 when unknown or not
    /// stored).
    pub bytes: u64,
    /// The process that made the call.
    pub pid: u32,
    /// The machine that made the call.
    pub host: String,
    /// For a hit, the compute time of the entry it was answered from, in
    /// seconds: the time the cache saved. `None` for other outcomes, and
    /// for hits of entries stored (or records written) by earlier
    /// versions, which did not record it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_seconds: Option<f64>,
}

impl RunRecord {
    /// When the call ended.
    pub fn at(&self) -> SystemTime {
        from_unix_seconds(self.time)
    }

    /// The load or compute time.
    pub fn duration(&self) -> Duration {
        Duration::try_from_secs_f64(self.seconds).unwrap_or_default()
    }
}

/// A record as written: borrowed fields, the same JSON as [`RunRecord`].
#[derive(Serialize)]
struct Line<'a> {
    time: f64,
    function: &'a str,
    fingerprint: &'a str,
    digest: Option<&'a str>,
    args: &'a str,
    outcome: RunOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<RunReason>,
    seconds: f64,
    bytes: u64,
    pid: u32,
    host: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    compute_seconds: Option<f64>,
}

/// What a call reports to the run log.
pub(crate) struct Call<'a> {
    pub(crate) function: &'a str,
    pub(crate) fingerprint: &'a str,
    pub(crate) digest: Option<&'a str>,
    pub(crate) args: &'a str,
    pub(crate) outcome: RunOutcome,
    pub(crate) reason: Option<RunReason>,
    pub(crate) took: Duration,
    pub(crate) bytes: u64,
    pub(crate) compute_seconds: Option<f64>,
}

/// The name of this machine, read once.
fn host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| fs::read_to_string("/etc/hostname").ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::env::var("COMPUTERNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".to_string())
    })
}

/// This process's id, read once: it is in every record, and `getpid` is a
/// system call. (A child made by `fork` without `exec` that keeps using
/// the parent's memory records the parent's id.)
fn pid() -> u32 {
    static PID: OnceLock<u32> = OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// Whether two metadata describe the same file (not only the same name).
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        // Without inode numbers, a shorter file at the name is a new one.
        a.len() >= b.len()
    }
}

/// The open log, `None` until the first record or after a failure, and a
/// buffer reused for every record.
#[derive(Debug, Default)]
struct Sink {
    file: Option<File>,
    buf: Vec<u8>,
}

/// Appends records to a cache's run log; shared by a memory's functions.
#[derive(Debug)]
pub(crate) struct RunLogWriter {
    path: PathBuf,
    old: PathBuf,
    limit: u64,
    /// The open log and the buffer records are written into.
    sink: Mutex<Sink>,
    /// Bytes this process appended since it last looked at the file's size.
    since_check: AtomicU64,
}

impl RunLogWriter {
    pub(crate) fn new(location: &Path, limit: u64) -> RunLogWriter {
        RunLogWriter {
            path: location.join(RUN_LOG),
            old: location.join(RUN_LOG_OLD),
            limit: limit.max(1),
            sink: Mutex::new(Sink::default()),
            since_check: AtomicU64::new(0),
        }
    }

    fn open(&self) -> std::io::Result<File> {
        File::options().append(true).create(true).open(&self.path)
    }

    /// Appends one record with one `write` to a file opened with
    /// `O_APPEND`: writers in other threads and processes never interleave
    /// with it. A failure never disturbs the call: it is returned, for the
    /// caller to warn about, and the next append tries again.
    pub(crate) fn append(&self, call: &Call<'_>) -> Result<(), String> {
        let line = Line {
            time: unix_seconds(SystemTime::now()),
            function: call.function,
            fingerprint: call.fingerprint,
            digest: call.digest,
            args: call.args,
            outcome: call.outcome,
            reason: call.reason,
            seconds: call.took.as_secs_f64(),
            bytes: call.bytes,
            pid: pid(),
            host: host(),
            compute_seconds: call.compute_seconds,
        };
        let mut sink = lock(&self.sink);
        let Sink { file: guard, buf } = &mut *sink;
        buf.clear();
        if let Err(e) = serde_json::to_writer(&mut *buf, &line) {
            return Err(format!("cannot encode a record: {e}"));
        }
        buf.push(b'\n');
        if guard.is_none() {
            match self.open() {
                Ok(f) => *guard = Some(f),
                Err(e) => return Err(format!("cannot open {}: {e}", self.path.display())),
            }
        }
        let Some(file) = guard.as_mut() else {
            return Ok(());
        };
        match file.write(buf) {
            Ok(n) if n == buf.len() => {}
            Ok(n) => {
                return Err(format!(
                    "short write to {} ({n} of {} bytes)",
                    self.path.display(),
                    buf.len()
                ));
            }
            Err(e) => {
                *guard = None;
                return Err(format!("cannot append to {}: {e}", self.path.display()));
            }
        }
        let written = self
            .since_check
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        // Look at the size every sixteenth of the limit this process wrote.
        if written + buf.len() as u64 >= (self.limit / 16).max(4096) {
            self.since_check.store(0, Ordering::Relaxed);
            self.rotate_if_needed(guard);
        }
        Ok(())
    }

    /// Renames a full log to `runs.1.jsonl` (replacing the previous one),
    /// and reopens the log when this or another process rotated it.
    fn rotate_if_needed(&self, guard: &mut Option<File>) {
        let Some(file) = guard.as_ref() else { return };
        let (Ok(ours), Ok(named)) = (file.metadata(), fs::metadata(&self.path)) else {
            *guard = None;
            return;
        };
        if !same_file(&ours, &named) {
            // Another process rotated it: follow the name.
            *guard = None;
            return;
        }
        if named.len() >= self.limit {
            if let Err(e) = fs::rename(&self.path, &self.old) {
                tracing::debug!(path = %self.path.display(), error = %e, "cannot rotate the run log");
            }
            *guard = None;
        }
    }
}

/// Reads a cache's run log: the public API for tools (the `joblib`
/// command's `cache ls`, `cache show`, `cache log` and report).
///
/// ```
/// use joblib_memory::{Memory, RunLog, RunOutcome};
///
/// let dir = tempfile::tempdir()?;
/// let memory = Memory::builder(dir.path()).verbose(0).build()?;
/// let square = memory.cache("doc::square", |x: u64| x * x);
/// square.call(3);
/// square.call(3);
/// let log = RunLog::open(dir.path());
/// let runs = log.records()?;
/// assert_eq!(runs.len(), 2);
/// assert_eq!(runs[0].outcome, RunOutcome::Computed);
/// assert_eq!(runs[1].outcome, RunOutcome::Hit);
/// let totals = log.totals(&runs);
/// assert_eq!((totals[0].hits, totals[0].computes), (1, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RunLog {
    location: PathBuf,
}

/// Per-function totals over run records, from [`RunLog::totals`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FunctionTotals {
    /// The function's name.
    pub function: String,
    /// Calls answered from the cache.
    pub hits: u64,
    /// Calls computed (first time, recomputed, or not stored).
    pub computes: u64,
    /// The compute time of the entries answered from the cache, summed
    /// over hits: the time the cache saved.
    pub time_saved: Duration,
    /// Time spent computing.
    pub compute_time: Duration,
    /// The last call.
    pub last_call: SystemTime,
}

/// Per-entry totals over run records, from [`RunLog::entry_totals`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EntryTotals {
    /// Times the entry was answered from the cache.
    pub served: u64,
    /// Times it was computed.
    pub computed: u64,
    /// The last call that used it.
    pub last_call: SystemTime,
}

/// Follows a run log as it grows (`joblib cache log --follow`); made by
/// [`RunLog::follow`].
#[derive(Debug)]
pub struct RunLogFollower {
    path: PathBuf,
    file: Option<File>,
    offset: u64,
    /// A partial last line, completed by a later poll.
    pending: Vec<u8>,
}

impl RunLogFollower {
    /// The records appended since the last poll (all records of the
    /// current file on the first one). Follows rotation: a new file at the
    /// log's name is read from its start.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the log when it cannot be read.
    pub fn poll(&mut self) -> Result<Vec<RunRecord>, Error> {
        let named = match fs::metadata(&self.path) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&self.path, "looking up", e)),
        };
        let rotated = match (&self.file, &named) {
            (Some(f), Some(n)) => f.metadata().map(|m| !same_file(&m, n)).unwrap_or(true),
            (None, _) => true,
            (Some(_), None) => false,
        };
        let mut out = Vec::new();
        if rotated {
            // Finish the old file first: records appended before the
            // rotation are still there.
            if self.file.is_some() {
                out.extend(self.read_more()?);
            }
            if named.is_none() {
                self.file = None;
                return Ok(out);
            }
            self.file = Some(File::open(&self.path).map_err(|e| io_err(&self.path, "opening", e))?);
            self.offset = 0;
            self.pending.clear();
        }
        out.extend(self.read_more()?);
        Ok(out)
    }

    fn read_more(&mut self) -> Result<Vec<RunRecord>, Error> {
        let Some(file) = self.file.as_mut() else {
            return Ok(Vec::new());
        };
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|e| io_err(&self.path, "reading", e))?;
        let mut bytes = std::mem::take(&mut self.pending);
        let n = file
            .read_to_end(&mut bytes)
            .map_err(|e| io_err(&self.path, "reading", e))?;
        self.offset += n as u64;
        // Keep an incomplete last line for the next poll.
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.pending = bytes.split_off(complete);
        Ok(parse(&bytes))
    }
}

/// The records of the complete lines in `bytes`. A line damaged by a
/// writer that died mid-append is skipped; the record appended after it on
/// the same line is recovered.
fn parse(bytes: &[u8]) -> Vec<RunRecord> {
    const START: &[u8] = b"{\"time\":";
    let mut out = Vec::new();
    for line in bytes.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        if let Ok(r) = serde_json::from_slice::<RunRecord>(line) {
            out.push(r);
            continue;
        }
        let tail = line
            .windows(START.len())
            .rposition(|w| w == START)
            .filter(|&at| at > 0);
        if let Some(r) = tail.and_then(|at| serde_json::from_slice::<RunRecord>(&line[at..]).ok()) {
            out.push(r);
        }
    }
    out
}

impl RunLog {
    /// The run log of the cache at `location` (nothing is created; a cache
    /// without a log reads as empty).
    pub fn open(location: impl Into<PathBuf>) -> RunLog {
        RunLog {
            location: location.into(),
        }
    }

    /// The file records are appended to (`runs.jsonl`); the previous one,
    /// after rotation, is `runs.1.jsonl` beside it.
    pub fn path(&self) -> PathBuf {
        self.location.join(RUN_LOG)
    }

    /// Every record kept, oldest first (the rotated file, then the
    /// current one).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the file when a log file exists but cannot be
    /// read.
    pub fn records(&self) -> Result<Vec<RunRecord>, Error> {
        let mut out = Vec::new();
        for name in [RUN_LOG_OLD, RUN_LOG] {
            let path = self.location.join(name);
            match fs::read(&path) {
                Ok(bytes) => out.extend(parse(&bytes)),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(path, "reading", e)),
            }
        }
        Ok(out)
    }

    /// The records of `function` (all when `None`) at or after `since`
    /// (all when `None`), oldest first.
    ///
    /// # Errors
    ///
    /// As [`records`](Self::records).
    pub fn query(
        &self,
        function: Option<&str>,
        since: Option<SystemTime>,
    ) -> Result<Vec<RunRecord>, Error> {
        let since = since.map(unix_seconds);
        let mut records = self.records()?;
        records.retain(|r| {
            function.is_none_or(|f| r.function == f) && since.is_none_or(|t| r.time >= t)
        });
        Ok(records)
    }

    /// A follower reading records as they are appended.
    pub fn follow(&self) -> RunLogFollower {
        RunLogFollower {
            path: self.path(),
            file: None,
            offset: 0,
            pending: Vec::new(),
        }
    }

    /// Per-function totals over `records`, sorted by function name. The
    /// time saved by a hit is the compute time of its entry: the one the
    /// hit's record carries, or (for records of earlier versions and
    /// shelved hits) the entry's last computation in `records`, or else
    /// the entry's `metadata.json` in the cache.
    pub fn totals(&self, records: &[RunRecord]) -> Vec<FunctionTotals> {
        let store = FsStore::existing(self.location.clone());
        let mut compute_time: HashMap<(&str, &str), f64> = HashMap::new();
        let mut by_function: HashMap<&str, FunctionTotals> = HashMap::new();
        for r in records {
            let t = by_function
                .entry(&r.function)
                .or_insert_with(|| FunctionTotals {
                    function: r.function.clone(),
                    hits: 0,
                    computes: 0,
                    time_saved: Duration::ZERO,
                    compute_time: Duration::ZERO,
                    last_call: r.at(),
                });
            t.last_call = t.last_call.max(r.at());
            let key = r.digest.as_deref().map(|d| (r.function.as_str(), d));
            if r.outcome == RunOutcome::Hit {
                t.hits += 1;
                let Some(key) = key else { continue };
                if let Some(saved) = r.compute_seconds {
                    t.time_saved += Duration::try_from_secs_f64(saved).unwrap_or_default();
                    compute_time.insert(key, saved);
                    continue;
                }
                let saved = *compute_time.entry(key).or_insert_with(|| {
                    d_from_hex(key.1)
                        .and_then(|d| store.metadata(key.0, &d).ok().flatten())
                        .map_or(0.0, |m| m.duration)
                });
                t.time_saved += Duration::try_from_secs_f64(saved).unwrap_or_default();
            } else {
                t.computes += 1;
                t.compute_time += r.duration();
                if let Some(key) = key {
                    compute_time.insert(key, r.seconds);
                }
            }
        }
        let mut out: Vec<FunctionTotals> = by_function.into_values().collect();
        out.sort_by(|a, b| a.function.cmp(&b.function));
        out
    }

    /// Per-entry totals over `records`, keyed by function name and
    /// argument digest (hex): how often each entry was served and
    /// computed, and when it was last used (`joblib cache show`).
    pub fn entry_totals(records: &[RunRecord]) -> HashMap<(String, String), EntryTotals> {
        let mut out: HashMap<(String, String), EntryTotals> = HashMap::new();
        for r in records {
            let Some(digest) = &r.digest else { continue };
            let e = out
                .entry((r.function.clone(), digest.clone()))
                .or_insert(EntryTotals {
                    served: 0,
                    computed: 0,
                    last_call: r.at(),
                });
            e.last_call = e.last_call.max(r.at());
            if r.outcome == RunOutcome::Hit {
                e.served += 1;
            } else {
                e.computed += 1;
            }
        }
        out
    }
}

/// A digest from its hex form.
fn d_from_hex(hex: &str) -> Option<joblib_hash::Digest> {
    hex.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_line_loses_only_its_own_record() {
        let good = r#"{"time":1.0,"function":"f","fingerprint":"v","digest":"ab","args":"1","outcome":"hit","seconds":0.1,"bytes":3,"pid":1,"host":"h"}"#;
        let torn = &good[..40];
        let text = format!("{good}\n{torn}{good}\n{good}\n{torn}");
        let records = parse(text.as_bytes());
        assert_eq!(records.len(), 3);
        assert_eq!(records[0].outcome, RunOutcome::Hit);
        assert_eq!(records[0].reason, None);
    }
}
