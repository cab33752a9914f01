//! `faultline suite` on real clusters: two protocols × two nemeses with short runs, then the
//! comparison's cells checked against each run's `results.json`, and `faultline report` on a
//! single real run. The suite starts real node processes through `faultline test` (about
//! 25 s on two loaded cores); each run is killed past `run_timeout_s`, and its nodes with it.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn read(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

const SUITE: &str = r#"
name = "small"
protocols = ["raft", "crdt-state"]
nemeses = ["partition", "kill"]
repetitions = 1
seed = 3
time_limit = 3.0
nemesis_interval = 1.0
rate = 50.0
concurrency = 4
nodes = 3
run_timeout_s = 90
[protocol.raft]
workloads = ["register"]
[protocol.crdt-state]
workloads = ["register"]
unclaimed = ["linearizable"]
"#;

#[test]
fn small_suite_on_real_clusters() {
    let d = tempfile::tempdir().unwrap();
    let suite = d.path().join("small.toml");
    std::fs::write(&suite, SUITE).unwrap();
    let results = d.path().join("results");
    let out = Command::new(env!("CARGO_BIN_EXE_faultline")).arg("suite").arg(&suite).arg("--results").arg(&results).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let code = out.status.code().unwrap_or(255);
    assert!([0, 1, 2].contains(&code), "suite exited {code}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let cmp = read(&results.join("comparison.json"));
    let cells = cmp["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4, "{cmp}");
    let mut worst = 0;
    for c in cells {
        let run = results.join(c["runs"][0].as_str().unwrap());
        let r = read(&run.join("results.json"));
        let want = match &r["valid"] {
            Value::Bool(true) => "true",
            Value::Bool(false) => "false",
            _ => "unknown",
        };
        assert_eq!(c["claimed"]["verdict"].as_str().unwrap(), want);
        assert_eq!(c["availability"], r["stats"]["availability"]);
        assert_eq!(c["p50_ms"], r["stats"]["latency_ms"]["p50"]);
        assert_eq!(c["p99_ms"], r["stats"]["latency_ms"]["p99"]);
        assert!(run.join("report.html").is_file() && run.join("latency.png").is_file());
        worst = worst.max(match want { "false" => 2, "unknown" => 1, _ => 0 });
        if c["protocol"] == "crdt-state" {
            assert!(run.join("unclaimed.json").is_file(), "unclaimed checks not stored");
            assert!(c["unclaimed"]["linearizable"]["verdict"].is_string());
        }
    }
    let want_code = [0, 2, 1][worst];
    assert_eq!(code, want_code, "exit code is not the worst of the runs");
    let junit = std::fs::read_to_string(results.join("junit.xml")).unwrap();
    assert_eq!(junit.matches("<testcase ").count(), 4);
    // Re-rendering one run reproduces its report.
    let run = results.join(cells[0]["runs"][0].as_str().unwrap());
    std::fs::remove_file(run.join("report.html")).unwrap();
    let st = Command::new(env!("CARGO_BIN_EXE_faultline")).arg("report").arg(&run).status().unwrap();
    assert!(st.code().is_some_and(|c| c <= 2));
    assert!(run.join("report.html").is_file());
}

#[test]
fn suite_rejects_a_bad_file_with_254() {
    let d = tempfile::tempdir().unwrap();
    let suite = d.path().join("bad.toml");
    std::fs::write(&suite, "protocols = [\"raft\"]\nnemeses = [\"earthquake\"]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_faultline")).arg("suite").arg(&suite).output().unwrap();
    assert_eq!(out.status.code(), Some(254));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("earthquake"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_faultline")).args(["suite", "/nonexistent.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(254));
}

#[test]
fn suite_shards_are_deterministic_slices() {
    let d = tempfile::tempdir().unwrap();
    let suite = d.path().join("s.toml");
    std::fs::write(&suite, SUITE).unwrap();
    let list = |shard: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_faultline"));
        c.arg("suite").arg(&suite).arg("--dry-run");
        if let Some(s) = shard {
            c.args(["--shard", s]);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect::<Vec<_>>()
    };
    let all = list(None);
    assert_eq!(all.len(), 4);
    let mut merged: Vec<String> = list(Some("1/2")).into_iter().chain(list(Some("2/2"))).collect();
    merged.sort();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(merged, sorted);
    assert_eq!(list(Some("1/2")), list(Some("1/2")));
}

/// A suite that mixes systems: the reference raft, the same binary entered under a label of its
/// own (as a user's own raft would be), and a Maelstrom broadcast node and its never-retrying
/// variant. Each run gets its binary, node protocol and label; the comparison keeps the four
/// systems apart; the broken broadcast is caught under the same partitions the good one
/// survives (seeds are shared, so both meet the same schedule).
#[test]
fn a_suite_of_own_binaries_and_maelstrom_nodes() {
    let d = tempfile::tempdir().unwrap();
    let bin = d.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let reference = Path::new(env!("CARGO_BIN_EXE_faultline")).with_file_name("faultline-node");
    std::os::unix::fs::symlink(&reference, bin.join("my-raft")).unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/maelstrom");
    let suite = d.path().join("mixed.toml");
    std::fs::write(
        &suite,
        format!(
            r#"
name = "mixed"
protocols = ["raft", "my-raft", "gossip", "gossip-noretry"]
nemeses = ["partition-halves"]
seed = 4
time_limit = 4.0
nemesis_interval = 1.0
rate = 40.0
concurrency = 3
nodes = 3
run_timeout_s = 90
[protocol.raft]
workloads = ["register"]
[protocol.my-raft]
protocol = "raft"
node_bin = "bin/my-raft"
workloads = ["register"]
[protocol.gossip]
node_protocol = "maelstrom"
node_bin = "{ex}/broadcast.py"
workloads = ["broadcast"]
[protocol.gossip-noretry]
node_protocol = "maelstrom"
node_bin = "{ex}/broadcast_noretry.py"
workloads = ["broadcast"]
"#,
            ex = examples.display()
        ),
    )
    .unwrap();
    let results = d.path().join("results");
    let out = Command::new(env!("CARGO_BIN_EXE_faultline")).arg("suite").arg(&suite).arg("--results").arg(&results).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let cmp = read(&results.join("comparison.json"));
    let cells = cmp["cells"].as_array().unwrap();
    let by = |label: &str| cells.iter().find(|c| c["protocol"] == label).unwrap_or_else(|| panic!("no cell {label}: {cmp}"));
    let test_of = |label: &str| read(&results.join(by(label)["runs"][0].as_str().unwrap()).join("test.json"));
    assert_eq!(cells.len(), 4, "{cmp}");
    let mine = test_of("my-raft");
    assert_eq!((mine["protocol"].as_str(), mine["label"].as_str()), (Some("raft"), Some("my-raft")));
    assert_eq!(mine["node_bin"].as_str().map(Path::new), Some(std::fs::canonicalize(bin.join("my-raft")).unwrap().as_path()));
    assert!(test_of("raft")["label"].is_null());
    let gossip = test_of("gossip");
    assert_eq!((gossip["node_protocol"].as_str(), gossip["label"].as_str(), gossip["workload"].as_str()), (Some("maelstrom"), Some("gossip"), Some("broadcast")));
    assert!(gossip["rerun"].as_str().unwrap().contains("--label gossip"), "{gossip}");
    assert_eq!(test_of("gossip")["seed"], test_of("gossip-noretry")["seed"]);
    for label in ["raft", "my-raft", "gossip"] {
        assert_eq!(by(label)["claimed"]["verdict"], "true", "{label} should be valid: {}\n{stdout}", by(label));
    }
    assert_eq!(by("gossip-noretry")["claimed"]["verdict"], "false", "the broadcast that never retries loses messages under partitions: {stdout}");
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let junit = std::fs::read_to_string(results.join("junit.xml")).unwrap();
    assert!(junit.contains("name=\"gossip-noretry/broadcast/partition-halves#0\"") && junit.contains("name=\"my-raft/register/partition-halves#0\""), "{junit}");
}
