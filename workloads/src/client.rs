//! The client: one TCP connection to one node, one request at a time.
//!
//! Requests and replies are Maelstrom message bodies, one JSON object per line (docs/design.md,
//! "Node wire protocol"), typed once for the nodes and the harness in `faultline-wire`: this
//! module maps operations to its requests and its replies and error codes to completions. The client's real job is to be honest about what it knows. A reply that
//! says the operation happened is `ok`; an error with a *definite* code says it certainly did
//! not (`fail`); anything else after the request may have reached the node — a timeout, a lost
//! connection, a garbled reply, the indefinite codes 0 (timeout) and 13 (crash) — leaves the
//! outcome unknown (`info`). Only a failure before a single byte left the client is a `fail`
//! without a reply. The harness retires a client after an `info`, so a late reply to an
//! abandoned request can never be taken for the answer to a newer one (replies are matched by
//! `in_reply_to` as well).
//!
//! Pure mapping functions ([`request_body`], [`completion_of`]) hold the protocol logic; the
//! async methods only move bytes and keep time.

use crate::{Completion, OpSpec};
use faultline_wire::{ClientMsg, ErrorCode, Outcome, Reply, Request};
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A reply line longer than this is treated as garbage rather than buffered without bound.
const MAX_REPLY_BYTES: usize = 16 << 20;

/// A connection to one node.
pub struct Client {
    addr: SocketAddr,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_msg_id: u64,
    line: String,
}

impl Client {
    /// Connects to a node's client address within `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<Client> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("connect to {addr} timed out")))??;
        stream.set_nodelay(true)?;
        let (read, writer) = stream.into_split();
        Ok(Client { addr, reader: BufReader::new(read), writer, next_msg_id: 1, line: String::new() })
    }

    /// The node's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends one request and waits for the reply. Definite errors → `Fail`; timeout, connection
    /// loss after sending, indefinite codes (0, 13) → `Info`; a register read answered with
    /// error 20 (no such key) → `Ok(null)`.
    pub async fn invoke(&mut self, op: &OpSpec, timeout: Duration) -> Completion {
        let deadline = Instant::now() + timeout;
        let msg_id = self.take_msg_id();
        let body = request_body(op, msg_id);
        match self.exchange(&body, msg_id, deadline).await {
            Ok(reply) => completion_of(op, &reply),
            Err(Exchange::NotSent(reason)) => Completion::Fail(reason),
            Err(Exchange::Unknown(reason)) => Completion::Info(reason),
        }
    }

    /// Asks the node for its `status` (leader, term, ...); `None` if it does not answer in time
    /// or answers something else.
    pub async fn status(&mut self, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        let msg_id = self.take_msg_id();
        let reply = self.exchange(&ClientMsg::Status.to_body(msg_id), msg_id, deadline).await.ok()?;
        (reply.get("type").and_then(Value::as_str) == Some("status_ok")).then_some(reply)
    }

    fn take_msg_id(&mut self) -> u64 {
        let id = self.next_msg_id;
        self.next_msg_id += 1;
        id
    }

    /// Writes `body` as one line and reads lines until the reply to `msg_id` arrives.
    async fn exchange(&mut self, body: &Value, msg_id: u64, deadline: Instant) -> Result<Value, Exchange> {
        let mut line = body.to_string();
        line.push('\n');
        match tokio::time::timeout_at(deadline, self.send(line.as_bytes())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(Exchange::Unknown("timed out sending the request".into())),
        }
        match tokio::time::timeout_at(deadline, self.receive(msg_id)).await {
            Ok(result) => result,
            Err(_) => Err(Exchange::Unknown("timeout".into())),
        }
    }

    /// Writes the whole line. A failure before any byte left is definite: the node cannot have
    /// seen the request. After a partial write it is not (the node may read a truncated line at
    /// end of stream and act on it).
    async fn send(&mut self, bytes: &[u8]) -> Result<(), Exchange> {
        let mut sent = 0;
        while sent < bytes.len() {
            match self.writer.write(&bytes[sent..]).await {
                Ok(0) => return Err(lost(sent, "connection closed")),
                Ok(n) => sent += n,
                Err(e) => return Err(lost(sent, &e.to_string())),
            }
        }
        Ok(())
    }

    async fn receive(&mut self, msg_id: u64) -> Result<Value, Exchange> {
        loop {
            self.line.clear();
            let n = (&mut self.reader)
                .take(MAX_REPLY_BYTES as u64)
                .read_line(&mut self.line)
                .await
                .map_err(|e| Exchange::Unknown(format!("connection lost: {e}")))?;
            if n == 0 {
                return Err(Exchange::Unknown("connection closed before the reply".into()));
            }
            if n >= MAX_REPLY_BYTES {
                return Err(Exchange::Unknown("reply too long".into()));
            }
            let reply: Value = serde_json::from_str(self.line.trim_end())
                .map_err(|e| Exchange::Unknown(format!("malformed reply: {e}")))?;
            // A reply to an earlier, abandoned request: skip it.
            if reply.get("in_reply_to").and_then(Value::as_u64) == Some(msg_id) {
                return Ok(reply);
            }
        }
    }
}

/// Why an exchange produced no reply.
enum Exchange {
    /// Nothing reached the node: the operation certainly did not happen.
    NotSent(String),
    /// The request may have reached the node.
    Unknown(String),
}

fn lost(sent: usize, why: &str) -> Exchange {
    if sent == 0 {
        Exchange::NotSent(format!("send failed: {why}"))
    } else {
        Exchange::Unknown(format!("connection lost while sending: {why}"))
    }
}

/// The completion of an operation whose client could not even connect: nothing was sent, so it
/// certainly did not happen. (The harness invokes, connects, and records this on failure.)
pub fn connect_failed(error: &std::io::Error) -> Completion {
    Completion::Fail(format!("connect failed: {error}"))
}

/// The request body for an operation (without a trailing newline).
pub fn request_body(op: &OpSpec, msg_id: u64) -> Value {
    if let Some(msg) = client_msg(op) {
        return msg.to_body(msg_id);
    }
    // An operation the wire protocol has no form for carries its key and value as they are.
    let mut body = Map::new();
    body.insert("type".into(), Value::from(op.f.as_str()));
    body.insert("msg_id".into(), Value::from(msg_id));
    if let Some(key) = op_key(op) {
        body.insert("key".into(), key);
    }
    if !op.value.is_null() {
        body.insert("value".into(), op.value.clone());
    }
    Value::Object(body)
}

fn op_key(op: &OpSpec) -> Option<Value> {
    op.key.as_ref().map(|k| serde_json::to_value(k).unwrap_or(Value::Null))
}

/// The typed request of an operation; `None` for an operation the wire protocol has no form for
/// (or whose value does not fit it, e.g. a delta that is not an integer).
pub fn client_msg(op: &OpSpec) -> Option<ClientMsg> {
    let key = op_key(op);
    let v = &op.value;
    let part = |i: usize| v.get(i).cloned().unwrap_or(Value::Null);
    let field = |name: &str| v.get(name).cloned().unwrap_or(Value::Null);
    let request = match op.f.as_str() {
        "read" if op.local => return Some(ClientMsg::LocalRead { key }),
        "read" => Request::Read { key },
        "write" => Request::Write { key: key?, value: v.clone() },
        "cas" => Request::Cas { key: key?, from: part(0), to: part(1) },
        "add" if op.add_element => Request::AddElement { element: v.clone() },
        "add" => Request::Add { delta: v.as_i64()? },
        "remove" => Request::RemoveElement { element: v.clone() },
        "append" => Request::Append { key: key?, value: v.clone() },
        "transfer" => Request::Transfer { from: field("from"), to: field("to"), amount: v.get("amount")?.as_i64()? },
        _ => return None,
    };
    Some(ClientMsg::Request(request))
}

/// The completion a reply means for an operation.
pub fn completion_of(op: &OpSpec, reply: &Value) -> Completion {
    let kind = reply.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == "error" {
        return match Reply::from_body(reply) {
            Ok(Reply::Error { code, text }) => completion_of_error(op, code, &text),
            // An error without a code might mean anything.
            Ok(_) | Err(_) => Completion::Info(format!("error without a code: {}", reply.get("text").and_then(Value::as_str).unwrap_or(""))),
        };
    }
    let expected = format!("{}_ok", op.f);
    if kind != expected {
        // The node answered something else; whatever it did is unknown.
        return Completion::Info(format!("unexpected reply type {kind:?} to {}", op.f));
    }
    match op.f.as_str() {
        "read" => Completion::Ok(reply.get("value").cloned().unwrap_or(Value::Null)),
        // Writes, cas, adds and transfers complete with their invoke value (docs/design.md).
        _ => Completion::Ok(op.value.clone()),
    }
}

fn completion_of_error(op: &OpSpec, code: u32, text: &str) -> Completion {
    let reason = Reply::error_reason(code, text);
    if code == ErrorCode::KeyDoesNotExist.code() && op.f == "read" {
        // A read of a key never written reads null (the contract's value of a missing key).
        return Completion::Ok(Value::Null);
    }
    // Unknown codes are `Info`: a code we do not know cannot tell us nothing happened.
    match faultline_wire::code::outcome_of(u64::from(code)) {
        Outcome::Fail => Completion::Fail(reason),
        Outcome::Info => Completion::Info(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key;
    use serde_json::json;

    #[test]
    fn request_bodies() {
        let cas = OpSpec::new("cas", Some(Key::Int(3)), json!([1, 2]));
        assert_eq!(request_body(&cas, 7), json!({"type": "cas", "msg_id": 7, "key": 3, "from": 1, "to": 2}));
        let write = OpSpec::new("write", Some(Key::Int(0)), json!(4));
        assert_eq!(request_body(&write, 1), json!({"type": "write", "msg_id": 1, "key": 0, "value": 4}));
        let read = OpSpec::read(None);
        assert_eq!(request_body(&read, 2), json!({"type": "read", "msg_id": 2}));
        let delta = OpSpec::new("add", None, json!(3));
        assert_eq!(request_body(&delta, 3), json!({"type": "add", "msg_id": 3, "delta": 3}));
        let element = OpSpec { add_element: true, ..OpSpec::new("add", None, json!(9)) };
        assert_eq!(request_body(&element, 4), json!({"type": "add", "msg_id": 4, "element": 9}));
        let remove = OpSpec::new("remove", None, json!(9));
        assert_eq!(request_body(&remove, 6), json!({"type": "remove", "msg_id": 6, "element": 9}));
        let append = OpSpec::new("append", Some(Key::Int(2)), json!(17));
        assert_eq!(request_body(&append, 7), json!({"type": "append", "msg_id": 7, "key": 2, "value": 17}));
        let local = OpSpec::local_read(Some(Key::Int(2)));
        assert_eq!(request_body(&local, 8), json!({"type": "read", "msg_id": 8, "key": 2, "local": true}));
        let transfer = OpSpec::new("transfer", None, json!({"from": 1, "to": 2, "amount": 5}));
        assert_eq!(
            request_body(&transfer, 5),
            json!({"type": "transfer", "msg_id": 5, "from": 1, "to": 2, "amount": 5})
        );
    }

    #[test]
    fn completions() {
        let cas = OpSpec::new("cas", Some(Key::Int(3)), json!([1, 2]));
        let read = OpSpec::read(Some(Key::Int(3)));
        let ok = |t: &str| json!({"type": t, "in_reply_to": 1});
        let err = |c: u64| json!({"type": "error", "in_reply_to": 1, "code": c, "text": "x"});
        assert_eq!(completion_of(&cas, &ok("cas_ok")), Completion::Ok(json!([1, 2])));
        assert_eq!(completion_of(&read, &json!({"type": "read_ok", "value": 5})), Completion::Ok(json!(5)));
        assert_eq!(completion_of(&read, &err(20)), Completion::Ok(Value::Null));
        assert_eq!(completion_of(&cas, &err(20)), Completion::Fail("key-does-not-exist: x".into()));
        assert_eq!(completion_of(&cas, &err(22)), Completion::Fail("precondition-failed: x".into()));
        assert!(matches!(completion_of(&cas, &err(0)), Completion::Info(_)));
        assert!(matches!(completion_of(&cas, &err(13)), Completion::Info(_)));
        assert!(matches!(completion_of(&cas, &err(999)), Completion::Info(_)));
        assert!(matches!(completion_of(&cas, &ok("write_ok")), Completion::Info(_)));
        let append = OpSpec::new("append", Some(Key::Int(3)), json!(4));
        assert_eq!(completion_of(&append, &ok("append_ok")), Completion::Ok(json!(4)));
        let remove = OpSpec::new("remove", None, json!(4));
        assert_eq!(completion_of(&remove, &ok("remove_ok")), Completion::Ok(json!(4)));
        // A node that does not serve local reads says so: a definite failure, judged unknown.
        let local = OpSpec::local_read(Some(Key::Int(3)));
        assert!(matches!(completion_of(&local, &err(10)), Completion::Fail(_)));
        assert_eq!(completion_of(&local, &json!({"type": "read_ok", "value": [1, 2]})), Completion::Ok(json!([1, 2])));
    }

    /// Every code the contract names is recorded as its classification says, under its name.
    #[test]
    fn every_error_code_completes_as_classified() {
        let write = OpSpec::new("write", Some(Key::Int(1)), json!(2));
        for code in ErrorCode::ALL {
            let reply = Reply::error(code, "why").to_body(&json!(1));
            let reason = format!("{}: why", code.name());
            let expected = if code.is_definite() { Completion::Fail(reason) } else { Completion::Info(reason) };
            assert_eq!(completion_of(&write, &reply), expected, "{code:?}");
        }
        assert!(matches!(completion_of(&write, &json!({"type": "error", "text": "x"})), Completion::Info(e) if e.contains("without a code")));
    }

    /// An operation without a typed form still reaches the node, with its key and value.
    #[test]
    fn untyped_operations_carry_key_and_value() {
        let op = OpSpec::new("frob", Some(Key::Int(1)), json!(2));
        assert_eq!(request_body(&op, 3), json!({"type": "frob", "msg_id": 3, "key": 1, "value": 2}));
        assert!(client_msg(&op).is_none());
    }
}
