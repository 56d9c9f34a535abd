//! How the cache notices code changes.
//!
//! - A function marked `#[cache(MEMORY)]` is keyed on a fingerprint of its
//!   own tokens, taken at compile time: edit its body and rebuild, and its
//!   old results are never returned again (and are cleared with a warning).
//!   Comments and formatting do not count.
//! - `depends_on(helper)` folds a helper's fingerprint into its caller's, so
//!   editing the helper invalidates the caller too, which Python's joblib
//!   cannot do.
//! - A closure has no tokens to fingerprint: give it a `version`, and change
//!   the version when the closure changes.
//!
//! Run `cargo run --release --example cache_invalidation`, then edit the
//! body of `scale` below (say, `* 2.0` to `* 3.0`) and run it again: both
//! `scale` and `pipeline` are recomputed; run it a third time and both are
//! answered from the cache. The cache lives in `joblib-cache-invalidation`
//! under the system's temporary directory.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use joblib::prelude::*;

static MEMORY: LazyLock<Memory> = LazyLock::new(|| {
    Memory::builder(std::env::temp_dir().join("joblib-cache-invalidation"))
        .verbose(1)
        .build()
        .unwrap_or_else(|err| {
            eprintln!("no cache this time ({err})");
            Memory::disabled()
        })
});

static COMPUTED: AtomicUsize = AtomicUsize::new(0);

/// A helper: edit this body, rebuild, and its callers are recomputed too.
#[cache(MEMORY)]
fn scale(values: Vec<f64>) -> Vec<f64> {
    COMPUTED.fetch_add(1, Ordering::Relaxed);
    values.iter().map(|v| v * 2.0).collect()
}

/// Depends on `scale`: its fingerprint includes `scale`'s.
#[cache(MEMORY, depends_on(scale))]
fn pipeline(n: usize) -> f64 {
    COMPUTED.fetch_add(1, Ordering::Relaxed);
    scale((0..n).map(|i| i as f64).collect()).iter().sum()
}

fn main() {
    let total = pipeline(1_000);
    let computed = COMPUTED.swap(0, Ordering::Relaxed);
    println!("\npipeline(1000) = {total}: {computed} function(s) computed in this run");
    if computed == 0 {
        println!(
            "Both answered from the cache. Edit `scale` and run again to see both recomputed."
        );
    }

    // A closure, versioned by hand.
    let fit = |version: &str| {
        MEMORY
            .cache("cache_invalidation::fit", |alpha: f64| {
                COMPUTED.fetch_add(1, Ordering::Relaxed);
                alpha * 10.0
            })
            .version(version)
    };
    println!("\nThe same closure under version 1, called twice:");
    fit("1").call(0.5);
    fit("1").call(0.5);
    println!("computed {} time(s)", COMPUTED.swap(0, Ordering::Relaxed));
    println!("\nAfter a change, version 2: the version-1 result is not used, and is cleared:");
    fit("2").call(0.5);
    println!("computed {} time(s)", COMPUTED.swap(0, Ordering::Relaxed));
    println!("\nBack to version 1: its entry was cleared, so it computes again:");
    fit("1").call(0.5);
    println!("computed {} time(s)", COMPUTED.swap(0, Ordering::Relaxed));
}
