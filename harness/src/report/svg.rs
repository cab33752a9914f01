//! Hand-written inline SVG pieces for the HTML pages: a time scale with round ticks, shaded
//! fault bands, and a legend that sits beside the data rather than on it.
//!
//! The report draws its anomaly views here rather than with plotters because every mark must
//! be a DOM element a person can hover (a `<title>`) and a test can find (a class and a
//! `data-index`); plotters' SVG is anonymous paths. All text goes through [`escape`].

use super::data::FaultPeriod;
use super::html::escape;
use super::plots::fault_css;
use super::text::{nice_step, nice_ticks, tick_label};
use std::fmt::Write as _;

/// Maps seconds into the run onto pixels.
#[derive(Clone, Copy, Debug)]
pub struct TimeScale {
    pub lo: f64,
    pub hi: f64,
    /// Left edge of the data, pixels.
    pub x0: f64,
    /// Width of the data, pixels.
    pub width: f64,
}

impl TimeScale {
    pub fn new(lo: f64, hi: f64, x0: f64, width: f64) -> TimeScale {
        let hi = if hi > lo { hi } else { lo + 1e-3 };
        TimeScale { lo, hi, x0, width }
    }

    /// The x of a time, clamped to the data area.
    pub fn x(&self, t: f64) -> f64 {
        self.x0 + self.width * ((t - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
    }

    /// Round ticks (1, 2, 5 × 10^k s) with labels carrying the decimals the step needs.
    pub fn ticks(&self, max_ticks: usize) -> Vec<(f64, String)> {
        let step = nice_step(self.hi - self.lo, max_ticks);
        nice_ticks(self.lo, self.hi, max_ticks).into_iter().map(|t| (self.x(t), format!("{} s", tick_label(t, step)))).collect()
    }

    /// A time axis: tick labels at `label_y` and light grid lines from `y0` to `y1`.
    pub fn axis(&self, label_y: f64, y0: f64, y1: f64, max_ticks: usize) -> String {
        let mut s = String::new();
        for (x, label) in self.ticks(max_ticks) {
            let _ = write!(
                s,
                "<line class=\"tick\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y0:.1}\" y2=\"{y1:.1}\" stroke=\"#e4e4e4\"/>\
                 <text x=\"{x:.1}\" y=\"{label_y:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>",
                escape(&label)
            );
        }
        s
    }
}

/// The fault periods that overlap the scale, shaded from `y0` to `y1`, each labelled at its top
/// (staggered so overlapping faults stay readable).
pub fn fault_bands(scale: &TimeScale, faults: &[FaultPeriod], y0: f64, y1: f64) -> String {
    let mut s = String::new();
    let visible = faults.iter().filter(|p| p.stop_s.max(p.start_s + 1e-3) > scale.lo && p.start_s < scale.hi);
    for (i, p) in visible.enumerate() {
        let (a, b) = (scale.x(p.start_s), scale.x(p.stop_s.max(p.start_s + 1e-3)));
        let color = fault_css(&p.fault);
        let tip = format!("{} {:.3} s – {:.3} s{}", p.fault, p.start_s, p.stop_s, if p.closed { "" } else { " (not stopped before the end)" });
        let _ = write!(
            s,
            "<g class=\"fault\" data-fault=\"{}\"><title>{}</title><rect x=\"{a:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\" opacity=\"0.13\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"{color}\" font-weight=\"bold\">{}</text></g>",
            escape(&p.fault),
            escape(&tip),
            (b - a).max(1.5),
            y1 - y0,
            a + 3.0,
            y0 + 12.0 + 12.0 * (i % 3) as f64,
            escape(&p.fault)
        );
    }
    s
}

/// One legend entry: a swatch (fill and stroke, dashed or not) and its text.
pub struct Swatch<'a> {
    pub fill: &'a str,
    pub stroke: &'a str,
    pub dashed: bool,
    pub text: &'a str,
}

/// A legend as HTML below or beside a drawing, never over its data.
pub fn legend(items: &[Swatch<'_>]) -> String {
    let mut s = String::from("<p class=\"legend small\">");
    for it in items {
        let style = if it.dashed { "border-style:dashed" } else { "border-style:solid" };
        let _ = write!(
            s,
            "<span><span class=\"sw\" style=\"background:{};border-color:{};{style}\"></span>{}</span>",
            it.fill,
            it.stroke,
            escape(it.text)
        );
    }
    s + "</p>"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        let sc = TimeScale::new(0.0, 11.3, 100.0, 500.0);
        let t: Vec<String> = sc.ticks(6).into_iter().map(|t| t.1).collect();
        assert_eq!(t, vec!["0 s", "2 s", "4 s", "6 s", "8 s", "10 s"]);
        let sc = TimeScale::new(0.28, 0.35, 0.0, 100.0);
        let t: Vec<String> = sc.ticks(8).into_iter().map(|t| t.1).collect();
        assert_eq!(t, vec!["0.28 s", "0.29 s", "0.30 s", "0.31 s", "0.32 s", "0.33 s", "0.34 s", "0.35 s"]);
        assert_eq!(sc.x(-1.0), 0.0);
        assert_eq!(sc.x(9.0), 100.0);
    }
}
