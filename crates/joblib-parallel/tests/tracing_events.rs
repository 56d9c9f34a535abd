//! A `tracing` event for every completed batch, on the calling thread.
#![cfg(feature = "tracing")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use joblib_parallel::{Parallel, delayed};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Counts the events whose message is "batch completed".
struct BatchCounter {
    batches: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
}

struct MessageIs<'a>(&'a str, bool);

impl tracing::field::Visit for MessageIs<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" && format!("{value:?}") == self.0 {
            self.1 = true;
        }
    }
}

impl Subscriber for BatchCounter {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target() == "joblib_parallel"
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut batch = MessageIs("batch completed", false);
        event.record(&mut batch);
        if batch.1 {
            self.batches.fetch_add(1, Ordering::SeqCst);
        }
        let mut call = MessageIs("parallel call started", false);
        event.record(&mut call);
        if call.1 {
            self.calls.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn one_event_per_batch() {
    let batches = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let subscriber = BatchCounter {
        batches: Arc::clone(&batches),
        calls: Arc::clone(&calls),
    };
    tracing::subscriber::with_default(subscriber, || {
        let out = Parallel::new()
            .n_jobs(2)
            .batch_size(5)
            .run((0..20).map(|i| delayed(|i: i32| i, i)))
            .unwrap();
        assert_eq!(out.len(), 20);
    });
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(batches.load(Ordering::SeqCst), 4);
}
