//! `call_and_shelve` and validation callbacks.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use joblib_memory::{Error, FsStore, MemorizedResult, Memory};

#[test]
fn call_and_shelve_returns_a_handle_without_loading() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    let calls = AtomicUsize::new(0);
    let f = memory.cache("shelf::range", |n: u32| {
        calls.fetch_add(1, Ordering::SeqCst);
        (0..n).collect::<Vec<u32>>()
    });
    let h = f.call_and_shelve(5);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(h.function(), "shelf::range");
    assert_eq!(h.digest(), Some(&f.digest(&5u32).unwrap()));
    assert_eq!(h.get().unwrap(), [0, 1, 2, 3, 4]);
    let again = f.call_and_shelve(5);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a shelved hit does not compute"
    );
    assert_eq!(again.digest(), h.digest());
    let meta = h.metadata().unwrap().unwrap();
    assert_eq!(meta.args, "5");
    assert_eq!(meta.function, "shelf::range");
    assert!(meta.size > 0);
    assert_eq!(f.call(5), [0, 1, 2, 3, 4]);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    assert!(h.clear().unwrap());
    assert!(!h.clear().unwrap());
    assert!(matches!(h.get(), Err(Error::NotCached { .. })));
    assert!(!f.check_call_in_cache(&5u32));
}

#[test]
fn a_handle_travels_to_another_process_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    let f = memory.cache("shelf::text", |s: String| s.to_uppercase());
    let h = f.call_and_shelve("abc".to_string());
    let json = serde_json::to_string(&h).unwrap();
    drop(h);
    let back: MemorizedResult<String> = serde_json::from_str(&json).unwrap();
    assert_eq!(back.get().unwrap(), "ABC");
    assert_eq!(back.metadata().unwrap().unwrap().args, r#""abc""#);

    // A result a disabled memory computed travels inside the handle.
    let g = Memory::disabled().cache("shelf::inline", |x: u8| vec![x; 3]);
    let h = g.call_and_shelve(2);
    assert_eq!(h.digest(), None);
    let back: MemorizedResult<Vec<u8>> =
        serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
    assert_eq!(back.get().unwrap(), [2, 2, 2]);
}

#[test]
fn expired_results_are_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    let calls = AtomicUsize::new(0);
    let f = memory
        .cache("shelf::expiring", |x: u32| {
            calls.fetch_add(1, Ordering::SeqCst);
            x
        })
        .expires_after(Duration::from_secs(3600));
    f.call(1);
    f.call(1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Make the entry two hours old.
    let meta_path = FsStore::new(dir.path())
        .unwrap()
        .entry_dir("shelf::expiring", &f.digest(&1u32).unwrap())
        .join("metadata.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&fs::read(&meta_path).unwrap()).unwrap();
    let t = meta["computed_at"].as_f64().unwrap() - 7200.0;
    meta["computed_at"] = t.into();
    fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    assert!(!f.check_call_in_cache(&1u32));
    f.call(1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    f.call(1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn a_validation_callback_can_reject_entries() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    let accept = Arc::new(AtomicBool::new(true));
    let calls = AtomicUsize::new(0);
    let a = Arc::clone(&accept);
    let f = memory
        .cache("shelf::validated", |x: u32| {
            calls.fetch_add(1, Ordering::SeqCst);
            x
        })
        .validate(move |meta| meta.function == "shelf::validated" && a.load(Ordering::SeqCst));
    f.call(1);
    f.call(1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    accept.store(false, Ordering::SeqCst);
    f.call(1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    accept.store(true, Ordering::SeqCst);
    f.call(1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn memory_wide_validation_applies_to_every_function() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::builder(dir.path())
        .validate(|meta| !meta.args.contains("13"))
        .expires_after(Duration::from_secs(3600))
        .build()
        .unwrap();
    let calls = AtomicUsize::new(0);
    let f = memory.cache("shelf::wide", |x: u32| {
        calls.fetch_add(1, Ordering::SeqCst);
        x
    });
    f.call(12);
    f.call(12);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    f.call(13);
    f.call(13);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "entries for 13 are always rejected"
    );
}

/// joblib's test_memorized_result_forwards_mmap_mode: a handle rebuilt
/// from its serialized form maps arrays as the memory it came from does.
#[test]
fn a_rebuilt_handle_keeps_the_mmap_mode() {
    use joblib_memory::MmapMode;
    use joblib_persist::MmapArray;
    use ndarray::{Array1, Ix1};
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::builder(dir.path())
        .mmap_mode(MmapMode::ReadOnly)
        .build()
        .unwrap();
    let f = memory.cache("shelf::ramp", |n: usize| {
        MmapArray::<f64, Ix1>::from(Array1::range(0.0, n as f64, 1.0))
    });
    let h = f.call_and_shelve(10_000);
    assert!(h.get().unwrap().is_mapped());
    let back: MemorizedResult<MmapArray<f64, Ix1>> =
        serde_json::from_str(&serde_json::to_string(&h).unwrap()).unwrap();
    let value = back.get().unwrap();
    assert!(value.is_mapped(), "the rebuilt handle maps the result too");
    assert_eq!(value.view()[9_999], 9_999.0);
}

/// joblib's test_call_and_shelve: with a disabled memory, a shelved result
/// is gone after `clear`, as a stored one is.
#[test]
fn a_disabled_memorys_shelved_result_is_gone_after_clear() {
    let f = Memory::disabled().cache("shelf::gone", |x: u8| x + 3);
    let h = f.call_and_shelve(2);
    assert_eq!(h.get().unwrap(), 5);
    assert!(h.clear().unwrap());
    assert!(matches!(h.get(), Err(Error::NotCached { .. })));
    assert!(!h.clear().unwrap());
}
