//! End to end: Maelstrom-protocol nodes (the Python examples of `examples/maelstrom/`) run by
//! `faultline test --node-protocol maelstrom` under real faults. Correct nodes must pass, the
//! deliberately broken ones must be caught, a node that writes junk on stdout must be named with
//! its line, and no node process may outlive its run. Each run is a few seconds long.
//! `cargo test --release -p faultline --test e2e_maelstrom`.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// The example nodes, copied into a directory of their own so a scan of `/proc` finds exactly
/// the processes of this run.
fn examples() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/maelstrom");
    for e in std::fs::read_dir(&src).expect("examples/maelstrom") {
        let e = e.unwrap();
        if e.path().extension().and_then(|x| x.to_str()) == Some("py") {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
    }
    let path = dir.path().to_path_buf();
    (dir, path)
}

fn python_available() -> bool {
    Command::new("python3").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

/// One `faultline test --node-protocol maelstrom` of example `script` with `args`.
fn maelstrom(script: &str, args: &[&str]) -> Run {
    let (nodes, dir) = examples();
    let results_dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(faultline());
    cmd.args(["test", "--node-protocol", "maelstrom", "--nemesis-interval", "1", "--rate", "100", "--concurrency", "6"])
        .args(args)
        .arg("--results")
        .arg(results_dir.path())
        .arg("--node-bin")
        .arg(dir.join(script));
    if !args.contains(&"--time-limit") {
        cmd.args(["--time-limit", "4"]);
    }
    let out = run_bounded(cmd, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let run_dir = stdout.lines().find_map(|l| l.strip_prefix("run directory: ")).map(PathBuf::from);
    let results = run_dir.as_ref().and_then(|d| std::fs::read_to_string(d.join("results.json")).ok()).and_then(|t| serde_json::from_str(&t).ok());
    // No node outlives the run.
    let needle = dir.display().to_string();
    let left = processes_mentioning(&needle);
    assert!(left.is_empty(), "node processes left behind: {left:?}");
    drop(nodes);
    Run { code: out.status.code().unwrap_or(-1), stdout, stderr, run_dir, results, results_dir }
}

fn checker<'a>(run: &'a Run, name: &str) -> &'a Value {
    &run.results.as_ref().expect("results.json")["checkers"][name]
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

/// `faultline check RUN_DIR` gives the verdict of the run again.
fn recheck(run: &Run) -> i32 {
    let mut cmd = Command::new(faultline());
    cmd.arg("check").arg(run.run_dir.as_ref().expect("a run directory"));
    run_bounded(cmd, Duration::from_secs(60)).status.code().unwrap_or(-1)
}

#[test]
fn echo_passes_and_every_message_is_logged() {
    if !python_available() {
        return;
    }
    let _g = serial();
    let run = maelstrom("echo.py", &["--workload", "echo", "--seed", "1"]);
    assert_valid_with_faults(&run, &[]);
    assert_eq!(checker(&run, "echo")["valid"], true, "{}", run.explain());
    let dir = run.run_dir.as_ref().unwrap();
    let history = lines(&dir.join("history.jsonl"));
    let client_ops: Vec<&Value> = history.iter().filter(|o| o["process"] != "nemesis").collect();
    assert!(client_ops.iter().all(|o| o["node"].as_str().is_some_and(|n| n.starts_with('n'))), "every op names its node");
    let messages = lines(&dir.join("messages.jsonl"));
    let inits = messages.iter().filter(|m| m["type"] == "init").count();
    assert_eq!(inits, 5, "one init per node");
    for m in &messages {
        assert!(m["src"].is_string() && m["dest"].is_string() && m["type"].is_string() && m["sent_ns"].is_u64(), "{m}");
        assert!(m["delivered_ns"].is_u64() || m["dropped"] == true, "{m}");
    }
    let echoes = messages.iter().filter(|m| m["type"] == "echo_ok").count() as u64;
    let net = &run.results.as_ref().unwrap()["stats"]["network"];
    assert_eq!(net["by_type"]["echo_ok"].as_u64(), Some(echoes), "{net}");
    assert_eq!(net["messages_total"].as_u64(), Some(messages.len() as u64), "{net}");
    let svg = std::fs::read_to_string(dir.join("messages.svg")).expect("messages.svg");
    assert!(svg.starts_with("<svg") && svg.contains(">init<") && svg.contains(">n5<"), "the diagram shows the inits and every node");
    let test = std::fs::read_to_string(dir.join("test.json")).unwrap();
    assert!(test.contains("\"node_protocol\": \"maelstrom\""), "{test}");
    assert_eq!(recheck(&run), 0);
}

#[test]
fn broadcast_with_gossip_survives_partitions_pauses_and_slow_links() {
    if !python_available() {
        return;
    }
    let _g = serial();
    let run = maelstrom("broadcast.py", &["--workload", "broadcast", "--nemesis", "partition-halves,pause,slow", "--seed", "2", "--time-limit", "6"]);
    assert_valid_with_faults(&run, &["start-partition"]);
    assert_eq!(checker(&run, "set")["valid"], true, "{}", run.explain());
    assert_eq!(checker(&run, "convergence")["valid"], true, "{}", run.explain());
    let dir = run.run_dir.as_ref().unwrap();
    let messages = lines(&dir.join("messages.jsonl"));
    assert!(messages.iter().any(|m| m["type"] == "topology"), "the topology was sent");
    // Gossip crossed the partition's cut links while it held: some of it was dropped.
    assert!(messages.iter().any(|m| m["dropped"] == true && m["reason"] == "partition"), "no message was dropped by the partition");
    let net = &run.results.as_ref().unwrap()["stats"]["network"];
    assert!(net["between_nodes"].as_u64().unwrap_or(0) > 0 && net["dropped"].as_u64().unwrap_or(0) > 0, "{net}");
}

/// Gossip Glomers' largest broadcast: 25 nodes in a grid, every message 100 ms on its way. The
/// gossiping node must still get every acknowledged message to every node, and the router must
/// have held each message for the latency.
#[test]
fn broadcast_on_25_nodes_with_100_ms_links_converges() {
    if !python_available() {
        return;
    }
    let _g = serial();
    let run = maelstrom(
        "broadcast.py",
        &["--workload", "broadcast", "--nodes", "25", "--latency-ms", "100", "--nemesis", "none", "--seed", "25", "--time-limit", "4"],
    );
    assert_eq!(run.code, 0, "{}", run.explain());
    assert_eq!(checker(&run, "set")["valid"], true, "{}", run.explain());
    assert_eq!(checker(&run, "convergence")["valid"], true, "{}", run.explain());
    let results = run.results.as_ref().unwrap();
    let finals = results["stats"]["final_reads"].as_object().expect("final reads");
    assert_eq!(finals.len(), 25, "every node was read at the end");
    assert_eq!(results["stats"]["network"]["latency_ms"], 100);
    let messages = lines(&run.run_dir.as_ref().unwrap().join("messages.jsonl"));
    let gossip: Vec<&Value> = messages.iter().filter(|m| m["type"] == "gossip" && m["delivered_ns"].is_u64()).collect();
    assert!(!gossip.is_empty(), "the nodes gossiped");
    for m in gossip {
        let took_ms = (m["delivered_ns"].as_u64().unwrap() - m["sent_ns"].as_u64().unwrap()) / 1_000_000;
        assert!(took_ms >= 99, "a gossip message took {took_ms} ms on a 100 ms link: {m}");
    }
    let test = std::fs::read_to_string(run.run_dir.as_ref().unwrap().join("test.json")).unwrap();
    assert!(test.contains("--latency-ms") && test.contains("--nodes"), "the rerun command repeats the latency: {test}");
}

/// `--latency-dist exponential`: each message's latency is drawn (mean `--latency-ms`), so some
/// messages arrive well before the mean and some well after; the run records the distribution
/// in test.json, results.json and its rerun command.
#[test]
fn latency_drawn_from_a_distribution_is_spread_and_recorded() {
    if !python_available() {
        return;
    }
    let _g = serial();
    let run = maelstrom("echo.py", &["--workload", "echo", "--latency-ms", "20", "--latency-dist", "exponential", "--nemesis", "none", "--seed", "3", "--time-limit", "2"]);
    assert_eq!(run.code, 0, "{}", run.explain());
    let dir = run.run_dir.as_ref().unwrap();
    let test: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("test.json")).unwrap()).unwrap();
    assert_eq!((test["latency_ms"].as_u64(), test["latency_dist"].as_str()), (Some(20), Some("exponential")), "{test}");
    assert!(test.to_string().contains("--latency-dist exponential"), "the rerun command repeats the distribution: {test}");
    assert_eq!(run.results.as_ref().unwrap()["stats"]["network"]["latency_dist"], "exponential");
    let took_ms: Vec<u64> = lines(&dir.join("messages.jsonl"))
        .iter()
        .filter(|m| m["src"] != "c0" && m["dest"] != "c0" && m["delivered_ns"].is_u64())
        .map(|m| (m["delivered_ns"].as_u64().unwrap() - m["sent_ns"].as_u64().unwrap()) / 1_000_000)
        .collect();
    assert!(took_ms.len() > 20, "{} messages", took_ms.len());
    assert!(took_ms.iter().any(|&t| t < 10), "no message was faster than half the mean: {took_ms:?}");
    assert!(took_ms.iter().any(|&t| t > 30), "no message was slower than 1.5 times the mean: {took_ms:?}");
}

#[test]
fn broadcast_with_gossip_survives_clock_faults() {
    if !python_available() {
        return;
    }
    let _g = serial();
    let run = maelstrom("broadcast.py", &["--workload", "broadcast", "--nemesis", "clock,partition", "--seed", "12"]);
    if run.code == 254 && run.stderr.contains("libfaketime") {
        return; // the clock nemesis needs libfaketime (scripts/test installs it)
    }
    assert_valid_with_faults(&run, &["start-clock"]);
    let test = std::fs::read_to_string(run.run_dir.as_ref().unwrap().join("test.json")).unwrap();
    assert!(test.contains("libfaketime"), "the nodes ran with libfaketime preloaded");
}

#[test]
fn broadcast_without_retries_is_caught_under_partition() {
    if !python_available() {
        return;
    }
    let _g = serial();
    let run = maelstrom("broadcast_noretry.py", &["--workload", "broadcast", "--nemesis", "partition-halves", "--seed", "3", "--time-limit", "5"]);
    assert_eq!(run.code, 1, "a broadcast that never retries loses messages under partitions\n{}", run.explain());
    assert_eq!(checker(&run, "set")["valid"], false, "{}", run.explain());
    assert_eq!(recheck(&run), 1);
}

#[test]
fn unique_ids_survive_kills() {
    if !python_available() {
        return;
    }
    let _g = serial();
    let run = maelstrom("unique_ids.py", &["--workload", "unique-ids", "--nemesis", "kill", "--seed", "4"]);
    assert_valid_with_faults(&run, &["kill", "restart"]);
    assert!(run.stdout.contains("crash with amnesia"), "{}", run.stdout);
    let stats = &run.results.as_ref().unwrap()["stats"];
    assert!(stats["kill_semantics"].as_str().is_some_and(|s| s.contains("amnesia")), "{stats}");
    // Every restart is a fresh process that was sent a new init.
    let messages = lines(&run.run_dir.as_ref().unwrap().join("messages.jsonl"));
    assert!(messages.iter().filter(|m| m["type"] == "init_ok").count() > 5, "restarted nodes are initialized again");
}

#[test]
fn unique_ids_from_a_counter_are_caught_under_kill() {
    if !python_available() {
        return;
    }
    let _g = serial();
    let run = maelstrom("unique_ids_counter.py", &["--workload", "unique-ids", "--nemesis", "kill", "--seed", "5", "--time-limit", "7"]);
    assert_eq!(run.code, 1, "ids restart at zero after a kill\n{}", run.explain());
    let c = checker(&run, "unique-ids");
    assert_eq!(c["valid"], false, "{}", run.explain());
    assert!(c["duplicated_count"].as_u64().unwrap_or(0) > 0, "{c}");
    assert_eq!(recheck(&run), 1);
}

#[test]
fn a_g_counter_on_seq_kv_converges() {
    if !python_available() {
        return;
    }
    let _g = serial();
    let run = maelstrom("g_counter.py", &["--workload", "g-counter", "--seed", "6"]);
    assert_valid_with_faults(&run, &[]);
    assert_eq!(checker(&run, "counter")["valid"], true, "{}", run.explain());
    assert_eq!(checker(&run, "convergence")["valid"], true, "{}", run.explain());
    let messages = lines(&run.run_dir.as_ref().unwrap().join("messages.jsonl"));
    assert!(messages.iter().any(|m| m["dest"] == "seq-kv") && messages.iter().any(|m| m["src"] == "seq-kv"), "the nodes used seq-kv");
}

#[test]
fn a_g_set_by_anti_entropy_converges_under_partitions() {
    if !python_available() {
        return;
    }
    let _g = serial();
    let run = maelstrom("g_set.py", &["--workload", "g-set", "--nemesis", "partition", "--seed", "10"]);
    assert_valid_with_faults(&run, &[]);
    assert_eq!(checker(&run, "set")["valid"], true, "{}", run.explain());
    assert_eq!(checker(&run, "convergence")["valid"], true, "{}", run.explain());
}

#[test]
fn a_pn_counter_on_seq_kv_converges_with_negative_deltas() {
    if !python_available() {
        return;
    }
    let _g = serial();
    let run = maelstrom("g_counter.py", &["--workload", "pn-counter", "--nemesis", "slow", "--seed", "11"]);
    assert_valid_with_faults(&run, &[]);
    let history = lines(&run.run_dir.as_ref().unwrap().join("history.jsonl"));
    assert!(history.iter().any(|o| o["f"] == "add" && o["type"] == "ok" && o["value"].as_i64().is_some_and(|d| d < 0)), "some negative delta was acknowledged");
    assert_eq!(checker(&run, "counter")["valid"], true, "{}", run.explain());
}

#[test]
fn lin_kv_through_the_service_is_linearizable() {
    if !python_available() {
        return;
    }
    let _g = serial();
    let run = maelstrom("lin_kv.py", &["--workload", "lin-kv", "--nemesis", "partition,pause", "--seed", "7"]);
    assert_valid_with_faults(&run, &[]);
    assert_eq!(checker(&run, "linearizable")["valid"], true, "{}", run.explain());
}

#[test]
fn lin_kv_reading_a_local_cache_is_caught() {
    if !python_available() {
        return;
    }
    let _g = serial();
    let run = maelstrom("lin_kv_cache.py", &["--workload", "lin-kv", "--seed", "8"]);
    assert_eq!(run.code, 1, "reads from a local cache are stale\n{}", run.explain());
    assert_eq!(checker(&run, "linearizable")["valid"], false, "{}", run.explain());
    assert_eq!(recheck(&run), 1);
}

#[test]
fn a_node_printing_junk_on_stdout_is_named_with_the_line() {
    if !python_available() {
        return;
    }
    let _g = serial();
    let run = maelstrom("junk_stdout.py", &["--workload", "echo", "--nemesis", "none", "--seed", "9"]);
    assert_eq!(run.code, 2, "junk on stdout: the run cannot vouch for the node\n{}", run.explain());
    let reasons = run.results.as_ref().unwrap()["health"]["reasons"].to_string();
    assert!(reasons.contains("not a JSON message") && reasons.contains("DEBUG: got my third echo"), "{reasons}");
    assert!(run.stdout.contains("DEBUG: got my third echo"), "{}", run.stdout);
}

#[test]
fn bad_flags_are_usage_errors_naming_the_flag() {
    let (_nodes, dir) = examples();
    let echo = dir.join("echo.py");
    let echo = echo.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--node-protocol", "carrier-pigeon", "--workload", "echo", "--node-bin", echo], "--node-protocol"),
        (&["--node-protocol", "maelstrom", "--workload", "echo"], "--node-bin"),
        (&["--node-protocol", "maelstrom", "--workload", "kafka", "--node-bin", echo], "--workload"),
        (&["--node-protocol", "maelstrom", "--node-bin", echo], "--workload"),
        (&["--node-protocol", "maelstrom", "--workload", "echo", "--node-bin", "/no/such/node"], "--node-bin"),
        (&["--node-protocol", "maelstrom", "--workload", "echo", "--nemesis", "kill-leader", "--node-bin", echo], "--nemesis"),
        (&["--node-protocol", "maelstrom", "--workload", "echo", "--nodes", "51", "--node-bin", echo], "--nodes"),
        (&["--node-protocol", "maelstrom", "--workload", "echo", "--nodes", "2", "--nemesis", "partition", "--node-bin", echo], "--nemesis"),
        (&["--node-protocol", "maelstrom", "--workload", "echo", "--latency-ms", "60001", "--node-bin", echo], "--latency-ms"),
        (&["--workload", "register", "--latency-ms", "100"], "--latency-ms"),
        (&["--node-protocol", "maelstrom", "--workload", "echo", "--latency-ms", "10", "--latency-dist", "pareto", "--node-bin", echo], "--latency-dist"),
        (&["--node-protocol", "maelstrom", "--workload", "echo", "--latency-dist", "uniform", "--node-bin", echo], "--latency-dist"),
        (&["--workload", "register", "--latency-dist", "uniform"], "--latency-dist"),
    ];
    for (args, flag) in cases {
        let results = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(faultline());
        cmd.arg("test").args(*args).arg("--results").arg(results.path());
        let out = run_bounded(cmd, Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?}: the message names {flag}: {stderr}");
    }
}

#[test]
fn a_node_that_never_answers_init_fails_the_run_with_what_it_wrote() {
    let _g = serial();
    let results = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(faultline());
    // `cat` copies the init back: a message that claims to come from c0.
    cmd.args(["test", "--node-protocol", "maelstrom", "--workload", "echo", "--node-bin", "/bin/cat", "--time-limit", "2"]).arg("--results").arg(results.path());
    let out = run_bounded(cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{stderr}");
    assert!(stderr.contains("did not initialize") && stderr.contains("its src is \"c0\", not n1"), "{stderr}");
}
