//! [`Metadata`], what is known about one cached result.

use std::io::{self, Write};
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
    /// A short readable summary of the arguments (JSON, cut at 200 bytes).
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

/// The longest argument summary kept, in bytes.
const SUMMARY_LIMIT: usize = 200;

/// A writer that keeps the first [`SUMMARY_LIMIT`] bytes, then fails, so
/// the serializer stops early on a large argument instead of rendering it
/// all.
struct Capped(Vec<u8>);

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = SUMMARY_LIMIT.saturating_sub(self.0.len());
        if room == 0 {
            return Err(io::Error::other("summary full"));
        }
        let n = room.min(buf.len());
        self.0.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A short, readable summary of a value: its JSON, cut at 200 bytes with
/// an ellipsis. Costs at most a few hundred bytes of work whatever the
/// value's size.
pub(crate) fn summarize<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Capped(Vec::new());
    let complete = serde_json::to_writer(&mut out, value).is_ok();
    let mut bytes = out.0;
    if !complete || bytes.len() >= SUMMARY_LIMIT {
        // Cut at a character boundary.
        while !bytes.is_empty() && std::str::from_utf8(&bytes).is_err() {
            bytes.pop();
        }
        let mut s = String::from_utf8(bytes).unwrap_or_default();
        s.push('…');
        return s;
    }
    String::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_are_short() {
        assert_eq!(summarize(&(1u64, "a")), r#"[1,"a"]"#);
        let big = vec![1.5f64; 1_000_000];
        let s = summarize(&big);
        assert!(s.len() <= SUMMARY_LIMIT + 3, "{}", s.len());
        assert!(s.ends_with('…'));
        assert!(s.starts_with("[1.5,1.5"));
    }

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
