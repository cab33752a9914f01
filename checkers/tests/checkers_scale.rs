//! The set and counter checkers on histories the size of a long run, timed: they are linear or
//! near-linear, so they need no budget, and this test keeps it that way.

use faultline_checkers::history::{History, Op, OpType};
use faultline_checkers::{counter, set, Validity};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// `adds` sequential acknowledged adds, with a read of the whole set after every
/// `adds / reads` of them; `drop` (if any) vanishes from the reads in the second half.
fn set_history(adds: u64, reads: u64, drop: Option<u64>) -> History {
    let mut ops = Vec::new();
    let every = (adds / reads).max(1);
    for e in 0..adds {
        ops.push(Op::new(0, OpType::Invoke, "add", json!(e)));
        ops.push(Op::new(0, OpType::Ok, "add", json!(e)));
        if e % every == 0 {
            let seen: Vec<u64> = (0..=e).filter(|x| !(Some(*x) == drop && e > adds / 2)).collect();
            ops.push(Op::new(1, OpType::Invoke, "read", Value::Null));
            ops.push(Op::new(1, OpType::Ok, "read", json!(seen)));
        }
    }
    History::from_ops(ops)
}

#[test]
fn set_checker_scales() {
    let h = set_history(3000, 1500, None);
    let started = Instant::now();
    let r = set::check(&h);
    let took = started.elapsed();
    eprintln!("set: {} events, {} element occurrences in reads: {took:?}", h.len(), 3000 * 1500 / 2);
    assert_eq!(r.valid, Validity::Valid);
    assert!(took < Duration::from_secs(20), "{took:?}");
    let r = set::check(&set_history(3000, 1500, Some(17)));
    assert_eq!((r.valid, r.details["lost_count"].clone()), (Validity::Invalid, json!(1)));
}

#[test]
fn counter_checker_scales() {
    let mut ops = Vec::new();
    for i in 0..100_000u64 {
        let p = i % 10;
        ops.push(Op::new(p, OpType::Invoke, "add", json!(1)));
        ops.push(Op::new(p, OpType::Ok, "add", json!(1)));
        ops.push(Op::new(p, OpType::Invoke, "read", Value::Null));
        ops.push(Op::new(p, OpType::Ok, "read", json!(i + 1)));
    }
    let h = History::from_ops(ops);
    let started = Instant::now();
    let r = counter::check(&h);
    let took = started.elapsed();
    eprintln!("counter: {} events: {took:?}", h.len());
    assert_eq!(r.valid, Validity::Valid);
    assert!(took < Duration::from_secs(10), "{took:?}");
}

