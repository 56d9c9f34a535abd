//! Criterion benchmarks for joblib live in `benches/benches/`; run them with
//! `cargo bench -p joblib-benches` or `cargo xtask bench`.
