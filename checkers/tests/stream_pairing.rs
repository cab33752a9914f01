//! Pairing while reading ([`read_jsonl_calls`], [`Pairer`]) gives exactly what reading the whole
//! history and pairing it gives: the same calls for every history under `testdata/`, the same
//! error for malformed ones, and the same verdict through [`linear::check_jsonl`].

use faultline_checkers::history::{read_jsonl, read_jsonl_calls, Op, OpType, Pairer};
use faultline_checkers::linear;
use faultline_checkers::{CheckOptions, History};
use serde_json::json;
use std::path::Path;

fn jsonl_files() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut out = Vec::new();
    for dir in ["linear", "other"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "jsonl") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn streaming_pairs_like_the_whole_history() {
    let files = jsonl_files();
    assert!(files.len() > 100, "{} files", files.len());
    for path in files {
        let whole = read_jsonl(&path).and_then(|h| h.calls().map(|c| (c, h.len())));
        let streamed = read_jsonl_calls(&path);
        match (whole, streamed) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", path.display()),
            (Err(a), Err(b)) => assert_eq!(a.line, b.line, "{}", path.display()),
            (a, b) => panic!("{}: whole {:?}, streamed {:?}", path.display(), a.map(|x| x.1), b.map(|x| x.1)),
        }
    }
}

#[test]
fn streaming_pairing_reports_the_same_errors() {
    let cases: Vec<Vec<Op>> = vec![
        vec![Op::new(0, OpType::Invoke, "read", json!(null)), Op::new(0, OpType::Invoke, "read", json!(null))],
        vec![Op::new(0, OpType::Ok, "read", json!(1))],
        vec![Op::new(0, OpType::Invoke, "read", json!(null)), Op::new(0, OpType::Ok, "write", json!(1))],
    ];
    for ops in cases {
        let h = History::from_ops(ops);
        let whole = h.calls().unwrap_err();
        let mut p = Pairer::new();
        let streamed = h.ops.iter().cloned().map(|o| p.push(o)).find_map(Result::err).expect("an error");
        assert_eq!((whole.line, whole.message), (streamed.line, streamed.message));
    }
}

#[test]
fn check_jsonl_gives_the_verdict_of_check() {
    let opts = CheckOptions { threads: 1, ..CheckOptions::default() };
    for path in jsonl_files().into_iter().filter(|p| p.to_string_lossy().contains("/linear/")) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let model = ["register", "cas", "kv", "counter", "set", "mutex", "fifo", "uqueue", "multi"]
            .iter()
            .zip(["register", "cas-register", "kv", "counter", "set", "mutex", "fifo-queue", "unordered-queue", "multi-register"])
            .find(|(p, _)| name.starts_with(&format!("{p}-")))
            .map(|(_, m)| m)
            .unwrap();
        let a = linear::check(&read_jsonl(&path).unwrap(), model, &opts);
        let b = linear::check_jsonl(&path, model, &opts);
        assert_eq!(a.valid, b.valid, "{name}");
        assert_eq!(a.details.get("anomalies"), b.details.get("anomalies"), "{name}");
    }
}
