//! The `unsafe` code of memory-mapped loads (that of owned loads is in
//! `owned.rs`): typed, zero-copy regions of a memory map.
//!
//! A [`Mapping`] owns a memory map of a whole file. A [`Region`] is a typed
//! window on one block of it. Regions of one mapping never overlap (checked
//! when they are created, with a list of claimed ranges), which is what makes
//! handing out `&mut [A]` from a shared mapping sound.
//!
//! As with every memory map, the file must not be truncated or modified by
//! another process while mapped; see `memmap2`'s documentation. Two
//! mappings of one file made by `load_mmap` cannot break that rule between
//! them: a read-write mapping holds an exclusive advisory lock (`flock`) on
//! the file for as long as it lives, and other mappings a shared one, so a
//! read-write mapping never coexists with another mapping of its file, in
//! this process or another that uses this library.

// Regions are cut only by `MmapArray`, which needs the `ndarray` feature.
#![cfg_attr(not(feature = "ndarray"), allow(dead_code))]

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use memmap2::{Mmap, MmapMut};

use crate::element::Element;

/// Maps `file` read-only.
pub(crate) fn map_read_only(file: &std::fs::File) -> std::io::Result<Mmap> {
    // SAFETY: memmap2 requires that the file is not modified or truncated by
    // anyone else while mapped (else reads may see changing bytes or fault).
    // That is the documented contract of `load_mmap`, as of every mmap loader.
    unsafe { Mmap::map(file) }
}

/// Maps `file` read-write: writes reach the file.
pub(crate) fn map_read_write(file: &std::fs::File) -> std::io::Result<MmapMut> {
    // SAFETY: as for `map_read_only`.
    unsafe { MmapMut::map_mut(file) }
}

/// Maps `file` copy-on-write: writes stay private to this process.
pub(crate) fn map_copy_on_write(file: &std::fs::File) -> std::io::Result<MmapMut> {
    // SAFETY: as for `map_read_only`.
    unsafe { memmap2::MmapOptions::new().map_copy(file) }
}

/// Why [`lock`] failed.
pub(crate) enum LockError {
    /// Another mapping holds a conflicting lock.
    Busy,
    /// The file system or platform cannot lock files.
    Unsupported(std::io::Error),
}

/// Takes an advisory lock on `file`, exclusive or shared, without waiting.
/// It lasts until `file` is closed.
#[cfg(unix)]
pub(crate) fn lock(file: &std::fs::File, exclusive: bool) -> Result<(), LockError> {
    use std::os::fd::AsRawFd;
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    // SAFETY: `flock` only reads its arguments; the descriptor is open for
    // as long as `file` is borrowed.
    if unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(code) if code == libc::EWOULDBLOCK || code == libc::EAGAIN => Err(LockError::Busy),
        _ => Err(LockError::Unsupported(e)),
    }
}

/// Advisory locks are taken on Unix only.
#[cfg(not(unix))]
pub(crate) fn lock(_file: &std::fs::File, _exclusive: bool) -> Result<(), LockError> {
    Err(LockError::Unsupported(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "advisory file locks are only taken on Unix",
    )))
}

/// Keeps the map alive; only its address and length are used.
enum Keep {
    ReadOnly(#[allow(dead_code)] Mmap),
    Writable(#[allow(dead_code)] MmapMut),
}

/// A memory-mapped file shared by the regions cut from it.
pub(crate) struct Mapping {
    ptr: *mut u8,
    len: usize,
    writable: bool,
    claimed: Mutex<Vec<(usize, usize)>>,
    keep: Keep,
    /// The mapped file, open for as long as the mapping lives: it holds the
    /// advisory lock taken by `load_mmap`.
    _file: Option<std::fs::File>,
}

// SAFETY: the mapping is plain memory owned by `keep` for as long as the
// `Mapping` lives. Shared access only reads through `ptr` (`bytes`), and
// mutable access goes through `Region::as_mut_slice`, which needs `&mut
// Region` over a range no other region covers; so no data race can arise
// from sending or sharing the `Mapping` between threads.
unsafe impl Send for Mapping {}
// SAFETY: as for `Send` above.
unsafe impl Sync for Mapping {}

impl Mapping {
    pub(crate) fn read_only(map: Mmap) -> Mapping {
        Mapping {
            ptr: map.as_ptr().cast_mut(),
            len: map.len(),
            writable: false,
            claimed: Mutex::new(Vec::new()),
            keep: Keep::ReadOnly(map),
            _file: None,
        }
    }

    pub(crate) fn writable(mut map: MmapMut) -> Mapping {
        Mapping {
            ptr: map.as_mut_ptr(),
            len: map.len(),
            writable: true,
            claimed: Mutex::new(Vec::new()),
            keep: Keep::Writable(map),
            _file: None,
        }
    }

    /// Keeps `file` (and the lock it holds) open as long as the mapping.
    pub(crate) fn holding(mut self, file: std::fs::File) -> Mapping {
        self._file = Some(file);
        self
    }

    /// The whole file, for reading the header, index and structure while
    /// loading, before any region exists.
    pub(crate) fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr..ptr + len` is the live mapping owned by `keep`. No
        // `&mut` to any part of it exists: the regions cut while loading
        // (by `load_mmap` or `load_python_mmap`) are inside the value being
        // loaded, and none gives out `&mut` before that value is returned,
        // after loading stops reading through this slice; the borrow of
        // `self` keeps the mapping alive.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Flushes the writes to a read-write mapping to the file.
    pub(crate) fn flush(&self) -> std::io::Result<()> {
        match &self.keep {
            Keep::Writable(m) => m.flush(),
            Keep::ReadOnly(_) => Ok(()),
        }
    }
}

/// A typed window of `count` elements at byte `offset` of a mapping.
pub(crate) struct Region<A: Element> {
    map: Arc<Mapping>,
    offset: usize,
    count: usize,
    _type: PhantomData<A>,
}

impl<A: Element> Region<A> {
    /// Claims `count` elements at `offset`; `None` if the range is out of
    /// bounds, misaligned for `A`, or overlaps a region already claimed.
    pub(crate) fn claim(map: &Arc<Mapping>, offset: usize, count: usize) -> Option<Region<A>> {
        let bytes = count.checked_mul(size_of::<A>())?;
        let end = offset.checked_add(bytes)?;
        if end > map.len || (map.ptr as usize).checked_add(offset)? % align_of::<A>() != 0 {
            return None;
        }
        let mut claimed = map.claimed.lock().unwrap_or_else(|p| p.into_inner());
        if bytes > 0 && claimed.iter().any(|&(s, e)| offset < e && s < end) {
            return None;
        }
        claimed.push((offset, end));
        Some(Region {
            map: Arc::clone(map),
            offset,
            count,
            _type: PhantomData,
        })
    }

    pub(crate) fn as_slice(&self) -> &[A] {
        if self.count == 0 {
            return &[];
        }
        // SAFETY: `claim` checked that the range lies in the mapping and is
        // aligned for `A`; `A: Element` is a primitive number for which every
        // bit pattern is valid; the mapping lives as long as `self.map`;
        // no `&mut` to this range can exist while `&self` is borrowed,
        // because only `as_mut_slice(&mut self)` of this very region makes one.
        unsafe { std::slice::from_raw_parts(self.map.ptr.add(self.offset).cast::<A>(), self.count) }
    }

    /// The elements, mutable; `None` for a read-only mapping.
    pub(crate) fn as_mut_slice(&mut self) -> Option<&mut [A]> {
        if !self.map.writable {
            return None;
        }
        if self.count == 0 {
            return Some(&mut []);
        }
        // SAFETY: as in `as_slice`; in addition the mapping is writable, and
        // `&mut self` plus the disjointness checked in `claim` mean no other
        // reference to this range exists while the result lives.
        Some(unsafe {
            std::slice::from_raw_parts_mut(self.map.ptr.add(self.offset).cast::<A>(), self.count)
        })
    }

    pub(crate) fn mapping(&self) -> &Mapping {
        &self.map
    }
}

impl<A: Element> Drop for Region<A> {
    fn drop(&mut self) {
        let mut claimed = self.map.claimed.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = self.count * size_of::<A>();
        if let Some(i) = claimed
            .iter()
            .position(|&r| r == (self.offset, self.offset + bytes))
        {
            claimed.swap_remove(i);
        }
    }
}
