//! Warnings that reach a person: through `tracing` when a subscriber is
//! installed, otherwise on stderr, once per process per cause.

use std::collections::HashSet;
use std::sync::Mutex;

/// Reports `message`, filed under `cause`.
///
/// With the `tracing` feature and a subscriber installed, every occurrence
/// is a `tracing` warning (the subscriber decides what to show). Otherwise
/// the first occurrence of each cause is printed to stderr, prefixed with
/// `joblib-persist: warning:`, and later ones are dropped.
pub(crate) fn warn(cause: &'static str, message: &str) {
    #[cfg(feature = "tracing")]
    {
        let subscribed =
            tracing::dispatcher::get_default(|d| !d.is::<tracing::subscriber::NoSubscriber>());
        if subscribed {
            tracing::warn!(cause, "{message}");
            return;
        }
    }
    if first_time(cause) {
        eprintln!("joblib-persist: warning: {message}");
    }
}

/// Whether `cause` is reported for the first time in this process.
fn first_time(cause: &'static str) -> bool {
    static SEEN: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    seen.get_or_insert_with(HashSet::new).insert(cause)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_new_once() {
        assert!(first_time("test cause a"));
        assert!(!first_time("test cause a"));
        assert!(first_time("test cause b"));
    }
}
