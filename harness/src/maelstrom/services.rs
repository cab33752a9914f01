//! The key-value services the harness serves to Maelstrom nodes, as the nodes `lin-kv`, `seq-kv`
//! and `lww-kv`. Messages to and from them pass the router's link rules like any other.
//!
//! Every service speaks the same bodies: `read` {key} → `read_ok` {value}; `write` {key, value} →
//! `write_ok`; `cas` {key, from, to, create_if_not_exists?} → `cas_ok`. Errors: 20
//! key-does-not-exist (read or cas of a missing key), 22 precondition-failed (cas whose `from`
//! is not the current value), 10 not-supported (any other type), 12 malformed-request (a missing
//! key or field). Requests are decoded and replies encoded by the wire protocol's own types
//! (`faultline-wire`), the ones the reference nodes and the TCP client use.
//!
//! - `lin-kv` is linearizable: one map behind a mutex, every operation on the latest state.
//! - `seq-kv` is sequentially consistent, and deliberately shows it: every update creates a new
//!   version of the store; a client (the `src` of the request: a node) reads a version no older
//!   than the newest one it has seen, and one time in two an older one than the latest (at most
//!   [`SEQ_MAX_LAG`] versions back). Writes and cas always act on the latest version and move the
//!   client up to it, so a client never goes backwards and always sees its own writes. A cas
//!   that fails also moves the client up (it looked at the latest value).
//! - `lww-kv` is last-write-wins over [`LWW_REPLICAS`] replicas whose clocks are skewed: each
//!   request goes to one replica at random, a write is stamped with that replica's clock, and
//!   replicas merge (the highest stamp wins per key) now and then, and always at
//!   [`Services::settle`]. A write can lose to an earlier one from a replica whose clock runs
//!   ahead, and a read can miss a recent write: what LWW stores do.
//!
//! Random choices come from a generator seeded with the run's seed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use faultline_wire::{ClientMsg, ErrorCode, Reply, Request};
use serde_json::Value;

/// The service names, as node ids.
pub const NAMES: [&str; 3] = ["lin-kv", "seq-kv", "lww-kv"];
/// How many versions behind the latest a `seq-kv` read may be.
pub const SEQ_MAX_LAG: usize = 8;
/// Replicas of `lww-kv`.
pub const LWW_REPLICAS: usize = 3;

/// A request to a service, decoded by the wire protocol's own decoder ([`ClientMsg`]).
enum Op {
    Read,
    Write(Value),
    Cas { from: Value, to: Value, create_if_not_exists: bool },
}

/// The key (as a map key) and the operation of a request body, or the error to answer with.
fn decode(body: &Value) -> Result<(String, Op), Reply> {
    let Some(fields) = body.as_object() else {
        return Err(Reply::error(ErrorCode::MalformedRequest, "expected a JSON object"));
    };
    let msg = ClientMsg::from_body(fields).map_err(|r| Reply::error(r.code, r.text))?;
    match msg {
        ClientMsg::Request(Request::Read { key: Some(key) }) => Ok((key.to_string(), Op::Read)),
        ClientMsg::Request(Request::Write { key, value }) => Ok((key.to_string(), Op::Write(value))),
        ClientMsg::Request(Request::Cas { key, from, to }) => {
            let create_if_not_exists = body["create_if_not_exists"] == true;
            Ok((key.to_string(), Op::Cas { from, to, create_if_not_exists }))
        }
        ClientMsg::Request(Request::Read { key: None }) => Err(Reply::error(ErrorCode::MalformedRequest, "read: missing \"key\"")),
        other => Err(Reply::error(ErrorCode::NotSupported, format!("unsupported request type {:?}", other.type_name()))),
    }
}

fn missing() -> Reply {
    Reply::error(ErrorCode::KeyDoesNotExist, "key does not exist")
}

/// A linearizable map.
#[derive(Default)]
struct Lin {
    map: HashMap<String, Value>,
}

fn apply(map: &mut HashMap<String, Value>, key: String, op: &Op) -> Reply {
    match op {
        Op::Read => map.get(&key).map_or_else(missing, |v| Reply::ReadOk(v.clone())),
        Op::Write(value) => {
            map.insert(key, value.clone());
            Reply::WriteOk
        }
        Op::Cas { from, to, create_if_not_exists } => match map.get(&key) {
            None if *create_if_not_exists => {
                map.insert(key, to.clone());
                Reply::CasOk
            }
            None => missing(),
            Some(cur) if cur == from => {
                map.insert(key, to.clone());
                Reply::CasOk
            }
            Some(cur) => Reply::error(ErrorCode::PreconditionFailed, format!("expected {from}, but had {cur}")),
        },
    }
}

/// The sequentially consistent store: versions, and each client's floor.
#[derive(Default)]
struct Seq {
    /// key → (version, value) in version order.
    versions: HashMap<String, Vec<(usize, Value)>>,
    /// The latest version (0: the empty store).
    latest: usize,
    floor: HashMap<String, usize>,
}

impl Seq {
    fn at(&self, key: &str, version: usize) -> Option<&Value> {
        self.versions.get(key)?.iter().rev().find(|(v, _)| *v <= version).map(|(_, val)| val)
    }

    fn handle(&mut self, client: &str, key: String, op: &Op, rng: &mut ChaCha8Rng) -> Reply {
        let floor = self.floor.get(client).copied().unwrap_or(0).min(self.latest);
        match op {
            Op::Read => {
                let oldest = floor.max(self.latest.saturating_sub(SEQ_MAX_LAG));
                let version = if rng.gen_bool(0.5) { self.latest } else { rng.gen_range(oldest..=self.latest) };
                self.floor.insert(client.to_string(), version);
                self.at(&key, version).map_or_else(missing, |v| Reply::ReadOk(v.clone()))
            }
            Op::Write(_) | Op::Cas { .. } => {
                let mut current: HashMap<String, Value> = HashMap::new();
                if let Some(v) = self.at(&key, self.latest) {
                    current.insert(key.clone(), v.clone());
                }
                let reply = apply(&mut current, key.clone(), op);
                if !matches!(reply, Reply::Error { .. }) {
                    self.latest += 1;
                    let v = current.remove(&key).unwrap_or(Value::Null);
                    self.versions.entry(key).or_default().push((self.latest, v));
                }
                self.floor.insert(client.to_string(), self.latest);
                reply
            }
        }
    }
}

/// One `lww-kv` replica: key → (stamp, value).
type Replica = BTreeMap<String, (u64, Value)>;

struct Lww {
    replicas: Vec<Replica>,
    /// Each replica's clock offset, in ticks.
    skew: Vec<u64>,
    tick: u64,
}

impl Lww {
    fn new(rng: &mut ChaCha8Rng) -> Lww {
        Lww { replicas: vec![Replica::new(); LWW_REPLICAS], skew: (0..LWW_REPLICAS).map(|_| rng.gen_range(0..20)).collect(), tick: 0 }
    }

    fn merge(&mut self) {
        let mut best = Replica::new();
        for r in &self.replicas {
            for (k, (stamp, v)) in r {
                if best.get(k).map_or(true, |(s, _)| stamp > s) {
                    best.insert(k.clone(), (*stamp, v.clone()));
                }
            }
        }
        for r in &mut self.replicas {
            *r = best.clone();
        }
    }

    fn handle(&mut self, key: String, op: &Op, rng: &mut ChaCha8Rng) -> Reply {
        self.tick += 1;
        if rng.gen_bool(0.3) {
            self.merge();
        }
        let i = rng.gen_range(0..LWW_REPLICAS);
        // Stamps are unique: the tick, skewed, times the replica count plus the replica.
        let stamp = (self.tick + self.skew[i]) * LWW_REPLICAS as u64 + i as u64;
        let replica = &mut self.replicas[i];
        let mut map: HashMap<String, Value> = replica.get(&key).map(|(_, v)| (key.clone(), v.clone())).into_iter().collect();
        let reply = apply(&mut map, key.clone(), op);
        if !matches!(reply, Reply::Error { .. }) && !matches!(op, Op::Read) {
            let v = map.remove(&key).unwrap_or(Value::Null);
            let newer = replica.get(&key).map_or(true, |(s, _)| stamp > *s);
            if newer {
                replica.insert(key, (stamp, v));
            }
        }
        reply
    }
}

/// The three services.
pub struct Services {
    lin: Mutex<Lin>,
    seq: Mutex<Seq>,
    lww: Mutex<Lww>,
    rng: Mutex<ChaCha8Rng>,
}

impl Services {
    pub fn new(seed: u64) -> Services {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5345_5256);
        let lww = Lww::new(&mut rng);
        Services { lin: Mutex::default(), seq: Mutex::default(), lww: Mutex::new(lww), rng: Mutex::new(rng) }
    }

    pub fn is_service(name: &str) -> bool {
        NAMES.contains(&name)
    }

    /// Serves one request of `client` to `service`; the reply body, with `in_reply_to` set.
    /// `None` when `service` is not a service.
    pub fn handle(&self, service: &str, client: &str, body: &Value) -> Option<Value> {
        if !Services::is_service(service) {
            return None;
        }
        let reply = match decode(body) {
            Err(error) => error,
            Ok((key, op)) => {
                let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
                match service {
                    "lin-kv" => apply(&mut self.lin.lock().unwrap_or_else(|e| e.into_inner()).map, key, &op),
                    "seq-kv" => self.seq.lock().unwrap_or_else(|e| e.into_inner()).handle(client, key, &op, &mut rng),
                    _ => self.lww.lock().unwrap_or_else(|e| e.into_inner()).handle(key, &op, &mut rng),
                }
            }
        };
        let in_reply_to = body.get("msg_id").cloned().unwrap_or(Value::Null);
        let mut out = reply.to_body(&in_reply_to);
        if in_reply_to.is_null() {
            // A request without a msg_id gets a reply without in_reply_to.
            out.as_object_mut().map(|o| o.remove("in_reply_to"));
        }
        Some(out)
    }

    /// Brings the `lww-kv` replicas together (the run is quiet).
    pub fn settle(&self) {
        self.lww.lock().unwrap_or_else(|e| e.into_inner()).merge();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn req(t: &str, key: i64, extra: Value) -> Value {
        let mut b = json!({"type": t, "key": key, "msg_id": 1});
        if let Value::Object(m) = extra {
            for (k, v) in m {
                b[k] = v;
            }
        }
        b
    }

    /// Concurrent cas increments: with a linearizable store every acknowledged cas counts once.
    fn cas_increments(service: &'static str) -> (Arc<Services>, u64) {
        let s = Arc::new(Services::new(7));
        s.handle(service, "n0", &req("write", 1, json!({"value": 0})));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let client = format!("n{t}");
                    let mut acked = 0u64;
                    for _ in 0..200 {
                        let r = s.handle(service, &client, &req("read", 1, json!({}))).unwrap();
                        let Some(v) = r["value"].as_i64() else { continue };
                        let c = s.handle(service, &client, &req("cas", 1, json!({"from": v, "to": v + 1}))).unwrap();
                        if c["type"] == "cas_ok" {
                            acked += 1;
                        } else {
                            assert_eq!(c["code"], 22, "{c}");
                        }
                    }
                    acked
                })
            })
            .collect();
        let acked = threads.into_iter().map(|t| t.join().unwrap()).sum();
        (s, acked)
    }

    #[test]
    fn lin_kv_is_linearizable_under_concurrent_cas() {
        let (s, acked) = cas_increments("lin-kv");
        let r = s.handle("lin-kv", "x", &req("read", 1, json!({}))).unwrap();
        assert_eq!(r["value"].as_u64(), Some(acked));
        assert!(acked > 0);
        assert_eq!(s.handle("lin-kv", "x", &req("read", 9, json!({}))).unwrap()["code"], 20);
        assert_eq!(s.handle("lin-kv", "x", &req("cas", 9, json!({"from": 1, "to": 2}))).unwrap()["code"], 20);
        assert_eq!(s.handle("lin-kv", "x", &req("cas", 9, json!({"from": 1, "to": 2, "create_if_not_exists": true}))).unwrap()["type"], "cas_ok");
        assert_eq!(s.handle("lin-kv", "x", &req("frob", 9, json!({}))).unwrap()["code"], 10);
    }

    #[test]
    fn seq_kv_never_goes_backwards_for_a_client_and_cas_stays_exact() {
        // cas always acts on the latest version: the counter is exact.
        let (s, acked) = cas_increments("seq-kv");
        let fresh = s.handle("seq-kv", "n0", &req("write", 2, json!({"value": 0}))).unwrap();
        assert_eq!(fresh["type"], "write_ok");
        let r = s.handle("seq-kv", "n0", &req("read", 1, json!({}))).unwrap();
        assert_eq!(r["value"].as_u64(), Some(acked), "a client's read after its own write sees the latest");
        // One writer, concurrent readers: each reader's values never decrease, some are stale.
        let s = Arc::new(Services::new(3));
        let writer = {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..2000 {
                    s.handle("seq-kv", "w", &req("write", 1, json!({"value": i})));
                }
            })
        };
        let readers: Vec<_> = (0..3)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut last = -1i64;
                    for _ in 0..2000 {
                        let r = s.handle("seq-kv", &format!("r{t}"), &req("read", 1, json!({}))).unwrap();
                        if let Some(v) = r["value"].as_i64() {
                            assert!(v >= last, "client r{t} went back from {last} to {v}");
                            last = v;
                        }
                    }
                })
            })
            .collect();
        writer.join().unwrap();
        for r in readers {
            r.join().unwrap();
        }
        // A reader that has not looked for a while may be served a stale version.
        let mut stale = 0;
        for i in 0..50 {
            s.handle("seq-kv", "w", &req("write", 1, json!({"value": 10_000 + i})));
            let r = s.handle("seq-kv", "late", &req("read", 1, json!({}))).unwrap();
            stale += (r["value"] != json!(10_000 + i)) as u32;
        }
        assert!(stale > 0, "seq-kv never served a stale read");
    }

    #[test]
    fn lww_kv_converges_to_the_highest_stamp() {
        let s = Arc::new(Services::new(11));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..300 {
                        let r = s.handle("lww-kv", &format!("n{t}"), &req("write", 1, json!({"value": t * 1000 + i}))).unwrap();
                        assert_eq!(r["type"], "write_ok");
                        assert_eq!(r["in_reply_to"], 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        s.settle();
        let reads: Vec<Value> = (0..20).map(|_| s.handle("lww-kv", "x", &req("read", 1, json!({}))).unwrap()["value"].clone()).collect();
        assert!(reads.windows(2).all(|w| w[0] == w[1]), "replicas disagree after settling: {reads:?}");
        let v = reads[0].as_i64().unwrap();
        assert!((0..4).any(|t| (t * 1000..t * 1000 + 300).contains(&v)), "{v} was never written");
        // Every settled replica holds the value with the highest stamp.
        let lww = s.lww.lock().unwrap();
        let best = lww.replicas.iter().map(|r| r["1"].0).max().unwrap();
        assert!(lww.replicas.iter().all(|r| r["1"].0 == best));
    }
}
