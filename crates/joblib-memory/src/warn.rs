//! Warnings a user sees: to the `tracing` subscriber when one is
//! installed, otherwise to stderr once per cause and function.

use std::collections::HashSet;
use std::fmt;
use std::sync::Mutex;

/// Where a [`Memory`](crate::Memory)'s warnings go (an unusable directory,
/// results cleared because the code changed, arguments that cannot be
/// hashed, a damaged entry recomputed, a store write that failed). Chosen
/// with [`MemoryBuilder::warnings`](crate::MemoryBuilder::warnings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warnings {
    /// To the `tracing` subscriber if one is installed (globally or for the
    /// current thread), otherwise as [`Stderr`](Warnings::Stderr). The
    /// default.
    #[default]
    Auto,
    /// To stderr, once per cause and function for the life of the memory,
    /// whether or not a subscriber is installed.
    Stderr,
    /// Only as `tracing` events at the `WARN` level (nothing is seen
    /// without a subscriber).
    Tracing,
    /// Nowhere.
    Silent,
}

/// What a warning is about: stderr shows each cause once per function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Cause {
    /// The cache directory cannot be used.
    Unusable,
    /// The function's code changed and its results were cleared.
    CodeChanged,
    /// The arguments cannot be hashed.
    Unhashable,
    /// A stored result could not be read and is recomputed.
    Damaged,
    /// A result could not be stored.
    StoreFailed,
    /// The store could not be read (lookup, metadata, fingerprint).
    StoreRead,
    /// Cleaning up (removing entries, leftovers, size limits) failed.
    Cleanup,
    /// A record could not be appended to the run log.
    RunLog,
    /// The cache's `.gitignore` could not be written (git may pick the
    /// cache up, and the `joblib` command does not recognise it).
    GitIgnore,
    /// An entry directory without a result was replaced.
    Replaced,
}

impl Cause {
    /// The name recorded in the `tracing` event's `cause` field.
    fn name(self) -> &'static str {
        match self {
            Cause::Unusable => "unusable_directory",
            Cause::CodeChanged => "code_changed",
            Cause::Unhashable => "unhashable_arguments",
            Cause::Damaged => "damaged_entry",
            Cause::StoreFailed => "store_failed",
            Cause::StoreRead => "store_read_failed",
            Cause::Cleanup => "cleanup_failed",
            Cause::RunLog => "run_log_failed",
            Cause::GitIgnore => "gitignore_failed",
            Cause::Replaced => "entry_without_result_replaced",
        }
    }
}

/// Sends warnings where [`Warnings`] says, remembering what stderr has
/// already shown.
#[derive(Debug)]
pub(crate) struct Warner {
    mode: Warnings,
    shown: Mutex<HashSet<(Cause, String)>>,
}

/// Whether a `tracing` subscriber other than the no-op one is the current
/// default (a scoped one on this thread, or the global one).
fn subscriber_installed() -> bool {
    tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>())
}

impl Warner {
    pub(crate) fn new(mode: Warnings) -> Warner {
        Warner {
            mode,
            shown: Mutex::new(HashSet::new()),
        }
    }

    /// Emits `message` about `function` ("" for the memory as a whole).
    pub(crate) fn warn(&self, cause: Cause, function: &str, message: fmt::Arguments<'_>) {
        let to_stderr = match self.mode {
            Warnings::Silent => return,
            Warnings::Stderr => true,
            Warnings::Tracing => false,
            Warnings::Auto => !subscriber_installed(),
        };
        if !to_stderr {
            tracing::warn!(function, cause = cause.name(), "{message}");
            return;
        }
        let first = self
            .shown
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((cause, function.to_string()));
        if first {
            // One `eprintln!` per warning: stderr is locked for the line, so
            // threads' warnings do not interleave.
            eprintln!("[Memory] {message}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_shows_each_cause_and_function_once() {
        let w = Warner::new(Warnings::Stderr);
        w.warn(Cause::Damaged, "m::f", format_args!("one"));
        w.warn(Cause::Damaged, "m::f", format_args!("two"));
        w.warn(Cause::Damaged, "m::g", format_args!("three"));
        w.warn(Cause::StoreFailed, "m::f", format_args!("four"));
        let shown = w.shown.lock().unwrap();
        assert_eq!(shown.len(), 3);
        assert!(shown.contains(&(Cause::Damaged, "m::g".to_string())));
    }

    #[test]
    fn silent_and_tracing_record_nothing_for_stderr() {
        for mode in [Warnings::Silent, Warnings::Tracing] {
            let w = Warner::new(mode);
            w.warn(Cause::Damaged, "m::f", format_args!("x"));
            assert!(w.shown.lock().unwrap().is_empty());
        }
    }
}
