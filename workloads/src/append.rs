//! The append workload: Jepsen's list-append, one operation at a time. Each key holds a list;
//! `append` adds one element to the end of a key's list and `read` returns the whole list (`null`
//! for a key never appended to).
//!
//! Every appended element is a fresh integer, unique in the whole run, so a list read is
//! unambiguous: it names every append it reflects and the order they were applied in. That is
//! the evidence registers lack (a register read shows only the last write): a lost, reordered
//! or duplicated append stays visible in every later read, and two replicas' lists can be
//! compared element by element (the `agreement` checker).
//!
//! Keys are contended: [`HOT_PERCENT`]% of the operations go to [`HOT_KEYS`] hot keys, the rest
//! to [`TAIL_KEYS`] others. A key that has received `max_ops_per_key` operations is retired for
//! good and replaced by a fresh one (as the register workload does), which bounds both each
//! key's linearizability search and the length of its list.
//!
//! The final reads read every key ever used, first through the protocol (as any read), then
//! locally on every replica (`OpSpec::local`), for the `agreement` checker.

use crate::{rng, OpSpec, Workload, WorkloadError, WorkloadOptions};
use faultline_checkers::history::Key;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// Hot keys: most operations go to one of them.
pub const HOT_KEYS: usize = 3;
/// Share of operations on the hot keys, in percent.
pub const HOT_PERCENT: u32 = 80;
/// The other keys active at a time.
pub const TAIL_KEYS: usize = 17;
/// Share of reads, in percent.
const READ_PERCENT: u32 = 40;

/// One active key and how many operations it has received.
#[derive(Clone, Debug)]
struct Slot {
    key: i64,
    ops: u32,
}

pub struct Append {
    rng: ChaCha8Rng,
    max_ops_per_key: u32,
    /// `HOT_KEYS` hot slots, then `TAIL_KEYS` tail slots.
    slots: Vec<Slot>,
    /// Keys `0..next_key` have been used.
    next_key: i64,
    /// The next element never appended anywhere.
    next_value: i64,
}

impl Append {
    pub fn new(seed: u64, opts: &WorkloadOptions) -> Result<Append, WorkloadError> {
        if opts.max_ops_per_key == 0 {
            return Err(WorkloadError::InvalidOption("max_ops_per_key must be at least 1".into()));
        }
        let n = (HOT_KEYS + TAIL_KEYS) as i64;
        Ok(Append {
            rng: rng(seed, 5),
            max_ops_per_key: opts.max_ops_per_key,
            slots: (0..n).map(|key| Slot { key, ops: 0 }).collect(),
            next_key: n,
            next_value: 1,
        })
    }

    fn take_key(&mut self) -> i64 {
        let i = if self.rng.gen_range(0..100) < HOT_PERCENT {
            self.rng.gen_range(0..HOT_KEYS)
        } else {
            HOT_KEYS + self.rng.gen_range(0..TAIL_KEYS)
        };
        if self.slots[i].ops >= self.max_ops_per_key {
            self.slots[i] = Slot { key: self.next_key, ops: 0 };
            self.next_key += 1;
        }
        self.slots[i].ops += 1;
        self.slots[i].key
    }
}

impl Workload for Append {
    fn name(&self) -> &'static str {
        "append"
    }

    fn next_op(&mut self, _process: u64) -> OpSpec {
        let key = Some(Key::Int(self.take_key()));
        if self.rng.gen_range(0..100) < READ_PERCENT {
            return OpSpec::read(key);
        }
        let v = self.next_value;
        self.next_value += 1;
        OpSpec::new("append", key, json!(v))
    }

    /// Every key used, read through the protocol, then every key read locally.
    fn final_reads(&self) -> Vec<OpSpec> {
        let keys = 0..self.next_key;
        let reads = keys.clone().map(|k| OpSpec::read(Some(Key::Int(k))));
        reads.chain(keys.map(|k| OpSpec::local_read(Some(Key::Int(k))))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn generate(seed: u64, n: usize, max_ops: u32) -> (Append, Vec<OpSpec>) {
        let opts = WorkloadOptions { max_ops_per_key: max_ops, ..Default::default() };
        let mut w = Append::new(seed, &opts).unwrap();
        let ops = (0..n as u64).map(|p| w.next_op(p % 10)).collect();
        (w, ops)
    }

    #[test]
    fn appended_elements_are_unique() {
        let (_, ops) = generate(3, 20_000, 200);
        let mut seen = BTreeSet::new();
        for op in ops.iter().filter(|o| o.f == "append") {
            assert!(op.key.is_some());
            assert!(seen.insert(op.value.as_i64().unwrap()), "element {} appended twice", op.value);
        }
        let reads = ops.iter().filter(|o| o.f == "read").count();
        assert!((7_000..9_000).contains(&reads), "reads {reads}");
        assert!(ops.iter().all(|o| (o.f == "read" && o.value.is_null()) || o.f == "append"));
    }

    /// Without retirement the hot keys take about 80% of the operations, and the tail covers
    /// its 17 keys; no key ever exceeds its budget, and a retired key never comes back.
    #[test]
    fn keys_are_contended_hot_and_tail() {
        let (_, ops) = generate(7, 10_000, u32::MAX);
        let mut per_key: BTreeMap<i64, usize> = BTreeMap::new();
        for op in &ops {
            let Some(Key::Int(k)) = op.key else { panic!("integer keys") };
            *per_key.entry(k).or_default() += 1;
        }
        assert_eq!(per_key.len(), HOT_KEYS + TAIL_KEYS, "{per_key:?}");
        let hot: usize = (0..HOT_KEYS as i64).map(|k| per_key[&k]).sum();
        assert!((7_700..8_300).contains(&hot), "hot share {hot} of 10000");
        let tail_min = per_key.iter().filter(|(k, _)| **k >= HOT_KEYS as i64).map(|(_, n)| *n).min().unwrap();
        assert!(tail_min > 50, "every tail key gets operations: {per_key:?}");

        let (w, ops) = generate(7, 10_000, 100);
        let mut per_key: BTreeMap<i64, u32> = BTreeMap::new();
        let mut retired = BTreeSet::new();
        for op in &ops {
            let Some(Key::Int(k)) = op.key else { panic!() };
            *per_key.entry(k).or_default() += 1;
        }
        assert!(per_key.values().all(|&n| n <= 100), "budget: {per_key:?}");
        for (&k, &n) in &per_key {
            if n == 100 {
                retired.insert(k);
            }
        }
        assert!(retired.len() >= 60, "hot keys rotate: {} retired", retired.len());
        // The final reads cover every key used, normal reads first, then the local ones.
        let finals = w.final_reads();
        let used = per_key.len();
        assert_eq!(finals.len(), 2 * used);
        assert!(finals[..used].iter().all(|r| r.f == "read" && !r.local));
        assert!(finals[used..].iter().all(|r| r.f == "read" && r.local));
        let final_keys: BTreeSet<i64> = finals[..used].iter().map(|r| match r.key { Some(Key::Int(k)) => k, _ => -1 }).collect();
        assert_eq!(final_keys, per_key.keys().copied().collect::<BTreeSet<_>>());
    }

    #[test]
    fn zero_budget_is_rejected() {
        let opts = WorkloadOptions { max_ops_per_key: 0, ..Default::default() };
        assert!(Append::new(1, &opts).is_err());
    }
}
