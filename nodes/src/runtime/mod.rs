//! The one runtime that runs any [`Core`] as a real process.
//!
//! It owns everything a core must not touch: the data directory ([`disk`]), the sockets
//! ([`net`]), the clocks and the timers. One task (the *loop*) owns the core and feeds it inputs
//! one at a time; connection tasks decode lines into inputs and queue them. The loop performs
//! effects by *group commit*: it takes every input that is already waiting (up to
//! [`MAX_BATCH`]), steps the core through each, then makes the durable effects of the whole batch
//! durable (one fsync per touched file) and only then sends messages and replies and arms timers.
//! Nothing of a step is therefore sent before that step's state is on disk, and a burst of client
//! requests costs one fsync instead of one each.
//!
//! Time: `Ctx::now_ms` is the wall clock read through `SystemTime` (so libfaketime can skew it);
//! timers use tokio's monotonic clock. Randomness: one `ChaCha8Rng` seeded from `--seed` and the
//! node id, threaded through every step.

pub mod disk;
pub mod net;
pub mod wire;

use crate::core::{ClientId, Core, Ctx, Effect, NodeConfig, NodeId, Request, TimerId};
use anyhow::{Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// Inputs stepped before the batch's effects are performed.
pub const MAX_BATCH: usize = 4_096;
/// Inputs queued for the loop before connection readers wait (backpressure).
const INPUT_QUEUE: usize = 16_384;

/// Identifies one accepted client connection.
pub type ConnId = u64;

/// Where a client reply goes.
#[derive(Clone, Debug)]
pub struct ReplyTo {
    pub conn: ConnId,
    pub tx: mpsc::UnboundedSender<String>,
    pub msg_id: Value,
}

/// One thing for the loop to step the core with.
#[derive(Debug)]
pub enum Input<M> {
    Client { reply_to: ReplyTo, request: Request },
    Status { reply_to: ReplyTo },
    /// A local read: answered at once from the core's own state (`Core::local_read`).
    LocalRead { reply_to: ReplyTo, key: Option<Value> },
    Peer { from: NodeId, msg: M },
    Timer { id: TimerId, generation: u64 },
    Closed { conn: ConnId },
}

/// Everything the runtime needs to run one node.
#[derive(Clone, Debug)]
pub struct Settings {
    pub config: NodeConfig,
    pub listen: SocketAddr,
    /// Peer id to the address to reach it at (`host:port`).
    pub peer_addrs: BTreeMap<NodeId, String>,
    pub data_dir: PathBuf,
}

/// Runs the node until SIGTERM/SIGINT (then `Ok`) or a fatal error (a failed fsync, a port in use).
pub fn run<C: Core>(settings: Settings) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(serve::<C>(settings))
}

async fn serve<C: Core>(settings: Settings) -> Result<()> {
    let mut disk = disk::Disk::open(&settings.data_dir)?;
    if crate::bugs::runtime_has(&settings.config, crate::bugs::NO_FSYNC) {
        tracing::warn!("known bug on: no-fsync (no file, log or directory is ever fsynced)");
        disk = disk.without_fsync();
    }
    let storage = disk.load().context("recovering the data dir")?;
    let core = C::recover(&settings.config, &storage);
    drop(storage);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(INPUT_QUEUE);
    let peer_ids: Arc<BTreeSet<NodeId>> = Arc::new(settings.config.peers.iter().cloned().collect());
    tokio::spawn(net::accept_loop::<C::Msg>(listener, peer_ids, tx.clone()));
    let peers = net::Peers::start(&settings.config.id, &settings.peer_addrs);
    let seed = settings.config.seed ^ fnv(settings.config.id.as_bytes());
    let mut node = Loop {
        id: settings.config.id.clone(),
        core,
        disk,
        peers,
        ctx: Ctx::new(now_ms(), ChaCha8Rng::seed_from_u64(seed)),
        timers: HashMap::new(),
        next_generation: 0,
        pending: HashMap::new(),
        next_client: 1,
        inputs: tx,
        deferred: Vec::new(),
    };
    node.start()?;
    tracing::info!(id = %node.id, %local, "started");
    eprintln!("ready: listening on {local}");
    node.run(rx).await
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// FNV-1a, to mix the node id into the seed so nodes started with one `--seed` still differ.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

struct Timer {
    generation: u64,
    task: AbortHandle,
}

struct Loop<C: Core> {
    id: NodeId,
    core: C,
    disk: disk::Disk,
    peers: net::Peers,
    /// The one context, kept across steps for its generator; its effects are drained per batch.
    ctx: Ctx<C::Msg>,
    timers: HashMap<TimerId, Timer>,
    next_generation: u64,
    pending: HashMap<ClientId, ReplyTo>,
    next_client: ClientId,
    inputs: mpsc::Sender<Input<C::Msg>>,
    /// Answers to local reads, sent once the batch's durable effects are done.
    deferred: Vec<(mpsc::UnboundedSender<String>, String)>,
}

impl<C: Core> Loop<C> {
    fn start(&mut self) -> Result<()> {
        self.ctx.now_ms = now_ms();
        self.core.on_start(&mut self.ctx);
        self.perform()
    }

    async fn run(&mut self, mut rx: mpsc::Receiver<Input<C::Msg>>) -> Result<()> {
        let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        loop {
            let first = tokio::select! {
                input = rx.recv() => input,
                _ = sigterm.recv() => None,
                _ = tokio::signal::ctrl_c() => None,
            };
            let Some(first) = first else {
                tracing::info!("terminating");
                return Ok(());
            };
            self.step(first);
            let mut n = 1;
            while n < MAX_BATCH {
                let Ok(input) = rx.try_recv() else { break };
                self.step(input);
                n += 1;
            }
            self.perform()?;
        }
    }

    fn step(&mut self, input: Input<C::Msg>) {
        self.ctx.now_ms = now_ms();
        match input {
            Input::Client { reply_to, request } => {
                let client = self.next_client;
                self.next_client += 1;
                self.pending.insert(client, reply_to);
                self.core.on_request(&mut self.ctx, client, request);
            }
            Input::Status { reply_to } => {
                let line = wire::encode_status(&reply_to.msg_id, &self.id, self.core.status());
                let _ = reply_to.tx.send(line);
            }
            Input::LocalRead { reply_to, key } => {
                // Sent after this batch's durable effects, like any reply: the state it shows
                // may include an update of this very batch.
                let line = wire::encode(&reply_to.msg_id, &self.core.local_read(key.as_ref()));
                self.deferred.push((reply_to.tx, line));
            }
            Input::Peer { from, msg } => self.core.on_message(&mut self.ctx, &from, msg),
            Input::Timer { id, generation } => {
                if self.timers.get(&id).map(|t| t.generation) == Some(generation) {
                    self.timers.remove(&id);
                    self.core.on_timer(&mut self.ctx, id);
                }
            }
            Input::Closed { conn } => self.pending.retain(|_, r| r.conn != conn),
        }
    }

    /// Durable effects first (one fsync per file), then messages, replies and timers.
    fn perform(&mut self) -> Result<()> {
        let effects = self.ctx.take();
        if effects.is_empty() {
            self.send_deferred();
            return Ok(());
        }
        let durable = effects.iter().any(|e| matches!(e, Effect::Save { .. } | Effect::Append { .. } | Effect::Rewrite { .. }));
        if durable {
            // A node that cannot persist must not go on acknowledging: the error is fatal.
            tokio::task::block_in_place(|| self.disk.commit(&effects)).context("persisting state")?;
        }
        for effect in effects {
            match effect {
                Effect::Send { to, msg } => match serde_json::to_string(&msg) {
                    Ok(line) => self.peers.send(&to, line),
                    Err(e) => tracing::error!(error = %e, "unserialisable message dropped"),
                },
                Effect::Reply { client, reply } => match self.pending.remove(&client) {
                    Some(to) => {
                        let _ = to.tx.send(wire::encode(&to.msg_id, &reply));
                    }
                    None => tracing::debug!(client, "reply to a gone client dropped"),
                },
                Effect::SetTimer { id, after_ms } => self.arm(id, after_ms),
                Effect::CancelTimer { id } => {
                    if let Some(t) = self.timers.remove(&id) {
                        t.task.abort();
                    }
                }
                Effect::Save { .. } | Effect::Append { .. } | Effect::Rewrite { .. } => {}
            }
        }
        self.send_deferred();
        Ok(())
    }

    fn send_deferred(&mut self) {
        for (tx, line) in self.deferred.drain(..) {
            let _ = tx.send(line);
        }
    }

    fn arm(&mut self, id: TimerId, after_ms: u64) {
        self.next_generation += 1;
        let generation = self.next_generation;
        let inputs = self.inputs.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            let _ = inputs.send(Input::Timer { id, generation }).await;
        });
        if let Some(old) = self.timers.insert(id, Timer { generation, task: task.abort_handle() }) {
            old.task.abort();
        }
    }
}
