//! Operation-based CRDTs (commutative replicated data types) serving `counter` (a PN-counter:
//! add deltas), `set` (an OR-set, adds only: elements with unique add-tags) and `set-remove`
//! (the same OR-set with observed removes).
//!
//! An update is applied locally, logged and acknowledged in one step (durable before the ack),
//! then broadcast to every peer under a unique id (origin node, origin sequence). The origin
//! retries on a timer until each peer acknowledges; a peer logs an operation before acking it,
//! so an acknowledged operation is never lost. Delivery is deduplicated (at-least-once delivery
//! plus idempotent receipt makes exactly-once application), and because additions commute no
//! causal order is needed. A remove names the add-tags its replica observed; since delivery is
//! not causal, a remove may arrive before an add it removes, so removed tags are kept as
//! tombstones and an add whose tag is a tombstone has no effect: removes and adds then commute
//! too (tombstones are never collected, the price of not tracking causality). The outbox of
//! unacknowledged operations survives restarts: it is rebuilt from the log. Reads are local
//! (strong eventual consistency).

pub mod bugs;
pub mod delivered;

use crate::core::{ErrorCode, ClientId, Core, Ctx, Describe, NodeConfig, NodeId, Reply, Request, Storage, TimerId};
pub use bugs::{Bug, Bugs};
pub use delivered::Delivered;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

pub fn describe() -> Describe {
    Describe {
        protocol: "crdt-op".into(),
        claims: vec!["strong-eventual-consistency".into()],
        workloads: vec!["counter".into(), "set".into(), "set-remove".into()],
        weak_modes: vec![],
        bugs: Bugs::describe(),
        unsupported: Default::default(),
    }
}

/// Checks the configuration (for the binary): this protocol has no options of its own besides
/// the known-bug switches.
pub fn validate(config: &NodeConfig) -> Result<(), String> {
    Bugs::from_config(config)?;
    if ["counter", "set", "set-remove"].contains(&config.workload.as_str()) {
        Ok(())
    } else {
        Err(format!("crdt-op does not serve the {} workload", config.workload))
    }
}

const LOG: &str = "crdt-op";
const RETRY: TimerId = 1;
pub const RETRY_MS: u64 = 200;
/// At most this many operations go to one peer in one retry round (a bounded message).
const BATCH: usize = 256;
const COMPACT_AFTER: usize = 2048;

/// An operation's unique id: the node that made it and its sequence there (from 1).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId {
    pub origin: NodeId,
    pub seq: u64,
}

/// One update.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    Add { delta: i64 },
    /// Add `element` (its JSON text); the op id is its unique tag.
    AddElement { element: String },
    /// Remove `element`: the add-tags its origin had observed.
    RemoveElement { element: String, tags: BTreeSet<OpId> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    Ops(Vec<(OpId, Op)>),
    Acks(Vec<OpId>),
}

/// The replicated value and the bookkeeping of delivery; serialised as the log's snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Replica {
    pub counter: i64,
    /// Element (JSON text) to its add-tags not removed; an element is present while it has one.
    pub set: BTreeMap<String, BTreeSet<OpId>>,
    /// Add-tags removed (tombstones), so an add delivered after its remove stays removed.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub removed: BTreeSet<OpId>,
    /// Which operations of each origin were applied here.
    pub delivered: BTreeMap<NodeId, Delivered>,
    /// This node's last sequence number.
    pub seq: u64,
    /// This node's operations some peer has not acknowledged: op and the peers still missing.
    pub outbox: BTreeMap<u64, (Op, BTreeSet<NodeId>)>,
}

/// A log record.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Rec {
    /// An operation applied here (made here, or received).
    Op(OpId, Op),
    /// A peer acknowledged some of this node's operations (lost on a crash: then resent).
    Acked(NodeId, Vec<u64>),
    Snapshot(Replica),
}

impl Replica {
    /// Applies an operation once; whether it was new.
    pub fn apply(&mut self, id: &OpId, op: &Op) -> bool {
        self.apply_with(id, op, Bugs::default())
    }

    /// [`Replica::apply`], with the known bugs in `bugs` switched on.
    pub fn apply_with(&mut self, id: &OpId, op: &Op, bugs: Bugs) -> bool {
        if !self.delivered.entry(id.origin.clone()).or_default().insert(id.seq) {
            return false;
        }
        self.effect(id, op, bugs);
        true
    }

    /// The operation's effect on the value, without the delivery bookkeeping.
    fn effect(&mut self, id: &OpId, op: &Op, bugs: Bugs) {
        match op {
            Op::Add { delta } => self.counter = self.counter.saturating_add(*delta),
            Op::AddElement { element } => {
                if !self.removed.contains(id) {
                    self.set.entry(element.clone()).or_default().insert(id.clone());
                }
            }
            Op::RemoveElement { element, tags } => {
                self.removed.extend(tags.iter().cloned());
                let Some(held) = self.set.get_mut(element) else { return };
                if bugs.has(Bug::RemoveDropsUnobserved) {
                    // BUG(remove-drops-unobserved): every tag held here goes, also the tags of
                    // adds the remove's origin never observed (concurrent ones).
                    held.clear();
                } else {
                    held.retain(|t| !tags.contains(t));
                }
                if held.is_empty() {
                    self.set.remove(element);
                }
            }
        }
    }

    pub fn elements(&self) -> Vec<Value> {
        crate::crdt_state::lattice::sorted_elements(self.set.keys().map(String::as_str))
    }
}

pub struct CrdtOp {
    id: NodeId,
    peers: Vec<NodeId>,
    workload: String,
    bugs: Bugs,
    r: Replica,
    log_records: usize,
    notes: Vec<String>,
}

impl CrdtOp {
    pub fn replica(&self) -> &Replica {
        &self.r
    }

    /// Operations not yet acknowledged by every peer.
    pub fn unacked(&self) -> usize {
        self.r.outbox.len()
    }

    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    fn log(&mut self, ctx: &mut Ctx<Msg>, rec: Rec) {
        ctx.append(LOG, serde_json::to_vec(&rec).expect("records serialize"));
        self.log_records += 1;
        if self.log_records >= COMPACT_AFTER {
            ctx.rewrite(LOG, vec![serde_json::to_vec(&Rec::Snapshot(self.r.clone())).expect("records serialize")]);
            self.log_records = 1;
        }
    }

    fn read(&self, key: Option<&Value>) -> Reply {
        match (self.workload.as_str(), key) {
            ("counter", None) => Reply::ReadOk(Value::from(self.r.counter)),
            ("set" | "set-remove", None) => Reply::ReadOk(Value::Array(self.r.elements())),
            _ => Reply::error(ErrorCode::MalformedRequest, "reads take no key here"),
        }
    }

    fn to_op(&self, request: Request) -> Result<Op, Reply> {
        match (self.workload.as_str(), request) {
            ("counter", Request::Add { delta }) => Ok(Op::Add { delta }),
            ("set" | "set-remove", Request::AddElement { element }) => Ok(Op::AddElement { element: element.to_string() }),
            ("set" | "set-remove", Request::RemoveElement { element }) => {
                let element = element.to_string();
                let tags = self.r.set.get(&element).cloned().unwrap_or_default();
                Ok(Op::RemoveElement { element, tags })
            }
            (w, r) => Err(Reply::error(ErrorCode::NotSupported, format!("{r:?} is not served for workload {w}"))),
        }
    }

    fn update(&mut self, ctx: &mut Ctx<Msg>, op: Op) {
        self.r.seq += 1;
        let id = OpId { origin: self.id.clone(), seq: self.r.seq };
        self.r.apply_with(&id, &op, self.bugs);
        self.r.outbox.insert(id.seq, (op.clone(), self.peers.iter().cloned().collect()));
        self.log(ctx, Rec::Op(id.clone(), op.clone()));
        for p in &self.peers {
            ctx.send(p.clone(), Msg::Ops(vec![(id.clone(), op.clone())]));
        }
    }

    fn on_ops(&mut self, ctx: &mut Ctx<Msg>, from: &str, ops: Vec<(OpId, Op)>) {
        let mut acks = Vec::with_capacity(ops.len());
        for (id, op) in ops {
            if id.origin == self.id {
                continue; // our own, echoed back: nothing to do
            }
            if self.receive(&id, &op) && !self.bugs.has(Bug::AckBeforeLog) {
                // Logged before the ack leaves (same step), so the origin may forget it.
                // BUG(ack-before-log): without this record the ack promises what a crash loses.
                self.log(ctx, Rec::Op(id.clone(), op));
            }
            acks.push(id);
        }
        if !acks.is_empty() {
            ctx.send(from.to_string(), Msg::Acks(acks));
        }
    }

    /// Applies a received operation; whether it was new (and so must be logged).
    fn receive(&mut self, id: &OpId, op: &Op) -> bool {
        if self.bugs.has(Bug::RedeliverAppliesTwice) {
            // BUG(redeliver-applies-twice): the delivered set is kept but never consulted.
            self.r.delivered.entry(id.origin.clone()).or_default().insert(id.seq);
            self.r.effect(id, op, self.bugs);
            return true;
        }
        self.r.apply_with(id, op, self.bugs)
    }

    fn on_acks(&mut self, ctx: &mut Ctx<Msg>, from: &str, acks: Vec<OpId>) {
        let mut seqs = Vec::new();
        for id in acks.into_iter().filter(|id| id.origin == self.id) {
            if let Some((_, missing)) = self.r.outbox.get_mut(&id.seq) {
                if missing.remove(from) {
                    seqs.push(id.seq);
                }
                if missing.is_empty() {
                    self.r.outbox.remove(&id.seq);
                }
            }
        }
        if !seqs.is_empty() {
            self.log(ctx, Rec::Acked(from.to_string(), seqs));
        }
    }

    fn retry(&mut self, ctx: &mut Ctx<Msg>) {
        for p in &self.peers {
            let batch: Vec<(OpId, Op)> = self
                .r
                .outbox
                .iter()
                .filter(|(_, (_, missing))| missing.contains(p))
                .take(BATCH)
                .map(|(seq, (op, _))| (OpId { origin: self.id.clone(), seq: *seq }, op.clone()))
                .collect();
            if !batch.is_empty() {
                ctx.send(p.clone(), Msg::Ops(batch));
            }
        }
    }
}

/// Rebuilds the replica from the log.
fn replay(id: &str, peers: &[NodeId], storage: &Storage, bugs: Bugs) -> (Replica, Vec<String>) {
    let mut r = Replica::default();
    let mut notes = Vec::new();
    for (i, bytes) in storage.log(LOG).iter().enumerate() {
        match serde_json::from_slice::<Rec>(bytes) {
            Ok(Rec::Snapshot(s)) => r = s,
            Ok(Rec::Op(op_id, op)) => {
                if op_id.origin == id {
                    r.seq = r.seq.max(op_id.seq);
                    r.outbox.insert(op_id.seq, (op.clone(), peers.iter().cloned().collect()));
                }
                r.apply_with(&op_id, &op, bugs);
            }
            Ok(Rec::Acked(peer, seqs)) => {
                for s in seqs {
                    if let Some((_, missing)) = r.outbox.get_mut(&s) {
                        missing.remove(&peer);
                        if missing.is_empty() {
                            r.outbox.remove(&s);
                        }
                    }
                }
            }
            Err(e) => notes.push(format!("crdt-op log record {i}: {e}")),
        }
    }
    (r, notes)
}

impl Core for CrdtOp {
    type Msg = Msg;

    fn recover(config: &NodeConfig, storage: &Storage) -> Self {
        let bugs = Bugs::from_config(config).unwrap_or_default();
        let (mut r, notes) = replay(&config.id, &config.peers, storage, bugs);
        if bugs.has(Bug::OutboxNotPersisted) {
            // BUG(outbox-not-persisted): the pending broadcasts come back empty, as if they had
            // lived only in memory.
            r.outbox.clear();
        }
        CrdtOp {
            id: config.id.clone(),
            peers: config.peers.clone(),
            workload: config.workload.clone(),
            bugs,
            r,
            log_records: storage.log(LOG).len(),
            notes,
        }
    }

    fn on_start(&mut self, ctx: &mut Ctx<Msg>) {
        self.retry(ctx);
        ctx.set_timer(RETRY, RETRY_MS);
    }

    fn on_request(&mut self, ctx: &mut Ctx<Msg>, client: ClientId, request: Request) {
        let reply = match request {
            Request::Read { key } => self.read(key.as_ref()),
            other => match self.to_op(other) {
                Ok(op) => {
                    let reply = if matches!(op, Op::RemoveElement { .. }) { Reply::RemoveOk } else { Reply::AddOk };
                    self.update(ctx, op);
                    reply
                }
                Err(reply) => reply,
            },
        };
        ctx.reply(client, reply);
    }

    /// Reads are local anyway: a local read is a read.
    fn local_read(&self, key: Option<&Value>) -> Reply {
        self.read(key)
    }

    fn on_message(&mut self, ctx: &mut Ctx<Msg>, from: &str, msg: Msg) {
        match msg {
            Msg::Ops(ops) => self.on_ops(ctx, from, ops),
            Msg::Acks(acks) => self.on_acks(ctx, from, acks),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Msg>, timer: TimerId) {
        if timer == RETRY {
            self.retry(ctx);
            ctx.set_timer(RETRY, RETRY_MS);
        }
    }

    fn status(&self) -> Value {
        json!({ "counter": self.r.counter, "elements": self.r.set.len(), "unacked": self.r.outbox.len(), "seq": self.r.seq })
    }
}
