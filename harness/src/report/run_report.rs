//! The report of one run: `report.html` with the plots inline, plus `latency.png`, `rate.png`
//! and their SVG twins, all written into the run directory.
//!
//! The page reads top-down the way someone looks at a red run: first, when the run cannot
//! vouch for the system (its health failed, it was interrupted, stopped by its suite, or it
//! failed outright), a block that says so and why, with the log tail of a node that crashed —
//! before any verdict, because a verdict of such a run means little — then the anomaly itself
//! (one sentence and a drawing scaled to it, see [`zoom`], [`bank`], [`elements`]), then the
//! verdict of each checker, what ran (and how to run it again), what the operations did during
//! quiet time and during faults, when the faults were, the plots, then every checker's details,
//! then links to the raw files and to `timeline.html`, the whole history ([`timeline`]).
//! It is self-contained: inline CSS and SVG, no script, no network; `timeline.html` is the one
//! page with a script, because a whole history needs virtual scrolling.
//!
//! The page is a maud template: every value interpolated into it is escaped by the template
//! itself, and a typo in the markup is a compile error. The drawings and sections other modules
//! build (SVG, the anomaly views) arrive as HTML text they escaped with [`html::escape`]; they
//! enter through one function, [`built`], so the places that trust markup are easy to find.

use super::anomaly;
use super::atomic::write_atomic;
use super::bank::{self, BankStory};
use super::data::{secs, RunData, Tally};
use super::elements;
use super::html::{self, escape, json_plain, ms, percent};
use super::outcome::{CellRecord, RECORD_FILE};
use super::plots;
use super::story::{self, LinStory};
use super::svg::TimeScale;
use super::text::{natural_cmp, plural};
use super::timeline;
use super::zoom;
use faultline_checkers::{CheckResult, Validity};
use maud::{html as markup, Markup, PreEscaped};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// Most nemesis events listed in the event table.
const EVENTS_MAX: usize = 400;
/// Bytes of each node log shown inline.
const LOG_TAIL_BYTES: u64 = 4096;

/// The file next to a run's results that holds its one-sentence anomaly, for the index (which
/// never reads a history).
pub const HEADLINE_FILE: &str = "anomaly.json";

/// Writes `report.html`, `timeline.html`, `latency.png`, `rate.png`, `latency.svg`, `rate.svg`
/// and, for a failed run, `anomaly.json` (its sentence) into `run_dir`.
pub fn write_run_report(run_dir: &Path) -> anyhow::Result<()> {
    let data = RunData::load(run_dir)?;
    let title = run_title(&data);
    let (lat_svg, rate_svg) = plots::write_plots(run_dir, &data.calls, &data.faults, data.end_s, &title)?;
    timeline::write_timeline(&data, &title, &anomaly_marks(&data))?;
    let page = render(&data, &title, &lat_svg, &rate_svg);
    write_atomic(&run_dir.join("report.html"), page.as_bytes())?;
    write_headline(&data)
}

/// Stores the run's one-sentence anomaly (or removes a stale one) for the index.
fn write_headline(data: &RunData) -> anyhow::Result<()> {
    let path = data.dir.join(HEADLINE_FILE);
    match story::headline(data) {
        Some(s) => Ok(write_atomic(&path, serde_json::json!({ "sentence": s }).to_string().as_bytes())?),
        None => {
            let _ = std::fs::remove_file(&path);
            Ok(())
        }
    }
}

/// The invoke indexes of the operations linearizability could not place, for the timeline.
fn anomaly_marks(data: &RunData) -> Vec<u64> {
    lin_anomalies(data).iter().filter_map(|a| a.get("op").and_then(story::event_index)).collect()
}

/// Every linearizability anomaly of every checker, keys in natural order.
fn lin_anomalies(data: &RunData) -> Vec<Value> {
    let all: Vec<Value> = data
        .results
        .get("checkers")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.values())
        .filter_map(|r| r.get("anomalies").and_then(Value::as_array))
        .flatten()
        .cloned()
        .collect();
    by_key(&all)
}

fn run_title(data: &RunData) -> String {
    let name = data.test_str("name");
    if name.is_empty() {
        data.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into())
    } else {
        name
    }
}

/// HTML that another report module built (escaping every value with [`html::escape`]), passed
/// into the template as is. The only door through which markup enters the page unescaped.
fn built(html: String) -> PreEscaped<String> {
    PreEscaped(html)
}

/// A verdict badge.
fn badge(v: Option<Validity>) -> Markup {
    let (word, class) = html::verdict_word(v);
    markup! { span class={ "badge " (class) } { (word) } }
}

/// A relative link to a file of the run, or its name alone when it cannot be linked safely.
fn link(path: &str) -> Markup {
    markup! {
        @if let Some(h) = html::href(path) { a href=(h) { (path) } } @else { (path) }
    }
}

/// The whole page.
pub fn render(data: &RunData, title: &str, lat_svg: &str, rate_svg: &str) -> String {
    let body = markup! {
                h1 { (title) " " (badge(data.verdict())) }
                (health(data))
                (built(the_anomaly(data)))
                (verdicts(data))
                (unclaimed(data))
                (summary(data))
                (operations(data))
                (phases(data))
                (sides(data))
                (fault_timeline(data))
                h2 id="plots" { "Latency and throughput" }
                div class="plot" id="latency" { (built(strip_xml_decl(lat_svg).to_string())) }
                div class="plot" id="rate" { (built(strip_xml_decl(rate_svg).to_string())) }
                p class="small" {
                    "PNG: " a href="latency.png" { "latency.png" } " · " a href="rate.png" { "rate.png" }
                    ". Shaded bands are fault periods (from a nemesis start to its stop or the heal)."
                }
                (failures(data))
                (files(data))
    };
    html::page(&format!("faultline: {title}"), "", body).into_string()
}

fn strip_xml_decl(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// The strings of a JSON list.
fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).map(|a| a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect()).unwrap_or_default()
}

/// What makes a run unable to vouch for the system, each as a headline and its reasons.
fn health_problems(data: &RunData) -> Vec<(String, Vec<String>)> {
    let r = &data.results;
    let mut out = Vec::new();
    let record: Option<CellRecord> = std::fs::read(data.dir.join(RECORD_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(stop) = record.as_ref().and_then(|x| x.stopped.clone()) {
        out.push((format!("Stopped by its suite: {stop}"), Vec::new()));
    }
    if r.get("interrupted").and_then(Value::as_bool) == Some(true) {
        let by = r.get("interrupted_by").and_then(Value::as_str).unwrap_or("a signal");
        out.push((format!("Interrupted by {by}"), vec!["the run stopped before its time limit; it healed, read and checked what it had".into()]));
    }
    if let Some(e) = r.get("error").filter(|e| !e.is_null()) {
        let e = e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string());
        out.push(("The run failed".into(), vec![e]));
    }
    if r.pointer("/health/ok").and_then(Value::as_bool) == Some(false) {
        out.push(("Unhealthy: this run cannot vouch for the system".into(), string_list(r.pointer("/health/reasons"))));
    }
    out
}

/// The health block at the top of the page (with the log tail of every node that crashed), or
/// nothing for a healthy run without crashes.
fn health(data: &RunData) -> Markup {
    let problems = health_problems(data);
    let crashes = data.results.pointer("/health/crashes").and_then(Value::as_array).cloned().unwrap_or_default();
    if problems.is_empty() && crashes.is_empty() {
        return markup! {};
    }
    markup! {
        section class="health" id="health" {
            h2 { "Health" }
            @for (headline, reasons) in &problems {
                p { b { (headline) } }
                @if !reasons.is_empty() {
                    ul { @for r in reasons { li { (r) } } }
                }
            }
            @for c in &crashes { (crash_tail(c)) }
            @if !problems.is_empty() {
                p class="small" { "A verdict of such a run is unknown at best: a guarantee shown violated still is, but nothing here shows one held." }
            }
        }
    }
}

/// The log tail of a node that exited on its own (`results.json` `health.crashes[]`), open,
/// since the last lines of a crashed node's log usually say why.
fn crash_tail(c: &Value) -> Markup {
    let node = c.get("node").and_then(Value::as_str).unwrap_or("a node");
    let status = c.get("status").and_then(Value::as_str).unwrap_or("unknown status");
    let at = c.get("time_s").and_then(Value::as_f64).map(|t| format!(" at {t:.2} s")).unwrap_or_default();
    let tail = c.get("log_tail").and_then(Value::as_str).unwrap_or("");
    markup! {
        details class="crash" open {
            summary { (node) " exited on its own" (at) " (" (status) "): the end of its log" }
            pre class="log-tail" { @if tail.trim().is_empty() { "(the log was empty)" } @else { (tail) } }
        }
    }
}

/// The anomaly first: the linearizability anomaly zoomed, else the first other failing checker
/// drawn for a person (bank totals, lost and unexpected elements, counter reads).
fn the_anomaly(data: &RunData) -> String {
    let lin = lin_anomalies(data);
    if let Some(story) = lin.iter().find_map(|a| LinStory::new(data, a)) {
        return zoom::section(data, &story, lin.len());
    }
    failing_checkers(data).iter().find_map(|(name, r)| drawn(data, name, r)).map(|(at, body)| anomaly_wrapper(&body, at)).unwrap_or_default()
}

/// Checkers that found a violation, in name order.
fn failing_checkers(data: &RunData) -> Vec<(String, Value)> {
    let checkers = data.results.get("checkers").and_then(Value::as_object).cloned().unwrap_or_default();
    checkers.into_iter().filter(|(_, r)| r.get("valid").and_then(Validity::from_json) == Some(Validity::Invalid)).collect()
}

/// A non-linearizability failure drawn for a person, with the time to open the timeline at.
fn drawn(data: &RunData, name: &str, r: &Value) -> Option<(f64, String)> {
    if r.get("anomalies").is_some() {
        return None;
    }
    if name == "bank" || r.get("bad_reads").is_some() {
        let b = BankStory::new(data, r)?;
        let at = b.first_bad.map_or(0.0, |i| secs(data.calls[b.reads[i].call].invoke_time));
        return Some((at, bank::section(data, &b)));
    }
    if name == "durable-state" {
        let sentence = super::text::capitalize(&super::durable::sentence(r)?);
        let at = r.pointer("/regressions/0/after/time_s").and_then(Value::as_f64).unwrap_or(0.0);
        return Some((at, markup! { p class="sentence" id="durable-sentence" { (sentence) "." } (super::durable::section(r)) }.into_string()));
    }
    let body = elements::section(data, r);
    let sentence = super::text::capitalize(&elements::headline(data, r)?);
    Some((0.0, markup! { p class="sentence" id="elements-sentence" { (sentence) "." } (built(body)) }.into_string()))
}

fn anomaly_wrapper(body: &str, at: f64) -> String {
    markup! {
        section class="anomaly-zoom" id="anomaly" {
            h2 { "The anomaly" }
            (built(body.to_string()))
            p class="small" {
                a id="full-timeline" href={ "timeline.html#t=" (format!("{at:.3}")) } { "The full history" }
                ", every operation on one timeline; the checker's own report is " a href="#failures" { "below" } "."
            }
        }
    }
    .into_string()
}

fn summary(data: &RunData) -> Markup {
    let field = |k: &str| data.test.get(k).map(|v| json_plain(v, 200)).unwrap_or_else(|| "–".into());
    let nemeses = data.nemeses();
    let duration = data.results.pointer("/stats/duration_s").and_then(Value::as_f64).unwrap_or(data.end_s);
    let rows: Vec<(&str, String)> = vec![
        ("protocol", field("protocol")),
        ("workload", field("workload")),
        ("nemeses", if nemeses.is_empty() { "–".to_string() } else { nemeses.join(", ") }),
        ("claims", field("claims")),
        ("seed", field("seed")),
        ("nodes", field("nodes")),
        ("concurrency", field("concurrency")),
        ("rate (ops/s)", field("rate")),
        ("time limit (s)", field("time_limit_s")),
        ("duration (s)", format!("{duration:.1}")),
        ("started at", field("started_at")),
        ("node arguments", field("node_args")),
        ("directory", data.dir.display().to_string()),
    ];
    let rerun = data.test_str("rerun");
    let teardown = data.results.pointer("/stats/teardown_error").filter(|e| !e.is_null());
    markup! {
        h2 id="summary" { "Run" }
        table class="summary" { @for (k, v) in &rows { tr { td { (k) } td { (v) } } } }
        @if !rerun.is_empty() { p { "Run it again:" } pre id="rerun" { (rerun) } }
        @if let Some(e) = teardown { p class="explain" { "Teardown failed: " (json_plain(e, 1000)) } }
        @if let Some(e) = &data.history_error { p class="explain" { "The history could not be read completely: " (e) } }
    }
}

fn verdicts(data: &RunData) -> Markup {
    let Some(checkers) = data.results.get("checkers").and_then(Value::as_object) else {
        return markup! { h2 id="verdicts" { "Verdicts" } p class="explain" { "No results.json: the run did not reach its checkers." } };
    };
    markup! {
        h2 id="verdicts" { "Verdicts" }
        table class="verdicts" {
            thead { tr { th { "checker" } th { "model" } th { "verdict" } th { "summary" } } }
            @for (name, r) in checkers {
                @let v = r.get("valid").and_then(Validity::from_json);
                @let model = r.get("model").or_else(|| r.get("kind")).map(|m| json_plain(m, 40)).unwrap_or_default();
                tr class={ "v-" (html::verdict_word(v).1) } {
                    td { (name) } td { (model) } td class="verdict" { (badge(v)) } td { (checker_summary(r)) }
                }
            }
        }
    }
}

/// The checks a suite ran on this history for guarantees the protocol does *not* claim
/// (`unclaimed.json`): a violation here is information about the protocol, not a failure.
fn unclaimed(data: &RunData) -> Markup {
    let stored: Option<Value> = std::fs::read_to_string(data.dir.join("unclaimed.json")).ok().and_then(|s| serde_json::from_str(&s).ok());
    let Some(checks) = stored.as_ref().and_then(|v| v.get("checks")).and_then(Value::as_object).filter(|m| !m.is_empty()) else {
        return markup! {};
    };
    markup! {
        h2 id="unclaimed" { "Guarantees not claimed" }
        p class="explain" { "Checked by the suite against what the protocol does not promise: a violation here measures the protocol, it does not fail the run." }
        table class="verdicts unclaimed" {
            thead { tr { th { "checker" } th { "verdict" } th { "summary" } } }
            @for (name, r) in checks {
                @let v = r.get("valid").and_then(Validity::from_json);
                tr class={ "v-" (html::verdict_word(v).1) } data-check=(name) {
                    td { (name) } td class="verdict" { (badge(v)) } td { (checker_summary(r)) }
                }
            }
        }
    }
}

/// Availability on each side of every partition, with the counts behind each figure
/// (`stats.sides` of results.json), and how stale the reads were (`stats.staleness`).
fn sides(data: &RunData) -> Markup {
    let stats = data.results.get("stats");
    let sides = stats.and_then(|s| s.get("sides"));
    let periods = sides.and_then(|s| s.get("periods")).and_then(Value::as_array).cloned().unwrap_or_default();
    let stale = stats.and_then(|s| s.get("staleness")).filter(|s| s.is_object());
    if periods.is_empty() && stale.is_none() {
        return markup! {};
    }
    let figure = |v: &Value| -> String {
        match v.get("availability").and_then(Value::as_f64) {
            Some(a) => format!("{} ({}/{})", html::percent(Some(a)), v["served"], v["sent"]),
            None => "–".into(),
        }
    };
    markup! {
        h2 id="sides" { "Availability by side of the partition" }
        p class="explain" {
            "Each operation takes the side of the node it was sent to when it was invoked: majority (talks both ways with more than half the cluster), minority, or isolated. "
            "Served = ok or a definite refusal (precondition failed, no such key); a timeout or \"no leader\" is not served. "
            "\"settled\" counts only operations invoked " (crate::run::sides::SETTLE_S) " s or more after the partition began."
        }
        @if !periods.is_empty() {
            table class="sides" {
                thead { tr { th { "partition" } th { "from s" } th { "to s" } th { "side" } th { "nodes" } th { "served" } th { "settled" } } }
                @for p in &periods {
                    @let by = p.get("sides").and_then(Value::as_object).cloned().unwrap_or_default();
                    @let nodes = p.get("nodes").and_then(Value::as_object).cloned().unwrap_or_default();
                    @for (side, v) in &by {
                        @let on: Vec<&str> = nodes.iter().filter(|(_, s)| s.as_str() == Some(side.as_str())).map(|(n, _)| n.as_str()).collect();
                        tr class={ "side-" (side) } {
                            td { (json_plain(&p["fault"], 30)) " " (p.get("shape").and_then(Value::as_str).unwrap_or("")) }
                            td class="num" { (json_plain(&p["start_s"], 12)) } td class="num" { (json_plain(&p["stop_s"], 12)) }
                            td { (side) } td { (on.join(" ")) }
                            td class="num" { (figure(v)) } td class="num" { (figure(&v["settled"])) }
                        }
                    }
                }
            }
        }
        @if let Some(s) = stale {
            p class="staleness" {
                "Reads that missed an acknowledged update: " strong { (html::percent(s.get("stale_share").and_then(Value::as_f64))) }
                " (" (json_plain(&s["stale_reads"], 12)) " of " (json_plain(&s["reads"], 12)) " " (json_plain(&s["kind"], 20)) " reads)"
                @if let Some(m) = s.pointer("/missing_updates/max").filter(|m| !m.is_null()) { "; at most " (json_plain(m, 12)) " updates missed by one read" }
                @if let Some(a) = s.pointer("/age_ms/p99").and_then(Value::as_f64) { "; p99 age " (html::ms(Some(a))) " ms" }
                "."
            }
        }
    }
}

/// One line about a checker's result: its error, its anomaly count, or its non-zero counts.
fn checker_summary(r: &Value) -> Markup {
    if let Some(e) = r.get("error").filter(|e| !e.is_null()) {
        return markup! { (json_plain(e, 300)) };
    }
    if let Some(Value::Array(a)) = r.get("anomalies") {
        // `anomalies` explains at most a few keys; `keys_invalid` counts them all.
        let n = r.get("keys_invalid").and_then(Value::as_u64).unwrap_or(a.len() as u64);
        let unchecked = r.get("keys_unchecked").and_then(Value::as_u64).filter(|u| *u > 0).map(|u| format!(" ({} not checked within the budget)", plural(u, "key"))).unwrap_or_default();
        return markup! { (plural(n, "key")) " not linearizable" (unchecked) " — see " a href="#anomaly" { "the anomaly" } };
    }
    let Some(m) = r.as_object() else { return markup! {} };
    let mut counts: Vec<String> = m
        .iter()
        .filter(|(k, v)| (k.ends_with("_count") || k.as_str() == "ops" || k.as_str() == "reads") && v.as_u64().is_some_and(|n| n > 0))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    // Checkers without counts (convergence) still say what they found: the non-empty lists.
    if counts.iter().all(|c| c.starts_with("reads") || c.starts_with("ops")) {
        counts.extend(m.iter().filter_map(|(k, v)| v.as_array().filter(|a| !a.is_empty() && !m.contains_key(&format!("{k}_count"))).map(|a| format!("{k}: {}", a.len()))));
    }
    markup! { (counts.join(", ")) }
}

fn tally_cells(t: &mut Tally) -> Vec<String> {
    vec![
        t.total().to_string(),
        t.ok.to_string(),
        t.fail.to_string(),
        t.info.to_string(),
        percent(t.availability()),
        ms(t.quantile_ms(0.5)),
        ms(t.quantile_ms(0.99)),
    ]
}

fn num_row(first: Markup, cells: Vec<String>) -> Markup {
    markup! { tr { td { (first) } @for c in &cells { td class="num" { (c) } } } }
}

const TALLY_HEAD: [&str; 7] = ["calls", "ok", "fail", "info", "availability", "p50 ms", "p99 ms"];

fn operations(data: &RunData) -> Markup {
    let mut all = Tally::default();
    for c in data.workload_calls() {
        all.add(c);
    }
    markup! {
        h2 id="operations" { "Operations" }
        table class="ops" {
            thead { tr { th { "f" } @for h in TALLY_HEAD { th { (h) } } } }
            @for (f, mut t) in data.per_f() { (num_row(markup! { (f) }, tally_cells(&mut t))) }
            (num_row(markup! { b { "all (workload)" } }, tally_cells(&mut all)))
        }
        p class="small muted" { "info counts operations whose outcome is unknown (timed out or never completed). Latencies are of ok operations." }
    }
}

fn phases(data: &RunData) -> Markup {
    let (mut quiet, mut faulty, by_fault) = data.phases();
    markup! {
        h2 id="phases" { "Availability: faults versus quiet" }
        table class="phases" {
            thead { tr { th { "period" } @for h in TALLY_HEAD { th { (h) } } } }
            (num_row(markup! { "quiet" }, tally_cells(&mut quiet)))
            (num_row(markup! { "during any fault" }, tally_cells(&mut faulty)))
            @for (f, mut t) in by_fault { (num_row(markup! { "during " (f) }, tally_cells(&mut t))) }
        }
        p class="small muted" { "Operations are assigned to the period in which they were invoked; final reads are left out." }
    }
}

fn fault_timeline(data: &RunData) -> Markup {
    markup! {
        h2 id="faults" { "Fault timeline" }
        @if data.faults.is_empty() && data.nemesis.is_empty() {
            p class="muted" { "No faults were injected." }
        } @else {
            div class="scroll" { (built(fault_svg(data))) }
            p class="small" { a href="timeline.html" { "The full history on one timeline" } ": every operation, one lane per process, with these faults shaded." }
            (event_table(data))
        }
    }
}

/// One lane per fault kind, a bar per period, on round ticks; every text escaped.
fn fault_svg(data: &RunData) -> String {
    let mut s = String::new();
    let kinds: Vec<String> = {
        let mut k: Vec<String> = data.faults.iter().map(|p| p.fault.clone()).collect();
        k.sort();
        k.dedup();
        k
    };
    let (left, w, lane_h) = (90.0, 860.0, 22.0);
    let end = data.end_s.max(1.0);
    let x = |t: f64| left + w * (t / end).clamp(0.0, 1.0);
    let height = 20.0 + lane_h * kinds.len() as f64;
    let _ = write!(s, "<svg class=\"faults\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"11\">", left + w + 40.0);
    for (i, k) in kinds.iter().enumerate() {
        let y = lane_h * i as f64;
        let _ = write!(s, "<text x=\"2\" y=\"{:.0}\">{}</text>", y + 15.0, escape(k));
        for p in data.faults.iter().filter(|p| &p.fault == k) {
            let tip = format!("{} {:.2}s–{:.2}s{} {}", p.fault, p.start_s, p.stop_s, if p.closed { "" } else { " (not stopped before the end)" }, p.detail);
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.0}\" width=\"{:.1}\" height=\"{:.0}\" fill=\"{}\" opacity=\"0.75\"><title>{}</title></rect>",
                x(p.start_s),
                y + 3.0,
                (x(p.stop_s) - x(p.start_s)).max(2.0),
                lane_h - 6.0,
                plots::fault_css(&p.fault),
                escape(&html::truncate(&tip, 400))
            );
        }
    }
    let axis_y = lane_h * kinds.len() as f64 + 14.0;
    // Round ticks (0, 2, 4 … s), not tenths of the run's length (0, 2.2, 4.4 …).
    s += &TimeScale::new(0.0, end, left, w).axis(axis_y, 0.0, axis_y - 12.0, 10);
    s + "</svg>"
}

fn event_table(data: &RunData) -> Markup {
    markup! {
        details {
            summary { (plural(data.nemesis.len() as u64, "nemesis event")) }
            table class="events" {
                thead { tr { th { "time (s)" } th { "event" } th { "value" } } }
                @for op in data.nemesis.iter().take(EVENTS_MAX) {
                    tr { td { (format!("{:.3}", secs(op.time))) } td { (op.f.as_ref()) } td { span class="mono" { (json_plain(&op.value, 500)) } } }
                }
                @if data.nemesis.len() > EVENTS_MAX {
                    tr { td colspan="3" { "… " (data.nemesis.len() - EVENTS_MAX) " more in history.jsonl" } }
                }
            }
        }
    }
}

fn failures(data: &RunData) -> Markup {
    let checkers = data.results.get("checkers").and_then(Value::as_object).cloned().unwrap_or_default();
    let bad: Vec<(&String, &Value)> =
        checkers.iter().filter(|(_, r)| r.get("valid").and_then(Validity::from_json) != Some(Validity::Valid)).collect();
    // The one drawn at the top is not drawn twice.
    let top = if lin_anomalies(data).is_empty() { failing_checkers(data).into_iter().find(|(n, r)| drawn(data, n, r).is_some()).map(|x| x.0) } else { None };
    markup! {
        h2 id="failures" { "What went wrong" }
        @if bad.is_empty() { p { "Every checker passed." } }
        @for (name, r) in &bad {
            h3 { (name) " " (badge(r.get("valid").and_then(Validity::from_json))) }
            (failure(data, name, r, top.as_deref() == Some(name.as_str())))
        }
        @if let Some(table) = anomaly::final_states(data) {
            h3 id="final-states" { "Final state of every node" }
            (built(table))
        }
    }
}

/// Anomalies with their keys in natural order (key 2 before key 10).
fn by_key(anoms: &[Value]) -> Vec<Value> {
    let mut v = anoms.to_vec();
    v.sort_by(|a, b| natural_cmp(&story::key_text(&a["key"]), &story::key_text(&b["key"])));
    v
}

/// One failing checker: its anomalies in event order (linearizability), or its drawing when it
/// was not already drawn at the top, then its own report, folded.
fn failure(data: &RunData, name: &str, r: &Value, drawn_at_top: bool) -> Markup {
    let details = anomaly::checker_details(r);
    let invalid = r.get("valid").and_then(Validity::from_json) == Some(Validity::Invalid);
    markup! {
        @if let Some(Value::Array(anoms)) = r.get("anomalies") {
            @for a in by_key(anoms).iter().take(5) { div class="anomaly" { (built(anomaly::lin_anomaly(data, a))) } }
            @if let Some(file) = write_checker_page(data, name, r) { p { "The checker's own explanation page: " (link(&file)) } }
        } @else if !drawn_at_top && invalid {
            @if let Some((_, body)) = drawn(data, name, r) { (built(body)) }
        }
        @if !details.is_empty() {
            details class="raw" { summary { "The checker's report as it wrote it" } (built(details)) }
        }
    }
}

/// Writes the linearizability checker's explanation page next to the report; returns its name.
fn write_checker_page(data: &RunData, name: &str, r: &Value) -> Option<String> {
    let result: CheckResult = serde_json::from_value(r.clone()).ok()?;
    let safe: String = name.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect();
    let file = format!("{safe}-explained.html");
    let page = faultline_checkers::linear::html::render(&data.history, &result, &format!("{name}: {}", run_title(data)));
    write_atomic(&data.dir.join(&file), page.as_bytes()).ok()?;
    Some(file)
}

fn files(data: &RunData) -> Markup {
    let present: Vec<&str> = ["timeline.html", "history.jsonl", "messages.jsonl", "results.json", "test.json"].into_iter().filter(|f| data.dir.join(f).exists()).collect();
    let mut logs: Vec<String> = std::fs::read_dir(data.dir.join("nodes"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(".log"))
        .collect();
    super::text::sort_natural(&mut logs);
    markup! {
        @if data.dir.join("messages.svg").exists() {
            h2 id="messages" { "Messages" }
            p class="explain" {
                "The first messages the router carried (Maelstrom nodes): one vertical line per node, service and client, time flowing down, "
                "an arrow per message from its sending to its delivery; a dropped message is red and ends in a cross. Every message is in "
                a href="messages.jsonl" { "messages.jsonl" } "."
            }
            img class="lamport" src="messages.svg" alt="Lamport diagram of the first messages" style="max-width:100%";
        }
        h2 id="files" { "Files" }
        ul { @for f in &present { li { a href=(f) { (f) } } } }
        @if !logs.is_empty() {
            h3 { "Node logs" }
            @for l in &logs {
                @let name = format!("nodes/{l}");
                details { summary { (link(&name)) } pre { (log_tail(&data.dir.join("nodes").join(l))) } }
            }
        }
    }
}

/// The last few KiB of a log, starting at a line boundary.
fn log_tail(path: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(LOG_TAIL_BYTES);
    if f.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    let _ = f.take(LOG_TAIL_BYTES).read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    match (start > 0, text.find('\n')) {
        (true, Some(i)) => format!("…\n{}", &text[i + 1..]),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run_dir(results: Value) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let test = json!({"name": "raft-register-kill", "protocol": "raft", "workload": "register", "nemesis": ["kill"], "seed": 3});
        std::fs::write(d.path().join("test.json"), test.to_string()).unwrap();
        std::fs::write(d.path().join("history.jsonl"), "").unwrap();
        std::fs::write(d.path().join("results.json"), results.to_string()).unwrap();
        d
    }

    #[test]
    fn health_comes_first_with_its_reasons() {
        let d = run_dir(json!({
            "valid": "unknown", "checkers": {"linearizable": {"valid": true}},
            "health": {"ok": false, "reasons": ["node n3 is down at the end of the run", "<b>final read</b> of n2 missing"]},
            "interrupted": true, "interrupted_by": "SIGTERM",
        }));
        let page = render(&RunData::load(d.path()).unwrap(), "t", "", "");
        let health = page.find("<section class=\"health\"").expect("no health block");
        assert!(health < page.find("id=\"summary\"").unwrap() && health < page.find("id=\"verdicts\"").unwrap());
        assert!(page.contains("Interrupted by SIGTERM"));
        assert!(page.contains("<li>node n3 is down at the end of the run</li>"));
        assert!(page.contains("&lt;b&gt;final read&lt;/b&gt;"), "reasons are escaped");
    }

    #[test]
    fn a_healthy_run_has_no_health_block() {
        let d = run_dir(json!({"valid": true, "checkers": {}, "health": {"ok": true, "reasons": []}, "interrupted": false}));
        let page = render(&RunData::load(d.path()).unwrap(), "t", "", "");
        assert!(!page.contains("class=\"health\""));
    }

    #[test]
    fn a_failed_start_shows_its_error_and_the_suite_stop() {
        let d = run_dir(json!({"valid": "unknown", "checkers": {}, "error": "node n1 exited with status 2 before it was ready"}));
        let rec = CellRecord { stopped: Some("run_timeout_s (5 s) exceeded: killed by SIGKILL after the grace period".into()), ..CellRecord::default() };
        std::fs::write(d.path().join(RECORD_FILE), serde_json::to_string(&rec).unwrap()).unwrap();
        let page = render(&RunData::load(d.path()).unwrap(), "t", "", "");
        assert!(page.contains("The run failed") && page.contains("node n1 exited with status 2 before it was ready"));
        assert!(page.contains("Stopped by its suite: run_timeout_s (5 s) exceeded"));
    }
}
