//! Real node processes for tests and benchmarks: start a cluster of `faultline-node` processes
//! on free loopback ports with temporary data directories, talk to them with a JSON-lines
//! client, SIGKILL and restart them. Every wait has a timeout; dropping a [`Cluster`] kills
//! whatever it still runs.
//!
//! Use from an integration test with `mod common;` and
//! `Cluster::start(env!("CARGO_BIN_EXE_faultline-node"), "raft", 3, &[])`.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind port 0").local_addr().expect("local addr").port()
}

/// One node process of a cluster.
pub struct NodeProc {
    pub id: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    child: Option<Child>,
}

impl NodeProc {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

/// A cluster of real node processes.
pub struct Cluster {
    pub bin: PathBuf,
    pub protocol: String,
    pub args: Vec<String>,
    pub nodes: Vec<NodeProc>,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `n` nodes `n1..nN` of `protocol` and waits until each answers `status`.
    pub fn start(bin: impl AsRef<Path>, protocol: &str, n: usize, args: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let nodes = (1..=n)
            .map(|i| {
                let id = format!("n{i}");
                NodeProc {
                    data_dir: dir.path().join(&id),
                    log_path: dir.path().join(format!("{id}.log")),
                    id,
                    port: free_port(),
                    child: None,
                }
            })
            .collect();
        let mut cluster = Cluster {
            bin: bin.as_ref().to_path_buf(),
            protocol: protocol.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
            nodes,
            dir,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            let id = cluster.nodes[i].id.clone();
            cluster.wait_ready(&id, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
        }
        cluster
    }

    pub fn ids(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.id.clone()).collect()
    }

    pub fn node(&self, id: &str) -> &NodeProc {
        self.nodes.iter().find(|n| n.id == id).unwrap_or_else(|| panic!("no node {id}"))
    }

    fn index(&self, id: &str) -> usize {
        self.nodes.iter().position(|n| n.id == id).unwrap_or_else(|| panic!("no node {id}"))
    }

    pub fn addr(&self, id: &str) -> String {
        self.node(id).addr()
    }

    fn spawn(&mut self, i: usize) {
        let node = &self.nodes[i];
        let mut cmd = Command::new(&self.bin);
        cmd.arg(&self.protocol).arg("--id").arg(&node.id).arg("--listen").arg(node.addr()).arg("--data-dir").arg(&node.data_dir);
        for peer in self.nodes.iter().filter(|p| p.id != node.id) {
            cmd.arg("--peer").arg(format!("{}={}", peer.id, peer.addr()));
        }
        cmd.args(&self.args);
        let log = File::options().create(true).append(true).open(&node.log_path).expect("node log");
        cmd.stdin(Stdio::null()).stdout(log.try_clone().expect("log fd")).stderr(log);
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {}: {e}", self.bin.display()));
        self.nodes[i].child = Some(child);
    }

    /// SIGKILLs a node (no chance to flush anything).
    pub fn kill(&mut self, id: &str) {
        let i = self.index(id);
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERMs a node and waits (bounded) for it to exit; returns its exit status code.
    pub fn terminate(&mut self, id: &str, timeout: Duration) -> Option<i32> {
        let i = self.index(id);
        let mut child = self.nodes[i].child.take()?;
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// The exit code of a node that ended on its own (`None` while it runs).
    pub fn exit_code(&mut self, id: &str) -> Option<i32> {
        let i = self.index(id);
        let child = self.nodes[i].child.as_mut()?;
        child.try_wait().ok().flatten().and_then(|status| status.code())
    }

    /// Starts a killed node again on the same port and data directory, and waits until ready.
    pub fn restart(&mut self, id: &str) {
        let i = self.index(id);
        assert!(self.nodes[i].child.is_none(), "{id} is still running");
        self.spawn(i);
        self.wait_ready(id, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
    }

    /// Waits until `id` answers a `status` request.
    pub fn wait_ready(&self, id: &str, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let attempt = Client::connect(&self.addr(id), Duration::from_millis(500))
                .and_then(|mut c| c.call(json!({"type": "status"}), Duration::from_millis(500)));
            match attempt {
                Ok(v) => return Ok(v),
                Err(e) if Instant::now() >= deadline => return Err(format!("{id} not ready after {timeout:?}: {e}")),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Asks one node for its status.
    pub fn status(&self, id: &str) -> Result<Value, String> {
        Client::connect(&self.addr(id), Duration::from_millis(500))?.call(json!({"type": "status"}), Duration::from_millis(500))
    }

    /// Waits until a running node says it is the leader; returns its id.
    pub fn wait_leader(&self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            for node in self.nodes.iter().filter(|n| n.is_running()) {
                if let Ok(status) = self.status(&node.id) {
                    if status["role"] == "leader" {
                        return Some(node.id.clone());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn client(&self, id: &str) -> Client {
        Client::connect(&self.addr(id), Duration::from_secs(2)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every node's output, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let text = std::fs::read_to_string(&node.log_path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            out.push_str(&format!("--- {} ({}) last lines ---\n", node.id, node.log_path.display()));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn kill_all(&mut self) {
        for id in self.ids() {
            self.kill(&id);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// A JSON-lines client: one request at a time, each answered within a timeout.
pub struct Client {
    reader: BufReader<TcpStream>,
    next_msg_id: u64,
}

impl Client {
    pub fn connect(addr: &str, timeout: Duration) -> Result<Client, String> {
        let sock = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
        let stream = TcpStream::connect_timeout(&sock, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        Ok(Client { reader: BufReader::new(stream), next_msg_id: 1 })
    }

    /// Sends `body` with a fresh `msg_id` and returns the reply body.
    pub fn call(&mut self, mut body: Value, timeout: Duration) -> Result<Value, String> {
        body["msg_id"] = json!(self.next_msg_id);
        self.next_msg_id += 1;
        self.call_raw(&body.to_string(), timeout)
    }

    /// Sends one raw line (it may be malformed) and returns the reply body.
    pub fn call_raw(&mut self, line: &str, timeout: Duration) -> Result<Value, String> {
        let stream = self.reader.get_mut();
        stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
        stream.write_all(format!("{line}\n").as_bytes()).map_err(|e| format!("send: {e}"))?;
        let mut reply = String::new();
        match self.reader.read_line(&mut reply) {
            Ok(0) => Err("connection closed".into()),
            Ok(_) => serde_json::from_str(&reply).map_err(|e| format!("bad reply {reply:?}: {e}")),
            Err(e) => Err(format!("no reply within {timeout:?}: {e}")),
        }
    }

    pub fn write(&mut self, key: Value, value: Value, timeout: Duration) -> Result<Value, String> {
        self.call(json!({"type": "write", "key": key, "value": value}), timeout)
    }

    pub fn read(&mut self, key: Value, timeout: Duration) -> Result<Value, String> {
        self.call(json!({"type": "read", "key": key}), timeout)
    }
}

/// Check-quorum, as real processes: SIGKILLs every follower of `leader`, then writes through
/// `leader` (a fresh connection per try, 300 ms each) until it answers error 11. Returns that
/// reply and how long after the kill it came; None if it never did within `timeout`.
pub fn refusal_after_losing_followers(cluster: &mut Cluster, leader: &str, timeout: Duration) -> Option<(Value, Duration)> {
    for id in cluster.ids().into_iter().filter(|id| id != leader) {
        cluster.kill(&id);
    }
    let killed = Instant::now();
    while killed.elapsed() < timeout {
        let reply = Client::connect(&cluster.addr(leader), Duration::from_millis(300))
            .and_then(|mut c| c.write(json!("k"), json!(1), Duration::from_millis(300)));
        if let Ok(r) = reply {
            if r["code"] == 11 {
                return Some((r, killed.elapsed()));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Writes `key` = `value` through any running node until one acknowledges it (a fresh
/// connection per try), or `deadline` passes. A retry after an unknown outcome rewrites the
/// same value, so final reads stay exact.
pub fn write_acked(cluster: &Cluster, key: &str, value: i64, deadline: Instant) -> bool {
    while Instant::now() < deadline {
        for node in cluster.nodes.iter().filter(|n| n.is_running()) {
            let Ok(mut c) = Client::connect(&node.addr(), Duration::from_millis(300)) else { continue };
            if let Ok(r) = c.write(json!(key), json!(value), Duration::from_secs(2)) {
                if r["type"] == "write_ok" {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    false
}

/// Check-quorum, end to end on 3 real processes of `protocol`: the leader whose followers were
/// all SIGKILLed refuses a write with error 11 and "lost quorum: heard from 1 of 3 nodes within
/// `election_ms` ms" within two election timeouts (3 s allowed on a loaded machine); once the
/// followers restart, a write is acknowledged again.
pub fn lost_quorum_then_recovery(bin: &str, protocol: &str, args: &[&str], election_ms: u64) {
    let mut cluster = Cluster::start(bin, protocol, 3, args);
    let leader = cluster.wait_leader(Duration::from_secs(10)).unwrap_or_else(|| panic!("no leader\n{}", cluster.logs()));
    let (reply, after) = refusal_after_losing_followers(&mut cluster, &leader, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no refusal with error 11 within 5 s\n{}", cluster.logs()));
    let text = reply["text"].as_str().unwrap_or_default();
    assert!(text.starts_with(&format!("lost quorum: heard from 1 of 3 nodes within {election_ms} ms")), "{reply}");
    assert!(after < Duration::from_secs(3), "refused only {after:?} after the followers died");
    for id in cluster.ids().into_iter().filter(|id| *id != leader) {
        cluster.restart(&id);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    assert!(write_acked(&cluster, "after", 2, deadline), "no write acknowledged after the restart\n{}", cluster.logs());
}
