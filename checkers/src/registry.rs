//! Checkers by name, run together with their failures contained.
//!
//! A run stores the checkers it used as [`CheckerSpec`]s in `test.json`, and `faultline check`
//! and `faultline test` both hand those specs to [`run_all`]. Each checker runs on its own, under
//! `catch_unwind`: a checker that panics, or cannot read the history, answers unknown with the
//! reason and never hides what the others found. The verdicts compose like Jepsen's (invalid
//! beats unknown beats valid, see [`crate::verdict::compose`]).
//!
//! Parameters by checker (all optional):
//! - `linearizable`: none; `model` names the model (`register`, `cas-register`, `kv`, `counter`,
//!   `set`), guessed from the operations when absent.
//! - `counter`, `set`, `orset`, `agreement`, `unique-ids` (no id acknowledged twice), `echo`
//!   (every echo returned what it sent), `durable-state` (what nodes reported of their durable
//!   state survived their restarts, [`crate::durable`]): none.
//! - `lww`: `slack_ms` (number, default 2): how far apart an acknowledgement and the next
//!   write's invocation must be for the order to count.
//! - `convergence`: `kind` = `counter` | `set` | `register`, guessed from the final reads when absent.
//! - `bank`: `total` (integer; the most common sum of the reads when absent), `accounts` (a list
//!   of account ids, or a count n meaning `0..n`), `allow_negative` (bool, default false).
//!
//! Unknown parameter names are ignored, so a newer harness's `test.json` still rechecks; a known
//! parameter of the wrong type is a usage error.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::history::{Call, History};
use crate::linear::Engine;
use crate::verdict::{compose, CheckOptions, CheckResult, Validity};
use crate::{agreement, bank, convergence, counter, durable, linear, lww, model, orset, set, unique};

/// Every checker name [`run_all`] knows.
pub const NAMES: &[&str] = &["linearizable", "counter", "set", "convergence", "bank", "orset", "agreement", "lww", "unique-ids", "echo", "durable-state"];

/// One checker to run: its name, the model (for `linearizable`), and its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckerSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default)]
    pub params: Map<String, Value>,
}

impl CheckerSpec {
    /// A spec with no model and no parameters.
    pub fn named(name: &str) -> CheckerSpec {
        CheckerSpec { name: name.to_string(), model: None, params: Map::new() }
    }

    pub fn with_model(mut self, model: &str) -> CheckerSpec {
        self.model = Some(model.to_string());
        self
    }

    pub fn with_param(mut self, key: &str, value: Value) -> CheckerSpec {
        self.params.insert(key.to_string(), value);
        self
    }
}

/// The composed verdict of several checkers and each checker's result, in spec order.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub valid: Validity,
    pub results: Vec<(String, CheckResult)>,
}

impl Report {
    /// The `{NAME: result}` object that `results.json` and `check --json` hold under `checkers`.
    pub fn checkers_json(&self) -> Map<String, Value> {
        compose(&self.results).1
    }
}

/// Checks a spec for usage errors: an unknown checker or model, or a parameter of the wrong type.
pub fn validate(spec: &CheckerSpec) -> Result<(), String> {
    if !NAMES.contains(&spec.name.as_str()) {
        return Err(format!("unknown checker `{}` (known: {})", spec.name, NAMES.join(", ")));
    }
    if let Some(m) = &spec.model {
        if spec.name != "linearizable" {
            return Err(format!("checker `{}` takes no model (got `{m}`)", spec.name));
        }
        if !model::NAMES.contains(&m.as_str()) {
            return Err(format!("unknown model `{m}` (known: {})", model::NAMES.join(", ")));
        }
    }
    match spec.name.as_str() {
        "bank" => bank::Params::from_json(&spec.params).map(|_| ()),
        "convergence" => convergence::Kind::from_params(&spec.params).map(|_| ()),
        "lww" => lww::slack_from_params(&spec.params).map(|_| ()),
        _ => Ok(()),
    }
}

/// Runs every checker on the history within the overall budget of `opts`, and composes them.
///
/// The checkers run one after the other; each gets what is left of the budget. An empty list of
/// specs is unknown: nothing was checked. So is a history with no client operation: every
/// checker answers unknown with [`crate::history::NO_CLIENT_OPERATIONS`] as its reason.
pub fn run_all(specs: &[CheckerSpec], history: &History, opts: &CheckOptions) -> Report {
    run_each(specs, opts, |spec, one| run_one(spec, history, one))
}

/// [`run_all`] on calls paired while the history was read ([`crate::history::stream_jsonl_calls`]),
/// when every spec is `linearizable` (the only checker that needs nothing but the calls);
/// `None` when some spec needs the whole history. `guess` is the model guessed from the events
/// ([`model::Guesser`]), used by a spec that names none. Gives exactly what [`run_all`] gives.
pub fn run_all_on_calls(specs: &[CheckerSpec], calls: &[Call], guess: &str, opts: &CheckOptions) -> Option<Report> {
    if !only_linearizable(specs) {
        return None;
    }
    Some(run_each(specs, opts, |spec, one| {
        if let Err(e) = validate(spec) {
            return CheckResult::unknown(e);
        }
        let m = spec.model.as_deref().unwrap_or(guess);
        contain(&spec.name, || linear::check_calls_named(calls, m, one, Engine::Auto).with("model", Value::String(m.to_string())))
    }))
}

/// [`run_all_on_calls`] on a stream read within the memory budget
/// ([`crate::history::stream_jsonl_calls_within`] with `opts.memory_limit_bytes` less
/// `process`, what the process held before reading): the calls' bytes and the process's count
/// against the budget, so the search gets what is left of it; a history whose calls do not fit
/// is not checked, and every checker answers unknown naming the budget and what the history
/// needs (`memory_needed_mb`: calls and process). `None` when some spec needs the whole history.
pub fn run_all_on_stream(specs: &[CheckerSpec], read: &crate::history::CallStream, process: u64, guess: &str, opts: &CheckOptions) -> Option<Report> {
    if !read.over_budget {
        let rest = CheckOptions { memory_limit_bytes: opts.memory_limit_bytes.saturating_sub(process + read.bytes), ..opts.clone() };
        return run_all_on_calls(specs, &read.calls, guess, &rest);
    }
    if !only_linearizable(specs) {
        return None;
    }
    let mib = |b: u64| b.div_ceil(1 << 20);
    let reason = format!(
        "memory budget exceeded by the history itself: its calls need about {} MiB (and the process {} MiB), the budget (--memory-mb) is {} MiB; not checked",
        mib(read.bytes),
        mib(process),
        opts.memory_limit_bytes >> 20
    );
    Some(run_each(specs, opts, |spec, _| {
        let m = spec.model.as_deref().unwrap_or(guess);
        let needed = Value::from(mib(read.bytes + process));
        CheckResult::unknown(reason.clone()).with("model", Value::String(m.to_string())).with("memory_needed_mb", needed)
    }))
}

/// Whether every spec can be run on paired calls alone ([`run_all_on_calls`]).
pub fn only_linearizable(specs: &[CheckerSpec]) -> bool {
    !specs.is_empty() && specs.iter().all(|s| s.name == "linearizable")
}

/// Runs `one` on every spec, one after the other, each with what is left of the budget, and
/// composes the results.
fn run_each(specs: &[CheckerSpec], opts: &CheckOptions, one: impl Fn(&CheckerSpec, &CheckOptions) -> CheckResult) -> Report {
    let started = Instant::now();
    let mut results: Vec<(String, CheckResult)> = Vec::with_capacity(specs.len());
    for spec in specs {
        let left = opts.budget.saturating_sub(started.elapsed());
        let budget = CheckOptions { budget: left.max(Duration::from_millis(1)), ..opts.clone() };
        let result = one(spec, &budget);
        results.push((unique_name(&results, spec), result));
    }
    let (valid, _) = compose(&results);
    Report { valid, results }
}

/// Runs one checker, turning a usage error or a panic into an unknown result.
pub fn run_one(spec: &CheckerSpec, history: &History, opts: &CheckOptions) -> CheckResult {
    if let Err(e) = validate(spec) {
        return CheckResult::unknown(e);
    }
    contain(&spec.name, || dispatch(spec, history, opts))
}

/// Runs a checker so that a panic inside it becomes an unknown result naming the checker and
/// the panic's message.
pub(crate) fn contain(name: &str, checker: impl FnOnce() -> CheckResult) -> CheckResult {
    match catch_unwind(AssertUnwindSafe(checker)) {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string());
            CheckResult::unknown(format!("checker `{name}` crashed: {msg}"))
        }
    }
}

fn dispatch(spec: &CheckerSpec, history: &History, opts: &CheckOptions) -> CheckResult {
    match spec.name.as_str() {
        "linearizable" => {
            let m: &str = match &spec.model {
                Some(m) => m,
                None => model::guess(history),
            };
            linear::check(history, m, opts).with("model", Value::String(m.to_string()))
        }
        "counter" => counter::check(history),
        "set" => set::check(history),
        "convergence" => match convergence::Kind::from_params(&spec.params) {
            Ok(kind) => convergence::check(history, kind),
            Err(e) => CheckResult::unknown(e),
        },
        "orset" => orset::check(history),
        "agreement" => agreement::check(history),
        "lww" => match lww::slack_from_params(&spec.params) {
            Ok(slack) => lww::check(history, slack),
            Err(e) => CheckResult::unknown(e),
        },
        "unique-ids" => unique::check_unique_ids(history),
        "echo" => unique::check_echo(history),
        "durable-state" => durable::check(history),
        "bank" => match bank::Params::from_json(&spec.params) {
            Ok(p) => bank::check(history, &p),
            Err(e) => CheckResult::unknown(e),
        },
        other => CheckResult::unknown(format!("unknown checker `{other}`")),
    }
}

/// Two specs of the same checker (say, linearizable over two models) must not overwrite each
/// other in the results object: the second gets its model or position appended.
fn unique_name(done: &[(String, CheckResult)], spec: &CheckerSpec) -> String {
    let taken = |n: &str| done.iter().any(|(d, _)| d == n);
    if !taken(&spec.name) {
        return spec.name.clone();
    }
    if let Some(m) = &spec.model {
        let n = format!("{}-{m}", spec.name);
        if !taken(&n) {
            return n;
        }
    }
    (2..).map(|i| format!("{}-{i}", spec.name)).find(|n| !taken(n)).unwrap_or_default()
}

/// Small helpers the non-linearizability checkers share.
pub(crate) mod support {
    use serde_json::{json, Value};

    use std::collections::BTreeMap;

    use crate::history::{Call, History, Key, Outcome, NO_CLIENT_OPERATIONS};
    use crate::verdict::CheckResult;

    /// How many examples of each anomaly a result lists; counts are always complete.
    pub const EXAMPLES: usize = 10;

    /// Pairs the history's calls; a malformed history cannot be judged, so it is unknown, and
    /// so is one without any client operation (nothing was observed).
    pub fn calls(history: &History) -> Result<Vec<Call>, CheckResult> {
        let calls = history.calls().map_err(|e| CheckResult::unknown(format!("malformed history: {e}")))?;
        if calls.is_empty() {
            return Err(CheckResult::unknown(NO_CLIENT_OPERATIONS));
        }
        Ok(calls)
    }

    /// The calls that `keep` accepts, grouped by key (`None` for keyless objects): the checkers
    /// judge each object on its own.
    pub fn by_key<'a>(calls: &'a [Call], keep: impl Fn(&Call) -> bool) -> BTreeMap<Option<Key>, Vec<&'a Call>> {
        let mut groups: BTreeMap<Option<Key>, Vec<&'a Call>> = BTreeMap::new();
        for c in calls.iter().filter(|c| keep(c)) {
            groups.entry(c.key.clone()).or_default().push(c);
        }
        groups
    }

    /// Whether a call is an `add` or a `read`, the operations of counters and sets.
    pub fn is_add_or_read(c: &Call) -> bool {
        &*c.f == "add" || &*c.f == "read"
    }

    /// A call as the results show it: who, what, when (event indices), and what came back.
    pub fn call_json(c: &Call) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("process".into(), json!(c.process));
        m.insert("f".into(), json!(&*c.f));
        if let Some(k) = &c.key {
            m.insert("key".into(), serde_json::to_value(k).unwrap_or(Value::Null));
        }
        m.insert("value".into(), c.input.clone());
        match &c.outcome {
            Outcome::Ok(v) => {
                m.insert("type".into(), json!("ok"));
                m.insert("output".into(), v.clone());
            }
            Outcome::Fail => {
                m.insert("type".into(), json!("fail"));
            }
            Outcome::Unknown => {
                m.insert("type".into(), json!("info"));
            }
        }
        m.insert("invoke_index".into(), json!(c.invoke_index));
        m.insert("complete_index".into(), json!(c.complete_index));
        if let Some(n) = &c.node {
            m.insert("node".into(), json!(&**n));
        }
        if c.final_read {
            m.insert("final".into(), json!(true));
        }
        Value::Object(m)
    }

    pub use crate::value::big;

    /// An add's delta, exact: its argument, or its result when the invoke carried none. `Err`
    /// says why it is not an exact integer (the counter then cannot be judged).
    pub fn add_delta(c: &Call) -> Result<i128, String> {
        let v = if c.input.is_null() { c.output().unwrap_or(&c.input) } else { &c.input };
        crate::value::exact_int(v).map_err(|why| format!("add at event {} has a delta {v} that is {}", c.invoke_index + 1, why.describe()))
    }

    /// An exact integer of a history value (see [`crate::value::exact_int`]), or `None`.
    pub fn int(v: &Value) -> Option<i128> {
        crate::value::exact_int(v).ok()
    }

    /// Milliseconds between two nanosecond stamps, never negative.
    pub fn ms_between(from_ns: u64, to_ns: u64) -> f64 {
        to_ns.saturating_sub(from_ns) as f64 / 1e6
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpType::*};
    use serde_json::json;

    fn ops(parts: &[(u64, crate::history::OpType, &str, Value)]) -> History {
        History::from_ops(parts.iter().map(|(p, t, f, v)| Op::new(*p, *t, f, v.clone())).collect())
    }

    #[test]
    fn a_panic_is_unknown_with_its_message() {
        let r = contain("boom", || panic!("index out of range"));
        assert_eq!(r.valid, Validity::Unknown);
        assert_eq!(r.details["error"], json!("checker `boom` crashed: index out of range"));
        assert_eq!(contain("fine", || CheckResult::new(Validity::Valid)).valid, Validity::Valid);
    }

    #[test]
    fn failures_never_hide_other_verdicts() {
        // A set history where 1 is lost; the bank checker has a bad parameter and says unknown.
        let h = ops(&[
            (0, Invoke, "add", json!(1)),
            (0, Ok, "add", json!(1)),
            (1, Invoke, "read", Value::Null),
            (1, Ok, "read", json!([1])),
            (1, Invoke, "read", Value::Null),
            (1, Ok, "read", json!([])),
        ]);
        let specs = [CheckerSpec::named("bank").with_param("total", json!("lots")), CheckerSpec::named("set"), CheckerSpec::named("counter")];
        let report = run_all(&specs, &h, &CheckOptions::default());
        let verdicts: Vec<(&str, Validity)> = report.results.iter().map(|(n, r)| (n.as_str(), r.valid)).collect();
        assert_eq!(verdicts[0], ("bank", Validity::Unknown));
        assert_eq!(verdicts[1], ("set", Validity::Invalid));
        assert_eq!(report.valid, Validity::Invalid);
        assert!(report.results[0].1.details["error"].as_str().unwrap().contains("total"));
        // Without the invalid one, unknown beats valid.
        let report = run_all(&specs[..1], &h, &CheckOptions::default());
        assert_eq!(report.valid, Validity::Unknown);
        assert_eq!(run_all(&[], &h, &CheckOptions::default()).valid, Validity::Unknown);
    }

    #[test]
    fn validate_rejects_unknown_names_and_models() {
        assert!(validate(&CheckerSpec::named("set")).is_ok());
        assert!(validate(&CheckerSpec::named("sets")).unwrap_err().contains("unknown checker"));
        assert!(validate(&CheckerSpec::named("linearizable").with_model("queue")).unwrap_err().contains("unknown model"));
        assert!(validate(&CheckerSpec::named("counter").with_model("kv")).is_err());
        assert!(validate(&CheckerSpec::named("convergence").with_param("kind", json!("graph"))).is_err());
        let spec: CheckerSpec = serde_json::from_value(json!({"name": "linearizable", "model": "kv"})).unwrap();
        assert_eq!((spec.model.as_deref(), spec.params.len()), (Some("kv"), 0));
    }

    #[test]
    fn same_checker_twice_keeps_both_results() {
        let h = ops(&[(0, Invoke, "add", json!(1)), (0, Ok, "add", json!(1)), (1, Invoke, "read", Value::Null), (1, Ok, "read", json!(1))]);
        let specs = [CheckerSpec::named("counter"), CheckerSpec::named("counter")];
        let names: Vec<String> = run_all(&specs, &h, &CheckOptions::default()).results.into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["counter".to_string(), "counter-2".to_string()]);
    }
}
