//! Prints `name<TAB>digest` for each of `joblib_tests::samples()`.

fn main() {
    for (name, digest) in joblib_tests::samples() {
        println!("{name}\t{digest}");
    }
}
