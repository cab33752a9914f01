//! Partition shapes, as grudges (node → the nodes it no longer receives from).
//!
//! Pure functions of the node list and a seeded generator, after Jepsen's `nemesis` namespace:
//! two halves, one node isolated, the majorities ring, a bridge, and a one-way cut. Shapes that
//! need more nodes than given (a ring of two) degrade to the empty grudge, which heals nothing
//! and cuts nothing.

use super::{Grudge, NodeId};
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::BTreeSet;

/// The shapes [`random`] chooses from, by name.
pub const SHAPES: &[&str] = &["halves", "one", "ring", "bridge"];

/// The grudge that cuts every node of each component off from every node of the others.
pub fn complete(components: &[Vec<NodeId>]) -> Grudge {
    let mut grudge = Grudge::new();
    for (i, component) in components.iter().enumerate() {
        let others: BTreeSet<NodeId> =
            components.iter().enumerate().filter(|(j, _)| *j != i).flat_map(|(_, c)| c.iter().cloned()).collect();
        if others.is_empty() {
            continue;
        }
        for node in component {
            grudge.insert(node.clone(), others.clone());
        }
    }
    grudge
}

/// The nodes `node` still receives from (itself included) under a grudge.
pub fn visible(nodes: &[NodeId], grudge: &Grudge, node: &str) -> BTreeSet<NodeId> {
    let cut = grudge.get(node);
    nodes.iter().filter(|n| !cut.is_some_and(|c| c.contains(*n))).cloned().collect()
}

fn shuffled(nodes: &[NodeId], rng: &mut impl Rng) -> Vec<NodeId> {
    let mut v = nodes.to_vec();
    v.shuffle(rng);
    v
}

/// A random split into two halves (the smaller one has ⌊n/2⌋ nodes).
pub fn halves(nodes: &[NodeId], rng: &mut impl Rng) -> Grudge {
    let v = shuffled(nodes, rng);
    let (a, b) = v.split_at(v.len() / 2);
    complete(&[a.to_vec(), b.to_vec()])
}

/// One random node isolated from all the others.
pub fn one(nodes: &[NodeId], rng: &mut impl Rng) -> Grudge {
    let v = shuffled(nodes, rng);
    let (a, b) = v.split_at(v.len().min(1));
    complete(&[a.to_vec(), b.to_vec()])
}

/// Jepsen's majorities ring: the nodes in a random ring, each seeing the majority window
/// centred on itself. Every node sees a majority, the majorities overlap, and no two nodes see
/// the same one, so no two nodes can agree on who is in charge by comparing views. With fewer
/// than three nodes no such ring exists and the grudge is empty.
pub fn ring(nodes: &[NodeId], rng: &mut impl Rng) -> Grudge {
    let n = nodes.len();
    if n < 3 {
        return Grudge::new();
    }
    let v = shuffled(nodes, rng);
    let m = n / 2 + 1;
    let all: BTreeSet<NodeId> = v.iter().cloned().collect();
    let mut grudge = Grudge::new();
    for start in 0..n {
        let window: BTreeSet<NodeId> = (0..m).map(|k| v[(start + k) % n].clone()).collect();
        let centre = v[(start + m / 2) % n].clone();
        grudge.insert(centre, all.difference(&window).cloned().collect());
    }
    grudge
}

/// Two halves that both still see one bridge node, which sees everybody. Each half plus the
/// bridge is a majority when n is odd.
pub fn bridge(nodes: &[NodeId], rng: &mut impl Rng) -> Grudge {
    if nodes.len() < 3 {
        return Grudge::new();
    }
    let v = shuffled(nodes, rng);
    let (a, rest) = v.split_at(v.len() / 2);
    let (bridge, b) = rest.split_first().expect("n >= 3 leaves a bridge");
    let mut grudge = complete(&[a.to_vec(), b.to_vec()]);
    grudge.remove(bridge);
    grudge
}

/// The leader cut off together with a minority: `leader` plus ⌊n/2⌋ - 1 random others on one
/// side, everyone else (a majority) on the other. Clients bound to the leader's side keep
/// sending to a leader that can no longer commit. Without a known leader, a random minority.
pub fn leader_minority(nodes: &[NodeId], leader: Option<&str>, rng: &mut impl Rng) -> Grudge {
    let mut v = shuffled(nodes, rng);
    if let Some(pos) = leader.and_then(|l| v.iter().position(|n| n == l)) {
        let l = v.remove(pos);
        v.insert(0, l);
    }
    let (minority, majority) = v.split_at((v.len() / 2).max(1));
    complete(&[minority.to_vec(), majority.to_vec()])
}

/// One random node other than `leader` isolated from all the others.
pub fn one_follower(nodes: &[NodeId], leader: Option<&str>, rng: &mut impl Rng) -> Grudge {
    let others: Vec<NodeId> = nodes.iter().filter(|n| Some(n.as_str()) != leader).cloned().collect();
    let Some(pick) = others.choose(rng).cloned() else { return Grudge::new() };
    let rest: Vec<NodeId> = nodes.iter().filter(|n| **n != pick).cloned().collect();
    complete(&[vec![pick], rest])
}

/// One of [`SHAPES`] at random, with its name.
pub fn random(nodes: &[NodeId], rng: &mut impl Rng) -> (String, Grudge) {
    let name = SHAPES[rng.gen_range(0..SHAPES.len())];
    (name.to_string(), by_name(name, nodes, rng).expect("SHAPES are known"))
}

/// A shape by name (`halves`, `one`, `ring`, `bridge`, `one-way`); `None` for an unknown name.
pub fn by_name(name: &str, nodes: &[NodeId], rng: &mut impl Rng) -> Option<Grudge> {
    Some(match name {
        "halves" => halves(nodes, rng),
        "one" => one(nodes, rng),
        "ring" => ring(nodes, rng),
        "bridge" => bridge(nodes, rng),
        "one-way" => one_way(nodes, rng),
        _ => return None,
    })
}

/// A one-way cut: a random minority (1..=⌊n/2⌋ nodes) stops receiving from everybody else,
/// while everybody else still receives from it.
pub fn one_way(nodes: &[NodeId], rng: &mut impl Rng) -> Grudge {
    if nodes.len() < 2 {
        return Grudge::new();
    }
    let v = shuffled(nodes, rng);
    let size = rng.gen_range(1..=v.len() / 2);
    let (deaf, rest) = v.split_at(size);
    let rest: BTreeSet<NodeId> = rest.iter().cloned().collect();
    deaf.iter().map(|n| (n.clone(), rest.clone())).collect()
}
