//! Compressors compared: size and time to dump and load the same data with
//! every method built in, checked for a bit-exact round trip.
//!
//! `cargo run --release --example persistence` uses the default methods
//! (none, lz4, zstd); `--features zlib,bz2,xz` adds zlib, gzip, bz2, xz and
//! lzma. The files go to `joblib-persistence` under the system's temporary
//! directory, which the example prints and removes at the end.

use std::time::Instant;

use joblib::persist::{Compression, DumpOptions, MmapArray, MmapMode, inspect};
use joblib::prelude::*;
use ndarray::{Array2, Ix2};

#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
struct Experiment {
    name: String,
    /// A smooth, quantized signal: compressible, as measurements often are.
    signal: Array2<f64>,
}

#[derive(serde::Deserialize)]
struct MappedExperiment {
    name: String,
    signal: MmapArray<f64, Ix2>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join("joblib-persistence");
    std::fs::create_dir_all(&dir)?;
    let value = Experiment {
        name: "smooth signal".into(),
        signal: Array2::from_shape_fn((1_000, 2_500), |(i, j)| {
            let x = (i * 2_500 + j) as f64;
            // A slow wave with a faster ripple, recorded to 3 decimals.
            let v = (x * 1e-3).sin() + 0.01 * (x * 0.37).sin();
            (v * 1e3).round() / 1e3
        }),
    };
    let raw = value.signal.len() * 8;
    println!("{} MB of f64 in {}\n", raw / 1_000_000, dir.display());
    println!(
        "{:<6} {:>12} {:>7} {:>10} {:>10}",
        "method", "bytes", "ratio", "dump", "load"
    );
    for method in [
        Compression::None,
        Compression::Lz4,
        Compression::Zstd,
        Compression::Zlib,
        Compression::Gzip,
        Compression::Bz2,
        Compression::Xz,
        Compression::Lzma,
    ] {
        let path = dir.join(format!("experiment.{}.jbl", method.name()));
        let start = Instant::now();
        match DumpOptions::new()
            .compress(method.clone())
            .dump(&value, &path)
        {
            Ok(()) => {}
            Err(err) => {
                println!("{:<6} not built in: {err}", method.name());
                continue;
            }
        }
        let dumped = start.elapsed();
        let start = Instant::now();
        let back: Experiment = load(&path)?;
        let loaded = start.elapsed();
        assert_eq!(back, value, "the round trip is exact");
        let size = std::fs::metadata(&path)?.len();
        println!(
            "{:<6} {:>12} {:>6.2}x {:>8.1}ms {:>8.1}ms",
            method.name(),
            size,
            raw as f64 / size as f64,
            dumped.as_secs_f64() * 1e3,
            loaded.as_secs_f64() * 1e3
        );
    }

    // What a file holds, read without loading the data.
    let plain = dir.join("experiment.none.jbl");
    let info = inspect(&plain)?;
    println!("\ninspect: {info:#?}");

    // The uncompressed file's array, used in place.
    let start = Instant::now();
    let mapped: MappedExperiment = load_mmap(&plain, MmapMode::ReadOnly)?;
    println!(
        "\nload_mmap of {:?} ({}): {:.3} ms, zero-copy: {}",
        mapped.signal.view().dim(),
        mapped.name,
        start.elapsed().as_secs_f64() * 1e3,
        mapped.signal.is_mapped()
    );
    drop(mapped);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
