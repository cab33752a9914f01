//! faultline's workloads: what the clients ask of a cluster, and the client that asks it.
//!
//! A workload is a seeded generator of operations ([`Workload::next_op`]), the reads to make of
//! every node once the faults have healed ([`Workload::final_reads`]), and the parameters its
//! checker needs ([`Workload::checker_params`]). There is one file per workload:
//! [`register`], [`counter`], [`set`] (also `set-remove`), [`bank`], [`append`]. [`client`]
//! speaks the nodes' wire protocol (Maelstrom bodies as JSON lines) and turns each reply into a
//! three-valued [`Completion`].
//!
//! Operations are described as data ([`OpSpec`]) carrying exactly the values the history records
//! (see docs/design.md, "Values by workload"): the harness writes `f`, `key` and `value` of the
//! invoke straight into the history, and the client maps the same spec onto a request body.
//! Everything random comes from one seed, so the same seed yields the same stream of operations
//! for the same sequence of `next_op` calls.

pub mod append;
pub mod bank;
pub mod client;
pub mod counter;
pub mod register;
pub mod set;

pub use client::Client;
pub use faultline_checkers::history::Key;
use serde_json::Value;

/// One operation to invoke: the history's `f`, `key` and invoke `value`.
#[derive(Clone, Debug, PartialEq)]
pub struct OpSpec {
    pub f: String,
    pub key: Option<Key>,
    pub value: Value,
    /// A wire detail the history does not record: an `add` to a set sends its value as
    /// `element`, an `add` to a counter as `delta`. Both are integers, so the client cannot
    /// tell them apart from `value`; the set workload sets this.
    pub add_element: bool,
    /// A *local read*: a final read of one replica's own applied state, not through a leader
    /// (`"local": true` on the wire and in the history; docs/design.md). Only final reads are
    /// local, and they come after every other final read in [`Workload::final_reads`].
    pub local: bool,
}

impl OpSpec {
    pub fn new(f: &str, key: Option<Key>, value: Value) -> OpSpec {
        OpSpec { f: f.to_string(), key, value, add_element: false, local: false }
    }

    /// A read of `key` (registers) or of the whole state (`None`: counter, set, bank).
    pub fn read(key: Option<Key>) -> OpSpec {
        OpSpec::new("read", key, Value::Null)
    }

    /// A local read of `key`: what this one replica has applied (see [`OpSpec::local`]).
    pub fn local_read(key: Option<Key>) -> OpSpec {
        OpSpec { local: true, ..OpSpec::read(key) }
    }
}

/// How an invoked operation ended, in the history's three values.
#[derive(Clone, Debug, PartialEq)]
pub enum Completion {
    /// It took effect; the value is the history's `ok` value (for a read: the value read).
    Ok(Value),
    /// It certainly did not take effect; the reason.
    Fail(String),
    /// Its outcome is unknown (it may take effect later); the reason.
    Info(String),
}

/// The knobs every workload reads; unused ones are ignored.
#[derive(Clone, Debug)]
pub struct WorkloadOptions {
    /// Number of client threads; the register spreads them over its active keys.
    pub concurrency: usize,
    /// Bank: accounts `0..accounts`.
    pub accounts: u32,
    /// Bank: each account's balance at the start.
    pub initial_balance: i64,
    /// Register and append: a key receives at most this many operations, then is retired for
    /// good. This bounds the size of each key's linearizability search (and, for append, the
    /// length of its list).
    pub max_ops_per_key: u32,
    /// Register: at most this many client threads share one active key, which bounds the
    /// concurrency of each key's linearizability search.
    pub max_writers_per_key: u32,
    /// Operation names the protocol does not serve (its `--describe` says so): the generator
    /// draws again instead of sending one, so a refusal never counts as unavailability.
    pub unsupported: Vec<String>,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        WorkloadOptions {
            concurrency: 10,
            accounts: 8,
            initial_balance: 100,
            max_ops_per_key: 200,
            max_writers_per_key: 5,
            unsupported: Vec::new(),
        }
    }
}

/// A seeded generator of operations for one workload.
pub trait Workload: Send {
    /// The workload's name, one of [`NAMES`].
    fn name(&self) -> &'static str;
    /// The next operation for `process` (a logical client process; a process has at most one
    /// operation in flight, and a retired process is replaced by one with a new number).
    fn next_op(&mut self, process: u64) -> OpSpec;
    /// The reads to make of every node after healing; recorded with `"final": true`. By default
    /// one keyless read of the whole state (counter, set, bank). Local reads
    /// ([`OpSpec::local`]), if any, come last: the harness makes them after the others.
    fn final_reads(&self) -> Vec<OpSpec> {
        vec![OpSpec::read(None)]
    }
    /// Parameters for this workload's checkers (bank: `total` and `accounts`); none by default.
    fn checker_params(&self) -> serde_json::Map<String, Value> {
        serde_json::Map::new()
    }
}

/// Every workload, by name.
pub const NAMES: &[&str] = &["register", "counter", "set", "bank", "append", "set-remove"];

/// Why a workload could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    #[error("unknown workload {0:?} (known: register, counter, set, bank, append, set-remove)")]
    Unknown(String),
    #[error("invalid workload option: {0}")]
    InvalidOption(String),
}

/// Builds the named workload, seeded with `seed`.
pub fn by_name(name: &str, seed: u64, opts: &WorkloadOptions) -> Result<Box<dyn Workload>, WorkloadError> {
    if opts.concurrency == 0 {
        return Err(WorkloadError::InvalidOption("concurrency must be at least 1".into()));
    }
    let w: Box<dyn Workload> = match name {
        "register" => Box::new(register::Register::new(seed, opts)?),
        "counter" => Box::new(counter::Counter::new(seed)),
        "set" => Box::new(set::SetWorkload::new(seed)),
        "set-remove" => Box::new(set::SetRemove::new(seed)),
        "bank" => Box::new(bank::Bank::new(seed, opts)?),
        "append" => Box::new(append::Append::new(seed, opts)?),
        other => return Err(WorkloadError::Unknown(other.to_string())),
    };
    if opts.unsupported.is_empty() {
        return Ok(w);
    }
    Ok(Box::new(Without { inner: w, unsupported: opts.unsupported.clone() }))
}

/// A workload with some operations left out: it draws again until the operation is one the
/// protocol serves (the same seed gives the same sequence, so runs stay reproducible).
struct Without {
    inner: Box<dyn Workload>,
    unsupported: Vec<String>,
}

/// How many draws [`Without`] makes before giving up and sending what it drew.
const MAX_REDRAWS: usize = 1000;

impl Workload for Without {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn next_op(&mut self, process: u64) -> OpSpec {
        let mut op = self.inner.next_op(process);
        for _ in 0..MAX_REDRAWS {
            if !self.unsupported.contains(&op.f) {
                break;
            }
            op = self.inner.next_op(process);
        }
        op
    }

    fn final_reads(&self) -> Vec<OpSpec> {
        self.inner.final_reads()
    }

    fn checker_params(&self) -> serde_json::Map<String, Value> {
        self.inner.checker_params()
    }
}

/// The generator every workload uses: ChaCha8, seeded from the run's seed and a per-workload
/// salt so two workloads of one run never share a stream.
pub(crate) fn rng(seed: u64, salt: u64) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_and_unknown_is_an_error() {
        for name in NAMES {
            let w = by_name(name, 1, &WorkloadOptions::default()).unwrap();
            assert_eq!(w.name(), *name);
        }
        assert!(matches!(by_name("queue", 1, &WorkloadOptions::default()), Err(WorkloadError::Unknown(_))));
        let zero = WorkloadOptions { concurrency: 0, ..Default::default() };
        assert!(matches!(by_name("set", 1, &zero), Err(WorkloadError::InvalidOption(_))));
    }

    #[test]
    fn unsupported_operations_are_never_generated() {
        let opts = WorkloadOptions { unsupported: vec!["cas".into()], ..Default::default() };
        let mut w = by_name("register", 7, &opts).unwrap();
        let fs: Vec<String> = (0..2000).map(|p| w.next_op(p % 10).f).collect();
        assert!(!fs.iter().any(|f| f == "cas"));
        assert!(fs.iter().any(|f| f == "write") && fs.iter().any(|f| f == "read"));
        // Without the option the same workload does send cas.
        let mut w = by_name("register", 7, &WorkloadOptions::default()).unwrap();
        assert!((0..2000).any(|p| w.next_op(p % 10).f == "cas"));
    }

    #[test]
    fn generators_are_deterministic_per_seed() {
        for name in NAMES {
            let run = |seed| {
                let mut w = by_name(name, seed, &WorkloadOptions::default()).unwrap();
                (0..500).map(|i| w.next_op(i % 10)).collect::<Vec<_>>()
            };
            assert_eq!(run(7), run(7), "{name}: same seed, same ops");
            assert_ne!(run(7), run(8), "{name}: different seeds, different ops");
        }
    }
}
