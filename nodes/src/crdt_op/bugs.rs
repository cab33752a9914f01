//! The op-based CRDTs' known-bug switches (`--bug NAME`, see [`crate::bugs`]). Each site is
//! marked with a `BUG(name)` comment in `mod.rs`.

crate::known_bugs! { "crdt-op";
    /// Duplicate delivery not idempotent (`on_ops`).
    RedeliverAppliesTwice = "redeliver-applies-twice":
        "a received operation is applied without checking whether it was delivered before, so a duplicated or retransmitted add counts twice",
    /// State not persisted (`replay`).
    OutboxNotPersisted = "outbox-not-persisted":
        "the outbox of operations some peer has not acknowledged lives only in memory; after a restart they are never sent again and the peers miss them",
    /// State not persisted before it is answered (`on_ops`).
    AckBeforeLog = "ack-before-log":
        "a received operation is applied and acknowledged without logging it; after a restart the receiver has lost it and its origin no longer resends it",
    /// Remove not limited to the observed tags (`Replica::effect`).
    RemoveDropsUnobserved = "remove-drops-unobserved":
        "applying an OR-set remove drops every add-tag of the element the replica holds, not only the tags the remove observed, so an add concurrent with the remove vanishes on some replicas and survives on others",
}
