//! Clock faults through libfaketime (see [`crate::run::faketime`]): a bump (one jump), a
//! strobe (flipping between an offset and zero every period) or a drift (the offset ramps at a
//! rate), on a set of nodes leaning toward the leader.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use super::{Errors, Fault, Step};
use crate::run::faketime;
use crate::run::nemesis::{plan, Nemesis};

/// How a clock fault moves the clocks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClockKind {
    Bump { offset_s: f64 },
    Strobe { offset_s: f64, period: Duration },
    Drift { rate: f64 },
}

impl ClockKind {
    fn draw(rng: &mut rand_chacha::ChaCha8Rng) -> ClockKind {
        match rng.gen_range(0..3) {
            0 => ClockKind::Bump { offset_s: plan::offset_s(rng) },
            1 => ClockKind::Strobe { offset_s: plan::offset_s(rng), period: Duration::from_millis(rng.gen_range(100..=1000)) },
            _ => ClockKind::Drift { rate: plan::drift_rate(rng) },
        }
    }

    fn details(self) -> Value {
        match self {
            ClockKind::Bump { offset_s } => json!({"kind": "bump", "offset_ms": (offset_s * 1000.0).round()}),
            ClockKind::Strobe { offset_s, period } => json!({"kind": "strobe", "offset_ms": (offset_s * 1000.0).round(), "period_ms": period.as_millis() as u64}),
            ClockKind::Drift { rate } => json!({"kind": "drift", "rate": rate}),
        }
    }
}

#[derive(Default)]
pub struct Clock {
    nodes: Vec<String>,
    task: Option<JoinHandle<()>>,
}

impl Fault for Clock {
    fn name(&self) -> &'static str {
        "clock"
    }

    fn start<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let leader = n.leader().await;
            self.nodes = plan::targets(&mut n.rng, &n.cluster.ids(), leader.as_deref());
            let files: Vec<PathBuf> = self.nodes.iter().filter_map(|id| n.cluster.clock_file(id).map(PathBuf::from)).collect();
            let kind = ClockKind::draw(&mut n.rng);
            let mut errors = Errors::default();
            match kind {
                ClockKind::Bump { offset_s } => {
                    for f in &files {
                        errors.note(faketime::write_offset(f, offset_s).map_err(anyhow::Error::from));
                    }
                }
                _ => self.task = Some(tokio::spawn(move_clocks(files, kind))),
            }
            let mut details = kind.details();
            details["nodes"] = json!(self.nodes);
            details["errors"] = errors.json();
            n.event("start-clock", "clock", "start", details);
            errors.into_result("moving clocks")
        })
    }

    fn stop<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>> {
        Box::pin(async move {
            if let Some(t) = self.task.take() {
                t.abort();
                let _ = t.await;
            }
            let mut errors = Errors::default();
            for id in &self.nodes {
                if let Some(f) = n.cluster.clock_file(id) {
                    errors.note(faketime::write_offset(f, 0.0).map_err(anyhow::Error::from));
                }
            }
            n.event("stop-clock", "clock", "stop", json!({"nodes": self.nodes, "errors": errors.json()}));
            errors.into_result("resetting clocks")
        })
    }
}

/// Moves the given clocks until aborted: a strobe flips between the offset and zero every
/// period; a drift ramps the offset at its rate.
async fn move_clocks(files: Vec<PathBuf>, kind: ClockKind) {
    let started = Instant::now();
    let step = match kind {
        ClockKind::Strobe { period, .. } => period,
        _ => faketime::DRIFT_STEP,
    };
    let mut tick = tokio::time::interval(step);
    let mut flip = false;
    loop {
        tick.tick().await;
        let offset = match kind {
            ClockKind::Strobe { offset_s, .. } => {
                flip = !flip;
                if flip {
                    offset_s
                } else {
                    0.0
                }
            }
            ClockKind::Drift { rate } => faketime::drift_offset_s(rate, started.elapsed()),
            ClockKind::Bump { offset_s } => offset_s,
        };
        for f in &files {
            let _ = faketime::write_offset(f, offset);
        }
    }
}
