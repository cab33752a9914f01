//! Three real `faultline-node twopc` processes on loopback: transfers through every node
//! (non-coordinators forward), a SIGKILL of the coordinator and of a participant, restarts from
//! the data directories, and reads afterwards: the total is conserved and every acknowledged
//! transfer is applied (and no definitely failed one).

mod common;

use common::{Client, Cluster};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_faultline-node");
const CALL: Duration = Duration::from_secs(2);
const ACCOUNTS: i64 = 6;
const TOTAL: i64 = ACCOUNTS * 100;

/// What the client learned about one transfer.
enum Seen {
    Ok,
    Failed,
    Unknown,
}

fn transfer(cluster: &Cluster, id: &str, from: i64, to: i64, amount: i64) -> Seen {
    let Ok(mut c) = Client::connect(&cluster.addr(id), Duration::from_millis(300)) else { return Seen::Failed };
    let body = json!({"type": "transfer", "from": from, "to": to, "amount": amount});
    match c.call(body, CALL) {
        Ok(r) if r["type"] == "transfer_ok" => Seen::Ok,
        Ok(r) if r["type"] == "error" && ![0, 13].contains(&r["code"].as_i64().unwrap_or(0)) => Seen::Failed,
        _ => Seen::Unknown,
    }
}

/// Reads every balance through `id`, retrying until a read succeeds or the deadline passes.
fn read_balances(cluster: &Cluster, id: &str, deadline: Instant) -> Option<BTreeMap<String, i64>> {
    while Instant::now() < deadline {
        if let Ok(mut c) = Client::connect(&cluster.addr(id), Duration::from_millis(300)) {
            if let Ok(r) = c.call(json!({"type": "read"}), CALL) {
                if r["type"] == "read_ok" {
                    let m = r["value"].as_object()?;
                    return Some(m.iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(i64::MIN))).collect());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn transfers_survive_coordinator_and_participant_sigkill() {
    let mut cluster = Cluster::start(BIN, "twopc", 3, &["--workload", "bank", "--accounts", "6"]);
    let mut expected: BTreeMap<String, i64> = (0..ACCOUNTS).map(|a| (a.to_string(), 100)).collect();
    let mut unknown = Vec::new();
    let mut record = |seen: Seen, from: i64, to: i64, amount: i64, expected: &mut BTreeMap<String, i64>| match seen {
        Seen::Ok => {
            *expected.get_mut(&from.to_string()).unwrap() -= amount;
            *expected.get_mut(&to.to_string()).unwrap() += amount;
        }
        Seen::Failed => {}
        Seen::Unknown => unknown.push((from, to, amount)),
    };
    let mut ok = 0;
    for i in 0..18i64 {
        let (id, from, to, amount) = (format!("n{}", i % 3 + 1), i % ACCOUNTS, (i * 5 + 1) % ACCOUNTS, i % 7 + 1);
        let seen = transfer(&cluster, &id, from, to, amount);
        ok += matches!(seen, Seen::Ok) as usize;
        record(seen, from, to, amount, &mut expected);
    }
    assert!(ok >= 15, "only {ok} of 18 transfers acknowledged without faults\n{}", cluster.logs());
    let deadline = Instant::now() + Duration::from_secs(10);
    assert_eq!(read_balances(&cluster, "n2", deadline), Some(expected.clone()));

    // The coordinator dies: nothing can commit until it is back.
    cluster.kill("n1");
    let seen = transfer(&cluster, "n2", 1, 2, 3);
    assert!(!matches!(seen, Seen::Ok), "committed without the coordinator");
    record(seen, 1, 2, 3, &mut expected);
    cluster.restart("n1");
    for i in 0..6i64 {
        let seen = transfer(&cluster, "n3", i, (i + 1) % ACCOUNTS, 2);
        record(seen, i, (i + 1) % ACCOUNTS, 2, &mut expected);
    }

    // A participant dies and comes back from its data directory.
    cluster.kill("n3");
    cluster.restart("n3");
    let deadline = Instant::now() + Duration::from_secs(15);
    let got = read_balances(&cluster, "n1", deadline).unwrap_or_else(|| panic!("no read after restarts\n{}", cluster.logs()));
    assert_eq!(got.values().sum::<i64>(), TOTAL, "total not conserved: {got:?}");
    assert!(got.values().all(|&b| b >= 0), "negative balance: {got:?}");
    // The final state is the acknowledged transfers plus some subset of the unknown ones.
    let explained = (0u32..1 << unknown.len()).any(|mask| {
        let mut e = expected.clone();
        for (i, (from, to, amount)) in unknown.iter().enumerate() {
            if mask & (1 << i) != 0 {
                *e.get_mut(&from.to_string()).unwrap() -= amount;
                *e.get_mut(&to.to_string()).unwrap() += amount;
            }
        }
        e == got
    });
    assert!(explained, "balances {got:?} do not match acknowledged transfers {expected:?} (+ {unknown:?})");
    let status = cluster.status("n3").expect("status");
    assert_eq!(status["in_doubt"], json!(0), "{status}");
    assert_eq!(status["coordinator"], Value::from("n1"));
}
