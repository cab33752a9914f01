//! End to end: the CRDTs converge. Under partitions, kills and clock faults, every node must
//! end with the same state once the faults heal, and that state must hold every acknowledged
//! update (the convergence checker on the final reads). Run in release in CI:
//! `cargo test --release -p faultline --test e2e_crdt`.

mod common;
use common::*;

fn converges(protocol: &str, workload: &str, seed: &str) {
    let _g = serial();
    let run = faultline_test(&[
        "--protocol", protocol, "--workload", workload, "--nemesis", "partition,kill,clock", "--seed", seed,
        "--time-limit", "8", "--nemesis-interval", "1", "--rate", "150",
    ]);
    assert_valid_with_faults(&run, &["start-partition", "kill", "start-clock"]);
    let results = run.results.as_ref().unwrap();
    assert_eq!(results["checkers"]["convergence"]["valid"], true, "{}", run.explain());
    let ttc = &results["stats"]["time_to_converge_ms"];
    assert!(ttc.is_u64(), "the nodes agreed within the convergence budget: {ttc}\n{}", run.explain());
    let finals = results["stats"]["final_reads"].as_object().expect("final reads per node");
    assert_eq!(finals.len(), 5, "every node was read: {finals:?}");
}

#[test]
fn crdt_op_counter_converges() {
    converges("crdt-op", "counter", "21");
}

#[test]
fn crdt_op_set_converges() {
    converges("crdt-op", "set", "22");
}

#[test]
fn crdt_state_counter_converges() {
    converges("crdt-state", "counter", "23");
}

#[test]
fn crdt_state_set_converges() {
    converges("crdt-state", "set", "24");
}
