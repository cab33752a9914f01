//! The run store (contract section 5): `results/<name>/<YYYYMMDDTHHMMSS>-<seed>/` with
//! `test.json` written before the run, `history.jsonl` streamed during it, `results.json`
//! after it, and the `latest` links.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::settings::Settings;

/// Creates a fresh run directory (with `nodes/`) and returns it.
pub fn create_run_dir(settings: &Settings, started: chrono::DateTime<chrono::Utc>) -> io::Result<PathBuf> {
    let base = settings.results.join(&settings.name);
    fs::create_dir_all(&base)?;
    let stamp = format!("{}-{}", started.format("%Y%m%dT%H%M%S"), settings.seed);
    // Two runs of the same test and seed in the same second get distinct directories.
    for attempt in 0..100 {
        let name = if attempt == 0 { stamp.clone() } else { format!("{stamp}.{attempt}") };
        let dir = base.join(name);
        match fs::create_dir(&dir) {
            Ok(()) => {
                fs::create_dir_all(dir.join("nodes"))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!("too many runs named {stamp} in {}", base.display())))
}

/// Quotes one shell word when it needs it.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_./=,:+-@%".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The exact command that repeats this run.
pub fn rerun_command(s: &Settings) -> String {
    // The binary by its absolute path: `faultline` is usually not on PATH after a cargo build,
    // and the command must work when pasted.
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "faultline".into());
    let mut words: Vec<String> = vec![exe, "test".into()];
    let mut flag = |name: &str, value: String| {
        words.push(format!("--{name}"));
        words.push(value);
    };
    flag("protocol", s.protocol.clone());
    flag("workload", s.workload.clone());
    flag("nemesis", s.nemesis_names.join(","));
    flag("nodes", s.nodes.to_string());
    flag("concurrency", s.concurrency.to_string());
    flag("rate", s.rate.to_string());
    flag("time-limit", s.time_limit.as_secs_f64().to_string());
    flag("nemesis-interval", s.nemesis_interval.as_secs_f64().to_string());
    flag("request-timeout-ms", s.request_timeout.as_millis().to_string());
    flag("seed", s.seed.to_string());
    flag("results", s.results.display().to_string());
    if s.node_protocol != "tcp" {
        flag("node-protocol", s.node_protocol.clone());
    }
    if s.latency_ms > 0 {
        flag("latency-ms", s.latency_ms.to_string());
    }
    if s.latency_dist != crate::maelstrom::latency::Dist::Constant {
        flag("latency-dist", s.latency_dist.name().to_string());
    }
    if let Some(l) = &s.label {
        flag("label", l.clone());
    }
    if s.node_bin_given {
        flag("node-bin", s.node_bin.display().to_string());
    }
    if !s.check.is_empty() {
        flag("check", s.check.join(","));
    }
    for a in &s.node_args {
        words.push(format!("--node-arg={a}"));
    }
    words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")
}

/// The contents of `test.json` (docs/design.md).
pub fn test_json(s: &Settings, started: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "name": s.name,
        "protocol": s.protocol,
        "label": s.label,
        "node_protocol": s.node_protocol,
        "latency_ms": s.latency_ms,
        "latency_dist": s.latency_dist.name(),
        "workload": s.workload,
        "nemesis": s.nemesis_names,
        "nodes": s.nodes,
        "concurrency": s.concurrency,
        "rate": s.rate,
        "time_limit_s": s.time_limit.as_secs_f64(),
        "nemesis_interval_s": s.nemesis_interval.as_secs_f64(),
        "request_timeout_ms": s.request_timeout.as_millis() as u64,
        "seed": s.seed,
        "node_bin": s.node_bin.display().to_string(),
        "node_args": s.node_args,
        "claims": s.description.claims,
        "checkers": s.checkers,
        "check_budget_s": s.check_budget.as_secs_f64(),
        "faketime_lib": s.faketime_lib.as_ref().map(|p| p.display().to_string()),
        "started_at": started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "versions": {"faultline": env!("CARGO_PKG_VERSION")},
        "rerun": rerun_command(s),
    })
}

/// Writes JSON to `path` through a temporary file of its own, so a reader never sees half of it
/// and two writers never collide.
pub fn write_json(path: &Path, v: &Value) -> io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(v)?;
    bytes.push(b'\n');
    crate::report::atomic::write_atomic(path, &bytes)
}

/// Points `link` at `target` (relative), replacing what was there.
fn replace_symlink(target: &Path, link: &Path) -> io::Result<()> {
    let tmp = link.with_file_name(format!(".latest.tmp.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    fs::rename(&tmp, link)
}

/// Updates `results/<name>/latest` and `results/latest` to this run.
pub fn link_latest(results: &Path, run_dir: &Path) -> io::Result<()> {
    let test_dir = run_dir.parent().ok_or_else(|| io::Error::other("run directory has no parent"))?;
    let run_name = run_dir.file_name().ok_or_else(|| io::Error::other("run directory has no name"))?;
    let test_name = test_dir.file_name().ok_or_else(|| io::Error::other("test directory has no name"))?;
    replace_symlink(Path::new(run_name), &test_dir.join("latest"))?;
    replace_symlink(&Path::new(test_name).join(run_name), &results.join("latest"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--node-arg=--read-mode"), "--node-arg=--read-mode");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn latest_links_point_at_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("t").join("20260101T000000-1");
        fs::create_dir_all(&run).unwrap();
        link_latest(dir.path(), &run).unwrap();
        let run2 = dir.path().join("t").join("20260101T000001-1");
        fs::create_dir_all(&run2).unwrap();
        link_latest(dir.path(), &run2).unwrap();
        assert_eq!(fs::canonicalize(dir.path().join("latest")).unwrap(), fs::canonicalize(&run2).unwrap());
        assert_eq!(fs::canonicalize(dir.path().join("t/latest")).unwrap(), fs::canonicalize(&run2).unwrap());
    }
}
