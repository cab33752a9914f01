//! Pairing while reading ([`read_jsonl_calls`], [`Pairer`]) gives exactly what reading the whole
//! history and pairing it gives: the same calls for every history under `testdata/`, the same
//! error for malformed ones, and the same verdict through [`linear::check_jsonl`].

use faultline_checkers::history::{call_bytes, read_jsonl, read_jsonl_calls, stream_jsonl_calls, stream_jsonl_calls_within, Op, OpType, Pairer, Tail};
use faultline_checkers::linear;
use faultline_checkers::registry::{self, CheckerSpec};
use faultline_checkers::{CheckOptions, History, Validity};
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

/// `n` writes of fresh values to 10 keys, each followed by a read of it, one process per key.
fn many_writes(n: u64) -> String {
    let mut out = String::new();
    for i in 0..n {
        let (p, k) = (i % 10, i % 10);
        for (t, f, v) in [("invoke", "write", json!(i + 1)), ("ok", "write", json!(i + 1)), ("invoke", "read", json!(null)), ("ok", "read", json!(i + 1))] {
            out.push_str(&format!("{}\n", json!({"process": p, "type": t, "f": f, "key": k, "value": v})));
        }
    }
    out
}

#[test]
fn a_history_over_the_memory_budget_is_read_but_not_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    std::fs::write(&path, many_writes(5000)).unwrap();
    let all = stream_jsonl_calls(&path, Tail::Strict, |_| {}).unwrap();
    assert!(!all.over_budget);
    assert_eq!(all.calls.len(), 10_000);
    assert_eq!(all.bytes, all.calls.iter().map(call_bytes).sum::<u64>());
    // Within a budget that holds them: the same calls.
    let fits = stream_jsonl_calls_within(&path, Tail::Strict, all.bytes, |_| {}).unwrap();
    assert!(!fits.over_budget);
    assert_eq!(fits.calls, all.calls);
    // Over it: nothing kept, every event read, what the whole history needs counted.
    let over = stream_jsonl_calls_within(&path, Tail::Strict, all.bytes / 4, |_| {}).unwrap();
    assert!(over.over_budget && over.calls.is_empty());
    assert_eq!((over.events, over.bytes), (all.events, all.bytes));
    // A malformed line after the budget ran out is still bad input.
    let mut text = many_writes(5000);
    text.push_str("{\"process\":3,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n");
    std::fs::write(&path, &text).unwrap();
    let e = stream_jsonl_calls_within(&path, Tail::Strict, all.bytes / 4, |_| {}).unwrap_err();
    assert_eq!(e.line, 20_001, "{e}");
}

#[test]
fn the_budget_counts_the_calls_and_the_checker_says_when_they_do_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    std::fs::write(&path, many_writes(5000)).unwrap();
    let specs = vec![CheckerSpec { model: Some("kv".into()), ..CheckerSpec::named("linearizable") }];
    let budget = 1u64 << 20;
    let read = stream_jsonl_calls_within(&path, Tail::Strict, budget, |_| {}).unwrap();
    let opts = CheckOptions { memory_limit_bytes: budget, ..CheckOptions::default() };
    let report = registry::run_all_on_stream(&specs, &read, 0, "kv", &opts).unwrap();
    assert_eq!(report.valid, Validity::Unknown);
    let error = report.results[0].1.details["error"].as_str().unwrap().to_string();
    let need = read.bytes.div_ceil(1 << 20);
    assert!(error.contains("--memory-mb") && error.contains("1 MiB") && error.contains(&format!("about {need} MiB")), "{error}");
    // A budget that fits: decided, valid.
    let opts = CheckOptions { memory_limit_bytes: 64 << 20, ..CheckOptions::default() };
    let read = stream_jsonl_calls_within(&path, Tail::Strict, opts.memory_limit_bytes, |_| {}).unwrap();
    assert_eq!(registry::run_all_on_stream(&specs, &read, 0, "kv", &opts).unwrap().valid, Validity::Valid);
    // Calls that fit but leave the keys too little: undecided for memory, not over it.
    let opts = CheckOptions { memory_limit_bytes: read.bytes + 1000, threads: 1, ..CheckOptions::default() };
    let r = &registry::run_all_on_stream(&specs, &read, 0, "kv", &opts).unwrap().results[0].1;
    assert_eq!(r.valid, Validity::Unknown);
    assert!(r.details["error"].as_str().unwrap().contains("memory budget exhausted"), "{r:?}");
}

/// An error early in a long file ends the read at once, whichever side finds it: the line
/// (reading thread) or the pairing (this one). The reading thread, blocked on a full channel,
/// must not keep the caller waiting.
#[test]
fn an_early_error_ends_a_long_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    let rest = many_writes(50_000);
    for (first, line) in [
        ("{\"process\":0,\"type\":\"okay\",\"f\":\"read\"}\n", 1),
        ("{\"process\":77,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n", 1),
        ("{\"process\":77,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":77,\"type\":\"invoke\",\"f\":\"read\"}\n", 2),
    ] {
        std::fs::write(&path, format!("{first}{rest}")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        std::thread::spawn(move || tx.send(stream_jsonl_calls(&p, Tail::Strict, |_| {}).map(|s| s.events)));
        let e = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("the read ends").unwrap_err();
        assert_eq!(e.line, line, "{e}");
        assert!(e.file.ends_with("h.jsonl"), "{e}");
    }
}

/// Processes of any number pair alike: small ones (kept in a table) and large ones (a map)
/// interleaved, against [`History::calls`].
#[test]
fn large_process_numbers_pair_alike() {
    let processes = [0u64, 65_535, 65_536, 1 << 40, 7, u64::MAX];
    let mut ops = Vec::new();
    for round in 0..3u64 {
        for (i, &p) in processes.iter().enumerate() {
            ops.push(Op::new(p, OpType::Invoke, "write", json!(round * 10 + i as u64)));
        }
        for (i, &p) in processes.iter().enumerate().rev() {
            let t = if i % 3 == 0 { OpType::Info } else { OpType::Ok };
            if round < 2 || i % 2 == 0 {
                ops.push(Op::new(p, t, "write", json!(round * 10 + i as u64)));
            }
        }
    }
    let h = History::from_ops(ops);
    let whole = h.calls();
    let mut pairer = Pairer::new();
    let streamed = h.ops.iter().cloned().try_for_each(|o| pairer.push(o)).map(|_| pairer.finish());
    // The last round leaves some invokes open and then invokes again: the same error either way.
    match (&whole, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(a), Err(b)) => assert_eq!((a.line, &a.message), (b.line, &b.message)),
        _ => panic!("{whole:?} vs {streamed:?}"),
    }
    assert!(whole.is_ok(), "{whole:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    let text: String = h.ops.iter().map(|o| serde_json::to_string(o).unwrap() + "\n").collect();
    std::fs::write(&path, text).unwrap();
    assert_eq!(read_jsonl_calls(&path).unwrap().0, whole.unwrap());
}
