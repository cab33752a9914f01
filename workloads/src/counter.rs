//! The counter workload: increments of 1..=5 and reads of the whole counter.
//!
//! Deltas are positive, so the counter only grows: a read below an earlier read, or outside the
//! bounds of the adds that may have happened, is a violation the `counter` checker can name.

use crate::{rng, OpSpec, Workload};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

/// Share of reads, in percent.
const READ_PERCENT: u32 = 20;

pub struct Counter {
    rng: ChaCha8Rng,
}

impl Counter {
    pub fn new(seed: u64) -> Counter {
        Counter { rng: rng(seed, 2) }
    }
}

impl Workload for Counter {
    fn name(&self) -> &'static str {
        "counter"
    }

    fn next_op(&mut self, _process: u64) -> OpSpec {
        if self.rng.gen_range(0..100) < READ_PERCENT {
            OpSpec::read(None)
        } else {
            OpSpec::new("add", None, json!(self.rng.gen_range(1..=5)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_are_small_positive_deltas() {
        let mut w = Counter::new(5);
        let ops: Vec<OpSpec> = (0..2000).map(|p| w.next_op(p)).collect();
        let adds: Vec<i64> = ops.iter().filter(|o| o.f == "add").map(|o| o.value.as_i64().unwrap()).collect();
        assert!(adds.iter().all(|d| (1..=5).contains(d)));
        assert!(ops.iter().all(|o| o.key.is_none() && !o.add_element));
        let reads = ops.len() - adds.len();
        assert!((250..550).contains(&reads), "reads {reads}");
        assert_eq!(w.final_reads(), vec![OpSpec::read(None)]);
    }
}
