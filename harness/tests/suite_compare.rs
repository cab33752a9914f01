//! The comparison of a small suite — two protocols × two nemeses — built from fixture run
//! directories (see `report_fixtures.rs`; the suite on real runs is `suite_real.rs`): every cell
//! of `comparison.json` and of the rendered table (read back through headless Chromium) must
//! equal what the runs' `results.json` say, and `junit.xml` must fail exactly the runs whose
//! claimed guarantee was violated.

#[path = "report_fixtures.rs"]
mod fixtures;

use faultline::report::compare::write_comparison;
use faultline_checkers::registry::CheckerSpec;
use faultline_checkers::Validity;
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
    // JUnit: one case per run; failures only for the claimed violations.
    let junit = std::fs::read_to_string(d.path().join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 4);
    assert_eq!(junit.matches("<failure ").count(), 2);
    assert!(junit.contains("tests=\"4\" failures=\"2\" errors=\"0\""));
    let kill_case = &junit[junit.find("crdt-state-set-kill").unwrap()..];
    let kill_case = &kill_case[..kill_case.find("</testcase>").unwrap()];
    assert!(kill_case.contains("name=\"unclaimed.linearizable\" value=\"false\"") && !kill_case.contains("<failure"), "{kill_case}");
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
    let junit = std::fs::read_to_string(merged.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<error ").count(), 1);
}
