//! `compare`'s chart: a PNG (plotters, bitmap backend) with one
//! horizontal bar per case (the first on top), keel's rate over etcd's,
//! and a line at 1x.
//! Labels need a TrueType font: the first of [`FONT_PATHS`] found, or
//! `$KEEL_BENCH_FONT`.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow, bail};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::results::CaseResult;

/// Fonts tried for the labels (Debian's fonts-dejavu-core and
/// fonts-liberation).
pub const FONT_PATHS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];
/// Variable naming another font file.
pub const FONT_ENV: &str = "KEEL_BENCH_FONT";
/// Picture width, pixels.
const WIDTH_PX: u32 = 1000;
/// Height per case, pixels.
const ROW_PX: u32 = 28;

static FONT: OnceLock<Result<(), String>> = OnceLock::new();

/// Registers the label font once as "sans-serif".
fn register() -> Result<()> {
    FONT.get_or_init(|| {
        let candidates = std::env::var(FONT_ENV).into_iter().chain(FONT_PATHS.iter().map(|p| p.to_string()));
        for path in candidates {
            if let Ok(bytes) = std::fs::read(&path) {
                // plotters keeps fonts for the program's life.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                return register_font("sans-serif", FontStyle::Normal, bytes)
                    .map_err(|_| format!("{path} is not a usable TrueType font"));
            }
        }
        Err(format!(
            "no TrueType font for the chart's labels (tried {}; set {FONT_ENV} or install fonts-dejavu-core)",
            FONT_PATHS.join(", ")
        ))
    })
    .clone()
    .map_err(|e| anyhow!(e))
}

/// Draws `results` to `path` (PNG).
pub fn draw(results: &[CaseResult], path: &Path) -> Result<()> {
    if results.is_empty() {
        bail!("no results to chart");
    }
    register()?;
    let height = 120 + ROW_PX * results.len() as u32;
    let root = BitMapBackend::new(path, (WIDTH_PX, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let max_ratio = results.iter().map(|r| r.rate_ratio).fold(1.0f64, f64::max) * 1.15;
    let rows = results.len();
    let labels: Vec<String> = results.iter().map(CaseResult::label).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "keel / etcd, requests per second (higher is better)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(190)
        .build_cartesian_2d(0f64..max_ratio, (0..rows).into_segmented())
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(rows)
        .y_label_formatter(&|y| match y {
            SegmentValue::CenterOf(k) | SegmentValue::Exact(k) => rows
                .checked_sub(1 + *k)
                .and_then(|i| labels.get(i))
                .cloned()
                .unwrap_or_default(),
            SegmentValue::Last => String::new(),
        })
        .x_desc("keel rate / etcd rate")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(
            Histogram::horizontal(&chart)
                .margin(4)
                .style_func(|_, ratio| {
                    if *ratio >= 1.0 {
                        GREEN.mix(0.7).filled()
                    } else {
                        RED.mix(0.7).filled()
                    }
                })
                .data(
                    results
                        .iter()
                        .enumerate()
                        .map(|(i, r)| (rows - 1 - i, r.rate_ratio)),
                ),
        )
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(LineSeries::new(
            [(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Last)],
            BLACK.stroke_width(2),
        ))
        .map_err(|e| anyhow!("{e}"))?;
    root.present()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
