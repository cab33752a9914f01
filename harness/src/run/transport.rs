//! How the harness reaches the nodes: one interface, two implementations.
//!
//! - [`Tcp`] (this module): the node contract (docs/node-contract.md). Nodes listen on TCP;
//!   every link between two nodes is a proxy of [`Links`] that the nemesis can cut, slow or
//!   stall; clients speak the contract's JSON lines to each node directly.
//! - [`crate::maelstrom::run::Maelstrom`]: Maelstrom's protocol. Nodes are stdio processes; every
//!   message, between nodes, clients and services alike, passes the router, which reads the same
//!   link rules.
//!
//! A run is the same sequence of steps whatever the transport ([`execute`]): open the network,
//! prepare the workload, start the nodes, start the clients, let [`super::drive`] run the
//! workload and the faults, heal, wait for the cluster to settle, read every node, close. Each
//! step that differs is a method of [`Transport`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use faultline_checkers::history::History;
use faultline_workloads::{OpSpec, Workload, WorkloadOptions};
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::cluster::{self, Cluster, NodeSpec};
use super::links::Links;
use super::nemesis::Nemesis;
use super::record::{self, Recorder};
use super::settings::Settings;
use super::{clients, faketime, faults, finals, health, observe, stats, Outcome, Phase, Stop};
use crate::exit::Failure;

/// How long the cluster gets to settle after healing, before the final reads.
pub(crate) const QUIET: Duration = Duration::from_secs(2);

/// What differs between node protocols, step by step (see the module's documentation).
pub(crate) trait Transport: Sized {
    /// Starts the network between the nodes (proxies, or the router and its link rules).
    async fn open(s: &Settings, run_dir: &Path, rec: &Recorder, started: Instant) -> Result<(Self, Links), Failure>;
    /// Makes the workload's generator (and says what the run's faults mean), before any node
    /// starts. An error here fails the run without starting a node.
    fn prepare(&mut self, s: &Settings, rec: &Recorder) -> anyhow::Result<()>;
    /// The node processes, wired to this transport.
    fn node_specs(&self, s: &Settings, run_dir: &Path) -> anyhow::Result<Vec<NodeSpec>>;
    /// Takes the network down when the nodes could not be started.
    async fn abandon(self, links: Links);
    /// Starts one client worker per `--concurrency` slot; each returns its last process number.
    async fn start_clients(&mut self, s: &Settings, rec: &Recorder, stop_rx: watch::Receiver<bool>) -> Vec<JoinHandle<u64>>;
    /// The health facts known before the workload ends.
    fn facts(&self, s: &Settings) -> health::Facts;
    /// Every fault is healed; the cluster is about to be left quiet for [`QUIET`].
    fn healed(&mut self);
    /// Reads every node once the cluster is quiet; returns results.json's statistics about it.
    async fn final_reads(&mut self, s: &Settings, rec: &Recorder, first_process: u64, facts: &mut health::Facts) -> Map<String, Value>;
    /// Stops the nodes and the network; adds the transport's statistics, facts and errors to
    /// `end`, and the nodes' data directories.
    async fn close(self, s: &Settings, nemesis: Nemesis, run_dir: &Path, rec: &Recorder, end: &mut End);
}

/// What a run hands to the checking, besides its history.
pub(crate) struct End {
    /// Statistics for results.json.
    pub extra: Map<String, Value>,
    pub facts: health::Facts,
    pub teardown_errors: Vec<String>,
    pub data_dirs: Vec<PathBuf>,
}

/// One run over transport `T`: starts the network and the cluster, runs the workload and the
/// faults, heals, reads.
pub(crate) async fn execute<T: Transport>(s: &Settings, run_dir: &Path, stop_rx: watch::Receiver<bool>) -> Result<Outcome, Failure> {
    let started = Instant::now();
    let (rec, sink) = record::open(&run_dir.join("history.jsonl"), started).context("creating history.jsonl")?;
    let (mut transport, links) = T::open(s, run_dir, &rec, started).await?;
    let cluster = match transport.prepare(s, &rec) {
        Ok(()) => match transport.node_specs(s, run_dir) {
            Ok(specs) => Cluster::start(specs).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let cluster = match cluster {
        Ok(c) => c,
        Err(e) => {
            transport.abandon(links).await;
            drop(rec);
            let ops = sink.finish().ops;
            return Ok(Outcome::failed(History::from_ops(ops), started, e));
        }
    };
    let stop = Stop::relay(stop_rx);
    let workers = transport.start_clients(s, &rec, stop.rx.clone()).await;
    let Phase { mut nemesis, mut teardown_errors, last_process, workload_s, heal_error } = super::drive(s, cluster, links, &rec, workers, stop, started).await?;
    let mut facts = transport.facts(s);
    facts.note_heal(heal_error, &mut teardown_errors);
    transport.healed();
    tokio::time::sleep(QUIET).await;
    nemesis.supervise().await;
    for id in &s.node_ids() {
        if nemesis.cluster.is_up(id) {
            if let Err(e) = nemesis.cluster.wait_ready(id, cluster::READY_TIMEOUT).await {
                teardown_errors.push(format!("{e:#}"));
            }
        }
    }
    facts.down_at_end = nemesis.cluster.down();
    let extra = transport.final_reads(s, &rec, last_process + 1, &mut facts).await;
    let mut end = End { extra, facts, teardown_errors, data_dirs: Vec::new() };
    transport.close(s, nemesis, run_dir, &rec, &mut end).await;
    drop(rec);
    let recorded = sink.finish();
    if let Some(e) = recorded.error {
        end.teardown_errors.push(format!("writing history.jsonl: {e}"));
    }
    let End { extra, facts, teardown_errors, data_dirs } = end;
    Ok(Outcome { history: History::from_ops(recorded.ops), started, workload_s, extra_stats: extra, teardown_errors, facts, data_dirs, fatal: None })
}

/// The node contract over TCP, each link a proxy.
pub(crate) struct Tcp {
    addrs: std::collections::BTreeMap<String, SocketAddr>,
    /// The proxies' addresses, per link, for the nodes' `--peer` flags.
    peers: std::collections::BTreeMap<(String, String), SocketAddr>,
    workload: Option<Box<dyn Workload>>,
    shared: Option<Arc<clients::Shared>>,
    checker_params: Map<String, Value>,
    warm_up_ms: Option<u64>,
    monitor: Option<observe::Monitor>,
    reads: Vec<OpSpec>,
}

impl Tcp {
    fn node_list(&self) -> Vec<(String, SocketAddr)> {
        self.addrs.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

impl Transport for Tcp {
    async fn open(s: &Settings, _run_dir: &Path, _rec: &Recorder, _started: Instant) -> Result<(Self, Links), Failure> {
        let ids = s.node_ids();
        let mut addrs = std::collections::BTreeMap::new();
        for id in &ids {
            addrs.insert(id.clone(), cluster::free_port().context("finding a free port")?);
        }
        let links = Links::start(&ids, &addrs, s.seed).await.context("starting the proxy network")?;
        let mut peers = std::collections::BTreeMap::new();
        for a in &ids {
            for b in ids.iter().filter(|b| *b != a) {
                peers.insert((a.clone(), b.clone()), links.proxy_addr(a, b));
            }
        }
        let tcp = Tcp { addrs, peers, workload: None, shared: None, checker_params: Map::new(), warm_up_ms: None, monitor: None, reads: Vec::new() };
        Ok((tcp, links))
    }

    fn prepare(&mut self, s: &Settings, _rec: &Recorder) -> anyhow::Result<()> {
        let unsupported = s.description.unsupported.get(&s.workload).cloned().unwrap_or_default();
        let mut wopts = WorkloadOptions { concurrency: s.concurrency, unsupported, ..WorkloadOptions::default() };
        apply_node_args(&mut wopts, &s.node_args);
        let workload = faultline_workloads::by_name(&s.workload, s.seed, &wopts).map_err(|e| anyhow::anyhow!("--workload: {e}"))?;
        self.workload = Some(workload);
        Ok(())
    }

    fn node_specs(&self, s: &Settings, run_dir: &Path) -> anyhow::Result<Vec<NodeSpec>> {
        let ids: Vec<String> = self.addrs.keys().cloned().collect();
        let specs = ids
            .iter()
            .map(|id| {
                let dir = run_dir.join("nodes");
                let data_dir = dir.join(id).join("data");
                let mut args: Vec<String> = vec![s.protocol.clone(), "--id".into(), id.clone(), "--listen".into(), self.addrs[id].to_string()];
                args.extend(["--data-dir".into(), data_dir.display().to_string()]);
                for peer in ids.iter().filter(|p| *p != id) {
                    args.extend(["--peer".into(), format!("{peer}={}", self.peers[&(id.clone(), peer.clone())])]);
                }
                args.extend(["--workload".into(), s.workload.clone(), "--seed".into(), s.seed.to_string()]);
                args.extend(s.node_args.iter().cloned());
                let clock_file = s.faketime_lib.as_ref().map(|_| dir.join(format!("{id}.faketime")));
                let mut env = match (&s.faketime_lib, &clock_file) {
                    (Some(lib), Some(f)) => faketime::env(lib, f),
                    _ => Vec::new(),
                };
                if let Some(lib) = &s.powerloss_lib {
                    faults::power::add_env(&mut env, lib, &data_dir);
                }
                NodeSpec { id: id.clone(), listen: self.addrs[id], data_dir, log: dir.join(format!("{id}.log")), program: s.node_bin.clone(), args, env, clock_file, stdio: None }
            })
            .collect();
        Ok(specs)
    }

    async fn abandon(self, links: Links) {
        links.shutdown().await;
    }

    async fn start_clients(&mut self, s: &Settings, rec: &Recorder, stop_rx: watch::Receiver<bool>) -> Vec<JoinHandle<u64>> {
        let Some(workload) = self.workload.take() else { return Vec::new() };
        self.checker_params = workload.checker_params();
        let node_list = self.node_list();
        let probe = workload.final_reads().into_iter().find(|r| !r.local);
        self.warm_up_ms = warm_up(&node_list, probe.as_ref(), s.request_timeout, stop_rx.clone()).await;
        self.monitor = s.checkers.iter().any(|c| c.name == "durable-state").then(|| observe::start(&node_list, rec));
        let shared = Arc::new(clients::Shared::new(workload, node_list, rec.clone(), s.rate, s.request_timeout, s.concurrency));
        self.shared = Some(shared.clone());
        (0..s.concurrency).map(|slot| tokio::spawn(clients::worker(shared.clone(), slot, stop_rx.clone()))).collect()
    }

    fn facts(&self, s: &Settings) -> health::Facts {
        health::Facts { allow_crashes: s.allow_crashes, ..health::Facts::default() }
    }

    fn healed(&mut self) {
        self.reads = self.shared.as_ref().and_then(|sh| sh.workload.lock().ok().map(|w| w.final_reads())).unwrap_or_default();
    }

    async fn final_reads(&mut self, s: &Settings, rec: &Recorder, first_process: u64, facts: &mut health::Facts) -> Map<String, Value> {
        crate::out!("final reads of every node ...");
        tokio::time::sleep(super::phase_delay()).await;
        // Every protocol's final reads repeat until the nodes agree (or the budget passes): the
        // time to converge after the heal is measured for CP protocols too, not only where it
        // is judged.
        let finals = finals::final_reads(rec, &self.node_list(), &self.reads, s.request_timeout, first_process, true).await;
        facts.final_reads_missing = finals.missing();
        let mut extra = Map::new();
        extra.insert("final_reads".into(), final_reads_json(&finals, &self.reads));
        extra.insert("final_read_rounds".into(), json!(finals.rounds));
        extra.insert("time_to_converge_ms".into(), json!(finals.time_to_converge_ms));
        extra.insert("warm_up_ms".into(), json!(self.warm_up_ms));
        extra
    }

    async fn close(mut self, _s: &Settings, nemesis: Nemesis, _run_dir: &Path, _rec: &Recorder, end: &mut End) {
        end.extra.insert("links".into(), nemesis.links.stats_json());
        end.extra.insert("checker_params".into(), Value::Object(std::mem::take(&mut self.checker_params)));
        if let Some(m) = self.monitor.take() {
            m.stop().await;
        }
        end.data_dirs = nemesis.cluster.data_dirs();
        let (mut cluster, links) = nemesis.into_parts();
        cluster.stop_all();
        links.shutdown().await;
    }
}

/// How long the cluster may take to serve its first requests (elect a leader) before the
/// workload starts anyway.
const WARM_UP: Duration = Duration::from_secs(10);

/// Waits until every node answers `probe` (a read, not recorded) with a value or a semantic
/// refusal, so the initial election is not counted as unavailability; returns the milliseconds
/// it took, or `None` when some node was still not serving after [`WARM_UP`] (the workload
/// then starts regardless, and the health judgment sees whatever follows).
async fn warm_up(nodes: &[(String, SocketAddr)], probe: Option<&OpSpec>, timeout: Duration, stop_rx: watch::Receiver<bool>) -> Option<u64> {
    let probe = probe?;
    let started = Instant::now();
    let timeout = timeout.min(Duration::from_millis(500));
    for (_, addr) in nodes {
        loop {
            if *stop_rx.borrow() || started.elapsed() > WARM_UP {
                return None;
            }
            if let Ok(mut c) = faultline_workloads::Client::connect(*addr, timeout).await {
                match c.invoke(probe, timeout).await {
                    faultline_workloads::Completion::Ok(_) => break,
                    faultline_workloads::Completion::Fail(e) if stats::is_semantic_refusal(Some(&e)) => break,
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Some(started.elapsed().as_millis() as u64)
}

/// Bank options the nodes were given are also the workload's (`--accounts`, `--initial-balance`).
fn apply_node_args(opts: &mut WorkloadOptions, node_args: &[String]) {
    let mut it = node_args.iter().flat_map(|a| a.splitn(2, '=').map(str::to_string).collect::<Vec<_>>()).peekable();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--accounts" => {
                if let Some(v) = it.peek().and_then(|v| v.parse().ok()) {
                    opts.accounts = v;
                }
            }
            "--initial-balance" => {
                if let Some(v) = it.peek().and_then(|v| v.parse().ok()) {
                    opts.initial_balance = v;
                }
            }
            _ => {}
        }
    }
}

/// `final_reads` of results.json: node → the value read (one read), or key → value (several).
fn final_reads_json(finals: &finals::Finals, reads: &[OpSpec]) -> Value {
    let mut out = Map::new();
    for (node, row) in &finals.values {
        let v = if reads.len() == 1 {
            row.first().cloned().flatten().unwrap_or(Value::Null)
        } else {
            let m: Map<String, Value> = reads.iter().zip(row).map(|(spec, v)| (spec.key.as_ref().map(|k| k.to_string()).unwrap_or_default(), v.clone().unwrap_or(Value::Null))).collect();
            Value::Object(m)
        };
        out.insert(node.clone(), v);
    }
    Value::Object(out)
}
