//! `messages.svg`: a Lamport diagram of the first messages of a run, drawn from
//! `messages.jsonl`: one vertical line per participant (nodes, then services, then clients), time
//! flowing down, one arrow per message from its sending time on the sender's line to its
//! delivery time on the receiver's. Dropped messages are red and end in a cross half way.

use std::collections::{BTreeSet, BinaryHeap};
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::report::html::escape as esc;

/// At most this many messages are drawn.
pub const MAX_MESSAGES: usize = 200;


/// Participants in display order: nodes, services, then clients.
fn order(names: &BTreeSet<String>) -> Vec<String> {
    let rank = |n: &str| -> (u8, u64, String) {
        let num = n.trim_start_matches(|c: char| c.is_ascii_alphabetic()).parse::<u64>().unwrap_or(0);
        if n.starts_with('n') && n[1..].chars().all(|c| c.is_ascii_digit()) {
            (0, num, n.to_string())
        } else if n.starts_with('c') && n[1..].chars().all(|c| c.is_ascii_digit()) {
            (2, num, n.to_string())
        } else {
            (1, 0, n.to_string())
        }
    };
    let mut v: Vec<String> = names.iter().cloned().collect();
    v.sort_by_key(|n| rank(n));
    v
}

/// The first [`MAX_MESSAGES`] messages by `id` (send order), parsed. The file is in delivery
/// order, so the whole of it is scanned, reading only each line's `id` and keeping the lowest
/// ids seen: a run of a million messages is not parsed a million times over.
fn first_messages(jsonl: &str) -> Vec<Value> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: u64,
    }
    let mut lowest: BinaryHeap<(u64, usize)> = BinaryHeap::new();
    let lines: Vec<&str> = jsonl.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Ok(m) = serde_json::from_str::<IdOnly>(line) else { continue };
        if lowest.len() < MAX_MESSAGES {
            lowest.push((m.id, i));
        } else if lowest.peek().is_some_and(|top| (m.id, i) < *top) {
            lowest.pop();
            lowest.push((m.id, i));
        }
    }
    let mut picked = lowest.into_sorted_vec();
    picked.sort();
    picked.into_iter().filter_map(|(_, i)| serde_json::from_str(lines[i]).ok()).collect()
}

/// The SVG of the first [`MAX_MESSAGES`] messages (by send order) of a `messages.jsonl` text.
pub fn render(jsonl: &str) -> String {
    let msgs = first_messages(jsonl);
    let names: BTreeSet<String> = msgs.iter().flat_map(|m| [m["src"].as_str().unwrap_or("?").to_string(), m["dest"].as_str().unwrap_or("?").to_string()]).collect();
    let lanes = order(&names);
    let t0 = msgs.iter().filter_map(|m| m["sent_ns"].as_u64()).min().unwrap_or(0);
    let t1 = msgs.iter().filter_map(|m| m["delivered_ns"].as_u64().or(m["sent_ns"].as_u64())).max().unwrap_or(t0).max(t0 + 1);
    let (lane_w, top, height) = (90.0, 50.0, 1400.0);
    let width = 40.0 + lane_w * lanes.len().max(1) as f64;
    let x = |n: &str| 40.0 + lane_w * lanes.iter().position(|l| l == n).unwrap_or(0) as f64 + lane_w / 2.0 - 20.0;
    let y = |t: u64| top + height * (t.saturating_sub(t0)) as f64 / (t1 - t0) as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{:.0}" font-family="sans-serif" font-size="11"><defs><marker id="a" markerWidth="8" markerHeight="6" refX="8" refY="3" orient="auto"><path d="M0,0 L8,3 L0,6 z" fill="#345"/></marker></defs><rect width="100%" height="100%" fill="white"/>"##,
        top + height + 40.0
    );
    let _ = write!(svg, r#"<text x="8" y="16">first {} messages, {:.1} ms; time flows down</text>"#, msgs.len(), (t1 - t0) as f64 / 1e6);
    for l in &lanes {
        let lx = x(l);
        let _ = write!(svg, r##"<text x="{lx:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">{}</text><line x1="{lx:.1}" y1="{top:.1}" x2="{lx:.1}" y2="{:.1}" stroke="#bbb"/>"##, top - 10.0, esc(l), top + height);
    }
    for m in &msgs {
        let (src, dest) = (m["src"].as_str().unwrap_or("?"), m["dest"].as_str().unwrap_or("?"));
        let sent = m["sent_ns"].as_u64().unwrap_or(t0);
        let typ = esc(m["type"].as_str().unwrap_or("?"));
        let (x1, y1, x2) = (x(src), y(sent), x(dest));
        match m["delivered_ns"].as_u64() {
            Some(d) => {
                let y2 = y(d).max(y1 + 0.5);
                let _ = write!(svg, r##"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="#345" marker-end="url(#a)"><title>{typ} {src} → {dest}</title></line>"##);
            }
            None => {
                let (mx, my) = ((x1 + x2) / 2.0, y1 + 6.0);
                let _ = write!(
                    svg,
                    r##"<line x1="{x1:.1}" y1="{y1:.1}" x2="{mx:.1}" y2="{my:.1}" stroke="#c22"><title>{typ} {src} → {dest}: dropped</title></line><text x="{mx:.1}" y="{:.1}" fill="#c22" text-anchor="middle">×</text>"##,
                    my + 4.0
                );
            }
        }
        let _ = write!(svg, r##"<text x="{:.1}" y="{:.1}" fill="#666" font-size="9">{typ}</text>"##, x1 + 3.0, y1 - 1.0);
    }
    svg.push_str("</svg>\n");
    svg
}

/// Writes `messages.svg` next to `messages.jsonl`.
pub fn write(run_dir: &Path) -> std::io::Result<()> {
    let text = std::fs::read_to_string(run_dir.join("messages.jsonl"))?;
    std::fs::write(run_dir.join("messages.svg"), render(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_every_participant_and_every_message() {
        let log = concat!(
            r#"{"id":0,"src":"c0","dest":"n1","type":"init","sent_ns":10,"delivered_ns":20}"#, "\n",
            r#"{"id":1,"src":"n1","dest":"n2","type":"gossip","sent_ns":30,"dropped":true,"reason":"partition"}"#, "\n",
            r#"{"id":2,"src":"n1","dest":"seq-kv","type":"read","sent_ns":40,"delivered_ns":45}"#, "\n",
        );
        let svg = render(log);
        for name in ["c0", "n1", "n2", "seq-kv", "init", "gossip", "dropped"] {
            assert!(svg.contains(name), "{name} missing from {svg}");
        }
        assert_eq!(svg.matches("marker-end").count(), 2);
        // Only the first MAX_MESSAGES by id are drawn, wherever they are in the file.
        let many: String = (0..3 * MAX_MESSAGES as u64).rev().map(|i| format!(r#"{{"id":{i},"src":"n1","dest":"n2","type":"t{i}","sent_ns":{i},"delivered_ns":{}}}"#, i + 1) + "\n").collect();
        let ids: Vec<u64> = first_messages(&many).iter().map(|m| m["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, (0..MAX_MESSAGES as u64).collect::<Vec<_>>());
        let lanes = order(&["c2", "n10", "seq-kv", "n2", "c0"].iter().map(|s| s.to_string()).collect());
        assert_eq!(lanes, vec!["n2", "n10", "seq-kv", "c0", "c2"]);
    }
}
