//! The comparison of a small suite — two protocols × two nemeses — built from fixture run
//! directories (see `report_fixtures.rs`; the suite on real runs is `suite_real.rs`): every cell
//! of `comparison.json` and of the rendered table (read back through headless Chromium) must
//! equal what the runs' `results.json` say, and `junit.xml` must fail exactly the runs whose
//! claimed guarantee was violated. Runs that cannot vouch for the system (unhealthy,
//! interrupted, crashed) say why in the comparison and in JUnit.

#[path = "report_fixtures.rs"]
mod fixtures;

use faultline::report::compare::write_comparison;
use faultline_checkers::registry::CheckerSpec;
use faultline_checkers::Validity;
use quick_junit::{NonSuccessKind, Report, TestCaseStatus};
use serde_json::{json, Value};
use std::path::Path;

fn read(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// Four runs: raft/register under partition (stale read, invalid) and kill (valid);
/// crdt-state/set under partition (diverged, invalid) and kill (converged, valid, but not
/// linearizable: an unclaimed violation recorded in unclaimed.json as the suite would).
fn build(results: &Path) -> Vec<(String, std::path::PathBuf)> {
    let lin = || vec![CheckerSpec::named("linearizable").with_model("kv")];
    let conv = || vec![CheckerSpec::named("convergence")];
    let valid_register: String = fixtures::register_history().lines().filter(|l| !l.contains("\"k1\"")).map(|l| format!("{l}\n")).collect();
    let runs = [
        ("raft/register/partition", "raft-register-partition/20261125T201000-1", fixtures::test_json("raft", "register", &["partition"], 1, &["linearizable"]), fixtures::register_history(), lin()),
        ("raft/register/kill", "raft-register-kill/20261125T201100-2", fixtures::test_json("raft", "register", &["kill"], 2, &["linearizable"]), valid_register, lin()),
        ("crdt-state/set/partition", "crdt-state-set-partition/20261125T201200-3", fixtures::test_json("crdt-state", "set", &["partition"], 3, &["strong-eventual-consistency"]), fixtures::set_history_with(true), conv()),
        ("crdt-state/set/kill", "crdt-state-set-kill/20261125T201300-4", fixtures::test_json("crdt-state", "set", &["kill"], 4, &["strong-eventual-consistency"]), fixtures::set_history_with(false), conv()),
    ];
    let mut out = Vec::new();
    for (cell, dir, test, history, checkers) in runs {
        let d = results.join(dir);
        fixtures::write_run(&d, test, &history, &checkers);
        if cell.starts_with("crdt") {
            std::fs::write(d.join("unclaimed.json"), json!({"checks": {"linearizable": {"valid": false, "anomalies": []}}}).to_string()).unwrap();
        }
        out.push((cell.to_string(), d));
    }
    out
}

fn text_of_cell(dom: &str, table: &str, cell: &str, class: &str) -> String {
    let t = &dom[dom.find(&format!("<table id=\"{table}\">")).unwrap()..];
    let row = &t[t.find(&format!("data-cell=\"{cell}\"")).unwrap_or_else(|| panic!("no row {cell} in {table}"))..];
    let row = &row[..row.find("</tr>").unwrap()];
    let td = &row[row.find(&format!("class=\"{class}")).unwrap_or_else(|| panic!("no {class} in {row}"))..];
    let td = &td[td.find('>').unwrap() + 1..td.find("</td>").unwrap()];
    td.to_string()
}

#[test]
fn comparison_cells_match_the_runs_results() {
    let d = tempfile::tempdir().unwrap();
    let runs = build(d.path());
    let cmp = write_comparison(d.path()).unwrap();
    assert_eq!(cmp.runs.len(), 4);
    assert_eq!(cmp.cells.len(), 4);
    let json = read(&d.path().join("comparison.json"));
    let dom = fixtures::dump_dom(&format!("file://{}", d.path().join("comparison.html").display()));
    for (cell, dir) in &runs {
        let results = read(&dir.join("results.json"));
        let c = json["cells"].as_array().unwrap().iter().find(|c| format!("{}/{}/{}", c["protocol"].as_str().unwrap(), c["workload"].as_str().unwrap(), c["nemesis"].as_str().unwrap()) == *cell).unwrap_or_else(|| panic!("no cell {cell}"));
        let want = match Validity::from_json(&results["valid"]).unwrap() {
            Validity::Valid => "true",
            Validity::Invalid => "false",
            Validity::Unknown => "unknown",
        };
        assert_eq!(c["claimed"]["verdict"].as_str().unwrap(), want, "{cell}");
        assert_eq!(c["availability"], results["stats"]["availability"], "{cell}");
        assert_eq!(c["p50_ms"], results["stats"]["latency_ms"]["p50"], "{cell}");
        assert_eq!(c["p99_ms"], results["stats"]["latency_ms"]["p99"], "{cell}");
        assert_eq!(c["time_to_converge_ms"], results["stats"]["time_to_converge_ms"], "{cell}");
        // The rendered table says the same.
        let avail = results["stats"]["availability"].as_f64().unwrap();
        assert_eq!(text_of_cell(&dom, "claimed", cell, "num availability"), format!("{:.1}%", avail * 100.0), "{cell}");
        let verdict_td = text_of_cell(&dom, "claimed", cell, "verdict claimed");
        let word = if want == "true" { ">valid<" } else { ">INVALID<" };
        assert!(verdict_td.contains(word), "{cell}: {verdict_td}");
        let p99 = results["stats"]["latency_ms"]["p99"].as_f64().unwrap();
        assert_eq!(text_of_cell(&dom, "claimed", cell, "num p99"), if p99 >= 100.0 { format!("{p99:.0}") } else { format!("{p99:.1}") });
    }
    // The unclaimed table: the CRDT's linearizability violations are listed ...
    for cell in ["crdt-state/set/partition", "crdt-state/set/kill"] {
        assert!(text_of_cell(&dom, "unclaimed", cell, "verdict unclaimed-linearizable").contains(">INVALID<"), "{cell}");
    }
    // ... and availability on the minority side of the raft partition: every operation sent to
    // n1 or n2 between 1 s and 3 s failed or timed out in the fixture.
    let raft_part = json["cells"].as_array().unwrap().iter().find(|c| c["protocol"] == "raft" && c["nemesis"] == "partition").unwrap();
    assert_eq!(raft_part["minority_availability"], json!(0.0));
    assert!(text_of_cell(&dom, "unclaimed", "raft/register/partition", "num minority").starts_with("0.0%"));
    // JUnit: one case per run, named by cell and repetition; failures only for the claimed
    // violations; the unclaimed violation is a property, not a failure.
    let junit = read_junit(d.path());
    assert_eq!((junit.tests, junit.failures, junit.errors, junit.skipped), (4, 2, 0, 0));
    let names: Vec<&str> = junit.test_suites[0].test_cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["crdt-state/set/kill#0", "crdt-state/set/partition#0", "raft/register/kill#0", "raft/register/partition#0"]);
    let kill = junit.test_suites[0].test_cases.iter().find(|c| c.name.as_str() == "crdt-state/set/kill#0").unwrap();
    assert!(matches!(kill.status, TestCaseStatus::Success { .. }));
    let prop = |n: &str| kill.properties.iter().find(|p| p.name.as_str() == n).map(|p| p.value.as_str().to_string());
    assert_eq!(prop("unclaimed.linearizable").as_deref(), Some("false"));
    assert_eq!(prop("seed").as_deref(), Some("4"));
    assert_eq!(prop("run_dir").as_deref(), Some("crdt-state-set-kill/20261125T201300-4"));
}

fn read_junit(dir: &Path) -> Report {
    Report::deserialize_from_str(&std::fs::read_to_string(dir.join("junit.xml")).unwrap()).unwrap()
}

/// Patches a fixture run's results.json.
fn patch_results(dir: &Path, f: impl FnOnce(&mut Value)) {
    let mut r = read(&dir.join("results.json"));
    f(&mut r);
    std::fs::write(dir.join("results.json"), r.to_string()).unwrap();
}

/// A run whose health failed is unknown with its reasons, everywhere; an interrupted one and
/// one whose nodes never started are errors with theirs.
#[test]
fn unhealthy_interrupted_and_crashed_runs_say_why() {
    let d = tempfile::tempdir().unwrap();
    let runs = build(d.path());
    let dir_of = |cell: &str| runs.iter().find(|(c, _)| c == cell).unwrap().1.clone();
    patch_results(&dir_of("raft/register/kill"), |r| {
        r["valid"] = json!("unknown");
        r["health"] = json!({"ok": false, "reasons": ["node n3 is down at the end of the run"]});
    });
    patch_results(&dir_of("crdt-state/set/kill"), |r| {
        r["interrupted"] = json!(true);
        r["interrupted_by"] = json!("SIGTERM");
    });
    let cmp = write_comparison(d.path()).unwrap();
    assert_eq!(cmp.runs.len(), 4);
    let json = read(&d.path().join("comparison.json"));
    let cell = |p: &str, n: &str| json["cells"].as_array().unwrap().iter().find(|c| c["protocol"] == p && c["nemesis"] == n).unwrap().clone();
    let raft_kill = cell("raft", "kill");
    assert_eq!(raft_kill["claimed"]["verdict"], json!("unknown"));
    assert_eq!(raft_kill["reasons"], json!([{"reason": "unhealthy run: node n3 is down at the end of the run", "runs": 1}]));
    let crdt_kill = cell("crdt-state", "kill");
    assert_eq!(crdt_kill["claimed"]["verdict"], json!("crashed"), "an interrupted run counts as crashed");
    assert_eq!(crdt_kill["reasons"][0]["reason"], json!("interrupted by SIGTERM"));
    let html = std::fs::read_to_string(d.path().join("comparison.html")).unwrap();
    assert!(html.contains("unhealthy run: node n3 is down at the end of the run"), "the comparison page does not say why");
    let junit = read_junit(d.path());
    assert_eq!((junit.tests, junit.failures, junit.errors, junit.skipped), (4, 2, 1, 1));
    let case = |n: &str| junit.test_suites[0].test_cases.iter().find(|c| c.name.as_str() == n).unwrap().status.clone();
    match case("raft/register/kill#0") {
        TestCaseStatus::Skipped { message, .. } => assert_eq!(message.unwrap().as_str(), "unhealthy run: node n3 is down at the end of the run"),
        other => panic!("{other:?}"),
    }
    match case("crdt-state/set/kill#0") {
        TestCaseStatus::NonSuccess { kind: NonSuccessKind::Error, message, .. } => assert_eq!(message.unwrap().as_str(), "interrupted by SIGTERM"),
        other => panic!("{other:?}"),
    }
    // The exit code of `faultline report` agrees: an interrupted run is an error.
    let code = faultline::report::report_main(faultline::cli::ReportArgs { path: d.path().to_path_buf(), runs: false }).unwrap();
    assert_eq!(code, 255);
}

#[test]
fn report_merges_shards_and_exits_with_the_worst_verdict() {
    // Two shards write into their own directories; CI copies them into one, and
    // `faultline report` on it compares every run.
    let d = tempfile::tempdir().unwrap();
    let (s1, s2, merged) = (d.path().join("shard1"), d.path().join("shard2"), d.path().join("merged"));
    build(&s1);
    build(&s2);
    // Shard 1 keeps the raft runs, shard 2 the crdt runs.
    for (shard, drop) in [(&s1, "crdt"), (&s2, "raft")] {
        for e in std::fs::read_dir(shard).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with(drop) {
                std::fs::remove_dir_all(e.path()).unwrap();
            }
        }
        let code = faultline::report::report_main(faultline::cli::ReportArgs { path: shard.to_path_buf(), runs: false }).unwrap();
        assert_eq!(code, 1);
        assert_eq!(read(&shard.join("comparison.json"))["runs"], json!(2));
    }
    std::fs::create_dir_all(&merged).unwrap();
    for shard in [&s1, &s2] {
        for e in std::fs::read_dir(shard).unwrap().flatten() {
            if e.path().is_dir() {
                std::fs::rename(e.path(), merged.join(e.file_name())).unwrap();
            }
        }
    }
    let code = faultline::report::report_main(faultline::cli::ReportArgs { path: merged.clone(), runs: false }).unwrap();
    assert_eq!(code, 1, "two runs violated their claims");
    let json = read(&merged.join("comparison.json"));
    assert_eq!(json["runs"], json!(4));
    assert_eq!(json["cells"].as_array().unwrap().len(), 4);
    assert!(merged.join("index.html").is_file());
    // A run without results (a crash) makes it 255 and an <error> in junit.xml.
    let crashed = merged.join("raft-register-kill/20261125T202000-9");
    std::fs::create_dir_all(&crashed).unwrap();
    std::fs::write(crashed.join("test.json"), fixtures::test_json("raft", "register", &["kill"], 9, &["linearizable"]).to_string()).unwrap();
    let code = faultline::report::report_main(faultline::cli::ReportArgs { path: merged.clone(), runs: false }).unwrap();
    assert_eq!(code, 255);
    let junit = read_junit(&merged);
    assert_eq!((junit.tests, junit.errors), (5, 1));
    let crash = junit.test_suites[0].test_cases.iter().find(|c| matches!(c.status, TestCaseStatus::NonSuccess { kind: NonSuccessKind::Error, .. })).unwrap();
    // Its cell already has repetition 0 (the shard's run): the crash is the next one.
    assert_eq!(crash.name.as_str(), "raft/register/kill#1");
}
