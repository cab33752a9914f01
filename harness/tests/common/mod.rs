//! Shared helpers of the end-to-end tests: the `faultline` binary under test, the reference
//! node binary (built on demand with the same profile), and one bounded run of `faultline test`
//! into a temporary results directory.
//!
//! Runs are serialised within a test binary: each starts a cluster of real processes, and the
//! machines these tests run on have few cores; two clusters at once would measure the scheduler,
//! not the protocols.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `faultline` binary under test.
pub fn faultline() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_faultline"))
}

/// The reference node binary next to `faultline`, built (or brought up to date) once per test
/// binary with the same profile and target directory.
pub fn node_bin() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = faultline();
            let profile_dir = exe.parent().expect("binary has a directory").to_path_buf();
            let target_dir = profile_dir.parent().expect("profile directory has a parent").to_path_buf();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = Command::new(cargo);
            // The same selection as `scripts/test` builds, so feature unification is identical and this
            // is a no-op there; building `-p faultline-nodes` alone would resolve features anew
            // and rebuild dependencies.
            cmd.args(["build", "--workspace", "--bins"]);
            if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
                cmd.arg("--release");
            }
            cmd.env("CARGO_TARGET_DIR", &target_dir).current_dir(env!("CARGO_MANIFEST_DIR"));
            let status = cmd.status().expect("running cargo to build faultline-node");
            assert!(status.success(), "building faultline-node failed");
            let bin = profile_dir.join("faultline-node");
            assert!(bin.is_file(), "{} missing after the build", bin.display());
            bin
        })
        .clone()
}

/// One cluster at a time (see the module documentation).
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs a command with a deadline; kills it when the deadline passes.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawning");
    // Drain the pipes on threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut out, &mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
            panic!("command did not finish within {limit:?}; stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output { status, stdout: t_out.join().unwrap_or_default(), stderr: t_err.join().unwrap_or_default() }
}

/// What one `faultline test` produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub run_dir: Option<PathBuf>,
    pub results: Option<Value>,
    /// Keeps the results directory alive as long as the run is inspected.
    pub results_dir: tempfile::TempDir,
}

impl Run {
    /// The nemesis events of the history, as `f` names (the durable-state monitor's `observe`
    /// events are observations, not faults, and are left out).
    pub fn nemesis_fs(&self) -> Vec<String> {
        let Some(dir) = &self.run_dir else { return vec![] };
        let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["process"] == "nemesis" && v["f"] != "observe")
            .filter_map(|v| v["f"].as_str().map(str::to_string))
            .collect()
    }

    /// A readable account of the run for assertion messages.
    pub fn explain(&self) -> String {
        let checkers = self.results.as_ref().map(|r| r["checkers"].to_string()).unwrap_or_default();
        let checkers: String = checkers.chars().take(1500).collect();
        let stderr_tail: String = self.stderr.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        format!("exit {}\nstdout:\n{}\nstderr (tail):\n{}\ncheckers: {checkers}", self.code, self.stdout, stderr_tail)
    }
}

/// Runs `faultline test` with `args` plus a temporary `--results` and the reference node binary.
pub fn faultline_test(args: &[&str]) -> Run {
    let results_dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(faultline());
    cmd.arg("test").args(args).arg("--results").arg(results_dir.path()).arg("--node-bin").arg(node_bin());
    let out = run_bounded(cmd, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let run_dir = stdout.lines().find_map(|l| l.strip_prefix("run directory: ")).map(PathBuf::from);
    let results = run_dir
        .as_ref()
        .and_then(|d| std::fs::read_to_string(d.join("results.json")).ok())
        .and_then(|t| serde_json::from_str(&t).ok());
    Run { code: out.status.code().unwrap_or(-1), stdout, stderr, run_dir, results, results_dir }
}

/// Processes whose command line mentions `needle`, as (pid, command line).
pub fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return found };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == std::process::id() {
            continue;
        }
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Waits until `f` holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// Asserts a run exited 0 with `valid: true` in results.json, and that faults happened.
pub fn assert_valid_with_faults(run: &Run, expect_faults: &[&str]) {
    assert_eq!(run.code, 0, "expected a valid run\n{}", run.explain());
    let results = run.results.as_ref().expect("results.json");
    assert_eq!(results["valid"], true, "{}", run.explain());
    let ok = results["stats"]["ops_total"]["ok"].as_u64().unwrap_or(0);
    assert!(ok > 50, "too few successful operations ({ok}) for the verdict to mean much\n{}", run.explain());
    let fs = run.nemesis_fs();
    for f in expect_faults {
        assert!(fs.iter().any(|x| x == f), "no {f} event in the history: {fs:?}");
    }
    assert!(fs.iter().any(|x| x == "heal"), "the run must end with a heal: {fs:?}");
}

/// The run directory's history file.
pub fn history(run_dir: &Path) -> PathBuf {
    run_dir.join("history.jsonl")
}

/// The first of `seeds` whose run is invalid (exit 1); panics naming `what` and every exit code
/// when none is. Timing-dependent bugs get a few seeds, and an invalid verdict is never retried
/// away.
pub fn first_invalid(what: &str, seeds: &[&str], mut run: impl FnMut(&str) -> Run) -> Run {
    let mut tried = Vec::new();
    for seed in seeds {
        let r = run(seed);
        if r.code == 1 {
            return r;
        }
        tried.push(r.code);
    }
    panic!("{what} not caught on {} seeds (exit codes {tried:?})", seeds.len())
}
