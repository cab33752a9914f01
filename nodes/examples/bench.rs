//! Node throughput benchmark: starts 3 or 5 real `faultline-node` processes of one protocol on
//! loopback, drives concurrent clients for a few seconds, and prints acknowledged operations per
//! second and the latency of acknowledged operations.
//!
//! ```text
//! cargo build --release -p faultline-nodes
//! cargo run --release -p faultline-nodes --example bench -- raft 3 [--clients 32] [--secs 5] [--workload register]
//! ```
//!
//! The node binary is `$FAULTLINE_NODE_BIN`, else the `faultline-node` next to this example's
//! directory (`target/release/faultline-node`).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Client, Cluster};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    protocol: String,
    nodes: usize,
    clients: usize,
    secs: u64,
    workload: Option<String>,
}

fn parse() -> Result<Args, String> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let protocol = raw.first().cloned().ok_or("usage: bench <protocol> [nodes] [--clients C] [--secs S] [--workload W]")?;
    let mut args = Args { protocol, nodes: 3, clients: 32, secs: 5, workload: None };
    let mut i = 1;
    while i < raw.len() {
        let value = raw.get(i + 1).cloned();
        match raw[i].as_str() {
            "--clients" => args.clients = value.and_then(|v| v.parse().ok()).ok_or("--clients N")?,
            "--secs" => args.secs = value.and_then(|v| v.parse().ok()).ok_or("--secs N")?,
            "--workload" => args.workload = Some(value.ok_or("--workload W")?),
            n => {
                args.nodes = n.parse().map_err(|_| format!("unexpected argument {n:?}"))?;
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    Ok(args)
}

fn node_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("FAULTLINE_NODE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().and_then(|d| d.parent()).expect("target dir").join("faultline-node")
}

/// The request a client sends as its `n`th operation.
fn request(workload: &str, client: usize, n: u64) -> Value {
    match workload {
        "counter" => json!({"type": "add", "delta": 1}),
        "set" => json!({"type": "add", "element": client as u64 * 1_000_000 + n}),
        "bank" => json!({"type": "transfer", "from": n % 8, "to": (n + 1 + client as u64) % 8, "amount": 1}),
        _ => json!({"type": "write", "key": format!("k{}", (client as u64 * 7919 + n) % 64), "value": n}),
    }
}

fn is_ok(reply: &Value) -> bool {
    reply["type"].as_str().is_some_and(|t| t.ends_with("_ok"))
}

fn main() {
    let args = parse().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(254)
    });
    let bin = node_bin();
    assert!(bin.exists(), "{} not found: build it first (cargo build --release -p faultline-nodes)", bin.display());
    let workload = args.workload.clone().unwrap_or_else(|| {
        let out = std::process::Command::new(&bin).args([&args.protocol, "--describe"]).output().expect("describe");
        let d: Value = serde_json::from_slice(&out.stdout).expect("describe prints JSON");
        // Register writes where the protocol serves them (the figures in docs/nodes.md), else its
        // default workload.
        let served: Vec<&str> = d["workloads"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if served.contains(&"register") { "register" } else { served.first().copied().unwrap_or("register") }.to_string()
    });
    let cluster = Cluster::start(&bin, &args.protocol, args.nodes, &["--workload", &workload]);
    let leader = cluster.wait_leader(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for c in 0..args.clients {
        let addr = cluster.addr(&cluster.ids()[c % args.nodes]);
        let (stop, workload) = (stop.clone(), workload.clone());
        threads.push(std::thread::spawn(move || drive(&addr, c, &workload, &stop)));
    }
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(args.secs));
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us = Vec::new();
    let mut failed = 0;
    for t in threads {
        let (ok, fail) = t.join().expect("client thread");
        latencies_us.extend(ok);
        failed += fail;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    let pct = |p: f64| latencies_us.get(((latencies_us.len() as f64 * p) as usize).min(latencies_us.len().saturating_sub(1))).copied().unwrap_or(0);
    println!(
        "protocol={} workload={} nodes={} clients={} secs={:.1} leader={} ok={} failed={} ok_per_s={:.0} latency_ms_p50={:.2} latency_ms_p99={:.2}",
        args.protocol,
        workload,
        args.nodes,
        args.clients,
        elapsed,
        leader.unwrap_or_else(|| "-".into()),
        latencies_us.len(),
        failed,
        latencies_us.len() as f64 / elapsed,
        pct(0.50) as f64 / 1000.0,
        pct(0.99) as f64 / 1000.0,
    );
}

/// One client: requests back to back until `stop`; returns ok latencies (µs) and failures.
fn drive(addr: &str, client: usize, workload: &str, stop: &AtomicBool) -> (Vec<u64>, u64) {
    let mut ok = Vec::new();
    let mut failed = 0;
    let mut conn: Option<Client> = None;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Client::connect(addr, Duration::from_secs(1)) {
                Ok(c) => conn.insert(c),
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            },
        };
        n += 1;
        let t0 = Instant::now();
        match c.call(request(workload, client, n), Duration::from_secs(2)) {
            Ok(reply) if is_ok(&reply) => ok.push(t0.elapsed().as_micros() as u64),
            Ok(_) => failed += 1,
            Err(_) => {
                failed += 1;
                conn = None;
            }
        }
    }
    (ok, failed)
}
