//! Benchmark of the linearizability checker on generated histories.
//!
//! `cargo bench -p faultline-checkers --bench linear` runs every case in its own subprocess (so
//! the peak resident memory, VmHWM, belongs to that case alone) and prints one line per case:
//! operations, verdict, check time, operations per second, resident memory before the check
//! (the history itself) and the peak. `-- <name-filter>` runs only matching cases.

#[path = "support/gen.rs"]
mod gen;

use faultline_checkers::linear;
use faultline_checkers::CheckOptions;
use gen::{generate, inject_stale_read, Spec};
use std::time::{Duration, Instant};

struct Case {
    name: &'static str,
    spec: Spec,
    stale: bool,
}

fn cases() -> Vec<Case> {
    let s = |ops, clients, keys, unknown, model| Spec { ops, clients, keys, unknown, model, seed: 7 };
    vec![
        Case { name: "kv-10k-10c-100k", spec: s(10_000, 10, 100, 0.0, "kv"), stale: false },
        Case { name: "kv-100k-20c-1000k-1%info", spec: s(100_000, 20, 1000, 0.01, "kv"), stale: false },
        Case { name: "kv-1M-50c-1000k-1%info", spec: s(1_000_000, 50, 1000, 0.01, "kv"), stale: false },
        Case { name: "kv-1M-50c-1000k-1%info-stale", spec: s(1_000_000, 50, 1000, 0.01, "kv"), stale: true },
        Case { name: "kv-1M-50c-10k-1%info", spec: s(1_000_000, 50, 10, 0.01, "kv"), stale: false },
        Case { name: "cas-20k-50c-2k", spec: s(20_000, 50, 2, 0.0, "cas-register"), stale: false },
        Case { name: "cas-20k-50c-2k-1%info", spec: s(20_000, 50, 2, 0.01, "cas-register"), stale: false },
        Case { name: "cas-20k-50c-2k-stale", spec: s(20_000, 50, 2, 0.0, "cas-register"), stale: true },
        Case { name: "register-20k-20c-1k", spec: s(20_000, 20, 1, 0.0, "register"), stale: false },
        Case { name: "register-20k-20c-1k-1%info", spec: s(20_000, 20, 1, 0.01, "register"), stale: false },
        Case { name: "register-20k-20c-1k-stale", spec: s(20_000, 20, 1, 0.0, "register"), stale: true },
        Case { name: "register-100k-10c-1k", spec: s(100_000, 10, 1, 0.0, "register"), stale: false },
    ]
}

fn status_kb(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn run_case(case: &Case) {
    let mut history = generate(&case.spec);
    if case.stale {
        inject_stale_read(&mut history, 0.9).expect("a stale read can be injected");
    }
    let rss_before_mb = status_kb("VmRSS:") / 1024;
    let opts = CheckOptions { budget: Duration::from_secs(60), ..CheckOptions::default() };
    let started = Instant::now();
    let result = linear::check(&history, case.spec.model, &opts);
    let secs = started.elapsed().as_secs_f64();
    let n_ops = history.calls().map(|c| c.len()).unwrap_or(0);
    println!(
        "{:<32} {:>9} ops {:>3} clients {:>5} keys  {:<8} {:>8.3} s {:>11.0} ops/s  rss-before {:>5} MiB  peak {:>5} MiB",
        case.name,
        n_ops,
        case.spec.clients,
        case.spec.keys,
        serde_json::to_string(&result.valid).unwrap(),
        secs,
        n_ops as f64 / secs,
        rss_before_mb,
        status_kb("VmHWM:") / 1024,
    );
    if result.valid != faultline_checkers::Validity::Valid {
        let mut shown = serde_json::to_string(&result.details).unwrap();
        shown.truncate(600);
        println!("    {shown}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if let Some(pos) = std::env::args().position(|a| a == "--case") {
        let name = std::env::args().nth(pos + 1).unwrap_or_default();
        let case = cases().into_iter().find(|c| c.name == name).expect("known case");
        run_case(&case);
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    for case in cases() {
        if !args.is_empty() && !args.iter().any(|a| case.name.contains(a.as_str())) {
            continue;
        }
        let status = std::process::Command::new(&exe).args(["--case", case.name]).status();
        if !matches!(status, Ok(s) if s.success()) {
            println!("{:<32} failed: {status:?}", case.name);
        }
    }
}
