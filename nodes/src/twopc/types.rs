//! The vocabulary of two-phase commit: transaction ids, operations, votes, the tree shape and
//! the peer messages. Kept apart from the handlers so the coordinator, the participant and the
//! durable log can share it without depending on each other.

use crate::core::{ErrorCode, NodeId, Reply, Request};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An account number, `0..accounts`.
pub type Account = u32;

/// Balances by account.
pub type Balances = BTreeMap<Account, i64>;

/// A transaction's unique name. `epoch` grows with every restart of the coordinator (it is logged
/// before use), so ids are never reused even though `seq` starts again from zero.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxnId {
    pub coord: NodeId,
    pub epoch: u64,
    pub seq: u64,
}

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    Transfer { from: Account, to: Account, amount: i64 },
    /// A consistent snapshot of every account: every node takes shared locks on its accounts.
    Read,
}

/// One transaction as participants see it: the coordinator is `order[0]`, the root of the tree.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Txn {
    pub id: TxnId,
    pub op: Op,
    /// The participants, root first; the shape of the tree follows from the positions.
    pub order: Vec<NodeId>,
    /// Tree-based 2PC (a binary tree over `order`) instead of a star around the coordinator.
    pub tree: bool,
}

impl Txn {
    fn position(&self, node: &str) -> Option<usize> {
        self.order.iter().position(|n| n == node)
    }

    /// Whom `node` forwards prepares and decisions to.
    pub fn children(&self, node: &str) -> Vec<NodeId> {
        children_of(&self.order, self.tree, node)
    }

    /// Whom `node` sends its (aggregated) vote and acks to; `None` for the root.
    pub fn parent(&self, node: &str) -> Option<NodeId> {
        let i = self.position(node)?;
        match (i, self.tree) {
            (0, _) => None,
            (_, true) => Some(self.order[(i - 1) / 2].clone()),
            (_, false) => Some(self.order[0].clone()),
        }
    }
}

/// Children of `node` in the star (flat 2PC) or binary-tree layout of `order`.
pub fn children_of(order: &[NodeId], tree: bool, node: &str) -> Vec<NodeId> {
    let Some(i) = order.iter().position(|n| n == node) else { return Vec::new() };
    let idx: Vec<usize> = match (i, tree) {
        (0, false) => (1..order.len()).collect(),
        (_, false) => Vec::new(),
        (_, true) => vec![2 * i + 1, 2 * i + 2],
    };
    idx.into_iter().filter(|&j| j < order.len()).map(|j| order[j].clone()).collect()
}

/// A (possibly aggregated) vote. A `Yes` carries the balances read under lock (for reads).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Vote {
    Yes { balances: Balances },
    /// `code` is the Maelstrom error the client gets: 30 for a lock conflict, 14 otherwise.
    No { code: ErrorCode, reason: String },
}

/// How one node ended one transaction; kept (bounded) for duplicate suppression and for the
/// atomicity checks of the simulation tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// Committed a prepared transaction with writes (they were applied).
    Applied,
    /// Committed without local writes (a read, or no local accounts).
    Released,
    /// Aborted: voted no, or was told abort.
    Aborted,
    /// Told commit for a transaction it never prepared: it had not promised anything, so it
    /// applies nothing. Only the known-weak `--unsafe-commit-on-timeout` mode produces this.
    Missed,
}

/// A forwarded client request's name: the forwarder's epoch and a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FwdId {
    pub epoch: u64,
    pub n: u64,
}

/// Messages between nodes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    Prepare { txn: Txn },
    Vote { id: TxnId, vote: Vote },
    /// Carries the order so a node that has forgotten the transaction can still relay it.
    Decision { id: TxnId, commit: bool, order: Vec<NodeId>, tree: bool },
    Ack { id: TxnId },
    /// An in-doubt participant asks the coordinator for the decision.
    Query { id: TxnId },
    /// A client request sent on to the coordinator.
    Forward { fwd: FwdId, request: Request },
    ForwardReply { fwd: FwdId, reply: Reply },
}
