//! Fixture run directories for the report tests, built by hand: `test.json`, `history.jsonl`
//! and `nodes/*.log` are written here as `faultline test` would write them (formats of
//! docs/design.md), and `results.json` comes from running the real checkers on the fixture
//! history, so the anomaly details are exactly what the checkers produce.
//!
//! These are fixtures, not runs: the tests on real runs are in `report_real.rs`. Included by
//! the other report and suite tests with `#[path]`; on its own it checks that the fixtures say
//! what they are meant to (so a change in a checker cannot silently make them pass).

#![allow(dead_code)]

use faultline_checkers::history::parse_jsonl;
use faultline_checkers::registry::{run_all, CheckerSpec};
use faultline_checkers::{CheckOptions, Validity};
use serde_json::{json, Value};
use std::path::Path;

/// The value a stale read returns: markup that must show as text in every page.
pub const SCRIPT_VALUE: &str = "<script>document.title='pwned'</script>";

const MS: u64 = 1_000_000;

fn ev(t_ms: u64, process: Value, typ: &str, f: &str, key: Option<&str>, value: Value, node: Option<&str>) -> String {
    let mut o = json!({"time": t_ms * MS, "process": process, "type": typ, "f": f, "value": value});
    if let Some(k) = key {
        o["key"] = json!(k);
    }
    if let Some(n) = node {
        o["node"] = json!(n);
    }
    o.to_string()
}

fn nemesis(t_ms: u64, f: &str, value: Value) -> String {
    ev(t_ms, json!("nemesis"), "info", f, None, value, None)
}

/// A call as two events; `result` is the completion value (or None for a missing completion).
struct Call<'a> {
    p: u64,
    f: &'a str,
    key: &'a str,
    arg: Value,
    typ: &'a str,
    out: Value,
    t0: u64,
    t1: u64,
    node: &'a str,
}

fn push_call(events: &mut Vec<(u64, usize, String)>, c: Call) {
    let seq = events.len();
    events.push((c.t0, seq, ev(c.t0, json!(c.p), "invoke", c.f, Some(c.key), c.arg, Some(c.node))));
    events.push((c.t1, seq + 1, ev(c.t1, json!(c.p), c.typ, c.f, Some(c.key), c.out, Some(c.node))));
}

/// A register history with a stale read of key `k1` (the read returns [`SCRIPT_VALUE`], which
/// was overwritten before the read began), a partition from 1 s to 3 s (n1, n2 cut from n3, n4,
/// n5), a kill of n3 from 3.5 s to 4.5 s, and background traffic on other keys.
pub fn register_history() -> String {
    let mut events: Vec<(u64, usize, String)> = Vec::new();
    let nodes = ["n1", "n2", "n3", "n4", "n5"];
    push_call(&mut events, Call { p: 0, f: "write", key: "k1", arg: json!(SCRIPT_VALUE), typ: "ok", out: json!(SCRIPT_VALUE), t0: 100, t1: 150, node: "n1" });
    push_call(&mut events, Call { p: 1, f: "write", key: "k1", arg: json!(2), typ: "ok", out: json!(2), t0: 200, t1: 260, node: "n2" });
    push_call(&mut events, Call { p: 2, f: "read", key: "k1", arg: Value::Null, typ: "ok", out: json!(SCRIPT_VALUE), t0: 300, t1: 340, node: "n1" });
    push_call(&mut events, Call { p: 0, f: "read", key: "k1", arg: Value::Null, typ: "ok", out: json!(2), t0: 400, t1: 420, node: "n3" });
    // Background traffic, one fresh process per operation, every 25 ms for 5 s: writes to
    // k2..k5 and reads of k9 (never written, so it reads null). During the partition, operations
    // on the minority side (n1, n2) fail or time out.
    for i in 0..200u64 {
        let t0 = 500 + i * 25;
        let node = nodes[(i % 5) as usize];
        let minority = (1000..3000).contains(&t0) && (node == "n1" || node == "n2");
        let (typ, t1) = if minority && i % 2 == 0 {
            ("info", t0 + 1000)
        } else if minority {
            ("fail", t0 + 5)
        } else {
            ("ok", t0 + 2 + (i * 7) % 40)
        };
        let (f, key, arg) = if i % 3 == 0 { ("read", "k9".to_string(), Value::Null) } else { ("write", format!("k{}", 2 + i % 4), json!(i)) };
        let key: &str = Box::leak(key.into_boxed_str());
        push_call(&mut events, Call { p: 3 + i, f, key, arg: arg.clone(), typ, out: arg, t0, t1, node });
    }
    let grudge = json!({"n1": ["n3", "n4", "n5"], "n2": ["n3", "n4", "n5"], "n3": ["n1", "n2"], "n4": ["n1", "n2"], "n5": ["n1", "n2"]});
    let seq = events.len();
    events.push((1000, seq, nemesis(1000, "start-partition", json!({"fault": "partition", "phase": "start", "grudge": grudge}))));
    events.push((3000, seq + 1, nemesis(3000, "stop-partition", json!({"fault": "partition", "phase": "stop"}))));
    events.push((3500, seq + 2, nemesis(3500, "kill", json!({"fault": "kill", "phase": "start", "nodes": ["n3"]}))));
    events.push((4500, seq + 3, nemesis(4500, "restart", json!({"fault": "kill", "phase": "stop", "nodes": ["n3"]}))));
    events.push((5600, seq + 4, nemesis(5600, "heal", json!({"fault": "all", "phase": "stop"}))));
    events.sort_by_key(|e| (e.0, e.1));
    events.into_iter().map(|e| e.2 + "\n").collect()
}

/// A set history of a CRDT whose nodes disagree at the end: n3 lost element 3 and n2 holds an
/// element 99 nobody added.
pub fn set_history() -> String {
    set_history_with(true)
}

/// A set history; when `diverged`, n3 lost element 3 and n2 holds an element 99 nobody added,
/// otherwise every node reads every element.
pub fn set_history_with(diverged: bool) -> String {
    let mut events: Vec<(u64, usize, String)> = Vec::new();
    for e in 0..6u64 {
        push_call(&mut events, Call { p: e % 3, f: "add", key: "s", arg: json!(e), typ: "ok", out: json!(e), t0: 100 + e * 100, t1: 150 + e * 100, node: "n1" });
    }
    let all = json!([0, 1, 2, 3, 4, 5]);
    let finals: [(&str, Value); 3] = if diverged {
        [("n1", all), ("n2", json!([0, 1, 2, 3, 4, 5, 99])), ("n3", json!([0, 1, 2, 4, 5]))]
    } else {
        [("n1", all.clone()), ("n2", all.clone()), ("n3", all)]
    };
    let mut lines: Vec<String> = Vec::new();
    events.sort_by_key(|e| (e.0, e.1));
    lines.extend(events.into_iter().map(|e| e.2));
    lines.push(nemesis(200, "start-partition", json!({"fault": "partition", "phase": "start", "grudge": {"n3": ["n1", "n2"]}})));
    lines.push(nemesis(700, "heal", json!({"fault": "all", "phase": "stop"})));
    for (i, (node, v)) in finals.iter().enumerate() {
        let p = 20 + i as u64;
        let mut inv = json!({"time": (900 + i as u64 * 10) * MS, "process": p, "type": "invoke", "f": "read", "key": "s", "value": null, "node": node, "final": true});
        lines.push(inv.to_string());
        inv["type"] = json!("ok");
        inv["value"] = v.clone();
        inv["time"] = json!((905 + i as u64 * 10) * MS);
        lines.push(inv.to_string());
    }
    lines.into_iter().map(|l| l + "\n").collect()
}

/// Writes a run directory: test.json, history.jsonl, results.json from the real checkers,
/// and a node log. Returns the overall verdict.
pub fn write_run(dir: &Path, test: Value, history: &str, checkers: &[CheckerSpec]) -> Validity {
    std::fs::create_dir_all(dir.join("nodes")).unwrap();
    std::fs::write(dir.join("test.json"), serde_json::to_string_pretty(&test).unwrap()).unwrap();
    std::fs::write(dir.join("history.jsonl"), history).unwrap();
    std::fs::write(dir.join("nodes/n1.log"), format!("starting n1\nclient sent {SCRIPT_VALUE}\n")).unwrap();
    let h = parse_jsonl(history, "fixture").unwrap();
    let report = run_all(checkers, &h, &CheckOptions::default());
    let calls = h.calls().unwrap();
    let done: Vec<_> = calls.iter().filter(|c| !c.final_read).collect();
    let ok = done.iter().filter(|c| c.is_ok()).count();
    let mut lat: Vec<f64> = done.iter().filter(|c| c.is_ok()).filter_map(|c| c.complete_time.map(|t| (t - c.invoke_time) as f64 / 1e6)).collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    let q = |p: f64| lat.get(((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len().max(1)) - 1).copied();
    let checkers_json: serde_json::Map<String, Value> =
        report.results.iter().map(|(n, r)| (n.clone(), serde_json::to_value(r).unwrap())).collect();
    let results = json!({
        "valid": report.valid,
        "checkers": checkers_json,
        "stats": {
            "ops": {"all": {"ok": ok, "fail": 0, "info": done.len() - ok}},
            "availability": ok as f64 / done.len().max(1) as f64,
            "latency_ms": {"p50": q(0.5), "p99": q(0.99)},
            "duration_s": 6.0,
            "time_to_converge_ms": 120.0,
        }
    });
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(&results).unwrap()).unwrap();
    report.valid
}

pub fn test_json(protocol: &str, workload: &str, nemesis: &[&str], seed: u64, claims: &[&str]) -> Value {
    json!({
        "name": format!("{protocol}-{workload}-{}", nemesis.join("-")),
        "protocol": protocol, "workload": workload, "nemesis": nemesis, "nodes": 5, "concurrency": 10,
        "rate": 200.0, "time_limit_s": 5.0, "nemesis_interval_s": 2.0, "request_timeout_ms": 1000, "seed": seed,
        "node_bin": "/fixture/faultline-node", "node_args": [], "claims": claims,
        "started_at": format!("2026-11-25T20:{:02}:00Z", seed % 60), "versions": {"faultline": "0.1.0"},
        "rerun": format!("faultline test --protocol {protocol} --workload {workload} --nemesis {} --seed {seed}", nemesis.join(",")),
    })
}

/// The stale-read register run (invalid).
pub fn stale_read_run(dir: &Path) -> Validity {
    write_run(
        dir,
        test_json("raft", "register", &["partition", "kill"], 42, &["linearizable"]),
        &register_history(),
        &[CheckerSpec::named("linearizable").with_model("kv")],
    )
}

/// The diverged set run (invalid convergence).
pub fn diverged_set_run(dir: &Path) -> Validity {
    write_run(
        dir,
        test_json("crdt-state", "set", &["partition"], 7, &["strong-eventual-consistency"]),
        &set_history(),
        &[CheckerSpec::named("convergence")],
    )
}

/// The DOM of a page after load, from headless Chromium.
pub fn dump_dom(url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("timeout")
        .args(["120", "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=2000", "--dump-dom", url])
        .output()
        .expect("chromium must be installed (scripts/test installs it)");
    assert!(out.status.success(), "chromium failed on {url}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn fixtures_have_the_verdicts_they_are_built_for() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(stale_read_run(&d.path().join("a")), Validity::Invalid);
    assert_eq!(diverged_set_run(&d.path().join("b")), Validity::Invalid);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(d.path().join("a/results.json")).unwrap()).unwrap();
    let a = &r["checkers"]["linearizable"]["anomalies"][0];
    assert_eq!(a["key"], json!("k1"), "{r}");
    assert_eq!(a["op"]["f"], json!("read"), "{a}");
}
