//! The explanation of a failing key, as JSON: the operation that cannot be placed, the
//! operations concurrent with it, and the longest linearizable prefixes the search found (with
//! the model state after each operation), plus one sentence for humans.
//!
//! The fast path ([`fast_anomaly`]) fills the same fields: the operation completing at the first
//! event after which the key is not linearizable, the operations concurrent with it, one prefix
//! (a linearization of everything before that event), and a sentence naming the operations that
//! contradict each other, which are also listed under `contradiction`.

use serde_json::{json, Value};

use crate::history::{Call, Outcome};
use crate::model::Model;

use super::fast::{Finding, Relation, Span, Why};
use super::prepare::Partition;

/// How many operations of a prefix are listed (the last ones, nearest the anomaly).
const PREFIX_TAIL: usize = 40;
/// How many concurrent operations are listed.
const CONCURRENT_MAX: usize = 30;

/// A call as JSON: its events, process, operation, argument and result.
pub(crate) fn describe_call(call: &Call) -> Value {
    let (outcome, output) = match &call.outcome {
        Outcome::Ok(v) => ("ok", v.clone()),
        Outcome::Fail => ("fail", Value::Null),
        Outcome::Unknown => ("info", Value::Null),
    };
    json!({
        "invoke_index": call.invoke_index,
        "complete_index": call.complete_index,
        "process": call.process,
        "f": &*call.f,
        "value": call.input,
        "outcome": outcome,
        "output": output,
    })
}

fn overlaps(a: &Call, b: &Call) -> bool {
    let a_end = a.complete_index.unwrap_or(u64::MAX);
    let b_end = b.complete_index.unwrap_or(u64::MAX);
    a.invoke_index < b_end && b.invoke_index < a_end
}

/// The calls of the key concurrent with `failing`.
fn concurrent_with<'a>(calls: &'a [Call], part: &Partition, failing: &Call) -> Vec<&'a Call> {
    part.members.iter().map(|&i| &calls[i]).filter(|c| !std::ptr::eq(*c, failing) && overlaps(c, failing)).collect()
}

/// A prefix (op indices in linearization order) as JSON, with the state after each op (the last
/// [`PREFIX_TAIL`] listed), and the state after the whole prefix.
fn prefix_json<M: Model + ?Sized>(calls: &[Call], part: &Partition, machine: &M, prefix: &[usize]) -> (Value, Value) {
    let mut state = machine.init();
    let mut steps = Vec::new();
    for &i in prefix {
        // The prefix was accepted by the search (or built by the fast path), so every step succeeds.
        state = machine.step(state, &part.ops[i].op).unwrap_or(state);
        let c = &calls[part.call_of[i]];
        steps.push(json!({"index": c.invoke_index, "process": c.process, "f": &*c.f, "value": c.input,
            "output": c.output(), "state": machine.describe_state(state)}));
    }
    let omitted = steps.len().saturating_sub(PREFIX_TAIL);
    let last = machine.describe_state(state);
    (json!({"length": prefix.len(), "omitted": omitted, "ops": steps.split_off(omitted), "state": last}), last)
}

/// How the explanation names the failing call, and what it needs: (label, "read v" or "take
/// effect", the value it needs).
fn needs_of(failing: &Call) -> (String, String, Value) {
    match (&*failing.f, failing.output()) {
        ("read", Some(out)) => ("read".to_string(), format!("read {out}"), out.clone()),
        ("cas", _) => (format!("cas {}", failing.input), "take effect".to_string(), failing.input[0].clone()),
        (f, _) => (format!("{f} {}", failing.input), "take effect".to_string(), failing.input.clone()),
    }
}

fn events(c: &Call) -> String {
    format!("events {}..{}", c.invoke_index, c.complete_index.map_or("?".to_string(), |x| x.to_string()))
}

/// The anomaly of one key; `op` and `prefixes` index `part.ops`.
/// `unsatisfiable`: `op` needs a value that nothing left can produce (the dead-read pruning's
/// finding), rather than being the op whose return ended the deepest configuration.
pub(crate) fn anomaly<M: Model + ?Sized>(
    calls: &[Call],
    part: &Partition,
    machine: &M,
    op: usize,
    prefixes: &[Vec<usize>],
    unsatisfiable: bool,
) -> Value {
    let key = calls[part.members[0]].key.clone();
    let Some(&failing_call) = part.call_of.get(op) else {
        return json!({"key": key, "explanation": "no linearization of this key's operations exists"});
    };
    let failing = &calls[failing_call];
    let concurrent = concurrent_with(calls, part, failing);
    let mut prefix_json_all = Vec::new();
    let mut final_state = Value::Null;
    for (n, prefix) in prefixes.iter().enumerate() {
        let (p, last) = prefix_json(calls, part, machine, prefix);
        if n == 0 {
            final_state = last;
        }
        prefix_json_all.push(p);
    }
    let n = prefixes.first().map_or(0, |p| p.len());
    let (mut label, needs, needed) = needs_of(failing);
    if !matches!(&*failing.f, "read" | "write" | "cas" | "append" | "add") {
        label = machine.describe_op(failing);
    }
    let register_like = matches!(&*failing.f, "read" | "write" | "cas" | "append");
    let why = if unsatisfiable && !register_like {
        format!(
            "the state it needs can no longer occur: every operation that could bring it back is already placed or cannot precede it; the longest linearizable prefix has {n} operations, ending in state {final_state}"
        )
    } else if unsatisfiable {
        format!(
            "it needs the value {needed}, and every operation that could set that value is already placed; the longest linearizable prefix ({n} operations, ending in state {final_state}) cannot be extended without overwriting it for good"
        )
    } else {
        format!(
            "after the longest linearizable prefix ({n} operations) the state is {final_state}, and no order of the {} operations concurrent with it lets it {needs}",
            concurrent.len()
        )
    };
    let explanation = format!("{label} by process {} ({}) cannot be placed: {why}", failing.process, events(failing));
    json!({
        "key": key,
        "op": describe_call(failing),
        "concurrent": concurrent.iter().take(CONCURRENT_MAX).map(|c| describe_call(c)).collect::<Vec<_>>(),
        "concurrent_count": concurrent.len(),
        "longest_prefixes": prefix_json_all,
        "explanation": explanation,
    })
}

/// The anomaly of a key the fast path found not linearizable, in the same shape as
/// [`anomaly`], plus `contradiction` (the operations that contradict each other) and
/// `violation_event` (the first event after which the key is not linearizable).
pub(crate) fn fast_anomaly<M: Model + ?Sized>(calls: &[Call], part: &Partition, machine: &M, finding: &Finding) -> Value {
    let key = calls[part.members[0]].key.clone();
    let failing = &calls[part.call_of[finding.culprit]];
    let concurrent = concurrent_with(calls, part, failing);
    let (prefix, state) = prefix_json(calls, part, machine, &finding.prefix);
    let n = finding.prefix.len();
    let explanation = format!(
        "{} cannot be placed: {}. Before event {} the key is linearizable ({n} operation{}, ending in state {state}); that event makes it impossible",
        label(calls, part, finding.culprit),
        why_sentence(calls, part, &finding.why),
        finding.at,
        if n == 1 { "" } else { "s" },
    );
    let contradiction: Vec<Value> = finding.why.ops().iter().map(|&i| describe_call(&calls[part.call_of[i]])).collect();
    json!({
        "key": key,
        "op": describe_call(failing),
        "concurrent": concurrent.iter().take(CONCURRENT_MAX).map(|c| describe_call(c)).collect::<Vec<_>>(),
        "concurrent_count": concurrent.len(),
        "longest_prefixes": [prefix],
        "explanation": explanation,
        "contradiction": contradiction,
    })
}

/// An operation as a sentence names it: `write 3 by process 2 (events 10..12)`.
fn label(calls: &[Call], part: &Partition, op: usize) -> String {
    let c = &calls[part.call_of[op]];
    let what = match (&*c.f, c.output()) {
        ("read", Some(out)) => format!("read {out}"),
        (f, _) => format!("{f} {}", c.input),
    };
    let outcome = if c.is_ok() { "" } else { ", outcome unknown" };
    format!("{what} by process {} ({}{outcome})", c.process, events(c))
}

/// The event numbers of a call.
fn invoked(calls: &[Call], part: &Partition, op: usize) -> u64 {
    calls[part.call_of[op]].invoke_index
}

/// What a chain is called in a sentence, and how an op of it is named (`the write` for its root).
fn chain_words<'a>(calls: &'a [Call], part: &'a Partition, s: &Span) -> (String, impl Fn(Option<usize>) -> String + 'a) {
    let what = match s.root {
        None => "the initial null".to_string(),
        Some(r) if s.derived => format!("the value of {} and the values cas operations made of it", label(calls, part, r)),
        Some(r) => format!("the value of {}", label(calls, part, r)),
    };
    let root = s.root;
    let name = move |op: Option<usize>| match op {
        Some(i) if Some(i) == root => "the write".to_string(),
        Some(i) => label(calls, part, i),
        None => "the start of the history".to_string(),
    };
    (what, name)
}

/// The span a chain of values must hold, in words.
fn span_sentence(calls: &[Call], part: &Partition, s: &Span) -> String {
    let (what, name) = chain_words(calls, part, s);
    match s.root {
        None => format!("{what} must hold until event {}, when {} was invoked", s.s, name(s.begun)),
        Some(_) => format!("{what} must hold from event {} ({} completed) to event {} ({} was invoked)", s.f, name(s.done), s.s, name(s.begun)),
    }
}

/// Where a chain that fits anywhere in its window must take effect, in words.
fn window_sentence(calls: &[Call], part: &Partition, s: &Span) -> String {
    let (what, name) = chain_words(calls, part, s);
    if s.root.is_some() && s.begun == s.root && s.done == s.root {
        return format!("{} must take effect between its events {} and {}", label(calls, part, s.root.unwrap_or(0)), s.s, s.f);
    }
    format!("{what} must be set and observed between event {} ({} was invoked) and event {} ({} completed)", s.s, name(s.begun), s.f, name(s.done))
}

/// Why the first operation of an [`Why::Order`] must precede the second, in words.
fn relation_sentence(r: Relation) -> &'static str {
    match r {
        Relation::Sets => "the first sets the value the second observes",
        Relation::Replaces => "the second replaces the value the first reads, and that value is written only once",
        Relation::Chain => "cas operations lead from the first's value to the second's, and every value is written only once",
        Relation::Contains => "the second returns the first's element",
        Relation::Lacks => "the first returns a state without the second's element",
        Relation::Grows => "the first returns a proper prefix or subset of what the second returns",
        Relation::ListOrder => "the reads list the first's element ahead of the second's",
        Relation::SetOrder => "a read returns the first's element without the second's",
    }
}

/// The contradiction of a fast-path violation, in words.
fn why_sentence(calls: &[Call], part: &Partition, why: &Why) -> String {
    let l = |op: usize| label(calls, part, op);
    match why {
        Why::NoProducer { op } => format!("{} observes a value that no operation invoked before it completed can produce", l(*op)),
        Why::CasOnMissing { op } => format!("{} took effect, but a cas on a missing key (from null) fails", l(*op)),
        Why::TwoReplace { a, b } => format!("{} and {} both took effect, and both replace the same value, which is written only once, so only one of them can find it", l(*a), l(*b)),
        Why::Unreachable { op } => format!("{} needs a value that only cas operations set, in a cycle no write starts", l(*op)),
        Why::Order { before, after, relation } => format!(
            "{} must take effect before {} ({}), but the second completed at event {}, before the first was invoked at event {}",
            l(*before),
            l(*after),
            relation_sentence(*relation),
            calls[part.call_of[*after]].complete_index.map_or("?".to_string(), |c| c.to_string()),
            invoked(calls, part, *before),
        ),
        Why::Overlap { a, b } => format!(
            "{}, and {}; the spans overlap, and a value written only once cannot hold again once replaced",
            span_sentence(calls, part, a),
            span_sentence(calls, part, b)
        ),
        Why::Inside { outer, inner } => format!(
            "{}, but {}, entirely inside that span",
            span_sentence(calls, part, outer),
            window_sentence(calls, part, inner)
        ),
        Why::Disagree { a, b } => format!("{} and {} contradict each other: neither result can have grown into the other", l(*a), l(*b)),
    }
}
