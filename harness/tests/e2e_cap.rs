//! The CAP comparison on real runs: raft and crdt-state, one node isolated, the same seed (so
//! the same node is isolated at the same times). Side attribution must put the isolated node's
//! operations on the isolated side; raft must refuse there and serve the majority, the CRDT
//! must serve both; the comparison's figures must equal what the runs' files say; and the
//! comparison page, drawn by headless Chromium, must show one card per protocol and the plot.

mod common;
#[path = "report_fixtures.rs"]
#[allow(dead_code)]
mod fixtures;

use common::*;
use faultline::report::compare::write_comparison;
use serde_json::Value;
use std::path::Path;

fn read(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn sides_of_one_isolated_node_and_the_comparison_of_two_protocols() {
    let _g = serial();
    let flags = ["--nemesis", "partition-one", "--seed", "11", "--time-limit", "8", "--nemesis-interval", "3", "--concurrency", "20", "--request-timeout-ms", "500", "--rate", "150"];
    let raft = faultline_test(&[&["--protocol", "raft", "--workload", "register"], &flags[..]].concat());
    let crdt = faultline_test(&[&["--protocol", "crdt-state", "--workload", "register"], &flags[..]].concat());
    assert_eq!(raft.code, 0, "{}", raft.explain());
    assert_eq!(crdt.code, 0, "{}", crdt.explain());
    let (rs, cs) = (&raft.results.as_ref().unwrap()["stats"], &crdt.results.as_ref().unwrap()["stats"]);
    // The same node isolated in both runs, and only that node.
    let isolated = |s: &Value| -> Vec<String> {
        s["sides"]["periods"][0]["nodes"].as_object().unwrap().iter().filter(|(_, v)| *v == "isolated").map(|(k, _)| k.clone()).collect()
    };
    assert_eq!(isolated(rs).len(), 1, "{}", rs["sides"]);
    assert_eq!(isolated(rs), isolated(cs), "both protocols must lose the same node");
    // Every operation sent to the isolated node during the partition is counted on its side.
    let node = &isolated(rs)[0];
    let events: Vec<Value> = std::fs::read_to_string(history(raft.run_dir.as_ref().unwrap())).unwrap().lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    // The first partition's exact times, from the history itself.
    let at = |f: &str| events.iter().find(|v| v["process"] == "nemesis" && v["f"] == f).and_then(|v| v["time"].as_u64()).unwrap();
    let (start, stop) = (at("start-partition"), at("stop-partition"));
    let sent = events
        .iter()
        .filter(|v| v["type"] == "invoke" && v["node"] == node.as_str() && v.get("final").is_none())
        .filter(|v| (start..stop).contains(&v["time"].as_u64().unwrap()))
        .count() as u64;
    assert_eq!(rs["sides"]["periods"][0]["sides"]["isolated"]["sent"].as_u64().unwrap(), sent, "counted {sent} invokes on {node} in [{start}, {stop})");
    let iso = &rs["sides"]["partitioned"]["isolated"];
    // raft refuses on the isolated side once settled and serves the majority; the CRDT serves both.
    let avail = |v: &Value| v["availability"].as_f64().unwrap_or(-1.0);
    assert!(avail(&iso["settled"]) <= 0.05, "raft served its isolated node: {iso}");
    assert!(avail(&rs["sides"]["partitioned"]["majority"]["settled"]) >= 0.95, "{}", rs["sides"]);
    assert!(avail(&cs["sides"]["partitioned"]["isolated"]) >= 0.99, "{}", cs["sides"]);
    assert!(avail(&cs["sides"]["partitioned"]["majority"]) >= 0.99, "{}", cs["sides"]);
    assert_eq!(rs["staleness"]["stale_reads"], 0, "raft reads are never stale: {}", rs["staleness"]);
    assert!(rs["time_to_converge_ms"].is_u64(), "convergence is measured for raft too");

    // The comparison of both runs: its figures are the runs' figures.
    let d = tempfile::tempdir().unwrap();
    for (name, run) in [("raft", &raft), ("crdt", &crdt)] {
        copy_dir(run.run_dir.as_ref().unwrap(), &d.path().join(name).join("run"));
    }
    std::fs::write(d.path().join("suite-name.json"), r#"{"name": "cap test"}"#).unwrap();
    let cmp = write_comparison(d.path()).unwrap();
    assert_eq!(cmp.cards.len(), 2);
    let json = read(&d.path().join("comparison.json"));
    assert_eq!(json["title"], "faultline comparison: cap test");
    for (protocol, s) in [("raft", rs), ("crdt-state", cs)] {
        let p = json["protocols"].as_array().unwrap().iter().find(|p| p["protocol"] == protocol).unwrap();
        let f = &p["figures"];
        assert_eq!(f["cut_off"]["sent"], s["sides"]["cut_off"]["sent"], "{protocol}");
        assert_eq!(f["cut_off_settled"]["served"], s["sides"]["cut_off"]["settled"]["served"], "{protocol}");
        assert_eq!(f["majority_settled"]["sent"], s["sides"]["partitioned"]["majority"]["settled"]["sent"], "{protocol}");
        assert_eq!(f["quiet"]["served"], s["sides"]["quiet"]["served"], "{protocol}");
        assert_eq!(f["stale_reads"]["stale"], s["staleness"]["stale_reads"], "{protocol}");
    }
    assert!(d.path().join("comparison-cap.png").metadata().unwrap().len() > 5000);
    // What a person sees: both cards, with their figures, and the plot with both protocols.
    let page = format!("file://{}", d.path().join("comparison.html").display());
    let dom = fixtures::dump_dom(&page);
    assert!(dom.contains("<title>faultline comparison: cap test</title>"));
    for protocol in ["raft", "crdt-state"] {
        assert!(dom.contains(&format!("class=\"card\" data-protocol=\"{protocol}\"")), "no card for {protocol}");
    }
    let capplot = &dom[dom.find("class=\"capplot\"").expect("no plot")..];
    assert!(capplot.contains("raft (majority") && capplot.contains("crdt-state (majority"), "the plot must name both protocols");
    let shot = d.path().join("comparison.png");
    fixtures::screenshot(&page, &shot, 1280, 900);
    assert!(shot.metadata().unwrap().len() > 20_000, "the screenshot is nearly empty");
}
