//! Deterministic simulation of Multi-Paxos clusters on a hostile network.
//!
//! Real [`Paxos`] cores run on a simulated network driven by one seeded generator: messages are
//! dropped, delayed, duplicated and reordered; partitions come and go; nodes crash and restart
//! from a [`Storage`] built only from the durable effects they emitted (so anything a core
//! forgot to persist is really lost). Clients write unique values, read and compare-and-set.
//!
//! Checked, for every seed:
//! - agreement: no two nodes ever apply different values in the same slot;
//! - validity: every command in the log was submitted by a client;
//! - linearizability of acknowledged commands: each is in the agreed log, its reply equals the
//!   reply a fresh replay of the log gives it, and the log order respects real time (an
//!   operation acknowledged before another began sits before it);
//! - definite refusals (error 11) never reach the log;
//! - liveness: after the faults heal and crashed nodes restart, a new command is acknowledged
//!   and every node applies the whole log and reaches the same state.
//!
//! Check-quorum has its own scenario: a leader cut off from every peer gives up its leadership
//! within two election timeouts and refuses clients with error 11 ("lost quorum"), the majority
//! elects a new leader, and after the heal the old leader serves again.

use faultline_nodes::core::{ClientId, Core, Ctx, Effect, NodeConfig, Reply, Request, Storage, TimerId};
use faultline_nodes::paxos::{Batch, CmdId, Msg, Paxos, Slot, TraceEvent};
use faultline_nodes::sm::StateMachine;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

/// Network and fault knobs of one simulation.
#[derive(Clone, Debug)]
struct Faults {
    drop: f64,
    dup: f64,
    max_delay_ms: u64,
    partitions: bool,
    crashes: bool,
    /// A crash point: a node that has just sent a promise is killed and restarted at once,
    /// half of the time, before the messages in flight to it arrive.
    bounce_promisers: bool,
}

const FAULTY: Faults = Faults { drop: 0.05, dup: 0.03, max_delay_ms: 30, partitions: true, crashes: true, bounce_promisers: false };

#[derive(Debug)]
enum Event {
    Deliver { to: usize, from: usize, msg: Box<Msg> },
    Timer { node: usize, id: TimerId, generation: u64 },
    Invoke { process: usize },
    ClientGiveUp { op: usize },
    Nemesis,
    Restart { node: usize },
}

/// One client operation as the simulated clients saw it.
#[derive(Clone, Debug)]
struct Op {
    request: Request,
    invoke_ms: u64,
    /// The reply and when it came; None while open or when the outcome is unknown.
    done: Option<(Reply, u64)>,
    /// The command id the node gave it (from the trace).
    id: Option<CmdId>,
    gave_up: bool,
}

struct Sim {
    rng: ChaCha8Rng,
    now_ms: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: HashMap<usize, Event>,
    next_event: usize,
    configs: Vec<NodeConfig>,
    nodes: Vec<Option<Paxos>>,
    storages: Vec<Storage>,
    /// Timer generations per node and timer id; a fired timer counts only if still current.
    timers: Vec<BTreeMap<TimerId, u64>>,
    /// `blocked[a][b]`: messages from a to b are lost.
    blocked: Vec<Vec<bool>>,
    faults: Faults,
    faults_until_ms: u64,
    clients_until_ms: u64,
    ops: Vec<Op>,
    /// Client id to op index.
    clients: HashMap<ClientId, usize>,
    /// The agreed log, as applied by any node.
    log: BTreeMap<Slot, Batch>,
    submitted: BTreeSet<CmdId>,
    next_value: u64,
    stats: BTreeMap<&'static str, u64>,
}

/// `bugs`: the known-bug switches to turn on (comma-separated `--bug` names, or empty).
fn config(i: usize, n: usize, seed: u64, bugs: &str) -> NodeConfig {
    let id = format!("n{}", i + 1);
    let peers = (0..n).filter(|j| *j != i).map(|j| format!("n{}", j + 1)).collect();
    let mut options = BTreeMap::new();
    for (k, v) in [("snapshot-every", "16"), ("window", "4"), ("batch", "8"), ("trace", "true")] {
        options.insert(k.to_string(), v.to_string());
    }
    if !bugs.is_empty() {
        options.insert("bug".to_string(), bugs.to_string());
    }
    NodeConfig { id, peers, workload: "register".into(), options, seed: seed ^ i as u64 }
}

impl Sim {
    fn new(n: usize, seed: u64, faults: Faults, bugs: &str) -> Sim {
        let configs: Vec<NodeConfig> = (0..n).map(|i| config(i, n, seed, bugs)).collect();
        let mut sim = Sim {
            rng: ChaCha8Rng::seed_from_u64(seed),
            now_ms: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            next_event: 0,
            nodes: (0..n).map(|_| None).collect(),
            storages: vec![Storage::default(); n],
            timers: vec![BTreeMap::new(); n],
            blocked: vec![vec![false; n]; n],
            configs,
            faults,
            faults_until_ms: 0,
            clients_until_ms: u64::MAX,
            ops: Vec::new(),
            clients: HashMap::new(),
            log: BTreeMap::new(),
            submitted: BTreeSet::new(),
            next_value: 0,
            stats: BTreeMap::new(),
        };
        for i in 0..n {
            sim.start_node(i);
        }
        sim
    }

    fn schedule(&mut self, after_ms: u64, event: Event) {
        self.seq += 1;
        let key = self.next_event;
        self.next_event += 1;
        self.events.insert(key, event);
        self.queue.push(Reverse((self.now_ms + after_ms, self.seq, key)));
    }

    fn ctx(&mut self) -> Ctx<Msg> {
        let seed = self.rng.gen();
        Ctx::for_test(self.now_ms, seed)
    }

    fn start_node(&mut self, i: usize) {
        let mut node = Paxos::recover(&self.configs[i], &self.storages[i]);
        let mut ctx = self.ctx();
        node.on_start(&mut ctx);
        self.nodes[i] = Some(node);
        self.finish_step(i, ctx);
    }

    /// Performs a step's effects the way the runtime does: durable ones first.
    fn finish_step(&mut self, i: usize, mut ctx: Ctx<Msg>) {
        let effects = ctx.take();
        let promised = self.faults.bounce_promisers
            && self.now_ms < self.faults_until_ms
            && effects.iter().any(|e| matches!(e, Effect::Send { msg: Msg::Promise { .. }, .. }));
        for e in &effects {
            self.storages[i].apply(e);
        }
        for e in effects {
            match e {
                Effect::Send { to, msg } => self.send(i, &to, msg),
                Effect::Reply { client, reply } => self.on_reply(client, reply),
                Effect::SetTimer { id, after_ms } => {
                    let generation = self.bump_timer(i, id);
                    self.schedule(after_ms, Event::Timer { node: i, id, generation });
                }
                Effect::CancelTimer { id } => {
                    self.bump_timer(i, id);
                }
                Effect::Save { .. } | Effect::Append { .. } | Effect::Rewrite { .. } => {}
            }
        }
        self.collect_trace(i);
        if promised && self.rng.gen_bool(0.5) {
            *self.stats.entry("bounces").or_default() += 1;
            self.nodes[i] = None;
            self.timers[i].values_mut().for_each(|g| *g += 1);
            self.start_node(i);
        }
    }

    fn bump_timer(&mut self, i: usize, id: TimerId) -> u64 {
        let g = self.timers[i].entry(id).or_insert(0);
        *g += 1;
        *g
    }

    fn collect_trace(&mut self, i: usize) {
        let Some(node) = self.nodes[i].as_mut() else { return };
        for ev in node.take_trace() {
            match ev {
                TraceEvent::Submitted { client, id } => {
                    self.submitted.insert(id);
                    if let Some(op) = self.clients.get(&client) {
                        self.ops[*op].id = Some(id);
                    }
                }
                TraceEvent::Applied { slot, value } => match self.log.get(&slot) {
                    Some(known) => assert_eq!(known, &value, "agreement: slot {slot} applied with two values"),
                    None => {
                        self.log.insert(slot, value);
                    }
                },
            }
        }
    }

    fn send(&mut self, from: usize, to: &str, msg: Msg) {
        let to: usize = to[1..].parse::<usize>().expect("node name") - 1;
        match &msg {
            Msg::CatchUp { snapshot: Some(_), .. } => *self.stats.entry("snapshots_sent").or_default() += 1,
            Msg::Prepare { .. } => *self.stats.entry("prepares").or_default() += 1,
            _ => {}
        }
        if self.now_ms < self.faults_until_ms {
            if self.blocked[from][to] || self.rng.gen_bool(self.faults.drop) {
                *self.stats.entry("dropped").or_default() += 1;
                return;
            }
            if self.rng.gen_bool(self.faults.dup) {
                let d = self.rng.gen_range(1..=self.faults.max_delay_ms);
                self.schedule(d, Event::Deliver { to, from, msg: Box::new(msg.clone()) });
            }
        }
        let d = self.rng.gen_range(1..=self.faults.max_delay_ms);
        self.schedule(d, Event::Deliver { to, from, msg: Box::new(msg) });
    }

    fn on_reply(&mut self, client: ClientId, reply: Reply) {
        let Some(&op) = self.clients.get(&client) else { panic!("reply to unknown client {client}") };
        let op = &mut self.ops[op];
        assert!(op.done.is_none(), "two replies to one request");
        if !op.gave_up {
            op.done = Some((reply, self.now_ms));
        }
    }

    fn invoke(&mut self, process: usize) {
        let key = json!(["a", "b", "c"][self.rng.gen_range(0..3)]);
        self.next_value += 1;
        let request = match self.rng.gen_range(0..10) {
            0..=3 => Request::Write { key, value: json!(self.next_value) },
            4..=7 => Request::Read { key: Some(key) },
            _ => Request::Cas { key, from: json!(self.rng.gen_range(1..=self.next_value)), to: json!(self.next_value) },
        };
        self.submit(process, request);
    }

    fn submit(&mut self, process: usize, request: Request) -> usize {
        let n = self.nodes.len();
        let node = self.rng.gen_range(0..n);
        let _ = process;
        self.submit_to(node, request)
    }

    /// Sends `request` to `node` now, as a client that gives up after 2 s.
    fn submit_to(&mut self, node: usize, request: Request) -> usize {
        let op = self.ops.len();
        let client = op as ClientId + 1;
        self.ops.push(Op { request: request.clone(), invoke_ms: self.now_ms, done: None, id: None, gave_up: false });
        self.clients.insert(client, op);
        match self.nodes[node].as_mut() {
            Some(p) => {
                let mut ctx = Ctx::for_test(self.now_ms, self.rng.gen());
                p.on_request(&mut ctx, client, request);
                self.finish_step(node, ctx);
            }
            None => self.ops[op].gave_up = true,
        }
        self.schedule(2000, Event::ClientGiveUp { op });
        op
    }

    fn nemesis(&mut self) {
        let n = self.nodes.len();
        if self.now_ms >= self.faults_until_ms {
            return;
        }
        if self.faults.partitions && self.rng.gen_bool(0.5) {
            // A random partition: each node in one of two sides, or everything healed.
            let side: Vec<bool> = (0..n).map(|_| self.rng.gen_bool(0.5)).collect();
            let heal = self.rng.gen_bool(0.3);
            let one_way = self.rng.gen_bool(0.2);
            for a in 0..n {
                for b in 0..n {
                    self.blocked[a][b] = !heal && side[a] != side[b] && (!one_way || side[a]);
                }
            }
        }
        if self.faults.crashes && self.rng.gen_bool(0.4) {
            let victim = self.rng.gen_range(0..n);
            if self.nodes[victim].take().is_some() {
                *self.stats.entry("crashes").or_default() += 1;
                self.timers[victim].values_mut().for_each(|g| *g += 1);
                let after = self.rng.gen_range(100..1500);
                self.schedule(after, Event::Restart { node: victim });
            }
        }
        let after = self.rng.gen_range(200..800);
        self.schedule(after, Event::Nemesis);
    }

    fn step(&mut self) -> bool {
        let Some(Reverse((at, _, key))) = self.queue.pop() else { return false };
        self.now_ms = at;
        let event = self.events.remove(&key).expect("event");
        match event {
            Event::Deliver { to, from, msg } => {
                let blocked = self.now_ms < self.faults_until_ms && self.blocked[from][to];
                if blocked {
                    return true;
                }
                let mut ctx = self.ctx();
                if let Some(node) = self.nodes[to].as_mut() {
                    node.on_message(&mut ctx, &format!("n{}", from + 1), *msg);
                    self.finish_step(to, ctx);
                }
            }
            Event::Timer { node, id, generation } => {
                if self.timers[node].get(&id) == Some(&generation) {
                    let mut ctx = self.ctx();
                    if let Some(p) = self.nodes[node].as_mut() {
                        p.on_timer(&mut ctx, id);
                        self.finish_step(node, ctx);
                    }
                }
            }
            Event::Invoke { process } => {
                self.invoke(process);
                if self.now_ms < self.clients_until_ms {
                    let after = self.rng.gen_range(5..60);
                    self.schedule(after, Event::Invoke { process });
                }
            }
            Event::ClientGiveUp { op } => {
                if self.ops[op].done.is_none() {
                    self.ops[op].gave_up = true;
                }
            }
            Event::Nemesis => self.nemesis(),
            Event::Restart { node } => {
                if self.nodes[node].is_none() {
                    self.start_node(node);
                }
            }
        }
        true
    }

    fn run_until(&mut self, until_ms: u64) {
        while self.queue.peek().is_some_and(|Reverse((t, _, _))| *t <= until_ms) {
            self.step();
        }
        self.now_ms = until_ms;
    }

    /// Stops the faults, restarts crashed nodes.
    fn heal(&mut self) {
        self.faults_until_ms = self.now_ms;
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_none() {
                self.start_node(i);
            }
        }
    }
}

/// The checks on the finished run; returns the number of acknowledged operations.
fn check(sim: &Sim) -> usize {
    // Validity: the log holds only submitted commands, each at most once.
    let mut position: BTreeMap<CmdId, (Slot, usize)> = BTreeMap::new();
    let mut expected: BTreeMap<CmdId, Reply> = BTreeMap::new();
    let mut sm = StateMachine::default();
    let mut history = History::default();
    let slots: Vec<Slot> = sim.log.keys().copied().collect();
    assert_eq!(slots, (1..=slots.len() as u64).collect::<Vec<_>>(), "the agreed log has a hole");
    for (slot, batch) in &sim.log {
        for (i, cmd) in batch.iter().enumerate() {
            assert!(sim.submitted.contains(&cmd.id), "validity: {cmd:?} was never submitted");
            assert!(position.insert(cmd.id, (*slot, i)).is_none(), "{:?} decided twice", cmd.id);
            expected.insert(cmd.id, sm.apply(&cmd.request));
            history.record((*slot, i), &cmd.request, &expected[&cmd.id]);
        }
    }
    let acked_at: BTreeMap<(Slot, usize), u64> = sim
        .ops
        .iter()
        .filter_map(|op| match (&op.done, op.id) {
            (Some((reply, ms)), Some(id)) if !matches!(reply, Reply::Error { .. }) => Some((*position.get(&id)?, *ms)),
            _ => None,
        })
        .collect();
    let mut acked = Vec::new();
    for op in &sim.ops {
        let Some((reply, reply_ms)) = &op.done else { continue };
        match reply {
            Reply::Error { code: 0, .. } => {}
            Reply::Error { code: 11, .. } => {
                if let Some(id) = op.id {
                    assert!(!position.contains_key(&id), "a refused command was decided: {op:?}");
                }
            }
            // Answered without going through the log: only a read served locally does that.
            reply if op.id.is_none() => history.check_local_read(op, reply, &acked_at),
            reply => {
                let id = op.id.expect("an acknowledged op has an id");
                let pos = position.get(&id).unwrap_or_else(|| panic!("acknowledged {op:?} is not in the log"));
                assert_eq!(&expected[&id], reply, "reply differs from the replay for {op:?}");
                acked.push((*pos, op.invoke_ms, *reply_ms));
            }
        }
    }
    // Real-time order: if A was acknowledged before B was invoked, A precedes B in the log.
    // Walking the log backwards, the earliest acknowledgement of any later op must not precede
    // the current op's invocation.
    acked.sort();
    let mut min_later_reply_ms = u64::MAX;
    for (pos, invoke_ms, reply_ms) in acked.iter().rev() {
        assert!(min_later_reply_ms >= *invoke_ms, "real-time order violated: an op acknowledged at {min_later_reply_ms} ms sits after one invoked at {invoke_ms} ms ({pos:?})");
        min_later_reply_ms = min_later_reply_ms.min(*reply_ms);
    }
    acked.len()
}

/// Every change of each register key along the agreed log, to judge reads served outside it.
#[derive(Default)]
struct History {
    /// Key (its JSON text) to (log position, value it became).
    changes: BTreeMap<String, Vec<((Slot, usize), serde_json::Value)>>,
}

impl History {
    fn record(&mut self, pos: (Slot, usize), request: &Request, reply: &Reply) {
        let (key, value) = match (request, reply) {
            (Request::Write { key, value }, Reply::WriteOk) => (key, value),
            (Request::Cas { key, to, .. }, Reply::CasOk) => (key, to),
            _ => return,
        };
        self.changes.entry(key.to_string()).or_default().push((pos, value.clone()));
    }

    /// A read served at once must see the value of some point of the log after every change
    /// of its key acknowledged before the read began (values are unique, so the value names
    /// the change that wrote it).
    fn check_local_read(&self, op: &Op, reply: &Reply, acked_at: &BTreeMap<(Slot, usize), u64>) {
        let Request::Read { key: Some(key) } = &op.request else { panic!("unexpected local answer {reply:?} to {op:?}") };
        let changes = self.changes.get(&key.to_string()).map(Vec::as_slice).unwrap_or(&[]);
        let seen_at = match reply {
            Reply::ReadOk(v) => changes.iter().find(|(_, w)| w == v).map(|(pos, _)| *pos).unwrap_or_else(|| panic!("wrong value: {op:?} read {v}, never decided")),
            Reply::Error { code: 20, .. } => (0, 0),
            other => panic!("unexpected local answer {other:?} to {op:?}"),
        };
        for (pos, value) in changes.iter().filter(|(pos, _)| *pos > seen_at) {
            if acked_at.get(pos).is_some_and(|ms| *ms < op.invoke_ms) {
                panic!("stale read: {op:?} got {reply:?}, but {value} was acknowledged before it began (at {pos:?})");
            }
        }
    }
}

fn run(n: usize, seed: u64, faults: Faults) -> (usize, BTreeMap<&'static str, u64>) {
    run_with(n, seed, faults, "")
}

fn run_with(n: usize, seed: u64, faults: Faults, bugs: &str) -> (usize, BTreeMap<&'static str, u64>) {
    let mut sim = Sim::new(n, seed, faults, bugs);
    sim.faults_until_ms = 8_000;
    for p in 0..4 {
        sim.schedule(300 + p as u64 * 7, Event::Invoke { process: p });
    }
    sim.schedule(500, Event::Nemesis);
    sim.run_until(8_000);
    sim.heal();
    sim.clients_until_ms = 9_000;
    sim.run_until(11_000);
    // Liveness: after healing a new command gets through, and every node applies everything.
    let probe = sim.submit(99, Request::Write { key: json!("probe"), value: json!(-1) });
    sim.run_until(14_000);
    assert!(
        matches!(sim.ops[probe].done, Some((Reply::WriteOk, _))),
        "seed {seed}: no progress after healing: {:?} {:?}",
        sim.ops[probe], sim.nodes.iter().map(|p| p.as_ref().unwrap().status()).collect::<Vec<_>>()
    );
    let applied: Vec<Slot> = sim.nodes.iter().map(|p| p.as_ref().unwrap().applied()).collect();
    let top = *sim.log.keys().next_back().unwrap();
    assert!(applied.iter().all(|a| *a == top), "seed {seed}: a node lags: {applied:?} of {top}");
    let first = sim.nodes[0].as_ref().unwrap().state_machine();
    assert!(sim.nodes.iter().all(|p| p.as_ref().unwrap().state_machine() == first), "seed {seed}: states differ");
    let acked = check(&sim);
    sim.stats.insert("slots", top);
    sim.stats.insert("acked", acked as u64);
    (acked, sim.stats.clone())
}

/// How many seeds to run: `PAXOS_SIM_SEEDS` overrides the default for a longer hunt.
fn seeds(default: u64) -> u64 {
    std::env::var("PAXOS_SIM_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn three_nodes_many_seeds() {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for seed in 0..seeds(20) {
        let (acked, stats) = run(3, seed, FAULTY);
        assert!(acked > 20, "seed {seed}: only {acked} acknowledged ({stats:?})");
        stats.iter().for_each(|(k, v)| *totals.entry(k).or_default() += v);
    }
    eprintln!("3 nodes, {} seeds: {totals:?}", seeds(20));
}

#[test]
fn five_nodes_many_seeds() {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for seed in 100..100 + seeds(12) {
        let (acked, stats) = run(5, seed, FAULTY);
        assert!(acked > 20, "seed {seed}: only {acked} acknowledged ({stats:?})");
        stats.iter().for_each(|(k, v)| *totals.entry(k).or_default() += v);
    }
    eprintln!("5 nodes, {} seeds: {totals:?}", seeds(12));
}

const QUIET: Faults = Faults { drop: 0.0, dup: 0.0, max_delay_ms: 5, partitions: false, crashes: false, bounce_promisers: false };

fn leader_index(sim: &Sim) -> Option<usize> {
    sim.nodes.iter().position(|p| p.as_ref().is_some_and(|p| p.is_leader()))
}

fn reply_of(sim: &Sim, op: usize) -> Option<&Reply> {
    sim.ops[op].done.as_ref().map(|(reply, _)| reply)
}

/// Check-quorum: a leader cut off from all four peers gives up its leadership within two
/// election timeouts (300 ms each), answers the command it had proposed with the indefinite
/// timeout (it may still be chosen), and refuses new commands with error 11 naming the lost
/// quorum, while the majority elects a new leader. After the heal the cluster has one leader
/// again, the old leader serves through it, and every node applies the same log.
#[test]
fn an_isolated_leader_steps_down_and_refuses_with_lost_quorum() {
    let mut sim = Sim::new(5, 11, QUIET, "");
    sim.run_until(3_000);
    let old = leader_index(&sim).expect("a leader after 3 s");
    sim.faults_until_ms = u64::MAX;
    for j in (0..5).filter(|j| *j != old) {
        sim.blocked[old][j] = true;
        sim.blocked[j][old] = true;
    }
    let cut_ms = sim.now_ms;
    let held = sim.submit_to(old, Request::Write { key: json!("held"), value: json!(1) });
    sim.run_until(cut_ms + 2 * 300 + 50);
    assert!(!sim.nodes[old].as_ref().unwrap().is_leader(), "still leading {} ms after the cut", sim.now_ms - cut_ms);
    match reply_of(&sim, held) {
        Some(Reply::Error { code: 0, text }) => assert!(text.contains("lost quorum"), "{text}"),
        other => panic!("the proposed write must be answered as unknown (code 0), got {other:?}"),
    }
    let refused = sim.submit_to(old, Request::Write { key: json!("new"), value: json!(2) });
    match &sim.ops[refused].done {
        Some((Reply::Error { code: 11, text }, at)) => {
            assert_eq!(*at, sim.now_ms, "refused at once");
            assert!(text.starts_with("lost quorum: heard from 1 of 5 nodes within 300 ms"), "{text}");
        }
        other => panic!("a new command must be refused with error 11 at once, got {other:?}"),
    }
    sim.run_until(cut_ms + 1_500);
    let new = leader_index(&sim).filter(|i| *i != old).expect("the majority elected a leader");
    let acked = sim.submit_to(new, Request::Write { key: json!("majority"), value: json!(3) });
    sim.run_until(sim.now_ms + 300);
    assert_eq!(reply_of(&sim, acked), Some(&Reply::WriteOk), "the majority side serves");

    sim.heal();
    sim.run_until(sim.now_ms + 2_000);
    let leaders = sim.nodes.iter().filter(|p| p.as_ref().unwrap().is_leader()).count();
    assert_eq!(leaders, 1, "one leader after the heal");
    let through_old = sim.submit_to(old, Request::Write { key: json!("after-heal"), value: json!(4) });
    sim.run_until(sim.now_ms + 500);
    assert_eq!(reply_of(&sim, through_old), Some(&Reply::WriteOk), "the old leader serves again");
    let applied: Vec<Slot> = sim.nodes.iter().map(|p| p.as_ref().unwrap().applied()).collect();
    assert!(applied.iter().all(|a| *a == applied[0]), "every node applied the same log: {applied:?}");
    check(&sim);
}

// ---------------------------------------------------------------------------------------------
// Known-bug switches (`--bug NAME`): each must be caught by the checks above, on a seed the
// unmodified core passes.

/// The messages of the safety checks (the simulation's and the core's own assertions); a run
/// that fails any other way (no progress after healing, say) does not count as catching a bug.
const SAFETY: &[&str] = &[
    "safety violation",
    "agreement",
    "validity",
    "decided twice",
    "reply differs",
    "real-time order",
    "is not in the log",
    "refused command was decided",
    "stale read",
    "wrong value",
];

fn panic_text(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// Hunts for a seed on which `bug` breaks a safety check, within `budget` seeds; asserts that
/// the failure is a safety one and that the same seed passes without the bug. Returns the seed.
fn caught(bug: &str, n: usize, faults: Faults, budget: u64) -> u64 {
    let started = std::time::Instant::now();
    for seed in 1_000..1_000 + budget {
        let Err(e) = std::panic::catch_unwind(|| run_with(n, seed, faults.clone(), bug)) else { continue };
        let text = panic_text(e);
        assert!(SAFETY.iter().any(|s| text.contains(s)), "--bug {bug}, seed {seed}: not a safety failure: {text}");
        run(n, seed, faults);
        eprintln!("--bug {bug}: caught on seed {seed} ({} seeds, {:?}): {text}", seed - 999, started.elapsed());
        return seed;
    }
    panic!("--bug {bug}: not caught in {budget} seeds");
}

/// Faults for phase 1: acceptors crash and restart right after promising, so a promise that
/// was not persisted is forgotten while the old leader's accepts are still in flight.
const BOUNCING: Faults = Faults { bounce_promisers: true, ..FAULTY };

#[test]
fn bug_decide_on_minority_is_caught() {
    caught("decide-on-minority", 3, FAULTY, 100);
}

#[test]
fn bug_promise_not_persisted_is_caught() {
    // Five nodes: in three, the sim's partitions rarely leave an old leader reaching the acceptor
    // that forgot its promise while the new leader does too.
    caught("promise-not-persisted", 5, BOUNCING, 300);
}

#[test]
fn bug_accept_not_persisted_is_caught() {
    caught("accept-not-persisted", 3, FAULTY, 300);
}

#[test]
fn bug_ballot_ge_is_caught() {
    caught("ballot-ge", 3, FAULTY, 100);
}

#[test]
fn bug_leader_local_read_is_caught() {
    caught("leader-local-read", 3, FAULTY, 100);
}


