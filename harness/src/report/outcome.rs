//! How a run ended, in one word and its real reason: passed, failed (a claimed guarantee was
//! violated), skipped (no verdict could be reached: unhealthy run, undecided checker), or
//! error (the run crashed, was killed, was interrupted, or left no results). JUnit, the index,
//! the comparison and the exit codes of `suite` and `report` all use this one classification,
//! so CI, the pages and the exit code never disagree about a run.
//!
//! A run's `results.json` alone cannot tell everything: a run killed by the suite, or one that
//! died before writing results, says nothing itself. So the suite records what it saw of each
//! run — exit code, whether it had to stop it, the tail of its stderr — in a [`CellRecord`]:
//! `suite.json` in the run directory, or `suite-cells/<name>.json` in the results directory
//! when the run never made a directory.

use super::atomic::write_atomic;
use super::html::percent_encode;
use super::index::RunSummary;
use super::subprocess::{Finished, Stopped};
use faultline_checkers::Validity;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Name of the record in a run directory.
pub const RECORD_FILE: &str = "suite.json";
/// Directory (in a results directory) of the records of runs that made no run directory.
pub const ORPHANS_DIR: &str = "suite-cells";
/// Characters of a reason shown on one line (JUnit message, index, comparison).
const MESSAGE_MAX: usize = 300;

/// What the suite saw of one run of one cell.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct CellRecord {
    pub protocol: String,
    pub workload: String,
    pub nemesis: String,
    pub rep: u32,
    pub seed: u64,
    /// Exit code of `faultline test`; `None` when a signal ended it or it never started.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    /// What the suite did to stop it, in words; `None` when it ended on its own.
    pub stopped: Option<String>,
    /// Why it could not be started, if it could not.
    pub spawn_error: Option<String>,
    /// The last lines of its stderr.
    pub stderr_tail: Vec<String>,
    /// When the suite started it (RFC 3339, as `test.json`'s `started_at`).
    pub started_at: String,
    /// The node arguments of its protocol variant (empty for the plain protocol).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_args: Vec<String>,
}

impl CellRecord {
    /// The record of a finished child.
    pub fn new(cell: (&str, &str, &str), rep: u32, seed: u64, f: &Finished, timeout: std::time::Duration, started_at: String) -> Self {
        let stopped = f.stopped.map(|s| match s {
            Stopped::Term => format!("run_timeout_s ({} s) exceeded: interrupted by SIGTERM", timeout.as_secs_f64()),
            Stopped::Kill => format!("run_timeout_s ({} s) exceeded: killed by SIGKILL after the grace period", timeout.as_secs_f64()),
        });
        CellRecord {
            protocol: cell.0.to_string(),
            workload: cell.1.to_string(),
            nemesis: cell.2.to_string(),
            rep,
            seed,
            code: f.code,
            signal: f.signal,
            stopped,
            spawn_error: f.spawn_error.clone(),
            stderr_tail: f.stderr_tail.clone(),
            started_at,
            node_args: Vec::new(),
        }
    }

    /// The stable JUnit name: `protocol/workload/nemeses#repetition` (the protocol with its
    /// variant's node arguments, when it has any).
    pub fn name(&self) -> String {
        format!("{}/{}/{}#{}", super::suite_file::label(&self.protocol, &self.node_args), self.workload, self.nemesis, self.rep)
    }

    /// Where the record of a run without a directory is kept.
    pub fn orphan_path(results: &Path, name: &str) -> PathBuf {
        results.join(ORPHANS_DIR).join(format!("{}.json", percent_encode(name)))
    }

    /// Stores the record in the run directory, or as an orphan when there is none; a stored
    /// run supersedes an orphan of the same name from an earlier suite.
    pub fn store(&self, results: &Path, run_dir: Option<&Path>) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let orphan = Self::orphan_path(results, &self.name());
        match run_dir {
            Some(d) => {
                let _ = std::fs::remove_file(&orphan);
                write_atomic(&d.join(RECORD_FILE), &text)
            }
            None => {
                std::fs::create_dir_all(results.join(ORPHANS_DIR))?;
                write_atomic(&orphan, &text)
            }
        }
    }

    /// The records of runs without a directory, below `results`.
    pub fn orphans(results: &Path) -> Vec<CellRecord> {
        let Ok(entries) = std::fs::read_dir(results.join(ORPHANS_DIR)) else { return Vec::new() };
        let mut out: Vec<CellRecord> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json") && !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
            .collect();
        out.sort_by_key(CellRecord::name);
        out
    }

    /// The stderr tail as text.
    pub fn stderr_text(&self) -> String {
        self.stderr_tail.join("\n")
    }

    /// One line saying how the process ended, when that is a failure.
    fn failure_line(&self) -> Option<String> {
        if let Some(s) = &self.stopped {
            return Some(s.clone());
        }
        if let Some(e) = &self.spawn_error {
            return Some(e.clone());
        }
        match (self.code, self.signal) {
            (Some(0..=2), _) => None,
            (Some(c), _) => Some(format!("faultline test exited {c}{}", last_words(&self.stderr_tail))),
            (None, Some(s)) => Some(format!("faultline test died of signal {s}{}", last_words(&self.stderr_tail))),
            (None, None) => Some("faultline test ended without an exit status".into()),
        }
    }
}

/// `: <the last non-empty stderr line>`, or nothing.
fn last_words(tail: &[String]) -> String {
    tail.iter().rev().find(|l| !l.trim().is_empty()).map(|l| format!(": {}", l.trim())).unwrap_or_default()
}

/// The four outcomes of a run, as JUnit has them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Pass,
    /// A claimed guarantee was violated.
    Failure,
    /// No verdict could be reached (unknown).
    Skipped,
    /// The run crashed, was killed or interrupted, or left no results.
    Error,
}

/// A run's outcome with its reason.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub kind: Kind,
    /// One line: why (empty for a pass).
    pub message: String,
    /// Everything known about why: full error, health reasons, stderr tail.
    pub detail: String,
}

impl Outcome {
    fn new(kind: Kind, message: impl Into<String>, detail: impl Into<String>) -> Self {
        Outcome { kind, message: one_line(&message.into()), detail: detail.into() }
    }

    /// The exit code the outcome stands for (255 error, 1 failure, 2 skipped, 0 pass).
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            Kind::Pass => crate::exit::VALID,
            Kind::Failure => crate::exit::INVALID,
            Kind::Skipped => crate::exit::UNKNOWN,
            Kind::Error => crate::exit::INTERNAL,
        }
    }

    /// The word for pages and JSON.
    pub fn word(&self) -> &'static str {
        match self.kind {
            Kind::Pass => "valid",
            Kind::Failure => "invalid",
            Kind::Skipped => "unknown",
            Kind::Error => "crashed",
        }
    }
}

/// The first line of `s`, cut to [`MESSAGE_MAX`] characters. A first line that announces
/// what follows ("last lines of n1.log:") gets the next line too: that is the actual reason.
fn one_line(s: &str) -> String {
    let mut lines = s.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    let line = match lines.next() {
        Some(next) if first.ends_with(':') => format!("{first} {next}"),
        _ => first.to_string(),
    };
    super::html::truncate(&line, MESSAGE_MAX)
}

/// Joins detail paragraphs, leaving out empty ones.
fn paragraphs(parts: &[String]) -> String {
    parts.iter().filter(|p| !p.trim().is_empty()).cloned().collect::<Vec<_>>().join("\n\n")
}

/// The health reasons of a summary as a paragraph.
fn health_text(s: &RunSummary) -> String {
    if s.health_reasons.is_empty() {
        return String::new();
    }
    format!("health:\n- {}", s.health_reasons.join("\n- "))
}

fn stderr_text(s: &RunSummary) -> String {
    match &s.suite {
        Some(r) if !r.stderr_tail.is_empty() => format!("stderr (last lines):\n{}", r.stderr_text()),
        _ => String::new(),
    }
}

/// Classifies a run from its summary (which carries the suite's record, if any).
pub fn classify(s: &RunSummary) -> Outcome {
    if let Some(o) = crashed(s) {
        return o;
    }
    if let Some(by) = &s.interrupted_by {
        return Outcome::new(Kind::Error, format!("interrupted by {by}"), paragraphs(&[health_text(s), stderr_text(s)]));
    }
    match s.verdict() {
        None => Outcome::new(Kind::Error, "the run left no verdict (no readable results.json)", stderr_text(s)),
        Some(Validity::Invalid) => {
            let failing: Vec<&str> = s.checkers.iter().filter(|(_, v)| Validity::from_json(v) == Some(Validity::Invalid)).map(|(k, _)| k.as_str()).collect();
            let msg = format!("claimed guarantee violated: {}", failing.join(", "));
            Outcome::new(Kind::Failure, msg.clone(), paragraphs(&[msg, health_text(s), format!("report: {}/report.html", s.path)]))
        }
        Some(Validity::Unknown) => {
            let msg = unknown_reason(s);
            Outcome::new(Kind::Skipped, msg, paragraphs(&[health_text(s), s.undecided.join("\n")]))
        }
        Some(Validity::Valid) => Outcome::new(Kind::Pass, "", ""),
    }
}

/// The run crashed: the suite stopped it, it could not start, it exited with a harness
/// failure, or its results carry an `error`.
fn crashed(s: &RunSummary) -> Option<Outcome> {
    let record_line = s.suite.as_ref().and_then(CellRecord::failure_line);
    if let Some(r) = s.suite.as_ref().filter(|r| r.stopped.is_some()) {
        let line = r.stopped.clone().unwrap_or_default();
        return Some(Outcome::new(Kind::Error, line, paragraphs(&[health_text(s), stderr_text(s)])));
    }
    if let Some(e) = &s.error {
        return Some(Outcome::new(Kind::Error, e.clone(), paragraphs(&[e.clone(), record_line.unwrap_or_default(), stderr_text(s)])));
    }
    if let Some(line) = record_line {
        return Some(Outcome::new(Kind::Error, line.clone(), paragraphs(&[line, stderr_text(s)])));
    }
    None
}

/// Why a run is unknown: its health reasons first, then what the checkers said.
fn unknown_reason(s: &RunSummary) -> String {
    if s.health_ok == Some(false) && !s.health_reasons.is_empty() {
        return format!("unhealthy run: {}", s.health_reasons.join("; "));
    }
    if !s.undecided.is_empty() {
        return s.undecided.join("; ");
    }
    "a checker could not decide (it recorded no reason)".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn summary(results: Value) -> RunSummary {
        let test = json!({"protocol": "raft", "workload": "register", "nemesis": ["kill"], "seed": 1});
        let mut s = super::super::index::summarize(&test, &results);
        s.path = "raft-register-kill/1".into();
        s
    }

    fn record(code: Option<i32>, stopped: Option<&str>) -> CellRecord {
        CellRecord { protocol: "raft".into(), workload: "register".into(), nemesis: "kill".into(), code, stopped: stopped.map(str::to_string), stderr_tail: vec!["faultline: node n1 exited during start-up: bad flag".into()], ..CellRecord::default() }
    }

    #[test]
    fn a_crash_with_an_error_field_is_an_error_with_that_error() {
        let mut s = summary(json!({"valid": "unknown", "checkers": {}, "error": "node n1 exited with status 1 before it was ready\nlog tail: bad flag"}));
        s.suite = Some(record(Some(255), None));
        let o = classify(&s);
        assert_eq!(o.kind, Kind::Error);
        assert_eq!(o.message, "node n1 exited with status 1 before it was ready");
        // A line announcing a log gets the log's line: that is the reason.
        assert_eq!(one_line("last lines of n1.log:\n\nbad flag --x\nmore"), "last lines of n1.log: bad flag --x");
        assert!(o.detail.contains("log tail: bad flag") && o.detail.contains("stderr (last lines)"), "{}", o.detail);
        assert_eq!(o.exit_code(), 255);
    }

    #[test]
    fn exit_255_without_results_is_an_error_naming_stderr() {
        let mut s = summary(Value::Null);
        s.suite = Some(record(Some(255), None));
        let o = classify(&s);
        assert_eq!(o.kind, Kind::Error);
        assert!(o.message.contains("exited 255") && o.message.contains("bad flag"), "{}", o.message);
        // Without a record the missing results alone make it an error.
        assert_eq!(classify(&summary(Value::Null)).kind, Kind::Error);
    }

    #[test]
    fn stopped_or_interrupted_runs_are_errors_even_with_a_verdict() {
        let mut s = summary(json!({"valid": true, "checkers": {}, "interrupted": true, "interrupted_by": "SIGTERM"}));
        assert_eq!(classify(&s).message, "interrupted by SIGTERM");
        assert_eq!(classify(&s).kind, Kind::Error);
        s.suite = Some(record(Some(2), Some("run_timeout_s (5 s) exceeded: interrupted by SIGTERM")));
        assert!(classify(&s).message.starts_with("run_timeout_s (5 s) exceeded"));
    }

    #[test]
    fn unknown_says_the_health_reasons_then_the_checker() {
        let s = summary(json!({"valid": "unknown", "checkers": {"linearizable": {"valid": true}}, "health": {"ok": false, "reasons": ["node n3 is down at the end of the run"]}}));
        let o = classify(&s);
        assert_eq!(o.kind, Kind::Skipped);
        assert_eq!(o.message, "unhealthy run: node n3 is down at the end of the run");
        let s = summary(json!({"valid": "unknown", "checkers": {"linearizable": {"valid": "unknown", "error": "budget of 60 s spent"}}}));
        assert_eq!(classify(&s).message, "linearizable: budget of 60 s spent");
    }

    #[test]
    fn invalid_names_the_violated_checkers_and_valid_passes() {
        let s = summary(json!({"valid": false, "checkers": {"linearizable": {"valid": false}, "set": {"valid": true}}}));
        let o = classify(&s);
        assert_eq!((o.kind, o.message.as_str()), (Kind::Failure, "claimed guarantee violated: linearizable"));
        let mut s = summary(json!({"valid": true, "checkers": {"linearizable": {"valid": true}}, "health": {"ok": true, "reasons": []}}));
        s.suite = Some(record(Some(0), None));
        assert_eq!(classify(&s).kind, Kind::Pass);
    }

    #[test]
    fn records_round_trip_and_orphans_are_superseded() {
        let d = tempfile::tempdir().unwrap();
        let r = record(None, None);
        r.store(d.path(), None).unwrap();
        assert_eq!(CellRecord::orphans(d.path()), vec![r.clone()]);
        let run = d.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        r.store(d.path(), Some(&run)).unwrap();
        assert!(CellRecord::orphans(d.path()).is_empty());
        let back: CellRecord = serde_json::from_slice(&std::fs::read(run.join(RECORD_FILE)).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
