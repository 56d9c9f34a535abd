//! What every test of the `joblib` binary needs: running it and reading
//! what it printed.

// Each test file uses its own subset of these.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs `joblib` with `args`.
pub(crate) fn joblib(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_joblib"))
        .args(args)
        .output()
        .expect("the joblib binary runs")
}

pub(crate) fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
