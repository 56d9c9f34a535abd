//! Arbitrary bytes into `load_from_reader`: an error or a value, never a
//! panic, a hang or an allocation the input does not justify. The input is
//! also made to look like a file (valid header, trailer and index checksums
//! recomputed) so the fuzzer gets past the checksums into the parsers.
#![no_main]

use std::collections::BTreeMap;

use joblib_persist::load_from_reader;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Deserialize)]
#[allow(dead_code)]
enum Value {
    Unit,
    Num(f64),
    Text(String),
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    List(Vec<Value>),
    Floats(Vec<f64>),
    Ints(Vec<i32>),
    Map(BTreeMap<String, Value>),
    Maybe(Option<Box<Value>>),
}

/// Rewrites the header and trailer checksums of a would-be file.
fn reseal(data: &[u8]) -> Vec<u8> {
    use twox_hash::XxHash3_64;
    let mut f = data.to_vec();
    if f.len() < 128 {
        return f;
    }
    f[..8].copy_from_slice(b"\x89JBL\r\n\x1a\n");
    let h = XxHash3_64::oneshot(&f[..56]);
    f[56..64].copy_from_slice(&h.to_le_bytes());
    let n = f.len();
    let t = n - 64;
    f[t..t + 8].copy_from_slice(b"\x89JBLEND\n");
    f[t + 32..t + 40].copy_from_slice(&(n as u64).to_le_bytes());
    let mut at = [0u8; 8];
    at.copy_from_slice(&f[t + 8..t + 16]);
    let index_offset = u64::from_le_bytes(at).min(t as u64) as usize;
    let index_offset = index_offset.max(64);
    f[t + 8..t + 16].copy_from_slice(&(index_offset as u64).to_le_bytes());
    f[t + 16..t + 24].copy_from_slice(&((t - index_offset.min(t)) as u64).to_le_bytes());
    let ih = XxHash3_64::oneshot(&f[index_offset.min(t)..t]);
    f[t + 24..t + 32].copy_from_slice(&ih.to_le_bytes());
    let th = XxHash3_64::oneshot(&f[t..t + 56]);
    f[t + 56..t + 64].copy_from_slice(&th.to_le_bytes());
    f
}

fuzz_target!(|data: &[u8]| {
    let _ = load_from_reader::<IgnoredAny, _>(data);
    let _ = load_from_reader::<Value, _>(data);
    let sealed = reseal(data);
    let _ = load_from_reader::<IgnoredAny, _>(&sealed[..]);
    let _ = load_from_reader::<Value, _>(&sealed[..]);
    let _ = load_from_reader::<ndarray::Array2<f64>, _>(&sealed[..]);
});
