//! Faults, one file each, behind one interface: [`Fault::start`] breaks something and
//! [`Fault::stop`] undoes exactly that. A stop never gives up half way: it tries every node or
//! link it touched, records what it did (the `stop` event names what failed), and reports the
//! failures together. [`super::nemesis::Nemesis::heal_all`] is the third verb, undoing every
//! fault at once whatever the run left behind.
//!
//! Random choices come from the nemesis's seeded generator and happen in `start`, so the same
//! seed draws the same faults. A new fault is a new file here and one line in [`for_kind`].

mod clock;
mod kill;
mod leader;
mod overlap;
mod participant;
mod partition;
mod pause;
pub mod power;
mod slow;
mod storm;

use std::future::Future;
use std::pin::Pin;

use super::nemesis::Nemesis;
use super::settings::FaultKind;

/// A boxed future borrowing the fault and the nemesis (object-safe async methods).
pub type Step<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One kind of fault, started and stopped by the schedule.
pub trait Fault: Send {
    /// The contract's nemesis name (`partition-one`, `kill`, ...), shown while it is active.
    fn name(&self) -> &'static str;
    /// Breaks something and records a `start` event.
    fn start<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>>;
    /// Undoes what `start` did, as far as it can, and records a `stop` event. Safe to call on
    /// a fault that was already healed.
    fn stop<'a>(&'a mut self, n: &'a mut Nemesis) -> Step<'a, anyhow::Result<()>>;
}

/// A fresh fault of `kind`, not started.
pub fn for_kind(kind: FaultKind) -> Box<dyn Fault> {
    match kind {
        FaultKind::Partition(shape) => Box::new(partition::Partition::new(kind.name(), shape)),
        FaultKind::Kill => Box::new(kill::Kill::default()),
        FaultKind::Pause => Box::new(pause::Pause::default()),
        FaultKind::Clock => Box::new(clock::Clock::default()),
        FaultKind::Slow => Box::new(slow::Slow::default()),
        FaultKind::KillLeader => Box::new(leader::KillLeader::default()),
        FaultKind::PartitionLeader => Box::new(leader::PartitionLeader),
        FaultKind::RestartStorm => Box::new(storm::RestartStorm::default()),
        FaultKind::PartitionKill => Box::new(overlap::PartitionKill::default()),
        FaultKind::PowerLoss => Box::new(power::PowerLoss::default()),
        FaultKind::KillParticipant => Box::new(participant::KillParticipant::default()),
    }
}

/// Collects the errors of a stop that went on past them.
#[derive(Default)]
pub struct Errors(Vec<String>);

impl Errors {
    pub fn note<T>(&mut self, r: anyhow::Result<T>) {
        if let Err(e) = r {
            self.0.push(format!("{e:#}"));
        }
    }

    /// The failures, for the `stop` event (`null` when there were none).
    pub fn json(&self) -> serde_json::Value {
        if self.0.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::json!(self.0)
        }
    }

    pub fn into_result(self, what: &str) -> anyhow::Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("{what}: {}", self.0.join("; "))
        }
    }
}
