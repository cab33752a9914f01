//! What a Paxos node keeps on disk, and how it comes back from it.
//!
//! Three durable objects, all JSON:
//! - `paxos-meta` (a saved file): the promised ballot and the incarnation counter;
//! - `paxos-accepts` (an append-only log): one record per accepted proposal (slot, ballot,
//!   value); a later record for a slot supersedes an earlier one;
//! - `paxos-snapshot` (a saved file): the state machine after applying every slot up to its
//!   `slot`; the accept log is rewritten without those slots right after it is saved.
//!
//! Recovery never panics: an unreadable object is reported and skipped, as a torn record is.

use super::acceptor::Acceptor;
use super::types::{AcceptedEntry, Ballot, Batch, Snapshot};
use crate::core::Storage;
use serde::{Deserialize, Serialize};

pub const META_FILE: &str = "paxos-meta";
pub const ACCEPT_LOG: &str = "paxos-accepts";
pub const SNAPSHOT_FILE: &str = "paxos-snapshot";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub promised: Ballot,
    pub incarnation: u64,
}

/// The state rebuilt from storage.
#[derive(Debug, Default)]
pub struct Recovered {
    pub acceptor: Acceptor<Batch>,
    pub incarnation: u64,
    pub snapshot: Option<Snapshot>,
    /// Problems met on the way (skipped records), for the log.
    pub warnings: Vec<String>,
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain data types cannot fail (no maps with non-string keys).
    serde_json::to_vec(value).expect("paxos durable state serialises")
}

pub fn recover(storage: &Storage) -> Recovered {
    let mut out = Recovered { acceptor: Acceptor::new(), ..Default::default() };
    if let Some(bytes) = storage.file(META_FILE) {
        match serde_json::from_slice::<Meta>(bytes) {
            Ok(meta) => {
                out.acceptor.promised = meta.promised;
                out.incarnation = meta.incarnation;
            }
            Err(e) => out.warnings.push(format!("{META_FILE}: {e}")),
        }
    }
    if let Some(bytes) = storage.file(SNAPSHOT_FILE) {
        match serde_json::from_slice::<Snapshot>(bytes) {
            Ok(snap) => {
                out.acceptor.compacted = snap.slot;
                out.snapshot = Some(snap);
            }
            Err(e) => out.warnings.push(format!("{SNAPSHOT_FILE}: {e}")),
        }
    }
    for (i, record) in storage.log(ACCEPT_LOG).iter().enumerate() {
        match serde_json::from_slice::<AcceptedEntry>(record) {
            // A crash between saving a snapshot and rewriting the log leaves compacted records.
            Ok(e) if e.slot <= out.acceptor.compacted => {}
            Ok(e) => {
                let newer = !matches!(out.acceptor.accepted.get(&e.slot), Some((b, _)) if *b > e.ballot);
                if newer {
                    out.acceptor.accepted.insert(e.slot, (e.ballot, e.value));
                }
                // Accepting a ballot promised it; a lost meta save must not lower the promise.
                out.acceptor.promised = out.acceptor.promised.max(e.ballot);
            }
            Err(e) => out.warnings.push(format!("{ACCEPT_LOG} record {i}: {e}")),
        }
    }
    out
}

/// The accept-log records that survive a compaction.
pub fn accept_records(acceptor: &Acceptor<Batch>) -> Vec<Vec<u8>> {
    acceptor
        .accepted
        .iter()
        .map(|(slot, (ballot, value))| encode(&AcceptedEntry { slot: *slot, ballot: *ballot, value: value.clone() }))
        .collect()
}
