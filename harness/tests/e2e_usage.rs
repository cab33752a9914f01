//! End to end: bad usage is refused before anything starts (exit 254, naming the flag), a node
//! that cannot start is a harness failure (exit 255, naming the node and quoting its log), and
//! `faultline protocols` describes every protocol of the node binary.

mod common;
use common::*;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

fn test_cmd(args: &[&str]) -> (i32, String) {
    let results = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(faultline());
    cmd.arg("test").args(args).arg("--results").arg(results.path());
    if !args.contains(&"--node-bin") {
        cmd.arg("--node-bin").arg(node_bin());
    }
    let out = run_bounded(cmd, Duration::from_secs(60));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn bad_flags_exit_254_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--protocol", "zab"], "--protocol"),
        (&["--protocol", "twopc", "--workload", "register"], "--workload"),
        (&["--protocol", "raft", "--workload", "queue"], "--workload"),
        (&["--nodes", "2"], "--nodes"),
        (&["--nodes", "8"], "--nodes"),
        (&["--concurrency", "0"], "--concurrency"),
        (&["--rate", "0"], "--rate"),
        (&["--rate=-5"], "--rate"),
        (&["--time-limit", "0"], "--time-limit"),
        (&["--nemesis", "partition,flood"], "--nemesis"),
        (&["--check", "serializable"], "--check"),
        (&["--node-bin", "/nonexistent/faultline-node"], "--node-bin"),
        (&["--no-such-flag"], "--no-such-flag"),
        (&["--label", "my raft"], "--label"),
        (&["--label", "latest"], "--label"),
        (&["--node-protocol", "maelstrom", "--node-bin", "/bin/cat", "--workload", "echo", "--label", "a/b"], "--label"),
    ];
    for (args, flag) in cases {
        let (code, text) = test_cmd(args);
        assert_eq!(code, 254, "{args:?} should be a usage error:\n{text}");
        assert!(text.contains(flag), "{args:?}: the message should name {flag}:\n{text}");
    }
}

#[test]
fn a_node_that_cannot_start_exits_255_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("broken-node");
    std::fs::write(
        &script,
        "#!/bin/sh\ncase \"$1\" in --list) echo raft; exit 0;; esac\n\
         case \"$2\" in --describe) echo '{\"protocol\":\"raft\",\"claims\":[\"linearizable\"],\"workloads\":[\"register\"]}'; exit 0;; esac\n\
         echo 'disk on fire' >&2; exit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, text) = test_cmd(&["--protocol", "raft", "--nemesis", "none", "--time-limit", "2", "--node-bin", script.to_str().unwrap()]);
    assert_eq!(code, 255, "{text}");
    assert!(text.contains("disk on fire") && text.contains("node n"), "the error names the node and quotes its log:\n{text}");
}

#[test]
fn protocols_lists_claims_and_workloads() {
    let mut cmd = Command::new(faultline());
    cmd.arg("protocols").arg("--node-bin").arg(node_bin());
    let out = run_bounded(cmd, Duration::from_secs(30));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for p in ["raft", "paxos", "twopc", "crdt-op", "crdt-state"] {
        assert!(text.lines().any(|l| l.starts_with(p)), "{p} missing from:\n{text}");
    }
    assert!(text.contains("linearizable") && text.contains("strong-eventual-consistency"), "{text}");
    let mut cmd = Command::new(faultline());
    cmd.args(["protocols", "--json"]).arg("--node-bin").arg(node_bin());
    let out = run_bounded(cmd, Duration::from_secs(30));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    let raft = v.as_array().unwrap().iter().find(|d| d["protocol"] == "raft").expect("raft described");
    assert!(raft["workloads"].as_array().unwrap().iter().any(|w| w == "register"));
}
