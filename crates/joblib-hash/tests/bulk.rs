//! The bulk paths (a `Vec` or slice of primitives a chunk at a time, an
//! ndarray array straight from its memory) give exactly the digests of the
//! element-by-element path they replace.
//!
//! The element-by-element path is reached through two wrappers the bulk
//! paths do not recognise: [`ElementWise`] hands a slice's elements over one
//! `serialize_element` at a time, and [`Opaque`] hides an array's type so
//! that ndarray's own `Serialize` runs.

use std::collections::BTreeMap;
use std::fmt::Debug;

use joblib_hash::{Digest, Hasher, hash};
use ndarray::{
    ArcArray, Array, Array0, Array1, Array2, Array3, ArrayD, ArrayView1, CowArray, Dimension, Ix4,
    Ix5, Ix6, IxDyn, ShapeBuilder, s,
};
use proptest::prelude::*;
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

fn h<T: Serialize + ?Sized>(v: &T) -> Digest {
    hash(v).unwrap()
}

/// A slice serialized one element at a time, as a hand-written impl or
/// ndarray does.
struct ElementWise<'a, T>(&'a [T]);

impl<T: Serialize> Serialize for ElementWise<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for x in self.0 {
            seq.serialize_element(x)?;
        }
        seq.end()
    }
}

/// A value whose type the bulk paths cannot see: it serializes as the
/// value itself.
struct Opaque<'a, T>(&'a T);

impl<T: Serialize> Serialize for Opaque<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

fn same_as_element_wise<T: Serialize + Clone + Debug>(v: &[T]) {
    assert_eq!(h(v), h(&ElementWise(v)), "{v:?}");
    assert_eq!(h(&v.to_vec()), h(&ElementWise(v)), "{v:?}");
}

/// Lengths around the run chunk (1024 elements) and the sink's buffer.
const LENGTHS: [usize; 9] = [0, 1, 2, 1023, 1024, 1025, 2048, 4097, 70_000];

#[test]
fn vectors_of_every_primitive_match_the_element_path() {
    for n in LENGTHS {
        same_as_element_wise(&(0..n).map(|i| i as f64 * 0.5 - 7.0).collect::<Vec<_>>());
        same_as_element_wise(&(0..n).map(|i| i as f32 / 3.0).collect::<Vec<_>>());
        same_as_element_wise(&(0..n).map(|i| i as i64 - 500).collect::<Vec<_>>());
        same_as_element_wise(&(0..n).map(|i| i as u64 * 7).collect::<Vec<_>>());
        same_as_element_wise(&(0..n).map(|i| i as i32 - 3).collect::<Vec<_>>());
        same_as_element_wise(&(0..n).map(|i| i as u32).collect::<Vec<_>>());
        same_as_element_wise(&(0..n).map(|i| i as i16).collect::<Vec<_>>());
        same_as_element_wise(&(0..n).map(|i| i as u16).collect::<Vec<_>>());
        same_as_element_wise(&(0..n).map(|i| i as i8).collect::<Vec<_>>());
        same_as_element_wise(&(0..n).map(|i| i as u8).collect::<Vec<_>>());
        same_as_element_wise(&(0..n).map(|i| i as i128 - 9).collect::<Vec<_>>());
        same_as_element_wise(&(0..n).map(|i| i as u128 * 3).collect::<Vec<_>>());
        same_as_element_wise(&(0..n).collect::<Vec<usize>>());
        same_as_element_wise(&(0..n).map(|i| i as isize - 2).collect::<Vec<_>>());
        same_as_element_wise(&(0..n).map(|i| i % 3 == 0).collect::<Vec<_>>());
        let chars: Vec<char> = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        same_as_element_wise(&chars);
    }
}

#[test]
fn bulk_sequences_keep_nan_canonical_and_zero_signs_apart() {
    let quiet = f64::NAN;
    let other = f64::from_bits(0xfff4_0000_dead_beef);
    let a: Vec<f64> = (0..3000)
        .map(|i| if i % 7 == 0 { quiet } else { i as f64 })
        .collect();
    let b: Vec<f64> = (0..3000)
        .map(|i| if i % 7 == 0 { other } else { i as f64 })
        .collect();
    assert_eq!(h(&a), h(&b));
    assert_eq!(h(&a), h(&ElementWise(&b)));
    let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
    let b32: Vec<f32> = b.iter().map(|&x| x as f32).collect();
    assert_eq!(h(&a32), h(&ElementWise(&b32)));
    assert_ne!(h(&vec![0.0f64; 2000]), h(&vec![-0.0f64; 2000]));
}

#[test]
fn bulk_sequences_inside_other_values_match() {
    let xs: Vec<f64> = (0..5000).map(|i| i as f64).collect();
    let map: BTreeMap<&str, Vec<f64>> = [("a", xs.clone()), ("b", xs[..10].to_vec())].into();
    let elementwise: BTreeMap<&str, ElementWise<'_, f64>> =
        [("a", ElementWise(&xs[..])), ("b", ElementWise(&xs[..10]))].into();
    assert_eq!(h(&map), h(&elementwise));
    assert_eq!(
        h(&(1u8, &xs, Some(&xs), vec![xs.clone(), vec![]])),
        h(&(
            1u8,
            ElementWise(&xs),
            Some(ElementWise(&xs)),
            vec![ElementWise(&xs), ElementWise(&[])]
        ))
    );
    // A set stays a set: its order does not matter, bulk or not.
    let set: std::collections::HashSet<u64> = (0..3000).collect();
    let ordered: std::collections::BTreeSet<u64> = (0..3000).collect();
    assert_eq!(h(&set), h(&ordered));
    assert_ne!(h(&ordered), h(&(0..3000u64).collect::<Vec<_>>()));
}

/// Asserts that `array` hashes as ndarray's own `Serialize` makes it hash,
/// by value, by reference, as a view, and inside a tuple, an `Option` and a
/// struct field.
fn same_as_serialize<A, D>(array: &Array<A, D>)
where
    A: Serialize + Clone + Debug,
    D: Dimension + Serialize,
{
    let slow = h(&Opaque(array));
    assert_eq!(h(array), slow, "{array:?}");
    assert_eq!(h(&array), slow);
    assert_eq!(h(&array.view()), slow);
    assert_eq!(h(&array.to_shared()), slow);
    assert_eq!(h(&CowArray::from(array.view())), slow);
    assert_eq!(h(&(7u8, array)), h(&(7u8, Opaque(array))));
    assert_eq!(h(&Some(array)), h(&Some(Opaque(array))));
    #[derive(Serialize)]
    struct Fields<T> {
        name: &'static str,
        weights: T,
    }
    assert_eq!(
        h(&Fields {
            name: "w",
            weights: array
        }),
        h(&Fields {
            name: "w",
            weights: Opaque(array)
        })
    );
}

#[test]
fn arrays_of_every_dimension_and_element_match_serialize() {
    same_as_serialize(&Array0::from_elem((), 2.5f64));
    same_as_serialize(&Array1::from_iter((0..3000).map(|i| i as f64 / 7.0)));
    same_as_serialize(&Array2::from_shape_fn((40, 70), |(i, j)| (i * j) as f32));
    same_as_serialize(&Array3::from_shape_fn((5, 6, 7), |(i, j, k)| {
        (i + j + k) as i64
    }));
    same_as_serialize(&Array::from_shape_fn(Ix4(2, 3, 4, 5), |(a, b, c, d)| {
        (a * b * c * d) as u8
    }));
    same_as_serialize(&Array::<u16, _>::zeros(Ix5(1, 2, 3, 4, 5)));
    same_as_serialize(&Array::<i8, _>::ones(Ix6(1, 2, 1, 2, 1, 2)));
    same_as_serialize(&ArrayD::from_shape_fn(IxDyn(&[3, 4, 5]), |ix| ix[0] as u32));
    same_as_serialize(&Array1::from_iter(0..2000usize));
    same_as_serialize(&Array1::from_iter(-1000..1000isize));
    same_as_serialize(&Array1::from_iter(0..2000i32));
    same_as_serialize(&Array1::from_iter((0..2000).map(|i| i as u64)));
    same_as_serialize(&Array1::from_iter((0..2000).map(|i| i as i16)));
    same_as_serialize(&Array2::from_shape_fn((30, 30), |(i, j)| i < j));
    same_as_serialize(&Array2::<f64>::zeros((0, 5)));
    same_as_serialize(&Array1::from(vec![f64::NAN, -0.0, 0.0, f64::INFINITY]));
    // Element types outside the bulk list still hash as `Serialize` says.
    same_as_serialize(&Array1::from(vec![1i128, -2]));
    same_as_serialize(&Array1::from(vec!["a".to_string(), "b".to_string()]));
}

#[test]
fn arrays_in_any_memory_order_match_serialize_and_their_copies() {
    let a = Array2::from_shape_fn((33, 47), |(i, j)| (i * 100 + j) as f64);
    let mut fortran = Array2::<f64>::zeros((33, 47).f());
    fortran.assign(&a);
    let row = a.row(3).insert_axis(ndarray::Axis(0));
    let views = [
        a.t(),
        a.slice(s![..;2, 3..;5]),
        a.slice(s![..;-1, ..]),
        a.slice(s![4..9, ..]),
        fortran.view(),
        row.broadcast((6, 47)).unwrap(),
    ];
    for v in views {
        assert_eq!(h(&v), h(&Opaque(&v)), "{v:?}");
        assert_eq!(h(&v), h(&v.to_owned()));
        assert_eq!(h(&v), h(&v.as_standard_layout()));
    }
    assert_eq!(h(&fortran), h(&a));
    let column: ArrayView1<'_, f64> = a.column(5);
    assert_eq!(h(&column), h(&column.to_owned()));
    assert_eq!(h(&column), h(&Opaque(&column)));
}

#[test]
fn arrays_inside_collections_and_hashers_match_serialize() {
    let arrays: Vec<Array1<f64>> = (0..50)
        .map(|n| Array1::from_iter((0..n * 40).map(|i| i as f64)))
        .collect();
    let opaque: Vec<Opaque<'_, Array1<f64>>> = arrays.iter().map(Opaque).collect();
    assert_eq!(h(&arrays), h(&opaque));
    let shared: Vec<ArcArray<f64, ndarray::Ix1>> = arrays.iter().map(|a| a.to_shared()).collect();
    assert_eq!(h(&shared), h(&opaque));
    let map: BTreeMap<u32, &Array1<f64>> = arrays
        .iter()
        .enumerate()
        .map(|(i, a)| (i as u32, a))
        .collect();
    let opaque_map: BTreeMap<u32, Opaque<'_, Array1<f64>>> = arrays
        .iter()
        .enumerate()
        .map(|(i, a)| (i as u32, Opaque(a)))
        .collect();
    assert_eq!(h(&map), h(&opaque_map));

    let mut bulk = Hasher::new();
    bulk.update(&arrays[10])
        .unwrap()
        .update("x")
        .unwrap()
        .update(&arrays[20])
        .unwrap();
    let mut slow = Hasher::new();
    slow.update(&Opaque(&arrays[10]))
        .unwrap()
        .update("x")
        .unwrap();
    slow.update(&Opaque(&arrays[20])).unwrap();
    assert_eq!(bulk.finish().unwrap(), slow.finish().unwrap());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_float_vectors_match_the_element_path(
        bits in prop::collection::vec(any::<u64>(), 0..3000)
    ) {
        let xs: Vec<f64> = bits.iter().map(|&b| f64::from_bits(b)).collect();
        prop_assert_eq!(h(&xs), h(&ElementWise(&xs)));
        let array = Array1::from(xs.clone());
        prop_assert_eq!(h(&array), h(&Opaque(&array)));
        let narrow: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b as u32)).collect();
        prop_assert_eq!(h(&narrow), h(&ElementWise(&narrow)));
    }

    #[test]
    fn random_array_shapes_match_serialize(
        rows in 0usize..40, cols in 0usize..90, step in 1usize..4, flip in any::<bool>()
    ) {
        let a = Array2::from_shape_fn((rows, cols), |(i, j)| (i * 1000 + j) as i32);
        let v = if flip { a.slice(s![..;-(step as isize), ..]) } else { a.slice(s![.., ..;step]) };
        prop_assert_eq!(h(&v), h(&Opaque(&v)));
        prop_assert_eq!(h(&v), h(&v.to_owned()));
    }
}
