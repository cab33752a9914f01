//! The flags of `faultline test`, validated into settings before anything starts.
//!
//! Every check that can be made without running the test is made here, so that a typo costs a
//! usage error (exit 254, naming the flag) and not a half-started cluster. The node binary is
//! asked which protocols it knows and what the chosen one claims; the claims decide the
//! checkers unless `--check` names them.

use std::path::PathBuf;
use std::time::Duration;

use faultline_checkers::registry::CheckerSpec;

use super::claims;
use super::faketime;
use crate::cli::TestArgs;
use crate::exit::{self, Failure};
use crate::protocols::{self, Description};

/// A partition shape, from the contract's nemesis names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Shape {
    /// A different random shape each time (`partition`).
    Random,
    Halves,
    One,
    Ring,
    Bridge,
}

/// One kind of fault the schedule may inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    Partition(Shape),
    Kill,
    Pause,
    Clock,
    Slow,
    /// SIGKILL of the leader right after an acknowledgement.
    KillLeader,
    /// The leader cut off with a minority.
    PartitionLeader,
    /// Kills and restarts within an election timeout, several rounds.
    RestartStorm,
    /// A follower isolated while the leader is killed.
    PartitionKill,
    /// SIGKILL, and every write not yet fsynced lost (the `faultline-powerloss` shim).
    PowerLoss,
    /// The coordinator cut off from the participants, one of them killed while in doubt.
    KillParticipant,
}

impl FaultKind {
    /// The contract's nemesis name.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Partition(Shape::Random) => "partition",
            FaultKind::Partition(Shape::Halves) => "partition-halves",
            FaultKind::Partition(Shape::One) => "partition-one",
            FaultKind::Partition(Shape::Ring) => "partition-ring",
            FaultKind::Partition(Shape::Bridge) => "partition-bridge",
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Clock => "clock",
            FaultKind::Slow => "slow",
            FaultKind::KillLeader => "kill-leader",
            FaultKind::PartitionLeader => "partition-leader",
            FaultKind::RestartStorm => "restart-storm",
            FaultKind::PartitionKill => "partition-kill",
            FaultKind::PowerLoss => "power-loss",
            FaultKind::KillParticipant => "kill-participant",
        }
    }

    /// What `all` enables: every kind with random targets or shapes, plus the aimed ones.
    pub const ALL: [FaultKind; 11] = [
        FaultKind::Partition(Shape::Random),
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Clock,
        FaultKind::Slow,
        FaultKind::KillLeader,
        FaultKind::PartitionLeader,
        FaultKind::RestartStorm,
        FaultKind::PartitionKill,
        FaultKind::PowerLoss,
        FaultKind::KillParticipant,
    ];

    /// Every nemesis name, for messages and docs.
    pub const NAMES: [&'static str; 17] = [
        "none",
        "partition",
        "partition-halves",
        "partition-one",
        "partition-ring",
        "partition-bridge",
        "partition-leader",
        "kill",
        "kill-leader",
        "restart-storm",
        "partition-kill",
        "kill-participant",
        "power-loss",
        "pause",
        "clock",
        "slow",
        "all",
    ];

    fn parse(name: &str) -> Option<Vec<FaultKind>> {
        let one = match name {
            "none" => return Some(Vec::new()),
            "all" => return Some(Self::ALL.to_vec()),
            "partition" => FaultKind::Partition(Shape::Random),
            "partition-halves" => FaultKind::Partition(Shape::Halves),
            "partition-one" => FaultKind::Partition(Shape::One),
            "partition-ring" => FaultKind::Partition(Shape::Ring),
            "partition-bridge" => FaultKind::Partition(Shape::Bridge),
            "kill" => FaultKind::Kill,
            "pause" => FaultKind::Pause,
            "clock" => FaultKind::Clock,
            "slow" => FaultKind::Slow,
            "kill-leader" => FaultKind::KillLeader,
            "partition-leader" => FaultKind::PartitionLeader,
            "restart-storm" => FaultKind::RestartStorm,
            "partition-kill" => FaultKind::PartitionKill,
            "power-loss" => FaultKind::PowerLoss,
            "kill-participant" => FaultKind::KillParticipant,
            _ => return None,
        };
        Some(vec![one])
    }
}

/// Parses `--nemesis` names into fault kinds, deduplicated, in a stable order.
pub fn parse_nemeses(names: &[String]) -> Result<Vec<FaultKind>, String> {
    let mut kinds = Vec::new();
    for raw in names {
        let name = raw.trim();
        if name.is_empty() {
            continue;
        }
        let parsed = FaultKind::parse(name).ok_or_else(|| format!("--nemesis: unknown nemesis {name:?} (known: {})", FaultKind::NAMES.join(", ")))?;
        kinds.extend(parsed);
    }
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// Everything `faultline test` needs, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    pub name: String,
    pub protocol: String,
    pub workload: String,
    /// The `--nemesis` names as given (normalised), for test.json and the rerun command.
    pub nemesis_names: Vec<String>,
    pub faults: Vec<FaultKind>,
    pub nodes: usize,
    pub concurrency: usize,
    pub rate: f64,
    pub time_limit: Duration,
    pub nemesis_interval: Duration,
    pub request_timeout: Duration,
    pub seed: u64,
    pub results: PathBuf,
    pub node_bin: PathBuf,
    /// Whether `--node-bin` was given (the rerun command repeats it only then).
    pub node_bin_given: bool,
    pub node_args: Vec<String>,
    /// `--check` as given; empty when the claims decide.
    pub check: Vec<String>,
    pub checkers: Vec<CheckerSpec>,
    pub description: Description,
    pub keep: bool,
    pub check_budget: Duration,
    /// `--allow-crashes`: a node exiting on its own does not fail the run.
    pub allow_crashes: bool,
    /// libfaketime's multi-threaded library, when the clock nemesis is on.
    pub faketime_lib: Option<PathBuf>,
    /// The power-loss shim (`libfaultline_powerloss.so`), when the power-loss nemesis is on.
    pub powerloss_lib: Option<PathBuf>,
    /// `--node-protocol`: `tcp` (the node contract) or `maelstrom` (stdin/stdout, routed).
    pub node_protocol: String,
    /// `--latency-ms`: the router's delay of every message (Maelstrom nodes only; 0 otherwise).
    pub latency_ms: u64,
    /// `--latency-dist`: how that delay is spread (Maelstrom nodes only; constant otherwise).
    pub latency_dist: crate::maelstrom::latency::Dist,
    /// `--label`: how reports name the system, when the protocol's name does not.
    pub label: Option<String>,
}

impl Settings {
    /// The node ids, `n1` to `nN`.
    pub fn node_ids(&self) -> Vec<String> {
        (1..=self.nodes).map(|i| format!("n{i}")).collect()
    }
}

pub(crate) fn positive_secs(flag: &str, v: f64) -> Result<Duration, Failure> {
    // 1e6 s (11 days) bounds every Duration built from it, sums included.
    if !v.is_finite() || v <= 0.0 || v > 1e6 {
        return Err(exit::usage(format!("{flag}: must be a positive number of seconds, got {v}")));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Checks the numeric flags (pure: no processes are run).
fn check_numbers(args: &TestArgs) -> Result<(), Failure> {
    // Maelstrom nodes are routed, not proxied: a cluster of them may be as large as Maelstrom's
    // own challenges (25 nodes for broadcast), or a single node.
    let (min, max) = if args.node_protocol == "maelstrom" { (1, MAX_MAELSTROM_NODES) } else { (3, 7) };
    if !(min..=max).contains(&args.nodes) {
        return Err(exit::usage(format!("--nodes: a cluster has {min} to {max} nodes, got {}", args.nodes)));
    }
    if let Some(ms) = args.latency_ms {
        if args.node_protocol != "maelstrom" {
            return Err(exit::usage("--latency-ms: only Maelstrom nodes (--node-protocol maelstrom) have routed links; for TCP nodes use --nemesis slow"));
        }
        if ms > MAX_LATENCY_MS {
            return Err(exit::usage(format!("--latency-ms: must be at most {MAX_LATENCY_MS}, got {ms}")));
        }
    }
    if let Some(d) = &args.latency_dist {
        use crate::maelstrom::latency::Dist;
        if args.node_protocol != "maelstrom" {
            return Err(exit::usage("--latency-dist: only Maelstrom nodes (--node-protocol maelstrom) have routed links; for TCP nodes use --nemesis slow"));
        }
        if Dist::parse(d).is_none() {
            return Err(exit::usage(format!("--latency-dist: unknown distribution {d:?} (known: {})", Dist::NAMES.join(", "))));
        }
        if args.latency_ms.unwrap_or(0) == 0 {
            return Err(exit::usage("--latency-dist: spreads --latency-ms, which is not given (or 0)"));
        }
    }
    if args.concurrency == 0 || args.concurrency > 1000 {
        return Err(exit::usage(format!("--concurrency: must be 1 to 1000, got {}", args.concurrency)));
    }
    // The limiter spaces invocations by 1/rate: beyond these bounds the interval is either
    // zero or longer than any run.
    if !args.rate.is_finite() || !(MIN_RATE..=MAX_RATE).contains(&args.rate) {
        return Err(exit::usage(format!("--rate: must be {MIN_RATE} to {MAX_RATE} operations per second, got {}", args.rate)));
    }
    if args.request_timeout_ms == 0 || args.request_timeout_ms > 3_600_000 {
        return Err(exit::usage(format!("--request-timeout-ms: must be 1 to 3600000, got {}", args.request_timeout_ms)));
    }
    Ok(())
}

/// The largest cluster of Maelstrom nodes.
pub const MAX_MAELSTROM_NODES: usize = 50;
/// The longest `--latency-ms` accepted (a minute: anything longer outlasts every request).
pub const MAX_LATENCY_MS: u64 = 60_000;
/// The slowest and the fastest `--rate` accepted, operations per second.
pub const MIN_RATE: f64 = 0.01;
pub const MAX_RATE: f64 = 1_000_000.0;
/// The longest `--name` accepted (it names a directory, and appears in every report).
pub const MAX_NAME_LEN: usize = 120;

/// A test name is a directory of the run store and a word in reports and links: letters,
/// digits and `._+=-`, not starting with a dot, not `latest`.
pub fn check_name(name: &str) -> Result<(), Failure> {
    check_word("--name", "a test", name)
}

/// `--label`, when given, names the system the way `--name` names a test (it becomes part of
/// the default test name).
pub(crate) fn check_label(label: Option<&str>) -> Result<(), Failure> {
    label.map_or(Ok(()), |l| check_word("--label", "the system under test", l))
}

fn check_word(flag: &str, what: &str, name: &str) -> Result<(), Failure> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || "._+=-".contains(c));
    if name.is_empty() || name.len() > MAX_NAME_LEN || !ok_chars || name.starts_with('.') || name == "latest" {
        return Err(exit::usage(format!(
            "{flag}: {name:?} cannot name {what}: use 1 to {MAX_NAME_LEN} letters, digits and `._+=-`, not starting with `.`, not `latest`"
        )));
    }
    Ok(())
}

/// The test name when `--name` is absent: `protocol-workload-nemeses`, then `+option=value` for
/// each node argument (`raft-register-partition+read-mode=local`,
/// `raft-append-kill+bug=commit-on-one-ack`), so a weakened or bugged run never shares a name
/// (and so `latest` and the index rows) with a normal one. Characters outside the name's
/// alphabet become `_`; an over-long name is cut.
pub fn default_name(protocol: &str, workload: &str, nemeses: &[String], node_args: &[String]) -> String {
    let mut name = format!("{protocol}-{workload}-{}", nemeses.join("-"));
    let mut args = node_args.iter().peekable();
    while let Some(a) = args.next() {
        let Some(flag) = a.strip_prefix("--") else { continue };
        let (k, v) = match flag.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None if args.peek().is_some_and(|n| !n.starts_with("--")) => (flag.to_string(), args.next().cloned()),
            None => (flag.to_string(), None),
        };
        name.push('+');
        name.push_str(&k);
        if let Some(v) = v {
            name.push('=');
            name.push_str(&v);
        }
    }
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || "._+=-".contains(c) { c } else { '_' }).collect();
    clean.chars().take(MAX_NAME_LEN).collect()
}

/// `--results` must be a directory, or a path where one can be created.
pub(crate) fn check_results_dir(path: &std::path::Path) -> Result<(), Failure> {
    if path.exists() && !path.is_dir() {
        return Err(exit::usage(format!("--results: {} exists and is not a directory", path.display())));
    }
    Ok(())
}

/// What the node protocol decides about a run: the faults that apply, the node binary, what
/// the protocol claims, the workload and its checkers. The rest of [`Settings`] is validated
/// the same way for every node protocol.
pub(crate) struct Chosen {
    /// The protocol's name: the run's `protocol` (`maelstrom` for Maelstrom nodes).
    pub protocol: String,
    /// `--nemesis` as given, or the protocol's default.
    pub nemesis_raw: Vec<String>,
    pub faults: Vec<FaultKind>,
    pub node_bin: PathBuf,
    pub node_bin_given: bool,
    pub description: Description,
    pub workload: String,
    pub checkers: Vec<CheckerSpec>,
}

/// Validates the flags: those of every run here, those of the node protocol in its [`Chosen`].
pub fn validate(args: &TestArgs) -> Result<Settings, Failure> {
    check_numbers(args)?;
    check_label(args.label.as_deref())?;
    let choose = match args.node_protocol.as_str() {
        "tcp" => choose_tcp,
        "maelstrom" => crate::maelstrom::settings::choose,
        other => return Err(exit::usage(format!("--node-protocol: unknown node protocol {other:?} (known: tcp, maelstrom)"))),
    };
    let time_limit = positive_secs("--time-limit", args.time_limit)?;
    let nemesis_interval = positive_secs("--nemesis-interval", args.nemesis_interval)?;
    let check_budget = positive_secs("--check-budget", args.check_budget)?;
    let Chosen { protocol, nemesis_raw, faults, node_bin, node_bin_given, description, workload, checkers } = choose(args)?;
    let faketime_lib = if faults.contains(&FaultKind::Clock) {
        Some(faketime::find_lib().ok_or_else(|| {
            exit::usage("--nemesis clock: libfaketime (libfaketimeMT.so.1) is not installed; install it with `apt-get install -y faketime libfaketime`")
        })?)
    } else {
        None
    };
    let powerloss_lib = if faults.contains(&FaultKind::PowerLoss) {
        Some(super::faults::power::find_lib().ok_or_else(|| exit::usage(super::faults::power::MISSING))?)
    } else {
        None
    };
    let nemesis_names: Vec<String> = if faults.is_empty() { vec!["none".into()] } else { nemesis_raw.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect() };
    let name = args.name.clone().unwrap_or_else(|| default_name(args.label.as_deref().unwrap_or(&protocol), &workload, &nemesis_names, &args.node_args));
    check_name(&name)?;
    check_results_dir(&args.results)?;
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64 % 1_000_000_000).unwrap_or(1)
    });
    Ok(Settings {
        name,
        protocol,
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
        node_bin_given,
        node_args: args.node_args.clone(),
        check: args.check.clone(),
        checkers,
        description,
        keep: args.keep,
        check_budget,
        allow_crashes: args.allow_crashes,
        faketime_lib,
        powerloss_lib,
        node_protocol: args.node_protocol.clone(),
        latency_ms: args.latency_ms.unwrap_or(0),
        latency_dist: args.latency_dist.as_deref().and_then(crate::maelstrom::latency::Dist::parse).unwrap_or_default(),
        label: args.label.clone(),
    })
}

/// The node contract over TCP: the node binary describes the protocol and its claims.
fn choose_tcp(args: &TestArgs) -> Result<Chosen, Failure> {
    let nemesis_raw = args.nemesis_or(TestArgs::DEFAULT_NEMESES);
    let faults = parse_nemeses(&nemesis_raw).map_err(exit::usage)?;
    let node_bin = protocols::resolve_node_bin(args.node_bin.as_deref())?;
    let known = protocols::list(&node_bin).map_err(|e| Failure::Internal(anyhow::anyhow!(e)))?;
    if !known.iter().any(|p| p == &args.protocol) {
        return Err(exit::usage(format!("--protocol: unknown protocol {:?} (known: {})", args.protocol, known.join(", "))));
    }
    let description = protocols::describe(&node_bin, &args.protocol).map_err(|e| exit::usage(format!("--protocol: {e}")))?;
    let workload = match &args.workload {
        Some(w) if description.workloads.iter().any(|s| s == w) => w.clone(),
        Some(w) => {
            return Err(exit::usage(format!(
                "--workload: protocol {} does not serve workload {w:?} (it serves: {})",
                args.protocol,
                description.workloads.join(", ")
            )))
        }
        None => description.workloads.first().cloned().ok_or_else(|| exit::usage(format!("--protocol: {} serves no workload", args.protocol)))?,
    };
    let checkers = if args.check.is_empty() {
        claims::from_claims(&description.claims, &workload)
    } else {
        claims::from_names(&args.check, &workload).map_err(exit::usage)?
    };
    if checkers.is_empty() {
        return Err(exit::usage(format!(
            "--check: protocol {} claims {:?}, which implies no checker for workload {workload}; name checkers with --check",
            args.protocol, description.claims
        )));
    }
    Ok(Chosen { protocol: args.protocol.clone(), nemesis_raw, faults, node_bin, node_bin_given: args.node_bin.is_some(), description, workload, checkers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_carry_the_node_arguments() {
        let n = |args: &[&str]| default_name("raft", "register", &["partition".to_string()], &args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(n(&[]), "raft-register-partition");
        assert_eq!(n(&["--read-mode", "local"]), "raft-register-partition+read-mode=local");
        assert_eq!(n(&["--read-mode=local", "--tree"]), "raft-register-partition+read-mode=local+tree");
        assert_eq!(n(&["--bug", "a b/c"]), "raft-register-partition+bug=a_b_c");
        assert!(check_name(&n(&["--bug", &"x".repeat(500)])).is_ok());
    }

    #[test]
    fn nemesis_names_parse_and_dedup() {
        let v = |s: &[&str]| parse_nemeses(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(v(&["kill", "partition", "kill"]).unwrap(), vec![FaultKind::Partition(Shape::Random), FaultKind::Kill]);
        assert_eq!(v(&["none"]).unwrap(), vec![]);
        assert_eq!(v(&["all"]).unwrap().len(), FaultKind::ALL.len());
        for name in FaultKind::NAMES {
            assert!(v(&[name]).is_ok(), "{name}");
        }
        let e = v(&["partition", "flood"]).unwrap_err();
        assert!(e.contains("--nemesis") && e.contains("flood"), "{e}");
        for k in FaultKind::ALL {
            assert_eq!(v(&[k.name()]).unwrap(), vec![k]);
        }
    }
}
