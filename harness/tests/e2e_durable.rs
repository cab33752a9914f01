//! The durable-state check on real runs. Raft with `--bug vote-not-persisted` forgets its vote
//! when a follower is killed and restarted within the term it voted in: no client need see it,
//! but the node's own `status` goes from "term T, voted for X" to "term T, no vote", and the
//! check names the node and the kill. The unmodified raft and paxos nodes, polled the same way
//! under the same faults, never go back. Kills are random, so the buggy run tries up to three
//! seeds and never retries an invalid verdict away.
//! Release build in CI: `cargo test --release -p faultline --test e2e_durable`.

mod common;
use common::*;
use serde_json::Value;

fn under_kills(protocol: &str, bug: Option<&str>, seed: &str) -> Run {
    let mut args = vec![
        "--protocol", protocol, "--workload", "register", "--nemesis", "kill", "--nodes", "3", "--seed", seed,
        "--time-limit", "6", "--nemesis-interval", "1.5", "--rate", "150", "--concurrency", "6",
    ];
    let flag;
    if let Some(b) = bug {
        flag = format!("--node-arg={b}");
        args.extend(["--node-arg=--bug", &flag]);
    }
    faultline_test(&args)
}

fn observations(run: &Run) -> Vec<Value> {
    let text = std::fs::read_to_string(history(run.run_dir.as_ref().expect("run dir"))).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|v| v["process"] == "nemesis" && v["f"] == "observe").collect()
}

#[test]
fn a_vote_not_persisted_is_caught_with_the_kill_that_lost_it() {
    let _g = serial();
    let run = first_invalid("vote-not-persisted", &["1", "2", "3"], |seed| under_kills("raft", Some("vote-not-persisted"), seed));
    let check = &run.results.as_ref().expect("results.json")["checkers"]["durable-state"];
    assert_eq!(check["valid"], false, "{}", run.explain());
    let first = &check["regressions"][0];
    assert_eq!(first["why"], "choice forgotten within its epoch", "{first}");
    assert_eq!(first["before"]["durable"]["epoch"], first["after"]["durable"]["epoch"], "{first}");
    assert!(first["before"]["durable"]["choice"].is_string() && first["after"]["durable"]["choice"].is_null(), "{first}");
    let between: Vec<&str> = first["between"].as_array().unwrap().iter().filter_map(|e| e["f"].as_str()).collect();
    assert!(between.contains(&"kill"), "the kill that lost the vote is named: {first}");
    // The report opens on it.
    let report = std::fs::read_to_string(run.run_dir.as_ref().unwrap().join("report.html")).unwrap();
    let node = first["node"].as_str().unwrap();
    assert!(report.contains("id=\"durable-sentence\""), "no durable-state sentence in the report");
    assert!(report.contains(&format!("Node {node} reported epoch")), "the sentence names {node}");
}

#[test]
fn unmodified_raft_and_paxos_never_go_back() {
    let _g = serial();
    for protocol in ["raft", "paxos"] {
        let run = under_kills(protocol, None, "1");
        assert_valid_with_faults(&run, &["kill", "restart"]);
        let results = run.results.as_ref().unwrap();
        assert_eq!(results["checkers"]["durable-state"]["valid"], true, "{}", run.explain());
        let obs = observations(&run);
        let nodes: std::collections::BTreeSet<&str> = obs.iter().filter_map(|o| o["value"]["node"].as_str()).collect();
        assert_eq!(nodes.len(), 3, "{protocol}: every node observed: {obs:?}");
        // Observations are not faults: results.json's fault list leaves them out.
        let faults = results["stats"]["faults"].as_array().expect("stats.faults");
        assert!(faults.iter().all(|f| f["f"] != "observe"), "{protocol}: {faults:?}");
    }
}
