//! Benchmark of the linearizability checker on generated histories, per history class, with the
//! fast path (`auto`: the fast path on every key it applies to, the search elsewhere) and with
//! the search alone (`search`).
//!
//! `cargo bench -p faultline-checkers --bench linear` runs every (case, engine) pair in its own
//! subprocess (so the peak resident memory, VmHWM, belongs to that pair alone) and prints one
//! line per pair: operations, verdict, check time, operations per second, which path decided
//! the keys, resident memory before the check (the history itself) and the peak; for an
//! invalid verdict, where the injected fault was and where the reported anomaly is.
//! `-- <name-filter>...` runs only matching cases; `-- --engine auto|search` only one engine.
//! `-- --files [<name-filter>...]` runs the file classes instead ([`FILE_CASES`]): the history
//! written as JSONL, then read, paired and checked whole (as `faultline check` does) and paired
//! while reading (`linear::check_jsonl`), each in its own process. `--write NAME --path P`
//! writes one case's history as JSONL; `--check-file NAME --path P --mode whole|stream|search`
//! checks such a file in this process (`search`: streamed, then the search alone; `read` and
//! `decide`: one phase alone, repeated, its fastest and median time);
//! `scripts/bench-check` uses both to time the whole `faultline check` process per class.

#[path = "support/gen.rs"]
mod gen;

use faultline_checkers::linear::{self, Engine};
use faultline_checkers::{CheckOptions, Validity};
use faultline_checkers::history::{read_jsonl, read_jsonl_calls, write_jsonl};
use gen::{generate, inject_double_acquire, inject_double_dequeue, inject_lost_element, inject_stale_read, Spec};
use std::time::{Duration, Instant};

/// What is wrong with a case's history, on purpose.
#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// One read changed to a value overwritten before it began (register classes).
    StaleRead,
    /// One list read missing its first element (append and set classes).
    LostElement,
    /// One dequeue answering an element an earlier dequeue took (queue classes).
    DoubleDequeue,
    /// One failed acquire turned `ok` while another client held the lock (mutex classes).
    DoubleAcquire,
}

struct Case {
    name: &'static str,
    spec: Spec,
    /// The model the history is checked against.
    model: &'static str,
    fault: Fault,
}

fn cases() -> Vec<Case> {
    let s = |ops, clients, keys, unknown, gen_model| Spec { ops, clients, keys, unknown, model: gen_model, seed: 7 };
    let c = |name, spec, model, fault| Case { name, spec, model, fault };
    let mut v = vec![
        c("kv-20k-20c-100k", s(20_000, 20, 100, 0.01, "cas-register"), "kv", Fault::None),
        c("kv-20k-20c-100k-stale", s(20_000, 20, 100, 0.01, "cas-register"), "kv", Fault::StaleRead),
    ];
    for (clients, valid, stale) in [
        (10, "hot-2x10k-10c", "hot-2x10k-10c-stale"),
        (20, "hot-2x10k-20c", "hot-2x10k-20c-stale"),
        (50, "hot-2x10k-50c", "hot-2x10k-50c-stale"),
        (200, "hot-2x10k-200c", "hot-2x10k-200c-stale"),
    ] {
        v.push(c(valid, s(20_000, clients, 2, 0.01, "cas-register"), "cas-register", Fault::None));
        v.push(c(stale, s(20_000, clients, 2, 0.01, "cas-register"), "cas-register", Fault::StaleRead));
    }
    v.extend([
        c("kv-1M-50c-1000k-1%info", s(1_000_000, 50, 1000, 0.01, "cas-register"), "kv", Fault::None),
        c("kv-1M-50c-1000k-1%info-stale", s(1_000_000, 50, 1000, 0.01, "cas-register"), "kv", Fault::StaleRead),
        c("append-20k-20c-100k", s(20_000, 20, 100, 0.01, "append"), "kv", Fault::None),
        c("append-20k-20c-100k-lost", s(20_000, 20, 100, 0.01, "append"), "kv", Fault::LostElement),
        c("set-20k-20c-100k", s(20_000, 20, 100, 0.01, "set"), "set", Fault::None),
        c("set-20k-20c-100k-lost", s(20_000, 20, 100, 0.01, "set"), "set", Fault::LostElement),
        // The earlier cases: `kv-mixed` writes and appends on the same keys (the fast path does
        // not apply, the search decides), `register` one key.
        c("kv-mixed-10k-10c-100k", s(10_000, 10, 100, 0.0, "kv"), "kv", Fault::None),
        c("kv-mixed-1M-50c-1000k-1%info", s(1_000_000, 50, 1000, 0.01, "kv"), "kv", Fault::None),
        c("kv-mixed-1M-50c-1000k-1%info-stale", s(1_000_000, 50, 1000, 0.01, "kv"), "kv", Fault::StaleRead),
        c("kv-mixed-1M-50c-10k-1%info", s(1_000_000, 50, 10, 0.01, "kv"), "kv", Fault::None),
        c("register-20k-20c-1k", s(20_000, 20, 1, 0.0, "register"), "register", Fault::None),
        c("register-20k-20c-1k-stale", s(20_000, 20, 1, 0.0, "register"), "register", Fault::StaleRead),
        c("register-100k-10c-1k", s(100_000, 10, 1, 0.0, "register"), "register", Fault::None),
        // Queues and mutexes: no fast path, the search decides (`auto` = `search`).
        c("fifo-20k-20c-1000k", s(20_000, 20, 1000, 0.0, "queue"), "fifo-queue", Fault::None),
        c("fifo-20k-20c-1000k-1%info", s(20_000, 20, 1000, 0.01, "queue"), "fifo-queue", Fault::None),
        c("fifo-20k-20c-1000k-double", s(20_000, 20, 1000, 0.0, "queue"), "fifo-queue", Fault::DoubleDequeue),
        c("uqueue-20k-20c-1000k", s(20_000, 20, 1000, 0.0, "queue"), "unordered-queue", Fault::None),
        c("uqueue-20k-20c-1000k-double", s(20_000, 20, 1000, 0.0, "queue"), "unordered-queue", Fault::DoubleDequeue),
        c("fifo-2k-5c-1k", s(2_000, 5, 1, 0.0, "queue"), "fifo-queue", Fault::None),
        c("fifo-20k-20c-10k", s(20_000, 20, 10, 0.0, "queue"), "fifo-queue", Fault::None),
        c("mutex-20k-20c-10k", s(20_000, 20, 10, 0.0, "mutex"), "mutex", Fault::None),
        c("mutex-20k-20c-10k-double", s(20_000, 20, 10, 0.0, "mutex"), "mutex", Fault::DoubleAcquire),
        c("mutex-20k-50c-1k", s(20_000, 50, 1, 0.0, "mutex"), "mutex", Fault::None),
        c("mutex-20k-50c-1k-double", s(20_000, 50, 1, 0.0, "mutex"), "mutex", Fault::DoubleAcquire),
    ]);
    v
}

fn status_kb(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// User plus system CPU time of this process so far (from /proc/self/stat, 10 ms ticks): less
/// sensitive than wall time to other sessions on the machine.
fn cpu_seconds() -> f64 {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = text.rsplit(')').next().unwrap_or("");
    let f: Vec<f64> = after.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn engine_name(e: Engine) -> &'static str {
    match e {
        Engine::Auto => "auto",
        Engine::Fast => "fast",
        Engine::Search => "search",
    }
}

fn run_case(case: &Case, engine: Engine) {
    let mut history = generate(&case.spec);
    let injected = match case.fault {
        Fault::None => None,
        Fault::StaleRead => Some(inject_stale_read(&mut history, 0.9).expect("a stale read can be injected")),
        Fault::LostElement => Some(inject_lost_element(&mut history, 0.9).expect("an element can be lost")),
        Fault::DoubleDequeue => Some(inject_double_dequeue(&mut history, 0.9).expect("a dequeue can be doubled")),
        Fault::DoubleAcquire => Some(inject_double_acquire(&mut history, 0.5).expect("an acquire can be doubled")),
    };
    let rss_before_mb = status_kb("VmRSS:") / 1024;
    let opts = CheckOptions { budget: Duration::from_secs(60), ..CheckOptions::default() };
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let result = linear::check_with(&history, case.model, &opts, engine);
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let n_ops = history.calls().map(|c| c.len()).unwrap_or(0);
    let d = |k: &str| result.details.get(k).cloned().unwrap_or_default();
    println!(
        "{:<30} {:<6} {:>8} ops {:>3} clients {:>5} keys  {:<9} {:>7.3} s {:>9.0} ops/s  cpu {:>6.2} s  paths {}  rss-before {:>4} MiB  peak {:>5} MiB",
        case.name,
        engine_name(engine),
        n_ops,
        case.spec.clients,
        case.spec.keys,
        serde_json::to_string(&result.valid).unwrap(),
        secs,
        n_ops as f64 / secs,
        cpu,
        d("paths"),
        rss_before_mb,
        status_kb("VmHWM:") / 1024,
    );
    if result.valid == Validity::Invalid {
        let a = &result.details["anomalies"][0];
        println!("    injected at event {injected:?}; reported: key {} at event {} ({}), {} invalid keys", a["key"], a["violation_event"], a["path"], d("keys_invalid"));
    } else if result.valid == Validity::Unknown {
        println!("    {}", d("error"));
    }
}

/// The file classes: a case's history written as JSONL, then checked from the file as
/// `faultline check` does (read the whole history, pair it, check: `whole`) and paired while
/// reading (`linear::check_jsonl`: `stream`), each in a fresh process.
const FILE_CASES: &[&str] = &["kv-1M-50c-1000k-1%info", "kv-1M-50c-1000k-1%info-stale", "kv-20k-20c-100k"];

fn write_case(case: &Case, path: &str) {
    let mut history = generate(&case.spec);
    if case.fault == Fault::StaleRead {
        inject_stale_read(&mut history, 0.9).expect("a stale read can be injected");
    }
    write_jsonl(std::path::Path::new(path), &history).expect("write the history");
}

fn check_file(name: &str, model: &str, path: &str, mode: &str) {
    let opts = CheckOptions { budget: Duration::from_secs(60), ..CheckOptions::default() };
    let p = std::path::Path::new(path);
    if mode == "read" || mode == "decide" {
        return phases(name, model, p, mode, &opts);
    }
    let started = Instant::now();
    let result = match mode {
        "whole" => linear::check(&read_jsonl(p).expect("read"), model, &opts),
        // The search alone on the streamed calls: what `faultline check` would take without
        // the fast path (`scripts/bench-check` prints it next to the whole process).
        "search" => linear::check_calls_named(&read_jsonl_calls(p).expect("read").0, model, &opts, Engine::Search),
        _ => linear::check_jsonl(p, model, &opts),
    };
    let secs = started.elapsed().as_secs_f64();
    let d = |k: &str| result.details.get(k).cloned().unwrap_or_default();
    println!(
        "{:<30} {:<6} {:>8} ops  {:<9} {:>7.3} s (read, pair and check)  paths {}  peak {:>5} MiB",
        format!("{name} (file)"),
        mode,
        d("ops"),
        serde_json::to_string(&result.valid).unwrap(),
        secs,
        d("paths"),
        status_kb("VmHWM:") / 1024,
    );
}

/// One phase of a check, repeated in this process (`REPEAT`, default 20) for its fastest and
/// median time: `read` streams the file into paired calls; `decide` checks calls read once.
/// Steadier than timing whole processes on a machine that is busy with other work.
fn phases(name: &str, model: &str, p: &std::path::Path, mode: &str, opts: &CheckOptions) {
    let repeat: usize = std::env::var("REPEAT").ok().and_then(|r| r.parse().ok()).unwrap_or(20);
    let calls = read_jsonl_calls(p).expect("read").0;
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..repeat.max(1) {
        let (started, cpu) = (Instant::now(), cpu_ms());
        if mode == "read" {
            std::hint::black_box(read_jsonl_calls(p).expect("read"));
        } else {
            std::hint::black_box(linear::check_calls_named(&calls, model, opts, Engine::Auto));
        }
        walls.push(started.elapsed().as_secs_f64() * 1000.0);
        cpus.push(cpu_ms() - cpu);
    }
    let (first_wall, first_cpu) = (walls[0], cpus[0]);
    walls.sort_by(f64::total_cmp);
    cpus.sort_by(f64::total_cmp);
    println!(
        "{name:<30} {mode:<6} {:>8} calls  wall: first {first_wall:>7.2} fastest {:>7.2} median {:>7.2} ms  cpu: first {first_cpu:>7.2} fastest {:>7.2} median {:>7.2} ms  ({} runs)",
        calls.len(),
        walls[0],
        walls[walls.len() / 2],
        cpus[0],
        cpus[cpus.len() / 2],
        walls.len()
    );
}

/// CPU time of the whole process so far (every thread, also those that ended), in ms.
fn cpu_ms() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 * 1000.0 + t.tv_nsec as f64 / 1e6
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value_of = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    if let (Some(name), Some(path)) = (value_of("--write"), value_of("--path")) {
        write_case(&cases().into_iter().find(|c| c.name == name).expect("known case"), &path);
        return;
    }
    if let (Some(name), Some(path), Some(mode)) = (value_of("--check-file"), value_of("--path"), value_of("--mode")) {
        let case = cases().into_iter().find(|c| c.name == name).expect("known case");
        check_file(&name, case.model, &path, &mode);
        return;
    }
    let engines = match value_of("--engine").as_deref() {
        Some("auto") => vec![Engine::Auto],
        Some("search") => vec![Engine::Search],
        _ => vec![Engine::Auto, Engine::Search],
    };
    if let Some(name) = value_of("--case") {
        let case = cases().into_iter().find(|c| c.name == name).expect("known case");
        run_case(&case, engines[0]);
        return;
    }
    let filters: Vec<&String> = args.iter().enumerate().filter(|(i, a)| !a.starts_with("--") && (*i == 0 || !args[i - 1].starts_with("--engine"))).map(|(_, a)| a).collect();
    let exe = std::env::current_exe().expect("own path");
    let files = args.iter().any(|a| a == "--files");
    if files {
        let dir = std::env::temp_dir();
        for name in FILE_CASES.iter().filter(|n| filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str()))) {
            let path = dir.join(format!("faultline-bench-{}-{name}.jsonl", std::process::id()));
            let path = path.to_string_lossy().to_string();
            let ok = std::process::Command::new(&exe).args(["--write", name, "--path", &path]).status().is_ok_and(|s| s.success());
            for mode in ["whole", "stream"].iter().filter(|_| ok) {
                let status = std::process::Command::new(&exe).args(["--check-file", name, "--path", &path, "--mode", mode]).status();
                if !matches!(status, Ok(s) if s.success()) {
                    println!("{name} (file) {mode} failed: {status:?}");
                }
            }
            let _ = std::fs::remove_file(&path);
        }
        return;
    }
    for case in cases() {
        if !filters.is_empty() && !filters.iter().any(|f| case.name.contains(f.as_str())) {
            continue;
        }
        for &engine in &engines {
            let status = std::process::Command::new(&exe).args(["--case", case.name, "--engine", engine_name(engine)]).status();
            if !matches!(status, Ok(s) if s.success()) {
                println!("{:<30} {:<6} failed: {status:?}", case.name, engine_name(engine));
            }
        }
    }
}
