//! Per-call state of the process backend: where large arguments are
//! written for the workers to map, and the writer that decides it.

use std::collections::HashMap;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The environment variable naming the folder for large arguments, as in
/// joblib.
pub(crate) const TEMP_FOLDER_ENV: &str = "JOBLIB_TEMP_FOLDER";

/// Prefix of the per-call folders; followed by the parent's pid.
const FOLDER_PREFIX: &str = "joblib-rs-";

/// Free space `/dev/shm` must have to be chosen (joblib asks for 2 GB).
const SHM_MIN_FREE: u64 = 2_000_000_000;

/// What a running call needs on the parent side.
struct CallState {
    max_nbytes: usize,
    root: Option<PathBuf>,
    /// The call's folder, once something was written to it.
    folder: Option<PathBuf>,
}

fn calls() -> &'static Mutex<HashMap<u64, CallState>> {
    static CALLS: OnceLock<Mutex<HashMap<u64, CallState>>> = OnceLock::new();
    CALLS.get_or_init(Default::default)
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<u64, CallState>> {
    calls().lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records a call's settings when it starts.
pub(crate) fn begin(call_id: u64, max_nbytes: usize, root: Option<PathBuf>) {
    lock().insert(
        call_id,
        CallState {
            max_nbytes,
            root,
            folder: None,
        },
    );
}

/// Forgets a call and removes its folder.
pub(crate) fn end(call_id: u64) {
    let state = lock().remove(&call_id);
    if let Some(folder) = state.and_then(|s| s.folder) {
        let _ = std::fs::remove_dir_all(folder);
    }
}

/// Where the folders of large arguments go: the backend's setting, else
/// `JOBLIB_TEMP_FOLDER`, else `/dev/shm` when it has room, else the system's
/// temporary folder.
pub(crate) fn temp_root(configured: Option<&Path>) -> PathBuf {
    if let Some(p) = configured {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os(TEMP_FOLDER_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let shm = Path::new("/dev/shm");
    if free_space(shm).is_some_and(|free| free >= SHM_MIN_FREE) {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

fn free_space(path: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(path).ok()?;
    // Writable by us, too.
    rustix::fs::access(path, rustix::fs::Access::WRITE_OK).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Creates `<root>/joblib-rs-<pid>-<what>-<random>`, mode 0700.
fn private_folder(root: &Path, what: &str) -> io::Result<PathBuf> {
    let folder = root.join(format!(
        "{FOLDER_PREFIX}{}-{what}-{:x}",
        std::process::id(),
        random()
    ));
    DirBuilder::new()
        .mode(0o700)
        .create(&folder)
        .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", folder.display())))?;
    Ok(folder)
}

/// The call's folder (created, mode 0700, on first use).
fn folder(call_id: u64) -> io::Result<PathBuf> {
    let mut calls = lock();
    let Some(state) = calls.get_mut(&call_id) else {
        return Err(io::Error::other("the call has ended"));
    };
    if let Some(f) = &state.folder {
        return Ok(f.clone());
    }
    let folder = private_folder(&temp_root(state.root.as_deref()), &call_id.to_string())?;
    state.folder = Some(folder.clone());
    Ok(folder)
}

/// The folder of this process's `Shared` values under `call_id`'s
/// temporary root (created, mode 0700, on first use; one per root).
pub(crate) fn shared_folder(call_id: u64) -> io::Result<PathBuf> {
    static FOLDERS: OnceLock<Mutex<HashMap<PathBuf, PathBuf>>> = OnceLock::new();
    let root = {
        let calls = lock();
        let Some(state) = calls.get(&call_id) else {
            return Err(io::Error::other("the call has ended"));
        };
        temp_root(state.root.as_deref())
    };
    let mut folders = FOLDERS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(folder) = folders.get(&root) {
        return Ok(folder.clone());
    }
    let folder = private_folder(&root, "shared")?;
    folders.insert(root, folder.clone());
    Ok(folder)
}

fn max_nbytes(call_id: u64) -> usize {
    lock()
        .get(&call_id)
        .map_or(super::DEFAULT_MAX_NBYTES, |s| s.max_nbytes)
}

pub(crate) fn random() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Removes the folders that parents which are gone left behind (killed
/// before they could clean up).
pub(crate) fn sweep_stale_folders(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(FOLDER_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest
            .split('-')
            .next()
            .and_then(|p| p.parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        if !alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn alive(pid: rustix::process::Pid) -> bool {
    // Signal 0 only checks that the process exists (EPERM: it does, and is
    // someone else's).
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// A file of encoded arguments in a call's folder, removed when dropped.
pub(crate) struct ArgsFile {
    path: PathBuf,
}

impl ArgsFile {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ArgsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Writes `encoded` arguments larger than the call's `max_nbytes` to a
/// private file (0600) in the call's folder, for the worker to map; `None`
/// for those small enough to travel in the request.
pub(crate) fn spill(call_id: u64, encoded: &[u8]) -> io::Result<Option<ArgsFile>> {
    if encoded.len() <= max_nbytes(call_id) {
        return Ok(None);
    }
    let path = folder(call_id)?.join(format!("args-{:x}.jbl", random()));
    let file = ArgsFile {
        path: create_private(&path, |f| f.write_all(encoded))?,
    };
    Ok(Some(file))
}

/// Creates `path` (it must not exist), mode 0600, and fills it with
/// `write`; the file is removed if that fails.
pub(crate) fn create_private(
    path: &Path,
    write: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", path.display())))?;
    match write(&mut file).and_then(|()| file.flush()) {
        Ok(()) => Ok(path.to_path_buf()),
        Err(e) => {
            let _ = std::fs::remove_file(path);
            Err(io::Error::new(
                e.kind(),
                format!("writing {}: {e}", path.display()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn small_stays_in_memory_large_goes_to_a_private_file() {
        let dir = std::env::temp_dir().join(format!("joblib-spill-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        begin(u64::MAX - 1, 16, Some(dir.clone()));
        assert!(spill(u64::MAX - 1, b"0123456789").unwrap().is_none());
        let Some(file) = spill(u64::MAX - 1, b"01234567890123456789").unwrap() else {
            panic!("20 bytes over a limit of 16 must spill")
        };
        assert_eq!(std::fs::read(file.path()).unwrap(), b"01234567890123456789");
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let folder = file.path().parent().unwrap().to_path_buf();
        let mode = std::fs::metadata(&folder).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let path = file.path().to_path_buf();
        drop(file);
        assert!(!path.exists());
        end(u64::MAX - 1);
        assert!(!folder.exists(), "the call's folder is removed at its end");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn folders_of_dead_parents_are_swept() {
        let root = std::env::temp_dir().join(format!("joblib-sweep-test-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = root.join(format!("{FOLDER_PREFIX}{dead}-1-abc"));
        let live = root.join(format!("{FOLDER_PREFIX}{}-1-abc", std::process::id()));
        let other = root.join("unrelated-1");
        for d in [&stale, &live, &other] {
            std::fs::create_dir_all(d).unwrap();
        }
        sweep_stale_folders(&root);
        assert!(!stale.exists());
        assert!(live.exists() && other.exists());
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn the_configured_root_wins() {
        assert_eq!(temp_root(Some(Path::new("/x/y"))), Path::new("/x/y"));
    }
}
