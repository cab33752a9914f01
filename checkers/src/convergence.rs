//! The convergence checker: strong eventual consistency, judged on the reads the harness makes
//! of every node after the faults healed and the cluster went quiet (`"final": true`).
//!
//! Two things must hold, per key:
//! - **agreement**: every node's final value is the same (sets compared as sets, counters as
//!   numbers, registers as JSON values);
//! - **no lost or invented updates**: for a set, each node holds every acknowledged add (of an
//!   element no remove touched: removes are the `orset` checker's concern) and nothing that was
//!   never (successfully or possibly) added; for a counter, each value lies in [sum of
//!   acknowledged adds + unknown negative deltas, sum of acknowledged adds + unknown positive
//!   deltas]; for a register, the value was written by some write or cas that did not
//!   fail, or is `null`.
//!
//! A node read several times keeps its last final read. With no final read at all the answer is
//! unknown: nothing says whether the nodes converged.
//!
//! Values are compared as values ([`crate::value`]): `{"a":1,"b":2}` and `{"b":2,"a":1}` agree,
//! and so do `1` and `1.0`. Counter bounds are exact `i128` sums with overflow checks; a delta
//! that is not an exact integer, or sums beyond an `i128`, leave that key's bounds unjudged and
//! the answer unknown with the reason (agreement is still judged: nodes that disagree are a
//! violation whatever the deltas).

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::history::{Call, History, Key, Outcome};
use crate::registry::support::{self, big, int, EXAMPLES};
use crate::value::{canonical_text, exact_int, NotInt};
use crate::set::{element_id, read_elements};
use crate::verdict::{CheckResult, Validity};

/// What the nodes hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Decide from the history: lists read → set; adds → counter; else register.
    Auto,
    Counter,
    Set,
    Register,
}

impl Kind {
    /// Reads the `kind` parameter of a checker spec.
    pub fn from_params(params: &Map<String, Value>) -> Result<Kind, String> {
        match params.get("kind") {
            None | Some(Value::Null) => Ok(Kind::Auto),
            Some(Value::String(s)) => match s.as_str() {
                "counter" => Ok(Kind::Counter),
                "set" => Ok(Kind::Set),
                "register" | "kv" | "cas-register" => Ok(Kind::Register),
                other => Err(format!("convergence: unknown kind `{other}` (known: counter, set, register)")),
            },
            Some(other) => Err(format!("convergence: `kind` must be a string, got {other}")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Auto => "auto",
            Kind::Counter => "counter",
            Kind::Set => "set",
            Kind::Register => "register",
        }
    }
}

fn guess(calls: &[Call]) -> Kind {
    let finals = calls.iter().filter(|c| c.final_read).filter_map(|c| c.output());
    if finals.clone().any(|v| v.is_array()) {
        Kind::Set
    } else if calls.iter().any(|c| &*c.f == "add") && finals.clone().all(|v| v.is_null() || int(v).is_some()) {
        Kind::Counter
    } else {
        Kind::Register
    }
}

/// Checks that the nodes' final reads agree and keep every acknowledged update.
pub fn check(history: &History, kind: Kind) -> CheckResult {
    let calls = match support::calls(history) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let kind = if kind == Kind::Auto { guess(&calls) } else { kind };
    let by_key = support::by_key(&calls, |_| true);
    let mut t = Tally::default();
    for (key, calls) in &by_key {
        check_key(key, calls, kind, &mut t);
    }
    t.into_result(kind, by_key.keys().any(|k| k.is_some()))
}

#[derive(Default)]
struct Tally {
    final_reads: u64,
    /// key → node → final value.
    values: BTreeMap<String, BTreeMap<String, Value>>,
    unread_nodes: BTreeSet<String>,
    disagreements: Vec<Value>,
    disagreeing_nodes: BTreeSet<String>,
    problems: u64,
    lost: Vec<Value>,
    unexpected: Vec<Value>,
    out_of_bounds: Vec<Value>,
    /// Why some key could not be judged (the first such reason).
    undecided: Option<String>,
}

impl Tally {
    fn into_result(self, kind: Kind, keyed: bool) -> CheckResult {
        if self.final_reads == 0 {
            return CheckResult::unknown("no final reads: the history has no ok read marked `final`, so convergence cannot be judged")
                .with("kind", json!(kind.name()))
                .with("unread_nodes", json!(self.unread_nodes));
        }
        let bad = !self.disagreements.is_empty() || self.problems > 0;
        let valid = match (bad, &self.undecided) {
            (true, _) => Validity::Invalid,
            (false, Some(_)) => Validity::Unknown,
            (false, None) => Validity::Valid,
        };
        let values = if keyed {
            serde_json::to_value(&self.values).unwrap_or(Value::Null)
        } else {
            serde_json::to_value(self.values.get("").cloned().unwrap_or_default()).unwrap_or(Value::Null)
        };
        let mut r = CheckResult::new(valid);
        if let Some(why) = self.undecided {
            r = r.with("error", json!(why));
        }
        r.with("kind", json!(kind.name()))
            .with("final_reads", json!(self.final_reads))
            .with("nodes", values)
            .with("unread_nodes", json!(self.unread_nodes))
            .with("disagreeing_nodes", json!(self.disagreeing_nodes))
            .with("disagreements", Value::Array(self.disagreements))
            .with("lost", Value::Array(self.lost))
            .with("unexpected", Value::Array(self.unexpected))
            .with("out_of_bounds", Value::Array(self.out_of_bounds))
    }

    fn undecide(&mut self, why: String) {
        self.undecided.get_or_insert(why);
    }

    fn problem(list: &mut Vec<Value>, count: &mut u64, v: Value) {
        *count += 1;
        if list.len() < EXAMPLES {
            list.push(v);
        }
    }
}

fn node_name(c: &Call) -> String {
    match &c.node {
        Some(n) => n.to_string(),
        None => format!("process {}", c.process),
    }
}

fn check_key(key: &Option<Key>, calls: &[&Call], kind: Kind, t: &mut Tally) {
    let key_name = key.as_ref().map(|k| k.to_string()).unwrap_or_default();
    let mut finals: BTreeMap<String, Value> = BTreeMap::new();
    let mut asked: BTreeSet<String> = BTreeSet::new();
    for c in calls.iter().filter(|c| c.final_read && &*c.f == "read") {
        asked.insert(node_name(c));
        if let Some(v) = c.output() {
            t.final_reads += 1;
            finals.insert(node_name(c), v.clone());
        }
    }
    t.unread_nodes.extend(asked.into_iter().filter(|n| !finals.contains_key(n)));
    if finals.is_empty() {
        return;
    }
    agreement(&key_name, &finals, kind, t);
    match kind {
        Kind::Set => set_contents(&key_name, calls, &finals, t),
        Kind::Counter => counter_bounds(&key_name, calls, &finals, t),
        _ => register_written(&key_name, calls, &finals, t),
    }
    t.values.insert(key_name, finals);
}

/// The value compared across nodes: sets by their sorted distinct elements.
fn normal(v: &Value, kind: Kind) -> String {
    match (kind, read_elements(v)) {
        (Kind::Set, Some(items)) => {
            let ids: BTreeSet<String> = items.iter().map(element_id).collect();
            format!("{ids:?}")
        }
        (Kind::Counter, _) if v.is_null() => "0".into(),
        (Kind::Counter, _) => int(v).map(|i| i.to_string()).unwrap_or_else(|| canonical_text(v)),
        _ => canonical_text(v),
    }
}

fn agreement(key: &str, finals: &BTreeMap<String, Value>, kind: Kind, t: &mut Tally) {
    let mut groups: BTreeMap<String, (Value, Vec<String>)> = BTreeMap::new();
    for (node, v) in finals {
        groups.entry(normal(v, kind)).or_insert_with(|| (v.clone(), Vec::new())).1.push(node.clone());
    }
    if groups.len() > 1 {
        for (_, nodes) in groups.values() {
            t.disagreeing_nodes.extend(nodes.iter().cloned());
        }
        let groups: Vec<Value> = groups.into_values().map(|(v, nodes)| json!({"value": v, "nodes": nodes})).collect();
        t.disagreements.push(json!({"key": key, "groups": groups}));
    }
}

fn set_contents(key: &str, calls: &[&Call], finals: &BTreeMap<String, Value>, t: &mut Tally) {
    let adds = calls.iter().filter(|c| &*c.f == "add");
    // An element with a remove that did not fail may be legitimately gone (observed-remove sets):
    // whether it must stay is the `orset` checker's judgment, not a lost update here.
    let removed: HashSet<String> = calls.iter().filter(|c| &*c.f == "remove" && c.outcome != Outcome::Fail).map(|c| element_id(&c.input)).collect();
    let acked: BTreeMap<String, Value> =
        adds.clone().filter(|c| c.is_ok() && !removed.contains(&element_id(&c.input))).map(|c| (element_id(&c.input), c.input.clone())).collect();
    let possible: HashSet<String> = adds.filter(|c| c.outcome != Outcome::Fail).map(|c| element_id(&c.input)).collect();
    for (node, v) in finals {
        let Some(items) = read_elements(v) else {
            Tally::problem(&mut t.unexpected, &mut t.problems, json!({"key": key, "node": node, "value": v, "problem": "not a list"}));
            continue;
        };
        let held: HashSet<String> = items.iter().map(element_id).collect();
        let lost: Vec<&Value> = acked.iter().filter(|(id, _)| !held.contains(*id)).map(|(_, v)| v).collect();
        if !lost.is_empty() {
            Tally::problem(&mut t.lost, &mut t.problems, json!({"key": key, "node": node, "count": lost.len(), "elements": head(&lost)}));
        }
        let extra: Vec<&Value> = items.iter().filter(|e| !possible.contains(&element_id(e))).collect();
        if !extra.is_empty() {
            Tally::problem(&mut t.unexpected, &mut t.problems, json!({"key": key, "node": node, "count": extra.len(), "elements": head(&extra)}));
        }
    }
}

fn head(v: &[&Value]) -> Vec<Value> {
    v.iter().take(50).map(|x| (*x).clone()).collect()
}

/// The bounds every final counter value must lie in: acknowledged adds always count, unknown
/// ones may or may not. `Err` says why they cannot be computed exactly.
fn final_bounds(calls: &[&Call]) -> Result<(i128, i128), String> {
    let overflow = || "the counter's adds sum beyond what an i128 holds".to_string();
    let (mut lower, mut upper) = (0i128, 0i128);
    for c in calls.iter().filter(|c| &*c.f == "add" && c.outcome != Outcome::Fail) {
        let d = support::add_delta(c)?;
        if c.is_ok() || d < 0 {
            lower = lower.checked_add(d).ok_or_else(overflow)?;
        }
        if c.is_ok() || d > 0 {
            upper = upper.checked_add(d).ok_or_else(overflow)?;
        }
    }
    Ok((lower, upper))
}

fn counter_bounds(key: &str, calls: &[&Call], finals: &BTreeMap<String, Value>, t: &mut Tally) {
    let (lower, upper) = match final_bounds(calls) {
        Ok(b) => b,
        Err(why) => return t.undecide(format!("key {key:?}: {why}")),
    };
    for (node, v) in finals {
        let n = if v.is_null() { Ok(0) } else { exact_int(v) };
        match n {
            Ok(n) if n >= lower && n <= upper => {}
            Err(NotInt::Inexact) => return t.undecide(format!("key {key:?}: node {node} read {v}, {}", NotInt::Inexact.describe())),
            _ => {
                let bounds = json!([big(lower), big(upper)]);
                Tally::problem(&mut t.out_of_bounds, &mut t.problems, json!({"key": key, "node": node, "value": v, "bounds": bounds}));
            }
        }
    }
}

fn register_written(key: &str, calls: &[&Call], finals: &BTreeMap<String, Value>, t: &mut Tally) {
    let mut written: HashSet<String> = HashSet::new();
    let mut appends = false;
    for c in calls.iter().filter(|c| c.outcome != Outcome::Fail) {
        match &*c.f {
            "write" => {
                written.insert(canonical_text(&c.input));
            }
            "cas" => {
                if let Some(to) = c.input.get(1) {
                    written.insert(canonical_text(to));
                }
            }
            "append" => appends = true,
            _ => {}
        }
    }
    // An appended value is a concatenation of many writes; only agreement can be judged.
    if appends {
        return;
    }
    for (node, v) in finals {
        if !v.is_null() && !written.contains(&canonical_text(v)) {
            Tally::problem(&mut t.unexpected, &mut t.problems, json!({"key": key, "node": node, "value": v, "problem": "never written"}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpType::*};
    use std::sync::Arc;

    fn final_read(p: u64, node: &str, v: Value) -> Vec<Op> {
        let mut a = Op::new(p, Invoke, "read", Value::Null);
        let mut b = Op::new(p, Ok, "read", v);
        for op in [&mut a, &mut b] {
            op.final_read = true;
            op.node = Some(Arc::from(node));
        }
        vec![a, b]
    }

    fn h(parts: Vec<Vec<Op>>) -> History {
        History::from_ops(parts.into_iter().flatten().collect())
    }

    #[test]
    fn sets_agree_as_sets() {
        let add = vec![Op::new(0, Invoke, "add", json!(1)), Op::new(0, Ok, "add", json!(1)), Op::new(0, Invoke, "add", json!(2)), Op::new(0, Ok, "add", json!(2))];
        let hist = h(vec![add.clone(), final_read(1, "n1", json!([1, 2])), final_read(2, "n2", json!([2, 1]))]);
        let r = check(&hist, Kind::Auto);
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        let hist = h(vec![add, final_read(1, "n1", json!([1, 2])), final_read(2, "n2", json!([2]))]);
        let r = check(&hist, Kind::Auto);
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["disagreeing_nodes"], json!(["n1", "n2"]));
        assert_eq!(r.details["lost"][0]["node"], json!("n2"));
    }

    #[test]
    fn counters_and_registers() {
        let add = vec![Op::new(0, Invoke, "add", json!(3)), Op::new(0, Ok, "add", json!(3))];
        let r = check(&h(vec![add.clone(), final_read(1, "n1", json!(3)), final_read(2, "n2", json!(3))]), Kind::Auto);
        assert_eq!(r.valid, Validity::Valid);
        let r = check(&h(vec![add, final_read(1, "n1", json!(4)), final_read(2, "n2", json!(4))]), Kind::Counter);
        assert_eq!(r.valid, Validity::Invalid);
        let w = vec![Op::new(0, Invoke, "write", json!(7)), Op::new(0, Info, "write", json!(7))];
        let r = check(&h(vec![w.clone(), final_read(1, "n1", json!(7))]), Kind::Register);
        assert_eq!(r.valid, Validity::Valid);
        let r = check(&h(vec![w, final_read(1, "n1", json!(8))]), Kind::Register);
        assert_eq!(r.valid, Validity::Invalid);
    }

    #[test]
    fn no_final_reads_is_unknown() {
        let r = check(&h(vec![vec![Op::new(0, Invoke, "add", json!(1))]]), Kind::Auto);
        assert_eq!(r.valid, Validity::Unknown);
        assert!(r.details["error"].as_str().unwrap().contains("no final reads"));
    }
}
