//! The protocol comparison of a results directory: `comparison.html`, `comparison.json` and
//! `junit.xml`, built from every run found below it (so the shards of a suite merge by being
//! written into one directory, or copied into one).
//!
//! Runs are grouped into cells by protocol × workload × nemeses. For each cell the first table
//! gives the verdict of the guarantees the protocol claims (the worst over the repetitions, and
//! how many runs held), availability (the mean of the runs' share of ok operations), p50 (the
//! median of the runs' p50) and p99 (the worst run's p99) latency, and the time to converge
//! after the heal (the worst run's). The second table holds what the protocol does *not* claim:
//! the verdicts of the extra checkers the suite ran on each history (`unclaimed.json`), and
//! availability on the minority side of partitions — the share of ok operations among those sent
//! to a node that, at that moment, could exchange messages both ways with at most half the
//! cluster (derived from the nemesis grudge and each operation's `node`).
//!
//! A run counts by its [`outcome`](super::outcome): a crashed or interrupted run counts as
//! crashed whatever its `results.json` says, and every run that did not pass contributes its
//! reason to the cell's "why" column, so "unknown" always comes with the health reason or the
//! checker's own.

use super::atomic::write_atomic;
use super::data::{secs, FaultPeriod, RunData, Tally};
use super::html::{self, badge, escape, ms, percent};
use super::index::{self, RunSummary};
use super::junit;
use super::outcome::{self, Kind};
use super::text::plural;
use faultline_checkers::Validity;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One run with what the comparison adds to its summary.
#[derive(Clone, Debug)]
pub struct RunEntry {
    pub dir: PathBuf,
    pub summary: RunSummary,
    /// Checker name → result of the checkers the protocol does not claim.
    pub unclaimed: BTreeMap<String, Value>,
    /// (ok, calls) on the minority side of partitions; `None` without partitions.
    pub minority: Option<(u64, u64)>,
}

/// Verdict counts: valid, invalid, unknown, none (the run crashed).
pub type Counts = [usize; 4];

fn slot(v: Option<Validity>) -> usize {
    match v {
        Some(Validity::Valid) => 0,
        Some(Validity::Invalid) => 1,
        Some(Validity::Unknown) => 2,
        None => 3,
    }
}

/// The worst verdict of counts: no verdict, then invalid, then unknown, then valid; `None`
/// stands for "a run crashed".
pub fn worst(c: &Counts) -> Option<Validity> {
    if c[3] > 0 {
        None
    } else if c[1] > 0 {
        Some(Validity::Invalid)
    } else if c[2] > 0 {
        Some(Validity::Unknown)
    } else {
        Some(Validity::Valid)
    }
}

/// One protocol × workload × nemeses cell.
#[derive(Clone, Debug, Default)]
pub struct Cell {
    pub protocol: String,
    pub workload: String,
    pub nemesis: String,
    pub claims: Vec<String>,
    pub counts: Counts,
    pub availability: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub time_to_converge_ms: Option<f64>,
    pub minority: Option<(u64, u64)>,
    pub unclaimed: BTreeMap<String, Counts>,
    /// Run directories relative to the results directory (empty for a run without one).
    pub runs: Vec<String>,
    /// Why runs did not pass (their outcome's message) → how many runs said so.
    pub reasons: BTreeMap<String, usize>,
}

/// Everything the comparison found.
pub struct Comparison {
    pub runs: Vec<RunEntry>,
    pub cells: Vec<Cell>,
}

/// Loads every run below `results_dir`, newest first.
pub fn load(results_dir: &Path) -> Vec<RunEntry> {
    index::collect(results_dir).into_iter().map(|s| entry(results_dir, s)).collect()
}

fn read_json(path: &Path) -> Option<Value> {
    std::fs::read_to_string(path).ok().and_then(|s| serde_json::from_str(&s).ok())
}

fn entry(results_dir: &Path, summary: RunSummary) -> RunEntry {
    let dir = results_dir.join(&summary.path);
    // A run the suite started that made no directory has nothing more to read.
    if summary.path.is_empty() {
        return RunEntry { dir, summary, unclaimed: BTreeMap::new(), minority: None };
    }
    let stored = read_json(&dir.join("unclaimed.json")).unwrap_or_else(|| json!({}));
    let minority = minority_cached(&dir, &summary, &stored);
    let unclaimed = stored.get("checks").and_then(Value::as_object).map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    RunEntry { dir, summary, unclaimed, minority }
}

/// The minority share of a run: it needs the history, so it is computed once and cached in
/// `minority.json` (its own file: the suite writes `unclaimed.json` at the same time, and a
/// read-modify-write of one shared file would lose one of the two). Older runs kept it in
/// `unclaimed.json`; that is still read.
fn minority_cached(dir: &Path, summary: &RunSummary, unclaimed: &Value) -> Option<(u64, u64)> {
    let has_partitions = summary.nemesis.iter().any(|n| n.starts_with("partition") || n == "all");
    if !has_partitions {
        return None;
    }
    let cache = dir.join("minority.json");
    let stored = read_json(&cache).or_else(|| unclaimed.get("minority").map(|m| json!({ "minority": m })));
    let stored = match stored {
        Some(v) => v,
        None if summary.verdict().is_some() => {
            let m = RunData::load(dir).ok().and_then(|d| minority_availability(&d));
            let v = json!({"minority": m.map_or(Value::Null, |(ok, n)| json!({"ok": ok, "calls": n, "availability": ok as f64 / n.max(1) as f64}))});
            let _ = write_atomic(&cache, serde_json::to_string_pretty(&v).unwrap_or_default().as_bytes());
            v
        }
        None => return None,
    };
    let m = stored.get("minority")?;
    Some((m.get("ok")?.as_u64()?, m.get("calls")?.as_u64()?))
}

/// The nodes a partition leaves able to talk both ways with at most half the cluster.
pub fn minority_nodes(grudge: &Value, nodes: &BTreeSet<String>) -> BTreeSet<String> {
    let cut = |a: &str, b: &str| {
        grudge.get(a).and_then(Value::as_array).is_some_and(|l| l.iter().any(|x| x.as_str() == Some(b)))
    };
    nodes
        .iter()
        .filter(|a| {
            let reach = nodes.iter().filter(|b| a == b || (!cut(a, b) && !cut(b, a))).count();
            reach * 2 <= nodes.len()
        })
        .cloned()
        .collect()
}

/// The cluster's node names: `n1..nN` from `test.json`'s `nodes`, plus any named in grudges.
fn cluster(data: &RunData, periods: &[&FaultPeriod]) -> BTreeSet<String> {
    let n = data.test.get("nodes").and_then(Value::as_u64).unwrap_or(0);
    let mut set: BTreeSet<String> = (1..=n).map(|i| format!("n{i}")).collect();
    for p in periods {
        if let Some(g) = p.detail.get("grudge").and_then(Value::as_object) {
            for (k, v) in g {
                set.insert(k.clone());
                set.extend(v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(str::to_string)));
            }
        }
    }
    set
}

/// (ok, calls) among workload calls invoked on a minority-side node during a partition.
pub fn minority_availability(data: &RunData) -> Option<(u64, u64)> {
    let periods: Vec<&FaultPeriod> = data.faults.iter().filter(|p| p.detail.get("grudge").is_some()).collect();
    if periods.is_empty() {
        return None;
    }
    let nodes = cluster(data, &periods);
    let sides: Vec<(f64, f64, BTreeSet<String>)> =
        periods.iter().map(|p| (p.start_s, p.stop_s, minority_nodes(&p.detail["grudge"], &nodes))).collect();
    let mut t = Tally::default();
    for c in data.workload_calls() {
        let (Some(node), at) = (c.node.as_deref(), secs(c.invoke_time)) else { continue };
        if sides.iter().any(|(a, b, m)| *a <= at && at < *b && m.contains(node)) {
            t.add(c);
        }
    }
    (t.total() > 0).then_some((t.ok, t.total()))
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return None;
    }
    let m = v.len() / 2;
    Some(if v.len() % 2 == 0 { (v[m - 1] + v[m]) / 2.0 } else { v[m] })
}

fn max(v: impl Iterator<Item = f64>) -> Option<f64> {
    v.fold(None, |acc, x| Some(acc.map_or(x, |a: f64| a.max(x))))
}

/// Groups runs into cells, in protocol, workload, nemesis order.
pub fn cells(runs: &[RunEntry]) -> Vec<Cell> {
    let mut groups: BTreeMap<(String, String, String), Vec<&RunEntry>> = BTreeMap::new();
    for r in runs {
        let s = &r.summary;
        groups.entry((s.protocol.clone(), s.workload.clone(), s.nemesis_label())).or_default().push(r);
    }
    groups.into_iter().map(|((protocol, workload, nemesis), rs)| cell(protocol, workload, nemesis, &rs)).collect()
}

fn cell(protocol: String, workload: String, nemesis: String, rs: &[&RunEntry]) -> Cell {
    let mut c = Cell { protocol, workload, nemesis, ..Cell::default() };
    for r in rs {
        let o = outcome::classify(&r.summary);
        c.counts[o.kind as usize] += 1;
        if o.kind != Kind::Pass {
            *c.reasons.entry(o.message).or_default() += 1;
        }
        c.runs.push(r.summary.path.clone());
        for (k, v) in &r.unclaimed {
            c.unclaimed.entry(k.clone()).or_default()[slot(v.get("valid").and_then(Validity::from_json))] += 1;
        }
        if let Some((ok, n)) = r.minority {
            let (o, t) = c.minority.unwrap_or((0, 0));
            c.minority = Some((o + ok, t + n));
        }
        for claim in &r.summary.claims {
            if !c.claims.contains(claim) {
                c.claims.push(claim.clone());
            }
        }
    }
    let avail: Vec<f64> = rs.iter().filter_map(|r| r.summary.availability).collect();
    c.availability = (!avail.is_empty()).then(|| avail.iter().sum::<f64>() / avail.len() as f64);
    c.p50_ms = median(rs.iter().filter_map(|r| r.summary.p50_ms).collect());
    c.p99_ms = max(rs.iter().filter_map(|r| r.summary.p99_ms));
    c.time_to_converge_ms = max(rs.iter().filter_map(|r| r.summary.time_to_converge_ms));
    c
}

fn counts_text(c: &Counts) -> String {
    let total: usize = c.iter().sum();
    let mut parts = vec![format!("{}/{total} valid", c[0])];
    for (i, w) in [(1, "invalid"), (2, "unknown"), (3, "crashed")] {
        if c[i] > 0 {
            parts.push(format!("{} {w}", c[i]));
        }
    }
    parts.join(", ")
}

fn verdict_cell(c: &Counts, class: &str) -> String {
    let w = worst(c);
    let (_, vclass) = html::verdict_word(w);
    format!("<td class=\"verdict {class} c-{vclass}\" data-verdict=\"{}\">{} <span class=\"small\">{}</span></td>", verdict_json(w), badge(w), counts_text(c))
}

fn verdict_json(v: Option<Validity>) -> String {
    match v {
        Some(v) => v.to_json().as_str().map(str::to_string).unwrap_or_else(|| v.to_json().to_string()),
        None => "crashed".into(),
    }
}

fn minority_share(m: Option<(u64, u64)>) -> Option<f64> {
    m.map(|(ok, n)| ok as f64 / n.max(1) as f64)
}

/// The comparison page.
pub fn render(cmp: &Comparison, title: &str) -> String {
    let mut s = html::page_start(title);
    let _ = write!(s, "<h1>{}</h1><p>{} in {}. <a href=\"index.html\">All runs</a> · <a href=\"comparison.json\">comparison.json</a> · <a href=\"junit.xml\">junit.xml</a></p>", escape(title), plural(cmp.runs.len() as u64, "run"), plural(cmp.cells.len() as u64, "cell"));
    s += "<h2>Claimed guarantees</h2><p class=\"small muted\">Per protocol × workload × faults: the verdict of the checkers the protocol's claims imply (worst over the runs), availability (mean share of ok operations), p50 (median of the runs) and p99 (worst run) latency of ok operations, and the time from the heal until every node read the same final state (worst run).</p>";
    s += "<table id=\"claimed\">";
    s += &html::header(&["protocol", "workload", "faults", "claims", "runs", "claimed verdict", "why not valid", "availability", "p50 ms", "p99 ms", "converge after heal ms"]);
    for c in &cmp.cells {
        let _ = write!(
            s,
            "<tr data-cell=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num runs\">{}</td>{}<td class=\"why\">{}</td><td class=\"num availability\">{}</td><td class=\"num p50\">{}</td><td class=\"num p99\">{}</td><td class=\"num converge\">{}</td></tr>\n",
            escape(&cell_id(c)),
            escape(&c.protocol),
            escape(&c.workload),
            escape(&c.nemesis),
            escape(&c.claims.join(", ")),
            run_links(c),
            verdict_cell(&c.counts, "claimed"),
            reasons_html(&c.reasons),
            percent(c.availability),
            ms(c.p50_ms),
            ms(c.p99_ms),
            ms(c.time_to_converge_ms),
        );
    }
    s += "</table>";
    s += &unclaimed_table(cmp);
    s += html::page_end();
    s
}

fn run_links(c: &Cell) -> String {
    let links: Vec<String> = c
        .runs
        .iter()
        .enumerate()
        .map(|(i, r)| if r.is_empty() { format!("{}", i + 1) } else { html::link(&format!("{r}/report.html"), &(i + 1).to_string()) })
        .collect();
    format!("{} <span class=\"small\">({})</span>", c.runs.len(), links.join(" "))
}

/// The reasons of the runs that did not pass, most frequent first.
fn reasons_html(reasons: &BTreeMap<String, usize>) -> String {
    let mut v: Vec<(&String, &usize)> = reasons.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    v.iter().map(|(r, n)| format!("<div>{}{}</div>", if **n > 1 { format!("{n}× ") } else { String::new() }, escape(r))).collect()
}

/// The identifier of a cell in the pages and in tests: `protocol/workload/faults`.
pub fn cell_id(c: &Cell) -> String {
    format!("{}/{}/{}", c.protocol, c.workload, c.nemesis)
}

fn unclaimed_table(cmp: &Comparison) -> String {
    let checks: BTreeSet<&String> = cmp.cells.iter().flat_map(|c| c.unclaimed.keys()).collect();
    let mut s = String::from(
        "<h2>Guarantees not claimed</h2><p class=\"small muted\">Each protocol checked against what it does not promise: \
         the extra checkers the suite ran on every history (a violation here is information, not a failure), and \
         availability on the minority side of partitions (share of ok operations sent to a node that could talk both ways with at most half the cluster).</p>",
    );
    s += "<table id=\"unclaimed\"><thead><tr><th>protocol</th><th>workload</th><th>faults</th><th>claims</th><th>availability in minority</th>";
    for k in &checks {
        let _ = write!(s, "<th>{}</th>", escape(k));
    }
    s += "</tr></thead>\n";
    for c in &cmp.cells {
        let minority = match c.minority {
            Some((ok, n)) => format!("{} <span class=\"small\">({ok}/{n})</span>", percent(minority_share(c.minority))),
            None => "–".into(),
        };
        let _ = write!(
            s,
            "<tr data-cell=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num minority\">{minority}</td>",
            escape(&cell_id(c)),
            escape(&c.protocol),
            escape(&c.workload),
            escape(&c.nemesis),
            escape(&c.claims.join(", ")),
        );
        for k in &checks {
            match c.unclaimed.get(*k) {
                Some(counts) => s += &verdict_cell(counts, &format!("unclaimed-{}", class_safe(k))),
                None => s += "<td class=\"muted\">not checked</td>",
            }
        }
        s += "</tr>\n";
    }
    s + "</table>"
}

fn class_safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

/// The comparison as JSON.
pub fn to_json(cmp: &Comparison) -> Value {
    let counts = |c: &Counts| json!({"valid": c[0], "invalid": c[1], "unknown": c[2], "crashed": c[3]});
    let cells: Vec<Value> = cmp
        .cells
        .iter()
        .map(|c| {
            json!({
                "protocol": c.protocol, "workload": c.workload, "nemesis": c.nemesis, "claims": c.claims,
                "runs": c.runs, "claimed": {"verdict": verdict_json(worst(&c.counts)), "counts": counts(&c.counts)},
                "availability": c.availability, "p50_ms": c.p50_ms, "p99_ms": c.p99_ms,
                "time_to_converge_ms": c.time_to_converge_ms,
                "minority_availability": minority_share(c.minority),
                "unclaimed": c.unclaimed.iter().map(|(k, v)| (k.clone(), json!({"verdict": verdict_json(worst(v)), "counts": counts(v)}))).collect::<serde_json::Map<_, _>>(),
                "reasons": c.reasons.iter().map(|(k, n)| json!({"reason": k, "runs": n})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"runs": cmp.runs.len(), "cells": cells})
}

/// Writes `comparison.html`, `comparison.json` and `junit.xml` for every run below `results_dir`.
pub fn write_comparison(results_dir: &Path) -> anyhow::Result<Comparison> {
    let runs = load(results_dir);
    let cells = cells(&runs);
    let cmp = Comparison { runs, cells };
    let title = format!("faultline comparison: {}", results_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    write_atomic(&results_dir.join("comparison.html"), render(&cmp, &title).as_bytes())?;
    write_atomic(&results_dir.join("comparison.json"), serde_json::to_string_pretty(&to_json(&cmp))?.as_bytes())?;
    write_atomic(&results_dir.join("junit.xml"), junit::render(&cmp.runs)?.as_bytes())?;
    Ok(cmp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize) -> BTreeSet<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn minority_of_halves_and_isolated_node() {
        // n1, n2 | n3, n4, n5, each side cut from the other both ways.
        let g = json!({"n1": ["n3", "n4", "n5"], "n2": ["n3", "n4", "n5"], "n3": ["n1", "n2"], "n4": ["n1", "n2"], "n5": ["n1", "n2"]});
        assert_eq!(minority_nodes(&g, &nodes(5)), ["n1", "n2"].iter().map(|s| s.to_string()).collect());
        // A one-way cut is enough to lose a node: n1 stops receiving from everyone.
        let g = json!({"n1": ["n2", "n3"]});
        assert_eq!(minority_nodes(&g, &nodes(3)), ["n1"].iter().map(|s| s.to_string()).collect());
        // A majorities ring leaves nobody in a minority.
        let g = json!({"n1": ["n3", "n4"], "n2": ["n4", "n5"], "n3": ["n5", "n1"], "n4": ["n1", "n2"], "n5": ["n2", "n3"]});
        assert!(minority_nodes(&g, &nodes(5)).is_empty());
    }

    #[test]
    fn worst_orders_crash_invalid_unknown_valid() {
        assert_eq!(worst(&[3, 0, 0, 0]), Some(Validity::Valid));
        assert_eq!(worst(&[3, 0, 1, 0]), Some(Validity::Unknown));
        assert_eq!(worst(&[3, 1, 1, 0]), Some(Validity::Invalid));
        assert_eq!(worst(&[3, 1, 1, 1]), None);
    }
}
