//! The explanation page: self-contained, and everything from the history escaped.

use faultline_checkers::history::{History, Op, OpType};
use faultline_checkers::linear;
use faultline_checkers::{CheckOptions, Key, Validity};
use serde_json::{json, Value};
use std::sync::Arc;

fn stale_read_with_nasty_values() -> History {
    let k = || Key::Str(Arc::from("<b>key</b>"));
    let evil = json!("<script>alert(1)</script>");
    History::from_ops(vec![
        Op::new(0, OpType::Invoke, "write", evil.clone()).with_key(k()),
        Op::new(0, OpType::Ok, "write", evil.clone()).with_key(k()),
        Op::new(1, OpType::Invoke, "write", json!("x")).with_key(k()),
        Op::new(2, OpType::Invoke, "read", Value::Null).with_key(k()),
        Op::new(1, OpType::Ok, "write", json!("x")).with_key(k()),
        Op::new(2, OpType::Ok, "read", json!("x")).with_key(k()),
        Op::new(2, OpType::Invoke, "read", Value::Null).with_key(k()),
        Op::new(2, OpType::Ok, "read", evil).with_key(k()),
    ])
}

#[test]
fn page_escapes_history_values_and_marks_the_anomaly() {
    let h = stale_read_with_nasty_values();
    let r = linear::check(&h, "kv", &CheckOptions::default());
    assert_eq!(r.valid, Validity::Invalid, "{r:?}");
    let page = linear::html::render(&h, &r, "run <1> & co");
    assert!(!page.contains("<script>"), "unescaped script in the page");
    assert!(!page.contains("<b>key"), "unescaped key in the page");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "the value should appear escaped");
    assert!(page.contains("run &lt;1&gt; &amp; co"));
    assert!(page.contains("#ef4444"), "the failing op is highlighted");
    assert!(page.contains("#86efac"), "the prefix is marked");
    assert!(!page.contains("src=") && !page.contains("<link") && !page.contains("@import"), "no network");
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
}

#[test]
fn anomaly_json_names_the_op_prefix_and_states() {
    let h = stale_read_with_nasty_values();
    let r = linear::check(&h, "kv", &CheckOptions::default());
    let a = &r.details["anomalies"][0];
    assert_eq!(a["key"], json!("<b>key</b>"));
    // The last read (invoke at event 6) cannot be placed: "x" overwrote the value it returns.
    assert_eq!(a["op"]["invoke_index"], json!(6));
    assert_eq!(a["op"]["f"], json!("read"));
    // The search stops as soon as the read of the overwritten value can no longer be satisfied:
    // after the first write, every next step overwrites it.
    let prefix = &a["longest_prefixes"][0];
    let n = prefix["length"].as_u64().unwrap() as usize;
    assert!(n >= 1, "{prefix}");
    assert_eq!(prefix["ops"][0]["state"], json!("<script>alert(1)</script>"));
    assert_eq!(prefix["ops"].as_array().unwrap().len(), n);
    assert!(a["explanation"].as_str().unwrap().contains("cannot be placed"));
}

#[test]
fn valid_and_large_histories_render() {
    let mut ops = Vec::new();
    for i in 0..5000u64 {
        let p = i % 7;
        ops.push(Op::new(p, OpType::Invoke, "write", json!(i)).with_key(Key::Int(1)));
        ops.push(Op::new(p, OpType::Ok, "write", json!(i)).with_key(Key::Int(1)));
    }
    ops.push(Op::new(9, OpType::Invoke, "read", Value::Null).with_key(Key::Int(1)));
    ops.push(Op::new(9, OpType::Ok, "read", json!(3)).with_key(Key::Int(1)));
    let h = History::from_ops(ops);
    let r = linear::check(&h, "kv", &CheckOptions::default());
    assert_eq!(r.valid, Validity::Invalid);
    let page = linear::html::render(&h, &r, "big");
    assert!(page.len() < 200_000, "page of {} bytes: only the anomaly window should be drawn", page.len());
    assert!(page.matches("<rect").count() <= 150);
    let ok = linear::check(&History::from_ops(h.ops[..10].to_vec()), "kv", &CheckOptions::default());
    assert!(linear::html::render(&h, &ok, "ok").contains("linearizable"));
}
