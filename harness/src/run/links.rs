//! The run's view of the proxy network ([`crate::net`]): the few operations the nemesis and
//! the cluster setup need, in one place, so the rest of `run` does not depend on the details
//! of the proxies.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use rand_chacha::ChaCha8Rng;
use serde_json::Value;

pub use crate::net::LinkState;
use crate::net::{topology, Network};

/// Who does not hear from whom: `n1 -> {n2}` means n1 no longer receives from n2.
pub type Grudge = crate::net::Grudge;

/// The proxy network of a run.
pub struct Links {
    net: Network,
    /// Maelstrom router links: a partition drops messages (Maelstrom's semantics), so every cut
    /// link is set to `Reset`, which the router reads as drop.
    drop_partitions: bool,
}

impl Links {
    /// Starts one proxy per directed link between `nodes`, forwarding to `targets`.
    pub async fn start(nodes: &[String], targets: &BTreeMap<String, SocketAddr>, seed: u64) -> anyhow::Result<Links> {
        let net = Network::start(nodes, targets, seed).await?;
        Ok(Links { net, drop_partitions: false })
    }

    /// The link rules without proxies, for the Maelstrom message router
    /// ([`crate::maelstrom`]): the same states, set by the same faults, read by the router.
    pub fn rules_only(nodes: &[String], seed: u64) -> anyhow::Result<Links> {
        Ok(Links { net: Network::rules_only(nodes, seed)?, drop_partitions: true })
    }

    /// Watches the rule of the directed link `from -> to`.
    pub fn subscribe(&self, from: &str, to: &str) -> Option<tokio::sync::watch::Receiver<LinkState>> {
        self.net.subscribe(from, to)
    }

    /// The address node `from` must use to reach `to`.
    pub fn proxy_addr(&self, from: &str, to: &str) -> SocketAddr {
        self.net.proxy_addr(from, to)
    }

    /// The grudge of a partition shape (`halves`, `one`, `ring`, `bridge`, `one-way`).
    pub fn grudge(shape: &str, nodes: &[String], rng: &mut ChaCha8Rng) -> Grudge {
        topology::by_name(shape, nodes, rng).unwrap_or_default()
    }

    /// Cuts the links of the grudge: stalled (traffic held until heal), or reset (connections
    /// closed and refused).
    pub fn partition(&self, grudge: &Grudge, reset: bool) {
        let how = if reset || self.drop_partitions { LinkState::Reset } else { LinkState::Stall };
        self.net.partition(grudge, how);
    }

    /// Every link back to pass.
    pub fn heal(&self) {
        self.net.heal();
    }

    /// Delays the directed link `from -> to`.
    pub fn slow(&self, from: &str, to: &str, delay_ms: u64, jitter_ms: u64) {
        self.net.set_link(from, to, LinkState::Delay { delay_ms, jitter_ms });
    }

    /// The directed link `from -> to` back to pass.
    pub fn pass(&self, from: &str, to: &str) {
        self.net.set_link(from, to, LinkState::Pass);
    }

    /// Per-link counters for results.json.
    pub fn stats_json(&self) -> Value {
        serde_json::to_value(self.net.stats()).unwrap_or(Value::Null)
    }

    /// Stops every proxy.
    pub async fn shutdown(self) {
        self.net.shutdown().await;
    }
}
