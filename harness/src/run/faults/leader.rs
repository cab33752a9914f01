//! Faults aimed at the leader (or coordinator), at the instants where implementations break:
//!
//! - `kill-leader`: SIGKILL of the leader right after the cluster acknowledges a write — the
//!   instant between an acknowledgement and its persistence or replication, which random kills
//!   rarely hit. The harness sees every acknowledgement ([`crate::run::record::Ack`]); the
//!   kill lands within about a millisecond of the next one. Restarted when the fault stops.
//! - `partition-leader`: the leader cut off together with a minority, while the clients bound
//!   to those nodes keep sending to it; healed when the fault stops.
//!
//! Without a leader to name (a leaderless protocol, or none elected), a random node stands in.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::json;

use super::{Errors, Fault, Step};
use crate::net::topology;
use crate::run::nemesis::{grudge_json, Nemesis};

/// How long `kill-leader` waits for an acknowledgement before killing anyway.
const ACK_WAIT: Duration = Duration::from_secs(2);

/// The leader if a node names one, else a random node.
async fn leader_or_any(n: &mut Nemesis) -> (String, bool) {
    // The stand-in is drawn even when a leader answers, so the generator advances alike for
    // every protocol.
    let ids = n.cluster.ids();
    let stand_in = ids.choose(&mut n.rng).cloned().unwrap_or_default();
    match n.leader().await {
        Some(l) => (l, true),
        None => (stand_in, false),
    }
}

#[derive(Default)]
pub struct KillLeader {
    nodes: Vec<String>,
}

impl Fault for KillLeader {
    fn name(&self) -> &'static str {
        "kill-leader"
    }

    fn start<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut acks = n.rec.acks.subscribe();
            let (leader, known) = leader_or_any(n).await;
            let waited = Instant::now();
            // The next acknowledgement after the leader was found (older ones are stale).
            let ack = loop {
                match tokio::time::timeout(ACK_WAIT.saturating_sub(waited.elapsed()), acks.recv()).await {
                    Ok(Ok(a)) => break Some(a),
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
                    _ => break None,
                }
            };
            let killed_at_ns = n.rec.now_ns();
            let result = n.cluster.kill(&leader);
            let after_ack_us = ack.as_ref().map(|a| killed_at_ns.saturating_sub(a.time_ns) / 1000);
            let ack_node = ack.as_ref().and_then(|a| a.node.as_deref().map(str::to_string));
            self.nodes = vec![leader.clone()];
            n.event("kill", "kill-leader", "start", json!({"nodes": [leader], "leader": known.then_some(&leader), "after_ack_us": after_ack_us, "ack_node": ack_node}));
            result
        })
    }

    fn stop<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut errors = Errors::default();
            for id in &self.nodes {
                errors.note(n.cluster.restart(id).await);
            }
            n.event("restart", "kill-leader", "stop", json!({"nodes": self.nodes, "errors": errors.json()}));
            errors.into_result("restarting")
        })
    }
}

#[derive(Default)]
pub struct PartitionLeader;

impl Fault for PartitionLeader {
    fn name(&self) -> &'static str {
        "partition-leader"
    }

    fn start<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let leader = n.leader().await;
            let grudge = topology::leader_minority(&n.cluster.ids(), leader.as_deref(), &mut n.rng);
            let reset = n.rng.gen_bool(0.25);
            n.links.partition(&grudge, reset);
            let mode = if reset { "reset" } else { "stall" };
            n.event("start-partition", "partition-leader", "start", json!({"shape": "leader-minority", "leader": leader, "mode": mode, "grudge": grudge_json(&grudge)}));
            Ok(())
        })
    }

    fn stop<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            n.links.heal();
            n.event("stop-partition", "partition-leader", "stop", json!({}));
            Ok(())
        })
    }
}
