//! `faultline test --node-protocol maelstrom`: nodes written against Maelstrom's protocol (JSON
//! messages on stdin and stdout), run as real processes under real faults.
//!
//! - [`settings`]: the flags of such a run.
//! - [`router`]: every message between nodes, clients and services, under the run's link rules.
//! - [`latency`]: `--latency-ms` and `--latency-dist`, each message's time on its way.
//! - [`services`]: the `lin-kv`, `seq-kv` and `lww-kv` services.
//! - [`workloads`]: Maelstrom's workloads as history operations and checkers.
//! - [`lamport`]: `messages.svg`, a Lamport diagram of the first messages.
//! - [`run`]: the run itself, on the pipeline of [`crate::run`].
//!
//! docs/maelstrom.md describes all of it for users.

pub mod lamport;
pub mod latency;
pub mod router;
pub mod run;
pub mod services;
pub mod settings;
pub mod workloads;
