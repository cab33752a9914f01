//! Leader election (§5.2) with pre-vote (§9.6 of Ongaro's thesis).
//!
//! A follower that hears no leader for a randomized timeout first asks for pre-votes: would the
//! others vote for it in the next term? Only with a majority of yes does it raise its term and
//! ask for real votes. A node cut off by a partition therefore does not inflate its term and
//! depose a healthy leader when it comes back. Nodes refuse pre-votes while they hear a leader.
//!
//! Check-quorum (etcd-raft's `CheckQuorum`, thesis §6.2): a leader counts, every election
//! timeout, the followers that answered it since the previous count. Without a majority it
//! steps down to follower, keeping its term, and its clients hear error 11 at once.

use super::{Bug, Command, Msg, Progress, Raft, Role, TIMER_CHECK_QUORUM, TIMER_ELECTION, TIMER_FLUSH, TIMER_HEARTBEAT};
use crate::core::{ErrorCode, Ctx, Reply};

impl Raft {
    pub(super) fn reset_election_timer(&self, ctx: &mut Ctx<Msg>) {
        ctx.set_random_timer(TIMER_ELECTION, self.opts.election_ms, 2 * self.opts.election_ms);
    }

    pub(super) fn on_election_timeout(&mut self, ctx: &mut Ctx<Msg>) {
        if self.is_leader() {
            return;
        }
        self.leader_alive = false;
        if self.opts.prevote && self.role != Role::Candidate {
            self.role = Role::PreCandidate;
            self.leader = None;
            self.votes = [self.id.clone()].into();
            self.ask_votes(ctx, self.term + 1, true);
            self.reset_election_timer(ctx);
            self.maybe_win(ctx, true);
        } else {
            self.start_election(ctx);
        }
    }

    fn start_election(&mut self, ctx: &mut Ctx<Msg>) {
        self.term += 1;
        self.role = Role::Candidate;
        self.leader = None;
        self.voted_for = Some(self.id.clone());
        self.votes = [self.id.clone()].into();
        self.save_meta(ctx);
        self.ask_votes(ctx, self.term, false);
        self.reset_election_timer(ctx);
        self.maybe_win(ctx, false);
    }

    fn ask_votes(&self, ctx: &mut Ctx<Msg>, term: u64, pre: bool) {
        for peer in &self.peers {
            let msg = Msg::RequestVote { term, last_index: self.log.last_index(), last_term: self.log.last_term(), pre };
            ctx.send(peer.clone(), msg);
        }
    }

    /// Moves to `term` as a follower (any message from a higher term does this, §5.1).
    pub(super) fn become_follower(&mut self, ctx: &mut Ctx<Msg>, term: u64) {
        let was_leader = self.is_leader();
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.leader = None;
            self.save_meta(ctx);
        }
        self.role = Role::Follower;
        self.votes.clear();
        if was_leader {
            self.progress.clear();
            ctx.cancel_timer(TIMER_HEARTBEAT);
            ctx.cancel_timer(TIMER_FLUSH);
            ctx.cancel_timer(TIMER_CHECK_QUORUM);
            self.flush_armed = false;
            // A read not yet served had no effect: failing it is definite.
            let reason = self.lost_quorum.clone().unwrap_or_else(|| "leadership lost".to_string());
            for read in std::mem::take(&mut self.reads) {
                self.respond(ctx, &read.origin, Reply::error(ErrorCode::TemporarilyUnavailable, reason.clone()));
            }
            self.reset_election_timer(ctx);
        }
    }

    /// A check-quorum round: the leader steps down unless a majority (itself included) answered
    /// since the previous round, then starts the next round.
    pub(super) fn on_check_quorum(&mut self, ctx: &mut Ctx<Msg>) {
        if !self.is_leader() || !self.opts.check_quorum {
            return;
        }
        let heard = 1 + self.progress.values().filter(|p| p.recent_active).count();
        for p in self.progress.values_mut() {
            p.recent_active = false;
        }
        if heard >= self.quorum {
            ctx.set_timer(TIMER_CHECK_QUORUM, self.opts.election_ms);
            return;
        }
        let members = self.peers.len() + 1;
        let reason = format!("lost quorum: heard from {heard} of {members} nodes within {} ms", self.opts.election_ms);
        tracing::info!(term = self.term, "{reason}: stepping down");
        self.lost_quorum = Some(reason.clone());
        self.become_follower(ctx, self.term);
        self.leader = None;
        self.leader_alive = false;
        self.abandon_waiting(ctx, &reason);
    }

    /// After a step-down, answers the clients still waiting for entries this node appended (or
    /// forwarded). Such an entry may yet commit (a later leader keeps it, or this node leads
    /// again with it), so the answer is the indefinite timeout, never a definite failure.
    fn abandon_waiting(&mut self, ctx: &mut Ctx<Msg>, reason: &str) {
        let text = format!("{reason}; the request may still take effect");
        for id in std::mem::take(&mut self.waiting).into_keys() {
            ctx.reply(id, Reply::error(ErrorCode::Timeout, text.clone()));
        }
        let remote: Vec<super::Origin> = self
            .log
            .slice(self.commit + 1, self.log.last_index())
            .iter()
            .filter_map(|e| match &e.cmd {
                Command::Client { origin, .. } if origin.node != self.id => Some(origin.clone()),
                _ => None,
            })
            .collect();
        for origin in remote {
            self.respond(ctx, &origin, Reply::error(ErrorCode::Timeout, text.clone()));
        }
    }

    pub(super) fn on_request_vote(&mut self, ctx: &mut Ctx<Msg>, from: &str, term: u64, last_index: u64, last_term: u64, pre: bool) {
        let up_to_date = (last_term, last_index) >= (self.log.last_term(), self.log.last_index());
        if pre {
            // A pre-vote changes nothing here; it only says whether a real vote would follow.
            let granted = term > self.term && up_to_date && !self.leader_alive && !self.is_leader();
            ctx.send(from, Msg::Vote { term: if granted { term } else { self.term }, granted, pre: true });
            return;
        }
        if term > self.term {
            self.become_follower(ctx, term);
        }
        let free = self.voted_for.is_none() || self.voted_for.as_deref() == Some(from);
        let granted = term == self.term && free && up_to_date;
        if granted && self.voted_for.is_none() {
            self.voted_for = Some(from.to_string());
            // BUG(vote-not-persisted): the vote leaves before it is durable, so a restart forgets it.
            if !self.opts.bugs.has(Bug::VoteNotPersisted) {
                self.save_meta(ctx);
            }
        }
        if granted {
            self.reset_election_timer(ctx);
        }
        ctx.send(from, Msg::Vote { term: self.term, granted, pre: false });
    }

    pub(super) fn on_vote(&mut self, ctx: &mut Ctx<Msg>, from: &str, term: u64, granted: bool, pre: bool) {
        if !(pre && granted) && term > self.term {
            self.become_follower(ctx, term);
            return;
        }
        let expected = if pre { Role::PreCandidate } else { Role::Candidate };
        let expected_term = if pre { self.term + 1 } else { self.term };
        if self.role != expected || term != expected_term || !granted {
            return;
        }
        self.votes.insert(from.to_string());
        self.maybe_win(ctx, pre);
    }

    fn maybe_win(&mut self, ctx: &mut Ctx<Msg>, pre: bool) {
        if self.votes.len() < self.quorum {
            return;
        }
        if pre {
            self.start_election(ctx);
        } else {
            self.become_leader(ctx);
        }
    }

    fn become_leader(&mut self, ctx: &mut Ctx<Msg>) {
        let term = self.term;
        let me = self.id.clone();
        self.note_leader(term, &me);
        self.role = Role::Leader;
        self.leader = Some(me);
        self.votes.clear();
        self.leader_alive = true;
        self.lost_quorum = None;
        let next = self.log.last_index() + 1;
        self.progress = self
            .peers
            .iter()
            .map(|p| (p.clone(), Progress { next, matched: 0, acked_seq: 0, matched_at_tick: 0, recent_active: false }))
            .collect();
        ctx.cancel_timer(TIMER_ELECTION);
        if self.opts.check_quorum {
            ctx.set_timer(TIMER_CHECK_QUORUM, self.opts.election_ms);
        }
        tracing::info!(term, "became leader");
        // A no-op of the new term lets the leader commit (and learn) everything before it (§8).
        let entry = super::Entry { index: next, term, cmd: super::Command::Noop };
        self.append_entry(ctx, entry);
        self.maybe_commit(ctx);
        self.flush(ctx);
        ctx.set_timer(TIMER_HEARTBEAT, self.opts.heartbeat_ms);
    }
}
