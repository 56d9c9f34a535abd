//! `joblib cache ls | show | clear | reduce | verify`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use joblib_memory::{
    CacheDir, FunctionSummary, FunctionTotals, Memory, RunLog, StoreBackend, StoredEntry,
    StoredOutput,
};
use rayon::prelude::*;
use serde::Serialize;

use crate::cli::{ClearArgs, DirArgs, ReduceArgs, ShowArgs, VerifyArgs};
use crate::failure::{DAMAGED, Failure};
use crate::output::{Table, print, print_json, time_for_json, time_for_people};
use crate::units::{format_duration, format_size};

/// The longest argument summary shown in a table cell, in characters.
const ARGS_WIDTH: usize = 60;

fn open(dir: &Path) -> Result<CacheDir, Failure> {
    CacheDir::open(dir).map_err(Failure::memory)
}

/// Fails for a function the cache has no directory for.
fn known_function(cache: &CacheDir, function: &str) -> Result<(), Failure> {
    if cache.has_function(function) {
        Ok(())
    } else {
        Err(Failure::bad_input(format!(
            "{}: no function named {function:?} in this cache (`joblib cache ls {}` lists them)",
            cache.root().display(),
            cache.root().display()
        )))
    }
}

/// One function in the JSON of `joblib cache ls`.
#[derive(Serialize)]
struct FunctionJson<'a> {
    function: &'a str,
    fingerprint: Option<&'a str>,
    entries: u64,
    bytes: u64,
    hits: Option<u64>,
    computes: Option<u64>,
    time_saved: Option<f64>,
    last_access: Option<String>,
}

#[derive(Serialize)]
struct LsJson<'a> {
    cache: String,
    functions: Vec<FunctionJson<'a>>,
    total: Totals,
}

#[derive(Serialize)]
struct Totals {
    functions: usize,
    entries: u64,
    bytes: u64,
    hits: Option<u64>,
    computes: Option<u64>,
    time_saved: Option<f64>,
}

/// `joblib cache ls DIR`.
pub(crate) fn ls(args: &DirArgs, json: bool) -> Result<ExitCode, Failure> {
    let cache = open(&args.dir)?;
    let functions = cache.functions().map_err(Failure::memory)?;
    let runs = crate::runs::load(&cache)?;
    if runs.is_none() {
        crate::runs::no_log_note(&cache, "hits, computes and time saved are");
    }
    // Per function, over the whole log (also the calls of entries since
    // removed); `None` without a log.
    let totals: Option<Vec<FunctionTotals>> = runs
        .as_ref()
        .map(|records| RunLog::open(cache.root()).totals(records));
    let of = |function: &str| -> Option<Option<&FunctionTotals>> {
        totals
            .as_ref()
            .map(|t| t.iter().find(|f| f.function == function))
    };
    let sum = |pick: fn(&FunctionTotals) -> u64| {
        totals.as_ref().map(|t| {
            t.iter()
                .filter(|f| functions.iter().any(|g| g.function == f.function))
                .map(pick)
                .sum::<u64>()
        })
    };
    let total = Totals {
        functions: functions.len(),
        entries: functions.iter().map(|f| f.entries).sum(),
        bytes: functions.iter().map(|f| f.bytes).sum(),
        hits: sum(|f| f.hits),
        computes: sum(|f| f.computes),
        time_saved: totals.as_ref().map(|t| {
            t.iter()
                .filter(|f| functions.iter().any(|g| g.function == f.function))
                .map(|f| f.time_saved.as_secs_f64())
                .sum()
        }),
    };
    if json {
        let report = LsJson {
            cache: args.dir.display().to_string(),
            functions: functions
                .iter()
                .map(|f| function_json(f, of(&f.function)))
                .collect(),
            total,
        };
        return print_json(&report, ExitCode::SUCCESS);
    }
    let mut out = String::new();
    let mut table = Table::new(&[
        "function",
        ">entries",
        ">size",
        ">hits",
        ">computes",
        ">time saved",
        "last access (UTC)",
    ]);
    for f in &functions {
        let (hits, computes, saved) = match of(&f.function) {
            None => ("-".to_string(), "-".to_string(), "-".to_string()),
            Some(t) => (
                t.map_or(0, |t| t.hits).to_string(),
                t.map_or(0, |t| t.computes).to_string(),
                format_duration(t.map_or(Duration::ZERO, |t| t.time_saved)),
            ),
        };
        table.row(vec![
            f.function.clone(),
            f.entries.to_string(),
            format_size(f.bytes),
            hits,
            computes,
            saved,
            f.last_access.map(time_for_people).unwrap_or_default(),
        ]);
    }
    table.render(&mut out);
    out.push_str(&format!(
        "{} functions, {} entries, {}",
        total.functions,
        total.entries,
        format_size(total.bytes)
    ));
    if let (Some(hits), Some(computes), Some(saved)) =
        (total.hits, total.computes, total.time_saved)
    {
        out.push_str(&format!(
            "; {hits} hits, {computes} computes, {} saved",
            format_duration(Duration::try_from_secs_f64(saved).unwrap_or_default())
        ));
    }
    out.push('\n');
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// `totals`: `None` without a run log, `Some(None)` for a function the
/// log never saw.
fn function_json<'a>(
    f: &'a FunctionSummary,
    totals: Option<Option<&FunctionTotals>>,
) -> FunctionJson<'a> {
    FunctionJson {
        function: &f.function,
        fingerprint: f.fingerprint.as_deref(),
        entries: f.entries,
        bytes: f.bytes,
        hits: totals.map(|t| t.map_or(0, |t| t.hits)),
        computes: totals.map(|t| t.map_or(0, |t| t.computes)),
        time_saved: totals.map(|t| t.map_or(0.0, |t| t.time_saved.as_secs_f64())),
        last_access: f.last_access.map(time_for_json),
    }
}

/// One entry in the JSON of `joblib cache show`.
#[derive(Serialize)]
struct EntryJson {
    digest: String,
    args: Option<String>,
    bytes: u64,
    computed_at: Option<String>,
    compute_time: Option<f64>,
    served: Option<u64>,
    last_access: String,
    fingerprint: Option<String>,
    problem: Option<String>,
}

#[derive(Serialize)]
struct ShowJson<'a> {
    cache: String,
    function: &'a str,
    entries: Vec<EntryJson>,
}

fn entry_json(e: &StoredEntry, served: Option<u64>) -> EntryJson {
    let meta = e.metadata.as_ref().ok();
    EntryJson {
        digest: e.digest.to_hex(),
        args: meta.map(|m| m.args.clone()),
        bytes: e.size,
        computed_at: meta.map(|m| time_for_json(m.computed_at())),
        compute_time: meta.map(|m| m.duration),
        served,
        last_access: time_for_json(e.last_access),
        fingerprint: meta.map(|m| m.fingerprint.clone()),
        problem: e.metadata.as_ref().err().cloned(),
    }
}

/// `joblib cache show DIR FUNCTION`.
pub(crate) fn show(args: &ShowArgs, json: bool) -> Result<ExitCode, Failure> {
    let cache = open(&args.dir)?;
    known_function(&cache, &args.function)?;
    let entries = cache
        .entries_of(&args.function)
        .map_err(Failure::memory)?
        .unwrap_or_default();
    let runs = crate::runs::load(&cache)?;
    if runs.is_none() {
        crate::runs::no_log_note(&cache, "times served are");
    }
    let per_entry = runs.as_deref().map(RunLog::entry_totals);
    // `None` without a run log; 0 for an entry the log never saw served.
    let served = |e: &StoredEntry| {
        per_entry.as_ref().map(|t| {
            t.get(&(args.function.clone(), e.digest.to_hex()))
                .map_or(0, |t| t.served)
        })
    };
    if json {
        let report = ShowJson {
            cache: args.dir.display().to_string(),
            function: &args.function,
            entries: entries.iter().map(|e| entry_json(e, served(e))).collect(),
        };
        return print_json(&report, ExitCode::SUCCESS);
    }
    let mut out = String::new();
    let mut table = Table::new(&[
        "digest",
        "arguments",
        ">size",
        "computed at (UTC)",
        ">compute time",
        ">served",
        "last access (UTC)",
    ]);
    let mut total_time = Duration::ZERO;
    for e in &entries {
        let (args_cell, computed, took) = match &e.metadata {
            Ok(m) => {
                total_time += m.duration();
                (
                    cut(&m.args, ARGS_WIDTH),
                    time_for_people(m.computed_at()),
                    format_duration(m.duration()),
                )
            }
            Err(why) => (format!("({why})"), String::new(), String::new()),
        };
        table.row(vec![
            e.digest.to_hex()[..12].to_string(),
            args_cell,
            format_size(e.size),
            computed,
            took,
            served(e).map_or_else(|| "-".to_string(), |n| n.to_string()),
            time_for_people(e.last_access),
        ]);
    }
    table.render(&mut out);
    out.push_str(&format!(
        "{}: {} entries, {}, {} of computation stored\n",
        args.function,
        entries.len(),
        format_size(entries.iter().map(|e| e.size).sum()),
        format_duration(total_time)
    ));
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// `text` cut to `width` characters, with an ellipsis.
pub(crate) fn cut(text: &str, width: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(width).collect();
    if chars.next().is_some() {
        let mut head: String = head.chars().take(width - 1).collect();
        head.push('…');
        head
    } else {
        head
    }
}

#[derive(Serialize)]
struct ClearJson<'a> {
    cache: String,
    function: Option<&'a str>,
    removed: usize,
}

/// `joblib cache clear DIR [FUNCTION]`.
pub(crate) fn clear(args: &ClearArgs, json: bool) -> Result<ExitCode, Failure> {
    let cache = open(&args.dir)?;
    let store = cache.store();
    let removed = match &args.function {
        Some(function) => {
            known_function(&cache, function)?;
            store.clear_function(function).map_err(Failure::memory)?
        }
        None => {
            let count = store.entries().map_err(Failure::memory)?.len();
            store.clear().map_err(Failure::memory)?;
            count
        }
    };
    if json {
        let report = ClearJson {
            cache: args.dir.display().to_string(),
            function: args.function.as_deref(),
            removed,
        };
        return print_json(&report, ExitCode::SUCCESS);
    }
    let what = match &args.function {
        Some(f) => format!("entries of {f}"),
        None => "entries".to_string(),
    };
    print(&format!("removed {removed} {what}\n"))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct ReduceJson {
    cache: String,
    removed: usize,
    freed_bytes: u64,
    kept: usize,
}

/// `joblib cache reduce DIR --bytes-limit .. --items-limit .. --age-limit ..`.
pub(crate) fn reduce(args: &ReduceArgs, json: bool) -> Result<ExitCode, Failure> {
    // Checked first so that the builder does not create a missing directory.
    open(&args.dir)?;
    let memory = Memory::builder(&args.dir)
        .auto_reduce(false)
        .build()
        .map_err(Failure::memory)?;
    let reduced = memory
        .reduce_size(args.bytes_limit, args.items_limit, args.age_limit)
        .map_err(Failure::memory)?;
    if json {
        let report = ReduceJson {
            cache: args.dir.display().to_string(),
            removed: reduced.removed,
            freed_bytes: reduced.freed_bytes,
            kept: reduced.kept,
        };
        return print_json(&report, ExitCode::SUCCESS);
    }
    print(&format!(
        "removed {} entries ({}), kept {}\n",
        reduced.removed,
        format_size(reduced.freed_bytes),
        reduced.kept
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// A damaged entry found by `joblib cache verify`.
#[derive(Serialize)]
struct Damaged {
    function: String,
    digest: String,
    problem: String,
    removed: bool,
}

#[derive(Serialize)]
struct VerifyJson {
    cache: String,
    checked: usize,
    damaged: Vec<Damaged>,
}

/// `joblib cache verify DIR [--remove]`.
pub(crate) fn verify(args: &VerifyArgs, json: bool) -> Result<ExitCode, Failure> {
    let cache = open(&args.dir)?;
    let store = cache.store();
    let entries = store.entries().map_err(Failure::memory)?;
    let results: Vec<Option<Damaged>> = entries
        .par_iter()
        .map(|e| {
            let problem = check_entry(store, &e.function, &e.digest)?;
            let removed = args.remove && store.remove(&e.function, &e.digest).unwrap_or(false);
            Some(Damaged {
                function: e.function.clone(),
                digest: e.digest.to_hex(),
                problem,
                removed,
            })
        })
        .collect();
    let mut damaged: Vec<Damaged> = results.into_iter().flatten().collect();
    damaged.sort_by(|a, b| (&a.function, &a.digest).cmp(&(&b.function, &b.digest)));
    let code = if damaged.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(DAMAGED)
    };
    if args.remove && damaged.iter().any(|d| !d.removed) {
        eprintln!("joblib: error: some damaged entries could not be removed");
    }
    if json {
        let report = VerifyJson {
            cache: args.dir.display().to_string(),
            checked: entries.len(),
            damaged,
        };
        return print_json(&report, code);
    }
    let mut out = String::new();
    if !damaged.is_empty() {
        let mut table = Table::new(&["function", "digest", "removed", "problem"]);
        for d in &damaged {
            table.row(vec![
                d.function.clone(),
                d.digest[..12].to_string(),
                if d.removed { "yes" } else { "no" }.to_string(),
                d.problem.clone(),
            ]);
        }
        table.render(&mut out);
    }
    out.push_str(&format!(
        "checked {} entries: {} damaged{}\n",
        entries.len(),
        damaged.len(),
        if args.remove && !damaged.is_empty() {
            ", removed"
        } else {
            ""
        }
    ));
    print(&out)?;
    Ok(code)
}

/// What is wrong with an entry; `None` when it is sound or was removed
/// while we looked.
fn check_entry(
    store: &joblib_memory::FsStore,
    function: &str,
    digest: &joblib_hash::Digest,
) -> Option<String> {
    let path = match store.output(function, digest) {
        Ok(Some(StoredOutput::File(path))) => path,
        Ok(_) => return None,
        Err(e) => return Some(e.to_string()),
    };
    match joblib_persist::verify(&path) {
        Ok(()) => {}
        Err(joblib_persist::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            return None;
        }
        Err(e) => return Some(e.to_string()),
    }
    match store.metadata(function, digest) {
        Ok(Some(_)) => None,
        Ok(None) if !path.exists() => None,
        Ok(None) => Some("metadata.json is missing".to_string()),
        Err(e) => Some(e.to_string()),
    }
}
