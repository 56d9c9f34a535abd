//! Project automation. `cargo xtask ci` runs what CI runs; `cargo xtask bench`
//! runs the benchmarks; see `cargo xtask help`.
fn main() {}
