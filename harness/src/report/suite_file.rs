//! The suite file: reading it, and checking every cell of its matrix before any run starts.
//!
//! A suite runs for minutes to hours; a typo found by the fortieth run wastes all the runs
//! before it, and a value the runs cannot use (an unknown protocol, `nan` seconds) used to run
//! every cell anyway or panic. So everything that can be checked without running is checked
//! here, and a bad file is a usage error (exit 254) whose message names the file and the field:
//! the numbers (finite, positive, within what a `Duration` and the cluster can hold), the lists
//! (none empty, no duplicates), the nemesis names (by the same parser `faultline test` uses),
//! and, by asking the node binary ([`Protocols`]), that every protocol exists, serves every
//! workload it is given, and that the unclaimed checks apply to its workloads.
//!
//! ```toml
//! name = "quick"                 # optional title
//! protocols = ["raft", "crdt-state"]
//! workloads = ["register"]       # optional: default is each protocol's first workload
//! nemeses = ["none", "partition", "kill", "partition,kill"]
//! repetitions = 1                # 1..=1000
//! seed = 1000                    # base seed, >= 0
//! time_limit = 10.0              # seconds per run; also rate, concurrency, nodes,
//! nemesis_interval = 2.0         # request_timeout_ms, node_args
//! run_timeout_s = 300            # past it the run gets SIGTERM, then SIGKILL after run_grace_s
//! run_grace_s = 20
//!
//! [protocol.crdt-state]          # per-protocol overrides
//! workloads = ["counter", "register"]
//! nemeses = ["partition"]
//! node_args = ["--some-flag"]
//! variants = [[], ["--tree"]]    # or: one set of cells per variant (its node args)
//! unclaimed = ["register:linearizable"]  # extra checks: "check" or "workload:check"
//! request_timeout_ms = 1000      # replaces the suite's for this protocol
//! ```

use crate::protocols::Description;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest number of seconds any duration field may hold: about 11.5 days, far beyond any
/// run, and far below what `Duration::from_secs_f64` can represent.
pub const MAX_SECONDS: f64 = 1e6;
/// The largest request rate, operations per second.
pub const MAX_RATE: f64 = 1e6;
/// The largest number of repetitions of a cell.
pub const MAX_REPETITIONS: i64 = 1000;
/// The grace a run gets between SIGTERM and SIGKILL when the file does not say.
pub const DEFAULT_GRACE_S: f64 = 20.0;

/// A suite file as written. Integers are read as `i64` and checked here, so a negative value
/// gets a message naming its field instead of a type error.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    pub name: Option<String>,
    pub protocols: Vec<String>,
    pub workloads: Option<Vec<String>>,
    pub nemeses: Vec<String>,
    pub repetitions: Option<i64>,
    pub seed: Option<i64>,
    pub time_limit: Option<f64>,
    pub rate: Option<f64>,
    pub concurrency: Option<i64>,
    pub nodes: Option<i64>,
    pub nemesis_interval: Option<f64>,
    pub request_timeout_ms: Option<i64>,
    #[serde(default)]
    pub node_args: Vec<String>,
    pub run_timeout_s: Option<f64>,
    pub run_grace_s: Option<f64>,
    #[serde(default)]
    pub protocol: BTreeMap<String, ProtocolOptions>,
}

/// Per-protocol overrides.
#[derive(Debug, Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ProtocolOptions {
    pub workloads: Option<Vec<String>>,
    pub nemeses: Option<Vec<String>>,
    #[serde(default)]
    pub node_args: Vec<String>,
    /// Variants of the protocol, each a list of node arguments added to `node_args`: every
    /// cell runs once per variant, and comparisons keep the variants apart (`twopc --tree`).
    pub variants: Option<Vec<Vec<String>>>,
    /// Checkers for guarantees the protocol does not claim: `check` or `workload:check`.
    #[serde(default)]
    pub unclaimed: Vec<String>,
    /// The client timeout for this protocol's runs, replacing the suite's (a protocol that
    /// needs more round trips per operation, such as two-phase commit, may need a longer one).
    pub request_timeout_ms: Option<i64>,
}

/// A validated suite: what every run of it gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    pub name: Option<String>,
    pub repetitions: u32,
    pub seed: u64,
    /// Flags passed to every `faultline test` (already validated), in a fixed order.
    pub test_flags: Vec<(String, String)>,
    pub node_args: Vec<String>,
    /// How long a run may take before it is sent SIGTERM.
    pub run_timeout: Duration,
    /// How long it then gets to heal, check and write its results before SIGKILL.
    pub grace: Duration,
}

/// What the harness needs to know about protocols: the node binary in real use, a table in
/// tests and in the fuzzer (so they run no process).
pub trait Protocols {
    /// The protocol names the node binary implements.
    fn list(&self) -> Result<Vec<String>, String>;
    /// What one protocol claims and which workloads it serves (the default first).
    fn describe(&self, protocol: &str) -> Result<Description, String>;
    /// Whether the clock nemesis can run (libfaketime is installed).
    fn has_faketime(&self) -> bool;
}

/// The real [`Protocols`]: asks the node binary, as `faultline test` does.
pub struct NodeBinary(pub PathBuf);

impl Protocols for NodeBinary {
    fn list(&self) -> Result<Vec<String>, String> {
        crate::protocols::list(&self.0)
    }
    fn describe(&self, protocol: &str) -> Result<Description, String> {
        crate::protocols::describe(&self.0, protocol)
    }
    fn has_faketime(&self) -> bool {
        crate::run::faketime::find_lib().is_some()
    }
}

/// Why a suite cannot run: a usage error (exit 254), or the node binary could not answer (255).
#[derive(Debug, Clone, PartialEq)]
pub enum Invalid {
    Usage(String),
    NodeBinary(String),
}

impl Invalid {
    /// The message, naming the file.
    pub fn message(&self) -> &str {
        match self {
            Invalid::Usage(m) | Invalid::NodeBinary(m) => m,
        }
    }
}

/// Builds "FILE: FIELD: message" errors.
struct Errs<'a> {
    file: &'a str,
}

impl Errs<'_> {
    fn at(&self, field: &str, msg: impl std::fmt::Display) -> String {
        format!("{}: `{field}`: {msg}", self.file)
    }
}

/// Parses a suite file and checks everything that needs no node binary; errors name the file
/// (and the field). Never panics, whatever the bytes (see `tests/suite_fuzz.rs`).
pub fn parse(text: &str, file: &str) -> Result<SuiteFile, String> {
    let s: SuiteFile = toml::from_str(text).map_err(|e| toml_error(text, file, &e))?;
    let errs = Errs { file };
    check_lists(&s, &errs)?;
    check_numbers(&s, &errs)?;
    check_nemeses(&s, &errs)?;
    check_overrides(&s, &errs)?;
    Ok(s)
}

/// A TOML error naming the field on the line it points at (`nodes = 3.5`: "`nodes`: ..."), so
/// a type error names its field like every other error.
fn toml_error(text: &str, file: &str, e: &toml::de::Error) -> String {
    let msg = e.to_string();
    let field = e.span().and_then(|sp| {
        let start = text.get(..sp.start)?.rfind('\n').map_or(0, |i| i + 1);
        let line = text.get(start..)?.lines().next()?;
        let key = line.split_once('=')?.0.trim();
        (!key.is_empty() && key.len() < 80 && !key.starts_with('[')).then(|| key.to_string())
    });
    match field {
        Some(k) => format!("{file}: `{k}`: {}", msg.trim_end()),
        None => format!("{file}: {}", msg.trim_end()),
    }
}

fn check_list(items: &[String], field: &str, errs: &Errs) -> Result<(), String> {
    if items.is_empty() {
        return Err(errs.at(field, "is empty: name at least one"));
    }
    let mut seen = Vec::new();
    for i in items {
        let norm = normalize(i);
        if norm.is_empty() {
            return Err(errs.at(field, "has an empty entry"));
        }
        if seen.contains(&norm) {
            return Err(errs.at(field, format!("lists {norm:?} twice (each cell would run twice with the same seed)")));
        }
        seen.push(norm);
    }
    Ok(())
}

/// An entry as the matrix uses it: spaces around commas dropped (`"partition, kill"`).
pub fn normalize(entry: &str) -> String {
    entry.split(',').map(str::trim).filter(|x| !x.is_empty()).collect::<Vec<_>>().join(",")
}

fn check_lists(s: &SuiteFile, errs: &Errs) -> Result<(), String> {
    check_list(&s.protocols, "protocols", errs)?;
    check_list(&s.nemeses, "nemeses", errs)?;
    if let Some(w) = &s.workloads {
        check_list(w, "workloads", errs)?;
    }
    for (p, o) in &s.protocol {
        if let Some(w) = &o.workloads {
            check_list(w, &format!("protocol.{p}.workloads"), errs)?;
        }
        if let Some(n) = &o.nemeses {
            check_list(n, &format!("protocol.{p}.nemeses"), errs)?;
        }
    }
    Ok(())
}

/// A positive, finite number of seconds no larger than [`MAX_SECONDS`].
fn seconds(v: Option<f64>, field: &str, errs: &Errs) -> Result<Option<f64>, String> {
    match v {
        Some(x) if !x.is_finite() || x <= 0.0 || x > MAX_SECONDS => {
            Err(errs.at(field, format!("must be a number of seconds above 0 and at most {MAX_SECONDS:e}, got {x}")))
        }
        other => Ok(other),
    }
}

fn int_in(v: Option<i64>, field: &str, lo: i64, hi: i64, errs: &Errs) -> Result<(), String> {
    match v {
        Some(x) if x < lo || x > hi => Err(errs.at(field, format!("must be an integer from {lo} to {hi}, got {x}"))),
        _ => Ok(()),
    }
}

fn check_numbers(s: &SuiteFile, errs: &Errs) -> Result<(), String> {
    let time_limit = seconds(s.time_limit, "time_limit", errs)?;
    seconds(s.nemesis_interval, "nemesis_interval", errs)?;
    seconds(s.run_grace_s, "run_grace_s", errs)?;
    if let (Some(t), Some(limit)) = (seconds(s.run_timeout_s, "run_timeout_s", errs)?, time_limit) {
        if t <= limit {
            return Err(errs.at("run_timeout_s", format!("({t} s) must exceed time_limit ({limit} s), or every run is stopped before its end")));
        }
    }
    if let Some(r) = s.rate {
        if !r.is_finite() || r <= 0.0 || r > MAX_RATE {
            return Err(errs.at("rate", format!("must be operations per second above 0 and at most {MAX_RATE:e}, got {r}")));
        }
    }
    int_in(s.repetitions, "repetitions", 1, MAX_REPETITIONS, errs)?;
    int_in(s.seed, "seed", 0, i64::MAX, errs)?;
    int_in(s.concurrency, "concurrency", 1, 1000, errs)?;
    int_in(s.nodes, "nodes", 3, 7, errs)?;
    // 1e9 ms is MAX_SECONDS: a request may wait as long as a run may last, no longer.
    int_in(s.request_timeout_ms, "request_timeout_ms", 1, 1_000_000_000, errs)
}

fn check_nemesis_list(list: &[String], field: &str, errs: &Errs) -> Result<(), String> {
    for entry in list {
        let parts: Vec<String> = entry.split(',').map(|p| p.trim().to_string()).collect();
        if parts.iter().any(String::is_empty) {
            return Err(errs.at(field, format!("{entry:?} has an empty nemesis name")));
        }
        crate::run::settings::parse_nemeses(&parts).map_err(|e| errs.at(field, e.trim_start_matches("--nemesis: ")))?;
    }
    Ok(())
}

fn check_nemeses(s: &SuiteFile, errs: &Errs) -> Result<(), String> {
    check_nemesis_list(&s.nemeses, "nemeses", errs)?;
    for (p, o) in &s.protocol {
        if let Some(n) = &o.nemeses {
            check_nemesis_list(n, &format!("protocol.{p}.nemeses"), errs)?;
        }
    }
    Ok(())
}

fn check_overrides(s: &SuiteFile, errs: &Errs) -> Result<(), String> {
    for (p, o) in &s.protocol {
        if !s.protocols.contains(p) {
            return Err(errs.at(&format!("protocol.{p}"), "names a protocol that is not in `protocols`"));
        }
        for u in &o.unclaimed {
            let check = u.split_once(':').map_or(u.as_str(), |(_, c)| c).trim();
            if !faultline_checkers::registry::NAMES.contains(&check) {
                let known = faultline_checkers::registry::NAMES.join(", ");
                return Err(errs.at(&format!("protocol.{p}.unclaimed"), format!("unknown checker {check:?} in {u:?} (known: {known})")));
            }
        }
    }
    Ok(())
}

/// One run of the matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    pub protocol: String,
    /// The workload as the file names it; `None` is the protocol's default. The seed is
    /// derived from this (so seeds stay what they were before workloads were resolved).
    pub workload: Option<String>,
    /// The workload the run will use: the named one, or the protocol's default.
    pub resolved_workload: String,
    /// The nemeses, normalised (`partition,kill`).
    pub nemesis: String,
    pub rep: u32,
    pub seed: u64,
    pub node_args: Vec<String>,
    pub unclaimed: Vec<String>,
    /// `faultline test` flags of this protocol that replace the suite's.
    pub flags: Vec<(String, String)>,
}

impl PlannedRun {
    /// What the seed hashes: the nemeses only. Every protocol and workload of a suite then meets
    /// the same fault schedule (the same kinds, shapes and times; roles such as "the leader"
    /// are resolved at run time and recorded), so the rows of the comparison are comparable.
    pub fn seed_cell(&self) -> String {
        self.nemesis.clone()
    }

    /// The cell as reports name it: `protocol/workload/nemeses`, the protocol with its node
    /// arguments when it has any (`twopc --tree/bank/kill`), as comparisons label it.
    pub fn cell(&self) -> String {
        format!("{}/{}/{}", label(&self.protocol, &self.node_args), self.resolved_workload, self.nemesis)
    }

    /// The stable test name of JUnit: `protocol/workload/nemeses#repetition`.
    pub fn name(&self) -> String {
        format!("{}#{}", self.cell(), self.rep)
    }
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

/// The validated settings of a parsed file.
pub fn settings(s: &SuiteFile) -> Suite {
    let mut flags = Vec::new();
    let mut add = |flag: &str, v: Option<String>| {
        if let Some(v) = v {
            flags.push((flag.to_string(), v));
        }
    };
    add("--time-limit", s.time_limit.map(|x| x.to_string()));
    add("--rate", s.rate.map(|x| x.to_string()));
    add("--concurrency", s.concurrency.map(|x| x.to_string()));
    add("--nodes", s.nodes.map(|x| x.to_string()));
    add("--nemesis-interval", s.nemesis_interval.map(|x| x.to_string()));
    add("--request-timeout-ms", s.request_timeout_ms.map(|x| x.to_string()));
    // A run's own watchdog allows its time limit plus checking plus three minutes; the suite
    // waits a little longer by default so the run's own limits act first.
    let timeout = s.run_timeout_s.unwrap_or(s.time_limit.unwrap_or(20.0) * 4.0 + 180.0).min(MAX_SECONDS);
    Suite {
        name: s.name.clone(),
        repetitions: s.repetitions.unwrap_or(1).clamp(1, MAX_REPETITIONS) as u32,
        seed: s.seed.unwrap_or(0).max(0) as u64,
        test_flags: flags,
        node_args: s.node_args.clone(),
        run_timeout: Duration::from_secs_f64(timeout),
        grace: Duration::from_secs_f64(s.run_grace_s.unwrap_or(DEFAULT_GRACE_S).min(MAX_SECONDS)),
    }
}

/// Asks `protocols` about every protocol of the file and returns the whole matrix in a fixed
/// order (protocol, workload, nemeses, repetition), or the first cell that cannot run.
pub fn plan(s: &SuiteFile, file: &str, protocols: &dyn Protocols) -> Result<Vec<PlannedRun>, Invalid> {
    let errs = Errs { file };
    let known = protocols.list().map_err(|e| Invalid::NodeBinary(format!("{file}: asking the node binary for its protocols: {e}")))?;
    let settings = settings(s);
    let mut out = Vec::new();
    for p in &s.protocols {
        if !known.contains(p) {
            return Err(Invalid::Usage(errs.at("protocols", format!("unknown protocol {p:?} (the node binary knows: {})", known.join(", ")))));
        }
        let desc = protocols.describe(p).map_err(|e| Invalid::NodeBinary(format!("{file}: {e}")))?;
        out.extend(plan_protocol(s, &settings, p, &desc, &errs, protocols.has_faketime()).map_err(Invalid::Usage)?);
    }
    Ok(out)
}

/// The workloads of protocol `p`: its override, the file's list, or its default; each served.
fn workloads_of(s: &SuiteFile, p: &str, desc: &Description, errs: &Errs) -> Result<Vec<(Option<String>, String)>, String> {
    let (field, list) = match (s.protocol.get(p).and_then(|o| o.workloads.as_ref()), &s.workloads) {
        (Some(w), _) => (format!("protocol.{p}.workloads"), Some(w)),
        (None, Some(w)) => ("workloads".to_string(), Some(w)),
        (None, None) => (String::new(), None),
    };
    let Some(list) = list else {
        let first = desc.workloads.first().ok_or_else(|| errs.at("protocols", format!("protocol {p:?} serves no workload")))?;
        return Ok(vec![(None, first.clone())]);
    };
    list.iter()
        .map(|w| {
            let w = w.trim();
            if desc.workloads.iter().any(|d| d == w) {
                Ok((Some(w.to_string()), w.to_string()))
            } else {
                Err(errs.at(&field, format!("protocol {p} does not serve workload {w:?} (it serves: {})", desc.workloads.join(", "))))
            }
        })
        .collect()
}

/// The unclaimed checks that apply to `workload`, each checked against the registry.
fn unclaimed_for(opts: &ProtocolOptions, p: &str, workload: &str, errs: &Errs) -> Result<Vec<String>, String> {
    let field = format!("protocol.{p}.unclaimed");
    let mut out = Vec::new();
    for u in &opts.unclaimed {
        let check = match u.split_once(':') {
            Some((wl, c)) if wl.trim() == workload => c.trim(),
            Some(_) => continue,
            None => u.trim(),
        };
        crate::run::claims::from_names(&[check.to_string()], workload).map_err(|e| errs.at(&field, e.trim_start_matches("--check: ")))?;
        out.push(check.to_string());
    }
    Ok(out)
}

fn plan_protocol(s: &SuiteFile, settings: &Suite, p: &str, desc: &Description, errs: &Errs, faketime: bool) -> Result<Vec<PlannedRun>, String> {
    let opts = s.protocol.get(p).cloned().unwrap_or_default();
    int_in(opts.request_timeout_ms, &format!("protocol.{p}.request_timeout_ms"), 1, 1_000_000_000, errs)?;
    let workloads = workloads_of(s, p, desc, errs)?;
    let (nem_field, nemeses) = match &opts.nemeses {
        Some(n) => (format!("protocol.{p}.nemeses"), n.clone()),
        None => ("nemeses".to_string(), s.nemeses.clone()),
    };
    if !faketime && nemeses.iter().any(|n| n.split(',').any(|x| matches!(x.trim(), "clock" | "all"))) {
        return Err(errs.at(&nem_field, "the clock nemesis (also in `all`) needs libfaketime, which is not installed: apt-get install -y faketime libfaketime"));
    }
    for u in &opts.unclaimed {
        if let Some((wl, _)) = u.split_once(':') {
            if !workloads.iter().any(|(_, w)| w == wl.trim()) {
                return Err(errs.at(&format!("protocol.{p}.unclaimed"), format!("{u:?} names workload {:?}, which protocol {p} does not run in this suite", wl.trim())));
            }
        }
    }
    let variants = variants_of(&opts, p, errs)?;
    let mut out = Vec::new();
    for variant in &variants {
        for (named, resolved) in &workloads {
            let unclaimed = unclaimed_for(&opts, p, resolved, errs)?;
            for n in &nemeses {
                for rep in 0..settings.repetitions {
                    let mut run = PlannedRun {
                        protocol: p.to_string(),
                        workload: named.clone(),
                        resolved_workload: resolved.clone(),
                        nemesis: normalize(n),
                        rep,
                        seed: 0,
                        node_args: settings.node_args.iter().chain(&opts.node_args).chain(variant).cloned().collect(),
                        unclaimed: unclaimed.clone(),
                        flags: opts.request_timeout_ms.map(|t| ("--request-timeout-ms".to_string(), t.to_string())).into_iter().collect(),
                    };
                    // Variants share the schedule: the seed hashes the nemeses only.
                    run.seed = derive_seed(settings.seed, &run.seed_cell(), rep);
                    out.push(run);
                }
            }
        }
    }
    Ok(out)
}

/// The protocol's variants: `[[]]` (the protocol as it is) unless `variants` lists some; an
/// empty or repeated variant list is an error naming the field.
fn variants_of(opts: &ProtocolOptions, p: &str, errs: &Errs) -> Result<Vec<Vec<String>>, String> {
    let Some(v) = &opts.variants else { return Ok(vec![Vec::new()]) };
    let field = format!("protocol.{p}.variants");
    if v.is_empty() {
        return Err(errs.at(&field, "must list at least one variant (`[]` is the protocol as it is)"));
    }
    for (i, a) in v.iter().enumerate() {
        if v[..i].contains(a) {
            return Err(errs.at(&field, format!("variant {a:?} is listed twice")));
        }
    }
    Ok(v.clone())
}

/// A protocol with its node arguments, when it has any: `twopc --tree`.
pub fn label(protocol: &str, node_args: &[String]) -> String {
    if node_args.is_empty() {
        protocol.to_string()
    } else {
        format!("{protocol} {}", node_args.join(" "))
    }
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
pub fn test_args(s: &Suite, r: &PlannedRun, results: &Path, node_bin: Option<&Path>) -> Vec<String> {
    let mut a = vec!["test".to_string(), "--protocol".into(), r.protocol.clone()];
    a.extend(["--workload".into(), r.resolved_workload.clone()]);
    a.extend(["--nemesis".into(), r.nemesis.clone(), "--seed".into(), r.seed.to_string()]);
    a.extend(["--results".into(), results.display().to_string()]);
    for (flag, v) in s.test_flags.iter().filter(|(f, _)| !r.flags.iter().any(|(g, _)| g == f)).chain(&r.flags) {
        a.extend([flag.clone(), v.clone()]);
    }
    if let Some(p) = node_bin {
        a.extend(["--node-bin".into(), p.display().to_string()]);
    }
    for na in &r.node_args {
        a.push(format!("--node-arg={na}"));
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two protocols as the reference node binary describes them.
    pub struct Table;

    impl Protocols for Table {
        fn list(&self) -> Result<Vec<String>, String> {
            Ok(vec!["raft".into(), "crdt-state".into()])
        }
        fn describe(&self, p: &str) -> Result<Description, String> {
            let (claims, workloads): (&[&str], &[&str]) = match p {
                "raft" => (&["linearizable"], &["register", "counter", "set"]),
                _ => (&["strong-eventual-consistency"], &["counter", "set", "register"]),
            };
            let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
            Ok(Description { protocol: p.into(), claims: v(claims), workloads: v(workloads), weak_modes: vec![], bugs: vec![], unsupported: Default::default() })
        }
        fn has_faketime(&self) -> bool {
            false
        }
    }

    const SUITE: &str = r#"
name = "t"
protocols = ["raft", "crdt-state"]
nemeses = ["none", "partition, kill"]
repetitions = 2
seed = 5
time_limit = 3
[protocol.crdt-state]
workloads = ["counter", "register"]
unclaimed = ["register:linearizable", "convergence"]
"#;

    fn planned(text: &str) -> Result<Vec<PlannedRun>, String> {
        let s = parse(text, "s.toml")?;
        plan(&s, "s.toml", &Table).map_err(|e| e.message().to_string())
    }

    #[test]
    fn plans_the_matrix_with_distinct_stable_seeds() {
        let p = planned(SUITE).unwrap();
        assert_eq!(p.len(), 2 * 2 + 2 * 2 * 2);
        // One seed per nemesis and repetition, shared by every protocol and workload.
        let seeds: std::collections::BTreeSet<u64> = p.iter().map(|r| r.seed).collect();
        let schedules: std::collections::BTreeSet<(String, u32)> = p.iter().map(|r| (r.nemesis.clone(), r.rep)).collect();
        assert_eq!(seeds.len(), schedules.len());
        for a in &p {
            for b in &p {
                assert_eq!(a.seed == b.seed, (&a.nemesis, a.rep) == (&b.nemesis, b.rep), "{a:?} {b:?}");
            }
        }
        assert_eq!(p, planned(SUITE).unwrap());
        let reg = p.iter().find(|r| r.workload.as_deref() == Some("register")).unwrap();
        assert_eq!(reg.unclaimed, vec!["linearizable", "convergence"]);
        let ctr = p.iter().find(|r| r.workload.as_deref() == Some("counter")).unwrap();
        assert_eq!(ctr.unclaimed, vec!["convergence"]);
        assert_eq!((p[0].workload.as_deref(), p[0].resolved_workload.as_str()), (None, "register"));
        assert_eq!(p[0].seed, derive_seed(5, "none", 0));
        assert_eq!(p[2].name(), "raft/register/partition,kill#0");
    }

    #[test]
    fn a_protocol_may_replace_the_request_timeout() {
        let mut s = parse(&format!("request_timeout_ms = 300\n{}", SUITE.trim_start()), "s.toml").unwrap();
        s.protocol.entry("crdt-state".into()).or_default().request_timeout_ms = Some(900);
        let runs = plan(&s, "s.toml", &Table).map_err(|e| e.message().to_string()).unwrap();
        let settings = settings(&s);
        for r in &runs {
            let args = test_args(&settings, r, Path::new("res"), None);
            let timeouts: Vec<&String> = args.iter().zip(args.iter().skip(1)).filter(|(f, _)| *f == "--request-timeout-ms").map(|(_, v)| v).collect();
            let want = if r.protocol == "crdt-state" { "900" } else { "300" };
            assert_eq!(timeouts, vec![want], "{args:?}");
        }
        s.protocol.entry("crdt-state".into()).or_default().request_timeout_ms = Some(0);
        let e = plan(&s, "s.toml", &Table).map_err(|e| e.message().to_string()).unwrap_err();
        assert!(e.contains("protocol.crdt-state.request_timeout_ms"), "{e}");
    }

    #[test]
    fn variants_repeat_every_cell_with_the_same_schedule() {
        let text = format!("{}node_args = [\"--a\"]\nvariants = [[], [\"--tree\"]]\n", SUITE.trim_start());
        let p = planned(&text).unwrap();
        let plain = planned(SUITE).unwrap();
        let crdt = |v: &[PlannedRun]| v.iter().filter(|r| r.protocol == "crdt-state").cloned().collect::<Vec<_>>();
        assert_eq!(crdt(&p).len(), 2 * crdt(&plain).len());
        let tree: Vec<&PlannedRun> = p.iter().filter(|r| r.node_args == ["--a", "--tree"]).collect();
        let base: Vec<&PlannedRun> = p.iter().filter(|r| r.protocol == "crdt-state" && r.node_args == ["--a"]).collect();
        assert_eq!(tree.len(), base.len());
        for (t, b) in tree.iter().zip(&base) {
            assert_eq!((t.seed, &t.nemesis, t.rep), (b.seed, &b.nemesis, b.rep), "variants share the schedule");
        }
        assert_eq!(tree[0].name(), "crdt-state --a --tree/counter/none#0");
        assert!(p.iter().filter(|r| r.protocol == "raft").all(|r| r.node_args.is_empty()));
        for (bad, why) in [("variants = []", "at least one"), ("variants = [[\"--x\"], [\"--x\"]]", "twice")] {
            let e = planned(&format!("{}{bad}\n", SUITE.trim_start())).unwrap_err();
            assert!(e.contains("protocol.crdt-state.variants") && e.contains(why), "{e}");
        }
    }

    #[test]
    fn shards_partition_the_plan() {
        let p = planned(SUITE).unwrap();
        let mut all: Vec<PlannedRun> = (1..=3).flat_map(|i| shard(p.clone(), i, 3)).collect();
        all.sort_by_key(|r| (r.seed, r.name()));
        let mut want = p.clone();
        want.sort_by_key(|r| (r.seed, r.name()));
        assert_eq!(all, want);
        assert_eq!(parse_shard("2/4"), Ok((2, 4)));
        assert!(parse_shard("0/4").is_err() && parse_shard("5/4").is_err() && parse_shard("x").is_err());
    }

    /// Each bad field gets an error naming the file and the field.
    #[test]
    fn bad_fields_are_named() {
        let base = "protocols = [\"raft\"]\nnemeses = [\"none\"]\n";
        let cases: &[(&str, &str)] = &[
            ("time_limit = nan", "`time_limit`"),
            ("time_limit = inf", "`time_limit`"),
            ("time_limit = 1e300", "`time_limit`"),
            ("time_limit = 0", "`time_limit`"),
            ("run_timeout_s = -1", "`run_timeout_s`"),
            ("run_grace_s = 0", "`run_grace_s`"),
            ("time_limit = 10\nrun_timeout_s = 5", "`run_timeout_s`"),
            ("nemesis_interval = -inf", "`nemesis_interval`"),
            ("rate = 0", "`rate`"),
            ("rate = 2e6", "`rate`"),
            ("repetitions = 0", "`repetitions`"),
            ("repetitions = 100000", "`repetitions`"),
            ("seed = -3", "`seed`"),
            ("concurrency = 0", "`concurrency`"),
            ("nodes = 2", "`nodes`"),
            ("request_timeout_ms = 0", "`request_timeout_ms`"),
            ("workloads = []", "`workloads`"),
            ("colour = 1", "colour"),
            ("nodes = 3.5", "`nodes`"),
            ("repetitions = \"two\"", "`repetitions`"),
        ];
        for (extra, field) in cases {
            let e = parse(&format!("{base}{extra}\n"), "bad.toml").unwrap_err();
            assert!(e.starts_with("bad.toml: ") && e.contains(field), "{extra}: {e}");
        }
        let lists: &[(&str, &str)] = &[
            ("protocols = []\nnemeses = [\"none\"]", "`protocols`"),
            ("protocols = [\"raft\"]\nnemeses = []", "`nemeses`"),
            ("protocols = [\"raft\", \"raft\"]\nnemeses = [\"none\"]", "`protocols`"),
            ("protocols = [\"raft\"]\nnemeses = [\"flood\"]", "flood"),
            ("protocols = [\"raft\"]\nnemeses = [\"kill,,pause\"]", "`nemeses`"),
            ("protocols = [\"raft\"]\nnemeses = [\"none\"]\n[protocol.raft]\nworkloads = []", "`protocol.raft.workloads`"),
            ("protocols = [\"raft\"]\nnemeses = [\"none\"]\n[protocol.raft]\nnemeses = [\"quake\"]", "`protocol.raft.nemeses`"),
            ("protocols = [\"raft\"]\nnemeses = [\"none\"]\n[protocol.paxos]", "`protocol.paxos`"),
            ("protocols = [\"raft\"]\nnemeses = [\"none\"]\n[protocol.raft]\nunclaimed = [\"psychic\"]", "`protocol.raft.unclaimed`"),
        ];
        for (text, field) in lists {
            let e = parse(text, "bad.toml").unwrap_err();
            assert!(e.starts_with("bad.toml: ") && e.contains(field), "{text}: {e}");
        }
    }

    #[test]
    fn cells_the_node_binary_cannot_run_are_named() {
        let cases: &[(&str, &str)] = &[
            ("protocols = [\"raft\", \"nosuch\"]\nnemeses = [\"none\"]", "unknown protocol \"nosuch\""),
            ("protocols = [\"raft\"]\nworkloads = [\"bank\"]\nnemeses = [\"none\"]", "`workloads`: protocol raft does not serve workload \"bank\""),
            ("protocols = [\"raft\"]\nnemeses = [\"none\"]\n[protocol.raft]\nworkloads = [\"bank\"]", "`protocol.raft.workloads`"),
            ("protocols = [\"raft\"]\nnemeses = [\"clock\"]", "libfaketime"),
            ("protocols = [\"raft\"]\nnemeses = [\"none\"]\n[protocol.raft]\nunclaimed = [\"set:linearizable\"]", "does not run in this suite"),
        ];
        for (text, want) in cases {
            let e = planned(text).unwrap_err();
            assert!(e.starts_with("s.toml: ") && e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn settings_become_flags_and_limits() {
        let s = parse(SUITE, "s.toml").unwrap();
        let suite = settings(&s);
        assert_eq!(suite.run_timeout, Duration::from_secs(192));
        assert_eq!(suite.grace, Duration::from_secs(20));
        let p = planned(SUITE).unwrap();
        let a = test_args(&suite, &p[0], Path::new("/tmp/r"), None).join(" ");
        assert!(a.starts_with("test --protocol raft --workload register --nemesis none --seed "), "{a}");
        assert!(a.contains("--results /tmp/r") && a.contains("--time-limit 3"), "{a}");
    }
}
