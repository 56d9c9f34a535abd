//! A buffer in front of the hash function.
//!
//! serde hands values over one primitive at a time; feeding each few bytes to
//! the hash function separately would cost far more than hashing them. The
//! sink collects encoded bytes and hands them on in large blocks. For every
//! supported algorithm the one-shot and the streaming digest of the same bytes
//! are equal, so a small value that never leaves the buffer is hashed with a
//! single one-shot call, and a large one streams in blocks of `CAPACITY`.
//!
//! The buffer is a fixed-size array a little longer than `CAPACITY`, so that
//! the hot loop can index it with a mask and no bounds check.

use twox_hash::XxHash3_128;

use crate::{Algorithm, Digest};

/// How many bytes are collected before they are handed to the hash function
/// (a power of two).
pub(crate) const CAPACITY: usize = 32 * 1024;

/// The buffer's length: `CAPACITY` plus room for one more primitive, so that
/// `buf[(pos & MASK)..][..16]` is always in bounds.
pub(crate) const BUF_LEN: usize = CAPACITY + 16;

/// Masks a position below `CAPACITY` to itself, and proves to the compiler
/// that it is below `CAPACITY`.
pub(crate) const MASK: usize = CAPACITY - 1;

/// A sink's buffer.
pub(crate) type Buffer = Box<[u8; BUF_LEN]>;

/// A new, zeroed buffer.
pub(crate) fn new_buffer() -> Buffer {
    Box::new([0u8; BUF_LEN])
}

enum State {
    // Boxed: the XXH3 streaming state is about 600 bytes and most values
    // never need it.
    Xxh3(Box<XxHash3_128>),
    #[cfg(feature = "blake3")]
    Blake3(Box<blake3::Hasher>),
}

impl State {
    fn new(algorithm: Algorithm) -> State {
        match algorithm {
            Algorithm::Xxh3_128 => State::Xxh3(Box::new(XxHash3_128::new())),
            #[cfg(feature = "blake3")]
            Algorithm::Blake3 => State::Blake3(Box::new(blake3::Hasher::new())),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            State::Xxh3(h) => h.write(bytes),
            #[cfg(feature = "blake3")]
            State::Blake3(h) => {
                h.update(bytes);
            }
        }
    }
}

pub(crate) struct Sink {
    /// Public to the crate so sequences can write runs into it at their own
    /// cursor; bytes from `fill` on do not matter.
    pub(crate) buf: Buffer,
    /// How many bytes of `buf` hold encoded data not yet hashed.
    pub(crate) fill: usize,
    state: Option<State>,
    algorithm: Algorithm,
}

impl Sink {
    /// A sink writing into `buf`, whose old contents do not matter.
    pub(crate) fn new(algorithm: Algorithm, buf: Buffer) -> Sink {
        Sink {
            buf,
            fill: 0,
            state: None,
            algorithm,
        }
    }

    fn state(&mut self) -> &mut State {
        let algorithm = self.algorithm;
        self.state.get_or_insert_with(|| State::new(algorithm))
    }

    /// Hands the buffered bytes to the hash function.
    pub(crate) fn flush(&mut self) {
        if self.fill > 0 {
            let fill = self.fill;
            let algorithm = self.algorithm;
            self.state
                .get_or_insert_with(|| State::new(algorithm))
                .update(&self.buf[..fill]);
            self.fill = 0;
        }
    }

    /// Makes room for `additional` more bytes below `CAPACITY`, flushing if
    /// needed (`additional` may be at most `CAPACITY`).
    #[inline]
    pub(crate) fn reserve(&mut self, additional: usize) {
        debug_assert!(additional <= CAPACITY);
        if self.fill + additional > CAPACITY {
            self.flush();
        }
    }

    #[inline]
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        if bytes.len() > CAPACITY {
            // Large byte strings go to the hash function directly, uncopied.
            self.flush();
            self.state().update(bytes);
            return;
        }
        self.reserve(bytes.len());
        self.buf[self.fill..self.fill + bytes.len()].copy_from_slice(bytes);
        self.fill += bytes.len();
    }

    /// The digest of everything written so far; the sink is left as it was.
    pub(crate) fn digest(&self) -> Digest {
        let pending = &self.buf[..self.fill];
        match (&self.state, self.algorithm) {
            (None, Algorithm::Xxh3_128) => Digest::from_xxh3(XxHash3_128::oneshot(pending)),
            #[cfg(feature = "blake3")]
            (None, Algorithm::Blake3) => Digest::from_blake3(blake3::hash(pending)),
            (Some(State::Xxh3(h)), _) => {
                let mut h = h.clone();
                h.write(pending);
                Digest::from_xxh3(h.finish_128())
            }
            #[cfg(feature = "blake3")]
            (Some(State::Blake3(h)), _) => {
                let mut h = h.clone();
                h.update(pending);
                Digest::from_blake3(h.finalize())
            }
        }
    }

    /// The digest, and the buffer for reuse.
    pub(crate) fn finish(self) -> (Digest, Buffer) {
        (self.digest(), self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sink's design rests on one-shot and streaming digests agreeing,
    /// whatever the block boundaries.
    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..3 * CAPACITY + 17)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        for len in [0, 1, 15, 16, 17, 128, 240, 241, 1024, CAPACITY, data.len()] {
            let bytes = &data[..len];
            let mut pieces = Sink::new(Algorithm::Xxh3_128, new_buffer());
            for chunk in bytes.chunks(1000) {
                pieces.write(chunk);
            }
            let mut whole = Sink::new(Algorithm::Xxh3_128, new_buffer());
            whole.write(bytes);
            let expected = Digest::from_xxh3(XxHash3_128::oneshot(bytes));
            assert_eq!(pieces.digest(), expected, "len {len}");
            assert_eq!(whole.digest(), expected, "len {len}");
        }
    }
}
