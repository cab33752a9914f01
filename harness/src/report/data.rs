//! What a report knows about one run, read from its directory and derived once: the
//! configuration (`test.json`), the verdicts (`results.json`), the history paired into calls, the
//! fault periods from the nemesis events, and statistics split by quiet and faulty time.
//!
//! Everything here is lenient: a run the harness could not finish may lack `results.json`, or
//! have a history cut mid-line. The report still renders what there is and says what is missing;
//! only an unreadable directory is an error.

use faultline_checkers::history::{pair, read_jsonl};
use faultline_checkers::{Call, History, Op, Outcome, Validity};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One run directory, loaded.
pub struct RunData {
    pub dir: PathBuf,
    /// `test.json`, or `Null` when missing or malformed.
    pub test: Value,
    /// `results.json`, or `Null` when missing or malformed.
    pub results: Value,
    pub history: History,
    /// Why the history (or part of it) could not be read, if it could not.
    pub history_error: Option<String>,
    /// Client calls in invoke order.
    pub calls: Vec<Call>,
    /// Nemesis events, in history order.
    pub nemesis: Vec<Op>,
    /// Periods during which a fault was active.
    pub faults: Vec<FaultPeriod>,
    /// Seconds from the start to the last event.
    pub end_s: f64,
}

/// A stretch of time between a fault's start and its stop (or the heal, or the end of the run).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPeriod {
    /// The nemesis name (`partition`, `kill`, ...).
    pub fault: String,
    pub start_s: f64,
    pub stop_s: f64,
    /// The start event's value (grudge, nodes, offsets), for tooltips and minority analysis.
    pub detail: Value,
    /// False when the run ended before a stop or heal was recorded.
    pub closed: bool,
}

/// Counts and latencies of a set of calls.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub fail: u64,
    /// `info` completions and invokes that never completed.
    pub info: u64,
    /// Latencies of ok calls, milliseconds.
    pub ok_latency_ms: Vec<f64>,
}

impl Tally {
    pub fn add(&mut self, call: &Call) {
        match call.outcome {
            Outcome::Ok(_) => {
                self.ok += 1;
                if let Some(l) = latency_ms(call) {
                    self.ok_latency_ms.push(l);
                }
            }
            Outcome::Fail => self.fail += 1,
            Outcome::Unknown => self.info += 1,
        }
    }

    pub fn total(&self) -> u64 {
        self.ok + self.fail + self.info
    }

    /// Share of ok among the calls, or `None` when there were none.
    pub fn availability(&self) -> Option<f64> {
        (self.total() > 0).then(|| self.ok as f64 / self.total() as f64)
    }

    /// A quantile (0..=1) of the ok latencies.
    pub fn quantile_ms(&mut self, q: f64) -> Option<f64> {
        self.ok_latency_ms.sort_by(|a, b| a.total_cmp(b));
        quantile_sorted(&self.ok_latency_ms, q)
    }
}

/// Nearest-rank quantile of sorted values.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A call's latency in milliseconds, when it completed.
pub fn latency_ms(call: &Call) -> Option<f64> {
    call.complete_time.map(|t| t.saturating_sub(call.invoke_time) as f64 / 1e6)
}

/// Seconds since the start of the test.
pub fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn read_json(path: &Path) -> Value {
    std::fs::read_to_string(path).ok().and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null)
}

impl RunData {
    /// Loads a run directory. Fails only when the directory itself cannot be read.
    pub fn load(dir: &Path) -> anyhow::Result<RunData> {
        if !dir.is_dir() {
            anyhow::bail!("{}: not a run directory", dir.display());
        }
        let test = read_json(&dir.join("test.json"));
        let results = read_json(&dir.join("results.json"));
        let hpath = dir.join("history.jsonl");
        let (history, mut history_error) = match read_jsonl(&hpath) {
            Ok(h) => (h, None),
            Err(e) => (read_prefix(&hpath), Some(e.to_string())),
        };
        let calls = match pair(&history.ops) {
            Ok(c) => c,
            Err(e) => {
                history_error.get_or_insert_with(|| format!("{}: {}", hpath.display(), e));
                Vec::new()
            }
        };
        let nemesis: Vec<Op> = history.ops.iter().filter(|o| o.is_nemesis() && !faultline_checkers::durable::is_observation(o)).cloned().collect();
        let end_s = history.ops.iter().map(|o| secs(o.time)).fold(0.0, f64::max);
        let faults = fault_periods(&nemesis, end_s);
        Ok(RunData { dir: dir.to_path_buf(), test, results, history, history_error, calls, nemesis, faults, end_s })
    }

    /// A string field of `test.json`, or an empty string.
    pub fn test_str(&self, field: &str) -> String {
        match self.test.get(field) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(v) => v.to_string(),
        }
    }

    /// The nemeses of `test.json` (a list, or a comma-separated string).
    pub fn nemeses(&self) -> Vec<String> {
        nemeses_of(&self.test)
    }

    /// The overall verdict of `results.json`, if the run got one.
    pub fn verdict(&self) -> Option<Validity> {
        self.results.get("valid").and_then(Validity::from_json)
    }

    /// Whether a time (seconds) lies inside a fault period.
    pub fn in_fault(&self, t_s: f64) -> bool {
        self.faults.iter().any(|p| p.start_s <= t_s && t_s < p.stop_s)
    }

    /// Client calls that are not the harness's final reads.
    pub fn workload_calls(&self) -> impl Iterator<Item = &Call> {
        self.calls.iter().filter(|c| !c.final_read)
    }

    /// Counts per operation (final reads under `f (final)`), in name order.
    pub fn per_f(&self) -> BTreeMap<String, Tally> {
        let mut m: BTreeMap<String, Tally> = BTreeMap::new();
        for c in &self.calls {
            let name = if c.final_read { format!("{} (final)", c.f) } else { c.f.to_string() };
            m.entry(name).or_default().add(c);
        }
        m
    }

    /// Tallies of workload calls invoked during quiet time, during any fault, and during each
    /// fault by name.
    pub fn phases(&self) -> (Tally, Tally, BTreeMap<String, Tally>) {
        let mut quiet = Tally::default();
        let mut faulty = Tally::default();
        let mut by_fault: BTreeMap<String, Tally> = BTreeMap::new();
        for c in self.workload_calls() {
            let t = secs(c.invoke_time);
            let active: Vec<&FaultPeriod> = self.faults.iter().filter(|p| p.start_s <= t && t < p.stop_s).collect();
            if active.is_empty() {
                quiet.add(c);
            } else {
                faulty.add(c);
                let mut seen: Vec<&str> = Vec::new();
                for p in active {
                    if !seen.contains(&p.fault.as_str()) {
                        seen.push(&p.fault);
                        by_fault.entry(p.fault.clone()).or_default().add(c);
                    }
                }
            }
        }
        (quiet, faulty, by_fault)
    }
}

/// The nemeses of a `test.json` value (a list, or a comma-separated string).
pub fn nemeses_of(test: &Value) -> Vec<String> {
    match test.get("nemesis") {
        Some(Value::Array(a)) => a.iter().map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).collect(),
        Some(Value::String(s)) => s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect(),
        _ => Vec::new(),
    }
}

/// Reads the well-formed lines before the first bad one, so a history cut by a crash still shows.
fn read_prefix(path: &Path) -> History {
    let mut ops = Vec::new();
    if let Ok(reader) = faultline_checkers::history::JsonlReader::open(path) {
        for op in reader {
            match op {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
    }
    History { ops }
}

/// Whether a nemesis event starts or stops its fault, and which fault it is.
///
/// The value's `fault` and `phase` fields decide when present (docs/design.md); otherwise the
/// event name does: `start-x`/`stop-x`, and the pairs kill/restart, pause/resume. `heal` stops
/// everything.
pub fn classify(op: &Op) -> (String, Phase) {
    let f: &str = &op.f;
    let named = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let fault_field = named(&op.value, "fault");
    let phase_field = named(&op.value, "phase");
    if f == "heal" {
        return (fault_field.unwrap_or_else(|| "heal".into()), Phase::HealAll);
    }
    let (guess_fault, guess_phase) = if let Some(x) = f.strip_prefix("start-") {
        (x.to_string(), Phase::Start)
    } else if let Some(x) = f.strip_prefix("stop-") {
        (x.to_string(), Phase::Stop)
    } else {
        match f {
            "kill" => ("kill".into(), Phase::Start),
            "restart" => ("kill".into(), Phase::Stop),
            "pause" => ("pause".into(), Phase::Start),
            "resume" => ("pause".into(), Phase::Stop),
            other => (other.to_string(), Phase::Instant),
        }
    };
    let phase = match phase_field.as_deref() {
        Some("start") => Phase::Start,
        Some("stop") => Phase::Stop,
        _ => guess_phase,
    };
    (fault_field.unwrap_or(guess_fault), phase)
}

/// How a nemesis event changes the set of active faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Start,
    Stop,
    /// Stops every active fault.
    HealAll,
    /// A one-off event with no duration.
    Instant,
}

/// Pairs each fault start with the next stop of the same fault (or a heal, or the end).
pub fn fault_periods(nemesis: &[Op], end_s: f64) -> Vec<FaultPeriod> {
    let mut open: Vec<FaultPeriod> = Vec::new();
    let mut done: Vec<FaultPeriod> = Vec::new();
    for op in nemesis {
        let t = secs(op.time);
        let (fault, phase) = classify(op);
        match phase {
            Phase::Start => {
                // A second start of a fault already active (a new partition topology) closes
                // the first period and opens a new one, so each shaded band has one shape.
                if let Some(i) = open.iter().position(|p| p.fault == fault) {
                    let mut p = open.remove(i);
                    p.stop_s = t;
                    p.closed = true;
                    done.push(p);
                }
                open.push(FaultPeriod { fault, start_s: t, stop_s: t, detail: op.value.clone(), closed: false });
            }
            Phase::Stop => {
                if let Some(i) = open.iter().position(|p| p.fault == fault) {
                    let mut p = open.remove(i);
                    p.stop_s = t;
                    p.closed = true;
                    done.push(p);
                }
            }
            Phase::HealAll => {
                for mut p in open.drain(..) {
                    p.stop_s = t;
                    p.closed = true;
                    done.push(p);
                }
            }
            Phase::Instant => {}
        }
    }
    for mut p in open {
        p.stop_s = end_s.max(p.start_s);
        done.push(p);
    }
    done.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checkers::history::parse_jsonl;

    #[test]
    fn periods_pair_start_stop_and_heal() {
        let text = r#"{"process":"nemesis","type":"info","f":"start-partition","value":{"fault":"partition","phase":"start"},"time":1000000000}
{"process":"nemesis","type":"info","f":"kill","value":{"fault":"kill","phase":"start","nodes":["n1"]},"time":2000000000}
{"process":"nemesis","type":"info","f":"stop-partition","value":{"fault":"partition","phase":"stop"},"time":3000000000}
{"process":"nemesis","type":"info","f":"pause","time":4000000000}
{"process":"nemesis","type":"info","f":"heal","value":null,"time":5000000000}
{"process":"nemesis","type":"info","f":"start-clock","time":6000000000}
"#;
        let h = parse_jsonl(text, "t").unwrap();
        let p = fault_periods(&h.ops, 7.0);
        let got: Vec<(&str, f64, f64, bool)> = p.iter().map(|p| (p.fault.as_str(), p.start_s, p.stop_s, p.closed)).collect();
        assert_eq!(
            got,
            vec![("partition", 1.0, 3.0, true), ("kill", 2.0, 5.0, true), ("pause", 4.0, 5.0, true), ("clock", 6.0, 7.0, false)]
        );
    }

    #[test]
    fn quantiles_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5), Some(2.0));
        assert_eq!(quantile_sorted(&v, 0.99), Some(4.0));
        assert_eq!(quantile_sorted(&v, 0.0), Some(1.0));
        assert_eq!(quantile_sorted(&[], 0.5), None);
    }
}
