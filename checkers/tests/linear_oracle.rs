//! Differential test of the linearizability checker against a brute-force oracle.
//!
//! Histories of at most eight operations are generated from a simulated concurrent execution
//! (each operation takes effect at a random point between its invoke and its completion, or never
//! when it fails or its outcome is lost), then a third of them are corrupted (an output changed,
//! an outcome flipped) so both verdicts occur. The oracle tries every order consistent with real
//! time, every subset of the unknown-outcome operations, and applies its own, independent
//! sequential semantics over JSON values. 2,000 histories per model, 10,000 in all.

use faultline_checkers::history::{History, Op, OpType, Outcome};
use faultline_checkers::linear;
use faultline_checkers::{Call, CheckOptions, Key, Validity};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

const MODELS: &[&str] = &["register", "cas-register", "kv", "counter", "set"];

/// The oracle's sequential semantics: one JSON value per key (`null` = missing).
fn apply(model: &str, state: &Value, f: &str, input: &Value, output: Option<&Value>) -> Option<Value> {
    match (model, f) {
        ("counter", "add") => Some(json!(state.as_i64().unwrap_or(0) + input.as_i64().unwrap())),
        ("counter", "read") => match output {
            Some(o) => (o.as_i64() == Some(state.as_i64().unwrap_or(0))).then(|| state.clone()),
            None => Some(state.clone()),
        },
        ("set", "add") => {
            let mut s: Vec<i64> = state.as_array().map(|a| a.iter().map(|x| x.as_i64().unwrap()).collect()).unwrap_or_default();
            s.push(input.as_i64().unwrap());
            s.sort();
            s.dedup();
            Some(json!(s))
        }
        ("set", "read") => match output {
            Some(o) => {
                let mut got: Vec<i64> = o.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
                got.sort();
                got.dedup();
                let have = state.as_array().cloned().unwrap_or_default();
                (json!(got) == json!(have)).then(|| state.clone())
            }
            None => Some(state.clone()),
        },
        (_, "read") => match output {
            Some(o) => (o == state).then(|| state.clone()),
            None => Some(state.clone()),
        },
        (_, "write") => Some(input.clone()),
        (_, "cas") => {
            let (from, to) = (&input[0], &input[1]);
            (!state.is_null() && state == from).then(|| to.clone())
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

/// A random small history for `model`, from a simulated execution, sometimes corrupted.
fn generate(model: &str, seed: u64) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n_ops = rng.gen_range(1..=8);
    let n_procs = rng.gen_range(1..=4u64);
    let keys: &[&str] = if model == "kv" { &["a", "b"] } else { &[] };
    // Per op: (process, f, key, input); performed per process in order.
    let mut todo: Vec<Vec<(String, Option<Key>, Value)>> = vec![Vec::new(); n_procs as usize];
    for _ in 0..n_ops {
        let p = rng.gen_range(0..n_procs) as usize;
        let key = (!keys.is_empty()).then(|| Key::Str(Arc::from(keys[rng.gen_range(0..keys.len())])));
        let small = |rng: &mut ChaCha8Rng| json!(rng.gen_range(0..3));
        let (f, input) = match (model, rng.gen_range(0..4)) {
            (_, 0) | ("register", 1) => ("read".to_string(), Value::Null),
            ("counter", _) => ("add".to_string(), json!(rng.gen_range(-1..3))),
            ("set", _) => ("add".to_string(), small(&mut rng)),
            ("register", _) => ("write".to_string(), small(&mut rng)),
            ("cas-register", 1) | ("kv", 1) => {
                let from = if rng.gen_bool(0.2) { Value::Null } else { small(&mut rng) };
                ("cas".to_string(), json!([from, small(&mut rng)]))
            }
            ("kv", 2) => ("append".to_string(), small(&mut rng)),
            _ => ("write".to_string(), small(&mut rng)),
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
                let mut op = Op::new(p as u64, OpType::Invoke, f, input.clone());
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
                        let out = (f == "read").then(|| match model {
                            "counter" if state.is_null() => json!(0),
                            "set" if state.is_null() => json!([]),
                            _ => state.clone(),
                        });
                        states.insert(k, next_state);
                        inflight[p] = Some((i, Some(out)));
                    }
                    None => {
                        let mut op = Op::new(p as u64, OpType::Fail, f, input.clone());
                        op.key = key.clone();
                        ops.push(op);
                    }
                }
            }
            Some((i, effect)) => {
                let (f, key, input) = &todo[p][i];
                let (t, value) = match &effect {
                    Some(out) if rng.gen_bool(0.85) => (OpType::Ok, out.clone().unwrap_or_else(|| input.clone())),
                    Some(_) => (OpType::Info, input.clone()),
                    None if rng.gen_bool(0.5) => (OpType::Fail, input.clone()),
                    None if rng.gen_bool(0.5) => (OpType::Info, input.clone()),
                    None => {
                        // Not yet taken effect: keep it in flight.
                        inflight[p] = Some((i, effect));
                        continue;
                    }
                };
                let mut op = Op::new(p as u64, t, f, value);
                op.key = key.clone();
                if rng.gen_bool(0.15) && t == OpType::Info {
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
    let reads: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].op_type == OpType::Ok && &*ops[i].f == "read").collect();
    let i = if !reads.is_empty() && rng.gen_bool(0.7) { reads[rng.gen_range(0..reads.len())] } else { rng.gen_range(0..ops.len()) };
    let op = &mut ops[i];
    match op.op_type {
        OpType::Ok if &*op.f == "read" => {
            op.value = match model {
                "set" => json!((0..3).filter(|_| rng.gen_bool(0.5)).collect::<Vec<i64>>()),
                "counter" => json!(rng.gen_range(0..5)),
                "kv" if rng.gen_bool(0.5) => json!([rng.gen_range(0..3)]),
                _ if rng.gen_bool(0.2) => Value::Null,
                _ if rng.gen_bool(0.2) => json!(7),
                _ => json!(rng.gen_range(0..3)),
            }
        }
        OpType::Ok => op.op_type = OpType::Fail,
        OpType::Fail if &*op.f != "read" => op.op_type = OpType::Ok,
        OpType::Fail => {}
        OpType::Info if &*op.f != "read" => op.op_type = OpType::Ok,
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
