//! The fault schedule: quiet for `--nemesis-interval`, one fault for about as long, quiet
//! again, and so on until the run stops. Faults are drawn from the enabled kinds like cards
//! from a shuffled deck, refilled when empty: the order is random, yet a run with k kinds of
//! fault and at least k faults sees every kind (`all` enables every kind). A fault in effect when the
//! run stops is stopped before the schedule returns, so teardown starts from a known state.

use std::time::Duration;

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::watch;

use super::nemesis::Nemesis;
use super::settings::FaultKind;

/// How often the supervisor looks for nodes that exited on their own.
const SUPERVISE_EVERY: Duration = Duration::from_millis(200);

/// Waits for `d` while supervising the nodes; returns `true` if the run was stopped meanwhile.
async fn sleep_or_stop(nemesis: &mut Nemesis, d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let deadline = tokio::time::Instant::now() + d;
    loop {
        nemesis.supervise().await;
        if *stop.borrow() {
            return true;
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep((deadline - now).min(SUPERVISE_EVERY)) => {}
            _ = stop.changed() => return true,
        }
    }
}

/// A period of about `interval`: between 3/4 and 5/4 of it, so faults do not fall into lockstep
/// with anything periodic in the protocols.
fn jittered(rng: &mut ChaCha8Rng, interval: Duration) -> Duration {
    interval.mul_f64(rng.gen_range(0.75..1.25))
}

/// Runs faults until `stop`; returns the nemesis (and the errors met on the way, which the
/// run reports as teardown errors).
pub async fn run(mut nemesis: Nemesis, faults: Vec<FaultKind>, interval: Duration, mut rng: ChaCha8Rng, mut stop: watch::Receiver<bool>) -> (Nemesis, Vec<String>) {
    let mut errors = Vec::new();
    if faults.is_empty() {
        while !sleep_or_stop(&mut nemesis, Duration::from_secs(3600), &mut stop).await {}
        return (nemesis, errors);
    }
    let mut deck: Vec<FaultKind> = Vec::new();
    loop {
        if sleep_or_stop(&mut nemesis, jittered(&mut rng, interval), &mut stop).await {
            break;
        }
        if deck.is_empty() {
            deck = faults.clone();
            deck.shuffle(&mut rng);
        }
        let Some(kind) = deck.pop() else { break };
        let mut fault = super::faults::for_kind(kind);
        if let Err(e) = fault.start(&mut nemesis).await {
            // A fault that started half way (one node of three killed) is still stopped below.
            tracing::warn!("starting {}: {e:#}", kind.name());
            errors.push(format!("starting {}: {e:#}", kind.name()));
        }
        let stopped = sleep_or_stop(&mut nemesis, jittered(&mut rng, interval), &mut stop).await;
        if let Err(e) = fault.stop(&mut nemesis).await {
            tracing::warn!("stopping {}: {e:#}", kind.name());
            errors.push(format!("stopping {}: {e:#}", kind.name()));
        }
        if stopped {
            break;
        }
    }
    (nemesis, errors)
}
