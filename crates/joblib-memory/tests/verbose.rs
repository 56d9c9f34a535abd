//! The human-readable output on stderr, read from a child process.

use std::process::Command;

use joblib_memory::Memory;

const CHILD_DIR: &str = "JOBLIB_MEMORY_VERBOSE_CHILD_DIR";

/// Run by the child process: one miss and one hit at verbose 2.
#[test]
fn verbose_child_entry() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let memory = Memory::builder(dir).verbose(2).build().unwrap();
    let f = memory.cache("analysis::smooth", |(v, w): (Vec<u32>, usize)| v.len() + w);
    assert_eq!(f.call((vec![1, 2, 3], 2)), 5);
    assert_eq!(f.call((vec![1, 2, 3], 2)), 5);
}

#[test]
fn verbose_output_has_joblibs_shape() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "verbose_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "[Memory] Calling analysis::smooth...")
        .unwrap_or_else(|| panic!("no calling line in {stderr}"));
    assert_eq!(lines[at - 1], "_".repeat(80));
    assert_eq!(lines[at + 1], "smooth([1, 2, 3], 2)");
    assert!(lines[at + 2].starts_with("_____"), "{}", lines[at + 2]);
    assert!(lines[at + 2].ends_with("min"), "{}", lines[at + 2]);
    assert!(lines[at + 2].contains("smooth - 0.0s, 0.0min"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[Memory]") && l.ends_with(": Loading smooth...")),
        "no loading line in {stderr}"
    );
    assert_eq!(stderr.matches("Calling").count(), 1);
}
