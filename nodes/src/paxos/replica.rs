//! Every node's part as acceptor and learner: answering prepares and accepts after persisting
//! the answer, learning chosen values, applying them in order and answering clients, taking
//! snapshots, and catching up from peers.

use super::acceptor::{AcceptOutcome, PrepareOutcome};
use super::storage::{self, Meta, ACCEPT_LOG, META_FILE, SNAPSHOT_FILE};
use super::types::{AcceptedEntry, Ballot, Batch, Msg, Slot, Snapshot};
use super::proposer::Role;
use super::{Bug, Paxos, TraceEvent};
use crate::core::Ctx;

impl Paxos {
    pub(super) fn save_meta(&self, ctx: &mut Ctx<Msg>) {
        let meta = Meta { promised: self.acceptor.promised, incarnation: self.incarnation };
        ctx.save(META_FILE, storage::encode(&meta));
    }

    pub(super) fn on_prepare(&mut self, ctx: &mut Ctx<Msg>, from: &str, ballot: Ballot, from_slot: Slot) {
        self.observe(ballot);
        match self.acceptor.on_prepare(ballot, from_slot) {
            PrepareOutcome::Nack(promised) => self.send_to(ctx, from, Msg::Nack { ballot, promised }),
            PrepareOutcome::Promise { changed, accepted } => {
                // BUG(promise-not-persisted): the promise leaves before it is durable.
                if changed && !self.params.bugs.has(Bug::PromiseNotPersisted) {
                    // Persisted before the promise leaves (the runtime syncs before sending).
                    self.save_meta(ctx);
                }
                self.yield_to(ctx, ballot);
                if ballot.node != self.me {
                    // Give the candidate time to finish phase 1 before competing with it.
                    self.arm_election(ctx);
                }
                let accepted = accepted.into_iter().map(|(slot, ballot, value)| AcceptedEntry { slot, ballot, value }).collect();
                let msg = Msg::Promise {
                    ballot,
                    compacted: self.acceptor.compacted,
                    applied: self.learner.applied,
                    accepted,
                };
                self.send_to(ctx, from, msg);
            }
        }
    }

    pub(super) fn on_accept(&mut self, ctx: &mut Ctx<Msg>, from: &str, ballot: Ballot, slot: Slot, value: Batch) {
        self.observe(ballot);
        match self.acceptor.on_accept(ballot, slot, value.clone()) {
            AcceptOutcome::Nack(promised) => self.send_to(ctx, from, Msg::Nack { ballot, promised }),
            AcceptOutcome::Compacted => {}
            AcceptOutcome::Accepted { promise_changed } => {
                if promise_changed {
                    self.save_meta(ctx);
                }
                // BUG(accept-not-persisted): Accepted leaves while the value is only in memory.
                if !self.params.bugs.has(Bug::AcceptNotPersisted) {
                    ctx.append(ACCEPT_LOG, storage::encode(&AcceptedEntry { slot, ballot, value }));
                }
                self.yield_to(ctx, ballot);
                if ballot.node != self.me {
                    self.leader = Some(ballot);
                    self.lost_quorum = None;
                    self.arm_election(ctx);
                }
                self.send_to(ctx, from, Msg::Accepted { ballot, slot });
            }
        }
    }

    pub(super) fn on_learn(&mut self, ctx: &mut Ctx<Msg>, entries: Vec<(Slot, Batch)>) {
        let mut superseded = false;
        for (slot, value) in entries {
            if let Role::Leader(l) = &mut self.role {
                // Chosen and learned from a peer: stop proposing it. Chosen at a lower ballot,
                // it is the value this leader re-proposed; a different value means a higher
                // ballot chose it, so this leadership is stale.
                if let Some(f) = l.in_flight.remove(&slot) {
                    superseded |= f.value != value;
                }
            }
            self.learner.learn(slot, value);
        }
        if superseded {
            self.step_down(ctx);
        }
        self.apply_ready(ctx);
    }

    /// Applies every slot whose predecessors are applied, answers this node's clients, and
    /// snapshots when enough slots accumulated.
    fn apply_ready(&mut self, ctx: &mut Ctx<Msg>) {
        while let Some((slot, results)) = self.learner.apply_next() {
            if self.params.trace {
                let value = results.iter().map(|(cmd, _)| cmd.clone()).collect();
                self.trace.push(TraceEvent::Applied { slot, value });
            }
            for (cmd, reply) in results {
                if let Some(p) = self.pending.remove(&cmd.id) {
                    ctx.reply(p.client, reply);
                }
            }
        }
        if self.learner.applied >= self.learner.snapshot_slot + self.params.snapshot_every {
            self.take_snapshot(ctx);
        }
    }

    /// Saves a snapshot of the applied state, then rewrites the accept log without the slots it
    /// covers. In this order a crash between the two loses nothing.
    fn take_snapshot(&mut self, ctx: &mut Ctx<Msg>) {
        let snap = self.learner.snapshot();
        ctx.save(SNAPSHOT_FILE, storage::encode(&snap));
        self.learner.compact();
        self.acceptor.compact(snap.slot);
        ctx.rewrite(ACCEPT_LOG, storage::accept_records(&self.acceptor));
    }

    pub(super) fn on_heartbeat(&mut self, ctx: &mut Ctx<Msg>, from: &str, ballot: Ballot, applied: Slot) {
        self.observe(ballot);
        if ballot < self.acceptor.promised {
            return self.send_to(ctx, from, Msg::Nack { ballot, promised: self.acceptor.promised });
        }
        self.yield_to(ctx, ballot);
        self.leader = Some(ballot);
        self.lost_quorum = None;
        self.arm_election(ctx);
        self.send_to(ctx, from, Msg::HeartbeatAck { ballot, applied: self.learner.applied });
        if applied > self.learner.applied {
            self.send_to(ctx, from, Msg::CatchUpReq { from_slot: self.learner.applied + 1 });
        }
    }

    pub(super) fn on_heartbeat_ack(&mut self, from: &str, ballot: Ballot, applied: Slot) {
        if self.role.ballot() == Some(ballot) {
            self.heard.insert(from.to_string(), self.tick);
        }
        self.peer_applied.insert(from.to_string(), applied);
    }

    /// Serves chosen values from `from_slot` on; a snapshot first when they were compacted.
    pub(super) fn on_catchup_req(&mut self, ctx: &mut Ctx<Msg>, from: &str, from_slot: Slot) {
        let limit = self.params.catchup_limit;
        let (snapshot, entries) = if from_slot <= self.learner.snapshot_slot {
            let snap = self.learner.snapshot();
            let entries = self.learner.entries_from(snap.slot + 1, limit);
            (Some(snap), entries)
        } else {
            (None, self.learner.entries_from(from_slot, limit))
        };
        if snapshot.is_some() || !entries.is_empty() {
            self.send_to(ctx, from, Msg::CatchUp { snapshot, entries });
        }
    }

    pub(super) fn on_catchup(&mut self, ctx: &mut Ctx<Msg>, snapshot: Option<Snapshot>, entries: Vec<(Slot, Batch)>) {
        if let Some(snap) = snapshot {
            let slot = snap.slot;
            let bytes = storage::encode(&snap);
            if self.learner.install(snap) {
                // The commands in the skipped slots were never applied here: their clients
                // stay pending and time out (indefinite), which is the truth.
                ctx.save(SNAPSHOT_FILE, bytes);
                self.acceptor.compact(slot);
                ctx.rewrite(ACCEPT_LOG, storage::accept_records(&self.acceptor));
                if let Role::Leader(l) = &mut self.role {
                    // Chosen (by an earlier leader) and compacted by the acceptors, which no
                    // longer answer for them: waiting for their votes would block the window.
                    l.in_flight.retain(|s, _| *s > slot);
                }
            }
        }
        self.on_learn(ctx, entries);
    }
}
