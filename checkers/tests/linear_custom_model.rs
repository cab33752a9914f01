//! The model interface is open: a model defined here, outside the crate, is checked by the same
//! search ([`linear::check_model`]), with its own partition and its own pruning hint.
//!
//! The model is a grow-only maximum register: `raise n` sets the value to `max(value, n)`,
//! `read` answers the value (0 at first). Its partition is by key; its `demands` hint says a read
//! needs its output and a raise can produce only its own argument (the state after `raise n` is
//! either unchanged or `n`).

use faultline_checkers::history::{parse_jsonl, Call, Outcome};
use faultline_checkers::linear;
use faultline_checkers::model::{Demands, Input, Model, ModelOp};
use faultline_checkers::{CheckOptions, Validity};
use serde_json::{json, Value};
use std::cell::Cell;

struct MaxRegister {
    hinted: bool,
    steps: Cell<u64>,
}

impl Model for MaxRegister {
    fn name(&self) -> &str {
        "max-register"
    }
    fn compile(&self, call: &Call) -> Result<Option<ModelOp>, String> {
        let int = |v: &Value| v.as_u64().ok_or_else(|| format!("not a natural number: {v}"));
        match (&*call.f, &call.outcome) {
            (_, Outcome::Fail) => Ok(None),
            ("raise", _) => Ok(Some(ModelOp { input: Input::Custom(0, int(&call.input)?), output: None })),
            ("read", Outcome::Ok(v)) => Ok(Some(ModelOp { input: Input::Read, output: Some(int(v)?) })),
            ("read", _) => Ok(None),
            (f, _) => Err(format!("unknown operation {f}")),
        }
    }
    fn step(&self, state: u64, op: &ModelOp) -> Option<u64> {
        self.steps.set(self.steps.get() + 1);
        match op.input {
            Input::Custom(0, n) => Some(state.max(n)),
            Input::Read => (op.output == Some(state)).then_some(state),
            _ => None,
        }
    }
    fn describe_state(&self, state: u64) -> Value {
        json!(state)
    }
    fn demands(&self, ops: &[ModelOp]) -> Option<Demands> {
        self.hinted.then(|| Demands {
            produces: ops.iter().map(|o| if let Input::Custom(0, n) = o.input { vec![n] } else { vec![] }).collect(),
            needs: ops.iter().map(|o| if o.input == Input::Read { o.output } else { None }).collect(),
        })
    }
}

const VALID: &str = r#"{"process":0,"type":"invoke","f":"raise","key":"a","value":3}
{"process":1,"type":"invoke","f":"raise","key":"a","value":5}
{"process":0,"type":"ok","f":"raise","key":"a","value":3}
{"process":2,"type":"invoke","f":"read","key":"a","value":null}
{"process":2,"type":"ok","f":"read","key":"a","value":3}
{"process":1,"type":"ok","f":"raise","key":"a","value":5}
{"process":2,"type":"invoke","f":"read","key":"a","value":null}
{"process":2,"type":"ok","f":"read","key":"a","value":5}
{"process":0,"type":"invoke","f":"raise","key":"b","value":1}
{"process":0,"type":"ok","f":"raise","key":"b","value":1}
"#;

/// A read of 3 after 5 was read: the maximum never goes back.
const INVALID: &str = r#"{"process":0,"type":"invoke","f":"raise","key":"a","value":5}
{"process":0,"type":"ok","f":"raise","key":"a","value":5}
{"process":0,"type":"invoke","f":"raise","key":"a","value":3}
{"process":0,"type":"ok","f":"raise","key":"a","value":3}
{"process":2,"type":"invoke","f":"read","key":"a","value":null}
{"process":2,"type":"ok","f":"read","key":"a","value":3}
"#;

#[test]
fn a_model_from_outside_the_crate_is_checked_by_the_search() {
    let opts = CheckOptions { threads: 2, ..CheckOptions::default() };
    for hinted in [false, true] {
        let make = || MaxRegister { hinted, steps: Cell::new(0) };
        let valid = linear::check_model(&parse_jsonl(VALID, "valid").unwrap(), make, &opts);
        assert_eq!(valid.valid, Validity::Valid, "{valid:?}");
        assert_eq!(valid.details["keys"], json!(2), "partitioned by key: {valid:?}");
        assert_eq!(valid.details["model"], json!("max-register"));
        assert_eq!(valid.details["paths"]["search"], json!(2), "no fast path for an outside model");
        let invalid = linear::check_model(&parse_jsonl(INVALID, "invalid").unwrap(), make, &opts);
        assert_eq!(invalid.valid, Validity::Invalid, "{invalid:?}");
        let a = &invalid.details["anomalies"][0];
        assert_eq!(a["key"], json!("a"));
        assert!(a["explanation"].as_str().is_some_and(|e| !e.is_empty()), "{a}");
    }
    let bad = "{\"process\":0,\"type\":\"invoke\",\"f\":\"lower\",\"value\":1}\n";
    let r = linear::check_model(&parse_jsonl(bad, "bad").unwrap(), || MaxRegister { hinted: true, steps: Cell::new(0) }, &opts);
    assert_eq!(r.valid, Validity::Unknown);
    assert!(r.details["error"].as_str().unwrap().contains("unknown operation lower"), "{r:?}");
}
