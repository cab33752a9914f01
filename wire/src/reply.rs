//! The replies a node sends a client, and their bodies on the wire.
//!
//! `read_ok` carries the value read; the other acknowledgements carry nothing but
//! `in_reply_to`; an error carries a code ([`crate::code`]) and a text:
//! `{"type":"error","in_reply_to":1,"code":22,"text":"expected 1, found 2"}`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::code::{self, ErrorCode, Outcome};

/// A reply to a client request. The code of an error stays a number: a node may send any code,
/// and a client must be able to hold one it does not know (it then records `info`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// `read_ok` with the value read.
    ReadOk(Value),
    WriteOk,
    CasOk,
    AddOk,
    RemoveOk,
    AppendOk,
    TransferOk,
    /// An error with Maelstrom's code ([`ErrorCode`] names the known ones).
    Error { code: u32, text: String },
}

impl Reply {
    pub fn error(code: ErrorCode, text: impl Into<String>) -> Reply {
        Reply::Error { code: code.code(), text: text.into() }
    }

    /// The wire type of the reply (`read_ok`, ..., `error`).
    pub fn type_name(&self) -> &'static str {
        match self {
            Reply::ReadOk(_) => "read_ok",
            Reply::WriteOk => "write_ok",
            Reply::CasOk => "cas_ok",
            Reply::AddOk => "add_ok",
            Reply::RemoveOk => "remove_ok",
            Reply::AppendOk => "append_ok",
            Reply::TransferOk => "transfer_ok",
            Reply::Error { .. } => "error",
        }
    }

    /// For an error, what it tells the client about its operation; `None` for a success.
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            Reply::Error { code, .. } => Some(code::outcome_of(u64::from(*code))),
            _ => None,
        }
    }

    /// The body on the wire: `type`, `in_reply_to`, then `value`, or `code` and `text`.
    pub fn to_body(&self, in_reply_to: &Value) -> Value {
        let mut body = Map::new();
        body.insert("type".into(), Value::from(self.type_name()));
        body.insert("in_reply_to".into(), in_reply_to.clone());
        match self {
            Reply::ReadOk(value) => {
                body.insert("value".into(), value.clone());
            }
            Reply::Error { code, text } => {
                body.insert("code".into(), Value::from(*code));
                body.insert("text".into(), Value::from(text.as_str()));
            }
            _ => {}
        }
        Value::Object(body)
    }

    /// Reads a reply body. Errors: a body that is not one of these replies (another type, or an
    /// error without a numeric code), with the reason. A missing `text` reads as empty, a
    /// `read_ok` without `value` as `null`.
    pub fn from_body(body: &Value) -> Result<Reply, String> {
        let kind = body.get("type").and_then(Value::as_str).unwrap_or("");
        Ok(match kind {
            "read_ok" => Reply::ReadOk(body.get("value").cloned().unwrap_or(Value::Null)),
            "write_ok" => Reply::WriteOk,
            "cas_ok" => Reply::CasOk,
            "add_ok" => Reply::AddOk,
            "remove_ok" => Reply::RemoveOk,
            "append_ok" => Reply::AppendOk,
            "transfer_ok" => Reply::TransferOk,
            "error" => {
                let text = body.get("text").and_then(Value::as_str).unwrap_or("").to_string();
                let code = body.get("code").and_then(Value::as_u64).and_then(|c| u32::try_from(c).ok());
                let code = code.ok_or_else(|| format!("error without a code: {text}"))?;
                Reply::Error { code, text }
            }
            other => return Err(format!("unexpected reply type {other:?}")),
        })
    }

    /// How a client names an error in a history's `error` field: the code's name, then the
    /// node's text.
    pub fn error_reason(code: u32, text: &str) -> String {
        let name = code::name_of(u64::from(code));
        if text.is_empty() {
            name.to_string()
        } else {
            format!("{name}: {text}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_reply_round_trips_through_its_body() {
        let all = [
            Reply::ReadOk(json!([1, 2])),
            Reply::WriteOk,
            Reply::CasOk,
            Reply::AddOk,
            Reply::RemoveOk,
            Reply::AppendOk,
            Reply::TransferOk,
            Reply::error(ErrorCode::PreconditionFailed, "no"),
            Reply::Error { code: 1234, text: "a code of the node's own".into() },
        ];
        for reply in all {
            let body = reply.to_body(&json!(5));
            assert_eq!(body["in_reply_to"], 5);
            assert_eq!(Reply::from_body(&body).as_ref(), Ok(&reply), "{body}");
        }
    }

    #[test]
    fn bodies_are_the_contracts_bytes() {
        assert_eq!(Reply::ReadOk(json!(3)).to_body(&json!(1)).to_string(), r#"{"type":"read_ok","in_reply_to":1,"value":3}"#);
        assert_eq!(Reply::WriteOk.to_body(&json!(2)).to_string(), r#"{"type":"write_ok","in_reply_to":2}"#);
        assert_eq!(
            Reply::error(ErrorCode::PreconditionFailed, "no").to_body(&json!(2)).to_string(),
            r#"{"type":"error","in_reply_to":2,"code":22,"text":"no"}"#
        );
    }

    #[test]
    fn errors_carry_their_outcome() {
        for code in ErrorCode::ALL {
            assert_eq!(Reply::error(code, "x").outcome(), Some(code.outcome()));
        }
        assert_eq!(Reply::Error { code: 77, text: String::new() }.outcome(), Some(Outcome::Info));
        assert_eq!(Reply::WriteOk.outcome(), None);
        assert_eq!(Reply::error_reason(22, "x"), "precondition-failed: x");
        assert_eq!(Reply::error_reason(13, ""), "crash");
    }

    #[test]
    fn bodies_that_are_no_reply_say_why() {
        assert!(Reply::from_body(&json!({"type": "error", "text": "x"})).unwrap_err().contains("without a code"));
        assert!(Reply::from_body(&json!({"type": "echo_ok"})).unwrap_err().contains("echo_ok"));
    }
}
