//! The block writer: aligned, chunked, checksummed blocks, compressed on all
//! cores while serialization goes on, streamed to a [`Sink`] without seeking.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::time::Duration;

use twox_hash::XxHash3_64;

use crate::compress::Compressor;
use crate::format::{ALIGN, BlockEntry, ChunkEntry, Dtype};
use crate::par::Wait;
use crate::sink::Sink;

/// Zero bytes used for alignment padding.
const ZEROS: [u8; ALIGN as usize] = [0; ALIGN as usize];

/// A chunk after its job: the bytes to store and their checksum.
struct Done {
    /// The raw chunk (returned for reuse; stored as is when uncompressed).
    raw: Vec<u8>,
    /// The compressed bytes, if compressing.
    packed: Option<Vec<u8>>,
    hash: u64,
}

type JobResult = (u64, io::Result<Done>);

/// Streams blocks to a sink, remembering where each went.
pub(crate) struct BlockWriter<S: Sink> {
    out: S,
    /// Bytes written so far: the offset of the next byte.
    pos: u64,
    chunk_size: usize,
    compressor: Option<Arc<dyn Compressor>>,
    level: Option<i32>,
    /// The chunk being filled.
    chunk: Vec<u8>,
    /// Spare chunk buffers, reused so memory stays flat.
    spare: Vec<Vec<u8>>,
    /// Spare buffers for compressed chunks: reused rather than allocated
    /// (and page-faulted in) for every chunk.
    packed_spare: Vec<Vec<u8>>,
    /// Chunks handed to the thread pool and not yet written.
    in_flight: usize,
    max_in_flight: usize,
    next_submit: u64,
    next_write: u64,
    finished: BTreeMap<u64, io::Result<Done>>,
    tx: Sender<JobResult>,
    rx: Receiver<JobResult>,
    /// The block being written, if any.
    open: Option<BlockEntry>,
    /// Finished blocks, by id.
    pub(crate) blocks: Vec<BlockEntry>,
}

impl<S: Sink> BlockWriter<S> {
    pub(crate) fn new(
        out: S,
        chunk_size: usize,
        compressor: Option<Arc<dyn Compressor>>,
        level: Option<i32>,
    ) -> Self {
        let (tx, rx) = channel();
        // Two chunks per core keep every core busy while others are written.
        let max_in_flight = crate::par::threads() * 2;
        BlockWriter {
            out,
            pos: 0,
            chunk_size,
            compressor,
            level,
            chunk: Vec::new(),
            spare: Vec::new(),
            packed_spare: Vec::new(),
            in_flight: 0,
            max_in_flight,
            next_submit: 0,
            next_write: 0,
            finished: BTreeMap::new(),
            tx,
            rx,
            open: None,
            blocks: Vec::new(),
        }
    }

    /// Writes bytes that are not part of a block (header, index, trailer).
    pub(crate) fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.put(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    fn fresh_chunk(&mut self) -> Vec<u8> {
        let mut c = self.spare.pop().unwrap_or_default();
        c.clear();
        c.reserve_exact(self.chunk_size);
        c
    }

    /// Starts a new block at the next multiple of 64 and returns its id.
    pub(crate) fn begin(&mut self, dtype: Dtype) -> io::Result<u32> {
        if self.open.is_some() {
            return Err(io::Error::other("a block is already open"));
        }
        let pad = (ALIGN - self.pos % ALIGN) % ALIGN;
        self.write_raw(&ZEROS[..pad as usize])?;
        let id = u32::try_from(self.blocks.len())
            .map_err(|_| io::Error::other("more than 2^32 blocks in one value"))?;
        self.open = Some(BlockEntry {
            offset: self.pos,
            len: 0,
            dtype: dtype.code(),
            shape: Vec::new(),
            chunks: Vec::new(),
        });
        if self.chunk.capacity() < self.chunk_size {
            self.chunk = self.fresh_chunk();
        }
        Ok(id)
    }

    /// Appends bytes to the open block. Inlined: this is the per-element path.
    #[inline(always)]
    pub(crate) fn push(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.chunk.len() + bytes.len() <= self.chunk_size {
            self.chunk.extend_from_slice(bytes);
            Ok(())
        } else {
            self.push_slow(bytes)
        }
    }

    #[inline(never)]
    fn push_slow(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let room = self.chunk_size - self.chunk.len();
            if room == 0 {
                let next = self.fresh_chunk();
                let full = std::mem::replace(&mut self.chunk, next);
                self.submit(full)?;
                continue;
            }
            let n = room.min(bytes.len());
            self.chunk.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Writes the whole chunks at the start of `bytes` straight to the sink
    /// and returns how many bytes that was, if the block is not compressed,
    /// the sink takes borrowed bytes cheaply, and the open block's chunk
    /// buffer is empty (the caller's, if it borrowed it): the same chunks,
    /// checksums and bytes as the chunked path, without the copy into chunk
    /// buffers. Chunks in flight are written first, to keep the order.
    /// `Ok(0)` when it does not apply.
    pub(crate) fn push_whole_chunks(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let whole = bytes.len() / self.chunk_size * self.chunk_size;
        if whole == 0
            || self.compressor.is_some()
            || !self.chunk.is_empty()
            || !self.out.takes_borrowed()
        {
            return Ok(0);
        }
        while self.in_flight > 0 {
            self.write_finished(true)?;
        }
        for chunk in bytes[..whole].chunks_exact(self.chunk_size) {
            let Some(open) = self.open.as_mut() else {
                return Err(io::Error::other("chunk written outside a block"));
            };
            let len = chunk.len() as u64;
            open.len += len;
            open.chunks.push(ChunkEntry {
                stored: len,
                hash: XxHash3_64::oneshot(chunk),
            });
            self.out.put(chunk)?;
            self.pos += len;
        }
        Ok(whole)
    }

    /// Lends the chunk buffer of the open block to a caller that fills it
    /// directly (the serializer's per-element path); give it back with
    /// [`return_chunk`](Self::return_chunk) before ending the block.
    pub(crate) fn lend_chunk(&mut self) -> Vec<u8> {
        if self.chunk.capacity() < self.chunk_size {
            self.chunk = self.fresh_chunk();
        }
        std::mem::take(&mut self.chunk)
    }

    pub(crate) fn return_chunk(&mut self, chunk: Vec<u8>) {
        self.chunk = chunk;
    }

    /// Takes a lent chunk that is full and lends an empty one.
    pub(crate) fn swap_full_chunk(&mut self, full: Vec<u8>) -> io::Result<Vec<u8>> {
        let next = self.fresh_chunk();
        self.submit(full)?;
        Ok(next)
    }

    pub(crate) fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Compresses (or only hashes) one chunk.
    fn job(
        compressor: Option<&dyn Compressor>,
        level: Option<i32>,
        raw: Vec<u8>,
        mut packed: Vec<u8>,
    ) -> io::Result<Done> {
        match compressor {
            None => {
                let hash = XxHash3_64::oneshot(&raw);
                Ok(Done {
                    raw,
                    packed: None,
                    hash,
                })
            }
            Some(c) => {
                packed.clear();
                c.compress(&raw, level, &mut packed)?;
                let hash = XxHash3_64::oneshot(&packed);
                Ok(Done {
                    raw,
                    packed: Some(packed),
                    hash,
                })
            }
        }
    }

    /// A buffer for a compressed chunk: a spare one when compressing.
    fn packed_buffer(&mut self) -> Vec<u8> {
        if self.compressor.is_some() {
            self.packed_spare.pop().unwrap_or_default()
        } else {
            Vec::new()
        }
    }

    /// Hands a full chunk to the thread pool; writes finished ones in order.
    fn submit(&mut self, raw: Vec<u8>) -> io::Result<()> {
        let seq = self.next_submit;
        self.next_submit += 1;
        let tx = self.tx.clone();
        let compressor = self.compressor.clone();
        let level = self.level;
        let packed = self.packed_buffer();
        crate::par::spawn(move || {
            let done = Self::job(compressor.as_deref(), level, raw, packed);
            // The receiver lives as long as the writer, which waits for every job.
            let _ = tx.send((seq, done));
        });
        self.in_flight += 1;
        self.write_finished(false)?;
        while self.in_flight >= self.max_in_flight {
            self.write_finished(true)?;
        }
        Ok(())
    }

    /// Collects finished jobs (waiting for one if `wait`) and writes those
    /// whose turn has come.
    fn write_finished(&mut self, wait: bool) -> io::Result<()> {
        if wait {
            let (seq, done) = self.recv_one()?;
            self.finished.insert(seq, done);
        }
        while let Ok((seq, done)) = self.rx.try_recv() {
            self.finished.insert(seq, done);
        }
        while let Some(done) = self.finished.remove(&self.next_write) {
            self.next_write += 1;
            self.in_flight -= 1;
            self.store(done?)?;
        }
        Ok(())
    }

    /// Waits for one job. On a rayon worker thread (a dump inside a parallel
    /// loop) it runs pool jobs meanwhile: blocking there could deadlock a
    /// pool whose every thread waits for compression jobs queued behind it.
    fn recv_one(&self) -> io::Result<JobResult> {
        let lost = || io::Error::other("a compression job was lost");
        loop {
            match self.rx.try_recv() {
                Ok(r) => return Ok(r),
                Err(TryRecvError::Disconnected) => return Err(lost()),
                Err(TryRecvError::Empty) => {}
            }
            match crate::par::yield_now() {
                Wait::Block => return self.rx.recv().map_err(|_| lost()),
                Wait::Ran => {}
                Wait::Idle => std::thread::sleep(Duration::from_micros(20)),
            }
        }
    }

    /// Writes one processed chunk and records it in the open block.
    fn store(&mut self, done: Done) -> io::Result<()> {
        let Some(open) = self.open.as_mut() else {
            return Err(io::Error::other("chunk written outside a block"));
        };
        let raw_len = done.raw.len() as u64;
        open.len += raw_len;
        let stored = match done.packed {
            None => {
                open.chunks.push(ChunkEntry {
                    stored: raw_len,
                    hash: done.hash,
                });
                if let Some(buf) = self.out.put_owned(done.raw)? {
                    self.spare.push(buf);
                }
                raw_len
            }
            Some(packed) => {
                let n = packed.len() as u64;
                open.chunks.push(ChunkEntry {
                    stored: n,
                    hash: done.hash,
                });
                if let Some(buf) = self.out.put_owned(packed)? {
                    self.packed_spare.push(buf);
                }
                self.spare.push(done.raw);
                n
            }
        };
        self.spare.truncate(self.max_in_flight + 2);
        self.packed_spare.truncate(self.max_in_flight + 2);
        self.pos += stored;
        Ok(())
    }

    /// Ends the open block; `shape` is its logical shape if known.
    pub(crate) fn end(&mut self, shape: Option<Vec<u64>>) -> io::Result<()> {
        if !self.chunk.is_empty() {
            let last = std::mem::take(&mut self.chunk);
            if self.in_flight == 0 {
                // A small block: not worth a trip through the pool.
                let packed = self.packed_buffer();
                let done = Self::job(self.compressor.as_deref(), self.level, last, packed)?;
                self.next_submit += 1;
                self.next_write += 1;
                self.store(done)?;
            } else {
                self.submit(last)?;
            }
        }
        while self.in_flight > 0 {
            self.write_finished(true)?;
        }
        let Some(mut block) = self.open.take() else {
            return Err(io::Error::other("no block is open"));
        };
        let width = Dtype::from_code(block.dtype).map_or(1, Dtype::width) as u64;
        let elements = block.len / width;
        block.shape = match shape {
            Some(s) if s.iter().try_fold(1u64, |a, &d| a.checked_mul(d)) == Some(elements) => s,
            _ => vec![elements],
        };
        self.blocks.push(block);
        Ok(())
    }

    /// Writes a whole byte string as a block of its own.
    pub(crate) fn block_of_bytes(&mut self, dtype: Dtype, bytes: &[u8]) -> io::Result<u32> {
        let id = self.begin(dtype)?;
        let direct = self.push_whole_chunks(bytes)?;
        self.push(&bytes[direct..])?;
        self.end(None)?;
        Ok(id)
    }

    pub(crate) fn into_inner(self) -> S {
        self.out
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
