//! HTML building blocks shared by every page faultline writes: the one escaping function, the
//! inline style sheet, verdict badges and small table helpers.
//!
//! Every string that comes from a history, a log, a checker or a configuration file goes through
//! [`escape`] before it reaches a page; the helpers here take raw text and escape it themselves,
//! so a caller has to go out of its way (`push_str` of its own markup) to skip it. Links built
//! from names or paths go through [`href`], which makes them relative and percent-encoded.

use faultline_checkers::Validity;
use serde_json::Value;

/// Escapes text for HTML element content and for quoted attribute values: the five characters
/// that can end a text run or an attribute (`& < > " '`) become entities. One function serves
/// every page faultline writes, the checker's explanation pages included.
pub use faultline_checkers::linear::html::escape;

/// A JSON value as compact text, cut to `max_chars` characters (with an ellipsis), escaped.
pub fn json_text(v: &Value, max_chars: usize) -> String {
    escape(&json_plain(v, max_chars))
}

/// [`json_text`] before escaping, for templates that escape by themselves (maud).
pub fn json_plain(v: &Value, max_chars: usize) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    truncate(&s, max_chars)
}

/// Cuts `s` to at most `max_chars` characters, marking the cut with an ellipsis.
pub fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The verdict of a JSON `valid` field: `true`, `false`, `"unknown"`; anything else (missing,
/// a crashed run) is `None`.
pub fn validity_of(v: &Value) -> Option<Validity> {
    Validity::from_json(v)
}

/// The word and CSS class for a verdict; `None` is a run that produced no verdict.
pub fn verdict_word(v: Option<Validity>) -> (&'static str, &'static str) {
    match v {
        Some(Validity::Valid) => ("valid", "ok"),
        Some(Validity::Invalid) => ("INVALID", "bad"),
        Some(Validity::Unknown) => ("unknown", "unk"),
        None => ("no verdict", "none"),
    }
}

/// A coloured badge with the verdict.
pub fn badge(v: Option<Validity>) -> String {
    let (word, class) = verdict_word(v);
    format!("<span class=\"badge {class}\">{word}</span>")
}

/// A whole page as a maud template: doctype, title, the shared style sheet plus `extra_style`,
/// and `body`.
pub fn page(title: &str, extra_style: &str, body: maud::Markup) -> maud::Markup {
    maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (maud::PreEscaped(STYLE)) (maud::PreEscaped(extra_style)) }
            }
            body { (body) }
        }
    }
}

/// Opens a page: doctype, title (escaped) and the shared style sheet.
pub fn page_start(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{}</style></head><body>\n",
        escape(title),
        STYLE
    )
}

/// Closes a page opened with [`page_start`].
pub fn page_end() -> &'static str {
    "</body></html>\n"
}

/// A table row of cells that are already HTML (callers escape raw text first).
pub fn row(cells: &[String]) -> String {
    let mut s = String::from("<tr>");
    for c in cells {
        s.push_str("<td>");
        s.push_str(c);
        s.push_str("</td>");
    }
    s.push_str("</tr>\n");
    s
}

/// A header row from raw text.
pub fn header(cells: &[&str]) -> String {
    let mut s = String::from("<thead><tr>");
    for c in cells {
        s.push_str("<th>");
        s.push_str(&escape(c));
        s.push_str("</th>");
    }
    s.push_str("</tr></thead>\n");
    s
}

/// A relative link to `path` (segments separated by `/`), percent-encoded, or `None` when it
/// could leave the directory the page is in (an absolute path, a `..` segment).
///
/// Names of runs come from the command line (`--name`), so a name like `javascript:alert(1)`
/// must not become a scheme: every byte outside the URL's unreserved set (`:` included) is
/// encoded, and empty and `.` segments are dropped so no `//` (a host) or leading `/` remains.
/// `..` is refused rather than encoded, because browsers treat `%2e%2e` as `..` too.
pub fn href(path: &str) -> Option<String> {
    if path.starts_with('/') || path.starts_with('\\') {
        return None;
    }
    let mut segments = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => return None,
            s => segments.push(percent_encode(s)),
        }
    }
    (!segments.is_empty()).then(|| segments.join("/"))
}

/// Percent-encodes every byte but the unreserved ones of RFC 3986 (`A-Z a-z 0-9 - . _ ~`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// An anchor to a relative path with escaped text, or the text alone when the path cannot be
/// linked safely (see [`href`]).
pub fn link(path: &str, text: &str) -> String {
    match href(path) {
        Some(h) => format!("<a href=\"{}\">{}</a>", escape(&h), escape(text)),
        None => escape(text),
    }
}

/// A number of milliseconds with a sensible precision, or a dash.
pub fn ms(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => {
            if x >= 100.0 {
                format!("{x:.0}")
            } else if x >= 1.0 {
                format!("{x:.1}")
            } else {
                format!("{x:.2}")
            }
        }
        _ => "–".to_string(),
    }
}

/// A share as a percentage, or a dash.
pub fn percent(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{:.1}%", x * 100.0),
        _ => "–".to_string(),
    }
}

/// The style sheet every page shares (inline: pages are self-contained).
pub const STYLE: &str = r#"
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:1.5em auto;max-width:1250px;padding:0 1em;color:#222;background:#fff}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre,.mono{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.88em}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.badge{display:inline-block;padding:.1em .6em;border-radius:.8em;font-weight:bold;font-size:.9em;color:#fff}
.badge.ok{background:#2e7d32}.badge.bad{background:#c62828}.badge.unk{background:#ef8f00}.badge.none{background:#777}
tr.v-ok td.verdict{background:#e8f5e9}tr.v-bad td.verdict{background:#ffebee}tr.v-unk td.verdict{background:#fff3e0}tr.v-none td.verdict{background:#eee}
td.diff{background:#ffe0e0;font-weight:bold}
.muted{color:#777}.small{font-size:.85em}
.explain{background:#fff8e1;border-left:4px solid #ef8f00;padding:.5em .8em;white-space:pre-wrap}
.plot svg{max-width:100%;height:auto;border:1px solid #eee}
.scroll{overflow-x:auto;max-width:100%}
.legend span{display:inline-block;margin-right:1.2em}
.sw{display:inline-block;width:1em;height:.8em;vertical-align:middle;margin-right:.3em;border:1px solid #999}
.filters select,.filters input{margin-right:1em}
.badge.warn{background:#6a1b9a}
.health{background:#f3e5f5;border-left:6px solid #6a1b9a;padding:.6em 1em;margin:.8em 0}
.health h2{margin-top:0;border:0}.health li{font-weight:bold}
.why{font-size:.85em;color:#4a148c}
.anomaly-line{font-size:.85em;color:#b71c1c;max-width:40em}
.anomaly-zoom{border-left:6px solid #c62828;padding:.2em 1em .4em;margin:.8em 0;background:#fffafa}
.anomaly-zoom h2{margin-top:.3em;border:0}
.sentence{font-size:1.08em;line-height:1.45;margin:.3em 0 .6em}
.lanes{display:flex;align-items:flex-start;max-width:100%}
.lanes .lane-labels{flex:none;background:#fff;border-right:1px solid #ddd}
.lanes .scroll{flex:1 1 auto;min-width:0}
.scroll.end{direction:rtl}.scroll.end>*{direction:ltr}
tr.changed td{background:#fffde7}tr.explains td{background:#ffebee}
tr.total td,tr.subtotal td{border-top:2px solid #bbb}
td.wrong-total,td.diff.wrong-total{background:#ffcdd2;font-weight:bold}
pre.log-tail{max-height:20em;overflow:auto}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(escape("<script>alert('x')</script>"), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;");
        assert_eq!(escape("a & b \"c\""), "a &amp; b &quot;c&quot;");
        assert_eq!(escape("plain ü"), "plain ü");
        // Escaping twice escapes the ampersands of the first pass: callers must escape once.
        assert_eq!(escape("&lt;"), "&amp;lt;");
    }

    #[test]
    fn json_text_escapes_and_truncates() {
        let v = serde_json::json!({"k": "<b>"});
        assert_eq!(json_text(&v, 100), "{&quot;k&quot;:&quot;&lt;b&gt;&quot;}");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(json_text(&Value::String("<x>".into()), 10), "&lt;x&gt;");
    }

    #[test]
    fn hrefs_are_relative_and_encoded() {
        assert_eq!(href("raft-register/2026-1/report.html").as_deref(), Some("raft-register/2026-1/report.html"));
        let h = href("javascript:alert(1)<!--/20261125T200000-1/report.html").unwrap();
        assert_eq!(h, "javascript%3Aalert%281%29%3C%21--/20261125T200000-1/report.html");
        assert!(!h.contains(':') && !h.contains('<'));
        assert_eq!(href("a b/ü").as_deref(), Some("a%20b/%C3%BC"));
        assert_eq!(href("//evil.example/x").as_deref(), None);
        assert_eq!(href("/etc/passwd"), None);
        assert_eq!(href("a/../../x"), None);
        assert_eq!(href("./a//b").as_deref(), Some("a/b"));
        assert_eq!(href(""), None);
        assert_eq!(link("..", "<up>"), "&lt;up&gt;");
        assert_eq!(link("n 1.log", "n1"), "<a href=\"n%201.log\">n1</a>");
    }

    #[test]
    fn header_escapes() {
        assert!(header(&["<a>"]).contains("&lt;a&gt;"));
    }
}
