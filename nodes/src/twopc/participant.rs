//! The participant's side: local validation and locking, vote aggregation down and up the tree,
//! applying decisions, relaying them to children, and asking the coordinator when in doubt.

use super::durable::Rec;
use super::types::{Account, Balances, Msg, Op, Outcome, Txn, TxnId, Vote};
use super::{Bug, Lock, Pending, Relay, TwoPc, QUERY_EVERY_TICKS, RELAY_GIVE_UP_TICKS};
use crate::core::{ErrorCode, Ctx, NodeId};
use std::collections::BTreeSet;

/// A yes on this node's part: the locks to take, the writes to apply on commit, what was read.
struct LocalYes {
    locks: Vec<(Account, bool)>,
    writes: Balances,
    read: Balances,
}

impl Relay {
    pub(super) fn new(commit: bool, order: Vec<NodeId>, tree: bool, ack_to: Option<NodeId>, logged: bool) -> Relay {
        Relay { commit, order, tree, missing: BTreeSet::new(), ack_to, logged, ticks: 0 }
    }
}

impl TwoPc {
    /// The accounts of `txn` on this node (with whether the lock is exclusive) and its writes.
    fn local_part(&self, txn: &Txn) -> (Vec<(Account, bool)>, Balances) {
        match &txn.op {
            // BUG(read-ignores-locks): a read neither takes nor checks the shared locks.
            Op::Read if self.s.bugs.has(Bug::ReadIgnoresLocks) => (Vec::new(), Balances::new()),
            Op::Read => (self.s.my_accounts().map(|a| (a, false)).collect(), Balances::new()),
            Op::Transfer { from, to, amount } => {
                let mut writes = Balances::new();
                for (a, d) in [(*from, -*amount), (*to, *amount)] {
                    if self.s.owner(a) == &self.s.id {
                        *writes.entry(a).or_insert(0) += d;
                    }
                }
                (writes.keys().map(|&a| (a, true)).collect(), writes)
            }
        }
    }

    /// The transactions whose locks keep `id` from taking `account`: none when it is free.
    fn lock_holders(&self, id: &TxnId, account: Account, exclusive: bool) -> Vec<&TxnId> {
        match (self.locks.get(&account), exclusive) {
            (None, _) | (Some(Lock::Shared(_)), false) => Vec::new(),
            (Some(Lock::Exclusive(holder)), _) => (holder != id).then_some(holder).into_iter().collect(),
            (Some(Lock::Shared(holders)), true) => holders.iter().filter(|h| *h != id).collect(),
        }
    }

    fn take_locks(&mut self, id: &TxnId, locks: &[(Account, bool)]) {
        for &(a, exclusive) in locks {
            if exclusive {
                self.locks.insert(a, Lock::Exclusive(id.clone()));
            } else {
                match self.locks.entry(a).or_insert_with(|| Lock::Shared(BTreeSet::new())) {
                    Lock::Shared(holders) => {
                        holders.insert(id.clone());
                    }
                    Lock::Exclusive(_) => unreachable!("checked free before locking"),
                }
            }
        }
    }

    fn release_locks(&mut self, id: &TxnId, locks: &[(Account, bool)]) {
        for &(a, _) in locks {
            let free = match self.locks.get_mut(&a) {
                Some(Lock::Exclusive(holder)) => holder == id,
                Some(Lock::Shared(holders)) => {
                    holders.remove(id);
                    holders.is_empty()
                }
                None => false,
            };
            if free {
                self.locks.remove(&a);
            }
        }
    }

    fn new_pending(&self, txn: Txn, writes: Balances, locks: Vec<(Account, bool)>, read: Balances) -> Pending {
        let votes = txn.children(self.me()).into_iter().map(|c| (c, None)).collect();
        let durable = !writes.is_empty();
        Pending { txn, writes, locks, durable, read, votes, sent: None, idle_ticks: 0, asked: false }
    }

    /// Re-creates a prepared transaction found in the log: it holds its locks again and is in
    /// doubt until it hears the decision.
    pub(super) fn restore_prepared(&mut self, txn: Txn, writes: Balances) {
        let locks: Vec<(Account, bool)> = writes.keys().map(|&a| (a, true)).collect();
        self.take_locks(&txn.id, &locks);
        let mut pending = self.new_pending(txn, writes, locks, Balances::new());
        pending.asked = true;
        self.pending.insert(pending.txn.id.clone(), pending);
    }

    /// Votes on this node's part: a lock conflict or a negative balance votes no.
    fn local_vote(&self, txn: &Txn) -> Result<LocalYes, Vote> {
        let (locks, writes) = self.local_part(txn);
        let holders: Vec<(Account, &TxnId)> = locks.iter().flat_map(|&(a, x)| self.lock_holders(&txn.id, a, x).into_iter().map(move |h| (a, h))).collect();
        if let Some((a, h)) = holders.iter().find(|(_, h)| self.pending.get(*h).is_some_and(|p| p.asked)) {
            // Not a race between live transactions: a prepared one waits for a decision that
            // cannot reach it, and holds the account until it does.
            let reason = format!("blocked: account {a} on {} is held by transaction {}#{}.{}, in doubt", self.me(), h.coord, h.epoch, h.seq);
            return Err(Vote::No { code: ErrorCode::TemporarilyUnavailable, reason });
        }
        if !holders.is_empty() {
            return Err(Vote::No { code: ErrorCode::TxnConflict, reason: format!("lock conflict on {}", self.me()) });
        }
        for (a, d) in &writes {
            if self.balances.get(a).copied().unwrap_or(0) + d < 0 {
                return Err(Vote::No { code: ErrorCode::Abort, reason: format!("account {a} would go negative") });
            }
        }
        let read = match txn.op {
            Op::Read => self.s.my_accounts().map(|a| (a, self.balances.get(&a).copied().unwrap_or(0))).collect(),
            Op::Transfer { .. } => Balances::new(),
        };
        Ok(LocalYes { locks, writes, read })
    }

    fn record_outcome(&mut self, ctx: &mut Ctx<Msg>, id: TxnId, outcome: Outcome, writes: Balances, durable: bool) {
        if durable {
            self.log(ctx, Rec::Outcome { id: id.clone(), outcome, writes });
        }
        self.decided.insert(id, outcome);
    }

    /// Prepares `txn` here (the coordinator calls this for itself as the root) and forwards the
    /// prepare to this node's children.
    pub(super) fn prepare_here(&mut self, ctx: &mut Ctx<Msg>, txn: Txn) {
        let id = txn.id.clone();
        match self.local_vote(&txn) {
            Err(no) => {
                // Nothing was promised, but remember the no: a late duplicate prepare must not
                // turn it into a yes.
                self.record_outcome(ctx, id.clone(), Outcome::Aborted, Balances::new(), true);
                self.vote_up(ctx, &txn, no);
            }
            Ok(LocalYes { locks, writes, read }) => {
                self.take_locks(&id, &locks);
                // BUG(prepare-not-logged): the yes vote leaves while the prepare is only in memory.
                if !writes.is_empty() && !self.s.bugs.has(Bug::PrepareNotLogged) {
                    self.log(ctx, Rec::Prepared { txn: txn.clone(), writes: writes.clone() });
                }
                let pending = self.new_pending(txn, writes, locks, read);
                self.pending.insert(id.clone(), pending);
                self.push_prepare(ctx, &id);
            }
        }
    }

    /// Sends the prepare to children whose vote is missing, or the vote up once complete.
    fn push_prepare(&mut self, ctx: &mut Ctx<Msg>, id: &TxnId) {
        let Some(p) = self.pending.get(id) else { return };
        if let Some(vote) = p.sent.clone() {
            let txn = p.txn.clone();
            self.vote_up(ctx, &txn, vote);
            return;
        }
        if p.votes.values().all(|v| v.is_some()) {
            return self.aggregate(ctx, id);
        }
        for (child, vote) in &p.votes {
            if vote.is_none() {
                ctx.send(child.clone(), Msg::Prepare { txn: p.txn.clone() });
            }
        }
    }

    /// Combines the local yes with the children's votes once all are in (or any is no).
    fn aggregate(&mut self, ctx: &mut Ctx<Msg>, id: &TxnId) {
        let Some(p) = self.pending.get_mut(id) else { return };
        if p.sent.is_some() {
            return;
        }
        let no = p.votes.values().flatten().find(|v| matches!(v, Vote::No { .. })).cloned();
        let vote = match no {
            Some(no) => no,
            None if p.votes.values().all(|v| v.is_some()) => {
                let mut balances = p.read.clone();
                for v in p.votes.values().flatten() {
                    if let Vote::Yes { balances: b } = v {
                        balances.extend(b.iter().map(|(a, x)| (*a, *x)));
                    }
                }
                Vote::Yes { balances }
            }
            None => return,
        };
        p.sent = Some(vote.clone());
        let txn = p.txn.clone();
        self.vote_up(ctx, &txn, vote);
    }

    /// Sends a vote to the parent; at the root the vote is the coordinator's to decide on.
    fn vote_up(&mut self, ctx: &mut Ctx<Msg>, txn: &Txn, vote: Vote) {
        match txn.parent(self.me()) {
            Some(parent) => ctx.send(parent, Msg::Vote { id: txn.id.clone(), vote }),
            None => self.on_root_vote(ctx, &txn.id, vote),
        }
    }

    pub(super) fn on_prepare(&mut self, ctx: &mut Ctx<Msg>, from: &str, txn: Txn) {
        if txn.parent(self.me()).as_deref() != Some(from) {
            return; // not our parent in this transaction: a malformed or misrouted message
        }
        if self.pending.contains_key(&txn.id) {
            return self.push_prepare(ctx, &txn.id);
        }
        match self.decided.map.get(&txn.id) {
            Some(Outcome::Aborted) => {
                let no = Vote::No { code: ErrorCode::Abort, reason: "already aborted".into() };
                ctx.send(from.to_string(), Msg::Vote { id: txn.id, vote: no });
            }
            Some(_) => {} // decided already: the coordinator has moved on
            None => self.prepare_here(ctx, txn),
        }
    }

    pub(super) fn on_vote(&mut self, ctx: &mut Ctx<Msg>, from: &str, id: TxnId, vote: Vote) {
        let Some(p) = self.pending.get_mut(&id) else { return };
        match p.votes.get_mut(from) {
            Some(slot) if slot.is_none() => *slot = Some(vote),
            _ => return,
        }
        self.aggregate(ctx, &id);
    }

    /// Applies a decision to this node's own part, if it had one.
    pub(super) fn decide_locally(&mut self, ctx: &mut Ctx<Msg>, id: &TxnId, commit: bool) {
        if let Some(p) = self.pending.remove(id) {
            self.release_locks(id, &p.locks);
            let outcome = match (commit, p.writes.is_empty()) {
                (true, false) => Outcome::Applied,
                (true, true) => Outcome::Released,
                (false, _) => Outcome::Aborted,
            };
            if outcome == Outcome::Applied {
                for (a, d) in &p.writes {
                    *self.balances.entry(*a).or_insert(0) += d;
                    debug_assert!(self.balances[a] >= 0, "validated under an exclusive lock");
                }
            }
            self.record_outcome(ctx, id.clone(), outcome, p.writes, p.durable);
        } else if id.coord != self.s.id && !self.decided.map.contains_key(id) {
            // Told the outcome of a transaction never prepared here. For a commit that can only
            // happen when the coordinator did not wait for this node's vote (the unsafe mode).
            // (The coordinator itself, after a restart, simply had no local part left.)
            let outcome = if commit { Outcome::Missed } else { Outcome::Aborted };
            self.record_outcome(ctx, id.clone(), outcome, Balances::new(), true);
        }
    }

    pub(super) fn on_decision(
        &mut self,
        ctx: &mut Ctx<Msg>,
        from: &str,
        id: TxnId,
        commit: bool,
        order: Vec<NodeId>,
        tree: bool,
    ) {
        if id.coord == self.s.id {
            return; // the coordinator decides its own transactions
        }
        // A presumed abort carries no participants (the coordinator had no record of the
        // transaction); any other decision is the coordinator's own and must agree with ours.
        self.assert_no_flip(&id, commit, !order.is_empty());
        // A presumed abort comes without the tree; the prepared transaction knows it.
        let (order, tree) = match self.pending.get(&id) {
            Some(p) => (p.txn.order.clone(), p.txn.tree),
            None => (order, tree),
        };
        self.decide_locally(ctx, &id, commit);
        self.relay(ctx, id, Relay::new(commit, order, tree, Some(from.to_string()), false));
    }

    /// Passes a decision to this node's children (the relay's `missing` is filled here), acking
    /// `relay.ack_to` once they all acked. An existing relay of the same transaction is kept.
    pub(super) fn relay(&mut self, ctx: &mut Ctx<Msg>, id: TxnId, mut relay: Relay) {
        relay.missing = super::types::children_of(&relay.order, relay.tree, self.me()).into_iter().collect();
        let relay = self.relays.entry(id.clone()).or_insert(relay);
        let msg = Msg::Decision { id: id.clone(), commit: relay.commit, order: relay.order.clone(), tree: relay.tree };
        for child in relay.missing.clone() {
            ctx.send(child, msg.clone());
        }
        self.maybe_finish_relay(ctx, &id);
    }

    fn maybe_finish_relay(&mut self, ctx: &mut Ctx<Msg>, id: &TxnId) {
        match self.relays.get(id) {
            Some(r) if r.missing.is_empty() => {}
            _ => return,
        }
        let r = self.relays.remove(id).expect("checked above");
        match r.ack_to {
            Some(parent) => ctx.send(parent, Msg::Ack { id: id.clone() }),
            None if r.logged => self.log(ctx, Rec::Done { id: id.clone() }),
            None => {}
        }
    }

    pub(super) fn on_ack(&mut self, ctx: &mut Ctx<Msg>, from: &str, id: TxnId) {
        if let Some(r) = self.relays.get_mut(&id) {
            r.missing.remove(from);
            self.maybe_finish_relay(ctx, &id);
        }
    }

    /// In-doubt participants ask the coordinator; relays resend to silent children.
    pub(super) fn tick_participant(&mut self, ctx: &mut Ctx<Msg>) {
        let me = self.s.id.clone();
        let heuristic = self.s.bugs.has(Bug::UnilateralAbort);
        let mut give_up_waiting = Vec::new();
        for (id, p) in self.pending.iter_mut() {
            if id.coord == me {
                continue;
            }
            // Kept modular (not a growing count) so the model checker sees finitely many states.
            p.idle_ticks = (p.idle_ticks + 1) % QUERY_EVERY_TICKS;
            if p.idle_ticks == 0 && heuristic {
                give_up_waiting.push(id.clone());
            } else if p.idle_ticks == 0 {
                p.asked = true;
                ctx.send(id.coord.clone(), Msg::Query { id: id.clone() });
            }
        }
        for id in give_up_waiting {
            // BUG(unilateral-abort): an in-doubt participant decides alone instead of blocking.
            self.decide_locally(ctx, &id, false);
        }
        let mut give_up = Vec::new();
        for (id, r) in self.relays.iter_mut() {
            if r.ack_to.is_some() {
                r.ticks += 1;
                if r.ticks > RELAY_GIVE_UP_TICKS {
                    give_up.push(id.clone());
                    continue;
                }
            }
            let msg = Msg::Decision { id: id.clone(), commit: r.commit, order: r.order.clone(), tree: r.tree };
            for child in &r.missing {
                ctx.send(child.clone(), msg.clone());
            }
        }
        for id in give_up {
            self.relays.remove(&id);
        }
    }

    /// A decided transaction never flips: an authoritative decision must agree with the outcome
    /// recorded here. Not asserted in the known-weak unsafe mode, whose flips the checkers show.
    pub(super) fn assert_no_flip(&self, id: &TxnId, commit: bool, authoritative: bool) {
        if !authoritative || self.s.unsafe_commit {
            return;
        }
        if let Some(outcome) = self.decided.map.get(id) {
            let said = if commit { "commit" } else { "abort" };
            let committed = *outcome != Outcome::Aborted;
            crate::safety_assert!(committed == commit, "transaction {id:?} ended {outcome:?} on {} and is now decided {said}", self.s.id);
        }
    }

    /// Everything a restarted node must pick up again: in-doubt participants ask at once.
    pub(super) fn query_in_doubt(&mut self, ctx: &mut Ctx<Msg>) {
        let me = self.s.id.clone();
        let ids: Vec<TxnId> = self.pending.keys().filter(|id| id.coord != me).cloned().collect();
        for id in ids {
            ctx.send(id.coord.clone(), Msg::Query { id });
        }
    }
}

