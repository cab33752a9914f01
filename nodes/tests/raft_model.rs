//! Exhaustive model check of the real Raft core with stateright: 3 nodes wrapped as actors, on
//! a reliable unordered network that delivers messages in any order. The bounds keep the state
//! space small enough for a release-mode test run in about 10 s (15 s in debug):
//! - terms ≤ 2 (`within_boundary`), without pre-vote, so every election timeout is a new term;
//! - only n1 and n2 ever fire their election timer (two candidates suffice for split votes and
//!   competing leaders; n3 only votes and follows);
//! - no heartbeats: the network loses nothing, so a new leader's first AppendEntries and the
//!   one after the client write carry everything (a heartbeat more multiplies the space by ~5);
//! - exactly one client write, at n1, at a moment of the checker's choosing;
//! - at most [`MAX_IN_FLIGHT`] messages undelivered at once;
//! - check-quorum off (`--no-check-quorum`): a leader's step-down at any moment multiplies the
//!   space by 16. The check with it on, [`raft_with_check_quorum_is_safe_in_every_reachable_state`],
//!   runs on demand (`--ignored`, about 4 minutes).
//!
//! Checks Election Safety and State Machine Safety (§5.2, §5.4.3) in every reachable state, and
//! that no assertion inside the core fails (a failing one is reported with its path), and
//! that the model reaches a leader, a leader of term 2, a committed no-op and a committed client
//! write (so the check provably explores something). The golden number of unique states pins
//! the protocol's behaviour: a change to the core that alters the state space shows up here.

use faultline_nodes::core::{Core, Ctx, Effect, NodeConfig, Request, Storage, TimerId};
use faultline_nodes::raft::{Command, Msg, Raft, Role};
use serde_json::json;
use stateright::actor::{model_timeout, Actor, ActorModel, ActorModelState, Id, Network, Out};
use stateright::{Checker, Expectation, Model};
use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The core's timers (private to it; the numbers are part of its runtime contract).
const TIMER_ELECTION: TimerId = 1;
const TIMER_HEARTBEAT: TimerId = 2;
/// The core's once-a-second client timeout sweep changes nothing in the model: not armed.
const TIMER_SWEEP: TimerId = 4;
/// A timer only the model uses: "a client sends this node one write now".
const TIMER_CLIENT: TimerId = 99;
const NODES: usize = 3;
const MAX_TERM: u64 = 2;
/// Nodes `0..CANDIDATES` may fire their election timer.
const CANDIDATES: usize = 2;
/// Nodes `0..WRITERS` receive one client write each.
const WRITERS: usize = 1;
/// Four lets both candidates' vote requests be in flight at once (a contested election).
const MAX_IN_FLIGHT: usize = 4;
/// The golden number of unique states (see the module comment).
const GOLDEN_UNIQUE_STATES: usize = 145_455;
/// The same with check-quorum on: its timer fires at any moment on a leader.
const GOLDEN_UNIQUE_STATES_CHECK_QUORUM: usize = 2_357_947;

#[derive(Clone, Debug, PartialEq)]
struct M(Msg);
impl Eq for M {}
impl Hash for M {
    fn hash<H: Hasher>(&self, h: &mut H) {
        format!("{:?}", self.0).hash(h)
    }
}

/// The core's state, compared and hashed through its fingerprint; and the message of an
/// assertion of the core that failed (the node then stops: the checker reports the path).
#[derive(Clone, Debug)]
struct S {
    raft: Raft,
    panicked: Option<String>,
}
impl PartialEq for S {
    fn eq(&self, other: &Self) -> bool {
        self.panicked == other.panicked && self.raft.fingerprint() == other.raft.fingerprint()
    }
}
impl Hash for S {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.panicked.hash(h);
        self.raft.fingerprint().hash(h)
    }
}

/// Runs one step of the core, turning a failed assertion inside it into `panicked` so that the
/// checker reports it as a property violation with its path instead of dying.
fn step(s: &mut S, ctx: &mut Ctx<Msg>, f: impl FnOnce(&mut Raft, &mut Ctx<Msg>)) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut s.raft, &mut *ctx)));
    if let Err(payload) = result {
        let text = payload.downcast_ref::<String>().cloned().or_else(|| payload.downcast_ref::<&str>().map(|m| m.to_string()));
        s.panicked = Some(text.unwrap_or_else(|| "panic".into()));
        ctx.take();
    }
}

#[derive(Clone)]
struct Node {
    index: usize,
    options: Vec<(&'static str, &'static str)>,
}

fn name(i: usize) -> String {
    format!("n{}", i + 1)
}

impl Node {
    fn config(&self) -> NodeConfig {
        NodeConfig {
            id: name(self.index),
            peers: (0..NODES).filter(|&j| j != self.index).map(name).collect(),
            workload: "register".into(),
            options: self.options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            seed: 0,
        }
    }

    /// Turns the core's effects into the actor's; timers the model does not allow stay unarmed.
    fn emit(&self, ctx: &mut Ctx<Msg>, o: &mut Out<Node>) {
        for effect in ctx.take() {
            match effect {
                Effect::Send { to, msg } => {
                    let j: usize = to[1..].parse::<usize>().expect("node name") - 1;
                    o.send(Id::from(j), M(msg));
                }
                Effect::SetTimer { id: TIMER_SWEEP | TIMER_HEARTBEAT, .. } => {}
                Effect::SetTimer { id: TIMER_ELECTION, .. } if self.index >= CANDIDATES => {}
                Effect::SetTimer { id, .. } => o.set_timer(id, model_timeout()),
                Effect::CancelTimer { id } => o.cancel_timer(id),
                _ => {}
            }
        }
    }
}

impl Actor for Node {
    type Msg = M;
    type State = S;
    type Timer = TimerId;

    fn on_start(&self, _id: Id, o: &mut Out<Self>) -> S {
        let mut raft = Raft::recover(&self.config(), &Storage::default());
        let mut ctx = Ctx::for_test(0, self.index as u64);
        raft.on_start(&mut ctx);
        self.emit(&mut ctx, o);
        if self.index < WRITERS {
            o.set_timer(TIMER_CLIENT, model_timeout());
        }
        S { raft, panicked: None }
    }

    fn on_msg(&self, _id: Id, state: &mut Cow<S>, src: Id, msg: M, o: &mut Out<Self>) {
        if state.panicked.is_some() {
            return;
        }
        let mut ctx = Ctx::for_test(0, 0);
        let s = state.to_mut();
        step(s, &mut ctx, |raft, ctx| raft.on_message(ctx, &name(usize::from(src)), msg.0));
        self.emit(&mut ctx, o);
    }

    fn on_timeout(&self, _id: Id, state: &mut Cow<S>, timer: &TimerId, o: &mut Out<Self>) {
        if state.panicked.is_some() {
            return;
        }
        let mut ctx = Ctx::for_test(0, 0);
        let s = state.to_mut();
        if *timer == TIMER_CLIENT {
            let request = Request::Write { key: json!("k"), value: json!(self.index) };
            step(s, &mut ctx, |raft, ctx| raft.on_request(ctx, self.index as u64 + 1, request));
        } else {
            step(s, &mut ctx, |raft, ctx| raft.on_timer(ctx, *timer));
        }
        self.emit(&mut ctx, o);
    }
}

type State = ActorModelState<Node>;

fn rafts(state: &State) -> impl Iterator<Item = &Raft> {
    state.actor_states.iter().map(|s: &Arc<S>| &s.raft)
}

fn model(options: Vec<(&'static str, &'static str)>) -> ActorModel<Node> {
    ActorModel::new((), ())
        .actors((0..NODES).map(|index| Node { index, options: options.clone() }))
        .init_network(Network::new_unordered_nonduplicating([]))
        .property(Expectation::Always, "the core's own assertions hold", |_, state| {
            state.actor_states.iter().all(|s| s.panicked.is_none())
        })
        .property(Expectation::Always, "election safety", |_, state| {
            let leaders: Vec<u64> = rafts(state).filter(|r| r.role() == Role::Leader).map(|r| r.term()).collect();
            let mut dedup = leaders.clone();
            dedup.sort_unstable();
            dedup.dedup();
            dedup.len() == leaders.len()
        })
        .property(Expectation::Always, "state machine safety", |_, state| {
            let all: Vec<&Raft> = rafts(state).collect();
            all.iter().all(|a| {
                all.iter().all(|b| {
                    let upto = a.commit_index().min(b.commit_index());
                    (1..=upto).all(|i| a.log().get(i) == b.log().get(i))
                })
            })
        })
        .property(Expectation::Sometimes, "a leader is elected", |_, state| rafts(state).any(|r| r.role() == Role::Leader))
        .property(Expectation::Sometimes, "a leader of term 2 is elected", |_, state| {
            rafts(state).any(|r| r.role() == Role::Leader && r.term() == 2)
        })
        .property(Expectation::Sometimes, "the no-op commits", |_, state| rafts(state).any(|r| r.commit_index() >= 1))
        .property(Expectation::Sometimes, "a client write commits", |_, state| {
            rafts(state).any(|r| {
                (1..=r.commit_index()).any(|i| matches!(r.log().get(i).map(|e| &e.cmd), Some(Command::Client { .. })))
            })
        })
        .within_boundary(|_, state| rafts(state).all(|r| r.term() <= MAX_TERM) && state.network.len() <= MAX_IN_FLIGHT)
}

#[test]
fn raft_3_nodes_is_safe_in_every_reachable_state() {
    check(vec![("no-prevote", "true"), ("no-check-quorum", "true")], 120, GOLDEN_UNIQUE_STATES);
}

/// A leader that steps down for lack of a quorum (at any moment: the model's timers have no
/// time) keeps Election Safety and State Machine Safety. 2,357,947 states in 255 s on two cores.
#[test]
#[ignore = "about 4 minutes; run with --ignored"]
fn raft_with_check_quorum_is_safe_in_every_reachable_state() {
    check(vec![("no-prevote", "true")], 600, GOLDEN_UNIQUE_STATES_CHECK_QUORUM);
}

fn check(options: Vec<(&'static str, &'static str)>, timeout_s: u64, golden: usize) {
    let started = std::time::Instant::now();
    let checker = model(options).checker().timeout(std::time::Duration::from_secs(timeout_s)).spawn_bfs().join();
    println!("unique states: {} in {:?}", checker.unique_state_count(), started.elapsed());
    for (name, path) in checker.discoveries() {
        println!("discovered {name}: {} steps", path.into_actions().len());
    }
    checker.assert_no_discovery("election safety");
    checker.assert_no_discovery("state machine safety");
    checker.assert_no_discovery("the core's own assertions hold");
    checker.assert_properties();
    assert!(checker.is_done(), "the check did not finish within its timeout");
    assert_eq!(checker.unique_state_count(), golden, "the state space changed: re-pin the golden count if intended");
}
