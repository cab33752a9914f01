//! The message router: every message between Maelstrom nodes, clients and services passes
//! through here, under the link rules of the run's [`Links`](crate::run::links::Links).
//!
//! Each node process gets two threads: a reader that parses its stdout line by line and routes
//! each message, and a writer that feeds its stdin. A line that is not a JSON message is kept as
//! evidence (the run's health then names the node and the line) and skipped. On every (re)start
//! the node is sent `init` from `c0` (and, for `broadcast`, its `topology`); its readiness is the
//! answer.
//!
//! Rules are looked up for the directed link (origin → destination) when a message is routed:
//! `Pass` delivers it now; `Reset` (what a partition sets on Maelstrom nodes) drops it, as
//! Maelstrom's partitions do; `Delay` delivers it `delay ± jitter` later (order between messages
//! is not kept, as in Maelstrom's network); `Stall` holds it until the link changes, then applies
//! the new rule. Links without a rule (clients, `c0`) always pass.
//!
//! Every message is written to `messages.jsonl` when it is delivered or dropped (see
//! docs/maelstrom.md), and counted for results.json.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::{ChildStdin, ChildStdout};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use tokio::sync::{oneshot, watch};

use super::services::Services;
use crate::run::cluster::Readiness;
use crate::run::links::{LinkState, Links};

/// How long a node has to answer `init` (and `topology`).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The stdin of the current process of a node.
struct NodeConn {
    generation: u64,
    tx: mpsc::Sender<String>,
}

/// A message on its way.
struct Msg {
    id: u64,
    origin: String,
    dest: String,
    sent_ns: u64,
    value: Value,
}

#[derive(Default)]
struct Counts {
    total: u64,
    delivered: u64,
    dropped: u64,
    between_nodes: u64,
    by_type: BTreeMap<String, u64>,
    dropped_by_reason: BTreeMap<String, u64>,
}

/// Routes the messages of one run.
pub struct Router {
    start: Instant,
    handle: tokio::runtime::Handle,
    node_ids: Vec<String>,
    conns: Mutex<HashMap<String, NodeConn>>,
    generation: AtomicU64,
    rules: HashMap<(String, String), watch::Receiver<LinkState>>,
    pub services: Services,
    pending: Mutex<HashMap<(String, u64), oneshot::Sender<Value>>>,
    next_id: AtomicU64,
    init_msg_id: AtomicU64,
    log: Mutex<Option<mpsc::Sender<String>>>,
    log_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    counts: Mutex<Counts>,
    rng: Mutex<ChaCha8Rng>,
    bad_output: Mutex<Vec<(String, String)>>,
    /// `broadcast`: each node's neighbours, sent as `topology` after every `init`.
    topology: Option<BTreeMap<String, Vec<String>>>,
}

impl Router {
    /// A router for `node_ids`, reading link rules from `links` (which must cover the nodes and
    /// the services), writing `messages.jsonl` at `log_path`.
    pub fn new(node_ids: &[String], links: &Links, log_path: &Path, seed: u64, start: Instant, topology: Option<BTreeMap<String, Vec<String>>>) -> anyhow::Result<Arc<Router>> {
        let mut rules = HashMap::new();
        let mut everyone: Vec<String> = node_ids.to_vec();
        everyone.extend(super::services::NAMES.iter().map(|s| s.to_string()));
        for a in &everyone {
            for b in everyone.iter().filter(|b| *b != a) {
                if let Some(rx) = links.subscribe(a, b) {
                    rules.insert((a.clone(), b.clone()), rx);
                }
            }
        }
        let file = std::fs::File::create(log_path).map_err(|e| anyhow::anyhow!("creating {}: {e}", log_path.display()))?;
        let (tx, rx) = mpsc::channel::<String>();
        let writer = std::thread::Builder::new().name("faultline-messages".into()).spawn(move || {
            let mut w = BufWriter::new(file);
            for line in rx {
                let _ = w.write_all(line.as_bytes());
                let _ = w.write_all(b"\n");
            }
            let _ = w.flush();
        })?;
        Ok(Arc::new(Router {
            start,
            handle: tokio::runtime::Handle::current(),
            node_ids: node_ids.to_vec(),
            conns: Mutex::default(),
            generation: AtomicU64::new(0),
            rules,
            services: Services::new(seed),
            pending: Mutex::default(),
            next_id: AtomicU64::new(0),
            init_msg_id: AtomicU64::new(0),
            log: Mutex::new(Some(tx)),
            log_thread: Mutex::new(Some(writer)),
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
        let (tx, rx) = mpsc::channel::<String>();
        let _ = std::thread::Builder::new().name(format!("faultline-{id}-in")).spawn(move || {
            let mut w = BufWriter::new(stdin);
            while let Ok(line) = rx.recv() {
                if w.write_all(line.as_bytes()).and_then(|_| w.write_all(b"\n")).is_err() {
                    break;
                }
                // Write everything queued, then flush once.
                let mut broken = false;
                while let Ok(more) = rx.try_recv() {
                    if w.write_all(more.as_bytes()).and_then(|_| w.write_all(b"\n")).is_err() {
                        broken = true;
                        break;
                    }
                }
                if broken || w.flush().is_err() {
                    break;
                }
            }
        });
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string(), NodeConn { generation, tx });
        let me = self.clone();
        let node = id.to_string();
        let _ = std::thread::Builder::new().name(format!("faultline-{id}-out")).spawn(move || {
            let mut reader = BufReader::new(stdout);
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
                let parsed = serde_json::from_str::<Value>(text).ok().filter(|v| v.get("dest").and_then(Value::as_str).is_some() && v.get("body").is_some_and(Value::is_object));
                // A message that claims another sender is not the node's own (a node that
                // copies its input to its output would otherwise talk to itself forever).
                let evidence = match parsed {
                    Some(v) if v["src"].as_str() == Some(node.as_str()) => {
                        me.route(&node, v);
                        continue;
                    }
                    Some(v) => format!("{} (its src is {}, not {node})", text, v["src"]),
                    None => text.to_string(),
                };
                let mut bad = me.bad_output.lock().unwrap_or_else(|e| e.into_inner());
                if bad.len() < 10_000 {
                    bad.push((node.clone(), evidence.chars().take(500).collect()));
                }
            }
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
    pub fn route(self: &Arc<Self>, origin: &str, value: Value) {
        let dest = value["dest"].as_str().unwrap_or("").to_string();
        let typ = value["body"]["type"].as_str().unwrap_or("?").to_string();
        {
            let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            c.total += 1;
            *c.by_type.entry(typ).or_default() += 1;
            if self.node_ids.iter().any(|n| n == origin) && self.node_ids.contains(&dest) {
                c.between_nodes += 1;
            }
        }
        let msg = Msg { id: self.next_id.fetch_add(1, Ordering::Relaxed), origin: origin.to_string(), dest, sent_ns: self.now_ns(), value };
        self.forward(msg);
    }

    /// Applies the link's rule to a message.
    fn forward(self: &Arc<Self>, msg: Msg) {
        let rule = self.rules.get(&(msg.origin.clone(), msg.dest.clone()));
        let state = rule.map(|r| r.borrow().clone()).unwrap_or(LinkState::Pass);
        match state {
            LinkState::Pass => self.deliver(msg),
            LinkState::Reset => self.dropped(msg, "partition"),
            LinkState::Delay { delay_ms, jitter_ms } => {
                let jitter = if jitter_ms == 0 { 0 } else { self.rng.lock().unwrap_or_else(|e| e.into_inner()).gen_range(0..=2 * jitter_ms) };
                let ms = (delay_ms + jitter).saturating_sub(jitter_ms);
                let me = self.clone();
                self.handle.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    me.deliver(msg);
                });
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

    fn deliver(self: &Arc<Self>, msg: Msg) {
        let dest = msg.dest.as_str();
        if Services::is_service(dest) {
            let src = msg.value["src"].as_str().unwrap_or(&msg.origin).to_string();
            let reply = self.services.handle(dest, &src, &msg.value["body"]);
            self.delivered(&msg);
            if let Some(body) = reply {
                self.route(dest, json!({"src": dest, "dest": src, "body": body}));
            }
            return;
        }
        if self.node_ids.iter().any(|n| n == dest) {
            let sent = {
                let conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
                conns.get(dest).map(|c| c.tx.send(msg.value.to_string()).is_ok()).unwrap_or(false)
            };
            if sent {
                self.delivered(&msg);
            } else {
                self.dropped(msg, "node down");
            }
            return;
        }
        // A client (`c0` for init): the reply to a pending request, or a late one.
        let key = (dest.to_string(), msg.value["body"]["in_reply_to"].as_u64().unwrap_or(u64::MAX));
        let waiter = self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&key);
        match waiter {
            Some(tx) => {
                self.delivered(&msg);
                let _ = tx.send(msg.value["body"].clone());
            }
            None if dest.starts_with('c') => self.dropped(msg, "no client waiting"),
            None => self.dropped(msg, "unknown destination"),
        }
    }

    fn delivered(&self, msg: &Msg) {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).delivered += 1;
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

    fn log(&self, msg: &Msg, delivered_ns: Option<u64>, dropped: Option<&str>) {
        let body = &msg.value["body"];
        let mut line = Map::new();
        line.insert("id".into(), json!(msg.id));
        line.insert("src".into(), msg.value.get("src").cloned().unwrap_or_else(|| json!(msg.origin)));
        line.insert("dest".into(), json!(msg.dest));
        line.insert("type".into(), body.get("type").cloned().unwrap_or(Value::Null));
        for f in ["msg_id", "in_reply_to"] {
            if let Some(v) = body.get(f) {
                line.insert(f.into(), v.clone());
            }
        }
        line.insert("sent_ns".into(), json!(msg.sent_ns));
        match (delivered_ns, dropped) {
            (Some(t), _) => {
                line.insert("delivered_ns".into(), json!(t));
            }
            (None, why) => {
                line.insert("dropped".into(), json!(true));
                line.insert("reason".into(), json!(why.unwrap_or("")));
            }
        }
        if let Some(tx) = self.log.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(Value::Object(line).to_string());
        }
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
        json!({
            "messages_total": c.total, "delivered": c.delivered, "dropped": c.dropped,
            "dropped_by_reason": c.dropped_by_reason, "between_nodes": c.between_nodes,
            "between_nodes_per_op": per_op, "by_type": c.by_type,
        })
    }

    /// Stops accepting log lines and waits for `messages.jsonl` to be written.
    pub fn close_log(&self) {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.log_thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
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
        let router = Router::new(&nodes, &links, &dir.path().join("messages.jsonl"), 1, Instant::now(), None).unwrap();
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
