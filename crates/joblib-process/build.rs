//! Nothing to build: the script exists for the `links = "joblib-process"`
//! key of Cargo.toml, which Cargo only accepts with a build script, and
//! which refuses to link two copies of this crate (each with its own pool
//! and worker marker) into one program.

fn main() {}
