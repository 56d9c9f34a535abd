//! Project automation, run as `cargo xtask <command>`:
//!
//! - `ci`: what CI runs: formatting, clippy, the tests, the docs with
//!   warnings denied, a build of the fuzz crate, and the quickstart example.
//! - `bench [criterion args]`: the criterion benchmarks, each workload next
//!   to its baseline.
//! - `test`: the README's test command: installs Open MPI, libclang and
//!   chromium when missing, runs `cargo test --workspace --all-features`,
//!   then `mpi`.
//! - `mpi [--bench] [--no-slurm]`: joblib-mpi's scenarios without a
//!   launcher, under `mpirun -n 3` and under a local Slurm (`srun -n 3`);
//!   with `--bench`, the MPI benchmark under `mpirun`.
//! - `fuzz [--install] [target|all] [seconds]`: runs cargo-fuzz targets
//!   (nightly), with corpora and build output under `target/fuzz/`; see
//!   `fuzz/README.md`.

mod mpi;
mod report;
mod slurm;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        Some("test") => mpi::test(),
        Some("mpi") => mpi::mpi(&args[1..]),
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
  test                      the tests: installs Open MPI, libclang and chromium (apt) when
                            missing, runs cargo test --workspace --all-features, then `mpi`
  mpi [--bench] [--no-slurm]
                            joblib-mpi's scenarios with 1 rank, under mpirun -n 3 and under
                            a local Slurm (srun -n 3); --bench: the MPI benchmark (mpirun)
  bench [--no-python] [--report-only] [criterion args]
                            the criterion benchmarks (benches/) and the same workloads in
                            Python joblib (pip-installing joblib, numpy and lz4 if needed),
                            written side by side to docs/benchmarks.md
  fuzz [--install] [TARGET|all] [SECS]
                            run a cargo-fuzz target (default: all, 60 s each); needs nightly
                            and cargo-fuzz (--install installs it into ~/.cargo/bin);
                            corpora and crashes go to target/fuzz/ (see fuzz/README.md)";

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

/// The packages whose docs `ci` also builds with `--no-default-features`:
/// the layers meant to be adopted alone, and the facade, which forwards
/// their features.
const DOCS_WITHOUT_DEFAULT_FEATURES: [&str; 4] =
    ["joblib-hash", "joblib-persist", "joblib-parallel", "joblib"];

fn ci() -> Result<(), String> {
    // Open MPI and libclang first: clippy and the docs build joblib-mpi.
    mpi::ensure_packages()?;
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
    // The README's test command (`cargo xtask test`).
    mpi::test()?;
    // Docs without a warning (broken or ambiguous links included) with the
    // default features, with all of them, and with none for the crates
    // meant to be used trimmed.
    for (label, features) in [
        ("docs (default features)", None),
        ("docs (all features)", Some("--all-features")),
    ] {
        let mut doc = cargo(&["doc", "--workspace", "--no-deps"]);
        doc.args(features);
        doc.env("RUSTDOCFLAGS", "-D warnings");
        step(label, &mut doc)?;
    }
    for package in DOCS_WITHOUT_DEFAULT_FEATURES {
        let mut doc = cargo(&["doc", "--no-deps", "--no-default-features", "-p", package]);
        doc.env("RUSTDOCFLAGS", "-D warnings");
        step(&format!("docs ({package}, no default features)"), &mut doc)?;
    }
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
    let report_only = args.iter().any(|a| a == "--report-only");
    let no_python = args.iter().any(|a| a == "--no-python");
    let mut criterion_args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--report-only" && *a != "--no-python")
        .collect();
    if criterion_args.is_empty() {
        // Short runs keep the whole sitting under ten minutes on 2 cores.
        criterion_args = vec!["--warm-up-time", "1", "--measurement-time", "3"];
    }
    let root = root();
    let criterion = report::criterion_dir(&root);
    let baseline = criterion.with_file_name("joblib-python-baseline.jsonl");
    if !report_only {
        let mut cmd = cargo(&["bench", "-p", "joblib-benches", "--"]);
        cmd.args(&criterion_args);
        step("criterion benchmarks", &mut cmd)?;
        // The MPI bench needs mpirun; the report reads what it writes.
        if let Err(why) = mpi::mpi(&["--bench".to_owned()]) {
            eprintln!("xtask: no MPI figures this time: {why}");
        }
        if !no_python {
            match python_baseline(&root) {
                Ok(lines) => std::fs::write(&baseline, lines)
                    .map_err(|e| format!("writing {}: {e}", baseline.display()))?,
                Err(why) => {
                    eprintln!("xtask: no Python comparison this time: {why}");
                    let _ = std::fs::remove_file(&baseline);
                }
            }
        }
    }
    let ours = report::criterion_medians(&criterion);
    if ours.is_empty() {
        return Err(format!(
            "no criterion results under {}: run `cargo xtask bench` without --report-only",
            criterion.display()
        ));
    }
    let python_text = std::fs::read_to_string(&baseline).unwrap_or_default();
    let (python, versions) = report::python_medians(&python_text);
    let markdown = report::render(&ours, &python, versions.as_deref(), &today());
    let out = root.join("docs/benchmarks.md");
    std::fs::write(&out, markdown).map_err(|e| format!("writing {}: {e}", out.display()))?;
    eprintln!("xtask: wrote {}", out.display());
    Ok(())
}

/// Runs the Python side, installing joblib, numpy and lz4 with pip if missing.
fn python_baseline(root: &Path) -> Result<String, String> {
    let have = Command::new("python3")
        .args(["-c", "import joblib, numpy, lz4"])
        .status()
        .map_err(|e| format!("python3 cannot be run: {e}"))?;
    if !have.success() {
        eprintln!("xtask: installing joblib, numpy and lz4 with pip, for the comparison");
        step(
            "pip install joblib numpy lz4",
            Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "joblib", "numpy", "lz4"]),
        )?;
    }
    eprintln!("\n==> Python joblib baseline (benches/python/joblib_baseline.py)");
    let out = Command::new("python3")
        .arg("benches/python/joblib_baseline.py")
        .current_dir(root)
        .output()
        .map_err(|e| format!("running the baseline script: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the baseline script failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("the baseline script's output: {e}"))
}

/// Today's date (UTC), as `date` prints it.
fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "an unknown date".into())
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

/// The arguments of `cargo xtask fuzz`.
#[derive(Debug, PartialEq)]
struct FuzzArgs {
    /// Whether cargo-fuzz may be installed (into ~/.cargo/bin) if missing.
    install: bool,
    /// A target name, or "all".
    which: String,
    seconds: u64,
}

impl FuzzArgs {
    /// `[--install] [TARGET|all] [SECS]`, `--install` anywhere.
    fn parse(args: &[String]) -> Result<FuzzArgs, String> {
        let install = args.iter().any(|a| a == "--install");
        let rest: Vec<&String> = args.iter().filter(|a| *a != "--install").collect();
        let seconds = match rest.get(1) {
            Some(s) => s
                .parse()
                .map_err(|_| format!("seconds must be a whole number, not {s:?}"))?,
            None => 60,
        };
        Ok(FuzzArgs {
            install,
            which: rest.first().map_or("all", |s| s.as_str()).to_string(),
            seconds,
        })
    }
}

/// Where fuzzing writes its build, corpora and crash artifacts: under the
/// workspace's target/ directory, which git ignores, never into a tracked
/// folder.
fn fuzz_dir(root: &Path) -> PathBuf {
    root.join("target").join("fuzz")
}

fn fuzz(args: &[String]) -> Result<(), String> {
    let targets = fuzz_targets()?;
    let FuzzArgs {
        install,
        which,
        seconds,
    } = FuzzArgs::parse(args)?;
    let chosen: Vec<&String> = if which == "all" {
        targets.iter().collect()
    } else {
        let t = targets
            .iter()
            .find(|t| **t == which)
            .ok_or_else(|| format!("no fuzz target {which:?}; targets: {}", targets.join(", ")))?;
        vec![t]
    };
    let have_fuzz = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have_fuzz {
        if !install {
            return Err("cargo-fuzz is not installed. Install it yourself with \
                 `cargo install cargo-fuzz --locked` (into ~/.cargo/bin, for your user), \
                 or run `cargo xtask fuzz --install ...` to have this command do it; \
                 see fuzz/README.md"
                .into());
        }
        eprintln!(
            "xtask: installing cargo-fuzz with `cargo install cargo-fuzz --locked`: \
             this puts a `cargo-fuzz` binary in ~/.cargo/bin (or $CARGO_HOME/bin), \
             outside this repository; `cargo uninstall cargo-fuzz` removes it"
        );
        step(
            "install cargo-fuzz (into ~/.cargo/bin)",
            &mut cargo(&["install", "cargo-fuzz", "--locked"]),
        )?;
    }
    let out = fuzz_dir(&root());
    for target in chosen {
        let corpus = out.join("corpus").join(target);
        let artifacts = out.join("artifacts").join(target);
        for dir in [&corpus, &artifacts] {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        let time = format!("-max_total_time={seconds}");
        // libFuzzer wants the prefix to end with a separator.
        let prefix = format!("-artifact_prefix={}/", artifacts.display());
        let mut cmd = Command::new("cargo");
        cmd.args(["+nightly", "fuzz", "run", target])
            .arg(&corpus)
            .args(["--", &time, &prefix])
            .env("CARGO_TARGET_DIR", out.join("build"));
        step(&format!("fuzz {target} for {seconds}s"), &mut cmd)?;
        eprintln!(
            "xtask: corpus in {}, crashes (if any) in {}",
            corpus.display(),
            artifacts.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fuzz_installs_nothing_unless_asked() {
        let plain = FuzzArgs::parse(&args(&["load_bytes", "5"])).unwrap();
        assert_eq!(
            plain,
            FuzzArgs {
                install: false,
                which: "load_bytes".into(),
                seconds: 5
            }
        );
        let asked = FuzzArgs::parse(&args(&["roundtrip", "--install"])).unwrap();
        assert!(asked.install);
        assert_eq!((asked.which.as_str(), asked.seconds), ("roundtrip", 60));
        assert_eq!(FuzzArgs::parse(&[]).unwrap().which, "all");
        assert!(FuzzArgs::parse(&args(&["all", "soon"])).is_err());
    }

    #[test]
    fn fuzz_output_stays_out_of_tracked_folders() {
        let dir = fuzz_dir(&root());
        assert!(dir.starts_with(root().join("target")));
        let ignored = std::fs::read_to_string(root().join(".gitignore")).unwrap();
        assert!(ignored.lines().any(|l| l == "/target"), "{ignored}");
    }
}
