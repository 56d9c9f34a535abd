//! Dumps or loads an `Array2<f64>` of a given size, for measuring peak
//! memory from outside (README: `/usr/bin/time -v`):
//!
//! ```text
//! cargo run --release -p joblib-persist --example peak_memory -- dump /tmp/a.jbl 500
//! cargo run --release -p joblib-persist --example peak_memory -- load /tmp/a.jbl
//! ```
//!
//! The value itself is `MB` megabytes; the process's peak resident memory
//! should stay within that plus 64 MiB.

use joblib_persist::{Compression, DumpOptions};
use ndarray::Array2;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: peak_memory dump|load PATH [MB] [none|lz4|zstd]";
    let (Some(mode), Some(path)) = (args.get(1), args.get(2)) else {
        return Err(usage.into());
    };
    match mode.as_str() {
        "dump" => {
            let mb: usize = args.get(3).map_or(Ok(500), |s| s.parse())?;
            let method = Compression::from_name(args.get(4).map_or("none", String::as_str));
            let cols = 1000;
            let rows = (mb << 20) / 8 / cols;
            let a =
                Array2::from_shape_fn((rows, cols), |(i, j)| ((i * cols + j) as f64 * 1e-4).sin());
            DumpOptions::new().compress(method).dump(&a, path)?;
            println!("dumped {} bytes of f64", a.len() * 8);
        }
        "load" => {
            let a: Array2<f64> = joblib_persist::load(path)?;
            println!("loaded {} bytes of f64, sum {}", a.len() * 8, a.sum());
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
