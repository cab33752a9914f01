//! Raft's known-bug switches (`--bug NAME`, see [`crate::bugs`]). Each site is marked with a
//! `BUG(name)` comment in the file that implements it.

crate::known_bugs! { "raft";
    /// Commit without a quorum (`replication.rs`, `maybe_commit`).
    CommitOnOneAck = "commit-on-one-ack":
        "the leader commits an entry as soon as one node (itself) stores it, without a majority; a new leader can then overwrite acknowledged writes",
    /// State not persisted before it is answered (`election.rs`, `on_request_vote`).
    VoteNotPersisted = "vote-not-persisted":
        "a granted vote is not saved before the reply leaves; after a restart the node can vote again in the same term and two leaders get elected",
    /// State not persisted before it is answered (`replication.rs`, `merge`).
    AckBeforePersist = "ack-before-persist":
        "a follower acknowledges AppendEntries without writing the entries to its durable log; a restart loses entries the leader counted for commit",
    /// Stale terms accepted (`replication.rs`, `on_append`).
    StaleTermAppend = "stale-term-append":
        "a follower accepts AppendEntries from a leader of an older term, so a deposed leader can overwrite entries of newer terms",
    /// Log not truncated on conflict (`replication.rs`, `merge`).
    NoTruncateOnConflict = "no-truncate-on-conflict":
        "a follower keeps its own entry where the leader's conflicts (it compares indexes, not terms) and acknowledges as if the logs matched",
    /// Read without a leadership check (`client.rs`, `lead_request`).
    UnconfirmedLeaderRead = "unconfirmed-leader-read":
        "a node that believes it leads answers reads from its applied state at once, without a ReadIndex heartbeat round; a deposed leader serves stale reads",
}
