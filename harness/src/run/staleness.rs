//! How stale the reads were: consistency measured, not only judged.
//!
//! A checker says whether a guarantee held; an AP protocol does not claim linearizability, so
//! what matters about it is *how far* from it its reads were. For every `ok` read of the workload
//! (final reads excluded), this module counts the acknowledged updates the read did not reflect
//! although they were acknowledged before the read was invoked:
//!
//! - **sets** (`add`/`remove`/`read`): the elements whose add was acknowledged before the read
//!   and that the read lacks (an element whose remove was invoked before the read completed is
//!   not expected); exact;
//! - **lists** (`append`/`read` per key): the acknowledged appends missing from the list; exact;
//! - **counters** (`add`/`read`): the acknowledged sum the read fell short of, turned into a
//!   number of updates by dividing by the largest delta so far (a lower bound);
//! - **registers** (`write`/`cas`/`read` per key, values unique): the writes acknowledged before
//!   the read that were invoked after the write whose value it returned had completed. Its age
//!   is the time from the first such acknowledgement to the read's invocation.
//!
//! A read is *stale* when it missed at least one update. For the bank, whose reads are whole
//! snapshots, it reports how transfers fared while a node was down instead ([`bank`]).
//! Pure: the history in, JSON out.

use std::collections::{BTreeMap, HashMap, HashSet};

use faultline_checkers::history::{Key, Op, OpType, Process};
use serde_json::{json, Value};

use super::stats::{is_semantic_refusal, quantile};
use crate::report::data::{fault_periods, secs};

/// A client operation with its completion.
struct Done {
    f: String,
    key: Option<Key>,
    input: Value,
    invoke: u64,
    complete: Option<u64>,
    outcome: OpType,
    output: Value,
    error: Option<String>,
    node: Option<String>,
}

impl Done {
    fn ok(&self) -> bool {
        self.outcome == OpType::Ok
    }
}

fn pair(ops: &[Op]) -> Vec<Done> {
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut out: Vec<Done> = Vec::new();
    for op in ops.iter().filter(|o| !o.final_read && !o.local) {
        let Process::Client(p) = op.process else { continue };
        if op.op_type == OpType::Invoke {
            open.insert(p, out.len());
            out.push(Done {
                f: op.f.to_string(),
                key: op.key.clone(),
                input: op.value.clone(),
                invoke: op.time,
                complete: None,
                outcome: OpType::Info,
                output: Value::Null,
                error: None,
                node: op.node.as_deref().map(str::to_string),
            });
        } else if let Some(i) = open.remove(&p) {
            let d = &mut out[i];
            d.outcome = op.op_type;
            d.output = op.value.clone();
            d.error = op.error.clone();
            if op.op_type != OpType::Info {
                d.complete = Some(op.time);
            }
        }
    }
    out
}

/// The staleness of the reads of one history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Staleness {
    pub kind: &'static str,
    pub reads: u64,
    pub stale: u64,
    /// Per stale read: how many updates it missed.
    pub missing: Vec<u64>,
    /// Per stale read: milliseconds since the first update it missed was acknowledged.
    pub age_ms: Vec<f64>,
}

impl Staleness {
    pub fn share(&self) -> Option<f64> {
        (self.reads > 0).then(|| self.stale as f64 / self.reads as f64)
    }

    pub fn to_json(&self) -> Value {
        let r = |x: Option<f64>| x.map(|v| (v * 1000.0).round() / 1000.0);
        let mut ages = self.age_ms.clone();
        ages.sort_by(f64::total_cmp);
        let mean = (!self.missing.is_empty()).then(|| self.missing.iter().sum::<u64>() as f64 / self.missing.len() as f64);
        json!({
            "kind": self.kind, "reads": self.reads, "stale_reads": self.stale, "stale_share": r(self.share()),
            "missing_updates": {"mean": r(mean), "max": self.missing.iter().max()},
            "age_ms": {"p50": r(quantile(&ages, 0.5)), "p99": r(quantile(&ages, 0.99)), "max": r(ages.last().copied())},
        })
    }

    fn note(&mut self, missing: u64, age_ns: Option<u64>) {
        self.reads += 1;
        if missing > 0 {
            self.stale += 1;
            self.missing.push(missing);
            if let Some(a) = age_ns {
                self.age_ms.push(a as f64 / 1e6);
            }
        }
    }
}

/// What the workload's operations look like, judged from the history itself.
fn kind(done: &[Done]) -> Option<&'static str> {
    let has = |f: &str| done.iter().any(|d| d.f == f);
    if has("transfer") {
        return None;
    }
    if has("append") {
        return Some("append");
    }
    if has("write") || has("cas") {
        return Some("register");
    }
    if has("add") {
        let read_list = done.iter().any(|d| d.f == "read" && d.ok() && d.output.is_array());
        return Some(if read_list || has("remove") { "set" } else { "counter" });
    }
    None
}

/// The staleness of a history's reads; `None` for a workload it does not apply to.
pub fn measure(ops: &[Op]) -> Option<Staleness> {
    let done = pair(ops);
    let k = kind(&done)?;
    let mut s = Staleness { kind: k, ..Staleness::default() };
    match k {
        "register" => register(&done, &mut s),
        "counter" => counter(&done, &mut s),
        _ => elements(&done, &mut s, k == "append"),
    }
    Some(s)
}

/// Acknowledged updates sorted by acknowledgement time.
fn acked<'a>(done: &'a [Done], f: &[&str]) -> Vec<&'a Done> {
    let mut v: Vec<&Done> = done.iter().filter(|d| d.ok() && f.contains(&d.f.as_str())).collect();
    v.sort_by_key(|d| d.complete);
    v
}

fn reads(done: &[Done]) -> impl Iterator<Item = &Done> {
    done.iter().filter(|d| d.f == "read" && d.ok())
}

fn register(done: &[Done], s: &mut Staleness) {
    // The value each update wrote, per key: writes write their value, a cas its second.
    let written = |d: &Done| if d.f == "cas" { d.input.get(1).cloned() } else { Some(d.input.clone()) };
    let mut by_key: HashMap<Option<Key>, Vec<&Done>> = HashMap::new();
    let mut writer: HashMap<(Option<Key>, String), &Done> = HashMap::new();
    for d in done.iter().filter(|d| d.f == "write" || d.f == "cas") {
        if d.outcome == OpType::Fail {
            continue;
        }
        if let Some(v) = written(d) {
            writer.insert((d.key.clone(), v.to_string()), d);
        }
        if d.ok() {
            by_key.entry(d.key.clone()).or_default().push(d);
        }
    }
    for v in by_key.values_mut() {
        v.sort_by_key(|d| d.complete);
    }
    for r in reads(done) {
        let Some(writes) = by_key.get(&r.key) else {
            s.note(0, None);
            continue;
        };
        // The write whose value was read must have completed before a newer one could start;
        // an initial (null) read is older than every acknowledged write.
        let since = if r.output.is_null() {
            Some(0)
        } else {
            match writer.get(&(r.key.clone(), r.output.to_string())) {
                Some(w) => w.complete,
                None => None,
            }
        };
        let Some(since) = since else {
            s.note(0, None);
            continue;
        };
        let lo = writes.partition_point(|w| w.complete.unwrap_or(0) <= since);
        let hi = writes.partition_point(|w| w.complete.unwrap_or(0) < r.invoke);
        let newer: Vec<&&Done> = writes[lo..hi.max(lo)].iter().filter(|w| r.output.is_null() || w.invoke > since).collect();
        let first = newer.iter().filter_map(|w| w.complete).min();
        s.note(newer.len() as u64, first.map(|t| r.invoke.saturating_sub(t)));
    }
}

fn counter(done: &[Done], s: &mut Staleness) {
    let adds = acked(done, &["add"]);
    let mut prefix = Vec::with_capacity(adds.len() + 1);
    let (mut sum, mut biggest) = (0i64, 0i64);
    prefix.push((0i64, 0i64));
    for a in &adds {
        let delta = a.input.as_i64().unwrap_or(0).max(0);
        sum += delta;
        biggest = biggest.max(delta);
        prefix.push((sum, biggest));
    }
    for r in reads(done) {
        let Some(value) = r.output.as_i64() else { continue };
        let n = adds.partition_point(|a| a.complete.unwrap_or(0) < r.invoke);
        let (expected, big) = prefix[n];
        let short = (expected - value).max(0);
        let missing = if short > 0 && big > 0 { ((short + big - 1) / big) as u64 } else { 0 };
        s.note(missing, None);
    }
}

fn elements(done: &[Done], s: &mut Staleness, lists: bool) {
    let f: &[&str] = if lists { &["append"] } else { &["add"] };
    let adds = acked(done, f);
    // The earliest remove invoked of each element (sets only).
    let mut removed: HashMap<String, u64> = HashMap::new();
    for d in done.iter().filter(|d| d.f == "remove") {
        let e = removed.entry(d.input.to_string()).or_insert(u64::MAX);
        *e = (*e).min(d.invoke);
    }
    for r in reads(done) {
        let Some(items) = r.output.as_array() else { continue };
        let have: HashSet<String> = items.iter().map(Value::to_string).collect();
        let n = adds.partition_point(|a| a.complete.unwrap_or(0) < r.invoke);
        let done_by = r.complete.unwrap_or(u64::MAX);
        let missed: Vec<&&Done> = adds[..n]
            .iter()
            .filter(|a| !lists || a.key == r.key)
            .filter(|a| {
                let e = a.input.to_string();
                !have.contains(&e) && removed.get(&e).map_or(true, |t| *t >= done_by)
            })
            .collect();
        let first = missed.iter().filter_map(|a| a.complete).min();
        s.note(missed.len() as u64, first.map(|t| r.invoke.saturating_sub(t)));
    }
}

/// How transfers fared while a node was down (killed or paused): the bank's measure of what a
/// blocking protocol costs. `in_doubt` counts transfers whose outcome the client never learned.
pub fn bank(ops: &[Op]) -> Option<Value> {
    let done = pair(ops);
    if !done.iter().any(|d| d.f == "transfer") {
        return None;
    }
    let nemesis: Vec<Op> = ops.iter().filter(|o| o.process == Process::Nemesis).cloned().collect();
    let end_s = ops.last().map(|o| secs(o.time)).unwrap_or(0.0);
    let down: Vec<(f64, f64)> =
        fault_periods(&nemesis, end_s).into_iter().filter(|p| p.detail.get("grudge").is_none() && p.fault != "clock" && p.fault != "slow").map(|p| (p.start_s, p.stop_s)).collect();
    let transfers: Vec<&Done> = done.iter().filter(|d| d.f == "transfer").collect();
    let served = |d: &Done| d.ok() || (d.outcome == OpType::Fail && is_semantic_refusal(d.error.as_deref()));
    let during_down: Vec<&&Done> = transfers.iter().filter(|d| down.iter().any(|(a, b)| *a <= secs(d.invoke) && secs(d.invoke) < *b)).collect();
    let blocked = during_down.iter().filter(|d| !served(d)).count();
    let in_doubt = transfers.iter().filter(|d| d.outcome == OpType::Info).count();
    // The longest stretch of the run without a served transfer completing.
    let mut times: Vec<u64> = transfers.iter().filter(|d| served(d)).filter_map(|d| d.complete).collect();
    times.sort_unstable();
    let first = ops.iter().find(|o| matches!(o.process, Process::Client(_))).map_or(0, |o| o.time);
    let last = done.iter().filter_map(|d| d.complete.or(Some(d.invoke))).max().unwrap_or(first);
    let mut prev = first;
    let mut gap = 0u64;
    for t in times.iter().copied().chain(std::iter::once(last)) {
        gap = gap.max(t.saturating_sub(prev));
        prev = t;
    }
    let mut per_node: BTreeMap<String, u64> = BTreeMap::new();
    for d in transfers.iter().filter(|d| d.outcome == OpType::Info) {
        *per_node.entry(d.node.clone().unwrap_or_default()).or_default() += 1;
    }
    Some(json!({
        "transfers": transfers.len(), "during_node_down": during_down.len(), "blocked_while_down": blocked,
        "in_doubt": in_doubt, "in_doubt_by_node": per_node, "longest_without_served_transfer_ms": gap / 1_000_000,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(ops: &mut Vec<Op>, p: u64, f: &str, key: Option<i64>, input: Value, t0: f64, t1: f64, out: OpType, output: Value) {
        let mut i = Op::new(p, OpType::Invoke, f, input.clone());
        i.time = (t0 * 1e9) as u64;
        i.key = key.map(Key::Int);
        let mut c = Op::new(p, out, f, if f == "read" { output } else { input });
        c.time = (t1 * 1e9) as u64;
        c.key = key.map(Key::Int);
        ops.push(i);
        ops.push(c);
    }

    #[test]
    fn register_reads_are_stale_when_a_newer_write_was_acknowledged() {
        let mut ops = Vec::new();
        call(&mut ops, 0, "write", Some(1), json!(10), 0.0, 0.1, OpType::Ok, Value::Null);
        call(&mut ops, 0, "write", Some(1), json!(11), 0.2, 0.3, OpType::Ok, Value::Null);
        // Fresh: 11 is the newest.
        call(&mut ops, 1, "read", Some(1), Value::Null, 0.5, 0.6, OpType::Ok, json!(11));
        // Stale: 10 was replaced by 11, acknowledged at 0.3; the read began at 0.8.
        call(&mut ops, 1, "read", Some(1), Value::Null, 0.8, 0.9, OpType::Ok, json!(10));
        // A concurrent write does not make a read stale.
        call(&mut ops, 2, "write", Some(1), json!(12), 1.0, 1.5, OpType::Ok, Value::Null);
        call(&mut ops, 1, "read", Some(1), Value::Null, 1.1, 1.2, OpType::Ok, json!(11));
        // The initial value after writes were acknowledged: stale, missing all three.
        call(&mut ops, 1, "read", Some(1), Value::Null, 2.0, 2.1, OpType::Ok, Value::Null);
        // Another key is untouched: fresh.
        call(&mut ops, 1, "read", Some(2), Value::Null, 2.2, 2.3, OpType::Ok, Value::Null);
        let s = measure(&ops).unwrap();
        assert_eq!(s.kind, "register");
        assert_eq!((s.reads, s.stale), (5, 2));
        assert_eq!(s.missing, vec![1, 3]);
        assert!((s.age_ms[0] - 500.0).abs() < 1e-6, "{:?}", s.age_ms);
    }

    #[test]
    fn counter_reads_that_fall_short_miss_at_least_short_over_the_largest_delta() {
        let mut ops = Vec::new();
        call(&mut ops, 0, "add", None, json!(2), 0.0, 0.1, OpType::Ok, Value::Null);
        call(&mut ops, 0, "add", None, json!(5), 0.2, 0.3, OpType::Ok, Value::Null);
        call(&mut ops, 0, "add", None, json!(1), 0.4, 0.5, OpType::Info, Value::Null);
        call(&mut ops, 1, "read", None, Value::Null, 1.0, 1.1, OpType::Ok, json!(7));
        call(&mut ops, 1, "read", None, Value::Null, 1.2, 1.3, OpType::Ok, json!(8));
        call(&mut ops, 1, "read", None, Value::Null, 1.4, 1.5, OpType::Ok, json!(1));
        let s = measure(&ops).unwrap();
        assert_eq!(s.kind, "counter");
        assert_eq!((s.reads, s.stale, s.missing.clone()), (3, 1, vec![2]));
    }

    #[test]
    fn set_reads_miss_acknowledged_adds_but_not_removed_elements() {
        let mut ops = Vec::new();
        call(&mut ops, 0, "add", None, json!(1), 0.0, 0.1, OpType::Ok, Value::Null);
        call(&mut ops, 0, "add", None, json!(2), 0.2, 0.3, OpType::Ok, Value::Null);
        call(&mut ops, 0, "add", None, json!(3), 0.4, 0.5, OpType::Ok, Value::Null);
        call(&mut ops, 2, "remove", None, json!(3), 0.6, 0.7, OpType::Ok, Value::Null);
        call(&mut ops, 1, "read", None, Value::Null, 1.0, 1.1, OpType::Ok, json!([1]));
        call(&mut ops, 1, "read", None, Value::Null, 1.2, 1.3, OpType::Ok, json!([1, 2]));
        let s = measure(&ops).unwrap();
        assert_eq!(s.kind, "set");
        assert_eq!((s.reads, s.stale, s.missing.clone()), (2, 1, vec![1]));
        assert!((s.age_ms[0] - 700.0).abs() < 1e-6);
    }

    #[test]
    fn list_reads_count_missing_appends_of_their_key() {
        let mut ops = Vec::new();
        call(&mut ops, 0, "append", Some(1), json!(1), 0.0, 0.1, OpType::Ok, Value::Null);
        call(&mut ops, 0, "append", Some(2), json!(2), 0.2, 0.3, OpType::Ok, Value::Null);
        call(&mut ops, 0, "append", Some(1), json!(3), 0.4, 0.5, OpType::Ok, Value::Null);
        call(&mut ops, 1, "read", Some(1), Value::Null, 1.0, 1.1, OpType::Ok, json!([1]));
        call(&mut ops, 1, "read", Some(2), Value::Null, 1.0, 1.1, OpType::Ok, json!([2]));
        let s = measure(&ops).unwrap();
        assert_eq!((s.kind, s.reads, s.stale, s.missing.clone()), ("append", 2, 1, vec![1]));
    }

    #[test]
    fn bank_counts_transfers_blocked_while_a_node_was_down() {
        let mut ops = Vec::new();
        call(&mut ops, 0, "transfer", None, json!({"from": 0, "to": 1, "amount": 1}), 0.0, 0.1, OpType::Ok, Value::Null);
        let mut kill = Op::new(0, OpType::Info, "kill", json!({"fault": "kill", "phase": "start", "nodes": ["n1"]}));
        kill.process = Process::Nemesis;
        kill.time = 1_000_000_000;
        ops.push(kill);
        call(&mut ops, 1, "transfer", None, json!({"from": 0, "to": 1, "amount": 1}), 1.1, 2.1, OpType::Info, Value::Null);
        let mut restart = Op::new(0, OpType::Info, "restart", json!({"fault": "kill", "phase": "stop"}));
        restart.process = Process::Nemesis;
        restart.time = 3_000_000_000;
        ops.push(restart);
        call(&mut ops, 2, "transfer", None, json!({"from": 0, "to": 1, "amount": 1}), 3.5, 3.6, OpType::Ok, Value::Null);
        let b = bank(&ops).unwrap();
        assert_eq!(b["transfers"], 3);
        assert_eq!(b["blocked_while_down"], 1);
        assert_eq!(b["in_doubt"], 1);
        assert_eq!(b["longest_without_served_transfer_ms"], 3500);
        assert!(measure(&ops).is_none(), "no read staleness for the bank");
    }
}
