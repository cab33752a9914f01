//! The parts of a run report that explain a failure.
//!
//! - [`lin_timeline`]: a linearizability anomaly (as the checker explains it: `key`, `op`,
//!   `concurrent`, `longest_prefixes`, `explanation`) drawn as an inline SVG: the key's
//!   operations around the anomaly, one lane per process, in event order; the operations of the
//!   longest linearizable prefix in green and numbered in their linearization order, the
//!   operation that cannot be placed in red, the operations concurrent with it outlined. The
//!   process labels are a column of their own that does not scroll, and a wide drawing opens
//!   scrolled to its right end, where the anomaly is (it is drawn near the end of its window).
//!   The wall-clock view of the same anomaly, with nodes and faults, is [`super::zoom`].
//! - [`final_states`]: every node's final reads side by side, per key, with the cells that
//!   differ from the majority marked and, for sets, the missing and extra elements per node.
//! - [`checker_details`]: whatever else a checker reported (counts, lost and unexpected
//!   elements, bad reads), escaped and truncated.

use super::data::RunData;
use super::html::{escape, json_text, truncate};
use super::story::{event_index, on_key as key_matches};
use super::text::{natural_cmp, sort_natural};
use faultline_checkers::{Call, Outcome};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Most calls drawn around an anomaly; the timeline must stay readable.
const TIMELINE_BEFORE: usize = 40;
const TIMELINE_AFTER: usize = 6;
/// Most list items shown for one detail field.
const LIST_MAX: usize = 25;

/// How the timeline marks each call.
#[derive(Default)]
struct Marks {
    failing: Option<u64>,
    concurrent: HashSet<u64>,
    /// invoke index → position (1-based) in the longest linearizable prefix.
    order: HashMap<u64, usize>,
}

fn marks_of(anomaly: &Value) -> Marks {
    let mut m = Marks { failing: anomaly.get("op").and_then(event_index), ..Marks::default() };
    if let Some(Value::Array(c)) = anomaly.get("concurrent") {
        m.concurrent = c.iter().filter_map(event_index).collect();
    }
    if let Some(p) = anomaly.get("longest_prefixes").and_then(|p| p.get(0)) {
        let omitted = p.get("omitted").and_then(Value::as_u64).unwrap_or(0) as usize;
        let ops = p.get("ops").and_then(Value::as_array).cloned().unwrap_or_else(|| p.as_array().cloned().unwrap_or_default());
        for (i, op) in ops.iter().enumerate() {
            if let Some(ix) = event_index(op) {
                m.order.insert(ix, omitted + i + 1);
            }
        }
    }
    m
}

/// Picks the calls to draw: the key's calls around the failing one, plus every marked call.
fn window<'a>(calls: &'a [Call], key: &Value, marks: &Marks) -> Vec<&'a Call> {
    let keyed: Vec<&Call> = calls.iter().filter(|c| key_matches(c, key)).collect();
    let pos = marks.failing.and_then(|f| keyed.iter().position(|c| c.invoke_index == f)).unwrap_or(keyed.len().saturating_sub(1));
    let lo = pos.saturating_sub(TIMELINE_BEFORE);
    let hi = (pos + TIMELINE_AFTER + 1).min(keyed.len());
    keyed
        .iter()
        .enumerate()
        .filter(|(i, c)| (lo..hi).contains(i) || marks.concurrent.contains(&c.invoke_index) || marks.failing == Some(c.invoke_index))
        .map(|(_, c)| *c)
        .collect()
}

fn call_label(c: &Call) -> String {
    let arg = if c.input.is_null() { String::new() } else { format!(" {}", c.input) };
    let out = match &c.outcome {
        Outcome::Ok(v) if &*c.f == "read" => format!(" → {v}"),
        Outcome::Ok(_) => String::new(),
        Outcome::Fail => " (fail)".into(),
        Outcome::Unknown => " (info)".into(),
    };
    format!("{}{arg}{out}", c.f)
}

/// Draws one anomaly's timeline as an inline SVG (all text escaped).
pub fn lin_timeline(data: &RunData, anomaly: &Value) -> String {
    let key = anomaly.get("key").cloned().unwrap_or(Value::Null);
    let marks = marks_of(anomaly);
    let shown = window(&data.calls, &key, &marks);
    if shown.is_empty() {
        return "<p class=\"muted\">The history has no operations on this key to draw.</p>".into();
    }
    let open_end = shown.iter().filter_map(|c| c.complete_index).chain(shown.iter().map(|c| c.invoke_index)).max().unwrap_or(0) + 1;
    let mut events: Vec<u64> = shown.iter().flat_map(|c| [c.invoke_index, c.complete_index.unwrap_or(open_end)]).collect();
    events.sort_unstable();
    events.dedup();
    let rank: HashMap<u64, usize> = events.iter().enumerate().map(|(i, e)| (*e, i)).collect();
    let procs: BTreeSet<u64> = shown.iter().map(|c| c.process).collect();
    let lane: HashMap<u64, usize> = procs.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let (left, step, lane_h, top) = (4.0, 46.0, 34.0, 26.0);
    let width = left + step * events.len() as f64 + 20.0;
    let height = top + lane_h * procs.len() as f64 + 10.0;
    let mut labels = format!("<svg class=\"lane-labels\" xmlns=\"http://www.w3.org/2000/svg\" width=\"56\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"11\">");
    let mut body = format!(
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    body += "<text x=\"4\" y=\"14\" fill=\"#555\">process lanes; x = event order (happened-before), not time</text>";
    for (p, i) in &lane {
        let y = top + lane_h * *i as f64;
        labels += &format!("<text x=\"4\" y=\"{:.0}\" font-weight=\"bold\">p{p}</text>", y + 20.0);
        body += &format!("<line x1=\"0\" x2=\"{width:.0}\" y1=\"{:.0}\" y2=\"{:.0}\" stroke=\"#eee\"/>", y + 29.0, y + 29.0);
    }
    labels += "</svg>";
    for c in &shown {
        body += &call_rect(c, &marks, &rank, &lane, open_end, (left, step, lane_h, top));
    }
    body += "</svg>";
    // Wide drawings open at their right end, where the anomaly is; narrow ones stay left-aligned.
    let class = if width > 1000.0 { "scroll end" } else { "scroll" };
    format!("<div class=\"lanes\">{labels}<div class=\"{class}\">{body}</div></div>")
}

fn call_rect(c: &Call, marks: &Marks, rank: &HashMap<u64, usize>, lane: &HashMap<u64, usize>, open_end: u64, geo: (f64, f64, f64, f64)) -> String {
    let (left, step, lane_h, top) = geo;
    let x0 = left + step * rank[&c.invoke_index] as f64 + 2.0;
    let x1 = left + step * rank[&c.complete_index.unwrap_or(open_end)] as f64 + step - 2.0;
    let y = top + lane_h * lane[&c.process] as f64 + 4.0;
    let is_failing = marks.failing == Some(c.invoke_index);
    let order = marks.order.get(&c.invoke_index);
    let (fill, stroke, class) = if is_failing {
        ("#ef9a9a", "#b71c1c", "op failing")
    } else if order.is_some() {
        ("#c8e6c9", "#2e7d32", "op prefix")
    } else if marks.concurrent.contains(&c.invoke_index) {
        ("#fff3e0", "#ef6c00", "op concurrent")
    } else {
        ("#f0f0f0", "#9e9e9e", "op")
    };
    let dash = if c.complete_index.is_none() { " stroke-dasharray=\"4 3\"" } else { "" };
    let label = call_label(c);
    let fit = (((x1 - x0) / 6.5) as usize).max(3);
    let title = format!(
        "process {} {} events {}..{}{}",
        c.process,
        label,
        c.invoke_index,
        c.complete_index.map_or("(never completed)".to_string(), |x| x.to_string()),
        order.map_or(String::new(), |o| format!("; position {o} in the longest linearizable prefix"))
    );
    let mut s = format!(
        "<g class=\"{class}\" data-index=\"{}\"><title>{}</title><rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{}\"{dash}/>",
        c.invoke_index,
        escape(&title),
        (x1 - x0).max(4.0),
        lane_h - 10.0,
        if is_failing { 2.5 } else { 1.2 }
    );
    s += &format!("<text x=\"{:.1}\" y=\"{:.1}\">{}</text>", x0 + 3.0, y + 16.0, escape(&truncate(&label, fit)));
    if let Some(o) = order {
        s += &format!("<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"#2e7d32\">#{o}</text>", x0 + 1.0, y - 0.5);
    }
    s += "</g>";
    s
}

/// The HTML of one linearizability anomaly: the explanation, the timeline, and the tail of the
/// longest linearizable prefix with the model state after each step.
pub fn lin_anomaly(data: &RunData, anomaly: &Value) -> String {
    let key = anomaly.get("key").cloned().unwrap_or(Value::Null);
    let mut s = format!("<h3>Key {} in event order</h3>", json_text(&key, 80));
    if let Some(e) = anomaly.get("explanation").and_then(Value::as_str) {
        s += &format!("<div class=\"explain\">{}</div>", escape(e));
    }
    s += "<p class=\"legend small\"><span><span class=\"sw\" style=\"background:#c8e6c9\"></span>in the longest linearizable prefix (#n = its place in the order)</span>\
          <span><span class=\"sw\" style=\"background:#ef9a9a\"></span>cannot be placed</span>\
          <span><span class=\"sw\" style=\"background:#fff3e0\"></span>concurrent with it</span>\
          <span><span class=\"sw\" style=\"background:#f0f0f0;border-style:dashed\"></span>dashed: outcome unknown</span></p>";
    s += &lin_timeline(data, anomaly);
    if let Some(p) = anomaly.get("longest_prefixes").and_then(|p| p.get(0)) {
        let n_alt = anomaly.get("longest_prefixes").and_then(Value::as_array).map_or(0, Vec::len);
        let omitted = p.get("omitted").and_then(Value::as_u64).unwrap_or(0);
        s += &format!(
            "<details><summary>Longest linearizable prefix: {} operations{}{}</summary><table>",
            p.get("length").and_then(Value::as_u64).unwrap_or(0),
            if omitted > 0 { format!(", the last {} shown", p.get("ops").and_then(Value::as_array).map_or(0, Vec::len)) } else { String::new() },
            if n_alt > 1 { format!("; {n_alt} alternative prefixes found") } else { String::new() }
        );
        s += &super::html::header(&["#", "event", "process", "f", "value", "output", "state after"]);
        for (i, op) in p.get("ops").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let g = |k: &str| json_text(op.get(k).unwrap_or(&Value::Null), 120);
            s += &super::html::row(&[format!("{}", omitted as usize + i + 1), g("index"), g("process"), g("f"), g("value"), g("output"), g("state")]);
        }
        s += "</table></details>";
    }
    s
}

/// node → key → last final value read from it.
pub fn final_reads(data: &RunData) -> BTreeMap<String, BTreeMap<String, Value>> {
    let mut m: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for c in data.calls.iter().filter(|c| c.final_read) {
        if let (Outcome::Ok(v), Some(node)) = (&c.outcome, &c.node) {
            let key = c.key.as_ref().map_or(String::new(), |k| k.to_string());
            m.entry(node.to_string()).or_default().insert(key, v.clone());
        }
    }
    m
}

fn as_set(v: &Value) -> Option<BTreeSet<String>> {
    v.as_array().map(|a| a.iter().map(|x| x.to_string()).collect())
}

/// The per-node final states side by side; `None` when the history has no final reads.
pub fn final_states(data: &RunData) -> Option<String> {
    let reads = final_reads(data);
    if reads.is_empty() {
        return None;
    }
    let mut nodes: Vec<&String> = reads.keys().collect();
    nodes.sort_by(|a, b| natural_cmp(a, b));
    let mut keys: Vec<&String> = reads.values().flat_map(|m| m.keys()).collect::<BTreeSet<_>>().into_iter().collect();
    sort_natural(&mut keys);
    let mut s = String::from("<div class=\"scroll\"><table class=\"final\"><thead><tr><th>key</th>");
    for n in &nodes {
        s += &format!("<th>{}</th>", escape(n));
    }
    s += "</tr></thead>\n";
    for k in keys {
        s += &final_row(k, &nodes, &reads);
    }
    s += "</table></div><p class=\"small muted\">Cells marked red differ from the value most nodes read; for sets, each node lists the elements it lacks (−) or has in excess (+) compared with the union of all nodes.</p>";
    Some(s)
}

fn final_row(key: &str, nodes: &[&String], reads: &BTreeMap<String, BTreeMap<String, Value>>) -> String {
    let vals: Vec<Option<&Value>> = nodes.iter().map(|n| reads[*n].get(key)).collect();
    let mut freq: HashMap<String, usize> = HashMap::new();
    for v in vals.iter().flatten() {
        *freq.entry(canonical(v)).or_default() += 1;
    }
    let majority = freq.iter().max_by_key(|(k, c)| (**c, std::cmp::Reverse((*k).clone()))).map(|(k, _)| k.clone());
    let union: Option<BTreeSet<String>> = if vals.iter().flatten().all(|v| v.is_array()) {
        Some(vals.iter().flatten().filter_map(|v| as_set(v)).flatten().collect())
    } else {
        None
    };
    let mut s = format!("<tr><td class=\"mono\">{}</td>", escape(if key.is_empty() { "(no key)" } else { key }));
    for v in &vals {
        let Some(v) = v else {
            s += "<td class=\"diff\">not read</td>";
            continue;
        };
        let differs = majority.as_deref() != Some(canonical(v).as_str());
        let mut cell = match (&union, as_set(v)) {
            (Some(u), Some(mine)) => {
                let missing: Vec<&String> = u.difference(&mine).collect();
                let body = format!("{} elements", mine.len());
                if missing.is_empty() {
                    body
                } else {
                    format!("{body}<br>− {}", escape(&truncate(&missing.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(" "), 300)))
                }
            }
            _ => json_text(v, 200),
        };
        if differs {
            cell = format!("{cell} ≠");
        }
        s += &format!("<td class=\"mono{}\">{cell}</td>", if differs { " diff" } else { "" });
    }
    s + "</tr>\n"
}

/// A value's comparison form: sets (arrays) compare as sorted element lists.
fn canonical(v: &Value) -> String {
    match as_set(v) {
        Some(set) => set.into_iter().collect::<Vec<_>>().join(","),
        None => v.to_string(),
    }
}

/// Everything a checker reported besides its verdict, with lists cut to [`LIST_MAX`] items.
pub fn checker_details(result: &Value) -> String {
    let Some(m) = result.as_object() else { return String::new() };
    let mut scalars = String::new();
    let mut lists = String::new();
    for (k, v) in m {
        if k == "valid" || k == "anomalies" || (k == "nodes" && v.is_object()) {
            continue;
        }
        match v {
            Value::Array(a) if a.is_empty() => {}
            Value::Array(a) => {
                lists += &format!("<h4>{} ({}{})</h4><ul class=\"mono small\">", escape(k), a.len(), count_note(m, k, a.len()));
                for item in a.iter().take(LIST_MAX) {
                    lists += &format!("<li>{}</li>", json_text(item, 400));
                }
                lists += "</ul>";
            }
            _ => scalars += &super::html::row(&[escape(k), format!("<span class=\"mono\">{}</span>", json_text(v, 300))]),
        }
    }
    let mut s = String::new();
    if !scalars.is_empty() {
        s += &format!("<table class=\"details\">{scalars}</table>");
    }
    s + &lists
}

fn count_note(m: &serde_json::Map<String, Value>, k: &str, shown: usize) -> String {
    match m.get(&format!("{k}_count")).and_then(Value::as_u64) {
        Some(total) if total as usize > shown => format!(" of {total}"),
        _ => String::new(),
    }
}
