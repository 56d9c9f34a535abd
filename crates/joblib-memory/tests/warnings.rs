//! Warnings reach the user: on stderr when no `tracing` subscriber is
//! installed (read from a child process), to the subscriber otherwise,
//! nowhere when silenced.

use std::fs;
use std::process::Command;

use joblib_memory::{Error, FsStore, Memory, Warnings};
use serde::{Serialize, Serializer};

const CHILD: &str = "JOBLIB_MEMORY_WARNINGS_CHILD";

/// An argument whose `Serialize` always fails.
struct Unhashable;

impl Serialize for Unhashable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(
            "this argument refuses to be hashed",
        ))
    }
}

/// Every warning cause, twice each, in a cache at `dir`.
fn provoke_warnings(dir: &str, warnings: Warnings) {
    // An unusable directory still computes.
    let nowhere = Memory::new("/proc/joblib-cache-warnings-test");
    assert_eq!(nowhere.cache("w::nowhere", |x: u32| x + 1).call(1), 2);

    let memory = Memory::builder(dir).warnings(warnings).build().unwrap();
    let v1 = memory.cache("w::f", |x: u32| x * 2).version("1");
    assert_eq!(v1.call(1), 2);
    // The code changed: v1's results are cleared.
    let memory = Memory::builder(dir).warnings(warnings).build().unwrap();
    let v2 = memory.cache("w::f", |x: u32| x * 3).version("2");
    assert_eq!(v2.call(1), 3);
    // A damaged entry, twice.
    let out = FsStore::new(dir)
        .unwrap()
        .entry_dir("w::f", &v2.digest(&1u32).unwrap())
        .join("output.jbl");
    for _ in 0..2 {
        fs::write(&out, b"damaged").unwrap();
        assert_eq!(v2.call(1), 3);
    }
    // Arguments that cannot be hashed, twice.
    let g = memory.cache("w::g", |_: Unhashable| 7u8);
    assert_eq!(g.call(Unhashable), 7);
    assert_eq!(g.call(Unhashable), 7);
    // A store write that fails: a file stands where the function's
    // directory was.
    let k = memory.cache("w::k", |x: u32| x + 10);
    assert_eq!(k.call(1), 11);
    let kdir = FsStore::new(dir).unwrap().root().join("w").join("k");
    fs::remove_dir_all(&kdir).unwrap();
    fs::write(&kdir, b"in the way").unwrap();
    assert_eq!(k.call(5), 15);
    assert_eq!(k.call(5), 15);
}

/// Run by the child process, in the mode named by the variable.
#[test]
fn warnings_child_entry() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let (mode, dir) = spec.split_once(':').unwrap();
    match mode {
        "auto" => provoke_warnings(dir, Warnings::Auto),
        "silent" => provoke_warnings(dir, Warnings::Silent),
        "runlog" => {
            // A directory stands where the run log goes: appends fail.
            fs::create_dir_all(std::path::Path::new(dir).join("runs.jsonl")).unwrap();
            let memory = Memory::builder(dir).build().unwrap();
            let f = memory.cache("w::logged", |x: u32| x + 1);
            for x in [1, 1, 2] {
                assert_eq!(f.call(x), x + 1);
            }
        }
        "gitignore" => {
            // /proc exists, but nothing can be created in it: the store
            // cannot write its `.gitignore`, then the memory is unusable.
            for _ in 0..2 {
                let memory = Memory::new("/proc");
                assert_eq!(memory.cache("w::proc", |x: u32| x + 1).call(1), 2);
            }
        }
        "replaced" => {
            let memory = Memory::builder(dir).build().unwrap();
            let f = memory.cache("w::r", |x: u32| x + 1);
            for x in [1, 2] {
                assert_eq!(f.call(x), x + 1);
                // Its result file goes; the entry's directory stays.
                let entry = FsStore::new(dir)
                    .unwrap()
                    .entry_dir("w::r", &f.digest(&x).unwrap());
                fs::remove_file(entry.join("output.jbl")).unwrap();
                assert_eq!(f.call(x), x + 1);
                assert!(entry.join("output.jbl").is_file());
                assert_eq!(f.call(x), x + 1);
            }
        }
        "subscriber" => {
            let subscriber = tracing::subscriber::NoSubscriber::default();
            // Any real subscriber counts; this one drops what it gets.
            let dispatch = tracing::Dispatch::new(Counting(subscriber));
            tracing::dispatcher::with_default(&dispatch, || provoke_warnings(dir, Warnings::Auto));
        }
        other => panic!("unknown mode {other}"),
    }
}

/// A subscriber that is not the no-op one (it drops everything too).
struct Counting(tracing::subscriber::NoSubscriber);

impl tracing::Subscriber for Counting {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        self.0.enabled(m)
    }
    fn new_span(&self, a: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.0.new_span(a)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The `[Memory]` warning lines the child printed (verbose output lines
/// `[Memory] Calling` and `[Memory]<time>` excluded).
fn child_warnings(mode: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "warnings_child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, format!("{mode}:{}", dir.path().display()))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    stderr
        .lines()
        .filter(|l| l.starts_with("[Memory] ") && !l.starts_with("[Memory] Calling"))
        .map(str::to_string)
        .collect()
}

#[test]
fn without_a_subscriber_each_warning_reaches_stderr_once() {
    let lines = child_warnings("auto");
    let count = |text: &str| lines.iter().filter(|l| l.contains(text)).count();
    assert_eq!(count("cannot use the cache directory"), 1, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("/proc/joblib-cache-warnings-test")),
        "{lines:#?}"
    );
    assert_eq!(
        count("[Memory] Clearing function cache identified by w::f"),
        1,
        "{lines:#?}"
    );
    assert_eq!(count("unreadable"), 1, "{lines:#?}");
    assert_eq!(count("cannot hash the arguments of w::g"), 1, "{lines:#?}");
    assert_eq!(count("cannot store the result of w::k"), 1, "{lines:#?}");
    assert_eq!(lines.len(), 5, "{lines:#?}");
}

#[test]
fn with_a_subscriber_or_silenced_nothing_reaches_stderr() {
    let lines = child_warnings("subscriber");
    // `Memory::new`'s warning also goes to the subscriber.
    assert!(lines.is_empty(), "{lines:#?}");
    assert!(
        child_warnings("silent")
            .iter()
            .all(|l| l.contains("cannot use the cache"))
    );
}

#[cfg(target_os = "linux")]
#[test]
fn build_fails_for_a_location_that_cannot_be_created_or_written() {
    for (location, action) in [
        (
            "/proc/joblib-cache-build-test",
            "creating the cache directory",
        ),
        ("/proc", "writing a file in"),
    ] {
        match Memory::builder(location).build() {
            Err(e @ Error::Io { .. }) => {
                let text = e.to_string();
                assert!(text.starts_with(location), "{text}");
                assert!(text.contains(action), "{text}");
            }
            other => panic!("{location}: expected an I/O error, got {other:?}"),
        }
    }
}

#[test]
fn memory_new_on_an_unusable_location_computes() {
    let memory = Memory::builder("/proc/joblib-cache-new-test")
        .warnings(Warnings::Silent)
        .build();
    assert!(memory.is_err());
    let memory = Memory::new("/proc/joblib-cache-new-test");
    assert!(!memory.is_enabled());
    assert_eq!(memory.cache("w::h", |x: u8| x + 1).call(1), 2);
}

#[test]
fn a_run_log_that_cannot_be_written_is_said_once() {
    let lines = child_warnings("runlog");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("runs.jsonl") && lines[0].contains("not recorded in the run log"),
        "{lines:#?}"
    );
}

#[test]
fn a_gitignore_that_cannot_be_written_is_said() {
    let lines = child_warnings("gitignore");
    let count = |text: &str| lines.iter().filter(|l| l.contains(text)).count();
    // Each `Memory::new` (a warner of its own) says it once, with the
    // unusable directory after it.
    assert_eq!(count("cannot write /proc/.gitignore"), 2, "{lines:#?}");
    assert_eq!(count("cannot use the cache directory"), 2, "{lines:#?}");
    assert_eq!(lines.len(), 4, "{lines:#?}");
}

#[test]
fn replacing_an_entry_without_its_result_is_said_once() {
    let lines = child_warnings("replaced");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains("replacing a cached entry of w::r that has no result file"),
        "{lines:#?}"
    );
}
