//! `faultline test`: one run of one protocol under one workload and a schedule of faults.
//!
//! The steps, each in its own module:
//! 1. [`settings`] validates the flags and asks the node binary what the protocol claims;
//!    [`claims`] turns the claims (or `--check`) into checkers.
//! 2. [`store`] creates the run directory and writes `test.json`; [`record`] streams the
//!    history to `history.jsonl`.
//! 3. [`links`] starts the proxy network, [`cluster`] the nodes (libfaketime preloaded when the
//!    clock nemesis is on, see [`faketime`]).
//! 4. [`clients`] drive the workload while [`schedule`] has the [`nemesis`] break things;
//!    [`progress`] reports on stderr.
//! 5. At the time limit or on Ctrl-C: clients stop, every fault heals, [`finals`] reads every
//!    node, the checkers run (even when teardown failed), and `results.json` ([`stats`]) and
//!    the report are written. The exit code is the verdict's.

pub mod claims;
pub mod clients;
pub mod cluster;
pub mod faketime;
pub mod finals;
pub mod links;
pub mod nemesis;
pub mod progress;
pub mod record;
pub mod schedule;
pub mod settings;
pub mod stats;
pub mod store;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use faultline_checkers::history::History;
use faultline_checkers::registry::{self, CheckerSpec};
use faultline_checkers::{CheckOptions, Validity};
use faultline_workloads::WorkloadOptions;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use crate::cli::TestArgs;
use crate::exit::{self, Failure};
use cluster::{Cluster, NodeSpec};
use links::Links;
use settings::Settings;

/// How long the cluster gets to settle after healing, before the final reads.
const QUIET: Duration = Duration::from_secs(2);

/// What the asynchronous part of a run hands back for checking.
struct Outcome {
    history: History,
    started: Instant,
    workload_s: f64,
    extra_stats: Map<String, Value>,
    teardown_errors: Vec<String>,
    data_dirs: Vec<PathBuf>,
    /// Set when the run could not even start (the cluster failed): exit 255 after writing results.
    fatal: Option<anyhow::Error>,
}

/// `faultline test`.
pub fn main(args: TestArgs) -> Result<i32, Failure> {
    let settings = settings::validate(&args)?;
    let started_at = chrono::Utc::now();
    let run_dir = store::create_run_dir(&settings, started_at).with_context(|| format!("creating a run directory under {}", settings.results.display()))?;
    store::write_json(&run_dir.join("test.json"), &store::test_json(&settings, started_at)).context("writing test.json")?;
    println!("run directory: {}", run_dir.display());
    arm_watchdog(&settings);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("starting the runtime")?;
    let outcome = rt.block_on(execute(&settings, &run_dir))?;
    rt.shutdown_timeout(Duration::from_secs(2));
    finish(&settings, &run_dir, outcome)
}

/// Slack on top of the workload and checking time before the watchdog gives up on a run.
const WATCHDOG_SLACK: Duration = Duration::from_secs(180);

/// Bounds the whole run: should any step of teardown hang (a node that never answers, a task
/// that never ends), the harness exits 255 instead of hanging a nightly job; its nodes die with
/// it through their parent-death signal, and the history streamed so far stays checkable.
fn arm_watchdog(s: &Settings) {
    let limit = s.time_limit + s.check_budget + WATCHDOG_SLACK;
    let _ = std::thread::Builder::new().name("faultline-watchdog".into()).spawn(move || {
        std::thread::sleep(limit);
        eprintln!("faultline: internal error: the run did not finish within {} s; giving up", limit.as_secs());
        std::process::exit(exit::INTERNAL);
    });
}

/// The node ids, their listen addresses, and the node specs wired through the proxies.
fn node_specs(s: &Settings, run_dir: &Path, addrs: &BTreeMap<String, SocketAddr>, links: &Links) -> Vec<NodeSpec> {
    let ids: Vec<String> = addrs.keys().cloned().collect();
    ids.iter()
        .map(|id| {
            let dir = run_dir.join("nodes");
            let data_dir = dir.join(id).join("data");
            let mut args: Vec<String> = vec![s.protocol.clone(), "--id".into(), id.clone(), "--listen".into(), addrs[id].to_string()];
            args.extend(["--data-dir".into(), data_dir.display().to_string()]);
            for peer in ids.iter().filter(|p| *p != id) {
                args.extend(["--peer".into(), format!("{peer}={}", links.proxy_addr(id, peer))]);
            }
            args.extend(["--workload".into(), s.workload.clone(), "--seed".into(), s.seed.to_string()]);
            args.extend(s.node_args.iter().cloned());
            let clock_file = s.faketime_lib.as_ref().map(|_| dir.join(format!("{id}.faketime")));
            let env = match (&s.faketime_lib, &clock_file) {
                (Some(lib), Some(f)) => faketime::env(lib, f),
                _ => Vec::new(),
            };
            NodeSpec { id: id.clone(), listen: addrs[id], data_dir, log: dir.join(format!("{id}.log")), program: s.node_bin.clone(), args, env, clock_file }
        })
        .collect()
}

/// Turns SIGINT/SIGTERM into a stop of the run; a second signal exits at once (the nodes die
/// with the harness through their parent-death signal).
fn watch_signals(stop: watch::Sender<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else { return };
        for round in 0..2 {
            tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
            if round == 0 {
                eprintln!("faultline: stopping: healing, final reads, then checking (signal again to abort)");
                let _ = stop.send(true);
            } else {
                eprintln!("faultline: aborted");
                std::process::exit(exit::INTERNAL);
            }
        }
    });
}

/// Starts the network and the cluster, runs the workload and the faults, heals, reads.
async fn execute(s: &Settings, run_dir: &Path) -> Result<Outcome, Failure> {
    let started = Instant::now();
    let (rec, sink) = record::open(&run_dir.join("history.jsonl"), started).context("creating history.jsonl")?;
    let ids = s.node_ids();
    let mut addrs = BTreeMap::new();
    for id in &ids {
        addrs.insert(id.clone(), cluster::free_port().context("finding a free port")?);
    }
    let links = Links::start(&ids, &addrs, s.seed).await.context("starting the proxy network")?;
    let cluster = match Cluster::start(node_specs(s, run_dir, &addrs, &links)).await {
        Ok(c) => c,
        Err(e) => {
            links.shutdown().await;
            drop(rec);
            let ops = sink.finish().ops;
            return Ok(Outcome { history: History::from_ops(ops), started, workload_s: 0.0, extra_stats: Map::new(), teardown_errors: vec![], data_dirs: vec![], fatal: Some(e) });
        }
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    watch_signals(stop_tx.clone());
    let mut wopts = WorkloadOptions { concurrency: s.concurrency, ..WorkloadOptions::default() };
    apply_node_args(&mut wopts, &s.node_args);
    let workload = faultline_workloads::by_name(&s.workload, s.seed, &wopts).map_err(|e| exit::usage(format!("--workload: {e}")))?;
    let checker_params = workload.checker_params();
    let node_list: Vec<(String, SocketAddr)> = addrs.iter().map(|(k, v)| (k.clone(), *v)).collect();
    let shared = Arc::new(clients::Shared::new(workload, node_list.clone(), rec.clone(), s.rate, s.request_timeout, s.concurrency));
    let workers: Vec<_> = (0..s.concurrency).map(|slot| tokio::spawn(clients::worker(shared.clone(), slot, stop_rx.clone()))).collect();
    let nemesis = nemesis::Nemesis::new(cluster, links, rec.clone(), ChaCha8Rng::seed_from_u64(s.seed ^ 0x6e656d65), s.request_timeout);
    let sched = tokio::spawn(schedule::run(nemesis, s.faults.clone(), s.nemesis_interval, ChaCha8Rng::seed_from_u64(s.seed ^ 0x7363), stop_rx.clone()));
    let progress = tokio::spawn(progress::show(rec.counters.clone(), s.time_limit, stop_rx.clone()));
    let mut limit_rx = stop_rx.clone();
    tokio::select! {
        _ = tokio::time::sleep(s.time_limit) => {}
        _ = limit_rx.wait_for(|v| *v) => {}
    }
    let _ = stop_tx.send(true);
    let mut last_process = 0;
    for w in workers {
        last_process = last_process.max(w.await.unwrap_or(0));
    }
    let workload_s = started.elapsed().as_secs_f64();
    let _ = progress.await;
    let (mut nemesis, mut teardown_errors) = sched.await.map_err(|e| anyhow::anyhow!("the nemesis failed: {e}"))?;
    if let Err(e) = nemesis.heal_all().await {
        teardown_errors.push(format!("healing: {e:#}"));
    }
    let reads = shared.workload.lock().map(|w| w.final_reads()).unwrap_or_default();
    tokio::time::sleep(QUIET).await;
    for id in &ids {
        if let Err(e) = nemesis.cluster.wait_ready(id, cluster::READY_TIMEOUT).await {
            teardown_errors.push(format!("{e:#}"));
        }
    }
    let converge = s.checkers.iter().any(|c| c.name == "convergence");
    let finals = finals::final_reads(&rec, &node_list, &reads, s.request_timeout, last_process + 1, converge).await;
    let mut extra = Map::new();
    extra.insert("final_reads".into(), final_reads_json(&finals, &reads));
    extra.insert("final_read_rounds".into(), json!(finals.rounds));
    extra.insert("time_to_converge_ms".into(), json!(finals.time_to_converge_ms));
    extra.insert("links".into(), nemesis.links.stats_json());
    extra.insert("checker_params".into(), Value::Object(checker_params));
    let data_dirs = nemesis.cluster.data_dirs();
    let (mut cluster, links) = nemesis.into_parts();
    cluster.stop_all();
    links.shutdown().await;
    drop((rec, shared, cluster));
    let recorded = sink.finish();
    if let Some(e) = recorded.error {
        teardown_errors.push(format!("writing history.jsonl: {e}"));
    }
    Ok(Outcome { history: History::from_ops(recorded.ops), started, workload_s, extra_stats: extra, teardown_errors, data_dirs, fatal: None })
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
fn final_reads_json(finals: &finals::Finals, reads: &[faultline_workloads::OpSpec]) -> Value {
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

/// Runs the checkers, writes results.json and the report, prints the verdict.
fn finish(s: &Settings, run_dir: &Path, outcome: Outcome) -> Result<i32, Failure> {
    let params = outcome.extra_stats.get("checker_params").and_then(Value::as_object).cloned().unwrap_or_default();
    let specs: Vec<CheckerSpec> = claims::with_params(s.checkers.clone(), &params);
    let opts = CheckOptions { budget: s.check_budget, ..CheckOptions::default() };
    let (valid, checkers) = if outcome.fatal.is_some() {
        (Validity::Unknown, Map::new())
    } else {
        let report = registry::run_all(&specs, &outcome.history, &opts);
        (report.valid, report.checkers_json())
    };
    let mut stats = stats::stats_json(&outcome.history.ops, outcome.workload_s);
    stats.insert("run_s".into(), json!((outcome.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0));
    for (k, v) in outcome.extra_stats {
        stats.insert(k, v);
    }
    if !outcome.teardown_errors.is_empty() {
        stats.insert("teardown_error".into(), json!(outcome.teardown_errors.join("; ")));
    }
    let mut results = json!({"valid": valid.to_json(), "checkers": checkers, "stats": stats});
    if let Some(e) = &outcome.fatal {
        results["error"] = json!(format!("{e:#}"));
    }
    store::write_json(&run_dir.join("results.json"), &results).context("writing results.json")?;
    if let Err(e) = store::link_latest(&s.results, run_dir) {
        eprintln!("faultline: warning: updating the latest links: {e}");
    }
    write_reports(&s.results, run_dir);
    if let Some(e) = outcome.fatal {
        return Err(Failure::Internal(e));
    }
    if valid == Validity::Valid && !s.keep {
        for d in &outcome.data_dirs {
            let _ = std::fs::remove_dir_all(d);
            // `nodes/<id>/` held only the data directory; remove it too when it is empty.
            if let Some(parent) = d.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
    print_verdict(s, &results, valid, &outcome.teardown_errors);
    Ok(exit::of_validity(valid))
}

/// The run report and the results index; a failure here is a warning, never a verdict.
fn write_reports(results: &Path, run_dir: &Path) {
    if let Err(e) = crate::report::write_run_report(run_dir) {
        eprintln!("faultline: warning: writing the report: {e:#}");
    }
    if let Err(e) = crate::report::write_index(results) {
        eprintln!("faultline: warning: writing the index: {e:#}");
    }
}

fn verdict_word(v: &Value) -> &'static str {
    match Validity::from_json(v) {
        Some(Validity::Valid) => "valid",
        Some(Validity::Invalid) => "INVALID",
        _ => "unknown",
    }
}

fn print_verdict(s: &Settings, results: &Value, valid: Validity, teardown: &[String]) {
    if let Some(m) = results["checkers"].as_object() {
        for (name, r) in m {
            let why = r.get("error").and_then(Value::as_str).map(|e| format!(" ({e})")).unwrap_or_default();
            println!("  {name}: {}{why}", verdict_word(&r["valid"]));
        }
    }
    let st = &results["stats"];
    println!(
        "ops: ok {} fail {} info {}; availability {}; latency p50 {} ms, p99 {} ms",
        st["ops_total"]["ok"], st["ops_total"]["fail"], st["ops_total"]["info"], st["availability"], st["latency_ms"]["p50"], st["latency_ms"]["p99"]
    );
    for t in teardown {
        println!("teardown error: {t}");
    }
    println!("verdict: {}", verdict_word(&valid.to_json()));
    println!("rerun: {}", store::rerun_command(s));
}
