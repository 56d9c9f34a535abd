//! `load_mmap` of a compressed file loads it into memory with a warning
//! that reaches stderr when no `tracing` subscriber is installed, once per
//! process; `load_mmap_strict` refuses it. The warning is process-global
//! state, so the child that prints it is this test binary, re-executed.
#![cfg(feature = "lz4")]

use std::path::Path;
use std::process::Command;

use joblib_persist::{Compression, DumpOptions, Error, MmapMode, load_mmap, load_mmap_strict};

const CHILD: &str = "JBL_MMAP_WARNING_CHILD";

fn compressed(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("packed.jbl");
    DumpOptions::new()
        .compress(Compression::Lz4)
        .dump(&vec![2.5f64; 10_000], &path)
        .unwrap();
    path
}

/// The child half of `the_warning_reaches_stderr_once`: does nothing
/// unless started by it.
#[test]
fn warning_child() {
    if let Ok(path) = std::env::var(CHILD) {
        for _ in 0..3 {
            let v: Vec<f64> = load_mmap(&path, MmapMode::ReadOnly).unwrap();
            assert_eq!(v.len(), 10_000);
        }
    }
}

#[test]
fn the_warning_reaches_stderr_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = compressed(dir.path());
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "warning_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("joblib-persist: warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("packed.jbl"), "{stderr}");
    assert!(warnings[0].contains("lz4"), "{stderr}");
    assert!(warnings[0].contains("cannot be memory-mapped"), "{stderr}");
}

#[test]
fn strict_loads_refuse_a_compressed_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = compressed(dir.path());
    let err = load_mmap_strict::<Vec<f64>>(&path, MmapMode::ReadOnly).unwrap_err();
    match &err {
        Error::NotMappable { method, .. } => assert_eq!(method, "lz4"),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("cannot be memory-mapped"), "{err}");
    // An uncompressed file maps as usual.
    let plain = dir.path().join("plain.jbl");
    joblib_persist::dump(&vec![1u8; 10], &plain).unwrap();
    let v: Vec<u8> = load_mmap_strict(&plain, MmapMode::ReadOnly).unwrap();
    assert_eq!(v, [1; 10]);
}

/// Keeps the fields of the warnings it is sent; spans are not enabled.
#[cfg(feature = "tracing")]
#[derive(Default)]
struct Warnings(std::sync::Mutex<Vec<String>>);

#[cfg(feature = "tracing")]
impl tracing::field::Visit for Warnings {
    fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
        if let Ok(all) = self.0.get_mut() {
            all.push(format!("{}={v:?}", f.name()));
        }
    }
}

#[cfg(feature = "tracing")]
impl tracing::Subscriber for Warnings {
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Warnings::default();
        event.record(&mut fields);
        let text = fields.0.into_inner().unwrap().join(" ");
        self.0.lock().unwrap().push(text);
    }
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        meta.is_event() && *meta.level() == tracing::Level::WARN
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
}

/// With a subscriber installed, every occurrence is a `tracing` warning
/// (the subscriber decides what to show), not a line on stderr.
#[cfg(feature = "tracing")]
#[test]
fn with_a_subscriber_the_warning_is_a_tracing_event_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = compressed(dir.path());
    let warnings = std::sync::Arc::new(Warnings::default());
    tracing::subscriber::with_default(std::sync::Arc::clone(&warnings), || {
        for _ in 0..2 {
            let v: Vec<f64> = load_mmap(&path, MmapMode::ReadOnly).unwrap();
            assert_eq!(v.len(), 10_000);
        }
    });
    let seen = warnings.0.lock().unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[0].contains("cannot be memory-mapped"), "{seen:?}");
}
