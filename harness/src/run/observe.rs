//! The durable-state monitor: polls every node's `status` while a run lasts and records each
//! change of the `durable` state it reports as an observation event in the history, for the
//! `durable-state` checker ([`faultline_checkers::durable`]).
//!
//! One task per node, each with its own connection: a paused or killed node only stalls its
//! own task, which reconnects at its next tick. Only changes are recorded (a few events per
//! election), so the history stays small. The monitor runs from the end of the warm-up until
//! after the final reads, so a node restarted by the heal is observed too.

use std::net::SocketAddr;
use std::time::Duration;

use faultline_checkers::durable::OBSERVE;
use faultline_workloads::Client;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::record::Recorder;

/// How often each node is asked. A lost vote stays visible for the rest of its term, a lost
/// promise until the next accepted ballot: tens of milliseconds catch both.
pub const INTERVAL: Duration = Duration::from_millis(50);
/// How long one status request may take before the node counts as not answering this tick.
const TIMEOUT: Duration = Duration::from_millis(250);

/// The running monitor; [`Monitor::stop`] ends it.
pub struct Monitor {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

/// Starts polling `nodes`, recording into `rec`.
pub fn start(nodes: &[(String, SocketAddr)], rec: &Recorder) -> Monitor {
    let (stop, rx) = watch::channel(false);
    let tasks = nodes.iter().map(|(id, addr)| tokio::spawn(watch_node(id.clone(), *addr, rec.clone(), rx.clone()))).collect();
    Monitor { stop, tasks }
}

impl Monitor {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn watch_node(id: String, addr: SocketAddr, rec: Recorder, mut stop: watch::Receiver<bool>) {
    let mut client: Option<Client> = None;
    let mut last: Option<Value> = None;
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|v| *v) => return,
        }
        if client.is_none() {
            client = Client::connect(addr, TIMEOUT).await.ok();
        }
        let Some(c) = client.as_mut() else { continue };
        let Some(status) = c.status(TIMEOUT).await else {
            // A late reply must not be read as the next one's: start afresh.
            client = None;
            continue;
        };
        // Recorded as reported: a malformed report is the checker's to name.
        let Some(now) = status.get("durable").filter(|d| !d.is_null()) else { continue };
        if last.as_ref() != Some(now) {
            rec.nemesis(OBSERVE, json!({"node": id, "durable": now}));
            last = Some(now.clone());
        }
    }
}
