//! Function names as directory names that cannot escape the cache.
//!
//! A function name such as `my_crate::model::fit` is split on `::`; each
//! segment becomes one directory. Bytes outside `[A-Za-z0-9_-]` are written
//! as `%XX`, so `..`, `/`, `\`, NUL, a leading `.` or a drive letter turn
//! into plain names. A segment that would look like an argument digest (32
//! or 64 lowercase hex digits) has its first byte encoded too, so entry
//! directories and function directories can always be told apart, and the
//! empty segment is written `%`.

use std::path::{Path, PathBuf};

/// Whether `b` is kept as is in a directory name.
fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Whether a directory name is that of an entry: an argument digest in hex.
pub(crate) fn is_digest_name(name: &str) -> bool {
    (name.len() == 32 || name.len() == 64)
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// One segment of a function name as a directory name.
#[cfg(test)]
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    encode_segment_into(segment, &mut out);
    out
}

/// [`encode_segment`], appended to `out`.
fn encode_segment_into(segment: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    if segment.is_empty() {
        out.push('%');
        return;
    }
    let escape_first = is_digest_name(segment);
    for (i, b) in segment.bytes().enumerate() {
        if plain(b) && !(i == 0 && escape_first) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// The inverse of [`encode_segment`]; `None` for a name it cannot produce.
pub(crate) fn decode_segment(name: &str) -> Option<String> {
    if name == "%" {
        return Some(String::new());
    }
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = name.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if plain(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// A digest in lowercase hex, without allocating (hits make it twice).
pub(crate) struct Hex {
    buf: [u8; 64],
    len: usize,
}

impl Hex {
    pub(crate) fn of(digest: &joblib_hash::Digest) -> Hex {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = Hex {
            buf: [0; 64],
            len: 0,
        };
        for (&b, pair) in digest.as_bytes().iter().zip(hex.buf.chunks_exact_mut(2)) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0xf)];
            hex.len += 2;
        }
        hex
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII hex digits were written.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// The directory of a function's entries, below `root`.
pub(crate) fn function_dir(root: &Path, function: &str) -> PathBuf {
    function_path(root, function, &[])
}

/// The path below a function's directory made of `rest` (an entry and a
/// file in it), built in one allocation: it is made on every hit.
pub(crate) fn function_path(root: &Path, function: &str, rest: &[&str]) -> PathBuf {
    let extra: usize = rest.iter().map(|r| r.len() + 1).sum();
    let mut relative = String::with_capacity(function.len() + 8 + extra);
    for segment in function.split("::") {
        if !relative.is_empty() {
            relative.push('/');
        }
        encode_segment_into(segment, &mut relative);
    }
    for r in rest {
        relative.push('/');
        relative.push_str(r);
    }
    let mut dir = PathBuf::with_capacity(root.as_os_str().len() + 1 + relative.len());
    dir.push(root);
    // Encoded segments hold no separator, so `/` splits them on every
    // platform (Windows accepts it too).
    dir.push(relative);
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside_the_root() {
        let root = Path::new("/cache");
        for name in [
            "..",
            "../../etc",
            "/etc/passwd",
            "a/../../b",
            "C:\\x",
            "\0",
            ".",
            "a::..::b",
        ] {
            let dir = function_dir(root, name);
            assert!(dir.starts_with(root), "{name:?} -> {}", dir.display());
            for comp in dir.strip_prefix(root).unwrap().components() {
                assert!(matches!(comp, std::path::Component::Normal(_)), "{name:?}");
                let s = comp.as_os_str().to_str().unwrap();
                assert!(!s.starts_with('.'), "{name:?} -> {s}");
                assert!(!s.contains('/') && !s.contains('\\'));
            }
        }
    }

    #[test]
    fn hex_is_the_digest_s() {
        for n in 0..50u64 {
            let d = joblib_hash::hash(&n).unwrap();
            assert_eq!(Hex::of(&d).as_str(), d.to_hex());
        }
    }

    #[test]
    fn paths_are_the_function_dir_s() {
        let root = Path::new("/cache");
        for name in [
            "a::b",
            "",
            "::",
            "x::..::y",
            "0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(
                function_path(root, name, &["ab", "output.jbl"]),
                function_dir(root, name).join("ab").join("output.jbl")
            );
            let segments: Vec<String> = name.split("::").map(encode_segment).collect();
            assert_eq!(function_dir(root, name), root.join(segments.join("/")));
        }
    }

    #[test]
    fn round_trip_and_readable() {
        assert_eq!(encode_segment("fit_model"), "fit_model");
        assert_eq!(encode_segment(".."), "%2E%2E");
        assert_eq!(encode_segment(""), "%");
        let hexy = "0123456789abcdef0123456789abcdef";
        assert!(!is_digest_name(&encode_segment(hexy)));
        for s in ["", "a b", "é", "..", hexy, "x%y", "func.json", "a/b"] {
            assert_eq!(decode_segment(&encode_segment(s)).as_deref(), Some(s));
        }
        assert_eq!(decode_segment("a.b"), None);
    }
}
