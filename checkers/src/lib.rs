//! faultline's checkers: the history model every crate shares, consistency models as pure
//! values, and the checkers that judge a history against them.
//!
//! - [`history`]: operations, histories, streaming JSONL I/O, invoke/completion pairing.
//! - [`value`]: when two values are the same value (canonical JSON), and exact integers.
//! - [`edn`]: Jepsen EDN import.
//! - [`verdict`]: three-valued verdicts and how results compose.
//! - [`model`]: the sequential specifications (register, cas-register, kv, counter, set).
//! - [`linear`]: the linearizability checker and its explanations.
//! - [`counter`], [`set`], [`convergence`], [`bank`], [`orset`], [`agreement`], [`lww`]: the other checkers.
//! - [`registry`]: checkers by name, run together with their failures contained.

pub mod agreement;
pub mod bank;
pub mod convergence;
pub mod counter;
pub mod durable;
pub mod edn;
pub mod history;
pub mod linear;
pub mod lww;
pub mod model;
pub mod orset;
pub mod registry;
pub mod set;
pub mod unique;
pub mod value;
pub mod verdict;

pub use history::{Call, History, HistoryError, Key, Op, OpType, Outcome, Process};
pub use verdict::{CheckOptions, CheckResult, Validity};
