//! A buffer in front of the hash function.
//!
//! serde hands values over one primitive at a time; feeding each few bytes to
//! the hash function separately would cost far more than hashing them. The
//! sink collects encoded bytes and hands them on in large blocks. For every
//! supported algorithm the one-shot and the streaming digest of the same bytes
//! are equal, so a small value that never leaves the buffer is hashed with a
//! single one-shot call, and a large one streams in blocks of `CAPACITY`.

use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use crate::{Algorithm, Digest};

/// How many bytes are collected before they are handed to the hash function.
pub(crate) const CAPACITY: usize = 256 * 1024;

enum State {
    // Boxed: the XXH3 streaming state is about 600 bytes and most values
    // never need it.
    Xxh3(Box<Xxh3>),
    #[cfg(feature = "blake3")]
    Blake3(Box<blake3::Hasher>),
}

impl State {
    fn new(algorithm: Algorithm) -> State {
        match algorithm {
            Algorithm::Xxh3_128 => State::Xxh3(Box::new(Xxh3::new())),
            #[cfg(feature = "blake3")]
            Algorithm::Blake3 => State::Blake3(Box::new(blake3::Hasher::new())),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            State::Xxh3(h) => h.update(bytes),
            #[cfg(feature = "blake3")]
            State::Blake3(h) => {
                h.update(bytes);
            }
        }
    }
}

pub(crate) struct Sink {
    /// Encoded bytes not yet given to the hash function. Public to the crate
    /// so the encoder's hot loop can append to it without a call.
    pub(crate) buf: Vec<u8>,
    state: Option<State>,
    algorithm: Algorithm,
}

impl Sink {
    pub(crate) fn new(algorithm: Algorithm, buf: Vec<u8>) -> Sink {
        debug_assert!(buf.is_empty());
        Sink {
            buf,
            state: None,
            algorithm,
        }
    }

    /// Hands the buffered bytes to the hash function.
    pub(crate) fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let algorithm = self.algorithm;
        self.state
            .get_or_insert_with(|| State::new(algorithm))
            .update(&self.buf);
        self.buf.clear();
    }

    /// Makes sure `additional` more bytes fit without passing `CAPACITY`.
    #[inline]
    pub(crate) fn make_room(&mut self, additional: usize) {
        if self.buf.len() + additional > CAPACITY {
            self.flush();
        }
    }

    #[inline]
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        self.make_room(bytes.len());
        if bytes.len() > CAPACITY {
            // Large byte strings go to the hash function directly, uncopied.
            let algorithm = self.algorithm;
            self.state
                .get_or_insert_with(|| State::new(algorithm))
                .update(bytes);
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The digest of everything written so far; the sink is left as it was.
    pub(crate) fn digest(&self) -> Digest {
        match (&self.state, self.algorithm) {
            (None, Algorithm::Xxh3_128) => Digest::from_xxh3(xxh3_128(&self.buf)),
            #[cfg(feature = "blake3")]
            (None, Algorithm::Blake3) => Digest::from_blake3(blake3::hash(&self.buf)),
            (Some(State::Xxh3(h)), _) => {
                let mut h = h.clone();
                h.update(&self.buf);
                Digest::from_xxh3(h.digest128())
            }
            #[cfg(feature = "blake3")]
            (Some(State::Blake3(h)), _) => {
                let mut h = h.clone();
                h.update(&self.buf);
                Digest::from_blake3(h.finalize())
            }
        }
    }

    /// The digest, and the emptied buffer for reuse.
    pub(crate) fn finish(self) -> (Digest, Vec<u8>) {
        let digest = self.digest();
        let mut buf = self.buf;
        buf.clear();
        (digest, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sink's design rests on one-shot and streaming digests agreeing,
    /// whatever the block boundaries.
    #[test]
    fn streaming_equals_one_shot() {
        let data: Vec<u8> = (0..3 * CAPACITY + 17).map(|i| (i * 31 % 251) as u8).collect();
        for len in [0, 1, 15, 16, 17, 128, 240, 241, 1024, CAPACITY, data.len()] {
            let bytes = &data[..len];
            let mut pieces = Sink::new(Algorithm::Xxh3_128, Vec::new());
            for chunk in bytes.chunks(1000) {
                pieces.write(chunk);
            }
            let mut whole = Sink::new(Algorithm::Xxh3_128, Vec::new());
            whole.write(bytes);
            let expected = Digest::from_xxh3(xxh3_128(bytes));
            assert_eq!(pieces.digest(), expected, "len {len}");
            assert_eq!(whole.digest(), expected, "len {len}");
        }
    }
}
