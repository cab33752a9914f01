//! Jepsen EDN import on histories shaped like the ones Jepsen's store writes.

use faultline_checkers::edn::{parse_edn, parse_edn_with, Tuples};
use faultline_checkers::history::{Key, OpType, Process};
use faultline_checkers::registry::{run_one, CheckerSpec};
use faultline_checkers::{CheckOptions, Validity};
use serde_json::json;

/// An independent cas-register history as Jepsen 0.3 prints it, with a nemesis, an
/// `:error`, tagged tuples, a tagged op record and a comment.
const INDEPENDENT: &str = r#"; written by jepsen.store
{:type :invoke, :f :write, :value #jepsen.independent/tuple [0 3], :process 0, :time 1000, :index 0}
{:type :invoke, :f :read, :value #jepsen.independent/tuple [0 nil], :process 1, :time 1200, :index 1}
{:type :info, :f :start-partition, :value [:isolated {"n1" #{"n2" "n3"}}], :process :nemesis, :time 1300, :index 2}
{:type :ok, :f :write, :value #jepsen.independent/tuple [0 3], :process 0, :time 2000, :index 3}
{:type :ok, :f :read, :value #jepsen.independent/tuple [0 3], :process 1, :time 2100, :index 4}
{:type :invoke, :f :cas, :value #jepsen.independent/tuple [1 [nil 4]], :process 0, :time 2500, :index 5}
{:type :fail, :f :cas, :value #jepsen.independent/tuple [1 [nil 4]], :process 0, :time 2600, :error :precondition, :index 6}
#jepsen.history.Op{:index 7, :time 2700, :type :invoke, :process 2, :f :read, :value #jepsen.independent/tuple ["k2" nil]}
#jepsen.history.Op{:index 8, :time 2800, :type :ok, :process 2, :f :read, :value #jepsen.independent/tuple ["k2" nil]}
"#;

#[test]
fn reads_a_jepsen_independent_history() {
    let h = parse_edn(INDEPENDENT, "history.edn").unwrap();
    assert_eq!(h.len(), 9);
    let nemesis = &h.ops[2];
    assert_eq!((nemesis.process, nemesis.op_type, &*nemesis.f), (Process::Nemesis, OpType::Info, "start-partition"));
    assert_eq!(nemesis.value, json!(["isolated", {"n1": ["n2", "n3"]}]));
    assert_eq!((h.ops[0].key.clone(), h.ops[0].value.clone(), h.ops[0].time), (Some(Key::Int(0)), json!(3), 1000));
    assert_eq!((h.ops[5].key.clone(), h.ops[5].value.clone()), (Some(Key::Int(1)), json!([null, 4])));
    assert_eq!(h.ops[6].error.as_deref(), Some("precondition"));
    assert_eq!(h.ops[8].key, Some(Key::Str("k2".into())));
    assert_eq!(h.calls().unwrap().len(), 4);
}

/// Jepsen usually prints tuples as plain vectors; `Tuples::Auto` recognises a whole history of
/// them, and leaves a plain cas-register history alone.
#[test]
fn untagged_tuples_only_when_asked_and_unambiguous() {
    let untagged = INDEPENDENT.replace("#jepsen.independent/tuple ", "");
    let plain = parse_edn(&untagged, "h.edn").unwrap();
    assert_eq!((plain.ops[0].key.clone(), plain.ops[0].value.clone()), (None, json!([0, 3])));
    let split = parse_edn_with(&untagged, "h.edn", Tuples::Auto).unwrap();
    assert_eq!((split.ops[0].key.clone(), split.ops[0].value.clone()), (Some(Key::Int(0)), json!(3)));
    assert_eq!(split.ops[5].value, json!([null, 4]));

    let register = "{:type :invoke :f :cas :value [1 2] :process 0}\n{:type :ok :f :cas :value [1 2] :process 0}\n{:type :invoke :f :write :value 5 :process 1}\n";
    let h = parse_edn_with(register, "r.edn", Tuples::Auto).unwrap();
    assert_eq!((h.ops[0].key.clone(), h.ops[0].value.clone()), (None, json!([1, 2])));
    let e = parse_edn_with(register, "r.edn", Tuples::Always).unwrap_err();
    assert_eq!(e.line, 1, "{e}");
}

#[test]
fn a_jepsen_set_history_checks() {
    let text = r#"[{:type :invoke, :f :add, :value 0, :process 0, :time 10}
 {:type :ok, :f :add, :value 0, :process 0, :time 20}
 {:type :invoke, :f :add, :value 1, :process 1, :time 30}
 {:type :info, :f :add, :value 1, :process 1, :time 40, :error :timeout}
 {:type :invoke, :f :read, :value nil, :process 0, :time 50}
 {:type :ok, :f :read, :value #{0 1}, :process 0, :time 60}
 {:type :invoke, :f :read, :value nil, :process 0, :time 70}
 {:type :ok, :f :read, :value #{1}, :process 0, :time 80}]"#;
    let h = parse_edn(text, "set.edn").unwrap();
    let r = run_one(&CheckerSpec { name: "set".into(), model: None, params: Default::default() }, &h, &CheckOptions::default());
    assert_eq!(r.valid, Validity::Invalid, "{r:?}");
    assert_eq!(r.details["lost"][0]["element"], json!(0));
}

#[test]
fn malformed_edn_names_the_line() {
    // Line 4 opens a map that a `]` closes.
    let text = "{:type :invoke, :f :read, :process 0, :value nil}\n{:type :ok, :f :read, :process 0, :value 1}\n\n{:type :invoke, :f :read, :process 1, :value [1 2}\n";
    let e = parse_edn(text, "history.edn").unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("history.edn", 4), "{e}");
    assert!(e.to_string().starts_with("history.edn:4: "), "{e}");

    // A well-formed map that is not an op: missing :type, on line 3 of a vector.
    let text = "[{:type :invoke, :f :read, :process 0}\n {:type :ok, :f :read, :process 0}\n {:f :read, :process 1}]";
    let e = parse_edn(text, "v.edn").unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert!(e.message.contains(":type"), "{e}");

    // Invalid EDN inside an op (a map with an odd number of forms), named at its own line.
    let text = "{:type :invoke, :f :read, :process 0}\n{:type :ok, :f :read,\n :process}\n";
    let e = parse_edn(text, "odd.edn").unwrap_err();
    assert_eq!(e.line, 3, "{e}");
}

/// Knossos's models from Jepsen EDN through the registry, by name and guessed: a
/// multi-register txn history (`[[:r :x nil] [:w :x 1]]`), a queue, a mutex.
#[test]
fn knossos_models_read_from_edn_and_run_by_name() {
    let txn = r#"{:type :invoke, :f :txn, :value [[:r :x nil] [:w :x 1]], :process 0, :time 1}
{:type :ok, :f :txn, :value [[:r :x nil] [:w :x 1]], :process 0, :time 2}
{:type :invoke, :f :txn, :value [[:r :x nil] [:r :y nil]], :process 1, :time 3}
{:type :ok, :f :txn, :value [[:r :x 1] [:r :y nil]], :process 1, :time 4}
"#;
    let queue = r#"{:type :invoke, :f :enqueue, :value 1, :process 0}
{:type :ok, :f :enqueue, :value 1, :process 0}
{:type :invoke, :f :dequeue, :value nil, :process 1}
{:type :ok, :f :dequeue, :value 1, :process 1}
{:type :invoke, :f :dequeue, :value nil, :process 1}
{:type :ok, :f :dequeue, :value 1, :process 1}
"#;
    let mutex = r#"{:type :invoke, :f :acquire, :process 0}
{:type :ok, :f :acquire, :process 0}
{:type :invoke, :f :acquire, :process 1}
{:type :info, :f :acquire, :process 1}
{:type :invoke, :f :release, :process 0}
{:type :ok, :f :release, :process 0}
"#;
    let opts = CheckOptions::default();
    for (text, model, expected) in [
        (txn, "multi-register", Validity::Valid),
        (queue, "fifo-queue", Validity::Invalid),
        (queue, "unordered-queue", Validity::Invalid),
        (mutex, "mutex", Validity::Valid),
    ] {
        let h = parse_edn(text, "h.edn").unwrap();
        let named = run_one(&CheckerSpec::named("linearizable").with_model(model), &h, &opts);
        assert_eq!(named.valid, expected, "{model}: {named:?}");
        let guessed = run_one(&CheckerSpec::named("linearizable"), &h, &opts);
        if model != "unordered-queue" {
            assert_eq!(guessed.details["model"], json!(model), "{guessed:?}");
            assert_eq!(guessed.valid, expected);
        }
    }
    // The txn's value is the list of micro-operations, keywords as strings.
    let h = parse_edn(txn, "h.edn").unwrap();
    assert_eq!(h.ops[3].value, json!([["r", "x", 1], ["r", "y", null]]));
}
