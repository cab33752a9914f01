//! The partition shapes have the properties their names promise, for 3, 5 and 7 nodes and many
//! seeds, and a seed always gives the same shape.

use faultline::net::topology::{self, visible};
use faultline::net::{Grudge, NodeId};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;

const SIZES: &[usize] = &[3, 5, 7];
const SEEDS: u64 = 200;

fn ids(n: usize) -> Vec<NodeId> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

/// Runs `check` on the shape for every size and seed, after the checks every grudge must pass.
fn for_all(shape: fn(&[NodeId], &mut ChaCha8Rng) -> Grudge, check: impl Fn(&[NodeId], &Grudge)) {
    for &n in SIZES {
        let nodes = ids(n);
        for seed in 0..SEEDS {
            let grudge = shape(&nodes, &mut ChaCha8Rng::seed_from_u64(seed));
            for (node, froms) in &grudge {
                assert!(nodes.contains(node), "{node} is not a node");
                assert!(!froms.contains(node), "{node} holds a grudge against itself");
                assert!(froms.iter().all(|f| nodes.contains(f)));
            }
            check(&nodes, &grudge);
        }
    }
}

fn views(nodes: &[NodeId], grudge: &Grudge) -> Vec<BTreeSet<NodeId>> {
    nodes.iter().map(|n| visible(nodes, grudge, n)).collect()
}

fn majority(n: usize) -> usize {
    n / 2 + 1
}

#[test]
fn halves_split_into_two_nonempty_sides() {
    for_all(topology::halves, |nodes, grudge| {
        let sides: BTreeSet<BTreeSet<NodeId>> = views(nodes, grudge).into_iter().collect();
        assert_eq!(sides.len(), 2, "{grudge:?}");
        let sizes: Vec<usize> = sides.iter().map(|s| s.len()).collect();
        assert!(sizes.contains(&(nodes.len() / 2)) && sizes.iter().sum::<usize>() == nodes.len());
        // Each node sees exactly its own side.
        for node in nodes {
            let side = visible(nodes, grudge, node);
            assert!(side.iter().all(|m| visible(nodes, grudge, m) == side));
        }
    });
}

#[test]
fn one_isolates_exactly_one_node() {
    for_all(topology::one, |nodes, grudge| {
        let alone: Vec<&NodeId> = nodes.iter().filter(|n| visible(nodes, grudge, n).len() == 1).collect();
        assert_eq!(alone.len(), 1);
        for node in nodes.iter().filter(|n| *n != alone[0]) {
            assert_eq!(visible(nodes, grudge, node).len(), nodes.len() - 1);
        }
    });
}

#[test]
fn ring_gives_every_node_its_own_majority() {
    for_all(topology::ring, |nodes, grudge| {
        let views = views(nodes, grudge);
        for (node, view) in nodes.iter().zip(&views) {
            assert_eq!(view.len(), majority(nodes.len()), "{node} sees {view:?}");
            assert!(view.contains(node));
        }
        let distinct: BTreeSet<&BTreeSet<NodeId>> = views.iter().collect();
        assert_eq!(distinct.len(), nodes.len(), "no two nodes see the same majority");
        for a in &views {
            assert!(views.iter().all(|b| a.intersection(b).next().is_some()), "majorities overlap");
        }
    });
}

#[test]
fn bridge_node_sees_everybody_and_the_halves_do_not_meet() {
    for_all(topology::bridge, |nodes, grudge| {
        let views = views(nodes, grudge);
        let bridges: Vec<&NodeId> = nodes.iter().zip(&views).filter(|(_, v)| v.len() == nodes.len()).map(|(n, _)| n).collect();
        assert_eq!(bridges.len(), 1, "{grudge:?}");
        let bridge = bridges[0];
        for (node, view) in nodes.iter().zip(&views).filter(|(n, _)| *n != bridge) {
            assert!(view.contains(bridge), "{node} sees the bridge");
            assert_eq!(view.len(), majority(nodes.len()), "for odd n, each half plus the bridge is a majority");
        }
        let sides: BTreeSet<&BTreeSet<NodeId>> = views.iter().filter(|v| v.len() < nodes.len()).collect();
        assert_eq!(sides.len(), 2);
    });
}

#[test]
fn one_way_cuts_only_one_direction() {
    for_all(topology::one_way, |nodes, grudge| {
        assert!(!grudge.is_empty());
        let deaf: BTreeSet<&NodeId> = grudge.keys().collect();
        assert!(deaf.len() <= nodes.len() / 2);
        for d in &deaf {
            for other in nodes.iter().filter(|n| !deaf.contains(n)) {
                assert!(grudge[*d].contains(other), "{d} no longer receives from {other}");
                assert!(visible(nodes, grudge, other).contains(*d), "but {other} still receives from {d}");
            }
        }
    });
}

#[test]
fn seeds_reproduce_and_vary() {
    type Shape = fn(&[NodeId], &mut ChaCha8Rng) -> Grudge;
    let shapes: [(&str, Shape); 5] = [
        ("halves", topology::halves),
        ("one", topology::one),
        ("ring", topology::ring),
        ("bridge", topology::bridge),
        ("one-way", topology::one_way),
    ];
    let nodes = ids(5);
    for (name, shape) in shapes {
        let outcomes: BTreeSet<String> = (0..50)
            .map(|seed| {
                let a = shape(&nodes, &mut ChaCha8Rng::seed_from_u64(seed));
                let b = shape(&nodes, &mut ChaCha8Rng::seed_from_u64(seed));
                assert_eq!(a, b, "{name}: seed {seed} reproduces");
                format!("{a:?}")
            })
            .collect();
        assert!(outcomes.len() > 1, "{name}: different seeds give different shapes");
    }
    let mut names = BTreeSet::new();
    for seed in 0..100 {
        let (name, grudge) = topology::random(&nodes, &mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(topology::random(&nodes, &mut ChaCha8Rng::seed_from_u64(seed)), (name.clone(), grudge));
        names.insert(name);
    }
    assert_eq!(names.len(), topology::SHAPES.len(), "random picks every shape");
}

#[test]
fn too_few_nodes_give_harmless_grudges() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for n in 0..3 {
        let nodes = ids(n);
        assert!(topology::ring(&nodes, &mut rng).is_empty());
        assert!(topology::bridge(&nodes, &mut rng).is_empty());
        for shape in [topology::halves, topology::one, topology::one_way] {
            // Never a panic; with one or no node there is nobody to cut off.
            let g = shape(&nodes, &mut rng);
            assert!(n >= 2 || g.is_empty());
        }
    }
}
