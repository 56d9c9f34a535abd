//! The bytes of small results this process has read, so that a later hit
//! of the same entry costs one `stat` of its path instead of an `open`, a
//! `read` and a `close`.
//!
//! An entry's `output.jbl` is never rewritten in place (see
//! `docs/cache-layout.md`): a file with the same device, inode, size and
//! change time as when its bytes were read still holds those bytes. Any
//! change a reader must see changes that identity: a removal (the `stat`
//! fails), a replacement (another inode), a write or truncation from
//! outside, and a recorded access (the change time moves), after which
//! the file is read again.

use std::collections::HashMap;
use std::fs::Metadata;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use joblib_hash::Digest;

use crate::memory::lock;

/// Results larger than this are not kept.
pub(crate) const KEEP_UP_TO: u64 = 64 << 10;

/// How many bytes of results a memory keeps at most.
pub(crate) const KEEP_TOTAL: usize = 8 << 20;

/// What `stat` says of a file, enough to tell whether its content may have
/// changed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    ctime: i64,
    ctime_nsec: i64,
}

/// How old a file's change time must be for its bytes to be kept. A file
/// system clock may tick only every few milliseconds, so a write from
/// outside just after ours could leave the change time as it was; a file
/// that has not changed for this long will show any later write (git's
/// "racily clean" rule).
const SETTLED: Duration = Duration::from_millis(50);

/// [`SETTLED`] on a file system that keeps whole seconds (a change time
/// without nanoseconds): FAT keeps two.
const SETTLED_COARSE: Duration = Duration::from_secs(3);

impl FileId {
    /// The identity of the file `meta` describes, if its bytes may be kept:
    /// it last changed more than [`SETTLED`] ago ([`SETTLED_COARSE`] when
    /// the change time has no fraction of a second). `None` otherwise, and
    /// where the platform gives no inode numbers and change times.
    pub(crate) fn settled(meta: &Metadata) -> Option<FileId> {
        let id = FileId::of(meta)?;
        let changed = UNIX_EPOCH.checked_add(Duration::new(
            u64::try_from(id.ctime).ok()?,
            u32::try_from(id.ctime_nsec).ok()?,
        ))?;
        let age = SystemTime::now().duration_since(changed).ok()?;
        let settled = if id.ctime_nsec == 0 {
            SETTLED_COARSE
        } else {
            SETTLED
        };
        (age > settled).then_some(id)
    }

    /// The identity of the file `meta` describes; `None` where the
    /// platform gives no inode numbers and change times (nothing is kept
    /// then).
    pub(crate) fn of(meta: &Metadata) -> Option<FileId> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(FileId {
                dev: meta.dev(),
                ino: meta.ino(),
                size: meta.len(),
                ctime: meta.ctime(),
                ctime_nsec: meta.ctime_nsec(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            None
        }
    }
}

/// Kept results, by entry digest (which folds in the function's name and
/// fingerprint, so digests are unique across a memory's functions).
#[derive(Debug, Default)]
pub(crate) struct Recent {
    kept: Mutex<Kept>,
}

#[derive(Debug, Default)]
struct Kept {
    entries: HashMap<Digest, (FileId, Arc<[u8]>)>,
    bytes: usize,
}

impl Recent {
    /// Whether bytes of `digest` are kept (then a hit `stat`s the path
    /// first, rather than opening the file).
    pub(crate) fn contains(&self, digest: &Digest) -> bool {
        lock(&self.kept).entries.contains_key(digest)
    }

    /// The bytes kept for `digest`, if they were read from the file `id`
    /// describes now. Bytes of another file (or another version of it) are
    /// dropped.
    pub(crate) fn get(&self, digest: &Digest, id: FileId) -> Option<Arc<[u8]>> {
        let mut kept = lock(&self.kept);
        match kept.entries.get(digest) {
            Some((was, bytes)) if *was == id => Some(Arc::clone(bytes)),
            Some(_) => {
                kept.remove(digest);
                None
            }
            None => None,
        }
    }

    /// Keeps `bytes`, read from the file `id` describes (as `fstat` said
    /// before the read, and [`FileId::settled`]). When the memory keeps too much, everything kept
    /// is dropped: hot entries come back at their next hit, and no list of
    /// uses is kept up to date on every hit.
    pub(crate) fn insert(&self, digest: Digest, id: FileId, bytes: &[u8]) -> Arc<[u8]> {
        let bytes: Arc<[u8]> = Arc::from(bytes);
        if bytes.len() as u64 > KEEP_UP_TO {
            return bytes;
        }
        let mut kept = lock(&self.kept);
        kept.remove(&digest);
        if kept.bytes + bytes.len() > KEEP_TOTAL {
            kept.entries.clear();
            kept.bytes = 0;
        }
        kept.bytes += bytes.len();
        kept.entries.insert(digest, (id, Arc::clone(&bytes)));
        bytes
    }

    /// Forgets the bytes of `digest` (its entry was removed or found
    /// damaged).
    pub(crate) fn forget(&self, digest: &Digest) {
        lock(&self.kept).remove(digest);
    }

    /// Forgets everything (the cache was cleared).
    pub(crate) fn clear(&self) {
        let mut kept = lock(&self.kept);
        kept.entries.clear();
        kept.bytes = 0;
    }
}

impl Kept {
    fn remove(&mut self, digest: &Digest) {
        if let Some((_, bytes)) = self.entries.remove(digest) {
            self.bytes -= bytes.len();
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn id(ino: u64, ctime_nsec: i64) -> FileId {
        FileId {
            dev: 1,
            ino,
            size: 3,
            ctime: 10,
            ctime_nsec,
        }
    }

    fn digest(n: u64) -> Digest {
        joblib_hash::hash(&n).unwrap()
    }

    #[test]
    fn bytes_come_back_only_for_the_same_file() {
        let recent = Recent::default();
        recent.insert(digest(1), id(7, 0), b"abc");
        assert!(recent.contains(&digest(1)));
        assert_eq!(
            recent.get(&digest(1), id(7, 0)).as_deref(),
            Some(&b"abc"[..])
        );
        // Changed since (a write, a recorded access): dropped.
        assert_eq!(recent.get(&digest(1), id(7, 1)), None);
        assert!(!recent.contains(&digest(1)));
        // Another file at the name.
        recent.insert(digest(2), id(8, 0), b"abc");
        assert_eq!(recent.get(&digest(2), id(9, 0)), None);
        assert_eq!(recent.get(&digest(3), id(8, 0)), None);
    }

    #[test]
    fn only_settled_files_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(FileId::settled(&meta), None, "just written");
        std::thread::sleep(SETTLED * 2);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(FileId::settled(&meta), FileId::of(&meta));
        assert!(FileId::of(&meta).is_some());
    }

    #[test]
    fn the_total_stays_bounded() {
        let recent = Recent::default();
        let big = vec![0u8; KEEP_UP_TO as usize];
        let n = KEEP_TOTAL / big.len() + 3;
        for i in 0..n as u64 {
            recent.insert(digest(i), id(i, 0), &big);
            assert!(lock(&recent.kept).bytes <= KEEP_TOTAL);
        }
        // The last one is always kept.
        assert!(recent.contains(&digest(n as u64 - 1)));
        // Too large to keep.
        let huge = vec![0u8; KEEP_UP_TO as usize + 1];
        recent.insert(digest(1000), id(1000, 0), &huge);
        assert!(!recent.contains(&digest(1000)));
        recent.forget(&digest(n as u64 - 1));
        assert!(!recent.contains(&digest(n as u64 - 1)));
        recent.clear();
        assert_eq!(lock(&recent.kept).bytes, 0);
    }
}
