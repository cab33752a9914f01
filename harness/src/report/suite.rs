//! `faultline suite SUITE.toml`: a matrix of protocols × workloads × nemeses × repetitions,
//! each cell run as its own `faultline test` subprocess with a seed derived from the suite's
//! base seed, the cell and the repetition, then the comparison of everything in the results
//! directory (`comparison.html`, `comparison.json`, `junit.xml`) and the index.
//!
//! A run is a subprocess so that a crash of one run (or of its nodes) cannot take the suite
//! down, and so each run is exactly what `faultline test` with the printed arguments does.
//! `--shard I/N` keeps the cells whose position in the (deterministic) matrix is I-1 modulo N;
//! the shards of a CI matrix write into one results directory (or are copied together) and
//! `faultline report DIR` merges them.
//!
//! The suite file:
//!
//! ```toml
//! name = "quick"                 # optional title of the comparison
//! protocols = ["raft", "crdt-state"]
//! workloads = ["register"]       # optional: default is each protocol's first workload
//! nemeses = ["none", "partition", "kill", "partition,kill"]
//! repetitions = 1
//! seed = 1000                    # base seed
//! time_limit = 10.0              # seconds per run; also rate, concurrency, nodes,
//! nemesis_interval = 2.0         # request_timeout_ms, node_args
//! run_timeout_s = 300            # a run still going after this is killed and counts as crashed
//!
//! [protocol.crdt-state]          # per-protocol overrides
//! workloads = ["counter", "register"]
//! node_args = ["--some-flag"]
//! unclaimed = ["register:linearizable"]  # extra checks: "check" or "workload:check"
//! ```

use super::compare;
use super::index;
use crate::cli::SuiteArgs;
use crate::exit::{self, usage, Failure};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The nemesis names of the contract.
pub const NEMESES: [&str; 11] =
    ["none", "partition", "partition-halves", "partition-one", "partition-ring", "partition-bridge", "kill", "pause", "clock", "slow", "all"];

/// A suite file as written.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    pub name: Option<String>,
    pub protocols: Vec<String>,
    pub workloads: Option<Vec<String>>,
    pub nemeses: Vec<String>,
    #[serde(default = "one")]
    pub repetitions: u32,
    #[serde(default)]
    pub seed: u64,
    pub time_limit: Option<f64>,
    pub rate: Option<f64>,
    pub concurrency: Option<usize>,
    pub nodes: Option<usize>,
    pub nemesis_interval: Option<f64>,
    pub request_timeout_ms: Option<u64>,
    #[serde(default)]
    pub node_args: Vec<String>,
    pub run_timeout_s: Option<f64>,
    #[serde(default)]
    pub protocol: BTreeMap<String, ProtocolOptions>,
}

fn one() -> u32 {
    1
}

/// Per-protocol overrides.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ProtocolOptions {
    pub workloads: Option<Vec<String>>,
    pub nemeses: Option<Vec<String>>,
    #[serde(default)]
    pub node_args: Vec<String>,
    /// Checkers for guarantees the protocol does not claim: `check` or `workload:check`.
    #[serde(default)]
    pub unclaimed: Vec<String>,
}

/// One run of the matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    pub protocol: String,
    /// `None`: the protocol's default workload.
    pub workload: Option<String>,
    pub nemesis: String,
    pub rep: u32,
    pub seed: u64,
    pub node_args: Vec<String>,
    pub unclaimed: Vec<String>,
}

impl PlannedRun {
    pub fn cell(&self) -> String {
        format!("{}/{}/{}", self.protocol, self.workload.as_deref().unwrap_or("default"), self.nemesis)
    }
}

/// Parses and validates a suite file; errors name the file.
pub fn parse(text: &str, file: &str) -> Result<SuiteFile, String> {
    let s: SuiteFile = toml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    if s.protocols.is_empty() {
        return Err(format!("{file}: `protocols` is empty"));
    }
    if s.nemeses.is_empty() {
        return Err(format!("{file}: `nemeses` is empty (use [\"none\"] for no faults)"));
    }
    if s.repetitions == 0 {
        return Err(format!("{file}: `repetitions` must be at least 1"));
    }
    for k in s.protocol.keys() {
        if !s.protocols.contains(k) {
            return Err(format!("{file}: [protocol.{k}] names a protocol that is not in `protocols`"));
        }
    }
    let all_nemeses = s.nemeses.iter().chain(s.protocol.values().flat_map(|p| p.nemeses.iter().flatten()));
    for cell in all_nemeses {
        for n in cell.split(',').map(str::trim) {
            if !NEMESES.contains(&n) {
                return Err(format!("{file}: unknown nemesis `{n}` in `{cell}` (known: {})", NEMESES.join(", ")));
            }
        }
    }
    Ok(s)
}

/// FNV-1a, for a stable hash of a cell's name (std's hasher may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The seed of one run: a hash of the base seed, the cell and the repetition. Kept below 2^53
/// so it survives a round trip through JavaScript in the HTML pages.
pub fn derive_seed(base: u64, cell: &str, rep: u32) -> u64 {
    splitmix(base ^ splitmix(fnv1a(cell.as_bytes()) ^ (rep as u64).wrapping_mul(0x9e37_79b9))) & ((1u64 << 53) - 1)
}

/// The whole matrix in a fixed order: protocol, workload, nemeses, repetition.
pub fn plan(s: &SuiteFile) -> Vec<PlannedRun> {
    let mut out = Vec::new();
    for p in &s.protocols {
        let opts = s.protocol.get(p).cloned().unwrap_or_default();
        let workloads: Vec<Option<String>> = match opts.workloads.as_ref().or(s.workloads.as_ref()) {
            Some(w) => w.iter().cloned().map(Some).collect(),
            None => vec![None],
        };
        let nemeses = opts.nemeses.clone().unwrap_or_else(|| s.nemeses.clone());
        for w in &workloads {
            let unclaimed: Vec<String> = opts
                .unclaimed
                .iter()
                .filter_map(|u| match u.split_once(':') {
                    Some((wl, check)) => (Some(wl) == w.as_deref()).then(|| check.to_string()),
                    None => Some(u.clone()),
                })
                .collect();
            for n in &nemeses {
                for rep in 0..s.repetitions {
                    let mut run = PlannedRun {
                        protocol: p.clone(),
                        workload: w.clone(),
                        nemesis: n.replace(' ', ""),
                        rep,
                        seed: 0,
                        node_args: s.node_args.iter().chain(&opts.node_args).cloned().collect(),
                        unclaimed: unclaimed.clone(),
                    };
                    run.seed = derive_seed(s.seed, &run.cell(), rep);
                    out.push(run);
                }
            }
        }
    }
    out
}

/// Parses `I/N` (1-based).
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--shard: expected I/N with 1 <= I <= N, got `{s}`");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let (i, n): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if n == 0 || i == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

/// The runs of shard `i` of `n`: every n-th run starting at the (i-1)-th.
pub fn shard(runs: Vec<PlannedRun>, i: usize, n: usize) -> Vec<PlannedRun> {
    runs.into_iter().enumerate().filter(|(k, _)| k % n == i - 1).map(|(_, r)| r).collect()
}

/// The arguments of `faultline test` for one run.
pub fn test_args(s: &SuiteFile, r: &PlannedRun, results: &Path, node_bin: Option<&Path>) -> Vec<String> {
    let mut a = vec!["test".to_string(), "--protocol".into(), r.protocol.clone()];
    if let Some(w) = &r.workload {
        a.extend(["--workload".into(), w.clone()]);
    }
    a.extend(["--nemesis".into(), r.nemesis.clone(), "--seed".into(), r.seed.to_string()]);
    a.extend(["--results".into(), results.display().to_string()]);
    let opt = |name: &str, v: Option<String>, a: &mut Vec<String>| {
        if let Some(v) = v {
            a.extend([name.to_string(), v]);
        }
    };
    opt("--time-limit", s.time_limit.map(|x| x.to_string()), &mut a);
    opt("--rate", s.rate.map(|x| x.to_string()), &mut a);
    opt("--concurrency", s.concurrency.map(|x| x.to_string()), &mut a);
    opt("--nodes", s.nodes.map(|x| x.to_string()), &mut a);
    opt("--nemesis-interval", s.nemesis_interval.map(|x| x.to_string()), &mut a);
    opt("--request-timeout-ms", s.request_timeout_ms.map(|x| x.to_string()), &mut a);
    opt("--node-bin", node_bin.map(|p| p.display().to_string()), &mut a);
    for na in &r.node_args {
        a.push(format!("--node-arg={na}"));
    }
    a
}

/// How one run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub code: i32,
    pub dir: Option<PathBuf>,
}

/// Runs a command, echoing its stdout lines with a prefix and returning them, killing it past
/// `timeout`. The exit code is 255 when it was killed or died of a signal.
fn run_capture(exe: &Path, args: &[String], timeout: Duration, prefix: &str) -> (i32, Vec<String>) {
    let child = Command::new(exe).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("faultline suite: cannot start {}: {e}", exe.display());
            return (exit::INTERNAL, Vec::new());
        }
    };
    let stdout = child.stdout.take();
    let prefix = prefix.to_string();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        if let Some(out) = stdout {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if !prefix.is_empty() {
                    println!("{prefix}{line}");
                }
                lines.push(line);
            }
        }
        lines
    });
    let started = Instant::now();
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code().unwrap_or(exit::INTERNAL),
            Ok(None) if started.elapsed() > timeout => {
                eprintln!("faultline suite: run exceeded {:.0} s, killing it", timeout.as_secs_f64());
                let _ = child.kill();
                let _ = child.wait();
                break exit::INTERNAL;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(_) => break exit::INTERNAL,
        }
    };
    (code, reader.join().unwrap_or_default())
}

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
            t.get("seed").and_then(Value::as_u64) == Some(r.seed) && t.get("protocol").and_then(Value::as_str) == Some(&r.protocol)
        })
        .max()
}

/// Runs the unclaimed checkers on a finished run and stores them in `unclaimed.json`.
fn check_unclaimed(exe: &Path, dir: &Path, checks: &[String]) {
    if checks.is_empty() {
        return;
    }
    let mut results = serde_json::Map::new();
    for c in checks {
        let args = vec!["check".to_string(), dir.display().to_string(), "--check".into(), c.clone(), "--json".into()];
        let (code, lines) = run_capture(exe, &args, Duration::from_secs(180), "");
        let text = lines.join("\n");
        let v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|_| {
            json!({"valid": "unknown", "error": format!("`faultline check --check {c}` exited {code} without a JSON verdict")})
        });
        // `check --json` may print the whole report; the checker's own entry is the one to keep.
        let entry = v.get("checkers").and_then(|m| m.get(c)).cloned().unwrap_or(v);
        results.insert(c.clone(), entry);
    }
    let path = dir.join("unclaimed.json");
    let mut stored: Value = std::fs::read_to_string(&path).ok().and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_else(|| json!({}));
    stored["checks"] = Value::Object(results);
    let _ = std::fs::write(&path, serde_json::to_string_pretty(&stored).unwrap_or_default());
}

/// `faultline suite`.
pub fn suite_main(args: SuiteArgs) -> Result<i32, Failure> {
    let file = args.suite.display().to_string();
    let text = std::fs::read_to_string(&args.suite).map_err(|e| usage(format!("{file}: cannot read: {e}")))?;
    let suite = parse(&text, &file).map_err(usage)?;
    let mut runs = plan(&suite);
    let total = runs.len();
    if let Some(sh) = &args.shard {
        let (i, n) = parse_shard(sh).map_err(usage)?;
        runs = shard(runs, i, n);
    }
    if args.dry_run {
        for r in &runs {
            println!("{} rep {} seed {}", r.cell(), r.rep, r.seed);
        }
        return Ok(exit::VALID);
    }
    std::fs::create_dir_all(&args.results).map_err(|e| Failure::Internal(anyhow::anyhow!("{}: {e}", args.results.display())))?;
    let exe = std::env::current_exe().map_err(|e| Failure::Internal(e.into()))?;
    let timeout = Duration::from_secs_f64(suite.run_timeout_s.unwrap_or(suite.time_limit.unwrap_or(20.0) * 4.0 + 180.0));
    println!("suite {}: {} of {total} runs into {}", suite.name.as_deref().unwrap_or(&file), runs.len(), args.results.display());
    let mut codes = Vec::new();
    for (k, r) in runs.iter().enumerate() {
        println!("[{}/{}] {} rep {} seed {}", k + 1, runs.len(), r.cell(), r.rep, r.seed);
        let targs = test_args(&suite, r, &args.results, args.node_bin.as_deref());
        let (code, lines) = run_capture(&exe, &targs, timeout, "    ");
        let dir = find_run_dir(&lines, &args.results, r);
        match &dir {
            Some(d) => check_unclaimed(&exe, d, &r.unclaimed),
            None => eprintln!("faultline suite: {}: no run directory found (exit {code})", r.cell()),
        }
        let outcome = RunOutcome { code: if dir.is_none() { exit::INTERNAL.max(code) } else { code }, dir };
        println!("[{}/{}] {} → exit {}", k + 1, runs.len(), r.cell(), outcome.code);
        codes.push(outcome.code);
    }
    let cmp = compare::write_comparison(&args.results).map_err(Failure::Internal)?;
    super::write_index(&args.results).map_err(Failure::Internal)?;
    println!("comparison: {} ({} runs in {} cells)", args.results.join("comparison.html").display(), cmp.runs.len(), cmp.cells.len());
    println!("junit: {}", args.results.join("junit.xml").display());
    println!("index: {}", args.results.join("index.html").display());
    Ok(exit::worst(codes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: &str = r#"
name = "t"
protocols = ["raft", "crdt-state"]
nemeses = ["none", "partition,kill"]
repetitions = 2
seed = 5
time_limit = 3
[protocol.crdt-state]
workloads = ["counter", "register"]
unclaimed = ["register:linearizable", "convergence"]
"#;

    #[test]
    fn plans_the_matrix_with_distinct_stable_seeds() {
        let s = parse(SUITE, "s.toml").unwrap();
        let p = plan(&s);
        assert_eq!(p.len(), 2 * 2 + 2 * 2 * 2);
        let seeds: std::collections::BTreeSet<u64> = p.iter().map(|r| r.seed).collect();
        assert_eq!(seeds.len(), p.len());
        assert_eq!(p, plan(&parse(SUITE, "s.toml").unwrap()));
        let reg = p.iter().find(|r| r.workload.as_deref() == Some("register")).unwrap();
        assert_eq!(reg.unclaimed, vec!["linearizable", "convergence"]);
        let ctr = p.iter().find(|r| r.workload.as_deref() == Some("counter")).unwrap();
        assert_eq!(ctr.unclaimed, vec!["convergence"]);
        assert_eq!(p[0].workload, None);
    }

    #[test]
    fn shards_partition_the_plan() {
        let p = plan(&parse(SUITE, "s.toml").unwrap());
        let mut all: Vec<PlannedRun> = (1..=3).flat_map(|i| shard(p.clone(), i, 3)).collect();
        all.sort_by_key(|r| r.seed);
        let mut want = p.clone();
        want.sort_by_key(|r| r.seed);
        assert_eq!(all, want);
        assert_eq!(parse_shard("2/4"), Ok((2, 4)));
        assert!(parse_shard("0/4").is_err() && parse_shard("5/4").is_err() && parse_shard("x").is_err());
    }

    #[test]
    fn bad_suites_are_named() {
        let e = parse("protocols = [\"raft\"]\nnemeses = [\"flood\"]\n", "bad.toml").unwrap_err();
        assert!(e.contains("bad.toml") && e.contains("flood"), "{e}");
        let e = parse("protocols = [\"raft\"]\nnemeses = [\"none\"]\ncolour = 1\n", "bad.toml").unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let e = parse("protocols = [\"raft\"]\nnemeses = [\"none\"]\n[protocol.paxos]\n", "b.toml").unwrap_err();
        assert!(e.contains("paxos"), "{e}");
    }

    #[test]
    fn test_args_carry_every_setting() {
        let s = parse(SUITE, "s.toml").unwrap();
        let p = plan(&s);
        let a = test_args(&s, &p[0], Path::new("/tmp/r"), None);
        let joined = a.join(" ");
        assert!(joined.starts_with("test --protocol raft --nemesis none --seed "), "{joined}");
        assert!(joined.contains("--results /tmp/r") && joined.contains("--time-limit 3"), "{joined}");
    }
}
