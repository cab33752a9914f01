//! Runs every history of `testdata/other/` through its checker and compares the verdict (from
//! the file name) and the expected details (from the `.expect.json` sidecar); see the README
//! there for the naming scheme.

use faultline_checkers::edn::{read_edn_with, Tuples};
use faultline_checkers::history::read_jsonl;
use faultline_checkers::registry::{run_one, CheckerSpec};
use faultline_checkers::{CheckOptions, Validity};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/other");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("jsonl" | "edn")))
        .collect();
    files.sort();
    files
}

fn sidecar(path: &Path, what: &str) -> Option<Map<String, Value>> {
    let stem = path.file_stem().unwrap().to_str().unwrap();
    let side = path.with_file_name(format!("{stem}.{what}.json"));
    let text = std::fs::read_to_string(side).ok()?;
    Some(serde_json::from_str::<Value>(&text).unwrap().as_object().unwrap().clone())
}

#[test]
fn every_testdata_history_gets_its_verdict() {
    let files = cases();
    assert!(files.len() >= 20, "expected the test histories, found {}", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let parts: Vec<&str> = name.split('.').collect();
        let expected = match parts[parts.len() - 2] {
            "valid" => Validity::Valid,
            "invalid" => Validity::Invalid,
            "unknown" => Validity::Unknown,
            other => panic!("{name}: bad verdict `{other}` in the name"),
        };
        let checker = name.split('-').next().unwrap();
        let history = if name.ends_with(".edn") { read_edn_with(path, Tuples::Auto) } else { read_jsonl(path) }
            .unwrap_or_else(|e| panic!("{e}"));
        let spec = CheckerSpec { name: checker.to_string(), model: None, params: sidecar(path, "params").unwrap_or_default() };
        let result = run_one(&spec, &history, &CheckOptions::default());
        if result.valid != expected {
            failures.push(format!("{name}: expected {expected:?}, got {}", serde_json::to_string(&result).unwrap()));
            continue;
        }
        for (k, v) in sidecar(path, "expect").unwrap_or_default() {
            if result.details.get(&k) != Some(&v) {
                failures.push(format!("{name}: `{k}` should be {v}, got {:?}", result.details.get(&k)));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), files.len(), failures.join("\n"));
}

/// Every checker name appears in the test data with both a valid and an invalid case.
#[test]
fn testdata_covers_every_checker_both_ways() {
    let names: Vec<String> = cases().iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_string()).collect();
    for checker in ["counter", "set", "convergence", "bank"] {
        for verdict in ["valid", "invalid"] {
            assert!(
                names.iter().any(|n| n.starts_with(&format!("{checker}-")) && n.contains(&format!(".{verdict}."))),
                "no {verdict} case for {checker}"
            );
        }
    }
}
