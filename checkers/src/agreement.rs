//! The agreement checker: do the replicas of a consensus protocol hold the same log?
//!
//! The linearizability checker judges what clients saw, and a read through a leader shows the
//! leader's state only. After healing, the harness also reads every replica *locally* (its own
//! applied state, not through a leader: `"local": true`, docs/design.md), and this checker
//! compares the replicas themselves. It judges keys whose values are lists built by `append`
//! (the `append` workload), where a replica's list is the sequence of that key's appends in the
//! order its log applied them:
//!
//! - **prefix agreement**: for every two replicas, one's list is a prefix of the other's (a
//!   replica may lag; it may never have applied something else, or in another order);
//! - **durability**: every acknowledged append is in the lists of a majority of the replicas
//!   (acknowledged means committed, and committed means on a majority; the harness waits until
//!   the replicas' local reads agree, or gives up after its budget, before this is judged);
//! - **nothing invented, nothing twice**: every element of a replica's list was appended to that
//!   key by an append that did not fail, and appears once (appended elements are unique).
//!
//! Registers are not judged: a register's local value does not tell which log position it
//! reflects, so two replicas with different values may simply have applied different prefixes,
//! and equal values prove little. Keys whose local values are not lists are counted as skipped.
//!
//! A replica whose local read failed (a node that does not serve local reads answers error 10)
//! is unread: it cannot break prefix agreement, and an acknowledged append found on fewer than a
//! majority counts as a violation only if it would stay short of a majority even with every
//! unread replica holding it; otherwise the answer is unknown. No local read at all: unknown.

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::history::{pair, Call, History, Key, Op, OpType, Outcome, Process};
use crate::registry::support::{self, EXAMPLES};
use crate::value::canonical_text;
use crate::verdict::{CheckResult, Validity};

fn node_name(c: &Call) -> String {
    c.node.as_ref().map(|n| n.to_string()).unwrap_or_else(|| format!("process {}", c.process))
}

fn key_name(k: &Option<Key>) -> String {
    k.as_ref().map(|k| k.to_string()).unwrap_or_default()
}

/// The local reads of a history, paired (the ordinary pairing leaves them out).
fn local_calls(history: &History) -> Result<Vec<Call>, String> {
    let local: Vec<Op> = history
        .ops
        .iter()
        .filter(|o| o.local && matches!(o.process, Process::Client(_)))
        .map(|o| Op { local: false, ..o.clone() })
        .collect();
    pair(&local).map_err(|e| format!("malformed local reads: {e}"))
}

/// The first reason a local read did not succeed, for the unknown verdict's message.
fn first_local_error(history: &History) -> Option<String> {
    history.ops.iter().filter(|o| o.local && matches!(o.op_type, OpType::Fail | OpType::Info)).find_map(|o| o.error.clone())
}

#[derive(Default)]
struct Tally {
    keys_judged: u64,
    skipped_keys: u64,
    problems: u64,
    divergent: Vec<Value>,
    under_replicated: Vec<Value>,
    duplicated: Vec<Value>,
    unexpected: Vec<Value>,
    lagging: BTreeSet<String>,
    undecided: Option<String>,
}

impl Tally {
    fn problem(list: &mut Vec<Value>, count: &mut u64, v: Value) {
        *count += 1;
        if list.len() < EXAMPLES {
            list.push(v);
        }
    }
}

/// Checks that the replicas' local lists agree on their common prefix and hold every
/// acknowledged append on a majority.
pub fn check(history: &History) -> CheckResult {
    let calls = match support::calls(history) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let locals = match local_calls(history) {
        Ok(c) => c,
        Err(e) => return CheckResult::unknown(e),
    };
    if locals.is_empty() {
        return CheckResult::unknown("no local reads: the history has no read marked `\"local\": true`, so replica agreement cannot be judged");
    }
    // key → node → last successful local value; key → nodes asked.
    let mut values: BTreeMap<Option<Key>, BTreeMap<String, Value>> = BTreeMap::new();
    let mut asked: BTreeMap<Option<Key>, BTreeSet<String>> = BTreeMap::new();
    for c in locals.iter().filter(|c| &*c.f == "read") {
        asked.entry(c.key.clone()).or_default().insert(node_name(c));
        if let Some(v) = c.output() {
            values.entry(c.key.clone()).or_default().insert(node_name(c), v.clone());
        }
    }
    if values.is_empty() {
        let why = first_local_error(history).map(|e| format!(" (first error: {e})")).unwrap_or_default();
        return CheckResult::unknown(format!("no local read succeeded{why}: the nodes may not serve local reads, so replica agreement cannot be judged"))
            .with("unread_nodes", json!(asked.values().flatten().collect::<BTreeSet<_>>()));
    }
    // key → appends that did not fail: element text → acknowledged?
    let mut appends: HashMap<Option<Key>, HashMap<String, (bool, Value)>> = HashMap::new();
    for c in calls.iter().filter(|c| &*c.f == "append" && c.outcome != Outcome::Fail) {
        let e = appends.entry(c.key.clone()).or_default().entry(canonical_text(&c.input)).or_insert((false, c.input.clone()));
        e.0 |= c.is_ok();
    }
    let mut t = Tally::default();
    let mut unread_nodes: BTreeSet<String> = BTreeSet::new();
    for (key, nodes) in &asked {
        let read = values.get(key).cloned().unwrap_or_default();
        unread_nodes.extend(nodes.iter().filter(|n| !read.contains_key(*n)).cloned());
        let no_appends = HashMap::new();
        let key_appends = appends.get(key).unwrap_or(&no_appends);
        check_key(key, nodes, &read, key_appends, &mut t);
    }
    // An acknowledged append to a key no replica was asked about cannot be judged.
    let unasked: Vec<String> =
        appends.iter().filter(|(k, a)| !asked.contains_key(*k) && a.values().any(|(ok, _)| *ok)).map(|(k, _)| key_name(k)).collect();
    if let Some(k) = unasked.first() {
        t.undecided.get_or_insert(format!("key {k:?} has acknowledged appends but was never read locally"));
    }
    let valid = if t.problems > 0 {
        Validity::Invalid
    } else if t.undecided.is_some() || t.keys_judged == 0 {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let mut r = CheckResult::new(valid);
    if let Some(why) = &t.undecided {
        r = r.with("error", json!(why));
    } else if t.keys_judged == 0 {
        r = r.with("error", json!("no key holds a list: agreement judges the lists of the append workload only (registers are not judged)"));
    }
    r.with("keys_judged", json!(t.keys_judged))
        .with("skipped_keys", json!(t.skipped_keys))
        .with("nodes", json!(asked.values().flatten().collect::<BTreeSet<_>>()))
        .with("unread_nodes", json!(unread_nodes))
        .with("lagging_nodes", json!(t.lagging))
        .with("divergent", Value::Array(t.divergent))
        .with("under_replicated", Value::Array(t.under_replicated))
        .with("duplicated", Value::Array(t.duplicated))
        .with("unexpected", Value::Array(t.unexpected))
}

/// A window of `list` around position `at`, for reports.
fn around(list: &[Value], at: usize) -> Value {
    let from = at.saturating_sub(3);
    json!({"from": from, "elements": list[from..(at + 4).min(list.len())].to_vec()})
}

fn check_key(key: &Option<Key>, asked: &BTreeSet<String>, read: &BTreeMap<String, Value>, appends: &HashMap<String, (bool, Value)>, t: &mut Tally) {
    let name = key_name(key);
    // Each replica's list; a key none of whose replicas holds a list is a register: skipped.
    let mut lists: BTreeMap<&str, &[Value]> = BTreeMap::new();
    let mut non_lists = 0;
    for (node, v) in read {
        match v {
            Value::Null => {
                lists.insert(node, &[]);
            }
            Value::Array(a) => {
                lists.insert(node, a);
            }
            _ => non_lists += 1,
        }
    }
    if non_lists > 0 && (appends.is_empty() || lists.is_empty()) {
        t.skipped_keys += 1;
        return;
    }
    if lists.is_empty() && appends.is_empty() {
        // Every replica read `null` (or none answered): nothing was appended, nothing to judge.
        if !read.is_empty() {
            t.keys_judged += 1;
        }
        return;
    }
    t.keys_judged += 1;
    for (node, v) in read.iter().filter(|(_, v)| !v.is_null() && !v.is_array()) {
        Tally::problem(&mut t.unexpected, &mut t.problems, json!({"key": name, "node": node, "value": v, "problem": "not a list"}));
    }
    // Nothing invented, nothing twice.
    for (node, list) in &lists {
        let mut seen: HashSet<String> = HashSet::new();
        for (i, e) in list.iter().enumerate() {
            let id = canonical_text(e);
            if !appends.contains_key(&id) {
                Tally::problem(&mut t.unexpected, &mut t.problems, json!({"key": name, "node": node, "element": e, "position": i, "problem": "never appended"}));
            }
            if !seen.insert(id) {
                Tally::problem(&mut t.duplicated, &mut t.problems, json!({"key": name, "node": node, "element": e, "position": i}));
            }
        }
    }
    // Prefix agreement, pair by pair.
    let nodes: Vec<&&str> = lists.keys().collect();
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            let (la, lb) = (lists[**a], lists[**b]);
            let common = la.len().min(lb.len());
            if let Some(at) = (0..common).find(|&j| canonical_text(&la[j]) != canonical_text(&lb[j])) {
                Tally::problem(
                    &mut t.divergent,
                    &mut t.problems,
                    json!({"key": name, "nodes": [a, b], "position": at, "lengths": [la.len(), lb.len()], a.to_string(): around(la, at), b.to_string(): around(lb, at)}),
                );
            }
        }
    }
    let longest = lists.values().map(|l| l.len()).max().unwrap_or(0);
    t.lagging.extend(lists.iter().filter(|(_, l)| l.len() < longest).map(|(n, _)| n.to_string()));
    // Durability: every acknowledged append on a majority of the replicas.
    let majority = asked.len() / 2 + 1;
    let unread = asked.len().saturating_sub(lists.len() + non_lists);
    let held: Vec<HashSet<String>> = lists.values().map(|l| l.iter().map(canonical_text).collect()).collect();
    let holders: Vec<&&str> = lists.keys().collect();
    let mut acked: Vec<(&String, &Value)> = appends.iter().filter(|(_, (ok, _))| *ok).map(|(id, (_, v))| (id, v)).collect();
    acked.sort_by(|a, b| a.0.cmp(b.0));
    for (id, v) in acked {
        let on: Vec<&&&str> = holders.iter().zip(&held).filter(|(_, h)| h.contains(id)).map(|(n, _)| n).collect();
        if on.len() >= majority {
            continue;
        }
        if on.len() + unread >= majority {
            t.undecided.get_or_insert(format!(
                "key {name:?}: acknowledged append {v} is on {} of {} replicas and {unread} did not answer their local read",
                on.len(),
                asked.len()
            ));
            continue;
        }
        Tally::problem(
            &mut t.under_replicated,
            &mut t.problems,
            json!({"key": name, "element": v, "on": on, "replicas": asked.len(), "majority": majority}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::OpType::*;
    use std::sync::Arc;

    fn call(p: u64, f: &str, key: i64, input: Value, out: Option<Value>) -> Vec<Op> {
        let mut a = Op::new(p, Invoke, f, input.clone()).with_key(Key::Int(key));
        let b = match out {
            Some(v) => Op::new(p, Ok, f, v),
            None => Op::new(p, Info, f, input),
        }
        .with_key(Key::Int(key));
        a.node = Some(Arc::from("n1"));
        vec![a, b]
    }

    fn local(p: u64, node: &str, key: i64, out: Result<Value, &str>) -> Vec<Op> {
        let mut a = Op::new(p, Invoke, "read", Value::Null).with_key(Key::Int(key));
        let mut b = match out {
            Result::Ok(v) => Op::new(p, Ok, "read", v),
            Err(e) => {
                let mut f = Op::new(p, Fail, "read", Value::Null);
                f.error = Some(e.to_string());
                f
            }
        }
        .with_key(Key::Int(key));
        for op in [&mut a, &mut b] {
            op.final_read = true;
            op.local = true;
            op.node = Some(Arc::from(node));
        }
        vec![a, b]
    }

    fn appends(key: i64, elements: &[i64]) -> Vec<Vec<Op>> {
        elements.iter().map(|e| call(*e as u64 + 100, "append", key, json!(e), Some(json!(e)))).collect()
    }

    fn h(parts: Vec<Vec<Op>>) -> History {
        History::from_ops(parts.into_iter().flatten().collect())
    }

    #[test]
    fn agreeing_and_lagging_replicas_are_valid() {
        let mut parts = appends(1, &[1, 2, 3]);
        parts.push(local(10, "n1", 1, Result::Ok(json!([1, 2, 3]))));
        parts.push(local(11, "n2", 1, Result::Ok(json!([1, 2, 3]))));
        parts.push(local(12, "n3", 1, Result::Ok(json!([1, 2]))));
        let r = check(&h(parts));
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.details["lagging_nodes"], json!(["n3"]));
        assert_eq!(r.details["keys_judged"], json!(1));
    }

    #[test]
    fn local_reads_are_left_out_of_ordinary_calls() {
        let mut parts = appends(1, &[1]);
        parts.push(local(10, "n1", 1, Result::Ok(json!([1]))));
        let hist = h(parts);
        assert_eq!(hist.calls().unwrap().len(), 1, "only the append");
    }

    #[test]
    fn divergent_replicas_are_invalid() {
        let mut parts = appends(1, &[1, 2, 3]);
        parts.push(local(10, "n1", 1, Result::Ok(json!([1, 2, 3]))));
        parts.push(local(11, "n2", 1, Result::Ok(json!([1, 3, 2]))));
        parts.push(local(12, "n3", 1, Result::Ok(json!([1, 2, 3]))));
        let r = check(&h(parts));
        assert_eq!(r.valid, Validity::Invalid, "{r:?}");
        assert_eq!(r.details["divergent"][0]["position"], json!(1));
        assert_eq!(r.details["divergent"][0]["nodes"], json!(["n1", "n2"]));
    }

    #[test]
    fn an_acknowledged_append_on_a_minority_is_invalid() {
        // 3 was acknowledged but only n1 holds it: a committed entry lost by the majority.
        let mut parts = appends(1, &[1, 2, 3]);
        parts.push(local(10, "n1", 1, Result::Ok(json!([1, 2, 3]))));
        parts.push(local(11, "n2", 1, Result::Ok(json!([1, 2]))));
        parts.push(local(12, "n3", 1, Result::Ok(json!([1, 2]))));
        let r = check(&h(parts));
        assert_eq!(r.valid, Validity::Invalid, "{r:?}");
        assert_eq!(r.details["under_replicated"][0]["element"], json!(3));
        // An unknown append may be anywhere, or nowhere.
        let mut parts = appends(1, &[1, 2]);
        parts.push(call(7, "append", 1, json!(3), None));
        parts.push(local(10, "n1", 1, Result::Ok(json!([1, 2, 3]))));
        parts.push(local(11, "n2", 1, Result::Ok(json!([1, 2]))));
        parts.push(local(12, "n3", 1, Result::Ok(json!([1, 2]))));
        assert_eq!(check(&h(parts)).valid, Validity::Valid);
    }

    #[test]
    fn invented_and_duplicated_elements_are_invalid() {
        let mut parts = appends(1, &[1, 2]);
        parts.push(local(10, "n1", 1, Result::Ok(json!([1, 2, 9]))));
        parts.push(local(11, "n2", 1, Result::Ok(json!([1, 2]))));
        parts.push(local(12, "n3", 1, Result::Ok(json!([1, 2]))));
        let r = check(&h(parts));
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["unexpected"][0]["element"], json!(9));
        let mut parts = appends(1, &[1, 2]);
        parts.push(local(10, "n1", 1, Result::Ok(json!([1, 2, 2]))));
        parts.push(local(11, "n2", 1, Result::Ok(json!([1, 2]))));
        let r = check(&h(parts));
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["duplicated"][0]["position"], json!(2));
    }

    #[test]
    fn unsupported_local_reads_are_unknown_not_invalid() {
        let mut parts = appends(1, &[1, 2]);
        for (p, n) in [(10, "n1"), (11, "n2"), (12, "n3")] {
            parts.push(local(p, n, 1, Err("not-supported: local reads are not supported")));
        }
        let r = check(&h(parts));
        assert_eq!(r.valid, Validity::Unknown, "{r:?}");
        assert!(r.details["error"].as_str().unwrap().contains("not-supported"), "{r:?}");
        // One replica unread: 2 is on one of the two others; with the unread one it could be a
        // majority, so the answer is unknown rather than invalid.
        let mut parts = appends(1, &[1, 2]);
        parts.push(local(10, "n1", 1, Result::Ok(json!([1, 2]))));
        parts.push(local(11, "n2", 1, Result::Ok(json!([1]))));
        parts.push(local(12, "n3", 1, Err("timeout")));
        let r = check(&h(parts));
        assert_eq!(r.valid, Validity::Unknown, "{r:?}");
        assert_eq!(r.details["unread_nodes"], json!(["n3"]));
        // No local reads at all: unknown.
        assert_eq!(check(&h(appends(1, &[1]))).valid, Validity::Unknown);
    }

    #[test]
    fn registers_are_skipped_and_missing_keys_are_empty_lists() {
        let mut parts = vec![call(1, "write", 5, json!(3), Some(json!(3)))];
        parts.push(local(10, "n1", 5, Result::Ok(json!(3))));
        parts.push(local(11, "n2", 5, Result::Ok(json!(4))));
        let r = check(&h(parts));
        assert_eq!(r.valid, Validity::Unknown, "registers alone cannot be judged: {r:?}");
        assert_eq!(r.details["skipped_keys"], json!(1));
        // A replica that never applied the key's first append reads null: an empty prefix.
        let mut parts = appends(2, &[1]);
        parts.push(local(10, "n1", 2, Result::Ok(json!([1]))));
        parts.push(local(11, "n2", 2, Result::Ok(json!([1]))));
        parts.push(local(12, "n3", 2, Result::Ok(Value::Null)));
        assert_eq!(check(&h(parts)).valid, Validity::Valid);
    }
}
