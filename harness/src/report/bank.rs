//! A bank failure drawn for a person: the total of every read over time with the bad reads
//! marked, the first bad read (when, on which node, its sum against the expected total), the
//! transfers in flight at that moment with the one whose amount explains the difference (a
//! half-committed transfer: debited and never credited, or the reverse), and the final balances
//! of every node side by side with their sums, the wrong ones highlighted.
//!
//! The checker reports counts and a few examples; everything here is recomputed from the history
//! (every read and transfer, with its node and time) against the checker's `total`, so the
//! drawing shows all reads, not only the examples.

use super::data::{secs, RunData};
use super::html::{escape, header};
use super::story::{faults_text, node_of, proc_of, span_s};
use super::svg::{fault_bands, legend, Swatch, TimeScale};
use super::text::{natural_cmp, nice_step, nice_ticks, plural, secs_text, tick_label};
use faultline_checkers::{Call, Outcome};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// Most points drawn in the total-over-time plot; good reads are thinned above it, bad kept.
const POINTS_MAX: usize = 4000;
/// Most in-flight transfers listed.
const IN_FLIGHT_MAX: usize = 20;

/// One read of all balances.
#[derive(Debug, Clone)]
pub struct BankRead {
    /// Index into `RunData::calls`.
    pub call: usize,
    pub balances: Vec<(String, i128)>,
    pub sum: i128,
    pub bad: bool,
}

/// A bank result joined with the history.
#[derive(Debug, Clone)]
pub struct BankStory {
    pub total: i128,
    pub reads: Vec<BankRead>,
    /// Index into `reads` of the first bad read (by invoke time).
    pub first_bad: Option<usize>,
    /// Transfers (indexes into `RunData::calls`) that may have been applied partly when the first
    /// bad read ran: concurrent with it, or of unknown outcome and invoked before it ended.
    pub in_flight: Vec<usize>,
    /// Among them, the ones whose amount equals the difference from the total.
    pub explains: Vec<usize>,
}

fn int(v: &Value) -> Option<i128> {
    v.as_i64().map(i128::from).or_else(|| v.as_u64().map(i128::from)).or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i128))
}

/// The balances of a read, naturally sorted by account.
fn balances(v: &Value) -> Option<Vec<(String, i128)>> {
    let m = v.as_object()?;
    let mut b: Vec<(String, i128)> = m.iter().map(|(k, x)| int(x).map(|x| (k.clone(), x))).collect::<Option<_>>()?;
    b.sort_by(|a, c| natural_cmp(&a.0, &c.0));
    Some(b)
}

impl BankStory {
    /// `None` when the result has no total or the history no readable reads.
    pub fn new(data: &RunData, result: &Value) -> Option<BankStory> {
        let total = result.get("total").and_then(int)?;
        let negatives_count = result.get("negative_count").and_then(Value::as_u64).unwrap_or(0) > 0;
        let mut reads: Vec<BankRead> = Vec::new();
        for (i, c) in data.calls.iter().enumerate().filter(|(_, c)| &*c.f == "read") {
            let Some(b) = c.output().and_then(balances) else { continue };
            let sum = b.iter().map(|x| x.1).fold(0i128, i128::saturating_add);
            let bad = sum != total || (negatives_count && b.iter().any(|x| x.1 < 0));
            reads.push(BankRead { call: i, balances: b, sum, bad });
        }
        if reads.is_empty() {
            return None;
        }
        let first_bad = reads.iter().enumerate().filter(|(_, r)| r.bad).min_by_key(|(_, r)| data.calls[r.call].invoke_time).map(|(i, _)| i);
        let in_flight = first_bad.map(|b| in_flight(data, &data.calls[reads[b].call])).unwrap_or_default();
        let explains = first_bad
            .map(|b| {
                let diff = (reads[b].sum - total).abs();
                in_flight.iter().copied().filter(|&t| data.calls[t].input.get("amount").and_then(int) == Some(diff) && diff != 0).collect()
            })
            .unwrap_or_default();
        Some(BankStory { total, reads, first_bad, in_flight, explains })
    }

    /// The first bad read in one sentence, with the transfer that explains it and the faults.
    pub fn sentence(&self, data: &RunData) -> String {
        let Some(b) = self.first_bad.map(|b| &self.reads[b]) else {
            return format!("every read summed to {}", self.total);
        };
        let c = &data.calls[b.call];
        let when = format!("read at {} on {}", secs_text(secs(c.invoke_time)), node_of(c));
        let what = if b.sum != self.total {
            let diff = b.sum - self.total;
            format!("{when} summed to {} instead of {} ({} {})", b.sum, self.total, diff.abs(), if diff < 0 { "missing" } else { "too many" })
        } else {
            let neg: Vec<String> = b.balances.iter().filter(|x| x.1 < 0).map(|(k, x)| format!("account {k} at {x}")).collect();
            format!("{when} showed {}", neg.join(", "))
        };
        let why = match self.explains.first() {
            Some(&t) => format!("; {}", half_committed(&data.calls[t], b.sum - self.total)),
            None if !self.in_flight.is_empty() => format!("; {} in flight", plural(self.in_flight.len() as u64, "transfer")),
            None => String::new(),
        };
        let active: Vec<usize> = {
            let (t0, t1) = span_s(c, data.end_s);
            (0..data.faults.len()).filter(|&i| data.faults[i].start_s <= t1 && t0 < data.faults[i].stop_s).collect()
        };
        format!("{what}{why}; {}", faults_text(data, &active, secs(c.invoke_time), c.node.as_deref()))
    }
}

/// Transfers that may have been partly applied while `read` ran, nearest first.
fn in_flight(data: &RunData, read: &Call) -> Vec<usize> {
    let read_end = read.complete_index.unwrap_or(u64::MAX);
    let mut v: Vec<usize> = (0..data.calls.len())
        .filter(|&i| {
            let t = &data.calls[i];
            let overlaps = t.invoke_index < read_end && t.complete_index.map_or(true, |e| e > read.invoke_index);
            let in_doubt = matches!(t.outcome, Outcome::Unknown) && t.invoke_index < read_end;
            &*t.f == "transfer" && t.outcome != Outcome::Fail && (overlaps || in_doubt)
        })
        .collect();
    v.sort_by_key(|&i| data.calls[i].invoke_time.abs_diff(read.invoke_time));
    v.truncate(IN_FLIGHT_MAX);
    v
}

/// `transfer of 10 from account 3 to 4 (p7 on n1, outcome unknown) looks half-committed: debited, never credited`.
fn half_committed(t: &Call, diff: i128) -> String {
    let g = |k: &str| t.input.get(k).map(|v| super::story::value_text(v)).unwrap_or_else(|| "?".into());
    let outcome = match t.outcome {
        Outcome::Ok(_) => "acknowledged".to_string(),
        Outcome::Unknown => "outcome unknown".to_string(),
        Outcome::Fail => "failed".to_string(),
    };
    let half = if diff < 0 { "debited, never credited" } else { "credited, never debited" };
    format!("transfer of {} from account {} to {} ({} on {}, {outcome}) looks half-committed: {half}", g("amount"), g("from"), g("to"), proc_of(t), node_of(t))
}

/// The bank section: sentence, total over time, first bad read, transfers in flight, finals.
pub fn section(data: &RunData, story: &BankStory) -> String {
    let mut s = format!("<p class=\"sentence\" id=\"bank-sentence\">{}.</p>", escape(&super::text::capitalize(&story.sentence(data))));
    s += &total_plot(data, story);
    s += &first_bad_table(data, story);
    s += &in_flight_table(data, story);
    s += &finals_table(data, story);
    s
}

/// Read totals over time as an inline SVG: good reads green dots, bad reads red crosses, the
/// expected total a line, the first bad read ringed and labelled, faults shaded.
pub fn total_plot(data: &RunData, story: &BankStory) -> String {
    let (w, h, left, top, bottom) = (1000.0, 300.0, 70.0, 12.0, 34.0);
    let xs = TimeScale::new(0.0, data.end_s.max(1.0), left, w - left - 16.0);
    let (ylo, yhi) = y_range(story);
    let y = |v: i128| top + (h - top - bottom) * (1.0 - ((v as f64 - ylo) / (yhi - ylo)).clamp(0.0, 1.0));
    let mut s = format!("<div class=\"plot\"><svg class=\"bank-total\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">");
    s += &xs.axis(h - bottom + 16.0, top, h - bottom, 10);
    s += &y_axis(ylo, yhi, left, w - 16.0, &y);
    s += &fault_bands(&xs, &data.faults, top, h - bottom);
    let _ = write!(s, "<line class=\"expected\" x1=\"{left}\" x2=\"{:.0}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#2e7d32\" stroke-dasharray=\"6 3\"/>", w - 16.0, y(story.total), y(story.total));
    let _ = write!(s, "<text x=\"{:.0}\" y=\"{:.1}\" fill=\"#2e7d32\" text-anchor=\"end\">expected {}</text>", w - 20.0, y(story.total) - 4.0, story.total);
    s += &points(data, story, &xs, &y);
    let _ = write!(s, "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\" fill=\"#555\">time since start (s), by invoke</text></svg></div>", left + (w - left) / 2.0, h - 2.0);
    s + &legend(&[
        Swatch { fill: "#2e7d32", stroke: "#2e7d32", dashed: false, text: "read with the right total" },
        Swatch { fill: "#c62828", stroke: "#c62828", dashed: false, text: "bad read (×), first one ringed" },
        Swatch { fill: "#fff", stroke: "#2e7d32", dashed: true, text: "expected total" },
    ])
}

fn y_range(story: &BankStory) -> (f64, f64) {
    let (lo, hi) = story.reads.iter().fold((story.total, story.total), |(lo, hi), r| (lo.min(r.sum), hi.max(r.sum)));
    let pad = (((hi - lo) as f64) * 0.1).max(1.0);
    (lo as f64 - pad, hi as f64 + pad)
}

fn y_axis(lo: f64, hi: f64, left: f64, right: f64, y: &dyn Fn(i128) -> f64) -> String {
    let step = nice_step(hi - lo, 6);
    let mut s = String::new();
    for v in nice_ticks(lo, hi, 6) {
        let yy = y(v.round() as i128);
        let _ = write!(
            s,
            "<line x1=\"{left}\" x2=\"{right:.0}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#eee\"/><text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#555\">{}</text>",
            left - 6.0,
            yy + 4.0,
            tick_label(v, step)
        );
    }
    s
}

fn points(data: &RunData, story: &BankStory, xs: &TimeScale, y: &dyn Fn(i128) -> f64) -> String {
    let good = story.reads.iter().filter(|r| !r.bad).count();
    let stride = good.div_ceil(POINTS_MAX).max(1);
    let mut s = String::new();
    for (_, r) in story.reads.iter().filter(|r| !r.bad).enumerate().filter(|(k, _)| k % stride == 0) {
        let _ = write!(s, "<circle class=\"good-read\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"#2e7d32\" opacity=\"0.6\"/>", xs.x(secs(data.calls[r.call].invoke_time)), y(r.sum));
    }
    for r in story.reads.iter().filter(|r| r.bad).take(POINTS_MAX) {
        let c = &data.calls[r.call];
        let (cx, cy) = (xs.x(secs(c.invoke_time)), y(r.sum));
        let _ = write!(
            s,
            "<g class=\"bad-read\" data-index=\"{}\"><title>{}</title><path d=\"M{:.1} {:.1}l8 8m0 -8l-8 8\" stroke=\"#c62828\" stroke-width=\"2\"/></g>",
            c.invoke_index,
            escape(&format!("read at {:.3} s on {}: sum {}", secs(c.invoke_time), node_of(c), r.sum)),
            cx - 4.0,
            cy - 4.0
        );
    }
    if let Some(b) = story.first_bad.map(|b| &story.reads[b]) {
        let c = &data.calls[b.call];
        let (cx, cy) = (xs.x(secs(c.invoke_time)), y(b.sum));
        let _ = write!(
            s,
            "<circle class=\"first-bad\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"9\" fill=\"none\" stroke=\"#c62828\" stroke-width=\"2\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#c62828\" font-weight=\"bold\">first bad read {:.2} s on {}: {}</text>",
            cx + 12.0,
            cy + 4.0,
            secs(c.invoke_time),
            escape(&node_of(c)),
            b.sum
        );
    }
    s
}

/// Account owners: account `i` lives on member `i % n` of the sorted members (docs/design.md);
/// the members are the nodes the history names, when there are as many as the test had.
fn owners(data: &RunData) -> Option<Vec<String>> {
    let mut nodes: Vec<String> = data.calls.iter().filter_map(|c| c.node.as_deref().map(str::to_string)).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let n = data.test.get("nodes").and_then(Value::as_u64)? as usize;
    (nodes.len() == n && n > 0).then(|| {
        nodes.sort();
        nodes
    })
}

fn owner_of(owners: &Option<Vec<String>>, account: &str) -> String {
    match (owners, account.parse::<usize>()) {
        (Some(o), Ok(i)) => o[i % o.len()].clone(),
        _ => "–".into(),
    }
}

/// The first bad read's balances next to the last good read before it, the changed ones marked,
/// with sums per node that holds the accounts.
fn first_bad_table(data: &RunData, story: &BankStory) -> String {
    let Some(bi) = story.first_bad else { return String::new() };
    let bad = &story.reads[bi];
    let c = &data.calls[bad.call];
    let prev = story.reads.iter().filter(|r| !r.bad && data.calls[r.call].complete_index.is_some_and(|e| e < c.invoke_index)).max_by_key(|r| data.calls[r.call].complete_index);
    let own = owners(data);
    let mut s = format!(
        "<h4 id=\"first-bad-read\">The first bad read: {} at {:.3} s on {}</h4><table class=\"bank-read\">",
        escape(&proc_of(c)),
        secs(c.invoke_time),
        escape(&node_of(c))
    );
    let prev_head = prev.map(|p| format!("last good read ({:.3} s on {})", secs(data.calls[p.call].invoke_time), node_of(&data.calls[p.call]))).unwrap_or_else(|| "last good read (none)".into());
    s += &header(&["account", "held by", &prev_head, "first bad read", "change"]);
    let before: HashMap<&str, i128> = prev.map(|p| p.balances.iter().map(|(k, v)| (k.as_str(), *v)).collect()).unwrap_or_default();
    let mut by_owner: BTreeMap<String, (i128, i128)> = BTreeMap::new();
    for (k, v) in &bad.balances {
        let old = before.get(k.as_str()).copied();
        let o = owner_of(&own, k);
        let e = by_owner.entry(o.clone()).or_default();
        e.0 += old.unwrap_or(0);
        e.1 += v;
        let change = old.map(|o| v - o).filter(|d| *d != 0);
        let _ = write!(
            s,
            "<tr{}><td class=\"mono\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num{}\">{v}</td><td class=\"num\">{}</td></tr>",
            if change.is_some() { " class=\"changed\"" } else { "" },
            escape(k),
            escape(&o),
            old.map_or("–".into(), |o| o.to_string()),
            if *v < 0 { " diff" } else { "" },
            change.map_or(String::new(), |d| format!("{d:+}"))
        );
    }
    for (o, (a, b)) in &by_owner {
        let _ = write!(s, "<tr class=\"subtotal\"><td colspan=\"2\">sum on {}</td><td class=\"num\">{a}</td><td class=\"num\">{b}</td><td class=\"num\">{}</td></tr>", escape(o), if b != a { format!("{:+}", b - a) } else { String::new() });
    }
    let _ = write!(
        s,
        "<tr class=\"total\"><td colspan=\"2\"><b>total</b> (expected {})</td><td class=\"num\">{}</td><td class=\"num wrong-total{}\"><b>{}</b></td><td class=\"num\">{:+}</td></tr></table>",
        story.total,
        prev.map_or("–".into(), |p| p.sum.to_string()),
        if bad.sum != story.total { " diff" } else { "" },
        bad.sum,
        bad.sum - story.total
    );
    s
}

fn in_flight_table(data: &RunData, story: &BankStory) -> String {
    if story.first_bad.is_none() {
        return String::new();
    }
    let mut s = format!("<h4>Transfers in flight at that moment ({})</h4>", story.in_flight.len());
    if story.in_flight.is_empty() {
        return s + "<p class=\"muted\">None: no transfer overlapped the read, and none of unknown outcome had begun before it.</p>";
    }
    s += "<table class=\"in-flight\">";
    s += &header(&["process", "node", "from", "to", "amount", "invoked s", "completed s", "outcome", ""]);
    for &i in &story.in_flight {
        let t = &data.calls[i];
        let g = |k: &str| t.input.get(k).map(|v| super::html::json_text(v, 40)).unwrap_or_default();
        let explains = story.explains.contains(&i);
        let _ = write!(
            s,
            "<tr{}><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.3}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
            if explains { " class=\"explains\"" } else { "" },
            escape(&proc_of(t)),
            escape(&node_of(t)),
            g("from"),
            g("to"),
            g("amount"),
            secs(t.invoke_time),
            t.complete_time.map_or("never".into(), |x| format!("{:.3}", secs(x))),
            match t.outcome { Outcome::Ok(_) => "ok", Outcome::Unknown => "unknown", Outcome::Fail => "fail" },
            if explains { "<b>its amount is the difference: half-committed?</b>" } else { "" }
        );
    }
    s + "</table>"
}

/// Every node's final read side by side, one row per account, with the sum of each; a balance
/// that differs from most nodes and a sum that is not the total are highlighted.
fn finals_table(data: &RunData, story: &BankStory) -> String {
    let finals: BTreeMap<String, &BankRead> =
        story.reads.iter().filter(|r| data.calls[r.call].final_read).map(|r| (node_of(&data.calls[r.call]), r)).collect();
    if finals.is_empty() {
        return String::new();
    }
    let mut nodes: Vec<&String> = finals.keys().collect();
    nodes.sort_by(|a, b| natural_cmp(a, b));
    let mut accounts: Vec<String> = finals.values().flat_map(|r| r.balances.iter().map(|b| b.0.clone())).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    super::text::sort_natural(&mut accounts);
    let own = owners(data);
    let mut s = String::from("<h4 id=\"bank-finals\">Final balances on every node</h4><div class=\"scroll\"><table class=\"bank-finals\"><thead><tr><th>account</th><th>held by</th>");
    for n in &nodes {
        let _ = write!(s, "<th>{}</th>", escape(n));
    }
    s += "</tr></thead>";
    for a in &accounts {
        let vals: Vec<Option<i128>> = nodes.iter().map(|n| finals[*n].balances.iter().find(|b| &b.0 == a).map(|b| b.1)).collect();
        let majority = majority(&vals);
        let _ = write!(s, "<tr><td class=\"mono\">{}</td><td>{}</td>", escape(a), escape(&owner_of(&own, a)));
        for v in vals {
            let differs = v != majority || v.is_some_and(|x| x < 0);
            let _ = write!(s, "<td class=\"num{}\">{}</td>", if differs { " diff" } else { "" }, v.map_or("–".into(), |x| x.to_string()));
        }
        s += "</tr>";
    }
    s += "<tr class=\"total\"><td colspan=\"2\"><b>sum</b></td>";
    for n in &nodes {
        let sum = finals[*n].sum;
        let _ = write!(s, "<td class=\"num{}\"><b>{sum}</b></td>", if sum != story.total { " diff wrong-total" } else { "" });
    }
    let _ = write!(s, "</tr></table></div><p class=\"small muted\">Expected total: {}. Red: a sum that is not the total, or a balance that differs from what most nodes read.</p>", story.total);
    s
}

fn majority(vals: &[Option<i128>]) -> Option<i128> {
    let mut freq: BTreeMap<i128, usize> = BTreeMap::new();
    for v in vals.iter().flatten() {
        *freq.entry(*v).or_default() += 1;
    }
    freq.into_iter().max_by_key(|(v, n)| (*n, std::cmp::Reverse(*v))).map(|(v, _)| v)
}
