//! The `stats` of `results.json`, computed from the recorded history: operation counts per
//! `f` and outcome, availability, latency percentiles, and the nemesis events. Pure.
//!
//! Availability counts the operations the system *served*: every `ok`, and every `fail` that is
//! a definite, semantic answer — a cas whose precondition failed, a read of a key that does not
//! exist, a transaction refused for a conflict or aborted — since the system was up and decided.
//! Timeouts, unknown outcomes (`info`), refused connections and "temporarily unavailable" (no
//! leader, no quorum) are not served. `ok_ratio` keeps the plain share of `ok`.

use std::collections::{BTreeMap, HashMap};

use faultline_checkers::history::{Op, OpType, Process};
use serde_json::{json, Map, Value};

/// Counts of one operation's completions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
    /// `fail`s that were semantic answers (see the module documentation).
    pub refused: u64,
}

/// The error names (as the client records them, Maelstrom's) of definite answers that still
/// mean the system served the request.
pub const SEMANTIC_REFUSALS: &[&str] = &["precondition-failed", "key-does-not-exist", "key-already-exists", "txn-conflict", "abort"];

/// Whether a `fail` was a semantic answer rather than unavailability. A refusal that gives a
/// timeout as its reason (two-phase commit's "abort: timed out waiting for votes") is the
/// system failing to decide, not a decision, so it is not one.
pub fn is_semantic_refusal(error: Option<&str>) -> bool {
    error.is_some_and(|e| SEMANTIC_REFUSALS.iter().any(|r| e == *r || e.starts_with(&format!("{r}:"))) && !e.contains("timed out") && !e.contains("timeout"))
}

/// What the history says about the client operations (final reads excluded).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpStats {
    pub by_f: BTreeMap<String, Counts>,
    pub latencies_ms: Vec<f64>,
}

impl OpStats {
    pub fn total(&self) -> Counts {
        self.by_f.values().fold(Counts::default(), |a, c| Counts { ok: a.ok + c.ok, fail: a.fail + c.fail, info: a.info + c.info, refused: a.refused + c.refused })
    }

    /// Share of served operations (ok, or a semantic refusal) among completed operations (an
    /// invoke never completed counts as `info`).
    pub fn availability(&self) -> Option<f64> {
        let t = self.total();
        let n = t.ok + t.fail + t.info;
        (n > 0).then(|| (t.ok + t.refused) as f64 / n as f64)
    }

    /// Share of `ok` among completed operations.
    pub fn ok_ratio(&self) -> Option<f64> {
        let t = self.total();
        let n = t.ok + t.fail + t.info;
        (n > 0).then(|| t.ok as f64 / n as f64)
    }
}

/// The `q` quantile (0..=1) of sorted values, nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Counts operations and collects the latency of every `ok`.
pub fn op_stats(ops: &[Op]) -> OpStats {
    let mut open: HashMap<u64, (u64, String)> = HashMap::new();
    let mut s = OpStats::default();
    for op in ops.iter().filter(|o| !o.final_read) {
        let Process::Client(p) = op.process else { continue };
        let entry = s.by_f.entry(op.f.to_string()).or_default();
        match op.op_type {
            OpType::Invoke => {
                open.insert(p, (op.time, op.f.to_string()));
            }
            OpType::Ok => {
                entry.ok += 1;
                if let Some((t0, _)) = open.remove(&p) {
                    s.latencies_ms.push(op.time.saturating_sub(t0) as f64 / 1e6);
                }
            }
            OpType::Fail => {
                entry.fail += 1;
                entry.refused += is_semantic_refusal(op.error.as_deref()) as u64;
                open.remove(&p);
            }
            OpType::Info => {
                entry.info += 1;
                open.remove(&p);
            }
        }
    }
    for (_, f) in open.into_values() {
        s.by_f.entry(f).or_default().info += 1;
    }
    s.latencies_ms.sort_by(f64::total_cmp);
    s
}

/// The nemesis events, as `results.json` lists them (the durable-state monitor's observations
/// are not faults: they stay in the history only).
pub fn faults(ops: &[Op]) -> Vec<Value> {
    ops.iter()
        .filter(|o| o.process == Process::Nemesis && !faultline_checkers::durable::is_observation(o))
        .map(|o| json!({"time_s": o.time as f64 / 1e9, "f": o.f.as_ref(), "value": o.value}))
        .collect()
}

/// What the CAP comparison measures of a run of an `nodes`-node cluster: availability per side
/// of each partition ([`super::sides`]), the staleness of reads ([`super::staleness`]), and for
/// the bank how transfers fared while a node was down.
pub fn cap_measures(ops: &[Op], nodes: usize) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("sides".into(), super::sides::attribute(ops, nodes).to_json());
    if let Some(s) = super::staleness::measure(ops) {
        m.insert("staleness".into(), s.to_json());
    }
    if let Some(b) = super::staleness::bank(ops) {
        m.insert("bank_blocking".into(), b);
    }
    m
}

/// The `stats` object, without the parts the run adds (final reads, convergence, links).
pub fn stats_json(ops: &[Op], duration_s: f64) -> Map<String, Value> {
    let s = op_stats(ops);
    let mut by_f = Map::new();
    for (f, c) in &s.by_f {
        by_f.insert(f.clone(), json!({"ok": c.ok, "fail": c.fail, "info": c.info, "refused": c.refused}));
    }
    let t = s.total();
    let r2 = |v: Option<f64>| v.map(|x| (x * 1000.0).round() / 1000.0);
    let mut m = Map::new();
    m.insert("ops".into(), Value::Object(by_f));
    m.insert("ops_total".into(), json!({"ok": t.ok, "fail": t.fail, "info": t.info, "refused": t.refused}));
    m.insert("availability".into(), json!(r2(s.availability())));
    m.insert("ok_ratio".into(), json!(r2(s.ok_ratio())));
    m.insert(
        "latency_ms".into(),
        json!({"p50": r2(quantile(&s.latencies_ms, 0.5)), "p99": r2(quantile(&s.latencies_ms, 0.99)), "max": r2(s.latencies_ms.last().copied())}),
    );
    m.insert("duration_s".into(), json!((duration_s * 1000.0).round() / 1000.0));
    m.insert("faults".into(), Value::Array(faults(ops)));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(p: u64, t: OpType, f: &str, time_ms: u64) -> Op {
        let mut o = Op::new(p, t, f, Value::Null);
        o.time = time_ms * 1_000_000;
        o
    }

    #[test]
    fn counts_latency_and_open_invokes() {
        let mut fin = op(9, OpType::Invoke, "read", 50);
        fin.final_read = true;
        let ops = vec![
            op(0, OpType::Invoke, "write", 0),
            op(1, OpType::Invoke, "read", 1),
            op(0, OpType::Ok, "write", 10),
            op(1, OpType::Fail, "read", 3),
            op(2, OpType::Invoke, "cas", 4),
            op(3, OpType::Invoke, "write", 5),
            op(3, OpType::Info, "write", 6),
            fin,
        ];
        let s = op_stats(&ops);
        assert_eq!(s.by_f["write"], Counts { ok: 1, fail: 0, info: 1, refused: 0 });
        assert_eq!(s.by_f["read"], Counts { ok: 0, fail: 1, info: 0, refused: 0 });
        assert_eq!(s.by_f["cas"], Counts { ok: 0, fail: 0, info: 1, refused: 0 });
        assert_eq!(s.latencies_ms, vec![10.0]);
        assert_eq!(s.availability(), Some(0.25));
        let j = stats_json(&ops, 1.0);
        assert_eq!(j["latency_ms"]["p50"], 10.0);
    }

    #[test]
    fn semantic_refusals_are_served_and_unavailability_is_not() {
        let mut ops = Vec::new();
        for (i, err) in ["precondition-failed: from 3", "temporarily-unavailable: no leader", "connect: refused", "key-does-not-exist", "abort: timed out waiting for votes"].iter().enumerate() {
            ops.push(op(i as u64, OpType::Invoke, "cas", 0));
            let mut f = op(i as u64, OpType::Fail, "cas", 1);
            f.error = Some(err.to_string());
            ops.push(f);
        }
        ops.push(op(9, OpType::Invoke, "read", 0));
        ops.push(op(9, OpType::Ok, "read", 1));
        let s = op_stats(&ops);
        assert_eq!(s.total().refused, 2, "an abort for a timeout is not a decision");
        assert_eq!(s.availability(), Some(0.5));
        assert_eq!(s.ok_ratio(), Some(1.0 / 6.0));
    }

    #[test]
    fn quantiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
