//! The client side of the wire: Maelstrom-style JSON bodies to [`Request`]s and back.
//!
//! One request per line, e.g. `{"type":"write","msg_id":3,"key":"k","value":1}`. Anything that
//! cannot be decoded gets a definite error (12 malformed, 10 unsupported) naming the problem;
//! the connection keeps serving. The harness's extra requests are decoded here too: `status`,
//! and the local read `{"type":"read","key":k,"local":true}` (answered by `Core::local_read`
//! from the node's own applied state, never through a leader; docs/design.md).

use crate::core::{code, Reply, Request};
use serde_json::{json, Map, Value};

/// A decoded client line.
#[derive(Debug, PartialEq)]
pub enum ClientMsg {
    Request(Request),
    Status,
    /// A read of this replica's own applied state (`"local": true`).
    LocalRead { key: Option<Value> },
}

/// A line that could not be decoded: the msg_id (if any) to answer, the code and the reason.
#[derive(Debug, PartialEq)]
pub struct Rejected {
    pub msg_id: Value,
    pub code: u32,
    pub text: String,
}

/// Decodes one client line into its msg_id and message.
pub fn decode(line: &str) -> Result<(Value, ClientMsg), Rejected> {
    let body: Value = serde_json::from_str(line)
        .map_err(|e| Rejected { msg_id: Value::Null, code: code::MALFORMED_REQUEST, text: format!("invalid JSON: {e}") })?;
    let Value::Object(body) = body else {
        return Err(Rejected { msg_id: Value::Null, code: code::MALFORMED_REQUEST, text: "expected a JSON object".into() });
    };
    let msg_id = body.get("msg_id").cloned().unwrap_or(Value::Null);
    let reject = |code: u32, text: String| Rejected { msg_id: msg_id.clone(), code, text };
    let kind = body.get("type").and_then(Value::as_str).ok_or_else(|| reject(code::MALFORMED_REQUEST, "missing \"type\"".into()))?;
    let msg = decode_body(kind, &body).map_err(|(code, text)| reject(code, text))?;
    Ok((msg_id, msg))
}

fn decode_body(kind: &str, body: &Map<String, Value>) -> Result<ClientMsg, (u32, String)> {
    let field = |name: &str| body.get(name).cloned().ok_or((code::MALFORMED_REQUEST, format!("{kind}: missing \"{name}\"")));
    let int = |name: &str| {
        field(name)?.as_i64().ok_or((code::MALFORMED_REQUEST, format!("{kind}: \"{name}\" must be an integer")))
    };
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
        other => return Err((code::NOT_SUPPORTED, format!("unsupported request type {other:?}"))),
    };
    Ok(ClientMsg::Request(request))
}

/// Encodes a reply to the request `msg_id` as one JSON line (without the newline).
pub fn encode(msg_id: &Value, reply: &Reply) -> String {
    let body = match reply {
        Reply::ReadOk(value) => json!({"type": "read_ok", "in_reply_to": msg_id, "value": value}),
        Reply::WriteOk => json!({"type": "write_ok", "in_reply_to": msg_id}),
        Reply::CasOk => json!({"type": "cas_ok", "in_reply_to": msg_id}),
        Reply::AddOk => json!({"type": "add_ok", "in_reply_to": msg_id}),
        Reply::RemoveOk => json!({"type": "remove_ok", "in_reply_to": msg_id}),
        Reply::AppendOk => json!({"type": "append_ok", "in_reply_to": msg_id}),
        Reply::TransferOk => json!({"type": "transfer_ok", "in_reply_to": msg_id}),
        Reply::Error { code, text } => json!({"type": "error", "in_reply_to": msg_id, "code": code, "text": text}),
    };
    body.to_string()
}

/// Encodes the answer to `status`: the core's status object, plus the node id.
pub fn encode_status(msg_id: &Value, node: &str, status: Value) -> String {
    let mut body = Map::new();
    body.insert("type".into(), json!("status_ok"));
    body.insert("in_reply_to".into(), msg_id.clone());
    body.insert("node".into(), json!(node));
    match status {
        Value::Object(fields) => body.extend(fields),
        Value::Null => {}
        other => {
            body.insert("status".into(), other);
        }
    }
    Value::Object(body).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_request() {
        let ok = |line: &str| decode(line).unwrap().1;
        assert_eq!(ok(r#"{"type":"read","msg_id":1,"key":"k"}"#), ClientMsg::Request(Request::Read { key: Some(json!("k")) }));
        assert_eq!(ok(r#"{"type":"read","msg_id":1}"#), ClientMsg::Request(Request::Read { key: None }));
        assert_eq!(ok(r#"{"type":"cas","msg_id":1,"key":1,"from":2,"to":3}"#), ClientMsg::Request(Request::Cas { key: json!(1), from: json!(2), to: json!(3) }));
        assert_eq!(ok(r#"{"type":"add","msg_id":1,"delta":-2}"#), ClientMsg::Request(Request::Add { delta: -2 }));
        assert_eq!(ok(r#"{"type":"add","msg_id":1,"element":7}"#), ClientMsg::Request(Request::AddElement { element: json!(7) }));
        assert_eq!(ok(r#"{"type":"status","msg_id":1}"#), ClientMsg::Status);
        assert_eq!(ok(r#"{"type":"remove","msg_id":1,"element":7}"#), ClientMsg::Request(Request::RemoveElement { element: json!(7) }));
        assert_eq!(ok(r#"{"type":"append","msg_id":1,"key":3,"value":9}"#), ClientMsg::Request(Request::Append { key: json!(3), value: json!(9) }));
        assert_eq!(ok(r#"{"type":"read","msg_id":1,"key":3,"local":true}"#), ClientMsg::LocalRead { key: Some(json!(3)) });
        assert_eq!(ok(r#"{"type":"read","msg_id":1,"local":true}"#), ClientMsg::LocalRead { key: None });
        // Only `true` asks for a local read.
        assert_eq!(ok(r#"{"type":"read","msg_id":1,"key":3,"local":false}"#), ClientMsg::Request(Request::Read { key: Some(json!(3)) }));
        assert_eq!(decode(r#"{"type":"remove","msg_id":1}"#).unwrap_err().code, 12);
        assert_eq!(decode(r#"{"type":"append","msg_id":1,"key":3}"#).unwrap_err().code, 12);
    }

    #[test]
    fn rejects_with_definite_codes() {
        assert_eq!(decode("{nope").unwrap_err().code, 12);
        assert_eq!(decode("[1]").unwrap_err().code, 12);
        let e = decode(r#"{"type":"write","msg_id":4,"key":"k"}"#).unwrap_err();
        assert_eq!((e.code, e.msg_id), (12, json!(4)));
        assert_eq!(decode(r#"{"type":"add","msg_id":1,"delta":"x"}"#).unwrap_err().code, 12);
        assert_eq!(decode(r#"{"type":"frobnicate","msg_id":1}"#).unwrap_err().code, 10);
    }

    #[test]
    fn encodes_replies() {
        assert_eq!(encode(&json!(1), &Reply::ReadOk(json!(3))), r#"{"type":"read_ok","in_reply_to":1,"value":3}"#);
        assert_eq!(encode(&json!(2), &Reply::error(22, "no")), r#"{"type":"error","in_reply_to":2,"code":22,"text":"no"}"#);
        assert_eq!(encode(&json!(3), &Reply::RemoveOk), r#"{"type":"remove_ok","in_reply_to":3}"#);
        assert_eq!(encode(&json!(4), &Reply::AppendOk), r#"{"type":"append_ok","in_reply_to":4}"#);
        let s = encode_status(&json!(5), "n1", json!({"leader": "n2", "term": 3}));
        assert_eq!(s, r#"{"type":"status_ok","in_reply_to":5,"node":"n1","leader":"n2","term":3}"#);
    }
}
