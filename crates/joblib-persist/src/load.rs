//! Loading a value: from a path by offset, or from any reader.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::de::De;
use crate::error::{Error, io_err};
use crate::source::{Opened, Source};

/// Loads a value of type `T` from the `.jbl` file at `path`.
///
/// The compression method is read from the file. Every checksum is
/// verified, and no length in the file is trusted before it is checked
/// against the file's size, so a damaged or hostile file gives an
/// [`Error`], never a panic. Loading runs no code from the file: it only
/// calls `T`'s `Deserialize` implementation, unlike Python's pickle.
///
/// Types must match what was dumped: element types are never converted (an
/// array of `f32` loaded as `Array2<f64>` is an error, not a widened copy),
/// and a mismatch is an [`Error::Deserialize`] naming the field's path in
/// `T` (`model.layers[2].weights`) and what the file holds there ("an array
/// of shape [40, 7] with f32 elements", "a struct or map with fields `a`,
/// `b`").
///
/// Memory: the value plus a few chunks per core. A `Vec` of numbers or an
/// `ndarray` array (at the top level, in a struct, a sequence or an enum
/// variant) is read from an uncompressed file straight into the vector
/// returned, on all cores, with transparent huge pages on Linux when it is
/// 4 MiB or more; other values are read chunk by chunk into the value.
pub fn load<T: DeserializeOwned>(path: impl AsRef<Path>) -> Result<T, Error> {
    let path = path.as_ref();
    #[cfg(feature = "tracing")]
    let _span = tracing::debug_span!("load", path = %path.display()).entered();
    let file = File::open(path).map_err(|e| io_err(path, "opening", e))?;
    let opened = Opened::open(path, Source::File(&file))?;
    deserialize(&opened, false)
}

/// Loads a value from a `.jbl` stream, which need not be seekable.
///
/// The block index is at the end of the stream, so the stream is read
/// whole into memory first: peak memory is the stream's size plus the
/// value. Prefer [`load`] for large files.
pub fn load_from_reader<T: DeserializeOwned, R: Read>(mut reader: R) -> Result<T, Error> {
    let path = Path::new("<stream>");
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| io_err(path, "reading", e))?;
    let opened = Opened::open(path, Source::Bytes(&bytes))?;
    deserialize(&opened, false)
}

/// Loads the structure and deserializes `T` from it.
pub(crate) fn deserialize<T: DeserializeOwned>(
    opened: &Opened<'_>,
    mmap: bool,
) -> Result<T, Error> {
    let structure = opened.read_block(u32::MAX, &opened.structure)?;
    let mut de = De::new(&structure, opened);
    de.mmap = mmap;
    // A `Vec` of primitives read straight into place, or any value through serde.
    let value = match de.owned_value::<T>() {
        Ok(Some(v)) => Ok(v),
        Ok(None) => T::deserialize(&mut de),
        Err(e) => Err(e),
    }
    .map_err(|e| e.into_de(opened.path))?;
    de.end()?;
    Ok(value)
}

/// Checks every checksum of the file at `path` (header, trailer, index,
/// structure and every chunk of every block) without deserializing it.
/// Useful after [`load_mmap`](crate::load_mmap), which does not read the
/// mapped arrays.
pub fn verify(path: impl AsRef<Path>) -> Result<(), Error> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| io_err(path, "opening", e))?;
    Opened::open(path, Source::File(&file))?.verify_all()
}
