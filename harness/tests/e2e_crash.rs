//! End to end: the harness dying or being interrupted. SIGKILL of the harness mid-run must
//! leave no node process behind (they carry PR_SET_PDEATHSIG) and a history prefix that
//! `faultline check` accepts; SIGINT must stop the run in order (heal, final reads, check),
//! still write results.json, and mark the run interrupted (exit 2).

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Starts a long run and returns the child and its run directory (read from stdout).
fn start_long_run(results: &std::path::Path, seed: &str) -> (Child, PathBuf) {
    let mut child = Command::new(faultline())
        .args(["test", "--protocol", "raft", "--workload", "register", "--nemesis", "partition,kill"])
        .args(["--time-limit", "60", "--nemesis-interval", "1", "--rate", "150", "--seed", seed])
        .arg("--results")
        .arg(results)
        .arg("--node-bin")
        .arg(node_bin())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning faultline");
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).expect("reading stdout");
    let dir = PathBuf::from(line.trim().strip_prefix("run directory: ").unwrap_or_else(|| panic!("unexpected first line {line:?}")));
    // Keep draining stdout so the harness never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = String::new();
        while out.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    (child, dir)
}

fn history_lines(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(history(dir)).unwrap_or_default().lines().map(str::to_string).collect()
}

/// Waits until the history has some client operations and a fault in it.
fn wait_for_traffic_and_a_fault(dir: &std::path::Path) {
    let busy = wait_until(Duration::from_secs(30), || {
        let lines = history_lines(dir);
        lines.len() > 300 && lines.iter().any(|l| l.contains("\"nemesis\""))
    });
    assert!(busy, "the run never got going: {} history lines", history_lines(dir).len());
}

#[test]
fn sigkill_of_the_harness_leaves_no_node_and_a_checkable_history() {
    let _g = serial();
    let results = tempfile::tempdir().unwrap();
    let (mut child, dir) = start_long_run(results.path(), "61");
    wait_for_traffic_and_a_fault(&dir);
    let data_dir = dir.join("nodes");
    let needle = data_dir.to_string_lossy().into_owned();
    assert!(!processes_mentioning(&needle).is_empty(), "nodes should be running before the kill");
    child.kill().expect("SIGKILL the harness");
    child.wait().unwrap();
    let gone = wait_until(Duration::from_secs(5), || processes_mentioning(&needle).is_empty());
    assert!(gone, "node processes outlived the harness: {:?}", processes_mentioning(&needle));
    assert!(!dir.join("results.json").exists(), "a SIGKILLed harness cannot have written results");
    // The prefix parses and checks: raft is linearizable, so valid (0) or, if the search ran out
    // of budget, unknown (2) — never a malformed-input error (254).
    let out = run_bounded(
        {
            let mut c = Command::new(faultline());
            c.arg("check").arg(history(&dir)).args(["--model", "kv", "--budget", "30"]);
            c
        },
        Duration::from_secs(60),
    );
    let code = out.status.code().unwrap_or(-1);
    assert!(code == 0 || code == 2, "faultline check on the prefix exited {code}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let h = faultline_checkers::history::read_jsonl(&history(&dir)).expect("the prefix parses");
    assert!(h.calls().is_ok(), "the prefix pairs");
}

#[test]
fn sigint_stops_the_run_in_order_and_writes_results() {
    let _g = serial();
    let results = tempfile::tempdir().unwrap();
    let (mut child, dir) = start_long_run(results.path(), "62");
    wait_for_traffic_and_a_fault(&dir);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let done = wait_until(Duration::from_secs(40), || child.try_wait().ok().flatten().is_some());
    if !done {
        let _ = child.kill();
        panic!("the harness did not stop after SIGINT");
    }
    let code = child.wait().unwrap().code();
    // An interrupted run cannot vouch for the system (exit 2), yet its checkers still ran and
    // found raft linearizable on what was recorded.
    assert_eq!(code, Some(2), "an interrupted run never exits 0");
    let results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).expect("results.json")).unwrap();
    assert_eq!(results["valid"], "unknown");
    assert_eq!(results["interrupted"], true);
    assert_eq!(results["interrupted_by"], "SIGINT");
    assert_eq!(results["checkers"]["linearizable"]["valid"], true, "{}", results["checkers"]);
    assert!(results["stats"]["duration_s"].as_f64().unwrap() < 50.0, "stopped early: {}", results["stats"]["duration_s"]);
    let lines = history_lines(&dir);
    assert!(lines.iter().any(|l| l.contains("\"f\":\"heal\"")), "healed before the final reads");
    assert!(lines.iter().any(|l| l.contains("\"final\":true")), "final reads were made");
    let needle = dir.join("nodes").to_string_lossy().into_owned();
    assert!(processes_mentioning(&needle).is_empty(), "no node survives the run");
}
