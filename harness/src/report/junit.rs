//! `junit.xml` for CI, written with the `quick-junit` crate (which escapes, strips what XML
//! cannot hold, and keeps the counts of the test suite equal to its cases).
//!
//! One test case per cell and repetition, named `protocol/workload/nemeses#repetition`: no seed
//! and no time in the name, so CI tracks the same case from night to night (the seed and the
//! run directory are `<properties>`). Each case is classified by [`outcome::classify`]:
//!
//! | the run | JUnit |
//! | --- | --- |
//! | crashed (exit 255, killed, no `results.json`, an `error` in it) or interrupted | `<error>` with the reason and the stderr tail |
//! | a claimed guarantee violated | `<failure>` naming the checkers |
//! | unknown | `<skipped>` with the health reasons, or the checker's own reason |
//! | valid | passed |
//!
//! The verdicts of unclaimed guarantees and the minority availability are properties:
//! information, never failures. When a results directory holds several runs of one cell and
//! repetition (a suite run twice), the newest is the test case. Runs that no suite started
//! (plain `faultline test`) are numbered per cell in the order they started, after the
//! repetitions the suite used.

use super::compare::RunEntry;
use super::outcome::{self, Kind};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A test case's name parts: protocol, workload, nemeses, repetition.
type Key = (String, String, String, u32);

fn cell_of(r: &RunEntry) -> (String, String, String) {
    let s = &r.summary;
    match &s.suite {
        // Variants of one protocol (`twopc --tree`) are cases of their own.
        Some(rec) => (super::suite_file::label(&rec.protocol, &rec.node_args), rec.workload.clone(), rec.nemesis.clone()),
        None => (s.protocol_label(), s.workload.clone(), s.nemesis_label()),
    }
}

/// Keeps `r` under `key` unless a newer run is there already.
fn keep<'a>(by_key: &mut BTreeMap<Key, &'a RunEntry>, key: Key, r: &'a RunEntry) {
    let e = by_key.entry(key).or_insert(r);
    if r.summary.started_at > e.summary.started_at {
        *e = r;
    }
}

/// Names every run and keeps the newest run of each name, in name order.
pub fn named(runs: &[RunEntry]) -> Vec<(String, &RunEntry)> {
    let mut by_key: BTreeMap<Key, &RunEntry> = BTreeMap::new();
    let mut used: BTreeMap<(String, String, String), BTreeSet<u32>> = BTreeMap::new();
    for r in runs.iter() {
        if let Some(rec) = &r.summary.suite {
            used.entry(cell_of(r)).or_default().insert(rec.rep);
            let (p, w, n) = cell_of(r);
            keep(&mut by_key, (p, w, n, rec.rep), r);
        }
    }
    let mut plain: Vec<&RunEntry> = runs.iter().filter(|r| r.summary.suite.is_none()).collect();
    plain.sort_by(|a, b| a.summary.started_at.cmp(&b.summary.started_at).then_with(|| a.summary.path.cmp(&b.summary.path)));
    for r in plain {
        let taken = used.entry(cell_of(r)).or_default();
        let rep = (0..).find(|i| !taken.contains(i)).unwrap_or(0);
        taken.insert(rep);
        let (p, w, n) = cell_of(r);
        keep(&mut by_key, (p, w, n, rep), r);
    }
    by_key.into_iter().map(|((p, w, n, rep), r)| (format!("{p}/{w}/{n}#{rep}"), r)).collect()
}

fn properties(r: &RunEntry) -> Vec<Property> {
    let sm = &r.summary;
    let mut p = Vec::new();
    let mut add = |k: String, v: String| p.push(Property::new(k, v));
    match &sm.seed {
        Value::Null => {}
        Value::String(s) => add("seed".into(), s.clone()),
        v => add("seed".into(), v.to_string()),
    }
    if !sm.path.is_empty() {
        add("run_dir".into(), sm.path.clone());
    }
    if let Some(code) = sm.suite.as_ref().and_then(|s| s.code) {
        add("exit_code".into(), code.to_string());
    }
    add("claims".into(), sm.claims.join(","));
    if let Some(ok) = sm.health_ok {
        add("health".into(), if ok { "ok".into() } else { sm.health_reasons.join("; ") });
    }
    if let Some(by) = &sm.interrupted_by {
        add("interrupted_by".into(), by.clone());
    }
    for (k, v) in &sm.checkers {
        add(format!("claimed.{k}"), v.to_string());
    }
    for (k, v) in &r.unclaimed {
        add(format!("unclaimed.{k}"), v.get("valid").cloned().unwrap_or(Value::Null).to_string());
    }
    if let Some((ok, n)) = r.minority {
        add("minority_availability".into(), format!("{:.4}", ok as f64 / n.max(1) as f64));
    }
    if let Some(a) = sm.availability {
        add("availability".into(), format!("{a:.4}"));
    }
    p
}

fn status(o: &outcome::Outcome) -> TestCaseStatus {
    let (mut st, ty) = match o.kind {
        Kind::Pass => return TestCaseStatus::success(),
        Kind::Failure => (TestCaseStatus::non_success(NonSuccessKind::Failure), "violation"),
        Kind::Error => (TestCaseStatus::non_success(NonSuccessKind::Error), "crash"),
        Kind::Skipped => (TestCaseStatus::skipped(), "unknown"),
    };
    st.set_message(o.message.as_str()).set_type(ty);
    if !o.detail.is_empty() {
        st.set_description(o.detail.as_str());
    }
    st
}

/// A duration from seconds, or `None` when it is not a usable number.
fn seconds(s: Option<f64>) -> Option<Duration> {
    s.filter(|x| x.is_finite() && *x >= 0.0 && *x < 1e9).map(Duration::from_secs_f64)
}

fn case(name: String, r: &RunEntry) -> TestCase {
    let o = outcome::classify(&r.summary);
    let mut tc = TestCase::new(name, status(&o));
    tc.set_classname(r.summary.system());
    if let Some(t) = seconds(r.summary.duration_s) {
        tc.set_time(t);
    }
    tc.add_properties(properties(r));
    if !r.summary.path.is_empty() {
        tc.set_system_out(format!("{}/report.html", r.summary.path));
    }
    tc
}

/// The JUnit report of runs: one test suite, `faultline`.
pub fn report(runs: &[RunEntry]) -> Report {
    let cases: Vec<TestCase> = named(runs).into_iter().map(|(n, r)| case(n, r)).collect();
    let time: Duration = cases.iter().filter_map(|c| c.time).sum();
    let mut suite = TestSuite::new("faultline");
    suite.add_test_cases(cases);
    suite.set_time(time);
    let mut report = Report::new("faultline");
    report.add_test_suite(suite);
    report.set_time(time);
    report
}

/// The JUnit XML of runs.
pub fn render(runs: &[RunEntry]) -> anyhow::Result<String> {
    Ok(report(runs).to_string()?)
}

#[cfg(test)]
mod tests {
    use super::super::index::summarize;
    use super::super::outcome::CellRecord;
    use super::*;
    use serde_json::json;

    fn entry(path: &str, nemesis: &str, started: &str, results: Value, record: Option<CellRecord>) -> RunEntry {
        let test = json!({"protocol": "raft", "workload": "register", "nemesis": [nemesis], "seed": 7, "started_at": started, "claims": ["linearizable"]});
        let mut summary = summarize(&test, &results);
        summary.path = path.into();
        summary.suite = record;
        RunEntry { dir: path.into(), summary, unclaimed: BTreeMap::new(), minority: None, figures: Default::default() }
    }

    fn rec(nemesis: &str, rep: u32, code: Option<i32>) -> CellRecord {
        CellRecord { protocol: "raft".into(), workload: "register".into(), nemesis: nemesis.into(), rep, seed: 7, code, ..CellRecord::default() }
    }

    /// The classification of each case, read back through quick-junit's own parser.
    #[test]
    fn each_outcome_has_its_element_and_the_counts_add_up() {
        let runs = vec![
            entry("a/1", "none", "2026-01-01T00:00:01Z", json!({"valid": true, "checkers": {"linearizable": {"valid": true}}}), Some(rec("none", 0, Some(0)))),
            entry("a/2", "kill", "2026-01-01T00:00:02Z", json!({"valid": false, "checkers": {"linearizable": {"valid": false}}}), Some(rec("kill", 0, Some(1)))),
            entry("a/3", "pause", "2026-01-01T00:00:03Z", json!({"valid": "unknown", "checkers": {}, "health": {"ok": false, "reasons": ["node n3 is down at the end of the run"]}}), Some(rec("pause", 0, Some(2)))),
            entry("a/4", "slow", "2026-01-01T00:00:04Z", json!({"valid": "unknown", "checkers": {}, "error": "node n1 exited before it was ready"}), Some(rec("slow", 0, Some(255)))),
            entry("a/5", "clock", "2026-01-01T00:00:05Z", json!({"valid": true, "checkers": {}, "interrupted": true, "interrupted_by": "SIGTERM"}), None),
        ];
        let xml = render(&runs).unwrap();
        let back = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!((back.tests, back.failures, back.errors, back.skipped), (5, 1, 2, 1));
        let suite = &back.test_suites[0];
        assert_eq!((suite.tests, suite.failures, suite.errors, suite.skipped), (5, 1, 2, 1));
        let by_name: BTreeMap<&str, &TestCase> = suite.test_cases.iter().map(|c| (c.name.as_str(), c)).collect();
        let msg = |n: &str| match &by_name[n].status {
            TestCaseStatus::NonSuccess { kind, message, .. } => format!("{kind:?}: {}", message.as_ref().map(|m| m.as_str()).unwrap_or("")),
            TestCaseStatus::Skipped { message, .. } => format!("Skipped: {}", message.as_ref().map(|m| m.as_str()).unwrap_or("")),
            TestCaseStatus::Success { .. } => "Success".into(),
        };
        assert_eq!(msg("raft/register/none#0"), "Success");
        assert_eq!(msg("raft/register/kill#0"), "Failure: claimed guarantee violated: linearizable");
        assert_eq!(msg("raft/register/pause#0"), "Skipped: unhealthy run: node n3 is down at the end of the run");
        assert_eq!(msg("raft/register/slow#0"), "Error: node n1 exited before it was ready");
        assert_eq!(msg("raft/register/clock#0"), "Error: interrupted by SIGTERM");
        let props: Vec<(&str, &str)> = by_name["raft/register/kill#0"].properties.iter().map(|p| (p.name.as_str(), p.value.as_str())).collect();
        assert!(props.contains(&("seed", "7")) && props.contains(&("run_dir", "a/2")), "{props:?}");
    }

    #[test]
    fn names_are_stable_and_the_newest_run_of_a_name_wins() {
        let old = entry("x/old", "kill", "2026-01-01T00:00:00Z", json!({"valid": false, "checkers": {}}), Some(rec("kill", 1, Some(1))));
        let new = entry("x/new", "kill", "2026-01-02T00:00:00Z", json!({"valid": true, "checkers": {}}), Some(rec("kill", 1, Some(0))));
        let plain = entry("x/plain", "kill", "2026-01-03T00:00:00Z", json!({"valid": true, "checkers": {}}), None);
        let runs = [old, new, plain];
        let names: Vec<(String, &str)> = named(&runs).into_iter().map(|(n, r)| (n, r.summary.path.as_str())).collect();
        assert_eq!(names, vec![("raft/register/kill#0".to_string(), "x/plain"), ("raft/register/kill#1".to_string(), "x/new")]);
        let xml = render(&runs).unwrap();
        assert!(!xml.contains("seed=") && !xml.contains("2026-01"), "no seed or time in names: {xml}");
    }

    /// Variants of one protocol and systems under a label are cases of their own, whether a
    /// suite ran them or not.
    #[test]
    fn variants_and_labels_are_cases_of_their_own() {
        let mut tree = rec("kill", 0, Some(0));
        tree.node_args = vec!["--tree".into()];
        let mut with_tree = entry("v/tree", "kill", "2026-01-02T00:00:00Z", json!({"valid": true, "checkers": {}}), Some(tree));
        with_tree.summary.node_args = vec!["--tree".into()];
        let plain = entry("v/plain", "kill", "2026-01-01T00:00:00Z", json!({"valid": true, "checkers": {}}), Some(rec("kill", 0, Some(0))));
        let mut mine = entry("v/mine", "kill", "2026-01-03T00:00:00Z", json!({"valid": true, "checkers": {}}), None);
        mine.summary.label = Some("my-raft".into());
        let runs = [with_tree, plain, mine];
        let names: Vec<String> = named(&runs).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["my-raft/register/kill#0", "raft/register/kill#0", "raft --tree/register/kill#0"]);
        assert!(render(&runs).unwrap().contains("classname=\"my-raft\""));
    }

    #[test]
    fn a_run_without_directory_is_an_error_with_its_reason() {
        let mut r = rec("kill", 0, None);
        r.spawn_error = Some("cannot start /x/faultline: No such file".into());
        let s = super::super::index::orphan_summary(&r);
        let e = RunEntry { dir: "".into(), summary: s, unclaimed: BTreeMap::new(), minority: None, figures: Default::default() };
        let xml = render(&[e]).unwrap();
        assert!(xml.contains("errors=\"1\"") && xml.contains("cannot start /x/faultline"), "{xml}");
        assert!(xml.contains("name=\"raft/register/kill#0\""), "{xml}");
    }
}
