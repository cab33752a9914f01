//! The fast path on hand-written histories with known verdicts: every `testdata/linear/*-fast-*`
//! file (model prefix and verdict in its name, as for `linear_table.rs`) is unambiguous, so the
//! fast path alone, the search alone and the automatic choice must all give the verdict in the
//! name; the automatic choice must have decided every key on the fast path; and an invalid
//! result must name the op, explain, list the contradicting operations and the event.

use faultline_checkers::history::read_jsonl;
use faultline_checkers::linear::{self, Engine};
use faultline_checkers::{CheckOptions, CheckResult, Validity};
use std::path::Path;

fn model_of(name: &str) -> &'static str {
    [("register-", "register"), ("cas-", "cas-register"), ("kv-", "kv"), ("set-", "set")]
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, m)| *m)
        .unwrap_or_else(|| panic!("{name}: the file name must start with a model prefix"))
}

fn verdict_of(name: &str) -> Validity {
    if name.ends_with(".invalid.jsonl") {
        Validity::Invalid
    } else if name.ends_with(".valid.jsonl") {
        Validity::Valid
    } else {
        panic!("{name}: a fast-path history has a definite verdict")
    }
}

/// What is wrong with an automatic result that should have used the fast path only.
fn fast_path_problems(name: &str, r: &CheckResult, expected: Validity) -> Vec<String> {
    let mut problems = Vec::new();
    let keys = r.details.get("keys").and_then(|k| k.as_u64());
    let fast = r.details.get("paths").and_then(|p| p.get("fast")).and_then(|k| k.as_u64());
    if keys.is_none() || keys != fast {
        problems.push(format!("{name}: every key must be decided on the fast path: {r:?}"));
    }
    if expected == Validity::Invalid {
        let a = r.details.get("anomalies").and_then(|a| a.get(0)).cloned().unwrap_or_default();
        let named = ["op", "explanation", "longest_prefixes", "violation_event"].iter().all(|f| a.get(f).is_some());
        let contradiction = a.get("contradiction").and_then(|c| c.as_array()).is_some_and(|c| !c.is_empty());
        if !named || !contradiction || a.get("path").and_then(|p| p.as_str()) != Some("fast") {
            problems.push(format!("{name}: a fast-path anomaly must name the op, explain, list the contradiction: {a}"));
        }
    }
    problems
}

#[test]
fn fast_path_histories_have_the_verdict_in_their_name() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/linear");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let (mut checked, mut verdicts) = (0, [0, 0]);
    let mut failures = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.contains("-fast-") {
            continue;
        }
        let (model, expected) = (model_of(&name), verdict_of(&name));
        let history = read_jsonl(&path).unwrap();
        for (engine, threads) in [(Engine::Auto, 1), (Engine::Auto, 2), (Engine::Fast, 1), (Engine::Search, 1)] {
            let r = linear::check_with(&history, model, &CheckOptions { threads, ..CheckOptions::default() }, engine);
            if r.valid != expected {
                failures.push(format!("{name} ({engine:?}): expected {expected:?}, got {}", serde_json::to_string(&r).unwrap()));
            }
            if engine == Engine::Auto {
                failures.extend(fast_path_problems(&name, &r, expected));
            }
        }
        verdicts[(expected == Validity::Invalid) as usize] += 1;
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 25 && verdicts[0] >= 10 && verdicts[1] >= 10, "{checked} fast-path histories ({verdicts:?} valid/invalid) in {}", dir.display());
}
