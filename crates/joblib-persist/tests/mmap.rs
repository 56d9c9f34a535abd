//! `load_mmap`: arrays are views into the mapped file; compressed files
//! fall back to an owned load.
#![cfg(feature = "ndarray")]

use joblib_persist::{
    Compression, DumpOptions, Error, MmapArray, MmapMode, dump, load, load_mmap, verify,
};
use ndarray::{Array2, Array3, ArrayD, Ix2, Ix3, IxDyn};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Owned {
    name: String,
    weights: Array2<f64>,
    cube: Array3<i16>,
    any: ArrayD<f32>,
    bias: Vec<f64>,
}

#[derive(Serialize, Deserialize)]
struct Mapped {
    name: String,
    weights: MmapArray<f64, Ix2>,
    cube: MmapArray<i16, Ix3>,
    any: MmapArray<f32, IxDyn>,
    bias: Vec<f64>,
}

fn owned() -> Owned {
    Owned {
        name: "m".into(),
        weights: Array2::from_shape_fn((64, 33), |(i, j)| i as f64 * 100.0 + j as f64),
        cube: Array3::from_shape_fn((6, 8, 10), |(i, j, k)| (i * 80 + j * 10 + k) as i16 - 30),
        any: ArrayD::from_shape_fn(IxDyn(&[2, 3, 4, 5]), |d| d[1] as f32 * 0.5),
        bias: vec![0.5; 100],
    }
}

#[test]
fn uncompressed_arrays_are_mapped_views() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jbl");
    let o = owned();
    dump(&o, &path).unwrap();
    let m: Mapped = load_mmap(&path, MmapMode::ReadOnly).unwrap();
    assert!(m.weights.is_mapped() && m.cube.is_mapped() && m.any.is_mapped());
    assert_eq!(m.weights.view(), o.weights.view());
    assert_eq!(m.cube.view(), o.cube.view());
    assert_eq!(m.any.view(), o.any.view());
    assert_eq!(m.bias, o.bias);
    assert_eq!(m.name, "m");
    // The view's memory is 64-byte aligned: it is the block itself.
    assert_eq!(m.weights.view().as_ptr() as usize % 64, 0);
}

#[test]
fn read_only_maps_refuse_mutation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jbl");
    dump(&owned(), &path).unwrap();
    let mut m: Mapped = load_mmap(&path, MmapMode::ReadOnly).unwrap();
    assert!(m.weights.view_mut().is_none());
}

#[test]
fn copy_on_write_changes_stay_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jbl");
    dump(&owned(), &path).unwrap();
    let mut m: Mapped = load_mmap(&path, MmapMode::CopyOnWrite).unwrap();
    m.weights.view_mut().unwrap()[[1, 2]] = -1.0;
    assert_eq!(m.weights.view()[[1, 2]], -1.0);
    drop(m);
    let again: Owned = load(&path).unwrap();
    assert_eq!(again.weights[[1, 2]], 102.0);
    verify(&path).unwrap();
}

#[test]
fn read_write_changes_reach_the_file_and_the_checksum_notices() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jbl");
    dump(&owned(), &path).unwrap();
    let mut m: Mapped = load_mmap(&path, MmapMode::ReadWrite).unwrap();
    m.cube.view_mut().unwrap()[[0, 0, 0]] = 999;
    m.cube.flush().unwrap();
    drop(m);
    let m: Mapped = load_mmap(&path, MmapMode::ReadOnly).unwrap();
    assert_eq!(m.cube.view()[[0, 0, 0]], 999);
    assert!(matches!(verify(&path), Err(Error::Checksum { .. })));
    assert!(matches!(load::<Owned>(&path), Err(Error::Checksum { .. })));
}

#[test]
fn compressed_files_fall_back_to_an_owned_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jbl");
    let o = owned();
    DumpOptions::new()
        .compress(Compression::Lz4)
        .dump(&o, &path)
        .unwrap();
    let m: Mapped = load_mmap(&path, MmapMode::ReadOnly).unwrap();
    assert!(!m.weights.is_mapped());
    assert_eq!(m.weights.view(), o.weights.view());
}

#[test]
fn mmap_array_loads_owned_through_load_and_round_trips_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jbl");
    let o = owned();
    dump(&o, &path).unwrap();
    let m: Mapped = load(&path).unwrap();
    assert!(!m.weights.is_mapped());
    assert_eq!(m.weights.view(), o.weights.view());
    // A struct of MmapArrays dumps like one of Arrays.
    let path2 = dir.path().join("m2.jbl");
    dump(&m, &path2).unwrap();
    let back: Owned = load(&path2).unwrap();
    assert_eq!(back.any, o.any);
    let mapped: Mapped = load_mmap(&path2, MmapMode::ReadOnly).unwrap();
    assert_eq!(mapped.cube.to_owned(), o.cube);
}

#[test]
fn a_type_mismatch_is_an_error_not_a_reinterpretation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jbl");
    dump(&Array2::<f64>::zeros((10, 10)), &path).unwrap();
    let err = load_mmap::<MmapArray<i64, Ix2>>(&path, MmapMode::ReadOnly).unwrap_err();
    assert!(matches!(err, Error::Deserialize { .. }), "{err}");
    let err = load_mmap::<MmapArray<f64, Ix3>>(&path, MmapMode::ReadOnly).unwrap_err();
    assert!(matches!(err, Error::Deserialize { .. }), "{err}");
}

#[test]
fn small_arrays_inline_in_the_structure_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.jbl");
    let a = Array2::from_shape_fn((2, 2), |(i, j)| (i + j) as f64);
    dump(&a, &path).unwrap();
    let m: MmapArray<f64, Ix2> = load_mmap(&path, MmapMode::ReadOnly).unwrap();
    assert!(!m.is_mapped());
    assert_eq!(m.view(), a.view());
}

#[test]
fn mapped_blocks_are_checked_by_verify_not_by_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.jbl");
    let a = Array2::from_shape_fn((100, 10), |(i, j)| (i * 10 + j) as f64);
    dump(&a, &path).unwrap();
    verify(&path).unwrap();
    let info = joblib_persist::inspect(&path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[info.blocks[0].offset as usize + 8] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    // Mapping does not read the block, so it loads (in constant time)...
    let m: MmapArray<f64, Ix2> = load_mmap(&path, MmapMode::ReadOnly).unwrap();
    assert_ne!(m.view()[[0, 1]], 1.0);
    // ...and verify, like an owned load, finds the damage.
    let err = verify(&path).unwrap_err();
    assert!(err.to_string().contains("block 0, chunk 0"), "{err}");
    assert!(matches!(
        load::<Array2<f64>>(&path),
        Err(Error::Checksum { .. })
    ));
}

/// Two read-write mappings of one file would hand out two `&mut` to the
/// same bytes: the second is refused while the first lives, as is any
/// mapping next to a read-write one.
#[cfg(unix)]
#[test]
fn a_read_write_mapping_is_exclusive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rw.jbl");
    dump(&Array2::<f64>::zeros((64, 64)), &path).unwrap();

    let mut first: MmapArray<f64, Ix2> = load_mmap(&path, MmapMode::ReadWrite).unwrap();
    assert!(first.is_mapped());
    for mode in [
        MmapMode::ReadWrite,
        MmapMode::ReadOnly,
        MmapMode::CopyOnWrite,
    ] {
        let err = load_mmap::<MmapArray<f64, Ix2>>(&path, mode).unwrap_err();
        assert!(
            matches!(err, Error::MappingConflict { .. }),
            "{mode:?}: {err}"
        );
        assert!(err.to_string().contains("read-write"), "{err}");
    }
    first.view_mut().unwrap()[[1, 1]] = 7.0;
    drop(first);

    // Once it is gone the file maps again, with the write in it.
    let second: MmapArray<f64, Ix2> = load_mmap(&path, MmapMode::ReadWrite).unwrap();
    assert_eq!(second.view()[[1, 1]], 7.0);
    drop(second);

    // Read-only mappings share the file, and keep a writer out.
    let a: MmapArray<f64, Ix2> = load_mmap(&path, MmapMode::ReadOnly).unwrap();
    let b: MmapArray<f64, Ix2> = load_mmap(&path, MmapMode::ReadOnly).unwrap();
    let err = load_mmap::<MmapArray<f64, Ix2>>(&path, MmapMode::ReadWrite).unwrap_err();
    assert!(matches!(err, Error::MappingConflict { .. }), "{err}");
    assert_eq!(a.view(), b.view());
}
