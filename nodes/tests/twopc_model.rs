//! Model checking the real two-phase-commit core with stateright: three nodes (coordinator n1,
//! participants n2 and n3), one transfer from n2's account to n3's, every interleaving of
//! message delivery (messages may also be duplicated or never delivered), timer firings at any
//! moment, and a bounded number of crash-restarts that rebuild a node from its durable log.
//!
//! Properties: atomic commitment (never applied on one participant and aborted or skipped on
//! the other), an acknowledged transfer is never aborted anywhere, and (reachability) both a
//! full commit and an abort can happen. The known-weak `--unsafe-commit-on-timeout` mode must
//! yield a counterexample. Golden state counts catch semantic drift of the core.

use faultline_nodes::core::{Core, Ctx, Effect, NodeConfig, Reply, Request, Storage, TimerId};
use faultline_nodes::twopc::{Msg, Outcome, TwoPc, TxnId};
use serde_json::json;
use stateright::actor::{Actor, ActorModel, Id, Network, Out};
use stateright::{Checker, Expectation, Model};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const NAMES: [&str; 3] = ["n1", "n2", "n3"];

/// A core message in its JSON form, which is comparable and hashable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Wire(String);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Timer {
    Core(TimerId),
    /// Firing it crashes the node and restarts it from its log.
    Crash,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Node {
    core: TwoPc,
    logs: BTreeMap<String, Vec<Vec<u8>>>,
    files: BTreeMap<String, Vec<u8>>,
    crashes_left: u8,
    /// What the client heard: `Some(true)` for transfer_ok, `Some(false)` for an error.
    answer: Option<bool>,
}

struct NodeActor {
    config: NodeConfig,
    crashes: u8,
    /// Whether this node receives the client's transfer at start.
    client: bool,
}

fn config(i: usize, options: &[(&str, &str)]) -> NodeConfig {
    NodeConfig {
        id: NAMES[i].into(),
        peers: NAMES.iter().filter(|n| **n != NAMES[i]).map(|n| n.to_string()).collect(),
        workload: "bank".into(),
        options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        seed: 0,
    }
}

impl NodeActor {
    fn storage(node: &Node) -> Storage {
        Storage { files: node.files.clone(), logs: node.logs.clone() }
    }

    /// Turns the core's effects into stateright commands and durable state.
    fn perform(node: &mut Node, effects: Vec<Effect<Msg>>, o: &mut Out<Self>) {
        let mut storage = Self::storage(node);
        for e in effects {
            storage.apply(&e);
            match e {
                Effect::Send { to, msg } => {
                    let idx = NAMES.iter().position(|n| *n == to).expect("known peer");
                    o.send(Id::from(idx), Wire(serde_json::to_string(&msg).expect("serializes")));
                }
                Effect::Reply { reply, .. } => node.answer = Some(reply == Reply::TransferOk),
                Effect::SetTimer { id, .. } => o.set_timer(Timer::Core(id), Duration::ZERO..Duration::from_millis(1)),
                Effect::CancelTimer { id } => o.cancel_timer(Timer::Core(id)),
                _ => {}
            }
        }
        node.logs = storage.logs;
        node.files = storage.files;
    }

    fn boot(&self, mut node: Node, o: &mut Out<Self>) -> Node {
        let mut ctx = Ctx::for_test(0, 0);
        node.core.on_start(&mut ctx);
        Self::perform(&mut node, ctx.take(), o);
        if node.crashes_left > 0 {
            o.set_timer(Timer::Crash, Duration::ZERO..Duration::from_millis(1));
        }
        node
    }

    /// Runs `f` on a copy of the node and keeps the copy only if something changed, so
    /// stateright can prune steps that change nothing.
    fn step(&self, state: &mut Cow<Node>, o: &mut Out<Self>, f: impl FnOnce(&mut TwoPc, &mut Ctx<Msg>)) {
        let mut next = (**state).clone();
        let mut ctx = Ctx::for_test(0, 0);
        f(&mut next.core, &mut ctx);
        Self::perform(&mut next, ctx.take(), o);
        if next != **state {
            *state = Cow::Owned(next);
        }
    }
}

impl Actor for NodeActor {
    type Msg = Wire;
    type Timer = Timer;
    type State = Node;

    fn on_start(&self, _id: Id, o: &mut Out<Self>) -> Node {
        let core = TwoPc::recover(&self.config, &Storage::default());
        let node = Node { core, logs: BTreeMap::new(), files: BTreeMap::new(), crashes_left: self.crashes, answer: None };
        let mut node = self.boot(node, o);
        if self.client {
            let mut ctx = Ctx::for_test(0, 0);
            let transfer = Request::Transfer { from: json!(1), to: json!(2), amount: 5 };
            node.core.on_request(&mut ctx, 1, transfer);
            Self::perform(&mut node, ctx.take(), o);
        }
        node
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<Node>, src: Id, msg: Wire, o: &mut Out<Self>) {
        let msg: Msg = serde_json::from_str(&msg.0).expect("we encoded it");
        let from = NAMES[usize::from(src)];
        self.step(state, o, |core, ctx| core.on_message(ctx, from, msg));
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<Node>, timer: &Timer, o: &mut Out<Self>) {
        match timer {
            Timer::Core(t) => self.step(state, o, |core, ctx| core.on_timer(ctx, *t)),
            Timer::Crash => {
                // Memory and timers are lost; the log survives.
                o.cancel_timer(Timer::Core(1));
                let old = state.to_mut();
                let core = TwoPc::recover(&self.config, &Self::storage(old));
                let node = Node { core, crashes_left: old.crashes_left - 1, ..old.clone() };
                *old = self.boot(node, o);
            }
        }
    }
}

fn outcomes(nodes: &[std::sync::Arc<Node>]) -> BTreeMap<TxnId, BTreeSet<Outcome>> {
    let mut by: BTreeMap<TxnId, BTreeSet<Outcome>> = BTreeMap::new();
    for n in nodes {
        for (t, o) in n.core.outcomes() {
            by.entry(t.clone()).or_default().insert(*o);
        }
    }
    by
}

fn model(options: &[(&str, &str)], crashes: [u8; 3]) -> ActorModel<NodeActor> {
    let mut options = options.to_vec();
    options.extend([("accounts", "3"), ("initial-balance", "10")]);
    ActorModel::new((), ())
        .actors((0..3).map(|i| NodeActor { config: config(i, &options), crashes: crashes[i], client: i == 0 }))
        .init_network(Network::new_unordered_duplicating([]))
        .property(Expectation::Always, "atomic commitment", |_, s| {
            outcomes(&s.actor_states).values().all(|o| {
                !(o.contains(&Outcome::Applied) && (o.contains(&Outcome::Aborted) || o.contains(&Outcome::Missed)))
            })
        })
        .property(Expectation::Always, "an acknowledged transfer is never aborted", |_, s| {
            s.actor_states[0].answer != Some(true)
                || outcomes(&s.actor_states).values().all(|o| !o.contains(&Outcome::Aborted) && !o.contains(&Outcome::Missed))
        })
        .property(Expectation::Sometimes, "committed on both participants", |_, s| {
            let b = |i: usize, a: u32| s.actor_states[i].core.balances().get(&a).copied();
            b(1, 1) == Some(5) && b(2, 2) == Some(15)
        })
        .property(Expectation::Sometimes, "aborted and the client told", |_, s| s.actor_states[0].answer == Some(false))
}

#[test]
fn two_phase_commit_is_atomic_with_crashes() {
    let checker = model(&[], [1, 1, 0]).checker().spawn_bfs().join();
    checker.assert_properties();
    let count = checker.unique_state_count();
    eprintln!("unique states: {count}");
    assert_eq!(count, 25_494, "golden state count changed: review the core's semantics, then update it");
}

#[test]
fn unsafe_commit_on_timeout_is_caught() {
    let checker = model(&[("unsafe-commit-on-timeout", "true")], [0, 0, 0]).checker().spawn_bfs().join();
    let trace = checker.discovery("atomic commitment");
    assert!(trace.is_some(), "the model checker must find the unsafe mode's partial commit");
}
