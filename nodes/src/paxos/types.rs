//! The vocabulary of Multi-Paxos: ballots, commands, the values decided per slot, and the
//! messages nodes exchange.
//!
//! A slot's value is a *batch* of client commands, so one round of phase 2 decides many
//! commands at once; the empty batch is the no-op a new leader uses to fill holes in the log.

use crate::core::Request;
use serde::{Deserialize, Serialize};

/// A log position; slot 0 is never used, so `applied == 0` means nothing applied yet.
pub type Slot = u64;

/// A proposal number: ordered by round, then by the proposer's index in the sorted member list,
/// so two proposers never share a ballot. `Ballot::ZERO` is "no ballot yet".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    pub round: u64,
    pub node: u32,
}

impl Ballot {
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };

    pub fn new(round: u64, node: u32) -> Ballot {
        Ballot { round, node }
    }
}

/// Names one client command for the node that received it: the node's index, its incarnation
/// (bumped at every restart, so a command from before a crash never matches a new one) and a
/// sequence number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CmdId {
    pub node: u32,
    pub incarnation: u64,
    pub seq: u64,
}

/// One client command as it travels through the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cmd {
    pub id: CmdId,
    pub request: Request,
}

/// The value of one slot: the commands it decides, in order. Empty is a no-op.
pub type Batch = Vec<Cmd>;

/// An accepted proposal an acceptor reports in its promise.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AcceptedEntry {
    pub slot: Slot,
    pub ballot: Ballot,
    pub value: Batch,
}

/// Messages between nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Msg {
    /// Phase 1a: promise `ballot` for every slot from `from_slot` on.
    Prepare { ballot: Ballot, from_slot: Slot },
    /// Phase 1b: the promise, with every value accepted at or after `from_slot`. `compacted` is
    /// the acceptor's snapshot slot: every slot up to it is chosen, and its accepted values are
    /// gone, so a new leader must never propose there.
    Promise { ballot: Ballot, compacted: Slot, applied: Slot, accepted: Vec<AcceptedEntry> },
    /// Phase 2a.
    Accept { ballot: Ballot, slot: Slot, value: Batch },
    /// Phase 2b.
    Accepted { ballot: Ballot, slot: Slot },
    /// A prepare or accept refused because the acceptor promised a higher ballot.
    Nack { ballot: Ballot, promised: Ballot },
    /// The leader announces chosen values.
    Learn { entries: Vec<(Slot, Batch)> },
    /// The leader's liveness signal; `applied` tells followers how far the log is known.
    Heartbeat { ballot: Ballot, applied: Slot },
    HeartbeatAck { ballot: Ballot, applied: Slot },
    /// A client command sent on to the leader of `ballot` by the node the client talks to.
    /// Only that leadership may propose it, so when it ends with the command still queued, the
    /// command is certainly never decided.
    Forward { ballot: Ballot, cmd: Cmd },
    /// Forwarded commands a leader queued but never proposed before it stepped down: their
    /// clients may be told "temporarily unavailable" (a definite failure).
    Reject { ids: Vec<CmdId> },
    /// A lagging node asks for the chosen values from `from_slot` on.
    CatchUpReq { from_slot: Slot },
    /// The answer: a snapshot when the asked slots were compacted away, then chosen values.
    CatchUp { snapshot: Option<Snapshot>, entries: Vec<(Slot, Batch)> },
}

/// The state machine after applying every slot up to `slot`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub slot: Slot,
    pub state: crate::sm::StateMachine,
}
