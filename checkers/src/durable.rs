//! The durable-state checker: does what a node revealed of its persistent state survive its
//! restarts?
//!
//! A consensus node must persist some state before it acts on it: Raft its current term and
//! its vote, Paxos the ballot an acceptor promised. A node that replies first and persists
//! later (or never) behaves perfectly until it restarts at the wrong instant, and then votes
//! twice in one term or accepts a proposal it promised to refuse. Clients see the damage only
//! if a second candidate or proposer happens to exploit it, which is rare; the loss itself is
//! visible at once, in what the node says about itself.
//!
//! While a run lasts, the harness polls every node's `status`; a node that claims
//! `durable-state` reports there `"durable": {"epoch": E, "choice": C}` (docs/node-contract.md):
//!
//! - `epoch`: a number, or an array of numbers compared in order (a term, a ballot as
//!   `[round, node]`), that must never decrease over the node's whole life, restarts included;
//! - `choice` (optional): what the node chose within the epoch (Raft's vote), `null` while it
//!   has chosen nothing; once a choice is reported it never changes while the epoch stays the
//!   same, neither to another value nor back to `null`.
//!
//! The harness records each change as an observation event in the history (`process`
//! `"nemesis"`, `f` `"observe"`, `value` `{"node": N, "durable": {...}}`), so the check reruns
//! from `history.jsonl` alone. A node must report only state it has persisted — the reference
//! runtime fsyncs before any reply leaves, status replies included — so every regression is a
//! lost write of durable state, never a timing artefact. The result names the two
//! observations and the process events (kill, restart, power loss) between them.
//!
//! No observation at all is unknown: nothing was checked.

use serde_json::{json, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::history::{History, Op, OpType, NO_CLIENT_OPERATIONS};
use crate::registry::support::EXAMPLES;
use crate::verdict::{CheckResult, Validity};

/// The `f` of an observation event.
pub const OBSERVE: &str = "observe";

/// One node's durable state as reported.
#[derive(Clone, Debug, PartialEq)]
pub struct Durable {
    pub epoch: Vec<f64>,
    /// The epoch as reported, for the explanation.
    pub raw_epoch: Value,
    pub choice: Value,
}

impl Durable {
    /// Reads the `durable` object of a status reply (or of an observation). `None` when absent;
    /// an error names what is malformed.
    pub fn parse(v: &Value) -> Result<Option<Durable>, String> {
        let Some(d) = v.get("durable").filter(|d| !d.is_null()) else { return Ok(None) };
        let epoch = match d.get("epoch") {
            Some(Value::Number(n)) => vec![n.as_f64().unwrap_or(f64::NAN)],
            Some(Value::Array(a)) => a.iter().map(|x| x.as_f64().ok_or_else(|| format!("durable.epoch {a:?}: not an array of numbers"))).collect::<Result<_, _>>()?,
            Some(other) => return Err(format!("durable.epoch {other}: not a number or an array of numbers")),
            None => return Err(format!("durable {d}: no epoch")),
        };
        if epoch.iter().any(|x| !x.is_finite()) {
            return Err(format!("durable.epoch {}: not finite", d["epoch"]));
        }
        Ok(Some(Durable { epoch, raw_epoch: d["epoch"].clone(), choice: d.get("choice").cloned().unwrap_or(Value::Null) }))
    }

    pub fn to_json(&self) -> Value {
        json!({"epoch": self.raw_epoch, "choice": self.choice})
    }

    fn cmp_epoch(&self, other: &Durable) -> Ordering {
        // Lexicographic, a shorter prefix first; finite by construction.
        for (a, b) in self.epoch.iter().zip(&other.epoch) {
            match a.total_cmp(b) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        self.epoch.len().cmp(&other.epoch.len())
    }

    /// Why `later` cannot follow `self` on one node, if it cannot.
    pub fn regression(&self, later: &Durable) -> Option<&'static str> {
        match later.cmp_epoch(self) {
            Ordering::Less => Some("epoch went back"),
            Ordering::Greater => None,
            Ordering::Equal if self.choice.is_null() || self.choice == later.choice => None,
            Ordering::Equal if later.choice.is_null() => Some("choice forgotten within its epoch"),
            Ordering::Equal => Some("choice changed within its epoch"),
        }
    }
}

/// Whether `op` is an observation event.
pub fn is_observation(op: &Op) -> bool {
    op.is_nemesis() && &*op.f == OBSERVE
}

fn secs(ns: u64) -> f64 {
    (ns as f64 / 1e6).round() / 1e3
}

/// The process events of `node` strictly between two times, for the explanation.
fn events_between(history: &History, node: &str, from: u64, to: u64) -> Vec<Value> {
    let names_node = |v: &Value| {
        v.get("node").and_then(Value::as_str) == Some(node) || v.get("nodes").and_then(Value::as_array).is_some_and(|a| a.iter().any(|n| n.as_str() == Some(node)))
    };
    history
        .ops
        .iter()
        .filter(|o| o.is_nemesis() && !is_observation(o) && o.time > from && o.time < to && (&*o.f == "heal" || names_node(&o.value)))
        .take(EXAMPLES)
        .map(|o| json!({"time_s": secs(o.time), "f": o.f.as_ref()}))
        .collect()
}

/// Checks every node's observations in history order.
pub fn check(history: &History) -> CheckResult {
    // Like every checker: a run with no client operation exercised nothing worth vouching for.
    if history.ops.iter().all(|o| o.is_nemesis()) {
        return CheckResult::unknown(NO_CLIENT_OPERATIONS);
    }
    let mut last: BTreeMap<String, (u64, Durable)> = BTreeMap::new();
    let mut observations = 0u64;
    let mut malformed = Vec::new();
    let mut regressions = Vec::new();
    let mut count = 0u64;
    for op in history.ops.iter().filter(|o| is_observation(o) && o.op_type == OpType::Info) {
        let Some(node) = op.value.get("node").and_then(Value::as_str) else {
            malformed.push(format!("observation at index {} names no node", op.index));
            continue;
        };
        let d = match Durable::parse(&op.value) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(e) => {
                malformed.push(format!("observation at index {} ({node}): {e}", op.index));
                continue;
            }
        };
        observations += 1;
        if let Some((t0, before)) = last.get(node) {
            if let Some(why) = before.regression(&d) {
                count += 1;
                if regressions.len() < EXAMPLES {
                    regressions.push(json!({
                        "node": node,
                        "why": why,
                        "before": {"time_s": secs(*t0), "durable": before.to_json()},
                        "after": {"time_s": secs(op.time), "durable": d.to_json()},
                        "between": events_between(history, node, *t0, op.time),
                    }));
                }
            }
        }
        // The later state is kept either way: each regression is reported once, then judged anew.
        last.insert(node.to_string(), (op.time, d));
    }
    if observations == 0 {
        let why = malformed.first().cloned().unwrap_or_else(|| "no node reported `durable` in its status during the run".into());
        return CheckResult::unknown(why);
    }
    let valid = if count > 0 {
        Validity::Invalid
    } else if !malformed.is_empty() {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let mut r = CheckResult::new(valid)
        .with("observations", json!(observations))
        .with("nodes", json!(last.len()))
        .with("regression_count", json!(count))
        .with("regressions", Value::Array(regressions));
    if !malformed.is_empty() {
        r = r.with("error", json!(malformed[0])).with("malformed", json!(malformed.len()));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Process;

    fn obs(time_ms: u64, node: &str, durable: Value) -> Op {
        let mut o = Op::new(0, OpType::Info, OBSERVE, json!({"node": node, "durable": durable}));
        o.process = Process::Nemesis;
        o.time = time_ms * 1_000_000;
        o
    }

    fn event(time_ms: u64, f: &str, node: &str) -> Op {
        let mut o = Op::new(0, OpType::Info, f, json!({"nodes": [node]}));
        o.process = Process::Nemesis;
        o.time = time_ms * 1_000_000;
        o
    }

    /// The observations with one client operation before them (a run that did something).
    fn run(ops: Vec<Op>) -> CheckResult {
        let client = Op::new(0, OpType::Invoke, "read", Value::Null);
        check(&History::from_ops(std::iter::once(client).chain(ops).collect()))
    }

    #[test]
    fn rising_epochs_and_kept_votes_are_valid() {
        let r = run(vec![
            obs(1, "n1", json!({"epoch": 1, "choice": null})),
            obs(2, "n1", json!({"epoch": 1, "choice": "n2"})),
            event(3, "kill", "n1"),
            event(4, "restart", "n1"),
            obs(5, "n1", json!({"epoch": 1, "choice": "n2"})),
            obs(6, "n1", json!({"epoch": 2, "choice": null})),
            obs(7, "n1", json!({"epoch": 2, "choice": "n3"})),
            obs(8, "n2", json!({"epoch": [3, 1]})),
            obs(9, "n2", json!({"epoch": [3, 2]})),
            obs(10, "n2", json!({"epoch": [4, 0]})),
        ]);
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.details["observations"], json!(8));
        assert_eq!(r.details["nodes"], json!(2));
    }

    #[test]
    fn a_forgotten_vote_is_invalid_and_names_the_restart() {
        let r = run(vec![
            obs(1, "n1", json!({"epoch": 5, "choice": "n2"})),
            event(3, "kill", "n1"),
            event(4, "restart", "n1"),
            event(4, "kill", "n3"),
            obs(5, "n1", json!({"epoch": 5, "choice": null})),
        ]);
        assert_eq!(r.valid, Validity::Invalid);
        let reg = &r.details["regressions"][0];
        assert_eq!(reg["node"], "n1");
        assert_eq!(reg["why"], "choice forgotten within its epoch");
        let between: Vec<&str> = reg["between"].as_array().unwrap().iter().map(|e| e["f"].as_str().unwrap()).collect();
        assert_eq!(between, vec!["kill", "restart"], "only n1's own events");
    }

    #[test]
    fn a_second_vote_and_a_lower_epoch_are_invalid() {
        let twice = run(vec![obs(1, "n1", json!({"epoch": 5, "choice": "n2"})), obs(2, "n1", json!({"epoch": 5, "choice": "n3"}))]);
        assert_eq!(twice.valid, Validity::Invalid);
        assert_eq!(twice.details["regressions"][0]["why"], "choice changed within its epoch");
        let back = run(vec![obs(1, "n1", json!({"epoch": [7, 2]})), obs(2, "n1", json!({"epoch": [7, 1]})), obs(3, "n1", json!({"epoch": [8, 0]}))]);
        assert_eq!(back.valid, Validity::Invalid);
        assert_eq!(back.details["regression_count"], json!(1));
        assert_eq!(back.details["regressions"][0]["why"], "epoch went back");
    }

    #[test]
    fn nodes_are_judged_apart() {
        // n2 at a lower epoch than n1 is ordinary: epochs are per node.
        let r = run(vec![obs(1, "n1", json!({"epoch": 9})), obs(2, "n2", json!({"epoch": 1})), obs(3, "n1", json!({"epoch": 9}))]);
        assert_eq!(r.valid, Validity::Valid);
    }

    #[test]
    fn nothing_observed_or_malformed_is_unknown() {
        let none = run(vec![event(1, "kill", "n1")]);
        assert_eq!(none.valid, Validity::Unknown);
        assert!(none.details["error"].as_str().unwrap().contains("no node reported"));
        let bad = run(vec![obs(1, "n1", json!({"epoch": "x"})), obs(2, "n1", json!({"epoch": 2}))]);
        assert_eq!(bad.valid, Validity::Unknown);
        assert!(bad.details["error"].as_str().unwrap().contains("not a number"), "{bad:?}");
    }

    #[test]
    fn epochs_compare_lexicographically() {
        let d = |e: Value| Durable::parse(&json!({"durable": {"epoch": e}})).unwrap().unwrap();
        assert!(d(json!([2, 0])).regression(&d(json!([1, 9]))).is_some());
        assert!(d(json!([1, 9])).regression(&d(json!([2, 0]))).is_none());
        assert!(d(json!(10)).regression(&d(json!(9.5))).is_some());
        assert_eq!(Durable::parse(&json!({"role": "leader"})), Ok(None));
    }
}
