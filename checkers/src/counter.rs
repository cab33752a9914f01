//! The counter checker (Jepsen's `counter`): every read of a counter lies within the bounds its
//! concurrent increments allow.
//!
//! A read returns the sum of the adds that took effect before it. Some adds certainly did: those
//! acknowledged (`ok`) before the read was invoked. Some adds might have: those invoked before
//! the read completed and not failed (still running, acknowledged later, or of unknown outcome).
//! So a read's value is the certain sum plus the sum of some subset of the uncertain adds: at
//! least the certain sum plus every uncertain *negative* delta, at most the certain sum plus every
//! uncertain *positive* delta. With only positive deltas this is Jepsen's [lower, upper] window.
//!
//! Reads the harness makes after the run (`final`) are checked against every add: after
//! quiescence every acknowledged add must be in, and each unknown one may or may not be.
//!
//! Keys are independent counters (unkeyed operations form one counter). A read of `null`
//! (a missing key) counts as 0. The check is O(n log n): bounds come from prefix sums over the
//! adds sorted by invoke and by completion position, so it needs no budget.
//!
//! Arithmetic is exact: deltas and reads are exact integers ([`crate::value::exact_int`]), sums
//! are `i128`s added with overflow checks. A delta that is not an exact integer, a read that is
//! a float too large to be exact, or sums beyond what an `i128` holds make the answer unknown
//! with the reason: a wrapped or rounded sum could turn either verdict into the wrong one.

use serde_json::{json, Value};

use crate::history::{Call, History, Outcome};
use crate::registry::support::{self, big, call_json};
use crate::value::{exact_int, NotInt};
use crate::verdict::{CheckResult, Validity};

/// Checks every counter of the history; see the module docs.
pub fn check(history: &History) -> CheckResult {
    let calls = match support::calls(history) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let by_key = support::by_key(&calls, support::is_add_or_read);
    let mut tally = Tally::default();
    for calls in by_key.values() {
        if let Err(reason) = check_key(calls, &mut tally) {
            return CheckResult::unknown(reason);
        }
    }
    tally.into_result()
}

#[derive(Default)]
struct Tally {
    reads: u64,
    final_reads: u64,
    adds_ok: u64,
    adds_unknown: u64,
    adds_failed: u64,
    error_count: u64,
    errors: Vec<Value>,
}

impl Tally {
    fn into_result(self) -> CheckResult {
        let valid = if self.error_count > 0 {
            Validity::Invalid
        } else if self.reads == 0 {
            Validity::Unknown
        } else {
            Validity::Valid
        };
        let mut r = CheckResult::new(valid);
        if self.reads == 0 {
            r = r.with("error", json!("no ok reads to check"));
        }
        r.with("reads", json!(self.reads))
            .with("final_reads", json!(self.final_reads))
            .with("adds", json!({"ok": self.adds_ok, "unknown": self.adds_unknown, "fail": self.adds_failed}))
            .with("error_count", json!(self.error_count))
            .with("errors", Value::Array(self.errors))
    }

    fn error(&mut self, e: Value) {
        self.error_count += 1;
        if self.errors.len() < support::EXAMPLES {
            self.errors.push(e);
        }
    }
}

/// Prefix sums of the positive and negative deltas of adds sorted by one event position.
struct Sums {
    positions: Vec<u64>,
    pos: Vec<i128>,
    neg: Vec<i128>,
}

/// The reason given when sums leave the `i128` range.
const OVERFLOW: &str = "the counter's adds sum beyond what an i128 holds, so the bounds cannot be computed exactly";

impl Sums {
    fn new(mut items: Vec<(u64, i128)>) -> Result<Sums, String> {
        items.sort_unstable_by_key(|(p, _)| *p);
        let (mut pos, mut neg) = (vec![0i128], vec![0i128]);
        for (_, d) in &items {
            let p = pos[pos.len() - 1].checked_add((*d).max(0)).ok_or(OVERFLOW)?;
            let n = neg[neg.len() - 1].checked_add((*d).min(0)).ok_or(OVERFLOW)?;
            pos.push(p);
            neg.push(n);
        }
        Ok(Sums { positions: items.iter().map(|(p, _)| *p).collect(), pos, neg })
    }

    /// (positive sum, negative sum) of the adds at positions strictly before `t`.
    fn before(&self, t: u64) -> (i128, i128) {
        let n = self.positions.partition_point(|p| *p < t);
        (self.pos[n], self.neg[n])
    }
}

/// The certain adds (by completion position) and the possible ones (by invoke position).
fn adds(calls: &[&Call], tally: &mut Tally) -> Result<(Sums, Sums), String> {
    let mut certain = Vec::new();
    let mut possible = Vec::new();
    for c in calls.iter().filter(|c| &*c.f == "add") {
        if c.outcome == Outcome::Fail {
            tally.adds_failed += 1;
            continue;
        }
        let d = support::add_delta(c)?;
        possible.push((c.invoke_index, d));
        match c.complete_index {
            Some(done) if c.is_ok() => {
                tally.adds_ok += 1;
                certain.push((done, d));
            }
            _ => tally.adds_unknown += 1,
        }
    }
    Ok((Sums::new(certain)?, Sums::new(possible)?))
}

fn check_key(calls: &[&Call], tally: &mut Tally) -> Result<(), String> {
    let (certain, possible) = adds(calls, tally)?;
    for c in calls.iter().filter(|c| &*c.f == "read") {
        let Some(out) = c.output() else { continue };
        tally.reads += 1;
        tally.final_reads += c.final_read as u64;
        let (t1, t2) = if c.final_read { (u64::MAX, u64::MAX) } else { (c.invoke_index, c.complete_index.unwrap_or(u64::MAX)) };
        let (pos_c, neg_c) = certain.before(t1);
        let (pos_p, neg_p) = possible.before(t2);
        // A positive and a negative sum: their total cannot overflow.
        let (lower, upper) = (pos_c + neg_p, neg_c + pos_p);
        let value = if out.is_null() { Ok(0) } else { exact_int(out) };
        match value {
            Ok(v) if v >= lower && v <= upper => {}
            Ok(v) => tally.error(json!({"read": call_json(c), "value": big(v), "bounds": [big(lower), big(upper)]})),
            Err(NotInt::Inexact) => {
                return Err(format!("read at event {} returned {out}, {}", c.invoke_index + 1, NotInt::Inexact.describe()))
            }
            Err(_) => tally.error(json!({"read": call_json(c), "value": out, "problem": "not an integer"})),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpType::*};

    fn h(ops: Vec<Op>) -> History {
        History::from_ops(ops)
    }

    #[test]
    fn concurrent_add_widens_the_window() {
        let ops = vec![
            Op::new(0, Invoke, "add", json!(5)),
            Op::new(1, Invoke, "read", Value::Null),
            Op::new(1, Ok, "read", json!(5)),
            Op::new(1, Invoke, "read", Value::Null),
            Op::new(1, Ok, "read", json!(0)),
            Op::new(0, Ok, "add", json!(5)),
            Op::new(1, Invoke, "read", Value::Null),
            Op::new(1, Ok, "read", json!(5)),
        ];
        assert_eq!(check(&h(ops.clone())).valid, Validity::Valid);
        let mut bad = ops;
        bad[7].value = json!(0);
        let r = check(&h(bad));
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["errors"][0]["bounds"], json!([5, 5]));
    }

    #[test]
    fn negative_deltas_lower_the_floor() {
        let ops = vec![
            Op::new(0, Invoke, "add", json!(10)),
            Op::new(0, Ok, "add", json!(10)),
            Op::new(0, Invoke, "add", json!(-3)),
            Op::new(1, Invoke, "read", Value::Null),
            Op::new(1, Ok, "read", json!(7)),
            Op::new(0, Info, "add", json!(-3)),
        ];
        assert_eq!(check(&h(ops.clone())).valid, Validity::Valid);
        let mut bad = ops;
        bad[4].value = json!(6);
        assert_eq!(check(&h(bad)).valid, Validity::Invalid);
    }

    #[test]
    fn final_reads_need_every_acknowledged_add() {
        let mut read = Op::new(1, Invoke, "read", Value::Null);
        read.final_read = true;
        let mut done = Op::new(1, Ok, "read", json!(1));
        done.final_read = true;
        let ops = vec![Op::new(0, Invoke, "add", json!(2)), read, Op::new(0, Ok, "add", json!(2)), done];
        // Concurrent, so an ordinary read of 0 would pass; a final read must see the add.
        let r = check(&h(ops));
        assert_eq!(r.valid, Validity::Invalid, "{r:?}");
    }

    #[test]
    fn sums_beyond_i128_are_refused_not_wrapped() {
        // No JSON number reaches this (deltas are at most u64::MAX), so the sums are built
        // directly: a wrapped sum would have passed silently.
        assert!(Sums::new(vec![(0, i128::MAX), (1, 0)]).is_ok());
        assert_eq!(Sums::new(vec![(0, i128::MAX), (1, 1)]).err().as_deref(), Some(OVERFLOW));
        assert_eq!(Sums::new(vec![(0, i128::MIN), (1, -1)]).err().as_deref(), Some(OVERFLOW));
    }

    #[test]
    fn no_reads_is_unknown() {
        let ops = vec![Op::new(0, Invoke, "add", json!(1)), Op::new(0, Ok, "add", json!(1))];
        assert_eq!(check(&h(ops)).valid, Validity::Unknown);
    }
}
