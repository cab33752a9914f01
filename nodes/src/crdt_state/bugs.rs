//! The state-based CRDTs' known-bug switches (`--bug NAME`, see [`crate::bugs`]). Each site is
//! marked with a `BUG(name)` comment in `lattice.rs` or `mod.rs`.

crate::known_bugs! { "crdt-state";
    /// Merge not idempotent (`lattice.rs`, `PnCounter::merge_with`).
    MergeSumsCounters = "merge-sums-counters":
        "the PN-counter merge adds the other replica's counts instead of taking the maximum, so every repeated merge (gossip, duplicates) counts the same adds again",
    /// Merge not commutative (`lattice.rs`, `State::merge_with`).
    LwwByArrival = "lww-by-arrival":
        "a register keeps the write that arrived last instead of the one with the greatest stamp, so replicas settle on whatever gossip brought last, often an older write",
    /// State not persisted before it is answered (`mod.rs`, `commit`).
    UpdateNotLogged = "update-not-logged":
        "an update is acknowledged and pushed without logging its delta; a crash before a peer merged it loses an acknowledged update",
    /// Remove not limited to the observed tags (`lattice.rs`, `OrSet::merge_with`).
    RemoveDropsUnobserved = "remove-drops-unobserved":
        "merging an OR-set remove tombstones every add-tag of the element the replica holds, not only the tags the remove observed, so an add concurrent with or later than the remove disappears",
}
