//! Clients: requests, forwarding to the leader, reads, applying committed entries, replies.
//!
//! A request is tagged with its [`Origin`] (this node, this boot, the client id). On the leader
//! a write becomes a log entry; a follower forwards it to the leader it knows (or answers the
//! definite error 11 when it knows none). Whoever applies an entry whose origin is itself replies
//! to its client; the leader also sends the reply to a remote origin, so forwarded requests do
//! not wait for the follower's own apply. A client waiting longer than the client timeout gets
//! the indefinite error 0.
//!
//! Reads (`--read-mode index`, the default) follow ReadIndex (§6.4 of Ongaro's thesis): once the
//! leader has committed an entry of its term, a read records the commit index and the sequence
//! number of the next heartbeat round; when a majority has answered that round (so no newer
//! leader existed when the read arrived) and the state machine has applied the recorded index,
//! the read is served from it.

use super::{Bug, Command, Entry, Msg, Origin, PendingRead, Raft, ReadMode};
use crate::core::{ErrorCode, ClientId, Ctx, Reply, Request};
use crate::sm::StateMachine;

impl Raft {
    pub(super) fn client_request(&mut self, ctx: &mut Ctx<Msg>, client: ClientId, request: Request) {
        let origin = Origin { node: self.id.clone(), boot: self.boot, id: client };
        if self.opts.read_mode == ReadMode::Local && StateMachine::is_read(&request) {
            let reply = self.apply_request(&request);
            ctx.reply(client, reply);
            return;
        }
        if let Request::Transfer { .. } = request {
            ctx.reply(client, Reply::error(ErrorCode::NotSupported, "raft does not serve transfers"));
            return;
        }
        self.waiting.insert(client, ctx.now_ms);
        if self.is_leader() {
            self.lead_request(ctx, origin, request);
        } else if let Some(leader) = self.leader.clone() {
            ctx.send(leader, Msg::Forward { origin, request });
        } else {
            self.waiting.remove(&client);
            let reason = match &self.lost_quorum {
                Some(lost) => format!("{lost}; no leader known"),
                None => "no leader known".to_string(),
            };
            ctx.reply(client, Reply::error(ErrorCode::TemporarilyUnavailable, reason));
        }
    }

    /// The leader's handling of a request, local or forwarded.
    fn lead_request(&mut self, ctx: &mut Ctx<Msg>, origin: Origin, request: Request) {
        if self.opts.bugs.has(Bug::UnconfirmedLeaderRead) && StateMachine::is_read(&request) {
            // BUG(unconfirmed-leader-read): believing it leads is taken for leading.
            let reply = self.apply_request(&request);
            return self.respond(ctx, &origin, reply);
        }
        if self.opts.read_mode == ReadMode::Index {
            if let Request::Read { key } = request {
                self.reads.push(PendingRead { origin, key, at: None });
                self.arm_flush(ctx);
                return;
            }
        }
        let entry = Entry { index: self.log.last_index() + 1, term: self.term, cmd: Command::Client { origin, request } };
        self.append_entry(ctx, entry);
        self.maybe_commit(ctx);
        self.arm_flush(ctx);
    }

    pub(super) fn on_forward(&mut self, ctx: &mut Ctx<Msg>, origin: Origin, request: Request) {
        if self.is_leader() {
            self.lead_request(ctx, origin, request);
        } else {
            // Not appended anywhere by us: the failure is definite.
            let reply = Reply::error(ErrorCode::TemporarilyUnavailable, "not the leader");
            ctx.send(origin.node.clone(), Msg::ForwardReply { origin, reply });
        }
    }

    pub(super) fn on_forward_reply(&mut self, ctx: &mut Ctx<Msg>, origin: Origin, reply: Reply) {
        self.respond(ctx, &origin, reply);
    }

    /// Replies to a local client (once) or sends the reply to the node that holds it.
    pub(super) fn respond(&mut self, ctx: &mut Ctx<Msg>, origin: &Origin, reply: Reply) {
        if origin.node == self.id {
            if origin.boot == self.boot && self.waiting.remove(&origin.id).is_some() {
                ctx.reply(origin.id, reply);
            }
        } else {
            ctx.send(origin.node.clone(), Msg::ForwardReply { origin: origin.clone(), reply });
        }
    }

    fn apply_request(&mut self, request: &Request) -> Reply {
        match request {
            Request::Read { key: None } => self.sm.read_for(&self.workload),
            other => self.sm.apply(other),
        }
    }

    /// Applies every committed entry not yet applied, replying to whoever waits for it.
    pub(super) fn apply_committed(&mut self, ctx: &mut Ctx<Msg>) {
        while self.applied < self.commit {
            let index = self.applied + 1;
            let entry = self.log.get(index).expect("committed entries are in the log").clone();
            self.applied = index;
            if let Command::Client { origin, request } = entry.cmd {
                let reply = self.apply_request(&request);
                if origin.node == self.id || self.is_leader() {
                    self.respond(ctx, &origin, reply);
                }
            }
        }
        if self.applied - self.log.snap_index >= self.opts.snapshot_every {
            self.compact(ctx);
        }
    }

    /// Gives every unassigned read the current commit index and a new heartbeat round; returns
    /// whether a round was started (the caller must then reach every follower).
    pub(super) fn assign_reads(&mut self) -> bool {
        let committed_in_term = self.log.term_at(self.commit) == Some(self.term);
        if !committed_in_term || self.reads.iter().all(|r| r.at.is_some()) {
            return false;
        }
        self.seq += 1;
        let at = (self.commit, self.seq);
        for read in self.reads.iter_mut().filter(|r| r.at.is_none()) {
            read.at = Some(at);
        }
        true
    }

    /// Serves the reads whose round a majority confirmed and whose index is applied.
    pub(super) fn serve_reads(&mut self, ctx: &mut Ctx<Msg>) {
        if !self.is_leader() || self.reads.is_empty() {
            return;
        }
        let mut acked: Vec<u64> = self.progress.values().map(|p| p.acked_seq).collect();
        acked.push(self.seq);
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let confirmed_seq = acked[self.quorum - 1];
        let applied = self.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads)
            .into_iter()
            .partition(|r| matches!(r.at, Some((index, seq)) if seq <= confirmed_seq && index <= applied));
        self.reads = waiting;
        for read in ready {
            let reply = self.apply_request(&Request::Read { key: read.key.clone() });
            self.respond(ctx, &read.origin, reply);
        }
    }

    /// Times out clients that waited too long (their request may still take effect: code 0).
    pub(super) fn sweep(&mut self, ctx: &mut Ctx<Msg>) {
        let limit = self.opts.client_timeout_ms;
        let now = ctx.now_ms;
        let expired: Vec<ClientId> =
            self.waiting.iter().filter(|(_, &since)| now.saturating_sub(since) > limit || since > now + limit).map(|(&id, _)| id).collect();
        for id in expired {
            self.waiting.remove(&id);
            ctx.reply(id, Reply::error(ErrorCode::Timeout, "timed out waiting for the cluster"));
        }
    }
}
