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
use crate::view::Mapping;

/// How [`load_mmap`] maps the file, as numpy's and joblib's `mmap_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MmapMode {
    /// `"r"`: views are read-only.
    ReadOnly,
    /// `"r+"`: views are writable and writes go to the file. The block
    /// checksums then no longer match: [`load`] and [`verify`](crate::verify)
    /// will report the changed blocks.
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
struct Installed(Option<Arc<Mapping>>);

impl Drop for Installed {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

/// Loads `T` from an uncompressed `.jbl` file mapped into memory: the
/// arrays `T` holds as [`MmapArray`](crate::MmapArray) are views into the
/// mapping, not copies, so loading takes the same short time whatever their
/// size. Other fields (`Vec`s, plain `ndarray` arrays, strings) are loaded
/// as usual, copied out of the mapping.
///
/// The header, index and structure checksums are verified; the mapped
/// blocks are **not** read (that would defeat the mapping). Call
/// [`verify`](crate::verify) to check them too.
///
/// A compressed file cannot be mapped: it is then loaded as by [`load`],
/// with a `tracing` warning, and every `MmapArray` owns its data.
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
    let path = path.as_ref();
    #[cfg(feature = "tracing")]
    let _span = tracing::debug_span!("load_mmap", path = %path.display(), ?mode).entered();
    let file = match mode {
        MmapMode::ReadWrite => OpenOptions::new().read(true).write(true).open(path),
        _ => File::open(path),
    }
    .map_err(|e| io_err(path, "opening", e))?;
    {
        let opened = Opened::open(path, Source::File(&file))?;
        if opened.compressor.is_some() {
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
    // The file must not be modified by others while mapped (see `view.rs`).
    let mapping = match mode {
        MmapMode::ReadOnly => map_ro(&file).map(Mapping::read_only),
        MmapMode::ReadWrite => map_rw(&file).map(Mapping::writable),
        MmapMode::CopyOnWrite => map_cow(&file).map(Mapping::writable),
    }
    .map_err(|e| io_err(path, "memory-mapping", e))?;
    let mapping = Arc::new(mapping);
    let _installed = Installed(CURRENT.with(|c| c.borrow_mut().replace(Arc::clone(&mapping))));
    let opened = Opened::open(path, Source::Bytes(mapping.bytes()))?;
    deserialize(&opened, cfg!(target_endian = "little"))
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
