//! The replicated state machine behind the consensus protocols (Raft, Multi-Paxos).
//!
//! Consensus decides the order of commands; this module says what a command does. It serves the
//! `register` workload (a map of keys to values with read, write and compare-and-set), the
//! `append` workload (the same map, whose values are lists that `append` extends by one element),
//! the `counter` workload (one integer) and the `set` workload (one set of elements; `remove` is
//! applied too, though the consensus protocols do not offer the `set-remove` workload). Applying a
//! command is deterministic, so every replica that applies the same log reaches the same state.

use crate::core::{ErrorCode, Reply, Request};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The whole replicated state; serialisable as a snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMachine {
    /// Register and append workloads: key (its JSON text) to value (a list for `append`).
    pub kv: BTreeMap<String, Value>,
    pub counter: i64,
    /// Set workload: the elements as their JSON text, so any JSON value can be an element.
    pub set: BTreeSet<String>,
}

/// The canonical text of a key, so `1` and `"1"` stay different keys.
fn key_text(key: &Value) -> String {
    key.to_string()
}

impl StateMachine {
    /// Applies one command and returns the reply its client should get.
    pub fn apply(&mut self, request: &Request) -> Reply {
        match request {
            Request::Read { key: Some(key) } => self.apply_read(key),
            Request::Read { key: None } => self.read_all(),
            Request::Write { key, value } => {
                self.kv.insert(key_text(key), value.clone());
                Reply::WriteOk
            }
            Request::Cas { key, from, to } => match self.kv.get_mut(&key_text(key)) {
                None => Reply::error(ErrorCode::KeyDoesNotExist, "key does not exist"),
                Some(current) if current != from => {
                    Reply::error(ErrorCode::PreconditionFailed, format!("expected {from}, found {current}"))
                }
                Some(current) => {
                    *current = to.clone();
                    Reply::CasOk
                }
            },
            Request::Add { delta } => {
                self.counter = self.counter.saturating_add(*delta);
                Reply::AddOk
            }
            Request::AddElement { element } => {
                self.set.insert(element.to_string());
                Reply::AddOk
            }
            Request::RemoveElement { element } => {
                self.set.remove(&element.to_string());
                Reply::RemoveOk
            }
            Request::Append { key, value } => match self.kv.get_mut(&key_text(key)) {
                None => {
                    self.kv.insert(key_text(key), Value::Array(vec![value.clone()]));
                    Reply::AppendOk
                }
                Some(Value::Array(list)) => {
                    list.push(value.clone());
                    Reply::AppendOk
                }
                Some(other) => Reply::error(ErrorCode::PreconditionFailed, format!("cannot append to {other}: not a list")),
            },
            Request::Transfer { .. } => Reply::error(ErrorCode::NotSupported, "transfer is served by twopc"),
        }
    }

    /// A read without a key: the counter when the set is empty and the counter is not, or the set.
    /// Which one a client means is fixed by the node's workload, see [`StateMachine::read_for`].
    fn read_all(&self) -> Reply {
        Reply::ReadOk(self.set_value())
    }

    /// The reply to a keyless read for the given workload.
    pub fn read_for(&self, workload: &str) -> Reply {
        match workload {
            "counter" => Reply::ReadOk(Value::from(self.counter)),
            _ => Reply::ReadOk(self.set_value()),
        }
    }

    fn set_value(&self) -> Value {
        Value::Array(self.set.iter().map(|s| serde_json::from_str(s).unwrap_or(Value::Null)).collect())
    }

    /// A local read (`Core::local_read`): this replica's applied value, as a read of the same
    /// key through the log would answer it at this point of the log.
    pub fn local_read(&self, key: Option<&Value>, workload: &str) -> Reply {
        match key {
            Some(key) => self.apply_read(key),
            None => self.read_for(workload),
        }
    }

    fn apply_read(&self, key: &Value) -> Reply {
        match self.kv.get(&key_text(key)) {
            Some(v) => Reply::ReadOk(v.clone()),
            None => Reply::error(ErrorCode::KeyDoesNotExist, "key does not exist"),
        }
    }

    /// Whether a request changes state; reads need not be logged by protocols that serve them
    /// another way (ReadIndex).
    pub fn is_read(request: &Request) -> bool {
        matches!(request, Request::Read { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn register_semantics() {
        let mut sm = StateMachine::default();
        let k = json!("a");
        assert!(matches!(sm.apply(&Request::Read { key: Some(k.clone()) }), Reply::Error { code: 20, .. }));
        assert!(matches!(sm.apply(&Request::Cas { key: k.clone(), from: json!(1), to: json!(2) }), Reply::Error { code: 20, .. }));
        assert_eq!(sm.apply(&Request::Write { key: k.clone(), value: json!(1) }), Reply::WriteOk);
        assert!(matches!(sm.apply(&Request::Cas { key: k.clone(), from: json!(3), to: json!(2) }), Reply::Error { code: 22, .. }));
        assert_eq!(sm.apply(&Request::Cas { key: k.clone(), from: json!(1), to: json!(2) }), Reply::CasOk);
        assert_eq!(sm.apply(&Request::Read { key: Some(k) }), Reply::ReadOk(json!(2)));
        // Integer key 1 and string key "1" are different objects.
        sm.apply(&Request::Write { key: json!(1), value: json!(5) });
        assert!(matches!(sm.apply(&Request::Read { key: Some(json!("1")) }), Reply::Error { code: 20, .. }));
    }

    #[test]
    fn counter_and_set() {
        let mut sm = StateMachine::default();
        sm.apply(&Request::Add { delta: 3 });
        sm.apply(&Request::Add { delta: -1 });
        assert_eq!(sm.read_for("counter"), Reply::ReadOk(json!(2)));
        sm.apply(&Request::AddElement { element: json!(4) });
        sm.apply(&Request::AddElement { element: json!(1) });
        sm.apply(&Request::AddElement { element: json!(4) });
        assert_eq!(sm.read_for("set"), Reply::ReadOk(json!([1, 4])));
        assert_eq!(sm.apply(&Request::RemoveElement { element: json!(4) }), Reply::RemoveOk);
        assert_eq!(sm.apply(&Request::RemoveElement { element: json!(9) }), Reply::RemoveOk);
        assert_eq!(sm.read_for("set"), Reply::ReadOk(json!([1])));
    }

    #[test]
    fn append_builds_lists() {
        let mut sm = StateMachine::default();
        let k = json!(3);
        assert!(matches!(sm.apply(&Request::Read { key: Some(k.clone()) }), Reply::Error { code: 20, .. }));
        assert_eq!(sm.apply(&Request::Append { key: k.clone(), value: json!(7) }), Reply::AppendOk);
        assert_eq!(sm.apply(&Request::Append { key: k.clone(), value: json!(2) }), Reply::AppendOk);
        assert_eq!(sm.apply(&Request::Read { key: Some(k.clone()) }), Reply::ReadOk(json!([7, 2])));
        assert_eq!(sm.local_read(Some(&k), "append"), Reply::ReadOk(json!([7, 2])));
        assert!(matches!(sm.local_read(Some(&json!(4)), "append"), Reply::Error { code: 20, .. }));
        // A register value is not a list: appending to it is a definite error.
        sm.apply(&Request::Write { key: json!("r"), value: json!(1) });
        assert!(matches!(sm.apply(&Request::Append { key: json!("r"), value: json!(1) }), Reply::Error { code: 22, .. }));
    }
}
