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
//! availability on the side of partitions cut off from a majority (see [`crate::run::sides`]).
//!
//! Above the tables, one card per protocol sums its cells up for a person: its claims, the
//! verdicts of claimed and unclaimed checks (each linking to a run that shows the anomaly),
//! availability when quiet, on the majority side and on the cut-off side, latency, the share
//! of stale reads, the time to converge after the heal and, for the bank, what blocked while a
//! node was down; and a plot ([`super::cap_plot`]) puts every protocol at its cut-off-side
//! availability against its share of fresh reads, where CP, AP and 2PC land apart.
//! Every figure comes from the runs' `results.json` (`stats.sides`, `stats.staleness`,
//! `stats.bank_blocking`); a run written before those existed is measured from its history.
//!
//! A run counts by its [`outcome`](super::outcome): a crashed or interrupted run counts as
//! crashed whatever its `results.json` says, and every run that did not pass contributes its
//! reason to the cell's "why" column, so "unknown" always comes with the health reason or the
//! checker's own.

use super::atomic::write_atomic;
use super::data::RunData;
use super::html::{self, ms, percent};
use super::index::{self, RunSummary};
use super::junit;
use super::outcome::{self, Kind};
use super::text::plural;
use crate::run::sides::{self, Side};
use faultline_checkers::Validity;
use maud::{html as markup, Markup, PreEscaped};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// (served, sent) operation counts behind one availability figure.
pub type Served = (u64, u64);

fn add(a: &mut Served, b: Served) {
    a.0 += b.0;
    a.1 += b.1;
}

fn share(s: Served) -> Option<f64> {
    (s.1 > 0).then(|| s.0 as f64 / s.1 as f64)
}

/// What the comparison measures of one run (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Figures {
    /// Whether a partition was active at some time of the run.
    pub partitioned: bool,
    pub quiet: Served,
    /// Majority side, operations invoked once the partition had settled.
    pub majority: Served,
    /// Minority and isolated sides together.
    pub cut_off: Served,
    pub cut_off_settled: Served,
    /// (stale reads, reads).
    pub stale: Option<(u64, u64)>,
    pub stale_age_p99_ms: Option<f64>,
    /// Bank: transfers not served while a node was down, and transfers left in doubt.
    pub blocked: Option<(u64, u64)>,
}

fn served_of(v: &Value) -> Served {
    (v.get("served").and_then(Value::as_u64).unwrap_or(0), v.get("sent").and_then(Value::as_u64).unwrap_or(0))
}

impl Figures {
    /// The figures `results.json` carries; for a run written before they existed, measured
    /// from its history.
    fn of_run(dir: &Path, results: &Value) -> Figures {
        let stats = results.get("stats").cloned().unwrap_or(Value::Null);
        let sides = match stats.get("sides") {
            Some(s) if s.is_object() => s.clone(),
            _ => match RunData::load(dir) {
                Ok(d) => {
                    let n = d.test.get("nodes").and_then(Value::as_u64).unwrap_or(0) as usize;
                    sides::attribute(&d.history.ops, n).to_json()
                }
                Err(_) => return Figures::default(),
            },
        };
        let stale = stats.get("staleness").filter(|s| s.is_object());
        Figures {
            partitioned: sides.get("periods").and_then(Value::as_array).is_some_and(|p| !p.is_empty()),
            quiet: served_of(&sides["quiet"]),
            majority: served_of(&sides["partitioned"][Side::Majority.as_str()]["settled"]),
            cut_off: served_of(&sides["cut_off"]),
            cut_off_settled: served_of(&sides["cut_off"]["settled"]),
            stale: stale.map(|s| (s["stale_reads"].as_u64().unwrap_or(0), s["reads"].as_u64().unwrap_or(0))),
            stale_age_p99_ms: stale.and_then(|s| s.pointer("/age_ms/p99")).and_then(Value::as_f64),
            blocked: stats.get("bank_blocking").filter(|b| b.is_object()).map(|b| (b["blocked_while_down"].as_u64().unwrap_or(0), b["in_doubt"].as_u64().unwrap_or(0))),
        }
    }

    fn merge(&mut self, o: &Figures) {
        self.partitioned |= o.partitioned;
        add(&mut self.quiet, o.quiet);
        add(&mut self.majority, o.majority);
        add(&mut self.cut_off, o.cut_off);
        add(&mut self.cut_off_settled, o.cut_off_settled);
        if let Some(s) = o.stale {
            let mine = self.stale.get_or_insert((0, 0));
            add(mine, s);
        }
        self.stale_age_p99_ms = max([self.stale_age_p99_ms, o.stale_age_p99_ms].into_iter().flatten());
        if let Some(b) = o.blocked {
            let mine = self.blocked.get_or_insert((0, 0));
            add(mine, b);
        }
    }

    /// Share of reads that missed no acknowledged update.
    pub fn fresh(&self) -> Option<f64> {
        self.stale.and_then(|(s, n)| (n > 0).then(|| 1.0 - s as f64 / n as f64))
    }

    fn to_json(&self) -> Value {
        let served = |s: Served| json!({"served": s.0, "sent": s.1, "availability": share(s)});
        json!({
            "quiet": served(self.quiet), "majority_settled": served(self.majority),
            "cut_off": served(self.cut_off), "cut_off_settled": served(self.cut_off_settled),
            "stale_reads": self.stale.map(|(s, n)| json!({"stale": s, "reads": n, "share": (n > 0).then(|| s as f64 / n as f64)})),
            "fresh_read_share": self.fresh(), "stale_age_p99_ms": self.stale_age_p99_ms,
            "bank": self.blocked.map(|(b, d)| json!({"blocked_while_down": b, "in_doubt": d})),
        })
    }
}

/// One run with what the comparison adds to its summary.
#[derive(Clone, Debug)]
pub struct RunEntry {
    pub dir: PathBuf,
    pub summary: RunSummary,
    /// Checker name → result of the checkers the protocol does not claim.
    pub unclaimed: BTreeMap<String, Value>,
    /// (served, sent) on the sides of partitions cut off from a majority; `None` without
    /// partitions.
    pub minority: Option<Served>,
    pub figures: Figures,
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

fn merge_counts(a: &mut Counts, b: &Counts) {
    for i in 0..4 {
        a[i] += b[i];
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
    pub minority: Option<Served>,
    pub figures: Figures,
    pub unclaimed: BTreeMap<String, Counts>,
    /// Per unclaimed check: the first run (relative directory) where it was violated.
    pub unclaimed_example: BTreeMap<String, String>,
    /// The first run whose claimed check failed.
    pub claimed_example: Option<String>,
    /// Run directories relative to the results directory (empty for a run without one).
    pub runs: Vec<String>,
    /// Why runs did not pass (their outcome's message) → how many runs said so.
    pub reasons: BTreeMap<String, usize>,
}

/// One protocol, summed over its cells.
#[derive(Clone, Debug, Default)]
pub struct Card {
    pub protocol: String,
    pub claims: Vec<String>,
    pub counts: Counts,
    pub claimed_example: Option<String>,
    pub unclaimed: BTreeMap<String, (Counts, Option<String>)>,
    pub figures: Figures,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub time_to_converge_ms: Option<f64>,
    pub cells: usize,
    pub runs: usize,
}

/// Everything the comparison found.
pub struct Comparison {
    pub runs: Vec<RunEntry>,
    pub cells: Vec<Cell>,
    pub cards: Vec<Card>,
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
        return RunEntry { dir, summary, unclaimed: BTreeMap::new(), minority: None, figures: Figures::default() };
    }
    let stored = read_json(&dir.join("unclaimed.json")).unwrap_or_else(|| json!({}));
    let results = read_json(&dir.join("results.json")).unwrap_or(Value::Null);
    let figures = Figures::of_run(&dir, &results);
    let minority = (figures.partitioned && figures.cut_off.1 > 0).then_some(figures.cut_off);
    let unclaimed = stored.get("checks").and_then(Value::as_object).map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default();
    RunEntry { dir, summary, unclaimed, minority, figures }
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
        groups.entry((s.protocol_label(), s.workload.clone(), s.nemesis_label())).or_default().push(r);
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
        if o.kind == Kind::Failure && c.claimed_example.is_none() && !r.summary.path.is_empty() {
            c.claimed_example = Some(r.summary.path.clone());
        }
        c.runs.push(r.summary.path.clone());
        for (k, v) in &r.unclaimed {
            let verdict = v.get("valid").and_then(Validity::from_json);
            c.unclaimed.entry(k.clone()).or_default()[slot(verdict)] += 1;
            if verdict == Some(Validity::Invalid) && !r.summary.path.is_empty() {
                c.unclaimed_example.entry(k.clone()).or_insert_with(|| r.summary.path.clone());
            }
        }
        if let Some(m) = r.minority {
            add(c.minority.get_or_insert((0, 0)), m);
        }
        c.figures.merge(&r.figures);
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

/// One card per protocol, in protocol order.
pub fn cards(cells: &[Cell]) -> Vec<Card> {
    let mut by: BTreeMap<&str, Card> = BTreeMap::new();
    let mut p50s: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for c in cells {
        let card = by.entry(&c.protocol).or_insert_with(|| Card { protocol: c.protocol.clone(), ..Card::default() });
        for claim in &c.claims {
            if !card.claims.contains(claim) {
                card.claims.push(claim.clone());
            }
        }
        merge_counts(&mut card.counts, &c.counts);
        if card.claimed_example.is_none() {
            card.claimed_example = c.claimed_example.clone();
        }
        for (k, counts) in &c.unclaimed {
            let e = card.unclaimed.entry(k.clone()).or_default();
            merge_counts(&mut e.0, counts);
            if e.1.is_none() {
                e.1 = c.unclaimed_example.get(k).cloned();
            }
        }
        card.figures.merge(&c.figures);
        p50s.entry(&c.protocol).or_default().extend(c.p50_ms);
        card.p99_ms = max([card.p99_ms, c.p99_ms].into_iter().flatten());
        card.time_to_converge_ms = max([card.time_to_converge_ms, c.time_to_converge_ms].into_iter().flatten());
        card.cells += 1;
        card.runs += c.runs.len();
    }
    by.into_iter()
        .map(|(p, mut card)| {
            card.p50_ms = median(p50s.remove(p).unwrap_or_default());
            card
        })
        .collect()
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

fn verdict_json(v: Option<Validity>) -> String {
    match v {
        Some(v) => v.to_json().as_str().map(str::to_string).unwrap_or_else(|| v.to_json().to_string()),
        None => "crashed".into(),
    }
}

fn minority_share(m: Option<Served>) -> Option<f64> {
    m.and_then(share)
}

/// The CAP claims in words, for the legend.
pub const CLAIMS: &[(&str, &str, &str)] = &[
    ("linearizable", "CP", "every operation appears to take effect at one instant between its invocation and its completion; a node cut off from the majority must refuse rather than answer stale"),
    ("atomic-commitment", "CA", "a transaction commits on every participant or on none (two-phase commit); it blocks when the coordinator or a participant is unreachable"),
    ("bank-invariant", "CA", "the total over all accounts never changes"),
    ("strong-eventual-consistency", "AP", "every replica answers on its own; replicas that received the same updates hold the same state, whatever the order"),
];

fn badge(v: Option<Validity>) -> Markup {
    PreEscaped(html::badge(v))
}

fn run_link(path: &Option<String>, text: &str) -> Markup {
    match path.as_deref().and_then(|p| html::href(&format!("{p}/report.html"))) {
        Some(h) => markup! { a href=(h) { (text) } },
        None => markup! { (text) },
    }
}

fn served_text(s: Served) -> Markup {
    markup! {
        @match share(s) {
            Some(a) => { (percent(Some(a))) " " span class="small" { "(" (s.0) "/" (s.1) ")" } }
            None => { "–" }
        }
    }
}

fn verdict_td(c: &Counts, class: &str, example: &Option<String>) -> Markup {
    let w = worst(c);
    let (_, vclass) = html::verdict_word(w);
    markup! {
        td class={ "verdict " (class) " c-" (vclass) } data-verdict=(verdict_json(w)) {
            (badge(w)) " " span class="small" { (counts_text(c)) }
            @if w == Some(Validity::Invalid) && example.is_some() { " " span class="small" { (run_link(example, "see the anomaly")) } }
        }
    }
}

fn card(c: &Card) -> Markup {
    let class_of = |claims: &[String]| -> &'static str {
        CLAIMS.iter().find(|(name, _, _)| claims.iter().any(|c| c == name)).map(|(_, cap, _)| *cap).unwrap_or("?")
    };
    let f = &c.figures;
    markup! {
        div class="card" data-protocol=(c.protocol) {
            h3 { (c.protocol) " " span class="cap" { (class_of(&c.claims)) } }
            p class="small muted" { "claims " (c.claims.join(", ")) " · " (plural(c.runs as u64, "run")) " in " (plural(c.cells as u64, "cell")) }
            table {
                tr { th { "claimed" } (verdict_td(&c.counts, "claimed", &c.claimed_example)) }
                @for (k, (counts, example)) in &c.unclaimed {
                    tr { th { "not claimed: " (k) } (verdict_td(counts, &format!("unclaimed-{}", class_safe(k)), example)) }
                }
                tr { th { "available, quiet" } td class="num quiet" { (served_text(f.quiet)) } }
                tr { th { "available, majority side" } td class="num majority" { (served_text(f.majority)) } }
                tr { th { "available, cut off" } td class="num cut-off" { (served_text(f.cut_off_settled)) } }
                tr { th { "latency p50 / p99" } td class="num latency" { (ms(c.p50_ms)) " / " (ms(c.p99_ms)) " ms" } }
                tr { th { "stale reads" } td class="num stale" {
                    @match f.stale {
                        Some((s, n)) if n > 0 => { (percent(Some(s as f64 / n as f64))) " " span class="small" { "(" (s) "/" (n) ")" }
                            @if let Some(a) = f.stale_age_p99_ms { " " span class="small" { "p99 age " (ms(Some(a))) " ms" } } }
                        _ => { "–" }
                    }
                } }
                tr { th { "converged after heal" } td class="num converge" { (ms(c.time_to_converge_ms)) " ms" } }
                @if let Some((b, d)) = f.blocked {
                    tr { th { "transfers blocked / in doubt" } td class="num blocked" { (b) " / " (d) } }
                }
            }
        }
    }
}

fn run_links(c: &Cell) -> Markup {
    markup! {
        (c.runs.len()) " "
        span class="small" { "(" @for (i, r) in c.runs.iter().enumerate() {
            @if i > 0 { " " }
            @if r.is_empty() { (i + 1) } @else { (run_link(&Some(r.clone()), &(i + 1).to_string())) }
        } ")" }
    }
}

/// The reasons of the runs that did not pass, most frequent first.
fn reasons(reasons: &BTreeMap<String, usize>) -> Markup {
    let mut v: Vec<(&String, &usize)> = reasons.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    markup! { @for (r, n) in v { div { @if *n > 1 { (n) "× " } (r) } } }
}

/// The identifier of a cell in the pages and in tests: `protocol/workload/faults`.
pub fn cell_id(c: &Cell) -> String {
    format!("{}/{}/{}", c.protocol, c.workload, c.nemesis)
}

fn class_safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

const CARD_STYLE: &str = ".cards{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #ccc;border-radius:6px;padding:.6em .9em;min-width:300px;flex:1}\
.card h3{margin:.1em 0}.card table{width:100%}.card th{text-align:left;font-weight:normal;color:#555;padding-right:1em}\
.cap{font-size:.75em;background:#eef;border-radius:3px;padding:0 .4em;color:#335}.legend dt{font-weight:bold}.legend dd{margin:0 0 .4em 1.2em}\
.capplot svg{max-width:100%;height:auto}";

/// The comparison page.
pub fn render(cmp: &Comparison, title: &str, plot_svg: &str) -> String {
    let checks: BTreeSet<&String> = cmp.cells.iter().flat_map(|c| c.unclaimed.keys()).collect();
    let body = markup! {
                h1 { (title) }
                p { (plural(cmp.runs.len() as u64, "run")) " in " (plural(cmp.cells.len() as u64, "cell")) ". "
                    a href="index.html" { "All runs" } " · " a href="comparison.json" { "comparison.json" } " · " a href="junit.xml" { "junit.xml" } }
                h2 id="protocols" { "Protocols" }
                div class="cards" { @for c in &cmp.cards { (card(c)) } }
                @if !plot_svg.is_empty() {
                    h2 id="cap" { "Availability when cut off against consistency" }
                    p class="small muted" { "Each protocol at the share of operations served on the side of a partition cut off from the majority (after " (sides::SETTLE_S) " s) and the share of its reads that missed no acknowledged update. Hollow: a claimed guarantee was violated. Also as " a href="comparison-cap.png" { "PNG" } "." }
                    div class="capplot" { (PreEscaped(plot_svg)) }
                }
                dl class="legend" {
                    @for (claim, cap, words) in CLAIMS { dt { (claim) " (" (cap) ")" } dd { (words) } }
                    dt { "served" } dd { "an ok, or a definite refusal (precondition failed, no such key); a timeout, an unknown outcome or \"no leader\" is not served" }
                    dt { "cut off" } dd { "a node that could not exchange messages both ways with a majority of the cluster (minority side or isolated)" }
                }
                h2 { "Claimed guarantees" }
                p class="small muted" { "Per protocol × workload × faults: the verdict of the checkers the protocol's claims imply (worst over the runs), availability (mean share of operations served), p50 (median of the runs) and p99 (worst run) latency of ok operations, and the time from the heal until every node read the same final state (worst run)." }
                table id="claimed" {
                    thead { tr { @for h in ["protocol", "workload", "faults", "claims", "runs", "claimed verdict", "why not valid", "availability", "p50 ms", "p99 ms", "converge after heal ms"] { th { (h) } } } }
                    @for c in &cmp.cells {
                        tr data-cell=(cell_id(c)) {
                            td { (c.protocol) } td { (c.workload) } td { (c.nemesis) } td { (c.claims.join(", ")) }
                            td class="num runs" { (run_links(c)) }
                            (verdict_td(&c.counts, "claimed", &c.claimed_example))
                            td class="why" { (reasons(&c.reasons)) }
                            td class="num availability" { (percent(c.availability)) }
                            td class="num p50" { (ms(c.p50_ms)) } td class="num p99" { (ms(c.p99_ms)) }
                            td class="num converge" { (ms(c.time_to_converge_ms)) }
                        }
                    }
                }
                h2 { "Guarantees not claimed" }
                p class="small muted" { "Each protocol checked against what it does not promise: the extra checkers the suite ran on every history (a violation here is information, not a failure; each links to a run report that shows it), availability on the sides of partitions cut off from a majority, and the share of stale reads." }
                table id="unclaimed" {
                    thead { tr { th { "protocol" } th { "workload" } th { "faults" } th { "claims" } th { "availability in minority" } th { "stale reads" } @for k in &checks { th { (k) } } } }
                    @for c in &cmp.cells {
                        tr data-cell=(cell_id(c)) {
                            td { (c.protocol) } td { (c.workload) } td { (c.nemesis) } td { (c.claims.join(", ")) }
                            td class="num minority" { @match c.minority { Some(m) => { (served_text(m)) } None => { "–" } } }
                            td class="num stale" { @match c.figures.stale { Some((s, n)) if n > 0 => { (percent(Some(s as f64 / n as f64))) } _ => { "–" } } }
                            @for k in &checks {
                                @match c.unclaimed.get(*k) {
                                    Some(counts) => { (verdict_td(counts, &format!("unclaimed-{}", class_safe(k)), &c.unclaimed_example.get(*k).cloned())) }
                                    None => { td class="muted" { "not checked" } }
                                }
                            }
                        }
                    }
                }
    };
    html::page(title, CARD_STYLE, body).into_string()
}

/// The comparison as JSON: every figure of the page.
pub fn to_json(cmp: &Comparison, title: &str) -> Value {
    let verdict = |c: &Counts, example: Option<&String>| {
        json!({"verdict": verdict_json(worst(c)), "counts": {"valid": c[0], "invalid": c[1], "unknown": c[2], "crashed": c[3]}, "example": example})
    };
    let cells: Vec<Value> = cmp
        .cells
        .iter()
        .map(|c| {
            json!({
                "protocol": c.protocol, "workload": c.workload, "nemesis": c.nemesis, "claims": c.claims,
                "runs": c.runs, "claimed": verdict(&c.counts, c.claimed_example.as_ref()),
                "availability": c.availability, "p50_ms": c.p50_ms, "p99_ms": c.p99_ms,
                "time_to_converge_ms": c.time_to_converge_ms,
                "minority_availability": minority_share(c.minority),
                "figures": c.figures.to_json(),
                "unclaimed": c.unclaimed.iter().map(|(k, v)| (k.clone(), verdict(v, c.unclaimed_example.get(k)))).collect::<serde_json::Map<_, _>>(),
                "reasons": c.reasons.iter().map(|(k, n)| json!({"reason": k, "runs": n})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let protocols: Vec<Value> = cmp
        .cards
        .iter()
        .map(|c| {
            json!({
                "protocol": c.protocol, "claims": c.claims, "cells": c.cells, "runs": c.runs,
                "claimed": verdict(&c.counts, c.claimed_example.as_ref()),
                "unclaimed": c.unclaimed.iter().map(|(k, (v, e))| (k.clone(), verdict(v, e.as_ref()))).collect::<serde_json::Map<_, _>>(),
                "p50_ms": c.p50_ms, "p99_ms": c.p99_ms, "time_to_converge_ms": c.time_to_converge_ms,
                "figures": c.figures.to_json(),
            })
        })
        .collect();
    json!({"title": title, "runs": cmp.runs.len(), "protocols": protocols, "cells": cells})
}

/// The title of the comparison: the suite's name when a suite wrote `suite-name.json` there.
fn title_of(results_dir: &Path) -> String {
    let name = read_json(&results_dir.join("suite-name.json")).and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_string));
    let name = name.unwrap_or_else(|| results_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
    format!("faultline comparison: {name}")
}

/// Writes `comparison.html`, `comparison.json`, `comparison-cap.png` and `junit.xml` for every
/// run below `results_dir`.
pub fn write_comparison(results_dir: &Path) -> anyhow::Result<Comparison> {
    let runs = load(results_dir);
    let cells = cells(&runs);
    let cards = cards(&cells);
    let cmp = Comparison { runs, cells, cards };
    let title = title_of(results_dir);
    let svg = super::cap_plot::write(results_dir, &cmp.cards)?;
    write_atomic(&results_dir.join("comparison.html"), render(&cmp, &title, &svg).as_bytes())?;
    write_atomic(&results_dir.join("comparison.json"), serde_json::to_string_pretty(&to_json(&cmp, &title))?.as_bytes())?;
    write_atomic(&results_dir.join("junit.xml"), junit::render(&cmp.runs)?.as_bytes())?;
    Ok(cmp)
}

#[cfg(test)]
mod tests {
    use super::*;



    #[test]
    fn worst_orders_crash_invalid_unknown_valid() {
        assert_eq!(worst(&[3, 0, 0, 0]), Some(Validity::Valid));
        assert_eq!(worst(&[3, 0, 1, 0]), Some(Validity::Unknown));
        assert_eq!(worst(&[3, 1, 1, 0]), Some(Validity::Invalid));
        assert_eq!(worst(&[3, 1, 1, 1]), None);
    }
}
