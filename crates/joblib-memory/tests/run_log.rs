//! The run log: one record per call, whole under concurrent appends from
//! threads and processes, bounded, and readable through `RunLog`.

use std::fs;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use joblib_memory::{FsStore, Memory, RunLog, RunOutcome, RunReason, Warnings};
use serde::{Serialize, Serializer};

const CHILD_DIR: &str = "JOBLIB_MEMORY_RUN_LOG_CHILD_DIR";

fn quiet(dir: &std::path::Path) -> Memory {
    Memory::builder(dir)
        .verbose(0)
        .warnings(Warnings::Silent)
        .build()
        .unwrap()
}

struct Unhashable;

impl Serialize for Unhashable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("no"))
    }
}

#[test]
fn each_call_records_its_outcome_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let memory = quiet(dir.path());
    let f = memory.cache("log::f", |x: u64| vec![x; 100]).version("1");
    f.call(1); // computed
    f.call(1); // hit
    let out = FsStore::new(dir.path())
        .unwrap()
        .entry_dir("log::f", &f.digest(&1u64).unwrap())
        .join("output.jbl");
    fs::write(&out, b"damaged").unwrap();
    f.call(1); // recomputed: damaged
    let g = memory.cache("log::g", |_: Unhashable| 1u8);
    g.call(Unhashable); // not stored: unhashable
    let expiring = memory
        .cache("log::e", |x: u8| x)
        .expires_after(Duration::ZERO);
    expiring.call(1);
    std::thread::sleep(Duration::from_millis(20));
    expiring.call(1); // recomputed: expired
    // The code changed: results cleared by this process.
    let memory2 = quiet(dir.path());
    let f2 = memory2.cache("log::f", |x: u64| vec![x; 100]).version("2");
    f2.call(1);

    let runs = memory.runs().unwrap();
    let seen: Vec<(&str, RunOutcome, Option<RunReason>)> = runs
        .iter()
        .map(|r| (r.function.as_str(), r.outcome, r.reason))
        .collect();
    assert_eq!(
        seen,
        [
            ("log::f", RunOutcome::Computed, None),
            ("log::f", RunOutcome::Hit, None),
            ("log::f", RunOutcome::Recomputed, Some(RunReason::Damaged)),
            ("log::g", RunOutcome::NotStored, Some(RunReason::Unhashable)),
            ("log::e", RunOutcome::Computed, None),
            ("log::e", RunOutcome::Recomputed, Some(RunReason::Expired)),
            (
                "log::f",
                RunOutcome::Recomputed,
                Some(RunReason::CodeChanged)
            ),
        ]
    );
    let hit = &runs[1];
    assert_eq!(hit.args, "1");
    assert_eq!(hit.fingerprint, "version:1");
    assert_eq!(hit.digest, Some(f.digest(&1u64).unwrap().to_hex()));
    assert_eq!(hit.pid, std::process::id());
    assert!(!hit.host.is_empty());
    assert!(hit.bytes > 800, "{}", hit.bytes);
    assert_eq!(runs[0].bytes, hit.bytes);
    assert!(runs[3].digest.is_none());
    let age = SystemTime::now().duration_since(hit.at()).unwrap();
    assert!(age < Duration::from_secs(60));
    // `clear` keeps the history.
    memory.clear().unwrap();
    assert_eq!(memory.runs().unwrap().len(), runs.len());
}

#[test]
fn totals_count_hits_computes_and_time_saved() {
    let dir = tempfile::tempdir().unwrap();
    let memory = quiet(dir.path());
    let slow = memory.cache("log::slow", |x: u64| {
        std::thread::sleep(Duration::from_millis(30));
        x
    });
    slow.call(1);
    for _ in 0..3 {
        slow.call(1);
    }
    let log = RunLog::open(dir.path());
    let runs = log.records().unwrap();
    let totals = log.totals(&runs);
    assert_eq!(totals.len(), 1);
    let t = &totals[0];
    assert_eq!((t.hits, t.computes), (3, 1));
    assert!(
        t.time_saved >= Duration::from_millis(90),
        "{:?}",
        t.time_saved
    );
    assert!(t.compute_time >= Duration::from_millis(30));
    // Each hit carries its entry's compute time: without the computation
    // in the log (rotated away) and without the entry's metadata, the
    // saving is still known.
    for hit in &runs[1..] {
        assert_eq!(hit.compute_seconds, Some(runs[0].seconds));
    }
    assert_eq!(runs[0].compute_seconds, None);
    let entry = FsStore::existing(dir.path()).entry_dir("log::slow", &slow.digest(&1u64).unwrap());
    fs::remove_file(entry.join("metadata.json")).unwrap();
    let totals = log.totals(&runs[1..]);
    assert_eq!(
        totals[0].time_saved,
        Duration::from_secs_f64(runs[0].seconds) * 3
    );
    let entries = RunLog::entry_totals(&runs);
    let e = &entries[&(
        "log::slow".to_string(),
        slow.digest(&1u64).unwrap().to_hex(),
    )];
    assert_eq!((e.served, e.computed), (3, 1));
    assert_eq!(
        log.query(Some("log::slow"), Some(runs[2].at()))
            .unwrap()
            .len(),
        2
    );
    assert!(log.query(Some("other"), None).unwrap().is_empty());
}

#[test]
fn threads_append_whole_records() {
    let dir = tempfile::tempdir().unwrap();
    let memory = quiet(dir.path());
    let f = memory.cache("log::threads", |x: u64| x * 2);
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let f = &f;
            s.spawn(move || {
                for i in 0..200 {
                    f.call((t * 1000 + i) % 50);
                }
            });
        }
    });
    let text = fs::read_to_string(RunLog::open(dir.path()).path()).unwrap();
    assert_eq!(text.lines().count(), 1600);
    let runs = memory.runs().unwrap();
    assert_eq!(runs.len(), 1600);
    let computed = runs.iter().filter(|r| r.outcome != RunOutcome::Hit).count();
    assert_eq!(computed, 50);
}

/// Run by the child processes: 500 calls each.
#[test]
fn run_log_child_entry() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let memory = quiet(dir.as_ref());
    let f = memory.cache("log::procs", |x: u64| x + 1);
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let f = &f;
            s.spawn(move || {
                for i in 0..250u64 {
                    f.call((i + t) % 40);
                }
            });
        }
    });
}

#[test]
fn processes_append_whole_records() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "run_log_child_entry", "--test-threads=1"])
                .env(CHILD_DIR, dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = fs::read_to_string(RunLog::open(dir.path()).path()).unwrap();
    assert_eq!(text.lines().count(), 2000);
    let runs = RunLog::open(dir.path()).records().unwrap();
    assert_eq!(runs.len(), 2000, "every line is a whole record");
    for pid in pids {
        assert_eq!(runs.iter().filter(|r| r.pid == pid).count(), 500);
    }
}

#[test]
fn the_log_is_bounded_and_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let limit = 16 << 10;
    let memory = Memory::builder(dir.path())
        .verbose(0)
        .run_log_limit(limit)
        .build()
        .unwrap();
    let f = memory.cache("log::bounded", |x: u64| x);
    for i in 0..3000u64 {
        f.call(i % 10);
    }
    let log = RunLog::open(dir.path());
    let current = fs::metadata(log.path()).unwrap().len();
    let old = fs::metadata(dir.path().join("runs.1.jsonl")).unwrap().len();
    // Sizes are checked every sixteenth of the limit (at least 4 KiB).
    let slack = 4096 + 512;
    assert!(current < limit + slack, "{current}");
    assert!(old < limit + slack, "{old}");
    let runs = log.records().unwrap();
    assert!(runs.len() < 3000);
    let last = runs.last().unwrap();
    assert_eq!(last.args, "9", "the newest records are kept");

    let off = tempfile::tempdir().unwrap();
    let memory = Memory::builder(off.path())
        .verbose(0)
        .run_log(false)
        .build()
        .unwrap();
    memory.cache("log::off", |x: u8| x).call(1);
    assert!(!off.path().join("runs.jsonl").exists());
    assert!(memory.runs().unwrap().is_empty());
}

#[test]
fn a_follower_sees_new_records_and_follows_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::builder(dir.path())
        .verbose(0)
        .run_log_limit(4096)
        .build()
        .unwrap();
    let f = memory.cache("log::follow", |x: u32| x);
    let mut follower = RunLog::open(dir.path()).follow();
    assert!(follower.poll().unwrap().is_empty());
    f.call(1);
    f.call(1);
    assert_eq!(follower.poll().unwrap().len(), 2);
    assert!(follower.poll().unwrap().is_empty());
    let counter = AtomicU32::new(0);
    let mut seen = 0;
    for _ in 0..100 {
        for _ in 0..10 {
            f.call(counter.fetch_add(1, Ordering::Relaxed) % 7);
        }
        seen += follower.poll().unwrap().len();
    }
    assert!(dir.path().join("runs.1.jsonl").exists(), "rotated");
    assert_eq!(seen, 1000, "every record is seen once, across rotations");
}

#[test]
fn hits_of_entries_written_before_compute_times_were_stored() {
    let dir = tempfile::tempdir().unwrap();
    let memory = quiet(dir.path());
    let slow = memory.cache("log::old", |x: u64| {
        std::thread::sleep(Duration::from_millis(20));
        x + 1
    });
    assert_eq!(slow.call(1), 2);
    // Rewrite the result as earlier versions stored it: (digest, result).
    let digest = slow.digest(&1u64).unwrap();
    let out = FsStore::existing(dir.path())
        .entry_dir("log::old", &digest)
        .join("output.jbl");
    fs::remove_file(&out).unwrap();
    joblib_persist::dump(&(digest.to_hex(), 2u64), &out).unwrap();
    assert_eq!(slow.call(1), 2);
    let log = RunLog::open(dir.path());
    let runs = log.records().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].outcome, RunOutcome::Hit);
    assert_eq!(runs[1].compute_seconds, None);
    // The saving then comes from the entry's metadata.
    let totals = log.totals(&runs[1..]);
    assert!(totals[0].time_saved >= Duration::from_millis(20));
}
