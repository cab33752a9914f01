//! The requests a client sends a node, and their bodies on the wire.
//!
//! | request | body |
//! | --- | --- |
//! | read (a key, or the whole state) | `{"type":"read","msg_id":1,"key":k}` (`key` absent for the whole state) |
//! | local read (a harness extension) | `{"type":"read","msg_id":1,"key":k,"local":true}` |
//! | write | `{"type":"write","msg_id":1,"key":k,"value":v}` |
//! | compare-and-set | `{"type":"cas","msg_id":1,"key":k,"from":a,"to":b}` |
//! | add to a counter | `{"type":"add","msg_id":1,"delta":3}` |
//! | add to a set | `{"type":"add","msg_id":1,"element":7}` |
//! | remove from a set | `{"type":"remove","msg_id":1,"element":7}` |
//! | append to a list | `{"type":"append","msg_id":1,"key":k,"value":v}` |
//! | bank transfer | `{"type":"transfer","msg_id":1,"from":a,"to":b,"amount":5}` |
//! | status (a harness extension) | `{"type":"status","msg_id":1}` |

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::code::ErrorCode;

/// A client request, as a protocol core sees it. (The derived serde form is the cores' own, for
/// their logs and peer messages; the wire form is [`ClientMsg::to_body`].)
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// `read` with a key (register) or without (counter, set, bank: the whole state).
    Read { key: Option<Value> },
    Write { key: Value, value: Value },
    Cas { key: Value, from: Value, to: Value },
    /// `add` of a delta to a counter.
    Add { delta: i64 },
    /// `add` of an element to a set.
    AddElement { element: Value },
    /// `remove` of an element from a set (OR-set: the add-tags this replica has observed).
    RemoveElement { element: Value },
    /// `append` of `value` to the list at `key` (created as `[value]` when missing).
    Append { key: Value, value: Value },
    Transfer { from: Value, to: Value, amount: i64 },
}

/// Everything a client may send on a node's client port: an operation, or one of the harness's
/// two extensions.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientMsg {
    Request(Request),
    /// A read of the replica's own applied state, never through a leader or a quorum.
    LocalRead { key: Option<Value> },
    /// What the node believes about leadership, answered by `status_ok`.
    Status,
}

/// A body that does not decode: the definite error to answer with and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub text: String,
}

impl Rejection {
    fn malformed(text: String) -> Rejection {
        Rejection { code: ErrorCode::MalformedRequest, text }
    }
}

impl From<Request> for ClientMsg {
    fn from(r: Request) -> ClientMsg {
        ClientMsg::Request(r)
    }
}

impl ClientMsg {
    /// The wire type of the message (`read`, `write`, ..., `status`).
    pub fn type_name(&self) -> &'static str {
        match self {
            ClientMsg::Request(Request::Read { .. }) | ClientMsg::LocalRead { .. } => "read",
            ClientMsg::Request(Request::Write { .. }) => "write",
            ClientMsg::Request(Request::Cas { .. }) => "cas",
            ClientMsg::Request(Request::Add { .. } | Request::AddElement { .. }) => "add",
            ClientMsg::Request(Request::RemoveElement { .. }) => "remove",
            ClientMsg::Request(Request::Append { .. }) => "append",
            ClientMsg::Request(Request::Transfer { .. }) => "transfer",
            ClientMsg::Status => "status",
        }
    }

    /// The body on the wire: `type`, `msg_id`, then the fields in the order of the table above.
    pub fn to_body(&self, msg_id: u64) -> Value {
        let mut body = Map::new();
        body.insert("type".into(), Value::from(self.type_name()));
        body.insert("msg_id".into(), Value::from(msg_id));
        let mut put = |name: &str, v: &Value| {
            body.insert(name.into(), v.clone());
        };
        match self {
            ClientMsg::Request(r) => match r {
                Request::Read { key } => key.iter().for_each(|k| put("key", k)),
                Request::Write { key, value } | Request::Append { key, value } => {
                    put("key", key);
                    put("value", value);
                }
                Request::Cas { key, from, to } => {
                    put("key", key);
                    put("from", from);
                    put("to", to);
                }
                Request::Add { delta } => put("delta", &Value::from(*delta)),
                Request::AddElement { element } | Request::RemoveElement { element } => put("element", element),
                Request::Transfer { from, to, amount } => {
                    put("from", from);
                    put("to", to);
                    put("amount", &Value::from(*amount));
                }
            },
            ClientMsg::LocalRead { key } => {
                key.iter().for_each(|k| put("key", k));
                put("local", &Value::Bool(true));
            }
            ClientMsg::Status => {}
        }
        Value::Object(body)
    }

    /// Decodes a body (its `msg_id` is the caller's to keep). Missing or mistyped fields are
    /// error 12 (malformed-request), an unknown type 10 (not-supported). Fields the message does
    /// not use are ignored, as Maelstrom nodes do.
    pub fn from_body(body: &Map<String, Value>) -> Result<ClientMsg, Rejection> {
        let kind = body.get("type").and_then(Value::as_str).ok_or_else(|| Rejection::malformed("missing \"type\"".into()))?;
        let field = |name: &str| body.get(name).cloned().ok_or_else(|| Rejection::malformed(format!("{kind}: missing \"{name}\"")));
        let int = |name: &str| field(name)?.as_i64().ok_or_else(|| Rejection::malformed(format!("{kind}: \"{name}\" must be an integer")));
        let request = match kind {
            "status" => return Ok(ClientMsg::Status),
            "read" if body.get("local") == Some(&Value::Bool(true)) => return Ok(ClientMsg::LocalRead { key: body.get("key").cloned() }),
            "read" => Request::Read { key: body.get("key").cloned() },
            "write" => Request::Write { key: field("key")?, value: field("value")? },
            "cas" => Request::Cas { key: field("key")?, from: field("from")?, to: field("to")? },
            "add" if body.contains_key("element") => Request::AddElement { element: field("element")? },
            "add" => Request::Add { delta: int("delta")? },
            "remove" => Request::RemoveElement { element: field("element")? },
            "append" => Request::Append { key: field("key")?, value: field("value")? },
            "transfer" => Request::Transfer { from: field("from")?, to: field("to")?, amount: int("amount")? },
            other => return Err(Rejection { code: ErrorCode::NotSupported, text: format!("unsupported request type {other:?}") }),
        };
        Ok(ClientMsg::Request(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn every_message() -> Vec<ClientMsg> {
        let r = ClientMsg::Request;
        vec![
            r(Request::Read { key: Some(json!("k")) }),
            r(Request::Read { key: None }),
            r(Request::Write { key: json!(0), value: json!(4) }),
            r(Request::Cas { key: json!(3), from: json!(1), to: json!(2) }),
            r(Request::Add { delta: -3 }),
            r(Request::AddElement { element: json!(9) }),
            r(Request::RemoveElement { element: json!(9) }),
            r(Request::Append { key: json!(2), value: json!(17) }),
            r(Request::Transfer { from: json!(1), to: json!(2), amount: 5 }),
            ClientMsg::LocalRead { key: Some(json!(2)) },
            ClientMsg::LocalRead { key: None },
            ClientMsg::Status,
        ]
    }

    #[test]
    fn every_message_round_trips_through_its_body() {
        for msg in every_message() {
            let Value::Object(body) = msg.to_body(7) else { panic!("not an object") };
            assert_eq!(body["msg_id"], 7);
            assert_eq!(ClientMsg::from_body(&body), Ok(msg.clone()), "{body:?}");
        }
    }

    /// The bytes of the node contract's examples, field order included.
    #[test]
    fn bodies_are_the_contracts_bytes() {
        let line = |m: ClientMsg, id| m.to_body(id).to_string();
        let r = ClientMsg::Request;
        assert_eq!(line(r(Request::Read { key: Some(json!("k")) }), 1), r#"{"type":"read","msg_id":1,"key":"k"}"#);
        assert_eq!(line(r(Request::Cas { key: json!(3), from: json!(1), to: json!(2) }), 7), r#"{"type":"cas","msg_id":7,"key":3,"from":1,"to":2}"#);
        assert_eq!(line(r(Request::Add { delta: 3 }), 3), r#"{"type":"add","msg_id":3,"delta":3}"#);
        assert_eq!(line(r(Request::AddElement { element: json!(9) }), 4), r#"{"type":"add","msg_id":4,"element":9}"#);
        assert_eq!(
            line(r(Request::Transfer { from: json!(1), to: json!(2), amount: 5 }), 5),
            r#"{"type":"transfer","msg_id":5,"from":1,"to":2,"amount":5}"#
        );
        assert_eq!(line(ClientMsg::LocalRead { key: Some(json!(2)) }, 8), r#"{"type":"read","msg_id":8,"key":2,"local":true}"#);
        assert_eq!(line(ClientMsg::Status, 9), r#"{"type":"status","msg_id":9}"#);
    }

    #[test]
    fn bad_bodies_are_rejected_with_definite_codes() {
        let reject = |v: Value| ClientMsg::from_body(v.as_object().unwrap()).unwrap_err();
        assert_eq!(reject(json!({"msg_id": 1})).code, ErrorCode::MalformedRequest);
        assert_eq!(reject(json!({"type": "write", "key": "k"})).code, ErrorCode::MalformedRequest);
        assert_eq!(reject(json!({"type": "add", "delta": "x"})).code, ErrorCode::MalformedRequest);
        assert_eq!(reject(json!({"type": "remove"})).code, ErrorCode::MalformedRequest);
        assert_eq!(reject(json!({"type": "frobnicate"})).code, ErrorCode::NotSupported);
        // Only `true` asks for a local read.
        let plain = ClientMsg::from_body(json!({"type": "read", "key": 3, "local": false}).as_object().unwrap());
        assert_eq!(plain, Ok(ClientMsg::Request(Request::Read { key: Some(json!(3)) })));
    }

    /// The cores' own serde form (their logs and peer messages) is unchanged by the move here.
    #[test]
    fn the_cores_serde_form_is_externally_tagged() {
        let w = Request::Write { key: json!("k"), value: json!(1) };
        assert_eq!(serde_json::to_value(&w).unwrap(), json!({"Write": {"key": "k", "value": 1}}));
        assert_eq!(serde_json::from_value::<Request>(json!({"Add": {"delta": 2}})).unwrap(), Request::Add { delta: 2 });
    }
}
