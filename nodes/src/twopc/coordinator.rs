//! The coordinator's side: starting transactions, deciding on the votes or at the timeout,
//! answering in-doubt participants, and taking up undecided work after a restart.

use super::durable::Rec;
use super::types::{Msg, Op, Txn, TxnId, Vote};
use super::{Active, Bug, Origin, Relay, TwoPc, CONFLICT_RETRIES, MAX_ACTIVE, VOTE_TIMEOUT_TICKS};
use crate::core::{ErrorCode, Ctx, Reply};
use serde_json::{Map, Value};

impl TwoPc {
    /// The participants of `op`, coordinator first, then the owners of its accounts.
    fn order_for(&self, op: &Op) -> Vec<String> {
        let mut order = vec![self.s.id.clone()];
        let mut add = |n: &String| {
            if !order.contains(n) {
                order.push(n.clone());
            }
        };
        match op {
            Op::Read => self.s.members.iter().for_each(&mut add),
            Op::Transfer { from, to, .. } => {
                add(self.s.owner(*from));
                add(self.s.owner(*to));
            }
        }
        order
    }

    pub(super) fn start_txn(&mut self, ctx: &mut Ctx<Msg>, origin: Origin, op: Op, attempt: u32) {
        if self.active.len() >= MAX_ACTIVE {
            let busy = Reply::error(ErrorCode::TemporarilyUnavailable, "too many transactions in flight");
            return self.answer(ctx, &origin, busy);
        }
        let id = TxnId { coord: self.s.id.clone(), epoch: self.epoch, seq: self.next_seq };
        self.next_seq += 1;
        let txn = Txn { id: id.clone(), order: self.order_for(&op), op, tree: self.s.tree };
        if matches!(txn.op, Op::Transfer { .. }) {
            self.log(ctx, Rec::Begin { txn: txn.clone() });
        }
        let active = Active { origin, txn: txn.clone(), attempt, ticks_left: VOTE_TIMEOUT_TICKS };
        self.active.insert(id, active);
        self.prepare_here(ctx, txn);
    }

    /// The root's aggregated vote: every participant's, or the first no.
    pub(super) fn on_root_vote(&mut self, ctx: &mut Ctx<Msg>, id: &TxnId, vote: Vote) {
        match vote {
            Vote::Yes { balances } => self.decide(ctx, id, true, balances_reply(balances)),
            Vote::No { code, reason } => self.decide(ctx, id, false, Reply::error(code, reason)),
        }
    }

    /// Decides, answers the client, and starts telling the participants. A commit is logged
    /// before the answer and the decision leave (the runtime fsyncs first).
    fn decide(&mut self, ctx: &mut Ctx<Msg>, id: &TxnId, commit: bool, result: Reply) {
        let Some(a) = self.active.remove(id) else { return };
        let transfer = matches!(a.txn.op, Op::Transfer { .. });
        // A transfer's Begin is in the log, so its end is logged too (Done, once all acked).
        let logged = transfer;
        // BUG(decision-not-logged): the commit is answered and sent while only in memory.
        if commit && transfer && !self.s.bugs.has(Bug::DecisionNotLogged) {
            let rec = Rec::Decided { id: id.clone(), order: a.txn.order.clone(), tree: a.txn.tree };
            self.log(ctx, rec);
        }
        let retry = matches!(&result, Reply::Error { code, .. } if *code == ErrorCode::TxnConflict.code())
            && !commit
            && a.attempt < CONFLICT_RETRIES;
        if retry {
            // The aborted attempt certainly had no effect, so running the request again as a
            // fresh transaction (at the next tick, after the conflicting one moved on) is safe.
            self.retries.push((a.origin.clone(), a.txn.op.clone(), a.attempt + 1));
        } else if commit && transfer {
            self.answer(ctx, &a.origin, Reply::TransferOk);
        } else {
            self.answer(ctx, &a.origin, result);
        }
        self.decide_locally(ctx, id, commit);
        self.relay(ctx, id.clone(), Relay::new(commit, a.txn.order, a.txn.tree, None, logged));
    }

    /// Votes missing at the timeout: abort, or commit in the known-weak unsafe mode.
    fn time_out(&mut self, ctx: &mut Ctx<Msg>, id: &TxnId) {
        let transfer = self.active.get(id).is_some_and(|a| matches!(a.txn.op, Op::Transfer { .. }));
        let no_seen = self.pending.get(id).map_or(true, |p| {
            p.votes.values().flatten().any(|v| matches!(v, Vote::No { .. }))
        });
        if self.s.unsafe_commit && transfer && !no_seen {
            self.decide(ctx, id, true, Reply::TransferOk);
        } else {
            self.decide(ctx, id, false, Reply::error(ErrorCode::Abort, "timed out waiting for votes"));
        }
    }

    /// An in-doubt participant asks. Presumed abort: no decision on record means abort, which
    /// is right because a commit is always logged before anyone can learn it.
    pub(super) fn on_query(&mut self, ctx: &mut Ctx<Msg>, from: &str, id: TxnId) {
        if id.coord != self.s.id || self.active.contains_key(&id) {
            return; // not ours, or still collecting votes: the participant asks again
        }
        let msg = match self.relays.get(&id) {
            Some(r) if r.ack_to.is_none() => {
                Msg::Decision { id, commit: r.commit, order: r.order.clone(), tree: r.tree }
            }
            _ => Msg::Decision { id, commit: false, order: Vec::new(), tree: false },
        };
        ctx.send(from.to_string(), msg);
    }

    pub(super) fn tick_coordinator(&mut self, ctx: &mut Ctx<Msg>) {
        let ids: Vec<TxnId> = self.active.keys().cloned().collect();
        for id in ids {
            let a = self.active.get_mut(&id).expect("listed above");
            a.ticks_left = a.ticks_left.saturating_sub(1);
            if a.ticks_left == 0 {
                self.time_out(ctx, &id);
            } else {
                self.push_prepare_root(ctx, &id);
            }
        }
        for (origin, op, attempt) in std::mem::take(&mut self.retries) {
            self.start_txn(ctx, origin, op, attempt);
        }
    }

    /// Resends prepares the network may have lost.
    fn push_prepare_root(&mut self, ctx: &mut Ctx<Msg>, id: &TxnId) {
        let Some(p) = self.pending.get(id) else { return };
        for (child, vote) in &p.votes {
            if vote.is_none() {
                ctx.send(child.clone(), Msg::Prepare { txn: p.txn.clone() });
            }
        }
    }

    /// After a restart: abort what was begun and not decided, finish telling logged commits,
    /// and let in-doubt participants ask.
    pub(super) fn resume_after_restart(&mut self, ctx: &mut Ctx<Msg>) {
        for txn in std::mem::take(&mut self.recovered_begun) {
            if txn.id.coord == self.s.id {
                self.assert_no_flip(&txn.id, false, true);
                self.decide_locally(ctx, &txn.id, false);
                self.relay(ctx, txn.id, Relay::new(false, txn.order, txn.tree, None, true));
            }
        }
        for (id, order, tree) in std::mem::take(&mut self.recovered_commits) {
            self.decide_locally(ctx, &id, true);
            self.relay(ctx, id, Relay::new(true, order, tree, None, true));
        }
        self.query_in_doubt(ctx);
    }
}

/// A read's answer: every account's balance, keyed by the account number as a string.
fn balances_reply(balances: super::types::Balances) -> Reply {
    let map: Map<String, Value> = balances.into_iter().map(|(a, b)| (a.to_string(), Value::from(b))).collect();
    Reply::ReadOk(Value::Object(map))
}
