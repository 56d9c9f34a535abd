//! Project automation, run as `cargo xtask <command>`:
//!
//! - `ci`: what CI runs: formatting, clippy, the tests, the docs with
//!   warnings denied, a build of the fuzz crate, and the quickstart example.
//! - `bench [criterion args]`: the criterion benchmarks, each workload next
//!   to its baseline.
//! - `fuzz [target|all] [seconds]`: runs cargo-fuzz targets (nightly).

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        Some("fuzz") => fuzz(&args[1..]),
        Some("help") | Some("--help") | Some("-h") | None => {
            println!("{}", USAGE);
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo xtask <command>

commands:
  ci                        formatting, clippy, tests, docs, fuzz build, quickstart
  bench [criterion args]    the criterion benchmarks (benches/), side by side with baselines
  fuzz [TARGET|all] [SECS]  run a cargo-fuzz target (default: all, 60 s each); needs nightly";

/// The workspace root: the parent of this crate's manifest directory.
///
/// `cargo run` sets `CARGO_MANIFEST_DIR` when it starts the binary; that
/// value is preferred over the one compiled in, which names wherever the
/// binary was built and can be stale when a target directory is shared
/// between checkouts.
fn root() -> PathBuf {
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs one step, printing its name and how long it took.
fn step(name: &str, cmd: &mut Command) -> Result<(), String> {
    eprintln!("\n==> {name}\n    {cmd:?}");
    let start = Instant::now();
    let status = cmd
        .current_dir(root())
        .status()
        .map_err(|e| format!("{name}: could not start: {e}"))?;
    eprintln!(
        "<== {name}: {status} in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("step failed: {name} ({status})"))
    }
}

fn cargo(args: &[&str]) -> Command {
    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args);
    cmd
}

fn ci() -> Result<(), String> {
    step("format", &mut cargo(&["fmt", "--all", "--check"]))?;
    step(
        "clippy",
        &mut cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    // The README's test command.
    step(
        "tests",
        &mut cargo(&["test", "--workspace", "--all-features"]),
    )?;
    let mut doc = cargo(&["doc", "--workspace", "--no-deps", "--all-features"]);
    doc.env("RUSTDOCFLAGS", "-D warnings");
    step("docs", &mut doc)?;
    step(
        "fuzz targets build",
        &mut cargo(&["build", "--manifest-path", "fuzz/Cargo.toml", "--bins"]),
    )?;
    step(
        "quickstart",
        &mut cargo(&["run", "--release", "--example", "quickstart"]),
    )?;
    eprintln!("\nxtask ci: all steps passed");
    Ok(())
}

fn bench(args: &[String]) -> Result<(), String> {
    let mut cmd = cargo(&["bench", "-p", "joblib-benches"]);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    step("benchmarks", &mut cmd)
}

/// The fuzz targets, read from the fuzz crate's `[[bin]]` names.
fn fuzz_targets() -> Result<Vec<String>, String> {
    let manifest = std::fs::read_to_string(root().join("fuzz/Cargo.toml"))
        .map_err(|e| format!("reading fuzz/Cargo.toml: {e}"))?;
    let mut names = Vec::new();
    let mut in_bin = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin && let Some(rest) = line.strip_prefix("name") {
            let name = rest.trim_start_matches([' ', '=']).trim().trim_matches('"');
            names.push(name.to_string());
        }
    }
    Ok(names)
}

fn fuzz(args: &[String]) -> Result<(), String> {
    let targets = fuzz_targets()?;
    let which = args.first().map(String::as_str).unwrap_or("all");
    let seconds: u64 = match args.get(1) {
        Some(s) => s
            .parse()
            .map_err(|_| format!("seconds must be a whole number, not {s:?}"))?,
        None => 60,
    };
    let chosen: Vec<&String> = if which == "all" {
        targets.iter().collect()
    } else {
        let t = targets
            .iter()
            .find(|t| *t == which)
            .ok_or_else(|| format!("no fuzz target {which:?}; targets: {}", targets.join(", ")))?;
        vec![t]
    };
    let have_fuzz = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have_fuzz {
        step(
            "install cargo-fuzz",
            &mut cargo(&["install", "cargo-fuzz", "--locked"]),
        )?;
    }
    for target in chosen {
        let time = format!("-max_total_time={seconds}");
        step(
            &format!("fuzz {target} for {seconds}s"),
            Command::new("cargo").args(["+nightly", "fuzz", "run", target, "--", &time]),
        )?;
    }
    Ok(())
}
