//! The known-bug switches at the command line: `--describe` lists every bug of every protocol
//! (name and a one-line effect), `--bug` is repeatable, and an unknown name is a usage error
//! (exit 254) that names the flag and lists the valid names.

mod common;

use common::Cluster;
use faultline_nodes::{crdt_op, crdt_state, paxos, raft, twopc};
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_faultline-node");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run faultline-node")
}

/// Each protocol, a workload it serves, and the names its core knows (at least the minimum).
fn protocols() -> Vec<(&'static str, &'static str, Vec<&'static str>, usize)> {
    vec![
        ("raft", "register", raft::Bug::ALL.iter().map(|b| b.name()).collect(), 4),
        ("paxos", "register", paxos::Bug::ALL.iter().map(|b| b.name()).collect(), 4),
        ("twopc", "bank", twopc::Bug::ALL.iter().map(|b| b.name()).collect(), 4),
        ("crdt-op", "counter", crdt_op::Bug::ALL.iter().map(|b| b.name()).collect(), 2),
        ("crdt-state", "counter", crdt_state::Bug::ALL.iter().map(|b| b.name()).collect(), 2),
    ]
}

#[test]
fn describe_lists_every_bug_with_a_one_line_effect() {
    for (protocol, _, names, minimum) in protocols() {
        let out = run(&[protocol, "--describe"]);
        assert!(out.status.success(), "{protocol} --describe failed");
        let d: Value = serde_json::from_slice(&out.stdout).expect("describe is JSON");
        let bugs = d["bugs"].as_array().unwrap_or_else(|| panic!("{protocol}: no bugs list in {d}"));
        let listed: Vec<&str> = bugs.iter().map(|b| b["name"].as_str().expect("a name")).collect();
        // The protocol's own bugs, then the runtime's (shared by every protocol).
        let expected: Vec<&str> = names.iter().copied().chain(faultline_nodes::bugs::RUNTIME.iter().map(|(n, _)| *n)).collect();
        assert_eq!(listed, expected, "{protocol}");
        assert!(listed.len() >= minimum, "{protocol}: only {} bugs", listed.len());
        for b in bugs {
            let effect = b["effect"].as_str().expect("an effect");
            assert!(!effect.is_empty() && !effect.contains('\n'), "{protocol} {b}");
            assert_eq!(b.as_object().unwrap().len(), 2, "{protocol}: exactly name and effect: {b}");
            let name = b["name"].as_str().unwrap();
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{protocol}: {name} is not kebab-case");
        }
    }
}

#[test]
fn an_unknown_bug_is_a_usage_error_naming_the_flag_and_the_valid_names() {
    for (protocol, workload, names, _) in protocols() {
        let base = ["--id", "n1", "--listen", "127.0.0.1:5", "--data-dir", "/nonexistent/faultline", "--workload", workload];
        // A valid name first: repeated flags are all checked, and the unknown one is named.
        let args: Vec<&str> = [protocol].into_iter().chain(base).chain(["--bug", names[0], "--bug", "no-such-bug"]).collect();
        let out = run(&args);
        assert_eq!(out.status.code(), Some(254), "{protocol}: {}", String::from_utf8_lossy(&out.stderr));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--bug") && stderr.contains("no-such-bug"), "{protocol}: {stderr}");
        for name in &names {
            assert!(stderr.contains(name), "{protocol}: {name} not listed in {stderr}");
        }
        let bare: Vec<&str> = [protocol].into_iter().chain(base).chain(["--bug"]).collect();
        assert_eq!(run(&bare).status.code(), Some(254), "{protocol}: --bug without a name");
    }
}

/// A node that finds a local safety invariant broken exits 255 and says why on stderr. Staged
/// with `--bug unilateral-abort`: n3 is paused, so the transfer from account 1 (on n2) to
/// account 2 (on n3) waits for its vote; n2 gives up waiting after three ticks (200-300 ms) and
/// aborts alone; n3 resumes before the coordinator's vote timeout (400-500 ms) and votes yes;
/// n1 commits, and n2, told to commit what it aborted, stops. Timing-dependent, so tried thrice.
#[test]
fn a_safety_violation_ends_the_node_with_exit_255() {
    let args = ["--workload", "bank", "--accounts", "6", "--bug", "unilateral-abort"];
    let mut last = String::new();
    for _ in 0..3 {
        let mut cluster = Cluster::start(BIN, "twopc", 3, &args);
        let n3 = cluster.node("n3").pid().expect("n3 runs") as i32;
        unsafe { libc::kill(n3, libc::SIGSTOP) };
        let mut client = std::net::TcpStream::connect(cluster.addr("n1")).expect("connect n1");
        client.write_all(b"{\"type\":\"transfer\",\"msg_id\":1,\"from\":1,\"to\":2,\"amount\":5}\n").expect("send");
        std::thread::sleep(Duration::from_millis(350));
        unsafe { libc::kill(n3, libc::SIGCONT) };
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && cluster.exit_code("n2").is_none() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let logs = cluster.logs();
        if cluster.exit_code("n2") == Some(255) {
            assert!(logs.contains("faultline-node: fatal: safety violation: transaction"), "{logs}");
            return;
        }
        last = logs;
    }
    panic!("n2 never stopped on the flipped decision\n{last}");
}
