//! The set workloads.
//!
//! `set` ([`SetWorkload`]): adds of unique, increasing integers and occasional reads of the whole
//! set. Every element is added exactly once, so the `set` checker can tell a lost element (an
//! acknowledged add missing from every later read) from one still in flight.
//!
//! `set-remove` ([`SetRemove`]): the same plus `remove`s, for observed-remove sets (the CRDTs):
//! an element may be removed, and a removed element is sometimes added again, so an add
//! concurrent with a remove of the same element is exercised. Half the removes take an element
//! the same process added (so the remove certainly comes after that add, on the same node: the
//! evidence the `orset` checker needs to require an element's absence), the other half take any
//! recently added element (often still in flight elsewhere: concurrency).

use crate::{rng, OpSpec, Workload};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};

/// Share of reads, in percent. Reads return the whole set, so they stay rare.
const READ_PERCENT: u32 = 10;

pub struct SetWorkload {
    rng: ChaCha8Rng,
    next_element: i64,
}

impl SetWorkload {
    pub fn new(seed: u64) -> SetWorkload {
        SetWorkload { rng: rng(seed, 3), next_element: 0 }
    }
}

impl Workload for SetWorkload {
    fn name(&self) -> &'static str {
        "set"
    }

    fn next_op(&mut self, _process: u64) -> OpSpec {
        if self.rng.gen_range(0..100) < READ_PERCENT {
            return OpSpec::read(None);
        }
        let element = self.next_element;
        self.next_element += 1;
        OpSpec { add_element: true, ..OpSpec::new("add", None, json!(element)) }
    }
}

/// How many recently added (and recently removed) elements are candidates for a remove (and a
/// re-add). Small, so operations on one element often overlap.
const RECENT: usize = 12;
/// Per process: how many of its own adds it remembers as remove candidates.
const OWN: usize = 4;

/// The `set-remove` workload (see the module documentation).
pub struct SetRemove {
    rng: ChaCha8Rng,
    next_element: i64,
    recent_adds: VecDeque<i64>,
    recent_removes: VecDeque<i64>,
    /// Per process (logical client), the elements it added last.
    own: BTreeMap<u64, VecDeque<i64>>,
}

fn push_bounded(q: &mut VecDeque<i64>, v: i64, cap: usize) {
    q.retain(|x| *x != v);
    q.push_back(v);
    while q.len() > cap {
        q.pop_front();
    }
}

impl SetRemove {
    pub fn new(seed: u64) -> SetRemove {
        SetRemove { rng: rng(seed, 6), next_element: 0, recent_adds: VecDeque::new(), recent_removes: VecDeque::new(), own: BTreeMap::new() }
    }

    fn add(&mut self, process: u64, element: i64) -> OpSpec {
        push_bounded(&mut self.recent_adds, element, RECENT);
        push_bounded(self.own.entry(process).or_default(), element, OWN);
        OpSpec { add_element: true, ..OpSpec::new("add", None, json!(element)) }
    }

    fn pick(rng: &mut ChaCha8Rng, q: &VecDeque<i64>) -> Option<i64> {
        (!q.is_empty()).then(|| q[rng.gen_range(0..q.len())])
    }
}

impl Workload for SetRemove {
    fn name(&self) -> &'static str {
        "set-remove"
    }

    /// About 10% reads, 45% adds of fresh elements, 15% re-adds of a recently removed element,
    /// 30% removes (half of the process's own adds, half of anyone's recent ones).
    fn next_op(&mut self, process: u64) -> OpSpec {
        let roll = self.rng.gen_range(0..100);
        if roll < READ_PERCENT {
            return OpSpec::read(None);
        }
        if roll >= 70 {
            let own = self.rng.gen_bool(0.5);
            let candidate = match own {
                true => Self::pick(&mut self.rng, self.own.get(&process).unwrap_or(&VecDeque::new())),
                false => Self::pick(&mut self.rng, &self.recent_adds),
            };
            if let Some(element) = candidate {
                self.recent_adds.retain(|x| *x != element);
                if let Some(q) = self.own.get_mut(&process) {
                    q.retain(|x| *x != element);
                }
                push_bounded(&mut self.recent_removes, element, RECENT);
                return OpSpec::new("remove", None, json!(element));
            }
        } else if roll >= 55 {
            if let Some(element) = Self::pick(&mut self.rng, &self.recent_removes) {
                self.recent_removes.retain(|x| *x != element);
                return self.add(process, element);
            }
        }
        let element = self.next_element;
        self.next_element += 1;
        self.add(process, element)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_unique_and_increasing() {
        let mut w = SetWorkload::new(11);
        let ops: Vec<OpSpec> = (0..2000).map(|p| w.next_op(p)).collect();
        let elements: Vec<i64> = ops.iter().filter(|o| o.f == "add").map(|o| o.value.as_i64().unwrap()).collect();
        assert!(elements.windows(2).all(|w| w[0] < w[1]));
        assert!(ops.iter().filter(|o| o.f == "add").all(|o| o.add_element));
        let reads = ops.len() - elements.len();
        assert!((100..300).contains(&reads), "reads {reads}");
    }

    #[test]
    fn set_remove_mixes_adds_removes_and_re_adds() {
        let mut w = SetRemove::new(5);
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        let mut added: BTreeMap<i64, usize> = BTreeMap::new();
        let mut last_add_by: BTreeMap<i64, u64> = BTreeMap::new();
        let (mut re_adds, mut own_removes, mut removes) = (0, 0, 0);
        for i in 0..20_000u64 {
            let p = i % 10;
            let op = w.next_op(p);
            assert!(op.key.is_none() && !op.local);
            match op.f.as_str() {
                "read" => assert!(op.value.is_null()),
                "add" => {
                    assert!(op.add_element);
                    let e = op.value.as_i64().unwrap();
                    let n = added.entry(e).or_default();
                    *n += 1;
                    re_adds += (*n > 1) as usize;
                    last_add_by.insert(e, p);
                }
                "remove" => {
                    let e = op.value.as_i64().unwrap();
                    assert!(added.contains_key(&e), "remove of {e}, never added");
                    removes += 1;
                    own_removes += (last_add_by.get(&e) == Some(&p)) as usize;
                }
                other => panic!("unexpected f {other}"),
            }
            *counts.entry(op.f.clone()).or_default() += 1;
        }
        assert!((1500..2500).contains(&counts["read"]), "{counts:?}");
        assert!((4500..7000).contains(&counts["remove"]), "{counts:?}");
        assert!(re_adds > 1500, "re-adds {re_adds}");
        assert!(own_removes * 4 > removes, "own removes {own_removes} of {removes}");
        assert_eq!(w.final_reads(), vec![OpSpec::read(None)]);
    }
}
