//! End to end: verdicts a nightly job can trust. Small misbehaving node binaries
//! (tests/fake_nodes, Python standard library) stand in for broken clusters; each test asserts
//! the exit code, the health reason in results.json, and that no process is left behind.

mod common;
use common::*;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn fake(mode: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake_nodes").join(mode)
}

fn have_python() -> bool {
    Command::new("python3").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

/// The flags of a short run against a fake node: 3 nodes, register, no faults unless added.
fn base_args(mode: &str, results: &Path) -> Vec<String> {
    let mut a: Vec<String> = ["test", "--protocol", "fake", "--workload", "register", "--nodes", "3", "--concurrency", "3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(["--rate", "60", "--request-timeout-ms", "300", "--seed", "7"].map(String::from));
    a.extend(["--nemesis-interval".into(), "1".into(), "--results".into(), results.display().to_string()]);
    a.extend(["--node-bin".into(), fake(mode).display().to_string()]);
    a
}

/// Runs `faultline test` against a fake node with extra flags (3 s unless they say otherwise).
fn fake_run(mode: &str, extra: &[&str]) -> Run {
    let results_dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(faultline());
    cmd.args(base_args(mode, results_dir.path())).args(extra);
    if !extra.contains(&"--time-limit") {
        cmd.args(["--time-limit", "3"]);
    }
    let out = run_bounded(cmd, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let run_dir = stdout.lines().find_map(|l| l.strip_prefix("run directory: ")).map(PathBuf::from);
    let results = run_dir.as_ref().and_then(|d| std::fs::read_to_string(d.join("results.json")).ok()).and_then(|t| serde_json::from_str(&t).ok());
    Run { code: out.status.code().unwrap_or(-1), stdout, stderr, run_dir, results, results_dir }
}

fn reasons(run: &Run) -> Vec<String> {
    let r = run.results.as_ref().unwrap_or_else(|| panic!("no results.json\n{}", run.explain()));
    r["health"]["reasons"].as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

fn assert_reason(run: &Run, needle: &str) {
    let rs = reasons(run);
    assert!(rs.iter().any(|r| r.contains(needle)), "no health reason containing {needle:?}: {rs:?}\n{}", run.explain());
}

/// No process of this run (its results directory is in every node's arguments) is left.
fn assert_nothing_left(results: &Path) {
    let needle = results.display().to_string();
    let gone = wait_until(Duration::from_secs(5), || processes_mentioning(&needle).is_empty());
    assert!(gone, "processes left behind: {:?}", processes_mentioning(&needle));
}

#[test]
fn a_correct_fake_cluster_is_valid() {
    if !have_python() {
        return;
    }
    let _g = serial();
    let run = fake_run("ok", &["--nemesis", "kill"]);
    assert_eq!(run.code, 0, "{}", run.explain());
    assert_eq!(run.results.as_ref().unwrap()["health"]["ok"], true);
    assert_nothing_left(run.results_dir.path());
}

#[test]
fn a_node_that_never_answers_cannot_vouch() {
    if !have_python() {
        return;
    }
    let _g = serial();
    for mode in ["silent", "garbage"] {
        let run = fake_run(mode, &["--nemesis", "none"]);
        assert_eq!(run.code, 2, "{mode}: {}", run.explain());
        assert_eq!(run.results.as_ref().unwrap()["valid"], "unknown", "{mode}");
        assert_reason(&run, "too few acknowledged operations");
        assert!(run.stdout.contains("cannot vouch"), "{}", run.stdout);
        assert_nothing_left(run.results_dir.path());
    }
}

#[test]
fn a_node_that_cannot_start_is_a_harness_failure_with_results() {
    if !have_python() {
        return;
    }
    let _g = serial();
    let run = fake_run("exit-at-start", &["--nemesis", "none"]);
    assert_eq!(run.code, 255, "{}", run.explain());
    assert!(run.stderr.contains("exiting at start-up"), "the node's log is quoted: {}", run.stderr);
    assert_eq!(run.results.as_ref().unwrap()["valid"], "unknown");
    assert_reason(&run, "the run failed");
    assert_nothing_left(run.results_dir.path());
}

#[test]
fn a_node_that_never_listens_is_a_harness_failure() {
    if !have_python() {
        return;
    }
    let _g = serial();
    let run = fake_run("never-listen", &["--nemesis", "none"]);
    assert_eq!(run.code, 255, "{}", run.explain());
    assert!(run.stderr.contains("did not accept connections"), "{}", run.stderr);
    assert_nothing_left(run.results_dir.path());
}

#[test]
fn nodes_that_cannot_restart_make_the_run_unknown() {
    if !have_python() {
        return;
    }
    let _g = serial();
    let run = fake_run("no-restart", &["--nemesis", "kill", "--time-limit", "4"]);
    assert_eq!(run.code, 2, "{}", run.explain());
    assert_reason(&run, "was down at the end of the run");
    assert_nothing_left(run.results_dir.path());
}

#[test]
fn a_node_that_dies_by_itself_is_recorded_and_fails_the_run_unless_allowed() {
    if !have_python() {
        return;
    }
    let _g = serial();
    let run = fake_run("die-mid-run", &["--nemesis", "none", "--time-limit", "4"]);
    assert_eq!(run.code, 2, "{}", run.explain());
    assert_reason(&run, "node n2 exited on its own");
    assert_reason(&run, "assertion failed, exiting");
    let crash = history_events(&run, "crash");
    assert_eq!(crash.len(), 1, "one crash event: {crash:?}");
    assert_eq!(crash[0]["value"]["node"], "n2");
    assert_eq!(crash[0]["value"]["code"], 7);
    // The supervisor restarted it: the final reads reached n2.
    assert_eq!(run.results.as_ref().unwrap()["health"]["crashes"].as_array().map(Vec::len), Some(1));

    let allowed = fake_run("die-mid-run", &["--nemesis", "none", "--time-limit", "4", "--allow-crashes"]);
    assert_eq!(allowed.code, 0, "{}", allowed.explain());
    assert_eq!(history_events(&allowed, "crash").len(), 1);
    assert_nothing_left(run.results_dir.path());
}

fn history_events(run: &Run, f: &str) -> Vec<Value> {
    let dir = run.run_dir.as_ref().expect("run dir");
    std::fs::read_to_string(history(dir))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["process"] == "nemesis" && v["f"] == f)
        .collect()
}

#[test]
fn probing_a_node_binary_is_bounded_by_its_pipes_and_its_size() {
    if !have_python() {
        return;
    }
    let _g = serial();
    let started = Instant::now();
    let run = fake_run("list-bg", &["--nemesis", "none"]);
    assert_eq!(run.code, 0, "{}", run.explain());
    assert!(started.elapsed() < Duration::from_secs(25), "a background child of --list held the harness for {:?}", started.elapsed());
    let big = fake_run("list-big", &["--nemesis", "none"]);
    assert_eq!(big.code, 0, "a long --list is read to its end: {}", big.explain());
}

/// Starts a run against `mode` with stdout read line by line; returns the child, the run
/// directory and a receiver of the remaining stdout lines.
fn start(mode: &str, results: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Child, PathBuf, std::sync::mpsc::Receiver<String>) {
    let mut cmd = Command::new(faultline());
    cmd.args(base_args(mode, results)).args(extra).stdout(Stdio::piped()).stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawning faultline");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).expect("reading stdout");
    let dir = PathBuf::from(line.trim().strip_prefix("run directory: ").unwrap_or_else(|| panic!("unexpected first line {line:?}")));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in out.lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    (child, dir, rx)
}

fn wait_for_line(rx: &std::sync::mpsc::Receiver<String>, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            if l.starts_with(prefix) {
                return;
            }
        }
    }
    panic!("no line starting with {prefix:?}");
}

fn wait_exit(child: &mut Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("faultline did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn results_of(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).expect("results.json")).expect("JSON")
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

#[test]
fn a_signal_in_any_phase_marks_the_run_interrupted_and_never_exits_0() {
    if !have_python() {
        return;
    }
    use nix::sys::signal::Signal::{SIGINT, SIGTERM};
    let _g = serial();
    // (signal, the stdout line that opens the phase; "" = during the workload)
    for (sig, phase) in [(SIGTERM, ""), (SIGINT, ""), (SIGTERM, "healing"), (SIGINT, "final reads"), (SIGINT, "checking")] {
        let results = tempfile::tempdir().unwrap();
        // A signal during the workload comes 3 s into a 20 s run; a later phase starts at the
        // time limit of a 4 s run and is held open 1.5 s so the signal lands inside it.
        let limit = if phase.is_empty() { "20" } else { "4" };
        let (mut child, dir, rx) = start("ok", results.path(), &["--nemesis", "kill", "--time-limit", limit], &[("FAULTLINE_PHASE_DELAY_MS", "1500")]);
        if phase.is_empty() {
            std::thread::sleep(Duration::from_secs(3));
        } else {
            wait_for_line(&rx, phase);
        }
        signal(&child, sig);
        let code = wait_exit(&mut child, Duration::from_secs(60));
        assert_eq!(code, 2, "{sig} during {phase:?}");
        let r = results_of(&dir);
        assert_eq!(r["interrupted"], true, "{sig} during {phase:?}: {r}");
        assert_eq!(r["interrupted_by"], sig.as_str(), "{r}");
        assert!(r["health"]["reasons"].to_string().contains("interrupted"), "{r}");
        assert_nothing_left(results.path());
    }
}

#[test]
fn a_second_signal_aborts_and_kills_every_node() {
    if !have_python() {
        return;
    }
    use nix::sys::signal::Signal::SIGTERM;
    let _g = serial();
    let results = tempfile::tempdir().unwrap();
    let (mut child, dir, rx) = start("wrapper", results.path(), &["--nemesis", "kill", "--time-limit", "30"], &[("FAULTLINE_PHASE_DELAY_MS", "5000")]);
    std::thread::sleep(Duration::from_secs(2));
    signal(&child, SIGTERM);
    wait_for_line(&rx, "healing");
    signal(&child, SIGTERM);
    let code = wait_exit(&mut child, Duration::from_secs(40));
    assert_eq!(code, 2);
    let r = results_of(&dir);
    assert_eq!(r["interrupted"], true, "{r}");
    assert_nothing_left(results.path());
}

#[test]
fn sigkill_of_the_harness_kills_nodes_behind_a_non_exec_wrapper() {
    if !have_python() {
        return;
    }
    let _g = serial();
    let results = tempfile::tempdir().unwrap();
    let clock = std::path::Path::new("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1").exists();
    let nemesis = if clock { "clock,kill" } else { "kill" };
    let (mut child, _dir, _rx) = start("wrapper", results.path(), &["--nemesis", nemesis, "--time-limit", "30"], &[]);
    let needle = results.path().display().to_string();
    // Every node is a shell with a python child: both mention the results directory.
    assert!(wait_until(Duration::from_secs(10), || processes_mentioning(&needle).len() >= 6), "{:?}", processes_mentioning(&needle));
    std::thread::sleep(Duration::from_secs(2));
    child.kill().unwrap();
    let _ = child.wait();
    assert_nothing_left(results.path());
    // libfaketime's files of the dead nodes are removed by the guardian.
    let stale: Vec<String> = std::fs::read_dir("/dev/shm")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let stale: Vec<&String> = stale
        .iter()
        .filter(|n| n.contains("faketime"))
        .filter(|n| n.rsplit('_').next().and_then(|p| p.parse::<u32>().ok()).is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()))
        .collect();
    assert!(stale.is_empty(), "stale libfaketime files: {stale:?}");
}

#[test]
fn numeric_flags_out_of_range_are_usage_errors() {
    for (flag, value) in [("--rate", "1e10"), ("--rate", "1e-300"), ("--rate", "nan"), ("--time-limit", "inf"), ("--time-limit", "-1"), ("--check-budget", "1e300")] {
        let out = Command::new(faultline()).args(["test", &format!("{flag}={value}"), "--node-bin"]).arg(node_bin()).output().unwrap();
        assert_eq!(out.status.code(), Some(254), "{flag} {value}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains(flag), "{flag}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let bad_name = Command::new(faultline()).args(["test", "--name", "javascript:alert(1)<!--", "--node-bin"]).arg(node_bin()).output().unwrap();
    assert_eq!(bad_name.status.code(), Some(254));
    let file = tempfile::NamedTempFile::new().unwrap();
    let results_file = Command::new(faultline()).args(["test", "--results"]).arg(file.path()).arg("--node-bin").arg(node_bin()).output().unwrap();
    assert_eq!(results_file.status.code(), Some(254), "{}", String::from_utf8_lossy(&results_file.stderr));
}

#[test]
fn a_closed_stdout_keeps_the_verdicts_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("h.jsonl");
    let mut text = String::new();
    for i in 0..50 {
        text += &format!("{{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":1,\"value\":{i}}}\n{{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"key\":1,\"value\":{i}}}\n");
    }
    std::fs::write(&h, text).unwrap();
    let mut child = Command::new(faultline()).arg("check").arg(&h).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let code = wait_exit(&mut child, Duration::from_secs(30));
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
    assert_eq!(code, 0, "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn an_unwritable_html_page_is_refused_before_checking() {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("h.jsonl");
    std::fs::write(&h, "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"key\":1,\"value\":null}\n").unwrap();
    let out = Command::new(faultline()).arg("check").arg(&h).arg("--html").arg(dir.path().join("no/such/dir/x.html")).output().unwrap();
    assert_eq!(out.status.code(), Some(254), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--html"));
}

/// Runs a one-cell suite against a fake node and returns junit.xml.
fn suite_junit(mode: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trust.toml");
    std::fs::write(
        &file,
        "name = \"trust\"\nprotocols = [\"fake\"]\nworkloads = [\"register\"]\nnemeses = [\"none\"]\nseed = 7\ntime_limit = 3.0\n\
         nodes = 3\nconcurrency = 3\nrate = 60.0\nrequest_timeout_ms = 300\nrun_timeout_s = 60\n",
    )
    .unwrap();
    let mut cmd = Command::new(faultline());
    cmd.arg("suite").arg(&file).arg("--results").arg(dir.path().join("results")).arg("--node-bin").arg(fake(mode));
    let out = run_bounded(cmd, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(2), "{mode}: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(dir.path().join("results/junit.xml")).expect("junit.xml")
}

#[test]
fn junit_skips_runs_that_cannot_vouch_with_the_real_reason() {
    if !have_python() {
        return;
    }
    let _g = serial();
    let silent = suite_junit("silent");
    assert!(silent.contains("fake/register/none#1") || silent.contains("fake/register/none#0"), "stable name: {silent}");
    assert!(silent.contains("<skipped") && silent.contains("too few acknowledged operations"), "{silent}");
    let crashed = suite_junit("die-mid-run");
    assert!(crashed.contains("<skipped") && crashed.contains("exited on its own"), "{crashed}");
}
