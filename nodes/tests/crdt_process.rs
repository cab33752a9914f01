//! Three real processes of each CRDT protocol on loopback: updates on different nodes, a SIGKILL
//! and restart of one node, more updates meanwhile; afterwards every node reads the same value
//! and it contains every acknowledged update.

mod common;

use common::{Client, Cluster};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_faultline-node");
const CALL: Duration = Duration::from_secs(2);

fn call(cluster: &Cluster, id: &str, body: Value) -> Option<Value> {
    let mut c = Client::connect(&cluster.addr(id), Duration::from_millis(300)).ok()?;
    c.call(body, CALL).ok()
}

/// Sends `body` to `id`; whether it was acknowledged.
fn update(cluster: &Cluster, id: &str, body: Value) -> bool {
    call(cluster, id, body).is_some_and(|r| r["type"] == "add_ok")
}

/// Waits until every node reads `expected`; returns the last values read otherwise.
fn converge(cluster: &Cluster, expected: &Value, deadline: Instant) -> Result<(), Vec<Value>> {
    loop {
        let values: Vec<Value> =
            cluster.ids().iter().map(|id| call(cluster, id, json!({"type": "read"})).map(|r| r["value"].clone()).unwrap_or(Value::Null)).collect();
        if values.iter().all(|v| v == expected) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(values);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn counter_survives_kill(protocol: &str) {
    let mut cluster = Cluster::start(BIN, protocol, 3, &["--workload", "counter"]);
    let mut sum = 0;
    let mut add = |cluster: &Cluster, id: &str, delta: i64| {
        if update(cluster, id, json!({"type": "add", "delta": delta})) {
            sum += delta;
        }
    };
    for i in 0..15 {
        add(&cluster, &format!("n{}", i % 3 + 1), i - 4);
    }
    cluster.kill("n3");
    for i in 0..10 {
        add(&cluster, &format!("n{}", i % 2 + 1), 3);
    }
    cluster.restart("n3");
    add(&cluster, "n3", 100);
    assert!(sum > 100, "{protocol}: updates were not acknowledged\n{}", cluster.logs());
    let deadline = Instant::now() + Duration::from_secs(10);
    if let Err(values) = converge(&cluster, &json!(sum), deadline) {
        panic!("{protocol}: expected {sum} everywhere, read {values:?}\n{}", cluster.logs());
    }
}

fn set_survives_kill(protocol: &str) {
    let mut cluster = Cluster::start(BIN, protocol, 3, &["--workload", "set"]);
    let mut acked = Vec::new();
    for e in 0..12i64 {
        if update(&cluster, &format!("n{}", e % 3 + 1), json!({"type": "add", "element": e})) {
            acked.push(e);
        }
    }
    cluster.kill("n2");
    cluster.restart("n2");
    assert_eq!(acked.len(), 12, "{protocol}\n{}", cluster.logs());
    let deadline = Instant::now() + Duration::from_secs(10);
    if let Err(values) = converge(&cluster, &json!(acked), deadline) {
        panic!("{protocol}: expected {acked:?} everywhere, read {values:?}\n{}", cluster.logs());
    }
}

#[test]
fn op_based_counter_converges_after_sigkill() {
    counter_survives_kill("crdt-op");
}

#[test]
fn state_based_counter_converges_after_sigkill() {
    counter_survives_kill("crdt-state");
}

#[test]
fn both_sets_converge_after_sigkill() {
    set_survives_kill("crdt-op");
    set_survives_kill("crdt-state");
}
