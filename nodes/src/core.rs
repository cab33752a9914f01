//! The boundary between a protocol and the world.
//!
//! A protocol core is a pure state machine: the runtime feeds it inputs (a client request, a
//! message from a peer, a timer firing) and it answers by pushing *effects* into a [`Ctx`]:
//! messages to send, replies to clients, timers to set, state to persist. A core never touches
//! a socket, a file or a clock: the current wall-clock time arrives in the context (read by the
//! runtime through the standard library, so libfaketime can skew it), and randomness comes from
//! the context's seeded generator. The same core can therefore be model checked (stateright),
//! run on a simulated network in tests, and run for real by [`crate::runtime`].
//!
//! The runtime performs the effects of one input in a fixed order: persist first (fsync), then
//! send messages and replies, then arm timers. A core may thus acknowledge a write in the same
//! step that persists it: the acknowledgement never leaves before the data is durable.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Debug;

/// A node's name, e.g. `n1`.
pub type NodeId = String;

/// Identifies one pending client request; the runtime maps it back to a connection and
/// `msg_id`. Cores treat it as opaque and may carry it in their own state (e.g. until commit).
pub type ClientId = u64;

/// A core's own timer name; setting a timer with the same id again replaces it.
pub type TimerId = u64;

/// Requests, replies and error codes are the client wire protocol's, defined once in
/// `faultline-wire` for the nodes and the harness alike.
pub use faultline_wire::{ErrorCode, Reply, Request};

/// What a protocol says about itself (`--describe`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Describe {
    pub protocol: String,
    /// The guarantees it claims: `linearizable`, `atomic-commitment`, `bank-invariant`,
    /// `strong-eventual-consistency`.
    pub claims: Vec<String>,
    /// The workloads it serves: `register`, `counter`, `set`, `bank`, `append`, `set-remove`;
    /// the default first.
    pub workloads: Vec<String>,
    /// Its known-weak modes, each a protocol option and what it breaks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub weak_modes: Vec<String>,
    /// Its known-bug switches (`--bug NAME`), each with what it breaks (see [`crate::bugs`]).
    #[serde(default)]
    pub bugs: Vec<crate::bugs::BugDoc>,
    /// Operations of a workload it does not serve (workload → operation names): the harness's
    /// generator leaves them out, so a refusal never counts against availability.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub unsupported: std::collections::BTreeMap<String, Vec<String>>,
}

/// How the message of a broken local safety invariant starts (see [`safety_assert!`]).
pub const SAFETY_VIOLATION: &str = "safety violation: ";

/// Asserts an invariant a correct node can check on its own (a committed entry never changes,
/// one leader per term, a decided transaction never flips). A node that finds one broken must
/// stop before acting on it: the panic ends the step before any of its effects is performed, and
/// the binary exits 255 with the message on stderr, which the harness counts as a failed run.
#[macro_export]
macro_rules! safety_assert {
    ($cond:expr, $($arg:tt)+) => {
        if !$cond {
            panic!("{}{}", $crate::core::SAFETY_VIOLATION, format_args!($($arg)+));
        }
    };
}

/// A node's place in the cluster and its options, fixed for the life of the process.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeConfig {
    pub id: NodeId,
    /// Every other node, sorted.
    pub peers: Vec<NodeId>,
    /// Which workload the node serves (`register`, `counter`, `set`, `bank`, `append`,
    /// `set-remove`).
    pub workload: String,
    /// Protocol options (`--read-mode local` becomes `read-mode` → `local`; flags map to `true`).
    pub options: BTreeMap<String, String>,
    /// Seed for the core's random choices (election timeouts, ...).
    pub seed: u64,
}

impl NodeConfig {
    /// All node ids (self and peers), sorted.
    pub fn members(&self) -> Vec<NodeId> {
        let mut all = self.peers.clone();
        all.push(self.id.clone());
        all.sort();
        all
    }

    pub fn option(&self, name: &str) -> Option<&str> {
        self.options.get(name).map(|s| s.as_str())
    }

    pub fn flag(&self, name: &str) -> bool {
        matches!(self.option(name), Some("true") | Some(""))
    }

    /// A majority of the cluster.
    pub fn quorum(&self) -> usize {
        (self.peers.len() + 1) / 2 + 1
    }
}

/// One effect a core asks the runtime to perform.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect<M> {
    Send { to: NodeId, msg: M },
    Reply { client: ClientId, reply: Reply },
    /// Arm (or re-arm) a timer to fire after `after_ms` of monotonic time.
    SetTimer { id: TimerId, after_ms: u64 },
    CancelTimer { id: TimerId },
    /// Replace the durable file `name` with `bytes` (written to a temporary file, fsynced, renamed).
    Save { name: String, bytes: Vec<u8> },
    /// Append one record to the durable log `name` (fsynced before anything of this step is sent).
    Append { name: String, record: Vec<u8> },
    /// Drop the durable log `name` and start it again from these records (log compaction).
    Rewrite { name: String, records: Vec<Vec<u8>> },
}

/// What survived a crash: the files saved and the records of each log, as the runtime found
/// them in the data directory. A torn last record of a log is dropped by the runtime.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Storage {
    pub files: BTreeMap<String, Vec<u8>>,
    pub logs: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Storage {
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(|v| v.as_slice())
    }

    pub fn log(&self, name: &str) -> &[Vec<u8>] {
        self.logs.get(name).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// Applies a step's durable effects, as the runtime would; for simulations and model checks.
    pub fn apply<M>(&mut self, effect: &Effect<M>) {
        match effect {
            Effect::Save { name, bytes } => {
                self.files.insert(name.clone(), bytes.clone());
            }
            Effect::Append { name, record } => self.logs.entry(name.clone()).or_default().push(record.clone()),
            Effect::Rewrite { name, records } => {
                self.logs.insert(name.clone(), records.clone());
            }
            _ => {}
        }
    }
}

/// The context of one step: the time, a seeded generator, and the effects pushed so far.
pub struct Ctx<M> {
    /// Wall-clock milliseconds since the Unix epoch, as the node's (possibly skewed) clock reads.
    pub now_ms: u64,
    pub rng: ChaCha8Rng,
    pub effects: Vec<Effect<M>>,
}

impl<M> Ctx<M> {
    pub fn new(now_ms: u64, rng: ChaCha8Rng) -> Self {
        Ctx { now_ms, rng, effects: Vec::new() }
    }

    /// A context for tests and simulations.
    pub fn for_test(now_ms: u64, seed: u64) -> Self {
        Ctx::new(now_ms, ChaCha8Rng::seed_from_u64(seed))
    }

    pub fn send(&mut self, to: impl Into<NodeId>, msg: M) {
        self.effects.push(Effect::Send { to: to.into(), msg });
    }

    pub fn reply(&mut self, client: ClientId, reply: Reply) {
        self.effects.push(Effect::Reply { client, reply });
    }

    pub fn set_timer(&mut self, id: TimerId, after_ms: u64) {
        self.effects.push(Effect::SetTimer { id, after_ms });
    }

    /// A timer with a uniformly random delay in `[lo_ms, hi_ms]`.
    pub fn set_random_timer(&mut self, id: TimerId, lo_ms: u64, hi_ms: u64) {
        let after_ms = self.rng.gen_range(lo_ms..=hi_ms);
        self.set_timer(id, after_ms);
    }

    pub fn cancel_timer(&mut self, id: TimerId) {
        self.effects.push(Effect::CancelTimer { id });
    }

    pub fn save(&mut self, name: impl Into<String>, bytes: Vec<u8>) {
        self.effects.push(Effect::Save { name: name.into(), bytes });
    }

    pub fn append(&mut self, name: impl Into<String>, record: Vec<u8>) {
        self.effects.push(Effect::Append { name: name.into(), record });
    }

    pub fn rewrite(&mut self, name: impl Into<String>, records: Vec<Vec<u8>>) {
        self.effects.push(Effect::Rewrite { name: name.into(), records });
    }

    pub fn take(&mut self) -> Vec<Effect<M>> {
        std::mem::take(&mut self.effects)
    }
}

/// A protocol core. The runtime builds one with [`Core::recover`] at start (and after every
/// restart), then calls [`Core::on_start`] once and the handlers for every input.
pub trait Core: Send + 'static {
    /// The peer-to-peer message type; the runtime frames it as one JSON line.
    type Msg: Serialize + DeserializeOwned + Clone + Debug + Send + 'static;

    /// Rebuilds the node from what survived in its data directory (empty on first start).
    fn recover(config: &NodeConfig, storage: &Storage) -> Self
    where
        Self: Sized;

    /// Arms the first timers (election timeout, anti-entropy, retries).
    fn on_start(&mut self, ctx: &mut Ctx<Self::Msg>);

    fn on_request(&mut self, ctx: &mut Ctx<Self::Msg>, client: ClientId, request: Request);

    fn on_message(&mut self, ctx: &mut Ctx<Self::Msg>, from: &str, msg: Self::Msg);

    fn on_timer(&mut self, ctx: &mut Ctx<Self::Msg>, timer: TimerId);

    /// What the node believes about leadership, for the harness's `status` request (so a
    /// nemesis can aim at the leader or coordinator): e.g. `{"leader":"n2","term":7}`.
    fn status(&self) -> Value {
        Value::Null
    }

    /// The answer to a *local read* (`{"type":"read","key":k,"local":true}`, a contract
    /// extension, docs/design.md): this replica's own applied state for `key` (or the whole
    /// state without a key), at once, without asking a leader or a quorum. The harness reads
    /// every replica this way after healing to compare the replicas themselves (the `agreement`
    /// checker). Never part of the client history the linearizability checker judges. By default
    /// a definite error 10 (not supported).
    fn local_read(&self, key: Option<&Value>) -> Reply {
        let _ = key;
        Reply::error(ErrorCode::NotSupported, "local reads are not supported by this protocol")
    }
}
