//! Property: the counter checker accepts every history of a real sequential counter observed
//! through overlapping client intervals, and rejects the same history once one read is shifted
//! just outside the window its concurrent adds allow.
//!
//! Each generated operation takes effect at one instant strictly inside its interval (a
//! linearization point); reads return the sum of the adds that took effect before theirs. Adds
//! may fail (never applied) or end `info` (applied or not, at random). The history is the
//! invokes and completions sorted by time, which are all distinct.

use faultline_checkers::history::{History, Op, OpType};
use faultline_checkers::{counter, Validity};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

struct Gen {
    ops: Vec<(u64, Op)>,
    /// The sum of |delta| over every add: no read can ever exceed it.
    total_abs: i64,
}

/// One operation's plan: who, what, when, and whether/when it takes effect.
struct Planned {
    process: u64,
    add: Option<i64>,
    invoke: u64,
    complete: u64,
    effect_at: Option<f64>,
    outcome: OpType,
}

fn plan(seed: u64, processes: u64, per_process: usize) -> Vec<Planned> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for p in 0..processes {
        let mut t: u64 = rng.gen_range(0..50);
        for _ in 0..per_process {
            let invoke = t * 1024 + p;
            let complete = (t + rng.gen_range(1..60)) * 1024 + p;
            let lin = invoke as f64 + (complete - invoke) as f64 * rng.gen_range(0.01..0.99);
            let add = if rng.gen_bool(0.6) { Some(rng.gen_range(-3i64..=6)) } else { None };
            let outcome = match rng.gen_range(0..10) {
                0 => OpType::Fail,
                1 => OpType::Info,
                _ => OpType::Ok,
            };
            let effect_at = match (add.is_some(), outcome) {
                (true, OpType::Fail) => None,
                (true, OpType::Info) if rng.gen_bool(0.5) => None,
                (false, OpType::Fail) => None,
                _ => Some(lin),
            };
            out.push(Planned { process: p, add, invoke, complete, effect_at, outcome });
            t = complete / 1024 + rng.gen_range(1..20);
        }
    }
    out
}

fn build(plans: &[Planned]) -> Gen {
    let mut effects: Vec<(f64, i64)> = plans.iter().filter_map(|p| Some((p.effect_at?, p.add?))).collect();
    effects.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    let value_at = |t: f64| effects.iter().take_while(|(at, _)| *at < t).map(|(_, d)| d).sum::<i64>();
    let mut ops = Vec::new();
    for p in plans {
        let (f, arg) = match p.add {
            Some(d) => ("add", json!(d)),
            None => ("read", Value::Null),
        };
        ops.push((p.invoke, Op::new(p.process, OpType::Invoke, f, arg.clone())));
        let out = match (p.add, p.outcome) {
            (None, OpType::Ok) => json!(value_at(p.effect_at.unwrap())),
            (None, _) => Value::Null,
            (Some(_), _) => arg,
        };
        ops.push((p.complete, Op::new(p.process, p.outcome, f, out)));
    }
    let total_abs = plans.iter().filter_map(|p| p.add).map(i64::abs).sum();
    // A final read after everything, of the exact final value.
    let end = ops.iter().map(|(t, _)| *t).max().unwrap_or(0) + 1;
    let final_value: i64 = effects.iter().map(|(_, d)| d).sum();
    let mut a = Op::new(999, OpType::Invoke, "read", Value::Null);
    let mut b = Op::new(999, OpType::Ok, "read", json!(final_value));
    a.final_read = true;
    b.final_read = true;
    ops.push((end, a));
    ops.push((end + 1, b));
    Gen { ops, total_abs }
}

fn history(g: &Gen) -> History {
    let mut ops = g.ops.clone();
    ops.sort_by_key(|(t, _)| *t);
    History::from_ops(ops.into_iter().map(|(t, mut o)| { o.time = t; o }).collect())
}

/// The window of an ok read at `at` (positions in `h`), computed the slow, obvious way.
fn window(h: &History, read_complete: usize) -> (i64, i64) {
    let calls = h.calls().unwrap();
    let read = calls.iter().find(|c| c.complete_index == Some(read_complete as u64)).unwrap();
    let (t1, t2) = (read.invoke_index, read.complete_index.unwrap());
    let (mut lo, mut hi) = (0, 0);
    for c in calls.iter().filter(|c| &*c.f == "add") {
        let d = c.input.as_i64().unwrap();
        let certain = c.is_ok() && c.complete_index.unwrap() < t1;
        let possible = c.outcome != faultline_checkers::Outcome::Fail && c.invoke_index < t2;
        if certain {
            lo += d;
            hi += d;
        } else if possible {
            if d < 0 { lo += d } else { hi += d }
        }
    }
    (lo, hi)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn accepts_real_counters_and_rejects_shifted_reads(seed in any::<u64>(), processes in 1u64..6, per in 1usize..25, pick in any::<prop::sample::Index>(), up in any::<bool>()) {
        let g = build(&plan(seed, processes, per));
        let h = history(&g);
        let r = counter::check(&h);
        prop_assert_eq!(r.valid, Validity::Valid, "{}", serde_json::to_string(&r).unwrap());

        // Shift one ordinary ok read just outside its window.
        let reads: Vec<usize> = h.ops.iter().enumerate()
            .filter(|(_, o)| o.op_type == OpType::Ok && &*o.f == "read" && !o.final_read)
            .map(|(i, _)| i).collect();
        let mut bad = h.clone();
        let target = if reads.is_empty() { bad.ops.len() - 1 } else { reads[pick.index(reads.len())] };
        let shifted = if bad.ops[target].final_read {
            g.total_abs + 1
        } else {
            let (lo, hi) = window(&h, target);
            prop_assert!((lo..=hi).contains(&h.ops[target].value.as_i64().unwrap()));
            if up { hi + 1 } else { lo - 1 }
        };
        bad.ops[target].value = json!(shifted);
        let r = counter::check(&bad);
        prop_assert_eq!(r.valid, Validity::Invalid, "read at {} shifted to {}", target, shifted);
        prop_assert_eq!(r.details["error_count"].clone(), json!(1));
    }
}
