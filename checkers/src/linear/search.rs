//! The search for one partition (key): Wing and Gong's algorithm with Lowe's just-in-time
//! linearization and memoization of configurations, as in porcupine.
//!
//! The events of the partition sit in a doubly linked list in history order: a *call* entry per
//! operation and a *return* entry per `ok` operation (an operation with an unknown outcome never
//! returns: it may take effect at any time after its call, or never). The candidates at each
//! level are the operations whose call precedes the first return entry `F` in the list; one is
//! linearized when the model accepts it in the current state, its entries are lifted out of the
//! list, and the next level begins. When no candidate fits, `F`'s operation cannot be placed
//! after this prefix: undo the last choice and try the next candidate of that level. The
//! history is linearizable when every `ok` operation is linearized. Candidates are tried in the
//! order of their returns (see [`Search::candidates`]); the order changes only the speed.
//!
//! A configuration is (set of linearized operations, model state); having explored one, the
//! search never explores it again. The set is stored compactly: all `ok` operations before the
//! first unlinearized one `m` are linearized, and any linearized `ok` operation after `m` was
//! invoked before `m` returned (the walk never passes `m`'s return entry), so the set is `m`, the
//! bits of the window `(m, reach[m])`, and the bits of the unknown-outcome operations.
//!
//! Reads are linearized greedily: a read that the state allows now can always be moved to now in
//! any linearization that places it later (everything that must precede it is linearized, and it
//! changes nothing), so when that choice fails, the configuration before it fails too.
//!
//! The search knows no model: it uses the [`Model`] interface, and the model's optional pruning
//! hints. With [`Model::demands`] (registers with or without appends, mutexes) a configuration
//! is abandoned as soon as some operation needs a state that no remaining operation can produce
//! any more ([`Demand`]); on highly concurrent register keys this is what turns minutes of
//! backtracking into milliseconds (docs/checker.md). With [`Model::fences`] (FIFO queues) an
//! operation is not tried while an operation that must precede it is unplaced.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::model::{Model, ModelOp};

/// One operation of a partition, ready for the search.
#[derive(Clone, Debug)]
pub(crate) struct SearchOp {
    pub op: ModelOp,
    /// Position of the invoke event in the history.
    pub invoke: u64,
    /// Position of the completion; `None` when the outcome is unknown.
    pub complete: Option<u64>,
}

/// Shared limits of a whole check.
pub(crate) struct Limits<'a> {
    pub deadline: Instant,
    pub cancel: &'a AtomicBool,
    /// Bytes of memo tables currently held by all searches.
    pub memory_used: &'a AtomicU64,
    pub memory_limit: u64,
}

/// Why a search stopped without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    Deadline,
    Memory,
    Cancelled,
}

/// The answer for one partition.
#[derive(Debug)]
pub(crate) enum Answer {
    Linearizable,
    /// No linearization exists. `op` is the operation (index into the ops) whose return was
    /// reached in the deepest configuration; `prefixes` are linearizable prefixes of maximal
    /// length (indices into the ops, in linearization order).
    Violation { op: usize, prefixes: Vec<Vec<usize>> },
    Undecided(Stop),
}

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;

/// A fast multiplicative hasher (FxHash); keys here are a few integers.
#[derive(Default, Clone, Copy)]
pub(crate) struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Eight bytes a round: slices of integers (the memo's bit words) arrive here as bytes.
        let mut chunks = bytes.chunks_exact(8);
        for c in chunks.by_ref() {
            self.write_u64(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.write_u64(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 59));
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(i as u64)
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64)
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(i as u64)
    }
}

type FxBuild = BuildHasherDefault<Fx>;

/// The bits of a configuration beyond `m`; two words inline cover the common case.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Bits {
    Small([u64; 2]),
    Big(Box<[u64]>),
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct MemoKey {
    m: u32,
    state: u64,
    bits: Bits,
}

/// A set of bits with the operations the search needs.
struct BitSet(Vec<u64>);

impl BitSet {
    fn new(n: usize) -> BitSet {
        BitSet(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    /// The first clear bit at or after `i` (or `n`).
    fn next_clear(&self, mut i: usize, n: usize) -> usize {
        while i < n {
            let w = !self.0[i / 64] >> (i % 64);
            if w != 0 {
                return (i + w.trailing_zeros() as usize).min(n);
            }
            i = (i / 64 + 1) * 64;
        }
        n
    }
    /// Appends the bits `[start, end)` to `out`, packed from bit 0.
    fn extract(&self, start: usize, end: usize, out: &mut Vec<u64>) {
        let mut i = start;
        while i < end {
            let take = (end - i).min(64);
            let (w, off) = (i / 64, i % 64);
            let mut v = self.0[w] >> off;
            if off != 0 && w + 1 < self.0.len() {
                v |= self.0[w + 1] << (64 - off);
            }
            if take < 64 {
                v &= (1u64 << take) - 1;
            }
            out.push(v);
            i += take;
        }
    }
}

/// The doubly linked list of call and return entries.
struct Entries {
    next: Vec<u32>,
    prev: Vec<u32>,
    /// The operation of each entry (entry 0 is the head).
    op: Vec<u32>,
    is_call: Vec<bool>,
    /// The return entry of each operation, or NIL.
    ret_of: Vec<u32>,
    /// The call entry of each operation.
    call_of: Vec<u32>,
}

impl Entries {
    fn build(ops: &[SearchOp]) -> Entries {
        let mut events: Vec<(u64, u32, bool)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.invoke, i as u32, true));
            if let Some(c) = op.complete {
                events.push((c, i as u32, false));
            }
        }
        events.sort_unstable_by_key(|e| e.0);
        let n = events.len() + 1;
        let mut e = Entries {
            next: (1..=n as u32).collect(),
            prev: (0..n as u32).map(|i| i.wrapping_sub(1)).collect(),
            op: Vec::with_capacity(n),
            is_call: Vec::with_capacity(n),
            ret_of: vec![NIL; ops.len()],
            call_of: vec![NIL; ops.len()],
        };
        e.next[n - 1] = NIL;
        e.prev[0] = NIL;
        e.op.push(NIL);
        e.is_call.push(false);
        for (k, (_, op, call)) in events.into_iter().enumerate() {
            e.op.push(op);
            e.is_call.push(call);
            if call {
                e.call_of[op as usize] = k as u32 + 1;
            } else {
                e.ret_of[op as usize] = k as u32 + 1;
            }
        }
        e
    }

    fn unlink(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, x: u32) {
        let (p, n) = (self.prev[x as usize], self.next[x as usize]);
        self.next[p as usize] = x;
        if n != NIL {
            self.prev[n as usize] = x;
        }
    }

    /// Removes a call entry and its return entry.
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let r = self.ret_of[self.op[call as usize] as usize];
        if r != NIL {
            self.unlink(r);
        }
    }

    /// Undoes [`Entries::lift`]; lifts are undone in reverse order.
    fn unlift(&mut self, call: u32) {
        let r = self.ret_of[self.op[call as usize] as usize];
        if r != NIL {
            self.relink(r);
        }
        self.relink(call);
    }
}

/// What the search remembers about the deepest configurations it reached.
struct Best {
    depth: usize,
    op: usize,
    path: Vec<usize>,
    /// Stack height below which `path` still matches the stack.
    valid_below: usize,
    /// Pass two: record up to three distinct paths of exactly this depth.
    alternates_at: Option<usize>,
    alternates: Vec<Vec<usize>>,
}

/// A level of the search: the choice made there and how to resume it.
struct Frame {
    call: u32,
    state: u64,
    forced: bool,
    level_start: usize,
    cursor: usize,
    first_return: u32,
}

/// One search over a partition whose `ok` operations come first (in invoke order), then the
/// operations with unknown outcome.
pub(crate) struct Search<'a, M: Model + ?Sized> {
    machine: &'a M,
    ops: &'a [SearchOp],
    n_ok: usize,
    limits: &'a Limits<'a>,
    /// For each `ok` operation i: how many `ok` operations were invoked before i returned.
    reach: Vec<u32>,
    /// Whether the dead-state pruning applies (the model gave [`Model::demands`]).
    overwrites: bool,
    /// Size of the value-indexed tables of [`Demand`].
    n_values: usize,
    /// For each operation, the states it can produce ([`crate::model::Demands`]); empty
    /// without pruning.
    produced: Vec<Vec<u64>>,
    /// For each operation, the state it needs; empty without pruning.
    needs: Vec<Option<u64>>,
    /// The model's ordering hint ([`crate::model::Fences`]), if any.
    fences: Option<crate::model::Fences>,
}

/// The keys of the unplaced operations that have one (for [`crate::model::Fences`]).
#[derive(Default)]
struct Fenced(std::collections::BTreeMap<u64, u32>);

impl Fenced {
    fn add(&mut self, k: Option<u64>) {
        if let Some(k) = k {
            *self.0.entry(k).or_insert(0) += 1;
        }
    }
    fn remove(&mut self, k: Option<u64>) {
        if let Some(k) = k {
            if let std::collections::btree_map::Entry::Occupied(mut e) = self.0.entry(k) {
                *e.get_mut() -= 1;
                if *e.get() == 0 {
                    e.remove();
                }
            }
        }
    }
    /// Whether some unplaced operation other than one with key `own` has a key below `limit`.
    fn blocks(&self, limit: u64, own: Option<u64>) -> bool {
        for (&k, &n) in self.0.range(..limit) {
            if Some(k) != own || n > 1 {
                return true;
            }
        }
        false
    }
}

/// Counts for the dead-read pruning of overwrite-only registers. A configuration is dead when
/// some `ok` read (or `ok` cas) not yet linearized needs a value `y` that differs from the
/// current state while no operation not yet linearized can produce `y` (a write of `y`, a cas to
/// `y`): the state of a register changes only through those, so that read can never be placed.
/// This refutes a wrong early write in O(1) instead of by exploring every order of the
/// operations after it.
struct Demand {
    /// Per value: unlinearized operations that can set it.
    producers: Vec<u32>,
    /// Per value: unlinearized `ok` operations that need it.
    consumers: Vec<u32>,
    /// Unlinearized `ok` consumers whose value has no producer left.
    unsatisfiable: u64,
}

impl Demand {
    fn new(n_ok: usize, n_values: usize, produced: &[Vec<u64>], needs: &[Option<u64>]) -> Demand {
        let mut d = Demand { producers: vec![0; n_values], consumers: vec![0; n_values], unsatisfiable: 0 };
        for (i, p) in produced.iter().enumerate() {
            for &v in p {
                d.producers[v as usize] += 1;
            }
            if i < n_ok {
                if let Some(v) = needs[i] {
                    d.consumers[v as usize] += 1;
                }
            }
        }
        d.unsatisfiable = (0..n_values).filter(|&v| d.producers[v] == 0).map(|v| d.consumers[v] as u64).sum();
        d
    }

    fn linearize(&mut self, produced: &[u64], need: Option<u64>, ok: bool) {
        for &v in produced {
            let v = v as usize;
            self.producers[v] -= 1;
            if self.producers[v] == 0 {
                self.unsatisfiable += self.consumers[v] as u64;
            }
        }
        if ok {
            if let Some(v) = need {
                let v = v as usize;
                self.consumers[v] -= 1;
                if self.producers[v] == 0 {
                    self.unsatisfiable -= 1;
                }
            }
        }
    }

    fn unlinearize(&mut self, produced: &[u64], need: Option<u64>, ok: bool) {
        if ok {
            if let Some(v) = need {
                let v = v as usize;
                self.consumers[v] += 1;
                if self.producers[v] == 0 {
                    self.unsatisfiable += 1;
                }
            }
        }
        for &v in produced {
            let v = v as usize;
            if self.producers[v] == 0 {
                self.unsatisfiable -= self.consumers[v] as u64;
            }
            self.producers[v] += 1;
        }
    }

    /// Whether some needed value can never again be the state.
    fn dead(&self, state: u64) -> bool {
        let here = match self.producers.get(state as usize) {
            Some(0) => self.consumers[state as usize] as u64,
            _ => 0,
        };
        self.unsatisfiable > here
    }
}

impl<'a, M: Model + ?Sized> Search<'a, M> {
    pub(crate) fn new(machine: &'a M, ops: &'a [SearchOp], n_ok: usize, limits: &'a Limits<'a>) -> Search<'a, M> {
        debug_assert!(ops[..n_ok].iter().all(|o| o.complete.is_some()));
        debug_assert!(ops[n_ok..].iter().all(|o| o.complete.is_none()));
        let reach = ops[..n_ok]
            .iter()
            .map(|o| {
                let c = o.complete.unwrap_or(u64::MAX);
                ops[..n_ok].partition_point(|x| x.invoke < c) as u32
            })
            .collect();
        let model_ops: Vec<ModelOp> = ops.iter().map(|o| o.op).collect();
        let hint = machine.demands(&model_ops).filter(|d| d.produces.len() == ops.len() && d.needs.len() == ops.len());
        let (produced, needs) = hint.map_or((Vec::new(), Vec::new()), |d| (d.produces, d.needs));
        let overwrites = !produced.is_empty();
        let n_values = produced.iter().flatten().copied().chain(needs.iter().flatten().copied()).max().map_or(1, |v| v as usize + 1);
        let invoke: Vec<u64> = ops.iter().map(|o| o.invoke).collect();
        let complete: Vec<Option<u64>> = ops.iter().map(|o| o.complete).collect();
        let fences = machine.fences(&model_ops, &invoke, &complete).filter(|f| f.key.len() == ops.len() && f.limit.len() == ops.len());
        Search { machine, ops, n_ok, limits, reach, overwrites, n_values, produced, needs, fences }
    }

    /// Runs the search. With `alternates_at`, also collects up to three linearizable prefixes of
    /// that length (the explanation pass, after a first pass found the depth).
    pub(crate) fn run(&self, alternates_at: Option<usize>) -> Answer {
        let mut memo_bytes = 0u64;
        let answer = self.walk(alternates_at, &mut memo_bytes);
        self.limits.memory_used.fetch_sub(memo_bytes, Ordering::Relaxed);
        answer
    }

    /// For overwrite-only registers: the operation that made the deepest configuration fail,
    /// when the dead-read pruning refuted it. After `prefix` (op indices in linearization
    /// order), an `ok` read or cas not yet placed that needs a value no remaining operation can
    /// produce, either already or after any single further step; the earliest invoked. That
    /// operation, typically a stale read far later in the history, is the one that cannot be
    /// placed, while the operation whose return ends the prefix is only where the search stopped.
    pub(crate) fn culprit(&self, prefix: &[usize]) -> Option<usize> {
        if !self.overwrites {
            return None;
        }
        let mut demand = Demand::new(self.n_ok, self.n_values, &self.produced, &self.needs);
        let mut placed = vec![false; self.ops.len()];
        let mut state = self.machine.init();
        for &i in prefix {
            demand.linearize(&self.produced[i], self.needs[i], i < self.n_ok);
            state = self.machine.step(state, &self.ops[i].op)?;
            placed[i] = true;
        }
        let stuck = |demand: &Demand, state: u64, placed: &[bool]| {
            (0..self.n_ok).filter(|&i| !placed[i]).find(|&i| match self.needs[i] {
                Some(v) => v != state && demand.producers[v as usize] == 0,
                None => false,
            })
        };
        if let Some(i) = stuck(&demand, state, &placed) {
            return Some(i);
        }
        for i in 0..self.ops.len() {
            if placed[i] {
                continue;
            }
            let op = &self.ops[i].op;
            let Some(next) = self.machine.step(state, op) else { continue };
            demand.linearize(&self.produced[i], self.needs[i], i < self.n_ok);
            placed[i] = true;
            let found = stuck(&demand, next, &placed);
            placed[i] = false;
            demand.unlinearize(&self.produced[i], self.needs[i], i < self.n_ok);
            if found.is_some() {
                return found;
            }
        }
        None
    }

    fn memo_key(&self, m: usize, state: u64, ok: &BitSet, unknown: &BitSet, scratch: &mut Vec<u64>) -> MemoKey {
        scratch.clear();
        if m < self.n_ok {
            ok.extract(m + 1, (self.reach[m] as usize).max(m + 1), scratch);
        }
        scratch.extend_from_slice(&unknown.0);
        let bits = match scratch.len() {
            0 => Bits::Small([0, 0]),
            1 => Bits::Small([scratch[0], 0]),
            2 => Bits::Small([scratch[0], scratch[1]]),
            _ => Bits::Big(scratch.as_slice().into()),
        };
        MemoKey { m: m as u32, state, bits }
    }

    /// The candidates of the current level: every operation whose call precedes the first
    /// return entry `F` in the list. Appended to `out`: the `ok` ones in the order of their
    /// returns, then the unknown-outcome ones in call order. Trying operations in return order
    /// follows the likely order of effects (an operation that returned first probably took
    /// effect first), which spares most backtracking on highly concurrent keys; the order
    /// changes only the speed, never the verdict. Returns `F`'s operation, or NIL.
    fn candidates(&self, entries: &Entries, out: &mut Vec<u32>) -> u32 {
        let start = out.len();
        let mut e = entries.next[HEAD as usize];
        let mut n_ok = 0usize;
        while e != NIL && entries.is_call[e as usize] {
            let op = entries.op[e as usize];
            if (op as usize) < self.n_ok {
                n_ok += 1;
            }
            e = entries.next[e as usize];
        }
        if e == NIL {
            let mut c = entries.next[HEAD as usize];
            while c != NIL {
                out.push(c);
                c = entries.next[c as usize];
            }
            return NIL;
        }
        let first_return = e;
        let limit = self.ops[entries.op[first_return as usize] as usize].complete.unwrap_or(u64::MAX);
        let mut r = first_return;
        let mut found = 0usize;
        while r != NIL && found < n_ok {
            if !entries.is_call[r as usize] {
                let op = entries.op[r as usize] as usize;
                if self.ops[op].invoke < limit {
                    out.push(entries.call_of[op]);
                    found += 1;
                }
            }
            r = entries.next[r as usize];
        }
        debug_assert_eq!(found, n_ok);
        let mut c = entries.next[HEAD as usize];
        while c != first_return {
            if entries.op[c as usize] as usize >= self.n_ok {
                out.push(c);
            }
            c = entries.next[c as usize];
        }
        debug_assert!(out.len() > start);
        entries.op[first_return as usize]
    }

    fn walk(&self, alternates_at: Option<usize>, memo_bytes: &mut u64) -> Answer {
        let n = self.ops.len();
        let mut entries = Entries::build(self.ops);
        let mut ok = BitSet::new(self.n_ok);
        let mut unknown = BitSet::new(n - self.n_ok);
        let mut memo: HashSet<MemoKey, FxBuild> = HashSet::default();
        let mut scratch = Vec::new();
        // Per level: (call entry linearized, state before it, forced, candidates start, cursor).
        let mut stack: Vec<Frame> = Vec::new();
        let mut cands: Vec<u32> = Vec::new();
        let mut best =
            Best { depth: 0, op: usize::MAX, path: Vec::new(), valid_below: 0, alternates_at, alternates: Vec::new() };
        let (mut state, mut m, mut linearized_ok) = (self.machine.init(), 0usize, 0usize);
        let mut level_start = 0usize;
        let mut first_return = self.candidates(&entries, &mut cands);
        let mut cursor = level_start;
        let mut steps = 0u64;
        let entry_bytes = std::mem::size_of::<MemoKey>() as u64 + 1;
        let mut accounted_cap = 0usize;
        let mut state_bytes = self.machine.state_bytes();
        let mut demand = self.overwrites.then(|| Demand::new(self.n_ok, self.n_values, &self.produced, &self.needs));
        let mut fenced = self.fences.as_ref().map(|f| {
            let mut s = Fenced::default();
            f.key.iter().for_each(|k| s.add(*k));
            s
        });
        loop {
            if linearized_ok == self.n_ok {
                return Answer::Linearizable;
            }
            steps += 1;
            if steps & 1023 == 0 || memo.capacity() != accounted_cap {
                if let Some(stop) = self.should_stop(memo.capacity(), &mut accounted_cap, entry_bytes, memo_bytes, &mut state_bytes) {
                    return Answer::Undecided(stop);
                }
            }
            let mut level_failed = cursor >= cands.len();
            if !level_failed {
                let entry = cands[cursor];
                let i = entries.op[entry as usize] as usize;
                let op = &self.ops[i].op;
                let blocked = match (&self.fences, &fenced) {
                    (Some(f), Some(s)) => f.limit[i].is_some_and(|l| s.blocks(l, f.key[i])),
                    _ => false,
                };
                let mut next = if blocked { None } else { self.machine.step(state, op) };
                if let (Some(d), Some(s)) = (demand.as_mut(), next) {
                    d.linearize(&self.produced[i], self.needs[i], i < self.n_ok);
                    if d.dead(s) {
                        d.unlinearize(&self.produced[i], self.needs[i], i < self.n_ok);
                        next = None;
                    }
                }
                if let Some(next_state) = next {
                    let next_m = if i < self.n_ok {
                        ok.set(i);
                        if i == m {
                            ok.next_clear(m + 1, self.n_ok)
                        } else {
                            m
                        }
                    } else {
                        unknown.set(i - self.n_ok);
                        m
                    };
                    let key = self.memo_key(next_m, next_state, &ok, &unknown, &mut scratch);
                    let heap = match &key.bits {
                        Bits::Big(b) => b.len() as u64 * 8,
                        Bits::Small(_) => 0,
                    };
                    if memo.insert(key) {
                        if let (Some(f), Some(s)) = (&self.fences, fenced.as_mut()) {
                            s.remove(f.key[i]);
                        }
                        *memo_bytes += heap;
                        self.limits.memory_used.fetch_add(heap, Ordering::Relaxed);
                        stack.push(Frame { call: entry, state, forced: op.is_read(), level_start, cursor, first_return });
                        state = next_state;
                        m = next_m;
                        linearized_ok += (i < self.n_ok) as usize;
                        entries.lift(entry);
                        level_start = cands.len();
                        first_return = self.candidates(&entries, &mut cands);
                        cursor = level_start;
                        continue;
                    }
                    if i < self.n_ok {
                        ok.clear(i);
                    } else {
                        unknown.clear(i - self.n_ok);
                    }
                    if let Some(d) = demand.as_mut() {
                        d.unlinearize(&self.produced[i], self.needs[i], i < self.n_ok);
                    }
                    // A read that fits now but leads to an explored configuration: that
                    // configuration failed, so this one fails too (see the module docs).
                    level_failed = op.is_read();
                }
                cursor += 1;
            }
            if !level_failed {
                continue;
            }
            if first_return != NIL {
                self.note_best(&mut best, &stack, first_return as usize);
            }
            loop {
                let Some(frame) = stack.pop() else {
                    return self.violation(best);
                };
                best.valid_below = best.valid_below.min(stack.len());
                let i = entries.op[frame.call as usize] as usize;
                if i < self.n_ok {
                    ok.clear(i);
                    m = m.min(i);
                    linearized_ok -= 1;
                } else {
                    unknown.clear(i - self.n_ok);
                }
                state = frame.state;
                if let (Some(f), Some(s)) = (&self.fences, fenced.as_mut()) {
                    s.add(f.key[i]);
                }
                if let Some(d) = demand.as_mut() {
                    d.unlinearize(&self.produced[i], self.needs[i], i < self.n_ok);
                }
                entries.unlift(frame.call);
                cands.truncate(level_start);
                level_start = frame.level_start;
                cursor = frame.cursor + 1;
                first_return = frame.first_return;
                if !frame.forced {
                    break;
                }
            }
        }
    }

    fn should_stop(&self, cap: usize, accounted: &mut usize, entry_bytes: u64, memo_bytes: &mut u64, states: &mut u64) -> Option<Stop> {
        if cap > *accounted {
            let delta = (cap - *accounted) as u64 * entry_bytes;
            *accounted = cap;
            *memo_bytes += delta;
            self.limits.memory_used.fetch_add(delta, Ordering::Relaxed);
        }
        // States the model interned during this search (queue contents, register maps).
        let held = self.machine.state_bytes();
        if held > *states {
            let delta = held - *states;
            *states = held;
            *memo_bytes += delta;
            self.limits.memory_used.fetch_add(delta, Ordering::Relaxed);
        }
        if self.limits.cancel.load(Ordering::Relaxed) {
            return Some(Stop::Cancelled);
        }
        if self.limits.memory_used.load(Ordering::Relaxed) > self.limits.memory_limit {
            return Some(Stop::Memory);
        }
        if Instant::now() >= self.limits.deadline {
            return Some(Stop::Deadline);
        }
        None
    }

    fn note_best(&self, best: &mut Best, stack: &[Frame], op: usize) {
        let depth = stack.len();
        if let Some(at) = best.alternates_at {
            if depth == at && best.alternates.len() < 3 {
                let path: Vec<usize> = stack.iter().map(|s| s.call as usize).collect();
                if !best.alternates.contains(&path) {
                    best.alternates.push(path);
                }
            }
        }
        if depth > best.depth || best.op == usize::MAX {
            best.path.truncate(best.valid_below.min(best.path.len()));
            best.path.extend(stack[best.path.len()..].iter().map(|s| s.call as usize));
            best.valid_below = depth;
            best.depth = depth;
            best.op = op;
        }
    }

    /// Turns the best configuration (entry ids) into operation indices.
    fn violation(&self, best: Best) -> Answer {
        let entries = Entries::build(self.ops);
        let to_ops = |p: &Vec<usize>| p.iter().map(|e| entries.op[*e] as usize).collect::<Vec<_>>();
        let mut prefixes = vec![to_ops(&best.path)];
        for alt in &best.alternates {
            let p = to_ops(alt);
            if !prefixes.contains(&p) {
                prefixes.push(p);
            }
        }
        prefixes.truncate(3);
        Answer::Violation { op: best.op, prefixes }
    }
}
