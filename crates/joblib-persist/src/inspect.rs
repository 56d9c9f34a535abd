//! [`inspect`]: what a file holds, without loading its data.

use std::fs::File;
use std::path::Path;

use crate::compress::Compression;
use crate::error::{Error, io_err};
use crate::format::Dtype;
use crate::source::{Opened, Source};

/// One out-of-line block as [`inspect`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockInfo {
    /// The block's id: its position in the index.
    pub id: u32,
    /// The element type.
    pub dtype: Dtype,
    /// The shape: an ndarray array's own shape, else `[elements]`.
    pub shape: Vec<u64>,
    /// Raw (uncompressed) length in bytes.
    pub bytes: u64,
    /// Stored (possibly compressed) length in bytes.
    pub stored_bytes: u64,
    /// Absolute offset of the block's first byte in the file (a multiple of 64).
    pub offset: u64,
    /// Number of chunks.
    pub chunks: usize,
}

/// What a `.jbl` file holds, read from its header, trailer and index.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileInfo {
    /// The format version the file was written with.
    pub format_version: u16,
    /// The compression method.
    pub compression: Compression,
    /// Bytes per chunk.
    pub chunk_size: u32,
    /// The file's length in bytes.
    pub file_len: u64,
    /// Raw length of the MessagePack structure.
    pub structure_bytes: u64,
    /// The out-of-line blocks, in file order.
    pub blocks: Vec<BlockInfo>,
}

/// Reads the header, trailer and index of the file at `path` (checking their
/// checksums) and describes it without loading or decompressing any data.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("a.jbl");
/// joblib_persist::dump(&vec![1.5f64; 1000], &path)?;
/// let info = joblib_persist::inspect(&path)?;
/// assert_eq!(info.blocks[0].shape, [1000]);
/// assert_eq!(info.blocks[0].offset % 64, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn inspect(path: impl AsRef<Path>) -> Result<FileInfo, Error> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| io_err(path, "opening", e))?;
    let opened = Opened::open(path, Source::File(&file))?;
    Ok(FileInfo {
        format_version: opened.header.version,
        compression: Compression::from_name(&opened.header.method),
        chunk_size: opened.header.chunk_size,
        file_len: opened.file_len,
        structure_bytes: opened.structure.len,
        blocks: opened
            .blocks
            .iter()
            .enumerate()
            .map(|(id, b)| BlockInfo {
                id: u32::try_from(id).unwrap_or(u32::MAX),
                dtype: b.dtype,
                shape: b.shape.clone(),
                bytes: b.len,
                stored_bytes: b.stored_len,
                offset: b.offset,
                chunks: b.chunks.len(),
            })
            .collect(),
    })
}
