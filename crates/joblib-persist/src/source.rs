//! Reading a file's fixed parts and its blocks: from an open file by
//! offset, or from bytes in memory (a buffered stream or a mapping).

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

use crate::compress::{Compressor, lookup};
use crate::error::{Error, corrupt, io_err};
use crate::format::{Block, HEADER_LEN, Header, Index, TRAILER_LEN, Trailer};

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
        if xxh3_64(&index) != trailer.index_hash {
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
        let io = |e| io_err(self.path, "reading", e);
        let part = |i: usize| {
            if id == u32::MAX {
                format!("the structure, chunk {i}")
            } else {
                format!("block {id}, chunk {i}")
            }
        };
        let mut raw: Vec<Vec<u8>> = Vec::with_capacity(count);
        let mut stored: Vec<Vec<u8>> = Vec::new();
        for i in first..first + count {
            let mut buf = spare.pop().unwrap_or_default();
            // Spare buffers usually have the right length already: no refill.
            buf.resize(self.chunk_raw_len(block, i), 0);
            let at = block.offset + block.chunk_starts[i];
            match self.compressor {
                None => self.source.read_at(at, &mut buf).map_err(io)?,
                Some(_) => {
                    // Checked by the index: a stored chunk is at most 128 MiB.
                    let mut s = vec![0u8; block.chunks[i].stored as usize];
                    self.source.read_at(at, &mut s).map_err(io)?;
                    stored.push(s);
                }
            }
            raw.push(buf);
        }
        let check = |i: usize, bytes: &[u8]| {
            if xxh3_64(bytes) == block.chunks[i].hash {
                Ok(())
            } else {
                Err(Error::Checksum {
                    path: self.path.to_path_buf(),
                    part: part(i),
                })
            }
        };
        match &self.compressor {
            None => raw
                .par_iter()
                .enumerate()
                .try_for_each(|(k, buf)| check(first + k, buf))?,
            Some(c) => raw
                .par_iter_mut()
                .zip(stored.par_iter())
                .enumerate()
                .try_for_each(|(k, (buf, s))| {
                    check(first + k, s)?;
                    c.decompress(s, buf).map_err(|e| Error::Compression {
                        path: self.path.to_path_buf(),
                        method: self.header.method.clone(),
                        block: id,
                        chunk: (first + k) as u64,
                        message: e.to_string(),
                    })
                })?,
        }
        out.extend(raw);
        Ok(())
    }

    /// Reads a whole block into one buffer, growing it chunk by chunk so a
    /// lying length cannot make us allocate before the data is there.
    pub(crate) fn read_block(&self, id: u32, block: &Block) -> Result<Vec<u8>, Error> {
        let mut all = Vec::new();
        let mut bufs = Vec::new();
        let mut spare = Vec::new();
        let step = rayon::current_num_threads().max(1) * 2;
        let mut i = 0;
        while i < block.chunks.len() {
            let n = step.min(block.chunks.len() - i);
            self.read_chunks(id, block, i, n, &mut bufs, &mut spare)?;
            for b in bufs.drain(..) {
                all.extend_from_slice(&b);
                spare.push(b);
            }
            i += n;
        }
        Ok(all)
    }

    /// Verifies every chunk of every block.
    pub(crate) fn verify_all(&self) -> Result<(), Error> {
        self.read_block(u32::MAX, &self.structure)?;
        let mut bufs = Vec::new();
        let mut spare = Vec::new();
        let step = rayon::current_num_threads().max(1) * 2;
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
