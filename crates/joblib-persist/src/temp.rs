//! Temporary files of [`dump`](crate::dump), named after their writer so a
//! later write can tell a dead writer's leftovers from a live writer's work.
//!
//! A dump writes to `.jbl-<pid>-<start>-<host>-<n>.tmp` in the target's
//! directory and renames it over the target when complete. `<pid>` is the
//! writing process's id, `<start>` its start time (in clock ticks since
//! boot, from `/proc/<pid>/stat` on Linux), `<host>` a tag of the machine's
//! boot and pid namespace (where that pid means that process), and `<n>` a
//! counter within the process. A process killed mid-dump leaves its
//! temporary behind; the next dump into that directory (or a call to
//! [`sweep_dead`]) removes it, because no process with that pid *and* that
//! start time is alive. (A directory of more than 64 files is listed at
//! most once per 100 times its listing takes, so that dumping 10,000 files
//! side by side does not list the directory 10,000 times.) A pid reused by another process has another start
//! time, so the pair is never mistaken for a live writer, and a live
//! writer's temporary is never removed.
//!
//! Only temporaries made under the sweeper's own `<host>` tag are judged:
//! a directory shared with other machines (NFS) or containers (another pid
//! namespace) keeps their writers' files, whose pids mean nothing here.
//! Where the start time or the tag cannot be read (systems without
//! `/proc`), temporaries are named with start `0` and never removed: a
//! leftover is better than a live writer's file deleted.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

const PREFIX: &str = ".jbl-";
const SUFFIX: &str = ".tmp";

/// A temporary file being written, removed on drop unless persisted.
pub(crate) struct TempFile {
    path: Option<PathBuf>,
}

impl TempFile {
    /// Creates a new temporary file in `dir`, named after this process.
    pub(crate) fn create_in(dir: &Path) -> io::Result<(TempFile, File)> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        let (start, host) = match (own_start_time(), host_tag()) {
            (Some(start), Some(host)) => (start, host),
            _ => (0, 0),
        };
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{PREFIX}{pid}-{start}-{host:016x}-{n}{SUFFIX}"));
            // `create_new` gives an ordinary file (0666 less the umask) and
            // never opens a file someone else made under that name.
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => return Ok((TempFile { path: Some(path) }, file)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Renames the temporary file over `target`.
    pub(crate) fn persist(mut self, target: &Path) -> io::Result<()> {
        let Some(path) = self.path.take() else {
            return Err(io::Error::other("temporary file already persisted"));
        };
        std::fs::rename(&path, target).inspect_err(|_| {
            let _ = std::fs::remove_file(&path);
        })
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The writer a temporary file name records (pid, start time, host tag),
/// if it is one of ours.
fn writer_of(name: &str) -> Option<(u32, u64, u64)> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let mut parts = rest.split('-');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    let host = u64::from_str_radix(parts.next()?, 16).ok()?;
    parts.next()?.parse::<u64>().ok()?;
    parts.next().is_none().then_some((pid, start, host))
}

/// Whether `name` (a file name, not a path) is a temporary file of `dump`
/// whose writer has died: the process that created it is gone, or its pid
/// now belongs to a process started at another time.
///
/// Always `false` for other names, for the temporaries of live processes,
/// for those written on another machine or in another pid namespace, and
/// where process start times cannot be read.
pub fn is_dead_writers(name: &str) -> bool {
    match writer_of(name) {
        Some((_, 0, _)) | None => false,
        Some((_, _, host)) if Some(host) != host_tag() => false,
        Some((pid, start, _)) => match start_time(pid) {
            Ok(Some(now)) => now != start,
            Ok(None) => true,
            // Unreadable for another reason (permissions): assume alive.
            Err(_) => false,
        },
    }
}

/// Removes the temporary files that dead writers of `dump` left in `dir`
/// (see [`is_dead_writers`]) and returns how many were removed.
///
/// `dump` calls this for the directory it writes to, so leftovers of a
/// crash disappear at the next write there; a cache or any other program
/// that dumps into its own directories can call it too. Files of live
/// writers and files that are not `dump`'s temporaries are never touched.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("notes.txt"), b"not a temporary")?;
/// // Nothing to remove: no writer died here.
/// assert_eq!(joblib_persist::temp::sweep_dead(dir.path())?, 0);
/// assert!(dir.path().join("notes.txt").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn sweep_dead(dir: &Path) -> io::Result<usize> {
    sweep(dir).map(|(removed, _)| removed)
}

/// [`sweep_dead`], also counting the entries looked at.
fn sweep(dir: &Path) -> io::Result<(usize, usize)> {
    let (mut removed, mut scanned) = (0, 0);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        scanned += 1;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_dead_writers(name) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                // Another sweeper was faster.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok((removed, scanned))
}

/// A directory with at most this many entries is swept before every dump
/// into it: its listing takes microseconds.
const SMALL_DIR: usize = 64;

/// How many times its own duration the last sweep of a larger directory
/// keeps it from being swept again, so that sweeping costs at most about
/// 1% of the time spent dumping into it, however many files it holds.
const SWEEP_SPACING: u32 = 100;

/// What `dump` calls before it writes into `dir`: [`sweep_dead`], so that
/// the leftovers of a crash go at the next write there. A directory that
/// held many files at its last sweep (10,000 results dumped side by side,
/// whose listing takes milliseconds) is swept again only once 100 times
/// that sweep's duration has passed, not before each of 10,000 dumps.
pub(crate) fn sweep_before_dump(dir: &Path) -> io::Result<()> {
    static LAST: OnceLock<Mutex<HashMap<PathBuf, (Instant, Duration)>>> = OnceLock::new();
    let last = LAST.get_or_init(Default::default);
    let recent = last
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(dir)
        .is_some_and(|&(at, took)| at.elapsed() < took.saturating_mul(SWEEP_SPACING));
    if recent {
        return Ok(());
    }
    let start = Instant::now();
    let (_, scanned) = sweep(dir)?;
    let mut last = last.lock().unwrap_or_else(PoisonError::into_inner);
    if scanned <= SMALL_DIR {
        last.remove(dir);
        return Ok(());
    }
    // A program that dumps into ever new large directories keeps a bounded
    // table.
    if last.len() >= 4096 {
        last.clear();
    }
    last.insert(dir.to_path_buf(), (start, start.elapsed()));
    Ok(())
}

/// This process's start time, read once.
fn own_start_time() -> Option<u64> {
    static START: OnceLock<Option<u64>> = OnceLock::new();
    *START.get_or_init(|| start_time(std::process::id()).ok().flatten())
}

/// A tag of this machine's boot and pid namespace: temporaries with
/// another tag were written where our pids mean other processes.
fn host_tag() -> Option<u64> {
    static TAG: OnceLock<Option<u64>> = OnceLock::new();
    *TAG.get_or_init(|| {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let ns = std::fs::read_link("/proc/self/ns/pid").ok()?;
        let key = format!("{}/{}", boot.trim(), ns.display());
        // Never 0, the tag of "unknown".
        Some(twox_hash::XxHash3_64::oneshot(key.as_bytes()).max(1))
    })
}

/// The start time of process `pid` in clock ticks since boot: `Ok(None)`
/// when no such process exists, an error when it cannot be told.
#[cfg(target_os = "linux")]
fn start_time(pid: u32) -> io::Result<Option<u64>> {
    let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // The command name (field 2) is in parentheses and may hold spaces or
    // parentheses itself: fields are counted from the last ')'. Start time
    // is field 22, the 20th after the name.
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc/<pid>/stat");
    let after = stat.rsplit_once(')').ok_or_else(bad)?.1;
    let field = after.split_whitespace().nth(19).ok_or_else(bad)?;
    field.parse().map(Some).map_err(|_| bad())
}

#[cfg(not(target_os = "linux"))]
fn start_time(_pid: u32) -> io::Result<Option<u64>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "process start times are only read on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_record_their_writer() {
        assert_eq!(
            writer_of(".jbl-42-1234-00000000000000ff-7.tmp"),
            Some((42, 1234, 255))
        );
        assert_eq!(writer_of(".jbl-abc123.tmp"), None);
        assert_eq!(writer_of(".jbl-42-1234-7.tmp"), None);
        assert_eq!(writer_of(".jbl-42-1234-ff-7-8.tmp"), None);
        assert_eq!(writer_of("data.jbl"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_temporaries_are_alive_and_a_stale_stamp_is_dead() {
        let pid = std::process::id();
        let start = own_start_time().unwrap();
        let host = host_tag().unwrap();
        assert!(start > 0);
        assert!(!is_dead_writers(&format!(
            ".jbl-{pid}-{start}-{host:x}-0.tmp"
        )));
        assert!(is_dead_writers(&format!(
            ".jbl-{pid}-{}-{host:x}-0.tmp",
            start + 1
        )));
        // Unknown start times are never judged, nor other hosts' files.
        assert!(!is_dead_writers(&format!(".jbl-{pid}-0-{host:x}-0.tmp")));
        let other = host.wrapping_add(1).max(1);
        assert!(!is_dead_writers(&format!(
            ".jbl-{pid}-{}-{other:x}-0.tmp",
            start + 1
        )));
    }

    #[test]
    fn a_dropped_temporary_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (tmp, _file) = TempFile::create_in(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(tmp);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
