//! `partition-kill`: two faults at once. One follower (or participant) is isolated, then, while
//! it is cut off and in doubt, the leader (or coordinator) is killed. When the fault stops the
//! leader restarts *before* the partition heals, so it recovers while still unable to reach the
//! isolated node. One fault at a time never holds a participant in doubt while its coordinator
//! dies, which is where two-phase commit and leader recovery break.

use std::time::Duration;

use rand::Rng;
use serde_json::json;

use super::{Errors, Fault, Step};
use crate::net::topology;
use crate::run::nemesis::{grudge_json, Nemesis};

/// How long the isolated node is held in doubt before the leader dies, milliseconds.
const DOUBT_MS: std::ops::RangeInclusive<u64> = 200..=800;

#[derive(Default)]
pub struct PartitionKill {
    killed: Vec<String>,
}

impl Fault for PartitionKill {
    fn name(&self) -> &'static str {
        "partition-kill"
    }

    fn start<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let leader = n.leader().await;
            let ids = n.cluster.ids();
            let grudge = topology::one_follower(&ids, leader.as_deref(), &mut n.rng);
            n.links.partition(&grudge, false);
            n.event("start-partition", "partition-kill", "start", json!({"shape": "one-follower", "mode": "stall", "leader": leader, "grudge": grudge_json(&grudge)}));
            tokio::time::sleep(Duration::from_millis(n.rng.gen_range(DOUBT_MS))).await;
            // The leader may have changed meanwhile: ask again, and kill whoever leads now.
            let victim = n.leader().await.or(leader).unwrap_or_else(|| ids[0].clone());
            let result = n.cluster.kill(&victim);
            self.killed = vec![victim.clone()];
            n.event("kill", "partition-kill", "start", json!({"nodes": [victim], "leader": victim}));
            result
        })
    }

    fn stop<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut errors = Errors::default();
            for id in &self.killed {
                errors.note(n.cluster.restart(id).await);
            }
            n.event("restart", "partition-kill", "start", json!({"nodes": self.killed, "errors": errors.json()}));
            // Let the restarted leader recover while the partition still holds.
            tokio::time::sleep(Duration::from_millis(300)).await;
            n.links.heal();
            n.event("stop-partition", "partition-kill", "stop", json!({}));
            errors.into_result("restarting")
        })
    }
}
