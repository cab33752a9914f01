//! Reports that explain an anomaly, checked the way a person meets them: in headless Chromium,
//! on fixture runs (see `report_fixtures.rs`).
//!
//! - A stale read: the offending operation is drawn inside the first screen of `report.html`
//!   (its box's position measured by a script in a copy of the page, and its colour counted in a
//!   screenshot), and the sentence names the key, the node, the time, the write that made the
//!   read stale and the faults at the time.
//! - A bank failure: total over time with the bad reads marked, the first bad read, the
//!   half-committed transfer, final balances with their sums.
//! - Lost elements with their history; a crashed node's log tail.
//! - `timeline.html` of a 100,000-operation history renders its first screen in under 2 s
//!   (measured in the page with `performance.now()`), drawing only the visible boxes.
//!
//! `FAULTLINE_DOC_IMG=docs/img cargo test --release -p faultline --test report_anomaly -- --ignored`
//! writes the example images of docs/reports.md.

#[path = "report_fixtures.rs"]
mod fixtures;

use faultline::report::{write_index, write_run_report};
use faultline_checkers::Validity;
use std::path::{Path, PathBuf};
use std::time::Instant;

use fixtures::{decode, on_first_screen, probe, url, SCREEN};

/// A run directory with its report written.
fn reported(d: &Path, name: &str, make: fn(&Path) -> Validity) -> PathBuf {
    let run = d.join(name);
    assert_eq!(make(&run), Validity::Invalid);
    write_run_report(&run).unwrap();
    run
}

/// The text content of the element with `id` in a dumped DOM (its tags stripped, entities
/// decoded); the element must not nest another of its own tag.
fn text_of(dom: &str, id: &str) -> String {
    let at = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in the page"));
    let open = dom[..at].rfind('<').unwrap();
    let tag: String = dom[open + 1..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    let inner = &dom[at..];
    let inner = &inner[inner.find('>').unwrap() + 1..];
    let inner = &inner[..inner.find(&format!("</{tag}>")).unwrap()];
    let mut out = String::new();
    let mut in_tag = false;
    for ch in inner.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    decode(&out)
}

/// Pixels of a colour (within a small tolerance) in a PNG.
fn pixels_of(png: &Path, rgb: [u8; 3]) -> usize {
    let img = image::open(png).unwrap().to_rgb8();
    img.pixels().filter(|p| p.0.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 3)).count()
}

#[test]
fn a_stale_read_is_on_the_first_screen_and_told_in_one_sentence() {
    let d = tempfile::tempdir().unwrap();
    let run = reported(d.path(), "stale", fixtures::stale_read_run);
    let page = run.join("report.html");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains("<script"), "the run report carries no script");
    // The anomaly comes right after the verdict header, before the tables.
    let (anomaly, verdicts, summary) = (html.find("id=\"anomaly\"").unwrap(), html.find("id=\"verdicts\"").unwrap(), html.find("id=\"summary\"").unwrap());
    assert!(anomaly < verdicts && anomaly < summary, "the anomaly must open the report");
    // Geometry: the box of the read that cannot be placed is fully inside a 1280×800 window.
    let p = probe(&page, "#anomaly g.op.failing rect");
    assert!(on_first_screen(&p), "the offending operation is not on the first screen: {p}");
    let s = probe(&page, "#anomaly-sentence");
    assert!(on_first_screen(&s), "the sentence is not on the first screen: {s}");
    // Pixels: the failing box's fill (#ef9a9a) covers a real area of the first screen, far more
    // than the legend's swatch alone.
    let shot = d.path().join("first-screen.png");
    fixtures::screenshot(&url(&page), &shot, SCREEN.0, SCREEN.1);
    let red = pixels_of(&shot, [0xef, 0x9a, 0x9a]);
    assert!(red > 1500, "only {red} pixels of the failing box's colour on the first screen");
    // The sentence: key, node, time; the write that made it stale, its node and time; faults.
    let dom = fixtures::dump_dom(&url(&page));
    let sentence = text_of(&dom, "anomaly-sentence");
    for part in ["Read of key k1 at 0.30 s on n1 returned", "but write 2 (p1, acknowledged at 0.26 s on n2) had replaced it", "no fault was active (the first began at 1.00 s)"] {
        assert!(sentence.contains(part), "the sentence lacks {part:?}: {sentence}");
    }
    assert!(sentence.contains("\"<script>document.title="), "the value read is named, as text: {sentence}");
    assert!(dom.contains("<title>faultline: raft-register-partition-kill</title>"), "the value ran as a script");
    // The zoomed drawing: the read, the write that replaced its value, the write of its value.
    let zoom = &dom[dom.find("<svg class=\"zoom\"").unwrap()..];
    let zoom = &zoom[..zoom.find("</svg>").unwrap()];
    assert_eq!(zoom.matches("<g class=\"op failing\"").count(), 1);
    assert!(zoom.contains("<g class=\"op newer\"") && zoom.contains("<g class=\"op source\""), "explaining writes missing");
    assert!(zoom.contains(">n1 · read → ") && zoom.contains(">n2 · write 2<"), "boxes must name their node");
    // Process labels live outside the scrolling area.
    assert!(dom.contains("<svg class=\"lane-labels\"") && dom.contains("font-weight=\"bold\">p2</text>"));
    assert!(dom.contains("href=\"timeline.html#t=0.300\""), "the full history is one click away, at the anomaly");
}

#[test]
fn a_stale_read_during_a_partition_names_the_partition() {
    let d = tempfile::tempdir().unwrap();
    let run = reported(d.path(), "partitioned", fixtures::partitioned_stale_read_run);
    let dom = fixtures::dump_dom(&url(&run.join("report.html")));
    let sentence = text_of(&dom, "anomaly-sentence");
    assert!(sentence.contains("Read of key k1 at 1.70 s on n1"), "{sentence}");
    assert!(sentence.contains("during partition (since 1.00 s; n1 cut off from n3, n4, n5)"), "{sentence}");
    // The band of the partition is shaded behind the zoomed operations.
    assert!(dom.contains("<g class=\"fault\" data-fault=\"partition\">"), "no fault band in the zoomed view");
}

#[test]
fn a_bank_failure_is_drawn_for_a_person() {
    let d = tempfile::tempdir().unwrap();
    let run = reported(d.path(), "bank", fixtures::bank_run);
    let page = run.join("report.html");
    let dom = fixtures::dump_dom(&url(&page));
    let sentence = text_of(&dom, "bank-sentence");
    for part in ["Read at 2.34 s on n1 summed to 790 instead of 800 (10 missing)", "transfer of 10 from account 3 to 4", "outcome unknown", "looks half-committed: debited, never credited", "during partition (since 2.00 s"] {
        assert!(sentence.contains(part), "the sentence lacks {part:?}: {sentence}");
    }
    // Total over time: every bad read marked (reads from 2.34 s on, 100 of them), the first ringed.
    assert!(dom.contains("<svg class=\"bank-total\""));
    let bad = dom.matches("<g class=\"bad-read\"").count();
    assert!((90..=110).contains(&bad), "{bad} bad reads marked");
    assert!(dom.contains("class=\"first-bad\"") && dom.contains("first bad read 2.34 s on n1: 790"));
    // The transfer whose amount is the difference is singled out among those in flight.
    let flight = &dom[dom.find("<table class=\"in-flight\">").expect("no in-flight table")..];
    let flight = &flight[..flight.find("</table>").unwrap()];
    assert!(flight.contains("<tr class=\"explains\">") && flight.contains("half-committed?"), "{flight}");
    // The first bad read against the last good one: account 3 lost 10, account 4 did not gain it.
    let first = &dom[dom.find("<table class=\"bank-read\">").unwrap()..];
    let first = &first[..first.find("</table>").unwrap()];
    assert!(first.contains("<td class=\"num\">-10</td>") || first.contains(">-10<"), "{first}");
    assert!(first.contains("wrong-total diff\"><b>790</b>"), "{first}");
    // Final balances of every node side by side; each sum is wrong and highlighted.
    let finals = &dom[dom.find("<table class=\"bank-finals\">").unwrap()..];
    let finals = &finals[..finals.find("</table>").unwrap()];
    assert!(finals.contains("<th>n1</th><th>n2</th><th>n3</th><th>n4</th><th>n5</th>"), "{finals}");
    assert_eq!(finals.matches("diff wrong-total\"><b>790</b>").count(), 5, "{finals}");
    // Accounts in natural order with their holders (account i on member i % 5).
    let rows: Vec<&str> = finals.split("<tr><td class=\"mono\">").skip(1).map(|r| &r[..r.find('<').unwrap()]).collect();
    assert_eq!(rows, vec!["0", "1", "2", "3", "4", "5", "6", "7"]);
    assert!(finals.contains("<td class=\"mono\">3</td><td>n4</td>"), "account 3 is held by n4: {finals}");
    assert!(on_first_screen(&probe(&page, "#bank-sentence")), "the bank sentence must open the report");
}

#[test]
fn lost_elements_show_when_they_were_added_acknowledged_and_last_seen() {
    let d = tempfile::tempdir().unwrap();
    let run = reported(d.path(), "set", fixtures::lost_element_run);
    let dom = fixtures::dump_dom(&url(&run.join("report.html")));
    let sentence = text_of(&dom, "elements-sentence");
    assert!(sentence.contains("Element 3 (added at 0.40 s on n1 by p0, acknowledged at 0.45 s) is missing from the final read of n3"), "{sentence}");
    let lost = &dom[dom.find("<table class=\"lost-elements\">").expect("no lost elements")..];
    let lost = &lost[..lost.find("</table>").unwrap()];
    assert!(lost.contains("<td class=\"mono\">3</td><td>0.40 s on n1 (p0)</td><td>0.45 s</td><td>0.92 s on n2</td>"), "{lost}");
    assert!(lost.contains("<td class=\"diff\">✗ · never</td>"), "n3 never showed it: {lost}");
    let unexpected = &dom[dom.find("<table class=\"unexpected-elements\">").expect("no unexpected elements")..];
    assert!(unexpected[..unexpected.find("</table>").unwrap()].contains("<td class=\"mono\">99</td><td>never"), "{unexpected}");
}

#[test]
fn a_crashed_node_shows_its_log_tail_in_the_health_block() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("crash");
    fixtures::stale_read_run(&run);
    let mut r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    r["health"] = serde_json::json!({"ok": false, "reasons": ["node n2 exited on its own at 3.10 s (signal: 6 (SIGABRT))"],
        "crashes": [{"node": "n2", "status": "signal: 6 (SIGABRT)", "time_s": 3.1, "log_tail": "applying entry 41\nsafety violation: <two leaders> in term 7\n"}]});
    std::fs::write(run.join("results.json"), r.to_string()).unwrap();
    write_run_report(&run).unwrap();
    let dom = fixtures::dump_dom(&url(&run.join("report.html")));
    let health = &dom[dom.find("<section class=\"health\"").expect("no health block")..];
    let health = &health[..health.find("</section>").unwrap()];
    assert!(health.contains("n2 exited on its own at 3.10 s (signal: 6 (SIGABRT)): the end of its log"), "{health}");
    assert!(health.contains("safety violation: &lt;two leaders&gt; in term 7"), "the log tail, escaped: {health}");
    assert!(dom.find("<section class=\"health\"").unwrap() < dom.find("id=\"anomaly\"").unwrap(), "health first");
}

#[test]
fn timeline_of_100k_operations_renders_in_under_two_seconds() {
    let d = tempfile::tempdir().unwrap();
    let run = d.path().join("big");
    let history = fixtures::big_register_history(100_000);
    std::fs::create_dir_all(run.join("nodes")).unwrap();
    std::fs::write(run.join("test.json"), fixtures::test_json("raft", "register", &["partition", "kill"], 1, &["linearizable"]).to_string()).unwrap();
    std::fs::write(run.join("history.jsonl"), history).unwrap();
    let t = Instant::now();
    write_run_report(&run).unwrap();
    eprintln!("report of 100,000 operations written in {:.2} s", t.elapsed().as_secs_f64());
    let page = run.join("timeline.html");
    eprintln!("timeline.html: {:.1} MB", std::fs::metadata(&page).unwrap().len() as f64 / 1e6);
    let t = Instant::now();
    let dom = fixtures::dump_dom_sized(&format!("{}#t=12.5", url(&page)), SCREEN.0, SCREEN.1);
    let wall = t.elapsed().as_secs_f64();
    let ms: f64 = text_of(&dom, "render-ms").trim().parse().unwrap_or_else(|_| panic!("no render time in the page"));
    let at = dom.find("data-rendered=\"").expect("the timeline did not render");
    let rendered: usize = dom[at + 15..].split('"').next().unwrap().parse().unwrap();
    eprintln!("timeline.html of 100,000 operations: first render at {ms:.0} ms after navigation start (chromium process {wall:.1} s), {rendered} boxes in the DOM");
    assert!(ms < 2000.0, "first render took {ms} ms");
    assert!(rendered > 20 && rendered < 3000, "{rendered} boxes: the page must draw the visible window only");
    assert_eq!(dom.matches("<div class=\"op ").count(), rendered);
    assert!(dom.contains("<div class=\"band\""), "fault bands missing");
    assert!(dom.contains("<div class=\"lh\""), "lane labels missing");
}

#[test]
fn timeline_shows_history_values_as_text() {
    let d = tempfile::tempdir().unwrap();
    let run = reported(d.path(), "stale", fixtures::stale_read_run);
    let html = std::fs::read_to_string(run.join("timeline.html")).unwrap();
    // The data block cannot be closed or commented out by a value.
    let data = &html[html.find("id=\"data\">").unwrap() + 10..];
    let data = &data[..data.find("</script>").unwrap()];
    assert!(!data.contains('<') && !data.contains('>') && data.contains("\\u003cscript\\u003edocument.title"), "values must be escaped in the data block");
    let dom = fixtures::dump_dom_sized(&format!("{}#t=0.2", url(&run.join("timeline.html"))), SCREEN.0, SCREEN.1);
    assert!(dom.contains("<title>timeline: raft-register-partition-kill</title>"), "a value ran as a script");
    assert!(dom.contains("&lt;script&gt;document.title="), "the value is shown as text");
    // The read that cannot be placed is outlined.
    assert_eq!(dom.matches("class=\"op ok mark\"").count(), 1, "the anomaly is not marked");
}

#[test]
fn the_index_row_carries_the_sentence_and_counts_in_words() {
    let d = tempfile::tempdir().unwrap();
    reported(d.path(), "raft-register/20261125T200000-42", fixtures::stale_read_run);
    write_index(d.path()).unwrap();
    let html = std::fs::read_to_string(d.path().join("index.html")).unwrap();
    assert!(html.contains("<p>1 run: 0 valid, 1 invalid"), "singular: {}", &html[..html.len().min(2000)]);
    let row = &html[html.find("<tr class=\"v-bad\"").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("class=\"anomaly-line\">Read of key k1 at 0.30 s on n1 returned"), "{row}");
}

/// Writes the example images of docs/reports.md into `$FAULTLINE_DOC_IMG`.
#[test]
#[ignore = "writes documentation images"]
fn write_doc_images() {
    let Ok(dir) = std::env::var("FAULTLINE_DOC_IMG") else { return };
    let out = Path::new(&dir);
    let d = tempfile::tempdir().unwrap();
    let lin = reported(d.path(), "raft-register-partition-kill/20261125T200000-43", fixtures::partitioned_stale_read_run);
    fixtures::screenshot(&url(&lin.join("report.html")), &out.join("anomaly-linearizable.png"), 1280, 640);
    let bank = reported(d.path(), "twopc-bank-partition/20261125T200000-5", fixtures::bank_run);
    fixtures::screenshot(&url(&bank.join("report.html")), &out.join("anomaly-bank.png"), 1280, 1000);
    fixtures::screenshot(&format!("{}#t=1.2", url(&lin.join("timeline.html"))), &out.join("timeline.png"), 1280, 640);
}
