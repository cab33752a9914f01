//! Pages and shared files under hostile names and concurrent writers, on fixture runs (see
//! `report_fixtures.rs`):
//!
//! - a run named `javascript:alert(1)<!--` (the name is its directory too) gets only harmless
//!   relative links in `index.html`, `comparison.html` and its `report.html`;
//! - two writers of one `index.html` — threads in one process, or two `faultline report DIR`
//!   processes — never fail (a fixed temporary name once made 11 of 200 tries exit 255).

#[path = "report_fixtures.rs"]
mod fixtures;

use faultline::report::{compare, write_index, write_run_report};
use std::path::Path;
use std::process::Command;

const EVIL: &str = "javascript:alert(1)<!--";

/// Every `href` value of a page, with the entities a browser would decode.
fn hrefs(page: &str) -> Vec<String> {
    page.split("href=\"")
        .skip(1)
        .map(|h| h[..h.find('"').unwrap()].replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&"))
        .collect()
}

/// A link is harmless when it has no scheme, no host, does not start at the root and does not
/// climb out with `..`.
fn assert_harmless(page: &str, what: &str) {
    let links = hrefs(page);
    assert!(!links.is_empty(), "{what}: no links at all");
    for h in links {
        let first = h.split('/').next().unwrap_or("");
        assert!(!first.contains(':'), "{what}: link with a scheme: {h}");
        assert!(!h.starts_with('/') && !h.starts_with('\\'), "{what}: absolute link: {h}");
        assert!(!h.split('/').any(|s| s == ".." || s.eq_ignore_ascii_case("%2e%2e")), "{what}: link climbs out: {h}");
        assert!(!h.to_ascii_lowercase().replace(['\t', '\n', ' '], "").starts_with("javascript:"), "{what}: {h}");
    }
}

fn evil_run(results: &Path) -> std::path::PathBuf {
    let dir = results.join(EVIL).join("20261125T200000-1");
    let mut test = fixtures::test_json("raft", "register", &["partition", "kill"], 1, &["linearizable"]);
    test["name"] = serde_json::json!(EVIL);
    fixtures::write_run(&dir, test, &fixtures::register_history(), &[faultline_checkers::registry::CheckerSpec::named("linearizable").with_model("kv")]);
    dir
}

#[test]
fn a_javascript_name_gets_harmless_relative_links() {
    let d = tempfile::tempdir().unwrap();
    let run = evil_run(d.path());
    write_run_report(&run).unwrap();
    compare::write_comparison(d.path()).unwrap();
    write_index(d.path()).unwrap();
    let index = std::fs::read_to_string(d.path().join("index.html")).unwrap();
    assert_harmless(&index, "index.html");
    assert!(index.contains("javascript%3Aalert%281%29%3C%21--/20261125T200000-1/report.html"), "the run is still linked");
    assert_harmless(&std::fs::read_to_string(d.path().join("comparison.html")).unwrap(), "comparison.html");
    assert_harmless(&std::fs::read_to_string(run.join("report.html")).unwrap(), "report.html");
    // The link resolves to the run: decoding it gives the directory back.
    let link = hrefs(&index).into_iter().find(|h| h.ends_with("/report.html")).unwrap();
    let decoded = percent_decode(&link);
    assert!(d.path().join(decoded).is_file(), "{link} does not lead to the report");
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn two_runs(results: &Path) {
    fixtures::stale_read_run(&results.join("raft-register-partition-kill/20261125T204200-42"));
    fixtures::diverged_set_run(&results.join("crdt-state-set-partition/20261125T200700-7"));
}

#[test]
fn two_threads_writing_the_index_never_fail() {
    let d = tempfile::tempdir().unwrap();
    two_runs(d.path());
    let failures: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2).map(|_| s.spawn(|| (0..100).filter(|_| write_index(d.path()).is_err()).count())).collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert_eq!(failures, 0);
    let page = std::fs::read_to_string(d.path().join("index.html")).unwrap();
    assert!(page.ends_with("</body></html>\n"), "the index was left half written");
    let litter: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().map(|e| e.file_name()).filter(|n| n.to_string_lossy().contains(".tmp")).collect();
    assert!(litter.is_empty(), "temporary files left: {litter:?}");
}

#[test]
fn two_report_processes_never_fail() {
    let d = tempfile::tempdir().unwrap();
    two_runs(d.path());
    let worker = |_| {
        let mut bad = Vec::new();
        for _ in 0..100 {
            let o = Command::new(env!("CARGO_BIN_EXE_faultline")).arg("report").arg(d.path()).output().unwrap();
            // Both fixture runs are invalid: 1 is the only right answer.
            if o.status.code() != Some(1) {
                bad.push(format!("exit {:?}: {}", o.status.code(), String::from_utf8_lossy(&o.stderr)));
            }
        }
        bad
    };
    let bad: Vec<String> = std::thread::scope(|s| {
        let ws: Vec<_> = (0..2).map(|i| s.spawn(move || worker(i))).collect();
        ws.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert!(bad.is_empty(), "{} of 200 failed, first: {}", bad.len(), bad[0]);
}
