//! What the tests of Python joblib files share: where the fixtures are.

#![allow(unreachable_pub)]

use std::path::PathBuf;

/// The path of a committed fixture file made by Python joblib (see
/// tests/fixtures/python/ for the script that made them).
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/python")
        .join(name)
}
