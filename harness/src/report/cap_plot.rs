//! The CAP plot of a comparison: every protocol at its availability on the side of partitions
//! cut off from a majority (x) against the share of its reads that missed no acknowledged
//! update (y). A CP protocol lands top left (consistent, refuses when cut off), an AP protocol
//! bottom right or right (serves everywhere, reads stale), and a blocking protocol such as
//! two-phase commit at the left with its majority side low too. Drawn with plotters, as a PNG
//! (`comparison-cap.png`) and an SVG string for the page.

use super::atomic::write_atomic;
use super::compare::{worst, Card};
use super::plots::register_fonts;
use faultline_checkers::Validity;
use plotters::prelude::*;
use std::path::Path;

const SIZE: (u32, u32) = (900, 560);

/// One protocol's place on the plot.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    pub protocol: String,
    /// Served share on the cut-off side, 0..=1.
    pub x: f64,
    /// Share of fresh reads, 0..=1; for a workload without a staleness measure (the bank), 1
    /// when its claimed checks held and 0 otherwise.
    pub y: f64,
    /// Whether `y` is a verdict rather than a measured share.
    pub y_is_verdict: bool,
    /// Served share on the majority side, for the label.
    pub majority: Option<f64>,
    /// Whether every claimed check held.
    pub claims_held: bool,
}

fn share(s: (u64, u64)) -> Option<f64> {
    (s.1 > 0).then(|| s.0 as f64 / s.1 as f64)
}

/// The points of the cards that were partitioned at all.
pub fn points(cards: &[Card]) -> Vec<Point> {
    cards
        .iter()
        .filter_map(|c| {
            let f = &c.figures;
            let x = share(f.cut_off_settled).or_else(|| share(f.cut_off))?;
            let claims_held = worst(&c.counts) == Some(Validity::Valid);
            let (y, y_is_verdict) = match f.fresh() {
                Some(y) => (y, false),
                None => (if claims_held { 1.0 } else { 0.0 }, true),
            };
            Some(Point { protocol: c.protocol.clone(), x, y, y_is_verdict, majority: share(f.majority), claims_held })
        })
        .collect()
}

const PALETTE: [RGBColor; 6] = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(148, 103, 189), RGBColor(255, 127, 14), RGBColor(23, 190, 207)];

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, plotters::coord::Shift>, pts: &[Point]) -> Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(root)
        .caption("Availability when cut off vs. fresh reads", ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(46)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.02f64..1.08f64, -0.02f64..1.08f64)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("operations served on the cut-off side")
        .y_desc("reads that missed no acknowledged update")
        .x_label_formatter(&|v| format!("{:.0}%", v * 100.0))
        .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
        .x_labels(6)
        .y_labels(6)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(e)?;
    let note = ("sans-serif", 14).into_font().color(&RGBColor(120, 120, 120));
    chart.draw_series([Text::new("CP: consistent, refuses when cut off", (0.02, 1.05), note.clone())]).map_err(e)?;
    chart.draw_series([Text::new("AP: serves everywhere, reads go stale", (0.55, 0.12), note)]).map_err(e)?;
    for (i, p) in pts.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let style = if p.claims_held { color.filled() } else { color.stroke_width(3) };
        chart.draw_series([Circle::new((p.x, p.y), 9, style)]).map_err(e)?;
        let mut label = p.protocol.clone();
        if let Some(m) = p.majority {
            label += &format!(" (majority {:.0}%)", m * 100.0);
        }
        if p.y_is_verdict {
            label += " [y: verdict]";
        }
        // Labels of points at the same place are stacked rather than drawn over each other.
        let same = pts[..i].iter().filter(|q| (q.x - p.x).abs() < 0.08 && (q.y - p.y).abs() < 0.05).count();
        let (lx, anchor_left) = if p.x > 0.6 { (p.x - 0.02, false) } else { (p.x + 0.02, true) };
        let ly = p.y - 0.035 - same as f64 * 0.045;
        let font = ("sans-serif", 15).into_font().color(&color);
        let text = if anchor_left { Text::new(label, (lx, ly), font) } else { Text::new(label, (lx - 0.3, ly), font) };
        chart.draw_series([text]).map_err(e)?;
    }
    root.present().map_err(e)
}

/// Draws `comparison-cap.png` into `dir` and returns the SVG; both empty when no protocol was
/// partitioned.
pub fn write(dir: &Path, cards: &[Card]) -> anyhow::Result<String> {
    let pts = points(cards);
    if pts.is_empty() {
        return Ok(String::new());
    }
    register_fonts();
    let png = dir.join("comparison-cap.png");
    // Drawn into a uniquely named sibling and renamed: two writers of one results directory
    // never see each other's half-written file.
    super::plots::png_atomic_sized(&png, SIZE, |root| draw(root, &pts)).map_err(|e| anyhow::anyhow!("drawing {}: {e}", png.display()))?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        draw(&root, &pts).map_err(|e| anyhow::anyhow!("drawing the CAP plot: {e}"))?;
    }
    write_atomic(&dir.join("comparison-cap.svg"), svg.as_bytes())?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::Figures;

    fn card(protocol: &str, valid: usize, invalid: usize, f: Figures) -> Card {
        Card { protocol: protocol.into(), counts: [valid, invalid, 0, 0], figures: f, ..Card::default() }
    }

    #[test]
    fn cp_and_ap_protocols_land_apart() {
        let cp = Figures { partitioned: true, cut_off_settled: (2, 200), majority: (990, 1000), stale: Some((0, 500)), ..Figures::default() };
        let ap = Figures { partitioned: true, cut_off_settled: (200, 200), majority: (1000, 1000), stale: Some((150, 500)), ..Figures::default() };
        let bank = Figures { partitioned: true, cut_off_settled: (10, 100), ..Figures::default() };
        let quiet = Figures::default();
        let pts = points(&[card("raft", 2, 0, cp.clone()), card("crdt", 2, 0, ap.clone()), card("twopc", 1, 1, bank), card("idle", 1, 0, quiet)]);
        assert_eq!(pts.len(), 3, "a protocol never partitioned has no place on the plot");
        assert!(pts[0].x < 0.05 && pts[0].y == 1.0);
        assert!(pts[1].x == 1.0 && (pts[1].y - 0.7).abs() < 1e-9);
        assert!(pts[2].y_is_verdict && pts[2].y == 0.0 && !pts[2].claims_held);
        let d = tempfile::tempdir().unwrap();
        let svg = write(d.path(), &[card("raft", 2, 0, cp), card("crdt", 2, 0, ap)]).unwrap();
        assert!(svg.contains("raft (majority 99%)") && svg.contains("crdt"), "labels in the SVG");
        assert!(d.path().join("comparison-cap.png").metadata().unwrap().len() > 1000);
    }
}
