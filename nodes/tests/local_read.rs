//! The local read (`{"type":"read","key":k,"local":true}`, docs/design.md): a replica answers
//! from its own applied state, at once, without a leader. On the simulated network a follower
//! cut off from the leader keeps answering its own (stale) list while the leader's grows, and
//! catches up after the heal; as real processes, every raft replica answers the list of the
//! `append` workload locally, and a protocol without local reads answers the definite error 10.

#[path = "twopc_simnet.rs"]
mod simnet;

mod common;

use common::{Client, Cluster};
use faultline_nodes::core::{Core, Reply, Request};
use faultline_nodes::paxos::Paxos;
use faultline_nodes::raft::Raft;
use serde_json::{json, Value};
use simnet::Sim;
use std::time::{Duration, Instant};

fn append(v: i64) -> Request {
    Request::Append { key: json!("k"), value: json!(v) }
}

/// The node that believes it leads, by its `status`.
fn leader<C: Core>(sim: &Sim<C>) -> Option<String> {
    sim.ids().into_iter().find(|id| {
        let s = sim.node(id).map(|n| n.status()).unwrap_or(Value::Null);
        s["role"] == "leader" || s["role"] == json!("Leader")
    })
}

fn local<C: Core>(sim: &Sim<C>, id: &str) -> Reply {
    sim.node(id).expect("up").local_read(Some(&json!("k")))
}

fn follower_answers_its_own_state<C: Core>() {
    let mut sim: Sim<C> = Sim::new(3, "append", &[], 3);
    sim.run_for(3_000);
    let lead = leader(&sim).expect("a leader after 3 s");
    for v in [1, 2] {
        let c = sim.request(&lead, append(v));
        sim.run_for(300);
        assert_eq!(sim.replies.get(&c), Some(&Reply::AppendOk));
    }
    let follower = sim.ids().into_iter().find(|id| *id != lead).unwrap();
    let others: Vec<String> = sim.ids().into_iter().filter(|id| *id != follower).collect();
    assert_eq!(local(&sim, &follower), Reply::ReadOk(json!([1, 2])), "the follower applied what was committed");
    sim.partition(&[follower.clone()], &others);
    let c = sim.request(&lead, append(3));
    sim.run_for(500);
    assert_eq!(sim.replies.get(&c), Some(&Reply::AppendOk), "the majority side commits");
    assert_eq!(local(&sim, &lead), Reply::ReadOk(json!([1, 2, 3])));
    // Cut off, the follower answers its own applied state: a prefix of the leader's list.
    assert_eq!(local(&sim, &follower), Reply::ReadOk(json!([1, 2])));
    assert!(matches!(sim.node(&follower).unwrap().local_read(Some(&json!("missing"))), Reply::Error { code: 20, .. }));
    sim.heal();
    sim.run_for(2_000);
    for id in sim.ids() {
        assert_eq!(local(&sim, &id), Reply::ReadOk(json!([1, 2, 3])), "{id} after the heal");
    }
}

#[test]
fn raft_follower_answers_local_reads_from_its_own_state() {
    follower_answers_its_own_state::<Raft>();
}

#[test]
fn paxos_follower_answers_local_reads_from_its_own_state() {
    follower_answers_its_own_state::<Paxos>();
}

const BIN: &str = env!("CARGO_BIN_EXE_faultline-node");
const CALL: Duration = Duration::from_secs(2);

fn call(cluster: &Cluster, id: &str, body: Value) -> Option<Value> {
    let mut c = Client::connect(&cluster.addr(id), Duration::from_millis(300)).ok()?;
    c.call(body, CALL).ok()
}

#[test]
fn raft_processes_answer_local_reads_over_the_wire() {
    let cluster = Cluster::start(BIN, "raft", 3, &["--workload", "append"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut appended = Vec::new();
    for v in [10, 11, 12] {
        while Instant::now() < deadline {
            let ok = cluster.ids().iter().any(|id| {
                call(&cluster, id, json!({"type": "append", "key": 5, "value": v})).is_some_and(|r| r["type"] == "append_ok")
            });
            if ok {
                appended.push(v);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(appended, vec![10, 11, 12], "appends acknowledged");
    for id in cluster.ids() {
        let mut last = Value::Null;
        while Instant::now() < deadline {
            last = call(&cluster, &id, json!({"type": "read", "key": 5, "local": true})).unwrap_or(Value::Null);
            if last["value"] == json!([10, 11, 12]) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(last["type"], "read_ok", "{id}: {last}");
        assert_eq!(last["value"], json!([10, 11, 12]), "{id}");
        let missing = call(&cluster, &id, json!({"type": "read", "key": 6, "local": true})).unwrap();
        assert_eq!((missing["type"].clone(), missing["code"].clone()), (json!("error"), json!(20)), "{id}: a missing key");
    }
}

#[test]
fn a_protocol_without_local_reads_answers_error_10() {
    let cluster = Cluster::start(BIN, "twopc", 3, &["--workload", "bank"]);
    let reply = call(&cluster, "n1", json!({"type": "read", "local": true})).expect("an answer");
    assert_eq!((reply["type"].clone(), reply["code"].clone()), (json!("error"), json!(10)), "{reply}");
}
