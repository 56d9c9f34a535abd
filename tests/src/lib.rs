//! Shared pieces of the cross-crate integration tests in `tests/tests/`.

use std::collections::{HashMap, HashSet};

use joblib::hash::Digest;

/// Values whose digests must agree between processes, with their names.
///
/// The maps and sets are built in this process, so each process fills them
/// with its own random hasher seed and so its own iteration order.
pub fn samples() -> Vec<(&'static str, Digest)> {
    let map: HashMap<String, Vec<f64>> = (0..200)
        .map(|i| (format!("feature-{i}"), vec![i as f64; i % 7]))
        .collect();
    let set: HashSet<u64> = (0..1000).map(|i| i * 31).collect();
    let grid = ndarray::Array2::from_shape_fn((64, 48), |(i, j)| (i as f64).sin() * j as f64);
    let digest =
        |v: &dyn Fn() -> Result<Digest, joblib::hash::Error>| v().unwrap_or_else(|e| panic!("{e}"));
    vec![
        ("map", digest(&|| joblib::hash(&map))),
        ("set", digest(&|| joblib::hash(&set))),
        ("grid", digest(&|| joblib::hash(&grid))),
        ("transposed grid", digest(&|| joblib::hash(&grid.t()))),
        ("text", digest(&|| joblib::hash("joblib for Rust"))),
        (
            "tuple",
            digest(&|| joblib::hash(&(1u8, -2i64, 3.5f32, Some("x")))),
        ),
    ]
}
