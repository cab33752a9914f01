//! End to end: deliberately weakened protocols are caught. Each test expects exit 1 and the
//! named checker invalid.
//!
//! A violation needs the faults to line up with the operations (a stale read needs a read on
//! the minority side of a partition after the majority wrote), which a short randomized run
//! does not guarantee. So each test tries up to [`ATTEMPTS`] seeds and passes on the first
//! violation; it fails if none of them finds one. An invalid verdict is never retried away:
//! only the absence of a violation is.

mod common;
#[path = "report_fixtures.rs"]
mod fixtures;
use common::*;

const ATTEMPTS: usize = 3;

fn caught(base: &[&str], checker: &str, seeds: [&str; ATTEMPTS]) -> Run {
    let _g = serial();
    let mut tried = Vec::new();
    for seed in seeds {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(&["--seed", seed]);
        let run = faultline_test(&args);
        assert!(run.code == 0 || run.code == 1 || run.code == 2, "harness failure\n{}", run.explain());
        if run.code == 1 {
            let results = run.results.as_ref().expect("results.json");
            assert_eq!(results["valid"], false);
            assert_eq!(results["checkers"][checker]["valid"], false, "{}", run.explain());
            return run;
        }
        tried.push(format!("seed {seed}: exit {}", run.code));
    }
    panic!("no violation found in {ATTEMPTS} attempts: {tried:?}");
}

/// The report of a real run with a stale read (raft serving reads from its local state) opens
/// on the anomaly: the offending read is on the first screen, and the sentence names the key,
/// the node and the time; the terminal printed the report's path and the violated guarantee.
#[test]
fn raft_local_reads_are_not_linearizable() {
    let run = caught(
        &[
            "--protocol", "raft", "--workload", "register", "--node-arg=--read-mode", "--node-arg=local",
            "--nemesis", "partition-halves,partition-one", "--time-limit", "10", "--nemesis-interval", "2",
        ],
        "linearizable",
        ["31", "32", "33"],
    );
    let dir = run.run_dir.as_ref().unwrap();
    let page = dir.join("report.html");
    assert!(run.stdout.contains(&format!("report: {}", page.display())), "the terminal must name the report\n{}", run.stdout);
    assert!(run.stdout.contains("linearizable"), "the terminal must name the violated guarantee\n{}", run.stdout);
    let html = std::fs::read_to_string(&page).unwrap();
    let (anomaly, verdicts) = (html.find("id=\"anomaly\"").expect("no anomaly section"), html.find("id=\"verdicts\"").unwrap());
    assert!(anomaly < verdicts, "the anomaly must open the report");
    let p = fixtures::probe(&page, "#anomaly g.op.failing rect");
    assert!(fixtures::on_first_screen(&p), "the offending read of a real run is not on the first screen: {p}");
    let dom = fixtures::dump_dom(&fixtures::url(&page));
    let at = dom.find("id=\"anomaly-sentence\"").expect("no sentence");
    let sentence = fixtures::decode(&dom[at..at + dom[at..].find("</p>").unwrap()]);
    assert!(sentence.contains("Read of key ") && sentence.contains(" s on n") && sentence.contains(" returned "), "{sentence}");
}

#[test]
fn crdt_state_register_is_not_linearizable() {
    caught(
        &[
            "--protocol", "crdt-state", "--workload", "register", "--check", "linearizable",
            "--nemesis", "partition,clock", "--time-limit", "10", "--nemesis-interval", "1.5",
        ],
        "linearizable",
        ["41", "42", "43"],
    );
}

#[test]
fn twopc_unsafe_commit_breaks_the_bank() {
    caught(
        &[
            "--protocol", "twopc", "--workload", "bank", "--node-arg=--unsafe-commit-on-timeout",
            "--nemesis", "partition", "--time-limit", "10", "--nemesis-interval", "1.5",
        ],
        "bank",
        ["51", "52", "53"],
    );
}
