//! Arbitrary bytes read as a Python joblib file: an error or a value, never
//! a panic, a hang, a stack overflow or an allocation the input does not
//! justify. Values are also outlined and deserialized into a few types, to
//! reach the serde layer, by the owning path of `load_from_reader` too; and
//! for a quarter of the inputs, the bytes are written to a file and loaded
//! by `load_mmap` (arrays left in the mapping). Good seeds:
//! crates/joblib-persist/tests/fixtures/python/.
#![no_main]

use std::collections::BTreeMap;

use joblib_persist::ndarray::{Array2, ArrayD, IxDyn};
use joblib_persist::{MmapArray, MmapMode, PyLoadOptions, from_py_value};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

#[derive(Deserialize)]
#[allow(dead_code)]
enum Value {
    Unit,
    Num(f64),
    Int(i64),
    Text(String),
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    List(Vec<Value>),
    Floats(Vec<f64>),
    Map(BTreeMap<String, Value>),
    Maybe(Option<Box<Value>>),
}

fuzz_target!(|data: &[u8]| {
    // Small caps, so that a run explores instead of filling memory.
    let opts = PyLoadOptions::new()
        .opaque_objects(data.first().is_some_and(|b| b & 1 == 1))
        .max_decompressed_bytes(64 << 20)
        .max_objects(1 << 20)
        .max_expanded_values(1 << 16);
    let Ok(value) = opts.load_value_from_reader(data) else {
        return;
    };
    let _ = value.outline();
    let _ = from_py_value::<Value>(&value);
    let _ = from_py_value::<BTreeMap<String, Array2<f64>>>(&value);
    let _ = from_py_value::<Vec<ArrayD<i64>>>(&value);
    let _ = from_py_value::<(String, Vec<u8>, Option<f32>)>(&value);
    let _ = opts.load_from_reader::<BTreeMap<String, Array2<f64>>>(data);
    if data.first().is_some_and(|b| b & 6 == 6) {
        let path =
            std::env::temp_dir().join(format!("load_python_fuzz_{}.pkl", std::process::id()));
        if std::fs::write(&path, data).is_ok() {
            let _ = opts
                .load_mmap::<BTreeMap<String, MmapArray<f64, IxDyn>>>(&path, MmapMode::ReadOnly);
            let _ = opts.load_mmap::<Vec<ArrayD<i64>>>(&path, MmapMode::CopyOnWrite);
        }
    }
});
