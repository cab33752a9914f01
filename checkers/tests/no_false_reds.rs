//! Regression tests for false reds: correct histories that the checkers once called violations
//! (or the reverse), each named after the bug. Every case is built by hand so its verdict is
//! certain, and each comes with a near twin of the opposite verdict, so a checker that answers
//! the same thing whatever the history fails here.
//!
//! The bugs: values compared as text (EDN maps in another key order, `1` vs `1.0`); the
//! dead-read pruning knowing no producer of `""`; the counter model adding with wrapping
//! arithmetic; an empty history judged valid.

use faultline_checkers::history::{parse_jsonl, History, NO_CLIENT_OPERATIONS};
use faultline_checkers::registry::{run_all, CheckerSpec, NAMES};
use faultline_checkers::{bank, convergence, counter, linear, set};
use faultline_checkers::{CheckOptions, CheckResult, Validity};
use serde_json::json;

/// A history from JSON lines, one call per `(process, f, key, invoke value, ok value)`, each
/// completed before the next is invoked (a sequential history), so its verdict is obvious.
fn sequential(calls: &[(u64, &str, Option<&str>, &str, &str)]) -> History {
    let mut text = String::new();
    for (p, f, key, input, output) in calls {
        let key = key.map_or(String::new(), |k| format!(r#","key":"{k}""#));
        text += &format!("{{\"process\":{p},\"type\":\"invoke\",\"f\":\"{f}\"{key},\"value\":{input}}}\n");
        text += &format!("{{\"process\":{p},\"type\":\"ok\",\"f\":\"{f}\"{key},\"value\":{output}}}\n");
    }
    parse_jsonl(&text, "test").unwrap()
}

fn linear_verdict(h: &History, model: &str) -> CheckResult {
    linear::check(h, model, &CheckOptions { threads: 1, ..CheckOptions::default() })
}

fn assert_verdict(r: &CheckResult, want: Validity, what: &str) {
    assert_eq!(r.valid, want, "{what}: {}", serde_json::to_string(r).unwrap());
}

fn reason(r: &CheckResult) -> &str {
    r.details.get("error").and_then(|e| e.as_str()).unwrap_or("")
}

#[test]
fn register_read_back_with_object_keys_in_another_order_is_linearizable() {
    for model in ["register", "cas-register", "kv"] {
        let h = sequential(&[(0, "write", Some("k"), r#"{"a":1,"b":2}"#, r#"{"a":1,"b":2}"#), (1, "read", Some("k"), "null", r#"{"b":2,"a":1}"#)]);
        assert_verdict(&linear_verdict(&h, model), Validity::Valid, model);
        let h = sequential(&[(0, "write", Some("k"), r#"{"a":1,"b":2}"#, r#"{"a":1,"b":2}"#), (1, "read", Some("k"), "null", r#"{"b":3,"a":1}"#)]);
        assert_verdict(&linear_verdict(&h, model), Validity::Invalid, model);
    }
    // A cas whose `from` spells the object the other way succeeds too.
    let h = sequential(&[
        (0, "write", None, r#"{"x":{"p":1,"q":[1,{"s":1,"r":2}]}}"#, r#"{"x":{"p":1,"q":[1,{"s":1,"r":2}]}}"#),
        (1, "cas", None, r#"[{"x":{"q":[1,{"r":2,"s":1}],"p":1}}, 5]"#, r#"[{"x":{"q":[1,{"r":2,"s":1}],"p":1}}, 5]"#),
        (2, "read", None, "null", "5"),
    ]);
    assert_verdict(&linear_verdict(&h, "cas-register"), Validity::Valid, "nested cas");
}

#[test]
fn register_written_one_read_one_point_zero_is_linearizable() {
    let h = sequential(&[(0, "write", None, "1", "1"), (1, "read", None, "null", "1.0"), (1, "cas", None, "[1.0, 2]", "[1.0, 2]"), (0, "read", None, "null", "2")]);
    assert_verdict(&linear_verdict(&h, "cas-register"), Validity::Valid, "1 vs 1.0");
    let h = sequential(&[(0, "write", None, "1", "1"), (1, "read", None, "null", "1.5")]);
    assert_verdict(&linear_verdict(&h, "register"), Validity::Invalid, "1 vs 1.5");
    // Integers beyond 2^53 stay exact: 2^63 + 1 is not 2^63.
    let h = sequential(&[(0, "write", None, "9223372036854775809", "9223372036854775809"), (1, "read", None, "null", "9223372036854775808")]);
    assert_verdict(&linear_verdict(&h, "register"), Validity::Invalid, "big integers");
}

/// The pruning judges a configuration after each step: a read of the missing key placed first
/// leaves the state `null` while a later read needs `""`, which (before the fix) nothing could
/// produce, so the only linearization was cut.
#[test]
fn append_empty_string_then_read_empty_string_is_linearizable() {
    let h = sequential(&[(1, "read", Some("k"), "null", "null"), (0, "append", Some("k"), r#""""#, r#""""#), (1, "read", Some("k"), "null", r#""""#)]);
    assert_verdict(&linear_verdict(&h, "kv"), Validity::Valid, "read null, append \"\", read \"\"");
    let h = sequential(&[(0, "append", Some("k"), r#""""#, r#""""#), (1, "read", Some("k"), "null", r#""""#)]);
    assert_verdict(&linear_verdict(&h, "kv"), Validity::Valid, "append \"\"");
    let h = sequential(&[(0, "append", Some("k"), r#""""#, r#""""#), (1, "read", Some("k"), "null", "null")]);
    assert_verdict(&linear_verdict(&h, "kv"), Validity::Invalid, "append \"\" creates the key");
    // Two appends then "" again: `"ab" ++ ""` must be producible from the empty suffix.
    let h = sequential(&[
        (0, "append", Some("k"), r#""ab""#, r#""ab""#),
        (1, "read", Some("k"), "null", r#""ab""#),
        (0, "append", Some("k"), r#""""#, r#""""#),
        (1, "read", Some("k"), "null", r#""ab""#),
    ]);
    assert_verdict(&linear_verdict(&h, "kv"), Validity::Valid, "ab ++ \"\"");
}

/// Concurrent, after a read of the missing key: a write of "x" overlaps an append of "" and a
/// read of "". The read of "" needs the append on a missing key, so the only order is append,
/// read, write, then the last read of "x"; the pruning must not refute it.
#[test]
fn append_empty_string_concurrent_with_a_write_is_linearizable() {
    let text = r#"{"process":3,"type":"invoke","f":"read","key":"k","value":null}
{"process":3,"type":"ok","f":"read","key":"k","value":null}
{"process":0,"type":"invoke","f":"write","key":"k","value":"x"}
{"process":1,"type":"invoke","f":"append","key":"k","value":""}
{"process":2,"type":"invoke","f":"read","key":"k","value":null}
{"process":1,"type":"ok","f":"append","key":"k","value":""}
{"process":2,"type":"ok","f":"read","key":"k","value":""}
{"process":0,"type":"ok","f":"write","key":"k","value":"x"}
{"process":2,"type":"invoke","f":"read","key":"k","value":null}
{"process":2,"type":"ok","f":"read","key":"k","value":"x"}
"#;
    let h = parse_jsonl(text, "t").unwrap();
    assert_verdict(&linear_verdict(&h, "kv"), Validity::Valid, "concurrent");
    // The last read returns "" after the write of "x" completed, and nothing else can make the
    // value "" again: invalid.
    let at = text.rfind(r#""value":"x"}"#).unwrap();
    let stale = parse_jsonl(&format!("{}\"value\":\"\"}}\n", &text[..at]), "t").unwrap();
    assert_verdict(&linear_verdict(&stale, "kv"), Validity::Invalid, "stale empty read");
}

#[test]
fn append_empty_list_and_objects_in_another_key_order_are_linearizable() {
    let h = sequential(&[(0, "append", Some("k"), "[]", "[]"), (1, "read", Some("k"), "null", "[[]]"), (0, "append", Some("k"), "[]", "[]"), (1, "read", Some("k"), "null", "[[],[]]")]);
    assert_verdict(&linear_verdict(&h, "kv"), Validity::Valid, "append []");
    let h = sequential(&[(0, "append", Some("k"), "[]", "[]"), (1, "read", Some("k"), "null", "[]")]);
    assert_verdict(&linear_verdict(&h, "kv"), Validity::Invalid, "append [] is a push, not a no-op");
    let h = sequential(&[(0, "write", Some("k"), "[]", "[]"), (1, "read", Some("k"), "null", "[]"), (0, "append", Some("k"), r#"{"a":1,"b":2}"#, r#"{"a":1,"b":2}"#), (1, "read", Some("k"), "null", r#"[{"b":2,"a":1.0}]"#)]);
    assert_verdict(&linear_verdict(&h, "kv"), Validity::Valid, "append object");
}

/// Two adds of i64::MAX: the sum is 2^64 - 2, which a wrapping i64 turned into -2.
const I64_MAX: &str = "9223372036854775807";

#[test]
fn counter_adds_beyond_u64_agree_between_the_model_and_the_counter_checker() {
    let h = |read: &str| sequential(&[(0, "add", None, I64_MAX, I64_MAX), (1, "add", None, I64_MAX, I64_MAX), (2, "read", None, "null", read)]);
    for (read, want) in [("-2", Validity::Invalid), ("18446744073709551614", Validity::Valid), ("18446744073709551615", Validity::Invalid)] {
        assert_verdict(&linear_verdict(&h(read), "counter"), want, &format!("linearizable counter, read {read}"));
        assert_verdict(&counter::check(&h(read)), want, &format!("counter checker, read {read}"));
    }
}

#[test]
fn counter_delta_that_is_not_an_exact_integer_is_unknown() {
    for (delta, why) in [("1.5", "not an integer"), ("1e30", "beyond 2^53"), (r#""3""#, "not a number")] {
        let h = sequential(&[(0, "add", None, delta, delta), (1, "read", None, "null", "0")]);
        for r in [linear_verdict(&h, "counter"), counter::check(&h)] {
            assert_verdict(&r, Validity::Unknown, delta);
            assert!(reason(&r).contains(why), "{delta}: {}", reason(&r));
        }
    }
    // A float with no fraction below 2^53 is that integer.
    let h = sequential(&[(0, "add", None, "2.0", "2.0"), (1, "read", None, "null", "2")]);
    assert_verdict(&counter::check(&h), Validity::Valid, "2.0");
    assert_verdict(&linear_verdict(&h, "counter"), Validity::Valid, "2.0");
}

fn empty_histories() -> Vec<(&'static str, History)> {
    let nemesis = r#"{"process":"nemesis","type":"info","f":"start-partition","value":{"fault":"partition","phase":"start"}}"#;
    vec![("empty", History::default()), ("nemesis only", parse_jsonl(nemesis, "n").unwrap())]
}

#[test]
fn empty_history_is_unknown_for_every_checker() {
    let specs: Vec<CheckerSpec> = NAMES.iter().map(|n| CheckerSpec::named(n)).collect();
    for (what, h) in empty_histories() {
        let report = run_all(&specs, &h, &CheckOptions::default());
        assert_eq!(report.valid, Validity::Unknown, "{what}");
        for (name, r) in &report.results {
            assert_eq!(reason(r), NO_CLIENT_OPERATIONS, "{what}: {name}");
        }
        let direct = [
            linear_verdict(&h, "register"),
            counter::check(&h),
            set::check(&h),
            convergence::check(&h, convergence::Kind::Auto),
            bank::check(&h, &bank::Params::default()),
        ];
        for r in direct {
            assert_verdict(&r, Validity::Unknown, what);
            assert_eq!(reason(&r), NO_CLIENT_OPERATIONS, "{what}");
        }
    }
    // One client operation is enough to be judged.
    let h = sequential(&[(0, "write", None, "1", "1")]);
    assert_verdict(&linear_verdict(&h, "register"), Validity::Valid, "one write");
}

#[test]
fn set_elements_compare_as_values() {
    let h = sequential(&[(0, "add", None, "1", "1"), (0, "add", None, r#"{"a":1,"b":2}"#, r#"{"a":1,"b":2}"#), (1, "read", None, "null", r#"[1.0, {"b":2,"a":1}]"#)]);
    let r = set::check(&h);
    assert_verdict(&r, Validity::Valid, "set");
    assert_eq!((r.details["lost_count"].clone(), r.details["unexpected_count"].clone()), (json!(0), json!(0)));
    assert_verdict(&linear_verdict(&h, "set"), Validity::Valid, "set model");
    let h = sequential(&[(0, "add", None, "1", "1"), (1, "read", None, "null", "[1, 1.0]")]);
    assert_eq!(set::check(&h).details["duplicated_count"], json!(1), "1 and 1.0 are one element");
    let h = sequential(&[(0, "add", None, "1", "1"), (1, "read", None, "null", "[1.5]")]);
    assert_verdict(&set::check(&h), Validity::Invalid, "1.5 is not 1");
    assert_verdict(&linear_verdict(&h, "set"), Validity::Invalid, "set model, 1.5");
}

fn final_reads(h: &mut History, values: &[&str]) {
    for (i, v) in values.iter().enumerate() {
        let text = format!(
            "{{\"process\":{p},\"type\":\"invoke\",\"f\":\"read\",\"value\":null,\"final\":true,\"node\":\"n{i}\"}}\n{{\"process\":{p},\"type\":\"ok\",\"f\":\"read\",\"value\":{v},\"final\":true,\"node\":\"n{i}\"}}",
            p = 100 + i
        );
        h.ops.extend(parse_jsonl(&text, "f").unwrap().ops);
    }
    *h = History::from_ops(std::mem::take(&mut h.ops));
}

#[test]
fn convergence_compares_values_not_text() {
    let mut h = sequential(&[(0, "write", None, r#"{"a":1,"b":[2,3]}"#, r#"{"a":1,"b":[2,3]}"#)]);
    final_reads(&mut h, &[r#"{"b":[2,3],"a":1}"#, r#"{"a":1.0,"b":[2,3.0]}"#]);
    assert_verdict(&convergence::check(&h, convergence::Kind::Register), Validity::Valid, "register");
    let mut h = sequential(&[(0, "write", None, r#"{"a":1}"#, r#"{"a":1}"#)]);
    final_reads(&mut h, &[r#"{"a":1}"#, r#"{"a":2}"#]);
    assert_verdict(&convergence::check(&h, convergence::Kind::Register), Validity::Invalid, "register disagree");
    let mut h = sequential(&[(0, "add", None, "3", "3")]);
    final_reads(&mut h, &["3", "3.0"]);
    assert_verdict(&convergence::check(&h, convergence::Kind::Counter), Validity::Valid, "counter");
    let mut h = sequential(&[(0, "add", None, "1.5", "1.5")]);
    final_reads(&mut h, &["0", "0"]);
    let r = convergence::check(&h, convergence::Kind::Counter);
    assert_verdict(&r, Validity::Unknown, "counter, fractional delta");
    assert!(reason(&r).contains("not an integer"), "{}", reason(&r));
}

#[test]
fn bank_balances_compare_as_values_and_never_wrap() {
    let reads = |values: &[&str]| {
        let calls: Vec<(u64, &str, Option<&str>, &str, &str)> = values.iter().map(|v| (0, "read", None, "null", *v)).collect();
        sequential(&calls)
    };
    let params = bank::Params::from_json(json!({"total": 10, "accounts": [0, 1.0]}).as_object().unwrap()).unwrap();
    assert_verdict(&bank::check(&reads(&[r#"{"0": 5.0, "1": 5}"#]), &params), Validity::Valid, "5.0 + 5");
    assert_verdict(&bank::check(&reads(&[r#"{"0": 5.5, "1": 4.5}"#]), &params), Validity::Invalid, "fractions");
    // Sums beyond u64 are exact: two reads of 2 * (2^64 - 1) agree, one of 2^64 - 2 does not.
    let u = "18446744073709551615";
    let r = bank::check(&reads(&[&format!(r#"{{"0": {u}, "1": {u}}}"#), &format!(r#"{{"0": {u}, "1": {u}}}"#), r#"{"0": 18446744073709551614, "1": 0}"#]), &bank::Params::default());
    assert_verdict(&r, Validity::Invalid, "big balances");
    assert_eq!(r.details["total"], json!("36893488147419103230"));
    let r = bank::check(&reads(&[r#"{"0": 1e30, "1": 0}"#]), &bank::Params::default());
    assert_verdict(&r, Validity::Unknown, "inexact balance");
}
