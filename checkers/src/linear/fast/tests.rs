//! Unit tests of the fast path: each contradiction it can report, on a small hand-made history
//! whose verdict is certain, next to a near twin of the opposite verdict; where it refuses to
//! decide; and the event at which a violation is located.

use super::*;
use crate::history::{History, Op, OpType};
use serde_json::json;

/// A history from `(process, type, f, value)` events, in order; no key.
fn history(events: &[(u64, &str, &str, Value)]) -> Vec<Call> {
    let ops = events
        .iter()
        .map(|(p, t, f, v)| {
            let t = match *t {
                "invoke" => OpType::Invoke,
                "ok" => OpType::Ok,
                "fail" => OpType::Fail,
                _ => OpType::Info,
            };
            Op::new(*p, t, f, v.clone())
        })
        .collect();
    History::from_ops(ops).calls().unwrap()
}

fn decide_on(kind: Kind, calls: &[Call]) -> Decision {
    let machine = Machine::new(kind);
    let members: Vec<usize> = (0..calls.len()).collect();
    let part = Partition::build(calls, &members, &machine).unwrap();
    let d = decide(calls, &part, &machine);
    if matches!(d, Decision::Linearizable) {
        assert_eq!(verify_witness(calls, &part, &machine), Ok(true), "the witness of a valid key must replay");
    }
    d
}

fn violation(kind: Kind, calls: &[Call]) -> Finding {
    match decide_on(kind, calls) {
        Decision::Violation(f) => f,
        other => panic!("expected a violation, got {other:?}"),
    }
}

fn linearizable(kind: Kind, calls: &[Call]) {
    let d = decide_on(kind, calls);
    assert!(matches!(d, Decision::Linearizable), "expected linearizable, got {d:?}");
}

fn w(p: u64, t: &'static str, v: i64) -> (u64, &'static str, &'static str, Value) {
    (p, t, "write", json!(v))
}

fn r(p: u64, t: &'static str, v: Value) -> (u64, &'static str, &'static str, Value) {
    (p, t, "read", v)
}

#[test]
fn stale_read_is_a_write_inside_the_span_of_the_older_value() {
    // write 1; write 2; read 1 (events 4..5): 2 must take effect inside 1's span.
    let calls = history(&[w(0, "invoke", 1), w(0, "ok", 1), w(1, "invoke", 2), w(1, "ok", 2), r(2, "invoke", json!(null)), r(2, "ok", json!(1))]);
    let f = violation(Kind::Register, &calls);
    assert!(matches!(f.why, Why::Inside { .. }), "{:?}", f.why);
    assert_eq!((f.at, f.culprit), (5, 2), "located at the stale read's completion");
    assert_eq!(f.prefix.len(), 2, "both writes linearize before event 5");
    // The twin: the read overlaps the second write, so it may precede it.
    let calls = history(&[w(0, "invoke", 1), w(0, "ok", 1), w(1, "invoke", 2), r(2, "invoke", json!(null)), w(1, "ok", 2), r(2, "ok", json!(1))]);
    linearizable(Kind::Register, &calls);
}

#[test]
fn overlapping_spans_contradict() {
    // 1 must hold over events 1..5 (write 1 done at 1, a read of 1 invoked at 5), 2 over 3..4.
    let calls = history(&[
        w(0, "invoke", 1),
        w(0, "ok", 1),
        w(1, "invoke", 2),
        w(1, "ok", 2),
        r(2, "invoke", json!(null)),
        r(3, "invoke", json!(null)),
        r(3, "ok", json!(1)),
        r(2, "ok", json!(2)),
    ]);
    let f = violation(Kind::Register, &calls);
    assert!(matches!(f.why, Why::Overlap { .. } | Why::Inside { .. }), "{:?}", f.why);
    assert_eq!(f.at, 6, "certain once the read of 1 completes");
}

#[test]
fn read_before_its_write_began_has_no_producer_at_that_point() {
    let calls = history(&[r(0, "invoke", json!(null)), r(0, "ok", json!(7)), w(1, "invoke", 7), w(1, "ok", 7)]);
    let f = violation(Kind::Register, &calls);
    assert_eq!(f.why, Why::NoProducer { op: 0 });
    assert_eq!(f.at, 1);
    // Reading null after a write completed is the same mistake about the initial chain.
    let calls = history(&[w(1, "invoke", 7), w(1, "ok", 7), r(0, "invoke", json!(null)), r(0, "ok", json!(null))]);
    assert!(matches!(violation(Kind::Register, &calls).why, Why::Inside { .. } | Why::Overlap { .. } | Why::Order { .. }));
    let calls = history(&[w(1, "invoke", 7), r(0, "invoke", json!(null)), r(0, "ok", json!(null)), w(1, "ok", 7)]);
    linearizable(Kind::Register, &calls);
}

#[test]
fn unknown_writes_take_effect_only_when_observed() {
    // An info write nobody reads is dropped; one that is read took effect, even much later.
    let calls = history(&[w(0, "invoke", 1), w(0, "ok", 1), w(1, "invoke", 2), w(1, "info", 2), r(2, "invoke", json!(null)), r(2, "ok", json!(1))]);
    linearizable(Kind::Register, &calls);
    let calls = history(&[
        w(0, "invoke", 1),
        w(0, "ok", 1),
        w(1, "invoke", 2),
        w(1, "info", 2),
        r(2, "invoke", json!(null)),
        r(2, "ok", json!(2)),
        r(2, "invoke", json!(null)),
        r(2, "ok", json!(2)),
    ]);
    linearizable(Kind::Register, &calls);
    // Once 2 was read, 1 cannot come back.
    let mut events = calls_events_then_read_1();
    let calls = history(&events);
    assert!(matches!(decide_on(Kind::Register, &calls), Decision::Violation(_)));
    events.truncate(events.len() - 2);
    linearizable(Kind::Register, &history(&events));
}

fn calls_events_then_read_1() -> Vec<(u64, &'static str, &'static str, Value)> {
    vec![
        w(0, "invoke", 1),
        w(0, "ok", 1),
        w(1, "invoke", 2),
        w(1, "info", 2),
        r(2, "invoke", json!(null)),
        r(2, "ok", json!(2)),
        r(2, "invoke", json!(null)),
        r(2, "ok", json!(1)),
    ]
}

fn cas(p: u64, t: &'static str, from: i64, to: i64) -> (u64, &'static str, &'static str, Value) {
    (p, t, "cas", json!([from, to]))
}

#[test]
fn cas_chains() {
    // write 1, cas 1→2, cas 2→3, read 3: one chain.
    let calls = history(&[
        w(0, "invoke", 1),
        w(0, "ok", 1),
        cas(1, "invoke", 1, 2),
        cas(2, "invoke", 2, 3),
        cas(2, "ok", 2, 3),
        cas(1, "ok", 1, 2),
        r(3, "invoke", json!(null)),
        r(3, "ok", json!(3)),
    ]);
    linearizable(Kind::CasRegister, &calls);
    // Two cas from 1 cannot both succeed.
    let calls = history(&[w(0, "invoke", 1), w(0, "ok", 1), cas(1, "invoke", 1, 2), cas(1, "ok", 1, 2), cas(2, "invoke", 1, 3), cas(2, "ok", 1, 3)]);
    assert!(matches!(violation(Kind::CasRegister, &calls).why, Why::TwoReplace { .. }));
    // A cas on the missing key fails.
    let calls = history(&[(0, "invoke", "cas", json!([null, 1])), (0, "ok", "cas", json!([null, 1]))]);
    assert_eq!(violation(Kind::CasRegister, &calls).why, Why::CasOnMissing { op: 0 });
    // Two cas feeding each other, started by no write.
    let calls = history(&[cas(0, "invoke", 1, 2), cas(1, "invoke", 2, 1), cas(0, "ok", 1, 2), cas(1, "ok", 2, 1)]);
    assert!(matches!(violation(Kind::CasRegister, &calls).why, Why::Unreachable { .. }));
    // The cas replaced 1 before this read of 1 began.
    let calls = history(&[w(0, "invoke", 1), w(0, "ok", 1), cas(1, "invoke", 1, 2), cas(1, "ok", 1, 2), r(2, "invoke", json!(null)), r(2, "ok", json!(1))]);
    let f = violation(Kind::CasRegister, &calls);
    assert!(matches!(f.why, Why::Order { relation: Relation::Replaces, .. }), "{:?}", f.why);
}

fn app(p: u64, t: &'static str, x: i64) -> (u64, &'static str, &'static str, Value) {
    (p, t, "append", json!(x))
}

#[test]
fn append_lists() {
    let ok = [app(0, "invoke", 1), app(1, "invoke", 2), app(0, "ok", 1), app(1, "ok", 2), r(2, "invoke", json!(null)), r(2, "ok", json!([2, 1]))];
    linearizable(Kind::Kv, &history(&ok));
    // 1 was acknowledged before 2 was invoked, so [2, 1] is out of real-time order.
    let calls = history(&[app(0, "invoke", 1), app(0, "ok", 1), app(1, "invoke", 2), app(1, "ok", 2), r(2, "invoke", json!(null)), r(2, "ok", json!([2, 1]))]);
    let f = violation(Kind::Kv, &calls);
    assert!(matches!(f.why, Why::Order { relation: Relation::ListOrder, .. }), "{:?}", f.why);
    // A read missing an append acknowledged before it began.
    let calls = history(&[app(0, "invoke", 1), app(0, "ok", 1), app(1, "invoke", 2), app(1, "ok", 2), r(2, "invoke", json!(null)), r(2, "ok", json!([1]))]);
    assert!(matches!(violation(Kind::Kv, &calls).why, Why::Order { relation: Relation::Lacks, .. }));
    // Two reads that are not prefixes of each other.
    let calls = history(&[
        app(0, "invoke", 1),
        app(1, "invoke", 2),
        r(2, "invoke", json!(null)),
        r(2, "ok", json!([1, 2])),
        r(3, "invoke", json!(null)),
        r(3, "ok", json!([2, 1])),
        app(0, "ok", 1),
        app(1, "ok", 2),
    ]);
    assert!(matches!(violation(Kind::Kv, &calls).why, Why::Disagree { .. }));
    // An unknown append observed took effect; `[]` is never a state.
    let calls = history(&[app(0, "invoke", 1), app(0, "info", 1), r(2, "invoke", json!(null)), r(2, "ok", json!([1]))]);
    linearizable(Kind::Kv, &calls);
    let calls = history(&[app(0, "invoke", 1), r(2, "invoke", json!(null)), r(2, "ok", json!([])), app(0, "ok", 1)]);
    assert_eq!(violation(Kind::Kv, &calls).why, Why::NoProducer { op: 1 });
}

fn add(p: u64, t: &'static str, x: i64) -> (u64, &'static str, &'static str, Value) {
    (p, t, "add", json!(x))
}

#[test]
fn sets() {
    let ok = [add(0, "invoke", 1), add(1, "invoke", 2), r(2, "invoke", json!(null)), r(2, "ok", json!([2])), add(0, "ok", 1), add(1, "ok", 2)];
    linearizable(Kind::Set, &history(&ok));
    // Two reads, each with an element the other lacks.
    let calls = history(&[
        add(0, "invoke", 1),
        add(1, "invoke", 2),
        r(2, "invoke", json!(null)),
        r(2, "ok", json!([1])),
        r(3, "invoke", json!(null)),
        r(3, "ok", json!([2])),
        add(0, "ok", 1),
        add(1, "ok", 2),
    ]);
    assert!(matches!(violation(Kind::Set, &calls).why, Why::Disagree { .. }));
    // A lost element: acknowledged before the read began.
    let calls = history(&[add(0, "invoke", 1), add(0, "ok", 1), r(2, "invoke", json!(null)), r(2, "ok", json!([]))]);
    assert!(matches!(violation(Kind::Set, &calls).why, Why::Order { relation: Relation::Lacks, .. }));
    // Reads going back: [1] after [1, 2] completed.
    let calls = history(&[
        add(0, "invoke", 1),
        add(0, "ok", 1),
        add(1, "invoke", 2),
        r(2, "invoke", json!(null)),
        r(2, "ok", json!([1, 2])),
        r(3, "invoke", json!(null)),
        r(3, "ok", json!([1])),
        add(1, "ok", 2),
    ]);
    assert!(matches!(violation(Kind::Set, &calls).why, Why::Order { relation: Relation::Grows, .. } | Why::Order { .. }));
}

#[test]
fn ambiguous_keys_are_left_to_the_search() {
    let inapplicable = |kind, calls: &[Call]| match decide_on(kind, calls) {
        Decision::Inapplicable(why) => why,
        other => panic!("expected the fast path to decline, got {other:?}"),
    };
    let twice = history(&[w(0, "invoke", 1), w(0, "ok", 1), w(1, "invoke", 1), w(1, "ok", 1)]);
    assert_eq!(inapplicable(Kind::Register, &twice), "a value is written more than once");
    let null = history(&[(0, "invoke", "write", json!(null)), (0, "ok", "write", json!(null))]);
    assert!(inapplicable(Kind::Register, &null).contains("null"));
    let strings = history(&[(0, "invoke", "append", json!("a")), (0, "ok", "append", json!("a"))]);
    assert!(inapplicable(Kind::Kv, &strings).contains("string"));
    let counter = history(&[(0, "invoke", "add", json!(1)), (0, "ok", "add", json!(1))]);
    assert!(inapplicable(Kind::Counter, &counter).contains("counter"));
    // A failed write does not count as a second writer, nor does an unknown one nobody reads
    // (the pruning before the search drops it).
    let unobserved = history(&[w(0, "invoke", 1), w(0, "ok", 1), w(1, "invoke", 1), w(1, "info", 1)]);
    linearizable(Kind::Register, &unobserved);
    let failed = history(&[w(0, "invoke", 1), w(0, "fail", 1), w(1, "invoke", 1), w(1, "ok", 1)]);
    linearizable(Kind::Register, &failed);
}
