//! Slow links: a random set of directed links delays every message by a fixed delay plus
//! jitter, drawn at start.

use rand::Rng;
use serde_json::json;

use super::{Fault, Step};
use crate::run::nemesis::{plan, Nemesis};

#[derive(Default)]
pub struct Slow {
    links: Vec<(String, String)>,
}

impl Fault for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }

    fn start<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.links = plan::slow_links(&mut n.rng, &n.cluster.ids());
            let delay_ms = n.rng.gen_range(20..=300u64);
            let jitter_ms = n.rng.gen_range(0..=delay_ms / 2);
            for (a, b) in &self.links {
                n.links.slow(a, b, delay_ms, jitter_ms);
            }
            n.event("start-slow", "slow", "start", json!({"links": self.links, "delay_ms": delay_ms, "jitter_ms": jitter_ms}));
            Ok(())
        })
    }

    fn stop<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            for (a, b) in &self.links {
                n.links.pass(a, b);
            }
            n.event("stop-slow", "slow", "stop", json!({"links": self.links}));
            Ok(())
        })
    }
}
