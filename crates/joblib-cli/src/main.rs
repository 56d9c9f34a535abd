//! The `joblib` command: see what a joblib cache holds, keep it clean, and
//! look inside `.jbl` files.
//!
//! ```text
//! joblib cache ls DIR                  functions, entries, bytes, hits, time saved
//! joblib cache show DIR FUNCTION       one function's entries, times served
//! joblib cache log DIR [--function F] [--since 2h] [--follow]
//! joblib cache report DIR -o report.html   charts in one HTML page
//! joblib cache verify DIR [--remove]   check every entry's checksums
//! joblib cache reduce DIR --bytes-limit 1G --items-limit N --age-limit 30d
//! joblib cache clear DIR [FUNCTION]
//! joblib inspect FILE.jbl [--verify]   header, blocks, outline of the value
//! ```
//!
//! Every command prints a table for people, or JSON with `--json`. Exit
//! codes: 0 success, 1 damage found, 2 bad usage or input, 3 a filesystem
//! operation failed. The commands, their output and the JSON fields are
//! documented in `docs/cli.md`.

mod cache;
mod cli;
mod failure;
mod inspect;
mod output;
mod report;
mod runs;
mod units;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{CacheCommand, Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(&args, cli.json),
        Command::Cache { command } => match command {
            CacheCommand::Ls(args) => cache::ls(&args, cli.json),
            CacheCommand::Show(args) => cache::show(&args, cli.json),
            CacheCommand::Clear(args) => cache::clear(&args, cli.json),
            CacheCommand::Reduce(args) => cache::reduce(&args, cli.json),
            CacheCommand::Verify(args) => cache::verify(&args, cli.json),
            CacheCommand::Log(args) => runs::log(&args, cli.json),
            CacheCommand::Report(args) => report::run(&args, cli.json),
        },
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("joblib: error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
