//! Two-phase commit over a sharded bank (workload `bank`).
//!
//! Accounts `0..accounts` are spread over the sorted members (account `i` on member `i % n`).
//! Every client request is a transaction run by a coordinator (`n1`, or with `--coordinator any`
//! the node the client reached; other nodes forward): a transfer touches the owners of its two
//! accounts, a read takes shared locks on every account of every node and returns a consistent
//! snapshot. The protocol is classic presumed-abort 2PC (Gray; Mohan, Lindsay & Obermarck 1986):
//!
//! 1. the coordinator logs `Begin` and sends `Prepare` (down a tree with `--tree`);
//! 2. a participant validates (no negative balance), locks its accounts (a conflict votes no, it
//!    never waits, so there are no deadlocks), logs `Prepared` with its writes, votes yes;
//! 3. the coordinator logs a commit iff every vote is yes and then tells the participants; the
//!    client hears `transfer_ok` only after the commit record is durable, and a definite error
//!    (14, or 30 for a lock conflict) when the transaction aborted;
//! 4. participants apply or drop their writes, release the locks, log the outcome and ack.
//!
//! A coordinator that times out before deciding aborts. A prepared participant that hears nothing
//! is *in doubt*: it keeps its locks and asks the coordinator again and again (also after a
//! restart) and never decides alone. That is 2PC's well-known blocking, and this protocol does not
//! claim availability under faults. `--unsafe-commit-on-timeout` is a deliberately broken variant
//! that commits when votes are missing at the timeout.

pub mod bugs;
mod coordinator;
mod durable;
mod participant;
pub mod types;

use crate::core::{ErrorCode, ClientId, Core, Ctx, Describe, NodeConfig, NodeId, Reply, Request, Storage, TimerId};
use durable::{Rec, Snapshot, LOG};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
pub use bugs::{Bug, Bugs};
pub use types::{Account, Balances, FwdId, Msg, Op, Outcome, Txn, TxnId, Vote};

pub fn describe() -> Describe {
    Describe {
        protocol: "twopc".into(),
        claims: vec!["atomic-commitment".into(), "bank-invariant".into()],
        workloads: vec!["bank".into()],
        weak_modes: vec![
            "--unsafe-commit-on-timeout: the coordinator commits when votes are missing at its timeout, \
             breaking atomicity and the bank invariant under partitions and message loss"
                .into(),
        ],
        bugs: Bugs::describe(),
        unsupported: Default::default(),
    }
}

/// Checks the protocol options (for the binary, so a bad one is a usage error).
pub fn validate(config: &NodeConfig) -> Result<(), String> {
    if config.workload != "bank" {
        return Err(format!("twopc serves the bank workload, not {}", config.workload));
    }
    let (_, errors) = Settings::from_config(config);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// The one periodic timer; every timeout is counted in its ticks so no clock is read.
const TICK: TimerId = 1;
pub const TICK_MS: u64 = 100;
/// A coordinator gives up on missing votes after this many ticks.
const VOTE_TIMEOUT_TICKS: u32 = 5;
/// An in-doubt participant asks the coordinator this often.
const QUERY_EVERY_TICKS: u32 = 3;
/// A forwarded request the coordinator never answered is reported as a timeout (indefinite).
const FORWARD_TIMEOUT_TICKS: u32 = 20;
/// An intermediate tree node stops relaying a decision after this long (in-doubt nodes below
/// it ask the coordinator themselves).
const RELAY_GIVE_UP_TICKS: u32 = 50;
/// A transaction aborted by a lock conflict is retried this many times before the client hears
/// error 30; each attempt is a fresh transaction, the aborted one certainly had no effect.
const CONFLICT_RETRIES: u32 = 3;
const MAX_ACTIVE: usize = 512;
const MAX_FORWARDS: usize = 1024;
const RECENT_CAP: usize = 8192;
/// Compact the log after this many records.
const COMPACT_AFTER: usize = 4096;

/// Validated options.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Settings {
    pub id: NodeId,
    pub members: Vec<NodeId>,
    pub accounts: u32,
    pub initial_balance: i64,
    /// `None`: any node coordinates the requests it receives.
    pub coordinator: Option<NodeId>,
    pub tree: bool,
    pub unsafe_commit: bool,
    /// Known bugs switched on (none by default).
    pub bugs: Bugs,
}

impl Settings {
    /// Reads the options; bad values fall back to the defaults with a note in `errors` (see
    /// [`validate`]: the binary rejects them before a core exists, so this stays total).
    pub fn from_config(config: &NodeConfig) -> (Settings, Vec<String>) {
        let mut errors = Vec::new();
        let mut num = |name: &str, default: i64| match config.option(name).map(str::parse::<i64>) {
            None => default,
            Some(Ok(v)) if v >= 0 => v,
            Some(_) => {
                errors.push(format!("--{name} must be a non-negative integer; using {default}"));
                default
            }
        };
        let accounts = num("accounts", 8);
        let initial_balance = num("initial-balance", 100);
        if !(1..=1 << 20).contains(&accounts) {
            errors.push(format!("--accounts must be between 1 and {}", 1 << 20));
        }
        let accounts = accounts.clamp(1, 1 << 20) as u32;
        let bugs = Bugs::from_config(config).unwrap_or_else(|e| {
            errors.push(e);
            Bugs::default()
        });
        let members = config.members();
        let coordinator = match config.option("coordinator") {
            Some("any") => None,
            Some(n) if members.iter().any(|m| m == n) => Some(n.to_string()),
            None => Some(members[0].clone()),
            Some(other) => {
                errors.push(format!("--coordinator must be `any` or a member id, not {other:?}"));
                Some(members[0].clone())
            }
        };
        let s = Settings {
            id: config.id.clone(),
            members,
            accounts,
            initial_balance,
            coordinator,
            tree: config.flag("tree"),
            unsafe_commit: config.flag("unsafe-commit-on-timeout"),
            bugs,
        };
        (s, errors)
    }

    pub fn owner(&self, account: Account) -> &NodeId {
        &self.members[account as usize % self.members.len()]
    }

    pub fn my_accounts(&self) -> impl Iterator<Item = Account> + '_ {
        (0..self.accounts).filter(move |&a| self.owner(a) == &self.id)
    }
}

/// Who waits for a transaction's result.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Origin {
    Local(ClientId),
    Remote { node: NodeId, fwd: FwdId },
}

/// A lock on one account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Lock {
    Shared(BTreeSet<TxnId>),
    Exclusive(TxnId),
}

/// A transaction this node has prepared (voted yes on locally) and not yet seen decided.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Pending {
    txn: Txn,
    writes: Balances,
    locks: Vec<(Account, bool)>,
    durable: bool,
    /// The balances read here (reads only).
    read: Balances,
    /// The children's votes, `None` while missing.
    votes: BTreeMap<NodeId, Option<Vote>>,
    /// The aggregated vote once known.
    sent: Option<Vote>,
    idle_ticks: u32,
    /// In doubt: the participant has asked the coordinator for the decision (or found the
    /// prepare in its log after a restart), so the wait is no longer the protocol's normal
    /// round trip. A transaction blocked by its locks is refused as unavailable, not as a
    /// conflict: two-phase commit blocking, as availability must count it.
    asked: bool,
}

/// Passing a decision down the tree and waiting for the children's acks.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Relay {
    commit: bool,
    order: Vec<NodeId>,
    tree: bool,
    missing: BTreeSet<NodeId>,
    /// The parent to ack once every child acked; `None` at the coordinator.
    ack_to: Option<NodeId>,
    /// Whether the transaction is in the coordinator's log (a transfer): then `Done` is logged
    /// when everyone acked.
    logged: bool,
    ticks: u32,
}

/// A transaction the coordinator runs and has not decided.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Active {
    origin: Origin,
    txn: Txn,
    attempt: u32,
    ticks_left: u32,
}

/// A bounded memory of recent outcomes, oldest forgotten first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct Recent {
    map: BTreeMap<TxnId, Outcome>,
    order: VecDeque<TxnId>,
}

impl Recent {
    fn insert(&mut self, id: TxnId, outcome: Outcome) {
        if self.map.insert(id.clone(), outcome).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > RECENT_CAP {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
    }
}

/// A two-phase-commit node: coordinator and participant at once. Comparable and hashable so
/// the model checker can store the states it visited.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TwoPc {
    s: Settings,
    epoch: u64,
    next_seq: u64,
    next_fwd: u64,
    balances: Balances,
    locks: BTreeMap<Account, Lock>,
    pending: BTreeMap<TxnId, Pending>,
    decided: Recent,
    relays: BTreeMap<TxnId, Relay>,
    active: BTreeMap<TxnId, Active>,
    /// Conflict-aborted requests to run again at the next tick.
    retries: Vec<(Origin, Op, u32)>,
    /// Transfers found begun and undecided at recovery: aborted in `on_start`.
    recovered_begun: Vec<Txn>,
    /// Commits logged and not acknowledged by all at recovery: relayed again in `on_start`.
    recovered_commits: Vec<(TxnId, Vec<NodeId>, bool)>,
    forwards: BTreeMap<FwdId, (ClientId, u32)>,
    seen_forwards: BTreeSet<(NodeId, FwdId)>,
    seen_order: VecDeque<(NodeId, FwdId)>,
    log_records: usize,
    notes: Vec<String>,
}

impl TwoPc {
    fn me(&self) -> &str {
        &self.s.id
    }

    /// Balances of this node's accounts as committed so far.
    pub fn balances(&self) -> &Balances {
        &self.balances
    }

    /// Recent outcomes, for the atomicity checks of tests.
    pub fn outcomes(&self) -> impl Iterator<Item = (&TxnId, &Outcome)> {
        self.decided.map.iter()
    }

    /// Transactions prepared here with writes whose decision this node has not learned.
    pub fn in_doubt(&self) -> usize {
        self.pending.values().filter(|p| p.durable && p.txn.id.coord != self.s.id).count()
    }

    /// Transactions prepared here with writes whose decision this node has not learned, whether
    /// or not the prepare was logged.
    pub fn voted_yes(&self) -> usize {
        self.pending.values().filter(|p| !p.writes.is_empty() && p.txn.id.coord != self.s.id).count()
    }

    /// Transactions this node coordinates and has not decided.
    pub fn undecided(&self) -> usize {
        self.active.len()
    }

    /// Problems found in the options or the log at recovery.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    fn log(&mut self, ctx: &mut Ctx<Msg>, rec: Rec) {
        ctx.append(LOG, rec.encode());
        self.log_records += 1;
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            epoch: self.epoch,
            balances: self.balances.clone(),
            prepared: self.pending.values().filter(|p| p.durable).map(|p| (p.txn.clone(), p.writes.clone())).collect(),
            decided: self.decided.order.iter().filter_map(|id| Some((id.clone(), *self.decided.map.get(id)?))).collect(),
            commits: self
                .relays
                .iter()
                .filter(|(_, r)| r.commit && r.logged && r.ack_to.is_none())
                .map(|(id, r)| (id.clone(), r.order.clone(), r.tree))
                .collect(),
            begun: Vec::new(),
        }
    }

    /// Replaces the log by one snapshot once it has grown long. Undecided transfers are left
    /// out: under presumed abort a coordinator that forgot them answers "abort", which is right.
    fn maybe_compact(&mut self, ctx: &mut Ctx<Msg>) {
        if self.log_records < COMPACT_AFTER {
            return;
        }
        // Active transfers that lose their Begin would not be proactively aborted after a crash;
        // the in-doubt participants still learn "abort" by asking.
        ctx.rewrite(LOG, vec![Rec::Snapshot(self.snapshot()).encode()]);
        self.log_records = 1;
    }

    fn answer(&mut self, ctx: &mut Ctx<Msg>, origin: &Origin, reply: Reply) {
        match origin {
            Origin::Local(c) => ctx.reply(*c, reply),
            Origin::Remote { node, fwd } => ctx.send(node.clone(), Msg::ForwardReply { fwd: *fwd, reply }),
        }
    }

    fn parse_account(&self, v: &Value) -> Option<Account> {
        let n = match v {
            Value::Number(n) => n.as_u64()?,
            Value::String(s) => s.parse::<u64>().ok()?,
            _ => return None,
        };
        (n < self.s.accounts as u64).then_some(n as Account)
    }

    /// Turns a client request into a transaction, or the error to answer.
    fn to_op(&self, request: &Request) -> Result<Op, Reply> {
        match request {
            Request::Read { key: None } => Ok(Op::Read),
            Request::Transfer { from, to, amount } => {
                let bad = |what: &str| Reply::error(ErrorCode::MalformedRequest, what.to_string());
                let from = self.parse_account(from).ok_or_else(|| bad("unknown from account"))?;
                let to = self.parse_account(to).ok_or_else(|| bad("unknown to account"))?;
                if *amount < 0 {
                    return Err(bad("negative amount"));
                }
                Ok(Op::Transfer { from, to, amount: *amount })
            }
            _ => Err(Reply::error(ErrorCode::NotSupported, "twopc serves the bank workload: transfer and read")),
        }
    }

    fn is_coordinator(&self) -> bool {
        self.s.coordinator.as_deref().map_or(true, |c| c == self.s.id)
    }

    fn forward(&mut self, ctx: &mut Ctx<Msg>, client: ClientId, request: Request) {
        let coord = self.s.coordinator.clone().expect("forward only with a fixed coordinator");
        if self.forwards.len() >= MAX_FORWARDS {
            ctx.reply(client, Reply::error(ErrorCode::TemporarilyUnavailable, "too many forwarded requests"));
            return;
        }
        let fwd = FwdId { epoch: self.epoch, n: self.next_fwd };
        self.next_fwd += 1;
        self.forwards.insert(fwd, (client, FORWARD_TIMEOUT_TICKS));
        ctx.send(coord, Msg::Forward { fwd, request });
    }

    fn on_forward(&mut self, ctx: &mut Ctx<Msg>, from: &str, fwd: FwdId, request: Request) {
        let key = (from.to_string(), fwd);
        // The network may duplicate a message: run each forwarded request once.
        if !self.seen_forwards.insert(key.clone()) {
            return;
        }
        self.seen_order.push_back(key);
        while self.seen_order.len() > RECENT_CAP {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen_forwards.remove(&old);
            }
        }
        let origin = Origin::Remote { node: from.to_string(), fwd };
        match self.to_op(&request) {
            Ok(op) if self.is_coordinator() => self.start_txn(ctx, origin, op, 0),
            Ok(_) => self.answer(ctx, &origin, Reply::error(ErrorCode::TemporarilyUnavailable, "not the coordinator")),
            Err(reply) => self.answer(ctx, &origin, reply),
        }
    }

    fn tick_forwards(&mut self, ctx: &mut Ctx<Msg>) {
        let expired: Vec<FwdId> = self
            .forwards
            .iter_mut()
            .filter_map(|(id, (_, left))| {
                *left = left.saturating_sub(1);
                (*left == 0).then_some(*id)
            })
            .collect();
        for id in expired {
            if let Some((client, _)) = self.forwards.remove(&id) {
                ctx.reply(client, Reply::error(ErrorCode::Timeout, "the coordinator did not answer"));
            }
        }
    }
}

impl Core for TwoPc {
    type Msg = Msg;

    fn recover(config: &NodeConfig, storage: &Storage) -> Self {
        let (s, mut notes) = Settings::from_config(config);
        let initial: Balances = s.my_accounts().map(|a| (a, s.initial_balance)).collect();
        let (snap, errors) = durable::replay(storage, initial);
        notes.extend(errors);
        let mut node = TwoPc {
            epoch: snap.epoch,
            next_seq: 0,
            next_fwd: 0,
            balances: snap.balances,
            locks: BTreeMap::new(),
            pending: BTreeMap::new(),
            decided: Recent::default(),
            relays: BTreeMap::new(),
            active: BTreeMap::new(),
            retries: Vec::new(),
            recovered_begun: snap.begun,
            recovered_commits: snap.commits,
            forwards: BTreeMap::new(),
            seen_forwards: BTreeSet::new(),
            seen_order: VecDeque::new(),
            log_records: storage.log(LOG).len(),
            notes,
            s,
        };
        for (id, outcome) in snap.decided {
            node.decided.insert(id, outcome);
        }
        for (txn, writes) in snap.prepared {
            node.restore_prepared(txn, writes);
        }
        node
    }

    fn on_start(&mut self, ctx: &mut Ctx<Msg>) {
        self.epoch += 1;
        self.log(ctx, Rec::Epoch(self.epoch));
        self.resume_after_restart(ctx);
        ctx.set_timer(TICK, TICK_MS);
    }

    fn on_request(&mut self, ctx: &mut Ctx<Msg>, client: ClientId, request: Request) {
        match self.to_op(&request) {
            Err(reply) => ctx.reply(client, reply),
            Ok(op) if self.is_coordinator() => self.start_txn(ctx, Origin::Local(client), op, 0),
            Ok(_) => self.forward(ctx, client, request),
        }
        self.maybe_compact(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<Msg>, from: &str, msg: Msg) {
        match msg {
            Msg::Prepare { txn } => self.on_prepare(ctx, from, txn),
            Msg::Vote { id, vote } => self.on_vote(ctx, from, id, vote),
            Msg::Decision { id, commit, order, tree } => self.on_decision(ctx, from, id, commit, order, tree),
            Msg::Ack { id } => self.on_ack(ctx, from, id),
            Msg::Query { id } => self.on_query(ctx, from, id),
            Msg::Forward { fwd, request } => self.on_forward(ctx, from, fwd, request),
            Msg::ForwardReply { fwd, reply } => {
                if let Some((client, _)) = self.forwards.remove(&fwd) {
                    ctx.reply(client, reply);
                }
            }
        }
        self.maybe_compact(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Msg>, timer: TimerId) {
        if timer != TICK {
            return;
        }
        self.tick_coordinator(ctx);
        self.tick_participant(ctx);
        self.tick_forwards(ctx);
        self.maybe_compact(ctx);
        ctx.set_timer(TICK, TICK_MS);
    }

    fn status(&self) -> Value {
        json!({
            "coordinator": self.s.coordinator.clone().unwrap_or_else(|| "any".into()),
            "in_doubt": self.in_doubt(),
            // Voted yes with writes, decision not heard, logged or not: what the
            // `kill-participant` nemesis waits for (a node with `prepare-not-logged` has
            // `in_doubt` 0 and these all the same).
            "voted_yes": self.voted_yes(),
            "undecided": self.active.len(),
            "relaying": self.relays.len(),
            "epoch": self.epoch,
            "tree": self.s.tree,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(options: &[(&str, &str)]) -> NodeConfig {
        NodeConfig {
            id: "n2".into(),
            peers: vec!["n1".into(), "n3".into()],
            workload: "bank".into(),
            options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            seed: 0,
        }
    }

    #[test]
    fn options_are_validated() {
        assert_eq!(validate(&config(&[("accounts", "4"), ("coordinator", "any"), ("tree", "true")])), Ok(()));
        assert!(validate(&config(&[("accounts", "-1")])).is_err());
        assert!(validate(&config(&[("accounts", "0")])).is_err());
        assert!(validate(&config(&[("initial-balance", "lots")])).is_err());
        assert!(validate(&config(&[("coordinator", "n9")])).is_err());
        let (s, _) = Settings::from_config(&config(&[("accounts", "5")]));
        assert_eq!(s.coordinator.as_deref(), Some("n1"));
        assert_eq!(s.my_accounts().collect::<Vec<_>>(), vec![1, 4], "account i lives on member i % n");
    }

    #[test]
    fn tree_shape() {
        let order: Vec<NodeId> = (1..=6).map(|i| format!("n{i}")).collect();
        assert_eq!(types::children_of(&order, true, "n1"), vec!["n2", "n3"]);
        assert_eq!(types::children_of(&order, true, "n3"), vec!["n6"]);
        assert_eq!(types::children_of(&order, false, "n1").len(), 5);
        assert!(types::children_of(&order, false, "n2").is_empty());
    }
}
