//! Writing results: aligned tables for people, JSON for scripts, times in
//! UTC.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::SystemTime;

use serde::Serialize;

use crate::failure::Failure;

/// A table with a header row, printed with columns aligned.
pub(crate) struct Table {
    header: Vec<&'static str>,
    /// Which columns are right-aligned (numbers).
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns; a name starting with `>` is
    /// right-aligned (the `>` is not printed).
    pub(crate) fn new(columns: &[&'static str]) -> Table {
        Table {
            header: columns.iter().map(|c| c.trim_start_matches('>')).collect(),
            right: columns.iter().map(|c| c.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn render(&self, out: &mut String) {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                if i > 0 {
                    line.push_str("  ");
                }
                if self.right[i] {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if i + 1 < row.len() {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
}

/// A time in UTC for tables: `2026-12-03 13:30:28`.
pub(crate) fn time_for_people(t: SystemTime) -> String {
    let mut s = humantime::format_rfc3339_seconds(t).to_string();
    s = s.replacen('T', " ", 1);
    s.trim_end_matches('Z').to_string()
}

/// A time in UTC for JSON: RFC 3339, `2026-12-03T13:30:28.123Z`.
pub(crate) fn time_for_json(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Prints `text` to stdout. A closed pipe (`joblib cache ls DIR | head`)
/// ends the output quietly.
pub(crate) fn print(text: &str) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::io(format!("writing the output: {e}"))),
    }
}

/// Prints `value` as pretty JSON and returns `code`.
pub(crate) fn print_json<T: Serialize>(value: &T, code: ExitCode) -> Result<ExitCode, Failure> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::io(format!("writing JSON: {e}")))?;
    text.push('\n');
    print(&text)?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let mut t = Table::new(&["name", ">size"]);
        t.row(vec!["a".into(), "1 B".into()]);
        t.row(vec!["longer".into(), "10.5 KiB".into()]);
        let mut out = String::new();
        t.render(&mut out);
        assert_eq!(
            out,
            "name        size\na            1 B\nlonger  10.5 KiB\n"
        );
    }

    #[test]
    fn times_are_utc() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(86_400_500);
        assert_eq!(time_for_people(t), "1970-01-02 00:00:00");
        assert_eq!(time_for_json(t), "1970-01-02T00:00:00.500Z");
    }
}
