//! A program that calls `std::process::exit` while `Shared` values it
//! sent to workers are alive leaves no file of them behind (its own test
//! binary: the child program it starts is a copy of this binary, which
//! would count as a stray child in the pool tests of `processes.rs`).

use std::collections::BTreeSet;

use joblib_parallel::{Parallel, delayed_remote};
use joblib_process::ProcessBackend;

/// Set to a folder in the environment of a copy of this test binary that
/// runs [`exit_with_live_shared_values`] as its child program.
const EXIT_CHILD_ENV: &str = "JOBLIB_TEST_EXIT_CHILD";

/// The child program of `a_shared_value_alive_at_exit_leaves_nothing_behind`
/// (does nothing unless [`EXIT_CHILD_ENV`] is set): sends two `Shared`
/// values to tasks, one under the folder it is given and one under the
/// default root, prints the mode of each file it holds for them, and calls
/// `std::process::exit` while both are alive.
#[test]
fn exit_with_live_shared_values() {
    use joblib_parallel::Shared;
    use std::os::unix::fs::PermissionsExt;

    let Some(dir) = std::env::var_os(EXIT_CHILD_ENV) else {
        return;
    };
    let in_folder = Shared::new(vec![7u8; 4 << 20]);
    let in_shm = Shared::new(vec![9u8; 4 << 20]);
    for (value, backend) in [
        (&in_folder, ProcessBackend::new().temp_folder(&dir)),
        (&in_shm, ProcessBackend::new()),
    ] {
        let sums = Parallel::new()
            .backend(backend)
            .n_jobs(2)
            .run((0..4).map(|_| {
                delayed_remote(
                    |v: Shared<Vec<u8>>| v.iter().map(|&b| u64::from(b)).sum::<u64>(),
                    value.clone(),
                )
            }))
            .unwrap();
        assert_eq!(sums, [u64::from(value[0]) * (4 << 20); 4]);
    }
    for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        let target = target.to_string_lossy();
        if target.contains("joblib") {
            let mode = std::fs::metadata(fd.path()).unwrap().permissions().mode();
            println!("held {target} mode {:o}", mode & 0o777);
        }
    }
    std::process::exit(0);
}

#[test]
fn a_shared_value_alive_at_exit_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let shm_before: BTreeSet<_> = std::fs::read_dir("/dev/shm")
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "exit_with_live_shared_values", "--nocapture"])
        .env(EXIT_CHILD_ENV, dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let held: Vec<&str> = stdout.lines().filter(|l| l.starts_with("held ")).collect();
    // The parent held the value under the folder (an unlinked file) and the
    // one under /dev/shm (a memfd), both private to it.
    assert!(
        held.iter()
            .any(|l| l.contains("(deleted)") && l.contains("-shared-")),
        "{stdout}"
    );
    assert!(
        held.iter().any(|l| l.contains("/memfd:joblib-shared")),
        "{stdout}"
    );
    assert!(held.iter().all(|l| l.ends_with("mode 600")), "{stdout}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
    let shm_after: BTreeSet<_> = std::fs::read_dir("/dev/shm")
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    let new: Vec<_> = shm_after.difference(&shm_before).collect();
    assert!(
        new.iter()
            .all(|n| !n.to_string_lossy().starts_with("joblib-rs-")),
        "left in /dev/shm: {new:?}"
    );
}
