//! Which side of a partition each operation was sent to, and how available each side was.
//!
//! Clients are bound to nodes (process `p` talks to node `p mod n`, see [`super::clients`]), and
//! every operation records its node. A partition is recorded as a nemesis event whose value
//! holds the grudge (node → the nodes it no longer receives from). While it lasts, a node is on
//!
//! - the **majority** side when it can exchange messages both ways with more than half the
//!   cluster (itself included): a majorities ring or a bridge leaves every node there;
//! - the **minority** side when it can still talk both ways with someone, but not a majority;
//! - **isolated** when it can talk both ways with nobody.
//!
//! An operation takes the side of its node at its invocation. Outside every fault it is
//! **quiet**. Availability per side is the share of operations *served*: an `ok`, or a `fail`
//! that is a semantic answer ([`super::stats::is_semantic_refusal`]); a timeout, an unknown
//! outcome or "temporarily unavailable" is not served. Each figure comes with its counts.
//! `settled` repeats the figures for the operations invoked at least [`SETTLE`] after the
//! partition began, once a CP protocol had time to elect a leader on the majority side.
//! Pure: the history in, JSON out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use faultline_checkers::history::{Op, OpType, Process};
use serde_json::{json, Map, Value};

use super::stats::is_semantic_refusal;
use crate::report::data::{fault_periods, secs, FaultPeriod};

/// How long after a partition starts its operations count as `settled`.
pub const SETTLE_S: f64 = 1.0;
/// [`SETTLE_S`], for the documentation's links.
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

/// The side of a partition a node is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    Majority,
    Minority,
    Isolated,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Majority => "majority",
            Side::Minority => "minority",
            Side::Isolated => "isolated",
        }
    }

    pub const ALL: [Side; 3] = [Side::Majority, Side::Minority, Side::Isolated];
}

/// Whether `grudge` (node → nodes it no longer receives from) cuts the link `from` → `to`.
fn cut(grudge: &Value, from: &str, to: &str) -> bool {
    grudge.get(to).and_then(Value::as_array).is_some_and(|l| l.iter().any(|x| x.as_str() == Some(from)))
}

/// The side of every node of `nodes` under `grudge`.
pub fn sides(grudge: &Value, nodes: &BTreeSet<String>) -> BTreeMap<String, Side> {
    nodes
        .iter()
        .map(|a| {
            let reach = nodes.iter().filter(|b| *b == a || (!cut(grudge, a, b) && !cut(grudge, b, a))).count();
            let side = if reach * 2 > nodes.len() {
                Side::Majority
            } else if reach <= 1 && nodes.len() > 1 {
                Side::Isolated
            } else {
                Side::Minority
            };
            (a.clone(), side)
        })
        .collect()
}

/// Counts of operations sent to one side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Served {
    pub sent: u64,
    pub ok: u64,
    /// `fail`s that were semantic answers.
    pub refused: u64,
    /// Definite failures that were not answers (no leader, connection refused).
    pub unavailable: u64,
    /// Unknown outcomes: `info`, or never completed.
    pub unknown: u64,
}

impl Served {
    pub fn served(&self) -> u64 {
        self.ok + self.refused
    }

    pub fn availability(&self) -> Option<f64> {
        (self.sent > 0).then(|| self.served() as f64 / self.sent as f64)
    }

    fn add(&mut self, o: &Outcome) {
        self.sent += 1;
        match o {
            Outcome::Ok => self.ok += 1,
            Outcome::Refused => self.refused += 1,
            Outcome::Unavailable => self.unavailable += 1,
            Outcome::Unknown => self.unknown += 1,
        }
    }

    fn merge(&mut self, o: &Served) {
        self.sent += o.sent;
        self.ok += o.ok;
        self.refused += o.refused;
        self.unavailable += o.unavailable;
        self.unknown += o.unknown;
    }

    pub fn to_json(&self) -> Value {
        json!({
            "sent": self.sent, "served": self.served(), "ok": self.ok, "refused": self.refused,
            "unavailable": self.unavailable, "unknown": self.unknown,
            "availability": self.availability().map(|a| (a * 10000.0).round() / 10000.0),
        })
    }
}

enum Outcome {
    Ok,
    Refused,
    Unavailable,
    Unknown,
}

/// One client operation: where and when it was invoked, and what became of it.
struct Sent {
    node: String,
    at_s: f64,
    outcome: Outcome,
}

/// Pairs the client operations (final reads excluded) with their completions.
fn sent_ops(ops: &[Op]) -> Vec<Sent> {
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut out: Vec<Sent> = Vec::new();
    for op in ops.iter().filter(|o| !o.final_read) {
        let Process::Client(p) = op.process else { continue };
        match op.op_type {
            OpType::Invoke => {
                let Some(node) = op.node.as_deref() else { continue };
                open.insert(p, out.len());
                out.push(Sent { node: node.to_string(), at_s: secs(op.time), outcome: Outcome::Unknown });
            }
            t => {
                if let Some(i) = open.remove(&p) {
                    out[i].outcome = match t {
                        OpType::Ok => Outcome::Ok,
                        OpType::Fail if is_semantic_refusal(op.error.as_deref()) => Outcome::Refused,
                        OpType::Fail => Outcome::Unavailable,
                        _ => Outcome::Unknown,
                    };
                }
            }
        }
    }
    out
}

/// One partition period with the side of each node and the operations sent to each side.
#[derive(Clone, Debug, Default)]
pub struct PeriodSides {
    pub fault: String,
    pub shape: Option<String>,
    pub start_s: f64,
    pub stop_s: f64,
    pub sides: BTreeMap<String, Side>,
    pub by_side: BTreeMap<Side, Served>,
    pub settled: BTreeMap<Side, Served>,
}

/// Everything this module measures of a history.
#[derive(Clone, Debug, Default)]
pub struct SideReport {
    /// Operations invoked while no fault was active.
    pub quiet: Served,
    /// Operations invoked during a fault that was not a partition (a kill, a pause, ...).
    pub other_faults: Served,
    pub periods: Vec<PeriodSides>,
}

impl SideReport {
    /// The sum over every partition period of one side.
    pub fn total(&self, side: Side, settled: bool) -> Served {
        let mut s = Served::default();
        for p in &self.periods {
            if let Some(x) = if settled { p.settled.get(&side) } else { p.by_side.get(&side) } {
                s.merge(x);
            }
        }
        s
    }

    /// Minority and isolated together: every node cut off from a majority.
    pub fn cut_off(&self, settled: bool) -> Served {
        let mut s = self.total(Side::Minority, settled);
        s.merge(&self.total(Side::Isolated, settled));
        s
    }

    pub fn to_json(&self) -> Value {
        let mut by_side = Map::new();
        for side in Side::ALL {
            let t = self.total(side, false);
            if t.sent > 0 || self.periods.iter().any(|p| p.sides.values().any(|s| *s == side)) {
                let mut v = t.to_json();
                v["settled"] = self.total(side, true).to_json();
                by_side.insert(side.as_str().into(), v);
            }
        }
        let periods: Vec<Value> = self
            .periods
            .iter()
            .map(|p| {
                let mut sides = Map::new();
                for (side, s) in &p.by_side {
                    let mut v = s.to_json();
                    v["settled"] = p.settled.get(side).copied().unwrap_or_default().to_json();
                    sides.insert(side.as_str().into(), v);
                }
                json!({
                    "fault": p.fault, "shape": p.shape, "start_s": round3(p.start_s), "stop_s": round3(p.stop_s),
                    "nodes": p.sides.iter().map(|(n, s)| (n.clone(), json!(s.as_str()))).collect::<Map<_, _>>(),
                    "sides": sides,
                })
            })
            .collect();
        let mut cut = self.cut_off(false).to_json();
        cut["settled"] = self.cut_off(true).to_json();
        json!({
            "rule": "served = ok or a semantic refusal; sides from the partition's grudge at the invocation",
            "settle_s": SETTLE_S,
            "quiet": self.quiet.to_json(),
            "other_faults": self.other_faults.to_json(),
            "partitioned": Value::Object(by_side),
            "cut_off": cut,
            "periods": periods,
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The node names of a cluster of `n` nodes (`n1`..), plus every node a grudge names.
fn node_names(n: usize, periods: &[FaultPeriod]) -> BTreeSet<String> {
    let mut set: BTreeSet<String> = (1..=n).map(|i| format!("n{i}")).collect();
    for p in periods {
        if let Some(g) = p.detail.get("grudge").and_then(Value::as_object) {
            for (k, v) in g {
                set.insert(k.clone());
                set.extend(v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)));
            }
        }
    }
    set
}

/// Attributes every client operation of a history of an `n`-node cluster to a side.
pub fn attribute(ops: &[Op], n: usize) -> SideReport {
    let nemesis: Vec<Op> = ops.iter().filter(|o| o.process == Process::Nemesis).cloned().collect();
    let end_s = ops.last().map(|o| secs(o.time)).unwrap_or(0.0);
    let all = fault_periods(&nemesis, end_s);
    let nodes = node_names(n, &all);
    let mut report = SideReport {
        periods: all
            .iter()
            .filter(|p| p.detail.get("grudge").is_some_and(Value::is_object))
            .map(|p| PeriodSides {
                fault: p.fault.clone(),
                shape: p.detail.get("shape").and_then(Value::as_str).map(str::to_string),
                start_s: p.start_s,
                stop_s: p.stop_s,
                sides: sides(&p.detail["grudge"], &nodes),
                ..PeriodSides::default()
            })
            .collect(),
        ..SideReport::default()
    };
    for s in sent_ops(ops) {
        let during = |a: f64, b: f64| a <= s.at_s && s.at_s < b;
        if let Some(p) = report.periods.iter_mut().find(|p| during(p.start_s, p.stop_s)) {
            let side = p.sides.get(&s.node).copied().unwrap_or(Side::Majority);
            p.by_side.entry(side).or_default().add(&s.outcome);
            if s.at_s >= p.start_s + SETTLE_S {
                p.settled.entry(side).or_default().add(&s.outcome);
            }
        } else if all.iter().any(|p| during(p.start_s, p.stop_s)) {
            report.other_faults.add(&s.outcome);
        } else {
            report.quiet.add(&s.outcome);
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::topology;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    fn grudge_json(g: &crate::net::Grudge) -> Value {
        crate::run::nemesis::grudge_json(g)
    }

    fn count(m: &BTreeMap<String, Side>, side: Side) -> usize {
        m.values().filter(|s| **s == side).count()
    }

    #[test]
    fn every_shape_puts_nodes_on_the_sides_it_should() {
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let nodes = names(5);
            let set: BTreeSet<String> = nodes.iter().cloned().collect();
            let one = sides(&grudge_json(&topology::one(&nodes, &mut rng)), &set);
            assert_eq!((count(&one, Side::Majority), count(&one, Side::Isolated)), (4, 1), "{one:?}");
            let halves = sides(&grudge_json(&topology::halves(&nodes, &mut rng)), &set);
            assert_eq!((count(&halves, Side::Majority), count(&halves, Side::Minority)), (3, 2), "{halves:?}");
            let ring = sides(&grudge_json(&topology::ring(&nodes, &mut rng)), &set);
            assert_eq!(count(&ring, Side::Majority), 5, "a majorities ring leaves every node with a majority: {ring:?}");
            let bridge = sides(&grudge_json(&topology::bridge(&nodes, &mut rng)), &set);
            assert_eq!(count(&bridge, Side::Majority), 5, "each half plus the bridge is a majority: {bridge:?}");
        }
        // Four nodes in halves: 2 is not more than half, so both sides are minorities.
        let nodes = names(4);
        let set: BTreeSet<String> = nodes.iter().cloned().collect();
        let halves = sides(&grudge_json(&topology::halves(&nodes, &mut ChaCha8Rng::seed_from_u64(1))), &set);
        assert_eq!(count(&halves, Side::Minority), 4);
    }

    #[test]
    fn a_one_way_cut_is_enough_to_lose_a_node() {
        // n1 stops receiving from n2 and n3: it cannot talk both ways with anyone.
        let set: BTreeSet<String> = names(3).into_iter().collect();
        let s = sides(&json!({"n1": ["n2", "n3"]}), &set);
        assert_eq!(s["n1"], Side::Isolated);
        assert_eq!(s["n2"], Side::Majority);
    }

    fn op(process: u64, t: OpType, time_s: f64, node: &str, error: Option<&str>) -> Op {
        let mut o = Op::new(process, t, "write", Value::Null);
        o.time = (time_s * 1e9) as u64;
        o.node = Some(node.into());
        o.error = error.map(str::to_string);
        o
    }

    fn nemesis(f: &str, time_s: f64, value: Value) -> Op {
        let mut o = Op::new(0, OpType::Info, f, value);
        o.process = Process::Nemesis;
        o.time = (time_s * 1e9) as u64;
        o
    }

    #[test]
    fn operations_take_the_side_of_their_node_at_invocation() {
        let grudge = json!({"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]});
        let ops = vec![
            op(0, OpType::Invoke, 0.5, "n1", None),
            op(0, OpType::Ok, 0.6, "n1", None),
            nemesis("start-partition", 1.0, json!({"fault": "partition", "phase": "start", "shape": "one", "grudge": grudge})),
            // Isolated n1: a timeout and a "no leader".
            op(0, OpType::Invoke, 1.5, "n1", None),
            op(0, OpType::Info, 2.5, "n1", Some("timeout")),
            op(3, OpType::Invoke, 3.5, "n1", None),
            op(3, OpType::Fail, 3.6, "n1", Some("temporarily-unavailable: no leader")),
            // Majority: one ok early, one refusal after settling.
            op(1, OpType::Invoke, 1.1, "n2", None),
            op(1, OpType::Ok, 1.3, "n2", None),
            op(1, OpType::Invoke, 3.2, "n2", None),
            op(1, OpType::Fail, 3.3, "n2", Some("precondition-failed")),
            nemesis("stop-partition", 4.0, json!({"fault": "partition", "phase": "stop"})),
            op(2, OpType::Invoke, 4.5, "n3", None),
        ];
        let r = attribute(&ops, 3);
        assert_eq!(r.periods.len(), 1);
        assert_eq!(r.periods[0].sides["n1"], Side::Isolated);
        let iso = r.total(Side::Isolated, false);
        assert_eq!((iso.sent, iso.served(), iso.unknown, iso.unavailable), (2, 0, 1, 1));
        let maj = r.total(Side::Majority, false);
        assert_eq!((maj.sent, maj.ok, maj.refused), (2, 1, 1));
        assert_eq!(maj.availability(), Some(1.0));
        let settled = r.total(Side::Majority, true);
        assert_eq!(settled.sent, 1, "only the operation invoked 1 s or more after the start");
        // The quiet operations: one ok before, one never completed after.
        assert_eq!((r.quiet.sent, r.quiet.ok, r.quiet.unknown), (2, 1, 1));
        let j = r.to_json();
        assert_eq!(j["partitioned"]["isolated"]["sent"], 2);
        assert_eq!(j["cut_off"]["sent"], 2);
        assert_eq!(j["periods"][0]["nodes"]["n1"], "isolated");
    }
}
