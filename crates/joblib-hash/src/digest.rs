use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

use crate::Error;

/// The hash function behind a digest.
///
/// Both algorithms hash the same canonical encoding (see `docs/hashing.md`);
/// they differ in speed, strength and digest length. Digests of different
/// algorithms have different lengths, so they never compare equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// XXH3 with a 128-bit output (16-byte digests): the default. Very fast
    /// and with no accidental collisions in practice, but not built to resist
    /// someone who crafts colliding values on purpose.
    #[default]
    Xxh3_128,
    /// BLAKE3 (32-byte digests): a cryptographic hash, for caches whose keys
    /// an adversary may choose. Needs the `blake3` cargo feature.
    #[cfg(feature = "blake3")]
    Blake3,
}

impl Algorithm {
    /// The length in bytes of this algorithm's digests.
    pub const fn digest_len(self) -> usize {
        match self {
            Algorithm::Xxh3_128 => 16,
            #[cfg(feature = "blake3")]
            Algorithm::Blake3 => 32,
        }
    }
}

/// The longest digest any algorithm produces.
const MAX_LEN: usize = 32;

/// A digest of a value: 16 bytes for XXH3-128 (the default), 32 for BLAKE3.
///
/// Shown and parsed as lowercase hex; serialized as a hex string by
/// human-readable formats (JSON, TOML) and as bytes by binary ones.
///
/// ```
/// let d = joblib_hash::hash(&(1u32, "one"))?;
/// assert_eq!(d.to_hex().len(), 32);
/// assert_eq!(d.to_hex().parse::<joblib_hash::Digest>()?, d);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    // Bytes past `len` are always zero, so the derived traits see only
    // the digest itself (and the length, which tells algorithms apart).
    bytes: [u8; MAX_LEN],
    len: u8,
}

impl Digest {
    /// Builds a digest from its bytes; `None` unless there are 16 or 32.
    pub fn from_bytes(bytes: &[u8]) -> Option<Digest> {
        if bytes.len() != 16 && bytes.len() != 32 {
            return None;
        }
        let mut all = [0u8; MAX_LEN];
        all[..bytes.len()].copy_from_slice(bytes);
        Some(Digest {
            bytes: all,
            len: bytes.len() as u8,
        })
    }

    pub(crate) fn from_xxh3(value: u128) -> Digest {
        let mut bytes = [0u8; MAX_LEN];
        // Big-endian, as xxHash's canonical form, so `to_hex` matches xxhsum.
        bytes[..16].copy_from_slice(&value.to_be_bytes());
        Digest { bytes, len: 16 }
    }

    #[cfg(feature = "blake3")]
    pub(crate) fn from_blake3(value: blake3::Hash) -> Digest {
        Digest {
            bytes: *value.as_bytes(),
            len: 32,
        }
    }

    /// The digest's bytes (16 or 32 of them).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The algorithm that produced this digest, told by its length.
    pub fn algorithm(&self) -> Algorithm {
        match self.len {
            #[cfg(feature = "blake3")]
            32 => Algorithm::Blake3,
            _ => Algorithm::Xxh3_128,
        }
    }

    /// The digest as lowercase hex: 32 characters for XXH3-128, 64 for BLAKE3.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(self.as_bytes().len() * 2);
        for &b in self.as_bytes() {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl AsRef<[u8]> for Digest {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

fn invalid(input: &str, reason: &'static str) -> Error {
    Error::InvalidDigest {
        input: input.chars().take(80).collect(),
        reason,
    }
}

impl FromStr for Digest {
    type Err = Error;

    /// Parses 32 or 64 hex digits (either case).
    fn from_str(s: &str) -> Result<Digest, Error> {
        if s.len() != 32 && s.len() != 64 {
            return Err(invalid(s, "expected 32 or 64 hex digits"));
        }
        let mut bytes = [0u8; MAX_LEN];
        for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or_else(|| invalid(s, "not a hex digit"))?;
            let lo = hex_value(pair[1]).ok_or_else(|| invalid(s, "not a hex digit"))?;
            bytes[i] = (hi << 4) | lo;
        }
        Ok(Digest {
            bytes,
            len: (s.len() / 2) as u8,
        })
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            serializer.serialize_bytes(self.as_bytes())
        }
    }
}

struct DigestVisitor;

impl<'de> Visitor<'de> for DigestVisitor {
    type Value = Digest;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a digest: 16 or 32 bytes, or 32 or 64 hex digits")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Digest, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Digest, E> {
        Digest::from_bytes(v).ok_or_else(|| E::invalid_length(v.len(), &self))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Digest, A::Error> {
        // Formats without a bytes type (e.g. some JSON-like ones) give a list.
        let mut bytes = Vec::with_capacity(MAX_LEN);
        while let Some(b) = seq.next_element::<u8>()? {
            if bytes.len() == MAX_LEN {
                return Err(de::Error::invalid_length(MAX_LEN + 1, &self));
            }
            bytes.push(b);
        }
        Digest::from_bytes(&bytes).ok_or_else(|| de::Error::invalid_length(bytes.len(), &self))
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_str(DigestVisitor)
        } else {
            deserializer.deserialize_bytes(DigestVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let d = Digest::from_xxh3(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        assert_eq!(d.to_hex(), "0123456789abcdeffedcba9876543210");
        assert_eq!(d.to_string(), d.to_hex());
        assert_eq!("0123456789ABCDEFFEDCBA9876543210".parse::<Digest>(), Ok(d));
        assert!(matches!(
            "0123".parse::<Digest>(),
            Err(Error::InvalidDigest { reason, .. }) if reason.contains("32 or 64")
        ));
        assert!(matches!(
            "g123456789abcdeffedcba9876543210".parse::<Digest>(),
            Err(Error::InvalidDigest {
                reason: "not a hex digit",
                ..
            })
        ));
        // A multi-byte character must not cause a slicing panic.
        assert!("é".repeat(16).parse::<Digest>().is_err());
    }

    #[test]
    fn lengths_tell_digests_apart() {
        let short = Digest::from_bytes(&[7; 16]).unwrap();
        let long = Digest::from_bytes(&[7; 32]).unwrap();
        assert_ne!(short, long);
        assert_eq!(short.as_bytes().len(), 16);
        assert_eq!(long.to_hex().len(), 64);
        assert_eq!(long.to_hex().parse::<Digest>().unwrap(), long);
        assert_eq!(Digest::from_bytes(&[0; 20]), None);
    }
}
