//! Nothing to build: the script exists for the `links = "joblib-mpi"` key
//! of Cargo.toml, which Cargo only accepts with a build script, and which
//! refuses to link two copies of this crate (each calling `MPI_Init`) into
//! one program.

fn main() {}
