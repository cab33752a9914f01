//! The linearizability checker: is there a total order of the operations, consistent with real
//! time, in which every operation obeys the model?
//!
//! [`check`] pairs the history into calls, splits them by key (P-compositionality: a history is
//! linearizable exactly when each key's sub-history is), prunes what cannot matter
//! ([`prepare`]), and runs the search of [`search`] on each key, spread over
//! `opts.thread_count()` threads, largest keys first. The first violation cancels the other
//! searches. A wall-clock budget and a memory budget (bytes of memo tables, counted across all
//! running searches) turn an undecided search into `unknown` with the reason and the undecided
//! keys, never a hang or an exhausted machine.
//!
//! The result's details: `model`, `keys` (keys decided), `ops` (calls considered), and for an
//! invalid history `anomalies` (one per failing key; see [`explain`]); for an unknown one,
//! `error` and `undecided_keys`. A history with no client operation is unknown
//! ([`crate::history::NO_CLIENT_OPERATIONS`]). [`html::render`] draws an anomaly as a page.

pub mod html;
mod explain;
mod prepare;
mod search;

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::history::{Call, History, Key, NO_CLIENT_OPERATIONS};
use crate::model::{self, Kind, Machine};
use crate::verdict::{CheckOptions, CheckResult, Validity};
use prepare::Partition;
use search::{Answer, Limits, Search, Stop};

/// How long the explanation passes of one failing key may take.
const EXPLAIN_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// Checks `history` against the model named `model` (one of [`crate::model::NAMES`]; callers
/// validate the name first, an unknown name answers unknown).
pub fn check(history: &History, model: &str, opts: &CheckOptions) -> CheckResult {
    let Some(kind) = model::by_name(model) else {
        return CheckResult::unknown(format!("unknown model `{model}` (known: {})", model::NAMES.join(", ")));
    };
    let calls = match history.calls() {
        Ok(c) => c,
        Err(e) => return CheckResult::unknown(format!("malformed history: {e}")).with("model", json!(model)),
    };
    check_calls(&calls, kind, opts).with("model", json!(model))
}

/// What became of one key.
enum KeyOutcome {
    Linearizable,
    Violation(Value),
    Undecided(Stop),
    /// The key's operations do not fit the model (an unknown `f`, a malformed value).
    Error(String),
}

/// Checks paired calls; see [`check`]. No calls at all is unknown: an empty history would
/// otherwise be trivially linearizable, and a verdict of valid must mean something was checked.
pub fn check_calls(calls: &[Call], kind: Kind, opts: &CheckOptions) -> CheckResult {
    if calls.is_empty() {
        return CheckResult::unknown(NO_CLIENT_OPERATIONS).with("ops", json!(0));
    }
    let started = Instant::now();
    let groups = prepare::group_by_key(calls);
    let cancel = AtomicBool::new(false);
    let memory_used = AtomicU64::new(0);
    let limits =
        Limits { deadline: started + opts.budget, cancel: &cancel, memory_used: &memory_used, memory_limit: opts.memory_limit_bytes };
    let next = AtomicUsize::new(0);
    let outcomes: Mutex<Vec<Option<KeyOutcome>>> = Mutex::new((0..groups.len()).map(|_| None).collect());
    let threads = opts.thread_count().clamp(1, groups.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let g = next.fetch_add(1, Ordering::Relaxed);
                if g >= groups.len() || cancel.load(Ordering::Relaxed) {
                    break;
                }
                let outcome = check_key(calls, &groups[g].1, kind, &limits);
                if matches!(outcome, KeyOutcome::Violation(_)) {
                    cancel.store(true, Ordering::Relaxed);
                }
                outcomes.lock().unwrap_or_else(|e| e.into_inner())[g] = Some(outcome);
            });
        }
    });
    let outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    summarize(&groups, outcomes, calls.len(), started)
}

fn check_key(calls: &[Call], members: &[usize], kind: Kind, limits: &Limits) -> KeyOutcome {
    let machine = Machine::new(kind);
    let part = match Partition::build(calls, members, &machine) {
        Ok(p) => p,
        Err(e) => return KeyOutcome::Error(e),
    };
    let search = Search::new(&machine, &part.ops, part.n_ok, limits);
    match search.run(None) {
        Answer::Linearizable => KeyOutcome::Linearizable,
        Answer::Undecided(stop) => KeyOutcome::Undecided(stop),
        Answer::Violation { op, prefixes } => {
            let quiet = AtomicBool::new(false);
            let deadline = limits.deadline.min(Instant::now() + EXPLAIN_BUDGET);
            let explain_limits = Limits { deadline, cancel: &quiet, ..*limits };
            let depth = prefixes.first().map_or(0, |p| p.len());
            let culprit = prefixes.first().and_then(|p| search.culprit(p));
            // A second pass at the known depth collects alternative prefixes; it may run out of
            // budget, and then the first pass's prefix is explanation enough.
            let prefixes = match Search::new(&machine, &part.ops, part.n_ok, &explain_limits).run(Some(depth)) {
                Answer::Violation { prefixes: more, .. } if !more.is_empty() => more,
                _ => prefixes,
            };
            KeyOutcome::Violation(explain::anomaly(calls, &part, &machine, culprit.unwrap_or(op), &prefixes, culprit.is_some()))
        }
    }
}

fn key_json(key: &Option<Key>) -> Value {
    serde_json::to_value(key).unwrap_or(Value::Null)
}

fn summarize(groups: &[(Option<Key>, Vec<usize>)], outcomes: Vec<Option<KeyOutcome>>, n_calls: usize, started: Instant) -> CheckResult {
    let mut anomalies = Vec::new();
    let (mut decided, mut undecided, mut errors) = (0usize, Vec::new(), Vec::new());
    let mut stops = Vec::new();
    for ((key, _), outcome) in groups.iter().zip(outcomes) {
        match outcome {
            Some(KeyOutcome::Linearizable) => decided += 1,
            Some(KeyOutcome::Violation(a)) => {
                decided += 1;
                anomalies.push(a);
            }
            Some(KeyOutcome::Undecided(stop)) => {
                undecided.push(key_json(key));
                stops.push(stop);
            }
            Some(KeyOutcome::Error(e)) => errors.push(format!("key {}: {e}", key_json(key))),
            None => undecided.push(key_json(key)),
        }
    }
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let base = |v: Validity| {
        CheckResult::new(v).with("keys", json!(decided)).with("ops", json!(n_calls)).with("elapsed_ms", json!(elapsed_ms))
    };
    if !anomalies.is_empty() {
        return base(Validity::Invalid).with("anomalies", Value::Array(anomalies));
    }
    if errors.is_empty() && undecided.is_empty() {
        return base(Validity::Valid);
    }
    let reason = if let Some(e) = errors.first() {
        format!("the history does not fit the model: {e}")
    } else if stops.contains(&Stop::Memory) {
        "memory budget exhausted (memo tables reached --memory-limit); the search is undecided".to_string()
    } else {
        "time budget exhausted; the search is undecided".to_string()
    };
    let n_undecided = undecided.len();
    undecided.truncate(20);
    base(Validity::Unknown)
        .with("error", Value::String(reason))
        .with("undecided_keys", Value::Array(undecided))
        .with("undecided_count", json!(n_undecided))
}
