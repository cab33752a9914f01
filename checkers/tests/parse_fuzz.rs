//! Fuzzing the two history readers: the JSONL reader ([`JsonlReader`], plus pairing) and the EDN
//! importer ([`parse_edn_with`], in every tuple mode). Whatever the input, each must answer a
//! history or an error naming the file and a line that exists, never panic (proptest turns a
//! panic into a failure) and never hang (each case runs on a watchdog thread).
//!
//! Inputs: arbitrary bytes; token soups of each format's syntax (arbitrary bytes almost never
//! reach past the first character); mutations of the valid histories in `testdata/` (bytes
//! flipped, inserted, deleted, duplicated, lines swapped, the file cut short); and deep
//! nesting. Case counts are sized for a few seconds in release; `PROPTEST_CASES=N` sets every
//! property's count, for long runs (docs/checker.md says how long ones went).

use faultline_checkers::edn::{parse_edn_with, Tuples};
use faultline_checkers::history::{pair_in, History, HistoryError, JsonlReader};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// Longer than any parse of these small inputs may take, even on a loaded machine.
const WATCHDOG: Duration = Duration::from_secs(20);

/// The number of cases of each property: `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig { cases: cases(default), failure_persistence: None, ..ProptestConfig::default() }
}

/// Runs `f` on its own thread and gives its answer, or fails the case when it panicked or did
/// not answer within [`WATCHDOG`] (a hung parser is left behind; the test fails anyway).
fn watched<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T, TestCaseError> {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new().stack_size(8 << 20).spawn(move || {
        let _ = tx.send(f());
    });
    worker.map_err(|e| TestCaseError::fail(format!("{what}: cannot spawn: {e}")))?;
    match rx.recv_timeout(WATCHDOG) {
        Ok(v) => Ok(v),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(TestCaseError::fail(format!("{what}: no answer within {WATCHDOG:?}"))),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(TestCaseError::fail(format!("{what}: panicked"))),
    }
}

/// Lines a reader may name: 1 up to the number of lines (a last line without `\n` counts).
fn line_count(bytes: &[u8]) -> usize {
    bytes.split(|b| *b == b'\n').count()
}

/// An error must name the file and a line of it, and print as `file:line: message`.
fn check_error(e: &HistoryError, file: &str, lines: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(&e.file, file);
    prop_assert!(e.line >= 1 && e.line <= lines, "line {} of {} lines: {}", e.line, lines, e);
    prop_assert!(e.to_string().starts_with(&format!("{file}:{}: ", e.line)), "{}", e);
    Ok(())
}

/// Pairing a parsed history must answer calls or an error naming an event that exists.
fn check_pairing(h: &History, file: &str) -> Result<(), TestCaseError> {
    if let Err(e) = pair_in(&h.ops, file) {
        check_error(&e, file, h.len())?;
    }
    Ok(())
}

const JSONL: &str = "fuzz.jsonl";
const EDN: &str = "fuzz.edn";

/// Reads `bytes` as JSONL up to its first error, then pairs what it read.
fn jsonl_case(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let lines = line_count(&bytes);
    let read = watched("jsonl", move || JsonlReader::new(bytes.as_slice(), JSONL).collect::<Result<Vec<_>, _>>())?;
    match read {
        Ok(ops) => check_pairing(&History::from_ops(ops), JSONL),
        Err(e) => check_error(&e, JSONL, lines),
    }
}

/// Imports `bytes` (as text, invalid UTF-8 replaced) as EDN in every tuple mode, then pairs.
fn edn_case(bytes: Vec<u8>) -> Result<(), TestCaseError> {
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let lines = line_count(text.as_bytes());
    for mode in [Tuples::Tagged, Tuples::Auto, Tuples::Always] {
        let t = text.clone();
        match watched("edn", move || parse_edn_with(&t, EDN, mode))? {
            Ok(h) => check_pairing(&h, EDN)?,
            Err(e) => check_error(&e, EDN, lines)?,
        }
    }
    Ok(())
}

const JSON_TOKENS: &[&str] = &[
    "{", "}", "[", "]", ":", ",", "\n", " ", "\"", "\\", "\"process\"", "\"type\"", "\"f\"", "\"value\"", "\"key\"",
    "\"index\"", "\"time\"", "\"node\"", "\"final\"", "\"error\"", "\"invoke\"", "\"ok\"", "\"fail\"", "\"info\"",
    "\"read\"", "\"write\"", "\"cas\"", "\"nemesis\"", "0", "1", "-1", "1.0", "1e999", "-0", "18446744073709551616",
    "null", "true", "false", "\"\"", "\"\\u0000\"", "\"\\ud800\"", "é", "\u{0}", "\r",
];

const EDN_TOKENS: &[&str] = &[
    "{", "}", "[", "]", "(", ")", "#{", "#_", "#", "#inst", "#uuid", "#jepsen.independent/tuple", "#jepsen.history.Op",
    ":type", ":invoke", ":ok", ":fail", ":info", ":f", ":read", ":write", ":cas", ":process", ":value", ":key",
    ":time", ":index", ":nemesis", ":final?", ":error", "\"", "\\", "\\a", "\\newline", "\\u00e9", ";", "\n", " ", ",",
    "0", "-1", "12N", "1.5M", "1e999", "99999999999999999999", "nil", "true", "\"s\"", "x/y", "##Inf", "'", "^", "é",
    "\u{0}", "\"2020-01-01T00:00:00Z\"",
];

/// Concatenations of up to 80 tokens of one format's syntax.
fn soup(tokens: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(tokens), 0..80).prop_map(|ts| ts.concat().into_bytes())
}

/// Jepsen's other shapes, which `testdata/` lacks: one vector of ops, tagged op records,
/// independent tuples, sets, chars, comments and discards.
const EDN_VECTOR: &str = r#"[{:type :invoke, :f :write, :value #jepsen.independent/tuple [0 3], :process 0, :time 1000, :index 0}
 #jepsen.history.Op{:index 1, :time 1200, :type :info, :process :nemesis, :f :start-partition, :value [:isolated {"n1" #{"n2" "n3"}}]}
 ; a comment ]
 #_ {:discarded (1 2)}
 {:type :ok, :f :write, :value #jepsen.independent/tuple [0 3], :process 0, :time 2000, :index 2, :error nil, :x \]}
 {:type :invoke, :f :cas, :value [1 [nil 4]], :process 1, :time 2500}
 {:type :fail, :f :cas, :value [1 [nil 4]], :process 1, :time 2600, :error :precondition}]
"#;

/// The valid histories of `testdata/` with the given extension, as bytes.
fn corpus(ext: &str) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files = if ext == "edn" { vec![EDN_VECTOR.as_bytes().to_vec()] } else { Vec::new() };
    for dir in ["linear", "other"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) == Some(ext) {
                files.push(std::fs::read(&path).unwrap());
            }
        }
    }
    files.sort();
    files
}

/// One edit of a valid file; positions are taken modulo the length.
#[derive(Clone, Debug)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, &'static str),
    Delete(usize, usize),
    Duplicate(usize, usize),
    SwapLines(usize, usize),
    Truncate(usize),
}

fn edit_strategy(tokens: &'static [&'static str]) -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), prop::sample::select(tokens)).prop_map(|(i, t)| Edit::Insert(i, t)),
        (any::<usize>(), 1..40usize).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<usize>(), 1..200usize).prop_map(|(i, n)| Edit::Duplicate(i, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, edit: &Edit) -> Vec<u8> {
    let at = |i: usize, b: &Vec<u8>| if b.is_empty() { 0 } else { i % (b.len() + 1) };
    match *edit {
        Edit::Flip(i, x) if !bytes.is_empty() => {
            let n = bytes.len();
            bytes[i % n] ^= x;
        }
        Edit::Flip(..) => {}
        Edit::Insert(i, t) => {
            let p = at(i, &bytes);
            bytes.splice(p..p, t.bytes());
        }
        Edit::Delete(i, n) => {
            let p = at(i, &bytes);
            bytes.drain(p..(p + n).min(bytes.len()));
        }
        Edit::Duplicate(i, n) => {
            let p = at(i, &bytes);
            let chunk = bytes[p..(p + n).min(bytes.len())].to_vec();
            bytes.splice(p..p, chunk);
        }
        Edit::SwapLines(a, b) => {
            let mut lines: Vec<&[u8]> = bytes.split(|c| *c == b'\n').collect();
            let n = lines.len();
            lines.swap(a % n, b % n);
            bytes = lines.join(&b'\n');
        }
        Edit::Truncate(i) => bytes.truncate(at(i, &bytes)),
    }
    bytes
}

/// A valid file of the corpus with one to eight edits.
fn mutated(ext: &'static str, tokens: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let files = corpus(ext);
    assert!(!files.is_empty(), "no .{ext} files in testdata");
    (prop::sample::select(files), prop::collection::vec(edit_strategy(tokens), 1..8))
        .prop_map(|(file, edits)| edits.iter().fold(file, apply))
}

/// Brackets nested up to 3,000 deep around an op, closed or not; half the cases near the
/// readers' nesting limits (128 for both).
fn deep(open: &'static str, close: &'static str, op: &'static str) -> impl Strategy<Value = Vec<u8>> {
    (prop_oneof![0..300usize, 300..3000usize], any::<bool>()).prop_map(move |(depth, closed)| {
        let mut s = open.repeat(depth) + op;
        if closed {
            s += &close.repeat(depth);
        }
        s.into_bytes()
    })
}

const JSON_OP: &str = r#"{"process":0,"type":"invoke","f":"read","value":null}"#;
const EDN_OP: &str = "{:process 0 :type :invoke :f :read :value nil}";

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn jsonl_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) { jsonl_case(bytes)?; }

    #[test]
    fn jsonl_token_soup(bytes in soup(JSON_TOKENS)) { jsonl_case(bytes)?; }

    #[test]
    fn jsonl_mutated_valid_histories(bytes in mutated("jsonl", JSON_TOKENS)) { jsonl_case(bytes)?; }

    #[test]
    fn edn_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) { edn_case(bytes)?; }

    #[test]
    fn edn_token_soup(bytes in soup(EDN_TOKENS)) { edn_case(bytes)?; }

    #[test]
    fn edn_mutated_valid_histories(bytes in mutated("edn", EDN_TOKENS)) { edn_case(bytes)?; }
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn jsonl_deep_nesting(bytes in deep("[", "]", JSON_OP)) { jsonl_case(bytes)?; }

    #[test]
    fn edn_deep_nesting(bytes in prop_oneof![deep("[", "]", EDN_OP), deep("(", ")", EDN_OP), deep("#_ ", "", EDN_OP), deep("#{", "}", EDN_OP)]) {
        edn_case(bytes)?;
    }
}

/// The mutations must reach past the first line, or they test little beyond the arbitrary bytes:
/// a good share of mutated files must still parse, and a good share must fail further down.
#[test]
fn mutations_reach_deep_into_the_files() {
    let edn = parse_edn_with(EDN_VECTOR, EDN, Tuples::Auto).unwrap();
    assert_eq!(edn.len(), 5, "the extra EDN corpus file is valid");
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = mutated("jsonl", JSON_TOKENS);
    let (mut parsed, mut late_errors) = (0, 0);
    for _ in 0..400 {
        let bytes = strategy.new_tree(&mut runner).unwrap().current();
        match JsonlReader::new(bytes.as_slice(), JSONL).collect::<Result<Vec<_>, _>>() {
            Ok(_) => parsed += 1,
            Err(e) if e.line > 1 => late_errors += 1,
            Err(_) => {}
        }
    }
    assert!(parsed >= 20 && late_errors >= 100, "{parsed} parsed, {late_errors} errors past line 1, of 400");
}
