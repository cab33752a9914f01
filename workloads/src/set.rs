//! The set workload: adds of unique, increasing integers and occasional reads of the whole set.
//!
//! Every element is added exactly once, so the `set` checker can tell a lost element (an
//! acknowledged add missing from every later read) from one still in flight.

use crate::{rng, OpSpec, Workload};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

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
}
