//! The proxy network: one userland TCP proxy per directed link between nodes.
//!
//! Every node reaches every peer only through the address given to it by `--peer` (see the
//! contract, section 6). The harness gives node `from` the address of the proxy of the directed
//! link `from → to`, which forwards to `to`'s real listen address. Because a node sends its
//! messages to a peer only over the connection it opened itself (docs/design.md), each link's
//! proxy carries exactly the messages of one direction, and faults are rules on links, as in
//! turmoil: [`LinkState::Pass`], [`LinkState::Stall`] (what a partition that drops packets looks
//! like to TCP: nothing arrives, the sender eventually blocks; on heal the held bytes arrive),
//! [`LinkState::Reset`] (connections die with an RST and new ones are refused), and
//! [`LinkState::Delay`] (each chunk arrives `delay ± jitter` late, in order).
//!
//! A partition is a *grudge* (Jepsen's word): for each node, the nodes it no longer receives
//! from. [`topology`] computes the usual grudges from a seeded generator; [`Network::partition`]
//! applies one. The forward path lives in [`pipe`]; it is built to add little latency (see
//! docs/network.md for the benchmark).

pub mod pipe;
pub mod topology;

use pipe::{End, Pipe};
use rand::SeedableRng;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

pub type NodeId = String;
/// node → the nodes it no longer RECEIVES from (Jepsen's grudge).
pub type Grudge = BTreeMap<NodeId, BTreeSet<NodeId>>;

/// What a directed link does with the bytes of its connections (both directions of each).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Forward everything at once.
    Pass,
    /// Forward nothing; hold up to 4 MiB per connection and direction, then stop reading so TCP
    /// backpressure stops the sender. The held bytes are delivered when the link passes again.
    Stall,
    /// Abort existing connections with an RST and refuse new ones.
    Reset,
    /// Deliver each chunk `delay_ms ± jitter_ms` after it arrived, keeping the order.
    Delay { delay_ms: u64, jitter_ms: u64 },
}

/// A link's counters, as reported by [`Network::stats`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkStats {
    pub from: NodeId,
    pub to: NodeId,
    /// Bytes delivered from `from` to `to` (the protocol's direction).
    pub bytes_forward: u64,
    /// Bytes delivered back from `to` to `from` on the same connections.
    pub bytes_backward: u64,
    /// Connections accepted and forwarded.
    pub accepted: u64,
    /// Connections refused because the link was `Reset`.
    pub refused: u64,
    /// Connections dropped because the target could not be reached (e.g. the node is down).
    pub unreachable: u64,
    /// Established connections aborted by a `Reset`.
    pub reset: u64,
    pub state: LinkState,
}

/// How long a proxy tries to reach its target before it drops the incoming connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Counters {
    bytes_forward: Arc<AtomicU64>,
    bytes_backward: Arc<AtomicU64>,
    accepted: AtomicU64,
    refused: AtomicU64,
    unreachable: AtomicU64,
    reset: AtomicU64,
}

/// One directed link: its proxy's listener, state and connections.
struct Link {
    from: NodeId,
    to: NodeId,
    addr: SocketAddr,
    /// The real address of `to`; shared by every link into `to`, so a restarted node can move.
    target: Arc<Mutex<SocketAddr>>,
    state: watch::Sender<LinkState>,
    counters: Arc<Counters>,
    /// The connection tasks. They hold no reference to the link, so dropping the link (with
    /// the network) aborts them.
    conns: Mutex<JoinSet<()>>,
    seed: u64,
}

/// The proxies of a cluster. Dropping it aborts every proxy; [`Network::shutdown`] also waits.
pub struct Network {
    links: BTreeMap<(NodeId, NodeId), Arc<Link>>,
    targets: BTreeMap<NodeId, Arc<Mutex<SocketAddr>>>,
    acceptors: JoinSet<()>,
}

impl Network {
    /// One proxy per directed link (from, to): listens on 127.0.0.1:0, forwards to `targets[to]`.
    pub async fn start(nodes: &[NodeId], targets: &BTreeMap<NodeId, SocketAddr>, seed: u64) -> std::io::Result<Network> {
        let unique: BTreeSet<&NodeId> = nodes.iter().collect();
        if unique.len() != nodes.len() {
            return Err(invalid(format!("duplicate node ids in {nodes:?}")));
        }
        let mut shared = BTreeMap::new();
        for node in nodes {
            let addr = targets.get(node).ok_or_else(|| invalid(format!("no target address for node {node}")))?;
            shared.insert(node.clone(), Arc::new(Mutex::new(*addr)));
        }
        let mut network = Network { links: BTreeMap::new(), targets: shared, acceptors: JoinSet::new() };
        for (i, from) in nodes.iter().enumerate() {
            for (j, to) in nodes.iter().enumerate().filter(|(_, to)| *to != from) {
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                let link = Arc::new(Link {
                    from: from.clone(),
                    to: to.clone(),
                    addr: listener.local_addr()?,
                    target: network.targets[to].clone(),
                    state: watch::Sender::new(LinkState::Pass),
                    counters: Arc::default(),
                    conns: Mutex::new(JoinSet::new()),
                    seed: mix(seed, (i * nodes.len() + j) as u64),
                });
                network.acceptors.spawn(accept_loop(listener, link.clone()));
                network.links.insert((from.clone(), to.clone()), link);
            }
        }
        Ok(network)
    }

    // --- maelstrom router support (begin) ---
    /// The link rules alone, without proxies: one rule per directed link between `nodes`, for a
    /// router that forwards messages itself (the Maelstrom-protocol nodes of `crate::maelstrom`)
    /// and consults the same states the proxies would. No socket is bound.
    pub fn rules_only(nodes: &[NodeId], seed: u64) -> std::io::Result<Network> {
        let unique: BTreeSet<&NodeId> = nodes.iter().collect();
        if unique.len() != nodes.len() {
            return Err(invalid(format!("duplicate node ids in {nodes:?}")));
        }
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        let mut network = Network { links: BTreeMap::new(), targets: BTreeMap::new(), acceptors: JoinSet::new() };
        for node in nodes {
            network.targets.insert(node.clone(), Arc::new(Mutex::new(unspecified)));
        }
        for (i, from) in nodes.iter().enumerate() {
            for (j, to) in nodes.iter().enumerate().filter(|(_, to)| *to != from) {
                let link = Arc::new(Link {
                    from: from.clone(),
                    to: to.clone(),
                    addr: unspecified,
                    target: network.targets[to].clone(),
                    state: watch::Sender::new(LinkState::Pass),
                    counters: Arc::default(),
                    conns: Mutex::new(JoinSet::new()),
                    seed: mix(seed, (i * nodes.len() + j) as u64),
                });
                network.links.insert((from.clone(), to.clone()), link);
            }
        }
        Ok(network)
    }

    /// Watches the state of the directed link `from -> to` (`None`: no such link).
    pub fn subscribe(&self, from: &str, to: &str) -> Option<watch::Receiver<LinkState>> {
        self.link(from, to).map(|l| l.state.subscribe())
    }
    // --- maelstrom router support (end) ---

    /// The address `from` must be given as `--peer to=ADDR`.
    ///
    /// # Panics
    /// If `from → to` is not a link of this network (a programming error of the caller, which
    /// chose the node ids); see [`Network::try_proxy_addr`].
    pub fn proxy_addr(&self, from: &str, to: &str) -> SocketAddr {
        self.try_proxy_addr(from, to).unwrap_or_else(|| panic!("no link {from} -> {to} in the proxy network"))
    }

    pub fn try_proxy_addr(&self, from: &str, to: &str) -> Option<SocketAddr> {
        self.link(from, to).map(|l| l.addr)
    }

    /// Points every link into `to` at a new address (a node restarted elsewhere). Existing
    /// connections keep their old target.
    pub fn set_target(&self, to: &str, addr: SocketAddr) {
        if let Some(target) = self.targets.get(to) {
            *target.lock().unwrap_or_else(|e| e.into_inner()) = addr;
        }
    }

    /// Sets one directed link's state. Unknown links are ignored (with a warning).
    pub fn set_link(&self, from: &str, to: &str, state: LinkState) {
        match self.link(from, to) {
            Some(link) => {
                link.state.send_replace(state);
            }
            None => tracing::warn!("set_link: no link {from} -> {to}"),
        }
    }

    /// The current state of a link.
    pub fn link_state(&self, from: &str, to: &str) -> Option<LinkState> {
        self.link(from, to).map(|l| l.state.borrow().clone())
    }

    /// Applies a grudge: for each (n, froms) the links from→n become `how` (Stall or Reset);
    /// every other link passes.
    pub fn partition(&self, grudge: &Grudge, how: LinkState) {
        for ((from, to), link) in &self.links {
            let cut = grudge.get(to).is_some_and(|froms| froms.contains(from));
            link.state.send_replace(if cut { how.clone() } else { LinkState::Pass });
        }
    }

    /// Every link back to Pass; stalled bytes are delivered.
    pub fn heal(&self) {
        for link in self.links.values() {
            link.state.send_replace(LinkState::Pass);
        }
    }

    pub fn stats(&self) -> Vec<LinkStats> {
        self.links.values().map(|l| l.stats()).collect()
    }

    /// Stops every proxy and waits for their tasks to end; open connections are closed.
    pub async fn shutdown(mut self) {
        self.acceptors.shutdown().await;
        for link in self.links.values() {
            let mut conns = std::mem::take(&mut *link.conns.lock().unwrap_or_else(|e| e.into_inner()));
            conns.shutdown().await;
        }
    }

    fn link(&self, from: &str, to: &str) -> Option<&Arc<Link>> {
        self.links.get(&(from.to_string(), to.to_string()))
    }
}

impl Link {
    fn stats(&self) -> LinkStats {
        let c = &self.counters;
        LinkStats {
            from: self.from.clone(),
            to: self.to.clone(),
            bytes_forward: c.bytes_forward.load(Ordering::Relaxed),
            bytes_backward: c.bytes_backward.load(Ordering::Relaxed),
            accepted: c.accepted.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            unreachable: c.unreachable.load(Ordering::Relaxed),
            reset: c.reset.load(Ordering::Relaxed),
            state: self.state.borrow().clone(),
        }
    }
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, message)
}

/// A cheap, well-spread hash of a seed and a number (SplitMix64's finaliser).
fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Accepts connections on a link's proxy; refuses them while the link is `Reset`.
async fn accept_loop(listener: TcpListener, link: Arc<Link>) {
    let mut n: u64 = 0;
    loop {
        let client = match listener.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of descriptors or similar: back off rather than spin.
                tracing::warn!("proxy {} -> {}: accept failed: {e}", link.from, link.to);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if *link.state.borrow() == LinkState::Reset {
            refuse(&client);
            link.counters.refused.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        n += 1;
        let target = *link.target.lock().unwrap_or_else(|e| e.into_inner());
        let conn = serve(client, target, link.state.subscribe(), link.counters.clone(), mix(link.seed, n));
        let mut conns = link.conns.lock().unwrap_or_else(|e| e.into_inner());
        while conns.try_join_next().is_some() {}
        conns.spawn(conn);
    }
}

/// Closes a connection with an RST.
fn refuse(stream: &TcpStream) {
    let _ = stream.set_zero_linger();
}

/// Proxies one connection: connects to the target, then runs both pipes until both end.
async fn serve(client: TcpStream, target: SocketAddr, state: watch::Receiver<LinkState>, counters: Arc<Counters>, seed: u64) {
    let server = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(server)) => server,
        _ => {
            refuse(&client);
            counters.unreachable.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    if *state.borrow() == LinkState::Reset {
        refuse(&client);
        refuse(&server);
        counters.refused.fetch_add(1, Ordering::Relaxed);
        return;
    }
    counters.accepted.fetch_add(1, Ordering::Relaxed);
    // Small protocol messages must not wait for Nagle's algorithm on either leg.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client, server) = (Arc::new(client), Arc::new(server));
    let forward = Pipe {
        src: client.clone(),
        dst: server.clone(),
        state: state.clone(),
        delivered: counters.bytes_forward.clone(),
        rng: rand_chacha::ChaCha8Rng::seed_from_u64(mix(seed, 0)),
    };
    let backward = Pipe {
        src: server,
        dst: client,
        state,
        delivered: counters.bytes_backward.clone(),
        rng: rand_chacha::ChaCha8Rng::seed_from_u64(mix(seed, 1)),
    };
    let forward = forward.run();
    let backward = backward.run();
    tokio::pin!(forward, backward);
    // When one direction aborts, returning drops the other one: both sockets close, and the
    // zero linger the aborting pipe set turns the close into an RST.
    let (first, second) = tokio::select! {
        end = &mut forward => (end, if end == End::Closed { backward.await } else { end }),
        end = &mut backward => (end, if end == End::Closed { forward.await } else { end }),
    };
    if first == End::Reset || second == End::Reset {
        counters.reset.fetch_add(1, Ordering::Relaxed);
    }
}
