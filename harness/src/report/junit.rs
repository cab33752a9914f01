//! `junit.xml` for CI: one test case per run. A violation of a claimed guarantee is a
//! `<failure>`, a run that produced no verdict is an `<error>`, an undecided checker is
//! `<skipped>` (CI shows it without turning red, while the suite's exit code still says 2).
//! The verdicts of unclaimed guarantees and the minority availability are `<properties>`:
//! information, never failures.

use super::compare::RunEntry;
use super::html::escape;
use faultline_checkers::Validity;
use serde_json::Value;
use std::fmt::Write as _;

fn attr(s: &str) -> String {
    // The HTML escaping covers XML attributes and text too: `&#39;` is a valid XML reference.
    escape(s)
}

/// The JUnit XML of runs.
pub fn render(runs: &[RunEntry]) -> String {
    let failures = runs.iter().filter(|r| r.summary.verdict() == Some(Validity::Invalid)).count();
    let errors = runs.iter().filter(|r| r.summary.verdict().is_none()).count();
    let skipped = runs.iter().filter(|r| r.summary.verdict() == Some(Validity::Unknown)).count();
    let time: f64 = runs.iter().filter_map(|r| r.summary.duration_s).sum();
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(s, "<testsuites name=\"faultline\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">", runs.len());
    let _ = writeln!(s, "<testsuite name=\"faultline\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">", runs.len());
    for r in runs {
        s += &testcase(r);
    }
    s += "</testsuite>\n</testsuites>\n";
    s
}

fn testcase(r: &RunEntry) -> String {
    let sm = &r.summary;
    let class = format!("{}.{}", sm.protocol, sm.workload);
    let seed = match &sm.seed {
        Value::Null => String::new(),
        v => format!(" seed={v}"),
    };
    let name = format!("{}{seed} [{}]", sm.nemesis_label(), sm.path);
    let mut s = format!(
        "<testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">\n",
        attr(&class),
        attr(&name),
        sm.duration_s.unwrap_or(0.0)
    );
    s += "<properties>";
    let _ = write!(s, "<property name=\"claims\" value=\"{}\"/>", attr(&sm.claims.join(",")));
    for (k, v) in &sm.checkers {
        let _ = write!(s, "<property name=\"claimed.{}\" value=\"{}\"/>", attr(k), attr(&v.to_string()));
    }
    for (k, v) in &r.unclaimed {
        let valid = v.get("valid").cloned().unwrap_or(Value::Null);
        let _ = write!(s, "<property name=\"unclaimed.{}\" value=\"{}\"/>", attr(k), attr(&valid.to_string()));
    }
    if let Some((ok, n)) = r.minority {
        let _ = write!(s, "<property name=\"minority_availability\" value=\"{:.4}\"/>", ok as f64 / n.max(1) as f64);
    }
    if let Some(a) = sm.availability {
        let _ = write!(s, "<property name=\"availability\" value=\"{a:.4}\"/>");
    }
    s += "</properties>\n";
    let failing: Vec<&String> = sm.checkers.iter().filter(|(_, v)| Validity::from_json(v) == Some(Validity::Invalid)).map(|(k, _)| k).collect();
    match sm.verdict() {
        Some(Validity::Invalid) => {
            let msg = format!("claimed guarantee violated: {}", failing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "));
            let _ = writeln!(s, "<failure message=\"{}\" type=\"violation\">{}/report.html</failure>", attr(&msg), attr(&sm.path));
        }
        Some(Validity::Unknown) => {
            let _ = writeln!(s, "<skipped message=\"a checker could not decide within its budget\"/>");
        }
        None => {
            let _ = writeln!(s, "<error message=\"the run produced no verdict (the harness or a node failed)\" type=\"crash\">{}</error>", attr(&sm.path));
        }
        Some(Validity::Valid) => {}
    }
    let _ = writeln!(s, "<system-out>{}/report.html</system-out>", attr(&sm.path));
    s + "</testcase>\n"
}
