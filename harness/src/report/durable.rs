//! The durable-state failure for a person: which node forgot what it had reported, and what
//! happened to it in between (a kill, a power loss). One sentence for the first regression and
//! a table of every listed one.

use maud::{html as markup, Markup};
use serde_json::Value;

use super::story::value_text;
use super::text::{plural, secs_text};

fn state_text(d: &Value) -> String {
    let epoch = value_text(d.get("epoch").unwrap_or(&Value::Null));
    match d.get("choice") {
        None | Some(Value::Null) => format!("epoch {epoch}, no choice"),
        Some(c) => format!("epoch {epoch}, choice {}", value_text(c)),
    }
}

fn at(r: &Value, side: &str) -> (f64, String) {
    let t = r.pointer(&format!("/{side}/time_s")).and_then(Value::as_f64).unwrap_or(0.0);
    (t, state_text(r.pointer(&format!("/{side}/durable")).unwrap_or(&Value::Null)))
}

fn events_text(r: &Value) -> String {
    let events: Vec<String> = r
        .get("between")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| format!("{} at {}", e.get("f").and_then(Value::as_str).unwrap_or("?"), secs_text(e.get("time_s").and_then(Value::as_f64).unwrap_or(0.0))))
        .collect();
    if events.is_empty() {
        "no fault of this node recorded in between".into()
    } else {
        events.join(", ")
    }
}

/// `node n2 reported epoch 1, choice "n1" at 0.44 s, then epoch 1, no choice at 7.14 s (kill at
/// 4.14 s): choice forgotten within its epoch`.
pub fn sentence(result: &Value) -> Option<String> {
    let r = result.get("regressions").and_then(Value::as_array)?.first()?;
    let node = r.get("node").and_then(Value::as_str)?;
    let why = r.get("why").and_then(Value::as_str).unwrap_or("state went back");
    let (t0, before) = at(r, "before");
    let (t1, after) = at(r, "after");
    let n = result.get("regression_count").and_then(Value::as_u64).unwrap_or(1);
    let more = if n > 1 { format!(" ({} in all)", plural(n, "regression")) } else { String::new() };
    Some(format!(
        "node {node} reported {before} at {}, then {after} at {} ({}): {why}, so state it had acted on was not durable{more}",
        secs_text(t0),
        secs_text(t1),
        events_text(r)
    ))
}

/// The table of regressions.
pub fn section(result: &Value) -> Markup {
    let rows: Vec<&Value> = result.get("regressions").and_then(Value::as_array).into_iter().flatten().collect();
    markup! {
        table class="durable" {
            tr { th { "node" } th { "reported" } th { "later reported" } th { "in between" } th { "what broke" } }
            @for r in rows {
                @let (t0, before) = at(r, "before");
                @let (t1, after) = at(r, "after");
                tr {
                    td { (r.get("node").and_then(Value::as_str).unwrap_or("?")) }
                    td { (before) " at " (secs_text(t0)) }
                    td class="diff" { (after) " at " (secs_text(t1)) }
                    td { (events_text(r)) }
                    td { (r.get("why").and_then(Value::as_str).unwrap_or("")) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_sentence_names_the_node_both_states_and_the_kill() {
        let r = json!({"valid": false, "regression_count": 2, "regressions": [{
            "node": "n2", "why": "choice forgotten within its epoch",
            "before": {"time_s": 0.437, "durable": {"epoch": 1, "choice": "n1"}},
            "after": {"time_s": 7.139, "durable": {"epoch": 1, "choice": null}},
            "between": [{"time_s": 4.141, "f": "kill"}]}]});
        assert_eq!(
            sentence(&r).unwrap(),
            "node n2 reported epoch 1, choice \"n1\" at 0.44 s, then epoch 1, no choice at 7.14 s (kill at 4.14 s): choice forgotten within its epoch, so state it had acted on was not durable (2 regressions in all)"
        );
        let html = section(&r).into_string();
        assert!(html.contains("<td class=\"diff\">epoch 1, no choice at 7.14 s</td>"), "{html}");
        assert!(sentence(&json!({"valid": true, "regressions": []})).is_none());
    }
}
