//! The bank checker: transfers move money between accounts, so every read of all balances
//! (a snapshot) must sum to the same total, hold no negative balance (unless the test allows
//! overdrafts), and list exactly the bank's accounts.
//!
//! A read's value is an object `{"0": balance, "1": ..., ...}` (account ids as strings, see
//! docs/design.md). The expected total comes from the `total` parameter; without it, the sum
//! most reads agree on is taken (and reported as inferred), since a correct system's reads
//! all agree and a broken one rarely breaks most of them the same way.
//!
//! Balances are exact integers ([`crate::value::exact_int`]) summed as `i128`s with overflow
//! checks. A balance that is a float too large to be exact, or a sum beyond what an `i128`
//! holds, makes the answer unknown with the reason: a rounded or wrapped sum could hide a
//! broken total or invent one. A balance with a fraction, or a string, is a malformed read.

use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};

use crate::history::History;
use crate::registry::support::{self, big, call_json, int, EXAMPLES};
use crate::value::{canonical_text, exact_int, NotInt};
use crate::verdict::{CheckResult, Validity};

/// The bank's invariants, from the checker spec's `params`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params {
    /// The sum every read must have; `None` = the most common sum.
    pub total: Option<i128>,
    /// The account ids every read must list, exactly; `None` = not checked.
    pub accounts: Option<BTreeSet<String>>,
    pub allow_negative: bool,
}

impl Params {
    /// Reads `total` (integer), `accounts` (list of ids, or a count n meaning `0..n`) and
    /// `allow_negative` (bool); a known parameter of the wrong type is an error.
    pub fn from_json(params: &Map<String, Value>) -> Result<Params, String> {
        let total = match params.get("total") {
            None | Some(Value::Null) => None,
            Some(v) => Some(int(v).ok_or_else(|| format!("bank: `total` must be an integer, got {v}"))?),
        };
        let accounts = match params.get("accounts") {
            None | Some(Value::Null) => None,
            Some(Value::Array(ids)) => Some(ids.iter().map(account_id).collect::<Result<BTreeSet<_>, _>>()?),
            Some(v) => match int(v) {
                Some(n) if (0..=1_000_000).contains(&n) => Some((0..n).map(|i| i.to_string()).collect()),
                _ => return Err(format!("bank: `accounts` must be a list of ids or a count, got {v}")),
            },
        };
        let allow_negative = match params.get("allow_negative") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => return Err(format!("bank: `allow_negative` must be true or false, got {v}")),
        };
        Ok(Params { total, accounts, allow_negative })
    }
}

fn account_id(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        // By value: an id written `1.0` is account "1".
        Value::Number(_) => Ok(canonical_text(v)),
        other => Err(format!("bank: an account id must be a string or a number, got {other}")),
    }
}

/// A read's balances and their sum.
struct Snapshot {
    balances: Vec<(String, i128)>,
    sum: i128,
}

/// A read's snapshot, or (inner `Err`) why it is not a read of balances, a violation. The outer
/// `Err` is why it cannot be judged at all: a balance that is not an exact integer although a
/// number with no fraction, or a sum beyond an `i128`.
fn snapshot(v: &Value) -> Result<Result<Snapshot, String>, String> {
    let Value::Object(m) = v else { return Ok(Err(format!("not an object of balances: {v}"))) };
    let mut balances = Vec::with_capacity(m.len());
    let mut sum: i128 = 0;
    for (k, b) in m {
        let x = match exact_int(b) {
            Ok(x) => x,
            Err(NotInt::Inexact) => return Err(format!("balance of account {k} is {b}, {}", NotInt::Inexact.describe())),
            Err(_) => return Ok(Err(format!("balance of account {k} is not an integer: {b}"))),
        };
        sum = sum.checked_add(x).ok_or_else(|| format!("the balances of {v} sum beyond what an i128 holds"))?;
        balances.push((k.clone(), x));
    }
    Ok(Ok(Snapshot { balances, sum }))
}

/// Checks every ok read of the balances; see the module docs.
pub fn check(history: &History, params: &Params) -> CheckResult {
    let calls = match support::calls(history) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut reads = Vec::new();
    for c in calls.iter().filter(|c| &*c.f == "read") {
        let Some(v) = c.output() else { continue };
        match snapshot(v) {
            Ok(snap) => reads.push((c, snap)),
            Err(why) => return CheckResult::unknown(format!("read at event {}: {why}", c.invoke_index + 1)),
        }
    }
    if reads.is_empty() {
        return CheckResult::unknown("no ok reads of the balances to check");
    }
    let total = params.total.unwrap_or_else(|| most_common_sum(reads.iter().filter_map(|(_, b)| b.as_ref().ok())));
    let (mut bad, mut counts) = (Vec::new(), [0u64; 4]);
    let mut bad_count = 0u64;
    for (c, b) in &reads {
        let problems = judge(b, total, params);
        if problems.is_empty() {
            continue;
        }
        for (i, kind) in ["wrong_total", "negative", "wrong_accounts", "malformed"].iter().enumerate() {
            counts[i] += problems.iter().any(|p| p["kind"] == *kind) as u64;
        }
        bad_count += 1;
        if bad.len() < EXAMPLES {
            bad.push(json!({"read": call_json(c), "problems": problems}));
        }
    }
    let valid = if bad_count == 0 { Validity::Valid } else { Validity::Invalid };
    CheckResult::new(valid)
        .with("reads", json!(reads.len()))
        .with("total", big(total))
        .with("total_inferred", json!(params.total.is_none()))
        .with("bad_count", json!(bad_count))
        .with("wrong_total_count", json!(counts[0]))
        .with("negative_count", json!(counts[1]))
        .with("wrong_accounts_count", json!(counts[2]))
        .with("malformed_count", json!(counts[3]))
        .with("bad_reads", Value::Array(bad))
}

fn most_common_sum<'a>(reads: impl Iterator<Item = &'a Snapshot>) -> i128 {
    let mut freq: HashMap<i128, usize> = HashMap::new();
    for r in reads {
        *freq.entry(r.sum).or_default() += 1;
    }
    // Ties go to the larger sum, so the answer does not depend on hash order.
    freq.into_iter().max_by_key(|(s, n)| (*n, *s)).map(|(s, _)| s).unwrap_or(0)
}

fn judge(snap: &Result<Snapshot, String>, total: i128, params: &Params) -> Vec<Value> {
    let snap = match snap {
        Ok(s) => s,
        Err(e) => return vec![json!({"kind": "malformed", "message": e})],
    };
    let b = &snap.balances;
    let mut problems = Vec::new();
    if snap.sum != total {
        problems.push(json!({"kind": "wrong_total", "sum": big(snap.sum), "expected": big(total)}));
    }
    if !params.allow_negative {
        let negative: Vec<Value> = b.iter().filter(|(_, x)| *x < 0).map(|(k, x)| json!({"account": k, "balance": big(*x)})).collect();
        if !negative.is_empty() {
            problems.push(json!({"kind": "negative", "accounts": negative}));
        }
    }
    if let Some(expected) = &params.accounts {
        let got: BTreeSet<String> = b.iter().map(|(k, _)| k.clone()).collect();
        if &got != expected {
            let missing: Vec<&String> = expected.difference(&got).collect();
            let extra: Vec<&String> = got.difference(expected).collect();
            problems.push(json!({"kind": "wrong_accounts", "missing": missing, "extra": extra}));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpType::*};

    fn reads(values: &[Value]) -> History {
        History::from_ops(values.iter().flat_map(|v| [Op::new(0, Invoke, "read", Value::Null), Op::new(0, Ok, "read", v.clone())]).collect())
    }

    fn params(v: Value) -> Params {
        Params::from_json(v.as_object().unwrap()).unwrap()
    }

    #[test]
    fn sums_and_negatives() {
        let h = reads(&[json!({"0": 5, "1": 5}), json!({"0": 12, "1": -2})]);
        let r = check(&h, &params(json!({"total": 10})));
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["negative_count"], json!(1));
        assert_eq!(check(&h, &params(json!({"total": 10, "allow_negative": true}))).valid, Validity::Valid);
        let h = reads(&[json!({"0": 5, "1": 5}), json!({"0": 6, "1": 5}), json!({"0": 4, "1": 6})]);
        let r = check(&h, &Params::default());
        assert_eq!((r.valid, r.details["total"].clone(), r.details["bad_count"].clone()), (Validity::Invalid, json!(10), json!(1)));
    }

    #[test]
    fn accounts_must_match() {
        let h = reads(&[json!({"0": 5, "2": 5})]);
        let r = check(&h, &params(json!({"total": 10, "accounts": 2})));
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["bad_reads"][0]["problems"][0]["missing"], json!(["1"]));
        assert!(Params::from_json(json!({"total": "x"}).as_object().unwrap()).is_err());
    }
}
