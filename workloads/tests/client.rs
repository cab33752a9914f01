//! The client against a tiny node that speaks the wire protocol over real TCP. The node's
//! behaviour is chosen by the request's key, so one server covers every outcome.

use faultline_workloads::{Client, Completion, Key, OpSpec};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_millis(300);

/// Replies by key: 0 ok, 1 precondition failed (22), 2 timeout (0), 3 crash (13), 4 never
/// answers, 5 hangs up, 6 key does not exist (20), 7 a stale reply first, then the real one.
async fn scripted_node() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let req: Value = serde_json::from_str(&line).unwrap();
                    let id = req["msg_id"].clone();
                    let ok_type = format!("{}_ok", req["type"].as_str().unwrap());
                    let error = |code: u64| json!({"type": "error", "in_reply_to": id, "code": code, "text": "scripted"});
                    let replies = match req["key"].as_i64() {
                        _ if req["type"] == "status" => vec![json!({"type": "status_ok", "in_reply_to": id, "leader": "n1"})],
                        None | Some(0) => vec![json!({"type": ok_type, "in_reply_to": id, "value": 42})],
                        Some(1) => vec![error(22)],
                        Some(2) => vec![error(0)],
                        Some(3) => vec![error(13)],
                        Some(4) => vec![],
                        Some(5) => return,
                        Some(6) => vec![error(20)],
                        Some(7) => vec![json!({"type": ok_type, "in_reply_to": 9999, "value": 1}), json!({"type": ok_type, "in_reply_to": id, "value": 7})],
                        Some(_) => vec![error(12)],
                    };
                    for reply in replies {
                        write.write_all(format!("{reply}\n").as_bytes()).await.unwrap();
                    }
                }
            });
        }
    });
    addr
}

fn op(f: &str, key: i64, value: Value) -> OpSpec {
    OpSpec::new(f, Some(Key::Int(key)), value)
}

async fn invoke_once(addr: SocketAddr, spec: &OpSpec) -> Completion {
    let mut client = Client::connect(addr, TIMEOUT).await.unwrap();
    client.invoke(spec, TIMEOUT).await
}

#[tokio::test]
async fn ok_replies_carry_the_history_values() {
    let addr = scripted_node().await;
    let mut client = Client::connect(addr, TIMEOUT).await.unwrap();
    assert_eq!(client.invoke(&op("read", 0, Value::Null), TIMEOUT).await, Completion::Ok(json!(42)));
    assert_eq!(client.invoke(&op("write", 0, json!(3)), TIMEOUT).await, Completion::Ok(json!(3)));
    assert_eq!(client.invoke(&op("cas", 0, json!([1, 2])), TIMEOUT).await, Completion::Ok(json!([1, 2])));
    let transfer = OpSpec::new("transfer", None, json!({"from": 0, "to": 1, "amount": 2}));
    assert_eq!(client.invoke(&transfer, TIMEOUT).await, Completion::Ok(transfer.value.clone()));
    // One connection, many requests: msg_ids increase and replies match.
    assert_eq!(client.invoke(&op("read", 7, Value::Null), TIMEOUT).await, Completion::Ok(json!(7)));
    let status = client.status(TIMEOUT).await.unwrap();
    assert_eq!(status["leader"], "n1");
}

#[tokio::test]
async fn definite_errors_fail_and_indefinite_ones_are_info() {
    let addr = scripted_node().await;
    assert!(matches!(invoke_once(addr, &op("cas", 1, json!([1, 2]))).await, Completion::Fail(e) if e.contains("precondition-failed")));
    assert!(matches!(invoke_once(addr, &op("write", 2, json!(1))).await, Completion::Info(e) if e.contains("timeout")));
    assert!(matches!(invoke_once(addr, &op("write", 3, json!(1))).await, Completion::Info(e) if e.contains("crash")));
    assert!(matches!(invoke_once(addr, &op("cas", 6, json!([1, 2]))).await, Completion::Fail(_)));
}

#[tokio::test]
async fn missing_key_reads_null() {
    let addr = scripted_node().await;
    assert_eq!(invoke_once(addr, &op("read", 6, Value::Null)).await, Completion::Ok(Value::Null));
}

#[tokio::test]
async fn silence_and_hangups_are_info() {
    let addr = scripted_node().await;
    let started = Instant::now();
    assert!(matches!(invoke_once(addr, &op("write", 4, json!(1))).await, Completion::Info(e) if e == "timeout"));
    let waited = started.elapsed();
    assert!(waited >= TIMEOUT && waited < TIMEOUT * 3, "waited {waited:?}");
    assert!(matches!(invoke_once(addr, &op("write", 5, json!(1))).await, Completion::Info(_)));
    // The node does not answer status on a hung-up connection: None, in bounded time.
    let mut client = Client::connect(addr, TIMEOUT).await.unwrap();
    assert!(matches!(client.invoke(&op("write", 5, json!(1)), TIMEOUT).await, Completion::Info(_)));
    assert!(client.status(TIMEOUT).await.is_none());
}

#[tokio::test]
async fn refused_connections_send_nothing() {
    // Bind then drop a listener to get a port nobody listens on.
    let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let err = Client::connect(addr, TIMEOUT).await.err().expect("nobody listens");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(matches!(faultline_workloads::client::connect_failed(&err), Completion::Fail(e) if e.contains("connect failed")));
}
