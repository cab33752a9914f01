//! Sockets: the listener shared by clients and peers, and one outgoing link per peer.
//!
//! An accepted connection is a peer connection when its first line is
//! `{"type":"peer_hello","from":ID}`; every later line is one core message from that peer. Any
//! other first line makes it a client connection. A node never answers a peer on the peer's
//! connection: it sends only over its own outgoing link to the peer's `--peer` address, so each
//! directed link of the harness's proxy network carries one direction of traffic.
//!
//! Outgoing links reconnect with exponential backoff; their queues are bounded and messages that
//! do not fit, or that are queued while the peer is unreachable, are dropped (cores retry).

use super::wire::{self, ClientMsg};
use super::{ConnId, Input, ReplyTo};
use crate::core::NodeId;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The longest line accepted (snapshots travel as one line).
const MAX_LINE_BYTES: u64 = 64 << 20;
/// Messages queued per outgoing peer link before new ones are dropped.
const PEER_QUEUE: usize = 16_384;
/// Lines written to a peer before a flush, so one slow peer cannot hold a batch forever.
const PEER_FLUSH_EVERY: usize = 512;
const BACKOFF_MIN_MS: u64 = 20;
const BACKOFF_MAX_MS: u64 = 1_000;
const CONNECT_TIMEOUT_MS: u64 = 1_000;

/// Reads one line of at most [`MAX_LINE_BYTES`]; `Ok(None)` at end of stream.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Option<()>> {
    buf.clear();
    let n = (&mut *reader).take(MAX_LINE_BYTES).read_until(b'\n', buf).await?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') && n as u64 >= MAX_LINE_BYTES {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "line too long"));
    }
    Ok(Some(()))
}

/// Accepts connections forever, one task each.
pub async fn accept_loop<M: DeserializeOwned + Send + 'static>(
    listener: TcpListener,
    peers: Arc<BTreeSet<NodeId>>,
    inputs: mpsc::Sender<Input<M>>,
) {
    let next_conn = Arc::new(AtomicU64::new(1));
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                let _ = stream.set_nodelay(true);
                let conn = next_conn.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%addr, conn, "accepted");
                tokio::spawn(serve_connection(stream, conn, peers.clone(), inputs.clone()));
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection<M: DeserializeOwned + Send + 'static>(
    stream: TcpStream,
    conn: ConnId,
    peers: Arc<BTreeSet<NodeId>>,
    inputs: mpsc::Sender<Input<M>>,
) {
    let (read_half, write_half) = stream.into_split();
    let mut reader = BufReader::new(read_half);
    let mut line = Vec::new();
    match read_line(&mut reader, &mut line).await {
        Ok(Some(())) => {}
        _ => return,
    }
    if let Some(from) = peer_hello(&line) {
        if !peers.contains(&from) {
            tracing::warn!(%from, "peer_hello from an unknown node; closing");
            return;
        }
        tracing::info!(%from, "peer connected");
        serve_peer(reader, from, inputs).await;
        return;
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(write_lines(write_half, rx));
    serve_client(reader, line, conn, tx, &inputs).await;
    let _ = inputs.send(Input::Closed { conn }).await;
}

fn peer_hello(line: &[u8]) -> Option<NodeId> {
    let v: Value = serde_json::from_slice(line).ok()?;
    if v.get("type")?.as_str()? != "peer_hello" {
        return None;
    }
    Some(v.get("from")?.as_str()?.to_string())
}

async fn serve_peer<M: DeserializeOwned, R: AsyncBufRead + Unpin>(mut reader: R, from: NodeId, inputs: mpsc::Sender<Input<M>>) {
    let mut line = Vec::new();
    loop {
        match read_line(&mut reader, &mut line).await {
            Ok(Some(())) => {}
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(%from, error = %e, "peer connection failed");
                break;
            }
        }
        match serde_json::from_slice::<M>(&line) {
            Ok(msg) => {
                if inputs.send(Input::Peer { from: from.clone(), msg }).await.is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!(%from, error = %e, "undecodable peer message dropped"),
        }
    }
    tracing::info!(%from, "peer disconnected");
}

async fn serve_client<M, R: AsyncBufRead + Unpin>(
    mut reader: R,
    mut line: Vec<u8>,
    conn: ConnId,
    tx: mpsc::UnboundedSender<String>,
    inputs: &mpsc::Sender<Input<M>>,
) {
    loop {
        let text = String::from_utf8_lossy(&line);
        if !text.trim().is_empty() {
            match wire::decode(text.trim()) {
                Ok((msg_id, msg)) => {
                    let reply_to = ReplyTo { conn, tx: tx.clone(), msg_id };
                    let input = match msg {
                        ClientMsg::Request(request) => Input::Client { reply_to, request },
                        ClientMsg::Status => Input::Status { reply_to },
                        ClientMsg::LocalRead { key } => Input::LocalRead { reply_to, key },
                    };
                    if inputs.send(input).await.is_err() {
                        return;
                    }
                }
                Err(rejected) => {
                    let reply = crate::core::Reply::error(rejected.code, rejected.text);
                    let _ = tx.send(wire::encode(&rejected.msg_id, &reply));
                }
            }
        }
        match read_line(&mut reader, &mut line).await {
            Ok(Some(())) => {}
            Ok(None) => return,
            Err(e) => {
                let reply = crate::core::Reply::error(crate::core::ErrorCode::MalformedRequest, e.to_string());
                let _ = tx.send(wire::encode(&Value::Null, &reply));
                return;
            }
        }
    }
}

/// Writes queued lines to a client connection until the queue closes or the socket fails.
async fn write_lines(write_half: tokio::net::tcp::OwnedWriteHalf, mut rx: mpsc::UnboundedReceiver<String>) {
    let mut writer = BufWriter::new(write_half);
    while let Some(line) = rx.recv().await {
        if writer.write_all(line.as_bytes()).await.is_err() || writer.write_all(b"\n").await.is_err() {
            return;
        }
        while let Ok(more) = rx.try_recv() {
            if writer.write_all(more.as_bytes()).await.is_err() || writer.write_all(b"\n").await.is_err() {
                return;
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
}

/// The sending side of every outgoing peer link.
pub struct Peers {
    links: BTreeMap<NodeId, mpsc::Sender<String>>,
}

impl Peers {
    /// Starts one link task per peer.
    pub fn start(me: &str, addrs: &BTreeMap<NodeId, String>) -> Peers {
        let mut links = BTreeMap::new();
        for (id, addr) in addrs {
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            tokio::spawn(peer_link(me.to_string(), id.clone(), addr.clone(), rx));
            links.insert(id.clone(), tx);
        }
        Peers { links }
    }

    /// Queues one message line; dropped when the link's queue is full.
    pub fn send(&self, to: &str, line: String) {
        match self.links.get(to) {
            Some(tx) => {
                if tx.try_send(line).is_err() {
                    tracing::debug!(%to, "peer queue full; message dropped");
                }
            }
            None => tracing::warn!(%to, "message to an unknown peer dropped"),
        }
    }
}

async fn peer_link(me: NodeId, to: NodeId, addr: String, mut rx: mpsc::Receiver<String>) {
    let mut backoff_ms = BACKOFF_MIN_MS;
    let hello = serde_json::json!({"type": "peer_hello", "from": me}).to_string();
    loop {
        let connect = tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), TcpStream::connect(&addr)).await;
        let stream = match connect {
            Ok(Ok(stream)) => stream,
            _ => {
                // Whatever was queued for an unreachable peer is stale by the time it is back.
                while rx.try_recv().is_ok() {}
                tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                backoff_ms = (backoff_ms * 2).min(BACKOFF_MAX_MS);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        backoff_ms = BACKOFF_MIN_MS;
        tracing::debug!(%to, %addr, "link up");
        let mut writer = BufWriter::new(stream);
        match send_lines(&mut writer, &hello, &mut rx).await {
            LinkEnd::QueueClosed => return,
            LinkEnd::Failed => tracing::debug!(%to, "link down; reconnecting"),
        }
    }
}

async fn write(w: &mut BufWriter<TcpStream>, line: String) -> std::io::Result<()> {
    let mut bytes = line.into_bytes();
    bytes.push(b'\n');
    w.write_all(&bytes).await
}

enum LinkEnd {
    QueueClosed,
    Failed,
}

async fn send_lines(writer: &mut BufWriter<TcpStream>, hello: &str, rx: &mut mpsc::Receiver<String>) -> LinkEnd {
    if write(writer, hello.to_string()).await.is_err() || writer.flush().await.is_err() {
        return LinkEnd::Failed;
    }
    loop {
        let Some(line) = rx.recv().await else { return LinkEnd::QueueClosed };
        if write(writer, line).await.is_err() {
            return LinkEnd::Failed;
        }
        let mut n = 1;
        while n < PEER_FLUSH_EVERY {
            let Ok(line) = rx.try_recv() else { break };
            if write(writer, line).await.is_err() {
                return LinkEnd::Failed;
            }
            n += 1;
        }
        if writer.flush().await.is_err() {
            return LinkEnd::Failed;
        }
    }
}
