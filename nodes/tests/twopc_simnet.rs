//! A deterministic simulated network for protocol cores, shared by the twopc and CRDT tests
//! (included with `#[path]`; compiled alone it is an empty test crate).
//!
//! Every random choice comes from one seed: message delays, drops, duplicates (and so reorder),
//! and the generators of each node's context. Directed links can be cut (partitions), nodes can
//! be crashed and restarted: a restart rebuilds the core with `Core::recover` from a `Storage`
//! that received every durable effect (`Storage::apply`), as the runtime fsyncs before sending.
#![allow(dead_code)]

use faultline_nodes::core::{ClientId, Core, Ctx, Effect, NodeConfig, NodeId, Reply, Request, Storage, TimerId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// What the network does to each message.
#[derive(Clone, Debug)]
pub struct Faults {
    pub drop: f64,
    pub duplicate: f64,
    pub delay_ms: (u64, u64),
}

impl Faults {
    pub fn none() -> Faults {
        Faults { drop: 0.0, duplicate: 0.0, delay_ms: (1, 5) }
    }
    pub fn lossy() -> Faults {
        Faults { drop: 0.05, duplicate: 0.05, delay_ms: (1, 40) }
    }
}

enum Event<M> {
    Deliver { from: NodeId, to: NodeId, msg: M },
    Timer { node: NodeId, id: TimerId, generation: u64 },
}

pub struct Sim<C: Core> {
    pub now_ms: u64,
    rng: ChaCha8Rng,
    configs: BTreeMap<NodeId, NodeConfig>,
    nodes: BTreeMap<NodeId, Option<C>>,
    pub storage: BTreeMap<NodeId, Storage>,
    events: BTreeMap<(u64, u64), Event<C::Msg>>,
    seq: u64,
    timer_generation: BTreeMap<(NodeId, TimerId), u64>,
    /// Directed links that drop everything: (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
    pub faults: Faults,
    /// Each node's clock offset from the simulated time (clock skew).
    pub clock_offset_ms: BTreeMap<NodeId, i64>,
    pub replies: BTreeMap<ClientId, Reply>,
    next_client: ClientId,
    pub delivered: u64,
}

pub fn ids(n: usize) -> Vec<NodeId> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

impl<C: Core> Sim<C> {
    pub fn new(n: usize, workload: &str, options: &[(&str, &str)], seed: u64) -> Sim<C> {
        let all = ids(n);
        let configs = all
            .iter()
            .map(|id| {
                let config = NodeConfig {
                    id: id.clone(),
                    peers: all.iter().filter(|p| *p != id).cloned().collect(),
                    workload: workload.into(),
                    options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                    seed,
                };
                (id.clone(), config)
            })
            .collect();
        let mut sim = Sim {
            now_ms: 1_000_000,
            rng: ChaCha8Rng::seed_from_u64(seed),
            configs,
            nodes: BTreeMap::new(),
            storage: all.iter().map(|id| (id.clone(), Storage::default())).collect(),
            events: BTreeMap::new(),
            seq: 0,
            timer_generation: BTreeMap::new(),
            cut: BTreeSet::new(),
            faults: Faults::none(),
            clock_offset_ms: BTreeMap::new(),
            replies: BTreeMap::new(),
            next_client: 1,
            delivered: 0,
        };
        for id in all {
            sim.start(&id);
        }
        sim
    }

    pub fn ids(&self) -> Vec<NodeId> {
        self.configs.keys().cloned().collect()
    }

    pub fn node(&self, id: &str) -> Option<&C> {
        self.nodes.get(id).and_then(|n| n.as_ref())
    }

    pub fn is_up(&self, id: &str) -> bool {
        self.node(id).is_some()
    }

    fn ctx(&mut self, id: &str) -> Ctx<C::Msg> {
        let offset = self.clock_offset_ms.get(id).copied().unwrap_or(0);
        let now = (self.now_ms as i64 + offset).max(0) as u64;
        Ctx::new(now, ChaCha8Rng::seed_from_u64(self.rng.gen()))
    }

    fn start(&mut self, id: &str) {
        let core = C::recover(&self.configs[id], &self.storage[id]);
        self.nodes.insert(id.to_string(), Some(core));
        self.step(id, |core, ctx| core.on_start(ctx));
    }

    /// Runs one input on a live node and performs its effects.
    fn step(&mut self, id: &str, f: impl FnOnce(&mut C, &mut Ctx<C::Msg>)) {
        let mut ctx = self.ctx(id);
        let Some(Some(core)) = self.nodes.get_mut(id) else { return };
        f(core, &mut ctx);
        for effect in ctx.take() {
            self.perform(id, effect);
        }
    }

    fn schedule(&mut self, at: u64, event: Event<C::Msg>) {
        self.seq += 1;
        self.events.insert((at, self.seq), event);
    }

    fn perform(&mut self, id: &str, effect: Effect<C::Msg>) {
        self.storage.get_mut(id).expect("known node").apply(&effect);
        match effect {
            Effect::Send { to, msg } => self.send(id, to, msg),
            Effect::Reply { client, reply } => {
                self.replies.insert(client, reply);
            }
            Effect::SetTimer { id: timer, after_ms } => {
                let generation = self.bump_timer(id, timer);
                let at = self.now_ms + after_ms.max(1);
                self.schedule(at, Event::Timer { node: id.to_string(), id: timer, generation });
            }
            Effect::CancelTimer { id: timer } => {
                self.bump_timer(id, timer);
            }
            Effect::Save { .. } | Effect::Append { .. } | Effect::Rewrite { .. } => {}
        }
    }

    fn bump_timer(&mut self, node: &str, timer: TimerId) -> u64 {
        let g = self.timer_generation.entry((node.to_string(), timer)).or_insert(0);
        *g += 1;
        *g
    }

    fn send(&mut self, from: &str, to: NodeId, msg: C::Msg) {
        if self.cut.contains(&(from.to_string(), to.clone())) || self.rng.gen_bool(self.faults.drop) {
            return;
        }
        let copies = if self.rng.gen_bool(self.faults.duplicate) { 2 } else { 1 };
        for _ in 0..copies {
            let (lo, hi) = self.faults.delay_ms;
            let at = self.now_ms + self.rng.gen_range(lo..=hi);
            self.schedule(at, Event::Deliver { from: from.to_string(), to: to.clone(), msg: msg.clone() });
        }
    }

    /// A client request arrives at `node` now; its reply (if any) lands in `replies`.
    pub fn request(&mut self, node: &str, request: Request) -> ClientId {
        let client = self.next_client;
        self.next_client += 1;
        self.step(node, |core, ctx| core.on_request(ctx, client, request));
        client
    }

    /// Processes every event up to `now + ms`.
    pub fn run_for(&mut self, ms: u64) {
        let end = self.now_ms + ms;
        while let Some((&(at, seq), _)) = self.events.iter().next() {
            if at > end {
                break;
            }
            let event = self.events.remove(&(at, seq)).expect("just seen");
            self.now_ms = at;
            self.handle(event);
        }
        self.now_ms = end;
    }

    fn handle(&mut self, event: Event<C::Msg>) {
        match event {
            Event::Deliver { from, to, msg } => {
                if self.cut.contains(&(from.clone(), to.clone())) {
                    return;
                }
                self.delivered += 1;
                self.step(&to, |core, ctx| core.on_message(ctx, &from, msg));
            }
            Event::Timer { node, id, generation } => {
                if self.timer_generation.get(&(node.clone(), id)) == Some(&generation) {
                    self.step(&node, |core, ctx| core.on_timer(ctx, id));
                }
            }
        }
    }

    /// Kills a node: its memory and timers are gone, its storage stays.
    pub fn crash(&mut self, id: &str) {
        self.nodes.insert(id.to_string(), None);
        for ((node, _), g) in self.timer_generation.iter_mut() {
            if node == id {
                *g += 1;
            }
        }
    }

    pub fn restart(&mut self, id: &str) {
        if !self.is_up(id) {
            self.start(id);
        }
    }

    /// Cuts both directions between the two groups.
    pub fn partition(&mut self, a: &[NodeId], b: &[NodeId]) {
        for x in a {
            for y in b {
                self.cut.insert((x.clone(), y.clone()));
                self.cut.insert((y.clone(), x.clone()));
            }
        }
    }

    /// Cuts one direction only.
    pub fn cut_link(&mut self, from: &str, to: &str) {
        self.cut.insert((from.to_string(), to.to_string()));
    }

    /// A random partition: each node lands in one of two sides.
    pub fn random_partition(&mut self) {
        let all = self.ids();
        let (a, b): (Vec<NodeId>, Vec<NodeId>) = all.into_iter().partition(|_| self.rng.gen_bool(0.5));
        self.partition(&a, &b);
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }
}
