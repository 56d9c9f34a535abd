//! Access recording and least-recently-used eviction.

use std::fs::{self, File};
use std::time::{Duration, SystemTime};

use joblib_memory::{FsStore, Memory};

/// Sets the recorded last access of an entry.
fn set_access(dir: &std::path::Path, function: &str, digest: &joblib_hash::Digest, t: SystemTime) {
    let path = FsStore::new(dir)
        .unwrap()
        .entry_dir(function, digest)
        .join("output.jbl");
    File::open(path).unwrap().set_modified(t).unwrap();
}

fn access_of(dir: &std::path::Path, function: &str, digest: &joblib_hash::Digest) -> SystemTime {
    let path = FsStore::new(dir)
        .unwrap()
        .entry_dir(function, digest)
        .join("output.jbl");
    fs::metadata(path).unwrap().modified().unwrap()
}

#[test]
fn a_hit_records_its_access_without_rewriting_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    let f = memory.cache("lim::f", |x: u32| vec![x; 100]);
    f.call(1);
    let d = f.digest(&1u32).unwrap();
    let long_ago = SystemTime::now() - Duration::from_secs(3600 * 24);
    set_access(dir.path(), "lim::f", &d, long_ago);
    let out = FsStore::new(dir.path())
        .unwrap()
        .entry_dir("lim::f", &d)
        .join("output.jbl");
    let written = fs::read(&out).unwrap();
    f.call(1);
    let seen = access_of(dir.path(), "lim::f", &d);
    assert!(
        seen > long_ago + Duration::from_secs(3600),
        "the hit must update the access time"
    );
    assert_eq!(
        fs::read(&out).unwrap(),
        written,
        "the result is not rewritten"
    );
    let entry = out.parent().unwrap();
    assert!(
        !entry.join("access").exists(),
        "no file is created to record an access"
    );
    let shelved = f.call_and_shelve(1u32);
    let meta = shelved.metadata().unwrap().unwrap();
    assert!(meta.last_access.unwrap() >= meta.computed_at - 1.0);
}

#[test]
fn reduce_size_evicts_least_recently_used_first() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    let f = memory.cache("lim::lru", |x: u32| vec![x as u8; 1000]);
    let now = SystemTime::now();
    for x in 0..10u32 {
        f.call(x);
    }
    // Entry x was last used x minutes ago... except 9, read recently.
    for x in 0..10u32 {
        let t = now - Duration::from_secs(60 * (x as u64 + 1));
        set_access(dir.path(), "lim::lru", &f.digest(&x).unwrap(), t);
    }
    f.call(9);
    let report = memory.reduce_size(None, Some(4), None).unwrap();
    assert_eq!(report.removed, 6);
    assert_eq!(report.kept, 4);
    let kept: Vec<u32> = (0..10).filter(|x| f.check_call_in_cache(x)).collect();
    assert_eq!(kept, [0, 1, 2, 9]);

    // Bytes: each result is a bit over 1000 bytes.
    let size = fs::metadata(
        FsStore::new(dir.path())
            .unwrap()
            .entry_dir("lim::lru", &f.digest(&0u32).unwrap())
            .join("output.jbl"),
    )
    .unwrap()
    .len();
    let report = memory.reduce_size(Some(size * 2 + 1), None, None).unwrap();
    assert_eq!(report.removed, 2);
    assert_eq!(report.freed_bytes, size * 2);
    let kept: Vec<u32> = (0..10).filter(|x| f.check_call_in_cache(x)).collect();
    assert_eq!(kept, [0, 9]);

    // Age: entry 0 was used a minute ago, 9 just now.
    let report = memory
        .reduce_size(None, None, Some(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(report.removed, 1);
    let kept: Vec<u32> = (0..10).filter(|x| f.check_call_in_cache(x)).collect();
    assert_eq!(kept, [9]);
}

#[test]
fn limits_are_enforced_automatically_after_writes() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::builder(dir.path())
        .items_limit(5)
        .reduce_every(4)
        .build()
        .unwrap();
    let f = memory.cache("lim::auto", |x: u32| x);
    for x in 0..40u32 {
        f.call(x);
    }
    let n = memory.reduce_size(None, None, None).unwrap().kept;
    // Checked every 4 writes: at most 5 + 3 entries between two checks.
    assert!(n <= 8, "{n} entries");
    assert!(n >= 1);
}

#[test]
fn automatic_enforcement_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::builder(dir.path())
        .items_limit(2)
        .auto_reduce(false)
        .build()
        .unwrap();
    let f = memory.cache("lim::manual", |x: u32| x);
    for x in 0..10u32 {
        f.call(x);
    }
    assert_eq!(memory.reduce_size(None, None, None).unwrap().kept, 10);
}

#[test]
fn a_cache_over_its_limit_is_reduced_on_the_first_write_of_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let unlimited = Memory::new(dir.path());
    let f = unlimited.cache("lim::runs", |x: u32| x);
    // Written by an earlier run: file times have a coarse clock, so make
    // them clearly older than what this run writes.
    let earlier = SystemTime::now() - Duration::from_secs(600);
    for x in 0..20u32 {
        f.call(x);
        set_access(dir.path(), "lim::runs", &f.digest(&x).unwrap(), earlier);
    }
    let limited = Memory::builder(dir.path()).items_limit(3).build().unwrap();
    let g = limited.cache("lim::runs", |x: u32| x);
    g.call(100);
    assert_eq!(limited.reduce_size(None, None, None).unwrap().kept, 3);
    assert!(g.check_call_in_cache(&100u32));
}

#[test]
fn bytes_limit_is_enforced_automatically() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::builder(dir.path())
        .bytes_limit(50_000)
        .reduce_every(1000)
        .build()
        .unwrap();
    let f = memory.cache("lim::bytes", |x: u32| vec![x as u8; 10_000]);
    for x in 0..30u32 {
        f.call(x);
    }
    let store = FsStore::new(dir.path()).unwrap();
    let total: u64 = (0..30u32)
        .filter(|x| f.check_call_in_cache(x))
        .map(|x| {
            fs::metadata(
                store
                    .entry_dir("lim::bytes", &f.digest(&x).unwrap())
                    .join("output.jbl"),
            )
            .unwrap()
            .len()
        })
        .sum();
    // The check runs each time a tenth of the limit was written.
    assert!(total <= 50_000 + 10_500, "{total} bytes kept");
}

#[test]
fn a_recent_access_is_not_written_again_by_any_memory() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::builder(dir.path()).verbose(0).build().unwrap();
    let f = memory.cache("lim::recent", |x: u32| x + 1);
    f.call(1);
    let d = f.digest(&1u32).unwrap();
    // An access time ahead of the clock (another machine's, or a second
    // not yet over) is recent: a hit leaves it alone...
    let ahead = SystemTime::now() + Duration::from_secs(3600);
    set_access(dir.path(), "lim::recent", &d, ahead);
    f.call(1);
    assert_eq!(access_of(dir.path(), "lim::recent", &d), ahead);
    // ... also from another memory, as another process would be, whose
    // first hit of the entry it is.
    let other = Memory::builder(dir.path()).verbose(0).build().unwrap();
    let g = other.cache("lim::recent", |x: u32| x + 1);
    assert_eq!(g.call(1), 2);
    assert_eq!(access_of(dir.path(), "lim::recent", &d), ahead);
    // An old access is written by the next hit of any memory: LRU order
    // holds across processes without a file per entry or atime.
    let old = SystemTime::now() - Duration::from_secs(3600);
    set_access(dir.path(), "lim::recent", &d, old);
    let before = SystemTime::now() - Duration::from_secs(1);
    assert_eq!(g.call(1), 2);
    assert!(access_of(dir.path(), "lim::recent", &d) >= before);
    set_access(dir.path(), "lim::recent", &d, old);
    assert_eq!(f.call(1), 2);
    assert!(access_of(dir.path(), "lim::recent", &d) >= before);
}
