//! Maelstrom's workloads: what the clients send, how replies become history events, which
//! checkers judge the history, and what each workload guarantees.
//!
//! History events use the history's usual operations, so the usual checkers and reports apply:
//!
//! | workload | request → reply | history | checkers |
//! | --- | --- | --- | --- |
//! | `echo` | `echo` {echo} → `echo_ok` {echo} | `echo`, value the string | `echo` |
//! | `unique-ids` | `generate` → `generate_ok` {id} | `generate`, ok value the id | `unique-ids` |
//! | `broadcast` | `broadcast` {message} → `broadcast_ok`; `read` → `read_ok` {messages} | `add` / `read` of a set | `set`, `convergence` (set) |
//! | `g-set` | `add` {element} → `add_ok`; `read` → `read_ok` {value} | `add` / `read` of a set | `set`, `convergence` (set) |
//! | `g-counter` | `add` {delta ≥ 0} → `add_ok`; `read` → `read_ok` {value} | `add` / `read` | `counter`, `convergence` (counter) |
//! | `pn-counter` | `add` {delta, may be negative} → `add_ok`; `read` | `add` / `read` | `counter`, `convergence` (counter) |
//! | `lin-kv` | `read` {key}, `write` {key, value}, `cas` {key, from, to} | the same | `linearizable` (kv) |

use faultline_checkers::registry::CheckerSpec;
use faultline_workloads::client::{completion_of, request_body};
use faultline_workloads::{Completion, OpSpec, Workload, WorkloadOptions};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand::SeedableRng;
use serde_json::{json, Value};

/// Every Maelstrom workload, by its Maelstrom name.
pub const NAMES: [&str; 7] = ["echo", "unique-ids", "broadcast", "g-set", "g-counter", "pn-counter", "lin-kv"];

/// The guarantee each workload checks, in a sentence.
pub fn guarantee(workload: &str) -> &'static str {
    match workload {
        "echo" => "every acknowledged echo returns exactly what was sent",
        "unique-ids" => "no id is handed out twice, across the whole run (restarts included)",
        "broadcast" => "every acknowledged message stays in every later read and is in every node's final read (set-full)",
        "g-set" => "every acknowledged element stays in every later read and is in every node's final read (set-full)",
        "g-counter" | "pn-counter" => "every read lies within the bounds of the concurrent adds; every node's final read is exactly the acknowledged sum (up to unknown adds)",
        "lin-kv" => "reads, writes and compare-and-sets are linearizable, each key on its own",
        _ => "",
    }
}

/// The faultline workload whose checkers `--check` resolves against (model, convergence kind).
pub fn check_alias(workload: &str) -> &str {
    match workload {
        "broadcast" | "g-set" => "set",
        "g-counter" | "pn-counter" => "counter",
        "lin-kv" => "register",
        other => other,
    }
}

/// The checkers a workload implies.
pub fn checkers(workload: &str) -> Vec<CheckerSpec> {
    match workload {
        "echo" => vec![CheckerSpec::named("echo")],
        "unique-ids" => vec![CheckerSpec::named("unique-ids")],
        "broadcast" | "g-set" => vec![CheckerSpec::named("set"), CheckerSpec::named("convergence").with_param("kind", json!("set"))],
        "g-counter" | "pn-counter" => vec![CheckerSpec::named("counter"), CheckerSpec::named("convergence").with_param("kind", json!("counter"))],
        "lin-kv" => vec![CheckerSpec::named("linearizable").with_model("kv")],
        _ => Vec::new(),
    }
}

/// Whether the workload has reads at all (`echo` and `unique-ids` do not).
pub fn has_reads(workload: &str) -> bool {
    !matches!(workload, "echo" | "unique-ids")
}

/// Whether every node is read once the run is quiet (the convergence checks need it).
pub fn has_final_reads(workload: &str) -> bool {
    matches!(workload, "broadcast" | "g-set" | "g-counter" | "pn-counter")
}

/// The generator of a workload, seeded.
pub fn generator(workload: &str, seed: u64, concurrency: usize) -> anyhow::Result<Box<dyn Workload>> {
    let opts = WorkloadOptions { concurrency, ..WorkloadOptions::default() };
    let by = |name: &str| faultline_workloads::by_name(name, seed, &opts).map_err(|e| anyhow::anyhow!("--workload: {e}"));
    Ok(match workload {
        "echo" => Box::new(Echo { rng: rng(seed, 1), n: 0 }),
        "unique-ids" => Box::new(Generate),
        "broadcast" | "g-set" => by("set")?,
        "g-counter" => by("counter")?,
        "pn-counter" => Box::new(PnCounter { rng: rng(seed, 2) }),
        "lin-kv" => by("register")?,
        other => anyhow::bail!("--workload: unknown Maelstrom workload {other:?} (known: {})", NAMES.join(", ")),
    })
}

fn rng(seed: u64, salt: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ salt.wrapping_mul(0x6d61_656c_7374_726d))
}

struct Echo {
    rng: ChaCha8Rng,
    n: u64,
}

impl Workload for Echo {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn next_op(&mut self, _process: u64) -> OpSpec {
        self.n += 1;
        let word = self.rng.gen_range(0..1_000_000u32);
        OpSpec::new("echo", None, json!(format!("Please echo {} ({word})", self.n)))
    }
    fn final_reads(&self) -> Vec<OpSpec> {
        Vec::new()
    }
}

struct Generate;

impl Workload for Generate {
    fn name(&self) -> &'static str {
        "unique-ids"
    }
    fn next_op(&mut self, _process: u64) -> OpSpec {
        OpSpec::new("generate", None, Value::Null)
    }
    fn final_reads(&self) -> Vec<OpSpec> {
        Vec::new()
    }
}

struct PnCounter {
    rng: ChaCha8Rng,
}

impl Workload for PnCounter {
    fn name(&self) -> &'static str {
        "pn-counter"
    }
    fn next_op(&mut self, _process: u64) -> OpSpec {
        if self.rng.gen_range(0..100) < 25 {
            return OpSpec::read(None);
        }
        let delta = self.rng.gen_range(-5..=5i64);
        OpSpec::new("add", None, json!(if delta == 0 { 1 } else { delta }))
    }
}

/// The Maelstrom request body of an operation (with `msg_id`).
pub fn request(workload: &str, op: &OpSpec, msg_id: u64) -> Value {
    match (workload, op.f.as_str()) {
        ("echo", _) => json!({"type": "echo", "echo": op.value, "msg_id": msg_id}),
        ("unique-ids", _) => json!({"type": "generate", "msg_id": msg_id}),
        ("broadcast", "add") => json!({"type": "broadcast", "message": op.value, "msg_id": msg_id}),
        ("broadcast", _) => json!({"type": "read", "msg_id": msg_id}),
        _ => {
            // g-set, the counters and lin-kv are faultline's own bodies already.
            let mut op = op.clone();
            op.add_element = workload == "g-set" && op.f == "add";
            request_body(&op, msg_id)
        }
    }
}

/// What a reply means for an operation. Error codes are interpreted as for TCP nodes
/// ([`completion_of`], on `faultline-wire`'s table): 0, 13 and unknown codes indefinite, the
/// others definite.
pub fn completion(workload: &str, op: &OpSpec, request: &Value, reply: &Value) -> Completion {
    let wire = OpSpec { f: request["type"].as_str().unwrap_or(&op.f).to_string(), ..op.clone() };
    let mut reply = reply.clone();
    if workload == "broadcast" && reply["type"] == "read_ok" {
        reply["value"] = reply.get("messages").cloned().unwrap_or(Value::Null);
    }
    match completion_of(&wire, &reply) {
        Completion::Ok(v) => Completion::Ok(match workload {
            "echo" => reply.get("echo").cloned().unwrap_or(Value::Null),
            "unique-ids" => reply.get("id").cloned().unwrap_or(Value::Null),
            _ => v,
        }),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_completions() {
        let add = OpSpec::new("add", None, json!(7));
        assert_eq!(request("broadcast", &add, 3), json!({"type": "broadcast", "message": 7, "msg_id": 3}));
        assert_eq!(request("g-set", &add, 3), json!({"type": "add", "msg_id": 3, "element": 7}));
        assert_eq!(request("g-counter", &add, 3), json!({"type": "add", "msg_id": 3, "delta": 7}));
        let read = OpSpec::read(None);
        let req = request("broadcast", &read, 4);
        assert_eq!(completion("broadcast", &read, &req, &json!({"type": "read_ok", "messages": [1, 2]})), Completion::Ok(json!([1, 2])));
        let gen = OpSpec::new("generate", None, Value::Null);
        let req = request("unique-ids", &gen, 5);
        assert_eq!(completion("unique-ids", &gen, &req, &json!({"type": "generate_ok", "id": "n1-4"})), Completion::Ok(json!("n1-4")));
        assert!(matches!(completion("unique-ids", &gen, &req, &json!({"type": "error", "code": 11})), Completion::Fail(_)));
        assert!(matches!(completion("unique-ids", &gen, &req, &json!({"type": "error", "code": 13})), Completion::Info(_)));
        let echo = OpSpec::new("echo", None, json!("hi"));
        let req = request("echo", &echo, 6);
        assert_eq!(completion("echo", &echo, &req, &json!({"type": "echo_ok", "echo": "hi"})), Completion::Ok(json!("hi")));
        let cas = OpSpec::new("cas", Some(faultline_workloads::Key::Int(1)), json!([1, 2]));
        let req = request("lin-kv", &cas, 7);
        assert_eq!(req, json!({"type": "cas", "msg_id": 7, "key": 1, "from": 1, "to": 2}));
        assert!(matches!(completion("lin-kv", &cas, &req, &json!({"type": "error", "code": 22})), Completion::Fail(_)));
        for w in NAMES {
            assert!(!checkers(w).is_empty() && !guarantee(w).is_empty(), "{w}");
            assert!(generator(w, 1, 4).is_ok(), "{w}");
        }
    }
}
