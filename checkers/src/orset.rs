//! The OR-set checker: observed-remove semantics, judged on every node's final read (`"final":
//! true`) of a set with `add` and `remove` (the `set-remove` workload).
//!
//! In an observed-remove set a remove takes away the adds its replica has *observed* (their
//! unique tags); an add the remove did not observe survives it, so an add concurrent with a
//! remove wins. Replicas apply each other's updates later, so "observed" is not "finished
//! earlier in real time": a remove made on one node right after an add finished on another may
//! not have seen it yet, and then the element correctly stays. The checker therefore demands only
//! what no correct OR-set can avoid, element by element (and per key, for keyed sets):
//!
//! - **must be present**: an acknowledged add `A` such that every remove of the element that did
//!   not fail was acknowledged *before `A` was invoked*. No such remove can have observed `A`'s
//!   tag (the tag did not exist yet), so the tag is never removed and the element is in every
//!   converged replica.
//! - **must be absent**: the element was removed, and every add of it that did not fail was
//!   acknowledged by a node that *later* (the remove invoked after the add's ok) acknowledged a
//!   remove of it. That remove ran on the replica that had applied the add, so it observed the
//!   add's tag; every tag is removed and no replica may hold the element.
//!
//! Everything else (an add and a remove concurrent in real time, or on different nodes, or an
//! outcome unknown) may end either way, and is counted as undetermined. A node's final read that
//! holds an element that must be absent, or misses one that must be present, is a violation
//! (`violations` counts them all, per node; `missing` and `resurrected` list examples).
//! Agreement between nodes and elements never added are the convergence checker's concern.
//! No final read at all: unknown.

use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::history::{Call, History, Key, Outcome};
use crate::registry::support::{self, call_json, EXAMPLES};
use crate::set::{element_id, read_elements};
use crate::verdict::{CheckResult, Validity};

fn node_name(c: &Call) -> String {
    c.node.as_ref().map(|n| n.to_string()).unwrap_or_else(|| format!("process {}", c.process))
}

/// What the history demands of one element.
#[derive(Debug, PartialEq)]
enum Demand {
    /// This acknowledged add's tag can never have been removed.
    Present(usize),
    /// Every add was removed by its own node afterwards: this remove for the last one.
    Absent(usize),
    Undetermined,
}

/// The adds and removes of one element (indices into the calls), in invoke order.
#[derive(Default)]
struct Element<'a> {
    value: Option<&'a Value>,
    adds: Vec<&'a Call>,
    removes: Vec<&'a Call>,
}

impl Element<'_> {
    fn demand(&self) -> Demand {
        // Present: an acknowledged add after every remove that did not fail had finished.
        let present = self.adds.iter().enumerate().rev().find(|(_, a)| {
            a.is_ok() && self.removes.iter().all(|r| r.is_ok() && r.complete_index.is_some_and(|done| done < a.invoke_index))
        });
        if let Some((i, _)) = present {
            return Demand::Present(i);
        }
        if self.removes.is_empty() {
            return Demand::Undetermined;
        }
        // Absent: each add covered by a later acknowledged remove on the same node.
        let mut last_cover = None;
        for a in &self.adds {
            let (Outcome::Ok(_), Some(done), Some(node)) = (&a.outcome, a.complete_index, &a.node) else {
                return Demand::Undetermined;
            };
            let cover = self.removes.iter().position(|r| r.is_ok() && r.invoke_index > done && r.node.as_ref() == Some(node));
            match cover {
                Some(r) => last_cover = last_cover.max(Some(r)),
                None => return Demand::Undetermined,
            }
        }
        match last_cover {
            Some(r) => Demand::Absent(r),
            // Removes of an element never added: absent, whichever remove.
            None => Demand::Absent(0),
        }
    }
}

/// Checks every node's last final read against what observed-remove semantics demand.
pub fn check(history: &History) -> CheckResult {
    let calls = match support::calls(history) {
        Ok(c) => c,
        Err(r) => return r,
    };
    // (key, element id) → its adds and removes that did not fail.
    let mut elements: BTreeMap<(Option<Key>, String), Element> = BTreeMap::new();
    for c in calls.iter().filter(|c| matches!(&*c.f, "add" | "remove") && c.outcome != Outcome::Fail) {
        let e = elements.entry((c.key.clone(), element_id(&c.input))).or_default();
        e.value.get_or_insert(&c.input);
        if &*c.f == "add" {
            e.adds.push(c);
        } else {
            e.removes.push(c);
        }
    }
    // key → node → the node's last successful final read.
    let mut finals: BTreeMap<Option<Key>, BTreeMap<String, &Value>> = BTreeMap::new();
    for c in calls.iter().filter(|c| c.final_read && &*c.f == "read") {
        if let Some(v) = c.output() {
            finals.entry(c.key.clone()).or_default().insert(node_name(c), v);
        }
    }
    if finals.is_empty() {
        return CheckResult::unknown("no final reads: the history has no ok read marked `final`, so the OR-set cannot be judged");
    }
    let removes = elements.values().map(|e| e.removes.len()).sum::<usize>();
    let (mut present, mut absent, mut undetermined, mut problems) = (0u64, 0u64, 0u64, 0u64);
    let (mut missing, mut resurrected, mut malformed) = (Vec::new(), Vec::new(), Vec::new());
    let mut held: BTreeMap<(Option<Key>, String), BTreeMap<String, bool>> = BTreeMap::new();
    for (key, nodes) in &finals {
        for (node, v) in nodes {
            let Some(items) = read_elements(v) else {
                problems += 1;
                if malformed.len() < EXAMPLES {
                    malformed.push(json!({"key": key, "node": node, "value": v, "problem": "not a list"}));
                }
                continue;
            };
            let ids: std::collections::HashSet<String> = items.iter().map(element_id).collect();
            for ((k, id), _) in elements.iter().filter(|((k, _), _)| k == key) {
                held.entry((k.clone(), id.clone())).or_default().insert(node.clone(), ids.contains(id));
            }
        }
    }
    for ((key, id), e) in &elements {
        let demand = e.demand();
        match demand {
            Demand::Present(_) => present += 1,
            Demand::Absent(_) => absent += 1,
            Demand::Undetermined => undetermined += 1,
        }
        let Some(on) = held.get(&(key.clone(), id.clone())) else { continue };
        for (node, has) in on {
            match (&demand, has) {
                (Demand::Present(a), false) => {
                    problems += 1;
                    if missing.len() < EXAMPLES {
                        let removes: Vec<Value> = e.removes.iter().map(|r| call_json(r)).collect();
                        missing.push(json!({"key": key, "element": e.value, "node": node, "add": call_json(e.adds[*a]), "removes": removes}));
                    }
                }
                (Demand::Absent(r), true) => {
                    problems += 1;
                    if resurrected.len() < EXAMPLES {
                        let adds: Vec<Value> = e.adds.iter().map(|a| call_json(a)).collect();
                        let remove = e.removes.get(*r).map(|r| call_json(r)).unwrap_or(Value::Null);
                        resurrected.push(json!({"key": key, "element": e.value, "node": node, "adds": adds, "remove": remove}));
                    }
                }
                _ => {}
            }
        }
    }
    let valid = if problems > 0 { Validity::Invalid } else { Validity::Valid };
    CheckResult::new(valid)
        .with("final_reads", json!(finals.values().map(|n| n.len()).sum::<usize>()))
        .with("elements", json!(elements.len()))
        .with("removes", json!(removes))
        .with("must_be_present", json!(present))
        .with("must_be_absent", json!(absent))
        .with("undetermined", json!(undetermined))
        .with("violations", json!(problems))
        .with("missing", Value::Array(missing))
        .with("resurrected", Value::Array(resurrected))
        .with("malformed", Value::Array(malformed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpType};
    use std::sync::Arc;

    /// A history built event by event: `inv` and `done` of processes on nodes.
    #[derive(Default)]
    struct B {
        ops: Vec<Op>,
    }

    impl B {
        fn ev(&mut self, p: u64, node: &str, t: OpType, f: &str, v: Value) -> &mut Self {
            let mut op = Op::new(p, t, f, v);
            op.node = Some(Arc::from(node));
            self.ops.push(op);
            self
        }
        fn inv(&mut self, p: u64, node: &str, f: &str, e: i64) -> &mut Self {
            self.ev(p, node, OpType::Invoke, f, json!(e))
        }
        fn ok(&mut self, p: u64, node: &str, f: &str, e: i64) -> &mut Self {
            self.ev(p, node, OpType::Ok, f, json!(e))
        }
        fn op(&mut self, p: u64, node: &str, f: &str, e: i64) -> &mut Self {
            self.inv(p, node, f, e).ok(p, node, f, e)
        }
        fn finals(&mut self, reads: &[(&str, Value)]) -> History {
            for (i, (node, v)) in reads.iter().enumerate() {
                let p = 1000 + i as u64;
                let mut a = Op::new(p, OpType::Invoke, "read", Value::Null);
                let mut b = Op::new(p, OpType::Ok, "read", v.clone());
                for op in [&mut a, &mut b] {
                    op.final_read = true;
                    op.node = Some(Arc::from(*node));
                }
                self.ops.extend([a, b]);
            }
            History::from_ops(std::mem::take(&mut self.ops))
        }
    }

    #[test]
    fn add_after_a_finished_remove_must_survive() {
        // 1 added on n1, removed on n2, added again on n3 after the remove finished.
        let mut b = B::default();
        b.op(0, "n1", "add", 1).op(1, "n2", "remove", 1).op(2, "n3", "add", 1);
        let r = check(&b.finals(&[("n1", json!([1])), ("n2", json!([1])), ("n3", json!([1]))]));
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.details["must_be_present"], json!(1));
        let mut b = B::default();
        b.op(0, "n1", "add", 1).op(1, "n2", "remove", 1).op(2, "n3", "add", 1);
        let r = check(&b.finals(&[("n1", json!([])), ("n2", json!([])), ("n3", json!([]))]));
        assert_eq!(r.valid, Validity::Invalid, "{r:?}");
        assert_eq!(r.details["missing"].as_array().unwrap().len(), 3);
        assert_eq!(r.details["missing"][0]["add"]["process"], json!(2));
    }

    #[test]
    fn removed_by_its_own_node_after_the_add_must_stay_absent() {
        let mut b = B::default();
        b.op(0, "n1", "add", 1).op(0, "n1", "remove", 1).op(3, "n2", "add", 2);
        let r = check(&b.finals(&[("n1", json!([2])), ("n2", json!([2]))]));
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!((r.details["must_be_absent"].clone(), r.details["must_be_present"].clone()), (json!(1), json!(1)));
        let mut b = B::default();
        b.op(0, "n1", "add", 1).op(0, "n1", "remove", 1).op(3, "n2", "add", 2);
        let r = check(&b.finals(&[("n1", json!([2])), ("n2", json!([1, 2]))]));
        assert_eq!(r.valid, Validity::Invalid, "{r:?}");
        assert_eq!(r.details["resurrected"][0]["node"], json!("n2"));
    }

    #[test]
    fn concurrent_or_unobserved_cases_may_end_either_way() {
        for end in [json!([]), json!([1])] {
            // A remove on another node right after the add: it may not have seen the add yet.
            let mut b = B::default();
            b.op(0, "n1", "add", 1).op(1, "n2", "remove", 1);
            let r = check(&b.finals(&[("n1", end.clone()), ("n2", end.clone())]));
            assert_eq!(r.valid, Validity::Valid, "{end}: {r:?}");
            assert_eq!(r.details["undetermined"], json!(1));
            // An add concurrent with a remove on the same node.
            let mut b = B::default();
            b.op(0, "n1", "add", 1).inv(1, "n1", "add", 1).op(2, "n1", "remove", 1).ok(1, "n1", "add", 1);
            let r = check(&b.finals(&[("n1", end.clone())]));
            assert_eq!(r.valid, Validity::Valid, "{end}: {r:?}");
            // A remove whose outcome is unknown may have come after any add.
            let mut b = B::default();
            b.op(0, "n1", "add", 1).inv(1, "n1", "remove", 1).ev(1, "n1", OpType::Info, "remove", json!(1));
            b.op(2, "n1", "add", 1);
            let r = check(&b.finals(&[("n1", end.clone())]));
            assert_eq!(r.valid, Validity::Valid, "{end}: {r:?}");
        }
    }

    #[test]
    fn failed_operations_do_not_count_and_no_final_read_is_unknown() {
        let mut b = B::default();
        b.op(0, "n1", "add", 1).inv(1, "n1", "remove", 1).ev(1, "n1", OpType::Fail, "remove", json!(1));
        let r = check(&b.finals(&[("n1", json!([]))]));
        assert_eq!(r.valid, Validity::Invalid, "a failed remove removes nothing: {r:?}");
        let mut b = B::default();
        b.op(0, "n1", "add", 1);
        assert_eq!(check(&History::from_ops(std::mem::take(&mut b.ops))).valid, Validity::Unknown);
    }
}
