//! Progress while a test runs, on stderr: a bar on a terminal (elapsed, ops/s, ok/fail/info,
//! the faults in effect), plain lines every few seconds otherwise (CI logs).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use super::record::Counters;

/// How often a plain line is printed when stderr is not a terminal.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// One line of progress (pure, for both displays).
pub fn line(elapsed: Duration, ok: u64, fail: u64, info: u64, ops_per_s: f64, active: &[String]) -> String {
    let faults = if active.is_empty() { "none".to_string() } else { active.join(",") };
    format!("{:>5.1}s  {ops_per_s:>6.1} ops/s  ok {ok}  fail {fail}  info {info}  faults: {faults}", elapsed.as_secs_f64())
}

/// Shows progress until `stop` turns true.
pub async fn show(counters: Arc<Counters>, time_limit: Duration, mut stop: watch::Receiver<bool>) {
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let bar = tty.then(|| {
        let b = ProgressBar::new(time_limit.as_millis() as u64);
        b.set_style(ProgressStyle::with_template("{bar:30.cyan/blue} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()));
        b
    });
    let step = if tty { Duration::from_millis(250) } else { PLAIN_EVERY };
    let mut last = (Instant::now(), 0u64);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(step) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let (ok, fail, info) = counters.completed();
        let done = ok + fail + info;
        let rate = (done - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-3);
        last = (Instant::now(), done);
        let active = counters.active.lock().map(|a| a.clone()).unwrap_or_default();
        let text = line(started.elapsed(), ok, fail, info, rate, &active);
        match &bar {
            Some(b) => {
                b.set_position((started.elapsed().as_millis() as u64).min(time_limit.as_millis() as u64));
                b.set_message(text);
            }
            None => eprintln!("faultline: {text}"),
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_counts_and_faults() {
        let l = line(Duration::from_millis(2500), 10, 2, 1, 4.0, &["kill".to_string()]);
        assert!(l.contains("2.5s") && l.contains("ok 10") && l.contains("info 1") && l.contains("faults: kill"), "{l}");
        assert!(line(Duration::ZERO, 0, 0, 0, 0.0, &[]).contains("faults: none"));
    }
}
