//! `faultline-node`: runs one reference protocol node (see docs/design.md, "Node wire protocol").
//!
//! ```text
//! faultline-node <protocol> --id n1 --listen 127.0.0.1:PORT --data-dir DIR \
//!                --peer n2=127.0.0.1:PORT ... [--workload W] [--seed N] [protocol options]
//! faultline-node <protocol> --describe
//! faultline-node --list
//! ```
//!
//! Raw arguments are parsed in [`parse`] and validated into [`runtime::Settings`]; every
//! `--name value` or bare `--flag` the runtime does not know becomes a protocol option. Bad
//! usage exits 254 with a message on stderr; a node that fails while running exits 255.

use faultline_nodes::core::{Core, Describe, NodeConfig};
use faultline_nodes::runtime::{self, Settings};
use faultline_nodes::{bugs, crdt_op, crdt_state, paxos, raft, twopc};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_USAGE: u8 = 254;
/// Every workload name a protocol may serve (each protocol's `--describe` says which it does).
const WORKLOADS: &[&str] = &["register", "counter", "set", "bank", "append", "set-remove"];
const EXIT_INTERNAL: u8 = 255;

/// One protocol the binary can run.
struct Protocol {
    describe: fn() -> Describe,
    /// Checks the protocol options, so a bad one is a usage error rather than a silent default.
    validate: fn(&NodeConfig) -> Result<(), String>,
    run: fn(Settings) -> anyhow::Result<()>,
}

fn protocol<C: Core>(describe: fn() -> Describe, validate: fn(&NodeConfig) -> Result<(), String>) -> Protocol {
    Protocol { describe, validate, run: runtime::run::<C> }
}

/// Every protocol, by the name its `describe()` gives.
fn protocols() -> Vec<Protocol> {
    vec![
        protocol::<raft::Raft>(raft::describe, raft::validate),
        protocol::<paxos::Paxos>(paxos::describe, paxos::validate),
        protocol::<twopc::TwoPc>(twopc::describe, twopc::validate),
        protocol::<crdt_op::CrdtOp>(crdt_op::describe, crdt_op::validate),
        protocol::<crdt_state::CrdtState>(crdt_state::describe, crdt_state::validate),
    ]
}

#[derive(Debug)]
struct UsageError(String);

fn usage(text: impl Into<String>) -> UsageError {
    UsageError(text.into())
}

const USAGE: &str = "usage: faultline-node <protocol> --id ID --listen 127.0.0.1:PORT --data-dir DIR \
[--peer ID=HOST:PORT]... [--workload W] [--seed N] [options]\n       faultline-node <protocol> --describe\n       faultline-node --list";

enum Command {
    List,
    Describe(Protocol),
    Run(Protocol, Settings),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse(&args) {
        Ok(c) => c,
        Err(UsageError(text)) => {
            eprintln!("faultline-node: {text}\n{USAGE}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match command {
        Command::List => {
            for p in protocols() {
                println!("{}", (p.describe)().protocol);
            }
            ExitCode::SUCCESS
        }
        Command::Describe(p) => {
            println!("{}", serde_json::to_string(&(p.describe)()).expect("Describe serialises"));
            ExitCode::SUCCESS
        }
        Command::Run(p, settings) => {
            init_tracing(&settings.config.id);
            exit_on_safety_violation();
            match (p.run)(settings) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("fatal: {e:#}");
                    eprintln!("faultline-node: fatal: {e:#}");
                    ExitCode::from(EXIT_INTERNAL)
                }
            }
        }
    }
}

/// A core that finds a local safety invariant broken panics (`safety_assert!`); the node then
/// exits at once with 255 and says so on stderr, rather than unwinding through the runtime.
fn exit_on_safety_violation() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        let text = info.payload().downcast_ref::<String>().map(String::as_str).or_else(|| info.payload().downcast_ref::<&str>().copied());
        if let Some(text) = text.filter(|t| t.starts_with(faultline_nodes::core::SAFETY_VIOLATION)) {
            tracing::error!("fatal: {text}");
            eprintln!("faultline-node: fatal: {text}");
            std::process::exit(EXIT_INTERNAL.into());
        }
    }));
}

fn init_tracing(id: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_env_filter(filter).with_target(false).with_ansi(false).init();
    tracing::info!(node = id, pid = std::process::id(), "faultline-node starting");
}

fn parse(args: &[String]) -> Result<Command, UsageError> {
    let first = args.first().ok_or_else(|| usage("missing protocol"))?;
    if first == "--list" {
        return Ok(Command::List);
    }
    if first == "--help" || first == "-h" {
        println!("{USAGE}");
        std::process::exit(0);
    }
    let protocol = protocols()
        .into_iter()
        .find(|p| (p.describe)().protocol == *first)
        .ok_or_else(|| {
            let names: Vec<String> = protocols().iter().map(|p| (p.describe)().protocol).collect();
            usage(format!("unknown protocol {first:?} (known: {})", names.join(", ")))
        })?;
    let rest = &args[1..];
    if rest.iter().any(|a| a == "--describe") {
        return Ok(Command::Describe(protocol));
    }
    let settings = settings(rest)?;
    let described = (protocol.describe)();
    if !described.workloads.contains(&settings.config.workload) {
        return Err(usage(format!(
            "{} does not serve the {} workload (it serves: {})",
            described.protocol,
            settings.config.workload,
            described.workloads.join(", ")
        )));
    }
    (protocol.validate)(&settings.config).map_err(usage)?;
    Ok(Command::Run(protocol, settings))
}

/// The raw flags: known ones by name, the rest as protocol options.
#[derive(Default)]
struct Raw {
    id: Option<String>,
    listen: Option<String>,
    data_dir: Option<String>,
    peers: Vec<String>,
    workload: Option<String>,
    seed: Option<String>,
    options: BTreeMap<String, String>,
}

fn raw_flags(args: &[String]) -> Result<Raw, UsageError> {
    let mut raw = Raw::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let name = arg.strip_prefix("--").filter(|n| !n.is_empty()).ok_or_else(|| usage(format!("unexpected argument {arg:?}")))?;
        let (name, inline) = match name.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (name, None),
        };
        let next_is_value = args.get(i + 1).is_some_and(|v| !v.starts_with("--"));
        let value = match inline {
            Some(v) => Some(v),
            None if next_is_value => {
                i += 1;
                Some(args[i].clone())
            }
            None => None,
        };
        let need = |v: Option<String>| v.ok_or_else(|| usage(format!("--{name} needs a value")));
        match name {
            "id" => raw.id = Some(need(value)?),
            "listen" => raw.listen = Some(need(value)?),
            "data-dir" => raw.data_dir = Some(need(value)?),
            "peer" => raw.peers.push(need(value)?),
            "workload" => raw.workload = Some(need(value)?),
            "seed" => raw.seed = Some(need(value)?),
            // Repeatable: the names are joined into one option, split again by `bugs::requested`.
            "bug" => {
                let name = need(value)?;
                raw.options.entry(bugs::OPTION.to_string()).and_modify(|v| *v = format!("{v},{name}")).or_insert(name);
            }
            _ => {
                raw.options.insert(name.to_string(), value.unwrap_or_else(|| "true".to_string()));
            }
        }
        i += 1;
    }
    Ok(raw)
}

fn settings(args: &[String]) -> Result<Settings, UsageError> {
    let raw = raw_flags(args)?;
    let id = raw.id.ok_or_else(|| usage("missing --id"))?;
    let listen_text = raw.listen.ok_or_else(|| usage("missing --listen"))?;
    let listen: SocketAddr = listen_text.parse().map_err(|_| usage(format!("--listen {listen_text:?} is not IP:PORT")))?;
    if !listen.ip().is_loopback() {
        return Err(usage(format!("--listen {listen}: only loopback addresses are allowed")));
    }
    let data_dir = PathBuf::from(raw.data_dir.ok_or_else(|| usage("missing --data-dir"))?);
    let mut peer_addrs = BTreeMap::new();
    for peer in &raw.peers {
        let (pid, addr) = peer.split_once('=').ok_or_else(|| usage(format!("--peer {peer:?} is not ID=HOST:PORT")))?;
        let port_ok = addr.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
        if pid.is_empty() || !port_ok {
            return Err(usage(format!("--peer {peer:?} is not ID=HOST:PORT")));
        }
        if pid == id || peer_addrs.insert(pid.to_string(), addr.to_string()).is_some() {
            return Err(usage(format!("--peer {pid}: duplicate node id")));
        }
    }
    let workload = raw.workload.unwrap_or_else(|| "register".to_string());
    if !WORKLOADS.contains(&workload.as_str()) {
        return Err(usage(format!("unknown workload {workload:?} ({})", WORKLOADS.join(", "))));
    }
    let seed = match raw.seed {
        Some(s) => s.parse().map_err(|_| usage(format!("--seed {s:?} is not an integer")))?,
        None => 0,
    };
    let config = NodeConfig { id, peers: peer_addrs.keys().cloned().collect(), workload, options: raw.options, seed };
    Ok(Settings { config, listen, peer_addrs, data_dir })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Vec<String> {
        ["raft", "--id", "n1", "--listen", "127.0.0.1:5", "--data-dir", "/tmp/x"].iter().chain(extra).map(|s| s.to_string()).collect()
    }

    #[test]
    fn repeated_bug_flags_become_one_option() {
        let Ok(Command::Run(_, s)) = parse(&args(&["--bug", "commit-on-one-ack", "--bug=vote-not-persisted"])) else { panic!("rejected") };
        assert_eq!(s.config.option("bug"), Some("commit-on-one-ack,vote-not-persisted"));
        let bugs = raft::Bugs::from_config(&s.config).unwrap();
        assert!(bugs.has(raft::Bug::CommitOnOneAck) && bugs.has(raft::Bug::VoteNotPersisted));
        assert!(!bugs.has(raft::Bug::StaleTermAppend));
        let Ok(Command::Run(_, s)) = parse(&args(&[])) else { panic!("rejected") };
        assert_eq!(raft::Bugs::from_config(&s.config).unwrap(), raft::Bugs::default(), "off by default");
    }

    #[test]
    fn an_unknown_bug_is_a_usage_error() {
        let Err(UsageError(text)) = parse(&args(&["--bug", "nope"])) else { panic!("accepted") };
        assert!(text.contains("--bug \"nope\"") && text.contains("commit-on-one-ack"), "{text}");
    }
}
