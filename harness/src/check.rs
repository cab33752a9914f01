//! `faultline check`: judge a stored history, a file or a whole run directory, again.
//!
//! The raw flags of [`CheckArgs`] are validated here into [`Settings`] (a bad flag, model,
//! checker or format is a usage error, exit 254); the history is read (JSONL, or Jepsen EDN), its
//! invokes are paired with their completions up front so that a malformed history is reported
//! as `file:line: what` (exit 254) instead of as an unknown verdict; then the checkers run
//! through the registry, which contains their failures. The verdict is the exit code (0, 1, 2).
//!
//! A run directory is read-only here: its `test.json` says which checkers the run used, its
//! `history.jsonl` is checked again, and nothing in the directory is written.

use anyhow::Context;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

use faultline_checkers::edn::{self, Tuples};
use faultline_checkers::history::{self, pair_in, History, HistoryError, JsonlReader, Op, Tail};
use faultline_checkers::registry::{self, CheckerSpec, Report};
use faultline_checkers::{linear, model, CheckOptions, CheckResult, Validity};

use crate::cli::CheckArgs;
use faultline_checkers::linear::html::escape;
use crate::exit::{usage, Failure};

/// The history formats `check` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Edn,
    /// Jepsen's console log of operations (`INFO  jepsen.util - 3	:ok	:cas	[3 0]`).
    JepsenLog,
}

/// Validated settings of one `check` invocation; `path` is the history being checked, one of
/// `paths`.
#[derive(Clone, Debug)]
pub struct Settings {
    pub path: PathBuf,
    pub paths: Vec<PathBuf>,
    pub format: Option<Format>,
    pub model: Option<String>,
    pub checks: Vec<String>,
    pub json: bool,
    pub html: Option<PathBuf>,
    pub opts: CheckOptions,
}

/// Turns raw flags into settings; every rejection names the flag.
pub fn settings(args: CheckArgs) -> Result<Settings, Failure> {
    if !(args.budget.is_finite() && args.budget > 0.0) {
        return Err(usage(format!("--budget must be a positive number of seconds, got {}", args.budget)));
    }
    if args.memory_mb == 0 {
        return Err(usage("--memory-mb must be at least 1"));
    }
    if args.paths.len() > 1 && args.html.is_some() {
        return Err(usage("--html draws one history; give one file or run directory"));
    }
    let format = match args.format.as_deref() {
        None => None,
        Some("jsonl" | "json") => Some(Format::Jsonl),
        Some("edn") => Some(Format::Edn),
        Some("jepsen-log") => Some(Format::JepsenLog),
        Some(other) => return Err(usage(format!("--format: unknown format `{other}` (known: jsonl, edn, jepsen-log)"))),
    };
    if let Some(m) = &args.model {
        if !model::NAMES.contains(&m.as_str()) {
            return Err(usage(format!("--model: unknown model `{m}` (known: {})", model::NAMES.join(", "))));
        }
    }
    for c in &args.check {
        if !registry::NAMES.contains(&c.as_str()) {
            return Err(usage(format!("--check: unknown checker `{c}` (known: {})", registry::NAMES.join(", "))));
        }
    }
    if let Some(path) = &args.html {
        // Refuse an unwritable page before spending the budget on checking.
        std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(path).map_err(|e| usage(format!("--html: cannot write {}: {e}", path.display())))?;
    }
    let opts = CheckOptions {
        budget: Duration::from_secs_f64(args.budget.min(1e9)),
        memory_limit_bytes: args.memory_mb.saturating_mul(1 << 20),
        threads: 0,
    };
    let path = args.paths.first().cloned().unwrap_or_default();
    Ok(Settings { path, paths: args.paths, format, model: args.model, checks: args.check, json: args.json, html: args.html, opts })
}

/// Entry point of `faultline check`: each history in turn, in one process (start-up paid once);
/// the exit code is the worst verdict. Bad input stops at that history (exit 254), after the
/// verdicts of those before it were printed.
pub fn main(args: CheckArgs) -> Result<i32, Failure> {
    let s = settings(args)?;
    let mut codes = Vec::with_capacity(s.paths.len());
    for path in &s.paths {
        codes.push(check_one(&Settings { path: path.clone(), ..s.clone() })?);
    }
    Ok(crate::exit::worst(codes))
}

/// Checks the history `s.path` and prints its verdict; the verdict's exit code.
fn check_one(s: &Settings) -> Result<i32, Failure> {
    let checked = run(s)?;
    let file = s.path.display().to_string();
    let health = stored_health(&s.path);
    let report = &checked.report;
    // A run that could not vouch for the system stays unknown on a re-check, unless a guarantee
    // is shown violated: the same rule `faultline test` applies.
    let valid = match (&report.valid, health.is_empty()) {
        (Validity::Valid, false) => Validity::Unknown,
        (v, _) => *v,
    };
    if s.json {
        let out = json!({"valid": valid, "checkers": report.checkers_json(), "file": file, "health": {"ok": health.is_empty(), "reasons": health}});
        crate::out!("{out}");
    } else {
        crate::out!("{}", summary(&file, checked.events, checked.clients, report).trim_end());
        for r in &health {
            crate::out!("the run could not vouch for the system: {r}");
        }
    }
    if let (Some(path), Some(history)) = (&s.html, &checked.history) {
        let page = html_page(&file, history, report);
        std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(valid.exit_code())
}

/// What one check found: the counts the summary prints, the report, and the history when it
/// was held whole (only then is there an `--html` page to draw).
struct Checked {
    events: usize,
    clients: usize,
    report: Report,
    history: Option<History>,
}

/// Reads and checks the history. A JSONL history whose checkers are all `linearizable` (the
/// default) is paired while it is read and never held whole ([`stream`]); anything else (EDN,
/// other checkers, `--html`, which draws the events) is read whole first.
fn run(s: &Settings) -> Result<Checked, Failure> {
    let stored = if s.path.is_dir() { stored_specs(&s.path.join("test.json"))? } else { None };
    let specs = base_specs(s, stored);
    if s.html.is_none() && registry::only_linearizable(&specs) {
        if let Some((file, tail)) = jsonl_source(s)? {
            return stream(s, &file, tail, specs);
        }
    }
    let history = load(s)?;
    let specs = fill_models(s, specs, || model::guess(&history))?;
    let report = registry::run_all(&specs, &history, &s.opts);
    let clients = history.ops.iter().filter(|o| !o.is_nemesis()).count();
    Ok(Checked { events: history.len(), clients, report, history: Some(history) })
}

/// The JSONL file to stream, with what to do with an unfinished last line; `None` for EDN.
fn jsonl_source(s: &Settings) -> Result<Option<(PathBuf, Tail)>, Failure> {
    if s.path.is_dir() {
        return Ok(Some((s.path.join("history.jsonl"), Tail::DropUnfinished)));
    }
    let format = match s.format {
        Some(f) => f,
        None => sniff(&s.path)?,
    };
    Ok((format == Format::Jsonl).then(|| (s.path.clone(), Tail::Strict)))
}

/// Checks a JSONL history paired while it is read: the peak memory is that of the calls, not
/// of every event as well. Verdict, details and errors are those of the whole path.
fn stream(s: &Settings, file: &Path, tail: Tail, specs: Vec<CheckerSpec>) -> Result<Checked, Failure> {
    let (mut guesser, mut clients) = (model::Guesser::default(), 0usize);
    // The budget is the whole process's: what it holds already (code, libraries, buffers), and
    // a margin for what it will touch besides the calls, leave that much less for them.
    let process = resident_bytes() + PROCESS_MARGIN;
    let read = history::stream_jsonl_calls_within(file, tail, s.opts.memory_limit_bytes.saturating_sub(process), |op| {
        guesser.observe(op);
        clients += usize::from(!op.is_nemesis());
    })
    .map_err(bad_input)?;
    if read.dropped_tail {
        warn_unfinished(file);
    }
    let specs = fill_models(s, specs, || guesser.model())?;
    let report = registry::run_all_on_stream(&specs, &read, process, guesser.model(), &s.opts)
        .ok_or_else(|| Failure::Internal(anyhow::anyhow!("a checker other than linearizable reached the streaming path")))?;
    if s.paths.last() == Some(&s.path) {
        // The last history's calls live until the process exits: freeing a million of them one
        // by one takes a tenth of a second, and the exit returns their memory at once.
        std::mem::forget(read.calls);
    }
    Ok(Checked { events: read.events, clients, report, history: None })
}

/// What the process touches besides the calls and the search's counted tables, beyond its
/// resident memory when reading starts: code run later, the read buffer, thread stacks,
/// allocator slack, the calls kept between two checks of the budget. Measured: 4–6 MiB on the
/// 1M-op kv history (docs/checker.md, "The memory budget").
const PROCESS_MARGIN: u64 = 8 << 20;

/// This process's resident memory now (`VmRSS`), in bytes; 0 where it cannot be read.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    kb.unwrap_or(0) * 1024
}

fn warn_unfinished(file: &Path) {
    eprintln!("faultline: {}: ignoring the unfinished last line (the run was interrupted)", file.display());
}

/// The health reasons stored in a run directory's results.json (empty for a file, or a
/// healthy run).
fn stored_health(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path.join("results.json")) else { return Vec::new() };
    let Ok(v) = serde_json::from_str::<Value>(&text) else { return Vec::new() };
    v["health"]["reasons"].as_array().map(|a| a.iter().filter_map(|r| r.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

/// Reads the whole history (of a file, or of a run directory) and pairs it, so that a
/// malformed one is bad input.
fn load(s: &Settings) -> Result<History, Failure> {
    let (history, name) = if s.path.is_dir() {
        let file = s.path.join("history.jsonl");
        (read_run_history(&file)?, file.display().to_string())
    } else {
        let format = match s.format {
            Some(f) => f,
            None => sniff(&s.path)?,
        };
        let h = match format {
            Format::Jsonl => history::read_jsonl(&s.path),
            Format::Edn => edn::read_edn_with(&s.path, Tuples::Auto),
            Format::JepsenLog => edn::read_jepsen_log(&s.path),
        };
        (h.map_err(bad_input)?, s.path.display().to_string())
    };
    pair_in(&history.ops, &name).map_err(bad_input)?;
    Ok(history)
}

fn bad_input(e: HistoryError) -> Failure {
    if e.line == 0 {
        usage(format!("{}: {}", e.file, e.message))
    } else {
        usage(e.to_string())
    }
}

/// The format of a history file: from its extension, else from its first non-blank character.
pub fn sniff(path: &Path) -> Result<Format, Failure> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("jsonl" | "json") => return Ok(Format::Jsonl),
        Some("edn") => return Ok(Format::Edn),
        _ => {}
    }
    let mut head = Vec::with_capacity(4096);
    let opened = std::fs::File::open(path).and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, 4096), &mut head));
    opened.map_err(|e| usage(format!("{}: cannot open: {e}", path.display())))?;
    sniff_text(&String::from_utf8_lossy(&head)).ok_or_else(|| {
        usage(format!("{}: cannot tell the format (neither a JSON object, EDN nor a Jepsen log); use --format", path.display()))
    })
}

/// `{"` starts JSON lines; `[`, `(`, `{:`, `#` or a `;` comment start EDN; a line of
/// tab-separated process, `:type`, `:f` and value among the first ones is a Jepsen log.
pub fn sniff_text(text: &str) -> Option<Format> {
    let t = text.trim_start();
    let mut chars = t.chars();
    match chars.next()? {
        '{' => match chars.as_str().trim_start().chars().next() {
            Some('"') | Some('}') => Some(Format::Jsonl),
            Some(_) => Some(Format::Edn),
            None => None,
        },
        '[' | '(' | '#' | ';' => Some(Format::Edn),
        _ if edn::looks_like_jepsen_log(t) => Some(Format::JepsenLog),
        _ => None,
    }
}

/// A run's stored checkers; `None` when the run has no `test.json` or it names none.
fn stored_specs(path: &Path) -> Result<Option<Vec<CheckerSpec>>, Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(usage(format!("{}: cannot read: {e}", path.display()))),
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| usage(format!("{}:{}: invalid JSON: {e}", path.display(), e.line())))?;
    let Some(list) = v.get("checkers") else { return Ok(None) };
    let specs: Vec<CheckerSpec> = serde_json::from_value(list.clone())
        .map_err(|e| usage(format!("{}: `checkers` is not a list of checker specs: {e}", path.display())))?;
    Ok(if specs.is_empty() { None } else { Some(specs) })
}

/// A run's history, whole. A harness that crashed may have left half a line at the end: that
/// tail is dropped (with a warning) since the contract promises a checkable prefix; a bad line
/// anywhere else is bad input.
fn read_run_history(path: &Path) -> Result<History, Failure> {
    let mut reader = JsonlReader::open(path).map_err(bad_input)?.with_tail(Tail::DropUnfinished);
    let ops: Vec<Op> = reader.by_ref().collect::<Result<_, _>>().map_err(bad_input)?;
    if reader.dropped_tail() {
        warn_unfinished(path);
    }
    Ok(History { ops })
}

/// The checkers to run, models not yet filled in: `--check`, else the run's stored ones, else
/// linearizability.
fn base_specs(s: &Settings, stored: Option<Vec<CheckerSpec>>) -> Vec<CheckerSpec> {
    if !s.checks.is_empty() {
        s.checks.iter().map(|c| CheckerSpec::named(c)).collect()
    } else {
        stored.unwrap_or_else(|| vec![CheckerSpec::named("linearizable")])
    }
}

/// `--model` overrides the model of every linearizability check; one that names none gets the
/// model guessed from the operations. Every spec is validated (a bad one is a usage error).
fn fill_models(s: &Settings, mut specs: Vec<CheckerSpec>, guess: impl Fn() -> &'static str) -> Result<Vec<CheckerSpec>, Failure> {
    for spec in &mut specs {
        if spec.name == "linearizable" {
            if let Some(m) = &s.model {
                spec.model = Some(m.clone());
            } else if spec.model.is_none() {
                spec.model = Some(guess().to_string());
            }
        }
        registry::validate(spec).map_err(usage)?;
    }
    Ok(specs)
}

fn verdict_word(v: Validity) -> &'static str {
    match v {
        Validity::Valid => "valid",
        Validity::Invalid => "INVALID",
        Validity::Unknown => "unknown",
    }
}

/// A few lines per checker for a person at a terminal: `events` read, `clients` of them client
/// events (the others nemesis events).
pub fn summary(file: &str, events: usize, clients: usize, report: &Report) -> String {
    let mut out = format!("{file}: {events} events ({clients} client, {} nemesis)\n", events - clients);
    for (name, r) in &report.results {
        let model = r.details.get("model").and_then(Value::as_str).map(|m| format!(" ({m})")).unwrap_or_default();
        out.push_str(&format!("  {name}{model}: {}\n", verdict_word(r.valid)));
        for line in explain(name, r) {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out.push_str(&format!("verdict: {}\n", verdict_word(report.valid)));
    out
}

fn num(r: &CheckResult, k: &str) -> String {
    r.details.get(k).map(|v| v.to_string()).unwrap_or_else(|| "?".into())
}

fn first(r: &CheckResult, k: &str) -> Option<String> {
    r.details.get(k).and_then(|v| v.as_array()).and_then(|a| a.first()).map(|v| short(v, 300))
}

fn short(v: &Value, max: usize) -> String {
    let s = v.to_string();
    if s.len() <= max {
        return s;
    }
    let cut = (0..=max).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
    format!("{}...", &s[..cut])
}

/// The lines that explain one result: the reason of an unknown, the first anomaly of an invalid.
fn explain(name: &str, r: &CheckResult) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(e) = r.details.get("error").and_then(Value::as_str) {
        lines.push(format!("reason: {e}"));
        if r.valid == Validity::Unknown && !name.starts_with("linearizable") {
            return lines;
        }
    }
    match name.split('-').next().unwrap_or(name) {
        "counter" => {
            lines.push(format!("{} reads ({} final), {} out of bounds", num(r, "reads"), num(r, "final_reads"), num(r, "error_count")));
            lines.extend(first(r, "errors").map(|e| format!("first: {e}")));
        }
        "set" => {
            lines.push(format!(
                "{} reads, {} elements: {} lost, {} unexpected, {} duplicated; {} stale reads, worst {} ms",
                num(r, "reads"),
                num(r, "elements"),
                num(r, "lost_count"),
                num(r, "unexpected_count"),
                num(r, "duplicated_count"),
                num(r, "stale_reads"),
                num(r, "worst_stale_ms")
            ));
            for k in ["lost", "unexpected", "duplicated", "malformed_reads"] {
                lines.extend(first(r, k).map(|e| format!("{k}: {e}")));
            }
        }
        "convergence" => {
            lines.push(format!("final values: {}", r.details.get("nodes").map(|v| short(v, 300)).unwrap_or_default()));
            for k in ["disagreements", "lost", "unexpected", "out_of_bounds"] {
                lines.extend(first(r, k).map(|e| format!("{k}: {e}")));
            }
        }
        "bank" => {
            lines.push(format!("{} reads, total {}, {} bad", num(r, "reads"), num(r, "total"), num(r, "bad_count")));
            lines.extend(first(r, "bad_reads").map(|e| format!("first: {e}")));
        }
        _ => lines.extend(explain_linear(r)),
    }
    lines
}

/// The linearizability checker's explanation of its first anomaly: the key, the operation that
/// cannot be placed, what ran concurrently with it, and the checker's own sentence.
fn explain_linear(r: &CheckResult) -> Vec<String> {
    let mut lines = Vec::new();
    let anomalies = r.details.get("anomalies").and_then(Value::as_array);
    let Some(a) = anomalies.and_then(|a| a.first()) else {
        if r.valid == Validity::Invalid {
            lines.push(short(&Value::Object(r.details.clone()), 600));
        }
        return lines;
    };
    // `anomalies` explains at most a few keys, earliest violation first; `keys_invalid` counts all.
    let n = r.details.get("keys_invalid").and_then(Value::as_u64).unwrap_or(anomalies.map_or(0, |a| a.len() as u64));
    if n > 1 {
        lines.push(format!("{n} keys fail; the earliest:"));
    }
    if let Some(u) = r.details.get("keys_unchecked").and_then(Value::as_u64).filter(|u| *u > 0) {
        lines.push(format!("{u} key(s) not checked within the budget"));
    }
    if let Some(k) = a.get("key").filter(|k| !k.is_null()) {
        lines.push(format!("key: {k}"));
    }
    if let Some(op) = a.get("op") {
        lines.push(format!("cannot place: {}", describe_op(op)));
    }
    if let Some(Value::Array(ops)) = a.get("concurrent") {
        let total = a.get("concurrent_count").and_then(Value::as_u64).unwrap_or(ops.len() as u64);
        lines.push(format!("{total} concurrent operations{}", if ops.is_empty() { "" } else { ":" }));
        lines.extend(ops.iter().take(6).map(|o| format!("  {}", describe_op(o))));
        if total > 6 {
            lines.push(format!("  ... and {} more", total - 6));
        }
    }
    if let Some(e) = a.get("explanation").and_then(Value::as_str) {
        lines.push(e.to_string());
    }
    lines
}

/// An operation of the linearizability checker's explanation in one line, e.g.
/// `process 1 read -> ok 1 (events 4..5)`; anything not shaped like one is shown as JSON.
fn describe_op(op: &Value) -> String {
    let (Some(p), Some(f)) = (op.get("process"), op.get("f").and_then(Value::as_str)) else {
        return short(op, 300);
    };
    let arg = op.get("value").filter(|v| !v.is_null()).map(|v| format!(" {}", short(v, 80))).unwrap_or_default();
    let outcome = op.get("outcome").and_then(Value::as_str).unwrap_or("?");
    let output = match op.get("output") {
        Some(v) if outcome == "ok" => format!(" {}", short(v, 80)),
        _ => String::new(),
    };
    let at = |k: &str| op.get(k).and_then(Value::as_u64).map(|i| i.to_string()).unwrap_or_else(|| "...".into());
    format!("process {p} {f}{arg} -> {outcome}{output} (events {}..{})", at("invoke_index"), at("complete_index"))
}

/// The `--html` page: the linearizability checker's own page when it is the only checker,
/// else one section per checker with its details as escaped JSON (the linearizability page
/// embedded in a frame).
pub fn html_page(file: &str, h: &History, report: &Report) -> String {
    let linear_results: Vec<&(String, CheckResult)> = report.results.iter().filter(|(n, _)| n.starts_with("linearizable")).collect();
    if report.results.len() == 1 && linear_results.len() == 1 {
        return linear::html::render(h, &linear_results[0].1, file);
    }
    let mut body = String::new();
    for (name, r) in &report.results {
        body.push_str(&format!("<section><h2>{}: <span class=\"v{}\">{}</span></h2>\n", escape(name), verdict_word(r.valid), verdict_word(r.valid)));
        if name.starts_with("linearizable") {
            let page = linear::html::render(h, r, file);
            body.push_str(&format!("<iframe srcdoc=\"{}\"></iframe>\n", escape(&page)));
        }
        let pretty = serde_json::to_string_pretty(r).unwrap_or_default();
        body.push_str(&format!("<pre>{}</pre></section>\n", escape(&pretty)));
    }
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title><style>\
         body{{font-family:sans-serif;margin:2em}} pre{{background:#f4f4f4;padding:1em;overflow:auto}}\
         iframe{{width:100%;height:40em;border:1px solid #ccc}} .vvalid{{color:#070}} .vINVALID{{color:#b00}} .vunknown{{color:#a60}}\
         </style></head><body><h1>{t}: <span class=\"v{w}\">{w}</span></h1>\n{body}</body></html>\n",
        t = escape(file),
        w = verdict_word(report.valid),
    )
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_formats() {
        assert_eq!(sniff_text("  {\"process\":0}"), Some(Format::Jsonl));
        assert_eq!(sniff_text("{:type :invoke}"), Some(Format::Edn));
        assert_eq!(sniff_text("\n[{:type :ok}]"), Some(Format::Edn));
        assert_eq!(sniff_text("; comment\n{:a 1}"), Some(Format::Edn));
        assert_eq!(sniff_text("hello"), None);
        assert_eq!(sniff_text("INFO  jepsen.core - start\nINFO  jepsen.util - 4\t:invoke\t:read\tnil\n"), Some(Format::JepsenLog));
        assert_eq!(sniff_text("INFO  jepsen.util - 4 :invoke :read nil\n"), Some(Format::JepsenLog));
        assert_eq!(sniff_text("INFO  jepsen.core - the test says :ok :read\n"), None);
        assert_eq!(sniff_text("   "), None);
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("<a href=\"x\">&</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
    }
}
