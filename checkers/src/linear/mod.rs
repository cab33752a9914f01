//! The linearizability checker: is there a total order of the operations, consistent with real
//! time, in which every operation obeys the model?
//!
//! [`check`] pairs the history into calls, splits them by key (P-compositionality: a history is
//! linearizable exactly when each key's sub-history is), prunes what cannot matter
//! ([`prepare`]), and decides each key, spread over `opts.thread_count()` threads, largest keys
//! first: with the fast path ([`fast`], polynomial, for keys whose reads are unambiguous) where
//! it applies, else with the search of [`search`]. Every key is checked, also after a violation,
//! until the budget runs out. A wall-clock budget and a memory budget (bytes of memo tables,
//! counted across all running searches, and each key's working memory while it is decided)
//! turn an undecided search into `unknown` with the reason and the undecided keys, never a hang
//! or an exhausted machine.
//!
//! The result's details: `model`, `keys` (keys decided), `keys_valid`, `keys_invalid`,
//! `keys_unchecked` (undecided or never started), `paths` (how many keys each procedure
//! decided), `fallbacks` (why the fast path did not apply, with counts), `ops` (calls
//! considered); for an invalid history `anomalies` (the [`ANOMALIES_MAX`] earliest failing keys,
//! by the event at which each violation became certain, then by key; see [`explain`]) and
//! `invalid_keys`; for an unknown one, `error` and `undecided_keys`. A history with no client
//! operation is unknown ([`crate::history::NO_CLIENT_OPERATIONS`]). [`html::render`] draws an
//! anomaly as a page.
//!
//! Nothing here is specific to a model: partitions, pruning and the search go through
//! [`crate::model::Model`] and its optional hints, so [`check_model`] checks a history against a
//! model defined anywhere; the fast path applies to the built-in models it knows.

pub mod html;
mod explain;
mod fast;
mod prepare;
mod search;

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::history::{Call, History, Key, NO_CLIENT_OPERATIONS};
use crate::model::{self, Kind, Machine, Model};
use crate::verdict::{CheckOptions, CheckResult, Validity};
use fast::Decision;
use prepare::Partition;
use search::{Answer, Limits, Search, Stop};
pub(crate) use search::Fx;

/// How long the explanation passes of one failing key may take.
const EXPLAIN_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);
/// How long locating the violation of one key the search decided may take.
const LOCATE_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);
/// How many failing keys are explained in full (the earliest violations); the others are
/// counted and listed by key. Every failing key stays checked.
const ANOMALIES_MAX: usize = 10;
/// How many failing keys are listed by key.
const INVALID_KEYS_MAX: usize = 100;

/// Which decision procedures a check may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The fast path on every key it applies to, the search on the others ([`check`]).
    Auto,
    /// The fast path only: a key it does not apply to is undecided (for tests and benchmarks).
    Fast,
    /// The search only, as before the fast path existed (for tests and benchmarks).
    Search,
}

/// Which procedure decided a key (`path` in the result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    Fast,
    Search,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Fast => "fast",
            Path::Search => "search",
        }
    }
}

/// Checks `history` against the model named `model` (one of [`crate::model::NAMES`]; callers
/// validate the name first, an unknown name answers unknown).
pub fn check(history: &History, model: &str, opts: &CheckOptions) -> CheckResult {
    check_with(history, model, opts, Engine::Auto)
}

/// [`check`] with a choice of decision procedures.
pub fn check_with(history: &History, model: &str, opts: &CheckOptions, engine: Engine) -> CheckResult {
    match history.calls() {
        Ok(calls) => check_calls_named(&calls, model, opts, engine),
        Err(e) => malformed(model, e),
    }
}

/// [`check`] on a JSONL file, paired while it is read ([`crate::history::read_jsonl_calls`]):
/// the events are never held whole, so the peak memory is that of the calls and the check.
pub fn check_jsonl(path: &std::path::Path, model: &str, opts: &CheckOptions) -> CheckResult {
    match crate::history::read_jsonl_calls(path) {
        Ok((calls, _)) => check_calls_named(&calls, model, opts, Engine::Auto),
        Err(e) => malformed(model, e),
    }
}

/// [`check_calls_with`] against the model named `model`, which the result names; an unknown
/// name answers unknown.
pub fn check_calls_named(calls: &[Call], model: &str, opts: &CheckOptions, engine: Engine) -> CheckResult {
    let Some(kind) = model::by_name(model) else {
        return CheckResult::unknown(format!("unknown model `{model}` (known: {})", model::NAMES.join(", ")));
    };
    check_calls_with(calls, kind, opts, engine).with("model", json!(model))
}

fn malformed(model: &str, e: crate::history::HistoryError) -> CheckResult {
    CheckResult::unknown(format!("malformed history: {e}")).with("model", json!(model))
}

/// Checks `history` against a model defined outside this crate (or a built-in one): `make`
/// builds one model value per partition (a key, or whatever [`Model::partition`] answers).
/// The fast path applies only to built-in models ([`Model::builtin`]); other models are decided
/// by the search, with the pruning hints they give.
pub fn check_model<M: Model, F: Fn() -> M + Sync>(history: &History, make: F, opts: &CheckOptions) -> CheckResult {
    let name = make().name().to_string();
    match history.calls() {
        Ok(calls) => check_calls_model(&calls, &make, opts, Engine::Auto).with("model", json!(name)),
        Err(e) => malformed(&name, e),
    }
}

/// How a violation was found, with what its explanation needs.
enum How {
    Fast(fast::Finding),
    /// The search's answer: the op that cannot be placed (`part.ops` index), the longest
    /// prefixes of the first pass, and whether the dead-read pruning named the op.
    Search { op: usize, prefixes: Vec<Vec<usize>>, unsatisfiable: bool },
}

/// A violating key: where its contradiction is (`at`, an event index) and how it was found.
struct Found {
    at: u64,
    how: How,
}

/// What became of one key.
enum KeyOutcome {
    Linearizable(Path),
    Violation(Found),
    Undecided(Stop),
    /// The key's operations do not fit the model (an unknown `f`, a malformed value).
    Error(String),
    /// [`Engine::Fast`] only: the fast path does not apply, and why.
    NoFastPath(&'static str),
}

/// One key's outcome, and why the fast path did not apply when the search decided it.
struct KeyResult {
    outcome: KeyOutcome,
    fallback: Option<&'static str>,
}

/// Checks paired calls; see [`check`]. No calls at all is unknown: an empty history would
/// otherwise be trivially linearizable, and a verdict of valid must mean something was checked.
pub fn check_calls(calls: &[Call], kind: Kind, opts: &CheckOptions) -> CheckResult {
    check_calls_with(calls, kind, opts, Engine::Auto)
}

/// [`check_calls`] with a choice of decision procedures.
///
/// Every key is checked (a violation no longer cancels the others) until the budget runs out;
/// then the earliest violations (by the event at which each became certain, then by key) are
/// explained, so the reported anomaly does not depend on which thread finished first.
pub fn check_calls_with(calls: &[Call], kind: Kind, opts: &CheckOptions, engine: Engine) -> CheckResult {
    check_calls_model(calls, &|| Machine::new(kind), opts, engine)
}

/// [`check_calls_with`] for any [`Model`]; `make` builds one model value per partition.
pub fn check_calls_model<M: Model, F: Fn() -> M + Sync>(calls: &[Call], make: &F, opts: &CheckOptions, engine: Engine) -> CheckResult {
    if calls.is_empty() {
        return CheckResult::unknown(NO_CLIENT_OPERATIONS).with("ops", json!(0));
    }
    let started = Instant::now();
    let groups = prepare::group_by_key(calls, &make());
    let cancel = AtomicBool::new(false);
    let memory_used = AtomicU64::new(0);
    let limits =
        Limits { deadline: started + opts.budget, cancel: &cancel, memory_used: &memory_used, memory_limit: opts.memory_limit_bytes };
    let threads = opts.thread_count();
    let outcomes = parallel(groups.len(), threads, Some(limits.deadline), |g| check_key(calls, &groups[g].1, make, &limits, engine));
    let mut found: Vec<(usize, &Found)> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(g, o)| match o {
            Some(KeyResult { outcome: KeyOutcome::Violation(f), .. }) => Some((g, f)),
            _ => None,
        })
        .collect();
    found.sort_by(|a, b| a.1.at.cmp(&b.1.at).then_with(|| groups[a.0].0.cmp(&groups[b.0].0)));
    // Not cut by the deadline: a fast-path explanation is cheap, and the search's second pass
    // bounds itself (the first pass's prefix is used when it has no time).
    let explained = parallel(found.len().min(ANOMALIES_MAX), threads, None, |n| {
        let (g, f) = found[n];
        explain_key(calls, &groups[g], make, &limits, f)
    });
    let ordered: Vec<(usize, Value)> =
        found.iter().zip(explained).map(|((g, _), a)| (*g, a.unwrap_or_else(|| json!({"key": key_json(&groups[*g].0)})))).collect();
    summarize(&groups, &outcomes, &found, ordered, calls.len(), started)
}

/// Runs `work` on `0..n` over `threads` threads, in order of the index, until the deadline if
/// any; an item not started in time is `None`.
fn parallel<T: Send>(n: usize, threads: usize, deadline: Option<Instant>, work: impl Fn(usize) -> T + Sync) -> Vec<Option<T>> {
    if threads.clamp(1, n.max(1)) == 1 {
        // One worker: this thread, without the cost of starting and joining another.
        let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
        for (i, slot) in out.iter_mut().enumerate() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            *slot = Some(work(i));
        }
        return out;
    }
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, n.max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let r = work(i);
                out.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    out.into_inner().unwrap_or_else(|e| e.into_inner())
}

/// Bytes one operation of a key holds while the key is decided, approximately: its search op,
/// its fast-path op, its index in the key's tables and its interned value with a map slot.
fn bytes_per_op() -> u64 {
    use std::mem::size_of;
    (size_of::<search::SearchOp>() + 3 * size_of::<usize>() + size_of::<fast::FOp>() + size_of::<Value>() + 32) as u64
}

/// [`decide_key`] with the key's own working memory counted against the memory budget while it
/// is decided: a key that does not fit what is left is undecided (memory), not built.
fn check_key<M: Model, F: Fn() -> M>(calls: &[Call], members: &[usize], make: &F, limits: &Limits, engine: Engine) -> KeyResult {
    let bytes = members.len() as u64 * bytes_per_op();
    let before = limits.memory_used.fetch_add(bytes, Ordering::Relaxed);
    let result = if before + bytes > limits.memory_limit {
        KeyResult { outcome: KeyOutcome::Undecided(Stop::Memory), fallback: None }
    } else {
        decide_key(calls, members, make, limits, engine)
    };
    limits.memory_used.fetch_sub(bytes, Ordering::Relaxed);
    result
}

fn decide_key<M: Model, F: Fn() -> M>(calls: &[Call], members: &[usize], make: &F, limits: &Limits, engine: Engine) -> KeyResult {
    let machine = make();
    let part = match Partition::build(calls, members, &machine) {
        Ok(p) => p,
        Err(e) => return KeyResult { outcome: KeyOutcome::Error(e), fallback: None },
    };
    let decision = match (engine, machine.builtin()) {
        (Engine::Search, _) => return KeyResult { outcome: search_key(calls, &part, &machine, limits), fallback: None },
        (_, Some(builtin)) => fast::decide(calls, &part, builtin),
        (_, None) => Decision::Inapplicable("the model has no fast path"),
    };
    let (outcome, fallback) = match decision {
        Decision::Linearizable => (KeyOutcome::Linearizable(Path::Fast), None),
        Decision::Violation(f) => (KeyOutcome::Violation(Found { at: f.at, how: How::Fast(f) }), None),
        Decision::Inapplicable(why) if engine == Engine::Fast => (KeyOutcome::NoFastPath(why), None),
        Decision::Inapplicable(why) => (search_key(calls, &part, &machine, limits), Some(why)),
    };
    KeyResult { outcome, fallback }
}

/// Decides a key with the search. A violation is located like the fast path's (see
/// [`locate_by_search`]).
fn search_key<M: Model + ?Sized>(calls: &[Call], part: &Partition, machine: &M, limits: &Limits) -> KeyOutcome {
    let search = Search::new(machine, &part.ops, part.n_ok, limits);
    match search.run(None) {
        Answer::Linearizable => KeyOutcome::Linearizable(Path::Search),
        Answer::Undecided(stop) => KeyOutcome::Undecided(stop),
        Answer::Violation { op, prefixes } => {
            let culprit = prefixes.first().and_then(|p| search.culprit(p));
            let op = culprit.unwrap_or(op);
            let named = part.call_of.get(op).map_or(u64::MAX, |&c| calls[c].complete_index.unwrap_or(calls[c].invoke_index));
            let at = locate_by_search(part, machine, limits, named).unwrap_or(named);
            KeyOutcome::Violation(Found { at, how: How::Search { op, prefixes, unsatisfiable: culprit.is_some() } })
        }
    }
}

/// The first completion after which a key the search found not linearizable is certainly not
/// linearizable: a search over the cuts of the key (operations invoked by then; those still
/// open have an unknown outcome, open reads are dropped; cuts are monotone because
/// linearizability is prefix-closed), each judged by the search. The operation the search names
/// (completing at event `near`) is not always that place: with the dead-read pruning it is often
/// an early write that a much later stale read forbids. But it is often close, so the cuts are
/// galloped from it (1, 2, 4, ... cuts away, down while they violate, up while they do not)
/// until the first violating one is bracketed, then bisected: about 2 log2(distance) searches
/// instead of log2(completions) when the named operation is near. `None` when the cuts take
/// more than [`LOCATE_BUDGET`] in all (each cut costs up to a whole search).
fn locate_by_search<M: Model + ?Sized>(part: &Partition, machine: &M, limits: &Limits, near: u64) -> Option<u64> {
    let limits = Limits { deadline: limits.deadline.min(Instant::now() + LOCATE_BUDGET), ..*limits };
    let limits = &limits;
    let mut ends: Vec<u64> = part.ops[..part.n_ok].iter().filter_map(|o| o.complete).collect();
    ends.sort_unstable();
    let n = ends.len();
    if n == 0 {
        return None;
    }
    let violates = |i: usize| -> Option<bool> {
        let (ops, n_ok) = cut(&part.ops, ends[i]);
        match Search::new(machine, &ops, n_ok, limits).run(None) {
            Answer::Violation { .. } => Some(true),
            Answer::Linearizable => Some(false),
            Answer::Undecided(_) => None,
        }
    };
    // Bracket: every cut below `lo` is linearizable, the cut at `hi` violates (or `hi` is `n`).
    let start = ends.partition_point(|&e| e < near).min(n - 1);
    let (mut lo, mut hi);
    let mut step = 1;
    if violates(start)? {
        hi = start;
        lo = loop {
            if hi == 0 {
                break 0;
            }
            let probe = hi.saturating_sub(step);
            if !violates(probe)? {
                break probe + 1;
            }
            hi = probe;
            step *= 2;
        };
    } else {
        lo = start + 1;
        hi = loop {
            if lo >= n {
                break n;
            }
            let probe = (lo + step - 1).min(n - 1);
            if violates(probe)? {
                break probe;
            }
            lo = probe + 1;
            step *= 2;
        };
    }
    while lo < hi {
        let mid = (lo + hi) / 2;
        if violates(mid)? {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    ends.get(lo).copied()
}

/// The search ops of a key as they stood just after event `e`, `ok` ones first, as
/// [`Search::new`] wants them.
fn cut(ops: &[search::SearchOp], e: u64) -> (Vec<search::SearchOp>, usize) {
    let mut ok = Vec::new();
    let mut open = Vec::new();
    for o in ops.iter().filter(|o| o.invoke <= e) {
        match o.complete {
            Some(c) if c <= e => ok.push(o.clone()),
            _ if o.op.is_read() => {}
            _ => open.push(search::SearchOp { complete: None, ..o.clone() }),
        }
    }
    ok.sort_by_key(|o| o.invoke);
    open.sort_by_key(|o| o.invoke);
    let n_ok = ok.len();
    ok.extend(open);
    (ok, n_ok)
}

/// The anomaly of a violating key, as JSON (see [`explain`]), with `path` and
/// `violation_event`. The partition is rebuilt: building it is deterministic, so the op indices
/// of `found` still apply.
fn explain_key<M: Model, F: Fn() -> M>(calls: &[Call], group: &(Option<Key>, Vec<usize>), make: &F, limits: &Limits, found: &Found) -> Value {
    let (label, members) = group;
    let machine = make();
    let Ok(part) = Partition::build(calls, members, &machine) else {
        return json!({"key": key_json(label)});
    };
    let (mut a, path) = match &found.how {
        How::Fast(f) => (explain::fast_anomaly(calls, &part, &machine, f), Path::Fast),
        How::Search { op, prefixes, unsatisfiable } => {
            let quiet = AtomicBool::new(false);
            let deadline = limits.deadline.max(Instant::now()).min(Instant::now() + EXPLAIN_BUDGET);
            let explain_limits = Limits { deadline, cancel: &quiet, ..*limits };
            let depth = prefixes.first().map_or(0, |p| p.len());
            // A second pass at the known depth collects alternative prefixes; it may run out of
            // budget, and then the first pass's prefix is explanation enough.
            let more = match Search::new(&machine, &part.ops, part.n_ok, &explain_limits).run(Some(depth)) {
                Answer::Violation { prefixes: more, .. } if !more.is_empty() => more,
                _ => prefixes.clone(),
            };
            (explain::anomaly(calls, &part, &machine, *op, &more, *unsatisfiable), Path::Search)
        }
    };
    if let Value::Object(m) = &mut a {
        m.insert("key".into(), key_json(label));
        m.insert("path".into(), json!(path.name()));
        m.insert("violation_event".into(), json!(found.at));
    }
    a
}

/// For tests: on every key the fast path finds linearizable, replays the linearization it built
/// through the model and against real time. Returns how many keys were verified, or the first
/// key whose witness is wrong.
#[doc(hidden)]
pub fn verify_fast_witnesses(history: &History, model: &str) -> Result<usize, String> {
    let kind = model::by_name(model).ok_or_else(|| format!("unknown model {model}"))?;
    let calls = history.calls().map_err(|e| e.to_string())?;
    let mut verified = 0;
    for (key, members) in prepare::group_by_key(&calls, &Machine::new(kind)) {
        let machine = Machine::new(kind);
        let part = Partition::build(&calls, &members, &machine)?;
        verified += fast::verify_witness(&calls, &part, &machine).map_err(|e| format!("key {}: {e}", key_json(&key)))? as usize;
    }
    Ok(verified)
}

fn key_json(key: &Option<Key>) -> Value {
    serde_json::to_value(key).unwrap_or(Value::Null)
}

/// Counts of what the keys came to.
#[derive(Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    fast: usize,
    search: usize,
    fallbacks: BTreeMap<&'static str, usize>,
    undecided: Vec<Value>,
    stops: Vec<Stop>,
    errors: Vec<String>,
}

impl Tally {
    fn of(groups: &[(Option<Key>, Vec<usize>)], outcomes: &[Option<KeyResult>]) -> Tally {
        let mut t = Tally::default();
        for ((key, _), r) in groups.iter().zip(outcomes) {
            let Some(r) = r else {
                t.undecided.push(key_json(key));
                continue;
            };
            if let Some(why) = r.fallback {
                *t.fallbacks.entry(why).or_default() += 1;
            }
            match &r.outcome {
                KeyOutcome::Linearizable(path) => {
                    t.valid += 1;
                    t.count_path(*path);
                }
                KeyOutcome::Violation(f) => {
                    t.invalid += 1;
                    t.count_path(if matches!(f.how, How::Fast(_)) { Path::Fast } else { Path::Search });
                }
                KeyOutcome::Undecided(stop) => {
                    t.undecided.push(key_json(key));
                    t.stops.push(*stop);
                }
                KeyOutcome::Error(e) => t.errors.push(format!("key {}: {e}", key_json(key))),
                KeyOutcome::NoFastPath(why) => {
                    t.undecided.push(key_json(key));
                    *t.fallbacks.entry(why).or_default() += 1;
                }
            }
        }
        t
    }

    fn count_path(&mut self, path: Path) {
        match path {
            Path::Fast => self.fast += 1,
            Path::Search => self.search += 1,
        }
    }

    /// Why the result is unknown, when it is.
    fn reason(&self, had_no_fast_path: bool) -> String {
        if let Some(e) = self.errors.first() {
            format!("the history does not fit the model: {e}")
        } else if self.stops.contains(&Stop::Memory) {
            "memory budget exhausted (the keys' working memory and the search's memo tables reached the budget, --memory-mb); the search is undecided".to_string()
        } else if had_no_fast_path {
            let why: Vec<&str> = self.fallbacks.keys().copied().collect();
            format!("the fast path does not apply to some keys ({})", why.join("; "))
        } else {
            "time budget exhausted; the search is undecided".to_string()
        }
    }
}

fn summarize(
    groups: &[(Option<Key>, Vec<usize>)],
    outcomes: &[Option<KeyResult>],
    found: &[(usize, &Found)],
    anomalies: Vec<(usize, Value)>,
    n_calls: usize,
    started: Instant,
) -> CheckResult {
    let t = Tally::of(groups, outcomes);
    let no_fast = outcomes.iter().any(|o| matches!(o, Some(KeyResult { outcome: KeyOutcome::NoFastPath(_), .. })));
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let fallbacks: Map<String, Value> = t.fallbacks.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let base = |v: Validity| {
        CheckResult::new(v)
            .with("keys", json!(t.valid + t.invalid))
            .with("keys_valid", json!(t.valid))
            .with("keys_invalid", json!(t.invalid))
            .with("keys_unchecked", json!(groups.len() - t.valid - t.invalid))
            .with("paths", json!({"fast": t.fast, "search": t.search}))
            .with("fallbacks", Value::Object(fallbacks.clone()))
            .with("ops", json!(n_calls))
            .with("elapsed_ms", json!(elapsed_ms))
    };
    let mut result = if !found.is_empty() {
        let keys: Vec<Value> = found.iter().take(INVALID_KEYS_MAX).map(|(g, _)| key_json(&groups[*g].0)).collect();
        base(Validity::Invalid).with("anomalies", Value::Array(anomalies.into_iter().map(|(_, a)| a).collect())).with("invalid_keys", Value::Array(keys))
    } else if t.errors.is_empty() && t.undecided.is_empty() {
        return base(Validity::Valid);
    } else {
        base(Validity::Unknown).with("error", Value::String(t.reason(no_fast)))
    };
    if !t.undecided.is_empty() {
        let n_undecided = t.undecided.len();
        result = result
            .with("undecided_keys", Value::Array(t.undecided.into_iter().take(20).collect()))
            .with("undecided_count", json!(n_undecided));
    }
    result
}
