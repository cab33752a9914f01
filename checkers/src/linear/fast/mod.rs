//! The fast path: polynomial decision procedures for keys whose history is unambiguous, tried
//! on every key before the search (docs/checker.md, "The fast path").
//!
//! A key is unambiguous when every read determines which operations it observed: for registers
//! (read/write/cas) every value is written at most once and `null` never (so a read maps to the
//! one write, or cas, that set its value); for appends every appended element is unique and no
//! appended value is a string (a list read then lists its appends in their order); for sets every
//! element is added at most once. For such a key linearizability reduces to ordering a few
//! *stages* (groups of operations that must take effect in a fixed order) and, for registers,
//! ordering the value chains against each other by their forced time spans (Gibbons and Korach
//! 1997): O(n log n), no search. Where the key is not unambiguous, [`decide`] says why and the
//! caller falls back to the search.
//!
//! A violation is located exactly: the history is cut after each completion event in turn
//! (operations still open become unknown, open reads are dropped), and a binary search finds the
//! first cut that is not linearizable (linearizability is prefix-closed, so the cuts are
//! monotone). That event, the operation completing there, the contradiction the procedure found
//! at that cut and a linearization of everything before it make the explanation.

mod register;
mod stages;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use serde_json::Value;

use super::prepare::Partition;
use super::search::Fx;
use crate::history::Call;
use crate::model::{Input, Kind, Machine};

/// `cmp` of an operation whose outcome is unknown: it never completes.
pub(crate) const NEVER: i64 = i64::MAX;

/// A hash map with the search's fast hasher (keys are interned ids). Never iterated, so its
/// order cannot leak into a verdict or an explanation.
type Map<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// One operation of an unambiguous key. `inv` and `cmp` are event indices (`cmp` is [`NEVER`]
/// for an unknown outcome); `src` is the operation's index in the key's [`Partition`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct FOp {
    pub inv: i64,
    pub cmp: i64,
    pub what: What,
    pub src: usize,
}

impl FOp {
    fn is_read(&self) -> bool {
        matches!(self.what, What::Read(_) | What::Seen(_) | What::Impossible)
    }
}

/// What an operation does, with values as interned ids (0 is `null`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum What {
    /// A register read of this value.
    Read(u64),
    Write(u64),
    Cas(u64, u64),
    Append(u64),
    Add(u64),
    /// A list or set read: index into [`KeyOps::lists`] (element ids, in list order for appends,
    /// sorted for sets). A read of `null` on an append key is the empty list.
    Seen(usize),
    /// A read that no operation can produce (a list with an element never appended or twice,
    /// `[]` or a scalar on an append key, a set with an element never added).
    Impossible,
}

/// Which procedure decides a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Register,
    Append,
    Set,
}

/// The relation that forces `before` ahead of `after` in an [`Why::Order`] contradiction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relation {
    /// `before` sets the value `after` reads or replaces.
    Sets,
    /// `after` (a cas) replaces the value `before` reads.
    Replaces,
    /// Both lie on one chain of cas operations, `before` earlier.
    Chain,
    /// `after` (a read) returns `before`'s element.
    Contains,
    /// `before` (a read) returns neither `after`'s element nor anything after it.
    Lacks,
    /// `before` (a read) returns a prefix (or a subset) of what `after` returns.
    Grows,
    /// The reads list `before`'s element ahead of `after`'s.
    ListOrder,
    /// Some read contains `before`'s element but not `after`'s.
    SetOrder,
}

/// The time span a chain of values must hold: from `f`, when `done` completed (`None`: the
/// start of the history, for the initial `null`), to `s`, when `begun` was invoked. `root` is
/// the write that starts the chain (`None`: the initial `null`). Operations are [`Partition`]
/// indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub root: Option<usize>,
    pub done: Option<usize>,
    pub begun: Option<usize>,
    pub f: i64,
    pub s: i64,
    /// Whether cas operations extend the chain beyond its first value.
    pub derived: bool,
}

/// Why a key is not linearizable: the operations that contradict each other ([`Partition`]
/// indices).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// `op` observes a value no operation invoked before it completed can produce.
    NoProducer { op: usize },
    /// `op` is a cas from `null` that took effect; a cas on a missing key fails.
    CasOnMissing { op: usize },
    /// Two cas operations that took effect replace the same value; it is written once, so
    /// only one of them can find it.
    TwoReplace { a: usize, b: usize },
    /// `op` needs a value that only a cycle of cas operations, started by no write, could set.
    Unreachable { op: usize },
    /// `before` must take effect before `after`, but `after` completed before `before` began.
    Order { before: usize, after: usize, relation: Relation },
    /// Two value chains must each hold over spans that overlap. (Boxed: the other variants are
    /// a few words, and a `Why` travels in every `Err` of the procedures.)
    Overlap { a: Box<Span>, b: Box<Span> },
    /// `inner` must take effect entirely within the span `outer` must hold.
    Inside { outer: Box<Span>, inner: Box<Span> },
    /// Two reads neither of which can come first (lists neither a prefix of the other, sets
    /// neither containing the other).
    Disagree { a: usize, b: usize },
}

impl Why {
    /// The operations named, in a fixed order, without repeats.
    pub(crate) fn ops(&self) -> Vec<usize> {
        let span = |s: &Span| [s.root, s.done, s.begun];
        let all: Vec<Option<usize>> = match self {
            Why::NoProducer { op } | Why::CasOnMissing { op } | Why::Unreachable { op } => vec![Some(*op)],
            Why::TwoReplace { a, b } | Why::Disagree { a, b } => vec![Some(*a), Some(*b)],
            Why::Order { before, after, .. } => vec![Some(*before), Some(*after)],
            Why::Overlap { a, b } => span(a).into_iter().chain(span(b)).collect(),
            Why::Inside { outer, inner } => span(outer).into_iter().chain(span(inner)).collect(),
        };
        let mut out = Vec::new();
        for op in all.into_iter().flatten() {
            if !out.contains(&op) {
                out.push(op);
            }
        }
        out
    }
}

/// What the fast path found on a violating key.
#[derive(Clone, Debug)]
pub(crate) struct Finding {
    /// The first event after which the key's history is not linearizable (a completion).
    pub at: u64,
    /// The operation completing at `at` ([`Partition`] index): it cannot be placed.
    pub culprit: usize,
    /// The contradiction in the history cut at `at`.
    pub why: Why,
    /// A linearization of the history cut just before `at` ([`Partition`] indices).
    pub prefix: Vec<usize>,
}

/// The fast path's answer for one key.
#[derive(Debug)]
pub(crate) enum Decision {
    Linearizable,
    Violation(Finding),
    /// The key is not unambiguous (or is a counter): the reason, for the search to take over.
    Inapplicable(&'static str),
}

/// Decides a key without search when it is unambiguous.
pub(crate) fn decide(calls: &[Call], part: &Partition, machine: &Machine) -> Decision {
    let key = match KeyOps::build(calls, part, machine) {
        Ok(k) => k,
        Err(reason) => return Decision::Inapplicable(reason),
    };
    match key.linearize(&key.ops) {
        Ok(_) => Decision::Linearizable,
        Err(_) => Decision::Violation(key.locate()),
    }
}

/// For tests: when the fast path finds the key linearizable, replays the linearization it
/// built through the model and against real time, so a valid verdict carries its own evidence.
/// `Ok(false)`: the fast path does not apply or found a violation (nothing to verify).
pub(crate) fn verify_witness(calls: &[Call], part: &Partition, machine: &Machine) -> Result<bool, String> {
    let Ok(key) = KeyOps::build(calls, part, machine) else { return Ok(false) };
    let Ok(order) = key.linearize(&key.ops) else { return Ok(false) };
    let mut placed = vec![false; part.ops.len()];
    let (mut state, mut latest_invoke) = (machine.init(), None::<u64>);
    for &i in &order {
        let o = &part.ops[i];
        if std::mem::replace(&mut placed[i], true) {
            return Err(format!("op {i} placed twice"));
        }
        if let (Some(m), Some(c)) = (latest_invoke, o.complete) {
            if c < m {
                return Err(format!("op {i} completed at event {c}, before an op placed ahead of it was invoked (event {m})"));
            }
        }
        latest_invoke = latest_invoke.max(Some(o.invoke));
        state = machine.step(state, &o.op).ok_or_else(|| format!("the model refuses op {i} ({:?}) in state {}", o.op, machine.describe_state(state)))?;
    }
    match (0..part.n_ok).find(|&i| !placed[i]) {
        Some(i) => Err(format!("ok op {i} is missing from the linearization")),
        None => Ok(true),
    }
}

/// An unambiguous key, ready for its procedure.
pub(crate) struct KeyOps {
    class: Class,
    ops: Vec<FOp>,
    lists: Vec<Vec<u64>>,
}

impl KeyOps {
    /// Compiles a partition, or says why the fast path does not apply to it.
    fn build(calls: &[Call], part: &Partition, machine: &Machine) -> Result<KeyOps, &'static str> {
        let class = class_of(machine, &part.ops)?;
        let produced = unique_products(class, &part.ops)?;
        let mut lists = Vec::new();
        let mut ops = Vec::with_capacity(part.ops.len());
        for (src, o) in part.ops.iter().enumerate() {
            let what = match o.op.input {
                Input::Read if class == Class::Register => What::Read(o.op.output.unwrap_or(0)),
                Input::Read => {
                    let out = calls[part.call_of[src]].output().unwrap_or(&Value::Null);
                    list_read(class, out, machine, &produced, &mut lists)
                }
                Input::Write(v) => What::Write(v),
                Input::Cas(a, b) => What::Cas(a, b),
                Input::Append(x) => What::Append(x),
                Input::Insert(x) => What::Add(x),
                Input::Add(_) => return Err("counters have no fast path"),
                _ => return Err("the operation has no fast path"),
            };
            ops.push(FOp { inv: o.invoke as i64, cmp: o.complete.map_or(NEVER, |c| c as i64), what, src });
        }
        Ok(KeyOps { class, ops, lists })
    }

    /// Runs the key's procedure on `ops` (the whole key or a cut of it): a linearization
    /// ([`Partition`] indices) or the contradiction.
    fn linearize(&self, ops: &[FOp]) -> Result<Vec<usize>, Why> {
        match self.class {
            Class::Register => register::linearize(ops),
            Class::Append => stages::append(ops, &self.lists),
            Class::Set => stages::set(ops, &self.lists),
        }
    }

    /// The key as it stood just after event `e`: operations invoked later are gone, open ones
    /// have an unknown outcome, and open reads are dropped (their result is not known yet).
    fn cut(&self, e: i64) -> Vec<FOp> {
        self.ops
            .iter()
            .filter(|o| o.inv <= e)
            .filter(|o| o.cmp <= e || !o.is_read())
            .map(|o| if o.cmp <= e { *o } else { FOp { cmp: NEVER, ..*o } })
            .collect()
    }

    /// Finds the first completion after which the key is not linearizable (binary search over
    /// the completions: cuts are monotone), with its contradiction and the linearization before.
    fn locate(&self) -> Finding {
        let mut ends: Vec<i64> = self.ops.iter().filter(|o| o.cmp != NEVER).map(|o| o.cmp).collect();
        ends.sort_unstable();
        let (mut lo, mut hi) = (0usize, ends.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.linearize(&self.cut(ends[mid])).is_err() {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        // Every cut linearizable while the whole key is not cannot happen (the last cut drops
        // only unknown operations invoked after every completion, which no read can observe);
        // should it, the whole key is the cut.
        let e = ends.get(lo).copied().unwrap_or(NEVER);
        let why = match self.linearize(&self.cut(e)) {
            Err(w) => w,
            Ok(_) => self.linearize(&self.ops).err().unwrap_or(Why::NoProducer { op: 0 }),
        };
        let prefix = self.linearize(&self.cut(e.saturating_sub(1))).unwrap_or_default();
        let culprit = self.ops.iter().find(|o| o.cmp == e).map_or_else(|| why.ops()[0], |o| o.src);
        let at = if e == NEVER { self.ops.iter().map(|o| o.inv).max().unwrap_or(0) as u64 } else { e as u64 };
        Finding { at, culprit, why, prefix }
    }
}

/// Which procedure applies to a key, or why none does.
fn class_of(machine: &Machine, ops: &[super::search::SearchOp]) -> Result<Class, &'static str> {
    match machine.kind() {
        Kind::Counter => return Err("counters have no fast path"),
        Kind::Set => return Ok(Class::Set),
        Kind::Mutex => return Err("mutexes have no fast path"),
        Kind::FifoQueue | Kind::UnorderedQueue => return Err("queues have no fast path"),
        Kind::MultiRegister => return Err("multi-register transactions have no fast path"),
        Kind::StringKv => return Err("string-kv keys start from \"\", not null"),
        Kind::Register | Kind::CasRegister | Kind::Kv => {}
    }
    let mut class = Class::Register;
    let (mut writes, mut appends) = (false, false);
    for o in ops {
        match o.op.input {
            Input::Write(_) | Input::Cas(..) => writes = true,
            Input::Append(x) => {
                appends = true;
                // A string append concatenates: "ab" may be "a" + "b" or "ab" + "".
                if machine.describe_state(x).is_string() {
                    return Err("a string is appended (concatenations are ambiguous)");
                }
                class = Class::Append;
            }
            _ => {}
        }
    }
    if writes && appends {
        return Err("writes or cas and appends on one key");
    }
    Ok(class)
}

/// The values (or elements) the key's operations produce, each exactly once; or why not.
fn unique_products(class: Class, ops: &[super::search::SearchOp]) -> Result<Map<u64, ()>, &'static str> {
    let mut seen: Map<u64, ()> = Map::default();
    for o in ops {
        let v = match (class, o.op.input) {
            (Class::Register, Input::Write(v) | Input::Cas(_, v)) => v,
            (Class::Append, Input::Append(x)) | (Class::Set, Input::Insert(x)) => x,
            _ => continue,
        };
        if class == Class::Register && v == 0 {
            return Err("null is written (reads of null become ambiguous)");
        }
        if seen.insert(v, ()).is_some() {
            return Err(match class {
                Class::Register => "a value is written more than once",
                Class::Append => "a value is appended more than once",
                Class::Set => "an element is added more than once",
            });
        }
    }
    Ok(seen)
}

/// Compiles a list read (append key) or a set read into element ids.
fn list_read(class: Class, out: &Value, machine: &Machine, produced: &Map<u64, ()>, lists: &mut Vec<Vec<u64>>) -> What {
    let items: &[Value] = match (class, out) {
        // No append ever leaves `[]`, and a missing key reads `null`.
        (Class::Append, Value::Null) => &[],
        (Class::Append, Value::Array(items)) if !items.is_empty() => items,
        (Class::Set, Value::Array(items)) => items,
        _ => return What::Impossible,
    };
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        match machine.lookup(item).filter(|id| produced.contains_key(id)) {
            Some(id) => ids.push(id),
            None => return What::Impossible,
        }
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if class == Class::Set {
        ids = sorted;
    } else if sorted.len() != ids.len() {
        // An element listed twice: each was appended once.
        return What::Impossible;
    }
    lists.push(ids);
    What::Seen(lists.len() - 1)
}

/// Why `before` must precede `after`, from what they do.
fn relation(before: What, after: What) -> Relation {
    match (before, after) {
        (What::Write(v) | What::Cas(_, v), What::Read(w) | What::Cas(w, _)) if v == w => Relation::Sets,
        (What::Read(v), What::Cas(a, _)) if v == a => Relation::Replaces,
        (What::Append(_) | What::Add(_), What::Seen(_)) => Relation::Contains,
        (What::Seen(_), What::Append(_) | What::Add(_)) => Relation::Lacks,
        (What::Seen(_), What::Seen(_)) => Relation::Grows,
        (What::Append(_), What::Append(_)) => Relation::ListOrder,
        (What::Add(_), What::Add(_)) => Relation::SetOrder,
        _ => Relation::Chain,
    }
}

/// Checks that `stages` (op indices into `ops`) can take effect in this order, each operation
/// at a point inside its own interval: an operation can follow every earlier stage exactly when
/// it completed after the last invocation among them (the earliest-point schedule). `start` is
/// that last invocation before the first stage, if any. On failure: the `(before, after)` pair
/// of op indices.
fn check_stages(ops: &[FOp], stages: &[Vec<usize>], start: Option<(i64, usize)>) -> Result<(), (usize, usize)> {
    let mut latest = start;
    for stage in stages {
        if let Some((m, y)) = latest {
            if let Some(&x) = stage.iter().find(|&&x| ops[x].cmp < m) {
                return Err((y, x));
            }
        }
        for &x in stage {
            if latest.is_none_or(|(m, _)| ops[x].inv > m) {
                latest = Some((ops[x].inv, x));
            }
        }
    }
    Ok(())
}

/// The order of the earliest-point schedule of [`check_stages`]: stage by stage, within a
/// stage by the point `max(last invocation before the stage, own invocation)`.
fn order_stages(ops: &[FOp], stages: &[Vec<usize>], start: i64) -> Vec<usize> {
    let mut out = Vec::with_capacity(stages.iter().map(Vec::len).sum());
    let mut latest = start;
    for stage in stages {
        let mut sorted = stage.clone();
        sorted.sort_by_key(|&x| (ops[x].inv.max(latest), ops[x].inv));
        out.extend(sorted.iter().map(|&x| ops[x].src));
        latest = stage.iter().map(|&x| ops[x].inv).fold(latest, i64::max);
    }
    out
}

/// The [`Why::Order`] contradiction for a failed [`check_stages`].
fn order_violation(ops: &[FOp], (before, after): (usize, usize)) -> Why {
    Why::Order { before: ops[before].src, after: ops[after].src, relation: relation(ops[before].what, ops[after].what) }
}

#[cfg(test)]
mod tests;
