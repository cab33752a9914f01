//! Splitting calls into partitions and pruning what cannot change the verdict, before the search.
//!
//! The model splits the calls ([`Model::partition`]: by key, or for transactions over several
//! registers by the groups of registers they touch). Dropped before the search:
//! - failed calls (they certainly did not take effect) and reads whose outcome is unknown (a
//!   read changes nothing and its output is unknown, so it constrains nothing);
//! - unknown-outcome calls the model's hint [`Model::droppable_unknown`] names (for registers:
//!   an unknown write or cas whose value nobody observes; the proof is with the hint in
//!   `model.rs`).
//!
//! Refused before the search: a partition the model does not admit ([`Model::admit`]: a counter
//! whose deltas could sum beyond an `i128`); the key is then undecided with that reason.

use crate::history::{Call, Key, Outcome};
use crate::model::{Model, ModelOp};

use super::search::SearchOp;

/// The model's partitions, largest first (so the long searches start early), then by label.
pub(crate) fn group_by_key<M: Model + ?Sized>(calls: &[Call], model: &M) -> Vec<(Option<Key>, Vec<usize>)> {
    let mut groups = model.partition(calls);
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
    pub(crate) fn build<M: Model + ?Sized>(calls: &[Call], members: &[usize], machine: &M) -> Result<Partition, String> {
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
        let all: Vec<ModelOp> = ok.iter().chain(&unknown).map(|(_, o): &(usize, SearchOp)| o.op).collect();
        machine.admit(&all)?;
        let dropped = machine.droppable_unknown(&all[..ok.len()], &all[ok.len()..]);
        if dropped.iter().any(|d| *d) {
            let mut d = dropped.into_iter();
            unknown.retain(|_| !d.next().unwrap_or(false));
        }
        ok.sort_by_key(|(_, o)| o.invoke);
        unknown.sort_by_key(|(_, o)| o.invoke);
        let n_ok = ok.len();
        let (call_of, ops) = ok.into_iter().chain(unknown).unzip();
        Ok(Partition { ops, n_ok, call_of, members: members.to_vec() })
    }
}
