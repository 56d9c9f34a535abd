//! Assembling the results of `run` in input order, written by the workers
//! straight into the vector the call returns.
//!
//! A batch covers the input indices `first..first + len`, and batches of one
//! call cover disjoint ranges. When the call knows its length, the results
//! vector is reserved up front and each batch writes its results into its
//! own range of the spare capacity, with no lock held and no copy afterwards
//! (as rayon's indexed `collect` does). The vector's length then grows over
//! the batches finished in order. A batch past the reserved room (an input
//! longer than its size hint) hands over an owned vector instead, appended
//! when its turn comes.

use std::collections::BTreeMap;
use std::mem::MaybeUninit;

/// Where a worker puts the results of a batch, in order.
pub(crate) trait Sink<R> {
    /// Appends one result.
    fn put(&mut self, result: R);
    /// Appends results; `Vec` does it with one capacity check for the
    /// `TrustedLen` iterators of infallible tasks.
    fn put_all<I: Iterator<Item = R>>(&mut self, results: I);
    /// Results written so far.
    fn written(&self) -> usize;
}

impl<R> Sink<R> for Vec<R> {
    fn put(&mut self, result: R) {
        Vec::push(self, result);
    }

    fn put_all<I: Iterator<Item = R>>(&mut self, results: I) {
        Extend::extend(self, results);
    }

    fn written(&self) -> usize {
        self.len()
    }
}

/// A batch's range of the results vector, lent to the worker running it.
///
/// Holds a raw pointer into the collector's vector: the vector neither moves
/// nor reads this range until the slot is handed back with
/// [`Collector::place`] (see the invariant on [`Collector`]).
pub(crate) struct Slot<R> {
    /// The range's start in the vector's buffer.
    start: *mut R,
    /// Results written at `start..start + written`.
    written: usize,
    /// The range's length.
    room: usize,
    /// The range's first index in the vector.
    first: usize,
}

impl<R> Sink<R> for Slot<R> {
    fn put(&mut self, result: R) {
        // Never past the range: a batch never holds more tasks than its
        // range, but a bound checked here keeps the write sound regardless.
        assert!(self.written < self.room, "a batch wrote past its results");
        // SAFETY: `written < room`, so the target lies in this slot's range
        // of the reserved buffer, which nothing else reads or writes while
        // the slot is out (invariant on `Collector`), and it holds no value
        // yet (each index is written once, in order).
        unsafe { self.start.add(self.written).write(result) };
        self.written += 1;
    }

    fn put_all<I: Iterator<Item = R>>(&mut self, results: I) {
        let mut results = results;
        // SAFETY: `start + written .. start + room` is this slot's unwritten
        // part of the reserved buffer, which nothing else reads or writes
        // while the slot is out (invariant on `Collector`); as
        // `MaybeUninit` it may hold no value yet.
        let spare = unsafe {
            std::slice::from_raw_parts_mut(
                self.start.add(self.written).cast::<MaybeUninit<R>>(),
                self.room - self.written,
            )
        };
        // One loop bounded by the room, with no check per result: it
        // compiles to what `Vec::extend` makes of a `TrustedLen` iterator.
        // Counted as they are written, so that a task panicking part way
        // leaves the results before it known, to be dropped with the slot.
        for (target, result) in spare.iter_mut().zip(results.by_ref()) {
            target.write(result);
            self.written += 1;
        }
        // `zip` stops at the room before taking a result past it.
        assert!(results.next().is_none(), "a batch wrote past its results");
    }

    fn written(&self) -> usize {
        self.written
    }
}

/// A finished batch waiting for the batches before it.
enum Placed<R> {
    /// Written in the results vector at `first..first + len`.
    InPlace { first: usize, len: usize },
    /// Past the reserved room: appended when its turn comes.
    Owned(Vec<R>),
}

/// Assembles the results of `run` in input order from batches finishing in
/// any order.
///
/// Invariant: `results` reallocates only when appending an owned batch, and
/// only when every batch before it is placed. A slot is lent only for a
/// range within the capacity at that time, so every slot lent before a
/// reallocation belongs to a batch before it (already placed), and none is
/// out while the buffer moves.
pub(crate) struct Collector<R> {
    results: Vec<R>,
    /// The batch whose results come next.
    next_seq: usize,
    /// Finished batches after `next_seq`.
    early: BTreeMap<usize, Placed<R>>,
}

impl<R> Collector<R> {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Collector {
            results: Vec::with_capacity(capacity),
            next_seq: 0,
            early: BTreeMap::new(),
        }
    }

    /// Lends the range `first..first + len` to the batch covering it, if the
    /// reserved room holds it. Each batch asks once: ranges of distinct
    /// batches never overlap.
    pub(crate) fn slot(&mut self, first: usize, len: usize) -> Option<Slot<R>> {
        let end = first.checked_add(len)?;
        if first < self.results.len() || end > self.results.capacity() {
            return None;
        }
        Some(Slot {
            // In bounds: `first <= capacity` (`wrapping_add` because `add`
            // would need an `unsafe` block for the same guarantee).
            start: self.results.as_mut_ptr().wrapping_add(first),
            written: 0,
            room: len,
            first,
        })
    }

    /// Takes back the slot of batch `seq`; `complete` if it ran all its
    /// tasks. The results of an incomplete batch are dropped: the call fails
    /// and nothing after it is ever placed.
    pub(crate) fn place(&mut self, seq: usize, slot: Slot<R>, complete: bool) {
        if complete && slot.written == slot.room {
            self.early.insert(
                seq,
                Placed::InPlace {
                    first: slot.first,
                    len: slot.written,
                },
            );
            self.advance();
        } else {
            // SAFETY: the slot wrote `written` values at `start..`, in its
            // range, and the range is never placed (not complete), so they
            // are dropped once, here.
            unsafe {
                std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                    slot.start,
                    slot.written,
                ));
            }
        }
    }

    /// Records the results of batch `seq`, finished in full with an owned
    /// vector.
    pub(crate) fn add(&mut self, seq: usize, batch: Vec<R>) {
        self.early.insert(seq, Placed::Owned(batch));
        self.advance();
    }

    /// Appends the finished batches that are next in order.
    fn advance(&mut self) {
        while let Some(entry) = self.early.first_entry() {
            if *entry.key() != self.next_seq {
                return;
            }
            match entry.remove() {
                Placed::InPlace { first, len } => {
                    // Ranges follow each other, so the next one starts where
                    // the placed results end.
                    debug_assert_eq!(first, self.results.len());
                    let end = first + len;
                    assert!(
                        first == self.results.len() && end <= self.results.capacity(),
                        "batch results out of order"
                    );
                    // SAFETY: `first..end` was written in full by the slot
                    // handed back complete, within the capacity, and it
                    // directly follows the initialized prefix.
                    unsafe { self.results.set_len(end) };
                }
                Placed::Owned(batch) => self.results.extend(batch),
            }
            self.next_seq += 1;
        }
    }

    /// Whether every batch finished so far has been placed.
    pub(crate) fn is_complete(&self) -> bool {
        self.early.is_empty()
    }

    /// The results placed in order; batches finished out of order and never
    /// reached are dropped.
    pub(crate) fn take(&mut self) -> Vec<R> {
        self.discard_early();
        std::mem::take(&mut self.results)
    }

    fn discard_early(&mut self) {
        let base = self.results.as_mut_ptr();
        for (_, placed) in std::mem::take(&mut self.early) {
            if let Placed::InPlace { first, len } = placed {
                // SAFETY: a complete slot wrote `first..first + len` in this
                // buffer (it has not moved since: see the invariant), and the
                // range is past the placed prefix, so its values are dropped
                // once, here.
                unsafe {
                    std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                        base.add(first),
                        len,
                    ));
                }
            }
        }
    }
}

impl<R> Drop for Collector<R> {
    fn drop(&mut self) {
        self.discard_early();
    }
}

#[cfg(test)]
mod tests {
    use super::{Collector, Sink};

    #[test]
    fn batches_write_in_place_and_are_placed_in_order() {
        let mut c = Collector::with_capacity(5);
        let mut a = c.slot(0, 2).unwrap();
        let mut b = c.slot(2, 2).unwrap();
        // A range already placed or past the room is refused.
        assert!(c.slot(4, 2).is_none());
        b.put_all(["c".to_owned(), "d".to_owned()].into_iter());
        c.place(1, b, true);
        assert!(!c.is_complete());
        a.put("a".to_owned());
        a.put("b".to_owned());
        c.place(0, a, true);
        // Past the room: an owned vector.
        c.add(2, vec!["e".to_owned(), "f".to_owned()]);
        assert!(c.is_complete());
        assert_eq!(c.take(), ["a", "b", "c", "d", "e", "f"]);
    }

    #[test]
    fn unplaced_results_are_dropped_once() {
        use std::rc::Rc;
        let value = Rc::new(());
        let mut c = Collector::with_capacity(6);
        let mut first = c.slot(0, 2).unwrap();
        let mut second = c.slot(2, 2).unwrap();
        let mut third = c.slot(4, 2).unwrap();
        second.put_all([Rc::clone(&value), Rc::clone(&value)].into_iter());
        c.place(1, second, true);
        // A batch cut short: its results go at once.
        third.put(Rc::clone(&value));
        c.place(2, third, false);
        assert_eq!(Rc::strong_count(&value), 3);
        first.put(Rc::clone(&value));
        c.place(0, first, false);
        // Batch 1 waits for batch 0, which never completes.
        assert_eq!(Rc::strong_count(&value), 3);
        assert!(c.take().is_empty());
        assert_eq!(Rc::strong_count(&value), 1);
        drop(c);
        assert_eq!(Rc::strong_count(&value), 1);
    }

    #[test]
    #[should_panic(expected = "past its results")]
    fn a_slot_never_writes_a_run_past_its_range() {
        let mut c = Collector::with_capacity(4);
        let mut s = c.slot(0, 2).unwrap();
        s.put(1);
        s.put_all([2, 3].into_iter());
    }

    #[test]
    fn a_run_fills_the_rest_of_a_slot() {
        let mut c = Collector::with_capacity(5);
        let mut s = c.slot(0, 5).unwrap();
        s.put("a".to_owned());
        s.put_all(["b", "c"].into_iter().map(str::to_owned));
        s.put_all(["d", "e"].into_iter().map(str::to_owned));
        assert_eq!(s.written(), 5);
        c.place(0, s, true);
        assert_eq!(c.take(), ["a", "b", "c", "d", "e"]);
    }

    #[test]
    #[should_panic(expected = "past its results")]
    fn a_slot_never_writes_past_its_range() {
        let mut c = Collector::with_capacity(4);
        let mut s = c.slot(0, 1).unwrap();
        s.put(1);
        s.put(2);
    }
}
