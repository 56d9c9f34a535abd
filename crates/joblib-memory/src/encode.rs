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
pub(crate) fn encode_segment(segment: &str) -> String {
    if segment.is_empty() {
        return "%".to_string();
    }
    let escape_first = is_digest_name(segment);
    let mut out = String::with_capacity(segment.len());
    for (i, b) in segment.bytes().enumerate() {
        if plain(b) && !(i == 0 && escape_first) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

/// The directory of a function's entries, below `root`.
pub(crate) fn function_dir(root: &Path, function: &str) -> PathBuf {
    let mut dir = root.to_path_buf();
    for segment in function.split("::") {
        dir.push(encode_segment(segment));
    }
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
