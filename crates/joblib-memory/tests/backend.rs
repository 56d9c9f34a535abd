//! A store without files proves the `StoreBackend` trait suffices.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use joblib_hash::Digest;
use joblib_memory::{
    EntryInfo, Error, Memory, Metadata, OutputSink, PutOutcome, StoreBackend, StoredOutput,
    WriteOutput,
};

type Key = (String, Digest);
/// A stored result, its metadata and its last access.
type Stored = (Vec<u8>, Metadata, SystemTime);

#[derive(Debug, Default)]
struct InMemory {
    entries: Mutex<HashMap<Key, Stored>>,
    fingerprints: Mutex<HashMap<String, String>>,
    accesses: AtomicUsize,
    /// When set, every write fails (a full disk).
    full: std::sync::atomic::AtomicBool,
}

fn key(function: &str, digest: &Digest) -> Key {
    (function.to_string(), *digest)
}

impl StoreBackend for InMemory {
    fn output(&self, function: &str, digest: &Digest) -> Result<Option<StoredOutput>, Error> {
        let map = self.entries.lock().unwrap();
        Ok(map
            .get(&key(function, digest))
            .map(|(b, _, _)| StoredOutput::Bytes(b.clone())))
    }

    fn metadata(&self, function: &str, digest: &Digest) -> Result<Option<Metadata>, Error> {
        let map = self.entries.lock().unwrap();
        Ok(map.get(&key(function, digest)).map(|(_, m, t)| {
            let mut m = m.clone();
            m.last_access = Some(
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64(),
            );
            m
        }))
    }

    fn record_access(&self, function: &str, digest: &Digest) -> Result<(), Error> {
        self.accesses.fetch_add(1, Ordering::SeqCst);
        if let Some(e) = self.entries.lock().unwrap().get_mut(&key(function, digest)) {
            e.2 = SystemTime::now();
        }
        Ok(())
    }

    fn put(
        &self,
        function: &str,
        digest: &Digest,
        metadata: &mut Metadata,
        write: &mut WriteOutput<'_>,
    ) -> Result<PutOutcome, Error> {
        if self.full.load(Ordering::SeqCst) {
            return Err(Error::Backend {
                backend: "in-memory".into(),
                message: "no space left".into(),
            });
        }
        let mut buf = Vec::new();
        write(OutputSink::Writer(&mut buf))?;
        metadata.size = buf.len() as u64;
        let mut map = self.entries.lock().unwrap();
        if map.contains_key(&key(function, digest)) {
            return Ok(PutOutcome::AlreadyPresent);
        }
        map.insert(
            key(function, digest),
            (buf, metadata.clone(), SystemTime::now()),
        );
        Ok(PutOutcome::Stored)
    }

    fn remove(&self, function: &str, digest: &Digest) -> Result<bool, Error> {
        Ok(self
            .entries
            .lock()
            .unwrap()
            .remove(&key(function, digest))
            .is_some())
    }

    fn fingerprint(&self, function: &str) -> Result<Option<String>, Error> {
        Ok(self.fingerprints.lock().unwrap().get(function).cloned())
    }

    fn set_fingerprint(&self, function: &str, fingerprint: &str) -> Result<(), Error> {
        self.fingerprints
            .lock()
            .unwrap()
            .insert(function.to_string(), fingerprint.to_string());
        Ok(())
    }

    fn clear_function(&self, function: &str) -> Result<usize, Error> {
        let mut map = self.entries.lock().unwrap();
        let before = map.len();
        map.retain(|(f, _), _| f != function);
        Ok(before - map.len())
    }

    fn clear(&self) -> Result<(), Error> {
        self.entries.lock().unwrap().clear();
        self.fingerprints.lock().unwrap().clear();
        Ok(())
    }

    fn entries(&self) -> Result<Vec<EntryInfo>, Error> {
        let map = self.entries.lock().unwrap();
        Ok(map
            .iter()
            .map(|((f, d), (b, _, t))| EntryInfo::new(f.clone(), *d, b.len() as u64, *t))
            .collect())
    }
}

fn memory_with(store: &Arc<InMemory>) -> Memory {
    Memory::builder("unused")
        .backend(Arc::clone(store) as Arc<dyn StoreBackend>)
        .build()
        .unwrap()
}

#[test]
fn an_in_memory_store_caches_invalidates_and_reduces() {
    let store = Arc::new(InMemory::default());
    let memory = memory_with(&store);
    assert_eq!(memory.location(), None);
    assert!(
        !std::path::Path::new("unused").exists(),
        "no directory for a custom backend"
    );
    let calls = AtomicUsize::new(0);
    let f = memory
        .cache("mem::f", |(a, b): (String, u32)| {
            calls.fetch_add(1, Ordering::SeqCst);
            a.repeat(b as usize)
        })
        .version("1");
    assert_eq!(f.call(("ab".into(), 3)), "ababab");
    assert_eq!(f.call(("ab".into(), 3)), "ababab");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(store.accesses.load(Ordering::SeqCst), 1);
    f.call(("c".into(), 2));
    assert_eq!(store.entries.lock().unwrap().len(), 2);

    let shelved = f.call_and_shelve(("ab".to_string(), 3));
    assert_eq!(shelved.get().unwrap(), "ababab");
    let meta = shelved.metadata().unwrap().unwrap();
    assert_eq!(meta.function, "mem::f");
    assert_eq!(meta.args, r#"("ab", 3)"#);
    assert_eq!(meta.fingerprint, "version:1");

    assert_eq!(memory.reduce_size(None, Some(1), None).unwrap().removed, 1);

    let memory2 = memory_with(&store);
    let g = memory2
        .cache("mem::f", |(a, _b): (String, u32)| a)
        .version("2");
    assert_eq!(g.call(("ab".into(), 3)), "ab");
    assert_eq!(
        store.entries.lock().unwrap().len(),
        1,
        "version 1 entries are cleared"
    );
}

#[test]
fn a_failing_store_computes_and_warns() {
    let store = Arc::new(InMemory::default());
    store.full.store(true, Ordering::SeqCst);
    let memory = memory_with(&store);
    let calls = AtomicUsize::new(0);
    let f = memory.cache("mem::full", |x: u64| {
        calls.fetch_add(1, Ordering::SeqCst);
        x + 1
    });
    assert_eq!(f.call(1), 2);
    assert_eq!(f.call(1), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    store.full.store(false, Ordering::SeqCst);
    assert_eq!(f.call(1), 2);
    assert_eq!(f.call(1), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}
