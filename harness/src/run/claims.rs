//! Which checkers judge a run: the table of docs/design.md from a protocol's claims, or the
//! names given with `--check`. Pure functions; the workload later adds its parameters (the
//! bank's total, for instance) with [`with_params`].

use faultline_checkers::registry::{self, CheckerSpec};
use serde_json::{Map, Value};

fn spec(name: &str, model: Option<&str>) -> CheckerSpec {
    CheckerSpec { name: name.to_string(), model: model.map(str::to_string), params: Map::new() }
}

/// The linearizability model that fits a workload.
fn model_of(workload: &str) -> Option<&'static str> {
    match workload {
        "register" | "append" => Some("kv"),
        "counter" => Some("counter"),
        "set" => Some("set"),
        _ => None,
    }
}

/// Tells the convergence checker what the nodes hold, rather than leaving it to guess.
fn kinded(mut s: CheckerSpec, workload: &str) -> CheckerSpec {
    let kind = match workload {
        "counter" | "set" | "register" => workload,
        "set-remove" => "set",
        _ => return s,
    };
    if s.name == "convergence" {
        s.params.insert("kind".into(), Value::from(kind));
    }
    s
}

/// The checkers a protocol's claims imply for a workload (docs/design.md, "Which checkers a
/// claim implies"). Claims that say nothing about the workload imply nothing.
pub fn from_claims(claims: &[String], workload: &str) -> Vec<CheckerSpec> {
    let mut out: Vec<CheckerSpec> = Vec::new();
    let mut add = |s: CheckerSpec| {
        if !out.iter().any(|o| o.name == s.name) {
            out.push(s);
        }
    };
    for claim in claims {
        match (claim.as_str(), workload) {
            ("linearizable", "register") => add(spec("linearizable", Some("kv"))),
            ("linearizable", "counter") => {
                add(spec("linearizable", Some("counter")));
                add(spec("counter", None));
            }
            ("linearizable", "set") => add(spec("set", None)),
            // Lists name every append they reflect: the replicas' own lists can be compared too.
            ("linearizable", "append") => {
                add(spec("linearizable", Some("kv")));
                add(spec("agreement", None));
            }
            ("atomic-commitment" | "bank-invariant", "bank") => add(spec("bank", None)),
            // Stamps from one clock: an acknowledged write followed by another cannot win.
            ("last-writer-wins", "register") => add(spec("lww", None)),
            // Whatever the workload: the nodes' own reports of their durable state.
            ("durable-state", _) => add(spec("durable-state", None)),
            ("strong-eventual-consistency", "counter" | "set" | "register") => add(kinded(spec("convergence", None), workload)),
            // Removes: convergence (agreement, nothing invented) and the observed-remove rules.
            ("strong-eventual-consistency", "set-remove") => {
                add(kinded(spec("convergence", None), workload));
                add(spec("orset", None));
            }
            _ => {}
        }
    }
    out
}

/// Checkers named by `--check`, validated against the registry; `linearizable` gets the model
/// that fits the workload.
pub fn from_names(names: &[String], workload: &str) -> Result<Vec<CheckerSpec>, String> {
    let names: Vec<String> = names.iter().map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return Err("--check: name at least one checker".into());
    }
    let mut out: Vec<CheckerSpec> = Vec::new();
    for n in &names {
        if out.iter().any(|o| &o.name == n) {
            continue;
        }
        let model = if n == "linearizable" { model_of(workload) } else { None };
        let s = kinded(spec(n, model), workload);
        registry::validate(&s).map_err(|e| format!("--check: {e}"))?;
        out.push(s);
    }
    Ok(out)
}

/// Adds the workload's checker parameters (e.g. `total`, `accounts` for the bank) to every
/// checker, without overriding what a spec already sets.
pub fn with_params(mut specs: Vec<CheckerSpec>, params: &Map<String, Value>) -> Vec<CheckerSpec> {
    for s in &mut specs {
        for (k, v) in params {
            s.params.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    specs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(specs: &[CheckerSpec]) -> Vec<(String, Option<String>)> {
        specs.iter().map(|s| (s.name.clone(), s.model.clone())).collect()
    }

    #[test]
    fn claims_map_to_the_design_table() {
        let lin = vec!["linearizable".to_string()];
        assert_eq!(names(&from_claims(&lin, "register")), vec![("linearizable".into(), Some("kv".into()))]);
        assert_eq!(
            names(&from_claims(&lin, "counter")),
            vec![("linearizable".into(), Some("counter".into())), ("counter".into(), None)]
        );
        assert_eq!(names(&from_claims(&lin, "set")), vec![("set".into(), None)]);
        let bank = vec!["atomic-commitment".to_string(), "bank-invariant".to_string()];
        assert_eq!(names(&from_claims(&bank, "bank")), vec![("bank".into(), None)]);
        let sec = vec!["strong-eventual-consistency".to_string()];
        assert_eq!(names(&from_claims(&sec, "set")), vec![("convergence".into(), None)]);
        assert!(from_claims(&sec, "bank").is_empty());
        assert_eq!(from_claims(&sec, "counter")[0].params["kind"], "counter");
        assert_eq!(
            names(&from_claims(&lin, "append")),
            vec![("linearizable".into(), Some("kv".into())), ("agreement".into(), None)]
        );
        let orset = from_claims(&sec, "set-remove");
        assert_eq!(names(&orset), vec![("convergence".into(), None), ("orset".into(), None)]);
        assert_eq!(orset[0].params["kind"], "set");
        let crdt_state = vec!["strong-eventual-consistency".to_string(), "last-writer-wins".to_string()];
        assert_eq!(names(&from_claims(&crdt_state, "register")), vec![("convergence".into(), None), ("lww".into(), None)]);
        assert_eq!(names(&from_claims(&crdt_state, "counter")), vec![("convergence".into(), None)]);
    }

    #[test]
    fn names_are_validated() {
        let n = |s: &[&str]| from_names(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "register");
        assert_eq!(names(&n(&["linearizable"]).unwrap()), vec![("linearizable".into(), Some("kv".into()))]);
        assert!(n(&["linearizable", "bogus"]).unwrap_err().contains("bogus"));
        assert!(n(&[]).is_err());
        let a = from_names(&["linearizable".to_string(), "agreement".to_string()], "append").unwrap();
        assert_eq!(names(&a), vec![("linearizable".into(), Some("kv".into())), ("agreement".into(), None)]);
    }

    #[test]
    fn params_do_not_override() {
        let mut s = spec("bank", None);
        s.params.insert("total".into(), Value::from(5));
        let mut p = Map::new();
        p.insert("total".into(), Value::from(9));
        p.insert("accounts".into(), Value::from(8));
        let out = with_params(vec![s], &p);
        assert_eq!(out[0].params["total"], 5);
        assert_eq!(out[0].params["accounts"], 8);
    }
}
