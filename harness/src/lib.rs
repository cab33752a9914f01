//! The faultline harness as a library: the `faultline` binary is a thin shell over it, and
//! integration tests and benchmarks reach the pieces directly.
//!
//! - [`cli`]: the raw command line; [`exit`]: exit codes.
//! - [`run`]: `faultline test` — cluster lifecycle, nemeses, clock faults, schedule, run store.
//! - [`net`]: the proxy network, one userland TCP proxy per directed link.
//! - [`check`]: `faultline check`.
//! - [`report`]: per-run reports, plots, the index, suites and the comparison.
//! - [`protocols`]: `faultline protocols`.

pub mod check;
pub mod cli;
pub mod exit;
pub mod net;
pub mod protocols;
pub mod report;
pub mod run;
