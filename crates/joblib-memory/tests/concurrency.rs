//! Threads and processes sharing one cache.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use joblib_memory::Memory;

/// Set in the child processes this file starts.
const CHILD_DIR: &str = "JOBLIB_MEMORY_TEST_CHILD_DIR";

fn work(x: u64) -> Vec<u64> {
    (0..2000).map(|i| i * x + i % 7).collect()
}

#[test]
fn concurrent_callers_of_one_key_wait_for_one_computation() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let f = Arc::new(memory.cache("conc::slow", move |x: u64| {
        c.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(200));
        work(x)
    }));
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let f = Arc::clone(&f);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                f.call(3)
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), work(3));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panicking_computation_releases_the_waiters() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let f = Arc::new(memory.cache("conc::panics_once", move |x: u64| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(100));
            panic!("first computation fails");
        }
        x + 1
    }));
    let f2 = Arc::clone(&f);
    let first = std::thread::spawn(move || f2.call(1));
    std::thread::sleep(Duration::from_millis(20));
    let f3 = Arc::clone(&f);
    let second = std::thread::spawn(move || f3.call(1));
    assert!(first.join().is_err());
    assert_eq!(second.join().unwrap(), 2);
}

#[test]
fn threads_with_many_keys_and_reduce_size_always_get_right_values() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    let f = Arc::new(memory.cache("conc::many", |x: u64| work(x)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reducer = {
        let memory = memory.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut rounds = 0;
            while !stop.load(Ordering::SeqCst) {
                memory.reduce_size(None, Some(5), None).unwrap();
                rounds += 1;
            }
            rounds
        })
    };
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let f = Arc::clone(&f);
            std::thread::spawn(move || {
                for i in 0..60u64 {
                    let x = (i * 7 + t) % 20;
                    assert_eq!(f.call(x), work(x));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    assert!(reducer.join().unwrap() > 0);
    // Whatever survived is intact.
    for x in 0..20 {
        assert_eq!(f.call(x), work(x));
    }
}

/// Run by the child processes: calls the shared function on many keys.
#[test]
fn child_process_entry() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let memory = Memory::new(dir);
    let f = memory.cache("conc::shared", |x: u64| work(x));
    for round in 0..3 {
        for x in 0..25u64 {
            assert_eq!(f.call(x), work(x), "child round {round} key {x}");
        }
        memory.reduce_size(None, Some(10), None).unwrap();
    }
}

#[test]
fn processes_share_one_cache() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..3)
        .map(|_| {
            // Piped, so the children's test summaries do not mix with ours.
            Command::new(&exe)
                .args(["--exact", "child_process_entry", "--test-threads=1"])
                .env(CHILD_DIR, dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // This process joins in with the same keys meanwhile.
    let memory = Memory::new(dir.path());
    let calls = AtomicUsize::new(0);
    let f = memory.cache("conc::shared", |x: u64| {
        calls.fetch_add(1, Ordering::SeqCst);
        work(x)
    });
    for x in 0..25u64 {
        assert_eq!(f.call(x), work(x));
    }
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a child process failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Entries written by the children are readable here, and none is
    // partial: every one that exists loads.
    let before = calls.load(Ordering::SeqCst);
    let cached: Vec<u64> = (0..25).filter(|x| f.check_call_in_cache(x)).collect();
    assert!(!cached.is_empty());
    for x in &cached {
        assert_eq!(f.call(*x), work(*x));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        before,
        "cached entries must load"
    );
}
