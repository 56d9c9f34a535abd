//! The run log as the commands read it (`cache ls`, `cache show`,
//! `cache report`), and `joblib cache log`.

use std::fs;
use std::io::{self, ErrorKind, Write};
use std::path::Path;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, SystemTime};

use joblib_memory::{CacheDir, RunLog, RunOutcome, RunRecord};

use crate::cli::{LogArgs, Since};
use crate::failure::Failure;
use crate::output::{Table, print, time_for_people};
use crate::units::{format_duration, format_size};

/// The run log's file and the rotated one, as docs/cache-layout.md names
/// them.
const LOG_FILES: [&str; 2] = ["runs.1.jsonl", "runs.jsonl"];
/// How often `--follow` looks for new records.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

/// The records of a cache's run log; `None` when the cache has no log (it
/// is turned off, or nothing was called yet). Damaged lines, skipped by
/// the reader, are counted in a note on stderr.
pub(crate) fn load(cache: &CacheDir) -> Result<Option<Vec<RunRecord>>, Failure> {
    let root = cache.root();
    if !LOG_FILES.iter().any(|f| root.join(f).exists()) {
        return Ok(None);
    }
    let records = RunLog::open(root).records().map_err(Failure::memory)?;
    let lines = log_lines(root);
    if lines > records.len() {
        note(&format!(
            "{} damaged line(s) of the run log in {} were skipped",
            lines - records.len(),
            root.display()
        ));
    }
    Ok(Some(records))
}

/// Non-empty complete lines in the log files (unreadable files count 0:
/// reading them already failed or will).
fn log_lines(root: &Path) -> usize {
    LOG_FILES
        .iter()
        .filter_map(|f| fs::read(root.join(f)).ok())
        .map(|bytes| {
            bytes
                .split(|&b| b == b'\n')
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .count()
        })
        .sum()
}

/// A note on stderr: not an error, the command goes on.
pub(crate) fn note(text: &str) {
    eprintln!("joblib: note: {text}");
}

/// The note for a cache without a run log.
pub(crate) fn no_log_note(cache: &CacheDir, what: &str) {
    note(&format!(
        "{} has no run log (runs.jsonl): {what} unknown (the log is off, `MemoryBuilder::run_log(false)`, or nothing was called yet)",
        cache.root().display()
    ));
}

/// The `outcome` cell: `hit`, `computed`, `recomputed (expired)`, ...
fn outcome_cell(r: &RunRecord) -> String {
    let outcome = match r.outcome {
        RunOutcome::Hit => "hit",
        RunOutcome::Computed => "computed",
        RunOutcome::Recomputed => "recomputed",
        RunOutcome::NotStored => "not stored",
        _ => "other",
    };
    match r.reason {
        Some(reason) => {
            let reason = serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                .unwrap_or_default();
            format!("{outcome} ({reason})")
        }
        None => outcome.to_string(),
    }
}

/// The table of `records` for people.
fn render(records: &[RunRecord], header: bool) -> String {
    let mut table = Table::new(&[
        "time (UTC)",
        "function",
        "outcome",
        ">took",
        ">size",
        "arguments",
    ]);
    for r in records {
        table.row(vec![
            time_for_people(r.at()),
            r.function.clone(),
            outcome_cell(r),
            format_duration(r.duration()),
            format_size(r.bytes),
            crate::cache::cut(&r.args, 60),
        ]);
    }
    let mut out = String::new();
    table.render(&mut out);
    if header {
        out
    } else {
        out.split_once('\n')
            .map(|(_, rows)| rows.to_string())
            .unwrap_or_default()
    }
}

/// One JSON object per record and line, as the log stores it.
fn render_json(records: &[RunRecord]) -> Result<String, Failure> {
    let mut out = String::new();
    for r in records {
        let line =
            serde_json::to_string(r).map_err(|e| Failure::io(format!("writing JSON: {e}")))?;
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// Writes `text` to stdout; `false` when the reader is gone (a closed
/// pipe), so that `--follow` stops.
fn emit(text: &str) -> Result<bool, Failure> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(Failure::io(format!("writing the output: {e}"))),
    }
}

/// `joblib cache log DIR [--function F] [--since T] [--follow]`.
pub(crate) fn log(args: &LogArgs, json: bool) -> Result<ExitCode, Failure> {
    let cache = CacheDir::open(&args.dir).map_err(Failure::memory)?;
    let since = args.since.as_ref().map(|s| match *s {
        Since::Ago(d) => SystemTime::now()
            .checked_sub(d)
            .unwrap_or(SystemTime::UNIX_EPOCH),
        Since::At(t) => t,
    });
    let keep = |r: &RunRecord| {
        args.function.as_deref().is_none_or(|f| r.function == f)
            && since.is_none_or(|t| r.at() >= t)
    };
    let log = RunLog::open(cache.root());
    let follower = args.follow.then(|| log.follow());
    let records = match load(&cache)? {
        Some(records) => records,
        None if args.follow => Vec::new(),
        None => {
            no_log_note(&cache, "calls are");
            Vec::new()
        }
    };
    let Some(mut follower) = follower else {
        let shown: Vec<RunRecord> = records.into_iter().filter(|r| keep(r)).collect();
        let text = if json {
            render_json(&shown)?
        } else if shown.is_empty() {
            String::new()
        } else {
            render(&shown, true)
        };
        print(&text)?;
        return Ok(ExitCode::SUCCESS);
    };
    // The history, then what the follower adds. Its first poll returns the
    // whole current file, which the history ends with: skip that overlap.
    let first = follower.poll().map_err(Failure::memory)?;
    let overlap = overlap(&records, &first);
    let mut header = !json;
    let mut batch: Vec<RunRecord> = records
        .into_iter()
        .chain(first.into_iter().skip(overlap))
        .filter(|r| keep(r))
        .collect();
    loop {
        if !batch.is_empty() {
            let text = if json {
                render_json(&batch)?
            } else {
                render(&batch, header)
            };
            header = false;
            if !emit(&text)? {
                return Ok(ExitCode::SUCCESS);
            }
        }
        thread::sleep(FOLLOW_EVERY);
        batch = follower.poll().map_err(Failure::memory)?;
        batch.retain(|r| keep(r));
    }
}

/// How many leading records of `current` (the whole current log file) the
/// `history` (rotated file, then the current one, read a moment earlier)
/// already ends with.
fn overlap(history: &[RunRecord], current: &[RunRecord]) -> usize {
    let Some(head) = current.first() else {
        return 0;
    };
    (0..history.len())
        .filter(|&start| &history[start] == head)
        .find(|&start| {
            let tail = &history[start..];
            tail.len() <= current.len() && current[..tail.len()] == *tail
        })
        .map_or(0, |start| history.len() - start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(time: f64) -> RunRecord {
        serde_json::from_str(&format!(
            r#"{{"time":{time},"function":"f","fingerprint":"v","digest":"ab","args":"1","outcome":"hit","seconds":0.1,"bytes":3,"pid":1,"host":"h"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn overlap_finds_the_current_file_in_the_history() {
        let r: Vec<RunRecord> = (0..6).map(|t| record(t as f64)).collect();
        // Rotated 0..2, current 2..4 when read; 2..6 when first polled.
        assert_eq!(overlap(&r[..4], &r[2..6]), 2);
        // Rotated in between: the new file shares nothing.
        assert_eq!(overlap(&r[..4], &r[4..6]), 0);
        assert_eq!(overlap(&[], &r[..2]), 0);
        assert_eq!(overlap(&r[..2], &[]), 0);
    }

    #[test]
    fn outcomes_read_well() {
        let mut r = record(1.0);
        assert_eq!(outcome_cell(&r), "hit");
        r.outcome = RunOutcome::Recomputed;
        r.reason = Some(joblib_memory::RunReason::CodeChanged);
        assert_eq!(outcome_cell(&r), "recomputed (code changed)");
    }
}
