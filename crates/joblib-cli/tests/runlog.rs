//! The commands that read the run log (`cache ls`, `cache show`,
//! `cache log`, `cache log --follow`), on caches written by joblib-memory
//! and on damaged or missing logs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use joblib_memory::Memory;
use serde_json::Value;

mod common;
use common::{joblib, path, stderr, stdout};

fn json(args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = joblib(&all);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// Each line of `joblib --json cache log ...` parsed.
fn log_lines(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--json", "cache", "log"];
    all.extend_from_slice(args);
    let out = joblib(&all);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

const NAP: Duration = Duration::from_millis(30);

/// `t::slow` computed for 0 and 1, then served for 0 twice; `t::fast`
/// computed once.
fn logged_cache(dir: &Path) {
    let memory = Memory::builder(dir).verbose(0).build().unwrap();
    let slow = memory
        .cache("t::slow", |x: u64| {
            std::thread::sleep(NAP);
            x * 2
        })
        .version("1");
    assert_eq!(slow.call(0), 0);
    assert_eq!(slow.call(1), 2);
    assert_eq!(slow.call(0), 0);
    assert_eq!(slow.call(0), 0);
    let fast = memory.cache("t::fast", |x: u64| x + 1).version("1");
    fast.call(7);
}

#[test]
fn ls_and_show_count_hits_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    logged_cache(dir.path());
    let root = path(dir.path());
    let v = json(&["cache", "ls", root]);
    let f = &v["functions"];
    assert_eq!(f[0]["function"], "t::fast");
    assert_eq!(
        (f[0]["hits"].as_u64(), f[0]["computes"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(f[0]["time_saved"], 0.0);
    assert_eq!(f[1]["function"], "t::slow");
    assert_eq!(
        (f[1]["hits"].as_u64(), f[1]["computes"].as_u64()),
        (Some(2), Some(2))
    );
    // Two hits of an entry that took at least NAP to compute.
    let saved = f[1]["time_saved"].as_f64().unwrap();
    assert!(saved >= 2.0 * NAP.as_secs_f64(), "{saved}");
    assert_eq!(v["total"]["hits"], 2);
    assert_eq!(v["total"]["computes"], 3);

    let out = joblib(&["cache", "ls", root]);
    let text = stdout(&out);
    let header = text.lines().next().unwrap();
    for column in ["hits", "computes", "time saved"] {
        assert!(header.contains(column), "{text}");
    }
    assert!(text.contains("2 hits, 3 computes"), "{text}");
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));

    let v = json(&["cache", "show", root, "t::slow"]);
    let mut served: Vec<(String, u64)> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["args"].as_str().unwrap().to_string(),
                e["served"].as_u64().unwrap(),
            )
        })
        .collect();
    served.sort();
    assert_eq!(served, [("0".to_string(), 2), ("1".to_string(), 0)]);
    let text = stdout(&joblib(&["cache", "show", root, "t::slow"]));
    assert!(text.lines().next().unwrap().contains("served"), "{text}");
}

#[test]
fn log_lists_calls_newest_last_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    logged_cache(dir.path());
    let root = path(dir.path());
    let all = log_lines(&[root]);
    assert_eq!(all.len(), 5);
    let outcomes: Vec<&str> = all.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["computed", "computed", "hit", "hit", "computed"]);
    let times: Vec<f64> = all.iter().map(|r| r["time"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(all[4]["function"], "t::fast");

    assert_eq!(log_lines(&[root, "--function", "t::slow"]).len(), 4);
    assert_eq!(log_lines(&[root, "--function", "t::none"]).len(), 0);
    assert_eq!(log_lines(&[root, "--since", "1h"]).len(), 5);
    assert_eq!(
        log_lines(&[root, "--since", "2999-01-01T00:00:00Z"]).len(),
        0
    );
    assert_eq!(
        log_lines(&[root, "--since", "2000-01-01T00:00:00Z"]).len(),
        5
    );

    let out = joblib(&["cache", "log", root]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(lines[0].starts_with("time (UTC)"), "{text}");
    assert!(
        lines[3].contains("t::slow") && lines[3].contains("hit"),
        "{text}"
    );

    let out = joblib(&["cache", "log", root, "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("neither a duration"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_damaged_or_missing_log_is_a_note() {
    let dir = tempfile::tempdir().unwrap();
    logged_cache(dir.path());
    let root = path(dir.path());
    let log = dir.path().join("runs.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.insert_str(0, "{\"time\": garbage\n");
    std::fs::write(&log, text).unwrap();
    let out = joblib(&["--json", "cache", "log", root]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 5);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("1 damaged line"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let quiet = tempfile::tempdir().unwrap();
    let memory = Memory::builder(quiet.path())
        .verbose(0)
        .run_log(false)
        .build()
        .unwrap();
    memory.cache("q::f", |x: u64| x).call(1);
    let root = path(quiet.path());
    for args in [
        vec!["--json", "cache", "ls", root],
        vec!["--json", "cache", "show", root, "q::f"],
        vec!["cache", "log", root],
    ] {
        let out = joblib(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("has no run log"), "{err}");
    }
    let v = json(&["cache", "ls", root]);
    assert_eq!(v["functions"][0]["hits"], Value::Null);
    assert_eq!(v["functions"][0]["entries"], 1);

    let not_cache = tempfile::tempdir().unwrap();
    let out = joblib(&["cache", "log", path(not_cache.path())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a joblib cache"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn follow_prints_calls_as_they_are_made() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::builder(dir.path()).verbose(0).build().unwrap();
    let f = memory.cache("live::f", |x: u64| x * 3).version("1");
    f.call(1);
    let mut child = Command::new(env!("CARGO_BIN_EXE_joblib"))
        .args(["--json", "cache", "log", path(dir.path()), "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = || {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("a record within 20 s");
        serde_json::from_str::<Value>(&line).expect("one JSON object per line")
    };
    // The history first, then each call as it is made.
    let first = next();
    assert_eq!(
        (first["outcome"].as_str(), first["args"].as_str()),
        (Some("computed"), Some("1"))
    );
    f.call(2);
    let r = next();
    assert_eq!(
        (r["outcome"].as_str(), r["args"].as_str()),
        (Some("computed"), Some("2"))
    );
    f.call(1);
    let r = next();
    assert_eq!(
        (r["outcome"].as_str(), r["args"].as_str()),
        (Some("hit"), Some("1"))
    );
    // Still running: it follows until interrupted.
    assert!(child.try_wait().unwrap().is_none());
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    assert!(rx.try_recv().is_err(), "nothing printed twice");
}
