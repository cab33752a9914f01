//! Cross-check against stateright's `LinearizabilityTester` on small register histories.
//!
//! Random histories of up to ten reads and writes over four processes, half of them with
//! corrupted read outputs, some with operations that never complete (stateright treats an
//! operation still in flight at the end as optional, as faultline treats unknown outcomes).
//! Both checkers must agree on every history.

use faultline_checkers::history::{History, Op, OpType};
use faultline_checkers::linear;
use faultline_checkers::{CheckOptions, Validity};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use stateright::semantics::register::{Register, RegisterOp, RegisterRet};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};

/// An in-flight operation: (is a write, value written, `Some(output)` once it took effect).
type Inflight = Option<(bool, i64, Option<Option<i64>>)>;

/// A random history and whether its reads may have been corrupted.
fn random_history(seed: u64) -> (History, bool) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n_ops = rng.gen_range(1..=10);
    let procs = 4u64;
    let mut reg: Option<i64> = None;
    let mut inflight: Vec<Inflight> = vec![None; procs as usize];
    let mut retired = vec![false; procs as usize];
    let mut ops = Vec::new();
    let mut started = 0;
    let corrupt = rng.gen_bool(0.5);
    loop {
        let live: Vec<usize> = (0..procs as usize).filter(|&p| !retired[p] && (inflight[p].is_some() || started < n_ops)).collect();
        if live.is_empty() {
            break;
        }
        let p = live[rng.gen_range(0..live.len())];
        match inflight[p].take() {
            None => {
                started += 1;
                let is_write = rng.gen_bool(0.5);
                let v = rng.gen_range(0..3);
                let (f, value) = if is_write { ("write", json!(v)) } else { ("read", Value::Null) };
                ops.push(Op::new(p as u64, OpType::Invoke, f, value));
                inflight[p] = Some((is_write, v, None));
            }
            Some((w, v, None)) => {
                // Take effect.
                let out = if w {
                    reg = Some(v);
                    None
                } else {
                    reg
                };
                inflight[p] = Some((w, v, Some(out)));
            }
            Some((w, v, Some(out))) => {
                if rng.gen_bool(0.1) {
                    // Never completes: stays in flight to the end.
                    retired[p] = true;
                    continue;
                }
                let value = if w {
                    json!(v)
                } else if corrupt && rng.gen_bool(0.3) {
                    json!(rng.gen_range(0..3))
                } else {
                    out.map_or(Value::Null, |x| json!(x))
                };
                ops.push(Op::new(p as u64, OpType::Ok, if w { "write" } else { "read" }, value));
            }
        }
    }
    (History::from_ops(ops), corrupt)
}

fn stateright_verdict(h: &History) -> bool {
    let mut t: LinearizabilityTester<u64, Register<Option<i64>>> = LinearizabilityTester::new(Register(None));
    for op in &h.ops {
        let p = match op.process {
            faultline_checkers::Process::Client(p) => p,
            _ => continue,
        };
        match (op.op_type, &*op.f) {
            (OpType::Invoke, "write") => t.on_invoke(p, RegisterOp::Write(op.value.as_i64())).map(|_| ()),
            (OpType::Invoke, _) => t.on_invoke(p, RegisterOp::Read).map(|_| ()),
            (_, "write") => t.on_return(p, RegisterRet::WriteOk).map(|_| ()),
            (_, _) => t.on_return(p, RegisterRet::ReadOk(op.value.as_i64())).map(|_| ()),
        }
        .expect("well-formed history");
    }
    t.is_consistent()
}

#[test]
fn agrees_with_stateright_on_small_register_histories() {
    let (mut valid, mut invalid) = (0, 0);
    for seed in 0..1500 {
        let (h, _) = random_history(seed);
        let expected = stateright_verdict(&h);
        let got = linear::check(&h, "register", &CheckOptions { threads: 1, ..CheckOptions::default() });
        let want = if expected { Validity::Valid } else { Validity::Invalid };
        assert_eq!(got.valid, want, "seed {seed}: {:#?}\n{got:?}", h.ops);
        if expected {
            valid += 1
        } else {
            invalid += 1
        }
    }
    assert!(valid > 300 && invalid > 150, "{valid} valid, {invalid} invalid: the generator should give both");
}
