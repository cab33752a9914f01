//! `faultline hunt`: runs one test configuration with seed after seed (`--jobs` of them side by
//! side, one wave of consecutive seeds at a time) until a finding — a
//! guarantee violated, or a node that exited on its own (a safety assertion; unless
//! `--allow-crashes`) — or until the time budget is spent, then shrinks the failing run. The
//! exit code is the failing run's (1 for a violation, 2 for a crash), or the worst of the runs.
//!
//! Every run is a `faultline test` subprocess (as in a suite), so each one is exactly what its
//! printed rerun command repeats, and a crash of one run cannot take the hunt down. The seed
//! fixes the whole fault schedule (which faults, in which order, on which nodes, at which
//! jittered times), so replaying a seed with a shorter time limit replays a prefix of the same
//! schedule. Shrinking tries, in order: half the time limit, one nemesis kind fewer, half the
//! clients; a candidate is kept when one of `--replays` replays of the same seed is still
//! invalid (timing makes a replay differ in detail, never in its schedule). It stops when no
//! candidate reproduces or the budget is spent. `hunt.json` in the results directory records
//! every seed tried, the first violation and the shrunk command.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cli::{HuntArgs, TestArgs};
use crate::exit::{self, usage, Failure};
use crate::report::subprocess::{self, Limits};
use crate::run::settings::{self, FaultKind};

/// Time a run may take beyond its time limit (start-up, heal, final reads, checking).
const RUN_SLACK: Duration = Duration::from_secs(120);
/// The shortest time limit shrinking goes down to, seconds.
const MIN_TIME_LIMIT_S: f64 = 2.0;

/// Parses a budget: `90` (seconds), `90s`, `10m`, `1h`, `1.5m`.
pub fn parse_budget(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let scale = match unit {
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("--budget: unknown unit {unit:?} in {text:?} (use s, m or h)")),
    };
    let v: f64 = num.trim().parse().map_err(|_| format!("--budget: {text:?} is not a duration (e.g. 90s, 10m, 1h)"))?;
    let secs = v * scale;
    if !secs.is_finite() || secs <= 0.0 || secs > 30.0 * 86_400.0 {
        return Err(format!("--budget: {text:?} must be between 0 and 30 days"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The `faultline test` arguments of a configuration with `seed`.
pub fn test_argv(a: &TestArgs, seed: u64) -> Vec<String> {
    let mut v: Vec<String> = vec!["test".into(), "--protocol".into(), a.protocol.clone()];
    let mut flag = |k: &str, val: String| {
        v.push(format!("--{k}"));
        v.push(val);
    };
    if let Some(w) = &a.workload {
        flag("workload", w.clone());
    }
    if let Some(nemesis) = &a.nemesis {
        flag("nemesis", nemesis.join(","));
    }
    flag("nodes", a.nodes.to_string());
    flag("concurrency", a.concurrency.to_string());
    flag("rate", a.rate.to_string());
    flag("time-limit", a.time_limit.to_string());
    flag("nemesis-interval", a.nemesis_interval.to_string());
    flag("request-timeout-ms", a.request_timeout_ms.to_string());
    flag("check-budget", a.check_budget.to_string());
    flag("seed", seed.to_string());
    flag("results", a.results.display().to_string());
    if a.node_protocol != "tcp" {
        flag("node-protocol", a.node_protocol.clone());
    }
    if let Some(ms) = a.latency_ms {
        flag("latency-ms", ms.to_string());
    }
    if let Some(d) = &a.latency_dist {
        flag("latency-dist", d.clone());
    }
    if let Some(b) = &a.node_bin {
        flag("node-bin", b.display().to_string());
    }
    if !a.check.is_empty() {
        flag("check", a.check.join(","));
    }
    if let Some(n) = &a.name {
        flag("name", n.clone());
    }
    if let Some(l) = &a.label {
        flag("label", l.clone());
    }
    for arg in &a.node_args {
        v.push(format!("--node-arg={arg}"));
    }
    if a.allow_crashes {
        v.push("--allow-crashes".into());
    }
    if a.keep {
        v.push("--keep".into());
    }
    v
}

/// One run of the hunt, as `hunt.json` records it.
#[derive(Clone, Debug)]
struct Tried {
    seed: u64,
    code: i32,
    run_dir: Option<PathBuf>,
    rerun: Option<String>,
    test_s: f64,
    /// Nodes that exited on their own in this run (a safety assertion, a panic): a finding even
    /// when no checker saw a violation.
    crashes: usize,
    /// The checkers that found a violation.
    invalid: Vec<String>,
}

impl Tried {
    fn json(&self) -> Value {
        json!({"seed": self.seed, "exit": self.code, "run_dir": self.run_dir, "rerun": self.rerun, "test_s": self.test_s,
               "crashes": self.crashes, "invalid_checkers": self.invalid})
    }

    /// A violated guarantee, or a node that died by itself.
    fn is_finding(&self, crashes_count: bool) -> bool {
        self.code == exit::INVALID || (crashes_count && self.crashes > 0)
    }
}

/// Runs one configuration with one seed.
fn run_once(exe: &std::path::Path, a: &TestArgs, seed: u64) -> Tried {
    let limits = Limits { timeout: Duration::from_secs_f64(a.time_limit + a.check_budget) + RUN_SLACK, grace: Duration::from_secs(20) };
    let f = subprocess::run(exe, &test_argv(a, seed), limits, None);
    let line = |prefix: &str| f.stdout.iter().find_map(|l| l.strip_prefix(prefix).map(str::to_string));
    let run_dir = line("run directory: ").map(PathBuf::from);
    let results = run_dir.as_ref().and_then(|d| std::fs::read_to_string(d.join("results.json")).ok()).and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let results = results.unwrap_or(Value::Null);
    let test_s = results["stats"]["duration_s"].as_f64().unwrap_or(a.time_limit);
    let crashes = results["health"]["crashes"].as_array().map_or(0, Vec::len);
    let invalid = results["checkers"].as_object().map(|m| m.iter().filter(|(_, r)| r["valid"] == false).map(|(k, _)| k.clone()).collect()).unwrap_or_default();
    Tried { seed, code: f.code.unwrap_or(exit::INTERNAL), run_dir, rerun: line("rerun: "), test_s, crashes, invalid }
}

fn verdict_word(code: i32) -> &'static str {
    match code {
        exit::VALID => "valid",
        exit::INVALID => "INVALID",
        exit::UNKNOWN => "unknown",
        exit::USAGE => "bad usage",
        _ => "harness failed",
    }
}

/// The next smaller configurations to try, most promising first.
fn candidates(a: &TestArgs) -> Vec<(String, TestArgs)> {
    let mut out = Vec::new();
    let half = (a.time_limit / 2.0).max(MIN_TIME_LIMIT_S);
    if half < a.time_limit && half >= a.nemesis_interval * 2.0 {
        let mut c = a.clone();
        c.time_limit = half;
        out.push((format!("time limit {half} s"), c));
    }
    let kinds = settings::parse_nemeses(&a.effective_nemesis()).unwrap_or_default();
    if kinds.len() > 1 {
        for drop in &kinds {
            let mut c = a.clone();
            c.nemesis = Some(kinds.iter().filter(|k| *k != drop).map(|k: &FaultKind| k.name().to_string()).collect());
            out.push((format!("without {}", drop.name()), c));
        }
    }
    if a.concurrency > 1 {
        let mut c = a.clone();
        c.concurrency = a.concurrency / 2;
        out.push((format!("{} clients", c.concurrency), c));
    }
    out
}

/// `faultline hunt`.
pub fn main(args: HuntArgs) -> Result<i32, Failure> {
    let budget = parse_budget(&args.budget).map_err(usage)?;
    if args.replays == 0 || args.replays > 20 {
        return Err(usage(format!("--replays: must be 1 to 20, got {}", args.replays)));
    }
    // Bad flags are caught here, once, not in every run.
    let checked = settings::validate(&args.test)?;
    let exe = std::env::current_exe().map_err(|e| Failure::Internal(e.into()))?;
    let interrupted = subprocess::interrupt_children();
    let started = Instant::now();
    let left = || budget.saturating_sub(started.elapsed());
    let jobs = match args.jobs {
        Some(j @ 1..=64) => j,
        Some(j) => return Err(usage(format!("--jobs: must be 1 to 64, got {j}"))),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()).min(64),
    };
    let mut seed = checked.seed;
    let mut tried: Vec<Tried> = Vec::new();
    let mut found: Option<Tried> = None;
    crate::out!("hunting {} / {} / {} for {:?}, from seed {seed}, {jobs} at a time", checked.protocol, checked.workload, checked.nemesis_names.join(","), budget);
    while found.is_none() && !interrupted.load(Ordering::SeqCst) && left() >= checked.time_limit {
        // One wave: `jobs` consecutive seeds side by side. The wave's lowest finding wins, so
        // the result does not depend on which run happened to finish first.
        let wave: Vec<Tried> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..jobs as u64).map(|i| {
                let (exe, test) = (&exe, &args.test);
                s.spawn(move || run_once(exe, test, seed.wrapping_add(i)))
            }).collect();
            handles.into_iter().map(|h| h.join().expect("a hunt run panicked")).collect()
        });
        for t in wave {
            let crashed = if t.crashes > 0 { format!(", {} node crash(es)", t.crashes) } else { String::new() };
            crate::out!("  seed {}: {}{crashed} ({:.1} s of test){}", t.seed, verdict_word(t.code), t.test_s, t.run_dir.as_ref().map(|d| format!(" {}", d.display())).unwrap_or_default());
            if t.code == exit::USAGE {
                return Err(usage(format!("faultline test refused seed {}: see its output", t.seed)));
            }
            if found.is_none() && t.is_finding(!args.test.allow_crashes) {
                found = Some(t.clone());
            }
            tried.push(t);
        }
        seed = seed.wrapping_add(jobs as u64);
    }
    let test_s: f64 = tried.iter().map(|t| t.test_s).sum();
    let mut report = json!({
        "protocol": checked.protocol, "workload": checked.workload, "nemesis": checked.nemesis_names,
        "budget_s": budget.as_secs_f64(), "jobs": jobs, "seeds_tried": tried.len(), "test_s_total": test_s,
        "tried": tried.iter().map(Tried::json).collect::<Vec<_>>(), "interrupted": interrupted.load(Ordering::SeqCst),
    });
    let code = match &found {
        Some(f) => {
            let what = if f.code == exit::INVALID { "violation" } else { "node crash" };
            crate::out!("{what} after {} seed(s), {test_s:.1} s of test time: {}", tried.len(), f.run_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default());
            crate::out!("rerun: {}", f.rerun.clone().unwrap_or_default());
            report["first_violation"] = f.json();
            if !args.no_shrink {
                report["shrunk"] = shrink(&exe, &args, f.seed, &left, &interrupted);
            }
            f.code
        }
        None => {
            let worst = exit::worst(tried.iter().map(|t| t.code));
            crate::out!("no violation in {} seed(s), {test_s:.1} s of test time", tried.len());
            if interrupted.load(Ordering::SeqCst) { exit::worst([worst, exit::UNKNOWN]) } else { worst }
        }
    };
    let path = args.test.results.join("hunt.json");
    if let Err(e) = crate::run::store::write_json(&path, &report) {
        eprintln!("faultline: warning: writing {}: {e}", path.display());
    }
    Ok(code)
}

/// Shrinks a failing configuration as long as the budget allows; returns what it found.
fn shrink(exe: &std::path::Path, args: &HuntArgs, seed: u64, left: &dyn Fn() -> Duration, interrupted: &std::sync::atomic::AtomicBool) -> Value {
    let mut current = args.test.clone();
    let mut last: Option<Tried> = None;
    let mut steps = Vec::new();
    'outer: loop {
        for (what, cand) in candidates(&current) {
            for _ in 0..args.replays {
                if interrupted.load(Ordering::SeqCst) || left() < Duration::from_secs_f64(cand.time_limit) {
                    break 'outer;
                }
                let t = run_once(exe, &cand, seed);
                if t.is_finding(!cand.allow_crashes) {
                    crate::out!("  shrunk: {what}: still invalid");
                    steps.push(json!(what));
                    current = cand;
                    last = Some(t);
                    continue 'outer;
                }
            }
        }
        break;
    }
    match last {
        Some(t) => {
            crate::out!("shrunk rerun: {}", t.rerun.clone().unwrap_or_default());
            json!({"steps": steps, "run": t.json()})
        }
        None => {
            crate::out!("no smaller configuration reproduced the violation");
            json!({"steps": [], "run": null})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn budgets_parse_with_units_and_reject_nonsense() {
        assert_eq!(parse_budget("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_budget("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_budget("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_budget("1h").unwrap(), Duration::from_secs(3600));
        for bad in ["", "0", "-5m", "10x", "nan", "inf", "1e300"] {
            assert!(parse_budget(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_argv_round_trips_through_the_test_parser_and_candidates_shrink() {
        let cli = crate::cli::Cli::parse_from(["faultline", "hunt", "--protocol", "raft", "--nemesis", "partition,kill", "--node-arg=--bug", "--node-arg=commit-on-one-ack", "--time-limit", "8", "--nemesis-interval", "1"]);
        let crate::cli::Command::Hunt(h) = cli.command else { panic!("not a hunt") };
        let argv = test_argv(&h.test, 5);
        let again = crate::cli::Cli::parse_from(std::iter::once("faultline".to_string()).chain(argv));
        let crate::cli::Command::Test(t) = again.command else { panic!("not a test") };
        assert_eq!((t.seed, t.node_args.clone(), t.nemesis.clone(), t.time_limit), (Some(5), h.test.node_args.clone(), h.test.nemesis.clone(), 8.0));
        let c = candidates(&h.test);
        assert_eq!(c[0].1.time_limit, 4.0);
        assert!(c.iter().any(|(_, a)| a.nemesis == Some(vec!["kill".to_string()])));
        assert!(c.iter().any(|(_, a)| a.concurrency == 5));
    }
}
