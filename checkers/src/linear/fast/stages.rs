//! Appends with unique elements and sets with unique adds: one chain of stages each.
//!
//! **Append** (no writes or cas on the key, no string appended): a list read names the appends
//! it observed and their order, so every read must be a prefix of the longest read `M`, and the
//! only possible linearizations are: the reads of `null`, then `M`'s first append, the reads of
//! length 1, its second append, the reads of length 2, ... the reads of `M`, then every other
//! `ok` append (no read saw them, so all reads precede them). Unknown appends outside `M`
//! never took effect as far as any read can tell and are dropped; those inside `M` took effect.
//!
//! **Set** (each element added once): the state only grows, so the read sets must form a chain
//! under inclusion `D1 ⊂ D2 ⊂ ...`; the stages are the reads of the empty set, the adds of
//! `D1`, the reads of `D1`, the adds of `D2 \ D1`, the reads of `D2`, ..., then every other `ok`
//! add. Adds in one stage may take effect in any order.
//!
//! Either way the key is linearizable exactly when the stages fit their intervals
//! ([`super::check_stages`]): a read contains every append or add acknowledged before it was
//! invoked and none invoked after it completed, reads never go back, and appends are listed in an
//! order real time allows. O(n log n) plus the length of the reads.

use super::{check_stages, order_stages, order_violation, FOp, Map, What, Why, NEVER};

/// The element list of a read, checked against the appends or adds present in this (possibly
/// cut) history.
fn read_list<'a>(ops: &[FOp], lists: &'a [Vec<u64>], r: usize, producer: &Map<u64, usize>) -> Result<&'a [u64], Why> {
    match ops[r].what {
        What::Seen(l) if lists[l].iter().all(|x| producer.contains_key(x)) => Ok(&lists[l]),
        _ => Err(Why::NoProducer { op: ops[r].src }),
    }
}

/// The producing operation of every element, and the reads, in op order.
fn index(ops: &[FOp]) -> (Map<u64, usize>, Vec<usize>) {
    let mut producer: Map<u64, usize> = Map::default();
    let mut reads = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        match o.what {
            What::Append(x) | What::Add(x) => {
                producer.insert(x, i);
            }
            What::Seen(_) | What::Impossible => reads.push(i),
            _ => {}
        }
    }
    (producer, reads)
}

/// Checks the stages and returns their linearization.
fn finish(ops: &[FOp], stages: &[Vec<usize>]) -> Result<Vec<usize>, Why> {
    check_stages(ops, stages, None).map_err(|pair| order_violation(ops, pair))?;
    Ok(order_stages(ops, stages, -2))
}

/// A linearization of an append key, or the contradiction.
pub(super) fn append(ops: &[FOp], lists: &[Vec<u64>]) -> Result<Vec<usize>, Why> {
    let (producer, reads) = index(ops);
    let mut seen = Vec::with_capacity(reads.len());
    for &r in &reads {
        seen.push(read_list(ops, lists, r, &producer)?);
    }
    // The first of the longest reads, so the choice does not depend on anything but the ops.
    let longest = (0..reads.len()).rev().max_by_key(|&k| seen[k].len());
    let m: &[u64] = longest.map_or(&[], |k| seen[k]);
    if let Some(k) = (0..reads.len()).find(|&k| !m.starts_with(seen[k])) {
        return Err(Why::Disagree { a: ops[reads[k]].src, b: ops[reads[longest.unwrap_or(k)]].src });
    }
    let mut by_len: Vec<Vec<usize>> = vec![Vec::new(); m.len() + 1];
    for (k, &r) in reads.iter().enumerate() {
        by_len[seen[k].len()].push(r);
    }
    let mut in_m = vec![false; ops.len()];
    let mut stages = vec![std::mem::take(&mut by_len[0])];
    for (k, x) in m.iter().enumerate() {
        let a = producer[x];
        in_m[a] = true;
        stages.push(vec![a]);
        stages.push(std::mem::take(&mut by_len[k + 1]));
    }
    stages.push(unseen_ok(ops, &in_m));
    finish(ops, &stages)
}

/// The `ok` appends or adds no read observed: they follow every read.
fn unseen_ok(ops: &[FOp], seen: &[bool]) -> Vec<usize> {
    (0..ops.len()).filter(|&i| !seen[i] && ops[i].cmp != NEVER && matches!(ops[i].what, What::Append(_) | What::Add(_))).collect()
}

/// Whether sorted `a` is a subset of sorted `b`.
fn subset(a: &[u64], b: &[u64]) -> bool {
    let mut j = 0;
    a.iter().all(|x| {
        while j < b.len() && b[j] < *x {
            j += 1;
        }
        j < b.len() && b[j] == *x
    })
}

/// A linearization of a set key, or the contradiction.
pub(super) fn set(ops: &[FOp], lists: &[Vec<u64>]) -> Result<Vec<usize>, Why> {
    let (producer, mut reads) = index(ops);
    for &r in &reads {
        read_list(ops, lists, r, &producer)?;
    }
    let list = |r: usize| match ops[r].what {
        What::Seen(l) => &lists[l][..],
        _ => &[],
    };
    reads.sort_by_key(|&r| (list(r).len(), r));
    if let Some(w) = reads.windows(2).find(|w| !subset(list(w[0]), list(w[1]))) {
        return Err(Why::Disagree { a: ops[w[0]].src, b: ops[w[1]].src });
    }
    let mut in_sets = vec![false; ops.len()];
    let mut stages: Vec<Vec<usize>> = Vec::new();
    let mut prev: &[u64] = &[];
    for group in reads.chunk_by(|&a, &b| list(a) == list(b)) {
        let set = list(group[0]);
        // `prev` ⊆ `set` (checked above), so the new elements are those not in `prev`.
        let added: Vec<usize> = set.iter().filter(|x| prev.binary_search(x).is_err()).map(|x| producer[x]).collect();
        for &a in &added {
            in_sets[a] = true;
        }
        stages.push(added);
        stages.push(group.to_vec());
        prev = set;
    }
    stages.push(unseen_ok(ops, &in_sets));
    finish(ops, &stages)
}
