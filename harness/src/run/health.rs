//! The health judgment: whether a run can vouch for the system at all.
//!
//! A checker that finds nothing wrong in a history of nothing proves nothing. Before a run may
//! say *valid*, it must have exercised the system: enough acknowledged operations overall and
//! for each checker, every node alive and answering at the end, every fault healed, every final
//! read answered, no node that exited on its own, and no interruption. When any of these fails
//! the run's verdict is *unknown* (exit 2) with the reasons — except that a guarantee shown
//! violated stays violated (exit 1): a real anomaly in a short history is still real.
//!
//! The thresholds are deliberately low (a healthy 10 s run acknowledges hundreds of
//! operations); they catch the runs where the nodes never answered, not slow clusters. Pure: the
//! caller gathers the facts, this module judges them.

use faultline_checkers::history::{Op, OpType, Process};
use faultline_checkers::registry::CheckerSpec;
use serde_json::{json, Value};

/// Fewest acknowledged client operations (final reads excluded) a run needs overall.
pub const MIN_OK_TOTAL: u64 = 20;
/// Fewest acknowledged updates (any `f` but `read`) a checker needs.
pub const MIN_OK_UPDATES: u64 = 5;
/// Fewest acknowledged reads (final reads included) a checker needs.
pub const MIN_OK_READS: u64 = 3;

/// The facts of a run that the judgment needs besides its history.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    /// Nodes not running at the end of the run, after healing.
    pub down_at_end: Vec<String>,
    /// Errors met while healing the faults (a fault that could not be undone).
    pub heal_errors: Vec<String>,
    /// Nodes whose final read never succeeded.
    pub final_reads_missing: Vec<String>,
    /// What interrupted the run (`SIGTERM`, `SIGINT`, `watchdog`), if anything did.
    pub interrupted: Option<String>,
    /// The user accepts nodes exiting on their own (`--allow-crashes`).
    pub allow_crashes: bool,
    /// Maelstrom nodes that wrote a line to stdout that is not a JSON message: (node, line).
    pub bad_output: Vec<(String, String)>,
    /// The workload has no reads (Maelstrom's `echo`, `unique-ids`): acknowledged updates alone
    /// exercise it.
    pub no_reads: bool,
}

impl Facts {
    /// Records a fault that could not be healed, as a teardown error and a health fact.
    pub fn note_heal(&mut self, heal_error: Option<String>, teardown_errors: &mut Vec<String>) {
        if let Some(e) = heal_error {
            teardown_errors.push(format!("healing: {e}"));
            self.heal_errors.push(e);
        }
    }
}

/// The judgment: `ok`, or the reasons it is not.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Health {
    pub reasons: Vec<String>,
    /// Crashes (nodes that exited on their own), also listed when allowed.
    pub crashes: Vec<Value>,
}

impl Health {
    pub fn ok(&self) -> bool {
        self.reasons.is_empty()
    }

    pub fn to_json(&self) -> Value {
        json!({"ok": self.ok(), "reasons": self.reasons, "crashes": self.crashes})
    }
}

/// Acknowledged client operations: (updates, reads, reads that were final).
fn ok_counts(ops: &[Op]) -> (u64, u64, u64) {
    let (mut updates, mut reads, mut finals) = (0, 0, 0);
    for op in ops.iter().filter(|o| o.op_type == OpType::Ok && matches!(o.process, Process::Client(_))) {
        if &*op.f == "read" {
            reads += 1;
            finals += op.final_read as u64;
        } else {
            updates += 1;
        }
    }
    (updates, reads, finals)
}

/// The `crash` events of the history, as recorded by the supervisor.
fn crash_events(ops: &[Op]) -> Vec<Value> {
    ops.iter()
        .filter(|o| o.process == Process::Nemesis && &*o.f == "crash")
        .map(|o| {
            let mut v = o.value.clone();
            if let Value::Object(m) = &mut v {
                m.insert("time_s".into(), json!((o.time as f64 / 1e6).round() / 1e3));
            }
            v
        })
        .collect()
}

fn crash_reason(c: &Value) -> String {
    let node = c.get("node").and_then(Value::as_str).unwrap_or("a node");
    let status = c.get("status").and_then(Value::as_str).unwrap_or("unknown status");
    let at = c.get("time_s").and_then(Value::as_f64).map(|t| format!(" at {t:.2} s")).unwrap_or_default();
    let last = c.get("log_tail").and_then(Value::as_str).and_then(|t| t.lines().rev().find(|l| !l.trim().is_empty())).unwrap_or("");
    let last = if last.is_empty() { String::new() } else { format!("; its log ends: {}", last.chars().take(200).collect::<String>()) };
    format!("node {node} exited on its own{at} ({status}){last}")
}

/// The first line of a message, at most 300 characters: reasons are read in lists and tables.
fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(300).collect()
}

/// Judges a run. `ops` is the whole history; `checkers` the checkers that ran.
pub fn judge(ops: &[Op], checkers: &[CheckerSpec], facts: &Facts) -> Health {
    let mut h = Health { crashes: crash_events(ops), ..Health::default() };
    if let Some(why) = &facts.interrupted {
        h.reasons.push(format!("the run was interrupted ({why}) before its time limit"));
    }
    if !facts.allow_crashes {
        h.reasons.extend(h.crashes.iter().map(crash_reason));
    }
    for id in &facts.down_at_end {
        h.reasons.push(format!("node {id} was down at the end of the run (it could not be restarted)"));
    }
    for e in &facts.heal_errors {
        h.reasons.push(format!("a fault could not be healed: {}", first_line(e)));
    }
    for (id, line) in &facts.bad_output {
        h.reasons.push(format!("node {id} wrote a line to stdout that is not a JSON message of its own: {}", first_line(line)));
    }
    for id in &facts.final_reads_missing {
        h.reasons.push(format!("the final read of node {id} never succeeded"));
    }
    let (updates, reads, finals) = ok_counts(ops);
    if updates + reads - finals < MIN_OK_TOTAL {
        h.reasons.push(format!("too few acknowledged operations to vouch for anything: {} (at least {MIN_OK_TOTAL} needed)", updates + reads - finals));
    } else {
        for c in checkers {
            if updates < MIN_OK_UPDATES || (reads < MIN_OK_READS && !facts.no_reads) {
                h.reasons.push(format!(
                    "too few acknowledged operations for the {} check: {updates} updates and {reads} reads (at least {MIN_OK_UPDATES} and {MIN_OK_READS} needed)",
                    c.name
                ));
            }
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(p: u64, t: OpType, f: &str) -> Op {
        Op::new(p, t, f, Value::Null)
    }

    fn healthy_ops() -> Vec<Op> {
        let mut ops = Vec::new();
        for i in 0..30 {
            let f = if i % 2 == 0 { "write" } else { "read" };
            ops.push(op(i % 3, OpType::Invoke, f));
            ops.push(op(i % 3, OpType::Ok, f));
        }
        ops
    }

    fn spec() -> Vec<CheckerSpec> {
        vec![CheckerSpec { name: "linearizable".into(), model: Some("kv".into()), params: Default::default() }]
    }

    #[test]
    fn a_healthy_run_is_ok() {
        let h = judge(&healthy_ops(), &spec(), &Facts::default());
        assert!(h.ok(), "{:?}", h.reasons);
    }

    #[test]
    fn a_run_where_nothing_was_acknowledged_is_not() {
        let ops: Vec<Op> = (0..100).flat_map(|i| [op(i, OpType::Invoke, "write"), op(i, OpType::Info, "write")]).collect();
        let h = judge(&ops, &spec(), &Facts::default());
        assert!(!h.ok());
        assert!(h.reasons[0].contains("too few acknowledged operations"), "{:?}", h.reasons);
    }

    #[test]
    fn a_check_without_reads_is_not() {
        let ops: Vec<Op> = (0..30).flat_map(|i| [op(i, OpType::Invoke, "write"), op(i, OpType::Ok, "write")]).collect();
        let h = judge(&ops, &spec(), &Facts::default());
        assert!(h.reasons.iter().any(|r| r.contains("for the linearizable check")), "{:?}", h.reasons);
    }

    #[test]
    fn every_fact_gives_a_reason() {
        let facts = Facts {
            down_at_end: vec!["n3".into()],
            heal_errors: vec!["restarting n3: boom".into()],
            final_reads_missing: vec!["n3".into()],
            interrupted: Some("SIGTERM".into()),
            allow_crashes: false,
            ..Facts::default()
        };
        let h = judge(&healthy_ops(), &spec(), &facts);
        assert_eq!(h.reasons.len(), 4, "{:?}", h.reasons);
        assert!(h.reasons.iter().any(|r| r.contains("interrupted (SIGTERM)")));
        assert!(h.reasons.iter().any(|r| r.contains("n3 was down")));
    }

    #[test]
    fn a_crash_fails_the_run_unless_allowed() {
        let mut ops = healthy_ops();
        let mut crash = Op::new(0, OpType::Info, "crash", json!({"node": "n2", "status": "signal: 6 (SIGABRT)", "log_tail": "safety violation: x\n"}));
        crash.process = Process::Nemesis;
        ops.push(crash);
        let h = judge(&ops, &spec(), &Facts::default());
        assert_eq!(h.crashes.len(), 1);
        assert!(h.reasons[0].contains("n2 exited on its own") && h.reasons[0].contains("safety violation"), "{:?}", h.reasons);
        let allowed = judge(&ops, &spec(), &Facts { allow_crashes: true, ..Facts::default() });
        assert!(allowed.ok() && allowed.crashes.len() == 1);
    }
}
