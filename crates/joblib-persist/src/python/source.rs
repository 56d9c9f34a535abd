//! The byte source of a pickle: compression detected from the first bytes,
//! the offset in the decompressed stream, the decompressed-size budget,
//! FRAME bookkeeping and bounded reads.

use std::io::{self, BufRead, BufReader, Read};

use super::PErr;
use crate::compress::Compression;

/// Longest line a text opcode may hold (INT, FLOAT, GLOBAL, PUT, ...).
const MAX_LINE: usize = 64 * 1024;
/// Step by which buffers of untrusted length grow when the bytes left in
/// the stream are unknown.
const STEP: usize = 1 << 20;

/// The compression of a joblib stream, told by its first bytes as joblib
/// does (never by the file's extension).
pub(crate) struct Container;

impl Container {
    /// The container of a stream starting with `head` (up to 8 bytes).
    pub(crate) fn detect(head: &[u8]) -> Result<Compression, PErr> {
        let starts = |m: &[u8]| head.starts_with(m);
        Ok(if starts(b"ZF") {
            return Err(PErr::pickle(
                0,
                "written by joblib < 0.9.3 (the `ZF` format), which is not supported: load and dump it again with a newer joblib",
            ));
        } else if starts(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if starts(b"BZh") {
            Compression::Bz2
        } else if starts(&[0xfd, b'7', b'z', b'X', b'Z']) {
            Compression::Xz
        } else if starts(&[0x5d, 0x00]) {
            Compression::Lzma
        } else if starts(&[0x04, 0x22, 0x4d, 0x18]) {
            Compression::Lz4
        } else if head.first() == Some(&0x78) {
            Compression::Zlib
        } else {
            Compression::None
        })
    }
}

/// Wraps `raw` (positioned after nothing: the magic bytes are still to
/// come) in the decoder of `container`.
pub(crate) fn decoder<'r>(
    container: Compression,
    raw: Box<dyn BufRead + 'r>,
) -> Result<Box<dyn Read + 'r>, PErr> {
    // Used only by the arms of compressors whose feature is off.
    #[allow(dead_code)]
    fn missing<'r>(container: &Compression, feature: &str) -> Result<Box<dyn Read + 'r>, PErr> {
        Err(PErr::pickle(
            0,
            format!(
                "compressed with {}, but joblib-persist was built without its feature `{feature}`",
                container.name()
            ),
        ))
    }
    match &container {
        Compression::None => Ok(Box::new(raw)),
        #[cfg(feature = "zlib")]
        Compression::Zlib => Ok(Box::new(flate2::bufread::ZlibDecoder::new(raw))),
        #[cfg(feature = "zlib")]
        Compression::Gzip => Ok(Box::new(flate2::bufread::MultiGzDecoder::new(raw))),
        #[cfg(not(feature = "zlib"))]
        Compression::Zlib | Compression::Gzip => missing(&container, "zlib"),
        #[cfg(feature = "bz2")]
        Compression::Bz2 => Ok(Box::new(bzip2::bufread::BzDecoder::new(raw))),
        #[cfg(not(feature = "bz2"))]
        Compression::Bz2 => missing(&container, "bz2"),
        #[cfg(feature = "xz")]
        Compression::Xz => Ok(Box::new(liblzma::bufread::XzDecoder::new(raw))),
        #[cfg(feature = "xz")]
        Compression::Lzma => {
            let stream = liblzma::stream::Stream::new_lzma_decoder(u64::MAX)
                .map_err(|e| PErr::pickle(0, format!("lzma decoder: {e}")))?;
            Ok(Box::new(liblzma::bufread::XzDecoder::new_stream(
                raw, stream,
            )))
        }
        #[cfg(not(feature = "xz"))]
        Compression::Xz | Compression::Lzma => missing(&container, "xz"),
        #[cfg(feature = "lz4")]
        Compression::Lz4 => Ok(Box::new(lz4_flex::frame::FrameDecoder::new(raw))),
        #[cfg(not(feature = "lz4"))]
        Compression::Lz4 => missing(&container, "lz4"),
        other => Err(PErr::pickle(
            0,
            format!("joblib files are never compressed with {}", other.name()),
        )),
    }
}

/// Where the bytes of the pickle stream come from.
enum Input<'r> {
    /// A reader (a file, a decompressor), buffered.
    Stream(BufReader<Box<dyn Read + 'r>>),
    /// The bytes of a memory-mapped file, read in place; array payloads
    /// can be skipped instead of read.
    Mapped(&'r [u8]),
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Stream(r) => r.read(buf),
            Input::Mapped(b) => b.read(buf),
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        match self {
            Input::Stream(r) => r.read_exact(buf),
            Input::Mapped(b) => b.read_exact(buf),
        }
    }
}

impl BufRead for Input<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Input::Stream(r) => r.fill_buf(),
            Input::Mapped(b) => b.fill_buf(),
        }
    }

    fn consume(&mut self, n: usize) {
        match self {
            Input::Stream(r) => r.consume(n),
            Input::Mapped(b) => b.consume(n),
        }
    }
}

/// The decompressed pickle stream.
pub(crate) struct Source<'r> {
    inner: Input<'r>,
    /// Offset in the decompressed stream.
    pos: u64,
    /// Decompressed bytes allowed in all.
    budget: u64,
    /// Length of the whole decompressed stream, when known (plain files).
    len: Option<u64>,
    /// End offset of the open FRAME, if one is open.
    frame_end: Option<u64>,
}

impl<'r> Source<'r> {
    /// A source over `inner`, whose decompressed length is `len` when known.
    pub(crate) fn new(inner: Box<dyn Read + 'r>, budget: u64, len: Option<u64>) -> Self {
        Source {
            inner: Input::Stream(BufReader::with_capacity(64 * 1024, inner)),
            pos: 0,
            budget,
            len,
            frame_end: None,
        }
    }

    /// A source over the bytes of a memory-mapped (uncompressed) file.
    pub(crate) fn mapped(bytes: &'r [u8], budget: u64) -> Self {
        Source {
            len: Some(bytes.len() as u64),
            inner: Input::Mapped(bytes),
            pos: 0,
            budget,
            frame_end: None,
        }
    }

    /// Whether the stream is a mapped file, whose offsets are file offsets.
    pub(crate) fn is_mapped(&self) -> bool {
        matches!(self.inner, Input::Mapped(_))
    }

    /// Skips `n` bytes of a mapped stream (an array payload left in place),
    /// checked against the budget and the bytes there as a read would be.
    pub(crate) fn skip(&mut self, n: u64) -> Result<(), PErr> {
        let at = self.pos;
        self.advance(n)?;
        let Input::Mapped(bytes) = &mut self.inner else {
            return Err(PErr::pickle(at, "internal: only a mapped stream skips"));
        };
        let rest = usize::try_from(n)
            .ok()
            .and_then(|n| bytes.get(n..))
            .ok_or_else(|| PErr::pickle(at, "the file ends early (truncated)"))?;
        *bytes = rest;
        Ok(())
    }

    /// The current offset in the decompressed stream.
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    fn io(&self, e: io::Error) -> PErr {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            PErr::pickle(self.pos, "the file ends early (truncated)")
        } else {
            PErr::pickle(self.pos, format!("reading the stream: {e}"))
        }
    }

    /// Counts `n` bytes about to be read against the budget and the frame.
    fn advance(&mut self, n: u64) -> Result<(), PErr> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| PErr::pickle(self.pos, "a length overflows"))?;
        if end > self.budget {
            return Err(PErr::pickle(
                self.pos,
                format!(
                    "the decompressed stream goes over max_decompressed_bytes ({} bytes)",
                    self.budget
                ),
            ));
        }
        if let Some(len) = self.len
            && end > len
        {
            return Err(PErr::pickle(
                self.pos,
                format!(
                    "the file ends early: {n} bytes claimed, {} left",
                    len - self.pos
                ),
            ));
        }
        if let Some(fe) = self.frame_end {
            if end > fe {
                return Err(PErr::pickle(
                    self.pos,
                    "an opcode runs past the end of its FRAME",
                ));
            }
            if end == fe {
                self.frame_end = None;
            }
        }
        self.pos = end;
        Ok(())
    }

    /// Opens a FRAME of `n` bytes.
    pub(crate) fn frame(&mut self, n: u64) -> Result<(), PErr> {
        if self.frame_end.is_some() {
            return Err(PErr::pickle(
                self.pos,
                "a new FRAME begins before the end of the current one",
            ));
        }
        if n > 0 {
            self.frame_end = Some(
                self.pos
                    .checked_add(n)
                    .ok_or_else(|| PErr::pickle(self.pos, "a FRAME length overflows"))?,
            );
        }
        Ok(())
    }

    /// Checks that no FRAME is open: array payloads are written outside frames.
    pub(crate) fn outside_frame(&self) -> Result<(), PErr> {
        match self.frame_end {
            Some(_) => Err(PErr::pickle(
                self.pos,
                "an array payload starts inside a FRAME",
            )),
            None => Ok(()),
        }
    }

    /// One byte.
    pub(crate) fn byte(&mut self) -> Result<u8, PErr> {
        Ok(self.array::<1>()?[0])
    }

    /// `N` bytes.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], PErr> {
        let mut b = [0; N];
        self.fill(&mut b)?;
        Ok(b)
    }

    /// Fills `buf` from the stream (the caller has bounded its length).
    pub(crate) fn fill(&mut self, buf: &mut [u8]) -> Result<(), PErr> {
        self.advance(buf.len() as u64)?;
        self.inner.read_exact(buf).map_err(|e| self.io(e))
    }

    /// Whether `n` more bytes can be allocated at once: they are known to
    /// be in the stream and within the budget.
    pub(crate) fn can_hold(&self, n: u64) -> bool {
        let Some(end) = self.pos.checked_add(n) else {
            return false;
        };
        end <= self.budget && self.len.is_some_and(|len| end <= len)
    }

    /// `n` bytes of untrusted length, read in steps so that a stream
    /// claiming more than it holds cannot force a large allocation.
    pub(crate) fn bytes(&mut self, n: u64) -> Result<Vec<u8>, PErr> {
        let mut out = Vec::new();
        self.read_grow(&mut out, n)?;
        Ok(out)
    }

    /// Appends `n` elements read from the stream to `out`,
    /// growing it in steps unless the stream is known to hold them.
    pub(crate) fn read_grow<T: bytemuck::Pod>(
        &mut self,
        out: &mut Vec<T>,
        n: u64,
    ) -> Result<(), PErr> {
        let size = std::mem::size_of::<T>() as u64;
        let total = n
            .checked_mul(size)
            .ok_or_else(|| PErr::pickle(self.pos, "a length overflows"))?;
        if total > self.budget.saturating_sub(self.pos) {
            return Err(PErr::pickle(
                self.pos,
                format!(
                    "{total} bytes claimed, more than max_decompressed_bytes ({}) allows",
                    self.budget
                ),
            ));
        }
        let n = usize::try_from(n).map_err(|_| PErr::pickle(self.pos, "a length overflows"))?;
        let step = if self.can_hold(total) {
            n
        } else {
            (STEP / size as usize).max(1)
        };
        if out.is_empty() && step == n {
            // Known to be in the stream: one zeroed allocation (fresh pages
            // from the allocator, not written twice), read in place.
            *out = bytemuck::try_zeroed_vec(n)
                .map_err(|_| PErr::pickle(self.pos, "out of memory for an array"))?;
            return self.fill(bytemuck::cast_slice_mut(out));
        }
        let first = out.len();
        out.try_reserve(n.min(step))
            .map_err(|_| PErr::pickle(self.pos, "out of memory"))?;
        let mut left = n;
        while left > 0 {
            // Grow geometrically with what was actually read.
            let take = left.min(step.max(out.len() - first));
            let start = out.len();
            out.resize(start + take, T::zeroed());
            let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut out[start..]);
            self.fill(bytes)?;
            left -= take;
        }
        Ok(())
    }

    /// A line ending in `\n` (not included), at most 64 KiB.
    pub(crate) fn line(&mut self) -> Result<Vec<u8>, PErr> {
        let mut line = Vec::new();
        loop {
            let pos = self.pos;
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) => return Err(PErr::pickle(pos, format!("reading the stream: {e}"))),
            };
            if buf.is_empty() {
                return Err(PErr::pickle(
                    self.pos,
                    "the file ends inside a text line (truncated)",
                ));
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if line.len() + take > MAX_LINE {
                return Err(PErr::pickle(
                    self.pos,
                    format!("a text line is longer than {MAX_LINE} bytes"),
                ));
            }
            line.extend_from_slice(&buf[..take]);
            self.inner.consume(take);
            self.advance(take as u64)?;
            if done {
                line.pop();
                return Ok(line);
            }
        }
    }
}
