//! The explanation page: a self-contained HTML file (inline CSS and SVG, no scripts, no
//! network) that draws each anomaly of a linearizability result as a timeline, one lane per
//! process, in the manner of porcupine's viewer.
//!
//! Histories have millions of operations, so only the failing key's operations around the
//! anomaly are drawn: the operation that cannot be placed (red), those concurrent with it
//! (orange outline), and the tail of the longest linearizable prefix (green, numbered in
//! linearization order). The rest is summarised in a sentence. The horizontal axis is the rank
//! of events, not time: order is what linearizability is about, and ranks keep the picture
//! compact when other keys' events interleave.
//!
//! Everything that comes from the history (values, keys, errors, process names) is escaped.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write;

use crate::history::{Call, History, Outcome};
use crate::verdict::{CheckResult, Validity};

/// At most this many operations are drawn per anomaly.
const MAX_DRAWN: usize = 150;
/// At most this many anomalies are drawn.
const MAX_ANOMALIES: usize = 5;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
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

fn esc_json(v: &Value) -> String {
    escape(&v.to_string())
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
.valid{color:#17803d}.invalid{color:#b91c1c}.unknown{color:#a16207}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:2px 6px;font-family:monospace;font-size:12px;text-align:left}
svg text{font:11px monospace}.legend span{display:inline-block;margin-right:1.5em}
.sw{display:inline-block;width:12px;height:12px;vertical-align:middle;margin-right:4px;border:1px solid #555}
.expl{background:#fef2f2;border-left:4px solid #b91c1c;padding:.5em 1em}";

/// A self-contained HTML page explaining `result` for `history`.
pub fn render(history: &History, result: &CheckResult, title: &str) -> String {
    let mut page = String::new();
    let (class, word) = match result.valid {
        Validity::Valid => ("valid", "linearizable"),
        Validity::Invalid => ("invalid", "not linearizable"),
        Validity::Unknown => ("unknown", "unknown"),
    };
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}: <span class=\"{class}\">{word}</span></h1>\n",
        t = escape(title)
    );
    let detail = |k: &str| result.details.get(k).map(esc_json).unwrap_or_else(|| "?".into());
    let _ = writeln!(
        page,
        "<p>model {}, {} operations, {} decided ({} valid, {} invalid, {} unchecked; decided by path: {}).</p>",
        detail("model"),
        detail("ops"),
        match result.details.get("keys").and_then(Value::as_u64) {
            Some(1) => "1 key".to_string(),
            _ => format!("{} keys", detail("keys")),
        },
        detail("keys_valid"),
        detail("keys_invalid"),
        detail("keys_unchecked"),
        detail("paths")
    );
    if let Some(Value::String(e)) = result.details.get("error") {
        let _ = writeln!(page, "<p class=\"unknown\">{}</p>", escape(e));
    }
    if let Some(Value::Array(keys)) = result.details.get("undecided_keys") {
        let shown: Vec<String> = keys.iter().map(esc_json).collect();
        let _ = writeln!(page, "<p>Undecided keys: {}</p>", shown.join(", "));
    }
    let anomalies = result.details.get("anomalies").and_then(|a| a.as_array()).cloned().unwrap_or_default();
    if !anomalies.is_empty() {
        let calls = history.calls().unwrap_or_default();
        for (n, a) in anomalies.iter().take(MAX_ANOMALIES).enumerate() {
            render_anomaly(&mut page, &calls, a, n);
        }
        // Only the earliest failing keys come with an anomaly; `keys_invalid` counts them all.
        let failing = result.details.get("keys_invalid").and_then(|n| n.as_u64()).map_or(anomalies.len(), |n| n as usize);
        let drawn = anomalies.len().min(MAX_ANOMALIES);
        if failing > drawn {
            let _ = writeln!(page, "<p>{} more failing keys are not drawn.</p>", failing - drawn);
        }
    }
    page.push_str("</body></html>\n");
    page
}

/// How an operation is drawn.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    Failing,
    Concurrent,
    Prefix(usize),
    Other,
}

fn render_anomaly(page: &mut String, calls: &[Call], a: &Value, n: usize) {
    let key = a.get("key").cloned().unwrap_or(Value::Null);
    let _ = writeln!(page, "<h2>Anomaly {} on key {}</h2>", n + 1, esc_json(&key));
    if let Some(Value::String(e)) = a.get("explanation") {
        let _ = writeln!(page, "<p class=\"expl\">{}</p>", escape(e));
    }
    let key_calls: Vec<&Call> =
        calls.iter().filter(|c| serde_json::to_value(&c.key).unwrap_or(Value::Null) == key).collect();
    let failing_index = a.pointer("/op/invoke_index").and_then(|v| v.as_u64());
    let concurrent: BTreeSet<u64> = a
        .get("concurrent")
        .and_then(|c| c.as_array())
        .map(|c| c.iter().filter_map(|o| o.get("invoke_index").and_then(|v| v.as_u64())).collect())
        .unwrap_or_default();
    let prefix = a.pointer("/longest_prefixes/0").cloned().unwrap_or(Value::Null);
    let prefix_len = prefix.get("length").and_then(|v| v.as_u64()).unwrap_or(0) as usize;
    let omitted = prefix.get("omitted").and_then(|v| v.as_u64()).unwrap_or(0) as usize;
    let prefix_ops: Vec<Value> = prefix.get("ops").and_then(|v| v.as_array()).cloned().unwrap_or_default();
    let order: HashMap<u64, usize> = prefix_ops
        .iter()
        .enumerate()
        .filter_map(|(i, o)| o.get("index").and_then(|v| v.as_u64()).map(|x| (x, omitted + i + 1)))
        .collect();
    let role = |c: &Call| {
        if Some(c.invoke_index) == failing_index {
            Role::Failing
        } else if concurrent.contains(&c.invoke_index) {
            Role::Concurrent
        } else if let Some(k) = order.get(&c.invoke_index) {
            Role::Prefix(*k)
        } else {
            Role::Other
        }
    };
    let drawn = window(&key_calls, failing_index, &role);
    let _ = writeln!(
        page,
        "<p>Key {} has {} operations; {} are drawn (the failing one, those concurrent with it, and the end of the longest linearizable prefix of {} operations).</p>",
        esc_json(&key),
        key_calls.len(),
        drawn.len(),
        prefix_len
    );
    page.push_str("<p class=\"legend\"><span><i class=\"sw\" style=\"background:#ef4444\"></i>cannot be placed</span><span><i class=\"sw\" style=\"background:#fde68a;border-color:#ea580c\"></i>concurrent with it</span><span><i class=\"sw\" style=\"background:#86efac\"></i>in the longest linearizable prefix (numbered)</span><span><i class=\"sw\" style=\"background:#e5e7eb\"></i>other</span><span>dashed: outcome unknown</span></p>\n");
    timeline(page, &drawn, &role);
    prefix_table(page, &prefix_ops, omitted, prefix.get("state"));
}

/// Chooses the operations to draw: all that have a role, then the others nearest the failing
/// operation, at most [`MAX_DRAWN`].
fn window<'a>(key_calls: &[&'a Call], failing: Option<u64>, role: &dyn Fn(&Call) -> Role) -> Vec<&'a Call> {
    let centre = failing.unwrap_or(0) as i128;
    let mut ranked: Vec<&Call> = key_calls.to_vec();
    ranked.sort_by_key(|c| (role(c) == Role::Other, (c.invoke_index as i128 - centre).abs()));
    ranked.truncate(MAX_DRAWN);
    ranked.sort_by_key(|c| c.invoke_index);
    ranked
}

fn timeline(page: &mut String, drawn: &[&Call], role: &dyn Fn(&Call) -> Role) {
    let mut events: BTreeSet<u64> = BTreeSet::new();
    for c in drawn {
        events.insert(c.invoke_index);
        if let Some(e) = c.complete_index {
            events.insert(e);
        }
    }
    let rank: HashMap<u64, usize> = events.iter().enumerate().map(|(i, e)| (*e, i)).collect();
    let lanes: BTreeMap<u64, usize> = drawn.iter().map(|c| c.process).collect::<BTreeSet<_>>().into_iter().enumerate().map(|(i, p)| (p, i)).collect();
    let (step, lane_h, left) = (26.0f64, 30.0f64, 70.0f64);
    let width = left + (events.len() as f64 + 1.0) * step;
    let height = lanes.len() as f64 * lane_h + 10.0;
    let _ = writeln!(page, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\">");
    for (p, i) in &lanes {
        let y = *i as f64 * lane_h;
        let _ = writeln!(page, "<text x=\"4\" y=\"{:.0}\">process {}</text>", y + 19.0, p);
        let _ = writeln!(page, "<line x1=\"{left}\" x2=\"{width:.0}\" y1=\"{:.0}\" y2=\"{:.0}\" stroke=\"#eee\"/>", y + 15.0, y + 15.0);
    }
    for c in drawn {
        let y = lanes[&c.process] as f64 * lane_h + 4.0;
        let x0 = left + rank[&c.invoke_index] as f64 * step;
        let x1 = match c.complete_index {
            Some(e) => left + rank[&e] as f64 * step + step * 0.8,
            None => width - 2.0,
        };
        let (fill, stroke, label) = match role(c) {
            Role::Failing => ("#ef4444", "#7f1d1d", String::new()),
            Role::Concurrent => ("#fde68a", "#ea580c", String::new()),
            Role::Prefix(k) => ("#86efac", "#166534", format!("#{k} ")),
            Role::Other => ("#e5e7eb", "#6b7280", String::new()),
        };
        let dash = if c.complete_index.is_none() { " stroke-dasharray=\"4 3\"" } else { "" };
        let text = format!("{label}{} {}{}", c.f, short(&c.input), output_text(c)).replace("  ", " ");
        let tip = format!("process {} {} {} -> {} (events {}..{})", c.process, c.f, c.input, outcome_text(c), c.invoke_index,
            c.complete_index.map_or("never".to_string(), |e| e.to_string()));
        let _ = writeln!(
            page,
            "<g><title>{}</title><rect x=\"{x0:.0}\" y=\"{y:.0}\" width=\"{:.0}\" height=\"22\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\"{dash}/><text x=\"{:.0}\" y=\"{:.0}\">{}</text></g>",
            escape(&tip),
            (x1 - x0).max(4.0),
            x0 + 3.0,
            y + 15.0,
            escape(&text)
        );
    }
    page.push_str("</svg>\n");
}

fn short(v: &Value) -> String {
    if v.is_null() {
        return String::new();
    }
    let mut s = v.to_string();
    if s.chars().count() > 24 {
        s = s.chars().take(22).collect::<String>() + "…";
    }
    s
}

fn output_text(c: &Call) -> String {
    match (&*c.f, c.output()) {
        ("read", Some(v)) => format!(" → {}", short(v).if_empty("null")),
        _ => String::new(),
    }
}

fn outcome_text(c: &Call) -> String {
    match &c.outcome {
        Outcome::Ok(v) => format!("ok {v}"),
        Outcome::Fail => "fail".into(),
        Outcome::Unknown => "unknown".into(),
    }
}

trait IfEmpty {
    fn if_empty(self, other: &str) -> String;
}

impl IfEmpty for String {
    fn if_empty(self, other: &str) -> String {
        if self.is_empty() {
            other.to_string()
        } else {
            self
        }
    }
}

fn prefix_table(page: &mut String, ops: &[Value], omitted: usize, state: Option<&Value>) {
    if ops.is_empty() {
        return;
    }
    let _ = writeln!(page, "<p>The end of the longest linearizable prefix ({omitted} earlier operations not listed), with the state after each operation:</p>");
    page.push_str("<table><tr><th>#</th><th>event</th><th>process</th><th>op</th><th>value</th><th>output</th><th>state after</th></tr>\n");
    for (i, o) in ops.iter().enumerate() {
        let g = |k: &str| o.get(k).map(esc_json).unwrap_or_default();
        let f = o.get("f").and_then(|v| v.as_str()).unwrap_or("");
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            omitted + i + 1,
            g("index"),
            g("process"),
            escape(f),
            g("value"),
            g("output"),
            g("state")
        );
    }
    page.push_str("</table>\n");
    if let Some(s) = state {
        let _ = writeln!(page, "<p>State after the prefix: <code>{}</code></p>", esc_json(s));
    }
}
