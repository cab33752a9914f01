//! `faultline suite SUITE.toml`: a matrix of protocols × workloads × nemeses × repetitions,
//! each cell run as its own `faultline test` subprocess with a seed derived from the suite's
//! base seed, the cell and the repetition, then the comparison of everything in the results
//! directory (`comparison.html`, `comparison.json`, `junit.xml`) and the index.
//!
//! The file is read and every cell checked first ([`suite_file`]): a bad file or a cell that
//! cannot run exits 254 before any run starts. A run is a subprocess ([`subprocess`]) so that a
//! crash of one run (or of its nodes) cannot take the suite down, so that each run is exactly
//! what `faultline test` with the printed arguments does, and so that a run past its
//! `run_timeout_s` can be interrupted (SIGTERM: it still heals, checks and writes its results)
//! and then killed. What the suite saw of each run is stored as its [`CellRecord`], which the
//! JUnit classification reads. `--shard I/N` keeps the cells whose position in the
//! (deterministic) matrix is I-1 modulo N; the shards of a CI matrix write into one results
//! directory (or are copied together) and `faultline report DIR` merges them.

use super::compare;
use super::index;
use super::outcome::{self, CellRecord};
use super::subprocess::{self, Limits};
use super::suite_file::{self, NodeBinary, PlannedRun, Suite};
use crate::cli::SuiteArgs;
use crate::exit::{self, usage, Failure};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long an unclaimed check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a check gets after SIGTERM.
const CHECK_GRACE: Duration = Duration::from_secs(10);

/// The run directory a `faultline test` printed, or the newest run below `results` with the
/// planned protocol and seed.
fn find_run_dir(lines: &[String], results: &Path, r: &PlannedRun) -> Option<PathBuf> {
    let printed = lines.iter().rev().find_map(|l| l.trim().strip_prefix("run directory:").map(|p| PathBuf::from(p.trim())));
    if let Some(p) = printed.filter(|p| p.join("test.json").is_file()) {
        return Some(p);
    }
    index::find_runs(results)
        .into_iter()
        .filter(|d| {
            let t: Value = std::fs::read_to_string(d.join("test.json")).ok().and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null);
            t.get("seed").and_then(Value::as_u64) == Some(r.seed) && t.get("protocol").and_then(Value::as_str) == Some(&r.run_protocol)
        })
        .max()
}

/// Runs the unclaimed checkers on a finished run and stores them in `unclaimed.json`.
fn check_unclaimed(exe: &Path, dir: &Path, checks: &[String]) {
    if checks.is_empty() {
        return;
    }
    let limits = Limits { timeout: CHECK_TIMEOUT, grace: CHECK_GRACE };
    let mut results = serde_json::Map::new();
    for c in checks {
        let args = vec!["check".to_string(), dir.display().to_string(), "--check".into(), c.clone(), "--json".into()];
        let f = subprocess::run(exe, &args, limits, None);
        let v: Value = serde_json::from_str(f.stdout.join("\n").trim()).unwrap_or_else(|_| {
            let code = f.code.map_or_else(|| "without an exit code".to_string(), |c| format!("with {c}"));
            json!({"valid": "unknown", "error": format!("`faultline check --check {c}` exited {code} and printed no JSON verdict")})
        });
        // `check --json` may print the whole report; the checker's own entry is the one to keep.
        let entry = v.get("checkers").and_then(|m| m.get(c)).cloned().unwrap_or(v);
        results.insert(c.clone(), entry);
    }
    let path = dir.join("unclaimed.json");
    let mut stored: Value = std::fs::read_to_string(&path).ok().and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_else(|| json!({}));
    stored["checks"] = Value::Object(results);
    let text = serde_json::to_vec_pretty(&stored).unwrap_or_default();
    if let Err(e) = super::atomic::write_atomic(&path, &text) {
        eprintln!("faultline suite: {}: {e}", path.display());
    }
    // The run report shows the unclaimed checks too: write it again now that they exist.
    if let Err(e) = super::run_report::write_run_report(dir) {
        eprintln!("faultline suite: {}: rewriting the run report: {e:#}", dir.display());
    }
}

/// Reads, checks and plans the suite; a bad file or cell is a usage error naming the file.
fn load(args: &SuiteArgs) -> Result<(Suite, Vec<PlannedRun>, usize), Failure> {
    let file = args.suite.display().to_string();
    let text = std::fs::read(&args.suite).map_err(|e| usage(format!("{file}: cannot read: {e}")))?;
    let text = String::from_utf8(text).map_err(|_| usage(format!("{file}: not UTF-8 text")))?;
    let raw = suite_file::parse(&text, &file).map_err(usage)?;
    // `--node-bin` serves every entry without a binary of its own; faultline-node is asked
    // only when some entry needs it.
    let cli_bin = args.node_bin.as_deref().map(|b| crate::protocols::resolve_node_bin(Some(b))).transpose()?;
    let default = NodeBinary(crate::protocols::default_node_bin());
    let runs = suite_file::plan(&raw, &file, cli_bin.as_deref(), &default).map_err(|e| match e {
        suite_file::Invalid::Usage(m) => usage(m),
        suite_file::Invalid::NodeBinary(m) => Failure::Internal(anyhow::anyhow!(m)),
    })?;
    let total = runs.len();
    let runs = match &args.shard {
        Some(sh) => {
            let (i, n) = suite_file::parse_shard(sh).map_err(usage)?;
            suite_file::shard(runs, i, n)
        }
        None => runs,
    };
    if runs.is_empty() {
        return Err(usage(format!("{file}: --shard {}: no run of the {total} of the matrix falls in this shard", args.shard.as_deref().unwrap_or(""))));
    }
    Ok((suite_file::settings(&raw), runs, total))
}

/// Runs one cell, stores its record, and returns its exit code (the worst of what the run
/// exited with and what its outcome says).
fn run_cell(exe: &Path, suite: &Suite, r: &PlannedRun, args: &SuiteArgs) -> i32 {
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let targs = suite_file::test_args(suite, r, &args.results);
    let limits = Limits { timeout: suite.run_timeout, grace: suite.grace };
    let f = subprocess::run(exe, &targs, limits, Some("    "));
    let dir = find_run_dir(&f.stdout, &args.results, r);
    let mut record = CellRecord::new((&r.protocol, &r.resolved_workload, &r.nemesis), r.rep, r.seed, &f, suite.run_timeout, started_at);
    record.node_args = r.node_args.clone();
    if let Err(e) = record.store(&args.results, dir.as_deref()) {
        eprintln!("faultline suite: {}: storing the record of the run: {e}", r.name());
    }
    let mut summary = match &dir {
        Some(d) => index::load_summary(d),
        None => index::orphan_summary(&record),
    };
    summary.suite = Some(record);
    let o = outcome::classify(&summary);
    if let Some(d) = dir.as_deref().filter(|_| o.kind != outcome::Kind::Error) {
        check_unclaimed(exe, d, &r.unclaimed);
    }
    let run_code = f.code.unwrap_or(exit::INTERNAL);
    let code = exit::worst([run_code, o.exit_code()]);
    let why = if o.message.is_empty() { String::new() } else { format!(" ({})", o.message) };
    crate::out!("{} → {} exit {code}{why}", r.name(), o.word());
    code
}

/// `faultline suite`.
pub fn suite_main(args: SuiteArgs) -> Result<i32, Failure> {
    let (suite, runs, total) = load(&args)?;
    if args.dry_run {
        for r in &runs {
            crate::out!("{} rep {} seed {}", r.cell(), r.rep, r.seed);
        }
        return Ok(exit::VALID);
    }
    std::fs::create_dir_all(&args.results).map_err(|e| Failure::Internal(anyhow::anyhow!("{}: {e}", args.results.display())))?;
    let exe = std::env::current_exe().map_err(|e| Failure::Internal(e.into()))?;
    let title = suite.name.clone().unwrap_or_else(|| args.suite.display().to_string());
    crate::out!("suite {title}: {} of {total} runs into {}", runs.len(), args.results.display());
    // The comparison page takes its title from here.
    let named = serde_json::to_vec_pretty(&json!({"name": title, "file": args.suite.display().to_string()})).unwrap_or_default();
    super::atomic::write_atomic(&args.results.join("suite-name.json"), &named).map_err(|e| Failure::Internal(anyhow::anyhow!("{}: {e}", args.results.display())))?;
    let mut codes = Vec::new();
    let interrupted = super::subprocess::interrupt_children();
    for (k, r) in runs.iter().enumerate() {
        crate::out!("[{}/{}] {} seed {}", k + 1, runs.len(), r.name(), r.seed);
        codes.push(run_cell(&exe, &suite, r, &args));
        if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            crate::out!("suite interrupted: {} of {} runs done; writing the comparison of what ran", k + 1, runs.len());
            codes.push(exit::UNKNOWN);
            break;
        }
    }
    let cmp = compare::write_comparison(&args.results).map_err(Failure::Internal)?;
    super::write_index(&args.results).map_err(Failure::Internal)?;
    crate::out!("comparison: {} ({} runs in {} cells)", args.results.join("comparison.html").display(), cmp.runs.len(), cmp.cells.len());
    crate::out!("junit: {}", args.results.join("junit.xml").display());
    crate::out!("index: {}", args.results.join("index.html").display());
    Ok(exit::worst(codes))
}
