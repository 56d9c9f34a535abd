//! One computation per key within a process: later callers wait for it.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use joblib_hash::Digest;

type Key = (String, Digest);

/// The computation in progress for one key.
#[derive(Default)]
struct Slot {
    done: Mutex<bool>,
    cv: Condvar,
}

/// The keys being computed in this process.
#[derive(Default)]
pub(crate) struct InFlight {
    map: Mutex<HashMap<Key, Arc<Slot>>>,
}

/// Whose turn it is to compute a key.
pub(crate) enum Turn<'a> {
    /// This caller computes; others wait until the guard is dropped.
    Leader(LeaderGuard<'a>),
    /// Another caller computed it meanwhile: look again.
    Waited,
}

/// Held by the caller computing a key; dropping it (even by panic) wakes
/// the waiters.
pub(crate) struct LeaderGuard<'a> {
    owner: &'a InFlight,
    key: Key,
    slot: Arc<Slot>,
}

/// Locks a mutex whose data stays consistent even if a holder panicked.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl InFlight {
    /// Becomes the computer of `key`, or waits for the current one.
    pub(crate) fn begin(&self, function: &str, digest: Digest) -> Turn<'_> {
        let key = (function.to_string(), digest);
        let slot = {
            let mut map = lock(&self.map);
            match map.get(&key) {
                Some(slot) => Arc::clone(slot),
                None => {
                    let slot = Arc::new(Slot::default());
                    map.insert(key.clone(), Arc::clone(&slot));
                    return Turn::Leader(LeaderGuard {
                        owner: self,
                        key,
                        slot,
                    });
                }
            }
        };
        let mut done = lock(&slot.done);
        while !*done {
            done = slot.cv.wait(done).unwrap_or_else(|e| e.into_inner());
        }
        Turn::Waited
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        lock(&self.owner.map).remove(&self.key);
        *lock(&self.slot.done) = true;
        self.slot.cv.notify_all();
    }
}
