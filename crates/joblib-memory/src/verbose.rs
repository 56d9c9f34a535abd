//! joblib's human-readable output, for people running scripts.

use std::time::Duration;

/// The last segment of a function name: `f` for `module::f`.
pub(crate) fn short_name(function: &str) -> &str {
    function.rsplit("::").next().unwrap_or(function)
}

/// Printed before a computation (verbose 1 and above).
pub(crate) fn calling(function: &str, summary: &str) -> String {
    // Several arguments are summarized as a tuple: show `f(1, "a")`, not
    // `f((1, "a"))`.
    let args = match summary.strip_prefix('(') {
        Some(inner) => {
            let inner = inner.strip_suffix(')').unwrap_or(inner);
            inner.strip_suffix(',').unwrap_or(inner)
        }
        None => summary,
    };
    format!(
        "{}\n[Memory] Calling {function}...\n{}({args})",
        "_".repeat(80),
        short_name(function)
    )
}

/// Printed after a computation.
pub(crate) fn done(function: &str, took: Duration) -> String {
    let secs = took.as_secs_f64();
    let tail = format!(
        "{} - {secs:.1}s, {:.1}min",
        short_name(function),
        secs / 60.0
    );
    format!("{tail:_>80}")
}

/// Printed on a cache hit (verbose 2 and above).
pub(crate) fn loading(function: &str, took: Duration) -> String {
    let secs = took.as_secs_f64();
    format!(
        "[Memory]{secs:.1}s, {:.1}min    : Loading {}...",
        secs / 60.0,
        short_name(function)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joblib_shape() {
        let c = calling("model::fit", "(1, 2)");
        let lines: Vec<_> = c.lines().collect();
        assert_eq!(lines[0], "_".repeat(80));
        assert_eq!(lines[1], "[Memory] Calling model::fit...");
        assert_eq!(lines[2], "fit(1, 2)");
        assert!(calling("m::g", "(7,)").ends_with("g(7)"));
        assert!(calling("m::g", "41").ends_with("g(41)"));
        // A truncated summary loses its opening bracket only.
        assert!(calling("m::g", "([1, 2, 3], …").ends_with("g([1, 2, 3], …)"));
        let d = done("model::fit", Duration::from_millis(6100));
        assert_eq!(d.len(), 80);
        assert!(d.ends_with("fit - 6.1s, 0.1min"), "{d}");
        assert!(d.starts_with("____"));
        assert_eq!(
            loading("m::g", Duration::from_millis(30)),
            "[Memory]0.0s, 0.0min    : Loading g..."
        );
    }
}
