//! The explanation of a failing key, as JSON: the operation that cannot be placed, the
//! operations concurrent with it, and the longest linearizable prefixes the search found (with
//! the model state after each operation), plus one sentence for humans.

use serde_json::{json, Value};

use crate::history::{Call, Outcome};
use crate::model::Machine;

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

/// The anomaly of one key; `op` and `prefixes` index `part.ops`.
/// `unsatisfiable`: `op` needs a value that nothing left can produce (the dead-read pruning's
/// finding), rather than being the op whose return ended the deepest configuration.
pub(crate) fn anomaly(
    calls: &[Call],
    part: &Partition,
    machine: &Machine,
    op: usize,
    prefixes: &[Vec<usize>],
    unsatisfiable: bool,
) -> Value {
    let key = calls[part.members[0]].key.clone();
    let Some(&failing_call) = part.call_of.get(op) else {
        return json!({"key": key, "explanation": "no linearization of this key's operations exists"});
    };
    let failing = &calls[failing_call];
    let concurrent: Vec<&Call> =
        part.members.iter().map(|&i| &calls[i]).filter(|c| !std::ptr::eq(*c, failing) && overlaps(c, failing)).collect();
    let mut prefix_json = Vec::new();
    let mut final_state = Value::Null;
    for (n, prefix) in prefixes.iter().enumerate() {
        let mut state = machine.init();
        let mut steps = Vec::new();
        for &i in prefix {
            // The prefix was accepted by the search, so every step succeeds.
            state = machine.step(state, &part.ops[i].op).unwrap_or(state);
            let c = &calls[part.call_of[i]];
            steps.push(json!({"index": c.invoke_index, "process": c.process, "f": &*c.f, "value": c.input,
                "output": c.output(), "state": machine.describe_state(state)}));
        }
        if n == 0 {
            final_state = machine.describe_state(state);
        }
        let omitted = steps.len().saturating_sub(PREFIX_TAIL);
        prefix_json.push(json!({"length": prefix.len(), "omitted": omitted, "ops": steps.split_off(omitted),
            "state": machine.describe_state(state)}));
    }
    let n = prefixes.first().map_or(0, |p| p.len());
    let (label, needs, needed) = match (&*failing.f, failing.output()) {
        ("read", Some(out)) => ("read".to_string(), format!("read {out}"), out.clone()),
        ("cas", _) => (format!("cas {}", failing.input), "take effect".to_string(), failing.input[0].clone()),
        (f, _) => (format!("{f} {}", failing.input), "take effect".to_string(), failing.input.clone()),
    };
    let why = if unsatisfiable {
        format!(
            "it needs the value {needed}, and every operation that could set that value is already placed; the longest linearizable prefix ({n} operations, ending in state {final_state}) cannot be extended without overwriting it for good"
        )
    } else {
        format!(
            "after the longest linearizable prefix ({n} operations) the state is {final_state}, and no order of the {} operations concurrent with it lets it {needs}",
            concurrent.len()
        )
    };
    let explanation = format!(
        "{label} by process {} (events {}..{}) cannot be placed: {why}",
        failing.process,
        failing.invoke_index,
        failing.complete_index.map_or("?".to_string(), |c| c.to_string()),
    );
    json!({
        "key": key,
        "op": describe_call(failing),
        "concurrent": concurrent.iter().take(CONCURRENT_MAX).map(|c| describe_call(c)).collect::<Vec<_>>(),
        "concurrent_count": concurrent.len(),
        "longest_prefixes": prefix_json,
        "explanation": explanation,
    })
}
