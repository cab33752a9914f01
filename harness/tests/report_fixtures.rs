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
    // An empty key is no key: bank operations carry none.
    let key = Some(c.key).filter(|k| !k.is_empty());
    events.push((c.t0, seq, ev(c.t0, json!(c.p), "invoke", c.f, key, c.arg, Some(c.node))));
    events.push((c.t1, seq + 1, ev(c.t1, json!(c.p), c.typ, c.f, key, c.out, Some(c.node))));
}

/// A register history with a stale read of key `k1` (the read returns [`SCRIPT_VALUE`], which
/// was overwritten before the read began), a partition from 1 s to 3 s (n1, n2 cut from n3, n4,
/// n5), a kill of n3 from 3.5 s to 4.5 s, and background traffic on other keys.
pub fn register_history() -> String {
    register_history_at(0)
}

/// [`register_history`] with the four operations on `k1` moved `offset_ms` later: at 1400 the
/// stale read (on n1) falls inside the partition, at 0 before any fault.
pub fn register_history_at(offset_ms: u64) -> String {
    let mut events: Vec<(u64, usize, String)> = Vec::new();
    let nodes = ["n1", "n2", "n3", "n4", "n5"];
    let o = offset_ms;
    push_call(&mut events, Call { p: 0, f: "write", key: "k1", arg: json!(SCRIPT_VALUE), typ: "ok", out: json!(SCRIPT_VALUE), t0: o + 100, t1: o + 150, node: "n1" });
    push_call(&mut events, Call { p: 1, f: "write", key: "k1", arg: json!(2), typ: "ok", out: json!(2), t0: o + 200, t1: o + 260, node: "n2" });
    push_call(&mut events, Call { p: 2, f: "read", key: "k1", arg: Value::Null, typ: "ok", out: json!(SCRIPT_VALUE), t0: o + 300, t1: o + 340, node: "n1" });
    push_call(&mut events, Call { p: 0, f: "read", key: "k1", arg: Value::Null, typ: "ok", out: json!(2), t0: o + 400, t1: o + 420, node: "n3" });
    // Background traffic, one fresh process per operation, every 25 ms for 5 s: writes to
    // k2..k5 and reads of k9 (never written, so it reads null). During the partition, operations
    // on the minority side (n1, n2) fail or time out.
    for i in 0..200u64 {
        // Background operations start after the k1 ones, whose processes (0..2) they must not reuse.
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

/// The stale-read register run with the stale read inside the partition (invalid).
pub fn partitioned_stale_read_run(dir: &Path) -> Validity {
    write_run(
        dir,
        test_json("raft", "register", &["partition", "kill"], 43, &["linearizable"]),
        &register_history_at(1400),
        &[CheckerSpec::named("linearizable").with_model("kv")],
    )
}

/// A set history checked by the set checker: element 3 lost by n3, 99 never added (invalid).
pub fn lost_element_run(dir: &Path) -> Validity {
    write_run(dir, test_json("crdt-state", "set", &["partition"], 8, &["strong-eventual-consistency"]), &set_history(), &[CheckerSpec::named("set")])
}

/// Bank accounts, initial balance and expected total of [`bank_history`].
pub const BANK_ACCOUNTS: usize = 8;
pub const BANK_TOTAL: i64 = 800;

/// A two-phase-commit bank history over five nodes (account `i` on member `i % 5`): transfers
/// every 50 ms and reads of all balances every 37 ms, one fresh process per operation. At
/// 2.30 s a transfer of 10 from account 3 to account 4 (p on n2) times out after debiting
/// account 3 and before crediting account 4: every read from then on sums to 790. A partition
/// runs from 2.0 s to 2.8 s; the final reads of every node follow the heal.
pub fn bank_history() -> String {
    let mut bal = [100i64; BANK_ACCOUNTS];
    let nodes = ["n1", "n2", "n3", "n4", "n5"];
    let mut events: Vec<(u64, usize, String)> = Vec::new();
    let mut p = 0u64;
    // Transfers, applied at their completion; the half-committed one at 2.305 s.
    let mut applied: Vec<(u64, usize, usize, i64)> = Vec::new();
    for i in 0..90u64 {
        let t0 = 100 + i * 50;
        let (from, to, amount) = ((i * 3 % 8) as usize, (i * 5 % 8 + 1) as usize % 8, 1 + (i % 7) as i64);
        let to = if to == from { (to + 1) % 8 } else { to };
        let half = t0 == 2300;
        let (from, to, amount) = if half { (3, 4, 10) } else { (from, to, amount) };
        let arg = json!({"from": from, "to": to, "amount": amount});
        let (typ, t1) = if half { ("info", t0 + 1000) } else { ("ok", t0 + 8) };
        push_call(&mut events, Call { p, f: "transfer", key: "", arg: arg.clone(), typ, out: arg, t0, t1, node: nodes[(i % 5) as usize] });
        applied.push((if half { t0 + 5 } else { t1 }, from, to, if half { -amount } else { amount }));
        p += 1;
    }
    applied.sort_by_key(|a| a.0);
    for i in 0..150u64 {
        let t0 = 120 + i * 37;
        let t1 = t0 + 6;
        let mut b = bal;
        for &(_, from, to, amount) in applied.iter().filter(|a| a.0 <= t0) {
            if amount < 0 {
                b[from] += amount; // debited, never credited
            } else {
                b[from] -= amount;
                b[to] += amount;
            }
        }
        let snapshot: serde_json::Map<String, Value> = b.iter().enumerate().map(|(k, v)| (k.to_string(), json!(v))).collect();
        push_call(&mut events, Call { p, f: "read", key: "", arg: Value::Null, typ: "ok", out: Value::Object(snapshot), t0, t1, node: nodes[(i % 5) as usize] });
        p += 1;
    }
    for &(_, from, to, amount) in &applied {
        if amount < 0 {
            bal[from] += amount;
        } else {
            bal[from] -= amount;
            bal[to] += amount;
        }
    }
    let seq = events.len();
    let grudge = json!({"n2": ["n1", "n3", "n4", "n5"], "n1": ["n2"], "n3": ["n2"], "n4": ["n2"], "n5": ["n2"]});
    events.push((2000, seq, nemesis(2000, "start-partition", json!({"fault": "partition", "phase": "start", "grudge": grudge}))));
    events.push((2800, seq + 1, nemesis(2800, "stop-partition", json!({"fault": "partition", "phase": "stop"}))));
    events.push((5800, seq + 2, nemesis(5800, "heal", json!({"fault": "all", "phase": "stop"}))));
    let finals: serde_json::Map<String, Value> = bal.iter().enumerate().map(|(k, v)| (k.to_string(), json!(v))).collect();
    for (i, node) in nodes.iter().enumerate() {
        let t0 = 6000 + i as u64 * 10;
        let mut inv = json!({"time": t0 * MS, "process": p + i as u64, "type": "invoke", "f": "read", "value": null, "node": node, "final": true});
        events.push((t0, seq + 3 + 2 * i, inv.to_string()));
        inv["type"] = json!("ok");
        inv["value"] = Value::Object(finals.clone());
        inv["time"] = json!((t0 + 4) * MS);
        events.push((t0 + 4, seq + 4 + 2 * i, inv.to_string()));
    }
    events.sort_by_key(|e| (e.0, e.1));
    events.into_iter().map(|e| e.2 + "\n").collect()
}

/// The half-committed-transfer bank run (invalid).
pub fn bank_run(dir: &Path) -> Validity {
    let mut test = test_json("twopc", "bank", &["partition"], 5, &["atomic-commitment", "bank-invariant"]);
    test["nodes"] = json!(5);
    let spec = CheckerSpec::named("bank").with_param("total", json!(BANK_TOTAL)).with_param("accounts", json!(BANK_ACCOUNTS));
    write_run(dir, test, &bank_history(), &[spec])
}

/// A linearizable register history of `n` operations over keys 0..99 (integers, so natural
/// order matters) from 10 client threads, for the timeline's speed test: reads return the value
/// at their invoke, writes take effect at their completion; every 400th operation times out
/// (1 s, info, and its process is replaced by `p + 10`), every 97th fails. A partition runs
/// from 20% to 35% of the run and a kill from 60% to 70%.
pub fn big_register_history(n: usize) -> String {
    struct Op { p: u64, f: &'static str, key: u64, val: u64, t0: u64, t1: u64, typ: &'static str }
    let mut ops: Vec<Op> = Vec::with_capacity(n);
    let mut clock = [0u64; 10];
    let mut proc_ = [0u64; 10];
    for (t, p) in proc_.iter_mut().enumerate() {
        *p = t as u64;
    }
    for i in 0..n {
        let t = i % 10;
        let start = clock[t] + 20 + (i as u64 * 7919 % 200);
        let (typ, dur) = if i % 400 == 399 { ("info", 1_000_000) } else if i % 97 == 96 { ("fail", 300) } else { ("ok", 1000 + (i as u64 * 104_729 % 3000)) };
        let f = if i % 3 == 0 { "write" } else { "read" };
        ops.push(Op { p: proc_[t], f, key: (i as u64 * 31) % 100, val: i as u64, t0: start, t1: start + dur, typ });
        clock[t] = start + dur;
        if typ == "info" {
            proc_[t] += 10;
        }
    }
    // Linearization points: writes at completion, reads at invoke; ties: writes first.
    let mut order: Vec<(u64, u8, usize)> = ops.iter().enumerate().map(|(i, o)| if o.f == "write" { (o.t1, 0, i) } else { (o.t0, 1, i) }).collect();
    order.sort_unstable();
    let mut state: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    let mut read_val: Vec<Option<u64>> = vec![None; ops.len()];
    for (_, _, i) in order {
        let o = &ops[i];
        if o.f == "write" && o.typ == "ok" {
            state.insert(o.key, o.val);
        } else if o.f == "read" {
            read_val[i] = state.get(&o.key).copied();
        }
    }
    let end = ops.iter().map(|o| o.t1).max().unwrap_or(1);
    let nodes = ["n1", "n2", "n3", "n4", "n5"];
    let mut lines: Vec<(u64, u64, String)> = Vec::with_capacity(2 * n + 4);
    for (i, o) in ops.iter().enumerate() {
        let node = nodes[(o.p % 5) as usize];
        let (arg, out) = if o.f == "write" { (json!(o.val), json!(o.val)) } else { (Value::Null, read_val[i].map_or(Value::Null, |v| json!(v))) };
        let inv = json!({"time": o.t0 * 1000, "process": o.p, "type": "invoke", "f": o.f, "key": o.key, "value": arg, "node": node});
        let done = json!({"time": o.t1 * 1000, "process": o.p, "type": o.typ, "f": o.f, "key": o.key, "value": if o.typ == "ok" { out } else { arg.clone() }, "node": node});
        lines.push((o.t0, 2 * i as u64, inv.to_string()));
        lines.push((o.t1, 2 * i as u64 + 1, done.to_string()));
    }
    let at = |share: f64| (end as f64 * share) as u64;
    let grudge = json!({"n1": ["n3", "n4", "n5"], "n2": ["n3", "n4", "n5"], "n3": ["n1", "n2"], "n4": ["n1", "n2"], "n5": ["n1", "n2"]});
    for (k, (t, f, v)) in [
        (at(0.2), "start-partition", json!({"fault": "partition", "phase": "start", "grudge": grudge})),
        (at(0.35), "stop-partition", json!({"fault": "partition", "phase": "stop"})),
        (at(0.6), "kill", json!({"fault": "kill", "phase": "start", "nodes": ["n3"]})),
        (at(0.7), "restart", json!({"fault": "kill", "phase": "stop", "nodes": ["n3"]})),
    ]
    .into_iter()
    .enumerate()
    {
        let line = json!({"time": t * 1000, "process": "nemesis", "type": "info", "f": f, "value": v}).to_string();
        lines.push((t, u64::MAX - 10 + k as u64, line));
    }
    // Time order; a completion and the next invoke of its process share no time (gap ≥ 20 µs).
    lines.sort_by_key(|l| (l.0, l.1));
    lines.into_iter().map(|l| l.2 + "\n").collect()
}

/// Headless Chromium with a fresh profile and nothing running in the background; the caller
/// adds what to do. The profile directory must outlive the command.
pub fn chromium(profile: &Path) -> std::process::Command {
    let mut c = std::process::Command::new("timeout");
    c.args(["120", "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.display()));
    c
}

fn run_chromium(args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = chromium(profile.path()).args(args).arg(url).output().expect("chromium must be installed (scripts/test installs it)");
    assert!(out.status.success(), "chromium failed on {url}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The DOM of a page after load, from headless Chromium.
pub fn dump_dom(url: &str) -> String {
    run_chromium(&["--virtual-time-budget=2000", "--dump-dom"], url)
}

/// The DOM after load in a window of the given size, on real time (no virtual time budget), so
/// that `performance.now()` in the page measures what a person would wait.
pub fn dump_dom_sized(url: &str, width: u32, height: u32) -> String {
    run_chromium(&[&format!("--window-size={width},{height}"), "--dump-dom"], url)
}

/// A screenshot of the first screen of a page, as Chromium draws it at the given size.
pub fn screenshot(url: &str, png: &Path, width: u32, height: u32) {
    run_chromium(&[&format!("--window-size={width},{height}"), &format!("--screenshot={}", png.display())], url);
    assert!(png.is_file(), "no screenshot of {url}");
}

/// The window the first-screen tests look through.
pub const SCREEN: (u32, u32) = (1280, 800);

pub fn url(p: &Path) -> String {
    format!("file://{}", p.display())
}

pub fn decode(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
}

/// Where the element matching `selector` is on the first screen: a copy of the page with a probe
/// script (the report itself carries none) writes its bounding box into the DOM.
pub fn probe(page: &Path, selector: &str) -> serde_json::Value {
    let html = std::fs::read_to_string(page).unwrap();
    let script = format!(
        "<script>(function(){{var e=document.querySelector({sel:?});var r=e?e.getBoundingClientRect():null;\
         document.body.setAttribute('data-probe',JSON.stringify(r?{{top:r.top,bottom:r.bottom,left:r.left,right:r.right,vw:innerWidth,vh:innerHeight}}:{{missing:true}}));}})();</script></body>",
        sel = selector
    );
    let copy = page.with_file_name("probe.html");
    std::fs::write(&copy, html.replace("</body>", &script)).unwrap();
    let dom = dump_dom_sized(&url(&copy), SCREEN.0, SCREEN.1);
    let at = dom.find("data-probe=\"").expect("the probe did not run");
    let raw = &dom[at + 12..];
    serde_json::from_str(&decode(&raw[..raw.find('"').unwrap()])).unwrap()
}

pub fn on_first_screen(p: &serde_json::Value) -> bool {
    let f = |k: &str| p[k].as_f64().unwrap_or(f64::NAN);
    f("top") >= 0.0 && f("bottom") <= f("vh") && f("left") >= 0.0 && f("right") <= f("vw")
}

#[test]
fn fixtures_have_the_verdicts_they_are_built_for() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(stale_read_run(&d.path().join("a")), Validity::Invalid);
    assert_eq!(diverged_set_run(&d.path().join("b")), Validity::Invalid);
    assert_eq!(partitioned_stale_read_run(&d.path().join("c")), Validity::Invalid);
    assert_eq!(lost_element_run(&d.path().join("d")), Validity::Invalid);
    assert_eq!(bank_run(&d.path().join("e")), Validity::Invalid);
    let bank: Value = serde_json::from_str(&std::fs::read_to_string(d.path().join("e/results.json")).unwrap()).unwrap();
    assert_eq!(bank["checkers"]["bank"]["total"], json!(BANK_TOTAL), "{bank}");
    assert!(bank["checkers"]["bank"]["wrong_total_count"].as_u64().unwrap() > 10, "{bank}");
    let set: Value = serde_json::from_str(&std::fs::read_to_string(d.path().join("d/results.json")).unwrap()).unwrap();
    assert_eq!(set["checkers"]["set"]["lost"][0]["element"], json!(3), "{set}");
    let big = big_register_history(20_000);
    let h = parse_jsonl(&big, "big").unwrap();
    assert_eq!(h.calls().unwrap().len(), 20_000);
    let r = run_all(&[CheckerSpec::named("linearizable").with_model("kv")], &h, &CheckOptions::default());
    assert_eq!(r.valid, Validity::Valid, "the big history must be linearizable: {:?}", r.results);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(d.path().join("a/results.json")).unwrap()).unwrap();
    let a = &r["checkers"]["linearizable"]["anomalies"][0];
    assert_eq!(a["key"], json!("k1"), "{r}");
    assert_eq!(a["op"]["f"], json!("read"), "{a}");
}
