//! Two-phase commit's known-bug switches (`--bug NAME`, see [`crate::bugs`]). Each site is
//! marked with a `BUG(name)` comment in the file that implements it.

crate::known_bugs! { "twopc";
    /// State not persisted before it is acted on (`coordinator.rs`, `decide`).
    DecisionNotLogged = "decision-not-logged":
        "the coordinator answers the client and tells the participants to commit without logging the decision; after a restart it aborts what some participants already applied",
    /// State not persisted before it is answered (`participant.rs`, `prepare_here`).
    PrepareNotLogged = "prepare-not-logged":
        "a participant votes yes without logging its prepared writes; after a restart it forgets them and skips a transaction the others commit",
    /// Read without a lock check (`participant.rs`, `local_part`).
    ReadIgnoresLocks = "read-ignores-locks":
        "a read neither takes nor checks shared locks, so it sees transfers applied on some nodes and not yet on others (the total is off)",
    /// Decide without the coordinator (`participant.rs`, `tick_participant`).
    UnilateralAbort = "unilateral-abort":
        "a prepared participant that waits a few ticks for the decision aborts on its own (a heuristic abort) instead of blocking, while the coordinator may commit",
}
