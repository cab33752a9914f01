//! End to end: the faults aimed at the weak instants do what they say, on real raft clusters,
//! and the unmodified nodes stay valid under them. Partition shapes aimed at the leader are
//! also checked as pure topology.

mod common;
use common::*;

use std::collections::BTreeSet;

use faultline::net::topology;
use rand::SeedableRng;
use serde_json::Value;

/// The nemesis events of a run whose `value.fault` is `fault`.
fn events(run: &Run, fault: &str) -> Vec<Value> {
    let dir = run.run_dir.as_ref().expect("run dir");
    std::fs::read_to_string(history(dir))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["process"] == "nemesis" && v["value"]["fault"] == fault)
        .collect()
}

fn short(nemesis: &str, seed: &str) -> Run {
    faultline_test(&["--protocol", "raft", "--workload", "register", "--nemesis", nemesis, "--seed", seed, "--time-limit", "8", "--nemesis-interval", "1.5", "--rate", "150"])
}

#[test]
fn kill_leader_kills_the_leader_right_after_an_acknowledgement() {
    let _g = serial();
    let run = short("kill-leader", "31");
    assert_valid_with_faults(&run, &["kill", "restart"]);
    let kills: Vec<Value> = events(&run, "kill-leader").into_iter().filter(|e| e["f"] == "kill").collect();
    assert!(!kills.is_empty(), "{}", run.explain());
    for k in &kills {
        let v = &k["value"];
        assert_eq!(v["nodes"][0], v["leader"], "the node killed is the one that said it leads: {v}");
        let after = v["after_ack_us"].as_u64().unwrap_or_else(|| panic!("no acknowledgement seen before the kill: {v}"));
        assert!(after < 50_000, "the kill came {after} µs after the acknowledgement: {v}");
    }
}

#[test]
fn partition_leader_cuts_the_leader_off_with_a_minority() {
    let _g = serial();
    let run = short("partition-leader", "32");
    assert_valid_with_faults(&run, &["start-partition", "stop-partition"]);
    let starts: Vec<Value> = events(&run, "partition-leader").into_iter().filter(|e| e["f"] == "start-partition").collect();
    assert!(!starts.is_empty());
    for s in &starts {
        let v = &s["value"];
        let leader = v["leader"].as_str().expect("raft names a leader");
        let cut: BTreeSet<&str> = v["grudge"][leader].as_array().expect("the leader holds a grudge").iter().filter_map(Value::as_str).collect();
        assert!(cut.len() >= 3, "the leader's side is a minority of 5: it no longer hears {cut:?}");
    }
}

#[test]
fn restart_storm_restarts_within_an_election_timeout_and_raft_survives() {
    let _g = serial();
    let run = short("restart-storm", "33");
    assert_valid_with_faults(&run, &["kill", "restart"]);
    let kills: Vec<Value> = events(&run, "restart-storm").into_iter().filter(|e| e["f"] == "kill").collect();
    assert!(kills.len() >= 3, "a storm has at least three rounds: {kills:?}");
    for k in &kills {
        let down = k["value"]["down_ms"].as_u64().unwrap();
        assert!((10..=120).contains(&down), "{down}");
    }
}

#[test]
fn partition_kill_holds_a_follower_in_doubt_while_the_leader_dies() {
    let _g = serial();
    let run = short("partition-kill", "34");
    assert_valid_with_faults(&run, &["start-partition", "kill", "restart", "stop-partition"]);
    let ev = events(&run, "partition-kill");
    let fs: Vec<&str> = ev.iter().filter_map(|e| e["f"].as_str()).collect();
    let first = fs.iter().position(|f| *f == "start-partition").unwrap();
    assert_eq!(fs[first + 1], "kill", "the kill comes while the partition holds: {fs:?}");
    let isolated: Vec<String> = ev[first]["value"]["grudge"].as_object().unwrap().iter().filter(|(_, v)| v.as_array().unwrap().len() == 4).map(|(k, _)| k.clone()).collect();
    let killed = ev[first + 1]["value"]["nodes"][0].as_str().unwrap();
    assert_eq!(isolated.len(), 1, "one follower is isolated: {isolated:?}");
    assert_ne!(isolated[0], killed, "the isolated node is not the one killed");
}

#[test]
fn leader_shapes_are_right_for_every_cluster_size() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for n in 3..=7 {
        let nodes: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
        for _ in 0..50 {
            let g = topology::leader_minority(&nodes, Some("n2"), &mut rng);
            let side = topology::visible(&nodes, &g, "n2");
            assert!(side.len() == n / 2 && side.len() * 2 < n + 1, "n={n}: the leader's side {side:?} is a minority");
            let f = topology::one_follower(&nodes, Some("n2"), &mut rng);
            let alone: Vec<&String> = nodes.iter().filter(|x| topology::visible(&nodes, &f, x).len() == 1).collect();
            assert_eq!(alone.len(), 1, "n={n}: exactly one node is isolated");
            assert_ne!(alone[0], "n2", "never the leader");
        }
    }
}

/// The fault events of a run: (f, shape or kind, seconds into the run).
fn schedule(run: &Run) -> Vec<(String, String, f64)> {
    let dir = run.run_dir.as_ref().expect("run dir");
    std::fs::read_to_string(history(dir))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["process"] == "nemesis" && !["heal", "crash", "observe"].contains(&v["f"].as_str().unwrap_or("")))
        .map(|v| {
            let detail = v["value"]["shape"].as_str().or(v["value"]["kind"].as_str()).unwrap_or("").to_string();
            (v["f"].as_str().unwrap_or("").to_string(), detail, v["time"].as_f64().unwrap_or(0.0) / 1e9)
        })
        .collect()
}

#[test]
fn two_protocols_with_one_seed_face_the_same_fault_schedule() {
    let _g = serial();
    let flags = ["--nemesis", "partition,kill,pause", "--seed", "35", "--time-limit", "7", "--nemesis-interval", "1", "--rate", "100"];
    let raft = faultline_test(&[&["--protocol", "raft", "--workload", "counter"], &flags[..]].concat());
    let crdt = faultline_test(&[&["--protocol", "crdt-state", "--workload", "counter"], &flags[..]].concat());
    let (a, b) = (schedule(&raft), schedule(&crdt));
    assert!(a.len() >= 4, "{a:?}");
    let kinds = |s: &[(String, String, f64)]| s.iter().map(|(f, d, _)| (f.clone(), d.clone())).collect::<Vec<_>>();
    let n = a.len().min(b.len());
    assert_eq!(kinds(&a)[..n], kinds(&b)[..n], "the same faults in the same order");
    for (x, y) in a.iter().zip(&b) {
        assert!((x.2 - y.2).abs() < 0.5, "{x:?} vs {y:?}: the same faults at about the same times");
    }
}
