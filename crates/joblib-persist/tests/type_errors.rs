//! Loading as the wrong type: element types are never converted, and the
//! error names the field's path in the requested type and what the file
//! holds there, in the user's terms rather than ndarray's.

use joblib_persist::{Error, dump, load};
use ndarray::{Array1, Array2, Array3};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct Stored {
    name: String,
    weights: Array2<f32>,
}

#[derive(Deserialize, Debug)]
struct Wanted {
    #[allow(dead_code)]
    name: String,
    #[allow(dead_code)]
    weights: Array2<f64>,
}

fn dumped<T: Serialize>(value: &T) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.jbl");
    dump(value, &path).unwrap();
    (dir, path)
}

fn parts(err: Error) -> (String, Option<String>, String) {
    match err {
        Error::Deserialize {
            field,
            found,
            message,
            ..
        } => (field, found, message),
        other => panic!("not a type mismatch: {other}"),
    }
}

#[test]
fn an_f32_array_is_not_widened_to_f64() {
    let stored = Stored {
        name: "m".into(),
        weights: Array2::from_shape_fn((40, 7), |(i, j)| (i * j) as f32),
    };
    let (_dir, path) = dumped(&stored);
    let err = load::<Wanted>(&path).unwrap_err();
    let text = err.to_string();
    let (field, found, message) = parts(err);
    assert_eq!(field, "weights", "{text}");
    assert_eq!(
        found.as_deref(),
        Some("an array of shape [40, 7] with f32 elements"),
        "{text}"
    );
    assert!(message.contains("f32") && message.contains("f64"), "{text}");
    assert!(!text.contains("`v`") && !text.contains("`dim`"), "{text}");

    // Below the block threshold the elements are stored inline: the same.
    let small = Stored {
        name: "s".into(),
        weights: Array2::from_elem((2, 2), 0.5),
    };
    let (_dir, path) = dumped(&small);
    let (field, found, _) = parts(load::<Wanted>(&path).unwrap_err());
    assert_eq!(field, "weights");
    assert_eq!(
        found.as_deref(),
        Some("an array of shape [2, 2] with f32 elements")
    );

    // Vectors too, and integers of another width.
    let (_dir, path) = dumped(&vec![1u16; 5000]);
    let err = load::<Vec<u32>>(&path).unwrap_err().to_string();
    assert!(
        err.contains("u16 elements cannot be loaded as u32"),
        "{err}"
    );
    assert!(err.contains("a sequence of 5000 u16 elements"), "{err}");
    let (_dir, path) = dumped(&vec![1.5f64; 5000]);
    assert!(load::<Vec<f32>>(&path).is_err());
}

#[test]
fn a_struct_where_an_array_is_expected_is_described_not_ndarrays_fields() {
    #[derive(Serialize)]
    struct Meta {
        meta: String,
        values: Vec<u8>,
    }
    #[derive(Serialize)]
    struct Outer {
        model: Meta,
    }
    #[derive(Deserialize, Debug)]
    struct WantOuter {
        #[allow(dead_code)]
        model: Array1<f64>,
    }
    let (_dir, path) = dumped(&Outer {
        model: Meta {
            meta: "x".into(),
            values: vec![1, 2],
        },
    });
    let err = load::<WantOuter>(&path).unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("expected one of"), "{text}");
    let (field, found, message) = parts(err);
    assert_eq!(field, "model");
    assert_eq!(
        found.as_deref(),
        Some("a struct or map with fields `meta`, `values`")
    );
    assert!(message.contains("ndarray array"), "{message}");
}

#[test]
fn paths_go_through_sequences_maps_and_variants() {
    #[derive(Serialize)]
    enum Layer {
        Dense { w: Array2<f64> },
    }
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    enum WantLayer {
        Dense { w: Array3<f64> },
    }
    let layers = vec![
        Layer::Dense {
            w: Array2::zeros((2, 3)),
        },
        Layer::Dense {
            w: Array2::zeros((4, 5)),
        },
    ];
    let (_dir, path) = dumped(&layers);
    let (field, found, _) = parts(load::<Vec<WantLayer>>(&path).unwrap_err());
    assert_eq!(field, "[0].Dense.w");
    assert_eq!(
        found.as_deref(),
        Some("an array of shape [2, 3] with f64 elements")
    );

    // A plain mismatch at a leaf.
    #[derive(Serialize)]
    struct A {
        n: String,
    }
    #[derive(Deserialize, Debug)]
    struct B {
        #[allow(dead_code)]
        n: u32,
    }
    let (_dir, path) = dumped(&A { n: "x".into() });
    let err = load::<B>(&path).unwrap_err().to_string();
    assert!(
        err.contains("field `n`") && err.contains("a string"),
        "{err}"
    );
}

#[cfg(feature = "ndarray")]
#[test]
fn load_mmap_of_the_wrong_element_type_says_what_the_file_holds() {
    use joblib_persist::{MmapArray, MmapMode, load_mmap};
    use ndarray::Ix2;
    let (_dir, path) = dumped(&Array2::<f64>::zeros((100, 10)));
    let err = load_mmap::<MmapArray<i64, Ix2>>(&path, MmapMode::ReadOnly).unwrap_err();
    let text = err.to_string();
    let (field, found, message) = parts(err);
    assert_eq!(field, "");
    assert_eq!(
        found.as_deref(),
        Some("an array of shape [100, 10] with f64 elements")
    );
    assert!(
        message.contains("f64 elements cannot be mapped as i64"),
        "{text}"
    );
}
