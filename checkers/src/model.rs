//! The sequential specifications the linearizability checker judges histories against.
//!
//! A model is a pure value in the manner of porcupine: an initial state, a `step(state, op)` that
//! answers the next state or `None` when the operation (with its observed output) is impossible
//! in that state, a partition of the history into independent pieces (one per key: a
//! linearizable history of many keys is exactly one whose every key is linearizable, Herlihy and
//! Wing's locality), and descriptions of states for explanations.
//!
//! States are `u64` handles so the checker can hash and compare them in one instruction: the
//! value of a register is an interned id (0 is `null`, the missing key), a counter is an interned
//! id of its exact sum, a set or an appended value is an interned id of its content. Values are
//! interned by their canonical form ([`crate::value::canonical`]), so `{"a":1,"b":2}` and
//! `{"b":2,"a":1}` are one state, and so are `1` and `1.0`. Interning happens behind a
//! `RefCell`, so `step` stays a function of its arguments as far as any caller can see; one
//! [`Machine`] serves one partition and is never shared between threads.
//!
//! Semantics (contract section 3, docs/design.md):
//! - `register`: `read` (output: the value, `null` when missing), `write v`.
//! - `cas-register`: adds `cas [from, to]`, which succeeds only when the value equals `from`; a
//!   cas on a missing key fails, so an `ok` cas on a missing key is impossible.
//! - `kv`: a cas-register per key, plus `append x`: string concatenation when both are strings,
//!   otherwise a list push; appending to a missing key creates it (`"x"` or `[x]`).
//! - `counter`: `add d` (an exact integer, see [`crate::value::exact_int`]), `read` answers the
//!   sum. Sums are exact `i128`s, never wrapped: a partition whose deltas could overflow an
//!   `i128` is refused before the search ([`Machine::arithmetic_fits`]), so the checker answers
//!   unknown with the reason instead of judging a wrong sum.
//! - `set`: `add x`, `read` answers the whole set as a list (order and duplicates ignored).
//! - `mutex`: `acquire` succeeds only when the lock is free, `release` only when it is held
//!   (by anyone: the model, like Knossos's, does not track owners).
//! - `fifo-queue`: `enqueue x` (never `null`), `dequeue` answers the oldest element, or `null`
//!   when the queue is empty. A dequeue with an unknown outcome took the oldest element, or
//!   nothing from an empty queue.
//! - `unordered-queue`: the same, but a dequeue may answer any element (a multiset). A dequeue
//!   with an unknown outcome may have taken any element, which a deterministic step cannot
//!   express: such a partition does not fit the model (the answer is unknown, with the reason).
//! - `multi-register`: `txn [[f k v] ...]`, micro-operations `r` (or `read`) and `w` (or
//!   `write`) on registers named by any value, applied in order; an `ok` txn answers the list
//!   with its reads filled in (`null`: the register was never written), an unknown one
//!   constrains nothing by its reads. Partitioned by the groups of registers that transactions
//!   touch together, so every transaction lies in one partition.
//!
//! Models are open: [`Model`] is the interface the search uses (init, step, partition,
//! describe, and optional pruning hints); [`Machine`] implements it for the built-in models, and
//! [`crate::linear::check_model`] checks a history against any implementation.
//!
//! Operations that failed are dropped before they reach a model; an operation with an unknown
//! outcome is compiled with an unknown output (a read with an unknown output constrains nothing
//! and is dropped).

use serde_json::Value;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::history::{Call, History, Key, Op, Outcome};
use crate::value::{big, canonical, canonical_text, exact_int};

/// The model names [`by_name`] knows, in the order the documentation lists them.
pub const NAMES: &[&str] =
    &["register", "cas-register", "kv", "counter", "set", "mutex", "fifo-queue", "unordered-queue", "multi-register", "string-kv"];

/// Which sequential specification to check against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Register,
    CasRegister,
    Kv,
    Counter,
    Set,
    /// `acquire` / `release` of one lock (Knossos's `mutex`).
    Mutex,
    /// `enqueue x` / `dequeue` (answers the oldest element, `null` when empty).
    FifoQueue,
    /// `enqueue x` / `dequeue` (answers any element, `null` when empty).
    UnorderedQueue,
    /// `txn [[f k v] ...]`: reads (`r`) and writes (`w`) of several registers at once.
    MultiRegister,
    /// `get`, `put` and `append` of strings per key, a missing key reading `""` (the key-value
    /// store of Porcupine's tests and of many course labs).
    StringKv,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Register => "register",
            Kind::CasRegister => "cas-register",
            Kind::Kv => "kv",
            Kind::Counter => "counter",
            Kind::Set => "set",
            Kind::Mutex => "mutex",
            Kind::FifoQueue => "fifo-queue",
            Kind::UnorderedQueue => "unordered-queue",
            Kind::MultiRegister => "multi-register",
            Kind::StringKv => "string-kv",
        }
    }

    /// The operations this model accepts.
    pub fn operations(self) -> &'static [&'static str] {
        match self {
            Kind::Register => &["read", "write"],
            Kind::CasRegister => &["read", "write", "cas"],
            Kind::Kv => &["read", "write", "cas", "append"],
            Kind::Counter => &["add", "read"],
            Kind::Set => &["add", "read"],
            Kind::Mutex => &["acquire", "release"],
            Kind::FifoQueue | Kind::UnorderedQueue => &["enqueue", "dequeue"],
            Kind::MultiRegister => &["txn"],
            Kind::StringKv => &["get", "put", "append"],
        }
    }

    /// Whether a write of a value nobody observed may be dropped (see the checker's pruning).
    /// True for the register family without `append`, whose state is only ever replaced.
    pub fn overwrites_only(self) -> bool {
        matches!(self, Kind::Register | Kind::CasRegister)
    }
}

/// The model with this name, or `None` (the caller reports a usage error).
pub fn by_name(name: &str) -> Option<Kind> {
    match name {
        "register" => Some(Kind::Register),
        "cas-register" => Some(Kind::CasRegister),
        "kv" => Some(Kind::Kv),
        "counter" => Some(Kind::Counter),
        "set" => Some(Kind::Set),
        "mutex" => Some(Kind::Mutex),
        "fifo-queue" => Some(Kind::FifoQueue),
        "unordered-queue" => Some(Kind::UnorderedQueue),
        "multi-register" => Some(Kind::MultiRegister),
        "string-kv" => Some(Kind::StringKv),
        _ => None,
    }
}

/// Guesses the model from the operations of a history: `txn` means `multi-register`,
/// `acquire`/`release` `mutex`, `enqueue`/`dequeue` `fifo-queue`; `append` or any key means
/// `kv`, `cas` means `cas-register`, `add` means `counter` (or `set` when reads answer lists),
/// else `register`.
pub fn guess(history: &History) -> &'static str {
    let mut g = Guesser::default();
    history.ops.iter().for_each(|op| g.observe(op));
    g.model()
}

/// [`guess`] one event at a time, for a history that is read as a stream and never held.
#[derive(Clone, Debug, Default)]
pub struct Guesser {
    /// A model decided by one operation alone (`txn`, a lock, a queue).
    decided: Option<&'static str>,
    append: bool,
    keyed: bool,
    cas: bool,
    add: bool,
    list_reads: bool,
}

impl Guesser {
    /// Takes the next event into account (nemesis events count for nothing).
    pub fn observe(&mut self, op: &Op) {
        if op.is_nemesis() || self.decided.is_some() {
            return;
        }
        self.keyed |= op.key.is_some();
        match &*op.f {
            "get" | "put" => self.decided = Some("string-kv"),
            "txn" => self.decided = Some("multi-register"),
            "acquire" | "release" => self.decided = Some("mutex"),
            "enqueue" | "dequeue" => self.decided = Some("fifo-queue"),
            "append" => self.append = true,
            "cas" => self.cas = true,
            "add" => self.add = true,
            "read" => self.list_reads |= op.value.is_array(),
            _ => {}
        }
    }

    /// The model the events seen so far suggest.
    pub fn model(&self) -> &'static str {
        if let Some(m) = self.decided {
            m
        } else if self.append || (self.keyed && !self.add) {
            "kv"
        } else if self.cas {
            "cas-register"
        } else if self.add && self.list_reads {
            "set"
        } else if self.add {
            "counter"
        } else {
            "register"
        }
    }
}

/// What an operation asks, with its arguments as interned handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    Read,
    Write(u64),
    Cas(u64, u64),
    Append(u64),
    /// Counter increment, exact.
    Add(i128),
    /// Set insertion of an interned element.
    Insert(u64),
    /// Mutex: take the free lock.
    Acquire,
    /// Mutex: free the held lock.
    Release,
    /// Queue insertion of an interned element (never `null`).
    Enqueue(u64),
    /// Queue removal; the output is the interned element (`null`, handle 0, when the queue was
    /// empty), or unknown.
    Dequeue,
    /// A multi-register transaction: index of its micro-operations in the machine's tables.
    Txn(u64),
    /// For models defined outside this crate ([`Model`]): an operation code and an argument,
    /// both the model's own.
    Custom(u32, u64),
}

/// An operation ready for [`Machine::step`]: its input and, when known, its output (for reads,
/// the state handle the read observed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModelOp {
    pub input: Input,
    pub output: Option<u64>,
}

impl ModelOp {
    /// Reads never change the state.
    pub fn is_read(&self) -> bool {
        matches!(self.input, Input::Read)
    }
}

/// Interned values of one partition.
#[derive(Default)]
struct Tables {
    ids: HashMap<String, u64>,
    /// Ids of the values whose canonical form is an `i64`, by number: most values of a history
    /// are, and this spares their text (same identity: `1` and `1.0` are the one `i64` 1).
    int_ids: HashMap<i64, u64, std::hash::BuildHasherDefault<crate::linear::Fx>>,
    /// Ids of strings, by the string itself: its canonical text is itself quoted, so this spares
    /// building and escaping that text for every string state a search of appends reaches.
    str_ids: HashMap<String, u64, std::hash::BuildHasherDefault<crate::linear::Fx>>,
    values: Vec<Value>,
    appends: HashMap<(u64, u64), u64, std::hash::BuildHasherDefault<crate::linear::Fx>>,
    set_ids: HashMap<Vec<u64>, u64>,
    sets: Vec<Vec<u64>>,
    inserts: HashMap<(u64, u64), u64>,
    sum_ids: HashMap<i128, u64>,
    sums: Vec<i128>,
    /// Sequences: queue contents (in order, or sorted for an unordered queue) and multi-register
    /// maps (sorted `key, value` pairs, flattened). Handle 0 is the empty sequence.
    seq_ids: HashMap<Vec<u64>, u64>,
    seqs: Vec<Vec<u64>>,
    /// Cached steps on sequences: (state, op code, argument) to the next state.
    seq_steps: HashMap<(u64, u8, u64), Option<u64>>,
    /// Micro-operations of the compiled transactions.
    txns: Vec<Vec<Micro>>,
    /// Approximate bytes held by the sequence tables (they grow with the search).
    seq_bytes: u64,
}

/// One micro-operation of a transaction: a read (with the value it answered, `None` when
/// unknown) or a write, of the register named by an interned key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Micro {
    write: bool,
    key: u64,
    value: Option<u64>,
}

impl Tables {
    fn new() -> Tables {
        let mut t = Tables::default();
        t.intern(&Value::Null);
        t.intern_set(Vec::new());
        t.intern_sum(0);
        t.intern_seq(Vec::new());
        t
    }

    fn intern_seq(&mut self, seq: Vec<u64>) -> u64 {
        if let Some(id) = self.seq_ids.get(&seq) {
            return *id;
        }
        let id = self.seqs.len() as u64;
        // The sequence twice (table and index), each with its header and a map slot; doubled
        // for the allocator and the maps' spare capacity (measured RSS was about twice this).
        self.seq_bytes += 2 * (2 * (seq.len() as u64 * 8 + 24) + 16);
        self.seqs.push(seq.clone());
        self.seq_ids.insert(seq, id);
        id
    }

    /// A queue after enqueueing `x`: at the back, or in sorted position when `sorted`.
    fn enqueue(&mut self, state: u64, x: u64, sorted: bool) -> u64 {
        let key = (state, sorted as u8, x);
        if let Some(Some(id)) = self.seq_steps.get(&key) {
            return *id;
        }
        let mut q = self.seqs[state as usize].clone();
        if sorted {
            let at = q.partition_point(|&e| e <= x);
            q.insert(at, x);
        } else {
            q.push(x);
        }
        let id = self.intern_seq(q);
        self.seq_steps.insert(key, Some(id));
        self.seq_bytes += 96;
        id
    }

    /// A queue after a dequeue that answered `out` (`Some(0)`: empty; `None`: unknown, which
    /// only a FIFO queue resolves, by taking its oldest element).
    fn dequeue(&mut self, state: u64, out: Option<u64>, sorted: bool) -> Option<u64> {
        let key = (state, 2 + sorted as u8, out.map_or(u64::MAX, |o| o));
        if let Some(next) = self.seq_steps.get(&key) {
            return *next;
        }
        let q = self.seqs[state as usize].clone();
        let next = match out {
            Some(0) => q.is_empty().then_some(state),
            None if q.is_empty() => Some(state),
            None if sorted => None,
            None => Some(q[1..].to_vec()).map(|r| self.intern_seq(r)),
            Some(x) if sorted => match q.binary_search(&x) {
                Ok(at) => {
                    let mut r = q.clone();
                    r.remove(at);
                    Some(self.intern_seq(r))
                }
                Err(_) => None,
            },
            Some(x) => (q.first() == Some(&x)).then(|| q[1..].to_vec()).map(|r| self.intern_seq(r)),
        };
        self.seq_steps.insert(key, next);
        self.seq_bytes += 96;
        next
    }

    /// A multi-register map after a transaction, or `None` when one of its reads disagrees.
    fn txn(&mut self, state: u64, txn: u64) -> Option<u64> {
        let key = (state, 4, txn);
        if let Some(next) = self.seq_steps.get(&key) {
            return *next;
        }
        let mut map = self.seqs[state as usize].clone();
        let mut ok = true;
        for m in &self.txns[txn as usize] {
            let at = pair_search(&map, m.key);
            let current = at.ok().map_or(0, |i| map[2 * i + 1]);
            if !m.write {
                if m.value.is_some_and(|v| v != current) {
                    ok = false;
                    break;
                }
                continue;
            }
            let v = m.value.unwrap_or(0);
            match (at, v) {
                (Ok(i), 0) => {
                    map.drain(2 * i..2 * i + 2);
                }
                (Ok(i), v) => map[2 * i + 1] = v,
                (Err(_), 0) => {}
                (Err(i), v) => {
                    map.splice(2 * i..2 * i, [m.key, v]);
                }
            }
        }
        let next = ok.then(|| self.intern_seq(map));
        self.seq_steps.insert(key, next);
        self.seq_bytes += 96;
        next
    }

    /// The id of a value; equal values (in the sense of [`crate::value`]) share one id. The
    /// canonical form is what is kept, so appends and descriptions never see two spellings.
    #[inline]
    fn intern(&mut self, v: &Value) -> u64 {
        let canon = canonical(v);
        if let Some(i) = as_int(&canon) {
            let next = self.values.len() as u64;
            let id = *self.int_ids.entry(i).or_insert(next);
            if id == next {
                self.values.push(canon.into_owned());
            }
            return id;
        }
        if let Value::String(s) = &*canon {
            if let Some(id) = self.str_ids.get(s.as_str()) {
                return *id;
            }
            let id = self.values.len() as u64;
            self.str_ids.insert(s.clone(), id);
            self.values.push(canon.into_owned());
            return id;
        }
        let text = canon.to_string();
        if let Some(id) = self.ids.get(&text) {
            return *id;
        }
        let id = self.values.len() as u64;
        self.values.push(canon.into_owned());
        self.ids.insert(text, id);
        id
    }

    /// The id of a value when it was interned before; never interns.
    fn lookup(&self, v: &Value) -> Option<u64> {
        let canon = canonical(v);
        match (as_int(&canon), &*canon) {
            (Some(i), _) => self.int_ids.get(&i).copied(),
            (None, Value::String(s)) => self.str_ids.get(s.as_str()).copied(),
            (None, _) => self.ids.get(&canonical_text(&canon)).copied(),
        }
    }

    fn intern_sum(&mut self, sum: i128) -> u64 {
        let next = self.sums.len() as u64;
        let id = *self.sum_ids.entry(sum).or_insert(next);
        if id == next {
            self.sums.push(sum);
        }
        id
    }

    /// The counter after adding `d`; `None` only on an overflow, which
    /// [`Machine::arithmetic_fits`] rules out before any search.
    fn add(&mut self, state: u64, d: i128) -> Option<u64> {
        let sum = self.sums[state as usize].checked_add(d)?;
        Some(self.intern_sum(sum))
    }

    fn intern_set(&mut self, mut elems: Vec<u64>) -> u64 {
        elems.sort_unstable();
        elems.dedup();
        if let Some(id) = self.set_ids.get(&elems) {
            return *id;
        }
        let id = self.sets.len() as u64;
        self.sets.push(elems.clone());
        self.set_ids.insert(elems, id);
        id
    }

    fn append(&mut self, state: u64, suffix: u64) -> Option<u64> {
        if let Some(id) = self.appends.get(&(state, suffix)) {
            return Some(*id);
        }
        let next = match (&self.values[state as usize], &self.values[suffix as usize]) {
            (Value::Null, Value::String(s)) => Value::String(s.clone()),
            (Value::Null, x) => Value::Array(vec![x.clone()]),
            (Value::String(a), Value::String(b)) => Value::String(format!("{a}{b}")),
            (Value::Array(a), x) => {
                let mut a = a.clone();
                a.push(x.clone());
                Value::Array(a)
            }
            _ => return None,
        };
        let id = self.intern(&next);
        self.appends.insert((state, suffix), id);
        Some(id)
    }

    fn insert(&mut self, state: u64, elem: u64) -> u64 {
        if let Some(id) = self.inserts.get(&(state, elem)) {
            return *id;
        }
        let mut elems = self.sets[state as usize].clone();
        elems.push(elem);
        let id = self.intern_set(elems);
        self.inserts.insert((state, elem), id);
        id
    }
}

/// A sequential specification the linearizability search can judge a history against, open to
/// models defined outside this crate (as porcupine's `Model` is). One value serves one partition
/// and is never shared between threads; [`crate::linear::check_model`] makes one per partition.
///
/// States are `u64` handles the model chooses (interning whatever it needs behind interior
/// mutability); the search hashes and compares them, and never looks inside. `step` must be a
/// function of its arguments: the search memoizes on `(operations placed, state)`.
///
/// The two pruning hints are optional and must be sound for the model; each built-in model that
/// gives them proves them in its own tests:
/// - [`Model::droppable_unknown`]: operations with an unknown outcome that can be left out of
///   every linearization without changing the verdict;
/// - [`Model::demands`]: which state each operation needs and which states it can produce, so the
///   search abandons a configuration as soon as a needed state can never come back.
pub trait Model {
    /// The model's name, for results and messages.
    fn name(&self) -> &str;

    /// The initial state.
    fn init(&self) -> u64 {
        0
    }

    /// Compiles a call. `Ok(None)` drops it (it constrains nothing: it failed, or it is a read
    /// whose output is unknown); `Err` says why the call does not fit the model.
    fn compile(&self, call: &Call) -> Result<Option<ModelOp>, String>;

    /// The state after `op`, or `None` when `op` (with its observed output) cannot happen in
    /// `state`.
    fn step(&self, state: u64, op: &ModelOp) -> Option<u64>;

    /// A state as JSON, for explanations.
    fn describe_state(&self, state: u64) -> Value;

    /// An operation in words, for explanations.
    fn describe_op(&self, call: &Call) -> String {
        match call.output() {
            Some(out) if *out != call.input => format!("{} {} -> {}", call.f, call.input, out),
            _ => format!("{} {}", call.f, call.input),
        }
    }

    /// Splits the calls into independent sub-histories, each checked on its own (a label and
    /// call indices in history order). The default is one per key (Herlihy and Wing's
    /// locality); a model whose operations span several keys must keep them together.
    fn partition(&self, calls: &[Call]) -> Vec<(Option<Key>, Vec<usize>)> {
        partition_by_key(calls)
    }

    /// Refuses a partition before any search (e.g. a counter whose sums could overflow).
    fn admit(&self, _ops: &[ModelOp]) -> Result<(), String> {
        Ok(())
    }

    /// Pruning hint: for each unknown-outcome operation, whether it may be dropped (every
    /// linearization that includes it stays valid without it). Default: none.
    fn droppable_unknown(&self, _ok: &[ModelOp], unknown: &[ModelOp]) -> Vec<bool> {
        vec![false; unknown.len()]
    }

    /// Pruning hint: see [`Demands`]. Default: none.
    fn demands(&self, _ops: &[ModelOp]) -> Option<Demands> {
        None
    }

    /// Pruning hint: see [`Fences`]. `invoke` and `complete` are the event positions of each
    /// operation (`None`: unknown outcome). Default: none.
    fn fences(&self, _ops: &[ModelOp], _invoke: &[u64], _complete: &[Option<u64>]) -> Option<Fences> {
        None
    }

    /// Approximate bytes the model's own tables hold (interned states that grow while the
    /// search runs); counted against the memory budget with the memo tables.
    fn state_bytes(&self) -> u64 {
        0
    }

    /// The built-in machine behind this model, when it is one (the fast path applies only to
    /// built-in models).
    fn builtin(&self) -> Option<&Machine> {
        None
    }
}

/// The dead-state pruning hint of a model, per operation of a partition (same order as the
/// slice given to [`Model::demands`]).
///
/// Contract: an operation `i` with `needs[i] == Some(v)` succeeds only in state `v`; and a step
/// of operation `i` that leaves the state at a value some operation needs, different from the
/// state before it, leaves one listed in `produces[i]`. Then, when a needed value differs from
/// the current state and no operation left can produce it, the configuration is dead.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Demands {
    pub produces: Vec<Vec<u64>>,
    pub needs: Vec<Option<u64>>,
}

/// The ordering hint of a model: per operation an optional `key` and an optional `limit`.
/// Contract: in every linearization, an operation `i` with a limit is placed only after every
/// operation `j != i` whose key is below that limit (those must all take effect, and before
/// `i`). The search skips `i` while such a `j` is unplaced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fences {
    pub key: Vec<Option<u64>>,
    pub limit: Vec<Option<u64>>,
}

/// The FIFO hint. Take elements enqueued once and taken by exactly one `ok` dequeue. When `x`'s
/// dequeue completed before `y`'s dequeue was invoked, `x` left the queue first, so (first in,
/// first out) `x` was enqueued first. So the enqueue of such an `x` gets as key the completion
/// of its dequeue, and the enqueue of `y` as limit the invocation of its dequeue: every enqueue
/// with a smaller key must come before it. Sound: an `x` with an `ok` dequeue was certainly
/// enqueued, whatever its enqueue's outcome.
fn fifo_fences(ops: &[ModelOp], invoke: &[u64], complete: &[Option<u64>]) -> Option<Fences> {
    let mut enq: HashMap<u64, (usize, u32)> = HashMap::new();
    let mut deq: HashMap<u64, (usize, u32)> = HashMap::new();
    for (i, o) in ops.iter().enumerate() {
        match (o.input, o.output) {
            (Input::Enqueue(x), _) => enq.entry(x).or_insert((i, 0)).1 += 1,
            (Input::Dequeue, Some(x)) if x != 0 && complete[i].is_some() => deq.entry(x).or_insert((i, 0)).1 += 1,
            _ => {}
        }
    }
    let mut f = Fences { key: vec![None; ops.len()], limit: vec![None; ops.len()] };
    let mut any = false;
    for (x, (e, n)) in &enq {
        if let (1, Some(&(d, 1))) = (*n, deq.get(x)) {
            f.key[*e] = complete[d];
            f.limit[*e] = Some(invoke[d]);
            any = true;
        }
    }
    any.then_some(f)
}

/// Call indices grouped by key, in order of first appearance.
pub fn partition_by_key(calls: &[Call]) -> Vec<(Option<Key>, Vec<usize>)> {
    let mut index: HashMap<&Option<Key>, usize, std::hash::BuildHasherDefault<crate::linear::Fx>> = HashMap::default();
    let mut groups: Vec<(Option<Key>, Vec<usize>)> = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        let g = *index.entry(&c.key).or_insert_with(|| {
            groups.push((c.key.clone(), Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    groups
}

/// Multi-register partitions: the calls of each key, then keys that one transaction touches
/// together are merged (union-find over the registers named by the micro-operations), so every
/// transaction lies in one partition. A partition is labelled by its smallest register name, or
/// by its key when the history has keys; a single partition is unlabelled.
fn partition_by_registers(calls: &[Call]) -> Vec<(Option<Key>, Vec<usize>)> {
    fn find(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut parent: Vec<usize> = Vec::new();
    let mut node = |text: String, parent: &mut Vec<usize>| {
        *names.entry(text).or_insert_with(|| {
            parent.push(parent.len());
            parent.len() - 1
        })
    };
    let mut of_call = Vec::with_capacity(calls.len());
    for c in calls {
        // The key (if any) and every register named in the input or the output.
        let mut nodes: Vec<usize> = c.key.iter().map(|k| node(format!("key {}", serde_json::to_string(k).unwrap_or_default()), &mut parent)).collect();
        for v in [Some(&c.input), c.output()].into_iter().flatten() {
            for m in v.as_array().into_iter().flatten() {
                if let Some([_, k, _]) = m.as_array().map(|a| a.as_slice()) {
                    nodes.push(node(format!("register {}", canonical_text(k)), &mut parent));
                }
            }
        }
        if nodes.is_empty() {
            // No key and no register (an empty or malformed txn): a partition of its own.
            nodes.push(node(format!("call {}", of_call.len()), &mut parent));
        }
        for w in nodes.windows(2) {
            let (a, b) = (find(&mut parent, w[0]), find(&mut parent, w[1]));
            parent[a.max(b)] = a.min(b);
        }
        of_call.push(nodes[0]);
    }
    let mut label: BTreeMap<usize, String> = BTreeMap::new();
    for (text, &n) in &names {
        if let Some(r) = text.strip_prefix("register ") {
            let root = find(&mut parent, n);
            let shown = serde_json::from_str::<Value>(r).ok().and_then(|v| v.as_str().map(str::to_string));
            let r = shown.as_deref().unwrap_or(r);
            let e = label.entry(root).or_insert_with(|| r.to_string());
            if r < e.as_str() {
                *e = r.to_string();
            }
        }
    }
    let mut groups: Vec<(Option<Key>, Vec<usize>)> = Vec::new();
    let mut index: HashMap<usize, usize> = HashMap::new();
    for (i, c) in calls.iter().enumerate() {
        let root = find(&mut parent, of_call[i]);
        let g = *index.entry(root).or_insert_with(|| {
            let name = c.key.clone().or_else(|| label.get(&root).map(|l| Key::Str(l.as_str().into())));
            groups.push((name, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    if groups.len() == 1 && calls.iter().all(|c| c.key.is_none()) {
        groups[0].0 = None;
    }
    groups
}

impl Model for Machine {
    fn name(&self) -> &str {
        self.kind.name()
    }
    fn init(&self) -> u64 {
        Machine::init(self)
    }
    fn compile(&self, call: &Call) -> Result<Option<ModelOp>, String> {
        Machine::compile(self, call)
    }
    fn step(&self, state: u64, op: &ModelOp) -> Option<u64> {
        Machine::step(self, state, op)
    }
    fn describe_state(&self, state: u64) -> Value {
        Machine::describe_state(self, state)
    }
    fn partition(&self, calls: &[Call]) -> Vec<(Option<Key>, Vec<usize>)> {
        match self.kind {
            Kind::MultiRegister => partition_by_registers(calls),
            _ => partition_by_key(calls),
        }
    }
    fn admit(&self, ops: &[ModelOp]) -> Result<(), String> {
        self.arithmetic_fits(ops)
    }
    fn droppable_unknown(&self, ok: &[ModelOp], unknown: &[ModelOp]) -> Vec<bool> {
        match self.kind {
            // Sound whatever the initial state (it drops only writes nobody can observe).
            Kind::Register | Kind::CasRegister | Kind::Kv | Kind::StringKv => register_droppable(self, ok, unknown),
            _ => vec![false; unknown.len()],
        }
    }
    fn demands(&self, ops: &[ModelOp]) -> Option<Demands> {
        match self.kind {
            // The contract is about states, not where they start: it holds from `""` too.
            Kind::Register | Kind::CasRegister | Kind::Kv | Kind::StringKv => register_demands(self, ops),
            Kind::Mutex => Some(Demands {
                produces: ops.iter().map(|o| if o.input == Input::Acquire { vec![1] } else { vec![0] }).collect(),
                needs: ops.iter().map(|o| Some(if o.input == Input::Acquire { 0 } else { 1 })).collect(),
            }),
            _ => None,
        }
    }
    fn state_bytes(&self) -> u64 {
        self.tables.borrow().seq_bytes
    }
    fn fences(&self, ops: &[ModelOp], invoke: &[u64], complete: &[Option<u64>]) -> Option<Fences> {
        match self.kind {
            Kind::FifoQueue => fifo_fences(ops, invoke, complete),
            _ => None,
        }
    }
    fn builtin(&self) -> Option<&Machine> {
        Some(self)
    }
}

/// Register pruning before the search: an unknown-outcome write or cas whose written value no
/// operation observes (no read returns it, no cas expects it) may be dropped. Take any
/// linearization including such an operation `w` writing `v`: the operation right after `w`
/// cannot be a read (it would return `v`) nor a cas (it would expect `v`), so it is a write,
/// which replaces the state whatever it was, or there is none; removing `w` leaves a valid
/// linearization. With appends around, only values no append can extend (a number, a boolean,
/// an object) qualify: `append "x"` turns `""` into `"x"`. Dropping one may make another
/// droppable (a dropped cas no longer observes its `from`), so this repeats to a fixpoint.
/// "Observes" compares interned ids, that is values.
fn register_droppable(machine: &Machine, ok: &[ModelOp], unknown: &[ModelOp]) -> Vec<bool> {
    let has_append = ok.iter().chain(unknown).any(|o| matches!(o.input, Input::Append(_)));
    let droppable = |v: u64| !has_append || matches!(machine.describe_state(v), Value::Number(_) | Value::Bool(_) | Value::Object(_));
    let mut dropped = vec![false; unknown.len()];
    loop {
        let mut observed: HashSet<u64, std::hash::BuildHasherDefault<crate::linear::Fx>> = HashSet::default();
        let live = unknown.iter().zip(&dropped).filter(|(_, d)| !**d).map(|(o, _)| o);
        for o in ok.iter().chain(live) {
            match o.input {
                Input::Read => observed.extend(o.output),
                Input::Cas(from, _) => {
                    observed.insert(from);
                }
                _ => {}
            }
        }
        let mut changed = false;
        for (o, d) in unknown.iter().zip(dropped.iter_mut()) {
            if let (false, Input::Write(v) | Input::Cas(_, v)) = (*d, o.input) {
                if !observed.contains(&v) && droppable(v) {
                    *d = true;
                    changed = true;
                }
            }
        }
        if !changed {
            return dropped;
        }
    }
}

/// Upper bound on the suffixes indexed for string appends before the register hint is given up.
const MAX_SUFFIXES: usize = 1 << 21;

/// The value a register operation needs the state to be: a read's output, a cas's `from`.
fn register_needs(op: &ModelOp) -> Option<u64> {
    match op.input {
        Input::Read => op.output,
        Input::Cas(from, _) => Some(from),
        _ => None,
    }
}

/// The register hint: a read needs its output, a cas its `from`; a write or cas produces its
/// value; an append `x` produces every needed value that ends with `x` (its last element, or its
/// string suffix), since `s ++ x` always does. `None` when the string index would grow too large.
///
/// Sound because a register's state becomes `v` only through such an operation. Values are
/// matched by interned id, so by value ([`crate::value`]), never by text. The empty string is a
/// suffix of every string: `append ""` can leave any string (including `""` itself, from a
/// missing key) as the state, so it is indexed as a producer of each needed string. The empty
/// list has no last element and no append yields it (an append to a missing key or a list
/// leaves a non-empty list), so only a write or cas produces `[]`; appending `[]` pushes an
/// element `[]` and produces the lists that end with it.
fn register_demands(machine: &Machine, ops: &[ModelOp]) -> Option<Demands> {
    let by_tail = if ops.iter().any(|o| matches!(o.input, Input::Append(_))) { tails(machine, ops)? } else { HashMap::new() };
    let produces = ops
        .iter()
        .map(|o| match o.input {
            Input::Write(v) | Input::Cas(_, v) => vec![v],
            Input::Append(x) => by_tail.get(&x).cloned().unwrap_or_default(),
            _ => Vec::new(),
        })
        .collect();
    Some(Demands { produces, needs: ops.iter().map(register_needs).collect() })
}

/// Needed values by the id of each way they can end (a list's last element, a string's suffixes
/// including the empty one). Only endings some operation mentions can be an append's argument,
/// so only those are indexed, and only string suffixes no longer than the longest appended
/// string. `None` past [`MAX_SUFFIXES`].
fn tails(machine: &Machine, ops: &[ModelOp]) -> Option<HashMap<u64, Vec<u64>>> {
    let longest = ops
        .iter()
        .filter_map(|o| match o.input {
            Input::Append(x) => machine.describe_state(x).as_str().map(str::len),
            _ => None,
        })
        .max();
    let consumed: HashSet<u64, std::hash::BuildHasherDefault<crate::linear::Fx>> = ops.iter().filter_map(register_needs).collect();
    let mut by_tail: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut indexed = 0usize;
    let mut index = |v: u64, ending: &Value| {
        indexed += 1;
        if let Some(t) = machine.lookup(ending) {
            by_tail.entry(t).or_default().push(v);
        }
        indexed <= MAX_SUFFIXES
    };
    for v in consumed {
        let fits = match (machine.describe_state(v), longest) {
            (Value::Array(a), _) => match a.last() {
                Some(last) => index(v, last),
                None => true,
            },
            (Value::String(s), Some(n)) => {
                let mut starts = s.char_indices().map(|(at, _)| at).chain([s.len()]).filter(|at| s.len() - at <= n);
                starts.all(|at| index(v, &Value::String(s[at..].to_string())))
            }
            _ => true,
        };
        if !fits {
            return None;
        }
    }
    Some(by_tail)
}

/// One model instance for one partition (key) of a history.
pub struct Machine {
    kind: Kind,
    tables: RefCell<Tables>,
}

impl Machine {
    pub fn new(kind: Kind) -> Machine {
        Machine { kind, tables: RefCell::new(Tables::new()) }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The initial state: `null` (missing), the empty set, or a zero counter, handle 0 in all;
    /// for `string-kv` the empty string.
    pub fn init(&self) -> u64 {
        match self.kind {
            Kind::StringKv => self.tables.borrow_mut().intern(&Value::String(String::new())),
            _ => 0,
        }
    }

    /// Compiles a call. `Ok(None)` means the call constrains nothing and is dropped: it failed,
    /// or it is a read whose output is unknown.
    pub fn compile(&self, call: &Call) -> Result<Option<ModelOp>, String> {
        let output_value = match &call.outcome {
            Outcome::Fail => return Ok(None),
            Outcome::Ok(v) => Some(v),
            Outcome::Unknown => None,
        };
        let f = &*call.f;
        if !self.kind.operations().contains(&f) {
            return Err(format!(
                "operation `{f}` is not part of the {} model (it knows {})",
                self.kind.name(),
                self.kind.operations().join(", ")
            ));
        }
        if matches!(self.kind, Kind::Mutex | Kind::FifoQueue | Kind::UnorderedQueue | Kind::MultiRegister) {
            return self.compile_other(call, f, output_value);
        }
        let mut t = self.tables.borrow_mut();
        let input = match (self.kind, f) {
            (_, "read") | (Kind::StringKv, "get") => {
                let Some(out) = output_value else { return Ok(None) };
                let out = match self.kind {
                    Kind::Counter => t.intern_sum(counter_value(out)?),
                    Kind::Set => set_value(&mut t, out)?,
                    _ => t.intern(out),
                };
                return Ok(Some(ModelOp { input: Input::Read, output: Some(out) }));
            }
            (Kind::Counter, "add") => Input::Add(counter_value(&call.input)?),
            (Kind::Set, "add") => Input::Insert(t.intern(&call.input)),
            (_, "write") | (Kind::StringKv, "put") => Input::Write(t.intern(&call.input)),
            (_, "append") => Input::Append(t.intern(&call.input)),
            (_, "cas") => match call.input.as_array().map(|a| a.as_slice()) {
                Some([from, to]) => Input::Cas(t.intern(from), t.intern(to)),
                _ => return Err(format!("a cas takes [from, to], got {}", call.input)),
            },

            _ => unreachable!("operations() lists only handled names"),
        };
        Ok(Some(ModelOp { input, output: None }))
    }

    /// [`Machine::compile`] for the mutex, the queues and the multi-register (kept apart so the
    /// register family's path stays as it was).
    #[inline(never)]
    fn compile_other(&self, call: &Call, f: &str, output_value: Option<&Value>) -> Result<Option<ModelOp>, String> {
        let mut t = self.tables.borrow_mut();
        let input = match f {
            "acquire" => Input::Acquire,
            "release" => Input::Release,
            "enqueue" if call.input.is_null() => {
                return Err("a queue cannot hold null: a dequeue answers null when the queue is empty".into())
            }
            "enqueue" => Input::Enqueue(t.intern(&call.input)),
            "dequeue" => {
                let out = output_value.map(|v| t.intern(v));
                if out.is_none() && self.kind == Kind::UnorderedQueue {
                    return Err("a dequeue with an unknown outcome on an unordered queue may have taken any element, \
                                which this model cannot express"
                        .into());
                }
                return Ok(Some(ModelOp { input: Input::Dequeue, output: out }));
            }
            "txn" => {
                // An ok txn answers its micro-operations with the reads filled in; of an unknown
                // one only the writes are known.
                let micros = match output_value {
                    Some(out) => txn_micros(&mut t, out, true)?,
                    None => txn_micros(&mut t, &call.input, false)?,
                };
                t.txns.push(micros);
                Input::Txn(t.txns.len() as u64 - 1)
            }
            _ => unreachable!("operations() lists only handled names"),
        };
        Ok(Some(ModelOp { input, output: None }))
    }

    /// The state after `op`, or `None` when `op` cannot happen in `state`.
    pub fn step(&self, state: u64, op: &ModelOp) -> Option<u64> {
        match op.input {
            Input::Read => match op.output {
                Some(out) if out == state => Some(state),
                Some(_) => None,
                None => Some(state),
            },
            Input::Write(v) => Some(v),
            // A cas on a missing key (state 0 = null) fails even when `from` is null.
            Input::Cas(from, to) => (state == from && state != 0).then_some(to),
            Input::Append(x) => self.tables.borrow_mut().append(state, x),
            Input::Add(d) => {
                let next = self.tables.borrow_mut().add(state, d);
                debug_assert!(next.is_some(), "arithmetic_fits admits only sums that fit");
                next
            }
            Input::Insert(x) => Some(self.tables.borrow_mut().insert(state, x)),
            Input::Acquire => (state == 0).then_some(1),
            Input::Release => (state == 1).then_some(0),
            Input::Enqueue(x) => Some(self.tables.borrow_mut().enqueue(state, x, self.kind == Kind::UnorderedQueue)),
            Input::Dequeue => self.tables.borrow_mut().dequeue(state, op.output, self.kind == Kind::UnorderedQueue),
            Input::Txn(t) => self.tables.borrow_mut().txn(state, t),
            Input::Custom(..) => None,
        }
    }

    /// A state as JSON, for explanations.
    pub fn describe_state(&self, state: u64) -> Value {
        let t = self.tables.borrow();
        match self.kind {
            Kind::Counter => t.sums.get(state as usize).map_or(Value::Null, |s| big(*s)),
            Kind::Set => match t.sets.get(state as usize) {
                Some(elems) => Value::Array(elems.iter().map(|e| t.values[*e as usize].clone()).collect()),
                None => Value::Null,
            },
            Kind::Mutex => Value::String(if state == 0 { "free" } else { "held" }.into()),
            Kind::FifoQueue | Kind::UnorderedQueue => match t.seqs.get(state as usize) {
                Some(q) => Value::Array(q.iter().map(|e| t.values[*e as usize].clone()).collect()),
                None => Value::Null,
            },
            Kind::MultiRegister => match t.seqs.get(state as usize) {
                Some(map) => Value::Object(
                    map.chunks(2)
                        .map(|kv| {
                            let k = &t.values[kv[0] as usize];
                            (k.as_str().map_or_else(|| k.to_string(), str::to_string), t.values[kv[1] as usize].clone())
                        })
                        .collect(),
                ),
                None => Value::Null,
            },
            _ => t.values.get(state as usize).cloned().unwrap_or(Value::Null),
        }
    }

    /// The handle of a register value that some compiled operation mentions, without interning
    /// it; `None` when no operation mentions that value.
    pub fn lookup(&self, v: &Value) -> Option<u64> {
        self.tables.borrow().lookup(v)
    }

    /// Refuses a counter partition whose sums could leave the `i128` range: every sum the search
    /// can reach is a sum of a subset of the deltas, so when the sum of their magnitudes fits,
    /// no step overflows. Other models do no arithmetic.
    pub fn arithmetic_fits<'o>(&self, ops: impl IntoIterator<Item = &'o ModelOp>) -> Result<(), String> {
        let mut bound: i128 = 0;
        for op in ops {
            if let Input::Add(d) = op.input {
                bound = d.checked_abs().and_then(|m| bound.checked_add(m)).ok_or_else(|| {
                    "the counter's deltas may sum beyond what an i128 holds, so no sum can be computed exactly".to_string()
                })?;
            }
        }
        Ok(())
    }

    /// Whether some read or cas of the compiled ops observes `value` (a register value handle).
    pub fn observes(ops: &[ModelOp], value: u64) -> bool {
        ops.iter().any(|op| match op.input {
            Input::Read => op.output == Some(value),
            Input::Cas(from, _) => from == value,
            _ => false,
        })
    }
}

/// Where `key` is among the keys of a flattened sorted `key, value` map.
fn pair_search(map: &[u64], key: u64) -> Result<usize, usize> {
    let (mut lo, mut hi) = (0usize, map.len() / 2);
    while lo < hi {
        let mid = (lo + hi) / 2;
        match map[2 * mid].cmp(&key) {
            std::cmp::Ordering::Equal => return Ok(mid),
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
        }
    }
    Err(lo)
}

/// The micro-operations of a transaction value `[[f k v] ...]` (`f` is `r`/`read` or
/// `w`/`write`); reads answer `None` when `reads_known` is false (the outcome is unknown).
fn txn_micros(t: &mut Tables, v: &Value, reads_known: bool) -> Result<Vec<Micro>, String> {
    let Some(items) = v.as_array() else {
        return Err(format!("a txn takes a list of [f key value] micro-operations, got {v}"));
    };
    items
        .iter()
        .map(|m| match m.as_array().map(|a| a.as_slice()) {
            Some([f, k, x]) => {
                let write = match f.as_str() {
                    Some("r" | "read") => false,
                    Some("w" | "write") => true,
                    _ => return Err(format!("a micro-operation is [r key value] or [w key value], got {m}")),
                };
                let value = (write || reads_known).then(|| t.intern(x));
                Ok(Micro { write, key: t.intern(k), value })
            }
            _ => Err(format!("a micro-operation is [f key value], got {m}")),
        })
        .collect()
}

/// The `i64` a canonical value is, if it is one.
fn as_int(canon: &Value) -> Option<i64> {
    match canon {
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn counter_value(v: &Value) -> Result<i128, String> {
    exact_int(v).map_err(|why| format!("a counter value must be an exact integer, got {v} ({})", why.describe()))
}

fn set_value(t: &mut Tables, v: &Value) -> Result<u64, String> {
    let Some(items) = v.as_array() else {
        return Err(format!("a set read must answer a list, got {v}"));
    };
    let elems: Vec<u64> = items.iter().map(|x| t.intern(x)).collect();
    Ok(t.intern_set(elems))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;
    use crate::history::OpType;
    use serde_json::json;
    use std::sync::Arc;

    fn call(f: &str, input: Value, outcome: Outcome) -> Call {
        Call {
            process: 0,
            f: Arc::from(f),
            key: None,
            input,
            outcome,
            invoke_index: 0,
            complete_index: None,
            invoke_time: 0,
            complete_time: None,
            node: None,
            final_read: false,
        }
    }

    fn run(m: &Machine, ops: &[(&str, Value, Value)]) -> Option<u64> {
        let mut s = m.init();
        for (f, input, out) in ops {
            let op = m.compile(&call(f, input.clone(), Outcome::Ok(out.clone()))).unwrap().unwrap();
            s = m.step(s, &op)?;
        }
        Some(s)
    }

    #[test]
    fn cas_on_missing_key_fails() {
        let m = Machine::new(Kind::CasRegister);
        assert!(run(&m, &[("cas", json!([null, 1]), json!([null, 1]))]).is_none());
        assert!(run(&m, &[("write", json!(1), json!(1)), ("cas", json!([1, 2]), json!([1, 2])), ("read", json!(null), json!(2))]).is_some());
        assert!(run(&m, &[("write", json!(1), json!(1)), ("cas", json!([3, 2]), json!([3, 2]))]).is_none());
    }

    #[test]
    fn append_concatenates_or_pushes() {
        let m = Machine::new(Kind::Kv);
        let s = run(&m, &[("append", json!("a"), json!("a")), ("append", json!("b"), json!("b")), ("read", json!(null), json!("ab"))]);
        assert!(s.is_some());
        let m = Machine::new(Kind::Kv);
        let s = run(&m, &[("append", json!(1), json!(1)), ("append", json!(2), json!(2))]).unwrap();
        assert_eq!(m.describe_state(s), json!([1, 2]));
        assert!(run(&m, &[("append", json!(1), json!(1)), ("read", json!(null), json!([2]))]).is_none());
    }

    #[test]
    fn counter_and_set() {
        let m = Machine::new(Kind::Counter);
        assert!(run(&m, &[("add", json!(2), json!(2)), ("add", json!(-5), json!(-5)), ("read", json!(null), json!(-3))]).is_some());
        let m = Machine::new(Kind::Set);
        assert!(run(&m, &[("add", json!(2), json!(2)), ("add", json!(1), json!(1)), ("read", json!(null), json!([1, 2]))]).is_some());
        assert!(run(&m, &[("add", json!(2), json!(2)), ("read", json!(null), json!([1, 2]))]).is_none());
    }

    #[test]
    fn counter_sums_are_exact_and_overflow_is_refused_not_wrapped() {
        let m = Machine::new(Kind::Counter);
        let max = json!(i64::MAX);
        // 2 * i64::MAX is 2^64 - 2: a wrapping i64 made it -2.
        assert!(run(&m, &[("add", max.clone(), max.clone()), ("add", max.clone(), max.clone()), ("read", json!(null), json!(-2))]).is_none());
        let s = run(&m, &[("add", max.clone(), max.clone()), ("add", max.clone(), max), ("read", json!(null), json!(u64::MAX - 1))]);
        assert_eq!(s.map(|s| m.describe_state(s)), Some(json!(u64::MAX - 1)));
        // Beyond i128 no JSON number reaches in practice, so the guard is exercised directly.
        let add = |d: i128| ModelOp { input: Input::Add(d), output: None };
        assert!(m.arithmetic_fits(&[add(i128::MAX / 2), add(i128::MAX / 2)]).is_ok());
        let e = m.arithmetic_fits(&[add(i128::MAX / 2), add(-(i128::MAX / 2)), add(2)]).unwrap_err();
        assert!(e.contains("i128"), "{e}");
        assert!(m.arithmetic_fits(&[add(i128::MIN)]).is_err());
    }

    #[test]
    fn values_are_interned_by_value() {
        let m = Machine::new(Kind::Kv);
        let a = m.compile(&call("write", json!({"a": 1, "b": 2}), Outcome::Ok(json!(null)))).unwrap().unwrap();
        let b = m.compile(&call("read", json!(null), Outcome::Ok(serde_json::from_str(r#"{"b":2.0,"a":1}"#).unwrap()))).unwrap().unwrap();
        assert_eq!(a.input, Input::Write(b.output.unwrap()));
        assert_eq!(m.lookup(&json!({"b": 2, "a": 1.0})), b.output);
        assert_eq!(m.lookup(&json!("never mentioned")), None);
        // Integers are interned by number, every other value by its text: the two must agree
        // on which values are one value.
        let one = m.compile(&call("write", json!(1), Outcome::Ok(json!(1)))).unwrap().unwrap();
        assert_eq!(Some(one.input), Some(Input::Write(m.lookup(&serde_json::from_str("1.0").unwrap()).unwrap())));
        assert_eq!(m.lookup(&serde_json::from_str("-0.0").unwrap()), m.lookup(&json!(0)));
        let big = m.compile(&call("write", json!(u64::MAX), Outcome::Ok(json!(u64::MAX)))).unwrap().unwrap();
        let max = m.compile(&call("write", json!(i64::MAX), Outcome::Ok(json!(i64::MAX)))).unwrap().unwrap();
        assert_ne!(big.input, max.input);
        assert_eq!(m.lookup(&serde_json::from_str("18446744073709551615").unwrap()).map(Input::Write), Some(big.input));
    }

    #[test]
    fn unknown_operations_are_errors_and_reads_of_unknown_outcome_are_dropped() {
        let m = Machine::new(Kind::Register);
        assert!(m.compile(&call("cas", json!([1, 2]), Outcome::Unknown)).is_err());
        assert_eq!(m.compile(&call("read", json!(null), Outcome::Unknown)).unwrap(), None);
        assert_eq!(m.compile(&call("write", json!(1), Outcome::Fail)).unwrap(), None);
    }

    /// Every state reachable from `init` by any sequence of the ops (each op at most once),
    /// with the ops still unused; small op lists only.
    fn reachable(m: &Machine, ops: &[ModelOp]) -> Vec<(u64, Vec<bool>)> {
        let mut out = Vec::new();
        let mut todo = vec![(m.init(), vec![false; ops.len()])];
        let mut seen = HashSet::new();
        while let Some((s, used)) = todo.pop() {
            if !seen.insert((s, used.clone())) {
                continue;
            }
            for (i, op) in ops.iter().enumerate().filter(|(i, _)| !used[*i]) {
                if let Some(next) = m.step(s, op) {
                    let mut u = used.clone();
                    u[i] = true;
                    todo.push((next, u));
                }
            }
            out.push((s, used));
        }
        out
    }

    /// The contract of [`Demands`], checked on every reachable state: an op with a need
    /// succeeds only in that state, and a step that changes the state to a needed value is by an
    /// op that lists it among what it produces.
    fn check_demands(m: &Machine, ops: &[ModelOp]) {
        let d = m.demands(ops).expect("the model gives the hint");
        let needed: HashSet<u64> = d.needs.iter().flatten().copied().collect();
        for (s, used) in reachable(m, ops) {
            for (i, op) in ops.iter().enumerate().filter(|(i, _)| !used[*i]) {
                let Some(next) = m.step(s, op) else { continue };
                if let Some(v) = d.needs[i] {
                    assert_eq!(v, s, "op {i} {op:?} succeeded in state {s}, but needs {v}");
                }
                if next != s && needed.contains(&next) {
                    assert!(d.produces[i].contains(&next), "op {i} {op:?} made needed state {next} without listing it");
                }
            }
        }
    }

    fn compile_all(m: &Machine, calls: &[(&str, Value, Option<Value>)]) -> Vec<ModelOp> {
        calls
            .iter()
            .filter_map(|(f, input, out)| {
                let outcome = out.clone().map_or(Outcome::Unknown, Outcome::Ok);
                m.compile(&call(f, input.clone(), outcome)).unwrap()
            })
            .collect()
    }

    #[test]
    fn register_hint_keeps_its_contract() {
        let m = Machine::new(Kind::Kv);
        let ops = compile_all(
            &m,
            &[
                ("write", json!(1), Some(json!(1))),
                ("cas", json!([1, 2]), Some(json!([1, 2]))),
                ("read", json!(null), Some(json!(2))),
                ("read", json!(null), Some(json!(null))),
                ("write", json!("a"), None),
                ("append", json!("b"), Some(json!("b"))),
                ("append", json!(""), Some(json!(""))),
                ("read", json!(null), Some(json!("ab"))),
                ("read", json!(null), Some(json!("b"))),
            ],
        );
        check_demands(&m, &ops);
        let m = Machine::new(Kind::Kv);
        let ops = compile_all(
            &m,
            &[
                ("append", json!(1), Some(json!(1))),
                ("append", json!([]), Some(json!([]))),
                ("write", json!([]), None),
                ("read", json!(null), Some(json!([1, []]))),
                ("read", json!(null), Some(json!([]))),
                ("read", json!(null), Some(json!([[]]))),
            ],
        );
        check_demands(&m, &ops);
        // A string-kv key starts at "": a get of "" needs it, and only a put of "" or appends
        // of "" (to "") produce it again.
        let m = Machine::new(Kind::StringKv);
        let ops = compile_all(
            &m,
            &[
                ("get", json!(null), Some(json!(""))),
                ("append", json!("x"), Some(json!("x"))),
                ("append", json!(""), None),
                ("put", json!(""), None),
                ("put", json!("ab"), Some(json!("ab"))),
                ("append", json!("b"), Some(json!("b"))),
                ("get", json!(null), Some(json!("xb"))),
                ("get", json!(null), Some(json!("abb"))),
            ],
        );
        check_demands(&m, &ops);
    }

    #[test]
    fn mutex_hint_keeps_its_contract() {
        let m = Machine::new(Kind::Mutex);
        let ops = compile_all(
            &m,
            &[("acquire", json!(null), Some(json!(null))), ("release", json!(null), None), ("acquire", json!(null), None), ("release", json!(null), Some(json!(null)))],
        );
        check_demands(&m, &ops);
    }

    /// Dropping what the register hint names leaves a model of the same verdict: checked by
    /// brute force over every order of the remaining ops (no real time: every op concurrent).
    #[test]
    fn register_droppable_unknown_writes_change_no_verdict() {
        let m = Machine::new(Kind::CasRegister);
        let ok = compile_all(&m, &[("read", json!(null), Some(json!(2))), ("cas", json!([2, 3]), Some(json!([2, 3])))]);
        let unknown = compile_all(&m, &[("write", json!(7), None), ("write", json!(2), None), ("cas", json!([7, 8]), None), ("write", json!(9), None)]);
        let dropped = m.droppable_unknown(&ok, &unknown);
        // 9 and 8 are never observed; 7 is observed by the unknown cas 7 -> 8, which observes 7
        // only until it is dropped itself (8 is never read), so 7 goes too; 2 stays.
        assert_eq!(dropped, vec![true, false, true, true]);
        let complete = |ops: &[ModelOp]| {
            // Is there an order of a subset including every ok op?
            reachable(&m, ops).iter().any(|(_, used)| used[..ok.len()].iter().all(|u| *u))
        };
        let all: Vec<ModelOp> = ok.iter().chain(&unknown).copied().collect();
        let kept: Vec<ModelOp> = ok.iter().copied().chain(unknown.iter().zip(&dropped).filter(|(_, d)| !**d).map(|(o, _)| *o)).collect();
        assert_eq!(complete(&all), complete(&kept));
        assert!(complete(&kept));
    }

    #[test]
    fn mutex_semantics() {
        let m = Machine::new(Kind::Mutex);
        let (a, r) = (json!(null), json!(null));
        assert!(run(&m, &[("acquire", a.clone(), a.clone()), ("release", r.clone(), r.clone()), ("acquire", a.clone(), a.clone())]).is_some());
        assert!(run(&m, &[("acquire", a.clone(), a.clone()), ("acquire", a.clone(), a.clone())]).is_none());
        assert!(run(&m, &[("release", r.clone(), r.clone())]).is_none());
        assert_eq!(m.describe_state(1), json!("held"));
    }

    #[test]
    fn queue_semantics() {
        let m = Machine::new(Kind::FifoQueue);
        let enq = |x: Value| ("enqueue", x.clone(), x);
        let deq = |x: Value| ("dequeue", json!(null), x);
        assert!(run(&m, &[deq(json!(null)), enq(json!(1)), enq(json!(2)), deq(json!(1)), deq(json!(2)), deq(json!(null))]).is_some());
        assert!(run(&m, &[enq(json!(1)), enq(json!(2)), deq(json!(2))]).is_none());
        assert!(run(&m, &[enq(json!(1)), deq(json!(null))]).is_none());
        let s = run(&m, &[enq(json!({"b": 1, "a": 2})), enq(json!(3))]).unwrap();
        assert_eq!(m.describe_state(s), json!([{"a": 2, "b": 1}, 3]));
        // An unknown dequeue takes the oldest element, or nothing from an empty queue.
        let unknown = m.compile(&call("dequeue", json!(null), Outcome::Unknown)).unwrap().unwrap();
        let s = run(&m, &[enq(json!(1)), enq(json!(2))]).unwrap();
        assert_eq!(m.describe_state(m.step(s, &unknown).unwrap()), json!([2]));
        assert_eq!(m.step(0, &unknown), Some(0));
        assert!(m.compile(&call("enqueue", json!(null), Outcome::Ok(json!(null)))).is_err());

        let m = Machine::new(Kind::UnorderedQueue);
        assert!(run(&m, &[enq(json!(1)), enq(json!(2)), deq(json!(2)), deq(json!(1)), deq(json!(null))]).is_some());
        assert!(run(&m, &[enq(json!(1)), enq(json!(1)), deq(json!(1)), deq(json!(1))]).is_some());
        assert!(run(&m, &[enq(json!(1)), deq(json!(1)), deq(json!(1))]).is_none());
        assert!(run(&m, &[enq(json!(1)), enq(json!(2)), deq(json!(null))]).is_none());
        // Which element an unknown dequeue took is not determined: refused, not guessed.
        assert!(m.compile(&call("dequeue", json!(null), Outcome::Unknown)).is_err());
    }

    #[test]
    fn multi_register_semantics() {
        let m = Machine::new(Kind::MultiRegister);
        let txn = |ops: Value| ("txn", ops.clone(), ops);
        let s = run(&m, &[txn(json!([["r", "x", null], ["w", "x", 1], ["w", "y", 2]])), txn(json!([["r", "y", 2], ["r", "x", 1], ["w", "x", null]]))]).unwrap();
        assert_eq!(m.describe_state(s), json!({"y": 2}));
        assert!(run(&m, &[txn(json!([["w", "x", 1]])), txn(json!([["r", "x", null]]))]).is_none());
        assert!(run(&m, &[txn(json!([["w", "x", 1], ["r", "x", 2]]))]).is_none());
        // Keys are values: 1 and 1.0 are one register.
        assert!(run(&m, &[txn(json!([["w", 1, "a"]])), txn(serde_json::from_str(r#"[["read", 1.0, "a"]]"#).unwrap())]).is_some());
        // An unknown txn constrains nothing by its reads.
        let unknown = m.compile(&call("txn", json!([["r", "x", 5], ["w", "z", 3]]), Outcome::Unknown)).unwrap().unwrap();
        assert!(m.step(0, &unknown).is_some());
        assert!(m.compile(&call("txn", json!([["x", "x", 1]]), Outcome::Ok(json!([["x", "x", 1]])))).is_err());
        assert!(m.compile(&call("txn", json!(3), Outcome::Ok(json!(3)))).is_err());
    }

    #[test]
    fn multi_register_partitions_by_connected_registers() {
        let c = |v: Value| Call { input: v.clone(), outcome: Outcome::Ok(v), ..call("txn", json!(null), Outcome::Fail) };
        let calls = vec![
            c(json!([["w", "a", 1], ["w", "b", 1]])),
            c(json!([["w", "c", 1]])),
            c(json!([["r", "b", 1], ["r", "d", null]])),
            c(json!([["r", "c", 1]])),
        ];
        let m = Machine::new(Kind::MultiRegister);
        let mut parts = m.partition(&calls);
        parts.sort();
        assert_eq!(parts, vec![(Some(Key::Str("a".into())), vec![0, 2]), (Some(Key::Str("c".into())), vec![1, 3])]);
        assert_eq!(m.partition(&calls[..1]), vec![(None, vec![0])]);
    }

    #[test]
    fn guesses_models() {
        let h = |ops: Vec<Op>| History::from_ops(ops);
        assert_eq!(guess(&h(vec![Op::new(0, OpType::Invoke, "append", json!(1)).with_key(crate::Key::Int(1))])), "kv");
        assert_eq!(guess(&h(vec![Op::new(0, OpType::Invoke, "cas", json!([1, 2]))])), "cas-register");
        assert_eq!(guess(&h(vec![Op::new(0, OpType::Invoke, "add", json!(1))])), "counter");
        assert_eq!(guess(&h(vec![Op::new(0, OpType::Ok, "read", json!([1])), Op::new(0, OpType::Invoke, "add", json!(1))])), "set");
        assert_eq!(guess(&h(vec![Op::new(0, OpType::Invoke, "write", json!(1))])), "register");
        assert_eq!(by_name("kv"), Some(Kind::Kv));
        assert!(NAMES.iter().all(|n| by_name(n).map(|k| k.name()) == Some(*n)));
    }
}
