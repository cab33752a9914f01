//! Multi-Paxos: a replicated log of client commands, one Paxos instance per slot.
//!
//! A distinguished proposer (the leader) runs phase 1 once, with one ballot for every slot from
//! its first unapplied one on, and then phase 2 per slot, with a window of slots in flight and
//! a batch of client commands per slot. Followers watch the leader's heartbeats; when they stop,
//! a follower takes over with a higher ballot after a randomized timeout, re-proposes the
//! highest-ballot values the promises report and fills the remaining holes with no-ops.
//!
//! The code is split by concern: [`types`] (ballots, commands, messages), [`acceptor`] (the pure
//! promise/accept rules), [`proposer`] (elections, phase 1 and 2, heartbeats), [`replica`]
//! (persisting acceptor answers, learning, applying, snapshots, catch-up), [`learner`] (the
//! chosen log and the state machine), [`storage`] (durable formats and recovery).
//!
//! Every command — reads included — goes through the log, and a client is answered only when
//! its command's slot is chosen and applied, so the service is linearizable. A node that is not
//! the leader forwards commands to the leader it knows, or answers error 11.

pub mod acceptor;
pub mod bugs;
pub mod learner;
mod proposer;
mod replica;
pub mod storage;
pub mod types;

use crate::core::{ErrorCode, ClientId, Core, Ctx, Describe, NodeConfig, NodeId, Reply, Request, Storage, TimerId};
use acceptor::Acceptor;
use learner::Learner;
use proposer::Role;
use crate::sm::StateMachine;
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
pub use bugs::{Bug, Bugs};
pub use types::{Ballot, Batch, Cmd, CmdId, Msg, Slot, Snapshot};

/// What this protocol claims (`--describe`).
pub fn describe() -> Describe {
    Describe {
        protocol: "paxos".into(),
        claims: vec!["linearizable".into(), "durable-state".into()],
        // Append first, the default: lists keep their evidence (a lost or reordered acknowledged
        // write stays visible in every later read) and the replicas' lists can be compared.
        workloads: vec!["append".into(), "register".into(), "counter".into(), "set".into()],
        weak_modes: Vec::new(),
        bugs: Bugs::describe(),
        unsupported: Default::default(),
    }
}

/// The numeric protocol options and the one flag `--trace`.
const NUMERIC_OPTIONS: [&str; 8] =
    ["heartbeat-ms", "election-ms", "batch", "window", "max-queue", "snapshot-every", "pending-timeout-ms", "catchup-limit"];

/// Checks the protocol options, so a typo is a usage error instead of a silent default.
pub fn validate(config: &NodeConfig) -> Result<(), String> {
    if !describe().workloads.contains(&config.workload) {
        return Err(format!("paxos does not serve the {:?} workload", config.workload));
    }
    Bugs::from_config(config)?;
    for (name, value) in &config.options {
        if name == "trace" || name == crate::bugs::OPTION {
            continue;
        }
        if !NUMERIC_OPTIONS.contains(&name.as_str()) {
            return Err(format!("unknown paxos option --{name} (known: {}, trace, bug)", NUMERIC_OPTIONS.join(", ")));
        }
        match value.parse::<u64>() {
            Ok(v) if v > 0 => {}
            _ => return Err(format!("--{name} wants a positive integer, got {value:?}")),
        }
    }
    Ok(())
}

const TIMER_TICK: TimerId = 1;
const TIMER_ELECTION: TimerId = 2;

/// Tunables, from protocol options (`--heartbeat-ms 50`, `--election-ms 300`, `--batch 64`,
/// `--window 16`, `--snapshot-every 1000`, `--pending-timeout-ms 5000`, `--trace`).
#[derive(Clone, Debug)]
pub struct Params {
    pub heartbeat_ms: u64,
    /// Followers start an election after a random quiet time in `[election_ms, 2 * election_ms]`.
    pub election_ms: u64,
    pub max_batch: usize,
    pub window: usize,
    pub max_queue: usize,
    pub snapshot_every: u64,
    pub pending_timeout_ms: u64,
    pub catchup_limit: usize,
    /// Record [`TraceEvent`]s for simulations.
    pub trace: bool,
    /// Known bugs switched on (none by default; [`validate`] rejects unknown names).
    pub bugs: Bugs,
}

impl Params {
    pub fn from_config(config: &NodeConfig) -> Params {
        let num = |name: &str, default: u64| config.option(name).and_then(|v| v.parse().ok()).unwrap_or(default);
        Params {
            heartbeat_ms: num("heartbeat-ms", 50).max(1),
            election_ms: num("election-ms", 300).max(2),
            max_batch: num("batch", 64).max(1) as usize,
            window: num("window", 16).max(1) as usize,
            max_queue: num("max-queue", 10_000).max(1) as usize,
            snapshot_every: num("snapshot-every", 1000).max(1),
            pending_timeout_ms: num("pending-timeout-ms", 5000),
            catchup_limit: num("catchup-limit", 256).max(1) as usize,
            trace: config.flag("trace"),
            bugs: Bugs::from_config(config).unwrap_or_default(),
        }
    }

    fn ticks(&self, ms: u64) -> u64 {
        ms.div_ceil(self.heartbeat_ms).max(1)
    }
}

/// What a node observed, recorded only with the `trace` option so simulations can check
/// agreement and the order of acknowledged commands.
#[derive(Clone, Debug, PartialEq)]
pub enum TraceEvent {
    /// A client request got this command id.
    Submitted { client: ClientId, id: CmdId },
    /// A slot was applied with this value.
    Applied { slot: Slot, value: Batch },
}

/// A client request waiting for its slot to be applied.
#[derive(Clone, Debug)]
struct Pending {
    client: ClientId,
    expires_tick: u64,
}

/// One Multi-Paxos node.
pub struct Paxos {
    id: NodeId,
    me: u32,
    members: Vec<NodeId>,
    quorum: usize,
    params: Params,
    incarnation: u64,
    next_seq: u64,
    acceptor: Acceptor<Batch>,
    learner: Learner,
    role: Role,
    /// The leadership this node believes in (its ballot names the leader).
    leader: Option<Ballot>,
    /// The highest ballot seen anywhere, so a new election outbids it.
    max_seen: Ballot,
    /// Why this node gave up its leadership, while it knows no leader since: the reason its
    /// clients' refusals give ("lost quorum: heard from 1 of 5 nodes within 300 ms").
    lost_quorum: Option<String>,
    /// Commands waiting for a slot (on a leader or candidate).
    queue: VecDeque<Cmd>,
    /// This node's clients waiting for their command to be applied.
    pending: BTreeMap<CmdId, Pending>,
    tick: u64,
    /// Per peer: the last tick it answered this leader, and the slot it has applied.
    heard: BTreeMap<NodeId, u64>,
    peer_applied: BTreeMap<NodeId, Slot>,
    /// Messages to this node itself, handled before the step ends.
    inbox: VecDeque<Msg>,
    trace: Vec<TraceEvent>,
}

impl Paxos {
    fn peers(&self) -> impl Iterator<Item = &NodeId> {
        let me = &self.id;
        self.members.iter().filter(move |m| *m != me)
    }

    fn member(&self, index: u32) -> Option<&NodeId> {
        self.members.get(index as usize)
    }

    /// Sends to every peer and to itself.
    fn broadcast(&mut self, ctx: &mut Ctx<Msg>, msg: Msg) {
        for p in self.peers() {
            ctx.send(p.clone(), msg.clone());
        }
        self.inbox.push_back(msg);
    }

    /// Sends to one member, or to itself through the inbox.
    fn send_to(&mut self, ctx: &mut Ctx<Msg>, to: &str, msg: Msg) {
        if to == self.id {
            self.inbox.push_back(msg);
        } else {
            ctx.send(to.to_string(), msg);
        }
    }

    fn drain_inbox(&mut self, ctx: &mut Ctx<Msg>) {
        // Bounded: each self-message is caused by a step of this node, and every chain of them
        // ends (accept -> accepted -> learn); the limit only guards against a future bug.
        for _ in 0..100_000 {
            let Some(msg) = self.inbox.pop_front() else { return };
            let me = self.id.clone();
            self.handle(ctx, &me, msg);
        }
        panic!("paxos: self-message loop");
    }

    fn handle(&mut self, ctx: &mut Ctx<Msg>, from: &str, msg: Msg) {
        match msg {
            Msg::Prepare { ballot, from_slot } => self.on_prepare(ctx, from, ballot, from_slot),
            Msg::Promise { ballot, compacted, applied, accepted } => {
                self.on_promise(ctx, from, ballot, compacted, applied, accepted)
            }
            Msg::Accept { ballot, slot, value } => self.on_accept(ctx, from, ballot, slot, value),
            Msg::Accepted { ballot, slot } => self.on_accepted(ctx, from, ballot, slot),
            Msg::Nack { ballot, promised } => self.on_nack(ctx, ballot, promised),
            Msg::Learn { entries } => self.on_learn(ctx, entries),
            Msg::Heartbeat { ballot, applied } => self.on_heartbeat(ctx, from, ballot, applied),
            Msg::HeartbeatAck { ballot, applied } => self.on_heartbeat_ack(from, ballot, applied),
            Msg::Forward { ballot, cmd } => self.on_forward(ctx, from, ballot, cmd),
            Msg::Reject { ids } => self.on_reject(ctx, ids),
            Msg::CatchUpReq { from_slot } => self.on_catchup_req(ctx, from, from_slot),
            Msg::CatchUp { snapshot, entries } => self.on_catchup(ctx, snapshot, entries),
        }
    }

    fn new_cmd(&mut self, request: Request) -> Cmd {
        self.next_seq += 1;
        Cmd { id: CmdId { node: self.me, incarnation: self.incarnation, seq: self.next_seq }, request }
    }

    /// A client request: queue it (leader), forward it (follower that knows a leader) or refuse
    /// it (no leader known, or this node is still asking for its ballot: a node cut off from the
    /// majority keeps asking, and its clients learn at once that it cannot serve, as raft's do).
    fn submit(&mut self, ctx: &mut Ctx<Msg>, client: ClientId, request: Request) {
        if matches!(request, Request::Transfer { .. }) {
            return ctx.reply(client, Reply::error(ErrorCode::NotSupported, "paxos does not serve transfers"));
        }
        if self.pending.len() >= self.params.max_queue {
            return ctx.reply(client, Reply::error(ErrorCode::TemporarilyUnavailable, "too many requests in flight"));
        }
        if self.params.bugs.has(Bug::LeaderLocalRead) && self.is_leader() && StateMachine::is_read(&request) {
            // BUG(leader-local-read): believing it leads is taken for leading; the log is skipped.
            return ctx.reply(client, self.learner.execute(&request));
        }
        let leader = match (&self.role, self.leader) {
            (Role::Follower, Some(b)) if b.node != self.me => self.member(b.node).map(|name| (name.clone(), b)),
            (Role::Follower, _) => {
                return ctx.reply(client, Reply::error(ErrorCode::TemporarilyUnavailable, self.refusal("no known leader")));
            }
            (Role::Candidate(_), _) => {
                return ctx.reply(client, Reply::error(ErrorCode::TemporarilyUnavailable, self.refusal("electing a leader")));
            }
            _ => None,
        };
        let cmd = self.new_cmd(request);
        let expires_tick = self.tick + self.params.ticks(self.params.pending_timeout_ms);
        self.pending.insert(cmd.id, Pending { client, expires_tick });
        if self.params.trace {
            self.trace.push(TraceEvent::Submitted { client, id: cmd.id });
        }
        match leader {
            Some((name, ballot)) => ctx.send(name, Msg::Forward { ballot, cmd }),
            None => {
                self.queue.push_back(cmd);
                self.propose_queued(ctx);
            }
        }
    }

    /// The text of a refusal for lack of a leader; it names the lost quorum when that is why
    /// this node stopped leading.
    fn refusal(&self, why: &str) -> String {
        match &self.lost_quorum {
            Some(lost) => format!("{lost}; {why}"),
            None => why.to_string(),
        }
    }

    /// A command forwarded to this node's leadership of `ballot`. Anything else is dropped
    /// without an answer: this node may have led that ballot before and proposed an earlier
    /// copy of the command, so only "unknown" (the client's timeout) is the truth.
    fn on_forward(&mut self, ctx: &mut Ctx<Msg>, from: &str, ballot: Ballot, cmd: Cmd) {
        let Role::Leader(l) = &mut self.role else { return };
        if l.ballot != ballot || !l.remember(cmd.id) {
            return;
        }
        if self.queue.len() >= self.params.max_queue {
            return self.send_to(ctx, from, Msg::Reject { ids: vec![cmd.id] });
        }
        self.queue.push_back(cmd);
        self.propose_queued(ctx);
    }

    fn on_reject(&mut self, ctx: &mut Ctx<Msg>, ids: Vec<CmdId>) {
        for id in ids {
            if let Some(p) = self.pending.remove(&id) {
                ctx.reply(p.client, Reply::error(ErrorCode::TemporarilyUnavailable, "the leader changed; retry"));
            }
        }
    }

    /// Answers with a timeout (indefinite: the command may still be chosen later) every
    /// request that waited too long, so the pending table stays bounded.
    fn expire_pending(&mut self, ctx: &mut Ctx<Msg>) {
        let tick = self.tick;
        let expired: Vec<CmdId> = self.pending.iter().filter(|(_, p)| p.expires_tick <= tick).map(|(id, _)| *id).collect();
        for id in expired {
            if let Some(p) = self.pending.remove(&id) {
                ctx.reply(p.client, Reply::error(ErrorCode::Timeout, "not decided in time"));
            }
        }
    }

    fn arm_election(&self, ctx: &mut Ctx<Msg>) {
        ctx.set_random_timer(TIMER_ELECTION, self.params.election_ms, 2 * self.params.election_ms);
    }

    /// Takes the trace recorded since the last call (empty without the `trace` option).
    pub fn take_trace(&mut self) -> Vec<TraceEvent> {
        std::mem::take(&mut self.trace)
    }

    pub fn applied(&self) -> Slot {
        self.learner.applied
    }

    pub fn state_machine(&self) -> &crate::sm::StateMachine {
        &self.learner.sm
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, Role::Leader(_))
    }

    pub fn promised(&self) -> Ballot {
        self.acceptor.promised
    }
}

impl Core for Paxos {
    type Msg = Msg;

    fn recover(config: &NodeConfig, storage: &Storage) -> Self {
        let rec = storage::recover(storage);
        for w in &rec.warnings {
            tracing::error!("paxos recovery skipped {w}");
        }
        let members = config.members();
        let me = members.iter().position(|m| *m == config.id).unwrap_or(0) as u32;
        let params = Params::from_config(config);
        let mut acceptor = rec.acceptor;
        acceptor.round_only = params.bugs.has(Bug::BallotGe);
        Paxos {
            id: config.id.clone(),
            me,
            quorum: config.quorum(),
            incarnation: rec.incarnation + 1,
            next_seq: 0,
            max_seen: acceptor.promised,
            lost_quorum: None,
            acceptor,
            params,
            learner: Learner::new(&config.workload, rec.snapshot),
            role: Role::Follower,
            leader: None,
            queue: VecDeque::new(),
            pending: BTreeMap::new(),
            tick: 0,
            heard: BTreeMap::new(),
            peer_applied: BTreeMap::new(),
            inbox: VecDeque::new(),
            trace: Vec::new(),
            members,
        }
    }

    fn on_start(&mut self, ctx: &mut Ctx<Msg>) {
        // The incarnation must be durable before any command id that carries it leaves.
        self.save_meta(ctx);
        ctx.set_timer(TIMER_TICK, self.params.heartbeat_ms);
        self.arm_election(ctx);
    }

    fn on_request(&mut self, ctx: &mut Ctx<Msg>, client: ClientId, request: Request) {
        self.submit(ctx, client, request);
        self.drain_inbox(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<Msg>, from: &str, msg: Msg) {
        if !self.members.iter().any(|m| m == from) || from == self.id {
            tracing::warn!("paxos: message from unknown node {from}");
            return;
        }
        self.handle(ctx, from, msg);
        self.drain_inbox(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Msg>, timer: TimerId) {
        match timer {
            TIMER_TICK => {
                self.tick += 1;
                self.expire_pending(ctx);
                self.on_tick(ctx);
                ctx.set_timer(TIMER_TICK, self.params.heartbeat_ms);
            }
            TIMER_ELECTION => {
                if !self.is_leader() {
                    self.start_election(ctx);
                }
                self.arm_election(ctx);
            }
            _ => {}
        }
        self.drain_inbox(ctx);
    }

    /// The learner's applied state, whatever this node's role (never through the log).
    fn local_read(&self, key: Option<&Value>) -> Reply {
        self.learner.local_read(key)
    }

    fn status(&self) -> Value {
        let role = match self.role {
            Role::Follower => "follower",
            Role::Candidate(_) => "candidate",
            Role::Leader(_) => "leader",
        };
        let ballot = self.role.ballot().or(self.leader).unwrap_or(self.acceptor.promised);
        let in_flight = match &self.role {
            Role::Leader(l) => l.in_flight.len(),
            _ => 0,
        };
        json!({
            "leader": self.leader.and_then(|b| self.member(b.node).cloned()),
            "ballot": {"round": ballot.round, "node": self.member(ballot.node)},
            "role": role,
            "applied": self.learner.applied,
            "in_flight": in_flight,
            "queued": self.queue.len(),
            "pending": self.pending.len(),
            // The acceptor's promise, persisted before it is revealed (the `durable-state` claim).
            "durable": {"epoch": [self.acceptor.promised.round, self.acceptor.promised.node]},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Effect;
    use serde_json::json;

    fn config(id: &str, peers: &[&str], options: &[(&str, &str)]) -> NodeConfig {
        NodeConfig {
            id: id.into(),
            peers: peers.iter().map(|p| p.to_string()).collect(),
            workload: "register".into(),
            options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            seed: 1,
        }
    }

    fn replies(effects: &[Effect<Msg>]) -> Vec<(ClientId, Reply)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Reply { client, reply } => Some((*client, reply.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn validate_rejects_unknown_and_malformed_options() {
        assert!(validate(&config("n1", &["n2"], &[("window", "4"), ("trace", "true")])).is_ok());
        assert!(validate(&config("n1", &["n2"], &[("window", "lots")])).unwrap_err().contains("window"));
        assert!(validate(&config("n1", &["n2"], &[("read-mode", "local")])).unwrap_err().contains("read-mode"));
        let mut bank = config("n1", &[], &[]);
        bank.workload = "bank".into();
        assert!(validate(&bank).is_err());
    }

    /// A single node is its own quorum: it elects itself, decides, applies and answers; after a
    /// restart from the persisted effects it still has the promise and the accepted values.
    #[test]
    fn single_node_decides_and_recovers() {
        let cfg = config("n1", &[], &[]);
        let mut storage = Storage::default();
        let mut node = Paxos::recover(&cfg, &storage);
        let mut ctx = Ctx::for_test(0, 1);
        node.on_start(&mut ctx);
        node.on_timer(&mut ctx, TIMER_ELECTION);
        assert!(node.is_leader());
        node.on_request(&mut ctx, 7, Request::Write { key: json!("k"), value: json!(1) });
        node.on_request(&mut ctx, 8, Request::Read { key: Some(json!("k")) });
        let effects = ctx.take();
        assert_eq!(replies(&effects), vec![(7, Reply::WriteOk), (8, Reply::ReadOk(json!(1)))]);
        // Durable effects come before the replies they make true.
        let first_reply = effects.iter().position(|e| matches!(e, Effect::Reply { .. })).unwrap();
        assert!(effects[..first_reply].iter().any(|e| matches!(e, Effect::Append { .. })));
        effects.iter().for_each(|e| storage.apply(e));

        let mut again = Paxos::recover(&cfg, &storage);
        assert_eq!(again.promised(), node.promised());
        assert_eq!(again.acceptor.accepted.len(), 2);
        assert_eq!(again.incarnation, 2);
        let mut ctx = Ctx::for_test(0, 2);
        again.on_start(&mut ctx);
        again.on_timer(&mut ctx, TIMER_ELECTION);
        assert!(again.promised() > node.promised(), "a new leadership needs a higher ballot");
        again.on_request(&mut ctx, 9, Request::Read { key: Some(json!("k")) });
        assert_eq!(replies(&ctx.take()), vec![(9, Reply::ReadOk(json!(1)))]);
    }

    #[test]
    fn follower_without_leader_refuses_definitely() {
        let mut node = Paxos::recover(&config("n1", &["n2", "n3"], &[]), &Storage::default());
        let mut ctx = Ctx::for_test(0, 1);
        node.on_request(&mut ctx, 1, Request::Write { key: json!("k"), value: json!(1) });
        assert!(matches!(replies(&ctx.take())[..], [(1, Reply::Error { code: 11, .. })]));
        assert_eq!(node.status()["role"], "follower");
    }

    #[test]
    fn snapshots_compact_the_accept_log() {
        let cfg = config("n1", &[], &[("snapshot-every", "4")]);
        let mut storage = Storage::default();
        let mut node = Paxos::recover(&cfg, &storage);
        let mut ctx = Ctx::for_test(0, 1);
        node.on_start(&mut ctx);
        node.on_timer(&mut ctx, TIMER_ELECTION);
        for i in 0..10 {
            node.on_request(&mut ctx, i, Request::Add { delta: 1 });
        }
        ctx.take().iter().for_each(|e| storage.apply(e));
        assert!(storage.log(storage::ACCEPT_LOG).len() < 4, "log not compacted");
        let again = Paxos::recover(&cfg, &storage);
        assert_eq!(again.applied(), 8);
        assert_eq!(again.state_machine().counter, 8);
    }
}
