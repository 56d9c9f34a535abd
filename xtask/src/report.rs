//! `cargo xtask bench`: our criterion benchmarks and Python joblib's, on
//! this machine in one sitting, written side by side to docs/benchmarks.md.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Where a comparison's baseline comes from.
enum Base {
    /// Another criterion benchmark of this workspace (raw I/O, rayon, ...).
    Ours(&'static str),
    /// A line of `benches/python/joblib_baseline.py` (`group/name`).
    Python(&'static str),
    /// No baseline: the figure stands alone (with its target).
    None,
}

/// One row of the report.
struct Row {
    layer: &'static str,
    workload: &'static str,
    /// The criterion `full_id` of our measurement.
    ours: &'static str,
    base: Base,
    /// What `base` is, in words.
    base_label: &'static str,
    /// The issue's target, in words.
    target: &'static str,
}

const ROWS: &[Row] = &[
    Row {
        layer: "hash",
        workload: "200 MB Vec<f64>",
        ours: "hash_200MB_f64/joblib_hash/Vec<f64>",
        base: Base::Ours("hash_200MB_f64/raw_xxh3_128/bytes"),
        base_label: "raw xxh3_128 of the bytes",
        target: ">= 0.3x",
    },
    Row {
        layer: "hash",
        workload: "200 MB Array1<f64>",
        ours: "hash_200MB_f64/joblib_hash/Array1<f64>",
        base: Base::Ours("hash_200MB_f64/raw_xxh3_128/bytes"),
        base_label: "raw xxh3_128 of the bytes",
        target: ">= 0.3x",
    },
    Row {
        layer: "hash",
        workload: "200 MB float64 array",
        ours: "hash_200MB_f64/joblib_hash/Array1<f64>",
        base: Base::Python("hash/200 MB float64 array"),
        base_label: "Python joblib.hash",
        target: ">= 10x",
    },
    Row {
        layer: "hash",
        workload: "map of 100k String -> u64",
        ours: "hash_map_100k/joblib_hash HashMap<String,u64>",
        base: Base::Python("hash/dict of 100k str -> int"),
        base_label: "Python joblib.hash of the dict",
        target: ">= 20x",
    },
    Row {
        layer: "persist",
        workload: "dump 200 MB, uncompressed",
        ours: "persist/dump/none",
        base: Base::Ours("persist/raw/write_all"),
        base_label: "raw write_all",
        target: ">= 0.7x",
    },
    Row {
        layer: "persist",
        workload: "dump 100 MB array into memory (dump_to_writer, Vec)",
        ours: "persist_bulk/dump_to_vec/bulk",
        base: Base::Ours("persist_bulk/raw/memcpy"),
        base_label: "copying its bytes once",
        target: "",
    },
    Row {
        layer: "persist",
        workload: "load 200 MB, owned",
        ours: "persist/load/none",
        base: Base::Ours("persist/raw/read"),
        base_label: "raw read",
        target: ">= 0.75x",
    },
    Row {
        layer: "persist",
        workload: "load_python 200 MB float64 (Python joblib file)",
        ours: "python_load/load_python",
        base: Base::Ours("python_load/raw/read"),
        base_label: "raw read of the file",
        target: ">= 0.75x",
    },
    Row {
        layer: "persist",
        workload: "load_python 200 MB float64 (Python joblib file)",
        ours: "python_load/load_python",
        base: Base::Python("python_load/joblib.load 200 MB float64"),
        base_label: "Python joblib.load",
        target: "faster",
    },
    Row {
        layer: "persist",
        workload: "load_python_mmap 200 MB float64 (Python joblib file)",
        ours: "python_load/load_python_mmap",
        base: Base::Python("python_load/joblib.load mmap_mode=r 200 MB float64"),
        base_label: "Python joblib.load(mmap_mode='r')",
        target: "< 1 ms",
    },
    Row {
        layer: "persist",
        workload: "load_mmap",
        ours: "persist/load_mmap",
        base: Base::Python("persist/load mmap 1 GB"),
        base_label: "Python joblib.load(mmap_mode='r'), 1 GB",
        target: "< 1 ms",
    },
    Row {
        layer: "persist",
        workload: "dump 200 MB, lz4, over the old file",
        ours: "persist/dump/lz4",
        base: Base::Ours("persist/raw/lz4_flex"),
        base_label: "raw single-threaded lz4_flex",
        target: ">= 1.5x",
    },
    Row {
        layer: "persist",
        workload: "dump 200 MB, lz4, new file",
        ours: "persist/dump/lz4_new_file",
        base: Base::Ours("persist/raw/lz4_flex"),
        base_label: "raw single-threaded lz4_flex",
        target: ">= 1.5x",
    },
    Row {
        layer: "persist",
        workload: "dump 200 MB, zstd-3",
        ours: "persist/dump/zstd-3",
        base: Base::Ours("persist/raw/zstd-3"),
        base_label: "raw single-threaded zstd-3",
        target: ">= 1.5x",
    },
    Row {
        layer: "persist",
        workload: "dump 200 MB, uncompressed",
        ours: "persist/dump/none",
        base: Base::Python("persist/dump none"),
        base_label: "Python joblib.dump",
        target: ">= 1x",
    },
    Row {
        layer: "persist",
        workload: "load 200 MB, uncompressed",
        ours: "persist/load/none",
        base: Base::Python("persist/load none"),
        base_label: "Python joblib.load",
        target: ">= 1x",
    },
    Row {
        layer: "persist",
        workload: "dump 200 MB arange, lz4",
        ours: "persist/dump/lz4",
        base: Base::Python("persist/dump lz4-3"),
        base_label: "Python joblib.dump, lz4",
        target: ">= 2x",
    },
    Row {
        layer: "persist",
        workload: "load 200 MB arange, lz4",
        ours: "persist/load/lz4",
        base: Base::Python("persist/load lz4-3"),
        base_label: "Python joblib.load, lz4",
        target: ">= 1x",
    },
    Row {
        layer: "persist",
        workload: "dump 50 MB arange, zlib-3",
        ours: "persist_methods/dump/zlib-3",
        base: Base::Python("persist/dump zlib-3"),
        base_label: "Python joblib.dump, zlib-3",
        target: ">= 2x",
    },
    Row {
        layer: "persist",
        workload: "load 50 MB arange, zlib-3",
        ours: "persist_methods/load/zlib-3",
        base: Base::Python("persist/load zlib-3"),
        base_label: "Python joblib.load, zlib-3",
        target: ">= 1x",
    },
    Row {
        layer: "persist",
        workload: "dump 50 MB arange, gzip-3",
        ours: "persist_methods/dump/gzip-3",
        base: Base::Python("persist/dump gzip-3"),
        base_label: "Python joblib.dump, gzip-3",
        target: ">= 2x",
    },
    Row {
        layer: "persist",
        workload: "load 50 MB arange, gzip-3",
        ours: "persist_methods/load/gzip-3",
        base: Base::Python("persist/load gzip-3"),
        base_label: "Python joblib.load, gzip-3",
        target: ">= 1x",
    },
    Row {
        layer: "persist",
        workload: "dump 20 MB arange, bz2-3",
        ours: "persist_methods/dump/bz2-3",
        base: Base::Python("persist/dump bz2-3"),
        base_label: "Python joblib.dump, bz2-3",
        target: ">= 1x",
    },
    Row {
        layer: "persist",
        workload: "load 20 MB arange, bz2-3",
        ours: "persist_methods/load/bz2-3",
        base: Base::Python("persist/load bz2-3"),
        base_label: "Python joblib.load, bz2-3",
        target: ">= 1x",
    },
    Row {
        layer: "persist",
        workload: "dump 10 MB arange, xz-3",
        ours: "persist_methods/dump/xz-3",
        base: Base::Python("persist/dump xz-3"),
        base_label: "Python joblib.dump, xz-3",
        target: ">= 1x",
    },
    Row {
        layer: "persist",
        workload: "load 10 MB arange, xz-3",
        ours: "persist_methods/load/xz-3",
        base: Base::Python("persist/load xz-3"),
        base_label: "Python joblib.load, xz-3",
        target: ">= 1x",
    },
    Row {
        layer: "persist",
        workload: "dump 10 MB arange, lzma-3",
        ours: "persist_methods/dump/lzma-3",
        base: Base::Python("persist/dump lzma-3"),
        base_label: "Python joblib.dump, lzma-3",
        target: ">= 1x",
    },
    Row {
        layer: "persist",
        workload: "load 10 MB arange, lzma-3",
        ours: "persist_methods/load/lzma-3",
        base: Base::Python("persist/load lzma-3"),
        base_label: "Python joblib.load, lzma-3",
        target: ">= 1x",
    },
    Row {
        layer: "memory",
        workload: "hit, one u64 argument",
        ours: "memory/hit/u64",
        base: Base::Python("memory/hit, one int argument"),
        base_label: "Python Memory hit",
        target: "<= 10 us",
    },
    Row {
        layer: "memory",
        workload: "hit, 10 MB Array1<f64> argument",
        ours: "memory/hit/array_10mb",
        base: Base::Ours("memory/by_hand/hash+load"),
        base_label: "hashing it + loading by hand",
        target: "<= 1.5 ms and >= 1/1.3x",
    },
    Row {
        layer: "memory",
        workload: "hit, 10 MB array argument",
        ours: "memory/hit/array_10mb",
        base: Base::Python("memory/hit, 10 MB array argument"),
        base_label: "Python Memory hit",
        target: "",
    },
    Row {
        layer: "memory",
        workload: "miss, one u64 argument",
        ours: "memory/miss/u64",
        base: Base::Ours("memory/by_hand/dump"),
        base_label: "dumping the result by hand",
        target: "<= 100 us + the write",
    },
    Row {
        layer: "memory",
        workload: "miss, one int argument",
        ours: "memory/miss/u64",
        base: Base::Python("memory/miss, one int argument"),
        base_label: "Python Memory miss",
        target: "",
    },
    Row {
        layer: "memory",
        workload: "reduce_size, 10k entries",
        ours: "memory/reduce_size/10k",
        base: Base::None,
        base_label: "",
        target: "<= 100 ms",
    },
    Row {
        layer: "memory",
        workload: "hit over 10,000 distinct entries, first hit of each",
        ours: "memory/many/first_hit",
        base: Base::Ours("memory/many/by_hand_hash+load"),
        base_label: "hashing + loading by hand",
        target: ">= 1/2x and <= 20 us",
    },
    Row {
        layer: "memory",
        workload: "hit over 10,000 distinct entries, first hit of each",
        ours: "memory/many/first_hit",
        base: Base::Python("memory/hit over 10,000 distinct entries, first hit of each"),
        base_label: "Python Memory, first hit",
        target: "",
    },
    Row {
        layer: "memory",
        workload: "hit over 10,000 distinct entries, later hits",
        ours: "memory/many/later_hit",
        base: Base::Ours("memory/many/by_hand_hash+load"),
        base_label: "hashing + loading by hand",
        target: ">= 1/2x and <= 20 us",
    },
    Row {
        layer: "memory",
        workload: "hit over 10,000 distinct entries, later hits",
        ours: "memory/many/later_hit",
        base: Base::Python("memory/hit over 10,000 distinct entries, later hits"),
        base_label: "Python Memory, later hits",
        target: "",
    },
    Row {
        layer: "memory",
        workload: "miss over 10,000 distinct arguments",
        ours: "memory/many/miss",
        base: Base::Ours("memory/many/by_hand_hash+dump"),
        base_label: "hashing + dumping by hand",
        target: ">= 1/1.3x",
    },
    Row {
        layer: "memory",
        workload: "miss over distinct arguments",
        ours: "memory/many/miss",
        base: Base::Python("memory/miss over distinct arguments"),
        base_label: "Python Memory miss",
        target: "",
    },
    Row {
        layer: "memory",
        workload: "hit with the run log off",
        ours: "memory/hit/u64_no_log",
        base: Base::Ours("memory/hit/u64"),
        base_label: "the same hit, run log on",
        target: "log on <= 10 us",
    },
    Row {
        layer: "memory",
        workload: "one record-sized O_APPEND write by hand (the run log's floor)",
        ours: "memory/by_hand/append_record",
        base: Base::Ours("memory/hit/u64"),
        base_label: "a hit, run log on",
        target: "log on <= log off + this",
    },
    Row {
        layer: "parallel",
        workload: "10k trivial tasks",
        ours: "trivial_tasks_10000/joblib_parallel/10000",
        base: Base::Ours("trivial_tasks_10000/rayon_par_iter/10000"),
        base_label: "rayon par_iter",
        target: ">= 1/5x",
    },
    Row {
        layer: "parallel",
        workload: "10k trivial tasks",
        ours: "trivial_tasks_10000/joblib_parallel/10000",
        base: Base::Python("parallel/10k trivial tasks, loky, warm"),
        base_label: "Python joblib, loky, warm",
        target: ">= 100x",
    },
    Row {
        layer: "parallel",
        workload: "10k trivial tasks",
        ours: "trivial_tasks_10000/joblib_parallel/10000",
        base: Base::Python("parallel/10k trivial tasks, threading, warm"),
        base_label: "Python joblib, threading, warm",
        target: "",
    },
    Row {
        layer: "parallel",
        workload: "1M trivial tasks",
        ours: "trivial_tasks_1000000/joblib_parallel/1000000",
        base: Base::Ours("trivial_tasks_1000000/rayon_par_iter/1000000"),
        base_label: "rayon par_iter",
        target: ">= 1/2x",
    },
    Row {
        layer: "parallel",
        workload: "10k trivial tasks, first call of a new Parallel",
        ours: "trivial_tasks_10000/joblib_parallel_first_call/10000",
        base: Base::Ours("trivial_tasks_10000/rayon_par_iter/10000"),
        base_label: "rayon par_iter",
        target: "",
    },
    Row {
        layer: "parallel",
        workload: "1M trivial tasks, first call of a new Parallel",
        ours: "trivial_tasks_1000000/joblib_parallel_first_call/1000000",
        base: Base::Ours("trivial_tasks_1000000/rayon_par_iter/1000000"),
        base_label: "rayon par_iter",
        target: "",
    },
    Row {
        layer: "parallel",
        workload: "8 CPU tasks of 0.25 s, n_jobs(2)",
        ours: "cpu_bound_8x250ms/n_jobs/2",
        base: Base::Ours("cpu_bound_8x250ms/n_jobs/1"),
        base_label: "the same with n_jobs(1)",
        target: ">= 1.9x",
    },
    Row {
        layer: "parallel",
        workload: "8 CPU tasks of 0.25 s, 2 workers",
        ours: "cpu_bound_8x250ms/n_jobs/2",
        base: Base::Python("parallel/8 x 0.25 s CPU tasks, loky n_jobs=2"),
        base_label: "Python joblib, loky",
        target: "",
    },
    Row {
        layer: "processes",
        workload: "10k trivial tasks, warm pool of 2",
        ours: "process_trivial_tasks_10000/processes/10000",
        base: Base::Python("parallel/10k trivial tasks, loky, warm"),
        base_label: "Python joblib, loky, warm",
        target: ">= 10x",
    },
    Row {
        layer: "processes",
        workload: "10k trivial tasks, warm pool of 2",
        ours: "process_trivial_tasks_10000/processes/10000",
        base: Base::Ours("process_trivial_tasks_10000/threads/10000"),
        base_label: "our thread backend",
        target: "",
    },
    Row {
        layer: "processes",
        workload: "cold pool of 2 workers + 1 task",
        ours: "process_cold_start/pool_of_2_and_one_task",
        base: Base::Python("parallel/cold pool of 2 workers, one task, loky"),
        base_label: "Python joblib, loky, cold",
        target: "<= 10 ms",
    },
    Row {
        layer: "processes",
        workload: "100 MB Array2 to 4 tasks (Shared, sent before)",
        ours: "process_array_100MB_4_tasks/processes_shared_mmap",
        base: Base::Ours("process_array_100MB_4_tasks/threads_arc"),
        base_label: "our thread backend (Arc)",
        target: ">= 1/2x",
    },
    Row {
        layer: "processes",
        workload: "100 MB Array2 to 4 tasks (Shared, sent before)",
        ours: "process_array_100MB_4_tasks/processes_shared_mmap",
        base: Base::Python("parallel/100 MB array to 4 tasks, loky (memmapped)"),
        base_label: "Python joblib, loky, memmapped",
        target: ">= 2x",
    },
    Row {
        layer: "processes",
        workload: "100 MB Array2 to 4 tasks (new Shared: written)",
        ours: "process_array_100MB_4_tasks/processes_shared_first_call",
        base: Base::Python("parallel/100 MB array to 4 tasks, loky (memmapped)"),
        base_label: "Python joblib, loky, memmapped",
        target: "",
    },
    Row {
        layer: "processes",
        workload: "100 MB Array2 to 4 tasks (new Shared: written)",
        ours: "process_array_100MB_4_tasks/processes_shared_first_call",
        base: Base::Ours("process_array_100MB_4_tasks/threads_new_arc"),
        base_label: "our thread backend (new Arc each call)",
        target: "<= 3x",
    },
    Row {
        layer: "processes",
        workload: "100 MB Array2 to 4 tasks (new Shared: written)",
        ours: "process_array_100MB_4_tasks/processes_shared_first_call",
        base: Base::Ours("process_array_100MB_4_tasks/floor_memfd_write"),
        base_label: "floor: one write of 100 MB to a memfd",
        target: "",
    },
    Row {
        layer: "processes",
        workload: "new 100 MB Array2 each call to 4 tasks",
        ours: "process_array_100MB_4_tasks/processes_shared_first_call",
        base: Base::Python("parallel/new 100 MB array each call to 4 tasks, loky"),
        base_label: "Python joblib, loky, new array",
        target: "",
    },
    Row {
        layer: "processes",
        workload: "100 MB Array2 by value to 4 tasks",
        ours: "process_array_100MB_by_value_4_tasks/processes",
        base: Base::Ours("process_array_100MB_by_value_4_tasks/threads"),
        base_label: "our thread backend",
        target: "<= 4x",
    },
    Row {
        layer: "processes",
        workload: "100 MB Array2 by value to 4 tasks",
        ours: "process_array_100MB_by_value_4_tasks/processes",
        base: Base::Python("parallel/100 MB array by value to 4 tasks (4 copies), loky"),
        base_label: "Python joblib, loky",
        target: "",
    },
    Row {
        layer: "processes",
        workload: "64 tasks returning 1 MiB each",
        ours: "process_results_64x1MB/processes",
        base: Base::Ours("process_results_64x1MB/threads"),
        base_label: "our thread backend",
        target: "<= 16 ms",
    },
    Row {
        layer: "processes",
        workload: "64 tasks returning 1 MiB each",
        ours: "process_results_64x1MB/processes",
        base: Base::Ours("process_results_64x1MB/floor_copy_into_parent"),
        base_label: "floor: one copy of the 64 MiB into new vectors",
        target: "",
    },
    Row {
        layer: "processes",
        workload: "64 tasks returning 1 MiB each",
        ours: "process_results_64x1MB/processes",
        base: Base::Python("parallel/64 tasks returning 1 MiB each, loky"),
        base_label: "Python joblib, loky",
        target: "",
    },
    Row {
        layer: "processes",
        workload: "8 CPU tasks of 0.25 s, 2 workers",
        ours: "process_cpu_bound_8x250ms/n_jobs/2",
        base: Base::Ours("process_cpu_bound_8x250ms/n_jobs/1"),
        base_label: "the same with 1 worker",
        target: ">= 1.85x",
    },
    Row {
        layer: "mpi",
        workload: "10k trivial tasks, 3 ranks (2 workers), mpirun",
        ours: "mpi/trivial_tasks_10000",
        base: Base::Ours("process_trivial_tasks_10000/processes/10000"),
        base_label: "our process backend, warm pool of 2",
        target: "<= 20 ms",
    },
    Row {
        layer: "mpi",
        workload: "8 CPU tasks of 0.25 s, 2 worker ranks",
        ours: "mpi/cpu_8x250ms/2_ranks",
        base: Base::Ours("mpi/cpu_8x250ms/1_rank"),
        base_label: "the same with 1 worker rank",
        target: ">= 1.8x",
    },
    Row {
        layer: "mpi",
        workload: "10 MiB payload to a rank and back",
        ours: "mpi/roundtrip_10MiB",
        base: Base::Ours("mpi/roundtrip_10MiB_raw"),
        base_label: "the same bytes there and back with plain MPI send/receive",
        target: ">= 250 MB/s",
    },
    Row {
        layer: "cli",
        workload: "joblib cache ls, 100k entries and a rotated run log",
        ours: "cli/ls/100k",
        base: Base::Ours("cli/store_entries/100k"),
        base_label: "FsStore::entries, one thread, no log",
        target: "<= 1 s",
    },
];

/// Medians of every criterion benchmark under `dir`, in seconds, by full id.
pub(crate) fn criterion_medians(dir: &Path) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "new") {
                    if let Some((id, median)) = read_estimate(&path) {
                        out.insert(id, median);
                    }
                } else {
                    stack.push(path);
                }
            }
        }
    }
    out
}

fn read_estimate(new_dir: &Path) -> Option<(String, f64)> {
    let bench: Value =
        serde_json::from_slice(&std::fs::read(new_dir.join("benchmark.json")).ok()?).ok()?;
    let est: Value =
        serde_json::from_slice(&std::fs::read(new_dir.join("estimates.json")).ok()?).ok()?;
    let id = bench.get("full_id")?.as_str()?.to_string();
    let nanos = est.get("median")?.get("point_estimate")?.as_f64()?;
    Some((id, nanos / 1e9))
}

/// The Python baseline's medians by `group/name`, and its versions line.
pub(crate) fn python_medians(jsonl: &str) -> (BTreeMap<String, f64>, Option<String>) {
    let mut out = BTreeMap::new();
    let mut versions = None;
    for line in jsonl.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let group = v.get("group").and_then(Value::as_str).unwrap_or_default();
        let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
        if group == "meta" {
            versions = Some(format!(
                "Python {}, joblib {}, numpy {}",
                v.get("python").and_then(Value::as_str).unwrap_or("?"),
                v.get("joblib").and_then(Value::as_str).unwrap_or("?"),
                v.get("numpy").and_then(Value::as_str).unwrap_or("?"),
            ));
        } else if let Some(s) = v.get("median_s").and_then(Value::as_f64) {
            out.insert(format!("{group}/{name}"), s);
        }
    }
    (out, versions)
}

/// Text for a markdown table cell: `<` and `>` would be read as HTML.
fn escape(text: &str) -> String {
    text.replace('<', "&lt;").replace('>', "&gt;")
}

/// A duration in the unit that reads best.
fn human(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.3} s")
    } else if seconds >= 1e-3 {
        format!("{:.2} ms", seconds * 1e3)
    } else {
        format!("{:.1} µs", seconds * 1e6)
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown memory".into());
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpus} CPUs ({model}), {mem}; {rustc}")
}

/// The text of docs/benchmarks.md.
pub(crate) fn render(
    ours: &BTreeMap<String, f64>,
    python: &BTreeMap<String, f64>,
    python_versions: Option<&str>,
    date: &str,
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `cargo xtask bench` on {date}, on {}. Python side: {}.\n",
        machine(),
        python_versions.unwrap_or("not measured (python3 with joblib and numpy was not available)")
    );
    let _ = writeln!(
        md,
        "Every figure is a median. Ours come from `cargo bench -p joblib-benches` (criterion, \
         each workload next to its Rust baseline in one group); Python joblib's from \
         `python3 benches/python/joblib_baseline.py`, run right after on the same machine. \
         *Speed* is the baseline's time divided by ours: above 1 we are faster. Workloads are \
         described in `benches/benches/*.rs` and the Python script.\n"
    );
    let mut layer = "";
    for row in ROWS {
        if row.layer != layer {
            layer = row.layer;
            let _ = writeln!(md, "\n## {layer}\n");
            let _ = writeln!(
                md,
                "| workload | ours | baseline | baseline time | speed | target |"
            );
            let _ = writeln!(md, "|---|---|---|---|---|---|");
        }
        let our = ours.get(row.ours).copied();
        let base = match &row.base {
            Base::Ours(id) => ours.get(*id).copied(),
            Base::Python(id) => python.get(*id).copied(),
            Base::None => None,
        };
        let speed = match (our, base) {
            (Some(o), Some(b)) if o > 0.0 => format!("{:.2}x", b / o),
            _ => "—".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            escape(row.workload),
            our.map(human).unwrap_or_else(|| "not measured".into()),
            if row.base_label.is_empty() {
                "—"
            } else {
                row.base_label
            },
            base.map(human).unwrap_or_else(|| "—".into()),
            speed,
            escape(row.target)
        );
    }
    md
}

/// Where criterion writes: the target directory's `criterion` folder.
pub(crate) fn criterion_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("criterion")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_lines_are_parsed() {
        let text = concat!(
            r#"{"group": "meta", "name": "versions", "joblib": "1.6.0", "numpy": "2.4.6", "python": "3.11.7"}"#,
            "\n",
            r#"{"group": "hash", "name": "dict of 100k str -> int", "median_s": 0.29, "runs": 5, "note": ""}"#,
            "\nnot json\n"
        );
        let (medians, versions) = python_medians(text);
        assert_eq!(medians.get("hash/dict of 100k str -> int"), Some(&0.29));
        assert_eq!(
            versions.as_deref(),
            Some("Python 3.11.7, joblib 1.6.0, numpy 2.4.6")
        );
    }

    #[test]
    fn a_report_shows_speed_and_missing_figures() {
        let mut ours = BTreeMap::new();
        ours.insert("hash_200MB_f64/joblib_hash/Vec<f64>".to_string(), 0.0325);
        ours.insert("hash_200MB_f64/raw_xxh3_128/bytes".to_string(), 0.0138);
        let md = render(&ours, &BTreeMap::new(), None, "today");
        assert!(md.contains("| 200 MB Vec&lt;f64&gt; | 32.50 ms | raw xxh3_128 of the bytes | 13.80 ms | 0.42x | &gt;= 0.3x |"), "{md}");
        assert!(md.contains("not measured"));
        assert_eq!(human(2.5e-6), "2.5 µs");
        assert_eq!(human(1.5), "1.500 s");
    }
}
