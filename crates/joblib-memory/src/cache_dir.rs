//! [`CacheDir`]: a cache directory read from outside the program that
//! writes it, for tools such as the `joblib` command.

use std::ffi::OsString;
use std::fs;
use std::io::{self, ErrorKind};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::SystemTime;

use joblib_hash::Digest;

use crate::encode::{decode_segment, function_dir, is_digest_name};
use crate::error::{Error, io_err};
use crate::fs_store::{FUNC, FsStore, stat_entry};
use crate::metadata::Metadata;
use crate::store::StoreBackend;

/// How deep function names may nest while walking (as in the store).
const MAX_DEPTH: usize = 64;
/// Entries one thread of [`CacheDir::functions`] takes at least: below
/// that, starting a thread costs more than the `stat` calls it saves.
const ENTRIES_PER_THREAD: usize = 2048;
/// Threads of [`CacheDir::functions`] even on a machine with fewer cores:
/// a `stat` waits on the file system as much as it computes (much more on
/// NFS), so more calls in flight than cores shorten the listing.
const MIN_THREADS: usize = 8;
/// The file every cache gets when [`FsStore::new`] creates it...
const GITIGNORE: &str = ".gitignore";
/// ... and how it starts.
const GITIGNORE_HEADER: &str = "# Created by joblib-memory";

/// A directory written by a [`Memory`](crate::Memory) (through the
/// default [`FsStore`]), opened for listing, checking and cleaning by a
/// tool rather than by the program that caches into it.
///
/// Opening checks that the directory is a cache, so that a mistyped path
/// given to a cleaning tool cannot make it delete an unrelated directory.
#[derive(Debug, Clone)]
pub struct CacheDir {
    store: FsStore,
}

/// One cached function of a [`CacheDir`], as [`CacheDir::functions`]
/// lists it: read from directory listings and one `stat` call per entry,
/// never from the results or their metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FunctionSummary {
    /// The function's name.
    pub function: String,
    /// The fingerprint recorded for it (`func.json`), if any.
    pub fingerprint: Option<String>,
    /// How many entries (stored results) it has.
    pub entries: u64,
    /// The total size of its results, in bytes.
    pub bytes: u64,
    /// The latest access (write or hit) of any of its entries; `None`
    /// without entries.
    pub last_access: Option<SystemTime>,
}

/// One entry of a function, as [`CacheDir::entries_of`] lists it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StoredEntry {
    /// The argument digest: the entry's name.
    pub digest: Digest,
    /// The size of the stored result, in bytes.
    pub size: u64,
    /// When the entry was last written or read.
    pub last_access: SystemTime,
    /// Its `metadata.json`, or why it could not be read (missing or
    /// invalid).
    pub metadata: Result<Metadata, String>,
}

impl CacheDir {
    /// Opens the cache at `root` without creating or changing anything.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when `root` does not exist, is not a directory, or
    /// is not a cache (it has no `.gitignore` written by joblib-memory,
    /// which every cache gets when it is created).
    pub fn open(root: impl Into<PathBuf>) -> Result<CacheDir, Error> {
        let root = root.into();
        let meta = fs::metadata(&root).map_err(|e| io_err(&root, "opening the cache", e))?;
        if !meta.is_dir() {
            return Err(io_err(
                &root,
                "opening the cache",
                io::Error::new(ErrorKind::InvalidInput, "not a directory"),
            ));
        }
        let marker = root.join(GITIGNORE);
        let is_cache = fs::read(&marker)
            .map(|text| text.starts_with(GITIGNORE_HEADER.as_bytes()))
            .unwrap_or(false);
        if !is_cache {
            return Err(io_err(
                &root,
                "opening the cache",
                io::Error::new(
                    ErrorKind::InvalidInput,
                    "not a joblib cache (it has no .gitignore written by joblib-memory)",
                ),
            ));
        }
        Ok(CacheDir {
            store: FsStore::existing(root),
        })
    }

    /// The cache's directory.
    pub fn root(&self) -> &Path {
        self.store.root()
    }

    /// The store, for the [`StoreBackend`] operations (`entries`,
    /// `remove`, `clear_function`, ...).
    pub fn store(&self) -> &FsStore {
        &self.store
    }

    /// Whether the cache knows `function`: it has a recorded fingerprint
    /// or at least one entry. (A directory that only holds nested
    /// functions, `a` for `a::f`, is not a function.)
    pub fn has_function(&self, function: &str) -> bool {
        let dir = function_dir(self.root(), function);
        if dir.join(FUNC).is_file() {
            return true;
        }
        fs::read_dir(&dir).is_ok_and(|mut read| {
            read.any(|child| {
                child.is_ok_and(|c| c.file_name().to_str().is_some_and(is_digest_name))
            })
        })
    }

    /// Every function with a directory in the cache, sorted by name, with
    /// its number of entries, their total size and latest access.
    ///
    /// Reads only directory listings, each function's `func.json` and one
    /// `stat` call per entry (`output.jbl`: its size, and its modification
    /// time, which is the entry's last access), spread
    /// over the machine's cores: a cache of 100,000 entries is listed in a
    /// fraction of a second.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a directory cannot be listed. Entries removed
    /// while the listing runs are left out.
    pub fn functions(&self) -> Result<Vec<FunctionSummary>, Error> {
        let mut found = Vec::new();
        collect_functions(&self.store, self.root(), "", 0, &mut found)?;
        found.sort_by(|a, b| a.function.cmp(&b.function));
        // Stat the entries on all cores, each thread a contiguous range of
        // (function, entry) pairs.
        let jobs: Vec<(usize, &OsString)> = found
            .iter()
            .enumerate()
            .flat_map(|(i, f)| f.entry_names.iter().map(move |n| (i, n)))
            .collect();
        let threads = thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .max(MIN_THREADS)
            .min(jobs.len() / ENTRIES_PER_THREAD + 1);
        let per_thread = jobs.len().div_ceil(threads.max(1)).max(1);
        let partials: Vec<Vec<Totals>> = thread::scope(|s| {
            let found = &found;
            // A chunk whose thread cannot be started is done on this one.
            let mut inline = Vec::new();
            let mut handles = Vec::new();
            for chunk in jobs.chunks(per_thread) {
                match thread::Builder::new()
                    .name("joblib-cache-ls".into())
                    .spawn_scoped(s, move || stat_entries(found, chunk))
                {
                    Ok(h) => handles.push(h),
                    Err(_) => inline.push(stat_entries(found, chunk)),
                }
            }
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .chain(inline)
                .collect()
        });
        let mut totals = vec![Totals::default(); found.len()];
        for partial in partials {
            for (t, p) in totals.iter_mut().zip(partial) {
                t.merge(p);
            }
        }
        Ok(found
            .into_iter()
            .zip(totals)
            .filter(|(f, t)| f.fingerprint.is_some() || t.entries > 0)
            .map(|(f, t)| FunctionSummary {
                function: f.function,
                fingerprint: f.fingerprint,
                entries: t.entries,
                bytes: t.bytes,
                last_access: t.last_access,
            })
            .collect())
    }

    /// The entries of one function (not those of functions nested below
    /// its name) with their metadata, most recently used first; `None`
    /// when the cache has no directory for `function`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the function's directory cannot be listed. An
    /// entry whose metadata cannot be read is listed with the reason in
    /// [`StoredEntry::metadata`].
    pub fn entries_of(&self, function: &str) -> Result<Option<Vec<StoredEntry>>, Error> {
        let dir = function_dir(self.root(), function);
        let read = match fs::read_dir(&dir) {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(dir, "listing", e)),
        };
        let mut out = Vec::new();
        for child in read {
            let child = child.map_err(|e| io_err(&dir, "listing", e))?;
            let name = child.file_name();
            let Some(digest) = name
                .to_str()
                .filter(|n| is_digest_name(n))
                .and_then(|n| n.parse::<Digest>().ok())
            else {
                continue;
            };
            let path = child.path();
            let Some((size, last_access)) = stat_entry(&path) else {
                continue;
            };
            let metadata = match self.store.metadata(function, &digest) {
                Ok(Some(m)) => Ok(m),
                Ok(None) => Err("metadata.json is missing".to_string()),
                Err(e) => Err(e.to_string()),
            };
            out.push(StoredEntry {
                digest,
                size,
                last_access,
                metadata,
            });
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.last_access));
        Ok(Some(out))
    }
}

/// A function directory found by the walk.
struct FoundFunction {
    function: String,
    dir: PathBuf,
    fingerprint: Option<String>,
    entry_names: Vec<OsString>,
}

/// What the `stat` calls of one function's entries add up to.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    entries: u64,
    bytes: u64,
    last_access: Option<SystemTime>,
}

impl Totals {
    fn merge(&mut self, other: Totals) {
        self.entries += other.entries;
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.last_access = self.last_access.max(other.last_access);
    }
}

fn stat_entries(found: &[FoundFunction], jobs: &[(usize, &OsString)]) -> Vec<Totals> {
    let mut totals = vec![Totals::default(); found.len()];
    for &(i, name) in jobs {
        let Some((size, last_access)) = stat_entry(&found[i].dir.join(name)) else {
            continue;
        };
        let t = &mut totals[i];
        t.entries += 1;
        t.bytes = t.bytes.saturating_add(size);
        t.last_access = t.last_access.max(Some(last_access));
    }
    totals
}

/// Lists `dir` (the directory of `function`, or the root when `depth` is
/// 0): its entries, its fingerprint, and recursively its nested functions.
fn collect_functions(
    store: &FsStore,
    dir: &Path,
    function: &str,
    depth: usize,
    out: &mut Vec<FoundFunction>,
) -> Result<(), Error> {
    let read = match fs::read_dir(dir) {
        Ok(r) => r,
        // Removed while we look (a concurrent `clear`).
        Err(e) if e.kind() == ErrorKind::NotFound && depth > 0 => return Ok(()),
        Err(e) => return Err(io_err(dir, "listing", e)),
    };
    let mut entry_names = Vec::new();
    let mut has_func = false;
    let mut nested = Vec::new();
    for child in read {
        let child = child.map_err(|e| io_err(dir, "listing", e))?;
        let name = child.file_name();
        let Some(text) = name.to_str() else { continue };
        if text.starts_with('.') {
            continue;
        }
        if depth > 0 && text == FUNC {
            has_func = true;
            continue;
        }
        if !child.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        if depth > 0 && is_digest_name(text) {
            entry_names.push(name);
        } else if depth < MAX_DEPTH
            && let Some(segment) = decode_segment(text)
        {
            nested.push((child.path(), segment));
        }
    }
    if depth > 0 {
        // An unreadable `func.json` is listed as no fingerprint.
        let fingerprint = if has_func {
            store.fingerprint(function).ok().flatten()
        } else {
            None
        };
        out.push(FoundFunction {
            function: function.to_string(),
            dir: dir.to_path_buf(),
            fingerprint,
            entry_names,
        });
    }
    for (path, segment) in nested {
        let name = if depth == 0 {
            segment
        } else {
            format!("{function}::{segment}")
        };
        collect_functions(store, &path, &name, depth + 1, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Memory;
    use crate::fs_store::OUTPUT;

    #[test]
    fn lists_functions_and_entries() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Memory::new(dir.path());
        let square = memory.cache("m::square", |x: u64| x * x).version("1");
        let nested = memory
            .cache("m::square::inner", |x: u64| x + 1)
            .version("2");
        for x in 0..5 {
            square.call(x);
        }
        nested.call(1);
        let cache = CacheDir::open(dir.path()).unwrap();
        let functions = cache.functions().unwrap();
        let names: Vec<_> = functions.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(names, ["m::square", "m::square::inner"]);
        assert_eq!(functions[0].entries, 5);
        assert_eq!(functions[0].fingerprint.as_deref(), Some("version:1"));
        let sizes: u64 = cache
            .store()
            .entries()
            .unwrap()
            .iter()
            .filter(|e| e.function == "m::square")
            .map(|e| e.size)
            .sum();
        assert_eq!(functions[0].bytes, sizes);
        assert!(functions[0].last_access.is_some());
        let entries = cache.entries_of("m::square").unwrap().unwrap();
        assert_eq!(entries.len(), 5);
        let args: Vec<String> = entries
            .iter()
            .map(|e| e.metadata.as_ref().unwrap().args.clone())
            .collect();
        assert!(args.contains(&"3".to_string()), "{args:?}");
        assert!(cache.entries_of("m::missing").unwrap().is_none());
        assert!(cache.has_function("m::square::inner"));
        assert!(!cache.has_function("m::missing"));
        assert!(
            !cache.has_function("m"),
            "a directory of nested functions only"
        );
    }

    #[test]
    fn a_hit_is_the_last_access() {
        let dir = tempfile::tempdir().unwrap();
        let memory = Memory::new(dir.path());
        let square = memory.cache("m::square", |x: u64| x * x).version("1");
        square.call(1);
        square.call(2);
        let cache = CacheDir::open(dir.path()).unwrap();
        // Age both entries, then hit one: it alone becomes recent.
        let old = SystemTime::now() - std::time::Duration::from_secs(3600);
        for e in cache.entries_of("m::square").unwrap().unwrap() {
            let out = cache.store().entry_dir("m::square", &e.digest).join(OUTPUT);
            fs::File::options()
                .write(true)
                .open(out)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        let before = cache.functions().unwrap()[0].last_access.unwrap();
        assert!(before <= old + std::time::Duration::from_secs(1));
        square.call(2);
        let after = cache.functions().unwrap()[0].last_access.unwrap();
        assert!(after > old + std::time::Duration::from_secs(1800));
        let entries = cache.entries_of("m::square").unwrap().unwrap();
        assert_eq!(entries[0].metadata.as_ref().unwrap().args, "2");
        assert!(entries[0].last_access > entries[1].last_access);
        // The store's own listing (used by reduce_size) agrees.
        let listed = cache.store().entries().unwrap();
        let newest = listed.iter().max_by_key(|e| e.last_access).unwrap();
        assert_eq!(newest.digest, entries[0].digest);
        assert_eq!(newest.last_access, entries[0].last_access);
    }

    #[test]
    fn refuses_what_is_not_a_cache() {
        let dir = tempfile::tempdir().unwrap();
        let err = CacheDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a joblib cache"), "{err}");
        let missing = CacheDir::open(dir.path().join("nope")).unwrap_err();
        assert!(
            matches!(missing, Error::Io { ref source, .. } if source.kind() == ErrorKind::NotFound)
        );
        let file = dir.path().join("f");
        fs::write(&file, b"x").unwrap();
        let err = CacheDir::open(&file).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
    }
}
