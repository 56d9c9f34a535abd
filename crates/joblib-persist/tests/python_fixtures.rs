//! Golden tests: files written by Python's joblib (1.1 with numpy 1.26, 1.6
//! with numpy 2.4), loaded into typed Rust values. The files and the script
//! that made them are in tests/fixtures/python/.
#![cfg(feature = "python")]

mod python_common;

use std::collections::{BTreeSet, HashMap};

use joblib_persist::ndarray::{Array0, Array1, Array2, Array3, array};
use joblib_persist::{ArrayData, Error, PyLoadOptions, PyValue, load_python, load_python_value};
use serde::Deserialize;
use serde_bytes::ByteBuf;

use python_common::fixture;

#[derive(Deserialize, Debug)]
struct Mixed {
    f64_2d: Array2<f64>,
    i32_f: Array2<i32>,
    f32: Array1<f32>,
    name: String,
    n: u8,
    big: i128,
    neg: i32,
    x: f64,
    flag: bool,
    none: Option<i32>,
    b: ByteBuf,
    c: (f64, f64),
    t: (i64, (i64, i64)),
    l: (i64, HashMap<String, (f64, String)>),
    s: BTreeSet<i64>,
}

fn check_mixed(m: &Mixed) {
    assert_eq!(
        m.f64_2d,
        Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64)
    );
    assert_eq!(m.i32_f, array![[0, 1, 2], [3, 4, 5]]);
    assert_eq!(m.f32, array![0.0f32, 1.0, 2.0, 3.0, 4.0]);
    assert_eq!(m.name, "ridge");
    assert_eq!(m.n, 3);
    assert_eq!(m.big, 1i128 << 70);
    assert_eq!(m.neg, -3);
    assert_eq!(m.x, 2.5);
    assert!(m.flag);
    assert_eq!(m.none, None);
    assert_eq!(m.b.as_slice(), b"by");
    assert_eq!(m.c, (1.0, 2.0));
    assert_eq!(m.t, (1, (2, 3)));
    assert_eq!(m.l.0, 1);
    assert_eq!(m.l.1["y"], (4.0, "z".to_string()));
    assert_eq!(m.s, BTreeSet::from([1, 2]));
}

/// Every protocol, every compressor (whose feature is on), a non-seekable
/// target, both joblib versions: the same value.
#[test]
fn mixed_values_in_every_variant() {
    let mut seen = Vec::new();
    for v in ["v11", "v16"] {
        let mut variants: Vec<&str> = vec!["p0", "p1", "p2", "p3", "p4", "p5", "nonseekable"];
        if cfg!(feature = "zlib") {
            variants.extend(["zlib", "gzip"]);
        }
        if cfg!(feature = "bz2") {
            variants.push("bz2");
        }
        if cfg!(feature = "xz") {
            variants.extend(["xz", "lzma"]);
        }
        // joblib 1.1's fixtures were made without the lz4 Python package.
        if cfg!(feature = "lz4") && v == "v16" {
            variants.push("lz4");
        }
        for var in variants {
            let name = format!("{v}_mixed_{var}.pkl");
            let m: Mixed = load_python(fixture(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            check_mixed(&m);
            seen.push(name);
        }
    }
    assert!(seen.len() >= 14, "{seen:?}");
}

#[derive(Deserialize, Debug)]
struct Dtypes {
    b1: Vec<bool>,
    i1: Vec<i8>,
    i2: Vec<i16>,
    i4: Vec<i32>,
    i8: Vec<i64>,
    u1: Vec<u8>,
    u2: Vec<u16>,
    u4: Vec<u32>,
    u8: Vec<u64>,
    f4: Vec<f32>,
    f8: Vec<f64>,
    c8: Vec<[f32; 2]>,
    c16: Array1<[f64; 2]>,
    #[serde(rename = "U3")]
    u3: Vec<String>,
    #[serde(rename = "S3")]
    s3: Vec<ByteBuf>,
    be_f8: Vec<f64>,
    be_i4: Array1<i32>,
    dates: Vec<i64>,
    zerod: Array0<i64>,
    empty: Array2<f64>,
    f3d: Array3<f64>,
    strided: Vec<f64>,
}

#[test]
fn every_dtype_byte_order_and_layout() {
    for name in [
        "v16_dtypes.pkl",
        "v16_dtypes_p2.pkl",
        "v11_dtypes.pkl",
        "v11_dtypes_p2.pkl",
    ] {
        let d: Dtypes = load_python(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.b1, [true, false, true]);
        assert_eq!(d.i1, [-1, 2]);
        assert_eq!(d.i2, [-300, 2]);
        assert_eq!(d.i4, [-70000, 2]);
        assert_eq!(d.i8, [-(1 << 40), 2]);
        assert_eq!(d.u1, [255, 1]);
        assert_eq!(d.u2, [65535, 1]);
        assert_eq!(d.u4, [u32::MAX, 1]);
        assert_eq!(d.u8, [u64::MAX, 1]);
        assert_eq!(d.f4, [1.5, -2.25]);
        assert_eq!(d.f8, [1.5, -2.25]);
        assert_eq!(d.c8, [[1.0, 2.0], [-0.0, -3.5]]);
        assert_eq!(d.c16, Array1::from(vec![[1.0, 2.0], [-0.0, -3.5]]));
        assert_eq!(d.u3, ["ab", "é€x", ""]);
        assert_eq!(
            d.s3,
            [
                ByteBuf::from(b"ab".to_vec()),
                ByteBuf::from(b"xyz".to_vec()),
                ByteBuf::new()
            ]
        );
        assert_eq!(d.be_f8, [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(d.be_i4, array![0, 1, 2]);
        assert_eq!(d.dates, [19724, 0]);
        assert_eq!(d.zerod.into_scalar(), 5);
        assert_eq!(d.empty.shape(), [0, 3]);
        assert_eq!(
            d.f3d,
            Array3::from_shape_fn((2, 3, 4), |(i, j, k)| (i * 12 + j * 4 + k) as f64)
        );
        assert_eq!(d.strided, [0.0, 3.0, 6.0, 9.0]);
    }
    let v = load_python_value(fixture("v16_dtypes.pkl")).unwrap();
    let PyValue::Array(dates) = v.get("dates").unwrap() else {
        panic!("dates")
    };
    assert_eq!(dates.dtype.descr(), "<M8[D]");
    let PyValue::Array(be) = v.get("be_f8").unwrap() else {
        panic!("be_f8")
    };
    assert_eq!(be.dtype.descr(), ">f8");
}

#[test]
fn object_arrays_and_numpy_scalars() {
    for name in [
        "v16_objects.pkl",
        "v16_objects_p2.pkl",
        "v11_objects.pkl",
        "v11_objects_p2.pkl",
    ] {
        let v = load_python_value(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let Some(PyValue::Array(obj)) = v.get("obj") else {
            panic!("{name}: obj")
        };
        assert_eq!(obj.shape, [4]);
        assert_eq!(
            obj.data,
            ArrayData::Object(vec![
                PyValue::Int(1),
                PyValue::Str("a".into()),
                PyValue::None,
                PyValue::List(vec![PyValue::Int(1), PyValue::Int(2)]),
            ])
        );
        #[derive(Deserialize)]
        struct Objects {
            ragged: (Array1<i64>, Array1<f64>),
            f64_scalar: f64,
            i32_scalar: i32,
        }
        let o: Objects = load_python(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(o.ragged.0, array![0, 1, 2]);
        assert_eq!(o.ragged.1, array![0.0, 1.0]);
        assert_eq!(o.f64_scalar, 3.5);
        assert_eq!(o.i32_scalar, 7);
    }
}

#[test]
fn shared_references_load_as_equal_values() {
    #[derive(Deserialize)]
    struct Shared {
        pair: Vec<Vec<i64>>,
        deep: Vec<Vec<Vec<i64>>>,
    }
    for name in ["v16_shared.pkl", "v11_shared.pkl"] {
        let s: Shared = load_python(fixture(name)).unwrap();
        assert_eq!(s.pair, [[1], [1]]);
        assert_eq!(s.deep, [[[1], [1]], [[1], [1]]]);
    }
}

#[test]
fn unknown_classes_are_refused_or_recorded_inert() {
    for name in ["v16_ridge.pkl", "v11_ridge.pkl"] {
        let err = load_python_value(fixture(name)).unwrap_err();
        match &err {
            Error::PythonGlobal { global, .. } => {
                assert_eq!(global, "sklearn.linear_model._ridge.Ridge")
            }
            e => panic!("{name}: {e}"),
        }
        let opts = PyLoadOptions::new().opaque_objects(true);
        let v = opts.load_value(fixture(name)).unwrap();
        let PyValue::Object {
            module,
            name: class,
            state,
            ..
        } = &v
        else {
            panic!("{v:?}")
        };
        assert_eq!(
            (module.as_str(), class.as_str()),
            ("sklearn.linear_model._ridge", "Ridge")
        );
        assert_eq!(
            state.as_deref().and_then(|s| s.get("alpha")),
            Some(&PyValue::Float(1.0))
        );

        #[derive(Deserialize)]
        struct Ridge {
            alpha: f64,
            coef_: Array1<f64>,
        }
        #[derive(Deserialize)]
        struct Model {
            name: String,
            state: Ridge,
        }
        let m: Model = opts.load(fixture(name)).unwrap();
        assert_eq!(m.name, "Ridge");
        assert_eq!(m.state.alpha, 1.0);
        assert_eq!(m.state.coef_, array![0.5, -1.0]);
    }
}

/// A dtype or shape the Rust type cannot hold is an error naming the field
/// path, both types and the shape; nothing is converted.
#[test]
fn type_mismatches_name_the_field_and_both_types() {
    #[derive(Deserialize, Debug)]
    struct Narrow {
        #[allow(dead_code)]
        f64_2d: Array2<f32>,
    }
    let err = load_python::<Narrow>(fixture("v16_mixed_p4.pkl")).unwrap_err();
    let Error::Deserialize {
        field,
        found,
        message,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(field, "f64_2d");
    assert!(
        message.contains("<f8") && message.contains("f32"),
        "{message}"
    );
    assert!(found.as_deref().unwrap().contains("[3, 4]"), "{found:?}");

    #[derive(Deserialize, Debug)]
    struct Deep {
        #[allow(dead_code)]
        l: (i64, HashMap<String, (f32, String)>),
    }
    let err = load_python::<Deep>(fixture("v16_mixed_p4.pkl")).unwrap_err();
    let Error::Deserialize { field, message, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(field, "l[1].y[0]");
    assert!(
        message.contains("f32") && message.contains("f64"),
        "{message}"
    );

    #[derive(Deserialize, Debug)]
    struct Dims {
        #[allow(dead_code)]
        f64_2d: Array3<f64>,
    }
    let err = load_python::<Dims>(fixture("v16_mixed_p4.pkl")).unwrap_err();
    let Error::Deserialize { field, found, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(field, "f64_2d");
    assert!(found.as_deref().unwrap().contains("[3, 4]"), "{found:?}");

    #[derive(Deserialize, Debug)]
    struct Small {
        #[allow(dead_code)]
        big: i64,
    }
    let err = load_python::<Small>(fixture("v16_mixed_p4.pkl")).unwrap_err();
    assert!(err.to_string().contains("`big`"), "{err}");

    #[derive(Deserialize, Debug)]
    struct Scalar {
        #[allow(dead_code)]
        i32_scalar: i64,
    }
    let err = load_python::<Scalar>(fixture("v16_objects.pkl")).unwrap_err();
    assert!(err.to_string().contains("i32_scalar"), "{err}");
}

/// Cross-check against Python's own joblib.load, when it is installed.
#[test]
fn python_joblib_agrees_when_installed() {
    let script = "import joblib,sys; v=joblib.load(sys.argv[1]); print(float(v['f64_2d'].sum()), v['name'], v['big'])";
    let Ok(out) = std::process::Command::new("python3")
        .args(["-c", script, fixture("v16_mixed_p4.pkl").to_str().unwrap()])
        .output()
    else {
        return;
    };
    if !out.status.success() {
        // No joblib or numpy on this machine: the golden values above stand.
        return;
    }
    let text = String::from_utf8(out.stdout).unwrap();
    let m: Mixed = load_python(fixture("v16_mixed_p4.pkl")).unwrap();
    assert_eq!(
        text.trim(),
        format!("{:.1} {} {}", m.f64_2d.sum(), m.name, m.big)
    );
}
