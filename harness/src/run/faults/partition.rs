//! Network partitions: a grudge (who stops hearing whom) of a shape drawn at start, applied to
//! the proxies as a stall (packets held, as a dropped-packet partition looks to TCP) or, one
//! time in four, a reset of every cut connection.

use rand::Rng;
use serde_json::json;

use super::{Fault, Step};
use crate::run::links::Links;
use crate::run::nemesis::{grudge_json, plan, Nemesis};
use crate::run::settings::Shape;

pub struct Partition {
    name: &'static str,
    shape: Shape,
}

impl Partition {
    pub fn new(name: &'static str, shape: Shape) -> Partition {
        Partition { name, shape }
    }
}

impl Fault for Partition {
    fn name(&self) -> &'static str {
        self.name
    }

    fn start<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let nodes = n.cluster.ids();
            let shape_name = plan::shape(&mut n.rng, self.shape);
            let grudge = Links::grudge(shape_name, &nodes, &mut n.rng);
            let reset = n.rng.gen_bool(0.25);
            n.links.partition(&grudge, reset);
            let mode = if reset { "reset" } else { "stall" };
            n.event("start-partition", self.name, "start", json!({"shape": shape_name, "mode": mode, "grudge": grudge_json(&grudge)}));
            Ok(())
        })
    }

    fn stop<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            n.links.heal();
            n.event("stop-partition", self.name, "stop", json!({}));
            Ok(())
        })
    }
}
