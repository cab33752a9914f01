//! The anomaly, zoomed: the first thing a report of a linearizability violation shows.
//!
//! One sentence in plain words ([`LinStory::sentence`]), then the operations that explain it
//! on a wall-clock timeline scaled to just their window: the operation that cannot be placed,
//! the operations concurrent with it, the writes of the value it read, and the acknowledged
//! writes that had replaced that value before it began, one lane per process, each box naming
//! the node it went to, fault periods shaded. The process labels are a separate column outside
//! the scrolling area, so they stay in view however wide the drawing is.
//!
//! The drawing is as wide as the page, so the offending operation is on the first screen; the
//! full history is one click away in `timeline.html`, opened at the anomaly's time.

use super::data::{secs, RunData};
use super::html::{escape, truncate};
use super::story::{node_of, span_s, LinStory};
use super::svg::{fault_bands, legend, Swatch, TimeScale};
use faultline_checkers::{Call, Outcome};
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// Most calls drawn: the explaining ones first, then other calls of the key in the window.
const SHOWN_MAX: usize = 48;
/// Geometry of the drawing, pixels.
const WIDTH: f64 = 1060.0;
const LABEL_W: f64 = 64.0;
const AXIS_H: f64 = 26.0;
const LANE_H: f64 = 36.0;

/// What a call is to the anomaly; decides its colours and its class in the DOM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Failing,
    Newer,
    Source,
    Concurrent,
    Context,
}

impl Role {
    fn class(self) -> &'static str {
        match self {
            Role::Failing => "failing",
            Role::Newer => "newer",
            Role::Source => "source",
            Role::Concurrent => "concurrent",
            Role::Context => "context",
        }
    }

    /// (fill, stroke).
    fn colors(self) -> (&'static str, &'static str) {
        match self {
            Role::Failing => ("#ef9a9a", "#b71c1c"),
            Role::Newer => ("#bbdefb", "#1565c0"),
            Role::Source => ("#e1bee7", "#6a1b9a"),
            Role::Concurrent => ("#fff3e0", "#ef6c00"),
            Role::Context => ("#f2f2f2", "#9e9e9e"),
        }
    }
}

/// The calls to draw with their roles, the explaining ones first, and the explaining calls left
/// out: a write of the value read long before the anomaly would widen the window until the
/// anomaly is a sliver, so an explaining call joins only while the window stays within four
/// times that of the core (the failing call, the last replacing write, the concurrent calls).
pub fn chosen(data: &RunData, story: &LinStory) -> (Vec<(usize, Role)>, Vec<(usize, Role)>) {
    let mut out: Vec<(usize, Role)> = vec![(story.failing, Role::Failing)];
    let add = |i: usize, r: Role, out: &mut Vec<(usize, Role)>| {
        if !out.iter().any(|(j, _)| *j == i) {
            out.push((i, r));
        }
    };
    story.replaced_by.iter().take(1).for_each(|&i| add(i, Role::Newer, &mut out));
    story.concurrent.iter().for_each(|&i| add(i, Role::Concurrent, &mut out));
    let (core_lo, core_hi) = window(data, &out);
    let limit = (core_hi - core_lo).max(0.05) * 4.0;
    let mut far = Vec::new();
    let rest = story.replaced_by.iter().skip(1).map(|&i| (i, Role::Newer)).chain(story.sources.iter().map(|&i| (i, Role::Source)));
    for (i, role) in rest {
        let mut trial = out.clone();
        add(i, role, &mut trial);
        let (lo, hi) = window(data, &trial);
        if hi - lo <= limit {
            out = trial;
        } else {
            far.push((i, role));
        }
    }
    let (lo, hi) = window(data, &out);
    let f = &data.calls[story.failing];
    let mut context: Vec<usize> = (0..data.calls.len())
        .filter(|&i| {
            let c = &data.calls[i];
            !c.final_read && super::story::on_key(c, &story.key) && secs(c.invoke_time) <= hi && c.complete_time.map_or(true, |t| secs(t) >= lo)
        })
        .collect();
    context.sort_by_key(|&i| data.calls[i].invoke_time.abs_diff(f.invoke_time));
    for i in context {
        if out.len() >= SHOWN_MAX {
            break;
        }
        add(i, Role::Context, &mut out);
    }
    (out, far)
}

/// A sentence listing the explaining calls drawn outside the window, or nothing.
fn far_note(data: &RunData, far: &[(usize, Role)]) -> String {
    if far.is_empty() {
        return String::new();
    }
    let items: Vec<String> = far
        .iter()
        .map(|(i, role)| {
            let c = &data.calls[*i];
            let what = if *role == Role::Source { "wrote the value read" } else { "replaced it too" };
            let done = c.complete_time.map_or("never completed".to_string(), |t| format!("completed {:.3} s", secs(t)));
            format!("{} ({}, {what}; invoked {:.3} s on {}, {done})", super::story::write_text(c), super::story::proc_of(c), secs(c.invoke_time), node_of(c))
        })
        .collect();
    format!("<p class=\"small\" id=\"outside-window\">Outside this window: {}.</p>", escape(&items.join("; ")))
}

/// The time window of the explaining calls, padded; unfinished calls count by their invoke.
fn window(data: &RunData, calls: &[(usize, Role)]) -> (f64, f64) {
    let lo = calls.iter().map(|(i, _)| secs(data.calls[*i].invoke_time)).fold(f64::MAX, f64::min);
    let hi = calls
        .iter()
        .map(|(i, _)| data.calls[*i].complete_time.map_or(secs(data.calls[*i].invoke_time), secs))
        .fold(f64::MIN, f64::max);
    let pad = ((hi - lo) * 0.06).max(0.002);
    ((lo - pad).max(0.0), hi + pad)
}

/// The section: heading, sentence, zoomed timeline, legend, and the way to the full history.
pub fn section(data: &RunData, story: &LinStory, n_anomalies: usize) -> String {
    let f = &data.calls[story.failing];
    let mut s = String::from("<section class=\"anomaly-zoom\" id=\"anomaly\"><h2>The anomaly</h2>");
    let _ = write!(s, "<p class=\"sentence\" id=\"anomaly-sentence\">{}.</p>", escape(&super::text::capitalize(&story.sentence(data))));
    let (shown, far) = chosen(data, story);
    s += &drawing(data, story, &shown);
    s += &far_note(data, &far);
    s += &legend(&[
        Swatch { fill: "#ef9a9a", stroke: "#b71c1c", dashed: false, text: "cannot be placed" },
        Swatch { fill: "#bbdefb", stroke: "#1565c0", dashed: false, text: "acknowledged write that had replaced the value read" },
        Swatch { fill: "#e1bee7", stroke: "#6a1b9a", dashed: false, text: "write of the value read" },
        Swatch { fill: "#fff3e0", stroke: "#ef6c00", dashed: false, text: "concurrent with it" },
        Swatch { fill: "#f2f2f2", stroke: "#9e9e9e", dashed: false, text: "other operations on the key" },
        Swatch { fill: "#fff", stroke: "#666", dashed: true, text: "outcome unknown" },
    ]);
    let at = secs(f.invoke_time);
    let _ = write!(
        s,
        "<p class=\"small\">x: seconds since the run began (wall clock, as recorded); each box is one operation from invoke to completion, labelled with the node it went to. \
         <a id=\"full-timeline\" href=\"timeline.html#t={at:.3}\">The full history</a> opens at {at:.3} s; \
         the same anomaly in event order and the checker's explanation are <a href=\"#failures\">below</a>{}.</p></section>",
        if n_anomalies > 1 { format!(", with the other {}", super::text::plural(n_anomalies as u64 - 1, "failing key")) } else { String::new() }
    );
    s
}

/// The lane labels (a column that does not scroll) and the timeline itself.
fn drawing(data: &RunData, story: &LinStory, shown: &[(usize, Role)]) -> String {
    let (lo, hi) = window(data, shown);
    let procs: Vec<u64> = shown.iter().map(|(i, _)| data.calls[*i].process).collect::<BTreeSet<_>>().into_iter().collect();
    let lane = |p: u64| procs.iter().position(|x| *x == p).unwrap_or(0);
    let height = AXIS_H + LANE_H * procs.len() as f64 + 6.0;
    let scale = TimeScale::new(lo, hi, 6.0, WIDTH - LABEL_W - 24.0);
    let mut labels = format!("<svg class=\"lane-labels\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{LABEL_W}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"12\">");
    for (i, p) in procs.iter().enumerate() {
        let _ = write!(labels, "<text x=\"4\" y=\"{:.0}\" font-weight=\"bold\">p{p}</text>", AXIS_H + LANE_H * i as f64 + 22.0);
    }
    labels += "</svg>";
    let mut body = format!(
        "<svg class=\"zoom\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\" font-size=\"11\" data-lo=\"{lo:.4}\" data-hi=\"{hi:.4}\">",
        WIDTH - LABEL_W
    );
    body += &scale.axis(14.0, AXIS_H - 6.0, height, 10);
    body += &fault_bands(&scale, &data.faults, AXIS_H - 4.0, height);
    for i in 0..procs.len() {
        let y = AXIS_H + LANE_H * (i + 1) as f64;
        let _ = write!(body, "<line x1=\"0\" x2=\"{:.0}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>", WIDTH);
    }
    body += &markers(data, story, &scale, height);
    let mut order = shown.to_vec();
    // The failing call is drawn last, so nothing covers it.
    order.sort_by_key(|(_, r)| std::cmp::Reverse(*r));
    for (i, role) in order {
        let c = &data.calls[i];
        body += &op_box(c, role, &scale, AXIS_H + LANE_H * lane(c.process) as f64, hi);
    }
    body += "</svg>";
    format!("<div class=\"lanes\">{labels}<div class=\"scroll\">{body}</div></div>")
}

/// Dashed lines at the moments the sentence names: the replacing write's acknowledgement and
/// the start of the failing call.
fn markers(data: &RunData, story: &LinStory, scale: &TimeScale, height: f64) -> String {
    let mut s = String::new();
    let mut line = |t: f64, color: &str, text: &str, anchor: &str| {
        let x = scale.x(t);
        let _ = write!(
            s,
            "<line class=\"marker\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.0}\" y2=\"{height:.0}\" stroke=\"{color}\" stroke-dasharray=\"5 3\"/>\
             <text x=\"{:.1}\" y=\"{:.0}\" fill=\"{color}\" text-anchor=\"{anchor}\" font-size=\"10\">{}</text>",
            AXIS_H - 6.0,
            if anchor == "end" { x - 3.0 } else { x + 3.0 },
            height - 2.0,
            escape(text)
        );
    };
    if let Some(t) = story.replaced_by.first().and_then(|&w| data.calls[w].complete_time) {
        line(secs(t), "#1565c0", &format!("acknowledged {:.3} s", secs(t)), "end");
    }
    let f = &data.calls[story.failing];
    line(secs(f.invoke_time), "#b71c1c", &format!("{} begins {:.3} s", f.f, secs(f.invoke_time)), "start");
    s
}

/// One operation: a box from invoke to completion with `node · op → result` inside.
fn op_box(c: &Call, role: Role, scale: &TimeScale, lane_y: f64, hi: f64) -> String {
    let (t0, t1) = span_s(c, hi);
    let (x0, x1) = (scale.x(t0), scale.x(t1).max(scale.x(t0) + 3.0));
    let (fill, stroke) = role.colors();
    let dash = if matches!(c.outcome, Outcome::Unknown) { " stroke-dasharray=\"4 3\"" } else { "" };
    let text = format!("{} · {}", node_of(c), label(c));
    let fit = ((x1 - x0 - 6.0) / 6.2).max(0.0) as usize;
    let shown = if fit >= 4 { truncate(&text, fit) } else { String::new() };
    let tip = format!(
        "p{} on {}: {} — invoked {:.4} s, {}",
        c.process,
        node_of(c),
        label(c),
        t0,
        match c.complete_time {
            Some(t) => format!("completed {:.4} s ({:.1} ms)", secs(t), (secs(t) - t0) * 1e3),
            None => "never completed".into(),
        }
    );
    let mut s = format!(
        "<g class=\"op {}\" data-index=\"{}\" data-process=\"{}\"><title>{}</title>\
         <rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{}\"{dash}/>",
        role.class(),
        c.invoke_index,
        c.process,
        escape(&tip),
        lane_y + 5.0,
        x1 - x0,
        LANE_H - 10.0,
        if role == Role::Failing { 2.5 } else { 1.3 }
    );
    if !shown.is_empty() {
        let _ = write!(s, "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>", x0 + 3.0, lane_y + 22.0, escape(&shown));
    }
    s + "</g>"
}

/// `read → 6`, `write 2`, `cas 1→2 (fail)`, `read (info)`.
pub fn label(c: &Call) -> String {
    let arg = if c.input.is_null() { String::new() } else { format!(" {}", short(&c.input)) };
    let out = match &c.outcome {
        Outcome::Ok(v) if &*c.f == "read" => format!(" → {}", short(v)),
        Outcome::Ok(_) => String::new(),
        Outcome::Fail => " (fail)".into(),
        Outcome::Unknown => " (info)".into(),
    };
    format!("{}{arg}{out}", c.f)
}

fn short(v: &serde_json::Value) -> String {
    truncate(&v.to_string(), 60)
}
