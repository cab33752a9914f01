//! `kill-participant`: participants killed while they are *in doubt* — after voting yes, before
//! hearing the decision — and restarted before the decision reaches them.
//!
//! In a healthy cluster the window between a participant's vote and the decision is a round trip
//! of a millisecond or so, and a random kill almost never lands in it. This fault widens it for
//! every transaction at once: every directed link between nodes is delayed by the same 80–200 ms
//! (in order, no loss), so each prepared participant waits two delays for its decision, still
//! within twopc's vote timeout. Then, in 2–4 rounds 250–500 ms apart, one participant (never the
//! node a `status` names as `leader` or `coordinator`) is killed and restarted 20–150 ms later.
//! The victim is the first node, in a seeded order, whose `status` reports a yes vote waiting for
//! its decision (`voted_yes` or `in_doubt` above zero; polled for up to a second), else the node
//! the order names first. The decisions it had not heard arrive after its restart, through the
//! still-delayed links or the coordinator's resends. When the fault stops the links pass again.
//!
//! A participant that voted yes without logging what it prepared has forgotten the transaction
//! by then and skips a commit the other participants apply, which the bank checker sees as money
//! appearing or vanishing. Plain `kill` picks its moment at random and `partition-kill` kills the
//! coordinator, so neither holds a participant in doubt at its death. For protocols whose status
//! reports neither field this is a kill of a random non-leader under slow links.

use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::json;

use super::{Errors, Fault, Step};
use crate::run::nemesis::Nemesis;

/// The delay of every link while the fault holds, milliseconds (two of them stay below twopc's
/// vote timeout of five 100 ms ticks).
const DELAY_MS: std::ops::RangeInclusive<u64> = 80..=200;
/// How long transactions pile up in doubt before a participant dies, milliseconds (per round).
const DOUBT_MS: std::ops::RangeInclusive<u64> = 250..=500;
/// Kill-and-restart rounds per fault.
const ROUNDS: std::ops::RangeInclusive<u32> = 2..=4;
/// How long the participant stays down, milliseconds.
const DOWN_MS: std::ops::RangeInclusive<u64> = 20..=150;

/// How long to look for a participant in doubt before falling back to the drawn one.
const LOOK_MS: u64 = 1_000;

/// The first node, in `order` and never the coordinator, whose status reports a yes vote still
/// waiting for its decision (`voted_yes`, or `in_doubt`, greater than zero); polled every few
/// milliseconds for up to [`LOOK_MS`]. `None` when no node reports either field, or none is in
/// doubt in time.
async fn in_doubt(n: &mut Nemesis, order: &[String], coordinator: Option<&str>) -> Option<String> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(LOOK_MS);
    let t = std::time::Duration::from_millis(200);
    let mut clients = Vec::new();
    for id in order.iter().filter(|i| Some(i.as_str()) != coordinator) {
        let Some(addr) = n.cluster.addr(id) else { continue };
        if let Ok(c) = faultline_workloads::Client::connect(addr, t).await {
            clients.push((id.clone(), c));
        }
    }
    while tokio::time::Instant::now() < deadline {
        let mut reported = false;
        for (id, c) in clients.iter_mut() {
            let Some(status) = c.status(t).await else { continue };
            let waiting = ["voted_yes", "in_doubt"].iter().filter_map(|f| status.get(*f).and_then(serde_json::Value::as_u64)).max();
            reported |= waiting.is_some();
            if waiting.is_some_and(|w| w > 0) {
                return Some(id.clone());
            }
        }
        if !reported {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    None
}

/// Every directed link between distinct nodes.
pub fn all_links(nodes: &[String]) -> Vec<(String, String)> {
    nodes.iter().flat_map(|a| nodes.iter().filter(move |b| *b != a).map(move |b| (a.clone(), b.clone()))).collect()
}

#[derive(Default)]
pub struct KillParticipant {
    links: Vec<(String, String)>,
    victim: Option<String>,
}

impl Fault for KillParticipant {
    fn name(&self) -> &'static str {
        "kill-participant"
    }

    fn start<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let ids = n.cluster.ids();
            let coordinator = n.leader().await.filter(|l| ids.contains(l));
            // Every draw happens whatever the protocol answers, so one seed is one schedule.
            let delay_ms = n.rng.gen_range(DELAY_MS);
            let rounds = n.rng.gen_range(ROUNDS);
            let plan: Vec<(u64, u64, Vec<String>)> = (0..rounds)
                .map(|_| {
                    let mut order: Vec<String> = ids.clone();
                    order.shuffle(&mut n.rng);
                    (n.rng.gen_range(DOUBT_MS), n.rng.gen_range(DOWN_MS), order)
                })
                .collect();
            self.links = all_links(&ids);
            for (a, b) in &self.links {
                n.links.slow(a, b, delay_ms, 0);
            }
            n.event("start-slow", "kill-participant", "start", json!({"links": "all", "delay_ms": delay_ms, "jitter_ms": 0, "coordinator": coordinator, "rounds": rounds}));
            let mut errors = Errors::default();
            for (round, (doubt_ms, down_ms, order)) in plan.into_iter().enumerate() {
                let Some(drawn) = order.iter().find(|i| Some(*i) != coordinator.as_ref()).cloned() else { break };
                tokio::time::sleep(std::time::Duration::from_millis(doubt_ms)).await;
                // Where the nodes report it, wait (a little) for a participant holding a yes vote.
                let found = in_doubt(n, &order, coordinator.as_deref()).await;
                let victim = found.clone().unwrap_or(drawn);
                errors.note(n.cluster.kill(&victim));
                n.event(
                    "kill",
                    "kill-participant",
                    "start",
                    json!({"nodes": [victim], "coordinator": coordinator, "round": round, "after_ms": doubt_ms, "reported_in_doubt": found.is_some()}),
                );
                tokio::time::sleep(std::time::Duration::from_millis(down_ms)).await;
                let restarted = n.cluster.restart(&victim).await;
                let failed = restarted.is_err();
                errors.note(restarted);
                n.event("restart", "kill-participant", "start", json!({"nodes": [victim], "round": round, "down_ms": down_ms}));
                if failed {
                    self.victim = Some(victim);
                    break;
                }
            }
            errors.into_result("kill-participant")
        })
    }

    fn stop<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut errors = Errors::default();
            // A restart that failed in `start` gets another try.
            if let Some(v) = self.victim.take() {
                errors.note(n.cluster.restart(&v).await);
            }
            for (a, b) in std::mem::take(&mut self.links) {
                n.links.pass(&a, &b);
            }
            n.event("stop-slow", "kill-participant", "stop", json!({"links": "all", "errors": errors.json()}));
            errors.into_result("restarting")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_directed_link_once() {
        let ids: Vec<String> = ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect();
        let l = all_links(&ids);
        assert_eq!(l.len(), 6);
        assert!(l.iter().all(|(a, b)| a != b));
    }
}
