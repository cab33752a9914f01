//! `faultline check` end to end: the real binary on small histories, judged by exit code and
//! output (contract sections 2 to 4).

use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_faultline");

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `faultline` with a 60 s limit, killing it if it overstays.
fn faultline(args: &[&str]) -> Out {
    let mut child = Command::new(BIN).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("faultline {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    Out { code: status.code().unwrap_or(-1), stdout, stderr }
}

fn jsonl(ops: &[Value]) -> String {
    ops.iter().map(|o| format!("{o}\n")).collect()
}

fn write_read(value: i64) -> Vec<Value> {
    vec![
        json!({"process": 0, "type": "invoke", "f": "write", "key": "a", "value": 1}),
        json!({"process": 0, "type": "ok", "f": "write", "key": "a", "value": 1}),
        json!({"process": 0, "type": "invoke", "f": "write", "key": "a", "value": 2}),
        json!({"process": 0, "type": "ok", "f": "write", "key": "a", "value": 2}),
        json!({"process": "nemesis", "type": "info", "f": "kill", "value": {"fault": "kill", "phase": "start"}}),
        json!({"process": 1, "type": "invoke", "f": "read", "key": "a", "value": null}),
        json!({"process": 1, "type": "ok", "f": "read", "key": "a", "value": value}),
    ]
}

fn file(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn valid_and_stale_read() {
    let dir = tempfile::tempdir().unwrap();
    let ok = file(dir.path(), "ok.jsonl", &jsonl(&write_read(2)));
    let o = faultline(&["check", &ok]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("verdict: valid"), "{}", o.stdout);

    let stale = file(dir.path(), "stale.jsonl", &jsonl(&write_read(1)));
    let o = faultline(&["check", &stale]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("INVALID"), "{}", o.stdout);
    assert!(o.stdout.contains("key: \"a\""), "the summary names the key: {}", o.stdout);
    assert!(o.stdout.contains("cannot place: process 1 read -> ok 1 (events 5..6)"), "the summary names the op: {}", o.stdout);
}

#[test]
fn json_output_is_one_object() {
    let dir = tempfile::tempdir().unwrap();
    let stale = file(dir.path(), "stale.jsonl", &jsonl(&write_read(1)));
    let o = faultline(&["check", "--json", "--model", "register", &stale]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    let v: Value = serde_json::from_str(o.stdout.trim()).expect("stdout is exactly one JSON object");
    assert_eq!(v["valid"], json!(false));
    assert_eq!(v["file"], json!(stale));
    assert_eq!(v["checkers"]["linearizable"]["valid"], json!(false));
    assert_eq!(v["checkers"]["linearizable"]["model"], json!("register"));
}

/// A subset-sum puzzle: 28 concurrent adds of even deltas that may or may not have happened,
/// and one read of an odd total. No subset sums to it, but a linearizability search over the
/// counter model has to rule out 2^28 subsets, so a 50 ms budget must end in unknown (exit 2).
#[test]
fn tiny_budget_on_a_hard_history_is_unknown() {
    let deltas: Vec<u64> = (0..28u64).map(|i| 2 * (1_000_003 * (i + 1) + i * i * 7919)).collect();
    let mut ops = Vec::new();
    for (p, d) in deltas.iter().enumerate() {
        ops.push(json!({"process": p, "type": "invoke", "f": "add", "value": d}));
    }
    let odd = deltas.iter().sum::<u64>() / 2 | 1;
    ops.push(json!({"process": 100, "type": "invoke", "f": "read", "value": null}));
    ops.push(json!({"process": 100, "type": "ok", "f": "read", "value": odd}));
    for (p, d) in deltas.iter().enumerate() {
        ops.push(json!({"process": p, "type": "info", "f": "add", "value": d}));
    }
    let dir = tempfile::tempdir().unwrap();
    let hard = file(dir.path(), "hard.jsonl", &jsonl(&ops));
    let o = faultline(&["check", "--budget", "0.05", "--model", "counter", "--json", &hard]);
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    let v: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["valid"], json!("unknown"));
    // The counter checker only bounds reads: the odd total is within them, so it is valid.
    let o = faultline(&["check", "--check", "counter", &hard]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
}

#[test]
fn bad_input_and_usage_exit_254() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = jsonl(&write_read(2)[..2]);
    text.push_str("{\"process\": 1, \"type\": \"invoke\", \"f\": \"read\"\n");
    let bad = file(dir.path(), "bad.jsonl", &text);
    let o = faultline(&["check", &bad]);
    assert_eq!(o.code, 254, "{}", o.stderr);
    assert!(o.stderr.contains("bad.jsonl:3:"), "names file and line: {}", o.stderr);

    let ok = file(dir.path(), "ok.jsonl", &jsonl(&write_read(2)));
    for args in [
        vec!["check", ok.as_str(), "--no-such-flag"],
        vec!["check", ok.as_str(), "--model", "queue"],
        vec!["check", ok.as_str(), "--check", "linearizable,sorcery"],
        vec!["check", ok.as_str(), "--format", "xml"],
        vec!["check", ok.as_str(), "--budget", "0"],
        vec!["check", dir.path().join("missing.jsonl").to_str().unwrap()],
    ] {
        let o = faultline(&args);
        assert_eq!(o.code, 254, "{args:?}: {}", o.stderr);
        assert!(!o.stderr.is_empty(), "{args:?} says why");
    }

    // Two invokes of one process in a row: paired up front, so bad input rather than unknown.
    let twice = jsonl(&[
        json!({"process": 0, "type": "invoke", "f": "read", "key": "a", "value": null}),
        json!({"process": 0, "type": "invoke", "f": "read", "key": "a", "value": null}),
    ]);
    let p = file(dir.path(), "twice.jsonl", &twice);
    let o = faultline(&["check", &p]);
    assert_eq!(o.code, 254, "{}", o.stderr);
    assert!(o.stderr.contains("twice.jsonl:2:"), "{}", o.stderr);
}

#[test]
fn edn_histories() {
    let edn = "{:type :invoke, :f :write, :value 1, :process 0, :time 10, :index 0}\n\
               {:type :info, :f :kill, :value [:n1], :process :nemesis, :time 11, :index 1}\n\
               {:type :ok, :f :write, :value 1, :process 0, :time 20, :index 2}\n\
               {:type :invoke, :f :read, :value nil, :process 1, :time 30, :index 3}\n\
               {:type :ok, :f :read, :value 1, :process 1, :time 40, :index 4}\n";
    let dir = tempfile::tempdir().unwrap();
    let p = file(dir.path(), "history.edn", edn);
    let o = faultline(&["check", &p]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    // Without the extension the format is sniffed; with --format it is forced.
    let q = file(dir.path(), "history.txt", &edn.replace(":value 1, :process 1", ":value 7, :process 1"));
    let o = faultline(&["check", &q]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    let o = faultline(&["check", "--format", "jsonl", &q]);
    assert_eq!(o.code, 254, "EDN read as JSONL is bad input: {}", o.stderr);
    assert!(o.stderr.contains("history.txt:1:"), "{}", o.stderr);
    // Malformed EDN names its line.
    let r = file(dir.path(), "broken.edn", &edn.replace(":time 30, :index 3}", ":time 30, :index 3]"));
    let o = faultline(&["check", &r]);
    assert_eq!(o.code, 254, "{}", o.stderr);
    assert!(o.stderr.contains("broken.edn:4:"), "{}", o.stderr);
}

/// Jepsen's console log of operations (the format of the etcd corpora): sniffed, or forced
/// with `--format jepsen-log`; other log lines are skipped, a malformed event names its line.
#[test]
fn jepsen_console_logs() {
    let log = "INFO  jepsen.core - Running test etcd\n\
               INFO  jepsen.util - 0\t:invoke\t:write\t3\n\
               INFO  jepsen.util - 0\t:ok\t:write\t3\n\
               INFO  jepsen.util - 1\t:invoke\t:cas\t[3 4]\n\
               INFO  jepsen.util - 2\t:invoke\t:read\tnil\n\
               INFO  jepsen.util - 1\t:ok\t:cas\t[3 4]\n\
               INFO  jepsen.util - 2\t:ok\t:read\t4\n\
               INFO  jepsen.util - 3\t:invoke\t:write\t1\n\
               INFO  jepsen.util - 3\t:info\t:write\t:timed-out\n\
               INFO  jepsen.util - 4\t:invoke\t:read\tnil\n\
               INFO  jepsen.util - 4\t:ok\t:read\tREAD\n";
    let dir = tempfile::tempdir().unwrap();
    // 1 (the unknown write) or 4 may be read last; 3 was overwritten before the read began.
    for (read, code) in [("4", 0), ("1", 0), ("3", 1), ("nil", 1)] {
        let p = file(dir.path(), "etcd.log", &log.replace("READ", read));
        let o = faultline(&["check", &p]);
        assert_eq!(o.code, code, "read {read}: {}{}", o.stdout, o.stderr);
        assert!(o.stdout.contains("cas-register"), "the model is guessed from the cas: {}", o.stdout);
    }
    let p = file(dir.path(), "etcd.txt", &log.replace("READ", "3"));
    assert_eq!(faultline(&["check", "--format", "jepsen-log", &p]).code, 1);
    let o = faultline(&["check", "--format", "edn", &p]);
    assert_eq!(o.code, 254, "a log read as EDN is bad input: {}", o.stderr);
    let q = file(dir.path(), "broken.log", &log.replace("READ", "[4"));
    let o = faultline(&["check", &q]);
    assert_eq!(o.code, 254, "{}", o.stderr);
    assert!(o.stderr.contains("broken.log:11:") && o.stderr.contains("invalid EDN"), "{}", o.stderr);
    let o = faultline(&["check", "--format", "jepsen", &q]);
    assert!(o.code == 254 && o.stderr.contains("--format") && o.stderr.contains("jepsen-log"), "{}", o.stderr);
}

#[test]
fn other_checkers_and_escaped_html() {
    let ops = [
        json!({"process": 0, "type": "invoke", "f": "add", "value": "<script>alert(1)</script>"}),
        json!({"process": 0, "type": "ok", "f": "add", "value": "<script>alert(1)</script>"}),
        json!({"process": 1, "type": "invoke", "f": "read", "value": null}),
        json!({"process": 1, "type": "ok", "f": "read", "value": ["<script>alert(1)</script>", "<b>x</b>"]}),
    ];
    let dir = tempfile::tempdir().unwrap();
    let p = file(dir.path(), "set.jsonl", &jsonl(&ops));
    let html = dir.path().join("out.html");
    let o = faultline(&["check", "--check", "set", "--html", html.to_str().unwrap(), &p]);
    assert_eq!(o.code, 1, "an unexpected element: {}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("1 unexpected"), "{}", o.stdout);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("&lt;script&gt;"), "{page}");
    assert!(!page.contains("<script>alert"), "nothing from the history is live markup");

    let lin_html = dir.path().join("lin.html");
    let stale = file(dir.path(), "stale.jsonl", &jsonl(&write_read(1)));
    let o = faultline(&["check", "--html", lin_html.to_str().unwrap(), &stale]);
    assert_eq!(o.code, 1);
    let page = std::fs::read_to_string(&lin_html).unwrap();
    assert!(page.contains("<title>") && page.contains("stale.jsonl"), "the linearizability page: {page}");
}

#[test]
fn run_directory_reruns_its_checkers_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    let test = json!({"name": "t", "checkers": [
        {"name": "counter", "params": {}},
        {"name": "bank", "params": {"total": 10}}
    ]});
    std::fs::write(run.join("test.json"), test.to_string()).unwrap();
    let mut history = jsonl(&[
        json!({"process": 0, "type": "invoke", "f": "add", "value": 3}),
        json!({"process": 0, "type": "ok", "f": "add", "value": 3}),
        json!({"process": 1, "type": "invoke", "f": "read", "value": null}),
        json!({"process": 1, "type": "ok", "f": "read", "value": 3}),
    ]);
    // An interrupted harness leaves half a line: the prefix is still checked.
    history.push_str("{\"process\": 2, \"type\": \"inv");
    std::fs::write(run.join("history.jsonl"), &history).unwrap();
    let before: Vec<(String, Vec<u8>)> = ["test.json", "history.jsonl"].iter().map(|f| (f.to_string(), std::fs::read(run.join(f)).unwrap())).collect();

    let o = faultline(&["check", "--json", run.to_str().unwrap()]);
    // counter is valid; bank sees reads of a plain number, which are malformed balances.
    let v: Value = serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}{}", o.stdout, o.stderr));
    assert_eq!(v["checkers"]["counter"]["valid"], json!(true), "{v}");
    assert_eq!(v["checkers"]["bank"]["valid"], json!(false), "{v}");
    assert_eq!((o.code, v["valid"].clone()), (1, json!(false)));
    assert!(o.stderr.contains("unfinished last line"), "{}", o.stderr);

    // --check overrides the stored checkers.
    let o = faultline(&["check", "--check", "counter", run.to_str().unwrap()]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);

    for (f, bytes) in before {
        assert_eq!(std::fs::read(run.join(&f)).unwrap(), bytes, "{f} unchanged");
    }
    let names: Vec<_> = std::fs::read_dir(run).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "no file added: {names:?}");
}

/// The verdict object of `check --json`, without the timing that differs run to run.
fn verdict_json(args: &[&str]) -> (i32, Value) {
    let o = faultline(args);
    let mut v: Value = serde_json::from_str(o.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}{}", o.stdout, o.stderr));
    for (_, c) in v["checkers"].as_object_mut().unwrap() {
        c.as_object_mut().unwrap().remove("elapsed_ms");
    }
    (o.code, v)
}

/// A JSONL history checked for linearizability is streamed (paired while read, model guessed
/// while read); with `--html` it is read whole. Both must give the same exit code and the same
/// verdict object, for every model the guess can land on.
#[test]
fn streamed_and_whole_reads_agree() {
    let dir = tempfile::tempdir().unwrap();
    let counter = vec![
        json!({"process": 0, "type": "invoke", "f": "add", "value": 2}),
        json!({"process": 0, "type": "ok", "f": "add", "value": 2}),
        json!({"process": "nemesis", "type": "info", "f": "kill", "value": null}),
        json!({"process": 1, "type": "invoke", "f": "read", "value": null}),
        json!({"process": 1, "type": "ok", "f": "read", "value": 3}),
    ];
    let mut cases = vec![("stale", write_read(1), 1), ("fresh", write_read(2), 0), ("counter", counter, 1)];
    let unkeyed: Vec<Value> = write_read(1).into_iter().map(|mut o| {
        o.as_object_mut().unwrap().remove("key");
        o
    }).collect();
    cases.push(("register", unkeyed, 1));
    for (name, ops, code) in cases {
        let p = file(dir.path(), &format!("{name}.jsonl"), &jsonl(&ops));
        let html = dir.path().join(format!("{name}.html"));
        let streamed = verdict_json(&["check", "--json", &p]);
        let whole = verdict_json(&["check", "--json", "--html", html.to_str().unwrap(), &p]);
        assert_eq!(streamed, whole, "{name}");
        assert_eq!(streamed.0, code, "{name}: {}", streamed.1);
    }
}

/// A run directory whose stored checker is linearizability alone is streamed too, and still
/// drops the half line an interrupted harness left.
#[test]
fn a_linearizable_run_directory_streams_and_drops_an_unfinished_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path();
    std::fs::write(run.join("test.json"), json!({"checkers": [{"name": "linearizable", "model": "kv", "params": {}}]}).to_string()).unwrap();
    let mut history = jsonl(&write_read(1));
    history.push_str("{\"process\": 2, \"type\": \"inv");
    std::fs::write(run.join("history.jsonl"), &history).unwrap();
    let o = faultline(&["check", run.to_str().unwrap()]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("7 events (6 client, 1 nemesis)"), "{}", o.stdout);
    assert!(o.stdout.contains("linearizable (kv): INVALID"), "{}", o.stdout);
    assert!(o.stderr.contains("unfinished last line"), "{}", o.stderr);
    // A last line that is JSON but not an event is bad input, named by file and line.
    history.truncate(history.rfind('\n').unwrap() + 1);
    history.push_str("{\"process\": 2}");
    std::fs::write(run.join("history.jsonl"), &history).unwrap();
    let o = faultline(&["check", run.to_str().unwrap()]);
    assert_eq!(o.code, 254, "{}{}", o.stdout, o.stderr);
    assert!(o.stderr.contains("history.jsonl:8:"), "{}", o.stderr);
}

/// Several histories in one process: each verdict printed in turn (one JSON object per line
/// with `--json`), the exit code the worst of them; `--html` takes one history.
#[test]
fn several_histories_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let ok = file(dir.path(), "ok.jsonl", &jsonl(&write_read(2)));
    let stale = file(dir.path(), "stale.jsonl", &jsonl(&write_read(1)));
    let o = faultline(&["check", &ok, &ok]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert_eq!(o.stdout.matches("verdict: valid").count(), 2, "{}", o.stdout);
    let o = faultline(&["check", "--json", &ok, &stale, &ok]);
    assert_eq!(o.code, 1, "{}{}", o.stdout, o.stderr);
    let lines: Vec<Value> = o.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let verdicts: Vec<(Value, Value)> = lines.iter().map(|v| (v["file"].clone(), v["valid"].clone())).collect();
    assert_eq!(verdicts, vec![(json!(ok), json!(true)), (json!(stale), json!(false)), (json!(ok), json!(true))]);
    // One file alone prints exactly what it did before: one object.
    let o = faultline(&["check", "--json", &stale]);
    assert_eq!(o.stdout.trim().lines().count(), 1);
    let html = dir.path().join("x.html");
    let o = faultline(&["check", "--html", html.to_str().unwrap(), &ok, &stale]);
    assert_eq!(o.code, 254, "{}", o.stderr);
    assert!(o.stderr.contains("--html"), "{}", o.stderr);
}

#[test]
fn a_history_over_the_memory_budget_is_unknown_and_says_so() {
    // 6,000 writes of fresh values and reads of them, on 10 keys: about 3 MiB of calls.
    let mut ops = Vec::new();
    for i in 0..6000i64 {
        let (p, k) = (i % 10, i % 10);
        ops.push(json!({"process": p, "type": "invoke", "f": "write", "key": k, "value": i + 1}));
        ops.push(json!({"process": p, "type": "ok", "f": "write", "key": k, "value": i + 1}));
        ops.push(json!({"process": p, "type": "invoke", "f": "read", "key": k, "value": null}));
        ops.push(json!({"process": p, "type": "ok", "f": "read", "key": k, "value": i + 1}));
    }
    let dir = tempfile::tempdir().unwrap();
    let h = file(dir.path(), "h.jsonl", &jsonl(&ops));
    let o = faultline(&["check", "--model", "kv", "--memory-mb", "1", "--json", &h]);
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    let v: Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["valid"], json!("unknown"));
    let error = v["checkers"]["linearizable"]["error"].as_str().unwrap();
    assert!(error.contains("the budget (--memory-mb) is 1 MiB"), "{error}");
    assert!(v["checkers"]["linearizable"]["memory_needed_mb"].as_u64().unwrap() > 1, "{v}");
    let o = faultline(&["check", "--model", "kv", "--memory-mb", "1", &h]);
    assert_eq!(o.code, 2, "{}{}", o.stdout, o.stderr);
    assert!(o.stdout.contains("reason: memory budget exceeded by the history itself"), "{}", o.stdout);
    // A budget that fits decides it.
    let o = faultline(&["check", "--model", "kv", "--memory-mb", "64", &h]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
}
