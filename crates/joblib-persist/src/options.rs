//! [`DumpOptions`], the builder for dumps.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::compress::Compression;
use crate::error::Error;
use crate::format::{MAX_CHUNK, MIN_CHUNK};

/// The default chunk size: 1 MiB, large enough for good ratios, small
/// enough that every core gets work on arrays of a few megabytes.
pub const DEFAULT_CHUNK_SIZE: usize = 1 << 20;

/// Sequences of primitives shorter than this many bytes stay inside the
/// MessagePack structure; longer ones go out of line into blocks.
pub const DEFAULT_MIN_BLOCK: usize = 256;

/// How to write a dump: compression method and level, chunk size,
/// durability. Build it with chained setters, then call [`dump`](Self::dump)
/// or [`dump_to_writer`](Self::dump_to_writer).
///
/// ```
/// # #[cfg(feature = "lz4")] {
/// use joblib_persist::{Compression, DumpOptions};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("weights.jbl");
/// DumpOptions::new()
///     .compress(Compression::Lz4)
///     .chunk_size(4 << 20)
///     .durable(true)
///     .dump(&vec![0.5f32; 10_000], &path)?;
/// let back: Vec<f32> = joblib_persist::load(&path)?;
/// assert_eq!(back.len(), 10_000);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct DumpOptions {
    pub(crate) compression: Option<Compression>,
    pub(crate) level: Option<i32>,
    pub(crate) chunk_size: usize,
    pub(crate) durable: bool,
    pub(crate) min_block: usize,
}

impl Default for DumpOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl DumpOptions {
    /// Uncompressed unless the path's extension names a method (see
    /// [`Compression::from_extension`]); 1 MiB chunks; not durable.
    pub fn new() -> DumpOptions {
        DumpOptions {
            compression: None,
            level: None,
            chunk_size: DEFAULT_CHUNK_SIZE,
            durable: false,
            min_block: DEFAULT_MIN_BLOCK,
        }
    }

    /// The compression method, overriding the one the extension implies.
    pub fn compress(mut self, method: Compression) -> DumpOptions {
        self.compression = Some(method);
        self
    }

    /// The compression level, in the method's own scale (zlib, gzip, bz2,
    /// xz, lzma: 0-9; zstd: -7-22; lz4 ignores it). Out-of-range levels are
    /// clamped. `None` (the default) uses level 3, as joblib does.
    pub fn level(mut self, level: Option<i32>) -> DumpOptions {
        self.level = level;
        self
    }

    /// Bytes per compression chunk: a multiple of 64 from 4 KiB to 64 MiB.
    /// Each chunk is compressed independently, on all cores.
    pub fn chunk_size(mut self, bytes: usize) -> DumpOptions {
        self.chunk_size = bytes;
        self
    }

    /// When true, [`dump`](Self::dump) calls `fsync` on the file before
    /// renaming it into place and on the directory after, so the dump
    /// survives a power loss once it returns.
    pub fn durable(mut self, durable: bool) -> DumpOptions {
        self.durable = durable;
        self
    }

    /// Sequences of primitives of at least this many bytes (and byte
    /// strings) are stored out of line as blocks; shorter ones inline.
    pub fn min_block_size(mut self, bytes: usize) -> DumpOptions {
        self.min_block = bytes.max(1);
        self
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        let ok = self.chunk_size.is_multiple_of(64)
            && (MIN_CHUNK as usize..=MAX_CHUNK as usize).contains(&self.chunk_size);
        if !ok {
            return Err(Error::Options(format!(
                "chunk size {} is not a multiple of 64 in {MIN_CHUNK}..={MAX_CHUNK}",
                self.chunk_size
            )));
        }
        Ok(())
    }

    /// Writes `value` to `path` atomically (see [`crate::dump`]).
    pub fn dump<T: Serialize + ?Sized>(
        &self,
        value: &T,
        path: impl AsRef<Path>,
    ) -> Result<(), Error> {
        crate::dump::dump_path(self, value, path.as_ref())
    }

    /// Writes `value` to `writer` (see [`crate::dump_to_writer`]); the
    /// extension rule does not apply, the default is no compression.
    pub fn dump_to_writer<T: Serialize + ?Sized, W: Write>(
        &self,
        value: &T,
        writer: W,
    ) -> Result<W, Error> {
        let method = self.compression.clone().unwrap_or_default();
        crate::dump::dump_stream(self, &method, value, writer, Path::new("<stream>"))
    }
}
