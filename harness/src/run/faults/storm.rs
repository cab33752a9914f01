//! `restart-storm`: several rounds, each killing a set of nodes (leaning toward the leader) and
//! restarting them tens of milliseconds later, within one election timeout — so nodes come back
//! in the middle of elections, with votes and promises they must have persisted. Random kills
//! followed by restarts seconds later, after the election is over, never test that.

use std::time::Duration;

use rand::Rng;
use serde_json::json;

use super::{Errors, Fault, Step};
use crate::run::nemesis::{plan, Nemesis};

/// Rounds per storm, and the bounds of the pauses, milliseconds.
const ROUNDS: std::ops::RangeInclusive<u32> = 3..=5;
const DOWN_MS: std::ops::RangeInclusive<u64> = 10..=120;
const BETWEEN_MS: std::ops::RangeInclusive<u64> = 50..=400;

#[derive(Default)]
pub struct RestartStorm {
    touched: Vec<String>,
}

impl Fault for RestartStorm {
    fn name(&self) -> &'static str {
        "restart-storm"
    }

    fn start<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut errors = Errors::default();
            for round in 0..n.rng.gen_range(ROUNDS) {
                let leader = n.leader().await;
                let targets = plan::targets(&mut n.rng, &n.cluster.ids(), leader.as_deref());
                for id in &targets {
                    errors.note(n.cluster.kill(id));
                }
                let down_ms = n.rng.gen_range(DOWN_MS);
                n.event("kill", "restart-storm", "start", json!({"nodes": targets, "leader": leader, "round": round, "down_ms": down_ms}));
                tokio::time::sleep(Duration::from_millis(down_ms)).await;
                for id in &targets {
                    errors.note(n.cluster.restart(id).await);
                }
                n.event("restart", "restart-storm", "start", json!({"nodes": targets, "round": round}));
                self.touched.extend(targets);
                tokio::time::sleep(Duration::from_millis(n.rng.gen_range(BETWEEN_MS))).await;
            }
            errors.into_result("restart storm")
        })
    }

    fn stop<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            // Every node was restarted in its round; one that failed to come back gets another try.
            let mut errors = Errors::default();
            self.touched.sort();
            self.touched.dedup();
            for id in &self.touched {
                errors.note(n.cluster.restart(id).await);
            }
            n.event("end-storm", "restart-storm", "stop", json!({"nodes": self.touched, "errors": errors.json()}));
            errors.into_result("restarting")
        })
    }
}
