//! Small pieces of wording and number formatting every page shares, so that "1 run" is never
//! "1 runs", key 10 sorts after key 9, and an axis reads 0, 2, 4, 6 s rather than 0, 2.2, 4.4.
//!
//! All functions here return plain text; callers escape it like any other text.

use std::cmp::Ordering;

/// `n` and the noun, singular for exactly one: `plural(1, "run")` is "1 run",
/// `plural(2, "key")` is "2 keys". Nouns whose plural is not `+s` go through [`plural_as`].
pub fn plural(n: u64, noun: &str) -> String {
    plural_as(n, noun, &format!("{noun}s"))
}

/// `n` and the singular or the given plural form.
pub fn plural_as(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Compares two keys the way a person expects: runs of digits by their numeric value, so
/// `k2` < `k10` and `2` < `10`; other characters as text. Equal numbers with different
/// leading zeros fall back to the plain text order, so the order stays total.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let (nx, rx) = split_digits(x);
                let (ny, ry) = split_digits(y);
                match cmp_digits(nx, ny) {
                    Ordering::Equal => (x, y) = (rx, ry),
                    o => return o,
                }
            }
            (Some(c), Some(d)) => match c.cmp(d) {
                Ordering::Equal => (x, y) = (&x[1..], &y[1..]),
                o => return o,
            },
        }
    }
}

fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    s.split_at(n)
}

/// Compares digit strings by value without parsing, so 40-digit keys cannot overflow.
fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let trim = |s: &[u8]| -> usize { s.iter().take_while(|c| **c == b'0').count().min(s.len().saturating_sub(1)) };
    let (a, b) = (&a[trim(a)..], &b[trim(b)..]);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Sorts strings naturally ([`natural_cmp`]).
pub fn sort_natural<T: AsRef<str>>(v: &mut [T]) {
    v.sort_by(|a, b| natural_cmp(a.as_ref(), b.as_ref()));
}

/// A round step for an axis over `span` with at most `max_ticks` intervals: 1, 2 or 5 × 10^k.
pub fn nice_step(span: f64, max_ticks: usize) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / max_ticks.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw * (1.0 - 1e-9)).unwrap_or(10.0 * mag)
}

/// Tick values from `lo` to `hi` (both included when they fall on a step), on a round step.
pub fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<f64> {
    let step = nice_step(hi - lo, max_ticks);
    // The tolerance keeps 0.55 / 0.05 = 11.000000000000002 from skipping the tick at 0.55.
    let first = (lo / step - 1e-9).ceil();
    let mut out = Vec::new();
    let mut i = first;
    // Multiplying the index (rather than adding the step) keeps 0.1 × 3 from drifting to 0.30000000000000004 in labels.
    while i * step <= hi + step * 1e-9 && out.len() <= 1000 {
        out.push(clean(i * step));
        i += 1.0;
    }
    out
}

/// Removes binary noise from a tick value (0.30000000000000004 → 0.3).
fn clean(x: f64) -> f64 {
    let r = (x * 1e9).round() / 1e9;
    if r == 0.0 {
        0.0
    } else {
        r
    }
}

/// How many decimals a tick label needs for `step`: 0 for 1, 2, 5, 10 ...; 1 for 0.5; 2 for 0.05.
pub fn decimals_for(step: f64) -> usize {
    if step >= 1.0 || step <= 0.0 || !step.is_finite() {
        0
    } else {
        (-step.log10()).ceil().max(0.0) as usize
    }
}

/// A tick label with the decimals its step needs.
pub fn tick_label(v: f64, step: f64) -> String {
    format!("{v:.*}", decimals_for(step))
}

/// The text with its first letter upper-case, for a sentence that starts with a name.
pub fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

/// Seconds into the run for a sentence: two decimals below 100 s, none above.
pub fn secs_text(s: f64) -> String {
    if s >= 100.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.2} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plural_is_singular_for_one_only() {
        assert_eq!(plural(1, "run"), "1 run");
        assert_eq!(plural(0, "run"), "0 runs");
        assert_eq!(plural(2, "key"), "2 keys");
        assert_eq!(plural_as(1, "process", "processes"), "1 process");
        assert_eq!(plural_as(3, "process", "processes"), "3 processes");
    }

    #[test]
    fn keys_sort_naturally() {
        let mut v = vec!["10", "2", "0", "11", "1", "k10", "k9", "k1", "b", "a", "007", "7"];
        sort_natural(&mut v);
        assert_eq!(v, vec!["0", "1", "2", "007", "7", "10", "11", "a", "b", "k1", "k9", "k10"]);
        let huge = "123456789012345678901234567890";
        assert_eq!(natural_cmp(huge, "99"), Ordering::Greater);
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_ticks(0.0, 11.3, 6), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(nice_ticks(0.0, 11.3, 10), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(nice_ticks(0.55, 0.71, 5), vec![0.55, 0.6, 0.65, 0.7]);
        assert_eq!(nice_ticks(0.0, 1.0, 10), vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]);
        assert_eq!(nice_ticks(0.0, 47.0, 5), vec![0.0, 10.0, 20.0, 30.0, 40.0]);
        for (lo, hi, n) in [(0.0, 7.3, 8), (0.3, 0.34, 6), (12.0, 1500.0, 7), (0.0, 0.002, 4)] {
            let t = nice_ticks(lo, hi, n);
            let step = t[1] - t[0];
            let mantissa = step / 10f64.powf(step.log10().floor());
            assert!([1.0, 2.0, 5.0].iter().any(|m| (m - mantissa).abs() < 1e-6), "step {step} of {t:?}");
            assert!(t.len() <= n + 1 && t.len() >= 2, "{t:?}");
        }
        assert_eq!(tick_label(0.6, 0.05), "0.60");
        assert_eq!(tick_label(4.0, 2.0), "4");
        assert_eq!(tick_label(0.5, 0.5), "0.5");
    }
}
