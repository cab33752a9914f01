//! What a proxy adds to a round trip on loopback, and what it costs in bulk throughput.
//!
//! An echo server and the proxy run on a multi-thread tokio runtime, as in the harness; the
//! client is a plain thread with blocking sockets, so its own overhead is the same in both
//! cases. Small messages go back and forth directly and through a proxy (which forwards both
//! directions, so a round trip crosses it twice), in alternating rounds so that drift in the
//! machine's load hits both alike. Run with `cargo bench -p faultline --bench proxy`.

use faultline::net::{LinkState, Network};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MESSAGE_BYTES: usize = 64;
const ROUNDS: usize = 10;
const TRIPS_PER_ROUND: usize = 2_000;
const BULK_BYTES: usize = 256 << 20;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let echo = runtime.block_on(echo_server());
    let sink = runtime.block_on(sink_server());
    let nodes = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let targets: BTreeMap<String, SocketAddr> =
        [("a".to_string(), echo), ("b".to_string(), echo), ("c".to_string(), sink)].into();
    let net = runtime.block_on(Network::start(&nodes, &targets, 1)).unwrap();

    let (direct, proxied) = round_trips(echo, net.proxy_addr("a", "b"));
    let (d50, d99) = (percentile(&direct, 50.0), percentile(&direct, 99.0));
    let (p50, p99) = (percentile(&proxied, 50.0), percentile(&proxied, 99.0));
    println!("round trip of {MESSAGE_BYTES}-byte messages, {} trips each:", direct.len());
    println!("  direct       p50 {d50:>7.1} us   p99 {d99:>7.1} us");
    println!("  via proxy    p50 {p50:>7.1} us   p99 {p99:>7.1} us");
    println!("  added        p50 {:>7.1} us   p99 {:>7.1} us", p50 - d50, p99 - d99);

    let direct_mb_s = bulk(sink);
    let proxied_mb_s = bulk(net.proxy_addr("a", "c"));
    println!("bulk one-way transfer of {} MiB:", BULK_BYTES >> 20);
    println!("  direct    {direct_mb_s:>8.0} MiB/s");
    println!("  via proxy {proxied_mb_s:>8.0} MiB/s");

    // A delayed link, to show the delay is what it says.
    net.set_link("a", "b", LinkState::Delay { delay_ms: 5, jitter_ms: 0 });
    let mut s = connect(net.proxy_addr("a", "b"));
    let delayed: Vec<f64> = (0..50).map(|_| trip(&mut s)).collect();
    println!("with Delay 5 ms each way: p50 {:.1} ms", percentile(&delayed, 50.0) / 1000.0);
    runtime.block_on(net.shutdown());
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// One round trip, in microseconds.
fn trip(s: &mut TcpStream) -> f64 {
    let msg = [7u8; MESSAGE_BYTES];
    let mut back = [0u8; MESSAGE_BYTES];
    let start = Instant::now();
    s.write_all(&msg).unwrap();
    s.read_exact(&mut back).unwrap();
    start.elapsed().as_secs_f64() * 1e6
}

fn round_trips(direct: SocketAddr, proxied: SocketAddr) -> (Vec<f64>, Vec<f64>) {
    let (mut d, mut p) = (connect(direct), connect(proxied));
    for _ in 0..200 {
        trip(&mut d); // warm up both paths
        trip(&mut p);
    }
    let (mut direct_us, mut proxied_us) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        direct_us.extend((0..TRIPS_PER_ROUND).map(|_| trip(&mut d)));
        proxied_us.extend((0..TRIPS_PER_ROUND).map(|_| trip(&mut p)));
    }
    (direct_us, proxied_us)
}

/// MiB/s of a one-way stream of BULK_BYTES to a server that discards it and then answers one byte.
fn bulk(addr: SocketAddr) -> f64 {
    let mut s = connect(addr);
    let chunk = vec![1u8; 256 << 10];
    let start = Instant::now();
    for _ in 0..BULK_BYTES / chunk.len() {
        s.write_all(&chunk).unwrap();
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut done = [0u8; 1];
    s.read_exact(&mut done).unwrap();
    (BULK_BYTES >> 20) as f64 / start.elapsed().as_secs_f64()
}

fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p / 100.0).round() as usize]
}

async fn echo_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 << 10];
                while let Ok(n @ 1..) = s.read(&mut buf).await {
                    if s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Reads to end of stream, then writes one byte.
async fn sink_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 << 10];
                while let Ok(1..) = s.read(&mut buf).await {}
                let _ = s.write_all(&[1]).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            });
        }
    });
    addr
}
