//! Registers with unique values (read, write, cas; unknown outcomes): Gibbons and Korach's
//! write clusters, extended to cas chains.
//!
//! Every value is set by one operation, so in any linearization each value holds over one
//! contiguous run: its write, its reads, and at most one cas that replaces it (after which the
//! value can never return). A cas that took effect therefore glues its value's run to the run
//! of the value it sets: the key's operations fall into *chains*, each a write (or the initial
//! `null`) followed by stages: the reads of the value, the cas replacing it, the reads of the
//! next value, and so on. An unknown-outcome write or cas takes effect exactly when something
//! that took effect needs its value (dropping the others keeps any linearization valid: their
//! runs contain no read and no needed cas). A linearization is then a sequence of whole chains,
//! the `null` chain first.
//!
//! Within a chain the stages must fit their intervals ([`super::check_stages`]). Between
//! chains, a chain whose earliest completion `f` precedes its latest invocation `s` must hold
//! over all of `[f, s]` (a *forward* span): two forward spans must not overlap, and a chain
//! with `s < f` (*backward*: all of it fits at any point of `(s, f)`) must not lie inside a
//! forward span. These conditions are also sufficient: forward chains go at their spans, each
//! backward chain at a point of its window outside every forward span. Sorting the forward spans
//! and one binary search per backward chain decide it in O(n log n). The initial `null` chain is
//! a forward span from before the first event to its last read's invocation.

use super::{check_stages, order_stages, order_violation, FOp, Map, Span, What, Why, NEVER};

/// One chain: its root write (`None`: the initial `null`) and its stages (op indices).
struct Chain {
    root: Option<usize>,
    stages: Vec<Vec<usize>>,
}

/// The span of a chain: earliest completion `f` and latest invocation `s`, with their ops.
#[derive(Clone, Copy)]
struct Zone {
    chain: usize,
    f: (i64, Option<usize>),
    s: (i64, Option<usize>),
}

impl Zone {
    fn forward(&self) -> bool {
        self.f.0 < self.s.0
    }
}

/// A linearization ([`super::Partition`] indices) of a unique-value register key, or the
/// contradiction.
pub(super) fn linearize(ops: &[FOp]) -> Result<Vec<usize>, Why> {
    let mut producer: Map<u64, usize> = Map::default();
    for (i, o) in ops.iter().enumerate() {
        if let What::Write(v) | What::Cas(_, v) = o.what {
            producer.insert(v, i);
        }
    }
    let required = required(ops, &producer)?;
    let chains = chains(ops, &required)?;
    for chain in &chains {
        check_stages(ops, &chain.stages, None).map_err(|pair| order_violation(ops, pair))?;
    }
    let zones: Vec<Zone> = chains.iter().enumerate().map(|(c, ch)| zone(ops, c, ch)).collect();
    let reps = place(ops, &chains, &zones)?;
    let mut by_rep: Vec<usize> = (0..chains.len()).collect();
    by_rep.sort_by_key(|&c| (reps[c], c));
    Ok(by_rep.into_iter().flat_map(|c| order_stages(ops, &chains[c].stages, -2)).collect())
}

/// The value an operation needs the state to hold (`0`: `null`), if any.
fn needs(what: What) -> Option<u64> {
    match what {
        What::Read(v) => Some(v),
        What::Cas(a, _) => Some(a),
        _ => None,
    }
}

/// Which operations take effect: every `ok` one, and, transitively, the setter of every value
/// one of them needs. Fails when a needed value has no setter, or a cas needs `null`.
fn required(ops: &[FOp], producer: &Map<u64, usize>) -> Result<Vec<bool>, Why> {
    let mut req: Vec<bool> = ops.iter().map(|o| o.cmp != NEVER).collect();
    let mut work: Vec<usize> = (0..ops.len()).filter(|&i| req[i]).collect();
    while let Some(i) = work.pop() {
        let Some(v) = needs(ops[i].what) else { continue };
        if v == 0 {
            if matches!(ops[i].what, What::Cas(..)) {
                return Err(Why::CasOnMissing { op: ops[i].src });
            }
            continue;
        }
        let Some(&p) = producer.get(&v) else { return Err(Why::NoProducer { op: ops[i].src }) };
        if !req[p] {
            req[p] = true;
            work.push(p);
        }
    }
    Ok(req)
}

/// Groups the operations that take effect into chains (the `null` chain first, then one per
/// write in op order). Fails when two cas replace one value, or a cas is reachable from no write.
fn chains(ops: &[FOp], required: &[bool]) -> Result<Vec<Chain>, Why> {
    let mut readers: Map<u64, Vec<usize>> = Map::default();
    let mut replacer: Map<u64, usize> = Map::default();
    for (i, o) in ops.iter().enumerate().filter(|(i, _)| required[*i]) {
        match o.what {
            What::Read(v) => readers.entry(v).or_default().push(i),
            What::Cas(a, _) => {
                if let Some(&j) = replacer.get(&a) {
                    return Err(Why::TwoReplace { a: ops[j].src, b: o.src });
                }
                replacer.insert(a, i);
            }
            _ => {}
        }
    }
    let mut visited = vec![false; ops.len()];
    let roots = std::iter::once(None).chain((0..ops.len()).filter(|&i| required[i] && matches!(ops[i].what, What::Write(_))).map(Some));
    let mut chains = Vec::new();
    for root in roots {
        let chain = follow(ops, root, &readers, &replacer, &mut visited);
        if root.is_some() || !chain.stages.is_empty() {
            chains.push(chain);
        }
    }
    if let Some(i) = (0..ops.len()).find(|&i| required[i] && !visited[i]) {
        return Err(Why::Unreachable { op: ops[i].src });
    }
    Ok(chains)
}

/// The chain from `root`: its value's reads, the cas replacing it, that cas's value's reads...
/// It cannot loop: every value has one setter, and the root's is a write.
fn follow(ops: &[FOp], root: Option<usize>, readers: &Map<u64, Vec<usize>>, replacer: &Map<u64, usize>, visited: &mut [bool]) -> Chain {
    let mut stages = Vec::new();
    let mut value = 0;
    if let Some(r) = root {
        stages.push(vec![r]);
        value = match ops[r].what {
            What::Write(v) => v,
            _ => unreachable!("roots are writes"),
        };
    }
    loop {
        if let Some(rs) = readers.get(&value) {
            stages.push(rs.clone());
        }
        let Some(&c) = replacer.get(&value) else { break };
        stages.push(vec![c]);
        value = match ops[c].what {
            What::Cas(_, to) => to,
            _ => unreachable!("replacers are cas"),
        };
    }
    for &i in stages.iter().flatten() {
        visited[i] = true;
    }
    Chain { root, stages }
}

/// A chain's span. The `null` chain starts at a virtual write completed at -1.
fn zone(ops: &[FOp], chain: usize, ch: &Chain) -> Zone {
    let mut f: (i64, Option<usize>) = if ch.root.is_none() { (-1, None) } else { (NEVER, None) };
    let mut s: (i64, Option<usize>) = (-2, None);
    for &i in ch.stages.iter().flatten() {
        if ops[i].cmp < f.0 {
            f = (ops[i].cmp, Some(i));
        }
        if ops[i].inv > s.0 {
            s = (ops[i].inv, Some(i));
        }
    }
    Zone { chain, f, s }
}

/// Checks the chains' spans against each other and gives each chain a position (twice a time,
/// so that a backward chain can sit half-way between two events): forward spans at `2f`,
/// backward chains just after their window opens, or just after the forward span covering that.
fn place(ops: &[FOp], chains: &[Chain], zones: &[Zone]) -> Result<Vec<i128>, Why> {
    let span = |z: &Zone| Span {
        root: chains[z.chain].root.map(|r| ops[r].src),
        done: z.f.1.map(|i| ops[i].src),
        begun: z.s.1.map(|i| ops[i].src),
        f: z.f.0,
        s: z.s.0,
        derived: chains[z.chain].stages.iter().flatten().any(|&i| matches!(ops[i].what, What::Cas(..))),
    };
    let mut fwd: Vec<Zone> = zones.iter().filter(|z| z.forward()).copied().collect();
    fwd.sort_by_key(|z| (z.f.0, z.chain));
    if let Some(w) = fwd.windows(2).find(|w| w[0].s.0 > w[1].f.0) {
        return Err(Why::Overlap { a: Box::new(span(&w[0])), b: Box::new(span(&w[1])) });
    }
    let mut reps = vec![0i128; chains.len()];
    for z in zones {
        if z.forward() {
            reps[z.chain] = 2 * z.f.0 as i128;
            continue;
        }
        let k = fwd.partition_point(|q| q.f.0 < z.s.0);
        let covering = (k > 0 && fwd[k - 1].s.0 > z.s.0).then(|| fwd[k - 1]);
        match covering {
            Some(c) if c.s.0 > z.f.0 => return Err(Why::Inside { outer: Box::new(span(&c)), inner: Box::new(span(z)) }),
            Some(c) => reps[z.chain] = 2 * c.s.0 as i128 + 1,
            None => reps[z.chain] = 2 * z.s.0 as i128 + 1,
        }
    }
    Ok(reps)
}
