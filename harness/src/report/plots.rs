//! The two plots of a run, drawn with plotters onto any backend (PNG for files, SVG inline in
//! the HTML report):
//!
//! - latency: every operation's latency (log scale) against its invoke time, coloured by
//!   operation and marked by outcome (ok dot, fail cross, info triangle), with p50/p95/p99 lines
//!   over time windows;
//! - rate: completions per second by outcome over time.
//!
//! Both shade the fault periods and label them. The legend sits in a column of its own right of
//! the plotting area, so it never covers data or the last fault band (plotters' own legend box
//! is drawn inside the plotting area); axis labels are printed without binary noise. The data
//! is prepared by pure functions ([`latency_data`], [`rate_data`]) that tests can check without
//! pixels. Text is laid out with the bundled DejaVu Sans (plotters' `ab_glyph` feature), so no
//! system font is needed.

use super::atomic::{persist, temp_sibling, write_atomic};
use super::data::{latency_ms, quantile_sorted, secs, FaultPeriod};
use faultline_checkers::{Call, Outcome};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Registers the bundled font under the generic family names plotters looks up.
pub fn register_fonts() {
    REGISTER.call_once(|| {
        for family in ["sans-serif", "serif", "monospace"] {
            for style in [FontStyle::Normal, FontStyle::Bold, FontStyle::Italic, FontStyle::Oblique] {
                // The font is compiled in; failing to parse it would be a build defect that the
                // plot tests catch, so a failure here is ignored rather than propagated.
                let _ = plotters::style::register_font(family, style, FONT);
            }
        }
    });
}

/// Most points drawn in a scatter; above it, ok points are thinned by a fixed stride (fail
/// and info points are kept first, being the rare and interesting ones).
pub const MAX_POINTS_PNG: usize = 200_000;
pub const MAX_POINTS_SVG: usize = 6_000;

/// Outcomes in drawing and legend order.
pub const OUTCOMES: [&str; 3] = ["ok", "fail", "info"];

/// The scatter and quantile lines of the latency plot.
#[derive(Debug, Default)]
pub struct LatencyData {
    /// (operation, outcome) → points (invoke time s, latency ms).
    pub series: BTreeMap<(String, &'static str), Vec<(f64, f64)>>,
    /// Window midpoints with p50, p95, p99 of ok latencies in that window.
    pub quantiles: Vec<(f64, f64, f64, f64)>,
    /// Points left out by thinning.
    pub thinned: usize,
    /// Width of the quantile windows, seconds.
    pub window_s: f64,
}

fn outcome_name(o: &Outcome) -> &'static str {
    match o {
        Outcome::Ok(_) => "ok",
        Outcome::Fail => "fail",
        Outcome::Unknown => "info",
    }
}

/// A "nice" bucket width near `target_s`: 0.1, 0.25, 0.5, 1, 2, 5, 10, ... seconds.
pub fn nice_bucket_s(target_s: f64) -> f64 {
    const STEPS: [f64; 12] = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0];
    STEPS.iter().copied().find(|s| *s >= target_s).unwrap_or(600.0)
}

/// Prepares the latency scatter from completed workload calls.
pub fn latency_data(calls: &[Call], end_s: f64, max_points: usize) -> LatencyData {
    let done: Vec<&Call> = calls.iter().filter(|c| !c.final_read && c.complete_time.is_some()).collect();
    let rare = done.iter().filter(|c| !c.is_ok()).count();
    let ok_budget = max_points.saturating_sub(rare.min(max_points / 2)).max(1);
    let ok_count = done.len() - rare;
    let stride = ok_count.div_ceil(ok_budget).max(1);
    let mut d = LatencyData::default();
    let (mut ok_seen, mut rare_kept) = (0usize, 0usize);
    for c in &done {
        let Some(l) = latency_ms(c) else { continue };
        let keep = if c.is_ok() {
            ok_seen += 1;
            (ok_seen - 1) % stride == 0
        } else {
            rare_kept += 1;
            rare_kept <= max_points / 2
        };
        if !keep {
            d.thinned += 1;
            continue;
        }
        d.series.entry((c.f.to_string(), outcome_name(&c.outcome))).or_default().push((secs(c.invoke_time), l.max(0.001)));
    }
    let window = nice_bucket_s(end_s / 40.0);
    d.window_s = window;
    let mut buckets: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for c in done.iter().filter(|c| c.is_ok()) {
        if let Some(l) = latency_ms(c) {
            buckets.entry((secs(c.invoke_time) / window) as u64).or_default().push(l.max(0.001));
        }
    }
    for (b, mut v) in buckets {
        if v.len() < 3 {
            continue;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let q = |x| quantile_sorted(&v, x).unwrap_or(0.0);
        d.quantiles.push(((b as f64 + 0.5) * window, q(0.5), q(0.95), q(0.99)));
    }
    d
}

/// Completions per second by outcome: (bucket width s, outcome → points (bucket mid s, ops/s)).
pub fn rate_data(calls: &[Call], end_s: f64) -> (f64, BTreeMap<&'static str, Vec<(f64, f64)>>) {
    let width = nice_bucket_s(end_s / 60.0);
    let n = ((end_s / width).ceil() as usize).max(1);
    let mut counts: BTreeMap<&'static str, Vec<u64>> = BTreeMap::new();
    for c in calls.iter().filter(|c| !c.final_read) {
        // Calls that never completed have no completion time; they are counted as info at the
        // end of the run, which is when the harness gave up on them.
        let t = c.complete_time.map(secs).unwrap_or(end_s);
        let b = ((t / width) as usize).min(n - 1);
        counts.entry(outcome_name(&c.outcome)).or_insert_with(|| vec![0; n])[b] += 1;
    }
    let series = counts
        .into_iter()
        .map(|(k, v)| (k, v.iter().enumerate().map(|(i, c)| ((i as f64 + 0.5) * width, *c as f64 / width)).collect()))
        .collect();
    (width, series)
}

const F_PALETTE: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
    RGBColor(227, 119, 194),
    RGBColor(188, 189, 34),
];

/// The colour of a fault's shading, by nemesis name.
pub fn fault_color(fault: &str) -> RGBColor {
    match fault {
        f if f.starts_with("partition") => RGBColor(255, 152, 0),
        "kill" => RGBColor(229, 57, 53),
        "pause" => RGBColor(142, 36, 170),
        "clock" => RGBColor(30, 136, 229),
        "slow" => RGBColor(121, 85, 72),
        _ => RGBColor(120, 120, 120),
    }
}

/// The same colour as a CSS hex string (for the HTML legend and timeline).
pub fn fault_css(fault: &str) -> String {
    let c = fault_color(fault);
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

fn outcome_color(o: &str) -> RGBColor {
    match o {
        "ok" => RGBColor(46, 125, 50),
        "fail" => RGBColor(245, 124, 0),
        _ => RGBColor(198, 40, 40),
    }
}

/// A short, safe label for a fault (plot text is escaped by the SVG backend, but labels also
/// need to stay short to fit a band).
fn fault_label(fault: &str) -> String {
    fault.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(20).collect()
}

type DrawResult = Result<(), String>;

/// Width of the legend column right of the plotting area, pixels.
pub const LEGEND_W: u32 = 170;

/// How a legend entry is marked.
#[derive(Clone, Copy, Debug)]
pub enum Mark {
    Dot(RGBColor),
    Cross(RGBColor),
    Triangle(RGBColor),
    Line(RGBColor),
    /// A shaded fault band.
    Band(RGBColor),
}

/// Splits a drawing into the plotting part and the legend column on its right.
fn with_legend_column<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    let (w, _) = root.dim_in_pixel();
    root.split_horizontally(w.saturating_sub(LEGEND_W))
}

/// Draws the legend entries top-down in their own column, beside the data.
fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, entries: &[(String, Mark)]) -> DrawResult {
    let font = ("sans-serif", 12).into_font();
    for (i, (text, mark)) in entries.iter().enumerate() {
        let y = 46 + 18 * i as i32;
        let e = |r: Result<(), DrawingAreaErrorKind<DB::ErrorType>>| r.map_err(|e| e.to_string());
        match *mark {
            Mark::Dot(c) => e(area.draw(&Circle::new((14, y), 3, c.filled())))?,
            Mark::Cross(c) => e(area.draw(&Cross::new((14, y), 4, c.stroke_width(2))))?,
            Mark::Triangle(c) => e(area.draw(&TriangleMarker::new((14, y), 5, c.stroke_width(2))))?,
            Mark::Line(c) => e(area.draw(&PathElement::new(vec![(4, y), (24, y)], c.stroke_width(2))))?,
            Mark::Band(c) => e(area.draw(&Rectangle::new([(4, y - 6), (24, y + 6)], c.mix(0.3).filled())))?,
        }
        area.draw(&Text::new(text.clone(), (32, y - 7), font.clone())).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The fault kinds of the run as legend entries (shading colour and name).
fn fault_entries(faults: &[FaultPeriod]) -> Vec<(String, Mark)> {
    let mut kinds: Vec<&str> = faults.iter().map(|p| p.fault.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds.into_iter().map(|k| (format!("{} (shaded)", fault_label(k)), Mark::Band(fault_color(k)))).collect()
}

/// An axis value without binary noise: 0.30000000000000004 → "0.3", 2.0 → "2".
pub fn axis_label(v: &f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

fn shade<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    faults: &[FaultPeriod],
    y_lo: f64,
    y_hi: f64,
    label_y: impl Fn(usize) -> f64,
) -> DrawResult
where
    X: plotters::coord::ranged1d::Ranged<ValueType = f64>,
    Y: plotters::coord::ranged1d::Ranged<ValueType = f64>,
{
    chart
        .draw_series(faults.iter().map(|p| {
            let stop = if p.stop_s > p.start_s { p.stop_s } else { p.start_s + 0.05 };
            Rectangle::new([(p.start_s, y_lo), (stop, y_hi)], fault_color(&p.fault).mix(0.16).filled())
        }))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(faults.iter().enumerate().map(|(i, p)| {
            let style = ("sans-serif", 13).into_font().color(&fault_color(&p.fault));
            Text::new(fault_label(&p.fault), (p.start_s, label_y(i % 3)), style)
        }))
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Draws the latency plot onto a drawing area.
pub fn draw_latency<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, d: &LatencyData, faults: &[FaultPeriod], end_s: f64, title: &str) -> DrawResult {
    register_fonts();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (plot, legend_area) = with_legend_column(root);
    let all = d.series.values().flatten().map(|p| p.1);
    let (lo, hi) = all.fold((f64::MAX, 0.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (y_lo, y_hi) = if hi <= 0.0 { (0.1, 1000.0) } else { ((lo / 2.0).max(0.001), hi * 4.0) };
    let x_hi = end_s.max(1.0);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_hi, (y_lo..y_hi).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("time since start (s), by invoke")
        .y_desc("latency (ms, log scale)")
        .x_label_formatter(&axis_label)
        .y_label_formatter(&|v| if *v >= 1.0 { format!("{v:.0}") } else { axis_label(v) })
        .label_style(("sans-serif", 13))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(|e| e.to_string())?;
    let ratio = y_hi / y_lo;
    shade(&mut chart, faults, y_lo, y_hi, |i| y_hi / ratio.powf(0.02 + 0.05 * i as f64))?;
    let fs: Vec<&String> = {
        let mut v: Vec<&String> = d.series.keys().map(|k| &k.0).collect();
        v.dedup();
        v
    };
    let mut legend: Vec<(String, Mark)> = Vec::new();
    for ((f, outcome), pts) in &d.series {
        let color = F_PALETTE[fs.iter().position(|x| *x == f).unwrap_or(0) % F_PALETTE.len()];
        let mark = match *outcome {
            "ok" => {
                chart.draw_series(pts.iter().map(|p| Circle::new(*p, 2, color.mix(0.6).filled())).collect::<Vec<_>>()).map_err(|e| e.to_string())?;
                Mark::Dot(color)
            }
            "fail" => {
                chart.draw_series(pts.iter().map(|p| Cross::new(*p, 4, color.stroke_width(2))).collect::<Vec<_>>()).map_err(|e| e.to_string())?;
                Mark::Cross(color)
            }
            _ => {
                chart.draw_series(pts.iter().map(|p| TriangleMarker::new(*p, 5, color.stroke_width(2))).collect::<Vec<_>>()).map_err(|e| e.to_string())?;
                Mark::Triangle(color)
            }
        };
        legend.push((format!("{f} {outcome}"), mark));
    }
    let qlines: [(&str, RGBColor, fn(&(f64, f64, f64, f64)) -> f64); 3] = [
        ("p50 (ok)", RGBColor(20, 20, 20), |q| q.1),
        ("p95 (ok)", RGBColor(255, 127, 14), |q| q.2),
        ("p99 (ok)", RGBColor(214, 39, 40), |q| q.3),
    ];
    // A window without ok operations (the cluster was unavailable) breaks the lines rather
    // than bridging the gap with a segment that suggests data.
    let mut segments: Vec<&[(f64, f64, f64, f64)]> = Vec::new();
    let mut start = 0;
    for i in 1..=d.quantiles.len() {
        if i == d.quantiles.len() || d.quantiles[i].0 - d.quantiles[i - 1].0 > d.window_s * 1.5 {
            segments.push(&d.quantiles[start..i]);
            start = i;
        }
    }
    for (name, color, pick) in qlines {
        for seg in &segments {
            chart.draw_series(LineSeries::new(seg.iter().map(|q| (q.0, pick(q))), color.stroke_width(2))).map_err(|e| e.to_string())?;
        }
        if !segments.is_empty() {
            legend.push((name.to_string(), Mark::Line(color)));
        }
    }
    legend.extend(fault_entries(faults));
    draw_legend(&legend_area, &legend)?;
    root.present().map_err(|e| e.to_string())
}

/// Draws the throughput plot onto a drawing area.
pub fn draw_rate<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    width_s: f64,
    series: &BTreeMap<&'static str, Vec<(f64, f64)>>,
    faults: &[FaultPeriod],
    end_s: f64,
    title: &str,
) -> DrawResult {
    register_fonts();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (plot, legend_area) = with_legend_column(root);
    let y_max = series.values().flatten().map(|p| p.1).fold(0.0f64, f64::max).max(1.0) * 1.25;
    let x_hi = end_s.max(1.0);
    let mut chart = ChartBuilder::on(&plot)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_hi, 0f64..y_max)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(format!("time since start (s), completions in {} s buckets", axis_label(&width_s)))
        .y_desc("operations per second")
        .x_label_formatter(&axis_label)
        .y_label_formatter(&axis_label)
        .label_style(("sans-serif", 13))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(|e| e.to_string())?;
    shade(&mut chart, faults, 0.0, y_max, |i| y_max * (0.98 - 0.05 * i as f64))?;
    let mut legend: Vec<(String, Mark)> = Vec::new();
    for o in OUTCOMES {
        let Some(pts) = series.get(o) else { continue };
        let color = outcome_color(o);
        chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2))).map_err(|e| e.to_string())?;
        legend.push((o.to_string(), Mark::Line(color)));
    }
    legend.extend(fault_entries(faults));
    draw_legend(&legend_area, &legend)?;
    root.present().map_err(|e| e.to_string())
}

pub const PNG_SIZE: (u32, u32) = (1200, 520);
pub const SVG_SIZE: (u32, u32) = (1000, 430);

/// Writes `latency.png`, `rate.png`, `latency.svg` and `rate.svg` into `dir`; returns the two
/// SVG texts for inlining.
pub fn write_plots(dir: &Path, calls: &[Call], faults: &[FaultPeriod], end_s: f64, title: &str) -> anyhow::Result<(String, String)> {
    let png_lat = latency_data(calls, end_s, MAX_POINTS_PNG);
    let svg_lat = latency_data(calls, end_s, MAX_POINTS_SVG);
    let (width, rates) = rate_data(calls, end_s);
    let lat_title = format!("Latency — {title}");
    let rate_title = format!("Throughput — {title}");
    let fail = |what: &str, e: String| anyhow::anyhow!("{}: drawing {what}: {e}", dir.display());
    png_atomic(&dir.join("latency.png"), |root| draw_latency(root, &png_lat, faults, end_s, &lat_title)).map_err(|e| fail("latency.png", e))?;
    png_atomic(&dir.join("rate.png"), |root| draw_rate(root, width, &rates, faults, end_s, &rate_title)).map_err(|e| fail("rate.png", e))?;
    let mut lat_svg = String::new();
    {
        let root = SVGBackend::with_string(&mut lat_svg, SVG_SIZE).into_drawing_area();
        draw_latency(&root, &svg_lat, faults, end_s, &lat_title).map_err(|e| fail("latency.svg", e))?;
    }
    let mut rate_svg = String::new();
    {
        let root = SVGBackend::with_string(&mut rate_svg, SVG_SIZE).into_drawing_area();
        draw_rate(&root, width, &rates, faults, end_s, &rate_title).map_err(|e| fail("rate.svg", e))?;
    }
    write_atomic(&dir.join("latency.svg"), lat_svg.as_bytes())?;
    write_atomic(&dir.join("rate.svg"), rate_svg.as_bytes())?;
    Ok((lat_svg, rate_svg))
}

/// Draws a PNG into a temporary sibling and renames it over `path` (a report re-rendered while
/// a browser or another writer reads the old one). The temporary name ends in `.png` because
/// plotters picks the image format by extension.
fn png_atomic(path: &Path, draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult) -> Result<(), String> {
    png_atomic_sized(path, PNG_SIZE, draw)
}

/// [`png_atomic`] at a given size.
pub(crate) fn png_atomic_sized(path: &Path, size: (u32, u32), draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> DrawResult) -> Result<(), String> {
    let tmp = temp_sibling(path, ".png");
    let drawn = {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        draw(&root)
    };
    if let Err(e) = drawn {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    persist(&tmp, path).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checkers::history::parse_jsonl;

    fn calls() -> Vec<Call> {
        let mut text = String::new();
        for i in 0..100u64 {
            let t = i * 100_000_000;
            let (typ, lat) = if i % 10 == 9 { ("info", 1_000_000_000) } else if i % 10 == 8 { ("fail", 2_000_000) } else { ("ok", 1_000_000 + i * 10_000) };
            text += &format!("{{\"process\":{},\"type\":\"invoke\",\"f\":\"write\",\"value\":1,\"time\":{t}}}\n", i % 5);
            text += &format!("{{\"process\":{},\"type\":\"{typ}\",\"f\":\"write\",\"value\":1,\"time\":{}}}\n", i % 5, t + lat);
        }
        // The history is not in time order for the info ops, but pairing only needs per-process order.
        parse_jsonl(&text, "t").unwrap().calls().unwrap()
    }

    #[test]
    fn latency_series_split_by_outcome_and_thin() {
        let c = calls();
        let d = latency_data(&c, 10.0, 1000);
        assert_eq!(d.series[&("write".to_string(), "ok")].len(), 80);
        assert_eq!(d.series[&("write".to_string(), "fail")].len(), 10);
        assert_eq!(d.series[&("write".to_string(), "info")].len(), 10);
        assert!(d.quantiles.iter().all(|q| q.1 <= q.2 && q.2 <= q.3));
        let thin = latency_data(&c, 10.0, 30);
        let kept: usize = thin.series.values().map(Vec::len).sum();
        assert!((20..=40).contains(&kept), "kept {kept}");
        assert_eq!(thin.thinned + kept, 100);
    }

    #[test]
    fn rate_counts_every_call_once() {
        let c = calls();
        let (w, s) = rate_data(&c, 11.0);
        let total: f64 = s.values().flatten().map(|p| p.1 * w).sum();
        assert!((total - 100.0).abs() < 1e-6, "{total}");
    }

    /// The x of every `<text>` whose content is `label` in an SVG.
    fn text_x(svg: &str, label: &str) -> Vec<f64> {
        let flat = svg.replace('\n', "");
        flat.split("<text ")
            .skip(1)
            .filter(|t| t[t.find('>').unwrap() + 1..].trim_start().starts_with(label))
            .filter_map(|t| t.split("x=\"").nth(1)?.split('"').next()?.parse().ok())
            .collect()
    }

    #[test]
    fn legends_sit_right_of_the_data_and_ticks_are_clean() {
        let c = calls();
        // A fault running to the very end: the old legend box (upper right, inside the plot) covered it.
        let faults = vec![FaultPeriod { fault: "kill".into(), start_s: 8.0, stop_s: 11.0, detail: serde_json::Value::Null, closed: false }];
        let d = latency_data(&c, 11.0, 1000);
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SVG_SIZE).into_drawing_area();
            draw_latency(&root, &d, &faults, 11.0, "t").unwrap();
        }
        // The kill band runs to the end of the data: its right edge is the plotting area's.
        let band = svg.split("<rect ").find(|r| r.contains("fill=\"#E53935\"")).expect("no kill band");
        let num = |k: &str| -> f64 { band.split(&format!("{k}=\"")).nth(1).unwrap().split('"').next().unwrap().parse().unwrap() };
        let band_right = num("x") + num("width");
        for label in ["write ok", "p99 (ok)", "kill (shaded)"] {
            let xs = text_x(&svg, label);
            assert!(!xs.is_empty() && xs.iter().all(|x| *x > band_right), "{label} at {xs:?} is over the data, which ends at {band_right}");
        }
        assert!(!text_x(&svg, "10").is_empty() && text_x(&svg, "10.0").is_empty(), "x ticks must read 10, not 10.0");
        assert_eq!(axis_label(&0.30000000000000004), "0.3");
        assert_eq!(axis_label(&2.0), "2");
        assert_eq!(axis_label(&0.25), "0.25");
    }

    #[test]
    fn draws_png_and_svg_with_the_bundled_font() {
        let dir = tempfile::tempdir().unwrap();
        let c = calls();
        let faults = vec![FaultPeriod { fault: "partition".into(), start_s: 2.0, stop_s: 5.0, detail: serde_json::Value::Null, closed: true }];
        let (lat, rate) = write_plots(dir.path(), &c, &faults, 11.0, "unit").unwrap();
        assert!(lat.contains("<svg") && lat.contains("partition") && lat.contains("p99"));
        assert!(rate.contains("<svg") && rate.contains("info"));
        for f in ["latency.png", "rate.png"] {
            let bytes = std::fs::read(dir.path().join(f)).unwrap();
            assert_eq!(&bytes[1..4], b"PNG");
            assert!(bytes.len() > 5000, "{f} is suspiciously small");
        }
    }
}
