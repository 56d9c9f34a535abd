//! The quickstart: the README's main job.
//!
//! A small numerical pipeline: its inputs are fingerprinted with
//! `joblib::hash` (equal inputs give equal digests in every run and process,
//! whatever the memory layout of an array or the order of a map; any change
//! shows: this is what the disk cache keys its entries on), and per-chunk
//! statistics are computed in parallel with `Parallel` and `delayed`; the
//! results are dumped compressed and uncompressed, and loaded back
//! memory-mapped, without copying the array.
//!
//! Run it with `cargo run --release --example quickstart`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use joblib::persist::{Compression, DumpOptions, MmapArray, MmapMode};
use joblib::prelude::*;
use ndarray::{Array1, Array2, Ix2, ShapeBuilder};

/// What the pipeline stores: the dataset and its per-chunk statistics.
#[derive(serde::Serialize)]
struct Results<'a> {
    data: &'a Array2<f64>,
    stats: &'a [(usize, f64, f64)],
}

/// The same file read back with the array memory-mapped.
#[derive(serde::Deserialize)]
struct MappedResults {
    data: MmapArray<f64, Ix2>,
    stats: Vec<(usize, f64, f64)>,
}

#[derive(serde::Serialize)]
struct Params {
    model: &'static str,
    alpha: f64,
    features: Vec<&'static str>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("joblib for Rust — quickstart\n");

    // 1. A synthetic dataset: 2,000 samples of 500 features.
    let data = Array2::from_shape_fn((2_000, 500), |(i, j)| ((i * 500 + j) as f64 * 1e-3).sin());
    let digest = hash(&data)?;
    println!("dataset {:?} f64            digest {digest}", data.dim());

    // The same values in Fortran order: equal arrays, equal digests.
    let mut fortran = Array2::<f64>::zeros((2_000, 500).f());
    fortran.assign(&data);
    println!(
        "same data, Fortran order          digest {} (equal: {})",
        hash(&fortran)?,
        hash(&fortran)? == digest
    );

    // One changed element changes the digest.
    let mut changed = data.clone();
    changed[[1_999, 499]] += 1e-12;
    println!(
        "one element changed by 1e-12      digest {}",
        hash(&changed)?
    );

    // 2. Parameters: maps hash the same whatever their type or order.
    let params = Params {
        model: "ridge",
        alpha: 0.5,
        features: vec!["mean", "std"],
    };
    println!(
        "\nparameters                        digest {}",
        hash(&params)?
    );
    let weights: HashMap<&str, f64> = [("a", 1.0), ("b", 2.0), ("c", 3.0)].into();
    let sorted: BTreeMap<&str, f64> = [("c", 3.0), ("a", 1.0), ("b", 2.0)].into();
    println!(
        "HashMap vs BTreeMap of the same entries: equal digests: {}",
        hash(&weights)? == hash(&sorted)?
    );

    // 3. Several values into one key, as a cache does for a call.
    let mut key = Hasher::new();
    key.update("pipeline::normalize")?
        .update(&params)?
        .update(&data)?;
    println!(
        "\ncall key (name + params + data)   digest {}",
        key.finish()?
    );

    // 4. Per-chunk statistics in parallel, in input order, with joblib's
    //    progress lines on stderr.
    let shared = Arc::new(data.clone());
    let chunks = (0..data.nrows()).step_by(250).map(|start| {
        let data = Arc::clone(&shared);
        delayed(
            move |start: usize| {
                let rows = data.slice(ndarray::s![start..start + 250, ..]);
                let mean = rows.mean().unwrap_or(f64::NAN);
                let std = rows.std(0.0);
                (start, mean, std)
            },
            start,
        )
    });
    let stats = Parallel::new().n_jobs(2).verbose(10).run(chunks)?;
    println!("\nper-chunk statistics (rows, mean, std), computed in parallel:");
    for (start, mean, std) in &stats {
        println!(
            "  rows {start:>4}..{:<4}  mean {mean:+.4}  std {std:.4}",
            start + 250
        );
    }

    // 5. Persistence: dump the results, compressed and not, and load the
    //    uncompressed file memory-mapped (the array is not copied).
    let dir = std::env::temp_dir().join("joblib-quickstart");
    std::fs::create_dir_all(&dir)?;
    println!("\nresults are stored in {}", dir.display());
    let results = Results {
        data: &data,
        stats: &stats,
    };
    for (label, compression, file) in [
        ("none", Compression::None, "results.jbl"),
        ("lz4", Compression::Lz4, "results.lz4.jbl"),
        ("zstd", Compression::Zstd, "results.zst.jbl"),
    ] {
        let path = dir.join(file);
        let start = Instant::now();
        DumpOptions::new()
            .compress(compression)
            .dump(&results, &path)?;
        let took = start.elapsed();
        println!(
            "  dump {label:<5} {:>9} bytes in {:>6.1} ms",
            std::fs::metadata(&path)?.len(),
            took.as_secs_f64() * 1e3
        );
    }
    let start = Instant::now();
    let mapped: MappedResults = load_mmap(dir.join("results.jbl"), MmapMode::ReadOnly)?;
    println!(
        "  load_mmap: {:?} array mapped in {:.3} ms (mapped: {}), equal to the original: {}",
        mapped.data.view().dim(),
        start.elapsed().as_secs_f64() * 1e3,
        mapped.data.is_mapped(),
        mapped.data.view() == data.view() && mapped.stats == stats
    );

    // 6. Speed on a large array.
    let big = Array1::from_iter((0..25_000_000).map(|i| i as f64));
    let bytes = big.len() * 8;
    let start = Instant::now();
    let d = hash(&big)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "\nhashed a {} MB Array1<f64> in {:.1} ms ({:.1} GB/s): {d}",
        bytes / 1_000_000,
        secs * 1e3,
        bytes as f64 / secs / 1e9
    );
    Ok(())
}
