//! joblib's `verbose` progress lines, the optional progress bar, and
//! `tracing` events.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Where progress lines go.
#[derive(Clone)]
pub(crate) enum Sink {
    Stderr,
    Stdout,
    /// Lines kept in memory, for tests.
    #[cfg_attr(not(test), allow(dead_code))]
    Memory(Arc<Mutex<Vec<String>>>),
}

/// Progress of one call, updated by the calling thread as batches complete.
pub(crate) struct Progress {
    verbose: u32,
    label: String,
    sink: Sink,
    start: Instant,
    pre_dispatch: usize,
    #[cfg(feature = "indicatif")]
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub(crate) fn new(verbose: u32, n_jobs_arg: i32, pre_dispatch: usize) -> Self {
        Progress {
            verbose,
            label: format!("Parallel(n_jobs={n_jobs_arg})"),
            // joblib writes to stdout from verbose 50 up, stderr below.
            sink: if verbose >= 50 {
                Sink::Stdout
            } else {
                Sink::Stderr
            },
            start: Instant::now(),
            pre_dispatch,
            #[cfg(feature = "indicatif")]
            bar: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn with_sink(mut self, sink: Sink) -> Self {
        self.sink = sink;
        self
    }

    /// Shows a progress bar of completed tasks on stderr.
    #[cfg(feature = "indicatif")]
    pub(crate) fn with_bar(mut self, bar: indicatif::ProgressBar) -> Self {
        self.bar = Some(bar);
        self
    }

    fn print(&self, message: &str) {
        let line = format!("[{}]: {message}", self.label);
        match &self.sink {
            // Progress output is best effort: a closed stderr is no reason to
            // fail the computation.
            Sink::Stderr => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            Sink::Stdout => {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
            Sink::Memory(lines) => lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line),
        }
    }

    pub(crate) fn started(&self, backend: &str, workers: usize) {
        #[cfg(feature = "tracing")]
        tracing::debug!(target: "joblib_parallel", backend, workers, "parallel call started");
        if self.verbose > 0 {
            self.print(&format!(
                "Using backend {backend} with {workers} concurrent workers."
            ));
        }
    }

    /// Called after each completed batch.
    pub(crate) fn batch_done(&self, done: &Counts, batch_len: usize, elapsed: Duration) {
        #[cfg(feature = "tracing")]
        tracing::debug!(
            target: "joblib_parallel",
            batch = done.completed_batches,
            size = batch_len,
            elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            completed = done.completed_tasks,
            dispatched = done.dispatched_tasks,
            "batch completed"
        );
        #[cfg(not(feature = "tracing"))]
        let _ = (batch_len, elapsed);
        #[cfg(feature = "indicatif")]
        if let Some(bar) = &self.bar {
            if done.input_exhausted {
                bar.set_length(u64::try_from(done.dispatched_tasks).unwrap_or(u64::MAX));
            }
            bar.set_position(u64::try_from(done.completed_tasks).unwrap_or(u64::MAX));
        }
        if self.verbose == 0 || done.all_done() {
            // The final line is printed by `finished`.
            return;
        }
        let elapsed = self.start.elapsed().as_secs_f64();
        if !done.input_exhausted {
            if verbosity_filter(done.dispatched_batches, self.verbose) {
                return;
            }
            self.print(&format!(
                "Done {:3} tasks      | elapsed: {}",
                done.completed_tasks,
                short_format_time(elapsed)
            ));
            return;
        }
        let index = done.completed_tasks;
        let total = done.dispatched_tasks;
        if index == 0 {
            return;
        }
        if index != 1 {
            let to_i = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
            let cursor = to_i(total) - to_i(index) + 1 - to_i(self.pre_dispatch);
            let frequency = to_i(total) / i64::from(self.verbose) + 1;
            let is_last = index + 1 == total;
            if is_last || cursor.rem_euclid(frequency) != 0 {
                return;
            }
        }
        let remaining = elapsed / index as f64 * (total - index) as f64;
        self.print(&format!(
            "Done {index:3} out of {total:3} | elapsed: {} remaining: {}",
            short_format_time(elapsed),
            short_format_time(remaining)
        ));
    }

    /// Called once when every task has completed.
    pub(crate) fn finished(&self, tasks: usize) {
        #[cfg(feature = "tracing")]
        tracing::debug!(target: "joblib_parallel", tasks, "parallel call finished");
        #[cfg(feature = "indicatif")]
        if let Some(bar) = &self.bar {
            bar.set_length(u64::try_from(tasks).unwrap_or(u64::MAX));
            bar.finish();
        }
        if self.verbose > 0 {
            self.print(&format!(
                "Done {tasks:3} out of {tasks:3} | elapsed: {} finished",
                short_format_time(self.start.elapsed().as_secs_f64())
            ));
        }
    }
}

/// Counters of a call, as seen by the calling thread.
#[derive(Debug, Default, Clone)]
pub(crate) struct Counts {
    pub(crate) dispatched_batches: usize,
    pub(crate) dispatched_tasks: usize,
    pub(crate) completed_batches: usize,
    pub(crate) completed_tasks: usize,
    pub(crate) input_exhausted: bool,
}

impl Counts {
    fn all_done(&self) -> bool {
        self.input_exhausted && self.completed_tasks == self.dispatched_tasks
    }
}

/// joblib's `short_format_time`: `"   1.4s"` under a minute, `" 2.5min"` above.
pub(crate) fn short_format_time(seconds: f64) -> String {
    if seconds > 60.0 {
        format!("{:4.1}min", seconds / 60.0)
    } else {
        format!(" {seconds:5.1}s")
    }
}

/// joblib's `_verbosity_filter`: `true` to stay quiet for this batch. Lines
/// get rarer as the count grows, less so the higher the verbosity.
pub(crate) fn verbosity_filter(index: usize, verbose: u32) -> bool {
    if verbose == 0 {
        return true;
    }
    if verbose > 10 || index == 0 {
        return false;
    }
    let scale = 0.5 * f64::from(11 - verbose).powi(2);
    let now = (index as f64 / scale).sqrt();
    let next = ((index + 1) as f64 / scale).sqrt();
    now.floor() == next.floor()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_spaced_like_joblib() {
        assert_eq!(short_format_time(1.4), "   1.4s");
        assert_eq!(short_format_time(0.0), "   0.0s");
        assert_eq!(short_format_time(59.94), "  59.9s");
        assert_eq!(short_format_time(150.0), " 2.5min");
    }

    #[test]
    fn the_filter_thins_out() {
        assert!(verbosity_filter(5, 0));
        assert!(!verbosity_filter(5, 11));
        assert!(!verbosity_filter(0, 1));
        // verbose 10: scale 0.5, a line whenever sqrt(2 * index) crosses an integer.
        let printed: Vec<usize> = (1..20).filter(|&i| !verbosity_filter(i, 10)).collect();
        assert_eq!(printed, [1, 4, 7, 12, 17]);
    }

    fn capture(verbose: u32) -> (Progress, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let p = Progress::new(verbose, 2, 4).with_sink(Sink::Memory(Arc::clone(&lines)));
        (p, lines)
    }

    #[test]
    fn finished_line_matches_joblib() {
        let (p, lines) = capture(1);
        p.started("threads", 2);
        p.finished(10);
        let lines = lines.lock().unwrap();
        assert_eq!(
            lines[0],
            "[Parallel(n_jobs=2)]: Using backend threads with 2 concurrent workers."
        );
        assert_eq!(
            lines[1],
            "[Parallel(n_jobs=2)]: Done  10 out of  10 | elapsed:    0.0s finished"
        );
    }

    #[test]
    fn silent_without_verbose() {
        let (p, lines) = capture(0);
        p.started("threads", 2);
        let counts = Counts {
            dispatched_batches: 1,
            dispatched_tasks: 1,
            completed_batches: 1,
            completed_tasks: 1,
            input_exhausted: false,
        };
        p.batch_done(&counts, 1, Duration::ZERO);
        p.finished(1);
        assert!(lines.lock().unwrap().is_empty());
    }

    #[test]
    fn intermediate_lines() {
        let (p, lines) = capture(100);
        let mut counts = Counts {
            dispatched_batches: 3,
            dispatched_tasks: 3,
            completed_batches: 1,
            completed_tasks: 1,
            input_exhausted: false,
        };
        p.batch_done(&counts, 1, Duration::ZERO);
        counts.input_exhausted = true;
        counts.dispatched_tasks = 10;
        p.batch_done(&counts, 1, Duration::ZERO);
        let lines = lines.lock().unwrap();
        assert_eq!(
            lines[0],
            "[Parallel(n_jobs=2)]: Done   1 tasks      | elapsed:    0.0s"
        );
        assert!(
            lines[1].starts_with(
                "[Parallel(n_jobs=2)]: Done   1 out of  10 | elapsed:    0.0s remaining:"
            ),
            "{}",
            lines[1]
        );
    }

    #[cfg(feature = "indicatif")]
    #[test]
    fn the_bar_counts_completed_tasks() {
        let bar = indicatif::ProgressBar::hidden();
        let p = Progress::new(0, 2, 4).with_bar(bar.clone());
        let mut counts = Counts {
            dispatched_batches: 3,
            dispatched_tasks: 30,
            completed_batches: 1,
            completed_tasks: 10,
            input_exhausted: false,
        };
        p.batch_done(&counts, 10, Duration::ZERO);
        assert_eq!(bar.position(), 10);
        counts.completed_tasks = 20;
        counts.input_exhausted = true;
        p.batch_done(&counts, 10, Duration::ZERO);
        assert_eq!((bar.position(), bar.length()), (20, Some(30)));
        p.finished(30);
        assert!(bar.is_finished());
        assert_eq!(bar.length(), Some(30));
    }
}
