//! Jepsen EDN import: reads a `history.edn` (a vector or list of op maps, or a plain sequence of
//! them, one per line as Jepsen's store writes it) into a [`History`].
//!
//! EDN values become JSON values: keywords and symbols become strings (`:write` → `"write"`,
//! `:a/b` → `"a/b"`), vectors, lists and sets become arrays, maps become objects with string keys,
//! `nil` becomes `null`, and a tagged value becomes its inner value (so Jepsen's
//! `#jepsen.history.Op{...}` records read as plain maps). Jepsen's `:index` is ignored: the
//! position in the file orders events, as in JSONL.
//!
//! `jepsen.independent` histories carry `[key value]` tuples as their `:value`. A tuple tagged
//! `#jepsen.independent/tuple` (or a tagged `{:key k :value v}` record) is always split into
//! `key` and `value`. Jepsen usually prints tuples as plain 2-vectors, which are ambiguous with
//! a cas's `[from to]`, so splitting untagged ones is the caller's choice ([`Tuples`]).
//!
//! The `edn-format` parser reports rows within the text it was given; to name the line of the
//! offending operation in a whole file, a small scanner first splits the file into one text span
//! per operation (it understands strings, characters, comments, tags and `#_` discards), and each
//! span is parsed on its own with its line offset known.

use edn_format::Value as Edn;
use serde_json::{Map, Number, Value};
use std::path::Path;

use crate::history::{History, HistoryError, Interner, Key, Op, OpType, Process};

/// Whether untagged 2-element vectors in `:value` are `jepsen.independent` tuples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tuples {
    /// Only tagged tuples are split.
    #[default]
    Tagged,
    /// Untagged 2-vectors are split when the whole history looks independent: every non-nil
    /// value of a read, write or cas is a 2-vector, every cas's second element is itself a
    /// `[from to]` pair, and the first elements are all valid keys.
    Auto,
    /// Every 2-vector value of a read, write or cas is split (other values are an error).
    Always,
}

/// Reads a Jepsen EDN history file; only tagged tuples are split.
pub fn read_edn(path: &Path) -> Result<History, HistoryError> {
    read_edn_with(path, Tuples::Tagged)
}

/// Reads a Jepsen EDN history file, splitting independent tuples as `tuples` says.
pub fn read_edn_with(path: &Path, tuples: Tuples) -> Result<History, HistoryError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| HistoryError::new(&name, 0, format!("cannot read: {e}")))?;
    parse_edn_with(&text, &name, tuples)
}

/// Parses a Jepsen EDN history from text; `name` is used in errors. Only tagged tuples are split.
pub fn parse_edn(text: &str, name: &str) -> Result<History, HistoryError> {
    parse_edn_with(text, name, Tuples::Tagged)
}

/// Parses a Jepsen EDN history from text, splitting independent tuples as `tuples` says.
pub fn parse_edn_with(text: &str, name: &str, tuples: Tuples) -> Result<History, HistoryError> {
    let lines = Lines::new(text);
    let err = |offset: usize, msg: String| HistoryError::new(name, lines.line_of(offset), msg);
    let spans = op_spans(text).map_err(|(at, msg)| err(at, msg))?;
    let mut conv = Converter { interner: Interner::default(), last_time: 0 };
    let mut ops = Vec::with_capacity(spans.len());
    let mut lines_of_ops = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        let edn = parse_form(&text[start..end]).map_err(|(row, msg)| HistoryError::new(name, lines.line_of(start) + row, msg))?;
        ops.push(conv.op(&edn).map_err(|m| err(start, m))?);
        lines_of_ops.push(lines.line_of(start));
    }
    split_untagged(&mut ops, tuples).map_err(|(i, m)| HistoryError::new(name, lines_of_ops[i], m))?;
    Ok(History::from_ops(ops))
}

/// Reads a Jepsen console log (see [`parse_jepsen_log`]).
pub fn read_jepsen_log(path: &Path) -> Result<History, HistoryError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| HistoryError::new(&name, 0, format!("cannot read: {e}")))?;
    parse_jepsen_log(&text, &name)
}

/// Parses the operations of a Jepsen console log, as Jepsen's `jepsen.util` logger prints them
/// while a test runs (and as Porcupine's and Knossos' etcd corpora keep them): one event a
/// line, `... - PROCESS :TYPE :F VALUE` separated by tabs or spaces, e.g.
/// `INFO  jepsen.util - 3	:ok	:cas	[3 0]`. PROCESS is an integer or `:nemesis`, TYPE one of
/// `:invoke`, `:ok`, `:fail`, `:info`, F a keyword, VALUE one EDN form (`nil`, `4`, `[3 0]`,
/// `:timed-out`). Any other line is Jepsen's other output and is skipped; an event line whose
/// value is missing or not EDN is an error naming the line. The log has no times: the
/// position of a line orders it.
pub fn parse_jepsen_log(text: &str, name: &str) -> Result<History, HistoryError> {
    let mut conv = Converter { interner: Interner::default(), last_time: 0 };
    let mut ops = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(event) = jepsen_log_event(line) else { continue };
        let op = event.and_then(|e| {
            let value = parse_form(e.value).map_err(|(_, m)| format!("{m} (in the value `{}`)", e.value))?;
            let process = match e.process {
                ":nemesis" => Process::Nemesis,
                p => Process::Client(p.parse().map_err(|_| format!("the process `{p}` is out of range"))?),
            };
            let f = conv.interner.intern(e.f);
            Ok(Op { index: 0, time: 0, process, op_type: e.op_type, f, key: None, value: json(&value), node: None, error: None, final_read: false, local: false })
        });
        ops.push(op.map_err(|m| HistoryError::new(name, i + 1, m))?);
    }
    Ok(History::from_ops(ops))
}

/// The fields of one event line of a Jepsen console log.
struct LogEvent<'a> {
    process: &'a str,
    op_type: OpType,
    /// The operation, without its colon.
    f: &'a str,
    value: &'a str,
}

/// The event of a Jepsen console log line: the first place where a process (digits or
/// `:nemesis`), a type keyword and an operation keyword follow each other; `None` for a line
/// with no such place, an error when nothing follows them.
fn jepsen_log_event(line: &str) -> Option<Result<LogEvent<'_>, String>> {
    let mut words: Vec<(usize, &str)> = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices().chain(std::iter::once((line.len(), ' '))) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                words.push((s, &line[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    words.windows(3).find_map(|w| {
        let op_type = match w[1].1 {
            ":invoke" => OpType::Invoke,
            ":ok" => OpType::Ok,
            ":fail" => OpType::Fail,
            ":info" => OpType::Info,
            _ => return None,
        };
        let process = w[0].1;
        if process != ":nemesis" && !process.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let f = w[2].1.strip_prefix(':').filter(|f| !f.is_empty())?;
        let value = line[w[2].0 + w[2].1.len()..].trim();
        Some(if value.is_empty() {
            Err(String::from("an event line needs a value after its operation (`nil` when there is none)"))
        } else {
            Ok(LogEvent { process, op_type, f, value })
        })
    })
}

/// Whether `text` (the start of a file) holds an event line of a Jepsen console log.
pub fn looks_like_jepsen_log(text: &str) -> bool {
    text.lines().take(64).any(|l| matches!(jepsen_log_event(l), Some(Ok(_))))
}

/// Parses one op's text with edn-format. The error carries the line within `form` (0-based) and
/// the message.
///
/// edn-format 3.3 panics on some malformed input (a character literal `\u` followed by a
/// multi-byte character: it slices its lookahead at byte 5, found by tests/parse_fuzz.rs), so the
/// parse runs under `catch_unwind` and a panic becomes an error naming the op's first line. The
/// default panic hook still prints the panic to stderr; the error is what callers see.
fn parse_form(form: &str) -> Result<Edn, (usize, String)> {
    match std::panic::catch_unwind(|| edn_format::parse_str(form)) {
        // edn-format 3.3 counts lines in `col` and characters within the line in `row` (its
        // `RowCol::chomp` bumps `col` on a newline); the line is what we want.
        Ok(parsed) => parsed.map_err(|e| (e.col.max(1) - 1, format!("invalid EDN: {}", e.error))),
        Err(panic) => {
            let why = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
            Err((0, format!("invalid EDN: the parser failed on this op ({})", why.unwrap_or_else(|| "a panic".into()))))
        }
    }
}

/// Byte offsets of line starts, to turn an offset into a 1-based line number.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1));
        Lines { starts }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|s| *s <= offset)
    }
}

// ---------------------------------------------------------------------------------------------
// The scanner: finds where each top-level form (or each element of one top-level vector/list)
// begins and ends. Errors carry the byte offset they refer to.

type ScanResult<T> = Result<T, (usize, String)>;

/// Nesting deeper than this is refused: it bounds the stack, and edn-format's time per form,
/// which grows with the square of the depth (about 18 ms for one form 500 deep, 1 ms at 100).
/// The same limit as serde_json's for JSONL; Jepsen's ops nest a handful of levels.
const MAX_DEPTH: usize = 128;

fn op_spans(text: &str) -> ScanResult<Vec<(usize, usize)>> {
    let b = text.as_bytes();
    let top = forms(b, 0, b.len(), b"")?;
    if let [(s, e)] = top[..] {
        if b[s] == b'[' || b[s] == b'(' {
            let close = if b[s] == b'[' { b"]" } else { b")" };
            return forms(b, s + 1, e, close);
        }
    }
    Ok(top)
}

/// The spans of the forms in `b[start..end]`, which ends with `closer` (or nothing at top level).
fn forms(b: &[u8], start: usize, end: usize, closer: &[u8]) -> ScanResult<Vec<(usize, usize)>> {
    let stop = end - closer.len();
    let mut out = Vec::new();
    let mut i = skip_blank(b, start, stop);
    while i < stop {
        if b[i..].starts_with(b"#_") {
            let j = skip_blank(b, i + 2, stop);
            i = skip_blank(b, skip_form(b, j, stop, 0)?, stop);
            continue;
        }
        let e = skip_form(b, i, stop, 0)?;
        out.push((i, e));
        i = skip_blank(b, e, stop);
    }
    Ok(out)
}

fn is_blank(c: u8) -> bool {
    c.is_ascii_whitespace() || c == b','
}

fn is_delim(c: u8) -> bool {
    is_blank(c) || matches!(c, b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';')
}

/// Skips whitespace, commas and `;` comments.
fn skip_blank(b: &[u8], mut i: usize, end: usize) -> usize {
    while i < end {
        if is_blank(b[i]) {
            i += 1;
        } else if b[i] == b';' {
            while i < end && b[i] != b'\n' {
                i += 1;
            }
        } else {
            break;
        }
    }
    i
}

/// The end of the form starting at `i`.
fn skip_form(b: &[u8], i: usize, end: usize, depth: usize) -> ScanResult<usize> {
    if depth > MAX_DEPTH {
        return Err((i, format!("nested deeper than {MAX_DEPTH} levels")));
    }
    if i >= end {
        return Err((i.saturating_sub(1), "unexpected end of input: a form is missing".into()));
    }
    match b[i] {
        b'(' => skip_coll(b, i + 1, end, b')', i, depth),
        b'[' => skip_coll(b, i + 1, end, b']', i, depth),
        b'{' => skip_coll(b, i + 1, end, b'}', i, depth),
        b')' | b']' | b'}' => Err((i, format!("unexpected `{}`", b[i] as char))),
        b'"' => skip_string(b, i, end),
        b'\\' => Ok(skip_atom(b, (i + 2).min(end), end)),
        b'#' if b.get(i + 1) == Some(&b'{') => skip_coll(b, i + 2, end, b'}', i, depth),
        b'#' if b.get(i + 1) == Some(&b'_') => {
            let j = skip_form(b, skip_blank(b, i + 2, end), end, depth + 1)?;
            // A discard inside a collection: the form after it is what counts.
            let k = skip_blank(b, j, end);
            if k < end && !matches!(b[k], b')' | b']' | b'}') {
                skip_form(b, k, end, depth + 1)
            } else {
                Ok(j)
            }
        }
        b'#' => {
            // A tag (`#inst`, `#jepsen.history.Op`) and the form it tags.
            let j = skip_atom(b, i + 1, end);
            skip_form(b, skip_blank(b, j, end), end, depth + 1)
        }
        _ => Ok(skip_atom(b, i, end)),
    }
}

fn skip_coll(b: &[u8], mut i: usize, end: usize, close: u8, open_at: usize, depth: usize) -> ScanResult<usize> {
    loop {
        i = skip_blank(b, i, end);
        if i >= end {
            return Err((open_at, format!("`{}` is never closed", b[open_at] as char)));
        }
        if b[i] == close {
            return Ok(i + 1);
        }
        if matches!(b[i], b')' | b']' | b'}') {
            return Err((i, format!("`{}` closes a collection opened with `{}`", b[i] as char, b[open_at] as char)));
        }
        i = skip_form(b, i, end, depth + 1)?;
    }
}

fn skip_string(b: &[u8], start: usize, end: usize) -> ScanResult<usize> {
    let mut i = start + 1;
    while i < end {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err((start, "string is never closed".into()))
}

fn skip_atom(b: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && !is_delim(b[i]) {
        i += 1;
    }
    i
}

// ---------------------------------------------------------------------------------------------
// Conversion of one parsed op map.

struct Converter {
    interner: Interner,
    last_time: u64,
}

/// The name of a keyword, symbol or string, with its namespace when it has one.
fn name_of(v: &Edn) -> Option<String> {
    let join = |ns: Option<&str>, n: &str| ns.map_or_else(|| n.to_string(), |ns| format!("{ns}/{n}"));
    match v {
        Edn::Keyword(k) => Some(join(k.namespace(), k.name())),
        Edn::Symbol(s) => Some(join(s.namespace(), s.name())),
        Edn::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn untag(v: &Edn) -> &Edn {
    match v {
        Edn::TaggedElement(_, inner) => untag(inner),
        other => other,
    }
}

impl Converter {
    fn op(&mut self, edn: &Edn) -> Result<Op, String> {
        let Edn::Map(m) = untag(edn) else {
            return Err(format!("expected an op map like {{:type :invoke, :f :read, ...}}, got {}", short(edn)));
        };
        let get = |k: &str| m.iter().find(|(key, _)| matches!(key, Edn::Keyword(kw) if kw.name() == k)).map(|(_, v)| v);
        let process = match get("process").map(untag) {
            Some(Edn::Integer(p)) if *p >= 0 => Process::Client(*p as u64),
            Some(v) if name_of(v).as_deref() == Some("nemesis") => Process::Nemesis,
            Some(v) => return Err(format!(":process must be a non-negative integer or :nemesis, got {}", short(v))),
            None => return Err("missing :process".into()),
        };
        let op_type = match get("type").and_then(name_of).as_deref() {
            Some("invoke") => OpType::Invoke,
            Some("ok") => OpType::Ok,
            Some("fail") => OpType::Fail,
            Some("info") => OpType::Info,
            Some(other) => return Err(format!(":type must be :invoke, :ok, :fail or :info, got {other}")),
            None => return Err("missing :type".into()),
        };
        let f = match get("f") {
            Some(v) => match name_of(untag(v)) {
                Some(s) => self.interner.intern(&s),
                None => self.interner.intern(&json(v).to_string()),
            },
            None => return Err("missing :f".into()),
        };
        let time = match get("time").map(untag) {
            None | Some(Edn::Nil) => self.last_time,
            Some(Edn::Integer(t)) if *t >= 0 => *t as u64,
            Some(v) => return Err(format!(":time must be a non-negative integer, got {}", short(v))),
        };
        self.last_time = time;
        let (mut key, value) = match get("value") {
            Some(v) => tagged_tuple(v)?.unwrap_or((None, json(v))),
            None => (None, Value::Null),
        };
        if let Some(k) = get("key").map(json).filter(|k| !k.is_null()) {
            key = Some(Key::from_json(&k).ok_or_else(|| format!(":key must be a string or an integer, got {k}"))?);
        }
        let node = get("node").map(json).filter(|n| !n.is_null()).map(|n| match n {
            Value::String(s) => self.interner.intern(&s),
            other => self.interner.intern(&other.to_string()),
        });
        let error = get("error").map(json).filter(|e| !e.is_null()).map(|e| match e {
            Value::String(s) => s,
            other => other.to_string(),
        });
        let final_read = [get("final"), get("final?")].into_iter().flatten().any(|v| matches!(v, Edn::Boolean(true)));
        Ok(Op { index: 0, time, process, op_type, f, key, value, node, error, final_read, local: false })
    }
}

/// Splits a tagged independent tuple: `#jepsen.independent/tuple [k v]` or a tagged
/// `{:key k :value v}` record. Other tagged values are not tuples.
fn tagged_tuple(v: &Edn) -> Result<Option<(Option<Key>, Value)>, String> {
    let Edn::TaggedElement(tag, inner) = v else { return Ok(None) };
    if !tag.name().to_ascii_lowercase().ends_with("tuple") {
        return Ok(None);
    }
    let (k, val) = match untag(inner) {
        Edn::Vector(items) | Edn::List(items) if items.len() == 2 => (json(&items[0]), json(&items[1])),
        Edn::Map(m) => {
            let get = |k: &str| m.iter().find(|(key, _)| name_of(key).as_deref() == Some(k)).map(|(_, v)| json(v));
            (get("key").unwrap_or(Value::Null), get("value").unwrap_or(Value::Null))
        }
        other => return Err(format!("an independent tuple must be [key value], got {}", short(other))),
    };
    let key = Key::from_json(&k).ok_or_else(|| format!("an independent tuple's key must be a string or an integer, got {k}"))?;
    Ok(Some((Some(key), val)))
}

const REGISTER_FS: &[&str] = &["read", "write", "cas"];

/// Splits untagged `[key value]` values of read/write/cas ops, as `mode` says. The error carries
/// the position of the op that does not fit.
fn split_untagged(ops: &mut [Op], mode: Tuples) -> Result<(), (usize, String)> {
    if mode == Tuples::Tagged {
        return Ok(());
    }
    let candidates = || ops.iter().enumerate().filter(|(_, o)| !o.is_nemesis() && o.key.is_none() && REGISTER_FS.contains(&&*o.f));
    let misfit = candidates().find(|(_, o)| !is_tuple(o) && !o.value.is_null());
    if let Some((i, o)) = misfit {
        return match mode {
            Tuples::Always => Err((i, format!("expected a [key value] tuple for `{}`, got {}", o.f, o.value))),
            _ => Ok(()),
        };
    }
    if mode == Tuples::Auto && candidates().all(|(_, o)| o.value.is_null()) {
        return Ok(());
    }
    for op in ops.iter_mut().filter(|o| !o.is_nemesis() && o.key.is_none() && REGISTER_FS.contains(&&*o.f)) {
        if let Value::Array(items) = &mut op.value {
            let v = items.pop().unwrap_or(Value::Null);
            op.key = items.pop().as_ref().and_then(Key::from_json);
            op.value = v;
        }
    }
    Ok(())
}

/// A 2-element value whose first element is a key; for a cas, whose second is a `[from to]` pair.
fn is_tuple(o: &Op) -> bool {
    match o.value.as_array().map(|a| a.as_slice()) {
        Some([k, v]) => Key::from_json(k).is_some() && (&*o.f != "cas" || v.as_array().is_some_and(|p| p.len() == 2)),
        _ => false,
    }
}

fn short(v: &Edn) -> String {
    let s = edn_format::emit_str(v);
    if s.len() > 80 {
        let cut = (0..=80).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        format!("{}...", &s[..cut])
    } else {
        s
    }
}

/// Converts an EDN value to JSON, as the module docs describe.
pub fn json(v: &Edn) -> Value {
    match v {
        Edn::Nil => Value::Null,
        Edn::Boolean(b) => Value::Bool(*b),
        Edn::Character(c) => Value::String(c.to_string()),
        Edn::String(s) => Value::String(s.clone()),
        Edn::Symbol(_) | Edn::Keyword(_) => Value::String(name_of(v).unwrap_or_default()),
        Edn::Integer(i) => Value::from(*i),
        Edn::Float(f) => Number::from_f64(f.into_inner()).map(Value::Number).unwrap_or_else(|| Value::String(f.to_string())),
        Edn::BigInt(b) => big_int(&b.to_string()),
        Edn::BigDec(d) => {
            let s = d.to_string();
            s.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number).unwrap_or(Value::String(s))
        }
        Edn::List(items) | Edn::Vector(items) => Value::Array(items.iter().map(json).collect()),
        Edn::Set(items) => Value::Array(items.iter().map(json).collect()),
        Edn::Map(m) => {
            let mut out = Map::new();
            for (k, val) in m {
                let key = match json(k) {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, json(val));
            }
            Value::Object(out)
        }
        Edn::Inst(t) => Value::String(t.to_rfc3339()),
        Edn::Uuid(u) => Value::String(u.to_string()),
        Edn::TaggedElement(_, inner) => json(inner),
    }
}

/// An EDN big integer (`12N`) as JSON: exact as a number when an `i64` or a `u64` holds it,
/// else its decimal text (a JSON number would be read back as a rounded float).
fn big_int(text: &str) -> Value {
    let digits = text.trim_end_matches('N');
    digits
        .parse::<i64>()
        .map(Value::from)
        .or_else(|_| digits.parse::<u64>().map(Value::from))
        .unwrap_or_else(|_| Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json as j;

    #[test]
    fn reads_a_sequence_and_a_vector() {
        let seq = "{:type :invoke, :f :write, :value 3, :process 0, :time 10, :index 0}\n{:type :ok, :f :write, :value 3, :process 0, :time 20, :index 1}\n";
        let h = parse_edn(seq, "h.edn").unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!((&*h.ops[1].f, h.ops[1].op_type, h.ops[1].time), ("write", OpType::Ok, 20));
        let vec = format!("[{}]", seq.replace('\n', " "));
        assert_eq!(parse_edn(&vec, "v.edn").unwrap().ops, h.ops);
    }

    #[test]
    fn converts_values() {
        let text = r#"{:type :ok :f :read :process :nemesis :value {:a #{1} :b (nil "x") "c" #inst "2020-01-01T00:00:00Z" 4 \z}}"#;
        let h = parse_edn(text, "x").unwrap();
        assert_eq!(h.ops[0].process, Process::Nemesis);
        let v = &h.ops[0].value;
        assert_eq!(v["a"], j!([1]));
        assert_eq!(v["b"], j!([null, "x"]));
        assert_eq!(v["4"], j!("z"));
        assert!(v["c"].as_str().unwrap().starts_with("2020-01-01"));
    }

    #[test]
    fn scanner_handles_strings_chars_comments_and_discards() {
        let text = "; header ]\n{:f :read :type :invoke :process 0 :value \"a]}\" :x \\] }\n#_ {:junk (}\n{:f :read :type :ok :process 0 :value 1}";
        // The discarded form is itself unbalanced only inside a list: keep a balanced one here.
        let text = text.replace("#_ {:junk (}", "#_ {:junk ()}");
        let h = parse_edn(&text, "x").unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h.ops[0].value, j!("a]}"));
    }

    /// Found by tests/parse_fuzz.rs: edn-format 3.3 panics on `\u` followed by a character of
    /// several bytes; the importer answers an error on that line instead.
    #[test]
    fn a_parser_panic_is_an_error_on_its_line() {
        let text = "{:type :invoke :f :read :process 0}\n{:type :ok :f :read :process 0 :value \\u#\u{0}\u{fffd}}\n";
        let e = parse_edn(text, "h.edn").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("parser failed"), "{e}");
    }

    #[test]
    fn reads_a_jepsen_console_log() {
        let text = "INFO  jepsen.core - Running test\n\
            INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
            INFO  jepsen.util - 3\t:invoke\t:cas\t[3 0]\n\
            INFO  jepsen.util - 0\t:ok\t:read\tnil\n\
            INFO  jepsen.util - :nemesis\t:info\t:start\t\"partition\"\n\
            INFO  jepsen.util - 3\t:info\t:cas\t:timed-out\r\n\
            INFO  jepsen.util - 5\t:invoke\t:write\t4\n\
            INFO  jepsen.core - a line that says :ok :read but is no event\n\
            INFO  jepsen.util - 5   :fail   :write  4\n";
        assert!(looks_like_jepsen_log(text));
        let h = parse_jepsen_log(text, "e.log").unwrap();
        assert_eq!(h.len(), 7);
        assert_eq!((h.ops[1].process, &*h.ops[1].f, &h.ops[1].value), (Process::Client(3), "cas", &j!([3, 0])));
        assert_eq!((h.ops[2].op_type, &h.ops[2].value), (OpType::Ok, &Value::Null));
        assert_eq!((h.ops[3].process, &h.ops[3].value), (Process::Nemesis, &j!("partition")));
        assert_eq!((h.ops[4].op_type, &h.ops[4].value), (OpType::Info, &j!("timed-out")));
        assert_eq!(h.ops[6].op_type, OpType::Fail);
        let calls = h.calls().unwrap();
        assert_eq!(calls.len(), 3);
        assert!(!looks_like_jepsen_log("{\"process\":0}\nINFO  jepsen.core - x\n"));
    }

    #[test]
    fn jepsen_log_errors_name_the_line() {
        for (text, line, says) in [
            ("INFO  jepsen.util - 0\t:invoke\t:write\t[1 2\n", 1, "invalid EDN"),
            ("\nINFO  jepsen.util - 0\t:invoke\t:write\n", 2, "needs a value"),
            ("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 99999999999999999999\t:ok\t:read\t1\n", 2, "out of range"),
        ] {
            let e = parse_jepsen_log(text, "e.log").unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.message.contains(says), "{e}");
        }
        // Lines that do not hold a process, a type and an operation in a row are other output.
        let h = parse_jepsen_log("INFO  jepsen.util - x\t:ok\t:read\t1\nINFO  jepsen.util - 0\t:invoke\tread\tnil\n", "e.log").unwrap();
        assert!(h.is_empty());
    }

    #[test]
    fn errors_name_the_line() {
        let text = "{:type :invoke :f :read :process 0}\n\n{:type :okay :f :read :process 0}\n";
        let e = parse_edn(text, "h.edn").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = parse_edn("[{:type :invoke :f :read :process 0}\n {:type :ok\n", "h.edn").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = parse_edn("{:type :invoke :f :read :process 0}\n{:type :ok :f :read :process 0 :value [1 2}\n", "h.edn").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
    }
}
