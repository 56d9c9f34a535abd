//! Writing a value: to a path (atomically) or to any writer.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::Serialize;
use twox_hash::XxHash3_64;

use crate::compress::{Compression, lookup};
use crate::error::{Error, io_err};
use crate::format::{Dtype, FORMAT_VERSION, Header, Index, Trailer};
use crate::options::DumpOptions;
use crate::ser::Ser;
use crate::sink::{Direct, Lazy, Sink};
use crate::writer::BlockWriter;

/// Writes `value` to `path` uncompressed, or with the method the
/// extension names (`.gz`, `.zst`, ... as [`Compression::from_extension`]).
///
/// The file appears atomically: the dump goes to a temporary file in the
/// same directory which is renamed over `path` once complete, so a reader
/// sees the old file or the new one, never a part. The temporary file is
/// named after this process (see [`temp`](crate::temp)), and temporaries
/// that killed writers left in the directory are removed first. Use
/// [`DumpOptions`] for compression, chunk size and `fsync`.
pub fn dump<T: Serialize + ?Sized>(value: &T, path: impl AsRef<Path>) -> Result<(), Error> {
    DumpOptions::new().dump(value, path)
}

/// Writes `value` as a `.jbl` stream to `writer`, which need not be
/// seekable (a `Vec<u8>`, a pipe, a socket), and returns the writer.
///
/// ```
/// let bytes = joblib_persist::dump_to_writer(&vec![1u16, 2, 3], Vec::new())?;
/// let back: Vec<u16> = joblib_persist::load_from_reader(bytes.as_slice())?;
/// assert_eq!(back, [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn dump_to_writer<T: Serialize + ?Sized, W: Write>(value: &T, writer: W) -> Result<W, Error> {
    DumpOptions::new().dump_to_writer(value, writer)
}

/// How much of a dump is written on the calling thread before a writer
/// thread takes over: starting one costs more than writing this much.
const DIRECT_BYTES: usize = 256 << 10;

pub(crate) fn dump_path<T: Serialize + ?Sized>(
    opts: &DumpOptions,
    value: &T,
    path: &Path,
) -> Result<(), Error> {
    let method = opts
        .compression
        .clone()
        .or_else(|| Compression::from_extension(path))
        .unwrap_or_default();
    #[cfg(feature = "tracing")]
    let _span =
        tracing::debug_span!("dump", path = %path.display(), method = method.name()).entered();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Leftovers of writers killed mid-dump go before this one adds its own.
    if let Err(_e) = crate::temp::sweep_before_dump(dir) {
        #[cfg(feature = "tracing")]
        tracing::debug!(dir = %dir.display(), error = %_e, "could not sweep dead writers' temporaries");
    }
    let (tmp, file) = crate::temp::TempFile::create_in(dir)
        .map_err(|e| io_err(path, "creating a temporary file next to", e))?;
    // Past the first `DIRECT_BYTES`, a writer thread does the file I/O
    // while this thread serializes and the pool compresses: the three
    // overlap. A small dump is written here, without starting a thread.
    let file = std::thread::scope(|scope| {
        let sink = Lazy::new(scope, BufWriter::with_capacity(1 << 16, file), DIRECT_BYTES);
        let sink = write_value(opts, &method, value, sink, path)?;
        let writer = sink.finish().map_err(|e| io_err(path, "writing", e))?;
        writer
            .into_inner()
            .map_err(|e| io_err(path, "writing", e.into_error()))
    })?;
    if opts.durable {
        file.sync_all().map_err(|e| io_err(path, "syncing", e))?;
    }
    drop(file);
    tmp.persist(path)
        .map_err(|e| io_err(path, "renaming into place", e))?;
    if opts.durable {
        // The rename itself is durable only once the directory is synced.
        if let Ok(d) = File::open(dir) {
            d.sync_all()
                .map_err(|e| io_err(path, "syncing the directory of", e))?;
        }
    }
    #[cfg(feature = "tracing")]
    tracing::debug!(path = %path.display(), "dumped");
    Ok(())
}

pub(crate) fn dump_stream<T: Serialize + ?Sized, W: Write>(
    opts: &DumpOptions,
    method: &Compression,
    value: &T,
    writer: W,
    path: &Path,
) -> Result<W, Error> {
    write_value(opts, method, value, Direct(writer), path).map(|d| d.0)
}

/// Writes the whole file: header, blocks, structure, index, trailer.
fn write_value<T: Serialize + ?Sized, S: Sink>(
    opts: &DumpOptions,
    method: &Compression,
    value: &T,
    sink: S,
    path: &Path,
) -> Result<S, Error> {
    opts.validate()?;
    let compressor = match method {
        Compression::None => None,
        m => Some(lookup(m.name()).ok_or_else(|| Error::UnknownCompressor {
            path: path.to_path_buf(),
            method: m.name().to_string(),
        })?),
    };
    let io = |e| io_err(path, "writing", e);
    let header = Header {
        version: FORMAT_VERSION,
        chunk_size: u32::try_from(opts.chunk_size)
            .map_err(|_| Error::Options("chunk size".into()))?,
        method: method.name().to_string(),
    };
    let mut blocks = BlockWriter::new(sink, opts.chunk_size, compressor, opts.level);
    blocks.write_raw(&header.encode()).map_err(io)?;
    let structure = {
        let mut ser = Ser::new(&mut blocks, opts.min_block);
        let result = ser.value(value);
        if let Some(e) = ser.take_io_error() {
            return Err(io(e));
        }
        result.map_err(|e| e.into_ser(path))?;
        ser.out
    };
    blocks.begin(Dtype::Bytes).map_err(io)?;
    blocks.push(&structure).map_err(io)?;
    blocks.end(None).map_err(io)?;
    drop(structure);
    let mut entries = std::mem::take(&mut blocks.blocks);
    let Some(structure) = entries.pop() else {
        return Err(io(std::io::Error::other("the structure block is missing")));
    };
    let index = Index {
        structure,
        blocks: entries,
    };
    let index_bytes = rmp_serde::to_vec(&index)
        .map_err(|e| io(std::io::Error::other(format!("encoding the index: {e}"))))?;
    let index_offset = blocks.position();
    blocks.write_raw(&index_bytes).map_err(io)?;
    let trailer = Trailer {
        index_offset,
        index_len: index_bytes.len() as u64,
        index_hash: XxHash3_64::oneshot(&index_bytes),
        file_len: blocks.position() + crate::format::TRAILER_LEN as u64,
    };
    blocks.write_raw(&trailer.encode()).map_err(io)?;
    blocks.flush().map_err(io)?;
    Ok(blocks.into_inner())
}
