//! SIGSTOP of a set of nodes (leaning toward the leader): they keep their sockets and state but
//! answer nothing until SIGCONT, like a long garbage-collection pause or a frozen VM.

use serde_json::json;

use super::{Errors, Fault, Step};
use crate::run::nemesis::{plan, Nemesis};

#[derive(Default)]
pub struct Pause {
    nodes: Vec<String>,
}

impl Fault for Pause {
    fn name(&self) -> &'static str {
        "pause"
    }

    fn start<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let leader = n.leader().await;
            self.nodes = plan::targets(&mut n.rng, &n.cluster.ids(), leader.as_deref());
            let mut errors = Errors::default();
            for id in &self.nodes {
                errors.note(n.cluster.pause(id));
            }
            n.event("pause", "pause", "start", json!({"nodes": self.nodes, "leader": leader, "errors": errors.json()}));
            errors.into_result("pausing")
        })
    }

    fn stop<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut errors = Errors::default();
            for id in &self.nodes {
                errors.note(n.cluster.resume(id));
            }
            n.event("resume", "pause", "stop", json!({"nodes": self.nodes, "errors": errors.json()}));
            errors.into_result("resuming")
        })
    }
}
