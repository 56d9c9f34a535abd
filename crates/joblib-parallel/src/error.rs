use std::time::Duration;

/// The error type a task (or a backend) may hand back: any error that can
/// cross threads.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a parallel call.
///
/// Every variant that concerns one task carries its `index`: its position
/// (from 0) in the input iterator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A fallible task (see [`try_delayed`](fn@crate::try_delayed)) returned an
    /// error. Tasks not yet started when this was seen were not started.
    #[error("task {index} failed: {source}")]
    Task {
        /// Position of the task in the input.
        index: usize,
        /// The error the task returned.
        source: BoxError,
    },
    /// A task panicked. The panic was caught in the worker; the pool is
    /// still usable.
    #[error("task {index} panicked: {message}")]
    Panic {
        /// Position of the task in the input.
        index: usize,
        /// The panic message (`"<non-string panic payload>"` if the payload
        /// was neither a `&str` nor a `String`).
        message: String,
    },
    /// A task ran for longer than the configured
    /// [`timeout`](crate::Parallel::timeout). A thread cannot be killed, so
    /// on threads the task keeps running in its worker, but its result is
    /// dropped; the `"processes"` backend kills the worker process running
    /// it and starts another.
    #[error("task {index} did not finish within the timeout of {timeout:?}")]
    Timeout {
        /// Position of the task in the input.
        index: usize,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The input iterator yielded an `Err` instead of a task.
    #[error("producing task {index} failed: {source}")]
    Input {
        /// Position in the input where the error was yielded.
        index: usize,
        /// The error the input iterator yielded.
        source: BoxError,
    },
    /// The input iterator panicked while producing a task.
    #[error("the input iterator panicked while producing task {index}: {message}")]
    InputPanic {
        /// Position in the input of the task being produced.
        index: usize,
        /// The panic message.
        message: String,
    },
    /// The backend could not run the batch holding a task (for example its
    /// worker died, or it refused the work).
    #[error("backend {backend:?} failed to run task {index}: {source}")]
    Backend {
        /// Name of the backend.
        backend: String,
        /// Position of the first task of the batch that was lost.
        index: usize,
        /// What the backend reported.
        source: BoxError,
    },
    /// A worker process died while it ran a batch of tasks (it aborted, was
    /// killed by a signal, ran out of memory, ...). The pool replaces it;
    /// the next call works as usual.
    #[error(
        "worker process {pid} died running task {index}{}: it {reason}",
        if *tasks > 1 { format!(" (or one of the {} tasks of its batch)", tasks) } else { String::new() }
    )]
    WorkerDied {
        /// Position of the first task of the batch the worker held.
        index: usize,
        /// Number of tasks in that batch (with `batch_size(1)`, or under a
        /// `timeout`, it is 1 and `index` is the task that killed it).
        tasks: usize,
        /// The worker's process id.
        pid: u32,
        /// How it ended: "was killed by signal 9 (SIGKILL)", "exited with
        /// code 3", ...
        reason: String,
    },
    /// A configuration value is invalid (`n_jobs(0)`, `batch_size(0)`, an
    /// unparsable `pre_dispatch` expression, ...).
    #[error("invalid parallel configuration: {option}: {reason}")]
    InvalidConfig {
        /// The option at fault, as named in the builder (`"n_jobs"`, ...).
        option: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// A backend name is neither built in nor registered with
    /// [`register_backend`](crate::register_backend).
    #[error("unknown parallel backend {name:?}; known backends: {known}")]
    UnknownBackend {
        /// The name asked for.
        name: String,
        /// The names that are available, comma-separated.
        known: String,
    },
    /// The backend failed to start its workers.
    #[error("backend {backend:?} failed to start: {source}")]
    BackendStart {
        /// Name of the backend.
        backend: String,
        /// What the backend reported.
        source: BoxError,
    },
}

impl Error {
    /// The index of the task this error is about, if it concerns one task.
    pub fn index(&self) -> Option<usize> {
        match self {
            Error::Task { index, .. }
            | Error::Panic { index, .. }
            | Error::Timeout { index, .. }
            | Error::Input { index, .. }
            | Error::InputPanic { index, .. }
            | Error::Backend { index, .. }
            | Error::WorkerDied { index, .. } => Some(*index),
            Error::InvalidConfig { .. }
            | Error::UnknownBackend { .. }
            | Error::BackendStart { .. } => None,
        }
    }

    pub(crate) fn config(option: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            option,
            reason: reason.into(),
        }
    }
}

/// Turns a caught panic payload into its message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_task() {
        let e = Error::Panic {
            index: 7,
            message: "boom".into(),
        };
        assert_eq!(e.to_string(), "task 7 panicked: boom");
        assert_eq!(e.index(), Some(7));
        let e = Error::config("n_jobs", "0 is not a number of workers");
        assert_eq!(
            e.to_string(),
            "invalid parallel configuration: n_jobs: 0 is not a number of workers"
        );
        assert_eq!(e.index(), None);
    }

    #[test]
    fn panic_payloads() {
        assert_eq!(panic_message(&"a"), "a");
        assert_eq!(panic_message(&String::from("b")), "b");
        assert_eq!(panic_message(&3u8), "<non-string panic payload>");
    }
}
