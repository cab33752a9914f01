//! Known-bug switches: the project's own mutation corpus.
//!
//! Each protocol names a few classic bugs that real implementations have shipped (committing
//! without a quorum, acting on state not yet durable, accepting stale terms or ballots, reads
//! that skip the leadership or lock check, non-idempotent merges). `--bug NAME` (repeatable)
//! turns one on; the harness's detection power is measured by how many of them its checkers
//! catch. A protocol declares its bugs with [`known_bugs!`], which generates a `Bug` enum and a
//! `Bugs` bit set: off by default, and a bug site costs one bit test when off.
//!
//! The binary joins repeated `--bug` flags into the one protocol option `bug` (comma-separated),
//! so the `NodeConfig` options stay a plain map.

use crate::core::NodeConfig;
use serde::{Deserialize, Serialize};

/// The protocol option that carries the `--bug` names.
pub const OPTION: &str = "bug";

/// One bug as `--describe` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BugDoc {
    pub name: String,
    /// What it breaks, in one line.
    pub effect: String,
}

/// The names given with `--bug`, in order (empty when none).
pub fn requested(config: &NodeConfig) -> Vec<&str> {
    config.option(OPTION).map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
}

/// The usage error for a name that is not one of `known` (the runtime's bugs are added).
pub fn unknown(protocol: &str, name: &str, known: &[&str]) -> String {
    let all: Vec<&str> = known.iter().copied().chain(RUNTIME.iter().map(|(n, _)| *n)).collect();
    format!("--bug {name:?}: not a known {protocol} bug (known: {})", all.join(", "))
}

/// Bugs of the runtime (`nodes/src/runtime/`), shared by every protocol: name and effect. A
/// protocol's `Bugs` set skips them; the runtime reads them with [`runtime_has`].
pub const RUNTIME: &[(&str, &str)] = &[(
    NO_FSYNC,
    "the runtime never calls fsync (files, logs, the data dir), so replies leave before anything is durable; SIGKILL keeps the page cache and hides it, a power loss does not",
)];

/// The runtime bug that skips every fsync (`runtime/disk.rs`).
pub const NO_FSYNC: &str = "no-fsync";

/// Whether the runtime bug `name` was given with `--bug`.
pub fn runtime_has(config: &NodeConfig, name: &str) -> bool {
    requested(config).contains(&name)
}

/// Whether `name` is a runtime bug (every protocol accepts it).
pub fn is_runtime(name: &str) -> bool {
    RUNTIME.iter().any(|(n, _)| *n == name)
}

/// Declares a protocol's known bugs: `known_bugs!("raft"; Variant = "kebab-name": "effect", ...)`.
/// Generates `Bug` (with `ALL`, `name`, `effect`) and `Bugs`, a set parsed from the config.
#[macro_export]
macro_rules! known_bugs {
    ($protocol:literal; $( $(#[$doc:meta])* $variant:ident = $name:literal : $effect:literal, )+) => {
        /// One known bug of this protocol.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Bug {
            $( $(#[$doc])* $variant, )+
        }

        impl Bug {
            pub const ALL: &'static [Bug] = &[ $( Bug::$variant, )+ ];

            /// The `--bug` name.
            pub fn name(self) -> &'static str {
                match self { $( Bug::$variant => $name, )+ }
            }

            pub fn effect(self) -> &'static str {
                match self { $( Bug::$variant => $effect, )+ }
            }
        }

        /// The bugs switched on: a bit per [`Bug`], empty by default.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct Bugs(u32);

        impl Bugs {
            /// Parses the `--bug` names of the config; an unknown name is an error naming the
            /// flag and listing the valid ones.
            pub fn from_config(config: &$crate::core::NodeConfig) -> Result<Bugs, String> {
                let mut bugs = Bugs::default();
                for name in $crate::bugs::requested(config) {
                    if $crate::bugs::is_runtime(name) {
                        continue;
                    }
                    let bug = Bug::ALL.iter().find(|b| b.name() == name).ok_or_else(|| {
                        let known: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
                        $crate::bugs::unknown($protocol, name, &known)
                    })?;
                    bugs = bugs.with(*bug);
                }
                Ok(bugs)
            }

            pub fn with(self, bug: Bug) -> Bugs {
                Bugs(self.0 | 1 << bug as u32)
            }

            /// Whether `bug` is on (a bit test: free when the set is empty).
            #[inline]
            pub fn has(self, bug: Bug) -> bool {
                self.0 & (1 << bug as u32) != 0
            }

            /// Every bug of the protocol, then the runtime's, for `--describe`.
            pub fn describe() -> Vec<$crate::bugs::BugDoc> {
                Bug::ALL
                    .iter()
                    .map(|b| $crate::bugs::BugDoc { name: b.name().into(), effect: b.effect().into() })
                    .chain($crate::bugs::RUNTIME.iter().map(|(n, e)| $crate::bugs::BugDoc { name: (*n).into(), effect: (*e).into() }))
                    .collect()
            }
        }
    };
}
