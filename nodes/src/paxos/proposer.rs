//! The proposer: elections (phase 1 for all future slots at once), phase 2 per slot with a
//! window of slots in flight, heartbeats, and stepping down.
//!
//! A leader holds its ballot until it hears of a higher one (a nack, a prepare, a heartbeat) or
//! loses contact with a quorum; then it stops proposing and refuses the commands it never
//! proposed, which their clients may retry elsewhere.
//!
//! Check-quorum, as etcd-raft does it: every election timeout a leader counts the peers that
//! answered it (promises, accepts, heartbeat acks) since the previous count. With fewer than a
//! majority, itself included, it gives up its leadership, refuses new commands with error 11
//! ("lost quorum: heard from 1 of 5 nodes within 300 ms"), and answers its clients whose
//! commands it already proposed with the indefinite timeout: they may still be chosen.

use super::acceptor::merge_promises;
use super::types::{AcceptedEntry, Ballot, Batch, CmdId, Msg, Slot};
use super::{Bug, Paxos};
use crate::core::{ErrorCode, Ctx, NodeId, Reply};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A node's part in leadership.
#[derive(Debug)]
pub enum Role {
    Follower,
    Candidate(Candidate),
    Leader(Leading),
}

impl Role {
    pub fn ballot(&self) -> Option<Ballot> {
        match self {
            Role::Follower => None,
            Role::Candidate(c) => Some(c.ballot),
            Role::Leader(l) => Some(l.ballot),
        }
    }
}

/// Phase 1 in progress.
#[derive(Debug)]
pub struct Candidate {
    pub ballot: Ballot,
    pub from_slot: Slot,
    /// Per promiser: its compacted slot, its applied slot, its accepted proposals.
    pub promises: BTreeMap<NodeId, (Slot, Slot, Vec<AcceptedEntry>)>,
}

/// Phase 1 done: proposing.
#[derive(Debug)]
pub struct Leading {
    pub ballot: Ballot,
    /// The next free slot for new commands.
    pub next_slot: Slot,
    pub in_flight: BTreeMap<Slot, InFlight>,
    /// The tick of the last check-quorum round (phase 1's completion before the first): the
    /// next comes one election timeout later.
    pub checked_tick: u64,
    /// Forwarded commands taken during this leadership, so a duplicated forward is not
    /// proposed twice. Bounded: only a duplicate delayed past the last `SEEN_LIMIT` forwards
    /// could slip through.
    pub seen: BTreeSet<CmdId>,
    pub seen_order: VecDeque<CmdId>,
}

const SEEN_LIMIT: usize = 100_000;

impl Leading {
    /// Records a forwarded command; false if it was seen already.
    pub fn remember(&mut self, id: CmdId) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.seen_order.push_back(id);
        if self.seen_order.len() > SEEN_LIMIT {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

#[derive(Debug)]
pub struct InFlight {
    pub value: Batch,
    /// When the accepts were last sent.
    pub sent_tick: u64,
    pub acks: BTreeSet<NodeId>,
}

impl Paxos {
    pub(super) fn observe(&mut self, ballot: Ballot) {
        self.max_seen = self.max_seen.max(ballot);
    }

    /// Phase 1a with a ballot above any seen, for every slot after the applied ones.
    pub(super) fn start_election(&mut self, ctx: &mut Ctx<Msg>) {
        let round = self.max_seen.round.max(self.acceptor.promised.round) + 1;
        let ballot = Ballot::new(round, self.me);
        self.observe(ballot);
        let from_slot = self.learner.applied + 1;
        tracing::debug!("paxos {}: election with ballot {ballot:?}", self.id);
        self.role = Role::Candidate(Candidate { ballot, from_slot, promises: BTreeMap::new() });
        self.leader = None;
        self.broadcast(ctx, Msg::Prepare { ballot, from_slot });
    }

    pub(super) fn on_promise(
        &mut self,
        ctx: &mut Ctx<Msg>,
        from: &str,
        ballot: Ballot,
        compacted: Slot,
        applied: Slot,
        accepted: Vec<AcceptedEntry>,
    ) {
        self.peer_applied.insert(from.to_string(), applied);
        self.heard.insert(from.to_string(), self.tick);
        let Role::Candidate(c) = &mut self.role else { return };
        if c.ballot != ballot {
            return;
        }
        c.promises.insert(from.to_string(), (compacted, applied, accepted));
        if c.promises.len() >= self.quorum {
            self.become_leader(ctx);
        }
    }

    /// Phase 1 complete: re-propose what the promises report, fill holes with no-ops, then
    /// serve queued commands.
    fn become_leader(&mut self, ctx: &mut Ctx<Msg>) {
        let Role::Candidate(c) = std::mem::replace(&mut self.role, Role::Follower) else { return };
        // Slots up to a promiser's compacted slot are chosen and may have lost their accepted
        // values: proposing there could choose a second value, so they are off limits.
        let base = c.promises.values().map(|(compacted, _, _)| *compacted).max().unwrap_or(0).max(self.learner.applied);
        let best_peer = c.promises.iter().max_by_key(|(_, (_, applied, _))| *applied).map(|(n, (_, a, _))| (n.clone(), *a));
        let merged = merge_promises(
            c.promises.into_values().flat_map(|(_, _, acc)| acc.into_iter().map(|e| (e.slot, e.ballot, e.value))),
        );
        let top = merged.keys().next_back().copied().unwrap_or(0).max(self.learner.max_chosen()).max(base);
        tracing::info!("paxos {}: leader with ballot {:?}, slots {}..={top}", self.id, c.ballot, base + 1);
        self.role = Role::Leader(Leading {
            ballot: c.ballot,
            next_slot: top + 1,
            in_flight: BTreeMap::new(),
            checked_tick: self.tick,
            seen: BTreeSet::new(),
            seen_order: VecDeque::new(),
        });
        self.leader = Some(c.ballot);
        self.lost_quorum = None;
        for slot in base + 1..=top {
            if self.learner.is_chosen(slot) {
                continue;
            }
            let value = merged.get(&slot).map(|(_, v)| v.clone()).unwrap_or_default();
            self.propose(ctx, slot, value);
        }
        if let Some((peer, applied)) = best_peer {
            if applied > self.learner.applied && peer != self.id {
                ctx.send(peer, Msg::CatchUpReq { from_slot: self.learner.applied + 1 });
            }
        }
        self.send_heartbeats(ctx);
        self.propose_queued(ctx);
    }

    fn propose(&mut self, ctx: &mut Ctx<Msg>, slot: Slot, value: Batch) {
        let Role::Leader(l) = &mut self.role else { return };
        let ballot = l.ballot;
        l.in_flight.insert(slot, InFlight { value: value.clone(), sent_tick: self.tick, acks: BTreeSet::new() });
        self.broadcast(ctx, Msg::Accept { ballot, slot, value });
    }

    /// Fills the window with batches of queued commands.
    pub(super) fn propose_queued(&mut self, ctx: &mut Ctx<Msg>) {
        loop {
            let Role::Leader(l) = &mut self.role else { return };
            if self.queue.is_empty() || l.in_flight.len() >= self.params.window {
                return;
            }
            let n = self.queue.len().min(self.params.max_batch);
            let batch: Batch = self.queue.drain(..n).collect();
            let slot = l.next_slot;
            l.next_slot += 1;
            self.propose(ctx, slot, batch);
        }
    }

    pub(super) fn on_accepted(&mut self, ctx: &mut Ctx<Msg>, from: &str, ballot: Ballot, slot: Slot) {
        self.heard.insert(from.to_string(), self.tick);
        // BUG(decide-on-minority): one acceptor short of a majority taken for a quorum.
        let quorum = if self.params.bugs.has(Bug::DecideOnMinority) { (self.quorum - 1).max(1) } else { self.quorum };
        let Role::Leader(l) = &mut self.role else { return };
        if l.ballot != ballot {
            return;
        }
        let Some(f) = l.in_flight.get_mut(&slot) else { return };
        f.acks.insert(from.to_string());
        if f.acks.len() < quorum {
            return;
        }
        let value = l.in_flight.remove(&slot).map(|f| f.value).unwrap_or_default();
        let entries = vec![(slot, value)];
        for p in self.peers() {
            ctx.send(p.clone(), Msg::Learn { entries: entries.clone() });
        }
        self.on_learn(ctx, entries);
        self.propose_queued(ctx);
    }

    pub(super) fn on_nack(&mut self, ctx: &mut Ctx<Msg>, ballot: Ballot, promised: Ballot) {
        self.observe(promised);
        if self.role.ballot() == Some(ballot) && promised > ballot {
            self.step_down(ctx);
        }
    }

    /// Leaves leadership (or candidacy) because a higher ballot exists or a quorum is gone.
    /// Queued commands were never proposed, so their clients get a definite refusal.
    pub(super) fn step_down(&mut self, ctx: &mut Ctx<Msg>) {
        if !matches!(self.role, Role::Follower) {
            tracing::info!("paxos {}: stepping down", self.id);
        }
        self.role = Role::Follower;
        self.leader = None;
        let reason = self.lost_quorum.clone().unwrap_or_else(|| "not the leader any more".to_string());
        let mut by_origin: BTreeMap<u32, Vec<_>> = BTreeMap::new();
        for cmd in std::mem::take(&mut self.queue) {
            by_origin.entry(cmd.id.node).or_default().push(cmd.id);
        }
        for (origin, ids) in by_origin {
            if origin == self.me {
                for id in ids {
                    if let Some(p) = self.pending.remove(&id) {
                        ctx.reply(p.client, Reply::error(ErrorCode::TemporarilyUnavailable, reason.clone()));
                    }
                }
            } else if let Some(name) = self.member(origin).cloned() {
                ctx.send(name, Msg::Reject { ids });
            }
        }
        self.arm_election(ctx);
    }

    /// Steps down when `ballot` outranks this node's own candidacy or leadership.
    pub(super) fn yield_to(&mut self, ctx: &mut Ctx<Msg>, ballot: Ballot) {
        if let Some(mine) = self.role.ballot() {
            if ballot > mine {
                self.step_down(ctx);
            }
        }
    }

    pub(super) fn send_heartbeats(&mut self, ctx: &mut Ctx<Msg>) {
        let Role::Leader(l) = &self.role else { return };
        let msg = Msg::Heartbeat { ballot: l.ballot, applied: self.learner.applied };
        for p in self.peers() {
            ctx.send(p.clone(), msg.clone());
        }
    }

    /// Periodic work: heartbeats, retransmissions, contact checks, catch-up of the leader.
    pub(super) fn on_tick(&mut self, ctx: &mut Ctx<Msg>) {
        match &self.role {
            Role::Follower => {}
            Role::Candidate(c) => {
                let msg = Msg::Prepare { ballot: c.ballot, from_slot: c.from_slot };
                let missing: Vec<NodeId> = self.peers().filter(|p| !c.promises.contains_key(*p)).cloned().collect();
                for p in missing {
                    ctx.send(p, msg.clone());
                }
            }
            Role::Leader(_) => {
                self.send_heartbeats(ctx);
                self.retransmit(ctx);
                self.check_contact(ctx);
                self.leader_catch_up(ctx);
            }
        }
    }

    /// Re-sends accepts that lacked a quorum for two ticks to the peers that did not answer.
    fn retransmit(&mut self, ctx: &mut Ctx<Msg>) {
        let tick = self.tick;
        let peers: Vec<NodeId> = self.peers().cloned().collect();
        let Role::Leader(l) = &mut self.role else { return };
        for (slot, f) in l.in_flight.iter_mut().filter(|(_, f)| f.sent_tick + 2 <= tick) {
            f.sent_tick = tick;
            for p in peers.iter().filter(|p| !f.acks.contains(*p)) {
                ctx.send(p.clone(), Msg::Accept { ballot: l.ballot, slot: *slot, value: f.value.clone() });
            }
        }
    }

    /// A check-quorum round, once per election timeout: a leader that heard from fewer than a
    /// majority (itself included) since the previous round steps down, so clients of a leader
    /// cut off from the majority hear "unavailable" at once instead of waiting.
    fn check_contact(&mut self, ctx: &mut Ctx<Msg>) {
        let window = self.params.ticks(self.params.election_ms);
        let tick = self.tick;
        let Role::Leader(l) = &mut self.role else { return };
        if tick < l.checked_tick + window {
            return;
        }
        let since = std::mem::replace(&mut l.checked_tick, tick);
        let heard = self.peers().filter(|p| self.heard.get(*p).is_some_and(|t| *t >= since)).count() + 1;
        if heard >= self.quorum {
            return;
        }
        let reason =
            format!("lost quorum: heard from {heard} of {} nodes within {} ms", self.members.len(), self.params.election_ms);
        tracing::info!("paxos {}: {reason}", self.id);
        self.lost_quorum = Some(reason.clone());
        self.step_down(ctx);
        // What is left pending here was proposed (or forwarded) and may still be chosen: the
        // answer is the indefinite timeout, never a definite failure.
        let text = format!("{reason}; the request may still take effect");
        for (_, p) in std::mem::take(&mut self.pending) {
            ctx.reply(p.client, Reply::error(ErrorCode::Timeout, text.clone()));
        }
    }

    /// A leader missing chosen slots (compacted elsewhere, or chosen by a predecessor and
    /// learned by others, so acceptors may no longer answer for them) asks the most advanced
    /// peer, which has them if its applied slot is beyond.
    fn leader_catch_up(&mut self, ctx: &mut Ctx<Msg>) {
        let next = self.learner.applied + 1;
        if self.learner.is_chosen(next) {
            return;
        }
        let best = self.peer_applied.iter().filter(|(_, a)| **a >= next).max_by_key(|(_, a)| **a);
        if let Some((peer, _)) = best {
            ctx.send(peer.clone(), Msg::CatchUpReq { from_slot: next });
        }
    }
}
