//! Every history in `testdata/linear/` is checked against the model its name starts with
//! (`register-`, `cas-` = cas-register, `kv-`, `counter-`, `set-`), and the verdict must be the
//! one in its name (`.valid.jsonl`, `.invalid.jsonl` or `.unknown.jsonl`). An invalid result
//! must name the op and explain; an unknown one must give its reason.

use faultline_checkers::history::read_jsonl;
use faultline_checkers::linear;
use faultline_checkers::{CheckOptions, Validity};
use std::path::Path;

fn model_of(name: &str) -> &'static str {
    for (prefix, model) in [("register-", "register"), ("cas-", "cas-register"), ("kv-", "kv"), ("counter-", "counter"), ("set-", "set")] {
        if name.starts_with(prefix) {
            return model;
        }
    }
    panic!("{name}: the file name must start with a model prefix");
}

#[test]
fn every_history_has_the_verdict_in_its_name() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/linear");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let expected = if name.ends_with(".invalid.jsonl") {
            Validity::Invalid
        } else if name.ends_with(".valid.jsonl") {
            Validity::Valid
        } else if name.ends_with(".unknown.jsonl") {
            Validity::Unknown
        } else {
            continue;
        };
        let history = read_jsonl(&path).unwrap();
        for threads in [1, 2] {
            let opts = CheckOptions { threads, ..CheckOptions::default() };
            let result = linear::check(&history, model_of(&name), &opts);
            if result.valid != expected {
                failures.push(format!("{name} (threads {threads}): expected {expected:?}, got {}", serde_json::to_string(&result).unwrap()));
            }
            if expected == Validity::Unknown && result.details.get("error").and_then(|e| e.as_str()).is_none() {
                failures.push(format!("{name}: an unknown result must give its reason: {result:?}"));
            }
            if expected == Validity::Invalid {
                let anomalies = result.details.get("anomalies").and_then(|a| a.as_array()).cloned().unwrap_or_default();
                let first = anomalies.first();
                if first.and_then(|a| a.get("op")).is_none() || first.and_then(|a| a.get("explanation")).is_none() {
                    failures.push(format!("{name}: an invalid result must name the op and explain: {result:?}"));
                }
            }
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 25, "only {checked} histories found in {}", dir.display());
}
