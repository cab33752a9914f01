//! Two small checkers for request/reply services without shared state:
//!
//! - `unique-ids`: every `generate` acknowledged (`ok`) returned an id no other acknowledged
//!   `generate` returned, across the whole history (restarts included). Ids are compared as
//!   values ([`crate::value`]: `1` and `1.0` are the same id).
//! - `echo`: every acknowledged `echo` returned exactly the value it sent.
//!
//! Both are linear in the history and need no budget.

use serde_json::{json, Value};
use std::collections::HashMap;

use crate::history::History;
use crate::registry::support::{self, call_json, EXAMPLES};
use crate::value::canonical_text;
use crate::verdict::{CheckResult, Validity};

/// Checks that no id was handed out twice.
pub fn check_unique_ids(history: &History) -> CheckResult {
    let calls = match support::calls(history) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut duplicated = Vec::new();
    let mut count = 0u64;
    let mut dup_count = 0u64;
    let mut missing = 0u64;
    for (i, c) in calls.iter().enumerate().filter(|(_, c)| &*c.f == "generate" && c.is_ok()) {
        count += 1;
        let Some(id) = c.output().filter(|v| !v.is_null()) else {
            missing += 1;
            continue;
        };
        match seen.get(&canonical_text(id)) {
            Some(&first) => {
                dup_count += 1;
                if duplicated.len() < EXAMPLES {
                    duplicated.push(json!({"id": id, "first": call_json(&calls[first]), "again": call_json(c)}));
                }
            }
            None => {
                seen.insert(canonical_text(id), i);
            }
        }
    }
    let valid = if dup_count > 0 {
        Validity::Invalid
    } else if missing > 0 {
        Validity::Unknown
    } else {
        Validity::Valid
    };
    let mut r = CheckResult::new(valid).with("generated", json!(count)).with("duplicated_count", json!(dup_count)).with("duplicated", Value::Array(duplicated.clone()));
    if let Some(first) = duplicated.first() {
        r = r.with("explanation", json!(format!("id {} was handed out twice ({} duplicates in all)", first["id"], dup_count)));
    }
    if missing > 0 {
        r = r.with("error", json!(format!("{missing} acknowledged generate(s) carry no id")));
    }
    r
}

/// Checks that every acknowledged echo returned what it sent.
pub fn check_echo(history: &History) -> CheckResult {
    let calls = match support::calls(history) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut bad = Vec::new();
    let mut count = 0u64;
    let mut bad_count = 0u64;
    for c in calls.iter().filter(|c| &*c.f == "echo" && c.is_ok()) {
        count += 1;
        let out = c.output().cloned().unwrap_or(Value::Null);
        if canonical_text(&out) != canonical_text(&c.input) {
            bad_count += 1;
            if bad.len() < EXAMPLES {
                bad.push(call_json(c));
            }
        }
    }
    let mut r = CheckResult::new(if bad_count > 0 { Validity::Invalid } else { Validity::Valid })
        .with("echoes", json!(count))
        .with("wrong_count", json!(bad_count))
        .with("wrong", Value::Array(bad.clone()));
    if let Some(first) = bad.first() {
        r = r.with("explanation", json!(format!("echo of {} came back as {}", first["value"], first["output"])));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Op, OpType::*};

    fn h(parts: &[(u64, crate::history::OpType, &str, Value)]) -> History {
        History::from_ops(parts.iter().map(|(p, t, f, v)| Op::new(*p, *t, f, v.clone())).collect())
    }

    #[test]
    fn duplicate_ids_are_caught() {
        let ok = h(&[(0, Invoke, "generate", Value::Null), (0, Ok, "generate", json!("n1-1")), (1, Invoke, "generate", Value::Null), (1, Ok, "generate", json!("n2-1"))]);
        assert_eq!(check_unique_ids(&ok).valid, Validity::Valid);
        let bad = h(&[(0, Invoke, "generate", Value::Null), (0, Ok, "generate", json!(1)), (1, Invoke, "generate", Value::Null), (1, Ok, "generate", json!(1.0))]);
        let r = check_unique_ids(&bad);
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.details["duplicated_count"], json!(1));
    }

    #[test]
    fn wrong_echoes_are_caught() {
        let ok = h(&[(0, Invoke, "echo", json!("a")), (0, Ok, "echo", json!("a"))]);
        assert_eq!(check_echo(&ok).valid, Validity::Valid);
        let bad = h(&[(0, Invoke, "echo", json!("a")), (0, Ok, "echo", json!("b"))]);
        assert_eq!(check_echo(&bad).valid, Validity::Invalid);
    }
}
