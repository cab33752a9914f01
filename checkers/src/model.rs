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
//!
//! Operations that failed are dropped before they reach a model; an operation with an unknown
//! outcome is compiled with an unknown output (a read with an unknown output constrains nothing
//! and is dropped).

use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;

use crate::history::{Call, History, Outcome};
use crate::value::{big, canonical, canonical_text, exact_int};

/// The model names [`by_name`] knows, in the order the documentation lists them.
pub const NAMES: &[&str] = &["register", "cas-register", "kv", "counter", "set"];

/// Which sequential specification to check against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Register,
    CasRegister,
    Kv,
    Counter,
    Set,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Register => "register",
            Kind::CasRegister => "cas-register",
            Kind::Kv => "kv",
            Kind::Counter => "counter",
            Kind::Set => "set",
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
        _ => None,
    }
}

/// Guesses the model from the operations of a history: `append` or any key means `kv`, `cas`
/// means `cas-register`, `add` means `counter` (or `set` when reads answer lists), else
/// `register`.
pub fn guess(history: &History) -> &'static str {
    let (mut append, mut keyed, mut cas, mut add, mut list_reads) = (false, false, false, false, false);
    for op in history.ops.iter().filter(|op| !op.is_nemesis()) {
        keyed |= op.key.is_some();
        match &*op.f {
            "append" => append = true,
            "cas" => cas = true,
            "add" => add = true,
            "read" => list_reads |= op.value.is_array(),
            _ => {}
        }
    }
    if append || (keyed && !add) {
        "kv"
    } else if cas {
        "cas-register"
    } else if add && list_reads {
        "set"
    } else if add {
        "counter"
    } else {
        "register"
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
    int_ids: HashMap<i64, u64>,
    values: Vec<Value>,
    appends: HashMap<(u64, u64), u64>,
    set_ids: HashMap<Vec<u64>, u64>,
    sets: Vec<Vec<u64>>,
    inserts: HashMap<(u64, u64), u64>,
    sum_ids: HashMap<i128, u64>,
    sums: Vec<i128>,
}

impl Tables {
    fn new() -> Tables {
        let mut t = Tables::default();
        t.intern(&Value::Null);
        t.intern_set(Vec::new());
        t.intern_sum(0);
        t
    }

    /// The id of a value; equal values (in the sense of [`crate::value`]) share one id. The
    /// canonical form is what is kept, so appends and descriptions never see two spellings.
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
        match as_int(&canon) {
            Some(i) => self.int_ids.get(&i).copied(),
            None => self.ids.get(&canonical_text(&canon)).copied(),
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

    /// The initial state: `null` (missing), the empty set, or a zero counter; handle 0 in all.
    pub fn init(&self) -> u64 {
        0
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
        let mut t = self.tables.borrow_mut();
        let input = match (self.kind, f) {
            (_, "read") => {
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
            (_, "write") => Input::Write(t.intern(&call.input)),
            (_, "append") => Input::Append(t.intern(&call.input)),
            (_, "cas") => match call.input.as_array().map(|a| a.as_slice()) {
                Some([from, to]) => Input::Cas(t.intern(from), t.intern(to)),
                _ => return Err(format!("a cas takes [from, to], got {}", call.input)),
            },
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
