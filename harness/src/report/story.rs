//! The story of a linearizability anomaly in plain words, built from the checker's explanation
//! and the history: which operation, on which key and node, when (seconds into the run), which
//! acknowledged write had already replaced the value it returned, and which faults were active.
//!
//! The checker works in event order and knows nothing of nodes or clocks; the history has both
//! (`node`, `time` on every operation, nemesis events for the faults). [`LinStory`] joins them:
//! it finds the calls the anomaly refers to by their invoke index and classifies the calls of
//! the key around it (concurrent, the writes of the value it read, the writes that replaced that
//! value before it began), which the zoomed timeline draws and [`LinStory::sentence`] tells.
//!
//! [`headline`] picks the one sentence that sums up a failed run for the index: the story of
//! the first failure of the first failing checker.

use super::data::{secs, FaultPeriod, RunData};
use super::text::{plural, secs_text};
use super::{bank, elements};
use faultline_checkers::value::same;
use faultline_checkers::{Call, Outcome, Validity};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Most concurrent calls kept for the zoomed view (the nearest in time to the anomaly).
const CONCURRENT_MAX: usize = 30;
/// Most writes of each role (source, replacement) kept, the latest first.
const WRITERS_MAX: usize = 4;

/// A linearizability anomaly joined with the history. Every `usize` indexes `RunData::calls`.
#[derive(Debug, Clone)]
pub struct LinStory {
    pub key: Value,
    /// The call that cannot be placed.
    pub failing: usize,
    /// Calls on the key that overlap it in event order.
    pub concurrent: Vec<usize>,
    /// Writes (or cas) of the value a failing read returned.
    pub sources: Vec<usize>,
    /// Acknowledged writes of another value that began after every source ended and completed
    /// before the read began: each had certainly replaced the value the read returned. The
    /// last acknowledged is first.
    pub replaced_by: Vec<usize>,
    /// Indexes into `RunData::faults` of the faults active while the failing call ran.
    pub active_faults: Vec<usize>,
    /// The checker's own reason, the part after "cannot be placed: ".
    pub why: String,
}

/// The call whose invoke is event `index` (calls are in invoke order).
pub fn call_at(calls: &[Call], index: u64) -> Option<usize> {
    calls.binary_search_by_key(&index, |c| c.invoke_index).ok()
}

/// The event index a checker's description of an operation refers to (its invoke).
pub fn event_index(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::Object(m) => m.get("invoke_index").or_else(|| m.get("index")).and_then(Value::as_u64),
        _ => None,
    }
}

/// Whether a call is on `key` (a JSON key, `null` for a history without keys).
pub fn on_key(call: &Call, key: &Value) -> bool {
    match (&call.key, key) {
        (None, Value::Null) => true,
        (Some(k), v) => serde_json::to_value(k).ok().as_ref() == Some(v),
        _ => false,
    }
}

fn overlaps(a: &Call, b: &Call) -> bool {
    let end = |c: &Call| c.complete_index.unwrap_or(u64::MAX);
    a.invoke_index < end(b) && b.invoke_index < end(a)
}

/// The value a call writes, if it writes: `write v` writes v, `cas [from, to]` writes to.
fn written(c: &Call) -> Option<&Value> {
    match &*c.f {
        "write" => Some(&c.input),
        "cas" => c.input.get(1),
        _ => None,
    }
}

impl LinStory {
    /// Joins an anomaly (one element of the checker's `anomalies`) with the run's history;
    /// `None` when the history does not hold the operation it names.
    pub fn new(data: &RunData, anomaly: &Value) -> Option<LinStory> {
        let key = anomaly.get("key").cloned().unwrap_or(Value::Null);
        let failing = call_at(&data.calls, anomaly.get("op").and_then(event_index)?)?;
        let f = &data.calls[failing];
        let keyed: Vec<usize> = (0..data.calls.len()).filter(|&i| on_key(&data.calls[i], &key) && !data.calls[i].final_read).collect();
        let mut concurrent: Vec<usize> = keyed.iter().copied().filter(|&i| i != failing && overlaps(&data.calls[i], f)).collect();
        concurrent.sort_by_key(|&i| data.calls[i].invoke_time.abs_diff(f.invoke_time));
        concurrent.truncate(CONCURRENT_MAX);
        concurrent.sort_unstable();
        let (sources, replaced_by) = match (&*f.f, &f.outcome) {
            ("read", Outcome::Ok(v)) => writers(&data.calls, &keyed, f, v),
            _ => (Vec::new(), Vec::new()),
        };
        let (t0, t1) = span_s(f, data.end_s);
        let active_faults = (0..data.faults.len()).filter(|&i| data.faults[i].start_s <= t1 && t0 < data.faults[i].stop_s).collect();
        let why = anomaly.get("explanation").and_then(Value::as_str).map(|e| e.split_once("cannot be placed: ").map_or(e, |(_, w)| w).to_string()).unwrap_or_default();
        Some(LinStory { key, failing, concurrent, sources, replaced_by, active_faults, why })
    }

    /// One sentence: what happened, where, when, why it is wrong, and the faults at the time.
    pub fn sentence(&self, data: &RunData) -> String {
        let f = &data.calls[self.failing];
        let what = format!("{} of key {} at {} on {}", f.f, key_text(&self.key), secs_text(secs(f.invoke_time)), node_of(f));
        let body = match (&*f.f, f.output()) {
            ("read", Some(v)) => self.read_story(data, v),
            _ => format!("({}) cannot be placed: {}", proc_of(f), self.why),
        };
        format!("{what} {body}; {}", faults_text(data, &self.active_faults, secs(f.invoke_time), f.node.as_deref()))
    }

    fn read_story(&self, data: &RunData, v: &Value) -> String {
        let returned = if v.is_null() { "found no value".to_string() } else { format!("returned {}", value_text(v)) };
        if let Some(&w) = self.replaced_by.first() {
            let w = &data.calls[w];
            let verb = if v.is_null() { "set it" } else { "replaced it" };
            return format!(
                "{returned}, but {} ({}, acknowledged at {} on {}) had {verb}",
                write_text(w),
                proc_of(w),
                secs_text(w.complete_time.map_or(0.0, secs)),
                node_of(w)
            );
        }
        if self.sources.is_empty() && !v.is_null() {
            return format!("{returned}, a value no operation wrote");
        }
        format!("{returned}, which cannot be placed: {}", self.why)
    }
}

/// The writes of value `v` on the key, and the acknowledged writes that certainly replaced it
/// before `read` began (see [`LinStory::replaced_by`]). A read of `null` (a missing key) is
/// replaced by any write acknowledged before it: the initial state comes before everything.
fn writers(calls: &[Call], keyed: &[usize], read: &Call, v: &Value) -> (Vec<usize>, Vec<usize>) {
    let writes: Vec<usize> = keyed.iter().copied().filter(|&i| calls[i].outcome != Outcome::Fail && written(&calls[i]).is_some()).collect();
    let mut sources: Vec<usize> = writes.iter().copied().filter(|&i| written(&calls[i]).is_some_and(|w| same(w, v))).collect();
    if sources.is_empty() && !v.is_null() {
        // Nothing wrote it: no write "replaced" it either; the sentence says so instead.
        return (sources, Vec::new());
    }
    // A source that never completed may take effect at any time, so nothing certainly replaced
    // it; with no source (a read of the initial `null`) every earlier write did.
    let last_source_end = sources.iter().map(|&i| calls[i].complete_index.unwrap_or(u64::MAX)).max();
    let mut replaced: Vec<usize> = writes
        .iter()
        .copied()
        .filter(|&i| {
            let c = &calls[i];
            c.is_ok()
                && !written(c).is_some_and(|w| same(w, v))
                && last_source_end.map_or(true, |e| c.invoke_index > e)
                && c.complete_index.is_some_and(|e| e < read.invoke_index)
        })
        .collect();
    replaced.sort_by_key(|&i| std::cmp::Reverse(calls[i].complete_index));
    replaced.truncate(WRITERS_MAX);
    sources.sort_by_key(|&i| std::cmp::Reverse(calls[i].invoke_index));
    sources.truncate(WRITERS_MAX);
    (sources, replaced)
}

/// A call's span in seconds, an unfinished call running to the end of the run.
pub fn span_s(c: &Call, end_s: f64) -> (f64, f64) {
    (secs(c.invoke_time), c.complete_time.map_or(end_s, secs))
}

/// A key as text: strings bare (`k1`), anything else as JSON.
pub fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Null => "(none)".into(),
        v => v.to_string(),
    }
}

/// A value for a sentence: compact JSON, cut at 40 characters.
pub fn value_text(v: &Value) -> String {
    super::html::truncate(&v.to_string(), 40)
}

/// `write 2`, `cas 1→2`.
pub fn write_text(c: &Call) -> String {
    match (&*c.f, c.input.as_array()) {
        ("cas", Some(a)) if a.len() == 2 => format!("cas {}→{}", value_text(&a[0]), value_text(&a[1])),
        (f, _) => format!("{f} {}", value_text(&c.input)),
    }
}

pub fn node_of(c: &Call) -> String {
    c.node.as_deref().map_or_else(|| "an unrecorded node".to_string(), str::to_string)
}

pub fn proc_of(c: &Call) -> String {
    format!("p{}", c.process)
}

/// The faults active at a moment, in words; with none, whether any had happened yet.
pub fn faults_text(data: &RunData, active: &[usize], t: f64, node: Option<&str>) -> String {
    if !active.is_empty() {
        let parts: Vec<String> = active.iter().map(|&i| describe_fault(&data.faults[i], node)).collect();
        return format!("during {}", parts.join(" and "));
    }
    let before: Vec<&FaultPeriod> = data.faults.iter().filter(|p| p.start_s <= t).collect();
    match before.iter().max_by(|a, b| a.stop_s.total_cmp(&b.stop_s)) {
        None if data.faults.is_empty() => "no fault was active (none was injected)".into(),
        None => format!("no fault was active (the first began at {})", secs_text(data.faults[0].start_s)),
        Some(p) => format!("no fault was active (the last, {}, ended at {})", p.fault, secs_text(p.stop_s)),
    }
}

/// `partition (since 1.00 s; n1 cut off from n3, n4, n5)`, `kill (since 3.50 s; n3 down)`.
pub fn describe_fault(p: &FaultPeriod, node: Option<&str>) -> String {
    let nodes = p.detail.get("nodes").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "));
    let what = match (p.detail.get("grudge"), nodes) {
        (Some(g @ Value::Object(_)), _) => partition_text(g, node),
        (_, Some(n)) if !n.is_empty() => match p.fault.as_str() {
            "kill" => format!("{n} down"),
            "pause" => format!("{n} paused"),
            _ => format!("on {n}"),
        },
        _ => String::new(),
    };
    let since = format!("since {}", secs_text(p.start_s));
    if what.is_empty() {
        format!("{} ({since})", p.fault)
    } else {
        format!("{} ({since}; {what})", p.fault)
    }
}

/// A grudge in words: the node's own cut when it has one, else the sides (`n1, n2 | n3, n4`).
fn partition_text(grudge: &Value, node: Option<&str>) -> String {
    let g: BTreeMap<String, BTreeSet<String>> = grudge
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect())).collect())
        .unwrap_or_default();
    if let Some(cut) = node.and_then(|n| g.get(n)).filter(|c| !c.is_empty()) {
        return format!("{} cut off from {}", node.unwrap_or_default(), cut.iter().cloned().collect::<Vec<_>>().join(", "));
    }
    sides(&g).iter().map(|s| s.join(", ")).collect::<Vec<_>>().join(" | ")
}

/// Groups of nodes that still exchange messages both ways (connected components).
fn sides(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut all: BTreeSet<String> = g.keys().cloned().collect();
    all.extend(g.values().flatten().cloned());
    let talk = |a: &str, b: &str| !g.get(a).is_some_and(|s| s.contains(b)) && !g.get(b).is_some_and(|s| s.contains(a));
    let mut left: Vec<String> = all.into_iter().collect();
    let mut out = Vec::new();
    while let Some(first) = left.first().cloned() {
        let mut group = vec![first];
        left.remove(0);
        let mut i = 0;
        while i < group.len() {
            let cur = group[i].clone();
            let (near, far): (Vec<String>, Vec<String>) = left.into_iter().partition(|n| talk(&cur, n));
            group.extend(near);
            left = far;
            i += 1;
        }
        super::text::sort_natural(&mut group);
        out.push(group);
    }
    out
}

/// The sentence that sums up a failed run: the first failure of the first failing checker
/// (linearizability first, since it is the strongest claim), or `None` when all passed.
pub fn headline(data: &RunData) -> Option<String> {
    let checkers = data.results.get("checkers").and_then(Value::as_object)?;
    let mut failing: Vec<(&String, &Value)> =
        checkers.iter().filter(|(_, r)| r.get("valid").and_then(Validity::from_json) == Some(Validity::Invalid)).collect();
    failing.sort_by_key(|(n, _)| n.as_str() != "linearizable");
    failing.iter().find_map(|(name, r)| checker_headline(data, name, r))
}

fn checker_headline(data: &RunData, name: &str, r: &Value) -> Option<String> {
    if let Some(Value::Array(a)) = r.get("anomalies") {
        let s = a.iter().find_map(|x| LinStory::new(data, x)).map(|s| s.sentence(data));
        let n = r.get("keys_invalid").and_then(Value::as_u64).unwrap_or(a.len() as u64);
        let more = if n > 1 { format!(" ({} not linearizable)", plural(n, "key")) } else { String::new() };
        return s.map(|s| format!("{s}{more}"));
    }
    match name {
        "bank" => bank::BankStory::new(data, r).map(|b| b.sentence(data)),
        "durable-state" => super::durable::sentence(r),
        _ => elements::headline(data, r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A run directory holding `history` (JSONL lines of `[t_ms, process, type, f, value, node]`).
    fn run(events: &[(u64, u64, &str, &str, Value, &str)]) -> (tempfile::TempDir, RunData) {
        let d = tempfile::tempdir().unwrap();
        let text: String = events
            .iter()
            .map(|(t, p, typ, f, v, n)| json!({"time": t * 1_000_000, "process": p, "type": typ, "f": f, "key": 3, "value": v, "node": n}).to_string() + "\n")
            .collect();
        std::fs::write(d.path().join("history.jsonl"), text).unwrap();
        let data = RunData::load(d.path()).unwrap();
        (d, data)
    }

    fn anomaly_at(data: &RunData, process: u64) -> Value {
        let c = data.calls.iter().find(|c| c.process == process).unwrap();
        json!({"key": 3, "op": {"invoke_index": c.invoke_index}, "explanation": "read by process 9 cannot be placed: whatever the checker says"})
    }

    #[test]
    fn a_read_of_nothing_after_an_acknowledged_write_names_that_write() {
        let (_d, data) = run(&[
            (100, 6, "invoke", "write", json!(1), "n2"),
            (580, 6, "ok", "write", json!(1), "n2"),
            (620, 9, "invoke", "read", Value::Null, "n1"),
            (640, 9, "ok", "read", Value::Null, "n1"),
        ]);
        let s = LinStory::new(&data, &anomaly_at(&data, 9)).unwrap();
        assert_eq!(
            s.sentence(&data),
            "read of key 3 at 0.62 s on n1 found no value, but write 1 (p6, acknowledged at 0.58 s on n2) had set it; no fault was active (none was injected)"
        );
    }

    #[test]
    fn a_value_nobody_wrote_and_a_write_still_running_are_told_apart() {
        // 7 was never written.
        let (_d, data) = run(&[(100, 6, "invoke", "write", json!(1), "n2"), (200, 6, "ok", "write", json!(1), "n2"), (300, 9, "invoke", "read", Value::Null, "n1"), (310, 9, "ok", "read", json!(7), "n1")]);
        let s = LinStory::new(&data, &anomaly_at(&data, 9)).unwrap();
        assert!(s.sentence(&data).contains("returned 7, a value no operation wrote"), "{}", s.sentence(&data));
        // The write of 1 never completed: nothing certainly replaced it, so the checker's reason stands.
        let (_d, data) = run(&[
            (100, 6, "invoke", "write", json!(1), "n2"),
            (150, 5, "invoke", "write", json!(2), "n3"),
            (200, 5, "ok", "write", json!(2), "n3"),
            (300, 9, "invoke", "read", Value::Null, "n1"),
            (310, 9, "ok", "read", json!(1), "n1"),
        ]);
        let s = LinStory::new(&data, &anomaly_at(&data, 9)).unwrap();
        assert!(s.replaced_by.is_empty() && s.sources.len() == 1, "{s:?}");
        assert!(s.sentence(&data).contains("returned 1, which cannot be placed: whatever the checker says"), "{}", s.sentence(&data));
    }

    #[test]
    fn a_write_long_before_the_anomaly_is_named_not_drawn() {
        use crate::report::zoom::{chosen, Role};
        let (_d, data) = run(&[
            (100, 1, "invoke", "write", json!(1), "n1"),
            (150, 1, "ok", "write", json!(1), "n1"),
            (30_000, 6, "invoke", "write", json!(2), "n2"),
            (30_050, 6, "ok", "write", json!(2), "n2"),
            (30_100, 9, "invoke", "read", Value::Null, "n1"),
            (30_120, 9, "ok", "read", json!(1), "n1"),
        ]);
        let s = LinStory::new(&data, &anomaly_at(&data, 9)).unwrap();
        assert!(s.sentence(&data).contains("at 30.10 s on n1 returned 1, but write 2 (p6, acknowledged at 30.05 s on n2)"), "{}", s.sentence(&data));
        let (shown, far) = chosen(&data, &s);
        let roles: Vec<Role> = shown.iter().map(|x| x.1).collect();
        assert_eq!(roles, vec![Role::Failing, Role::Newer], "{shown:?}");
        assert_eq!(far.len(), 1);
        assert_eq!(data.calls[far[0].0].process, 1);
    }

    #[test]
    fn sides_of_a_grudge() {
        let g = json!({"n1": ["n3", "n4", "n5"], "n2": ["n3", "n4", "n5"], "n3": ["n1", "n2"], "n4": ["n1", "n2"], "n5": ["n1", "n2"]});
        assert_eq!(partition_text(&g, None), "n1, n2 | n3, n4, n5");
        assert_eq!(partition_text(&g, Some("n1")), "n1 cut off from n3, n4, n5");
        let p = FaultPeriod { fault: "kill".into(), start_s: 3.5, stop_s: 4.5, detail: json!({"nodes": ["n3"]}), closed: true };
        assert_eq!(describe_fault(&p, None), "kill (since 3.50 s; n3 down)");
    }
}
