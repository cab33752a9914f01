//! The last-writer-wins checker: the value a register converges to must be a write that no
//! acknowledged write of the same key followed in real time.
//!
//! An LWW register keeps, everywhere, the write with the greatest timestamp. When every stamp
//! comes from one clock that does not jump (the nodes of a run share one machine's clock, and no
//! clock fault is injected), a write `B` invoked after a write `A` was acknowledged carries a
//! greater stamp than `A`: `A`'s stamp was taken before its acknowledgement, `B`'s after its
//! invocation. So `A` can never be the final value once some acknowledged `B` was invoked after
//! `A`'s acknowledgement. That is exactly what a register that settles on the write that *arrived*
//! last, or that merges by anything but the stamp, gets wrong, and what convergence alone cannot
//! see (the replicas may well agree, on the wrong write).
//!
//! Per key, with `L` the acknowledged write invoked last, each node's last final read
//! (`"final": true`) must hold the value of a write that is `L` itself, or was not acknowledged
//! (its outcome unknown: it may have taken effect with any later stamp), or was acknowledged no
//! earlier than `slack_ms` before `L` was invoked. Stamps have a resolution of a millisecond and
//! ties are broken by node id, so two writes less than that apart may end either way: `slack_ms`
//! (default 2) absorbs it. A final read of `null` when some write of the key was acknowledged
//! lost every write; a value no write wrote was invented. Both are violations too.
//!
//! Not applicable when the history records a clock fault (any nemesis event whose name mentions
//! `clock`): skewed stamps let an older write win legitimately. The checker then answers valid
//! with `not_applicable` giving the reason, so a run with the clock nemesis is judged by its
//! other checkers alone rather than made unknown. Without
//! event times (`time` absent in the file) the event order stands in for real time, with no slack.
//! No final read of a register: unknown.

use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::history::{Call, History, Key, Outcome};
use crate::registry::support::{self, call_json, EXAMPLES};
use crate::value::same;
use crate::verdict::{CheckResult, Validity};

/// The default tolerance between one write's acknowledgement and the next write's invocation.
pub const DEFAULT_SLACK_MS: f64 = 2.0;

fn node_name(c: &Call) -> String {
    c.node.as_ref().map(|n| n.to_string()).unwrap_or_else(|| format!("process {}", c.process))
}

/// Whether the history records a fault of the clocks.
fn clock_fault(history: &History) -> Option<String> {
    history.ops.iter().find(|o| o.is_nemesis() && o.f.contains("clock")).map(|o| o.f.to_string())
}

/// Checks every key's final reads; `slack_ms` as in the module documentation.
pub fn check(history: &History, slack_ms: f64) -> CheckResult {
    if let Some(f) = clock_fault(history) {
        // Skipped, not unknown: with skewed clocks an LWW register keeps the greatest stamp,
        // which is its claim, and real time says nothing about that; the run's other checkers
        // (convergence) still judge it.
        return CheckResult::new(Validity::Valid).with(
            "not_applicable",
            json!(format!("the history records a clock fault (`{f}`): with skewed clocks an older write may carry the greater stamp, so real-time order says nothing")),
        );
    }
    let calls = match support::calls(history) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let timed = calls.iter().any(|c| c.invoke_time > 0);
    let slack_ns = if timed { (slack_ms.max(0.0) * 1e6) as u64 } else { 0 };
    // Whether `a`'s acknowledgement came strictly (by more than the slack) before `b`'s invocation.
    let precedes = |a: &Call, b: &Call| -> bool {
        if timed {
            a.complete_time.is_some_and(|t| t.saturating_add(slack_ns) < b.invoke_time)
        } else {
            a.complete_index.is_some_and(|i| i < b.invoke_index)
        }
    };
    let mut writes: BTreeMap<Option<Key>, Vec<&Call>> = BTreeMap::new();
    for c in calls.iter().filter(|c| &*c.f == "write" && c.outcome != Outcome::Fail) {
        writes.entry(c.key.clone()).or_default().push(c);
    }
    // key → node → its last successful final read.
    let mut finals: BTreeMap<Option<Key>, BTreeMap<String, &Call>> = BTreeMap::new();
    for c in calls.iter().filter(|c| c.final_read && &*c.f == "read" && c.is_ok()) {
        finals.entry(c.key.clone()).or_default().insert(node_name(c), c);
    }
    if finals.is_empty() {
        return CheckResult::unknown("no final reads: the history has no ok read marked `final`, so the register's final value cannot be judged");
    }
    let (mut checked, mut violations) = (0u64, 0u64);
    let (mut overwritten, mut lost, mut invented) = (Vec::new(), Vec::new(), Vec::new());
    for (key, nodes) in &finals {
        let ws = writes.get(key).map(Vec::as_slice).unwrap_or(&[]);
        let last = ws.iter().filter(|w| w.is_ok()).max_by_key(|w| if timed { w.invoke_time } else { w.invoke_index }).copied();
        for (node, read) in nodes {
            checked += 1;
            let v = read.output().unwrap_or(&Value::Null);
            if v.is_null() {
                if let Some(l) = last {
                    violations += 1;
                    if lost.len() < EXAMPLES {
                        lost.push(json!({"key": key, "node": node, "read": call_json(read), "acknowledged": call_json(l)}));
                    }
                }
                continue;
            }
            let candidates: Vec<&Call> = ws.iter().filter(|w| same(&w.input, v)).copied().collect();
            if candidates.is_empty() {
                violations += 1;
                if invented.len() < EXAMPLES {
                    invented.push(json!({"key": key, "node": node, "read": call_json(read)}));
                }
                continue;
            }
            let Some(l) = last else { continue };
            let allowed = candidates.iter().any(|c| std::ptr::eq(*c, l) || !matches!(c.outcome, Outcome::Ok(_)) || !precedes(c, l));
            if !allowed {
                violations += 1;
                if overwritten.len() < EXAMPLES {
                    let gap_ms = candidates.iter().filter_map(|c| c.complete_time).max().map(|t| support::ms_between(t, l.invoke_time));
                    overwritten.push(json!({
                        "key": key,
                        "node": node,
                        "value": v,
                        "write": call_json(candidates[candidates.len() - 1]),
                        "later_write": call_json(l),
                        "gap_ms": gap_ms,
                    }));
                }
            }
        }
    }
    let valid = if violations > 0 { Validity::Invalid } else { Validity::Valid };
    CheckResult::new(valid)
        .with("keys", json!(finals.len()))
        .with("final_reads", json!(checked))
        .with("slack_ms", json!(if timed { slack_ms } else { 0.0 }))
        .with("violations", json!(violations))
        .with("overwritten", Value::Array(overwritten))
        .with("lost", Value::Array(lost))
        .with("invented", Value::Array(invented))
}

/// The `slack_ms` parameter of a spec, when given.
pub fn slack_from_params(params: &serde_json::Map<String, Value>) -> Result<f64, String> {
    match params.get("slack_ms") {
        None => Ok(DEFAULT_SLACK_MS),
        Some(v) => v.as_f64().filter(|s| s.is_finite() && *s >= 0.0).ok_or_else(|| format!("lww: `slack_ms` must be a non-negative number, got {v}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpType, Process};
    use std::sync::Arc;

    /// Events at millisecond times: (time ms, process, type, f, key, value, node, final).
    type Ev = (u64, u64, OpType, &'static str, &'static str, Value, &'static str, bool);

    fn history(events: &[Ev]) -> History {
        let ops = events
            .iter()
            .map(|(t, p, ty, f, k, v, node, fin)| {
                let mut op = Op::new(*p, *ty, f, v.clone()).with_key(Key::from_json(&json!(k)).unwrap());
                op.time = t * 1_000_000;
                op.node = Some(Arc::from(*node));
                op.final_read = *fin;
                op
            })
            .collect();
        History::from_ops(ops)
    }

    use OpType::{Info, Invoke, Ok as Done};

    fn w(t0: u64, t1: u64, p: u64, v: i64, node: &'static str, done: OpType) -> Vec<Ev> {
        vec![(t0, p, Invoke, "write", "k", json!(v), node, false), (t1, p, done, "write", "k", json!(v), node, false)]
    }

    fn fin(t: u64, p: u64, v: Value, node: &'static str) -> Vec<Ev> {
        vec![(t, p, Invoke, "read", "k", Value::Null, node, true), (t + 1, p, Done, "read", "k", v, node, true)]
    }

    fn verdict(parts: Vec<Vec<Ev>>) -> CheckResult {
        let mut evs: Vec<Ev> = parts.into_iter().flatten().collect();
        evs.sort_by_key(|e| e.0);
        check(&history(&evs), DEFAULT_SLACK_MS)
    }

    #[test]
    fn known_verdicts() {
        use Validity::*;
        let cases: Vec<(&str, Vec<Vec<Ev>>, Validity)> = vec![
            ("the last write wins everywhere", vec![w(0, 5, 1, 1, "n1", Done), w(20, 25, 2, 2, "n2", Done), fin(100, 9, json!(2), "n1"), fin(100, 10, json!(2), "n2")], Valid),
            ("an overwritten write is the final value", vec![w(0, 5, 1, 1, "n1", Done), w(20, 25, 2, 2, "n2", Done), fin(100, 9, json!(1), "n1"), fin(100, 10, json!(1), "n2")], Invalid),
            ("concurrent writes may end either way", vec![w(0, 30, 1, 1, "n1", Done), w(10, 25, 2, 2, "n2", Done), fin(100, 9, json!(1), "n1")], Valid),
            ("within the slack either way", vec![w(0, 10, 1, 1, "n1", Done), w(11, 15, 2, 2, "n2", Done), fin(100, 9, json!(1), "n1")], Valid),
            ("an unacknowledged later write may win", vec![w(0, 5, 1, 1, "n1", Done), w(20, 25, 2, 2, "n2", Info), fin(100, 9, json!(2), "n1")], Valid),
            ("an unacknowledged earlier write may still win", vec![w(0, 5, 1, 1, "n1", Info), w(20, 25, 2, 2, "n2", Done), fin(100, 9, json!(1), "n1")], Valid),
            ("every write lost", vec![w(0, 5, 1, 1, "n1", Done), fin(100, 9, Value::Null, "n1")], Invalid),
            ("a value nobody wrote", vec![w(0, 5, 1, 1, "n1", Done), fin(100, 9, json!(7), "n1")], Invalid),
            ("one node on the wrong write is enough", vec![w(0, 5, 1, 1, "n1", Done), w(20, 25, 2, 2, "n2", Done), fin(100, 9, json!(2), "n1"), fin(100, 10, json!(1), "n3")], Invalid),
        ];
        for (name, parts, want) in cases {
            let r = verdict(parts);
            assert_eq!(r.valid, want, "{name}: {}", serde_json::to_string(&r.details).unwrap());
        }
    }

    #[test]
    fn a_clock_fault_makes_it_not_applicable() {
        let mut evs: Vec<Ev> = [w(0, 5, 1, 1, "n1", Done), w(20, 25, 2, 2, "n2", Done), fin(100, 9, json!(1), "n1")].concat();
        evs.sort_by_key(|e| e.0);
        let mut h = history(&evs);
        let mut clock = Op::new(0, OpType::Info, "start-clock", json!({"fault": "clock"}));
        clock.process = Process::Nemesis;
        h.ops.insert(1, clock);
        let h = History::from_ops(h.ops);
        let r = check(&h, DEFAULT_SLACK_MS);
        assert_eq!(r.valid, Validity::Valid);
        assert!(r.details["not_applicable"].as_str().is_some_and(|s| s.contains("start-clock")), "{:?}", r.details);
        // The same history without the clock fault is a violation.
        assert_eq!(check(&History::from_ops(h.ops.into_iter().filter(|o| !o.is_nemesis()).collect()), DEFAULT_SLACK_MS).valid, Validity::Invalid);
    }

    #[test]
    fn without_final_reads_it_is_unknown() {
        let r = verdict(vec![w(0, 5, 1, 1, "n1", Done)]);
        assert_eq!(r.valid, Validity::Unknown);
    }

    #[test]
    fn slack_parameter() {
        let mut p = serde_json::Map::new();
        assert_eq!(slack_from_params(&p), Ok(DEFAULT_SLACK_MS));
        p.insert("slack_ms".into(), json!(5));
        assert_eq!(slack_from_params(&p), Ok(5.0));
        p.insert("slack_ms".into(), json!(-1));
        assert!(slack_from_params(&p).is_err());
    }
}
