//! [`Metadata`], what is known about one cached result.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// What is known about one cached result: stored as `metadata.json` beside
/// it by the filesystem store.
///
/// Times are seconds since the Unix epoch, so the file stays readable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metadata {
    /// The cached function's name (module path and name).
    pub function: String,
    /// The function's fingerprint when the result was computed.
    pub fingerprint: String,
    /// The hex digest of the arguments (and fingerprint): the entry's name.
    pub digest: String,
    /// A short readable summary of the arguments, as Python's `repr`
    /// would show them (arrays as type, shape and a few values), cut at
    /// 200 bytes.
    pub args: String,
    /// When the computation finished, in seconds since the Unix epoch.
    pub computed_at: f64,
    /// How long the computation took, in seconds.
    pub duration: f64,
    /// The size of the stored result, in bytes.
    pub size: u64,
    /// The last time the result was computed or read, in seconds since the
    /// Unix epoch; filled in from the store's access record when read, not
    /// kept in the file.
    #[serde(default, skip_serializing)]
    pub last_access: Option<f64>,
}

impl Metadata {
    /// The metadata of a result computed just now.
    pub(crate) fn new(
        function: &str,
        fingerprint: &str,
        digest: &joblib_hash::Digest,
        args: String,
        duration: Duration,
    ) -> Metadata {
        Metadata {
            function: function.to_string(),
            fingerprint: fingerprint.to_string(),
            digest: digest.to_hex(),
            args,
            computed_at: unix_seconds(SystemTime::now()),
            duration: duration.as_secs_f64(),
            size: 0,
            last_access: None,
        }
    }

    /// When the computation finished.
    pub fn computed_at(&self) -> SystemTime {
        from_unix_seconds(self.computed_at)
    }

    /// How long the computation took.
    pub fn duration(&self) -> Duration {
        Duration::try_from_secs_f64(self.duration).unwrap_or_default()
    }

    /// How long ago the result was computed (zero if the clock went back).
    pub fn age(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.computed_at())
            .unwrap_or_default()
    }
}

/// Seconds since the Unix epoch, negative before it.
pub(crate) fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// The inverse of [`unix_seconds`], saturating on absurd values.
pub(crate) fn from_unix_seconds(s: f64) -> SystemTime {
    let d = Duration::try_from_secs_f64(s.abs()).unwrap_or_default();
    if s >= 0.0 {
        UNIX_EPOCH.checked_add(d).unwrap_or(UNIX_EPOCH)
    } else {
        UNIX_EPOCH.checked_sub(d).unwrap_or(UNIX_EPOCH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        let now = SystemTime::now();
        let back = from_unix_seconds(unix_seconds(now));
        let diff = back
            .duration_since(now)
            .or_else(|_| now.duration_since(back))
            .unwrap();
        assert!(diff < Duration::from_millis(1));
    }
}
