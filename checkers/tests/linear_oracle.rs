//! Differential test of the linearizability checker against a brute-force oracle.
//!
//! Histories of at most eight operations are generated from a simulated concurrent execution
//! (each operation takes effect at a random point between its invoke and its completion, or never
//! when it fails or its outcome is lost), then a third of them are corrupted (an output changed,
//! an outcome flipped) so both verdicts occur. The oracle tries every order consistent with real
//! time, every subset of the unknown-outcome operations, and applies its own, independent
//! sequential semantics over JSON values. 2,000 histories per model, 10,000 in all.
//!
//! Values are drawn from the edge cases of value equality, so those are generated rather than
//! only hand-written: the empty string and the empty list (also as append arguments), `1` and
//! `1.0`, objects (with a nested list) whose keys come in either order. Every value a history
//! records is spelled at random ([`spell`]): a number with no fraction as an integer or a float,
//! an object's keys in either order. The oracle compares values with its own structural
//! equality ([`same`]), not with the checker's canonical text.

use faultline_checkers::history::{History, Op, OpType, Outcome};
use faultline_checkers::linear;
use faultline_checkers::{Call, CheckOptions, Key, Validity};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const MODELS: &[&str] =
    &["register", "cas-register", "kv", "counter", "set", "mutex", "fifo-queue", "unordered-queue", "multi-register", "string-kv"];

/// The oracle's value equality: structural, numbers by their value (the generated numbers are
/// small, so `f64` holds them exactly), objects as maps whatever the order of their keys.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}

/// Whether two lists hold the same elements, ignoring order and repeats.
fn same_set(a: &[Value], b: &[Value]) -> bool {
    a.iter().all(|x| b.iter().any(|y| same(x, y))) && b.iter().all(|y| a.iter().any(|x| same(x, y)))
}

/// A counter's integer (generated numbers are small integers, perhaps spelled as floats).
fn int(v: &Value) -> i64 {
    let f = v.as_f64().unwrap_or(0.0);
    assert_eq!(f.fract(), 0.0, "oracle: the generator makes only integers, got {v}");
    f as i64
}

/// The oracle's sequential semantics: one JSON value per key (`null` = missing).
fn apply(model: &str, state: &Value, f: &str, input: &Value, output: Option<&Value>) -> Option<Value> {
    match (model, f) {
        // A missing key is the empty string; appends concatenate.
        ("string-kv", "get") => {
            let current = if state.is_null() { json!("") } else { state.clone() };
            match output {
                Some(o) => (o == &current).then_some(current),
                None => Some(current),
            }
        }
        ("string-kv", "put") => Some(input.clone()),
        ("string-kv", "append") => Some(json!(format!("{}{}", state.as_str().unwrap_or(""), input.as_str().unwrap()))),
        ("mutex", "acquire") => (state != &json!(true)).then(|| json!(true)),
        ("mutex", "release") => (state == &json!(true)).then(|| json!(false)),
        (_, "enqueue") => {
            let mut q = state.as_array().cloned().unwrap_or_default();
            q.push(input.clone());
            Some(Value::Array(q))
        }
        (_, "dequeue") => {
            let mut q = state.as_array().cloned().unwrap_or_default();
            match output {
                Some(Value::Null) => q.is_empty().then(|| state.clone()),
                None if q.is_empty() => Some(state.clone()),
                // The simulation's own effect (the oracle never sees an unknown dequeue on an
                // unordered queue: the generator makes none). FIFO: the oldest element.
                None => {
                    q.remove(0);
                    Some(Value::Array(q))
                }
                Some(v) => {
                    let at = if model == "fifo-queue" { (!q.is_empty() && same(&q[0], v)).then_some(0) } else { q.iter().position(|x| same(x, v)) };
                    at.map(|i| {
                        q.remove(i);
                        Value::Array(q)
                    })
                }
            }
        }
        ("multi-register", "txn") => {
            // Registers by the text of their key (the generated keys are strings).
            let mut m = state.as_object().cloned().unwrap_or_default();
            for micro in output.unwrap_or(input).as_array().unwrap() {
                let (op, k, v) = (micro[0].as_str().unwrap(), micro[1].as_str().unwrap(), &micro[2]);
                let current = m.get(k).cloned().unwrap_or(Value::Null);
                match op {
                    "r" if output.is_some() && !same(&current, v) => return None,
                    "r" => {}
                    _ if v.is_null() => {
                        m.remove(k);
                    }
                    _ => {
                        m.insert(k.to_string(), v.clone());
                    }
                }
            }
            Some(Value::Object(m))
        }
        ("counter", "add") => Some(json!(int(state) + int(input))),
        ("counter", "read") => match output {
            Some(o) => (int(o) == int(state)).then(|| state.clone()),
            None => Some(state.clone()),
        },
        ("set", "add") => {
            let mut s = state.as_array().cloned().unwrap_or_default();
            if !s.iter().any(|x| same(x, input)) {
                s.push(input.clone());
            }
            Some(Value::Array(s))
        }
        ("set", "read") => match output {
            Some(o) => same_set(o.as_array().unwrap(), state.as_array().map_or(&[], |a| a.as_slice())).then(|| state.clone()),
            None => Some(state.clone()),
        },
        (_, "read") => match output {
            Some(o) => same(o, state).then(|| state.clone()),
            None => Some(state.clone()),
        },
        (_, "write") => Some(input.clone()),
        (_, "cas") => {
            let (from, to) = (&input[0], &input[1]);
            (!state.is_null() && same(state, from)).then(|| to.clone())
        }
        (_, "append") => match (state, input) {
            (Value::Null, Value::String(s)) => Some(json!(s)),
            (Value::Null, x) => Some(json!([x])),
            (Value::String(a), Value::String(b)) => Some(json!(format!("{a}{b}"))),
            (Value::Array(a), x) => {
                let mut a = a.clone();
                a.push(x.clone());
                Some(Value::Array(a))
            }
            _ => None,
        },
        _ => panic!("oracle: unexpected {model} {f}"),
    }
}

fn key_name(k: &Option<Key>) -> String {
    k.as_ref().map_or("-".to_string(), |k| k.to_string())
}

/// Tries every real-time-respecting order of the non-failed calls; unknown ones may be skipped.
fn oracle(model: &str, calls: &[Call]) -> bool {
    let calls: Vec<&Call> = calls.iter().filter(|c| c.outcome != Outcome::Fail).collect();
    let mut placed = vec![false; calls.len()];
    let mut states = BTreeMap::new();
    search(model, &calls, &mut placed, &mut states)
}

fn search(model: &str, calls: &[&Call], placed: &mut Vec<bool>, states: &mut BTreeMap<String, Value>) -> bool {
    if calls.iter().zip(placed.iter()).all(|(c, p)| *p || !c.is_ok()) {
        return true;
    }
    for i in 0..calls.len() {
        if placed[i] {
            continue;
        }
        // Every ok call that returned before this one was invoked must already be placed.
        let blocked = calls.iter().enumerate().any(|(j, c)| !placed[j] && c.complete_index.is_some_and(|e| c.is_ok() && e < calls[i].invoke_index));
        if blocked {
            continue;
        }
        let key = key_name(&calls[i].key);
        let state = states.get(&key).cloned().unwrap_or(Value::Null);
        let Some(next) = apply(model, &state, &calls[i].f, &calls[i].input, calls[i].output()) else { continue };
        placed[i] = true;
        states.insert(key.clone(), next);
        let found = search(model, calls, placed, states);
        placed[i] = false;
        states.insert(key, state);
        if found {
            return true;
        }
    }
    false
}

/// The values a register, cas-register or kv history writes: the edge cases of value equality.
fn register_value(rng: &mut ChaCha8Rng) -> Value {
    let pool = [json!(0), json!(1), json!(""), json!([]), json!({"a": 1, "b": []}), json!({"a": 2, "b": []})];
    pool[rng.gen_range(0..pool.len())].clone()
}

/// What a kv history appends: strings (the empty one too) and values that become list elements.
fn append_value(rng: &mut ChaCha8Rng) -> Value {
    let pool = [json!(""), json!("a"), json!("b"), json!(1), json!([]), json!({"a": 1, "b": []})];
    pool[rng.gen_range(0..pool.len())].clone()
}

/// What a queue history enqueues (repeats possible).
fn queue_value(rng: &mut ChaCha8Rng) -> Value {
    let pool = [json!(1), json!(2), json!(3), json!(""), json!([1]), json!({"a": 1, "b": []})];
    pool[rng.gen_range(0..pool.len())].clone()
}

/// A multi-register transaction of one to three micro-operations on registers `x` and `y`.
fn txn_value(rng: &mut ChaCha8Rng) -> Value {
    let n = rng.gen_range(1..=3);
    let micro = |rng: &mut ChaCha8Rng| {
        let k = ["x", "y"][rng.gen_range(0..2)];
        if rng.gen_bool(0.5) {
            json!(["r", k, null])
        } else {
            let v = rng.gen_range(1..=3);
            json!(["w", k, v])
        }
    };
    Value::Array((0..n).map(|_| micro(rng)).collect())
}

/// A transaction with its reads answered from `state` (a map of registers), in order.
fn filled_txn(state: &Value, txn: &Value) -> Value {
    let mut m = state.as_object().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for micro in txn.as_array().unwrap() {
        let (op, k) = (micro[0].as_str().unwrap(), micro[1].as_str().unwrap());
        if op == "r" {
            out.push(json!(["r", k, m.get(k).cloned().unwrap_or(Value::Null)]));
        } else {
            m.insert(k.to_string(), micro[2].clone());
            out.push(micro.clone());
        }
    }
    Value::Array(out)
}

/// What a set history adds.
fn set_element(rng: &mut ChaCha8Rng) -> Value {
    let pool = [json!(0), json!(1), json!(2), json!(""), json!([]), json!({"a": 1, "b": []})];
    pool[rng.gen_range(0..pool.len())].clone()
}

/// The same value, spelled at random: an integer perhaps as a float (`1.0`), an object's keys
/// perhaps in the other order (serde_json keeps insertion order here), recursively.
fn spell(v: &Value, rng: &mut ChaCha8Rng) -> Value {
    match v {
        Value::Number(n) if rng.gen_bool(0.3) => n.as_i64().map_or_else(|| v.clone(), |i| json!(i as f64)),
        Value::Array(items) => Value::Array(items.iter().map(|x| spell(x, rng)).collect()),
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            if rng.gen_bool(0.5) {
                entries.reverse();
            }
            Value::Object(entries.into_iter().map(|(k, x)| (k.clone(), spell(x, rng))).collect())
        }
        _ => v.clone(),
    }
}

/// A random small history for `model`, from a simulated execution, sometimes corrupted.
fn generate(model: &str, seed: u64) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n_ops = rng.gen_range(1..=8);
    let n_procs = rng.gen_range(1..=4u64);
    let keys: &[&str] = if model == "kv" || model == "string-kv" { &["a", "b"] } else { &[] };
    let unique = rng.gen_bool(0.5);
    // Per op: (process, f, key, input); performed per process in order.
    let mut todo: Vec<Vec<(String, Option<Key>, Value)>> = vec![Vec::new(); n_procs as usize];
    for _ in 0..n_ops {
        let p = rng.gen_range(0..n_procs) as usize;
        let key = (!keys.is_empty()).then(|| Key::Str(Arc::from(keys[rng.gen_range(0..keys.len())])));
        let (f, input) = match (model, rng.gen_range(0..4)) {
            ("mutex", r) => (if r % 2 == 0 { "acquire" } else { "release" }.to_string(), Value::Null),
            ("fifo-queue" | "unordered-queue", 0 | 1) => ("dequeue".to_string(), Value::Null),
            // Half the queue histories enqueue unique elements (where the FIFO ordering hint applies).
            ("fifo-queue" | "unordered-queue", _) if unique => ("enqueue".to_string(), json!(100 + todo.iter().map(Vec::len).sum::<usize>())),
            ("fifo-queue" | "unordered-queue", _) => ("enqueue".to_string(), queue_value(&mut rng)),
            ("multi-register", _) => ("txn".to_string(), txn_value(&mut rng)),
            ("string-kv", 0) => ("get".to_string(), Value::Null),
            ("string-kv", 1) => ("put".to_string(), json!(["", "a", "ab"][rng.gen_range(0..3)])),
            ("string-kv", _) => ("append".to_string(), json!(["", "a", "b"][rng.gen_range(0..3)])),
            (_, 0) | ("register", 1) => ("read".to_string(), Value::Null),
            ("counter", _) => ("add".to_string(), json!(rng.gen_range(-1..3))),
            ("set", _) => ("add".to_string(), set_element(&mut rng)),
            ("register", _) => ("write".to_string(), register_value(&mut rng)),
            ("cas-register", 1) | ("kv", 1) => {
                let from = if rng.gen_bool(0.2) { Value::Null } else { register_value(&mut rng) };
                ("cas".to_string(), json!([from, register_value(&mut rng)]))
            }
            ("kv", 2) => ("append".to_string(), append_value(&mut rng)),
            _ => ("write".to_string(), register_value(&mut rng)),
        };
        todo[p].push((f, key, input));
    }
    let mut states: BTreeMap<String, Value> = BTreeMap::new();
    let mut ops = Vec::new();
    // Per process: index of the next op, and the in-flight op: (op, effect applied?, output).
    let mut next = vec![0usize; n_procs as usize];
    let mut inflight: Vec<Option<(usize, Option<Option<Value>>)>> = vec![None; n_procs as usize];
    loop {
        let candidates: Vec<usize> =
            (0..n_procs as usize).filter(|&p| inflight[p].is_some() || next[p] < todo[p].len()).collect();
        if candidates.is_empty() {
            break;
        }
        let p = candidates[rng.gen_range(0..candidates.len())];
        match inflight[p].take() {
            None => {
                let i = next[p];
                next[p] += 1;
                let (f, key, input) = &todo[p][i];
                let mut op = Op::new(p as u64, OpType::Invoke, f, spell(input, &mut rng));
                op.key = key.clone();
                ops.push(op);
                inflight[p] = Some((i, None));
            }
            Some((i, None)) if rng.gen_bool(0.6) => {
                // Take effect now, when the model allows it; an impossible cas fails.
                let (f, key, input) = &todo[p][i];
                let k = key_name(key);
                let state = states.get(&k).cloned().unwrap_or(Value::Null);
                match apply(model, &state, f, input, None) {
                    Some(next_state) => {
                        let out = match (model, f.as_str()) {
                            ("counter", "read") if state.is_null() => Some(json!(0)),
                            ("set", "read") if state.is_null() => Some(json!([])),
                            (_, "read") => Some(state.clone()),
                            ("string-kv", "get") => Some(if state.is_null() { json!("") } else { state.clone() }),
                            (_, "dequeue") => Some(state.as_array().and_then(|q| q.first().cloned()).unwrap_or(Value::Null)),
                            (_, "txn") => Some(filled_txn(&state, input)),
                            _ => None,
                        };
                        states.insert(k, next_state);
                        inflight[p] = Some((i, Some(out)));
                    }
                    None => {
                        let mut op = Op::new(p as u64, OpType::Fail, f, spell(input, &mut rng));
                        op.key = key.clone();
                        ops.push(op);
                    }
                }
            }
            Some((i, effect)) => {
                let (f, key, input) = &todo[p][i];
                // Which element an unknown dequeue took from an unordered queue is not
                // determined, and the checker says so (unknown): generate none.
                let definite = model == "unordered-queue" && f == "dequeue";
                let (t, value) = match &effect {
                    Some(out) if definite => (OpType::Ok, spell(out.as_ref().unwrap_or(input), &mut rng)),
                    None if definite => (OpType::Fail, spell(input, &mut rng)),
                    Some(out) if rng.gen_bool(0.85) => (OpType::Ok, spell(out.as_ref().unwrap_or(input), &mut rng)),
                    Some(_) => (OpType::Info, spell(input, &mut rng)),
                    None if rng.gen_bool(0.5) => (OpType::Fail, spell(input, &mut rng)),
                    None if rng.gen_bool(0.5) => (OpType::Info, spell(input, &mut rng)),
                    None => {
                        // Not yet taken effect: keep it in flight.
                        inflight[p] = Some((i, effect));
                        continue;
                    }
                };
                let mut op = Op::new(p as u64, t, f, value);
                op.key = key.clone();
                if rng.gen_bool(0.15) && t == OpType::Info && !definite {
                    // No completion at all (also unknown): the process is retired.
                    next[p] = todo[p].len();
                } else {
                    ops.push(op);
                }
            }
        }
    }
    if rng.gen_bool(0.6) && !ops.is_empty() {
        for _ in 0..rng.gen_range(1..=2) {
            corrupt(model, &mut ops, &mut rng);
        }
    }
    History::from_ops(ops)
}

fn corrupt(model: &str, ops: &mut [Op], rng: &mut ChaCha8Rng) {
    // Prefer corrupting a read's output: that is what finds stale and impossible reads.
    let observing = |f: &str| matches!(f, "read" | "get" | "dequeue" | "txn");
    let reads: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].op_type == OpType::Ok && observing(&ops[i].f)).collect();
    let i = if !reads.is_empty() && rng.gen_bool(0.7) { reads[rng.gen_range(0..reads.len())] } else { rng.gen_range(0..ops.len()) };
    let op = &mut ops[i];
    match op.op_type {
        OpType::Ok if &*op.f == "dequeue" => op.value = if rng.gen_bool(0.3) { Value::Null } else { spell(&queue_value(rng), rng) },
        OpType::Ok if &*op.f == "txn" => {
            let mut t = op.value.as_array().cloned().unwrap_or_default();
            if let Some(m) = t.iter_mut().find(|m| m[0] == json!("r")) {
                let v = rng.gen_range(0..4);
                m[2] = if v == 0 { Value::Null } else { json!(v) };
            } else {
                op.op_type = OpType::Fail;
            }
            op.value = Value::Array(t);
        }
        OpType::Ok if &*op.f == "get" => op.value = json!(["", "a", "b", "ab", "ba", "aa"][rng.gen_range(0..6)]),
        OpType::Ok if &*op.f == "read" => {
            let wrong = match model {
                "set" => Value::Array((0..rng.gen_range(0..4)).map(|_| set_element(rng)).collect()),
                "counter" => json!(rng.gen_range(0..5)),
                "kv" if rng.gen_bool(0.3) => json!([append_value(rng)]),
                "kv" if rng.gen_bool(0.2) => json!(["", "a", "ab", "ba", "aa"][rng.gen_range(0..5)]),
                _ if rng.gen_bool(0.2) => Value::Null,
                _ if rng.gen_bool(0.2) => json!(7),
                _ => register_value(rng),
            };
            op.value = spell(&wrong, rng);
        }
        OpType::Ok => op.op_type = OpType::Fail,
        OpType::Fail if !observing(&op.f) => op.op_type = OpType::Ok,
        OpType::Fail => {}
        OpType::Info if !observing(&op.f) => op.op_type = OpType::Ok,
        OpType::Info => {}
        OpType::Invoke => {}
    }
}

fn differential(model: &str, seed: u64) -> Result<(), TestCaseError> {
    let history = generate(model, seed);
    let calls = history.calls().unwrap();
    let expected = if oracle(model, &calls) { Validity::Valid } else { Validity::Invalid };
    let threads = 1 + (seed % 2) as usize;
    let got = linear::check(&history, model, &CheckOptions { threads, ..CheckOptions::default() });
    let text: Vec<String> = history.ops.iter().map(|o| serde_json::to_string(o).unwrap()).collect();
    prop_assert_eq!(got.valid, expected, "model {} seed {}\n{}\n{:?}", model, seed, text.join("\n"), got);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn register_matches_oracle(seed in any::<u64>()) { differential("register", seed)?; }
    #[test]
    fn cas_register_matches_oracle(seed in any::<u64>()) { differential("cas-register", seed)?; }
    #[test]
    fn kv_matches_oracle(seed in any::<u64>()) { differential("kv", seed)?; }
    #[test]
    fn counter_matches_oracle(seed in any::<u64>()) { differential("counter", seed)?; }
    #[test]
    fn set_matches_oracle(seed in any::<u64>()) { differential("set", seed)?; }
    #[test]
    fn mutex_matches_oracle(seed in any::<u64>()) { differential("mutex", seed)?; }
    #[test]
    fn fifo_queue_matches_oracle(seed in any::<u64>()) { differential("fifo-queue", seed)?; }
    #[test]
    fn unordered_queue_matches_oracle(seed in any::<u64>()) { differential("unordered-queue", seed)?; }
    #[test]
    fn multi_register_matches_oracle(seed in any::<u64>()) { differential("multi-register", seed)?; }
    #[test]
    fn string_kv_matches_oracle(seed in any::<u64>()) { differential("string-kv", seed)?; }
}

/// The edge cases of value equality a history exercises, by the text it records: a float
/// spelling of an integer, an object with its keys out of order, an `ok` read of `""` or `[]`,
/// an `ok` append of `""` or `[]`.
fn edge_cases(h: &History) -> [bool; 4] {
    let text = |o: &Op| serde_json::to_string(&o.value).unwrap();
    let ok = |o: &&Op| o.op_type == OpType::Ok;
    let reads_empty = h.ops.iter().filter(ok).any(|o| matches!(&*o.f, "read" | "get") && (o.value == json!("") || o.value == json!([])));
    let appends_empty = h.ops.iter().filter(ok).any(|o| &*o.f == "append" && (o.value == json!("") || o.value == json!([])));
    [h.ops.iter().any(|o| text(o).contains(".0")), h.ops.iter().any(|o| text(o).contains(r#"{"b""#)), reads_empty, appends_empty]
}

/// The edge cases must be generated often, and for every model that can hold them.
#[test]
fn generator_produces_the_edge_cases_of_value_equality() {
    for model in MODELS {
        let mut counts = [0u32; 4];
        for seed in 0..400 {
            for (c, hit) in counts.iter_mut().zip(edge_cases(&generate(model, seed))) {
                *c += hit as u32;
            }
        }
        eprintln!("{model}: float spellings, reordered objects, ok reads of \"\" or [], ok appends of \"\" or []: {counts:?} per 400");
        let wanted: &[usize] = match *model {
            "kv" => &[0, 1, 2, 3],
            "register" | "cas-register" => &[0, 1, 2],
            "set" | "fifo-queue" | "unordered-queue" => &[0, 1],
            "mutex" => &[],
            "string-kv" => &[2, 3],
            _ => &[0],
        };
        for &i in wanted {
            assert!(counts[i] >= 20, "{model}: edge case {i} in only {} of 400 histories", counts[i]);
        }
    }
}

/// Both verdicts must occur often, or the differential test proves little.
#[test]
fn generator_produces_both_verdicts() {
    for model in MODELS {
        let (mut valid, mut invalid, mut unknown_outcomes) = (0, 0, 0);
        for seed in 0..400 {
            let h = generate(model, seed);
            let calls = h.calls().unwrap();
            unknown_outcomes += calls.iter().filter(|c| c.outcome == Outcome::Unknown).count();
            if oracle(model, &calls) {
                valid += 1
            } else {
                invalid += 1
            }
        }
        eprintln!("{model}: {valid} valid, {invalid} invalid, {unknown_outcomes} unknown outcomes");
        assert!(valid > 80 && invalid > 60 && unknown_outcomes > 40, "{model}: {valid} valid, {invalid} invalid, {unknown_outcomes} unknown");
    }
}
