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
//! nodes = 5                      # replaces the suite's for this protocol
//! ```
//!
//! A protocol entry may name its own node binary, so one suite compares systems from several
//! binaries (a raft of one's own next to the reference one), and Maelstrom nodes run in suites
//! like any other: the entry's name is then a label, not a protocol the binary knows.
//!
//! ```toml
//! node_bin = "bin/mynode"        # every entry without its own; relative to this file
//! [protocol.my-raft]
//! protocol = "raft"              # the protocol the binary is asked for; default: the entry's name
//! node_bin = "bin/my-raft"       # relative to this file
//! [protocol.gossip]
//! node_protocol = "maelstrom"    # or at the top, for every entry
//! node_bin = "examples/maelstrom/broadcast.py"
//! workloads = ["broadcast"]      # required: Maelstrom nodes cannot describe themselves
//! nodes = 25                     # Maelstrom clusters: 1 to 50 nodes
//! latency_ms = 100               # Maelstrom nodes only
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
    /// `tcp` (the default) or `maelstrom`, for every entry that does not say.
    pub node_protocol: Option<String>,
    /// The node binary of every entry that names none, relative to the suite file;
    /// `faultline suite --node-bin` replaces it.
    pub node_bin: Option<String>,
    /// Maelstrom nodes only: the delay of every routed message, milliseconds.
    pub latency_ms: Option<i64>,
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
    /// The protocol the node binary is asked for, when the entry's name is a label.
    pub protocol: Option<String>,
    /// `tcp` or `maelstrom`, replacing the suite's.
    pub node_protocol: Option<String>,
    /// This entry's node binary, relative to the suite file.
    pub node_bin: Option<String>,
    /// The cluster size of this entry's runs, replacing the suite's.
    pub nodes: Option<i64>,
    /// Maelstrom nodes only: the delay of every routed message, replacing the suite's.
    pub latency_ms: Option<i64>,
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

/// What the harness needs to know about node binaries and protocols: the binaries themselves in
/// real use, a table in tests and in the fuzzer (so they run no process).
pub trait Protocols {
    /// The binary of entries that name none (`faultline suite --node-bin`, else faultline-node).
    fn default_bin(&self) -> PathBuf;
    /// `path` as an existing node binary, or why it is not one.
    fn locate(&self, path: &Path) -> Result<PathBuf, String>;
    /// The protocol names node binary `bin` implements.
    fn list(&self, bin: &Path) -> Result<Vec<String>, String>;
    /// What one protocol claims and which workloads it serves (the default first).
    fn describe(&self, bin: &Path, protocol: &str) -> Result<Description, String>;
    /// Whether the clock nemesis can run (libfaketime is installed).
    fn has_faketime(&self) -> bool;
}

/// The real [`Protocols`]: asks the node binaries, as `faultline test` does; `self.0` is the
/// binary of entries that name none.
pub struct NodeBinary(pub PathBuf);

impl Protocols for NodeBinary {
    fn default_bin(&self) -> PathBuf {
        self.0.clone()
    }
    fn locate(&self, path: &Path) -> Result<PathBuf, String> {
        if path.is_file() {
            Ok(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
        } else {
            Err(format!("{} does not exist or is not a file", path.display()))
        }
    }
    fn list(&self, bin: &Path) -> Result<Vec<String>, String> {
        crate::protocols::list(bin)
    }
    fn describe(&self, bin: &Path, protocol: &str) -> Result<Description, String> {
        crate::protocols::describe(bin, protocol)
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
    check_node_protocols(&s, &errs)?;
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
    let (lo, hi) = node_range(s.node_protocol.as_deref());
    int_in(s.nodes, "nodes", lo, hi, errs)?;
    // 1e9 ms is MAX_SECONDS: a request may wait as long as a run may last, no longer.
    int_in(s.request_timeout_ms, "request_timeout_ms", 1, 1_000_000_000, errs)
}

/// The cluster sizes a node protocol allows: the proxies' 3 to 7, or 1 to 50 routed
/// Maelstrom nodes.
fn node_range(node_protocol: Option<&str>) -> (i64, i64) {
    match node_protocol {
        Some("maelstrom") => (1, crate::run::settings::MAX_MAELSTROM_NODES as i64),
        _ => (3, 7),
    }
}

/// The node protocol of entry `p`: its own, the suite's, or `tcp`.
fn node_protocol_of<'a>(s: &'a SuiteFile, opts: &'a ProtocolOptions) -> &'a str {
    opts.node_protocol.as_deref().or(s.node_protocol.as_deref()).unwrap_or("tcp")
}

/// `node_protocol`, `protocol`, `nodes` and `latency_ms`, which depend on the entry's node
/// protocol; and entry names, which label runs.
fn check_node_protocols(s: &SuiteFile, errs: &Errs) -> Result<(), String> {
    let known = |field: &str, v: &Option<String>| match v.as_deref() {
        None | Some("tcp" | "maelstrom") => Ok(()),
        Some(other) => Err(errs.at(field, format!("unknown node protocol {other:?} (known: tcp, maelstrom)"))),
    };
    known("node_protocol", &s.node_protocol)?;
    let max_latency = crate::run::settings::MAX_LATENCY_MS as i64;
    int_in(s.latency_ms, "latency_ms", 0, max_latency, errs)?;
    for p in &s.protocols {
        let opts = s.protocol.get(p).cloned().unwrap_or_default();
        let at = |f: &str| format!("protocol.{p}.{f}");
        known(&at("node_protocol"), &opts.node_protocol)?;
        let np = node_protocol_of(s, &opts);
        let (lo, hi) = node_range(Some(np));
        int_in(opts.nodes, &at("nodes"), lo, hi, errs)?;
        if opts.nodes.is_none() {
            int_in(s.nodes, "nodes", lo, hi, errs).map_err(|e| format!("{e} (for {np} protocol {p})"))?;
        }
        int_in(opts.latency_ms, &at("latency_ms"), 0, max_latency, errs)?;
        if np == "maelstrom" {
            if opts.protocol.is_some() {
                return Err(errs.at(&at("protocol"), "a Maelstrom node is asked for no protocol: the entry's name labels it"));
            }
        } else if let Some(field) = [(opts.latency_ms, at("latency_ms")), (s.latency_ms, "latency_ms".to_string())].into_iter().find_map(|(v, f)| v.map(|_| f)) {
            return Err(errs.at(&field, format!("only Maelstrom nodes have routed links with a latency; {p} is a TCP node (use the `slow` nemesis)")));
        }
        if crate::run::settings::check_label(Some(p)).is_err() {
            return Err(errs.at("protocols", format!("{p:?} cannot label runs: use letters, digits and `._+=-`")));
        }
    }
    Ok(())
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
    /// The entry of the file: the protocol, or a label for the system (then `label` is set).
    pub protocol: String,
    /// `tcp` or `maelstrom`.
    pub node_protocol: String,
    /// What the run's `test.json` will call its protocol: the one the binary is asked for, or
    /// `maelstrom`.
    pub run_protocol: String,
    /// `--label`: the entry's name, when it is not `run_protocol`.
    pub label: Option<String>,
    /// `--node-bin`, when the run does not use faultline-node.
    pub node_bin: Option<PathBuf>,
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
/// `cli_bin` is `faultline suite --node-bin`, already located.
pub fn plan(s: &SuiteFile, file: &str, cli_bin: Option<&Path>, protocols: &dyn Protocols) -> Result<Vec<PlannedRun>, Invalid> {
    let errs = Errs { file };
    let settings = settings(s);
    let mut known: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    let mut out = Vec::new();
    for p in &s.protocols {
        let opts = s.protocol.get(p).cloned().unwrap_or_default();
        let maelstrom = node_protocol_of(s, &opts) == "maelstrom";
        let bin = binary_of(s, &opts, p, file, cli_bin, protocols, &errs).map_err(Invalid::Usage)?;
        let target = if maelstrom {
            let bin = bin.ok_or_else(|| Invalid::Usage(errs.at(&format!("protocol.{p}.node_bin"), "a Maelstrom node needs its binary (`node_bin`, here or at the top of the file)")))?;
            Target { node_protocol: "maelstrom", run_protocol: "maelstrom".into(), bin: Some(bin), desc: maelstrom_description() }
        } else {
            let asked = opts.protocol.clone().unwrap_or_else(|| p.clone());
            let path = match &bin {
                Some(b) => b.clone(),
                None => protocols
                    .locate(&protocols.default_bin())
                    .map_err(|e| Invalid::Usage(format!("{file}: the default node binary (set `node_bin` or --node-bin): {e}")))?,
            };
            if !known.contains_key(&path) {
                let list = protocols.list(&path).map_err(|e| Invalid::NodeBinary(format!("{file}: asking the node binary {} for its protocols: {e}", path.display())))?;
                known.insert(path.clone(), list);
            }
            let names = &known[&path];
            if !names.contains(&asked) {
                let field = if opts.protocol.is_some() { format!("protocol.{p}.protocol") } else { "protocols".to_string() };
                return Err(Invalid::Usage(errs.at(&field, format!("unknown protocol {asked:?} (the node binary knows: {})", names.join(", ")))));
            }
            let desc = protocols.describe(&path, &asked).map_err(|e| Invalid::NodeBinary(format!("{file}: {e}")))?;
            Target { node_protocol: "tcp", run_protocol: asked, bin, desc }
        };
        out.extend(plan_protocol(s, &settings, p, &target, &errs, protocols.has_faketime()).map_err(Invalid::Usage)?);
    }
    Ok(out)
}

/// What one entry of the file runs.
struct Target {
    node_protocol: &'static str,
    run_protocol: String,
    bin: Option<PathBuf>,
    desc: Description,
}

/// What a Maelstrom node serves: every Maelstrom workload (it cannot say which it was written
/// for), each claiming the guarantee its workload checks.
fn maelstrom_description() -> Description {
    let names: Vec<String> = crate::maelstrom::workloads::NAMES.iter().map(|s| s.to_string()).collect();
    Description { protocol: "maelstrom".into(), claims: Vec::new(), workloads: names, weak_modes: Vec::new(), bugs: Vec::new(), unsupported: Default::default() }
}

/// The node binary of entry `p`: its own `node_bin`, else `--node-bin`, else the file's
/// `node_bin` (both of the file relative to the file), else `None` (faultline-node).
fn binary_of(s: &SuiteFile, opts: &ProtocolOptions, p: &str, file: &str, cli_bin: Option<&Path>, protocols: &dyn Protocols, errs: &Errs) -> Result<Option<PathBuf>, String> {
    let dir = Path::new(file).parent().unwrap_or(Path::new(""));
    let in_file = |field: &str, rel: &str| {
        if rel.trim().is_empty() {
            return Err(errs.at(field, "is empty: name the node binary"));
        }
        protocols.locate(&dir.join(rel)).map(Some).map_err(|e| errs.at(field, format!("{e} (a path relative to the suite file)")))
    };
    match (&opts.node_bin, cli_bin, &s.node_bin) {
        (Some(own), _, _) => in_file(&format!("protocol.{p}.node_bin"), own),
        (None, Some(cli), _) => Ok(Some(cli.to_path_buf())),
        (None, None, Some(top)) => in_file("node_bin", top),
        (None, None, None) => Ok(None),
    }
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

fn plan_protocol(s: &SuiteFile, settings: &Suite, p: &str, target: &Target, errs: &Errs, faketime: bool) -> Result<Vec<PlannedRun>, String> {
    let opts = s.protocol.get(p).cloned().unwrap_or_default();
    let maelstrom = target.node_protocol == "maelstrom";
    int_in(opts.request_timeout_ms, &format!("protocol.{p}.request_timeout_ms"), 1, 1_000_000_000, errs)?;
    if maelstrom && opts.workloads.is_none() && s.workloads.is_none() {
        let known = crate::maelstrom::workloads::NAMES.join(", ");
        return Err(errs.at(&format!("protocol.{p}.workloads"), format!("a Maelstrom node cannot say which workloads it serves: name them (known: {known})")));
    }
    let workloads = workloads_of(s, p, &target.desc, errs)?;
    let (nem_field, nemeses) = match &opts.nemeses {
        Some(n) => (format!("protocol.{p}.nemeses"), n.clone()),
        None => ("nemeses".to_string(), s.nemeses.clone()),
    };
    if maelstrom {
        let nodes = opts.nodes.or(s.nodes).unwrap_or(5);
        check_maelstrom_nemeses(&nemeses, nodes, &nem_field, errs)?;
    }
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
            let alias = if maelstrom { crate::maelstrom::workloads::check_alias(resolved) } else { resolved.as_str() };
            let unclaimed = unclaimed_for(&opts, p, alias, errs)?;
            for n in &nemeses {
                for rep in 0..settings.repetitions {
                    let mut run = PlannedRun {
                        protocol: p.to_string(),
                        node_protocol: target.node_protocol.to_string(),
                        run_protocol: target.run_protocol.clone(),
                        label: (p != target.run_protocol).then(|| p.to_string()),
                        node_bin: target.bin.clone(),
                        workload: named.clone(),
                        resolved_workload: resolved.clone(),
                        nemesis: normalize(n),
                        rep,
                        seed: 0,
                        node_args: settings.node_args.iter().chain(&opts.node_args).chain(variant).cloned().collect(),
                        unclaimed: unclaimed.clone(),
                        flags: entry_flags(s, &opts),
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

/// The `faultline test` flags of an entry that replace the suite's.
fn entry_flags(s: &SuiteFile, opts: &ProtocolOptions) -> Vec<(String, String)> {
    let flags = [("--request-timeout-ms", opts.request_timeout_ms), ("--nodes", opts.nodes), ("--latency-ms", opts.latency_ms.or(s.latency_ms))];
    flags.into_iter().filter_map(|(f, v)| v.map(|v| (f.to_string(), v.to_string()))).collect()
}

/// Every fault of every nemesis entry applies to a Maelstrom node (`all` keeps those that do),
/// and a cluster with faults has at least 3 nodes.
fn check_maelstrom_nemeses(list: &[String], nodes: i64, field: &str, errs: &Errs) -> Result<(), String> {
    for entry in list {
        let parts: Vec<String> = entry.split(',').map(|x| x.trim().to_string()).collect();
        if parts.iter().any(|x| x == "all") {
            continue;
        }
        let faults = crate::run::settings::parse_nemeses(&parts).map_err(|e| errs.at(field, e.trim_start_matches("--nemesis: ")))?;
        if let Some(k) = faults.iter().find(|k| !crate::maelstrom::settings::applies(k)) {
            return Err(errs.at(field, crate::maelstrom::settings::not_applying(k)));
        }
        if nodes < 3 && !faults.is_empty() {
            return Err(errs.at(field, format!("{entry:?}: faults need at least 3 nodes, the cluster has {nodes}")));
        }
    }
    Ok(())
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
pub fn test_args(s: &Suite, r: &PlannedRun, results: &Path) -> Vec<String> {
    let mut a = vec!["test".to_string()];
    if r.node_protocol == "maelstrom" {
        a.extend(["--node-protocol".into(), "maelstrom".into()]);
    } else {
        a.extend(["--protocol".into(), r.run_protocol.clone()]);
    }
    if let Some(l) = &r.label {
        a.extend(["--label".into(), l.clone()]);
    }
    a.extend(["--workload".into(), r.resolved_workload.clone()]);
    a.extend(["--nemesis".into(), r.nemesis.clone(), "--seed".into(), r.seed.to_string()]);
    a.extend(["--results".into(), results.display().to_string()]);
    for (flag, v) in s.test_flags.iter().filter(|(f, _)| !r.flags.iter().any(|(g, _)| g == f)).chain(&r.flags) {
        a.extend([flag.clone(), v.clone()]);
    }
    if let Some(p) = &r.node_bin {
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
        fn default_bin(&self) -> PathBuf {
        PathBuf::from("faultline-node")
    }
    fn locate(&self, path: &Path) -> Result<PathBuf, String> {
        if path.to_string_lossy().contains("missing") {
            Err(format!("{} does not exist or is not a file", path.display()))
        } else {
            Ok(path.to_path_buf())
        }
    }
    fn list(&self, _bin: &Path) -> Result<Vec<String>, String> {
            Ok(vec!["raft".into(), "crdt-state".into()])
        }
        fn describe(&self, _bin: &Path, p: &str) -> Result<Description, String> {
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
        plan(&s, "s.toml", None, &Table).map_err(|e| e.message().to_string())
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
        let runs = plan(&s, "s.toml", None, &Table).map_err(|e| e.message().to_string()).unwrap();
        let settings = settings(&s);
        for r in &runs {
            let args = test_args(&settings, r, Path::new("res"));
            let timeouts: Vec<&String> = args.iter().zip(args.iter().skip(1)).filter(|(f, _)| *f == "--request-timeout-ms").map(|(_, v)| v).collect();
            let want = if r.protocol == "crdt-state" { "900" } else { "300" };
            assert_eq!(timeouts, vec![want], "{args:?}");
        }
        s.protocol.entry("crdt-state".into()).or_default().request_timeout_ms = Some(0);
        let e = plan(&s, "s.toml", None, &Table).map_err(|e| e.message().to_string()).unwrap_err();
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

    const MIXED: &str = r#"
protocols = ["raft", "my-raft", "gossip"]
nemeses = ["none", "partition"]
seed = 9
nodes = 3
[protocol.my-raft]
protocol = "raft"
node_bin = "bin/my-raft"
[protocol.gossip]
node_protocol = "maelstrom"
node_bin = "ex/broadcast.py"
workloads = ["broadcast"]
nodes = 25
latency_ms = 100
"#;

    /// Entries with binaries of their own, a protocol asked under another name, and a
    /// Maelstrom node: each run gets its binary, protocol, label and flags, and every entry
    /// meets the same schedules.
    #[test]
    fn entries_name_their_binary_and_node_protocol() {
        let s = parse(MIXED, "dir/s.toml").unwrap();
        let suite = settings(&s);
        let runs = plan(&s, "dir/s.toml", None, &Table).map_err(|e| e.message().to_string()).unwrap();
        assert_eq!(runs.len(), 3 * 2);
        let args = |entry: &str| {
            let r = runs.iter().find(|r| r.protocol == entry && r.nemesis == "partition").unwrap();
            (r.clone(), test_args(&suite, r, Path::new("res")).join(" "))
        };
        let (raft, a) = args("raft");
        assert_eq!((raft.label.as_deref(), raft.node_bin.as_deref(), raft.run_protocol.as_str()), (None, None, "raft"));
        assert!(a.starts_with("test --protocol raft --workload register") && !a.contains("--node-bin") && !a.contains("--label"), "{a}");
        let (mine, a) = args("my-raft");
        assert_eq!((mine.label.as_deref(), mine.run_protocol.as_str()), (Some("my-raft"), "raft"));
        assert!(a.starts_with("test --protocol raft --label my-raft --workload register") && a.contains("--node-bin dir/bin/my-raft"), "{a}");
        assert_eq!(mine.cell(), "my-raft/register/partition");
        let (gossip, a) = args("gossip");
        assert_eq!((gossip.node_protocol.as_str(), gossip.run_protocol.as_str()), ("maelstrom", "maelstrom"));
        assert!(a.starts_with("test --node-protocol maelstrom --label gossip --workload broadcast") && !a.contains("--protocol "), "{a}");
        assert!(a.contains("--node-bin dir/ex/broadcast.py") && a.contains("--nodes 25") && a.contains("--latency-ms 100") && !a.contains("--nodes 3"), "{a}");
        assert_eq!((raft.seed, mine.seed), (gossip.seed, gossip.seed), "one schedule per nemesis for every entry");
        // --node-bin serves the entries without a binary of their own.
        let runs = plan(&s, "dir/s.toml", Some(Path::new("/x/cli-node")), &Table).map_err(|e| e.message().to_string()).unwrap();
        let bin = |e: &str| runs.iter().find(|r| r.protocol == e).and_then(|r| r.node_bin.clone());
        assert_eq!((bin("raft"), bin("my-raft")), (Some(PathBuf::from("/x/cli-node")), Some(PathBuf::from("dir/bin/my-raft"))));
    }

    #[test]
    fn entries_that_cannot_run_are_named() {
        let maelstrom = "protocols = [\"g\"]\nnemeses = [\"partition\"]\n[protocol.g]\nnode_protocol = \"maelstrom\"\n";
        let cases: &[(String, &str)] = &[
            (format!("{maelstrom}node_bin = \"b.py\""), "`protocol.g.workloads`: a Maelstrom node cannot say"),
            (format!("{maelstrom}workloads = [\"broadcast\"]"), "`protocol.g.node_bin`: a Maelstrom node needs its binary"),
            (format!("{maelstrom}node_bin = \"missing.py\"\nworkloads = [\"broadcast\"]"), "`protocol.g.node_bin`: dir/missing.py does not exist"),
            (format!("{maelstrom}node_bin = \"b.py\"\nworkloads = [\"register\"]"), "does not serve workload \"register\""),
            (format!("{maelstrom}node_bin = \"b.py\"\nworkloads = [\"echo\"]\nnemeses = [\"kill-leader\"]"), "`protocol.g.nemeses`: kill-leader does not apply to Maelstrom nodes"),
            (format!("{maelstrom}node_bin = \"b.py\"\nworkloads = [\"echo\"]\nnodes = 2"), "faults need at least 3 nodes"),
            ("protocols = [\"mine\"]\nnemeses = [\"none\"]\n[protocol.mine]\nprotocol = \"zab\"".to_string(), "`protocol.mine.protocol`: unknown protocol \"zab\""),
        ];
        for (text, want) in cases {
            let s = parse(text, "dir/s.toml").unwrap_or_else(|e| panic!("{text}: {e}"));
            let e = plan(&s, "dir/s.toml", None, &Table).map_err(|e| e.message().to_string()).unwrap_err();
            assert!(e.starts_with("dir/s.toml: ") && e.contains(want), "{text}: {e}");
        }
        let parse_errors: &[(String, &str)] = &[
            (format!("{maelstrom}nodes = 51"), "`protocol.g.nodes`: must be an integer from 1 to 50"),
            (format!("{maelstrom}protocol = \"raft\""), "`protocol.g.protocol`: a Maelstrom node is asked for no protocol"),
            ("protocols = [\"raft\"]\nnemeses = [\"none\"]\nnodes = 25".to_string(), "`nodes`: must be an integer from 3 to 7"),
            ("protocols = [\"raft\"]\nnemeses = [\"none\"]\nlatency_ms = 5".to_string(), "`latency_ms`: only Maelstrom nodes"),
            ("protocols = [\"raft\"]\nnemeses = [\"none\"]\nnode_protocol = \"udp\"".to_string(), "`node_protocol`: unknown node protocol \"udp\""),
            ("protocols = [\"my raft\"]\nnemeses = [\"none\"]".to_string(), "`protocols`: \"my raft\" cannot label runs"),
        ];
        for (text, want) in parse_errors {
            let e = parse(text, "dir/s.toml").unwrap_err();
            assert!(e.starts_with("dir/s.toml: ") && e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn settings_become_flags_and_limits() {
        let s = parse(SUITE, "s.toml").unwrap();
        let suite = settings(&s);
        assert_eq!(suite.run_timeout, Duration::from_secs(192));
        assert_eq!(suite.grace, Duration::from_secs(20));
        let p = planned(SUITE).unwrap();
        let a = test_args(&suite, &p[0], Path::new("/tmp/r")).join(" ");
        assert!(a.starts_with("test --protocol raft --workload register --nemesis none --seed "), "{a}");
        assert!(a.contains("--results /tmp/r") && a.contains("--time-limit 3"), "{a}");
    }
}
