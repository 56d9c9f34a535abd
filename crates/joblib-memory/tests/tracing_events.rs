//! Tracing events for misses, hits, writes, evictions and warnings.
//!
//! Alone in its file: tracing caches per-callsite interest process-wide,
//! so events of tests running in parallel without the subscriber could be
//! filtered out.

use std::fs;
use std::sync::{Arc, Mutex};

use joblib_memory::{FsStore, Memory};

/// A subscriber that keeps the level and message of every event.
#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<(tracing::Level, String)>>>);

struct Message<'a>(&'a mut String);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), message));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn tracing_events_for_misses_hits_writes_evictions_and_warnings() {
    let recorder = Recorder::default();
    let dir = tempfile::tempdir().unwrap();
    tracing::subscriber::with_default(recorder.clone(), || {
        let memory = Memory::new(dir.path());
        let f = memory.cache("trace::f", |x: u32| x).version("1");
        f.call(1);
        f.call(1);
        memory.reduce_size(None, Some(0), None).unwrap();
        let g = Memory::new(dir.path())
            .cache("trace::f", |x: u32| x)
            .version("2");
        g.call(1);
        let out = FsStore::new(dir.path())
            .unwrap()
            .entry_dir("trace::f", &g.digest(&1u32).unwrap())
            .join("output.jbl");
        fs::write(out, b"junk").unwrap();
        g.call(1);
    });
    let events = recorder.0.lock().unwrap();
    let has = |level: tracing::Level, text: &str| {
        events.iter().any(|(l, m)| *l == level && m.contains(text))
    };
    assert!(has(tracing::Level::DEBUG, "cache miss"), "{events:?}");
    assert!(has(tracing::Level::DEBUG, "cache hit"), "{events:?}");
    assert!(has(tracing::Level::DEBUG, "stored"));
    assert!(has(tracing::Level::DEBUG, "evicted"));
    assert!(has(tracing::Level::WARN, "the function changed"));
    assert!(has(tracing::Level::WARN, "unreadable"));
}
