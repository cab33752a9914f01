//! Deterministic simulation of the Raft core on a faulty network.
//!
//! Every run is one seed: a simulated network that drops, delays and reorders messages, cuts
//! links (random partitions), crashes nodes and restarts them from exactly what they persisted
//! ([`Storage::apply`] of their durable effects). Clients write unique keys and read them back.
//! After every event the simulation checks the Raft safety properties (Figure 3 of the paper):
//! - Election Safety: at most one leader per term;
//! - Log Matching: two logs with an entry of the same index and term agree on it and before it;
//! - State Machine Safety: no two nodes commit different entries at one index;
//! and at the end, after healing: acknowledged writes survived, writes refused with the definite
//! error 11 never took effect, every node converged, and no read returned a stale value (a read
//! that began after a write's acknowledgement saw it).
//!
//! Check-quorum has its own scenario: a leader cut off from every peer steps down within two
//! election timeouts and refuses clients with error 11 ("lost quorum"), the majority elects a
//! new leader, and after the heal the old leader follows it.

use faultline_nodes::core::{ClientId, Core, Ctx, Effect, NodeConfig, Reply, Request, Storage, TimerId};
use faultline_nodes::raft::{Command, Msg, Raft, Role};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

const CLOCK_BASE_MS: u64 = 1_000_000;

#[derive(Clone, Debug)]
enum Event {
    Deliver { from: usize, to: usize, msg: Msg },
    Timer { node: usize, id: TimerId, generation: u64 },
    ClientOp,
    Fault,
}

/// One client operation in flight.
#[derive(Clone, Debug)]
enum Op {
    Write { key: u64 },
    Read { key: u64, started_ms: u64 },
    /// A request of a scenario test: its reply is recorded in `Sim::probes`.
    Probe,
}

struct Faults {
    drop_p: f64,
    max_delay_ms: u64,
    partitions: bool,
    crashes: bool,
    /// A crash point: a node that has just granted a vote is killed and restarted at once, half
    /// of the time (a process restart faster than the messages in flight), so whatever it
    /// failed to persist is gone before its peers' next messages arrive.
    bounce_voters: bool,
}

struct Node {
    raft: Option<Raft>,
    storage: Storage,
    timers: HashMap<TimerId, u64>,
    config: NodeConfig,
}

struct Sim {
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: Vec<Option<Event>>,
    nodes: Vec<Node>,
    ids: Vec<String>,
    /// Directed links that drop everything: (from, to).
    cut: BTreeSet<(usize, usize)>,
    faults: Faults,
    next_generation: u64,
    next_client: ClientId,
    in_flight: HashMap<ClientId, Op>,
    next_key: u64,
    /// key -> virtual ms of the acknowledgement.
    acked: BTreeMap<u64, u64>,
    /// Keys whose write was refused with the definite error 11: it must never take effect.
    refused: BTreeSet<u64>,
    probes: BTreeMap<ClientId, (u64, Reply)>,
    leaders: BTreeMap<u64, usize>,
    committed: BTreeMap<u64, (u64, String)>,
    reads_checked: u64,
    /// Per node: the commit index up to which State Machine Safety was checked.
    checked_upto: Vec<u64>,
    steps: u64,
    clients: bool,
}

impl Sim {
    fn new(seed: u64, n: usize, faults: Faults, options: &[(&str, &str)]) -> Sim {
        let ids: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
        let nodes = ids
            .iter()
            .map(|id| {
                let config = NodeConfig {
                    id: id.clone(),
                    peers: ids.iter().filter(|p| *p != id).cloned().collect(),
                    workload: "register".into(),
                    options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                    seed,
                };
                Node { raft: None, storage: Storage::default(), timers: HashMap::new(), config }
            })
            .collect();
        let mut sim = Sim {
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: Vec::new(),
            nodes,
            ids,
            cut: BTreeSet::new(),
            faults,
            next_generation: 0,
            next_client: 1,
            in_flight: HashMap::new(),
            next_key: 0,
            acked: BTreeMap::new(),
            refused: BTreeSet::new(),
            probes: BTreeMap::new(),
            leaders: BTreeMap::new(),
            committed: BTreeMap::new(),
            reads_checked: 0,
            checked_upto: vec![0; n],
            steps: 0,
            clients: true,
        };
        for i in 0..n {
            sim.boot(i);
        }
        sim.schedule(10, Event::ClientOp);
        sim.schedule(500, Event::Fault);
        sim
    }

    fn schedule(&mut self, after_ms: u64, event: Event) {
        self.seq += 1;
        self.events.push(Some(event));
        self.queue.push(Reverse((self.now + after_ms, self.seq, self.events.len() - 1)));
    }

    fn boot(&mut self, i: usize) {
        self.checked_upto[i] = 0;
        let node = &mut self.nodes[i];
        node.timers.clear();
        let mut raft = Raft::recover(&node.config, &node.storage);
        let mut ctx = self.ctx();
        raft.on_start(&mut ctx);
        self.nodes[i].raft = Some(raft);
        self.perform(i, ctx);
    }

    fn ctx(&mut self) -> Ctx<Msg> {
        Ctx::for_test(CLOCK_BASE_MS + self.now, self.rng.gen())
    }

    fn step(&mut self, i: usize, f: impl FnOnce(&mut Raft, &mut Ctx<Msg>)) {
        let mut ctx = self.ctx();
        let Some(raft) = self.nodes[i].raft.as_mut() else { return };
        f(raft, &mut ctx);
        let voted = self.faults.bounce_voters && ctx.effects.iter().any(|e| matches!(e, Effect::Send { msg: Msg::Vote { granted: true, pre: false, .. }, .. }));
        self.perform(i, ctx);
        self.check(i);
        if voted && self.rng.gen_bool(0.5) {
            self.nodes[i].raft = None;
            self.boot(i);
        }
    }

    fn perform(&mut self, i: usize, mut ctx: Ctx<Msg>) {
        let effects = ctx.take();
        for effect in &effects {
            self.nodes[i].storage.apply(effect);
        }
        for effect in effects {
            match effect {
                Effect::Send { to, msg } => {
                    let to = self.ids.iter().position(|id| *id == to).expect("known peer");
                    if self.cut.contains(&(i, to)) || self.rng.gen_bool(self.faults.drop_p) {
                        continue;
                    }
                    let delay = self.rng.gen_range(1..=self.faults.max_delay_ms);
                    self.schedule(delay, Event::Deliver { from: i, to, msg });
                }
                Effect::Reply { client, reply } => self.on_reply(client, reply),
                Effect::SetTimer { id, after_ms } => {
                    self.next_generation += 1;
                    let generation = self.next_generation;
                    self.nodes[i].timers.insert(id, generation);
                    self.schedule(after_ms, Event::Timer { node: i, id, generation });
                }
                Effect::CancelTimer { id } => {
                    self.nodes[i].timers.remove(&id);
                }
                _ => {}
            }
        }
    }

    fn on_reply(&mut self, client: ClientId, reply: Reply) {
        let Some(op) = self.in_flight.remove(&client) else { panic!("reply to unknown client {client}: {reply:?}") };
        match (op, reply) {
            (Op::Probe, reply) => {
                self.probes.insert(client, (self.now, reply));
            }
            (Op::Write { key }, Reply::WriteOk) => {
                self.acked.insert(key, self.now);
            }
            (Op::Read { key, started_ms }, Reply::ReadOk(v)) => {
                assert_eq!(v, json!(key), "read of k{key} returned a wrong value");
                self.reads_checked += 1;
                let _ = started_ms;
            }
            (Op::Read { key, started_ms }, Reply::Error { code: 20, .. }) => {
                if let Some(&acked_at) = self.acked.get(&key) {
                    assert!(acked_at > started_ms, "stale read: k{key} acknowledged at {acked_at} ms, read from {started_ms} ms saw nothing");
                }
                self.reads_checked += 1;
            }
            (Op::Write { key }, Reply::Error { code: 11, .. }) => {
                self.refused.insert(key);
            }
            (_, Reply::Error { code, .. }) => assert!([0, 11].contains(&code), "unexpected error code {code}"),
            (op, reply) => panic!("unexpected reply {reply:?} to {op:?}"),
        }
    }

    fn client_op(&mut self) {
        let node = self.rng.gen_range(0..self.nodes.len());
        if self.nodes[node].raft.is_some() {
            let client = self.next_client;
            self.next_client += 1;
            let (op, request) = if self.next_key > 0 && self.rng.gen_bool(0.4) {
                let key = self.rng.gen_range(0..self.next_key);
                (Op::Read { key, started_ms: self.now }, Request::Read { key: Some(json!(format!("k{key}"))) })
            } else {
                let key = self.next_key;
                self.next_key += 1;
                (Op::Write { key }, Request::Write { key: json!(format!("k{key}")), value: json!(key) })
            };
            self.in_flight.insert(client, op);
            self.step(node, |r, ctx| r.on_request(ctx, client, request));
        }
        let gap = self.rng.gen_range(1..15);
        self.schedule(gap, Event::ClientOp);
    }

    fn fault(&mut self) {
        let n = self.nodes.len();
        let roll: f64 = self.rng.gen();
        if self.faults.crashes && roll < 0.3 {
            let i = self.rng.gen_range(0..n);
            if self.nodes[i].raft.take().is_some() {
                self.nodes[i].timers.clear();
                // The clients it held never hear back (they count as unknown).
            } else {
                self.boot(i);
            }
        } else if self.faults.partitions && roll < 0.7 {
            self.cut.clear();
            let mut side: Vec<bool> = (0..n).map(|_| self.rng.gen_bool(0.5)).collect();
            side[0] = !side[n - 1];
            let one_way = self.rng.gen_bool(0.3);
            for a in 0..n {
                for b in 0..n {
                    if side[a] != side[b] && (!one_way || side[a]) {
                        self.cut.insert((a, b));
                    }
                }
            }
        } else {
            self.cut.clear();
            for i in 0..n {
                if self.nodes[i].raft.is_none() {
                    self.boot(i);
                }
            }
        }
        let gap = self.rng.gen_range(300..2_000);
        self.schedule(gap, Event::Fault);
    }

    fn run_until(&mut self, end_ms: u64, faults: bool) {
        while let Some(Reverse((at, _, slot))) = self.queue.peek().copied() {
            if at > end_ms {
                break;
            }
            self.queue.pop();
            self.now = at;
            let event = self.events[slot].take().expect("each event fires once");
            match event {
                Event::Deliver { from, to, msg } => {
                    if !self.cut.contains(&(from, to)) {
                        let from_id = self.ids[from].clone();
                        self.step(to, |r, ctx| r.on_message(ctx, &from_id, msg));
                    }
                }
                Event::Timer { node, id, generation } => {
                    if self.nodes[node].timers.get(&id) == Some(&generation) {
                        self.nodes[node].timers.remove(&id);
                        self.step(node, |r, ctx| r.on_timer(ctx, id));
                    }
                }
                Event::ClientOp if self.clients => self.client_op(),
                Event::ClientOp => {}
                Event::Fault if faults => self.fault(),
                Event::Fault => {}
            }
        }
        self.now = end_ms;
    }

    fn heal(&mut self) {
        self.cut.clear();
        for i in 0..self.nodes.len() {
            if self.nodes[i].raft.is_none() {
                self.boot(i);
            }
        }
    }

    /// The safety properties, checked after every step of node `i`.
    fn check(&mut self, i: usize) {
        let Some(raft) = self.nodes[i].raft.as_ref() else { return };
        if raft.role() == Role::Leader {
            let prev = *self.leaders.entry(raft.term()).or_insert(i);
            assert_eq!(prev, i, "Election Safety: two leaders in term {}", raft.term());
        }
        let log = raft.log();
        for index in (log.snap_index + 1).max(self.checked_upto[i] + 1)..=raft.commit_index() {
            let entry = log.get(index).expect("committed entry in the log");
            let text = format!("{:?}", entry.cmd);
            let seen = self.committed.entry(index).or_insert((entry.term, text.clone()));
            assert_eq!(*seen, (entry.term, text), "State Machine Safety: index {index} committed twice differently");
        }
        self.checked_upto[i] = raft.commit_index();
        // Log Matching compares whole logs: every 64th step keeps the simulation fast.
        self.steps += 1;
        if self.steps % 64 != 0 {
            return;
        }
        for j in 0..self.nodes.len() {
            if j != i {
                if let Some(other) = self.nodes[j].raft.as_ref() {
                    check_log_matching(raft, other);
                }
            }
        }
    }
}

/// Log Matching (§5.3): if two logs hold an entry with the same index and term, the logs are
/// identical in all entries up through that index (as far as both still hold entries).
fn check_log_matching(a: &Raft, b: &Raft) {
    let (la, lb) = (a.log(), b.log());
    let lo = la.snap_index.max(lb.snap_index) + 1;
    let hi = la.last_index().min(lb.last_index());
    let mut agreed = false;
    for index in (lo..=hi).rev() {
        let (ea, eb) = (la.get(index).unwrap(), lb.get(index).unwrap());
        if agreed || ea.term == eb.term {
            agreed = true;
            assert_eq!(ea, eb, "Log Matching violated at index {index}");
        }
    }
}

fn simulate(seed: u64, n: usize, faults: Faults, options: &[(&str, &str)]) -> Sim {
    let mut sim = Sim::new(seed, n, faults, options);
    sim.run_until(15_000, true);
    sim.heal();
    sim.faults.drop_p = 0.0;
    sim.run_until(18_000, false);
    sim.clients = false;
    sim.run_until(20_000, false);
    // Everyone converged, and every acknowledged write is in every state machine.
    let nodes: Vec<&Raft> = sim.nodes.iter().map(|n| n.raft.as_ref().unwrap()).collect();
    let leader = nodes.iter().find(|r| r.role() == Role::Leader).unwrap_or_else(|| panic!("seed {seed}: no leader after healing"));
    for r in &nodes {
        assert_eq!(r.term(), leader.term(), "seed {seed}: terms differ after healing");
    }
    for (key, _) in &sim.acked {
        let text = json!(format!("k{key}")).to_string();
        for r in &nodes {
            // Followers learn the last commit index with the next heartbeat; compare at the
            // leader's commit, which every follower reaches within the quiet period.
            assert_eq!(r.state_machine().kv.get(&text), Some(&Value::from(*key)), "seed {seed}: acknowledged k{key} lost");
        }
    }
    for key in &sim.refused {
        let text = json!(format!("k{key}")).to_string();
        assert!(nodes.iter().all(|r| !r.state_machine().kv.contains_key(&text)), "seed {seed}: k{key} refused with error 11 took effect");
    }
    let commit = leader.commit_index();
    assert!(nodes.iter().all(|r| r.commit_index() == commit), "seed {seed}: commit indexes differ after healing");
    sim
}

impl Sim {
    /// Sends `request` to node `i` now; its reply lands in `probes`.
    fn probe(&mut self, i: usize, request: Request) -> ClientId {
        let client = self.next_client;
        self.next_client += 1;
        self.in_flight.insert(client, Op::Probe);
        self.step(i, |r, ctx| r.on_request(ctx, client, request));
        client
    }

    fn leader_index(&self) -> Option<usize> {
        self.nodes.iter().position(|n| n.raft.as_ref().is_some_and(|r| r.role() == Role::Leader))
    }

    /// Cuts node `i` off from every peer, both ways.
    fn isolate(&mut self, i: usize) {
        for j in (0..self.nodes.len()).filter(|j| *j != i) {
            self.cut.insert((i, j));
            self.cut.insert((j, i));
        }
    }
}

fn quiet() -> Faults {
    Faults { drop_p: 0.0, max_delay_ms: 5, partitions: false, crashes: false, bounce_voters: false }
}

fn write(key: &str) -> Request {
    Request::Write { key: json!(key), value: json!(key) }
}

/// Check-quorum: a leader cut off from all four peers keeps its term but stops leading within
/// two election timeouts (300 ms each here), answers the write it was holding with the
/// indefinite timeout (it is in its log and may yet commit), and refuses new requests with
/// error 11 naming the lost quorum; the majority elects a leader of a higher term meanwhile.
/// After the heal the old leader follows the new one and serves through it.
#[test]
fn an_isolated_leader_steps_down_and_refuses_with_lost_quorum() {
    let mut sim = Sim::new(11, 5, quiet(), &[]);
    sim.clients = false;
    sim.run_until(3_000, false);
    let old = sim.leader_index().expect("a leader after 3 s");
    let old_term = sim.nodes[old].raft.as_ref().unwrap().term();
    sim.isolate(old);
    let cut_ms = sim.now;
    let held = sim.probe(old, write("held"));
    sim.run_until(cut_ms + 2 * 300 + 20, false);
    let r = sim.nodes[old].raft.as_ref().unwrap();
    assert_ne!(r.role(), Role::Leader, "still leading {} ms after the cut", sim.now - cut_ms);
    assert_eq!(r.term(), old_term, "stepping down keeps the term");
    match sim.probes.get(&held) {
        Some((_, Reply::Error { code: 0, text })) => assert!(text.contains("lost quorum"), "{text}"),
        other => panic!("the held write must be answered as unknown (code 0), got {other:?}"),
    }
    let refused = sim.probe(old, write("new"));
    match sim.probes.get(&refused) {
        Some((at, Reply::Error { code: 11, text })) => {
            assert_eq!(*at, sim.now, "refused at once");
            assert!(text.starts_with("lost quorum: heard from 1 of 5 nodes within 300 ms"), "{text}");
        }
        other => panic!("a new request must be refused with error 11 at once, got {other:?}"),
    }
    let new = sim.leader_index().expect("the majority elected a leader");
    assert_ne!(new, old);
    let new_term = sim.nodes[new].raft.as_ref().unwrap().term();
    assert!(new_term > old_term);
    let acked = sim.probe(new, write("majority"));
    sim.run_until(sim.now + 200, false);
    assert_eq!(sim.probes.get(&acked).map(|(_, r)| r), Some(&Reply::WriteOk), "the majority side serves");

    sim.heal();
    sim.run_until(sim.now + 2_000, false);
    let r = sim.nodes[old].raft.as_ref().unwrap();
    assert_eq!((r.role(), r.term()), (Role::Follower, new_term), "the healed old leader follows");
    assert_eq!(r.leader(), Some(&sim.ids[new]));
    let through_old = sim.probe(old, write("after-heal"));
    sim.run_until(sim.now + 200, false);
    assert_eq!(sim.probes.get(&through_old).map(|(_, r)| r), Some(&Reply::WriteOk), "the old leader forwards again");
    assert_eq!(sim.leader_index(), Some(new), "the rejoin did not disturb the leader");
    let held_key = json!("held").to_string();
    assert!(sim.nodes.iter().all(|n| !n.raft.as_ref().unwrap().state_machine().kv.contains_key(&held_key)), "the held write was never committed");
}

/// `--no-check-quorum` keeps the old behaviour: the isolated leader holds on to its role.
#[test]
fn without_check_quorum_an_isolated_leader_keeps_leading() {
    let mut sim = Sim::new(11, 5, quiet(), &[("no-check-quorum", "true")]);
    sim.clients = false;
    sim.run_until(3_000, false);
    let old = sim.leader_index().expect("a leader after 3 s");
    sim.isolate(old);
    sim.run_until(sim.now + 2_000, false);
    assert_eq!(sim.nodes[old].raft.as_ref().unwrap().role(), Role::Leader);
}

fn faulty() -> Faults {
    Faults { drop_p: 0.05, max_delay_ms: 30, partitions: true, crashes: true, bounce_voters: false }
}

#[test]
fn safety_under_drops_partitions_and_crashes_3_nodes() {
    for seed in 0..24 {
        let sim = simulate(seed, 3, faulty(), &[]);
        assert!(sim.acked.len() > 20, "seed {seed}: only {} writes acknowledged", sim.acked.len());
    }
}

#[test]
fn safety_with_snapshots_5_nodes() {
    // Frequent snapshots force InstallSnapshot for nodes that were down or cut off.
    for seed in 100..112 {
        let sim = simulate(seed, 5, faulty(), &[("snapshot-every", "50")]);
        assert!(sim.acked.len() > 20, "seed {seed}: only {} writes acknowledged", sim.acked.len());
        assert!(sim.nodes.iter().any(|n| n.storage.file("snapshot").is_some()), "seed {seed}: no snapshot taken");
    }
}

#[test]
fn reads_through_the_log_and_without_prevote_are_safe_too() {
    for seed in 200..208 {
        simulate(seed, 3, faulty(), &[("read-mode", "log"), ("no-prevote", "true")]);
    }
}

#[test]
fn a_quiet_cluster_elects_one_leader_and_commits_a_noop() {
    let mut sim = Sim::new(7, 3, Faults { drop_p: 0.0, max_delay_ms: 5, partitions: false, crashes: false, bounce_voters: false }, &[]);
    sim.run_until(3_000, false);
    let leaders: Vec<_> = sim.nodes.iter().filter(|n| n.raft.as_ref().unwrap().role() == Role::Leader).collect();
    assert_eq!(leaders.len(), 1);
    let leader = leaders[0].raft.as_ref().unwrap();
    assert!(matches!(leader.log().get(1).unwrap().cmd, Command::Noop));
    assert!(sim.acked.len() > 50 && sim.reads_checked > 20, "{} writes, {} reads", sim.acked.len(), sim.reads_checked);
}

/// Local reads (the known-weak mode) are stale under a partition: the simulation's staleness
/// check must catch it, which shows the check can fail.
#[test]
fn local_read_mode_serves_stale_reads_under_partition() {
    let mut stale = false;
    for seed in 300..340 {
        let result = std::panic::catch_unwind(|| simulate(seed, 3, faulty(), &[("read-mode", "local")]));
        if let Err(e) = result {
            let text = e.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(text.contains("stale read"), "seed {seed}: unexpected failure {text}");
            stale = true;
            break;
        }
    }
    assert!(stale, "local reads never observed stale");
}

// ---------------------------------------------------------------------------------------------
// Known-bug switches (`--bug NAME`): each must be caught by the checks above, on a seed the
// unmodified core passes.

/// The messages of the safety checks (the simulation's and the core's own assertions); a run
/// that fails any other way (no leader after healing, say) does not count as catching a bug.
const SAFETY: &[&str] = &["safety violation", "Election Safety", "State Machine Safety", "Log Matching", "acknowledged", "stale read", "wrong value"];

fn panic_text(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// Hunts for a seed on which `bug` breaks a safety check, within `budget` seeds; asserts that
/// the failure is a safety one and that the same seed passes without the bug. Returns the seed.
fn caught(bug: &str, n: usize, faults: fn() -> Faults, extra: &[(&str, &str)], budget: u64) -> u64 {
    let started = std::time::Instant::now();
    let mut options = extra.to_vec();
    options.push(("bug", bug));
    for seed in 1_000..1_000 + budget {
        let Err(e) = std::panic::catch_unwind(|| simulate(seed, n, faults(), &options)) else { continue };
        let text = panic_text(e);
        assert!(SAFETY.iter().any(|s| text.contains(s)), "--bug {bug}, seed {seed}: not a safety failure: {text}");
        simulate(seed, n, faults(), extra);
        eprintln!("--bug {bug}: caught on seed {seed} ({} seeds, {:?}): {text}", seed - 999, started.elapsed());
        return seed;
    }
    panic!("--bug {bug}: not caught in {budget} seeds");
}

/// Faults for elections: voters crash and restart right after voting, so a vote forgotten by
/// the restart can meet a second candidate of the same term (split votes are common without
/// pre-vote).
fn bouncing() -> Faults {
    Faults { bounce_voters: true, ..faulty() }
}

#[test]
fn bug_commit_on_one_ack_is_caught() {
    caught("commit-on-one-ack", 3, faulty, &[], 40);
}

#[test]
fn bug_vote_not_persisted_is_caught() {
    caught("vote-not-persisted", 3, bouncing, &[("no-prevote", "true")], 300);
}

#[test]
fn bug_ack_before_persist_is_caught() {
    caught("ack-before-persist", 3, faulty, &[], 100);
}

/// With check-quorum a leader cut off from the majority steps down within two election timeouts,
/// before the simulation's partitions (0.3–2 s) usually heal, so a deposed leader rarely still
/// sends AppendEntries to a follower of a newer term: 600 seeds did not catch the bug with it on.
/// The bug is hunted where it bites, in a cluster without check-quorum.
#[test]
fn bug_stale_term_append_is_caught() {
    caught("stale-term-append", 3, faulty, &[("no-check-quorum", "true")], 100);
}

#[test]
fn bug_no_truncate_on_conflict_is_caught() {
    caught("no-truncate-on-conflict", 3, faulty, &[], 100);
}

#[test]
fn bug_unconfirmed_leader_read_is_caught() {
    caught("unconfirmed-leader-read", 3, faulty, &[], 100);
}



