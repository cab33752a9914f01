//! The faultline harness as a library: the `faultline` binary is a thin shell over it, and
//! integration tests and benchmarks reach the pieces directly.
//!
//! - [`cli`]: the raw command line; [`exit`]: exit codes.
//! - [`run`]: `faultline test` — cluster lifecycle, nemeses, clock faults, schedule, run store.
//! - [`net`]: the proxy network, one userland TCP proxy per directed link.
//! - [`check`]: `faultline check`.
//! - [`report`]: per-run reports, plots, the index, suites and the comparison.
//! - [`protocols`]: `faultline protocols`.
//! - [`maelstrom`]: `faultline test --node-protocol maelstrom` (stdio nodes, the message router).
//! - [`lifecycle`]: one cleanup path for every exit (process groups, subreaper, guardian, signals).

/// `println!` that never panics: a closed stdout (`faultline check h.jsonl | true`) must not turn
/// a verdict into a crash, so write errors are ignored and the exit code stays the verdict's.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stdout(), $($arg)*);
    }};
}

pub mod check;
pub mod cli;
pub mod exit;
pub mod hunt;
pub mod lifecycle;
pub mod maelstrom;
pub mod net;
pub mod protocols;
pub mod report;
pub mod run;
