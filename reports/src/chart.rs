//! The report's charts, drawn with plotters into SVG strings: latency, throughput and success
//! over simulated time (fault windows shaded and labelled, phases marked), the load share per
//! server (stacked), a timeline lane per server, and the spread of a figure across seeds.
//!
//! Colours are the Okabe-Ito palette (distinguishable with the common colour-vision
//! deficiencies); every chart has a white background so that it reads the same in print and in
//! a dark page, and every axis names its unit.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::model::{RunResult, What};
use gauntlet_core::breaker::Phase as BreakerPhase;

/// The Okabe-Ito palette, black last.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(240, 228, 66),  // yellow
    RGBColor(0, 0, 0),       // black
];
/// Grid lines.
const GRID: RGBColor = RGBColor(235, 235, 235);
/// Fault windows.
pub const FAULT: RGBColor = RGBColor(200, 200, 200);
/// The fill of fault windows, as it appears in the SVG (tests look for it).
pub const FAULT_FILL: &str = "#C8C8C8";
const FONT: &str = "sans-serif";
/// The width of every time chart, in pixels.
pub const WIDTH: u32 = 760;
/// The width of every time chart's y label area: the same on all, so their time axes align.
const LABELS: u32 = 124;

/// The colour of the `i`-th series.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The hex form of a colour, for the page's legends.
pub fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// A span of simulated time in which faults were active, in seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// Start, s.
    pub from: f64,
    /// End, s.
    pub to: f64,
    /// The fault's kind and its targets.
    pub label: String,
}

/// Each fault's span on each server it hit, from the timeline: (server, kind, from s, to s),
/// a start paired with the next end of the same fault on the same server (or the run's end).
pub fn fault_spans(run: &RunResult) -> Vec<(String, String, f64, f64)> {
    let end = duration_s(run);
    let mut out = Vec::new();
    for (i, e) in run.events.iter().enumerate() {
        let What::FaultStart { fault } = &e.what else { continue };
        let stop = run.events[i + 1..]
            .iter()
            .find(|x| x.server == e.server && matches!(&x.what, What::FaultEnd { fault: f } if f == fault))
            .map_or(end, |x| x.t_us as f64 / 1e6);
        let start = (e.t_us as f64 / 1e6).min(end);
        out.push((e.server.clone(), fault.clone(), start, stop.clamp(start, end)));
    }
    out
}

/// The fault windows of `run`: its [`fault_spans`], those of one fault over several servers
/// merged into one, labelled with their names.
pub fn fault_windows(run: &RunResult) -> Vec<Window> {
    let raw = fault_spans(run).into_iter().map(|(server, fault, from, to)| (from, to, fault, server));
    let mut out: Vec<(f64, f64, String, Vec<String>)> = Vec::new();
    for (from, to, fault, server) in raw {
        match out.iter_mut().find(|w| w.0 == from && w.1 == to && w.2 == fault) {
            Some(w) => w.3.push(server),
            None => out.push((from, to, fault, vec![server])),
        }
    }
    out.into_iter()
        .map(|(from, to, fault, servers)| {
            let names = if servers.len() > 3 {
                format!("{}, … ({} servers)", servers[..2].join(", "), servers.len())
            } else {
                servers.join(", ")
            };
            Window { from, to, label: format!("{fault}: {names}") }
        })
        .collect()
}

/// The run's simulated duration, in seconds (from the series or the timeline for results that
/// do not carry it).
pub fn duration_s(run: &RunResult) -> f64 {
    let ms = if run.duration_ms > 0.0 {
        run.duration_ms
    } else {
        let series = run.series.last().map_or(0.0, |b| b.t_ms + bucket_ms(run));
        let events = run.events.last().map_or(0.0, |e| e.t_us as f64 / 1e3);
        series.max(events)
    };
    // Results come from anywhere: a duration no scenario can have is drawn at a bound.
    if ms.is_finite() { ms.clamp(1.0, MAX_MS) / 1e3 } else { MAX_MS / 1e3 }
}

/// The largest time or latency a chart draws, in ms (a day); larger values are drawn at it.
const MAX_MS: f64 = 86_400_000.0;

/// A value fit for an axis: finite and within [`MAX_MS`] (latencies, times), or `None`.
fn drawable(v: f64) -> Option<f64> {
    (v.is_finite() && v > 0.0).then_some(v.min(MAX_MS))
}

/// The width of the run's series buckets, in ms.
pub fn bucket_ms(run: &RunResult) -> f64 {
    let w = match run.series.as_slice() {
        [a, b, ..] => b.t_ms - a.t_ms,
        _ => run.duration_ms,
    };
    if w.is_finite() { w.clamp(1.0, MAX_MS) } else { MAX_MS }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Draws into a new `width` × `height` SVG; a drawing error becomes a visible note, never a
/// panic (the data is the results', which may come from anywhere).
fn svg(width: u32, height: u32, draw: impl FnOnce(&Area<'_>) -> Drawn) -> String {
    let mut buf = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut buf, (width, height)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|()| draw(&root).map_err(|e| e.to_string()))
            .and_then(|()| root.present().map_err(|e| e.to_string()))
    };
    match result {
        Ok(()) => buf,
        Err(e) => format!("<p class=\"error\">This chart could not be drawn: {}</p>", crate::html::escape(&e)),
    }
}

/// A chart's frame: its caption, margin and label areas (`x_labels` high, `y_labels` wide).
fn frame<'a, 'b>(
    root: &'a Area<'b>,
    caption: &str,
    x_labels: u32,
    y_labels: u32,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder.caption(caption, (FONT, 14)).margin(8).x_label_area_size(x_labels).y_label_area_size(y_labels);
    builder
}

/// One run's series on a shared time chart.
#[derive(Clone, Copy, Debug)]
pub struct Series<'a> {
    /// Its label in the legend.
    pub label: &'a str,
    /// The run.
    pub run: &'a RunResult,
    /// Its colour.
    pub colour: RGBColor,
    /// Drawn dashed and lighter: the baseline of a diff.
    pub base: bool,
}

/// Shades the fault windows and marks the phases on a time chart whose y range is `y`.
fn backdrop<Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    run: &RunResult,
    y: (f64, f64),
) -> Drawn {
    let windows = fault_windows(run);
    chart.draw_series(windows.iter().map(|w| Rectangle::new([(w.from, y.0), (w.to, y.1)], FAULT.mix(0.5).filled())))?;
    chart.draw_series(windows.iter().enumerate().map(|(i, w)| {
        // Labels of overlapping windows are stacked downwards.
        let top = y_at(y, 0.97 - 0.08 * (i % 4) as f64);
        Text::new(w.label.clone(), (w.from, top), (FONT, 11).into_font().color(&BLACK))
    }))?;
    let end = duration_s(run);
    let at = |ms: f64| (ms / 1e3).clamp(0.0, end);
    for p in run.phases.iter().skip(1) {
        let x = at(p.from_ms);
        chart.draw_series(LineSeries::new([(x, y.0), (x, y.1)], BLACK.mix(0.35)))?;
    }
    chart.draw_series(run.phases.iter().map(|p| {
        Text::new(p.name.clone(), (at(p.from_ms), y_at(y, 0.04)), (FONT, 11).into_font().color(&BLACK.mix(0.7)))
    }))?;
    Ok(())
}

/// The powers of ten around `[lo, hi]` (`lo > 0`), so that a log axis labels whole decades.
fn decades(lo: f64, hi: f64) -> (f64, f64) {
    let lo = 10f64.powf(lo.max(0.001).log10().floor());
    let hi = 10f64.powf(hi.max(lo * 10.0).log10().ceil());
    (lo, hi.max(lo * 10.0))
}

/// A number for an axis: no trailing zeros (`2`, `0.5`, `1000`).
fn trim_num(v: f64) -> String {
    let text = format!("{v:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A value `f` of the way up a y range, geometric for a log axis (`y.0 > 0`).
fn y_at(y: (f64, f64), f: f64) -> f64 {
    if y.0 > 0.0 && y.1 / y.0 > 20.0 { y.0 * (y.1 / y.0).powf(f) } else { y.0 + (y.1 - y.0) * f }
}

fn points(run: &RunResult, value: impl Fn(&crate::model::Bucket) -> Option<f64>) -> Vec<(f64, f64)> {
    let half = bucket_ms(run) / 2.0;
    let end = duration_s(run);
    // Within the run's span: a time outside it (results come from anywhere) is drawn at its edge.
    run.series.iter().filter_map(|b| value(b).map(|v| (((b.t_ms + half) / 1e3).clamp(0.0, end), v))).collect()
}

/// Latency over time: each run's p99 (solid) and p50 (dashed) per bucket, on a log axis.
pub fn latency(series: &[Series<'_>]) -> String {
    let Some(first) = series.first() else { return String::new() };
    let end = series.iter().map(|s| duration_s(s.run)).fold(0.0, f64::max);
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.run.series.iter().flat_map(|b| [b.p50_ms, b.p99_ms]).flatten())
        .filter_map(drawable)
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    let (lo, hi) = if values.is_empty() { (1.0, 1_000.0) } else { decades(lo, hi) };
    svg(WIDTH, 280, |root| {
        let mut chart = frame(root, "Latency of answered calls per bucket: p99 (bold), p50 (thin)", 36, LABELS)
            .build_cartesian_2d(0.0..end, (lo..hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("simulated time (s)")
            .y_desc("latency (ms)")
            .y_labels(12)
            .y_label_formatter(&|v| trim_num(*v))
            .max_light_lines(0)
            .bold_line_style(GRID)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 12))
            .x_label_formatter(&|v| trim_num(*v))
            .draw()?;
        backdrop(&mut chart, first.run, (lo, hi))?;
        for s in series {
            let style = if s.base { s.colour.mix(0.45).stroke_width(1) } else { s.colour.stroke_width(2) };
            let p99 = points(s.run, |b| b.p99_ms.and_then(drawable));
            chart.draw_series(LineSeries::new(p99, style))?;
            if !s.base {
                let p50 = points(s.run, |b| b.p50_ms.and_then(drawable));
                chart.draw_series(LineSeries::new(p50, s.colour.mix(0.55).stroke_width(1)))?;
            }
        }
        Ok(())
    })
}

/// Throughput over time: calls started per second, per bucket.
pub fn throughput(series: &[Series<'_>]) -> String {
    let rate = |run: &RunResult| {
        let width_s = bucket_ms(run) / 1e3;
        points(run, move |b| Some(b.started as f64 / width_s))
    };
    let hi = series.iter().flat_map(|s| rate(s.run)).map(|(_, v)| v).fold(0.0, f64::max).max(1.0) * 1.15;
    per_bucket(series, "Throughput: calls started per second", "calls/s", hi, rate)
}

/// Success over time: the share of each bucket's calls (by start) that got a correct result.
pub fn success(series: &[Series<'_>]) -> String {
    let rate = |run: &RunResult| points(run, |b| (b.started > 0).then(|| b.ok as f64 / b.started as f64));
    per_bucket(series, "Success rate of the calls started in each bucket", "success rate (0-1)", 1.05, rate)
}

/// A line per run of `value`'s points, on a linear axis from 0 to `hi`, over the fault windows
/// and phases of the first run.
fn per_bucket(
    series: &[Series<'_>],
    caption: &str,
    unit: &str,
    hi: f64,
    value: impl Fn(&RunResult) -> Vec<(f64, f64)>,
) -> String {
    let Some(first) = series.first() else { return String::new() };
    let end = series.iter().map(|s| duration_s(s.run)).fold(0.0, f64::max);
    svg(WIDTH, 200, |root| {
        let mut chart = frame(root, caption, 36, LABELS).build_cartesian_2d(0.0..end, 0.0..hi)?;
        chart
            .configure_mesh()
            .x_desc("simulated time (s)")
            .y_desc(unit)
            .max_light_lines(0)
            .bold_line_style(GRID)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 12))
            .x_label_formatter(&|v| trim_num(*v))
            .draw()?;
        backdrop(&mut chart, first.run, (0.0, hi))?;
        for s in series {
            let style = if s.base { s.colour.mix(0.45).stroke_width(1) } else { s.colour.stroke_width(2) };
            chart.draw_series(LineSeries::new(value(s.run), style))?;
        }
        Ok(())
    })
}

/// Load share per server over time, stacked: each bucket's correct answers split by server, in
/// the order of the run's servers (colours as [`colour`] by server index).
pub fn share(run: &RunResult) -> String {
    let end = duration_s(run);
    let width = bucket_ms(run) / 1e3;
    let n = run.servers.len();
    svg(WIDTH, 220, |root| {
        let mut chart = frame(root, "Load share: each server's part of the answers", 36, LABELS)
            .build_cartesian_2d(0.0..end, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("simulated time (s)")
            .y_desc("share of answers (0-1)")
            .max_light_lines(0)
            .bold_line_style(GRID)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 12))
            .x_label_formatter(&|v| trim_num(*v))
            .draw()?;
        // Per bucket with answers: its centre and each server's cumulative share.
        let half = width / 2.0;
        let mut xs: Vec<f64> = Vec::new();
        let mut cum: Vec<Vec<f64>> = Vec::new();
        for b in &run.series {
            let total = b.answered.iter().fold(0u64, |a, &n| a.saturating_add(n));
            if total == 0 {
                continue;
            }
            xs.push((b.t_ms / 1e3 + half).clamp(0.0, end));
            let mut acc = 0.0;
            cum.push(
                (0..n)
                    .map(|i| {
                        acc += b.answered.get(i).copied().unwrap_or(0) as f64 / total as f64;
                        acc
                    })
                    .collect(),
            );
        }
        // One band per server, between the cumulative share below it and its own.
        for i in 0..n {
            let top = xs.iter().zip(&cum).map(|(&x, c)| (x, c[i]));
            let bottom = xs.iter().zip(&cum).rev().map(|(&x, c)| (x, if i == 0 { 0.0 } else { c[i - 1] }));
            let outline: Vec<(f64, f64)> = top.chain(bottom).collect();
            if outline.len() >= 3 {
                chart.draw_series(std::iter::once(Polygon::new(outline, colour(i).filled())))?;
            }
        }
        let windows = fault_windows(run);
        chart.draw_series(
            windows.iter().map(|w| {
                Rectangle::new([(w.from, 0.0), (w.to, 1.0)], ShapeStyle::from(BLACK.mix(0.8)).stroke_width(1))
            }),
        )?;
        Ok(())
    })
}

/// The timeline: a lane per server with its faults (grey), link down (black), breaker open
/// (vermillion) or half-open (orange), and ejections (purple).
pub fn timeline(run: &RunResult) -> String {
    let end = duration_s(run);
    let names: Vec<&str> = run.servers.iter().map(|s| s.name.as_str()).collect();
    let n = names.len().max(1);
    let lane = 26.0;
    let height = 80 + (lane as u32) * n as u32;
    svg(WIDTH, height, |root| {
        let mut chart = frame(root, "Timeline per server: faults, link down, breaker, ejection", 40, LABELS)
            .build_cartesian_2d(0.0..end, 0.0..n as f64)?;
        chart
            .configure_mesh()
            .x_desc("simulated time (s)")
            .y_desc("server")
            .y_labels(0)
            .disable_y_mesh()
            .max_light_lines(0)
            .bold_line_style(GRID)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 12))
            .x_label_formatter(&|v| trim_num(*v))
            .draw()?;
        // Row `i` (the i-th server) spans y in [n-1-i, n-i], top to bottom.
        let row = |name: &str| names.iter().position(|s| *s == name).map(|i| (n - 1 - i) as f64);
        let mut bars: Vec<Rectangle<(f64, f64)>> = Vec::new();
        for (server, _, from, to) in fault_spans(run) {
            if let Some(y) = row(&server) {
                bars.push(Rectangle::new([(from, y + 0.05), (to, y + 0.95)], FAULT.mix(0.5).filled()));
            }
        }
        // Spans of each state, from the transitions in the timeline.
        let mut open: Vec<(String, Lane, f64)> = Vec::new();
        let mut spans: Vec<(String, Lane, f64, f64)> = Vec::new();
        for e in &run.events {
            let t = (e.t_us as f64 / 1e6).min(end);
            let s = e.server.as_str();
            match &e.what {
                What::Disconnected => open.push((s.to_owned(), Lane::Down, t)),
                What::Connected => close(&mut open, &mut spans, s, Lane::Down, t),
                What::Ejected => open.push((s.to_owned(), Lane::Ejected, t)),
                What::Restored => close(&mut open, &mut spans, s, Lane::Ejected, t),
                What::Breaker { to, .. } => {
                    close(&mut open, &mut spans, s, Lane::Open, t);
                    close(&mut open, &mut spans, s, Lane::HalfOpen, t);
                    match to {
                        BreakerPhase::Open => open.push((s.to_owned(), Lane::Open, t)),
                        BreakerPhase::HalfOpen => open.push((s.to_owned(), Lane::HalfOpen, t)),
                        BreakerPhase::Closed => {}
                    }
                }
                _ => {}
            }
        }
        for (server, lane, from) in open {
            spans.push((server, lane, from, end));
        }
        for (server, lane, from, to) in spans {
            let Some(y) = row(&server) else { continue };
            let (lo, hi, c) = match lane {
                Lane::Down => (0.62, 0.86, BLACK.mix(0.75)),
                Lane::Open => (0.36, 0.6, PALETTE[1].mix(1.0)),
                Lane::HalfOpen => (0.36, 0.6, PALETTE[3].mix(1.0)),
                Lane::Ejected => (0.12, 0.34, PALETTE[5].mix(1.0)),
            };
            // At least a pixel wide, so an instant's state shows.
            bars.push(Rectangle::new([(from, y + lo), (to.max(from + end / 700.0), y + hi)], c.filled()));
        }
        chart.draw_series(bars)?;
        // Server names beside their lanes, on the root (the plotting area has no room for them).
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let row_px = f64::from(ys.end - ys.start) / n as f64;
        for (i, name) in names.iter().enumerate() {
            let y = ys.start + (row_px * (i as f64 + 0.5)) as i32 - 6;
            let shown: String = name.chars().take(15).collect();
            root.draw(&Text::new(shown, (xs.start - 106, y), (FONT, 12).into_font().color(&BLACK)))?;
        }
        Ok(())
    })
}

/// A state a server's lane shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lane {
    Down,
    Open,
    HalfOpen,
    Ejected,
}

/// Ends `server`'s open `lane` span at `t`, if one is open.
fn close(
    open: &mut Vec<(String, Lane, f64)>,
    spans: &mut Vec<(String, Lane, f64, f64)>,
    server: &str,
    lane: Lane,
    t: f64,
) {
    if let Some(k) = open.iter().position(|(s, l, _)| s == server && *l == lane) {
        let (s, l, from) = open.remove(k);
        spans.push((s, l, from, t));
    }
}

/// One row of a spread chart: a label and one value per seed (`true`: the run passed).
#[derive(Clone, Debug)]
pub struct Spread {
    /// What the row is (`scenario [run]`).
    pub label: String,
    /// (seed, value in ms, passed) per seed.
    pub values: Vec<(u64, f64, bool)>,
}

/// The spread of a figure across seeds, one row per scenario × run: a point per seed (blue when
/// the run passed, vermillion when it failed), on a log axis.
pub fn spread(title: &str, unit: &str, rows: &[Spread]) -> String {
    let values: Vec<f64> = rows.iter().flat_map(|r| r.values.iter().map(|v| v.1)).filter_map(drawable).collect();
    if values.is_empty() {
        return String::new();
    }
    let (lo, hi) =
        decades(values.iter().copied().fold(f64::INFINITY, f64::min), values.iter().copied().fold(0.0, f64::max));
    let n = rows.len();
    let lane = 18.0;
    let height = 70 + (lane as u32) * n as u32;
    svg(WIDTH + 140, height, |root| {
        let mut chart = frame(root, title, 36, 260).build_cartesian_2d((lo..hi).log_scale(), 0.0..n as f64)?;
        chart
            .configure_mesh()
            .x_desc(unit)
            .y_desc("scenario [run]")
            .y_labels(0)
            .x_labels(16)
            .max_light_lines(0)
            .bold_line_style(GRID)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 12))
            .x_label_formatter(&|v| trim_num(*v))
            .draw()?;
        for (i, r) in rows.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let k = r.values.len().max(1) as f64;
            chart.draw_series(
                r.values.iter().enumerate().filter_map(|(j, &(_, v, pass))| Some((j, drawable(v)?, pass))).map(
                    |(j, v, pass)| {
                        // Spread vertically by seed order so equal values stay visible.
                        let dy = 0.2 + 0.6 * (j as f64 + 0.5) / k;
                        let c = if pass { PALETTE[0] } else { PALETTE[1] };
                        Circle::new((v, y + dy), 3, c.filled())
                    },
                ),
            )?;
        }
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let row_px = f64::from(ys.end - ys.start) / n as f64;
        for (i, r) in rows.iter().enumerate() {
            let y = ys.start + (row_px * (i as f64 + 0.5)) as i32 - 6;
            let shown: String = r.label.chars().take(38).collect();
            root.draw(&Text::new(shown, (xs.start - 240, y), (FONT, 12).into_font().color(&BLACK)))?;
        }
        Ok(())
    })
}
