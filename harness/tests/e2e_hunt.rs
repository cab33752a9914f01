//! End to end: `faultline hunt` stops at the first violation, shrinks it, and the shrunk
//! configuration still fails when replayed; on a correct protocol it stays within its budget.

mod common;
use common::*;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

fn hunt(results: &std::path::Path, extra: &[&str]) -> (i32, Value, String) {
    let mut cmd = Command::new(faultline());
    cmd.args(["hunt", "--protocol", "raft", "--workload", "register", "--nemesis", "partition,kill", "--time-limit", "4", "--nemesis-interval", "1"])
        .args(["--rate", "150", "--seed", "100", "--replays", "1"])
        .args(extra)
        .arg("--results")
        .arg(results)
        .arg("--node-bin")
        .arg(node_bin());
    let out = run_bounded(cmd, Duration::from_secs(300));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = std::fs::read_to_string(results.join("hunt.json")).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), report, stdout)
}

#[test]
fn a_hunt_stops_at_the_first_violation_and_its_shrunk_run_still_fails() {
    let _g = serial();
    let results = tempfile::tempdir().unwrap();
    let (code, report, stdout) = hunt(results.path(), &["--budget", "150s", "--jobs", "1", "--node-arg=--read-mode", "--node-arg=local"]);
    assert_eq!(code, 1, "{stdout}");
    let tried = report["tried"].as_array().expect("tried");
    let first = tried.iter().position(|t| t["exit"] == 1).expect("an invalid seed");
    assert_eq!(first + 1, tried.len(), "the hunt stops at the first violation: {tried:?}");
    assert_eq!(report["first_violation"]["seed"], tried[first]["seed"]);
    let shrunk = &report["shrunk"]["run"];
    assert_eq!(shrunk["exit"], 1, "the shrunk configuration failed on its replay: {report}");
    assert!(!report["shrunk"]["steps"].as_array().unwrap().is_empty(), "something was shrunk: {report}");
    assert!(stdout.contains("shrunk rerun: "), "{stdout}");
}

#[test]
fn a_hunt_of_a_correct_protocol_finds_nothing_within_its_budget() {
    let _g = serial();
    let results = tempfile::tempdir().unwrap();
    node_bin(); // built before the clock starts
    let started = Instant::now();
    let (code, report, stdout) = hunt(results.path(), &["--budget", "12s", "--jobs", "2"]);
    assert_eq!(code, 0, "{stdout}");
    assert_eq!(report["jobs"], 2, "{report}");
    assert_eq!(report["seeds_tried"].as_u64().unwrap() % 2, 0, "whole waves of two: {report}");
    assert!(report["seeds_tried"].as_u64().unwrap() >= 1, "{report}");
    assert!(report.get("first_violation").is_none(), "{report}");
    // Each run may overrun its time limit by its start-up, heal and checking, never by a run more.
    assert!(started.elapsed() < Duration::from_secs(12 + 45), "took {:?}", started.elapsed());
    let seeds: Vec<u64> = report["tried"].as_array().unwrap().iter().map(|t| t["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, (100..100 + seeds.len() as u64).collect::<Vec<_>>(), "seeds back to back");
}
