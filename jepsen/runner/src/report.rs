//! The run's HTML report (`report.html`) and its plots, drawn with
//! plotters as Jepsen draws its own: `latency-raw.png` (every operation's
//! latency at its invocation time, colored by outcome, fault windows
//! shaded) and `rate.png` (completed operations per second, by outcome).
//! The HTML holds the verdict, both plots and a timeline: one lane per
//! client, one bar per operation from invocation to completion, fault
//! windows behind them.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::nemesis::FaultEvent;

/// Where the plots' font is read from (Debian's fonts-dejavu-core).
const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// Operations drawn in the HTML timeline at most (the plots draw all).
const TIMELINE_OPS_MAX: usize = 5_000;
/// Plot size in pixels.
const PLOT_SIZE: (u32, u32) = (1000, 480);

/// How an operation ended, for coloring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Answered.
    Ok,
    /// Certainly did not happen.
    Fail,
    /// May or may not have happened.
    Unknown,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Ok => "ok",
            Kind::Fail => "fail",
            Kind::Unknown => "unknown",
        }
    }

    fn color(self) -> RGBColor {
        match self {
            Kind::Ok => RGBColor(0x1f, 0x77, 0xb4),
            Kind::Fail => RGBColor(0xd6, 0x27, 0x28),
            Kind::Unknown => RGBColor(0xff, 0x7f, 0x0e),
        }
    }

    fn css(self) -> &'static str {
        match self {
            Kind::Ok => "#1f77b4",
            Kind::Fail => "#d62728",
            Kind::Unknown => "#ff7f0e",
        }
    }
}

/// One operation as the report draws it.
#[derive(Debug, Clone)]
pub struct OpPoint {
    /// The timeline lane (the client).
    pub lane: usize,
    /// Invocation, nanoseconds since the run started.
    pub invoke_ns: u64,
    /// When the runner stopped waiting for it (answer, error or timeout).
    pub end_ns: u64,
    /// How it ended.
    pub kind: Kind,
    /// What it was, for the timeline's tooltip.
    pub label: String,
}

/// Writes `report.html`, `latency-raw.png` and `rate.png` into `dir`.
/// `title` heads the page (the verdict line). Plots that cannot be drawn
/// (no font at [`FONT_PATH`]) are left out and the page says why. Errors:
/// the HTML file could not be written.
pub fn write(
    dir: &Path,
    title: &str,
    ops: &[OpPoint],
    faults: &[FaultEvent],
) -> Result<(), String> {
    let plots = match load_font() {
        Ok(()) => latency_plot(&dir.join("latency-raw.png"), ops, faults)
            .and_then(|()| rate_plot(&dir.join("rate.png"), ops, faults)),
        Err(e) => Err(e),
    };
    let html = page(title, ops, faults, plots.err());
    std::fs::write(dir.join("report.html"), html)
        .map_err(|e| format!("cannot write report.html: {e}"))
}

fn load_font() -> Result<(), String> {
    let bytes = std::fs::read(FONT_PATH)
        .map_err(|e| format!("no font for the plots ({FONT_PATH}: {e})"))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{FONT_PATH} is not a usable font"))
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// The x range: 0 to the last end or fault end, in seconds.
fn time_max_s(ops: &[OpPoint], faults: &[FaultEvent]) -> f64 {
    let ops_end = ops.iter().map(|o| o.end_ns).max().unwrap_or(0);
    let faults_end = faults.iter().filter_map(|f| f.end_ns).max().unwrap_or(0);
    seconds(ops_end.max(faults_end)).max(1.0)
}

fn fault_color() -> RGBAColor {
    RGBColor(0x88, 0x88, 0x88).mix(0.2)
}

fn draw_error<E: std::fmt::Display>(e: E) -> String {
    format!("plot: {e}")
}

fn latency_plot(path: &Path, ops: &[OpPoint], faults: &[FaultEvent]) -> Result<(), String> {
    let latency_ms = |o: &OpPoint| (o.end_ns.saturating_sub(o.invoke_ns) as f64 / 1e6).max(0.1);
    let y_max = ops.iter().map(latency_ms).fold(10.0, f64::max) * 1.5;
    let x_max = time_max_s(ops, faults);
    let root = BitMapBackend::new(path, PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "latency of every operation (shaded: faults)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, (0.1f64..y_max).log_scale())
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("latency (ms)")
        .draw()
        .map_err(draw_error)?;
    let windows = faults.iter().map(|f| {
        let end = f.end_ns.map_or(x_max, seconds);
        Rectangle::new(
            [(seconds(f.start_ns), 0.1), (end, y_max)],
            fault_color().filled(),
        )
    });
    chart.draw_series(windows).map_err(draw_error)?;
    for kind in [Kind::Ok, Kind::Fail, Kind::Unknown] {
        let color = kind.color();
        let points = ops
            .iter()
            .filter(|o| o.kind == kind)
            .map(|o| Circle::new((seconds(o.invoke_ns), latency_ms(o)), 2, color.filled()));
        chart
            .draw_series(points)
            .map_err(draw_error)?
            .label(kind.name())
            .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(draw_error)?;
    root.present().map_err(draw_error)
}

/// Completed operations per whole second, per outcome.
fn rates(ops: &[OpPoint], kind: Kind, buckets: usize) -> Vec<(f64, f64)> {
    let mut counts = vec![0u64; buckets];
    for op in ops.iter().filter(|o| o.kind == kind) {
        let bucket = (op.end_ns / 1_000_000_000) as usize;
        if let Some(count) = counts.get_mut(bucket) {
            *count += 1;
        }
    }
    counts
        .iter()
        .enumerate()
        .map(|(s, c)| (s as f64 + 0.5, *c as f64))
        .collect()
}

fn rate_plot(path: &Path, ops: &[OpPoint], faults: &[FaultEvent]) -> Result<(), String> {
    let x_max = time_max_s(ops, faults);
    let buckets = x_max.ceil() as usize;
    let series: Vec<(Kind, Vec<(f64, f64)>)> = [Kind::Ok, Kind::Fail, Kind::Unknown]
        .into_iter()
        .map(|k| (k, rates(ops, k, buckets)))
        .collect();
    let y_max = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.1))
        .fold(10.0, f64::max)
        * 1.1;
    let root = BitMapBackend::new(path, PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(draw_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "completed operations per second (shaded: faults)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(draw_error)?;
    chart
        .configure_mesh()
        .x_desc("time (s)")
        .y_desc("operations / s")
        .draw()
        .map_err(draw_error)?;
    let windows = faults.iter().map(|f| {
        let end = f.end_ns.map_or(x_max, seconds);
        Rectangle::new(
            [(seconds(f.start_ns), 0.0), (end, y_max)],
            fault_color().filled(),
        )
    });
    chart.draw_series(windows).map_err(draw_error)?;
    for (kind, points) in series {
        let color = kind.color();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(draw_error)?
            .label(kind.name())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(draw_error)?;
    root.present().map_err(draw_error)
}

/// `text` safe inside HTML text and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn page(title: &str, ops: &[OpPoint], faults: &[FaultEvent], plot_error: Option<String>) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>keel-jepsen report</title>\n<style>\
         body{{font-family:sans-serif;margin:1em}} .lanes{{position:relative;border:1px solid #ccc;overflow-x:auto}}\
         .op{{position:absolute;height:10px;min-width:1px;opacity:.8}} .fault{{position:absolute;top:0;bottom:0;background:rgba(136,136,136,.2)}}\
         .legend span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}}</style></head><body>\n\
         <h1>keel-jepsen</h1>\n<p><b>{}</b></p>\n",
        escape(title)
    );
    match plot_error {
        None => {
            html += "<p><img src=\"latency-raw.png\" alt=\"latency of every operation\"></p>\n<p><img src=\"rate.png\" alt=\"operations per second\"></p>\n"
        }
        Some(e) => {
            let _ = writeln!(html, "<p>Plots not drawn: {}</p>", escape(&e));
        }
    }
    fault_table(&mut html, faults);
    timeline(&mut html, ops, faults);
    html += "</body></html>\n";
    html
}

fn fault_table(html: &mut String, faults: &[FaultEvent]) {
    *html += "<h2>Faults</h2>\n<table border=\"1\" cellpadding=\"3\"><tr><th>fault</th><th>members</th><th>start (s)</th><th>end (s)</th><th>what happened</th></tr>\n";
    for f in faults {
        let end = f
            .end_ns
            .map_or_else(|| "-".into(), |e| format!("{:.2}", seconds(e)));
        let mut notes = f.outcome.join("; ");
        if let Some(e) = &f.error {
            notes += &format!(" error: {e}");
        }
        let _ = writeln!(
            html,
            "<tr><td>{:?}{}</td><td>{}</td><td>{:.2}</td><td>{end}</td><td>{}</td></tr>",
            f.fault,
            if f.leader { " (leader)" } else { "" },
            escape(&f.members.join(",")),
            seconds(f.start_ns),
            escape(&notes)
        );
    }
    *html += "</table>\n";
}

/// The timeline: 20 px per second, one 14 px lane per client.
fn timeline(html: &mut String, ops: &[OpPoint], faults: &[FaultEvent]) {
    const PX_PER_S: f64 = 20.0;
    const LANE_PX: usize = 14;
    let lanes = ops.iter().map(|o| o.lane + 1).max().unwrap_or(1);
    let width = (time_max_s(ops, faults) * PX_PER_S).ceil() as usize + 10;
    let shown = ops.len().min(TIMELINE_OPS_MAX);
    let _ = writeln!(
        *html,
        "<h2>Timeline</h2>\n<p class=\"legend\">{shown} of {} operations, one lane per client, {PX_PER_S} px per second (hover for details):\
         <span style=\"background:{}\"></span>ok<span style=\"background:{}\"></span>fail<span style=\"background:{}\"></span>unknown\
         <span style=\"background:rgba(136,136,136,.4)\"></span>fault</p>\n<div class=\"lanes\" style=\"width:{width}px;height:{}px\">",
        ops.len(),
        Kind::Ok.css(),
        Kind::Fail.css(),
        Kind::Unknown.css(),
        lanes * LANE_PX
    );
    let x = |ns: u64| seconds(ns) * PX_PER_S;
    for f in faults {
        let end = f.end_ns.map_or(width as f64, x);
        let _ = writeln!(
            *html,
            "<div class=\"fault\" style=\"left:{:.1}px;width:{:.1}px\" title=\"{:?} {}\"></div>",
            x(f.start_ns),
            (end - x(f.start_ns)).max(1.0),
            f.fault,
            escape(&f.members.join(","))
        );
    }
    for op in &ops[..shown] {
        let _ = writeln!(
            *html,
            "<div class=\"op\" style=\"left:{:.1}px;top:{}px;width:{:.1}px;background:{}\" title=\"{} {:.3}s..{:.3}s {}\"></div>",
            x(op.invoke_ns),
            op.lane * LANE_PX + 2,
            (x(op.end_ns) - x(op.invoke_ns)).max(1.0),
            op.kind.css(),
            op.kind.name(),
            seconds(op.invoke_ns),
            seconds(op.end_ns),
            escape(&op.label)
        );
    }
    *html += "</div>\n";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(lane: usize, invoke_s: u64, kind: Kind) -> OpPoint {
        OpPoint {
            lane,
            invoke_ns: invoke_s * 1_000_000_000,
            end_ns: invoke_s * 1_000_000_000 + 5_000_000,
            kind,
            label: "read <k>".into(),
        }
    }

    #[test]
    fn rates_count_completions_per_second_and_kind() {
        let ops = [
            op(0, 0, Kind::Ok),
            op(1, 0, Kind::Ok),
            op(0, 2, Kind::Fail),
            op(0, 9, Kind::Ok),
        ];
        assert_eq!(
            rates(&ops, Kind::Ok, 3),
            vec![(0.5, 2.0), (1.5, 0.0), (2.5, 0.0)]
        );
        assert_eq!(rates(&ops, Kind::Fail, 3)[2], (2.5, 1.0));
    }

    #[test]
    fn the_report_has_plots_and_an_escaped_timeline() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let ops: Vec<OpPoint> = (0..20)
            .map(|s| {
                op(
                    s as usize % 3,
                    s,
                    [Kind::Ok, Kind::Fail, Kind::Unknown][s as usize % 3],
                )
            })
            .collect();
        write(dir.path(), "valid <run>", &ops, &[]).expect("report");
        let html = std::fs::read_to_string(dir.path().join("report.html")).expect("report.html");
        assert!(html.contains("valid &lt;run&gt;") && html.contains("read &lt;k&gt;"));
        assert_eq!(html.matches("class=\"op\"").count(), 20);
        if Path::new(FONT_PATH).exists() {
            for png in ["latency-raw.png", "rate.png"] {
                let bytes = std::fs::read(dir.path().join(png)).expect(png);
                assert!(bytes.starts_with(b"\x89PNG"), "{png} is not a PNG");
            }
        } else {
            assert!(html.contains("Plots not drawn"));
        }
    }
}
