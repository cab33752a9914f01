//! Exit codes of the contract and the two ways a command can fail before it has a verdict.

/// Every checked guarantee held.
pub const VALID: i32 = 0;
/// A checked guarantee was violated.
pub const INVALID: i32 = 1;
/// A checker could not decide within its budget.
pub const UNKNOWN: i32 = 2;
/// Bad usage or bad input.
pub const USAGE: i32 = 254;
/// The harness itself failed.
pub const INTERNAL: i32 = 255;

/// Why a command stopped without a verdict.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage or bad input (exit 254); the message names the flag, or the file and line.
    Usage(String),
    /// The harness failed (exit 255).
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Internal(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Internal(e.into())
    }
}

/// Shorthand for a usage failure.
pub fn usage(msg: impl Into<String>) -> Failure {
    Failure::Usage(msg.into())
}

/// The exit code of a verdict.
pub fn of_validity(v: faultline_checkers::Validity) -> i32 {
    v.exit_code()
}

/// The worst of several exit codes, as `suite` reports it: 255 over 1 over 2 over 0.
pub fn worst(codes: impl IntoIterator<Item = i32>) -> i32 {
    codes.into_iter().fold(VALID, |acc, c| {
        let rank = |c: i32| match c {
            INTERNAL => 4,
            USAGE => 3,
            INVALID => 2,
            UNKNOWN => 1,
            _ => 0,
        };
        if rank(c) > rank(acc) { c } else { acc }
    })
}
