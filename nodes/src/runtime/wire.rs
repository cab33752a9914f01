//! The client side of the wire: Maelstrom-style JSON bodies to requests and back.
//!
//! One request per line, e.g. `{"type":"write","msg_id":3,"key":"k","value":1}`; the bodies
//! themselves are `faultline-wire`'s, shared with the harness's clients. Anything that cannot
//! be decoded gets a definite error (12 malformed, 10 unsupported) naming the problem;
//! the connection keeps serving. The harness's extra requests are decoded here too: `status`,
//! and the local read `{"type":"read","key":k,"local":true}` (answered by `Core::local_read`
//! from the node's own applied state, never through a leader; docs/design.md).

use crate::core::{ErrorCode, Reply};
pub use faultline_wire::ClientMsg;
use serde_json::{json, Map, Value};

/// A line that could not be decoded: the msg_id (if any) to answer, the code and the reason.
#[derive(Debug, PartialEq)]
pub struct Rejected {
    pub msg_id: Value,
    pub code: ErrorCode,
    pub text: String,
}

/// Decodes one client line into its msg_id and message.
pub fn decode(line: &str) -> Result<(Value, ClientMsg), Rejected> {
    let malformed = |text: String| Rejected { msg_id: Value::Null, code: ErrorCode::MalformedRequest, text };
    let body: Value = serde_json::from_str(line).map_err(|e| malformed(format!("invalid JSON: {e}")))?;
    let Value::Object(body) = body else {
        return Err(malformed("expected a JSON object".into()));
    };
    // The msg_id is echoed back as it came, whatever its JSON type.
    let msg_id = body.get("msg_id").cloned().unwrap_or(Value::Null);
    match ClientMsg::from_body(&body) {
        Ok(msg) => Ok((msg_id, msg)),
        Err(r) => Err(Rejected { msg_id, code: r.code, text: r.text }),
    }
}

/// Encodes a reply to the request `msg_id` as one JSON line (without the newline).
pub fn encode(msg_id: &Value, reply: &Reply) -> String {
    reply.to_body(msg_id).to_string()
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
    use crate::core::Request;

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
        assert_eq!(decode(r#"{"type":"remove","msg_id":1}"#).unwrap_err().code, ErrorCode::MalformedRequest);
        assert_eq!(decode(r#"{"type":"append","msg_id":1,"key":3}"#).unwrap_err().code, ErrorCode::MalformedRequest);
    }

    #[test]
    fn rejects_with_definite_codes() {
        assert_eq!(decode("{nope").unwrap_err().code, ErrorCode::MalformedRequest);
        assert_eq!(decode("[1]").unwrap_err().code, ErrorCode::MalformedRequest);
        let e = decode(r#"{"type":"write","msg_id":4,"key":"k"}"#).unwrap_err();
        assert_eq!((e.code, e.msg_id), (ErrorCode::MalformedRequest, json!(4)));
        assert_eq!(decode(r#"{"type":"add","msg_id":1,"delta":"x"}"#).unwrap_err().code, ErrorCode::MalformedRequest);
        assert_eq!(decode(r#"{"type":"frobnicate","msg_id":1}"#).unwrap_err().code, ErrorCode::NotSupported);
    }

    #[test]
    fn encodes_replies() {
        assert_eq!(encode(&json!(1), &Reply::ReadOk(json!(3))), r#"{"type":"read_ok","in_reply_to":1,"value":3}"#);
        assert_eq!(encode(&json!(2), &Reply::error(ErrorCode::PreconditionFailed, "no")), r#"{"type":"error","in_reply_to":2,"code":22,"text":"no"}"#);
        assert_eq!(encode(&json!(3), &Reply::RemoveOk), r#"{"type":"remove_ok","in_reply_to":3}"#);
        assert_eq!(encode(&json!(4), &Reply::AppendOk), r#"{"type":"append_ok","in_reply_to":4}"#);
        let s = encode_status(&json!(5), "n1", json!({"leader": "n2", "term": 3}));
        assert_eq!(s, r#"{"type":"status_ok","in_reply_to":5,"node":"n1","leader":"n2","term":3}"#);
    }
}
