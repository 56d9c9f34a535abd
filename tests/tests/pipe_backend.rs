//! The example backend of `crates/joblib/examples/pipe_backend.rs`, which
//! uses only the public remote-task API, run as a user would run it.

#![cfg(unix)]

use std::process::Command;

#[test]
fn the_pipe_backend_runs_tasks_in_children_and_reports_their_failures() {
    let out = Command::new(env!("CARGO_BIN_EXE_pipe-backend"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "norms: [0.0, 5.0, 10.0, 15.0]", "{stdout}");
    assert_eq!(lines[1], "picked: [11, 21, 31]", "{stdout}");
    assert!(
        lines[2].starts_with("error: task 1 failed: invalid digit"),
        "{stdout}"
    );
    assert_eq!(lines[3], "panic: task 1: task 1 refuses", "{stdout}");
    assert!(
        lines[4].starts_with("refused: backend \"pipe\" failed to run task 0")
            && lines[4].contains("delayed_remote"),
        "{stdout}"
    );
}
