//! `faultline test --node-protocol maelstrom`: what the node protocol decides in the run's
//! settings ([`crate::run::settings::validate`] does the rest, as for TCP nodes).
//!
//! The node binary is not asked to describe itself (Maelstrom nodes know nothing of
//! `--describe`): the workload decides the checkers. `--node-bin` is required. Without
//! `--nemesis`, the faults are `partition` only: a kill wipes a Maelstrom node's memory, which
//! most Maelstrom nodes are not built to survive, so it is opt-in.

use crate::cli::TestArgs;
use crate::exit::{self, Failure};
use crate::protocols::Description;
use crate::run::claims;
use crate::run::settings::{parse_nemeses, Chosen, FaultKind};

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

/// What `--node-protocol maelstrom` decides: the faults that apply to a Maelstrom node, the
/// node binary, the workload and its checkers.
pub(crate) fn choose(args: &TestArgs) -> Result<Chosen, Failure> {
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
    let description = Description {
        protocol: "maelstrom".into(),
        claims: vec![workloads::guarantee(&workload).to_string()],
        workloads: workloads::NAMES.iter().map(|s| s.to_string()).collect(),
        weak_modes: Vec::new(),
        bugs: Vec::new(),
        unsupported: Default::default(),
    };
    Ok(Chosen { protocol: "maelstrom".into(), nemesis_raw, faults, node_bin, node_bin_given: true, description, workload, checkers })
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use crate::exit::Failure;
    use crate::run::settings::{validate, FaultKind, Settings};
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
        let spread = validate_with(&["--latency-ms", "100", "--latency-dist", "exponential"]).unwrap();
        assert_eq!(spread.latency_dist, crate::maelstrom::latency::Dist::Exponential);
        assert_eq!(validate_with(&["--latency-ms", "100"]).unwrap().latency_dist, crate::maelstrom::latency::Dist::Constant);
        for bad in [&["--latency-ms", "100", "--latency-dist", "normal"][..], &["--latency-dist", "uniform"][..]] {
            match validate_with(bad) {
                Err(Failure::Usage(m)) => assert!(m.contains("--latency-dist"), "{m}"),
                other => panic!("{bad:?} gave {:?}", other.map(|s| s.latency_dist)),
            }
        }
    }
}
