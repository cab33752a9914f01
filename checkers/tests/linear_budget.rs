//! Budgets: a search that cannot finish answers unknown with the reason, quickly, instead of
//! hanging or exhausting memory.

use faultline_checkers::history::{History, Op, OpType};
use faultline_checkers::linear;
use faultline_checkers::{CheckOptions, Validity};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// `n` mutually concurrent counter increments of distinct powers of two, then a read of an
/// impossible sum: every subset of the increments (each a distinct state) must be explored
/// before the answer.
fn pathological(n: u64) -> History {
    let mut ops = Vec::new();
    for p in 0..n {
        ops.push(Op::new(p, OpType::Invoke, "add", json!(1i64 << p)));
    }
    for p in 0..n {
        ops.push(Op::new(p, OpType::Ok, "add", json!(1i64 << p)));
    }
    ops.push(Op::new(n, OpType::Invoke, "read", Value::Null));
    ops.push(Op::new(n, OpType::Ok, "read", json!(-1)));
    History::from_ops(ops)
}

#[test]
fn tiny_time_budget_gives_unknown_not_a_hang() {
    let opts = CheckOptions { budget: Duration::from_millis(200), threads: 1, ..CheckOptions::default() };
    let started = Instant::now();
    let r = linear::check(&pathological(40), "counter", &opts);
    assert_eq!(r.valid, Validity::Unknown, "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let error = r.details["error"].as_str().unwrap();
    assert!(error.contains("time budget"), "{error}");
    assert_eq!(r.details["undecided_keys"], json!([null]));
}

#[test]
fn tiny_memory_budget_gives_unknown() {
    let opts = CheckOptions { budget: Duration::from_secs(60), memory_limit_bytes: 4 << 20, threads: 1 };
    let started = Instant::now();
    let r = linear::check(&pathological(40), "counter", &opts);
    assert_eq!(r.valid, Validity::Unknown, "{r:?}");
    assert!(r.details["error"].as_str().unwrap().contains("memory"), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
}

#[test]
fn a_small_instance_of_the_same_shape_is_decided() {
    // 10 writes: 2^10 subsets, well within budget; the read of -1 is impossible.
    let r = linear::check(&pathological(10), "counter", &CheckOptions::default());
    assert_eq!(r.valid, Validity::Invalid, "{r:?}");
}

#[test]
fn unknown_model_and_bad_values_answer_unknown_with_a_reason() {
    let h = pathological(2);
    let r = linear::check(&h, "no-such-model", &CheckOptions::default());
    assert_eq!(r.valid, Validity::Unknown);
    let h = History::from_ops(vec![Op::new(0, OpType::Invoke, "cas", json!(3)), Op::new(0, OpType::Ok, "cas", json!(3))]);
    let r = linear::check(&h, "cas-register", &CheckOptions::default());
    assert_eq!(r.valid, Validity::Unknown);
    assert!(r.details["error"].as_str().unwrap().contains("[from, to]"), "{r:?}");
}
