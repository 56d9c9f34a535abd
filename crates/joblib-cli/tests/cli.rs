//! Runs the real `joblib` binary on caches written by joblib-memory (one of
//! them by several processes at once) and on files written by
//! joblib-persist, damaged ones included.

use std::path::Path;
use std::process::Command;

use joblib_memory::Memory;
use ndarray::Array2;
use serde::Serialize;
use serde_json::Value;

mod common;
use common::{joblib, path, stderr, stdout};

/// Runs `joblib --json args`, checks the exit code and parses the output.
fn json(args: &[&str], code: i32) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = joblib(&all);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// A failure: the exit code, and one line on stderr naming the problem,
/// never a panic.
fn fails(args: &[&str], code: i32, needle: &str) {
    let out = joblib(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("joblib: error: "), "{err}");
    assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
}

#[derive(Serialize)]
struct Model {
    name: String,
    weights: Array2<f64>,
    bias: Vec<f32>,
    scores: Vec<u16>,
    epochs: u32,
}

fn model() -> Model {
    Model {
        name: "ridge".into(),
        weights: Array2::from_shape_fn((300, 20), |(i, j)| (i * j) as f64),
        bias: vec![0.25; 100],
        scores: vec![3, 1, 2],
        epochs: 7,
    }
}

#[test]
fn inspect_describes_header_blocks_and_fields() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.jbl");
    joblib_persist::dump(&model(), &file).unwrap();

    let out = joblib(&["inspect", path(&file), "--verify"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for needle in [
        ".jbl version 1",
        "compression  none",
        "every checksum matches",
        "weights: ndarray f64 (300, 20), block 0",
        "bias: seq of 100 f32, block 1",
        "scores: seq of 3 uint [3, 1, 2]",
        "name: str \"ridge\"",
        "epochs: uint 7",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in\n{text}");
    }
    // Every sequence and map was shown whole.
    assert!(!text.contains("more"), "{text}");

    let v = json(&["inspect", path(&file), "--verify"], 0);
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["compression"], "none");
    assert_eq!(v["verified"], true);
    let info = joblib_persist::inspect(&file).unwrap();
    assert_eq!(v["bytes"], info.file_len);
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0]["dtype"], "f64");
    assert_eq!(blocks[0]["shape"], serde_json::json!([300, 20]));
    assert_eq!(blocks[0]["offset"], info.blocks[0].offset);
    assert_eq!(blocks[1]["bytes"], 400);
    assert_eq!(v["outline"]["kind"], "map");
    assert_eq!(v["outline"]["len"], 5);
    // Without --verify the field says it was not asked for.
    assert_eq!(json(&["inspect", path(&file)], 0)["verified"], Value::Null);
}

#[test]
fn inspect_reads_compressed_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.jbl.zst");
    joblib_persist::dump(&model(), &file).unwrap();
    let v = json(&["inspect", path(&file), "--verify"], 0);
    assert_eq!(v["compression"], "zstd");
    assert_eq!(v["verified"], true);
    let stored = v["blocks"][0]["stored_bytes"].as_u64().unwrap();
    assert!(stored < 48_000, "{stored}");
}

#[test]
fn inspect_rejects_damaged_and_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.jbl");
    joblib_persist::dump(&model(), &file).unwrap();
    let good = std::fs::read(&file).unwrap();

    // A flipped byte in the array data: the header and outline still
    // read, the verification fails.
    let mut bytes = good.clone();
    bytes[64 + 1000] ^= 0x40;
    let damaged = dir.path().join("damaged.jbl");
    std::fs::write(&damaged, &bytes).unwrap();
    assert_eq!(joblib(&["inspect", path(&damaged)]).status.code(), Some(0));
    fails(&["inspect", path(&damaged), "--verify"], 1, "checksum");
    let v = json(&["inspect", path(&damaged), "--verify"], 1);
    assert_eq!(v["verified"], false);
    assert!(v["verify_error"].as_str().unwrap().contains("damaged.jbl"));

    let truncated = dir.path().join("truncated.jbl");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    fails(&["inspect", path(&truncated)], 1, "truncated.jbl");

    let text = dir.path().join("notes.jbl");
    std::fs::write(&text, "just some text, not a joblib file\n").unwrap();
    fails(&["inspect", path(&text)], 2, "not a .jbl file");
    let empty = dir.path().join("empty.jbl");
    std::fs::write(&empty, "").unwrap();
    let out = joblib(&["inspect", path(&empty)]);
    assert!(matches!(out.status.code(), Some(1 | 2)), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1);

    fails(
        &["inspect", path(&dir.path().join("missing.jbl"))],
        2,
        "missing.jbl",
    );
    fails(&["inspect", path(dir.path())], 2, "is a directory");
}

/// A cache with two functions, one nested below the other's name.
fn small_cache(dir: &Path) {
    let memory = Memory::builder(dir).build().unwrap();
    let square = memory
        .cache("stats::square", |x: u64| vec![x; 100])
        .version("1");
    for x in 0..5 {
        square.call(x);
    }
    let fit = memory
        .cache("stats::square::fit", |(name, n): (String, usize)| {
            Array2::<f64>::zeros((n, 3)).mapv(|v| v + name.len() as f64)
        })
        .version("2");
    fit.call(("ridge".to_string(), 50));
    fit.call(("lasso".to_string(), 10));
}

#[test]
fn ls_and_show_describe_a_cache() {
    let dir = tempfile::tempdir().unwrap();
    small_cache(dir.path());
    let root = path(dir.path());

    let v = json(&["cache", "ls", root], 0);
    let functions = v["functions"].as_array().unwrap();
    assert_eq!(functions.len(), 2);
    assert_eq!(functions[0]["function"], "stats::square");
    assert_eq!(functions[0]["entries"], 5);
    assert_eq!(functions[0]["fingerprint"], "version:1");
    assert_eq!(functions[1]["function"], "stats::square::fit");
    assert_eq!(functions[1]["entries"], 2);
    assert!(functions[1]["last_access"].as_str().unwrap().ends_with('Z'));
    // Sizes agree with what the store itself reports.
    use joblib_memory::StoreBackend;
    let store = joblib_memory::FsStore::new(dir.path()).unwrap();
    let bytes: u64 = store.entries().unwrap().iter().map(|e| e.size).sum();
    assert_eq!(v["total"]["bytes"], bytes);
    assert_eq!(v["total"]["entries"], 7);

    let out = joblib(&["cache", "ls", root]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with("function"), "{text}");
    assert!(text.contains("stats::square::fit"), "{text}");
    assert!(text.contains("2 functions, 7 entries"), "{text}");

    let v = json(&["cache", "show", root, "stats::square::fit"], 0);
    let entries = v["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let args: Vec<&str> = entries
        .iter()
        .map(|e| e["args"].as_str().unwrap())
        .collect();
    assert!(args.contains(&r#"("ridge", 50)"#), "{args:?}");
    for e in entries {
        assert!(e["compute_time"].as_f64().unwrap() >= 0.0);
        assert!(e["bytes"].as_u64().unwrap() > 0);
        assert_eq!(e["digest"].as_str().unwrap().len(), 32);
        assert_eq!(e["problem"], Value::Null);
    }
    let text = stdout(&joblib(&["cache", "show", root, "stats::square"]));
    assert!(text.contains("stats::square: 5 entries"), "{text}");

    fails(
        &["cache", "show", root, "stats::cube"],
        2,
        "no function named \"stats::cube\"",
    );
    // `stats` only holds the directories of `stats::...` functions.
    fails(
        &["cache", "show", root, "stats"],
        2,
        "no function named \"stats\"",
    );
}

#[test]
fn commands_refuse_what_is_not_a_cache() {
    let dir = tempfile::tempdir().unwrap();
    let precious = dir.path().join("thesis.tex");
    std::fs::write(&precious, "do not delete").unwrap();
    let root = path(dir.path());
    fails(&["cache", "clear", root], 2, "not a joblib cache");
    fails(
        &["cache", "reduce", root, "--items-limit", "0"],
        2,
        "not a joblib cache",
    );
    fails(
        &["cache", "verify", root, "--remove"],
        2,
        "not a joblib cache",
    );
    fails(&["cache", "ls", root], 2, "not a joblib cache");
    assert!(precious.exists());
    let missing = dir.path().join("nowhere");
    fails(&["cache", "ls", path(&missing)], 2, "nowhere");
    assert!(!missing.exists(), "reading a cache must not create it");
    fails(&["cache", "ls", path(&precious)], 2, "not a directory");
    // Usage errors are clap's, with its exit code 2.
    let out = joblib(&["cache", "reduce", root, "--bytes-limit", "1X"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown size unit"));
}

/// Damages the result of one entry of `function`: flips a byte in its
/// middle (`truncate` false) or cuts it in half.
fn damage(dir: &Path, function: &str, which: usize, truncate: bool) {
    let cache = joblib_memory::CacheDir::open(dir).unwrap();
    let mut entries = cache.entries_of(function).unwrap().unwrap();
    entries.sort_by_key(|e| e.digest.to_hex());
    let file = cache
        .store()
        .entry_dir(function, &entries[which].digest)
        .join("output.jbl");
    let mut bytes = std::fs::read(&file).unwrap();
    if truncate {
        bytes.truncate(bytes.len() / 2);
    } else {
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
    }
    std::fs::write(&file, bytes).unwrap();
}

#[test]
fn verify_reports_and_removes_damaged_entries() {
    let dir = tempfile::tempdir().unwrap();
    small_cache(dir.path());
    let root = path(dir.path());
    let v = json(&["cache", "verify", root], 0);
    assert_eq!(v["checked"], 7);
    assert_eq!(v["damaged"], serde_json::json!([]));

    damage(dir.path(), "stats::square", 1, false);
    damage(dir.path(), "stats::square::fit", 0, true);
    let out = joblib(&["cache", "verify", root]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("checked 7 entries: 2 damaged"), "{text}");

    let v = json(&["cache", "verify", root, "--remove"], 1);
    let damaged = v["damaged"].as_array().unwrap();
    assert_eq!(damaged.len(), 2);
    assert_eq!(damaged[0]["function"], "stats::square");
    assert!(damaged[0]["problem"].as_str().unwrap().contains("checksum"));
    assert_eq!(damaged[1]["function"], "stats::square::fit");
    assert!(damaged.iter().all(|d| d["removed"] == true));

    let v = json(&["cache", "verify", root], 0);
    assert_eq!(v["checked"], 5);
    assert_eq!(json(&["cache", "ls", root], 0)["total"]["entries"], 5);
}

#[test]
fn an_entry_with_broken_metadata_is_shown_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    small_cache(dir.path());
    let root = path(dir.path());
    let cache = joblib_memory::CacheDir::open(dir.path()).unwrap();
    let entry = &cache.entries_of("stats::square").unwrap().unwrap()[0];
    let meta = cache
        .store()
        .entry_dir("stats::square", &entry.digest)
        .join("metadata.json");
    std::fs::write(&meta, "{ not json").unwrap();

    let v = json(&["cache", "show", root, "stats::square"], 0);
    let broken: Vec<&Value> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["problem"] != Value::Null)
        .collect();
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0]["digest"], entry.digest.to_hex());
    assert_eq!(broken[0]["args"], Value::Null);
    assert!(
        broken[0]["problem"]
            .as_str()
            .unwrap()
            .contains("invalid metadata")
    );
    let text = stdout(&joblib(&["cache", "show", root, "stats::square"]));
    assert!(text.contains("invalid metadata"), "{text}");

    let v = json(&["cache", "verify", root], 1);
    assert_eq!(v["damaged"][0]["digest"], entry.digest.to_hex());
    assert_eq!(v["damaged"][0]["removed"], false);
}

#[test]
fn reduce_and_clear_use_the_memory_rules() {
    let dir = tempfile::tempdir().unwrap();
    small_cache(dir.path());
    let root = path(dir.path());

    let v = json(&["cache", "reduce", root, "--items-limit", "4"], 0);
    assert_eq!(
        (v["removed"].as_u64(), v["kept"].as_u64()),
        (Some(3), Some(4))
    );
    assert!(v["freed_bytes"].as_u64().unwrap() > 0);
    let out = joblib(&[
        "cache",
        "reduce",
        root,
        "--bytes-limit",
        "1G",
        "--age-limit",
        "30d",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains("removed 0 entries"),
        "{}",
        stdout(&out)
    );

    let before = json(&["cache", "ls", root], 0);
    let fit_entries = before["functions"][1]["entries"].as_u64().unwrap();
    let v = json(&["cache", "clear", root, "stats::square::fit"], 0);
    assert_eq!(v["removed"].as_u64(), Some(fit_entries));
    fails(
        &["cache", "clear", root, "stats::cube"],
        2,
        "no function named",
    );
    let after = json(&["cache", "ls", root], 0);
    assert_eq!(after["total"]["entries"], 4 - fit_entries);

    let out = joblib(&["cache", "clear", root]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("removed"), "{}", stdout(&out));
    let v = json(&["cache", "ls", root], 0);
    assert_eq!(v["total"]["entries"], 0);
    // Still a cache: its marker is kept.
    assert!(dir.path().join(".gitignore").exists());
}

/// The environment variable naming the cache a writer process fills.
const WRITER_CACHE: &str = "JOBLIB_CLI_TEST_WRITER_CACHE";
/// How many writer processes, and how many entries each writes.
const WRITERS: usize = 4;
const SHARED: u64 = 30;
const OWN: u64 = 20;

/// Not a test of its own: the body of the writer processes started by
/// `ls_and_verify_a_cache_written_by_several_processes` (it does nothing
/// unless that test started it).
#[test]
fn writer_process() {
    let Ok(cache) = std::env::var(WRITER_CACHE) else {
        return;
    };
    let id: u64 = std::env::var("JOBLIB_CLI_TEST_WRITER_ID")
        .unwrap()
        .parse()
        .unwrap();
    let memory = Memory::builder(cache).build().unwrap();
    let shared = memory
        .cache("race::shared", |x: u64| vec![x as f64; 1000])
        .version("1");
    let own = memory
        .cache("race::own", |(id, x): (u64, u64)| vec![id * 1000 + x; 100])
        .version("1");
    for x in 0..SHARED {
        shared.call(x);
        if x < OWN {
            own.call((id, x));
        }
    }
}

#[test]
fn ls_and_verify_a_cache_written_by_several_processes() {
    let dir = tempfile::tempdir().unwrap();
    // Created first so that every writer finds the same cache.
    Memory::builder(dir.path()).build().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WRITERS)
        .map(|id| {
            Command::new(&exe)
                .args(["--exact", "writer_process", "--test-threads=1"])
                .env(WRITER_CACHE, dir.path())
                .env("JOBLIB_CLI_TEST_WRITER_ID", id.to_string())
                .output_spawned()
        })
        .collect();
    let root = path(dir.path());
    // Listing and verifying while the writers write: half-written entries
    // are never counted or reported, and nothing fails.
    let mut seen = 0;
    for _ in 0..5 {
        let v = json(&["cache", "ls", root], 0);
        let entries = v["total"]["entries"].as_u64().unwrap();
        assert!(
            entries >= seen && entries <= WRITERS as u64 * OWN + SHARED,
            "{v}"
        );
        seen = entries;
        assert_eq!(
            json(&["cache", "verify", root], 0)["damaged"],
            serde_json::json!([])
        );
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let v = json(&["cache", "ls", root], 0);
    let functions = v["functions"].as_array().unwrap();
    assert_eq!(functions.len(), 2, "{v}");
    assert_eq!(functions[0]["function"], "race::own");
    assert_eq!(functions[0]["entries"], WRITERS as u64 * OWN);
    assert_eq!(functions[1]["function"], "race::shared");
    assert_eq!(functions[1]["entries"], SHARED);
    let v = json(&["cache", "verify", root], 0);
    assert_eq!(v["checked"], WRITERS as u64 * OWN + SHARED);
    let v = json(&["cache", "show", root, "race::shared"], 0);
    assert_eq!(v["entries"].as_array().unwrap().len() as u64, SHARED);
}

/// `Command::spawn` with the output captured.
trait SpawnCaptured {
    fn output_spawned(&mut self) -> std::process::Child;
}

impl SpawnCaptured for Command {
    fn output_spawned(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

#[test]
fn inspect_outlines_python_joblib_files() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../joblib-persist/tests/fixtures/python");
    let ridge = fixtures.join("v16_ridge.pkl");
    let out = joblib(&["inspect", path(&ridge)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Python joblib pickle"), "{text}");
    assert!(text.contains("sklearn.linear_model._ridge.Ridge"), "{text}");
    assert!(text.contains("\"coef_\": ndarray <f8 shape [2]"), "{text}");
    let v = json(&["inspect", path(&fixtures.join("v16_mixed_xz.pkl"))], 0);
    assert_eq!(v["format"], "python-joblib");
    assert_eq!(v["compression"], "xz");
    assert!(
        v["outline"]
            .as_str()
            .unwrap()
            .contains("\"f64_2d\": ndarray <f8 shape [3, 4]")
    );
}
