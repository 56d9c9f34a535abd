//! Values survive a dump and a load, through files and streams, with every
//! compression method.

use std::collections::{BTreeMap, HashMap};

use joblib_persist::{
    Compression, DumpOptions, dump, dump_to_writer, inspect, load, load_from_reader,
};
use ndarray::{Array1, Array2, Array3, ArrayD, IxDyn};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
enum Shape {
    Unit,
    Newtype(f64),
    Tuple(i32, String),
    Struct { w: u16, h: u16 },
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
#[serde(untagged)]
enum Loose {
    Num(f64),
    Text(String),
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Meters(f64);

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Everything {
    b: bool,
    i8: i8,
    i64: i64,
    u64: u64,
    u128: u128,
    i128: i128,
    f32: f32,
    c: char,
    s: String,
    unit: (),
    opt_none: Option<u8>,
    opt_some_unit: Option<()>,
    opt_some_none: Option<Option<u8>>,
    shapes: Vec<Shape>,
    map: BTreeMap<String, Vec<i16>>,
    hmap: HashMap<u32, String>,
    tuple: (u8, f64, String),
    floats: Vec<f64>,
    small: Vec<f32>,
    bytes_vec: Vec<u8>,
    #[serde(with = "serde_bytes")]
    bytes: Vec<u8>,
    #[serde(with = "serde_bytes")]
    small_bytes: Vec<u8>,
    meters: Vec<Meters>,
    loose: Vec<Loose>,
    arr: [u32; 32],
    nested: Vec<Vec<i64>>,
    a2: Array2<f64>,
    a3: Array3<i32>,
    ad: ArrayD<f32>,
    a_t: Array2<u8>,
    empty: Vec<f64>,
    empty_arr: Array2<f64>,
}

fn everything() -> Everything {
    let mut loose: Vec<Loose> = (0..100).map(|i| Loose::Num(i as f64)).collect();
    loose.push(Loose::Text("switch".into()));
    loose.extend((0..100).map(|i| Loose::Num(-i as f64)));
    Everything {
        b: true,
        i8: -5,
        i64: i64::MIN,
        u64: u64::MAX,
        u128: u128::MAX - 7,
        i128: i128::MIN + 3,
        f32: 1.5,
        c: 'é',
        s: "hello".into(),
        unit: (),
        opt_none: None,
        opt_some_unit: Some(()),
        opt_some_none: Some(None),
        shapes: vec![
            Shape::Unit,
            Shape::Newtype(2.5),
            Shape::Tuple(-1, "t".into()),
            Shape::Struct { w: 3, h: 4 },
        ],
        map: [
            ("a".to_string(), vec![1, -2]),
            ("b".to_string(), (0..500).collect()),
        ]
        .into_iter()
        .collect(),
        hmap: [(7, "seven".to_string())].into_iter().collect(),
        tuple: (1, 2.0, "three".into()),
        floats: (0..10_000).map(|i| (i as f64).sin()).collect(),
        small: vec![1.0, 2.0],
        bytes_vec: (0..=255).collect(),
        bytes: (0..100_000u32).map(|i| (i % 251) as u8).collect(),
        small_bytes: vec![1, 2, 3],
        meters: (0..300).map(|i| Meters(i as f64)).collect(),
        loose,
        arr: std::array::from_fn(|i| i as u32 * 3),
        nested: vec![vec![1; 100], vec![], vec![2; 3]],
        a2: Array2::from_shape_fn((50, 40), |(i, j)| i as f64 - j as f64 / 3.0),
        a3: Array3::from_shape_fn((4, 5, 6), |(i, j, k)| (i * 100 + j * 10 + k) as i32),
        ad: ArrayD::from_shape_fn(IxDyn(&[3, 2, 7, 2]), |d| d[0] as f32 + d[3] as f32),
        a_t: Array2::from_shape_fn((30, 20), |(i, j)| (i + j) as u8).reversed_axes(),
        empty: Vec::new(),
        empty_arr: Array2::zeros((0, 5)),
    }
}

fn methods() -> Vec<Compression> {
    #[allow(unused_mut)]
    let mut m = vec![Compression::None];
    #[cfg(feature = "zlib")]
    m.extend([Compression::Zlib, Compression::Gzip]);
    #[cfg(feature = "bz2")]
    m.push(Compression::Bz2);
    #[cfg(feature = "xz")]
    m.extend([Compression::Xz, Compression::Lzma]);
    #[cfg(feature = "lz4")]
    m.push(Compression::Lz4);
    #[cfg(feature = "zstd")]
    m.push(Compression::Zstd);
    m
}

#[test]
fn every_serde_shape_round_trips_with_every_method() {
    let dir = tempfile::tempdir().unwrap();
    let value = everything();
    for method in methods() {
        let path = dir.path().join(format!("all-{}.jbl", method.name()));
        DumpOptions::new()
            .compress(method.clone())
            .chunk_size(4096)
            .dump(&value, &path)
            .unwrap();
        let back: Everything = load(&path).unwrap();
        assert_eq!(back, value, "{}", method.name());
        assert_eq!(inspect(&path).unwrap().compression, method);
    }
}

#[test]
fn large_arrays_go_out_of_line_and_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jbl");
    let value = everything();
    dump(&value, &path).unwrap();
    let info = inspect(&path).unwrap();
    assert!(info.blocks.iter().all(|b| b.offset % 64 == 0));
    let shapes: Vec<&[u64]> = info.blocks.iter().map(|b| b.shape.as_slice()).collect();
    assert!(shapes.contains(&&[50u64, 40][..]), "{shapes:?}");
    assert!(shapes.contains(&&[4u64, 5, 6][..]));
    assert!(shapes.contains(&&[3u64, 2, 7, 2][..]));
    assert!(shapes.contains(&&[10_000u64][..]));
    // The structure stays small: the arrays are not in it.
    assert!(info.structure_bytes < 8_000, "{}", info.structure_bytes);
    // Runs that switch type mid-sequence are split, not lost.
    let loose = info.blocks.iter().filter(|b| b.shape == [100]).count();
    assert!(loose >= 2);
}

#[test]
fn streams_round_trip() {
    let value = everything();
    for method in methods() {
        let bytes = DumpOptions::new()
            .compress(method.clone())
            .dump_to_writer(&value, Vec::new())
            .unwrap();
        let back: Everything = load_from_reader(bytes.as_slice()).unwrap();
        assert_eq!(back, value, "{}", method.name());
    }
    let bytes = dump_to_writer(&42u8, Vec::new()).unwrap();
    assert_eq!(load_from_reader::<u8, _>(&bytes[..]).unwrap(), 42);
}

#[test]
fn extension_picks_the_method_and_options_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let v: Vec<f64> = (0..5000).map(f64::from).collect();
    for (name, expected) in [
        ("a.jbl.zst", Compression::Zstd),
        ("a.jbl.lz4", Compression::Lz4),
        ("a.jbl", Compression::None),
    ] {
        let path = dir.path().join(name);
        if dump(&v, &path).is_err() {
            continue; // method compiled out
        }
        assert_eq!(inspect(&path).unwrap().compression, expected);
        assert_eq!(load::<Vec<f64>>(&path).unwrap(), v);
    }
    let path = dir.path().join("b.jbl.zst");
    DumpOptions::new()
        .compress(Compression::None)
        .dump(&v, &path)
        .unwrap();
    assert_eq!(inspect(&path).unwrap().compression, Compression::None);
}

#[test]
fn dump_replaces_atomically_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jbl");
    dump(&vec![1u64; 1000], &path).unwrap();
    DumpOptions::new()
        .durable(true)
        .dump(&"second", &path)
        .unwrap();
    assert_eq!(load::<String>(&path).unwrap(), "second");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn failed_serialization_leaves_the_old_file() {
    struct Fails;
    impl Serialize for Fails {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("nope"))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.jbl");
    dump(&7u8, &path).unwrap();
    let err = dump(&(vec![0.5f64; 10_000], Fails), &path).unwrap_err();
    assert!(
        matches!(err, joblib_persist::Error::Serialize { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("nope"));
    assert_eq!(load::<u8>(&path).unwrap(), 7);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn wrong_type_is_a_deserialize_error() {
    let bytes = dump_to_writer(&vec![1.0f64; 1000], Vec::new()).unwrap();
    let err = load_from_reader::<String, _>(&bytes[..]).unwrap_err();
    assert!(
        matches!(err, joblib_persist::Error::Deserialize { .. }),
        "{err}"
    );
    let err = load_from_reader::<(f64, f64), _>(&bytes[..]).unwrap_err();
    assert!(
        matches!(err, joblib_persist::Error::Deserialize { .. }),
        "{err}"
    );
}

#[test]
fn invalid_options_are_refused() {
    let err = DumpOptions::new()
        .chunk_size(1000)
        .dump_to_writer(&1u8, Vec::new())
        .unwrap_err();
    assert!(matches!(err, joblib_persist::Error::Options(_)));
}

#[derive(Serialize, Deserialize, PartialEq, Debug, Clone)]
struct Record {
    id: u64,
    name: String,
    tags: Vec<String>,
    values: Vec<f64>,
    counts: Vec<i32>,
    raw: Vec<u8>,
    maybe: Option<Vec<u16>>,
    grid: Array1<f32>,
}

fn record() -> impl Strategy<Value = Record> {
    (
        any::<u64>(),
        ".{0,12}",
        prop::collection::vec(".{0,5}", 0..4),
        prop::collection::vec(
            any::<f64>().prop_filter("NaN != NaN", |f| !f.is_nan()),
            0..200,
        ),
        prop::collection::vec(any::<i32>(), 0..200),
        prop::collection::vec(any::<u8>(), 0..600),
        prop::option::of(prop::collection::vec(any::<u16>(), 0..300)),
        prop::collection::vec(-1e6f32..1e6, 0..150),
    )
        .prop_map(
            |(id, name, tags, values, counts, raw, maybe, grid)| Record {
                id,
                name,
                tags,
                values,
                counts,
                raw,
                maybe,
                grid: Array1::from(grid),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_records_round_trip(records in prop::collection::vec(record(), 0..4), min_block in 1usize..600) {
        for method in methods().into_iter().filter(|m| matches!(m, Compression::None | Compression::Lz4)) {
            let bytes = DumpOptions::new()
                .compress(method)
                .chunk_size(4096)
                .min_block_size(min_block)
                .dump_to_writer(&records, Vec::new())
                .unwrap();
            let back: Vec<Record> = load_from_reader(&bytes[..]).unwrap();
            prop_assert_eq!(&back, &records);
        }
    }
}

#[test]
fn dumps_inside_a_saturated_rayon_pool_do_not_deadlock() {
    use rayon::prelude::*;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let value: Vec<f64> = (0..300_000).map(f64::from).collect();
    let sizes: Vec<usize> = pool
        .install(|| {
            (0..8)
                .into_par_iter()
                .map(|i| {
                    let lz4 = i % 2 == 1 && cfg!(feature = "lz4");
                    let method = if lz4 {
                        Compression::Lz4
                    } else {
                        Compression::None
                    };
                    DumpOptions::new()
                        .compress(method)
                        .chunk_size(4096)
                        .dump_to_writer(&value, Vec::new())
                        .map(|b| b.len())
                })
                .collect::<Result<_, _>>()
        })
        .unwrap();
    assert_eq!(sizes.len(), 8);
}

/// A tree as deep as asked: each `Node` is an enum variant (one level) around
/// a sequence (another level).
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
enum Nest {
    Leaf,
    Node(Vec<Nest>),
}

fn nest(nodes: usize) -> Nest {
    (0..nodes).fold(Nest::Leaf, |inner, _| Nest::Node(vec![inner]))
}

/// Found by the `roundtrip` fuzz target: a value nested deeper than the
/// loader accepts used to be dumped anyway, giving a file that could never be
/// loaded. Dumping now refuses it, and leaves no file behind.
#[test]
fn dump_refuses_values_nested_deeper_than_load_accepts() {
    // 128 nodes = 256 levels: the most a file may hold.
    let deepest = nest(128);
    let bytes = joblib_persist::dump_to_writer(&deepest, Vec::new()).unwrap();
    let back: Nest = joblib_persist::load_from_reader(&bytes[..]).unwrap();
    assert_eq!(back, deepest);

    let too_deep = nest(129);
    let err = joblib_persist::dump_to_writer(&too_deep, Vec::new()).unwrap_err();
    assert!(err.to_string().contains("nested deeper than 256"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep.jbl");
    assert!(joblib_persist::dump(&too_deep, &path).is_err());
    assert!(!path.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary file is left"
    );

    // Struct variants and maps count the same way.
    #[derive(serde::Serialize)]
    enum Wrap {
        S { inner: Box<Option<Wrap>> },
    }
    let mut w = None;
    for _ in 0..200 {
        w = Some(Wrap::S { inner: Box::new(w) });
    }
    assert!(joblib_persist::dump_to_writer(&w, Vec::new()).is_err());
}

/// The re-exported ndarray is the one a user gets from `cargo add ndarray`
/// (0.17): its arrays are the very types this crate dumps, loads and maps.
#[test]
fn the_reexported_ndarray_is_the_supported_version() {
    use joblib_persist::ndarray as nd;
    let a: nd::Array2<f32> = nd::Array2::from_shape_fn((40, 7), |(i, j)| (i * 7 + j) as f32);
    // Same type as the dev-dependency's (ndarray 0.17 from the workspace).
    let same: Array2<f32> = a.clone();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jbl");
    dump(&same, &path).unwrap();
    let back: nd::Array2<f32> = load(&path).unwrap();
    assert_eq!(back, a);
    let mapped: joblib_persist::MmapArray<f32, nd::Ix2> =
        joblib_persist::load_mmap(&path, joblib_persist::MmapMode::ReadOnly).unwrap();
    assert!(mapped.is_mapped());
    assert_eq!(mapped.view(), a.view());
}
