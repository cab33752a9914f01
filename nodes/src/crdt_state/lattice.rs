//! The state-based CRDTs themselves: join-semilattices whose merge is commutative, associative
//! and idempotent (Shapiro, Preguiça, Baquero & Zawirski, "Conflict-free Replicated Data Types",
//! 2011). Replicas that have merged the same updates, in any order and any number of times,
//! hold equal states.

use super::bugs::{Bug, Bugs};
use crate::core::NodeId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// A unique add-tag: the node that added and its own counter.
pub type Tag = (NodeId, u64);

/// A positive-negative counter: per node, the sum of its increments and of its decrements.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PnCounter {
    pub p: BTreeMap<NodeId, u64>,
    pub n: BTreeMap<NodeId, u64>,
}

fn max_merge(into: &mut BTreeMap<NodeId, u64>, other: &BTreeMap<NodeId, u64>) -> bool {
    let mut changed = false;
    for (k, v) in other {
        let e = into.entry(k.clone()).or_insert(0);
        if *v > *e {
            *e = *v;
            changed = true;
        }
    }
    changed
}

impl PnCounter {
    /// Records `delta` as this node's; returns the delta-state to ship (this node's entries).
    pub fn add(&mut self, node: &str, delta: i64) -> PnCounter {
        let (map, by) = if delta >= 0 { (&mut self.p, delta as u64) } else { (&mut self.n, delta.unsigned_abs()) };
        let e = map.entry(node.to_string()).or_insert(0);
        *e = e.saturating_add(by);
        let mut d = PnCounter::default();
        d.p.extend(self.p.get(node).map(|v| (node.to_string(), *v)));
        d.n.extend(self.n.get(node).map(|v| (node.to_string(), *v)));
        d
    }

    pub fn value(&self) -> i64 {
        let sum = |m: &BTreeMap<NodeId, u64>| m.values().fold(0i64, |a, v| a.saturating_add(*v as i64));
        sum(&self.p).saturating_sub(sum(&self.n))
    }

    pub fn merge(&mut self, other: &PnCounter) -> bool {
        self.merge_with(other, Bugs::default())
    }

    pub fn merge_with(&mut self, other: &PnCounter, bugs: Bugs) -> bool {
        // BUG(merge-sums-counters): a sum is not idempotent; merging twice counts twice.
        let merge = if bugs.has(Bug::MergeSumsCounters) { sum_merge } else { max_merge };
        let a = merge(&mut self.p, &other.p);
        let b = merge(&mut self.n, &other.n);
        a || b
    }
}

/// The known bug `merge-sums-counters`: adds the other's counts to ours.
fn sum_merge(into: &mut BTreeMap<NodeId, u64>, other: &BTreeMap<NodeId, u64>) -> bool {
    let mut changed = false;
    for (k, v) in other.iter().filter(|(_, v)| **v > 0) {
        let e = into.entry(k.clone()).or_insert(0);
        *e = e.saturating_add(*v);
        changed = true;
    }
    changed
}

/// An observed-remove set: an element is present while it has an add-tag not removed.
/// Elements are kept as their JSON text, so any JSON value can be one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrSet {
    pub adds: BTreeMap<String, BTreeSet<Tag>>,
    /// Tombstones: tags whose add was observed and removed.
    pub removed: BTreeSet<Tag>,
}

impl OrSet {
    /// Adds `element` with a fresh tag; returns the delta-state.
    pub fn add(&mut self, element: &Value, tag: Tag) -> OrSet {
        let key = element.to_string();
        self.adds.entry(key.clone()).or_default().insert(tag.clone());
        let mut d = OrSet::default();
        d.adds.insert(key, BTreeSet::from([tag]));
        d
    }

    /// Removes the element as observed here: its current tags become tombstones; a concurrent
    /// add elsewhere (a tag not seen here) survives. Returns the delta-state.
    pub fn remove(&mut self, element: &Value) -> OrSet {
        let tags = self.adds.get(&element.to_string()).cloned().unwrap_or_default();
        self.removed.extend(tags.iter().cloned());
        OrSet { adds: BTreeMap::new(), removed: tags }
    }

    pub fn contains(&self, element: &Value) -> bool {
        self.adds.get(&element.to_string()).is_some_and(|tags| tags.iter().any(|t| !self.removed.contains(t)))
    }

    /// The present elements, numbers in numeric order first, then the rest by JSON text.
    pub fn elements(&self) -> Vec<Value> {
        let present = self.adds.iter().filter(|(_, tags)| tags.iter().any(|t| !self.removed.contains(t)));
        sorted_elements(present.map(|(k, _)| k.as_str()))
    }

    pub fn merge(&mut self, other: &OrSet) -> bool {
        self.merge_with(other, Bugs::default())
    }

    /// [`OrSet::merge`], with the known bugs in `bugs` switched on.
    pub fn merge_with(&mut self, other: &OrSet, bugs: Bugs) -> bool {
        let mut changed = false;
        for (k, tags) in &other.adds {
            let mine = self.adds.entry(k.clone()).or_default();
            for t in tags {
                changed |= mine.insert(t.clone());
            }
        }
        for t in &other.removed {
            changed |= self.removed.insert(t.clone());
        }
        if bugs.has(Bug::RemoveDropsUnobserved) && !other.removed.is_empty() {
            // BUG(remove-drops-unobserved): a tombstone of an element takes every tag of that
            // element held here with it, tags its remove never observed included.
            for tags in self.adds.values() {
                if tags.iter().any(|t| other.removed.contains(t)) {
                    for t in tags {
                        changed |= self.removed.insert(t.clone());
                    }
                }
            }
        }
        changed
    }
}

/// Parses elements kept as JSON text and orders them for reading: numbers numerically (so a
/// read of a set of integers looks as expected: 2 before 10), everything else after, by text.
pub fn sorted_elements<'a>(texts: impl Iterator<Item = &'a str>) -> Vec<Value> {
    let mut values: Vec<Value> = texts.filter_map(|k| serde_json::from_str(k).ok()).collect();
    values.sort_by(|a, b| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.to_string().cmp(&b.to_string()),
    });
    values
}

/// A last-writer-wins register: the write with the greatest stamp wins everywhere.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lww {
    /// (wall-clock ms of the writer, writer, writer's counter): the clock first, so clock skew
    /// decides which of two writes survives — the weakness this register is meant to show.
    pub stamp: (u64, NodeId, u64),
    pub value: Value,
}

/// Every CRDT a node holds; the workload decides which one clients see.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub counter: PnCounter,
    pub set: OrSet,
    /// Register per key (the key's JSON text).
    pub registers: BTreeMap<String, Lww>,
}

impl State {
    /// Joins `other` into `self`; whether anything changed.
    pub fn merge(&mut self, other: &State) -> bool {
        self.merge_with(other, Bugs::default())
    }

    /// [`State::merge`], with the known bugs in `bugs` switched on.
    pub fn merge_with(&mut self, other: &State, bugs: Bugs) -> bool {
        let mut changed = self.counter.merge_with(&other.counter, bugs);
        changed |= self.set.merge_with(&other.set, bugs);
        let by_arrival = bugs.has(Bug::LwwByArrival);
        for (k, w) in &other.registers {
            let keep = match self.registers.get(k) {
                // BUG(lww-by-arrival): the write that arrives last wins, whatever its stamp.
                Some(mine) if by_arrival => mine == w,
                Some(mine) => mine.stamp >= w.stamp,
                None => false,
            };
            if !keep {
                self.registers.insert(k.clone(), w.clone());
                changed = true;
            }
        }
        changed
    }

    /// The greatest counter this node has used in its tags and stamps (to continue after it).
    pub fn own_counter(&self, node: &str) -> u64 {
        let tags = self.set.adds.values().flatten().filter(|(n, _)| n == node).map(|(_, c)| *c);
        let stamps = self.registers.values().filter(|w| w.stamp.1 == node).map(|w| w.stamp.2);
        tags.chain(stamps).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn n(s: &str) -> NodeId {
        s.to_string()
    }

    #[test]
    fn counter_merge_is_idempotent_and_commutative() {
        let (mut a, mut b) = (PnCounter::default(), PnCounter::default());
        a.add("n1", 5);
        a.add("n1", -2);
        b.add("n2", 7);
        let (mut ab, mut ba) = (a.clone(), b.clone());
        ab.merge(&b);
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(ab.value(), 10);
        assert!(!ab.merge(&a), "merging again changes nothing");
    }

    #[test]
    fn orset_observed_remove_keeps_concurrent_adds() {
        let (mut a, mut b) = (OrSet::default(), OrSet::default());
        a.add(&json!(1), (n("n1"), 1));
        b.merge(&a);
        b.add(&json!(1), (n("n2"), 1)); // concurrent with a's remove below
        a.remove(&json!(1));
        assert!(!a.contains(&json!(1)));
        a.merge(&b);
        b.merge(&a);
        assert_eq!(a, b);
        assert_eq!(a.elements(), vec![json!(1)]);
    }

    #[test]
    fn lww_highest_stamp_wins_in_any_order() {
        let w = |ts, node: &str, v| {
            let mut s = State::default();
            s.registers.insert("\"k\"".into(), Lww { stamp: (ts, n(node), 1), value: json!(v) });
            s
        };
        let (x, y) = (w(10, "n2", 1), w(10, "n3", 2));
        let (mut a, mut b) = (x.clone(), y.clone());
        a.merge(&y);
        b.merge(&x);
        assert_eq!(a, b);
        assert_eq!(a.registers["\"k\""].value, json!(2), "tie on the clock: node id breaks it");
    }
}
