//! Maelstrom's error codes, and what each one tells a client about its operation.
//!
//! An error is *definite* when the operation certainly did not take effect: the client records
//! it as `fail`. Codes 0 (timeout) and 13 (crash) are *indefinite*: the operation may have taken
//! effect, or may still, so the client records `info`. A code this table does not know is
//! indefinite too: a client cannot claim that an error it does not understand means "nothing
//! happened".

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One of Maelstrom's error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum ErrorCode {
    Timeout = 0,
    NodeNotFound = 1,
    NotSupported = 10,
    TemporarilyUnavailable = 11,
    MalformedRequest = 12,
    Crash = 13,
    Abort = 14,
    KeyDoesNotExist = 20,
    KeyAlreadyExists = 21,
    PreconditionFailed = 22,
    TxnConflict = 30,
}

/// How a client records an operation that got an error: the history's completion types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The operation certainly did not take effect.
    Fail,
    /// The outcome is unknown: it may have taken effect, or may at any later time.
    Info,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::Timeout,
        ErrorCode::NodeNotFound,
        ErrorCode::NotSupported,
        ErrorCode::TemporarilyUnavailable,
        ErrorCode::MalformedRequest,
        ErrorCode::Crash,
        ErrorCode::Abort,
        ErrorCode::KeyDoesNotExist,
        ErrorCode::KeyAlreadyExists,
        ErrorCode::PreconditionFailed,
        ErrorCode::TxnConflict,
    ];

    /// The number on the wire.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The code with this number, if it is one of Maelstrom's.
    pub fn from_code(code: u64) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| u64::from(c.code()) == code)
    }

    /// Maelstrom's name for the code, as recorded in a history's `error` field.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorCode::Timeout => "timeout",
            ErrorCode::NodeNotFound => "node-not-found",
            ErrorCode::NotSupported => "not-supported",
            ErrorCode::TemporarilyUnavailable => "temporarily-unavailable",
            ErrorCode::MalformedRequest => "malformed-request",
            ErrorCode::Crash => "crash",
            ErrorCode::Abort => "abort",
            ErrorCode::KeyDoesNotExist => "key-does-not-exist",
            ErrorCode::KeyAlreadyExists => "key-already-exists",
            ErrorCode::PreconditionFailed => "precondition-failed",
            ErrorCode::TxnConflict => "txn-conflict",
        }
    }

    /// What the error says about the operation: only a timeout and a crash leave it unknown.
    pub const fn outcome(self) -> Outcome {
        match self {
            ErrorCode::Timeout | ErrorCode::Crash => Outcome::Info,
            _ => Outcome::Fail,
        }
    }

    /// Whether the operation certainly did not take effect.
    pub const fn is_definite(self) -> bool {
        matches!(self.outcome(), Outcome::Fail)
    }
}

/// What any code on the wire says about the operation; a code outside the table is `Info`.
pub fn outcome_of(code: u64) -> Outcome {
    ErrorCode::from_code(code).map_or(Outcome::Info, ErrorCode::outcome)
}

/// The name of any code on the wire; `unknown-error` outside the table.
pub fn name_of(code: u64) -> &'static str {
    ErrorCode::from_code(code).map_or("unknown-error", ErrorCode::name)
}

/// A code is its number on the wire and in durable records.
impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.code())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u64::deserialize(d)?;
        ErrorCode::from_code(n).ok_or_else(|| serde::de::Error::custom(format!("unknown error code {n}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract's table, written out: 0 and 13 indefinite, the rest definite.
    #[test]
    fn every_code_is_classified_as_the_contract_says() {
        let table = [
            (0, "timeout", Outcome::Info),
            (1, "node-not-found", Outcome::Fail),
            (10, "not-supported", Outcome::Fail),
            (11, "temporarily-unavailable", Outcome::Fail),
            (12, "malformed-request", Outcome::Fail),
            (13, "crash", Outcome::Info),
            (14, "abort", Outcome::Fail),
            (20, "key-does-not-exist", Outcome::Fail),
            (21, "key-already-exists", Outcome::Fail),
            (22, "precondition-failed", Outcome::Fail),
            (30, "txn-conflict", Outcome::Fail),
        ];
        assert_eq!(table.len(), ErrorCode::ALL.len());
        for (code, (number, name, outcome)) in ErrorCode::ALL.into_iter().zip(table) {
            assert_eq!((code.code(), code.name(), code.outcome()), (number, name, outcome), "{code:?}");
            assert_eq!(ErrorCode::from_code(u64::from(number)), Some(code));
            assert_eq!(outcome_of(u64::from(number)), outcome);
            assert_eq!(code.is_definite(), outcome == Outcome::Fail);
        }
    }

    #[test]
    fn unknown_codes_are_indefinite() {
        for n in [2, 15, 23, 31, 999, 1000, u64::MAX] {
            assert_eq!(ErrorCode::from_code(n), None);
            assert_eq!(outcome_of(n), Outcome::Info, "{n}");
            assert_eq!(name_of(n), "unknown-error");
        }
    }

    #[test]
    fn codes_serialize_as_their_numbers() {
        for code in ErrorCode::ALL {
            let text = serde_json::to_string(&code).unwrap();
            assert_eq!(text, code.code().to_string());
            assert_eq!(serde_json::from_str::<ErrorCode>(&text).unwrap(), code);
        }
        assert!(serde_json::from_str::<ErrorCode>("999").is_err());
    }
}
