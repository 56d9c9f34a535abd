//! Cross-crate integration tests for joblib live in `tests/tests/`; this
//! library is empty so the package can hold them.
