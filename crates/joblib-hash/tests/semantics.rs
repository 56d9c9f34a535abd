//! The promises of joblib-hash, one test each.

mod common;

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::BuildHasherDefault;

use common::{Meters, Pair, Point, Shape};
use joblib_hash::{Algorithm, Digest, Error, Hasher, hash, hash_with};
use ndarray::{Array1, Array2, Array3, ShapeBuilder, arr2, s};
use serde::Serialize;
use serde_bytes::Bytes;

fn h<T: Serialize + ?Sized>(v: &T) -> Digest {
    hash(v).unwrap()
}

#[test]
fn adjacent_strings_do_not_run_together() {
    assert_ne!(h(&("ab", "c")), h(&("a", "bc")));
    assert_ne!(h(&vec!["ab", "c"]), h(&vec!["a", "bc"]));
    assert_ne!(
        h(&vec![vec![1u8, 2], vec![3]]),
        h(&vec![vec![1u8], vec![2, 3]])
    );
}

#[test]
fn integer_widths_and_signs_differ() {
    let all = [
        h(&1u8),
        h(&1u16),
        h(&1u32),
        h(&1u64),
        h(&1u128),
        h(&1i8),
        h(&1i16),
        h(&1i32),
        h(&1i64),
        h(&1i128),
        h(&1.0f32),
        h(&1.0f64),
        h(&true),
        h(&'\u{1}'),
    ];
    let distinct: HashSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len());
    // Inside sequences too, where no per-element tag is written.
    assert_ne!(h(&vec![1u8, 2]), h(&vec![1u16, 2]));
    assert_ne!(h(&vec![1u32]), h(&vec![1.0f32]));
}

#[test]
fn usize_is_hashed_as_u64_on_every_platform() {
    assert_eq!(h(&5usize), h(&5u64));
    assert_eq!(h(&vec![1usize, 2]), h(&vec![1u64, 2]));
    assert_eq!(h(&-5isize), h(&-5i64));
}

#[test]
fn option_wraps_its_value() {
    assert_ne!(h(&Some(0u8)), h(&0u8));
    assert_ne!(h(&Some(Some(0u8))), h(&Some(0u8)));
    assert_ne!(h(&None::<u8>), h(&()));
    assert_ne!(h(&vec![Some(1u8)]), h(&vec![1u8]));
}

#[test]
fn unit_empty_sequence_and_empty_tuple_differ() {
    let empty: [u8; 0] = [];
    let unit = h(&());
    assert_ne!(unit, h(&empty));
    assert_ne!(unit, h(&Vec::<u8>::new()));
    assert_ne!(h(&empty), h(&Vec::<u8>::new()));
}

#[test]
fn containers_of_different_kinds_differ() {
    assert_ne!(h(&vec![1u8, 2]), h(&(1u8, 2u8)));
    assert_ne!(h(&(1u8, 2u8)), h(&Pair(1, 2)));
    assert_ne!(h(&vec![1u8, 2]), h(Bytes::new(&[1, 2])));
    assert_ne!(h(&Meters(1.0)), h(&1.0f64));
    assert_ne!(h("a"), h(&'a'));
    assert_ne!(h("a"), h(Bytes::new(b"a")));
}

#[test]
fn struct_and_variant_names_are_part_of_the_digest() {
    #[derive(Serialize)]
    struct Point2 {
        x: f64,
        y: f64,
    }
    #[derive(Serialize)]
    struct Renamed {
        x: f64,
        z: f64,
    }
    assert_ne!(h(&Point { x: 1.0, y: 2.0 }), h(&Point2 { x: 1.0, y: 2.0 }));
    assert_ne!(h(&Point { x: 1.0, y: 2.0 }), h(&Renamed { x: 1.0, z: 2.0 }));
    assert_ne!(h(&Point { x: 1.0, y: 2.0 }), h(&Point { x: 2.0, y: 1.0 }));

    #[derive(Serialize)]
    enum Other {
        Empty,
        Circle(f64),
    }
    assert_ne!(h(&Shape::Empty), h(&Other::Empty));
    assert_ne!(h(&Shape::Circle(1.0)), h(&Other::Circle(1.0)));
    // Every variant kind is distinct from the others and from a plain value.
    let kinds = [
        h(&Shape::Empty),
        h(&Shape::Circle(0.0)),
        h(&Shape::Segment(0.0, 0.0)),
        h(&Shape::Rect { w: 0.0, h: 0.0 }),
        h(&0.0f64),
        h(&(0.0f64, 0.0f64)),
    ];
    assert_eq!(kinds.iter().collect::<HashSet<_>>().len(), kinds.len());
}

#[test]
fn floats_are_bit_exact_except_nan() {
    assert_ne!(h(&0.0f64), h(&-0.0f64));
    assert_ne!(h(&0.0f32), h(&-0.0f32));
    assert_ne!(h(&1.0f64), h(&(1.0f64 + f64::EPSILON)));
    let quiet = f64::NAN;
    let negative = -f64::NAN;
    let payload = f64::from_bits(0x7ff0_0000_dead_beef);
    assert!(payload.is_nan());
    assert_eq!(h(&quiet), h(&negative));
    assert_eq!(h(&quiet), h(&payload));
    assert_eq!(h(&vec![1.0, quiet]), h(&vec![1.0, payload]));
    assert_eq!(h(&f32::NAN), h(&f32::from_bits(0xffc0_1234)));
    assert_ne!(h(&f64::NAN), h(&f64::INFINITY));
}

#[test]
fn maps_ignore_order_and_hasher() {
    let entries: Vec<(String, u64)> = (0..500).map(|i| (format!("k{i}"), i * 7)).collect();
    let forward: HashMap<String, u64> = entries.iter().cloned().collect();
    let mut backward: HashMap<String, u64, RandomState> = HashMap::with_hasher(RandomState::new());
    for (k, v) in entries.iter().rev() {
        backward.insert(k.clone(), *v);
    }
    let fixed: HashMap<String, u64, BuildHasherDefault<std::hash::DefaultHasher>> =
        entries.iter().cloned().collect();
    let btree: BTreeMap<String, u64> = entries.iter().cloned().collect();
    assert_eq!(h(&forward), h(&backward));
    assert_eq!(h(&forward), h(&fixed));
    assert_eq!(h(&forward), h(&btree));

    let mut changed = btree.clone();
    changed.insert("k3".into(), 0);
    assert_ne!(h(&btree), h(&changed));
    // Keys and values do not trade places.
    let a: BTreeMap<u8, u8> = [(1, 2)].into();
    let b: BTreeMap<u8, u8> = [(2, 1)].into();
    assert_ne!(h(&a), h(&b));
    // A map is not the list of its entries.
    assert_ne!(h(&a), h(&vec![(1u8, 2u8)]));
}

#[test]
fn sets_ignore_order_and_differ_from_sequences() {
    let values: Vec<i64> = (0..300).map(|i| i * i - 40).collect();
    let hs: HashSet<i64> = values.iter().copied().collect();
    let rev: HashSet<i64> = values.iter().rev().copied().collect();
    let bs: BTreeSet<i64> = values.iter().copied().collect();
    assert_eq!(h(&hs), h(&rev));
    assert_eq!(h(&hs), h(&bs));
    let sorted: Vec<i64> = bs.iter().copied().collect();
    assert_ne!(h(&bs), h(&sorted));
    // Nested: a vector of sets, a map of sets.
    let nested_a = vec![hs.clone()];
    let nested_b = vec![rev.clone()];
    assert_eq!(h(&nested_a), h(&nested_b));
    let m1: HashMap<u8, HashSet<i64>> = [(1, hs)].into();
    let m2: BTreeMap<u8, BTreeSet<i64>> = [(1, bs)].into();
    assert_eq!(h(&m1), h(&m2));
}

#[test]
fn unordered_adapter_makes_a_set() {
    mod list {
        #[derive(serde::Serialize)]
        pub(super) struct Tags {
            #[serde(with = "joblib_hash::unordered")]
            pub(super) names: Vec<&'static str>,
        }
    }
    mod set {
        // The same struct name, with a real set inside.
        #[derive(serde::Serialize)]
        pub(super) struct Tags {
            pub(super) names: std::collections::BTreeSet<&'static str>,
        }
    }
    let a = list::Tags {
        names: vec!["x", "y", "z"],
    };
    let b = list::Tags {
        names: vec!["z", "x", "y"],
    };
    assert_eq!(h(&a), h(&b));
    let c = set::Tags {
        names: ["y", "x", "z"].into(),
    };
    assert_eq!(h(&a), h(&c));
    let d = list::Tags {
        names: vec!["x", "y"],
    };
    assert_ne!(h(&a), h(&d));
    // The adapter round-trips through another format unchanged.
    #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Owned {
        #[serde(with = "joblib_hash::unordered")]
        names: Vec<String>,
    }
    let owned = Owned {
        names: vec!["b".into(), "a".into()],
    };
    let json = serde_json_like(&owned);
    assert_eq!(json, "{\"names\":[\"b\",\"a\"]}");
}

/// A tiny JSON writer is enough to see what another format receives.
fn serde_json_like<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

#[test]
fn arrays_follow_equality_whatever_the_memory_order() {
    let a = Array2::from_shape_fn((37, 53), |(i, j)| (i * 100 + j) as f64 * 0.25);
    let fortran = {
        let mut f = Array2::<f64>::zeros((37, 53).f());
        f.assign(&a);
        f
    };
    assert!(!fortran.is_standard_layout());
    assert_eq!(a, fortran);
    assert_eq!(h(&a), h(&fortran));

    let t = a.t();
    let t_owned = t.to_owned();
    assert_eq!(h(&t), h(&t_owned));
    assert_ne!(h(&a), h(&t_owned)); // the transpose has another shape

    let big = Array2::from_shape_fn((40, 60), |(i, j)| (i * 60 + j) as i64);
    let strided = big.slice(s![..;3, 1..;2]);
    assert_eq!(h(&strided), h(&strided.to_owned()));

    let view = a.view();
    assert_eq!(h(&view), h(&a));
}

#[test]
fn array_shape_and_dtype_are_part_of_the_digest() {
    let flat = Array1::from_iter(0..24i64);
    let grid = flat.clone().into_shape_with_order((4, 6)).unwrap();
    let other = flat.clone().into_shape_with_order((6, 4)).unwrap();
    let cube = flat.clone().into_shape_with_order((2, 3, 4)).unwrap();
    let digests = [h(&flat), h(&grid), h(&other), h(&cube)];
    assert_eq!(digests.iter().collect::<HashSet<_>>().len(), 4);
    let as_f64 = flat.mapv(|x| x as f64);
    let as_i32 = flat.mapv(|x| x as i32);
    assert_ne!(h(&flat), h(&as_f64));
    assert_ne!(h(&flat), h(&as_i32));
    let u8s = Array3::<u8>::zeros((2, 2, 2));
    assert_ne!(h(&u8s), h(&Array3::<u8>::zeros((2, 4, 1))));
    assert_eq!(h(&arr2(&[[1.0f32, 2.0]])), h(&arr2(&[[1.0f32, 2.0]])));
}

#[test]
fn large_sequences_match_their_small_pieces() {
    // Long runs are split into chunks; the chunking must not depend on
    // anything but the value, and must not merge two adjacent sequences.
    let long: Vec<u32> = (0..100_000).collect();
    assert_eq!(h(&long), h(&long.clone()));
    let (left, right) = long.split_at(50_000);
    assert_ne!(h(&long), h(&(left.to_vec(), right.to_vec())));
    let mut one_off = long.clone();
    one_off[77_777] += 1;
    assert_ne!(h(&long), h(&one_off));
    let bytes: Vec<u8> = vec![7; 10 * 1024 * 1024];
    assert_eq!(h(Bytes::new(&bytes)), h(Bytes::new(&bytes.clone())));
}

#[test]
fn hasher_combines_values_and_keeps_going() {
    let mut a = Hasher::new();
    a.update("f").unwrap().update(&1u32).unwrap();
    let mut b = Hasher::new();
    b.update("f1").unwrap();
    assert_ne!(a.finish().unwrap(), b.finish().unwrap());
    assert_ne!(a.finish().unwrap(), h(&("f", 1u32)));
    // finish does not consume: more updates continue from where it was.
    let first = a.finish().unwrap();
    a.update(&2u8).unwrap();
    assert_ne!(a.finish().unwrap(), first);
    let mut c = Hasher::new();
    c.update("f")
        .unwrap()
        .update(&1u32)
        .unwrap()
        .update(&2u8)
        .unwrap();
    assert_eq!(a.finish().unwrap(), c.finish().unwrap());
    // One value through the Hasher is the same as `hash`.
    let mut d = Hasher::default();
    d.update(&vec![1.5f64; 10]).unwrap();
    assert_eq!(d.finish().unwrap(), h(&vec![1.5f64; 10]));
    assert_eq!(d.algorithm(), Algorithm::Xxh3_128);
}

struct Fails;

impl Serialize for Fails {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value refuses"))
    }
}

#[test]
fn a_failing_serialize_is_an_error_and_poisons_the_hasher() {
    let err = hash(&(1u8, Fails)).unwrap_err();
    assert!(matches!(&err, Error::Serialize { message } if message == "this value refuses"));
    assert!(err.to_string().contains("this value refuses"));

    let mut hasher = Hasher::new();
    hasher.update(&1u8).unwrap();
    assert!(hasher.update(&vec![Fails]).is_err());
    assert!(
        matches!(hasher.finish(), Err(Error::Poisoned { message }) if message.contains("refuses"))
    );
    assert!(matches!(hasher.update(&2u8), Err(Error::Poisoned { .. })));

    // Failing inside a map entry or a set element is reported the same way.
    let map: BTreeMap<u8, Fails> = [(1, Fails)].into();
    assert!(matches!(hash(&map), Err(Error::Serialize { .. })));
    // A RefCell that is mutably borrowed cannot be serialized.
    let cell = RefCell::new(5u8);
    let _guard = cell.borrow_mut();
    assert!(hash(&cell).is_err());
}

#[test]
fn digests_parse_display_and_serialize() {
    let d = h(&"anything");
    assert_eq!(d.as_bytes().len(), 16);
    assert_eq!(d.algorithm(), Algorithm::Xxh3_128);
    assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    assert_eq!(format!("{d:?}"), format!("Digest({d})"));
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(json, format!("\"{d}\""));
    assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    assert!(serde_json::from_str::<Digest>("\"xyz\"").is_err());
    let mut sorted = [h(&1u8), h(&2u8), h(&3u8)];
    sorted.sort();
    assert!(sorted[0] < sorted[1] && sorted[1] < sorted[2]);
    assert_eq!(hash_with(Algorithm::Xxh3_128, &7u8).unwrap(), h(&7u8));
}

#[cfg(feature = "blake3")]
#[test]
fn blake3_digests_are_long_and_never_equal_xxh3() {
    let values = [h(&1u8), h(&"x"), h(&vec![1.0f64; 3])];
    let long = [
        hash_with(Algorithm::Blake3, &1u8).unwrap(),
        hash_with(Algorithm::Blake3, &"x").unwrap(),
        hash_with(Algorithm::Blake3, &vec![1.0f64; 3]).unwrap(),
    ];
    for (short, long) in values.iter().zip(&long) {
        assert_eq!(long.as_bytes().len(), 32);
        assert_eq!(long.algorithm(), Algorithm::Blake3);
        assert_ne!(short, long);
        assert_eq!(long.to_hex().parse::<Digest>().unwrap(), *long);
    }
    // The same canonical encoding: order-free maps hold for BLAKE3 too.
    let a: HashMap<u8, u8> = (0..50).map(|i| (i, i)).collect();
    let b: BTreeMap<u8, u8> = (0..50).map(|i| (i, i)).collect();
    assert_eq!(
        hash_with(Algorithm::Blake3, &a).unwrap(),
        hash_with(Algorithm::Blake3, &b).unwrap()
    );
    // Pinned: BLAKE3 digests are as stable as XXH3 ones.
    assert_eq!(
        hash_with(Algorithm::Blake3, &"hello").unwrap().to_hex(),
        "57740bc474368ead507efd6225b68c1ca1150325656191be08c6df79ad29b000"
    );
}
