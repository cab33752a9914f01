//! Log replication (§5.3), commitment (§5.4.2) and snapshot installation (§7).
//!
//! The leader batches: client commands arriving together are appended to the log one by one
//! but shipped in few AppendEntries, because a zero-delay *flush* timer sends after the runtime
//! has stepped every input already waiting. It pipelines: `next` advances as soon as entries are
//! sent, up to `max_inflight` unacknowledged entries per follower. A lost message shows as a
//! follower whose `matched` does not move between two heartbeats; the leader then resends from
//! `matched + 1`. A follower too far behind (its next entry compacted away) gets the snapshot.

use super::{Bug, Entry, Msg, Raft, Role, TIMER_FLUSH, TIMER_HEARTBEAT};
use crate::core::Ctx;
use crate::sm::StateMachine;

impl Raft {
    /// Sends soon, after the inputs already queued are stepped (batching).
    pub(super) fn arm_flush(&mut self, ctx: &mut Ctx<Msg>) {
        if !self.flush_armed {
            self.flush_armed = true;
            ctx.set_timer(TIMER_FLUSH, 0);
        }
    }

    /// Sends every follower what it lacks, and starts a heartbeat round for waiting reads.
    pub(super) fn flush(&mut self, ctx: &mut Ctx<Msg>) {
        if !self.is_leader() {
            return;
        }
        let round = self.assign_reads();
        for peer in self.peers.clone() {
            self.replicate(ctx, &peer, round);
        }
        self.serve_reads(ctx);
    }

    pub(super) fn on_heartbeat(&mut self, ctx: &mut Ctx<Msg>) {
        if !self.is_leader() {
            return;
        }
        for p in self.progress.values_mut() {
            if p.matched == p.matched_at_tick && p.next > p.matched + 1 {
                p.next = p.matched + 1;
            }
            p.matched_at_tick = p.matched;
        }
        self.assign_reads();
        for peer in self.peers.clone() {
            self.replicate(ctx, &peer, true);
        }
        ctx.set_timer(TIMER_HEARTBEAT, self.opts.heartbeat_ms);
    }

    /// Sends `peer` its missing entries (several messages when pipelining allows), or an empty
    /// AppendEntries when `heartbeat` and there is nothing new.
    fn replicate(&mut self, ctx: &mut Ctx<Msg>, peer: &str, heartbeat: bool) {
        let last = self.log.last_index();
        let (term, commit, seq) = (self.term, self.commit, self.seq);
        let Some(p) = self.progress.get(peer) else { return };
        if p.next <= self.log.snap_index {
            if heartbeat {
                let msg = Msg::Snapshot { term, index: self.log.snap_index, snap_term: self.log.snap_term, state: self.snapshot_state(), seq };
                ctx.send(peer, msg);
            }
            return;
        }
        let mut next = p.next;
        let window_end = p.matched + self.opts.max_inflight;
        let mut sent = false;
        while next <= last && next <= window_end {
            let to = last.min(next + self.opts.max_batch - 1).min(window_end);
            let entries = self.log.slice(next, to).to_vec();
            let prev_term = self.log.term_at(next - 1).expect("prev is in the log or the snapshot");
            ctx.send(peer, Msg::Append { term, prev_index: next - 1, prev_term, entries, commit, seq });
            next = to + 1;
            sent = true;
        }
        if !sent && heartbeat {
            let prev_index = next - 1;
            let prev_term = self.log.term_at(prev_index).expect("prev is in the log or the snapshot");
            ctx.send(peer, Msg::Append { term, prev_index, prev_term, entries: vec![], commit, seq });
        }
        self.progress.get_mut(peer).expect("checked above").next = next;
    }

    /// The state as of the snapshot index. The leader's snapshot file is the source of truth,
    /// but the in-memory state machine is ahead of it; keep the latest snapshot's state instead.
    fn snapshot_state(&self) -> StateMachine {
        self.snapshot_sm.clone()
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_append(
        &mut self,
        ctx: &mut Ctx<Msg>,
        from: &str,
        term: u64,
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        leader_commit: u64,
        seq: u64,
    ) {
        // BUG(stale-term-append): without the term check a deposed leader's entries are merged.
        if term < self.term && !self.opts.bugs.has(Bug::StaleTermAppend) {
            ctx.send(from, Msg::AppendResp { term: self.term, success: false, match_index: 0, hint: 0, seq });
            return;
        }
        self.accept_leader(ctx, from, term);
        let (success, match_index, hint) = self.merge(ctx, prev_index, prev_term, entries);
        if success {
            let new_commit = leader_commit.min(match_index);
            if new_commit > self.commit {
                self.advance_commit(new_commit);
                self.apply_committed(ctx);
            }
        }
        ctx.send(from, Msg::AppendResp { term: self.term, success, match_index, hint, seq });
    }

    /// A valid message from the leader of `term`: follow it and reset the election timeout.
    fn accept_leader(&mut self, ctx: &mut Ctx<Msg>, from: &str, term: u64) {
        if term > self.term || self.role != Role::Follower {
            crate::safety_assert!(!(self.is_leader() && term == self.term), "two leaders in term {term}: {} and {from}", self.id);
            self.become_follower(ctx, term);
        }
        self.note_leader(term, from);
        self.leader = Some(from.to_string());
        self.leader_alive = true;
        self.lost_quorum = None;
        self.reset_election_timer(ctx);
    }

    /// Merges entries after `prev_index` into the log (§5.3); returns (success, match, hint).
    fn merge(&mut self, ctx: &mut Ctx<Msg>, prev_index: u64, prev_term: u64, entries: Vec<Entry>) -> (bool, u64, u64) {
        // Entries the snapshot covers are committed, hence identical to ours: skip them.
        let (prev_index, prev_term, entries) = if prev_index < self.log.snap_index {
            let skip = (self.log.snap_index - prev_index) as usize;
            if entries.len() < skip {
                return (true, self.log.snap_index.min(prev_index + entries.len() as u64), 0);
            }
            (self.log.snap_index, self.log.snap_term, entries[skip..].to_vec())
        } else {
            (prev_index, prev_term, entries)
        };
        if prev_index > self.log.last_index() {
            return (false, 0, self.log.last_index() + 1);
        }
        if self.log.term_at(prev_index) != Some(prev_term) {
            return (false, 0, self.log.first_of_term(prev_index, self.commit));
        }
        let match_index = prev_index + entries.len() as u64;
        let mut truncated = false;
        let mut appended = Vec::new();
        for entry in entries {
            match self.log.term_at(entry.index) {
                Some(t) if t == entry.term => continue,
                // BUG(no-truncate-on-conflict): "I have an entry there" taken for "the same entry".
                Some(_) if self.opts.bugs.has(Bug::NoTruncateOnConflict) => continue,
                Some(_) => {
                    // Log Matching: a conflicting suffix is never committed (Leader Completeness).
                    crate::safety_assert!(entry.index > self.commit, "committed entry at index {} would change", entry.index);
                    self.log.truncate_from(entry.index);
                    truncated = true;
                }
                None => {}
            }
            appended.push(entry.clone());
            self.log.push(entry);
        }
        self.persist_merged(ctx, truncated, &appended);
        (true, match_index, 0)
    }

    /// Makes merged entries durable before the acknowledgement of this step leaves.
    fn persist_merged(&self, ctx: &mut Ctx<Msg>, truncated: bool, appended: &[Entry]) {
        if self.opts.bugs.has(Bug::AckBeforePersist) {
            // BUG(ack-before-persist): the entries are acknowledged while only in memory.
        } else if truncated {
            self.rewrite_log(ctx);
        } else {
            for entry in appended {
                ctx.append(super::storage::LOG, super::storage::encode_entry(entry));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_append_resp(&mut self, ctx: &mut Ctx<Msg>, from: &str, term: u64, success: bool, match_index: u64, hint: u64, seq: u64) {
        if term > self.term {
            self.become_follower(ctx, term);
            return;
        }
        if term < self.term || !self.is_leader() {
            return;
        }
        let Some(p) = self.progress.get_mut(from) else { return };
        // Only check-quorum reads it: without it the flag stays false, which keeps the model
        // checker's state space (the fingerprint shows `progress`) what it was without it.
        p.recent_active = self.opts.check_quorum;
        p.acked_seq = p.acked_seq.max(seq);
        if success {
            p.matched = p.matched.max(match_index);
            p.next = p.next.max(p.matched + 1);
            self.maybe_commit(ctx);
        } else {
            let retry = hint.max(p.matched + 1);
            if retry < p.next {
                p.next = retry;
                self.replicate(ctx, from, false);
            }
        }
        self.serve_reads(ctx);
    }

    /// Commits the highest index a majority stores, if it is of the current term (§5.4.2).
    pub(super) fn maybe_commit(&mut self, ctx: &mut Ctx<Msg>) {
        let mut matched: Vec<u64> = self.progress.values().map(|p| p.matched).collect();
        matched.push(self.log.last_index());
        matched.sort_unstable_by(|a, b| b.cmp(a));
        // BUG(commit-on-one-ack): one store (the leader's own) taken for a majority.
        let quorum = if self.opts.bugs.has(Bug::CommitOnOneAck) { 1 } else { self.quorum };
        let candidate = matched[quorum - 1];
        if candidate > self.commit && self.log.term_at(candidate) == Some(self.term) {
            self.advance_commit(candidate);
            self.apply_committed(ctx);
            // Reads waiting for the first commit of this term can be assigned now.
            if self.reads.iter().any(|r| r.at.is_none()) {
                self.arm_flush(ctx);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_snapshot(&mut self, ctx: &mut Ctx<Msg>, from: &str, term: u64, index: u64, snap_term: u64, state: StateMachine, seq: u64) {
        if term < self.term {
            ctx.send(from, Msg::AppendResp { term: self.term, success: false, match_index: 0, hint: 0, seq });
            return;
        }
        self.accept_leader(ctx, from, term);
        if index > self.commit {
            if self.log.term_at(index) == Some(snap_term) {
                self.log.compact(index, snap_term);
            } else {
                self.log.reset(index, snap_term);
            }
            self.sm = state;
            self.snapshot_sm = self.sm.clone();
            self.advance_commit(index);
            self.applied = index;
            self.save_snapshot(ctx, index, snap_term);
            self.rewrite_log(ctx);
        }
        ctx.send(from, Msg::AppendResp { term: self.term, success: true, match_index: index, hint: 0, seq });
    }
}
