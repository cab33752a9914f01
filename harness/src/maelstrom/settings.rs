//! `faultline test --node-protocol maelstrom`: the flags validated into the run's settings.
//!
//! The node binary is not asked to describe itself (Maelstrom nodes know nothing of
//! `--describe`): the workload decides the checkers. `--node-bin` is required. Without
//! `--nemesis`, the faults are `partition` only: a kill wipes a Maelstrom node's memory, which
//! most Maelstrom nodes are not built to survive, so it is opt-in.

use std::time::Duration;

use crate::cli::TestArgs;
use crate::exit::{self, Failure};
use crate::protocols::Description;
use crate::run::claims;
use crate::run::faketime;
use crate::run::settings::{check_name, check_results_dir, default_name, parse_nemeses, positive_secs, FaultKind, Settings};

use super::workloads;

/// The faults of a run that names none.
pub const DEFAULT_NEMESES: &[&str] = &["partition"];

/// The faults that mean something for a Maelstrom node, besides partitions.
const MAELSTROM_FAULTS: &[FaultKind] = &[FaultKind::Kill, FaultKind::Pause, FaultKind::Clock, FaultKind::Slow];

/// Whether a fault means something for a Maelstrom node (partition shapes, kill, pause, clock,
/// slow); the others need a node contract a Maelstrom node does not follow.
pub fn applies(k: &FaultKind) -> bool {
    MAELSTROM_FAULTS.contains(k) || matches!(k, FaultKind::Partition(_))
}

/// Why `k` cannot be asked of a Maelstrom node.
pub fn not_applying(k: &FaultKind) -> String {
    format!("{} does not apply to Maelstrom nodes (they apply: partition shapes, kill, pause, clock, slow)", k.name())
}

pub fn validate(args: &TestArgs) -> Result<Settings, Failure> {
    let time_limit = positive_secs("--time-limit", args.time_limit)?;
    let nemesis_interval = positive_secs("--nemesis-interval", args.nemesis_interval)?;
    let check_budget = positive_secs("--check-budget", args.check_budget)?;
    let nemesis_raw: Vec<String> = match (&args.nemesis, args.nodes) {
        (Some(given), _) => given.clone(),
        // One or two nodes cannot be partitioned: such a run has no faults unless asked for.
        (None, n) if n < 3 => vec!["none".to_string()],
        (None, _) => args.nemesis_or(DEFAULT_NEMESES),
    };
    let mut faults = parse_nemeses(&nemesis_raw).map_err(exit::usage)?;
    if nemesis_raw.iter().any(|n| n.trim() == "all") {
        // `all` means every fault that applies to a Maelstrom node.
        faults.retain(applies);
    }
    if let Some(k) = faults.iter().find(|k| !applies(k)) {
        return Err(exit::usage(format!("--nemesis: {}", not_applying(k))));
    }
    if args.nodes < 3 && !faults.is_empty() {
        return Err(exit::usage(format!("--nemesis: faults need at least 3 nodes (--nodes {}); use --nemesis none", args.nodes)));
    }
    let Some(bin) = args.node_bin.as_deref() else {
        return Err(exit::usage("--node-bin: --node-protocol maelstrom needs the node binary to run (--node-bin PATH)"));
    };
    let node_bin = crate::protocols::resolve_node_bin(Some(bin))?;
    let workload = match args.workload.as_deref() {
        Some(w) if workloads::NAMES.contains(&w) => w.to_string(),
        Some(w) => return Err(exit::usage(format!("--workload: unknown Maelstrom workload {w:?} (known: {})", workloads::NAMES.join(", ")))),
        None => return Err(exit::usage(format!("--workload: name the Maelstrom workload to run ({})", workloads::NAMES.join(", ")))),
    };
    let checkers = if args.check.is_empty() {
        workloads::checkers(&workload)
    } else {
        claims::from_names(&args.check, workloads::check_alias(&workload)).map_err(exit::usage)?
    };
    let faketime_lib = if faults.contains(&FaultKind::Clock) {
        Some(faketime::find_lib().ok_or_else(|| {
            exit::usage("--nemesis clock: libfaketime (libfaketimeMT.so.1) is not installed; install it with `apt-get install -y faketime libfaketime`")
        })?)
    } else {
        None
    };
    let nemesis_names: Vec<String> = if faults.is_empty() { vec!["none".into()] } else { nemesis_raw.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect() };
    let name = args.name.clone().unwrap_or_else(|| default_name(args.label.as_deref().unwrap_or("maelstrom"), &workload, &nemesis_names, &args.node_args));
    check_name(&name)?;
    check_results_dir(&args.results)?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64 % 1_000_000_000).unwrap_or(1)
    });
    let description = Description {
        protocol: "maelstrom".into(),
        claims: vec![workloads::guarantee(&workload).to_string()],
        workloads: workloads::NAMES.iter().map(|s| s.to_string()).collect(),
        weak_modes: Vec::new(),
        bugs: Vec::new(),
        unsupported: Default::default(),
    };
    Ok(Settings {
        name,
        protocol: "maelstrom".into(),
        workload,
        nemesis_names,
        faults,
        nodes: args.nodes,
        concurrency: args.concurrency,
        rate: args.rate,
        time_limit,
        nemesis_interval,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
        seed,
        results: args.results.clone(),
        node_bin,
        node_bin_given: true,
        node_args: args.node_args.clone(),
        check: args.check.clone(),
        checkers,
        description,
        keep: args.keep,
        check_budget,
        allow_crashes: args.allow_crashes,
        faketime_lib,
        powerloss_lib: None,
        node_protocol: "maelstrom".into(),
        latency_ms: args.latency_ms.unwrap_or(0),
        label: args.label.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn validate_with(extra: &[&str]) -> Result<Settings, Failure> {
        let results = tempfile::tempdir().unwrap();
        let mut argv = vec!["faultline", "test", "--node-protocol", "maelstrom", "--workload", "echo", "--node-bin", "/bin/cat"];
        argv.extend_from_slice(extra);
        let results_arg = results.path().to_str().unwrap().to_string();
        argv.extend(["--results", &results_arg]);
        let Command::Test(args) = Cli::parse_from(argv).command else { unreachable!("a test command") };
        validate(&args)
    }

    /// The default is decided by whether `--nemesis` was given at all, not by comparing with a
    /// default list: asking for exactly `partition,kill` gets the kill.
    #[test]
    fn the_default_nemesis_is_partition_and_an_explicit_kill_is_kept() {
        assert_eq!(validate_with(&[]).unwrap().nemesis_names, ["partition"]);
        let explicit = validate_with(&["--nemesis", "partition,kill"]).unwrap();
        assert!(explicit.faults.contains(&FaultKind::Kill), "{:?}", explicit.faults);
        assert_eq!(validate_with(&["--nodes", "1"]).unwrap().nemesis_names, ["none"]);
        assert!(validate_with(&["--nodes", "2", "--nemesis", "kill"]).is_err());
        assert_eq!(validate_with(&["--nodes", "25", "--latency-ms", "100"]).unwrap().latency_ms, 100);
    }
}
