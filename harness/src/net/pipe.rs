//! One direction of one proxied TCP connection: the forward path.
//!
//! A pipe reads from one socket and writes to the other, obeying its link's state, which it
//! watches through a `watch` channel (an atomic version check per loop, no lock on the hot
//! path). In `Pass` with nothing pending it is a tight copy loop: one readiness wake-up, then
//! non-blocking `try_read`s into a buffer allocated once per pipe, each followed by a
//! non-blocking `try_write`; when the destination is full the rest stays in that buffer and the
//! pipe stops reading until it drains, so backpressure reaches the sender. Bytes held by a stall
//! or waiting out a delay go through a queue of chunks, bounded by [`MAX_PENDING_BYTES`]: beyond
//! it the pipe stops reading and TCP's own backpressure holds the sender, as it would behind a
//! lossy link.

use super::LinkState;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use std::os::fd::AsRawFd;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

/// Bytes one pipe holds back (stall, delay, slow reader) before it stops reading.
pub const MAX_PENDING_BYTES: usize = 4 << 20;
/// Size of a pipe's read buffer: one allocation per pipe, reused for every read.
const READ_BUF_BYTES: usize = 64 << 10;

/// How a pipe ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The source closed and every byte was delivered; the destination's write side is shut.
    Closed,
    /// The link was set to `Reset`: both sockets are to be aborted with an RST.
    Reset,
    /// A socket failed, or the network is shutting down: abort both sockets.
    Broken,
}

/// A chunk of bytes held by a stall or a delay.
struct Chunk {
    /// When it may be delivered (only `Delay` looks at it).
    due: Instant,
    data: Vec<u8>,
    /// How much of `data` was already written.
    offset: usize,
}

/// What the pipe waits for, besides a state change and (when it may read) its source.
enum Wait {
    Nothing,
    Writable,
    Until(Instant),
}

/// The sockets are shared by the two pipes of a connection rather than split into owned halves:
/// tokio's write half shuts the socket down (FIN) when dropped, which would turn an intended RST
/// into a clean end of stream. Closing a shared socket with linger 0 sends a bare RST.
pub struct Pipe {
    pub src: Arc<TcpStream>,
    pub dst: Arc<TcpStream>,
    pub state: watch::Receiver<LinkState>,
    /// Bytes delivered in this direction, for the link's statistics.
    pub delivered: Arc<AtomicU64>,
    /// Draws delay jitter.
    pub rng: ChaCha8Rng,
}

/// The loop's bytes in flight.
struct Flow {
    /// The read buffer, allocated once.
    buf: Vec<u8>,
    /// Bytes of `buf` read while the link passed and not yet written (a short write). They
    /// count as already on the wire: they are delivered even if the link stalls meanwhile.
    held: Range<usize>,
    /// Bytes read while the link stalled or delayed, in order.
    pending: VecDeque<Chunk>,
    pending_bytes: usize,
    /// The due time of the last chunk queued, so chunks never overtake one another.
    last_due: Instant,
    /// The source has closed.
    eof: bool,
}

impl Flow {
    fn is_empty(&self) -> bool {
        self.held.is_empty() && self.pending.is_empty()
    }
}

/// Reads at most this many times per wake-up before looking at the link state again.
const READS_PER_WAKEUP: usize = 16;

/// A future that resolves at the next state change and gives the receiver back. Kept alive
/// across loop turns, so that waiting for a change registers once per change, not per chunk.
type Changes = Pin<Box<dyn Future<Output = (bool, watch::Receiver<LinkState>)> + Send>>;

fn next_change(mut rx: watch::Receiver<LinkState>) -> Changes {
    Box::pin(async move { (rx.changed().await.is_ok(), rx) })
}

impl Pipe {
    /// Forwards until the source closes (and everything is delivered), the link resets, or a
    /// socket fails. On `Reset`/`Broken` both sockets are set to linger 0, so that closing
    /// them sends an RST.
    pub async fn run(mut self) -> End {
        let end = self.forward().await;
        if end != End::Closed {
            let _ = self.src.set_zero_linger();
            let _ = self.dst.set_zero_linger();
        }
        end
    }

    async fn forward(&mut self) -> End {
        let mut flow = Flow {
            buf: vec![0u8; READ_BUF_BYTES],
            held: 0..0,
            pending: VecDeque::new(),
            pending_bytes: 0,
            last_due: Instant::now(),
            eof: false,
        };
        let mut rx = self.state.clone();
        let mut state = rx.borrow_and_update().clone();
        let mut changes = next_change(rx);
        loop {
            if state == LinkState::Reset {
                return End::Reset;
            }
            if self.flush(&mut flow, &state).is_err() {
                return End::Broken;
            }
            if flow.eof && flow.is_empty() {
                shutdown_write(&self.dst);
                return End::Closed;
            }
            let wait = wait_for(&flow, &state);
            let may_read = !flow.eof && flow.held.is_empty() && flow.pending_bytes < MAX_PENDING_BYTES;
            tokio::select! {
                biased;
                (alive, mut rx) = &mut changes => {
                    if !alive {
                        return End::Broken; // the network is gone
                    }
                    state = rx.borrow_and_update().clone();
                    changes = next_change(rx);
                }
                ready = self.src.readable(), if may_read => {
                    if ready.is_err() || self.read_some(&mut flow, &state).is_err() {
                        return End::Broken;
                    }
                }
                ready = self.dst.writable(), if matches!(wait, Wait::Writable) => {
                    if ready.is_err() {
                        return End::Broken;
                    }
                }
                _ = sleep_until(&wait), if matches!(wait, Wait::Until(_)) => {}
            }
        }
    }

    /// Reads what the source has, up to [`READS_PER_WAKEUP`] times. Under `Pass` with nothing
    /// queued each read is written on at once; otherwise it is queued.
    fn read_some(&mut self, flow: &mut Flow, state: &LinkState) -> std::io::Result<()> {
        for _ in 0..READS_PER_WAKEUP {
            let n = match self.src.try_read(&mut flow.buf) {
                Ok(0) => {
                    flow.eof = true;
                    return Ok(());
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            };
            if *state == LinkState::Pass && flow.pending.is_empty() {
                let written = self.write_now(&flow.buf[..n])?;
                if written < n {
                    flow.held = written..n;
                    return Ok(());
                }
            } else {
                let due = self.due(state, &mut flow.last_due);
                flow.pending.push_back(Chunk { due, data: flow.buf[..n].to_vec(), offset: 0 });
                flow.pending_bytes += n;
                if flow.pending_bytes >= MAX_PENDING_BYTES {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Writes as much of `bytes` as the socket takes without blocking.
    fn write_now(&self, bytes: &[u8]) -> std::io::Result<usize> {
        match self.dst.try_write(bytes) {
            Ok(n) => {
                self.delivered.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Delivers the held bytes, then queued chunks in order, as far as the state and the socket
    /// allow.
    fn flush(&self, flow: &mut Flow, state: &LinkState) -> std::io::Result<()> {
        if !flow.held.is_empty() {
            let n = self.write_now(&flow.buf[flow.held.clone()])?;
            flow.held.start += n;
            if !flow.held.is_empty() {
                return Ok(());
            }
        }
        let now = Instant::now();
        while let Some(chunk) = flow.pending.front_mut() {
            let hold = match state {
                LinkState::Stall => true,
                LinkState::Delay { .. } => chunk.due > now,
                _ => false,
            };
            if hold {
                break;
            }
            let n = self.write_now(&chunk.data[chunk.offset..])?;
            if n == 0 {
                break;
            }
            chunk.offset += n;
            flow.pending_bytes -= n;
            if chunk.offset == chunk.data.len() {
                flow.pending.pop_front();
            }
        }
        Ok(())
    }

    /// When a chunk read now may be delivered. Under `Delay` it is `delay ± jitter` from now,
    /// but never before the chunk ahead of it, so bytes of one connection stay in order.
    fn due(&mut self, state: &LinkState, last_due: &mut Instant) -> Instant {
        let now = Instant::now();
        let due = match state {
            LinkState::Delay { delay_ms, jitter_ms } => {
                let lo = delay_ms.saturating_sub(*jitter_ms).saturating_mul(1000);
                let hi = delay_ms.saturating_add(*jitter_ms).saturating_mul(1000);
                now + Duration::from_micros(self.rng.gen_range(lo..=hi))
            }
            _ => now,
        };
        *last_due = due.max(*last_due);
        *last_due
    }
}

/// Half-closes a socket: the peer reads end of stream, and may still send.
fn shutdown_write(stream: &TcpStream) {
    // SAFETY: the descriptor is owned by `stream`, which outlives this call; shutdown(2) only
    // changes the connection's state and is safe on any socket descriptor.
    unsafe {
        libc::shutdown(stream.as_raw_fd(), libc::SHUT_WR);
    }
}

fn wait_for(flow: &Flow, state: &LinkState) -> Wait {
    if !flow.held.is_empty() {
        return Wait::Writable;
    }
    match (flow.pending.front(), state) {
        (None, _) | (Some(_), LinkState::Stall) => Wait::Nothing,
        (Some(chunk), LinkState::Delay { .. }) if chunk.due > Instant::now() => Wait::Until(chunk.due),
        (Some(_), _) => Wait::Writable,
    }
}

async fn sleep_until(wait: &Wait) {
    if let Wait::Until(at) = wait {
        tokio::time::sleep_until(*at).await;
    }
}
