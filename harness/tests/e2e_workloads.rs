//! End to end: the workloads that keep their evidence. Raft under the `append` workload (list
//! append, checked for linearizability and for replica agreement from every node's local read)
//! and the state-based OR-set under `set-remove` (removes and re-adds, checked for convergence
//! and observed-remove semantics) stay valid under faults on the unmodified nodes, with the
//! claimed checkers actually judging evidence. Run in release:
//! `cargo test --release -p faultline --test e2e_workloads`.

mod common;
use common::*;

use serde_json::Value;

const SHORT: &[&str] = &["--time-limit", "8", "--nemesis-interval", "1.5", "--rate", "150"];

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = extra.to_vec();
    v.extend_from_slice(SHORT);
    v
}

/// The history's events, parsed.
fn events(run: &Run) -> Vec<Value> {
    let text = std::fs::read_to_string(history(run.run_dir.as_ref().expect("a run directory"))).unwrap_or_default();
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn raft_append_is_linearizable_and_replicas_agree() {
    let _g = serial();
    let run = faultline_test(&args(&["--protocol", "raft", "--workload", "append", "--nemesis", "partition,kill", "--seed", "21"]));
    assert_valid_with_faults(&run, &["start-partition", "kill", "restart"]);
    let checkers = &run.results.as_ref().unwrap()["checkers"];
    assert_eq!(checkers["linearizable"]["valid"], true, "{}", run.explain());
    assert_eq!(checkers["linearizable"]["model"], "kv", "{}", run.explain());
    let agreement = &checkers["agreement"];
    assert_eq!(agreement["valid"], true, "{}", run.explain());
    assert!(agreement["keys_judged"].as_u64().unwrap_or(0) >= 20, "every key used is judged: {agreement}");
    assert_eq!(agreement["nodes"].as_array().map(Vec::len), Some(5), "{agreement}");
    assert_eq!(agreement["unread_nodes"], serde_json::json!([]), "{agreement}");
    // The evidence: unique appends, lists read back, local reads of every node marked as such.
    let evs = events(&run);
    let ok_appends = evs.iter().filter(|e| e["f"] == "append" && e["type"] == "ok").count();
    assert!(ok_appends > 100, "{ok_appends} acknowledged appends");
    let local_ok: Vec<&Value> = evs.iter().filter(|e| e["local"] == true && e["type"] == "ok").collect();
    assert!(local_ok.iter().all(|e| e["final"] == true && e["f"] == "read"), "local reads are final reads");
    let longest = local_ok.iter().filter_map(|e| e["value"].as_array().map(Vec::len)).max().unwrap_or(0);
    assert!(longest >= 20, "a hot key's list holds many appends (longest {longest})");
}

#[test]
fn crdt_state_or_set_with_removes_is_valid() {
    let _g = serial();
    let run = faultline_test(&args(&["--protocol", "crdt-state", "--workload", "set-remove", "--nemesis", "partition,kill", "--seed", "22"]));
    assert_valid_with_faults(&run, &["start-partition", "kill", "restart"]);
    let checkers = &run.results.as_ref().unwrap()["checkers"];
    assert_eq!(checkers["convergence"]["valid"], true, "{}", run.explain());
    let orset = &checkers["orset"];
    assert_eq!(orset["valid"], true, "{}", run.explain());
    let n = |k: &str| orset[k].as_u64().unwrap_or(0);
    assert!(n("removes") > 100, "removes were made: {orset}");
    assert!(n("must_be_present") > 100 && n("must_be_absent") > 10, "the checker had evidence both ways: {orset}");
}
