//! Final reads: after the faults healed and the cluster went quiet, every node is read once
//! more (`Workload::final_reads`), recorded with `"final": true`. The convergence checker
//! judges only these. When it is one of the checkers, rounds of final reads repeat until
//! every node answers the same or [`CONVERGE_BUDGET`] passes; the checker keeps each node's
//! last read, and the time the nodes took to agree goes into the results.
//!
//! Local reads (`OpSpec::local`, the append workload's; they come last in the workload's list)
//! are made after the others: each node's own applied state, recorded with `"final": true` and
//! `"local": true` for the agreement checker. Their rounds repeat until the replicas that
//! answered hold the same values (a follower may still be applying what the leader committed),
//! or [`CONVERGE_BUDGET`] passes. A node that does not serve local reads answers an error: it
//! is left out of that comparison and is not a missing final read (the checker says unknown).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use faultline_workloads::{Client, OpSpec};
use serde_json::Value;

use super::clients::perform;
use super::record::Recorder;

/// How long the nodes may take to agree after healing.
pub const CONVERGE_BUDGET: Duration = Duration::from_secs(10);
/// Pause between two rounds of final reads.
const ROUND_PAUSE: Duration = Duration::from_millis(250);

/// What the final reads found.
#[derive(Debug, Default)]
pub struct Finals {
    /// Per node: the value of each final read (in `final_reads` order); `None` for a read that
    /// did not succeed.
    pub values: BTreeMap<String, Vec<Option<Value>>>,
    /// Milliseconds from the first round to the round in which every node agreed; `None` when
    /// convergence was not awaited or never came.
    pub time_to_converge_ms: Option<u64>,
    pub rounds: u32,
    /// Per node: the value of each local read (in order), like `values`.
    pub local_values: BTreeMap<String, Vec<Option<Value>>>,
    /// Rounds of local reads made, and whether the replicas that answered ended up agreeing.
    pub local_rounds: u32,
    pub local_agreed: bool,
}

impl Finals {
    /// Nodes with a final read that never succeeded.
    pub fn missing(&self) -> Vec<String> {
        self.values.iter().filter(|(_, row)| row.iter().any(Option::is_none)).map(|(id, _)| id.clone()).collect()
    }
}

/// Sorts lists inside a value, so two nodes holding the same set in different orders agree.
pub fn normalise(v: &Value) -> Value {
    match v {
        Value::Array(items) => {
            let mut items: Vec<Value> = items.iter().map(normalise).collect();
            items.sort_by_key(|i| i.to_string());
            Value::Array(items)
        }
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), normalise(v))).collect()),
        other => other.clone(),
    }
}

/// Whether every node read every value, and all nodes read the same.
pub fn agree(values: &BTreeMap<String, Vec<Option<Value>>>) -> bool {
    let mut rows = values.values().map(|row| row.iter().map(|v| v.as_ref().map(normalise)).collect::<Vec<_>>());
    let Some(first) = rows.next() else { return false };
    first.iter().all(Option::is_some) && rows.all(|r| r == first)
}

/// Whether the nodes that answered every local read hold the same values (at least one did).
pub fn settled(values: &BTreeMap<String, Vec<Option<Value>>>) -> bool {
    let mut complete = values.values().filter(|row| row.iter().all(Option::is_some));
    let Some(first) = complete.next() else { return false };
    complete.all(|r| r == first)
}

/// One round: every node, every read, recorded. Process numbers start at `*next_process`.
async fn round(rec: &Recorder, nodes: &[(String, SocketAddr)], reads: &[OpSpec], timeout: Duration, next_process: &mut u64) -> BTreeMap<String, Vec<Option<Value>>> {
    let mut out = BTreeMap::new();
    for (id, addr) in nodes {
        let mut process = *next_process;
        *next_process += 1;
        let mut client: Option<Client> = None;
        let mut row = Vec::with_capacity(reads.len());
        for spec in reads {
            let done = perform(rec, &mut client, *addr, id, process, spec, timeout, true).await;
            row.push(done.ok);
            if done.retire {
                process = *next_process;
                *next_process += 1;
            }
        }
        out.insert(id.clone(), row);
    }
    out
}

/// Keeps each node's newest successful read of each value (a later round that failed does not
/// erase an earlier answer).
fn merge(into: &mut BTreeMap<String, Vec<Option<Value>>>, round: BTreeMap<String, Vec<Option<Value>>>) {
    for (id, row) in round {
        let old = into.entry(id).or_insert_with(|| vec![None; row.len()]);
        for (slot, v) in old.iter_mut().zip(row) {
            if v.is_some() {
                *slot = v;
            }
        }
    }
}

/// Performs the final reads; `converge` repeats rounds until the nodes agree, otherwise rounds
/// repeat only until every read has succeeded once.
pub async fn final_reads(rec: &Recorder, nodes: &[(String, SocketAddr)], reads: &[OpSpec], timeout: Duration, first_process: u64, converge: bool) -> Finals {
    let (local, reads): (Vec<OpSpec>, Vec<OpSpec>) = reads.iter().cloned().partition(|r| r.local);
    let mut next_process = first_process;
    let mut finals = shared_reads(rec, nodes, &reads, timeout, &mut next_process, converge).await;
    if !local.is_empty() {
        local_reads(rec, nodes, &local, timeout, &mut next_process, &mut finals).await;
    }
    finals
}

/// Rounds of local reads until the replicas that answer agree, or the budget passes.
async fn local_reads(rec: &Recorder, nodes: &[(String, SocketAddr)], reads: &[OpSpec], timeout: Duration, next_process: &mut u64, finals: &mut Finals) {
    let started = Instant::now();
    loop {
        let values = round(rec, nodes, reads, timeout, next_process).await;
        let answered = values.values().flatten().any(Option::is_some);
        merge(&mut finals.local_values, values);
        finals.local_rounds += 1;
        finals.local_agreed = settled(&finals.local_values);
        // No answer at all: the nodes do not serve local reads; asking again changes nothing.
        if finals.local_agreed || !answered || started.elapsed() + ROUND_PAUSE >= CONVERGE_BUDGET {
            return;
        }
        tokio::time::sleep(ROUND_PAUSE).await;
    }
}

/// The final reads through the protocol (every read but the local ones).
async fn shared_reads(rec: &Recorder, nodes: &[(String, SocketAddr)], reads: &[OpSpec], timeout: Duration, next_process: &mut u64, converge: bool) -> Finals {
    let started = Instant::now();
    let mut finals = Finals::default();
    loop {
        let values = round(rec, nodes, reads, timeout, next_process).await;
        merge(&mut finals.values, values);
        finals.rounds += 1;
        if converge && agree(&finals.values) {
            finals.time_to_converge_ms = Some(started.elapsed().as_millis() as u64);
            return finals;
        }
        // A read that failed (a leader still being elected after the heal) is retried within
        // the budget: a missing final read makes the run unable to vouch for anything.
        if !converge && finals.missing().is_empty() {
            return finals;
        }
        if started.elapsed() + ROUND_PAUSE >= CONVERGE_BUDGET {
            return finals;
        }
        tokio::time::sleep(ROUND_PAUSE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn agreement_ignores_set_order_and_needs_every_read() {
        let mut v = BTreeMap::new();
        v.insert("n1".to_string(), vec![Some(json!([1, 2, 3]))]);
        v.insert("n2".to_string(), vec![Some(json!([3, 1, 2]))]);
        assert!(agree(&v));
        v.insert("n3".to_string(), vec![Some(json!([1, 2]))]);
        assert!(!agree(&v));
        v.insert("n3".to_string(), vec![None]);
        assert!(!agree(&v));
        assert!(!agree(&BTreeMap::new()));
    }

    #[test]
    fn local_reads_settle_among_the_nodes_that_answer() {
        let mut v = BTreeMap::new();
        v.insert("n1".to_string(), vec![Some(json!([1, 2])), Some(json!([3]))]);
        v.insert("n2".to_string(), vec![Some(json!([1])), Some(json!([3]))]);
        assert!(!settled(&v), "n2 lags: not settled yet");
        v.insert("n2".to_string(), vec![Some(json!([1, 2])), Some(json!([3]))]);
        // A node that does not serve local reads is left out.
        v.insert("n3".to_string(), vec![None, None]);
        assert!(settled(&v));
        // Lists are compared as lists: order matters (a log order).
        v.insert("n2".to_string(), vec![Some(json!([2, 1])), Some(json!([3]))]);
        assert!(!settled(&v));
        v.clear();
        v.insert("n1".to_string(), vec![None]);
        assert!(!settled(&v), "nobody answered");
    }
}
