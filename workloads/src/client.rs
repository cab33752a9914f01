//! The client: one TCP connection to one node, one request at a time.
//!
//! Requests and replies are Maelstrom message bodies, one JSON object per line (docs/design.md,
//! "Node wire protocol"). The client's real job is to be honest about what it knows. A reply that
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
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A reply line longer than this is treated as garbage rather than buffered without bound.
const MAX_REPLY_BYTES: usize = 16 << 20;

/// Maelstrom's error codes the client interprets.
const CODE_TIMEOUT: u64 = 0;
const CODE_CRASH: u64 = 13;
const CODE_KEY_DOES_NOT_EXIST: u64 = 20;
/// The codes that say the operation certainly did not take effect.
const DEFINITE_CODES: &[u64] = &[1, 10, 11, 12, 14, 20, 21, 22, 30];

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
        let reply = self.exchange(&json!({"type": "status", "msg_id": msg_id}), msg_id, deadline).await.ok()?;
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
    let mut body = Map::new();
    body.insert("type".into(), Value::from(op.f.as_str()));
    body.insert("msg_id".into(), Value::from(msg_id));
    if let Some(key) = &op.key {
        body.insert("key".into(), serde_json::to_value(key).unwrap_or(Value::Null));
    }
    match op.f.as_str() {
        "read" => {
            if op.local {
                body.insert("local".into(), Value::Bool(true));
            }
        }
        "write" => {
            body.insert("value".into(), op.value.clone());
        }
        "cas" => {
            body.insert("from".into(), op.value.get(0).cloned().unwrap_or(Value::Null));
            body.insert("to".into(), op.value.get(1).cloned().unwrap_or(Value::Null));
        }
        "add" => {
            let field = if op.add_element { "element" } else { "delta" };
            body.insert(field.into(), op.value.clone());
        }
        "remove" => {
            body.insert("element".into(), op.value.clone());
        }
        "transfer" => {
            for field in ["from", "to", "amount"] {
                body.insert(field.into(), op.value.get(field).cloned().unwrap_or(Value::Null));
            }
        }
        // An operation this client has no special form for carries its value as `value`.
        _ => {
            if !op.value.is_null() {
                body.insert("value".into(), op.value.clone());
            }
        }
    }
    Value::Object(body)
}

/// The completion a reply means for an operation.
pub fn completion_of(op: &OpSpec, reply: &Value) -> Completion {
    let kind = reply.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == "error" {
        return completion_of_error(op, reply);
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

fn completion_of_error(op: &OpSpec, reply: &Value) -> Completion {
    let text = reply.get("text").and_then(Value::as_str).unwrap_or("");
    let Some(code) = reply.get("code").and_then(Value::as_u64) else {
        return Completion::Info(format!("error without a code: {text}"));
    };
    let reason = if text.is_empty() { code_name(code).to_string() } else { format!("{}: {text}", code_name(code)) };
    if code == CODE_KEY_DOES_NOT_EXIST && op.f == "read" {
        // A read of a key never written reads null (the contract's value of a missing key).
        Completion::Ok(Value::Null)
    } else if code == CODE_TIMEOUT || code == CODE_CRASH {
        Completion::Info(reason)
    } else if DEFINITE_CODES.contains(&code) {
        Completion::Fail(reason)
    } else {
        // A code we do not know might mean anything, so we cannot claim it did not happen.
        Completion::Info(reason)
    }
}

/// Maelstrom's name of an error code, as recorded in the history's `error` field.
pub fn code_name(code: u64) -> &'static str {
    match code {
        0 => "timeout",
        1 => "node-not-found",
        10 => "not-supported",
        11 => "temporarily-unavailable",
        12 => "malformed-request",
        13 => "crash",
        14 => "abort",
        20 => "key-does-not-exist",
        21 => "key-already-exists",
        22 => "precondition-failed",
        30 => "txn-conflict",
        _ => "unknown-error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Key;

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
}
