//! Pinned digests: the same value must give the same digest in every run,
//! process, version and platform. A change here is a breaking change and
//! must be written in CHANGES.md.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use common::{Marker, Meters, Pair, Point, Shape};
use ndarray::{Array, Array0, Array1, Array2, Array3, arr1, arr2};
use serde_bytes::Bytes;

fn hex<T: serde::Serialize + ?Sized>(v: &T) -> String {
    joblib_hash::hash(v).unwrap().to_hex()
}

/// Each case: a name, the digest of the value, and the pinned hex.
fn cases() -> Vec<(&'static str, String)> {
    let map: HashMap<&str, u32> = [("a", 1), ("b", 2)].into();
    let btree: BTreeMap<&str, u32> = [("b", 2), ("a", 1)].into();
    let set: HashSet<i32> = [3, 1, 2].into();
    let bset: BTreeSet<i32> = [1, 2, 3].into();
    vec![
        ("u8", hex(&0u8)),
        ("u16", hex(&u16::MAX)),
        ("u32", hex(&7u32)),
        ("u64", hex(&u64::MAX)),
        ("u128", hex(&(u128::MAX - 1))),
        ("i8", hex(&-1i8)),
        ("i16", hex(&-300i16)),
        ("i32", hex(&-5i32)),
        ("i64", hex(&i64::MIN)),
        ("i128", hex(&-1i128)),
        ("usize", hex(&5usize)),
        ("f32", hex(&1.5f32)),
        ("f64", hex(&std::f64::consts::PI)),
        ("f64 -0", hex(&-0.0f64)),
        ("f64 nan", hex(&f64::NAN)),
        ("f64 inf", hex(&f64::INFINITY)),
        ("bool", hex(&true)),
        ("char", hex(&'é')),
        ("str", hex("hello")),
        ("empty str", hex("")),
        ("bytes", hex(Bytes::new(b"\x00\x01\xff"))),
        ("unit", hex(&())),
        ("some", hex(&Some(3u8))),
        ("none", hex(&None::<u8>)),
        ("tuple", hex(&(1u8, "a", 2.0f64))),
        ("vec", hex(&vec![1u32, 2, 3])),
        ("nested vec", hex(&vec![vec![1i64], vec![]])),
        ("empty vec", hex(&Vec::<f64>::new())),
        ("array [u8; 3]", hex(&[1u8, 2, 3])),
        ("hashmap", hex(&map)),
        ("btreemap", hex(&btree)),
        ("empty map", hex(&HashMap::<String, u8>::new())),
        ("hashset", hex(&set)),
        ("btreeset", hex(&bset)),
        ("unit variant", hex(&Shape::Empty)),
        ("newtype variant", hex(&Shape::Circle(1.0))),
        ("tuple variant", hex(&Shape::Segment(0.0, 1.0))),
        ("struct variant", hex(&Shape::Rect { w: 2.0, h: 3.0 })),
        ("struct", hex(&Point { x: 1.0, y: 2.0 })),
        ("unit struct", hex(&Marker)),
        ("newtype struct", hex(&Meters(1.0))),
        ("tuple struct", hex(&Pair(1, 2))),
        ("ndarray 0-d f64", hex(&Array0::from_elem((), 1.5f64))),
        ("ndarray 1-d f32", hex(&arr1(&[1.0f32, 2.0, 3.0]))),
        ("ndarray 1-d f64", hex(&Array1::linspace(0.0, 1.0, 5))),
        ("ndarray 2-d i64", hex(&arr2(&[[1i64, 2, 3], [4, 5, 6]]))),
        ("ndarray 2-d f64 empty", hex(&Array2::<f64>::zeros((0, 3)))),
        (
            "ndarray 3-d u8",
            hex(&Array3::from_shape_fn((2, 3, 4), |(i, j, k)| {
                (i * 12 + j * 4 + k) as u8
            })),
        ),
        (
            "ndarray dyn f64",
            hex(&Array::from_elem(ndarray::IxDyn(&[2, 2]), 0.5f64)),
        ),
    ]
}

const PINNED: &[(&str, &str)] = &[
    ("u8", "16a845882d77f26cc84faf6d0d2a968f"),
    ("u16", "d622cfb38f111c87010df5a7ceb8896f"),
    ("u32", "206cae3089edad9899315e5180320e8c"),
    ("u64", "ee7fba30daab741ab0a9141dece626d5"),
    ("u128", "2cd37a36749ec10013d4c8ac8f2b98f8"),
    ("i8", "7b8c61281b12c23c92712e9bbf503a75"),
    ("i16", "3608ff46766515ebed7d424365759067"),
    ("i32", "b9cd2299f726735ac46f7d992ff47076"),
    ("i64", "ad2380cb0b2f1e4871a7cfe58b3aecdf"),
    ("i128", "6335fe1f519b4f5c3d11f333468fcd1a"),
    ("usize", "a51763bcbb0de4a20126303b64e388de"),
    ("f32", "3935c7920c7695a3b18d3a7ca305b066"),
    ("f64", "c0546bab38e8432b15d011ecac3871db"),
    ("f64 -0", "6c77d190d32e7a321ca1b13b7de131e8"),
    ("f64 nan", "4a7982d0178bb8d79fbf214d2b026015"),
    ("f64 inf", "a0bf08368d8f769ccabf63e7cce0dd68"),
    ("bool", "e47f10c79243838966e9c4aa7c53ef78"),
    ("char", "d4a7b0a934d98e0dde7d75077fa6de51"),
    ("str", "038ec349d01b092b9027afacf4d32485"),
    ("empty str", "4f8efa5a87d044c602b6f74afa7ad0c6"),
    ("bytes", "5cf3e75ece89eef3c425fc8965c3ddf6"),
    ("unit", "51025a4491835505e12ef9d2eb86ceeb"),
    ("some", "37d70e554e0e072065e05fe7819bbb94"),
    ("none", "aca5d426a7d113c0765e659a7480cd51"),
    ("tuple", "da37894d8eb63ae95fbc7696b32d581c"),
    ("vec", "563da21644b6dcf88de2fb890736ff9b"),
    ("nested vec", "0cc8d276b5e08ed9e85b9a79145624be"),
    ("empty vec", "17935260d5194ba8a865ec016fe6d8ad"),
    ("array [u8; 3]", "8ad6a3305a15719e21cdbdc69e501615"),
    ("hashmap", "18c42c6e9c6d7ecabb94f933bb805cf0"),
    ("btreemap", "18c42c6e9c6d7ecabb94f933bb805cf0"),
    ("empty map", "051b39132cb120ddc174133e0c8d353a"),
    ("hashset", "4b0053763b2f8eb95140ff305c32703e"),
    ("btreeset", "4b0053763b2f8eb95140ff305c32703e"),
    ("unit variant", "fbc0ad941c84ff93beb25c17f7ee22c9"),
    ("newtype variant", "54135012b2c36731f17c0ad333a1ae97"),
    ("tuple variant", "dc66a7e85b0d8d4e78304f40b6e87a9e"),
    ("struct variant", "3f2fa63b9ca589e1128ae071cbd4e0bb"),
    ("struct", "0913fd7a7bf7c164d2b65a68568c8932"),
    ("unit struct", "551cb38d87737083da355507718bf070"),
    ("newtype struct", "a05b286cf589cf1abd9c881187868305"),
    ("tuple struct", "abe29e77ef05a2097809c75818ee1c7d"),
    ("ndarray 0-d f64", "b4e4456f64eb53e058d0d095eb68f7de"),
    ("ndarray 1-d f32", "c45978b2e0b0d8669c25d1860b01e48f"),
    ("ndarray 1-d f64", "2733f57b162a99eabe1ef377acdde3e2"),
    ("ndarray 2-d i64", "4f9c41d921beb682cea7c30d281ffe59"),
    ("ndarray 2-d f64 empty", "a4e3f9fae2d4bc2eab50b06f84eb968f"),
    ("ndarray 3-d u8", "74244962bcc88074d878eb013c0112af"),
    ("ndarray dyn f64", "7fc85f2fc84286b501c4cdbde661d6ab"),
];

#[test]
fn digests_are_pinned() {
    let got = cases();
    let mut failures = Vec::new();
    for (name, digest) in &got {
        match PINNED.iter().find(|(n, _)| n == name) {
            Some((_, pinned)) if pinned == digest => {}
            Some((_, pinned)) => failures.push(format!("{name}: pinned {pinned}, got {digest}")),
            None => failures.push(format!("(\"{name}\", \"{digest}\"),")),
        }
    }
    assert_eq!(
        PINNED.len(),
        got.len(),
        "every case is pinned:\n{}",
        failures.join("\n")
    );
    assert!(
        failures.is_empty(),
        "digests changed:\n{}",
        failures.join("\n")
    );
}
