//! A writer killed mid-dump: its temporary file is recognised as a dead
//! writer's and removed by the next dump into that directory, while a live
//! writer's temporary is left alone. The child writer is this test binary,
//! re-executed with `JBL_CRASH_CHILD_DIR` set.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::ser::{Serialize, SerializeTuple, Serializer};

/// A value whose serialization writes a large block, then never finishes.
struct Stuck;

impl Serialize for Stuck {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&vec![1.5f64; 1 << 20])?;
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
        #[allow(unreachable_code)]
        t.end()
    }
}

const CHILD: &str = "JBL_CRASH_CHILD_DIR";

/// The child half of `a_killed_writers_temporary_is_swept_by_the_next_dump`:
/// does nothing unless started by it.
#[test]
fn crash_child_writer() {
    if let Ok(dir) = std::env::var(CHILD) {
        let _ = joblib_persist::dump(&Stuck, Path::new(&dir).join("stuck.jbl"));
    }
}

fn temporaries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    names.sort();
    names
}

#[cfg(target_os = "linux")]
#[test]
fn a_killed_writers_temporary_is_swept_by_the_next_dump() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child_writer", "--nocapture"])
        .env(CHILD, dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let leftover = loop {
        if let Some(name) = temporaries(dir.path()).pop() {
            break name;
        }
        assert!(
            Instant::now() < deadline,
            "the child never started its dump"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        leftover.starts_with(&format!(".jbl-{}-", child.id())),
        "{leftover}"
    );

    // The writer is alive: a dump next to it leaves its temporary alone.
    joblib_persist::dump(&1u8, dir.path().join("other.jbl")).unwrap();
    assert!(!joblib_persist::temp::is_dead_writers(&leftover));
    assert_eq!(temporaries(dir.path()), vec![leftover.clone()]);

    child.kill().unwrap();
    child.wait().unwrap();
    assert!(joblib_persist::temp::is_dead_writers(&leftover));
    assert_eq!(temporaries(dir.path()), vec![leftover.clone()]);

    // The next write to the directory removes the dead writer's file.
    joblib_persist::dump(&2u8, dir.path().join("other.jbl")).unwrap();
    assert_eq!(temporaries(dir.path()), Vec::<String>::new());
    assert_eq!(
        joblib_persist::load::<u8>(dir.path().join("other.jbl")).unwrap(),
        2
    );
    assert!(!dir.path().join("stuck.jbl").exists());
}

#[test]
fn other_files_and_old_style_temporaries_are_never_swept() {
    let dir = tempfile::tempdir().unwrap();
    // Old random names, other files, and a dead-looking writer (pid 1 with
    // a start time it never had) stamped by another machine.
    for name in [".jbl-Ab3xYz.tmp", "data.jbl", ".jbl-1-999999999-1-3.tmp"] {
        std::fs::write(dir.path().join(name), b"x").unwrap();
    }
    assert_eq!(joblib_persist::temp::sweep_dead(dir.path()).unwrap(), 0);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
}
