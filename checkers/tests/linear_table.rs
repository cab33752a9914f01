//! Every history in `testdata/linear/` is checked against the model its name starts with
//! (`register-`, `cas-` = cas-register, `kv-`, `counter-`, `set-`, `mutex-`, `fifo-` =
//! fifo-queue, `uqueue-` = unordered-queue, `multi-` = multi-register, `skv-` = string-kv), and
//! the verdict must be the one in its name (`.valid`, `.invalid` or `.unknown`, then `.jsonl` or
//! `.edn`, the latter read as Jepsen EDN). An invalid result must name the op and explain; an unknown one must give
//! its reason.

use faultline_checkers::edn::read_edn;
use faultline_checkers::history::read_jsonl;
use faultline_checkers::linear;
use faultline_checkers::{CheckOptions, Validity};
use std::path::Path;

fn model_of(name: &str) -> &'static str {
    for (prefix, model) in [
        ("register-", "register"),
        ("cas-", "cas-register"),
        ("kv-", "kv"),
        ("counter-", "counter"),
        ("set-", "set"),
        ("mutex-", "mutex"),
        ("fifo-", "fifo-queue"),
        ("uqueue-", "unordered-queue"),
        ("multi-", "multi-register"),
        ("skv-", "string-kv"),
    ] {
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
    let mut per_model = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".jsonl").or_else(|| name.strip_suffix(".edn")) else { continue };
        let expected = if stem.ends_with(".invalid") {
            Validity::Invalid
        } else if stem.ends_with(".valid") {
            Validity::Valid
        } else if stem.ends_with(".unknown") {
            Validity::Unknown
        } else {
            continue;
        };
        let history = if name.ends_with(".edn") { read_edn(&path).unwrap() } else { read_jsonl(&path).unwrap() };
        *per_model.entry(model_of(&name)).or_insert(0) += 1;
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
    assert!(checked >= 110, "only {checked} histories found in {}", dir.display());
    for model in faultline_checkers::model::NAMES {
        assert!(per_model.get(model).is_some_and(|n| *n >= 5), "model {model}: only {:?} histories", per_model.get(model));
    }
}
