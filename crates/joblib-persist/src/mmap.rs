//! [`load_mmap`]: loading with the file memory-mapped, arrays as views.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;
use serde::de::DeserializeOwned;

use crate::error::{Error, io_err};
use crate::load::{deserialize, load};
use crate::source::{Opened, Source};
use crate::view::{LockError, Mapping};

/// How [`load_mmap`] (and `load_python_mmap`) maps the file, as numpy's
/// and joblib's `mmap_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MmapMode {
    /// `"r"`: views are read-only.
    ReadOnly,
    /// `"r+"`: views are writable and writes go to the file. The block
    /// checksums then no longer match: [`load`] and [`verify`](crate::verify)
    /// will report the changed blocks.
    ///
    /// Exclusive: while the values of a read-write load hold views, the
    /// file is locked (an advisory `flock` on Unix), and any other
    /// `load_mmap` of it, in this process or another, fails with
    /// [`Error::MappingConflict`], as does a read-write load while other
    /// mappings of the file live. Two writable views of the same bytes can
    /// thus never exist. Where files cannot be locked (non-Unix targets,
    /// some network file systems) read-write loads are refused.
    ReadWrite,
    /// `"c"`: views are writable, writes stay in memory (copy on write).
    CopyOnWrite,
}

thread_local! {
    /// The mapping of the `load_mmap` running on this thread, for the
    /// `Deserialize` of `MmapArray`, which serde gives no other way to reach.
    static CURRENT: RefCell<Option<Arc<Mapping>>> = const { RefCell::new(None) };
}

/// The mapping of the `load_mmap` in progress on this thread, if any.
#[cfg_attr(not(feature = "ndarray"), allow(dead_code))]
pub(crate) fn current_mapping() -> Option<Arc<Mapping>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Restores the previous mapping when a load ends, even by panic.
pub(crate) struct Installed(Option<Arc<Mapping>>);

/// Makes `mapping` the one `MmapArray`s of this thread's load view, until
/// the returned guard is dropped (for `load_python_mmap`).
#[cfg_attr(not(feature = "python"), allow(dead_code))]
pub(crate) fn install(mapping: &Arc<Mapping>) -> Installed {
    Installed(CURRENT.with(|c| c.borrow_mut().replace(Arc::clone(mapping))))
}

impl Drop for Installed {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

/// Loads `T` from an uncompressed `.jbl` file mapped into memory: the
/// arrays `T` holds as `MmapArray` (feature `ndarray`) are views into the
/// mapping, not copies, so loading takes the same short time whatever their
/// size. Other fields (`Vec`s, plain `ndarray` arrays, strings) are loaded
/// as usual, copied out of the mapping.
///
/// The header, index and structure checksums are verified; the mapped
/// blocks are **not** read (that would defeat the mapping). Call
/// [`verify`](crate::verify) to check them too.
///
/// A compressed file cannot be mapped: as in joblib, it is then loaded as
/// by [`load`] and every `MmapArray` owns its data, with a warning (a
/// `tracing` event when a subscriber is installed, otherwise one line on
/// stderr, once per process). [`load_mmap_strict`] makes it an error.
///
/// # The file must not change while mapped
///
/// Views read the file's pages directly: the file must not be modified or
/// truncated by anyone else (another program, or a write through another
/// handle) while values loaded from it hold views, or they may see
/// changing data or crash the process. `dump` never modifies a file in
/// place (it writes a new file and renames it over the old one), so
/// dumping over a mapped file is safe. Mappings made by `load_mmap` guard
/// against each other: see [`MmapMode::ReadWrite`].
///
/// On big-endian targets every array is loaded as a copy.
///
/// ```
/// # #[cfg(feature = "ndarray")] {
/// use joblib_persist::{MmapArray, MmapMode};
/// use ndarray::{Array2, Ix2};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("big.jbl");
/// joblib_persist::dump(&Array2::<f64>::eye(500), &path)?;
/// let a: MmapArray<f64, Ix2> = joblib_persist::load_mmap(&path, MmapMode::ReadOnly)?;
/// assert!(a.is_mapped());
/// assert_eq!(a.view()[[7, 7]], 1.0);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_mmap<T: DeserializeOwned>(path: impl AsRef<Path>, mode: MmapMode) -> Result<T, Error> {
    map_and_load(path.as_ref(), mode, false)
}

/// As [`load_mmap`], but a compressed file, which cannot be mapped, is
/// [`Error::NotMappable`] instead of a load into memory with a warning: for
/// programs that rely on the arrays being mapped (memory use, writes that
/// must reach the file).
///
/// ```
/// # #[cfg(feature = "lz4")] {
/// use joblib_persist::{DumpOptions, Compression, Error, MmapMode};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("packed.jbl");
/// DumpOptions::new().compress(Compression::Lz4).dump(&vec![1.0f64; 1000], &path)?;
/// let err = joblib_persist::load_mmap_strict::<Vec<f64>>(&path, MmapMode::ReadOnly).unwrap_err();
/// assert!(matches!(err, Error::NotMappable { .. }));
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_mmap_strict<T: DeserializeOwned>(
    path: impl AsRef<Path>,
    mode: MmapMode,
) -> Result<T, Error> {
    map_and_load(path.as_ref(), mode, true)
}

fn map_and_load<T: DeserializeOwned>(
    path: &Path,
    mode: MmapMode,
    strict: bool,
) -> Result<T, Error> {
    #[cfg(feature = "tracing")]
    let _span = tracing::debug_span!("load_mmap", path = %path.display(), ?mode).entered();
    let file = open(path, mode)?;
    {
        let opened = Opened::open(path, Source::File(&file))?;
        if opened.compressor.is_some() {
            if strict {
                return Err(Error::NotMappable {
                    path: path.to_path_buf(),
                    method: opened.header.method.clone(),
                });
            }
            crate::warn::warn(
                "load_mmap of a compressed file",
                &format!(
                    "{}: compressed with {}, so it cannot be memory-mapped; loading it into memory instead (dump it uncompressed to map it)",
                    path.display(),
                    opened.header.method
                ),
            );
            return load(path);
        }
    }
    let mapping = map(path, file, mode)?;
    let _installed = install(&mapping);
    let opened = Opened::open(path, Source::Bytes(mapping.bytes()))?;
    deserialize(&opened, cfg!(target_endian = "little"))
}

/// Opens `path` for a mapping in `mode` (read-write for `ReadWrite`).
pub(crate) fn open(path: &Path, mode: MmapMode) -> Result<File, Error> {
    match mode {
        MmapMode::ReadWrite => OpenOptions::new().read(true).write(true).open(path),
        _ => File::open(path),
    }
    .map_err(|e| io_err(path, "opening", e))
}

/// Locks and maps `file` (opened by [`open`]) in `mode`; the mapping keeps
/// the file, and with it the lock, until it is dropped.
pub(crate) fn map(path: &Path, file: File, mode: MmapMode) -> Result<Arc<Mapping>, Error> {
    // The file must not be modified by others while mapped (see `view.rs`);
    // the lock keeps other mappings made by this library from doing so.
    lock(path, &file, mode)?;
    let mapping = match mode {
        MmapMode::ReadOnly => map_ro(&file).map(Mapping::read_only),
        MmapMode::ReadWrite => map_rw(&file).map(Mapping::writable),
        MmapMode::CopyOnWrite => map_cow(&file).map(Mapping::writable),
    }
    .map_err(|e| io_err(path, "memory-mapping", e))?;
    Ok(Arc::new(mapping.holding(file)))
}

/// Locks `file` for a mapping in `mode`: exclusively for read-write,
/// shared otherwise.
fn lock(path: &Path, file: &File, mode: MmapMode) -> Result<(), Error> {
    let exclusive = mode == MmapMode::ReadWrite;
    let conflict = |reason: String| Error::MappingConflict {
        path: path.to_path_buf(),
        mode,
        reason,
    };
    match crate::view::lock(file, exclusive) {
        Ok(()) => Ok(()),
        Err(LockError::Busy) if exclusive => Err(conflict(
            "it is already memory-mapped (in this or another process), and a read-write mapping must be its file's only one; drop the other loaded values first".into(),
        )),
        Err(LockError::Busy) => Err(conflict(
            "it is memory-mapped read-write (in this or another process); drop that value first".into(),
        )),
        Err(LockError::Unsupported(e)) if exclusive => Err(conflict(format!(
            "a read-write mapping must lock the file, and it cannot be locked here ({e})"
        ))),
        // Read-only and copy-on-write views are still safe from other
        // mappings of this library where locks are unavailable, as long as
        // no read-write mapping exists, and those cannot be made there.
        Err(LockError::Unsupported(_)) => Ok(()),
    }
}

fn map_ro(file: &File) -> std::io::Result<Mmap> {
    crate::view::map_read_only(file)
}

fn map_rw(file: &File) -> std::io::Result<memmap2::MmapMut> {
    crate::view::map_read_write(file)
}

fn map_cow(file: &File) -> std::io::Result<memmap2::MmapMut> {
    crate::view::map_copy_on_write(file)
}
