//! What Raft keeps on disk and how a restart rebuilds the node from it.
//!
//! - file `meta`: `{"term", "voted_for", "boot"}`, saved whenever the term or vote changes
//!   (before any message of that step leaves: the runtime persists first);
//! - file `snapshot`: `{"index", "term", "state"}`, the state machine up to `index`;
//! - log `log`: one JSON record per entry. Appends extend it; truncation (a conflicting suffix,
//!   §5.3) and compaction rewrite it whole. The runtime writes files before logs within a batch,
//!   so a snapshot is always durable before the entries it covers are dropped.
//!
//! Recovery is defensive about what it reads: entries the snapshot already covers are skipped,
//! and a record that does not continue the log ends it (with a warning).

use super::{Entry, Msg, Raft};
use crate::core::{Ctx, NodeId, Storage};
use crate::sm::StateMachine;
use serde::{Deserialize, Serialize};

pub const META: &str = "meta";
pub const SNAPSHOT: &str = "snapshot";
pub const LOG: &str = "log";

#[derive(Serialize, Deserialize)]
struct Meta {
    term: u64,
    voted_for: Option<NodeId>,
    boot: u64,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    index: u64,
    term: u64,
    state: StateMachine,
}

pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    serde_json::to_vec(entry).expect("entries serialise")
}

impl Raft {
    /// Rebuilds term, vote, snapshot and log from what survived.
    pub(super) fn restore(&mut self, storage: &Storage) {
        if let Some(meta) = storage.file(META).and_then(|b| serde_json::from_slice::<Meta>(b).ok()) {
            self.term = meta.term;
            self.voted_for = meta.voted_for;
            self.boot = meta.boot;
        }
        if let Some(snap) = storage.file(SNAPSHOT).and_then(|b| serde_json::from_slice::<Snapshot>(b).ok()) {
            self.log.reset(snap.index, snap.term);
            self.sm = snap.state;
            self.snapshot_sm = self.sm.clone();
            self.commit = snap.index;
            self.applied = snap.index;
        }
        for record in storage.log(LOG) {
            let Ok(entry) = serde_json::from_slice::<Entry>(record) else {
                tracing::warn!("undecodable log record; the log ends here");
                break;
            };
            if entry.index <= self.log.snap_index {
                continue;
            }
            if entry.index <= self.log.last_index() {
                self.log.truncate_from(entry.index);
            }
            if entry.index != self.log.last_index() + 1 {
                tracing::warn!(index = entry.index, "gap in the log; the log ends here");
                break;
            }
            self.log.push(entry);
        }
    }

    pub(super) fn save_meta(&self, ctx: &mut Ctx<Msg>) {
        let meta = Meta { term: self.term, voted_for: self.voted_for.clone(), boot: self.boot };
        ctx.save(META, serde_json::to_vec(&meta).expect("meta serialises"));
    }

    /// Appends an entry to the log, durably.
    pub(super) fn append_entry(&mut self, ctx: &mut Ctx<Msg>, entry: Entry) {
        ctx.append(LOG, encode_entry(&entry));
        self.log.push(entry);
    }

    /// Rewrites the durable log to exactly the in-memory one (after truncation or compaction).
    pub(super) fn rewrite_log(&self, ctx: &mut Ctx<Msg>) {
        ctx.rewrite(LOG, self.log.entries().iter().map(encode_entry).collect());
    }

    /// Snapshots the applied state and drops the entries it covers (§7).
    pub(super) fn compact(&mut self, ctx: &mut Ctx<Msg>) {
        let index = self.applied;
        let term = self.log.term_at(index).expect("applied entries are in the log");
        self.save_snapshot(ctx, index, term);
        self.log.compact(index, term);
        self.snapshot_sm = self.sm.clone();
        self.rewrite_log(ctx);
    }

    pub(super) fn save_snapshot(&self, ctx: &mut Ctx<Msg>, index: u64, term: u64) {
        let snap = Snapshot { index, term, state: self.sm.clone() };
        ctx.save(SNAPSHOT, serde_json::to_vec(&snap).expect("snapshot serialises"));
    }
}
