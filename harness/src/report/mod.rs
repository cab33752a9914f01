//! Reports and suites: what a person looks at when a run turns red, and how protocols compare.
//!
//! - [`run_report`]: `report.html`, `latency.png`, `rate.png` of one run ([`write_run_report`],
//!   called by `faultline test` at the end of every run), opening on the anomaly.
//! - [`story`]: a linearizability anomaly joined with the history (node, time, the write that
//!   made a read stale, the faults) and told in one sentence; [`zoom`]: it drawn on a timeline
//!   scaled to its window; [`bank`], [`elements`]: bank, set, convergence and counter failures
//!   drawn for a person; [`timeline`]: `timeline.html`, the whole history, virtually scrolled.
//! - [`plots`]: the two plots, drawn with plotters and the bundled font; [`svg`]: hand-made SVG
//!   pieces (time scale, fault bands, legends) for the drawings a test must find in the DOM.
//! - [`anomaly`]: the failure sections (event-order linearizability timeline, final states,
//!   details).
//! - [`text`]: plurals, natural key order, round ticks.
//! - [`index`]: `results/index.html` over cached per-run summaries ([`write_index`]).
//! - [`suite`]: `faultline suite` (a matrix of `faultline test` subprocesses, sharded);
//!   [`suite_file`]: reading and checking the suite file; [`subprocess`]: running one cell
//!   in its own process group, interrupted and then killed past its timeout.
//! - [`outcome`]: one classification of how a run ended (pass, failure, skipped, error) with
//!   its reason, used by JUnit, the pages and the exit codes.
//! - [`compare`]: the protocol comparison (`comparison.html`, `comparison.json`) and
//!   [`junit`]: `junit.xml`.
//! - [`html`]: escaping, safe links and page pieces shared by every page; [`data`]: a run
//!   loaded; [`atomic`]: replacing files other processes may read or write at the same time.

pub mod anomaly;
pub mod atomic;
pub mod bank;
pub mod cap_plot;
pub mod compare;
pub mod data;
pub mod durable;
pub mod elements;
pub mod html;
pub mod index;
pub mod junit;
pub mod outcome;
pub mod plots;
pub mod run_report;
pub mod story;
pub mod subprocess;
pub mod suite;
pub mod suite_file;
pub mod svg;
pub mod text;
pub mod timeline;
pub mod zoom;

pub use index::write_index;
pub use run_report::write_run_report;
pub use suite::suite_main;

use crate::cli::ReportArgs;
use crate::exit::{self, usage, Failure};

/// `faultline report PATH`: re-renders one run (a directory with `test.json`), or the index and
/// comparison of a results directory (every run found below it, from any shard). The exit
/// code is the worst outcome among the runs rendered ([`outcome::classify`]): a crashed or
/// interrupted run, or one without a verdict, counts as a harness failure (255).
pub fn report_main(args: ReportArgs) -> Result<i32, Failure> {
    let path = &args.path;
    if !path.is_dir() {
        return Err(usage(format!("{}: no such directory (expected a run directory or a results directory)", path.display())));
    }
    if path.join("test.json").is_file() {
        write_run_report(path).map_err(Failure::Internal)?;
        crate::out!("report: {}", path.join("report.html").display());
        return Ok(outcome::classify(&index::load_summary(path)).exit_code());
    }
    let runs = index::find_runs(path);
    if runs.is_empty() {
        return Err(usage(format!("{}: no runs found (no directory below it has a test.json)", path.display())));
    }
    if args.runs {
        for r in &runs {
            if let Err(e) = write_run_report(r) {
                eprintln!("faultline: {}: {e:#}", r.display());
            }
        }
    }
    let cmp = compare::write_comparison(path).map_err(Failure::Internal)?;
    write_index(path).map_err(Failure::Internal)?;
    crate::out!("index: {}", path.join("index.html").display());
    crate::out!("comparison: {}", path.join("comparison.html").display());
    Ok(exit::worst(cmp.runs.iter().map(|r| outcome::classify(&r.summary).exit_code())))
}
