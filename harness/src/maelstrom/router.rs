//! The message router: every message between Maelstrom nodes, clients and services passes
//! through here, under the link rules of the run's [`Links`](crate::run::links::Links).
//!
//! Each node process gets two threads: a reader that parses the head of each line of its stdout
//! (`src`, `dest`, the body's `type`, `msg_id`, `in_reply_to`; the rest is forwarded as written,
//! never re-serialised) and routes it, and a feeder for its stdin that writes only what the
//! routing thread could not write at once (the pipe is non-blocking, see [`Stdin`]). A line that
//! is not a JSON message is kept as evidence (the run's health then names the node and the line)
//! and skipped. On every (re)start the node is sent `init` from `c0` (and, for `broadcast`, its
//! `topology`); its readiness is the answer.
//!
//! Rules are looked up for the directed link (origin → destination) when a message is routed:
//! `Pass` delivers it now; `Reset` (what a partition sets on Maelstrom nodes) drops it, as
//! Maelstrom's partitions do; `Delay` delivers it `delay ± jitter` later (order between messages
//! is not kept, as in Maelstrom's network); `Stall` holds it until the link changes, then applies
//! the new rule. Links without a rule (clients, `c0`) always pass.
//!
//! `--latency-ms` delays every message but the harness's own (`c0`) by that much (spread by
//! `--latency-dist`, see [`super::latency`]), on top of the rule. Every message is logged to
//! `messages.jsonl` when it is delivered or dropped (see docs/maelstrom.md), into a buffer a
//! writer thread takes every [`LOG_FLUSH_EVERY`], and counted for results.json.
//!
//! What a node has not read yet waits in its stdin pipe and then in a queue of at most
//! [`STDIN_QUEUE_MAX_BYTES`] (a paused node reads nothing); a message that does not fit is
//! dropped, as a full network buffer drops it, and logged with the reason `stdin full`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::{ChildStdin, ChildStdout};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio::sync::{oneshot, watch};

use super::latency::Latency;
use super::services::Services;
use crate::run::cluster::Readiness;
use crate::run::links::{LinkState, Links};

/// How long a node has to answer `init` (and `topology`).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the `messages.jsonl` writer takes what has been logged (logging never waits for
/// the disk, and never wakes a thread per message).
const LOG_FLUSH_EVERY: Duration = Duration::from_millis(20);
/// The most `messages.jsonl` may hold in memory before lines are counted as lost instead.
const LOG_BUFFER_MAX_BYTES: usize = 64 << 20;
/// The read buffer of a node's stdout.
const READ_BUFFER_BYTES: usize = 1 << 16;

/// The stdin of the current process of a node. Dropping it (the node exited, or restarted as a
/// new process) closes the pipe once what is queued has been written.
struct NodeConn {
    generation: u64,
    stdin: Arc<Stdin>,
}

impl Drop for NodeConn {
    fn drop(&mut self) {
        self.stdin.close();
    }
}

/// A node's stdin, written without a thread hop when the pipe has room: the routing thread
/// writes the line itself (the pipe is non-blocking); only what does not fit (a paused or slow
/// node) is queued for the node's feeder thread, which waits for the pipe to drain. Order is
/// kept: while anything is queued, new lines queue behind it.
struct Stdin {
    pipe: ChildStdin,
    state: Mutex<Outbox>,
    wake: Condvar,
    /// The most bytes queued (and being written by the feeder) before a message is dropped.
    limit: usize,
}

#[derive(Default)]
struct Outbox {
    queued: Vec<u8>,
    /// The feeder is writing a batch it took from `queued`, of this many bytes.
    busy: Option<usize>,
    closed: bool,
}

/// What became of a message handed to a node's stdin.
#[derive(Debug, PartialEq, Eq)]
enum Handed {
    /// Written to the pipe, or queued behind what is.
    Sent,
    /// The node has not read [`STDIN_QUEUE_MAX_BYTES`] already: dropped.
    Full,
    /// The node's stdin is closed (it exited, or was replaced by a new process).
    Closed,
}

/// How much may wait for a node that does not read its stdin (a paused or overwhelmed node),
/// beyond what its pipe holds: 8 MiB, some 80,000 typical messages.
const STDIN_QUEUE_MAX_BYTES: usize = 8 << 20;

impl Stdin {
    fn new(pipe: ChildStdin) -> std::io::Result<Stdin> {
        Stdin::with_limit(pipe, STDIN_QUEUE_MAX_BYTES)
    }

    fn with_limit(pipe: ChildStdin, limit: usize) -> std::io::Result<Stdin> {
        set_nonblocking(&pipe)?;
        Ok(Stdin { pipe, state: Mutex::default(), wake: Condvar::new(), limit })
    }

    /// Hands `line` (and a newline) to the node.
    fn send(&self, line: &str) -> Handed {
        let mut out = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if out.closed {
            return Handed::Closed;
        }
        if out.queued.len() + out.busy.unwrap_or(0) + line.len() + 1 > self.limit {
            return Handed::Full;
        }
        let direct = out.queued.is_empty() && out.busy.is_none();
        out.queued.extend_from_slice(line.as_bytes());
        out.queued.push(b'\n');
        if direct {
            match (&self.pipe).write(&out.queued) {
                Ok(n) => {
                    out.queued.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    out.closed = true;
                    return Handed::Closed;
                }
            }
        }
        if !out.queued.is_empty() {
            self.wake.notify_one();
        }
        Handed::Sent
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.wake.notify_one();
    }

    /// The feeder thread: writes what the routing threads could not, waiting for the pipe.
    fn feed(&self) {
        loop {
            let batch = {
                let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let mut out = self.wake.wait_while(guard, |o| o.queued.is_empty() && !o.closed).unwrap_or_else(|e| e.into_inner());
                if out.queued.is_empty() {
                    return; // closed, and everything written
                }
                let batch = std::mem::take(&mut out.queued);
                out.busy = Some(batch.len());
                batch
            };
            let written = self.write_all(&batch);
            let mut out = self.state.lock().unwrap_or_else(|e| e.into_inner());
            out.busy = None;
            if !written {
                out.closed = true;
                out.queued.clear();
                return;
            }
        }
    }

    /// Writes all of `bytes`, waiting (in steps of [`FEED_POLL_MS`]) while the pipe is full.
    fn write_all(&self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() {
            match (&self.pipe).write(bytes) {
                Ok(0) => return false,
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let mut fd = libc::pollfd { fd: self.pipe.as_raw_fd(), events: libc::POLLOUT, revents: 0 };
                    // SAFETY: one valid pollfd, for the length of the call.
                    unsafe { libc::poll(&mut fd, 1, FEED_POLL_MS) };
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }
}

/// How long the feeder waits for a full pipe to drain before trying again.
const FEED_POLL_MS: i32 = 100;

fn set_nonblocking(pipe: &ChildStdin) -> std::io::Result<()> {
    let fd = pipe.as_raw_fd();
    // SAFETY: fcntl on a descriptor this process owns; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// What the router reads of a message: its envelope and the head of its body, borrowed from the
/// line when nothing in them is escaped. The rest of the line is forwarded untouched.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(borrow, default)]
    src: Option<Cow<'a, str>>,
    #[serde(borrow)]
    dest: Cow<'a, str>,
    #[serde(borrow)]
    body: BodyHead<'a>,
}

#[derive(Deserialize)]
struct BodyHead<'a> {
    #[serde(rename = "type", borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    msg_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    in_reply_to: Option<&'a RawValue>,
}

/// A `msg_id` or `in_reply_to` as the sender wrote it: almost always an integer, kept without
/// allocating; anything else kept as its JSON text, for the log.
#[derive(Clone, Debug, PartialEq)]
enum Id {
    Int(u64),
    Other(Box<str>),
}

impl Id {
    fn of(raw: &RawValue) -> Id {
        let text = raw.get();
        match text.parse::<u64>() {
            Ok(n) if !text.starts_with('+') => Id::Int(n),
            _ => Id::Other(text.into()),
        }
    }

    fn as_u64(&self) -> Option<u64> {
        match self {
            Id::Int(n) => Some(*n),
            Id::Other(_) => None,
        }
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Id::Int(n) => write!(f, "{n}"),
            Id::Other(text) => f.write_str(text),
        }
    }
}

/// The head of a message, owned.
#[derive(Default)]
struct Parts {
    /// The message's own `src`, if it has one.
    src: Option<String>,
    dest: String,
    typ: String,
    msg_id: Option<Id>,
    in_reply_to: Option<Id>,
}

impl From<Head<'_>> for Parts {
    fn from(head: Head<'_>) -> Parts {
        Parts {
            src: head.src.map(Cow::into_owned),
            dest: head.dest.into_owned(),
            typ: head.body.typ.map_or_else(|| "?".to_string(), Cow::into_owned),
            msg_id: head.body.msg_id.map(Id::of),
            in_reply_to: head.body.in_reply_to.map(Id::of),
        }
    }
}

/// A message on its way: the line as its sender wrote it, and what routing and the log need.
struct Msg {
    id: u64,
    /// The sender the harness knows (whatever `src` says).
    origin: String,
    parts: Parts,
    sent_ns: u64,
    line: String,
}

impl Msg {
    /// The body, parsed: for the services and the clients, which read it whole.
    fn body(&self) -> Value {
        serde_json::from_str::<Value>(&self.line).ok().and_then(|mut v| v.get_mut("body").map(Value::take)).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
struct Counts {
    total: u64,
    dropped: u64,
    between_nodes: u64,
    by_type: HashMap<String, u64>,
    dropped_by_reason: BTreeMap<String, u64>,
}

/// `messages.jsonl` on its way to the disk: lines appended under a lock, written by one thread.
#[derive(Default)]
struct LogBuf {
    bytes: Vec<u8>,
    closed: bool,
    lost: u64,
}

/// Routes the messages of one run.
pub struct Router {
    start: Instant,
    handle: tokio::runtime::Handle,
    node_ids: Vec<String>,
    conns: Mutex<HashMap<String, NodeConn>>,
    generation: AtomicU64,
    /// origin → destination → the link's rule.
    rules: HashMap<String, HashMap<String, watch::Receiver<LinkState>>>,
    /// `--latency-ms` and `--latency-dist`: added to every message except the harness's own
    /// (`c0`).
    latency: Latency,
    pub services: Services,
    pending: Mutex<HashMap<(String, u64), oneshot::Sender<Value>>>,
    next_id: AtomicU64,
    init_msg_id: AtomicU64,
    log: Arc<(Mutex<LogBuf>, Condvar)>,
    log_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    delivered: AtomicU64,
    counts: Mutex<Counts>,
    rng: Mutex<ChaCha8Rng>,
    bad_output: Mutex<Vec<(String, String)>>,
    /// `broadcast`: each node's neighbours, sent as `topology` after every `init`.
    topology: Option<BTreeMap<String, Vec<String>>>,
}

/// What a router needs besides the nodes and their links.
pub struct RouterSetup {
    pub seed: u64,
    /// The run's clock: message times are nanoseconds since it.
    pub start: Instant,
    /// `broadcast`: the topology sent after `init`.
    pub topology: Option<BTreeMap<String, Vec<String>>>,
    pub latency: Latency,
}

impl Router {
    /// A router for `node_ids`, reading link rules from `links` (which must cover the nodes and
    /// the services), writing `messages.jsonl` at `log_path`.
    pub fn new(node_ids: &[String], links: &Links, log_path: &Path, setup: RouterSetup) -> anyhow::Result<Arc<Router>> {
        let mut rules: HashMap<String, HashMap<String, _>> = HashMap::new();
        let mut everyone: Vec<String> = node_ids.to_vec();
        everyone.extend(super::services::NAMES.iter().map(|s| s.to_string()));
        for a in &everyone {
            for b in everyone.iter().filter(|b| *b != a) {
                if let Some(rx) = links.subscribe(a, b) {
                    rules.entry(a.clone()).or_default().insert(b.clone(), rx);
                }
            }
        }
        let file = std::fs::File::create(log_path).map_err(|e| anyhow::anyhow!("creating {}: {e}", log_path.display()))?;
        let log: Arc<(Mutex<LogBuf>, Condvar)> = Arc::default();
        let writer = {
            let log = log.clone();
            std::thread::Builder::new().name("faultline-messages".into()).spawn(move || write_log(file, &log))?
        };
        let RouterSetup { seed, start, topology, latency } = setup;
        Ok(Arc::new(Router {
            start,
            handle: tokio::runtime::Handle::current(),
            node_ids: node_ids.to_vec(),
            conns: Mutex::default(),
            generation: AtomicU64::new(0),
            rules,
            latency,
            services: Services::new(seed),
            pending: Mutex::default(),
            next_id: AtomicU64::new(0),
            init_msg_id: AtomicU64::new(0),
            log,
            log_thread: Mutex::new(Some(writer)),
            delivered: AtomicU64::new(0),
            counts: Mutex::default(),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed ^ 0x726f_7574)),
            bad_output: Mutex::default(),
            topology,
        }))
    }

    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Takes over a freshly started node's pipes: starts its reader and writer, sends `init`
    /// (and `topology`), and answers when the node is ready.
    pub fn attach(self: &Arc<Self>, id: &str, stdin: ChildStdin, stdout: ChildStdout) -> Readiness {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        match Stdin::new(stdin) {
            Ok(stdin) => {
                let stdin = Arc::new(stdin);
                let feeder = stdin.clone();
                let _ = std::thread::Builder::new().name(format!("faultline-{id}-in")).spawn(move || feeder.feed());
                self.conns.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string(), NodeConn { generation, stdin });
            }
            // Without its stdin the node never gets init: its readiness says so.
            Err(e) => tracing::warn!("{id}: cannot make its stdin non-blocking: {e}"),
        }
        let me = self.clone();
        let node = id.to_string();
        let _ = std::thread::Builder::new().name(format!("faultline-{id}-out")).spawn(move || {
            me.read_stdout(&node, stdout);
            let mut conns = me.conns.lock().unwrap_or_else(|e| e.into_inner());
            if conns.get(&node).is_some_and(|c| c.generation == generation) {
                conns.remove(&node);
            }
        });
        let (ready_tx, ready_rx) = oneshot::channel();
        let me = self.clone();
        let node = id.to_string();
        self.handle.spawn(async move {
            let _ = ready_tx.send(me.initialize(&node).await);
        });
        ready_rx
    }

    /// Routes every message a node writes on stdout until it closes; keeps anything else as
    /// evidence.
    fn read_stdout(self: &Arc<Self>, node: &str, stdout: ChildStdout) {
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = line.trim_end_matches(['\n', '\r']);
            if text.trim().is_empty() {
                continue;
            }
            // A message that claims another sender is not the node's own (a node that copies
            // its input to its output would otherwise talk to itself forever).
            let evidence = match serde_json::from_str::<Head>(text) {
                Ok(head) if head.src.as_deref() == Some(node) => {
                    let msg = self.message(node, Parts::from(head), text.to_string());
                    self.send(msg);
                    continue;
                }
                Ok(head) => format!("{} (its src is {}, not {node})", text, head.src.map_or("null".into(), |s| json!(s).to_string())),
                Err(_) => text.to_string(),
            };
            let mut bad = self.bad_output.lock().unwrap_or_else(|e| e.into_inner());
            if bad.len() < 10_000 {
                bad.push((node.to_string(), evidence.chars().take(500).collect()));
            }
        }
    }

    /// A fresh message id for requests of the harness itself (client `c0`).
    pub fn c0_msg_id(&self) -> u64 {
        self.init_msg_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// `init`, then (broadcast) `topology`, each answered within [`INIT_TIMEOUT`].
    async fn initialize(self: &Arc<Self>, node: &str) -> Result<(), String> {
        let msg_id = self.init_msg_id.fetch_add(1, Ordering::Relaxed) + 1;
        let init = json!({"type": "init", "msg_id": msg_id, "node_id": node, "node_ids": self.node_ids});
        match self.request("c0", node, init, INIT_TIMEOUT).await {
            Some(r) if r["type"] == "init_ok" => {}
            Some(r) => return Err(format!("it answered init with {r}")),
            None => {
                let said = self.bad_output().into_iter().find(|(n, _)| n == node).map(|(_, l)| format!("; instead it wrote to stdout: {l}")).unwrap_or_default();
                return Err(format!("no init_ok within {INIT_TIMEOUT:?}{said}"));
            }
        }
        if let Some(topo) = &self.topology {
            let msg_id = self.init_msg_id.fetch_add(1, Ordering::Relaxed) + 1;
            let body = json!({"type": "topology", "msg_id": msg_id, "topology": topo});
            match self.request("c0", node, body, INIT_TIMEOUT).await {
                Some(r) if r["type"] == "topology_ok" => {}
                Some(r) => return Err(format!("it answered topology with {r}")),
                None => return Err(format!("no topology_ok within {INIT_TIMEOUT:?}")),
            }
        }
        Ok(())
    }

    /// Sends `body` from client `client` to `node` and waits for the reply (matched by
    /// `in_reply_to`); `None` after `timeout`.
    pub async fn request(self: &Arc<Self>, client: &str, node: &str, body: Value, timeout: Duration) -> Option<Value> {
        let msg_id = body.get("msg_id").and_then(Value::as_u64)?;
        let (tx, rx) = oneshot::channel();
        let key = (client.to_string(), msg_id);
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone(), tx);
        self.route(client, json!({"src": client, "dest": node, "body": body}));
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Some(reply),
            _ => {
                self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
                None
            }
        }
    }

    /// Routes one message sent by `origin` (the sender the harness knows, whatever `src` says).
    /// A value that is not a message (no `dest`, no body) is dropped as `unknown destination`.
    pub fn route(self: &Arc<Self>, origin: &str, value: Value) {
        let line = value.to_string();
        let parts = serde_json::from_str::<Head>(&line).map(Parts::from).unwrap_or_default();
        let msg = self.message(origin, parts, line);
        self.send(msg);
    }

    fn message(&self, origin: &str, parts: Parts, line: String) -> Msg {
        Msg { id: self.next_id.fetch_add(1, Ordering::Relaxed), origin: origin.to_string(), parts, sent_ns: self.now_ns(), line }
    }

    /// Counts a message as sent, then applies its link's rule.
    fn send(self: &Arc<Self>, msg: Msg) {
        {
            let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            c.total += 1;
            match c.by_type.get_mut(msg.parts.typ.as_str()) {
                Some(n) => *n += 1,
                None => {
                    c.by_type.insert(msg.parts.typ.clone(), 1);
                }
            }
            if self.is_node(&msg.origin) && self.is_node(&msg.parts.dest) {
                c.between_nodes += 1;
            }
        }
        self.forward(msg);
    }

    fn is_node(&self, id: &str) -> bool {
        self.node_ids.iter().any(|n| n == id)
    }

    /// Applies the link's rule (and `--latency-ms`) to a message.
    fn forward(self: &Arc<Self>, msg: Msg) {
        let rule = self.rules.get(&msg.origin).and_then(|to| to.get(&msg.parts.dest));
        let state = rule.map(|r| r.borrow().clone()).unwrap_or(LinkState::Pass);
        // The harness's own requests (init, convergence probes) are not the network's.
        let own = msg.origin == "c0" || msg.parts.dest == "c0";
        let latency = match self.latency {
            _ if own => Duration::ZERO,
            l if l.is_constant() => Duration::from_millis(l.mean_ms),
            l => l.sample(&mut *self.rng.lock().unwrap_or_else(|e| e.into_inner())),
        };
        match state {
            LinkState::Pass if latency.is_zero() => self.deliver(msg),
            LinkState::Pass => self.deliver_after(msg, latency),
            LinkState::Reset => self.dropped(msg, "partition"),
            LinkState::Delay { delay_ms, jitter_ms } => {
                let jitter = if jitter_ms == 0 { 0 } else { self.rng.lock().unwrap_or_else(|e| e.into_inner()).gen_range(0..=2 * jitter_ms) };
                self.deliver_after(msg, latency + Duration::from_millis((delay_ms + jitter).saturating_sub(jitter_ms)));
            }
            LinkState::Stall => {
                let mut rx = rule.expect("a stalled link has a rule").clone();
                let me = self.clone();
                self.handle.spawn(async move {
                    let _ = rx.wait_for(|s| *s != LinkState::Stall).await;
                    me.forward(msg);
                });
            }
        }
    }

    fn deliver_after(self: &Arc<Self>, msg: Msg, after: Duration) {
        let me = self.clone();
        self.handle.spawn(async move {
            tokio::time::sleep(after).await;
            me.deliver(msg);
        });
    }

    fn deliver(self: &Arc<Self>, msg: Msg) {
        let dest = msg.parts.dest.as_str();
        if Services::is_service(dest) {
            let src = msg.parts.src.clone().unwrap_or_else(|| msg.origin.clone());
            let reply = self.services.handle(dest, &src, &msg.body());
            self.delivered(&msg);
            if let Some(body) = reply {
                self.route(dest, json!({"src": dest, "dest": src, "body": body}));
            }
            return;
        }
        if self.is_node(dest) {
            let handed = {
                let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
                conns.get(dest).map_or(Handed::Closed, |c| c.stdin.send(&msg.line))
            };
            match handed {
                Handed::Sent => self.delivered(&msg),
                Handed::Full => self.dropped(msg, "stdin full"),
                Handed::Closed => self.dropped(msg, "node down"),
            }
            return;
        }
        // A client (`c0` for init): the reply to a pending request, or a late one.
        let key = (msg.parts.dest.clone(), msg.parts.in_reply_to.as_ref().and_then(Id::as_u64).unwrap_or(u64::MAX));
        let waiter = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        match waiter {
            Some(tx) => {
                self.delivered(&msg);
                let _ = tx.send(msg.body());
            }
            None if dest.starts_with('c') => self.dropped(msg, "no client waiting"),
            None => self.dropped(msg, "unknown destination"),
        }
    }

    fn delivered(&self, msg: &Msg) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.log(msg, Some(self.now_ns()), None);
    }

    fn dropped(&self, msg: Msg, why: &str) {
        {
            let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            c.dropped += 1;
            *c.dropped_by_reason.entry(why.to_string()).or_default() += 1;
        }
        self.log(&msg, None, Some(why));
    }

    /// Appends the message's line of `messages.jsonl` (docs/maelstrom.md) to the log buffer.
    fn log(&self, msg: &Msg, delivered_ns: Option<u64>, dropped: Option<&str>) {
        let line = log_line(msg, delivered_ns, dropped);
        let mut log = self.log.0.lock().unwrap_or_else(|e| e.into_inner());
        if log.closed {
            return;
        }
        if log.bytes.len() + line.len() > LOG_BUFFER_MAX_BYTES {
            log.lost += 1;
            return;
        }
        log.bytes.extend_from_slice(line.as_bytes());
    }

    /// Lines nodes wrote to stdout that are not JSON messages: per node, its first such line
    /// (and how many more there were).
    pub fn bad_output(&self) -> Vec<(String, String)> {
        let all = self.bad_output.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(String, String)> = Vec::new();
        for id in &self.node_ids {
            let lines: Vec<&String> = all.iter().filter(|(n, _)| n == id).map(|(_, l)| l).collect();
            if let Some(first) = lines.first() {
                let more = if lines.len() > 1 { format!(" (and {} more such lines)", lines.len() - 1) } else { String::new() };
                out.push((id.clone(), format!("{first}{more}")));
            }
        }
        out
    }

    /// The network statistics for results.json; `client_ops` completed operations give the
    /// messages per operation.
    pub fn stats_json(&self, client_ops: u64) -> Value {
        let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let per_op = if client_ops == 0 { Value::Null } else { json!(((c.between_nodes as f64 / client_ops as f64) * 100.0).round() / 100.0) };
        let by_type: BTreeMap<&String, &u64> = c.by_type.iter().collect();
        let lost = self.log.0.lock().unwrap_or_else(|e| e.into_inner()).lost;
        json!({
            "messages_total": c.total, "delivered": self.delivered.load(Ordering::Relaxed), "dropped": c.dropped,
            "dropped_by_reason": c.dropped_by_reason, "between_nodes": c.between_nodes,
            "between_nodes_per_op": per_op, "by_type": by_type, "latency_ms": self.latency.mean_ms,
            "latency_dist": self.latency.dist.name(),
            "log_lines_lost": lost,
        })
    }

    /// Stops accepting log lines and waits for `messages.jsonl` to be written.
    pub fn close_log(&self) {
        self.log.0.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        self.log.1.notify_all();
        if let Some(t) = self.log_thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

/// One line of `messages.jsonl`, with its newline.
fn log_line(msg: &Msg, delivered_ns: Option<u64>, dropped: Option<&str>) -> String {
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "null".into());
    let mut line = String::with_capacity(160);
    let src = msg.parts.src.as_deref().unwrap_or(&msg.origin);
    let _ = write!(line, r#"{{"id":{},"src":{},"dest":{},"type":{}"#, msg.id, quoted(src), quoted(&msg.parts.dest), quoted(&msg.parts.typ));
    for (name, v) in [("msg_id", &msg.parts.msg_id), ("in_reply_to", &msg.parts.in_reply_to)] {
        if let Some(v) = v {
            let _ = write!(line, r#","{name}":{v}"#);
        }
    }
    let _ = write!(line, r#","sent_ns":{}"#, msg.sent_ns);
    match (delivered_ns, dropped) {
        (Some(t), _) => {
            let _ = write!(line, r#","delivered_ns":{t}}}"#);
        }
        (None, why) => {
            let _ = write!(line, r#","dropped":true,"reason":{}}}"#, quoted(why.unwrap_or("")));
        }
    }
    line.push('\n');
    line
}

/// The `messages.jsonl` writer: takes the buffer every [`LOG_FLUSH_EVERY`] (or when the log
/// closes) and writes it out.
fn write_log(file: std::fs::File, log: &(Mutex<LogBuf>, Condvar)) {
    let mut w = BufWriter::new(file);
    let mut spare = Vec::new();
    loop {
        let closed = {
            let guard = log.0.lock().unwrap_or_else(|e| e.into_inner());
            let (mut guard, _) = log.1.wait_timeout_while(guard, LOG_FLUSH_EVERY, |l| !l.closed).unwrap_or_else(|e| e.into_inner());
            std::mem::swap(&mut guard.bytes, &mut spare);
            guard.closed
        };
        let _ = w.write_all(&spare);
        spare.clear();
        if closed {
            break;
        }
    }
    let _ = w.flush();
}

/// The `broadcast` topology: a grid of the nodes (each node's neighbours are the nodes beside,
/// above and below it in a row-major square), as Maelstrom's default.
pub fn grid(nodes: &[String]) -> BTreeMap<String, Vec<String>> {
    let n = nodes.len();
    let side = (1..=n).find(|s| s * s >= n).unwrap_or(1);
    let mut out = BTreeMap::new();
    for (i, id) in nodes.iter().enumerate() {
        let (r, c) = (i / side, i % side);
        let mut nb = Vec::new();
        let mut push = |rr: isize, cc: isize| {
            if rr >= 0 && cc >= 0 && (cc as usize) < side {
                let j = rr as usize * side + cc as usize;
                if j < n && j != i {
                    nb.push(nodes[j].clone());
                }
            }
        };
        push(r as isize - 1, c as isize);
        push(r as isize + 1, c as isize);
        push(r as isize, c as isize - 1);
        push(r as isize, c as isize + 1);
        out.insert(id.clone(), nb);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::links::Grudge;

    /// Sends a request to `lin-kv` as if node n1 sent it on behalf of client c1 (the service
    /// replies to the message's `src`), under the rules of the link n1 → lin-kv.
    async fn via_n1(router: &Arc<Router>, msg_id: u64, wait: Duration) -> Option<Value> {
        let (tx, rx) = oneshot::channel();
        router.pending.lock().unwrap().insert(("c1".to_string(), msg_id), tx);
        router.route("n1", json!({"src": "c1", "dest": "lin-kv", "body": {"type": "write", "key": 1, "value": msg_id, "msg_id": msg_id}}));
        tokio::time::timeout(wait, rx).await.ok().and_then(Result::ok)
    }

    #[tokio::test]
    async fn the_routers_rules_are_the_links_rules() {
        let dir = tempfile::tempdir().unwrap();
        let nodes: Vec<String> = vec!["n1".into(), "n2".into()];
        let mut everyone = nodes.clone();
        everyone.extend(super::super::services::NAMES.iter().map(|s| s.to_string()));
        let links = Links::rules_only(&everyone, 1).unwrap();
        let setup = RouterSetup { seed: 1, start: Instant::now(), topology: None, latency: Latency::default() };
        let router = Router::new(&nodes, &links, &dir.path().join("messages.jsonl"), setup).unwrap();
        let ok = via_n1(&router, 1, Duration::from_secs(5)).await;
        assert_eq!(ok.unwrap()["type"], "write_ok");
        // A partition that cuts n1 off from lin-kv drops the request: no reply, ever.
        let grudge: Grudge = [("lin-kv".to_string(), ["n1".to_string()].into_iter().collect())].into_iter().collect();
        links.partition(&grudge, false);
        assert!(via_n1(&router, 2, Duration::from_millis(300)).await.is_none());
        // A slow link delivers, later.
        links.heal();
        links.slow("n1", "lin-kv", 50, 10);
        assert_eq!(via_n1(&router, 3, Duration::from_secs(5)).await.unwrap()["type"], "write_ok");
        links.pass("n1", "lin-kv");
        router.close_log();
        let log: Vec<Value> = std::fs::read_to_string(dir.path().join("messages.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let dropped: Vec<&Value> = log.iter().filter(|m| m["dropped"] == true).collect();
        assert_eq!(dropped.len(), 1, "{log:?}");
        assert_eq!((dropped[0]["reason"].as_str(), dropped[0]["msg_id"].as_u64()), (Some("partition"), Some(2)));
        let slow = log.iter().find(|m| m["msg_id"] == 3 && m["dest"] == "lin-kv").unwrap();
        let took_ms = (slow["delivered_ns"].as_u64().unwrap() - slow["sent_ns"].as_u64().unwrap()) / 1_000_000;
        assert!(took_ms >= 40, "a 50 ± 10 ms link delivered after {took_ms} ms");
        let stats = router.stats_json(3);
        assert_eq!(stats["dropped"], 1);
        assert_eq!(stats["by_type"]["write_ok"], 2);
    }

    /// A node that never reads its stdin (as a paused one): the pipe fills, then the queue up to
    /// its limit, then every further message is refused as `Full`, and nothing grows.
    #[test]
    fn a_node_that_reads_nothing_gets_a_bounded_queue() {
        let mut child = std::process::Command::new("sleep").arg("30").stdin(std::process::Stdio::piped()).spawn().unwrap();
        let limit = 256 << 10;
        let stdin = Stdin::with_limit(child.stdin.take().unwrap(), limit).unwrap();
        let line = "x".repeat(1023);
        let mut sent = 0usize;
        let mut full = 0usize;
        for _ in 0..2000 {
            match stdin.send(&line) {
                Handed::Sent => sent += 1,
                Handed::Full => full += 1,
                Handed::Closed => panic!("the pipe closed"),
            }
        }
        // Everything up to the pipe's capacity (64 KiB here, at least 4 KiB anywhere) and the
        // queue's limit goes through; the rest is refused.
        assert!(sent >= limit / 1024, "only {sent} messages went through");
        assert!(sent <= (limit + (1 << 20)) / 1024, "{sent} messages went through a queue of {limit} bytes");
        assert_eq!(sent + full, 2000);
        assert!(stdin.state.lock().unwrap().queued.len() <= limit);
        let _ = child.kill();
        let _ = child.wait();
        // A closed pipe is a closed node, not a full one.
        stdin.close();
        assert_eq!(stdin.send("y"), Handed::Closed);
    }

    #[test]
    fn ids_are_kept_as_written() {
        let raw = |t: &str| Id::of(&serde_json::from_str::<Box<RawValue>>(t).unwrap());
        assert_eq!(raw("12"), Id::Int(12));
        assert_eq!(raw("12").as_u64(), Some(12));
        assert_eq!(raw("-3").to_string(), "-3");
        assert_eq!(raw("\"a\"").to_string(), "\"a\"");
        assert_eq!(raw("1.5").as_u64(), None);
    }

    #[test]
    fn grid_neighbours_are_symmetric_and_connected() {
        for n in 1..=7 {
            let nodes: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
            let g = grid(&nodes);
            for (a, nb) in &g {
                for b in nb {
                    assert!(g[b].contains(a), "{a} -> {b} but not back ({g:?})");
                }
            }
            // Connected: a walk from n1 reaches everyone.
            let mut seen = std::collections::BTreeSet::from([nodes[0].clone()]);
            let mut todo = vec![nodes[0].clone()];
            while let Some(x) = todo.pop() {
                for y in &g[&x] {
                    if seen.insert(y.clone()) {
                        todo.push(y.clone());
                    }
                }
            }
            assert_eq!(seen.len(), n, "{g:?}");
        }
    }
}
