//! [`load_python_mmap`]: a Python joblib file memory-mapped, its arrays
//! viewed in place by `MmapArray` fields.

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;

use super::source::{Container, Source};
use super::{PyLoadOptions, de, vm};
use crate::compress::Compression;
use crate::error::{Error, io_err};
use crate::mmap::{self, MmapMode};

impl PyLoadOptions {
    /// Loads the Python joblib file at `path` into `T` with the file
    /// memory-mapped, as [`load_python_mmap`] does, with these options.
    pub fn load_mmap<T: DeserializeOwned>(
        &self,
        path: impl AsRef<Path>,
        mode: MmapMode,
    ) -> Result<T, Error> {
        let path = path.as_ref();
        let file = mmap::open(path, mode)?;
        let mut head = Vec::with_capacity(8);
        (&file)
            .take(8)
            .read_to_end(&mut head)
            .map_err(|e| io_err(path, "reading", e))?;
        let container = Container::detect(&head).map_err(|e| e.into_error(path))?;
        if head.is_empty() || container != Compression::None {
            if container != Compression::None {
                crate::warn::warn(
                    "load_python_mmap of a compressed file",
                    &format!(
                        "{}: compressed with {}, so it cannot be memory-mapped; loading it into memory instead",
                        path.display(),
                        container.name()
                    ),
                );
            }
            // Loaded as `load` does: an empty file gets its error there.
            return self.load(path);
        }
        let mapping = mmap::map(path, file, mode)?;
        let _installed = mmap::install(&mapping);
        let mut src = Source::mapped(mapping.bytes(), self.max_decompressed);
        let value = vm::run(&mut src, self, 0).map_err(|e| e.into_error(path))?;
        de::from_owned_value(value, path)
    }
}

/// Loads a file written by Python's `joblib.dump` into `T` with the file
/// memory-mapped, as `joblib.load(path, mmap_mode=...)` does: the arrays
/// `T` holds as [`MmapArray`](crate::MmapArray) fields are views of the
/// file, not copies, so the load takes the same short time whatever their
/// size. Other fields are loaded as by [`load_python`](crate::load_python)
/// (a plain `ndarray` array is copied out of the mapping). The file is
/// read with the same checks and caps as by `load_python`: a hostile file
/// is refused the same way.
///
/// An array is viewed in place when the file holds it as joblib writes
/// numpy arrays (inline after a `NumpyArrayWrapper`), as numbers of the
/// `MmapArray`'s element type, in the machine's byte order, in C order (or
/// 1-d), and aligned for its element type in the file, which joblib ≥ 1.2
/// ensures with padding. Otherwise it is loaded as a copy that the
/// `MmapArray` owns: arrays of files written by joblib ≤ 1.1 or to a
/// non-seekable stream (no padding), big-endian or Fortran-order arrays,
/// an array that appears twice in the value (the second is a copy), and
/// every array of a compressed file, which cannot be mapped (the file is
/// then loaded as by `load_python`, with a warning).
/// [`MmapArray::is_mapped`](crate::MmapArray::is_mapped) tells which.
///
/// The mapping's rules are [`load_mmap`](crate::load_mmap)'s: `mode` as
/// there (a read-only view has no `view_mut`, a read-write mapping locks
/// the file), the file must not change while views of it live, and the
/// file is unmapped when the last view is dropped.
///
/// ```no_run
/// use joblib_persist::{MmapArray, MmapMode};
/// use ndarray::Ix2;
/// // Python: joblib.dump(np.ones((10_000, 1_000)), "big.pkl")
/// let a: MmapArray<f64, Ix2> = joblib_persist::load_python_mmap("big.pkl", MmapMode::ReadOnly)?;
/// assert!(a.is_mapped());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_python_mmap<T: DeserializeOwned>(
    path: impl AsRef<Path>,
    mode: MmapMode,
) -> Result<T, Error> {
    PyLoadOptions::default().load_mmap(path, mode)
}
