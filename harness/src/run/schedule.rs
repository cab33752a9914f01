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

/// Sleeps for `d`; returns `true` if the run was stopped meanwhile.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
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
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
        return (nemesis, errors);
    }
    let mut deck: Vec<FaultKind> = Vec::new();
    loop {
        if sleep_or_stop(jittered(&mut rng, interval), &mut stop).await {
            break;
        }
        if deck.is_empty() {
            deck = faults.clone();
            deck.shuffle(&mut rng);
        }
        let Some(kind) = deck.pop() else { break };
        let active = match nemesis.start(kind).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("starting {}: {e:#}", kind.name());
                errors.push(format!("starting {}: {e:#}", kind.name()));
                continue;
            }
        };
        let stopped = sleep_or_stop(jittered(&mut rng, interval), &mut stop).await;
        if let Err(e) = nemesis.stop(active).await {
            tracing::warn!("stopping {}: {e:#}", kind.name());
            errors.push(format!("stopping {}: {e:#}", kind.name()));
        }
        if stopped {
            break;
        }
    }
    (nemesis, errors)
}
