//! `cargo xtask test` and `cargo xtask mpi`: the system packages the tests
//! need, the workspace's tests, and the MPI scenarios of joblib-mpi run
//! under `mpirun`, under a local Slurm, and without a launcher.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{cargo, root, step};

/// Debian packages the tests need, with a command that shows each is there.
const PACKAGES: [(&str, &str); 4] = [
    ("openmpi-bin", "mpirun"),
    ("libopenmpi-dev", "mpicc"),
    ("libclang-dev", ""),
    ("pkg-config", "pkg-config"),
];

/// Ranks of the MPI runs: rank 0 and two workers.
const RANKS: &str = "3";

pub(crate) fn have_command(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn have_libclang() -> bool {
    [
        "/usr/lib",
        "/usr/lib64",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
    ]
    .iter()
    .filter_map(|d| std::fs::read_dir(d).ok())
    .flat_map(|d| d.filter_map(Result::ok))
    .any(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        name.starts_with("libclang") && name.contains(".so")
            || (name.starts_with("llvm-") && e.path().join("lib/libclang.so").exists())
    })
}

/// Installs the Debian packages that are missing (with sudo when not root).
pub(crate) fn apt_install(packages: &[&str]) -> Result<(), String> {
    if packages.is_empty() {
        return Ok(());
    }
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let apt = |args: &[&str]| {
        let mut cmd = if root_user {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        cmd
    };
    step("apt-get update", &mut apt(&["update"]))?;
    let mut args = vec!["install", "-y"];
    args.extend_from_slice(packages);
    step(
        &format!("apt-get install {}", packages.join(" ")),
        &mut apt(&args),
    )
}

/// Open MPI and libclang (for the bindings of the `mpi` crate), and the
/// browser of joblib-cli's report test, installed when missing.
pub(crate) fn ensure_packages() -> Result<(), String> {
    let mut missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(package, command)| {
            if command.is_empty() {
                *package == "libclang-dev" && !have_libclang()
            } else {
                !have_command(command)
            }
        })
        .map(|(package, _)| *package)
        .collect();
    if !have_command("chromium") {
        missing.push("chromium");
    }
    apt_install(&missing)
}

/// `cargo xtask test`: the README's test command. Installs what is
/// missing, runs `cargo test --workspace --all-features`, then the MPI
/// scenarios ([`mpi`]).
pub(crate) fn test() -> Result<(), String> {
    ensure_packages()?;
    step(
        "tests",
        &mut cargo(&["test", "--workspace", "--all-features"]),
    )?;
    mpi(&[])
}

/// The path of a test or bench executable that cargo built, from its JSON
/// messages.
fn built_executable(args: &[&str], target_name: &str) -> Result<PathBuf, String> {
    let out = cargo(args)
        .arg("--message-format=json")
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo could not start: {e}"))?;
    if !out.status.success() {
        return Err(format!("building {target_name} failed"));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["target"]["name"] == target_name)
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .next_back()
        .ok_or_else(|| format!("cargo built no executable named {target_name}"))
}

fn mpirun(program: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("mpirun");
    // As root Open MPI needs both flags; 3 ranks on a 2-core machine need
    // the second anyway.
    cmd.args(["--allow-run-as-root", "--oversubscribe", "-n", RANKS])
        .arg(program)
        .args(args);
    cmd
}

/// `cargo xtask mpi [--bench] [--no-slurm]`: the scenarios of joblib-mpi
/// (`crates/joblib-mpi/tests/mpi_ranks.rs`) without a launcher, under
/// `mpirun -n 3` and under a local Slurm's `srun -n 3`; with `--bench`, the
/// MPI benchmark (`benches/benches/mpi.rs`) under `mpirun` instead.
pub(crate) fn mpi(args: &[String]) -> Result<(), String> {
    ensure_packages()?;
    if args.iter().any(|a| a == "--bench") {
        let bench = built_executable(
            &[
                "bench",
                "-p",
                "joblib-benches",
                "--bench",
                "mpi",
                "--no-run",
            ],
            "mpi",
        )?;
        // It writes its medians under target/criterion/mpi/, for the report.
        step("MPI benchmark under mpirun", &mut mpirun(&bench, &[]))?;
        // The raw MPI round trip needs MPI started by itself: a launch of its own.
        return step(
            "MPI benchmark under mpirun: raw MPI round trip",
            &mut mpirun(&bench, &["--raw"]),
        );
    }
    let program = built_executable(
        &[
            "test",
            "-p",
            "joblib-mpi",
            "--release",
            "--test",
            "mpi_ranks",
            "--no-run",
        ],
        "mpi_ranks",
    )?;
    step(
        "MPI scenarios without a launcher (1 rank)",
        &mut Command::new(&program),
    )?;
    step(
        "MPI scenarios under mpirun -n 3",
        &mut mpirun(&program, &[]),
    )?;
    rank_death(&program)?;
    if args.iter().any(|a| a == "--no-slurm") {
        return Ok(());
    }
    super::slurm::run_under_slurm(&program, RANKS)
}

/// A rank that aborts inside a task: the launcher must end the job (no
/// hang; `timeout` stops it otherwise) and rank 0 must name the batches
/// that were on the ranks.
fn rank_death(program: &Path) -> Result<(), String> {
    eprintln!("\n==> a worker rank dies: the job ends, rank 0 says what ran where");
    let mut cmd = Command::new("timeout");
    cmd.args([
        "120",
        "mpirun",
        "--allow-run-as-root",
        "--oversubscribe",
        "-n",
        RANKS,
    ])
    .args(["-x", "JOBLIB_MPI_TEST_DEATH=1"])
    .arg(program);
    let out = cmd
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("mpirun could not start: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    if code == Some(124) {
        return Err(format!("the job hung after a rank died:\n{stderr}"));
    }
    if out.status.success() || stderr.contains("rank 0 went on") {
        return Err(format!(
            "the job did not end when a rank died ({:?}):\n{stderr}",
            out.status
        ));
    }
    if !stderr.contains("joblib-mpi: the job is ending") || !stderr.contains("tasks ") {
        return Err(format!(
            "rank 0 did not name the batches on the ranks:\n{stderr}"
        ));
    }
    eprintln!("<== the job ended ({}) and rank 0 said:", out.status);
    for line in stderr
        .lines()
        .filter(|l| l.contains("joblib-mpi") || l.starts_with("  rank"))
    {
        eprintln!("    {line}");
    }
    Ok(())
}
