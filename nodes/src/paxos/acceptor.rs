//! The acceptor: the durable memory of Paxos.
//!
//! An acceptor remembers the highest ballot it promised and, per slot, the highest-ballot
//! proposal it accepted. Both must reach disk before the reply that reveals them leaves the node
//! (the caller persists, the runtime fsyncs before sending). The logic here is pure and generic
//! over the value type, so the stateright model in `tests/paxos_model.rs` checks these very
//! functions with small values.
//!
//! Slots up to `compacted` are chosen and applied into a snapshot; their accepted values are
//! forgotten, and the acceptor refuses to accept there again (see [`Acceptor::on_accept`]).

use super::types::{Ballot, Slot};
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Acceptor<V> {
    pub promised: Ballot,
    pub accepted: BTreeMap<Slot, (Ballot, V)>,
    pub compacted: Slot,
    /// The known bug `ballot-ge` (off unless the node was started with it).
    pub round_only: bool,
}

/// The answer to a prepare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrepareOutcome<V> {
    /// Promised; `changed` when the promise is new and must be persisted first. `accepted`
    /// holds every accepted proposal at or after the prepare's first slot.
    Promise { changed: bool, accepted: Vec<(Slot, Ballot, V)> },
    /// Refused: the acceptor promised this higher ballot.
    Nack(Ballot),
}

/// The answer to an accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcceptOutcome {
    /// Accepted; the new (slot, ballot, value) must be persisted, and the promise too when
    /// `promise_changed`.
    Accepted { promise_changed: bool },
    Nack(Ballot),
    /// The slot is compacted (chosen long ago): nothing to record, nothing to answer.
    Compacted,
}

impl<V: Clone> Acceptor<V> {
    pub fn new() -> Self {
        Acceptor { promised: Ballot::ZERO, accepted: BTreeMap::new(), compacted: 0, round_only: false }
    }

    /// Whether `ballot` is below the promise and must be refused.
    fn outranked(&self, ballot: Ballot) -> bool {
        if self.round_only {
            // BUG(ballot-ge): rounds alone, compared with >=: two proposers of one round both pass.
            return ballot.round < self.promised.round;
        }
        ballot < self.promised
    }

    /// Phase 1b. A prepare with the ballot already promised is answered again (the proposer
    /// may have lost the first promise); a lower one is refused.
    pub fn on_prepare(&mut self, ballot: Ballot, from_slot: Slot) -> PrepareOutcome<V> {
        if self.outranked(ballot) {
            return PrepareOutcome::Nack(self.promised);
        }
        let changed = ballot != self.promised;
        self.promised = ballot;
        let accepted = self
            .accepted
            .range(from_slot..)
            .map(|(slot, (b, v))| (*slot, *b, v.clone()))
            .collect();
        PrepareOutcome::Promise { changed, accepted }
    }

    /// Phase 2b: accept unless a higher ballot was promised. Accepting also promises the ballot,
    /// so a later prepare of a lower ballot is refused.
    pub fn on_accept(&mut self, ballot: Ballot, slot: Slot, value: V) -> AcceptOutcome {
        if self.outranked(ballot) {
            return AcceptOutcome::Nack(self.promised);
        }
        if slot <= self.compacted {
            return AcceptOutcome::Compacted;
        }
        let promise_changed = ballot != self.promised;
        self.promised = ballot;
        if let Some((old, _)) = self.accepted.get(&slot) {
            // Ballots an acceptor accepts for one slot only grow: it promised `old` or more.
            crate::safety_assert!(*old <= ballot, "acceptor accepted ballot {old:?} then lower {ballot:?} in slot {slot}");
        }
        self.accepted.insert(slot, (ballot, value));
        AcceptOutcome::Accepted { promise_changed }
    }

    /// Forgets the accepted values of every slot up to `upto`, all of them chosen and applied.
    pub fn compact(&mut self, upto: Slot) {
        if upto <= self.compacted {
            return;
        }
        self.compacted = upto;
        self.accepted = self.accepted.split_off(&(upto + 1));
    }
}

/// What a new leader must propose per slot given a quorum of promises: for each slot, the value
/// of the highest ballot any promiser accepted (Paxos Made Simple, 2.2, P2c). Slots no promiser
/// accepted are free; the caller fills those below its next slot with no-ops.
pub fn merge_promises<V: Clone>(
    promises: impl IntoIterator<Item = (Slot, Ballot, V)>,
) -> BTreeMap<Slot, (Ballot, V)> {
    let mut best: BTreeMap<Slot, (Ballot, V)> = BTreeMap::new();
    for (slot, ballot, value) in promises {
        match best.get(&slot) {
            Some((b, _)) if *b >= ballot => {}
            _ => {
                best.insert(slot, (ballot, value));
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promise_then_refuse_lower() {
        let mut a: Acceptor<u8> = Acceptor::new();
        assert!(matches!(a.on_prepare(Ballot::new(2, 0), 1), PrepareOutcome::Promise { changed: true, .. }));
        assert!(matches!(a.on_prepare(Ballot::new(2, 0), 1), PrepareOutcome::Promise { changed: false, .. }));
        assert_eq!(a.on_prepare(Ballot::new(1, 2), 1), PrepareOutcome::Nack(Ballot::new(2, 0)));
        assert_eq!(a.on_accept(Ballot::new(1, 2), 1, 7), AcceptOutcome::Nack(Ballot::new(2, 0)));
        assert_eq!(a.on_accept(Ballot::new(2, 0), 1, 7), AcceptOutcome::Accepted { promise_changed: false });
        assert_eq!(a.on_accept(Ballot::new(3, 1), 2, 8), AcceptOutcome::Accepted { promise_changed: true });
        match a.on_prepare(Ballot::new(4, 0), 2) {
            PrepareOutcome::Promise { accepted, .. } => assert_eq!(accepted, vec![(2, Ballot::new(3, 1), 8)]),
            other => panic!("{other:?}"),
        }
        a.compact(1);
        assert_eq!(a.on_accept(Ballot::new(4, 0), 1, 9), AcceptOutcome::Compacted);
        assert_eq!(a.accepted.len(), 1);
    }

    #[test]
    fn merge_takes_highest_ballot() {
        let merged = merge_promises(vec![
            (1, Ballot::new(1, 0), 'a'),
            (1, Ballot::new(3, 1), 'b'),
            (1, Ballot::new(2, 2), 'c'),
            (4, Ballot::new(1, 2), 'd'),
        ]);
        assert_eq!(merged[&1], (Ballot::new(3, 1), 'b'));
        assert_eq!(merged[&4], (Ballot::new(1, 2), 'd'));
    }
}
