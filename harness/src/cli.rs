//! The command line, parsed in one place. Commands validate these raw flags into settings of
//! their own; a bad value is a usage error (exit 254) that names the flag.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "faultline", version, about = "Fault injection and consistency checking for replicated systems")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one test: a cluster, a workload, faults, then the checkers.
    Test(TestArgs),
    /// Check a stored history (a file, or a run directory: its checkers run again).
    Check(CheckArgs),
    /// Run a matrix of tests from a TOML file and write a comparison report.
    Suite(SuiteArgs),
    /// (Re)render the report of a run, or the index and comparison of a results directory.
    Report(ReportArgs),
    /// List every protocol with the guarantee it claims and the workloads it serves.
    Protocols(ProtocolsArgs),
    /// Run one configuration seed after seed until a violation or the budget, then shrink it.
    Hunt(HuntArgs),
}

#[derive(Args, Debug, Clone)]
pub struct HuntArgs {
    /// The configuration to hunt with: every flag of `faultline test` (`--seed` is the first seed).
    #[command(flatten)]
    pub test: TestArgs,
    /// Time budget for the whole hunt: `90` (seconds), `90s`, `10m`, `1h`.
    #[arg(long, default_value = "5m")]
    pub budget: String,
    /// Report the first violation without shrinking it.
    #[arg(long)]
    pub no_shrink: bool,
    /// Replays of the same seed per shrink candidate (timing varies between replays).
    #[arg(long, default_value_t = 2)]
    pub replays: u32,
    /// Runs at a time (consecutive seeds side by side, each its own cluster). Default: the
    /// number of cores.
    #[arg(long)]
    pub jobs: Option<usize>,
}

#[derive(Args, Debug, Clone)]
pub struct TestArgs {
    /// Protocol to test (see `faultline protocols`).
    #[arg(long, default_value = "raft")]
    pub protocol: String,
    /// Workload: register, counter, set, set-remove, append, bank (each protocol serves some;
    /// see `faultline protocols`). Default: the protocol's first workload.
    #[arg(long)]
    pub workload: Option<String>,
    /// Faults, comma separated: none, partition, partition-halves, partition-one, partition-ring,
    /// partition-bridge, partition-leader, kill, kill-leader, restart-storm, partition-kill,
    /// kill-participant, power-loss, pause, clock, slow, all. Default: partitions, kills and
    /// the faults aimed at the leader (`TestArgs::DEFAULT_NEMESES`; for Maelstrom nodes: partition).
    #[arg(long, value_delimiter = ',')]
    pub nemesis: Option<Vec<String>>,
    /// Cluster size (3 to 7; Maelstrom nodes: 1 to 50).
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Concurrent client processes.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Target request rate over all clients, operations per second.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Length of the workload phase, seconds.
    #[arg(long, default_value_t = 20.0)]
    pub time_limit: f64,
    /// Seed for every random choice; printed so a run can be repeated. Default: from the clock.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run store directory.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Node binary to launch (default: faultline-node next to this binary).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// One argument passed on to every node (repeatable), e.g. `--node-arg=--read-mode --node-arg=local`.
    #[arg(long = "node-arg", allow_hyphen_values = true)]
    pub node_args: Vec<String>,
    /// Checkers to run instead of the protocol's claims: linearizable, convergence, counter, set,
    /// orset, agreement, bank.
    #[arg(long, value_delimiter = ',')]
    pub check: Vec<String>,
    /// Seconds of quiet between faults and length of each fault.
    #[arg(long, default_value_t = 3.0)]
    pub nemesis_interval: f64,
    /// Name of the test in the run store (default: protocol-workload-nemeses).
    #[arg(long)]
    pub name: Option<String>,
    /// Keep node data directories even when the run passes.
    #[arg(long)]
    pub keep: bool,
    /// Client request timeout, milliseconds: past it the outcome is unknown (info).
    #[arg(long, default_value_t = 1000)]
    pub request_timeout_ms: u64,
    /// Budget for the checkers, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub check_budget: f64,
    /// Accept nodes that exit on their own during the run: still recorded as `crash` events and
    /// restarted, but no longer a reason the run cannot vouch for the system.
    #[arg(long)]
    pub allow_crashes: bool,
    /// How the harness talks to the nodes: `tcp` (the node contract: `--listen`, `--peer`, a
    /// proxy per link) or `maelstrom` (JSON messages on stdin/stdout, routed by the harness; see
    /// docs/maelstrom.md).
    #[arg(long, default_value = "tcp")]
    pub node_protocol: String,
    /// Maelstrom nodes only: every message between nodes, clients and services takes this long
    /// on its way (Maelstrom's `--latency`), on top of any `slow` fault. Default 0.
    #[arg(long)]
    pub latency_ms: Option<u64>,
    /// Maelstrom nodes only: how `--latency-ms` is spread (Maelstrom's `--latency-dist`):
    /// `constant` (the default), `uniform` (0 to twice `--latency-ms`) or `exponential` (mean
    /// `--latency-ms`), drawn from the run's seed.
    #[arg(long)]
    pub latency_dist: Option<String>,
    /// How reports and comparisons name the system under test (1 to 120 of `[A-Za-z0-9._+=-]`),
    /// when the protocol's name does not: a node binary of your own that implements `raft`
    /// next to the reference one, or a Maelstrom node. Default: the protocol (`maelstrom` for
    /// Maelstrom nodes). Node arguments are appended to it in comparisons, as to the protocol.
    #[arg(long)]
    pub label: Option<String>,
}

impl TestArgs {
    /// The faults of a TCP run that names none: random partitions and kills, plus the
    /// faults aimed at the leader (or coordinator) — killed right after an acknowledgement, cut off
    /// with a minority, restarted in storms within an election timeout — which find the most bugs
    /// (docs/detection.md). Nothing that needs an install (clock: libfaketime) or a preloadable
    /// node (power-loss).
    pub const DEFAULT_NEMESES: &'static [&'static str] = &["partition", "kill", "kill-leader", "partition-leader", "restart-storm"];

    /// `--nemesis` as given, or `default` when it was not.
    pub fn nemesis_or(&self, default: &[&str]) -> Vec<String> {
        self.nemesis.clone().unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect())
    }

    /// The faults this run will have: `--nemesis`, or the default of its node protocol.
    pub fn effective_nemesis(&self) -> Vec<String> {
        match self.node_protocol.as_str() {
            "maelstrom" => self.nemesis_or(crate::maelstrom::settings::DEFAULT_NEMESES),
            _ => self.nemesis_or(TestArgs::DEFAULT_NEMESES),
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// History files (`.jsonl` or `.edn`) or run directories, checked one after the other in
    /// this process; the exit code is the worst verdict (1 over 2 over 0).
    #[arg(required = true, num_args = 1..)]
    pub paths: Vec<PathBuf>,
    /// Model: register, cas-register, kv, counter, set, mutex, fifo-queue, unordered-queue,
    /// multi-register, string-kv. Default: guessed from the operations.
    #[arg(long)]
    pub model: Option<String>,
    /// Input format: jsonl, edn or jepsen-log (Jepsen's console log of operations). Default: from
    /// the extension, else from the first lines.
    #[arg(long)]
    pub format: Option<String>,
    /// Print one JSON object with the verdict and its explanation.
    #[arg(long)]
    pub json: bool,
    /// Time budget, seconds; past it the answer is unknown (exit 2).
    #[arg(long, default_value_t = 60.0)]
    pub budget: f64,
    /// Write a self-contained HTML page explaining the verdict.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Checkers to run on a file instead of linearizability: linearizable, counter, set, convergence, bank.
    #[arg(long, value_delimiter = ',')]
    pub check: Vec<String>,
    /// Memory cap, MiB: the calls of the history, the process and the search count; past it the answer is unknown.
    #[arg(long, default_value_t = 2048)]
    pub memory_mb: u64,
}

#[derive(Args, Debug, Clone)]
pub struct SuiteArgs {
    /// The suite file.
    pub suite: PathBuf,
    /// Run store directory.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Run only slice I of N of the matrix (1-based), e.g. `--shard 2/4`.
    #[arg(long)]
    pub shard: Option<String>,
    /// Node binary of every protocol that names none of its own in the file (replaces the
    /// file's top-level `node_bin`; default: faultline-node next to this binary).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Print the planned runs (cell, repetition, seed) of this shard and exit.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// A run directory, or a results directory.
    pub path: PathBuf,
    /// With a results directory: also re-render every run's report (slow: reads every history).
    #[arg(long)]
    pub runs: bool,
}

#[derive(Args, Debug, Clone)]
pub struct ProtocolsArgs {
    /// Node binary to ask (default: faultline-node next to this binary).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
