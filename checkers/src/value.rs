//! Value equality: when two values of a history are the same value, and when a number is an
//! exact integer. Every checker compares values through this module, never through their text.
//!
//! Histories come from many writers: the harness's JSON, Jepsen's EDN (whose maps come back in
//! any key order), clients that print `1.0` for `1`. serde_json keeps an object's keys in
//! insertion order here (the workspace enables `preserve_order`), so the raw text of equal values
//! can differ. [`canonical`] is the one rule: object keys sorted (recursively), a float with no
//! fraction that an integer can hold becomes that integer (so `1`, `1.0` and `-0.0`/`0` are one
//! value each), integers stay exact (`u64` and `i64` are never rounded through a float), and
//! everything else is kept as it is. [`canonical_text`] is the identity used for interning.
//!
//! serde_json parses every integer literal beyond the `u64`/`i64` range, and every literal with
//! a fraction or an exponent, as a binary64 float: the digits beyond its precision are gone before
//! any checker sees them. Equality compares what was parsed. Arithmetic is stricter
//! ([`exact_int`]): a float counts as an integer only up to 2^53 in magnitude, where every
//! integer is exactly one float, so a sum never depends on digits that were lost.

use serde_json::{Map, Number, Value};
use std::borrow::Cow;

/// 2^53: every integer of at most this magnitude is exactly one binary64 float.
const EXACT_FLOAT_INT: f64 = 9_007_199_254_740_992.0;

/// The canonical form of a value: borrowed when it already is canonical (the common case of
/// integers, strings and sorted objects costs no copy).
pub fn canonical(v: &Value) -> Cow<'_, Value> {
    if is_canonical(v) {
        Cow::Borrowed(v)
    } else {
        Cow::Owned(rebuild(v))
    }
}

/// The canonical JSON text of a value: equal exactly when the values are the same value.
pub fn canonical_text(v: &Value) -> String {
    canonical(v).to_string()
}

/// Whether two values are the same value (see the module docs).
pub fn same(a: &Value, b: &Value) -> bool {
    canonical(a) == canonical(b)
}

/// The integer a float with no fraction stands for, when an `i64` or a `u64` can hold it.
fn integral_float(n: &Number) -> Option<Number> {
    if n.is_i64() || n.is_u64() {
        return None;
    }
    let f = n.as_f64()?;
    // 2^63 and 2^64 are exact floats, so these bounds are exact comparisons.
    if f.fract() != 0.0 || !(-9_223_372_036_854_775_808.0..18_446_744_073_709_551_616.0).contains(&f) {
        return None;
    }
    Some(if f < 0.0 { Number::from(f as i64) } else { Number::from(f as u64) })
}

fn is_canonical(v: &Value) -> bool {
    match v {
        Value::Number(n) => integral_float(n).is_none(),
        Value::Array(items) => items.iter().all(is_canonical),
        Value::Object(m) => {
            let sorted = m.keys().zip(m.keys().skip(1)).all(|(a, b)| a < b);
            sorted && m.values().all(is_canonical)
        }
        _ => true,
    }
}

fn rebuild(v: &Value) -> Value {
    match v {
        Value::Number(n) => Value::Number(integral_float(n).unwrap_or_else(|| n.clone())),
        Value::Array(items) => Value::Array(items.iter().map(rebuild).collect()),
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            // With `preserve_order`, insertion order is serialisation order.
            Value::Object(entries.into_iter().map(|(k, x)| (k.clone(), rebuild(x))).collect::<Map<_, _>>())
        }
        other => other.clone(),
    }
}

/// An exact integer as JSON: a number when it fits in an `i64` or a `u64`, else its decimal
/// string (JSON numbers beyond those would be read back as rounded floats).
pub fn big(x: i128) -> Value {
    i64::try_from(x)
        .map(Value::from)
        .or_else(|_| u64::try_from(x).map(Value::from))
        .unwrap_or_else(|_| Value::String(x.to_string()))
}

/// Why a value is not an exact integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotInt {
    /// Not a number at all (a string, a list, `null`, ...).
    NotANumber,
    /// A number with a fraction, such as `1.5`.
    Fraction,
    /// A float with no fraction beyond 2^53: it may stand for any of several integers.
    Inexact,
}

impl NotInt {
    /// Why, in words, for the reasons checkers give.
    pub fn describe(self) -> &'static str {
        match self {
            NotInt::NotANumber => "not a number",
            NotInt::Fraction => "not an integer",
            NotInt::Inexact => "a float beyond 2^53, so not an exact integer",
        }
    }
}

/// The exact integer a value stands for: any `i64` or `u64`, or a float with no fraction of at
/// most 2^53 in magnitude (EDN imports and clients that print `3.0`).
pub fn exact_int(v: &Value) -> Result<i128, NotInt> {
    let Value::Number(n) = v else { return Err(NotInt::NotANumber) };
    if let Some(i) = n.as_i64() {
        return Ok(i128::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Ok(i128::from(u));
    }
    let f = n.as_f64().ok_or(NotInt::NotANumber)?;
    if f.fract() != 0.0 {
        Err(NotInt::Fraction)
    } else if f.abs() <= EXACT_FLOAT_INT {
        Ok(f as i128)
    } else {
        Err(NotInt::Inexact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn object_key_order_does_not_matter() {
        let (a, b) = (parse(r#"{"a":1,"b":{"y":[1,{"q":1,"p":2}],"x":2}}"#), parse(r#"{"b":{"x":2,"y":[1,{"p":2,"q":1}]},"a":1}"#));
        // The raw texts differ (preserve_order), the values do not.
        assert_ne!(a.to_string(), b.to_string());
        assert_eq!(canonical_text(&a), canonical_text(&b));
        assert_eq!(canonical_text(&b), r#"{"a":1,"b":{"x":2,"y":[1,{"p":2,"q":1}]}}"#);
        assert!(!same(&a, &parse(r#"{"a":1,"b":{"x":3,"y":[1,{"p":2,"q":1}]}}"#)));
    }

    #[test]
    fn numbers_compare_numerically_and_big_integers_stay_exact() {
        assert!(same(&parse("1"), &parse("1.0")));
        assert!(same(&parse("-3"), &parse("-3.0")));
        assert!(same(&parse("0"), &parse("-0.0")));
        assert!(same(&parse("[1,{\"a\":2}]"), &parse("[1.0,{\"a\":2e0}]")));
        assert!(!same(&parse("1"), &parse("1.5")));
        assert!(!same(&parse("1"), &parse("\"1\"")));
        // 2^63 + 1 and 2^64 - 1 are integers, never rounded to the float next to them.
        assert!(!same(&parse("9223372036854775809"), &parse("9223372036854775808")));
        assert_eq!(canonical_text(&parse("18446744073709551615")), "18446744073709551615");
        assert_eq!(canonical_text(&parse("9223372036854775808.0")), "9223372036854775808");
        // Beyond u64 only a float can hold it: equal floats are equal values.
        assert!(same(&parse("1e30"), &parse("1000000000000000000000000000000")));
        assert!(matches!(canonical(&json!({"a": 1})), Cow::Borrowed(_)));
    }

    #[test]
    fn exact_integers() {
        assert_eq!(exact_int(&parse("18446744073709551615")), Ok(18_446_744_073_709_551_615));
        assert_eq!(exact_int(&parse("-9223372036854775808")), Ok(-9_223_372_036_854_775_808));
        assert_eq!(exact_int(&parse("4.0")), Ok(4));
        assert_eq!(exact_int(&parse("9007199254740992.0")), Ok(9_007_199_254_740_992));
        assert_eq!(exact_int(&parse("9007199254740994.0")), Err(NotInt::Inexact));
        assert_eq!(exact_int(&parse("1e30")), Err(NotInt::Inexact));
        assert_eq!(exact_int(&parse("2.5")), Err(NotInt::Fraction));
        assert_eq!(exact_int(&parse("\"2\"")), Err(NotInt::NotANumber));
    }
}
