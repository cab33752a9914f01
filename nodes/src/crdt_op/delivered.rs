//! A compact record of which sequence numbers of one origin were delivered: everything up to a
//! contiguous prefix, plus the few delivered out of order beyond it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivered {
    /// Every sequence number in `1..=prefix` was delivered.
    pub prefix: u64,
    /// Delivered numbers above `prefix + 1` (never containing `prefix + 1`).
    pub beyond: BTreeSet<u64>,
}

impl Delivered {
    pub fn contains(&self, seq: u64) -> bool {
        seq <= self.prefix || self.beyond.contains(&seq)
    }

    /// Marks `seq` delivered; whether it was new.
    pub fn insert(&mut self, seq: u64) -> bool {
        if self.contains(seq) {
            return false;
        }
        self.beyond.insert(seq);
        while self.beyond.remove(&(self.prefix + 1)) {
            self.prefix += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_delivery_collapses_into_the_prefix() {
        let mut d = Delivered::default();
        assert!(d.insert(3));
        assert!(d.insert(1));
        assert!(!d.insert(3));
        assert_eq!((d.prefix, d.beyond.len()), (1, 1));
        assert!(d.insert(2));
        assert_eq!((d.prefix, d.beyond.len()), (3, 0));
        assert!(!d.insert(2) && d.contains(3) && !d.contains(4));
    }
}
