//! The client processes that drive a workload at the cluster, with Jepsen's semantics.
//!
//! `--concurrency` workers run at once; worker `w` starts as process `w` and talks to node
//! `process % n`. A process has one operation in flight. When an operation's outcome is
//! unknown (`info`: a timeout, a lost connection), the process is retired — it may still have
//! that operation pending forever — and the worker continues as a fresh process
//! `process + concurrency` on a new connection. A global limiter spaces invocations to
//! `--rate` over all workers. Every invoke is recorded before its request leaves, and every
//! completion after its reply arrives (see [`super::record`]).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline_checkers::history::{Op, OpType};
use faultline_workloads::{Client, Completion, OpSpec, Workload};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

use super::record::Recorder;

/// How long a worker waits before retrying a node it could not connect to, so a dead node
/// costs a few failed operations a second, not a busy loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// What every worker shares.
pub struct Shared {
    pub workload: Mutex<Box<dyn Workload>>,
    pub nodes: Vec<(String, SocketAddr)>,
    pub rec: Recorder,
    pub limiter: tokio::sync::Mutex<Interval>,
    pub timeout: Duration,
    pub concurrency: u64,
}

impl Shared {
    pub fn new(workload: Box<dyn Workload>, nodes: Vec<(String, SocketAddr)>, rec: Recorder, rate: f64, timeout: Duration, concurrency: usize) -> Shared {
        let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        // After a stall, do not fire a burst of catch-up operations: keep the spacing.
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Shared {
            workload: Mutex::new(workload),
            nodes,
            rec,
            limiter: tokio::sync::Mutex::new(interval),
            timeout,
            concurrency: concurrency as u64,
        }
    }
}

/// The history event of an operation.
pub fn event(process: u64, op_type: OpType, spec: &OpSpec, value: Value, node: &str) -> Op {
    let mut op = Op::new(process, op_type, &spec.f, value);
    op.key = spec.key.clone();
    op.node = Some(Arc::from(node));
    op.local = spec.local;
    op
}

/// What became of one performed operation.
pub struct Performed {
    /// The value of an `ok` completion.
    pub ok: Option<Value>,
    /// The outcome was unknown: the process must be retired.
    pub retire: bool,
}

/// Records an invoke, performs it and records its completion.
pub async fn perform(rec: &Recorder, client: &mut Option<Client>, addr: SocketAddr, node: &str, process: u64, spec: &OpSpec, timeout: Duration, final_read: bool) -> Performed {
    let mut invoke = event(process, OpType::Invoke, spec, spec.value.clone(), node);
    invoke.final_read = final_read;
    rec.record(invoke);
    if client.is_none() {
        match Client::connect(addr, timeout).await {
            Ok(c) => *client = Some(c),
            Err(e) => {
                // Nothing was sent: the operation certainly did not happen.
                let mut fail = event(process, OpType::Fail, spec, spec.value.clone(), node);
                fail.error = Some(format!("connect: {e}"));
                fail.final_read = final_read;
                rec.record(fail);
                return Performed { ok: None, retire: false };
            }
        }
    }
    let c = client.as_mut().expect("connected above");
    let completion = c.invoke(spec, timeout).await;
    let (op_type, value, error, retire) = match completion {
        Completion::Ok(v) => (OpType::Ok, v, None, false),
        Completion::Fail(e) => (OpType::Fail, spec.value.clone(), Some(e), false),
        Completion::Info(e) => (OpType::Info, spec.value.clone(), Some(e), true),
    };
    let ok = (op_type == OpType::Ok).then(|| value.clone());
    let mut done = event(process, op_type, spec, value, node);
    done.error = error;
    done.final_read = final_read;
    rec.record(done);
    if retire {
        *client = None;
    }
    Performed { ok, retire }
}

/// One worker: invokes operations until `stop` turns true. An operation in flight when the
/// stop comes still completes (bounded by the request timeout), so no invoke is left open.
/// Returns the last process number it used.
pub async fn worker(shared: Arc<Shared>, slot: usize, mut stop: watch::Receiver<bool>) -> u64 {
    let n = shared.nodes.len() as u64;
    let mut process = slot as u64;
    let mut client: Option<Client> = None;
    loop {
        if *stop.borrow() {
            return process;
        }
        tokio::select! {
            _ = async { shared.limiter.lock().await.tick().await; } => {}
            _ = stop.changed() => return process,
        }
        if *stop.borrow() {
            return process;
        }
        let spec = match shared.workload.lock() {
            Ok(mut w) => w.next_op(process),
            Err(_) => return process,
        };
        let (node, addr) = &shared.nodes[(process % n) as usize];
        let had_client = client.is_some();
        if perform(&shared.rec, &mut client, *addr, node, process, &spec, shared.timeout, false).await.retire {
            process += shared.concurrency;
        } else if client.is_none() && !had_client {
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }
}
