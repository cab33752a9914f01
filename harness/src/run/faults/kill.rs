//! SIGKILL of a set of nodes (leaning toward the leader), restarted from their data
//! directories when the fault stops.

use serde_json::json;

use super::{Errors, Fault, Step};
use crate::run::nemesis::{plan, Nemesis};

#[derive(Default)]
pub struct Kill {
    nodes: Vec<String>,
}

impl Fault for Kill {
    fn name(&self) -> &'static str {
        "kill"
    }

    fn start<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let leader = n.leader().await;
            self.nodes = plan::targets(&mut n.rng, &n.cluster.ids(), leader.as_deref());
            let mut errors = Errors::default();
            for id in &self.nodes {
                errors.note(n.cluster.kill(id));
            }
            n.event("kill", "kill", "start", json!({"nodes": self.nodes, "leader": leader, "errors": errors.json()}));
            errors.into_result("killing")
        })
    }

    fn stop<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let mut errors = Errors::default();
            for id in &self.nodes {
                errors.note(n.cluster.restart(id).await);
            }
            n.event("restart", "kill", "stop", json!({"nodes": self.nodes, "errors": errors.json()}));
            errors.into_result("restarting")
        })
    }
}
