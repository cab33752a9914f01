//! The set checker (Jepsen's `set-full`): clients add elements and read the whole set; every
//! acknowledged element must become visible and stay visible.
//!
//! An element is *known* from the moment its add was acknowledged, or a read returned it,
//! whichever came first. After that:
//! - it is **lost** if some read invoked after it was known misses it and no read that could be
//!   later (one completing after that read was invoked) has it again; a `final` read (made after
//!   the run quiesced) that misses a known element loses it outright;
//! - otherwise every read that misses it after it was known is **stale**, and the element became
//!   **stably visible** at the first read of the run of reads that all contain it;
//! - an element no read could have seen after it was known is **never read** (not an error).
//!
//! An element read but never added (or only by failed adds) is **unexpected**; one that appears
//! twice in one read is **duplicated**. The history is valid iff nothing is lost, unexpected or
//! duplicated, or a read is malformed. Keys are independent sets; elements are any JSON values,
//! compared as values ([`crate::value`]: `1` and `1.0` are one element, and so are objects whose
//! keys come in another order).
//!
//! Cost: O(elements × reads) hash lookups, about a second for 10^4 × 10^4; the histories of
//! faultline's runs are smaller.

use serde_json::{json, Value};
use std::collections::HashMap;

use crate::history::{Call, History, Outcome};
use crate::registry::support::{self, call_json, ms_between, EXAMPLES};
use crate::value::{canonical, canonical_text};
use crate::verdict::{CheckResult, Validity};

/// The identity of an element: its canonical JSON text.
pub(crate) fn element_id(v: &Value) -> String {
    canonical_text(v)
}

/// The elements of a set read: `null` is the empty set; anything but a list is malformed.
pub(crate) fn read_elements(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Null => Some(&[]),
        Value::Array(a) => Some(a),
        _ => None,
    }
}

/// Checks every set of the history; see the module docs.
pub fn check(history: &History) -> CheckResult {
    let calls = match support::calls(history) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let by_key = support::by_key(&calls, support::is_add_or_read);
    let mut t = Tally::default();
    for calls in by_key.values() {
        check_key(calls, &mut t);
    }
    t.into_result()
}

#[derive(Default)]
struct Tally {
    reads: u64,
    elements: u64,
    stable: u64,
    never_read: u64,
    unacknowledged: u64,
    lost: Anomalies,
    unexpected: Anomalies,
    duplicated: Anomalies,
    malformed: Anomalies,
    stale: Anomalies,
    stale_reads: u64,
    worst_stale_ms: f64,
    worst_stale_element: Option<Value>,
}

/// A count and the first few examples of one anomaly.
#[derive(Default)]
struct Anomalies {
    count: u64,
    examples: Vec<Value>,
}

impl Anomalies {
    fn push(&mut self, v: Value) {
        self.count += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(v);
        }
    }
}

impl Tally {
    fn into_result(self) -> CheckResult {
        let bad = self.lost.count + self.unexpected.count + self.duplicated.count + self.malformed.count;
        let valid = if bad > 0 {
            Validity::Invalid
        } else if self.reads == 0 {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        let mut r = CheckResult::new(valid);
        if self.reads == 0 {
            r = r.with("error", json!("no ok reads to check"));
        }
        r.with("reads", json!(self.reads))
            .with("elements", json!(self.elements))
            .with("stable_count", json!(self.stable))
            .with("never_read_count", json!(self.never_read))
            .with("unacknowledged_unseen_count", json!(self.unacknowledged))
            .with("lost_count", json!(self.lost.count))
            .with("lost", Value::Array(self.lost.examples))
            .with("unexpected_count", json!(self.unexpected.count))
            .with("unexpected", Value::Array(self.unexpected.examples))
            .with("duplicated_count", json!(self.duplicated.count))
            .with("duplicated", Value::Array(self.duplicated.examples))
            .with("malformed_reads_count", json!(self.malformed.count))
            .with("malformed_reads", Value::Array(self.malformed.examples))
            .with("stale_count", json!(self.stale.count))
            .with("stale", Value::Array(self.stale.examples))
            .with("stale_reads", json!(self.stale_reads))
            .with("worst_stale_ms", json!(self.worst_stale_ms))
            .with("worst_stale_element", self.worst_stale_element.unwrap_or(Value::Null))
    }
}

/// Numbers the distinct elements of one key, so reads hold small sorted integer lists instead of
/// sets of strings (a history of growing sets holds millions of element occurrences). Integers,
/// the common case, skip the JSON text.
#[derive(Default)]
struct Elements {
    ints: HashMap<i64, u32>,
    others: HashMap<String, u32>,
    values: Vec<Value>,
}

impl Elements {
    fn id(&mut self, v: &Value) -> u32 {
        let next = self.values.len() as u32;
        // `1.0` goes to the same entry as `1`: the integer an element stands for, when it is one.
        let id = match canonical(v).as_i64() {
            Some(i) => *self.ints.entry(i).or_insert(next),
            None => *self.others.entry(element_id(v)).or_insert(next),
        };
        if id == next {
            self.values.push(v.clone());
        }
        id
    }
}

/// One ok read: its call and the sorted, distinct ids of the elements it returned.
struct Read<'a> {
    call: &'a Call,
    ids: Vec<u32>,
}

impl Read<'_> {
    fn complete_index(&self) -> u64 {
        self.call.complete_index.unwrap_or(u64::MAX)
    }

    fn complete_time(&self) -> u64 {
        self.call.complete_time.unwrap_or(self.call.invoke_time)
    }
}

/// What we know about one element's adds: the earliest attempt that did not fail, and the
/// earliest acknowledgement.
struct Added {
    element: Value,
    invoke_index: u64,
    invoke_time: u64,
    ok: Option<(u64, u64)>,
}

/// The reads of one key in invoke order, and for each element the positions of the reads that
/// returned it: everything [`judge_element`] needs, built in one pass over the reads.
struct Index<'a> {
    reads: Vec<Read<'a>>,
    invokes: Vec<u64>,
    finals: Vec<usize>,
    present: Vec<Vec<u32>>,
}

fn check_key(calls: &[&Call], t: &mut Tally) {
    let mut elements = Elements::default();
    let reads = collect_reads(calls, &mut elements, t);
    let adds = collect_adds(calls, &mut elements);
    let mut present: Vec<Vec<u32>> = vec![Vec::new(); elements.values.len()];
    for (pos, r) in reads.iter().enumerate() {
        for id in &r.ids {
            present[*id as usize].push(pos as u32);
        }
    }
    let invokes = reads.iter().map(|r| r.call.invoke_index).collect();
    let finals = reads.iter().enumerate().filter(|(_, r)| r.call.final_read).map(|(i, _)| i).collect();
    let ix = Index { reads, invokes, finals, present };
    let mut stale_reads = vec![false; ix.reads.len()];
    let mut ids: Vec<&u32> = adds.keys().collect();
    ids.sort_unstable();
    for id in ids {
        t.elements += 1;
        judge_element(&ix, &ix.present[*id as usize], &adds[id], t, &mut stale_reads);
    }
    t.stale_reads += stale_reads.iter().filter(|s| **s).count() as u64;
    for (id, positions) in ix.present.iter().enumerate() {
        if let (false, Some(first)) = (adds.contains_key(&(id as u32)), positions.first()) {
            let first_read = call_json(ix.reads[*first as usize].call);
            t.unexpected.push(json!({"element": elements.values[id], "first_read": first_read}));
        }
    }
}

fn collect_reads<'a>(calls: &[&'a Call], elements: &mut Elements, t: &mut Tally) -> Vec<Read<'a>> {
    let mut reads = Vec::new();
    for c in calls.iter().filter(|c| &*c.f == "read") {
        let Some(out) = c.output() else { continue };
        t.reads += 1;
        let Some(items) = read_elements(out) else {
            t.malformed.push(json!({"read": call_json(c), "problem": "a set read must return a list"}));
            continue;
        };
        let mut ids: Vec<u32> = items.iter().map(|v| elements.id(v)).collect();
        ids.sort_unstable();
        let mut dups: Vec<u32> = ids.windows(2).filter(|w| w[0] == w[1]).map(|w| w[0]).collect();
        dups.dedup();
        for d in dups {
            t.duplicated.push(json!({"element": elements.values[d as usize], "read": call_json(c)}));
        }
        ids.dedup();
        reads.push(Read { call: c, ids });
    }
    reads
}

fn collect_adds(calls: &[&Call], elements: &mut Elements) -> HashMap<u32, Added> {
    let mut adds: HashMap<u32, Added> = HashMap::new();
    for c in calls.iter().filter(|c| &*c.f == "add" && c.outcome != Outcome::Fail) {
        let element = if c.input.is_null() { c.output().cloned().unwrap_or(Value::Null) } else { c.input.clone() };
        let a = adds.entry(elements.id(&element)).or_insert(Added {
            element,
            invoke_index: c.invoke_index,
            invoke_time: c.invoke_time,
            ok: None,
        });
        if let (Outcome::Ok(_), Some(i)) = (&c.outcome, c.complete_index) {
            let t = c.complete_time.unwrap_or(c.invoke_time);
            if !matches!(a.ok, Some((j, _)) if j <= i) {
                a.ok = Some((i, t));
            }
        }
    }
    adds
}

/// Decides lost / stale / stable / never read for one element, given the read positions that
/// returned it (`present`, ascending). Cost: O(its occurrences + log reads), plus the length of
/// its stale window.
fn judge_element(ix: &Index, present: &[u32], add: &Added, t: &mut Tally, stale_reads: &mut [bool]) {
    let first_seen = present.iter().map(|p| &ix.reads[*p as usize]).map(|r| (r.complete_index(), r.complete_time())).min();
    let known = match (add.ok, first_seen) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => {
            t.unacknowledged += 1;
            return;
        }
    };
    let n = ix.reads.len();
    // Reads at positions k0.. were invoked after the element was known.
    let k0 = ix.invokes.partition_point(|i| *i <= known.0);
    if k0 == n {
        t.never_read += 1;
        return;
    }
    let has = |q: usize| present.binary_search(&(q as u32)).is_ok();
    // No read invoked after the last present read completed can have the element (it would
    // complete later still), so the first of those is a miss nothing can follow: lost. A final
    // read that misses it loses it too.
    let last_present = present.iter().map(|p| ix.reads[*p as usize].complete_index()).max();
    let gone_from = last_present.map_or(k0, |c| k0.max(ix.invokes.partition_point(|i| *i < c)));
    let final_miss = ix.finals.iter().copied().find(|q| *q >= k0 && !has(*q));
    let lost_at = [final_miss, (gone_from < n).then_some(gone_from)].into_iter().flatten().min();
    if let Some(q) = lost_at {
        t.lost.push(json!({
            "element": add.element,
            "add_invoke_index": add.invoke_index,
            "known_index": known.0,
            "missing_from": call_json(ix.reads[q].call),
        }));
        return;
    }
    t.stable += 1;
    let present_after = present.len() - present.partition_point(|p| (*p as usize) < k0);
    if present_after == n - k0 {
        return;
    }
    // The last miss: walk back over the run of present reads that ends the history.
    let (mut q, mut i) = (n - 1, present.len());
    while i > 0 && present[i - 1] as usize == q {
        i -= 1;
        q -= 1;
    }
    let mut misses = 0;
    for (pos, stale) in stale_reads.iter_mut().enumerate().take(q + 1).skip(k0) {
        if !has(pos) {
            *stale = true;
            misses += 1;
        }
    }
    let last = &ix.reads[q];
    let stale_ms = ms_between(known.1, last.complete_time());
    t.stale.push(json!({
        "element": add.element,
        "known_index": known.0,
        "stale_reads": misses,
        "stable_from_index": ix.invokes.get(q + 1),
        "stale_ms": stale_ms,
        "add_latency_ms": ms_between(add.invoke_time, known.1),
    }));
    if stale_ms >= t.worst_stale_ms {
        t.worst_stale_ms = stale_ms;
        t.worst_stale_element = Some(add.element.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpType::*};

    fn add(p: u64, e: i64) -> Vec<Op> {
        vec![Op::new(p, Invoke, "add", json!(e)), Op::new(p, Ok, "add", json!(e))]
    }

    fn read(p: u64, v: Value) -> Vec<Op> {
        vec![Op::new(p, Invoke, "read", Value::Null), Op::new(p, Ok, "read", v)]
    }

    fn run(parts: Vec<Vec<Op>>) -> CheckResult {
        check(&History::from_ops(parts.into_iter().flatten().collect()))
    }

    #[test]
    fn stale_then_stable_is_valid() {
        let r = run(vec![add(0, 1), read(1, json!([])), read(1, json!([1])), read(1, json!([1]))]);
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.details["stale_count"], json!(1));
        assert_eq!(r.details["stale_reads"], json!(1));
    }

    #[test]
    fn lost_unexpected_duplicated() {
        let r = run(vec![add(0, 1), read(1, json!([1])), read(1, json!([]))]);
        assert_eq!((r.valid, r.details["lost_count"].clone()), (Validity::Invalid, json!(1)));
        let r = run(vec![add(0, 1), read(1, json!([1, 2]))]);
        assert_eq!((r.valid, r.details["unexpected_count"].clone()), (Validity::Invalid, json!(1)));
        let r = run(vec![add(0, 1), read(1, json!([1, 1]))]);
        assert_eq!((r.valid, r.details["duplicated_count"].clone()), (Validity::Invalid, json!(1)));
    }

    #[test]
    fn failed_add_seen_is_unexpected() {
        let ops = vec![vec![Op::new(0, Invoke, "add", json!(4)), Op::new(0, Fail, "add", json!(4))], read(1, json!([4]))];
        assert_eq!(run(ops).details["unexpected_count"], json!(1));
    }
}
