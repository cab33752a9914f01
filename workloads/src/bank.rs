//! The bank workload: transfers between accounts and reads of every balance.
//!
//! Accounts `0..accounts` start with `initial_balance` each; a transfer moves 1..=5 from one
//! account to a different one. Whatever faults happen, every read must see the same total, and
//! with no overdrafts allowed no balance goes negative: the `bank` checker's invariants, which
//! it gets through [`Workload::checker_params`].

use crate::{rng, OpSpec, Workload, WorkloadError, WorkloadOptions};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// Share of reads, in percent.
const READ_PERCENT: u32 = 30;

pub struct Bank {
    rng: ChaCha8Rng,
    accounts: u32,
    initial_balance: i64,
}

impl Bank {
    pub fn new(seed: u64, opts: &WorkloadOptions) -> Result<Bank, WorkloadError> {
        if opts.accounts < 2 {
            return Err(WorkloadError::InvalidOption(format!(
                "bank needs at least 2 accounts, got {}",
                opts.accounts
            )));
        }
        if opts.initial_balance < 0 {
            return Err(WorkloadError::InvalidOption(format!(
                "initial balance must not be negative, got {}",
                opts.initial_balance
            )));
        }
        Ok(Bank { rng: rng(seed, 4), accounts: opts.accounts, initial_balance: opts.initial_balance })
    }
}

impl Workload for Bank {
    fn name(&self) -> &'static str {
        "bank"
    }

    fn next_op(&mut self, _process: u64) -> OpSpec {
        if self.rng.gen_range(0..100) < READ_PERCENT {
            return OpSpec::read(None);
        }
        let from = self.rng.gen_range(0..self.accounts);
        // Draw `to` from the other accounts: skip over `from`.
        let mut to = self.rng.gen_range(0..self.accounts - 1);
        if to >= from {
            to += 1;
        }
        let amount = self.rng.gen_range(1..=5);
        OpSpec::new("transfer", None, json!({"from": from, "to": to, "amount": amount}))
    }

    fn checker_params(&self) -> serde_json::Map<String, Value> {
        let mut params = serde_json::Map::new();
        params.insert("total".into(), json!(self.accounts as i64 * self.initial_balance));
        params.insert("accounts".into(), json!((0..self.accounts).collect::<Vec<_>>()));
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfers_are_between_distinct_accounts() {
        let opts = WorkloadOptions { accounts: 3, ..Default::default() };
        let mut w = Bank::new(2, &opts).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for p in 0..3000 {
            let op = w.next_op(p);
            if op.f == "read" {
                continue;
            }
            assert_eq!(op.f, "transfer");
            let (from, to, amount) = (op.value["from"].as_u64().unwrap(), op.value["to"].as_u64().unwrap(), op.value["amount"].as_i64().unwrap());
            assert!(from < 3 && to < 3 && from != to && (1..=5).contains(&amount));
            seen.insert((from, to));
        }
        assert_eq!(seen.len(), 6, "every ordered pair of distinct accounts occurs");
    }

    #[test]
    fn params_and_bad_options() {
        let w = Bank::new(1, &WorkloadOptions::default()).unwrap();
        let p = w.checker_params();
        assert_eq!(p["total"], json!(800));
        assert_eq!(p["accounts"], json!([0, 1, 2, 3, 4, 5, 6, 7]));
        let one = WorkloadOptions { accounts: 1, ..Default::default() };
        assert!(Bank::new(1, &one).is_err());
        let neg = WorkloadOptions { initial_balance: -1, ..Default::default() };
        assert!(Bank::new(1, &neg).is_err());
    }
}
