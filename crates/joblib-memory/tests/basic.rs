//! Calls, hits, misses, versions and the directory layout.

use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};

use joblib_memory::{Compression, Memory, MmapMode};
use ndarray::{Array1, Array2};

fn count(c: &AtomicUsize) -> usize {
    c.load(Ordering::SeqCst)
}

#[test]
fn first_call_computes_equal_call_hits_other_args_compute() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    let calls = AtomicUsize::new(0);
    let f = memory.cache("tests::double", |x: u64| {
        calls.fetch_add(1, Ordering::SeqCst);
        x * 2
    });
    assert_eq!(f.call(21), 42);
    assert_eq!(count(&calls), 1);
    assert_eq!(f.call(21), 42);
    assert_eq!(count(&calls), 1, "an equal call must not compute");
    assert_eq!(f.call(22), 44);
    assert_eq!(count(&calls), 2);
    assert!(f.check_call_in_cache(&21u64));
    assert!(!f.check_call_in_cache(&23u64));

    // A new Memory on the same directory (as the next run of a program).
    let memory2 = Memory::new(dir.path());
    let calls2 = AtomicUsize::new(0);
    let g = memory2.cache("tests::double", |x: u64| {
        calls2.fetch_add(1, Ordering::SeqCst);
        x * 2
    });
    assert_eq!(g.call(21), 42);
    assert_eq!(count(&calls2), 0);
}

#[test]
fn several_arguments_and_references() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    let calls = AtomicUsize::new(0);
    let f = memory.cache("tests::scale", |(a, k): (&Array2<f64>, f64)| {
        calls.fetch_add(1, Ordering::SeqCst);
        a * k
    });
    let a = Array2::from_shape_fn((30, 4), |(i, j)| (i * 4 + j) as f64);
    let r1 = f.call((&a, 2.0));
    let r2 = f.call((&a, 2.0));
    assert_eq!(r1, &a * 2.0);
    assert_eq!(r1, r2);
    assert_eq!(count(&calls), 1);
    // An equal array built another way (transposed twice) is the same key.
    let b = a.t().to_owned().t().to_owned();
    assert_eq!(f.call((&b, 2.0)), r1);
    assert_eq!(count(&calls), 1);
    f.call((&a, 3.0));
    assert_eq!(count(&calls), 2);
}

#[test]
fn version_change_invalidates_and_clears_old_entries() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    let v1 = memory
        .cache("tests::versioned", |x: u32| x + 1)
        .version("1");
    assert_eq!(v1.call(1), 2);
    assert_eq!(v1.call(2), 3);
    let fdir = dir.path().join("tests").join("versioned");
    let entries = |d: &std::path::Path| {
        fs::read_dir(d)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir())
            .count()
    };
    assert_eq!(entries(&fdir), 2);

    // The code changed: same name, new version, new result.
    let memory2 = Memory::new(dir.path());
    let calls = AtomicUsize::new(0);
    let v2 = memory2
        .cache("tests::versioned", |x: u32| {
            calls.fetch_add(1, Ordering::SeqCst);
            x + 100
        })
        .version("2");
    assert_eq!(
        v2.call(1),
        101,
        "an entry of another version must not be returned"
    );
    assert_eq!(count(&calls), 1);
    assert_eq!(entries(&fdir), 1, "the old version's entries are cleared");
    let func: serde_json::Value =
        serde_json::from_slice(&fs::read(fdir.join("func.json")).unwrap()).unwrap();
    assert_eq!(func["fingerprint"], "version:2");
    assert_eq!(func["function"], "tests::versioned");
}

#[test]
fn layout_metadata_and_gitignore() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    let f = memory.cache("my_crate::stats::mean", |v: Vec<f64>| {
        v.iter().sum::<f64>() / v.len() as f64
    });
    let args = vec![1.0, 2.0, 3.0];
    assert_eq!(f.call(args.clone()), 2.0);
    let digest = f.digest(&args).unwrap();
    let entry = dir
        .path()
        .join("my_crate")
        .join("stats")
        .join("mean")
        .join(digest.to_hex());
    assert!(entry.join("output.jbl").is_file());
    // A hit creates no file: the access is the result's modification time.
    assert_eq!(f.call(args.clone()), 2.0);
    let mut names: Vec<_> = fs::read_dir(&entry)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["metadata.json", "output.jbl"]);
    let meta: serde_json::Value =
        serde_json::from_slice(&fs::read(entry.join("metadata.json")).unwrap()).unwrap();
    assert_eq!(meta["function"], "my_crate::stats::mean");
    assert_eq!(meta["args"], "[1.0, 2.0, 3.0]");
    assert_eq!(meta["digest"], digest.to_hex());
    assert_eq!(meta["fingerprint"], "version:");
    assert_eq!(
        meta["size"],
        fs::metadata(entry.join("output.jbl")).unwrap().len()
    );
    assert!(meta["duration"].as_f64().unwrap() >= 0.0);
    assert!(meta["computed_at"].as_f64().unwrap() > 1.6e9);
    assert_eq!(
        fs::read_to_string(dir.path().join(".gitignore"))
            .unwrap()
            .lines()
            .last(),
        Some("*")
    );
    // No temporary directories are left behind.
    let fdir = entry.parent().unwrap();
    for e in fs::read_dir(fdir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with('.'), "left over: {name}");
    }
}

#[test]
fn an_existing_gitignore_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(".gitignore"), "mine\n").unwrap();
    let _memory = Memory::new(dir.path());
    assert_eq!(
        fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
        "mine\n"
    );
}

#[test]
fn hostile_names_stay_inside_the_location() {
    let outer = tempfile::tempdir().unwrap();
    let location = outer.path().join("cache");
    let memory = Memory::new(&location);
    for name in [
        "../escape",
        "/etc/evil",
        "a::..::..::b",
        "..",
        "nul\0byte",
        "C:\\win",
        "::",
        "",
    ] {
        let f = memory.cache(name, |x: u8| x);
        assert_eq!(f.call(7), 7);
        assert_eq!(f.call(7), 7);
        assert!(f.check_call_in_cache(&7u8), "{name:?}");
    }
    let outside: Vec<_> = fs::read_dir(outer.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        outside,
        ["cache"],
        "nothing may be written beside the location"
    );
    assert_eq!(memory.reduce_size(None, None, None).unwrap().kept, 8);
}

#[test]
fn disabled_memory_always_computes() {
    let memory = Memory::disabled();
    assert!(!memory.is_enabled());
    let calls = AtomicUsize::new(0);
    let f = memory.cache("tests::d", |x: i32| {
        calls.fetch_add(1, Ordering::SeqCst);
        -x
    });
    assert_eq!(f.call(1), -1);
    assert_eq!(f.call(1), -1);
    assert_eq!(count(&calls), 2);
    assert!(!f.check_call_in_cache(&1));
    assert_eq!(f.clear().unwrap(), 0);
}

#[test]
fn clear_function_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    let calls = AtomicUsize::new(0);
    let f = memory.cache("tests::c", |x: i32| {
        calls.fetch_add(1, Ordering::SeqCst);
        x
    });
    let g = memory.cache("tests::c::nested", |x: i32| x + 1);
    f.call(1);
    f.call(2);
    g.call(1);
    assert_eq!(f.clear().unwrap(), 2);
    assert!(
        g.check_call_in_cache(&1),
        "a nested function keeps its entries"
    );
    f.call(1);
    assert_eq!(count(&calls), 3);
    memory.clear().unwrap();
    assert!(!f.check_call_in_cache(&1));
    assert!(!g.check_call_in_cache(&1));
    assert!(dir.path().join(".gitignore").is_file());
    f.call(1);
    assert_eq!(count(&calls), 4);
}

#[test]
fn compressed_results_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::builder(dir.path())
        .compress(Compression::Zstd)
        .build()
        .unwrap();
    let calls = AtomicUsize::new(0);
    let f = memory.cache("tests::ones", |n: usize| {
        calls.fetch_add(1, Ordering::SeqCst);
        Array1::<f64>::ones(n)
    });
    let a = f.call(100_000);
    let b = f.call(100_000);
    assert_eq!(a, b);
    assert_eq!(count(&calls), 1);
    let size = joblib_memory::FsStore::new(dir.path())
        .unwrap()
        .entry_dir("tests::ones", &f.digest(&100_000usize).unwrap())
        .join("output.jbl");
    assert!(
        fs::metadata(size).unwrap().len() < 100_000,
        "zstd must shrink 800 kB of ones"
    );
}

#[test]
fn mmap_mode_maps_arrays_on_the_first_call_too() {
    use joblib_persist::MmapArray;
    use ndarray::Ix1;
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::builder(dir.path())
        .mmap_mode(MmapMode::ReadOnly)
        .build()
        .unwrap();
    let calls = AtomicUsize::new(0);
    let f = memory.cache("tests::ramp", |n: usize| {
        calls.fetch_add(1, Ordering::SeqCst);
        MmapArray::<f64, Ix1>::from(Array1::range(0.0, n as f64, 1.0))
    });
    let first = f.call(50_000);
    assert!(first.is_mapped(), "the first call returns the mapped copy");
    assert_eq!(first.view()[49_999], 49_999.0);
    let second = f.call(50_000);
    assert!(second.is_mapped());
    assert_eq!(second.view(), first.view());
    assert_eq!(count(&calls), 1);
}

#[test]
fn read_write_mapping_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Memory::builder(dir.path())
        .mmap_mode(MmapMode::ReadWrite)
        .build()
        .unwrap_err();
    assert!(matches!(err, joblib_memory::Error::Config(_)), "{err:?}");
    assert!(err.to_string().contains("ReadWrite"), "{err}");
    for mode in [MmapMode::ReadOnly, MmapMode::CopyOnWrite] {
        assert!(Memory::builder(dir.path()).mmap_mode(mode).build().is_ok());
    }
}
