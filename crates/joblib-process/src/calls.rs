//! Per-call state of the process backend: where large arguments are
//! written for the workers to map, and the writer that decides it.

use std::collections::HashMap;
#[cfg(not(target_os = "linux"))]
use std::fs::DirBuilder;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
#[cfg(not(target_os = "linux"))]
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

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
    /// The call's large arguments by content.
    spilled: Arc<Mutex<Spilled>>,
    /// Buffers that batches of the call encoded large arguments into, kept
    /// (cleared) for its next batches: their pages are there already.
    buffers: Vec<Vec<u8>>,
}

/// How many encoding buffers a call keeps (one per worker of a pool of 2
/// and a spare; the buffers of larger pools' batches come and go).
const KEPT_BUFFERS: usize = 4;

/// A call's segments of large arguments, by the length and XXH3-128 of
/// their bytes: a batch whose encoded arguments equal an earlier batch's
/// maps the same segment instead of writing the bytes again.
#[derive(Default)]
struct Spilled {
    /// Each content's segment (or the slot where it is being written).
    by_content: HashMap<(usize, u128), Arc<Mutex<Weak<Segment>>>>,
    /// Segments kept until the call ends, so that a later batch with the
    /// same bytes finds them, up to [`SPILL_KEEP_BUDGET`] bytes; past it a
    /// segment goes with the last batch that uses it.
    kept: Vec<Arc<Segment>>,
    kept_bytes: usize,
}

/// Bytes of large arguments a call keeps for later batches (as loky keeps
/// its memmapped arrays for the call).
const SPILL_KEEP_BUDGET: usize = 2 << 30;

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
            spilled: Arc::default(),
            buffers: Vec::new(),
        },
    );
}

/// Kept arguments of a call past which they are freed on a thread of their
/// own when the call ends.
const FREE_APART_FROM: usize = 8 << 20;

/// Forgets a call and removes its folder. Large kept arguments are freed
/// on a short-lived thread: the parent holds the last reference to their
/// memory, and freeing 100 MB of it takes milliseconds the caller need not
/// wait for.
pub(crate) fn end(call_id: u64) {
    let Some(state) = lock().remove(&call_id) else {
        return;
    };
    if let Some(folder) = &state.folder {
        let _ = std::fs::remove_dir_all(folder);
    }
    let kept = state
        .spilled
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .kept_bytes
        + state.buffers.iter().map(Vec::capacity).sum::<usize>();
    if kept >= FREE_APART_FROM {
        // Should the thread not start, the closure and the state with it
        // are dropped here.
        let _ = std::thread::Builder::new()
            .name("joblib-free".into())
            .spawn(move || drop(state));
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
#[cfg(not(target_os = "linux"))]
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
#[cfg(not(target_os = "linux"))]
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
#[cfg(not(target_os = "linux"))]
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

/// A buffer to encode a batch's arguments into: one a batch of the call
/// gave back, or a new one.
pub(crate) fn args_buffer(call_id: u64) -> Vec<u8> {
    lock()
        .get_mut(&call_id)
        .and_then(|s| s.buffers.pop())
        .unwrap_or_default()
}

/// Keeps the buffer a batch's large arguments were encoded into (they are
/// in a segment now) for the call's next batches, cleared; dropped if the
/// call keeps enough of them or has ended.
pub(crate) fn give_back(call_id: u64, mut buffer: Vec<u8>) {
    buffer.clear();
    let unwanted = match lock().get_mut(&call_id) {
        Some(s) if s.buffers.len() < KEPT_BUFFERS => {
            s.buffers.push(buffer);
            None
        }
        _ => Some(buffer),
    };
    // Freed outside the lock.
    drop(unwanted);
}

/// The call's `max_nbytes`: larger arguments and replies go through shared
/// memory.
pub(crate) fn max_nbytes(call_id: u64) -> usize {
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

/// Bytes placed for the workers to map (a shared value, a batch's large
/// arguments): a file with no name anywhere, so nothing is left behind
/// however the program ends.
///
/// On Linux it is a `memfd` when the temporary root is `/dev/shm` (the
/// memory it uses is freed with the last descriptor or mapping), else a
/// file made in the root and unlinked at once; a worker opens it through
/// `/proc/<parent pid>/fd/<n>`. Elsewhere it is a named file in a private
/// folder, removed when the segment is dropped. Mode 0600 either way.
pub(crate) struct Segment {
    /// Open while the segment lives: what keeps an unnamed file alive.
    _file: File,
    locator: Vec<u8>,
    /// The file's name, where it has one, removed on drop.
    named: Option<PathBuf>,
}

/// Separates a locator's path from the inode of the file it names.
const LOCATOR_INODE: u8 = 0;

impl Segment {
    /// Creates a segment under `call_id`'s temporary root (`what` names it
    /// in messages and in `/proc/<pid>/maps`) and fills it with `write`.
    pub(crate) fn create(
        call_id: u64,
        what: &str,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> io::Result<Segment> {
        let root = {
            let calls = lock();
            let Some(state) = calls.get(&call_id) else {
                return Err(io::Error::other("the call has ended"));
            };
            temp_root(state.root.as_deref())
        };
        Segment::create_in(&root, call_id, what, write)
    }

    /// A `memfd` segment (Linux only: elsewhere an error), for a worker's
    /// reply.
    pub(crate) fn anonymous(
        what: &str,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> io::Result<Segment> {
        if cfg!(target_os = "linux") {
            Segment::create_in(Path::new("/dev/shm"), 0, what, write)
        } else {
            Err(io::Error::other(
                "no anonymous shared memory on this system",
            ))
        }
    }

    #[cfg(target_os = "linux")]
    fn create_in(
        root: &Path,
        _call_id: u64,
        what: &str,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> io::Result<Segment> {
        let mut file = if root == Path::new("/dev/shm") {
            let fd =
                rustix::fs::memfd_create(format!("joblib-{what}"), rustix::fs::MemfdFlags::CLOEXEC)
                    .map_err(|e| io::Error::new(e.kind(), format!("memfd_create: {e}")))?;
            rustix::fs::fchmod(&fd, rustix::fs::Mode::from_raw_mode(0o600))?;
            File::from(fd)
        } else {
            let path = root.join(format!(
                "{FOLDER_PREFIX}{}-{what}-{:x}",
                std::process::id(),
                random()
            ));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("creating {}: {e}", path.display()))
                })?;
            std::fs::remove_file(&path).map_err(|e| {
                io::Error::new(e.kind(), format!("unlinking {}: {e}", path.display()))
            })?;
            file
        };
        write(&mut file)
            .and_then(|()| file.flush())
            .map_err(|e| io::Error::new(e.kind(), format!("writing the {what} segment: {e}")))?;
        let locator = locator_of(&file)?;
        Ok(Segment {
            _file: file,
            locator,
            named: None,
        })
    }

    #[cfg(not(target_os = "linux"))]
    fn create_in(
        _root: &Path,
        call_id: u64,
        what: &str,
        write: impl FnOnce(&mut File) -> io::Result<()>,
    ) -> io::Result<Segment> {
        let folder = if what == "shared" {
            shared_folder(call_id)?
        } else {
            folder(call_id)?
        };
        let path = folder.join(format!("{what}-{:x}.jbl", random()));
        let path = create_private(&path, write)?;
        let file = File::open(&path)?;
        Ok(Segment {
            _file: file,
            locator: path.as_os_str().as_encoded_bytes().to_vec(),
            named: Some(path),
        })
    }

    /// What the request carries for the worker: see [`parse_locator`].
    pub(crate) fn locator(&self) -> &[u8] {
        &self.locator
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if let Some(path) = &self.named {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The locator of a file this process holds open: the path of its
/// descriptor under `/proc` and its inode.
pub(crate) fn locator_of(file: &File) -> io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;

    let ino = file.metadata()?.ino();
    let mut locator = format!("/proc/{}/fd/{}", std::process::id(), file.as_raw_fd()).into_bytes();
    locator.push(LOCATOR_INODE);
    locator.extend_from_slice(ino.to_string().as_bytes());
    Ok(locator)
}

/// Opens the file a locator with an inode names, checking that it is still
/// the one the locator was made for.
pub(crate) fn open_located(locator: &[u8]) -> io::Result<File> {
    use std::os::unix::fs::MetadataExt;

    let (path, inode) = parse_locator(locator);
    let file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
    if inode.is_none() || inode != Some(file.metadata()?.ino()) {
        return Err(io::Error::other(format!(
            "{} is not the file the worker named",
            path.display()
        )));
    }
    Ok(file)
}

/// A locator's path, and the inode the file must still have to be the one
/// the locator was made for (a descriptor number can be reused once the
/// parent closed it); no inode for a named file.
pub(crate) fn parse_locator(locator: &[u8]) -> (&Path, Option<u64>) {
    use std::os::unix::ffi::OsStrExt;
    match locator.iter().rposition(|&b| b == LOCATOR_INODE) {
        Some(at) => (
            Path::new(std::ffi::OsStr::from_bytes(&locator[..at])),
            std::str::from_utf8(&locator[at + 1..])
                .ok()
                .and_then(|i| i.parse().ok()),
        ),
        None => (Path::new(std::ffi::OsStr::from_bytes(locator)), None),
    }
}

/// Writes `encoded` arguments larger than the call's `max_nbytes` to a
/// [`Segment`] for the worker to map, once per call for equal bytes; `None`
/// for those small enough to travel in the request.
pub(crate) fn spill(call_id: u64, encoded: &[u8]) -> io::Result<Option<Arc<Segment>>> {
    let spilled = {
        let calls = lock();
        let Some(state) = calls.get(&call_id) else {
            return Err(io::Error::other("the call has ended"));
        };
        if encoded.len() <= state.max_nbytes {
            return Ok(None);
        }
        Arc::clone(&state.spilled)
    };
    let key = (encoded.len(), twox_hash::XxHash3_128::oneshot(encoded));
    let slot = {
        let mut spilled = spilled.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(spilled.by_content.entry(key).or_default())
    };
    // Held while the bytes are written: a batch with the same bytes waits
    // for them, others do not.
    let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(segment) = slot.upgrade() {
        return Ok(Some(segment));
    }
    let segment = Arc::new(Segment::create(call_id, "args", |f| {
        crate::pipe::write_split(f, encoded)
    })?);
    *slot = Arc::downgrade(&segment);
    let mut spilled = spilled.lock().unwrap_or_else(PoisonError::into_inner);
    if spilled.kept_bytes + encoded.len() <= SPILL_KEEP_BUDGET {
        spilled.kept_bytes += encoded.len();
        spilled.kept.push(Arc::clone(&segment));
    }
    Ok(Some(segment))
}

/// Creates `path` (it must not exist), mode 0600, and fills it with
/// `write`; the file is removed if that fails.
#[cfg(not(target_os = "linux"))]
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

    /// The bytes, mode and inode of the file a locator names, as a worker
    /// would open it.
    fn open_locator(locator: &[u8]) -> (Vec<u8>, u32, bool) {
        use std::os::unix::fs::MetadataExt;
        let (path, inode) = parse_locator(locator);
        let m = std::fs::metadata(path).unwrap();
        (
            std::fs::read(path).unwrap(),
            m.permissions().mode() & 0o777,
            inode == Some(m.ino()),
        )
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn small_stays_in_memory_large_goes_to_an_unnamed_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let call = u64::MAX - 1;
        begin(call, 16, Some(dir.path().to_path_buf()));
        assert!(spill(call, b"0123456789").unwrap().is_none());
        let Some(segment) = spill(call, b"01234567890123456789").unwrap() else {
            panic!("20 bytes over a limit of 16 must spill")
        };
        let (bytes, mode, same) = open_locator(segment.locator());
        assert_eq!(bytes, b"01234567890123456789");
        assert_eq!(mode, 0o600);
        assert!(same, "the locator names the inode it was made for");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert!(left.is_empty(), "the file has no name: {left:?}");
        let locator = segment.locator().to_vec();
        drop(segment);
        end(call);
        let (path, inode) = parse_locator(&locator);
        let still = std::fs::metadata(path).map(|m| {
            use std::os::unix::fs::MetadataExt;
            Some(m.ino()) == inode
        });
        assert!(
            !still.unwrap_or(false),
            "the segment is gone with its batch and call"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn under_dev_shm_a_segment_is_a_memfd() {
        let call = u64::MAX - 2;
        begin(call, 16, Some(PathBuf::from("/dev/shm")));
        let segment = Segment::create(call, "test", |f| f.write_all(b"hello")).unwrap();
        let (bytes, mode, same) = open_locator(segment.locator());
        assert_eq!((bytes.as_slice(), mode, same), (&b"hello"[..], 0o600, true));
        let (path, _) = parse_locator(segment.locator());
        let target = std::fs::read_link(path).unwrap();
        assert!(
            target.to_string_lossy().starts_with("/memfd:joblib-test"),
            "{target:?}"
        );
        end(call);
        assert!(
            Segment::create(call, "test", |_| Ok(())).is_err(),
            "the call has ended"
        );
    }

    #[test]
    fn equal_large_arguments_of_a_call_are_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let call = u64::MAX - 3;
        begin(call, 16, Some(dir.path().to_path_buf()));
        let a = spill(call, b"the same twenty bytes").unwrap().unwrap();
        let b = spill(call, b"the same twenty bytes").unwrap().unwrap();
        let c = spill(call, b"other bytes, as many.").unwrap().unwrap();
        assert_eq!(a.locator(), b.locator(), "one segment for equal bytes");
        assert_ne!(a.locator(), c.locator());
        assert_eq!(open_locator(c.locator()).0, b"other bytes, as many.");
        // Kept for the call, even once no batch holds it.
        let locator = a.locator().to_vec();
        drop((a, b));
        assert_eq!(
            spill(call, b"the same twenty bytes")
                .unwrap()
                .unwrap()
                .locator(),
            locator
        );
        end(call);
    }

    #[test]
    fn large_kept_arguments_are_freed_after_their_call_ends() {
        let dir = tempfile::tempdir().unwrap();
        let call = u64::MAX - 4;
        begin(call, 16, Some(dir.path().to_path_buf()));
        let big = vec![3u8; FREE_APART_FROM];
        let locator = spill(call, &big).unwrap().unwrap().locator().to_vec();
        assert_eq!(open_locator(&locator).0, big);
        end(call);
        let (path, inode) = parse_locator(&locator);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::metadata(path).is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            Some(m.ino()) == inode
        }) {
            assert!(std::time::Instant::now() < deadline, "never freed");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    #[test]
    fn a_call_hands_back_the_buffers_its_batches_gave_back() {
        let call = u64::MAX - 5;
        begin(call, 16, None);
        assert_eq!(args_buffer(call).capacity(), 0, "nothing given back yet");
        for _ in 0..KEPT_BUFFERS + 1 {
            give_back(call, vec![7u8; 1000]);
        }
        for _ in 0..KEPT_BUFFERS {
            let b = args_buffer(call);
            assert!(b.is_empty() && b.capacity() >= 1000);
        }
        assert_eq!(args_buffer(call).capacity(), 0, "only so many are kept");
        end(call);
        give_back(call, vec![1u8; 10]);
        assert_eq!(args_buffer(call).capacity(), 0, "the call has ended");
    }

    #[test]
    fn locators_split_path_and_inode() {
        assert_eq!(
            parse_locator(b"/proc/1/fd/7\x0042"),
            (Path::new("/proc/1/fd/7"), Some(42))
        );
        assert_eq!(parse_locator(b"/a/b.jbl"), (Path::new("/a/b.jbl"), None));
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
