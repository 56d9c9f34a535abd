//! [`FsStore`], the default store: one directory per entry.

use std::fs::{self, File};
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use joblib_hash::Digest;
use serde::{Deserialize, Serialize};

use crate::encode::{Hex, decode_segment, function_dir, function_path, is_digest_name};
use crate::error::{Error, io_err};
use crate::metadata::{Metadata, unix_seconds};
use crate::runlog::{RUN_LOG, RUN_LOG_OLD};
use crate::store::{EntryInfo, OutputSink, PutOutcome, StoreBackend, StoredOutput, WriteOutput};
use crate::warn::{Cause, Warner, Warnings};

/// The result file of an entry.
pub(crate) const OUTPUT: &str = "output.jbl";
/// The metadata file of an entry.
pub(crate) const METADATA: &str = "metadata.json";
/// The file in a function's directory holding its fingerprint.
pub(crate) const FUNC: &str = "func.json";

/// How deep function names may nest (a guard against cycles and abuse
/// while walking the tree).
const MAX_DEPTH: usize = 64;

/// The default [`StoreBackend`]: a directory holding, for each function,
/// one directory per argument digest with `output.jbl` (whose modification
/// time is the last access) and `metadata.json` (see
/// `docs/cache-layout.md`).
///
/// Entries are built in a uniquely named temporary directory and renamed
/// into place, and removed by renaming them away first, so any number of
/// threads and processes may share one directory.
#[derive(Debug, Clone)]
pub struct FsStore {
    root: PathBuf,
    /// Where the store's warnings go when a memory made it; `tracing`
    /// otherwise.
    warner: Arc<Warner>,
}

#[derive(Serialize, Deserialize)]
struct FuncRecord {
    function: String,
    fingerprint: String,
}

/// A name no other thread or process uses at the same time, starting with
/// `.` so it can never be taken for an entry or a function.
fn unique_name(kind: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(".{kind}-{}-{n}-{nanos:08x}", std::process::id())
}

impl FsStore {
    /// Opens (creating if needed) the store at `root`, and writes a
    /// `.gitignore` holding `*` there unless one exists.
    ///
    /// A `.gitignore` that cannot be written is a warning, shown as
    /// [`Warnings::Auto`](crate::Warnings::Auto) shows a
    /// [`Memory`](crate::Memory)'s: to the `tracing` subscriber if one is
    /// installed, else once on stderr. A `Memory` passes its own choice.
    pub fn new(root: impl Into<PathBuf>) -> Result<FsStore, Error> {
        FsStore::create(root.into(), Arc::new(Warner::new(Warnings::Auto)))
    }

    /// [`FsStore::new`], warning through `warner`.
    pub(crate) fn create(root: impl Into<PathBuf>, warner: Arc<Warner>) -> Result<FsStore, Error> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| io_err(&root, "creating the cache directory", e))?;
        let store = FsStore { root, warner };
        let ignore = store.root.join(".gitignore");
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&ignore)
            .and_then(|mut f| {
                use io::Write;
                f.write_all(b"# Created by joblib-memory: cached results.\n*\n")
            });
        match written {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            // A read-only cache still serves hits.
            Err(e) => store.warn(
                Cause::GitIgnore,
                "",
                format_args!(
                    "cannot write {}: {e}; git may track the cache, and the joblib command \
                     will not take the directory for a cache",
                    ignore.display()
                ),
            ),
        }
        Ok(store)
    }

    /// Emits a warning through the memory's warner (or, for a store made by
    /// [`FsStore::new`] or [`FsStore::existing`], one choosing as
    /// [`Warnings::Auto`](crate::Warnings::Auto)).
    fn warn(&self, cause: Cause, function: &str, message: std::fmt::Arguments<'_>) {
        self.warner.warn(cause, function, message);
    }

    /// The store at `root` as it is, creating nothing: for reading a cache
    /// (tools, handles received from another process).
    pub fn existing(root: impl Into<PathBuf>) -> FsStore {
        FsStore {
            root: root.into(),
            warner: Arc::new(Warner::new(Warnings::Auto)),
        }
    }

    /// Checks that files can be created in the store's directory, by
    /// creating and removing an empty one.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the directory when it is not writable.
    pub fn check_writable(&self) -> Result<(), Error> {
        let probe = self.root.join(unique_name("probe"));
        File::create(&probe).map_err(|e| io_err(&self.root, "writing a file in", e))?;
        fs::remove_file(&probe).map_err(|e| io_err(&probe, "deleting", e))
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of one entry.
    pub fn entry_dir(&self, function: &str, digest: &Digest) -> PathBuf {
        let mut dir = function_dir(&self.root, function);
        dir.push(digest.to_hex());
        dir
    }

    /// Renames `dir` away beside itself, then deletes it: readers see the
    /// whole entry or none. `false` if `dir` did not exist.
    fn remove_dir(&self, dir: &Path) -> Result<bool, Error> {
        let Some(parent) = dir.parent() else {
            return Ok(false);
        };
        let trash = parent.join(unique_name("del"));
        match fs::rename(dir, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err(dir, "renaming away for deletion", e)),
        }
        // Something else than a directory (put there from outside) is
        // removed too.
        let removed = match fs::symlink_metadata(&trash) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&trash),
            _ => fs::remove_file(&trash),
        };
        removed.map_err(|e| io_err(&trash, "deleting", e))?;
        Ok(true)
    }

    /// Removes `.tmp-*` and `.del-*` leftovers older than `age` below
    /// `dir`. Best effort: another process may be removing them too.
    fn sweep(&self, dir: &Path, age: Duration, depth: usize, removed: &mut usize) {
        let Ok(read) = fs::read_dir(dir) else { return };
        let now = SystemTime::now();
        for child in read.flatten() {
            let name = child.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(kind) = child.file_type() else {
                continue;
            };
            if name.starts_with(".tmp-") || name.starts_with(".del-") || name.starts_with(".probe-")
            {
                let old = child
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| now.duration_since(t).is_ok_and(|d| d > age));
                if old {
                    let path = child.path();
                    let gone = if kind.is_dir() {
                        fs::remove_dir_all(&path)
                    } else {
                        fs::remove_file(&path)
                    };
                    if gone.is_ok() {
                        tracing::debug!(path = %path.display(), "removed a leftover of an interrupted write");
                        *removed += 1;
                    }
                }
            } else if kind.is_dir() && !is_digest_name(name) && depth < MAX_DEPTH {
                self.sweep(&child.path(), age, depth + 1, removed);
            }
        }
    }

    /// Lists the entries below `dir` (a function's directory, named
    /// `function`) and recurses into nested function directories.
    fn walk(
        &self,
        dir: &Path,
        function: &str,
        depth: usize,
        out: &mut Vec<EntryInfo>,
    ) -> Result<(), Error> {
        let read = match fs::read_dir(dir) {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(dir, "listing", e)),
        };
        for child in read {
            let child = child.map_err(|e| io_err(dir, "listing", e))?;
            let name = child.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let is_dir = child.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if !is_dir {
                continue;
            }
            let path = child.path();
            if is_digest_name(name) && depth > 0 {
                let Ok(digest) = name.parse::<Digest>() else {
                    continue;
                };
                // Entries removed while we look are simply skipped.
                let Some((size, last_access)) = stat_entry(&path) else {
                    continue;
                };
                out.push(EntryInfo::new(
                    function.to_string(),
                    digest,
                    size,
                    last_access,
                ));
            } else if depth < MAX_DEPTH {
                let Some(segment) = decode_segment(name) else {
                    continue;
                };
                let nested = if depth == 0 {
                    segment
                } else {
                    format!("{function}::{segment}")
                };
                self.walk(&path, &nested, depth + 1, out)?;
            }
        }
        Ok(())
    }
}

impl StoreBackend for FsStore {
    fn output(&self, function: &str, digest: &Digest) -> Result<Option<StoredOutput>, Error> {
        let hex = Hex::of(digest);
        Ok(Some(StoredOutput::File(function_path(
            &self.root,
            function,
            &[hex.as_str(), OUTPUT],
        ))))
    }

    fn contains(&self, function: &str, digest: &Digest) -> Result<bool, Error> {
        let mut path = self.entry_dir(function, digest);
        path.push(OUTPUT);
        match fs::metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(path, "looking up", e)),
        }
    }

    fn metadata(&self, function: &str, digest: &Digest) -> Result<Option<Metadata>, Error> {
        let dir = self.entry_dir(function, digest);
        let path = dir.join(METADATA);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path, "reading", e)),
        };
        let mut meta: Metadata = serde_json::from_slice(&bytes).map_err(|e| Error::Metadata {
            path: path.clone(),
            message: e.to_string(),
        })?;
        meta.last_access = fs::metadata(dir.join(OUTPUT))
            .and_then(|m| m.modified())
            .ok()
            .map(unix_seconds);
        Ok(Some(meta))
    }

    fn record_access(&self, function: &str, digest: &Digest) -> Result<(), Error> {
        let mut path = self.entry_dir(function, digest);
        path.push(OUTPUT);
        let file = match File::open(&path) {
            Ok(f) => f,
            // Removed meanwhile: nothing to record.
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(path, "opening", e)),
        };
        file.set_modified(SystemTime::now())
            .map_err(|e| io_err(&path, "recording the access time of", e))
    }

    fn record_access_open(
        &self,
        function: &str,
        digest: &Digest,
        output: &File,
    ) -> Result<(), Error> {
        // The last access is the result file's modification time: setting
        // it on the open file creates and rewrites nothing, and unlike
        // atime it works on `noatime` mounts.
        output.set_modified(SystemTime::now()).map_err(|e| {
            let path = self.entry_dir(function, digest).join(OUTPUT);
            io_err(path, "recording the access time of", e)
        })
    }

    fn put(
        &self,
        function: &str,
        digest: &Digest,
        metadata: &mut Metadata,
        write: &mut WriteOutput<'_>,
    ) -> Result<PutOutcome, Error> {
        let fdir = function_dir(&self.root, function);
        let target = fdir.join(digest.to_hex());
        let tmp = fdir.join(unique_name("tmp"));
        // The function's directory usually exists: try without creating it.
        if let Err(e) = fs::create_dir(&tmp) {
            if e.kind() != ErrorKind::NotFound {
                return Err(io_err(&tmp, "creating the directory", e));
            }
            fs::create_dir_all(&fdir).map_err(|e| io_err(&fdir, "creating the directory", e))?;
            fs::create_dir(&tmp).map_err(|e| io_err(&tmp, "creating the directory", e))?;
        }
        let result = (|| {
            let output = tmp.join(OUTPUT);
            write(OutputSink::File(&output))?;
            metadata.size = fs::metadata(&output)
                .map_err(|e| io_err(&output, "reading the size of", e))?
                .len();
            let meta_path = tmp.join(METADATA);
            let json = serde_json::to_vec_pretty(&*metadata).map_err(|e| Error::Metadata {
                path: meta_path.clone(),
                message: e.to_string(),
            })?;
            fs::write(&meta_path, json).map_err(|e| io_err(&meta_path, "writing", e))?;
            for attempt in 0..2 {
                match fs::rename(&tmp, &target) {
                    Ok(()) => return Ok(PutOutcome::Stored),
                    // Another writer won the race: its entry stands.
                    Err(_) if target.join(OUTPUT).exists() => {
                        return Ok(PutOutcome::AlreadyPresent);
                    }
                    // An entry without its result (damaged by hand or by a
                    // crash of something else than this crate): replace it.
                    Err(_) if attempt == 0 && target.is_dir() => {
                        self.warn(
                            Cause::Replaced,
                            function,
                            format_args!(
                                "replacing a cached entry of {function} that has no result file \
                                 ({}): it was damaged outside joblib",
                                target.display()
                            ),
                        );
                        self.remove_dir(&target)?;
                    }
                    Err(e) => return Err(io_err(&target, "renaming the new entry into place", e)),
                }
            }
            Err(io_err(
                &target,
                "renaming the new entry into place",
                io::Error::other("the target kept reappearing"),
            ))
        })();
        if !matches!(result, Ok(PutOutcome::Stored)) {
            let _ = fs::remove_dir_all(&tmp);
        }
        result
    }

    fn remove(&self, function: &str, digest: &Digest) -> Result<bool, Error> {
        self.remove_dir(&self.entry_dir(function, digest))
    }

    fn fingerprint(&self, function: &str) -> Result<Option<String>, Error> {
        let path = function_dir(&self.root, function).join(FUNC);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path, "reading", e)),
        };
        let record: FuncRecord = serde_json::from_slice(&bytes).map_err(|e| Error::Metadata {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(Some(record.fingerprint))
    }

    fn set_fingerprint(&self, function: &str, fingerprint: &str) -> Result<(), Error> {
        let fdir = function_dir(&self.root, function);
        fs::create_dir_all(&fdir).map_err(|e| io_err(&fdir, "creating the directory", e))?;
        let path = fdir.join(FUNC);
        let record = FuncRecord {
            function: function.to_string(),
            fingerprint: fingerprint.to_string(),
        };
        let json = serde_json::to_vec_pretty(&record).map_err(|e| Error::Metadata {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let tmp = fdir.join(unique_name("tmp"));
        fs::write(&tmp, json).map_err(|e| io_err(&tmp, "writing", e))?;
        fs::rename(&tmp, &path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            io_err(&path, "renaming into place", e)
        })
    }

    fn clear_function(&self, function: &str) -> Result<usize, Error> {
        let fdir = function_dir(&self.root, function);
        let read = match fs::read_dir(&fdir) {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err(fdir, "listing", e)),
        };
        let mut removed = 0;
        for child in read {
            let child = child.map_err(|e| io_err(&fdir, "listing", e))?;
            if child.file_name().to_str().is_some_and(is_digest_name)
                && self.remove_dir(&child.path())?
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn clear(&self) -> Result<(), Error> {
        let read = match fs::read_dir(&self.root) {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&self.root, "listing", e)),
        };
        for child in read {
            let child = child.map_err(|e| io_err(&self.root, "listing", e))?;
            // The run log is a history of calls, not cached results.
            let name = child.file_name();
            if name == ".gitignore" || name == RUN_LOG || name == RUN_LOG_OLD {
                continue;
            }
            let path = child.path();
            if child.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                self.remove_dir(&path)?;
            } else {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(path, "deleting", e)),
                }
            }
        }
        Ok(())
    }

    fn entries(&self) -> Result<Vec<EntryInfo>, Error> {
        let mut out = Vec::new();
        self.walk(&self.root, "", 0, &mut out)?;
        Ok(out)
    }

    fn remove_leftovers(&self, age: Duration) -> Result<usize, Error> {
        let mut removed = 0;
        self.sweep(&self.root, age, 0, &mut removed);
        Ok(removed)
    }

    fn location(&self) -> Option<&Path> {
        Some(&self.root)
    }
}

/// The size of an entry's result and its last access; `None` when the
/// entry has no result (removed meanwhile, or damaged).
///
/// The last access is `output.jbl`'s modification time, which a hit sets
/// (`FsStore::record_access`): one `stat` per entry. The store's listing
/// and `CacheDir` (the `joblib` command) both use this rule, so
/// `reduce_size` and `joblib cache ls` agree on what was used last.
pub(crate) fn stat_entry(dir: &Path) -> Option<(u64, SystemTime)> {
    let out_meta = fs::metadata(dir.join(OUTPUT)).ok()?;
    let last_access = out_meta.modified().unwrap_or(UNIX_EPOCH);
    Some((out_meta.len(), last_access))
}
