//! The proxy network over real loopback TCP: each link state does what it claims, to both
//! directions of a connection, and the counters see it.

use faultline::net::{topology, Grudge, LinkState, Network, NodeId};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const QUIET: Duration = Duration::from_millis(200);
const PROMPT: Duration = Duration::from_secs(3);

/// An echo server that counts the bytes it received.
async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let count = received.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    count.fetch_add(n, Ordering::SeqCst);
                }
            });
        }
    });
    (addr, received)
}

fn ids(n: usize) -> Vec<NodeId> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

/// A network over `n` echo servers, with their received-byte counters.
async fn network(n: usize) -> (Network, BTreeMap<NodeId, Arc<AtomicUsize>>) {
    let mut targets = BTreeMap::new();
    let mut counts = BTreeMap::new();
    for id in ids(n) {
        let (addr, count) = echo_server().await;
        targets.insert(id.clone(), addr);
        counts.insert(id, count);
    }
    (Network::start(&ids(n), &targets, 7).await.unwrap(), counts)
}

async fn connect(net: &Network, from: &str, to: &str) -> TcpStream {
    let stream = TcpStream::connect(net.proxy_addr(from, to)).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Whether a connection to a proxy is dropped at once: the RST may even beat the end of the
/// handshake on loopback (connect fails), else the first read sees the end.
async fn dropped_at_once(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect(addr).await else { return true };
    let mut buf = [0u8; 1];
    matches!(tokio::time::timeout(PROMPT, s.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

async fn read_exact_within(stream: &mut TcpStream, n: usize, within: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; n];
    match tokio::time::timeout(within, stream.read_exact(&mut buf)).await {
        Ok(Ok(_)) => Some(buf),
        _ => None,
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PROMPT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_forwards_both_ways() {
    let (net, counts) = network(2).await;
    let mut s = connect(&net, "n1", "n2").await;
    s.write_all(b"hello\n").await.unwrap();
    assert_eq!(read_exact_within(&mut s, 6, PROMPT).await.unwrap(), b"hello\n");
    assert_eq!(counts["n2"].load(Ordering::SeqCst), 6, "the bytes reached n2, not n1");
    assert_eq!(counts["n1"].load(Ordering::SeqCst), 0);
    let stats = net.stats().into_iter().find(|s| s.from == "n1" && s.to == "n2").unwrap();
    assert_eq!((stats.bytes_forward, stats.bytes_backward, stats.accepted), (6, 6, 1));
    assert_eq!(stats.state, LinkState::Pass);
    // A half-close travels through: the echo server sees EOF and closes, and so do we.
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(PROMPT, s.read_to_end(&mut rest)).await.unwrap().unwrap();
    assert!(rest.is_empty());
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_holds_bytes_until_heal() {
    let (net, counts) = network(2).await;
    // An established connection, then a stall.
    let mut s = connect(&net, "n1", "n2").await;
    s.write_all(b"ping").await.unwrap();
    assert!(read_exact_within(&mut s, 4, PROMPT).await.is_some());
    net.set_link("n1", "n2", LinkState::Stall);
    s.write_all(b"held").await.unwrap();
    assert!(read_exact_within(&mut s, 4, QUIET).await.is_none(), "nothing gets through a stall");
    assert_eq!(counts["n2"].load(Ordering::SeqCst), 4);
    // A connection opened during the stall is accepted but carries nothing.
    let mut fresh = connect(&net, "n1", "n2").await;
    fresh.write_all(b"new").await.unwrap();
    assert!(read_exact_within(&mut fresh, 3, QUIET).await.is_none());
    net.heal();
    assert_eq!(read_exact_within(&mut s, 4, PROMPT).await.unwrap(), b"held");
    assert_eq!(read_exact_within(&mut fresh, 3, PROMPT).await.unwrap(), b"new");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_applies_backpressure_and_loses_nothing() {
    let (net, counts) = network(2).await;
    net.set_link("n1", "n2", LinkState::Stall);
    let s = connect(&net, "n1", "n2").await;
    let (mut r, mut w) = s.into_split();
    let total = 24 << 20;
    let data: Vec<u8> = (0..total).map(|i| (i * 7 % 251) as u8).collect();
    let expected = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&data).await.unwrap();
        w
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!writer.is_finished(), "24 MiB cannot fit in a 4 MiB stall buffer plus the socket buffers");
    assert_eq!(counts["n2"].load(Ordering::SeqCst), 0);
    net.heal();
    let mut echoed = vec![0u8; total];
    tokio::time::timeout(Duration::from_secs(10), r.read_exact(&mut echoed)).await.unwrap().unwrap();
    assert!(echoed == expected, "bytes arrive complete and in order");
    writer.await.unwrap();
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_closes_and_refuses() {
    let (net, _) = network(2).await;
    let mut s = connect(&net, "n1", "n2").await;
    s.write_all(b"x").await.unwrap();
    assert!(read_exact_within(&mut s, 1, PROMPT).await.is_some());
    net.set_link("n1", "n2", LinkState::Reset);
    let mut buf = [0u8; 1];
    let r = tokio::time::timeout(PROMPT, s.read(&mut buf)).await.expect("the connection dies promptly");
    assert!(matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset), "an RST, got {r:?}");
    // New connections are accepted by the kernel, then closed at once.
    assert!(dropped_at_once(net.proxy_addr("n1", "n2")).await, "new connections are refused");
    let stats = net.stats().into_iter().find(|s| s.from == "n1" && s.to == "n2").unwrap();
    assert_eq!((stats.reset, stats.refused), (1, 1));
    // Back to normal after heal; the other direction was never affected.
    net.heal();
    let mut again = connect(&net, "n1", "n2").await;
    again.write_all(b"y").await.unwrap();
    assert!(read_exact_within(&mut again, 1, PROMPT).await.is_some());
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_adds_at_least_the_delay_and_keeps_order() {
    let (net, _) = network(2).await;
    net.set_link("n1", "n2", LinkState::Delay { delay_ms: 100, jitter_ms: 0 });
    let mut s = connect(&net, "n1", "n2").await;
    let started = Instant::now();
    s.write_all(b"slow").await.unwrap();
    assert!(read_exact_within(&mut s, 4, PROMPT).await.is_some());
    let rtt = started.elapsed();
    // Both directions of the connection are delayed.
    assert!(rtt >= Duration::from_millis(200) && rtt < Duration::from_secs(2), "round trip {rtt:?}");
    // With jitter larger than the gaps between writes, order still holds.
    net.set_link("n1", "n2", LinkState::Delay { delay_ms: 20, jitter_ms: 15 });
    let mut sent = Vec::new();
    for i in 0..100u8 {
        s.write_all(&[i]).await.unwrap();
        sent.push(i);
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    assert_eq!(read_exact_within(&mut s, 100, PROMPT).await.unwrap(), sent);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_applies_a_one_way_cut() {
    let (net, counts) = network(3).await;
    // n1 stops receiving from n2 and n3; they still receive from n1.
    let grudge: Grudge = [("n1".to_string(), ["n2".to_string(), "n3".to_string()].into())].into();
    net.partition(&grudge, LinkState::Stall);
    for (from, to) in [("n2", "n1"), ("n3", "n1")] {
        assert_eq!(net.link_state(from, to), Some(LinkState::Stall));
    }
    for (from, to) in [("n1", "n2"), ("n1", "n3"), ("n2", "n3"), ("n3", "n2")] {
        assert_eq!(net.link_state(from, to), Some(LinkState::Pass));
    }
    let mut into_n1 = connect(&net, "n2", "n1").await;
    let mut out_of_n1 = connect(&net, "n1", "n2").await;
    into_n1.write_all(b"a").await.unwrap();
    out_of_n1.write_all(b"b").await.unwrap();
    assert!(read_exact_within(&mut out_of_n1, 1, PROMPT).await.is_some());
    assert!(read_exact_within(&mut into_n1, 1, QUIET).await.is_none());
    assert_eq!(counts["n1"].load(Ordering::SeqCst), 0);
    net.heal();
    wait_for("n1 to receive after heal", || counts["n1"].load(Ordering::SeqCst) == 1).await;
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topology_grudges_drive_the_links() {
    let (net, _) = network(5).await;
    let nodes = ids(5);
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3);
    let grudge = topology::halves(&nodes, &mut rng);
    net.partition(&grudge, LinkState::Reset);
    for from in &nodes {
        for to in nodes.iter().filter(|t| *t != from) {
            let cut = grudge.get(to).is_some_and(|f| f.contains(from));
            let expected = if cut { LinkState::Reset } else { LinkState::Pass };
            assert_eq!(net.link_state(from, to), Some(expected), "{from} -> {to}");
        }
    }
    assert_eq!(net.stats().iter().filter(|s| s.state == LinkState::Reset).count(), 12, "2 x 3 x 2 links cut");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_and_shutdown() {
    let nodes = ids(2);
    let only_one: BTreeMap<NodeId, SocketAddr> = [("n1".to_string(), "127.0.0.1:1".parse().unwrap())].into();
    let err = Network::start(&nodes, &only_one, 1).await.err().expect("n2 has no target");
    assert!(err.to_string().contains("n2"), "{err}");
    // A down target: the proxy accepts, fails to connect, and drops the connection.
    let (net, _) = network(2).await;
    net.set_target("n2", "127.0.0.1:1".parse().unwrap());
    assert!(dropped_at_once(net.proxy_addr("n1", "n2")).await);
    wait_for("the unreachable counter", || net.stats().iter().any(|s| s.unreachable == 1)).await;
    let addr = net.proxy_addr("n1", "n2");
    net.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err(), "no proxy listens after shutdown");
}
