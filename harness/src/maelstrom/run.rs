//! Maelstrom-protocol nodes as a [`Transport`]: the same run as over TCP (the run's nemesis,
//! schedule, recorder, health judgment and checkers, see [`crate::run::transport::execute`]),
//! with the router instead of the proxies and stdio nodes instead of listening ones.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use faultline_checkers::history::OpType;
use faultline_workloads::{Completion, OpSpec, Workload};
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Interval, MissedTickBehavior};

use super::latency::Latency;
use super::router::{self, Router};
use super::services;
use super::workloads;
use crate::exit::Failure;
use crate::run::cluster::{self, NodeSpec, StdioHook};
use crate::run::links::Links;
use crate::run::nemesis::Nemesis;
use crate::run::record::Recorder;
use crate::run::settings::{FaultKind, Settings};
use crate::run::transport::{End, Transport};
use crate::run::{clients, faketime, health};
/// How long the nodes may take to agree, probed without recording, before the final reads.
const CONVERGE_BUDGET: Duration = Duration::from_secs(10);
/// What a kill means to a Maelstrom node, said in the history and the results.
pub const AMNESIA: &str = "for Maelstrom nodes a kill is a crash with amnesia: the node restarts as a fresh process with an empty memory and a new init";

/// What the client workers share.
struct Ctx {
    workload_name: String,
    workload: Mutex<Box<dyn Workload>>,
    nodes: Vec<String>,
    router: Arc<Router>,
    rec: Recorder,
    limiter: tokio::sync::Mutex<Interval>,
    timeout: Duration,
    concurrency: u64,
}

fn node_specs(s: &Settings, run_dir: &Path, router: &Arc<Router>) -> anyhow::Result<Vec<NodeSpec>> {
    let dir = run_dir.join("nodes");
    let hook = {
        let router = router.clone();
        StdioHook(Arc::new(move |id: &str, stdin, stdout| router.attach(id, stdin, stdout)))
    };
    s.node_ids()
        .into_iter()
        .map(|id| {
            let clock_file = s.faketime_lib.as_ref().map(|_| dir.join(format!("{id}.faketime")));
            let env = match (&s.faketime_lib, &clock_file) {
                (Some(lib), Some(f)) => faketime::env(lib, f),
                _ => Vec::new(),
            };
            Ok(NodeSpec {
                // Never listened on: the leader probe of the kill fault finds nobody there.
                listen: cluster::free_port().context("finding a free port")?,
                data_dir: dir.join(&id).join("data"),
                log: dir.join(format!("{id}.log")),
                program: s.node_bin.clone(),
                args: s.node_args.clone(),
                env,
                clock_file,
                stdio: Some(hook.clone()),
                id,
            })
        })
        .collect()
}

/// Maelstrom's protocol: stdio nodes behind the router.
pub(crate) struct Maelstrom {
    router: Arc<Router>,
    workload: Option<Box<dyn Workload>>,
    ctx: Option<Arc<Ctx>>,
}

impl Transport for Maelstrom {
    async fn open(s: &Settings, run_dir: &Path, _rec: &Recorder, started: Instant) -> Result<(Self, Links), Failure> {
        let ids = s.node_ids();
        let mut everyone = ids.clone();
        everyone.extend(services::NAMES.iter().map(|s| s.to_string()));
        let links = Links::rules_only(&everyone, s.seed).context("setting up the link rules")?;
        let topology = (s.workload == "broadcast").then(|| router::grid(&ids));
        let setup = router::RouterSetup { seed: s.seed, start: started, topology, latency: Latency { mean_ms: s.latency_ms, dist: s.latency_dist } };
        let router = Router::new(&ids, &links, &run_dir.join("messages.jsonl"), setup).context("starting the router")?;
        Ok((Maelstrom { router, workload: None, ctx: None }, links))
    }

    fn prepare(&mut self, s: &Settings, rec: &Recorder) -> anyhow::Result<()> {
        self.workload = Some(workloads::generator(&s.workload, s.seed, s.concurrency)?);
        if s.faults.contains(&FaultKind::Kill) {
            crate::out!("note: {AMNESIA}");
            rec.nemesis("note", json!({"fault": "kill", "note": AMNESIA}));
        }
        Ok(())
    }

    fn node_specs(&self, s: &Settings, run_dir: &Path) -> anyhow::Result<Vec<NodeSpec>> {
        node_specs(s, run_dir, &self.router)
    }

    async fn abandon(self, _links: Links) {
        self.router.close_log();
    }

    async fn start_clients(&mut self, s: &Settings, rec: &Recorder, stop_rx: watch::Receiver<bool>) -> Vec<JoinHandle<u64>> {
        let Some(workload) = self.workload.take() else { return Vec::new() };
        let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / s.rate));
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let ctx = Arc::new(Ctx {
            workload_name: s.workload.clone(),
            workload: Mutex::new(workload),
            nodes: s.node_ids(),
            router: self.router.clone(),
            rec: rec.clone(),
            limiter: tokio::sync::Mutex::new(interval),
            timeout: s.request_timeout,
            concurrency: s.concurrency as u64,
        });
        self.ctx = Some(ctx.clone());
        (0..s.concurrency).map(|slot| tokio::spawn(worker(ctx.clone(), slot, stop_rx.clone()))).collect()
    }

    fn facts(&self, s: &Settings) -> health::Facts {
        health::Facts { allow_crashes: s.allow_crashes, no_reads: !workloads::has_reads(&s.workload), ..health::Facts::default() }
    }

    fn healed(&mut self) {
        self.router.services.settle();
    }

    async fn final_reads(&mut self, s: &Settings, _rec: &Recorder, first_process: u64, facts: &mut health::Facts) -> Map<String, Value> {
        let mut extra = Map::new();
        if let (true, Some(ctx)) = (workloads::has_final_reads(&s.workload), &self.ctx) {
            crate::out!("final reads of every node ...");
            let (finals, converge_ms) = final_reads(ctx, first_process).await;
            facts.final_reads_missing = finals.iter().filter(|(_, v)| v.is_none()).map(|(n, _)| n.clone()).collect();
            extra.insert("final_reads".into(), Value::Object(finals.into_iter().map(|(n, v)| (n, v.unwrap_or(Value::Null))).collect()));
            extra.insert("time_to_converge_ms".into(), json!(converge_ms));
        }
        extra
    }

    async fn close(self, s: &Settings, nemesis: Nemesis, run_dir: &Path, rec: &Recorder, end: &mut End) {
        end.facts.bad_output = self.router.bad_output();
        let (mut cluster, links) = nemesis.into_parts();
        cluster.stop_all();
        drop(links);
        let client_ops = rec.counters.completed();
        end.extra.insert("network".into(), self.router.stats_json(client_ops.0 + client_ops.1 + client_ops.2));
        end.extra.insert("node_protocol".into(), json!("maelstrom"));
        end.extra.insert("guarantee".into(), json!(workloads::guarantee(&s.workload)));
        if s.faults.contains(&FaultKind::Kill) {
            end.extra.insert("kill_semantics".into(), json!(AMNESIA));
        }
        end.data_dirs = cluster.data_dirs();
        self.router.close_log();
        if let Err(e) = super::lamport::write(run_dir) {
            end.teardown_errors.push(format!("writing messages.svg: {e}"));
        }
    }
}

/// Records an invoke, sends the request, records the completion. `true`: the outcome is
/// unknown and the process must be retired.
async fn perform(ctx: &Ctx, client: &str, msg_id: u64, node: &str, process: u64, spec: &OpSpec, final_read: bool) -> (bool, Option<Value>) {
    let mut invoke = clients::event(process, OpType::Invoke, spec, spec.value.clone(), node);
    invoke.final_read = final_read;
    ctx.rec.record(invoke);
    let body = workloads::request(&ctx.workload_name, spec, msg_id);
    let completion = match ctx.router.request(client, node, body.clone(), ctx.timeout).await {
        Some(reply) => workloads::completion(&ctx.workload_name, spec, &body, &reply),
        None => Completion::Info("timeout".into()),
    };
    let (op_type, value, error) = match completion {
        Completion::Ok(v) => (OpType::Ok, v, None),
        Completion::Fail(e) => (OpType::Fail, spec.value.clone(), Some(e)),
        Completion::Info(e) => (OpType::Info, spec.value.clone(), Some(e)),
    };
    let ok = (op_type == OpType::Ok).then(|| value.clone());
    let retire = op_type == OpType::Info;
    let mut done = clients::event(process, op_type, spec, value, node);
    done.error = error;
    done.final_read = final_read;
    ctx.rec.record(done);
    (retire, ok)
}

/// One client: `c<slot+1>`, process `slot`, then `slot + concurrency` after each unknown
/// outcome; bound to node `process % n`. Returns the last process number.
async fn worker(ctx: Arc<Ctx>, slot: usize, mut stop: watch::Receiver<bool>) -> u64 {
    let n = ctx.nodes.len() as u64;
    let client = format!("c{}", slot + 1);
    let mut process = slot as u64;
    let mut msg_id = 0u64;
    loop {
        if *stop.borrow() {
            return process;
        }
        tokio::select! {
            _ = async { ctx.limiter.lock().await.tick().await; } => {}
            _ = stop.changed() => return process,
        }
        if *stop.borrow() {
            return process;
        }
        let spec = match ctx.workload.lock() {
            Ok(mut w) => w.next_op(process),
            Err(_) => return process,
        };
        msg_id += 1;
        let node = ctx.nodes[(process % n) as usize].clone();
        if perform(&ctx, &client, msg_id, &node, process, &spec, false).await.0 {
            process += ctx.concurrency;
        }
    }
}

/// Sorted lists, so two nodes holding one set in two orders agree.
fn normalise(v: &Value) -> Value {
    crate::run::finals::normalise(v)
}

/// Waits (with unrecorded reads) until every node answers the same, then reads every node once
/// more, recorded as final. Per node: the final value, `None` if its read never succeeded.
async fn final_reads(ctx: &Arc<Ctx>, first_process: u64) -> (Vec<(String, Option<Value>)>, Option<u64>) {
    let read = OpSpec::read(None);
    let began = Instant::now();
    let mut converged = None;
    while began.elapsed() < CONVERGE_BUDGET {
        let mut values = Vec::new();
        for node in &ctx.nodes {
            let body = workloads::request(&ctx.workload_name, &read, ctx.router.c0_msg_id());
            let v = match ctx.router.request("c0", node, body.clone(), ctx.timeout).await {
                Some(reply) => match workloads::completion(&ctx.workload_name, &read, &body, &reply) {
                    Completion::Ok(v) => Some(normalise(&v)),
                    _ => None,
                },
                None => None,
            };
            values.push(v);
        }
        if values.iter().all(Option::is_some) && values.windows(2).all(|w| w[0] == w[1]) {
            converged = Some(began.elapsed().as_millis() as u64);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut out = Vec::new();
    let mut process = first_process;
    let client = format!("c{}", ctx.concurrency + 1);
    let mut msg_id = 0;
    for node in &ctx.nodes {
        let mut got = None;
        for _ in 0..3 {
            msg_id += 1;
            let (retire, ok) = perform(ctx, &client, msg_id, node, process, &read, true).await;
            if retire {
                process += 1;
            }
            if ok.is_some() {
                got = ok;
                break;
            }
        }
        out.push((node.clone(), got));
    }
    (out, converged)
}
