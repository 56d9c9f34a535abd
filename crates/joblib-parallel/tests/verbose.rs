//! `verbose` prints joblib's progress lines on stderr. The test runs itself
//! in a child process to read that stderr.

use std::process::Command;

use joblib_parallel::{Parallel, delayed};

const CHILD: &str = "JOBLIB_PARALLEL_VERBOSE_CHILD";

#[test]
fn verbose_prints_progress_on_stderr() {
    if std::env::var_os(CHILD).is_some() {
        let out = Parallel::new()
            .n_jobs(2)
            .batch_size(1)
            .verbose(10)
            .run((0..10).map(|i| delayed(|i: u32| i, i)))
            .unwrap();
        assert_eq!(out.len(), 10);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let output = Command::new(exe)
        .args([
            "--exact",
            "verbose_prints_progress_on_stderr",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("[Parallel"))
        .collect();
    assert_eq!(
        lines.first().copied(),
        Some("[Parallel(n_jobs=2)]: Using backend threads with 2 concurrent workers.")
    );
    let last = lines.last().copied().unwrap_or_default();
    assert!(
        last.starts_with("[Parallel(n_jobs=2)]: Done  10 out of  10 | elapsed: ")
            && last.ends_with("s finished"),
        "{stderr}"
    );
    // verbose(10) also reports progress between the first and the last line.
    assert!(lines.len() > 2, "{stderr}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("Done") || l.contains("Using backend"))
    );
    // joblib writes to stdout only from verbose 50 up.
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(!stdout.contains("[Parallel"), "{stdout}");
}
