//! `load_python_mmap`: Python joblib files memory-mapped, arrays viewed in
//! place where the file allows it and copied where it does not, and
//! hostile files refused exactly as by `load_python`.
#![cfg(feature = "python")]

mod python_common;

use std::path::{Path, PathBuf};

use joblib_persist::ndarray::{Array1, Array2, Ix1, Ix2, array};
use joblib_persist::{Error, MmapArray, MmapMode, load_python, load_python_mmap};
use serde::Deserialize;
use serde::de::IgnoredAny;

use python_common::fixture;

/// The arrays of the `mixed` fixtures, as views where possible.
#[derive(Deserialize, Debug)]
struct Mixed {
    f64_2d: MmapArray<f64, Ix2>,
    i32_f: MmapArray<i32, Ix2>,
    f32: MmapArray<f32, Ix1>,
    name: String,
}

fn check_mixed(m: &Mixed) {
    assert_eq!(
        m.f64_2d.view(),
        Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64)
    );
    assert_eq!(m.i32_f.view(), array![[0, 1, 2], [3, 4, 5]]);
    assert_eq!(m.f32.view(), array![0.0f32, 1.0, 2.0, 3.0, 4.0]);
    assert_eq!(m.name, "ridge");
}

/// The offset in `bytes` of the data of the fixtures' `arange(12.0)`.
fn offset_of_arange(bytes: &[u8]) -> usize {
    let want: Vec<u8> = [0.0f64, 1.0, 2.0, 3.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    bytes
        .windows(want.len())
        .position(|w| w == want)
        .expect("the fixture holds arange(12.0)")
}

#[test]
fn arrays_of_joblib_1_6_are_views_where_aligned_and_c_ordered() {
    for name in ["v16_mixed_p4.pkl", "v16_mixed_p5.pkl", "v16_mixed_p2.pkl"] {
        let m: Mixed = load_python_mmap(fixture(name), MmapMode::ReadOnly)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        check_mixed(&m);
        assert!(m.f64_2d.is_mapped(), "{name}: f64_2d");
        assert!(m.f32.is_mapped(), "{name}: f32");
        // Fortran order of two dimensions: C-order views cannot show it.
        assert!(!m.i32_f.is_mapped(), "{name}: i32_f");
    }
}

#[test]
fn unaligned_arrays_of_joblib_1_1_are_copies() {
    for name in [
        "v11_mixed_p4.pkl",
        "v11_mixed_p2.pkl",
        "v16_mixed_nonseekable.pkl",
    ] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let m: Mixed = load_python_mmap(fixture(name), MmapMode::ReadOnly)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        check_mixed(&m);
        // No padding: the array is viewed exactly when it happens to lie
        // at a multiple of 8 bytes.
        let aligned = offset_of_arange(&bytes).is_multiple_of(8);
        assert_eq!(m.f64_2d.is_mapped(), aligned, "{name}");
    }
    // At least one fixture really is misaligned (else this proves nothing).
    let bytes = std::fs::read(fixture("v11_mixed_p4.pkl")).unwrap();
    assert_ne!(offset_of_arange(&bytes) % 8, 0);
}

#[test]
fn every_mixed_fixture_loads_the_same_mapped_or_not() {
    #[derive(Deserialize, Debug, PartialEq)]
    struct Owned {
        f64_2d: Array2<f64>,
        i32_f: Array2<i32>,
        f32: Array1<f32>,
        name: String,
    }
    let dir = std::fs::read_dir(fixture("")).unwrap();
    let mut seen = 0;
    for entry in dir {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.contains("_mixed_") || name.contains("lz4") && !cfg!(feature = "lz4") {
            continue;
        }
        let owned: Owned = load_python(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Compressed files cannot be mapped: loaded into memory, with a warning.
        let m: Mixed =
            load_python_mmap(&path, MmapMode::ReadOnly).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_mixed(&m);
        assert_eq!(m.f64_2d.view(), owned.f64_2d, "{name}");
        let compressed = !name.contains("_p") && !name.contains("nonseekable");
        if compressed {
            assert!(!m.f64_2d.is_mapped(), "{name}");
        }
        seen += 1;
    }
    assert!(seen >= 20, "{seen} fixtures");
}

#[derive(Deserialize, Debug)]
struct Mapped {
    a: MmapArray<f64, Ix1>,
    same: MmapArray<f64, Ix1>,
    i8: MmapArray<i64, Ix1>,
    u1: MmapArray<u8, Ix1>,
    be: MmapArray<f64, Ix1>,
    f: MmapArray<f64, Ix2>,
}

#[test]
fn big_endian_and_fortran_arrays_are_copies() {
    let m: Mapped = load_python_mmap(fixture("v16_mapped.pkl"), MmapMode::ReadOnly).unwrap();
    let arange = Array1::from_shape_fn(1000, |i| i as f64);
    assert_eq!(m.a.view(), arange);
    assert_eq!(m.same.view(), arange);
    // joblib writes an array that appears twice in the value twice.
    assert!(m.a.is_mapped() && m.same.is_mapped());
    assert_eq!(m.i8.view(), Array1::from_shape_fn(10, |i| i as i64));
    assert!(m.i8.is_mapped());
    assert_eq!(m.u1.view(), Array1::from_shape_fn(7, |i| i as u8));
    assert!(m.u1.is_mapped());
    assert_eq!(m.be.view(), array![0.0, 1.0, 2.0, 3.0, 4.0]);
    assert!(!m.be.is_mapped());
    assert_eq!(m.f.view(), array![[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]);
    assert!(!m.f.is_mapped());
}

#[test]
fn element_types_are_never_converted() {
    #[derive(Deserialize, Debug)]
    struct Wrong {
        #[allow(dead_code)]
        a: MmapArray<f32, Ix1>,
    }
    let err = load_python_mmap::<Wrong>(fixture("v16_mapped.pkl"), MmapMode::ReadOnly).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Deserialize { .. }), "{text}");
    assert!(text.contains("f32"), "{text}");
}

#[test]
fn plain_arrays_and_vectors_load_as_copies_from_the_mapping() {
    #[derive(Deserialize)]
    struct Plain {
        a: Array1<f64>,
        i8: Vec<i64>,
        f: Array2<f64>,
    }
    let p: Plain = load_python_mmap(fixture("v16_mapped.pkl"), MmapMode::ReadOnly).unwrap();
    assert_eq!(p.a, Array1::from_shape_fn(1000, |i| i as f64));
    assert_eq!(p.i8, (0..10).collect::<Vec<i64>>());
    assert_eq!(p.f, array![[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]);
}

/// A protocol-4 pickle of `[w, w]`, where `w` is one `NumpyArrayWrapper`
/// of `data` (as float64, 16-byte padding) referenced twice through the
/// memo: two values, one block of the file.
fn shared_wrapper(data: &[f64]) -> Vec<u8> {
    fn s(out: &mut Vec<u8>, text: &str) {
        out.push(0x8c); // SHORT_BINUNICODE
        out.push(u8::try_from(text.len()).unwrap());
        out.extend_from_slice(text.as_bytes());
    }
    let mut p = b"\x80\x04(".to_vec(); // PROTO 4, MARK
    s(&mut p, "joblib.numpy_pickle");
    s(&mut p, "NumpyArrayWrapper");
    p.extend_from_slice(b"\x93)\x81}("); // STACK_GLOBAL, (), NEWOBJ, {}, MARK
    for (key, module, name) in [
        ("subclass", "numpy", "ndarray"),
        ("dtype", "numpy", "dtype"),
    ] {
        s(&mut p, key);
        s(&mut p, module);
        s(&mut p, name);
        p.push(0x93);
        if key == "dtype" {
            s(&mut p, "f8");
            p.extend_from_slice(b"\x89\x88\x87R(K\x03"); // (False, True), REDUCE, MARK, 3
            s(&mut p, "<");
            p.extend_from_slice(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb");
        }
    }
    s(&mut p, "shape");
    p.push(b'J'); // BININT
    p.extend_from_slice(&i32::try_from(data.len()).unwrap().to_le_bytes());
    p.push(0x85); // TUPLE1
    s(&mut p, "order");
    s(&mut p, "C");
    s(&mut p, "allow_mmap");
    p.push(0x88);
    s(&mut p, "numpy_array_alignment_bytes");
    p.extend_from_slice(b"K\x10ub"); // 16, SETITEMS, BUILD
    let pad = 16 - (p.len() + 1) % 16;
    p.push(u8::try_from(pad).unwrap());
    p.extend(std::iter::repeat_n(0xff, pad));
    p.extend(data.iter().flat_map(|x| x.to_le_bytes()));
    p.extend_from_slice(b"\x94h\x00l."); // MEMOIZE, BINGET 0, LIST, STOP
    p
}

#[test]
fn an_array_shared_through_the_memo_is_viewed_once_and_copied_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.pkl");
    let data: Vec<f64> = (0..100).map(f64::from).collect();
    std::fs::write(&path, shared_wrapper(&data)).unwrap();
    let owned: Vec<Vec<f64>> = load_python(&path).unwrap();
    assert_eq!(owned, [data.clone(), data.clone()]);
    let v: Vec<MmapArray<f64, Ix1>> = load_python_mmap(&path, MmapMode::ReadOnly).unwrap();
    assert_eq!(v.len(), 2);
    assert!(v[0].is_mapped());
    assert!(!v[1].is_mapped());
    for a in &v {
        assert_eq!(a.view().to_vec(), data);
    }
}

fn copy_to(dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(fixture(name), &to).unwrap();
    to
}

#[test]
fn read_only_views_cannot_be_written_and_copy_on_write_stays_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_to(dir.path(), "v16_mapped.pkl");
    let mut m: Mapped = load_python_mmap(&path, MmapMode::ReadOnly).unwrap();
    assert!(m.a.view_mut().is_none());
    // A copy is the value's own, and so writable whatever the mode.
    assert!(m.be.view_mut().is_some());
    drop(m);

    let mut m: Mapped = load_python_mmap(&path, MmapMode::CopyOnWrite).unwrap();
    assert!(m.a.is_mapped());
    m.a.view_mut().unwrap()[0] = 42.0;
    assert_eq!(m.a.view()[0], 42.0);
    drop(m);
    let again: Mapped = load_python_mmap(&path, MmapMode::ReadOnly).unwrap();
    assert_eq!(again.a.view()[0], 0.0);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(fixture("v16_mapped.pkl")).unwrap()
    );
}

#[test]
fn read_write_views_reach_the_file_and_dropping_the_value_unmaps_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_to(dir.path(), "v16_mapped.pkl");
    let mut m: Mapped = load_python_mmap(&path, MmapMode::ReadWrite).unwrap();
    m.a.view_mut().unwrap()[3] = -7.5;
    m.a.flush().unwrap();
    // While the read-write mapping lives, no other mapping of the file.
    let busy = load_python_mmap::<Mapped>(&path, MmapMode::ReadOnly).unwrap_err();
    assert!(matches!(busy, Error::MappingConflict { .. }), "{busy}");
    drop(m);
    // Dropped: unmapped and unlocked.
    let back: Mapped = load_python_mmap(&path, MmapMode::ReadWrite).unwrap();
    assert_eq!(back.a.view()[3], -7.5);
    drop(back);
    #[derive(Deserialize)]
    struct A {
        a: Array1<f64>,
    }
    assert_eq!(load_python::<A>(&path).unwrap().a[3], -7.5);
}

/// `load_python_mmap` and `load_python` of `path` fail alike: both or
/// neither, with the same message.
fn same_outcome(path: &Path) {
    let owned = load_python::<IgnoredAny>(path).map(|_| ());
    let mapped = load_python_mmap::<IgnoredAny>(path, MmapMode::ReadOnly).map(|_| ());
    match (&owned, &mapped) {
        (Ok(()), Ok(())) => {}
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{}", path.display()),
        _ => panic!(
            "{}: load_python {owned:?}, load_python_mmap {mapped:?}",
            path.display()
        ),
    }
}

#[test]
fn hostile_files_are_refused_as_by_load_python() {
    for name in [
        "hostile_padding_17.pkl",
        "hostile_padding_zero.pkl",
        "hostile_shape_huge.pkl",
        "hostile_shape_overflow.pkl",
    ] {
        assert!(load_python_mmap::<IgnoredAny>(fixture(name), MmapMode::ReadOnly).is_err());
        same_outcome(&fixture(name));
    }
    // Every truncation of a file whose arrays are mapped.
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fixture("v16_mixed_p4.pkl")).unwrap();
    let path = dir.path().join("cut.pkl");
    for len in 0..bytes.len() {
        std::fs::write(&path, &bytes[..len]).unwrap();
        same_outcome(&path);
        assert!(
            load_python_mmap::<IgnoredAny>(&path, MmapMode::ReadOnly).is_err(),
            "{len}"
        );
    }
}
