//! Generates valid histories from a simulated store, for benchmarks and tests.
//!
//! Clients run against one sequential key-value map. Every step picks a random client and
//! advances its operation: invoke, take effect (the map changes at that instant), complete.
//! Concurrency is therefore real: about `clients` operations are open at any time, and an
//! operation's interval contains its effect, so the history is linearizable by construction.
//! A fraction of operations end `info` (their effect applied or not, at random) or never
//! complete; the client is then replaced by a new process, as Jepsen does. Write values are
//! unique, so a stale read can be injected afterwards with certainty.
#![allow(dead_code)]

use faultline_checkers::history::{History, Op, OpType};
use faultline_checkers::Key;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct Spec {
    pub ops: usize,
    pub clients: usize,
    pub keys: usize,
    /// Fraction of operations whose outcome is unknown.
    pub unknown: f64,
    /// The operations: `register` (read/write), `cas-register` (read/write/cas), `kv`
    /// (read/write/cas/append), `append` (read/append), `set` (read/add, reads answer lists),
    /// `queue` (enqueue/dequeue, first in first out, a dequeue of an empty queue answers
    /// `null`) or `mutex` (each client acquires, then releases what it holds; an acquire of a
    /// held lock fails).
    pub model: &'static str,
    pub seed: u64,
}

struct Inflight {
    process: u64,
    f: &'static str,
    key: i64,
    input: Value,
    /// `None` until it took effect; then `Some(output)` (`None` output = failed cas).
    effect: Option<Option<Value>>,
    /// Whether the history is a set's (reads of an empty key answer `[]`).
    f_model_is_set: bool,
}

pub fn generate(spec: &Spec) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut map: HashMap<i64, Value> = HashMap::new();
    let mut ops = Vec::with_capacity(spec.ops * 2 + spec.clients);
    let mut clients: Vec<Option<Inflight>> = (0..spec.clients).map(|_| None).collect();
    let mut process_of: Vec<u64> = (0..spec.clients as u64).collect();
    let mut next_process = spec.clients as u64;
    let mut next_value = 1i64;
    let mut invoked = 0usize;
    let f_names: &[&'static str] = match spec.model {
        "register" => &["read", "read", "write"],
        "cas-register" => &["read", "read", "write", "cas"],
        "append" => &["read", "read", "append"],
        "set" => &["read", "read", "add"],
        "queue" => &["enqueue", "dequeue"],
        "mutex" => &["acquire"],
        _ => &["read", "read", "write", "cas", "append"],
    };
    // Mutex: the lock each client holds, if any (it releases that one next).
    let mut holds: Vec<Option<i64>> = vec![None; spec.clients];
    let push = |ops: &mut Vec<Op>, p: u64, t: OpType, f: &str, key: i64, v: Value| {
        ops.push(Op::new(p, t, f, v).with_key(Key::Int(key)));
    };
    loop {
        let c = rng.gen_range(0..spec.clients);
        match clients[c].take() {
            None if invoked < spec.ops => {
                invoked += 1;
                let mut f = f_names[rng.gen_range(0..f_names.len())];
                let mut key = rng.gen_range(0..spec.keys as i64);
                if let Some(k) = holds[c].take() {
                    (f, key) = ("release", k);
                }
                let input = match f {
                    "read" | "dequeue" | "acquire" | "release" => Value::Null,
                    "cas" => {
                        // Usually the current value, so that cas succeeds often.
                        let from = if rng.gen_bool(0.7) { map.get(&key).cloned().unwrap_or(json!(0)) } else { json!(next_value - 1) };
                        next_value += 1;
                        json!([from, next_value])
                    }
                    _ => {
                        next_value += 1;
                        json!(next_value)
                    }
                };
                push(&mut ops, process_of[c], OpType::Invoke, f, key, input.clone());
                clients[c] = Some(Inflight { process: process_of[c], f, key, input, effect: None, f_model_is_set: spec.model == "set" });
            }
            None => {
                if clients.iter().all(|c| c.is_none()) {
                    break;
                }
            }
            Some(mut op) if op.effect.is_none() => {
                let unknown = rng.gen_bool(spec.unknown);
                if unknown && rng.gen_bool(0.5) {
                    // Lost before taking effect.
                    finish_unknown(&mut ops, &mut rng, &op, &mut process_of[c], &mut next_process);
                    continue;
                }
                op.effect = Some(apply(&mut map, &op));
                if unknown {
                    finish_unknown(&mut ops, &mut rng, &op, &mut process_of[c], &mut next_process);
                } else {
                    clients[c] = Some(op);
                }
            }
            Some(op) => {
                let (t, v) = match op.effect.clone().flatten() {
                    Some(out) => (OpType::Ok, out),
                    None => (OpType::Fail, op.input.clone()),
                };
                if op.f == "acquire" && t == OpType::Ok {
                    holds[c] = Some(op.key);
                }
                push(&mut ops, op.process, t, op.f, op.key, v);
            }
        }
    }
    History::from_ops(ops)
}

fn finish_unknown(ops: &mut Vec<Op>, rng: &mut ChaCha8Rng, op: &Inflight, process: &mut u64, next: &mut u64) {
    if rng.gen_bool(0.8) {
        ops.push(Op::new(op.process, OpType::Info, op.f, op.input.clone()).with_key(Key::Int(op.key)));
    }
    *process = *next;
    *next += 1;
}

/// Applies an operation to the map: its output, or `None` for a cas that fails.
fn apply(map: &mut HashMap<i64, Value>, op: &Inflight) -> Option<Value> {
    let cur = map.get(&op.key).cloned().unwrap_or(Value::Null);
    match op.f {
        // A set reads `[]` when empty: the set model wants a list.
        "read" if op.f_model_is_set && cur.is_null() => Some(json!([])),
        "read" => Some(cur),
        "add" => {
            let mut a = cur.as_array().cloned().unwrap_or_default();
            a.push(op.input.clone());
            map.insert(op.key, Value::Array(a));
            Some(op.input.clone())
        }
        "write" => {
            map.insert(op.key, op.input.clone());
            Some(op.input.clone())
        }
        "enqueue" => {
            let mut q = cur.as_array().cloned().unwrap_or_default();
            q.push(op.input.clone());
            map.insert(op.key, Value::Array(q));
            Some(op.input.clone())
        }
        "dequeue" => {
            let mut q = cur.as_array().cloned().unwrap_or_default();
            if q.is_empty() {
                return Some(Value::Null);
            }
            let first = q.remove(0);
            map.insert(op.key, Value::Array(q));
            Some(first)
        }
        "acquire" => {
            if cur == json!(true) {
                return None;
            }
            map.insert(op.key, json!(true));
            Some(Value::Null)
        }
        "release" => {
            map.insert(op.key, json!(false));
            Some(Value::Null)
        }
        "cas" => {
            if !cur.is_null() && cur == op.input[0] {
                map.insert(op.key, op.input[1].clone());
                Some(op.input.clone())
            } else {
                None
            }
        }
        _ => {
            let next = match cur {
                Value::Array(mut a) => {
                    a.push(op.input.clone());
                    Value::Array(a)
                }
                // Appending to a written scalar is a type error; treat it as a failure.
                Value::Null => json!([op.input.clone()]),
                _ => return None,
            };
            map.insert(op.key, next);
            Some(op.input.clone())
        }
    }
}

/// Removes the first element of the first `ok` list read of at least 8 elements at or after
/// `at` (a fraction of the history): that element's append or add was acknowledged long before
/// the read began (seven more came after it), so the read lost it. Returns the event index of
/// the changed completion.
pub fn inject_lost_element(history: &mut History, at: f64) -> Option<usize> {
    let calls = history.calls().ok()?;
    let start = (calls.len() as f64 * at) as usize;
    let read = calls[start..].iter().find(|c| &*c.f == "read" && c.output().and_then(|v| v.as_array()).is_some_and(|a| a.len() >= 8))?;
    let idx = read.complete_index? as usize;
    if let Value::Array(items) = &mut history.ops[idx].value {
        items.remove(0);
    }
    Some(idx)
}

/// Changes one `ok` read near `at` (a fraction of the history) on the busiest key so that it
/// returns a value that was overwritten before the read began: a certain violation. Returns
/// the event index of the changed completion.
pub fn inject_stale_read(history: &mut History, at: f64) -> Option<usize> {
    let calls = history.calls().ok()?;
    let mut count: HashMap<&Option<Key>, usize> = HashMap::new();
    for c in &calls {
        *count.entry(&c.key).or_default() += 1;
    }
    let key = count.into_iter().max_by_key(|(k, n)| (*n, (*k).clone()))?.0.clone();
    let start = (calls.len() as f64 * at) as usize;
    let writes: Vec<_> = calls.iter().filter(|c| c.key == key && &*c.f == "write" && c.is_ok()).collect();
    let w1 = writes.first()?;
    let w1_end = w1.complete_index?;
    // w2 starts after w1 ended, so w1 can never again be the value once w2 took effect.
    let w2 = writes.iter().find(|w| w.invoke_index > w1_end)?;
    let w2_end = w2.complete_index?;
    let read = calls[start..].iter().find(|c| c.key == key && &*c.f == "read" && c.is_ok() && c.invoke_index > w2_end)?;
    let idx = read.complete_index? as usize;
    history.ops[idx].value = w1.input.clone();
    Some(idx)
}

/// Changes one `ok` dequeue near `at` (a fraction of the history) to answer an element an
/// earlier `ok` dequeue had already taken, and completed before this one was invoked: with
/// unique elements, a certain violation for a FIFO and an unordered queue alike. Returns the
/// event index of the changed completion.
pub fn inject_double_dequeue(history: &mut History, at: f64) -> Option<usize> {
    let calls = history.calls().ok()?;
    let start = (calls.len() as f64 * at) as usize;
    let taken = |c: &faultline_checkers::Call| &*c.f == "dequeue" && c.output().is_some_and(|v| !v.is_null());
    let later = calls[start..].iter().find(|c| taken(c))?;
    let earlier = calls[..start].iter().rev().find(|c| taken(c) && c.key == later.key && c.complete_index.is_some_and(|e| e < later.invoke_index))?;
    let idx = later.complete_index? as usize;
    history.ops[idx].value = earlier.output()?.clone();
    Some(idx)
}

/// Turns one failed acquire near `at` into an `ok` one while another client certainly held
/// the lock (its acquire completed before this one was invoked, its release was invoked after
/// this one completed): two holders at once. Returns the event index of the changed completion.
pub fn inject_double_acquire(history: &mut History, at: f64) -> Option<usize> {
    let calls = history.calls().ok()?;
    let start = (calls.len() as f64 * at) as usize;
    // Per key, the spans in which a lock was certainly held: (acquire completed, release invoked).
    let mut held: HashMap<&Option<Key>, Vec<(u64, u64)>> = HashMap::new();
    let mut open: HashMap<u64, u64> = HashMap::new();
    for c in &calls {
        match (&*c.f, c.is_ok()) {
            ("acquire", true) => {
                open.insert(c.process, c.complete_index?);
            }
            ("release", _) => {
                if let Some(from) = open.remove(&c.process) {
                    held.entry(&c.key).or_default().push((from, c.invoke_index));
                }
            }
            _ => {}
        }
    }
    let failed = calls[start..].iter().find(|c| {
        &*c.f == "acquire"
            && c.outcome == faultline_checkers::Outcome::Fail
            && held.get(&c.key).is_some_and(|spans| spans.iter().any(|&(a, b)| a < c.invoke_index && c.complete_index.is_some_and(|e| e < b)))
    })?;
    let idx = failed.complete_index? as usize;
    history.ops[idx].op_type = OpType::Ok;
    Some(idx)
}
