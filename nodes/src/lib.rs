//! faultline's reference protocol nodes.
//!
//! Each protocol is a pure core ([`core::Core`]) — Raft, Multi-Paxos, two-phase commit, and
//! op-based and state-based CRDTs — run as a real process by one small tokio [`runtime`].

pub mod bugs;
pub mod core;
pub mod crdt_op;
pub mod crdt_state;
pub mod paxos;
pub mod raft;
pub mod runtime;
pub mod sm;
pub mod twopc;
