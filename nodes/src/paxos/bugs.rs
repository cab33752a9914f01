//! Multi-Paxos's known-bug switches (`--bug NAME`, see [`crate::bugs`]). Each site is marked
//! with a `BUG(name)` comment in the file that implements it.

crate::known_bugs! { "paxos";
    /// Decide without a quorum (`proposer.rs`, `on_accepted`).
    DecideOnMinority = "decide-on-minority":
        "the proposer takes a value as chosen once a minority of acceptors (its own accept, in 3 nodes) accepted it; another leader can choose a different value for the slot",
    /// State not persisted before it is answered (`replica.rs`, `on_prepare`).
    PromiseNotPersisted = "promise-not-persisted":
        "an acceptor answers a prepare without saving its promise; after a restart it accepts proposals of the lower ballot it promised to refuse",
    /// State not persisted before it is answered (`replica.rs`, `on_accept`).
    AcceptNotPersisted = "accept-not-persisted":
        "an acceptor answers Accepted without logging the value; after a restart its promises no longer report it and a new leader proposes another value",
    /// Stale ballots accepted (`acceptor.rs`, `outranked`).
    BallotGe = "ballot-ge":
        "the acceptor compares only ballot rounds, with >=, so two proposers of the same round are both promised and both get their values accepted",
    /// Read without a leadership check (`mod.rs`, `submit`).
    LeaderLocalRead = "leader-local-read":
        "a node that believes it leads answers reads from its applied state instead of through the log; a deposed leader serves stale reads",
}
