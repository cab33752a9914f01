//! Splitting calls by key and pruning what cannot change the verdict, before the search.
//!
//! Dropped before the search:
//! - failed calls (they certainly did not take effect) and reads whose outcome is unknown (a
//!   read changes nothing and its output is unknown, so it constrains nothing);
//! - for registers (read/write/cas; with appends only for values no append can extend, i.e.
//!   not a string, a list or null): an unknown-outcome write or cas
//!   whose written value no operation observes (no read returns it, no cas expects it). Proof:
//!   take any linearization that includes such an operation `w` writing `v`. The operation right
//!   after `w` cannot be a read (it would return `v`) nor a cas (it would expect `v`), so it is a
//!   write, which replaces the state whatever it was, or there is none. Removing `w` therefore
//!   leaves a valid linearization, and `w` may be left out since its outcome is unknown.
//!   Dropping one may make another droppable (a dropped cas no longer observes its `from`), so
//!   this repeats until nothing changes. "Observes" compares interned ids, that is values (see
//!   [`crate::value`]): a read of `{"b":2,"a":1}` observes a write of `{"a":1,"b":2}`. The
//!   empty string and the empty list are strings and lists: with appends around they are never
//!   dropped (`append "x"` turns `""` into `"x"`).
//!
//! Refused before the search: a counter partition whose deltas could sum beyond an `i128`
//! ([`Machine::arithmetic_fits`]); the key is then undecided with that reason.

use std::collections::HashMap;

use crate::history::{Call, Key, Outcome};
use crate::model::{Input, Kind, Machine};
use serde_json::Value;

use super::search::SearchOp;

/// Call indices grouped by key, largest group first (so the long searches start early).
pub(crate) fn group_by_key(calls: &[Call]) -> Vec<(Option<Key>, Vec<usize>)> {
    let mut index: HashMap<&Option<Key>, usize> = HashMap::new();
    let mut groups: Vec<(Option<Key>, Vec<usize>)> = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        let g = *index.entry(&c.key).or_insert_with(|| {
            groups.push((c.key.clone(), Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    groups
}

/// The operations of one key, ready for the search: `ok` calls first in invoke order, then the
/// calls with unknown outcome in invoke order.
pub(crate) struct Partition {
    pub ops: Vec<SearchOp>,
    pub n_ok: usize,
    /// For each search op, the index of its call.
    pub call_of: Vec<usize>,
    /// The calls of this key (indices), all of them, for explanations.
    pub members: Vec<usize>,
}

impl Partition {
    pub(crate) fn build(calls: &[Call], members: &[usize], machine: &Machine) -> Result<Partition, String> {
        let mut ok = Vec::new();
        let mut unknown = Vec::new();
        for &ci in members {
            let call = &calls[ci];
            let compiled = machine
                .compile(call)
                .map_err(|e| format!("event {} (process {}): {e}", call.invoke_index, call.process))?;
            let Some(op) = compiled else { continue };
            match call.outcome {
                Outcome::Ok(_) => {
                    ok.push((ci, SearchOp { op, invoke: call.invoke_index, complete: call.complete_index }))
                }
                _ => unknown.push((ci, SearchOp { op, invoke: call.invoke_index, complete: None })),
            }
        }
        machine.arithmetic_fits(ok.iter().chain(&unknown).map(|(_, o)| &o.op))?;
        let has_append = ok.iter().chain(&unknown).any(|(_, o)| matches!(o.op.input, Input::Append(_)));
        if matches!(machine.kind(), Kind::Register | Kind::CasRegister | Kind::Kv) {
            // With appends around, only a value no append can extend (a number, a boolean, an
            // object) is overwritten by whatever comes next.
            let droppable = |v: u64| !has_append || matches!(machine.describe_state(v), Value::Number(_) | Value::Bool(_) | Value::Object(_));
            drop_unobserved_writes(&ok, &mut unknown, &droppable);
        }
        ok.sort_by_key(|(_, o)| o.invoke);
        unknown.sort_by_key(|(_, o)| o.invoke);
        let n_ok = ok.len();
        let (call_of, ops) = ok.into_iter().chain(unknown).unzip();
        Ok(Partition { ops, n_ok, call_of, members: members.to_vec() })
    }
}

/// See the module documentation for why this is sound.
fn drop_unobserved_writes(ok: &[(usize, SearchOp)], unknown: &mut Vec<(usize, SearchOp)>, droppable: &dyn Fn(u64) -> bool) {
    loop {
        let mut observed: HashMap<u64, ()> = HashMap::new();
        for (_, o) in ok.iter().chain(unknown.iter()) {
            match o.op.input {
                Input::Read => {
                    if let Some(v) = o.op.output {
                        observed.insert(v, ());
                    }
                }
                Input::Cas(from, _) => {
                    observed.insert(from, ());
                }
                _ => {}
            }
        }
        let before = unknown.len();
        unknown.retain(|(_, o)| match o.op.input {
            Input::Write(v) | Input::Cas(_, v) => observed.contains_key(&v) || !droppable(v),
            _ => true,
        });
        if unknown.len() == before {
            return;
        }
    }
}
