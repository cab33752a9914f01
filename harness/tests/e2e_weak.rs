//! End to end: deliberately weakened protocols are caught. Each test expects exit 1 and the
//! named checker invalid.
//!
//! A violation needs the faults to line up with the operations (a stale read needs a read on
//! the minority side of a partition after the majority wrote), which a short randomized run
//! does not guarantee. So each test tries up to [`ATTEMPTS`] seeds and passes on the first
//! violation; it fails if none of them finds one. An invalid verdict is never retried away:
//! only the absence of a violation is.

mod common;
use common::*;

const ATTEMPTS: usize = 3;

fn caught(base: &[&str], checker: &str, seeds: [&str; ATTEMPTS]) {
    let _g = serial();
    let mut tried = Vec::new();
    for seed in seeds {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(&["--seed", seed]);
        let run = faultline_test(&args);
        assert!(run.code == 0 || run.code == 1 || run.code == 2, "harness failure\n{}", run.explain());
        if run.code == 1 {
            let results = run.results.as_ref().expect("results.json");
            assert_eq!(results["valid"], false);
            assert_eq!(results["checkers"][checker]["valid"], false, "{}", run.explain());
            return;
        }
        tried.push(format!("seed {seed}: exit {}", run.code));
    }
    panic!("no violation found in {ATTEMPTS} attempts: {tried:?}");
}

#[test]
fn raft_local_reads_are_not_linearizable() {
    caught(
        &[
            "--protocol", "raft", "--workload", "register", "--node-arg=--read-mode", "--node-arg=local",
            "--nemesis", "partition-halves,partition-one", "--time-limit", "10", "--nemesis-interval", "2",
        ],
        "linearizable",
        ["31", "32", "33"],
    );
}

#[test]
fn crdt_state_register_is_not_linearizable() {
    caught(
        &[
            "--protocol", "crdt-state", "--workload", "register", "--check", "linearizable",
            "--nemesis", "partition,clock", "--time-limit", "10", "--nemesis-interval", "1.5",
        ],
        "linearizable",
        ["41", "42", "43"],
    );
}

#[test]
fn twopc_unsafe_commit_breaks_the_bank() {
    caught(
        &[
            "--protocol", "twopc", "--workload", "bank", "--node-arg=--unsafe-commit-on-timeout",
            "--nemesis", "partition", "--time-limit", "10", "--nemesis-interval", "1.5",
        ],
        "bank",
        ["51", "52", "53"],
    );
}
