//! The nemesis: what every fault acts on (the cluster, the proxy network, the clock files, the
//! history), the supervisor that notices nodes exiting on their own, and the heal at the end.
//!
//! The faults themselves live one per file in [`super::faults`]. Their random choices (which
//! nodes, which offset, which links) are pure functions of a seeded generator, in [`plan`].
//! [`Nemesis::heal_all`] undoes everything at the end of a run, whatever state the run left
//! behind.

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::cluster::Cluster;
use super::faketime;
use super::links::{Grudge, Links};
use super::record::Recorder;
use super::settings::Shape;

/// Pure random choices of the nemesis.
pub mod plan {
    use super::*;

    /// Picks the nodes a process fault hits: one node, a minority, a majority or all of them,
    /// chosen at random. When the cluster names a leader (or coordinator), it is among the
    /// targets three times out of four, since faults of the leader find the most bugs.
    pub fn targets(rng: &mut ChaCha8Rng, nodes: &[String], leader: Option<&str>) -> Vec<String> {
        let n = nodes.len();
        if n == 0 {
            return Vec::new();
        }
        let minority = (n - 1) / 2;
        let count = match rng.gen_range(0..4) {
            0 => 1,
            1 => rng.gen_range(1..=minority.max(1)),
            2 => n / 2 + 1,
            _ => n,
        };
        let mut pool: Vec<String> = nodes.to_vec();
        pool.shuffle(rng);
        // Drawn whether or not there is a leader: the generator must advance the same way for
        // every protocol, so a suite gives each protocol the same schedule.
        let lean = rng.gen_bool(0.75);
        if let Some(l) = leader.filter(|l| nodes.iter().any(|n| n == l)) {
            if lean {
                pool.retain(|n| n != l);
                pool.insert(0, l.to_string());
            }
        }
        let mut out: Vec<String> = pool.into_iter().take(count).collect();
        out.sort();
        out
    }

    /// A clock offset from ±100 ms to ±2 min, uniform in its logarithm so small and large
    /// jumps are both common.
    pub fn offset_s(rng: &mut ChaCha8Rng) -> f64 {
        let magnitude = rng.gen_range(0.1f64.ln()..120f64.ln()).exp();
        if rng.gen_bool(0.5) {
            magnitude
        } else {
            -magnitude
        }
    }

    /// A drift rate from ×0.5 to ×2, never ×1.
    pub fn drift_rate(rng: &mut ChaCha8Rng) -> f64 {
        let r = (rng.gen_range(0.5f64.ln()..2f64.ln()).exp() * 100.0).round() / 100.0;
        // A rate this close to 1 would hardly be a fault.
        if (r - 1.0).abs() < 0.095 {
            2.0
        } else {
            r
        }
    }

    /// The directed links to slow down: each one with probability one half, at least one.
    pub fn slow_links(rng: &mut ChaCha8Rng, nodes: &[String]) -> Vec<(String, String)> {
        let all: Vec<(String, String)> =
            nodes.iter().flat_map(|a| nodes.iter().filter(move |b| *b != a).map(move |b| (a.clone(), b.clone()))).collect();
        let mut picked: Vec<(String, String)> = all.iter().filter(|_| rng.gen_bool(0.5)).cloned().collect();
        if picked.is_empty() {
            if let Some(l) = all.choose(rng) {
                picked.push(l.clone());
            }
        }
        picked
    }

    /// The shape a `partition` fault takes this time.
    pub fn shape(rng: &mut ChaCha8Rng, shape: Shape) -> &'static str {
        match shape {
            Shape::Random => ["halves", "one", "ring", "bridge", "one-way"][rng.gen_range(0..5)],
            Shape::Halves => "halves",
            Shape::One => "one",
            Shape::Ring => "ring",
            Shape::Bridge => "bridge",
        }
    }
}

/// Performs faults on a cluster; owns the cluster and the network for the length of the run.
pub struct Nemesis {
    pub cluster: Cluster,
    pub links: Links,
    pub rec: Recorder,
    /// Every random choice of the schedule. Only faults draw from it, and they draw the same
    /// number of times whatever the protocol answers, so one seed is one schedule.
    pub rng: ChaCha8Rng,
    /// The order in which nodes are asked who leads: kept apart from `rng`, since how many
    /// nodes are alive to ask depends on the protocol.
    probe_rng: ChaCha8Rng,
    request_timeout: Duration,
}

pub fn grudge_json(g: &Grudge) -> Value {
    json!(g.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>())
}

impl Nemesis {
    pub fn new(cluster: Cluster, links: Links, rec: Recorder, rng: ChaCha8Rng, request_timeout: Duration) -> Nemesis {
        let probe_rng = ChaCha8Rng::seed_from_u64(rng.clone().gen::<u64>() ^ 0x7072_6f62);
        Nemesis { cluster, links, rec, rng, probe_rng, request_timeout }
    }

    /// Gives back the cluster and the network; drops the nemesis's [`Recorder`], which the
    /// history writer waits for.
    pub fn into_parts(self) -> (Cluster, Links) {
        (self.cluster, self.links)
    }

    /// Asks live nodes who leads (`leader` or `coordinator` in their status); the first answer wins.
    pub async fn leader(&mut self) -> Option<String> {
        let mut live = self.cluster.live();
        live.shuffle(&mut self.probe_rng);
        let t = self.request_timeout.min(Duration::from_millis(500));
        for id in live.into_iter().take(3) {
            let addr = self.cluster.addr(&id)?;
            let Ok(mut c) = faultline_workloads::Client::connect(addr, t).await else { continue };
            let Some(status) = c.status(t).await else { continue };
            for field in ["leader", "coordinator"] {
                if let Some(l) = status.get(field).and_then(Value::as_str) {
                    return Some(l.to_string());
                }
            }
        }
        None
    }

    /// Records a fault's event; `phase` `start` marks the fault active until its `stop`.
    pub fn event(&self, f: &str, fault: &str, phase: &str, mut details: Value) {
        if let Value::Object(m) = &mut details {
            m.insert("fault".into(), json!(fault));
            m.insert("phase".into(), json!(phase));
        }
        self.rec.nemesis(f, details);
        self.rec.counters.set_active(fault, phase == "start");
    }

    /// The supervisor's round: a node that exited although nobody killed it is a finding. It is
    /// recorded as a `crash` event (exit status or signal, and the end of its log) and started
    /// again from its data directory, as a process supervisor would; a failed restart is
    /// recorded too and leaves the node down (the health judgment then names it).
    pub async fn supervise(&mut self) {
        for (id, status) in self.cluster.exited_on_their_own() {
            let (code, signal) = exit_parts(&status);
            let log_tail = self.cluster.log_tail(&id, 20);
            tracing::warn!("node {id} exited on its own ({status})");
            self.rec.nemesis(
                "crash",
                json!({"fault": "crash", "phase": "start", "node": id, "status": status.to_string(), "code": code, "signal": signal, "log_tail": log_tail}),
            );
            let restarted = self.cluster.restart(&id).await;
            let error = restarted.as_ref().err().map(|e| format!("{e:#}"));
            self.rec.nemesis("restart", json!({"fault": "crash", "phase": "stop", "nodes": [id], "restarted": error.is_none(), "error": error}));
        }
    }

    /// Ends every fault whatever the run left behind: links healed, paused nodes resumed,
    /// killed nodes restarted, clocks reset. Records one `heal` event. Keeps going past
    /// errors and reports them together.
    pub async fn heal_all(&mut self) -> anyhow::Result<()> {
        let mut errors: Vec<String> = Vec::new();
        // Crashes first, so a node that died by itself is reported as such, not silently restarted.
        self.supervise().await;
        self.links.heal();
        for id in self.cluster.paused() {
            if let Err(e) = self.cluster.resume(&id) {
                errors.push(format!("{e:#}"));
            }
        }
        let down = self.cluster.down();
        for id in &down {
            if let Err(e) = self.cluster.restart(id).await {
                errors.push(format!("{e:#}"));
            }
        }
        for id in self.cluster.ids() {
            if let Some(f) = self.cluster.clock_file(&id) {
                if let Err(e) = faketime::write_offset(f, 0.0) {
                    errors.push(format!("resetting the clock of {id}: {e}"));
                }
            }
        }
        self.rec.nemesis("heal", json!({"fault": "heal", "phase": "stop", "restarted": down}));
        if let Ok(mut a) = self.rec.counters.active.lock() {
            a.clear();
        }
        if errors.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("{}", errors.join("; "))
        }
    }
}

/// The exit code, or the signal that ended a process.
pub fn exit_parts(status: &std::process::ExitStatus) -> (Option<i32>, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    (status.code(), status.signal())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::collections::BTreeSet;

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn targets_cover_every_size_and_favour_the_leader() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let ns = nodes(5);
        let mut sizes = BTreeSet::new();
        let mut with_leader = 0;
        for _ in 0..400 {
            let t = plan::targets(&mut rng, &ns, Some("n3"));
            assert!(!t.is_empty() && t.len() <= 5);
            assert!(t.windows(2).all(|w| w[0] < w[1]), "sorted and distinct: {t:?}");
            sizes.insert(t.len());
            with_leader += t.contains(&"n3".to_string()) as usize;
        }
        assert_eq!(sizes, BTreeSet::from([1, 2, 3, 5]));
        assert!(with_leader > 300, "leader targeted {with_leader}/400 times");
    }

    #[test]
    fn offsets_and_rates_stay_in_range_and_are_seeded() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..1000 {
            let o = plan::offset_s(&mut rng).abs();
            assert!((0.1..=120.0).contains(&o), "{o}");
            let r = plan::drift_rate(&mut rng);
            assert!((0.5..=2.0).contains(&r) && (r - 1.0).abs() >= 0.095, "{r}");
        }
        let a: Vec<f64> = (0..5).map(|_| plan::offset_s(&mut ChaCha8Rng::seed_from_u64(3))).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn slow_links_are_directed_links_between_distinct_nodes() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..50 {
            let l = plan::slow_links(&mut rng, &nodes(3));
            assert!(!l.is_empty() && l.len() <= 6);
            assert!(l.iter().all(|(a, b)| a != b));
        }
    }
}
