//! The quickstart: the README's main job.
//!
//! A small numerical pipeline, cached step by step on disk:
//!
//! 1. build a synthetic dataset (costly: each value sums 60 sines), in parallel;
//! 2. compute per-chunk statistics, in parallel;
//! 3. standardize the features.
//!
//! Each step is a function marked `#[cache(MEMORY)]`. The first run computes
//! them and prints joblib-style `[Memory]` and `[Parallel]` lines; run the
//! example again and every step is answered from the cache. The results are
//! then dumped compressed and uncompressed, loaded back memory-mapped, and
//! fingerprinted with `joblib::hash`.
//!
//! Run it with `cargo run --release --example quickstart` (twice). The cache
//! lives in `joblib-quickstart` under the system's temporary directory; the
//! example prints where. Delete that folder to start afresh.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use joblib::persist::{Compression, DumpOptions, MmapArray, MmapMode};
use joblib::prelude::*;
use ndarray::{Array2, Axis, Ix2, ShapeBuilder, s};

/// Where the example keeps its cache and files.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| std::env::temp_dir().join("joblib-quickstart"));

/// The cache of the pipeline's steps, with joblib's verbose output.
static MEMORY: LazyLock<Memory> = LazyLock::new(|| {
    Memory::builder(DIR.join("cache"))
        .verbose(1)
        .build()
        .unwrap_or_else(|err| {
            eprintln!("no cache this time ({err}): every step will compute");
            Memory::disabled()
        })
});

/// How many steps actually computed in this run.
static COMPUTED: AtomicUsize = AtomicUsize::new(0);

/// Step 1: `rows` samples of `cols` features, each a sum of 60 sines.
#[cache(MEMORY)]
fn make_dataset(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    COMPUTED.fetch_add(1, Ordering::Relaxed);
    let block = 250;
    let blocks = (0..rows).step_by(block).map(|start| {
        delayed(
            move |start: usize| {
                let end = (start + block).min(rows);
                let mut values = Vec::with_capacity((end - start) * cols);
                for i in start..end {
                    for j in 0..cols {
                        let x = (i * cols + j) as f64 * 1e-4 + seed as f64;
                        values.push(
                            (1..=60)
                                .map(|k| (x * k as f64).sin() / k as f64)
                                .sum::<f64>(),
                        );
                    }
                }
                values
            },
            start,
        )
    });
    let parts = Parallel::new()
        .n_jobs(-1)
        .verbose(5)
        .run(blocks)
        .unwrap_or_else(|err| panic!("building the dataset failed: {err}"));
    let values: Vec<f64> = parts.into_iter().flatten().collect();
    Array2::from_shape_vec((rows, cols), values).unwrap_or_else(|err| panic!("shape: {err}"))
}

/// Step 2: mean and standard deviation of each chunk of `chunk` rows.
#[cache(MEMORY)]
fn chunk_statistics(data: &Array2<f64>, chunk: usize) -> Vec<(usize, f64, f64)> {
    COMPUTED.fetch_add(1, Ordering::Relaxed);
    let shared = std::sync::Arc::new(data.clone());
    let tasks = (0..data.nrows()).step_by(chunk).map(|start| {
        let data = std::sync::Arc::clone(&shared);
        delayed(
            move |start: usize| {
                let end = (start + chunk).min(data.nrows());
                let rows = data.slice(s![start..end, ..]);
                (start, rows.mean().unwrap_or(f64::NAN), rows.std(0.0))
            },
            start,
        )
    });
    Parallel::new()
        .n_jobs(2)
        .run(tasks)
        .unwrap_or_else(|err| panic!("statistics failed: {err}"))
}

/// Step 3: every feature scaled to mean 0 and standard deviation 1.
#[cache(MEMORY)]
fn standardize(data: &Array2<f64>) -> Array2<f64> {
    COMPUTED.fetch_add(1, Ordering::Relaxed);
    let mean = data.mean_axis(Axis(0)).unwrap_or_default();
    let std = data
        .std_axis(Axis(0), 0.0)
        .mapv(|s| if s > 0.0 { s } else { 1.0 });
    (data - &mean) / &std
}

/// What the pipeline stores: the features and the per-chunk statistics.
#[derive(serde::Serialize)]
struct Results<'a> {
    features: &'a Array2<f64>,
    stats: &'a [(usize, f64, f64)],
}

/// The same file read back with the array memory-mapped.
#[derive(serde::Deserialize)]
struct MappedResults {
    features: MmapArray<f64, Ix2>,
    stats: Vec<(usize, f64, f64)>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("joblib for Rust — quickstart");
    println!("cache and files: {}\n", DIR.display());

    // The pipeline. Each call is answered from the cache when it can be.
    let start = Instant::now();
    let data = make_dataset(4_000, 500, 42);
    let stats = chunk_statistics(&data, 500);
    let features = standardize(&data);
    let took = start.elapsed();

    let timing = DIR.join("first-run.jbl");
    match COMPUTED.load(Ordering::Relaxed) {
        0 => {
            let first: Option<Duration> = load(&timing).ok();
            print!("\nAll 3 steps were answered from the cache in {took:.2?}");
            match first {
                Some(first) if first > took => {
                    println!(
                        " (computing them took {first:.2?}: {:.2?} saved).",
                        first - took
                    )
                }
                _ => println!("."),
            }
        }
        n => {
            dump(&took, &timing)?;
            println!(
                "\nComputed {n} of 3 steps in {took:.2?}. Run the example again: the cache will answer."
            );
        }
    }

    println!("\nPer-chunk statistics (rows, mean, std):");
    for (start, mean, std) in &stats {
        println!(
            "  rows {start:>4}..{:<4}  mean {mean:+.4}  std {std:.4}",
            start + 500
        );
    }

    // Persistence: dump the results, compressed and not, and load the
    // uncompressed file memory-mapped (its array is not copied).
    println!(
        "\nPersistence ({} MB of features):",
        features.len() * 8 / 1_000_000
    );
    let results = Results {
        features: &features,
        stats: &stats,
    };
    for (label, compression, file) in [
        ("none", Compression::None, "results.jbl"),
        ("lz4", Compression::Lz4, "results.lz4.jbl"),
        ("zstd", Compression::Zstd, "results.zst.jbl"),
    ] {
        let path = DIR.join(file);
        let start = Instant::now();
        DumpOptions::new()
            .compress(compression)
            .dump(&results, &path)?;
        println!(
            "  dump {label:<5} {:>10} bytes in {:>6.1} ms",
            std::fs::metadata(&path)?.len(),
            start.elapsed().as_secs_f64() * 1e3
        );
    }
    let start = Instant::now();
    let mapped: MappedResults = load_mmap(DIR.join("results.jbl"), MmapMode::ReadOnly)?;
    println!(
        "  load_mmap: a {:?} array mapped in {:.3} ms (zero-copy: {}), equal to the original: {}",
        mapped.features.view().dim(),
        start.elapsed().as_secs_f64() * 1e3,
        mapped.features.is_mapped(),
        mapped.features.view() == features.view() && mapped.stats == stats
    );

    // Hashing: the fingerprints the cache keys its entries on.
    println!("\nHashing:");
    let digest = hash(&data)?;
    println!("  dataset                         {digest}");
    let mut fortran = Array2::<f64>::zeros(data.dim().f());
    fortran.assign(&data);
    println!(
        "  same values, Fortran order      {} (equal: {})",
        hash(&fortran)?,
        hash(&fortran)? == digest
    );
    let mut changed = data.clone();
    changed[[3_999, 499]] += 1e-12;
    println!("  one value changed by 1e-12      {}", hash(&changed)?);
    let start = Instant::now();
    let d = hash(&features)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "  {} MB of features hashed in {:.1} ms ({:.1} GB/s): {d}",
        features.len() * 8 / 1_000_000,
        secs * 1e3,
        (features.len() * 8) as f64 / secs / 1e9
    );
    // What the cache holds and what each run did, from its run log.
    let cache = DIR.join("cache");
    println!("\nSee what has been run (cargo install --path crates/joblib-cli):");
    println!("  joblib cache ls {}", cache.display());
    println!("  joblib cache log {}", cache.display());
    println!(
        "  joblib cache report {} -o report.html   # charts in one HTML page",
        cache.display()
    );
    Ok(())
}
