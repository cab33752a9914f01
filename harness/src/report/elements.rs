//! Lost and unexpected elements (set and convergence checkers) and out-of-bounds counter reads,
//! drawn for a person: for every element the checker names, when it was added, on which node
//! and by which process, when the add was acknowledged, when and where it was last seen, and,
//! per node, whether the node's final read holds it and when the node last showed it.
//!
//! The checkers name elements and a few example reads; the times and nodes come from the
//! history, which this module scans once for all the elements of interest.

use super::data::{secs, RunData};
use super::html::{escape, header, json_text};
use super::story::{call_at, event_index, node_of, proc_of, value_text};
use super::text::{natural_cmp, plural, secs_text};
use faultline_checkers::value::canonical_text;
use faultline_checkers::{Call, Outcome};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Most elements of each kind described.
const ELEMENTS_MAX: usize = 25;

/// Whether an element should have been there or should not have been.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Lost,
    Unexpected,
}

/// What the history says about one element.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub element: Value,
    /// The first add of it that did not fail (index into `RunData::calls`).
    pub add: Option<usize>,
    /// When that add was acknowledged, seconds.
    pub acked_s: Option<f64>,
    /// Node → the last time (seconds, by completion) a read on it returned the element.
    pub last_seen: BTreeMap<String, f64>,
    /// Node → whether its last final read holds the element.
    pub in_final: BTreeMap<String, bool>,
    /// The read the checker says first lacked it (index into `RunData::calls`).
    pub missing_from: Option<usize>,
}

impl Trace {
    /// The latest sighting on any node.
    pub fn last_seen_any(&self) -> Option<(&String, f64)> {
        self.last_seen.iter().map(|(n, t)| (n, *t)).max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// The elements a result names, with their kind and (for the set checker) the read that lacked
/// them: `set` lists `lost[].element` and `unexpected[].element`, `convergence` lists
/// `lost[].elements` and `unexpected[].elements` per node.
pub fn named(result: &Value) -> Vec<(Kind, Value, Option<u64>)> {
    let mut out: Vec<(Kind, Value, Option<u64>)> = Vec::new();
    for (field, kind) in [("lost", Kind::Lost), ("unexpected", Kind::Unexpected)] {
        for item in result.get(field).and_then(Value::as_array).into_iter().flatten() {
            let missing = item.get("missing_from").and_then(event_index);
            let els: Vec<Value> = match (item.get("element"), item.get("elements")) {
                (Some(e), _) => vec![e.clone()],
                (_, Some(Value::Array(a))) => a.clone(),
                _ => Vec::new(),
            };
            for e in els {
                if out.len() < 2 * ELEMENTS_MAX && !out.iter().any(|(k, x, _)| *k == kind && canonical_text(x) == canonical_text(&e)) {
                    out.push((kind, e, missing));
                }
            }
        }
    }
    out
}

/// Traces every named element through the history in one pass over the reads.
pub fn trace(data: &RunData, wanted: &[(Kind, Value, Option<u64>)]) -> Vec<Trace> {
    let ids: HashMap<String, usize> = wanted.iter().enumerate().map(|(i, (_, e, _))| (canonical_text(e), i)).collect();
    let mut out: Vec<Trace> = wanted
        .iter()
        .map(|(_, e, m)| Trace { element: e.clone(), missing_from: m.and_then(|m| call_at(&data.calls, m)), ..Trace::default() })
        .collect();
    let mut last_final: HashMap<String, usize> = HashMap::new();
    for (i, c) in data.calls.iter().enumerate() {
        match (&*c.f, &c.outcome) {
            ("add", o) if *o != Outcome::Fail => note_add(&mut out, &ids, i, c),
            ("read", Outcome::Ok(Value::Array(items))) => {
                let node = node_of(c);
                let t = c.complete_time.map_or(secs(c.invoke_time), secs);
                for x in items {
                    if let Some(&k) = ids.get(&canonical_text(x)) {
                        let e = out[k].last_seen.entry(node.clone()).or_insert(t);
                        *e = e.max(t);
                    }
                }
                if c.final_read {
                    last_final.insert(node, i);
                }
            }
            _ => {}
        }
    }
    for (node, &i) in &last_final {
        let held: std::collections::HashSet<String> = data.calls[i].output().and_then(Value::as_array).into_iter().flatten().map(canonical_text).collect();
        for t in out.iter_mut() {
            t.in_final.insert(node.clone(), held.contains(&canonical_text(&t.element)));
        }
    }
    out
}

fn note_add(out: &mut [Trace], ids: &HashMap<String, usize>, i: usize, c: &Call) {
    let e = if c.input.is_null() { c.output().cloned().unwrap_or(Value::Null) } else { c.input.clone() };
    let Some(&k) = ids.get(&canonical_text(&e)) else { return };
    let t = &mut out[k];
    if t.add.is_none() {
        t.add = Some(i);
    }
    if let (Outcome::Ok(_), Some(done)) = (&c.outcome, c.complete_time) {
        t.acked_s = Some(t.acked_s.map_or(secs(done), |a: f64| a.min(secs(done))));
    }
}

/// The elements section of a set or convergence failure; empty when the result names none.
pub fn section(data: &RunData, result: &Value) -> String {
    let wanted = named(result);
    let mut s = String::new();
    if !wanted.is_empty() {
        let traces = trace(data, &wanted);
        for kind in [Kind::Lost, Kind::Unexpected] {
            let rows: Vec<&Trace> = wanted.iter().zip(&traces).filter(|((k, _, _), _)| *k == kind).map(|(_, t)| t).take(ELEMENTS_MAX).collect();
            if !rows.is_empty() {
                s += &element_table(data, kind, &rows);
            }
        }
    }
    s + &counter_table(data, result)
}

fn element_table(data: &RunData, kind: Kind, rows: &[&Trace]) -> String {
    let mut nodes: Vec<String> = rows.iter().flat_map(|t| t.in_final.keys().chain(t.last_seen.keys()).cloned()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    nodes.sort_by(|a, b| natural_cmp(a, b));
    let (id, title) = match kind {
        Kind::Lost => ("lost-elements", "Lost elements: acknowledged, then gone"),
        Kind::Unexpected => ("unexpected-elements", "Unexpected elements: read, never successfully added"),
    };
    let mut s = format!("<h4 id=\"{id}\">{title} ({})</h4><div class=\"scroll\"><table class=\"{id}\">", rows.len());
    let mut head: Vec<String> = ["element", "added", "acknowledged", "last seen", "first missing"].iter().map(|x| x.to_string()).collect();
    head.extend(nodes.iter().map(|n| format!("{n}: final · last seen")));
    s += &header(&head.iter().map(String::as_str).collect::<Vec<_>>());
    for t in rows {
        s += &element_row(data, t, &nodes);
    }
    s + "</table></div><p class=\"small muted\">Times are seconds since the run began; \"last seen\" is the completion of the last read that returned the element. ✗: the node's final read lacks it; ✓: it holds it.</p>"
}

fn element_row(data: &RunData, t: &Trace, nodes: &[String]) -> String {
    let add = t.add.map(|i| &data.calls[i]);
    let added = add.map_or("never (no add that did not fail)".into(), |c| format!("{} on {} ({})", secs_text(secs(c.invoke_time)), node_of(c), proc_of(c)));
    let acked = t.acked_s.map_or("never".into(), secs_text);
    let seen = t.last_seen_any().map_or("never".into(), |(n, s)| format!("{} on {n}", secs_text(s)));
    let missing = t.missing_from.map(|i| &data.calls[i]).map_or("–".into(), |c| format!("{} on {}", secs_text(secs(c.invoke_time)), node_of(c)));
    let mut s = format!(
        "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        json_text(&t.element, 60),
        escape(&added),
        escape(&acked),
        escape(&seen),
        escape(&missing)
    );
    for n in nodes {
        let fin = match t.in_final.get(n) {
            Some(true) => "✓",
            Some(false) => "✗",
            None => "–",
        };
        let last = t.last_seen.get(n).map_or("never".into(), |x| secs_text(*x));
        let _ = write!(s, "<td class=\"{}\">{fin} · {}</td>", if fin == "✗" && t.acked_s.is_some() { "diff" } else { "" }, escape(&last));
    }
    s + "</tr>\n"
}

/// Counter reads out of their bounds (counter checker `errors`, convergence `out_of_bounds`).
fn counter_table(data: &RunData, result: &Value) -> String {
    let rows: Vec<&Value> = ["errors", "out_of_bounds"].iter().filter_map(|f| result.get(*f).and_then(Value::as_array)).flatten().filter(|e| e.get("bounds").is_some()).collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut s = format!("<h4 id=\"counter-reads\">Counter reads outside what the adds allow ({})</h4><table class=\"counter-reads\">", rows.len());
    s += &header(&["read at", "node", "process", "value", "possible (acknowledged … acknowledged + unknown)"]);
    for e in rows.iter().take(ELEMENTS_MAX) {
        let call = e.get("read").and_then(event_index).and_then(|i| call_at(&data.calls, i)).map(|i| &data.calls[i]);
        let node = e.get("node").and_then(Value::as_str).map(str::to_string).or_else(|| call.map(node_of)).unwrap_or_default();
        let b = |i: usize| e.pointer(&format!("/bounds/{i}")).map(|v| json_text(v, 30)).unwrap_or_default();
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num diff\">{}</td><td class=\"num\">{} … {}</td></tr>",
            call.map_or("final".into(), |c| secs_text(secs(c.invoke_time))),
            escape(&node),
            call.map_or(String::new(), |c| escape(&proc_of(c))),
            json_text(e.get("value").unwrap_or(&Value::Null), 40),
            b(0),
            b(1)
        );
    }
    s + "</table>"
}

/// One sentence for a set, convergence or counter failure.
pub fn headline(data: &RunData, result: &Value) -> Option<String> {
    let wanted = named(result);
    if let Some(((kind, _, _), t)) = wanted.iter().zip(trace(data, &wanted)).next() {
        return Some(element_sentence(data, *kind, &t));
    }
    if let Some(e) = ["errors", "out_of_bounds"].iter().filter_map(|f| result.get(*f).and_then(Value::as_array)).flatten().next() {
        let call = e.get("read").and_then(event_index).and_then(|i| call_at(&data.calls, i)).map(|i| &data.calls[i]);
        let at = call.map_or(String::new(), |c| format!(" at {} on {}", secs_text(secs(c.invoke_time)), node_of(c)));
        let node = e.get("node").and_then(Value::as_str).map_or(String::new(), |n| format!(" on {n}"));
        return Some(format!(
            "counter read{at}{node} returned {}, outside the possible {}…{}",
            value_text(e.get("value").unwrap_or(&Value::Null)),
            value_text(e.pointer("/bounds/0").unwrap_or(&Value::Null)),
            value_text(e.pointer("/bounds/1").unwrap_or(&Value::Null))
        ));
    }
    disagreement_sentence(result)
}

fn element_sentence(data: &RunData, kind: Kind, t: &Trace) -> String {
    let e = value_text(&t.element);
    let add = t.add.map(|i| &data.calls[i]);
    let origin = add.map_or(String::new(), |c| format!(" (added at {} on {} by {}", secs_text(secs(c.invoke_time)), node_of(c), proc_of(c)));
    let origin = match (origin.is_empty(), t.acked_s) {
        (true, _) => String::new(),
        (false, Some(a)) => format!("{origin}, acknowledged at {})", secs_text(a)),
        (false, None) => format!("{origin}, never acknowledged)"),
    };
    let lacking: Vec<&String> = t.in_final.iter().filter(|(_, h)| !**h).map(|(n, _)| n).collect();
    let seen = t.last_seen_any().map_or("never read back".into(), |(n, s)| format!("last seen at {} on {n}", secs_text(s)));
    match kind {
        Kind::Lost if !lacking.is_empty() => format!("element {e}{origin} is missing from the final read of {}; {seen}", join(&lacking)),
        Kind::Lost => {
            let from = t.missing_from.map(|i| &data.calls[i]).map_or(String::new(), |c| format!(" from the read at {} on {}", secs_text(secs(c.invoke_time)), node_of(c)));
            format!("element {e}{origin} was lost{from}; {seen}")
        }
        Kind::Unexpected => {
            let holders: Vec<&String> = t.in_final.iter().filter(|(_, h)| **h).map(|(n, _)| n).collect();
            let where_ = if holders.is_empty() { String::new() } else { format!(", held at the end by {}", join(&holders)) };
            format!("element {e} was read but never successfully added{where_}; {seen}")
        }
    }
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// `nodes disagree at the end on key k: n1, n2 read 5; n3 read 4`.
fn disagreement_sentence(result: &Value) -> Option<String> {
    let d = result.get("disagreements").and_then(Value::as_array)?.first()?;
    let groups: Vec<String> = d
        .get("groups")
        .and_then(Value::as_array)?
        .iter()
        .map(|g| {
            let nodes: Vec<&str> = g.get("nodes").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            format!("{} read {}", nodes.join(", "), value_text(g.get("value").unwrap_or(&Value::Null)))
        })
        .collect();
    let key = d.get("key").and_then(Value::as_str).filter(|k| !k.is_empty()).map_or(String::new(), |k| format!(" on key {k}"));
    let n = result.get("disagreements").and_then(Value::as_array).map_or(0, Vec::len);
    let more = if n > 1 { format!(" ({} disagree)", plural(n as u64, "key")) } else { String::new() };
    Some(format!("nodes disagree at the end{key}: {}{more}", groups.join("; ")))
}
