//! `joblib cache report`, read back by a real browser: Debian's headless
//! `chromium` loads the page, and the test counts the bars of each chart
//! in the DOM it dumps. It also takes a screenshot (set
//! `JOBLIB_REPORT_SCREENSHOT=docs/cli-report.png` to keep it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use joblib_memory::Memory;

mod common;
use common::{joblib, path};

/// A cache with three functions, hits on two of them.
fn demo_cache(dir: &Path) {
    let memory = Memory::builder(dir).verbose(0).build().unwrap();
    let fit = memory
        .cache("models::fit", |(alpha, n): (u32, usize)| {
            std::thread::sleep(Duration::from_millis(40));
            vec![f64::from(alpha); n]
        })
        .version("1");
    let features = memory
        .cache("data::features", |n: usize| {
            std::thread::sleep(Duration::from_millis(15));
            (0..n).map(|i| i as f64).collect::<Vec<f64>>()
        })
        .version("1");
    let load = memory
        .cache("data::load", |name: String| name.repeat(200))
        .version("1");
    for round in 0..3 {
        for alpha in 0..4 {
            fit.call((alpha, 2000));
        }
        for n in [1000, 5000] {
            features.call(n);
        }
        if round == 0 {
            load.call("train".to_string());
        }
    }
}

/// Runs chromium with `args`, killed after a minute.
fn chromium(args: &[&str], profile: &Path) -> Output {
    let found = Command::new("chromium").arg("--version").output();
    if found.is_err() {
        panic!(
            "chromium is not installed: install it with `apt-get install -y chromium` (Debian); .ci/run does so on CI"
        );
    }
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// The attributes of every `<rect class="bar" ...>` in `dom`.
fn bars(dom: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(at) = rest.find("<rect ") {
        let tag_end = rest[at..].find('>').map_or(rest.len(), |e| at + e);
        let tag = &rest[at + 6..tag_end];
        rest = &rest[tag_end..];
        let mut attrs = Vec::new();
        let mut t = tag;
        while let Some(eq) = t.find("=\"") {
            let name = t[..eq].trim().to_string();
            let value_end = t[eq + 2..].find('"').map_or(t.len(), |e| eq + 2 + e);
            attrs.push((name, t[eq + 2..value_end].to_string()));
            t = &t[(value_end + 1).min(t.len())..];
        }
        if attrs.iter().any(|(n, v)| n == "class" && v == "bar") {
            out.push(attrs);
        }
    }
    out
}

fn attr<'a>(bar: &'a [(String, String)], name: &str) -> &'a str {
    bar.iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

#[test]
fn the_report_renders_its_charts_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    demo_cache(&cache);
    let report = dir.path().join("report.html");
    let out = joblib(&["cache", "report", path(&cache), "-o", path(&report)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&report).unwrap();
    // Self-contained: nothing to fetch, nothing to run.
    for banned in ["<script", "<link", "src=", "@import", "url(", "https://"] {
        assert!(!html.contains(banned), "the page holds {banned:?}");
    }
    assert_eq!(
        html.matches("http://").count(),
        html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );

    let profile = dir.path().join("profile");
    let url = format!("file://{}", report.display());
    let dumped = chromium(&["--dump-dom", &url], &profile);
    let dom = String::from_utf8_lossy(&dumped.stdout);
    assert!(dom.contains("joblib cache report"), "{dom}");
    let bars = bars(&dom);
    let of = |chart: &str| -> Vec<&Vec<(String, String)>> {
        bars.iter()
            .filter(|b| attr(b, "data-chart") == chart)
            .collect()
    };
    // One bar per function in each bar chart.
    let saved = of("time-saved");
    assert_eq!(saved.len(), 3, "{dom}");
    let size = of("size");
    assert_eq!(size.len(), 3, "{dom}");
    // Sorted, largest first: fit saved the most (8 hits of 40 ms).
    assert_eq!(attr(saved[0], "data-function"), "models::fit");
    let fit_saved: f64 = attr(saved[0], "data-value").parse().unwrap();
    assert!(fit_saved >= 8.0 * 0.04, "{fit_saved}");
    assert_eq!(attr(saved[2], "data-function"), "data::load");
    assert_eq!(attr(saved[2], "data-value"), "0");
    // The timeline's bars add up to the calls: 4 + 2 + 1 computes, 8 + 4 hits.
    let count = |kind: &str| -> u64 {
        of("timeline")
            .iter()
            .filter(|b| attr(b, "data-kind") == kind)
            .map(|b| attr(b, "data-value").parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!((count("compute"), count("hit")), (7, 12));
    // The slowest computations: fit's four first.
    let rows = dom.matches("<tr class=\"slow\">").count();
    assert_eq!(rows, 7, "{dom}");
    let first_row = &dom[dom.find("<tr class=\"slow\">").unwrap()..];
    assert!(first_row[..200].contains("models::fit"), "{first_row}");

    // A screenshot: a real PNG image of the page.
    let shot: PathBuf = std::env::var_os("JOBLIB_REPORT_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.path().join("report.png"));
    let _ = std::fs::remove_file(&shot);
    let taken = chromium(
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1200,1600",
            "--hide-scrollbars",
            &url,
        ],
        &profile,
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {}: {e}; chromium said {}",
            shot.display(),
            String::from_utf8_lossy(&taken.stderr)
        )
    });
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(png.len() > 10_000, "{} bytes", png.len());
}

#[test]
fn a_report_without_a_log_still_shows_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::builder(dir.path())
        .verbose(0)
        .run_log(false)
        .build()
        .unwrap();
    memory.cache("q::f", |x: u64| x).call(1);
    let report = dir.path().join("r.html");
    let out = joblib(&[
        "--json",
        "cache",
        "report",
        path(dir.path()),
        "-o",
        path(&report),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no run log"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["calls"], serde_json::Value::Null);
    assert_eq!(v["functions"], 1);
    let html = std::fs::read_to_string(&report).unwrap();
    assert_eq!(html.matches("data-chart=\"size\" data-function").count(), 1);
    assert_eq!(html.matches("data-chart=\"timeline\" data-kind").count(), 0);
    assert!(html.contains("no run log"));

    let missing = joblib(&[
        "cache",
        "report",
        path(&dir.path().join("nope")),
        "-o",
        path(&report),
    ]);
    assert_eq!(missing.status.code(), Some(2));
    let unwritable = joblib(&[
        "cache",
        "report",
        path(dir.path()),
        "-o",
        path(&dir.path().join("no/such/dir/r.html")),
    ]);
    assert_eq!(unwritable.status.code(), Some(3));
    let err = String::from_utf8_lossy(&unwritable.stderr);
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("joblib: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("writing the report"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
