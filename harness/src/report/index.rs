//! `results/index.html`: every run of a results directory, newest first, with verdict colours
//! and filters by protocol, workload, nemesis and verdict.
//!
//! It must stay fast with thousands of runs, so it never reads a history: each run is reduced
//! to a [`RunSummary`] built from its `test.json` and `results.json` only, cached as
//! `summary.json` in the run directory and rebuilt only when one of those two files is newer.
//! The page is one static table; a few lines of inline script hide the rows that do not match
//! the filters (the table is complete without script).
//!
//! Health comes first: a run that crashed, was interrupted or could not vouch for the system
//! says why in its row (from [`outcome::classify`]), next to its verdict. Runs a suite started
//! that never made a directory are listed too, from their records (`suite-cells/`).

use super::atomic::write_atomic;
use super::data::nemeses_of;
use super::html::{self, badge, ms, percent};
use maud::{html as markup, Markup, PreEscaped};
use super::outcome::{self, CellRecord, Kind};
use super::text::plural;
use faultline_checkers::Validity;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Bumped when the summary's fields change, so old caches are rebuilt.
const SUMMARY_VERSION: u32 = 5;
/// How deep below a results directory run directories are looked for
/// (`<test-name>/<run>` is depth 2; suites may nest one more level).
const MAX_DEPTH: usize = 4;

/// The compact facts of one run, cached as `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunSummary {
    pub version: u32,
    /// The run directory relative to the results directory, with `/` separators (filled in by
    /// the scan; a cached summary can be moved with its directory).
    #[serde(default)]
    pub path: String,
    pub name: String,
    pub protocol: String,
    /// `test.json`'s `label`: the system's name when the protocol's does not tell it (a node
    /// binary of one's own, a Maelstrom node).
    #[serde(default)]
    pub label: Option<String>,
    /// The arguments the nodes were given (`test.json`'s `node_args`): a protocol variant.
    #[serde(default)]
    pub node_args: Vec<String>,
    pub workload: String,
    pub nemesis: Vec<String>,
    pub seed: Value,
    pub started_at: String,
    /// `true`, `false`, `"unknown"`, or `null` when the run produced no results.
    pub valid: Value,
    /// Checker name → its `valid`.
    pub checkers: BTreeMap<String, Value>,
    pub claims: Vec<String>,
    pub availability: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub duration_s: Option<f64>,
    pub time_to_converge_ms: Option<f64>,
    pub ops: u64,
    /// `results.json`'s `error`: the run failed (e.g. a node did not start).
    #[serde(default)]
    pub error: Option<String>,
    /// `results.json`'s `health.ok`; `None` when the run did not judge its health.
    #[serde(default)]
    pub health_ok: Option<bool>,
    #[serde(default)]
    pub health_reasons: Vec<String>,
    /// What interrupted the run (`SIGTERM`, `SIGINT`, `watchdog`), when something did.
    #[serde(default)]
    pub interrupted_by: Option<String>,
    /// `checker: reason` for every checker that could not decide.
    #[serde(default)]
    pub undecided: Vec<String>,
    /// What the suite saw of the run (`suite.json`), when a suite ran it.
    #[serde(default)]
    pub suite: Option<CellRecord>,
    /// The anomaly in one sentence (`anomaly.json`, written with the run's report), when a
    /// checker found one.
    #[serde(default)]
    pub anomaly: Option<String>,
}

impl RunSummary {
    pub fn verdict(&self) -> Option<Validity> {
        Validity::from_json(&self.valid)
    }

    /// The system as comparisons name it: its label or protocol, with its node arguments when
    /// it has any (`twopc --tree`), so variants of one protocol stay apart.
    pub fn protocol_label(&self) -> String {
        super::suite_file::label(self.system(), &self.node_args)
    }

    /// The system under test: the run's label, else its protocol.
    pub fn system(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.protocol)
    }

    /// The nemeses as one cell name: `partition,kill`, or `none`.
    pub fn nemesis_label(&self) -> String {
        if self.nemesis.is_empty() {
            "none".into()
        } else {
            self.nemesis.join(",")
        }
    }
}

fn read_json(path: &Path) -> Value {
    std::fs::read_to_string(path).ok().and_then(|s| serde_json::from_str(&s).ok()).unwrap_or(Value::Null)
}

fn str_of(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(x) => x.to_string(),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array).map(|a| a.iter().map(|x| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string())).collect()).unwrap_or_default()
}

/// What interrupted a run, from `results.json`'s `interrupted` and `interrupted_by`.
fn interrupted_by(results: &Value) -> Option<String> {
    if results.get("interrupted").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    Some(results.get("interrupted_by").and_then(Value::as_str).unwrap_or("a signal").to_string())
}

/// `checker: reason` for each checker whose verdict is unknown.
fn undecided(results: &Value) -> Vec<String> {
    let Some(m) = results.get("checkers").and_then(Value::as_object) else { return Vec::new() };
    m.iter()
        .filter(|(_, r)| r.get("valid").and_then(Validity::from_json) == Some(Validity::Unknown))
        .map(|(k, r)| {
            let why = r.get("error").or_else(|| r.get("reason")).filter(|v| !v.is_null());
            format!("{k}: {}", why.map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())).unwrap_or_else(|| "undecided (no reason given)".into()))
        })
        .collect()
}

/// Builds a summary from a run's `test.json` and `results.json` values.
pub fn summarize(test: &Value, results: &Value) -> RunSummary {
    let stats = results.get("stats").cloned().unwrap_or(Value::Null);
    let f = |p: &str| stats.pointer(p).and_then(Value::as_f64);
    let checkers = results
        .get("checkers")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.get("valid").cloned().unwrap_or(Value::Null))).collect())
        .unwrap_or_default();
    let ops = stats
        .get("ops")
        .and_then(Value::as_object)
        .map(|m| m.values().flat_map(|c| ["ok", "fail", "info"].map(|k| c.get(k).and_then(Value::as_u64).unwrap_or(0))).sum())
        .unwrap_or(0);
    RunSummary {
        version: SUMMARY_VERSION,
        path: String::new(),
        name: str_of(test, "name"),
        protocol: str_of(test, "protocol"),
        label: test.get("label").and_then(Value::as_str).map(str::to_string),
        node_args: strings(test.get("node_args")),
        workload: str_of(test, "workload"),
        nemesis: nemeses_of(test),
        seed: test.get("seed").cloned().unwrap_or(Value::Null),
        started_at: str_of(test, "started_at"),
        valid: results.get("valid").cloned().unwrap_or(Value::Null),
        checkers,
        claims: test.get("claims").and_then(Value::as_array).map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_string)).collect()).unwrap_or_default(),
        availability: f("/availability"),
        p50_ms: f("/latency_ms/p50"),
        p99_ms: f("/latency_ms/p99"),
        duration_s: f("/duration_s"),
        time_to_converge_ms: f("/time_to_converge_ms"),
        ops,
        error: results.get("error").filter(|e| !e.is_null()).map(|e| e.as_str().map(str::to_string).unwrap_or_else(|| e.to_string())),
        health_ok: results.pointer("/health/ok").and_then(Value::as_bool),
        health_reasons: strings(results.pointer("/health/reasons")),
        interrupted_by: interrupted_by(results),
        undecided: undecided(results),
        suite: None,
        anomaly: None,
    }
}

/// The summary of a run the suite started that made no run directory.
pub fn orphan_summary(r: &CellRecord) -> RunSummary {
    let test = serde_json::json!({
        "name": r.name(), "protocol": r.protocol, "workload": r.workload, "nemesis": r.nemesis,
        "seed": r.seed, "started_at": r.started_at, "node_args": r.node_args,
    });
    let mut s = summarize(&test, &Value::Null);
    s.suite = Some(r.clone());
    s
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// The summary of a run directory, from its cache when the cache is fresh.
pub fn load_summary(run_dir: &Path) -> RunSummary {
    let cache = run_dir.join("summary.json");
    let sources = [
        run_dir.join("test.json"),
        run_dir.join("results.json"),
        run_dir.join(outcome::RECORD_FILE),
        run_dir.join(super::run_report::HEADLINE_FILE),
    ];
    let newest_source = sources.iter().filter_map(|p| mtime(p)).max();
    if let (Some(c), Some(src)) = (mtime(&cache), newest_source) {
        if c >= src {
            if let Ok(s) = serde_json::from_value::<RunSummary>(read_json(&cache)) {
                if s.version == SUMMARY_VERSION {
                    return s;
                }
            }
        }
    }
    let mut s = summarize(&read_json(&sources[0]), &read_json(&sources[1]));
    s.suite = serde_json::from_value(read_json(&sources[2])).ok();
    s.anomaly = read_json(&sources[3]).get("sentence").and_then(Value::as_str).map(str::to_string);
    // A read-only results directory still gets an index; the cache is an optimisation.
    if let Ok(text) = serde_json::to_vec(&s) {
        let _ = write_atomic(&cache, &text);
    }
    s
}

/// Every run directory (a directory with a `test.json`) below `results_dir`, skipping symlinks
/// (`latest`) so no run is listed twice.
pub fn find_runs(results_dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(results_dir, 0, &mut out);
    out.sort();
    out
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if !ft.is_dir() || ft.is_symlink() {
            continue;
        }
        let p = e.path();
        if p.join("test.json").is_file() {
            out.push(p);
        } else {
            walk(&p, depth + 1, out);
        }
    }
}

/// Summaries of every run below `results_dir`, and of every run a suite started there that
/// made no directory (with an empty `path`), newest first.
pub fn collect(results_dir: &Path) -> Vec<RunSummary> {
    let mut runs: Vec<RunSummary> = find_runs(results_dir)
        .into_iter()
        .map(|dir| {
            let mut s = load_summary(&dir);
            s.path = relative(results_dir, &dir);
            s
        })
        .collect();
    runs.extend(CellRecord::orphans(results_dir).iter().map(orphan_summary));
    runs.sort_by(|a, b| b.started_at.cmp(&a.started_at).then_with(|| b.path.cmp(&a.path)));
    runs
}

/// `dir` relative to `base` as a URL path (`/` separators).
pub fn relative(base: &Path, dir: &Path) -> String {
    let rel = dir.strip_prefix(base).unwrap_or(dir);
    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

/// Writes `results_dir/index.html`.
pub fn write_index(results_dir: &Path) -> anyhow::Result<()> {
    if !results_dir.is_dir() {
        anyhow::bail!("{}: not a directory", results_dir.display());
    }
    let runs = collect(results_dir);
    let has_comparison = results_dir.join("comparison.html").is_file();
    let page = render_index(&runs, has_comparison);
    write_atomic(&results_dir.join("index.html"), page.as_bytes())?;
    Ok(())
}

/// The filter key and the CSS class of an outcome (a crash is "none": no verdict).
fn outcome_keys(k: Kind) -> (&'static str, Option<Validity>) {
    match k {
        Kind::Pass => ("valid", Some(Validity::Valid)),
        Kind::Failure => ("invalid", Some(Validity::Invalid)),
        Kind::Skipped => ("unknown", Some(Validity::Unknown)),
        Kind::Error => ("none", None),
    }
}

fn select(id: &str, label: &str, values: &BTreeSet<String>) -> Markup {
    markup! {
        label { (label) " " select id=(id) { option value="" { "all" } @for v in values { option value=(v) { (v) } } } }
    }
}

/// The index page for runs already sorted newest first. A maud template: every value is
/// escaped by the template itself.
pub fn render_index(runs: &[RunSummary], has_comparison: bool) -> String {
    let counts = runs.iter().fold([0usize; 4], |mut c, r| {
        c[outcome::classify(r).kind as usize] += 1;
        c
    });
    let set = |f: &dyn Fn(&RunSummary) -> Vec<String>| runs.iter().flat_map(f).filter(|x| !x.is_empty()).collect::<BTreeSet<String>>();
    let verdicts: BTreeSet<String> = ["valid", "invalid", "unknown", "none"].iter().map(|x| x.to_string()).collect();
    let body = markup! {
                h1 { "faultline results" }
                p { (plural(runs.len() as u64, "run")) ": " (counts[0]) " valid, " (counts[1]) " invalid, " (counts[2]) " unknown, " (counts[3]) " crashed or interrupted."
                    @if has_comparison { " " a href="comparison.html" { "Protocol comparison" } "." } }
                p class="filters" {
                    (select("f-protocol", "protocol", &set(&|r| vec![r.system().to_string()])))
                    (select("f-workload", "workload", &set(&|r| vec![r.workload.clone()])))
                    (select("f-nemesis", "nemesis", &set(&|r| if r.nemesis.is_empty() { vec!["none".into()] } else { r.nemesis.clone() })))
                    (select("f-verdict", "verdict", &verdicts))
                    label { "name " input id="f-text" type="search" placeholder="filter"; } " " span id="shown" { (runs.len()) } " shown"
                }
                table id="runs" {
                    thead { tr { @for h in ["started", "test", "protocol", "workload", "nemeses", "seed", "verdict", "checkers", "availability", "p50 ms", "p99 ms", "duration s"] { th { (h) } } } }
                    tbody { @for r in runs { (index_row(r)) } }
                }
                (PreEscaped(INDEX_SCRIPT))
    };
    html::page("faultline results", "", body).into_string() + "\n"
}

/// The verdict cell: the badge, a health or interruption badge, and the reason in words.
fn verdict_td(r: &RunSummary, o: &outcome::Outcome) -> Markup {
    let (_, v) = outcome_keys(o.kind);
    let interrupted = r.interrupted_by.is_some() || r.suite.as_ref().is_some_and(|x| x.stopped.is_some());
    markup! {
        (PreEscaped(badge(v)))
        @if o.kind == Kind::Error { " " span class="badge warn" { (if interrupted { "interrupted" } else { "crashed" }) } }
        @else if r.health_ok == Some(false) { " " span class="badge warn" { "unhealthy" } }
        @if !o.message.is_empty() && o.kind != Kind::Failure { div class="why" { (o.message) } }
        @if let Some(a) = r.anomaly.as_deref().filter(|_| o.kind == Kind::Failure) { div class="anomaly-line" { (super::text::capitalize(a)) } }
    }
}

fn index_row(r: &RunSummary) -> Markup {
    let o = outcome::classify(r);
    let (key, v) = outcome_keys(o.kind);
    let (_, class) = html::verdict_word(v);
    let nem = if r.nemesis.is_empty() { vec!["none".to_string()] } else { r.nemesis.clone() };
    let seed = match &r.seed {
        Value::Null => String::new(),
        v => v.to_string(),
    };
    let text = if r.name.is_empty() { &r.path } else { &r.name };
    let href = (!r.path.is_empty()).then(|| html::href(&format!("{}/report.html", r.path))).flatten();
    markup! {
        tr class={ "v-" (class) } data-protocol=(r.system()) data-workload=(r.workload) data-nemesis={ " " (nem.join(" ")) " " } data-verdict=(key) data-name=(format!("{} {}", r.name, r.path).to_lowercase()) {
            td class="mono small" { (r.started_at) }
            td { @if let Some(h) = &href { a href=(h) { (text) } } @else { (text) } }
            td { (r.system()) } td { (r.workload) } td { (nem.join(", ")) } td class="num" { (seed) }
            td class="verdict" { (verdict_td(r, &o)) }
            td class="small" { @for (i, (k, v)) in r.checkers.iter().enumerate() { @if i > 0 { br; } (k) ": " (html::verdict_word(Validity::from_json(v)).0) } }
            td class="num" { (percent(r.availability)) } td class="num" { (ms(r.p50_ms)) } td class="num" { (ms(r.p99_ms)) }
            td class="num" { (r.duration_s.map(|d| format!("{d:.1}")).unwrap_or_else(|| "–".into())) }
        }
    }
}

/// Hides the rows that do not match the filters; one pass over cached row data per change.
const INDEX_SCRIPT: &str = r#"<script>
(function(){
  var rows=Array.prototype.slice.call(document.querySelectorAll('#runs tbody tr'));
  var data=rows.map(function(r){return {r:r,p:r.dataset.protocol,w:r.dataset.workload,n:r.dataset.nemesis,v:r.dataset.verdict,t:r.dataset.name};});
  var ids=['f-protocol','f-workload','f-nemesis','f-verdict','f-text'];
  function val(id){return document.getElementById(id).value;}
  function apply(){
    var p=val('f-protocol'),w=val('f-workload'),n=val('f-nemesis'),v=val('f-verdict'),t=val('f-text').toLowerCase(),shown=0;
    for(var i=0;i<data.length;i++){var d=data[i];
      var ok=(!p||d.p===p)&&(!w||d.w===w)&&(!n||d.n.indexOf(' '+n+' ')>=0)&&(!v||d.v===v)&&(!t||d.t.indexOf(t)>=0);
      d.r.style.display=ok?'':'none'; if(ok)shown++;}
    document.getElementById('shown').textContent=shown;
  }
  ids.forEach(function(id){var e=document.getElementById(id);e.addEventListener('change',apply);e.addEventListener('input',apply);});
  var q=new URLSearchParams(location.search);
  ['protocol','workload','nemesis','verdict'].forEach(function(k){if(q.get(k))document.getElementById('f-'+k).value=q.get(k);});
  apply();
})();
</script>"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summary_from_results() {
        let test = json!({"name": "raft-register-partition", "protocol": "raft", "workload": "register", "nemesis": ["partition"], "seed": 7, "started_at": "2026-01-01T00:00:00Z", "claims": ["linearizable"]});
        let results = json!({"valid": false, "checkers": {"linearizable": {"valid": false}}, "stats": {"availability": 0.75, "latency_ms": {"p50": 2.5, "p99": 40.0}, "duration_s": 12.0, "ops": {"read": {"ok": 3, "fail": 1, "info": 0}, "write": {"ok": 2, "fail": 0, "info": 1}}}});
        let s = summarize(&test, &results);
        assert_eq!(s.verdict(), Some(Validity::Invalid));
        assert_eq!((s.availability, s.p50_ms, s.p99_ms, s.ops), (Some(0.75), Some(2.5), Some(40.0), 7));
        assert_eq!(s.nemesis_label(), "partition");
        let row = index_row(&s).into_string();
        assert!(row.contains("data-verdict=\"invalid\"") && row.contains("data-nemesis=\" partition \""));
    }

    #[test]
    fn index_escapes_names() {
        let mut s = summarize(&json!({"name": "<script>x</script>", "protocol": "p\"q"}), &Value::Null);
        s.path = "a/b".into();
        let page = render_index(&[s], false);
        assert!(!page.contains("<script>x"));
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(page.contains("p&quot;q"));
    }

    /// Every `href="..."` value of a page, entities decoded as a browser decodes them.
    fn hrefs(page: &str) -> Vec<String> {
        page.split("href=\"").skip(1).map(|h| h[..h.find('"').unwrap()].replace("&amp;", "&").replace("&#39;", "'").replace("&lt;", "<")).collect()
    }

    #[test]
    fn a_javascript_name_links_to_a_harmless_relative_path() {
        let name = "javascript:alert(1)<!--";
        let mut s = summarize(&json!({"name": name, "protocol": "raft"}), &Value::Null);
        s.path = format!("{name}/20261125T200000-1");
        let page = render_index(&[s], true);
        let links = hrefs(&page);
        assert_eq!(links, vec!["comparison.html", "javascript%3Aalert%281%29%3C%21--/20261125T200000-1/report.html"]);
        // No link has a scheme: a colon before the first slash would make one.
        assert!(links.iter().all(|h| !h.split('/').next().unwrap_or("").contains(':')), "{links:?}");
        // The name is still shown, as text.
        assert!(page.contains("javascript:alert(1)&lt;!--"));
    }

    #[test]
    fn rows_say_why_a_run_is_unhealthy_interrupted_or_crashed() {
        let test = json!({"name": "r", "protocol": "raft", "workload": "register"});
        let unhealthy = summarize(&test, &json!({"valid": "unknown", "health": {"ok": false, "reasons": ["node n3 is down at the end of the run"]}}));
        let row = index_row(&unhealthy).into_string();
        assert!(row.contains(">unhealthy<") && row.contains("node n3 is down at the end of the run"), "{row}");
        let interrupted = summarize(&test, &json!({"valid": true, "interrupted": true, "interrupted_by": "SIGTERM"}));
        let row = index_row(&interrupted).into_string();
        assert!(row.contains(">interrupted<") && row.contains("interrupted by SIGTERM") && row.contains("data-verdict=\"none\""), "{row}");
        let crashed = summarize(&test, &json!({"valid": "unknown", "error": "node n1 exited before it was ready"}));
        let row = index_row(&crashed).into_string();
        assert!(row.contains(">crashed<") && row.contains("node n1 exited before it was ready"), "{row}");
    }

    #[test]
    fn runs_without_a_directory_are_listed_unlinked() {
        let d = tempfile::tempdir().unwrap();
        let r = CellRecord { protocol: "raft".into(), workload: "register".into(), nemesis: "kill".into(), spawn_error: Some("cannot start faultline".into()), started_at: "2026-01-01T00:00:00Z".into(), ..CellRecord::default() };
        r.store(d.path(), None).unwrap();
        let runs = collect(d.path());
        assert_eq!(runs.len(), 1);
        let row = index_row(&runs[0]).into_string();
        assert!(row.contains("raft/register/kill#0") && row.contains("cannot start faultline") && !row.contains("href"), "{row}");
    }
}
