//! The command line, as clap parses it.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};

use crate::units::{parse_duration, parse_size};

/// See what a joblib cache holds, keep it clean, and look inside .jbl files.
///
/// Exit codes: 0 success; 1 damage found (a damaged cache entry or .jbl
/// file); 2 bad usage or bad input (a missing path, not a cache, not a .jbl
/// file, an unknown function); 3 a filesystem operation failed.
#[derive(Debug, Parser)]
#[command(name = "joblib", version, about, long_about)]
pub(crate) struct Cli {
    /// Print JSON instead of tables (field names are documented in docs/cli.md).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Describe a .jbl file: header, blocks and an outline of the stored value.
    Inspect(InspectArgs),
    /// List, show, verify, reduce or clear a cache directory.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The .jbl file.
    pub(crate) file: PathBuf,
    /// Also check every checksum of every block (reads the whole file).
    #[arg(long)]
    pub(crate) verify: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CacheCommand {
    /// Per function: entries, bytes, hits, computes, time saved, last access.
    Ls(DirArgs),
    /// One function's entries: arguments, size, computed at, compute time, times served, last access.
    Show(ShowArgs),
    /// Remove every entry, or those of one function.
    Clear(ClearArgs),
    /// Remove least recently used entries until every given limit holds.
    Reduce(ReduceArgs),
    /// Check every entry's checksums and report the damaged ones.
    Verify(VerifyArgs),
    /// The run log: every call of a cached function, newest last.
    Log(LogArgs),
    /// Write one self-contained HTML page of charts about the cache and its run log.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// The cache directory.
    pub(crate) dir: PathBuf,
    /// Only the calls of this function.
    #[arg(long)]
    pub(crate) function: Option<String>,
    /// Only calls since then: a duration ago (2h, 30m, 1d) or a time in UTC (2026-12-03T14:00:00Z).
    #[arg(long, value_parser = parse_since)]
    pub(crate) since: Option<Since>,
    /// Keep printing calls as they are made, until interrupted.
    #[arg(long)]
    pub(crate) follow: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The cache directory.
    pub(crate) dir: PathBuf,
    /// The HTML file to write.
    #[arg(short, long, default_value = "report.html")]
    pub(crate) output: PathBuf,
}

/// The start of `--since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Since {
    /// This long before now.
    Ago(Duration),
    /// This time.
    At(SystemTime),
}

/// Parses `--since`: a duration (`2h`, `1h 30m`) or an RFC 3339 time in
/// UTC (`2026-12-03T14:00:00Z`, `2026-12-03 14:00:00`).
fn parse_since(text: &str) -> Result<Since, String> {
    let text = text.trim();
    if let Ok(d) = humantime::parse_duration(text) {
        return Ok(Since::Ago(d));
    }
    humantime::parse_rfc3339_weak(text)
        .map(Since::At)
        .map_err(|_| {
            format!(
                "{text:?} is neither a duration (2h, 30m, 1d) nor a time in UTC (2026-12-03T14:00:00Z)"
            )
        })
}

#[derive(Debug, Args)]
pub(crate) struct DirArgs {
    /// The cache directory (the location given to Memory).
    pub(crate) dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The cache directory.
    pub(crate) dir: PathBuf,
    /// The function's name, as `joblib cache ls` prints it.
    pub(crate) function: String,
}

#[derive(Debug, Args)]
pub(crate) struct ClearArgs {
    /// The cache directory.
    pub(crate) dir: PathBuf,
    /// Only this function's entries (not those of functions nested below its name).
    pub(crate) function: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("limits").required(true).multiple(true)))]
pub(crate) struct ReduceArgs {
    /// The cache directory.
    pub(crate) dir: PathBuf,
    /// Keep at most this many bytes of results: 500M, 1G, 1.5GiB (K, M, G, T are powers of 1024, as in joblib).
    #[arg(long, value_parser = parse_size, group = "limits")]
    pub(crate) bytes_limit: Option<u64>,
    /// Keep at most this many entries.
    #[arg(long, group = "limits")]
    pub(crate) items_limit: Option<usize>,
    /// Remove entries not used for longer than this: 30d, 12h, 1h 30m.
    #[arg(long, value_parser = parse_duration, group = "limits")]
    pub(crate) age_limit: Option<Duration>,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The cache directory.
    pub(crate) dir: PathBuf,
    /// Remove the damaged entries (they would be recomputed on their next call).
    #[arg(long)]
    pub(crate) remove: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn reduce_needs_a_limit() {
        assert!(Cli::try_parse_from(["joblib", "cache", "reduce", "d"]).is_err());
        let cli = Cli::try_parse_from([
            "joblib",
            "cache",
            "reduce",
            "d",
            "--bytes-limit",
            "1G",
            "--age-limit",
            "30d",
        ])
        .unwrap();
        let Command::Cache {
            command: CacheCommand::Reduce(r),
        } = cli.command
        else {
            panic!()
        };
        assert_eq!(r.bytes_limit, Some(1 << 30));
        assert_eq!(r.age_limit, Some(Duration::from_secs(30 * 86400)));
        assert_eq!(r.items_limit, None);
    }

    #[test]
    fn since_is_a_duration_or_a_time() {
        assert_eq!(parse_since("2h"), Ok(Since::Ago(Duration::from_secs(7200))));
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400);
        assert_eq!(parse_since("1970-01-02T00:00:00Z"), Ok(Since::At(at)));
        assert_eq!(parse_since("1970-01-02 00:00:00"), Ok(Since::At(at)));
        let err = parse_since("yesterday").unwrap_err();
        assert!(err.contains("neither a duration"), "{err}");
    }
}
