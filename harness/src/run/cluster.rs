//! The node processes of a run: start, readiness, kill, restart, pause, resume, stop.
//!
//! Each node runs in its own process group, so a signal reaches the node and anything it
//! forked, and the terminal's Ctrl-C reaches only the harness (which then stops the run in
//! order). Each node also gets `PR_SET_PDEATHSIG(SIGKILL)`: if the harness dies, even by
//! SIGKILL, the kernel kills its nodes. That signal fires when the *thread* that forked the
//! child exits, so every fork happens on one launcher thread that lives as long as the
//! harness process, never on a pool thread that may retire.
//!
//! A node's output (stdout and stderr) is appended to `nodes/<id>.log`; its data directory
//! survives kills, so a restart recovers from it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::faketime;

/// How long a node may take to accept connections after it was started.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start one node; kept so that a killed node restarts exactly as it began.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    pub id: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The node's libfaketime timestamp file, when clocks are faked.
    pub clock_file: Option<PathBuf>,
    /// Maelstrom-protocol nodes: stdin and stdout are pipes, handed to this hook on every
    /// (re)start; the node is ready when the hook's receiver says so (its `init_ok`).
    pub stdio: Option<StdioHook>,
}

// --- maelstrom stdio nodes (begin) ---
/// What a stdio node's hook answers: `Ok` once the node is initialized, or why it is not.
pub type Readiness = tokio::sync::oneshot::Receiver<Result<(), String>>;

/// Takes a freshly started node's pipes (node id, its stdin, its stdout).
#[derive(Clone)]
pub struct StdioHook(pub std::sync::Arc<dyn Fn(&str, std::process::ChildStdin, std::process::ChildStdout) -> Readiness + Send + Sync>);

impl std::fmt::Debug for StdioHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StdioHook")
    }
}
// --- maelstrom stdio nodes (end) ---

/// The state of one node process.
#[derive(Debug)]
struct NodeProc {
    spec: NodeSpec,
    child: Option<Child>,
    paused: bool,
    /// Stdio nodes: the hook's answer for the current process, until it arrives.
    readiness: Option<Readiness>,
    /// Stdio nodes: the current process answered its `init`.
    initialized: bool,
}

/// Picks a free loopback port for a node, outside the kernel's ephemeral port range.
///
/// Binding port 0 would hand out an ephemeral port, and the same range serves every outgoing
/// connection and every proxy (which bind port 0): a node's port, released between the probe
/// and the node's own bind, or while the node is killed and not yet restarted, could be taken by
/// one of them. Ports below (or above) the ephemeral range are never handed out implicitly, so
/// a probe there that succeeds stays free. Ports already handed out by this process are skipped.
pub fn free_port() -> io::Result<SocketAddr> {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let (lo, hi) = ephemeral_range();
    let (from, to) = if lo > 12_000 { (10_000u32, lo) } else { (hi + 1, 65_535) };
    let span = to.saturating_sub(from).max(1);
    let mut x = std::process::id() as u64 ^ (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(7));
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..512 {
        // xorshift: port choice needs spread, not reproducibility.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = (from + (x % span as u64) as u32) as u16;
        if given.contains(&port) {
            continue;
        }
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            given.insert(port);
            return l.local_addr();
        }
    }
    let l = TcpListener::bind("127.0.0.1:0")?;
    l.local_addr()
}

/// The kernel's ephemeral port range (Linux default 32768–60999).
fn ephemeral_range() -> (u32, u32) {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut it = text.split_whitespace().filter_map(|w| w.parse::<u32>().ok());
    match (it.next(), it.next()) {
        (Some(lo), Some(hi)) if lo <= hi && hi <= 65_535 => (lo, hi),
        _ => (32_768, 60_999),
    }
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// The one thread that forks nodes (see the module documentation for why).
fn launcher() -> &'static std::sync::Mutex<mpsc::Sender<SpawnRequest>> {
    static LAUNCHER: OnceLock<std::sync::Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    LAUNCHER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("faultline-launcher".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cannot start the launcher thread");
        std::sync::Mutex::new(tx)
    })
}

fn spawn_on_launcher(cmd: Command) -> io::Result<Child> {
    let (tx, rx) = mpsc::channel();
    launcher()
        .lock()
        .map_err(|_| io::Error::other("launcher poisoned"))?
        .send((cmd, tx))
        .map_err(|_| io::Error::other("launcher thread is gone"))?;
    rx.recv().map_err(|_| io::Error::other("launcher thread is gone"))?
}

fn command(spec: &NodeSpec) -> io::Result<Command> {
    let log = fs::OpenOptions::new().create(true).append(true).open(&spec.log)?;
    let mut cmd = Command::new(&spec.program);
    let (stdin, stdout) = if spec.stdio.is_some() { (Stdio::piped(), Stdio::piped()) } else { (Stdio::null(), Stdio::from(log.try_clone()?)) };
    cmd.args(&spec.args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(log)
        .process_group(0);
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    let harness = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The harness may have died between fork and prctl: then nobody would kill us.
            if libc::getppid() != harness {
                return Err(io::Error::other("the harness exited while starting this node"));
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// The last `n` lines of a file, for error messages.
pub fn tail(path: &Path, n: usize) -> String {
    let text = fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running cluster. Dropping it kills every node.
pub struct Cluster {
    nodes: BTreeMap<String, NodeProc>,
}

impl Cluster {
    /// Starts every node and waits until each accepts TCP connections.
    pub async fn start(specs: Vec<NodeSpec>) -> anyhow::Result<Cluster> {
        let mut cluster = Cluster { nodes: BTreeMap::new() };
        for spec in specs {
            fs::create_dir_all(&spec.data_dir).with_context(|| format!("creating {}", spec.data_dir.display()))?;
            if let Some(f) = &spec.clock_file {
                faketime::write_offset(f, 0.0).with_context(|| format!("writing {}", f.display()))?;
            }
            cluster.nodes.insert(spec.id.clone(), NodeProc { spec, child: None, paused: false, readiness: None, initialized: false });
        }
        let ids: Vec<String> = cluster.nodes.keys().cloned().collect();
        for id in &ids {
            cluster.launch(id)?;
        }
        for id in &ids {
            cluster.wait_ready(id, READY_TIMEOUT).await?;
        }
        Ok(cluster)
    }

    pub fn ids(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    pub fn addr(&self, id: &str) -> Option<SocketAddr> {
        self.nodes.get(id).map(|n| n.spec.listen)
    }

    /// The node's data directory (the power-loss nemesis rewrites it while the node is down).
    pub fn data_dir(&self, id: &str) -> Option<PathBuf> {
        self.nodes.get(id).map(|n| n.spec.data_dir.clone())
    }

    pub fn clock_file(&self, id: &str) -> Option<&Path> {
        self.nodes.get(id).and_then(|n| n.spec.clock_file.as_deref())
    }

    /// Nodes that are running and not paused: the ones worth asking who leads.
    pub fn live(&self) -> Vec<String> {
        self.nodes.iter().filter(|(_, n)| n.child.is_some() && !n.paused).map(|(id, _)| id.clone()).collect()
    }

    pub fn is_up(&self, id: &str) -> bool {
        self.nodes.get(id).is_some_and(|n| n.child.is_some())
    }

    fn node(&mut self, id: &str) -> anyhow::Result<&mut NodeProc> {
        self.nodes.get_mut(id).ok_or_else(|| anyhow!("no node {id}"))
    }

    fn launch(&mut self, id: &str) -> anyhow::Result<()> {
        let node = self.node(id)?;
        let cmd = command(&node.spec).with_context(|| format!("preparing node {id}"))?;
        let mut child = spawn_on_launcher(cmd).with_context(|| format!("starting node {id} ({})", node.spec.program.display()))?;
        // The node leads its own process group (`process_group(0)`), so its pid is the group.
        crate::lifecycle::register_group(child.id() as i32);
        if let Some(hook) = node.spec.stdio.clone() {
            match (child.stdin.take(), child.stdout.take()) {
                (Some(i), Some(o)) => node.readiness = Some((hook.0)(id, i, o)),
                _ => return Err(anyhow!("node {id}: its stdin and stdout are not pipes")),
            }
            node.initialized = false;
        }
        node.child = Some(child);
        node.paused = false;
        Ok(())
    }

    /// Waits until the node accepts a TCP connection; fails early if it exits, naming the
    /// node and quoting the end of its log.
    pub async fn wait_ready(&mut self, id: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let (addr, log) = {
            let n = self.node(id)?;
            (n.spec.listen, n.spec.log.clone())
        };
        if self.node(id)?.spec.stdio.is_some() {
            return self.wait_initialized(id, deadline, timeout, &log).await;
        }
        loop {
            let exited = match self.node(id)?.child.as_mut() {
                Some(c) => c.try_wait()?,
                None => return Err(anyhow!("node {id} is not running")),
            };
            if let Some(status) = exited {
                self.forget(id)?;
                return Err(anyhow!("node {id} exited during startup ({status}); last lines of {}:\n{}", log.display(), tail(&log, 15)));
            }
            let attempt = tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(addr)).await;
            if matches!(attempt, Ok(Ok(_))) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(anyhow!(
                    "node {id} did not accept connections on {addr} within {timeout:?}; last lines of {}:\n{}",
                    log.display(),
                    tail(&log, 15)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// [`Cluster::wait_ready`] of a stdio node: until its hook says it answered `init`.
    async fn wait_initialized(&mut self, id: &str, deadline: Instant, timeout: Duration, log: &Path) -> anyhow::Result<()> {
        loop {
            let exited = match self.node(id)?.child.as_mut() {
                Some(c) => c.try_wait()?,
                None => return Err(anyhow!("node {id} is not running")),
            };
            if let Some(status) = exited {
                self.forget(id)?;
                return Err(anyhow!("node {id} exited during startup ({status}); last lines of {}:\n{}", log.display(), tail(log, 15)));
            }
            let node = self.node(id)?;
            if node.initialized {
                return Ok(());
            }
            let answer = match node.readiness.as_mut() {
                Some(rx) => rx.try_recv(),
                None => return Err(anyhow!("node {id} has no router attached")),
            };
            match answer {
                Ok(Ok(())) => {
                    node.initialized = true;
                    node.readiness = None;
                    return Ok(());
                }
                Ok(Err(why)) => return Err(anyhow!("node {id} did not initialize: {why}; last lines of {}:\n{}", log.display(), tail(log, 15))),
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => return Err(anyhow!("node {id}: the router stopped waiting for its init_ok")),
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
            }
            if Instant::now() >= deadline {
                return Err(anyhow!("node {id} did not answer init with init_ok within {timeout:?}; last lines of {}:\n{}", log.display(), tail(log, 15)));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn signal(&mut self, id: &str, sig: Signal) -> anyhow::Result<()> {
        let node = self.node(id)?;
        let Some(child) = node.child.as_ref() else { return Ok(()) };
        let pgid = Pid::from_raw(child.id() as i32);
        match killpg(pgid, sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(anyhow!("signalling node {id} with {sig}: {e}")),
        }
    }

    /// SIGKILL to the node's process group, then reap it. Safe to call twice.
    pub fn kill(&mut self, id: &str) -> anyhow::Result<()> {
        self.signal(id, Signal::SIGKILL)?;
        let node = self.node(id)?;
        if let Some(mut child) = node.child.take() {
            let pid = child.id();
            let _ = child.wait();
            crate::lifecycle::unregister_group(pid as i32);
            if node.spec.clock_file.is_some() {
                faketime::cleanup_shm(pid);
            }
        }
        node.paused = false;
        Ok(())
    }

    /// Drops a node whose process has exited: whatever is left of its process group (children
    /// of a wrapper script) is killed, and the group forgotten.
    fn forget(&mut self, id: &str) -> anyhow::Result<()> {
        let node = self.node(id)?;
        if let Some(child) = node.child.take() {
            let pid = child.id() as i32;
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            crate::lifecycle::unregister_group(pid);
            if node.spec.clock_file.is_some() {
                faketime::cleanup_shm(pid as u32);
            }
        }
        node.paused = false;
        Ok(())
    }

    /// Nodes whose process exited although the harness did not kill it, with how it ended;
    /// each is forgotten (so [`Cluster::down`] lists it and a restart can bring it back).
    pub fn exited_on_their_own(&mut self) -> Vec<(String, std::process::ExitStatus)> {
        let mut out = Vec::new();
        for id in self.ids() {
            let status = match self.nodes.get_mut(&id).and_then(|n| n.child.as_mut()) {
                Some(c) => c.try_wait().ok().flatten(),
                None => None,
            };
            if let Some(status) = status {
                let _ = self.forget(&id);
                out.push((id, status));
            }
        }
        out
    }

    /// The end of a node's log, for crash reports.
    pub fn log_tail(&self, id: &str, lines: usize) -> String {
        self.nodes.get(id).map(|n| tail(&n.spec.log, lines)).unwrap_or_default()
    }

    /// Starts a killed node again from its data directory and waits for it.
    pub async fn restart(&mut self, id: &str) -> anyhow::Result<()> {
        if self.is_up(id) {
            return Ok(());
        }
        self.launch(id)?;
        self.wait_ready(id, READY_TIMEOUT).await
    }

    /// SIGSTOP: the node keeps its sockets but stops answering.
    pub fn pause(&mut self, id: &str) -> anyhow::Result<()> {
        if self.is_up(id) {
            self.signal(id, Signal::SIGSTOP)?;
            self.node(id)?.paused = true;
        }
        Ok(())
    }

    /// SIGCONT. Safe to call on a node that is not paused.
    pub fn resume(&mut self, id: &str) -> anyhow::Result<()> {
        if self.is_up(id) {
            self.signal(id, Signal::SIGCONT)?;
        }
        self.node(id)?.paused = false;
        Ok(())
    }

    /// Nodes that are not running: killed and not restarted, or exited by themselves (which
    /// the caller should have collected with [`Cluster::exited_on_their_own`] first, to report).
    pub fn down(&mut self) -> Vec<String> {
        let _ = self.exited_on_their_own();
        self.nodes.iter().filter(|(_, n)| n.child.is_none()).map(|(id, _)| id.clone()).collect()
    }

    pub fn paused(&self) -> Vec<String> {
        self.nodes.iter().filter(|(_, n)| n.paused).map(|(id, _)| id.clone()).collect()
    }

    /// Kills every node (the run is over).
    pub fn stop_all(&mut self) {
        for id in self.ids() {
            let _ = self.resume(&id);
            let _ = self.kill(&id);
        }
    }

    /// The data directories, to delete after a valid run.
    pub fn data_dirs(&self) -> Vec<PathBuf> {
        self.nodes.values().map(|n| n.spec.data_dir.clone()).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, id: &str, program: &str, args: &[&str]) -> NodeSpec {
        NodeSpec {
            id: id.into(),
            listen: free_port().unwrap(),
            data_dir: dir.join(id),
            log: dir.join(format!("{id}.log")),
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec![],
            clock_file: None,
            stdio: None,
        }
    }

    #[tokio::test]
    async fn a_node_that_exits_is_reported_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(dir.path(), "n1", "/bin/sh", &["-c", "echo boom-from-node; exit 3"]);
        let err = match Cluster::start(vec![s]).await {
            Ok(_) => panic!("a node that exits cannot be ready"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("n1") && err.contains("boom-from-node"), "{err}");
    }

    #[tokio::test]
    async fn kill_pause_and_restart_a_listening_process() {
        if Command::new("python3").arg("--version").output().is_err() {
            return; // the stand-in node needs python3
        }
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), "n1", "python3", &[]);
        let port = s.listen.port();
        let script = format!("import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1',{port}))\ns.listen()\nwhile True: s.accept()");
        s.args = vec!["-c".into(), script];
        let mut c = Cluster::start(vec![s]).await.unwrap();
        let pid = c.nodes["n1"].child.as_ref().unwrap().id();
        c.pause("n1").unwrap();
        assert_eq!(c.paused(), vec!["n1"]);
        c.resume("n1").unwrap();
        c.kill("n1").unwrap();
        assert_eq!(c.down(), vec!["n1"]);
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        c.restart("n1").await.unwrap();
        assert!(c.down().is_empty());
        c.stop_all();
        assert_eq!(c.down(), vec!["n1"]);
    }
}
