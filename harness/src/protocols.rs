//! `faultline protocols`, and the two questions the harness asks a node binary before a test:
//! which protocols it implements (`NODE_BIN --list`) and what one of them promises
//! (`NODE_BIN <protocol> --describe`). Both answers come from running the binary, so a third-party
//! node binary that follows the contract is described the same way as the reference one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::cli::ProtocolsArgs;
use crate::exit::{self, Failure};

/// How long a node binary may take to answer `--list` or `--describe`.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);

/// What a protocol says about itself (`--describe`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Description {
    pub protocol: String,
    /// The guarantees it claims: `linearizable`, `strong-eventual-consistency`, ...
    pub claims: Vec<String>,
    /// The workloads it serves, the default first.
    pub workloads: Vec<String>,
    /// Options that deliberately weaken it, as the node describes them.
    pub weak_modes: Vec<Value>,
    /// Its known-bug switches (`--bug NAME`): `{"name", "effect"}` objects, empty when absent.
    pub bugs: Vec<Value>,
    /// Workload → operations the protocol does not serve (`"unsupported"`), left out by the
    /// generator.
    pub unsupported: std::collections::BTreeMap<String, Vec<String>>,
}

impl Description {
    /// Parses the JSON a node prints for `--describe`.
    pub fn parse(text: &str) -> Result<Description, String> {
        let v: Value = serde_json::from_str(text.trim()).map_err(|e| format!("not JSON: {e}"))?;
        let strings = |field: &str| -> Result<Vec<String>, String> {
            match v.get(field) {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string).ok_or_else(|| format!("`{field}` must be a list of strings")))
                    .collect(),
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(_) => Err(format!("`{field}` must be a list of strings")),
            }
        };
        let protocol = v.get("protocol").and_then(Value::as_str).ok_or("missing string field `protocol`")?.to_string();
        let weak_modes = match v.get("weak_modes") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Object(m)) => m.iter().map(|(k, v)| serde_json::json!({ "option": k, "effect": v })).collect(),
            _ => Vec::new(),
        };
        let bugs = match v.get("bugs") {
            Some(Value::Array(items)) if items.iter().all(Value::is_object) => items.clone(),
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err("`bugs` must be a list of objects".into()),
        };
        let unsupported = match v.get("unsupported") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(w, ops)| {
                    let ops = ops.as_array().filter(|a| a.iter().all(Value::is_string)).ok_or("`unsupported` must map workloads to lists of operation names")?;
                    Ok((w.clone(), ops.iter().filter_map(Value::as_str).map(str::to_string).collect()))
                })
                .collect::<Result<_, String>>()?,
            None | Some(Value::Null) => Default::default(),
            Some(_) => return Err("`unsupported` must map workloads to lists of operation names".into()),
        };
        Ok(Description { protocol, claims: strings("claims")?, workloads: strings("workloads")?, weak_modes, bugs, unsupported })
    }
}

/// The node binary next to the running executable (`faultline-node`), as `--node-bin` defaults.
pub fn default_node_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("faultline"));
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let candidate = dir.join("faultline-node");
    // Integration tests run from target/<profile>/deps; the binaries sit one level up.
    if !candidate.exists() && dir.ends_with("deps") {
        if let Some(up) = dir.parent() {
            return up.join("faultline-node");
        }
    }
    candidate
}

/// Resolves `--node-bin` (or the default) to an existing executable, or a usage error naming the flag.
pub fn resolve_node_bin(flag: Option<&Path>) -> Result<PathBuf, Failure> {
    let path = flag.map(Path::to_path_buf).unwrap_or_else(default_node_bin);
    let path = if path.components().count() == 1 && !path.exists() { which(&path).unwrap_or(path) } else { path };
    if !path.is_file() {
        let how = if flag.is_some() { "--node-bin" } else { "the default node binary (set --node-bin)" };
        return Err(exit::usage(format!("{how}: {} does not exist or is not a file", path.display())));
    }
    Ok(std::fs::canonicalize(&path).unwrap_or(path))
}

fn which(name: &Path) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The most a node binary may print in answer to `--list` or `--describe`.
const ASK_MAX_BYTES: usize = 1 << 20;
/// How long the pipes may stay open after the binary exited (a background child of a wrapper
/// script can hold them); after it, its process group is killed and the answer is what was read.
const PIPE_GRACE: Duration = Duration::from_millis(500);

/// Reads a pipe to its end on a thread, keeping at most [`ASK_MAX_BYTES`] (and draining the
/// rest, so the writer never blocks on a full pipe); the result says whether it overflowed.
fn drain(mut pipe: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<(Vec<u8>, bool)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut kept, mut overflow, mut buf) = (Vec::new(), false, [0u8; 8192]);
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = ASK_MAX_BYTES.saturating_sub(kept.len());
            overflow |= n > room;
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        let _ = tx.send((kept, overflow));
    });
    rx
}

/// Runs the node binary with `args` in a process group of its own and returns its stdout,
/// bounded in time ([`ASK_TIMEOUT`]) and size ([`ASK_MAX_BYTES`]). On timeout the whole
/// group is killed, so nothing it started lingers.
fn ask(node_bin: &Path, args: &[&str]) -> Result<String, String> {
    use std::os::unix::process::CommandExt;
    let what = format!("{} {}", node_bin.display(), args.join(" "));
    let mut child = Command::new(node_bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", node_bin.display()))?;
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let kill_group = || {
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    };
    let (out_rx, err_rx) = (drain(child.stdout.take().expect("piped")), drain(child.stderr.take().expect("piped")));
    let deadline = std::time::Instant::now() + ASK_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                kill_group();
                let _ = child.wait();
                return Err(format!("{what} did not answer within {ASK_TIMEOUT:?}"));
            }
            Err(e) => return Err(format!("waiting for {}: {e}", node_bin.display())),
        }
    };
    let take = |rx: std::sync::mpsc::Receiver<(Vec<u8>, bool)>| match rx.recv_timeout(PIPE_GRACE) {
        Ok(r) => r,
        Err(_) => {
            // Something the binary left behind still holds the pipe: end it and keep what was read.
            kill_group();
            rx.recv_timeout(PIPE_GRACE).unwrap_or_default()
        }
    };
    let ((out, overflow), (err, _)) = (take(out_rx), take(err_rx));
    kill_group();
    if !status.success() {
        return Err(format!("{what} exited with {status}: {}", String::from_utf8_lossy(&err).trim()));
    }
    if overflow {
        return Err(format!("{what} printed more than {ASK_MAX_BYTES} bytes"));
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The protocol names the binary implements (`--list`: one per line, or a JSON list).
pub fn list(node_bin: &Path) -> Result<Vec<String>, String> {
    let text = ask(node_bin, &["--list"])?;
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text.trim()) {
        return Ok(items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect());
    }
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect())
}

/// What `protocol` claims, according to the binary.
pub fn describe(node_bin: &Path, protocol: &str) -> Result<Description, String> {
    let text = ask(node_bin, &[protocol, "--describe"])?;
    Description::parse(&text).map_err(|e| format!("{} {protocol} --describe: {e}", node_bin.display()))
}

/// Renders descriptions as an aligned text table.
pub fn table(descs: &[Description]) -> String {
    let weak = |d: &Description| {
        d.weak_modes
            .iter()
            .map(|w| match w {
                Value::String(s) => s.clone(),
                Value::Object(m) => m
                    .get("option")
                    .or_else(|| m.get("flag"))
                    .or_else(|| m.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| w.to_string()),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rows: Vec<[String; 4]> = descs
        .iter()
        .map(|d| [d.protocol.clone(), d.claims.join(", "), d.workloads.join(", "), weak(d)])
        .collect();
    let header = ["PROTOCOL", "CLAIMS", "WORKLOADS", "WEAK MODES"].map(str::to_string);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = r.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `faultline protocols [--json]`.
pub fn main(args: ProtocolsArgs) -> Result<i32, Failure> {
    let bin = resolve_node_bin(args.node_bin.as_deref())?;
    let names = list(&bin).map_err(|e| Failure::Internal(anyhow::anyhow!(e)))?;
    let mut descs = Vec::new();
    for name in &names {
        descs.push(describe(&bin, name).map_err(|e| Failure::Internal(anyhow::anyhow!(e)))?);
    }
    if args.json {
        crate::out!("{}", serde_json::to_string_pretty(&descs).map_err(anyhow::Error::from)?);
    } else {
        crate::out!("{}", table(&descs).trim_end());
    }
    Ok(exit::VALID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_description_and_renders_a_table() {
        let d = Description::parse(
            r#"{"protocol":"raft","claims":["linearizable"],"workloads":["register","counter"],"weak_modes":[{"option":"--read-mode local","effect":"stale reads"}]}"#,
        )
        .unwrap();
        assert_eq!(d.workloads, vec!["register", "counter"]);
        let t = table(&[d]);
        assert!(t.starts_with("PROTOCOL"), "{t}");
        assert!(t.contains("raft      linearizable  register, counter  --read-mode local"), "{t}");
    }

    #[test]
    fn rejects_a_bad_description() {
        assert!(Description::parse("{}").is_err());
        assert!(Description::parse(r#"{"protocol":"x","claims":"linearizable"}"#).is_err());
        assert!(Description::parse("nope").is_err());
    }
}
