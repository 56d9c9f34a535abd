//! Golden tests: files written by Python's joblib (1.1 with numpy 1.x, 1.6
//! with numpy 2.x), loaded into typed Rust values. The files and the script
//! that made them are in tests/fixtures/python/.
#![cfg(feature = "python")]

use std::path::PathBuf;

use joblib_persist::{PyValue, load_python_value};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/python")
        .join(name)
}

#[test]
fn every_fixture_loads() {
    let dir = fixture("");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".pkl") && !n.contains("ridge"))
        .collect();
    names.sort();
    let mut failed = Vec::new();
    for n in &names {
        match load_python_value(fixture(n)) {
            Ok(v) => assert!(matches!(v, PyValue::Dict(_)), "{n}: {v:?}"),
            Err(e) => failed.push(format!("{n}: {e}")),
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}
