//! The history of a run, recorded as it happens.
//!
//! Clients and the nemesis hand events to a [`Recorder`]; one writer thread numbers them in
//! the order it receives them and appends each to `history.jsonl`, flushed as soon as nothing
//! more is queued, so a harness killed mid-run leaves a prefix that `faultline check` accepts. The order of the
//! channel is the happened-before of the history: a client sends its invoke before it sends
//! the request, and its completion after the reply arrives, so whenever the file says one
//! operation completed before another began, it really did.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use faultline_checkers::history::{JsonlWriter, Op, OpType, Process};
use serde_json::Value;

/// Live counts for the progress display.
#[derive(Debug, Default)]
pub struct Counters {
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
    /// The faults in effect now, by nemesis name.
    pub active: Mutex<Vec<String>>,
}

impl Counters {
    pub fn completed(&self) -> (u64, u64, u64) {
        (self.ok.load(Ordering::Relaxed), self.fail.load(Ordering::Relaxed), self.info.load(Ordering::Relaxed))
    }

    pub fn set_active(&self, name: &str, on: bool) {
        if let Ok(mut a) = self.active.lock() {
            a.retain(|n| n != name);
            if on {
                a.push(name.to_string());
            }
        }
    }
}

/// An acknowledged update (an `ok` of anything but a read), as faults aimed at the instant
/// after an acknowledgement see it.
#[derive(Clone, Debug)]
pub struct Ack {
    pub node: Option<Arc<str>>,
    pub time_ns: u64,
}

/// Hands events to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Option<Op>>,
    start: Instant,
    pub counters: Arc<Counters>,
    /// Every acknowledged update, for faults that strike right after one (bounded: a slow
    /// subscriber misses old acknowledgements, it never holds the clients up).
    pub acks: tokio::sync::broadcast::Sender<Ack>,
}

/// The writer thread's result: every event, and the first write error if there was one.
pub struct Recorded {
    pub ops: Vec<Op>,
    pub error: Option<io::Error>,
}

/// Owns the writer thread; [`Sink::finish`] waits for it once every [`Recorder`] is dropped.
pub struct Sink {
    handle: std::thread::JoinHandle<Recorded>,
    /// Closes the history explicitly: a recorder clone still held by a task that outlived the
    /// run must not keep the writer (and so the whole run) waiting.
    close: mpsc::Sender<Option<Op>>,
}

impl Sink {
    pub fn finish(self) -> Recorded {
        let _ = self.close.send(None);
        self.handle.join().unwrap_or(Recorded { ops: Vec::new(), error: Some(io::Error::other("history writer panicked")) })
    }
}

/// Opens `path` and starts the writer; `start` is time zero of the history.
pub fn open(path: &Path, start: Instant) -> io::Result<(Recorder, Sink)> {
    let file = File::create(path)?;
    let (tx, rx) = mpsc::channel::<Option<Op>>();
    let close = tx.clone();
    let handle = std::thread::Builder::new().name("faultline-history".into()).spawn(move || write_all(rx, file))?;
    let (acks, _) = tokio::sync::broadcast::channel(256);
    Ok((Recorder { tx, start, counters: Arc::new(Counters::default()), acks }, Sink { handle, close }))
}

/// How long the writer waits, once the queue is empty, before it blocks for the next event: the
/// longest an event waits to reach the file when the run is busy.
const IDLE_LOOK_AGAIN: std::time::Duration = std::time::Duration::from_millis(2);

fn write_all(rx: mpsc::Receiver<Option<Op>>, file: File) -> Recorded {
    let mut w = JsonlWriter::new(BufWriter::new(file));
    let mut ops = Vec::new();
    let mut error = None;
    let mut last_time = 0u64;
    // `None` is the close sentinel sent by `Sink::finish`; events sent after it are dropped.
    // Everything already queued is written before one flush: a busy run flushes per batch, not
    // per event, and the file still never lags behind the events by more than the queue.
    let mut next = rx.recv().ok().flatten();
    while let Some(mut op) = next {
        op.index = ops.len() as u64;
        // Times are stamped by the senders just before they send; two senders may swap. Time
        // only describes, the index orders, so keeping it monotonic loses nothing.
        op.time = op.time.max(last_time);
        last_time = op.time;
        if error.is_none() {
            if let Err(e) = w.write(&op) {
                error = Some(e);
            }
        }
        ops.push(op);
        next = match rx.try_recv() {
            Ok(more) => more,
            Err(mpsc::TryRecvError::Disconnected) => None,
            Err(mpsc::TryRecvError::Empty) => {
                if error.is_none() {
                    error = w.flush().err();
                }
                // Look again a moment later before blocking: while the writer is not blocked,
                // a client's send wakes no thread, and a busy run's events come in batches.
                std::thread::sleep(IDLE_LOOK_AGAIN);
                match rx.try_recv() {
                    Ok(more) => more,
                    Err(_) => rx.recv().ok().flatten(),
                }
            }
        };
    }
    if error.is_none() {
        error = w.flush().err();
    }
    Recorded { ops, error }
}

impl Recorder {
    /// Nanoseconds since the test began.
    pub fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    /// Stamps and records an event.
    pub fn record(&self, mut op: Op) {
        op.time = self.now_ns();
        if let Process::Client(_) = op.process {
            let c = match op.op_type {
                OpType::Ok => Some(&self.counters.ok),
                OpType::Fail => Some(&self.counters.fail),
                OpType::Info => Some(&self.counters.info),
                OpType::Invoke => None,
            };
            if let Some(c) = c {
                c.fetch_add(1, Ordering::Relaxed);
            }
            if op.op_type == OpType::Ok && &*op.f != "read" && !op.final_read {
                let _ = self.acks.send(Ack { node: op.node.clone(), time_ns: op.time });
            }
        }
        let _ = self.tx.send(Some(op));
    }

    /// Records a nemesis event: `f` names what happened, `value` describes it.
    pub fn nemesis(&self, f: &str, value: Value) {
        let mut op = Op::new(0, OpType::Info, f, value);
        op.process = Process::Nemesis;
        self.record(op);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn streams_numbered_events_and_flushes_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.jsonl");
        let (rec, sink) = open(&path, Instant::now()).unwrap();
        rec.record(Op::new(0, OpType::Invoke, "read", Value::Null));
        rec.nemesis("kill", json!({"fault": "kill", "phase": "start", "nodes": ["n1"]}));
        rec.record(Op::new(0, OpType::Ok, "read", json!(3)));
        // Flushed before the writer finishes: a crash here would leave these lines on disk.
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_to_string(&path).unwrap().lines().count() < 3 && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(rec.counters.completed(), (1, 0, 0));
        drop(rec);
        let out = sink.finish();
        assert!(out.error.is_none());
        let h = faultline_checkers::history::read_jsonl(&path).unwrap();
        assert_eq!(h.ops, out.ops);
        assert_eq!(h.ops[1].process, Process::Nemesis);
        assert!(h.ops.windows(2).all(|w| w[0].time <= w[1].time));
    }
}
