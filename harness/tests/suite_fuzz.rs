//! Fuzzes the suite reader: whatever the bytes, `parse` followed by `plan` (against a table of
//! protocols, so no process runs) returns a plan or an error naming the file — it never panics,
//! and never accepts a number a run cannot use. Two generators: arbitrary bytes, and valid
//! suite files with up to three lines dropped or given a hostile value. Sized to take about a
//! second.

use faultline::protocols::Description;
use faultline::report::suite_file::{parse, plan, settings, Protocols, SuiteFile, MAX_RATE, MAX_SECONDS};
use proptest::prelude::*;
use std::path::{Path, PathBuf};

const FILE: &str = "fuzz.toml";

struct Table;

impl Protocols for Table {
    fn default_bin(&self) -> PathBuf {
        PathBuf::from("faultline-node")
    }
    fn locate(&self, path: &Path) -> Result<PathBuf, String> {
        if path.to_string_lossy().contains("missing") {
            Err(format!("{} does not exist or is not a file", path.display()))
        } else {
            Ok(path.to_path_buf())
        }
    }
    fn list(&self, _bin: &Path) -> Result<Vec<String>, String> {
        Ok(vec!["raft".into(), "crdt-state".into()])
    }
    fn describe(&self, _bin: &Path, p: &str) -> Result<Description, String> {
        let workloads = if p == "raft" { vec!["register".into(), "set".into()] } else { vec!["counter".into(), "register".into()] };
        Ok(Description { protocol: p.into(), claims: vec!["linearizable".into()], workloads, weak_modes: vec![], bugs: vec![], unsupported: Default::default() })
    }
    fn has_faketime(&self) -> bool {
        true
    }
}

const VALID: &str = r#"name = "quick"
protocols = ["raft", "crdt-state"]
workloads = ["register"]
nemeses = ["none", "partition,kill"]
repetitions = 2
seed = 7
time_limit = 3.0
rate = 50.0
concurrency = 4
nodes = 3
nemesis_interval = 1.0
request_timeout_ms = 500
run_timeout_s = 90
run_grace_s = 5
[protocol.crdt-state]
workloads = ["counter", "register"]
unclaimed = ["register:linearizable"]
"#;

/// Every number an accepted file holds is one a run can use.
fn usable(s: &SuiteFile) -> Result<(), TestCaseError> {
    let secs = [s.time_limit, s.nemesis_interval, s.run_timeout_s, s.run_grace_s];
    for x in secs.into_iter().flatten() {
        prop_assert!(x.is_finite() && x > 0.0 && x <= MAX_SECONDS, "accepted {x} seconds");
    }
    if let (Some(t), Some(l)) = (s.run_timeout_s, s.time_limit) {
        prop_assert!(t > l, "accepted run_timeout_s {t} <= time_limit {l}");
    }
    if let Some(r) = s.rate {
        prop_assert!(r.is_finite() && r > 0.0 && r <= MAX_RATE, "accepted rate {r}");
    }
    let maelstrom = s.node_protocol.as_deref() == Some("maelstrom");
    let ints = [(s.repetitions, 1, 1000), (s.seed, 0, i64::MAX), (s.concurrency, 1, 1000), (s.nodes, if maelstrom { 1 } else { 3 }, if maelstrom { 50 } else { 7 }), (s.request_timeout_ms, 1, 1_000_000_000)];
    for (v, lo, hi) in ints {
        prop_assert!(!matches!(v, Some(x) if !(lo..=hi).contains(&x)), "accepted {v:?} outside {lo}..={hi}");
    }
    prop_assert!(!s.protocols.is_empty() && !s.nemeses.is_empty() && !matches!(&s.workloads, Some(w) if w.is_empty()));
    Ok(())
}

/// Checks the property: Ok with usable settings, or an error that names the file.
fn check(text: &str) -> Result<(), TestCaseError> {
    let parsed = match parse(text, FILE) {
        Ok(s) => s,
        Err(e) => {
            prop_assert!(e.starts_with(FILE), "error does not name the file: {e}");
            return Ok(());
        }
    };
    usable(&parsed)?;
    match plan(&parsed, FILE, None, &Table) {
        Ok(runs) => {
            prop_assert!(!runs.is_empty());
            let s = settings(&parsed);
            prop_assert!(s.run_timeout.as_secs_f64() <= MAX_SECONDS && s.grace.as_secs_f64() <= MAX_SECONDS);
            prop_assert!(s.repetitions >= 1);
        }
        Err(e) => prop_assert!(e.message().starts_with(FILE), "error does not name the file: {}", e.message()),
    }
    Ok(())
}

/// Values that broke or could break a reader: non-finite, huge, negative, wrong types.
fn hostile_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("nan".to_string()),
        Just("inf".to_string()),
        Just("-inf".to_string()),
        Just("1e300".to_string()),
        Just("-1".to_string()),
        Just("0".to_string()),
        Just("9223372036854775807".to_string()),
        Just("-9223372036854775808".to_string()),
        Just("[]".to_string()),
        Just("[\"\"]".to_string()),
        Just("[\"kill,,pause\"]".to_string()),
        Just("\"\"".to_string()),
        Just("{}".to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
        any::<i64>().prop_map(|i| i.to_string()),
        "[a-z ,\\-]{0,12}".prop_map(|s| format!("[{s:?}]")),
    ]
}

/// The valid file with 1 to 3 lines each dropped or given a hostile value (several at once,
/// so one check cannot hide another: a negative `run_timeout_s` is also below `time_limit`).
fn mutated() -> impl Strategy<Value = String> {
    let lines: Vec<&'static str> = VALID.lines().collect();
    let n = lines.len();
    proptest::collection::vec((0..n, hostile_value(), any::<bool>()), 1..=3).prop_map(move |edits| {
        let mut out: Vec<Option<String>> = lines.iter().map(|l| Some(l.to_string())).collect();
        for (i, v, drop) in edits {
            match out[i].as_deref().and_then(|l| l.split_once(" = ")).map(|(k, _)| k.to_string()) {
                Some(k) if !drop => out[i] = Some(format!("{k} = {v}")),
                _ => out[i] = None,
            }
        }
        out.into_iter().flatten().collect::<Vec<_>>().join("\n")
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn mutated_suites_never_panic(text in mutated()) {
        check(&text)?;
    }
}

#[test]
fn the_unmutated_suite_plans() {
    let s = parse(VALID, FILE).unwrap();
    assert_eq!(plan(&s, FILE, None, &Table).unwrap().len(), 2 * 2 + 2 * 2 * 2);
}
