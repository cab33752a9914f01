//! The report of one run: `report.html` with the plots inline, plus `latency.png`, `rate.png`
//! and their SVG twins, all written into the run directory.
//!
//! The page reads top-down the way someone looks at a red run: first, when the run cannot
//! vouch for the system (its health failed, it was interrupted, stopped by its suite, or it
//! failed outright), a block that says so and why — before any verdict, because a verdict of
//! such a run means little — then the verdict of each checker,
//! what ran (and how to run it again), what the operations did during quiet time and during
//! faults, when the faults were, the plots, then the explanation of each failure, then links to
//! the raw files. It is self-contained: inline CSS and SVG, no script, no network.

use super::anomaly;
use super::atomic::write_atomic;
use super::data::{secs, RunData, Tally};
use super::html::{self, badge, escape, header, json_text, ms, percent, row};
use super::outcome::{CellRecord, RECORD_FILE};
use super::plots;
use faultline_checkers::{CheckResult, Validity};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// Most nemesis events listed in the event table.
const EVENTS_MAX: usize = 400;
/// Bytes of each node log shown inline.
const LOG_TAIL_BYTES: u64 = 4096;

/// Writes `report.html`, `latency.png`, `rate.png`, `latency.svg`, `rate.svg` into `run_dir`.
pub fn write_run_report(run_dir: &Path) -> anyhow::Result<()> {
    let data = RunData::load(run_dir)?;
    let title = run_title(&data);
    let (lat_svg, rate_svg) = plots::write_plots(run_dir, &data.calls, &data.faults, data.end_s, &title)?;
    let page = render(&data, &title, &lat_svg, &rate_svg);
    write_atomic(&run_dir.join("report.html"), page.as_bytes())?;
    Ok(())
}

fn run_title(data: &RunData) -> String {
    let name = data.test_str("name");
    if name.is_empty() {
        data.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into())
    } else {
        name
    }
}

/// The whole page.
pub fn render(data: &RunData, title: &str, lat_svg: &str, rate_svg: &str) -> String {
    let mut s = html::page_start(&format!("faultline: {title}"));
    let _ = write!(s, "<h1>{} {}</h1>", escape(title), badge(data.verdict()));
    s += &health(data);
    s += &summary(data);
    s += &verdicts(data);
    s += &operations(data);
    s += &phases(data);
    s += &fault_timeline(data);
    s += "<h2 id=\"plots\">Latency and throughput</h2>";
    let _ = write!(s, "<div class=\"plot\" id=\"latency\">{}</div>", strip_xml_decl(lat_svg));
    let _ = write!(s, "<div class=\"plot\" id=\"rate\">{}</div>", strip_xml_decl(rate_svg));
    s += "<p class=\"small\">PNG: <a href=\"latency.png\">latency.png</a> · <a href=\"rate.png\">rate.png</a>. \
          Shaded bands are fault periods (from a nemesis start to its stop or the heal).</p>";
    s += &failures(data);
    s += &files(data);
    s += html::page_end();
    s
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

/// The health block at the top of the page, or nothing for a healthy run.
fn health(data: &RunData) -> String {
    let problems = health_problems(data);
    if problems.is_empty() {
        return String::new();
    }
    let mut s = String::from("<section class=\"health\" id=\"health\"><h2>Health</h2>");
    for (headline, reasons) in problems {
        let _ = write!(s, "<p><b>{}</b></p>", escape(&headline));
        if !reasons.is_empty() {
            s += "<ul>";
            for r in reasons {
                let _ = write!(s, "<li>{}</li>", escape(&r));
            }
            s += "</ul>";
        }
    }
    s + "<p class=\"small\">A verdict of such a run is unknown at best: a guarantee shown violated still is, but nothing here shows one held.</p></section>"
}

fn summary(data: &RunData) -> String {
    let t = &data.test;
    let field = |k: &str| t.get(k).map(|v| json_text(v, 200)).unwrap_or_else(|| "–".into());
    let nemeses = data.nemeses();
    let mut s = String::from("<h2 id=\"summary\">Run</h2><table class=\"summary\">");
    let duration = data.results.pointer("/stats/duration_s").and_then(Value::as_f64).unwrap_or(data.end_s);
    let rows: Vec<(&str, String)> = vec![
        ("protocol", field("protocol")),
        ("workload", field("workload")),
        ("nemeses", escape(&if nemeses.is_empty() { "–".to_string() } else { nemeses.join(", ") })),
        ("claims", field("claims")),
        ("seed", field("seed")),
        ("nodes", field("nodes")),
        ("concurrency", field("concurrency")),
        ("rate (ops/s)", field("rate")),
        ("time limit (s)", field("time_limit_s")),
        ("duration (s)", format!("{duration:.1}")),
        ("started at", field("started_at")),
        ("node arguments", field("node_args")),
        ("directory", escape(&data.dir.display().to_string())),
    ];
    for (k, v) in rows {
        s += &row(&[escape(k), v]);
    }
    s += "</table>";
    let rerun = data.test_str("rerun");
    if !rerun.is_empty() {
        let _ = write!(s, "<p>Run it again:</p><pre id=\"rerun\">{}</pre>", escape(&rerun));
    }
    if let Some(e) = data.results.pointer("/stats/teardown_error") {
        if !e.is_null() {
            let _ = write!(s, "<p class=\"explain\">Teardown failed: {}</p>", json_text(e, 1000));
        }
    }
    if let Some(e) = &data.history_error {
        let _ = write!(s, "<p class=\"explain\">The history could not be read completely: {}</p>", escape(e));
    }
    s
}

fn verdicts(data: &RunData) -> String {
    let mut s = String::from("<h2 id=\"verdicts\">Verdicts</h2>");
    let Some(checkers) = data.results.get("checkers").and_then(Value::as_object) else {
        return s + "<p class=\"explain\">No results.json: the run did not reach its checkers.</p>";
    };
    s += "<table class=\"verdicts\">";
    s += &header(&["checker", "model", "verdict", "summary"]);
    for (name, r) in checkers {
        let v = r.get("valid").and_then(Validity::from_json);
        let (_, class) = html::verdict_word(v);
        let model = r.get("model").or_else(|| r.get("kind")).map(|m| json_text(m, 40)).unwrap_or_default();
        let _ = write!(
            s,
            "<tr class=\"v-{class}\"><td>{}</td><td>{model}</td><td class=\"verdict\">{}</td><td>{}</td></tr>",
            escape(name),
            badge(v),
            checker_summary(r)
        );
    }
    s + "</table>"
}

/// One line about a checker's result: its error, its anomaly count, or its non-zero counts.
fn checker_summary(r: &Value) -> String {
    if let Some(e) = r.get("error").filter(|e| !e.is_null()) {
        return json_text(e, 300);
    }
    if let Some(Value::Array(a)) = r.get("anomalies") {
        return format!("{} key(s) not linearizable — see <a href=\"#failures\">below</a>", a.len());
    }
    let Some(m) = r.as_object() else { return String::new() };
    let counts: Vec<String> = m
        .iter()
        .filter(|(k, v)| (k.ends_with("_count") || k.as_str() == "ops" || k.as_str() == "reads") && v.as_u64().is_some_and(|n| n > 0))
        .map(|(k, v)| format!("{}: {}", escape(k), v))
        .collect();
    counts.join(", ")
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

fn num_row(first: String, cells: Vec<String>) -> String {
    let mut s = format!("<tr><td>{first}</td>");
    for c in cells {
        let _ = write!(s, "<td class=\"num\">{c}</td>");
    }
    s + "</tr>\n"
}

fn operations(data: &RunData) -> String {
    let mut s = String::from("<h2 id=\"operations\">Operations</h2><table class=\"ops\">");
    s += &header(&["f", "calls", "ok", "fail", "info", "availability", "p50 ms", "p99 ms"]);
    let mut all = Tally::default();
    for (f, mut t) in data.per_f() {
        s += &num_row(escape(&f), tally_cells(&mut t));
    }
    for c in data.workload_calls() {
        all.add(c);
    }
    s += &num_row("<b>all (workload)</b>".into(), tally_cells(&mut all));
    s + "</table><p class=\"small muted\">info counts operations whose outcome is unknown (timed out or never completed). Latencies are of ok operations.</p>"
}

fn phases(data: &RunData) -> String {
    let (mut quiet, mut faulty, by_fault) = data.phases();
    let mut s = String::from("<h2 id=\"phases\">Availability: faults versus quiet</h2><table class=\"phases\">");
    s += &header(&["period", "calls", "ok", "fail", "info", "availability", "p50 ms", "p99 ms"]);
    s += &num_row("quiet".into(), tally_cells(&mut quiet));
    s += &num_row("during any fault".into(), tally_cells(&mut faulty));
    for (f, mut t) in by_fault {
        s += &num_row(format!("during {}", escape(&f)), tally_cells(&mut t));
    }
    s + "</table><p class=\"small muted\">Operations are assigned to the period in which they were invoked; final reads are left out.</p>"
}

fn fault_timeline(data: &RunData) -> String {
    let mut s = String::from("<h2 id=\"faults\">Fault timeline</h2>");
    if data.faults.is_empty() && data.nemesis.is_empty() {
        return s + "<p class=\"muted\">No faults were injected.</p>";
    }
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
    let _ = write!(s, "<div class=\"scroll\"><svg class=\"faults\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"11\">", left + w + 40.0);
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
    for i in 0..=10 {
        let t = end * i as f64 / 10.0;
        let label = if end < 20.0 { format!("{t:.1}s") } else { format!("{t:.0}s") };
        let _ = write!(s, "<text x=\"{:.0}\" y=\"{axis_y:.0}\" fill=\"#666\">{label}</text>", x(t) - 6.0);
    }
    s += "</svg></div>";
    s += &event_table(data);
    s
}

fn event_table(data: &RunData) -> String {
    let mut s = format!("<details><summary>{} nemesis events</summary><table class=\"events\">", data.nemesis.len());
    s += &header(&["time (s)", "event", "value"]);
    for op in data.nemesis.iter().take(EVENTS_MAX) {
        s += &row(&[format!("{:.3}", secs(op.time)), escape(&op.f), format!("<span class=\"mono\">{}</span>", json_text(&op.value, 500))]);
    }
    if data.nemesis.len() > EVENTS_MAX {
        let _ = write!(s, "<tr><td colspan=\"3\">… {} more in history.jsonl</td></tr>", data.nemesis.len() - EVENTS_MAX);
    }
    s + "</table></details>"
}

fn failures(data: &RunData) -> String {
    let mut s = String::from("<h2 id=\"failures\">What went wrong</h2>");
    let checkers = data.results.get("checkers").and_then(Value::as_object).cloned().unwrap_or_default();
    let bad: Vec<(&String, &Value)> =
        checkers.iter().filter(|(_, r)| r.get("valid").and_then(Validity::from_json) != Some(Validity::Valid)).collect();
    if bad.is_empty() {
        s += "<p>Every checker passed.</p>";
    }
    for (name, r) in bad {
        let _ = write!(s, "<h3>{} {}</h3>", escape(name), badge(r.get("valid").and_then(Validity::from_json)));
        if let Some(Value::Array(anoms)) = r.get("anomalies") {
            for a in anoms.iter().take(5) {
                s += "<div class=\"anomaly\">";
                s += &anomaly::lin_anomaly(data, a);
                s += "</div>";
            }
            if let Some(file) = write_checker_page(data, name, r) {
                let _ = write!(s, "<p>The checker's own explanation page: {}</p>", html::link(&file, &file));
            }
        }
        s += &anomaly::checker_details(r);
    }
    if let Some(table) = anomaly::final_states(data) {
        s += "<h3 id=\"final-states\">Final state of every node</h3>";
        s += &table;
    }
    s
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

fn files(data: &RunData) -> String {
    let mut s = String::from("<h2 id=\"files\">Files</h2><ul>");
    for f in ["history.jsonl", "results.json", "test.json"] {
        if data.dir.join(f).exists() {
            let _ = write!(s, "<li><a href=\"{f}\">{f}</a></li>");
        }
    }
    s += "</ul>";
    let mut logs: Vec<String> = std::fs::read_dir(data.dir.join("nodes"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(".log"))
        .collect();
    logs.sort();
    if logs.is_empty() {
        return s;
    }
    s += "<h3>Node logs</h3>";
    for l in logs {
        let path = data.dir.join("nodes").join(&l);
        let name = format!("nodes/{l}");
        let _ = write!(s, "<details><summary>{}</summary><pre>{}</pre></details>", html::link(&name, &name), escape(&log_tail(&path)));
    }
    s
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
