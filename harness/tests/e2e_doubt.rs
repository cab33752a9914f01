//! The `kill-participant` nemesis does what it says: with every link delayed, it kills
//! participants that report a yes vote still waiting for its decision (twopc's `voted_yes`),
//! never the coordinator, restarts them, and the unmodified nodes stay valid.
//!
//! Whether `twopc --bug prepare-not-logged` is then caught depends on a kill landing on a
//! transaction that commits; docs/detection.md gives the measured rate. Release build in CI:
//! `cargo test --release -p faultline --test e2e_doubt`.

mod common;
use common::*;

use serde_json::Value;

#[test]
fn kill_participant_kills_participants_in_doubt_and_twopc_stays_valid() {
    let _g = serial();
    let run = faultline_test(&[
        "--protocol", "twopc", "--workload", "bank", "--nemesis", "kill-participant", "--nodes", "5", "--seed", "3",
        "--time-limit", "8", "--nemesis-interval", "1.5", "--rate", "150",
    ]);
    assert_valid_with_faults(&run, &["start-slow", "kill", "restart", "stop-slow"]);
    let text = std::fs::read_to_string(history(run.run_dir.as_ref().unwrap())).unwrap();
    let kills: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["process"] == "nemesis" && v["f"] == "kill" && v["value"]["fault"] == "kill-participant")
        .collect();
    assert!(!kills.is_empty(), "no kill-participant kill in the history");
    for k in &kills {
        // twopc's coordinator is n1 by default: never the victim.
        assert_eq!(k["value"]["coordinator"], "n1", "{k}");
        assert_ne!(k["value"]["nodes"][0], "n1", "the coordinator was killed: {k}");
    }
    let in_doubt = kills.iter().filter(|k| k["value"]["reported_in_doubt"] == true).count();
    assert!(in_doubt > 0, "no victim reported a yes vote waiting for its decision: {kills:?}");
}
