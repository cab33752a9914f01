//! `faultline suite` through the binary, with a fake node binary (a shell script that answers
//! `--list` and `--describe` like the reference one, and refuses to start as a node): every bad
//! field of a suite file exits 254 naming the file and the field before any run starts, an
//! empty shard exits 254, and a cell whose nodes fail at start-up is an `<error>` in junit.xml
//! carrying the start-up failure, not a skipped test. No real cluster runs here.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Answers like `faultline-node` for raft and crdt-state; as a node, prints to stderr and exits 3.
const FAKE_NODE: &str = r#"#!/bin/sh
case "$1" in
  --list) echo raft; echo crdt-state; exit 0 ;;
esac
if [ "$2" = "--describe" ]; then
  case "$1" in
    raft) echo '{"protocol":"raft","claims":["linearizable"],"workloads":["register","counter","set"]}' ;;
    crdt-state) echo '{"protocol":"crdt-state","claims":["strong-eventual-consistency"],"workloads":["counter","set","register"]}' ;;
    *) echo "unknown protocol $1" >&2; exit 2 ;;
  esac
  exit 0
fi
echo "fake node $1: refusing to start (no real protocol here)" >&2
exit 3
"#;

struct Env {
    dir: tempfile::TempDir,
    node: PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("fake-node");
    std::fs::write(&node, FAKE_NODE).unwrap();
    std::fs::set_permissions(&node, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    Env { dir, node }
}

impl Env {
    fn results(&self) -> PathBuf {
        self.dir.path().join("results")
    }

    /// Writes `text` as `name` and runs `faultline suite` on it with `extra` arguments.
    fn suite(&self, name: &str, text: &str, extra: &[&str]) -> Output {
        let file = self.dir.path().join(name);
        std::fs::write(&file, text).unwrap();
        let mut cmd = Command::new(common::faultline());
        cmd.arg("suite").arg(&file).arg("--results").arg(self.results()).arg("--node-bin").arg(&self.node).args(extra);
        common::run_bounded(cmd, Duration::from_secs(120))
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const BASE: &str = "protocols = [\"raft\"]\nnemeses = [\"none\"]\n";

/// Asserts exit 254, a message naming `file` and containing `want`, and that nothing ran.
fn assert_rejected(e: &Env, file: &str, text: &str, want: &str, extra: &[&str]) {
    let o = e.suite(file, text, extra);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(254), "{text}\nstdout: {}\nstderr: {err}", stdout(&o));
    assert!(err.contains(file) && err.contains(want), "{text}: message must name {file} and {want}: {err}");
    assert!(!e.results().exists(), "{text}: a run started before the file was checked");
}

#[test]
fn every_bad_field_exits_254_naming_file_and_field() {
    let e = env();
    let cases: &[(&str, &str)] = &[
        ("protocols = [\"raft\", \"nosuch\"]\nnemeses = [\"none\"]\n", "nosuch"),
        ("protocols = [\"raft\"]\nworkloads = []\nnemeses = [\"none\"]\n", "`workloads`"),
        ("protocols = [\"raft\"]\nworkloads = [\"bank\"]\nnemeses = [\"none\"]\n", "`workloads`"),
        ("protocols = []\nnemeses = [\"none\"]\n", "`protocols`"),
        ("protocols = [\"raft\"]\nnemeses = []\n", "`nemeses`"),
        ("protocols = [\"raft\"]\nnemeses = [\"earthquake\"]\n", "earthquake"),
        (&format!("{BASE}[protocol.raft]\nworkloads = []\n"), "`protocol.raft.workloads`"),
        (&format!("{BASE}[protocol.raft]\nunclaimed = [\"telepathy\"]\n"), "`protocol.raft.unclaimed`"),
        (&format!("{BASE}run_timeout_s = -1\n"), "`run_timeout_s`"),
        (&format!("{BASE}time_limit = nan\n"), "`time_limit`"),
        (&format!("{BASE}time_limit = 1e300\n"), "`time_limit`"),
        (&format!("{BASE}time_limit = inf\n"), "`time_limit`"),
        (&format!("{BASE}nemesis_interval = 0\n"), "`nemesis_interval`"),
        (&format!("{BASE}rate = 1e7\n"), "`rate`"),
        (&format!("{BASE}repetitions = 0\n"), "`repetitions`"),
        (&format!("{BASE}nodes = 9\n"), "`nodes`"),
        (&format!("{BASE}concurrency = -4\n"), "`concurrency`"),
        (&format!("{BASE}request_timeout_ms = 0\n"), "`request_timeout_ms`"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        assert_rejected(&e, &format!("bad{i}.toml"), text, want, &[]);
    }
}

#[test]
fn an_empty_shard_exits_254() {
    let e = env();
    // Two cells; shard 3 of 3 holds none of them.
    let text = "protocols = [\"raft\"]\nnemeses = [\"none\", \"kill\"]\n";
    assert_rejected(&e, "two.toml", text, "--shard 3/3", &["--shard", "3/3"]);
    let o = e.suite("two.toml", text, &["--shard", "2/3", "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("raft/register/kill rep 0 seed "), "the default workload is named: {lines:?}");
}

/// The bug this guards: nodes that exit at start-up made every cell `<skipped message="a
/// checker could not decide">` with errors="0".
#[test]
fn nodes_failing_at_start_up_are_junit_errors_with_the_reason() {
    let e = env();
    let text = "protocols = [\"raft\", \"crdt-state\"]\nnemeses = [\"none\"]\ntime_limit = 2\nnodes = 3\nrun_timeout_s = 60\nrun_grace_s = 5\n";
    let o = e.suite("start.toml", text, &[]);
    assert_eq!(o.status.code(), Some(255), "stdout: {}\nstderr: {}", stdout(&o), stderr(&o));
    let junit = std::fs::read_to_string(e.results().join("junit.xml")).unwrap();
    let r = quick_junit::Report::deserialize_from_str(&junit).unwrap();
    assert_eq!((r.tests, r.failures, r.errors, r.skipped), (2, 0, 2, 0), "tests, failures, errors, skipped: {junit}");
    assert!(!junit.contains("could not decide"), "{junit}");
    for name in ["raft/register/none#0", "crdt-state/counter/none#0"] {
        let case = testcase(&junit, name);
        assert!(case.contains("<error "), "{name}: {case}");
        // The node's own last words reach the case (through the run's error or its stderr).
        assert!(case.contains("n1") || case.contains("refusing to start"), "{name} does not say why: {case}");
        assert!(case.contains("name=\"seed\"") && case.contains("name=\"run_dir\""), "{case}");
    }
    // The record of what the suite saw sits next to the run.
    let runs: Vec<PathBuf> = walk(&e.results()).into_iter().filter(|p| p.ends_with("suite.json")).collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
}

/// The text of the test case named `name`.
fn testcase<'a>(xml: &'a str, name: &str) -> &'a str {
    let at = xml.find(&format!("name=\"{name}\"")).unwrap_or_else(|| panic!("no test case {name} in {xml}"));
    let start = xml[..at].rfind("<testcase").unwrap();
    let end = at + xml[at..].find("</testcase>").map_or_else(|| xml[at..].find("/>").unwrap() + 2, |e| e + 11);
    &xml[start..end]
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        // `latest` links point at runs already walked.
        if e.file_type().is_ok_and(|t| t.is_symlink()) {
            continue;
        }
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
