//! `faultline test`: one run of one protocol under one workload and a schedule of faults.
//!
//! The steps, each in its own module:
//! 1. [`settings`] validates the flags and asks the node binary what the protocol claims;
//!    [`claims`] turns the claims (or `--check`) into checkers.
//! 2. [`store`] creates the run directory and writes `test.json`; [`record`] streams the
//!    history to `history.jsonl`.
//! 3. [`transport`] starts the network between the nodes — [`links`]' proxies for the TCP node
//!    contract, the Maelstrom router for stdio nodes — and [`cluster`] the nodes (libfaketime
//!    preloaded when the clock nemesis is on, see [`faketime`]).
//! 4. [`clients`] drive the workload while [`schedule`] has the [`nemesis`] break things;
//!    [`progress`] reports on stderr.
//! 5. At the time limit or on the first SIGINT/SIGTERM: clients stop, every fault heals,
//!    [`finals`] reads every node, the checkers run (even when teardown failed), [`health`]
//!    judges whether the run can vouch for anything, and `results.json` ([`stats`]) and the
//!    report are written. The exit code is the verdict's, made unknown (2) by a failed health
//!    judgment or an interruption unless a guarantee was shown violated (1).
//!
//! Whatever ends the process once the run directory exists — an error, a panic, a second
//! signal, the watchdog — `results.json` is written and every node is killed on the way out
//! (see [`crate::lifecycle`]).

pub mod claims;
pub mod clients;
pub mod cluster;
pub mod faketime;
pub mod faults;
pub mod finals;
pub mod health;
pub mod links;
pub mod nemesis;
pub mod observe;
pub mod progress;
pub mod record;
pub mod schedule;
pub mod settings;
pub mod sides;
pub mod staleness;
pub mod stats;
pub mod store;
pub mod transport;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use faultline_checkers::history::History;
use faultline_checkers::registry::{self, CheckerSpec};
use faultline_checkers::{CheckOptions, Validity};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use tokio::sync::watch;

use crate::cli::TestArgs;
use crate::exit::{self, Failure};
use cluster::Cluster;
use links::Links;
use settings::Settings;

/// What the asynchronous part of a run hands back for checking.
pub(crate) struct Outcome {
    pub(crate) history: History,
    pub(crate) started: Instant,
    pub(crate) workload_s: f64,
    pub(crate) extra_stats: Map<String, Value>,
    pub(crate) teardown_errors: Vec<String>,
    pub(crate) facts: health::Facts,
    pub(crate) data_dirs: Vec<PathBuf>,
    /// Set when the run could not even start (the cluster failed): exit 255 after writing results.
    pub(crate) fatal: Option<anyhow::Error>,
}

impl Outcome {
    /// An outcome of a run that failed before or while starting: the history recorded so far.
    pub(crate) fn failed(history: History, started: Instant, e: anyhow::Error) -> Outcome {
        let (workload_s, extra_stats, teardown_errors, facts, data_dirs) = Default::default();
        Outcome { history, started, workload_s, extra_stats, teardown_errors, facts, data_dirs, fatal: Some(e) }
    }
}

/// `faultline test`.
pub fn main(args: TestArgs) -> Result<i32, Failure> {
    let settings = settings::validate(&args)?;
    crate::lifecycle::become_subreaper();
    crate::lifecycle::start_guardian();
    crate::lifecycle::sweep_faketime_shm();
    let (stop_tx, stop_rx) = watch::channel(false);
    crate::lifecycle::handle_signals(
        move |_| {
            let _ = stop_tx.send(true);
        },
        exit::UNKNOWN,
    );
    let started_at = chrono::Utc::now();
    let run_dir = store::create_run_dir(&settings, started_at).with_context(|| format!("creating a run directory under {}", settings.results.display()))?;
    store::write_json(&run_dir.join("test.json"), &store::test_json(&settings, started_at)).context("writing test.json")?;
    crate::out!("run directory: {}", run_dir.display());
    let abort_settings = settings.clone();
    let abort_dir = run_dir.clone();
    crate::lifecycle::on_abort(move |why| write_aborted(&abort_settings, &abort_dir, why));
    arm_watchdog(&settings);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_and_finish(&settings, &run_dir, stop_rx)));
    let code = match result {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_default();
            crate::lifecycle::kill_everything();
            write_aborted(&settings, &run_dir, &format!("internal error: the harness panicked: {msg}"));
            Err(Failure::Internal(anyhow::anyhow!("the harness panicked: {msg}")))
        }
    };
    crate::lifecycle::kill_everything();
    code
}

/// The run itself, over the transport of `--node-protocol`.
async fn execute(s: &Settings, run_dir: &Path, stop_rx: watch::Receiver<bool>) -> Result<Outcome, Failure> {
    if s.node_protocol == "maelstrom" {
        transport::execute::<crate::maelstrom::run::Maelstrom>(s, run_dir, stop_rx).await
    } else {
        transport::execute::<transport::Tcp>(s, run_dir, stop_rx).await
    }
}

/// Runs the test and writes its results; every error after this point still writes results.json.
fn run_and_finish(settings: &Settings, run_dir: &Path, stop_rx: watch::Receiver<bool>) -> Result<i32, Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("starting the runtime")?;
    let outcome = rt.block_on(execute(settings, run_dir, stop_rx));
    rt.shutdown_timeout(Duration::from_secs(2));
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            let err = match e {
                Failure::Internal(e) => e,
                Failure::Usage(m) => anyhow::anyhow!(m),
            };
            let history = faultline_checkers::history::read_jsonl(&run_dir.join("history.jsonl")).unwrap_or_default();
            Outcome::failed(history, Instant::now(), err)
        }
    };
    finish(settings, run_dir, outcome)
}

/// results.json of a run that never reached its own finish (second signal, watchdog, panic):
/// the checkers run on the history recorded so far, with a short budget, and the run is marked
/// interrupted. Never overwrites the results of a run that finished.
fn write_aborted(s: &Settings, run_dir: &Path, why: &str) {
    let path = run_dir.join("results.json");
    if path.exists() {
        return;
    }
    // Bound the checking: this runs on the way out, and must never hang the exit.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(30));
        std::process::exit(exit::UNKNOWN);
    });
    let history = faultline_checkers::history::read_jsonl(&run_dir.join("history.jsonl")).unwrap_or_default();
    let opts = CheckOptions { budget: s.check_budget.min(Duration::from_secs(20)), ..CheckOptions::default() };
    let report = registry::run_all(&s.checkers, &history, &opts);
    let valid = if report.valid == Validity::Invalid { Validity::Invalid } else { Validity::Unknown };
    let results = json!({
        "valid": valid.to_json(), "checkers": report.checkers_json(),
        "health": {"ok": false, "reasons": [why]}, "interrupted": true, "interrupted_by": why,
        "stats": stats::stats_json(&history.ops, 0.0),
    });
    let _ = store::write_json(&path, &results);
    write_reports(&s.results, run_dir);
    eprintln!("faultline: {why}; results.json written from the history recorded so far");
}

/// A pause at the start of each teardown phase (heal, final reads, checking), from
/// `FAULTLINE_PHASE_DELAY_MS`: a testing aid that lets a test land a signal inside a phase.
fn phase_delay() -> Duration {
    let ms = std::env::var("FAULTLINE_PHASE_DELAY_MS").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis(ms.min(60_000))
}

/// Slack on top of the workload and checking time before the watchdog gives up on a run.
const WATCHDOG_SLACK: Duration = Duration::from_secs(180);

/// Bounds the whole run: should any step of teardown hang (a node that never answers, a task
/// that never ends), the harness kills every node, writes results.json from the history
/// streamed so far (marked interrupted by the watchdog) and exits 2 instead of hanging a
/// nightly job.
fn arm_watchdog(s: &Settings) {
    let limit = s.time_limit + s.check_budget + WATCHDOG_SLACK;
    let _ = std::thread::Builder::new().name("faultline-watchdog".into()).spawn(move || {
        std::thread::sleep(limit);
        eprintln!("faultline: the run did not finish within {} s; the watchdog stops it", limit.as_secs());
        crate::lifecycle::mark_watchdog();
        crate::lifecycle::emergency_exit(exit::UNKNOWN, "interrupted by the watchdog: the run did not finish in time");
    });
}

/// The stop signal of a run: the signal handler's channel, relayed into one that the time
/// limit can set too.
pub(crate) struct Stop {
    pub tx: watch::Sender<bool>,
    pub rx: watch::Receiver<bool>,
    relay: tokio::task::JoinHandle<()>,
}

impl Stop {
    pub(crate) fn relay(mut signal_rx: watch::Receiver<bool>) -> Stop {
        let tx = watch::Sender::new(false);
        let relay_tx = tx.clone();
        let relay = tokio::spawn(async move {
            if signal_rx.wait_for(|v| *v).await.is_ok() {
                let _ = relay_tx.send(true);
            }
        });
        let rx = tx.subscribe();
        Stop { tx, rx, relay }
    }
}

/// What the workload phase hands back.
pub(crate) struct Phase {
    pub nemesis: nemesis::Nemesis,
    pub teardown_errors: Vec<String>,
    /// The highest client process number used.
    pub last_process: u64,
    pub workload_s: f64,
    pub heal_error: Option<String>,
}

/// The workload phase, the same for every node protocol: the nemesis on its schedule and the
/// progress line while `workers` run, until the time limit or a stop; then every fault healed.
pub(crate) async fn drive(s: &Settings, cluster: Cluster, links: Links, rec: &record::Recorder, workers: Vec<tokio::task::JoinHandle<u64>>, stop: Stop, started: Instant) -> Result<Phase, Failure> {
    let nemesis = nemesis::Nemesis::new(cluster, links, rec.clone(), ChaCha8Rng::seed_from_u64(s.seed ^ 0x6e656d65), s.request_timeout);
    let sched = tokio::spawn(schedule::run(nemesis, s.faults.clone(), s.nemesis_interval, ChaCha8Rng::seed_from_u64(s.seed ^ 0x7363), stop.rx.clone()));
    let progress = tokio::spawn(progress::show(rec.counters.clone(), s.time_limit, stop.rx.clone()));
    let mut limit_rx = stop.rx.clone();
    tokio::select! {
        _ = tokio::time::sleep(s.time_limit) => {}
        _ = limit_rx.wait_for(|v| *v) => {}
    }
    let _ = stop.tx.send(true);
    let mut last_process = 0;
    for w in workers {
        last_process = last_process.max(w.await.unwrap_or(0));
    }
    let workload_s = started.elapsed().as_secs_f64();
    let _ = progress.await;
    stop.relay.abort();
    let (mut nemesis, teardown_errors) = sched.await.map_err(|e| anyhow::anyhow!("the nemesis failed: {e}"))?;
    crate::out!("healing every fault ...");
    tokio::time::sleep(phase_delay()).await;
    let heal_error = nemesis.heal_all().await.err().map(|e| format!("{e:#}"));
    Ok(Phase { nemesis, teardown_errors, last_process, workload_s, heal_error })
}

/// Runs the checkers, judges the run's health, writes results.json and the report, prints the
/// verdict.
fn finish(s: &Settings, run_dir: &Path, mut outcome: Outcome) -> Result<i32, Failure> {
    let params = outcome.extra_stats.get("checker_params").and_then(Value::as_object).cloned().unwrap_or_default();
    let specs: Vec<CheckerSpec> = claims::with_params(s.checkers.clone(), &params);
    let opts = CheckOptions { budget: s.check_budget, ..CheckOptions::default() };
    let checked_at = Instant::now();
    let (checked, checkers) = if outcome.history.ops.is_empty() {
        (Validity::Unknown, Map::new())
    } else {
        // Whatever was recorded before a failure is still checked: a violation in it is real.
        crate::out!("checking {} events ...", outcome.history.ops.len());
        std::thread::sleep(phase_delay());
        let report = registry::run_all(&specs, &outcome.history, &opts);
        (report.valid, report.checkers_json())
    };
    let check_s = checked_at.elapsed().as_secs_f64();
    // A signal during checking still marks the run: its verdict may rest on a cut-short check.
    outcome.facts.interrupted = crate::lifecycle::interrupted().map(str::to_string);
    let mut health = health::judge(&outcome.history.ops, &specs, &outcome.facts);
    if let Some(e) = &outcome.fatal {
        health.reasons.insert(0, format!("the run failed: {e:#}"));
    }
    let valid = match checked {
        Validity::Invalid => Validity::Invalid,
        v if health.ok() => v,
        _ => Validity::Unknown,
    };
    let mut stats = stats::stats_json(&outcome.history.ops, outcome.workload_s);
    stats.extend(stats::cap_measures(&outcome.history.ops, s.nodes));
    stats.insert("run_s".into(), json!((outcome.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0));
    stats.insert("check_s".into(), json!((check_s * 1000.0).round() / 1000.0));
    for (k, v) in std::mem::take(&mut outcome.extra_stats) {
        stats.insert(k, v);
    }
    if !outcome.teardown_errors.is_empty() {
        stats.insert("teardown_error".into(), json!(outcome.teardown_errors.join("; ")));
    }
    let mut results = json!({
        "valid": valid.to_json(), "checkers": checkers, "health": health.to_json(),
        "interrupted": outcome.facts.interrupted.is_some(), "stats": stats,
    });
    if let Some(by) = &outcome.facts.interrupted {
        results["interrupted_by"] = json!(by);
    }
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
        remove_data_dirs(&outcome.data_dirs);
    }
    print_verdict(s, run_dir, &results, valid, &outcome.teardown_errors);
    Ok(exit::of_validity(valid))
}

/// Node data directories are only evidence; a valid run does not need them.
fn remove_data_dirs(dirs: &[PathBuf]) {
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
        // `nodes/<id>/` held only the data directory; remove it too when it is empty.
        if let Some(parent) = d.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
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

/// One line that says what a failed checker found: the first anomaly's explanation when the
/// checker gives one, else the fields that name what went wrong.
fn violation_line(r: &Value) -> String {
    if let Some(bad) = r["bad_reads"].get(0) {
        let node = bad["read"]["node"].as_str().unwrap_or("?");
        let problems: Vec<String> = bad["problems"].as_array().into_iter().flatten().map(|p| match p["kind"].as_str() {
            Some("wrong_total") => format!("total {} instead of {}", p["sum"], p["expected"]),
            Some(k) => k.replace('_', " "),
            None => p.to_string(),
        }).collect();
        return format!("{} of {} reads broke the invariant; the first (event {}, on {node}): {}", r["bad_count"], r["reads"], bad["read"]["complete_index"], problems.join(", "));
    }
    let first = r["anomalies"].get(0).unwrap_or(&Value::Null);
    let key = first.get("key").map(|k| format!("key {k}: ")).unwrap_or_default();
    let text = first["explanation"].as_str().or_else(|| r["explanation"].as_str()).map(str::to_string).unwrap_or_else(|| {
        let named: Vec<String> = ["lost", "unexpected", "duplicated", "bad_reads", "negative", "wrong_total", "diverged", "missing"]
            .iter()
            .filter_map(|f| r.get(*f).filter(|v| !v.is_null() && *v != &Value::Array(vec![])).map(|v| format!("{f} {}", v.to_string().chars().take(120).collect::<String>())))
            .collect();
        if named.is_empty() { "see report.html".to_string() } else { named.join("; ") }
    });
    let line = format!("{key}{text}");
    if line.chars().count() > 400 { format!("{}…", line.chars().take(400).collect::<String>()) } else { line }
}

fn print_verdict(s: &Settings, run_dir: &Path, results: &Value, valid: Validity, teardown: &[String]) {
    if let Some(m) = results["checkers"].as_object() {
        for (name, r) in m {
            let why = r.get("error").and_then(Value::as_str).map(|e| format!(" ({e})")).unwrap_or_default();
            crate::out!("  {name}: {}{why}", verdict_word(&r["valid"]));
            if r["valid"] == false {
                crate::out!("    {}", violation_line(r));
            }
        }
    }
    let st = &results["stats"];
    crate::out!("checked in {} s", st["check_s"]);
    crate::out!(
        "ops: ok {} fail {} info {}; availability {}; latency p50 {} ms, p99 {} ms",
        st["ops_total"]["ok"], st["ops_total"]["fail"], st["ops_total"]["info"], st["availability"], st["latency_ms"]["p50"], st["latency_ms"]["p99"]
    );
    for t in teardown {
        crate::out!("teardown error: {t}");
    }
    if let Some(reasons) = results["health"]["reasons"].as_array().filter(|r| !r.is_empty()) {
        crate::out!("this run cannot vouch for the system:");
        for r in reasons {
            crate::out!("  - {}", r.as_str().unwrap_or_default());
        }
    }
    crate::out!("verdict: {}", verdict_word(&valid.to_json()));
    crate::out!("report: {}", run_dir.join("report.html").display());
    crate::out!("rerun: {}", store::rerun_command(s));
}
