//! Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", 2014) as a
//! pure [`Core`]: leader election with randomized timeouts and pre-vote, log replication with
//! batching and pipelining, commitment by a majority of the current term (§5.4.2), snapshots
//! with InstallSnapshot, and linearizable reads by ReadIndex (a heartbeat round confirms
//! leadership before a read is served from the applied state).
//!
//! The concerns live in separate files: [`log`] (the in-memory log), [`storage`] (what is made
//! durable and how a restart rebuilds the node), [`election`], [`replication`], and [`client`]
//! (requests, forwarding to the leader, reads, applying committed entries and replying).
//!
//! Durable state: the file `meta` (term, vote, boot counter), the file `snapshot`, and the log
//! `log` (one record per entry; rewritten on truncation and compaction).
//!
//! Check-quorum (as etcd-raft does it): every election timeout (N ms) a leader counts the
//! followers that answered it since the previous count; with fewer than a majority, itself
//! included, it steps down to follower in the same term and refuses clients with error 11
//! ("lost quorum: ..."), so clients of a leader cut off from the majority learn at once that it
//! cannot serve instead of waiting for their timeout ([`election`]).
//!
//! Options: `--read-mode index|log|local` (default `index`; `local` is the known-weak mode),
//! `--election-timeout-ms N` (timeouts are drawn from [N, 2N]), `--heartbeat-ms N`,
//! `--snapshot-every N` (entries), `--no-prevote`, `--no-check-quorum`, and the known-bug
//! switches `--bug NAME` ([`bugs`]).

pub mod bugs;
mod client;
mod election;
pub mod log;
mod replication;
mod storage;

use crate::core::{ClientId, Core, Ctx, Describe, NodeConfig, NodeId, Reply, Request, Storage, TimerId};
use crate::sm::StateMachine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

pub use bugs::{Bug, Bugs};
pub use log::Log;

const TIMER_ELECTION: TimerId = 1;
const TIMER_HEARTBEAT: TimerId = 2;
const TIMER_FLUSH: TimerId = 3;
const TIMER_SWEEP: TimerId = 4;
/// A leader's check-quorum round, every election timeout (`election_ms`).
const TIMER_CHECK_QUORUM: TimerId = 5;
/// How many terms of "who led" are kept for the one-leader-per-term assertion.
const LEADERS_REMEMBERED: usize = 64;

/// What `faultline-node raft --describe` prints.
pub fn describe() -> Describe {
    Describe {
        protocol: "raft".into(),
        claims: vec!["linearizable".into(), "durable-state".into()],
        // Append first, the default: lists keep their evidence (a lost or reordered acknowledged
        // write stays visible in every later read) and the replicas' lists can be compared.
        workloads: vec!["append".into(), "register".into(), "counter".into(), "set".into()],
        weak_modes: vec![
            "--read-mode local: every node answers reads from its own applied state without confirming leadership; \
             reads are stale under partitions (not linearizable)"
                .into(),
        ],
        bugs: Bugs::describe(),
        unsupported: Default::default(),
    }
}

/// Who sent a client request: the node that holds the client, that process's boot number, and
/// the runtime's client id there. Carried in log entries so whoever applies an entry can route
/// the reply, and so a restarted node never answers a new client with an old entry's result.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Origin {
    pub node: NodeId,
    pub boot: u64,
    pub id: ClientId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// The entry a new leader appends to commit its term (§5.4.2, §8).
    Noop,
    Client { origin: Origin, request: Request },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub index: u64,
    pub term: u64,
    pub cmd: Command,
}

/// Peer messages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg {
    /// RequestVote (§5.2); `pre` marks a pre-vote (§9.6), which changes nobody's term.
    RequestVote { term: u64, last_index: u64, last_term: u64, pre: bool },
    Vote { term: u64, granted: bool, pre: bool },
    /// AppendEntries (§5.3); `seq` is echoed so the leader can confirm reads (ReadIndex).
    Append { term: u64, prev_index: u64, prev_term: u64, entries: Vec<Entry>, commit: u64, seq: u64 },
    /// `match_index` is the follower's last index known to match the leader's (on success);
    /// `hint` is where the leader should retry from (on failure).
    AppendResp { term: u64, success: bool, match_index: u64, hint: u64, seq: u64 },
    /// InstallSnapshot (§7), in one message.
    Snapshot { term: u64, index: u64, snap_term: u64, state: StateMachine, seq: u64 },
    /// A client request a follower passes to the leader.
    Forward { origin: Origin, request: Request },
    /// The answer to a forwarded request, sent back to the node holding the client.
    ForwardReply { origin: Origin, reply: Reply },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// ReadIndex: confirm leadership with a heartbeat round, wait for the apply index.
    Index,
    /// Reads are log entries like writes.
    Log,
    /// Known-weak: answer from the local applied state at once.
    Local,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub read_mode: ReadMode,
    pub election_ms: u64,
    pub heartbeat_ms: u64,
    pub snapshot_every: u64,
    pub prevote: bool,
    /// A leader that heard from less than a majority within an election timeout steps down.
    pub check_quorum: bool,
    /// Entries per AppendEntries message.
    pub max_batch: u64,
    /// Entries sent but not yet acknowledged, per follower.
    pub max_inflight: u64,
    /// A client waiting longer than this gets an indefinite timeout error.
    pub client_timeout_ms: u64,
    /// Known bugs switched on (none by default).
    pub bugs: Bugs,
}

impl Options {
    /// Reads the protocol options; a bad value is an error naming it.
    pub fn from_config(config: &NodeConfig) -> Result<Options, String> {
        let num = |name: &str, default: u64| -> Result<u64, String> {
            match config.option(name) {
                None => Ok(default),
                Some(v) => v.parse::<u64>().ok().filter(|n| *n > 0).ok_or(format!("--{name} {v:?}: expected a positive integer")),
            }
        };
        let read_mode = match config.option("read-mode") {
            None | Some("index") => ReadMode::Index,
            Some("log") => ReadMode::Log,
            Some("local") => ReadMode::Local,
            Some(other) => return Err(format!("--read-mode {other:?}: expected index, log or local")),
        };
        let known = ["read-mode", "election-timeout-ms", "heartbeat-ms", "snapshot-every", "no-prevote", "no-check-quorum", "max-batch", crate::bugs::OPTION];
        if let Some(unknown) = config.options.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!("unknown raft option --{unknown}"));
        }
        Ok(Options {
            read_mode,
            election_ms: num("election-timeout-ms", 300)?,
            heartbeat_ms: num("heartbeat-ms", 60)?,
            snapshot_every: num("snapshot-every", 20_000)?,
            prevote: !config.flag("no-prevote"),
            check_quorum: !config.flag("no-check-quorum"),
            max_batch: num("max-batch", 1_000)?,
            max_inflight: 20_000,
            client_timeout_ms: 10_000,
            bugs: Bugs::from_config(config)?,
        })
    }
}

/// Validates raft's protocol options (for the binary's usage errors).
pub fn validate(config: &NodeConfig) -> Result<(), String> {
    Options::from_config(config).map(|_| ())
}

/// The leader's view of one follower.
#[derive(Clone, Debug, PartialEq)]
struct Progress {
    next: u64,
    matched: u64,
    /// The highest heartbeat sequence number the follower answered in this term.
    acked_seq: u64,
    /// `matched` at the previous heartbeat: unchanged with entries outstanding means a message
    /// was lost, and the leader resends from `matched + 1`.
    matched_at_tick: u64,
    /// Whether the follower answered (any AppendResp of this term) since the last check-quorum
    /// round.
    recent_active: bool,
}

/// A read waiting for ReadIndex: leadership confirmation (`seq`) and apply progress (`index`).
#[derive(Clone, Debug, PartialEq)]
struct PendingRead {
    origin: Origin,
    key: Option<Value>,
    /// Assigned at the next heartbeat round: (commit index then, that round's seq).
    at: Option<(u64, u64)>,
}

/// One Raft node.
#[derive(Clone, Debug)]
pub struct Raft {
    id: NodeId,
    peers: Vec<NodeId>,
    quorum: usize,
    workload: String,
    opts: Options,
    /// Incremented and saved at every start, see [`Origin`].
    boot: u64,
    // Persistent (§5, Figure 2).
    term: u64,
    voted_for: Option<NodeId>,
    log: Log,
    // Volatile.
    role: Role,
    leader: Option<NodeId>,
    /// Whether a leader was heard since the last election timeout (pre-votes are refused then).
    leader_alive: bool,
    /// Why this node stepped down from leadership, while it knows no leader since: the reason
    /// its clients' refusals give ("lost quorum: heard from 1 of 5 nodes within 300 ms").
    lost_quorum: Option<String>,
    commit: u64,
    applied: u64,
    sm: StateMachine,
    /// The state as of the latest snapshot (what InstallSnapshot ships).
    snapshot_sm: StateMachine,
    votes: BTreeSet<NodeId>,
    // Leader only.
    progress: BTreeMap<NodeId, Progress>,
    seq: u64,
    reads: Vec<PendingRead>,
    flush_armed: bool,
    // Clients of this node: id to the wall-clock ms it arrived (for the timeout sweep).
    waiting: BTreeMap<ClientId, u64>,
    leaders_seen: BTreeMap<u64, NodeId>,
}

impl Raft {
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn term(&self) -> u64 {
        self.term
    }
    pub fn leader(&self) -> Option<&NodeId> {
        self.leader.as_ref()
    }
    pub fn commit_index(&self) -> u64 {
        self.commit
    }
    pub fn applied_index(&self) -> u64 {
        self.applied
    }
    pub fn log(&self) -> &Log {
        &self.log
    }
    pub fn state_machine(&self) -> &StateMachine {
        &self.sm
    }

    /// A canonical text of the state that matters to the protocol (for model checking, where
    /// states are hashed and compared).
    pub fn fingerprint(&self) -> String {
        format!(
            "{}|{:?}|{:?}|{:?}|{:?}|{}|{}|{:?}|{:?}|{:?}|{}|{:?}|{}|{}|{:?}",
            self.term,
            self.voted_for,
            self.role,
            self.leader,
            self.log,
            self.commit,
            self.applied,
            self.sm,
            self.votes,
            self.progress,
            self.leader_alive,
            self.reads,
            self.flush_armed,
            self.seq,
            self.waiting.keys().collect::<Vec<_>>()
        )
    }

    fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// Raises the commit index. It never goes back: what was committed stays committed.
    fn advance_commit(&mut self, index: u64) {
        crate::safety_assert!(index >= self.commit, "commit index would go back from {} to {index}", self.commit);
        self.commit = index;
    }

    /// Records `leader` as the leader of `term`, asserting Election Safety (§5.2, Figure 3).
    fn note_leader(&mut self, term: u64, leader: &str) {
        if let Some(seen) = self.leaders_seen.get(&term) {
            crate::safety_assert!(seen == leader, "two leaders in term {term}: {seen} and {leader}");
            return;
        }
        self.leaders_seen.insert(term, leader.to_string());
        while self.leaders_seen.len() > LEADERS_REMEMBERED {
            self.leaders_seen.pop_first();
        }
    }
}

impl Core for Raft {
    type Msg = Msg;

    fn recover(config: &NodeConfig, storage: &Storage) -> Raft {
        let opts = Options::from_config(config).unwrap_or_else(|e| {
            tracing::warn!("{e}; using defaults");
            Options::from_config(&NodeConfig { options: BTreeMap::new(), ..config.clone() }).expect("defaults are valid")
        });
        let mut raft = Raft {
            id: config.id.clone(),
            peers: config.peers.clone(),
            quorum: config.quorum(),
            workload: config.workload.clone(),
            opts,
            boot: 0,
            term: 0,
            voted_for: None,
            log: Log::default(),
            role: Role::Follower,
            leader: None,
            leader_alive: false,
            lost_quorum: None,
            commit: 0,
            applied: 0,
            sm: StateMachine::default(),
            snapshot_sm: StateMachine::default(),
            votes: BTreeSet::new(),
            progress: BTreeMap::new(),
            seq: 0,
            reads: Vec::new(),
            flush_armed: false,
            waiting: BTreeMap::new(),
            leaders_seen: BTreeMap::new(),
        };
        raft.restore(storage);
        raft
    }

    fn on_start(&mut self, ctx: &mut Ctx<Msg>) {
        self.boot += 1;
        self.save_meta(ctx);
        self.reset_election_timer(ctx);
        ctx.set_timer(TIMER_SWEEP, 1_000);
    }

    fn on_request(&mut self, ctx: &mut Ctx<Msg>, client: ClientId, request: Request) {
        self.client_request(ctx, client, request);
    }

    fn on_message(&mut self, ctx: &mut Ctx<Msg>, from: &str, msg: Msg) {
        match msg {
            Msg::RequestVote { term, last_index, last_term, pre } => self.on_request_vote(ctx, from, term, last_index, last_term, pre),
            Msg::Vote { term, granted, pre } => self.on_vote(ctx, from, term, granted, pre),
            Msg::Append { term, prev_index, prev_term, entries, commit, seq } => {
                self.on_append(ctx, from, term, prev_index, prev_term, entries, commit, seq)
            }
            Msg::AppendResp { term, success, match_index, hint, seq } => {
                self.on_append_resp(ctx, from, term, success, match_index, hint, seq)
            }
            Msg::Snapshot { term, index, snap_term, state, seq } => self.on_snapshot(ctx, from, term, index, snap_term, state, seq),
            Msg::Forward { origin, request } => self.on_forward(ctx, origin, request),
            Msg::ForwardReply { origin, reply } => self.on_forward_reply(ctx, origin, reply),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Msg>, timer: TimerId) {
        match timer {
            TIMER_ELECTION => self.on_election_timeout(ctx),
            TIMER_HEARTBEAT => self.on_heartbeat(ctx),
            TIMER_CHECK_QUORUM => self.on_check_quorum(ctx),
            TIMER_FLUSH => {
                self.flush_armed = false;
                self.flush(ctx);
            }
            TIMER_SWEEP => {
                self.sweep(ctx);
                ctx.set_timer(TIMER_SWEEP, 1_000);
            }
            _ => {}
        }
    }

    /// This node's applied state, whatever its role: a follower's may lag the leader's, never
    /// contradict it (the `agreement` checker's premise).
    fn local_read(&self, key: Option<&Value>) -> Reply {
        self.sm.local_read(key, &self.workload)
    }

    fn status(&self) -> Value {
        json!({
            "role": self.role,
            "term": self.term,
            "leader": self.leader,
            "commit_index": self.commit,
            "last_index": self.log.last_index(),
            // What this node persisted before acting on it (the `durable-state` claim): the
            // runtime makes every save durable before any reply leaves, this one included.
            "durable": {"epoch": self.term, "choice": self.voted_for},
        })
    }
}
