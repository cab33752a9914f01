//! The history model every faultline crate shares.
//!
//! A history is the sequence of events the harness observed, one [`Op`] per line of a
//! `history.jsonl` file (see the contract, section 3). This module reads and writes that format
//! as a stream, so a file of a million operations is never held twice in memory, and pairs each
//! `invoke` with its completion into a [`Call`]: the closed interval during which the operation
//! may have taken effect. An `info` completion or an invoke that never completed is an interval
//! that never closes: the operation may take effect at any time after its invoke.
//!
//! Happened-before between operations is decided by the order of events in the file (the
//! `index`), never by comparing `time` stamps: two events may carry the same nanosecond, but they
//! never share a position.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;

mod plain;

/// Who issued an operation: a logical client process, or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

/// The kind of event: an invocation, or one of the three completions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    /// The operation certainly took effect, and `value` is its result.
    Ok,
    /// The operation certainly did not take effect.
    Fail,
    /// The outcome is unknown: the operation may take effect at any later time.
    Info,
}

impl OpType {
    pub fn as_str(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }
}

/// The object an operation works on. Models over many keys check each key independently.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    Int(i64),
    Str(Arc<str>),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Int(i) => write!(f, "{i}"),
            Key::Str(s) => f.write_str(s),
        }
    }
}

impl Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Key::Int(i) => s.serialize_i64(*i),
            Key::Str(k) => s.serialize_str(k),
        }
    }
}

impl Key {
    /// Converts a JSON value to a key; only strings and integers are keys.
    pub fn from_json(v: &Value) -> Option<Key> {
        match v {
            Value::String(s) => Some(Key::Str(Arc::from(s.as_str()))),
            Value::Number(n) => n.as_i64().map(Key::Int),
            _ => None,
        }
    }
}

/// One event of a history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Op {
    /// Position in the history, starting at 0. Defines happened-before.
    pub index: u64,
    /// Nanoseconds since the test began (monotonic). Filled from the previous event when absent.
    pub time: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub op_type: OpType,
    /// The operation name (`read`, `write`, `cas`, ...), interned: a history has few of them.
    pub f: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Key>,
    pub value: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// An extension of the contract's format: the harness marks the reads it makes of every
    /// node after healing with `"final": true`; convergence checkers look only at those.
    #[serde(rename = "final", skip_serializing_if = "is_false")]
    pub final_read: bool,
    /// An extension too: `"local": true` marks a *local read*, one replica's own applied state
    /// read after healing (docs/design.md). It is an observation of a replica, not an operation
    /// of the service: [`pair`] leaves it out, and only the agreement checker reads it.
    #[serde(skip_serializing_if = "is_false")]
    pub local: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Op {
    /// A client event with the given fields and no key, node or error; for builders and tests.
    pub fn new(process: u64, op_type: OpType, f: &str, value: Value) -> Op {
        Op {
            index: 0,
            time: 0,
            process: Process::Client(process),
            op_type,
            f: Arc::from(f),
            key: None,
            value,
            node: None,
            error: None,
            final_read: false,
            local: false,
        }
    }

    pub fn with_key(mut self, key: Key) -> Op {
        self.key = Some(key);
        self
    }

    pub fn is_nemesis(&self) -> bool {
        self.process == Process::Nemesis
    }
}

/// The reason every checker gives for a history with no client operation (empty, or only
/// nemesis events): nothing was observed, so nothing can be judged valid.
pub const NO_CLIENT_OPERATIONS: &str = "the history has no client operations";

/// A history held in memory, in event order, with `index` equal to the position.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub ops: Vec<Op>,
}

impl History {
    /// Builds a history from events, renumbering `index` by position and filling missing times.
    pub fn from_ops(mut ops: Vec<Op>) -> History {
        for (i, op) in ops.iter_mut().enumerate() {
            op.index = i as u64;
        }
        History { ops }
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Pairs invocations with completions; see [`pair`].
    pub fn calls(&self) -> Result<Vec<Call>, HistoryError> {
        pair(&self.ops)
    }
}

/// A malformed history, naming the file and line (1-based) where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct HistoryError {
    pub file: String,
    /// 1-based line number; 0 when the problem is not tied to a line (e.g. the file is missing).
    pub line: usize,
    pub message: String,
}

impl HistoryError {
    pub fn new(file: impl Into<String>, line: usize, message: impl Into<String>) -> Self {
        HistoryError { file: file.into(), line, message: message.into() }
    }
}

/// Interns the few distinct operation names and node names of a history, so a million events
/// share a handful of allocations.
#[derive(Default)]
pub struct Interner {
    /// The first few names, looked up by comparison (cheaper than hashing for a handful).
    few: Vec<Arc<str>>,
    map: HashMap<String, Arc<str>>,
}

/// How many names [`Interner`] keeps in its list before it uses a map.
const FEW_NAMES: usize = 16;

impl Interner {
    pub fn intern(&mut self, s: &str) -> Arc<str> {
        // Compared byte by byte: the names are short, shorter than a call to memcmp.
        let same = |a: &&Arc<str>| a.len() == s.len() && a.bytes().zip(s.bytes()).all(|(x, y)| x == y);
        if let Some(a) = self.few.iter().find(same) {
            return a.clone();
        }
        if let Some(a) = self.map.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        if self.few.len() < FEW_NAMES {
            self.few.push(a.clone());
        } else {
            self.map.insert(s.to_string(), a.clone());
        }
        a
    }
}

/// Reads `history.jsonl` one event at a time.
///
/// Blank lines are skipped. Every error names the file and the 1-based line.
pub struct JsonlReader<R: BufRead> {
    events: EventLines<R>,
    numbering: Numbering,
}

/// The lines of a byte stream, each handed out where it lies: a line that lies whole in the
/// reader's buffer is not copied (only one that spans two fills is gathered in `carry`).
struct Lines<R: BufRead> {
    input: R,
    carry: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    /// Calls `f` with the next line (its `\n` included, when it has one) and whether it ended
    /// with `\n`; `None` at the end of the input.
    fn with_next<T>(&mut self, f: impl FnOnce(&[u8], bool) -> T) -> Option<std::io::Result<T>> {
        loop {
            let buf = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Some(Err(e)),
            };
            if buf.is_empty() {
                if self.carry.is_empty() {
                    return None;
                }
                let r = f(&self.carry, false);
                self.carry.clear();
                return Some(Ok(r));
            }
            match memchr::memchr(b'\n', buf) {
                Some(end) if self.carry.is_empty() => {
                    let r = f(&buf[..=end], true);
                    self.input.consume(end + 1);
                    return Some(Ok(r));
                }
                Some(end) => {
                    self.carry.extend_from_slice(&buf[..=end]);
                    self.input.consume(end + 1);
                    let r = f(&self.carry, true);
                    self.carry.clear();
                    return Some(Ok(r));
                }
                None => {
                    let n = buf.len();
                    self.carry.extend_from_slice(buf);
                    self.input.consume(n);
                }
            }
        }
    }
}

/// The events of a JSONL stream as each line alone tells them (not yet numbered): a
/// [`Parsed`] with its 1-based line, or the error naming the line. Parsing needs nothing of
/// the lines before, so this can run on its own thread ([`stream_jsonl_calls_within`]).
pub(crate) struct EventLines<R: BufRead> {
    lines: Lines<R>,
    file: String,
    line_no: usize,
    parser: LineParser,
    tail: Tail,
    /// Set when [`Tail::DropUnfinished`] dropped the last line.
    dropped_tail: bool,
}

/// What one line gave.
enum LineStep {
    Blank,
    Dropped,
    Event(Result<Parsed, String>),
}

impl<R: BufRead> EventLines<R> {
    fn new(input: R, file: String) -> Self {
        EventLines {
            lines: Lines { input, carry: Vec::new() },
            file,
            line_no: 0,
            parser: LineParser::default(),
            tail: Tail::Strict,
            dropped_tail: false,
        }
    }

    fn err(&self, message: impl Into<String>) -> HistoryError {
        HistoryError::new(&self.file, self.line_no, message)
    }
}

impl<R: BufRead> Iterator for EventLines<R> {
    type Item = Result<(usize, Parsed), HistoryError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (parser, tail) = (&mut self.parser, self.tail);
            let step = self.lines.with_next(|bytes, newline| {
                // The usual line is read by hand, straight from the bytes ([`plain`]); what it
                // leaves (anything unusual, blank, not UTF-8, an unfinished tail) is read here.
                if let Some(p) = plain::parse(bytes, &mut parser.interner) {
                    return LineStep::Event(Ok(p));
                }
                let Ok(text) = std::str::from_utf8(bytes) else {
                    return LineStep::Event(Err(String::from("read error: stream did not contain valid UTF-8")));
                };
                if tail == Tail::DropUnfinished && !newline && serde_json::from_str::<Value>(text).is_err() {
                    return LineStep::Dropped;
                }
                let trimmed = text.trim();
                if trimmed.is_empty() {
                    return LineStep::Blank;
                }
                LineStep::Event(parser.parse_serde(trimmed))
            });
            self.line_no += 1;
            match step? {
                Err(e) => return Some(Err(self.err(format!("read error: {e}")))),
                Ok(LineStep::Blank) => continue,
                Ok(LineStep::Dropped) => {
                    self.dropped_tail = true;
                    return None;
                }
                Ok(LineStep::Event(Ok(p))) => return Some(Ok((self.line_no, p))),
                Ok(LineStep::Event(Err(m))) => return Some(Err(self.err(m))),
            }
        }
    }
}

/// What a reader does with a last line that has no newline and is not JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// It is bad input, like any other malformed line (a history file someone wrote).
    Strict,
    /// It is dropped: a harness that crashed while writing `history.jsonl` leaves half a line,
    /// and the contract promises a checkable prefix. A last line that is JSON but not a valid
    /// event is still bad input.
    DropUnfinished,
}

impl JsonlReader<BufReader<std::fs::File>> {
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path)
            .map_err(|e| HistoryError::new(&name, 0, format!("cannot open: {e}")))?;
        Ok(JsonlReader::new(BufReader::with_capacity(1 << 16, file), name))
    }
}

/// The fields of an event line the reader uses. `Some(Value::Null)` is a field present as
/// `null`, `None` a missing one, as with a map.
#[derive(Deserialize, Default)]
struct Fields {
    #[serde(default, deserialize_with = "present")]
    process: Option<Value>,
    #[serde(rename = "type", default, deserialize_with = "present")]
    op_type: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    f: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    key: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    index: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    time: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    node: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Value>,
    #[serde(rename = "final", default, deserialize_with = "present")]
    final_read: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    local: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl Fields {
    fn from_map(mut m: serde_json::Map<String, Value>) -> Fields {
        Fields {
            process: m.remove("process"),
            op_type: m.remove("type"),
            f: m.remove("f"),
            key: m.remove("key"),
            index: m.remove("index"),
            time: m.remove("time"),
            node: m.remove("node"),
            error: m.remove("error"),
            final_read: m.remove("final"),
            local: m.remove("local"),
            value: m.remove("value"),
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        match name {
            "process" => self.process.as_ref(),
            "type" => self.op_type.as_ref(),
            "f" => self.f.as_ref(),
            "key" => self.key.as_ref(),
            "index" => self.index.as_ref(),
            "time" => self.time.as_ref(),
            "node" => self.node.as_ref(),
            "error" => self.error.as_ref(),
            "final" => self.final_read.as_ref(),
            "local" => self.local.as_ref(),
            _ => None,
        }
    }
}


/// The fields of an event line read straight into their types, for [`JsonlReader`]'s typed
/// path. A field of any other type fails the whole line, which then takes the general path.
#[derive(Deserialize)]
struct Typed<'a> {
    #[serde(default)]
    process: Option<TypedProcess>,
    #[serde(rename = "type", borrow, default)]
    op_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    f: Option<Cow<'a, str>>,
    #[serde(default)]
    key: Option<TypedKey>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    time: Option<u64>,
    #[serde(borrow, default)]
    node: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<String>,
    #[serde(rename = "final", default)]
    final_read: Option<bool>,
    #[serde(default)]
    local: Option<bool>,
    #[serde(default)]
    value: Option<Value>,
}

/// `process`: a non-negative integer or `"nemesis"`.
struct TypedProcess(Process);

impl<'de> Deserialize<'de> for TypedProcess {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = TypedProcess;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a non-negative integer or \"nemesis\"")
            }
            fn visit_u64<E: serde::de::Error>(self, p: u64) -> Result<TypedProcess, E> {
                Ok(TypedProcess(Process::Client(p)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<TypedProcess, E> {
                match s {
                    "nemesis" => Ok(TypedProcess(Process::Nemesis)),
                    _ => Err(E::custom("not a process")),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// `key`: a string or an integer that fits an `i64`, as [`Key::from_json`] takes it.
struct TypedKey(Key);

impl<'de> Deserialize<'de> for TypedKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = TypedKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_u64<E: serde::de::Error>(self, k: u64) -> Result<TypedKey, E> {
                i64::try_from(k).map(|k| TypedKey(Key::Int(k))).map_err(|_| E::custom("key beyond i64"))
            }
            fn visit_i64<E: serde::de::Error>(self, k: i64) -> Result<TypedKey, E> {
                Ok(TypedKey(Key::Int(k)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<TypedKey, E> {
                Ok(TypedKey(Key::Str(Arc::from(s))))
            }
        }
        d.deserialize_any(V)
    }
}

impl<R: BufRead> JsonlReader<R> {
    pub fn new(input: R, file: impl Into<String>) -> Self {
        JsonlReader { events: EventLines::new(input, file.into()), numbering: Numbering::default() }
    }

    /// Sets what to do with an unfinished last line (default [`Tail::Strict`]).
    pub fn with_tail(mut self, tail: Tail) -> Self {
        self.events.tail = tail;
        self
    }

    /// Whether an unfinished last line was dropped ([`Tail::DropUnfinished`]).
    pub fn dropped_tail(&self) -> bool {
        self.events.dropped_tail
    }
}

/// An event as its line alone tells it: `index` and `time` as written (`None` when absent),
/// numbered later, in order, by [`Numbering`]. Parsing a line needs nothing of the lines before
/// it, so lines can be parsed on several threads ([`crate::stream`]).
pub(crate) struct Parsed {
    op: Op,
    index: Option<u64>,
    time: Option<u64>,
}

/// Numbers parsed events in file order: a missing `index` is the position, a missing `time`
/// the previous event's; an explicit `index` must be the position.
#[derive(Default)]
pub(crate) struct Numbering {
    next_index: u64,
    last_time: u64,
}

impl Numbering {
    pub(crate) fn number(&mut self, p: Parsed) -> Result<Op, String> {
        let index = p.index.unwrap_or(self.next_index);
        // The position in the file is what orders events; an explicit `index` is accepted but
        // must agree, since a history whose indices disagree with its lines is ambiguous.
        if index != self.next_index {
            return Err(format!("`index` {index} does not match the position {} of this event", self.next_index));
        }
        let time = p.time.unwrap_or(self.last_time);
        self.last_time = time;
        self.next_index += 1;
        Ok(Op { index, time, ..p.op })
    }
}

/// Parses one line into an event; the error is the message (the caller adds file and line).
#[derive(Default)]
pub(crate) struct LineParser {
    interner: Interner,
}

impl LineParser {
    /// Reads a line with serde_json.
    fn parse_serde(&mut self, line: &str) -> Result<Parsed, String> {
        // The usual line takes the typed path: every field read straight into its type, names
        // borrowed from the line, nothing else built. Anything unusual (a field of another
        // type, one missing or repeated, invalid JSON, not an object) takes the general path,
        // whose answers (the last of repeated fields wins, the error messages) stay as they were.
        let typed = serde_json::from_str::<Typed>(line).ok().and_then(|t| self.from_typed(t));
        match typed {
            Some(p) => Ok(p),
            None => self.parse_general(line),
        }
    }

    /// An event from the typed fields; `None` when a required field is missing or a value is
    /// not one the contract allows (the general path then says which).
    fn from_typed(&mut self, t: Typed) -> Option<Parsed> {
        let op_type = match &*t.op_type? {
            "invoke" => OpType::Invoke,
            "ok" => OpType::Ok,
            "fail" => OpType::Fail,
            "info" => OpType::Info,
            _ => return None,
        };
        let op = Op {
            index: 0,
            time: 0,
            process: t.process?.0,
            op_type,
            f: self.interner.intern(&t.f?),
            key: t.key.map(|k| k.0),
            value: t.value.unwrap_or(Value::Null),
            node: t.node.map(|n| self.interner.intern(&n)),
            error: t.error,
            final_read: t.final_read == Some(true),
            local: t.local == Some(true),
        };
        Some(Parsed { op, index: t.index, time: t.time })
    }

    fn parse_general(&mut self, line: &str) -> Result<Parsed, String> {
        let m = match serde_json::from_str::<Fields>(line) {
            Ok(f) => f,
            Err(_) => {
                let v: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
                let Value::Object(m) = v else {
                    return Err(String::from("expected a JSON object"));
                };
                Fields::from_map(m)
            }
        };
        let process = match m.get("process") {
            Some(Value::Number(n)) => match n.as_u64() {
                Some(p) => Process::Client(p),
                None => return Err(format!("`process` must be a non-negative integer or \"nemesis\", got {n}")),
            },
            Some(Value::String(s)) if s == "nemesis" => Process::Nemesis,
            Some(other) => return Err(format!("`process` must be a non-negative integer or \"nemesis\", got {other}")),
            None => return Err(String::from("missing field `process`")),
        };
        let op_type = match m.get("type") {
            Some(Value::String(s)) => match s.as_str() {
                "invoke" => OpType::Invoke,
                "ok" => OpType::Ok,
                "fail" => OpType::Fail,
                "info" => OpType::Info,
                other => return Err(format!("`type` must be invoke, ok, fail or info, got {other:?}")),
            },
            Some(other) => return Err(format!("`type` must be a string, got {other}")),
            None => return Err(String::from("missing field `type`")),
        };
        let f = match m.get("f") {
            Some(Value::String(s)) => self.interner.intern(s),
            Some(other) => return Err(format!("`f` must be a string, got {other}")),
            None => return Err(String::from("missing field `f`")),
        };
        let key = match m.get("key") {
            None | Some(Value::Null) => None,
            Some(k) => Some(Key::from_json(k).ok_or_else(|| format!("`key` must be a string or an integer, got {k}"))?),
        };
        let index = match m.get("index") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| String::from("`index` must be a non-negative integer"))?),
            Some(_) => return Err(String::from("`index` must be a non-negative integer")),
        };
        let time = match m.get("time") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(n.as_u64().ok_or_else(|| String::from("`time` must be a non-negative integer"))?),
            Some(_) => return Err(String::from("`time` must be a non-negative integer")),
        };
        let node = match m.get("node") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(self.interner.intern(s)),
            Some(other) => Some(self.interner.intern(&other.to_string())),
        };
        let error = match m.get("error") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        let final_read = matches!(m.get("final"), Some(Value::Bool(true)));
        let local = matches!(m.get("local"), Some(Value::Bool(true)));
        let value = m.value.unwrap_or(Value::Null);
        Ok(Parsed { op: Op { index: 0, time: 0, process, op_type, f, key, value, node, error, final_read, local }, index, time })
    }
}

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = Result<Op, HistoryError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(match self.events.next()? {
            Ok((line, p)) => self.numbering.number(p).map_err(|m| HistoryError::new(&self.events.file, line, m)),
            Err(e) => Err(e),
        })
    }
}

/// Reads a whole JSONL history from a file.
pub fn read_jsonl(path: &Path) -> Result<History, HistoryError> {
    let mut ops = Vec::new();
    for op in JsonlReader::open(path)? {
        ops.push(op?);
    }
    Ok(History { ops })
}

/// Reads a whole JSONL history from a string (tests, stdin); `name` is used in errors.
pub fn parse_jsonl(text: &str, name: &str) -> Result<History, HistoryError> {
    let mut ops = Vec::new();
    for op in JsonlReader::new(text.as_bytes(), name) {
        ops.push(op?);
    }
    Ok(History { ops })
}

/// Writes events as JSON lines. The harness flushes after every event so that a crash leaves a
/// checkable prefix; bulk writers may flush only at the end.
pub struct JsonlWriter<W: Write> {
    out: W,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(out: W) -> Self {
        JsonlWriter { out }
    }

    pub fn write(&mut self, op: &Op) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, op)?;
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes a whole history as JSON lines.
pub fn write_jsonl(path: &Path, history: &History) -> std::io::Result<()> {
    let f = std::fs::File::create(path)?;
    let mut w = JsonlWriter::new(std::io::BufWriter::new(f));
    for op in &history.ops {
        w.write(op)?;
    }
    w.flush()
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// It took effect; the completion's value (for a read, the value read).
    Ok(Value),
    /// It certainly did not take effect.
    Fail,
    /// Unknown: an `info` completion, or no completion at all. It may take effect at any time
    /// after its invoke, or never.
    Unknown,
}

/// An invocation paired with its completion: the interval during which it may take effect.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub process: u64,
    pub f: Arc<str>,
    pub key: Option<Key>,
    /// The argument: the invoke's value.
    pub input: Value,
    pub outcome: Outcome,
    /// Index of the invoke event.
    pub invoke_index: u64,
    /// Index of the completion event; `None` when unknown (the interval never closes).
    pub complete_index: Option<u64>,
    pub invoke_time: u64,
    /// Time of the completion event, when there was one (also for `info` completions).
    pub complete_time: Option<u64>,
    pub node: Option<Arc<str>>,
    pub final_read: bool,
}

impl Call {
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, Outcome::Ok(_))
    }

    /// The result of an `ok` call.
    pub fn output(&self) -> Option<&Value> {
        match &self.outcome {
            Outcome::Ok(v) => Some(v),
            _ => None,
        }
    }
}

/// Pairs every client invoke with the next completion of the same process.
///
/// Nemesis events and local reads (`Op::local`) are skipped. Calls come out in invoke order. A
/// process that invokes twice without completing, or a completion with no open invoke, is a
/// malformed history: the error names the event's line (`index + 1`, as the reader numbers
/// non-blank lines).
pub fn pair(ops: &[Op]) -> Result<Vec<Call>, HistoryError> {
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut calls: Vec<Call> = Vec::new();
    for op in ops {
        let Process::Client(p) = op.process else { continue };
        if op.local {
            continue;
        }
        let line = op.index as usize + 1;
        match op.op_type {
            OpType::Invoke => {
                if let Some(prev) = open.get(&p) {
                    let prev_line = calls[*prev].invoke_index + 1;
                    return Err(HistoryError::new(
                        "history",
                        line,
                        format!("process {p} invokes again while its invoke at event {prev_line} is still open"),
                    ));
                }
                open.insert(p, calls.len());
                calls.push(Call {
                    process: p,
                    f: op.f.clone(),
                    key: op.key.clone(),
                    input: op.value.clone(),
                    outcome: Outcome::Unknown,
                    invoke_index: op.index,
                    complete_index: None,
                    invoke_time: op.time,
                    complete_time: None,
                    node: op.node.clone(),
                    final_read: op.final_read,
                });
            }
            completion => {
                let Some(i) = open.remove(&p) else {
                    return Err(HistoryError::new("history", line, format!("process {p} completes `{}` with no open invoke", op.f)));
                };
                let call = &mut calls[i];
                if call.f != op.f {
                    return Err(HistoryError::new(
                        "history",
                        line,
                        format!("process {p} completes `{}` but invoked `{}`", op.f, call.f),
                    ));
                }
                call.complete_time = Some(op.time);
                if op.node.is_some() {
                    call.node = op.node.clone();
                }
                call.final_read |= op.final_read;
                match completion {
                    OpType::Ok => {
                        call.outcome = Outcome::Ok(op.value.clone());
                        call.complete_index = Some(op.index);
                    }
                    OpType::Fail => {
                        call.outcome = Outcome::Fail;
                        call.complete_index = Some(op.index);
                    }
                    _ => call.outcome = Outcome::Unknown,
                }
            }
        }
    }
    Ok(calls)
}

/// [`pair`] one event at a time, taking each event by value (its value moves into the call,
/// nothing is cloned), so a history can be paired while it is read and never held whole
/// ([`read_jsonl_calls`]). Gives exactly the calls and errors [`pair`] gives.
#[derive(Default)]
pub struct Pairer {
    open: Open,
    calls: Vec<Call>,
    /// Bytes the kept calls hold ([`call_bytes`]).
    held: u64,
    /// Bytes every call paired so far would hold, also those [`Pairer::forget_closed`] dropped.
    needed: u64,
}

/// The open invoke of each process (the index of its call): in a table for the small process
/// numbers histories use, in a map beyond.
#[derive(Default)]
struct Open {
    table: Vec<usize>,
    map: HashMap<u64, usize, std::hash::BuildHasherDefault<crate::linear::Fx>>,
}

/// Process numbers below this one are kept in [`Open`]'s table.
const TABLE_PROCESSES: u64 = 1 << 16;
/// A slot of [`Open`]'s table with no open invoke.
const NONE_OPEN: usize = usize::MAX;

impl Open {
    fn get(&self, p: u64) -> Option<usize> {
        if p < TABLE_PROCESSES {
            self.table.get(p as usize).copied().filter(|&i| i != NONE_OPEN)
        } else {
            self.map.get(&p).copied()
        }
    }

    fn insert(&mut self, p: u64, call: usize) {
        if p < TABLE_PROCESSES {
            let p = p as usize;
            if p >= self.table.len() {
                self.table.resize(p + 1, NONE_OPEN);
            }
            self.table[p] = call;
        } else {
            self.map.insert(p, call);
        }
    }

    fn remove(&mut self, p: u64) -> Option<usize> {
        if p < TABLE_PROCESSES {
            let slot = self.table.get_mut(p as usize)?;
            Some(std::mem::replace(slot, NONE_OPEN)).filter(|&i| i != NONE_OPEN)
        } else {
            self.map.remove(&p)
        }
    }

    fn len(&self) -> usize {
        self.table.iter().filter(|&&i| i != NONE_OPEN).count() + self.map.len()
    }

    /// Every open call's index.
    fn calls_mut(&mut self) -> impl Iterator<Item = &mut usize> {
        self.table.iter_mut().filter(|i| **i != NONE_OPEN).chain(self.map.values_mut())
    }
}

/// Heap bytes of a value, approximately: each allocation's size rounded as the allocator does
/// (8 bytes of header, a multiple of 16, at least 32), for arrays their slots and what the items
/// hold, for strings their bytes, for objects a slot per entry plus keys and values.
pub fn value_heap_bytes(v: &Value) -> u64 {
    fn chunk(n: usize) -> u64 {
        if n == 0 {
            0
        } else {
            ((n as u64 + 8).div_ceil(16) * 16).max(32)
        }
    }
    match v {
        Value::String(s) => chunk(s.capacity()),
        Value::Array(items) => chunk(items.capacity() * std::mem::size_of::<Value>()) + items.iter().map(value_heap_bytes).sum::<u64>(),
        Value::Object(m) => {
            // An entry (key, value, hash) and an index slot each, plus the key's text.
            let per = std::mem::size_of::<(String, Value, u64)>() + 16;
            chunk(m.len() * per) + m.iter().map(|(k, x)| chunk(k.capacity()) + value_heap_bytes(x)).sum::<u64>()
        }
        _ => 0,
    }
}

/// Bytes a call holds while paired calls are kept: the call itself, its index in its key's
/// group (the checker groups calls by key), and what its key, argument and result hold on the
/// heap ([`value_heap_bytes`]). What the memory budget counts for a history.
pub fn call_bytes(c: &Call) -> u64 {
    let key = match &c.key {
        Some(Key::Str(k)) => (k.len() as u64 + 16 + 8).div_ceil(16) * 16,
        _ => 0,
    };
    let fixed = std::mem::size_of::<Call>() + std::mem::size_of::<usize>();
    fixed as u64 + key + value_heap_bytes(&c.input) + c.output().map_or(0, value_heap_bytes)
}

impl Pairer {
    pub fn new() -> Pairer {
        Pairer::default()
    }

    /// Adds the next event (in history order, `index` already set).
    pub fn push(&mut self, op: Op) -> Result<(), HistoryError> {
        let Process::Client(p) = op.process else { return Ok(()) };
        if op.local {
            return Ok(());
        }
        let line = op.index as usize + 1;
        if op.op_type == OpType::Invoke {
            if let Some(prev) = self.open.get(p) {
                let prev_line = self.calls[prev].invoke_index + 1;
                return Err(HistoryError::new(
                    "history",
                    line,
                    format!("process {p} invokes again while its invoke at event {prev_line} is still open"),
                ));
            }
            self.open.insert(p, self.calls.len());
            let call = Call {
                process: p,
                f: op.f,
                key: op.key,
                input: op.value,
                outcome: Outcome::Unknown,
                invoke_index: op.index,
                complete_index: None,
                invoke_time: op.time,
                complete_time: None,
                node: op.node,
                final_read: op.final_read,
            };
            self.count(call_bytes(&call));
            self.calls.push(call);
            return Ok(());
        }
        let Some(i) = self.open.remove(p) else {
            return Err(HistoryError::new("history", line, format!("process {p} completes `{}` with no open invoke", op.f)));
        };
        let call = &mut self.calls[i];
        if call.f != op.f {
            return Err(HistoryError::new("history", line, format!("process {p} completes `{}` but invoked `{}`", op.f, call.f)));
        }
        call.complete_time = Some(op.time);
        if op.node.is_some() {
            call.node = op.node;
        }
        call.final_read |= op.final_read;
        match op.op_type {
            OpType::Ok => {
                let bytes = value_heap_bytes(&op.value);
                call.outcome = Outcome::Ok(op.value);
                call.complete_index = Some(op.index);
                self.count(bytes);
            }
            OpType::Fail => {
                call.outcome = Outcome::Fail;
                call.complete_index = Some(op.index);
            }
            _ => call.outcome = Outcome::Unknown,
        }
        Ok(())
    }

    fn count(&mut self, bytes: u64) {
        self.held += bytes;
        self.needed += bytes;
    }

    /// Bytes the calls kept now hold ([`call_bytes`]).
    pub fn held_bytes(&self) -> u64 {
        self.held
    }

    /// Bytes all calls paired so far would hold if every one were kept.
    pub fn needed_bytes(&self) -> u64 {
        self.needed
    }

    /// Drops every completed call, keeping only the open ones: pairing goes on (so a malformed
    /// history is still found) while the calls are not kept, for a history over its memory
    /// budget. [`Pairer::finish`] then returns the open calls only.
    pub fn forget_closed(&mut self) {
        let mut moved_to = vec![None; self.calls.len()];
        for i in self.open.calls_mut() {
            moved_to[*i] = Some(0);
        }
        let mut kept = Vec::with_capacity(self.open.len());
        for (call, to) in std::mem::take(&mut self.calls).into_iter().zip(&mut moved_to) {
            if to.is_some() {
                *to = Some(kept.len());
                kept.push(call);
            }
        }
        for i in self.open.calls_mut() {
            *i = moved_to[*i].unwrap_or(*i);
        }
        self.calls = kept;
        self.held = self.calls.iter().map(call_bytes).sum();
    }

    /// The calls, in invoke order.
    pub fn finish(mut self) -> Vec<Call> {
        self.calls.shrink_to_fit();
        self.calls
    }
}

/// Reads a JSONL history and pairs it while reading, without keeping the events: the calls
/// (what [`read_jsonl`] then [`History::calls`] give) and the number of events read. The peak
/// memory is that of the calls alone, not of the calls plus the whole history.
pub fn read_jsonl_calls(path: &Path) -> Result<(Vec<Call>, usize), HistoryError> {
    let s = stream_jsonl_calls(path, Tail::Strict, |_| {})?;
    Ok((s.calls, s.events))
}

/// What [`stream_jsonl_calls`] read.
#[derive(Debug)]
pub struct CallStream {
    /// The calls, in invoke order; empty when they did not fit the budget (`over_budget`).
    pub calls: Vec<Call>,
    /// Events read (every line that is not blank).
    pub events: usize,
    /// Whether an unfinished last line was dropped ([`Tail::DropUnfinished`]).
    pub dropped_tail: bool,
    /// Bytes the calls of the whole history hold, kept or not ([`call_bytes`]).
    pub bytes: u64,
    /// Whether the calls needed more than the budget of [`stream_jsonl_calls_within`]: they
    /// were then not kept (the history was still read to its end and paired, so a malformed
    /// history is still an error, and `bytes` is what the whole history needs).
    pub over_budget: bool,
}

/// [`read_jsonl_calls`] with a choice of what to do with an unfinished last line, showing each
/// event to `observe` before pairing takes it (to count events or guess the model without
/// holding the history). Errors name the file and the line.
pub fn stream_jsonl_calls(path: &Path, tail: Tail, observe: impl FnMut(&Op)) -> Result<CallStream, HistoryError> {
    stream_jsonl_calls_within(path, tail, u64::MAX, observe)
}

/// How many events pass between two [`Pairer::forget_closed`] once over the budget.
const FORGET_EVERY: usize = 4096;

/// [`stream_jsonl_calls`] keeping at most `budget` bytes of calls ([`call_bytes`]): past it the
/// calls are dropped as they complete and the stream is `over_budget`, with the bytes the
/// whole history needs.
pub fn stream_jsonl_calls_within(path: &Path, tail: Tail, budget: u64, mut observe: impl FnMut(&Op)) -> Result<CallStream, HistoryError> {
    let name = path.display().to_string();
    let mut reader = JsonlReader::open(path)?.with_tail(tail);
    let mut pairer = Pairer::new();
    let mut count = 0;
    let mut over_budget = false;
    // One thread reads, parses and numbers the events, in batches; this one observes and pairs
    // them in file order. At most `IN_FLIGHT` batches wait between the two.
    let (batches, events) = std::sync::mpsc::sync_channel::<Vec<Result<Op, HistoryError>>>(IN_FLIGHT);
    std::thread::scope(|s| {
        let reading = s.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            while let Some(item) = reader.next() {
                let stop = item.is_err();
                batch.push(item);
                if (stop || batch.len() == BATCH) && batches.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).is_err() {
                    break;
                }
                if stop {
                    break;
                }
            }
            if !batch.is_empty() {
                let _ = batches.send(batch);
            }
            reader.dropped_tail()
        });
        // `events` is dropped on an early return, so the reading thread stops at its next send.
        for batch in events {
            for op in batch {
                let op = op?;
                observe(&op);
                pairer.push(op).map_err(|mut e| {
                    e.file = name.clone();
                    e
                })?;
                count += 1;
                if pairer.held_bytes() > budget && (!over_budget || count % FORGET_EVERY == 0) {
                    over_budget = true;
                    pairer.forget_closed();
                }
            }
        }
        let dropped_tail = reading.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let bytes = pairer.needed_bytes();
        let calls = if over_budget { Vec::new() } else { pairer.finish() };
        Ok(CallStream { calls, events: count, dropped_tail, bytes, over_budget })
    })
}

/// Events per batch handed from the reading thread to the pairing one.
const BATCH: usize = 1024;
/// Batches that may wait between the two threads.
const IN_FLIGHT: usize = 4;

/// Like [`pair`], but names `file` in the error.
pub fn pair_in(ops: &[Op], file: &str) -> Result<Vec<Call>, HistoryError> {
    pair(ops).map_err(|mut e| {
        e.file = file.to_string();
        e
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_pairs() {
        let text = r#"{"process":0,"type":"invoke","f":"write","key":"a","value":1}
{"process":1,"type":"invoke","f":"read","key":"a","value":null}

{"process":"nemesis","type":"info","f":"kill","value":["n1"]}
{"process":0,"type":"ok","f":"write","key":"a","value":1}
{"process":1,"type":"info","f":"read","key":"a","value":null}
{"process":2,"type":"invoke","f":"write","key":"a","value":2}
{"process":2,"type":"fail","f":"write","key":"a","value":2}
"#;
        let h = parse_jsonl(text, "t.jsonl").unwrap();
        assert_eq!(h.len(), 7);
        assert_eq!(h.ops[2].process, Process::Nemesis);
        let calls = h.calls().unwrap();
        assert_eq!(calls.len(), 3);
        assert_eq!(calls[0].outcome, Outcome::Ok(json!(1)));
        assert_eq!(calls[0].complete_index, Some(3));
        assert_eq!(calls[1].outcome, Outcome::Unknown);
        assert_eq!(calls[1].complete_index, None);
        assert_eq!(calls[2].outcome, Outcome::Fail);
    }

    #[test]
    fn errors_name_file_and_line() {
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n\n{\"process\":0,\"type\":\"okay\",\"f\":\"read\"}\n";
        let e = parse_jsonl(text, "h.jsonl").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.to_string().starts_with("h.jsonl:3: "), "{e}");
        let e = parse_jsonl("not json\n", "x").unwrap_err();
        assert_eq!((e.line, e.file.as_str()), (1, "x"));
    }

    #[test]
    fn double_invoke_is_malformed() {
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n";
        let h = parse_jsonl(text, "h").unwrap();
        let e = h.calls().unwrap_err();
        assert_eq!(e.line, 2);
    }

    /// Reads `bytes` through a buffer of `capacity` bytes: the events (or the first error's
    /// line and message) and whether the tail was dropped.
    fn read_with(bytes: &[u8], capacity: usize, tail: Tail) -> (Result<Vec<Op>, (usize, String)>, bool) {
        let mut r = JsonlReader::new(BufReader::with_capacity(capacity, bytes), "f").with_tail(tail);
        let ops = r.by_ref().collect::<Result<Vec<Op>, _>>().map_err(|e| (e.line, e.message));
        (ops, r.dropped_tail())
    }

    /// A line is read alike wherever the buffer's fills cut it: whole in the buffer (not
    /// copied) or gathered over several fills.
    #[test]
    fn lines_cut_by_the_buffer_read_alike() {
        let event = r#"{"index":0,"time":5,"process":1,"type":"invoke","f":"write","key":3,"value":[1,"é"]}"#;
        let mut cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"\n\n".to_vec(),
            format!("{event}").into_bytes(),
            format!("{event}\r\n\r\n").into_bytes(),
            format!("{event}\n{{\"process\":1,\"type\":\"ok\",\"f\":\"write\"").into_bytes(),
            format!("{event}\n{{\"process\":1,\"type\":\"ok\",\"f\":\"write\",\"value\":\"a\\u00e9\"}}").into_bytes(),
            // Unicode white space alone is a blank line, as `str::trim` has it.
            format!("\u{a0}\u{2028}\n{event}\n").into_bytes(),
            [event.as_bytes(), b"\n{\"process\":2,\"type\":\"invoke\",\"f\":\"x\xff\"}\n"].concat(),
            [event.as_bytes(), b"\n\xff\xfe"].concat(),
        ];
        for dir in ["linear", "other"] {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(dir);
            for e in std::fs::read_dir(root).unwrap() {
                cases.push(std::fs::read(e.unwrap().path()).unwrap());
            }
        }
        for bytes in &cases {
            for tail in [Tail::Strict, Tail::DropUnfinished] {
                let whole = read_with(bytes, 1 << 16, tail);
                for capacity in [1, 2, 3, 7, 64, 100] {
                    assert_eq!(read_with(bytes, capacity, tail), whole, "capacity {capacity}, {tail:?}: {}", String::from_utf8_lossy(bytes));
                }
            }
        }
        // And what they read is what the lines say.
        assert_eq!(read_with(&cases[1], 1, Tail::Strict).0, Ok(vec![]));
        assert_eq!(read_with(&cases[3], 1, Tail::Strict).0.map(|o| o.len()), Ok(1));
        assert_eq!(read_with(&cases[4], 1, Tail::DropUnfinished), (Ok(vec![read_with(&cases[2], 1, Tail::Strict).0.unwrap()[0].clone()]), true));
        assert_eq!(read_with(&cases[4], 1, Tail::Strict).0.unwrap_err().0, 2);
        assert_eq!(read_with(&cases[5], 1, Tail::DropUnfinished).0.map(|o| o[1].value.clone()), Ok(json!("aé")));
        assert_eq!(read_with(&cases[6], 1, Tail::Strict).0.map(|o| o[0].index), Ok(0));
        assert_eq!(read_with(&cases[7], 1, Tail::Strict).0, Err((2, String::from("read error: stream did not contain valid UTF-8"))));
        assert_eq!(read_with(&cases[8], 5, Tail::DropUnfinished).0, Err((2, String::from("read error: stream did not contain valid UTF-8"))));
    }

    #[test]
    fn round_trips_through_writer() {
        let mut op = Op::new(3, OpType::Ok, "cas", json!([1, 2])).with_key(Key::Int(7));
        op.node = Some(Arc::from("n2"));
        op.final_read = true;
        let h = History::from_ops(vec![Op::new(3, OpType::Invoke, "cas", json!([1, 2])).with_key(Key::Int(7)), op]);
        let mut w = JsonlWriter::new(Vec::new());
        for op in &h.ops {
            w.write(op).unwrap();
        }
        let text = String::from_utf8(w.into_inner()).unwrap();
        let back = parse_jsonl(&text, "mem").unwrap();
        assert_eq!(back.ops, h.ops);
    }
}
