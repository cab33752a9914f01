//! The durable log of a two-phase-commit node and its replay.
//!
//! Everything a node promised is appended before the promise leaves (the runtime fsyncs a step's
//! records before sending its messages): the coordinator's `Begin` and commit `Decided`, the
//! participant's `Prepared` (with its writes) and each `Outcome`. Aborts are not logged by the
//! coordinator: the protocol is *presumed abort*, a coordinator that has no decision for a
//! transaction answers "abort". The log is compacted into one `Snapshot` record now and then.

use super::types::{Account, Balances, Outcome, Txn, TxnId};
use crate::core::{NodeId, Storage};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const LOG: &str = "twopc";

/// One record of the log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Rec {
    /// The coordinator's incarnation; transaction ids of this run use it.
    Epoch(u64),
    /// The coordinator started a transaction with writes.
    Begin { txn: Txn },
    /// The coordinator decided to commit (aborts are presumed).
    Decided { id: TxnId, order: Vec<NodeId>, tree: bool },
    /// Every participant acknowledged the decision: the coordinator may forget it.
    Done { id: TxnId },
    /// This node voted yes and holds locks; `writes` are its deltas to apply on commit.
    Prepared { txn: Txn, writes: Balances },
    Outcome { id: TxnId, outcome: Outcome, writes: Balances },
    Snapshot(Snapshot),
}

/// The whole durable state at one point, replacing the log's earlier records.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub epoch: u64,
    pub balances: BTreeMap<Account, i64>,
    pub prepared: Vec<(Txn, Balances)>,
    pub decided: Vec<(TxnId, Outcome)>,
    /// Commit decisions not yet acknowledged by everyone: (id, order, tree).
    pub commits: Vec<(TxnId, Vec<NodeId>, bool)>,
    /// Transfers begun and not decided.
    pub begun: Vec<Txn>,
}

impl Rec {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("log records always serialize")
    }
}

/// What replaying the log yields (the same shape as a snapshot).
pub fn replay(storage: &Storage, initial: Balances) -> (Snapshot, Vec<String>) {
    let mut s = Snapshot { balances: initial, ..Default::default() };
    let mut prepared: BTreeMap<TxnId, (Txn, Balances)> = BTreeMap::new();
    let mut decided: Vec<(TxnId, Outcome)> = Vec::new();
    let mut commits: BTreeMap<TxnId, (Vec<NodeId>, bool)> = BTreeMap::new();
    let mut begun: BTreeMap<TxnId, Txn> = BTreeMap::new();
    let mut errors = Vec::new();
    for (i, bytes) in storage.log(LOG).iter().enumerate() {
        let rec: Rec = match serde_json::from_slice(bytes) {
            Ok(r) => r,
            Err(e) => {
                // A record we cannot read is skipped rather than aborting recovery: the runtime
                // already drops torn tails, so this only happens after a format change.
                errors.push(format!("twopc log record {i}: {e}"));
                continue;
            }
        };
        match rec {
            Rec::Epoch(e) => s.epoch = s.epoch.max(e),
            Rec::Begin { txn } => {
                begun.insert(txn.id.clone(), txn);
            }
            Rec::Decided { id, order, tree } => {
                begun.remove(&id);
                commits.insert(id, (order, tree));
            }
            Rec::Done { id } => {
                begun.remove(&id);
                commits.remove(&id);
            }
            Rec::Prepared { txn, writes } => {
                prepared.insert(txn.id.clone(), (txn, writes));
            }
            Rec::Outcome { id, outcome, writes } => {
                prepared.remove(&id);
                if outcome == Outcome::Applied {
                    for (a, d) in writes {
                        *s.balances.entry(a).or_insert(0) += d;
                    }
                }
                decided.push((id, outcome));
            }
            Rec::Snapshot(snap) => {
                s.epoch = s.epoch.max(snap.epoch);
                s.balances = snap.balances;
                prepared = snap.prepared.into_iter().map(|(t, w)| (t.id.clone(), (t, w))).collect();
                decided = snap.decided;
                commits = snap.commits.into_iter().map(|(id, o, t)| (id, (o, t))).collect();
                begun = snap.begun.into_iter().map(|t| (t.id.clone(), t)).collect();
            }
        }
    }
    s.prepared = prepared.into_values().collect();
    s.decided = decided;
    s.commits = commits.into_iter().map(|(id, (o, t))| (id, o, t)).collect();
    s.begun = begun.into_values().collect();
    (s, errors)
}
