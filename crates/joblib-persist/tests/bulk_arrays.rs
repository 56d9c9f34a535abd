//! ndarray arrays are written in bulk (straight from their memory), and the
//! file is the same to the byte as the one ndarray's own `Serialize`
//! produces element by element: here through `Elementwise`, a wrapper the
//! bulk path does not recognise, whose `Serialize` does what ndarray's does.

use std::collections::BTreeMap;

#[cfg(feature = "lz4")]
use joblib_persist::Compression;
use joblib_persist::{DumpOptions, load_from_reader};
use ndarray::{
    Array, Array1, Array2, Array3, ArrayD, ArrayView, Axis, Dimension, IxDyn, ShapeBuilder, s,
};
use proptest::prelude::*;
use serde::ser::{SerializeSeq, SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

/// An array serialized as ndarray serializes it, one element at a time.
struct Elementwise<'a, A, D: Dimension>(ArrayView<'a, A, D>);

struct Elements<'a, A, D: Dimension>(&'a ArrayView<'a, A, D>);

impl<A: Serialize, D: Dimension + Serialize> Serialize for Elementwise<'_, A, D> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut fields = s.serialize_struct("Array", 3)?;
        fields.serialize_field("v", &1u8)?;
        fields.serialize_field("dim", &self.0.raw_dim())?;
        fields.serialize_field("data", &Elements(&self.0))?;
        fields.end()
    }
}

impl<A: Serialize, D: Dimension> Serialize for Elements<'_, A, D> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for x in self.0.iter() {
            seq.serialize_element(x)?;
        }
        seq.end()
    }
}

fn options(min_block: usize, chunk: usize) -> DumpOptions {
    DumpOptions::new()
        .min_block_size(min_block)
        .chunk_size(chunk)
}

fn bytes<T: Serialize + ?Sized>(value: &T, opts: DumpOptions) -> Vec<u8> {
    opts.dump_to_writer(value, Vec::new()).unwrap()
}

/// Dumps `fast` and `slow` with the same options and asserts equal files.
fn same_file<T: Serialize + ?Sized, U: Serialize + ?Sized>(fast: &T, slow: &U, opts: DumpOptions) {
    let a = bytes(fast, opts.clone());
    let b = bytes(slow, opts);
    assert!(a == b, "the bulk and element paths wrote different files");
}

/// The bulk path's file equals the element path's, and loads back.
fn check<A, D>(array: ArrayView<'_, A, D>, opts: DumpOptions)
where
    A: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug + Clone,
    D: Dimension + Serialize + serde::de::DeserializeOwned,
{
    let file = bytes(&array, opts.clone());
    assert_eq!(file, bytes(&Elementwise(array.view()), opts.clone()));
    assert_eq!(file, bytes(&array.to_owned(), opts.clone()));
    assert_eq!(file, bytes(&array.to_shared(), opts));
    let back: Array<A, D> = load_from_reader(&file[..]).unwrap();
    assert_eq!(back, array);
}

#[test]
fn every_element_type_writes_the_same_bytes() {
    let opts = || options(256, 4096);
    let n = 3000;
    check(Array1::from_shape_fn(n, |i| i as f64 * 0.5).view(), opts());
    check(Array1::from_shape_fn(n, |i| i as f32 - 7.0).view(), opts());
    check(Array1::from_shape_fn(n, |i| i as i64 - 99).view(), opts());
    check(
        Array1::from_shape_fn(n, |i| (i as u64) << 40).view(),
        opts(),
    );
    check(Array1::from_shape_fn(n, |i| -(i as i32)).view(), opts());
    check(Array1::from_shape_fn(n, |i| i as u32 * 3).view(), opts());
    check(Array1::from_shape_fn(n, |i| i as i16 - 1500).view(), opts());
    check(Array1::from_shape_fn(n, |i| i as u16).view(), opts());
    check(
        Array1::from_shape_fn(n, |i| (i % 256) as u8 as i8).view(),
        opts(),
    );
    check(Array1::from_shape_fn(n, |i| (i % 256) as u8).view(), opts());
    check(Array1::from_shape_fn(n, |i| i * 11).view(), opts());
    check(Array1::from_shape_fn(n, |i| 5 - i as isize).view(), opts());
}

#[test]
fn every_dimension_writes_the_same_bytes() {
    let opts = || options(64, 4096);
    check(ndarray::arr0(2.5f64).view(), opts());
    check(
        Array2::from_shape_fn((40, 30), |(i, j)| (i * j) as f64).view(),
        opts(),
    );
    let a3 = Array3::from_shape_fn((5, 6, 7), |(i, j, k)| (i + j * k) as u16);
    check(a3.view(), opts());
    let a4 = Array::from_shape_fn((2, 3, 4, 5), |(a, b, c, d)| (a * b + c * d) as i32);
    check(a4.view(), opts());
    let a6 = Array::from_shape_fn((2, 2, 2, 2, 3, 3), |(a, b, c, d, e, f)| {
        (a + b + c + d + e + f) as f32
    });
    check(a6.view(), opts());
    let dynamic = ArrayD::from_shape_fn(IxDyn(&[3, 4, 5]), |i| i[0] as f64 - i[2] as f64);
    check(dynamic.view(), opts());
}

#[test]
fn empty_and_tiny_arrays_stay_as_the_element_path_leaves_them() {
    // Below `min_block`, elements are written inline in the structure.
    let opts = || options(256, 4096);
    check(Array1::<f64>::zeros(0).view(), opts());
    check(Array2::<u8>::zeros((0, 5)).view(), opts());
    check(Array1::from(vec![1.0f64, 2.0, 3.0]).view(), opts());
    check(Array1::from(vec![7u8; 255]).view(), opts());
    check(Array1::from(vec![7u8; 256]).view(), opts());
    check(Array1::from(vec![1.5f64; 31]).view(), opts());
    check(Array1::from(vec![1.5f64; 32]).view(), opts());
    check(Array1::from(vec![1.5f64; 33]).view(), opts());
    // `min_block` 0 and 1: every non-empty array goes out of line.
    check(Array1::from(vec![9i16]).view(), options(0, 4096));
    check(Array1::from(vec![9i16, 10]).view(), options(1, 4096));
}

#[test]
fn non_contiguous_arrays_are_written_in_logical_order() {
    let opts = || options(128, 4096);
    let a = Array2::from_shape_fn((60, 50), |(i, j)| (i * 50 + j) as f64);
    check(a.t(), opts());
    check(a.slice(s![.., 3..40]), opts());
    check(a.slice(s![..;2, ..;3]), opts());
    check(a.slice(s![..;-1, 5]), opts());
    check(a.slice(s![7, ..]), opts());
    let f = Array2::from_shape_vec((30, 40).f(), (0..1200u32).collect()).unwrap();
    check(f.view(), opts());
    let mut a3 = Array3::from_shape_fn((4, 50, 60), |(i, j, k)| (i * j + k) as i64);
    a3.swap_axes(0, 2);
    check(a3.view(), opts());
    check(a3.index_axis(Axis(1), 3), opts());
    // A strided array larger than the staging buffer (64 KiB).
    let big = Array2::from_shape_fn((300, 100), |(i, j)| (i + j) as f64);
    check(big.t(), options(256, 1 << 16));
}

#[test]
fn compression_and_chunking_do_not_change_the_equality() {
    let a = Array2::from_shape_fn((200, 300), |(i, j)| ((i * 300 + j) % 1000) as f64);
    for chunk in [4096, 8192, 1 << 20] {
        same_file(&a, &Elementwise(a.view()), options(256, chunk));
        same_file(&a.t(), &Elementwise(a.t()), options(256, chunk));
    }
    #[cfg(feature = "lz4")]
    {
        let lz4 = DumpOptions::new()
            .compress(Compression::Lz4)
            .chunk_size(8192);
        same_file(&a, &Elementwise(a.view()), lz4.clone());
        let back: Array2<f64> = load_from_reader(&bytes(&a, lz4)[..]).unwrap();
        assert_eq!(back, a);
    }
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Fields {
    name: String,
    weights: Array2<f64>,
    maybe: Option<Array1<f32>>,
    list: Vec<Array1<u16>>,
    by_name: BTreeMap<String, Array1<i64>>,
    pair: (Array1<u8>, f64),
    wrapped: Wrapped,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct Wrapped(Array1<i32>);

#[derive(Serialize)]
struct SlowFields<'a> {
    name: &'a str,
    weights: Elementwise<'a, f64, ndarray::Ix2>,
    maybe: Option<Elementwise<'a, f32, ndarray::Ix1>>,
    list: Vec<Elementwise<'a, u16, ndarray::Ix1>>,
    by_name: BTreeMap<String, Elementwise<'a, i64, ndarray::Ix1>>,
    pair: (Elementwise<'a, u8, ndarray::Ix1>, f64),
    wrapped: SlowWrapped<'a>,
}

#[derive(Serialize)]
struct SlowWrapped<'a>(Elementwise<'a, i32, ndarray::Ix1>);

#[test]
fn arrays_inside_other_values_write_the_same_bytes() {
    let fields = Fields {
        name: "model".into(),
        weights: Array2::from_shape_fn((20, 30), |(i, j)| (i * j) as f64),
        maybe: Some(Array1::from_shape_fn(100, |i| i as f32)),
        list: vec![
            Array1::from(vec![1, 2]),
            Array1::from_shape_fn(500, |i| i as u16),
            Array1::zeros(0),
        ],
        by_name: [("a".to_string(), Array1::from_shape_fn(90, |i| i as i64))].into(),
        pair: (Array1::from_shape_fn(1000, |i| i as u8), 2.5),
        wrapped: Wrapped(Array1::from_shape_fn(70, |i| i as i32)),
    };
    let slow = SlowFields {
        name: &fields.name,
        weights: Elementwise(fields.weights.view()),
        maybe: fields.maybe.as_ref().map(|m| Elementwise(m.view())),
        list: fields.list.iter().map(|a| Elementwise(a.view())).collect(),
        by_name: fields
            .by_name
            .iter()
            .map(|(k, v)| (k.clone(), Elementwise(v.view())))
            .collect(),
        pair: (Elementwise(fields.pair.0.view()), fields.pair.1),
        wrapped: SlowWrapped(Elementwise(fields.wrapped.0.view())),
    };
    let opts = options(64, 4096);
    same_file(&fields, &slow, opts.clone());
    let back: Fields = load_from_reader(&bytes(&fields, opts)[..]).unwrap();
    assert_eq!(back, fields);

    // An array between primitives of a sequence closes their run as the
    // element path does.
    #[derive(Serialize)]
    #[serde(untagged)]
    enum Item<'a> {
        Number(f64),
        Fast(&'a Array1<f64>),
        Slow(Elementwise<'a, f64, ndarray::Ix1>),
    }
    let a = Array1::from_shape_fn(50, |i| i as f64);
    let fast = [Item::Number(1.0), Item::Fast(&a), Item::Number(2.0)];
    let slow = [
        Item::Number(1.0),
        Item::Slow(Elementwise(a.view())),
        Item::Number(2.0),
    ];
    same_file(&fast[..], &slow[..], options(8, 4096));
    let tuple = (1.0f64, 2.0f64, &a, 3.0f64);
    let slow_tuple = (1.0f64, 2.0f64, Elementwise(a.view()), 3.0f64);
    same_file(&tuple, &slow_tuple, options(8, 4096));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random shapes, layouts, block thresholds and chunk sizes.
    #[test]
    fn random_arrays_write_the_same_bytes(
        rows in 0usize..80,
        cols in 0usize..80,
        transpose in any::<bool>(),
        step in 1usize..4,
        min_block in prop_oneof![Just(0usize), 1usize..600],
        chunk_pow in 12u32..15,
    ) {
        let a = Array2::from_shape_fn((rows, cols), |(i, j)| (i * 80 + j) as f64 - 0.5);
        let v = if transpose { a.t() } else { a.view() };
        let v = v.slice_move(s![..;step, ..]);
        let opts = options(min_block, 1 << chunk_pow);
        let file = bytes(&v, opts.clone());
        prop_assert_eq!(&file, &bytes(&Elementwise(v.view()), opts.clone()));
        let small = v.mapv(|x| x as i16);
        prop_assert_eq!(bytes(&small, opts.clone()), bytes(&Elementwise(small.view()), opts));
        let back: Array2<f64> = load_from_reader(&file[..]).unwrap();
        prop_assert_eq!(back, v);
    }
}

/// A dump into a `Write` hands whole chunks of uncompressed blocks to it
/// where they lie; a dump to a file copies them into chunk buffers for its
/// writer thread. Both write the same bytes.
#[test]
fn whole_chunks_written_in_place_make_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jbl");
    let a = Array2::from_shape_fn((300, 200), |(i, j)| (i * 200 + j) as f64);
    let text: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let value = (
        &a,
        serde_bytes::Bytes::new(&text),
        a.t(),
        Elementwise(a.view()),
    );
    for chunk in [4096, 8192, 1 << 20] {
        let opts = options(256, chunk);
        opts.dump(&value, &path).unwrap();
        let file = std::fs::read(&path).unwrap();
        assert!(file == bytes(&value, opts), "chunk size {chunk}");
        let back: (Array2<f64>, serde_bytes::ByteBuf, Array2<f64>, Array2<f64>) =
            load_from_reader(&file[..]).unwrap();
        assert_eq!(back.0, a);
        assert_eq!(back.1.as_slice(), &text[..]);
        assert_eq!(back.2, a.t());
        assert_eq!(back.3, a);
    }
}
