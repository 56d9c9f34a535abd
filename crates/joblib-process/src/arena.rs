//! The reply arena: a `memfd` each worker makes once and writes its large
//! replies into, which the parent maps once and decodes them from. Unlike
//! a segment per reply, its pages are allocated and mapped in both
//! processes only the first time, so a large reply costs one copy into the
//! arena and the parent's decoding, with no page faults, `mmap` or
//! `munmap` per reply.
//!
//! A worker writes into its arena only while it serves a request, and the
//! parent reads a reply only between the worker's answer and its next
//! request, so the two never touch the arena at once. The file is sealed
//! against shrinking (`F_SEAL_SHRINK`), which the parent checks before it
//! maps it: whatever the worker does, the parent's mapping stays backed
//! and reading it cannot raise `SIGBUS`. The arena grows, never shrinks,
//! up to [`ARENA_MAX`]; a larger reply goes through a segment of its own.
//! The memory goes when the worker exits and the parent drops its mapping
//! (when it retires, buries or replaces the worker).

use std::fs::File;
use std::io;

use super::calls;

/// The largest reply put in a worker's arena (and so the most memory an
/// arena keeps); a larger one travels in a segment of its own.
pub(crate) const ARENA_MAX: usize = 64 << 20;

/// The size an arena starts with: room for a few 1 MiB replies.
const ARENA_MIN: usize = 4 << 20;

/// Arena sizes are whole pages.
const PAGE: usize = 4096;

/// A worker's arena.
pub(crate) struct WorkerArena {
    /// Kept open: the parent opens the arena through this descriptor.
    file: File,
    map: memmap2::MmapMut,
    locator: Vec<u8>,
}

impl WorkerArena {
    /// A new arena of at least `capacity` bytes.
    #[cfg(target_os = "linux")]
    fn create(capacity: usize) -> io::Result<WorkerArena> {
        use rustix::fs::{MemfdFlags, Mode, SealFlags};

        let fd = rustix::fs::memfd_create(
            "joblib-replies",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )
        .map_err(|e| io::Error::new(e.kind(), format!("memfd_create: {e}")))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o600))?;
        let file = File::from(fd);
        file.set_len(pages(capacity) as u64)?;
        // Growing stays possible; shrinking (which would leave the parent's
        // mapping unbacked) and any further seal do not.
        rustix::fs::fcntl_add_seals(&file, SealFlags::SHRINK | SealFlags::SEAL)?;
        // SAFETY: the file was just made by this process and has no name;
        // the parent only reads it, and nobody can shrink it (sealed above).
        let map = unsafe { memmap2::MmapMut::map_mut(&file)? };
        let locator = calls::locator_of(&file)?;
        Ok(WorkerArena { file, map, locator })
    }

    #[cfg(not(target_os = "linux"))]
    fn create(_capacity: usize) -> io::Result<WorkerArena> {
        Err(io::Error::other("no sealed shared memory on this system"))
    }

    /// Writes `reply` at the start of the arena, growing it first if it is
    /// too small (the caller keeps replies to [`ARENA_MAX`]).
    fn put(&mut self, reply: &[u8]) -> io::Result<()> {
        if reply.len() > self.map.len() {
            let capacity = pages(reply.len().max(2 * self.map.len()).min(ARENA_MAX));
            self.file.set_len(capacity as u64)?;
            // SAFETY: as in `create`; the file only grew.
            self.map = unsafe { memmap2::MmapMut::map_mut(&self.file)? };
        }
        self.map[..reply.len()].copy_from_slice(reply);
        Ok(())
    }

    /// What the parent opens the arena by: see [`calls::parse_locator`].
    pub(crate) fn locator(&self) -> &[u8] {
        &self.locator
    }
}

/// `n` rounded up to whole pages.
fn pages(n: usize) -> usize {
    n.div_ceil(PAGE).saturating_mul(PAGE).max(PAGE)
}

/// Puts `reply` in the worker's arena, making the arena on first use; the
/// arena, or `None` if the reply is larger than [`ARENA_MAX`] or the arena
/// cannot be made or grown (the reply then travels another way).
pub(crate) fn put<'a>(arena: &'a mut Option<WorkerArena>, reply: &[u8]) -> Option<&'a WorkerArena> {
    if reply.len() > ARENA_MAX {
        return None;
    }
    if arena.is_none() {
        *arena = WorkerArena::create(reply.len().max(ARENA_MIN)).ok();
    }
    let a = arena.as_mut()?;
    if a.put(reply).is_err() {
        // A half-grown arena is not trusted again: the next reply makes a
        // new one (the parent maps it by its new inode).
        *arena = None;
        return None;
    }
    arena.as_ref()
}

/// The parent's mapping of one worker's arena.
pub(crate) struct ArenaView {
    map: memmap2::Mmap,
    inode: u64,
}

/// The `len` bytes of a reply that a worker put in its arena, named by
/// `locator`: the arena is mapped the first time, and again when the
/// worker made a new one or grew it past the mapping.
pub(crate) fn reply<'a>(
    view: &'a mut Option<ArenaView>,
    locator: &[u8],
    len: u64,
) -> io::Result<&'a [u8]> {
    let len = usize::try_from(len)
        .map_err(|_| io::Error::other("the reply is too long for this machine"))?;
    let inode = calls::parse_locator(locator).1;
    let current = view
        .as_ref()
        .is_some_and(|v| Some(v.inode) == inode && v.map.len() >= len);
    if !current {
        *view = None;
        *view = Some(map_arena(locator, len)?);
    }
    view.as_ref()
        .and_then(|v| v.map.get(..len))
        .ok_or_else(|| io::Error::other("the reply is longer than the worker's arena"))
}

fn map_arena(locator: &[u8], len: usize) -> io::Result<ArenaView> {
    use std::os::unix::fs::MetadataExt;

    let file = calls::open_located(locator)?;
    check_sealed(&file)?;
    let meta = file.metadata()?;
    if meta.len() < len as u64 {
        return Err(io::Error::other(format!(
            "the worker's arena holds {} bytes, not the {len} of its reply",
            meta.len()
        )));
    }
    // SAFETY: the arena cannot shrink (checked just above), so every page
    // of the mapping stays backed; the worker writes to it only while it
    // serves a request, never while the parent reads a reply from it.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(ArenaView {
        map,
        inode: meta.ino(),
    })
}

#[cfg(target_os = "linux")]
fn check_sealed(file: &File) -> io::Result<()> {
    let seals = rustix::fs::fcntl_get_seals(file)?;
    if seals.contains(rustix::fs::SealFlags::SHRINK) {
        Ok(())
    } else {
        Err(io::Error::other(
            "the worker's arena is not sealed against shrinking",
        ))
    }
}

#[cfg(not(target_os = "linux"))]
fn check_sealed(_file: &File) -> io::Result<()> {
    Err(io::Error::other("no sealed shared memory on this system"))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn pattern(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
    }

    #[test]
    fn replies_of_growing_sizes_are_read_back_through_one_arena() {
        let mut arena = None;
        let mut view = None;
        let mut inodes = std::collections::BTreeSet::new();
        for (i, n) in [
            0,
            10,
            ARENA_MIN - 1,
            ARENA_MIN,
            ARENA_MIN + 1,
            3 << 20,
            9 << 20,
        ]
        .into_iter()
        .enumerate()
        {
            let bytes = pattern(n, i as u8);
            let locator = put(&mut arena, &bytes).unwrap().locator().to_vec();
            inodes.insert(calls::parse_locator(&locator).1);
            let read = reply(&mut view, &locator, n as u64).unwrap();
            assert_eq!(read, &bytes[..], "{n} bytes");
        }
        assert_eq!(inodes.len(), 1, "one arena, grown in place");
    }

    #[test]
    fn too_large_replies_are_left_to_another_way() {
        let mut arena = None;
        assert!(put(&mut arena, &vec![0; ARENA_MAX + 1]).is_none());
        assert!(arena.is_none(), "no arena made for nothing");
    }

    #[test]
    fn the_arena_is_private_and_cannot_shrink() {
        use std::os::unix::fs::PermissionsExt;

        let mut arena = None;
        let a = put(&mut arena, b"reply").unwrap();
        let file = calls::open_located(a.locator()).unwrap();
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert!(file.set_len(0).is_err(), "sealed against shrinking");
    }

    #[test]
    fn a_reply_longer_than_the_arena_or_an_unsealed_file_is_refused() {
        let mut arena = None;
        let locator = put(&mut arena, b"reply").unwrap().locator().to_vec();
        let mut view = None;
        let err = reply(&mut view, &locator, (ARENA_MIN as u64) * 2).unwrap_err();
        assert!(err.to_string().contains("arena holds"), "{err}");

        let plain = rustix::fs::memfd_create("joblib-test", rustix::fs::MemfdFlags::CLOEXEC)
            .map(File::from)
            .unwrap();
        plain.set_len(4096).unwrap();
        let locator = calls::locator_of(&plain).unwrap();
        let err = reply(&mut view, &locator, 10).unwrap_err();
        assert!(err.to_string().contains("not sealed"), "{err}");
    }
}
