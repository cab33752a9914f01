//! The register workload: reads, writes and compare-and-sets on integer keys.
//!
//! Checking linearizability is NP-complete in the number of concurrent operations on one object,
//! so the generator keeps every key small: a handful of keys are *active* at a time, each shared
//! by at most `max_writers_per_key` client threads, and a key that has received
//! `max_ops_per_key` operations is retired for good and replaced by a fresh one (Jepsen's
//! `independent` generator does the same). Each key is then an independent, bounded
//! linearizability problem for the `kv` model.
//!
//! Values are *unambiguous*: every write and every cas writes a fresh integer that no other
//! operation of the run writes, so a read names the one operation whose value it saw (Jepsen's
//! advice for registers: with repeated values a stale read can hide behind a newer write of the
//! same value, and the checker must consider every write of it). A cas expects the value last
//! written to its key by this generator (the last write's value, or the last cas's target), so
//! its precondition often holds; on a key with no write yet a cas would certainly fail, so a
//! write is made instead. The mix is about 45% read, 35% write, 20% cas.

use crate::{rng, OpSpec, Workload, WorkloadError, WorkloadOptions};
use faultline_checkers::history::Key;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// The final reads cover at most this many of the most recent keys, so the end of a long run
/// does not turn into thousands of reads per node.
const MAX_FINAL_KEYS: i64 = 128;

/// One active key, how many operations it has received, and the value last generated for it
/// (by a write, or as a cas's target).
#[derive(Clone, Debug)]
struct Slot {
    key: i64,
    ops: u32,
    last: Option<i64>,
}

pub struct Register {
    rng: ChaCha8Rng,
    concurrency: u64,
    max_ops_per_key: u32,
    slots: Vec<Slot>,
    /// The next never-used key; keys `0..next_key` have been used.
    next_key: i64,
    /// The next never-written value: every write and cas target is fresh.
    next_value: i64,
}

impl Register {
    pub fn new(seed: u64, opts: &WorkloadOptions) -> Result<Register, WorkloadError> {
        if opts.max_ops_per_key == 0 || opts.max_writers_per_key == 0 {
            return Err(WorkloadError::InvalidOption(
                "max_ops_per_key and max_writers_per_key must be at least 1".into(),
            ));
        }
        let writers = opts.max_writers_per_key as usize;
        let n_slots = opts.concurrency.div_ceil(writers).max(1);
        let slots = (0..n_slots as i64).map(|key| Slot { key, ops: 0, last: None }).collect();
        Ok(Register {
            rng: rng(seed, 1),
            concurrency: opts.concurrency.max(1) as u64,
            max_ops_per_key: opts.max_ops_per_key,
            slots,
            next_key: n_slots as i64,
            next_value: 1,
        })
    }

    fn fresh_value(&mut self) -> i64 {
        let v = self.next_value;
        self.next_value += 1;
        v
    }

    /// The active slot of a process. Processes are numbered so that `process % concurrency` is
    /// the client thread (a retired process is replaced by `process + concurrency`); threads are
    /// dealt round-robin over the slots, so a slot has at most `ceil(concurrency / slots)` ≤
    /// `max_writers_per_key` threads.
    fn slot_of(&self, process: u64) -> usize {
        ((process % self.concurrency) % self.slots.len() as u64) as usize
    }

    /// The slot for the next operation of `process`, retiring its key when spent.
    fn take_slot(&mut self, process: u64) -> usize {
        let i = self.slot_of(process);
        if self.slots[i].ops >= self.max_ops_per_key {
            self.slots[i] = Slot { key: self.next_key, ops: 0, last: None };
            self.next_key += 1;
        }
        self.slots[i].ops += 1;
        debug_assert!(self.slots[i].ops <= self.max_ops_per_key);
        i
    }
}

impl Workload for Register {
    fn name(&self) -> &'static str {
        "register"
    }

    fn next_op(&mut self, process: u64) -> OpSpec {
        let i = self.take_slot(process);
        let key = Some(Key::Int(self.slots[i].key));
        let roll = self.rng.gen_range(0..100);
        if roll < 45 {
            return OpSpec::read(key);
        }
        let to = self.fresh_value();
        let last = self.slots[i].last.replace(to);
        match last {
            Some(from) if roll >= 80 => OpSpec::new("cas", key, json!([from, to])),
            _ => OpSpec::new("write", key, json!(to)),
        }
    }

    fn final_reads(&self) -> Vec<OpSpec> {
        let first = (self.next_key - MAX_FINAL_KEYS).max(0);
        (first..self.next_key).map(|k| OpSpec::read(Some(Key::Int(k)))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn opts(concurrency: usize, max_ops: u32, writers: u32) -> WorkloadOptions {
        WorkloadOptions { concurrency, max_ops_per_key: max_ops, max_writers_per_key: writers, ..Default::default() }
    }

    /// Drives the generator like the harness does (threads in turn, some processes retired and
    /// replaced by `process + concurrency`) and checks each key's budget and writer bound.
    #[test]
    fn keys_rotate_within_their_bounds() {
        for (concurrency, max_ops, writers) in [(10, 200, 5), (7, 20, 3), (3, 5, 1), (1, 1, 1), (16, 50, 4)] {
            let mut w = Register::new(3, &opts(concurrency, max_ops, writers)).unwrap();
            let mut procs: Vec<u64> = (0..concurrency as u64).collect();
            let mut per_key: BTreeMap<i64, u32> = BTreeMap::new();
            let mut threads: BTreeMap<i64, BTreeSet<u64>> = BTreeMap::new();
            let mut retired_keys = BTreeSet::new();
            let mut last_key: BTreeMap<usize, i64> = BTreeMap::new();
            for i in 0..5000usize {
                let t = i % concurrency;
                if i % 97 == 0 {
                    procs[t] += concurrency as u64; // an info retired the process
                }
                let op = w.next_op(procs[t]);
                let Some(Key::Int(k)) = op.key else { panic!("register ops have integer keys") };
                assert!(!retired_keys.contains(&k), "key {k} was used again after it was retired");
                let slot = w.slot_of(procs[t]);
                if let Some(prev) = last_key.insert(slot, k) {
                    if prev != k {
                        retired_keys.insert(prev);
                    }
                }
                *per_key.entry(k).or_default() += 1;
                threads.entry(k).or_default().insert(procs[t] % concurrency as u64);
                assert!(["read", "write", "cas"].contains(&op.f.as_str()));
            }
            assert!(per_key.values().all(|&n| n <= max_ops), "budget {max_ops}: {per_key:?}");
            assert!(threads.values().all(|t| t.len() <= writers as usize), "writers {writers}: {threads:?}");
            assert!(per_key.len() > 1 || 5000 <= max_ops as usize, "keys must rotate");
            assert_eq!(w.final_reads().len() as i64, (per_key.len() as i64).min(MAX_FINAL_KEYS));
        }
    }

    #[test]
    fn mix_and_values() {
        let mut w = Register::new(9, &WorkloadOptions::default()).unwrap();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..10_000 {
            let op = w.next_op(i % 10);
            match op.f.as_str() {
                "read" => assert_eq!(op.value, serde_json::Value::Null),
                "write" => assert!(op.value.as_i64().unwrap() >= 1),
                "cas" => {
                    let pair = op.value.as_array().unwrap();
                    assert_eq!(pair.len(), 2);
                    assert!(pair.iter().all(|v| v.as_i64().unwrap() >= 1));
                }
                other => panic!("unexpected f {other}"),
            }
            *counts.entry(op.f).or_default() += 1;
        }
        assert!((4000..5000).contains(&counts["read"]), "{counts:?}");
        assert!((3000..4200).contains(&counts["write"]), "{counts:?}");
        assert!((1300..2500).contains(&counts["cas"]), "{counts:?}");
    }

    /// Every value is written once in the whole run (so a read names its write), and a cas
    /// expects exactly the value last written to its key, never one of another key or a value
    /// never written.
    #[test]
    fn values_are_fresh_and_cas_expects_the_last_write() {
        let mut w = Register::new(4, &opts(10, 50, 5)).unwrap();
        let mut written: BTreeSet<i64> = BTreeSet::new();
        let mut last: BTreeMap<i64, i64> = BTreeMap::new();
        let mut cas = 0;
        for i in 0..20_000u64 {
            let op = w.next_op(i % 10);
            let Some(Key::Int(k)) = op.key else { panic!("integer keys") };
            let to = match op.f.as_str() {
                "write" => op.value.as_i64().unwrap(),
                "cas" => {
                    cas += 1;
                    let from = op.value[0].as_i64().unwrap();
                    assert_eq!(last.get(&k), Some(&from), "cas on key {k} expects the value last written there");
                    op.value[1].as_i64().unwrap()
                }
                _ => continue,
            };
            assert!(written.insert(to), "value {to} written twice");
            last.insert(k, to);
        }
        assert!(cas > 2_000, "{cas} cas");
    }

    #[test]
    fn zero_budgets_are_rejected() {
        assert!(Register::new(1, &opts(5, 0, 1)).is_err());
        assert!(Register::new(1, &opts(5, 10, 0)).is_err());
    }
}
