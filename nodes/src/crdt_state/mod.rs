//! State-based CRDTs (convergent replicated data types) serving `counter` (PN-counter), `set`
//! (OR-set, adds only), `set-remove` (the same OR-set with observed removes) and `register` (a
//! last-writer-wins register per key).
//!
//! An update is applied to the local state, logged as a *delta-state* (the part of the state it
//! changed) and acknowledged in the same step, so it is durable before the client hears of it.
//! The delta is pushed to every peer at once (best effort), and a periodic anti-entropy round
//! sends the whole state to the next peer in turn, so every replica eventually merges every
//! update however many messages were lost, duplicated or reordered. Reads are local: this
//! protocol claims strong eventual consistency, not linearizability.
//!
//! The register's stamps come from the node's wall clock (`ctx.now_ms`), so a node whose clock
//! runs ahead wins over later writes elsewhere: clock skew makes acknowledged writes disappear,
//! which is what LWW registers do and what a linearizability check of them finds.

pub mod bugs;
pub mod lattice;

use crate::core::{ErrorCode, ClientId, Core, Ctx, Describe, NodeConfig, NodeId, Reply, Request, Storage, TimerId};
pub use bugs::{Bug, Bugs};
pub use lattice::{Lww, OrSet, PnCounter, State, Tag};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub fn describe() -> Describe {
    Describe {
        protocol: "crdt-state".into(),
        // `last-writer-wins`: the register keeps the write with the greatest stamp (the `lww`
        // checker, register workload only).
        claims: vec!["strong-eventual-consistency".into(), "last-writer-wins".into()],
        workloads: vec!["counter".into(), "set".into(), "register".into(), "set-remove".into()],
        weak_modes: vec![],
        bugs: Bugs::describe(),
        // A last-write-wins register has no compare-and-set.
        unsupported: [("register".to_string(), vec!["cas".to_string()])].into_iter().collect(),
    }
}

/// Checks the configuration (for the binary): this protocol has no options of its own besides
/// the known-bug switches.
pub fn validate(config: &NodeConfig) -> Result<(), String> {
    Bugs::from_config(config)?;
    if ["counter", "set", "register", "set-remove"].contains(&config.workload.as_str()) {
        Ok(())
    } else {
        Err(format!("crdt-state does not serve the {} workload", config.workload))
    }
}

const LOG: &str = "crdt-state";
const GOSSIP: TimerId = 1;
/// Anti-entropy period: one peer gets the whole state this often.
pub const GOSSIP_MS: u64 = 250;
/// Rewrite the log as one full state after this many delta records.
const COMPACT_AFTER: usize = 1024;

/// Messages between replicas: a state (whole or a delta) to merge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    Delta(State),
    Full(State),
}

pub struct CrdtState {
    id: NodeId,
    peers: Vec<NodeId>,
    workload: String,
    bugs: Bugs,
    state: State,
    /// The last counter used for this node's tags and stamps.
    counter: u64,
    next_peer: usize,
    log_records: usize,
    notes: Vec<String>,
}

impl CrdtState {
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Log records that could not be read at recovery.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    fn persist(&mut self, ctx: &mut Ctx<Msg>, delta: &State) {
        ctx.append(LOG, serde_json::to_vec(delta).expect("states serialize"));
        self.log_records += 1;
        if self.log_records >= COMPACT_AFTER {
            self.compact(ctx);
        }
    }

    /// Replaces the log by the whole current state.
    fn compact(&mut self, ctx: &mut Ctx<Msg>) {
        ctx.rewrite(LOG, vec![serde_json::to_vec(&self.state).expect("states serialize")]);
        self.log_records = 1;
    }

    /// Makes an update durable and ships it: log the delta, push it to every peer.
    fn commit(&mut self, ctx: &mut Ctx<Msg>, delta: State) {
        // BUG(update-not-logged): acknowledged in this step, yet durable only if a peer merges it.
        if !self.bugs.has(Bug::UpdateNotLogged) {
            self.persist(ctx, &delta);
        }
        for p in &self.peers {
            ctx.send(p.clone(), Msg::Delta(delta.clone()));
        }
    }

    fn update(&mut self, ctx: &mut Ctx<Msg>, request: Request) -> Reply {
        let me = self.id.clone();
        match (self.workload.as_str(), request) {
            ("counter", Request::Add { delta }) => {
                let d = self.state.counter.add(&me, delta);
                self.commit(ctx, State { counter: d, ..State::default() });
                Reply::AddOk
            }
            ("set" | "set-remove", Request::AddElement { element }) => {
                self.counter += 1;
                let d = self.state.set.add(&element, (me, self.counter));
                self.commit(ctx, State { set: d, ..State::default() });
                Reply::AddOk
            }
            ("set" | "set-remove", Request::RemoveElement { element }) => {
                // Observed remove: the tags this replica holds become tombstones; an add made
                // elsewhere and not merged here yet survives (add wins over a concurrent remove).
                let d = self.state.set.remove(&element);
                self.commit(ctx, State { set: d, ..State::default() });
                Reply::RemoveOk
            }
            ("register", Request::Write { key, value }) => {
                self.counter += 1;
                let w = Lww { stamp: (ctx.now_ms, me, self.counter), value };
                let mut d = State::default();
                d.registers.insert(key.to_string(), w);
                self.state.merge_with(&d, self.bugs);
                self.commit(ctx, d);
                Reply::WriteOk
            }
            ("register", Request::Cas { .. }) => {
                Reply::error(ErrorCode::NotSupported, "crdt-state registers do not support compare-and-set")
            }
            (w, r) => Reply::error(ErrorCode::NotSupported, format!("{r:?} is not served for workload {w}")),
        }
    }

    fn read(&self, key: Option<Value>) -> Reply {
        match (self.workload.as_str(), key) {
            ("register", Some(k)) => match self.state.registers.get(&k.to_string()) {
                Some(w) => Reply::ReadOk(w.value.clone()),
                None => Reply::error(ErrorCode::KeyDoesNotExist, "key does not exist"),
            },
            ("counter", None) => Reply::ReadOk(Value::from(self.state.counter.value())),
            ("set" | "set-remove", None) => Reply::ReadOk(Value::Array(self.state.set.elements())),
            (w, _) => Reply::error(ErrorCode::MalformedRequest, format!("read needs a key exactly for registers (workload {w})")),
        }
    }
}

impl Core for CrdtState {
    type Msg = Msg;

    fn recover(config: &NodeConfig, storage: &Storage) -> Self {
        let bugs = Bugs::from_config(config).unwrap_or_default();
        let mut state = State::default();
        let mut notes = Vec::new();
        for (i, rec) in storage.log(LOG).iter().enumerate() {
            match serde_json::from_slice::<State>(rec) {
                Ok(s) => {
                    state.merge_with(&s, bugs);
                }
                Err(e) => notes.push(format!("crdt-state log record {i}: {e}")),
            }
        }
        CrdtState {
            counter: state.own_counter(&config.id),
            id: config.id.clone(),
            peers: config.peers.clone(),
            workload: config.workload.clone(),
            bugs,
            state,
            next_peer: 0,
            log_records: storage.log(LOG).len(),
            notes,
        }
    }

    fn on_start(&mut self, ctx: &mut Ctx<Msg>) {
        ctx.set_random_timer(GOSSIP, GOSSIP_MS / 2, GOSSIP_MS);
    }

    fn on_request(&mut self, ctx: &mut Ctx<Msg>, client: ClientId, request: Request) {
        let reply = match request {
            Request::Read { key } => self.read(key),
            other => self.update(ctx, other),
        };
        ctx.reply(client, reply);
    }

    fn on_message(&mut self, ctx: &mut Ctx<Msg>, _from: &str, msg: Msg) {
        // What a merge taught us is persisted too, so that a restarted replica never reads
        // older than it did before the crash (reads are local).
        match msg {
            Msg::Delta(s) => {
                if self.state.merge_with(&s, self.bugs) {
                    self.persist(ctx, &s);
                }
            }
            Msg::Full(s) => {
                if self.state.merge_with(&s, self.bugs) {
                    // A whole state would bloat the log: replace the log by ours instead.
                    self.compact(ctx);
                }
            }
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Msg>, timer: TimerId) {
        if timer != GOSSIP {
            return;
        }
        if !self.peers.is_empty() {
            let peer = self.peers[self.next_peer % self.peers.len()].clone();
            self.next_peer = self.next_peer.wrapping_add(1);
            ctx.send(peer, Msg::Full(self.state.clone()));
        }
        ctx.set_timer(GOSSIP, GOSSIP_MS);
    }

    /// Reads are local anyway: a local read is a read.
    fn local_read(&self, key: Option<&Value>) -> Reply {
        self.read(key.cloned())
    }

    fn status(&self) -> Value {
        json!({
            "counter": self.state.counter.value(),
            "elements": self.state.set.adds.len(),
            "registers": self.state.registers.len(),
        })
    }
}
