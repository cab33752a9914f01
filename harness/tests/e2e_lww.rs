//! The `lww` checker on real crdt-state registers: under slow links the replicas still
//! converge, so convergence alone is satisfied, but with `--bug lww-by-arrival` they converge on
//! a write that an acknowledged later write should have replaced; the unmodified nodes pass.
//! The slow links (jitter reorders gossip) must cover the last writes, so the fault period runs
//! from 2.5 s to the end of a 6 s run. The bug needs that reordering to hit a key's last writes:
//! up to three seeds are tried, and an invalid verdict is never retried away.
//! Release build in CI: `cargo test --release -p faultline --test e2e_lww`.

mod common;
use common::*;

fn register_under_slow(bug: bool, seed: &str) -> Run {
    let mut args = vec![
        "--protocol", "crdt-state", "--workload", "register", "--nemesis", "slow", "--nodes", "5", "--seed", seed,
        "--time-limit", "6", "--nemesis-interval", "2.5", "--rate", "300", "--concurrency", "20",
    ];
    if bug {
        args.extend(["--node-arg=--bug", "--node-arg=lww-by-arrival"]);
    }
    faultline_test(&args)
}

#[test]
fn lww_by_arrival_is_caught_by_lww_where_convergence_is_not() {
    let _g = serial();
    let run = first_invalid("lww-by-arrival", &["1", "2", "3"], |seed| register_under_slow(true, seed));
    let checkers = &run.results.as_ref().expect("results.json")["checkers"];
    assert_eq!(checkers["lww"]["valid"], false, "{}", run.explain());
    assert!(checkers["lww"]["overwritten"].as_array().is_some_and(|a| !a.is_empty()), "{}", run.explain());
}

#[test]
fn unmodified_crdt_state_registers_pass_lww() {
    let _g = serial();
    let run = register_under_slow(false, "1");
    assert_valid_with_faults(&run, &["start-slow"]);
    let checkers = &run.results.as_ref().unwrap()["checkers"];
    assert_eq!(checkers["lww"]["valid"], true, "{}", run.explain());
    assert_eq!(checkers["convergence"]["valid"], true, "{}", run.explain());
}
