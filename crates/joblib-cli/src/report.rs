//! `joblib cache report DIR -o report.html`: one self-contained HTML page
//! (inline CSS and SVG, no script, no font, nothing fetched) with the time
//! saved and the size per function, a timeline of calls and the slowest
//! computations.
//!
//! Every bar of every chart is an SVG `rect` with `class="bar"`, a
//! `data-chart` attribute naming its chart (`time-saved`, `size`,
//! `timeline`) and its value in `data-value`, so that tools and tests can
//! read the charts back from the page.

use std::fmt::Write as _;
use std::fs;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use joblib_memory::{CacheDir, FunctionSummary, FunctionTotals, RunLog, RunOutcome, RunRecord};
use serde::Serialize;

use crate::cli::ReportArgs;
use crate::failure::Failure;
use crate::output::{print, print_json, time_for_people};
use crate::units::{format_duration, format_size};

/// Columns of the timeline.
const TIMELINE_BUCKETS: usize = 60;
/// Rows of the slowest computations' table.
const SLOWEST: usize = 15;
/// The SVG coordinate width of every chart.
const WIDTH: f64 = 1000.0;
/// Where bars start in the bar charts (function names go left of it).
const LABEL_WIDTH: f64 = 270.0;
/// Room right of the longest bar for its value.
const VALUE_WIDTH: f64 = 190.0;
/// One bar's row in the bar charts.
const ROW: f64 = 26.0;

#[derive(Serialize)]
struct ReportJson {
    cache: String,
    report: String,
    functions: usize,
    calls: Option<usize>,
}

/// `joblib cache report DIR -o FILE`.
pub(crate) fn run(args: &ReportArgs, json: bool) -> Result<ExitCode, Failure> {
    let cache = CacheDir::open(&args.dir).map_err(Failure::memory)?;
    let functions = cache.functions().map_err(Failure::memory)?;
    let runs = crate::runs::load(&cache)?;
    if runs.is_none() {
        crate::runs::no_log_note(
            &cache,
            "the time saved, the timeline and the slowest computations are",
        );
    }
    let totals = runs.as_ref().map(|r| RunLog::open(cache.root()).totals(r));
    let html = page(
        &args.dir.display().to_string(),
        &functions,
        runs.as_deref(),
        totals.as_deref(),
        SystemTime::now(),
    );
    fs::write(&args.output, html).map_err(|e| {
        Failure::io(format!(
            "{}: writing the report: {e}",
            args.output.display()
        ))
    })?;
    if json {
        let report = ReportJson {
            cache: args.dir.display().to_string(),
            report: args.output.display().to_string(),
            functions: functions.len(),
            calls: runs.as_ref().map(Vec::len),
        };
        return print_json(&report, ExitCode::SUCCESS);
    }
    print(&format!("wrote {}\n", args.output.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Escapes text for HTML and SVG content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page.
fn page(
    cache: &str,
    functions: &[FunctionSummary],
    runs: Option<&[RunRecord]>,
    totals: Option<&[FunctionTotals]>,
    now: SystemTime,
) -> String {
    let entries: u64 = functions.iter().map(|f| f.entries).sum();
    let bytes: u64 = functions.iter().map(|f| f.bytes).sum();
    let mut html = String::new();
    html.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
    );
    let _ = writeln!(html, "<title>joblib cache report: {}</title>", esc(cache));
    html.push_str(STYLE);
    html.push_str("</head>\n<body>\n");
    let _ = writeln!(
        html,
        "<h1>joblib cache report</h1>\n<p class=\"sub\"><code>{}</code>, written {} UTC</p>",
        esc(cache),
        esc(&time_for_people(now))
    );
    // The summary cards.
    html.push_str("<div class=\"cards\">\n");
    let mut card = |label: &str, value: String| {
        let _ = writeln!(
            html,
            "<div class=\"card\"><div class=\"value\">{}</div><div class=\"label\">{}</div></div>",
            esc(&value),
            esc(label)
        );
    };
    card("functions", functions.len().to_string());
    card("entries", entries.to_string());
    card("cache size", format_size(bytes));
    if let Some(totals) = totals {
        let hits: u64 = totals.iter().map(|t| t.hits).sum();
        let computes: u64 = totals.iter().map(|t| t.computes).sum();
        let saved: Duration = totals.iter().map(|t| t.time_saved).sum();
        card("hits", hits.to_string());
        card("computes", computes.to_string());
        card("time saved", format_duration(saved));
    }
    html.push_str("</div>\n");

    html.push_str("<h2>Time saved per function</h2>\n");
    match totals {
        Some(totals) => {
            let mut bars: Vec<(String, f64, String)> = totals
                .iter()
                .map(|t| {
                    (
                        t.function.clone(),
                        t.time_saved.as_secs_f64(),
                        format!("{} ({} hits)", format_duration(t.time_saved), t.hits),
                    )
                })
                .collect();
            bars.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            html.push_str(&bar_chart(
                "time-saved",
                "time saved per function",
                &bars,
                "#2f855a",
            ));
            html.push_str(
                "<p class=\"note\">The compute time of the entries answered from the cache, summed over the hits in the run log.</p>\n",
            );
        }
        None => html.push_str(NO_LOG),
    }

    html.push_str("<h2>Cache size per function</h2>\n");
    let mut bars: Vec<(String, f64, String)> = functions
        .iter()
        .map(|f| {
            (
                f.function.clone(),
                f.bytes as f64,
                format!(
                    "{} ({} {})",
                    format_size(f.bytes),
                    f.entries,
                    if f.entries == 1 { "entry" } else { "entries" }
                ),
            )
        })
        .collect();
    bars.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    html.push_str(&bar_chart(
        "size",
        "cache size per function",
        &bars,
        "#2b6cb0",
    ));

    html.push_str("<h2>Calls over time</h2>\n");
    match runs {
        Some(runs) => html.push_str(&timeline(runs)),
        None => html.push_str(NO_LOG),
    }

    html.push_str("<h2>Slowest computations</h2>\n");
    match runs {
        Some(runs) => html.push_str(&slowest(runs)),
        None => html.push_str(NO_LOG),
    }
    html.push_str(
        "<footer>Written by <code>joblib cache report</code>. Self-contained: no scripts, fonts or images are fetched.</footer>\n</body>\n</html>\n",
    );
    html
}

/// A horizontal bar chart: one `rect.bar` per item (name, value, label).
fn bar_chart(id: &str, title: &str, items: &[(String, f64, String)], color: &str) -> String {
    if items.is_empty() {
        return "<p class=\"empty\">Nothing to show.</p>\n".to_string();
    }
    let max = items.iter().map(|i| i.1).fold(0.0_f64, f64::max);
    let span = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    let height = ROW * items.len() as f64 + 8.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg class=\"chart\" id=\"{id}\" data-chart=\"{id}\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"100%\" role=\"img\" aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(title)
    );
    for (i, (name, value, label)) in items.iter().enumerate() {
        let y = 4.0 + ROW * i as f64;
        let w = if max > 0.0 { span * value / max } else { 0.0 };
        // A zero still shows as a sliver, so that every function has a
        // visible bar.
        let w = w.max(1.0);
        let _ = writeln!(
            svg,
            "<text class=\"name\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\
             <rect class=\"bar\" data-chart=\"{id}\" data-function=\"{}\" data-value=\"{value}\" \
             x=\"{LABEL_WIDTH}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" rx=\"2\" fill=\"{color}\">\
             <title>{}: {}</title></rect>\
             <text class=\"value\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LABEL_WIDTH - 8.0,
            y + 14.0,
            esc(&shorten(name, 40)),
            esc(name),
            ROW - 8.0,
            esc(name),
            esc(label),
            LABEL_WIDTH + w + 6.0,
            y + 14.0,
            esc(label)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// `text` cut to `width` characters from the left (the end of a function
/// name is the telling part).
fn shorten(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        text.to_string()
    } else {
        let tail: String = text.chars().skip(count - width + 1).collect();
        format!("…{tail}")
    }
}

/// Hits and computes per time bucket, stacked: one `rect.bar` per
/// non-empty (bucket, kind), `data-kind` `hit` or `compute`, its count in
/// `data-value`.
fn timeline(runs: &[RunRecord]) -> String {
    let Some(first) = runs.iter().map(|r| r.time).reduce(f64::min) else {
        return "<p class=\"empty\">The run log holds no calls yet.</p>\n".to_string();
    };
    let last = runs.iter().map(|r| r.time).fold(first, f64::max);
    let span = (last - first).max(1e-9);
    let buckets = if last > first { TIMELINE_BUCKETS } else { 1 };
    let mut counts = vec![(0_u64, 0_u64); buckets];
    for r in runs {
        let i = (((r.time - first) / span) * buckets as f64) as usize;
        let slot = &mut counts[i.min(buckets - 1)];
        if r.outcome == RunOutcome::Hit {
            slot.0 += 1;
        } else {
            slot.1 += 1;
        }
    }
    let max = counts.iter().map(|(h, c)| h + c).max().unwrap_or(1).max(1);
    let (left, top, plot_w, plot_h) = (60.0, 10.0, WIDTH - 80.0, 200.0);
    let height = top + plot_h + 50.0;
    let slot_w = plot_w / buckets as f64;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg class=\"chart\" id=\"timeline\" data-chart=\"timeline\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"100%\" role=\"img\" aria-label=\"calls over time\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    let _ = writeln!(
        svg,
        "<line class=\"axis\" x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\"/>\
         <line class=\"axis\" x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{0}\"/>\
         <text class=\"tick\" x=\"{2}\" y=\"{3}\" text-anchor=\"end\">{max}</text>\
         <text class=\"tick\" x=\"{2}\" y=\"{0}\" text-anchor=\"end\">0</text>",
        top + plot_h,
        left + plot_w,
        left - 6.0,
        top + 10.0
    );
    let time_at = |t: f64| {
        SystemTime::UNIX_EPOCH + Duration::try_from_secs_f64(t.max(0.0)).unwrap_or_default()
    };
    let _ = writeln!(
        svg,
        "<text class=\"tick\" x=\"{left}\" y=\"{0}\">{1}</text>\
         <text class=\"tick\" x=\"{2}\" y=\"{0}\" text-anchor=\"end\">{3}</text>",
        top + plot_h + 18.0,
        esc(&time_for_people(time_at(first))),
        left + plot_w,
        esc(&time_for_people(time_at(last)))
    );
    for (i, &(hits, computes)) in counts.iter().enumerate() {
        let x = left + slot_w * i as f64 + slot_w * 0.1;
        let w = slot_w * 0.8;
        let mut base = top + plot_h;
        for (kind, count, color) in [("compute", computes, "#dd6b20"), ("hit", hits, "#2f855a")] {
            if count == 0 {
                continue;
            }
            let h = plot_h * count as f64 / max as f64;
            base -= h;
            let _ = writeln!(
                svg,
                "<rect class=\"bar\" data-chart=\"timeline\" data-kind=\"{kind}\" data-value=\"{count}\" \
                 x=\"{x:.1}\" y=\"{base:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{color}\">\
                 <title>{} to {}: {count} {kind}{}</title></rect>",
                esc(&time_for_people(time_at(
                    first + span * i as f64 / buckets as f64
                ))),
                esc(&time_for_people(time_at(
                    first + span * (i + 1) as f64 / buckets as f64
                ))),
                if count == 1 { "" } else { "s" }
            );
        }
    }
    let _ = writeln!(
        svg,
        "<rect x=\"{left}\" y=\"{0}\" width=\"12\" height=\"12\" fill=\"#2f855a\"/>\
         <text class=\"tick\" x=\"{1}\" y=\"{2}\">hits</text>\
         <rect x=\"{3}\" y=\"{0}\" width=\"12\" height=\"12\" fill=\"#dd6b20\"/>\
         <text class=\"tick\" x=\"{4}\" y=\"{2}\">computes</text>",
        top + plot_h + 28.0,
        left + 18.0,
        top + plot_h + 39.0,
        left + 70.0,
        left + 88.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// The slowest computations in the log.
fn slowest(runs: &[RunRecord]) -> String {
    let mut computed: Vec<&RunRecord> = runs
        .iter()
        .filter(|r| r.outcome != RunOutcome::Hit)
        .collect();
    if computed.is_empty() {
        return "<p class=\"empty\">No computation in the run log.</p>\n".to_string();
    }
    computed.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    computed.truncate(SLOWEST);
    let mut html = String::from(
        "<table id=\"slowest\">\n<thead><tr><th>function</th><th>arguments</th>\
         <th class=\"num\">compute time</th><th class=\"num\">size</th><th>when (UTC)</th></tr></thead>\n<tbody>\n",
    );
    for r in computed {
        let _ = writeln!(
            html,
            "<tr class=\"slow\"><td><code>{}</code></td><td><code>{}</code></td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            esc(&r.function),
            esc(&crate::cache::cut(&r.args, 80)),
            esc(&format_duration(r.duration())),
            esc(&format_size(r.bytes)),
            esc(&time_for_people(r.at()))
        );
    }
    html.push_str("</tbody>\n</table>\n");
    html
}

const NO_LOG: &str = "<p class=\"empty\">This cache has no run log (runs.jsonl): it is turned off (<code>MemoryBuilder::run_log(false)</code>) or nothing was called yet.</p>\n";

const STYLE: &str = "<style>
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #1a202c; background: #fff; }
h1 { margin-bottom: 0.2rem; }
h2 { margin-top: 2rem; border-bottom: 1px solid #e2e8f0; padding-bottom: 0.3rem; }
.sub, .note, footer { color: #4a5568; font-size: 0.9rem; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8rem; margin-top: 1rem; }
.card { border: 1px solid #e2e8f0; border-radius: 6px; padding: 0.6rem 1rem; min-width: 8rem; }
.card .value { font-size: 1.4rem; font-weight: 600; }
.card .label { color: #4a5568; font-size: 0.85rem; }
svg.chart { display: block; margin-top: 0.5rem; }
svg text { font-family: inherit; font-size: 13px; fill: #1a202c; }
svg text.tick { font-size: 12px; fill: #4a5568; }
svg line.axis { stroke: #a0aec0; stroke-width: 1; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.3rem 0.6rem; border-bottom: 1px solid #edf2f7; }
th.num, td.num { text-align: right; }
.empty { color: #718096; font-style: italic; }
footer { margin-top: 2rem; }
</style>
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn one_bar_per_item_and_long_names_keep_their_end() {
        let items = vec![
            ("a".to_string(), 2.0, "2".to_string()),
            ("b<".to_string(), 0.0, "0".to_string()),
        ];
        let svg = bar_chart("size", "t", &items, "#000");
        assert_eq!(svg.matches("class=\"bar\"").count(), 2);
        assert!(svg.contains("data-function=\"b&lt;\""), "{svg}");
        assert_eq!(shorten("abcdef", 4), "…def");
        assert_eq!(
            bar_chart("size", "t", &[], "#000").matches("<svg").count(),
            0
        );
    }
}
