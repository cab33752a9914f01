//! The learner: chosen values, applied in slot order to the replicated state machine.
//!
//! Values arrive out of order (from the leader's `Learn`, from catch-up answers); a slot is
//! applied once every slot before it is. Applied values stay in memory until the next snapshot,
//! so the node can serve them to lagging peers and check that a slot never changes its value.

use super::types::{Batch, Cmd, Slot, Snapshot};
use crate::core::{Reply, Request};
use crate::sm::StateMachine;
use std::collections::BTreeMap;

#[derive(Debug)]
pub struct Learner {
    pub sm: StateMachine,
    /// Every slot up to this one is applied.
    pub applied: Slot,
    /// Every slot up to this one is folded into the last snapshot and forgotten.
    pub snapshot_slot: Slot,
    /// Chosen values of slots after `snapshot_slot`, applied or not.
    pub chosen: BTreeMap<Slot, Batch>,
    workload: String,
}

impl Learner {
    pub fn new(workload: &str, snapshot: Option<Snapshot>) -> Learner {
        let (sm, slot) = snapshot.map(|s| (s.state, s.slot)).unwrap_or_default();
        Learner { sm, applied: slot, snapshot_slot: slot, chosen: BTreeMap::new(), workload: workload.to_string() }
    }

    /// Records that `value` is chosen for `slot`; returns whether it was new. Panics if the
    /// slot was known with another value: that is a broken agreement, never to be papered over.
    pub fn learn(&mut self, slot: Slot, value: Batch) -> bool {
        if slot <= self.snapshot_slot {
            return false;
        }
        match self.chosen.get(&slot) {
            Some(known) => {
                crate::safety_assert!(*known == value, "chosen value of slot {slot} would change: {known:?} then {value:?}");
                false
            }
            None => {
                self.chosen.insert(slot, value);
                true
            }
        }
    }

    pub fn is_chosen(&self, slot: Slot) -> bool {
        slot <= self.snapshot_slot || self.chosen.contains_key(&slot)
    }

    /// Applies the next slot if it is chosen: its slot and each command with its reply.
    pub fn apply_next(&mut self) -> Option<(Slot, Vec<(Cmd, Reply)>)> {
        let slot = self.applied + 1;
        let batch = self.chosen.get(&slot)?;
        let batch = batch.clone();
        let mut out = Vec::with_capacity(batch.len());
        for cmd in batch {
            let reply = self.execute(&cmd.request);
            out.push((cmd, reply));
        }
        self.applied = slot;
        Some((slot, out))
    }

    /// Runs one command on the state machine and returns its reply.
    pub fn execute(&mut self, request: &Request) -> Reply {
        match request {
            // A keyless read means the whole counter or set, depending on the workload.
            Request::Read { key: None } => self.sm.read_for(&self.workload),
            request => self.sm.apply(request),
        }
    }

    /// This replica's applied state for `key` (a local read), without going through the log.
    pub fn local_read(&self, key: Option<&serde_json::Value>) -> Reply {
        self.sm.local_read(key, &self.workload)
    }

    /// The highest slot known chosen (applied or not).
    pub fn max_chosen(&self) -> Slot {
        self.chosen.keys().next_back().copied().unwrap_or(0).max(self.applied)
    }

    /// A snapshot of everything applied.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot { slot: self.applied, state: self.sm.clone() }
    }

    /// Forgets the applied values up to `applied` after a snapshot of them was saved.
    pub fn compact(&mut self) {
        self.snapshot_slot = self.applied;
        self.chosen = self.chosen.split_off(&(self.applied + 1));
    }

    /// Replaces the state with a newer snapshot from a peer; returns false if it is not newer.
    pub fn install(&mut self, snap: Snapshot) -> bool {
        if snap.slot <= self.applied {
            return false;
        }
        self.sm = snap.state;
        self.applied = snap.slot;
        self.snapshot_slot = snap.slot;
        self.chosen = self.chosen.split_off(&(snap.slot + 1));
        true
    }

    /// Chosen values from `from` on, at most `limit` of them, for a catch-up answer.
    pub fn entries_from(&self, from: Slot, limit: usize) -> Vec<(Slot, Batch)> {
        self.chosen.range(from..).take(limit).map(|(s, v)| (*s, v.clone())).collect()
    }
}
