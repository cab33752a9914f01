//! The usual event line, read by hand: one pass over the bytes (not checked as UTF-8 first: each
//! string is, when it is read), no intermediate structure, names borrowed from the line and
//! interned.
//!
//! It accepts only a plain subset of JSON, the one the harness and the generators write: an
//! object whose field names and strings have no escapes, whose numbers are integers that fit a
//! `u64` or an `i64` (serde_json reads anything else as a float), and whose values are `null`,
//! booleans, such integers, such strings and arrays of them. Anything else (an escape, a float,
//! an object as a value, a field of an unexpected type, a repeated field, a missing required
//! field, an unknown `type`) answers `None`, and the caller reads the line with serde_json as
//! before. Where it answers, it answers exactly what serde_json's reading gives (the tests
//! compare both on generated lines).

use serde_json::Value;

use super::{Interner, Key, Op, OpType, Parsed, Process};

/// How deep arrays may nest before the line is left to serde_json.
const MAX_DEPTH: usize = 32;

struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

/// An integer as serde_json reads it: non-negative ones as `u64`, negative ones as `i64`.
#[derive(Clone, Copy)]
enum Int {
    U(u64),
    I(i64),
}

impl<'a> Scan<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A string with no escape and no control character (the opening quote is next).
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let mut ascii = true;
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                c => {
                    ascii &= c < 0x80;
                    self.i += 1;
                }
            }
        }
        let bytes = &self.b[start..self.i];
        self.i += 1;
        // The line is bytes: a string that is not UTF-8 is left to the caller's check.
        if ascii {
            // SAFETY: every byte is below 0x80, and ASCII is UTF-8.
            Some(unsafe { std::str::from_utf8_unchecked(bytes) })
        } else {
            std::str::from_utf8(bytes).ok()
        }
    }

    /// `-? (0 | [1-9][0-9]*)` not followed by a fraction or an exponent, fitting as serde_json
    /// keeps integers (`-0` and numbers beyond the `u64`/`i64` range become floats there).
    fn integer(&mut self) -> Option<Int> {
        let negative = self.eat(b'-').is_some();
        let first = self.peek()?;
        let mut n: u64 = match first {
            b'0' => 0,
            b'1'..=b'9' => u64::from(first - b'0'),
            _ => return None,
        };
        self.i += 1;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            if first == b'0' {
                return None;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.i += 1;
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None;
        }
        if !negative {
            return Some(Int::U(n));
        }
        let neg = (n as i64).wrapping_neg();
        (neg < 0).then_some(Int::I(neg))
    }

    /// Whether `"name"` comes next (a name with no escape), stepping over it when it does.
    fn quoted(&mut self, name: &str) -> bool {
        let end = self.i + name.len() + 2;
        match self.b.get(self.i..end) {
            // Compared byte by byte: the names are a few bytes, shorter than a call to memcmp.
            Some([b'"', inner @ .., b'"']) if inner.iter().zip(name.bytes()).all(|(a, b)| *a == b) => {
                self.i = end;
                true
            }
            _ => false,
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word.as_bytes()).then(|| self.i = end)
    }

    fn value(&mut self, depth: usize) -> Option<Value> {
        Some(match self.peek()? {
            b'n' => self.literal("null").map(|_| Value::Null)?,
            b't' => self.literal("true").map(|_| Value::Bool(true))?,
            b'f' => self.literal("false").map(|_| Value::Bool(false))?,
            b'"' => Value::String(self.string()?.to_string()),
            b'[' if depth < MAX_DEPTH => {
                self.i += 1;
                self.ws();
                let mut items = Vec::new();
                if self.eat(b']').is_none() {
                    loop {
                        items.push(self.value(depth + 1)?);
                        self.ws();
                        if self.eat(b']').is_some() {
                            break;
                        }
                        self.eat(b',')?;
                        self.ws();
                    }
                }
                Value::Array(items)
            }
            _ => match self.integer()? {
                Int::U(u) => Value::from(u),
                Int::I(i) => Value::from(i),
            },
        })
    }

    fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal("null").is_some()
    }

    /// `null` (as `None`) or a string.
    fn opt_string(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(Some)
    }

    /// `null` (as `None`) or a non-negative integer.
    fn opt_u64(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        match self.integer()? {
            Int::U(u) => Some(Some(u)),
            Int::I(_) => None,
        }
    }

    /// `null` (as `None`) or a boolean.
    fn opt_bool(&mut self) -> Option<Option<bool>> {
        if self.null() {
            return Some(None);
        }
        if self.literal("true").is_some() {
            return Some(Some(true));
        }
        self.literal("false").map(|_| Some(false))
    }
}

/// The fields the reader knows, in the order the harness writes them.
const FIELDS: [&str; 11] = ["index", "time", "process", "type", "f", "key", "value", "node", "error", "final", "local"];
/// A field the reader does not know (its value is read and ignored).
const OTHER: usize = FIELDS.len();

/// Reads a line of the plain subset, or `None` (see the module docs).
pub(super) fn parse(line: &[u8], interner: &mut Interner) -> Option<Parsed> {
    let mut sc = Scan { b: line, i: 0 };
    let (mut process, mut op_type, mut f, mut key) = (None, None, None, None);
    let (mut index, mut time, mut node, mut error) = (None, None, None, None);
    let (mut final_read, mut local, mut value) = (None, None, None);
    // One bit per known field: a repeated field is left to serde_json.
    let mut seen = 0u16;
    // The field expected next, in the harness's order: it is recognised by comparing its
    // quoted name at once; any other name is scanned, then looked up.
    let mut expect = 0;
    sc.ws();
    sc.eat(b'{')?;
    sc.ws();
    if sc.eat(b'}').is_none() {
        loop {
            let field = match FIELDS.get(expect) {
                Some(name) if sc.quoted(name) => expect,
                _ => {
                    let name = sc.string()?;
                    FIELDS.iter().position(|f| *f == name).unwrap_or(OTHER)
                }
            };
            if field < OTHER {
                let bit = 1u16 << field;
                if seen & bit != 0 {
                    return None;
                }
                seen |= bit;
                expect = field + 1;
            }
            sc.ws();
            sc.eat(b':')?;
            sc.ws();
            match field {
                0 => index = sc.opt_u64()?,
                1 => time = sc.opt_u64()?,
                2 => {
                    process = Some(if sc.peek()? == b'"' {
                        (sc.string()? == "nemesis").then_some(Process::Nemesis)?
                    } else {
                        match sc.integer()? {
                            Int::U(p) => Process::Client(p),
                            Int::I(_) => return None,
                        }
                    });
                }
                3 => {
                    op_type = Some(match sc.opt_string()?? {
                        "invoke" => OpType::Invoke,
                        "ok" => OpType::Ok,
                        "fail" => OpType::Fail,
                        "info" => OpType::Info,
                        _ => return None,
                    });
                }
                4 => f = Some(interner.intern(sc.opt_string()??)),
                5 => {
                    key = match sc.peek()? {
                        b'"' => Some(Key::Str(sc.string()?.into())),
                        _ if sc.null() => None,
                        _ => Some(Key::Int(match sc.integer()? {
                            Int::U(u) => i64::try_from(u).ok()?,
                            Int::I(i) => i,
                        })),
                    };
                }
                6 => value = Some(sc.value(0)?),
                7 => node = sc.opt_string()?.map(|n| interner.intern(n)),
                8 => error = sc.opt_string()?.map(str::to_string),
                9 => final_read = sc.opt_bool()?,
                10 => local = sc.opt_bool()?,
                _ => {
                    sc.value(0)?;
                }
            }
            sc.ws();
            if sc.eat(b'}').is_some() {
                break;
            }
            sc.eat(b',')?;
            sc.ws();
        }
    }
    sc.ws();
    if sc.i != line.len() {
        return None;
    }
    let op = Op {
        index: 0,
        time: 0,
        process: process?,
        op_type: op_type?,
        f: f?,
        key,
        value: value.unwrap_or(Value::Null),
        node,
        error,
        final_read: final_read == Some(true),
        local: local == Some(true),
    };
    Some(Parsed { op, index, time })
}

#[cfg(test)]
mod tests {
    use super::super::LineParser;
    use super::*;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    /// Reads `line` both ways; `Ok(true)` when the hand reader took it and serde_json agrees.
    fn agrees(line: &str) -> Result<bool, String> {
        let mut interner = Interner::default();
        let Some(p) = parse(line.as_bytes(), &mut interner) else { return Ok(false) };
        let q = LineParser::default().parse_serde(line).map_err(|e| format!("{line}: the hand reader took it, serde_json says {e}"))?;
        if p.op != q.op || p.index != q.index || p.time != q.time {
            return Err(format!("{line}: {:?} {:?} {:?} vs {:?} {:?} {:?}", p.op, p.index, p.time, q.op, q.index, q.time));
        }
        Ok(true)
    }

    #[test]
    fn reads_the_usual_lines() {
        for line in [
            r#"{"index":0,"time":0,"process":8,"type":"invoke","f":"write","key":359,"value":2}"#,
            r#"{"index":1,"time":5,"process":4,"type":"ok","f":"cas","key":"k","value":[1,3],"node":"n1"}"#,
            r#"{"process":4,"type":"info","f":"read","value":null,"error":"timeout","final":true,"local":false}"#,
            r#" { "process" : 2 , "type" : "fail" , "f" : "add" , "value" : -9223372036854775808 , "extra" : [true, "x", []] } "#,
            r#"{"process":"nemesis","type":"info","f":"kill","value":["n1","n2"]}"#,
        ] {
            assert_eq!(agrees(line), Ok(true), "{line}");
        }
        for line in [
            r#"{"process":1,"type":"ok","f":"read","value":1.0}"#,
            r#"{"process":1,"type":"ok","f":"read","value":-0}"#,
            r#"{"process":1,"type":"ok","f":"read","value":"a\"b"}"#,
            r#"{"process":1,"type":"ok","f":"read","value":{"a":1}}"#,
            r#"{"process":1,"process":2,"type":"ok","f":"read"}"#,
            r#"{"process":1,"type":"ok","f":"read"} x"#,
            r#"{"process":1,"type":"okay","f":"read"}"#,
            r#"{"type":"ok","f":"read"}"#,
        ] {
            assert_eq!(agrees(line), Ok(false), "{line}");
        }
    }

    const FIELDS: &[(&str, &[&str])] = &[
        ("process", &["0", "7", "-1", "\"nemesis\"", "\"x\"", "null", "1.0", "18446744073709551615", "18446744073709551616", "01"]),
        ("type", &["\"invoke\"", "\"ok\"", "\"fail\"", "\"info\"", "\"okay\"", "null", "1"]),
        ("f", &["\"read\"", "\"write\"", "\"cas\"", "\"w\\u0061\"", "null", "3", "\"\""]),
        ("key", &["1", "-5", "\"k\"", "null", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "1.5", "[1]", "\"\""]),
        (
            "value",
            &[
                "null", "1", "-0", "0", "01", "-9223372036854775809", "-9223372036854775808", "[1,2]", "[ 1 , [2,\"a\"] ]", "\"s\"",
                "\"a\\\"b\"", "1e3", "2.5", "{\"a\":1}", "true", "false", "[]", "[1,]", "\"\t\"", "nul", "[[[[1]]]]", "18446744073709551616",
            ],
        ),
        ("index", &["0", "5", "-1", "null", "\"3\"", "1e2"]),
        ("time", &["0", "123456789", "-1", "null", "true"]),
        ("node", &["\"n1\"", "null", "1", "\"n\\n\""]),
        ("error", &["\"timeout\"", "null", "{}", "[\"x\"]"]),
        ("final", &["true", "false", "null", "1"]),
        ("local", &["true", "false", "null", "\"true\""]),
        ("extra", &["1", "{\"x\":[1]}", "\"y\"", "[null]", "-0.5"]),
    ];

    fn field() -> impl Strategy<Value = String> {
        (0..FIELDS.len(), any::<prop::sample::Index>(), prop::sample::select(vec!["", " ", "\t", "\r\n"]))
            .prop_map(|(f, v, ws)| format!("{ws}\"{}\"{ws}:{ws}{}{ws}", FIELDS[f].0, v.get(FIELDS[f].1)))
    }

    fn line() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(field(), 0..12),
            prop::sample::select(vec!["", " ", "x", "}", ","]),
            any::<bool>(),
        )
            .prop_map(|(fields, tail, required)| {
                let mut fields = fields;
                if required {
                    // Most lines should be events, or the hand reader is rarely exercised.
                    fields.extend(["\"process\":3".to_string(), "\"type\":\"ok\"".to_string(), "\"f\":\"read\"".to_string()]);
                }
                format!("{{{}}}{tail}", fields.join(","))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        /// Whatever the hand reader takes, serde_json reads the same (and takes it).
        #[test]
        fn hand_reader_agrees_with_serde_json(l in line()) {
            prop_assert!(agrees(&l).is_ok(), "{:?}", agrees(&l));
        }
    }

    /// The generated lines are not all left to serde_json (the property above is not vacuous).
    #[test]
    fn generated_lines_are_often_taken() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let taken = (0..2000).filter(|_| agrees(&line().new_tree(&mut runner).unwrap().current()) == Ok(true)).count();
        assert!(taken > 50, "only {taken} of 2000 taken");
    }
}
