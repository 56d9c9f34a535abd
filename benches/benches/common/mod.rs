//! What several benchmarks share: a trivial task and a calibrated spin.

use std::hint::black_box;
use std::time::Instant;

/// A task that costs a few nanoseconds.
pub(crate) fn trivial(x: u64) -> u64 {
    black_box(x).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 7
}

/// Iterations of [`spin`] that take about a quarter of a second here.
pub(crate) fn calibrate() -> u64 {
    let probe = 2_000_000;
    let start = Instant::now();
    black_box(spin(probe));
    let per_iter = start.elapsed().as_secs_f64() / probe as f64;
    (0.25 / per_iter) as u64
}

/// CPU-bound work: `iterations` dependent multiply-adds.
pub(crate) fn spin(iterations: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..iterations {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    x
}
