//! The register workload: reads, writes and compare-and-sets on integer keys.
//!
//! Checking linearizability is NP-complete in the number of concurrent operations on one object,
//! so the generator keeps every key small: a handful of keys are *active* at a time, each shared
//! by at most `max_writers_per_key` client threads, and a key that has received
//! `max_ops_per_key` operations is retired for good and replaced by a fresh one (Jepsen's
//! `independent` generator does the same). Each key is then an independent, bounded
//! linearizability problem for the `kv` model.
//!
//! Values are small integers (0..10) so that reads often see a value that several writes wrote
//! and cas preconditions sometimes hold; the mix is about 45% read, 35% write, 20% cas.

use crate::{rng, OpSpec, Workload, WorkloadError, WorkloadOptions};
use faultline_checkers::history::Key;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// Values written and compared are drawn from `0..VALUE_RANGE`.
const VALUE_RANGE: i64 = 10;
/// The final reads cover at most this many of the most recent keys, so the end of a long run
/// does not turn into thousands of reads per node.
const MAX_FINAL_KEYS: i64 = 128;

/// One active key and how many operations it has received.
#[derive(Clone, Debug)]
struct Slot {
    key: i64,
    ops: u32,
}

pub struct Register {
    rng: ChaCha8Rng,
    concurrency: u64,
    max_ops_per_key: u32,
    slots: Vec<Slot>,
    /// The next never-used key; keys `0..next_key` have been used.
    next_key: i64,
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
        let slots = (0..n_slots as i64).map(|key| Slot { key, ops: 0 }).collect();
        Ok(Register {
            rng: rng(seed, 1),
            concurrency: opts.concurrency.max(1) as u64,
            max_ops_per_key: opts.max_ops_per_key,
            slots,
            next_key: n_slots as i64,
        })
    }

    /// The active slot of a process. Processes are numbered so that `process % concurrency` is
    /// the client thread (a retired process is replaced by `process + concurrency`); threads are
    /// dealt round-robin over the slots, so a slot has at most `ceil(concurrency / slots)` ≤
    /// `max_writers_per_key` threads.
    fn slot_of(&self, process: u64) -> usize {
        ((process % self.concurrency) % self.slots.len() as u64) as usize
    }

    /// The key for the next operation of `process`, retiring its slot's key when spent.
    fn take_key(&mut self, process: u64) -> i64 {
        let i = self.slot_of(process);
        if self.slots[i].ops >= self.max_ops_per_key {
            self.slots[i] = Slot { key: self.next_key, ops: 0 };
            self.next_key += 1;
        }
        self.slots[i].ops += 1;
        debug_assert!(self.slots[i].ops <= self.max_ops_per_key);
        self.slots[i].key
    }
}

impl Workload for Register {
    fn name(&self) -> &'static str {
        "register"
    }

    fn next_op(&mut self, process: u64) -> OpSpec {
        let key = Some(Key::Int(self.take_key(process)));
        let roll = self.rng.gen_range(0..100);
        if roll < 45 {
            OpSpec::read(key)
        } else if roll < 80 {
            OpSpec::new("write", key, json!(self.rng.gen_range(0..VALUE_RANGE)))
        } else {
            let from = self.rng.gen_range(0..VALUE_RANGE);
            let to = self.rng.gen_range(0..VALUE_RANGE);
            OpSpec::new("cas", key, json!([from, to]))
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
                "write" => assert!((0..VALUE_RANGE).contains(&op.value.as_i64().unwrap())),
                "cas" => {
                    let pair = op.value.as_array().unwrap();
                    assert_eq!(pair.len(), 2);
                    assert!(pair.iter().all(|v| (0..VALUE_RANGE).contains(&v.as_i64().unwrap())));
                }
                other => panic!("unexpected f {other}"),
            }
            *counts.entry(op.f).or_default() += 1;
        }
        assert!((4000..5000).contains(&counts["read"]), "{counts:?}");
        assert!((3000..4000).contains(&counts["write"]), "{counts:?}");
        assert!((1500..2500).contains(&counts["cas"]), "{counts:?}");
    }

    #[test]
    fn zero_budgets_are_rejected() {
        assert!(Register::new(1, &opts(5, 0, 1)).is_err());
        assert!(Register::new(1, &opts(5, 10, 0)).is_err());
    }
}
