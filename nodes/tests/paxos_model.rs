//! Exhaustive model check of the Paxos rules the core uses.
//!
//! The acceptor here is the core's own [`Acceptor`] (its `on_prepare` / `on_accept`), and a new
//! leader picks values with the core's own [`merge_promises`]; only the proposer's bookkeeping
//! is restated, small enough to read. Three acceptors, two proposers with bounded ballots, two
//! slots decided under one phase 1 (Multi-Paxos), and a network that may lose, duplicate and
//! reorder any message (messages are a set, delivered any number of times or never). Proposers
//! may crash, losing their volatile state; acceptors keep what they persisted.
//!
//! The property is agreement in its strongest form: per slot, at most one value is ever
//! *chosen* — accepted by a quorum in one ballot — whoever learns it. A mutant whose acceptors
//! forget their promise on a crash (as if the promise were not saved before it was sent) must
//! be caught, so the check is shown able to fail.

use faultline_nodes::paxos::acceptor::{merge_promises, AcceptOutcome, Acceptor, PrepareOutcome};
use faultline_nodes::paxos::{Ballot, Slot};
use stateright::{Checker, HasDiscoveries, Model, Property};
use std::collections::{BTreeMap, BTreeSet};

const ACCEPTORS: usize = 3;
const QUORUM: usize = 2;
const PROPOSERS: u32 = 2;

type Value = u8;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Msg {
    Prepare { ballot: Ballot, to: usize },
    Accept { ballot: Ballot, slot: Slot, value: Value, to: usize },
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Proposer {
    Idle,
    Preparing { ballot: Ballot, promises: BTreeMap<usize, Vec<(Slot, Ballot, Value)>> },
    /// Phase 2 running; the slots it decided.
    Leading { ballot: Ballot, acks: BTreeMap<Slot, BTreeSet<usize>>, decided: BTreeMap<Slot, Value> },
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct State {
    acceptors: Vec<Acceptor<Value>>,
    proposers: Vec<Proposer>,
    /// The next round each proposer may start (bounded by the model).
    next_round: Vec<u64>,
    network: BTreeSet<Msg>,
    /// Ghost: every (slot, ballot, value, acceptor) vote ever cast.
    votes: BTreeSet<(Slot, Ballot, Value, usize)>,
    crashes: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Action {
    StartBallot(usize),
    Deliver(Msg),
    /// A node crashes and restarts at once: its proposer forgets everything; its acceptor keeps
    /// its durable state (or, in the mutant, loses its promise).
    Crash(usize),
}

struct PaxosModel {
    /// The highest round each proposer may start.
    max_round: Vec<u64>,
    /// The slots decided under one phase 1: `1..=slots`.
    slots: Slot,
    max_crashes: u8,
    /// The mutant: acceptors forget promises on a crash (only the accept log survives).
    lose_promises: bool,
    /// Whether a delivered message stays in the network (may be delivered again).
    duplicate: bool,
}

/// The value proposer `p` wants for `slot` when it is free.
fn own_value(p: usize, slot: Slot) -> Value {
    (p as u8 + 1) * 10 + slot as u8
}

/// Values chosen per slot: accepted by a quorum within one ballot.
fn chosen(state: &State) -> BTreeMap<Slot, BTreeSet<Value>> {
    let mut count: BTreeMap<(Slot, Ballot, Value), usize> = BTreeMap::new();
    for (slot, ballot, value, _) in &state.votes {
        *count.entry((*slot, *ballot, *value)).or_default() += 1;
    }
    let mut out: BTreeMap<Slot, BTreeSet<Value>> = BTreeMap::new();
    for ((slot, _, value), n) in count {
        if n >= QUORUM {
            out.entry(slot).or_default().insert(value);
        }
    }
    out
}

impl PaxosModel {
    /// Delivers a message: without duplication it leaves the network.
    fn take(&self, state: &mut State, msg: Msg) -> Msg {
        if !self.duplicate {
            state.network.remove(&msg);
        }
        msg
    }

    fn on_promise(&self, state: &mut State, p: usize, ballot: Ballot, from: usize, accepted: Vec<(Slot, Ballot, Value)>) {
        let Proposer::Preparing { ballot: mine, promises } = &mut state.proposers[p] else { return };
        if *mine != ballot {
            return;
        }
        promises.insert(from, accepted);
        if promises.len() < QUORUM {
            return;
        }
        // Phase 1 done for every slot at once: re-propose the highest-ballot value per slot.
        let merged = merge_promises(promises.values().flatten().cloned());
        for slot in 1..=self.slots {
            let value = merged.get(&slot).map(|(_, v)| *v).unwrap_or(own_value(p, slot));
            for to in 0..ACCEPTORS {
                state.network.insert(Msg::Accept { ballot, slot, value, to });
            }
        }
        state.proposers[p] = Proposer::Leading { ballot, acks: BTreeMap::new(), decided: BTreeMap::new() };
    }

    fn on_accepted(state: &mut State, p: usize, ballot: Ballot, slot: Slot, from: usize) {
        let Proposer::Leading { ballot: mine, acks, decided } = &mut state.proposers[p] else { return };
        if *mine != ballot {
            return;
        }
        let acks = acks.entry(slot).or_default();
        acks.insert(from);
        if acks.len() >= QUORUM && !decided.contains_key(&slot) {
            // The value this leader sent for the slot, as the acceptors' votes record it.
            let value = state
                .votes
                .iter()
                .find_map(|(s, b, v, _)| (*b == ballot && *s == slot).then_some(*v))
                .expect("a vote of this ballot");
            decided.insert(slot, value);
        }
    }
}

impl Model for PaxosModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            acceptors: vec![Acceptor::new(); ACCEPTORS],
            proposers: vec![Proposer::Idle; PROPOSERS as usize],
            next_round: vec![1; PROPOSERS as usize],
            network: BTreeSet::new(),
            votes: BTreeSet::new(),
            crashes: 0,
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        for p in 0..PROPOSERS as usize {
            if state.next_round[p] <= self.max_round[p] {
                actions.push(Action::StartBallot(p));
            }
        }
        for m in &state.network {
            actions.push(Action::Deliver(m.clone()));
        }
        if state.crashes < self.max_crashes {
            for n in 0..ACCEPTORS {
                actions.push(Action::Crash(n));
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut state = last.clone();
        match action {
            Action::StartBallot(p) => {
                let ballot = Ballot::new(state.next_round[p], p as u32);
                state.next_round[p] += 1;
                state.proposers[p] = Proposer::Preparing { ballot, promises: BTreeMap::new() };
                for to in 0..ACCEPTORS {
                    state.network.insert(Msg::Prepare { ballot, to });
                }
            }
            Action::Deliver(msg) => match self.take(&mut state, msg) {
                // The reply is handled in the same step: the proposer's reaction is local to it
                // and commutes with everything else, so this loses no interleaving that
                // matters, and a lost reply is a request never delivered.
                Msg::Prepare { ballot, to } => {
                    if let PrepareOutcome::Promise { accepted, .. } = state.acceptors[to].on_prepare(ballot, 1) {
                        self.on_promise(&mut state, ballot.node as usize, ballot, to, accepted);
                    }
                }
                Msg::Accept { ballot, slot, value, to } => {
                    if let AcceptOutcome::Accepted { .. } = state.acceptors[to].on_accept(ballot, slot, value) {
                        state.votes.insert((slot, ballot, value, to));
                        PaxosModel::on_accepted(&mut state, ballot.node as usize, ballot, slot, to);
                    }
                }
            },
            Action::Crash(n) => {
                state.crashes += 1;
                if n < PROPOSERS as usize {
                    state.proposers[n] = Proposer::Idle;
                }
                if self.lose_promises {
                    let a = &mut state.acceptors[n];
                    a.promised = a.accepted.values().map(|(b, _)| *b).max().unwrap_or(Ballot::ZERO);
                }
            }
        }
        Some(state)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::<Self>::always("agreement", |_, state| chosen(state).values().all(|vs| vs.len() <= 1)),
            Property::<Self>::always("leaders agree with chosen", |_, state| {
                let chosen = chosen(state);
                state.proposers.iter().all(|p| match p {
                    Proposer::Leading { decided, .. } => {
                        decided.iter().all(|(slot, v)| chosen.get(slot).is_some_and(|vs| vs.contains(v)))
                    }
                    _ => true,
                })
            }),
            Property::<Self>::sometimes("every slot chosen", |m, state| chosen(state).len() == m.slots as usize),
            Property::<Self>::sometimes("a later ballot re-proposes an accepted value", |_, state| {
                state.votes.iter().any(|(s, b, v, _)| *v != own_value(b.node as usize, *s))
            }),
        ]
    }
}

/// The state with acceptors renamed by `perm` (acceptor `i` becomes `perm[i]`).
fn permute(state: &State, perm: &[usize; ACCEPTORS]) -> State {
    let mut acceptors = state.acceptors.clone();
    for (i, a) in state.acceptors.iter().enumerate() {
        acceptors[perm[i]] = a.clone();
    }
    let proposers = state
        .proposers
        .iter()
        .map(|p| match p {
            Proposer::Idle => Proposer::Idle,
            Proposer::Preparing { ballot, promises } => Proposer::Preparing {
                ballot: *ballot,
                promises: promises.iter().map(|(a, v)| (perm[*a], v.clone())).collect(),
            },
            Proposer::Leading { ballot, acks, decided } => Proposer::Leading {
                ballot: *ballot,
                acks: acks.iter().map(|(s, set)| (*s, set.iter().map(|a| perm[*a]).collect())).collect(),
                decided: decided.clone(),
            },
        })
        .collect();
    let network = state
        .network
        .iter()
        .map(|m| match m {
            Msg::Prepare { ballot, to } => Msg::Prepare { ballot: *ballot, to: perm[*to] },
            Msg::Accept { ballot, slot, value, to } => Msg::Accept { ballot: *ballot, slot: *slot, value: *value, to: perm[*to] },
        })
        .collect();
    let votes = state.votes.iter().map(|(s, b, v, a)| (*s, *b, *v, perm[*a])).collect();
    State { acceptors, proposers, next_round: state.next_round.clone(), network, votes, crashes: state.crashes }
}

/// Acceptors are interchangeable (without crashes nothing names one): the smallest renaming
/// stands for all six.
fn representative(state: &State) -> State {
    const PERMS: [[usize; 3]; 6] = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    PERMS.iter().map(|p| permute(state, p)).min().expect("six permutations")
}

fn check_exhaustively(model: PaxosModel) -> usize {
    let checker = model.checker().symmetry_fn(representative).spawn_dfs().join();
    checker.assert_properties();
    checker.unique_state_count()
}

/// Single-decree Paxos with three ballots: (1, p0), (1, p1), (2, p0).
#[test]
fn paxos_agreement_three_ballots() {
    let states = check_exhaustively(PaxosModel { max_round: vec![2, 1], slots: 1, max_crashes: 0, lose_promises: false, duplicate: false });
    // Golden count: any change to the acceptor rules or the merge shows up here.
    assert_eq!(states, 82_638, "state space changed");
}

/// Multi-Paxos: two slots decided under one phase 1, two competing ballots.
#[test]
#[ignore = "about 17 s of CPU in a debug build; run with --ignored"]
fn multi_paxos_agreement_two_slots() {
    let states = check_exhaustively(PaxosModel { max_round: vec![1, 1], slots: 2, max_crashes: 0, lose_promises: false, duplicate: false });
    assert_eq!(states, 141_392, "state space changed");
}

#[test]
fn forgetting_promises_breaks_agreement() {
    let checker = PaxosModel { max_round: vec![1, 1], slots: 1, max_crashes: 1, lose_promises: true, duplicate: false }
        .checker()
        .finish_when(HasDiscoveries::AnyFailures)
        .spawn_bfs()
        .join();
    eprintln!("mutant: {} unique states", checker.unique_state_count());
    assert!(checker.discovery("agreement").is_some(), "the mutant should violate agreement");
}
