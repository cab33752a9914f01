//! Renders reports and the index of fixture runs (see `report_fixtures.rs`) and reads them back
//! the way a person would see them: through headless Chromium's DOM after the page's scripts
//! ran. Checks the verdicts, tables and the anomaly timeline are there, and that markup from a
//! history shows as text and is never parsed as a tag or executed.

#[path = "report_fixtures.rs"]
mod fixtures;

use faultline::report::{write_index, write_run_report};
use faultline_checkers::Validity;
use std::path::Path;

use fixtures::dump_dom;

fn url(p: &Path) -> String {
    format!("file://{}", p.display())
}

#[test]
fn stale_read_report_in_chromium() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("raft-register/20261125T200000-42");
    assert_eq!(fixtures::stale_read_run(&run), Validity::Invalid);
    write_run_report(&run).unwrap();
    for f in ["report.html", "timeline.html", "anomaly.json", "latency.png", "rate.png", "latency.svg", "rate.svg", "linearizable-explained.html"] {
        assert!(run.join(f).is_file(), "{f} missing");
    }
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(!html.contains("<script"), "the run report must carry no script at all");
    let dom = dump_dom(&url(&run.join("report.html")));
    // The payload did not run: the title is still ours.
    assert!(dom.contains("<title>faultline: raft-register-partition-kill</title>"), "title changed: {}", &dom[..300.min(dom.len())]);
    // ... and it is text, not an element, wherever it appears (timeline, prefix table, log).
    assert!(!dom.contains("<script>document.title"), "history markup parsed as a tag");
    assert!(dom.matches("&lt;script&gt;document.title=").count() >= 2, "history markup not shown as text");
    // The verdict and the tables.
    assert!(dom.contains("<span class=\"badge bad\">INVALID</span>"));
    assert!(dom.contains("<table class=\"verdicts\">") && dom.contains("<td>linearizable</td>"));
    assert!(dom.contains("<table class=\"ops\">") && dom.contains("<table class=\"phases\">"));
    assert!(dom.contains("during partition") && dom.contains("during kill"));
    assert!(dom.contains("faultline test --protocol raft --workload register --nemesis partition,kill --seed 42"));
    // The anomaly timeline: the stale read cannot be placed, the two writes are in the prefix.
    // The same anomaly twice: zoomed on wall-clock time at the top, in event order below.
    for svg in ["<svg class=\"zoom\"", "<svg class=\"timeline\""] {
        let drawing = &dom[dom.find(svg).unwrap_or_else(|| panic!("no {svg}"))..];
        let drawing = &drawing[..drawing.find("</svg>").unwrap()];
        let failing = drawing.matches("<g class=\"op failing\"").count();
        assert_eq!(failing, 1, "{svg}: exactly one operation is the one that cannot be placed");
    }
    assert!(dom.contains("<g class=\"op prefix\""), "the longest prefix is not highlighted");
    assert!(dom.contains("class=\"explain\"") && dom.contains("cannot be placed"));
    // The plots are inline and the fault periods are labelled in them.
    assert!(dom.contains("id=\"latency\"><svg") && dom.contains("id=\"rate\"><svg"));
    assert!(dom.contains(">partition</text>") && dom.contains(">kill</text>"));
    assert!(dom.contains("href=\"nodes/n1.log\"") && dom.contains("href=\"history.jsonl\""));
}

#[test]
fn diverged_set_report_marks_the_differences() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("crdt/run");
    assert_eq!(fixtures::diverged_set_run(&run), Validity::Invalid);
    write_run_report(&run).unwrap();
    let dom = dump_dom(&url(&run.join("report.html")));
    assert!(dom.contains("id=\"final-states\""), "no final state table");
    // n3 lacks element 3 (relative to the union), n2 has 99 that the others lack: both marked.
    let table = &dom[dom.find("<table class=\"final\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert!(table.contains("<th>n1</th><th>n2</th><th>n3</th>"), "{table}");
    assert!(table.contains("− 3"), "n3's missing element not listed: {table}");
    assert!(table.matches("class=\"mono diff\"").count() >= 2, "{table}");
    // The checker's own lost/unexpected lists are shown.
    assert!(dom.contains("<h3>convergence <span class=\"badge bad\">INVALID</span></h3>"));
    assert!(dom.contains("<h4>unexpected") || dom.contains("<h4>disagreements"), "no anomaly lists");
}

#[test]
fn index_lists_runs_newest_first_and_filters_in_chromium() {
    let d = tempfile::tempdir().unwrap();
    let results = d.path();
    fixtures::stale_read_run(&results.join("raft-register-partition-kill/20261125T204200-42"));
    fixtures::diverged_set_run(&results.join("crdt-state-set-partition/20261125T200700-7"));
    let valid = results.join("raft-register-partition-kill/20261125T205900-59");
    let history: String = fixtures::register_history().lines().filter(|l| !l.contains("\"k1\"")).map(|l| format!("{l}\n")).collect();
    let v = fixtures::write_run(
        &valid,
        fixtures::test_json("raft", "register", &["partition", "kill"], 59, &["linearizable"]),
        &history,
        &[faultline_checkers::registry::CheckerSpec::named("linearizable").with_model("kv")],
    );
    assert_eq!(v, Validity::Valid);
    // A symlink like `latest` must not list a run twice.
    std::os::unix::fs::symlink(&valid, results.join("latest")).unwrap();
    write_index(results).unwrap();
    let html = std::fs::read_to_string(results.join("index.html")).unwrap();
    let rows: Vec<&str> = html.split("<tr class=\"v-").skip(1).map(|r| &r[..r.find("</tr>").unwrap()]).collect();
    assert_eq!(rows.len(), 3, "{html}");
    assert!(rows[0].contains("-59/report.html") && rows[1].contains("-42/report.html") && rows[2].contains("-7/report.html"), "not newest first");
    assert!(rows[0].contains("data-verdict=\"valid\"") && rows[1].contains("data-verdict=\"invalid\""));
    for run in ["raft-register-partition-kill/20261125T204200-42", "crdt-state-set-partition/20261125T200700-7"] {
        assert!(results.join(run).join("summary.json").is_file(), "summary not cached for {run}");
    }
    let dom = dump_dom(&format!("{}?verdict=invalid&protocol=raft", url(&results.join("index.html"))));
    assert!(dom.contains("<span id=\"shown\">1</span>"), "filter did not apply");
    assert_eq!(dom.matches("style=\"display: none;\"").count(), 2, "two rows must be hidden");
}

#[test]
fn index_reuses_and_refreshes_the_summary_cache() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("t/r1");
    fixtures::stale_read_run(&run);
    write_index(d.path()).unwrap();
    // A stale cache with a different verdict is used while it is newer than the sources ...
    let mut s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    s["valid"] = serde_json::json!("unknown");
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(run.join("summary.json"), s.to_string()).unwrap();
    write_index(d.path()).unwrap();
    assert!(std::fs::read_to_string(d.path().join("index.html")).unwrap().contains("data-verdict=\"unknown\""));
    // ... and rebuilt once results.json changes.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let r = std::fs::read_to_string(run.join("results.json")).unwrap();
    std::fs::write(run.join("results.json"), r).unwrap();
    write_index(d.path()).unwrap();
    assert!(std::fs::read_to_string(d.path().join("index.html")).unwrap().contains("data-verdict=\"invalid\""));
}

/// Writes the fixture runs, their reports and the index into `$FAULTLINE_FIXTURE_DIR` to look at
/// them by eye: `FAULTLINE_FIXTURE_DIR=/tmp/fx cargo test -p faultline --test report_render -- --ignored`.
#[test]
#[ignore = "writes example pages for a person to look at"]
fn write_example_pages() {
    let Ok(dir) = std::env::var("FAULTLINE_FIXTURE_DIR") else { return };
    let base = Path::new(&dir);
    let a = base.join("raft-register-partition-kill/20261125T200000-42");
    let b = base.join("crdt-state-set-partition/20261125T200000-7");
    fixtures::stale_read_run(&a);
    fixtures::diverged_set_run(&b);
    write_run_report(&a).unwrap();
    write_run_report(&b).unwrap();
    write_index(base).unwrap();
}
