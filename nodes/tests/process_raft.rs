//! Three real `faultline-node raft` processes on loopback: acknowledged writes survive a SIGKILL
//! of the leader and its restart; malformed requests get error 12 and the node keeps serving.

mod common;

use common::{Client, Cluster};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_faultline-node");
const CALL: Duration = Duration::from_secs(2);

fn read_value(cluster: &Cluster, id: &str, key: &str, deadline: Instant) -> Option<Value> {
    while Instant::now() < deadline {
        if let Ok(mut c) = Client::connect(&cluster.addr(id), Duration::from_millis(300)) {
            if let Ok(r) = c.read(json!(key), CALL) {
                if r["type"] == "read_ok" {
                    return Some(r["value"].clone());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn acknowledged_writes_survive_leader_sigkill_and_restart() {
    let mut cluster = Cluster::start(BIN, "raft", 3, &["--election-timeout-ms", "150"]);
    let leader = cluster.wait_leader(Duration::from_secs(10)).unwrap_or_else(|| panic!("no leader\n{}", cluster.logs()));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut acked = Vec::new();
    for i in 0..20 {
        if common::write_acked(&cluster, &format!("k{i}"), i, deadline) {
            acked.push(i);
        }
    }
    assert_eq!(acked.len(), 20, "writes before the crash were not acknowledged\n{}", cluster.logs());

    cluster.kill(&leader);
    for i in 20..30 {
        if common::write_acked(&cluster, &format!("k{i}"), i, deadline) {
            acked.push(i);
        }
    }
    assert_eq!(acked.len(), 30, "the surviving majority did not take writes\n{}", cluster.logs());
    cluster.restart(&leader);

    // Every acknowledged write is readable through every node, including the restarted one.
    for id in cluster.ids() {
        for &i in &acked {
            let got = read_value(&cluster, &id, &format!("k{i}"), deadline);
            assert_eq!(got, Some(json!(i)), "k{i} via {id}\n{}", cluster.logs());
        }
    }
    let new_leader = cluster.wait_leader(Duration::from_secs(5)).expect("a leader");
    let status = cluster.status(&new_leader).unwrap();
    assert!(status["term"].as_u64().unwrap() >= 2, "{status}");
    // The durable state it reports: its term, and its vote, for itself as the leader.
    assert_eq!(status["durable"]["epoch"], status["term"], "{status}");
    assert_eq!(status["durable"]["choice"], json!(new_leader), "{status}");
}

#[test]
fn malformed_requests_get_error_12_and_the_node_keeps_serving() {
    let cluster = Cluster::start(BIN, "raft", 3, &["--election-timeout-ms", "150"]);
    let leader = cluster.wait_leader(Duration::from_secs(10)).expect("a leader");
    let mut c = cluster.client(&leader);
    for bad in ["this is not json", "[1,2]", r#"{"msg_id":7}"#, r#"{"type":"write","msg_id":8,"key":"k"}"#] {
        let r = c.call_raw(bad, CALL).unwrap();
        assert_eq!(r["type"], "error", "{bad}: {r}");
        assert_eq!(r["code"], 12, "{bad}: {r}");
    }
    let r = c.call(json!({"type": "frobnicate"}), CALL).unwrap();
    assert_eq!(r["code"], 10, "{r}");
    // The same connection still works, and so does the node.
    let r = c.write(json!("k"), json!(1), CALL).unwrap();
    assert_eq!(r["type"], "write_ok", "{r}");
    let r = c.call(json!({"type": "cas", "key": "k", "from": 5, "to": 6}), CALL).unwrap();
    assert_eq!((r["type"].clone(), r["code"].clone()), (json!("error"), json!(22)), "{r}");
    let mut other = cluster.client(&leader);
    assert_eq!(other.read(json!("k"), CALL).unwrap()["value"], 1);
}

#[test]
fn usage_errors_exit_254() {
    let run = |args: &[&str]| std::process::Command::new(BIN).args(args).output().unwrap();
    assert_eq!(run(&["nope"]).status.code(), Some(254));
    assert_eq!(run(&["raft", "--id", "n1", "--listen", "10.1.2.3:5", "--data-dir", "/tmp/x"]).status.code(), Some(254));
    assert_eq!(run(&["raft", "--id", "n1", "--listen", "127.0.0.1:5", "--data-dir", "/tmp/x", "--read-mode", "x"]).status.code(), Some(254));
    assert_eq!(run(&["raft", "--id", "n1", "--listen", "127.0.0.1:5", "--data-dir", "/tmp/x", "--workload", "bank"]).status.code(), Some(254));
    let out = run(&["raft", "--describe"]);
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["claims"], json!(["linearizable", "durable-state"]));
    let list = String::from_utf8(run(&["--list"]).stdout).unwrap();
    assert!(list.lines().any(|l| l == "raft"), "{list}");
}

#[test]
fn sigterm_exits_cleanly() {
    let mut cluster = Cluster::start(BIN, "raft", 1, &[]);
    assert_eq!(cluster.terminate("n1", Duration::from_secs(5)), Some(0));
}

/// Check-quorum: a leader whose followers were all SIGKILLed stops leading within two election
/// timeouts and refuses writes at once with error 11 naming the lost quorum; once they restart,
/// the cluster serves again.
#[test]
fn a_leader_without_its_followers_refuses_with_lost_quorum() {
    common::lost_quorum_then_recovery(BIN, "raft", &[], 300);
}
