//! joblib-persist against its baselines, in one group so the ratios come
//! from one run on one machine:
//!
//! - `dump/none` vs `raw/write_all`: an uncompressed dump of an `Array2<f64>`
//!   against writing the same bytes with one `write_all` to a new file in
//!   the same directory (target: at least 0.7x the throughput).
//! - `load/none` vs `raw/read`: an owned load against `std::fs::read` of a
//!   file of the same size (target: at least 0.75x); `load/none_vec` loads
//!   the same elements as a `Vec<f64>`.
//! - `load_mmap`: independent of the array's size.
//! - `dump/lz4`, `dump/zstd` (chunks on all cores) vs `raw/lz4_flex` and
//!   `raw/zstd` compressing the same bytes on one thread (target: 1.5x on 2 cores).
//!   `dump/lz4` overwrites its file; `dump/lz4_new_file` writes a new one.
//! - `persist_methods/{dump,load}/{zlib,gzip,bz2,xz,lzma}-3`: the other
//!   methods on an `arange` of the size the Python baseline uses for each,
//!   to compare with `joblib.dump`/`joblib.load` with the same method and level.
//!
//! Data: the uncompressed cases (`dump/none`, `load/none`, `load_mmap` and
//! their raw baselines) use a sine signal, `sin(k * 1e-4)` for element `k`.
//! lz4 cannot shrink that signal (its output is as large as its input), so
//! the compressed cases (`dump/lz4`, `load/lz4`, `dump/zstd-3` and the
//! baselines `raw/lz4_flex`, `raw/zstd-3`) use compressible data as the
//! issue asks: an `arange`, element `k` is `k as f64` (lz4 shrinks it to
//! about half, zstd-3 further).
//!
//! - `persist_bulk/dump_to_vec/{bulk,elementwise}` vs `persist_bulk/raw/memcpy`:
//!   a dump into memory of an array written in bulk from its memory and
//!   element by element (ndarray's `Serialize`), against one copy of its
//!   bytes; `persist_bulk/dump/elementwise` is the element path to a file.
//! - `python_load/load_python` vs `python_load/raw/read`: a file as Python's
//!   `joblib.dump` writes a float64 array, loaded into `Array2<f64>`
//!   (target: at least 0.75x the raw read, and faster than `joblib.load`).
//!   `python_load/load_python_mmap`: the same file mapped, the array a view
//!   (target: under 1 ms, against `joblib.load(mmap_mode='r')`).
//!
//! The array is 200 MB unless `JBL_BENCH_MB` says otherwise. Run with
//! `cargo bench -p joblib-benches --bench persist -- --warm-up-time 1 --measurement-time 4`,
//! adding a filter such as `'raw/read|load/'` to run some cases only.

// criterion_group! generates undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::io::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use joblib_persist::{Compression, DumpOptions, MmapArray, MmapMode};
use ndarray::{Array2, Ix2};

fn megabytes() -> usize {
    std::env::var("JBL_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

/// A sine signal: smooth, but lz4 cannot compress its bytes.
fn array(bytes: usize) -> Array2<f64> {
    let cols = 1000;
    let rows = bytes / 8 / cols;
    Array2::from_shape_fn((rows, cols), |(i, j)| ((i * cols + j) as f64 * 1e-4).sin())
}

/// An `arange` (element `k` is `k as f64`): compressible by lz4 and zstd.
fn arange(bytes: usize) -> Array2<f64> {
    let cols = 1000;
    let rows = bytes / 8 / cols;
    Array2::from_shape_fn((rows, cols), |(i, j)| (i * cols + j) as f64)
}

fn as_bytes(a: &Array2<f64>) -> Vec<u8> {
    a.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn persist(c: &mut Criterion) {
    let bytes = megabytes() << 20;
    let a = array(bytes);
    let raw = as_bytes(&a);
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temporary directory");
    let raw_path = dir.path().join("raw.bin");
    let jbl_path = dir.path().join("a.jbl");

    // The files the read cases read, written once up front so that any
    // case can run alone (`-- load/none`); the write cases rewrite them.
    std::fs::write(&raw_path, &raw).expect("write");
    joblib_persist::dump(&a, &jbl_path).expect("dump");
    let vec_path = dir.path().join("v.jbl");
    joblib_persist::dump(&a.as_slice().expect("standard layout").to_vec(), &vec_path)
        .expect("dump");

    let mut g = c.benchmark_group("persist");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(raw.len() as u64));

    g.bench_function("raw/write_all", |b| {
        b.iter(|| {
            let mut f = std::fs::File::create(&raw_path).expect("create");
            f.write_all(&raw).expect("write");
        })
    });
    g.bench_function("dump/none", |b| {
        b.iter(|| joblib_persist::dump(&a, &jbl_path).expect("dump"))
    });
    g.bench_function("raw/read", |b| {
        b.iter(|| black_box(std::fs::read(&raw_path).expect("read")))
    });
    g.bench_function("load/none", |b| {
        b.iter(|| black_box(joblib_persist::load::<Array2<f64>>(&jbl_path).expect("load")))
    });
    g.bench_function("load/none_vec", |b| {
        b.iter(|| black_box(joblib_persist::load::<Vec<f64>>(&vec_path).expect("load")))
    });
    g.bench_function("load_mmap", |b| {
        b.iter(|| {
            let m: MmapArray<f64, Ix2> =
                joblib_persist::load_mmap(&jbl_path, MmapMode::ReadOnly).expect("load_mmap");
            black_box(m.view()[[0, 0]])
        })
    });

    // The compressed cases: compressible data.
    drop((a, raw));
    let a = arange(bytes);
    let raw = as_bytes(&a);
    g.bench_function("raw/lz4_flex", |b| {
        b.iter(|| black_box(lz4_flex::block::compress(&raw)))
    });
    let lz4_path = dir.path().join("a.jbl.lz4");
    DumpOptions::new()
        .compress(Compression::Lz4)
        .dump(&a, &lz4_path)
        .expect("dump");
    // Over the existing file, as a program re-run overwrites its output:
    // ext4 then flushes the new file's data at the rename (its
    // `auto_da_alloc` safety), which costs more than the compression.
    g.bench_function("dump/lz4", |b| {
        b.iter(|| {
            DumpOptions::new()
                .compress(Compression::Lz4)
                .dump(&a, &lz4_path)
                .expect("dump")
        })
    });
    // To a new file (the old one removed outside the timing).
    let fresh_path = dir.path().join("fresh.jbl.lz4");
    g.bench_function("dump/lz4_new_file", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(&fresh_path);
            },
            |()| {
                DumpOptions::new()
                    .compress(Compression::Lz4)
                    .dump(&a, &fresh_path)
                    .expect("dump")
            },
            criterion::BatchSize::PerIteration,
        )
    });
    g.bench_function("load/lz4", |b| {
        b.iter(|| black_box(joblib_persist::load::<Array2<f64>>(&lz4_path).expect("load")))
    });
    g.bench_function("raw/zstd-3", |b| {
        b.iter(|| black_box(zstd::bulk::compress(&raw, 3).expect("zstd")))
    });
    let zst_path = dir.path().join("a.jbl.zst");
    g.bench_function("dump/zstd-3", |b| {
        b.iter(|| {
            DumpOptions::new()
                .compress(Compression::Zstd)
                .level(Some(3))
                .dump(&a, &zst_path)
                .expect("dump")
        })
    });
    g.finish();
}

/// The serializer's CPU cost without the disk: a dump into memory of an
/// array half the size of the `persist` cases (100 MB by default), written
/// in bulk from its memory (`dump_to_vec/bulk`) against the element path
/// ndarray's own `Serialize` takes (`dump_to_vec/elementwise`: a mutable
/// view, a storage the bulk path leaves alone) and against copying the
/// bytes once (`raw/memcpy`, the floor). `dump/elementwise` is the element
/// path to a file, to compare with `persist/dump/none` and
/// `persist/raw/write_all` in the same run.
fn bulk(c: &mut Criterion) {
    let bytes = (megabytes() / 2) << 20;
    let mut a = array(bytes);
    let raw = as_bytes(&a);
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temporary directory");
    let path = dir.path().join("elementwise.jbl");
    // Room for the blocks, their padding, the structure and the index.
    let room = raw.len() + (1 << 20);

    let mut g = c.benchmark_group("persist_bulk");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(raw.len() as u64));
    g.bench_function("raw/memcpy", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(room);
            out.extend_from_slice(&raw);
            black_box(out)
        })
    });
    g.bench_function("dump_to_vec/bulk", |b| {
        b.iter(|| {
            black_box(joblib_persist::dump_to_writer(&a, Vec::with_capacity(room)).expect("dump"))
        })
    });
    g.bench_function("dump_to_vec/elementwise", |b| {
        b.iter(|| {
            let out = Vec::with_capacity(room);
            black_box(joblib_persist::dump_to_writer(&a.view_mut(), out).expect("dump"))
        })
    });
    g.bench_function("dump/elementwise", |b| {
        b.iter(|| joblib_persist::dump(&a.view_mut(), &path).expect("dump"))
    });
    g.finish();
}

/// Every other method on `arange` data, at level 3, on the sizes the Python
/// baseline uses for it (`PERSIST_CASES` in `benches/python/joblib_baseline.py`).
fn methods(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut g = c.benchmark_group("persist_methods");
    g.sample_size(10);
    let cases = [
        ("zlib-3", Compression::Zlib, 50),
        ("gzip-3", Compression::Gzip, 50),
        ("bz2-3", Compression::Bz2, 20),
        ("xz-3", Compression::Xz, 10),
        ("lzma-3", Compression::Lzma, 10),
    ];
    for (label, method, mb) in cases {
        let a = arange(mb * 1_000_000);
        g.throughput(Throughput::Bytes((a.len() * 8) as u64));
        let path = dir.path().join(format!("{label}.jbl"));
        let options = DumpOptions::new().compress(method).level(Some(3));
        options.dump(&a, &path).expect("dump");
        g.bench_function(format!("dump/{label}"), |b| {
            b.iter(|| options.dump(&a, &path).expect("dump"))
        });
        g.bench_function(format!("load/{label}"), |b| {
            b.iter(|| joblib_persist::load::<Array2<f64>>(&path).expect("load"))
        });
    }
    g.finish();
}

/// A file as Python's `joblib.dump(a, path)` writes it for a C-order
/// float64 array (joblib 1.6, protocol 4, 16-byte alignment padding), so
/// the bench needs no Python.
fn write_python_joblib(path: &std::path::Path, a: &Array2<f64>) {
    fn s(out: &mut Vec<u8>, text: &str) {
        out.push(0x8c); // SHORT_BINUNICODE
        out.push(u8::try_from(text.len()).expect("short"));
        out.extend_from_slice(text.as_bytes());
    }
    fn int(out: &mut Vec<u8>, v: usize) {
        out.push(b'J'); // BININT
        out.extend_from_slice(&i32::try_from(v).expect("small").to_le_bytes());
    }
    let mut p = b"\x80\x04".to_vec();
    s(&mut p, "joblib.numpy_pickle");
    s(&mut p, "NumpyArrayWrapper");
    p.extend_from_slice(b"\x93)\x81}("); // STACK_GLOBAL, (), NEWOBJ, {}, MARK
    s(&mut p, "subclass");
    s(&mut p, "numpy");
    s(&mut p, "ndarray");
    p.push(0x93);
    s(&mut p, "shape");
    int(&mut p, a.nrows());
    int(&mut p, a.ncols());
    p.push(0x86); // TUPLE2
    s(&mut p, "order");
    s(&mut p, "C");
    s(&mut p, "dtype");
    s(&mut p, "numpy");
    s(&mut p, "dtype");
    p.push(0x93);
    s(&mut p, "f8");
    p.extend_from_slice(b"\x89\x88\x87R(K\x03"); // (False, True), REDUCE, MARK, 3
    s(&mut p, "<");
    p.extend_from_slice(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb");
    s(&mut p, "allow_mmap");
    p.push(0x88);
    s(&mut p, "numpy_array_alignment_bytes");
    p.extend_from_slice(b"K\x10ub"); // 16, SETITEMS, BUILD
    let pad = 16 - (p.len() + 1) % 16;
    p.push(u8::try_from(pad).expect("pad"));
    p.extend(std::iter::repeat_n(0xff, pad));
    p.extend(a.iter().flat_map(|x| x.to_le_bytes()));
    p.push(b'.');
    std::fs::write(path, p).expect("write");
}

/// `python_load/load_python`: an `Array2<f64>` loaded from a file as Python
/// joblib writes it, against `raw/read` of the same file (target: at
/// least 0.75x) and Python's own `joblib.load` of it (benches/python);
/// `python_load/load_python_mmap`: the same file mapped (target: < 1 ms).
fn python_load(c: &mut Criterion) {
    let bytes = megabytes() << 20;
    let a = array(bytes);
    let dir = tempfile::tempdir_in(std::env::temp_dir()).expect("temporary directory");
    let path = dir.path().join("a.pkl");
    write_python_joblib(&path, &a);
    let back: Array2<f64> = joblib_persist::load_python(&path).expect("load_python");
    assert_eq!(back, a);
    drop(back);
    let mut g = c.benchmark_group("python_load");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("raw/read", |b| {
        b.iter(|| black_box(std::fs::read(&path).expect("read")))
    });
    g.bench_function("load_python", |b| {
        b.iter(|| joblib_persist::load_python::<Array2<f64>>(&path).expect("load"))
    });
    let mapped: MmapArray<f64, Ix2> =
        joblib_persist::load_python_mmap(&path, MmapMode::ReadOnly).expect("load_python_mmap");
    assert!(mapped.is_mapped());
    drop(mapped);
    g.bench_function("load_python_mmap", |b| {
        b.iter(|| {
            joblib_persist::load_python_mmap::<MmapArray<f64, Ix2>>(&path, MmapMode::ReadOnly)
                .expect("load_python_mmap")
        })
    });
    g.finish();
}

criterion_group!(benches, persist, methods, python_load, bulk);
criterion_main!(benches);
