//! Damaged entries and unwritable caches: the caller always gets the right
//! value.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use joblib_memory::{FsStore, Memory};

fn setup() -> (tempfile::TempDir, Memory) {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::new(dir.path());
    (dir, memory)
}

fn output_of(dir: &tempfile::TempDir, function: &str, digest: &joblib_hash::Digest) -> PathBuf {
    FsStore::new(dir.path())
        .unwrap()
        .entry_dir(function, digest)
        .join("output.jbl")
}

/// Damages the stored result in several ways; each time the next call
/// recomputes the right value and stores a good entry again.
#[test]
fn corrupt_truncated_missing_or_retyped_results_recompute() {
    let (dir, memory) = setup();
    let calls = AtomicUsize::new(0);
    let f = memory.cache("tests::squares", |n: u64| {
        calls.fetch_add(1, Ordering::SeqCst);
        (0..n).map(|i| i * i).collect::<Vec<u64>>()
    });
    let expected: Vec<u64> = (0..1000).map(|i| i * i).collect();
    assert_eq!(f.call(1000), expected);
    let out = output_of(&dir, "tests::squares", &f.digest(&1000u64).unwrap());

    type Damage = Box<dyn Fn(&PathBuf)>;
    let damages: Vec<(&str, Damage)> = vec![
        (
            "truncated",
            Box::new(|p| {
                let bytes = fs::read(p).unwrap();
                fs::write(p, &bytes[..bytes.len() / 2]).unwrap();
            }),
        ),
        (
            "flipped byte",
            Box::new(|p| {
                let mut bytes = fs::read(p).unwrap();
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0xff;
                fs::write(p, bytes).unwrap();
            }),
        ),
        (
            "garbage",
            Box::new(|p| fs::write(p, b"not a jbl file at all").unwrap()),
        ),
        ("empty", Box::new(|p| fs::write(p, b"").unwrap())),
        ("missing", Box::new(|p| fs::remove_file(p).unwrap())),
        (
            "another type",
            Box::new(|p| joblib_persist::dump(&"a string", p).unwrap()),
        ),
    ];
    for (i, (what, damage)) in damages.iter().enumerate() {
        damage(&out);
        assert_eq!(f.call(1000), expected, "after {what}");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            i + 2,
            "after {what}: must recompute"
        );
        assert_eq!(f.call(1000), expected, "after {what}, stored again");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            i + 2,
            "after {what}: the new entry is good"
        );
    }
}

#[test]
fn a_blocked_directory_computes_every_time() {
    let (dir, memory) = setup();
    // A plain file where the function's directory should be: nothing can
    // be stored, as on a read-only or full disk.
    fs::write(dir.path().join("blocked"), b"in the way").unwrap();
    let calls = AtomicUsize::new(0);
    let f = memory.cache("blocked::f", |x: u32| {
        calls.fetch_add(1, Ordering::SeqCst);
        x + 1
    });
    assert_eq!(f.call(1), 2);
    assert_eq!(f.call(1), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(!f.check_call_in_cache(&1u32));
    let shelved = f.call_and_shelve(5);
    assert_eq!(
        shelved.get().unwrap(),
        6,
        "an unstored result travels in the handle"
    );
}

#[cfg(unix)]
#[test]
fn a_read_only_directory_computes_and_still_serves_hits() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, memory) = setup();
    let calls = AtomicUsize::new(0);
    let f = memory.cache("ro::f", |x: u32| {
        calls.fetch_add(1, Ordering::SeqCst);
        x * 3
    });
    assert_eq!(f.call(1), 3);
    let fdir = dir.path().join("ro").join("f");
    fs::set_permissions(&fdir, fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores permissions: then the store simply works.
    let writable = fs::write(fdir.join("probe"), b"").is_ok();
    assert_eq!(f.call(1), 3, "hits still work");
    assert_eq!(f.call(2), 6);
    assert_eq!(f.call(2), 6);
    let expected_calls = if writable { 2 } else { 3 };
    assert_eq!(calls.load(Ordering::SeqCst), expected_calls);
    fs::set_permissions(&fdir, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn unhashable_arguments_compute_without_the_cache() {
    use serde::ser::{Error as _, Serialize, Serializer};
    struct Refuses(u32);
    impl Serialize for Refuses {
        fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(S::Error::custom("refuses to be serialized"))
        }
    }
    let (_dir, memory) = setup();
    let calls = AtomicUsize::new(0);
    let f = memory.cache("tests::refuses", |r: Refuses| {
        calls.fetch_add(1, Ordering::SeqCst);
        r.0
    });
    assert_eq!(f.call(Refuses(4)), 4);
    assert_eq!(f.call(Refuses(4)), 4);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[test]
fn leftover_temporary_directories_are_ignored() {
    let (dir, memory) = setup();
    let f = memory.cache("tests::t", |x: u8| x);
    f.call(1);
    let fdir = dir.path().join("tests").join("t");
    // A writer that crashed mid-way leaves a temporary directory behind.
    let tmp = fdir.join(".tmp-999-0-0");
    fs::create_dir(&tmp).unwrap();
    fs::write(tmp.join("output.jbl"), b"half").unwrap();
    assert_eq!(memory.reduce_size(None, None, None).unwrap().kept, 1);
    assert_eq!(f.call(1), 1);
    assert_eq!(f.call(2), 2);
    assert!(
        tmp.exists(),
        "a recent temporary directory may be a live write"
    );
    // Once it is old, reduce_size removes it.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    fs::File::open(&tmp).unwrap().set_modified(old).unwrap();
    memory.reduce_size(None, None, None).unwrap();
    assert!(!tmp.exists());
}

#[test]
fn a_location_that_is_a_file_is_an_error_from_the_builder() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    let err = Memory::builder(&file).build().unwrap_err();
    assert!(err.to_string().contains("file"), "{err}");
    // `new` degrades to computing every call.
    let memory = Memory::new(&file);
    assert!(!memory.is_enabled());
    assert_eq!(memory.cache("f", |x: u8| x + 1).call(1), 2);
}

#[test]
fn corrupt_metadata_is_rejected_when_it_is_read() {
    let (dir, memory) = setup();
    let calls = AtomicUsize::new(0);
    let f = memory
        .cache("tests::meta", |x: u32| {
            calls.fetch_add(1, Ordering::SeqCst);
            x * 2
        })
        .expires_after(std::time::Duration::from_secs(3600));
    assert_eq!(f.call(4), 8);
    let meta = FsStore::new(dir.path())
        .unwrap()
        .entry_dir("tests::meta", &f.digest(&4u32).unwrap())
        .join("metadata.json");
    fs::write(&meta, b"{ not json").unwrap();
    assert_eq!(f.call(4), 8);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let shelved = f.call_and_shelve(4u32);
    assert_eq!(shelved.metadata().unwrap().unwrap().args, "4");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Without a check that needs it, metadata is not read on a hit.
    fs::write(&meta, b"").unwrap();
    let plain = memory.cache("tests::meta", |x: u32| x * 2);
    assert_eq!(plain.call(4), 8);
    assert!(matches!(
        shelved.metadata(),
        Err(joblib_memory::Error::Metadata { .. })
    ));
}

/// An entry whose metadata was lost is replaced when a check needs the
/// metadata, instead of being recomputed on every call.
#[test]
fn an_entry_that_lost_its_metadata_is_repaired() {
    let (dir, memory) = setup();
    let calls = AtomicUsize::new(0);
    let f = memory
        .cache("rob::meta", |x: u32| {
            calls.fetch_add(1, Ordering::SeqCst);
            x + 1
        })
        .expires_after(std::time::Duration::from_secs(3600));
    assert_eq!(f.call(1), 2);
    let entry = FsStore::new(dir.path())
        .unwrap()
        .entry_dir("rob::meta", &f.digest(&1u32).unwrap());
    fs::remove_file(entry.join("metadata.json")).unwrap();
    for _ in 0..3 {
        assert_eq!(f.call(1), 2);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "recomputed once, then served"
    );
    assert!(entry.join("metadata.json").is_file());
}

/// A valid result copied over another entry's is recognised as damaged:
/// the right value is recomputed and stored again.
#[test]
fn a_result_from_another_entry_is_rejected() {
    let (dir, memory) = setup();
    let calls = AtomicUsize::new(0);
    let f = memory.cache("rob::value", |k: u64| {
        calls.fetch_add(1, Ordering::SeqCst);
        k * 1000
    });
    assert_eq!(f.call(19), 19_000);
    assert_eq!(f.call(20), 20_000);
    let out19 = output_of(&dir, "rob::value", &f.digest(&19u64).unwrap());
    let out20 = output_of(&dir, "rob::value", &f.digest(&20u64).unwrap());
    fs::copy(&out20, &out19).unwrap();
    for _ in 0..3 {
        assert_eq!(f.call(19), 19_000);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "recomputed once, then served"
    );
    // A shelved handle checks it too.
    fs::copy(&out20, &out19).unwrap();
    let h = memory
        .cache("rob::value", |k: u64| k * 1000)
        .call_and_shelve(19u64);
    assert!(
        matches!(h.get(), Err(joblib_memory::Error::WrongEntry { .. })),
        "{:?}",
        h.get()
    );
}

/// A hit reuses the bytes of a result it read before only while the file
/// is the same: a removal, a replacement by another file, a clear by
/// another memory (process) and a rewrite in place are all seen at the
/// next call.
#[test]
fn kept_results_follow_the_file() {
    let (dir, memory) = setup();
    let calls = AtomicUsize::new(0);
    let f = memory.cache("tests::kept", |n: u64| {
        calls.fetch_add(1, Ordering::SeqCst);
        n + 1
    });
    let computes = || calls.load(Ordering::SeqCst);
    let digest = f.digest(&1u64).unwrap();
    let out = output_of(&dir, "tests::kept", &digest);
    // Computed, then read (and kept, once the file has settled for a
    // moment) by a hit, then served from what was kept.
    let hit_twice = || {
        assert_eq!(f.call(1), 2);
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(f.call(1), 2);
        assert_eq!(f.call(1), 2);
    };
    assert_eq!(f.call(1), 2);
    hit_twice();
    assert_eq!(computes(), 1);

    // Removed.
    fs::remove_dir_all(out.parent().unwrap()).unwrap();
    hit_twice();
    assert_eq!(computes(), 2, "a removed entry is recomputed");

    // Replaced by another entry's file (a new inode).
    assert_eq!(f.call(5), 6);
    let other = output_of(&dir, "tests::kept", &f.digest(&5u64).unwrap());
    fs::copy(&other, out.with_extension("new")).unwrap();
    fs::rename(out.with_extension("new"), &out).unwrap();
    hit_twice();
    assert_eq!(computes(), 4, "a result of another entry is recomputed");

    // Cleared by another memory on the same directory.
    Memory::new(dir.path()).clear().unwrap();
    hit_twice();
    assert_eq!(computes(), 5, "a cleared entry is recomputed");

    // Rewritten in place (same inode, same size): the new content is
    // served.
    let forged =
        joblib_persist::dump_to_writer(&(digest.to_hex(), 7u64, 0.5f64), Vec::new()).unwrap();
    assert_eq!(forged.len() as u64, fs::metadata(&out).unwrap().len());
    fs::write(&out, forged).unwrap();
    assert_eq!(f.call(1), 7, "the file's new content is read");
    assert_eq!(computes(), 5);
}
