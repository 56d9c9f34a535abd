//! Reading a file's fixed parts and its blocks: from an open file by
//! offset, or from bytes in memory (a buffered stream or a mapping).

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use twox_hash::XxHash3_64;

use crate::compress::{Compressor, lookup};
use crate::element::Element;
use crate::error::{Error, corrupt, io_err};
use crate::format::{Block, HEADER_LEN, Header, Index, TRAILER_LEN, Trailer};

/// How many times its stored size a compressed block may claim and still
/// get its whole vector before any chunk is decompressed.
const TRUSTED_RATIO: u64 = 64;
use crate::owned;

/// Where the bytes of a file come from.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    /// An open file, read by offset.
    File(&'a File),
    /// The whole file in memory.
    Bytes(&'a [u8]),
}

impl Source<'_> {
    fn len(&self) -> io::Result<u64> {
        match self {
            Source::File(f) => Ok(f.metadata()?.len()),
            Source::Bytes(b) => Ok(b.len() as u64),
        }
    }

    /// Fills `buf` from `offset`; the caller has checked the range lies in the file.
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match self {
            #[cfg(unix)]
            Source::File(f) => std::os::unix::fs::FileExt::read_exact_at(*f, buf, offset),
            #[cfg(not(unix))]
            Source::File(f) => {
                use std::io::{Read, Seek, SeekFrom};
                let mut f = *f;
                f.seek(SeekFrom::Start(offset))?;
                f.read_exact(buf)
            }
            Source::Bytes(b) => {
                let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
                let src = start
                    .checked_add(buf.len())
                    .and_then(|end| b.get(start..end))
                    .ok_or(io::ErrorKind::UnexpectedEof)?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }
}

/// A file whose header, trailer and index were read and checked.
pub(crate) struct Opened<'a> {
    pub(crate) path: &'a Path,
    pub(crate) source: Source<'a>,
    pub(crate) header: Header,
    pub(crate) file_len: u64,
    pub(crate) structure: Block,
    pub(crate) blocks: Vec<Block>,
    pub(crate) compressor: Option<Arc<dyn Compressor>>,
}

impl<'a> Opened<'a> {
    pub(crate) fn open(path: &'a Path, source: Source<'a>) -> Result<Opened<'a>, Error> {
        let io = |e| io_err(path, "reading", e);
        let file_len = source.len().map_err(io)?;
        let mut head = [0u8; HEADER_LEN];
        let n = usize::try_from(file_len)
            .unwrap_or(usize::MAX)
            .min(HEADER_LEN);
        source.read_at(0, &mut head[..n]).map_err(io)?;
        let header = Header::decode(path, &head[..n])?;
        if file_len < (HEADER_LEN + TRAILER_LEN) as u64 {
            return Err(corrupt(
                path,
                format!("{file_len} bytes is too short for a .jbl file"),
            ));
        }
        let mut tail = [0u8; TRAILER_LEN];
        source
            .read_at(file_len - TRAILER_LEN as u64, &mut tail)
            .map_err(io)?;
        let trailer = Trailer::decode(path, &tail, file_len)?;
        // The trailer checked that the index lies inside the file, so this
        // allocation is justified by the file's size.
        let index_len = usize::try_from(trailer.index_len)
            .map_err(|_| corrupt(path, "the index is larger than memory"))?;
        let mut index = vec![0u8; index_len];
        source
            .read_at(trailer.index_offset, &mut index)
            .map_err(io)?;
        if XxHash3_64::oneshot(&index) != trailer.index_hash {
            return Err(Error::Checksum {
                path: path.to_path_buf(),
                part: "the block index".into(),
            });
        }
        let compressed = header.method != "none";
        let (structure, blocks) =
            Index::decode_checked(path, &index, &header, trailer.index_offset, compressed)?;
        // Alignment padding is not covered by a checksum, so it must be zero:
        // then no byte of the file can change without an error.
        let mut prev_end = HEADER_LEN as u64;
        for b in blocks.iter().chain(std::iter::once(&structure)) {
            let mut pad = [0u8; crate::format::ALIGN as usize];
            // The index check bounded each gap below 64 bytes.
            let pad = &mut pad[..(b.offset - prev_end) as usize];
            source.read_at(prev_end, pad).map_err(io)?;
            if pad.iter().any(|&x| x != 0) {
                return Err(corrupt(
                    path,
                    format!("the padding before offset {} is not zero", b.offset),
                ));
            }
            prev_end = b.offset + b.stored_len;
        }
        let compressor = if compressed {
            Some(
                lookup(&header.method).ok_or_else(|| Error::UnknownCompressor {
                    path: path.to_path_buf(),
                    method: header.method.clone(),
                })?,
            )
        } else {
            None
        };
        Ok(Opened {
            path,
            source,
            header,
            file_len,
            structure,
            blocks,
            compressor,
        })
    }

    /// The raw length of chunk `i` of `block`.
    pub(crate) fn chunk_raw_len(&self, block: &Block, i: usize) -> usize {
        let chunk = u64::from(self.header.chunk_size);
        // Both factors were checked against the block length in the index.
        (chunk.min(block.len - i as u64 * chunk)) as usize
    }

    /// Names chunk `i` of block `id` (`u32::MAX`: the structure) in errors.
    fn part(id: u32, i: usize) -> String {
        if id == u32::MAX {
            format!("the structure, chunk {i}")
        } else {
            format!("block {id}, chunk {i}")
        }
    }

    /// Reads chunk `i` of `block` as stored (compressed or not) and checks
    /// its checksum. The bytes come straight from memory for a
    /// [`Source::Bytes`], else they are read into `stage`.
    fn stored_chunk<'s>(
        &'s self,
        id: u32,
        block: &Block,
        i: usize,
        stage: &'s mut Vec<u8>,
    ) -> Result<&'s [u8], Error> {
        // Checked by the index: the chunk lies in the file, and a stored
        // chunk is at most 128 MiB.
        let at = block.offset + block.chunk_starts[i];
        let len = block.chunks[i].stored as usize;
        let bytes = match self.source {
            Source::Bytes(b) => usize::try_from(at)
                .ok()
                .and_then(|start| b.get(start..start.checked_add(len)?))
                .ok_or_else(|| io_err(self.path, "reading", io::ErrorKind::UnexpectedEof.into()))?,
            Source::File(_) => {
                // A reused buffer usually has the right length already: no refill.
                stage.resize(len, 0);
                self.source
                    .read_at(at, stage)
                    .map_err(|e| io_err(self.path, "reading", e))?;
                stage
            }
        };
        self.check(id, block, i, bytes)?;
        Ok(bytes)
    }

    /// Checks the checksum of chunk `i` of `block`, stored as `bytes`.
    fn check(&self, id: u32, block: &Block, i: usize, bytes: &[u8]) -> Result<(), Error> {
        if XxHash3_64::oneshot(bytes) == block.chunks[i].hash {
            Ok(())
        } else {
            Err(Error::Checksum {
                path: self.path.to_path_buf(),
                part: Self::part(id, i),
            })
        }
    }

    /// Turns the checked stored bytes of chunk `i` into its raw bytes in
    /// `out`, which has exactly the chunk's raw length.
    fn unpack_chunk(&self, id: u32, i: usize, stored: &[u8], out: &mut [u8]) -> Result<(), Error> {
        match &self.compressor {
            // The index checked that an uncompressed chunk is stored raw.
            None => {
                out.copy_from_slice(stored);
                Ok(())
            }
            Some(c) => c.decompress(stored, out).map_err(|e| Error::Compression {
                path: self.path.to_path_buf(),
                method: self.header.method.clone(),
                block: id,
                chunk: i as u64,
                message: e.to_string(),
            }),
        }
    }

    /// Reads, verifies and decompresses chunks `first..first + count` of
    /// `block` into `out` (one buffer per chunk, reusing those in `spare`),
    /// using all cores.
    pub(crate) fn read_chunks(
        &self,
        id: u32,
        block: &Block,
        first: usize,
        count: usize,
        out: &mut Vec<Vec<u8>>,
        spare: &mut Vec<Vec<u8>>,
    ) -> Result<(), Error> {
        let mut raw: Vec<Vec<u8>> = Vec::with_capacity(count);
        for i in first..first + count {
            let mut buf = spare.pop().unwrap_or_default();
            // Spare buffers usually have the right length already: no refill.
            buf.resize(self.chunk_raw_len(block, i), 0);
            raw.push(buf);
        }
        crate::par::try_each_mut(&mut raw, 1, |stage, k, buf| {
            let i = first + k;
            if let (None, Source::File(_)) = (&self.compressor, self.source) {
                // Straight into the chunk's buffer.
                let at = block.offset + block.chunk_starts[i];
                self.source
                    .read_at(at, buf)
                    .map_err(|e| io_err(self.path, "reading", e))?;
                return self.check(id, block, i, buf);
            }
            let stored = self.stored_chunk(id, block, i, stage)?;
            self.unpack_chunk(id, i, stored, buf)
        })?;
        out.extend(raw);
        Ok(())
    }

    /// Reads, verifies and decompresses the chunks of `block` from `first`
    /// on into `dst`, which holds exactly as many raw bytes: each chunk
    /// is read into a small buffer that stays in cache, checked there, then
    /// copied (or decompressed) to its place, on all cores, so the page
    /// faults of a fresh `dst` are shared between them too.
    fn fill(&self, id: u32, block: &Block, first: usize, dst: &mut [u8]) -> Result<(), Error> {
        let chunk = self.header.chunk_size as usize;
        let chunks = dst.len().div_ceil(chunk);
        // A few jobs per core: enough to even out the load, few enough that
        // the staging buffers are not allocated over and over.
        let min_len = chunks.div_ceil(crate::par::threads() * 4);
        let mut parts: Vec<&mut [u8]> = dst.chunks_mut(chunk).collect();
        crate::par::try_each_mut(&mut parts, min_len, |stage, k, out| {
            let i = first + k;
            debug_assert_eq!(out.len(), self.chunk_raw_len(block, i));
            let stored = self.stored_chunk(id, block, i, stage)?;
            self.unpack_chunk(id, i, stored, out)
        })
    }

    /// Reads a whole block into a new vector of `A`s, whose type the caller
    /// checked against the block's (or `u8` for any block).
    ///
    /// Uncompressed, the index checked that the block's bytes lie in the
    /// file, so its length is trusted and the vector allocated whole (with
    /// huge pages, see `owned.rs`) and filled in place. Compressed, the
    /// vector grows batch by batch as chunks decompress, so a lying length
    /// cannot make us allocate before the data is there.
    pub(crate) fn read_owned<A: Element>(&self, id: u32, block: &Block) -> Result<Vec<A>, Error> {
        let width = size_of::<A>();
        let too_big = || corrupt(self.path, format!("block {id} is larger than memory"));
        let len = usize::try_from(block.len).map_err(|_| too_big())?;
        if !len.is_multiple_of(width) {
            return Err(corrupt(
                self.path,
                format!("block {id} is not a whole number of elements"),
            ));
        }
        if self.compressor.is_none() {
            let mut v = owned::zeroed::<A>(len / width);
            self.fill(id, block, 0, owned::bytes_mut(&mut v))?;
            return Ok(v);
        }
        // Real data rarely compresses past 64:1; a block within that of the
        // bytes it occupies in the file gets its vector at once (untouched
        // until filled, so a block that then fails to decompress cost no
        // memory), and is filled in place on all cores. One that claims
        // more grows as its chunks prove it.
        let stored: u64 = block.chunks.iter().map(|c| c.stored).sum();
        if block.len <= stored.saturating_mul(TRUSTED_RATIO) {
            let mut v = owned::try_zeroed::<A>(len / width).ok_or_else(too_big)?;
            self.fill(id, block, 0, owned::bytes_mut(&mut v))?;
            return Ok(v);
        }
        let chunk = self.header.chunk_size as usize;
        let step = crate::par::threads() * 2;
        let mut v: Vec<A> = Vec::new();
        let mut i = 0;
        while i < block.chunks.len() {
            let n = step.min(block.chunks.len() - i);
            let start = i * chunk;
            let end = len.min((i + n).saturating_mul(chunk));
            // A foreign writer's chunk size may split an element: the rest
            // of it comes with the next batch.
            v.resize(end.div_ceil(width), A::ZERO);
            self.fill(id, block, i, &mut owned::bytes_mut(&mut v)[start..end])?;
            i += n;
        }
        Ok(v)
    }

    /// Reads a whole block into one buffer.
    pub(crate) fn read_block(&self, id: u32, block: &Block) -> Result<Vec<u8>, Error> {
        self.read_owned::<u8>(id, block)
    }

    /// Verifies every chunk of every block.
    pub(crate) fn verify_all(&self) -> Result<(), Error> {
        self.read_block(u32::MAX, &self.structure)?;
        let mut bufs = Vec::new();
        let mut spare = Vec::new();
        let step = crate::par::threads() * 2;
        for (id, block) in self.blocks.iter().enumerate() {
            let mut i = 0;
            while i < block.chunks.len() {
                let n = step.min(block.chunks.len() - i);
                self.read_chunks(id as u32, block, i, n, &mut bufs, &mut spare)?;
                spare.append(&mut bufs);
                i += n;
            }
        }
        Ok(())
    }
}
