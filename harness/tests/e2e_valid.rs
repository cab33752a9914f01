//! End to end: correct protocols stay valid under faults. Each test runs a real cluster of
//! `faultline-node` processes behind the proxy network for a few seconds, with a fault every
//! second or two, and expects exit 0, `valid: true`, a reasonable number of successful
//! operations, and the requested faults in the history. Run in release in CI:
//! `cargo test --release -p faultline --test e2e_valid`.

mod common;
use common::*;

const SHORT: &[&str] = &["--time-limit", "8", "--nemesis-interval", "1.5", "--rate", "150"];

fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = extra.to_vec();
    v.extend_from_slice(SHORT);
    v
}

#[test]
fn raft_register_survives_partitions_and_kills() {
    let _g = serial();
    let run = faultline_test(&args(&["--protocol", "raft", "--workload", "register", "--nemesis", "partition,kill", "--seed", "11"]));
    assert_valid_with_faults(&run, &["start-partition", "kill", "restart"]);
    assert!(run.results.as_ref().unwrap()["checkers"]["linearizable"]["valid"] == true, "{}", run.explain());
}

#[test]
fn paxos_register_survives_partitions_and_kills() {
    let _g = serial();
    let run = faultline_test(&args(&["--protocol", "paxos", "--workload", "register", "--nemesis", "partition,kill", "--seed", "12"]));
    assert_valid_with_faults(&run, &["start-partition", "kill", "restart"]);
}

#[test]
fn twopc_bank_survives_kills_and_partitions() {
    let _g = serial();
    let run = faultline_test(&args(&["--protocol", "twopc", "--workload", "bank", "--nemesis", "kill,partition", "--seed", "13"]));
    assert_valid_with_faults(&run, &["start-partition", "kill"]);
    assert!(run.results.as_ref().unwrap()["checkers"]["bank"]["valid"] == true, "{}", run.explain());
}

#[test]
fn raft_survives_pauses_clock_faults_and_slow_links() {
    let _g = serial();
    let run = faultline_test(&[
        "--protocol", "raft", "--workload", "register", "--nemesis", "pause,clock,slow", "--seed", "14",
        "--time-limit", "10", "--nemesis-interval", "1", "--rate", "150",
    ]);
    assert_valid_with_faults(&run, &["pause", "resume", "start-clock", "stop-clock", "start-slow", "stop-slow"]);
    // The clock nemesis ran every node under libfaketime with its own timestamp file.
    let dir = run.run_dir.as_ref().unwrap();
    for id in ["n1", "n2", "n3", "n4", "n5"] {
        let f = dir.join("nodes").join(format!("{id}.faketime"));
        assert_eq!(std::fs::read_to_string(&f).unwrap().trim(), "+0.000000", "clock of {id} reset at the end");
    }
}
