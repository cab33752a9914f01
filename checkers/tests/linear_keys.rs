//! How much is broken, deterministically: every key is checked after the first violation,
//! the counts of valid, invalid and unchecked keys are reported, and the anomaly reported first
//! is the one whose violation is earliest in the history, whatever the number of threads and
//! whichever key finished first.

#[path = "../benches/support/gen.rs"]
mod gen;

use faultline_checkers::history::{History, Op, OpType};
use faultline_checkers::linear;
use faultline_checkers::{CheckOptions, Key, Validity};
use serde_json::Value;
use std::time::Duration;

const KEYS: i64 = 12;
/// Keys made ambiguous (a value written twice), so the search decides them.
const AMBIGUOUS: [i64; 3] = [0, 1, 2];
/// Keys given a stale read, and where in the history (a fraction of the calls).
const STALE: [(i64, f64); 3] = [(1, 0.5), (5, 0.25), (8, 0.7)];

/// Changes an `ok` read of `key` at or after `at` to the value of a write that a later write
/// overwrote before the read began: a certain violation on that key alone.
fn stale_read(h: &mut History, key: i64, at: f64) -> usize {
    let calls = h.calls().unwrap();
    let of_key = |c: &&faultline_checkers::Call| c.key == Some(Key::Int(key)) && c.is_ok();
    let writes: Vec<_> = calls.iter().filter(of_key).filter(|c| &*c.f == "write").collect();
    let w1 = writes[0];
    let w2 = writes.iter().find(|w| w.invoke_index > w1.complete_index.unwrap()).unwrap();
    let start = (calls.len() as f64 * at) as usize;
    let read = calls[start..].iter().filter(of_key).find(|c| &*c.f == "read" && c.invoke_index > w2.complete_index.unwrap()).unwrap();
    let idx = read.complete_index.unwrap() as usize;
    h.ops[idx].value = w1.input.clone();
    idx
}

/// A 12-key cas-register history from the simulated store, with three keys made ambiguous
/// (an unknown write of a value already read, which may or may not take effect, so the verdict
/// is unchanged) and three stale reads.
fn history() -> History {
    let spec = gen::Spec { ops: 6000, clients: 10, keys: KEYS as usize, unknown: 0.01, model: "cas-register", seed: 11 };
    let mut h = gen::generate(&spec);
    for (key, at) in STALE {
        stale_read(&mut h, key, at);
    }
    for (n, key) in AMBIGUOUS.into_iter().enumerate() {
        let read = h.ops.iter().find(|o| o.key == Some(Key::Int(key)) && &*o.f == "read" && o.op_type == OpType::Ok && o.value.is_number());
        let v = read.unwrap().value.clone();
        h.ops.push(Op::new(1_000_000 + n as u64, OpType::Invoke, "write", v).with_key(Key::Int(key)));
    }
    History::from_ops(h.ops)
}

fn field(r: &faultline_checkers::CheckResult, name: &str) -> Value {
    r.details.get(name).cloned().unwrap_or(Value::Null)
}

#[test]
fn every_key_is_checked_and_the_earliest_violation_is_reported_first() {
    let h = history();
    let mut first: Option<(Value, Value)> = None;
    for run in 0..10 {
        let opts = CheckOptions { threads: 1 + run % 4, ..CheckOptions::default() };
        let r = linear::check(&h, "cas-register", &opts);
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!((field(&r, "keys_invalid"), field(&r, "keys_valid"), field(&r, "keys_unchecked")), (3.into(), 9.into(), 0.into()), "{r:?}");
        assert_eq!(field(&r, "paths"), serde_json::json!({"fast": 9, "search": 3}), "{r:?}");
        assert_eq!(field(&r, "fallbacks"), serde_json::json!({"a value is written more than once": 3}));
        let anomalies = field(&r, "anomalies");
        let events: Vec<u64> = anomalies.as_array().unwrap().iter().map(|a| a["violation_event"].as_u64().unwrap()).collect();
        assert!(events.windows(2).all(|w| w[0] <= w[1]), "anomalies in history order: {events:?}");
        let keys: Vec<i64> = anomalies.as_array().unwrap().iter().map(|a| a["key"].as_i64().unwrap()).collect();
        assert_eq!(keys, vec![5, 1, 8], "the stale reads by position: 25 %, 50 %, 70 %: {events:?} {}", anomalies[0]["explanation"]);
        let paths: Vec<&str> = anomalies.as_array().unwrap().iter().map(|a| a["path"].as_str().unwrap()).collect();
        assert_eq!(paths, vec!["fast", "search", "fast"]);
        match &first {
            None => first = Some((anomalies, field(&r, "invalid_keys"))),
            Some((a, k)) => {
                assert_eq!(a, &anomalies, "run {run}: the anomalies must not depend on the threads");
                assert_eq!(k, &field(&r, "invalid_keys"));
            }
        }
    }
}

#[test]
fn keys_left_when_the_budget_runs_out_are_counted_as_unchecked() {
    let h = history();
    let opts = CheckOptions { budget: Duration::ZERO, threads: 2, ..CheckOptions::default() };
    let r = linear::check(&h, "cas-register", &opts);
    assert_eq!(r.valid, Validity::Unknown, "{r:?}");
    assert_eq!(field(&r, "keys_unchecked"), Value::from(KEYS), "{r:?}");
    assert!(field(&r, "error").as_str().unwrap().contains("budget"), "{r:?}");
}
