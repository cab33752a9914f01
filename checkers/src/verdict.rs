//! Three-valued verdicts and how checker results compose.
//!
//! A checker answers valid, invalid, or unknown (it ran out of budget, or it failed inside).
//! Results compose like Jepsen's: invalid beats unknown beats valid, so one checker that crashed
//! never hides another that found a violation.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;

/// The answer of a checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Validity {
    Valid,
    Invalid,
    Unknown,
}

impl Validity {
    /// Composes two verdicts: invalid beats unknown beats valid.
    pub fn and(self, other: Validity) -> Validity {
        use Validity::*;
        match (self, other) {
            (Invalid, _) | (_, Invalid) => Invalid,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => Valid,
        }
    }

    /// The process exit code of the contract: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }

    pub fn to_json(self) -> Value {
        match self {
            Validity::Valid => Value::Bool(true),
            Validity::Invalid => Value::Bool(false),
            Validity::Unknown => Value::String("unknown".into()),
        }
    }

    pub fn from_json(v: &Value) -> Option<Validity> {
        match v {
            Value::Bool(true) => Some(Validity::Valid),
            Value::Bool(false) => Some(Validity::Invalid),
            Value::String(s) if s == "unknown" => Some(Validity::Unknown),
            _ => None,
        }
    }
}

impl Serialize for Validity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Validity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Validity::from_json(&v).ok_or_else(|| serde::de::Error::custom(format!("expected true, false or \"unknown\", got {v}")))
    }
}

/// What one checker found: the verdict and checker-specific details (counts, anomalies,
/// explanations), flattened next to `valid` in JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub valid: Validity,
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl CheckResult {
    pub fn new(valid: Validity) -> Self {
        CheckResult { valid, details: Map::new() }
    }

    /// An unknown result that says why (budget spent, internal failure, nothing to check).
    pub fn unknown(reason: impl Into<String>) -> Self {
        CheckResult::new(Validity::Unknown).with("error", Value::String(reason.into()))
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.details.insert(key.to_string(), value);
        self
    }
}

/// Limits every checker honours. A checker that reaches one answers unknown, never hangs and
/// never exhausts memory.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// Wall-clock budget for the whole check.
    pub budget: Duration,
    /// Approximate cap on the memory a search may hold (memo tables, frontiers), in bytes.
    pub memory_limit_bytes: u64,
    /// Worker threads for independent pieces (keys); 0 means one per core.
    pub threads: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { budget: Duration::from_secs(60), memory_limit_bytes: 2 << 30, threads: 0 }
    }
}

impl CheckOptions {
    pub fn thread_count(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        }
    }
}

/// The results of several checkers, composed: what `results.json` holds under `valid` and
/// `checkers`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Composed {
    pub valid: Option<Validity>,
    pub checkers: Map<String, Value>,
}

/// Composes named results; an empty set of results is unknown (nothing was checked).
pub fn compose(results: &[(String, CheckResult)]) -> (Validity, Map<String, Value>) {
    let mut valid: Option<Validity> = None;
    let mut map = Map::new();
    for (name, r) in results {
        valid = Some(valid.map_or(r.valid, |v| v.and(r.valid)));
        map.insert(name.clone(), serde_json::to_value(r).unwrap_or(Value::Null));
    }
    (valid.unwrap_or(Validity::Unknown), map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Validity::*;

    #[test]
    fn invalid_beats_unknown_beats_valid() {
        assert_eq!(Valid.and(Valid), Valid);
        assert_eq!(Valid.and(Unknown), Unknown);
        assert_eq!(Unknown.and(Invalid), Invalid);
        assert_eq!(Invalid.and(Valid), Invalid);
        let rs = vec![("a".to_string(), CheckResult::new(Valid)), ("b".to_string(), CheckResult::unknown("boom"))];
        assert_eq!(compose(&rs).0, Unknown);
        assert_eq!(compose(&[]).0, Unknown);
    }

    #[test]
    fn serializes_as_the_contract_says() {
        let r = CheckResult::new(Unknown).with("x", Value::from(1));
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"valid":"unknown","x":1}"#);
        let back: CheckResult = serde_json::from_str(r#"{"valid":false,"y":2}"#).unwrap();
        assert_eq!(back.valid, Invalid);
    }
}
